/* Topics on one loop, and the count of subscribers across loops. */
#include "pubsub/pubsub.h"
#include "proto/frame.h"
#include "util/hash.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* A subscriber receives what was published after it subscribed: `since` is
 * the publish sequence number when it subscribed. Across threads that is
 * what makes "subscribe, then read the history" exact: a message already
 * on its way to this loop when the subscription began is not delivered
 * again. */
typedef struct {
  uvws_conn_t *c;
  uint64_t since;
} sub_t;

/* A topic and the sessions subscribed to it, in subscription order. Owned
 * by the loop's table; freed when its last subscriber leaves. */
struct uvws__topic_s {
  uvws__topic_t *next; /* hash chain */
  sub_t *subs;         /* owned array */
  size_t nsubs, cap;
  size_t name_len;
  char name[];
};

/* ---- the census: subscribers per topic on every loop ----------------------------- */

typedef struct census_entry_s {
  struct census_entry_s *next;
  size_t count, name_len;
  char name[];
} census_entry_t;

struct uvws__census_s {
  uv_mutex_t lock;
  census_entry_t *table[UVWS__TOPIC_BUCKETS];
};

int uvws__census_new(uvws__census_t **out) {
  uvws__census_t *c = calloc(1, sizeof(*c));
  *out = NULL;
  if (c == NULL) return UV_ENOMEM;
  if (uv_mutex_init(&c->lock) != 0) {
    free(c);
    return UV_ENOMEM;
  }
  *out = c;
  return 0;
}

void uvws__census_free(uvws__census_t *c) {
  size_t i;
  if (c == NULL) return;
  for (i = 0; i < UVWS__TOPIC_BUCKETS; i++) {
    while (c->table[i]) {
      census_entry_t *e = c->table[i];
      c->table[i] = e->next;
      free(e);
    }
  }
  uv_mutex_destroy(&c->lock);
  free(c);
}

static census_entry_t **census_slot(uvws__census_t *c, const char *name, size_t n) {
  census_entry_t **p = &c->table[uvws__hash(name, n) % UVWS__TOPIC_BUCKETS];
  for (; *p; p = &(*p)->next)
    if ((*p)->name_len == n && memcmp((*p)->name, name, n) == 0) break;
  return p;
}

/* +1 or -1 for `name`; 0, or UV_ENOMEM for a +1 that found no room. */
static int census_add(uvws__census_t *c, const char *name, size_t n, int delta) {
  census_entry_t **slot, *e;
  int r = 0;
  if (c == NULL) return 0;
  uv_mutex_lock(&c->lock);
  slot = census_slot(c, name, n);
  e = *slot;
  if (e == NULL && delta > 0) {
    if ((e = calloc(1, sizeof(*e) + n)) != NULL) {
      memcpy(e->name, name, n);
      e->name_len = n;
      *slot = e;
    } else {
      r = UV_ENOMEM;
    }
  }
  if (e) {
    e->count += (size_t)(ptrdiff_t)delta;
    if (e->count == 0) {
      *slot = e->next;
      free(e);
    }
  }
  uv_mutex_unlock(&c->lock);
  return r;
}

/* ---- one loop's topics --------------------------------------------------------------- */

static uvws__topic_t **topic_slot(const uvws__pubsub_t *ps, const char *name, size_t n) {
  uvws__topic_t **p = (uvws__topic_t **)&ps->table[uvws__hash(name, n) % UVWS__TOPIC_BUCKETS];
  for (; *p; p = &(*p)->next)
    if ((*p)->name_len == n && memcmp((*p)->name, name, n) == 0) break;
  return p;
}

static uvws__topic_t **topics_of(uvws_conn_t *c) { return c->topics; }

static int conn_has(uvws_conn_t *c, const uvws__topic_t *t) {
  uint32_t i;
  for (i = 0; i < c->ntopics; i++)
    if (topics_of(c)[i] == t) return 1;
  return 0;
}

uint64_t uvws__pubsub_seq(uvws__pubsub_t *ps, int next) {
  if (ps->bus) return ps->bus->seq(ps->bus->ctx, next);
  return next ? ps->seq++ : ps->seq;
}

int uvws__pubsub_subscribe(uvws__pubsub_t *ps, uvws_conn_t *c, const char *topic) {
  size_t n = topic ? strlen(topic) : 0;
  uvws__topic_t **slot, *t;

  if (n == 0) return UV_EINVAL;
  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  slot = topic_slot(ps, topic, n);
  t = *slot;
  if (t && conn_has(c, t)) return 0;
  if (c->ntopics == c->topics_cap) {
    uint32_t cap = c->topics_cap ? c->topics_cap * 2 : 4;
    uvws__topic_t **grown = realloc(c->topics, cap * sizeof(*grown));
    if (grown == NULL) return UV_ENOMEM;
    c->topics = grown;
    c->topics_cap = cap;
  }
  if (t == NULL) {
    t = calloc(1, sizeof(*t) + n + 1);
    if (t == NULL) return UV_ENOMEM;
    memcpy(t->name, topic, n);
    t->name_len = n;
    *slot = t;
  }
  if (t->nsubs == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    sub_t *grown = realloc(t->subs, cap * sizeof(*grown));
    if (grown == NULL || census_add(ps->census, topic, n, 1) != 0) {
      if (grown) t->subs = grown, t->cap = cap;
      if (t->nsubs == 0) { /* just created: undo */
        *slot = t->next;
        free(t->subs);
        free(t);
      }
      return UV_ENOMEM;
    }
    t->subs = grown;
    t->cap = cap;
  } else if (census_add(ps->census, topic, n, 1) != 0) {
    return UV_ENOMEM;
  }
  t->subs[t->nsubs].c = c;
  t->subs[t->nsubs++].since = uvws__pubsub_seq(ps, 0);
  topics_of(c)[c->ntopics++] = t;
  return 0;
}

/* Removes `c` from `t` (keeping the others in order) and frees an empty
 * topic. */
static void topic_remove(uvws__pubsub_t *ps, uvws__topic_t *t, uvws_conn_t *c) {
  size_t i;
  for (i = 0; i < t->nsubs; i++) {
    if (t->subs[i].c != c) continue;
    memmove(t->subs + i, t->subs + i + 1, (t->nsubs - i - 1) * sizeof(*t->subs));
    t->nsubs--;
    census_add(ps->census, t->name, t->name_len, -1);
    break;
  }
  if (t->nsubs == 0) {
    uvws__topic_t **slot = topic_slot(ps, t->name, t->name_len);
    *slot = t->next;
    free(t->subs);
    free(t);
  }
}

int uvws__pubsub_unsubscribe(uvws__pubsub_t *ps, uvws_conn_t *c, const char *topic) {
  size_t n = topic ? strlen(topic) : 0;
  uvws__topic_t *t = n ? *topic_slot(ps, topic, n) : NULL;
  uint32_t i;
  if (t == NULL) return UVWS_ENOROUTE;
  for (i = 0; i < c->ntopics; i++) {
    if (topics_of(c)[i] != t) continue;
    topics_of(c)[i] = topics_of(c)[--c->ntopics];
    topic_remove(ps, t, c);
    return 0;
  }
  return UVWS_ENOROUTE;
}

void uvws__pubsub_conn_closed(uvws__pubsub_t *ps, uvws_conn_t *c) {
  uint32_t i;
  for (i = 0; i < c->ntopics; i++) topic_remove(ps, topics_of(c)[i], c);
  free(c->topics);
  c->topics = NULL;
  c->ntopics = c->topics_cap = 0;
}

void uvws__pubsub_free(uvws__pubsub_t *ps) {
  size_t i;
  for (i = 0; i < UVWS__TOPIC_BUCKETS; i++) {
    while (ps->table[i]) {
      uvws__topic_t *t = ps->table[i];
      ps->table[i] = t->next;
      free(t->subs);
      free(t);
    }
  }
}

int uvws__pubsub_has(uvws__pubsub_t *ps, const char *topic, size_t n) {
  return *topic_slot(ps, topic, n) != NULL;
}

int uvws__pubsub_deliver(uvws__pubsub_t *ps, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq) {
  uvws__topic_t *t = *topic_slot(ps, topic, n);
  sub_t small[64], *subs;
  size_t count, i;
  int delivered = 0;

  if (t == NULL) return 0;
  /* A send may close a subscriber (backpressure), which unsubscribes it:
   * walk a snapshot so no one is skipped or visited twice. */
  count = t->nsubs;
  subs = count <= 64 ? small : malloc(count * sizeof(*subs));
  if (subs == NULL) {
    uvws__log(UVWS_LOG_ERROR, "publish: out of memory, %zu subscribers miss a message", count);
    return UV_ENOMEM;
  }
  memcpy(subs, t->subs, count * sizeof(*subs));
  for (i = 0; i < count; i++)
    if (subs[i].since <= seq && uvws__ws_send_shared(subs[i].c, frame, header_len) == 0) delivered++;
  if (subs != small) free(subs);
  return delivered;
}

int uvws__pubsub_publish(uvws__pubsub_t *ps, const char *topic, uvws_opcode_t op, const void *data,
                         size_t len, int local) {
  size_t n = topic ? strlen(topic) : 0, hl;
  uvws__sbuf_t *frame;
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uint64_t seq;
  int delivered = 0;

  if (n == 0 || (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY)) return UV_EINVAL;
  if (ps->bus == NULL && *topic_slot(ps, topic, n) == NULL) return 0;
  /* Framed once, uncompressed (RSV1 clear is valid on every connection,
   * whatever it negotiated), shared by every receiver's queue, on this
   * loop and on the others. */
  hl = uvws__frame_header_encode(hdr, 1, 0, op, len, NULL);
  frame = uvws__sbuf_new(hl + len);
  if (frame == NULL) return UV_ENOMEM;
  memcpy(frame->data, hdr, hl);
  if (len) memcpy(frame->data + hl, data, len);
  frame->len = hl + len;
  seq = uvws__pubsub_seq(ps, 1);
  if (ps->bus == NULL || !ps->bus->publish(ps->bus->ctx, topic, n, frame, hl, seq, local))
    delivered = uvws__pubsub_deliver(ps, topic, n, frame, hl, seq);
  uvws__sbuf_unref(frame); /* the queues hold their own references */
  return delivered;
}

size_t uvws__pubsub_count(const uvws__pubsub_t *ps, const char *topic) {
  size_t n = topic ? strlen(topic) : 0, count = 0;
  const uvws__topic_t *t;
  census_entry_t *e;
  if (n == 0) return 0;
  if (ps->census == NULL) {
    t = *topic_slot(ps, topic, n);
    return t ? t->nsubs : 0;
  }
  uv_mutex_lock(&ps->census->lock);
  e = *census_slot(ps->census, topic, n);
  if (e) count = e->count;
  uv_mutex_unlock(&ps->census->lock);
  return count;
}

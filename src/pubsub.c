/* Topics: connections subscribe to names, a publish frames the message once
 * and queues that one frame on every subscriber by reference
 * (uvws__conn_send_shared), so fan-out to N receivers costs N queue entries,
 * not N copies. Subscriptions end with the connection. Each loop keeps its
 * own table; a publish also goes to the other loops (group.c) and to Redis
 * (redis.c) when there are any, carrying the same frame. */
#include "internal.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* A subscriber receives what was published after it subscribed: `since` is
 * the publish sequence number when it subscribed. Across threads that is
 * what makes "subscribe, then read the history" exact: a message already
 * on its way to this loop when the subscription began is not delivered
 * again. */
typedef struct {
  uvws_conn_t *c;
  uint64_t since;
} sub_t;

/* A topic and the connections subscribed to it, in subscription order.
 * Owned by the server's table; freed when its last subscriber leaves. */
struct uvws__topic_s {
  uvws__topic_t *next; /* hash chain */
  sub_t *subs;         /* owned array */
  size_t nsubs, cap;
  size_t name_len;
  char name[];
};

static unsigned topic_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h % UVWS__TOPIC_BUCKETS;
}

static uvws__topic_t **topic_slot(uvws_server_t *srv, const char *name, size_t n) {
  uvws__topic_t **p = &srv->topic_table[topic_hash(name, n)];
  for (; *p; p = &(*p)->next)
    if ((*p)->name_len == n && memcmp((*p)->name, name, n) == 0) break;
  return p;
}

static int conn_has(const uvws_conn_t *c, const uvws__topic_t *t) {
  uint32_t i;
  for (i = 0; i < c->ntopics; i++)
    if (c->topics[i] == t) return 1;
  return 0;
}

int uvws_subscribe(uvws_conn_t *c, const char *topic) {
  uvws_server_t *srv = c->srv;
  size_t n = topic ? strlen(topic) : 0;
  uvws__topic_t **slot, *t;

  if (n == 0) return UV_EINVAL;
  if (c->state != UVWS__CONN_WS) return UVWS_ECLOSED;
  slot = topic_slot(srv, topic, n);
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
    if (grown == NULL) {
      if (t->nsubs == 0) { /* just created: undo */
        *slot = t->next;
        free(t);
      }
      return UV_ENOMEM;
    }
    t->subs = grown;
    t->cap = cap;
  }
  t->subs[t->nsubs].c = c;
  t->subs[t->nsubs++].since = uvws__pubsub_seq(srv, 0);
  c->topics[c->ntopics++] = t;
  return 0;
}

/* Removes `c` from `t` (keeping the others in order) and frees an empty
 * topic. */
static void topic_remove(uvws_server_t *srv, uvws__topic_t *t, uvws_conn_t *c) {
  size_t i;
  for (i = 0; i < t->nsubs; i++) {
    if (t->subs[i].c != c) continue;
    memmove(t->subs + i, t->subs + i + 1, (t->nsubs - i - 1) * sizeof(*t->subs));
    t->nsubs--;
    break;
  }
  if (t->nsubs == 0) {
    uvws__topic_t **slot = topic_slot(srv, t->name, t->name_len);
    *slot = t->next;
    free(t->subs);
    free(t);
  }
}

int uvws_unsubscribe(uvws_conn_t *c, const char *topic) {
  size_t n = topic ? strlen(topic) : 0;
  uvws__topic_t *t = n ? *topic_slot(c->srv, topic, n) : NULL;
  uint32_t i;
  if (t == NULL) return UVWS_ENOROUTE;
  for (i = 0; i < c->ntopics; i++) {
    if (c->topics[i] != t) continue;
    c->topics[i] = c->topics[--c->ntopics];
    topic_remove(c->srv, t, c);
    return 0;
  }
  return UVWS_ENOROUTE;
}

void uvws__pubsub_conn_closed(uvws_conn_t *c) {
  uint32_t i;
  for (i = 0; i < c->ntopics; i++) topic_remove(c->srv, c->topics[i], c);
  free(c->topics);
  c->topics = NULL;
  c->ntopics = c->topics_cap = 0;
}

void uvws__pubsub_free(uvws_server_t *srv) {
  size_t i;
  for (i = 0; i < UVWS__TOPIC_BUCKETS; i++) {
    while (srv->topic_table[i]) {
      uvws__topic_t *t = srv->topic_table[i];
      srv->topic_table[i] = t->next;
      free(t->subs);
      free(t);
    }
  }
}

int uvws__pubsub_has(uvws_server_t *srv, const char *topic, size_t n) {
  return *topic_slot(srv, topic, n) != NULL;
}

int uvws__pubsub_deliver(uvws_server_t *srv, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq) {
  uvws__topic_t *t = *topic_slot(srv, topic, n);
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
    if (subs[i].since <= seq && uvws__conn_send_shared(subs[i].c, frame, header_len) == 0) delivered++;
  if (subs != small) free(subs);
  return delivered;
}

int uvws_publish(uvws_server_t *srv, const char *topic, uvws_opcode_t op, const void *data, size_t len) {
  size_t n = topic ? strlen(topic) : 0, hl;
  uvws__sbuf_t *frame;
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uint64_t seq;
  int delivered, elsewhere = srv->group != NULL || uvws__group_primary(srv)->redis != NULL;

  if (n == 0 || (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY)) return UV_EINVAL;
  if (!elsewhere && *topic_slot(srv, topic, n) == NULL) return 0;
  /* Framed once, uncompressed (RSV1 clear is valid on every connection,
   * whatever it negotiated), shared by every receiver's queue, on this
   * loop and on the others. */
  hl = uvws__frame_header_encode(hdr, 1, 0, op, len, NULL);
  frame = uvws__sbuf_new(hl + len);
  if (frame == NULL) return UV_ENOMEM;
  memcpy(frame->data, hdr, hl);
  if (len) memcpy(frame->data + hl, data, len);
  frame->len = hl + len;
  seq = uvws__pubsub_seq(srv, 1);
  /* With threads even this loop's subscribers get it through the inbox:
   * every inbox then holds publishes in the order they were made (when the
   * publishers take turns, as /chat's lock makes them), so all subscribers
   * see one order, not "my loop's first". */
  delivered = srv->group ? 0 : uvws__pubsub_deliver(srv, topic, n, frame, hl, seq);
  if (srv->index == 0 && srv->redis) uvws__redis_publish(srv, topic, n, frame, hl);
  if (srv->group)
    uvws__group_forward(srv, topic, n, frame, hl, seq, srv->index != 0 && uvws__group_primary(srv)->redis);
  uvws__sbuf_unref(frame); /* the queues hold their own references */
  return delivered;
}

void uvws__pubsub_from_remote(uvws_server_t *srv, const char *topic, size_t n, uvws__sbuf_t *frame,
                              size_t header_len) {
  uint64_t seq = uvws__pubsub_seq(srv, 1);
  if (srv->group) uvws__group_forward(srv, topic, n, frame, header_len, seq, 0);
  else uvws__pubsub_deliver(srv, topic, n, frame, header_len, seq);
}

int uvws_server_on_remote(uvws_server_t *srv, uvws_remote_cb cb, void *user) {
  if (srv->opts.redis == NULL) return UVWS_ESTATE;
  srv->on_remote = cb;
  srv->on_remote_user = user;
  return 0;
}

size_t uvws_topic_subscribers(const uvws_server_t *srv, const char *topic) {
  size_t n = topic ? strlen(topic) : 0;
  const uvws__topic_t *t;
  if (n == 0) return 0;
  t = *topic_slot((uvws_server_t *)(uintptr_t)srv, topic, n);
  return t ? t->nsubs : 0;
}

/* One server on several threads (options.threads > 1).
 *
 * The server the user created is the primary: it runs on the user's loop.
 * uvws_server_start() clones it into threads - 1 workers, each with its own
 * loop, thread, listening sockets (SO_REUSEPORT on the same port: the kernel
 * spreads new connections), connections, topics and buffers. Loops share
 * nothing on the hot path; they talk only through each server's inbox, a
 * lock-free queue (xq.c) drained when uv_async wakes the owner:
 *   PUBLISH   a frame published on another loop, for this loop's subscribers
 *   APPEND    worker -> primary: a sequenced publish for Redis
 *   RANGE     worker -> primary: read a topic's log in Redis
 *   RANGE_DONE primary -> worker: the entries read (packed in `frame`)
 *   SHUTDOWN  primary -> worker: start the graceful shutdown
 *   STOPPED   worker -> primary: my connections are gone
 *   EXIT      primary -> worker: close your last handle (after every worker
 *             stopped, so no one posts to a closed inbox)
 *   TLS       primary -> worker: a reloaded certificate
 *   PRESENCE  worker -> primary: a presence join or leave for Redis
 *   PRESENCE_DONE primary -> worker: the names a join asked for
 * The only locks are the transport's (per-address counts, at accept and
 * close) and the subscriber census's (at subscribe and unsubscribe). */
#include "runtime/runtime.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

enum { XM_PUBLISH, XM_APPEND, XM_RANGE, XM_RANGE_DONE, XM_SHUTDOWN, XM_STOPPED, XM_EXIT, XM_TLS, XM_PRESENCE,
       XM_PRESENCE_DONE };

/* A message between loops. Allocated by the sender, freed by the receiver;
 * a PUBLISH holds one cross-thread reference on its frame. */
typedef struct {
  uvws__xnode_t node; /* first: the queue links through it */
  int kind;
  int to_redis;       /* PUBLISH to the primary: also send it to Redis */
  uvws__sbuf_t *frame;
  size_t header_len;
  uint64_t seq;       /* PUBLISH: its number (see pubsub.c); APPEND: entries kept */
  unsigned dest;
  uvws__tls_conf_t *conf;
  uint8_t preallocated; /* a control message made at start: never freed on receipt */
  uvws_range_cb range_cb; /* RANGE, RANGE_DONE: the asker's callback and pointer */
  void *user;
  size_t count;           /* RANGE: entries wanted; RANGE_DONE: entries packed */
  int status;             /* RANGE_DONE, PRESENCE_DONE; PRESENCE: 1 join, 0 leave */
  uvws_presence_cb pres_cb; /* PRESENCE, PRESENCE_DONE */
  size_t topic_len;
  char topic[];
} xmsg_t;

/* The control messages each loop receives or sends once (SHUTDOWN, STOPPED,
 * EXIT) are allocated at start, so stopping never depends on malloc. */
enum { CTL_SHUTDOWN, CTL_STOPPED, CTL_EXIT, CTL_COUNT };

struct uvws__group_s {
  uvws__group_ops_t ops;  /* the facade's: how a worker is made, started, freed */
  uvws_server_t **srv;   /* [0] is the primary (the user's); the rest are owned */
  unsigned n;            /* servers created so far */
  uv_thread_t *threads;  /* threads[i] runs srv[i]'s loop, i >= 1 */
  unsigned nthreads;     /* threads started (1..nthreads-1 valid) */
  _Atomic uint64_t seq;  /* publish numbers, across loops */
  xmsg_t *(*ctl)[CTL_COUNT]; /* ctl[i]: server i's control messages */
  unsigned nctl;
  int shutdown_posted;   /* SHUTDOWN went to the workers */
  unsigned running;      /* primary's loop only: workers not yet STOPPED */
  atomic_int exiting;    /* EXIT sent: nobody may post any more */
};

static void post(uvws_server_t *to, xmsg_t *m) {
  if (uvws__xq_push(&to->inbox, &m->node)) uv_async_send(&to->wake);
}

static xmsg_t *msg_new(int kind, size_t topic_len) {
  xmsg_t *m = calloc(1, sizeof(*m) + topic_len + 1);
  if (m) m->kind = kind;
  return m;
}

static void msg_free(xmsg_t *m) {
  if (m->frame) uvws__sbuf_xunref(m->frame);
  if (m->conf) uvws__tls_conf_unref(m->conf);
  m->frame = NULL;
  m->conf = NULL;
  if (!m->preallocated) free(m);
}

/* ---- the inbox ------------------------------------------------------------ */

static void on_wake_closed(uv_handle_t *h) {
  uvws_server_t *srv = h->data;
  srv->wake_open = 0;
  if (srv->index == 0) uvws__rt_maybe_done(srv);
}

static void worker_stopped(uvws_server_t *srv) {
  srv->stopped = 1;
  if (atomic_load_explicit(&srv->exit_when_stopped, memory_order_relaxed)) { /* uvws_server_free without a shutdown */
    uv_close((uv_handle_t *)&srv->wake, on_wake_closed);
    return;
  }
  post(srv->group->srv[0], srv->group->ctl[srv->index][CTL_STOPPED]);
}

static void primary_worker_stopped(uvws_server_t *primary) {
  uvws__group_t *g = primary->group;
  unsigned i;
  if (--g->running > 0) return;
  /* Every worker is idle: nobody publishes any more. */
  atomic_store_explicit(&g->exiting, 1, memory_order_relaxed);
  for (i = 1; i < g->n; i++) post(g->srv[i], g->ctl[i][CTL_EXIT]);
  uv_close((uv_handle_t *)&primary->wake, on_wake_closed);
}

/* Entries cross packed in one buffer: seq (8 bytes), length (8), text. */
static void range_answer(uvws_server_t *srv, xmsg_t *m) {
  uvws_seq_entry_t *e = m->count ? calloc(m->count, sizeof(*e)) : NULL;
  const char *p = m->frame ? m->frame->data : NULL;
  size_t i, n = e ? m->count : 0;
  for (i = 0; i < n; i++) {
    uint64_t len;
    memcpy(&e[i].seq, p, 8);
    memcpy(&len, p + 8, 8);
    e[i].data = p + 16;
    e[i].len = (size_t)len;
    p += 16 + len;
  }
  m->range_cb(srv, m->count && e == NULL ? UV_ENOMEM : m->status, e, n, m->user);
  free(e);
}

/* Strings cross packed in one buffer, each followed by its NUL. */
static const char *next_str(const char **p, const char *end) {
  const char *s = *p;
  const char *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
  if (z == NULL) return NULL;
  *p = z + 1;
  return s;
}

/* A worker's presence join or leave, on the primary: name, text1, text2. */
static void presence_ask(uvws_server_t *p, xmsg_t *m) {
  const char *q = m->frame->data, *end = q + m->frame->len, *name, *t1, *t2;
  int r = UV_EINVAL;
  name = next_str(&q, end);
  t1 = next_str(&q, end);
  t2 = next_str(&q, end);
  if (name && t1 && t2)
    r = uvws__rt_presence_for(p, p->group->srv[m->dest], m->status, m->topic, m->topic_len, name, t1,
                              m->status ? t2 : NULL, m->pres_cb, m->user);
  if (r != 0 && m->status)
    uvws__log(UVWS_LOG_WARN, "redis: a presence join on %s was not sent (Redis unreachable)", m->topic);
  if (r != 0 && m->pres_cb)
    uvws__group_post_presence_done(p->group->srv[m->dest], m->pres_cb, m->user, UVWS_EUNAVAILABLE, NULL, 0);
}

static void presence_answer(uvws_server_t *srv, xmsg_t *m) {
  const char **names = m->count ? calloc(m->count, sizeof(*names)) : NULL;
  const char *q = m->frame ? m->frame->data : NULL, *end = q ? q + m->frame->len : NULL;
  size_t n = 0;
  while (names && n < m->count && (names[n] = next_str(&q, end)) != NULL) n++;
  m->pres_cb(srv, m->count && names == NULL ? UV_ENOMEM : m->status, names, n, m->user);
  free(names);
}

static void handle(uvws_server_t *srv, xmsg_t *m) {
  switch (m->kind) {
    case XM_PUBLISH:
      if (m->to_redis) uvws__redis_publish(srv->redis, m->topic, m->topic_len, m->frame, m->header_len);
      if (uvws__pubsub_has(&srv->ps, m->topic, m->topic_len)) {
        /* This loop counts its receivers on a view of its own; the view
         * takes over the message's cross-thread reference. */
        uvws__sbuf_t *view = uvws__sbuf_view(m->frame);
        if (view == NULL) {
          uvws__log(UVWS_LOG_ERROR, "publish: out of memory, thread %u misses a message", srv->index);
          break;
        }
        m->frame = NULL;
        uvws__pubsub_deliver(&srv->ps, m->topic, m->topic_len, view, m->header_len, m->seq);
        uvws__sbuf_unref(view);
      }
      break;
    case XM_APPEND:
      /* Redis may have gone since the worker looked: then the line is
       * not sent, as if it had seen the link down (never acknowledged). */
      if (uvws__redis_append(srv->redis, m->topic, m->topic_len, (const char *)m->frame->data, m->header_len,
                             (const char *)m->frame->data + m->header_len, m->frame->len - m->header_len,
                             (size_t)m->seq) != 0)
        uvws__log(UVWS_LOG_WARN, "redis: a sequenced publish on %s was not sent (Redis unreachable)", m->topic);
      break;
    case XM_RANGE:
      uvws__rt_range_for(srv, srv->group->srv[m->dest], m->topic, m->topic_len, m->seq, m->count, m->range_cb,
                         m->user);
      break;
    case XM_RANGE_DONE:
      range_answer(srv, m);
      break;
    case XM_PRESENCE:
      presence_ask(srv, m);
      break;
    case XM_PRESENCE_DONE:
      presence_answer(srv, m);
      break;
    case XM_SHUTDOWN:
      uvws_server_shutdown(srv, worker_stopped);
      break;
    case XM_STOPPED:
      primary_worker_stopped(srv);
      break;
    case XM_EXIT:
      if (srv->wake_open && !uv_is_closing((uv_handle_t *)&srv->wake))
        uv_close((uv_handle_t *)&srv->wake, on_wake_closed);
      break;
    case XM_TLS:
      uvws__tls_conf_unref(srv->net.tls);
      srv->net.tls = m->conf;
      m->conf = NULL;
      break;
  }
  msg_free(m);
}

static void on_wake(uv_async_t *a) {
  uvws_server_t *srv = a->data;
  uvws__xnode_t *n = uvws__xq_take(&srv->inbox), *next;
  for (; n; n = next) {
    next = n->next;
    handle(srv, (xmsg_t *)n);
  }
}

static int inbox_open(uvws_server_t *srv) {
  int r;
  uvws__xq_init(&srv->inbox);
  r = uv_async_init(srv->loop, &srv->wake, on_wake);
  if (r < 0) return r;
  srv->wake.data = srv;
  srv->wake_open = 1;
  return 0;
}

static void inbox_drain(uvws_server_t *srv) {
  uvws__xnode_t *n = uvws__xq_take(&srv->inbox), *next;
  for (; n; n = next) {
    next = n->next;
    msg_free((xmsg_t *)n);
  }
}

/* ---- publishing across loops ---------------------------------------------- */

/* Posts the frame to every loop's inbox, the publisher's own included. */
void uvws__group_forward(uvws_server_t *from, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq, int to_redis) {
  uvws__group_t *g = from->group;
  unsigned i, others = 0;
  xmsg_t *m[UVWS__MAX_THREADS];

  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return;
  for (i = 0; i < g->n; i++) {
    if ((m[others] = msg_new(XM_PUBLISH, n)) == NULL) {
      uvws__log(UVWS_LOG_ERROR, "publish: out of memory, thread %u misses a message", i);
      continue;
    }
    memcpy(m[others]->topic, topic, n);
    m[others]->topic_len = n;
    m[others]->frame = frame;
    m[others]->header_len = header_len;
    m[others]->seq = seq;
    m[others]->to_redis = to_redis && i == 0;
    m[others]->dest = i;
    others++;
  }
  if (others == 0) return;
  /* Every reference exists before the first receiver can drop one. */
  uvws__sbuf_xref(frame, others);
  for (i = 0; i < others; i++) post(g->srv[m[i]->dest], m[i]);
}

int uvws__group_post_append(uvws_server_t *from, const char *topic, size_t n, uvws__sbuf_t *both,
                            size_t split, size_t keep) {
  uvws__group_t *g = from->group;
  xmsg_t *m;
  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return UVWS_EUNAVAILABLE;
  if ((m = msg_new(XM_APPEND, n)) == NULL) return UV_ENOMEM;
  memcpy(m->topic, topic, n);
  m->topic_len = n;
  m->frame = both;
  m->header_len = split;
  m->seq = keep;
  uvws__sbuf_xref(both, 1);
  post(g->srv[0], m);
  return 0;
}

int uvws__group_post_range(uvws_server_t *from, const char *topic, size_t n, uint64_t after, size_t count,
                           uvws_range_cb cb, void *user) {
  uvws__group_t *g = from->group;
  xmsg_t *m;
  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return UVWS_EUNAVAILABLE;
  if ((m = msg_new(XM_RANGE, n)) == NULL) return UV_ENOMEM;
  memcpy(m->topic, topic, n);
  m->topic_len = n;
  m->seq = after;
  m->count = count;
  m->range_cb = cb;
  m->user = user;
  m->dest = from->index;
  post(g->srv[0], m);
  return 0;
}

void uvws__group_post_range_done(uvws_server_t *to, uvws_range_cb cb, void *user, int status,
                                 const uvws_seq_entry_t *entries, size_t n) {
  uvws__group_t *g = to->group;
  xmsg_t *m;
  size_t i, size = 0;
  char *p;
  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return;
  if ((m = msg_new(XM_RANGE_DONE, 0)) == NULL) {
    uvws__log(UVWS_LOG_ERROR, "redis: out of memory, thread %u misses a log read", to->index);
    return;
  }
  m->range_cb = cb, m->user = user, m->status = status;
  for (i = 0; i < n; i++) size += 16 + entries[i].len;
  if (n && (m->frame = uvws__sbuf_new(size)) == NULL) {
    m->status = UV_ENOMEM;
  } else if (n) {
    for (i = 0, p = m->frame->data; i < n; i++) {
      uint64_t len = entries[i].len;
      memcpy(p, &entries[i].seq, 8);
      memcpy(p + 8, &len, 8);
      memcpy(p + 16, entries[i].data, entries[i].len);
      p += 16 + len;
    }
    m->frame->len = size;
    m->count = n;
    uvws__sbuf_xref(m->frame, 1);
    uvws__sbuf_unref(m->frame); /* the message holds the cross-thread reference alone */
  }
  post(to, m);
}

static uvws__sbuf_t *pack(const char *const *s, size_t n) {
  size_t size = 0, i, l;
  uvws__sbuf_t *b;
  char *p;
  for (i = 0; i < n; i++) size += strlen(s[i]) + 1;
  if ((b = uvws__sbuf_new(size ? size : 1)) == NULL) return NULL;
  for (i = 0, p = b->data; i < n; i++, p += l) {
    l = strlen(s[i]) + 1;
    memcpy(p, s[i], l);
  }
  b->len = size;
  uvws__sbuf_xref(b, 1);
  uvws__sbuf_unref(b); /* the message holds the cross-thread reference alone */
  return b;
}

int uvws__group_post_presence(uvws_server_t *from, int join, const char *topic, const char *name,
                              const char *text1, const char *text2, uvws_presence_cb cb, void *user) {
  uvws__group_t *g = from->group;
  const char *s[3] = {name, text1, text2 ? text2 : ""};
  size_t n = strlen(topic);
  xmsg_t *m;
  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return UVWS_EUNAVAILABLE;
  if ((m = msg_new(XM_PRESENCE, n)) == NULL) return UV_ENOMEM;
  if ((m->frame = pack(s, 3)) == NULL) {
    free(m);
    return UV_ENOMEM;
  }
  memcpy(m->topic, topic, n);
  m->topic_len = n;
  m->status = join;
  m->pres_cb = cb, m->user = user;
  m->dest = from->index;
  post(g->srv[0], m);
  return 0;
}

void uvws__group_post_presence_done(uvws_server_t *to, uvws_presence_cb cb, void *user, int status,
                                    const char *const *names, size_t n) {
  uvws__group_t *g = to->group;
  xmsg_t *m;
  if (atomic_load_explicit(&g->exiting, memory_order_relaxed)) return;
  if ((m = msg_new(XM_PRESENCE_DONE, 0)) == NULL) {
    uvws__log(UVWS_LOG_ERROR, "redis: out of memory, thread %u misses a presence list", to->index);
    return;
  }
  m->pres_cb = cb, m->user = user, m->status = status;
  if (n && (m->frame = pack(names, n)) == NULL) m->status = UV_ENOMEM;
  else m->count = n;
  post(to, m);
}

/* ---- start ------------------------------------------------------------------ */

static void thread_main(void *arg) {
  uvws_server_t *srv = arg;
  uv_run(srv->loop, UV_RUN_DEFAULT);
  uvws__wq_cache_drain();
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* A worker that never ran: close its handles on the caller's thread. */
static void worker_discard(uvws_server_t *w) {
  uv_loop_t *loop = w->loop;
  w->shutting_down = 1;
  uv_walk(loop, close_any, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  inbox_drain(w);
  w->group->ops.destroy(w);
}

int uvws__group_start(uvws_server_t *p, const uvws__group_ops_t *ops) {
  unsigned n = p->opts.threads, i;
  uvws__group_t *g;
  int r;

  if (n > UVWS__MAX_THREADS) {
    uvws__log(UVWS_LOG_ERROR, "threads: at most %d", UVWS__MAX_THREADS);
    return UV_EINVAL;
  }
  if (p->net.tls && !uvws__tls_thread_safe()) {
    uvws__log(UVWS_LOG_ERROR, "TLS on several threads needs mbedTLS built with MBEDTLS_THREADING_C");
    return UV_ENOTSUP;
  }
  g = calloc(1, sizeof(*g));
  if (g == NULL) return UV_ENOMEM;
  g->srv = calloc(n, sizeof(*g->srv));
  g->threads = calloc(n, sizeof(*g->threads));
  g->ctl = calloc(n, sizeof(*g->ctl));
  if (g->srv == NULL || g->threads == NULL || g->ctl == NULL) {
    free(g->srv);
    free(g->threads);
    free(g->ctl);
    free(g);
    return UV_ENOMEM;
  }
  atomic_init(&g->seq, p->ps.seq);
  atomic_init(&g->exiting, 0);
  g->srv[0] = p;
  g->n = 1;
  g->nctl = n;
  g->ops = *ops;
  p->group = g; /* from here on uvws_server_free cleans up whatever fails */
  p->index = 0;
  for (i = 0; i < n; i++) {
    static const int kinds[CTL_COUNT] = {XM_SHUTDOWN, XM_STOPPED, XM_EXIT};
    int k;
    for (k = 0; k < CTL_COUNT; k++) {
      if ((g->ctl[i][k] = msg_new(kinds[k], 0)) == NULL) return UV_ENOMEM;
      g->ctl[i][k]->preallocated = 1;
    }
  }
  /* Workers are built and bound before any thread runs (and before the
   * primary has a handle on the caller's loop), so a failure (a port
   * taken, no memory) is reported here, synchronously, and leaves nothing
   * behind once uvws_server_free runs. */
  for (i = 1; i < n; i++) {
    uvws_server_t *w;
    if ((r = g->ops.clone(p, i, &w)) != 0) return r;
    g->srv[g->n++] = w;
    w->group = g;
    if ((r = inbox_open(w)) != 0) return r;
    if ((r = g->ops.start(w)) != 0) return r;
  }
  return 0;
}

/* Once the primary is ready: its inbox, then the workers' threads. */
int uvws__group_run(uvws_server_t *p) {
  uvws__group_t *g = p->group;
  unsigned n = g->nctl, i;
  int r;
  if ((r = inbox_open(p)) != 0) return r;
  for (i = 1; i < n; i++) {
    if ((r = uv_thread_create(&g->threads[i], thread_main, g->srv[i])) != 0) return r;
    g->nthreads = i + 1;
    g->running++;
  }
  uvws__log(UVWS_LOG_INFO, "%u threads, one event loop each, accepting on the same port", n);
  return 0;
}

/* ---- shutdown and free -------------------------------------------------------- */

void uvws__group_shutdown(uvws_server_t *p) {
  unsigned i;
  p->group->shutdown_posted = 1;
  for (i = 1; i < p->group->nthreads; i++) post(p->group->srv[i], p->group->ctl[i][CTL_SHUTDOWN]);
  if (p->group->running == 0 && !atomic_load_explicit(&p->group->exiting, memory_order_relaxed)) { /* no worker ever ran */
    atomic_store_explicit(&p->group->exiting, 1, memory_order_relaxed);
    uv_close((uv_handle_t *)&p->wake, on_wake_closed);
  }
}

int uvws__group_busy(const uvws_server_t *p) {
  return p->group && p->index == 0 && (p->group->running > 0 || p->wake_open);
}

void uvws__group_free(uvws_server_t *p) {
  uvws__group_t *g = p->group;
  unsigned i;
  if (g == NULL || g->srv[0] != p) return; /* workers are freed from here */
  /* Freed without any shutdown: stop the workers the short way. (Freed in
   * the middle of one is not supported: uvws.h asks for the callback.) */
  if (g->running > 0 && !g->shutdown_posted) {
    for (i = 1; i < g->nthreads; i++) {
      atomic_store_explicit(&g->srv[i]->exit_when_stopped, 1, memory_order_relaxed);
      post(g->srv[i], g->ctl[i][CTL_SHUTDOWN]);
    }
  }
  for (i = 1; i < g->nthreads; i++) uv_thread_join(&g->threads[i]);
  for (i = 1; i < g->n; i++) {
    uvws_server_t *w = g->srv[i];
    if (i >= g->nthreads) { /* built but never ran */
      worker_discard(w);
      continue;
    }
    inbox_drain(w);
    g->ops.destroy(w);
  }
  if (p->wake_open) { /* never shut down: let the close run */
    uv_close((uv_handle_t *)&p->wake, NULL);
    p->wake_open = 0;
  }
  inbox_drain(p);
  for (i = 0; i < g->nctl; i++) {
    int k;
    for (k = 0; k < CTL_COUNT; k++) free(g->ctl[i][k]);
  }
  free(g->ctl);
  free(g->srv);
  free(g->threads);
  free(g);
  p->group = NULL;
}

/* ---- shared state ----------------------------------------------------------- */

uint64_t uvws__group_seq(uvws_server_t *srv, int next) {
  if (srv->group == NULL) return next ? srv->ps.seq++ : srv->ps.seq;
  if (next) return atomic_fetch_add_explicit(&srv->group->seq, 1, memory_order_relaxed);
  return atomic_load_explicit(&srv->group->seq, memory_order_relaxed);
}

unsigned uvws__group_size(const uvws_server_t *srv) { return srv->group ? srv->group->n : 1; }

const uvws_server_t *uvws__group_member(const uvws_server_t *srv, unsigned i) {
  return srv->group ? srv->group->srv[i] : srv;
}

void uvws__group_tls(uvws_server_t *p, uvws__tls_conf_t *conf) {
  unsigned i;
  if (p->group == NULL) return;
  for (i = 1; i < p->group->n; i++) {
    xmsg_t *m = msg_new(XM_TLS, 0);
    if (m == NULL) {
      uvws__log(UVWS_LOG_ERROR, "TLS reload: out of memory; thread %u keeps the old certificate", i);
      continue;
    }
    uvws__tls_conf_ref(conf);
    m->conf = conf;
    post(p->group->srv[i], m);
  }
}

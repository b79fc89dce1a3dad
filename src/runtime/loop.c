/* One loop's runtime: it wires the layers' per-loop contexts together
 * (the transport's accept goes to an HTTP session, the HTTP upgrade to a
 * WebSocket session, a session's end to pub/sub, publishes to the bus),
 * and runs the sweep (deadlines, loop lag), the flusher and shutdown. */
#include "runtime/runtime.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* ---- the layers' hooks ---------------------------------------------------------- */

static int on_accept(void *ctx, uvws__stream_t *s, int refuse) {
  uvws_server_t *srv = ctx;
  return uvws__http_open(&srv->http, s, refuse);
}

static void on_freed(void *ctx) { uvws__rt_maybe_done(ctx); }

static const uvws__net_hooks_t net_hooks = {on_accept, on_freed};

const uvws__route_t *uvws__rt_route(const uvws_server_t *srv, const char *path, size_t len) {
  size_t i;
  for (i = 0; i < srv->nroutes; i++) {
    const uvws__route_t *r = &srv->routes[i];
    if (r->path_len == len && memcmp(r->path, path, len) == 0) return r;
  }
  return NULL;
}

static const uvws__route_t *http_route(void *ctx, const char *path, size_t len) {
  return uvws__rt_route(ctx, path, len);
}

static int http_upgrade(void *ctx, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest, size_t rest_len) {
  uvws_server_t *srv = ctx;
  return uvws__ws_open(&srv->ws, s, o, rest, rest_len);
}

static void http_metrics(void *ctx, uvws__buf_t *out) {
  const uvws_server_t *srv = ctx, *loops[UVWS__MAX_THREADS];
  unsigned n = uvws__group_size(srv), i;
  for (i = 0; i < n; i++) loops[i] = uvws__group_member(srv, i);
  uvws__metrics_render(loops, n, srv, out);
}

static size_t http_routes(void *ctx, const uvws__route_t **table) {
  const uvws_server_t *srv = ctx;
  *table = srv->routes;
  return srv->nroutes;
}

static int http_state(void *ctx) {
  uvws_server_t *srv = ctx;
  if (srv->shutting_down) return UVWS__HTTP_SHUTTING_DOWN;
  return atomic_load_explicit(&uvws__rt_primary(srv)->draining, memory_order_relaxed) ? UVWS__HTTP_DRAINING
                                                                                      : UVWS__HTTP_SERVING;
}

static void session_closed(void *ctx, uvws_conn_t *c) {
  uvws_server_t *srv = ctx;
  uvws__pubsub_conn_closed(&srv->ps, c);
}

/* The bus: with threads every loop delivers from its inbox, the
 * publisher's own included, so publishes made in turn reach every
 * subscriber in one order; Redis gets it from the primary. */
static int bus_publish(void *ctx, const char *topic, size_t n, uvws__sbuf_t *frame, size_t header_len,
                       uint64_t seq, int local) {
  uvws_server_t *srv = ctx, *p = uvws__rt_primary(srv);
  int to_redis = p->redis != NULL && !local;
  if (srv->index == 0 && to_redis) uvws__redis_publish(p->redis, topic, n, frame, header_len);
  if (srv->group == NULL) return 0;
  uvws__group_forward(srv, topic, n, frame, header_len, seq, srv->index != 0 && to_redis);
  return 1;
}

static uint64_t bus_seq(void *ctx, int next) { return uvws__group_seq(ctx, next); }

/* Another instance published: the application hears it first, then every
 * loop's subscribers get it (not back to Redis). */
static void redis_message(void *ctx, const char *topic, size_t n, uvws_opcode_t op, const char *data,
                          size_t len, uvws__sbuf_t *frame, size_t header_len) {
  uvws_server_t *srv = ctx;
  uint64_t seq;
  if (srv->on_remote) srv->on_remote(srv, topic, n, op, data, len, srv->on_remote_user);
  seq = uvws__group_seq(srv, 1);
  if (srv->group) uvws__group_forward(srv, topic, n, frame, header_len, seq, 0);
  else uvws__pubsub_deliver(&srv->ps, topic, n, frame, header_len, seq);
}

/* A sequenced message, any instance's: the application delivers it. */
static void redis_sequenced(void *ctx, const char *topic, size_t n, uint64_t seq, const char *data, size_t len) {
  uvws_server_t *srv = ctx;
  if (srv->on_sequenced) srv->on_sequenced(srv, topic, n, seq, data, len, srv->on_sequenced_user);
}

static void redis_state(void *ctx, int up) {
  uvws_server_t *srv = ctx;
  atomic_store_explicit(&srv->redis_up, up, memory_order_release);
  if (srv->on_redis_state) srv->on_redis_state(srv, up, srv->on_redis_state_user);
}

int uvws__rt_append(uvws_server_t *srv, const char *topic, const char *head, size_t head_len,
                    const char *tail, size_t tail_len, size_t keep) {
  uvws_server_t *p = uvws__rt_primary(srv);
  size_t n = strlen(topic);
  uvws__sbuf_t *both;
  int r;
  if (p->redis == NULL) return UVWS_ESTATE;
  if (!atomic_load_explicit(&p->redis_up, memory_order_acquire)) return UVWS_EUNAVAILABLE;
  if (srv->index == 0) return uvws__redis_append(p->redis, topic, n, head, head_len, tail, tail_len, keep);
  /* A worker hands it to the primary, whose loop owns the link. */
  if ((both = uvws__sbuf_new(head_len + tail_len)) == NULL) return UV_ENOMEM;
  memcpy(both->data, head, head_len);
  memcpy(both->data + head_len, tail, tail_len);
  both->len = head_len + tail_len;
  r = uvws__group_post_append(srv, topic, n, both, head_len, keep);
  uvws__sbuf_unref(both);
  return r;
}

/* A log read under way: who asked, on which loop. */
typedef struct {
  uvws_server_t *dest;
  uvws_range_cb cb;
  void *user;
} range_ctx_t;

static void range_done(void *ctx, int status, const uvws_seq_entry_t *entries, size_t n) {
  range_ctx_t *rc = ctx;
  if (rc->dest->index == 0) rc->cb(rc->dest, status, entries, n, rc->user);
  else uvws__group_post_range_done(rc->dest, rc->cb, rc->user, status, entries, n);
  free(rc);
}

void uvws__rt_range_for(uvws_server_t *p, uvws_server_t *dest, const char *topic, size_t n, uint64_t after,
                        size_t count, uvws_range_cb cb, void *user) {
  range_ctx_t *rc = malloc(sizeof(*rc));
  int r = UV_ENOMEM;
  if (rc) {
    rc->dest = dest, rc->cb = cb, rc->user = user;
    r = uvws__redis_range(p->redis, topic, n, after, count, range_done, rc);
  }
  if (r == 0) return;
  free(rc);
  /* Asked from a worker: it already returned 0, so the answer is a failure. */
  if (dest->index == 0) cb(dest, UVWS_EUNAVAILABLE, NULL, 0, user);
  else uvws__group_post_range_done(dest, cb, user, UVWS_EUNAVAILABLE, NULL, 0);
}

int uvws__rt_range(uvws_server_t *srv, const char *topic, uint64_t after, size_t count, uvws_range_cb cb,
                   void *user) {
  uvws_server_t *p = uvws__rt_primary(srv);
  range_ctx_t *rc;
  int r;
  if (p->redis == NULL) return UVWS_ESTATE;
  if (!atomic_load_explicit(&p->redis_up, memory_order_acquire)) return UVWS_EUNAVAILABLE;
  if (srv->index != 0) return uvws__group_post_range(srv, topic, strlen(topic), after, count, cb, user);
  if ((rc = malloc(sizeof(*rc))) == NULL) return UV_ENOMEM;
  rc->dest = srv, rc->cb = cb, rc->user = user;
  if ((r = uvws__redis_range(p->redis, topic, strlen(topic), after, count, range_done, rc)) != 0) free(rc);
  return r;
}

/* A presence join waiting for its names: who asked, on which loop. */
typedef struct {
  uvws_server_t *dest;
  uvws_presence_cb cb;
  void *user;
} pres_ctx_t;

static void presence_done(void *ctx, int status, const char *const *names, size_t n) {
  pres_ctx_t *pc = ctx;
  if (pc->dest->index == 0) pc->cb(pc->dest, status, names, n, pc->user);
  else uvws__group_post_presence_done(pc->dest, pc->cb, pc->user, status, names, n);
  free(pc);
}

int uvws__rt_presence_for(uvws_server_t *p, uvws_server_t *dest, int join, const char *topic, size_t n,
                          const char *name, const char *text1, const char *text2, uvws_presence_cb cb,
                          void *user) {
  pres_ctx_t *pc = NULL;
  int r;
  if (!join) return uvws__presence_leave(p->redis, topic, n, name, text1);
  if (cb) {
    if ((pc = malloc(sizeof(*pc))) == NULL) return UV_ENOMEM;
    pc->dest = dest, pc->cb = cb, pc->user = user;
  }
  r = uvws__presence_join(p->redis, topic, n, name, text1, text2, join == 2, pc ? presence_done : NULL, pc);
  if (r != 0) free(pc);
  return r;
}

int uvws__rt_presence(uvws_server_t *srv, int join, const char *topic, const char *name, const char *text1,
                      const char *text2, uvws_presence_cb cb, void *user) {
  uvws_server_t *p = uvws__rt_primary(srv);
  if (p->redis == NULL) return UVWS_ESTATE;
  /* A leave goes to the primary even while Redis is down: it keeps it. */
  if (join && !atomic_load_explicit(&p->redis_up, memory_order_acquire)) return UVWS_EUNAVAILABLE;
  if (srv->index != 0) return uvws__group_post_presence(srv, join, topic, name, text1, text2, cb, user);
  return uvws__rt_presence_for(p, srv, join, topic, strlen(topic), name, text1, text2, cb, user);
}

static void redis_wills(void *ctx, uvws__wills_t *w) {
  uvws_server_t *srv = ctx;
  if (srv->on_wills) srv->on_wills(srv, w, srv->on_wills_user);
}

static void redis_buried(void *ctx) {
  uvws_server_t *srv = ctx;
  if (srv->on_buried) srv->on_buried(srv, srv->on_wills_user);
}

static void redis_stopped(void *ctx) { uvws__rt_maybe_done(ctx); }

static void render_redis(const void *ctx, uvws__buf_t *out) { uvws__redis_metrics(ctx, out); }

int uvws__rt_redis_start(uvws_server_t *p) {
  uvws__redis_hooks_t hooks;
  int r;
  memset(&hooks, 0, sizeof(hooks));
  hooks.on_message = redis_message, hooks.on_sequenced = redis_sequenced;
  hooks.on_state = redis_state, hooks.on_stopped = redis_stopped;
  hooks.ctx = p;
  if (p->will_ttl_ms) hooks.on_wills = redis_wills, hooks.on_buried = redis_buried, hooks.will_ttl_ms = p->will_ttl_ms;
  if ((r = uvws__redis_start(&p->redis, p->loop, p->opts.redis, &hooks)) != 0) return r;
  uvws__rt_metrics_add(p, render_redis, p->redis);
  return 0;
}

void uvws__rt_metrics_add(uvws_server_t *p, void (*render)(const void *, uvws__buf_t *), const void *ctx) {
  if (p->nsources == UVWS__MAX_METRICS_SOURCES) return;
  p->sources[p->nsources].render = render;
  p->sources[p->nsources++].ctx = ctx;
}

uvws_server_t *uvws__rt_primary(uvws_server_t *srv) {
  return (uvws_server_t *)(uintptr_t)uvws__group_member(srv, 0);
}

/* The contexts, once the configuration is final (at start). */
int uvws__rt_init(uvws_server_t *srv) {
  uvws_server_t *p = uvws__rt_primary(srv);
  int r;

  if ((r = uvws__netloop_init(&srv->net, srv->loop)) != 0) return r;
  srv->net.shared = &p->netsh;
  srv->net.hooks = &net_hooks;
  srv->net.ctx = srv;
  srv->net.m = &srv->m;
  srv->net.handshake_timeout_ms = srv->opts.handshake_timeout_ms;
  srv->net.close_timeout_ms = srv->opts.close_timeout_ms;

  srv->ws.opts = &srv->opts;
  srv->ws.pmd.level = srv->opts.deflate_level;
  srv->ws.pmd.mem_level = srv->opts.deflate_mem_level;
  srv->ws.pmd.server_max_bits = srv->opts.deflate_window_bits;
  srv->ws.pmd.client_max_bits = 15;
  srv->ws.pmd.server_takeover = srv->opts.deflate_takeover;
  srv->ws.pmd.client_takeover = 1;
  srv->ws.m = &srv->m;
  srv->ws.server = srv;
  srv->ws.on_session_closed = session_closed;
  srv->ws.ctx = srv;

  srv->http.opts = &srv->opts;
  srv->http.pmd = srv->opts.deflate ? &srv->ws.pmd : NULL;
  srv->http.mounts = srv->mounts;
  srv->http.nmounts = srv->nmounts;
  srv->http.net = &p->netsh;
  srv->http.m = &srv->m;
  srv->http.ctx = srv;
  srv->http.server = srv;
  srv->http.route = http_route;
  srv->http.upgrade = http_upgrade;
  srv->http.metrics = http_metrics;
  srv->http.routes = http_routes;
  srv->http.state = http_state;

  srv->bus.publish = bus_publish;
  srv->bus.seq = bus_seq;
  srv->bus.ctx = srv;
  srv->ps.census = p->census;
  srv->ps.bus = (srv->opts.threads > 1 || srv->opts.redis) ? &srv->bus : NULL;
  return 0;
}

void uvws__rt_free(uvws_server_t *srv) {
  uvws__pubsub_free(&srv->ps);
  uvws__ws_env_free(&srv->ws);
  uvws__http_env_free(&srv->http);
  uvws__netloop_free(&srv->net);
}

/* ---- the flusher ------------------------------------------------------------------ */

/* Big fan-outs pace themselves: when a flush round took longer than
 * FLUSH_BUSY_NS, the next one waits about as long again (at most
 * FLUSH_DEFER_MAX_NS), so the publishes that arrive meanwhile share each
 * subscriber's write instead of costing one send each. Small rounds (a
 * chat room, an echo) are never delayed. */
#define FLUSH_BUSY_NS 200000u
#define FLUSH_DEFER_MAX_NS 2000000u

static void on_flush_timer(uv_timer_t *t);

/* Work for the flusher that must not wait for the next I/O event: a paced
 * round, or what the last round left (a session that deferred came back
 * and deferred again; publishes made by the callbacks of this round). The
 * timer keeps the loop from sleeping in poll on it. */
static void flush_later(uvws_server_t *srv) {
  uint64_t now = uv_hrtime(), ms = 0;
  if (srv->net.flush_head == NULL || uv_is_active((uv_handle_t *)&srv->flush_timer)) return;
  if (srv->flush_not_before > now) ms = (srv->flush_not_before - now + 999999) / 1000000;
  uv_timer_start(&srv->flush_timer, on_flush_timer, ms, 0);
}

static void flush_now(uvws_server_t *srv) {
  uint64_t t0 = uv_hrtime(), d;
  uvws__net_flush(&srv->net);
  d = uv_hrtime() - t0;
  srv->flush_not_before = d > FLUSH_BUSY_NS ? t0 + d + (d < FLUSH_DEFER_MAX_NS ? d : FLUSH_DEFER_MAX_NS) : 0;
  flush_later(srv);
}

static void on_flush_timer(uv_timer_t *t) {
  uvws_server_t *srv = t->data;
  if (srv->net.flush_head) flush_now(srv);
}

static void on_check(uv_check_t *h) {
  uvws_server_t *srv = h->data;
  if (srv->net.flush_head == NULL) return;
  if (srv->flush_not_before && uv_hrtime() < srv->flush_not_before) flush_later(srv);
  else flush_now(srv);
}

/* ---- the sweep ----------------------------------------------------------------------- */

static void sweep(uv_timer_t *timer) {
  uvws_server_t *srv = timer->data;
  uint64_t now = uv_now(srv->loop);
  uvws__tcp_t *t, *next;
  int drop = srv->shutting_down && srv->shutdown_deadline && now >= srv->shutdown_deadline;

  if (srv->drain_until && now >= srv->drain_until) {
    srv->drain_until = 0;
    uvws_server_shutdown(srv, srv->shutdown_cb); /* the drain is over */
  }
  /* Loop lag: how late this tick runs. A busy loop delays every client. */
  if (srv->last_sweep) {
    uint64_t lag = now - srv->last_sweep > UVWS__SWEEP_MS ? now - srv->last_sweep - UVWS__SWEEP_MS : 0;
    UVWS__SET(srv->m.loop_lag_ms_last, lag);
    if (lag > UVWS__GET(srv->m.loop_lag_ms_max)) UVWS__SET(srv->m.loop_lag_ms_max, lag);
  }
  srv->last_sweep = now;
  if (srv->group) UVWS__SET(srv->m.queued_bytes, uvws__net_queued(&srv->net)); /* for the other loops' /metrics */
  for (t = srv->net.conns; t; t = next) {
    next = t->next; /* a timeout closes, but the free comes later */
    if (t->closed) continue;
    if (drop) t->s.ops->close(&t->s, "shutdown timeout");
    else if (t->s.deadline && t->s.deadline <= now) uvws__net_timeout(t);
  }
}

static int open_handle(uvws_server_t *srv, uv_handle_t *h, uint8_t *flag) {
  h->data = srv;
  srv->handles_open++;
  *flag = 1;
  return 0;
}

int uvws__rt_start_handles(uvws_server_t *srv) {
  int r;
  if ((r = uv_timer_init(srv->loop, &srv->sweep)) < 0) return r;
  open_handle(srv, (uv_handle_t *)&srv->sweep, &srv->sweep_open);
  uv_timer_start(&srv->sweep, sweep, UVWS__SWEEP_MS, UVWS__SWEEP_MS);
  uv_unref((uv_handle_t *)&srv->sweep); /* the timer alone keeps no loop alive */
  if ((r = uv_check_init(srv->loop, &srv->flusher)) < 0) return r;
  open_handle(srv, (uv_handle_t *)&srv->flusher, &srv->flusher_open);
  uv_check_start(&srv->flusher, on_check);
  uv_unref((uv_handle_t *)&srv->flusher);
  if ((r = uv_timer_init(srv->loop, &srv->flush_timer)) < 0) return r;
  open_handle(srv, (uv_handle_t *)&srv->flush_timer, &srv->flush_timer_open);
  return 0;
}

/* ---- shutdown -------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  uvws_server_t *srv = h->data;
  srv->handles_open--;
  uvws__rt_maybe_done(srv);
}

static void on_listener_closed(uv_handle_t *h) {
  uvws__listen_t *l = h->data;
  uvws_server_t *srv = l->owner;
  srv->handles_open--;
  uvws__rt_maybe_done(srv);
}

void uvws__rt_maybe_done(uvws_server_t *srv) {
  if (!srv->shutting_down) return;
  if (srv->net.nconns == 0 && (srv->sweep_open || srv->flusher_open || srv->flush_timer_open)) {
    /* Only handles that were initialised: a start that failed half way
     * (a port in use) left the others untouched. */
    if (srv->sweep_open) uv_close((uv_handle_t *)&srv->sweep, on_handle_closed);
    if (srv->flusher_open) uv_close((uv_handle_t *)&srv->flusher, on_handle_closed);
    if (srv->flush_timer_open) uv_close((uv_handle_t *)&srv->flush_timer, on_handle_closed);
    srv->sweep_open = srv->flusher_open = srv->flush_timer_open = 0;
    return; /* back here from on_handle_closed */
  }
  if (srv->handles_open == 0 && srv->net.nconns == 0 && srv->shutdown_cb && !uvws__group_busy(srv) &&
      !uvws__redis_busy(srv->index == 0 ? srv->redis : NULL)) {
    void (*cb)(uvws_server_t *) = srv->shutdown_cb;
    srv->shutdown_cb = NULL;
    cb(srv);
  }
}

static void close_listeners(uvws_server_t *srv) {
  srv->listen_plain.owner = srv->listen_tls.owner = srv;
  uvws__net_listen_close(&srv->listen_plain, on_listener_closed);
  uvws__net_listen_close(&srv->listen_tls, on_listener_closed);
  srv->listen_plain.n = srv->listen_tls.n = 0; /* closing: never again */
}

void uvws_server_shutdown(uvws_server_t *srv, void (*cb)(uvws_server_t *srv)) {
  uvws__tcp_t *t, *next;
  if (srv->shutting_down) return;
  if (srv->index == 0 && srv->opts.shutdown_drain_ms && srv->sweep_open) {
    if (srv->drain_until) return; /* already draining */
    if (!atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
      /* Everything keeps working; only /healthz changes. The sweep calls
       * us again when the time is up. */
      atomic_store_explicit(&srv->draining, 1, memory_order_relaxed);
      srv->shutdown_cb = cb;
      srv->drain_until = uv_now(srv->loop) + srv->opts.shutdown_drain_ms;
      uvws__log(UVWS_LOG_INFO, "shutting down: draining for %u ms first (/healthz answers 503)",
                srv->opts.shutdown_drain_ms);
      return;
    }
  }
  srv->shutting_down = 1;
  srv->shutdown_cb = cb;
  srv->shutdown_deadline = uv_now(srv->loop) + srv->opts.shutdown_timeout_ms;
  if (srv->index == 0)
    uvws__log(UVWS_LOG_INFO, "shutting down: %zu connection(s) open",
              atomic_load_explicit(&srv->netsh.open, memory_order_relaxed));
  if (srv->group && srv->index == 0) uvws__group_shutdown(srv);
  if (srv->index == 0 && srv->redis) uvws__redis_stop(srv->redis);
  /* The sweep keeps running until the last connection is gone: closing
   * handshakes still need their timeouts. */
  close_listeners(srv);
  for (t = srv->net.conns; t; t = next) {
    next = t->next;
    if (!t->closed && t->s.cb && t->s.cb->on_shutdown) t->s.cb->on_shutdown(&t->s);
  }
  uvws__rt_maybe_done(srv);
}

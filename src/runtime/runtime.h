/* The runtime: one loop's server (the layers' per-loop contexts wired
 * together, the sweep, the flusher, shutdown), the thread group that runs
 * N of them, and /metrics. uvws_server_s is both the public handle and one
 * loop's runtime: with threads the user's server is the primary (index 0,
 * the user's loop) and group.c clones it onto each other loop. */
#ifndef UVWS_RUNTIME_H
#define UVWS_RUNTIME_H

#include <stdatomic.h>

#include "http/http.h"
#include "net/net.h"
#include "pubsub/pubsub.h"
#include "pubsub/redis.h"
#include "util/counters.h"
#include "util/xq.h"
#include "uvws.h"
#include "ws/session.h"

#define UVWS__MAX_THREADS 64
#define UVWS__SWEEP_MS 250
#define UVWS__MAX_METRICS_SOURCES 4

typedef struct uvws__group_s uvws__group_t;

/* Lines a component adds to /metrics (Redis registers its own). */
typedef struct {
  void (*render)(const void *ctx, uvws__buf_t *out);
  const void *ctx;
} uvws__metrics_source_t;

/* Who owns what, and which thread touches it:
 *   [config]  set by the user's calls before uvws_server_start; read-only
 *             afterwards, read by every loop's thread (workers' copies too).
 *   [loop]    this loop's thread only.
 *   [primary] the primary server only (index 0), on the primary's thread,
 *             unless said otherwise.
 *   [atomic]  written by its owner, read by any thread. Relaxed, all of
 *             them (counters, gauges, flags, the publish sequence): none
 *             publishes other memory. What does cross threads with memory
 *             behind it is ordered where it is handed over: inbox nodes
 *             by xq.c's release push and acquire take, shared frames and
 *             TLS configurations by acq_rel reference counts (wqueue.c,
 *             tls.c). */
struct uvws_server_s {
  /* [config] the options; their strings are owned copies */
  uvws_options_t opts;
  char *host, *web_root, *allow_origin, *trusted_proxies, *tls_cert, *tls_key, *redis_url;
  uvws__route_t *routes;     /* owned; one loop's copy (workers copy the primary's) */
  size_t nroutes;
  uvws__mount_t *mounts;     /* owned; [0] is the web root (dir NULL if none) */
  size_t nmounts;
  void *data;                /* the user's */
  uvws_remote_cb on_remote;  /* [primary] messages from other instances */
  void *on_remote_user;
  uvws_sequenced_cb on_sequenced; /* [primary] sequenced messages of every instance */
  void *on_sequenced_user;
  void (*on_redis_state)(uvws_server_t *srv, int up, void *user); /* [primary] */
  void *on_redis_state_user;
  uvws_wills_cb on_wills;    /* [primary] this instance's wills (heartbeat) */
  void (*on_buried)(uvws_server_t *srv, void *user); /* [primary] */
  void *on_wills_user;
  unsigned will_ttl_ms;

  /* [loop] the layers' contexts */
  uv_loop_t *loop;
  unsigned index;            /* 0: the primary */
  uvws__netloop_t net;
  uvws__http_env_t http;
  uvws__ws_env_t ws;
  uvws__pubsub_t ps;
  uvws__bus_t bus;           /* ps.bus points here when there are threads or Redis */
  uvws__listen_t listen_plain, listen_tls;
  int port, tls_port;        /* bound, or -1 */

  /* [loop] the runtime's own handles and state */
  uv_timer_t sweep;          /* timeouts: one timer for all connections */
  uv_check_t flusher;        /* after each iteration's I/O: uvws__net_flush */
  uv_timer_t flush_timer;    /* a deferred flush (see on_check) */
  uint64_t flush_not_before; /* uv_hrtime(); 0: flush at the next check */
  uint64_t last_sweep;       /* for the loop lag */
  uint8_t started, shutting_down;
  uint8_t sweep_open, flusher_open, flush_timer_open; /* initialised, not yet closed */
  int handles_open;          /* listeners, sweep and flush handles not yet closed */
  void (*shutdown_cb)(uvws_server_t *srv);
  uint64_t shutdown_deadline; /* uv_now() after which closing connections drop */
  uint64_t drain_until;      /* [primary] uv_now() when the drain ends; 0 none */
  uvws__metrics_t m;         /* [atomic] this loop's counters */

  /* Threads (group.c) */
  uvws__group_t *group;      /* NULL on a single loop; owned by the primary */
  uv_async_t wake;           /* [loop] other threads push to inbox, then wake us */
  uvws__xq_t inbox;          /* pushed by any thread, taken by this loop */
  uint8_t wake_open;         /* [loop] */
  uint8_t stopped;           /* [loop] worker: shutdown done, STOPPED posted */
  atomic_int exit_when_stopped; /* worker: freed without shutdown, just end */

  /* [primary] shared by every loop, owned by the primary */
  uvws__net_shared_t netsh;  /* limits and per-address counts (its own lock) */
  uvws__census_t *census;    /* subscriber counts (its own lock); NULL on one loop */
  atomic_int draining;       /* [atomic] shutdown_drain_ms running: /healthz 503 */
  uvws__redis_t *redis;      /* NULL without Redis */
  atomic_int redis_up;       /* [atomic] the Redis link is connected and subscribed */
  uvws__tls_rng_t rng;
  uvws__metrics_source_t sources[UVWS__MAX_METRICS_SOURCES];
  unsigned nsources;
  /* uvws_server_new(..., NULL, ...): the loop, its thread and the stop
   * signal are the server's own. */
  uint8_t own_loop, own_thread_started;
  uv_thread_t own_thread;
  uv_async_t stop_async;
};

/* loop.c: one loop's runtime */
int uvws__rt_init(uvws_server_t *srv);       /* the layers' contexts, at start */
int uvws__rt_start_handles(uvws_server_t *srv);
void uvws__rt_free(uvws_server_t *srv);
void uvws__rt_maybe_done(uvws_server_t *srv);
uvws_server_t *uvws__rt_primary(uvws_server_t *srv);
/* redis.c's hooks, on the primary */
int uvws__rt_redis_start(uvws_server_t *primary);
/* uvws_publish_sequenced from any loop: the primary sends it to Redis, a
 * worker posts it to the primary. */
int uvws__rt_append(uvws_server_t *srv, const char *topic, const char *head, size_t head_len,
                    const char *tail, size_t tail_len, size_t keep);
/* uvws_redis_range from any loop; the answer comes back to that loop. */
int uvws__rt_range(uvws_server_t *srv, const char *topic, uint64_t after, size_t count, uvws_range_cb cb,
                   void *user);
/* On the primary, for a worker's uvws_redis_range (group.c). */
void uvws__rt_range_for(uvws_server_t *primary, uvws_server_t *dest, const char *topic, size_t n,
                        uint64_t after, size_t count, uvws_range_cb cb, void *user);
/* uvws_presence_join (join 1, text2: the leave text), _restore (join 2)
 * or _leave (join 0, text2 NULL) from any loop; the names come back to
 * that loop. */
int uvws__rt_presence(uvws_server_t *srv, int join, const char *topic, const char *name, const char *text1,
                      const char *text2, uvws_presence_cb cb, void *user);
/* On the primary, for `dest`'s join or leave (group.c); cb not called
 * unless it returns 0. */
int uvws__rt_presence_for(uvws_server_t *primary, uvws_server_t *dest, int join, const char *topic, size_t n,
                          const char *name, const char *text1, const char *text2, uvws_presence_cb cb,
                          void *user);
void uvws__rt_metrics_add(uvws_server_t *primary, void (*render)(const void *, uvws__buf_t *), const void *ctx);

/* group.c: one server on several threads */
/* How the facade makes a worker: a copy of the primary's configuration on
 * a loop of its own (not started), its start, and its end (the server,
 * then its loop). */
typedef struct {
  int (*clone)(uvws_server_t *primary, unsigned index, uvws_server_t **out);
  int (*start)(uvws_server_t *worker);
  void (*destroy)(uvws_server_t *worker);
} uvws__group_ops_t;
/* Builds and starts (binds) the workers without running them; then
 * uvws__group_run opens the primary's inbox and starts their threads. */
int uvws__group_start(uvws_server_t *primary, const uvws__group_ops_t *ops);
int uvws__group_run(uvws_server_t *primary);
void uvws__group_forward(uvws_server_t *from, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq, int to_redis);
uint64_t uvws__group_seq(uvws_server_t *srv, int next);
/* A worker's log read for the primary, and its answer back to the worker.
 * 0, UV_ENOMEM, or UVWS_EUNAVAILABLE when the group is ending. */
int uvws__group_post_range(uvws_server_t *from, const char *topic, size_t n, uint64_t after, size_t count,
                           uvws_range_cb cb, void *user);
void uvws__group_post_range_done(uvws_server_t *to, uvws_range_cb cb, void *user, int status,
                                 const uvws_seq_entry_t *entries, size_t n);
/* A worker's presence join or leave for the primary, and the names back.
 * 0, UV_ENOMEM, or UVWS_EUNAVAILABLE when the group is ending. */
int uvws__group_post_presence(uvws_server_t *from, int join, const char *topic, const char *name,
                              const char *text1, const char *text2, uvws_presence_cb cb, void *user);
void uvws__group_post_presence_done(uvws_server_t *to, uvws_presence_cb cb, void *user, int status,
                                    const char *const *names, size_t n);
/* A worker's sequenced publish for the primary: `both` is head (split
 * bytes) then tail. 0 or UV_ENOMEM. */
int uvws__group_post_append(uvws_server_t *from, const char *topic, size_t n, uvws__sbuf_t *both,
                            size_t split, size_t keep);
void uvws__group_shutdown(uvws_server_t *primary);
int uvws__group_busy(const uvws_server_t *primary);
void uvws__group_free(uvws_server_t *primary);
void uvws__group_tls(uvws_server_t *primary, uvws__tls_conf_t *conf);
unsigned uvws__group_size(const uvws_server_t *srv);
const uvws_server_t *uvws__group_member(const uvws_server_t *srv, unsigned i);

/* metrics.c: the text for `loops` (every loop of the server, [0] the
 * primary, with its registered sources); `self` is the loop asking, whose
 * queue is measured now rather than sampled. */
void uvws__metrics_render(const uvws_server_t *const *loops, unsigned n, const uvws_server_t *self,
                          uvws__buf_t *out);
const uvws__route_t *uvws__rt_route(const uvws_server_t *srv, const char *path, size_t len);

#endif

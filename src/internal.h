/* Private structures shared by conn.c, http.c and server.c. Nothing here is
 * part of the public API (see include/uvws.h). */
#ifndef UVWS_INTERNAL_H
#define UVWS_INTERNAL_H

#include <stdatomic.h>

#include "deflate.h"
#include "tls.h"
#include "uvws.h"
#include "wbuf.h"
#include "wqueue.h"
#include "xq.h"
#include "ws.h"

/* Send-queue water marks: reading from a connection stops while more than
 * HIGH bytes wait for the socket and resumes below LOW, so a client that
 * sends without reading cannot grow the server's memory. */
#define UVWS__QUEUE_HIGH (1024u * 1024u)
#define UVWS__QUEUE_LOW (256u * 1024u)
/* Payloads at least this large skip the cork buffer and go to the kernel
 * directly (one writev of header + payload), saving a copy. */
#define UVWS__DIRECT_WRITE_MIN (16u * 1024u)
#define UVWS__READ_BUF_SIZE (64u * 1024u)
/* A connection keeps its reassembly buffer (fragmented, split or inflated
 * messages) between messages up to this size, and gives it back after
 * UVWS__MSG_KEEP_MS without input: no allocation per message while busy,
 * none held while idle. */
#define UVWS__MSG_KEEP (256u * 1024u)
#define UVWS__MSG_KEEP_MS 2000
#define UVWS__SWEEP_MS 250

typedef struct {
  char *path;             /* owned */
  size_t path_len;
  uvws_handlers_t h;
  char **subprotocols;    /* owned, NULL-terminated (NULL if none) */
  void *user;
  int drop_on_backpressure;
} uvws__route_t;

typedef struct uvws__http_s uvws__http_t;
typedef struct uvws__topic_s uvws__topic_t; /* pubsub.c */
typedef struct uvws__group_s uvws__group_t; /* group.c */
typedef struct uvws__redis_s uvws__redis_t; /* redis.c */
#define UVWS__MAX_THREADS 64
#define UVWS__TOPIC_BUCKETS 256

/* Counters for /metrics. Close codes are counted per code for 1000-1015
 * and in one bucket for the application range (3000-4999).
 * Each server (one per loop) writes only its own counters; /metrics, on any
 * loop, sums every loop's. UVWS__ADD is a relaxed load and store, not a
 * locked add: it costs what `x++` costs, yet other threads read whole values. */
#define UVWS__CODE_BUCKETS 17
typedef _Atomic uint64_t uvws__counter_t;
#define UVWS__ADD(ctr, n)                                                                    \
  atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n), \
                        memory_order_relaxed)
#define UVWS__GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)
#define UVWS__SET(ctr, v) atomic_store_explicit(&(ctr), (v), memory_order_relaxed) /* gauges */
typedef struct {
  uvws__counter_t http_requests;
  uvws__counter_t http_status[6];        /* by class: 1xx .. 5xx (index 1..5) */
  uvws__counter_t handshakes_ok;
  uvws__counter_t handshakes_failed[6];  /* 400, 403, 404, 426, 429/503, other */
  uvws__counter_t conns_rejected;        /* over max_connections or per-IP limit */
  uvws__counter_t messages_in, messages_out;
  uvws__counter_t bytes_in, bytes_out;   /* WebSocket payload bytes */
  uvws__counter_t close_sent[UVWS__CODE_BUCKETS], close_rcvd[UVWS__CODE_BUCKETS];
  uvws__counter_t ping_timeouts, idle_closes, protocol_failures;
  uvws__counter_t backpressure_pauses, backpressure_closes, backpressure_drops;
  uvws__counter_t loop_lag_ms_last, loop_lag_ms_max;
  uvws__counter_t conns_http, conns_ws;  /* gauges: open connections by state */
  uvws__counter_t queued_bytes;          /* gauge, sampled by the sweep */
} uvws__metrics_t;

/* One entry per peer address with open connections (max_connections_per_ip). */
typedef struct uvws__ipcount_s {
  struct uvws__ipcount_s *next;
  uint8_t addr[16];
  uint32_t count;
} uvws__ipcount_t;
#define UVWS__IP_BUCKETS 1024

typedef enum {
  UVWS__CONN_HTTP = 0,  /* parsing requests, serving files */
  UVWS__CONN_WS,        /* upgraded */
  UVWS__CONN_CLOSED     /* uv_close() called; waiting for the close callback */
} uvws__conn_state_t;

/* One accepted TCP connection. Owned by the server (linked in srv->conns);
 * freed only in the uv_close callback. It owns `out`, `inflight`, `msg` and
 * `http` (the HTTP state, freed at upgrade). */
struct uvws_conn_s {
  uv_tcp_t tcp;              /* tcp.data == this */
  uvws_server_t *srv;
  uvws_conn_t *prev, *next;  /* srv->conns list */
  uvws_conn_t *flush_next;   /* srv->flush_head list */
  uint8_t state;             /* uvws__conn_state_t */
  uint8_t reading;           /* uv_read_start is active */
  uint8_t write_inflight;    /* a uv_write (malloc'd request) is with libuv */
  uint8_t finishing;         /* FIN requested once the queue drains */
  uint8_t fin_sent;          /* uv_shutdown issued: nothing more may be written */
  uint8_t close_sent;        /* a close frame is queued: no more frames */
  uint8_t close_rcvd;        /* the peer's close frame arrived */
  uint8_t failed;            /* we failed the connection (protocol error) */
  uint8_t by_server;         /* the close started on our side */
  uint8_t opened;            /* on_open was called; on_close is owed */
  uint8_t tracing;           /* inside the route's on_frame */
  uint8_t awaiting_pong;     /* a keep-alive ping is unanswered */
  uint8_t peer_eof;          /* the peer half-closed while we still answer */
  uint8_t has_addr;          /* addr is counted in srv->ips */
  uint8_t via_proxy;         /* a trusted proxy named the client: addr and peer are its */
  uint8_t flush_pending;     /* in srv->flush_head: shared frames wait in q */
  uint8_t drain_owed;        /* a send was refused (backpressure): on_drain is owed */
  uint8_t addr[16];          /* peer address (IPv4 mapped into IPv6) */
  uint64_t last_rx;          /* uv_now() of the last bytes received */
  uint64_t last_msg;         /* uv_now() of the last message received */
  uint64_t ping_sent;        /* uv_now() of the unanswered ping */
  uint16_t close_code;       /* for on_close and the log */
  uint64_t deadline;         /* uv_now() ms at which the timeout fires; 0 none */
  uint64_t started;          /* uv_now() at accept */
  uvws__wq_t q;              /* the send queue (its head may be with uv_write) */
  size_t q_inflight;         /* bytes at the head that uv_write holds */
  uvws__http_t *http;        /* HTTP state while state == HTTP */
  uvws__tls_t *tls;          /* owned; NULL for plain TCP */
  const uvws__route_t *route;
  const char *protocol;      /* points into route->subprotocols */
  uvws__ws_t ws;
  uvws__buf_t msg;           /* reassembly of fragmented messages */
  uvws__pmd_params_t pmd;    /* permessage-deflate terms, if ws.pmd */
  z_stream *def;             /* owned deflater (context takeover), or NULL */
  void *data;                /* the user's */
  uvws__topic_t **topics;    /* owned array: the topics it subscribed to */
  uint32_t ntopics, topics_cap;
  char peer[56];
};

/* A folder served as static files: the web root, or one mounted at a URL
 * prefix (`prefix` holds the path without slashes, "" for the root). */
typedef struct {
  char *prefix;
  size_t prefix_len;
  char *dir;   /* as given */
  char *real;  /* realpath(dir) once started */
  size_t real_len;
} uvws__mount_t;

struct uvws_server_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t sweep;          /* timeouts: one timer for all connections */
  uv_check_t flusher;        /* after each iteration's I/O: uvws__conn_flush_all */
  uvws_conn_t *flush_head;   /* connections with published frames to write */
  uv_timer_t flush_timer;    /* a deferred flush (see on_check in server.c) */
  uint64_t flush_not_before; /* uv_hrtime(); 0: flush at the next check */
  uvws_options_t opts;       /* strings below are owned copies */
  char *host;
  char *web_root;
  uvws__mount_t *mounts;     /* [0] is the web root (dir NULL if none) */
  size_t nmounts;
  char *allow_origin;
  char *trusted_proxies;
  uint8_t (*trusted)[16];    /* parsed trusted_proxies (IPv4 mapped to IPv6) */
  size_t ntrusted;
  uvws__route_t *routes;
  size_t nroutes;
  uvws_conn_t *conns;
  size_t nconns;
  int port;
  /* While one connection's input is processed, its small writes gather
   * here and leave in one write at the end (see uvws__conn_write). */
  uvws__buf_t cork;
  uvws_conn_t *corked;
  char *readbuf;             /* shared by every connection of this loop */
  char *tlsbuf;              /* decrypted input, shared likewise */
  uv_tcp_t tls_listener;
  uvws__tls_rng_t rng;
  uvws__tls_conf_t *tls;     /* current certificate; NULL without TLS */
  char *tls_cert, *tls_key;
  char *redis_url;
  int tls_port;
  uint8_t listening_plain, listening_tls;
  uint8_t sweep_open, flusher_open, flush_timer_open; /* initialised, not yet closed */
  uvws__pmd_config_t pmd;
  z_stream *shared_def;      /* deflater for connections without takeover */
  uvws__buf_t zbuf;          /* one compressed message, until it is queued */
  char *filebuf;             /* static file chunks */
  int started;
  int shutting_down;
  _Atomic int draining;      /* primary: shutdown_drain_ms running, /healthz 503 */
  uint64_t drain_until;      /* primary: uv_now() when the drain ends; 0 none */
  int handles_open;          /* listener + sweep while they exist */
  void (*shutdown_cb)(uvws_server_t *srv);
  uint64_t shutdown_deadline; /* uv_now() after which closing connections drop */
  uint64_t last_sweep;       /* for the loop lag measurement */
  uvws__metrics_t m;
  uvws__ipcount_t *ips[UVWS__IP_BUCKETS];
  uvws__topic_t *topic_table[UVWS__TOPIC_BUCKETS];
  void *data;
  /* Threads (group.c): every loop has its own server; index 0 is the
   * primary, the one the user created. */
  uvws__group_t *group;      /* NULL on a single loop */
  unsigned index;
  uv_async_t wake;           /* other threads push to inbox, then wake us */
  uvws__xq_t inbox;
  uint8_t wake_open;
  uint8_t stopped;           /* worker: shutdown done, STOPPED posted */
  atomic_int exit_when_stopped; /* worker: freed without shutdown, just end */
  uvws__redis_t *redis;      /* primary only; NULL without Redis */
  /* uvws_server_new(..., NULL, ...): the loop, its thread and the stop
   * signal are the server's own. */
  uint8_t own_loop, own_thread_started;
  uv_thread_t own_thread;
  uv_async_t stop_async;
  uint64_t pub_seq;          /* publish numbers without a group */
  uvws_remote_cb on_remote;  /* primary: messages from other instances */
  void *on_remote_user;
  char date[40];             /* cached IMF-fixdate for the Date header */
  int64_t date_sec;
};

/* conn.c */
int uvws__conn_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n);
int uvws__conn_raw_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n);
void uvws__conn_input(uvws_conn_t *c, char *data, size_t len);
int uvws__conn_cork(uvws_conn_t *c);
void uvws__conn_uncork(uvws_conn_t *c);
size_t uvws__conn_queued(const uvws_conn_t *c);
void uvws__conn_finish(uvws_conn_t *c);
void uvws__conn_abort(uvws_conn_t *c, const char *why);
void uvws__conn_update_reading(uvws_conn_t *c);
void uvws__conn_upgrade(uvws_conn_t *c, const uvws__route_t *route, const char *protocol,
                        const uvws__pmd_params_t *pmd, const char *extensions, char *rest,
                        size_t rest_len);
void uvws__conn_timeout(uvws_conn_t *c);
void uvws__conn_keepalive(uvws_conn_t *c, uint64_t now);
int uvws__conn_send_shared(uvws_conn_t *c, uvws__sbuf_t *frame, size_t header_len);
void uvws__conn_flush_all(uvws_server_t *srv);
/* conn_ws.c: WebSocket bytes from the socket (or TLS) into the engine. */
void uvws__conn_ws_feed(uvws_conn_t *c, char *data, size_t len);
void uvws__conn_flush_forget(uvws_conn_t *c);

/* pubsub.c */
void uvws__pubsub_conn_closed(uvws_conn_t *c);
void uvws__pubsub_free(uvws_server_t *srv);
/* Queues `frame` (header_len header bytes, then the payload) on this loop's
 * subscribers of the topic. Returns how many took it. */
/* A message from another instance (redis.c, primary's loop): to every
 * loop's subscribers, not back to Redis. */
void uvws__pubsub_from_remote(uvws_server_t *srv, const char *topic, size_t n, uvws__sbuf_t *frame,
                              size_t header_len);
int uvws__pubsub_has(uvws_server_t *srv, const char *topic, size_t n);
int uvws__pubsub_deliver(uvws_server_t *srv, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq);

/* group.c: one server on several threads */
int uvws__group_start(uvws_server_t *primary);
void uvws__group_forward(uvws_server_t *from, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq, int to_redis);
/* The publish sequence shared by every loop: `next` 1 takes a number for a
 * publish, 0 reads the next one (for a new subscription). */
uint64_t uvws__pubsub_seq(uvws_server_t *srv, int next);
void uvws__group_shutdown(uvws_server_t *primary);
int uvws__group_busy(const uvws_server_t *primary);
void uvws__group_free(uvws_server_t *primary);
void uvws__group_tls(uvws_server_t *primary, uvws__tls_conf_t *conf);
void uvws__group_lock(uvws_server_t *srv);
void uvws__group_unlock(uvws_server_t *srv);
uvws_server_t *uvws__group_primary(uvws_server_t *srv);
unsigned uvws__group_size(const uvws_server_t *srv);
const uvws_server_t *uvws__group_member(const uvws_server_t *srv, unsigned i);
void uvws__server_count_conn(uvws_server_t *srv, int delta);
size_t uvws__server_total_conns(const uvws_server_t *srv);

/* redis.c: topics across instances (primary's loop only) */
int uvws__redis_start(uvws_server_t *primary);
void uvws__redis_publish(uvws_server_t *primary, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len);
void uvws__redis_stop(uvws_server_t *primary);
int uvws__redis_busy(const uvws_server_t *primary);
void uvws__redis_free(uvws_server_t *primary);
void uvws__redis_metrics(const uvws_server_t *primary, uvws__buf_t *out);
int uvws__conn_set_client(uvws_conn_t *c, const uint8_t addr[16]);
int uvws__conn_accept(uvws_server_t *srv, uv_stream_t *listener, int tls);

/* tls_io.c: TLS between the socket and the connection */
int uvws__tls_io_new(uvws_conn_t *c);
void uvws__tls_io_read(uvws_conn_t *c, const char *data, size_t len);
int uvws__tls_io_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n);
void uvws__tls_io_close_notify(uvws_conn_t *c);

/* http.c */
int uvws__http_init(uvws_conn_t *c);
void uvws__http_free(uvws_conn_t *c);
void uvws__http_feed(uvws_conn_t *c, char *data, size_t len);
void uvws__http_writable(uvws_conn_t *c);
void uvws__http_timeout(uvws_conn_t *c);
int uvws__http_busy(const uvws_conn_t *c);
void uvws__http_reject(uvws_conn_t *c, int status, const char *why);

/* server.c */
int uvws__server_ip_add(uvws_server_t *srv, const uint8_t addr[16]);
int uvws__server_is_trusted(const uvws_server_t *srv, const uint8_t addr[16]);
int uvws__parse_ip(const char *s, size_t len, uint8_t out[16]);
void uvws__server_ip_del(uvws_server_t *srv, const uint8_t addr[16]);
int uvws__code_bucket(unsigned code);
void uvws__metrics_render(uvws_server_t *srv, uvws__buf_t *out);
const uvws__route_t *uvws__server_route(const uvws_server_t *srv, const char *path, size_t len);
const char *uvws__server_date(uvws_server_t *srv);
const uvws__mount_t *uvws__server_mount_for(const uvws_server_t *srv, const char *rel,
                                            const char **rest);
void uvws__server_conn_closed(uvws_server_t *srv, uvws_conn_t *c);
void uvws__server_maybe_done(uvws_server_t *srv);
/* Bytes waiting to be written on this loop's connections. */
size_t uvws__server_queued(const uvws_server_t *srv);
/* 1 while the process drains before a shutdown (any loop may ask). */
int uvws__server_draining(uvws_server_t *srv);

#endif

/* The transport: TCP connections on libuv, TLS as a filter inside them,
 * accepting with connection limits, and listening. Each connection is a
 * uvws__stream_t (stream.h) whose upper layer the runtime installs at
 * accept; nothing here knows what the bytes mean. */
#ifndef UVWS_NET_H
#define UVWS_NET_H

#include <stdatomic.h>

#include "net/stream.h"
#include "net/tls.h"
#include "util/counters.h"
#include "util/wbuf.h"
#include "util/wqueue.h"

#define UVWS__READ_BUF_SIZE (64u * 1024u)
/* Payloads at least this large skip the cork buffer and go to the kernel
 * directly (one writev of header + payload), saving a copy. */
#define UVWS__DIRECT_WRITE_MIN (16u * 1024u)
#define UVWS__IP_BUCKETS 1024

typedef struct uvws__netloop_s uvws__netloop_t;
typedef struct uvws__tcp_s uvws__tcp_t;

/* One entry per peer address with open connections. */
typedef struct uvws__ipcount_s {
  struct uvws__ipcount_s *next;
  uint8_t addr[16];
  uint32_t count;
} uvws__ipcount_t;

/* What every loop of one server shares: the limits, the per-address counts
 * and the trusted proxies. Owned by the server the user created; `lock`
 * guards `ips` (touched only at accept and close), `open` is atomic, the
 * rest is read-only once the server starts. */
typedef struct {
  unsigned max_connections, max_per_ip;  /* 0: no limit */
  uint8_t (*trusted)[16];                /* owned; IPv4 mapped into IPv6 */
  size_t ntrusted;
  int threaded;                          /* several loops: take the lock */
  uv_mutex_t lock;
  uvws__ipcount_t *ips[UVWS__IP_BUCKETS];
  atomic_size_t open;                    /* open connections on every loop */
} uvws__net_shared_t;

int uvws__net_shared_init(uvws__net_shared_t *sh, const char *trusted_proxies, int threaded);
void uvws__net_shared_free(uvws__net_shared_t *sh);
int uvws__net_is_trusted(const uvws__net_shared_t *sh, const uint8_t addr[16]);
/* "1.2.3.4", "::1", "[::1]" -> 16 bytes, IPv4 mapped into IPv6. */
int uvws__parse_ip(const char *s, size_t len, uint8_t out[16]);

/* Notifications from the transport to the runtime that owns the loop. */
typedef struct {
  /* A new connection: the runtime installs its upper layer on `s`. With
   * `refuse` 503 (max_connections) or 429 (per address) the upper answers
   * that and finishes (plain TCP only; refused TLS connections are closed
   * before anyone hears of them). Returns 0, or an error to close. */
  int (*on_accept)(void *ctx, uvws__stream_t *s, int refuse);
  /* A connection of this loop was freed. */
  void (*on_freed)(void *ctx);
} uvws__net_hooks_t;

/* One loop's transport state. Owned by that loop's runtime and used on its
 * thread only. */
struct uvws__netloop_s {
  uv_loop_t *loop;
  uvws__net_shared_t *shared;
  const uvws__net_hooks_t *hooks;
  void *ctx;                        /* the hooks' */
  uvws__metrics_t *m;
  unsigned handshake_timeout_ms;    /* first deadline of a new connection */
  unsigned close_timeout_ms;        /* FIN sent: wait this long for EOF */
  uvws__tls_conf_t *tls;            /* for new TLS connections; a reference */
  char *readbuf;                    /* one read buffer for every connection */
  char *tlsbuf;                     /* decrypted input, shared likewise */
  /* While one connection's input is processed its small writes gather here
   * and leave in one write at the end. */
  uvws__buf_t cork;
  uvws__tcp_t *corked;
  uvws__tcp_t *flush_head;          /* connections with shared frames to write, or deferred */
  uvws__tcp_t *conns;               /* every connection not yet freed */
  size_t nconns;                    /* in `conns`, closing ones too */
  size_t nopen;                     /* neither finishing nor closing: what limits count */
};

int uvws__netloop_init(uvws__netloop_t *nl, uv_loop_t *loop);
void uvws__netloop_free(uvws__netloop_t *nl);

/* One TCP connection (TLS inside when `tls`). Linked in nl->conns from
 * accept until the handle's close callback, which frees it. It owns `q`
 * and `tls`. */
struct uvws__tcp_s {
  uvws__stream_t s;                 /* first: a uvws__tcp_t is a stream */
  uv_tcp_t tcp;                     /* tcp.data == this */
  uvws__netloop_t *nl;
  uvws__tcp_t *prev, *next;         /* nl->conns */
  uvws__tcp_t *flush_next;          /* nl->flush_head */
  uint8_t reading;                  /* uv_read_start is active */
  uint8_t paused;                   /* the upper takes no input */
  uint8_t congested;                /* above the high mark: not reading */
  uint8_t writable_owed;            /* on_writable at the low mark */
  uint8_t write_inflight;           /* a uv_write (malloc'd request) is with libuv */
  uint8_t fin_sent;                 /* uv_shutdown issued */
  uint8_t peer_eof;                 /* the peer half-closed */
  uint8_t flush_pending;            /* in nl->flush_head */
  uint8_t has_addr;                 /* addr counted in shared->ips */
  uint8_t closed;                   /* uv_close called */
  uint8_t counted;                  /* counts toward the limits (not finishing, not closed) */
  uint8_t resume_owed;              /* defer: on_resume at the next flush */
  uvws__wq_t q;                     /* the send queue; its head may be with uv_write */
  size_t q_inflight;                /* bytes at the head that uv_write holds */
  uvws__tls_t *tls;                 /* owned; NULL for plain TCP */
};

/* Accepts one connection from `listener` (the listener's data is the
 * netloop). */
int uvws__net_accept(uvws__netloop_t *nl, uv_stream_t *listener, int tls);
/* The flusher: one write per connection that got shared frames; then the
 * deferred get their on_writable. */
void uvws__net_flush(uvws__netloop_t *nl);
/* Bytes waiting for the kernel on every connection of the loop. */
size_t uvws__net_queued(const uvws__netloop_t *nl);
/* Called by the runtime's sweep for a connection whose deadline passed. */
void uvws__net_timeout(uvws__tcp_t *t);
/* 1 if the connection still does its TLS handshake. */
int uvws__net_tls_pending(const uvws__stream_t *s);

/* Listening on `host` (an address, or "localhost": both 127.0.0.1 and ::1)
 * and `port` (0: any free one, the same on every address), in two steps:
 * bind makes the sockets with plain system calls (a failure leaves nothing
 * behind), start wraps them in libuv handles on the loop. The caller owns
 * the struct; a handle counts as open from its uv_tcp_init on, and its
 * data is the struct. */
#define UVWS__MAX_LISTEN 2
typedef struct {
  uv_tcp_t h[UVWS__MAX_LISTEN];     /* h[i].data == this */
  unsigned n;                       /* initialised handles */
  int fd[UVWS__MAX_LISTEN];         /* bound sockets not yet in a handle */
  unsigned nfd;
  int port;                         /* bound, or -1 */
  int tls;
  uvws__netloop_t *nl;
  void *owner;                      /* the caller's, for its close callback */
} uvws__listen_t;

/* reuseport: the port is shared by several loops (each binds its own
 * socket); check_taken: refuse a port some other process listens on,
 * which SO_REUSEPORT alone would silently share. Logs what it binds
 * (at debug level when quiet). */
int uvws__net_listen_bind(uvws__listen_t *l, const char *host, int port, int tls, int reuseport,
                          int check_taken, int quiet);
int uvws__net_listen_start(uvws__netloop_t *nl, uvws__listen_t *l, void *owner);
/* Closes sockets bound but not started. */
void uvws__net_listen_discard(uvws__listen_t *l);
void uvws__net_listen_close(uvws__listen_t *l, uv_close_cb cb);

/* tls_filter.c: TLS between the socket and the stream's upper layer. */
int uvws__tls_filter_new(uvws__tcp_t *t);
void uvws__tls_filter_read(uvws__tcp_t *t, const char *data, size_t len);
int uvws__tls_filter_write(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n);
void uvws__tls_filter_close_notify(uvws__tcp_t *t);
/* tcp.c, for the filter: ciphertext to the socket, plaintext to the upper. */
int uvws__tcp_raw_write(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n);
void uvws__tcp_deliver(uvws__tcp_t *t, char *data, size_t len);
/* A batch of input: corks (1 if it took the cork), and at the end writes
 * what the batch produced and pays an owed on_writable. */
int uvws__tcp_begin_batch(uvws__tcp_t *t);
void uvws__tcp_end_batch(uvws__tcp_t *t);

#endif

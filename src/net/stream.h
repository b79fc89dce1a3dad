/* A stream: an ordered, reliable byte pipe to one peer, with a send queue.
 *
 * It is the seam between the transport and the protocols. Whoever made the
 * stream (net/tcp.c for TCP and TLS connections; a test's fake stream; an
 * HTTP/2 stream later) fills in `ops`, the calls going down. Whoever reads
 * it now (the HTTP session, then the WebSocket session after the upgrade)
 * installs `cb` and `upper`, the notifications coming up; the upgrade swaps
 * them (uSockets' socket contexts, h2o's socket callbacks). The layer below
 * never names an HTTP, WebSocket or pub/sub function.
 *
 * Water marks, the same for every protocol: above UVWS__QUEUE_HIGH queued
 * bytes the stream stops reading; at or below UVWS__QUEUE_LOW it reads
 * again and tells the upper layer (on_writable). A peer that sends without
 * reading therefore cannot grow the server's memory, whatever it speaks. */
#ifndef UVWS_STREAM_H
#define UVWS_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/wqueue.h"

#define UVWS__QUEUE_HIGH (1024u * 1024u)
#define UVWS__QUEUE_LOW (256u * 1024u)

typedef struct uvws__stream_s uvws__stream_t;

/* Notifications to the layer above. Each may close the stream; none may
 * free it (the stream is freed after on_close returns). */
typedef struct {
  /* Bytes from the peer (plaintext under TLS), in a buffer the stream owns
   * and reuses: valid during the call only, writable (the WebSocket engine
   * unmasks in place). Pausing is a wish: bytes already read (several TLS
   * records of one read) may still arrive once after it. */
  void (*on_data)(uvws__stream_t *s, char *data, size_t len);
  /* The queue went above the low-water mark, or the upper asked
   * (want_writable), and is at or below it again. */
  void (*on_writable)(uvws__stream_t *s);
  /* The turn the upper asked for with defer. */
  void (*on_resume)(uvws__stream_t *s);
  /* The peer sends nothing more (FIN). The upper answers what it still owes
   * and finishes, or closes. */
  void (*on_eof)(uvws__stream_t *s);
  /* The deadline the upper set passed. */
  void (*on_timeout)(uvws__stream_t *s);
  /* The server is shutting down: wind down gracefully. */
  void (*on_shutdown)(uvws__stream_t *s);
  /* The stream is gone: the last call. The upper frees its state. */
  void (*on_close)(uvws__stream_t *s);
} uvws__stream_cb_t;

/* Calls to the layer below. */
typedef struct {
  /* Writes in order behind anything queued; the bytes are copied or written
   * before it returns. 0, UVWS_ECLOSED, or an error after which the stream
   * is closing. */
  int (*write)(uvws__stream_t *s, const uv_buf_t *bufs, unsigned n);
  /* Queues b->data[off, off + len) by reference (no copy where the
   * transport allows), written after this loop iteration's I/O with
   * everything else shared this iteration. */
  int (*write_shared)(uvws__stream_t *s, uvws__sbuf_t *b, size_t off, size_t len);
  /* Bytes written by the upper but not yet taken by the kernel. */
  size_t (*queued)(const uvws__stream_t *s);
  /* 1: the upper takes no input for now (reading stops); 0: it does again. */
  void (*pause)(uvws__stream_t *s, int paused);
  /* Asks for on_writable once the queue is at or below the low mark. */
  void (*want_writable)(uvws__stream_t *s);
  /* Asks for on_resume after this loop iteration's I/O, whatever the
   * queue: an upper layer with more work than one turn's worth yields to
   * the other connections and comes back. */
  void (*defer)(uvws__stream_t *s);
  /* Small writes from now on gather and leave in one write at uncork.
   * Returns 1 if it corked (uncork must follow), 0 if a cork is held. */
  int (*cork)(uvws__stream_t *s);
  void (*uncork)(uvws__stream_t *s);
  /* Graceful end: input from now on is discarded; once the queue is written
   * (TLS close_notify first) FIN is sent, then the stream closes at the
   * peer's EOF or after the close timeout. */
  void (*finish)(uvws__stream_t *s);
  /* Closes now; `why` (NULL for a clean end) goes to the debug log. */
  void (*close)(uvws__stream_t *s, const char *why);
  /* A trusted proxy named the real client: counts `addr` instead of the
   * proxy's address against the per-address limit and names the peer by
   * it. 0, or -1 if that address is over the limit. */
  int (*set_client)(uvws__stream_t *s, const uint8_t addr[16]);
} uvws__stream_ops_t;

/* The part every kind of stream shares; the transport's own struct starts
 * with it. Owned and freed by the layer below. */
struct uvws__stream_s {
  const uvws__stream_ops_t *ops; /* set by the layer below, never changed */
  const uvws__stream_cb_t *cb;   /* set by the upper; swapped at the upgrade */
  void *upper;                   /* the upper layer's session */
  uv_loop_t *loop;
  uint64_t deadline;             /* uv_now() ms for on_timeout; 0 none (upper's) */
  uint8_t closing;               /* close requested: nothing more is delivered */
  uint8_t finishing;             /* finish requested */
  uint8_t secure;                /* TLS (or a secure HTTP/2 connection) */
  uint8_t via_proxy;             /* addr and peer are those a trusted proxy named */
  uint8_t addr[16];              /* the peer (IPv4 mapped into IPv6) */
  char peer[56];                 /* "ip:port" or "[ip]:port", for logs */
};

static inline void uvws__stream_set_upper(uvws__stream_t *s, const uvws__stream_cb_t *cb,
                                          void *upper) {
  s->cb = cb;
  s->upper = upper;
}

static inline int uvws__stream_write(uvws__stream_t *s, const uv_buf_t *b, unsigned n) {
  return s->ops->write(s, b, n);
}
static inline size_t uvws__stream_queued(const uvws__stream_t *s) { return s->ops->queued(s); }
static inline void uvws__stream_finish(uvws__stream_t *s) { s->ops->finish(s); }
static inline void uvws__stream_close(uvws__stream_t *s, const char *why) { s->ops->close(s, why); }

#endif

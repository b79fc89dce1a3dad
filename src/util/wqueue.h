/* A connection's send queue: a FIFO of chunks, each a slice of a
 * reference-counted buffer. Bytes a caller lends are copied into private
 * buffers (the tail one is filled up before a new one is made); shared
 * buffers, such as one broadcast frame, are queued by reference, so a
 * single copy serves every receiver. The queue owns one reference per
 * chunk; the bytes handed to uv_write stay at the head until consumed. */
#ifndef UVWS_WQUEUE_H
#define UVWS_WQUEUE_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

/* `refs` counts holders on the buffer's own loop and is never touched by
 * another thread. A frame published to several loops is shared across
 * threads this way: each other loop holds one cross-thread reference
 * (`xrefs`, atomic) and wraps the bytes in a view of its own (`parent`),
 * so a fan-out costs one atomic operation per loop, not per receiver. */
typedef struct uvws__sbuf_s {
  uint32_t refs;
  uint8_t priv;   /* private to one queue: its tail may still grow */
  uint8_t xshared; /* other loops hold references: freed through xrefs */
  _Atomic uint32_t xrefs;
  struct uvws__sbuf_s *parent; /* a view: data belongs to parent */
  size_t cap;
  size_t len;
  char *data;     /* the bytes after the struct, or the parent's */
} uvws__sbuf_t;

/* A new buffer with one reference, `cap` bytes of room, len 0. */
uvws__sbuf_t *uvws__sbuf_new(size_t cap);
void uvws__sbuf_ref(uvws__sbuf_t *b);
void uvws__sbuf_unref(uvws__sbuf_t *b);
/* Before handing `b` to `n` other loops: adds n cross-thread references. */
void uvws__sbuf_xref(uvws__sbuf_t *b, uint32_t n);
/* Drops one cross-thread reference (from any thread). */
void uvws__sbuf_xunref(uvws__sbuf_t *b);
/* On the receiving loop: a view of `shared` with one local reference; it
 * takes over the cross-thread reference the caller held. */
uvws__sbuf_t *uvws__sbuf_view(uvws__sbuf_t *shared);

typedef struct uvws__chunk_s {
  struct uvws__chunk_s *next;
  uvws__sbuf_t *b;
  size_t off, end; /* the queued slice of b->data */
} uvws__chunk_t;

typedef struct {
  uvws__chunk_t *head, *tail;
  size_t bytes; /* queued, including what uv_write holds */
} uvws__wq_t;

int uvws__wq_copy(uvws__wq_t *q, const void *p, size_t n);
/* Queues b->data[off, end) by reference (takes a new reference). */
int uvws__wq_share(uvws__wq_t *q, uvws__sbuf_t *b, size_t off, size_t end);
/* Fills up to `max` buffers from the head without removing anything;
 * returns how many and sets *bytes to their total. */
unsigned uvws__wq_peek(const uvws__wq_t *q, uv_buf_t *bufs, unsigned max, size_t *bytes);
/* Drops `n` bytes from the head, releasing emptied chunks. */
void uvws__wq_consume(uvws__wq_t *q, size_t n);
void uvws__wq_free(uvws__wq_t *q);
/* Frees this thread's spare chunks (when its loop is done). */
void uvws__wq_cache_drain(void);

#endif

/* A growable byte buffer. The struct owns `base` (malloc'd or NULL); free
 * it with uvws__buf_free. Consumed bytes are dropped from the front lazily
 * (an offset), so queues built on it need no memmove per write. */
#ifndef UVWS_WBUF_H
#define UVWS_WBUF_H

#include <stddef.h>

typedef struct {
  char *base;
  size_t off; /* bytes already consumed at the front */
  size_t len; /* bytes from base + off that are still queued */
  size_t cap;
} uvws__buf_t;

/* Makes room for `extra` more bytes at the end. 0 or UV_ENOMEM. */
int uvws__buf_reserve(uvws__buf_t *b, size_t extra);
int uvws__buf_append(uvws__buf_t *b, const void *p, size_t n);
void uvws__buf_consume(uvws__buf_t *b, size_t n);
void uvws__buf_free(uvws__buf_t *b);

static inline char *uvws__buf_data(const uvws__buf_t *b) { return b->base + b->off; }
static inline char *uvws__buf_tail(const uvws__buf_t *b) { return b->base + b->off + b->len; }

#endif

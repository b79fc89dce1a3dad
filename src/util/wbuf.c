#include "util/wbuf.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

int uvws__buf_reserve(uvws__buf_t *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (b->cap - b->off - b->len >= extra) return 0;
  /* Reclaim the consumed front first when that is enough and cheap. */
  if (b->off > 0 && b->cap - b->len >= extra && b->len <= b->off) {
    memmove(b->base, b->base + b->off, b->len);
    b->off = 0;
    return 0;
  }
  if (extra > (size_t)-1 / 2 - b->len) return UV_ENOMEM;
  need = b->len + extra;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  if (b->off == 0) {
    p = realloc(b->base, cap);
    if (p == NULL) return UV_ENOMEM;
  } else {
    p = malloc(cap);
    if (p == NULL) return UV_ENOMEM;
    memcpy(p, b->base + b->off, b->len);
    free(b->base);
    b->off = 0;
  }
  b->base = p;
  b->cap = cap;
  return 0;
}

int uvws__buf_append(uvws__buf_t *b, const void *p, size_t n) {
  int r;
  if (n == 0) return 0;
  r = uvws__buf_reserve(b, n);
  if (r != 0) return r;
  memcpy(uvws__buf_tail(b), p, n);
  b->len += n;
  return 0;
}

void uvws__buf_consume(uvws__buf_t *b, size_t n) {
  if (n >= b->len) {
    b->off = 0;
    b->len = 0;
  } else {
    b->off += n;
    b->len -= n;
  }
}

void uvws__buf_free(uvws__buf_t *b) {
  free(b->base);
  b->base = NULL;
  b->off = b->len = b->cap = 0;
}

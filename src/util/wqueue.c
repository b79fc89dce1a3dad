#include "util/wqueue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PRIVATE_MIN 4096

uvws__sbuf_t *uvws__sbuf_new(size_t cap) {
  uvws__sbuf_t *b = malloc(sizeof(*b) + cap);
  if (b == NULL) return NULL;
  b->refs = 1;
  b->priv = 0;
  b->xshared = 0;
  atomic_init(&b->xrefs, 1); /* the owning loop's references, as one */
  b->parent = NULL;
  b->cap = cap;
  b->len = 0;
  b->data = (char *)(b + 1);
  return b;
}

void uvws__sbuf_ref(uvws__sbuf_t *b) { b->refs++; }

void uvws__sbuf_xref(uvws__sbuf_t *b, uint32_t n) {
  b->xshared = 1;
  atomic_fetch_add_explicit(&b->xrefs, n, memory_order_relaxed);
}

void uvws__sbuf_xunref(uvws__sbuf_t *b) {
  /* acq_rel: whoever frees must see every other thread done with it. */
  if (atomic_fetch_sub_explicit(&b->xrefs, 1, memory_order_acq_rel) == 1) free(b);
}

void uvws__sbuf_unref(uvws__sbuf_t *b) {
  if (b == NULL || --b->refs != 0) return;
  if (b->parent) {
    uvws__sbuf_xunref(b->parent);
    free(b);
  } else if (b->xshared) {
    uvws__sbuf_xunref(b);
  } else {
    free(b);
  }
}

uvws__sbuf_t *uvws__sbuf_view(uvws__sbuf_t *shared) {
  uvws__sbuf_t *v = malloc(sizeof(*v));
  if (v == NULL) return NULL;
  v->refs = 1;
  v->priv = 0;
  v->xshared = 0;
  atomic_init(&v->xrefs, 1);
  v->parent = shared;
  v->cap = v->len = shared->len;
  v->data = shared->data;
  return v;
}

/* Chunks come and go once per queued frame (a broadcast queues one per
 * subscriber): each thread keeps up to CHUNK_CACHE spare ones instead of
 * calling malloc and free every time. A queue is only touched by its own
 * loop's thread, so no lock; uvws__wq_cache_drain() gives them back when a
 * loop ends. */
#define CHUNK_CACHE 4096
static _Thread_local uvws__chunk_t *spare;
static _Thread_local unsigned nspare;
/* A thread that ran a loop may end without telling us (an embedder's):
 * a key destructor frees its spares at thread exit. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_thread_exit(void *unused) {
  (void)unused;
  uvws__wq_cache_drain();
}

static void spare_key_init(void) { pthread_key_create(&spare_key, spare_thread_exit); }

static uvws__chunk_t *chunk_get(void) {
  uvws__chunk_t *c = spare;
  if (c == NULL) return malloc(sizeof(*c));
  spare = c->next;
  nspare--;
  return c;
}

static void chunk_put(uvws__chunk_t *c) {
  if (nspare >= CHUNK_CACHE) {
    free(c);
    return;
  }
  if (spare == NULL) { /* arm the thread-exit destructor (non-NULL value) */
    pthread_once(&spare_once, spare_key_init);
    pthread_setspecific(spare_key, &spare_key);
  }
  c->next = spare;
  spare = c;
  nspare++;
}

void uvws__wq_cache_drain(void) {
  while (spare) {
    uvws__chunk_t *c = spare;
    spare = c->next;
    free(c);
  }
  nspare = 0;
}

static int push(uvws__wq_t *q, uvws__sbuf_t *b, size_t off, size_t end) {
  uvws__chunk_t *c = chunk_get();
  if (c == NULL) return UV_ENOMEM;
  c->next = NULL;
  c->b = b;
  c->off = off;
  c->end = end;
  if (q->tail) q->tail->next = c;
  else q->head = c;
  q->tail = c;
  q->bytes += end - off;
  return 0;
}

int uvws__wq_copy(uvws__wq_t *q, const void *p, size_t n) {
  uvws__chunk_t *t = q->tail;
  const char *src = p;
  uvws__sbuf_t *b;
  if (n == 0) return 0;
  /* Fill the tail's room first: it is ours alone, and only its unsent end
   * changes (what uv_write holds lies before it). */
  if (t && t->b->priv && t->end == t->b->len && t->b->len < t->b->cap) {
    size_t k = t->b->cap - t->b->len;
    if (k > n) k = n;
    memcpy(t->b->data + t->b->len, src, k);
    t->b->len += k;
    t->end += k;
    q->bytes += k;
    src += k;
    n -= k;
    if (n == 0) return 0;
  }
  b = uvws__sbuf_new(n > PRIVATE_MIN ? n : PRIVATE_MIN);
  if (b == NULL) return UV_ENOMEM;
  b->priv = 1;
  memcpy(b->data, src, n);
  b->len = n;
  if (push(q, b, 0, n) != 0) {
    uvws__sbuf_unref(b);
    return UV_ENOMEM;
  }
  return 0;
}

int uvws__wq_share(uvws__wq_t *q, uvws__sbuf_t *b, size_t off, size_t end) {
  if (end <= off) return 0;
  uvws__sbuf_ref(b);
  if (push(q, b, off, end) != 0) {
    uvws__sbuf_unref(b);
    return UV_ENOMEM;
  }
  return 0;
}

unsigned uvws__wq_peek(const uvws__wq_t *q, uv_buf_t *bufs, unsigned max, size_t *bytes) {
  const uvws__chunk_t *c;
  unsigned n = 0;
  *bytes = 0;
  for (c = q->head; c && n < max; c = c->next) {
    bufs[n++] = uv_buf_init(c->b->data + c->off, (unsigned)(c->end - c->off));
    *bytes += c->end - c->off;
  }
  return n;
}

void uvws__wq_consume(uvws__wq_t *q, size_t n) {
  while (n > 0 && q->head) {
    uvws__chunk_t *c = q->head;
    size_t k = c->end - c->off;
    if (n < k) {
      c->off += n;
      q->bytes -= n;
      return;
    }
    n -= k;
    q->bytes -= k;
    q->head = c->next;
    if (q->head == NULL) q->tail = NULL;
    uvws__sbuf_unref(c->b);
    chunk_put(c);
  }
}

void uvws__wq_free(uvws__wq_t *q) { uvws__wq_consume(q, q->bytes); }

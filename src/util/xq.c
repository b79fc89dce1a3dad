#include "util/xq.h"

#include <stddef.h>

void uvws__xq_init(uvws__xq_t *q) { atomic_init(&q->head, NULL); }

int uvws__xq_push(uvws__xq_t *q, uvws__xnode_t *n) {
  uvws__xnode_t *old = atomic_load_explicit(&q->head, memory_order_relaxed);
  do {
    n->next = old;
    /* release: the node's contents are visible to the consumer that
     * acquires it in take(). */
  } while (!atomic_compare_exchange_weak_explicit(&q->head, &old, n, memory_order_release,
                                                  memory_order_relaxed));
  return old == NULL;
}

uvws__xnode_t *uvws__xq_take(uvws__xq_t *q) {
  uvws__xnode_t *n = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire), *fifo = NULL;
  /* The stack holds newest first: reverse it. */
  while (n) {
    uvws__xnode_t *next = n->next;
    n->next = fifo;
    fifo = n;
    n = next;
  }
  return fifo;
}

/* A multi-producer, single-consumer queue between threads, without locks:
 * any thread pushes (a compare-and-swap on the head), the owning loop takes
 * everything at once (one exchange) and gets it back in push order. A taken
 * batch is private to the consumer, so there is no ABA problem: a node is
 * never popped from under a producer. Nodes are intrusive; the queue owns
 * none of them. */
#ifndef UVWS_XQ_H
#define UVWS_XQ_H

#include <stdatomic.h>

typedef struct uvws__xnode_s {
  struct uvws__xnode_s *next;
} uvws__xnode_t;

typedef struct {
  _Atomic(uvws__xnode_t *) head; /* newest first */
} uvws__xq_t;

void uvws__xq_init(uvws__xq_t *q);
/* Any thread. Returns 1 if the queue was empty: the consumer needs waking
 * (a push onto a non-empty queue rides on the earlier push's wake-up). */
int uvws__xq_push(uvws__xq_t *q, uvws__xnode_t *n);
/* Consumer only: every queued node, oldest first, or NULL. */
uvws__xnode_t *uvws__xq_take(uvws__xq_t *q);

#endif

/* Topics: sessions subscribe to names; a publish frames the message once
 * and queues that one frame on every subscriber by reference, so a fan-out
 * to N receivers costs N queue entries, not N copies. Each loop keeps its
 * own table. Publishes that must also reach other loops or other
 * instances leave through the bus the runtime installed; what arrives from
 * them comes back in through uvws__pubsub_deliver. The pub/sub layer knows
 * neither threads nor Redis. */
#ifndef UVWS_PUBSUB_H
#define UVWS_PUBSUB_H

#include "util/wqueue.h"
#include "uvws.h"
#include "ws/session.h"

#define UVWS__TOPIC_BUCKETS 256

typedef struct uvws__topic_s uvws__topic_t;

/* Beyond this loop. Installed by the runtime; NULL for a single loop with
 * no Redis. */
typedef struct {
  /* A frame published on this loop, for everyone else (and, through the
   * inboxes, for this loop's subscribers too: the bus then delivers here
   * itself). `local`: this instance only, not to Redis. Returns 1 if it
   * delivers to this loop, 0 if the caller must. */
  int (*publish)(void *ctx, const char *topic, size_t n, uvws__sbuf_t *frame, size_t header_len,
                 uint64_t seq, int local);
  /* The publish sequence every loop shares: next=1 takes a number for a
   * publish, 0 reads the one the next publish will take. */
  uint64_t (*seq)(void *ctx, int next);
  void *ctx;
} uvws__bus_t;

/* Subscriber counts by topic over every loop, for uvws_topic_subscribers.
 * Shared by the loops of one server (owned by the primary); `lock` guards
 * the table. Only subscribe and unsubscribe touch it, never a publish. */
typedef struct uvws__census_s uvws__census_t;
int uvws__census_new(uvws__census_t **out);
void uvws__census_free(uvws__census_t *c);

/* One loop's topics. Owned by the loop's runtime; its thread only. */
typedef struct {
  uvws__topic_t *table[UVWS__TOPIC_BUCKETS];
  const uvws__bus_t *bus;
  uvws__census_t *census;
  uint64_t seq;            /* publish numbers without a bus */
} uvws__pubsub_t;

int uvws__pubsub_subscribe(uvws__pubsub_t *ps, uvws_conn_t *c, const char *topic);
int uvws__pubsub_unsubscribe(uvws__pubsub_t *ps, uvws_conn_t *c, const char *topic);
/* A session is gone: its subscriptions end. */
void uvws__pubsub_conn_closed(uvws__pubsub_t *ps, uvws_conn_t *c);
void uvws__pubsub_free(uvws__pubsub_t *ps);
/* `local`: for this instance's subscribers only, never to Redis. */
int uvws__pubsub_publish(uvws__pubsub_t *ps, const char *topic, uvws_opcode_t op, const void *data,
                         size_t len, int local);
/* 1 if this loop has subscribers of the topic. */
int uvws__pubsub_has(uvws__pubsub_t *ps, const char *topic, size_t n);
/* Queues `frame` on this loop's subscribers of the topic that subscribed
 * before publish number `seq`. Returns how many took it. */
int uvws__pubsub_deliver(uvws__pubsub_t *ps, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len, uint64_t seq);
size_t uvws__pubsub_count(const uvws__pubsub_t *ps, const char *topic);
uint64_t uvws__pubsub_seq(uvws__pubsub_t *ps, int next);

#endif

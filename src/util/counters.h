/* One loop's counters for /metrics. Each loop writes only its own (the
 * layer that decides what happened bumps the counter); /metrics, on any
 * loop, sums every loop's. UVWS__ADD is a relaxed load and store, not a
 * locked add: it costs what `x++` costs, and a reader on another thread
 * still sees whole values (never torn), which is all a scrape needs: no
 * other memory is published through them, so relaxed is enough. */
#ifndef UVWS_COUNTERS_H
#define UVWS_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t uvws__counter_t;
#define UVWS__ADD(ctr, n)                                                                    \
  atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n), \
                        memory_order_relaxed)
#define UVWS__GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)
#define UVWS__SET(ctr, v) atomic_store_explicit(&(ctr), (v), memory_order_relaxed) /* gauges */

/* Close codes are counted per code for 1000-1015 and in one bucket for
 * everything else (the application range 3000-4999). */
#define UVWS__CODE_BUCKETS 17
static inline int uvws__code_bucket(unsigned code) {
  return code >= 1000 && code <= 1015 ? (int)(code - 1000) : UVWS__CODE_BUCKETS - 1;
}

typedef struct {
  /* http */
  uvws__counter_t http_requests;
  uvws__counter_t http_status[6];        /* by class: 1xx .. 5xx (index 1..5) */
  uvws__counter_t handshakes_ok;
  uvws__counter_t handshakes_failed[6];  /* 400, 403, 404, 426, 503, other */
  /* net */
  uvws__counter_t conns_rejected;        /* over max_connections or per-IP limit */
  uvws__counter_t backpressure_pauses;   /* reading stopped: send queue over the high mark */
  /* ws */
  uvws__counter_t messages_in, messages_out;
  uvws__counter_t bytes_in, bytes_out;   /* WebSocket payload bytes */
  uvws__counter_t close_sent[UVWS__CODE_BUCKETS], close_rcvd[UVWS__CODE_BUCKETS];
  uvws__counter_t ping_timeouts, idle_closes, protocol_failures;
  uvws__counter_t backpressure_closes, backpressure_drops;
  /* runtime gauges */
  uvws__counter_t loop_lag_ms_last, loop_lag_ms_max;
  uvws__counter_t conns_http, conns_ws;  /* open connections by protocol */
  uvws__counter_t queued_bytes;          /* sampled by the sweep */
} uvws__metrics_t;

#endif

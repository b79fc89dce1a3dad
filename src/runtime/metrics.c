/* GET /metrics: the Prometheus text of every loop's counters, summed,
 * then the lines of the sources registered on the primary (Redis)
 * (counters are written by their own loop only, read here with relaxed
 * atomic loads: see uvws__metrics_t). */
#include "runtime/runtime.h"
#include "util/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void put(uvws__buf_t *out, const char *fmt, ...) UVWS__PRINTF(2, 3);
static void put(uvws__buf_t *out, const char *fmt, ...) {
  va_list ap;
  int n;
  if (uvws__buf_reserve(out, 256) != 0) return;
  va_start(ap, fmt);
  n = vsnprintf(uvws__buf_tail(out), 256, fmt, ap);
  va_end(ap);
  if (n > 0) out->len += (size_t)(n < 256 ? n : 255);
}

/* One counter without labels. */
static void put_counter(uvws__buf_t *out, const char *name, const char *help, uint64_t v) {
  put(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

#define NCOUNTERS (sizeof(uvws__metrics_t) / sizeof(uvws__counter_t))
#define AT(field) (offsetof(uvws__metrics_t, field) / sizeof(uvws__counter_t))

void uvws__metrics_render(const uvws_server_t *const *loops, unsigned nthreads, const uvws_server_t *srv,
                          uvws__buf_t *out) {
  static const char *const fail_reason[6] = {"bad_request", "origin", "not_found", "version", "unavailable", "other"};
  uint64_t t[NCOUNTERS];
  size_t http, ws, queued;
  unsigned k;
  int i;

  /* Every loop's counters, summed (the lags: the worst loop). This loop's
   * queue is measured now; the others' were sampled by their last sweep. */
  memset(t, 0, sizeof(t));
  for (k = 0; k < nthreads; k++) {
    const uvws_server_t *s = loops[k];
    const uvws__counter_t *ctr = (const uvws__counter_t *)&s->m;
    size_t j;
    for (j = 0; j < NCOUNTERS; j++) {
      uint64_t v = UVWS__GET(ctr[j]);
      if (j == AT(loop_lag_ms_last) || j == AT(loop_lag_ms_max)) t[j] = v > t[j] ? v : t[j];
      else if (j == AT(queued_bytes) && s == srv) continue;
      else t[j] += v;
    }
  }
  queued = uvws__net_queued(&srv->net) + (size_t)t[AT(queued_bytes)];
  http = (size_t)t[AT(conns_http)];
  ws = (size_t)t[AT(conns_ws)];
  put(out, "# HELP uvws_connections Open connections by kind.\n# TYPE uvws_connections gauge\n");
  put(out, "uvws_connections{kind=\"http\"} %zu\nuvws_connections{kind=\"websocket\"} %zu\n", http, ws);
  put(out, "# HELP uvws_queued_bytes Bytes waiting to be written, all connections.\n# TYPE uvws_queued_bytes gauge\nuvws_queued_bytes %zu\n", queued);
  put_counter(out, "uvws_connections_rejected_total", "Connections refused by a connection limit.", t[AT(conns_rejected)]);
  put_counter(out, "uvws_http_requests_total", "HTTP requests answered.", t[AT(http_requests)]);
  put(out, "# HELP uvws_http_responses_total HTTP responses by status class.\n# TYPE uvws_http_responses_total counter\n");
  for (i = 1; i <= 5; i++)
    put(out, "uvws_http_responses_total{class=\"%dxx\"} %llu\n", i, (unsigned long long)t[AT(http_status) + i]);
  put(out, "# HELP uvws_handshakes_total WebSocket upgrade requests by result.\n# TYPE uvws_handshakes_total counter\n");
  put(out, "uvws_handshakes_total{result=\"ok\"} %llu\n", (unsigned long long)t[AT(handshakes_ok)]);
  for (i = 0; i < 6; i++)
    put(out, "uvws_handshakes_total{result=\"%s\"} %llu\n", fail_reason[i], (unsigned long long)t[AT(handshakes_failed) + i]);
  put(out, "# HELP uvws_messages_total WebSocket messages.\n# TYPE uvws_messages_total counter\n");
  put(out, "uvws_messages_total{dir=\"in\"} %llu\nuvws_messages_total{dir=\"out\"} %llu\n",
      (unsigned long long)t[AT(messages_in)], (unsigned long long)t[AT(messages_out)]);
  put(out, "# HELP uvws_message_bytes_total WebSocket message payload bytes (uncompressed).\n# TYPE uvws_message_bytes_total counter\n");
  put(out, "uvws_message_bytes_total{dir=\"in\"} %llu\nuvws_message_bytes_total{dir=\"out\"} %llu\n",
      (unsigned long long)t[AT(bytes_in)], (unsigned long long)t[AT(bytes_out)]);
  put(out, "# HELP uvws_close_frames_total Close frames by code and direction.\n# TYPE uvws_close_frames_total counter\n");
  for (i = 0; i < UVWS__CODE_BUCKETS; i++) {
    char code[8];
    if (i == UVWS__CODE_BUCKETS - 1) snprintf(code, sizeof(code), "other");
    else snprintf(code, sizeof(code), "%d", 1000 + i);
    if (t[AT(close_sent) + i])
      put(out, "uvws_close_frames_total{dir=\"sent\",code=\"%s\"} %llu\n", code, (unsigned long long)t[AT(close_sent) + i]);
    if (t[AT(close_rcvd) + i])
      put(out, "uvws_close_frames_total{dir=\"received\",code=\"%s\"} %llu\n", code, (unsigned long long)t[AT(close_rcvd) + i]);
  }
  put_counter(out, "uvws_protocol_failures_total", "Connections failed for protocol errors.", t[AT(protocol_failures)]);
  put_counter(out, "uvws_ping_timeouts_total", "Connections dropped for an unanswered ping.", t[AT(ping_timeouts)]);
  put_counter(out, "uvws_idle_closes_total", "Connections closed by the idle timeout.", t[AT(idle_closes)]);
  put_counter(out, "uvws_backpressure_pauses_total", "Times reading stopped because a send queue was full.", t[AT(backpressure_pauses)]);
  put_counter(out, "uvws_backpressure_closes_total", "Connections closed (1013) for a send queue over max_backpressure.", t[AT(backpressure_closes)]);
  put_counter(out, "uvws_backpressure_drops_total", "Messages dropped for a send queue over max_backpressure.", t[AT(backpressure_drops)]);
  put(out, "# HELP uvws_loop_lag_milliseconds Event loop lag at the last check, and the largest seen.\n# TYPE uvws_loop_lag_milliseconds gauge\n");
  put(out, "uvws_loop_lag_milliseconds{which=\"last\"} %llu\nuvws_loop_lag_milliseconds{which=\"max\"} %llu\n",
      (unsigned long long)t[AT(loop_lag_ms_last)], (unsigned long long)t[AT(loop_lag_ms_max)]);
  put(out, "# HELP uvws_thread_connections Open connections per event loop thread (how evenly SO_REUSEPORT spreads them).\n# TYPE uvws_thread_connections gauge\n");
  for (k = 0; k < nthreads; k++) {
    const uvws__metrics_t *m = &loops[k]->m;
    put(out, "uvws_thread_connections{thread=\"%u\"} %llu\n", k,
        (unsigned long long)(UVWS__GET(m->conns_http) + UVWS__GET(m->conns_ws)));
  }
  {
    const uvws_server_t *p = loops[0];
    for (k = 0; k < p->nsources; k++) p->sources[k].render(p->sources[k].ctx, out);
  }
}

/* The connection layer: accepting, libuv reads and writes, the send queue
 * and its flushing, timeouts, and the end of a connection. What a
 * connection does once it speaks WebSocket is in conn_ws.c. */
#include "internal.h"
#include "log.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_closed(uv_handle_t *handle);

/* ---- the end of a connection -------------------------------------------- */

/* Closes the handle now. Every path that ends a connection comes here
 * once; the user's on_close runs later from on_closed, never re-entrantly
 * from inside one of the user's own calls. */
static void conn_close(uvws_conn_t *c) {
  if (c->state == UVWS__CONN_CLOSED) return;
  if (c->state == UVWS__CONN_WS) UVWS__ADD(c->srv->m.conns_ws, -1);
  else UVWS__ADD(c->srv->m.conns_http, -1);
  c->state = UVWS__CONN_CLOSED;
  uvws__pubsub_conn_closed(c);
  c->deadline = 0;
  if (c->opened) {
    uint64_t ms = uv_now(c->srv->loop) - c->started;
    unsigned code = c->close_code ? c->close_code : UVWS_CLOSE_ABNORMAL;
    if (c->srv->opts.log_connections && c->srv->opts.log_json)
      uvws__log(UVWS_LOG_INFO,
                "{\"event\":\"ws_close\",\"peer\":\"%s\",\"path\":\"%s\",\"code\":%u,\"by\":\"%s\","
                "\"duration_ms\":%llu}",
                c->peer, c->route->path, code, c->by_server ? "server" : "client",
                (unsigned long long)ms);
    else if (c->srv->opts.log_connections)
      uvws__log(UVWS_LOG_INFO, "ws close %s %s code=%u by=%s duration=%llu.%03llus", c->peer,
                c->route->path, code, c->by_server ? "server" : "client",
                (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_closed(uv_handle_t *handle) {
  uvws_conn_t *c = handle->data;
  if (c->opened && c->route->h.on_close) {
    const char *reason = "";
    size_t rlen = 0;
    unsigned code = c->close_code ? c->close_code : UVWS_CLOSE_ABNORMAL;
    if (c->close_rcvd) { /* the reason still sits in the control buffer */
      unsigned rc;
      if (uvws__close_parse(c->ws.ctl, c->ws.ctl_len, &rc, &reason, &rlen) != 0) rlen = 0;
    }
    c->route->h.on_close(c, (int)code, reason, rlen);
  }
  if (c->http) uvws__http_free(c);
  if (c->tls) {
    uvws__tls_free(c->tls);
    free(c->tls);
  }
  uvws__ws_free(&c->ws);
  if (c->def) {
    deflateEnd(c->def);
    free(c->def);
  }
  uvws__wq_free(&c->q);
  uvws__buf_free(&c->msg);
  if (c->has_addr) uvws__server_ip_del(c->srv, c->addr);
  uvws__server_conn_closed(c->srv, c);
  free(c);
}

/* The transport is unusable (reset, write error, timeout): close without
 * ceremony. */
void uvws__conn_abort(uvws_conn_t *c, const char *why) {
  if (c->state == UVWS__CONN_CLOSED) return;
  uvws__log(UVWS_LOG_DEBUG, "conn %s: %s", c->peer, why);
  conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  uvws_conn_t *c = req->handle->data;
  free(req);
  if (c->state == UVWS__CONN_CLOSED) return;
  if (status < 0) {
    uvws__conn_abort(c, uv_strerror(status));
    return;
  }
  /* FIN is out; wait for the peer's FIN (EOF) so that no unread bytes turn
   * our close into a reset that could destroy the last frames in flight. */
  c->deadline = uv_now(c->srv->loop) + c->srv->opts.close_timeout_ms;
  uvws__conn_update_reading(c);
}

static void do_shutdown(uvws_conn_t *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  int r;
  c->fin_sent = 1;
  if (req == NULL) {
    uvws__conn_abort(c, "out of memory");
    return;
  }
  r = uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown);
  if (r < 0) {
    free(req);
    uvws__conn_abort(c, uv_strerror(r));
  }
}

/* Sends FIN once everything queued is written, then closes on EOF or
 * after close_timeout_ms. */
void uvws__conn_finish(uvws_conn_t *c) {
  if (c->state == UVWS__CONN_CLOSED || c->finishing) return;
  if (c->tls) uvws__tls_io_close_notify(c); /* queued before the FIN */
  c->finishing = 1;
  c->deadline = uv_now(c->srv->loop) + c->srv->opts.close_timeout_ms;
  if (c->srv->corked == c) return; /* the cork flush will come back here */
  if (!c->write_inflight && c->q.bytes == 0) do_shutdown(c);
}

/* ---- writing --------------------------------------------------------------- */

size_t uvws__conn_queued(const uvws_conn_t *c) {
  size_t n = c->q.bytes;
  if (c->srv->corked == c) n += c->srv->cork.len;
  return n;
}

static void on_write(uv_write_t *req, int status);
static void drain_if_owed(uvws_conn_t *c);

#define WRITE_BUFS 16 /* chunks per uv_write; libuv copies more than 4 to the heap once */

static void start_write(uvws_conn_t *c) {
  uv_buf_t bufs[WRITE_BUFS];
  uv_write_t *req;
  unsigned n;
  int r;

  if (c->write_inflight || c->q.bytes == 0 || c->state == UVWS__CONN_CLOSED) return;
  /* The request is allocated per uv_write rather than kept in every
   * connection: most writes finish in uv_try_write, and an idle connection
   * should not carry 192 bytes it rarely uses. */
  req = malloc(sizeof(*req));
  if (req == NULL) {
    uvws__conn_abort(c, "out of memory");
    return;
  }
  /* The chunks stay at the head of the queue until the write completes;
   * new data is appended behind them. */
  n = uvws__wq_peek(&c->q, bufs, WRITE_BUFS, &c->q_inflight);
  r = uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
  if (r < 0) {
    free(req);
    c->q_inflight = 0;
    uvws__conn_abort(c, uv_strerror(r));
    return;
  }
  c->write_inflight = 1;
}

static void on_write(uv_write_t *req, int status) {
  uvws_conn_t *c = req->handle->data;
  size_t before = c->q.bytes;

  free(req);
  c->write_inflight = 0;
  if (c->state == UVWS__CONN_CLOSED) return;
  if (status < 0) {
    uvws__conn_abort(c, uv_strerror(status));
    return;
  }
  uvws__wq_consume(&c->q, c->q_inflight);
  c->q_inflight = 0;
  if (c->q.bytes) {
    start_write(c);
  } else if (c->finishing && !c->fin_sent) {
    do_shutdown(c);
    return;
  }
  if (c->state == UVWS__CONN_HTTP) {
    uvws__http_writable(c);
    if (c->peer_eof && c->state == UVWS__CONN_HTTP && !uvws__http_busy(c) && !c->write_inflight &&
        c->q.bytes == 0)
      conn_close(c); /* the half-closed client has everything */
  } else if (before > UVWS__QUEUE_LOW && uvws__conn_queued(c) <= UVWS__QUEUE_LOW) {
    uvws__conn_update_reading(c);
    c->drain_owed = 0;
    if (c->opened && c->route->h.on_drain && c->state == UVWS__CONN_WS) c->route->h.on_drain(c);
  } else {
    drain_if_owed(c);
  }
}

/* A route that was told UVWS_EBACKPRESSURE hears on_drain once the queue is
 * low again, even if the kernel took the backlog in one write and no
 * write completion ever crossed the low-water mark. */
static void drain_if_owed(uvws_conn_t *c) {
  if (!c->drain_owed || c->state != UVWS__CONN_WS || uvws__conn_queued(c) > UVWS__QUEUE_LOW) return;
  c->drain_owed = 0;
  if (c->opened && c->route->h.on_drain) c->route->h.on_drain(c);
}

/* Moves what the kernel did not take (`done` bytes of `bufs` were written)
 * to the connection's own queue. */
static int queue_rest(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t done) {
  unsigned i;
  for (i = 0; i < n; i++) {
    size_t len = bufs[i].len;
    if (done >= len) {
      done -= len;
      continue;
    }
    if (uvws__wq_copy(&c->q, bufs[i].base + done, len - done) != 0) return UV_ENOMEM;
    done = 0;
  }
  return 0;
}

/* uv_try_write with the outcomes every caller wants: the bytes the kernel
 * took (0 when it would block), or a negative error after which the
 * connection is being closed. */
static int try_write_now(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (r == UV_EAGAIN || r == UV_ENOSYS) return 0;
  if (r < 0) uvws__conn_abort(c, uv_strerror(r));
  return r;
}

/* After queueing: start the write, and stop reading past the high-water mark. */
static void queued(uvws_conn_t *c) {
  start_write(c);
  if (uvws__conn_queued(c) > UVWS__QUEUE_HIGH) uvws__conn_update_reading(c);
}

/* Writes in order behind anything already queued. Small writes made while
 * the connection's input is being processed gather in the loop's cork
 * buffer (one syscall for a whole batch of pipelined messages); otherwise
 * uv_try_write goes first and only what the kernel refuses is copied.
 * Returns 0, UVWS_ECLOSED, or an error after which the connection is being
 * closed. */
int uvws__conn_raw_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  uvws_server_t *srv = c->srv;
  uv_buf_t v[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  unsigned i, nv = 0;
  size_t total = 0;
  int r;

  if (c->state == UVWS__CONN_CLOSED || c->fin_sent) return UVWS_ECLOSED;
  for (i = 0; i < n; i++) total += bufs[i].len;

  if (c->write_inflight || c->q.bytes) {
    for (i = 0; i < n; i++) {
      if (uvws__wq_copy(&c->q, bufs[i].base, bufs[i].len) != 0) goto nomem;
    }
    queued(c);
    return 0;
  }
  if (srv->corked == c && total < UVWS__DIRECT_WRITE_MIN) {
    for (i = 0; i < n; i++) {
      if (uvws__buf_append(&srv->cork, bufs[i].base, bufs[i].len) != 0) goto nomem;
    }
    return 0;
  }

  /* Direct: whatever is corked goes first, in the same writev. */
  if (srv->corked == c && srv->cork.len)
    v[nv++] = uv_buf_init(uvws__buf_data(&srv->cork), (unsigned)srv->cork.len);
  for (i = 0; i < n && nv < 4; i++) v[nv++] = bufs[i];
  if (i < n) return UV_EINVAL; /* internal callers pass at most 3 */
  if ((r = try_write_now(c, v, nv)) < 0) return r;
  if (queue_rest(c, v, nv, (size_t)r) != 0) goto nomem;
  if (srv->corked == c) uvws__buf_consume(&srv->cork, srv->cork.len);
  queued(c);
  return 0;
nomem:
  uvws__log(UVWS_LOG_ERROR, "conn %s: out of memory queueing %zu bytes", c->peer, total);
  uvws__conn_abort(c, "out of memory");
  return UV_ENOMEM;
}

/* Gathers the small writes `c` makes from now on; returns 1 if it took
 * the cork (then uvws__conn_uncork must follow), 0 if another connection
 * holds it. */
int uvws__conn_cork(uvws_conn_t *c) {
  if (c->srv->corked != NULL) return 0;
  c->srv->corked = c;
  return 1;
}

/* Plaintext out: through TLS when the connection has it. */
int uvws__conn_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  return c->tls ? uvws__tls_io_write(c, bufs, n) : uvws__conn_raw_write(c, bufs, n);
}

/* End of a batch: one write for everything the batch produced. */
void uvws__conn_uncork(uvws_conn_t *c) {
  uvws_server_t *srv = c->srv;
  if (srv->corked != c) return;
  if (srv->cork.len && c->state != UVWS__CONN_CLOSED) {
    uv_buf_t b = uv_buf_init(uvws__buf_data(&srv->cork), (unsigned)srv->cork.len);
    srv->corked = NULL;
    if (!c->write_inflight && c->q.bytes == 0) {
      int r = try_write_now(c, &b, 1);
      if (r < 0) {
        uvws__buf_consume(&srv->cork, srv->cork.len);
        return;
      }
      if (queue_rest(c, &b, 1, (size_t)r) != 0) uvws__conn_abort(c, "out of memory");
    } else if (uvws__wq_copy(&c->q, b.base, b.len) != 0) {
      uvws__conn_abort(c, "out of memory");
    }
    start_write(c);
  }
  uvws__buf_consume(&srv->cork, srv->cork.len); /* sent, queued, or its connection is gone */
  srv->corked = NULL;
  /* Keep the cork buffer for the next batch unless one burst made it big. */
  if (srv->cork.cap > 4 * UVWS__READ_BUF_SIZE) uvws__buf_free(&srv->cork);
  if (c->state == UVWS__CONN_CLOSED) return;
  if (c->finishing && !c->fin_sent && !c->write_inflight && c->q.bytes == 0) do_shutdown(c);
  if (uvws__conn_queued(c) > UVWS__QUEUE_HIGH) uvws__conn_update_reading(c);
  drain_if_owed(c);
}

/* ---- reading --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  uvws_conn_t *c = handle->data;
  (void)suggested;
  /* One buffer for all connections of the loop: every read is processed
   * (or copied) before the next one is allocated. */
  *buf = uv_buf_init(c->srv->readbuf, UVWS__READ_BUF_SIZE);
}

void uvws__conn_update_reading(uvws_conn_t *c) {
  int want;
  if (c->state == UVWS__CONN_CLOSED) return;
  if (c->peer_eof)
    want = 0; /* nothing more will come */
  else if (c->finishing || c->failed || c->close_rcvd)
    want = 1; /* only to see EOF; input is discarded */
  else if (c->state == UVWS__CONN_HTTP)
    want = !uvws__http_busy(c);
  else
    want = uvws__conn_queued(c) <= UVWS__QUEUE_HIGH;
  if (want && !c->reading) {
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
      uvws__conn_abort(c, uv_strerror(r));
      return;
    }
    c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    if (c->state == UVWS__CONN_WS) UVWS__ADD(c->srv->m.backpressure_pauses, 1);
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  uvws_conn_t *c = stream->data;

  if (nread == 0 || c->state == UVWS__CONN_CLOSED) return;
  if (nread < 0) {
    if (c->state == UVWS__CONN_WS && !c->close_rcvd && !c->close_sent)
      uvws__log(UVWS_LOG_DEBUG, "ws %s: connection lost without a close frame (%s)", c->peer,
                uv_err_name((int)nread));
    if (nread == UV_EOF && c->state == UVWS__CONN_HTTP && !c->finishing &&
        (uvws__http_busy(c) || c->write_inflight || c->q.bytes)) {
      /* Half-close: the client is done sending, not receiving. Finish the
       * response in progress (and any pipelined ones), then close. */
      c->peer_eof = 1;
      uvws__conn_update_reading(c);
      return;
    }
    if (c->tls && nread == UV_EOF && uvws__tls_track_records(c->tls, NULL, 0))
      uvws__log(UVWS_LOG_INFO, "tls %s: connection closed inside a TLS record", c->peer);
    if (nread == UV_EOF) conn_close(c);
    else uvws__conn_abort(c, uv_strerror((int)nread));
    return;
  }
  if (c->tls) uvws__tls_io_read(c, buf->base, (size_t)nread);
  else uvws__conn_input(c, buf->base, (size_t)nread);
}

/* Plaintext from the peer: straight from the socket, or decrypted. */
void uvws__conn_input(uvws_conn_t *c, char *data, size_t len) {
  int corked;
  if (c->state == UVWS__CONN_CLOSED || c->finishing || c->failed || c->close_rcvd)
    return; /* draining until EOF */
  corked = uvws__conn_cork(c);
  if (c->state == UVWS__CONN_HTTP) {
    uvws__http_feed(c, data, len);
  } else {
    c->last_rx = uv_now(c->srv->loop); /* any bytes prove the peer alive */
    c->awaiting_pong = 0;
    uvws__conn_ws_feed(c, data, len);
  }
  if (corked) uvws__conn_uncork(c);
}

/* Called by the server's sweep when c->deadline has passed. */
void uvws__conn_timeout(uvws_conn_t *c) {
  c->deadline = 0;
  if (c->fin_sent || c->finishing) {
    uvws__conn_abort(c, "no FIN from the peer in time");
  } else if (c->state == UVWS__CONN_HTTP) {
    uvws__http_timeout(c);
  } else if (c->close_sent) {
    uvws__log(UVWS_LOG_INFO, "ws %s %s: no close frame from the peer in time", c->peer,
              c->route->path);
    uvws__conn_finish(c);
  }
}

/* ---- accept ------------------------------------------------------------------ */

static void peer_name(uvws_conn_t *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;

  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
      memcpy(c->addr, &a->sin6_addr, 16);
      uv_ip6_name(a, ip, sizeof(ip));
      port = ntohs(a->sin6_port);
      snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
      return;
    }
    uv_ip4_name((const struct sockaddr_in *)&ss, ip, sizeof(ip));
    port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    c->addr[10] = c->addr[11] = 0xff; /* ::ffff:a.b.c.d */
    memcpy(c->addr + 12, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
  }
  snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

int uvws__conn_accept(uvws_server_t *srv, uv_stream_t *listener, int tls) {
  uvws_conn_t *c = calloc(1, sizeof(*c));
  int r;

  if (c == NULL) return UV_ENOMEM;
  c->srv = srv;
  r = uv_tcp_init(srv->loop, &c->tcp);
  if (r < 0) {
    free(c);
    return r;
  }
  c->tcp.data = c;
  /* Linked before anything can fail, so on_closed can always unlink. */
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  UVWS__ADD(srv->m.conns_http, 1);
  uvws__server_count_conn(srv, 1);
  r = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (r == 0) r = uvws__http_init(c);
  if (r == 0 && tls) r = uvws__tls_io_new(c);
  if (r < 0) {
    conn_close(c);
    return r;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  peer_name(c);
  c->started = uv_now(srv->loop);
  c->deadline = c->started + srv->opts.handshake_timeout_ms;
  /* Limits are answered in HTTP, so clients and logs see why (over TLS
   * that would cost a handshake first: those are just closed). */
  if (srv->opts.max_connections && uvws__server_total_conns(srv) > srv->opts.max_connections) {
    if (c->tls) {
      uvws__log(UVWS_LOG_WARN, "conn %s: refused, %u connections open (--max-connections)", c->peer,
                srv->opts.max_connections);
      UVWS__ADD(srv->m.conns_rejected, 1);
      conn_close(c);
      return 0;
    }
    uvws__log(UVWS_LOG_WARN, "conn %s: refused, %u connections open (--max-connections)", c->peer,
              srv->opts.max_connections);
    uvws__http_reject(c, 503, "too many connections");
    return 0;
  }
  if (srv->opts.max_connections_per_ip) {
    int n = uvws__server_ip_add(srv, c->addr);
    if (n < 0) {
      conn_close(c);
      return n;
    }
    c->has_addr = 1;
    if ((unsigned)n > srv->opts.max_connections_per_ip && c->tls) {
      uvws__log(UVWS_LOG_WARN, "conn %s: refused, %d connections from this address", c->peer, n - 1);
      UVWS__ADD(srv->m.conns_rejected, 1);
      conn_close(c);
      return 0;
    }
    if ((unsigned)n > srv->opts.max_connections_per_ip) {
      uvws__log(UVWS_LOG_WARN, "conn %s: refused, %d connections from this address (--max-connections-per-ip)",
                c->peer, n - 1);
      uvws__http_reject(c, 429, "too many connections from your address");
      return 0;
    }
  }
  uvws__conn_update_reading(c);
  return 0;
}

/* The client a trusted proxy named replaces the proxy as the peer (in the
 * logs) and in the per-address count. Returns 0, or -1 if that address is
 * over --max-connections-per-ip (the caller answers 429). */
int uvws__conn_set_client(uvws_conn_t *c, const uint8_t addr[16]) {
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  uvws_server_t *srv = c->srv;
  char ip[INET6_ADDRSTRLEN] = "?";
  int n;

  if (c->has_addr) {
    uvws__server_ip_del(srv, c->addr);
    c->has_addr = 0;
  }
  memcpy(c->addr, addr, 16);
  c->via_proxy = 1;
  if (memcmp(addr, v4mapped, 12) == 0) {
    uv_inet_ntop(AF_INET, addr + 12, ip, sizeof(ip));
    snprintf(c->peer, sizeof(c->peer), "%s", ip);
  } else {
    uv_inet_ntop(AF_INET6, addr, ip, sizeof(ip));
    snprintf(c->peer, sizeof(c->peer), "[%s]", ip);
  }
  if (!srv->opts.max_connections_per_ip) return 0;
  n = uvws__server_ip_add(srv, c->addr);
  if (n < 0) return -1;
  c->has_addr = 1;
  if ((unsigned)n > srv->opts.max_connections_per_ip) {
    uvws__log(UVWS_LOG_WARN, "conn %s: refused, %d connections from this address (--max-connections-per-ip)",
              c->peer, n - 1);
    UVWS__ADD(srv->m.conns_rejected, 1);
    return -1;
  }
  return 0;
}

/* The flusher (a uv_check, after each iteration's I/O callbacks): one write
 * per connection that received shared frames. */
void uvws__conn_flush_all(uvws_server_t *srv) {
  uvws_conn_t *c = srv->flush_head, *next;
  srv->flush_head = NULL;
  for (; c; c = next) {
    uv_buf_t bufs[WRITE_BUFS];
    size_t bytes;
    unsigned n;
    int r;
    next = c->flush_next;
    c->flush_pending = 0;
    c->flush_next = NULL;
    if (c->state == UVWS__CONN_CLOSED || c->write_inflight || c->q.bytes == 0) continue;
    n = uvws__wq_peek(&c->q, bufs, WRITE_BUFS, &bytes);
    if ((r = try_write_now(c, bufs, n)) < 0) continue;
    uvws__wq_consume(&c->q, (size_t)r);
    if (c->q.bytes) start_write(c);
    drain_if_owed(c);
  }
}

/* A connection freed while waiting for the flusher leaves its list. */
void uvws__conn_flush_forget(uvws_conn_t *c) {
  uvws_conn_t **p;
  if (!c->flush_pending) return;
  for (p = &c->srv->flush_head; *p; p = &(*p)->flush_next) {
    if (*p == c) {
      *p = c->flush_next;
      break;
    }
  }
  c->flush_pending = 0;
}

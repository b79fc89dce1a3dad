/* The connection layer: libuv reads and writes, the send queue, the
 * WebSocket state after the upgrade, and the end of a connection. The
 * protocol rules themselves are in ws.c; this file decides what to do
 * about them. */
#include "internal.h"
#include "log.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_closed(uv_handle_t *handle);
static int ws_on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin);
static int ws_on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len);

static void ws_on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                        size_t head_len);

static const uvws__ws_callbacks_t ws_callbacks = {ws_on_data, ws_on_control, NULL};
static const uvws__ws_callbacks_t ws_callbacks_traced = {ws_on_data, ws_on_control, ws_on_frame};

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
    if (c->opened && c->route->h.on_drain && c->state == UVWS__CONN_WS) c->route->h.on_drain(c);
  }
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

static void ws_feed(uvws_conn_t *c, char *data, size_t len);

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
    ws_feed(c, data, len);
  }
  if (corked) uvws__conn_uncork(c);
}

/* ---- WebSocket --------------------------------------------------------------- */

/* Reports one frame to the route's on_frame. Frames the callback sends are
 * not reported, or tracing would feed on itself. */
static void trace(uvws_conn_t *c, uvws_frame_dir_t dir, const uint8_t *hdr, size_t hlen,
                  uint64_t len, const uint8_t *payload, size_t plen) {
  uvws_frame_info_t fi;
  uint8_t len7 = hdr[1] & 0x7f;

  if (c->tracing || c->route->h.on_frame == NULL) return;
  memset(&fi, 0, sizeof(fi));
  fi.dir = dir;
  fi.fin = hdr[0] >> 7;
  fi.rsv = hdr[0] & 0x70;
  fi.opcode = hdr[0] & 0x0f;
  fi.masked = hdr[1] >> 7;
  if (fi.masked) memcpy(fi.mask, hdr + hlen - 4, 4);
  fi.len = len;
  fi.len_bits = len7 < 126 ? 7 : len7 == 126 ? 16 : 64;
  fi.header = hdr;
  fi.header_len = hlen;
  fi.payload = payload;
  fi.payload_len = plen < UVWS__WS_PEEK ? plen : UVWS__WS_PEEK;
  c->tracing = 1;
  c->route->h.on_frame(c, &fi);
  c->tracing = 0;
}

static void ws_on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                        size_t head_len) {
  uvws_conn_t *c = ws->data;
  trace(c, UVWS_FRAME_IN, uvws__frame_raw_header(&ws->fp), h->size, h->len, head, head_len);
}

/* The deflater for this connection's next message: its own with context
 * takeover, else the loop's shared one (each message resets it). */
static z_stream *deflater(uvws_conn_t *c) {
  uvws_server_t *srv = c->srv;
  z_stream **slot = &c->def;
  if (c->pmd.server_no_takeover && c->pmd.server_bits == srv->pmd.server_max_bits)
    slot = &srv->shared_def;
  if (*slot == NULL) {
    z_stream *z = malloc(sizeof(*z));
    if (z == NULL) return NULL;
    if (uvws__pmd_deflate_init(z, srv->pmd.level, c->pmd.server_bits, srv->pmd.mem_level) != 0) {
      free(z);
      return NULL;
    }
    *slot = z;
  }
  return *slot;
}

static void ws_fail(uvws_conn_t *c, unsigned code, const char *why);

static int send_frame_ex(uvws_conn_t *c, int opcode, const void *data, size_t len, int compress) {
  uvws_server_t *srv = c->srv;
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uv_buf_t b[2];
  uvws__buf_t zb = {NULL, 0, 0, 0};
  size_t hl;
  int rsv = 0, r;

  if (compress) {
    z_stream *z = deflater(c);
    /* Borrow the loop's scratch buffer: a tracer may send (and compress)
     * another message before this one is queued. */
    zb = srv->zbuf;
    memset(&srv->zbuf, 0, sizeof(srv->zbuf));
    zb.off = zb.len = 0;
    if (z == NULL || uvws__pmd_deflate(z, data, len, &zb, c->pmd.server_no_takeover) != 0) {
      /* The stream state is unknown now; the peer could not follow it. */
      uvws__buf_free(&zb);
      ws_fail(c, UVWS_CLOSE_INTERNAL, "compression failed");
      return UV_ENOMEM;
    }
    data = uvws__buf_data(&zb);
    len = zb.len;
    rsv = 0x40;
  }
  hl = uvws__frame_header_encode(hdr, 1, rsv, opcode, len, NULL);
  r = 0;
  if (c->route->h.on_frame) {
    trace(c, UVWS_FRAME_OUT, hdr, hl, len, data, len);
    if (c->state != UVWS__CONN_WS || c->fin_sent) r = UVWS_ECLOSED;
  }
  if (r == 0) {
    b[0] = uv_buf_init((char *)hdr, (unsigned)hl);
    b[1] = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    r = uvws__conn_write(c, b, len ? 2 : 1);
  }
  if (compress) { /* give the scratch buffer back, or drop the spare */
    if (srv->zbuf.cap == 0 && zb.cap <= 4 * UVWS__READ_BUF_SIZE) srv->zbuf = zb;
    else uvws__buf_free(&zb);
  }
  return r;
}

static int send_frame(uvws_conn_t *c, int opcode, const void *data, size_t len) {
  return send_frame_ex(c, opcode, data, len, 0);
}

static int send_close(uvws_conn_t *c, unsigned code, const char *reason, size_t rlen) {
  uint8_t p[125];
  size_t n = 0;
  int r;
  if (c->close_sent) return UVWS_ECLOSED;
  if (code != UVWS_CLOSE_NO_STATUS) {
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rlen > sizeof(p) - 2) rlen = sizeof(p) - 2;
    memcpy(p + 2, reason, rlen);
    n = 2 + rlen;
  }
  /* The flag goes up after the frame is traced, so a tracer may still
   * report it before it leaves; nothing else can run in between. */
  r = send_frame(c, UVWS_OP_CLOSE, p, n);
  c->close_sent = 1;
  UVWS__ADD(c->srv->m.close_sent[uvws__code_bucket(code)], 1);
  return r;
}

/* _Fail the WebSocket Connection_ (section 7.1.7): close frame, FIN, done.
 * Input after this point is discarded. */
static void ws_fail(uvws_conn_t *c, unsigned code, const char *why) {
  if (c->srv->opts.log_json)
    uvws__log(UVWS_LOG_INFO, "{\"event\":\"ws_fail\",\"peer\":\"%s\",\"path\":\"%s\",\"code\":%u,\"reason\":\"%s\"}",
              c->peer, c->route->path, code, why);
  else
    uvws__log(UVWS_LOG_INFO, "ws fail %s %s code=%u: %s", c->peer, c->route->path, code, why);
  UVWS__ADD(c->srv->m.protocol_failures, 1);
  if (!c->close_sent) {
    c->by_server = 1;
    c->close_code = (uint16_t)code;
    send_close(c, code, why, strlen(why));
  }
  c->failed = 1;
  uvws__buf_free(&c->msg);
  uvws__conn_finish(c);
}

static void deliver(uvws_conn_t *c, int opcode, const void *p, size_t len) {
  c->last_msg = uv_now(c->srv->loop);
  UVWS__ADD(c->srv->m.messages_in, 1);
  UVWS__ADD(c->srv->m.bytes_in, len);
  if (c->route->h.on_message) c->route->h.on_message(c, (uvws_opcode_t)opcode, p, len);
}

/* Stops the feed as soon as the connection no longer takes messages. */
static int ws_stopped(const uvws_conn_t *c) {
  return c->state != UVWS__CONN_WS || c->failed || c->close_rcvd;
}

static int ws_on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin) {
  uvws_conn_t *c = ws->data;
  if (c->close_sent) return 0; /* we are closing: data is read and dropped */
  if (c->route->h.on_fragment) { /* streaming: no reassembly, no copy */
    if (fin) {
      c->last_msg = uv_now(c->srv->loop);
      UVWS__ADD(c->srv->m.messages_in, 1);
    }
    UVWS__ADD(c->srv->m.bytes_in, len);
    c->route->h.on_fragment(c, (uvws_opcode_t)opcode, p, len, fin);
    return ws_stopped(c);
  }
  if (first && fin) {
    deliver(c, opcode, p, len); /* the common case: straight from the read buffer */
  } else {
    if (uvws__buf_append(&c->msg, p, len) != 0) {
      ws_fail(c, UVWS_CLOSE_INTERNAL, "out of memory");
      return 1;
    }
    if (fin) {
      deliver(c, opcode, uvws__buf_data(&c->msg), c->msg.len);
      /* Kept for the next one (no allocation per message in steady state);
       * a big one is given back now, a small one when the connection goes
       * quiet (uvws__conn_keepalive). */
      if (c->msg.cap > UVWS__MSG_KEEP) uvws__buf_free(&c->msg);
      else c->msg.len = c->msg.off = 0;
    }
  }
  return ws_stopped(c);
}

static int ws_on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len) {
  uvws_conn_t *c = ws->data;
  unsigned code;
  const char *reason;
  size_t rlen;
  int bad;

  switch (opcode) {
    case UVWS_OP_PING:
      if (!c->close_sent) send_frame(c, UVWS_OP_PONG, p, len);
      return ws_stopped(c);
    case UVWS_OP_PONG:
      return 0;
    default: /* close: the only other opcode ws.c lets through */
      bad = uvws__close_parse(p, len, &code, &reason, &rlen);
      if (bad) {
        ws_fail(c, (unsigned)bad,
                bad == UVWS_CLOSE_INVALID_DATA ? "close reason is not UTF-8"
                                               : "invalid close code or payload");
        return 1;
      }
      c->close_rcvd = 1;
      UVWS__ADD(c->srv->m.close_rcvd[uvws__code_bucket(code)], 1);
      if (!c->close_sent) {
        /* Echo the peer's code and reason (section 5.5.1); with no code,
         * answer 1000. */
        c->close_code = (uint16_t)code;
        send_close(c, code == UVWS_CLOSE_NO_STATUS ? UVWS_CLOSE_NORMAL : code, reason, rlen);
      } else {
        c->close_code = (uint16_t)code; /* the peer's answer to our close */
      }
      uvws__buf_free(&c->msg);
      uvws__conn_finish(c);
      return 1;
  }
}

static void ws_feed(uvws_conn_t *c, char *data, size_t len) {
  long r = uvws__ws_feed(&c->ws, (uint8_t *)data, len);
  if (r < 0) ws_fail(c, c->ws.fail_code, c->ws.fail_reason);
}

void uvws__conn_upgrade(uvws_conn_t *c, const uvws__route_t *route, const char *protocol,
                        const uvws__pmd_params_t *pmd, const char *extensions, char *rest,
                        size_t rest_len) {
  c->state = UVWS__CONN_WS;
  UVWS__ADD(c->srv->m.conns_http, -1);
  UVWS__ADD(c->srv->m.conns_ws, 1);
  c->route = route;
  c->protocol = protocol;
  c->deadline = 0;
  c->started = uv_now(c->srv->loop);
  uvws__ws_init(&c->ws, route->h.on_frame ? &ws_callbacks_traced : &ws_callbacks, c,
                c->srv->opts.max_message);
  c->ws.max_frame = c->srv->opts.max_frame;
  c->last_rx = c->last_msg = c->started;
  if (pmd) {
    c->pmd = *pmd;
    uvws__ws_enable_deflate(&c->ws, pmd);
  }
  c->opened = 1;
  if (c->srv->opts.log_connections && c->srv->opts.log_json)
    uvws__log(UVWS_LOG_INFO,
              "{\"event\":\"ws_open\",\"peer\":\"%s\",\"path\":\"%s\",\"protocol\":\"%s\","
              "\"extensions\":\"%s\"}",
              c->peer, route->path, protocol ? protocol : "", extensions ? extensions : "");
  else if (c->srv->opts.log_connections)
    uvws__log(UVWS_LOG_INFO, "ws open %s %s protocol=%s extensions=%s", c->peer, route->path,
              protocol ? protocol : "-", extensions ? extensions : "-");
  if (route->h.on_open) route->h.on_open(c); /* may read the request: freed after */
  uvws__http_free(c);
  if (rest_len && !ws_stopped(c) && c->state == UVWS__CONN_WS) ws_feed(c, rest, rest_len);
  uvws__conn_update_reading(c);
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

/* Called by the sweep for open WebSockets: pings quiet peers, drops those
 * that do not answer, closes idle ones. */
void uvws__conn_keepalive(uvws_conn_t *c, uint64_t now) {
  const uvws_options_t *o = &c->srv->opts;
  if (c->close_sent || c->failed || c->close_rcvd || c->finishing) return;
  if (o->ping_interval_ms) {
    if (c->awaiting_pong && now - c->ping_sent >= o->ping_timeout_ms) {
      uvws__log(UVWS_LOG_INFO, "ws %s %s: no pong within %ums; dropping", c->peer,
                c->route->path, o->ping_timeout_ms);
      UVWS__ADD(c->srv->m.ping_timeouts, 1);
      c->close_code = UVWS_CLOSE_ABNORMAL;
      c->by_server = 1;
      uvws__conn_abort(c, "ping timeout");
      return;
    }
    if (!c->awaiting_pong && now - c->last_rx >= o->ping_interval_ms) {
      c->awaiting_pong = 1;
      c->ping_sent = now;
      send_frame(c, UVWS_OP_PING, NULL, 0);
      if (c->state != UVWS__CONN_WS) return;
    }
  }
  if (c->msg.cap && c->msg.len == 0 && now - c->last_rx >= UVWS__MSG_KEEP_MS) uvws__buf_free(&c->msg);
  if (o->idle_timeout_ms && now - c->last_msg >= o->idle_timeout_ms) {
    uvws__log(UVWS_LOG_INFO, "ws %s %s: no message for %ums; closing", c->peer, c->route->path,
              o->idle_timeout_ms);
    UVWS__ADD(c->srv->m.idle_closes, 1);
    uvws_close(c, UVWS_CLOSE_GOING_AWAY, "idle timeout");
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

/* ---- public connection API -------------------------------------------------- */

/* A receiver that does not keep up must not grow the server's memory nor
 * slow whoever is sending to it: its messages are dropped, or it is told to
 * come back later (1013) with what is already queued. 0 or the error. */
static int backpressure(uvws_conn_t *c, size_t len) {
  if (!c->srv->opts.max_backpressure || uvws__conn_queued(c) + len <= c->srv->opts.max_backpressure)
    return 0;
  if (c->route->drop_on_backpressure) {
    UVWS__ADD(c->srv->m.backpressure_drops, 1);
    return UVWS_EBACKPRESSURE;
  }
  UVWS__ADD(c->srv->m.backpressure_closes, 1);
  uvws__log(UVWS_LOG_INFO, "ws %s %s: %zu bytes queued (--max-backpressure); closing with 1013", c->peer,
            c->route->path, uvws__conn_queued(c));
  c->by_server = 1;
  c->close_code = UVWS_CLOSE_TRY_AGAIN;
  send_close(c, UVWS_CLOSE_TRY_AGAIN, "send queue full", 15);
  c->failed = 1;
  uvws__conn_finish(c);
  return UVWS_EBACKPRESSURE;
}

int uvws_send_ex(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len, unsigned flags) {
  int r;
  uint8_t was;
  if (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY) return UV_EINVAL;
  if (c->state != UVWS__CONN_WS || c->close_sent || c->failed) return UVWS_ECLOSED;
  if ((r = backpressure(c, len)) != 0) return r;
  was = c->tracing;
  if (flags & UVWS_SEND_UNTRACED) c->tracing = 1;
  UVWS__ADD(c->srv->m.messages_out, 1);
  UVWS__ADD(c->srv->m.bytes_out, len);
  r = send_frame_ex(c, op, data, len,
                    c->ws.pmd && len >= c->srv->opts.deflate_min_size && !(flags & UVWS_SEND_NO_COMPRESS));
  c->tracing = was;
  return r;
}

/* One frame (header and payload in `frame`) built once for many receivers:
 * queued by reference, never copied, unless TLS must encrypt it for this
 * connection or the kernel takes it whole right away. */
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

int uvws__conn_send_shared(uvws_conn_t *c, uvws__sbuf_t *frame, size_t header_len) {
  uvws_server_t *srv = c->srv;
  size_t len = frame->len, payload = len - header_len;
  uv_buf_t b = uv_buf_init(frame->data, (unsigned)len);
  int r;

  if (c->state != UVWS__CONN_WS || c->close_sent || c->failed) return UVWS_ECLOSED;
  if ((r = backpressure(c, payload)) != 0) return r;
  UVWS__ADD(srv->m.messages_out, 1);
  UVWS__ADD(srv->m.bytes_out, payload);
  if (c->route->h.on_frame) {
    trace(c, UVWS_FRAME_OUT, (const uint8_t *)frame->data, header_len, payload,
          (const uint8_t *)frame->data + header_len, payload);
    if (c->state != UVWS__CONN_WS) return UVWS_ECLOSED; /* the tracer may have closed it */
  }
  if (c->tls) return uvws__tls_io_write(c, &b, 1); /* encrypted per connection: no sharing */
  if (srv->corked == c && srv->cork.len) { /* what this connection gathered goes first */
    if (uvws__wq_copy(&c->q, uvws__buf_data(&srv->cork), srv->cork.len) != 0) goto nomem;
    uvws__buf_consume(&srv->cork, srv->cork.len);
  }
  /* Not written now: every publish of this loop iteration gathers in the
   * queue and leaves in one write per subscriber, after the I/O callbacks
   * (flush_all). Under load, publishes arrive in batches and the syscalls
   * per delivery fall. */
  if (uvws__wq_share(&c->q, frame, 0, len) != 0) goto nomem;
  if (!c->flush_pending && !c->write_inflight) {
    c->flush_pending = 1;
    c->flush_next = srv->flush_head;
    srv->flush_head = c;
  }
  if (uvws__conn_queued(c) > UVWS__QUEUE_HIGH) uvws__conn_update_reading(c);
  return 0;
nomem:
  uvws__conn_abort(c, "out of memory");
  return UV_ENOMEM;
}

int uvws_send(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  return uvws_send_ex(c, op, data, len, 0);
}

int uvws_send_text(uvws_conn_t *c, const char *text) {
  return uvws_send(c, UVWS_OP_TEXT, text, strlen(text));
}

int uvws_ping(uvws_conn_t *c, const void *data, size_t len) {
  if (len > 125) return UV_EINVAL;
  if (c->state != UVWS__CONN_WS || c->close_sent || c->failed) return UVWS_ECLOSED;
  return send_frame(c, UVWS_OP_PING, data, len);
}

int uvws_close(uvws_conn_t *c, int code, const char *reason) {
  size_t rlen = reason ? strlen(reason) : 0;
  int r;
  if (code < 0 || !uvws__close_code_valid((unsigned)code)) return UVWS_EBADCODE;
  if (rlen > 123 || !uvws__utf8_valid(reason ? reason : "", rlen)) return UV_EINVAL;
  if (c->state != UVWS__CONN_WS || c->close_sent || c->failed) return UVWS_ECLOSED;
  c->by_server = 1;
  c->close_code = (uint16_t)code;
  r = send_close(c, (unsigned)code, reason, rlen);
  if (c->state == UVWS__CONN_WS && !c->finishing)
    c->deadline = uv_now(c->srv->loop) + c->srv->opts.close_timeout_ms;
  return r;
}

void *uvws_conn_get_data(const uvws_conn_t *c) { return c->data; }
void uvws_conn_set_data(uvws_conn_t *c, void *data) { c->data = data; }
void *uvws_conn_route_data(const uvws_conn_t *c) { return c->route ? c->route->user : NULL; }
uvws_server_t *uvws_conn_server(const uvws_conn_t *c) { return c->srv; }
const char *uvws_conn_path(const uvws_conn_t *c) { return c->route ? c->route->path : NULL; }
const char *uvws_conn_protocol(const uvws_conn_t *c) { return c->protocol; }
int uvws_conn_compressed(const uvws_conn_t *c) { return c->ws.pmd; }
const char *uvws_conn_peer(const uvws_conn_t *c) { return c->peer; }
size_t uvws_conn_buffered_amount(const uvws_conn_t *c) { return uvws__conn_queued(c); }

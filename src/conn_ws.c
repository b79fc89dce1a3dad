/* A connection after the upgrade: the WebSocket engine's callbacks (ws.c
 * decides what the bytes mean, this file what to do about it), sending
 * frames, keep-alive, and the public connection API (uvws_send, uvws_close
 * and the rest). The protocol rules themselves are in ws.c. */
#include "internal.h"
#include "log.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

static int ws_on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin);
static int ws_on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len);

static void ws_on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                        size_t head_len);

static const uvws__ws_callbacks_t ws_callbacks = {ws_on_data, ws_on_control, NULL};
static const uvws__ws_callbacks_t ws_callbacks_traced = {ws_on_data, ws_on_control, ws_on_frame};

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

void uvws__conn_ws_feed(uvws_conn_t *c, char *data, size_t len) {
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
  if (rest_len && !ws_stopped(c) && c->state == UVWS__CONN_WS) uvws__conn_ws_feed(c, rest, rest_len);
  uvws__conn_update_reading(c);
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

/* ---- public connection API -------------------------------------------------- */

/* A receiver that does not keep up must not grow the server's memory nor
 * slow whoever is sending to it: its messages are dropped, or it is told to
 * come back later (1013) with what is already queued. 0 or the error. */
static int backpressure(uvws_conn_t *c, size_t len) {
  if (!c->srv->opts.max_backpressure || uvws__conn_queued(c) + len <= c->srv->opts.max_backpressure)
    return 0;
  if (c->route->drop_on_backpressure) {
    UVWS__ADD(c->srv->m.backpressure_drops, 1);
    c->drain_owed = 1;
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

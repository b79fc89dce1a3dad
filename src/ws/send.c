/* Sending on a WebSocket session: frames (compressed when negotiated),
 * tracing of what is sent, backpressure, and the public connection API
 * (uvws_send, uvws_close and the accessors). */
#include "proto/utf8.h"
#include "util/log.h"
#include "ws/session.h"

#include <stdlib.h>
#include <string.h>

/* Reports one frame to the route's on_frame. Frames the callback sends are
 * not reported, or tracing would feed on itself. */
void uvws__ws_trace(uvws_conn_t *c, uvws_frame_dir_t dir, const uint8_t *hdr, size_t hlen,
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

/* The deflater for this session's next message: its own with context
 * takeover, else the loop's shared one (each message resets it). */
static z_stream *deflater(uvws_conn_t *c) {
  uvws__ws_env_t *env = c->env;
  z_stream **slot = &c->def;
  if (c->pmd.server_no_takeover && c->pmd.server_bits == env->pmd.server_max_bits)
    slot = &env->shared_def;
  if (*slot == NULL) {
    z_stream *z = malloc(sizeof(*z));
    if (z == NULL) return NULL;
    if (uvws__pmd_deflate_init(z, env->pmd.level, c->pmd.server_bits, env->pmd.mem_level) != 0) {
      free(z);
      return NULL;
    }
    *slot = z;
  }
  return *slot;
}

/* One frame (FIN as given). A compressed frame is traced only once it is
 * queued: a tracer that sends (and compresses, with the same deflater when
 * the context is taken over) must put its message behind this one on the
 * wire, or the peer would inflate the two in the wrong order. Uncompressed
 * frames are traced before they are queued, so that a close frame can
 * still be reported ahead of it: nothing may follow a close frame. */
int uvws__ws_send_frame_fin(uvws_conn_t *c, int fin, int opcode, const void *data, size_t len,
                            int compress) {
  uvws__ws_env_t *env = c->env;
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uv_buf_t b[2];
  uvws__buf_t zb = {NULL, 0, 0, 0};
  size_t hl;
  int rsv = 0, r = 0;

  if (compress) {
    z_stream *z = deflater(c);
    /* Borrow the loop's scratch buffer: the tracer may compress a message
     * of its own while this one is still in use. */
    zb = env->zbuf;
    memset(&env->zbuf, 0, sizeof(env->zbuf));
    zb.off = zb.len = 0;
    if (z == NULL || uvws__pmd_deflate(z, data, len, &zb, c->pmd.server_no_takeover) != 0) {
      /* The stream state is unknown now; the peer could not follow it. */
      uvws__buf_free(&zb);
      uvws__ws_fail(c, UVWS_CLOSE_INTERNAL, "compression failed");
      return UV_ENOMEM;
    }
    data = uvws__buf_data(&zb);
    len = zb.len;
    rsv = 0x40;
  }
  hl = uvws__frame_header_encode(hdr, fin, rsv, opcode, len, NULL);
  if (!compress && c->route->h.on_frame) {
    uvws__ws_trace(c, UVWS_FRAME_OUT, hdr, hl, len, data, len);
    if (c->s->closing || c->s->finishing) r = UVWS_ECLOSED; /* the tracer closed it */
  }
  if (r == 0) {
    b[0] = uv_buf_init((char *)hdr, (unsigned)hl);
    b[1] = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    r = uvws__stream_write(c->s, b, len ? 2 : 1);
    if (r == 0 && compress && c->route->h.on_frame) uvws__ws_trace(c, UVWS_FRAME_OUT, hdr, hl, len, data, len);
  }
  if (compress) { /* give the scratch buffer back, or drop the spare */
    if (env->zbuf.cap == 0 && zb.cap <= 4 * 64 * 1024) env->zbuf = zb;
    else uvws__buf_free(&zb);
  }
  return r;
}

int uvws__ws_send_close(uvws_conn_t *c, unsigned code, const char *reason, size_t rlen) {
  uint8_t p[125];
  size_t n = 0;
  int r;
  if (c->close_sent) return UVWS_ECLOSED;
  /* The peer's answer must be read, whatever the route paused for. */
  if (c->paused) {
    c->paused = 0;
    c->s->ops->pause(c->s, 0);
  }
  if (code != UVWS_CLOSE_NO_STATUS) {
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rlen > sizeof(p) - 2) rlen = sizeof(p) - 2;
    if (rlen) memcpy(p + 2, reason, rlen); /* reason may be NULL (uvws_close) */
    n = 2 + rlen;
  }
  /* The flag goes up after the frame is traced, so a tracer may still
   * report it before it leaves; nothing else can run in between. */
  r = uvws__ws_send_frame(c, UVWS_OP_CLOSE, p, n, 0);
  c->close_sent = 1;
  UVWS__ADD(c->env->m->close_sent[uvws__code_bucket(code)], 1);
  return r;
}

/* A receiver that does not keep up must not grow the server's memory nor
 * slow whoever is sending to it: its messages are dropped, or it is told to
 * come back later (1013) with what is already queued. 0 or the error. The
 * check is on every send: the common case stays inline and short. */
static int over_limit(uvws_conn_t *c, size_t q);

static inline int backpressure(uvws_conn_t *c, size_t len) {
  size_t max = c->env->opts->max_backpressure, q;
  if (max == 0 || len > max) return max == 0 ? 0 : over_limit(c, uvws__stream_queued(c->s));
  q = uvws__stream_queued(c->s);
  /* A drop route keeps the queue under the transport's high mark: past it
   * the stream stops reading (net/stream.h), so a member of a busy room
   * could not say anything until the room went quiet. A message bigger
   * than the mark goes to a member whose queue is empty. */
  if (c->route->drop_on_backpressure && max > UVWS__QUEUE_HIGH && q != 0) max = UVWS__QUEUE_HIGH;
  return len <= max && q <= max - len ? 0 : over_limit(c, q);
}

static int over_limit(uvws_conn_t *c, size_t q) {
  if (c->route->drop_on_backpressure) {
    UVWS__ADD(c->env->m->backpressure_drops, 1);
    if (!c->drain_owed) {
      c->drain_owed = 1;
      c->s->ops->want_writable(c->s);
    }
    return UVWS_EBACKPRESSURE;
  }
  UVWS__ADD(c->env->m->backpressure_closes, 1);
  uvws__log(UVWS_LOG_INFO, "ws %s %s: %zu bytes queued (--max-backpressure); closing with 1013", c->s->peer,
            c->route->path, q);
  c->by_server = 1;
  c->close_code = UVWS_CLOSE_TRY_AGAIN;
  uvws__ws_send_close(c, UVWS_CLOSE_TRY_AGAIN, "send queue full", 15);
  c->failed = 1;
  uvws__ws_finish(c);
  return UVWS_EBACKPRESSURE;
}

int uvws_send_ex(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len, unsigned flags) {
  int r;
  uint8_t was;
  if (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY) return UV_EINVAL;
  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  if (c->frag_out) return UVWS_ESTATE; /* inside a fragmented message */
  if ((r = backpressure(c, len)) != 0) return r;
  was = c->tracing;
  if (flags & UVWS_SEND_UNTRACED) c->tracing = 1;
  UVWS__ADD(c->env->m->messages_out, 1);
  UVWS__ADD(c->env->m->bytes_out, len);
  r = uvws__ws_send_frame(c, op, data, len,
                          c->ws.pmd && len >= c->env->opts->deflate_min_size &&
                              !(flags & UVWS_SEND_NO_COMPRESS));
  c->tracing = was;
  return r;
}

int uvws__ws_send_shared(uvws_conn_t *c, uvws__sbuf_t *frame, size_t header_len) {
  size_t payload = frame->len - header_len;
  int r;

  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  if (c->frag_out) return UVWS_ESTATE;
  if ((r = backpressure(c, payload)) != 0) return r;
  UVWS__ADD(c->env->m->messages_out, 1);
  UVWS__ADD(c->env->m->bytes_out, payload);
  if (c->route->h.on_frame) { /* never compressed: traced before it is queued */
    uvws__ws_trace(c, UVWS_FRAME_OUT, (const uint8_t *)frame->data, header_len, payload,
                   (const uint8_t *)frame->data + header_len, payload);
    if (!uvws__ws_sendable(c)) return UVWS_ECLOSED; /* the tracer closed it */
  }
  return c->s->ops->write_shared(c->s, frame, 0, frame->len);
}

int uvws_send(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  return uvws_send_ex(c, op, data, len, 0);
}

int uvws_send_text(uvws_conn_t *c, const char *text) {
  return uvws_send(c, UVWS_OP_TEXT, text, strlen(text));
}

/* Fragments are never compressed: a message is compressed whole or not at
 * all (RFC 7692 section 6.1), and uncompressed ones are always allowed. */
int uvws_send_fragment(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len, int fin) {
  int r;
  if (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY && op != UVWS_OP_CONTINUATION) return UV_EINVAL;
  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  if (c->frag_out != (op == UVWS_OP_CONTINUATION)) return UVWS_ESTATE;
  if ((r = backpressure(c, len)) != 0) return r;
  if (op != UVWS_OP_CONTINUATION) UVWS__ADD(c->env->m->messages_out, 1);
  UVWS__ADD(c->env->m->bytes_out, len);
  r = uvws__ws_send_frame_fin(c, fin != 0, op, data, len, 0);
  if (r == 0) c->frag_out = fin == 0;
  return r;
}

int uvws_conn_send_raw(uvws_conn_t *c, const void *data, size_t len) {
  uv_buf_t b;
  if (len == 0 || len > UVWS_RAW_MAX) return UV_EINVAL;
  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
  return uvws__stream_write(c->s, &b, 1);
}

int uvws_ping(uvws_conn_t *c, const void *data, size_t len) {
  if (len > 125) return UV_EINVAL;
  if (!uvws__ws_sendable(c)) return UVWS_ECLOSED;
  return uvws__ws_send_frame(c, UVWS_OP_PING, data, len, 0);
}

int uvws_close(uvws_conn_t *c, int code, const char *reason) {
  size_t rlen = reason ? strlen(reason) : 0;
  int r;
  if (code < 0 || !uvws__close_code_valid((unsigned)code)) return UVWS_EBADCODE;
  if (rlen > 123 || !uvws__utf8_valid(reason ? reason : "", rlen)) return UV_EINVAL;
  if (!uvws__ws_sendable(c) || c->s->finishing) return UVWS_ECLOSED;
  c->by_server = 1;
  c->close_code = (uint16_t)code;
  r = uvws__ws_send_close(c, (unsigned)code, reason, rlen);
  /* Now only the peer's close is awaited (on_timeout ends the wait). */
  if (!c->s->closing && !c->s->finishing) c->s->deadline = uv_now(c->s->loop) + c->env->opts->close_timeout_ms;
  return r;
}

void uvws__ws_env_free(uvws__ws_env_t *env) {
  if (env->shared_def) {
    deflateEnd(env->shared_def);
    free(env->shared_def);
    env->shared_def = NULL;
  }
  uvws__buf_free(&env->zbuf);
}

void *uvws_conn_get_data(const uvws_conn_t *c) { return c->data; }
void uvws_conn_set_data(uvws_conn_t *c, void *data) { c->data = data; }
void *uvws_conn_route_data(const uvws_conn_t *c) { return c->route->user; }
uvws_server_t *uvws_conn_server(const uvws_conn_t *c) { return c->env->server; }
const char *uvws_conn_path(const uvws_conn_t *c) { return c->route->path; }
const char *uvws_conn_protocol(const uvws_conn_t *c) { return c->protocol; }
int uvws_conn_compressed(const uvws_conn_t *c) { return c->ws.pmd; }
const char *uvws_conn_peer(const uvws_conn_t *c) { return c->s->peer; }
size_t uvws_conn_buffered_amount(const uvws_conn_t *c) { return uvws__stream_queued(c->s); }

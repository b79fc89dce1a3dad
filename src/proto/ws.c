#include "proto/ws.h"

#include "proto/utf8.h"

#include <stdlib.h>
#include <string.h>

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };

void uvws__ws_init(uvws__ws_t *ws, const uvws__ws_callbacks_t *cb, void *data,
                   uint64_t max_message) {
  memset(ws, 0, sizeof(*ws));
  uvws__frame_parser_init(&ws->fp);
  ws->cb = cb;
  ws->data = data;
  ws->max_message = max_message;
  ws->require_mask = 1;
}

void uvws__ws_enable_deflate(uvws__ws_t *ws, const uvws__pmd_params_t *p) {
  ws->pmd = 1;
  ws->pmd_reset = p->client_no_takeover;
  ws->pmd_bits = p->client_bits;
  ws->allowed_rsv |= 0x40;
}

void uvws__ws_free(uvws__ws_t *ws) {
  if (ws->inf) {
    uvws__pmd_inflate_end(ws->inf);
    free(ws->inf);
    ws->inf = NULL;
  }
}

static long fail(uvws__ws_t *ws, uint16_t code, const char *reason) {
  ws->fail_code = code;
  ws->fail_reason = reason;
  return UVWS__WS_EFAIL;
}

/* Rules that a header alone decides (section 5.2, 5.4, 5.5). */
static long check_header(uvws__ws_t *ws, const uvws__frame_header_t *h) {
  if (h->rsv & ~ws->allowed_rsv) return fail(ws, 1002, "reserved bits set");
  if (ws->require_mask && !h->masked) return fail(ws, 1002, "unmasked client frame");
  if (h->opcode & 0x8) {
    if (h->opcode > OP_PONG) return fail(ws, 1002, "reserved control opcode");
    if (h->rsv) return fail(ws, 1002, "RSV1 on a control frame");
    if (!h->fin) return fail(ws, 1002, "fragmented control frame");
    if (h->len > 125) return fail(ws, 1002, "control frame payload over 125 bytes");
    ws->ctl_len = 0;
    return 0;
  }
  if (h->opcode > OP_BINARY) return fail(ws, 1002, "reserved data opcode");
  if (ws->max_frame && h->len > ws->max_frame) return fail(ws, 1009, "frame exceeds the size limit");
  if (h->opcode == OP_CONT) {
    if (!ws->msg_opcode) return fail(ws, 1002, "continuation frame without a message");
    if (h->rsv) return fail(ws, 1002, "RSV1 on a continuation frame");
  } else {
    if (ws->msg_opcode) return fail(ws, 1002, "new message inside a fragmented message");
    ws->msg_opcode = h->opcode;
    ws->msg_len = 0;
    ws->msg_reported = 0;
    ws->utf8 = UVWS__UTF8_ACCEPT;
    ws->msg_compressed = (h->rsv & 0x40) != 0;
    ws->inflated = 0;
    if (ws->msg_compressed && ws->inf == NULL) {
      ws->inf = malloc(sizeof(*ws->inf));
      if (ws->inf == NULL || uvws__pmd_inflate_init(ws->inf, ws->pmd_bits) != 0) {
        free(ws->inf);
        ws->inf = NULL;
        return fail(ws, 1011, "out of memory for the inflater");
      }
    }
  }
  /* Counted from the declared length, so an oversized message fails before
   * its payload is read, let alone buffered. Compressed bytes may exceed the
   * inflated size a little (stored blocks of incompressible data), so they
   * get deflate's worst-case slack; the inflated size is checked exactly. */
  if (ws->max_message) {
    uint64_t limit = ws->max_message;
    if (ws->msg_compressed) limit += limit / 256 + 1024;
    if (h->len > limit - ws->msg_len) return fail(ws, 1009, "message exceeds the size limit");
  }
  ws->msg_len += h->len;
  return 0;
}

/* Inflated output of a compressed message: checked like plain payload,
 * and counted, so a small frame that inflates past the limit fails while
 * inflating, before anything large exists. */
static int emit_inflated(void *arg, uint8_t *p, size_t len) {
  uvws__ws_t *ws = arg;
  int first;
  if (ws->max_message && len > ws->max_message - ws->inflated) {
    fail(ws, 1009, "message exceeds the size limit once inflated");
    return -1;
  }
  ws->inflated += len;
  if (ws->msg_opcode == OP_TEXT && uvws__utf8_feed(&ws->utf8, p, len) != 0) {
    fail(ws, 1007, "invalid UTF-8 in text message");
    return -1;
  }
  first = !ws->msg_reported;
  ws->msg_reported = 1;
  return ws->cb->on_data(ws, ws->msg_opcode, p, len, first, 0) ? 1 : 0;
}

static long compressed_chunk(uvws__ws_t *ws, uint8_t *p, size_t len, int msg_end) {
  int r = uvws__pmd_inflate(ws->inf, p, len, emit_inflated, ws);
  int op, first;
  if (r == 0 && msg_end) r = uvws__pmd_inflate_finish(ws->inf, emit_inflated, ws, ws->pmd_reset);
  if (r == UVWS__PMD_EDATA) return fail(ws, 1007, "invalid compressed data");
  if (r < 0) return UVWS__WS_EFAIL;
  if (r > 0) return r; /* stopped by on_data */
  if (!msg_end) return 0;
  if (ws->msg_opcode == OP_TEXT && ws->utf8 != UVWS__UTF8_ACCEPT)
    return fail(ws, 1007, "text message ends inside a UTF-8 sequence");
  op = ws->msg_opcode;
  first = !ws->msg_reported;
  ws->msg_opcode = 0;
  return ws->cb->on_data(ws, op, ws->peek, 0, first, 1);
}

/* A data chunk, or (len 0, frame_end) the end of an empty frame. */
static long data_chunk(uvws__ws_t *ws, const uvws__frame_header_t *h, uint8_t *p, size_t len,
                       int frame_end) {
  int msg_end = frame_end && h->fin;
  int first;

  if (ws->msg_compressed) return compressed_chunk(ws, p, len, msg_end);
  if (ws->msg_opcode == OP_TEXT) {
    if (uvws__utf8_feed(&ws->utf8, p, len) != 0) return fail(ws, 1007, "invalid UTF-8 in text message");
    if (msg_end && ws->utf8 != UVWS__UTF8_ACCEPT)
      return fail(ws, 1007, "text message ends inside a UTF-8 sequence");
  }
  if (len == 0 && !msg_end) return 0; /* nothing to report */
  first = !ws->msg_reported;
  ws->msg_reported = 1;
  if (msg_end) {
    int op = ws->msg_opcode;
    ws->msg_opcode = 0;
    return ws->cb->on_data(ws, op, p, len, first, 1);
  }
  return ws->cb->on_data(ws, ws->msg_opcode, p, len, first, 0);
}

static long control_chunk(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *p,
                          size_t len, int frame_end) {
  memcpy(ws->ctl + ws->ctl_len, p, len); /* bounded: header checked len <= 125 */
  ws->ctl_len = (uint8_t)(ws->ctl_len + len);
  if (!frame_end) return 0;
  return ws->cb->on_control(ws, h->opcode, ws->ctl, ws->ctl_len);
}

long uvws__ws_feed(uvws__ws_t *ws, uint8_t *data, size_t len) {
  size_t off = 0;

  for (;;) {
    uvws__frame_event_t ev;
    const uvws__frame_header_t *h = uvws__frame_current(&ws->fp);
    long n = uvws__frame_parse(&ws->fp, data + off, len - off, &ev);
    long r = 0;

    if (n < 0) return fail(ws, 1002, "64-bit payload length with the top bit set");
    off += (size_t)n;
    if (ev.type == UVWS__FRAME_NEED_MORE) return (long)off;
    if (ev.type == UVWS__FRAME_HEADER) {
      ws->peek_len = 0;
      if (check_header(ws, h) < 0) {
        if (ws->cb->on_frame) ws->cb->on_frame(ws, h, ws->peek, 0);
        return UVWS__WS_EFAIL;
      }
      if (!ev.end) continue;
      /* empty payload: the frame is complete now (callbacks get a valid
       * pointer even for zero bytes, so they may pass it to memcpy) */
      if (ws->cb->on_frame) ws->cb->on_frame(ws, h, ws->peek, 0);
      r = (h->opcode & 0x8) ? control_chunk(ws, h, ws->peek, 0, 1)
                            : data_chunk(ws, h, ws->peek, 0, 1);
    } else {
      if (ws->cb->on_frame) {
        size_t k = UVWS__WS_PEEK - ws->peek_len;
        if (k > ev.len) k = ev.len;
        memcpy(ws->peek + ws->peek_len, ev.data, k);
        ws->peek_len = (uint8_t)(ws->peek_len + k);
        if (ev.end) ws->cb->on_frame(ws, h, ws->peek, ws->peek_len);
      }
      r = (h->opcode & 0x8) ? control_chunk(ws, h, ev.data, ev.len, ev.end)
                            : data_chunk(ws, h, ev.data, ev.len, ev.end);
    }
    if (r < 0) return UVWS__WS_EFAIL;
    if (r > 0) return (long)off;
  }
}

int uvws__close_code_valid(unsigned code) {
  if (code >= 1000 && code <= 1003) return 1;
  if (code >= 1007 && code <= 1014) return 1;
  return code >= 3000 && code <= 4999;
}

int uvws__close_parse(const uint8_t *p, size_t len, unsigned *code, const char **reason,
                      size_t *reason_len) {
  *reason = "";
  *reason_len = 0;
  if (len == 0) {
    *code = 1005;
    return 0;
  }
  if (len == 1) return 1002;
  *code = ((unsigned)p[0] << 8) | p[1];
  if (!uvws__close_code_valid(*code)) return 1002;
  if (!uvws__utf8_valid(p + 2, len - 2)) return 1007;
  *reason = (const char *)p + 2;
  *reason_len = len - 2;
  return 0;
}

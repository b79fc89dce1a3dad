/* The WebSocket protocol engine for one connection: frame rules, message
 * boundaries, UTF-8 of text messages, control frames, the close payload
 * (RFC 6455 sections 5 and 7) and permessage-deflate decompression
 * (RFC 7692). Pure: bytes in, callbacks out, no I/O, so it can be fed byte
 * by byte in tests and fuzzed alone. It allocates only a zlib inflater, on
 * the first compressed message. Message reassembly is left to the caller,
 * who knows whether a copy is needed at all. */
#ifndef UVWS_WS_H
#define UVWS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/deflate.h"
#include "proto/frame.h"

typedef struct uvws__ws_s uvws__ws_t;

typedef struct {
  /* A chunk of the current message. `first`: no chunk of this message was
   * reported before; `fin`: this is the message's last chunk (an empty
   * message is one call with len 0, first and fin set). Text chunks are
   * valid UTF-8 so far. Return 0 to go on, non-zero to stop the feed. */
  int (*on_data)(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin);
  /* A complete ping, pong or close frame (payload <= 125 bytes). */
  int (*on_control)(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len);
  /* Optional, for tracing: called once per frame, when it is complete (or
   * when its header alone fails it), before the frame's data or control
   * callback. `head` holds its first payload bytes, unmasked. */
  void (*on_frame)(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                   size_t head_len);
} uvws__ws_callbacks_t;

#define UVWS__WS_PEEK 16

struct uvws__ws_s {
  uvws__frame_parser_t fp;
  const uvws__ws_callbacks_t *cb;
  void *data;              /* owner's back pointer */
  uint64_t max_message;    /* 0: no limit */
  uint64_t max_frame;      /* 0: no limit beyond max_message */
  uint64_t msg_len;        /* declared bytes of the open message so far */
  uint8_t msg_opcode;      /* TEXT or BINARY while a message is open, else 0 */
  uint8_t msg_reported;    /* a chunk of the open message was reported */
  uint8_t allowed_rsv;     /* RSV bits an extension negotiated */
  uint8_t require_mask;    /* 1 on the server side */
  uint8_t utf8;            /* validator state of the open text message */
  uint8_t ctl_len;
  uint8_t ctl[125];        /* control frame payload, gathered across reads */
  uint8_t peek_len;
  uint8_t peek[UVWS__WS_PEEK]; /* first payload bytes, for on_frame */
  uint8_t pmd;             /* permessage-deflate negotiated */
  uint8_t pmd_reset;       /* client_no_context_takeover: forget each message */
  uint8_t pmd_bits;        /* the client's window */
  uint8_t msg_compressed;  /* the open message has RSV1 */
  uint64_t inflated;       /* bytes the open compressed message inflated to */
  uvws__pmd_inflater_t *inf; /* owned; NULL until a compressed message arrives */
  uint16_t fail_code;      /* after a failure: the close code to send */
  const char *fail_reason; /* after a failure: static text for the log */
};

/* Enables permessage-deflate with the agreed parameters: RSV1 becomes
 * legal on the first frame of a message, whose payload is then inflated
 * before the UTF-8 and size checks and before on_data sees it. */
void uvws__ws_enable_deflate(uvws__ws_t *ws, const uvws__pmd_params_t *p);

/* Frees what the engine allocated (the inflater). */
void uvws__ws_free(uvws__ws_t *ws);

/* Feed results below zero. */
#define UVWS__WS_EFAIL (-1)

void uvws__ws_init(uvws__ws_t *ws, const uvws__ws_callbacks_t *cb, void *data,
                   uint64_t max_message);

/* Feeds bytes (unmasked in place). Returns the bytes consumed, which is
 * less than `len` only if a callback stopped the feed; or UVWS__WS_EFAIL on
 * a protocol violation, with fail_code (1002, 1007 or 1009) and fail_reason
 * set. After a failure the engine must not be fed again. */
long uvws__ws_feed(uvws__ws_t *ws, uint8_t *data, size_t len);

/* Close codes an endpoint may send and accept on the wire (section 7.4). */
int uvws__close_code_valid(unsigned code);

/* Validates a received close payload. Returns 0 and sets *code (1005 when
 * the payload is empty), *reason and *reason_len; or the close code to fail
 * with (1002 for a bad length or code, 1007 for a reason that is not UTF-8). */
int uvws__close_parse(const uint8_t *p, size_t len, unsigned *code, const char **reason,
                      size_t *reason_len);

#endif

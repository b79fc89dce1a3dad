/* permessage-deflate (RFC 7692): negotiation, and message compression and
 * decompression on zlib. Pure: no I/O; the streams are plain zlib state the
 * caller owns. */
#ifndef UVWS_DEFLATE_H
#define UVWS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "util/wbuf.h"

/* What the server is willing to do (from uvws_options_t). */
typedef struct {
  int level;            /* 1..9 */
  int mem_level;        /* 1..9 */
  int server_max_bits;  /* 9..15: zlib cannot deflate with an 8-bit window */
  int client_max_bits;  /* 8..15: what we ask of clients that allow asking */
  int server_takeover;  /* 0: always answer server_no_context_takeover */
  int client_takeover;  /* 0: always answer client_no_context_takeover */
} uvws__pmd_config_t;

/* What one connection agreed to. */
typedef struct {
  uint8_t server_no_takeover;
  uint8_t client_no_takeover;
  uint8_t server_bits; /* window we deflate with */
  uint8_t client_bits; /* window the client deflates with (we inflate with) */
} uvws__pmd_params_t;

/* Picks the first acceptable permessage-deflate offer in a
 * Sec-WebSocket-Extensions value (section 7.1). Malformed offers (unknown
 * or repeated parameters, bad values) and offers we cannot honour
 * (server_max_window_bits=8) are declined, not failed. Returns 1 and fills
 * `out` and `resp` (the response header value, NUL-terminated) when one is
 * accepted; 0 when none is. */
int uvws__pmd_negotiate(const uvws__pmd_config_t *cfg, const char *offers, size_t len,
                        uvws__pmd_params_t *out, char *resp, size_t resp_size);

/* Compression of one whole message with Z_SYNC_FLUSH, the trailing
 * 00 00 ff ff removed (section 7.2.1). The output is appended to `out`.
 * With `reset`, the stream forgets the message afterwards (no context
 * takeover). Returns 0, or a negative libuv-style code. */
int uvws__pmd_deflate_init(z_stream *z, int level, int bits, int mem_level);
int uvws__pmd_deflate(z_stream *z, const void *in, size_t len, uvws__buf_t *out, int reset);

/* Decompression, streamed: feed the message's payload pieces, then
 * finish. Every output piece goes to `emit`, which returns non-zero to
 * stop (the call then returns that value). Returns 0, a value from emit,
 * or UVWS__PMD_EDATA for data that is not a complete DEFLATE message.
 * `finish` appends the 00 00 ff ff tail (section 7.2.2) and checks that the
 * message ended on a block boundary; with `reset` it forgets the message
 * (client_no_context_takeover). A message may also end with a final
 * (BFINAL) block, with or without the empty stored block after it that
 * section 7.2.3.4 shows: the window is kept across it. */
#define UVWS__PMD_EDATA (-2)
typedef struct {
  z_stream z;
  int after_final; /* the last input ended a BFINAL block */
} uvws__pmd_inflater_t;
typedef int (*uvws__pmd_emit_cb)(void *arg, uint8_t *p, size_t len);
int uvws__pmd_inflate_init(uvws__pmd_inflater_t *inf, int bits);
int uvws__pmd_inflate(uvws__pmd_inflater_t *inf, const uint8_t *in, size_t len,
                      uvws__pmd_emit_cb emit, void *arg);
int uvws__pmd_inflate_finish(uvws__pmd_inflater_t *inf, uvws__pmd_emit_cb emit, void *arg,
                             int reset);
void uvws__pmd_inflate_end(uvws__pmd_inflater_t *inf);

#endif

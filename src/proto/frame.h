/* RFC 6455 section 5.2 frame layer: an incremental header parser that
 * unmasks payloads in place, and the header encoder. Bytes in, events out:
 * nothing here knows about sockets, messages or protocol rules beyond the
 * shape of one frame (those live in ws.c). */
#ifndef UVWS_FRAME_H
#define UVWS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define UVWS__FRAME_MAX_HEADER 14 /* 2 + 8 (64-bit length) + 4 (mask) */

typedef enum {
  UVWS__FRAME_NEED_MORE = 0, /* everything consumed, no event */
  UVWS__FRAME_HEADER,        /* a header is complete: fields are valid */
  UVWS__FRAME_DATA           /* a payload chunk, unmasked in place */
} uvws__frame_event_type_t;

typedef struct {
  uvws__frame_event_type_t type;
  uint8_t *data;  /* DATA: points into the caller's buffer */
  size_t len;     /* DATA: chunk length */
  int end;        /* HEADER with an empty payload, or the frame's last chunk */
} uvws__frame_event_t;

/* One frame's header, as parsed. */
typedef struct {
  uint8_t fin;
  uint8_t rsv;      /* the three RSV bits, in place: 0x40 = RSV1 ... */
  uint8_t opcode;
  uint8_t masked;
  uint8_t mask[4];
  uint64_t len;     /* payload length */
  uint8_t size;     /* header bytes on the wire, 2 to 14 */
  uint8_t len_bits; /* the length encoding used: 7, 16 or 64 */
} uvws__frame_header_t;

/* Parser state: ~40 bytes, no allocation. */
typedef struct {
  uint8_t state;
  uint8_t have;              /* header bytes collected so far */
  uint8_t need;              /* header bytes this header has in total */
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uvws__frame_header_t h;
  uint64_t done;             /* payload bytes already delivered */
} uvws__frame_parser_t;

#define UVWS__FRAME_EBADLEN (-1) /* 64-bit length with the top bit set */

void uvws__frame_parser_init(uvws__frame_parser_t *fp);

/* Parses from `data`. Returns the bytes consumed (possibly 0 when an event
 * needs none, e.g. a header with an empty payload was just completed and
 * the caller asked again) and fills `ev`; or UVWS__FRAME_EBADLEN. Call in a
 * loop until it consumes everything and reports NEED_MORE. Payload chunks
 * are unmasked in `data` itself, so the buffer must be writable. */
long uvws__frame_parse(uvws__frame_parser_t *fp, uint8_t *data, size_t len,
                       uvws__frame_event_t *ev);

/* The header of the frame being parsed (valid after a HEADER event), and
 * its raw bytes (valid until the next frame's header starts). */
static inline const uint8_t *uvws__frame_raw_header(const uvws__frame_parser_t *fp) {
  return fp->hdr;
}

static inline const uvws__frame_header_t *uvws__frame_current(const uvws__frame_parser_t *fp) {
  return &fp->h;
}

/* Writes a frame header into `out` and returns its length (2 to 14). `rsv`
 * uses the in-place bit positions (0x40 = RSV1). `mask` may be NULL (server
 * frames are never masked); when given, the payload must be masked
 * separately with uvws__frame_mask(). */
size_t uvws__frame_header_encode(uint8_t out[UVWS__FRAME_MAX_HEADER], int fin, int rsv,
                                 int opcode, uint64_t len, const uint8_t mask[4]);

/* XORs `len` bytes with the 4-byte key, starting at key position `offset`
 * (the payload offset of p[0] within its frame). Works 8 bytes per step. */
void uvws__frame_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

#endif

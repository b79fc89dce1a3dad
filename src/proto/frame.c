#include "proto/frame.h"

#include <string.h>

enum { ST_HEADER = 0, ST_PAYLOAD };

void uvws__frame_parser_init(uvws__frame_parser_t *fp) {
  memset(fp, 0, sizeof(*fp));
  fp->need = 2;
}

/* Total header size implied by the first two bytes. */
static uint8_t header_size(const uint8_t *hdr) {
  uint8_t n = 2, len7 = hdr[1] & 0x7f;
  if (len7 == 126) n += 2;
  else if (len7 == 127) n += 8;
  if (hdr[1] & 0x80) n += 4;
  return n;
}

static int decode_header(uvws__frame_parser_t *fp) {
  const uint8_t *b = fp->hdr;
  uvws__frame_header_t *h = &fp->h;
  uint8_t len7 = b[1] & 0x7f;
  size_t pos = 2;
  int i;

  h->fin = b[0] >> 7;
  h->rsv = b[0] & 0x70;
  h->opcode = b[0] & 0x0f;
  h->masked = b[1] >> 7;
  h->size = fp->need;
  h->len_bits = 7;
  if (len7 < 126) {
    h->len = len7;
  } else if (len7 == 126) {
    h->len = ((uint64_t)b[2] << 8) | b[3];
    h->len_bits = 16;
    pos = 4;
  } else {
    h->len_bits = 64;
    h->len = 0;
    for (i = 0; i < 8; i++) h->len = (h->len << 8) | b[2 + i];
    pos = 10;
    if (h->len >> 63) return UVWS__FRAME_EBADLEN;
  }
  if (h->masked) memcpy(h->mask, b + pos, 4);
  else memset(h->mask, 0, 4);
  return 0;
}

long uvws__frame_parse(uvws__frame_parser_t *fp, uint8_t *data, size_t len,
                       uvws__frame_event_t *ev) {
  size_t used = 0;

  ev->type = UVWS__FRAME_NEED_MORE;
  ev->data = NULL;
  ev->len = 0;
  ev->end = 0;

  if (fp->state == ST_HEADER) {
    while (fp->have < fp->need) {
      size_t take = fp->need - fp->have;
      if (used == len) return (long)used;
      if (take > len - used) take = len - used;
      memcpy(fp->hdr + fp->have, data + used, take);
      fp->have += (uint8_t)take;
      used += take;
      if (fp->have == 2) fp->need = header_size(fp->hdr);
    }
    if (decode_header(fp) != 0) return UVWS__FRAME_EBADLEN;
    fp->done = 0;
    fp->have = 0;
    fp->need = 2;
    ev->type = UVWS__FRAME_HEADER;
    if (fp->h.len == 0) ev->end = 1; /* stay in ST_HEADER: no DATA follows */
    else fp->state = ST_PAYLOAD;
    return (long)used;
  }

  /* ST_PAYLOAD */
  {
    uint64_t left = fp->h.len - fp->done;
    size_t n = len < left ? len : (size_t)left;
    if (n == 0) return 0;
    if (fp->h.masked) uvws__frame_mask(data, n, fp->h.mask, fp->done);
    fp->done += n;
    ev->type = UVWS__FRAME_DATA;
    ev->data = data;
    ev->len = n;
    if (fp->done == fp->h.len) {
      ev->end = 1;
      fp->state = ST_HEADER;
    }
    return (long)n;
  }
}

size_t uvws__frame_header_encode(uint8_t out[UVWS__FRAME_MAX_HEADER], int fin, int rsv,
                                 int opcode, uint64_t len, const uint8_t mask[4]) {
  size_t n = 2;
  int i;

  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x70) | (opcode & 0x0f));
  out[1] = mask ? 0x80 : 0;
  if (len < 126) {
    out[1] |= (uint8_t)len;
  } else if (len <= 0xffff) {
    out[1] |= 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    n = 4;
  } else {
    out[1] |= 127;
    for (i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

void uvws__frame_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset) {
  uint8_t key[8];
  uint64_t k8;
  size_t i = 0;
  unsigned rot = (unsigned)(offset & 3);
  int j;

  /* Key bytes rotated so that key[0] applies to p[0]; doubled to 8 bytes so
   * whole words can be XORed regardless of alignment. */
  for (j = 0; j < 8; j++) key[j] = mask[(rot + (unsigned)j) & 3];
  memcpy(&k8, key, 8);
  for (; len - i >= 8; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= k8;
    memcpy(p + i, &w, 8);
  }
  for (; i < len; i++) p[i] ^= key[i & 7];
}

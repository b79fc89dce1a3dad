/* Fuzzes permessage-deflate decompression as the engine uses it: the input
 * is split into messages (first byte: how), each inflated in pieces and
 * finished with the 00 00 ff ff tail, with and without context takeover,
 * under a 64 KiB limit per message. Whatever the bytes, output stays within
 * the limit, errors are reported as UVWS__PMD_EDATA, and nothing leaks. */
#include "proto/deflate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT (64u * 1024u)

typedef struct {
  size_t total;
} sink_t;

static int emit(void *arg, uint8_t *p, size_t len) {
  sink_t *s = arg;
  if (len) (void)p[len - 1];
  if (len > LIMIT - s->total) return 1; /* the engine fails with 1009 here */
  s->total += len;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uvws__pmd_inflater_t inf;
  size_t off = 1, piece;
  int reset, bits;

  if (size < 1) return 0;
  reset = data[0] & 1;
  bits = 8 + (data[0] >> 1) % 8; /* 8..15 */
  piece = 1 + (data[0] >> 4) * 7;
  if (uvws__pmd_inflate_init(&inf, bits) != 0) return 0;
  while (off < size) {
    /* a message ends at the next 0xff 0xfe pair, or at the input's end */
    size_t end = off, p;
    sink_t sink = {0};
    int r = 0;
    while (end < size && !(end + 1 < size && data[end] == 0xff && data[end + 1] == 0xfe)) end++;
    for (p = off; p < end && r == 0; p += piece)
      r = uvws__pmd_inflate(&inf, data + p, (end - p < piece) ? end - p : piece, emit, &sink);
    if (r == 0) r = uvws__pmd_inflate_finish(&inf, emit, &sink, reset);
    if (r != 0 && r != 1 && r != UVWS__PMD_EDATA) abort();
    if (sink.total > LIMIT) abort();
    if (r != 0) break; /* the connection would be failed: stop feeding it */
    off = end + 2;
  }
  uvws__pmd_inflate_end(&inf);
  return 0;
}

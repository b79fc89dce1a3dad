/* Fuzzes the UTF-8 validator against a plain reference decoder, whole and
 * fed in two pieces at every split point. */
#include "proto/utf8.h"

#include <stdint.h>
#include <stdlib.h>

/* Reference: decode code point by code point per RFC 3629. */
static int ref_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t need, k;
    uint8_t b = s[i];
    if (b < 0x80) { i++; continue; }
    if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) { need = 2; cp = b & 0x0F; }
    else if (b >= 0xF0 && b <= 0xF4) { need = 3; cp = b & 0x07; }
    else return 0;
    if (i + need >= n) return 0; /* truncated */
    for (k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += need + 1;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int expect = ref_valid(data, size);
  size_t cut;
  if (uvws__utf8_valid(data, size) != expect) abort();
  for (cut = 0; cut <= size && cut < 64; cut++) {
    uint8_t st = UVWS__UTF8_ACCEPT;
    int ok = uvws__utf8_feed(&st, data, cut) == 0 && uvws__utf8_feed(&st, data + cut, size - cut) == 0 &&
             st == UVWS__UTF8_ACCEPT;
    if (ok != expect) abort();
  }
  return 0;
}

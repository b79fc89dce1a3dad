/* Fuzzes the WebSocket engine (frame parser, protocol rules, UTF-8, close
 * payloads). The first input byte picks how the rest is split into feeds,
 * so every split point gets explored; the result must not depend on it. */
#include "proto/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t msgs, bytes, controls;
  int in_msg;
} tally_t;

static int on_data(uvws__ws_t *ws, int op, uint8_t *p, size_t len, int first, int fin) {
  tally_t *t = ws->data;
  (void)op;
  if (len) (void)p[len - 1]; /* must be readable */
  if (first && t->in_msg) abort(); /* "first" twice in one message */
  t->in_msg = !fin;
  t->bytes += len;
  if (fin) t->msgs++;
  return 0;
}

static int on_control(uvws__ws_t *ws, int op, uint8_t *p, size_t len) {
  tally_t *t = ws->data;
  unsigned code;
  const char *reason;
  size_t rlen;
  if (len > 125) abort();
  if (op == 0x8) (void)uvws__close_parse(p, len, &code, &reason, &rlen);
  t->controls++;
  return 0;
}

static const uvws__ws_callbacks_t cbs = {on_data, on_control, NULL};

static long run(const uint8_t *data, size_t size, unsigned step, tally_t *t, uint16_t *code) {
  uvws__ws_t ws;
  uint8_t *copy = malloc(size ? size : 1);
  size_t off = 0;
  long r = 0;
  memcpy(copy, data, size);
  memset(t, 0, sizeof(*t));
  uvws__ws_init(&ws, &cbs, t, 1 << 20);
  while (off < size) {
    size_t n = step ? step : size;
    if (n > size - off) n = size - off;
    r = uvws__ws_feed(&ws, copy + off, n);
    if (r < 0) break;
    if ((size_t)r != n) abort(); /* callbacks never stop the feed here */
    off += n;
  }
  *code = r < 0 ? ws.fail_code : 0;
  free(copy);
  return r < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tally_t whole, split;
  uint16_t c1, c2;
  long r1, r2;
  if (size < 1) return 0;
  r1 = run(data + 1, size - 1, 0, &whole, &c1);
  r2 = run(data + 1, size - 1, 1u + data[0] % 7u, &split, &c2);
  /* Splitting the input must not change the verdict or what was seen
   * before it (fail-fast checks may stop at different chunks, so only the
   * outcome and the complete messages are compared). */
  if (r1 != r2 || c1 != c2) abort();
  if (r1 == 0 && (whole.msgs != split.msgs || whole.bytes != split.bytes ||
                  whole.controls != split.controls))
    abort();
  return 0;
}

/* Fuzzes the close payload validator: whatever it accepts has a sendable
 * code and a UTF-8 reason inside the payload. */
#include "proto/utf8.h"
#include "proto/ws.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned code = 0;
  const char *reason;
  size_t rlen;
  int r;
  if (size > 125) return 0; /* control frames never carry more */
  r = uvws__close_parse(data, size, &code, &reason, &rlen);
  if (r != 0 && r != 1002 && r != 1007) abort();
  if (r == 0) {
    if (size == 0 ? code != 1005 : !uvws__close_code_valid(code)) abort();
    if (rlen && ((const uint8_t *)reason < data || (const uint8_t *)reason + rlen > data + size)) abort();
    if (!uvws__utf8_valid(reason, rlen)) abort();
  }
  return 0;
}

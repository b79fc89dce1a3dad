/* Fuzzes the request-target resolver: an accepted path never contains a
 * ".." segment, a NUL or a backslash, and never starts with '/'. */
#include "proto/path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[256];
  int dir;
  size_t n, i;
  int r = uvws__path_resolve((const char *)data, size, out, sizeof(out), &dir);
  if (r != 0) {
    if (r != 400 && r != 414) abort();
    return 0;
  }
  n = strlen(out);
  if (n >= sizeof(out)) abort();
  if (n && (out[0] == '/' || out[n - 1] == '/')) abort();
  for (i = 0; i < n; i++) {
    if (out[i] == '\\') abort();
    if (out[i] == '.' && out[i + 1] == '.' && (i == 0 || out[i - 1] == '/') &&
        (out[i + 2] == '/' || out[i + 2] == '\0'))
      abort();
  }
  if (strstr(out, "//")) abort();
  return 0;
}

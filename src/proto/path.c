#include "proto/path.h"

#include <string.h>
#include <strings.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t uvws__path_len(const char *target, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (target[i] == '?' || target[i] == '#') break;
  return i;
}

static int is_hex(int c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int uvws__path_route_ok(const char *path, size_t len) {
  static const char other[] = "-._~!$&'()*+,;=:@/";
  size_t i;
  if (len == 0 || path[0] != '/') return 0;
  for (i = 1; i < len; i++) {
    int c = (unsigned char)path[i];
    if (c == '%') {
      if (len - i < 3 || !is_hex((unsigned char)path[i + 1]) || !is_hex((unsigned char)path[i + 2])) return 0;
      i += 2;
    } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != 0 && strchr(other, c) != NULL))) {
      return 0;
    }
  }
  return 1;
}

int uvws__path_resolve(const char *target, size_t len, char *out, size_t outsz, int *dir) {
  size_t end = uvws__path_len(target, len);
  size_t i = 1, o = 0;
  int last_kept = 0;

  *dir = 1;
  if (outsz == 0) return 414;
  out[0] = '\0';
  if (end == 0 || target[0] != '/') return 400;

  /* One segment per iteration: decode it into `out`, then keep, drop or
   * refuse it. Decoding per segment means an encoded '/' is refused
   * instead of silently becoming a separator. `o` counts bytes as if `out`
   * were unbounded; only bytes that fit are stored, and the length is
   * judged once dropped segments and the last separator are gone. */
  for (;;) {
    size_t seg = o, n;
    char c0 = 0, c1 = 0;
    while (i < end && target[i] != '/') {
      char c = target[i];
      if (c == '%') {
        int hi, lo;
        if (end - i < 3) return 400;
        hi = hexval(target[i + 1]);
        lo = hexval(target[i + 2]);
        if (hi < 0 || lo < 0) return 400;
        c = (char)(hi * 16 + lo);
        if (c == '/') return 400;
        i += 3;
      } else {
        i++;
      }
      /* Control characters (NUL above all) have no business in a file
       * name served over HTTP, raw or encoded. */
      if (c == '\\' || (unsigned char)c < 0x20 || c == 0x7f) return 400;
      if (o - seg == 0) c0 = c;
      else if (o - seg == 1) c1 = c;
      if (o < outsz) out[o] = c;
      o++;
    }
    n = o - seg;
    if (n == 2 && c0 == '.' && c1 == '.') return 400;
    if (n == 0 || (n == 1 && c0 == '.')) {
      o = seg;
      last_kept = 0;
    } else {
      if (o < outsz) out[o] = '/';
      o++;
      last_kept = 1;
    }
    if (i >= end) break;
    i++; /* the '/' */
  }
  if (o > 0) o--; /* drop the separator after the last kept segment */
  if (o >= outsz) {
    out[0] = '\0';
    return 414;
  }
  out[o] = '\0';
  *dir = !last_kept;
  return 0;
}

const char *uvws__mime_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},   {"svg", "image/svg+xml"},
      {"png", "image/png"},                 {"ico", "image/x-icon"},
      {"json", "application/json"},         {"wasm", "application/wasm"},
      {"txt", "text/plain; charset=utf-8"}, {"map", "application/json"},
      {"jpg", "image/jpeg"},                {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},                 {"webp", "image/webp"},
      {"woff2", "font/woff2"},              {"md", "text/markdown; charset=utf-8"},
  };
  const char *dot = strrchr(name, '.');
  const char *slash = strrchr(name, '/');
  size_t k;
  if (dot && (!slash || dot > slash)) {
    for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
      if (strcasecmp(dot + 1, types[k].ext) == 0) return types[k].type;
  }
  return "application/octet-stream";
}

/* The query string of a request target (RFC 3986 section 3.4, with the
 * application/x-www-form-urlencoded conventions browsers use: pairs split
 * on '&', '+' for a space, %XX escapes). Written against the public header
 * only; used by routes that let a URL choose something for one connection. */
#include "apps.h"

#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Compares the encoded bytes [p, end) with `want` once decoded. A bad
 * escape never matches, so "deflate=of%" is not "off". */
static int decoded_equals(const char *p, const char *end, const char *want) {
  while (p < end) {
    int c = (unsigned char)*p;
    if (c == '+') {
      c = ' ';
      p++;
    } else if (c == '%') {
      int hi, lo;
      if (end - p < 3 || (hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0) return 0;
      c = hi * 16 + lo;
      p += 3;
    } else {
      p++;
    }
    if (*want == '\0' || (unsigned char)*want != c) return 0;
    want++;
  }
  return *want == '\0';
}

int uvws_app_query_has(const char *target, size_t len, const char *name, const char *value) {
  const char *end, *q, *frag;
  if (target == NULL) return 0;
  frag = memchr(target, '#', len);
  end = frag ? frag : target + len;
  q = memchr(target, '?', (size_t)(end - target));
  if (q == NULL) return 0;
  for (q++; q <= end; ) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *pair_end = amp ? amp : end;
    const char *eq = memchr(q, '=', (size_t)(pair_end - q));
    const char *key_end = eq ? eq : pair_end;
    if (decoded_equals(q, key_end, name) &&
        decoded_equals(eq ? eq + 1 : pair_end, pair_end, value))
      return 1;
    if (amp == NULL) break;
    q = amp + 1;
  }
  return 0;
}

/* ?deflate=off on an echo route's URL declines permessage-deflate for that
 * connection: a learner then sees each length encoding as it is named. */
int uvws_app_deflate_choice(uvws_upgrade_t *up) {
  size_t len = 0;
  const char *target = uvws_upgrade_target(up, &len);
  if (uvws_app_query_has(target, len, "deflate", "off")) uvws_upgrade_decline_deflate(up);
  return 0;
}

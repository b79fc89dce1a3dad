#include "proto/handshake.h"

#include "uvws.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>
#include <string.h>

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Calls `fn` for each trimmed non-empty item of a comma list; stops when it
 * returns non-zero and returns that value. */
static const void *list_each(const char *v, size_t len,
                             const void *(*fn)(const char *item, size_t n, const void *arg),
                             const void *arg) {
  size_t i = 0;
  while (i < len) {
    size_t start, end;
    const void *r;
    while (i < len && (is_ows(v[i]) || v[i] == ',')) i++;
    start = i;
    while (i < len && v[i] != ',') i++;
    end = i;
    while (end > start && is_ows(v[end - 1])) end--;
    if (end > start && (r = fn(v + start, end - start, arg)) != NULL) return r;
  }
  return NULL;
}

static const void *token_eq_ci(const char *item, size_t n, const void *arg) {
  const char *token = arg;
  size_t i;
  if (strlen(token) != n) return NULL;
  for (i = 0; i < n; i++)
    if (lower((unsigned char)item[i]) != lower((unsigned char)token[i])) return NULL;
  return item;
}

int uvws__list_has_token(const char *v, size_t len, const char *token) {
  return v != NULL && list_each(v, len, token_eq_ci, token) != NULL;
}

static const void *spoken_match(const char *item, size_t n, const void *arg) {
  const char *const *spoken = arg;
  for (; *spoken; spoken++)
    if (strlen(*spoken) == n && memcmp(*spoken, item, n) == 0) return *spoken;
  return NULL;
}

const char *uvws__select_subprotocol(const char *offer, size_t len, const char *const *spoken) {
  if (offer == NULL || spoken == NULL) return NULL;
  return list_each(offer, len, spoken_match, spoken);
}

int uvws__key_valid(const char *key, size_t len) {
  unsigned char raw[18];
  size_t olen = 0;
  /* 16 bytes encode to exactly 22 characters plus "==". */
  if (key == NULL || len != 24 || key[22] != '=' || key[23] != '=') return 0;
  if (mbedtls_base64_decode(raw, sizeof(raw), &olen, (const unsigned char *)key, len) != 0)
    return 0;
  return olen == 16;
}

int uvws__accept_key(const char *key, size_t len, char out[UVWS__ACCEPT_LEN + 1],
                     unsigned char sha1[20]) {
  unsigned char digest[20];
  size_t olen = 0;
  mbedtls_sha1_context ctx;
  int rc;

  mbedtls_sha1_init(&ctx);
#if MBEDTLS_VERSION_MAJOR >= 3
  rc = mbedtls_sha1_starts(&ctx);
  if (rc == 0) rc = mbedtls_sha1_update(&ctx, (const unsigned char *)key, len);
  if (rc == 0) rc = mbedtls_sha1_update(&ctx, (const unsigned char *)UVWS__WS_GUID, 36);
  if (rc == 0) rc = mbedtls_sha1_finish(&ctx, digest);
#else
  rc = mbedtls_sha1_starts_ret(&ctx);
  if (rc == 0) rc = mbedtls_sha1_update_ret(&ctx, (const unsigned char *)key, len);
  if (rc == 0) rc = mbedtls_sha1_update_ret(&ctx, (const unsigned char *)UVWS__WS_GUID, 36);
  if (rc == 0) rc = mbedtls_sha1_finish_ret(&ctx, digest);
#endif
  mbedtls_sha1_free(&ctx);
  if (rc != 0) return -1;
  rc = mbedtls_base64_encode((unsigned char *)out, UVWS__ACCEPT_LEN + 1, &olen, digest, 20);
  if (rc != 0 || olen != UVWS__ACCEPT_LEN) return -1;
  out[UVWS__ACCEPT_LEN] = '\0';
  if (sha1) memcpy(sha1, digest, 20);
  return 0;
}

int uvws_accept_key(const char *key, size_t len, char accept[29], uint8_t sha1[20]) {
  return uvws__accept_key(key, len, accept, sha1) == 0 ? 0 : UV_EINVAL;
}

int uvws__upgrade_wanted(const uvws__upgrade_req_t *r) {
  return uvws__list_has_token(r->upgrade.p, r->upgrade.len, "websocket") || r->key.p != NULL;
}

int uvws__upgrade_check(const uvws__upgrade_req_t *r, const char **why) {
  if (!r->is_get) return *why = "WebSocket upgrade requires GET", 400;
  if (r->http_major != 1 || r->http_minor < 1)
    return *why = "WebSocket upgrade requires HTTP/1.1", 400;
  if (r->host.p == NULL || r->host.len == 0) return *why = "missing Host header", 400;
  if (!uvws__list_has_token(r->upgrade.p, r->upgrade.len, "websocket"))
    return *why = "Upgrade header must name websocket", 400;
  if (!uvws__list_has_token(r->connection.p, r->connection.len, "upgrade"))
    return *why = "Connection header must contain upgrade", 400;
  if (r->key.p == NULL) return *why = "missing Sec-WebSocket-Key", 400;
  if (!uvws__key_valid(r->key.p, r->key.len))
    return *why = "Sec-WebSocket-Key is not base64 of 16 bytes", 400;
  if (r->version.p == NULL) return *why = "missing Sec-WebSocket-Version", 400;
  if (r->version.len != 2 || memcmp(r->version.p, "13", 2) != 0)
    return *why = "unsupported Sec-WebSocket-Version (13 is supported)", 426;
  return 0;
}

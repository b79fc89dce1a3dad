/* The opening handshake, server side (RFC 6455 section 4.2): request
 * checks, Sec-WebSocket-Accept and subprotocol choice. Pure functions over
 * header values; the HTTP layer collects them. */
#ifndef UVWS_HANDSHAKE_H
#define UVWS_HANDSHAKE_H

#include <stddef.h>

#define UVWS__WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define UVWS__ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

/* A header value: `p == NULL` means the header was absent. Repeated
 * headers arrive joined with ", " (RFC 9110 section 5.3). */
typedef struct {
  const char *p;
  size_t len;
} uvws__hval_t;

typedef struct {
  int is_get;
  int http_major, http_minor;
  uvws__hval_t host, upgrade, connection, key, version;
} uvws__upgrade_req_t;

/* 1 if the request asks for a WebSocket at all: an Upgrade header naming
 * websocket, or a Sec-WebSocket-Key. Such requests get WebSocket answers
 * (400/426) rather than being served as plain HTTP. */
int uvws__upgrade_wanted(const uvws__upgrade_req_t *r);

/* Checks a WebSocket upgrade request. Returns 0 if it is valid, else the
 * HTTP status to answer (400, or 426 for a version other than 13) and sets
 * *why to a one-line static reason. */
int uvws__upgrade_check(const uvws__upgrade_req_t *r, const char **why);

/* 1 if `key` is the base64 encoding of exactly 16 bytes. */
int uvws__key_valid(const char *key, size_t len);

/* Writes the 28-character Sec-WebSocket-Accept for `key` plus a NUL, and
 * the SHA-1 digest to `sha1` if it is not NULL. Returns 0, or -1 if
 * hashing failed. */
int uvws__accept_key(const char *key, size_t len, char out[UVWS__ACCEPT_LEN + 1],
                     unsigned char sha1[20]);

/* 1 if the comma-separated list `v` contains `token` (ASCII case-insensitive,
 * optional whitespace around items ignored). */
int uvws__list_has_token(const char *v, size_t len, const char *token);

/* Returns the first protocol of the client's offer (in the client's order)
 * that `spoken` (NULL-terminated) contains, as the pointer from `spoken`;
 * or NULL. Comparison is exact (subprotocol names are case-sensitive). */
const char *uvws__select_subprotocol(const char *offer, size_t len, const char *const *spoken);

#endif

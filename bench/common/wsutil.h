/* Small helpers shared by bench/wsload and the bench peers written in C:
 * SHA-1 and base64, enough to compute Sec-WebSocket-Accept (RFC 6455 4.2.2).
 * Not for security use. */
#ifndef UVWS_BENCH_WSUTIL_H
#define UVWS_BENCH_WSUTIL_H

#include <stddef.h>
#include <stdint.h>

void bench_sha1(const void *data, size_t len, uint8_t out[20]);
/* Writes the base64 of in[0..len) and a NUL to out (4*ceil(len/3)+1 bytes). */
void bench_base64(const uint8_t *in, size_t len, char *out);
/* accept = base64(SHA-1(key + GUID)); out holds at least 29 bytes. */
void bench_ws_accept(const char *key, size_t key_len, char out[29]);

#endif

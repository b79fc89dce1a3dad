/* TLS with mbedTLS through memory buffers: libuv reads ciphertext, mbedTLS
 * decrypts it from the buffer we hand it, and its output goes back into
 * the connection's ordinary write path. Nothing here blocks. */
#ifndef UVWS_TLS_H
#define UVWS_TLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls_compat.h"

/* Per-server randomness, shared by every configuration. */
typedef struct {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  int ready;
} uvws__tls_rng_t;

/* A certificate, its key and the mbedTLS configuration built on them.
 * Reference-counted: each connection holds the configuration it started
 * its handshake with, so a reload (SIGHUP) swaps in a new one while old
 * connections keep theirs until they close. */
typedef struct {
  _Atomic int refs;          /* connections on every loop share it */
  mbedtls_ssl_config conf;
  mbedtls_x509_crt chain;
  mbedtls_pk_context key;
  mbedtls_ssl_ticket_context tickets;
  char fingerprint[32 * 3]; /* SHA-256 of the leaf certificate, "AB:CD:..." */
} uvws__tls_conf_t;

int uvws__tls_rng_init(uvws__tls_rng_t *rng);
void uvws__tls_rng_free(uvws__tls_rng_t *rng);

/* Loads a PEM certificate chain and key. Returns 0, or a negative code with
 * `err` (size errsz) saying why. */
int uvws__tls_conf_load(uvws__tls_rng_t *rng, const char *cert, const char *key,
                        uvws__tls_conf_t **out, char *err, size_t errsz);
/* Generates an EC P-256 key and a self-signed certificate for `cn`, valid
 * from yesterday for 30 days, in memory. */
int uvws__tls_conf_self_signed(uvws__tls_rng_t *rng, const char *cn, uvws__tls_conf_t **out,
                               char *err, size_t errsz);
void uvws__tls_conf_ref(uvws__tls_conf_t *c);
/* 1 if mbedTLS locks its random generator and ticket keys itself
 * (MBEDTLS_THREADING_C), so loops on several threads may share a
 * configuration. */
int uvws__tls_thread_safe(void);
void uvws__tls_conf_unref(uvws__tls_conf_t *c);

/* Writes ciphertext for the peer (the connection's raw write). */
typedef int (*uvws__tls_send_cb)(void *ctx, const unsigned char *p, size_t len);

/* One connection's TLS state (~32 KiB of mbedTLS record buffers). */
typedef struct {
  mbedtls_ssl_context ssl;
  uvws__tls_send_cb send;
  void *send_ctx;
  uvws__tls_conf_t *conf;    /* holds a reference */
  const unsigned char *in;   /* ciphertext of the read being processed */
  size_t in_len;
  uint8_t established;       /* handshake complete */
  uint8_t rec_hdr_have;      /* record framing seen on the wire, to tell */
  uint8_t rec_hdr[5];        /* whether a peer left mid-record */
  uint32_t rec_body_left;
  uint8_t notified;          /* close_notify sent */
} uvws__tls_t;

int uvws__tls_new(uvws__tls_t *t, uvws__tls_conf_t *conf, uvws__tls_send_cb send, void *ctx);
void uvws__tls_free(uvws__tls_t *t);

/* Follows TLS record boundaries in the ciphertext received; returns 1 if
 * the stream so far ends inside a record. */
int uvws__tls_track_records(uvws__tls_t *t, const unsigned char *p, size_t len);

/* mbedTLS error code -> static-ish text (a thread-unsafe buffer: log at once). */
const char *uvws__tls_strerror(int err);

#endif

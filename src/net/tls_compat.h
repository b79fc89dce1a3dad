/* The mbedTLS API differences uvws meets, in one place. Debian 12 ships
 * 2.28; 3.x renamed or extended a few calls (3.0 migration guide). */
#ifndef UVWS_TLS_COMPAT_H
#define UVWS_TLS_COMPAT_H

#include <mbedtls/version.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#include <mbedtls/build_info.h>
#else
#include <mbedtls/config.h>
#endif

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#if defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#endif

/* Private keys: 3.x wants an RNG for blinding while parsing. */
static inline int uvws__pk_parse_keyfile(mbedtls_pk_context *pk, const char *path,
                                         mbedtls_ctr_drbg_context *drbg) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_pk_parse_keyfile(pk, path, NULL, mbedtls_ctr_drbg_random, drbg);
#else
  (void)drbg;
  return mbedtls_pk_parse_keyfile(pk, path, NULL);
#endif
}

/* Does the private key belong to the certificate? 3.x wants an RNG. */
static inline int uvws__pk_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv,
                                      mbedtls_ctr_drbg_context *drbg) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_pk_check_pair(pub, prv, mbedtls_ctr_drbg_random, drbg);
#else
  (void)drbg;
  return mbedtls_pk_check_pair(pub, prv);
#endif
}

/* ECDHE groups in our order of preference: X25519 and P-256 are fast,
 * mbedTLS's default order starts with P-521. */
static inline void uvws__ssl_conf_groups(mbedtls_ssl_config *conf) {
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
  static const uint16_t groups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
  mbedtls_ssl_conf_groups(conf, groups);
#else
  static const mbedtls_ecp_group_id curves[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
      MBEDTLS_ECP_DP_CURVE25519,
#endif
      MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};
  mbedtls_ssl_conf_curves(conf, curves);
#endif
}

static inline void uvws__ssl_conf_tls12_min(mbedtls_ssl_config *conf) {
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

static inline int uvws__sha256(const unsigned char *in, size_t len, unsigned char out[32]) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256(in, len, out, 0);
#else
  return mbedtls_sha256_ret(in, len, out, 0);
#endif
}

/* Certificate serial numbers: an MPI setter, deprecated in 3.4 for a raw
 * one. */
static inline int uvws__x509write_serial(mbedtls_x509write_cert *crt, const unsigned char *raw,
                                         size_t len) {
#if MBEDTLS_VERSION_NUMBER >= 0x03040000
  return mbedtls_x509write_crt_set_serial_raw(crt, (unsigned char *)(uintptr_t)raw, len);
#else
  mbedtls_mpi serial;
  int r;
  mbedtls_mpi_init(&serial);
  r = mbedtls_mpi_read_binary(&serial, raw, len);
  if (r == 0) r = mbedtls_x509write_crt_set_serial(crt, &serial);
  mbedtls_mpi_free(&serial);
  return r;
#endif
}

#endif

#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* ECDHE key exchange with AEAD ciphers only; TLS 1.3 suites where the
 * linked mbedTLS has them. Order: the server's preference. */
static const int ciphersuites[] = {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
#endif
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0};

static const char *alpn[] = {"http/1.1", NULL};

const char *uvws__tls_strerror(int err) {
  static _Thread_local char buf[160]; /* per thread: loops log on their own */
  mbedtls_strerror(err, buf, sizeof(buf));
  return buf;
}

int uvws__tls_rng_init(uvws__tls_rng_t *rng) {
  static const char pers[] = "uvws";
  if (rng->ready) return 0;
#if defined(MBEDTLS_PSA_CRYPTO_C)
  /* 3.x: TLS 1.3 and parts of the X.509 code go through PSA. */
  if (psa_crypto_init() != PSA_SUCCESS) return UV_EIO;
#endif
  mbedtls_entropy_init(&rng->entropy);
  mbedtls_ctr_drbg_init(&rng->drbg);
  if (mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
                            (const unsigned char *)pers, sizeof(pers) - 1) != 0) {
    mbedtls_ctr_drbg_free(&rng->drbg);
    mbedtls_entropy_free(&rng->entropy);
    return UV_EIO;
  }
  rng->ready = 1;
  return 0;
}

void uvws__tls_rng_free(uvws__tls_rng_t *rng) {
  if (!rng->ready) return;
  mbedtls_ctr_drbg_free(&rng->drbg);
  mbedtls_entropy_free(&rng->entropy);
  rng->ready = 0;
}

static uvws__tls_conf_t *conf_alloc(void) {
  uvws__tls_conf_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  atomic_init(&c->refs, 1);
  mbedtls_ssl_config_init(&c->conf);
  mbedtls_x509_crt_init(&c->chain);
  mbedtls_pk_init(&c->key);
  mbedtls_ssl_ticket_init(&c->tickets);
  return c;
}

static void conf_free(uvws__tls_conf_t *c) {
  mbedtls_ssl_ticket_free(&c->tickets);
  mbedtls_ssl_config_free(&c->conf);
  mbedtls_pk_free(&c->key);
  mbedtls_x509_crt_free(&c->chain);
  free(c);
}

void uvws__tls_conf_ref(uvws__tls_conf_t *c) { atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed); }

void uvws__tls_conf_unref(uvws__tls_conf_t *c) {
  if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) conf_free(c);
}

int uvws__tls_thread_safe(void) {
#if defined(MBEDTLS_THREADING_C)
  return 1;
#else
  return 0;
#endif
}

static void fingerprint(uvws__tls_conf_t *c) {
  unsigned char d[32];
  int i;
  c->fingerprint[0] = '\0';
  if (uvws__sha256(c->chain.raw.p, c->chain.raw.len, d) != 0) return;
  for (i = 0; i < 32; i++) snprintf(c->fingerprint + 3 * i, 4, "%02X%s", d[i], i < 31 ? ":" : "");
}

/* Everything but the certificate: protocol versions, suites, ALPN, tickets.
 * Takes `c`: hands it to *out on success, frees it on failure. */
static int conf_finish(uvws__tls_rng_t *rng, uvws__tls_conf_t *c, uvws__tls_conf_t **out, char *err,
                       size_t errsz) {
  int r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
  if (r == 0) {
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &rng->drbg);
    uvws__ssl_conf_tls12_min(&c->conf);
    uvws__ssl_conf_groups(&c->conf);
    mbedtls_ssl_conf_ciphersuites(&c->conf, ciphersuites);
    r = mbedtls_ssl_conf_alpn_protocols(&c->conf, alpn);
  }
  if (r == 0) r = mbedtls_ssl_conf_own_cert(&c->conf, &c->chain, &c->key);
  if (r == 0) {
    /* Resumption by tickets: no server-side session cache to bound. */
    r = mbedtls_ssl_ticket_setup(&c->tickets, mbedtls_ctr_drbg_random, &rng->drbg,
                                 MBEDTLS_CIPHER_AES_256_GCM, 86400);
    if (r == 0)
      mbedtls_ssl_conf_session_tickets_cb(&c->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                          &c->tickets);
  }
  if (r != 0) {
    snprintf(err, errsz, "TLS configuration: %s", uvws__tls_strerror(r));
    conf_free(c);
    return UV_EINVAL;
  }
  fingerprint(c);
  *out = c;
  return 0;
}

int uvws__tls_conf_load(uvws__tls_rng_t *rng, const char *cert, const char *key,
                        uvws__tls_conf_t **out, char *err, size_t errsz) {
  uvws__tls_conf_t *c;
  int r;

  *out = NULL;
  if ((r = uvws__tls_rng_init(rng)) != 0) {
    snprintf(err, errsz, "cannot seed the random generator");
    return r;
  }
  if ((c = conf_alloc()) == NULL) return UV_ENOMEM;
  r = mbedtls_x509_crt_parse_file(&c->chain, cert);
  if (r != 0) {
    snprintf(err, errsz, "certificate %s: %s", cert, uvws__tls_strerror(r));
    conf_free(c);
    return UV_EINVAL;
  }
  r = uvws__pk_parse_keyfile(&c->key, key, &rng->drbg);
  if (r != 0) {
    snprintf(err, errsz, "private key %s: %s", key, uvws__tls_strerror(r));
    conf_free(c);
    return UV_EINVAL;
  }
  /* A key from another certificate loads fine and fails every handshake:
   * refuse it here (mid-renewal this is the usual mistake). */
  r = uvws__pk_check_pair(&c->chain.pk, &c->key, &rng->drbg);
  if (r != 0) {
    snprintf(err, errsz, "private key %s does not match the certificate %s", key, cert);
    conf_free(c);
    return UV_EINVAL;
  }
  return conf_finish(rng, c, out, err, errsz);
}

int uvws__tls_conf_self_signed(uvws__tls_rng_t *rng, const char *cn, uvws__tls_conf_t **out,
                               char *err, size_t errsz) {
  uvws__tls_conf_t *c;
  mbedtls_x509write_cert crt;
  unsigned char der[4096], serial[16];
  char subject[160], not_before[16], not_after[16];
  time_t now = time(NULL), from = now - 86400, to = now + 30 * 86400;
  struct tm tm;
  int r, len = 0;

  *out = NULL;
  if ((r = uvws__tls_rng_init(rng)) != 0) {
    snprintf(err, errsz, "cannot seed the random generator");
    return r;
  }
  if ((c = conf_alloc()) == NULL) return UV_ENOMEM;
  mbedtls_x509write_crt_init(&crt);
  r = mbedtls_pk_setup(&c->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (r == 0)
    r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(c->key), mbedtls_ctr_drbg_random,
                            &rng->drbg);
  if (r == 0) r = mbedtls_ctr_drbg_random(&rng->drbg, serial, sizeof(serial));
  serial[0] &= 0x7f; /* positive */
  if (r == 0) {
    gmtime_r(&from, &tm);
    strftime(not_before, sizeof(not_before), "%Y%m%d%H%M%S", &tm);
    gmtime_r(&to, &tm);
    strftime(not_after, sizeof(not_after), "%Y%m%d%H%M%S", &tm);
    snprintf(subject, sizeof(subject), "CN=%s,O=uvws self-signed", cn);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &c->key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &c->key);
    r = mbedtls_x509write_crt_set_subject_name(&crt, subject);
  }
  if (r == 0) r = mbedtls_x509write_crt_set_issuer_name(&crt, subject);
  if (r == 0) r = mbedtls_x509write_crt_set_validity(&crt, not_before, not_after);
  if (r == 0) r = uvws__x509write_serial(&crt, serial, sizeof(serial));
  if (r == 0) r = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1);
  if (r == 0) {
    /* DER is written at the end of the buffer */
    len = mbedtls_x509write_crt_der(&crt, der, sizeof(der), mbedtls_ctr_drbg_random, &rng->drbg);
    if (len < 0) r = len;
  }
  if (r == 0) r = mbedtls_x509_crt_parse_der(&c->chain, der + sizeof(der) - len, (size_t)len);
  mbedtls_x509write_crt_free(&crt);
  if (r != 0) {
    snprintf(err, errsz, "self-signed certificate: %s", uvws__tls_strerror(r));
    conf_free(c);
    return UV_EINVAL;
  }
  return conf_finish(rng, c, out, err, errsz);
}

/* ---- per connection --------------------------------------------------------- */

static int bio_send(void *p, const unsigned char *buf, size_t len) {
  uvws__tls_t *t = p;
  int r = t->send(t->send_ctx, buf, len);
  /* The write path queues everything it cannot send now: never WANT_WRITE. */
  return r < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)len;
}

static int bio_recv(void *p, unsigned char *buf, size_t len) {
  uvws__tls_t *t = p;
  if (t->in_len == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > t->in_len) len = t->in_len;
  memcpy(buf, t->in, len);
  t->in += len;
  t->in_len -= len;
  return (int)len;
}

int uvws__tls_new(uvws__tls_t *t, uvws__tls_conf_t *conf, uvws__tls_send_cb send, void *ctx) {
  int r;
  memset(t, 0, sizeof(*t));
  mbedtls_ssl_init(&t->ssl);
  r = mbedtls_ssl_setup(&t->ssl, &conf->conf);
  if (r != 0) {
    mbedtls_ssl_free(&t->ssl);
    return UV_ENOMEM;
  }
  t->send = send;
  t->send_ctx = ctx;
  t->conf = conf;
  uvws__tls_conf_ref(conf);
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  return 0;
}

void uvws__tls_free(uvws__tls_t *t) {
  mbedtls_ssl_free(&t->ssl);
  uvws__tls_conf_unref(t->conf);
  t->conf = NULL;
}

int uvws__tls_track_records(uvws__tls_t *t, const unsigned char *p, size_t len) {
  while (len > 0) {
    if (t->rec_body_left > 0) {
      size_t n = len < t->rec_body_left ? len : t->rec_body_left;
      t->rec_body_left -= (uint32_t)n;
      p += n;
      len -= n;
      continue;
    }
    t->rec_hdr[t->rec_hdr_have++] = *p++;
    len--;
    if (t->rec_hdr_have == 5) { /* type, version (2), length (2) */
      t->rec_body_left = ((uint32_t)t->rec_hdr[3] << 8) | t->rec_hdr[4];
      t->rec_hdr_have = 0;
    }
  }
  return t->rec_hdr_have > 0 || t->rec_body_left > 0;
}

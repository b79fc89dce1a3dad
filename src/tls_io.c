/* TLS between the socket and the connection: ciphertext from libuv is
 * handed to mbedTLS as memory, the plaintext it yields goes to
 * uvws__conn_input, and what mbedTLS writes goes to the connection's raw
 * write path (cork, uv_try_write, queue) like any other bytes. */
#include "internal.h"
#include "log.h"

#include <stdlib.h>

#define TLS_PLAIN_BUF (16u * 1024u + 512u)

static int send_raw(void *ctx, const unsigned char *p, size_t len) {
  uvws_conn_t *c = ctx;
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)len);
  return uvws__conn_raw_write(c, &b, 1);
}

int uvws__tls_io_new(uvws_conn_t *c) {
  uvws_server_t *srv = c->srv;
  int r;
  if (srv->tlsbuf == NULL && (srv->tlsbuf = malloc(TLS_PLAIN_BUF)) == NULL) return UV_ENOMEM;
  c->tls = malloc(sizeof(*c->tls));
  if (c->tls == NULL) return UV_ENOMEM;
  r = uvws__tls_new(c->tls, srv->tls, send_raw, c);
  if (r != 0) {
    free(c->tls);
    c->tls = NULL;
  }
  return r;
}

static void fail(uvws_conn_t *c, const char *what, int err) {
  uvws__log(UVWS_LOG_INFO, "tls %s: %s: %s", c->peer, what, uvws__tls_strerror(err));
  uvws__conn_abort(c, what);
}

void uvws__tls_io_read(uvws_conn_t *c, const char *data, size_t len) {
  uvws__tls_t *t = c->tls;
  int corked, r;

  t->in = (const unsigned char *)data;
  t->in_len = len;
  uvws__tls_track_records(t, t->in, len);
  corked = uvws__conn_cork(c); /* handshake messages and replies leave together */
  if (!t->established) {
    r = mbedtls_ssl_handshake(&t->ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) goto out;
    if (r != 0) {
      /* Plain HTTP on the TLS port, garbage, a client that disliked our
       * certificate: one log line, the connection ends, nobody else cares. */
      fail(c, "handshake failed", r);
      goto out;
    }
    t->established = 1;
    uvws__log(UVWS_LOG_DEBUG, "tls %s: %s %s alpn=%s", c->peer, mbedtls_ssl_get_version(&t->ssl),
              mbedtls_ssl_get_ciphersuite(&t->ssl),
              mbedtls_ssl_get_alpn_protocol(&t->ssl) ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : "-");
  }
  /* Drain: mbedTLS may hold decrypted bytes that libuv will never signal. */
  while (c->state != UVWS__CONN_CLOSED) {
    r = mbedtls_ssl_read(&t->ssl, (unsigned char *)c->srv->tlsbuf, TLS_PLAIN_BUF);
    if (r > 0) {
      uvws__conn_input(c, c->srv->tlsbuf, (size_t)r);
      continue;
    }
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) break;
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      /* The peer closed TLS: as good as EOF. Answer with ours. */
      uvws__conn_finish(c);
      break;
    }
    fail(c, "read failed", r);
    break;
  }
out:
  t->in_len = 0;
  if (corked) uvws__conn_uncork(c);
}

int uvws__tls_io_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  uvws__tls_t *t = c->tls;
  unsigned i;

  if (c->state == UVWS__CONN_CLOSED || c->fin_sent || t->notified) return UVWS_ECLOSED;
  if (!t->established) return UVWS_ESTATE;
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)bufs[i].base;
    size_t left = bufs[i].len;
    while (left > 0) {
      /* At most one record (16 KiB) per call; our BIO never blocks, so
       * WANT_WRITE cannot happen and the same arguments rule is moot. */
      int r = mbedtls_ssl_write(&t->ssl, p, left);
      if (r <= 0) {
        fail(c, "write failed", r);
        return UV_EIO;
      }
      p += r;
      left -= (size_t)r;
      if (c->state == UVWS__CONN_CLOSED) return UVWS_ECLOSED;
    }
  }
  return 0;
}

void uvws__tls_io_close_notify(uvws_conn_t *c) {
  uvws__tls_t *t = c->tls;
  if (t->notified || !t->established || c->fin_sent) return;
  t->notified = 1;
  (void)mbedtls_ssl_close_notify(&t->ssl);
}

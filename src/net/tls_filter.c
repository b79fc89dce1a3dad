/* TLS between the socket and the stream's upper layer: ciphertext from
 * libuv is handed to mbedTLS as memory, the plaintext it yields goes up
 * like any read, and what mbedTLS writes goes to the connection's raw
 * write path (cork, uv_try_write, queue) like any other bytes. */
#include "net/net.h"
#include "util/log.h"

#include <stdlib.h>

#define TLS_PLAIN_BUF (16u * 1024u + 512u)

static int send_raw(void *ctx, const unsigned char *p, size_t len) {
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)len);
  return uvws__tcp_raw_write(ctx, &b, 1);
}

int uvws__tls_filter_new(uvws__tcp_t *t) {
  uvws__netloop_t *nl = t->nl;
  int r;
  if (nl->tls == NULL) return UVWS_ESTATE;
  if (nl->tlsbuf == NULL && (nl->tlsbuf = malloc(TLS_PLAIN_BUF)) == NULL) return UV_ENOMEM;
  t->tls = malloc(sizeof(*t->tls));
  if (t->tls == NULL) return UV_ENOMEM;
  r = uvws__tls_new(t->tls, nl->tls, send_raw, t);
  if (r != 0) {
    free(t->tls);
    t->tls = NULL;
  }
  return r;
}

static void fail(uvws__tcp_t *t, const char *what, int err) {
  uvws__log(UVWS_LOG_INFO, "tls %s: %s: %s", t->s.peer, what, uvws__tls_strerror(err));
  t->s.ops->close(&t->s, what);
}

void uvws__tls_filter_read(uvws__tcp_t *t, const char *data, size_t len) {
  uvws__tls_t *tls = t->tls;
  int corked, r;

  tls->in = (const unsigned char *)data;
  tls->in_len = len;
  uvws__tls_track_records(tls, tls->in, len);
  corked = uvws__tcp_begin_batch(t); /* handshake messages and replies leave together */
  if (!tls->established) {
    r = mbedtls_ssl_handshake(&tls->ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) goto out;
    if (r != 0) {
      /* Plain HTTP on the TLS port, garbage, a client that disliked our
       * certificate: one log line, the connection ends, nobody else cares. */
      fail(t, "handshake failed", r);
      goto out;
    }
    tls->established = 1;
    uvws__log(UVWS_LOG_DEBUG, "tls %s: %s %s alpn=%s", t->s.peer, mbedtls_ssl_get_version(&tls->ssl),
              mbedtls_ssl_get_ciphersuite(&tls->ssl),
              mbedtls_ssl_get_alpn_protocol(&tls->ssl) ? mbedtls_ssl_get_alpn_protocol(&tls->ssl) : "-");
  }
  /* Drain: mbedTLS may hold decrypted bytes that libuv will never signal. */
  while (!t->closed && !t->s.finishing) {
    r = mbedtls_ssl_read(&tls->ssl, (unsigned char *)t->nl->tlsbuf, TLS_PLAIN_BUF);
    if (r > 0) {
      uvws__tcp_deliver(t, t->nl->tlsbuf, (size_t)r);
      continue;
    }
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) break;
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      /* The peer closed TLS: as good as EOF. Answer with ours. */
      t->s.ops->finish(&t->s);
      break;
    }
    fail(t, "read failed", r);
    break;
  }
out:
  tls->in_len = 0;
  if (corked) uvws__tcp_end_batch(t);
}

int uvws__tls_filter_write(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n) {
  uvws__tls_t *tls = t->tls;
  unsigned i;

  if (t->closed || t->fin_sent || tls->notified) return UVWS_ECLOSED;
  if (!tls->established) return UVWS_ESTATE;
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)bufs[i].base;
    size_t left = bufs[i].len;
    while (left > 0) {
      /* At most one record (16 KiB) per call; our BIO never blocks, so
       * WANT_WRITE cannot happen and the same arguments rule is moot. */
      int r = mbedtls_ssl_write(&tls->ssl, p, left);
      if (r <= 0) {
        fail(t, "write failed", r);
        return UV_EIO;
      }
      p += r;
      left -= (size_t)r;
      if (t->closed) return UVWS_ECLOSED;
    }
  }
  return 0;
}

void uvws__tls_filter_close_notify(uvws__tcp_t *t) {
  uvws__tls_t *tls = t->tls;
  if (tls->notified || !tls->established || t->fin_sent) return;
  tls->notified = 1;
  (void)mbedtls_ssl_close_notify(&tls->ssl);
}

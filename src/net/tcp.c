/* A TCP connection as a stream (stream.h): libuv reads into the loop's
 * buffer, writes go through the cork, uv_try_write and the send queue, the
 * water marks pause reading, FIN and EOF end it. TLS sits inside as a
 * filter (tls_filter.c). The upper layer is reached only through the
 * callbacks it installed. */
#include "net/net.h"
#include "util/hash.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_BUFS 16 /* chunks per uv_write; libuv copies more than 4 to the heap once */

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_closed(uv_handle_t *handle);
static void start_write(uvws__tcp_t *t);
static void do_shutdown(uvws__tcp_t *t);
static void update_reading(uvws__tcp_t *t);

static uvws__tcp_t *tcp_of(uvws__stream_t *s) { return (uvws__tcp_t *)s; }

/* ---- the end of a connection ------------------------------------------------ */

static void ip_release(uvws__tcp_t *t);

/* A connection whose end has begun (finish or close) no longer counts
 * toward --max-connections or the per-address limit: its WebSocket or
 * HTTP exchange is over, only the TCP goodbye is left. */
static void uncount(uvws__tcp_t *t) {
  ip_release(t);
  if (!t->counted) return;
  t->counted = 0;
  t->nl->nopen--;
  atomic_fetch_sub_explicit(&t->nl->shared->open, 1, memory_order_relaxed);
}

/* Every path that ends a connection comes here once. The upper hears of it
 * in on_close, from the handle's close callback: never re-entrantly from
 * inside one of its own calls. */
static void tcp_close(uvws__stream_t *s, const char *why) {
  uvws__tcp_t *t = tcp_of(s);
  if (t->closed) return;
  if (why) uvws__log(UVWS_LOG_DEBUG, "conn %s: %s", s->peer, why);
  t->closed = 1;
  s->closing = 1;
  s->deadline = 0;
  uncount(t);
  uv_close((uv_handle_t *)&t->tcp, on_closed);
}

static void flush_forget(uvws__tcp_t *t) {
  uvws__tcp_t **p;
  if (!t->flush_pending) return;
  for (p = &t->nl->flush_head; *p; p = &(*p)->flush_next) {
    if (*p == t) {
      *p = t->flush_next;
      break;
    }
  }
  t->flush_pending = 0;
}

static void on_closed(uv_handle_t *handle) {
  uvws__tcp_t *t = handle->data;
  uvws__netloop_t *nl = t->nl;
  if (t->s.cb && t->s.cb->on_close) t->s.cb->on_close(&t->s);
  if (t->tls) {
    uvws__tls_free(t->tls);
    free(t->tls);
  }
  uvws__wq_free(&t->q);
  if (t->prev) t->prev->next = t->next;
  else nl->conns = t->next;
  if (t->next) t->next->prev = t->prev;
  nl->nconns--;
  flush_forget(t);
  if (nl->corked == t) nl->corked = NULL;
  free(t);
  if (nl->hooks && nl->hooks->on_freed) nl->hooks->on_freed(nl->ctx);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  uvws__tcp_t *t = req->handle->data;
  free(req);
  if (t->closed) return;
  if (status < 0) {
    tcp_close(&t->s, uv_strerror(status));
    return;
  }
  /* FIN is out. Unless the peer's FIN came already, wait for it, so that
   * unread bytes do not turn our close into a reset that could destroy the
   * last frames in flight. */
  if (t->peer_eof) {
    tcp_close(&t->s, NULL);
    return;
  }
  t->s.deadline = uv_now(t->s.loop) + t->nl->close_timeout_ms;
  update_reading(t);
}

static void do_shutdown(uvws__tcp_t *t) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  int r;
  t->fin_sent = 1;
  if (req == NULL) {
    tcp_close(&t->s, "out of memory");
    return;
  }
  r = uv_shutdown(req, (uv_stream_t *)&t->tcp, on_shutdown);
  if (r < 0) {
    free(req);
    tcp_close(&t->s, uv_strerror(r));
  }
}

static void tcp_finish(uvws__stream_t *s) {
  uvws__tcp_t *t = tcp_of(s);
  if (t->closed || s->finishing) return;
  if (t->tls) uvws__tls_filter_close_notify(t); /* queued before the FIN */
  s->finishing = 1;
  s->deadline = uv_now(s->loop) + t->nl->close_timeout_ms;
  uncount(t);
  update_reading(t); /* reading goes on, to see EOF; input is discarded */
  if (t->nl->corked == t) return; /* the uncork comes back here */
  if (!t->write_inflight && t->q.bytes == 0) do_shutdown(t);
}

void uvws__net_timeout(uvws__tcp_t *t) {
  t->s.deadline = 0;
  if (t->s.finishing || t->fin_sent) tcp_close(&t->s, "no FIN from the peer in time");
  else if (t->s.cb && t->s.cb->on_timeout) t->s.cb->on_timeout(&t->s);
}

/* ---- the water marks ------------------------------------------------------------ */

static size_t tcp_queued(const uvws__stream_t *s) {
  const uvws__tcp_t *t = (const uvws__tcp_t *)s;
  size_t n = t->q.bytes;
  if (t->nl->corked == t) n += t->nl->cork.len;
  return n;
}

/* After the queue grew: above the high mark reading stops (counted once
 * per pause), above the low mark the upper is owed on_writable. */
static void grew(uvws__tcp_t *t) {
  size_t n = tcp_queued(&t->s);
  if (n > UVWS__QUEUE_LOW) t->writable_owed = 1;
  if (n > UVWS__QUEUE_HIGH && !t->congested) {
    t->congested = 1;
    if (t->reading) UVWS__ADD(t->nl->m->backpressure_pauses, 1);
    update_reading(t);
  }
}

/* After the queue shrank: at the low mark reading resumes and the upper
 * hears on_writable if it is owed. */
static void shrank(uvws__tcp_t *t) {
  if (t->closed || tcp_queued(&t->s) > UVWS__QUEUE_LOW) return;
  if (t->congested) {
    t->congested = 0;
    update_reading(t);
  }
  if (t->writable_owed && !t->closed) {
    t->writable_owed = 0;
    if (t->s.cb->on_writable) t->s.cb->on_writable(&t->s);
  }
}

static void tcp_want_writable(uvws__stream_t *s) { tcp_of(s)->writable_owed = 1; }

static void flush_list_add(uvws__tcp_t *t) {
  if (t->flush_pending) return;
  t->flush_pending = 1;
  t->flush_next = t->nl->flush_head;
  t->nl->flush_head = t;
}

static void tcp_defer(uvws__stream_t *s) {
  uvws__tcp_t *t = tcp_of(s);
  t->resume_owed = 1;
  flush_list_add(t);
}

/* ---- writing ----------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status);

static void start_write(uvws__tcp_t *t) {
  uv_buf_t bufs[WRITE_BUFS];
  uv_write_t *req;
  unsigned n;
  int r;

  if (t->write_inflight || t->q.bytes == 0 || t->closed) return;
  /* The request is allocated per uv_write rather than kept in every
   * connection: most writes finish in uv_try_write, and an idle connection
   * should not carry 192 bytes it rarely uses. */
  req = malloc(sizeof(*req));
  if (req == NULL) {
    tcp_close(&t->s, "out of memory");
    return;
  }
  /* The chunks stay at the head of the queue until the write completes;
   * new data is appended behind them. */
  n = uvws__wq_peek(&t->q, bufs, WRITE_BUFS, &t->q_inflight);
  r = uv_write(req, (uv_stream_t *)&t->tcp, bufs, n, on_write);
  if (r < 0) {
    free(req);
    t->q_inflight = 0;
    tcp_close(&t->s, uv_strerror(r));
    return;
  }
  t->write_inflight = 1;
}

static void on_write(uv_write_t *req, int status) {
  uvws__tcp_t *t = req->handle->data;

  free(req);
  t->write_inflight = 0;
  if (t->closed) return;
  if (status < 0) {
    tcp_close(&t->s, uv_strerror(status));
    return;
  }
  uvws__wq_consume(&t->q, t->q_inflight);
  t->q_inflight = 0;
  if (t->q.bytes) {
    start_write(t);
  } else if (t->s.finishing && !t->fin_sent) {
    do_shutdown(t);
    return;
  }
  shrank(t);
}

/* Moves what the kernel did not take (`done` bytes of `bufs` were written)
 * to the connection's own queue. */
static int queue_rest(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n, size_t done) {
  unsigned i;
  for (i = 0; i < n; i++) {
    size_t len = bufs[i].len;
    if (done >= len) {
      done -= len;
      continue;
    }
    if (uvws__wq_copy(&t->q, bufs[i].base + done, len - done) != 0) return UV_ENOMEM;
    done = 0;
  }
  return 0;
}

/* uv_try_write with the outcomes every caller wants: the bytes the kernel
 * took (0 when it would block), or a negative error after which the
 * connection is closing. */
static int try_write_now(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n) {
  int r = uv_try_write((uv_stream_t *)&t->tcp, bufs, n);
  if (r == UV_EAGAIN || r == UV_ENOSYS) return 0;
  if (r < 0) tcp_close(&t->s, uv_strerror(r));
  return r;
}

static void queued(uvws__tcp_t *t) {
  start_write(t);
  grew(t);
}

/* Writes in order behind anything already queued. Small writes made while
 * the connection's input is being processed gather in the loop's cork
 * buffer (one syscall for a whole batch of pipelined messages); otherwise
 * uv_try_write goes first and only what the kernel refuses is copied. */
int uvws__tcp_raw_write(uvws__tcp_t *t, const uv_buf_t *bufs, unsigned n) {
  uvws__netloop_t *nl = t->nl;
  uv_buf_t v[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  unsigned i, nv = 0;
  size_t total = 0;
  int r;

  if (t->closed || t->fin_sent) return UVWS_ECLOSED;
  for (i = 0; i < n; i++) total += bufs[i].len;

  if (t->write_inflight || t->q.bytes) {
    for (i = 0; i < n; i++) {
      if (uvws__wq_copy(&t->q, bufs[i].base, bufs[i].len) != 0) goto nomem;
    }
    queued(t);
    return 0;
  }
  if (nl->corked == t && total < UVWS__DIRECT_WRITE_MIN) {
    for (i = 0; i < n; i++) {
      if (uvws__buf_append(&nl->cork, bufs[i].base, bufs[i].len) != 0) goto nomem;
    }
    if (nl->cork.len > UVWS__QUEUE_LOW) grew(t); /* the queue is empty: the cork is all */
    return 0;
  }

  /* Direct: whatever is corked goes first, in the same writev. */
  if (nl->corked == t && nl->cork.len)
    v[nv++] = uv_buf_init(uvws__buf_data(&nl->cork), (unsigned)nl->cork.len);
  for (i = 0; i < n && nv < 4; i++) v[nv++] = bufs[i];
  if (i < n) return UV_EINVAL; /* internal callers pass at most 3 */
  if ((r = try_write_now(t, v, nv)) < 0) return r;
  if (queue_rest(t, v, nv, (size_t)r) != 0) goto nomem;
  if (nl->corked == t) uvws__buf_consume(&nl->cork, nl->cork.len);
  queued(t);
  return 0;
nomem:
  uvws__log(UVWS_LOG_ERROR, "conn %s: out of memory queueing %zu bytes", t->s.peer, total);
  tcp_close(&t->s, "out of memory");
  return UV_ENOMEM;
}

static int tcp_write(uvws__stream_t *s, const uv_buf_t *bufs, unsigned n) {
  uvws__tcp_t *t = tcp_of(s);
  return t->tls ? uvws__tls_filter_write(t, bufs, n) : uvws__tcp_raw_write(t, bufs, n);
}

/* A shared buffer (one published frame for many receivers) is queued by
 * reference, never copied, unless TLS must encrypt it for this connection.
 * It is not written now: every publish of this loop iteration gathers in
 * the queue and leaves in one write per receiver after the I/O callbacks
 * (uvws__net_flush), so under load the syscalls per delivery fall. */
static int tcp_write_shared(uvws__stream_t *s, uvws__sbuf_t *b, size_t off, size_t len) {
  uvws__tcp_t *t = tcp_of(s);
  uvws__netloop_t *nl = t->nl;
  if (t->closed || t->fin_sent) return UVWS_ECLOSED;
  if (t->tls) {
    uv_buf_t v = uv_buf_init(b->data + off, (unsigned)len);
    return uvws__tls_filter_write(t, &v, 1);
  }
  if (nl->corked == t && nl->cork.len) { /* what this connection gathered goes first */
    if (uvws__wq_copy(&t->q, uvws__buf_data(&nl->cork), nl->cork.len) != 0) goto nomem;
    uvws__buf_consume(&nl->cork, nl->cork.len);
  }
  if (uvws__wq_share(&t->q, b, off, off + len) != 0) goto nomem;
  if (!t->write_inflight) flush_list_add(t);
  grew(t);
  return 0;
nomem:
  tcp_close(&t->s, "out of memory");
  return UV_ENOMEM;
}

static int tcp_cork(uvws__stream_t *s) {
  uvws__tcp_t *t = tcp_of(s);
  if (t->nl->corked != NULL) return 0;
  t->nl->corked = t;
  return 1;
}

/* End of a batch: one write for everything the batch produced. */
static void tcp_uncork(uvws__stream_t *s) {
  uvws__tcp_t *t = tcp_of(s);
  uvws__netloop_t *nl = t->nl;
  if (nl->corked != t) return;
  nl->corked = NULL;
  if (nl->cork.len && !t->closed) {
    uv_buf_t b = uv_buf_init(uvws__buf_data(&nl->cork), (unsigned)nl->cork.len);
    if (!t->write_inflight && t->q.bytes == 0) {
      int r = try_write_now(t, &b, 1);
      if (r >= 0 && queue_rest(t, &b, 1, (size_t)r) != 0) tcp_close(s, "out of memory");
    } else if (uvws__wq_copy(&t->q, b.base, b.len) != 0) {
      tcp_close(s, "out of memory");
    }
    start_write(t);
  }
  uvws__buf_consume(&nl->cork, nl->cork.len); /* sent, queued, or its connection is gone */
  /* Keep the cork buffer for the next batch unless one burst made it big. */
  if (nl->cork.cap > 4 * UVWS__READ_BUF_SIZE) uvws__buf_free(&nl->cork);
  if (t->closed) return;
  if (s->finishing && !t->fin_sent && !t->write_inflight && t->q.bytes == 0) do_shutdown(t);
}

/* ---- reading ------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  uvws__tcp_t *t = handle->data;
  (void)suggested;
  /* One buffer for all connections of the loop: every read is processed
   * (or copied) before the next one is allocated. */
  *buf = uv_buf_init(t->nl->readbuf, UVWS__READ_BUF_SIZE);
}

static void update_reading(uvws__tcp_t *t) {
  int want;
  if (t->closed) return;
  if (t->peer_eof) want = 0;                 /* nothing more will come */
  else if (t->s.finishing) want = 1;         /* only to see EOF; input is discarded */
  else want = !t->paused && !t->congested;
  if (want && !t->reading) {
    int r = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
    if (r < 0) {
      tcp_close(&t->s, uv_strerror(r));
      return;
    }
    t->reading = 1;
  } else if (!want && t->reading) {
    uv_read_stop((uv_stream_t *)&t->tcp);
    t->reading = 0;
  }
}

static void tcp_pause(uvws__stream_t *s, int paused) {
  uvws__tcp_t *t = tcp_of(s);
  t->paused = (uint8_t)(paused != 0);
  update_reading(t);
}

/* Plaintext for the upper: straight from the socket, or decrypted. Its
 * writes are corked for the batch, and on_writable owed by the batch comes
 * after it, never from inside. */
void uvws__tcp_deliver(uvws__tcp_t *t, char *data, size_t len) {
  int corked;
  if (t->closed || t->s.finishing) return; /* draining until EOF */
  corked = tcp_cork(&t->s);
  t->s.cb->on_data(&t->s, data, len);
  if (corked) uvws__tcp_end_batch(t);
}

void uvws__tcp_end_batch(uvws__tcp_t *t) {
  tcp_uncork(&t->s);
  shrank(t);
}

int uvws__tcp_begin_batch(uvws__tcp_t *t) { return tcp_cork(&t->s); }

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  uvws__tcp_t *t = stream->data;

  if (nread == 0 || t->closed) return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      tcp_close(&t->s, uv_strerror((int)nread));
      return;
    }
    if (t->tls && uvws__tls_track_records(t->tls, NULL, 0))
      uvws__log(UVWS_LOG_INFO, "tls %s: connection closed inside a TLS record", t->s.peer);
    t->peer_eof = 1;
    update_reading(t);
    if (t->s.finishing) tcp_close(&t->s, NULL); /* the EOF we waited for */
    else if (t->s.cb->on_eof) t->s.cb->on_eof(&t->s);
    else tcp_close(&t->s, NULL);
    return;
  }
  if (t->tls) uvws__tls_filter_read(t, buf->base, (size_t)nread);
  else uvws__tcp_deliver(t, buf->base, (size_t)nread);
}

/* ---- the flusher --------------------------------------------------------------- */

void uvws__net_flush(uvws__netloop_t *nl) {
  uvws__tcp_t *t = nl->flush_head, *next;
  nl->flush_head = NULL;
  for (; t; t = next) {
    uv_buf_t bufs[WRITE_BUFS];
    size_t bytes;
    unsigned n;
    int r;
    next = t->flush_next;
    t->flush_pending = 0;
    t->flush_next = NULL;
    if (t->closed) continue;
    if (!t->write_inflight && t->q.bytes) {
      n = uvws__wq_peek(&t->q, bufs, WRITE_BUFS, &bytes);
      if ((r = try_write_now(t, bufs, n)) < 0) continue;
      uvws__wq_consume(&t->q, (size_t)r);
      if (t->q.bytes) start_write(t);
      else if (t->s.finishing && !t->fin_sent) do_shutdown(t); /* finish came after a shared write */
      shrank(t);
    }
    if (t->resume_owed && !t->closed) {
      t->resume_owed = 0;
      if (t->s.cb->on_resume) t->s.cb->on_resume(&t->s);
    }
  }
}

size_t uvws__net_queued(const uvws__netloop_t *nl) {
  const uvws__tcp_t *t;
  size_t n = 0;
  for (t = nl->conns; t; t = t->next) n += tcp_queued(&t->s);
  return n;
}

/* ---- accepting ----------------------------------------------------------------- */

static unsigned ip_bucket(const uint8_t a[16]) { return uvws__hash(a, 16) % UVWS__IP_BUCKETS; }

static void shared_lock(uvws__net_shared_t *sh) {
  if (sh->threaded) uv_mutex_lock(&sh->lock);
}
static void shared_unlock(uvws__net_shared_t *sh) {
  if (sh->threaded) uv_mutex_unlock(&sh->lock);
}

/* Counts one more connection from `addr`: the new count, or UV_ENOMEM. */
static int ip_add(uvws__net_shared_t *sh, const uint8_t addr[16]) {
  uvws__ipcount_t **slot, *e;
  int n = 1;
  shared_lock(sh);
  slot = &sh->ips[ip_bucket(addr)];
  for (e = *slot; e; e = e->next)
    if (memcmp(e->addr, addr, 16) == 0) break;
  if (e) {
    n = (int)++e->count;
  } else if ((e = calloc(1, sizeof(*e))) != NULL) {
    memcpy(e->addr, addr, 16);
    e->count = 1;
    e->next = *slot;
    *slot = e;
  } else {
    n = UV_ENOMEM;
  }
  shared_unlock(sh);
  return n;
}

static void ip_release(uvws__tcp_t *t) {
  uvws__net_shared_t *sh = t->nl->shared;
  uvws__ipcount_t **p, *e;
  if (!t->has_addr) return;
  t->has_addr = 0;
  shared_lock(sh);
  for (p = &sh->ips[ip_bucket(t->s.addr)]; (e = *p) != NULL; p = &e->next) {
    if (memcmp(e->addr, t->s.addr, 16) != 0) continue;
    if (--e->count == 0) {
      *p = e->next;
      free(e);
    }
    break;
  }
  shared_unlock(sh);
}

/* Counts the connection's address; 0, or the status to refuse it with. */
static int ip_limit(uvws__tcp_t *t) {
  int n;
  if (!t->nl->shared->max_per_ip || !t->counted) return 0;
  n = ip_add(t->nl->shared, t->s.addr);
  if (n < 0) return 503;
  t->has_addr = 1;
  if ((unsigned)n <= t->nl->shared->max_per_ip) return 0;
  uvws__log(UVWS_LOG_WARN, "conn %s: refused, %d connections from this address (--max-connections-per-ip)",
            t->s.peer, n - 1);
  return 429;
}

static int tcp_set_client(uvws__stream_t *s, const uint8_t addr[16]) {
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  uvws__tcp_t *t = tcp_of(s);
  char ip[INET6_ADDRSTRLEN] = "?";

  ip_release(t);
  memcpy(s->addr, addr, 16);
  s->via_proxy = 1;
  if (memcmp(addr, v4mapped, 12) == 0) {
    uv_inet_ntop(AF_INET, addr + 12, ip, sizeof(ip));
    snprintf(s->peer, sizeof(s->peer), "%s", ip);
  } else {
    uv_inet_ntop(AF_INET6, addr, ip, sizeof(ip));
    snprintf(s->peer, sizeof(s->peer), "[%s]", ip);
  }
  if (ip_limit(t) == 0) return 0;
  UVWS__ADD(t->nl->m->conns_rejected, 1);
  return -1;
}

static void peer_name(uvws__tcp_t *t) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;

  if (uv_tcp_getpeername(&t->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
      memcpy(t->s.addr, &a->sin6_addr, 16);
      uv_ip6_name(a, ip, sizeof(ip));
      snprintf(t->s.peer, sizeof(t->s.peer), "[%s]:%d", ip, ntohs(a->sin6_port));
      return;
    }
    uv_ip4_name((const struct sockaddr_in *)&ss, ip, sizeof(ip));
    port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    t->s.addr[10] = t->s.addr[11] = 0xff; /* ::ffff:a.b.c.d */
    memcpy(t->s.addr + 12, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
  }
  snprintf(t->s.peer, sizeof(t->s.peer), "%s:%d", ip, port);
}

static const uvws__stream_ops_t tcp_ops = {
    .write = tcp_write,
    .write_shared = tcp_write_shared,
    .queued = tcp_queued,
    .pause = tcp_pause,
    .want_writable = tcp_want_writable,
    .defer = tcp_defer,
    .cork = tcp_cork,
    .uncork = tcp_uncork,
    .finish = tcp_finish,
    .close = tcp_close,
    .set_client = tcp_set_client,
};

int uvws__net_accept(uvws__netloop_t *nl, uv_stream_t *listener, int tls) {
  uvws__tcp_t *t = calloc(1, sizeof(*t));
  size_t open;
  int r, refuse = 0;

  if (t == NULL) return UV_ENOMEM;
  t->nl = nl;
  t->s.ops = &tcp_ops;
  t->s.loop = nl->loop;
  t->s.secure = (uint8_t)(tls != 0);
  r = uv_tcp_init(nl->loop, &t->tcp);
  if (r < 0) {
    free(t);
    return r;
  }
  t->tcp.data = t;
  /* Linked and counted before anything can fail, so on_closed can always
   * unlink and tcp_close uncount. */
  t->next = nl->conns;
  if (nl->conns) nl->conns->prev = t;
  nl->conns = t;
  nl->nconns++;
  nl->nopen++;
  t->counted = 1;
  open = atomic_fetch_add_explicit(&nl->shared->open, 1, memory_order_relaxed) + 1;
  r = uv_accept(listener, (uv_stream_t *)&t->tcp);
  if (r == 0 && tls) r = uvws__tls_filter_new(t);
  if (r < 0) {
    tcp_close(&t->s, uv_strerror(r));
    return r;
  }
  uv_tcp_nodelay(&t->tcp, 1);
  peer_name(t);
  t->s.deadline = uv_now(nl->loop) + nl->handshake_timeout_ms;
  if (nl->shared->max_connections && open > nl->shared->max_connections) {
    uvws__log(UVWS_LOG_WARN, "conn %s: refused, %u connections open (--max-connections)", t->s.peer,
              nl->shared->max_connections);
    refuse = 503;
  }
  if (refuse == 0) refuse = ip_limit(t);
  if (refuse) UVWS__ADD(nl->m->conns_rejected, 1);
  /* Limits are answered in HTTP, so clients and logs see why; over TLS that
   * would cost a handshake first: those are just closed. */
  if (refuse && tls) {
    tcp_close(&t->s, NULL);
    return 0;
  }
  r = nl->hooks->on_accept(nl->ctx, &t->s, refuse);
  if (r < 0) {
    tcp_close(&t->s, uv_strerror(r));
    return r;
  }
  update_reading(t);
  return 0;
}

int uvws__net_tls_pending(const uvws__stream_t *s) {
  const uvws__tcp_t *t = (const uvws__tcp_t *)s;
  return s->ops == &tcp_ops && t->tls && !t->tls->established;
}

int uvws__netloop_init(uvws__netloop_t *nl, uv_loop_t *loop) {
  memset(nl, 0, sizeof(*nl));
  nl->loop = loop;
  nl->readbuf = malloc(UVWS__READ_BUF_SIZE);
  return nl->readbuf ? 0 : UV_ENOMEM;
}

void uvws__netloop_free(uvws__netloop_t *nl) {
  free(nl->readbuf);
  free(nl->tlsbuf);
  uvws__buf_free(&nl->cork);
  uvws__tls_conf_unref(nl->tls);
  nl->readbuf = nl->tlsbuf = NULL;
  nl->tls = NULL;
}

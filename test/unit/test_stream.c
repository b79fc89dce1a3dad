/* The TCP stream (src/net/tcp.c, tls_filter.c) on a real libuv loop in
 * this process: a listener on 127.0.0.1 (port 0), a client made with plain
 * socket()/connect() in the same thread, non-blocking, with a small
 * SO_RCVBUF so the kernel fills fast, and a test upper layer that records
 * what the stream tells it. The loop is driven with UV_RUN_NOWAIT in
 * bounded loops; nothing here waits without a limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "util/wqueue.h"
#include "uvws.h"

/* ---- the fixture ------------------------------------------------------------ */

#define MAX_EVENTS 64

typedef struct {
  mbedtls_ssl_context ssl;
  mbedtls_ssl_config conf;
  int fd;
} tls_client_t;

typedef struct fix_s fix_t;
struct fix_s {
  uv_loop_t loop;
  uvws__net_shared_t sh;
  uvws__metrics_t m;
  uvws__netloop_t nl;
  uvws__listen_t l;
  uvws__tls_rng_t rng;
  int tls;
  int cfd;              /* the client's socket */
  int server_sndbuf;    /* > 0: SO_SNDBUF of the accepted socket (no autotuning) */
  uvws__stream_t *s;    /* the accepted stream, until its on_close */
  unsigned accepts, freed;
  int refuse;
  /* what the upper heard */
  uvws__buf_t in;
  uvws__buf_t got;      /* what the client received */
  tls_client_t cli;     /* the TLS client, if cli_ready */
  int cli_ready;
  unsigned datas, writables, eofs, closes, timeouts;
  char events[MAX_EVENTS + 1]; /* D(ata) W(ritable) E(of) C(lose), in order */
  unsigned nevents;
  /* what the test wants the upper to do */
  void (*on_data_hook)(fix_t *x, char *data, size_t len);
  void (*on_eof_hook)(fix_t *x);
  /* what hooks saw, asserted afterwards (never assert inside uv_run) */
  size_t seen_queued[8];
  unsigned nseen;
  int peek_errno;
  ssize_t peek_r;
  int write_r[8];
};

static void ev(fix_t *x, char c) {
  if (x->nevents < MAX_EVENTS) x->events[x->nevents++] = c;
}

static void up_data(uvws__stream_t *s, char *data, size_t len) {
  fix_t *x = s->upper;
  x->datas++;
  ev(x, 'D');
  if (uvws__buf_append(&x->in, data, len) != 0) abort();
  if (x->on_data_hook) x->on_data_hook(x, data, len);
}
static void up_writable(uvws__stream_t *s) {
  fix_t *x = s->upper;
  x->writables++;
  ev(x, 'W');
}
static void up_eof(uvws__stream_t *s) {
  fix_t *x = s->upper;
  x->eofs++;
  ev(x, 'E');
  if (x->on_eof_hook) x->on_eof_hook(x);
}
static void up_timeout(uvws__stream_t *s) { ((fix_t *)s->upper)->timeouts++; }
static void up_shutdown(uvws__stream_t *s) { (void)s; }
static void up_close(uvws__stream_t *s) {
  fix_t *x = s->upper;
  x->closes++;
  ev(x, 'C');
  x->s = NULL;
}

static const uvws__stream_cb_t up_cb = {up_data, up_writable, up_writable, up_eof, up_timeout, up_shutdown, up_close};

static int server_fd(fix_t *x) {
  uv_os_fd_t fd = -1;
  if (uv_fileno((uv_handle_t *)&((uvws__tcp_t *)x->s)->tcp, &fd) != 0) return -1;
  return fd;
}

static int on_accept(void *ctx, uvws__stream_t *s, int refuse) {
  fix_t *x = ctx;
  x->accepts++;
  x->refuse = refuse;
  x->s = s;
  uvws__stream_set_upper(s, &up_cb, x);
  if (x->server_sndbuf > 0) {
    int fd = server_fd(x);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &x->server_sndbuf, sizeof(int)) != 0) return UV_EIO;
  }
  return 0;
}
static void on_freed(void *ctx) { ((fix_t *)ctx)->freed++; }

static const uvws__net_hooks_t hooks = {on_accept, on_freed};

static fix_t *F;

static int setup_with(void **state, int tls) {
  fix_t *x = calloc(1, sizeof(*x));
  char err[256];
  if (x == NULL) return -1;
  x->cfd = -1;
  x->tls = tls;
  if (uv_loop_init(&x->loop) != 0) return -1;
  if (uvws__net_shared_init(&x->sh, NULL, 0) != 0) return -1;
  if (uvws__netloop_init(&x->nl, &x->loop) != 0) return -1;
  x->nl.shared = &x->sh;
  x->nl.hooks = &hooks;
  x->nl.ctx = x;
  x->nl.m = &x->m;
  x->nl.handshake_timeout_ms = 10000;
  x->nl.close_timeout_ms = 5000;
  if (tls && uvws__tls_conf_self_signed(&x->rng, "localhost", &x->nl.tls, err, sizeof(err)) != 0) {
    fprintf(stderr, "self-signed: %s\n", err);
    return -1;
  }
  if (uvws__net_listen_bind(&x->l, "127.0.0.1", 0, tls, 0, 0, 1) != 0) return -1;
  if (uvws__net_listen_start(&x->nl, &x->l, x) != 0) return -1;
  F = x;
  *state = x;
  return 0;
}

static int setup(void **state) { return setup_with(state, 0); }
static int setup_tls(void **state) { return setup_with(state, 1); }

static int teardown(void **state) {
  fix_t *x = *state;
  int i;
  if (x->cfd >= 0) close(x->cfd);
  x->cfd = -1;
  if (x->s) uvws__stream_close(x->s, NULL);
  uvws__net_listen_close(&x->l, NULL);
  for (i = 0; i < 5000 && uv_loop_alive(&x->loop); i++) {
    uv_run(&x->loop, UV_RUN_NOWAIT);
    if (uv_loop_alive(&x->loop)) uv_sleep(1);
  }
  assert_null(x->nl.conns);
  assert_int_equal(x->nl.nconns, 0);
  assert_int_equal(x->nl.nopen, 0);
  assert_int_equal(atomic_load(&x->sh.open), 0);
  uvws__netloop_free(&x->nl);
  uvws__net_shared_free(&x->sh);
  assert_int_equal(uv_loop_close(&x->loop), 0);
  uvws__tls_rng_free(&x->rng);
  uvws__buf_free(&x->in);
  uvws__buf_free(&x->got);
  if (x->cli_ready) {
    mbedtls_ssl_free(&x->cli.ssl);
    mbedtls_ssl_config_free(&x->cli.conf);
  }
  uvws__wq_cache_drain();
  free(x);
  F = NULL;
  return 0;
}

/* Runs the loop (without blocking) until `cond` holds, for at most ~5 s. */
#define RUN_UNTIL(x, cond)                                \
  do {                                                    \
    int i_;                                               \
    for (i_ = 0; i_ < 5000; i_++) {                       \
      if (cond) break;                                    \
      uv_run(&(x)->loop, UV_RUN_NOWAIT);                  \
      uv_sleep(1);                                        \
    }                                                     \
  } while (0)

/* Runs the loop for about `ms` milliseconds, whatever happens. */
static void run_for(fix_t *x, int ms) {
  int i;
  for (i = 0; i < ms; i++) {
    uv_run(&x->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  uv_run(&x->loop, UV_RUN_NOWAIT);
}

/* Connects the client (SO_RCVBUF before connect, so the window stays
 * small) and runs the loop until the server accepted it. */
static void connect_client(fix_t *x, int rcvbuf) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0) assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)x->l.port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  x->cfd = fd;
  RUN_UNTIL(x, x->accepts == 1);
  assert_int_equal(x->accepts, 1);
  assert_non_null(x->s);
  assert_int_equal(x->refuse, 0);
}

static void client_send(fix_t *x, const void *p, size_t n) {
  assert_int_equal(send(x->cfd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads what the client has (never blocks). Returns 1 at EOF, else 0. */
static int client_read(fix_t *x, uvws__buf_t *got) {
  char buf[65536];
  for (;;) {
    ssize_t r = recv(x->cfd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
      if (uvws__buf_append(got, buf, (size_t)r) != 0) abort();
      continue;
    }
    if (r == 0) return 1;
    return 0; /* EAGAIN (or an error the caller will see as missing bytes) */
  }
}

static void pattern(char *p, size_t n, size_t start) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (char)(((start + i) * 31u + 7u) % 251u);
}

static int pattern_ok(const char *p, size_t n, size_t start) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != (char)(((start + i) * 31u + 7u) % 251u)) return 0;
  return 1;
}

/* Writes `n` pattern bytes (continuing at `start`) in one stream write. */
static int write_pattern(fix_t *x, size_t n, size_t start) {
  char *p = malloc(n);
  uv_buf_t b;
  int r;
  assert_non_null(p);
  pattern(p, n, start);
  b = uv_buf_init(p, (unsigned)n);
  r = uvws__stream_write(x->s, &b, 1);
  free(p);
  return r;
}

/* Linux's struct tcp_info goes on past glibc's (which uv.h includes, so
 * linux/tcp.h cannot be): the fields up to tcpi_data_segs_out (4.6). */
typedef struct {
  struct tcp_info base;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
} tcp_info_ext_t;
_Static_assert(offsetof(tcp_info_ext_t, pacing_rate) == 104, "Linux tcp_info layout");

/* Segments with data the server's socket sent so far. */
static uint32_t data_segs_out(fix_t *x) {
  tcp_info_ext_t ti;
  socklen_t len = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  assert_int_equal(getsockopt(server_fd(x), IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  assert_true(len >= offsetof(tcp_info_ext_t, data_segs_out) + sizeof(ti.data_segs_out));
  return ti.data_segs_out;
}

/* ---- the cork ----------------------------------------------------------------- */

static const char *const small[4] = {"one", "two", "three", "four"};

static void cork_hook(fix_t *x, char *data, size_t len) {
  unsigned i;
  char c;
  (void)data;
  (void)len;
  for (i = 0; i < 4; i++) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)small[i], (unsigned)strlen(small[i]));
    x->write_r[i] = uvws__stream_write(x->s, &b, 1);
    x->seen_queued[x->nseen++] = uvws__stream_queued(x->s);
  }
  /* Still inside on_data: nothing is on the socket yet. */
  x->peek_r = recv(x->cfd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  x->peek_errno = errno;
}

static void test_cork_small_writes_in_on_data_leave_in_one_write(void **state) {
  fix_t *x = *state;
  uint32_t segs0;
  unsigned i;

  connect_client(x, 0);
  x->on_data_hook = cork_hook;
  segs0 = data_segs_out(x);
  client_send(x, "go", 2);
  RUN_UNTIL(x, x->datas == 1);
  assert_int_equal(x->datas, 1);
  for (i = 0; i < 4; i++) assert_int_equal(x->write_r[i], 0);
  /* queued() counts the cork: 3, 6, 11, 15 */
  assert_int_equal(x->nseen, 4);
  assert_int_equal(x->seen_queued[0], 3);
  assert_int_equal(x->seen_queued[1], 6);
  assert_int_equal(x->seen_queued[2], 11);
  assert_int_equal(x->seen_queued[3], 15);
  assert_int_equal(x->peek_r, -1);
  assert_true(x->peek_errno == EAGAIN || x->peek_errno == EWOULDBLOCK);
  /* After on_data the batch left: nothing queued, one data segment. */
  assert_int_equal(uvws__stream_queued(x->s), 0);
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= 15));
  assert_int_equal(x->got.len, 15);
  assert_memory_equal(uvws__buf_data(&x->got), "onetwothreefour", 15);
  assert_int_equal(data_segs_out(x) - segs0, 1);
}

/* The contrast: outside a batch nothing corks, each write leaves at once
 * (which is also what makes the segment count above meaningful). */
static void test_writes_outside_a_batch_leave_at_once(void **state) {
  fix_t *x = *state;
  uint32_t segs0;
  unsigned i;
  char c;

  connect_client(x, 0);
  segs0 = data_segs_out(x);
  for (i = 0; i < 4; i++) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)small[i], (unsigned)strlen(small[i]));
    assert_int_equal(uvws__stream_write(x->s, &b, 1), 0);
    assert_int_equal(uvws__stream_queued(x->s), 0); /* taken by the kernel */
  }
  assert_int_equal(recv(x->cfd, &c, 1, MSG_PEEK | MSG_DONTWAIT), 1);
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= 15));
  assert_int_equal(x->got.len, 15);
  assert_memory_equal(uvws__buf_data(&x->got), "onetwothreefour", 15);
  assert_true(data_segs_out(x) - segs0 >= 2);
}

/* ---- uv_try_write, then the queue ------------------------------------------------ */

static void test_partial_try_write_queues_the_rest_in_order(void **state) {
  fix_t *x = *state;
  const size_t first = 200 * 1024, second = 1000;
  size_t q1;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  assert_int_equal(write_pattern(x, first, 0), 0);
  q1 = uvws__stream_queued(x->s);
  assert_true(q1 > 0);     /* the kernel did not take it all */
  assert_true(q1 < first); /* but it took some: a partial uv_try_write */
  /* Behind the queue, even though it is small: copied, never reordered. */
  assert_int_equal(write_pattern(x, second, first), 0);
  assert_int_equal(uvws__stream_queued(x->s), q1 + second);
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= first + second));
  assert_int_equal(x->got.len, first + second);
  assert_true(pattern_ok(uvws__buf_data(&x->got), x->got.len, 0));
  RUN_UNTIL(x, uvws__stream_queued(x->s) == 0);
  assert_int_equal(uvws__stream_queued(x->s), 0);
}

/* ---- the water marks --------------------------------------------------------------- */

/* Writes 64 KiB pieces until the queue is above the high mark; returns
 * the bytes written. */
static size_t fill_above_high(fix_t *x) {
  size_t total = 0;
  unsigned i;
  for (i = 0; i < 128 && uvws__stream_queued(x->s) <= UVWS__QUEUE_HIGH; i++) {
    assert_int_equal(write_pattern(x, 64 * 1024, total), 0);
    total += 64 * 1024;
  }
  assert_true(uvws__stream_queued(x->s) > UVWS__QUEUE_HIGH);
  return total;
}

static void test_high_mark_pauses_reading_low_mark_resumes_it(void **state) {
  fix_t *x = *state;
  size_t total;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  total = fill_above_high(x);
  assert_int_equal(UVWS__GET(x->m.backpressure_pauses), 1);
  /* The client sends while it reads nothing: the stream does not read. */
  client_send(x, "after", 5);
  run_for(x, 100);
  assert_int_equal(x->datas, 0);
  assert_int_equal(x->writables, 0);
  assert_true(uvws__stream_queued(x->s) > UVWS__QUEUE_HIGH);
  /* The client reads everything: on_writable once, then the input. */
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= total && x->datas >= 1));
  assert_int_equal(x->got.len, total);
  assert_true(pattern_ok(uvws__buf_data(&x->got), x->got.len, 0));
  assert_int_equal(x->datas, 1);
  assert_int_equal(x->in.len, 5);
  assert_memory_equal(uvws__buf_data(&x->in), "after", 5);
  run_for(x, 20);
  assert_int_equal(x->writables, 1);
  assert_int_equal(x->nevents, 2);
  assert_memory_equal(x->events, "WD", 2);
  assert_int_equal(UVWS__GET(x->m.backpressure_pauses), 1);
}

/* ---- want_writable ------------------------------------------------------------------- */

static void test_want_writable_is_paid_at_the_low_mark(void **state) {
  fix_t *x = *state;
  const size_t total = 128 * 1024;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  assert_int_equal(write_pattern(x, total, 0), 0);
  assert_true(uvws__stream_queued(x->s) > 0);
  assert_true(uvws__stream_queued(x->s) <= UVWS__QUEUE_LOW); /* nothing owed by the queue itself */
  x->s->ops->want_writable(x->s); /* e.g. a send was refused */
  run_for(x, 50);
  assert_int_equal(x->writables, 0); /* the peer read nothing: nothing written */
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= total && x->writables >= 1));
  assert_int_equal(x->got.len, total);
  assert_true(pattern_ok(uvws__buf_data(&x->got), x->got.len, 0));
  run_for(x, 20);
  assert_int_equal(x->writables, 1);
  assert_int_equal(uvws__stream_queued(x->s), 0);
}

/* The contrast: the same queue below the low mark, nobody asked. */
static void test_no_on_writable_below_the_low_mark_unasked(void **state) {
  fix_t *x = *state;
  const size_t total = 128 * 1024;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  assert_int_equal(write_pattern(x, total, 0), 0);
  assert_true(uvws__stream_queued(x->s) > 0);
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= total));
  assert_int_equal(x->got.len, total);
  run_for(x, 20);
  assert_int_equal(x->writables, 0);
}

/* A queue that went above the low mark (but not the high one) is owed
 * on_writable by itself, once. */
static void test_queue_past_the_low_mark_owes_on_writable_once(void **state) {
  fix_t *x = *state;
  const size_t total = UVWS__QUEUE_LOW + 128 * 1024;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  assert_int_equal(write_pattern(x, total, 0), 0);
  assert_true(uvws__stream_queued(x->s) > UVWS__QUEUE_LOW);
  assert_true(uvws__stream_queued(x->s) <= UVWS__QUEUE_HIGH);
  RUN_UNTIL(x, (client_read(x, &x->got), x->got.len >= total && x->writables >= 1));
  assert_int_equal(x->got.len, total);
  run_for(x, 20);
  assert_int_equal(x->writables, 1);
  assert_int_equal(UVWS__GET(x->m.backpressure_pauses), 0);
}

/* ---- half-close and finish -------------------------------------------------------------- */

#define REPLY_LEN (300u * 1024u)

static void reply_and_finish(fix_t *x) {
  x->write_r[0] = write_pattern(x, REPLY_LEN, 0);
  x->seen_queued[x->nseen++] = uvws__stream_queued(x->s);
  uvws__stream_finish(x->s);
}

static void test_half_close_reply_then_fin(void **state) {
  fix_t *x = *state;
  int eof = 0;

  x->server_sndbuf = 16384;
  connect_client(x, 4096);
  x->on_eof_hook = reply_and_finish;
  client_send(x, "request", 7);
  assert_int_equal(shutdown(x->cfd, SHUT_WR), 0);
  RUN_UNTIL(x, x->eofs == 1);
  assert_int_equal(x->eofs, 1);
  assert_int_equal(x->datas, 1);
  assert_memory_equal(uvws__buf_data(&x->in), "request", 7);
  assert_int_equal(x->write_r[0], 0);
  assert_true(x->seen_queued[0] > 0); /* the reply was still queued at finish */
  assert_int_equal(x->closes, 0);
  RUN_UNTIL(x, (eof = client_read(x, &x->got)) == 1);
  assert_int_equal(eof, 1); /* FIN, after ... */
  assert_int_equal(x->got.len, REPLY_LEN); /* ... the whole reply */
  assert_true(pattern_ok(uvws__buf_data(&x->got), x->got.len, 0));
  /* Both sides sent FIN: the stream closes by itself. */
  RUN_UNTIL(x, x->closes == 1);
  run_for(x, 10);
  assert_int_equal(x->closes, 1);
  assert_int_equal(x->freed, 1);
  assert_int_equal(x->nevents, 3);
  assert_memory_equal(x->events, "DEC", 3);
}

static void test_finish_discards_input_and_closes_at_peer_eof(void **state) {
  fix_t *x = *state;
  int eof = 0;

  connect_client(x, 0);
  uvws__stream_finish(x->s);
  assert_int_equal(x->s->finishing, 1);
  RUN_UNTIL(x, (eof = client_read(x, &x->got)) == 1);
  assert_int_equal(eof, 1);
  assert_int_equal(x->got.len, 0);
  /* Writes after finish are refused once FIN is out. */
  {
    uv_buf_t b = uv_buf_init((char *)"late", 4);
    assert_int_equal(uvws__stream_write(x->s, &b, 1), UVWS_ECLOSED);
  }
  client_send(x, "ignored", 7);
  run_for(x, 50);
  assert_int_equal(x->datas, 0);
  assert_int_equal(x->closes, 0);
  assert_int_equal(shutdown(x->cfd, SHUT_WR), 0);
  RUN_UNTIL(x, x->closes == 1);
  run_for(x, 10);
  assert_int_equal(x->closes, 1);
  assert_int_equal(x->eofs, 0); /* the EOF was the one finish waited for */
  assert_int_equal(x->freed, 1);
}

/* finish from inside on_data: the reply is still in the cork; it leaves
 * at the uncork, and FIN after it. */
static void reply_in_batch_and_finish(fix_t *x, char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)"answer", 6);
  (void)data;
  (void)len;
  x->write_r[0] = uvws__stream_write(x->s, &b, 1);
  uvws__stream_finish(x->s);
  x->seen_queued[x->nseen++] = uvws__stream_queued(x->s);
}

static void test_finish_in_on_data_sends_the_corked_reply_then_fin(void **state) {
  fix_t *x = *state;
  int eof = 0;

  connect_client(x, 0);
  x->on_data_hook = reply_in_batch_and_finish;
  client_send(x, "q", 1);
  RUN_UNTIL(x, (eof = client_read(x, &x->got)) == 1);
  assert_int_equal(x->write_r[0], 0);
  assert_int_equal(x->seen_queued[0], 6); /* still corked when finish was called */
  assert_int_equal(eof, 1);
  assert_int_equal(x->got.len, 6);
  assert_memory_equal(uvws__buf_data(&x->got), "answer", 6);
  assert_int_equal(shutdown(x->cfd, SHUT_WR), 0);
  RUN_UNTIL(x, x->closes == 1);
  assert_int_equal(x->closes, 1);
}

/* finish right after a shared write (one published frame, queued by
 * reference for the flusher): once the flusher has written the queue,
 * FIN must follow (stream.h: "once the queue is written ... FIN is sent").
 * The runtime calls uvws__net_flush after each iteration's I/O (its
 * uv_check); so does this test. */
static void test_finish_after_a_shared_write_sends_fin_once_flushed(void **state) {
  fix_t *x = *state;
  uvws__sbuf_t *b;
  int eof = 0, i;

  connect_client(x, 0);
  b = uvws__sbuf_new(5);
  assert_non_null(b);
  memcpy(b->data, "share", 5);
  b->len = 5;
  assert_int_equal(x->s->ops->write_shared(x->s, b, 0, 5), 0);
  uvws__sbuf_unref(b); /* the queue holds its own reference */
  assert_int_equal(uvws__stream_queued(x->s), 5);
  uvws__stream_finish(x->s); /* the queue is not written yet: FIN waits */
  for (i = 0; i < 2000 && eof == 0; i++) {
    uv_run(&x->loop, UV_RUN_NOWAIT);
    uvws__net_flush(&x->nl);
    eof = client_read(x, &x->got);
    if (!eof) uv_sleep(1);
  }
  assert_int_equal(x->got.len, 5);
  assert_memory_equal(uvws__buf_data(&x->got), "share", 5);
  assert_int_equal(uvws__stream_queued(x->s), 0);
  assert_int_equal(eof, 1); /* FIN after the flushed queue */
}

/* ---- TLS --------------------------------------------------------------------------------- */

static int cli_send(void *ctx, const unsigned char *p, size_t n) {
  tls_client_t *c = ctx;
  ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
  if (r < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
  return (int)r;
}

static int cli_recv(void *ctx, unsigned char *p, size_t n) {
  tls_client_t *c = ctx;
  ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);
  if (r < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
  return (int)r;
}

static void tls_client_init(fix_t *x, tls_client_t *c) {
  mbedtls_ssl_init(&c->ssl);
  mbedtls_ssl_config_init(&c->conf);
  x->cli_ready = 1; /* teardown frees it */
  c->fd = x->cfd;
  assert_int_equal(mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                               MBEDTLS_SSL_PRESET_DEFAULT),
                   0);
  mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE); /* self-signed */
  mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &x->rng.drbg);
  assert_int_equal(mbedtls_ssl_setup(&c->ssl, &c->conf), 0);
  assert_int_equal(mbedtls_ssl_set_hostname(&c->ssl, "localhost"), 0);
  mbedtls_ssl_set_bio(&c->ssl, c, cli_send, cli_recv, NULL);
}

static int want(int r) { return r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE; }

static void tls_handshake(fix_t *x, tls_client_t *c) {
  int r = MBEDTLS_ERR_SSL_WANT_READ;
  RUN_UNTIL(x, !want(r = mbedtls_ssl_handshake(&c->ssl)));
  assert_int_equal(r, 0);
}

/* Reads plaintext until `n` bytes came; returns 1 then, or the first
 * code other than "want more". */
static int tls_read(fix_t *x, tls_client_t *c, uvws__buf_t *got, size_t n) {
  unsigned char buf[16384];
  int i, r = 0;
  for (i = 0; i < 10000 && got->len < n; i++) {
    r = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf));
    if (r > 0) {
      if (uvws__buf_append(got, buf, (size_t)r) != 0) abort();
      continue;
    }
    if (!want(r)) return r;
    uv_run(&x->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  return got->len >= n ? 1 : r;
}

static void test_tls_write_before_handshake_is_refused(void **state) {
  fix_t *x = *state;
  uv_buf_t b = uv_buf_init((char *)"early", 5);
  tls_client_t *c = &x->cli;
  char ch;

  connect_client(x, 0);
  assert_int_equal(x->s->secure, 1);
  assert_true(uvws__net_tls_pending(x->s));
  assert_int_equal(uvws__stream_write(x->s, &b, 1), UVWS_ESTATE);
  assert_int_equal(uvws__stream_queued(x->s), 0);
  run_for(x, 10);
  assert_int_equal(recv(x->cfd, &ch, 1, MSG_PEEK | MSG_DONTWAIT), -1); /* nothing went out */
  /* The refusal did not harm the connection: the handshake still works. */
  tls_client_init(x, c);
  tls_handshake(x, c);
  RUN_UNTIL(x, !uvws__net_tls_pending(x->s));
  assert_false(uvws__net_tls_pending(x->s));
  assert_int_equal(x->closes, 0);
}

#define TLS_BIG (100u * 1024u)

static void tls_echo_hook(fix_t *x, char *data, size_t len) {
  (void)data;
  (void)len;
  if (x->datas != 1) return;
  {
    uv_buf_t b = uv_buf_init((char *)"world", 5);
    x->write_r[0] = uvws__stream_write(x->s, &b, 1);
  }
  x->write_r[1] = write_pattern(x, TLS_BIG, 5); /* several records */
}

static void test_tls_plaintext_both_ways(void **state) {
  fix_t *x = *state;
  tls_client_t *c = &x->cli;
  int r;

  connect_client(x, 0);
  x->on_data_hook = tls_echo_hook;
  tls_client_init(x, c);
  tls_handshake(x, c);
  r = MBEDTLS_ERR_SSL_WANT_WRITE;
  RUN_UNTIL(x, !want(r = mbedtls_ssl_write(&c->ssl, (const unsigned char *)"hello", 5)));
  assert_int_equal(r, 5);
  RUN_UNTIL(x, x->datas >= 1);
  assert_int_equal(x->in.len, 5);
  assert_memory_equal(uvws__buf_data(&x->in), "hello", 5);
  assert_int_equal(x->write_r[0], 0);
  assert_int_equal(x->write_r[1], 0);
  assert_int_equal(tls_read(x, c, &x->got, 5 + TLS_BIG), 1);
  assert_int_equal(x->got.len, 5 + TLS_BIG);
  assert_memory_equal(uvws__buf_data(&x->got), "world", 5);
  assert_true(pattern_ok(uvws__buf_data(&x->got) + 5, TLS_BIG, 5));
  assert_int_equal(x->datas, 1);
}

static void test_tls_finish_sends_close_notify_and_refuses_writes(void **state) {
  fix_t *x = *state;
  uv_buf_t b = uv_buf_init((char *)"bye", 3);
  unsigned char buf[64];
  tls_client_t *c = &x->cli;
  int r;

  connect_client(x, 0);
  tls_client_init(x, c);
  tls_handshake(x, c);
  RUN_UNTIL(x, !uvws__net_tls_pending(x->s));
  assert_int_equal(uvws__stream_write(x->s, &b, 1), 0);
  uvws__stream_finish(x->s);
  /* close_notify is queued: nothing may follow it. */
  b = uv_buf_init((char *)"late", 4);
  assert_int_equal(uvws__stream_write(x->s, &b, 1), UVWS_ECLOSED);
  assert_int_equal(tls_read(x, c, &x->got, 3), 1);
  assert_int_equal(x->got.len, 3);
  assert_memory_equal(uvws__buf_data(&x->got), "bye", 3);
  r = MBEDTLS_ERR_SSL_WANT_READ;
  RUN_UNTIL(x, !want(r = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf))));
  assert_int_equal(r, MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
  assert_int_equal(x->closes, 0); /* waiting for our EOF */
  assert_int_equal(shutdown(x->cfd, SHUT_WR), 0);
  RUN_UNTIL(x, x->closes == 1);
  assert_int_equal(x->closes, 1);
  assert_int_equal(x->datas, 0);
}

/* The peer's close_notify is as good as EOF: the stream answers with its
 * own and finishes; the upper hears no data. */
static void test_tls_peer_close_notify_finishes(void **state) {
  fix_t *x = *state;
  unsigned char buf[64];
  tls_client_t *c = &x->cli;
  int r;

  connect_client(x, 0);
  tls_client_init(x, c);
  tls_handshake(x, c);
  r = MBEDTLS_ERR_SSL_WANT_WRITE;
  RUN_UNTIL(x, !want(r = mbedtls_ssl_close_notify(&c->ssl)));
  assert_int_equal(r, 0);
  RUN_UNTIL(x, x->s == NULL || x->s->finishing);
  assert_non_null(x->s);
  assert_int_equal(x->s->finishing, 1);
  r = MBEDTLS_ERR_SSL_WANT_READ;
  RUN_UNTIL(x, !want(r = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf))));
  assert_int_equal(r, MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
  assert_int_equal(shutdown(x->cfd, SHUT_WR), 0);
  RUN_UNTIL(x, x->closes == 1);
  assert_int_equal(x->closes, 1);
  assert_int_equal(x->datas, 0);
  assert_int_equal(x->eofs, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cork_small_writes_in_on_data_leave_in_one_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writes_outside_a_batch_leave_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_partial_try_write_queues_the_rest_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_high_mark_pauses_reading_low_mark_resumes_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_want_writable_is_paid_at_the_low_mark, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_on_writable_below_the_low_mark_unasked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_past_the_low_mark_owes_on_writable_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_half_close_reply_then_fin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_finish_discards_input_and_closes_at_peer_eof, setup, teardown),
      cmocka_unit_test_setup_teardown(test_finish_in_on_data_sends_the_corked_reply_then_fin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_finish_after_a_shared_write_sends_fin_once_flushed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_write_before_handshake_is_refused, setup_tls, teardown),
      cmocka_unit_test_setup_teardown(test_tls_plaintext_both_ways, setup_tls, teardown),
      cmocka_unit_test_setup_teardown(test_tls_finish_sends_close_notify_and_refuses_writes, setup_tls, teardown),
      cmocka_unit_test_setup_teardown(test_tls_peer_close_notify_finishes, setup_tls, teardown),
  };
  uvws_log_set_level(UVWS_LOG_ERROR);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

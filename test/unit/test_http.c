/* The HTTP session (src/http/) on the fake stream of test/common: what it
 * writes is checked byte for byte, the peer's reading is the test's choice
 * (peer_reads), and the runtime's callbacks (route, upgrade, metrics,
 * state) are stubs recording their calls, as in test/fuzz/fuzz_http.c. The
 * web root is a temporary folder with a small file, a big one and a
 * folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_stream.h"
#include "http/http.h"
#include "util/wqueue.h"

/* ---- the environment --------------------------------------------------------- */

#define FILE_BODY "hello, file\n"
#define FILE_LEN (sizeof(FILE_BODY) - 1)
#define BIG_LEN (1024u * 1024u + 123u)
#define METRICS_LEN 4096u

static uv_loop_t loop;
static uvws_options_t opts;
static uvws__http_env_t env;
static uvws__net_shared_t net;
static uvws__metrics_t m;
static uvws__route_t route;
static uvws__mount_t root;
static char webdir[] = "/tmp/uvws-unit-http-XXXXXX";
static char webreal[PATH_MAX];
static char *big; /* big.bin's content */

/* what the stubs saw */
static unsigned metrics_calls, upgrades, ws_closes;
static const uvws__route_t *up_route;
static uvws__buf_t up_rest, up_out, up_head, up_target;
static size_t up_nheaders;
static void *up_data;
static int upgrade_fails;

/* the route's on_upgrade: what it decides, and what it read */
static int decide_status;
static unsigned decides, releases;
static char decided_host[16], decided_target[16], decided_peer[64];
static int decided_secure, add_bad_name, add_bad_value;

static void release_token(void *data) {
  assert_ptr_equal(data, &decides);
  releases++;
}

static int on_upgrade(uvws_upgrade_t *up) {
  size_t n;
  const char *v = uvws_upgrade_header(up, "HOST", &n);
  decides++;
  snprintf(decided_host, sizeof(decided_host), "%.*s", v ? (int)n : 0, v ? v : "");
  v = uvws_upgrade_target(up, &n);
  snprintf(decided_target, sizeof(decided_target), "%.*s", (int)n, v);
  snprintf(decided_peer, sizeof(decided_peer), "%s", uvws_upgrade_peer(up));
  decided_secure = uvws_upgrade_secure(up);
  add_bad_name = uvws_upgrade_add_header(up, "Bad Name", "x");
  add_bad_value = uvws_upgrade_add_header(up, "X-Split", "a\r\nInjected: yes");
  if (uvws_upgrade_add_header(up, decide_status ? "Retry-After" : "X-Decided", "7") != 0) return 599;
  if (decide_status == 0) uvws_upgrade_set_data(up, &decides, release_token);
  return decide_status;
}
static char up_header0[64];

static fake_stream_t f;
static int opened;

static int out_has(const char *needle) {
  size_t n = strlen(needle), i;
  for (i = 0; i + n <= f.out.len; i++)
    if (memcmp(uvws__buf_data(&f.out) + i, needle, n) == 0) return 1;
  return 0;
}


static const uvws__route_t *stub_route(void *ctx, const char *path, size_t len) {
  (void)ctx;
  return (len == 5 && memcmp(path, "/echo", 5) == 0) ? &route : NULL;
}

static void ws_close(uvws__stream_t *s) {
  (void)s;
  ws_closes++;
}
static const uvws__stream_cb_t ws_cb = {NULL, NULL, NULL, NULL, NULL, ws_close};

static void copy_into(uvws__buf_t *b, const void *p, size_t n) {
  b->off = b->len = 0;
  if (n && uvws__buf_append(b, p, n) != 0) abort();
}

static int stub_upgrade(void *ctx, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest, size_t rest_len) {
  fake_stream_t *fs = (fake_stream_t *)s;
  (void)ctx;
  upgrades++;
  up_route = o->route;
  up_data = o->data;
  copy_into(&up_rest, rest, rest_len);
  copy_into(&up_out, uvws__buf_data(&fs->out), fs->out.len); /* what was written before the hand-off */
  copy_into(&up_head, o->response_head, strlen(o->response_head));
  copy_into(&up_target, o->target, o->target_len);
  up_nheaders = o->nheaders;
  if (o->nheaders)
    snprintf(up_header0, sizeof(up_header0), "%.*s: %.*s", (int)o->headers[0].name_len, o->headers[0].name,
             (int)o->headers[0].value_len, o->headers[0].value);
  if (upgrade_fails) {
    uvws__stream_close(s, "stub: out of memory");
    return UV_ENOMEM;
  }
  uvws__stream_set_upper(s, &ws_cb, NULL);
  return 0;
}

/* METRICS_LEN bytes: "seq NNNNNN\n", then padding; each call the next number. */
static void stub_metrics(void *ctx, uvws__buf_t *out) {
  char line[16];
  (void)ctx;
  snprintf(line, sizeof(line), "seq %06u\n", metrics_calls++);
  if (uvws__buf_reserve(out, METRICS_LEN) != 0) return;
  memset(uvws__buf_tail(out), '#', METRICS_LEN);
  memcpy(uvws__buf_tail(out), line, 11);
  uvws__buf_tail(out)[METRICS_LEN - 1] = '\n';
  out->len += METRICS_LEN;
}

/* The route table /routes.json lists (set by each test). */
static uvws__route_t table[4];
static size_t table_n;

static size_t stub_routes(void *ctx, const uvws__route_t **t) {
  (void)ctx;
  *t = table;
  return table_n;
}

static void table_set(size_t i, const char *path, size_t len) {
  table[i].path = (char *)path;
  table[i].path_len = len;
}

static int stub_state(void *ctx) {
  (void)ctx;
  return UVWS__HTTP_SERVING;
}

static void big_byte_fill(char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (char)((i * 131u + 17u) % 253u);
}

static void write_file(const char *name, const char *data, size_t len) {
  char path[PATH_MAX];
  FILE *fp;
  snprintf(path, sizeof(path), "%s/%s", webdir, name);
  fp = fopen(path, "wb");
  if (fp == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) abort();
}

static void remove_file(const char *name) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/%s", webdir, name);
  unlink(path);
}

static int group_setup(void **state) {
  char path[PATH_MAX];
  (void)state;
  if (uv_loop_init(&loop) != 0) return -1;
  uvws_options_init(&opts);
  if (mkdtemp(webdir) == NULL) return -1;
  if (realpath(webdir, webreal) == NULL) return -1;
  write_file("file.txt", FILE_BODY, FILE_LEN);
  big = malloc(BIG_LEN);
  if (big == NULL) return -1;
  big_byte_fill(big, BIG_LEN);
  write_file("big.bin", big, BIG_LEN);
  snprintf(path, sizeof(path), "%s/folder", webdir);
  if (mkdir(path, 0755) != 0) return -1;
  write_file("folder/index.html", "<p>folder</p>\n", 14);
  root.prefix = (char *)"";
  root.prefix_len = 0;
  root.dir = webdir;
  root.real = webreal;
  root.real_len = strlen(webreal);
  route.path = (char *)"/echo";
  route.path_len = 5;
  env.opts = &opts;
  env.pmd = NULL;
  env.mounts = &root;
  env.nmounts = 1;
  env.net = &net;
  env.m = &m;
  env.route = stub_route;
  env.upgrade = stub_upgrade;
  env.metrics = stub_metrics;
  env.routes = stub_routes;
  env.state = stub_state;
  uvws_log_set_level(UVWS_LOG_ERROR);
  return 0;
}

static int group_teardown(void **state) {
  char path[PATH_MAX];
  (void)state;
  remove_file("folder/index.html");
  remove_file("file.txt");
  remove_file("big.bin");
  snprintf(path, sizeof(path), "%s/folder", webdir);
  rmdir(path);
  rmdir(webdir);
  free(big);
  uvws__http_env_free(&env);
  uvws__buf_free(&up_rest);
  uvws__buf_free(&up_out);
  uvws__buf_free(&up_head);
  uvws__buf_free(&up_target);
  uvws__wq_cache_drain();
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static int setup(void **state) {
  (void)state;
  fake_stream_init(&f, &loop);
  opened = 0;
  metrics_calls = upgrades = ws_closes = 0;
  up_route = NULL;
  up_nheaders = 0;
  up_data = NULL;
  upgrade_fails = 0;
  route.h.on_upgrade = NULL;
  decide_status = 0;
  decides = releases = 0;
  table_n = 0;
  opts.metrics = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (opened) fake_stream_free(&f);
  else uvws__buf_free(&f.out);
  opened = 0;
  /* every session was freed (at the upgrade or at on_close) */
  return UVWS__GET(m.conns_http) == 0 ? 0 : -1;
}

static void open_session(int refuse) {
  assert_int_equal(uvws__http_open(&env, &f.s, refuse), 0);
  opened = 1;
}

static void feed(const char *s) { fake_stream_feed(&f, s, strlen(s)); }

/* ---- reading what the session wrote ------------------------------------------------ */

typedef struct {
  int status;
  const char *head; /* through the blank line */
  size_t head_len;
  const char *body;
  size_t body_len;
} resp_t;

static const char *find(const char *p, size_t n, const char *needle) {
  size_t k = strlen(needle), i;
  for (i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0) return p + i;
  return NULL;
}

/* The value of header `name` (exact case, as uvws writes them), or NULL. */
static const char *header(const resp_t *r, const char *name, size_t *vlen) {
  char key[64];
  const char *p, *e;
  snprintf(key, sizeof(key), "\r\n%s: ", name);
  p = find(r->head, r->head_len, key);
  if (p == NULL) return NULL;
  p += strlen(key);
  e = find(p, (size_t)(r->head + r->head_len - p), "\r\n");
  *vlen = (size_t)(e - p);
  return p;
}

static int header_is(const resp_t *r, const char *name, const char *value) {
  size_t n = 0;
  const char *v = header(r, name, &n);
  return v && n == strlen(value) && memcmp(v, value, n) == 0;
}

/* Parses the response at *off of f.out; 1 and advances *off, or 0 if
 * there is none (yet). `head_only`: a HEAD answer has no body. */
static int next_response(size_t *off, resp_t *r, int head_only) {
  const char *start = uvws__buf_data(&f.out) + *off, *end, *cl;
  size_t avail = f.out.len - *off, hl, clen = 0, vlen = 0;
  if (avail < 12) return 0;
  if (memcmp(start, "HTTP/1.1 ", 9) != 0) fail_msg("not a response at offset %zu", *off);
  end = find(start, avail, "\r\n\r\n");
  if (end == NULL) return 0;
  hl = (size_t)(end + 4 - start);
  r->status = atoi(start + 9);
  r->head = start;
  r->head_len = hl;
  cl = header(r, "Content-Length", &vlen);
  if (cl && !head_only && r->status != 304) clen = (size_t)strtoull(cl, NULL, 10);
  if (hl + clen > avail) return 0;
  r->body = start + hl;
  r->body_len = clen;
  *off += hl + clen;
  return 1;
}

static void expect_body(const resp_t *r, const char *body) {
  assert_int_equal(r->body_len, strlen(body));
  assert_memory_equal(r->body, body, r->body_len);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: h\r\n\r\n"

/* ---- tests --------------------------------------------------------------------------- */

static void test_get_file_200_with_exact_content_length(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed(GET("/file.txt"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.head, "HTTP/1.1 200 OK\r\n", 17);
  assert_true(header_is(&r, "Content-Length", "12"));
  assert_true(header_is(&r, "Connection", "keep-alive"));
  assert_non_null(find(r.head, r.head_len, "\r\nLast-Modified: "));
  expect_body(&r, FILE_BODY);
  assert_int_equal(off, f.out.len); /* nothing else */
  assert_int_equal(f.finished, 0);
  assert_int_equal(f.paused, 0);
}

static void test_head_file_has_length_but_no_body(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed("HEAD /file.txt HTTP/1.1\r\nHost: h\r\n\r\n");
  assert_true(next_response(&off, &r, 1));
  assert_int_equal(r.status, 200);
  assert_true(header_is(&r, "Content-Length", "12"));
  assert_int_equal(off, f.out.len);
}

static void test_request_split_into_one_byte_reads(void **state) {
  const char *req = GET("/file.txt");
  size_t off = 0, i;
  resp_t r;
  (void)state;
  open_session(0);
  for (i = 0; i < strlen(req); i++) {
    assert_int_equal(f.out.len, 0); /* nothing until the request is complete */
    fake_stream_feed(&f, req + i, 1);
  }
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, FILE_BODY);
  assert_int_equal(off, f.out.len);
}

static void test_three_pipelined_requests_three_responses_in_order(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed(GET("/file.txt") GET("/missing") GET("/healthz"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, FILE_BODY);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 404);
  expect_body(&r, "404 Not Found\n");
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, "ok\n");
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 0);
}

/* Drives the session as the transport would: a deferred turn first (the
 * next loop iteration), else the peer reads what was answered. 0 when
 * there is nothing left to drive. */
static int drive(void) {
  if (f.deferred) {
    fake_stream_run_deferred(&f);
    return 1;
  }
  if (f.writable_owed || f.unread) {
    fake_stream_peer_read(&f);
    return 1;
  }
  return 0;
}

/* Counts metrics responses from *off, checking their order; returns how
 * many were complete. Stops before a 101. */
static unsigned take_metrics(size_t *off, unsigned *next_seq, size_t *one) {
  unsigned n = 0;
  resp_t r;
  size_t at = *off;
  while (next_response(off, &r, 0)) {
    char want[16];
    if (r.status == 101) { /* an upgrade behind them: not ours to count */
      *off = at;
      break;
    }
    at = *off;
    if (r.status != 200 || r.body_len != METRICS_LEN) fail_msg("response %u: status %d", *next_seq, r.status);
    snprintf(want, sizeof(want), "seq %06u\n", *next_seq);
    if (memcmp(r.body, want, 11) != 0) fail_msg("response %u out of order: %.10s", *next_seq, r.body);
    if (*one == 0) *one = r.head_len + r.body_len;
    (*next_seq)++;
    n++;
  }
  return n;
}

#define PIPELINED 2000

static void test_slow_reader_pipelining_is_paced_by_the_low_mark(void **state) {
  static const char req[] = GET("/metrics");
  size_t rl = sizeof(req) - 1, off = 0, one = 0;
  char *all = malloc(PIPELINED * rl);
  unsigned seq = 0, first, rounds = 0, i;
  (void)state;
  assert_non_null(all);
  for (i = 0; i < PIPELINED; i++) memcpy(all + i * rl, req, rl);
  open_session(0);
  f.peer_reads = 0;
  fake_stream_feed(&f, all, PIPELINED * rl);
  free(all);
  first = take_metrics(&off, &seq, &one);
  assert_true(first > 0);
  assert_true(first < PIPELINED);
  assert_int_equal(f.paused, 1); /* the rest of the input waits with reading paused */
  assert_true(f.unread <= UVWS__QUEUE_LOW + one);
  /* The reader reads: more come; the output never runs ahead of it. */
  while (seq < PIPELINED && rounds < 100000) {
    if (!drive()) break;
    rounds++;
    take_metrics(&off, &seq, &one);
    assert_true(f.unread <= UVWS__QUEUE_LOW + one);
    if (seq == PIPELINED) break;
    assert_int_equal(f.paused, 1);
  }
  assert_int_equal(seq, PIPELINED);
  assert_int_equal(metrics_calls, PIPELINED);
  assert_int_equal(off, f.out.len);
  while (drive() && rounds++ < 100000) {
  }
  assert_int_equal(f.paused, 0); /* everything answered: reading resumes */
  assert_int_equal(f.finished, 0);
  assert_int_equal(f.closed, 0);
  assert_true(rounds > 1);
}

static void test_long_redirect_is_whole_then_next_response(void **state) {
  uvws__buf_t req = {NULL, 0, 0, 0}, loc = {NULL, 0, 0, 0};
  size_t off = 0, vlen = 0;
  const char *v;
  resp_t r;
  unsigned i;
  (void)state;
  /* "/folder?" + 7000 bytes of query: longer than any fixed head buffer */
  assert_int_equal(uvws__buf_append(&loc, "/folder/?", 9), 0);
  for (i = 0; i < 7000; i++) assert_int_equal(uvws__buf_append(&loc, &"abcdefghij"[i % 10], 1), 0);
  assert_int_equal(uvws__buf_append(&req, "GET /folder?", 12), 0);
  assert_int_equal(uvws__buf_append(&req, uvws__buf_data(&loc) + 9, 7000), 0);
  assert_int_equal(uvws__buf_append(&req, " HTTP/1.1\r\nHost: h\r\n\r\n" GET("/file.txt"),
                                    strlen(" HTTP/1.1\r\nHost: h\r\n\r\n" GET("/file.txt"))),
                   0);
  open_session(0);
  fake_stream_feed(&f, uvws__buf_data(&req), req.len);
  uvws__buf_free(&req);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 301);
  v = header(&r, "Location", &vlen);
  assert_non_null(v);
  assert_int_equal(vlen, loc.len);
  assert_memory_equal(v, uvws__buf_data(&loc), loc.len);
  uvws__buf_free(&loc);
  expect_body(&r, "301 Moved Permanently\n");
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, FILE_BODY);
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 0);
}

static void test_absolute_form_target_is_served(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed("GET http://h/file.txt HTTP/1.1\r\nHost: h\r\n\r\n");
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, FILE_BODY);
  assert_int_equal(off, f.out.len);
}

static void test_malformed_request_400_and_finish(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed("GET /file.txt HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n" GET("/file.txt"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 400);
  assert_true(header_is(&r, "Connection", "close"));
  expect_body(&r, "400 Bad Request: malformed request\n");
  assert_int_equal(off, f.out.len); /* the request behind it is not answered */
  assert_int_equal(f.finished, 1);
}

static void test_half_close_while_a_file_streams_completes_then_finishes(void **state) {
  size_t off = 0;
  unsigned rounds = 0;
  resp_t r;
  (void)state;
  open_session(0);
  f.peer_reads = 0;
  feed(GET("/big.bin"));
  assert_true(f.out.len < BIG_LEN); /* the body waits for the reader */
  assert_true(f.unread >= UVWS__QUEUE_LOW);
  fake_stream_eof(&f);
  assert_int_equal(f.finished, 0); /* the body is owed first */
  while (!f.finished && rounds++ < 1000) {
    assert_int_equal(f.finished, 0);
    fake_stream_peer_read(&f);
  }
  assert_int_equal(f.finished, 1);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, BIG_LEN);
  assert_memory_equal(r.body, big, BIG_LEN);
  assert_int_equal(off, f.out.len);
  assert_true(rounds > 1);
}

/* A request pipelined behind a streaming file waits for the file's body,
 * then is answered. */
static void test_request_behind_a_streaming_file_is_answered_after_it(void **state) {
  size_t off = 0;
  unsigned rounds = 0;
  resp_t r;
  (void)state;
  open_session(0);
  f.peer_reads = 0;
  feed(GET("/big.bin") GET("/file.txt"));
  assert_int_equal(f.paused, 1);
  while (rounds++ < 1000 && drive()) {
  }
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, BIG_LEN);
  assert_memory_equal(r.body, big, BIG_LEN);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, FILE_BODY);
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.paused, 0);
  assert_int_equal(f.finished, 0);
}

/* The peer half-closes while pipelined requests still wait (it read
 * nothing yet): everything it asked is answered, then the session
 * finishes (http_int.h: "the peer half-closed; answer what came, then
 * end"). */
static void test_half_close_with_pipelined_requests_waiting_answers_them_all(void **state) {
  static const char req[] = GET("/metrics");
  const unsigned n = 200;
  size_t rl = sizeof(req) - 1, off = 0, one = 0;
  char *all = malloc(n * rl);
  unsigned seq = 0, rounds = 0, i;
  (void)state;
  assert_non_null(all);
  for (i = 0; i < n; i++) memcpy(all + i * rl, req, rl);
  open_session(0);
  f.peer_reads = 0;
  fake_stream_feed(&f, all, n * rl);
  free(all);
  assert_int_equal(f.paused, 1);
  assert_true(take_metrics(&off, &seq, &one) < n);
  fake_stream_eof(&f);
  while (!f.finished && rounds++ < 10000 && drive()) {
  }
  take_metrics(&off, &seq, &one);
  assert_int_equal(seq, n);
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 1);
}

#define UPGRADE_REQ                                  \
  "GET /echo HTTP/1.1\r\n"                           \
  "Host: h\r\n"                                      \
  "Upgrade: websocket\r\n"                           \
  "Connection: Upgrade\r\n"                          \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
  "Sec-WebSocket-Version: 13\r\n"                    \
  "\r\n"

static void test_upgrade_hands_over_with_101_first_and_the_rest(void **state) {
  static const char rest[] = "\x81\x85" "abcd" "first frame bytes";
  static const char head[] =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n";
  uvws__buf_t in = {NULL, 0, 0, 0};
  (void)state;
  open_session(0);
  assert_int_equal(UVWS__GET(m.conns_http), 1);
  assert_int_equal(uvws__buf_append(&in, UPGRADE_REQ, strlen(UPGRADE_REQ)), 0);
  assert_int_equal(uvws__buf_append(&in, rest, sizeof(rest) - 1), 0);
  fake_stream_feed(&f, uvws__buf_data(&in), in.len);
  uvws__buf_free(&in);
  assert_int_equal(upgrades, 1);
  assert_ptr_equal(up_route, &route);
  /* the 101, exactly, was written before the hand-off, and is the head on_open sees */
  assert_int_equal(up_out.len, strlen(head));
  assert_memory_equal(uvws__buf_data(&up_out), head, up_out.len);
  assert_int_equal(up_head.len, strlen(head));
  assert_memory_equal(uvws__buf_data(&up_head), head, up_head.len);
  /* the bytes after the request are passed on, not parsed as HTTP */
  assert_int_equal(up_rest.len, sizeof(rest) - 1);
  assert_memory_equal(uvws__buf_data(&up_rest), rest, up_rest.len);
  assert_int_equal(up_target.len, 5);
  assert_memory_equal(uvws__buf_data(&up_target), "/echo", 5);
  assert_int_equal(up_nheaders, 5);
  assert_string_equal(up_header0, "Host: h");
  /* nothing more was written; the HTTP session is gone, reading is on */
  assert_int_equal(f.out.len, strlen(head));
  assert_int_equal(UVWS__GET(m.conns_http), 0);
  assert_int_equal(f.paused, 0);
  assert_int_equal(f.finished, 0);
  fake_stream_free(&f); /* the new upper's on_close */
  opened = 0;
  assert_int_equal(ws_closes, 1);
}

/* An upgrade pipelined behind answers that wait for the reader: it is
 * handled in its turn, after every answer before it, with the bytes
 * behind it as the rest. */
static void test_upgrade_behind_waiting_answers_is_handed_over_in_order(void **state) {
  static const char req[] = GET("/metrics");
  static const char rest[] = "frame bytes";
  const unsigned n = 100;
  uvws__buf_t in = {NULL, 0, 0, 0};
  size_t off = 0, one = 0, before;
  unsigned seq = 0, rounds = 0, i;
  (void)state;
  for (i = 0; i < n; i++) assert_int_equal(uvws__buf_append(&in, req, sizeof(req) - 1), 0);
  assert_int_equal(uvws__buf_append(&in, UPGRADE_REQ, strlen(UPGRADE_REQ)), 0);
  assert_int_equal(uvws__buf_append(&in, rest, sizeof(rest) - 1), 0);
  open_session(0);
  f.peer_reads = 0;
  fake_stream_feed(&f, uvws__buf_data(&in), in.len);
  uvws__buf_free(&in);
  assert_int_equal(upgrades, 0); /* waits behind the answers */
  assert_int_equal(f.paused, 1);
  while (upgrades == 0 && rounds++ < 10000 && drive()) {
  }
  assert_int_equal(upgrades, 1);
  assert_int_equal(take_metrics(&off, &seq, &one), n); /* all the answers, then */
  before = off;
  assert_true(f.out.len > before);
  assert_memory_equal(uvws__buf_data(&f.out) + before, "HTTP/1.1 101 Switching Protocols\r\n", 34);
  assert_int_equal(up_out.len, f.out.len); /* the 101 was the last thing written before the hand-off */
  assert_int_equal(up_rest.len, sizeof(rest) - 1);
  assert_memory_equal(uvws__buf_data(&up_rest), rest, up_rest.len);
  assert_int_equal(UVWS__GET(m.conns_http), 0);
  assert_int_equal(f.paused, 0);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(ws_closes, 1);
}

/* on_upgrade refuses: its status and headers go out, nothing is handed
 * over, and the connection finishes. */
static void test_on_upgrade_refusal_is_answered_with_its_headers(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  route.h.on_upgrade = on_upgrade;
  decide_status = 503;
  open_session(0);
  feed(UPGRADE_REQ);
  assert_int_equal(decides, 1);
  assert_int_equal(upgrades, 0);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 503);
  assert_true(header_is(&r, "Retry-After", "7"));
  assert_true(header_is(&r, "Connection", "close"));
  assert_false(out_has("Injected"));
  expect_body(&r, "503 Service Unavailable: the route refused the upgrade\n");
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 1);
  assert_int_equal(releases, 0);
}

/* on_upgrade accepts: it read the request, its header is in the 101, and
 * its data reaches the WebSocket session; bad header names and values
 * were refused. */
static void test_on_upgrade_accepts_with_header_and_data(void **state) {
  (void)state;
  route.h.on_upgrade = on_upgrade;
  open_session(0);
  feed(UPGRADE_REQ);
  assert_int_equal(decides, 1);
  assert_string_equal(decided_host, "h");
  assert_string_equal(decided_target, "/echo");
  assert_string_equal(decided_peer, f.s.peer);
  assert_int_equal(decided_secure, 0);
  assert_int_equal(add_bad_name, UV_EINVAL);
  assert_int_equal(add_bad_value, UV_EINVAL);
  assert_int_equal(upgrades, 1);
  assert_ptr_equal(up_data, &decides);
  assert_non_null(strstr(uvws__buf_data(&up_head), "\r\nX-Decided: 7\r\n\r\n"));
  assert_memory_equal(uvws__buf_data(&up_head), "HTTP/1.1 101 Switching Protocols\r\n", 34);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(releases, 0); /* the session owns the data now */
}

/* Accepted, but the WebSocket could not open: the data goes back to the
 * route's release, once. */
static void test_on_upgrade_data_is_released_when_the_open_fails(void **state) {
  (void)state;
  route.h.on_upgrade = on_upgrade;
  upgrade_fails = 1;
  open_session(0);
  feed(UPGRADE_REQ);
  assert_int_equal(upgrades, 1);
  assert_int_equal(releases, 1);
}

/* A status that is no refusal (200) is a bug in the route: 500. */
static int answers_200(uvws_upgrade_t *up) {
  (void)up;
  return 200;
}

static void test_on_upgrade_bad_status_is_500(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  route.h.on_upgrade = answers_200;
  open_session(0);
  feed(UPGRADE_REQ);
  assert_int_equal(upgrades, 0);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 500);
  assert_int_equal(f.finished, 1);
}

static void test_refused_503_has_retry_after_and_finishes(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(503);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 503);
  assert_memory_equal(r.head, "HTTP/1.1 503 Service Unavailable\r\n", 34);
  assert_true(header_is(&r, "Retry-After", "1"));
  assert_true(header_is(&r, "Connection", "close"));
  expect_body(&r, "503 Service Unavailable: too many connections\n");
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 1);
}

static void test_refused_429_has_no_retry_after_and_finishes(void **state) {
  size_t off = 0, vlen;
  resp_t r;
  (void)state;
  open_session(429);
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 429);
  assert_null(header(&r, "Retry-After", &vlen));
  assert_true(header_is(&r, "Connection", "close"));
  expect_body(&r, "429 Too Many Requests: too many connections from your address\n");
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.finished, 1);
}

/* /routes.json: the table sorted bytewise, quotes, backslashes and
 * control bytes escaped, never cached; HEAD has the length, no body. */
static void test_routes_json_is_sorted_and_escaped(void **state) {
  static const char odd[] = "/a\"b\\c\x01";
  static const char want[] = "{\"routes\":[\"/a\\\"b\\\\c\\u0001\",\"/chat\",\"/echo\",\"/reverse\"]}\n";
  char len[16];
  size_t off = 0;
  resp_t r;
  (void)state;
  table_set(0, "/reverse", 8);
  table_set(1, "/echo", 5);
  table_set(2, odd, sizeof(odd) - 1);
  table_set(3, "/chat", 5);
  table_n = 4;
  open_session(0);
  feed(GET("/routes.json") "HEAD /routes.json HTTP/1.1\r\nHost: h\r\n\r\n");
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  assert_true(header_is(&r, "Content-Type", "application/json"));
  assert_true(header_is(&r, "Cache-Control", "no-store"));
  expect_body(&r, want);
  assert_true(next_response(&off, &r, 1));
  assert_int_equal(r.status, 200);
  snprintf(len, sizeof(len), "%zu", sizeof(want) - 1);
  assert_true(header_is(&r, "Content-Length", len));
  assert_int_equal(off, f.out.len); /* no body after the HEAD answer */
  assert_int_equal(f.finished, 0);
}

/* No routes: an empty list. With the built-ins off it is an ordinary
 * path (no such file: 404). */
static void test_routes_json_empty_and_off(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  open_session(0);
  feed(GET("/routes.json"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 200);
  expect_body(&r, "{\"routes\":[]}\n");
  opts.metrics = 0;
  table_set(0, "/echo", 5);
  table_n = 1;
  feed(GET("/routes.json"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 404);
  assert_int_equal(off, f.out.len);
}

/* A body that cannot be built (a path too long to reserve room for; it
 * is never read) is a 500 that closes, as for /metrics. */
static void test_routes_json_that_cannot_be_built_is_500(void **state) {
  size_t off = 0;
  resp_t r;
  (void)state;
  table_set(0, "/echo", 5);
  table_set(1, "/x", (size_t)-1 / 8);
  table_n = 2;
  open_session(0);
  feed(GET("/routes.json"));
  assert_true(next_response(&off, &r, 0));
  assert_int_equal(r.status, 500);
  assert_true(header_is(&r, "Connection", "close"));
  assert_int_equal(f.finished, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_file_200_with_exact_content_length, setup, teardown),
      cmocka_unit_test_setup_teardown(test_head_file_has_length_but_no_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_split_into_one_byte_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_three_pipelined_requests_three_responses_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_reader_pipelining_is_paced_by_the_low_mark, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_redirect_is_whole_then_next_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_absolute_form_target_is_served, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_request_400_and_finish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_half_close_while_a_file_streams_completes_then_finishes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_behind_a_streaming_file_is_answered_after_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_half_close_with_pipelined_requests_waiting_answers_them_all, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_hands_over_with_101_first_and_the_rest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_behind_waiting_answers_is_handed_over_in_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_refusal_is_answered_with_its_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_accepts_with_header_and_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_data_is_released_when_the_open_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_bad_status_is_500, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_is_sorted_and_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_empty_and_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_that_cannot_be_built_is_500, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_503_has_retry_after_and_finishes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_429_has_no_retry_after_and_finishes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

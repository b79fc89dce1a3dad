/* The HTTP session's test harness (http_harness.h): the environment, the
 * runtime's stubs, the fixtures and the response reader that test_http.c
 * and test_http_upgrade.c share. */
#include "http_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/wqueue.h"

/* ---- the environment --------------------------------------------------------- */

uv_loop_t loop;
uvws_options_t opts;
static uvws__http_env_t env;
static uvws__net_shared_t net;
uvws__metrics_t m;
uvws__route_t route;
static uvws__mount_t root;
static char webdir[] = "/tmp/uvws-unit-http-XXXXXX";
static char webreal[PATH_MAX];
char *big; /* big.bin's content */

/* what the stubs saw */
unsigned metrics_calls, upgrades, ws_closes;
const uvws__route_t *up_route;
uvws__buf_t up_rest, up_out, up_head, up_target;
size_t up_nheaders;
void *up_data;
int upgrade_fails;

/* the route's on_upgrade: what it decides, and what it read */
int decide_status;
unsigned decides, releases;
char decided_host[16], decided_target[16], decided_peer[64];
int decided_secure, add_bad_name, add_bad_value;

static void release_token(void *data) {
  assert_ptr_equal(data, &decides);
  releases++;
}

int on_upgrade(uvws_upgrade_t *up) {
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
char up_header0[64];

fake_stream_t f;
int opened;

int out_has(const char *needle) {
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
static const uvws__stream_cb_t ws_cb = {NULL, NULL, NULL, NULL, NULL, NULL, ws_close};

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
uvws__route_t table[4];
size_t table_n;

static size_t stub_routes(void *ctx, const uvws__route_t **t) {
  (void)ctx;
  *t = table;
  return table_n;
}

void table_set(size_t i, const char *path, size_t len) {
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

int group_setup(void **state) {
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

int group_teardown(void **state) {
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

int setup(void **state) {
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

int teardown(void **state) {
  (void)state;
  if (opened) fake_stream_free(&f);
  else uvws__buf_free(&f.out);
  opened = 0;
  /* every session was freed (at the upgrade or at on_close) */
  return UVWS__GET(m.conns_http) == 0 ? 0 : -1;
}

uvws__http_env_t *http_env(void) { return &env; }

void open_session(int refuse) {
  assert_int_equal(uvws__http_open(&env, &f.s, refuse), 0);
  opened = 1;
}

void feed(const char *s) { fake_stream_feed(&f, s, strlen(s)); }

/* ---- reading what the session wrote ------------------------------------------------ */

const char *find(const char *p, size_t n, const char *needle) {
  size_t k = strlen(needle), i;
  for (i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0) return p + i;
  return NULL;
}

/* The value of header `name` (exact case, as uvws writes them), or NULL. */
const char *header(const resp_t *r, const char *name, size_t *vlen) {
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

int header_is(const resp_t *r, const char *name, const char *value) {
  size_t n = 0;
  const char *v = header(r, name, &n);
  return v && n == strlen(value) && memcmp(v, value, n) == 0;
}

/* Parses the response at *off of f.out; 1 and advances *off, or 0 if
 * there is none (yet). `head_only`: a HEAD answer has no body. */
int next_response(size_t *off, resp_t *r, int head_only) {
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

void expect_body(const resp_t *r, const char *body) {
  assert_int_equal(r->body_len, strlen(body));
  assert_memory_equal(r->body, body, r->body_len);
}

/* ---- driving the session ----------------------------------------------------------- */

/* Drives the session as the transport would: a deferred turn first (the
 * next loop iteration), else the peer reads what was answered. 0 when
 * there is nothing left to drive. */
int drive(void) {
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
unsigned take_metrics(size_t *off, unsigned *next_seq, size_t *one) {
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

/* Fuzzes the HTTP session up to the upgrade decision: llhttp, header
 * collection and limits, the upgrade checks, path resolution and the
 * choice of response, on a fake stream (test/common/fake_stream.c) with
 * the runtime's callbacks stubbed below. The web root is an empty
 * temporary folder, so file serving runs its lookups without serving
 * anything. The first input byte picks how the rest is split into reads
 * (its low 6 bits) and whether the peer reads (bit 6: it does not, so the
 * water marks pause the session; bit 7: it catches up when paused). */
#include "http/http.h"
#include "fake_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static uvws_options_t opts;
static uvws__http_env_t env;
static uvws__net_shared_t net;
static uvws__metrics_t m;
static uvws__pmd_config_t pmd;
static uvws__route_t route;
static uvws__mount_t root;
static uint8_t trusted[1][16];
static int upgraded;

static const uvws__route_t *stub_route(void *ctx, const char *path, size_t len) {
  (void)ctx;
  return (len == 5 && memcmp(path, "/echo", 5) == 0) ? &route : NULL;
}

static void ws_close(uvws__stream_t *s) { (void)s; }
static const uvws__stream_cb_t ws_cb = {NULL, NULL, NULL, NULL, NULL, NULL, ws_close};

static int stub_upgrade(void *ctx, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest, size_t rest_len) {
  fake_stream_t *f = (fake_stream_t *)s;
  (void)ctx;
  if (o->route != &route || f->out.len < 12 || memcmp(uvws__buf_data(&f->out), "HTTP/1.1 ", 9) != 0) abort();
  if (strncmp(o->response_head, "HTTP/1.1 101 ", 13) != 0) abort();
  if (rest_len) (void)rest[rest_len - 1];
  if (o->nheaders) (void)o->headers[o->nheaders - 1].value[0];
  uvws__stream_set_upper(s, &ws_cb, NULL);
  upgraded = 1;
  return 0;
}

static void stub_metrics(void *ctx, uvws__buf_t *out) {
  (void)ctx;
  uvws__buf_append(out, "m 1\n", 4);
}
static size_t stub_routes(void *ctx, const uvws__route_t **table) {
  (void)ctx;
  *table = &route;
  return 1;
}
static int stub_state(void *ctx) { (void)ctx; return UVWS__HTTP_SERVING; }

static void setup(void) {
  static char web[] = "/tmp/uvws-fuzz-http-XXXXXX";
  static const char *const protos[] = {"echo", "uvws-echo", NULL};
  if (loop.data) return;
  uv_loop_init(&loop);
  loop.data = &loop;
  uvws_options_init(&opts);
  opts.max_header_bytes = 2048;
  opts.max_url = 512;
  opts.allow_origin = "http://ok.example";
  pmd.level = 1;
  pmd.mem_level = 8;
  pmd.server_max_bits = 15;
  pmd.client_max_bits = 15;
  pmd.client_takeover = 1;
  if (mkdtemp(web) == NULL) abort();
  root.prefix = (char *)"";
  root.real = web;
  root.real_len = strlen(web);
  route.path = (char *)"/echo";
  route.path_len = 5;
  route.subprotocols = (char **)(uintptr_t)protos;
  /* Every peer is a trusted proxy but 0.0.0.42 (mapped), so X-Forwarded-For
   * and Forwarded walks run and end. */
  net.trusted = trusted;
  net.ntrusted = 1;
  trusted[0][10] = trusted[0][11] = 0xff;
  trusted[0][12] = 127;
  trusted[0][15] = 1;
  env.opts = &opts;
  env.pmd = &pmd;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fake_stream_t f;
  size_t off = 0, step;
  int catch_up;

  if (size < 1) return 0;
  setup();
  fake_stream_init(&f, &loop);
  if (uvws__http_open(&env, &f.s, 0) != 0) abort();
  upgraded = 0;
  step = 1u + data[0] % 64u;
  f.peer_reads = !(data[0] & 0x40);
  catch_up = data[0] & 0x80;
  data++, size--;
  while (off < size && !f.closed && !f.finished && !upgraded) {
    size_t n = size - off < step ? size - off : step;
    fake_stream_feed(&f, (const char *)data + off, n);
    off += n;
    fake_stream_run_deferred(&f);
    if (f.paused && catch_up) fake_stream_peer_read(&f);
  }
  if (f.out.len && memcmp(uvws__buf_data(&f.out), "HTTP/1.1 ", 9) != 0) abort();
  fake_stream_free(&f);
  return 0;
}

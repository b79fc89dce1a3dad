/* Fuzzes HTTP request handling up to the upgrade decision: llhttp, header
 * collection and limits, the upgrade checks, path resolution and the choice
 * of response. The connection layer is replaced by the stubs below, which
 * record what http.c asks for; the web root is an empty temporary folder,
 * so file serving runs its lookups without serving anything. The first
 * input byte picks how the rest is split into reads. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static uvws_server_t srv;
static uvws__route_t route;
static uvws__mount_t root;
static size_t written;
static int upgraded, finished;

/* ---- stubs for conn.c and server.c ---------------------------------------- */

int uvws__conn_write(uvws_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  unsigned i;
  if (c->state == UVWS__CONN_CLOSED || c->fin_sent) return UVWS_ECLOSED;
  if (written == 0 && n && (bufs[0].len < 9 || memcmp(bufs[0].base, "HTTP/1.1 ", 9) != 0)) abort();
  for (i = 0; i < n; i++) written += bufs[i].len;
  return 0;
}
int uvws__conn_cork(uvws_conn_t *c) { (void)c; return 0; }
void uvws__conn_uncork(uvws_conn_t *c) { (void)c; }
size_t uvws__conn_queued(const uvws_conn_t *c) { (void)c; return 0; }
void uvws__conn_finish(uvws_conn_t *c) { c->finishing = 1; finished = 1; }
void uvws__conn_abort(uvws_conn_t *c, const char *why) { (void)why; c->state = UVWS__CONN_CLOSED; }
void uvws__conn_update_reading(uvws_conn_t *c) { (void)c; }
void uvws__conn_upgrade(uvws_conn_t *c, const uvws__route_t *r, const char *protocol,
                        const uvws__pmd_params_t *pmd, const char *extensions, char *rest,
                        size_t rest_len) {
  (void)protocol, (void)pmd, (void)extensions;
  if (r != &route) abort();
  if (rest_len) (void)rest[rest_len - 1];
  uvws__http_free(c);
  c->state = UVWS__CONN_WS;
  upgraded = 1;
}
const uvws__route_t *uvws__server_route(const uvws_server_t *s, const char *path, size_t len) {
  (void)s;
  return (len == 5 && memcmp(path, "/echo", 5) == 0) ? &route : NULL;
}
const uvws__mount_t *uvws__server_mount_for(const uvws_server_t *s, const char *rel,
                                            const char **rest) {
  (void)s;
  *rest = rel;
  return &root;
}
/* Every peer counts as a trusted proxy, so X-Forwarded-For and Forwarded
 * parsing (forwarded_client in http.c) is always exercised. */
int uvws__server_is_trusted(const uvws_server_t *s, const uint8_t addr[16]) {
  (void)s;
  return addr[15] != 0x2a; /* but not the client 0.0.0.42, so walks end */
}
int uvws__parse_ip(const char *p, size_t len, uint8_t out[16]) {
  char buf[64];
  if (len >= 2 && p[0] == '[' && p[len - 1] == ']') p++, len -= 2;
  if (len == 0 || len >= sizeof(buf)) return -1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  memset(out, 0, 16);
  if (uv_inet_pton(AF_INET, buf, out + 12) == 0) return out[10] = out[11] = 0xff, 0;
  return uv_inet_pton(AF_INET6, buf, out) == 0 ? 0 : -1;
}
int uvws__conn_set_client(uvws_conn_t *c, const uint8_t addr[16]) {
  memcpy(c->addr, addr, 16);
  c->via_proxy = 1;
  return addr[0] == 0x20 ? -1 : 0; /* some addresses are "over the limit" */
}
const char *uvws__server_date(uvws_server_t *s) { (void)s; return "Thu, 01 Jan 1970 00:00:00 GMT"; }
int uvws__server_draining(uvws_server_t *s) { (void)s; return 0; }
void uvws__metrics_render(uvws_server_t *s, uvws__buf_t *out) { (void)s; uvws__buf_append(out, "m 1\n", 4); }

/* ---- the target --------------------------------------------------------------- */

static void setup(void) {
  static char web[] = "/tmp/uvws-fuzz-http-XXXXXX";
  static const char *const protos[] = {"echo", "uvws-echo", NULL};
  if (loop.data) return;
  uv_loop_init(&loop);
  loop.data = &loop;
  srv.opts.max_header_bytes = 2048;
  srv.opts.handshake_timeout_ms = 10000;
  srv.opts.keepalive_timeout_ms = 10000;
  srv.opts.deflate = 1;
  srv.opts.metrics = 1;
  srv.ntrusted = 1;
  srv.opts.max_url = 512;
  srv.opts.allow_origin = "http://ok.example";
  srv.loop = &loop;
  srv.pmd.level = 1;
  srv.pmd.mem_level = 8;
  srv.pmd.server_max_bits = 15;
  srv.pmd.client_max_bits = 15;
  srv.pmd.client_takeover = 1;
  if (mkdtemp(web) == NULL) abort();
  root.prefix = (char *)"";
  root.real = web;
  root.real_len = strlen(web);
  route.path = "/echo";
  route.path_len = 5;
  route.subprotocols = (char **)(uintptr_t)protos;
  uvws_log_set_level(UVWS_LOG_ERROR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uvws_conn_t *c;
  uint8_t *copy;
  size_t off = 0, step;

  if (size < 1) return 0;
  setup();
  c = calloc(1, sizeof(*c));
  c->srv = &srv;
  snprintf(c->peer, sizeof(c->peer), "fuzz:1");
  if (uvws__http_init(c) != 0) abort();
  written = 0;
  upgraded = finished = 0;
  step = 1u + data[0] % 64u;
  data++, size--;
  copy = malloc(size ? size : 1);
  memcpy(copy, data, size);
  while (off < size && c->state == UVWS__CONN_HTTP && !c->finishing) {
    size_t n = size - off < step ? size - off : step;
    /* reads stop while a response streams; nothing streams from the empty root */
    if (uvws__http_busy(c)) abort();
    uvws__http_feed(c, (char *)copy + off, n);
    off += n;
  }
  if (upgraded && written == 0) abort(); /* a 101 always precedes the switch */
  uvws__http_free(c);
  free(copy);
  free(c);
  return 0;
}

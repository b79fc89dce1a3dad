/* The server facade's start: a start that fails (a port taken, a missing
 * folder) leaves nothing in the caller's loop, so uvws_server_free and
 * uv_loop_close may follow at once; a start retried after a failure works
 * and leaks nothing (LeakSanitizer in the asan build). Route paths are
 * checked when they are added. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uvws.h"

/* A port someone else listens on (127.0.0.1); returns the socket. */
static int occupy(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 8), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void options(uvws_options_t *o, int port, unsigned threads) {
  uvws_options_init(o);
  o->host = "127.0.0.1";
  o->port = port;
  o->threads = threads;
  o->log_connections = 0;
}

/* Fails on a taken port, then: free, and the loop holds no handle. */
static void fails_cleanly(uvws_options_t *o) {
  uv_loop_t loop;
  uvws_server_t *srv;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uvws_server_new(&srv, &loop, o), 0);
  assert_int_equal(uvws_server_mount(srv, "/docs", "."), 0);
  assert_int_equal(uvws_server_start(srv), UV_EADDRINUSE);
  assert_true(uvws_server_port(srv) < 0);
  uvws_server_free(srv);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing to run */
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A taken port for the plain listener (threads loops), or for the TLS one
 * while the plain one binds (its socket must go too). */
static void taken_port(unsigned threads, int tls) {
  uvws_options_t o;
  int port, fd = occupy(&port);
  options(&o, tls ? 0 : port, threads);
  if (tls) {
    o.tls_self_signed = 1;
    o.tls_port = port;
  }
  fails_cleanly(&o);
  close(fd);
}

static void test_taken_port_one_loop(void **state) {
  (void)state;
  taken_port(1, 0);
}

static void test_taken_port_three_loops(void **state) {
  (void)state;
  taken_port(3, 0);
}

static void test_taken_tls_port(void **state) {
  (void)state;
  taken_port(1, 1);
}

static void test_missing_web_root(void **state) {
  uv_loop_t loop;
  uvws_server_t *srv;
  uvws_options_t o;
  (void)state;
  options(&o, 0, 1);
  o.web_root = "/nonexistent/uvws-test";
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uvws_server_new(&srv, &loop, &o), 0);
  assert_int_equal(uvws_server_start(srv), UV_ENOENT);
  uvws_server_free(srv);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A route path that no request target spells is refused up front, and a
 * path given twice is a duplicate. */
static void test_route_paths_checked(void **state) {
  static const char *const bad[] = {"echo", "/a b", "/a?x", "/caf\xc3\xa9", "/%zz", ""};
  uv_loop_t loop;
  uvws_server_t *srv;
  uvws_options_t o;
  uvws_route_t r = {0};
  size_t i;
  (void)state;
  options(&o, 0, 1);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uvws_server_new(&srv, &loop, &o), 0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r.path = bad[i];
    if (uvws_server_route(srv, &r) != UV_EINVAL) fail_msg("route '%s' was not refused", bad[i]);
  }
  r.path = NULL;
  assert_int_equal(uvws_server_route(srv, &r), UV_EINVAL);
  r.path = "/caf%C3%A9";
  assert_int_equal(uvws_server_route(srv, &r), 0);
  assert_int_equal(uvws_server_route(srv, &r), UVWS_EEXIST);
  uvws_server_free(srv);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int shut;
static void on_shutdown(uvws_server_t *srv) {
  (void)srv;
  shut = 1;
}

/* Fails, the port is freed, the same server starts, serves, and stops. */
static void test_retry_after_failure(void **state) {
  uv_loop_t loop;
  uvws_server_t *srv;
  uvws_options_t o;
  int port, fd = occupy(&port);
  (void)state;
  options(&o, port, 1);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uvws_server_new(&srv, &loop, &o), 0);
  assert_int_equal(uvws_server_mount(srv, "/docs", "."), 0);
  assert_int_equal(uvws_server_start(srv), UV_EADDRINUSE);
  close(fd);
  assert_int_equal(uvws_server_start(srv), 0);
  assert_int_equal(uvws_server_port(srv), port);
  assert_int_equal(uvws_server_start(srv), UVWS_ESTATE);
  shut = 0;
  uvws_server_shutdown(srv, on_shutdown);
  while (!shut) uv_run(&loop, UV_RUN_ONCE);
  uvws_server_free(srv);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_taken_port_one_loop),
      cmocka_unit_test(test_taken_port_three_loops),
      cmocka_unit_test(test_taken_tls_port),
      cmocka_unit_test(test_missing_web_root),
      cmocka_unit_test(test_route_paths_checked),
      cmocka_unit_test(test_retry_after_failure),
  };
  uvws_log_set_level(UVWS_LOG_ERROR + 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The HTTP session's upgrade on the fake stream (harness in
 * http_harness.c): the 101 and the hand-off to the WebSocket session with
 * the bytes after the request, behind pipelined answers, and the route's
 * on_upgrade deciding (refusals with their headers, accepted data, a
 * failed open releasing it, a bad status). */
#include "http_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tests --------------------------------------------------------------------------- */

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_upgrade_hands_over_with_101_first_and_the_rest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_behind_waiting_answers_is_handed_over_in_order, setup,teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_refusal_is_answered_with_its_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_accepts_with_header_and_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_data_is_released_when_the_open_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_upgrade_bad_status_is_500, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* The HTTP session's requests and answers on the fake stream (harness in
 * http_harness.c): static files, pipelining paced by the peer's reading,
 * redirects, malformed requests, half-closes, connections refused at
 * accept, and /routes.json. The upgrade is test_http_upgrade.c's. */
#include "http_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Each callback the session may call on some request only (GET
 * /routes.json calls `routes`, /metrics `metrics`): an environment
 * missing one is refused when the first connection opens, not when that
 * request comes. */
static void test_environment_missing_a_callback_is_refused_at_open(void **state) {
  const size_t offsets[] = {offsetof(uvws__http_env_t, route), offsetof(uvws__http_env_t, upgrade),
                            offsetof(uvws__http_env_t, metrics), offsetof(uvws__http_env_t, routes),
                            offsetof(uvws__http_env_t, state)};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
    uvws__http_env_t e = *http_env();
    memset((char *)&e + offsets[i], 0, sizeof(void (*)(void)));
    assert_int_equal(uvws__http_open(&e, &f.s, 0), UV_EINVAL);
    assert_null(f.s.cb);
    assert_int_equal(UVWS__GET(m.conns_http), 0);
  }
  open_session(0);
  assert_ptr_not_equal(f.s.cb, NULL);
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
      cmocka_unit_test_setup_teardown(test_half_close_with_pipelined_requests_waiting_answers_them_all, setup,teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_is_sorted_and_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_empty_and_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_json_that_cannot_be_built_is_500, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_503_has_retry_after_and_finishes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_environment_missing_a_callback_is_refused_at_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_429_has_no_retry_after_and_finishes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

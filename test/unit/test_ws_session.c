/* The WebSocket session (src/ws/session.c, send.c) on the fake stream of
 * test/common: client frames (masked by the helper below) go in with
 * fake_stream_feed, what the session writes is checked byte for byte in
 * f.out, and a route whose handlers record their calls stands for the
 * application. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_stream.h"
#include "util/wqueue.h"
#include "ws/session.h"

static uv_loop_t loop;
static uvws_options_t opts;
static uvws__ws_env_t env;
static uvws__metrics_t m;
static uvws__route_t route;
static fake_stream_t f;
static int opened;

/* what the handlers saw */
static uvws_conn_t *conn;
static unsigned opens, messages, closes, drains;
static int last_op, close_code;
static uvws__buf_t msg, close_reason;
static char events[64];
static unsigned nevents;
static int echo;        /* on_message sends the message back */
/* on_open's view of the request */
static int open_target_ok, open_h0_ok, open_h1_ok, open_h2_r, open_head_ok;

static const char response_head[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";
static const uvws__header_t headers[2] = {
    {"Host", "example.test", 4, 12},
    {"X-Test", "yes", 6, 3},
};

static void ev(char c) {
  if (nevents < sizeof(events) - 1) events[nevents++] = c;
}

static int header_matches(uvws_conn_t *c, size_t i, const char *name, const char *value) {
  const char *n = NULL, *v = NULL;
  size_t nl = 0, vl = 0;
  if (uvws_conn_request_header_at(c, i, &n, &nl, &v, &vl) != 0) return 0;
  return nl == strlen(name) && memcmp(n, name, nl) == 0 && vl == strlen(value) && memcmp(v, value, vl) == 0;
}

static void h_open(uvws_conn_t *c) {
  const char *n, *v, *t;
  size_t nl, vl, tl = 0;
  const char *head = uvws_conn_response_head(c);
  opens++;
  ev('O');
  conn = c;
  t = uvws_conn_request_target(c, &tl);
  open_target_ok = t && tl == 9 && memcmp(t, "/echo?x=1", 9) == 0;
  open_h0_ok = header_matches(c, 0, "Host", "example.test");
  open_h1_ok = header_matches(c, 1, "X-Test", "yes");
  open_h2_r = uvws_conn_request_header_at(c, 2, &n, &nl, &v, &vl);
  open_head_ok = head && strcmp(head, response_head) == 0;
}

static int pause_at; /* h_message pauses the route at this message (0: never) */

static void h_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  messages++;
  if ((int)messages == pause_at) assert_int_equal(uvws_conn_pause(c, 1), 0);
  ev('M');
  last_op = (int)op;
  msg.off = msg.len = 0;
  if (len && uvws__buf_append(&msg, data, len) != 0) abort();
  if (echo) uvws_send(c, op, data, len);
}

static void h_close(uvws_conn_t *c, int code, const char *reason, size_t reason_len) {
  (void)c;
  closes++;
  ev('C');
  close_code = code;
  close_reason.off = close_reason.len = 0;
  if (reason_len && uvws__buf_append(&close_reason, reason, reason_len) != 0) abort();
  conn = NULL;
}

static void h_drain(uvws_conn_t *c) {
  (void)c;
  drains++;
  ev('D');
}

static int group_setup(void **state) {
  (void)state;
  if (uv_loop_init(&loop) != 0) return -1;
  env.opts = &opts;
  env.m = &m;
  env.server = NULL;
  uvws_log_set_level(UVWS_LOG_ERROR);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  uvws__ws_env_free(&env);
  uvws__buf_free(&msg);
  uvws__buf_free(&close_reason);
  uvws__wq_cache_drain();
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static int setup(void **state) {
  (void)state;
  uvws_options_init(&opts);
  opts.log_connections = 0;
  memset(&route, 0, sizeof(route));
  route.path = (char *)"/echo";
  route.path_len = 5;
  route.h.on_open = h_open;
  route.h.on_message = h_message;
  route.h.on_close = h_close;
  route.h.on_drain = h_drain;
  fake_stream_init(&f, &loop);
  opened = 0;
  conn = NULL;
  opens = messages = closes = drains = 0;
  last_op = close_code = -1;
  nevents = 0;
  memset(events, 0, sizeof(events));
  echo = 0;
  pause_at = 0;
  open_target_ok = open_h0_ok = open_h1_ok = open_head_ok = 0;
  open_h2_r = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (opened) fake_stream_free(&f);
  else uvws__buf_free(&f.out);
  opened = 0;
  return UVWS__GET(m.conns_ws) == 0 ? 0 : -1; /* every session was freed */
}

static void ws_open(const char *rest, size_t rest_len) {
  uvws__ws_open_t o;
  char *copy = NULL;
  memset(&o, 0, sizeof(o));
  o.route = &route;
  o.target = "/echo?x=1";
  o.target_len = 9;
  o.headers = headers;
  o.nheaders = 2;
  o.response_head = response_head;
  if (rest_len) {
    copy = malloc(rest_len);
    assert_non_null(copy);
    memcpy(copy, rest, rest_len);
  }
  assert_int_equal(uvws__ws_open(&env, &f.s, &o, copy, rest_len), 0);
  free(copy);
  opened = 1;
  assert_int_equal(opens, 1);
  assert_non_null(conn);
}

/* Appends one client frame: FIN, opcode, masked (or not), the payload. */
static void client_frame(uvws__buf_t *b, int fin, int opcode, const void *data, size_t n, int masked) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t hdr[14];
  size_t hl = 0, i;
  uint8_t mbit = masked ? 0x80 : 0;
  hdr[hl++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  if (n < 126) {
    hdr[hl++] = (uint8_t)(mbit | n);
  } else if (n < 65536) {
    hdr[hl++] = (uint8_t)(mbit | 126);
    hdr[hl++] = (uint8_t)(n >> 8);
    hdr[hl++] = (uint8_t)n;
  } else {
    int k;
    hdr[hl++] = (uint8_t)(mbit | 127);
    for (k = 7; k >= 0; k--) hdr[hl++] = (uint8_t)((uint64_t)n >> (8 * k));
  }
  if (masked) {
    memcpy(hdr + hl, key, 4);
    hl += 4;
  }
  if (uvws__buf_append(b, hdr, hl) != 0) abort();
  for (i = 0; i < n; i++) {
    uint8_t c = (uint8_t)(((const uint8_t *)data)[i] ^ (masked ? key[i % 4] : 0));
    if (uvws__buf_append(b, &c, 1) != 0) abort();
  }
}

static void send_frame(int fin, int opcode, const void *data, size_t n) {
  uvws__buf_t b = {NULL, 0, 0, 0};
  client_frame(&b, fin, opcode, data, n, 1);
  fake_stream_feed(&f, uvws__buf_data(&b), b.len);
  uvws__buf_free(&b);
}

static void expect_out(const void *bytes, size_t n) {
  assert_int_equal(f.out.len, n);
  assert_memory_equal(uvws__buf_data(&f.out), bytes, n);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_text_message_reaches_on_message(void **state) {
  (void)state;
  ws_open(NULL, 0);
  send_frame(1, UVWS_OP_TEXT, "Hello", 5);
  assert_int_equal(messages, 1);
  assert_int_equal(last_op, UVWS_OP_TEXT);
  assert_int_equal(msg.len, 5);
  assert_memory_equal(uvws__buf_data(&msg), "Hello", 5);
  assert_int_equal(f.out.len, 0); /* nothing to answer */
  assert_int_equal(f.finished, 0);
}

static void test_echo_is_an_unmasked_frame(void **state) {
  (void)state;
  echo = 1;
  ws_open(NULL, 0);
  send_frame(1, UVWS_OP_TEXT, "Hello", 5);
  expect_out("\x81\x05Hello", 7);
}

static void test_echo_of_200_bytes_uses_a_16_bit_length(void **state) {
  uint8_t payload[200], want[204];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(payload); i++) payload[i] = (uint8_t)(i * 7);
  echo = 1;
  ws_open(NULL, 0);
  send_frame(1, UVWS_OP_BINARY, payload, sizeof(payload));
  assert_int_equal(last_op, UVWS_OP_BINARY);
  want[0] = 0x82;
  want[1] = 126;
  want[2] = 0;
  want[3] = 200;
  memcpy(want + 4, payload, sizeof(payload));
  expect_out(want, sizeof(want));
}

static void test_ping_is_answered_with_pong(void **state) {
  (void)state;
  ws_open(NULL, 0);
  send_frame(1, UVWS_OP_PING, "abc", 3);
  expect_out("\x8a\x03" "abc", 5);
  assert_int_equal(messages, 0);
}

static void test_close_is_echoed_then_finish_and_on_close_reports_the_code(void **state) {
  uint64_t open_ws;
  (void)state;
  ws_open(NULL, 0);
  open_ws = UVWS__GET(m.conns_ws);
  send_frame(1, UVWS_OP_CLOSE, "\x03\xe8" "bye", 5);
  expect_out("\x88\x05\x03\xe8" "bye", 7);
  assert_int_equal(f.finished, 1);
  assert_int_equal(closes, 0); /* not before the stream is gone */
  /* but no longer an open WebSocket for /metrics: only the TCP goodbye is left */
  assert_int_equal(UVWS__GET(m.conns_ws), open_ws - 1);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(closes, 1);
  assert_int_equal(close_code, 1000);
  assert_int_equal(close_reason.len, 3);
  assert_memory_equal(uvws__buf_data(&close_reason), "bye", 3);
}

static void test_close_without_code_is_answered_1000(void **state) {
  (void)state;
  ws_open(NULL, 0);
  send_frame(1, UVWS_OP_CLOSE, NULL, 0);
  expect_out("\x88\x02\x03\xe8", 4);
  assert_int_equal(f.finished, 1);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(close_code, 1005); /* what the peer said: no status */
}

static void test_unmasked_frame_fails_with_1002_and_finish(void **state) {
  uvws__buf_t b = {NULL, 0, 0, 0};
  const uint8_t *out;
  (void)state;
  ws_open(NULL, 0);
  client_frame(&b, 1, UVWS_OP_TEXT, "Hello", 5, 0);
  fake_stream_feed(&f, uvws__buf_data(&b), b.len);
  uvws__buf_free(&b);
  assert_int_equal(messages, 0);
  assert_true(f.out.len >= 4);
  out = (const uint8_t *)uvws__buf_data(&f.out);
  assert_int_equal(out[0], 0x88);
  assert_int_equal(out[1], f.out.len - 2); /* one close frame, nothing else */
  assert_int_equal(out[2], 0x03);
  assert_int_equal(out[3], 0xea); /* 1002 */
  assert_int_equal(f.finished, 1);
  assert_int_equal(UVWS__GET(m.protocol_failures), 1);
  /* input after the failure is ignored */
  send_frame(1, UVWS_OP_TEXT, "late", 4);
  assert_int_equal(messages, 0);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(close_code, 1006); /* no close frame came back (RFC 6455 7.1.5) */
  UVWS__SET(m.protocol_failures, 0);
}

/* 100 frames in one read, each "m<i>", or pings when `ping`. */
static void feed_hundred(int ping) {
  uvws__buf_t b = {NULL, 0, 0, 0};
  char text[8];
  int i;
  for (i = 0; i < 100; i++) {
    snprintf(text, sizeof(text), "m%d", i);
    client_frame(&b, 1, ping ? UVWS_OP_PING : UVWS_OP_TEXT, ping ? "" : text, ping ? 0 : strlen(text), 1);
  }
  fake_stream_feed(&f, uvws__buf_data(&b), b.len);
  uvws__buf_free(&b);
}

static void expect_last(const char *text) {
  assert_int_equal(msg.len, strlen(text));
  assert_memory_equal(uvws__buf_data(&msg), text, msg.len);
}

/* A client that sends without pause gets 64 messages handed over per
 * read; the rest waits, the stream paused, for the next turn (defer). */
static void test_a_read_hands_over_64_messages_the_rest_next_turn(void **state) {
  (void)state;
  ws_open(NULL, 0);
  feed_hundred(0);
  assert_int_equal(messages, 64);
  expect_last("m63");
  assert_int_equal(f.paused, 1);
  assert_int_equal(f.deferred, 1);
  fake_stream_run_deferred(&f);
  assert_int_equal(messages, 100);
  expect_last("m99");
  assert_int_equal(f.paused, 0);
  assert_int_equal(f.deferred, 0);
  assert_int_equal(drains, 0); /* a turn is not a drain */
  send_frame(1, UVWS_OP_TEXT, "next", 4);
  assert_int_equal(messages, 101);
  expect_last("next");
}

/* Pings count as messages: a ping flood gets 64 pongs per read. */
static void test_a_read_answers_64_pings_the_rest_next_turn(void **state) {
  (void)state;
  ws_open(NULL, 0);
  feed_hundred(1);
  assert_int_equal(f.out.len, 64 * 2);
  fake_stream_run_deferred(&f);
  assert_int_equal(f.out.len, 100 * 2);
  assert_int_equal(f.paused, 0);
}

/* A route that pauses in on_message hears no more messages, even those
 * already read, until it resumes; then they come in order. */
static void test_route_pause_stops_the_messages_already_read(void **state) {
  (void)state;
  pause_at = 10;
  ws_open(NULL, 0);
  feed_hundred(0);
  assert_int_equal(messages, 10);
  fake_stream_run_deferred(&f);
  assert_int_equal(messages, 10);
  assert_int_equal(f.paused, 1);
  assert_int_equal(uvws_conn_pause(conn, 0), 0);
  assert_int_equal(f.paused, 1); /* held input first */
  fake_stream_run_deferred(&f);
  assert_int_equal(messages, 74);
  expect_last("m73");
  fake_stream_run_deferred(&f);
  assert_int_equal(messages, 100);
  expect_last("m99");
  assert_int_equal(f.paused, 0);
}

static void test_backpressure_drop_then_one_on_drain(void **state) {
  uint8_t payload[600];
  (void)state;
  memset(payload, 'p', sizeof(payload));
  opts.max_backpressure = 1000;
  route.drop_on_backpressure = 1;
  f.peer_reads = 0;
  ws_open(NULL, 0);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), 0);
  assert_int_equal(f.out.len, 604);
  assert_int_equal(uvws_conn_buffered_amount(conn), 604);
  /* 604 queued + 600 > 1000: dropped, twice; nothing more written */
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), UVWS_EBACKPRESSURE);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), UVWS_EBACKPRESSURE);
  assert_int_equal(f.out.len, 604);
  assert_int_equal(UVWS__GET(m.backpressure_drops), 2);
  assert_int_equal(drains, 0);
  assert_int_equal(f.finished, 0);
  fake_stream_peer_read(&f);
  assert_int_equal(drains, 1);
  fake_stream_peer_read(&f);
  assert_int_equal(drains, 1);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), 0);
  assert_int_equal(f.out.len, 2 * 604);
  UVWS__SET(m.backpressure_drops, 0);
}

/* With the default --max-backpressure (16 MiB) a drop route still drops
 * at the transport's high mark, so its stream never stops reading: a
 * member of a flooded room can still speak. */
static void test_drop_route_keeps_the_queue_under_the_high_mark(void **state) {
  static uint8_t payload[60000]; /* a 60 004-byte frame */
  unsigned i, sent = 0;
  (void)state;
  memset(payload, 'd', sizeof(payload));
  route.drop_on_backpressure = 1;
  f.peer_reads = 0;
  ws_open(NULL, 0);
  for (i = 0; i < 40; i++) {
    int r = uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload));
    assert_true(r == 0 || r == UVWS_EBACKPRESSURE);
    if (r == 0) sent++;
    assert_true(uvws_conn_buffered_amount(conn) <= UVWS__QUEUE_HIGH);
  }
  assert_int_equal(sent, UVWS__QUEUE_HIGH / 60004); /* 17 */
  assert_int_equal(UVWS__GET(m.backpressure_drops), 40 - sent);
  assert_int_equal(f.finished, 0);
  UVWS__SET(m.backpressure_drops, 0);
}

/* A message bigger than the high mark (but within --max-backpressure)
 * goes to a member with nothing queued, and is dropped for one with
 * something queued. */
static void test_drop_route_sends_a_big_message_on_an_empty_queue(void **state) {
  uint8_t *big = malloc(UVWS__QUEUE_HIGH + 1000);
  (void)state;
  assert_non_null(big);
  memset(big, 'b', UVWS__QUEUE_HIGH + 1000);
  route.drop_on_backpressure = 1;
  f.peer_reads = 0;
  ws_open(NULL, 0);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, big, UVWS__QUEUE_HIGH + 1000), 0);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, big, UVWS__QUEUE_HIGH + 1000), UVWS_EBACKPRESSURE);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, "x", 1), UVWS_EBACKPRESSURE); /* still above the mark */
  assert_int_equal(UVWS__GET(m.backpressure_drops), 2);
  fake_stream_peer_read(&f);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, big, UVWS__QUEUE_HIGH + 1000), 0);
  free(big);
  UVWS__SET(m.backpressure_drops, 0);
}

static void test_backpressure_without_drop_closes_1013(void **state) {
  uint8_t payload[600];
  const uint8_t *out;
  (void)state;
  memset(payload, 'p', sizeof(payload));
  opts.max_backpressure = 1000;
  f.peer_reads = 0;
  ws_open(NULL, 0);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), 0);
  assert_int_equal(uvws_send(conn, UVWS_OP_BINARY, payload, sizeof(payload)), UVWS_EBACKPRESSURE);
  out = (const uint8_t *)uvws__buf_data(&f.out);
  assert_int_equal(f.out.len, 604 + 2 + 2 + 15);
  assert_memory_equal(out + 604, "\x88\x11\x03\xf5" "send queue full", 19);
  assert_int_equal(f.finished, 1);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(close_code, 1006); /* no close frame came back (RFC 6455 7.1.5) */
  UVWS__SET(m.backpressure_closes, 0);
}

static void test_on_open_sees_the_request_and_not_after(void **state) {
  const char *n, *v;
  size_t nl, vl, tl;
  (void)state;
  ws_open(NULL, 0);
  assert_true(open_target_ok);
  assert_true(open_h0_ok);
  assert_true(open_h1_ok);
  assert_int_equal(open_h2_r, UV_ENOENT);
  assert_true(open_head_ok);
  /* once on_open returned, the request is gone */
  assert_int_equal(uvws_conn_request_header_at(conn, 0, &n, &nl, &v, &vl), UV_ENOENT);
  assert_null(uvws_conn_response_head(conn));
  assert_null(uvws_conn_request_target(conn, &tl));
  assert_string_equal(uvws_conn_path(conn), "/echo");
  assert_string_equal(uvws_conn_peer(conn), "127.0.0.1:1");
}

static void test_fragmented_message_is_reassembled(void **state) {
  (void)state;
  ws_open(NULL, 0);
  send_frame(0, UVWS_OP_TEXT, "Hel", 3);
  send_frame(0, UVWS_OP_CONTINUATION, "lo, ", 4);
  assert_int_equal(messages, 0);
  send_frame(1, UVWS_OP_CONTINUATION, "world", 5);
  assert_int_equal(messages, 1);
  assert_int_equal(last_op, UVWS_OP_TEXT);
  assert_int_equal(msg.len, 12);
  assert_memory_equal(uvws__buf_data(&msg), "Hello, world", 12);
}

static void test_ping_between_fragments_is_answered_and_the_message_kept(void **state) {
  (void)state;
  ws_open(NULL, 0);
  send_frame(0, UVWS_OP_BINARY, "ab", 2);
  send_frame(1, UVWS_OP_PING, "p", 1);
  expect_out("\x8a\x01p", 3);
  send_frame(1, UVWS_OP_CONTINUATION, "cd", 2);
  assert_int_equal(messages, 1);
  assert_int_equal(last_op, UVWS_OP_BINARY);
  assert_int_equal(msg.len, 4);
  assert_memory_equal(uvws__buf_data(&msg), "abcd", 4);
}

static void test_frames_split_into_one_byte_reads(void **state) {
  uvws__buf_t b = {NULL, 0, 0, 0};
  size_t i;
  (void)state;
  ws_open(NULL, 0);
  client_frame(&b, 1, UVWS_OP_TEXT, "one", 3, 1);
  client_frame(&b, 1, UVWS_OP_TEXT, "two!", 4, 1);
  for (i = 0; i < b.len; i++) {
    fake_stream_feed(&f, uvws__buf_data(&b) + i, 1);
    if (messages == 1 && msg.len == 3) assert_memory_equal(uvws__buf_data(&msg), "one", 3);
  }
  uvws__buf_free(&b);
  assert_int_equal(messages, 2);
  assert_int_equal(msg.len, 4);
  assert_memory_equal(uvws__buf_data(&msg), "two!", 4);
}

static void test_rest_after_the_upgrade_is_fed_after_on_open(void **state) {
  uvws__buf_t b = {NULL, 0, 0, 0};
  (void)state;
  client_frame(&b, 1, UVWS_OP_TEXT, "early", 5, 1);
  ws_open(uvws__buf_data(&b), b.len);
  uvws__buf_free(&b);
  assert_int_equal(messages, 1);
  assert_memory_equal(uvws__buf_data(&msg), "early", 5);
  assert_string_equal(events, "OM");
}

static void test_server_close_waits_for_the_peers_close(void **state) {
  (void)state;
  ws_open(NULL, 0);
  assert_int_equal(uvws_close(conn, 1000, "done"), 0);
  expect_out("\x88\x06\x03\xe8" "done", 8);
  assert_int_equal(f.finished, 0); /* the peer answers first */
  assert_int_equal(uvws_send_text(conn, "after"), UVWS_ECLOSED);
  send_frame(1, UVWS_OP_TEXT, "dropped", 7); /* data after our close is read and dropped */
  assert_int_equal(messages, 0);
  send_frame(1, UVWS_OP_CLOSE, "\x03\xe8", 2);
  assert_int_equal(f.finished, 1);
  assert_int_equal(f.out.len, 8); /* no second close frame */
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(close_code, 1000);
}

static void test_eof_without_close_reports_1006(void **state) {
  (void)state;
  ws_open(NULL, 0);
  fake_stream_eof(&f);
  assert_int_equal(f.closed, 1);
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(closes, 1);
  assert_int_equal(close_code, 1006);
  assert_int_equal(close_reason.len, 0);
}

/* A route's pause stops reading and the keep-alive: a paused peer is not
 * pinged or dropped for a silence that is ours; resuming reads again and
 * restarts the timers; a close frame we send resumes reading, since the
 * peer's answer must be heard. */
static void test_pause_stops_reading_and_the_keepalive_until_resumed(void **state) {
  (void)state;
  opts.ping_interval_ms = 1;
  opts.ping_timeout_ms = 1;
  ws_open(NULL, 0);
  assert_int_equal(uvws_conn_pause(conn, 1), 0);
  assert_int_equal(f.paused, 1);
  uv_sleep(5);
  uv_update_time(&loop);
  f.s.deadline = 0;
  f.s.cb->on_timeout(&f.s);
  assert_int_equal(f.out.len, 0); /* no ping */
  assert_int_equal(f.closed + f.finished, 0);
  assert_int_equal(f.s.deadline, 0); /* nothing armed while paused */
  assert_int_equal(uvws_conn_pause(conn, 0), 0);
  assert_int_equal(f.paused, 0);
  assert_true(f.s.deadline > uv_now(&loop));
  assert_int_equal(uvws_conn_pause(conn, 1), 0);
  assert_int_equal(uvws_close(conn, 1000, "bye"), 0);
  assert_int_equal(f.paused, 0);
  assert_int_equal(uvws_conn_pause(conn, 1), UVWS_ECLOSED);
  assert_int_equal(f.paused, 0);
}

/* A message in fragments: FIN 0 then continuations, a ping may go between
 * them, another message may not until the last fragment. */
static void test_send_fragment_with_a_ping_between(void **state) {
  (void)state;
  ws_open(NULL, 0);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_CONTINUATION, "x", 1, 1), UVWS_ESTATE);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_PING, "x", 1, 1), UV_EINVAL);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_TEXT, "Hel", 3, 0), 0);
  assert_int_equal(uvws_send_text(conn, "between"), UVWS_ESTATE);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_BINARY, "x", 1, 1), UVWS_ESTATE);
  assert_int_equal(uvws_ping(conn, "p", 1), 0);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_CONTINUATION, "l", 1, 0), 0);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_CONTINUATION, "o", 1, 1), 0);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_CONTINUATION, "!", 1, 1), UVWS_ESTATE);
  assert_int_equal(uvws_send_text(conn, "ok"), 0);
  expect_out("\x01\x03Hel" "\x89\x01p" "\x00\x01l" "\x80\x01o" "\x81\x02ok", 18);
  assert_int_equal(uvws_close(conn, 1000, ""), 0);
  assert_int_equal(uvws_send_fragment(conn, UVWS_OP_TEXT, "x", 1, 1), UVWS_ECLOSED);
}

/* Abort: no close frame, the stream closed at once, on_close (1006) only
 * from the transport's close callback. */
static void test_abort_closes_without_a_close_frame(void **state) {
  (void)state;
  ws_open(NULL, 0);
  assert_int_equal(uvws_send_text(conn, "hi"), 0);
  assert_int_equal(uvws_conn_abort(conn), 0);
  assert_int_equal(f.closed, 1);
  assert_int_equal(closes, 0);
  assert_int_equal(uvws_conn_abort(conn), UVWS_ECLOSED);
  assert_int_equal(uvws_send_text(conn, "after"), UVWS_ECLOSED);
  expect_out("\x81\x02hi", 4); /* no close frame */
  fake_stream_free(&f);
  opened = 0;
  assert_int_equal(closes, 1);
  assert_int_equal(close_code, 1006);
}

/* Raw bytes go out exactly as given, bounded, and not after a close. */
static void test_send_raw_writes_the_bytes_as_given(void **state) {
  static const uint8_t reserved_opcode[] = {0x83, 0x02, 'h', 'i'};
  uint8_t big[UVWS_RAW_MAX + 1];
  (void)state;
  memset(big, 0, sizeof(big));
  ws_open(NULL, 0);
  assert_int_equal(uvws_conn_send_raw(conn, reserved_opcode, 0), UV_EINVAL);
  assert_int_equal(uvws_conn_send_raw(conn, big, sizeof(big)), UV_EINVAL);
  assert_int_equal(uvws_conn_send_raw(conn, reserved_opcode, sizeof(reserved_opcode)), 0);
  expect_out(reserved_opcode, sizeof(reserved_opcode));
  assert_int_equal(uvws_close(conn, 1000, ""), 0);
  assert_int_equal(uvws_conn_send_raw(conn, reserved_opcode, sizeof(reserved_opcode)), UVWS_ECLOSED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_text_message_reaches_on_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_stops_reading_and_the_keepalive_until_resumed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_echo_is_an_unmasked_frame, setup, teardown),
      cmocka_unit_test_setup_teardown(test_echo_of_200_bytes_uses_a_16_bit_length, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ping_is_answered_with_pong, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_is_echoed_then_finish_and_on_close_reports_the_code, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_close_without_code_is_answered_1000, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unmasked_frame_fails_with_1002_and_finish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_read_hands_over_64_messages_the_rest_next_turn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_read_answers_64_pings_the_rest_next_turn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_route_pause_stops_the_messages_already_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure_drop_then_one_on_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop_route_keeps_the_queue_under_the_high_mark, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop_route_sends_a_big_message_on_an_empty_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure_without_drop_closes_1013, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_open_sees_the_request_and_not_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fragmented_message_is_reassembled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ping_between_fragments_is_answered_and_the_message_kept, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_frames_split_into_one_byte_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rest_after_the_upgrade_is_fed_after_on_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_waits_for_the_peers_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_eof_without_close_reports_1006, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_fragment_with_a_ping_between, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort_closes_without_a_close_frame, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_raw_writes_the_bytes_as_given, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

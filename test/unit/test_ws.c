/* Unit tests for the WebSocket protocol engine (src/ws.c): frame rules,
 * message boundaries, UTF-8 of text messages, limits, control frames and
 * the close payload. The engine is driven with hand-built client frames
 * and its callbacks record what it reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ws.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };
enum { FIN = 0x80, RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10 };

/* ---- recording callbacks ------------------------------------------------- */

#define MAX_EVENTS 64
#define MAX_CALLS 4096
#define MAX_MSG 120000

typedef struct {
  char kind; /* 'M' complete message, 'C' control frame */
  int opcode;
  uint8_t *data;
  size_t len;
} event_t;

typedef struct {
  int opcode;
  size_t len;
  int first, fin;
} call_t;

/* One on_frame call. */
typedef struct {
  uvws__frame_header_t h;
  uint8_t head[UVWS__WS_PEEK];
  size_t head_len;
} frame_rec_t;

typedef struct {
  event_t events[MAX_EVENTS];
  frame_rec_t frames[MAX_EVENTS];
  size_t nframes;
  char seq[MAX_CALLS]; /* 'D' on_data, 'C' on_control, 'F' on_frame */
  size_t nseq;
  size_t nevents;
  call_t calls[MAX_CALLS]; /* every on_data call */
  size_t ncalls;
  size_t ncontrol;
  /* the message being reassembled */
  uint8_t *cur;
  size_t cur_len;
  int cur_open, cur_opcode;
  /* stopping: return `stop_value` from callback number `stop_at` (1-based),
   * or from every callback when stop_every is set */
  int stop_every;
  size_t stop_at;
  int stop_value;
  size_t ncallbacks;
} rec_t;

static void rec_init(rec_t *r) {
  memset(r, 0, sizeof(*r));
  r->cur = malloc(MAX_MSG);
  assert_non_null(r->cur);
  r->stop_value = 1;
}

static void rec_free(rec_t *r) {
  size_t i;
  for (i = 0; i < r->nevents; i++) free(r->events[i].data);
  free(r->cur);
}

static void push_event(rec_t *r, char kind, int opcode, const uint8_t *p, size_t len) {
  event_t *e;
  assert_true(r->nevents < MAX_EVENTS);
  e = &r->events[r->nevents++];
  e->kind = kind;
  e->opcode = opcode;
  e->len = len;
  e->data = malloc(len + 1);
  assert_non_null(e->data);
  if (len) memcpy(e->data, p, len);
}

static int stop_now(rec_t *r) {
  r->ncallbacks++;
  if (r->stop_every || r->ncallbacks == r->stop_at) return r->stop_value;
  return 0;
}

static void log_seq(rec_t *r, char c) {
  assert_true(r->nseq < MAX_CALLS);
  r->seq[r->nseq++] = c;
}

static int on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin) {
  rec_t *r = ws->data;
  assert_non_null(p); /* even for zero bytes */
  log_seq(r, 'D');
  assert_true(opcode == OP_TEXT || opcode == OP_BINARY);
  assert_true(r->ncalls < MAX_CALLS);
  r->calls[r->ncalls].opcode = opcode;
  r->calls[r->ncalls].len = len;
  r->calls[r->ncalls].first = first;
  r->calls[r->ncalls].fin = fin;
  r->ncalls++;
  /* `first` exactly when no message is open. */
  if (first) {
    assert_false(r->cur_open);
    r->cur_open = 1;
    r->cur_opcode = opcode;
    r->cur_len = 0;
  } else {
    assert_true(r->cur_open);
    assert_int_equal(opcode, r->cur_opcode);
  }
  assert_true(r->cur_len + len <= MAX_MSG);
  if (len) memcpy(r->cur + r->cur_len, p, len);
  r->cur_len += len;
  if (fin) {
    push_event(r, 'M', opcode, r->cur, r->cur_len);
    r->cur_open = 0;
  }
  return stop_now(r);
}

static int on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len) {
  rec_t *r = ws->data;
  assert_non_null(p); /* even for zero bytes */
  log_seq(r, 'C');
  assert_true(opcode == OP_CLOSE || opcode == OP_PING || opcode == OP_PONG);
  assert_true(len <= 125);
  r->ncontrol++;
  push_event(r, 'C', opcode, p, len);
  return stop_now(r);
}

static void on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                     size_t head_len) {
  rec_t *r = ws->data;
  frame_rec_t *f;
  log_seq(r, 'F');
  assert_non_null(h);
  assert_non_null(head);
  assert_true(head_len <= UVWS__WS_PEEK);
  assert_true(head_len <= h->len);
  assert_true(r->nframes < MAX_EVENTS);
  f = &r->frames[r->nframes++];
  f->h = *h;
  f->head_len = head_len;
  if (head_len) memcpy(f->head, head, head_len);
}

static const uvws__ws_callbacks_t callbacks = {
    .on_data = on_data, .on_control = on_control, .on_frame = NULL};
static const uvws__ws_callbacks_t traced_callbacks = {
    .on_data = on_data, .on_control = on_control, .on_frame = on_frame};

static void engine_init(uvws__ws_t *ws, rec_t *r, uint64_t max_message) {
  rec_init(r);
  uvws__ws_init(ws, &callbacks, r, max_message);
}

static void engine_init_traced(uvws__ws_t *ws, rec_t *r, uint64_t max_message) {
  rec_init(r);
  uvws__ws_init(ws, &traced_callbacks, r, max_message);
}

/* ---- a client frame builder, independent of frame.c ---------------------- */

static const uint8_t key1[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a frame with first byte `b0` (FIN | RSV | opcode) and the given
 * payload, masked with `mask` (NULL: unmasked). The length field says
 * `declared`, which may differ from the payload actually written. */
static size_t put_frame_len(uint8_t *out, int b0, const void *payload, size_t len,
                            uint64_t declared, const uint8_t *mask) {
  size_t n = 0, i;
  const uint8_t *src = payload;
  out[n++] = (uint8_t)b0;
  if (declared < 126) {
    out[n++] = (uint8_t)((mask ? 0x80 : 0) | declared);
  } else if (declared <= 0xffff) {
    out[n++] = (uint8_t)((mask ? 0x80 : 0) | 126);
    out[n++] = (uint8_t)(declared >> 8);
    out[n++] = (uint8_t)declared;
  } else {
    out[n++] = (uint8_t)((mask ? 0x80 : 0) | 127);
    for (i = 0; i < 8; i++) out[n++] = (uint8_t)(declared >> (56 - 8 * i));
  }
  if (mask)
    for (i = 0; i < 4; i++) out[n++] = mask[i];
  for (i = 0; i < len; i++) out[n + i] = (uint8_t)(src[i] ^ (mask ? mask[i & 3] : 0));
  return n + len;
}

static size_t put_frame(uint8_t *out, int b0, const void *payload, size_t len) {
  return put_frame_len(out, b0, payload, len, len, key1);
}

/* A wire buffer built frame by frame. */
typedef struct {
  uint8_t buf[8192];
  size_t len;
} wire_t;

static void add(wire_t *w, int b0, const void *payload, size_t len) {
  assert_true(w->len + len + 14 <= sizeof(w->buf));
  w->len += put_frame(w->buf + w->len, b0, payload, len);
}

static void add_str(wire_t *w, int b0, const char *s) { add(w, b0, s, strlen(s)); }

/* Feeds a whole wire (a copy: the engine unmasks in place). */
static long feed_copy(uvws__ws_t *ws, const wire_t *w) {
  uint8_t *copy = malloc(w->len + 1);
  long r;
  assert_non_null(copy);
  memcpy(copy, w->buf, w->len);
  r = uvws__ws_feed(ws, copy, w->len);
  free(copy);
  return r;
}

/* Runs a wire through a fresh engine and expects failure with `code`,
 * and no callback at all when `no_events` is set. */
static void expect_fail(const wire_t *w, uint16_t code, uint64_t max_message, int no_events) {
  uvws__ws_t ws;
  rec_t r;
  engine_init(&ws, &r, max_message);
  assert_int_equal(feed_copy(&ws, w), UVWS__WS_EFAIL);
  assert_int_equal(ws.fail_code, code);
  assert_non_null(ws.fail_reason);
  if (no_events) {
    assert_int_equal(r.ncalls, 0);
    assert_int_equal(r.ncontrol, 0);
  }
  rec_free(&r);
}

/* ---- frame rules --------------------------------------------------------- */

static void test_unmasked_frame_fails(void **state) {
  wire_t w = {{0}, 0};
  (void)state;
  w.len = put_frame_len(w.buf, FIN | OP_TEXT, "hi", 2, 2, NULL);
  expect_fail(&w, 1002, 0, 1);
  w.len = put_frame_len(w.buf, FIN | OP_PING, "", 0, 0, NULL);
  expect_fail(&w, 1002, 0, 1);
  /* The header alone is enough to fail. */
  w.len = put_frame_len(w.buf, FIN | OP_BINARY, "x", 1, 1, NULL) - 1;
  expect_fail(&w, 1002, 0, 1);
}

static void test_rsv_bits_fail(void **state) {
  static const int rsv[] = {RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3};
  static const int ops[] = {OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE};
  size_t i, j;
  (void)state;
  for (i = 0; i < NELEM(rsv); i++) {
    for (j = 0; j < NELEM(ops); j++) {
      wire_t w = {{0}, 0};
      add_str(&w, FIN | rsv[i] | ops[j], "ok");
      expect_fail(&w, 1002, 0, 1);
    }
  }
  /* On a continuation frame too. */
  {
    wire_t w = {{0}, 0};
    add_str(&w, OP_TEXT, "a");
    add_str(&w, FIN | RSV1 | OP_CONT, "b");
    expect_fail(&w, 1002, 0, 0);
  }
}

static void test_reserved_opcodes_fail(void **state) {
  static const int ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(ops); i++) {
    wire_t w = {{0}, 0};
    add_str(&w, FIN | ops[i], "x");
    expect_fail(&w, 1002, 0, 1);
    /* Empty payload, and not final. */
    w.len = 0;
    add_str(&w, ops[i], "");
    expect_fail(&w, 1002, 0, 1);
  }
  /* In the middle of a fragmented message. */
  {
    wire_t w = {{0}, 0};
    add_str(&w, OP_BINARY, "a");
    add_str(&w, FIN | 0x5, "b");
    expect_fail(&w, 1002, 0, 0);
  }
}

static void test_control_frame_too_long(void **state) {
  uint8_t payload[126];
  static const int ops[] = {OP_PING, OP_PONG, OP_CLOSE};
  size_t i;
  (void)state;
  memset(payload, 'p', sizeof(payload));
  for (i = 0; i < NELEM(ops); i++) {
    wire_t w = {{0}, 0};
    add(&w, FIN | ops[i], payload, 126);
    expect_fail(&w, 1002, 0, 1);
    /* Decided by the header alone: 2 + 2 + 4 bytes. */
    w.len = 8;
    expect_fail(&w, 1002, 0, 1);
  }
  /* 125 bytes is the maximum and fine, fed byte by byte. */
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    for (i = 0; i < 125; i++) payload[i] = (uint8_t)i;
    add(&w, FIN | OP_PING, payload, 125);
    engine_init(&ws, &r, 0);
    for (i = 0; i < w.len; i++) assert_int_equal(uvws__ws_feed(&ws, w.buf + i, 1), 1);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.events[0].kind, 'C');
    assert_int_equal(r.events[0].opcode, OP_PING);
    assert_int_equal(r.events[0].len, 125);
    assert_memory_equal(r.events[0].data, payload, 125);
    rec_free(&r);
  }
}

static void test_fragmented_control_fails(void **state) {
  static const int ops[] = {OP_PING, OP_PONG, OP_CLOSE};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(ops); i++) {
    wire_t w = {{0}, 0};
    add_str(&w, ops[i], "frag");
    expect_fail(&w, 1002, 0, 1);
  }
}

static void test_continuation_without_message(void **state) {
  wire_t w = {{0}, 0};
  (void)state;
  add_str(&w, FIN | OP_CONT, "x");
  expect_fail(&w, 1002, 0, 1);
  w.len = 0;
  add_str(&w, OP_CONT, "");
  expect_fail(&w, 1002, 0, 1);
  /* After a complete message. */
  w.len = 0;
  add_str(&w, FIN | OP_TEXT, "done");
  add_str(&w, FIN | OP_CONT, "more");
  {
    uvws__ws_t ws;
    rec_t r;
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1002);
    assert_int_equal(r.nevents, 1);
    rec_free(&r);
  }
}

static void test_new_message_inside_fragmented(void **state) {
  wire_t w = {{0}, 0};
  (void)state;
  add_str(&w, OP_TEXT, "part");
  add_str(&w, FIN | OP_TEXT, "new");
  expect_fail(&w, 1002, 0, 0);
  w.len = 0;
  add_str(&w, OP_BINARY, "part");
  add_str(&w, OP_TEXT, "new");
  expect_fail(&w, 1002, 0, 0);
  w.len = 0;
  add_str(&w, OP_TEXT, "part");
  add_str(&w, FIN | OP_BINARY, "new");
  expect_fail(&w, 1002, 0, 0);
}

static void test_top_bit_length_fails(void **state) {
  wire_t w = {{0}, 0};
  (void)state;
  w.len = put_frame_len(w.buf, FIN | OP_BINARY, "", 0, 1ull << 63, key1);
  expect_fail(&w, 1002, 0, 1);
}

/* ---- UTF-8 ------------------------------------------------------------------ */

static void test_invalid_utf8_fails(void **state) {
  static const char *bad[] = {"abc\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "\x80", "ok\xe2\x28\xa1"};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(bad); i++) {
    wire_t w = {{0}, 0};
    add_str(&w, FIN | OP_TEXT, bad[i]);
    expect_fail(&w, 1007, 0, 1);
  }
  /* Across fragments: the sequence starts in one frame, breaks in the next. */
  {
    wire_t w = {{0}, 0};
    add_str(&w, OP_TEXT, "x\xe2\x82");
    add_str(&w, FIN | OP_CONT, "(");
    expect_fail(&w, 1007, 0, 0);
  }
  /* Binary messages are not checked. */
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add_str(&w, FIN | OP_BINARY, "\xff\xfe\xc0");
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.events[0].len, 3);
    rec_free(&r);
  }
  /* Close and ping payloads are the caller's business. */
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add_str(&w, FIN | OP_PING, "\xff");
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.ncontrol, 1);
    rec_free(&r);
  }
}

/* The failure comes with the piece that holds the bad byte, long before the
 * frame (and the message) ends. */
static void test_invalid_utf8_fails_fast(void **state) {
  char text[200];
  wire_t w = {{0}, 0};
  const size_t bad_at = 93, hdr = 2 + 2 + 4;
  size_t off, piece = 10;
  uvws__ws_t ws;
  rec_t r;
  int failed = 0;
  (void)state;
  memset(text, 'a', sizeof(text));
  text[bad_at] = (char)0xff;
  add(&w, OP_TEXT, text, sizeof(text)); /* not even FIN */
  assert_int_equal(w.len, hdr + sizeof(text));
  engine_init(&ws, &r, 0);
  for (off = 0; off < w.len; off += piece) {
    size_t n = w.len - off < piece ? w.len - off : piece;
    long res = uvws__ws_feed(&ws, w.buf + off, n);
    if (off + n <= hdr + bad_at) {
      assert_int_equal(res, (long)n);
    } else {
      assert_int_equal(res, UVWS__WS_EFAIL);
      assert_int_equal(ws.fail_code, 1007);
      assert_true(off <= hdr + bad_at);
      failed = 1;
      break;
    }
  }
  assert_true(failed);
  /* Only valid chunks were reported, and the message never completed. */
  assert_int_equal(r.nevents, 0);
  {
    size_t i, total = 0;
    for (i = 0; i < r.ncalls; i++) total += r.calls[i].len;
    assert_true(total <= bad_at);
    assert_memory_equal(r.cur, text, total);
  }
  rec_free(&r);

  /* The same, with the bad byte after an ASCII run fed whole. */
  engine_init(&ws, &r, 0);
  assert_int_equal(uvws__ws_feed(&ws, w.buf, hdr + bad_at + 1), UVWS__WS_EFAIL);
  assert_int_equal(ws.fail_code, 1007);
  rec_free(&r);
}

static void test_text_ending_mid_sequence(void **state) {
  (void)state;
  {
    wire_t w = {{0}, 0};
    add_str(&w, FIN | OP_TEXT, "a\xe2\x82");
    expect_fail(&w, 1007, 0, 1);
  }
  {
    wire_t w = {{0}, 0};
    add_str(&w, OP_TEXT, "\xe2");
    add_str(&w, FIN | OP_CONT, "\x82");
    expect_fail(&w, 1007, 0, 0);
  }
  {
    /* An empty final fragment leaves the character unfinished. */
    wire_t w = {{0}, 0};
    add_str(&w, OP_TEXT, "\xf0\x9f\x98");
    add_str(&w, FIN | OP_CONT, "");
    expect_fail(&w, 1007, 0, 0);
  }
  {
    /* A character split across fragments is fine. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add_str(&w, OP_TEXT, "\xe2");
    add_str(&w, OP_CONT, "\x82");
    add_str(&w, FIN | OP_CONT, "\xac!");
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.events[0].len, 4);
    assert_memory_equal(r.events[0].data, "\xe2\x82\xac!", 4);
    rec_free(&r);
  }
}

/* A text message's UTF-8 state does not leak into the next message. */
static void test_utf8_state_reset_per_message(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  (void)state;
  add_str(&w, FIN | OP_BINARY, "\xe2\x82"); /* binary: not validated */
  add_str(&w, FIN | OP_TEXT, "ok");
  add_str(&w, FIN | OP_TEXT, "\xc3\xa9");
  engine_init(&ws, &r, 0);
  assert_int_equal(feed_copy(&ws, &w), (long)w.len);
  assert_int_equal(r.nevents, 3);
  rec_free(&r);
}

/* ---- size limit ------------------------------------------------------------ */

static void test_max_message_declared_length(void **state) {
  uint8_t payload[300];
  (void)state;
  memset(payload, 'z', sizeof(payload));
  {
    /* Only the header is fed: the limit is enforced before any payload. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | OP_BINARY, payload, 101);
    engine_init(&ws, &r, 100);
    assert_int_equal(uvws__ws_feed(&ws, w.buf, 6), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1009);
    assert_int_equal(r.ncalls, 0);
    rec_free(&r);
  }
  {
    /* A huge declared length with no payload at all. */
    wire_t w = {{0}, 0};
    w.len = put_frame_len(w.buf, FIN | OP_TEXT, "", 0, 1ull << 40, key1);
    expect_fail(&w, 1009, 1u << 20, 1);
  }
  {
    /* Exactly the limit is fine. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | OP_BINARY, payload, 100);
    engine_init(&ws, &r, 100);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.events[0].len, 100);
    rec_free(&r);
  }
  {
    /* No limit: 0. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | OP_BINARY, payload, 300);
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 1);
    rec_free(&r);
  }
}

static void test_max_message_fragmented_sum(void **state) {
  uint8_t payload[100];
  (void)state;
  memset(payload, 'q', sizeof(payload));
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    size_t first_len;
    add(&w, OP_TEXT, payload, 60);
    first_len = w.len;
    add(&w, FIN | OP_CONT, payload, 41);
    engine_init(&ws, &r, 100);
    assert_int_equal(uvws__ws_feed(&ws, w.buf, first_len), (long)first_len);
    assert_int_equal(r.ncalls, 1);
    /* The second header alone trips the limit. */
    assert_int_equal(uvws__ws_feed(&ws, w.buf + first_len, 6), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1009);
    assert_int_equal(r.ncalls, 1);
    assert_int_equal(r.nevents, 0);
    rec_free(&r);
  }
  {
    /* Sum exactly at the limit, with control frames in between that do not
     * count, then a second message that again may use the whole limit. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, OP_BINARY, payload, 60);
    add(&w, FIN | OP_PING, payload, 50);
    add(&w, FIN | OP_CONT, payload, 40);
    add(&w, FIN | OP_BINARY, payload, 100);
    engine_init(&ws, &r, 100);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 3);
    assert_int_equal(r.events[0].kind, 'C');
    assert_int_equal(r.events[1].len, 100);
    assert_int_equal(r.events[2].len, 100);
    rec_free(&r);
  }
  {
    wire_t w = {{0}, 0};
    add(&w, OP_BINARY, payload, 50);
    add(&w, OP_CONT, payload, 50);
    add(&w, FIN | OP_CONT, payload, 1);
    expect_fail(&w, 1009, 100, 0);
  }
}

/* ---- message reporting -------------------------------------------------------- */

static void test_empty_message(void **state) {
  static const int ops[] = {OP_TEXT, OP_BINARY};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(ops); i++) {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add_str(&w, FIN | ops[i], "");
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.ncalls, 1);
    assert_int_equal(r.calls[0].opcode, ops[i]);
    assert_int_equal(r.calls[0].len, 0);
    assert_int_equal(r.calls[0].first, 1);
    assert_int_equal(r.calls[0].fin, 1);
    assert_int_equal(r.nevents, 1);
    rec_free(&r);
  }
  {
    /* Empty fragments only: still one call. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add_str(&w, OP_TEXT, "");
    add_str(&w, OP_CONT, "");
    add_str(&w, FIN | OP_CONT, "");
    engine_init(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.ncalls, 1);
    assert_int_equal(r.calls[0].len, 0);
    assert_int_equal(r.calls[0].first, 1);
    assert_int_equal(r.calls[0].fin, 1);
    assert_int_equal(r.calls[0].opcode, OP_TEXT);
    rec_free(&r);
  }
}

static void test_fragmented_message_flags(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  size_t i;
  (void)state;
  add_str(&w, OP_TEXT, "Hel");
  add_str(&w, OP_CONT, "lo");
  add_str(&w, OP_CONT, "");
  add_str(&w, OP_CONT, ", wor");
  add_str(&w, FIN | OP_CONT, "ld");
  engine_init(&ws, &r, 0);
  assert_int_equal(feed_copy(&ws, &w), (long)w.len);
  assert_true(r.ncalls >= 2);
  for (i = 0; i < r.ncalls; i++) {
    assert_int_equal(r.calls[i].opcode, OP_TEXT);
    assert_int_equal(r.calls[i].first, i == 0);
    assert_int_equal(r.calls[i].fin, i == r.ncalls - 1);
  }
  assert_int_equal(r.nevents, 1);
  assert_int_equal(r.events[0].len, 12);
  assert_memory_equal(r.events[0].data, "Hello, world", 12);
  rec_free(&r);

  /* Fed byte by byte: more calls, same flags rule. */
  engine_init(&ws, &r, 0);
  {
    uint8_t copy[sizeof(w.buf)];
    memcpy(copy, w.buf, w.len);
    for (i = 0; i < w.len; i++) assert_int_equal(uvws__ws_feed(&ws, copy + i, 1), 1);
  }
  assert_true(r.ncalls >= 12);
  for (i = 0; i < r.ncalls; i++) {
    assert_int_equal(r.calls[i].first, i == 0);
    assert_int_equal(r.calls[i].fin, i == r.ncalls - 1);
  }
  assert_int_equal(r.nevents, 1);
  assert_memory_equal(r.events[0].data, "Hello, world", 12);
  rec_free(&r);
}

static void test_control_between_fragments(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  (void)state;
  add_str(&w, OP_BINARY, "one");
  add_str(&w, FIN | OP_PING, "p1");
  add_str(&w, OP_CONT, "two");
  add_str(&w, FIN | OP_PONG, "");
  add_str(&w, FIN | OP_CONT, "three");
  add_str(&w, FIN | OP_CLOSE, "\x03\xe8" "bye");
  engine_init(&ws, &r, 0);
  assert_int_equal(feed_copy(&ws, &w), (long)w.len);
  assert_int_equal(r.nevents, 4);
  assert_int_equal(r.events[0].kind, 'C');
  assert_int_equal(r.events[0].opcode, OP_PING);
  assert_int_equal(r.events[0].len, 2);
  assert_memory_equal(r.events[0].data, "p1", 2);
  assert_int_equal(r.events[1].kind, 'C');
  assert_int_equal(r.events[1].opcode, OP_PONG);
  assert_int_equal(r.events[1].len, 0);
  assert_int_equal(r.events[2].kind, 'M');
  assert_int_equal(r.events[2].opcode, OP_BINARY);
  assert_int_equal(r.events[2].len, 11);
  assert_memory_equal(r.events[2].data, "onetwothree", 11);
  assert_int_equal(r.events[3].kind, 'C');
  assert_int_equal(r.events[3].opcode, OP_CLOSE);
  assert_int_equal(r.events[3].len, 5);
  assert_memory_equal(r.events[3].data, "\x03\xe8" "bye", 5);
  /* The ping came while the message had been reported only in part. */
  assert_int_equal(r.calls[0].first, 1);
  assert_int_equal(r.calls[0].fin, 0);
  rec_free(&r);
}

/* ---- one stream, split anywhere --------------------------------------------- */

static void build_mixed_stream(wire_t *w) {
  uint8_t big[300];
  size_t i;
  for (i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7);
  w->len = 0;
  add_str(w, FIN | OP_TEXT, "Hello");
  add(w, OP_BINARY, big, 130);
  add_str(w, FIN | OP_PING, "are you there");
  add(w, OP_CONT, big + 130, 0);
  add(w, OP_CONT, big + 130, 170);
  add_str(w, FIN | OP_PONG, "");
  add(w, FIN | OP_CONT, big, 1);
  add_str(w, FIN | OP_TEXT, "");
  add_str(w, OP_TEXT, "caf\xc3");
  add_str(w, OP_CONT, "\xa9 \xe2\x82");
  add_str(w, FIN | OP_CONT, "\xac \xf0\x9f\x98\x80");
  add_str(w, FIN | OP_CLOSE, "\x03\xe8" "done");
}

static void expect_mixed_events(const rec_t *r) {
  uint8_t big[301];
  size_t i;
  for (i = 0; i < 300; i++) big[i] = (uint8_t)(i * 7);
  big[300] = big[0];
  assert_int_equal(r->nevents, 7);
  assert_int_equal(r->events[0].kind, 'M');
  assert_int_equal(r->events[0].opcode, OP_TEXT);
  assert_int_equal(r->events[0].len, 5);
  assert_memory_equal(r->events[0].data, "Hello", 5);
  assert_int_equal(r->events[1].kind, 'C');
  assert_int_equal(r->events[1].opcode, OP_PING);
  assert_int_equal(r->events[1].len, 13);
  assert_memory_equal(r->events[1].data, "are you there", 13);
  assert_int_equal(r->events[2].kind, 'C');
  assert_int_equal(r->events[2].opcode, OP_PONG);
  assert_int_equal(r->events[2].len, 0);
  assert_int_equal(r->events[3].kind, 'M');
  assert_int_equal(r->events[3].opcode, OP_BINARY);
  assert_int_equal(r->events[3].len, 301);
  assert_memory_equal(r->events[3].data, big, 301);
  assert_int_equal(r->events[4].kind, 'M');
  assert_int_equal(r->events[4].opcode, OP_TEXT);
  assert_int_equal(r->events[4].len, 0);
  assert_int_equal(r->events[5].kind, 'M');
  assert_int_equal(r->events[5].opcode, OP_TEXT);
  assert_int_equal(r->events[5].len, 14);
  assert_memory_equal(r->events[5].data, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
  assert_int_equal(r->events[6].kind, 'C');
  assert_int_equal(r->events[6].opcode, OP_CLOSE);
  assert_int_equal(r->events[6].len, 6);
  assert_memory_equal(r->events[6].data, "\x03\xe8" "done", 6);
}

static void test_stream_split_everywhere(void **state) {
  static wire_t w;
  static uint8_t copy[sizeof(w.buf)];
  size_t cut;
  (void)state;
  build_mixed_stream(&w);
  for (cut = 0; cut <= w.len; cut++) {
    uvws__ws_t ws;
    rec_t r;
    memcpy(copy, w.buf, w.len);
    engine_init(&ws, &r, 1000);
    assert_int_equal(uvws__ws_feed(&ws, copy, cut), (long)cut);
    assert_int_equal(uvws__ws_feed(&ws, copy + cut, w.len - cut), (long)(w.len - cut));
    expect_mixed_events(&r);
    rec_free(&r);
  }
}

static void test_stream_two_cuts_and_bytewise(void **state) {
  static wire_t w;
  static uint8_t copy[sizeof(w.buf)];
  size_t c1, c2, i;
  (void)state;
  build_mixed_stream(&w);
  for (c1 = 0; c1 <= w.len; c1 += 7) {
    for (c2 = c1; c2 <= w.len; c2 += 11) {
      uvws__ws_t ws;
      rec_t r;
      memcpy(copy, w.buf, w.len);
      engine_init(&ws, &r, 0);
      assert_int_equal(uvws__ws_feed(&ws, copy, c1), (long)c1);
      assert_int_equal(uvws__ws_feed(&ws, copy + c1, c2 - c1), (long)(c2 - c1));
      assert_int_equal(uvws__ws_feed(&ws, copy + c2, w.len - c2), (long)(w.len - c2));
      expect_mixed_events(&r);
      rec_free(&r);
    }
  }
  {
    uvws__ws_t ws;
    rec_t r;
    memcpy(copy, w.buf, w.len);
    engine_init(&ws, &r, 0);
    for (i = 0; i < w.len; i++) assert_int_equal(uvws__ws_feed(&ws, copy + i, 1), 1);
    expect_mixed_events(&r);
    rec_free(&r);
  }
}

/* ---- stopping from a callback ---------------------------------------------------- */

static void test_callback_stops_feed(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  size_t f1, f2, f3;
  long res;
  (void)state;
  add_str(&w, FIN | OP_TEXT, "ab");
  f1 = w.len;
  add_str(&w, FIN | OP_PING, "");
  f2 = w.len;
  add_str(&w, FIN | OP_BINARY, "cd");
  f3 = w.len;
  engine_init(&ws, &r, 0);
  r.stop_every = 1;
  r.stop_value = 7;
  /* Each feed stops right after the frame whose callback asked to. */
  res = uvws__ws_feed(&ws, w.buf, w.len);
  assert_int_equal(res, (long)f1);
  assert_int_equal(r.nevents, 1);
  res = uvws__ws_feed(&ws, w.buf + f1, w.len - f1);
  assert_int_equal(res, (long)(f2 - f1));
  assert_int_equal(r.nevents, 2);
  res = uvws__ws_feed(&ws, w.buf + f2, w.len - f2);
  assert_int_equal(res, (long)(f3 - f2));
  assert_int_equal(r.nevents, 3);
  assert_int_equal(r.events[0].kind, 'M');
  assert_memory_equal(r.events[0].data, "ab", 2);
  assert_int_equal(r.events[1].kind, 'C');
  assert_int_equal(r.events[2].kind, 'M');
  assert_memory_equal(r.events[2].data, "cd", 2);
  rec_free(&r);
}

/* Stopping in the middle of a frame's payload: the return value ends at the
 * reported chunk and the rest can be fed again. */
static void test_callback_stops_mid_frame(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  long res;
  (void)state;
  add_str(&w, FIN | OP_TEXT, "0123456789");
  engine_init(&ws, &r, 0);
  r.stop_at = 1;
  /* header (6 bytes) + 4 payload bytes */
  res = uvws__ws_feed(&ws, w.buf, 10);
  assert_int_equal(res, 10);
  assert_int_equal(r.ncalls, 1);
  assert_int_equal(r.calls[0].len, 4);
  res = uvws__ws_feed(&ws, w.buf + 10, w.len - 10);
  assert_int_equal(res, (long)(w.len - 10));
  assert_int_equal(r.nevents, 1);
  assert_memory_equal(r.events[0].data, "0123456789", 10);
  rec_free(&r);
}

/* Stopping after every callback over the mixed stream, resuming each time,
 * gives the same events as one feed. */
static void test_callback_stops_everywhere(void **state) {
  static wire_t w;
  size_t off = 0, rounds = 0;
  uvws__ws_t ws;
  rec_t r;
  (void)state;
  build_mixed_stream(&w);
  engine_init(&ws, &r, 0);
  r.stop_every = 1;
  while (off < w.len) {
    long res = uvws__ws_feed(&ws, w.buf + off, w.len - off);
    assert_true(res > 0);
    off += (size_t)res;
    assert_true(++rounds < 1000);
  }
  assert_int_equal(off, w.len);
  assert_int_equal(rounds, r.ncallbacks);
  expect_mixed_events(&r);
  rec_free(&r);
}

/* ---- the optional tracing hook ----------------------------------------------------- */

static void test_on_frame_whole_feed(void **state) {
  wire_t w = {{0}, 0};
  uvws__ws_t ws;
  rec_t r;
  uint8_t big[40];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(100 + i);
  add_str(&w, FIN | OP_TEXT, "Hello");
  add(&w, OP_BINARY, big, sizeof(big));
  add_str(&w, FIN | OP_PING, "p");
  add_str(&w, FIN | OP_CONT, "");
  engine_init_traced(&ws, &r, 0);
  assert_int_equal(feed_copy(&ws, &w), (long)w.len);
  /* Once per frame, before that frame's (last) callback. */
  assert_int_equal(r.nseq, 8);
  assert_memory_equal(r.seq, "FDFDFCFD", 8);
  assert_int_equal(r.nframes, 4);

  assert_int_equal(r.frames[0].h.opcode, OP_TEXT);
  assert_int_equal(r.frames[0].h.fin, 1);
  assert_int_equal(r.frames[0].h.masked, 1);
  assert_memory_equal(r.frames[0].h.mask, key1, 4);
  assert_int_equal(r.frames[0].h.len, 5);
  assert_int_equal(r.frames[0].head_len, 5);
  assert_memory_equal(r.frames[0].head, "Hello", 5);

  assert_int_equal(r.frames[1].h.opcode, OP_BINARY);
  assert_int_equal(r.frames[1].h.fin, 0);
  assert_int_equal(r.frames[1].h.len, 40);
  assert_int_equal(r.frames[1].head_len, UVWS__WS_PEEK);
  assert_memory_equal(r.frames[1].head, big, UVWS__WS_PEEK); /* unmasked */

  assert_int_equal(r.frames[2].h.opcode, OP_PING);
  assert_int_equal(r.frames[2].head_len, 1);
  assert_memory_equal(r.frames[2].head, "p", 1);

  assert_int_equal(r.frames[3].h.opcode, OP_CONT);
  assert_int_equal(r.frames[3].h.len, 0);
  assert_int_equal(r.frames[3].head_len, 0);

  /* The hook does not change what the other callbacks see. */
  assert_int_equal(r.nevents, 3);
  assert_int_equal(r.events[0].len, 5);
  assert_memory_equal(r.events[0].data, "Hello", 5);
  assert_int_equal(r.events[1].kind, 'C');
  assert_int_equal(r.events[2].kind, 'M');
  assert_int_equal(r.events[2].len, 40);
  assert_memory_equal(r.events[2].data, big, 40);
  assert_int_equal(r.ncalls, 3);
  assert_int_equal(r.calls[2].len, 0);
  assert_int_equal(r.calls[2].fin, 1);
  rec_free(&r);
}

/* Fed in every split and byte by byte, the trace is the same. */
static void test_on_frame_split_everywhere(void **state) {
  static wire_t w;
  static uint8_t copy[sizeof(w.buf)];
  rec_t ref;
  uvws__ws_t ws;
  size_t cut, i;
  (void)state;
  build_mixed_stream(&w);
  memcpy(copy, w.buf, w.len);
  engine_init_traced(&ws, &ref, 0);
  assert_int_equal(uvws__ws_feed(&ws, copy, w.len), (long)w.len);
  expect_mixed_events(&ref);
  assert_int_equal(ref.nframes, 12);
  for (cut = 0; cut <= w.len + 1; cut++) {
    rec_t r;
    memcpy(copy, w.buf, w.len);
    engine_init_traced(&ws, &r, 0);
    if (cut <= w.len) {
      assert_int_equal(uvws__ws_feed(&ws, copy, cut), (long)cut);
      assert_int_equal(uvws__ws_feed(&ws, copy + cut, w.len - cut), (long)(w.len - cut));
    } else {
      for (i = 0; i < w.len; i++) assert_int_equal(uvws__ws_feed(&ws, copy + i, 1), 1);
    }
    expect_mixed_events(&r);
    assert_int_equal(r.nframes, ref.nframes);
    for (i = 0; i < r.nframes; i++) {
      assert_int_equal(r.frames[i].h.fin, ref.frames[i].h.fin);
      assert_int_equal(r.frames[i].h.opcode, ref.frames[i].h.opcode);
      assert_true(r.frames[i].h.len == ref.frames[i].h.len);
      assert_int_equal(r.frames[i].head_len, ref.frames[i].head_len);
      assert_memory_equal(r.frames[i].head, ref.frames[i].head, r.frames[i].head_len);
    }
    rec_free(&r);
  }
  rec_free(&ref);
}

static void test_on_frame_on_header_failure(void **state) {
  uint8_t payload[126];
  (void)state;
  memset(payload, 0, sizeof(payload));
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    w.len = put_frame_len(w.buf, FIN | OP_TEXT, "hi", 2, 2, NULL);
    engine_init_traced(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1002);
    assert_int_equal(r.nframes, 1);
    assert_int_equal(r.frames[0].h.masked, 0);
    assert_int_equal(r.frames[0].h.opcode, OP_TEXT);
    assert_int_equal(r.frames[0].head_len, 0);
    assert_int_equal(r.ncalls, 0);
    rec_free(&r);
  }
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | OP_PING, payload, 126);
    engine_init_traced(&ws, &r, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1002);
    assert_int_equal(r.nframes, 1);
    assert_int_equal(r.frames[0].h.len, 126);
    assert_int_equal(r.ncontrol, 0);
    rec_free(&r);
  }
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | OP_BINARY, payload, 101);
    engine_init_traced(&ws, &r, 100);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1009);
    assert_int_equal(r.nframes, 1);
    rec_free(&r);
  }
}

/* ---- permessage-deflate in the engine (RFC 7692) ---------------------------------- */

static void engine_init_deflate(uvws__ws_t *ws, rec_t *r, uint64_t max_message, int no_takeover) {
  uvws__pmd_params_t p;
  memset(&p, 0, sizeof(p));
  p.client_no_takeover = (uint8_t)no_takeover;
  p.server_no_takeover = (uint8_t)no_takeover;
  p.client_bits = 15;
  p.server_bits = 15;
  engine_init(ws, r, max_message);
  uvws__ws_enable_deflate(ws, &p);
}

static void done(uvws__ws_t *ws, rec_t *r) {
  uvws__ws_free(ws);
  rec_free(r);
}

/* Section 7.2.3.1 and 7.2.3.2: "Hello" compressed, whole and fragmented;
 * then a second "Hello" that refers back into the first (context
 * takeover); then section 7.2.3.3's stored block. */
static void build_deflate_stream(wire_t *w) {
  w->len = 0;
  add(w, FIN | RSV1 | OP_TEXT, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
  add(w, RSV1 | OP_TEXT, "\xf2\x48\xcd", 3);
  add_str(w, FIN | OP_PING, "mid");
  add(w, FIN | OP_CONT, "\xc9\xc9\x07\x00", 4);
  add(w, FIN | OP_BINARY, "plain", 5); /* uncompressed between compressed */
  add(w, FIN | RSV1 | OP_TEXT, "\xf2\x00\x11\x00\x00", 5);
  add(w, FIN | RSV1 | OP_BINARY, "\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11);
}

static void expect_deflate_events(const rec_t *r) {
  assert_int_equal(r->nevents, 6);
  assert_int_equal(r->events[0].kind, 'M');
  assert_int_equal(r->events[0].opcode, OP_TEXT);
  assert_int_equal(r->events[0].len, 5);
  assert_memory_equal(r->events[0].data, "Hello", 5);
  assert_int_equal(r->events[1].kind, 'C');
  assert_int_equal(r->events[1].len, 3);
  assert_int_equal(r->events[2].kind, 'M');
  assert_int_equal(r->events[2].len, 5);
  assert_memory_equal(r->events[2].data, "Hello", 5);
  assert_int_equal(r->events[3].kind, 'M');
  assert_int_equal(r->events[3].opcode, OP_BINARY);
  assert_memory_equal(r->events[3].data, "plain", 5);
  assert_int_equal(r->events[4].kind, 'M');
  assert_int_equal(r->events[4].len, 5);
  assert_memory_equal(r->events[4].data, "Hello", 5);
  assert_int_equal(r->events[5].kind, 'M');
  assert_int_equal(r->events[5].opcode, OP_BINARY);
  assert_int_equal(r->events[5].len, 5);
  assert_memory_equal(r->events[5].data, "Hello", 5);
}

static void test_deflate_rfc7692_examples(void **state) {
  static wire_t w;
  static uint8_t copy[sizeof(w.buf)];
  size_t cut, i;
  (void)state;
  build_deflate_stream(&w);
  for (cut = 0; cut <= w.len + 1; cut++) {
    uvws__ws_t ws;
    rec_t r;
    memcpy(copy, w.buf, w.len);
    engine_init_deflate(&ws, &r, 0, 0);
    if (cut <= w.len) {
      assert_int_equal(uvws__ws_feed(&ws, copy, cut), (long)cut);
      assert_int_equal(uvws__ws_feed(&ws, copy + cut, w.len - cut), (long)(w.len - cut));
    } else {
      for (i = 0; i < w.len; i++) assert_int_equal(uvws__ws_feed(&ws, copy + i, 1), 1);
    }
    expect_deflate_events(&r);
    for (i = 0; i < r.ncalls; i++) {
      /* first/fin discipline holds for inflated chunks too */
      if (i > 0 && r.calls[i].first) assert_true(r.calls[i - 1].fin);
    }
    done(&ws, &r);
  }
}

static void test_deflate_rsv_rules(void **state) {
  (void)state;
  {
    /* RSV1 without the extension. */
    wire_t w = {{0}, 0};
    add(&w, FIN | RSV1 | OP_TEXT, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    expect_fail(&w, 1002, 0, 1);
  }
  {
    /* RSV1 on a control frame, on a continuation, and RSV2/RSV3, with it. */
    static const struct {
      int b0a, b0b;
    } cases[] = {
        {FIN | RSV1 | OP_PING, -1},
        {FIN | RSV1 | OP_CLOSE, -1},
        {FIN | RSV2 | OP_TEXT, -1},
        {FIN | RSV3 | OP_BINARY, -1},
        {OP_BINARY, FIN | RSV1 | OP_CONT},
        {RSV1 | OP_BINARY, FIN | RSV1 | OP_CONT},
    };
    size_t i;
    for (i = 0; i < NELEM(cases); i++) {
      wire_t w = {{0}, 0};
      uvws__ws_t ws;
      rec_t r;
      add(&w, cases[i].b0a, "\x00", 1);
      if (cases[i].b0b >= 0) add(&w, cases[i].b0b, "\x00", 1);
      engine_init_deflate(&ws, &r, 0, 0);
      assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
      assert_int_equal(ws.fail_code, 1002);
      done(&ws, &r);
    }
  }
}

static void test_deflate_bad_data(void **state) {
  (void)state;
  {
    /* Reserved block type 11: zlib rejects it. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | RSV1 | OP_BINARY, "\xff\xff\xff", 3);
    engine_init_deflate(&ws, &r, 0, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1007);
    assert_int_equal(r.nevents, 0);
    done(&ws, &r);
  }
  {
    /* A stored block holding the byte FF in a text message. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | RSV1 | OP_TEXT, "\x00\x01\x00\xfe\xff\xff", 6);
    engine_init_deflate(&ws, &r, 0, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1007);
    assert_int_equal(r.nevents, 0);
    done(&ws, &r);
  }
  {
    /* A stored block ending inside a UTF-8 sequence. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | RSV1 | OP_TEXT, "\x00\x02\x00\xfd\xff\x61\xe2", 7);
    engine_init_deflate(&ws, &r, 0, 0);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1007);
    assert_int_equal(r.nevents, 0);
    done(&ws, &r);
  }
}

/* A small frame that inflates past max_message fails with 1009 while
 * inflating, without ever reporting the whole message. */
static void test_deflate_inflated_limit(void **state) {
  static uint8_t plain[100000], packed[2048];
  z_stream z;
  size_t packed_len;
  (void)state;
  memset(plain, 'a', sizeof(plain));
  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = plain;
  z.avail_in = sizeof(plain);
  z.next_out = packed;
  z.avail_out = sizeof(packed);
  assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  assert_int_equal(z.avail_in, 0);
  packed_len = sizeof(packed) - z.avail_out;
  deflateEnd(&z);
  assert_true(packed_len > 4 && packed_len < 1000);
  assert_memory_equal(packed + packed_len - 4, "\x00\x00\xff\xff", 4);
  packed_len -= 4;
  {
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    size_t i, total = 0;
    add(&w, FIN | RSV1 | OP_TEXT, packed, packed_len);
    engine_init_deflate(&ws, &r, 1000, 1);
    assert_int_equal(feed_copy(&ws, &w), UVWS__WS_EFAIL);
    assert_int_equal(ws.fail_code, 1009);
    assert_int_equal(r.nevents, 0);
    for (i = 0; i < r.ncalls; i++) total += r.calls[i].len;
    assert_true(total <= 1000);
    done(&ws, &r);
  }
  {
    /* With room enough, the message arrives whole. */
    wire_t w = {{0}, 0};
    uvws__ws_t ws;
    rec_t r;
    add(&w, FIN | RSV1 | OP_TEXT, packed, packed_len);
    engine_init_deflate(&ws, &r, sizeof(plain), 1);
    assert_int_equal(feed_copy(&ws, &w), (long)w.len);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.events[0].len, sizeof(plain));
    assert_memory_equal(r.events[0].data, plain, sizeof(plain));
    done(&ws, &r);
  }
}

/* ---- close codes and payloads ----------------------------------------------------- */

static void test_close_code_valid(void **state) {
  unsigned code;
  (void)state;
  for (code = 0; code <= 5000; code++) {
    int want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
               (code >= 3000 && code <= 4999);
    if (uvws__close_code_valid(code) != want)
      fail_msg("close code %u: got %d, want %d", code, uvws__close_code_valid(code), want);
  }
  assert_false(uvws__close_code_valid(65535));
}

static void test_close_parse(void **state) {
  unsigned code = 0;
  const char *reason = NULL;
  size_t rlen = 99;
  (void)state;

  assert_int_equal(uvws__close_parse((const uint8_t *)"", 0, &code, &reason, &rlen), 0);
  assert_int_equal(code, 1005);
  assert_int_equal(rlen, 0);

  assert_int_equal(uvws__close_parse((const uint8_t *)"\x03", 1, &code, &reason, &rlen), 1002);

  /* Codes that must not appear on the wire or are unassigned. */
  {
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    size_t i;
    for (i = 0; i < NELEM(bad); i++) {
      uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
      assert_int_equal(uvws__close_parse(p, 2, &code, &reason, &rlen), 1002);
    }
  }

  assert_int_equal(uvws__close_parse((const uint8_t *)"\x03\xe8" "ab\xff", 5, &code, &reason, &rlen),
                   1007);
  assert_int_equal(uvws__close_parse((const uint8_t *)"\x03\xe8\xe2\x82", 4, &code, &reason, &rlen),
                   1007);

  {
    const uint8_t p[] = "\x03\xe8" "normal \xc3\xa9";
    assert_int_equal(uvws__close_parse(p, sizeof(p) - 1, &code, &reason, &rlen), 0);
    assert_int_equal(code, 1000);
    assert_int_equal(rlen, 9);
    assert_memory_equal(reason, "normal \xc3\xa9", 9);
    assert_ptr_equal(reason, (const char *)p + 2);
  }
  {
    const uint8_t p[] = "\x0f\xa0";
    assert_int_equal(uvws__close_parse(p, 2, &code, &reason, &rlen), 0);
    assert_int_equal(code, 4000);
    assert_int_equal(rlen, 0);
  }
  {
    const uint8_t p[] = "\x0b\xb8x";
    assert_int_equal(uvws__close_parse(p, 3, &code, &reason, &rlen), 0);
    assert_int_equal(code, 3000);
    assert_int_equal(rlen, 1);
    assert_memory_equal(reason, "x", 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unmasked_frame_fails),
      cmocka_unit_test(test_rsv_bits_fail),
      cmocka_unit_test(test_reserved_opcodes_fail),
      cmocka_unit_test(test_control_frame_too_long),
      cmocka_unit_test(test_fragmented_control_fails),
      cmocka_unit_test(test_continuation_without_message),
      cmocka_unit_test(test_new_message_inside_fragmented),
      cmocka_unit_test(test_top_bit_length_fails),
      cmocka_unit_test(test_invalid_utf8_fails),
      cmocka_unit_test(test_invalid_utf8_fails_fast),
      cmocka_unit_test(test_text_ending_mid_sequence),
      cmocka_unit_test(test_utf8_state_reset_per_message),
      cmocka_unit_test(test_max_message_declared_length),
      cmocka_unit_test(test_max_message_fragmented_sum),
      cmocka_unit_test(test_empty_message),
      cmocka_unit_test(test_fragmented_message_flags),
      cmocka_unit_test(test_control_between_fragments),
      cmocka_unit_test(test_stream_split_everywhere),
      cmocka_unit_test(test_stream_two_cuts_and_bytewise),
      cmocka_unit_test(test_callback_stops_feed),
      cmocka_unit_test(test_callback_stops_mid_frame),
      cmocka_unit_test(test_callback_stops_everywhere),
      cmocka_unit_test(test_on_frame_whole_feed),
      cmocka_unit_test(test_on_frame_split_everywhere),
      cmocka_unit_test(test_on_frame_on_header_failure),
      cmocka_unit_test(test_deflate_rfc7692_examples),
      cmocka_unit_test(test_deflate_rsv_rules),
      cmocka_unit_test(test_deflate_bad_data),
      cmocka_unit_test(test_deflate_inflated_limit),
      cmocka_unit_test(test_close_code_valid),
      cmocka_unit_test(test_close_parse),
  };
  return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}

/* Unit tests for the frame layer (src/frame.c): header encoding, the
 * incremental parser and payload masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/frame.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Reference masking, byte by byte (RFC 6455 section 5.3). */
static void ref_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset) {
  size_t i;
  for (i = 0; i < len; i++) p[i] ^= mask[(offset + i) & 3];
}

/* ---- a driver that runs the parser over a stream ----------------------- */

typedef struct {
  uvws__frame_header_t h;
  uint8_t *payload; /* unmasked payload as delivered */
  size_t got;
  int complete;
} rec_frame_t;

typedef struct {
  uvws__frame_parser_t fp;
  rec_frame_t frames[16];
  size_t nframes;
  int in_payload; /* a header was seen and its frame is not complete */
} recorder_t;

static void rec_init(recorder_t *r) {
  memset(r, 0, sizeof(*r));
  uvws__frame_parser_init(&r->fp);
}

static void rec_free(recorder_t *r) {
  size_t i;
  for (i = 0; i < r->nframes; i++) free(r->frames[i].payload);
}

/* Feeds one chunk; the parser must consume all of it. */
static void rec_feed(recorder_t *r, uint8_t *data, size_t len) {
  size_t off = 0;
  int guard = 0;
  for (;;) {
    uvws__frame_event_t ev;
    long n = uvws__frame_parse(&r->fp, data + off, len - off, &ev);
    assert_true(++guard < 10000);
    assert_true(n >= 0);
    assert_true((size_t)n <= len - off);
    off += (size_t)n;
    if (ev.type == UVWS__FRAME_NEED_MORE) {
      assert_int_equal(off, len); /* NEED_MORE: everything consumed */
      return;
    }
    if (ev.type == UVWS__FRAME_HEADER) {
      rec_frame_t *f;
      assert_false(r->in_payload);
      assert_true(r->nframes < NELEM(r->frames));
      f = &r->frames[r->nframes++];
      f->h = *uvws__frame_current(&r->fp);
      f->payload = f->h.len ? malloc((size_t)f->h.len) : NULL;
      f->got = 0;
      assert_int_equal(ev.end, f->h.len == 0);
      if (ev.end) f->complete = 1;
      else r->in_payload = 1;
    } else {
      rec_frame_t *f;
      assert_int_equal(ev.type, UVWS__FRAME_DATA);
      assert_true(r->in_payload);
      assert_true(ev.len > 0);
      /* The chunk lies inside the caller's buffer, at the current spot. */
      assert_ptr_equal(ev.data, data + off - ev.len);
      f = &r->frames[r->nframes - 1];
      assert_true(f->got + ev.len <= f->h.len);
      memcpy(f->payload + f->got, ev.data, ev.len);
      f->got += ev.len;
      assert_int_equal(ev.end, f->got == f->h.len);
      if (ev.end) {
        f->complete = 1;
        r->in_payload = 0;
      }
    }
  }
}

/* Appends one frame to `out` with the library encoder, masking the payload
 * when a key is given. Returns the bytes written. */
static size_t put_frame(uint8_t *out, int fin, int rsv, int opcode, const uint8_t *payload,
                        size_t len, const uint8_t *mask) {
  size_t n = uvws__frame_header_encode(out, fin, rsv, opcode, len, mask);
  if (len) memcpy(out + n, payload, len);
  if (mask) ref_mask(out + n, len, mask, 0);
  return n + len;
}

/* ---- RFC 6455 section 5.7 examples -------------------------------------- */

static void test_rfc_unmasked_hello(void **state) {
  static const uint8_t want[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  uint8_t out[32];
  size_t n;
  (void)state;
  n = uvws__frame_header_encode(out, 1, 0, 1, 5, NULL);
  assert_int_equal(n, 2);
  memcpy(out + n, "Hello", 5);
  assert_memory_equal(out, want, sizeof(want));
}

static void test_rfc_masked_hello(void **state) {
  static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  uint8_t out[32];
  size_t n;
  (void)state;
  n = uvws__frame_header_encode(out, 1, 0, 1, 5, rfc_key);
  assert_int_equal(n, 6);
  memcpy(out + n, "Hello", 5);
  uvws__frame_mask(out + n, 5, rfc_key, 0);
  assert_memory_equal(out, want, sizeof(want));
}

static void test_rfc_fragmented_hello(void **state) {
  static const uint8_t want1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
  static const uint8_t want2[] = {0x80, 0x02, 0x6c, 0x6f};
  uint8_t out[16];
  (void)state;
  assert_int_equal(put_frame(out, 0, 0, 1, (const uint8_t *)"Hel", 3, NULL), 5);
  assert_memory_equal(out, want1, sizeof(want1));
  assert_int_equal(put_frame(out, 1, 0, 0, (const uint8_t *)"lo", 2, NULL), 4);
  assert_memory_equal(out, want2, sizeof(want2));
}

static void test_rfc_ping_pong(void **state) {
  static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  uint8_t out[16];
  size_t n;
  (void)state;
  n = uvws__frame_header_encode(out, 1, 0, 0x9, 5, NULL);
  memcpy(out + n, "Hello", 5);
  assert_int_equal(n + 5, sizeof(ping));
  assert_memory_equal(out, ping, sizeof(ping));
  n = uvws__frame_header_encode(out, 1, 0, 0xA, 5, rfc_key);
  memcpy(out + n, "Hello", 5);
  uvws__frame_mask(out + n, 5, rfc_key, 0);
  assert_int_equal(n + 5, sizeof(pong));
  assert_memory_equal(out, pong, sizeof(pong));
}

static void test_rfc_extended_lengths(void **state) {
  static const uint8_t want256[] = {0x82, 0x7e, 0x01, 0x00};
  static const uint8_t want64k[] = {0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  uint8_t out[UVWS__FRAME_MAX_HEADER];
  (void)state;
  assert_int_equal(uvws__frame_header_encode(out, 1, 0, 2, 256, NULL), 4);
  assert_memory_equal(out, want256, sizeof(want256));
  assert_int_equal(uvws__frame_header_encode(out, 1, 0, 2, 65536, NULL), 10);
  assert_memory_equal(out, want64k, sizeof(want64k));
}

/* The parser on the RFC's masked "Hello": header fields and unmasked text. */
static void test_rfc_parse_masked_hello(void **state) {
  uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  recorder_t r;
  (void)state;
  rec_init(&r);
  rec_feed(&r, in, sizeof(in));
  assert_int_equal(r.nframes, 1);
  assert_int_equal(r.frames[0].h.fin, 1);
  assert_int_equal(r.frames[0].h.rsv, 0);
  assert_int_equal(r.frames[0].h.opcode, 1);
  assert_int_equal(r.frames[0].h.masked, 1);
  assert_memory_equal(r.frames[0].h.mask, rfc_key, 4);
  assert_int_equal(r.frames[0].h.len, 5);
  assert_true(r.frames[0].complete);
  assert_memory_equal(r.frames[0].payload, "Hello", 5);
  /* Unmasked in place. */
  assert_memory_equal(in + 6, "Hello", 5);
  rec_free(&r);
}

/* ---- round trips -------------------------------------------------------- */

static void test_header_sizes(void **state) {
  static const struct {
    uint64_t len;
    size_t size;
  } cases[] = {{0, 2},       {1, 2},     {125, 2},  {126, 4},          {127, 4},
               {65535, 4},   {65536, 10}, {1u << 20, 10}, {(1ull << 32) + 5, 10},
               {(1ull << 63) - 1, 10}};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(cases); i++) {
    uint8_t out[UVWS__FRAME_MAX_HEADER];
    assert_int_equal(uvws__frame_header_encode(out, 1, 0, 2, cases[i].len, NULL), cases[i].size);
    assert_int_equal(uvws__frame_header_encode(out, 1, 0, 2, cases[i].len, rfc_key),
                     cases[i].size + 4);
    assert_memory_equal(out + cases[i].size, rfc_key, 4);
    /* The mask bit. */
    assert_int_equal(out[1] & 0x80, 0x80);
  }
}

static void test_round_trip(void **state) {
  static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536};
  static const int rsvs[] = {0, 0x10, 0x20, 0x40, 0x70};
  uint8_t *payload = malloc(65536);
  uint8_t *wire = malloc(65536 + UVWS__FRAME_MAX_HEADER);
  size_t li, ri, i;
  int opcode, fin, masked;
  (void)state;
  assert_non_null(payload);
  assert_non_null(wire);
  for (i = 0; i < 65536; i++) payload[i] = (uint8_t)(i * 7 + (i >> 8));
  for (li = 0; li < NELEM(lens); li++) {
    for (opcode = 0; opcode < 16; opcode++) {
      for (fin = 0; fin < 2; fin++) {
        for (ri = 0; ri < NELEM(rsvs); ri++) {
          for (masked = 0; masked < 2; masked++) {
            uint8_t key[4] = {(uint8_t)(0x11 * (opcode + 1)), 0xa5, (uint8_t)li, 0x3c};
            size_t n;
            recorder_t r;
            const rec_frame_t *f;
            /* Large payloads only for a subset, to keep the run short. */
            if (lens[li] > 200 && (ri != 0 && ri != 4)) continue;
            n = put_frame(wire, fin, rsvs[ri], opcode, payload, lens[li], masked ? key : NULL);
            rec_init(&r);
            rec_feed(&r, wire, n);
            assert_int_equal(r.nframes, 1);
            f = &r.frames[0];
            assert_true(f->complete);
            assert_int_equal(f->h.fin, fin);
            assert_int_equal(f->h.rsv, rsvs[ri]);
            assert_int_equal(f->h.opcode, opcode);
            assert_int_equal(f->h.masked, masked);
            if (masked) assert_memory_equal(f->h.mask, key, 4);
            assert_int_equal(f->h.len, lens[li]);
            assert_int_equal(f->got, lens[li]);
            if (lens[li]) assert_memory_equal(f->payload, payload, lens[li]);
            rec_free(&r);
          }
        }
      }
    }
  }
  free(payload);
  free(wire);
}

/* A 2^32+5 byte frame: only the header and the first payload bytes. */
static void test_huge_length_header_only(void **state) {
  static const uint8_t want[] = {0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05};
  const uint64_t big = (1ull << 32) + 5;
  uint8_t buf[UVWS__FRAME_MAX_HEADER + 100];
  int masked;
  (void)state;
  for (masked = 0; masked < 2; masked++) {
    uvws__frame_parser_t fp;
    uvws__frame_event_t ev;
    size_t n = uvws__frame_header_encode(buf, 1, 0, 2, big, masked ? rfc_key : NULL);
    long used;
    size_t i;
    assert_int_equal(n, masked ? 14 : 10);
    assert_memory_equal(buf + 2, want + 2, 8);
    assert_int_equal(buf[0], 0x82);
    assert_int_equal(buf[1], masked ? 0xff : 0x7f);
    for (i = 0; i < 100; i++) buf[n + i] = (uint8_t)i;
    if (masked) ref_mask(buf + n, 100, rfc_key, 0);

    uvws__frame_parser_init(&fp);
    used = uvws__frame_parse(&fp, buf, n + 100, &ev);
    assert_int_equal(used, (long)n);
    assert_int_equal(ev.type, UVWS__FRAME_HEADER);
    assert_int_equal(ev.end, 0);
    assert_true(uvws__frame_current(&fp)->len == big);
    assert_int_equal(uvws__frame_current(&fp)->masked, masked);
    used = uvws__frame_parse(&fp, buf + n, 100, &ev);
    assert_int_equal(used, 100);
    assert_int_equal(ev.type, UVWS__FRAME_DATA);
    assert_int_equal(ev.len, 100);
    assert_int_equal(ev.end, 0);
    for (i = 0; i < 100; i++) assert_int_equal(ev.data[i], (uint8_t)i);
    /* Nothing more to deliver. */
    used = uvws__frame_parse(&fp, buf, 0, &ev);
    assert_int_equal(used, 0);
    assert_int_equal(ev.type, UVWS__FRAME_NEED_MORE);
  }
}

static void test_top_bit_length_rejected(void **state) {
  uint8_t in[] = {0x82, 0x7f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 2, 3};
  uint8_t inm[] = {0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5};
  uvws__frame_parser_t fp;
  uvws__frame_event_t ev;
  size_t s;
  (void)state;
  uvws__frame_parser_init(&fp);
  assert_int_equal(uvws__frame_parse(&fp, in, sizeof(in), &ev), UVWS__FRAME_EBADLEN);
  /* The masked form, whose header is complete only with the key. */
  uvws__frame_parser_init(&fp);
  assert_int_equal(uvws__frame_parse(&fp, inm, sizeof(inm), &ev), UVWS__FRAME_EBADLEN);
  /* Split anywhere inside the header: the error comes when it completes. */
  for (s = 1; s < 10; s++) {
    uvws__frame_parser_init(&fp);
    assert_int_equal(uvws__frame_parse(&fp, in, s, &ev), (long)s);
    assert_int_equal(ev.type, UVWS__FRAME_NEED_MORE);
    assert_int_equal(uvws__frame_parse(&fp, in + s, sizeof(in) - s, &ev), UVWS__FRAME_EBADLEN);
  }
  /* 2^63 - 1 is fine. */
  {
    uint8_t ok[] = {0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uvws__frame_parser_init(&fp);
    assert_int_equal(uvws__frame_parse(&fp, ok, sizeof(ok), &ev), (long)sizeof(ok));
    assert_int_equal(ev.type, UVWS__FRAME_HEADER);
    assert_true(uvws__frame_current(&fp)->len == (1ull << 63) - 1);
  }
}

/* ---- a stream of frames, split anywhere ---------------------------------- */

typedef struct {
  int fin, rsv, opcode;
  const uint8_t *mask;
  size_t len;
} spec_t;

static const uint8_t key_a[4] = {0x01, 0x02, 0x03, 0x04};
static const uint8_t key_b[4] = {0xff, 0x00, 0x80, 0x7f};

static const spec_t stream_spec[] = {
    {1, 0, 0x1, NULL, 5},       /* unmasked text */
    {0, 0, 0x2, key_a, 0},      /* masked, empty */
    {0, 0x40, 0x0, key_b, 126}, /* 16-bit length, RSV1 */
    {1, 0, 0x9, rfc_key, 3},    /* ping */
    {1, 0, 0x0, NULL, 0},       /* empty final continuation */
    {1, 0, 0x2, key_a, 300},    /* longer masked */
    {1, 0x30, 0x8, NULL, 2},    /* close, RSV2+3 */
    {1, 0, 0xA, key_b, 1},      /* pong with one byte */
};

typedef struct {
  uint8_t *wire;
  size_t len;
  uint8_t *payload[NELEM(stream_spec)];
} stream_t;

static void stream_build(stream_t *s) {
  size_t i, j, total = 0;
  for (i = 0; i < NELEM(stream_spec); i++) total += UVWS__FRAME_MAX_HEADER + stream_spec[i].len;
  s->wire = malloc(total);
  assert_non_null(s->wire);
  s->len = 0;
  for (i = 0; i < NELEM(stream_spec); i++) {
    const spec_t *sp = &stream_spec[i];
    s->payload[i] = malloc(sp->len + 1);
    assert_non_null(s->payload[i]);
    for (j = 0; j < sp->len; j++) s->payload[i][j] = (uint8_t)(i * 31 + j * 13);
    s->len += put_frame(s->wire + s->len, sp->fin, sp->rsv, sp->opcode, s->payload[i], sp->len,
                        sp->mask);
  }
}

static void stream_free(stream_t *s) {
  size_t i;
  free(s->wire);
  for (i = 0; i < NELEM(stream_spec); i++) free(s->payload[i]);
}

static void stream_check(const stream_t *s, const recorder_t *r) {
  size_t i;
  assert_int_equal(r->nframes, NELEM(stream_spec));
  assert_false(r->in_payload);
  for (i = 0; i < NELEM(stream_spec); i++) {
    const spec_t *sp = &stream_spec[i];
    const rec_frame_t *f = &r->frames[i];
    assert_true(f->complete);
    assert_int_equal(f->h.fin, sp->fin);
    assert_int_equal(f->h.rsv, sp->rsv);
    assert_int_equal(f->h.opcode, sp->opcode);
    assert_int_equal(f->h.masked, sp->mask != NULL);
    if (sp->mask) assert_memory_equal(f->h.mask, sp->mask, 4);
    assert_int_equal(f->h.len, sp->len);
    assert_int_equal(f->got, sp->len);
    if (sp->len) assert_memory_equal(f->payload, s->payload[i], sp->len);
  }
}

static void test_stream_whole(void **state) {
  stream_t s;
  recorder_t r;
  uint8_t *copy;
  (void)state;
  stream_build(&s);
  copy = malloc(s.len);
  memcpy(copy, s.wire, s.len);
  rec_init(&r);
  rec_feed(&r, copy, s.len);
  stream_check(&s, &r);
  rec_free(&r);
  free(copy);
  stream_free(&s);
}

static void test_stream_split_everywhere(void **state) {
  stream_t s;
  uint8_t *copy;
  size_t cut;
  (void)state;
  stream_build(&s);
  copy = malloc(s.len);
  for (cut = 0; cut <= s.len; cut++) {
    recorder_t r;
    memcpy(copy, s.wire, s.len);
    rec_init(&r);
    rec_feed(&r, copy, cut);
    rec_feed(&r, copy + cut, s.len - cut);
    stream_check(&s, &r);
    rec_free(&r);
  }
  free(copy);
  stream_free(&s);
}

static void test_stream_two_cuts(void **state) {
  stream_t s;
  uint8_t *copy;
  size_t c1, c2;
  (void)state;
  stream_build(&s);
  copy = malloc(s.len);
  for (c1 = 0; c1 <= s.len; c1 += 3) {
    for (c2 = c1; c2 <= s.len; c2 += 5) {
      recorder_t r;
      memcpy(copy, s.wire, s.len);
      rec_init(&r);
      rec_feed(&r, copy, c1);
      rec_feed(&r, copy + c1, c2 - c1);
      rec_feed(&r, copy + c2, s.len - c2);
      stream_check(&s, &r);
      rec_free(&r);
    }
  }
  free(copy);
  stream_free(&s);
}

static void test_stream_byte_by_byte(void **state) {
  stream_t s;
  uint8_t *copy;
  size_t i;
  recorder_t r;
  (void)state;
  stream_build(&s);
  copy = malloc(s.len);
  memcpy(copy, s.wire, s.len);
  rec_init(&r);
  for (i = 0; i < s.len; i++) rec_feed(&r, copy + i, 1);
  stream_check(&s, &r);
  rec_free(&r);
  free(copy);
  stream_free(&s);
}

/* ---- masking ------------------------------------------------------------ */

static void test_mask_against_reference(void **state) {
  static const uint8_t keys[][4] = {{0x37, 0xfa, 0x21, 0x3d}, {0x00, 0x00, 0x00, 0x00},
                                    {0xff, 0x01, 0x80, 0x7e}};
  _Alignas(8) uint8_t buf[64], want[64];
  size_t k, len, a, i;
  uint64_t off;
  (void)state;
  for (k = 0; k < NELEM(keys); k++) {
    for (off = 0; off < 8; off++) {
      for (len = 0; len <= 40; len++) {
        for (a = 0; a < 8; a++) {
          for (i = 0; i < sizeof(buf); i++) buf[i] = want[i] = (uint8_t)(i * 37 + 11);
          uvws__frame_mask(buf + a, len, keys[k], off);
          ref_mask(want + a, len, keys[k], off);
          if (memcmp(buf, want, sizeof(buf)) != 0)
            fail_msg("mask mismatch: key %zu offset %u len %zu align %zu", k, (unsigned)off, len,
                     a);
        }
      }
    }
  }
}

static void test_mask_large_offset_and_involution(void **state) {
  uint8_t buf[40], want[40], orig[40];
  size_t i;
  uint64_t offs[] = {(1ull << 32) + 1, (1ull << 32) + 2, (1ull << 40) + 3, UINT64_MAX};
  (void)state;
  for (i = 0; i < sizeof(buf); i++) orig[i] = (uint8_t)(0xa0 + i);
  for (i = 0; i < NELEM(offs); i++) {
    memcpy(buf, orig, sizeof(buf));
    memcpy(want, orig, sizeof(want));
    uvws__frame_mask(buf, sizeof(buf), rfc_key, offs[i]);
    ref_mask(want, sizeof(want), rfc_key, offs[i]);
    assert_memory_equal(buf, want, sizeof(buf));
    uvws__frame_mask(buf, sizeof(buf), rfc_key, offs[i]);
    assert_memory_equal(buf, orig, sizeof(buf));
  }
  /* Masking in two pieces with the right offset equals one piece. */
  for (i = 0; i <= sizeof(buf); i++) {
    memcpy(buf, orig, sizeof(buf));
    memcpy(want, orig, sizeof(want));
    uvws__frame_mask(buf, i, rfc_key, 0);
    uvws__frame_mask(buf + i, sizeof(buf) - i, rfc_key, i);
    ref_mask(want, sizeof(want), rfc_key, 0);
    assert_memory_equal(buf, want, sizeof(buf));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_unmasked_hello),
      cmocka_unit_test(test_rfc_masked_hello),
      cmocka_unit_test(test_rfc_fragmented_hello),
      cmocka_unit_test(test_rfc_ping_pong),
      cmocka_unit_test(test_rfc_extended_lengths),
      cmocka_unit_test(test_rfc_parse_masked_hello),
      cmocka_unit_test(test_header_sizes),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_huge_length_header_only),
      cmocka_unit_test(test_top_bit_length_rejected),
      cmocka_unit_test(test_stream_whole),
      cmocka_unit_test(test_stream_split_everywhere),
      cmocka_unit_test(test_stream_two_cuts),
      cmocka_unit_test(test_stream_byte_by_byte),
      cmocka_unit_test(test_mask_against_reference),
      cmocka_unit_test(test_mask_large_offset_and_involution),
  };
  return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}

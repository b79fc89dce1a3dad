/* Unit tests for the incremental UTF-8 validator (src/utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/utf8.h"

typedef struct {
  const char *name;
  const char *bytes;
  size_t len;
} vec_t;

#define V(name, lit) { name, lit, sizeof(lit) - 1 }

/* Well-formed inputs. */
static const vec_t valid_vectors[] = {
    V("empty", ""),
    V("ascii", "Hello, world!"),
    V("nul", "\x00"),
    V("U+007F", "\x7f"),
    V("U+0080", "\xc2\x80"),
    V("U+07FF", "\xdf\xbf"),
    V("U+0800", "\xe0\xa0\x80"),
    V("U+D7FF", "\xed\x9f\xbf"),
    V("U+E000", "\xee\x80\x80"),
    V("U+FEFF", "\xef\xbb\xbf"),
    V("U+FFFD", "\xef\xbf\xbd"),
    V("U+FFFF", "\xef\xbf\xbf"),
    V("U+10000", "\xf0\x90\x80\x80"),
    V("U+FFFFF", "\xf3\xbf\xbf\xbf"),
    V("U+100000", "\xf4\x80\x80\x80"),
    V("U+10FFFF", "\xf4\x8f\xbf\xbf"),
    V("kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    V("mixed", "a\xc2\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80" "d"),
    V("ascii7", "abcdefg"),
    V("ascii8", "abcdefgh"),
    V("ascii9", "abcdefghi"),
    V("ascii64", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    V("ascii8+2byte", "abcdefgh\xc3\xa9"),
    V("ascii9+4byte+ascii9", "abcdefghi\xf0\x9f\x98\x80jklmnopqr"),
    V("2byte+ascii16", "\xc3\xa9" "0123456789abcdef"),
    V("3byte+ascii15+3byte", "\xe2\x82\xac" "0123456789abcde" "\xe2\x82\xac"),
};

/* Ill-formed inputs: `bad` is the index of the first byte after which no
 * continuation can make the input well-formed. */
typedef struct {
  const char *name;
  const char *bytes;
  size_t len;
  size_t bad;
} bad_vec_t;

#define B(name, lit, bad) { name, lit, sizeof(lit) - 1, bad }

static const bad_vec_t invalid_vectors[] = {
    B("lone 80", "\x80", 0),
    B("lone BF", "\xbf", 0),
    B("ascii + lone 80", "a\x80", 1),
    B("2 continuations after a 2-byte lead", "\xc2\x80\x80", 2),
    B("C0", "\xc0", 0),
    B("C1", "\xc1", 0),
    B("F5", "\xf5", 0),
    B("FE", "\xfe", 0),
    B("FF", "\xff", 0),
    B("overlong 2-byte C0 AF", "\xc0\xaf", 0),
    B("overlong 2-byte C1 BF", "\xc1\xbf", 0),
    B("overlong 3-byte E0 80 AF", "\xe0\x80\xaf", 1),
    B("overlong 3-byte E0 9F BF", "\xe0\x9f\xbf", 1),
    B("overlong 4-byte F0 80 80 AF", "\xf0\x80\x80\xaf", 1),
    B("overlong 4-byte F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1),
    B("surrogate ED A0 80", "\xed\xa0\x80", 1),
    B("surrogate ED AD BF", "\xed\xad\xbf", 1),
    B("surrogate ED AE 80", "\xed\xae\x80", 1),
    B("surrogate ED BF BF", "\xed\xbf\xbf", 1),
    B("surrogate pair", "\xed\xa0\x80\xed\xb0\x80", 1),
    B("above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", 1),
    B("F4 BF BF BF", "\xf4\xbf\xbf\xbf", 1),
    B("lead then ascii", "\xc2" "a", 1),
    B("3-byte lead then ascii", "\xe2\x82" "a", 2),
    B("4-byte lead then lead", "\xf0\x9f\x98\xf0", 3),
    B("ascii8 then 80", "abcdefgh\x80", 8),
    B("ascii9 then FF", "abcdefghi\xff", 9),
    B("ascii16 then C0", "0123456789abcdef\xc0", 16),
    B("ascii17 then surrogate", "0123456789abcdefg\xed\xa0\x80", 18),
    B("kosme with bad tail", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 12),
    B("bad then valid", "\xff" "abcdefghijklmnop", 0),
};

/* Valid prefixes cut short: well-formed so far but incomplete at the end. */
static const vec_t truncated_vectors[] = {
    V("C2", "\xc2"),
    V("DF", "\xdf"),
    V("E0 A0", "\xe0\xa0"),
    V("E1", "\xe1"),
    V("E1 80", "\xe1\x80"),
    V("ED 9F", "\xed\x9f"),
    V("F0 90 80", "\xf0\x90\x80"),
    V("F4 8F BF", "\xf4\x8f\xbf"),
    V("F1", "\xf1"),
    V("abc + euro truncated", "abc\xe2\x82"),
    V("ascii9 + 4-byte truncated", "abcdefghi\xf0\x9f\x98"),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- reference decoder -------------------------------------------------
 * Written independently from the validator's table: it decodes the code
 * point bits of each sequence and asks whether any completion of what has
 * been read so far could still be a Unicode scalar value of the right
 * length. Returns 1 (complete and valid), 0 (valid but truncated) or -1
 * (invalid; *bad is the first offending byte). */
static int ref_range_ok(uint32_t lo, uint32_t hi, int n) {
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  static const uint32_t max_cp[5] = {0, 0x7f, 0x7ff, 0xffff, 0x10ffff};
  if (lo < min_cp[n]) lo = min_cp[n];
  if (hi > max_cp[n]) hi = max_cp[n];
  if (lo > hi) return 0;
  if (lo >= 0xd800 && hi <= 0xdfff) return 0; /* only surrogates left */
  return 1;
}

static int ref_check(const uint8_t *p, size_t len, size_t *bad) {
  size_t i = 0;
  while (i < len) {
    uint8_t b = p[i];
    int n, k;
    uint32_t cp;
    if (b < 0x80) {
      i++;
      continue;
    }
    if ((b & 0xe0) == 0xc0) {
      n = 2;
      cp = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
      n = 3;
      cp = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
      n = 4;
      cp = b & 0x07;
    } else {
      *bad = i;
      return -1;
    }
    /* After the lead alone. */
    {
      int rem = n - 1;
      uint32_t lo = cp << (6 * rem), hi = lo | ((1u << (6 * rem)) - 1);
      if (!ref_range_ok(lo, hi, n)) {
        /* Lead byte can never start a valid sequence (C0, C1, F5..F7). */
        *bad = i;
        return -1;
      }
    }
    for (k = 1; k < n; k++) {
      int rem = n - 1 - k;
      uint32_t lo, hi;
      if (i + (size_t)k >= len) return 0;
      if ((p[i + k] & 0xc0) != 0x80) {
        *bad = i + (size_t)k;
        return -1;
      }
      cp = (cp << 6) | (p[i + k] & 0x3f);
      lo = cp << (6 * rem);
      hi = lo | ((1u << (6 * rem)) - 1);
      if (!ref_range_ok(lo, hi, n)) {
        *bad = i + (size_t)k;
        return -1;
      }
    }
    i += (size_t)n;
  }
  return 1;
}

/* Feeds p in one call. */
static int feed_all(uint8_t *state, const uint8_t *p, size_t len) {
  *state = UVWS__UTF8_ACCEPT;
  return uvws__utf8_feed(state, p, len);
}

/* Checks the validator against the reference for one input, including the
 * position of the first bad byte. */
static void check_against_ref(const uint8_t *p, size_t len) {
  size_t bad = 0;
  int ref = ref_check(p, len, &bad);
  uint8_t st;
  int r = feed_all(&st, p, len);

  if (ref == 1) {
    if (r != 0 || st != UVWS__UTF8_ACCEPT || !uvws__utf8_valid(p, len)) {
      size_t i;
      print_error("valid input rejected (r=%d state=%u):", r, st);
      for (i = 0; i < len; i++) print_error(" %02x", p[i]);
      print_error("\n");
      fail();
    }
  } else if (ref == 0) {
    if (r != 0 || st == UVWS__UTF8_ACCEPT || st == UVWS__UTF8_REJECT || uvws__utf8_valid(p, len)) {
      size_t i;
      print_error("truncated input misjudged (r=%d state=%u):", r, st);
      for (i = 0; i < len; i++) print_error(" %02x", p[i]);
      print_error("\n");
      fail();
    }
  } else {
    uint8_t st2;
    int r_before = feed_all(&st2, p, bad);
    int r_at = feed_all(&st, p, bad + 1);
    if (r_before != 0 || r_at != -1 || st != UVWS__UTF8_REJECT || uvws__utf8_valid(p, len) ||
        feed_all(&st2, p, len) != -1) {
      size_t i;
      print_error("invalid input misjudged (bad at %zu, before=%d at=%d):", bad, r_before, r_at);
      for (i = 0; i < len; i++) print_error(" %02x", p[i]);
      print_error("\n");
      fail();
    }
  }
}

/* Deterministic PRNG (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* ---- tests -------------------------------------------------------------- */

static void test_valid_vectors(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(valid_vectors); i++) {
    const vec_t *v = &valid_vectors[i];
    uint8_t st;
    if (!uvws__utf8_valid(v->bytes, v->len)) fail_msg("valid vector '%s' rejected", v->name);
    if (feed_all(&st, (const uint8_t *)v->bytes, v->len) != 0 || st != UVWS__UTF8_ACCEPT)
      fail_msg("valid vector '%s' not accepted by feed", v->name);
  }
}

/* Every valid vector at every buffer alignment, so the 8-bytes-at-a-time
 * path sees each possible start offset. */
static void test_valid_every_alignment(void **state) {
  size_t i, a;
  _Alignas(8) uint8_t buf[128 + 8];
  (void)state;
  for (i = 0; i < NELEM(valid_vectors); i++) {
    const vec_t *v = &valid_vectors[i];
    assert_true(v->len <= 128);
    for (a = 0; a < 8; a++) {
      memset(buf, 0xff, sizeof(buf)); /* invalid bytes around the input */
      memcpy(buf + a, v->bytes, v->len);
      if (!uvws__utf8_valid(buf + a, v->len))
        fail_msg("valid vector '%s' rejected at alignment %zu", v->name, a);
    }
  }
}

static void test_ascii_runs(void **state) {
  _Alignas(8) uint8_t buf[200];
  size_t n, a;
  (void)state;
  for (n = 0; n <= 80; n++) {
    for (a = 0; a < 8; a++) {
      uint8_t st;
      memset(buf, 0xff, sizeof(buf));
      memset(buf + a, 'x', n);
      assert_true(uvws__utf8_valid(buf + a, n));
      /* The byte right after the run is invalid: it must not be read as
       * part of the run, and including it must fail. */
      assert_int_equal(feed_all(&st, buf + a, n), 0);
      assert_int_equal(st, UVWS__UTF8_ACCEPT);
      assert_int_equal(feed_all(&st, buf + a, n + 1), -1);
      assert_int_equal(st, UVWS__UTF8_REJECT);
      assert_false(uvws__utf8_valid(buf + a, n + 1));
    }
  }
}

/* One non-ASCII byte at every position of a 24-byte ASCII run at every
 * alignment: the word-at-a-time skip must notice it wherever it is. */
static void test_non_ascii_at_every_position(void **state) {
  _Alignas(8) uint8_t buf[40];
  size_t k, a;
  (void)state;
  for (a = 0; a < 8; a++) {
    for (k = 0; k < 24; k++) {
      uint8_t st;
      memset(buf, 'y', sizeof(buf));
      buf[a + k] = 0xff;
      assert_int_equal(feed_all(&st, buf + a, 24), -1);
      assert_int_equal(feed_all(&st, buf + a, k), 0);
      buf[a + k] = 0x80;
      assert_int_equal(feed_all(&st, buf + a, 24), -1);
      if (k + 1 < 24) {
        buf[a + k] = 0xc3;
        buf[a + k + 1] = 0xa9;
        assert_true(uvws__utf8_valid(buf + a, 24));
        /* Truncated right after the lead byte. */
        assert_int_equal(feed_all(&st, buf + a, k + 1), 0);
        assert_int_not_equal(st, UVWS__UTF8_ACCEPT);
        assert_false(uvws__utf8_valid(buf + a, k + 1));
      }
    }
  }
}

static void test_lone_continuation_bytes(void **state) {
  unsigned b;
  (void)state;
  for (b = 0x80; b <= 0xbf; b++) {
    uint8_t in[3] = {(uint8_t)b, 0, 0};
    uint8_t st;
    assert_false(uvws__utf8_valid(in, 1));
    assert_int_equal(feed_all(&st, in, 1), -1);
    assert_int_equal(st, UVWS__UTF8_REJECT);
    in[0] = 'a';
    in[1] = (uint8_t)b;
    assert_false(uvws__utf8_valid(in, 2));
    /* After a complete 2-byte character. */
    {
      uint8_t in3[3] = {0xc3, 0xa9, (uint8_t)b};
      assert_false(uvws__utf8_valid(in3, 3));
      assert_int_equal(feed_all(&st, in3, 2), 0);
      assert_int_equal(st, UVWS__UTF8_ACCEPT);
    }
  }
}

/* C0, C1 and F5..FF are invalid anywhere: first, middle, last, after a
 * long ASCII run, and as a would-be continuation byte. */
static void test_never_valid_bytes_anywhere(void **state) {
  static const uint8_t never[] = {0xc0, 0xc1, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
                                  0xfb, 0xfc, 0xfd, 0xfe, 0xff};
  size_t i, pos;
  (void)state;
  for (i = 0; i < sizeof(never); i++) {
    for (pos = 0; pos < 20; pos++) {
      uint8_t buf[24];
      uint8_t st;
      memset(buf, 'z', sizeof(buf));
      buf[pos] = never[i];
      assert_false(uvws__utf8_valid(buf, 20));
      assert_int_equal(feed_all(&st, buf, 20), -1);
      assert_int_equal(feed_all(&st, buf, pos), 0);
      assert_int_equal(st, UVWS__UTF8_ACCEPT);
      assert_int_equal(feed_all(&st, buf, pos + 1), -1);
    }
    {
      /* In place of a continuation byte. */
      uint8_t c2[2] = {0xc2, never[i]};
      uint8_t e3[3] = {0xe1, 0x80, never[i]};
      uint8_t f4[4] = {0xf1, 0x80, 0x80, never[i]};
      assert_false(uvws__utf8_valid(c2, 2));
      assert_false(uvws__utf8_valid(e3, 3));
      assert_false(uvws__utf8_valid(f4, 4));
    }
  }
}

static void test_invalid_vectors(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(invalid_vectors); i++) {
    const bad_vec_t *v = &invalid_vectors[i];
    const uint8_t *p = (const uint8_t *)v->bytes;
    uint8_t st;
    size_t bad = 0;
    /* The reference agrees on where the input goes wrong. */
    if (ref_check(p, v->len, &bad) != -1 || bad != v->bad)
      fail_msg("reference decoder disagrees on '%s'", v->name);
    if (uvws__utf8_valid(p, v->len)) fail_msg("invalid vector '%s' accepted", v->name);
    if (feed_all(&st, p, v->len) != -1 || st != UVWS__UTF8_REJECT)
      fail_msg("invalid vector '%s' not rejected by feed", v->name);
    /* Fail fast: everything before the bad byte is a valid prefix, and the
     * byte itself is rejected. */
    if (feed_all(&st, p, v->bad) != 0 || st == UVWS__UTF8_REJECT)
      fail_msg("'%s': prefix before the bad byte rejected", v->name);
    if (feed_all(&st, p, v->bad + 1) != -1)
      fail_msg("'%s': bad byte at %zu not rejected at once", v->name, v->bad);
  }
}

static void test_all_surrogates(void **state) {
  unsigned b2, b3;
  (void)state;
  for (b2 = 0xa0; b2 <= 0xbf; b2++) {
    for (b3 = 0x80; b3 <= 0xbf; b3++) {
      uint8_t in[3] = {0xed, (uint8_t)b2, (uint8_t)b3};
      uint8_t st;
      assert_false(uvws__utf8_valid(in, 3));
      assert_int_equal(feed_all(&st, in, 2), -1);
    }
  }
  for (b2 = 0x80; b2 <= 0x9f; b2++) {
    uint8_t in[3] = {0xed, (uint8_t)b2, 0xbf};
    assert_true(uvws__utf8_valid(in, 3));
  }
}

static void test_truncated_at_end(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(truncated_vectors); i++) {
    const vec_t *v = &truncated_vectors[i];
    uint8_t st;
    if (uvws__utf8_valid(v->bytes, v->len)) fail_msg("truncated '%s' accepted as complete", v->name);
    if (feed_all(&st, (const uint8_t *)v->bytes, v->len) != 0)
      fail_msg("truncated '%s' rejected by feed (it is a valid prefix)", v->name);
    if (st == UVWS__UTF8_ACCEPT || st == UVWS__UTF8_REJECT)
      fail_msg("truncated '%s': state %u", v->name, st);
  }
}

/* Every valid vector split at every point, and byte by byte. */
static void test_incremental_valid_splits(void **state) {
  size_t i, s, j;
  (void)state;
  for (i = 0; i < NELEM(valid_vectors); i++) {
    const vec_t *v = &valid_vectors[i];
    const uint8_t *p = (const uint8_t *)v->bytes;
    for (s = 0; s <= v->len; s++) {
      uint8_t st = UVWS__UTF8_ACCEPT;
      assert_int_equal(uvws__utf8_feed(&st, p, s), 0);
      assert_int_equal(uvws__utf8_feed(&st, p + s, v->len - s), 0);
      if (st != UVWS__UTF8_ACCEPT) fail_msg("'%s' split at %zu: state %u", v->name, s, st);
    }
    {
      uint8_t st = UVWS__UTF8_ACCEPT;
      for (j = 0; j < v->len; j++) assert_int_equal(uvws__utf8_feed(&st, p + j, 1), 0);
      if (st != UVWS__UTF8_ACCEPT) fail_msg("'%s' byte by byte: state %u", v->name, st);
    }
  }
  /* Two split points, for the longer vectors too. */
  for (i = 0; i < NELEM(valid_vectors); i++) {
    const vec_t *v = &valid_vectors[i];
    const uint8_t *p = (const uint8_t *)v->bytes;
    size_t s1, s2;
    for (s1 = 0; s1 <= v->len; s1++) {
      for (s2 = s1; s2 <= v->len; s2++) {
        uint8_t st = UVWS__UTF8_ACCEPT;
        assert_int_equal(uvws__utf8_feed(&st, p, s1), 0);
        assert_int_equal(uvws__utf8_feed(&st, p + s1, s2 - s1), 0);
        assert_int_equal(uvws__utf8_feed(&st, p + s2, v->len - s2), 0);
        assert_int_equal(st, UVWS__UTF8_ACCEPT);
      }
    }
  }
}

/* Invalid vectors split at every point: the call that contains the bad
 * byte fails, and not an earlier one. */
static void test_incremental_fail_fast(void **state) {
  size_t i, s, j;
  (void)state;
  for (i = 0; i < NELEM(invalid_vectors); i++) {
    const bad_vec_t *v = &invalid_vectors[i];
    const uint8_t *p = (const uint8_t *)v->bytes;
    for (s = 0; s <= v->len; s++) {
      uint8_t st = UVWS__UTF8_ACCEPT;
      int r1 = uvws__utf8_feed(&st, p, s);
      if (s <= v->bad) {
        if (r1 != 0) fail_msg("'%s' split at %zu: first part rejected", v->name, s);
        if (s < v->len && uvws__utf8_feed(&st, p + s, v->len - s) != -1)
          fail_msg("'%s' split at %zu: second part not rejected", v->name, s);
      } else {
        if (r1 != -1) fail_msg("'%s' split at %zu: first part not rejected", v->name, s);
      }
    }
    {
      uint8_t st = UVWS__UTF8_ACCEPT;
      for (j = 0; j < v->len; j++) {
        int r = uvws__utf8_feed(&st, p + j, 1);
        if (j < v->bad) assert_int_equal(r, 0);
        else assert_int_equal(r, -1);
      }
    }
  }
}

/* A bad byte after 8+ ASCII bytes within the same call, at every
 * alignment: the word-at-a-time path must not skip over it. */
static void test_fail_fast_after_long_ascii(void **state) {
  _Alignas(8) uint8_t buf[64];
  size_t run, a;
  (void)state;
  for (run = 8; run <= 33; run++) {
    for (a = 0; a < 8; a++) {
      uint8_t st = UVWS__UTF8_ACCEPT;
      memset(buf, 'q', sizeof(buf));
      buf[a + run] = 0x80;
      /* The bad byte followed by more ASCII in the same call. */
      assert_int_equal(uvws__utf8_feed(&st, buf + a, run + 10), -1);
      assert_int_equal(st, UVWS__UTF8_REJECT);
      /* Split: ASCII first, then the bad byte with a tail. */
      st = UVWS__UTF8_ACCEPT;
      assert_int_equal(uvws__utf8_feed(&st, buf + a, run), 0);
      assert_int_equal(uvws__utf8_feed(&st, buf + a + run, 10), -1);
    }
  }
}

static void test_reject_is_sticky(void **state) {
  uint8_t st = UVWS__UTF8_ACCEPT;
  const uint8_t bad[] = {0xff};
  const uint8_t ascii[] = "plain ascii that is long enough";
  const uint8_t two[] = {0xc3, 0xa9};
  (void)state;
  assert_int_equal(uvws__utf8_feed(&st, bad, 1), -1);
  assert_int_equal(st, UVWS__UTF8_REJECT);
  assert_int_equal(uvws__utf8_feed(&st, ascii, sizeof(ascii) - 1), -1);
  assert_int_equal(st, UVWS__UTF8_REJECT);
  assert_int_equal(uvws__utf8_feed(&st, two, 2), -1);
  assert_int_equal(st, UVWS__UTF8_REJECT);
  assert_int_equal(uvws__utf8_feed(&st, ascii, 1), -1);
  assert_int_equal(st, UVWS__UTF8_REJECT);
  /* Feeding nothing leaves it rejected. */
  uvws__utf8_feed(&st, ascii, 0);
  assert_int_equal(st, UVWS__UTF8_REJECT);
}

static void test_reference_all_1_and_2_byte(void **state) {
  unsigned a, b;
  (void)state;
  for (a = 0; a < 256; a++) {
    uint8_t in[1] = {(uint8_t)a};
    check_against_ref(in, 1);
  }
  for (a = 0; a < 256; a++) {
    for (b = 0; b < 256; b++) {
      uint8_t in[2] = {(uint8_t)a, (uint8_t)b};
      check_against_ref(in, 2);
    }
  }
}

/* All 3-byte inputs that start with a non-ASCII lead byte (4M). */
static void test_reference_all_3_byte_leads(void **state) {
  unsigned a, b, c;
  (void)state;
  for (a = 0xc0; a < 256; a++)
    for (b = 0; b < 256; b++)
      for (c = 0; c < 256; c += (b < 0x80 || b > 0xbf) ? 37 : 1) {
        uint8_t in[3] = {(uint8_t)a, (uint8_t)b, (uint8_t)c};
        check_against_ref(in, 3);
      }
}

/* Interesting bytes for random strings: boundaries of every class. */
static const uint8_t interesting[] = {
    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
    0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xff};

static uint8_t random_byte(void) {
  uint32_t r = rng();
  switch (r & 3) {
  case 0: return (uint8_t)(r >> 8);                              /* any byte */
  case 1: return interesting[(r >> 8) % sizeof(interesting)];   /* a boundary */
  case 2: return (uint8_t)(0x80 | ((r >> 8) & 0x3f));          /* continuation */
  default: return (uint8_t)(0xc0 | ((r >> 8) & 0x3f));         /* a lead */
  }
}

static void test_reference_random_short(void **state) {
  int n;
  (void)state;
  rng_state = 0x0123456789abcdefull;
  for (n = 0; n < 400000; n++) {
    uint8_t in[6];
    size_t len = 1 + rng() % 6, i;
    for (i = 0; i < len; i++) in[i] = random_byte();
    check_against_ref(in, len);
  }
}

/* Longer strings, mostly ASCII with occasional characters or garbage, at
 * varying alignments, so ASCII runs of all lengths meet the fast path. */
static void test_reference_random_long(void **state) {
  _Alignas(8) uint8_t buf[80];
  int n;
  (void)state;
  rng_state = 0xfeedfacecafebeefull;
  for (n = 0; n < 100000; n++) {
    size_t a = rng() % 8, len = rng() % 72, i;
    for (i = 0; i < len; i++) {
      uint32_t r = rng() % 64;
      buf[a + i] = r < 56 ? (uint8_t)(0x20 + r) : random_byte();
    }
    check_against_ref(buf + a, len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_vectors),
      cmocka_unit_test(test_valid_every_alignment),
      cmocka_unit_test(test_ascii_runs),
      cmocka_unit_test(test_non_ascii_at_every_position),
      cmocka_unit_test(test_lone_continuation_bytes),
      cmocka_unit_test(test_never_valid_bytes_anywhere),
      cmocka_unit_test(test_invalid_vectors),
      cmocka_unit_test(test_all_surrogates),
      cmocka_unit_test(test_truncated_at_end),
      cmocka_unit_test(test_incremental_valid_splits),
      cmocka_unit_test(test_incremental_fail_fast),
      cmocka_unit_test(test_fail_fast_after_long_ascii),
      cmocka_unit_test(test_reject_is_sticky),
      cmocka_unit_test(test_reference_all_1_and_2_byte),
      cmocka_unit_test(test_reference_all_3_byte_leads),
      cmocka_unit_test(test_reference_random_short),
      cmocka_unit_test(test_reference_random_long),
  };
  return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}

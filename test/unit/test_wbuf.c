/* Unit tests for the growable byte buffer (src/wbuf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "util/wbuf.h"

static void check_invariants(const uvws__buf_t *b) {
  assert_true(b->off + b->len <= b->cap);
  if (b->cap) assert_non_null(b->base);
}

static void test_append_and_consume(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  assert_int_equal(uvws__buf_append(&b, "hello", 5), 0);
  check_invariants(&b);
  assert_int_equal(b.len, 5);
  assert_int_equal(b.off, 0);
  assert_true(b.cap >= 5);
  assert_memory_equal(uvws__buf_data(&b), "hello", 5);
  assert_ptr_equal(uvws__buf_tail(&b), uvws__buf_data(&b) + 5);

  assert_int_equal(uvws__buf_append(&b, " world", 6), 0);
  assert_int_equal(b.len, 11);
  assert_memory_equal(uvws__buf_data(&b), "hello world", 11);

  uvws__buf_consume(&b, 6);
  check_invariants(&b);
  assert_int_equal(b.len, 5);
  assert_memory_equal(uvws__buf_data(&b), "world", 5);

  assert_int_equal(uvws__buf_append(&b, "!", 1), 0);
  assert_int_equal(b.len, 6);
  assert_memory_equal(uvws__buf_data(&b), "world!", 6);

  uvws__buf_consume(&b, 0);
  assert_int_equal(b.len, 6);
  assert_memory_equal(uvws__buf_data(&b), "world!", 6);

  /* Consuming everything resets the front. */
  uvws__buf_consume(&b, 6);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.off, 0);
  uvws__buf_free(&b);
}

static void test_consume_more_than_len(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  assert_int_equal(uvws__buf_append(&b, "abcdef", 6), 0);
  uvws__buf_consume(&b, 2);
  uvws__buf_consume(&b, 1000);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.off, 0);
  check_invariants(&b);
  /* Still usable. */
  assert_int_equal(uvws__buf_append(&b, "xy", 2), 0);
  assert_memory_equal(uvws__buf_data(&b), "xy", 2);
  uvws__buf_consume(&b, (size_t)-1);
  assert_int_equal(b.len, 0);
  /* On an empty, never-allocated buffer too. */
  uvws__buf_free(&b);
  uvws__buf_consume(&b, 5);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.off, 0);
}

static void test_append_empty(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  assert_int_equal(uvws__buf_append(&b, "", 0), 0);
  assert_int_equal(b.len, 0);
  assert_null(b.base);
  assert_int_equal(uvws__buf_reserve(&b, 0), 0);
  assert_null(b.base);
}

static void test_growth(void **state) {
  uvws__buf_t b = {0};
  uint8_t chunk[37];
  size_t i, total = 0, prev_cap = 0;
  (void)state;
  for (i = 0; i < 1000; i++) {
    size_t j;
    for (j = 0; j < sizeof(chunk); j++) chunk[j] = (uint8_t)(total + j);
    assert_int_equal(uvws__buf_append(&b, chunk, sizeof(chunk)), 0);
    total += sizeof(chunk);
    check_invariants(&b);
    assert_int_equal(b.len, total);
    assert_true(b.cap >= prev_cap); /* never shrinks */
    prev_cap = b.cap;
  }
  for (i = 0; i < total; i++)
    if ((uint8_t)uvws__buf_data(&b)[i] != (uint8_t)i) fail_msg("byte %zu wrong after growth", i);
  /* Doubling, not one chunk at a time. */
  assert_true(b.cap < 2 * total + 256);
  uvws__buf_free(&b);
}

static void test_reserve(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  assert_int_equal(uvws__buf_reserve(&b, 1000), 0);
  check_invariants(&b);
  assert_true(b.cap - b.off - b.len >= 1000);
  assert_int_equal(b.len, 0);
  /* The reserved tail is writable; the caller commits by raising len. */
  memset(uvws__buf_tail(&b), 'r', 1000);
  b.len += 1000;
  assert_int_equal(uvws__buf_reserve(&b, 1), 0);
  assert_true(b.cap - b.off - b.len >= 1);
  {
    size_t i;
    for (i = 0; i < 1000; i++) assert_int_equal(uvws__buf_data(&b)[i], 'r');
  }
  /* Reserving what is already free changes nothing. */
  {
    char *base = b.base;
    size_t cap = b.cap, free_space = b.cap - b.off - b.len;
    assert_int_equal(uvws__buf_reserve(&b, free_space), 0);
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.cap, cap);
  }
  uvws__buf_free(&b);
}

/* Consumed space at the front is reused before growing. */
static void test_reserve_reclaims_front(void **state) {
  uvws__buf_t b = {0};
  char data[200];
  size_t i, cap;
  (void)state;
  for (i = 0; i < sizeof(data); i++) data[i] = (char)('A' + i % 26);
  assert_int_equal(uvws__buf_append(&b, data, sizeof(data)), 0);
  cap = b.cap;
  uvws__buf_consume(&b, 150);
  assert_int_equal(b.off, 150);
  assert_int_equal(b.len, 50);
  /* More than the free tail, less than the free tail plus the front. */
  assert_true(cap - b.off - b.len < 100);
  assert_int_equal(uvws__buf_reserve(&b, 100), 0);
  check_invariants(&b);
  assert_true(b.cap - b.off - b.len >= 100);
  assert_int_equal(b.len, 50);
  assert_memory_equal(uvws__buf_data(&b), data + 150, 50);
  uvws__buf_free(&b);
}

/* Growing with consumed bytes at the front keeps the queued bytes only. */
static void test_reserve_grows_with_offset(void **state) {
  uvws__buf_t b = {0};
  char data[200];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(data); i++) data[i] = (char)i;
  assert_int_equal(uvws__buf_append(&b, data, sizeof(data)), 0);
  uvws__buf_consume(&b, 10);
  assert_int_equal(uvws__buf_reserve(&b, 5000), 0);
  check_invariants(&b);
  assert_true(b.cap - b.off - b.len >= 5000);
  assert_int_equal(b.len, 190);
  assert_memory_equal(uvws__buf_data(&b), data + 10, 190);
  assert_int_equal(uvws__buf_append(&b, "end", 3), 0);
  assert_memory_equal(uvws__buf_data(&b) + 190, "end", 3);
  uvws__buf_free(&b);
}

static void test_reserve_overflow(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  assert_int_equal(uvws__buf_append(&b, "keep", 4), 0);
  assert_int_equal(uvws__buf_reserve(&b, (size_t)-1), UV_ENOMEM);
  assert_int_equal(uvws__buf_reserve(&b, (size_t)-1 / 2), UV_ENOMEM);
  assert_int_equal(uvws__buf_append(&b, "x", (size_t)-1 - 2), UV_ENOMEM);
  /* Unchanged by the failures. */
  assert_int_equal(b.len, 4);
  assert_memory_equal(uvws__buf_data(&b), "keep", 4);
  uvws__buf_free(&b);
}

static void test_buf_free(void **state) {
  uvws__buf_t b = {0};
  (void)state;
  uvws__buf_free(&b); /* never allocated */
  assert_int_equal(uvws__buf_append(&b, "abc", 3), 0);
  uvws__buf_consume(&b, 1);
  uvws__buf_free(&b);
  assert_null(b.base);
  assert_int_equal(b.off, 0);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  uvws__buf_free(&b); /* twice */
  /* Reusable after free. */
  assert_int_equal(uvws__buf_append(&b, "again", 5), 0);
  assert_memory_equal(uvws__buf_data(&b), "again", 5);
  uvws__buf_free(&b);
}

/* Random appends, reserves and consumes against a plain model. */
static void test_random_against_model(void **state) {
  static uint8_t model[4 << 20];
  size_t mlen = 0, mstart = 0;
  uint64_t rs = 42;
  uint8_t src[3000];
  uvws__buf_t b = {0};
  int step;
  (void)state;
  for (step = 0; step < 20000; step++) {
    uint32_t r;
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    r = (uint32_t)(rs >> 33);
    if (r % 3 != 0) {
      size_t n = (r >> 4) % sizeof(src), i;
      for (i = 0; i < n; i++) src[i] = (uint8_t)(step + i);
      if (mstart + mlen + n > sizeof(model)) {
        memmove(model, model + mstart, mlen);
        mstart = 0;
      }
      assert_true(mstart + mlen + n <= sizeof(model));
      memcpy(model + mstart + mlen, src, n);
      mlen += n;
      if (r & 8) {
        assert_int_equal(uvws__buf_append(&b, src, n), 0);
      } else {
        assert_int_equal(uvws__buf_reserve(&b, n), 0);
        assert_true(b.cap - b.off - b.len >= n);
        if (n) memcpy(uvws__buf_tail(&b), src, n);
        b.len += n;
      }
    } else {
      /* Growing in the first half, draining in the second. */
      size_t n = (r >> 4) % (step < 10000 ? 5000 : 9000);
      uvws__buf_consume(&b, n);
      if (n >= mlen) {
        mstart = 0;
        mlen = 0;
      } else {
        mstart += n;
        mlen -= n;
      }
    }
    check_invariants(&b);
    assert_int_equal(b.len, mlen);
    if (mlen && memcmp(uvws__buf_data(&b), model + mstart, mlen) != 0)
      fail_msg("buffer differs from the model at step %d", step);
  }
  uvws__buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_and_consume),
      cmocka_unit_test(test_consume_more_than_len),
      cmocka_unit_test(test_append_empty),
      cmocka_unit_test(test_growth),
      cmocka_unit_test(test_reserve),
      cmocka_unit_test(test_reserve_reclaims_front),
      cmocka_unit_test(test_reserve_grows_with_offset),
      cmocka_unit_test(test_reserve_overflow),
      cmocka_unit_test(test_buf_free),
      cmocka_unit_test(test_random_against_model),
  };
  return cmocka_run_group_tests_name("wbuf", tests, NULL, NULL);
}

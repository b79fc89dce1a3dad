/* Unit tests for request-target resolution and MIME types (src/path.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/path.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int resolve(const char *target, char *out, size_t outsz, int *dir) {
  return uvws__path_resolve(target, strlen(target), out, outsz, dir);
}

static void test_resolve_ok(void **state) {
  static const struct {
    const char *target, *out;
    int dir;
  } cases[] = {
      {"/", "", 1},
      {"//", "", 1},
      {"/.", "", 1},
      {"/./", "", 1},
      {"/index.html", "index.html", 0},
      {"/a/b/", "a/b", 1},
      {"/a/b", "a/b", 0},
      {"/a//b", "a/b", 0},
      {"///a///b///", "a/b", 1},
      {"/./a", "a", 0},
      {"/a/./b", "a/b", 0},
      {"/a/.", "a", 1},
      {"/a?x=1", "a", 0},
      {"/a/?x=1", "a", 1},
      {"/?x", "", 1},
      {"/a#frag", "a", 0},
      {"/a?q=/../../etc/passwd", "a", 0},
      {"/a#/../..", "a", 0},
      {"/a?b#c", "a", 0},
      {"/a%20b", "a b", 0},
      {"/%41%62c", "Abc", 0},
      {"/%7e%7E", "~~", 0},
      {"/caf%C3%A9", "caf\xc3\xa9", 0},
      {"/caf\xc3\xa9/", "caf\xc3\xa9", 1},
      {"/a%3fb", "a?b", 0},
      {"/a%23b", "a#b", 0},
      {"/%2e/a", "a", 0},
      {"/a%2e", "a.", 0},
      {"/.hidden", ".hidden", 0},
      {"/...", "...", 0},
      {"/..a/a..", "..a/a..", 0},
      {"/dir.d/file.txt", "dir.d/file.txt", 0},
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(cases); i++) {
    char out[256];
    int dir = -1, r;
    memset(out, 'X', sizeof(out));
    r = resolve(cases[i].target, out, sizeof(out), &dir);
    if (r != 0) fail_msg("'%s': returned %d", cases[i].target, r);
    if (strcmp(out, cases[i].out) != 0)
      fail_msg("'%s': got '%s', want '%s'", cases[i].target, out, cases[i].out);
    if (dir != cases[i].dir) fail_msg("'%s': dir %d, want %d", cases[i].target, dir, cases[i].dir);
  }
}

static void test_resolve_refused(void **state) {
  static const char *cases[] = {
      "..", "/..", "/../", "/../x", "/a/../b", "/a/..", "/a/..?x", "/a/b/../../..",
      "/%2e%2e/x", "/%2E%2e/x", "/%2E%2E", "/.%2e/x", "/%2e./x", "/a/.%2E",
      "/a%2fb", "/a%2Fb", "/%2f", "/a%5cb", "/a%5Cb", "/a\\b", "/\\", "/..\\x",
      "/%00", "/a%00b", "/a%01", "/%1f", "/%1F", "/a%7f", "/a%7F", "/a\x01" "b", "/a\tb",
      "/a\x1f", "/a\x7f", "/a\rb", "/a\nb", "/a%0d%0ab", "/%zz", "/%4", "/%", "/a%g0", "/a%0g", "/%4?x",
      "x", "*", "http://h/x", "", "?x", "#x", " /a", "a/b",
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(cases); i++) {
    char out[256];
    int dir = 0, r;
    r = resolve(cases[i], out, sizeof(out), &dir);
    if (r != 400) fail_msg("'%s': returned %d, want 400", cases[i], r);
  }
}

/* Only `len` bytes of the target count: a NUL or more text beyond is not read. */
static void test_resolve_uses_len(void **state) {
  char out[64];
  int dir = 0;
  (void)state;
  assert_int_equal(uvws__path_resolve("/abc/../x", 4, out, sizeof(out), &dir), 0);
  assert_string_equal(out, "abc");
  assert_int_equal(dir, 0);
  assert_int_equal(uvws__path_resolve("/a%41", 4, out, sizeof(out), &dir), 400);
  /* A raw NUL inside len is a control character. */
  assert_int_equal(uvws__path_resolve("/a\0b", 4, out, sizeof(out), &dir), 400);
  /* The query is cut even when len reaches beyond it. */
  assert_int_equal(uvws__path_resolve("/ab?c", 5, out, sizeof(out), &dir), 0);
  assert_string_equal(out, "ab");
}

static void test_resolve_too_long(void **state) {
  char target[600];
  char out[64];
  int dir = 0;
  (void)state;
  target[0] = '/';
  memset(target + 1, 'a', 500);
  target[501] = '\0';
  assert_int_equal(resolve(target, out, sizeof(out), &dir), 414);
  /* Many short segments. */
  {
    size_t i;
    for (i = 0; i < 100; i++) {
      target[2 * i] = '/';
      target[2 * i + 1] = 'b';
    }
    target[200] = '\0';
    assert_int_equal(resolve(target, out, sizeof(out), &dir), 414);
  }
  /* No room at all. */
  assert_int_equal(resolve("/", out, 0, &dir), 414);
  /* Empty and dot segments do not take room: a long run of them is fine. */
  {
    size_t i;
    for (i = 0; i < 150; i++) {
      target[2 * i] = '/';
      target[2 * i + 1] = '/';
    }
    memcpy(target + 300, "/ok", 4);
    assert_int_equal(resolve(target, out, sizeof(out), &dir), 0);
    assert_string_equal(out, "ok");
  }
  /* Percent-escapes count as the decoded byte. */
  {
    size_t i;
    target[0] = '/';
    for (i = 0; i < 40; i++) memcpy(target + 1 + 3 * i, "%41", 3);
    target[121] = '\0';
    assert_int_equal(resolve(target, out, sizeof(out), &dir), 0);
    assert_int_equal(strlen(out), 40);
  }
}

/* The contract: a result of up to outsz - 1 bytes fits, a longer one is 414. */
static void test_resolve_length_boundary(void **state) {
  char target[80], out[80];
  size_t n;
  (void)state;
  for (n = 1; n < 40; n++) {
    int dir = 0, r;
    target[0] = '/';
    memset(target + 1, 'c', n);
    target[n + 1] = '\0';
    /* Plenty of room. */
    assert_int_equal(resolve(target, out, n + 8, &dir), 0);
    assert_int_equal(strlen(out), n);
    /* One byte short for the NUL. */
    assert_int_equal(resolve(target, out, n, &dir), 414);
    /* Exactly enough for the result and its NUL. */
    r = resolve(target, out, n + 1, &dir);
    if (r != 0) fail_msg("'%s' (%zu bytes) with outsz %zu: returned %d, want 0", target, n, n + 1, r);
    assert_int_equal(strlen(out), n);
  }
}

/* Dot and empty segments are dropped, so they need no room in `out`
 * either: "/ccc/." resolves to "ccc", which fits in 4 bytes. */
static void test_resolve_dot_segment_room(void **state) {
  static const char *suffixes[] = {"/.", "/./", "//", "/./."};
  char target[80], out[80];
  size_t n, k;
  (void)state;
  for (k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
    for (n = 1; n < 20; n++) {
      int dir = 0, r;
      target[0] = '/';
      memset(target + 1, 'c', n);
      strcpy(target + 1 + n, suffixes[k]);
      /* With room to spare, the result is the plain segment. */
      assert_int_equal(resolve(target, out, n + 8, &dir), 0);
      assert_int_equal(strlen(out), n);
      assert_int_equal(dir, 1);
      /* One spare byte beyond the result and its NUL. */
      r = resolve(target, out, n + 2, &dir);
      if (r != 0) fail_msg("'%s' with outsz %zu: returned %d, want 0", target, n + 2, r);
      assert_int_equal(strlen(out), n);
    }
  }
}

static void test_path_len(void **state) {
  (void)state;
  assert_int_equal(uvws__path_len("/a/b?x=1", 8), 4);
  assert_int_equal(uvws__path_len("/a#f", 4), 2);
  assert_int_equal(uvws__path_len("/a?x#f", 6), 2);
  assert_int_equal(uvws__path_len("/a#f?x", 6), 2);
  assert_int_equal(uvws__path_len("/abc", 4), 4);
  assert_int_equal(uvws__path_len("?", 1), 0);
  assert_int_equal(uvws__path_len("", 0), 0);
  assert_int_equal(uvws__path_len("/abc?", 3), 3);
}

static void test_mime_types(void **state) {
  static const struct {
    const char *name, *type;
  } cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"logo.svg", "image/svg+xml"},
      {"img.png", "image/png"},
      {"favicon.ico", "image/x-icon"},
      {"data.json", "application/json"},
      {"prog.wasm", "application/wasm"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"INDEX.HTML", "text/html; charset=utf-8"},
      {"App.Js", "text/javascript; charset=utf-8"},
      {"IMG.PNG", "image/png"},
      {"a/b/c.css", "text/css; charset=utf-8"},
      {"archive.tar.json", "application/json"},
  };
  static const char *unknown[] = {
      "README", "Makefile", "dir.d/file", "a.html/b", "file.", "file.htmlx", "file.xhtml",
      "file.bin", "", "html", "js",
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(cases); i++) {
    const char *got = uvws__mime_type(cases[i].name);
    assert_non_null(got);
    if (strcmp(got, cases[i].type) != 0)
      fail_msg("'%s': got '%s', want '%s'", cases[i].name, got, cases[i].type);
  }
  for (i = 0; i < NELEM(unknown); i++) {
    const char *got = uvws__mime_type(unknown[i]);
    assert_non_null(got);
    if (strcmp(got, "application/octet-stream") != 0)
      fail_msg("'%s': got '%s', want application/octet-stream", unknown[i], got);
  }
}

/* Routes are matched against the undecoded target: only paths a target
 * can carry as they are may be routes. */
static void test_route_paths(void **state) {
  static const char *const ok[] = {"/", "/echo", "/a/b/c", "/caf%C3%A9", "/a-b_c.d~e", "/!$&'()*+,;=:@",
                                   "/%2f", "/x%41"};
  static const char *const bad[] = {"", "echo", "/a b", "/a?b", "/a#b", "/caf\xc3\xa9", "/%", "/%4",
                                    "/%zz", "/a\tb", "/a\\b", "/\"x\"", "/<x>", "/a\x7f", "/a`b", "/{x}"};
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(ok); i++)
    if (!uvws__path_route_ok(ok[i], strlen(ok[i]))) fail_msg("'%s' refused", ok[i]);
  for (i = 0; i < NELEM(bad); i++)
    if (uvws__path_route_ok(bad[i], strlen(bad[i]))) fail_msg("'%s' accepted", bad[i]);
  /* the length counts, not a NUL */
  assert_false(uvws__path_route_ok("/a\0b", 4));
  assert_true(uvws__path_route_ok("/ab?", 3));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route_paths),
      cmocka_unit_test(test_resolve_ok),
      cmocka_unit_test(test_resolve_refused),
      cmocka_unit_test(test_resolve_uses_len),
      cmocka_unit_test(test_resolve_too_long),
      cmocka_unit_test(test_resolve_length_boundary),
      cmocka_unit_test(test_resolve_dot_segment_room),
      cmocka_unit_test(test_path_len),
      cmocka_unit_test(test_mime_types),
  };
  return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}

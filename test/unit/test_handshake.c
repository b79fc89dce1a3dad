/* Unit tests for the opening handshake helpers (src/handshake.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/handshake.h"
#include "uvws.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uvws__hval_t hv(const char *s) {
  uvws__hval_t v;
  v.p = s;
  v.len = s ? strlen(s) : 0;
  return v;
}

/* ---- Sec-WebSocket-Accept ------------------------------------------------ */

static void test_accept_rfc_sample(void **state) {
  char out[UVWS__ACCEPT_LEN + 1];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  (void)state;
  memset(out, 'X', sizeof(out));
  assert_int_equal(uvws__accept_key(key, strlen(key), out, NULL), 0);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_accept_more_vectors(void **state) {
  static const struct {
    const char *key, *accept;
  } v[] = {
      {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
      {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(v); i++) {
    char out[UVWS__ACCEPT_LEN + 1];
    assert_int_equal(uvws__accept_key(v[i].key, strlen(v[i].key), out, NULL), 0);
    assert_int_equal(strlen(out), UVWS__ACCEPT_LEN);
    assert_string_equal(out, v[i].accept);
  }
  /* Only `len` bytes of the key are hashed. */
  {
    char out[UVWS__ACCEPT_LEN + 1];
    const char *padded = "dGhlIHNhbXBsZSBub25jZQ==trailing garbage";
    assert_int_equal(uvws__accept_key(padded, 24, out, NULL), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  }
}

/* The raw SHA-1 digest, when asked for, and the public wrapper. */
static void test_accept_digest(void **state) {
  static const unsigned char want[20] = {0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6,
                                         0x46, 0x06, 0xcf, 0x38, 0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea};
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  char out[UVWS__ACCEPT_LEN + 1];
  unsigned char sha1[20];
  uint8_t sha1b[20];
  char pub[29];
  (void)state;
  memset(sha1, 0, sizeof(sha1));
  assert_int_equal(uvws__accept_key(key, strlen(key), out, sha1), 0);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert_memory_equal(sha1, want, 20);

  memset(pub, 'X', sizeof(pub));
  memset(sha1b, 0, sizeof(sha1b));
  assert_int_equal(uvws_accept_key(key, strlen(key), pub, sha1b), 0);
  assert_string_equal(pub, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert_memory_equal(sha1b, want, 20);
  assert_int_equal(uvws_accept_key(key, strlen(key), pub, NULL), 0);
  assert_string_equal(pub, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- Sec-WebSocket-Key ---------------------------------------------------- */

static void test_key_valid(void **state) {
  static const char *good[] = {
      "dGhlIHNhbXBsZSBub25jZQ==", "x3JJHMbDL1EzLkh9GBhXDw==", "AAAAAAAAAAAAAAAAAAAAAA==",
      "AAECAwQFBgcICQoLDA0ODw==", "/////////////////////w==", "+++++++++++++++++++++w==",
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(good); i++)
    if (!uvws__key_valid(good[i], strlen(good[i]))) fail_msg("valid key '%s' rejected", good[i]);
}

static void test_key_invalid(void **state) {
  static const char *bad[] = {
      "",
      "dGhlIHNhbXBsZSBub25jZQ=",     /* 16 bytes, one '=' short */
      "dGhlIHNhbXBsZSBub25jZQ",      /* 16 bytes, no padding */
      "dGhlIHNhbXBsZSBub25jZQ===",   /* too much padding */
      "dGhlIHNhbXBsZSBub25jZQ==\n",  /* trailing newline */
      " dGhlIHNhbXBsZSBub25jZQ==",   /* leading space */
      "YWFhYWFhYWFhYWFhYWFh",        /* 15 bytes */
      "YWFhYWFhYWFhYWFhYWFhYWE=",    /* 17 bytes, also 24 characters */
      "YWFhYWFhYWFhYWFhYWFhYWFh",    /* 18 bytes, 24 characters */
      "dGhlIHNhbXBsZSBub25j*Q==",    /* not base64 */
      "dGhlIHNh!XBsZSBub25jZQ==",    /* not base64 */
      "dGhlIHNhbXBsZSBub25jZ-==",    /* base64url alphabet */
      "dGhlIHNhbXBsZSBub25jZ_==",    /* base64url alphabet */
      "dGhl=HNhbXBsZSBub25jZQ==",    /* '=' inside */
      "dGhlIHNhbXBsZSBub25jZ===",    /* 15.75 bytes */
      "dGhlIHNh bXBsZSBub25jZ==",    /* space inside */
      "dGhlIHNh\nbXBsZSBub25jZ==",   /* newline inside */
      "========================",    /* padding only */
      "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==", /* 32 bytes */
  };
  size_t i;
  (void)state;
  for (i = 0; i < NELEM(bad); i++)
    if (uvws__key_valid(bad[i], strlen(bad[i]))) fail_msg("invalid key '%s' accepted", bad[i]);
  assert_false(uvws__key_valid(NULL, 0));
  assert_false(uvws__key_valid(NULL, 24));
  /* An embedded NUL counts as a character. */
  assert_false(uvws__key_valid("dGhlIHNhbXBs\0SBub25jZQ==", 24));
  /* A valid key given a wrong length. */
  assert_false(uvws__key_valid("dGhlIHNhbXBsZSBub25jZQ==", 23));
}

/* ---- comma lists ----------------------------------------------------------- */

static int has(const char *v, const char *token) {
  return uvws__list_has_token(v, v ? strlen(v) : 0, token);
}

static void test_list_has_token(void **state) {
  (void)state;
  assert_true(has("Upgrade", "upgrade"));
  assert_true(has("upgrade", "Upgrade"));
  assert_true(has("UPGRADE", "upgrade"));
  assert_true(has("keep-alive, Upgrade", "upgrade"));
  assert_true(has("keep-alive,Upgrade", "upgrade"));
  assert_true(has("Upgrade, keep-alive", "upgrade"));
  assert_true(has("  Upgrade  ", "upgrade"));
  assert_true(has("\tUpgrade\t,close", "upgrade"));
  assert_true(has(",, ,Upgrade, ,", "upgrade"));
  assert_true(has("a, b, websocket", "websocket"));
  assert_true(has("keep-alive, Upgrade", "keep-alive"));

  assert_false(has("Upgrade2", "upgrade"));
  assert_false(has("Upgrades", "upgrade"));
  assert_false(has("xUpgrade", "upgrade"));
  assert_false(has("Upgrade2, keep-alive", "upgrade"));
  assert_false(has("up grade", "upgrade"));
  assert_false(has("Upgrade keep-alive", "upgrade")); /* not a list item of its own */
  assert_false(has("keep-alive", "upgrade"));
  assert_false(has("", "upgrade"));
  assert_false(has(" , ,, ", "upgrade"));
  assert_false(has("upgrad", "upgrade"));
  assert_false(has(NULL, "upgrade"));
  /* Only `len` bytes count. */
  assert_false(uvws__list_has_token("keep-alive, Upgrade", 12, "upgrade"));
  assert_true(uvws__list_has_token("Upgrade, keep-alive", 7, "upgrade"));
  assert_false(uvws__list_has_token("Upgrade", 6, "upgrade"));
}

static void test_select_subprotocol(void **state) {
  static const char *const spoken[] = {"superchat", "chat", "v2.json", NULL};
  static const char *const none[] = {NULL};
  const char *offer;
  (void)state;

  /* Client order wins over the server's. */
  offer = "chat, superchat";
  assert_ptr_equal(uvws__select_subprotocol(offer, strlen(offer), spoken), spoken[1]);
  offer = "superchat, chat";
  assert_ptr_equal(uvws__select_subprotocol(offer, strlen(offer), spoken), spoken[0]);
  offer = "unknown,  v2.json ,chat";
  assert_ptr_equal(uvws__select_subprotocol(offer, strlen(offer), spoken), spoken[2]);

  /* No match. */
  offer = "mqtt, wamp";
  assert_null(uvws__select_subprotocol(offer, strlen(offer), spoken));
  offer = "";
  assert_null(uvws__select_subprotocol(offer, 0, spoken));
  offer = "chat";
  assert_null(uvws__select_subprotocol(offer, strlen(offer), none));
  assert_null(uvws__select_subprotocol(offer, strlen(offer), NULL));
  assert_null(uvws__select_subprotocol(NULL, 0, spoken));

  /* Exact case and exact length. */
  offer = "Chat, SUPERCHAT";
  assert_null(uvws__select_subprotocol(offer, strlen(offer), spoken));
  offer = "cha, chats, superchat2";
  assert_null(uvws__select_subprotocol(offer, strlen(offer), spoken));
  offer = "Chat, chat";
  assert_ptr_equal(uvws__select_subprotocol(offer, strlen(offer), spoken), spoken[1]);
}

/* ---- the upgrade request ----------------------------------------------------- */

static uvws__upgrade_req_t good_request(void) {
  uvws__upgrade_req_t r;
  memset(&r, 0, sizeof(r));
  r.is_get = 1;
  r.http_major = 1;
  r.http_minor = 1;
  r.host = hv("server.example.com");
  r.upgrade = hv("websocket");
  r.connection = hv("Upgrade");
  r.key = hv("dGhlIHNhbXBsZSBub25jZQ==");
  r.version = hv("13");
  return r;
}

static void expect_status(const uvws__upgrade_req_t *r, int status) {
  const char *why = NULL;
  int got = uvws__upgrade_check(r, &why);
  assert_int_equal(got, status);
  if (status != 0) {
    assert_non_null(why);
    assert_true(strlen(why) > 0);
  }
}

static void test_upgrade_valid(void **state) {
  uvws__upgrade_req_t r = good_request();
  (void)state;
  expect_status(&r, 0);
  /* Case and list forms. */
  r.upgrade = hv("WebSocket");
  r.connection = hv("keep-alive, Upgrade");
  expect_status(&r, 0);
  r.upgrade = hv("h2c, websocket");
  r.connection = hv("upgrade");
  expect_status(&r, 0);
  /* A later HTTP/1.x minor version. */
  r.http_minor = 2;
  expect_status(&r, 0);
}

static void test_upgrade_failures(void **state) {
  uvws__upgrade_req_t r;
  (void)state;

  r = good_request();
  r.is_get = 0;
  expect_status(&r, 400);

  r = good_request();
  r.http_minor = 0;
  expect_status(&r, 400);
  r = good_request();
  r.http_major = 2;
  r.http_minor = 0;
  expect_status(&r, 400);
  r = good_request();
  r.http_major = 0;
  r.http_minor = 9;
  expect_status(&r, 400);

  r = good_request();
  r.host = hv(NULL);
  expect_status(&r, 400);
  r = good_request();
  r.host = hv("");
  expect_status(&r, 400);

  r = good_request();
  r.upgrade = hv(NULL);
  expect_status(&r, 400);
  r = good_request();
  r.upgrade = hv("h2c");
  expect_status(&r, 400);
  r = good_request();
  r.upgrade = hv("websocket2");
  expect_status(&r, 400);

  r = good_request();
  r.connection = hv(NULL);
  expect_status(&r, 400);
  r = good_request();
  r.connection = hv("keep-alive");
  expect_status(&r, 400);
  r = good_request();
  r.connection = hv("Upgrade2");
  expect_status(&r, 400);

  r = good_request();
  r.key = hv(NULL);
  expect_status(&r, 400);
  r = good_request();
  r.key = hv("");
  expect_status(&r, 400);
  r = good_request();
  r.key = hv("dGhlIHNhbXBsZSBub25jZQ=");
  expect_status(&r, 400);
  r = good_request();
  r.key = hv("not a key at all");
  expect_status(&r, 400);

  r = good_request();
  r.version = hv(NULL);
  expect_status(&r, 400);

  r = good_request();
  r.version = hv("8");
  expect_status(&r, 426);
  r = good_request();
  r.version = hv("12");
  expect_status(&r, 426);
  r = good_request();
  r.version = hv("14");
  expect_status(&r, 426);
  r = good_request();
  r.version = hv("130");
  expect_status(&r, 426);
  r = good_request();
  r.version = hv("");
  expect_status(&r, 426);
}

static void test_upgrade_wanted(void **state) {
  uvws__upgrade_req_t r;
  (void)state;
  r = good_request();
  assert_true(uvws__upgrade_wanted(&r));

  /* Upgrade naming websocket alone. */
  memset(&r, 0, sizeof(r));
  r.upgrade = hv("WebSocket");
  assert_true(uvws__upgrade_wanted(&r));
  r.upgrade = hv("h2c, websocket");
  assert_true(uvws__upgrade_wanted(&r));

  /* A key alone. */
  memset(&r, 0, sizeof(r));
  r.key = hv("garbage");
  assert_true(uvws__upgrade_wanted(&r));

  /* Plain HTTP. */
  memset(&r, 0, sizeof(r));
  r.is_get = 1;
  r.http_major = 1;
  r.http_minor = 1;
  r.host = hv("h");
  assert_false(uvws__upgrade_wanted(&r));
  r.connection = hv("Upgrade");
  r.upgrade = hv("h2c");
  assert_false(uvws__upgrade_wanted(&r));
  r.version = hv("13");
  assert_false(uvws__upgrade_wanted(&r));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_rfc_sample),
      cmocka_unit_test(test_accept_more_vectors),
      cmocka_unit_test(test_accept_digest),
      cmocka_unit_test(test_key_valid),
      cmocka_unit_test(test_key_invalid),
      cmocka_unit_test(test_list_has_token),
      cmocka_unit_test(test_select_subprotocol),
      cmocka_unit_test(test_upgrade_valid),
      cmocka_unit_test(test_upgrade_failures),
      cmocka_unit_test(test_upgrade_wanted),
  };
  return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}

/* The inspector's frame description (src/apps/inspect.c): the JSON a
 * learner's page is built from must say exactly what crossed the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apps.h"

static json_t *describe(const uvws_frame_info_t *f, uint64_t t) {
  char *text = uvws_app_inspect_describe(f, t);
  json_error_t err;
  json_t *j;
  assert_non_null(text);
  j = json_loads(text, 0, &err);
  assert_non_null(j);
  free(text);
  return j;
}

static void assert_str(json_t *j, const char *key, const char *want) {
  json_t *v = json_object_get(j, key);
  assert_non_null(v);
  assert_true(json_is_string(v));
  assert_string_equal(json_string_value(v), want);
}

static void assert_int(json_t *j, const char *key, long long want) {
  json_t *v = json_object_get(j, key);
  assert_non_null(v);
  assert_true(json_is_integer(v));
  assert_int_equal(json_integer_value(v), want);
}

static void assert_bool(json_t *j, const char *key, int want) {
  json_t *v = json_object_get(j, key);
  assert_non_null(v);
  assert_true(json_is_boolean(v));
  assert_int_equal(json_is_true(v), want);
}

/* RFC 6455 section 5.7: a masked "Hello" from a client. */
static void masked_hello_in(void **state) {
  static const uint8_t header[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
  uvws_frame_info_t f;
  json_t *j;
  (void)state;
  memset(&f, 0, sizeof(f));
  f.dir = UVWS_FRAME_IN;
  f.fin = 1;
  f.opcode = UVWS_OP_TEXT;
  f.masked = 1;
  memcpy(f.mask, header + 2, 4);
  f.len = 5;
  f.len_bits = 7;
  f.header = header;
  f.header_len = sizeof(header);
  f.payload = (const uint8_t *)"Hello";
  f.payload_len = 5;
  j = describe(&f, 42);
  assert_str(j, "uvws", "frame");
  assert_str(j, "dir", "in");
  assert_int(j, "t", 42);
  assert_bool(j, "fin", 1);
  assert_bool(j, "rsv1", 0);
  assert_int(j, "opcode", 1);
  assert_str(j, "op", "text");
  assert_bool(j, "masked", 1);
  assert_str(j, "mask", "37fa213d");
  assert_int(j, "len", 5);
  assert_int(j, "len_bits", 7);
  assert_str(j, "header", "818537fa213d");
  assert_str(j, "payload", "48656c6c6f");
  /* the wire bytes of the RFC's example: 7f 9f 4d 51 58 */
  assert_str(j, "masked_payload", "7f9f4d5158");
  assert_bool(j, "truncated", 0);
  json_decref(j);
}

/* A 70 000-byte binary frame from the server: 64-bit length, unmasked,
 * only the first 16 payload bytes reported. */
static void long_binary_out(void **state) {
  static const uint8_t header[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70};
  uint8_t payload[16];
  uvws_frame_info_t f;
  json_t *j;
  (void)state;
  memset(payload, 0xab, sizeof(payload));
  memset(&f, 0, sizeof(f));
  f.dir = UVWS_FRAME_OUT;
  f.fin = 1;
  f.rsv = 0x40;
  f.opcode = UVWS_OP_BINARY;
  f.len = 70000;
  f.len_bits = 64;
  f.header = header;
  f.header_len = sizeof(header);
  f.payload = payload;
  f.payload_len = 16;
  j = describe(&f, 0);
  assert_str(j, "dir", "out");
  assert_bool(j, "rsv1", 1);
  assert_bool(j, "rsv2", 0);
  assert_str(j, "op", "binary");
  assert_bool(j, "masked", 0);
  assert_true(json_is_null(json_object_get(j, "mask")));
  assert_null(json_object_get(j, "masked_payload"));
  assert_int(j, "len", 70000);
  assert_int(j, "len_bits", 64);
  assert_str(j, "header", "827f0000000000011170");
  assert_str(j, "payload", "abababababababababababababababab");
  assert_bool(j, "truncated", 1);
  json_decref(j);
}

/* Control and reserved opcodes get their names; an empty close is empty. */
static void opcode_names(void **state) {
  static const struct {
    int op;
    const char *name;
  } cases[] = {{0, "continuation"}, {8, "close"}, {9, "ping"}, {10, "pong"}, {3, "reserved"}, {0xb, "reserved"}};
  uint8_t header[2];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uvws_frame_info_t f;
    json_t *j;
    memset(&f, 0, sizeof(f));
    header[0] = (uint8_t)(0x80 | cases[i].op);
    header[1] = 0;
    f.dir = UVWS_FRAME_IN;
    f.fin = 1;
    f.opcode = cases[i].op;
    f.len_bits = 7;
    f.header = header;
    f.header_len = 2;
    f.payload = header;
    f.payload_len = 0;
    j = describe(&f, 1);
    assert_str(j, "op", cases[i].name);
    assert_int(j, "opcode", cases[i].op);
    assert_str(j, "payload", "");
    assert_int(j, "len", 0);
    json_decref(j);
  }
}

/* "?deflate=off" is read as a query, pair by pair, decoded: not a substring. */
static void query_pairs(void **state) {
  static const struct {
    const char *target;
    int has;
  } cases[] = {
      {"/echo?deflate=off", 1},
      {"/echo?x=1&deflate=off", 1},
      {"/echo?deflate=off&x=1", 1},
      {"/echo?&&deflate=off&", 1},
      {"/echo?deflate=%6Fff", 1},
      {"/echo?de%66late=off#frag", 1},
      {"/echo", 0},
      {"/echo?", 0},
      {"/echo?deflate=offx", 0},
      {"/echo?xdeflate=off", 0},
      {"/echo?deflate=on", 0},
      {"/echo?deflate", 0},
      {"/echo?deflate=", 0},
      {"/echo?deflate=of%", 0},
      {"/echo?deflate=of%6", 0},
      {"/echo?deflate=of%zz", 0},
      {"/echo?x=deflate=off", 0},
      {"/echo#?deflate=off", 0},
      {"/echo?a=1#&deflate=off", 0},
      {"/deflate=off", 0},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *t = cases[i].target;
    if (uvws_app_query_has(t, strlen(t), "deflate", "off") != cases[i].has) fail_msg("%s", t);
  }
  /* the length is the bound, not a NUL */
  assert_int_equal(uvws_app_query_has("/echo?deflate=offx", 17, "deflate", "off"), 1);
  assert_int_equal(uvws_app_query_has("/echo?deflate=off", 16, "deflate", "off"), 0);
  assert_int_equal(uvws_app_query_has(NULL, 0, "deflate", "off"), 0);
  assert_int_equal(uvws_app_query_has("/?a+b=c%20d", 11, "a b", "c d"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(masked_hello_in),
      cmocka_unit_test(long_binary_out),
      cmocka_unit_test(opcode_names),
      cmocka_unit_test(query_pairs),
  };
  return cmocka_run_group_tests_name("inspect", tests, NULL, NULL);
}

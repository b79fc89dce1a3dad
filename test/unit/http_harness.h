/* The HTTP session (src/http/) on the fake stream of test/common: what it
 * writes is checked byte for byte, the peer's reading is the test's choice
 * (peer_reads), and the runtime's callbacks (route, upgrade, metrics,
 * state) are stubs recording their calls, as in test/fuzz/fuzz_http.c. The
 * web root is a temporary folder with a small file, a big one and a
 * folder. Shared by test_http.c (requests and answers) and
 * test_http_upgrade.c (the upgrade and the route's decision); each test
 * runs between setup() and teardown(), the group between group_setup()
 * and group_teardown(). */
#ifndef UVWS_TEST_HTTP_HARNESS_H
#define UVWS_TEST_HTTP_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_stream.h"
#include "http/http.h"

#define FILE_BODY "hello, file\n"
#define FILE_LEN (sizeof(FILE_BODY) - 1)
#define BIG_LEN (1024u * 1024u + 123u)
#define METRICS_LEN 4096u /* each /metrics body: "seq NNNNNN\n", then padding */

#define GET(path) "GET " path " HTTP/1.1\r\nHost: h\r\n\r\n"

extern uv_loop_t loop;
extern uvws_options_t opts;
extern uvws__metrics_t m;
extern uvws__route_t route; /* /echo, the only WebSocket route */
extern char *big;           /* big.bin's content */
extern fake_stream_t f;     /* the session's stream */
extern int opened;

/* what the stubs saw */
extern unsigned metrics_calls, upgrades, ws_closes;
extern const uvws__route_t *up_route;
extern uvws__buf_t up_rest, up_out, up_head, up_target;
extern size_t up_nheaders;
extern char up_header0[64];
extern void *up_data;
extern int upgrade_fails; /* the stub's hand-off fails (ENOMEM) */

/* on_upgrade, a route's decision: what it answers, and what it read */
extern int decide_status;
extern unsigned decides, releases;
extern char decided_host[16], decided_target[16], decided_peer[64];
extern int decided_secure, add_bad_name, add_bad_value;
int on_upgrade(uvws_upgrade_t *up);

/* The route table /routes.json lists (set by each test). */
extern uvws__route_t table[4];
extern size_t table_n;
void table_set(size_t i, const char *path, size_t len);

int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int teardown(void **state);
void open_session(int refuse);
uvws__http_env_t *http_env(void); /* the environment open_session() uses */
void feed(const char *s);
int out_has(const char *needle);

/* ---- reading what the session wrote ------------------------------------------------ */

typedef struct {
  int status;
  const char *head; /* through the blank line */
  size_t head_len;
  const char *body;
  size_t body_len;
} resp_t;

const char *find(const char *p, size_t n, const char *needle);
/* The value of header `name` (exact case, as uvws writes them), or NULL. */
const char *header(const resp_t *r, const char *name, size_t *vlen);
int header_is(const resp_t *r, const char *name, const char *value);
/* Parses the response at *off of f.out; 1 and advances *off, or 0 if
 * there is none (yet). `head_only`: a HEAD answer has no body. */
int next_response(size_t *off, resp_t *r, int head_only);
void expect_body(const resp_t *r, const char *body);

/* Drives the session as the transport would: a deferred turn first (the
 * next loop iteration), else the peer reads what was answered. 0 when
 * there is nothing left to drive. */
int drive(void);
/* Counts metrics responses from *off, checking their order; returns how
 * many were complete. Stops before a 101. */
unsigned take_metrics(size_t *off, unsigned *next_seq, size_t *one);

#endif

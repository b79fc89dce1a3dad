/* Threads: the cross-thread queue (xq.c), frames shared between loops
 * (wqueue.c views), and a server on 4 loops publishing to every loop's
 * subscribers (group.c, pubsub.c). Built into every preset; CI also runs
 * it under ThreadSanitizer (preset tsan), which is where races show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uvws.h"

/* cmocka's assertions may only fail on the test's own thread: elsewhere
 * (producers, loops, clients) a failed check aborts the program. */
#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      abort();                                                                    \
    }                                                                             \
  } while (0)
#define CHECK_EQ(a, b) CHECK((long long)(a) == (long long)(b))
#include "util/wqueue.h"
#include "util/xq.h"

/* ---- the queue --------------------------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 50000

typedef struct {
  uvws__xnode_t node;
  int producer;
  int seq;
} item_t;

typedef struct {
  uvws__xq_t q;
  atomic_int wakes; /* pushes that found the queue empty */
  int id;
} shared_q_t;

static shared_q_t sq;
static item_t *items[PRODUCERS];

static void producer(void *arg) {
  int p = (int)(intptr_t)arg, i;
  for (i = 0; i < PER_PRODUCER; i++) {
    items[p][i].producer = p;
    items[p][i].seq = i;
    if (uvws__xq_push(&sq.q, &items[p][i].node)) atomic_fetch_add(&sq.wakes, 1);
  }
}

static void test_xq_fifo_per_producer(void **state) {
  uv_thread_t t[PRODUCERS];
  int next[PRODUCERS] = {0}, got = 0, p, empty_takes = 0;
  (void)state;
  uvws__xq_init(&sq.q);
  atomic_init(&sq.wakes, 0);
  for (p = 0; p < PRODUCERS; p++) {
    items[p] = calloc(PER_PRODUCER, sizeof(item_t));
    assert_non_null(items[p]);
  }
  for (p = 0; p < PRODUCERS; p++) assert_int_equal(uv_thread_create(&t[p], producer, (void *)(intptr_t)p), 0);
  /* The consumer: everything arrives, each producer's items in push order. */
  while (got < PRODUCERS * PER_PRODUCER) {
    uvws__xnode_t *n = uvws__xq_take(&sq.q);
    if (n == NULL) {
      empty_takes++;
      continue;
    }
    for (; n; n = n->next) {
      item_t *it = (item_t *)n;
      assert_int_equal(it->seq, next[it->producer]);
      next[it->producer]++;
      got++;
    }
  }
  for (p = 0; p < PRODUCERS; p++) uv_thread_join(&t[p]);
  assert_null(uvws__xq_take(&sq.q));
  /* Every batch the consumer took began with a push that saw it empty. */
  assert_true(atomic_load(&sq.wakes) >= 1);
  for (p = 0; p < PRODUCERS; p++) {
    assert_int_equal(next[p], PER_PRODUCER);
    free(items[p]);
  }
  (void)empty_takes;
}

static void test_xq_single_thread_order_and_wake(void **state) {
  uvws__xq_t q;
  item_t a, b, c;
  uvws__xnode_t *n;
  (void)state;
  uvws__xq_init(&q);
  assert_null(uvws__xq_take(&q));
  assert_int_equal(uvws__xq_push(&q, &a.node), 1); /* was empty: wake */
  assert_int_equal(uvws__xq_push(&q, &b.node), 0);
  assert_int_equal(uvws__xq_push(&q, &c.node), 0);
  n = uvws__xq_take(&q);
  assert_ptr_equal(n, &a.node);
  assert_ptr_equal(n->next, &b.node);
  assert_ptr_equal(n->next->next, &c.node);
  assert_null(n->next->next->next);
  assert_int_equal(uvws__xq_push(&q, &a.node), 1);
}

/* ---- frames shared by loops ------------------------------------------------------ */

#define VIEWERS 4

static uvws__sbuf_t *shared_frame;

static void viewer(void *arg) {
  uvws__sbuf_t *v = uvws__sbuf_view(shared_frame);
  int i;
  (void)arg;
  CHECK((v) != NULL);
  CHECK_EQ(v->len, 5);
  CHECK(memcmp(v->data, "hello", 5) == 0);
  for (i = 0; i < 1000; i++) uvws__sbuf_ref(v); /* receivers on this loop */
  for (i = 0; i < 1000; i++) uvws__sbuf_unref(v);
  uvws__sbuf_unref(v); /* drops the cross-thread reference too */
}

static void test_sbuf_views_across_threads(void **state) {
  uv_thread_t t[VIEWERS];
  int i;
  (void)state;
  for (int round = 0; round < 200; round++) {
    shared_frame = uvws__sbuf_new(5);
    memcpy(shared_frame->data, "hello", 5);
    shared_frame->len = 5;
    uvws__sbuf_ref(shared_frame); /* a local receiver */
    uvws__sbuf_xref(shared_frame, VIEWERS);
    for (i = 0; i < VIEWERS; i++) assert_int_equal(uv_thread_create(&t[i], viewer, NULL), 0);
    uvws__sbuf_unref(shared_frame); /* the publisher */
    uvws__sbuf_unref(shared_frame); /* the local receiver: the last free may be any thread's */
    for (i = 0; i < VIEWERS; i++) uv_thread_join(&t[i]);
  }
}

/* ---- a server on 4 loops ------------------------------------------------------- */

#define THREADS 4
#define CLIENTS 8
#define MESSAGES 200

static atomic_int opened, closed;
static uv_async_t stop_async;
static uvws_server_t *srv;
static int srv_port;

static void t_open(uvws_conn_t *c) {
  CHECK_EQ(uvws_subscribe(c, "all"), 0);
  atomic_fetch_add(&opened, 1);
}

static void t_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  /* Every message goes to every subscriber, on every loop. */
  CHECK(uvws_publish(uvws_conn_server(c), "all", op, data, len) >= 0);
}

static void t_close(uvws_conn_t *c, int code, const char *reason, size_t reason_len) {
  (void)c, (void)code, (void)reason, (void)reason_len;
  atomic_fetch_add(&closed, 1);
}

/* /all: each connection subscribes to "all" and publishes what it gets. */
static void add_all_route(uvws_server_t *s) {
  uvws_route_t route;
  memset(&route, 0, sizeof(route));
  route.path = "/all";
  route.handlers.on_open = t_open;
  route.handlers.on_message = t_message;
  route.handlers.on_close = t_close;
  assert_int_equal(uvws_server_route(s, &route), 0);
}

static void on_shutdown(uvws_server_t *s) { (void)s; }

static void on_stop(uv_async_t *a) {
  uv_close((uv_handle_t *)a, NULL);
  uvws_server_shutdown(srv, on_shutdown);
}

static void server_thread(void *arg) {
  uv_loop_t *loop = arg;
  uv_run(loop, UV_RUN_DEFAULT);
}

/* A blocking client: enough of RFC 6455 for small text frames. */
static int ws_connect(int port, const char *path) {
  struct sockaddr_in sa;
  char req[256], resp[1024];
  size_t got = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  CHECK(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  snprintf(req, sizeof(req),
           "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           path);
  CHECK_EQ(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  /* Read byte by byte up to the blank line, so no frame byte is eaten. */
  while (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0) {
    CHECK(got < sizeof(resp));
    CHECK_EQ(read(fd, resp + got, 1), 1);
    got++;
  }
  CHECK(memcmp(resp, "HTTP/1.1 101", 12) == 0);
  return fd;
}

static void read_full(int fd, void *p, size_t n) {
  char *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    CHECK(r > 0);
    b += r;
    n -= (size_t)r;
  }
}

static void ws_send_text(int fd, const char *s) {
  uint8_t f[140];
  size_t n = strlen(s), i;
  CHECK(n < 126);
  f[0] = 0x81;
  f[1] = (uint8_t)(0x80 | n);
  memcpy(f + 2, "\x12\x34\x56\x78", 4);
  for (i = 0; i < n; i++) f[6 + i] = (uint8_t)s[i] ^ f[2 + i % 4];
  CHECK_EQ(write(fd, f, 6 + n), (ssize_t)(6 + n));
}

static size_t ws_recv_text(int fd, char *out, size_t cap) {
  uint8_t h[2];
  read_full(fd, h, 2);
  CHECK_EQ(h[0], 0x81);
  CHECK((h[1] & 0x7f) < 126 && (size_t)(h[1] & 0x7f) < cap);
  read_full(fd, out, h[1] & 0x7f);
  out[h[1] & 0x7f] = '\0';
  return h[1] & 0x7f;
}

static uv_barrier_t all_subscribed;

static void client(void *arg) {
  int id = (int)(intptr_t)arg, fd = ws_connect(srv_port, "/all"), k;
  int next[CLIENTS] = {0};
  char buf[64];
  uv_barrier_wait(&all_subscribed);
  for (k = 0; k < MESSAGES; k++) {
    snprintf(buf, sizeof(buf), "%d:%d", id, k);
    ws_send_text(fd, buf);
  }
  /* Everyone's messages, each sender's in order, none twice. */
  for (k = 0; k < CLIENTS * MESSAGES; k++) {
    int who, seq;
    ws_recv_text(fd, buf, sizeof(buf));
    CHECK_EQ(sscanf(buf, "%d:%d", &who, &seq), 2);
    CHECK(who >= 0 && who < CLIENTS);
    CHECK_EQ(seq, next[who]);
    next[who]++;
  }
  close(fd);
}

static int http_get(int port, const char *path, char *out, size_t cap) {
  struct sockaddr_in sa;
  char req[128];
  size_t got = 0;
  ssize_t r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
  CHECK_EQ(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0) got += (size_t)r;
  out[got] = '\0';
  close(fd);
  return (int)got;
}

static void test_server_on_four_loops(void **state) {
  uv_loop_t loop;
  uv_thread_t loop_thread, clients[CLIENTS];
  uvws_options_t o;
  static char metrics[65536];
  int i;
  (void)state;

  atomic_init(&opened, 0);
  atomic_init(&closed, 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  uvws_options_init(&o);
  o.port = 0;
  o.threads = THREADS;
  o.metrics = 1;
  o.log_connections = 0;
  assert_int_equal(uvws_server_new(&srv, &loop, &o), 0);
  add_all_route(srv);
  assert_int_equal(uvws_server_start(srv), 0);
  srv_port = uvws_server_port(srv);
  assert_true(srv_port > 0);
  assert_int_equal(uv_async_init(&loop, &stop_async, on_stop), 0);
  assert_int_equal(uv_thread_create(&loop_thread, server_thread, &loop), 0);

  assert_int_equal(uv_barrier_init(&all_subscribed, CLIENTS + 1), 0);
  for (i = 0; i < CLIENTS; i++)
    assert_int_equal(uv_thread_create(&clients[i], client, (void *)(intptr_t)i), 0);
  while (atomic_load(&opened) < CLIENTS) usleep(1000);
  /* Every loop's subscribers, whichever loop asks (and from any thread). */
  assert_int_equal(uvws_topic_subscribers(srv, "all"), CLIENTS);
  uv_barrier_wait(&all_subscribed);
  /* /metrics from any loop while every loop is busy: all loops are shown. */
  assert_true(http_get(srv_port, "/metrics", metrics, sizeof(metrics)) > 0);
  assert_non_null(strstr(metrics, "uvws_thread_connections{thread=\"3\"}"));
  for (i = 0; i < CLIENTS; i++) uv_thread_join(&clients[i]);
  while (atomic_load(&closed) < CLIENTS) usleep(1000);
  assert_int_equal(uvws_topic_subscribers(srv, "all"), 0);
  assert_true(http_get(srv_port, "/metrics", metrics, sizeof(metrics)) > 0);
  {
    char want[64];
    snprintf(want, sizeof(want), "uvws_messages_total{dir=\"in\"} %d\n", CLIENTS * MESSAGES);
    assert_non_null(strstr(metrics, want));
    snprintf(want, sizeof(want), "uvws_messages_total{dir=\"out\"} %d\n", CLIENTS * CLIENTS * MESSAGES);
    assert_non_null(strstr(metrics, want));
    assert_non_null(strstr(metrics, "uvws_connections{kind=\"websocket\"} 0\n"));
  }
  uv_async_send(&stop_async);
  uv_thread_join(&loop_thread); /* uv_run returns once every handle is closed */
  uvws_server_free(srv);
  assert_int_equal(uv_loop_close(&loop), 0);
  uv_barrier_destroy(&all_subscribed);
}

/* No loop given: the server runs on threads of its own, and
 * uvws_server_stop() from this thread ends it. */
static void test_server_on_its_own_threads(void **state) {
  uvws_server_t *own;
  uvws_options_t o;
  char buf[64];
  int fd, k;
  (void)state;
  atomic_init(&opened, 0);
  atomic_init(&closed, 0);
  uvws_options_init(&o);
  o.port = 0;
  o.threads = 2;
  o.log_connections = 0;
  assert_int_equal(uvws_server_new(&own, NULL, &o), 0);
  add_all_route(own);
  assert_int_equal(uvws_server_start(own), 0); /* returns with the loops running */
  fd = ws_connect(uvws_server_port(own), "/all");
  for (k = 0; k < 20; k++) {
    char want[16];
    snprintf(want, sizeof(want), "m%d", k);
    ws_send_text(fd, want);
    ws_recv_text(fd, buf, sizeof(buf));
    assert_string_equal(buf, want);
  }
  assert_int_equal(uvws_server_stop(own), 0); /* closes the WebSocket with 1001 */
  {
    uint8_t h[2];
    read_full(fd, h, 2);
    assert_int_equal(h[0], 0x88); /* the close frame */
  }
  close(fd);
  assert_int_equal(atomic_load(&closed), 1);
  uvws_server_free(own);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_xq_single_thread_order_and_wake),
      cmocka_unit_test(test_xq_fifo_per_producer),
      cmocka_unit_test(test_sbuf_views_across_threads),
      cmocka_unit_test(test_server_on_four_loops),
      cmocka_unit_test(test_server_on_its_own_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

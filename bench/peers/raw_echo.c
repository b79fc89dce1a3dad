/* The ceiling for bench/compare: a TCP echo on libuv that does the least a
 * WebSocket server could do. It answers the HTTP upgrade properly (so wsload
 * runs unchanged), then echoes every byte it reads verbatim: the client's
 * masked frames come back still masked (wsload --allow-masked unmasks them).
 * No frame parsing, no unmasking, no UTF-8 check, one read buffer for all.
 * On /broadcast it instead copies every byte a connection sends to all the
 * other connections on /broadcast.
 *
 * Usage: bench_raw_echo [--port N] (listens on 127.0.0.1, default 8090) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "wsutil.h"

#define HEAD_MAX 8192

typedef struct peer {
  uv_tcp_t tcp;
  int upgraded, broadcast;
  size_t hlen;
  char *head; /* the HTTP request, until the upgrade */
  struct peer *prev, *next; /* on /broadcast */
} peer_t;

typedef struct {
  uv_write_t req;
  char data[];
} wreq_t;

static uv_loop_t *loop;
static char rbuf[256 * 1024];
static peer_t *subs;

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  (void)s;
  b->base = rbuf;
  b->len = sizeof rbuf;
}

static void on_write(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_close(uv_handle_t *h) {
  peer_t *p = h->data;
  free(p->head);
  free(p);
}

static void drop(peer_t *p) {
  if (p->broadcast) {
    if (p->prev) p->prev->next = p->next;
    else subs = p->next;
    if (p->next) p->next->prev = p->prev;
    p->broadcast = 0;
  }
  if (!uv_is_closing((uv_handle_t *)&p->tcp)) uv_close((uv_handle_t *)&p->tcp, on_close);
}

static void send_bytes(peer_t *p, const char *data, size_t len) {
  if (!len || uv_is_closing((uv_handle_t *)&p->tcp)) return;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int r = uv_try_write((uv_stream_t *)&p->tcp, &b, 1);
  if (r < 0 && r != UV_EAGAIN) {
    drop(p);
    return;
  }
  size_t done = r > 0 ? (size_t)r : 0;
  if (done == len) return;
  wreq_t *w = malloc(sizeof *w + len - done);
  memcpy(w->data, data + done, len - done);
  uv_buf_t wb = uv_buf_init(w->data, (unsigned)(len - done));
  if (uv_write(&w->req, (uv_stream_t *)&p->tcp, &wb, 1, on_write) != 0) free(w);
}

static void pass_on(peer_t *p, const char *data, size_t len) {
  if (!p->broadcast) {
    send_bytes(p, data, len);
    return;
  }
  for (peer_t *q = subs; q; q = q->next)
    if (q != p) send_bytes(q, data, len);
}

static int upgrade(peer_t *p) {
  char *end = memmem(p->head, p->hlen, "\r\n\r\n", 4);
  if (!end) return p->hlen < HEAD_MAX ? 0 : -1;
  *end = '\0';
  const char *key = NULL;
  size_t klen = 0;
  for (char *l = strstr(p->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
    if (strncasecmp(l + 2, "Sec-WebSocket-Key:", 18) == 0) {
      key = l + 20;
      while (*key == ' ') key++;
      klen = strcspn(key, "\r ");
    }
  }
  if (!key) return -1;
  char acc[29], resp[256];
  bench_ws_accept(key, klen, acc);
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
  send_bytes(p, resp, (size_t)n);
  p->upgraded = 1;
  if (strncmp(p->head, "GET /broadcast", 14) == 0) {
    p->broadcast = 1;
    p->prev = NULL;
    p->next = subs;
    if (subs) subs->prev = p;
    subs = p;
  }
  size_t used = (size_t)(end - p->head) + 4;
  if (p->hlen > used) pass_on(p, p->head + used, p->hlen - used);
  return 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  peer_t *p = s->data;
  if (n < 0) {
    drop(p);
    return;
  }
  if (p->upgraded) {
    pass_on(p, b->base, (size_t)n);
    return;
  }
  if (!p->head && !(p->head = malloc(HEAD_MAX))) {
    drop(p);
    return;
  }
  size_t take = (size_t)n;
  if (take > HEAD_MAX - p->hlen) take = HEAD_MAX - p->hlen;
  memcpy(p->head + p->hlen, b->base, take);
  p->hlen += take;
  int r = upgrade(p);
  if (r < 0) drop(p);
  else if (r > 0 && take < (size_t)n) pass_on(p, b->base + take, (size_t)n - take);
  if (r > 0) {
    free(p->head);
    p->head = NULL;
  }
}

static void on_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  peer_t *p = calloc(1, sizeof *p);
  uv_tcp_init(loop, &p->tcp);
  p->tcp.data = p;
  if (uv_accept(srv, (uv_stream_t *)&p->tcp) != 0) {
    uv_close((uv_handle_t *)&p->tcp, on_close);
    return;
  }
  uv_tcp_nodelay(&p->tcp, 1);
  uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  int port = 8090;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[++i]);
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_tcp_init(loop, &srv);
  int r = uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&srv, 4096, on_conn);
  if (r != 0) {
    fprintf(stderr, "bench_raw_echo: listen on %d: %s\n", port, uv_strerror(r));
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}

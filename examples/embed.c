/* uvws inside a program that has its own work on the same libuv loop: a
 * timer that pushes "tick N" to every WebSocket client once a second, and
 * a plain TCP service (upper-cases what it receives) on a second port.
 * SIGINT/SIGTERM shuts all three down cleanly.
 *
 *   ./embed [ws-port [tcp-port]]     (0 = any free port; both are printed)
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvws.h>

#define MAX_CLIENTS 64

static uv_loop_t *loop;
static uvws_server_t *srv;
static uvws_conn_t *clients[MAX_CLIENTS]; /* the program's own list */
static uv_timer_t ticker;
static uv_tcp_t upper;
static uv_signal_t sigint, sigterm;
static unsigned ticks;

/* ---- WebSocket side: uvws callbacks -------------------------------------- */

static void ws_open(uvws_conn_t *c) {
  int i;
  for (i = 0; i < MAX_CLIENTS; i++)
    if (!clients[i]) {
      clients[i] = c;
      return;
    }
  uvws_close(c, UVWS_CLOSE_TRY_AGAIN, "full");
}

static void ws_close(uvws_conn_t *c, int code, const char *reason, size_t len) {
  int i;
  (void)code, (void)reason, (void)len;
  for (i = 0; i < MAX_CLIENTS; i++)
    if (clients[i] == c) clients[i] = NULL;
}

static void ws_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  uvws_send(c, op, data, len);
}

/* ---- the program's own timer ----------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  char msg[32];
  int i;
  (void)t;
  snprintf(msg, sizeof(msg), "tick %u", ++ticks);
  for (i = 0; i < MAX_CLIENTS; i++)
    if (clients[i]) uvws_send_text(clients[i], msg);
}

/* ---- the program's own TCP service ------------------------------------------ */

typedef struct {
  uv_write_t req;
  char data[];
} upper_write_t;

static void on_upper_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(size);
  buf->len = buf->base ? size : 0;
}

static void on_upper_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_upper_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) {
    upper_write_t *w = malloc(sizeof(*w) + (size_t)n);
    ssize_t i;
    if (w) {
      uv_buf_t out;
      for (i = 0; i < n; i++) w->data[i] = (char)toupper((unsigned char)buf->base[i]);
      out = uv_buf_init(w->data, (unsigned)n);
      if (uv_write(&w->req, s, &out, 1, on_upper_written) != 0) free(w);
    }
  } else if (n < 0) {
    uv_close((uv_handle_t *)s, (uv_close_cb)free);
  }
  free(buf->base);
}

static void on_upper_connection(uv_stream_t *server, int status) {
  uv_tcp_t *c = malloc(sizeof(*c));
  if (status < 0 || c == NULL) return free(c);
  uv_tcp_init(loop, c);
  if (uv_accept(server, (uv_stream_t *)c) == 0) uv_read_start((uv_stream_t *)c, on_upper_alloc, on_upper_read);
  else uv_close((uv_handle_t *)c, (uv_close_cb)free);
}

/* ---- start and stop ---------------------------------------------------------- */

static void on_uvws_done(uvws_server_t *s) {
  (void)s;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  uv_timer_stop(&ticker);
  uv_close((uv_handle_t *)&ticker, NULL);
  uv_close((uv_handle_t *)&upper, NULL);
  uvws_server_shutdown(srv, on_uvws_done);
}

int main(int argc, char **argv) {
  uvws_options_t opts;
  uvws_route_t route = {0};
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof(bound), r;

  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  loop = uv_default_loop();
  uvws_options_init(&opts);
  opts.port = argc > 1 ? atoi(argv[1]) : 9000;
  route.path = "/ticks";
  route.handlers.on_open = ws_open;
  route.handlers.on_message = ws_message;
  route.handlers.on_close = ws_close;
  if ((r = uvws_server_new(&srv, loop, &opts)) != 0 || (r = uvws_server_route(srv, &route)) != 0 ||
      (r = uvws_server_start(srv)) != 0) {
    fprintf(stderr, "embed: %s\n", uvws_strerror(r));
    return 1;
  }

  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 1000, 1000);
  uv_tcp_init(loop, &upper);
  uv_ip4_addr("127.0.0.1", argc > 2 ? atoi(argv[2]) : 9001, &addr);
  if ((r = uv_tcp_bind(&upper, (const struct sockaddr *)&addr, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&upper, 128, on_upper_connection)) != 0) {
    fprintf(stderr, "embed: tcp: %s\n", uv_strerror(r));
    return 1;
  }
  uv_tcp_getsockname(&upper, (struct sockaddr *)&bound, &len);
  printf("websocket ws://127.0.0.1:%d/ticks\n", uvws_server_port(srv));
  printf("tcp 127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));

  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  r = uv_run(loop, UV_RUN_DEFAULT);
  uvws_server_free(srv);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}

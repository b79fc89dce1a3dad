/* A complete WebSocket echo server on uvws, in under 60 lines.
 *
 *   cc echo.c $(pkg-config --cflags --libs uvws) -o echo && ./echo 9000
 *   wscat -c ws://127.0.0.1:9000/echo
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uvws.h>

static void on_open(uvws_conn_t *conn) {
  printf("open %s\n", uvws_conn_peer(conn));
}

static void on_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  uvws_send(conn, op, data, len); /* copied or written before it returns */
}

static void on_close(uvws_conn_t *conn, int code, const char *reason, size_t reason_len) {
  printf("close %s code=%d reason=%.*s\n", uvws_conn_peer(conn), code, (int)reason_len, reason);
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  uvws_options_t opts;
  uvws_server_t *srv;
  uvws_route_t route = {0};
  int r;

  uvws_options_init(&opts);
  opts.port = argc > 1 ? atoi(argv[1]) : 9000; /* 0: any free port */
  route.path = "/echo";
  route.handlers.on_open = on_open;
  route.handlers.on_message = on_message;
  route.handlers.on_close = on_close;

  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if ((r = uvws_server_new(&srv, loop, &opts)) != 0 || (r = uvws_server_route(srv, &route)) != 0 ||
      (r = uvws_server_start(srv)) != 0) {
    fprintf(stderr, "echo: %s\n", uvws_strerror(r));
    return 1;
  }
  printf("echo server on ws://127.0.0.1:%d/echo\n", uvws_server_port(srv));
  r = uv_run(loop, UV_RUN_DEFAULT);
  uvws_server_free(srv);
  return r;
}

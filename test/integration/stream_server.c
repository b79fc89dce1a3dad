/* A test server for library features the uvws program has no route for:
 * - /stream (uvws_handlers_t.on_fragment) answers every complete message
 *   with "pieces=N bytes=M op=O", built from the pieces it saw, so the test
 *   can tell reassembly did not happen;
 * - /flood and /flood-drop answer "COUNT SIZE" with COUNT binary messages
 *   of SIZE bytes sent at once, then "sent=K dropped=D": a slow reader hits
 *   max_backpressure (argv[2]), and is closed with 1013 on /flood, or loses
 *   messages on /flood-drop (drop_on_backpressure), which also says
 *   "drained" from on_drain once its queue has emptied again.
 * It prints "listening on http://..." like uvws and stops on SIGTERM.
 * argv: [max_message [max_backpressure]] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvws.h>

typedef struct {
  unsigned pieces;
  size_t bytes;
} tally_t;

static void on_open(uvws_conn_t *c) { uvws_conn_set_data(c, calloc(1, sizeof(tally_t))); }

static void on_fragment(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len, int fin) {
  tally_t *t = uvws_conn_get_data(c);
  char msg[96];
  (void)data;
  t->pieces++;
  t->bytes += len;
  if (!fin) return;
  snprintf(msg, sizeof(msg), "pieces=%u bytes=%zu op=%d", t->pieces, t->bytes, (int)op);
  t->pieces = 0;
  t->bytes = 0;
  uvws_send_text(c, msg);
}

static void on_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  (void)op, (void)data, (void)len;
  uvws_close(c, 4001, "on_message must not run on a streaming route");
}

static void on_close(uvws_conn_t *c, int code, const char *r, size_t n) {
  (void)code, (void)r, (void)n;
  free(uvws_conn_get_data(c));
}

static void on_flood(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  char text[64], reply[64];
  unsigned count = 0, size = 0, i, sent = 0, dropped = 0;
  char *buf;
  (void)op;
  snprintf(text, sizeof(text), "%.*s", (int)(len < 63 ? len : 63), (const char *)data);
  if (sscanf(text, "%u %u", &count, &size) != 2 || (buf = calloc(1, size ? size : 1)) == NULL) return;
  for (i = 0; i < count; i++) {
    int r = uvws_send_ex(c, UVWS_OP_BINARY, buf, size, UVWS_SEND_NO_COMPRESS);
    if (r == 0) sent++;
    else if (r == UVWS_EBACKPRESSURE) dropped++;
    else break;
  }
  free(buf);
  snprintf(reply, sizeof(reply), "sent=%u dropped=%u", sent, dropped);
  uvws_send_text(c, reply);
}

/* on_drain: the queue that filled up has emptied below the low-water mark. */
static void on_flood_drain(uvws_conn_t *c) { uvws_send_text(c, "drained"); }

static uvws_server_t *srv;
static uv_signal_t sig;

static void done(uvws_server_t *s) {
  (void)s;
  uv_close((uv_handle_t *)&sig, NULL);
}

static void on_signal(uv_signal_t *h, int n) {
  (void)h, (void)n;
  uvws_server_shutdown(srv, done);
}

int main(int argc, char **argv) {
  uvws_options_t o;
  uvws_route_t r = {0};
  uv_loop_t *loop = uv_default_loop();
  uvws_options_init(&o);
  o.port = 0;
  o.max_message = argc > 1 ? (size_t)atol(argv[1]) : 1 << 20;
  if (argc > 2) o.max_backpressure = (size_t)atol(argv[2]);
  r.path = "/stream";
  r.handlers.on_open = on_open;
  r.handlers.on_fragment = on_fragment;
  r.handlers.on_message = on_message;
  r.handlers.on_close = on_close;
  signal(SIGPIPE, SIG_IGN);
  if (uvws_server_new(&srv, loop, &o) || uvws_server_route(srv, &r)) return 1;
  memset(&r, 0, sizeof(r));
  r.path = "/flood";
  r.handlers.on_message = on_flood;
  if (uvws_server_route(srv, &r)) return 1;
  r.path = "/flood-drop";
  r.drop_on_backpressure = 1;
  r.handlers.on_drain = on_flood_drain;
  if (uvws_server_route(srv, &r) || uvws_server_start(srv)) return 1;
  uv_signal_init(loop, &sig);
  uv_signal_start(&sig, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  uvws_server_free(srv);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}

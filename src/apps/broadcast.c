/* The /broadcast route: every message a client sends goes to every client
 * of the route, the sender included, on every thread (and every instance
 * with --redis): publish/subscribe with nothing around it, the target of
 * bench/broadcast. Subscribers that cannot keep up skip messages
 * (drop_on_backpressure) rather than slowing anyone. */
#include "apps.h"

#define TOPIC "broadcast"

static void bc_open(uvws_conn_t *conn) {
  if (uvws_subscribe(conn, TOPIC) != 0) uvws_close(conn, UVWS_CLOSE_INTERNAL, "cannot subscribe");
}

static void bc_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  uvws_publish(uvws_conn_server(conn), TOPIC, op, data, len);
}

int uvws_app_broadcast(uvws_server_t *srv, const char *path) {
  uvws_route_t route = {0};
  route.path = path;
  route.handlers.on_open = bc_open;
  route.handlers.on_message = bc_message;
  route.drop_on_backpressure = 1;
  return uvws_server_route(srv, &route);
}

/* The /echo route: every message goes back as it came ("?deflate=off" on
 * its URL declines compression). Written against the public header only,
 * as any program embedding uvws would write it. */
#include "apps.h"

static void echo_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  /* Inside on_message the send is corked: a burst of pipelined messages
   * leaves in one write. */
  uvws_send(conn, op, data, len);
}

static const char *const echo_protocols[] = {"echo", "uvws-echo", NULL};

int uvws_app_echo(uvws_server_t *srv, const char *path) {
  uvws_route_t route = {0};
  route.path = path;
  route.handlers.on_message = echo_message;
  route.handlers.on_upgrade = uvws_app_deflate_choice;
  route.subprotocols = echo_protocols;
  return uvws_server_route(srv, &route);
}

/* The hand-off of an accepted upgrade to the WebSocket session: the
 * route, what was negotiated, and a view of the request for the route's
 * on_open. Whoever accepts upgrades fills it in (http/upgrade.c for
 * HTTP/1.1; an HTTP/2 stream's extended CONNECT later) and calls
 * uvws__ws_open through the runtime. Types only: the accepting layer
 * needs no WebSocket function. */
#ifndef UVWS_WS_OPEN_H
#define UVWS_WS_OPEN_H

#include <stddef.h>

#include "proto/deflate.h"
#include "uvws.h"

/* A WebSocket route as the server keeps it. Owned by the server's route
 * table; read-only once the server starts (shared by every loop). */
typedef struct {
  char *path;             /* owned */
  size_t path_len;
  uvws_handlers_t h;
  char **subprotocols;    /* owned, NULL-terminated (NULL if none) */
  void *user;
  int drop_on_backpressure;
} uvws__route_t;

/* One request header, as the upgrade request carried it. */
typedef struct {
  const char *name, *value;
  size_t name_len, value_len;
} uvws__header_t;

/* What the upgrade decided, and the request it answered. The strings and
 * arrays belong to the caller and live until uvws__ws_open returns. */
typedef struct {
  const uvws__route_t *route;
  const char *protocol;          /* one of route->subprotocols, or NULL */
  const uvws__pmd_params_t *pmd; /* permessage-deflate terms, or NULL */
  const char *extensions;        /* the Sec-WebSocket-Extensions answered, or NULL */
  const char *target;            /* the request target (not NUL-terminated) */
  size_t target_len;
  const uvws__header_t *headers; /* in arrival order */
  size_t nheaders;
  const char *response_head;     /* the 101 (or HTTP/2 200) head as sent, NUL-terminated */
  void *data;                    /* the route's on_upgrade gave it (uvws_upgrade_set_data) */
} uvws__ws_open_t;

/* An upgrade being decided by the route's on_upgrade (uvws_upgrade_*).
 * Filled by whoever accepts upgrades, on its stack; the strings belong to
 * that request and live until on_upgrade returns. After an accepting
 * on_upgrade the filler owes `release(data)` if the WebSocket never opens. */
#define UVWS__UPGRADE_EXTRA_MAX 2048
struct uvws_upgrade_s {
  const uvws__route_t *route;
  uvws_server_t *server;
  const char *target;
  size_t target_len;
  const uvws__header_t *headers;
  size_t nheaders;
  const char *peer;
  const char *protocol;
  int secure;
  int no_deflate;                /* uvws_upgrade_decline_deflate */
  void *data;
  void (*release)(void *data);
  size_t extra_len;              /* added header lines, each ending in CRLF */
  char extra[UVWS__UPGRADE_EXTRA_MAX + 1];
};


#endif

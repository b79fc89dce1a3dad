/* HTTP/1.1 on a stream (stream.h): requests parsed with llhttp, answers
 * from memory (errors, /metrics, /healthz, /routes.json), static files, and the decision
 * to upgrade, after which the stream goes to the WebSocket session through
 * the runtime (env->upgrade). The session carries no WebSocket state and
 * is freed at the upgrade. */
#ifndef UVWS_HTTP_H
#define UVWS_HTTP_H

#include "net/net.h"
#include "net/stream.h"
#include "proto/deflate.h"
#include "util/counters.h"
#include "util/httpdate.h"
#include "util/wbuf.h"
#include "uvws.h"
#include "ws/open.h"

/* A folder served as static files: the web root, or one mounted at a URL
 * prefix (`prefix` holds the path without slashes, "" for the root). Owned
 * by the server; read-only once it starts. */
typedef struct {
  char *prefix;
  size_t prefix_len;
  char *dir;   /* as given */
  char *real;  /* realpath(dir) once started */
  size_t real_len;
} uvws__mount_t;

/* What the runtime answers when asked how it is. */
enum { UVWS__HTTP_SERVING = 0, UVWS__HTTP_DRAINING = 1, UVWS__HTTP_SHUTTING_DOWN = 2 };

/* One loop's HTTP context: configuration and scratch shared by the loop's
 * sessions, and the runtime's callbacks. Owned by the loop's runtime, used
 * on its thread only. */
typedef struct {
  const uvws_options_t *opts;      /* the server's (read-only) */
  const uvws__pmd_config_t *pmd;   /* permessage-deflate terms we accept; NULL: none */
  const uvws__mount_t *mounts;     /* [0] is the web root (dir NULL if none) */
  size_t nmounts;
  const uvws__net_shared_t *net;   /* trusted proxies */
  uvws__metrics_t *m;
  uvws__httpdate_t date;
  uvws__buf_t head;                /* scratch: one response head */
  char *filebuf;                   /* scratch: one static file chunk */
  /* the runtime's */
  uvws_server_t *server;           /* what uvws_upgrade_server() returns; never called */
  void *ctx;
  const uvws__route_t *(*route)(void *ctx, const char *path, size_t len);
  /* Hands the stream to a WebSocket session; returns 0 or an error (the
   * stream is then closed). */
  int (*upgrade)(void *ctx, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest, size_t rest_len);
  void (*metrics)(void *ctx, uvws__buf_t *out);
  /* The WebSocket routes (for /routes.json): sets *table, returns how many. */
  size_t (*routes)(void *ctx, const uvws__route_t **table);
  int (*state)(void *ctx);         /* UVWS__HTTP_SERVING, _DRAINING or _SHUTTING_DOWN */
} uvws__http_env_t;

/* Starts an HTTP session on `s` (installs its callbacks). With `refuse`
 * (503 or 429, from the connection limits) it answers that and finishes
 * instead. 0, UV_ENOMEM, or UV_EINVAL if `env` lacks opts, m, net or any
 * of the runtime's callbacks. */
int uvws__http_open(uvws__http_env_t *env, uvws__stream_t *s, int refuse);
void uvws__http_env_free(uvws__http_env_t *env);

/* {"routes":[...]}: the paths sorted and JSON-escaped, appended to `out`
 * (empty on entry). 0 or UV_ENOMEM (then `out` may hold a part). */
int uvws__http_routes_json(const uvws__route_t *routes, size_t n, uvws__buf_t *out);

#endif

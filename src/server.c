/* The server: options, routes, the listener, the timeout sweep and
 * shutdown. */
#include "internal.h"
#include "log.h"

#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void uvws_options_init(uvws_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->host = "127.0.0.1";
  o->port = 8080;
  o->web_root = NULL;
  o->max_message = 16u * 1024u * 1024u;
  o->max_header_bytes = 16u * 1024u;
  o->max_url = 8u * 1024u;
  o->request_timeout_ms = 30000;
  o->keepalive_timeout_ms = 60000;
  o->close_timeout_ms = 5000;
  o->log_connections = 1;
  o->deflate = 1;
  o->deflate_level = 6;
  o->deflate_window_bits = 15;
  o->deflate_mem_level = 8;
  o->deflate_min_size = 64;
  o->deflate_takeover = 0;
}

static char *dup_str(const char *s) {
  size_t n;
  char *d;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int uvws_server_new(uvws_server_t **out, uv_loop_t *loop, const uvws_options_t *opts) {
  uvws_server_t *srv;
  uvws_options_t defaults;

  *out = NULL;
  if (opts == NULL) {
    uvws_options_init(&defaults);
    opts = &defaults;
  }
  if (opts->port < 0 || opts->port > 65535 || opts->max_header_bytes < 256 || opts->max_url < 16)
    return UV_EINVAL;
  if (opts->deflate && (opts->deflate_level < 1 || opts->deflate_level > 9 ||
                        opts->deflate_window_bits < 9 || opts->deflate_window_bits > 15 ||
                        opts->deflate_mem_level < 1 || opts->deflate_mem_level > 9))
    return UV_EINVAL;
  srv = calloc(1, sizeof(*srv));
  if (srv == NULL) return UV_ENOMEM;
  srv->loop = loop;
  srv->opts = *opts;
  srv->host = dup_str(opts->host ? opts->host : "127.0.0.1");
  srv->web_root = dup_str(opts->web_root);
  srv->readbuf = malloc(UVWS__READ_BUF_SIZE);
  if (srv->host == NULL || (opts->web_root && srv->web_root == NULL) || srv->readbuf == NULL) {
    uvws_server_free(srv);
    return UV_ENOMEM;
  }
  srv->pmd.level = opts->deflate_level;
  srv->pmd.mem_level = opts->deflate_mem_level;
  srv->pmd.server_max_bits = opts->deflate_window_bits;
  srv->pmd.client_max_bits = 15;
  srv->pmd.server_takeover = opts->deflate_takeover;
  srv->pmd.client_takeover = 1;
  srv->opts.host = srv->host;
  srv->opts.web_root = srv->web_root;
  srv->port = -1;
  *out = srv;
  return 0;
}

void uvws_server_free(uvws_server_t *srv) {
  size_t i;
  if (srv == NULL) return;
  for (i = 0; i < srv->nroutes; i++) {
    uvws__route_t *r = &srv->routes[i];
    if (r->subprotocols) {
      char **p;
      for (p = r->subprotocols; *p; p++) free(*p);
      free(r->subprotocols);
    }
    free(r->path);
  }
  free(srv->routes);
  free(srv->host);
  free(srv->web_root);
  free(srv->web_real);
  free(srv->readbuf);
  free(srv->filebuf);
  uvws__buf_free(&srv->cork);
  uvws__buf_free(&srv->zbuf);
  if (srv->shared_def) {
    deflateEnd(srv->shared_def);
    free(srv->shared_def);
  }
  free(srv);
}

int uvws_server_route(uvws_server_t *srv, const uvws_route_t *route) {
  uvws__route_t *r, *grown;
  size_t n = 0, i;

  if (route == NULL || route->path == NULL || route->path[0] != '/') return UV_EINVAL;
  if (uvws__server_route(srv, route->path, strlen(route->path))) return UVWS_EEXIST;
  grown = realloc(srv->routes, (srv->nroutes + 1) * sizeof(*grown));
  if (grown == NULL) return UV_ENOMEM;
  srv->routes = grown;
  r = &srv->routes[srv->nroutes];
  memset(r, 0, sizeof(*r));
  r->path = dup_str(route->path);
  if (r->path == NULL) return UV_ENOMEM;
  r->path_len = strlen(r->path);
  r->h = route->handlers;
  r->user = route->user;
  if (route->subprotocols) {
    while (route->subprotocols[n]) n++;
    r->subprotocols = calloc(n + 1, sizeof(char *));
    if (r->subprotocols == NULL) goto nomem;
    for (i = 0; i < n; i++)
      if ((r->subprotocols[i] = dup_str(route->subprotocols[i])) == NULL) goto nomem;
  }
  srv->nroutes++;
  return 0;
nomem:
  if (r->subprotocols) {
    for (i = 0; i < n; i++) free(r->subprotocols[i]);
    free(r->subprotocols);
  }
  free(r->path);
  return UV_ENOMEM;
}

const uvws__route_t *uvws__server_route(const uvws_server_t *srv, const char *path, size_t len) {
  size_t i;
  for (i = 0; i < srv->nroutes; i++) {
    const uvws__route_t *r = &srv->routes[i];
    if (r->path_len == len && memcmp(r->path, path, len) == 0) return r;
  }
  return NULL;
}

const char *uvws__server_date(uvws_server_t *srv) {
  time_t now = time(NULL);
  if ((int64_t)now != srv->date_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    srv->date_sec = (int64_t)now;
  }
  return srv->date;
}

/* ---- listening ------------------------------------------------------------ */

static void on_connection(uv_stream_t *listener, int status) {
  uvws_server_t *srv = listener->data;
  int r;
  if (status < 0) {
    uvws__log(UVWS_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  if (srv->shutting_down) return;
  r = uvws__conn_accept(srv);
  if (r < 0) uvws__log(UVWS_LOG_WARN, "accept: %s", uv_strerror(r));
}

static void sweep(uv_timer_t *t) {
  uvws_server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  uvws_conn_t *c = srv->conns, *next;
  for (; c; c = next) {
    next = c->next; /* a timeout closes, but the free comes later */
    if (c->deadline && c->deadline <= now && c->state != UVWS__CONN_CLOSED) uvws__conn_timeout(c);
  }
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss) {
  struct addrinfo hints, *res = NULL;
  char portstr[8];
  int r;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  /* A name such as "localhost": resolved once, at start. */
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(portstr, sizeof(portstr), "%d", port);
  r = getaddrinfo(host, portstr, &hints, &res);
  if (r != 0 || res == NULL) return UV_EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

int uvws_server_start(uvws_server_t *srv) {
  struct sockaddr_storage ss;
  int namelen = sizeof(ss), r;
  char ip[INET6_ADDRSTRLEN];

  if (srv->started) return UVWS_ESTATE;
  if (srv->web_root) {
    char real[PATH_MAX];
    if (realpath(srv->web_root, real) == NULL) {
      uvws__log(UVWS_LOG_ERROR, "web root %s: not found", srv->web_root);
      return UV_ENOENT;
    }
    srv->web_real = dup_str(real);
    if (srv->web_real == NULL) return UV_ENOMEM;
    srv->web_real_len = strlen(real);
    /* "/" as the root would make every "/x" look inside it */
    if (srv->web_real_len == 1) srv->web_real_len = 0;
  }
  r = resolve(srv->host, srv->opts.port, &ss);
  if (r < 0) {
    uvws__log(UVWS_LOG_ERROR, "cannot resolve listen address %s", srv->host);
    return r;
  }
  r = uv_tcp_init(srv->loop, &srv->listener);
  if (r < 0) return r;
  srv->listener.data = srv;
  srv->handles_open++;
  srv->started = 1;
  r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (r < 0) {
    uvws__log(UVWS_LOG_ERROR, "listen on %s:%d: %s", srv->host, srv->opts.port, uv_strerror(r));
    return r;
  }
  r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &namelen);
  if (r < 0) return r;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
    srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    uvws__log(UVWS_LOG_INFO, "listening on http://[%s]:%d", ip, srv->port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uvws__log(UVWS_LOG_INFO, "listening on http://%s:%d", ip, srv->port);
  }
  r = uv_timer_init(srv->loop, &srv->sweep);
  if (r < 0) return r;
  srv->sweep.data = srv;
  srv->handles_open++;
  uv_timer_start(&srv->sweep, sweep, UVWS__SWEEP_MS, UVWS__SWEEP_MS);
  uv_unref((uv_handle_t *)&srv->sweep); /* the timer alone keeps no loop alive */
  return 0;
}

int uvws_server_port(const uvws_server_t *srv) { return srv->port >= 0 ? srv->port : UVWS_ESTATE; }

/* ---- shutdown --------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h);

static void maybe_done(uvws_server_t *srv) {
  if (srv->shutting_down && srv->nconns == 0 && srv->started &&
      !uv_is_closing((uv_handle_t *)&srv->sweep)) {
    uv_close((uv_handle_t *)&srv->sweep, on_handle_closed);
    return; /* back here from on_handle_closed */
  }
  if (srv->shutting_down && srv->handles_open == 0 && srv->nconns == 0 && srv->shutdown_cb) {
    void (*cb)(uvws_server_t *) = srv->shutdown_cb;
    srv->shutdown_cb = NULL;
    cb(srv);
  }
}

void uvws__server_conn_closed(uvws_server_t *srv, uvws_conn_t *c) {
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->nconns--;
  if (srv->corked == c) srv->corked = NULL;
  maybe_done(srv);
}

static void on_handle_closed(uv_handle_t *h) {
  uvws_server_t *srv = h->data;
  srv->handles_open--;
  maybe_done(srv);
}

void uvws_server_shutdown(uvws_server_t *srv, void (*cb)(uvws_server_t *srv)) {
  uvws_conn_t *c, *next;
  if (srv->shutting_down) return;
  srv->shutting_down = 1;
  srv->shutdown_cb = cb;
  uvws__log(UVWS_LOG_INFO, "shutting down: %zu connection(s) open", srv->nconns);
  /* The sweep keeps running until the last connection is gone: closing
   * handshakes still need their timeouts. */
  if (srv->started) uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
  for (c = srv->conns; c; c = next) {
    next = c->next;
    if (c->state == UVWS__CONN_WS) {
      if (uvws_close(c, UVWS_CLOSE_GOING_AWAY, "server shutting down") != 0 && !c->finishing)
        uvws__conn_finish(c);
    } else if (c->state == UVWS__CONN_HTTP && !uvws__http_busy(c)) {
      uvws__conn_finish(c);
    }
  }
  maybe_done(srv);
}

uv_loop_t *uvws_server_loop(const uvws_server_t *srv) { return srv->loop; }
void *uvws_server_get_data(const uvws_server_t *srv) { return srv->data; }
void uvws_server_set_data(uvws_server_t *srv, void *data) { srv->data = data; }

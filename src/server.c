/* The public server API (uvws_server_*, options, routes, mounts, and the
 * pub/sub entry points): a facade over one loop's runtime (runtime/) and,
 * with threads, the group of them. */
#include "proto/path.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uvws_options_init(uvws_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->host = "localhost";
  o->port = 8080;
  o->web_root = NULL;
  o->max_message = 16u * 1024u * 1024u;
  o->max_header_bytes = 16u * 1024u;
  o->max_url = 8u * 1024u;
  o->handshake_timeout_ms = 10000;
  o->keepalive_timeout_ms = 60000;
  o->close_timeout_ms = 5000;
  o->idle_timeout_ms = 0;
  o->ping_interval_ms = 30000;
  o->ping_timeout_ms = 10000;
  o->shutdown_timeout_ms = 5000;
  o->metrics = 1;
  o->tls_port = 8443;
  o->max_backpressure = 16u * 1024u * 1024u;
  o->log_connections = 1;
  o->deflate = 1;
  o->deflate_level = 6;
  o->deflate_window_bits = 15;
  o->deflate_mem_level = 8;
  o->deflate_min_size = 64;
  o->deflate_takeover = 0;
  o->threads = 1;
  o->redis = NULL;
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

static int valid_options(const uvws_options_t *o) {
  if (o->port < 0 || o->port > 65535 || o->max_header_bytes < 256 || o->max_url < 16) return 0;
  if (o->threads > UVWS__MAX_THREADS) return 0;
  if (o->tls_port < 0 || o->tls_port > 65535 || (!o->tls_cert != !o->tls_key) ||
      (o->tls_only && !o->tls_cert && !o->tls_self_signed))
    return 0;
  return !o->deflate || (o->deflate_level >= 1 && o->deflate_level <= 9 && o->deflate_window_bits >= 9 &&
                         o->deflate_window_bits <= 15 && o->deflate_mem_level >= 1 && o->deflate_mem_level <= 9);
}

int uvws_server_new(uvws_server_t **out, uv_loop_t *loop, const uvws_options_t *opts) {
  uvws_server_t *srv;
  uvws_options_t defaults;
  int r;

  *out = NULL;
  if (opts == NULL) {
    uvws_options_init(&defaults);
    opts = &defaults;
  }
  if (!valid_options(opts)) return UV_EINVAL;
  srv = calloc(1, sizeof(*srv));
  if (srv == NULL) return UV_ENOMEM;
  if (loop == NULL) { /* a server on threads of its own: it owns this loop too */
    loop = malloc(sizeof(*loop));
    if (loop == NULL || uv_loop_init(loop) != 0) {
      free(loop);
      free(srv);
      return UV_ENOMEM;
    }
    srv->own_loop = 1;
  }
  srv->loop = loop;
  srv->opts = *opts;
  srv->port = srv->tls_port = -1;
  if (srv->opts.threads == 0) srv->opts.threads = 1;
  srv->host = dup_str(opts->host ? opts->host : "localhost");
  srv->web_root = dup_str(opts->web_root);
  srv->allow_origin = dup_str(opts->allow_origin);
  srv->trusted_proxies = dup_str(opts->trusted_proxies);
  srv->tls_cert = dup_str(opts->tls_cert);
  srv->tls_key = dup_str(opts->tls_key);
  srv->redis_url = dup_str(opts->redis);
  srv->opts.host = srv->host;
  srv->opts.web_root = srv->web_root;
  srv->opts.allow_origin = srv->allow_origin;
  srv->opts.trusted_proxies = srv->trusted_proxies;
  srv->opts.tls_cert = srv->tls_cert;
  srv->opts.tls_key = srv->tls_key;
  srv->opts.redis = srv->redis_url;
  r = uvws__net_shared_init(&srv->netsh, srv->trusted_proxies, srv->opts.threads > 1);
  srv->netsh.max_connections = opts->max_connections;
  srv->netsh.max_per_ip = opts->max_connections_per_ip;
  if (r == 0 && srv->opts.threads > 1) r = uvws__census_new(&srv->census);
  if (r == 0 && (srv->host == NULL || (opts->web_root && !srv->web_root) || (opts->allow_origin && !srv->allow_origin) ||
                 (opts->trusted_proxies && !srv->trusted_proxies) || (opts->tls_cert && !srv->tls_cert) ||
                 (opts->tls_key && !srv->tls_key) || (opts->redis && !srv->redis_url)))
    r = UV_ENOMEM;
  if (r == 0) r = uvws_server_mount(srv, "/", srv->web_root);
  if (r != 0) {
    uvws_server_free(srv);
    return r;
  }
  *out = srv;
  return 0;
}

static void free_route(uvws__route_t *r) {
  char **p;
  if (r->subprotocols) {
    for (p = r->subprotocols; *p; p++) free(*p);
    free(r->subprotocols);
  }
  free(r->path);
}

void uvws_server_free(uvws_server_t *srv) {
  size_t i;
  if (srv == NULL) return;
  uvws__group_free(srv); /* joins the other threads first */
  uvws__wq_cache_drain(); /* this thread's spare queue chunks */
  uvws__redis_free(srv->redis);
  for (i = 0; i < srv->nroutes; i++) free_route(&srv->routes[i]);
  free(srv->routes);
  uvws__net_listen_discard(&srv->listen_plain);
  uvws__net_listen_discard(&srv->listen_tls);
  uvws__rt_free(srv);
  uvws__net_shared_free(&srv->netsh);
  uvws__census_free(srv->census);
  uvws__tls_rng_free(&srv->rng);
  for (i = 0; i < srv->nmounts; i++) {
    free(srv->mounts[i].prefix);
    free(srv->mounts[i].dir);
    free(srv->mounts[i].real);
  }
  free(srv->mounts);
  free(srv->host);
  free(srv->web_root);
  free(srv->allow_origin);
  free(srv->trusted_proxies);
  free(srv->tls_cert);
  free(srv->tls_key);
  free(srv->redis_url);
  if (srv->own_loop) {
    if (srv->own_thread_started) uv_thread_join(&srv->own_thread);
    if (uv_loop_close(srv->loop) == 0) free(srv->loop);
    else uvws__log(UVWS_LOG_ERROR, "free: the server's loop still has handles (uvws_server_stop first)");
  }
  free(srv);
}

int uvws_server_route(uvws_server_t *srv, const uvws_route_t *route) {
  uvws__route_t *r, *grown;
  size_t n = 0, i;

  /* A path no request target can spell would be a route nobody reaches
   * (routes match the undecoded target), and /routes.json lists paths as
   * they are: both need the plain ASCII of a target. */
  if (route == NULL || route->path == NULL || srv->started ||
      !uvws__path_route_ok(route->path, strlen(route->path)))
    return UV_EINVAL;
  if (uvws__rt_route(srv, route->path, strlen(route->path))) return UVWS_EEXIST;
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
  r->drop_on_backpressure = route->drop_on_backpressure;
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
  free_route(r);
  return UV_ENOMEM;
}

int uvws_server_mount(uvws_server_t *srv, const char *prefix, const char *dir) {
  uvws__mount_t *grown, *m;
  size_t plen;
  if (prefix == NULL || prefix[0] != '/' || srv->started) return UV_EINVAL;
  while (*prefix == '/') prefix++;
  plen = strlen(prefix);
  while (plen && prefix[plen - 1] == '/') plen--;
  if (plen && (strstr(prefix, "..") || memchr(prefix, '%', plen))) return UV_EINVAL;
  if (plen == 0 && srv->nmounts > 0) { /* replacing the web root */
    m = &srv->mounts[0];
    free(m->dir);
    m->dir = dup_str(dir);
    return (dir && !m->dir) ? UV_ENOMEM : 0;
  }
  grown = realloc(srv->mounts, (srv->nmounts + 1) * sizeof(*grown));
  if (grown == NULL) return UV_ENOMEM;
  srv->mounts = grown;
  m = &srv->mounts[srv->nmounts];
  memset(m, 0, sizeof(*m));
  m->prefix = malloc(plen + 1);
  m->dir = dup_str(dir);
  if (m->prefix == NULL || (dir && m->dir == NULL)) {
    free(m->prefix);
    free(m->dir);
    return UV_ENOMEM;
  }
  memcpy(m->prefix, prefix, plen);
  m->prefix[plen] = '\0';
  m->prefix_len = plen;
  srv->nmounts++;
  return 0;
}

/* ---- start and stop ---------------------------------------------------------------- */

static int resolve_mounts(uvws_server_t *srv) {
  size_t i;
  for (i = 0; i < srv->nmounts; i++) {
    uvws__mount_t *m = &srv->mounts[i];
    char real[PATH_MAX];
    free(m->real); /* a start retried after a failure */
    m->real = NULL;
    if (m->dir == NULL) continue;
    if (realpath(m->dir, real) == NULL) {
      uvws__log(UVWS_LOG_ERROR, "static folder %s (for /%s): not found", m->dir, m->prefix);
      return UV_ENOENT;
    }
    if ((m->real = dup_str(real)) == NULL) return UV_ENOMEM;
    m->real_len = strlen(real);
    /* "/" as a root would make every "/x" look inside it */
    if (m->real_len == 1) m->real_len = 0;
  }
  return 0;
}

/* The primary loads the certificate; the workers share its configuration. */
static int load_tls(uvws_server_t *srv) {
  uvws_server_t *p = uvws__rt_primary(srv);
  char err[256];
  int r;
  if (srv != p) {
    if (p->net.tls) uvws__tls_conf_ref(p->net.tls);
    srv->net.tls = p->net.tls;
    return 0;
  }
  if (!srv->opts.tls_cert && !srv->opts.tls_self_signed) return 0;
  if (srv->opts.tls_cert)
    r = uvws__tls_conf_load(&srv->rng, srv->opts.tls_cert, srv->opts.tls_key, &srv->net.tls, err, sizeof(err));
  else
    r = uvws__tls_conf_self_signed(&srv->rng, "localhost", &srv->net.tls, err, sizeof(err));
  if (r != 0) {
    uvws__log(UVWS_LOG_ERROR, "%s", err);
    return r;
  }
  uvws__log(UVWS_LOG_INFO, "TLS certificate%s SHA-256 fingerprint %s", srv->opts.tls_cert ? "" : " (self-signed, in memory)",
            srv->net.tls->fingerprint);
  return 0;
}

static int bind_all(uvws_server_t *srv) {
  int threaded = srv->opts.threads > 1, r;
  int check = threaded && srv->index == 0, quiet = srv->index != 0;
  if (!srv->opts.tls_only) {
    r = uvws__net_listen_bind(&srv->listen_plain, srv->host, srv->opts.port, 0, threaded, check, quiet);
    if (r < 0) return r;
    srv->port = srv->listen_plain.port;
  }
  if (srv->net.tls) {
    r = uvws__net_listen_bind(&srv->listen_tls, srv->host, srv->opts.tls_port, 1, threaded, check, quiet);
    if (r < 0) return r;
    srv->tls_port = srv->listen_tls.port;
  }
  return 0;
}

/* ---- workers (runtime/group.c builds them through these) ------------------- */

static int worker_clone(uvws_server_t *p, unsigned index, uvws_server_t **out) {
  uvws_options_t o = p->opts;
  uv_loop_t *loop = malloc(sizeof(*loop));
  uvws_server_t *w = NULL;
  size_t i;
  int r;

  *out = NULL;
  if (loop == NULL) return UV_ENOMEM;
  if ((r = uv_loop_init(loop)) != 0) {
    free(loop);
    return r;
  }
  o.port = p->port >= 0 ? p->port : o.port;
  o.tls_port = p->tls_port >= 0 ? p->tls_port : o.tls_port;
  r = uvws_server_new(&w, loop, &o);
  if (r == 0) {
    w->index = index;
    w->data = p->data;
  }
  for (i = 0; r == 0 && i < p->nroutes; i++) {
    const uvws__route_t *pr = &p->routes[i];
    uvws_route_t route;
    memset(&route, 0, sizeof(route));
    route.path = pr->path;
    route.handlers = pr->h;
    route.subprotocols = (const char *const *)pr->subprotocols;
    route.user = pr->user;
    route.drop_on_backpressure = pr->drop_on_backpressure;
    r = uvws_server_route(w, &route);
  }
  for (i = 1; r == 0 && i < p->nmounts; i++) {
    char prefix[1024];
    snprintf(prefix, sizeof(prefix), "/%s", p->mounts[i].prefix);
    r = uvws_server_mount(w, prefix, p->mounts[i].dir);
  }
  if (r != 0) {
    uvws_server_free(w);
    uv_loop_close(loop);
    free(loop);
    return r;
  }
  *out = w;
  return 0;
}

static void worker_destroy(uvws_server_t *w) {
  uv_loop_t *loop = w->loop;
  unsigned i = w->index;
  uvws_server_free(w);
  if (uv_loop_close(loop) == 0) free(loop);
  else uvws__log(UVWS_LOG_ERROR, "thread %u: loop still has handles", i);
}

static const uvws__group_ops_t worker_ops = {worker_clone, uvws_server_start, worker_destroy};

static void own_thread_main(void *arg) {
  uvws_server_t *srv = arg;
  uv_run(srv->loop, UV_RUN_DEFAULT);
  uvws__wq_cache_drain();
}

static void on_own_shutdown(uvws_server_t *srv) {
  uv_close((uv_handle_t *)&srv->stop_async, NULL); /* the loop's last handle */
}

static void on_stop_async(uv_async_t *a) { uvws_server_shutdown(a->data, on_own_shutdown); }

/* Everything that can fail for a reason worth reporting (a folder, a
 * certificate, a port, the workers) happens before the primary puts a
 * handle on the caller's loop: a failed start leaves that loop as it was,
 * and uvws_server_free (or another start) may follow at once. */
int uvws_server_start(uvws_server_t *srv) {
  int r;

  if (srv->started) return UVWS_ESTATE;
  uvws__rt_free(srv); /* a start retried after a failure */
  if ((r = resolve_mounts(srv)) != 0 || (r = uvws__rt_init(srv)) != 0 || (r = load_tls(srv)) != 0 ||
      (r = bind_all(srv)) != 0)
    goto fail;
  if (srv->opts.threads > 1 && srv->group == NULL && (r = uvws__group_start(srv, &worker_ops)) != 0) goto fail;
  /* Redis before the workers run: they read srv->redis from then on. */
  if (srv->index == 0 && srv->opts.redis && (r = uvws__rt_redis_start(srv)) != 0) goto fail;
  srv->started = 1;
  srv->listen_plain.owner = srv->listen_tls.owner = srv;
  if ((r = uvws__net_listen_start(&srv->net, &srv->listen_plain, srv)) != 0 ||
      (r = uvws__net_listen_start(&srv->net, &srv->listen_tls, srv)) != 0)
    return r;
  srv->handles_open += (int)(srv->listen_plain.n + srv->listen_tls.n);
  if ((r = uvws__rt_start_handles(srv)) != 0) return r;
  if (srv->group && srv->index == 0 && (r = uvws__group_run(srv)) != 0) return r;
  if (srv->own_loop && srv->index == 0) {
    if ((r = uv_async_init(srv->loop, &srv->stop_async, on_stop_async)) != 0) return r;
    srv->stop_async.data = srv;
    if ((r = uv_thread_create(&srv->own_thread, own_thread_main, srv)) != 0) {
      uv_close((uv_handle_t *)&srv->stop_async, NULL);
      return r;
    }
    srv->own_thread_started = 1;
  }
  return 0;
fail:
  if (srv->index == 0) uvws__group_free(srv);
  uvws__net_listen_discard(&srv->listen_plain);
  uvws__net_listen_discard(&srv->listen_tls);
  srv->port = srv->tls_port = -1;
  return r;
}

int uvws_server_stop(uvws_server_t *srv) {
  if (!srv->own_loop || !srv->own_thread_started) return UVWS_ESTATE;
  uv_async_send(&srv->stop_async);
  uv_thread_join(&srv->own_thread);
  srv->own_thread_started = 0;
  return 0;
}

int uvws_server_port(const uvws_server_t *srv) { return srv->port >= 0 ? srv->port : UVWS_ESTATE; }
int uvws_server_tls_port(const uvws_server_t *srv) { return srv->tls_port >= 0 ? srv->tls_port : UVWS_ESTATE; }

const char *uvws_server_tls_fingerprint(const uvws_server_t *srv) {
  return srv->net.tls ? srv->net.tls->fingerprint : NULL;
}

int uvws_server_tls_reload(uvws_server_t *srv) {
  uvws__tls_conf_t *fresh = NULL;
  char err[256];
  int r;
  if (srv->net.tls == NULL) return UVWS_ESTATE;
  if (srv->opts.tls_cert == NULL) {
    uvws__log(UVWS_LOG_INFO, "TLS reload: the certificate is self-signed; nothing to reload");
    return 0;
  }
  r = uvws__tls_conf_load(&srv->rng, srv->opts.tls_cert, srv->opts.tls_key, &fresh, err, sizeof(err));
  if (r != 0) {
    uvws__log(UVWS_LOG_ERROR, "TLS reload failed, keeping the current certificate: %s", err);
    return r;
  }
  /* Open connections hold references to the old configuration. */
  uvws__tls_conf_unref(srv->net.tls);
  srv->net.tls = fresh;
  uvws__group_tls(srv, fresh);
  uvws__log(UVWS_LOG_INFO, "TLS reload: certificate SHA-256 fingerprint %s", fresh->fingerprint);
  return 0;
}

uv_loop_t *uvws_server_loop(const uvws_server_t *srv) { return srv->loop; }
void *uvws_server_get_data(const uvws_server_t *srv) { return srv->data; }
void uvws_server_set_data(uvws_server_t *srv, void *data) { srv->data = data; }

/* ---- publish/subscribe ---------------------------------------------------------------- */

static uvws_server_t *server_of(uvws_conn_t *c) { return c->env->server; }

int uvws_subscribe(uvws_conn_t *c, const char *topic) {
  return uvws__pubsub_subscribe(&server_of(c)->ps, c, topic);
}

int uvws_unsubscribe(uvws_conn_t *c, const char *topic) {
  return uvws__pubsub_unsubscribe(&server_of(c)->ps, c, topic);
}

int uvws_publish(uvws_server_t *srv, const char *topic, uvws_opcode_t op, const void *data, size_t len) {
  return uvws__pubsub_publish(&srv->ps, topic, op, data, len, 0);
}

int uvws_publish_local(uvws_server_t *srv, const char *topic, uvws_opcode_t op, const void *data, size_t len) {
  return uvws__pubsub_publish(&srv->ps, topic, op, data, len, 1);
}

int uvws_publish_sequenced(uvws_server_t *srv, const char *topic, const char *head, size_t head_len,
                           const char *tail, size_t tail_len, size_t keep) {
  if (topic == NULL || topic[0] == '\0' || (head == NULL && head_len) || (tail == NULL && tail_len))
    return UV_EINVAL;
  return uvws__rt_append(srv, topic, head ? head : "", head_len, tail ? tail : "", tail_len, keep);
}

int uvws_server_on_sequenced(uvws_server_t *srv, uvws_sequenced_cb cb, void *user) {
  if (srv->opts.redis == NULL) return UVWS_ESTATE;
  srv->on_sequenced = cb;
  srv->on_sequenced_user = user;
  return 0;
}

int uvws_redis_range(uvws_server_t *srv, const char *topic, uint64_t after, size_t count, uvws_range_cb cb,
                     void *user) {
  if (topic == NULL || topic[0] == '\0' || cb == NULL) return UV_EINVAL;
  return uvws__rt_range(srv, topic, after, count, cb, user);
}

int uvws_server_on_redis_state(uvws_server_t *srv, void (*cb)(uvws_server_t *srv, int up, void *user),
                               void *user) {
  if (srv->opts.redis == NULL) return UVWS_ESTATE;
  srv->on_redis_state = cb;
  srv->on_redis_state_user = user;
  return 0;
}

int uvws_server_on_wills(uvws_server_t *srv, unsigned ttl_ms, uvws_wills_cb cb,
                         void (*buried)(uvws_server_t *srv, void *user), void *user) {
  if (srv->opts.redis == NULL) return UVWS_ESTATE;
  if (ttl_ms < 2000) return UV_EINVAL;
  srv->on_wills = cb;
  srv->on_buried = buried;
  srv->on_wills_user = user;
  srv->will_ttl_ms = ttl_ms;
  return 0;
}

/* A name or a text must not hold a NUL: they cross threads NUL-separated
 * and come back as C strings. */
int uvws_presence_join(uvws_server_t *srv, const char *topic, const char *name, const char *join_text,
                       const char *leave_text, uvws_presence_cb cb, void *user) {
  if (topic == NULL || topic[0] == '\0' || name == NULL || name[0] == '\0' || join_text == NULL ||
      leave_text == NULL)
    return UV_EINVAL;
  return uvws__rt_presence(srv, 1, topic, name, join_text, leave_text, cb, user);
}

int uvws_presence_restore(uvws_server_t *srv, const char *topic, const char *name, const char *join_text,
                          const char *leave_text) {
  if (topic == NULL || topic[0] == '\0' || name == NULL || name[0] == '\0' || join_text == NULL ||
      leave_text == NULL)
    return UV_EINVAL;
  return uvws__rt_presence(srv, 2, topic, name, join_text, leave_text, NULL, NULL);
}

int uvws_presence_leave(uvws_server_t *srv, const char *topic, const char *name, const char *leave_text) {
  if (topic == NULL || topic[0] == '\0' || name == NULL || name[0] == '\0' || leave_text == NULL)
    return UV_EINVAL;
  return uvws__rt_presence(srv, 0, topic, name, leave_text, NULL, NULL, NULL);
}

int uvws_wills_add(uvws_wills_t *wills, const char *topic, const char *text) {
  if (wills == NULL || topic == NULL || topic[0] == '\0' || text == NULL) return UV_EINVAL;
  return uvws__wills_add(wills, topic, text);
}

int uvws_server_redis_up(const uvws_server_t *srv) {
  const uvws_server_t *p = uvws__rt_primary((uvws_server_t *)(uintptr_t)srv);
  return atomic_load_explicit(&p->redis_up, memory_order_acquire);
}

size_t uvws_topic_subscribers(const uvws_server_t *srv, const char *topic) {
  return uvws__pubsub_count(&srv->ps, topic);
}

int uvws_server_on_remote(uvws_server_t *srv, uvws_remote_cb cb, void *user) {
  if (srv->opts.redis == NULL) return UVWS_ESTATE;
  srv->on_remote = cb;
  srv->on_remote_user = user;
  return 0;
}

/* The server: options, routes, the listener, the timeout sweep and
 * shutdown. */
#include "internal.h"
#include "log.h"

#include <limits.h>
#include <stddef.h>
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
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

/* "1.2.3.4", "::1", "[::1]" -> 16 bytes, IPv4 mapped into IPv6 (::ffff:a.b.c.d). */
int uvws__parse_ip(const char *s, size_t len, uint8_t out[16]) {
  char buf[64];
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') s++, len -= 2;
  if (len == 0 || len >= sizeof(buf)) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  memset(out, 0, 16);
  if (uv_inet_pton(AF_INET, buf, out + 12) == 0) {
    out[10] = out[11] = 0xff;
    return 0;
  }
  return uv_inet_pton(AF_INET6, buf, out) == 0 ? 0 : -1;
}

int uvws__server_is_trusted(const uvws_server_t *srv, const uint8_t addr[16]) {
  size_t i;
  for (i = 0; i < srv->ntrusted; i++)
    if (memcmp(srv->trusted[i], addr, 16) == 0) return 1;
  return 0;
}

static int parse_trusted(uvws_server_t *srv) {
  const char *p = srv->trusted_proxies;
  size_t n = 1;
  for (; *p; p++) n += *p == ',';
  srv->trusted = calloc(n, 16);
  if (srv->trusted == NULL) return UV_ENOMEM;
  for (p = srv->trusted_proxies; *p;) {
    const char *e = p;
    size_t len;
    while (*e && *e != ',') e++;
    while (p < e && *p == ' ') p++;
    len = (size_t)(e - p);
    while (len && p[len - 1] == ' ') len--;
    if (len) {
      if (uvws__parse_ip(p, len, srv->trusted[srv->ntrusted]) != 0) {
        uvws__log(UVWS_LOG_ERROR, "trusted proxy '%.*s' is not an IP address", (int)len, p);
        return UV_EINVAL;
      }
      srv->ntrusted++;
    }
    p = *e ? e + 1 : e;
  }
  return 0;
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
  if (opts->threads > UVWS__MAX_THREADS) return UV_EINVAL;
  if (opts->tls_port < 0 || opts->tls_port > 65535 || (!opts->tls_cert != !opts->tls_key) ||
      (opts->tls_only && !opts->tls_cert && !opts->tls_self_signed))
    return UV_EINVAL;
  if (opts->deflate && (opts->deflate_level < 1 || opts->deflate_level > 9 ||
                        opts->deflate_window_bits < 9 || opts->deflate_window_bits > 15 ||
                        opts->deflate_mem_level < 1 || opts->deflate_mem_level > 9))
    return UV_EINVAL;
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
  srv->host = dup_str(opts->host ? opts->host : "127.0.0.1");
  srv->web_root = dup_str(opts->web_root);
  srv->allow_origin = dup_str(opts->allow_origin);
  srv->trusted_proxies = dup_str(opts->trusted_proxies);
  srv->tls_cert = dup_str(opts->tls_cert);
  srv->tls_key = dup_str(opts->tls_key);
  srv->redis_url = dup_str(opts->redis);
  srv->readbuf = malloc(UVWS__READ_BUF_SIZE);
  if (srv->host == NULL || (opts->web_root && srv->web_root == NULL) || srv->readbuf == NULL ||
      (opts->allow_origin && srv->allow_origin == NULL)) {
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
  if (uvws_server_mount(srv, "/", srv->web_root) != 0) {
    uvws_server_free(srv);
    return UV_ENOMEM;
  }
  srv->opts.allow_origin = srv->allow_origin;
  srv->opts.trusted_proxies = srv->trusted_proxies;
  if (srv->trusted_proxies && parse_trusted(srv) != 0) {
    uvws_server_free(srv);
    return UV_EINVAL;
  }
  srv->opts.tls_cert = srv->tls_cert;
  srv->opts.tls_key = srv->tls_key;
  srv->opts.redis = srv->redis_url;
  if (srv->opts.threads == 0) srv->opts.threads = 1;
  srv->port = -1;
  srv->tls_port = -1;
  *out = srv;
  return 0;
}

void uvws_server_free(uvws_server_t *srv) {
  size_t i;
  if (srv == NULL) return;
  uvws__group_free(srv); /* joins the other threads first */
  uvws__wq_cache_drain();   /* this thread's spare queue chunks */
  uvws__redis_free(srv);
  free(srv->redis_url);
  for (i = 0; i < srv->nroutes; i++) {
    uvws__route_t *r = &srv->routes[i];
    if (r->subprotocols) {
      char **p;
      for (p = r->subprotocols; *p; p++) free(*p);
      free(r->subprotocols);
    }
    free(r->path);
  }
  for (i = 0; i < UVWS__IP_BUCKETS; i++) {
    while (srv->ips[i]) {
      uvws__ipcount_t *e = srv->ips[i];
      srv->ips[i] = e->next;
      free(e);
    }
  }
  uvws__pubsub_free(srv);
  free(srv->routes);
  free(srv->host);
  free(srv->allow_origin);
  free(srv->trusted_proxies);
  free(srv->trusted);
  free(srv->tls_cert);
  free(srv->tls_key);
  free(srv->tlsbuf);
  uvws__tls_conf_unref(srv->tls);
  uvws__tls_rng_free(&srv->rng);
  free(srv->web_root);
  for (i = 0; i < srv->nmounts; i++) {
    free(srv->mounts[i].prefix);
    free(srv->mounts[i].dir);
    free(srv->mounts[i].real);
  }
  free(srv->mounts);
  free(srv->readbuf);
  free(srv->filebuf);
  if (srv->own_loop) {
    if (srv->own_thread_started) uv_thread_join(&srv->own_thread);
    if (uv_loop_close(srv->loop) == 0) free(srv->loop);
    else uvws__log(UVWS_LOG_ERROR, "free: the server's loop still has handles (uvws_server_stop first)");
  }
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
  if (r->subprotocols) {
    for (i = 0; i < n; i++) free(r->subprotocols[i]);
    free(r->subprotocols);
  }
  free(r->path);
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

const uvws__mount_t *uvws__server_mount_for(const uvws_server_t *srv, const char *rel,
                                            const char **rest) {
  const uvws__mount_t *best = srv->nmounts ? &srv->mounts[0] : NULL;
  size_t i;
  for (i = 1; i < srv->nmounts; i++) {
    const uvws__mount_t *m = &srv->mounts[i];
    if (strncmp(rel, m->prefix, m->prefix_len) == 0 &&
        (rel[m->prefix_len] == '/' || rel[m->prefix_len] == '\0') &&
        (best == &srv->mounts[0] || m->prefix_len > best->prefix_len))
      best = m;
  }
  *rest = rel;
  if (best && best->prefix_len) {
    *rest = rel + best->prefix_len;
    if (**rest == '/') (*rest)++;
  }
  return best;
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
  r = uvws__conn_accept(srv, listener, listener == (uv_stream_t *)&srv->tls_listener);
  if (r < 0) uvws__log(UVWS_LOG_WARN, "accept: %s", uv_strerror(r));
}

/* Big fan-outs pace themselves: when a flush round took longer than
 * FLUSH_BUSY_NS, the next one waits about as long again (at most
 * FLUSH_DEFER_MAX_NS), so the publishes that arrive meanwhile share each
 * subscriber's write instead of costing one send each. Small rounds (a
 * chat room, an echo) are never delayed. */
#define FLUSH_BUSY_NS 200000u
#define FLUSH_DEFER_MAX_NS 2000000u

static void flush_now(uvws_server_t *srv) {
  uint64_t t0 = uv_hrtime(), d;
  uvws__conn_flush_all(srv);
  d = uv_hrtime() - t0;
  srv->flush_not_before = d > FLUSH_BUSY_NS ? t0 + d + (d < FLUSH_DEFER_MAX_NS ? d : FLUSH_DEFER_MAX_NS) : 0;
}

static void on_flush_timer(uv_timer_t *t) {
  uvws_server_t *srv = t->data;
  if (srv->flush_head) flush_now(srv);
}

size_t uvws__server_queued(const uvws_server_t *srv) {
  const uvws_conn_t *c;
  size_t n = 0;
  for (c = srv->conns; c; c = c->next) n += uvws__conn_queued(c);
  return n;
}

static void on_check(uv_check_t *h) {
  uvws_server_t *srv = h->data;
  if (srv->flush_head == NULL) return;
  if (srv->flush_not_before && uv_hrtime() < srv->flush_not_before) {
    if (!uv_is_active((uv_handle_t *)&srv->flush_timer))
      uv_timer_start(&srv->flush_timer, on_flush_timer, 1, 0);
    return;
  }
  flush_now(srv);
}

static void sweep(uv_timer_t *t) {
  uvws_server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  uvws_conn_t *c = srv->conns, *next;
  int drop = srv->shutting_down && srv->shutdown_deadline && now >= srv->shutdown_deadline;

  if (srv->drain_until && now >= srv->drain_until) {
    srv->drain_until = 0;
    uvws_server_shutdown(srv, srv->shutdown_cb); /* the drain is over */
  }

  /* Loop lag: how late this tick runs. A busy loop delays every client. */
  if (srv->last_sweep) {
    uint64_t lag = now - srv->last_sweep > UVWS__SWEEP_MS ? now - srv->last_sweep - UVWS__SWEEP_MS : 0;
    UVWS__SET(srv->m.loop_lag_ms_last, lag);
    if (lag > UVWS__GET(srv->m.loop_lag_ms_max)) UVWS__SET(srv->m.loop_lag_ms_max, lag);
  }
  srv->last_sweep = now;
  if (srv->group) UVWS__SET(srv->m.queued_bytes, uvws__server_queued(srv)); /* for the other loops' /metrics */
  for (; c; c = next) {
    next = c->next; /* a timeout closes, but the free comes later */
    if (c->state == UVWS__CONN_CLOSED) continue;
    if (drop) {
      uvws__conn_abort(c, "shutdown timeout");
      continue;
    }
    if (c->deadline && c->deadline <= now) uvws__conn_timeout(c);
    else if (c->state == UVWS__CONN_WS) uvws__conn_keepalive(c, now);
  }
}

/* ---- per-address connection counts ------------------------------------------ */

static unsigned ip_hash(const uint8_t a[16]) {
  uint32_t h = 2166136261u; /* FNV-1a */
  int i;
  for (i = 0; i < 16; i++) h = (h ^ a[i]) * 16777619u;
  return h % UVWS__IP_BUCKETS;
}

/* With threads, every loop counts in the primary's table, under the
 * group's lock (only accept and close get here). */
static int ip_add(uvws_server_t *srv, const uint8_t addr[16]) {
  uvws__ipcount_t **slot = &srv->ips[ip_hash(addr)], *e;
  for (e = *slot; e; e = e->next)
    if (memcmp(e->addr, addr, 16) == 0) return (int)++e->count;
  e = calloc(1, sizeof(*e));
  if (e == NULL) return UV_ENOMEM;
  memcpy(e->addr, addr, 16);
  e->count = 1;
  e->next = *slot;
  *slot = e;
  return 1;
}

int uvws__server_ip_add(uvws_server_t *srv, const uint8_t addr[16]) {
  int n;
  uvws__group_lock(srv);
  n = ip_add(uvws__group_primary(srv), addr);
  uvws__group_unlock(srv);
  return n;
}

void uvws__server_ip_del(uvws_server_t *srv, const uint8_t addr[16]) {
  uvws__ipcount_t **p, *e;
  uvws__group_lock(srv);
  p = &uvws__group_primary(srv)->ips[ip_hash(addr)];
  for (; (e = *p) != NULL; p = &e->next) {
    if (memcmp(e->addr, addr, 16) != 0) continue;
    if (--e->count == 0) {
      *p = e->next;
      free(e);
    }
    break;
  }
  uvws__group_unlock(srv);
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

/* SO_REUSEPORT would let a second uvws share a port already in use (by the
 * same user) and silently split its traffic: before binding the shared
 * sockets, check with a plain one that nobody listens there yet. */
static int port_taken(const struct sockaddr_storage *ss) {
  int fd = socket(ss->ss_family, SOCK_STREAM, 0), on = 1, r = 0;
  if (fd < 0) return uv_translate_sys_error(errno);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)); /* as libuv binds */
  if (bind(fd, (const struct sockaddr *)ss,
           ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
    r = uv_translate_sys_error(errno);
  close(fd);
  return r;
}

/* Binds, listens, logs "listening on http(s)://HOST:PORT", and records
 * the port. The handle counts as open from uv_tcp_init on. */
static int listen_on(uvws_server_t *srv, uv_tcp_t *h, int port, int tls) {
  struct sockaddr_storage ss;
  int namelen = sizeof(ss), r;
  char ip[INET6_ADDRSTRLEN];

  r = resolve(srv->host, port, &ss);
  if (r < 0) {
    uvws__log(UVWS_LOG_ERROR, "cannot resolve listen address %s", srv->host);
    return r;
  }
  if (srv->opts.threads > 1 && srv->index == 0 && port != 0 && (r = port_taken(&ss)) != 0) {
    uvws__log(UVWS_LOG_ERROR, "listen on %s:%d: %s", srv->host, port, uv_strerror(r));
    return r;
  }
  /* One listening socket per loop, all on one port: SO_REUSEPORT must be
   * set before bind, so the socket is created first (libuv 1.44 has no
   * bind flag for it). */
  r = srv->opts.threads > 1 ? uv_tcp_init_ex(srv->loop, h, ss.ss_family) : uv_tcp_init(srv->loop, h);
  if (r < 0) return r;
  h->data = srv;
  srv->handles_open++;
  if (tls) srv->listening_tls = 1; /* so shutdown closes it */
  else srv->listening_plain = 1;
  if (srv->opts.threads > 1) {
    uv_os_fd_t fd;
    int on = 1;
    r = uv_fileno((uv_handle_t *)h, &fd);
    if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) r = uv_translate_sys_error(errno);
    if (r < 0) {
      uvws__log(UVWS_LOG_ERROR, "SO_REUSEPORT: %s", uv_strerror(r));
      return r;
    }
  }
  r = uv_tcp_bind(h, (const struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)h, 511, on_connection);
  if (r < 0) {
    uvws__log(UVWS_LOG_ERROR, "listen on %s:%d: %s", srv->host, port, uv_strerror(r));
    return r;
  }
  r = uv_tcp_getsockname(h, (struct sockaddr *)&ss, &namelen);
  if (r < 0) return r;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    uvws__log(srv->index ? UVWS_LOG_DEBUG : UVWS_LOG_INFO, "listening on %s://[%s]:%d", tls ? "https" : "http", ip, port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uvws__log(srv->index ? UVWS_LOG_DEBUG : UVWS_LOG_INFO, "listening on %s://%s:%d", tls ? "https" : "http", ip, port);
  }
  if (tls) srv->tls_port = port;
  else srv->port = port;
  return 0;
}

/* ---- a server on its own threads (uvws_server_new with no loop) ---------- */

static void own_thread_main(void *arg) {
  uvws_server_t *srv = arg;
  uv_run(srv->loop, UV_RUN_DEFAULT);
  uvws__wq_cache_drain();
}

static void on_own_shutdown(uvws_server_t *srv) {
  uv_close((uv_handle_t *)&srv->stop_async, NULL); /* the loop's last handle */
}

static void on_stop_async(uv_async_t *a) { uvws_server_shutdown(a->data, on_own_shutdown); }

int uvws_server_start(uvws_server_t *srv) {
  int r;
  size_t i;

  if (srv->started) return UVWS_ESTATE;
  for (i = 0; i < srv->nmounts; i++) {
    uvws__mount_t *m = &srv->mounts[i];
    char real[PATH_MAX];
    if (m->dir == NULL) continue;
    if (realpath(m->dir, real) == NULL) {
      uvws__log(UVWS_LOG_ERROR, "static folder %s (for /%s): not found", m->dir, m->prefix);
      return UV_ENOENT;
    }
    m->real = dup_str(real);
    if (m->real == NULL) return UV_ENOMEM;
    m->real_len = strlen(real);
    /* "/" as a root would make every "/x" look inside it */
    if (m->real_len == 1) m->real_len = 0;
  }
  if (srv->tls == NULL && (srv->opts.tls_cert || srv->opts.tls_self_signed)) {
    char err[256];
    if (srv->opts.tls_cert)
      r = uvws__tls_conf_load(&srv->rng, srv->opts.tls_cert, srv->opts.tls_key, &srv->tls, err, sizeof(err));
    else
      r = uvws__tls_conf_self_signed(&srv->rng, "localhost", &srv->tls, err, sizeof(err));
    if (r != 0) {
      uvws__log(UVWS_LOG_ERROR, "%s", err);
      return r;
    }
    uvws__log(UVWS_LOG_INFO, "TLS certificate%s SHA-256 fingerprint %s",
              srv->opts.tls_cert ? "" : " (self-signed, in memory)", srv->tls->fingerprint);
  }
  srv->started = 1;
  if (!srv->opts.tls_only) {
    r = listen_on(srv, &srv->listener, srv->opts.port, 0);
    if (r < 0) return r;
    srv->listening_plain = 1;
  }
  if (srv->tls) {
    r = listen_on(srv, &srv->tls_listener, srv->opts.tls_port, 1);
    if (r < 0) return r;
    srv->listening_tls = 1;
  }
  r = uv_timer_init(srv->loop, &srv->sweep);
  if (r < 0) return r;
  srv->sweep.data = srv;
  srv->handles_open++;
  srv->sweep_open = 1;
  uv_timer_start(&srv->sweep, sweep, UVWS__SWEEP_MS, UVWS__SWEEP_MS);
  uv_unref((uv_handle_t *)&srv->sweep); /* the timer alone keeps no loop alive */
  r = uv_check_init(srv->loop, &srv->flusher);
  if (r < 0) return r;
  srv->flusher.data = srv;
  srv->handles_open++;
  srv->flusher_open = 1;
  uv_check_start(&srv->flusher, on_check);
  uv_unref((uv_handle_t *)&srv->flusher);
  r = uv_timer_init(srv->loop, &srv->flush_timer);
  if (r < 0) return r;
  srv->flush_timer.data = srv;
  srv->handles_open++;
  srv->flush_timer_open = 1;
  /* Redis first: the other threads read srv->redis from their start on. */
  if (srv->index == 0 && srv->group == NULL && srv->opts.redis && (r = uvws__redis_start(srv)) != 0)
    return r;
  if (srv->opts.threads > 1 && srv->group == NULL && (r = uvws__group_start(srv)) != 0) return r;
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
}

int uvws_server_stop(uvws_server_t *srv) {
  if (!srv->own_loop || !srv->own_thread_started) return UVWS_ESTATE;
  uv_async_send(&srv->stop_async);
  uv_thread_join(&srv->own_thread);
  srv->own_thread_started = 0;
  return 0;
}

int uvws_server_port(const uvws_server_t *srv) { return srv->port >= 0 ? srv->port : UVWS_ESTATE; }
int uvws_server_tls_port(const uvws_server_t *srv) {
  return srv->tls_port >= 0 ? srv->tls_port : UVWS_ESTATE;
}

const char *uvws_server_tls_fingerprint(const uvws_server_t *srv) {
  return srv->tls ? srv->tls->fingerprint : NULL;
}

int uvws_server_tls_reload(uvws_server_t *srv) {
  uvws__tls_conf_t *fresh = NULL;
  char err[256];
  int r;
  if (srv->tls == NULL) return UVWS_ESTATE;
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
  uvws__tls_conf_unref(srv->tls);
  srv->tls = fresh;
  uvws__group_tls(srv, fresh);
  uvws__log(UVWS_LOG_INFO, "TLS reload: certificate SHA-256 fingerprint %s", fresh->fingerprint);
  return 0;
}

/* ---- shutdown --------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h);

void uvws__server_maybe_done(uvws_server_t *srv) {
  if (srv->shutting_down && srv->nconns == 0 &&
      (srv->sweep_open || srv->flusher_open || srv->flush_timer_open)) {
    /* Only handles that were initialised: a start that failed half way
     * (a port in use) left the others untouched. */
    if (srv->sweep_open) uv_close((uv_handle_t *)&srv->sweep, on_handle_closed);
    if (srv->flusher_open) uv_close((uv_handle_t *)&srv->flusher, on_handle_closed);
    if (srv->flush_timer_open) uv_close((uv_handle_t *)&srv->flush_timer, on_handle_closed);
    srv->sweep_open = srv->flusher_open = srv->flush_timer_open = 0;
    return; /* back here from on_handle_closed */
  }
  if (srv->shutting_down && srv->handles_open == 0 && srv->nconns == 0 && srv->shutdown_cb &&
      !uvws__group_busy(srv) && !uvws__redis_busy(srv)) {
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
  uvws__server_count_conn(srv, -1);
  uvws__conn_flush_forget(c);
  if (srv->corked == c) srv->corked = NULL;
  uvws__server_maybe_done(srv);
}

static void on_handle_closed(uv_handle_t *h) {
  uvws_server_t *srv = h->data;
  srv->handles_open--;
  uvws__server_maybe_done(srv);
}

int uvws__server_draining(uvws_server_t *srv) {
  return atomic_load_explicit(&uvws__group_primary(srv)->draining, memory_order_relaxed);
}

void uvws_server_shutdown(uvws_server_t *srv, void (*cb)(uvws_server_t *srv)) {
  uvws_conn_t *c, *next;
  if (srv->shutting_down) return;
  if (srv->index == 0 && srv->opts.shutdown_drain_ms && srv->sweep_open) {
    if (srv->drain_until) return; /* already draining */
    if (!atomic_load(&srv->draining)) {
      /* Everything keeps working; only /healthz changes. The sweep calls
       * us again when the time is up. */
      atomic_store(&srv->draining, 1);
      srv->shutdown_cb = cb;
      srv->drain_until = uv_now(srv->loop) + srv->opts.shutdown_drain_ms;
      uvws__log(UVWS_LOG_INFO, "shutting down: draining for %u ms first (/healthz answers 503)",
                srv->opts.shutdown_drain_ms);
      return;
    }
  }
  srv->shutting_down = 1;
  srv->shutdown_cb = cb;
  srv->shutdown_deadline = uv_now(srv->loop) + srv->opts.shutdown_timeout_ms;
  if (srv->index == 0)
    uvws__log(UVWS_LOG_INFO, "shutting down: %zu connection(s) open", uvws__server_total_conns(srv));
  if (srv->group && srv->index == 0) uvws__group_shutdown(srv);
  if (srv->redis) uvws__redis_stop(srv);
  /* The sweep keeps running until the last connection is gone: closing
   * handshakes still need their timeouts. */
  if (srv->listening_plain) uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
  if (srv->listening_tls) uv_close((uv_handle_t *)&srv->tls_listener, on_handle_closed);
  for (c = srv->conns; c; c = next) {
    next = c->next;
    if (c->state == UVWS__CONN_WS) {
      if (uvws_close(c, UVWS_CLOSE_GOING_AWAY, "server shutting down") != 0 && !c->finishing)
        uvws__conn_finish(c);
    } else if (c->state == UVWS__CONN_HTTP && !uvws__http_busy(c)) {
      uvws__conn_finish(c);
    }
  }
  uvws__server_maybe_done(srv);
}

uv_loop_t *uvws_server_loop(const uvws_server_t *srv) { return srv->loop; }
void *uvws_server_get_data(const uvws_server_t *srv) { return srv->data; }
void uvws_server_set_data(uvws_server_t *srv, void *data) { srv->data = data; }

/* Listening sockets, and the state every loop of a server shares for
 * accepting (limits, per-address counts, trusted proxies). */
#include "net/net.h"
#include "util/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- shared accept state --------------------------------------------------------- */

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

int uvws__net_is_trusted(const uvws__net_shared_t *sh, const uint8_t addr[16]) {
  size_t i;
  for (i = 0; i < sh->ntrusted; i++)
    if (memcmp(sh->trusted[i], addr, 16) == 0) return 1;
  return 0;
}

static int parse_trusted(uvws__net_shared_t *sh, const char *list) {
  const char *p = list;
  size_t n = 1;
  for (; *p; p++) n += *p == ',';
  sh->trusted = calloc(n, 16);
  if (sh->trusted == NULL) return UV_ENOMEM;
  for (p = list; *p;) {
    const char *e = p;
    size_t len;
    while (*e && *e != ',') e++;
    while (p < e && *p == ' ') p++;
    len = (size_t)(e - p);
    while (len && p[len - 1] == ' ') len--;
    if (len) {
      if (uvws__parse_ip(p, len, sh->trusted[sh->ntrusted]) != 0) {
        uvws__log(UVWS_LOG_ERROR, "trusted proxy '%.*s' is not an IP address", (int)len, p);
        return UV_EINVAL;
      }
      sh->ntrusted++;
    }
    p = *e ? e + 1 : e;
  }
  return 0;
}

int uvws__net_shared_init(uvws__net_shared_t *sh, const char *trusted_proxies, int threaded) {
  int r;
  memset(sh, 0, sizeof(*sh));
  atomic_init(&sh->open, 0);
  if ((r = uv_mutex_init(&sh->lock)) != 0) return r;
  sh->threaded = threaded;
  return trusted_proxies ? parse_trusted(sh, trusted_proxies) : 0;
}

void uvws__net_shared_free(uvws__net_shared_t *sh) {
  size_t i;
  for (i = 0; i < UVWS__IP_BUCKETS; i++) {
    while (sh->ips[i]) {
      uvws__ipcount_t *e = sh->ips[i];
      sh->ips[i] = e->next;
      free(e);
    }
  }
  free(sh->trusted);
  sh->trusted = NULL;
  uv_mutex_destroy(&sh->lock);
}

/* ---- listening --------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  uvws__listen_t *l = listener->data;
  uvws__netloop_t *nl = l->nl;
  int r;
  if (status < 0) {
    uvws__log(UVWS_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  r = uvws__net_accept(nl, listener, l->tls);
  if (r < 0) uvws__log(UVWS_LOG_WARN, "accept: %s", uv_strerror(r));
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss) {
  struct addrinfo hints, *res = NULL;
  char portstr[8];
  int r;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  /* Any other name: resolved once, at start, to its first address. */
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

static socklen_t addr_len(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, int port) {
  if (ss->ss_family == AF_INET6) ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  else ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static int get_port(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
                                   : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* SO_REUSEPORT would let a second uvws share a port already in use (by the
 * same user) and silently split its traffic: before binding the shared
 * sockets, check with a plain one that nobody listens there yet. */
static int port_taken(const struct sockaddr_storage *ss) {
  int fd = socket(ss->ss_family, SOCK_STREAM, 0), on = 1, r = 0;
  if (fd < 0) return uv_translate_sys_error(errno);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)); /* as libuv binds */
  if (bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0) r = uv_translate_sys_error(errno);
  close(fd);
  return r;
}

/* A listening socket made with plain system calls: a failure leaves
 * nothing in any loop (a libuv handle, once initialised, can only be
 * freed by running its loop). */
static int bind_one(struct sockaddr_storage *ss, int reuseport, int check_taken, int *out) {
  socklen_t len = addr_len(ss);
  int fd, on = 1, r = 0;

  *out = -1;
  if (check_taken && get_port(ss) != 0 && (r = port_taken(ss)) != 0) return r;
  fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
      /* An IPv6 socket serves IPv6 only: "localhost" binds ::1 and
       * 127.0.0.1 as two sockets on one port. */
      (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
      bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 511) != 0 ||
      getsockname(fd, (struct sockaddr *)ss, &len) != 0)
    r = uv_translate_sys_error(errno);
  if (r < 0) {
    close(fd);
    return r;
  }
  *out = fd;
  return 0;
}

int uvws__net_listen_bind(uvws__listen_t *l, const char *host, int port, int tls, int reuseport,
                          int check_taken, int quiet) {
  struct sockaddr_storage ss[UVWS__MAX_LISTEN];
  unsigned naddr = 1, i;
  int r;

  l->tls = tls;
  l->port = -1;
  /* "localhost" is what browsers and clients resolve to 127.0.0.1 or ::1,
   * in either order (Node 18 takes ::1 alone): serve both. */
  if (strcmp(host, "localhost") == 0) {
    uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&ss[0]);
    uv_ip6_addr("::1", port, (struct sockaddr_in6 *)&ss[1]);
    naddr = 2;
  } else if ((r = resolve(host, port, &ss[0])) < 0) {
    uvws__log(UVWS_LOG_ERROR, "cannot resolve listen address %s", host);
    return r;
  }
  for (i = 0; i < naddr; i++) {
    char ip[INET6_ADDRSTRLEN];
    if (i > 0) set_port(&ss[i], l->port); /* port 0: the same free port on each */
    r = bind_one(&ss[i], reuseport, check_taken, &l->fd[l->nfd]);
    if (r < 0 && i > 0 && (r == UV_EADDRNOTAVAIL || r == UV_EAFNOSUPPORT)) {
      /* No IPv6 loopback on this machine: 127.0.0.1 alone is localhost. */
      uvws__log(UVWS_LOG_DEBUG, "listen on [::1]:%d: %s; IPv4 only", l->port, uv_strerror(r));
      break;
    }
    if (r < 0) {
      uvws__log(UVWS_LOG_ERROR, "listen on %s:%d: %s", host, i > 0 ? l->port : port, uv_strerror(r));
      uvws__net_listen_discard(l);
      return r;
    }
    l->nfd++;
    l->port = get_port(&ss[i]);
    if (ss[i].ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss[i], ip, sizeof(ip));
    else uv_ip4_name((struct sockaddr_in *)&ss[i], ip, sizeof(ip));
    uvws__log(quiet ? UVWS_LOG_DEBUG : UVWS_LOG_INFO,
              ss[i].ss_family == AF_INET6 ? "listening on %s://[%s]:%d" : "listening on %s://%s:%d",
              tls ? "https" : "http", ip, l->port);
  }
  return 0;
}

void uvws__net_listen_discard(uvws__listen_t *l) {
  unsigned i;
  for (i = 0; i < l->nfd; i++)
    if (l->fd[i] >= 0) close(l->fd[i]);
  l->nfd = 0;
}

int uvws__net_listen_start(uvws__netloop_t *nl, uvws__listen_t *l, void *owner) {
  unsigned i;
  int r;
  l->nl = nl;
  l->owner = owner;
  for (i = 0; i < l->nfd; i++) {
    uv_tcp_t *h = &l->h[l->n];
    if ((r = uv_tcp_init(nl->loop, h)) < 0) return r;
    h->data = l;
    l->n++;
    if ((r = uv_tcp_open(h, l->fd[i])) < 0) return r;
    l->fd[i] = -1; /* the handle's now */
    if ((r = uv_listen((uv_stream_t *)h, 511, on_connection)) < 0) return r;
  }
  l->nfd = 0;
  return 0;
}

void uvws__net_listen_close(uvws__listen_t *l, uv_close_cb cb) {
  unsigned i;
  for (i = 0; i < l->n; i++)
    if (!uv_is_closing((uv_handle_t *)&l->h[i])) uv_close((uv_handle_t *)&l->h[i], cb);
  uvws__net_listen_discard(l);
}

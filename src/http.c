/* HTTP/1.1 on llhttp: requests, error answers, the builtins and the
 * decision to upgrade (static files are in http_files.c). One request is handled at a time; pipelined bytes
 * wait in `pending` while a file response streams. */
#include "http.h"
#include "log.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- llhttp callbacks: collect the request ------------------------------ */

static uvws__http_t *http_of(llhttp_t *p) { return ((uvws_conn_t *)p->data)->http; }
static uvws_conn_t *conn_of(llhttp_t *p) { return p->data; }

static int count_head(llhttp_t *p, size_t n) {
  uvws__http_t *h = http_of(p);
  h->head_bytes += n;
  if (h->head_bytes > conn_of(p)->srv->opts.max_header_bytes) {
    h->error_status = 431;
    llhttp_set_error_reason(p, "request header fields too large");
    return HPE_USER;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  uvws__http_t *h = http_of(p);
  uvws_conn_t *c = conn_of(p);
  h->hbuf.off = h->hbuf.len = 0;
  h->nhdrs = 0;
  h->url_len = 0;
  h->head_bytes = 16; /* method, spaces, version, CRLF */
  h->last_cb = 0;
  h->in_message = 1;
  h->status = 0;
  h->body_bytes = 0;
  c->deadline = uv_now(c->srv->loop) + c->srv->opts.handshake_timeout_ms;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  uvws__http_t *h = http_of(p);
  if (h->url_len + n > conn_of(p)->srv->opts.max_url) {
    h->error_status = 414;
    llhttp_set_error_reason(p, "request target too long");
    return HPE_USER;
  }
  if (uvws__buf_append(&h->hbuf, at, n) != 0) return -1;
  h->url_len += (uint32_t)n;
  return count_head(p, n);
}

/* RFC 9110 section 5.6.2: tchar. llhttp (non-strict build) lets a space
 * or other separators into a field name; such a request is malformed. */
static int is_tchar(unsigned char c) {
  if (c >= 'a' && c <= 'z') return 1;
  if (c >= 'A' && c <= 'Z') return 1;
  if (c >= '0' && c <= '9') return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  uvws__http_t *h = http_of(p);
  size_t i;
  for (i = 0; i < n; i++) {
    if (!is_tchar((unsigned char)at[i])) {
      llhttp_set_error_reason(p, "invalid character in a header field name");
      return HPE_USER;
    }
  }
  if (h->last_cb != 1) {
    hdr_t *hd;
    if (h->nhdrs == MAX_HEADERS) {
      h->error_status = 431;
      llhttp_set_error_reason(p, "too many header fields");
      return HPE_USER;
    }
    hd = &h->hdrs[h->nhdrs++];
    hd->name_off = (uint32_t)h->hbuf.len;
    hd->name_len = 0;
    hd->val_off = 0;
    hd->val_len = 0;
    h->last_cb = 1;
    if (count_head(p, 4) != 0) return HPE_USER; /* ": " and CRLF */
  }
  if (uvws__buf_append(&h->hbuf, at, n) != 0) return -1;
  h->hdrs[h->nhdrs - 1].name_len += (uint32_t)n;
  return count_head(p, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  uvws__http_t *h = http_of(p);
  hdr_t *hd = &h->hdrs[h->nhdrs - 1];
  if (h->last_cb != 2) {
    hd->val_off = (uint32_t)h->hbuf.len;
    h->last_cb = 2;
  }
  if (uvws__buf_append(&h->hbuf, at, n) != 0) return -1;
  hd->val_len += (uint32_t)n;
  return count_head(p, n);
}

static int on_message_complete(llhttp_t *p) {
  http_of(p)->in_message = 0;
  /* Upgrades pause by themselves (HPE_PAUSED_UPGRADE); everything else is
   * paused here so each request is answered before the next is parsed. */
  return llhttp_get_upgrade(p) ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

/* ---- header lookup ---------------------------------------------------------- */



static void trim(const char *base, size_t *off, size_t *len) {
  while (*len && (base[*off] == ' ' || base[*off] == '\t')) (*off)++, (*len)--;
  while (*len && (base[*off + *len - 1] == ' ' || base[*off + *len - 1] == '\t')) (*len)--;
}

/* Appends bytes that hbuf already holds. The source is addressed by offset
 * and taken only after the room is made: growing may move the buffer
 * (appending from a pointer into it was a use-after-free, found by
 * fuzz_http). */
static int append_own(uvws__buf_t *b, size_t off, size_t len) {
  if (uvws__buf_reserve(b, len) != 0) return -1;
  memcpy(uvws__buf_tail(b), uvws__buf_data(b) + off, len);
  b->len += len;
  return 0;
}

hfind_t uvws__http_hfind(uvws__http_t *h, const char *name) {
  hfind_t r = {0, 0, 0};
  size_t nlen = strlen(name), joined_off = 0;
  unsigned i, count = 0;

  for (i = 0; i < h->nhdrs; i++) {
    const hdr_t *hd = &h->hdrs[i];
    size_t off = hd->val_off, len = hd->val_len;
    if (hd->name_len != nlen || strncasecmp(h->hbuf.base + hd->name_off, name, nlen) != 0) continue;
    trim(h->hbuf.base, &off, &len);
    if (count == 0) {
      r.found = 1;
      r.off = off;
      r.len = len;
    } else {
      if (count == 1) { /* start a joined copy at the end of hbuf */
        joined_off = h->hbuf.len;
        if (append_own(&h->hbuf, r.off, r.len) != 0) return r;
      }
      if (uvws__buf_append(&h->hbuf, ", ", 2) != 0 || append_own(&h->hbuf, off, len) != 0) return r;
      r.off = joined_off;
      r.len = h->hbuf.len - joined_off;
    }
    count++;
  }
  return r;
}

static unsigned hfind_count(const uvws__http_t *h, const char *name) {
  size_t nlen = strlen(name);
  unsigned i, count = 0;
  for (i = 0; i < h->nhdrs; i++)
    if (h->hdrs[i].name_len == nlen && strncasecmp(h->hbuf.base + h->hdrs[i].name_off, name, nlen) == 0)
      count++;
  return count;
}

uvws__hval_t uvws__http_hval(const uvws__http_t *h, hfind_t f) {
  uvws__hval_t v = {NULL, 0};
  if (f.found) {
    v.p = h->hbuf.base + f.off;
    v.len = f.len;
  }
  return v;
}

/* ---- responses ---------------------------------------------------------------- */

static const char *status_text(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

/* JSON string contents: quotes, backslashes and control bytes escaped;
 * bytes >= 0x80 pass through (the log is UTF-8 when the request was). */
static void json_escape(char *out, size_t outsz, const char *s, size_t n) {
  size_t o = 0, i;
  for (i = 0; i < n && o + 7 < outsz; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7f) {
      o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", ch);
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o] = '\0';
}

static void access_log(uvws_conn_t *c, const char *method, int status) {
  uvws__http_t *h = c->http;
  int ulen = (int)(h->url_len > 200 ? 200 : h->url_len);
  UVWS__ADD(c->srv->m.http_requests, 1);
  if (uvws__log_level < UVWS_LOG_INFO) return;
  if (c->srv->opts.log_json) {
    char target[7 * 200 + 1];
    json_escape(target, sizeof(target), h->hbuf.base ? h->hbuf.base : "", (size_t)ulen);
    uvws__log_write(UVWS_LOG_INFO,
                    "{\"event\":\"http\",\"peer\":\"%s\",\"method\":\"%s\",\"target\":\"%s\","
                    "\"version\":\"%d.%d\",\"status\":%d,\"bytes\":%llu}",
                    c->peer, method, target, h->parser.http_major, h->parser.http_minor, status,
                    (unsigned long long)h->body_bytes);
    return;
  }
  /* %.*s with a URL the client chose: only printable bytes reach the log */
  {
    char target[201];
    int i;
    for (i = 0; i < ulen; i++) {
      unsigned char ch = (unsigned char)h->hbuf.base[i];
      target[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    target[ulen] = '\0';
    uvws__log_write(UVWS_LOG_INFO, "http %s \"%s %s HTTP/%d.%d\" %d %llu", c->peer, method, target,
                    h->parser.http_major, h->parser.http_minor, status,
                    (unsigned long long)h->body_bytes);
  }
}

/* Queues a complete response head (and a small body). `extra` holds whole
 * header lines, each ending in CRLF. */
int uvws__http_respond(uvws_conn_t *c, int status, const char *extra, const char *ctype,
                       const char *body, size_t body_len, uint64_t content_length, int head_only) {
  uvws__http_t *h = c->http;
  char head[1024];
  int n;
  uv_buf_t b[2];
  char clen[24];

  snprintf(clen, sizeof(clen), "%llu", (unsigned long long)content_length);
  n = snprintf(head, sizeof(head),
               "HTTP/1.1 %d %s\r\n"
               "Server: uvws/" UVWS_VERSION_STRING "\r\n"
               "Date: %s\r\n"
               "%s%s%s"
               "%s%s%s"
               "Connection: %s\r\n"
               "%s\r\n",
               status, status_text(status), uvws__server_date(c->srv), ctype ? "Content-Type: " : "",
               ctype ? ctype : "", ctype ? "\r\n" : "", status == 304 ? "" : "Content-Length: ",
               status == 304 ? "" : clen, status == 304 ? "" : "\r\n",
               h->keep_alive ? "keep-alive" : "close", extra ? extra : "");
  if (n < 0 || (size_t)n >= sizeof(head)) return UV_EINVAL;
  h->status = status;
  UVWS__ADD(c->srv->m.http_status[status / 100 < 6 ? status / 100 : 5], 1);
  b[0] = uv_buf_init(head, (unsigned)n);
  b[1] = uv_buf_init((char *)(uintptr_t)body, (unsigned)body_len);
  if (!head_only) h->body_bytes += body_len;
  return uvws__conn_write(c, b, (body_len && !head_only) ? 2 : 1);
}

/* A short text answer; `why` becomes the one-line body. */
void uvws__http_respond_text(uvws_conn_t *c, int status, const char *extra, const char *why,
                             int head_only) {
  char body[256];
  int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status, status_text(status),
                   why ? ": " : "", why ? why : "");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof(body)) n = sizeof(body) - 1;
  uvws__http_respond(c, status, extra, "text/plain; charset=utf-8", body, (size_t)n, (uint64_t)n, head_only);
}

/* ---- one request --------------------------------------------------------------- */

static action_t upgrade(uvws_conn_t *c, const uvws__route_t *route, const uvws__upgrade_req_t *req,
                        uvws__hval_t protocols, uvws__hval_t extensions, char *rest,
                        size_t rest_len) {
  char accept[UVWS__ACCEPT_LEN + 1];
  char head[768], ext[160];
  const char *proto = NULL;
  uvws__pmd_params_t pmd;
  int deflate = 0;
  uv_buf_t b;
  int n;

  if (uvws__accept_key(req->key.p, req->key.len, accept, NULL) != 0) {
    c->http->keep_alive = 0;
    uvws__http_respond_text(c, 500, NULL, "cannot compute Sec-WebSocket-Accept", 0);
    return A_CLOSE;
  }
  if (route->subprotocols)
    proto = uvws__select_subprotocol(protocols.p, protocols.len,
                                     (const char *const *)route->subprotocols);
  if (c->srv->opts.deflate)
    deflate = uvws__pmd_negotiate(&c->srv->pmd, extensions.p, extensions.len, &pmd, ext, sizeof(ext));
  n = snprintf(head, sizeof(head),
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n"
               "%s%s%s"
               "%s%s%s"
               "\r\n",
               accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
               proto ? "\r\n" : "", deflate ? "Sec-WebSocket-Extensions: " : "",
               deflate ? ext : "", deflate ? "\r\n" : "");
  c->http->status = 101;
  access_log(c, "GET", 101);
  b = uv_buf_init(head, (unsigned)n);
  if (uvws__conn_write(c, &b, 1) != 0) return A_CLOSE;
  c->http->resp_head = head;
  uvws__conn_upgrade(c, route, proto, deflate ? &pmd : NULL, deflate ? ext : NULL, rest, rest_len);
  return A_UPGRADED;
}

/* The client behind a trusted proxy: the rightmost address of
 * X-Forwarded-For (or the for= of Forwarded) that is not itself a trusted
 * proxy. Anything unparsable ends the walk: the proxy's word is taken only
 * as far as it is well-formed. Returns 1 and fills `addr` if found. */
static int forwarded_client(const uvws_server_t *srv, uvws__hval_t xff, uvws__hval_t fwd,
                            uint8_t addr[16]) {
  uvws__hval_t v = xff.p ? xff : fwd;
  size_t end;
  int found = 0;
  if (v.p == NULL) return 0;
  end = v.len;
  while (end > 0) {
    size_t start = end, a, b;
    uint8_t ip[16];
    while (start > 0 && v.p[start - 1] != ',') start--;
    a = start;
    b = end;
    while (a < b && (v.p[a] == ' ' || v.p[a] == '\t')) a++;
    while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t')) b--;
    if (!xff.p) { /* Forwarded: for=addr, maybe quoted, maybe with a port */
      const char *f = NULL;
      size_t k;
      for (k = a; k + 4 <= b; k++)
        if (strncasecmp(v.p + k, "for=", 4) == 0 && (k == a || v.p[k - 1] == ';' || v.p[k - 1] == ' ')) {
          f = v.p + k + 4;
          break;
        }
      if (f == NULL) break;
      a = (size_t)(f - v.p);
      for (k = a; k < b && v.p[k] != ';'; k++) {
      }
      b = k;
      if (b - a >= 2 && v.p[a] == '"' && v.p[b - 1] == '"') a++, b--;
      if (a < b && v.p[a] == '[') { /* [v6]:port */
        for (k = a; k < b && v.p[k] != ']'; k++) {
        }
        b = k < b ? k + 1 : b;
      } else {
        for (k = a; k < b && v.p[k] != ':'; k++) {
        }
        b = k; /* v4:port */
      }
    }
    if (uvws__parse_ip(v.p + a, b - a, ip) != 0) break;
    memcpy(addr, ip, 16);
    found = 1;
    if (!uvws__server_is_trusted(srv, ip)) break;
    end = start > 0 ? start - 1 : 0;
  }
  return found;
}

/* --allow-origin: exact, case-insensitive matches in a comma list; "*"
 * allows any. Requests without Origin (non-browser clients) pass: the
 * check exists to stop other sites' pages, which always send one. */
static int origin_allowed(const uvws_server_t *srv, uvws__hval_t origin) {
  const char *list = srv->opts.allow_origin;
  char token[256];
  if (list == NULL || origin.p == NULL) return 1;
  if (origin.len >= sizeof(token)) return 0;
  memcpy(token, origin.p, origin.len);
  token[origin.len] = '\0';
  return uvws__list_has_token(list, strlen(list), "*") ||
         uvws__list_has_token(list, strlen(list), token);
}

/* GET /metrics and /healthz, answered before routes and files. */
static int builtin(uvws_conn_t *c, const char *path, size_t plen, int method) {
  uvws__buf_t body = {NULL, 0, 0, 0};
  if (!c->srv->opts.metrics || (method != HTTP_GET && method != HTTP_HEAD)) return 0;
  if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
    if (c->srv->shutting_down || uvws__server_draining(c->srv))
      uvws__http_respond_text(c, 503, NULL, "shutting down", method == HTTP_HEAD);
    else uvws__http_respond(c, 200, NULL, "text/plain; charset=utf-8", "ok\n", 3, 3, method == HTTP_HEAD);
    return 1;
  }
  if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
    uvws__metrics_render(c->srv, &body);
    uvws__http_respond(c, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", uvws__buf_data(&body),
            body.len, body.len, method == HTTP_HEAD);
    uvws__buf_free(&body);
    return 1;
  }
  return 0;
}

static action_t handle_request(uvws_conn_t *c, char *rest, size_t rest_len) {
  uvws__http_t *h = c->http;
  llhttp_t *p = &h->parser;
  int method = llhttp_get_method(p);
  const char *mname = llhttp_method_name((llhttp_method_t)method);
  const char *target;
  size_t tlen = h->url_len, plen;
  const uvws__route_t *route;
  uvws__upgrade_req_t req;
  hfind_t fhost, fup, fconn, fkey, fver, fproto, fext;
  uvws__hval_t protocols, extensions;
  int head_only = method == HTTP_HEAD;
  action_t a;

  h->keep_alive = (uint8_t)llhttp_should_keep_alive(p) && !c->srv->shutting_down;
  if (p->http_major != 1) {
    h->keep_alive = 0;
    uvws__http_respond_text(c, 505, NULL, "only HTTP/1.0 and HTTP/1.1 are served", 0);
    access_log(c, mname, 505);
    return A_CLOSE;
  }

  /* Joining repeated headers appends to hbuf (hfind). Room for every
   * possible join is made now, so no lookup below can move the buffer
   * under pointers taken earlier (the fuzzer found two such bugs). */
  if (uvws__buf_reserve(&h->hbuf, h->hbuf.len + 2 * h->nhdrs + 64) != 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(c, 500, NULL, "out of memory", 0);
    return A_CLOSE;
  }
  fhost = uvws__http_hfind(h, "Host");
  fup = uvws__http_hfind(h, "Upgrade");
  fconn = uvws__http_hfind(h, "Connection");
  fkey = uvws__http_hfind(h, "Sec-WebSocket-Key");
  fver = uvws__http_hfind(h, "Sec-WebSocket-Version");
  fproto = uvws__http_hfind(h, "Sec-WebSocket-Protocol");
  fext = uvws__http_hfind(h, "Sec-WebSocket-Extensions");
  target = h->hbuf.base; /* hfind may have moved hbuf */
  memset(&req, 0, sizeof(req));
  req.is_get = method == HTTP_GET;
  req.http_major = p->http_major;
  req.http_minor = p->http_minor;
  req.host = uvws__http_hval(h, fhost);
  req.upgrade = uvws__http_hval(h, fup);
  req.connection = uvws__http_hval(h, fconn);
  req.key = uvws__http_hval(h, fkey);
  req.version = uvws__http_hval(h, fver);
  protocols = uvws__http_hval(h, fproto);
  extensions = uvws__http_hval(h, fext);

  plen = uvws__path_len(target, tlen);
  route = uvws__server_route(c->srv, target, plen);

  /* Behind a trusted proxy the client is the one the proxy names, for the
   * logs and for the per-address limit. */
  if (c->srv->ntrusted && (c->via_proxy || uvws__server_is_trusted(c->srv, c->addr))) {
    uint8_t client[16];
    /* Both lookups first: joining repeated headers may move hbuf. */
    hfind_t fxff = uvws__http_hfind(h, "X-Forwarded-For"), ffwd = uvws__http_hfind(h, "Forwarded");
    if (forwarded_client(c->srv, uvws__http_hval(h, fxff), uvws__http_hval(h, ffwd), client) &&
        memcmp(client, c->addr, 16) != 0) {
      if (uvws__conn_set_client(c, client) != 0) {
        h->keep_alive = 0;
        uvws__http_respond_text(c, 429, NULL, "too many connections from your address", head_only);
        access_log(c, mname, 429);
        return A_CLOSE;
      }
    }
    target = h->hbuf.base; /* hfind may have moved hbuf */
  }

  /* RFC 9112 section 3.2: an HTTP/1.1 request without exactly one Host
   * field is answered 400 (a joined value means there were several). */
  if (p->http_minor >= 1 && (!fhost.found || hfind_count(h, "Host") != 1)) {
    h->keep_alive = 0;
    uvws__http_respond_text(c, 400, NULL, fhost.found ? "more than one Host header" : "missing Host header", head_only);
    access_log(c, mname, 400);
    return A_CLOSE;
  }

  if (uvws__upgrade_wanted(&req)) {
    const char *why = NULL;
    int status;
    if (c->srv->shutting_down) {
      status = 503;
      why = "server is shutting down";
    } else if (route == NULL) {
      status = 404;
      why = "no WebSocket endpoint at this path";
    } else {
      status = uvws__upgrade_check(&req, &why);
      if (status == 0 && !origin_allowed(c->srv, uvws__http_hval(h, uvws__http_hfind(h, "Origin")))) {
        status = 403;
        why = "Origin not allowed";
      }
    }
    if (status == 0) {
      UVWS__ADD(c->srv->m.handshakes_ok, 1);
      return upgrade(c, route, &req, protocols, extensions, rest, rest_len);
    }
    UVWS__ADD(c->srv->m.handshakes_failed[status == 400 ? 0 : status == 403 ? 1 : status == 404 ? 2
                                          : status == 426 ? 3 : status == 503 ? 4 : 5], 1);
    /* A refused upgrade leaves the parser in its upgrade state and the
     * client expecting another protocol: answer, then end the connection. */
    h->keep_alive = 0;
    uvws__http_respond_text(c, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, why, 0);
    if (c->srv->opts.log_json)
      uvws__log(UVWS_LOG_INFO, "{\"event\":\"upgrade_refused\",\"peer\":\"%s\",\"status\":%d,\"reason\":\"%s\"}",
                c->peer, status, why);
    else
      uvws__log(UVWS_LOG_INFO, "http %s upgrade refused %d: %s", c->peer, status, why);
    access_log(c, mname, status);
    return A_CLOSE;
  }

  if (builtin(c, target, plen, method)) {
    a = A_CONTINUE;
  } else if (route != NULL) {
    uvws__http_respond_text(c, 426, "Upgrade: websocket\r\n", "this is a WebSocket endpoint", head_only);
    a = A_CONTINUE;
  } else if (method != HTTP_GET && method != HTTP_HEAD) {
    uvws__http_respond_text(c, 405, "Allow: GET, HEAD\r\n", NULL, 0);
    a = A_CONTINUE;
  } else {
    a = uvws__http_serve_file(c, target, tlen, head_only);
  }
  if (c->state != UVWS__CONN_HTTP) return A_CLOSE;
  access_log(c, mname, h->status);
  if (a == A_CONTINUE && !h->keep_alive) a = A_CLOSE;
  return a;
}

/* ---- feeding --------------------------------------------------------------------- */

static void end_of_response(uvws_conn_t *c, action_t a, char *rest, size_t rest_len);

void uvws__http_feed(uvws_conn_t *c, char *data, size_t len) {
  uvws__http_t *h = c->http;

  if (h->responding) { /* reading is paused while responding; keep what came anyway */
    if (uvws__buf_append(&h->pending, data, len) != 0) uvws__conn_abort(c, "out of memory");
    return;
  }
  while (c->state == UVWS__CONN_HTTP) {
    llhttp_errno_t err = llhttp_execute(&h->parser, data, len);
    const char *pos;
    action_t a;

    if (err == HPE_OK) return;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      pos = llhttp_get_error_pos(&h->parser);
      len -= (size_t)(pos - data);
      data = (char *)(uintptr_t)pos;
      a = handle_request(c, data, len);
      if (a == A_UPGRADED) return;
      if (a == A_CONTINUE) {
        if (err == HPE_PAUSED) llhttp_resume(&h->parser);
        else llhttp_resume_after_upgrade(&h->parser);
        c->deadline = uv_now(c->srv->loop) + c->srv->opts.keepalive_timeout_ms;
        if (len == 0) return;
        continue;
      }
      end_of_response(c, a, data, len);
      return;
    }
    {
      int status = h->error_status                                        ? h->error_status
                   : (err == HPE_INVALID_VERSION || err == HPE_PAUSED_H2_UPGRADE) ? 505
                                                                                  : 400;
      const char *why = llhttp_get_error_reason(&h->parser);
      uvws__log(UVWS_LOG_INFO, "http %s %d: %s (%s)", c->peer, status, why ? why : "bad request",
                llhttp_errno_name(err));
      h->keep_alive = 0;
      uvws__http_respond_text(c, status, NULL, status == 400 ? "malformed request" : NULL, 0);
      uvws__conn_finish(c);
      return;
    }
  }
}

static void end_of_response(uvws_conn_t *c, action_t a, char *rest, size_t rest_len) {
  uvws__http_t *h = c->http;
  if (a == A_CLOSE) {
    uvws__conn_finish(c);
    return;
  }
  /* A_WAIT: a body streams; hold the next requests until it is done. */
  if (rest_len && uvws__buf_append(&h->pending, rest, rest_len) != 0) {
    uvws__conn_abort(c, "out of memory");
    return;
  }
  uvws__conn_update_reading(c);
}

/* The send queue drained a little: continue a file body, and once it is
 * complete go on with the requests that waited. */
void uvws__http_writable(uvws_conn_t *c) {
  uvws__http_t *h = c->http;
  uvws__buf_t pending;
  int r;

  if (!h->responding || c->state != UVWS__CONN_HTTP) return;
  c->deadline = uv_now(c->srv->loop) + c->srv->opts.handshake_timeout_ms;
  r = uvws__http_pump_file(c);
  if (r <= 0) return;
  if (!h->keep_alive || c->srv->shutting_down) {
    uvws__conn_finish(c);
    return;
  }
  c->deadline = uv_now(c->srv->loop) + c->srv->opts.keepalive_timeout_ms;
  llhttp_resume(&h->parser);
  pending = h->pending;
  memset(&h->pending, 0, sizeof(h->pending));
  if (pending.len) {
    int corked = uvws__conn_cork(c);
    uvws__http_feed(c, uvws__buf_data(&pending), pending.len);
    if (corked) uvws__conn_uncork(c);
  }
  uvws__buf_free(&pending);
  uvws__conn_update_reading(c);
}

void uvws__http_timeout(uvws_conn_t *c) {
  uvws__http_t *h = c->http;
  if (h->in_message) {
    uvws__log(UVWS_LOG_INFO, "http %s: request not complete in time", c->peer);
    h->keep_alive = 0;
    uvws__http_respond_text(c, 408, NULL, NULL, 0);
    uvws__conn_finish(c);
  } else if (h->responding) {
    uvws__conn_abort(c, "response stalled");
  } else {
    if (c->tls && !c->tls->established)
      uvws__log(UVWS_LOG_INFO, "tls %s: handshake not complete in time", c->peer);
    else if (!h->keep_alive && h->status == 0)
      uvws__log(UVWS_LOG_INFO, "http %s: no request in time", c->peer);
    uvws__conn_finish(c); /* idle keep-alive connection */
  }
}

int uvws__http_busy(const uvws_conn_t *c) { return c->http->responding; }

void uvws__http_reject(uvws_conn_t *c, int status, const char *why) {
  UVWS__ADD(c->srv->m.conns_rejected, 1);
  c->http->keep_alive = 0;
  uvws__http_respond_text(c, status, status == 503 ? "Retry-After: 1\r\n" : NULL, why, 0);
  uvws__conn_finish(c);
}

int uvws__http_init(uvws_conn_t *c) {
  uvws__http_t *h = calloc(1, sizeof(*h));
  if (h == NULL) return UV_ENOMEM;
  llhttp_init(&h->parser, HTTP_REQUEST, &settings);
  h->parser.data = c;
  h->fd = -1;
  c->http = h;
  return 0;
}

void uvws__http_free(uvws_conn_t *c) {
  uvws__http_t *h = c->http;
  if (h == NULL) return;
  uvws__http_close_file(h);
  uvws__buf_free(&h->hbuf);
  uvws__buf_free(&h->pending);
  free(h);
  c->http = NULL;
}

/* ---- the upgrade request, for on_open --------------------------------------- */

const char *uvws_conn_request_target(const uvws_conn_t *c, size_t *len) {
  if (c->http == NULL || c->http->resp_head == NULL) return NULL;
  *len = c->http->url_len;
  return c->http->hbuf.base;
}

int uvws_conn_request_header_at(const uvws_conn_t *c, size_t index, const char **name,
                                size_t *name_len, const char **value, size_t *value_len) {
  const uvws__http_t *h = c->http;
  const hdr_t *hd;
  if (h == NULL || h->resp_head == NULL || index >= h->nhdrs) return UV_ENOENT;
  hd = &h->hdrs[index];
  *name = h->hbuf.base + hd->name_off;
  *name_len = hd->name_len;
  *value = h->hbuf.base + hd->val_off;
  *value_len = hd->val_len;
  return 0;
}

const char *uvws_conn_response_head(const uvws_conn_t *c) {
  return c->http ? c->http->resp_head : NULL;
}

/* HTTP responses: heads built in the loop's growable scratch buffer (any
 * Location or header length fits; only a failed allocation does not, and
 * that becomes a 500 that closes), the access log, and the built-ins
 * /metrics, /healthz and /routes.json. */
#include "http/http_int.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *uvws__http_status_text(int status) {
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

int uvws__http_put(uvws__buf_t *b, const char *fmt, ...) {
  va_list ap;
  size_t room = b->cap - b->off - b->len;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(b->base ? uvws__buf_tail(b) : NULL, b->base ? room : 0, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  if ((size_t)n >= room) { /* did not fit: grow, then format again */
    if (uvws__buf_reserve(b, (size_t)n + 1) != 0) return -1;
    va_start(ap, fmt);
    n = vsnprintf(uvws__buf_tail(b), (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
  }
  b->len += (size_t)n;
  return 0;
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

void uvws__http_access_log(uvws__http_t *h, const char *method, int status) {
  int ulen = (int)(h->url_len > 200 ? 200 : h->url_len);
  UVWS__ADD(h->env->m->http_requests, 1);
  if (uvws__log_level < UVWS_LOG_INFO) return;
  if (h->env->opts->log_json) {
    char target[7 * 200 + 1];
    json_escape(target, sizeof(target), h->hbuf.base ? h->hbuf.base : "", (size_t)ulen);
    uvws__log_write(UVWS_LOG_INFO,
                    "{\"event\":\"http\",\"peer\":\"%s\",\"method\":\"%s\",\"target\":\"%s\","
                    "\"version\":\"%d.%d\",\"status\":%d,\"bytes\":%llu}",
                    h->s->peer, method, target, h->parser.http_major, h->parser.http_minor, status,
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
    uvws__log_write(UVWS_LOG_INFO, "http %s \"%s %s HTTP/%d.%d\" %d %llu", h->s->peer, method, target,
                    h->parser.http_major, h->parser.http_minor, status, (unsigned long long)h->body_bytes);
  }
}

/* What goes out when a head cannot be built: fixed bytes, no formatting. */
static const char fallback_500[] =
    "HTTP/1.1 500 Internal Server Error\r\n"
    "Server: uvws/" UVWS_VERSION_STRING "\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 40\r\n"
    "Connection: close\r\n"
    "\r\n"
    "500 Internal Server Error: out of memory\n";

/* Queues a complete response head (and a small body). `extra` holds whole
 * header lines, each ending in CRLF. */
int uvws__http_respond(uvws__http_t *h, int status, const char *extra, const char *ctype,
                       const char *body, size_t body_len, uint64_t content_length, int head_only) {
  uvws__http_env_t *env = h->env;
  uvws__buf_t *b = &env->head;
  uv_buf_t v[2];
  int r;

  b->off = b->len = 0;
  r = uvws__http_put(b, "HTTP/1.1 %d %s\r\nServer: uvws/" UVWS_VERSION_STRING "\r\nDate: %s\r\n", status,
                     uvws__http_status_text(status), uvws__httpdate_now(&env->date));
  if (r == 0 && ctype) r = uvws__http_put(b, "Content-Type: %s\r\n", ctype);
  if (r == 0 && status != 304)
    r = uvws__http_put(b, "Content-Length: %llu\r\n", (unsigned long long)content_length);
  if (r == 0)
    r = uvws__http_put(b, "Connection: %s\r\n%s\r\n", h->keep_alive ? "keep-alive" : "close", extra ? extra : "");
  if (r != 0) {
    uvws__log(UVWS_LOG_ERROR, "http %s: out of memory building a %d response; answering 500", h->s->peer, status);
    h->keep_alive = 0;
    h->status = 500;
    UVWS__ADD(env->m->http_status[5], 1);
    v[0] = uv_buf_init((char *)(uintptr_t)fallback_500, sizeof(fallback_500) - 1);
    return uvws__stream_write(h->s, v, 1);
  }
  h->status = status;
  UVWS__ADD(env->m->http_status[status / 100 < 6 ? status / 100 : 5], 1);
  v[0] = uv_buf_init(uvws__buf_data(b), (unsigned)b->len);
  v[1] = uv_buf_init((char *)(uintptr_t)body, (unsigned)body_len);
  if (!head_only) h->body_bytes += body_len;
  r = uvws__stream_write(h->s, v, (body_len && !head_only) ? 2 : 1);
  /* One burst (a huge Location) should not keep the scratch big. */
  if (b->cap > 64 * 1024) uvws__buf_free(b);
  return r;
}

/* A short text answer; `why` becomes the one-line body (cut at 255 bytes:
 * it is a static reason, never the client's input). */
int uvws__http_respond_text(uvws__http_t *h, int status, const char *extra, const char *why,
                            int head_only) {
  char body[256];
  int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status, uvws__http_status_text(status),
                   why ? ": " : "", why ? why : "");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof(body)) n = sizeof(body) - 1;
  return uvws__http_respond(h, status, extra, "text/plain; charset=utf-8", body, (size_t)n, (uint64_t)n,
                            head_only);
}

/* 1 if route a sorts before route b (bytewise, a prefix first). */
static int route_before(const uvws__route_t *a, const uvws__route_t *b) {
  size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;
  int c = memcmp(a->path, b->path, n);
  return c < 0 || (c == 0 && a->path_len < b->path_len);
}

/* One path as a JSON string into `p` (room reserved by the caller: 6 bytes
 * a byte, plus the quotes); returns the bytes written. Bytes from 0x80 up
 * pass as they are (paths are UTF-8). */
static size_t json_string(char *p, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, o = 0;
  p[o++] = '"';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      p[o++] = '\\';
      p[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(p + o, "\\u00", 4);
      p[o + 4] = hex[c >> 4];
      p[o + 5] = hex[c & 15];
      o += 6;
    } else {
      p[o++] = (char)c;
    }
  }
  p[o++] = '"';
  return o;
}

/* {"routes":[...]} with the WebSocket routes sorted, into `out` (empty).
 * The worst case is reserved first, so the only failure is that one
 * allocation: 0 or UV_ENOMEM. Sorted by selection (the next greater path
 * each pass): route tables are short and this needs no second array. */
int uvws__http_routes_json(const uvws__route_t *routes, size_t n, uvws__buf_t *out) {
  static const char open[] = "{\"routes\":[", close[] = "]}\n";
  const uvws__route_t *last = NULL;
  size_t need = sizeof(open) + sizeof(close), i, k;
  int r;
  for (i = 0; i < n; i++) {
    if (routes[i].path_len > ((size_t)-1 / 2 - need) / 6 - 3) return UV_ENOMEM;
    need += routes[i].path_len * 6 + 3;
  }
  if ((r = uvws__buf_reserve(out, need)) != 0) return r;
  memcpy(uvws__buf_tail(out), open, sizeof(open) - 1);
  out->len += sizeof(open) - 1;
  for (k = 0; k < n; k++) {
    const uvws__route_t *next = NULL;
    for (i = 0; i < n; i++)
      if ((last == NULL || route_before(last, &routes[i])) && (next == NULL || route_before(&routes[i], next)))
        next = &routes[i];
    if (next == NULL) break; /* only duplicates left (the server refuses them) */
    if (last != NULL) {
      uvws__buf_tail(out)[0] = ',';
      out->len++;
    }
    out->len += json_string(uvws__buf_tail(out), next->path, next->path_len);
    last = next;
  }
  memcpy(uvws__buf_tail(out), close, sizeof(close) - 1);
  out->len += sizeof(close) - 1;
  return 0;
}

/* A body made in memory; an empty `body` (nothing fitted) becomes a 500
 * that closes. Frees `body`. */
static void respond_built(uvws__http_t *h, const char *extra, const char *ctype, uvws__buf_t *body,
                          int head_only) {
  if (body->len == 0 && body->cap == 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(h, 500, NULL, "out of memory", 0);
    return;
  }
  uvws__http_respond(h, 200, extra, ctype, uvws__buf_data(body), body->len, body->len, head_only);
  uvws__buf_free(body);
}

/* GET /metrics, /healthz and /routes.json, answered before routes and files. */
int uvws__http_builtin(uvws__http_t *h, const char *path, size_t plen, int method) {
  uvws__http_env_t *env = h->env;
  uvws__buf_t body = {NULL, 0, 0, 0};
  if (!env->opts->metrics || (method != HTTP_GET && method != HTTP_HEAD)) return 0;
  if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
    if (env->state(env->ctx) != UVWS__HTTP_SERVING)
      uvws__http_respond_text(h, 503, NULL, "shutting down", method == HTTP_HEAD);
    else
      uvws__http_respond(h, 200, NULL, "text/plain; charset=utf-8", "ok\n", 3, 3, method == HTTP_HEAD);
    return 1;
  }
  if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
    env->metrics(env->ctx, &body);
    respond_built(h, NULL, "text/plain; version=0.0.4; charset=utf-8", &body, method == HTTP_HEAD);
    return 1;
  }
  if (plen == 12 && memcmp(path, "/routes.json", 12) == 0) {
    const uvws__route_t *table = NULL;
    size_t n = env->routes(env->ctx, &table);
    if (uvws__http_routes_json(table, n, &body) != 0) {
      uvws__log(UVWS_LOG_ERROR, "http %s: out of memory building /routes.json; answering 500", h->s->peer);
      uvws__buf_free(&body);
    }
    respond_built(h, "Cache-Control: no-store\r\n", "application/json", &body, method == HTTP_HEAD);
    return 1;
  }
  return 0;
}

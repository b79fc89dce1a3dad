/* The WebSocket upgrade, once the request passed the checks: the
 * subprotocol and permessage-deflate are negotiated, the 101 is sent, and
 * the stream goes to a WebSocket session (through the runtime's
 * env->upgrade) with a view of the request for the route's on_open. Also
 * the checks that need the server's configuration: Origin, and the client
 * a trusted proxy names. */
#include "http/http_int.h"
#include "util/log.h"

#include <string.h>
#include <strings.h>

/* The route's on_upgrade: 0 to accept, or the HTTP status to answer
 * (400-599; a handler's other values become 500, logged). */
static int decide(uvws_upgrade_t *up) {
  int status;
  if (up->route->h.on_upgrade == NULL) return 0;
  status = up->route->h.on_upgrade(up);
  if (status == 0 || (status >= 400 && status <= 599)) return status;
  uvws__log(UVWS_LOG_ERROR, "ws %s %s: on_upgrade returned %d, not 0 or 400-599; answering 500", up->peer,
            up->route->path, status);
  return 500;
}

/* An accepted upgrade that will not open: what the route took while
 * deciding goes back to it. */
static action_t abandon(uvws_upgrade_t *up) {
  if (up->release) up->release(up->data);
  return A_CLOSE;
}

action_t uvws__http_upgrade(uvws__http_t *h, const uvws__route_t *route, const uvws__upgrade_req_t *req,
                            uvws__hval_t protocols, uvws__hval_t extensions, char *rest, size_t rest_len) {
  uvws__http_env_t *env = h->env;
  uvws__stream_t *s = h->s;
  char accept[UVWS__ACCEPT_LEN + 1], ext[160];
  const char *proto = NULL;
  uvws__pmd_params_t pmd;
  uvws__header_t hv[MAX_HEADERS];
  uvws_upgrade_t up;
  uvws__ws_open_t o;
  uvws__buf_t *b = &env->head;
  int deflate = 0, r, status;
  unsigned i;
  uv_buf_t v;

  if (uvws__accept_key(req->key.p, req->key.len, accept, NULL) != 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(h, 500, NULL, "cannot compute Sec-WebSocket-Accept", 0);
    uvws__http_access_log(h, "GET", 500);
    return A_CLOSE;
  }
  if (route->subprotocols)
    proto = uvws__select_subprotocol(protocols.p, protocols.len, (const char *const *)route->subprotocols);
  for (i = 0; i < h->nhdrs; i++) {
    hv[i].name = h->hbuf.base + h->hdrs[i].name_off;
    hv[i].name_len = h->hdrs[i].name_len;
    hv[i].value = h->hbuf.base + h->hdrs[i].val_off;
    hv[i].value_len = h->hdrs[i].val_len;
  }
  up.route = route;
  up.server = env->server;
  up.target = h->hbuf.base + h->target_off;
  up.target_len = h->target_len;
  up.headers = hv;
  up.nheaders = h->nhdrs;
  up.peer = s->peer;
  up.protocol = proto;
  up.secure = s->secure;
  up.no_deflate = 0;
  up.data = NULL;
  up.release = NULL;
  up.extra_len = 0;
  up.extra[0] = '\0';
  status = decide(&up);
  if (status != 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(h, status, up.extra, "the route refused the upgrade", 0);
    uvws__http_access_log(h, "GET", status);
    return A_CLOSE;
  }

  if (env->pmd && !up.no_deflate)
    deflate = uvws__pmd_negotiate(env->pmd, extensions.p, extensions.len, &pmd, ext, sizeof(ext));
  b->off = b->len = 0;
  r = uvws__http_put(b,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n",
                     accept);
  if (r == 0 && proto) r = uvws__http_put(b, "Sec-WebSocket-Protocol: %s\r\n", proto);
  if (r == 0 && deflate) r = uvws__http_put(b, "Sec-WebSocket-Extensions: %s\r\n", ext);
  if (r == 0) r = uvws__http_put(b, "%s\r\n", up.extra);
  /* The head is read again by on_open (uvws_conn_response_head): NUL-terminated. */
  if (r == 0) r = uvws__buf_reserve(b, 1);
  if (r != 0) {
    uvws__log(UVWS_LOG_ERROR, "http %s: out of memory building the 101; answering 500", s->peer);
    h->keep_alive = 0;
    uvws__http_respond_text(h, 500, NULL, "out of memory", 0);
    uvws__http_access_log(h, "GET", 500);
    return abandon(&up);
  }
  uvws__buf_data(b)[b->len] = '\0';
  h->status = 101;
  UVWS__ADD(env->m->http_status[1], 1);
  uvws__http_access_log(h, "GET", 101);
  v = uv_buf_init(uvws__buf_data(b), (unsigned)b->len);
  if (uvws__stream_write(s, &v, 1) != 0) return abandon(&up);

  memset(&o, 0, sizeof(o));
  o.route = route;
  o.protocol = proto;
  o.pmd = deflate ? &pmd : NULL;
  o.extensions = deflate ? ext : NULL;
  o.target = up.target;
  o.target_len = up.target_len;
  o.headers = hv;
  o.nheaders = h->nhdrs;
  o.response_head = uvws__buf_data(b);
  o.data = up.data;
  /* From here the stream is the WebSocket session's: reading resumes
   * whatever this session had paused, and the session goes. The head
   * scratch is not touched again until on_open returns (the WebSocket
   * layer writes no HTTP). */
  s->ops->pause(s, 0);
  s->deadline = 0;
  if (env->upgrade(env->ctx, s, &o, rest, rest_len) != 0) return abandon(&up); /* still ours: closing */
  uvws__http_free(h);
  return A_UPGRADED;
}

/* The client behind a trusted proxy: the rightmost address of
 * X-Forwarded-For (or the for= of Forwarded) that is not itself a trusted
 * proxy. Anything unparsable ends the walk: the proxy's word is taken only
 * as far as it is well-formed. Returns 1 and fills `addr` if found. */
int uvws__http_forwarded_client(const uvws__http_t *h, uvws__hval_t xff, uvws__hval_t fwd, uint8_t addr[16]) {
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
    if (!uvws__net_is_trusted(h->env->net, ip)) break;
    end = start > 0 ? start - 1 : 0;
  }
  return found;
}

/* --allow-origin: exact, case-insensitive matches in a comma list; "*"
 * allows any. Requests without Origin (non-browser clients) pass: the
 * check exists to stop other sites' pages, which always send one. */
int uvws__http_origin_allowed(const uvws__http_t *h, uvws__hval_t origin) {
  const char *list = h->env->opts->allow_origin;
  char token[256];
  if (list == NULL || origin.p == NULL) return 1;
  if (origin.len >= sizeof(token)) return 0;
  memcpy(token, origin.p, origin.len);
  token[origin.len] = '\0';
  return uvws__list_has_token(list, strlen(list), "*") || uvws__list_has_token(list, strlen(list), token);
}

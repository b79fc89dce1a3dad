/* The HTTP session on a stream: llhttp collects each request, one request
 * is handled at a time, and the session keeps to the stream's pace: while
 * a file body streams, or while the peer has not read what was answered
 * (the queue above the low-water mark), the rest of the input waits in
 * `pending`, reading pauses, and parsing resumes at on_writable. A client
 * that pipelines without reading therefore holds at most one read of
 * input and the queue's low mark plus one response of output. */
#include "http/http_int.h"
#include "proto/path.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- llhttp callbacks: collect the request ------------------------------ */

static uvws__http_t *http_of(llhttp_t *p) { return p->data; }

static int count_head(llhttp_t *p, size_t n) {
  uvws__http_t *h = http_of(p);
  h->head_bytes += n;
  if (h->head_bytes > h->env->opts->max_header_bytes) {
    h->error_status = 431;
    llhttp_set_error_reason(p, "request header fields too large");
    return HPE_USER;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  uvws__http_t *h = http_of(p);
  h->hbuf.off = h->hbuf.len = 0;
  h->nhdrs = 0;
  h->url_len = 0;
  h->head_bytes = 16; /* method, spaces, version, CRLF */
  h->last_cb = 0;
  h->in_message = 1;
  h->status = 0;
  h->body_bytes = 0;
  h->s->deadline = uv_now(h->s->loop) + h->env->opts->handshake_timeout_ms;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  uvws__http_t *h = http_of(p);
  if (h->url_len + n > h->env->opts->max_url) {
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

static int name_is(const uvws__http_t *h, const hdr_t *hd, const char *name, size_t nlen) {
  return hd->name_len == nlen && strncasecmp(h->hbuf.base + hd->name_off, name, nlen) == 0;
}

hfind_t uvws__http_hfind(uvws__http_t *h, const char *name) {
  hfind_t r = {0, 0, 0};
  size_t nlen = strlen(name), joined_off = 0;
  unsigned i, count = 0;

  for (i = 0; i < h->nhdrs; i++) {
    const hdr_t *hd = &h->hdrs[i];
    size_t off = hd->val_off, len = hd->val_len;
    if (!name_is(h, hd, name, nlen)) continue;
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

unsigned uvws__http_hcount(const uvws__http_t *h, const char *name) {
  size_t nlen = strlen(name);
  unsigned i, count = 0;
  for (i = 0; i < h->nhdrs; i++) count += (unsigned)name_is(h, &h->hdrs[i], name, nlen);
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

/* ---- one request --------------------------------------------------------------- */

/* RFC 9112 section 3.2: the origin form is "/path?query"; a server MUST
 * also accept the absolute form "http://host/path?query" (what proxies
 * are sent), whose path and query are the target. Sets target_off/len. */
static int locate_target(uvws__http_t *h) {
  const char *u = h->hbuf.base;
  size_t n = h->url_len, i, a;
  h->target_off = 0;
  h->target_len = (uint32_t)n;
  if (n == 0 || u[0] == '/') return 0;
  for (i = 0; i < n && i < 8 && u[i] != ':'; i++) {
  }
  if (!((i == 4 && strncasecmp(u, "http", 4) == 0) || (i == 5 && strncasecmp(u, "https", 5) == 0)) ||
      i + 2 >= n || u[i + 1] != '/' || u[i + 2] != '/')
    return 0; /* "*" or garbage: the checks that follow answer it */
  for (a = i + 3; a < n && u[a] != '/' && u[a] != '?' && u[a] != '#'; a++) {
  }
  if (a < n && u[a] == '/') {
    h->target_off = (uint32_t)a;
    h->target_len = (uint32_t)(n - a);
    return 0;
  }
  /* An empty path means "/": the target is rebuilt behind the request. */
  h->target_off = (uint32_t)h->hbuf.len;
  if (uvws__buf_append(&h->hbuf, "/", 1) != 0 || append_own(&h->hbuf, a, n - a) != 0) return -1;
  h->target_len = (uint32_t)(1 + n - a);
  return 0;
}

static action_t answer(uvws__http_t *h, const char *mname, int status, const char *extra,
                       const char *why, int head_only) {
  h->keep_alive = 0;
  uvws__http_respond_text(h, status, extra, why, head_only);
  uvws__http_access_log(h, mname, status);
  return A_CLOSE;
}

static action_t handle_request(uvws__http_t *h, char *rest, size_t rest_len) {
  uvws__http_env_t *env = h->env;
  llhttp_t *p = &h->parser;
  int method = llhttp_get_method(p);
  const char *mname = llhttp_method_name((llhttp_method_t)method);
  const char *target;
  size_t tlen, plen;
  const uvws__route_t *route;
  uvws__upgrade_req_t req;
  hfind_t fhost, fup, fconn, fkey, fver, fproto, fext;
  uvws__hval_t protocols, extensions;
  int head_only = method == HTTP_HEAD, state = env->state(env->ctx);
  action_t a;

  h->keep_alive = (uint8_t)llhttp_should_keep_alive(p) && state != UVWS__HTTP_SHUTTING_DOWN;
  if (p->http_major != 1)
    return answer(h, mname, 505, NULL, "only HTTP/1.0 and HTTP/1.1 are served", 0);

  /* Joining repeated headers appends to hbuf (hfind). Room for every
   * possible join is made now, so no lookup below can move the buffer
   * under pointers taken earlier (the fuzzer found two such bugs). */
  if (locate_target(h) != 0 || uvws__buf_reserve(&h->hbuf, h->hbuf.len + 2 * h->nhdrs + 64) != 0)
    return answer(h, mname, 500, NULL, "out of memory", 0);
  fhost = uvws__http_hfind(h, "Host");
  fup = uvws__http_hfind(h, "Upgrade");
  fconn = uvws__http_hfind(h, "Connection");
  fkey = uvws__http_hfind(h, "Sec-WebSocket-Key");
  fver = uvws__http_hfind(h, "Sec-WebSocket-Version");
  fproto = uvws__http_hfind(h, "Sec-WebSocket-Protocol");
  fext = uvws__http_hfind(h, "Sec-WebSocket-Extensions");
  memset(&req, 0, sizeof(req));
  req.is_get = method == HTTP_GET;
  req.http_major = p->http_major;
  req.http_minor = p->http_minor;

  /* Behind a trusted proxy the client is the one the proxy names, for the
   * logs and for the per-address limit. */
  if (env->net->ntrusted && (h->s->via_proxy || uvws__net_is_trusted(env->net, h->s->addr))) {
    uint8_t client[16];
    /* Both lookups first: joining repeated headers may move hbuf. */
    hfind_t fxff = uvws__http_hfind(h, "X-Forwarded-For"), ffwd = uvws__http_hfind(h, "Forwarded");
    if (uvws__http_forwarded_client(h, uvws__http_hval(h, fxff), uvws__http_hval(h, ffwd), client) &&
        memcmp(client, h->s->addr, 16) != 0 && h->s->ops->set_client(h->s, client) != 0)
      return answer(h, mname, 429, NULL, "too many connections from your address", head_only);
  }
  /* hfind may have moved hbuf: pointers only from here on. */
  target = h->hbuf.base + h->target_off;
  tlen = h->target_len;
  req.host = uvws__http_hval(h, fhost);
  req.upgrade = uvws__http_hval(h, fup);
  req.connection = uvws__http_hval(h, fconn);
  req.key = uvws__http_hval(h, fkey);
  req.version = uvws__http_hval(h, fver);
  protocols = uvws__http_hval(h, fproto);
  extensions = uvws__http_hval(h, fext);
  plen = uvws__path_len(target, tlen);
  route = env->route(env->ctx, target, plen);

  /* RFC 9112 section 3.2: an HTTP/1.1 request without exactly one Host
   * field is answered 400. */
  if (p->http_minor >= 1 && (!fhost.found || uvws__http_hcount(h, "Host") != 1))
    return answer(h, mname, 400, NULL, fhost.found ? "more than one Host header" : "missing Host header",
                  head_only);

  if (uvws__upgrade_wanted(&req)) {
    const char *why = NULL;
    int status;
    if (state == UVWS__HTTP_SHUTTING_DOWN) {
      status = 503;
      why = "server is shutting down";
    } else if (route == NULL) {
      status = 404;
      why = "no WebSocket endpoint at this path";
    } else {
      status = uvws__upgrade_check(&req, &why);
      if (status == 0 && !uvws__http_origin_allowed(h, uvws__http_hval(h, uvws__http_hfind(h, "Origin")))) {
        status = 403;
        why = "Origin not allowed";
      }
    }
    if (status == 0) {
      UVWS__ADD(env->m->handshakes_ok, 1);
      return uvws__http_upgrade(h, route, &req, protocols, extensions, rest, rest_len);
    }
    UVWS__ADD(env->m->handshakes_failed[status == 400 ? 0 : status == 403 ? 1 : status == 404 ? 2
                                        : status == 426 ? 3 : status == 503 ? 4 : 5], 1);
    if (env->opts->log_json)
      uvws__log(UVWS_LOG_INFO, "{\"event\":\"upgrade_refused\",\"peer\":\"%s\",\"status\":%d,\"reason\":\"%s\"}",
                h->s->peer, status, why);
    else
      uvws__log(UVWS_LOG_INFO, "http %s upgrade refused %d: %s", h->s->peer, status, why);
    /* A refused upgrade leaves the parser in its upgrade state and the
     * client expecting another protocol: answer, then end the connection. */
    return answer(h, mname, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, why, 0);
  }

  if (uvws__http_builtin(h, target, plen, method)) {
    a = A_CONTINUE;
  } else if (route != NULL) {
    uvws__http_respond_text(h, 426, "Upgrade: websocket\r\n", "this is a WebSocket endpoint", head_only);
    a = A_CONTINUE;
  } else if (method != HTTP_GET && method != HTTP_HEAD) {
    uvws__http_respond_text(h, 405, "Allow: GET, HEAD\r\n", NULL, 0);
    a = A_CONTINUE;
  } else {
    a = uvws__http_serve_file(h, target, tlen, head_only);
  }
  if (h->s->closing) return A_CLOSE;
  uvws__http_access_log(h, mname, h->status);
  if (a == A_CONTINUE && !h->keep_alive) a = A_CLOSE;
  return a;
}

/* ---- feeding --------------------------------------------------------------------- */

/* Input that must wait; reading is paused while any waits, so this holds
 * at most what one read delivered. */
static int hold(uvws__http_t *h, const char *data, size_t len) {
  uvws__buf_t *b = h->parsing;
  if (b && h->pending.len == 0 && data >= uvws__buf_data(b) && data + len == uvws__buf_tail(b)) {
    /* The rest of the input being parsed again: kept where it is, not
     * copied (a deep pipeline would be copied once per turn). */
    uvws__buf_consume(b, (size_t)(data - uvws__buf_data(b)));
    h->pending = *b;
    memset(b, 0, sizeof(*b));
  } else if (len && uvws__buf_append(&h->pending, data, len) != 0) {
    uvws__log(UVWS_LOG_ERROR, "http %s: out of memory holding %zu bytes of input", h->s->peer, len);
    uvws__stream_close(h->s, "out of memory");
    return -1;
  }
  h->s->ops->pause(h->s, 1);
  return 0;
}

/* Requests answered in one turn. A client that pipelines thousands in one
 * read gets them answered in turns, each after the other connections had
 * theirs (defer), so nobody waits behind it. */
#define TURN_REQUESTS 64

/* Parses and answers requests from `data`. Returns 1 if the session is
 * gone (the stream went to a WebSocket session), else 0. */
static int parse(uvws__http_t *h, char *data, size_t len) {
  uvws__stream_t *s = h->s;
  unsigned answered = 0;
  while (!s->closing && !s->finishing) {
    llhttp_errno_t err = llhttp_execute(&h->parser, data, len);
    const char *pos;
    action_t a;

    if (err == HPE_OK) return 0;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      pos = llhttp_get_error_pos(&h->parser);
      len -= (size_t)(pos - data);
      data = (char *)(uintptr_t)pos;
      a = handle_request(h, data, len);
      if (a == A_UPGRADED) return 1;
      if (a == A_CLOSE) {
        uvws__stream_finish(s);
        return 0;
      }
      if (a == A_WAIT) { /* a file body streams: the next requests wait */
        h->parser_paused = 1;
        s->deadline = uv_now(s->loop) + h->env->opts->handshake_timeout_ms;
        hold(h, data, len);
        return 0;
      }
      if (err == HPE_PAUSED) llhttp_resume(&h->parser);
      else llhttp_resume_after_upgrade(&h->parser);
      if (uvws__stream_queued(s) > UVWS__QUEUE_LOW) {
        /* The peer has not read what we answered: no more answers until it
         * does. It gets handshake_timeout_ms for each step of progress. */
        h->waiting = 1;
        s->deadline = uv_now(s->loop) + h->env->opts->handshake_timeout_ms;
        s->ops->want_writable(s);
        hold(h, data, len);
        return 0;
      }
      s->deadline = uv_now(s->loop) + h->env->opts->keepalive_timeout_ms;
      if (len == 0) return 0;
      if (++answered == TURN_REQUESTS) {
        h->waiting = h->deferred = 1;
        s->ops->defer(s);
        hold(h, data, len);
        return 0;
      }
      continue;
    }
    {
      int status = h->error_status                                                  ? h->error_status
                   : (err == HPE_INVALID_VERSION || err == HPE_PAUSED_H2_UPGRADE) ? 505
                                                                                  : 400;
      const char *why = llhttp_get_error_reason(&h->parser);
      uvws__log(UVWS_LOG_INFO, "http %s %d: %s (%s)", s->peer, status, why ? why : "bad request",
                llhttp_errno_name(err));
      h->keep_alive = 0;
      uvws__http_respond_text(h, status, NULL, status == 400 ? "malformed request" : NULL, 0);
      uvws__stream_finish(s);
      return 0;
    }
  }
  return 0;
}

static void on_data(uvws__stream_t *s, char *data, size_t len) {
  uvws__http_t *h = s->upper;
  if (h->responding || h->waiting || h->pending.len) { /* paused; keep what came anyway */
    hold(h, data, len);
    return;
  }
  parse(h, data, len);
}

/* The peer read some of what we answered: go on with the file body, then
 * with the requests that waited. */
static void on_writable(uvws__stream_t *s) {
  uvws__http_t *h = s->upper;
  uvws__buf_t pending;
  int r, gone = 0;

  if (s->closing || s->finishing) return;
  h->deferred = 0;
  if (h->responding) {
    s->deadline = uv_now(s->loop) + h->env->opts->handshake_timeout_ms;
    r = uvws__http_pump_file(h);
    if (r <= 0) return;
    if (!h->keep_alive) {
      uvws__stream_finish(s);
      return;
    }
  } else if (!h->waiting) {
    return;
  }
  if (h->parser_paused) {
    llhttp_resume(&h->parser);
    h->parser_paused = 0;
  }
  /* The answers to what waited may fill the queue again; if the kernel
   * takes them at once no write completes to say so, hence the loop. */
  do {
    h->waiting = 0;
    s->deadline = uv_now(s->loop) + h->env->opts->keepalive_timeout_ms;
    pending = h->pending;
    memset(&h->pending, 0, sizeof(h->pending));
    if (pending.len) {
      int corked = s->ops->cork(s);
      h->parsing = &pending;
      gone = parse(h, uvws__buf_data(&pending), pending.len);
      if (!gone) h->parsing = NULL;
      if (corked) s->ops->uncork(s);
    }
    uvws__buf_free(&pending);
    if (gone || s->closing || s->finishing || h->responding) return;
  } while (h->waiting && !h->deferred && uvws__stream_queued(s) <= UVWS__QUEUE_LOW);
  if (h->waiting) return;
  if (h->eof) uvws__stream_finish(s); /* everything the half-closed peer asked is answered */
  else s->ops->pause(s, 0);
}

/* Half-close: the client is done sending, not necessarily receiving.
 * What it asked is answered, then the connection ends. */
static void on_eof(uvws__stream_t *s) {
  uvws__http_t *h = s->upper;
  h->eof = 1; /* what waits (pipelined requests) is still answered */
  if (!h->responding && !h->waiting) uvws__stream_finish(s);
}

static void on_timeout(uvws__stream_t *s) {
  uvws__http_t *h = s->upper;
  if (h->in_message) {
    uvws__log(UVWS_LOG_INFO, "http %s: request not complete in time", s->peer);
    h->keep_alive = 0;
    uvws__http_respond_text(h, 408, NULL, NULL, 0);
    uvws__stream_finish(s);
  } else if (h->responding || h->waiting) {
    uvws__log(UVWS_LOG_INFO, "http %s: the client reads nothing of its answers; dropping", s->peer);
    uvws__stream_close(s, "response stalled");
  } else {
    if (uvws__net_tls_pending(s)) uvws__log(UVWS_LOG_INFO, "tls %s: handshake not complete in time", s->peer);
    else if (!h->keep_alive && h->status == 0) uvws__log(UVWS_LOG_INFO, "http %s: no request in time", s->peer);
    uvws__stream_finish(s); /* idle keep-alive connection */
  }
}

static void on_shutdown(uvws__stream_t *s) {
  uvws__http_t *h = s->upper;
  h->keep_alive = 0; /* a response in progress is finished first */
  if (!h->responding && !h->waiting) uvws__stream_finish(s);
}

void uvws__http_free(uvws__http_t *h) {
  UVWS__ADD(h->env->m->conns_http, -1);
  uvws__http_close_file(h);
  uvws__buf_free(&h->hbuf);
  uvws__buf_free(&h->pending);
  free(h);
}

static void on_close(uvws__stream_t *s) { uvws__http_free(s->upper); }

/* A deferred turn and a drained queue mean the same to HTTP: answer on. */
static const uvws__stream_cb_t http_cb = {on_data,    on_writable, on_writable, on_eof,
                                          on_timeout, on_shutdown, on_close};

int uvws__http_open(uvws__http_env_t *env, uvws__stream_t *s, int refuse) {
  uvws__http_t *h;
  /* A missing callback would be called on some request only (the fuzz
   * target lacked `routes` and crashed on GET /routes.json after 200 000
   * inputs): refuse the environment at the first connection instead. */
  if (!env->opts || !env->m || !env->net || !env->route || !env->upgrade || !env->metrics || !env->routes ||
      !env->state)
    return UV_EINVAL;
  h = calloc(1, sizeof(*h));
  if (h == NULL) return UV_ENOMEM;
  llhttp_init(&h->parser, HTTP_REQUEST, &settings);
  h->parser.data = h;
  h->fd = -1;
  h->s = s;
  h->env = env;
  UVWS__ADD(env->m->conns_http, 1);
  uvws__stream_set_upper(s, &http_cb, h);
  s->deadline = uv_now(s->loop) + env->opts->handshake_timeout_ms;
  if (refuse) {
    h->keep_alive = 0;
    uvws__http_respond_text(h, refuse, refuse == 503 ? "Retry-After: 1\r\n" : NULL,
                            refuse == 503 ? "too many connections" : "too many connections from your address", 0);
    uvws__stream_finish(s);
  }
  return 0;
}

void uvws__http_env_free(uvws__http_env_t *env) {
  uvws__buf_free(&env->head);
  free(env->filebuf);
  env->filebuf = NULL;
}

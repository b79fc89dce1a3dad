/* A WebSocket session on a stream: what the engine's callbacks do (ws.c
 * decides what the bytes mean, this file what to do about it), the
 * closing handshake, keep-alive, and the session's end. Sending is in
 * send.c. */
#include "ws/session.h"
#include "proto/utf8.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static int ws_on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin);
static int ws_on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len);
static void ws_on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                        size_t head_len);

static const uvws__ws_callbacks_t ws_callbacks = {ws_on_data, ws_on_control, NULL};
static const uvws__ws_callbacks_t ws_callbacks_traced = {ws_on_data, ws_on_control, ws_on_frame};

static void ws_on_frame(uvws__ws_t *ws, const uvws__frame_header_t *h, const uint8_t *head,
                        size_t head_len) {
  uvws_conn_t *c = ws->data;
  uvws__ws_trace(c, UVWS_FRAME_IN, uvws__frame_raw_header(&ws->fp), h->size, h->len, head, head_len);
}

/* Sets the stream's deadline to `when` unless an earlier one is set. The
 * session keeps one deadline for everything it waits for (pong, ping,
 * idle, the reassembly buffer, the peer's close): on_timeout looks at what
 * is actually due and arms the next. */
static void arm(uvws_conn_t *c, uint64_t when) {
  if (c->s->deadline == 0 || when < c->s->deadline) c->s->deadline = when;
}

/* The session is over for /metrics (uvws_connections{kind="websocket"})
 * once it ends the stream, not when the transport is finally gone: only
 * the TCP goodbye is left then, and the transport stops counting it
 * toward the connection limits at the same moment. */
static void uncount(uvws_conn_t *c) {
  if (c->uncounted) return;
  c->uncounted = 1;
  UVWS__ADD(c->env->m->conns_ws, -1);
}

void uvws__ws_finish(uvws_conn_t *c) {
  uncount(c);
  uvws__stream_finish(c->s);
}

static void ws_close_now(uvws_conn_t *c, const char *why) {
  uncount(c);
  uvws__stream_close(c->s, why);
}

/* _Fail the WebSocket Connection_ (section 7.1.7): close frame, FIN, done.
 * Input after this point is discarded. */
void uvws__ws_fail(uvws_conn_t *c, unsigned code, const char *why) {
  if (c->env->opts->log_json)
    uvws__log(UVWS_LOG_INFO, "{\"event\":\"ws_fail\",\"peer\":\"%s\",\"path\":\"%s\",\"code\":%u,\"reason\":\"%s\"}",
              c->s->peer, c->route->path, code, why);
  else
    uvws__log(UVWS_LOG_INFO, "ws fail %s %s code=%u: %s", c->s->peer, c->route->path, code, why);
  UVWS__ADD(c->env->m->protocol_failures, 1);
  if (!c->close_sent) {
    c->by_server = 1;
    c->close_code = (uint16_t)code;
    uvws__ws_send_close(c, code, why, strlen(why));
  }
  c->failed = 1;
  uvws__buf_free(&c->msg);
  uvws__ws_finish(c);
}

/* Messages (and pings) a delivery of input may hand over: past this the
 * session keeps the rest in c->unread, pauses the stream and goes on at
 * the next flush (stream.h defer), as HTTP does with pipelined requests.
 * A client that sends without pause then takes no more of the loop's turn
 * than any other: a flooded chat room's lines no longer sit ahead of a
 * quiet room's. */
#define TURN_MESSAGES 64

/* After a message: the feed stops when the turn is over, and when the
 * route paused (the rest waits for its resume, not just for its pause's
 * next read). */
static int turn_over(uvws_conn_t *c) { return ++c->turn_msgs >= TURN_MESSAGES || c->paused; }

static void deliver(uvws_conn_t *c, int opcode, const void *p, size_t len) {
  c->last_msg = uv_now(c->s->loop);
  UVWS__ADD(c->env->m->messages_in, 1);
  UVWS__ADD(c->env->m->bytes_in, len);
  if (c->route->h.on_message) c->route->h.on_message(c, (uvws_opcode_t)opcode, p, len);
}

/* Stops the feed as soon as the session no longer takes messages. */
static int ws_stopped(const uvws_conn_t *c) {
  return c->s->closing || c->s->finishing || c->failed || c->close_rcvd;
}

static int ws_on_data(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len, int first, int fin) {
  uvws_conn_t *c = ws->data;
  if (c->close_sent) return 0; /* we are closing: data is read and dropped */
  if (c->route->h.on_fragment) { /* streaming: no reassembly, no copy */
    if (fin) {
      c->last_msg = uv_now(c->s->loop);
      UVWS__ADD(c->env->m->messages_in, 1);
    }
    UVWS__ADD(c->env->m->bytes_in, len);
    c->route->h.on_fragment(c, (uvws_opcode_t)opcode, p, len, fin);
    return ws_stopped(c) || (fin && turn_over(c));
  }
  if (first && fin) {
    deliver(c, opcode, p, len); /* the common case: straight from the read buffer */
  } else {
    if (uvws__buf_append(&c->msg, p, len) != 0) {
      uvws__ws_fail(c, UVWS_CLOSE_INTERNAL, "out of memory");
      return 1;
    }
    if (fin) {
      deliver(c, opcode, uvws__buf_data(&c->msg), c->msg.len);
      /* Kept for the next one (no allocation per message in steady state);
       * a big one is given back now, a small one when the session goes
       * quiet (on_timeout). */
      if (c->msg.cap > UVWS__MSG_KEEP) {
        uvws__buf_free(&c->msg);
      } else {
        c->msg.len = c->msg.off = 0;
        arm(c, uv_now(c->s->loop) + UVWS__MSG_KEEP_MS);
      }
    }
  }
  return ws_stopped(c) || (fin && turn_over(c));
}

static int ws_on_control(uvws__ws_t *ws, int opcode, uint8_t *p, size_t len) {
  uvws_conn_t *c = ws->data;
  unsigned code;
  const char *reason;
  size_t rlen;
  int bad;

  switch (opcode) {
    case UVWS_OP_PING:
      if (!c->close_sent) uvws__ws_send_frame(c, UVWS_OP_PONG, p, len, 0);
      return ws_stopped(c) || turn_over(c);
    case UVWS_OP_PONG:
      return 0;
    default: /* close: the only other opcode ws.c lets through */
      bad = uvws__close_parse(p, len, &code, &reason, &rlen);
      if (bad) {
        uvws__ws_fail(c, (unsigned)bad,
                bad == UVWS_CLOSE_INVALID_DATA ? "close reason is not UTF-8"
                                               : "invalid close code or payload");
        return 1;
      }
      c->close_rcvd = 1;
      UVWS__ADD(c->env->m->close_rcvd[uvws__code_bucket(code)], 1);
      c->close_code = (uint16_t)code;
      /* Echo the peer's code and reason (section 5.5.1); with no code,
       * answer 1000. If we closed first, this was the answer to ours. */
      if (!c->close_sent)
        uvws__ws_send_close(c, code == UVWS_CLOSE_NO_STATUS ? UVWS_CLOSE_NORMAL : code, reason, rlen);
      uvws__buf_free(&c->msg);
      uvws__ws_finish(c);
      return 1;
  }
}

/* ---- the stream's callbacks ---------------------------------------------------- */

/* Feeds input to the engine for one turn's messages at most. Returns the
 * bytes taken (all of them, unless the turn is over), or -1 once the
 * connection failed. */
static long feed(uvws_conn_t *c, char *data, size_t len) {
  long r;
  c->turn_msgs = 0;
  r = uvws__ws_feed(&c->ws, (uint8_t *)data, len);
  if (r < 0) uvws__ws_fail(c, c->ws.fail_code, c->ws.fail_reason);
  return ws_stopped(c) ? -1 : r;
}

static void on_data(uvws__stream_t *s, char *data, size_t len) {
  uvws_conn_t *c = s->upper;
  long r;
  if (ws_stopped(c)) return;
  c->last_rx = uv_now(s->loop); /* any bytes prove the peer alive */
  c->awaiting_pong = 0;
  /* Input held for the next turn comes first (TLS delivers a read's
   * records one by one, after the one that ended the turn). */
  r = c->unread.len ? 0 : feed(c, data, len);
  if (r < 0 || (size_t)r == len) return;
  if (uvws__buf_append(&c->unread, data + r, len - (size_t)r) != 0) {
    uvws__ws_fail(c, UVWS_CLOSE_INTERNAL, "out of memory");
    return;
  }
  s->ops->pause(s, 1);
  s->ops->defer(s);
}

/* The next turn (on_resume): the held input, unless the route paused
 * reading. */
static void feed_unread(uvws_conn_t *c) {
  long r = feed(c, uvws__buf_data(&c->unread), c->unread.len);
  if (r < 0) {
    uvws__buf_free(&c->unread);
    return;
  }
  uvws__buf_consume(&c->unread, (size_t)r);
  if (c->unread.len) {
    c->s->ops->defer(c->s);
    return;
  }
  uvws__buf_free(&c->unread);
  c->s->ops->pause(c->s, c->paused);
}

static void on_resume(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  if (c->unread.len && !c->paused && !ws_stopped(c)) feed_unread(c);
}

/* The queue is low again: a route told UVWS_EBACKPRESSURE, or whose queue
 * went past the low mark, hears on_drain. */
static void on_writable(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  c->drain_owed = 0;
  if (c->route->h.on_drain && uvws__ws_sendable(c)) c->route->h.on_drain(c);
}

static void on_eof(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  if (!c->close_rcvd && !c->close_sent)
    uvws__log(UVWS_LOG_DEBUG, "ws %s: connection lost without a close frame", s->peer);
  ws_close_now(c, NULL);
}

/* Pings quiet peers, drops those that do not answer, closes idle ones,
 * gives back an idle reassembly buffer, and ends a closing handshake the
 * peer does not answer. */
static void on_timeout(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  const uvws_options_t *o = c->env->opts;
  uint64_t now = uv_now(s->loop);

  if (c->close_sent) {
    uvws__log(UVWS_LOG_INFO, "ws %s %s: no close frame from the peer in time", s->peer, c->route->path);
    uvws__ws_finish(c);
    return;
  }
  if (c->failed || c->close_rcvd || s->finishing) return;
  if (c->paused) return; /* the silence is ours: the timers start again at resume */
  if (o->ping_interval_ms) {
    if (c->awaiting_pong && now - c->ping_sent >= o->ping_timeout_ms) {
      uvws__log(UVWS_LOG_INFO, "ws %s %s: no pong within %ums; dropping", s->peer, c->route->path,
                o->ping_timeout_ms);
      UVWS__ADD(c->env->m->ping_timeouts, 1);
      c->close_code = UVWS_CLOSE_ABNORMAL;
      c->by_server = 1;
      ws_close_now(c, "ping timeout");
      return;
    }
    if (!c->awaiting_pong && now - c->last_rx >= o->ping_interval_ms) {
      c->awaiting_pong = 1;
      c->ping_sent = now;
      uvws__ws_send_frame(c, UVWS_OP_PING, NULL, 0, 0);
      if (s->closing) return;
    }
    arm(c, c->awaiting_pong ? c->ping_sent + o->ping_timeout_ms : c->last_rx + o->ping_interval_ms);
  }
  if (c->msg.cap && c->msg.len == 0) {
    if (now - c->last_rx >= UVWS__MSG_KEEP_MS) uvws__buf_free(&c->msg);
    else arm(c, c->last_rx + UVWS__MSG_KEEP_MS);
  }
  if (o->idle_timeout_ms) {
    if (now - c->last_msg >= o->idle_timeout_ms) {
      uvws__log(UVWS_LOG_INFO, "ws %s %s: no message for %ums; closing", s->peer, c->route->path,
                o->idle_timeout_ms);
      UVWS__ADD(c->env->m->idle_closes, 1);
      uvws_close(c, UVWS_CLOSE_GOING_AWAY, "idle timeout");
      return;
    }
    arm(c, c->last_msg + o->idle_timeout_ms);
  }
}

static void on_shutdown(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  if (uvws_close(c, UVWS_CLOSE_GOING_AWAY, "server shutting down") != 0) uvws__ws_finish(c);
}

static void on_close(uvws__stream_t *s) {
  uvws_conn_t *c = s->upper;
  uvws__ws_env_t *env = c->env;
  const char *reason = "";
  size_t rlen = 0;
  unsigned code = c->close_code ? c->close_code : UVWS_CLOSE_ABNORMAL;
  uint64_t ms = uv_now(s->loop) - c->started;

  uncount(c);
  if (env->opts->log_connections && env->opts->log_json)
    uvws__log(UVWS_LOG_INFO,
              "{\"event\":\"ws_close\",\"peer\":\"%s\",\"path\":\"%s\",\"code\":%u,\"by\":\"%s\","
              "\"duration_ms\":%llu}",
              s->peer, c->route->path, code, c->by_server ? "server" : "client", (unsigned long long)ms);
  else if (env->opts->log_connections)
    uvws__log(UVWS_LOG_INFO, "ws close %s %s code=%u by=%s duration=%llu.%03llus", s->peer,
              c->route->path, code, c->by_server ? "server" : "client",
              (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
  if (env->on_session_closed) env->on_session_closed(env->ctx, c);
  if (c->route->h.on_close) {
    /* RFC 6455 section 7.1.5: the connection's close code is the one in
     * the close frame received; none received (the peer never answered
     * ours, or the transport died) is 1006. The log above says which
     * code ended it from our side too. */
    unsigned rc = UVWS_CLOSE_ABNORMAL;
    if (c->close_rcvd && uvws__close_parse(c->ws.ctl, c->ws.ctl_len, &rc, &reason, &rlen) != 0) {
      rc = c->close_code;
      rlen = 0;
    }
    c->route->h.on_close(c, (int)rc, reason, rlen);
  }
  uvws__ws_free(&c->ws);
  if (c->def) {
    deflateEnd(c->def);
    free(c->def);
  }
  uvws__buf_free(&c->msg);
  uvws__buf_free(&c->unread);
  free(c);
}

static const uvws__stream_cb_t session_cb = {on_data,    on_writable, on_resume, on_eof,
                                             on_timeout, on_shutdown, on_close};

int uvws__ws_open(uvws__ws_env_t *env, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest,
                  size_t rest_len) {
  const uvws_options_t *opts = env->opts;
  uvws_conn_t *c = calloc(1, sizeof(*c));
  const uvws__route_t *route = o->route;

  if (c == NULL) {
    uvws__log(UVWS_LOG_ERROR, "ws %s: out of memory at open", s->peer);
    uvws__stream_close(s, "out of memory");
    return UV_ENOMEM;
  }
  c->s = s;
  c->env = env;
  c->route = route;
  c->protocol = o->protocol;
  c->data = o->data;
  c->started = c->last_rx = c->last_msg = uv_now(s->loop);
  uvws__ws_init(&c->ws, route->h.on_frame ? &ws_callbacks_traced : &ws_callbacks, c, opts->max_message);
  c->ws.max_frame = opts->max_frame;
  if (o->pmd) {
    c->pmd = *o->pmd;
    uvws__ws_enable_deflate(&c->ws, o->pmd);
  }
  uvws__stream_set_upper(s, &session_cb, c);
  s->deadline = 0;
  if (opts->ping_interval_ms) arm(c, c->started + opts->ping_interval_ms);
  if (opts->idle_timeout_ms) arm(c, c->started + opts->idle_timeout_ms);
  UVWS__ADD(env->m->conns_ws, 1);
  if (opts->log_connections && opts->log_json)
    uvws__log(UVWS_LOG_INFO,
              "{\"event\":\"ws_open\",\"peer\":\"%s\",\"path\":\"%s\",\"protocol\":\"%s\","
              "\"extensions\":\"%s\"}",
              s->peer, route->path, o->protocol ? o->protocol : "", o->extensions ? o->extensions : "");
  else if (opts->log_connections)
    uvws__log(UVWS_LOG_INFO, "ws open %s %s protocol=%s extensions=%s", s->peer, route->path,
              o->protocol ? o->protocol : "-", o->extensions ? o->extensions : "-");
  c->open = o;
  if (route->h.on_open) route->h.on_open(c);
  c->open = NULL;
  if (rest_len && !ws_stopped(c)) on_data(s, rest, rest_len);
  return 0;
}

/* A route's pause: the stream stops reading, and the keep-alive and idle
 * timers wait, since the peer cannot be heard meanwhile. */
int uvws_conn_pause(uvws_conn_t *c, int paused) {
  const uvws_options_t *o = c->env->opts;
  uint64_t now;
  paused = paused != 0;
  if (c->close_sent || c->close_rcvd || c->failed || c->s->closing || c->s->finishing) return UVWS_ECLOSED;
  if (c->paused == paused) return 0;
  c->paused = (uint8_t)paused;
  c->s->ops->pause(c->s, paused || c->unread.len);
  if (paused) return 0;
  if (c->unread.len) c->s->ops->defer(c->s); /* what was held is read first */
  now = uv_now(c->s->loop);
  c->last_rx = c->last_msg = now;
  c->awaiting_pong = 0;
  if (o->ping_interval_ms) arm(c, now + o->ping_interval_ms);
  if (o->idle_timeout_ms) arm(c, now + o->idle_timeout_ms);
  if (c->msg.cap && c->msg.len == 0) arm(c, now + UVWS__MSG_KEEP_MS);
  return 0;
}

/* The route cuts the peer off: no close frame, nothing more written. The
 * transport's close callback brings on_close (1006) later, never from
 * inside this call. */
int uvws_conn_abort(uvws_conn_t *c) {
  if (c->s->closing) return UVWS_ECLOSED;
  uvws__log(UVWS_LOG_INFO, "ws %s %s: connection aborted by the route", c->s->peer, c->route->path);
  c->by_server = 1;
  c->close_code = UVWS_CLOSE_ABNORMAL;
  ws_close_now(c, "aborted by the route");
  return 0;
}

/* ---- the upgrade request, for on_open ------------------------------------------ */

const char *uvws_conn_request_target(const uvws_conn_t *c, size_t *len) {
  if (c->open == NULL) return NULL;
  *len = c->open->target_len;
  return c->open->target;
}

int uvws_conn_request_header_at(const uvws_conn_t *c, size_t index, const char **name,
                                size_t *name_len, const char **value, size_t *value_len) {
  const uvws__header_t *h;
  if (c->open == NULL || index >= c->open->nheaders) return UV_ENOENT;
  h = &c->open->headers[index];
  *name = h->name;
  *name_len = h->name_len;
  *value = h->value;
  *value_len = h->value_len;
  return 0;
}

const char *uvws_conn_response_head(const uvws_conn_t *c) {
  return c->open ? c->open->response_head : NULL;
}

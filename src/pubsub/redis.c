/* Topics across uvws instances through Redis pub/sub (options.redis).
 *
 * Lives on the primary's loop. Two hiredis connections, because a
 * connection that issued (P)SUBSCRIBE can do nothing else: `sub` listens on
 * the pattern "uvws:*", `pub` sends PUBLISH uvws:<topic>. Every message
 * carries this instance's random id, so our own messages, which Redis sends
 * back to us as to every subscriber, are dropped (local subscribers already
 * had them). Wire format of a payload:
 *   "U1" | 16-byte instance id | 1 byte opcode | the message
 *
 * Redis is optional at run time: when it is unreachable or lost, local
 * delivery goes on, a warning is logged, publishes are counted as dropped,
 * and a timer reconnects with backoff (100 ms doubling to 2 s) and
 * subscribes again. hiredis 0.14 has no timeouts, so the connect timeout is
 * ours too. The event glue to libuv is written here (a uv_poll_t per
 * context) rather than taken from hiredis' adapter, which at 0.14 ignores
 * poll errors.
 *
 * Ownership: the runtime owns the uvws__redis_t; hiredis owns each context
 * and frees it after its disconnect callback, or in redisAsyncFree; a
 * context's poll adapter is freed in its uv_close callback. */
#include "pubsub/redis.h"
#include "util/counters.h"
#include "util/log.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/utf8.h"

#define CHANNEL_PREFIX "uvws:"
#define CHANNEL_PREFIX_LEN 5
#define MAGIC "U1"
#define MAGIC_SEQ "U2"
#define MAGIC_LIST "U3" /* presence.c */
#define HEADER_LEN (2 + 16 + 1)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 2000
#define MAX_PENDING 10000 /* PUBLISHes awaiting Redis' reply */

typedef struct {
  uv_poll_t poll;
  redisAsyncContext *ac;
  uvws__redis_t *r;
  int events;
  int dead; /* hiredis called cleanup: the context is gone */
} adapter_t;

struct uvws__redis_s {
  uv_loop_t *loop;
  uvws__redis_hooks_t hooks;
  char host[256];
  int port;
  char user[128], pass[256];     /* from redis://[user]:pass@host: AUTH first */
  uint8_t id[16];
  redisAsyncContext *sub, *pub; /* NULL when not connecting or connected */
  uint8_t sub_ok, pub_ok;       /* connected */
  uint8_t subscribed;           /* PSUBSCRIBE confirmed: we are up */
  uint8_t was_up;               /* for the "lost" vs "unreachable" warning */
  uint8_t stopping;
  uint8_t in_down;              /* go_down is freeing contexts (their callbacks re-enter) */
  uint8_t auth_failed;          /* logged once until AUTH succeeds again */
  uv_timer_t timer;             /* reconnect, or connect timeout */
  int timer_open;
  uv_timer_t beat;              /* the heartbeat (hooks.on_wills), wills.c */
  int beat_open;
  unsigned handles;             /* timer + poll adapters not yet closed */
  unsigned backoff_ms;
  unsigned pending;
  uvws__buf_t scratch;          /* one outgoing payload */
  uvws__presence_t pres;        /* presence.c's */
  uvws__counter_t connected, msgs_out, msgs_in, dropped;
};

static void connect_both(uvws__redis_t *r);
static void go_down(uvws__redis_t *r, const char *why);
static int send_auth(uvws__redis_t *r, redisAsyncContext *ac);

/* ---- libuv glue ------------------------------------------------------------- */

static void handle_closed(uvws__redis_t *r) {
  if (--r->handles == 0 && r->stopping && r->hooks.on_stopped) r->hooks.on_stopped(r->hooks.ctx);
}

static void on_adapter_closed(uv_handle_t *h) {
  adapter_t *a = h->data;
  uvws__redis_t *r = a->r;
  free(a);
  handle_closed(r);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  adapter_t *a = p->data;
  redisAsyncContext *ac = a->ac;
  if (status < 0) {
    /* libuv stopped the poll; let hiredis find the error on the socket. */
    if (a->events & UV_WRITABLE) redisAsyncHandleWrite(ac);
    else redisAsyncHandleRead(ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(ac);
  if (!a->dead && (events & UV_WRITABLE)) redisAsyncHandleWrite(ac);
}

static void poll_update(adapter_t *a, int events) {
  if (a->dead || events == a->events) return;
  a->events = events;
  if (events) uv_poll_start(&a->poll, events, on_poll);
  else uv_poll_stop(&a->poll);
}

static void ev_add_read(void *p) { adapter_t *a = p; poll_update(a, a->events | UV_READABLE); }
static void ev_del_read(void *p) { adapter_t *a = p; poll_update(a, a->events & ~UV_READABLE); }
static void ev_add_write(void *p) { adapter_t *a = p; poll_update(a, a->events | UV_WRITABLE); }
static void ev_del_write(void *p) { adapter_t *a = p; poll_update(a, a->events & ~UV_WRITABLE); }

static void ev_cleanup(void *p) {
  adapter_t *a = p;
  a->dead = 1;
  uv_close((uv_handle_t *)&a->poll, on_adapter_closed);
}

static int attach(uvws__redis_t *r, redisAsyncContext *ac) {
  adapter_t *a = calloc(1, sizeof(*a));
  if (a == NULL) return UV_ENOMEM;
  if (uv_poll_init(r->loop, &a->poll, ac->c.fd) != 0) {
    free(a);
    return UV_EIO;
  }
  a->poll.data = a;
  a->ac = ac;
  a->r = r;
  r->handles++;
  ac->ev.data = a;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

/* ---- connection life ---------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  uvws__redis_t *r = t->data;
  if (r->subscribed) return;
  if (r->sub || r->pub) { /* still connecting: give up on this attempt */
    go_down(r, "connect timeout");
    return;
  }
  connect_both(r);
}

static void arm(uvws__redis_t *r, unsigned ms) {
  if (r->timer_open) uv_timer_start(&r->timer, on_timer, ms, 0);
}

/* Drops whatever connection is left and schedules the next attempt. Safe to
 * call from inside a hiredis callback of either context: the caller clears
 * its own pointer first, so only the other one is freed here. */
static void go_down(uvws__redis_t *r, const char *why) {
  redisAsyncContext *sub = r->sub, *pub = r->pub;
  int was_up = r->subscribed;
  if (r->in_down) return;
  /* A context we let go from inside its own callback reports its
   * disconnect afterwards: the retry is already scheduled. */
  if (!sub && !pub && r->timer_open && uv_is_active((uv_handle_t *)&r->timer)) return;
  r->sub = r->pub = NULL;
  r->sub_ok = r->pub_ok = r->subscribed = 0;
  UVWS__SET(r->connected, 0);
  r->in_down = 1;
  if (sub) redisAsyncFree(sub);
  if (pub) redisAsyncFree(pub);
  r->in_down = 0;
  uvws__presence_fail_all(r); /* their lists were on the lost subscription */
  if (was_up && r->hooks.on_state) r->hooks.on_state(r->hooks.ctx, 0);
  if (r->stopping) return;
  if (why == NULL) why = "closed";
  if (was_up)
    uvws__log(UVWS_LOG_WARN, "redis: connection to %s:%d lost (%s); local delivery continues, retrying in %u ms",
              r->host, r->port, why, r->backoff_ms);
  else
    uvws__log(r->was_up || r->backoff_ms > BACKOFF_MIN_MS ? UVWS_LOG_DEBUG : UVWS_LOG_WARN,
              "redis: %s:%d unreachable (%s); local delivery continues, retrying in %u ms", r->host,
              r->port, why, r->backoff_ms);
  arm(r, r->backoff_ms + (unsigned)(uv_hrtime() % (r->backoff_ms / 4 + 1)));
  r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void forget(uvws__redis_t *r, const redisAsyncContext *ac) {
  if (ac == r->sub) r->sub = NULL, r->sub_ok = 0;
  if (ac == r->pub) r->pub = NULL, r->pub_ok = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  uvws__redis_t *r = ac->data;
  const char *why = status == REDIS_OK ? "closed" : ac->errstr;
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", why && *why ? why : "closed");
  forget(r, ac); /* hiredis frees it after we return */
  go_down(r, buf);
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv);

/* The heartbeat: this instance's wills and key, and the dead's wills. */
static void on_beat(uv_timer_t *t) {
  uvws__redis_t *r = t->data;
  uvws__wills_t w = {0};
  if (!r->subscribed || r->stopping) return;
  r->hooks.on_wills(r->hooks.ctx, &w);
  if (uvws__wills_send(r, r->id, r->hooks.will_ttl_ms, &w) != 0)
    uvws__log(UVWS_LOG_WARN, "redis: a heartbeat was not sent");
  uvws__wills_clear(&w);
}

static void check_up(uvws__redis_t *r) {
  if (!r->sub_ok || !r->pub_ok || r->subscribed) return;
  r->subscribed = 1;
  r->was_up = 1;
  r->backoff_ms = BACKOFF_MIN_MS;
  UVWS__SET(r->connected, 1);
  uv_timer_stop(&r->timer);
  uvws__log(UVWS_LOG_INFO, "redis: connected to %s:%d", r->host, r->port);
  uvws__presence_up(r);
  if (r->hooks.on_state) r->hooks.on_state(r->hooks.ctx, 1);
  if (r->beat_open) on_beat(&r->beat); /* at once: the key exists from now */
}

static void on_connect(const redisAsyncContext *cac, int status) {
  uvws__redis_t *r = cac->data;
  redisAsyncContext *ac = (redisAsyncContext *)(uintptr_t)cac;
  if (status != REDIS_OK) {
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", ac->errstr[0] ? ac->errstr : "connect failed");
    forget(r, ac); /* hiredis frees it after we return */
    go_down(r, buf);
    return;
  }
  if (r->pass[0] && send_auth(r, ac) != 0) {
    forget(r, ac);
    go_down(r, "AUTH could not be sent");
    return;
  }
  if (ac == r->pub) {
    if (r->pass[0]) return; /* up when AUTH is accepted (on_auth) */
    r->pub_ok = 1;
    check_up(r);
  } else if (ac == r->sub) {
    r->sub_ok = 1;
    /* Up once the subscription is confirmed (the first reply). */
    if (redisAsyncCommand(ac, on_message, r, "PSUBSCRIBE %s*", CHANNEL_PREFIX) != REDIS_OK) {
      forget(r, ac);
      go_down(r, "PSUBSCRIBE failed");
    }
  }
}

/* AUTH's answer. An error (wrong password, no such user) is logged and
 * retried like any other failure: the server may be fixed meanwhile. */
static void on_auth(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = priv;
  redisReply *rep = reply;
  if (rep == NULL) return; /* the context is going away */
  if (rep->type == REDIS_REPLY_ERROR) {
    if (!r->auth_failed)
      uvws__log(UVWS_LOG_ERROR, "redis: AUTH to %s:%d refused (%s); local delivery continues", r->host,
                r->port, rep->str);
    r->auth_failed = 1;
    go_down(r, "AUTH refused"); /* hiredis frees `ac` once this callback returns */
    return;
  }
  r->auth_failed = 0;
  if (ac == r->pub) {
    r->pub_ok = 1;
    check_up(r);
  }
}

static int send_auth(uvws__redis_t *r, redisAsyncContext *ac) {
  const char *argv[3] = {"AUTH", r->user, r->pass};
  size_t argl[3] = {4, strlen(r->user), strlen(r->pass)};
  if (r->user[0]) return redisAsyncCommandArgv(ac, on_auth, r, 3, argv, argl) == REDIS_OK ? 0 : -1;
  argv[1] = r->pass;
  argl[1] = argl[2];
  return redisAsyncCommandArgv(ac, on_auth, r, 2, argv, argl) == REDIS_OK ? 0 : -1;
}

static redisAsyncContext *open_one(uvws__redis_t *r, const char **why) {
  redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
  if (ac == NULL) {
    *why = "out of memory";
    return NULL;
  }
  if (ac->err) {
    static _Thread_local char buf[128];
    snprintf(buf, sizeof(buf), "%s", ac->errstr);
    *why = buf;
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = r;
  if (attach(r, ac) != 0) {
    *why = "cannot watch the socket";
    redisAsyncFree(ac);
    return NULL;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

static void connect_both(uvws__redis_t *r) {
  const char *why = NULL;
  if (r->stopping) return;
  r->sub = open_one(r, &why);
  if (r->sub) r->pub = open_one(r, &why);
  if (r->sub == NULL || r->pub == NULL) {
    go_down(r, why);
    return;
  }
  arm(r, CONNECT_TIMEOUT_MS);
}

/* ---- messages ------------------------------------------------------------------ */

/* "N message" after the header: the number, then the text for the app. */
static void on_sequenced(uvws__redis_t *r, const redisReply *chan, const redisReply *data) {
  const char *p = data->str + HEADER_LEN, *end = data->str + data->len;
  uint64_t seq = 0;
  while (p < end && *p >= '0' && *p <= '9' && seq < UINT64_MAX / 10) seq = seq * 10 + (uint64_t)(*p++ - '0');
  if (p == end || *p != ' ' || seq == 0 || (uint8_t)data->str[18] != UVWS_OP_TEXT) return;
  p++;
  if (!uvws__utf8_valid((const uint8_t *)p, (size_t)(end - p))) {
    uvws__log(UVWS_LOG_WARN, "redis: dropped a sequenced message on %.*s that is not UTF-8", (int)chan->len,
              chan->str);
    return;
  }
  UVWS__ADD(r->msgs_in, 1);
  if (r->hooks.on_sequenced)
    r->hooks.on_sequenced(r->hooks.ctx, chan->str + CHANNEL_PREFIX_LEN, (size_t)chan->len - CHANNEL_PREFIX_LEN,
                          seq, p, (size_t)(end - p));
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = priv;
  redisReply *rep = reply, *kind, *chan, *data;
  uint8_t hdr[UVWS__FRAME_MAX_HEADER];
  uvws__sbuf_t *frame;
  size_t hl, len, n;
  const char *topic;
  int op;

  (void)ac;
  if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
  kind = rep->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (strcmp(kind->str, "psubscribe") == 0) {
    check_up(r);
    return;
  }
  if (strcmp(kind->str, "pmessage") != 0 || rep->elements != 4) return;
  chan = rep->element[2];
  data = rep->element[3];
  if (chan->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING) return;
  if ((size_t)chan->len <= CHANNEL_PREFIX_LEN || (size_t)data->len < HEADER_LEN) return;
  if (memcmp(data->str, MAGIC_SEQ, 2) == 0) {
    on_sequenced(r, chan, data);
    return;
  }
  if (memcmp(data->str, MAGIC_LIST, 2) == 0) {
    uvws__presence_list(r, data->str, (size_t)data->len);
    return;
  }
  if (memcmp(data->str, MAGIC, 2) != 0) return; /* not ours: someone else's use of the uvws: channels */
  if (memcmp(data->str + 2, r->id, 16) == 0) return; /* our own, already delivered */
  op = (uint8_t)data->str[18];
  if (op != UVWS_OP_TEXT && op != UVWS_OP_BINARY) return;
  topic = chan->str + CHANNEL_PREFIX_LEN;
  n = (size_t)chan->len - CHANNEL_PREFIX_LEN;
  len = (size_t)data->len - HEADER_LEN;
  if (op == UVWS_OP_TEXT && !uvws__utf8_valid((const uint8_t *)data->str + HEADER_LEN, len)) {
    uvws__log(UVWS_LOG_WARN, "redis: dropped a text message on %.*s that is not UTF-8", (int)chan->len,
              chan->str);
    return;
  }
  UVWS__ADD(r->msgs_in, 1);
  hl = uvws__frame_header_encode(hdr, 1, 0, op, len, NULL);
  frame = uvws__sbuf_new(hl + len);
  if (frame == NULL) {
    uvws__log(UVWS_LOG_ERROR, "redis: out of memory, a message on %.*s is lost", (int)chan->len, chan->str);
    return;
  }
  memcpy(frame->data, hdr, hl);
  memcpy(frame->data + hl, data->str + HEADER_LEN, len);
  frame->len = hl + len;
  r->hooks.on_message(r->hooks.ctx, topic, n, (uvws_opcode_t)op, data->str + HEADER_LEN, len, frame, hl);
  uvws__sbuf_unref(frame);
}

static void on_published(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = priv;
  (void)ac, (void)reply;
  r->pending--;
}

void uvws__redis_publish(uvws__redis_t *r, const char *topic, size_t n, uvws__sbuf_t *frame,
                         size_t header_len) {
  const char *argv[3];
  size_t argl[3], len = frame->len - header_len;
  char *p;

  if (r == NULL) return;
  if (!r->subscribed || r->pending >= MAX_PENDING) {
    UVWS__ADD(r->dropped, 1);
    return;
  }
  r->scratch.len = 0;
  if (uvws__buf_reserve(&r->scratch, CHANNEL_PREFIX_LEN + n + HEADER_LEN + len) != 0) {
    UVWS__ADD(r->dropped, 1);
    return;
  }
  p = uvws__buf_data(&r->scratch);
  memcpy(p, CHANNEL_PREFIX, CHANNEL_PREFIX_LEN);
  memcpy(p + CHANNEL_PREFIX_LEN, topic, n);
  p += CHANNEL_PREFIX_LEN + n;
  memcpy(p, MAGIC, 2);
  memcpy(p + 2, r->id, 16);
  p[18] = (char)(frame->data[0] & 0x0f);
  memcpy(p + HEADER_LEN, frame->data + header_len, len);
  argv[0] = "PUBLISH";
  argl[0] = 7;
  argv[1] = uvws__buf_data(&r->scratch);
  argl[1] = CHANNEL_PREFIX_LEN + n;
  argv[2] = p;
  argl[2] = HEADER_LEN + len;
  if (redisAsyncCommandArgv(r->pub, on_published, r, 3, argv, argl) != REDIS_OK) {
    UVWS__ADD(r->dropped, 1);
    return;
  }
  r->pending++;
  UVWS__ADD(r->msgs_out, 1);
}

/* KEYS: the counter, the stream, the channel. ARGV: the payload header,
 * head, tail, how many entries the stream keeps.
 *
 * A counter that does not exist yet (a new topic, or a Redis restarted
 * without persistence, which lost the counter and the stream alike)
 * starts at Redis's clock in microseconds: numbers then keep growing
 * across such a restart, so no instance takes a new message for one it
 * already delivered. Lua 5.1 prints large numbers as "1.7e+15": hence
 * string.format('%d'), exact below 2^53. */
static const char APPEND_SCRIPT[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then "
    "local t = redis.call('TIME') "
    "redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2]))) end "
    "local n = string.format('%d', redis.call('INCR', KEYS[1])) "
    "local m = ARGV[2] .. n .. ARGV[3] "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], n .. '-0', 'm', m) "
    "redis.call('PUBLISH', KEYS[3], ARGV[1] .. n .. ' ' .. m) "
    "return n";

static void on_appended(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = priv;
  redisReply *rep = reply;
  (void)ac;
  r->pending--;
  if (rep && rep->type == REDIS_REPLY_ERROR)
    uvws__log(UVWS_LOG_ERROR, "redis: a sequenced publish failed: %s", rep->str);
}

int uvws__redis_append(uvws__redis_t *r, const char *topic, size_t n, const char *head, size_t head_len,
                       const char *tail, size_t tail_len, size_t keep) {
  const char *argv[10];
  size_t argl[10], i, klen = CHANNEL_PREFIX_LEN + 4 + n; /* "uvws:seq:" + topic */
  char keepbuf[24], *p;

  if (r == NULL || !r->subscribed || r->pending >= MAX_PENDING) {
    if (r) UVWS__ADD(r->dropped, 1);
    return UVWS_EUNAVAILABLE;
  }
  r->scratch.len = 0;
  if (uvws__buf_reserve(&r->scratch, 3 * klen + HEADER_LEN) != 0) return UV_ENOMEM;
  p = uvws__buf_data(&r->scratch);
  memcpy(p, CHANNEL_PREFIX "seq:", klen - n);
  memcpy(p + klen - n, topic, n);
  memcpy(p + klen, CHANNEL_PREFIX "log:", klen - n);
  memcpy(p + 2 * klen - n, topic, n);
  memcpy(p + 2 * klen, CHANNEL_PREFIX, CHANNEL_PREFIX_LEN);
  memcpy(p + 2 * klen + CHANNEL_PREFIX_LEN, topic, n);
  memcpy(p + 3 * klen, MAGIC_SEQ, 2);
  memcpy(p + 3 * klen + 2, r->id, 16);
  p[3 * klen + 18] = (char)UVWS_OP_TEXT;
  snprintf(keepbuf, sizeof(keepbuf), "%zu", keep ? keep : 1);
  argv[0] = "EVAL", argv[1] = APPEND_SCRIPT, argv[2] = "3";
  for (i = 0; i < 3; i++) argl[i] = strlen(argv[i]);
  argv[3] = p, argl[3] = klen;                                       /* KEYS[1] */
  argv[4] = p + klen, argl[4] = klen;                                /* KEYS[2] */
  argv[5] = p + 2 * klen, argl[5] = CHANNEL_PREFIX_LEN + n;          /* KEYS[3] */
  argv[6] = p + 3 * klen, argl[6] = HEADER_LEN;                      /* ARGV[1] */
  argv[7] = head, argl[7] = head_len;                                /* ARGV[2] */
  argv[8] = tail, argl[8] = tail_len;                                /* ARGV[3] */
  argv[9] = keepbuf, argl[9] = strlen(keepbuf);                      /* ARGV[4] */
  if (redisAsyncCommandArgv(r->pub, on_appended, r, 10, argv, argl) != REDIS_OK) {
    UVWS__ADD(r->dropped, 1);
    return UVWS_EUNAVAILABLE;
  }
  r->pending++;
  UVWS__ADD(r->msgs_out, 1);
  return 0;
}

static void on_command(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = ac->data;
  const uvws__command_t *cmd = priv;
  redisReply *rep = reply;
  r->pending--;
  if (rep && rep->type == REDIS_REPLY_ERROR)
    uvws__log(UVWS_LOG_ERROR, "redis: %s failed: %s", cmd->what, rep->str);
  else if (rep && rep->type == REDIS_REPLY_INTEGER && cmd->on_integer) cmd->on_integer(r, rep->integer);
}

void uvws__redis_buried(uvws__redis_t *r, long long v) {
  if (v != 1) return;
  uvws__log(UVWS_LOG_WARN, "redis: this instance was cut off longer than its heartbeat; its wills went out");
  if (r->hooks.on_buried) r->hooks.on_buried(r->hooks.ctx);
}

int uvws__redis_command(uvws__redis_t *r, int argc, const char **argv, const size_t *argl,
                        const uvws__command_t *cmd) {
  if (r == NULL || !r->subscribed || r->pending >= MAX_PENDING) return UVWS_EUNAVAILABLE;
  if (redisAsyncCommandArgv(r->pub, on_command, (void *)(uintptr_t)cmd, argc, argv, argl) != REDIS_OK)
    return UVWS_EUNAVAILABLE;
  r->pending++;
  return 0;
}

typedef struct {
  void (*done)(uvws__redis_t *r, int ok, void *ctx);
  void *ctx;
} call_t;

static void on_call(redisAsyncContext *ac, void *reply, void *priv) {
  uvws__redis_t *r = ac->data;
  call_t *c = priv;
  redisReply *rep = reply;
  r->pending--;
  if (rep && rep->type == REDIS_REPLY_ERROR) uvws__log(UVWS_LOG_ERROR, "redis: a presence script failed: %s", rep->str);
  if (c->done) c->done(r, rep != NULL && rep->type != REDIS_REPLY_ERROR, c->ctx);
  free(c);
}

int uvws__redis_call(uvws__redis_t *r, int argc, const char **argv, const size_t *argl,
                     void (*done)(uvws__redis_t *r, int ok, void *ctx), void *ctx) {
  call_t *c;
  if (r == NULL || !r->subscribed || r->pending >= MAX_PENDING) return UVWS_EUNAVAILABLE;
  if ((c = malloc(sizeof(*c))) == NULL) return UV_ENOMEM;
  c->done = done, c->ctx = ctx;
  if (redisAsyncCommandArgv(r->pub, on_call, c, argc, argv, argl) != REDIS_OK) {
    free(c);
    return UVWS_EUNAVAILABLE;
  }
  r->pending++;
  return 0;
}

const uint8_t *uvws__redis_id(const uvws__redis_t *r) { return r->id; }
uvws__presence_t *uvws__redis_presence(uvws__redis_t *r) { return &r->pres; }

/* ---- reading the log ------------------------------------------------------- */

typedef struct {
  uvws__range_done cb;
  void *ctx;
  int newest_first; /* XREVRANGE */
} range_req_t;

/* One entry of an XRANGE reply: [ "N-0", [ "m", text ] ]. 0 if it is not
 * one of ours. */
static int entry_of(const redisReply *e, uvws_seq_entry_t *out) {
  const redisReply *f;
  size_t i;
  char *end;
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) return 0;
  out->seq = strtoull(e->element[0]->str, &end, 10);
  f = e->element[1];
  if (out->seq == 0 || *end != '-' || f->type != REDIS_REPLY_ARRAY) return 0;
  for (i = 0; i + 1 < f->elements; i += 2) {
    if (f->element[i]->type == REDIS_REPLY_STRING && f->element[i]->len == 1 && f->element[i]->str[0] == 'm' &&
        f->element[i + 1]->type == REDIS_REPLY_STRING) {
      out->data = f->element[i + 1]->str;
      out->len = (size_t)f->element[i + 1]->len;
      return uvws__utf8_valid((const uint8_t *)out->data, out->len);
    }
  }
  return 0;
}

static void on_range(redisAsyncContext *ac, void *reply, void *priv) {
  range_req_t *q = priv;
  redisReply *rep = reply;
  uvws_seq_entry_t *entries = NULL;
  size_t n = 0, i;
  int status = UVWS_EUNAVAILABLE;
  (void)ac;
  ((uvws__redis_t *)ac->data)->pending--;
  if (rep && rep->type == REDIS_REPLY_ARRAY) {
    status = 0;
    if (rep->elements && (entries = calloc(rep->elements, sizeof(*entries))) == NULL) status = UV_ENOMEM;
    for (i = 0; entries && i < rep->elements; i++) {
      size_t k = q->newest_first ? rep->elements - 1 - i : i;
      if (entry_of(rep->element[k], &entries[n])) n++;
    }
  } else if (rep && rep->type == REDIS_REPLY_ERROR) {
    uvws__log(UVWS_LOG_ERROR, "redis: reading a log failed: %s", rep->str);
  }
  q->cb(q->ctx, status, entries, n);
  free(entries);
  free(q);
}

int uvws__redis_range(uvws__redis_t *r, const char *topic, size_t n, uint64_t after, size_t count,
                      uvws__range_done cb, void *ctx) {
  char key[CHANNEL_PREFIX_LEN + 4 + 256], from[32], num[24];
  const char *argv[6];
  size_t argl[6], i;
  range_req_t *q;
  if (r == NULL || !r->subscribed || n > 255) return UVWS_EUNAVAILABLE;
  if ((q = calloc(1, sizeof(*q))) == NULL) return UV_ENOMEM;
  q->cb = cb, q->ctx = ctx, q->newest_first = after == 0;
  memcpy(key, CHANNEL_PREFIX "log:", CHANNEL_PREFIX_LEN + 4);
  memcpy(key + CHANNEL_PREFIX_LEN + 4, topic, n);
  key[CHANNEL_PREFIX_LEN + 4 + n] = '\0';
  snprintf(from, sizeof(from), "%llu-1", (unsigned long long)after); /* just past entry "after-0" */
  snprintf(num, sizeof(num), "%zu", count ? count : 1);
  argv[0] = after ? "XRANGE" : "XREVRANGE";
  argv[1] = key;
  argv[2] = after ? from : "+";
  argv[3] = after ? "+" : "-";
  argv[4] = "COUNT";
  argv[5] = num;
  for (i = 0; i < 6; i++) argl[i] = strlen(argv[i]);
  if (redisAsyncCommandArgv(r->pub, on_range, q, 6, argv, argl) != REDIS_OK) {
    free(q);
    return UVWS_EUNAVAILABLE;
  }
  r->pending++;
  return 0;
}

/* ---- start, stop, metrics ----------------------------------------------------- */

/* Decodes %XX escapes of a URL part into out (size cap). */
static int unescape(const char *p, size_t n, char *out, size_t cap) {
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '%') {
      char hex[3], *e;
      if (i + 2 >= n) return -1;
      hex[0] = p[i + 1], hex[1] = p[i + 2], hex[2] = '\0';
      c = (int)strtol(hex, &e, 16);
      if (*e || c == 0) return -1;
      i += 2;
    }
    if (o + 1 >= cap) return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/...]; HOST may be [IPv6]. */
static int parse_url(uvws__redis_t *r, const char *url) {
  const char *h = url + 8, *colon, *end, *at = NULL, *p; /* after "redis://" */
  size_t hl;
  if (strncmp(url, "redis://", 8) != 0) return UV_EINVAL;
  end = h + strcspn(h, "/?#");
  for (p = h; p < end; p++)
    if (*p == '@') at = p;
  if (at) { /* user:password */
    const char *sep = memchr(h, ':', (size_t)(at - h));
    if (sep == NULL || unescape(h, (size_t)(sep - h), r->user, sizeof(r->user)) != 0 ||
        unescape(sep + 1, (size_t)(at - sep - 1), r->pass, sizeof(r->pass)) != 0 || r->pass[0] == '\0')
      return UV_EINVAL;
    h = at + 1;
  }
  if (*h == '[') { /* [::1]:6379 */
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (close == NULL) return UV_EINVAL;
    hl = (size_t)(close - h - 1);
    h++;
    colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    hl = (size_t)((colon ? colon : end) - h);
  }
  if (hl == 0 || hl >= sizeof(r->host)) return UV_EINVAL;
  memcpy(r->host, h, hl);
  r->host[hl] = '\0';
  r->port = 6379;
  if (colon) {
    char *e;
    long v = strtol(colon + 1, &e, 10);
    if (e != end || v < 1 || v > 65535) return UV_EINVAL;
    r->port = (int)v;
  }
  return 0;
}

int uvws__redis_start(uvws__redis_t **out, uv_loop_t *loop, const char *url, const uvws__redis_hooks_t *hooks) {
  uvws__redis_t *r = calloc(1, sizeof(*r));
  int e;
  *out = NULL;
  if (r == NULL) return UV_ENOMEM;
  r->loop = loop;
  r->hooks = *hooks;
  if (parse_url(r, url) != 0) {
    uvws__log(UVWS_LOG_ERROR, "redis: the URL is not redis://[[USER]:PASSWORD@]HOST[:PORT]");
    free(r);
    return UV_EINVAL;
  }
  if ((e = uv_random(NULL, NULL, r->id, sizeof(r->id), 0, NULL)) != 0 ||
      (e = uv_timer_init(loop, &r->timer)) != 0) {
    free(r);
    return e;
  }
  r->timer.data = r;
  r->timer_open = 1;
  r->handles = 1;
  if (hooks->on_wills && hooks->will_ttl_ms >= 3 && uv_timer_init(loop, &r->beat) == 0) {
    unsigned every = hooks->will_ttl_ms / 3;
    r->beat.data = r;
    r->beat_open = 1;
    r->handles++;
    uv_timer_start(&r->beat, on_beat, every, every);
  }
  r->backoff_ms = BACKOFF_MIN_MS;
  *out = r;
  connect_both(r);
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  uvws__redis_t *r = h->data;
  handle_closed(r);
}

void uvws__redis_stop(uvws__redis_t *r) {
  if (r == NULL || r->stopping) return;
  r->stopping = 1;
  go_down(r, NULL);
  if (r->timer_open) {
    r->timer_open = 0;
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  }
  if (r->beat_open) {
    r->beat_open = 0;
    uv_close((uv_handle_t *)&r->beat, on_timer_closed);
  }
}

int uvws__redis_busy(const uvws__redis_t *r) { return r && r->handles > 0; }

void uvws__redis_free(uvws__redis_t *r) {
  if (r == NULL) return;
  uvws__presence_free_all(r);
  uvws__buf_free(&r->scratch);
  free(r);
}

void uvws__redis_metrics(const uvws__redis_t *r, uvws__buf_t *out) {
  char line[512];
  int n;
  if (r == NULL) return;
  n = snprintf(line, sizeof(line),
               "# HELP uvws_redis_connected 1 while both Redis connections are up.\n"
               "# TYPE uvws_redis_connected gauge\nuvws_redis_connected %llu\n"
               "# HELP uvws_redis_messages_total Messages published to Redis and received from other instances.\n"
               "# TYPE uvws_redis_messages_total counter\n"
               "uvws_redis_messages_total{dir=\"out\"} %llu\nuvws_redis_messages_total{dir=\"in\"} %llu\n"
               "# HELP uvws_redis_dropped_total Publishes not sent to Redis (down or too slow).\n"
               "# TYPE uvws_redis_dropped_total counter\nuvws_redis_dropped_total %llu\n",
               (unsigned long long)UVWS__GET(r->connected), (unsigned long long)UVWS__GET(r->msgs_out),
               (unsigned long long)UVWS__GET(r->msgs_in), (unsigned long long)UVWS__GET(r->dropped));
  if (n > 0 && (size_t)n < sizeof(line)) uvws__buf_append(out, line, (size_t)n);
}

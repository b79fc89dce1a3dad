/* The /chat route: rooms on uvws's publish/subscribe, a small JSON protocol
 * (README, "Chat"), built with jansson. Written against the public header
 * only. Each room is the topic "chat:<room>"; a message is serialised once
 * and published, so every member's connection shares one frame.
 *
 * Ownership: the app owns its room table (chat_rooms.c: a room lives while
 * a membership, a remote member or an operation in progress holds it) and
 * each connection's state (uvws_conn_set_data, touched only by the
 * connection's own loop).
 *
 * Threads: with --threads the handlers run on every loop. Each room has a
 * lock of its own and publishes under it: the order of ids, of the history
 * and of publishes is then the same for the room, and since a subscription
 * only receives what was published after it began, a newcomer gets each
 * message exactly once, either in "history" or live. Rooms do not wait for
 * each other; a send finds its room through the connection's memberships,
 * without the table's lock.
 *
 * Instances (--redis): a line takes its place from Redis. A send goes out
 * with uvws_publish_sequenced(): one script numbers it (the id), logs it
 * and publishes it, so Redis's single order of scripts is the room's
 * order on every instance. Nobody delivers a line before it comes back:
 * every instance, the sender's included, hears it in chat_sequenced() and
 * publishes it to its own members (uvws_publish_local) under the room's
 * lock, in id order, dropping an id it already delivered; the sender sees
 * its own line only once it has its place; lines this instance missed
 * while its link was down are read back from the room's stream
 * (chat_lines.c) and delivered in order. While Redis is unreachable a
 * send is refused (error "redis_down"): a line is either in the order for
 * everyone or sent to no one. Presence lives in Redis too
 * (uvws_presence_join): a join or a leave is stored and published in one
 * script, and a join's "members" are this instance's own members plus
 * the names Redis holds for the room on the others, read at the join's
 * place among their presence messages; uvws_server_on_remote() shows us
 * the other instances' events, so a remote member also holds its room
 * here. Without Redis ids are the room's own counter, 1, 2, 3... */
#include "apps.h"
#include "chat_lines.h"
#include "chat_rooms.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN CHAT_NAME_MAX
#define TEXT_MAX_LEN 4096
#define MAX_ROOMS_PER_CONN 16
#define ABUSE_LIMIT 10 /* errors before the connection is closed with 1008 */

typedef struct pending_join_s pending_join_t;

typedef struct {
  chat_rooms_t rooms;
  chat_lines_t lines; /* with Redis: every line in order, across gaps */
  int redis; /* lines are ordered by Redis (set before start, then read-only) */
  uv_mutex_t pending_lock; /* the list below */
  pending_join_t *pending; /* joins waiting for their history from Redis */
} chat_app_t;

/* A join waiting for Redis: first the room's last lines from its log,
 * then the list of members on other instances. Owned by the app's list
 * until the last answer comes (on the connection's loop), or the app ends. */
struct pending_join_s {
  pending_join_t *next, *prev;
  chat_app_t *app;
  uvws_server_t *srv; /* the connection's loop */
  uvws_conn_t *conn;  /* NULL once it closed (both on the connection's loop) */
  chat_room_t *room;  /* held by the membership, or by this once it closed */
  char nick[NAME_MAX_LEN + 1];
  int stored;           /* the presence join went to Redis */
  uvws_seq_entry_t *log; /* the log read's lines, copied (owned, with their text) */
  size_t nlog;
};

typedef struct {
  chat_room_t *room;       /* held: this membership is one of its references */
  char nick[NAME_MAX_LEN + 1];
  pending_join_t *pending; /* non-NULL until "joined" is sent */
} membership_t;

typedef struct {
  membership_t in[MAX_ROOMS_PER_CONN];
  size_t n;
  unsigned errors;
} chat_conn_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Room names and nicknames: 1-32 of [A-Za-z0-9_.-]. */
static int valid_name(const char *s) {
  size_t n = s ? strlen(s) : 0, i;
  if (n == 0 || n > NAME_MAX_LEN) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

static void send_json(uvws_conn_t *c, json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT);
  if (text) {
    uvws_send_text(c, text);
    free(text);
  }
  json_decref(obj);
}

static json_t *presence_json(const chat_room_t *r, const char *nick, const char *event) {
  return json_pack("{s:s, s:s, s:s, s:s}", "type", "presence", "room", r->name, "nick", nick, "event", event);
}

/* The event serialised (malloc'd), or NULL. */
static char *presence_text(const chat_room_t *r, const char *nick, const char *event) {
  json_t *ev = presence_json(r, nick, event);
  char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  return text;
}

/* A presence event to this instance's members, and with Redis to the
 * others through the room's entry in Redis (stored or removed with it).
 * Room lock held. */
static void announce(uvws_server_t *srv, chat_app_t *app, chat_room_t *r, const char *nick, int join) {
  char *text = presence_text(r, nick, join ? "join" : "leave");
  int e = 0;
  if (text && !app->redis) {
    uvws_publish(srv, r->topic, UVWS_OP_TEXT, text, strlen(text));
  } else if (text) {
    uvws_publish_local(srv, r->topic, UVWS_OP_TEXT, text, strlen(text));
    /* A join is stored when its list is asked for (ask_members). */
    if (!join) e = uvws_presence_leave(srv, r->topic, nick, text);
  }
  if (e != 0 && e != UVWS_EUNAVAILABLE) fprintf(stderr, "chat: the leave of %s: %s\n", nick, uvws_strerror(e));
  free(text);
}

static void error_msg(uvws_conn_t *c, const char *code, const char *message) {
  chat_conn_t *cc = uvws_conn_get_data(c);
  send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message));
  if (cc && ++cc->errors >= ABUSE_LIMIT) uvws_close(c, UVWS_CLOSE_POLICY, "too many errors");
}

/* This instance's member `nick` of the room, or NULL (room lock held). */
static chat_member_t *local_entry(const chat_room_t *r, const char *nick) {
  chat_member_t *m;
  for (m = r->member_list; m; m = m->next)
    if (!m->remote && strcmp(m->nick, nick) == 0) return m;
  return NULL;
}

/* The room's members: with the list Redis gave (`listed`), this
 * instance's own members and those names; else every member it knows. */
static json_t *members_json(const chat_room_t *r, int listed, const char *const *names, size_t n) {
  json_t *arr = json_array();
  const chat_member_t *m;
  size_t i;
  for (m = r->member_list; m; m = m->next)
    if (!listed || !m->remote) json_array_append_new(arr, json_string(m->nick));
  for (i = 0; listed && i < n; i++)
    if (local_entry(r, names[i]) == NULL) json_array_append_new(arr, json_string(names[i]));
  return arr;
}

/* The connection's membership of the room called `name`, or NULL; one
 * still waiting for its history only if `pending`. */
static membership_t *member_of(chat_conn_t *cc, const char *name, int pending) {
  size_t i;
  for (i = 0; name && i < cc->n; i++)
    if (strcmp(cc->in[i].room->name, name) == 0) return pending || !cc->in[i].pending ? &cc->in[i] : NULL;
  return NULL;
}

static void leave(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, membership_t *m) {
  chat_room_t *r = m->room;
  char nick[NAME_MAX_LEN + 1];
  snprintf(nick, sizeof(nick), "%s", m->nick);
  *m = cc->in[--cc->n];
  uv_mutex_lock(&r->lock);
  chat_room_remove_member(r, nick, 0);
  uvws_unsubscribe(c, r->topic);
  /* Published even to an empty room: other instances may have members. */
  announce(uvws_conn_server(c), app, r, nick, 0);
  uv_mutex_unlock(&r->lock);
  chat_rooms_release(&app->rooms, r);
}

/* The room's last lines: the ring, and before it what the log read from
 * Redis has (both in id order; every line is up to r->last_seq). */
static json_t *history_json(const chat_room_t *r, const uvws_seq_entry_t *log, size_t nlog) {
  json_t *arr = json_array();
  uint64_t first = r->hist_len ? r->hist_seq[r->hist_head] : UINT64_MAX;
  size_t i, older = 0, skip;
  for (i = 0; i < nlog; i++)
    if (log[i].seq < first) older++;
  skip = older + r->hist_len > r->hist_cap ? older + r->hist_len - r->hist_cap : 0;
  for (i = 0; i < nlog && log[i].seq < first; i++) {
    json_t *m = i >= skip ? json_loadb(log[i].data, log[i].len, 0, NULL) : NULL;
    if (m) json_array_append_new(arr, m);
  }
  for (i = 0; i < r->hist_len; i++) {
    json_t *m = older + i >= skip ? json_loads(r->history[(r->hist_head + i) % r->hist_cap], 0, NULL) : NULL;
    if (m) json_array_append_new(arr, m);
  }
  return arr;
}

/* The newcomer hears the room's state, then everything after it: under the
 * room's lock, so each line reaches it once, in `history` or live. Lines
 * the log read found that this instance has not delivered yet (they are
 * on their way) are delivered now, to everyone; their copy from Redis is
 * then dropped as already seen. */
static void complete_join(uvws_conn_t *c, chat_app_t *app, membership_t *m, const uvws_seq_entry_t *log,
                          size_t nlog, int listed, const char *const *names, size_t n) {
  chat_room_t *r = m->room;
  chat_member_t *me;
  size_t i;
  uv_mutex_lock(&r->lock);
  for (i = 0; i < nlog; i++)
    chat_lines_arrived(&app->lines, uvws_conn_server(c), r, log[i].seq, log[i].data, log[i].len);
  announce(uvws_conn_server(c), app, r, m->nick, 1);
  if (listed && (me = local_entry(r, m->nick)) != NULL) me->stored = 1;
  send_json(c, json_pack("{s:s, s:s, s:s, s:o, s:o}", "type", "joined", "room", r->name, "nick", m->nick,
                         "members", members_json(r, listed, names, n), "history", history_json(r, log, nlog)));
  i = uvws_subscribe(c, r->topic) != 0;
  uv_mutex_unlock(&r->lock);
  if (i) error_msg(c, "internal", "cannot subscribe");
}

static void pending_unlink(chat_app_t *app, pending_join_t *pj) {
  uv_mutex_lock(&app->pending_lock);
  if (pj->prev) pj->prev->next = pj->next;
  else app->pending = pj->next;
  if (pj->next) pj->next->prev = pj->prev;
  uv_mutex_unlock(&app->pending_lock);
}

static void pending_free(pending_join_t *pj) {
  size_t i;
  for (i = 0; i < pj->nlog; i++) free((char *)(uintptr_t)pj->log[i].data);
  free(pj->log);
  free(pj);
}

/* The last answer: the join completes (with the list if `listed`); or,
 * if its connection closed meanwhile or another instance has the nick
 * (`taken`), its nick, entry and room go back. */
static void finish_join(pending_join_t *pj, int listed, int taken, const char *const *names, size_t n) {
  chat_app_t *app = pj->app;
  chat_conn_t *cc = pj->conn ? uvws_conn_get_data(pj->conn) : NULL;
  size_t i;
  pending_unlink(app, pj);
  for (i = 0; cc && i < cc->n && cc->in[i].pending != pj; i++) {
  }
  if (cc && i < cc->n && taken) {
    cc->in[i] = cc->in[--cc->n]; /* the membership ends: nobody heard of it */
    error_msg(pj->conn, "nick_taken", "someone in this room has that nick");
    pj->conn = NULL, pj->stored = 0;
  }
  if (pj->conn == NULL) {
    char *bye = pj->stored ? presence_text(pj->room, pj->nick, "leave") : NULL;
    uv_mutex_lock(&pj->room->lock);
    chat_room_remove_member(pj->room, pj->nick, 0);
    /* Nobody here heard it join; the others did if it was stored. */
    if (bye) uvws_presence_leave(pj->srv, pj->room->topic, pj->nick, bye);
    uv_mutex_unlock(&pj->room->lock);
    free(bye);
    chat_rooms_release(&app->rooms, pj->room);
    pending_free(pj);
    return;
  }
  if (i < cc->n) {
    cc->in[i].pending = NULL;
    complete_join(pj->conn, app, &cc->in[i], pj->log, pj->nlog, listed, names, n);
  }
  pending_free(pj);
}

/* The names Redis holds for the room on other instances, on the
 * connection's loop, at their place among the presence events: the
 * newcomer is subscribed at once, so it hears every later one. Or the
 * nick is another instance's member's: the join is refused. */
static void on_members(uvws_server_t *srv, int status, const char *const *names, size_t n, void *user) {
  (void)srv;
  finish_join(user, status == 0, status == UVWS_ETAKEN, names, n);
}

/* Stores the newcomer in the room's presence in Redis (announced to the
 * other instances) and asks for the others' names. 1 if the join now
 * waits for them. */
static int ask_members(pending_join_t *pj) {
  char *hi = presence_text(pj->room, pj->nick, "join"), *bye = presence_text(pj->room, pj->nick, "leave");
  int e = hi && bye ? uvws_presence_join(pj->srv, pj->room->topic, pj->nick, hi, bye, on_members, pj) : UV_ENOMEM;
  free(hi);
  free(bye);
  pj->stored = e == 0;
  return e == 0;
}

/* The log read's answer, on the connection's loop: its lines are kept
 * for the "joined" reply, then the members are asked for. */
static void on_history(uvws_server_t *srv, int status, const uvws_seq_entry_t *log, size_t n, void *user) {
  pending_join_t *pj = user;
  size_t i;
  (void)srv;
  if (status != 0) fprintf(stderr, "chat: history of %s not read from Redis: %s\n", pj->room->name,
                           uvws_strerror(status));
  if (status == 0 && n && (pj->log = calloc(n, sizeof(*pj->log))) != NULL) {
    for (i = 0; i < n; i++) {
      char *copy = malloc(log[i].len ? log[i].len : 1);
      if (copy == NULL) break;
      memcpy(copy, log[i].data, log[i].len);
      pj->log[i] = log[i];
      pj->log[i].data = copy;
      pj->nlog++;
    }
  }
  if (pj->conn == NULL || !ask_members(pj)) finish_join(pj, 0, 0, NULL, 0);
}

/* With Redis, a join first reads the room's last lines from its log, so a
 * newcomer's history holds what was said before this instance knew of the
 * room, then the members of the other instances. Returns 1 if the join
 * now waits for an answer. */
static int ask_redis(uvws_conn_t *c, chat_app_t *app, membership_t *m) {
  pending_join_t *pj;
  int waiting;
  if (!app->redis || (pj = calloc(1, sizeof(*pj))) == NULL) return 0;
  pj->app = app, pj->srv = uvws_conn_server(c), pj->conn = c, pj->room = m->room;
  snprintf(pj->nick, sizeof(pj->nick), "%s", m->nick);
  uv_mutex_lock(&app->pending_lock);
  pj->next = app->pending;
  if (pj->next) pj->next->prev = pj;
  app->pending = pj;
  uv_mutex_unlock(&app->pending_lock);
  waiting = app->rooms.history > 0 && uvws_redis_range(pj->srv, m->room->topic, 0, app->rooms.history, on_history, pj) == 0;
  if (!waiting) waiting = ask_members(pj);
  if (!waiting) { /* Redis is down: what this instance knows */
    pending_unlink(app, pj);
    pending_free(pj);
    return 0;
  }
  m->pending = pj;
  return 1;
}

/* Every refusal is decided before the room is looked up, or undone by
 * releasing it: a refused join leaves nothing behind. */
static void on_join(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, const char *room, const char *nick) {
  chat_room_t *r;
  membership_t *m;
  const char *code = NULL, *why = NULL;
  if (!valid_name(room) || !valid_name(nick))
    return error_msg(c, "invalid_name", "room and nick: 1-32 of A-Z a-z 0-9 _ . -");
  if (member_of(cc, room, 1)) return error_msg(c, "already_joined", "already in this room");
  if (cc->n == MAX_ROOMS_PER_CONN) return error_msg(c, "too_many_rooms", "leave a room first");
  if ((r = chat_rooms_hold(&app->rooms, room)) == NULL) return error_msg(c, "internal", "out of memory");
  uv_mutex_lock(&r->lock);
  if (chat_room_nick_taken(r, nick)) {
    code = "nick_taken", why = "someone in this room has that nick";
  } else if (chat_room_add_member(r, nick, 0) != 0) {
    code = "internal", why = "out of memory";
  }
  uv_mutex_unlock(&r->lock);
  if (code) {
    chat_rooms_release(&app->rooms, r);
    return error_msg(c, code, why);
  }
  /* The nick is the newcomer's now; the reference taken above is the
   * membership's. */
  m = &cc->in[cc->n++];
  m->room = r;
  m->pending = NULL;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  if (!ask_redis(c, app, m)) complete_join(c, app, m, NULL, 0, 0, NULL, 0);
}

/* With Redis: the line without its id goes to Redis, which gives it one
 * (the room's next number) and sends it back to every instance. */
static void send_ordered(uvws_conn_t *c, chat_app_t *app, membership_t *m, const char *text) {
  json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "message", "room", m->room->name, "nick",
                          m->nick, "text", text, "ts", (json_int_t)now_ms());
  char *obj = msg ? json_dumps(msg, JSON_COMPACT) : NULL, *head = NULL;
  size_t n = obj ? strlen(obj) : 0;
  int r = UV_ENOMEM;
  json_decref(msg);
  /* {...,"ts":T} becomes the head {...,"ts":T,"id": and the tail } */
  if (n >= 2 && obj[n - 1] == '}' && (head = malloc(n + 5)) != NULL) {
    memcpy(head, obj, n - 1);
    memcpy(head + n - 1, ",\"id\":", 6);
    r = uvws_publish_sequenced(uvws_conn_server(c), m->room->topic, head, n + 5, "}", 1, app->rooms.history);
  }
  free(obj);
  free(head);
  if (r == UVWS_EUNAVAILABLE) return error_msg(c, "redis_down", "Redis is unreachable: the line was not sent");
  if (r != 0) error_msg(c, "internal", "the line was not sent");
}

static void on_send(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, const char *room, const char *text) {
  membership_t *m = member_of(cc, room, 0);
  chat_room_t *r;
  json_t *msg;
  char *serial;
  uint64_t id;
  if (m == NULL) return error_msg(c, "not_joined", "join the room first");
  if (strlen(text) > TEXT_MAX_LEN) return error_msg(c, "too_long", "text over 4096 bytes");
  if (app->redis) return send_ordered(c, app, m, text);
  r = m->room;
  uv_mutex_lock(&r->lock);
  id = r->next_id++;
  msg = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "type", "message", "room", r->name, "nick", m->nick,
                  "text", text, "id", (json_int_t)id, "ts", (json_int_t)now_ms());
  serial = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  if (serial) {
    uvws_publish(uvws_conn_server(c), r->topic, UVWS_OP_TEXT, serial, strlen(serial));
    chat_room_history_add(r, serial, id);
  }
  uv_mutex_unlock(&r->lock);
  if (serial == NULL) error_msg(c, "internal", "out of memory");
}

static void chat_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  chat_app_t *app = uvws_conn_route_data(c);
  chat_conn_t *cc = uvws_conn_get_data(c);
  json_error_t jerr;
  json_t *req;
  const char *type = NULL, *room = NULL, *nick = NULL, *text = NULL;

  if (cc == NULL) return;
  if (op != UVWS_OP_TEXT) return error_msg(c, "bad_request", "messages are JSON text");
  req = json_loadb(data, len, 0, &jerr);
  if (req == NULL || !json_is_object(req)) {
    json_decref(req);
    return error_msg(c, "bad_json", "not a JSON object");
  }
  json_unpack(req, "{s?s, s?s, s?s, s?s}", "type", &type, "room", &room, "nick", &nick, "text", &text);
  if (type == NULL) {
    error_msg(c, "bad_request", "missing type");
  } else if (strcmp(type, "join") == 0) {
    if (room && nick) on_join(c, app, cc, room, nick);
    else error_msg(c, "bad_request", "join needs room and nick");
  } else if (strcmp(type, "leave") == 0) {
    membership_t *m = member_of(cc, room, 0);
    if (m) leave(c, app, cc, m);
    else error_msg(c, "not_joined", "not in this room");
  } else if (strcmp(type, "send") == 0) {
    if (room && text) on_send(c, app, cc, room, text);
    else error_msg(c, "bad_request", "send needs room and text");
  } else {
    error_msg(c, "unknown_type", "type must be join, leave or send");
  }
  json_decref(req);
}

/* With Redis every chat connection hears of the link's state on this
 * topic: {"type":"status","redis":"down"} when it is lost (sends are
 * refused until it is back), {"type":"status","redis":"up"} when it is. */
#define STATUS_TOPIC "chat-status"

static void status_json(uvws_conn_t *c, uvws_server_t *srv, int up) {
  char text[40];
  snprintf(text, sizeof(text), "{\"type\":\"status\",\"redis\":\"%s\"}", up ? "up" : "down");
  if (c) uvws_send_text(c, text);
  else uvws_publish_local(srv, STATUS_TOPIC, UVWS_OP_TEXT, text, strlen(text));
}

static void chat_open(uvws_conn_t *c) {
  chat_app_t *app = uvws_conn_route_data(c);
  uvws_conn_set_data(c, calloc(1, sizeof(chat_conn_t)));
  if (!app->redis) return;
  if (uvws_subscribe(c, STATUS_TOPIC) != 0) fprintf(stderr, "chat: %s misses Redis status\n", uvws_conn_peer(c));
  if (!uvws_server_redis_up(uvws_conn_server(c))) status_json(c, NULL, 0);
}

static void chat_close(uvws_conn_t *c, int code, const char *reason, size_t reason_len) {
  chat_app_t *app = uvws_conn_route_data(c);
  chat_conn_t *cc = uvws_conn_get_data(c);
  (void)code, (void)reason, (void)reason_len;
  if (cc == NULL) return;
  while (cc->n > 0) {
    membership_t *m = &cc->in[cc->n - 1];
    if (m->pending) { /* on_history gives its room back */
      m->pending->conn = NULL;
      cc->n--;
    } else {
      leave(c, app, cc, m);
    }
  }
  free(cc);
}

/* A line back from Redis with its place (primary's loop): delivered to
 * this instance's members once, in id order, and kept in the history. */
static void chat_sequenced(uvws_server_t *srv, const char *topic, size_t topic_len, uint64_t seq,
                           const char *data, size_t len, void *user) {
  chat_app_t *app = user;
  char name[NAME_MAX_LEN + 1];
  chat_room_t *r;
  if (topic_len < 6 || topic_len - 5 > NAME_MAX_LEN || memcmp(topic, "chat:", 5) != 0) return;
  memcpy(name, topic + 5, topic_len - 5);
  name[topic_len - 5] = '\0';
  if (!valid_name(name) || (r = chat_rooms_hold(&app->rooms, name)) == NULL) return;
  uv_mutex_lock(&r->lock);
  chat_lines_arrived(&app->lines, srv, r, seq, data, len);
  uv_mutex_unlock(&r->lock);
  chat_rooms_release(&app->rooms, r);
}

/* Another instance's presence event or message (primary's loop). A remote
 * member holds its room like a local one. */
static void chat_remote(uvws_server_t *srv, const char *topic, size_t topic_len, uvws_opcode_t op,
                        const void *data, size_t len, void *user) {
  chat_app_t *app = user;
  json_t *obj;
  const char *type = NULL, *room = NULL, *nick = NULL, *event = NULL;
  chat_room_t *r;
  int keep = 0, gone = 0;
  (void)srv;
  if (op != UVWS_OP_TEXT || topic_len < 6 || memcmp(topic, "chat:", 5) != 0) return;
  if ((obj = json_loadb(data, len, 0, NULL)) == NULL) return;
  json_unpack(obj, "{s?s, s?s, s?s, s?s}", "type", &type, "room", &room, "nick", &nick, "event", &event);
  if (type == NULL || !valid_name(room) || !valid_name(nick)) goto out;
  if ((r = chat_rooms_hold(&app->rooms, room)) == NULL) goto out;
  uv_mutex_lock(&r->lock);
  if (strcmp(type, "presence") == 0 && event && strcmp(event, "join") == 0) {
    keep = !chat_room_nick_taken(r, nick) && chat_room_add_member(r, nick, 1) == 0;
  } else if (strcmp(type, "presence") == 0 && event && strcmp(event, "leave") == 0) {
    gone = chat_room_remove_member(r, nick, 1);
  }
  uv_mutex_unlock(&r->lock);
  if (!keep) chat_rooms_release(&app->rooms, r);
  if (gone) chat_rooms_release(&app->rooms, r); /* the reference that member held */
out:
  json_decref(obj);
}

/* How a pass over this instance's members went (rejoin_all). */
typedef struct {
  int buried;    /* their entries were buried: every one is told again */
  size_t failed; /* not sent: Redis gone again, or too busy */
} rejoin_t;

/* Stores a member of this instance in the room's presence in Redis again,
 * under its room's lock. One whose join was stored before is restored:
 * told to the others only if its entry was buried (they heard it leave),
 * not if Redis lost it (a restart: they still list it). One that joined
 * while Redis was away is told now. */
static void rejoin(uvws_server_t *srv, chat_room_t *r, chat_member_t *m, rejoin_t *how) {
  char *hi = presence_text(r, m->nick, "join"), *bye = presence_text(r, m->nick, "leave");
  int e = UV_ENOMEM;
  if (hi && bye && m->stored && !how->buried) e = uvws_presence_restore(srv, r->topic, m->nick, hi, bye);
  else if (hi && bye) e = uvws_presence_join(srv, r->topic, m->nick, hi, bye, NULL, NULL);
  if (e == 0) m->stored = 1;
  else how->failed++;
  free(hi);
  free(bye);
}

/* Every member of this instance, room by room (primary's loop). */
static void rejoin_all(chat_app_t *app, uvws_server_t *srv, int buried) {
  rejoin_t how = {buried, 0};
  size_t n, i;
  chat_room_t **all = chat_rooms_hold_all(&app->rooms, &n);
  for (i = 0; i < n; i++) {
    chat_member_t *m;
    uv_mutex_lock(&all[i]->lock);
    for (m = all[i]->member_list; m; m = m->next)
      if (!m->remote) rejoin(srv, all[i], m, &how);
    uv_mutex_unlock(&all[i]->lock);
  }
  for (i = 0; i < n; i++) chat_rooms_release(&app->rooms, all[i]);
  free(all);
  if (how.failed)
    fprintf(stderr, "chat: %zu members not stored again in Redis (link lost or too busy)\n", how.failed);
}

/* This instance was cut off from Redis longer than its heartbeat, and its
 * members' entries were buried, their leaves told to the others: they are
 * still here, so they join again, for the other instances only. */
static void chat_buried(uvws_server_t *srv, void *user) {
  rejoin_all(user, srv, 1);
}

/* When the link is back, the lines other instances published meanwhile
 * are read back (chat_lines.c), and every member of this instance is
 * stored again (see rejoin): those that joined while it was down are then
 * announced to the others, the rest only if this instance was buried
 * meanwhile. */
static void chat_redis_state(uvws_server_t *srv, int up, void *user) {
  chat_app_t *app = user;
  if (up) chat_lines_catch_up(&app->lines, srv); /* lines published meanwhile are read back */
  status_json(NULL, srv, up);
  if (up) rejoin_all(app, srv, 0);
}

static const char *const chat_protocols[] = {"uvws-chat", NULL};

int uvws_app_chat(uvws_server_t *srv, const char *path, size_t history, unsigned presence_ttl_s,
                  void **handle) {
  uvws_route_t route = {0};
  chat_app_t *app = calloc(1, sizeof(*app));
  int r;
  *handle = NULL;
  if (app == NULL) return UV_ENOMEM;
  if ((r = chat_rooms_init(&app->rooms, history)) != 0) {
    free(app);
    return r;
  }
  if ((r = uv_mutex_init(&app->pending_lock)) != 0) {
    chat_rooms_free(&app->rooms);
    free(app);
    return r;
  }
  if ((r = chat_lines_init(&app->lines, &app->rooms)) != 0) {
    uv_mutex_destroy(&app->pending_lock);
    chat_rooms_free(&app->rooms);
    free(app);
    return r;
  }
  route.path = path;
  route.handlers.on_open = chat_open;
  route.handlers.on_message = chat_message;
  route.handlers.on_close = chat_close;
  route.subprotocols = chat_protocols;
  route.user = app;
  /* A chat line that cannot be delivered is better lost for one slow
   * member than holding up, or disconnecting, anyone. */
  route.drop_on_backpressure = 1;
  r = uvws_server_route(srv, &route);
  if (r == 0 && uvws_server_on_remote(srv, chat_remote, app) == 0)
    app->redis = uvws_server_on_sequenced(srv, chat_sequenced, app) == 0 &&
                 uvws_server_on_redis_state(srv, chat_redis_state, app) == 0 &&
                 uvws_server_on_wills(srv, presence_ttl_s * 1000u, NULL, chat_buried, app) == 0;
  if (r != 0) {
    chat_lines_free(&app->lines);
    uv_mutex_destroy(&app->pending_lock);
    chat_rooms_free(&app->rooms);
    free(app);
  } else {
    *handle = app;
  }
  return r;
}

void uvws_app_chat_free(void *handle) {
  chat_app_t *app = handle;
  if (app == NULL) return;
  /* Joins whose answer never came (the server stopped first). */
  while (app->pending) {
    pending_join_t *pj = app->pending;
    app->pending = pj->next;
    pending_free(pj);
  }
  chat_lines_free(&app->lines);
  uv_mutex_destroy(&app->pending_lock);
  chat_rooms_free(&app->rooms);
  free(app);
}

/* The /chat route: rooms on uvws's publish/subscribe, a small JSON protocol
 * (README, "Chat"), built with jansson. Written against the public header
 * only. Each room is the topic "chat:<room>"; a message is serialised once
 * and published, so every member's connection shares one frame.
 *
 * Ownership: the app owns its rooms (a list) and each connection's state
 * (uvws_conn_set_data); a room lives while it has members.
 *
 * Threads: with --threads the handlers run on every loop, so rooms are
 * shared state under one lock. Publishing happens under it too: the order
 * of ids, of the history and of publishes is then the same, and since a
 * subscription only receives what was published after it began, a newcomer
 * gets each message exactly once, either in "history" or live.
 *
 * Instances (--redis): messages and presence events cross through Redis;
 * uvws_server_on_remote() shows us the other instances' ones, so members
 * and history include them (from the moment this instance was connected).
 * Ids must stay unique per room across instances without asking anyone:
 * id = counter << 16 | tag, a Lamport counter (always past every id seen in
 * the room) and this instance's random 16-bit tag; a tag seen from another
 * instance is redrawn. Without Redis the tag is 0 and ids are 1, 2, 3... */
#include "apps.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN 32
#define TEXT_MAX_LEN 4096
#define MAX_ROOMS_PER_CONN 16
#define ABUSE_LIMIT 10 /* errors before the connection is closed with 1008 */

typedef struct member_s {
  struct member_s *next;
  int remote; /* on another instance */
  char nick[NAME_MAX_LEN + 1];
} member_t;

typedef struct chat_room_s {
  struct chat_room_s *next;
  char name[NAME_MAX_LEN + 1];
  char topic[NAME_MAX_LEN + 6];
  uint64_t next_id;      /* the counter part of the next id */
  size_t members;        /* local members; remote ones are only in the list */
  member_t *member_list; /* owned, newest first */
  char **history;        /* ring of serialised "message" objects, owned */
  size_t hist_len, hist_head;
} chat_room_t;

typedef struct {
  uv_mutex_t lock; /* rooms and everything in them */
  chat_room_t *rooms;
  size_t history; /* messages kept per room */
  unsigned tag;   /* 1-65535 with Redis, else 0 */
} chat_app_t;

typedef struct {
  chat_room_t *room;
  char nick[NAME_MAX_LEN + 1];
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

static void publish_json(uvws_server_t *srv, const chat_room_t *r, json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT);
  if (text) {
    uvws_publish(srv, r->topic, UVWS_OP_TEXT, text, strlen(text));
    free(text);
  }
  json_decref(obj);
}

static void error_msg(uvws_conn_t *c, const char *code, const char *message) {
  chat_conn_t *cc = uvws_conn_get_data(c);
  send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message));
  if (cc && ++cc->errors >= ABUSE_LIMIT) uvws_close(c, UVWS_CLOSE_POLICY, "too many errors");
}

static chat_room_t *find_room(chat_app_t *app, const char *name, int create) {
  chat_room_t *r;
  for (r = app->rooms; r; r = r->next)
    if (strcmp(r->name, name) == 0) return r;
  if (!create || (r = calloc(1, sizeof(*r))) == NULL) return NULL;
  if (app->history && (r->history = calloc(app->history, sizeof(char *))) == NULL) {
    free(r);
    return NULL;
  }
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->topic, sizeof(r->topic), "chat:%s", name);
  r->next_id = 1;
  r->next = app->rooms;
  app->rooms = r;
  return r;
}

static void drop_room(chat_app_t *app, chat_room_t *r) {
  chat_room_t **p;
  size_t i;
  for (p = &app->rooms; *p; p = &(*p)->next) {
    if (*p != r) continue;
    *p = r->next;
    while (r->member_list) {
      member_t *m = r->member_list;
      r->member_list = m->next;
      free(m);
    }
    for (i = 0; i < r->hist_len; i++) free(r->history[(r->hist_head + i) % app->history]);
    free(r->history);
    free(r);
    return;
  }
}

static void members_add(chat_room_t *r, const char *nick, int remote) {
  member_t *m = calloc(1, sizeof(*m));
  if (m == NULL) return;
  m->remote = remote;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  m->next = r->member_list;
  r->member_list = m;
}

static void members_remove(chat_room_t *r, const char *nick, int remote) {
  member_t **p;
  for (p = &r->member_list; *p; p = &(*p)->next) {
    if ((*p)->remote == remote && strcmp((*p)->nick, nick) == 0) {
      member_t *m = *p;
      *p = m->next;
      free(m);
      return;
    }
  }
}

static int nick_taken(const chat_room_t *r, const char *nick) {
  const member_t *m;
  for (m = r->member_list; m; m = m->next)
    if (strcmp(m->nick, nick) == 0) return 1;
  return 0;
}

static json_t *members_json(const chat_room_t *r) {
  json_t *arr = json_array();
  const member_t *m;
  for (m = r->member_list; m; m = m->next) json_array_append_new(arr, json_string(m->nick));
  return arr;
}

static membership_t *member_of(chat_conn_t *cc, const chat_room_t *r) {
  size_t i;
  for (i = 0; i < cc->n; i++)
    if (cc->in[i].room == r) return &cc->in[i];
  return NULL;
}

static void leave(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, membership_t *m, int announce) {
  chat_room_t *r = m->room;
  char nick[NAME_MAX_LEN + 1];
  snprintf(nick, sizeof(nick), "%s", m->nick);
  members_remove(r, nick, 0);
  uvws_unsubscribe(c, r->topic);
  *m = cc->in[--cc->n];
  if (--r->members == 0 && r->member_list == NULL) {
    drop_room(app, r);
    return;
  }
  if (announce)
    publish_json(uvws_conn_server(c), r,
                 json_pack("{s:s, s:s, s:s, s:s}", "type", "presence", "room", r->name, "nick", nick,
                           "event", "leave"));
}

static json_t *history_json(const chat_app_t *app, const chat_room_t *r) {
  json_t *arr = json_array();
  size_t i;
  for (i = 0; i < r->hist_len; i++) {
    json_t *m = json_loads(r->history[(r->hist_head + i) % app->history], 0, NULL);
    if (m) json_array_append_new(arr, m);
  }
  return arr;
}

static void on_join(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, const char *room, const char *nick) {
  chat_room_t *r;
  membership_t *m;
  if (!valid_name(room) || !valid_name(nick))
    return error_msg(c, "invalid_name", "room and nick: 1-32 of A-Z a-z 0-9 _ . -");
  r = find_room(app, room, 1);
  if (r == NULL) return error_msg(c, "internal", "out of memory");
  if (member_of(cc, r)) return error_msg(c, "already_joined", "already in this room");
  if (cc->n == MAX_ROOMS_PER_CONN) return error_msg(c, "too_many_rooms", "leave a room first");
  if (nick_taken(r, nick)) {
    if (r->member_list == NULL) drop_room(app, r);
    return error_msg(c, "nick_taken", "someone in this room has that nick");
  }
  /* Others hear of the newcomer; the newcomer gets the room's state. */
  publish_json(uvws_conn_server(c), r,
               json_pack("{s:s, s:s, s:s, s:s}", "type", "presence", "room", r->name, "nick", nick, "event",
                         "join"));
  members_add(r, nick, 0);
  r->members++;
  m = &cc->in[cc->n++];
  m->room = r;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  send_json(c, json_pack("{s:s, s:s, s:s, s:o, s:o}", "type", "joined", "room", r->name, "nick", nick,
                         "members", members_json(r), "history", history_json(app, r)));
  if (uvws_subscribe(c, r->topic) != 0) error_msg(c, "internal", "cannot subscribe");
}

/* The ring keeps the last N serialised messages; takes `serial`. */
static void history_add(chat_app_t *app, chat_room_t *r, char *serial) {
  size_t slot;
  if (app->history == 0) {
    free(serial);
    return;
  }
  slot = (r->hist_head + r->hist_len) % app->history;
  if (r->hist_len == app->history) {
    free(r->history[r->hist_head]);
    r->hist_head = (r->hist_head + 1) % app->history;
    slot = (r->hist_head + r->hist_len - 1) % app->history;
  } else {
    r->hist_len++;
  }
  r->history[slot] = serial;
}

static void on_send(uvws_conn_t *c, chat_app_t *app, chat_conn_t *cc, const char *room, const char *text) {
  chat_room_t *r = valid_name(room) ? find_room(app, room, 0) : NULL;
  membership_t *m = r ? member_of(cc, r) : NULL;
  json_t *msg;
  char *serial;
  if (m == NULL) return error_msg(c, "not_joined", "join the room first");
  if (strlen(text) > TEXT_MAX_LEN) return error_msg(c, "too_long", "text over 4096 bytes");
  msg = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "type", "message", "room", r->name, "nick", m->nick,
                  "text", text, "id", (json_int_t)(r->next_id++ << (app->tag ? 16 : 0) | app->tag),
                  "ts", (json_int_t)now_ms());
  if (msg == NULL) return error_msg(c, "internal", "out of memory");
  serial = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (serial == NULL) return;
  uvws_publish(uvws_conn_server(c), r->topic, UVWS_OP_TEXT, serial, strlen(serial));
  history_add(app, r, serial);
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
  uv_mutex_lock(&app->lock);
  if (type == NULL) {
    error_msg(c, "bad_request", "missing type");
  } else if (strcmp(type, "join") == 0) {
    if (room && nick) on_join(c, app, cc, room, nick);
    else error_msg(c, "bad_request", "join needs room and nick");
  } else if (strcmp(type, "leave") == 0) {
    chat_room_t *r = room ? find_room(app, room, 0) : NULL;
    membership_t *m = r ? member_of(cc, r) : NULL;
    if (m) {
      leave(c, app, cc, m, 1);
    } else {
      error_msg(c, "not_joined", "not in this room");
    }
  } else if (strcmp(type, "send") == 0) {
    if (room && text) on_send(c, app, cc, room, text);
    else error_msg(c, "bad_request", "send needs room and text");
  } else {
    error_msg(c, "unknown_type", "type must be join, leave or send");
  }
  uv_mutex_unlock(&app->lock);
  json_decref(req);
}

static void chat_open(uvws_conn_t *c) { uvws_conn_set_data(c, calloc(1, sizeof(chat_conn_t))); }

static void chat_close(uvws_conn_t *c, int code, const char *reason, size_t reason_len) {
  chat_app_t *app = uvws_conn_route_data(c);
  chat_conn_t *cc = uvws_conn_get_data(c);
  (void)code, (void)reason, (void)reason_len;
  if (cc == NULL) return;
  uv_mutex_lock(&app->lock);
  while (cc->n > 0) {
    leave(c, app, cc, &cc->in[cc->n - 1], 1);
  }
  uv_mutex_unlock(&app->lock);
  free(cc);
}

static unsigned draw_tag(void) {
  uint16_t t = 0;
  while (t == 0)
    if (uv_random(NULL, NULL, &t, sizeof(t), 0, NULL) != 0) t = (uint16_t)(uv_hrtime() | 1);
  return t;
}

/* Another instance's presence event or message (primary's loop). */
static void chat_remote(uvws_server_t *srv, const char *topic, size_t topic_len, uvws_opcode_t op,
                        const void *data, size_t len, void *user) {
  chat_app_t *app = user;
  json_t *obj;
  const char *type = NULL, *room = NULL, *nick = NULL, *event = NULL;
  json_int_t id = 0;
  chat_room_t *r;
  (void)srv;
  if (op != UVWS_OP_TEXT || topic_len < 6 || memcmp(topic, "chat:", 5) != 0) return;
  if ((obj = json_loadb(data, len, 0, NULL)) == NULL) return;
  json_unpack(obj, "{s?s, s?s, s?s, s?s, s?I}", "type", &type, "room", &room, "nick", &nick, "event",
              &event, "id", &id);
  if (type == NULL || !valid_name(room) || !valid_name(nick)) goto out;
  uv_mutex_lock(&app->lock);
  r = find_room(app, room, 1);
  if (r == NULL) goto unlock;
  if (strcmp(type, "presence") == 0 && event && strcmp(event, "join") == 0) {
    if (!nick_taken(r, nick)) members_add(r, nick, 1);
  } else if (strcmp(type, "presence") == 0 && event && strcmp(event, "leave") == 0) {
    members_remove(r, nick, 1);
  } else if (strcmp(type, "message") == 0 && id > 0) {
    char *copy = malloc(len + 1);
    if ((unsigned)(id & 0xffff) == app->tag) {
      unsigned old = app->tag;
      app->tag = draw_tag();
      fprintf(stderr, "chat: another instance uses id tag %u; this one now uses %u\n", old, app->tag);
    }
    if ((uint64_t)id >> 16 >= r->next_id) r->next_id = ((uint64_t)id >> 16) + 1;
    if (copy) {
      memcpy(copy, data, len);
      copy[len] = '\0';
      history_add(app, r, copy);
    }
  }
  if (r->members == 0 && r->member_list == NULL) drop_room(app, r);
unlock:
  uv_mutex_unlock(&app->lock);
out:
  json_decref(obj);
}

static const char *const chat_protocols[] = {"uvws-chat", NULL};

int uvws_app_chat(uvws_server_t *srv, const char *path, size_t history, void **handle) {
  uvws_route_t route = {0};
  chat_app_t *app = calloc(1, sizeof(*app));
  int r;
  *handle = NULL;
  if (app == NULL) return UV_ENOMEM;
  if ((r = uv_mutex_init(&app->lock)) != 0) {
    free(app);
    return r;
  }
  app->history = history;
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
  if (r == 0 && uvws_server_on_remote(srv, chat_remote, app) == 0) app->tag = draw_tag();
  if (r != 0) {
    uv_mutex_destroy(&app->lock);
    free(app);
  } else {
    *handle = app;
  }
  return r;
}

void uvws_app_chat_free(void *handle) {
  chat_app_t *app = handle;
  if (app == NULL) return;
  while (app->rooms) drop_room(app, app->rooms);
  uv_mutex_destroy(&app->lock);
  free(app);
}

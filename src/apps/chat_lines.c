/* /chat with --redis: every line, in the room's order (see chat_lines.h). */
#include "chat_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines held behind one gap. A read answers within a round trip, so this
 * is only reached when Redis cannot answer: then the gap is given up (and
 * logged) rather than holding the room's lines, and memory, for ever. */
#define MAX_HELD 4096

struct chat_fill_s {
  chat_fill_t *next, *prev; /* in chat_lines_t.fills */
  chat_lines_t *lines;
  chat_room_t *room; /* held by this read */
};

int chat_lines_init(chat_lines_t *l, chat_rooms_t *rooms) {
  l->rooms = rooms;
  l->read_count = rooms->history > 64 ? rooms->history : 64;
  l->fills = NULL;
  return uv_mutex_init(&l->lock);
}

void chat_lines_free(chat_lines_t *l) {
  while (l->fills) {
    chat_fill_t *f = l->fills;
    l->fills = f->next;
    free(f);
  }
  uv_mutex_destroy(&l->lock);
}

void chat_lines_deliver(uvws_server_t *srv, chat_room_t *r, uint64_t seq, const char *data, size_t len) {
  char *copy;
  if (seq <= r->last_seq) return;
  r->last_seq = seq;
  uvws_publish_local(srv, r->topic, UVWS_OP_TEXT, data, len);
  if ((copy = malloc(len + 1)) != NULL) {
    memcpy(copy, data, len);
    copy[len] = '\0';
    chat_room_history_add(r, copy, seq);
  }
}

/* Room lock held. */
static void flush_held(uvws_server_t *srv, chat_room_t *r) {
  while (r->held) {
    chat_line_t *h = r->held;
    r->held = h->next;
    chat_lines_deliver(srv, r, h->seq, h->data, h->len);
    free(h);
  }
  r->held_last = NULL;
  r->nheld = 0;
}

static void fill_unlink(chat_lines_t *l, chat_fill_t *f) {
  uv_mutex_lock(&l->lock);
  if (f->prev) f->prev->next = f->next;
  else l->fills = f->next;
  if (f->next) f->next->prev = f->prev;
  uv_mutex_unlock(&l->lock);
}

static void on_fill(uvws_server_t *srv, int status, const uvws_seq_entry_t *log, size_t n, void *user);

/* Reads the lines after r->last_seq (room lock held) with the read `f`.
 * 0 once on its way: r->filling is then set until the answer. */
static int read_missed(chat_lines_t *l, uvws_server_t *srv, chat_room_t *r, chat_fill_t *f) {
  int rc;
  uv_mutex_lock(&l->lock);
  f->prev = NULL, f->next = l->fills;
  if (f->next) f->next->prev = f;
  l->fills = f;
  uv_mutex_unlock(&l->lock);
  if ((rc = uvws_redis_range(srv, r->topic, r->last_seq, l->read_count, on_fill, f)) != 0) {
    fill_unlink(l, f);
    return rc;
  }
  r->filling = 1;
  return 0;
}

/* A new read for r (room lock held, and r held by the caller, so the
 * reference given back on failure is never the last). */
static int start_read(chat_lines_t *l, uvws_server_t *srv, chat_room_t *r) {
  chat_fill_t *f = calloc(1, sizeof(*f));
  int rc;
  if (f == NULL) return UV_ENOMEM;
  f->lines = l;
  if ((f->room = chat_rooms_hold(l->rooms, r->name)) == NULL) { /* r itself */
    free(f);
    return UV_ENOMEM;
  }
  if ((rc = read_missed(l, srv, r, f)) != 0) {
    chat_rooms_release(l->rooms, r);
    free(f);
  }
  return rc;
}

/* The missed lines, read back (on the loop that asked). */
static void on_fill(uvws_server_t *srv, int status, const uvws_seq_entry_t *log, size_t n, void *user) {
  chat_fill_t *f = user;
  chat_lines_t *l = f->lines;
  chat_room_t *r = f->room;
  size_t i;
  fill_unlink(l, f);
  uv_mutex_lock(&r->lock);
  r->filling = 0;
  if (status != 0) {
    /* The link went again: the held lines wait for the next line or for
     * the link's return, which read again. */
    uvws_log(UVWS_LOG_WARN, "chat: %s: missed lines not read back yet: %s", r->name, uvws_strerror(status));
  } else {
    for (i = 0; i < n; i++) chat_lines_deliver(srv, r, log[i].seq, log[i].data, log[i].len);
    /* A full answer may have more behind it: read on, with the same hold. */
    if (n == l->read_count && read_missed(l, srv, r, f) == 0) {
      uv_mutex_unlock(&r->lock);
      return;
    }
    /* What is still missing is not in the stream (trimmed by MAXLEN, or a
     * Redis restart that lost it and restarted the counter). */
    if (r->held && r->held->seq > r->last_seq + 1)
      uvws_log(UVWS_LOG_WARN, "chat: %s: lines %llu to %llu are not in the room's log (trimmed to about "
               "--chat-history lines, or Redis restarted without them): not delivered here", r->name,
               (unsigned long long)r->last_seq + 1, (unsigned long long)r->held->seq - 1);
    flush_held(srv, r);
  }
  uv_mutex_unlock(&r->lock);
  chat_rooms_release(l->rooms, r);
  free(f);
}

static void hold(uvws_server_t *srv, chat_room_t *r, uint64_t seq, const char *data, size_t len) {
  chat_line_t *h;
  if (r->nheld >= MAX_HELD || (h = malloc(sizeof(*h) + len)) == NULL) {
    uvws_log(UVWS_LOG_ERROR, "chat: %s: %zu held lines, the lines missed before them are given up",
             r->name, r->nheld);
    flush_held(srv, r);
    chat_lines_deliver(srv, r, seq, data, len);
    return;
  }
  h->next = NULL, h->seq = seq, h->len = len;
  memcpy(h->data, data, len);
  if (r->held_last) r->held_last->next = h;
  else r->held = h;
  r->held_last = h;
  r->nheld++;
}

void chat_lines_arrived(chat_lines_t *l, uvws_server_t *srv, chat_room_t *r, uint64_t seq, const char *data,
                        size_t len) {
  if (seq <= r->last_seq) return;
  if (r->filling) {
    hold(srv, r, seq, data, len);
    return;
  }
  /* One counter per room: anything but the next number is a gap (or a
   * counter Redis restarted, which the read shows as nothing to add). */
  if (r->last_seq != 0 && seq != r->last_seq + 1) {
    if (start_read(l, srv, r) == 0) {
      hold(srv, r, seq, data, len);
      return;
    }
    uvws_log(UVWS_LOG_ERROR, "chat: %s: lines %llu to %llu missed and not read back", r->name,
             (unsigned long long)r->last_seq + 1, (unsigned long long)seq - 1);
  }
  flush_held(srv, r);
  chat_lines_deliver(srv, r, seq, data, len);
}

void chat_lines_catch_up(chat_lines_t *l, uvws_server_t *srv) {
  size_t n, i;
  chat_room_t **all = chat_rooms_hold_all(l->rooms, &n);
  for (i = 0; i < n; i++) {
    chat_room_t *r = all[i];
    uv_mutex_lock(&r->lock);
    if (!r->filling && r->last_seq != 0 && start_read(l, srv, r) != 0)
      uvws_log(UVWS_LOG_ERROR, "chat: %s: lines missed while the link was down not read back", r->name);
    uv_mutex_unlock(&r->lock);
  }
  for (i = 0; i < n; i++) chat_rooms_release(l->rooms, all[i]);
  free(all);
}

/* /chat's room table (see chat_rooms.h): chained buckets that double when
 * the rooms outnumber them and halve when a quarter would do, so a join
 * costs the same with 30 000 rooms as with 3 and the table shrinks back
 * once they are gone. */
#include "chat_rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 64

/* Routes see only uvws.h, so the room names get a hash of their own
 * (multiplicative, 31 as in many string tables; names are at most 32
 * bytes of a small alphabet). */
static uint32_t name_hash(const char *s, size_t n) {
  uint32_t h = 5381;
  size_t i;
  for (i = 0; i < n; i++) h = h * 31u + (unsigned char)s[i];
  return h ^ (h >> 15);
}

int chat_rooms_init(chat_rooms_t *t, size_t history) {
  int r;
  memset(t, 0, sizeof(*t));
  if ((t->buckets = calloc(MIN_BUCKETS, sizeof(*t->buckets))) == NULL) return UV_ENOMEM;
  if ((r = uv_mutex_init(&t->lock)) != 0) {
    free(t->buckets);
    return r;
  }
  t->nbuckets = MIN_BUCKETS;
  t->history = history;
  return 0;
}

static void room_free(chat_room_t *r) {
  size_t i;
  while (r->member_list) {
    chat_member_t *m = r->member_list;
    r->member_list = m->next;
    free(m);
  }
  while (r->held) {
    chat_line_t *l = r->held;
    r->held = l->next;
    free(l);
  }
  for (i = 0; i < r->hist_len; i++) free(r->history[(r->hist_head + i) % r->hist_cap]);
  free(r->history);
  free(r->hist_seq);
  uv_mutex_destroy(&r->lock);
  free(r);
}

void chat_rooms_free(chat_rooms_t *t) {
  size_t i;
  for (i = 0; i < t->nbuckets; i++) {
    while (t->buckets[i]) {
      chat_room_t *r = t->buckets[i];
      t->buckets[i] = r->next;
      room_free(r);
    }
  }
  free(t->buckets);
  uv_mutex_destroy(&t->lock);
}

/* Rehashes into `n` buckets; on no memory the table stays as it is (only
 * slower). Table lock held. */
static void resize(chat_rooms_t *t, size_t n) {
  chat_room_t **b = calloc(n, sizeof(*b));
  size_t i;
  if (b == NULL) return;
  for (i = 0; i < t->nbuckets; i++) {
    while (t->buckets[i]) {
      chat_room_t *r = t->buckets[i];
      t->buckets[i] = r->next;
      r->next = b[r->hash & (n - 1)];
      b[r->hash & (n - 1)] = r;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
}

static chat_room_t *room_new(const chat_rooms_t *t, const char *name, uint32_t hash) {
  chat_room_t *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  if (t->history && ((r->history = calloc(t->history, sizeof(char *))) == NULL ||
                     (r->hist_seq = calloc(t->history, sizeof(uint64_t))) == NULL)) {
    free(r->history);
    free(r);
    return NULL;
  }
  if (uv_mutex_init(&r->lock) != 0) {
    free(r->history);
    free(r->hist_seq);
    free(r);
    return NULL;
  }
  r->hist_cap = t->history;
  r->hash = hash;
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->topic, sizeof(r->topic), "chat:%s", name);
  r->next_id = 1;
  return r;
}

chat_room_t **chat_rooms_hold_all(chat_rooms_t *t, size_t *n) {
  chat_room_t **all, *r;
  size_t i, k = 0;
  uv_mutex_lock(&t->lock);
  all = t->count ? malloc(t->count * sizeof(*all)) : NULL;
  for (i = 0; all && i < t->nbuckets; i++)
    for (r = t->buckets[i]; r; r = r->next) {
      r->refs++;
      all[k++] = r;
    }
  uv_mutex_unlock(&t->lock);
  *n = k;
  return all;
}

chat_room_t *chat_rooms_hold(chat_rooms_t *t, const char *name) {
  size_t n = strlen(name);
  uint32_t h = name_hash(name, n);
  chat_room_t *r;
  uv_mutex_lock(&t->lock);
  for (r = t->buckets[h & (t->nbuckets - 1)]; r; r = r->next)
    if (r->hash == h && strcmp(r->name, name) == 0) break;
  if (r == NULL && (r = room_new(t, name, h)) != NULL) {
    r->next = t->buckets[h & (t->nbuckets - 1)];
    t->buckets[h & (t->nbuckets - 1)] = r;
    if (++t->count > t->nbuckets) resize(t, t->nbuckets * 2);
  }
  if (r) r->refs++;
  uv_mutex_unlock(&t->lock);
  return r;
}

void chat_rooms_release(chat_rooms_t *t, chat_room_t *r) {
  chat_room_t **p;
  uv_mutex_lock(&t->lock);
  if (--r->refs > 0) {
    uv_mutex_unlock(&t->lock);
    return;
  }
  for (p = &t->buckets[r->hash & (t->nbuckets - 1)]; *p != r; p = &(*p)->next) {
  }
  *p = r->next;
  if (--t->count < t->nbuckets / 4 && t->nbuckets > MIN_BUCKETS) resize(t, t->nbuckets / 2);
  uv_mutex_unlock(&t->lock);
  /* Nobody else can reach it any more: no lock needed to free it. */
  room_free(r);
}

size_t chat_rooms_count(chat_rooms_t *t) {
  size_t n;
  uv_mutex_lock(&t->lock);
  n = t->count;
  uv_mutex_unlock(&t->lock);
  return n;
}

int chat_room_add_member(chat_room_t *r, const char *nick, int remote) {
  chat_member_t *m = calloc(1, sizeof(*m));
  if (m == NULL) return UV_ENOMEM;
  m->remote = remote;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  m->next = r->member_list;
  r->member_list = m;
  return 0;
}

int chat_room_remove_member(chat_room_t *r, const char *nick, int remote) {
  chat_member_t **p;
  for (p = &r->member_list; *p; p = &(*p)->next) {
    if ((*p)->remote == remote && strcmp((*p)->nick, nick) == 0) {
      chat_member_t *m = *p;
      *p = m->next;
      free(m);
      return 1;
    }
  }
  return 0;
}

int chat_room_nick_taken(const chat_room_t *r, const char *nick) {
  const chat_member_t *m;
  for (m = r->member_list; m; m = m->next)
    if (strcmp(m->nick, nick) == 0) return 1;
  return 0;
}

void chat_room_history_add(chat_room_t *r, char *serial, uint64_t seq) {
  size_t slot;
  if (r->hist_cap == 0) {
    free(serial);
    return;
  }
  if (r->hist_len == r->hist_cap) {
    slot = r->hist_head;
    free(r->history[slot]);
    r->hist_head = (r->hist_head + 1) % r->hist_cap;
  } else {
    slot = (r->hist_head + r->hist_len++) % r->hist_cap;
  }
  r->history[slot] = serial;
  r->hist_seq[slot] = seq;
}

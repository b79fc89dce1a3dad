/* /chat's rooms: a hash table of rooms, each with a lock of its own.
 *
 * Why two levels: with --threads every loop runs chat handlers, and one
 * lock over every room made a flooded room slow down every other room on
 * every thread. The table's lock is held only to find, create or unlink a
 * room; everything inside a room (members, history, its id counter, and
 * the publishes that give the room its order) is under the room's lock.
 *
 * Lifetime: a room lives while someone holds a reference. Each local
 * membership, each remote member and each operation in progress (a join
 * being decided, a remote line being recorded) holds one. References are
 * counted under the table's lock, and the last release unlinks and frees
 * the room, so a refused join, a leave or a line for a room with nobody
 * in it never leaves a room behind.
 *
 * Lock order: a room's lock may be taken with nothing held, never while
 * holding the table's lock, and chat_rooms_release() must be called with
 * the room's lock released (it may free the room). */
#ifndef UVWS_APPS_CHAT_ROOMS_H
#define UVWS_APPS_CHAT_ROOMS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CHAT_NAME_MAX 32

typedef struct chat_member_s {
  struct chat_member_s *next;
  int remote; /* on another instance */
  int stored; /* local, with Redis: its join was stored there (so the others heard it) */
  char nick[CHAT_NAME_MAX + 1];
} chat_member_t;

/* A line from Redis waiting for the ones before it (chat_lines.h). */
typedef struct chat_line_s {
  struct chat_line_s *next;
  uint64_t seq;
  size_t len;
  char data[];
} chat_line_t;

typedef struct chat_room_s {
  /* The table's lock guards these two. */
  struct chat_room_s *next; /* hash chain */
  size_t refs;
  /* Set at creation, then read-only. */
  uint32_t hash;
  char name[CHAT_NAME_MAX + 1];
  char topic[CHAT_NAME_MAX + 6]; /* "chat:" + name */
  /* The room's lock guards the rest. */
  uv_mutex_t lock;
  uint64_t next_id;           /* without Redis: the next line's id */
  uint64_t last_seq;          /* with Redis: the last line delivered here */
  chat_member_t *member_list; /* owned, newest first */
  char **history;             /* ring of serialised "message" objects, owned */
  uint64_t *hist_seq;         /* each one's id */
  size_t hist_len, hist_head, hist_cap;
  int filling;                 /* with Redis: missed lines are being read back */
  chat_line_t *held, *held_last; /* lines after the gap, in arrival order, owned */
  size_t nheld;
} chat_room_t;

typedef struct {
  uv_mutex_t lock;       /* the buckets, and every room's next and refs */
  chat_room_t **buckets; /* owned */
  size_t nbuckets;       /* a power of two */
  size_t count;          /* rooms in the table */
  size_t history;        /* messages each room keeps */
} chat_rooms_t;

int chat_rooms_init(chat_rooms_t *t, size_t history);
/* Frees every room; no one may hold any. */
void chat_rooms_free(chat_rooms_t *t);
/* The room called `name`, created if needed, with one reference taken for
 * the caller; NULL when out of memory. */
chat_room_t *chat_rooms_hold(chat_rooms_t *t, const char *name);
/* Gives back one reference (the room's lock not held). */
void chat_rooms_release(chat_rooms_t *t, chat_room_t *r);
/* Every room, each held for the caller (*n of them; release each, then
 * free the array). NULL with *n 0 when there are none or no memory. */
chat_room_t **chat_rooms_hold_all(chat_rooms_t *t, size_t *n);
/* Rooms in the table right now. */
size_t chat_rooms_count(chat_rooms_t *t);

/* Under the room's lock: */
int chat_room_add_member(chat_room_t *r, const char *nick, int remote);
/* 1 if a member with that nick (and remoteness) was removed. */
int chat_room_remove_member(chat_room_t *r, const char *nick, int remote);
int chat_room_nick_taken(const chat_room_t *r, const char *nick);
/* Keeps `serial` (malloc'd, taken), id `seq`, as the newest history line. */
void chat_room_history_add(chat_room_t *r, char *serial, uint64_t seq);

#endif

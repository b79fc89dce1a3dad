/* /chat with --redis: a room's lines reach this instance's members in the
 * room's order, every one of them, also across a gap in the link.
 *
 * Redis numbers a room's lines with one counter (INCR), so they come one
 * after the other: a line numbered past the last one delivered here plus
 * one means this instance missed lines (its link was down while others
 * sent). Those are in the room's stream: the lines after the gap are held
 * while the missing ones are read back (XRANGE), then both go out in
 * order. The same read runs for every room when the link comes back, for
 * a room that stays quiet afterwards.
 *
 * Ownership: held lines belong to their room (chat_room_t.held, under its
 * lock; chat_rooms.c frees what is left with the room); a read in flight
 * is a chat_fill_t owned by chat_lines_t's list, holding a reference on
 * its room, freed when its answer comes or by chat_lines_free(). */
#ifndef UVWS_APPS_CHAT_LINES_H
#define UVWS_APPS_CHAT_LINES_H

#include "apps.h"
#include "chat_rooms.h"

typedef struct chat_fill_s chat_fill_t;

typedef struct {
  chat_rooms_t *rooms; /* set at init, then read-only */
  size_t read_count;   /* entries per read: the room's history, at least 64 */
  uv_mutex_t lock;     /* the list below */
  chat_fill_t *fills;  /* reads in flight */
} chat_lines_t;

int chat_lines_init(chat_lines_t *l, chat_rooms_t *rooms);
/* Frees the reads whose answer never came (the server stopped first). */
void chat_lines_free(chat_lines_t *l);

/* A line with its place, under the room's lock: to the local members once,
 * in id order, and into the history; an id already delivered is dropped. */
void chat_lines_deliver(uvws_server_t *srv, chat_room_t *r, uint64_t seq, const char *data, size_t len);
/* A line as Redis published it (the room's lock held): delivered, or held
 * while the lines before it are read back. */
void chat_lines_arrived(chat_lines_t *l, uvws_server_t *srv, chat_room_t *r, uint64_t seq, const char *data,
                        size_t len);
/* The link is back: every room that has delivered lines reads what it
 * missed (primary's loop, no lock held). */
void chat_lines_catch_up(chat_lines_t *l, uvws_server_t *srv);

#endif

/* Topics across uvws instances through Redis pub/sub: a link that
 * publishes frames to Redis and hands what other instances published to
 * the runtime (hooks). It knows nothing of topics' subscribers or of
 * threads. One per server, on the primary loop's thread. */
#ifndef UVWS_REDIS_H
#define UVWS_REDIS_H

#include "util/wbuf.h"
#include "util/wqueue.h"
#include "uvws.h"

typedef struct uvws__redis_s uvws__redis_t;

/* This instance's wills (wills.c): topic, text, topic, text... each
 * malloc'd and owned by the list. */
struct uvws_wills_s {
  char **s;
  size_t n, cap;
};
typedef struct uvws_wills_s uvws__wills_t;

typedef struct {
  /* A message another instance published: the topic, the opcode and the
   * payload, and the same as one frame (header_len header bytes first) for
   * local delivery. Valid during the call. */
  void (*on_message)(void *ctx, const char *topic, size_t n, uvws_opcode_t op, const char *data,
                     size_t len, uvws__sbuf_t *frame, size_t header_len);
  /* A sequenced message (uvws__redis_append) of any instance, ours too:
   * its number and text. Valid during the call. */
  void (*on_sequenced)(void *ctx, const char *topic, size_t n, uint64_t seq, const char *data,
                       size_t len);
  /* The link came up (1: connected and subscribed) or went down (0). */
  void (*on_state)(void *ctx, int up);
  /* After uvws__redis_stop: the last handle is closed. */
  void (*on_stopped)(void *ctx);
  void *ctx;
  /* With will_ttl_ms: every will_ttl_ms / 3 while the link is up, fill in
   * this instance's wills (uvws__wills_add); NULL: no heartbeat. */
  void (*on_wills)(void *ctx, uvws__wills_t *w);
  /* This instance's wills were published while it was cut off. */
  void (*on_buried)(void *ctx);
  unsigned will_ttl_ms;
} uvws__redis_hooks_t;

/* Parses `url` (redis://[[USER]:PASSWORD@]HOST[:PORT]) and starts
 * connecting. 0, UV_EINVAL for a bad URL (logged), or a libuv error. */
int uvws__redis_start(uvws__redis_t **out, uv_loop_t *loop, const char *url, const uvws__redis_hooks_t *hooks);
void uvws__redis_publish(uvws__redis_t *r, const char *topic, size_t n, uvws__sbuf_t *frame, size_t header_len);
/* The topic's next number N, head + N + tail appended to its stream
 * (about `keep` entries) and published, in one script. 0, or
 * UVWS_EUNAVAILABLE when the link is down or too far behind. */
int uvws__redis_append(uvws__redis_t *r, const char *topic, size_t n, const char *head, size_t head_len,
                       const char *tail, size_t tail_len, size_t keep);
/* Reads a topic's log (see uvws_redis_range); `cb(ctx, status, entries,
 * n)` is called once, on this loop, even when the link goes down first.
 * 0 or UVWS_EUNAVAILABLE (then cb is not called). */
typedef void (*uvws__range_done)(void *ctx, int status, const uvws_seq_entry_t *entries, size_t n);
int uvws__redis_range(uvws__redis_t *r, const char *topic, size_t n, uint64_t after, size_t count,
                      uvws__range_done cb, void *ctx);
/* A command on the publishing connection while the link is up: an error
 * reply is logged with `what`, an integer one goes to on_integer (if any).
 * `cmd` is static. 0 or UVWS_EUNAVAILABLE. */
typedef struct {
  const char *what;
  void (*on_integer)(uvws__redis_t *r, long long v);
} uvws__command_t;
int uvws__redis_command(uvws__redis_t *r, int argc, const char **argv, const size_t *argl,
                        const uvws__command_t *cmd);
/* The heartbeat's answer (wills.c): 1 if this instance was buried alive. */
void uvws__redis_buried(uvws__redis_t *r, long long v);
int uvws__wills_add(uvws__wills_t *w, const char *topic, const char *text);
void uvws__wills_clear(uvws__wills_t *w);
/* One beat: this instance's key for ttl_ms, its wills in place of the
 * last ones, and the wills of instances whose key expired published. */
int uvws__wills_send(uvws__redis_t *r, const uint8_t id[16], unsigned ttl_ms, const uvws__wills_t *w);
/* Like uvws__redis_command, with done(r, ok, ctx) called once with the
 * outcome (0: an error reply, logged, or the link lost first); done may
 * be NULL. 0 or UVWS_EUNAVAILABLE (done is not called). */
int uvws__redis_call(uvws__redis_t *r, int argc, const char **argv, const size_t *argl,
                     void (*done)(uvws__redis_t *r, int ok, void *ctx), void *ctx);
/* This instance's random id. */
const uint8_t *uvws__redis_id(const uvws__redis_t *r);

/* Presence (presence.c, see uvws_presence_join): its state on the link,
 * primary's loop only. */
typedef struct uvws__pres_req_s uvws__pres_req_t;
typedef struct uvws__pres_leave_s uvws__pres_leave_t;
typedef struct {
  uvws__pres_req_t *reqs;       /* joins waiting for their list, owned */
  uint64_t token;               /* the last one given */
  uvws__pres_leave_t *leaves, **tail; /* leaves not sent yet (link down), owned, oldest first */
  size_t nleaves;
} uvws__presence_t;
uvws__presence_t *uvws__redis_presence(uvws__redis_t *r);
/* The list of names a join asked for: cb(ctx, status, names, n), on
 * this loop, once (names valid during the call). */
typedef void (*uvws__presence_done)(void *ctx, int status, const char *const *names, size_t n);
/* HSET + PUBLISH of join_text if the entry is new (with `restore`, only
 * if this instance was buried); with cb, the names of the topic's entries
 * of other instances follow. 0, UVWS_EUNAVAILABLE (cb is not called) or
 * UV_ENOMEM. */
int uvws__presence_join(uvws__redis_t *r, const char *topic, size_t tn, const char *name, const char *join_text,
                        const char *leave_text, int restore, uvws__presence_done cb, void *ctx);
/* HDEL + PUBLISH of leave_text if the entry was there; while the link is
 * down, kept (up to a bound) and sent when it is back. */
int uvws__presence_leave(uvws__redis_t *r, const char *topic, size_t tn, const char *name, const char *leave_text);
/* A "U3" message from the subscription: the list of one of our joins. */
void uvws__presence_list(uvws__redis_t *r, const char *data, size_t len);
/* The link is up: the leaves kept meanwhile go first. */
void uvws__presence_up(uvws__redis_t *r);
/* The link went down: every join waiting for its list fails. */
void uvws__presence_fail_all(uvws__redis_t *r);
/* Frees the waiting joins (without calling them: the server is gone) and
 * the kept leaves. */
void uvws__presence_free_all(uvws__redis_t *r);

void uvws__redis_stop(uvws__redis_t *r);
int uvws__redis_busy(const uvws__redis_t *r);
void uvws__redis_free(uvws__redis_t *r);
/* Its /metrics lines. */
void uvws__redis_metrics(const uvws__redis_t *r, uvws__buf_t *out);

#endif

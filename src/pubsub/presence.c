/* Presence kept in Redis (see uvws_presence_join): who is in a topic, on
 * which instance, held where every instance reads it.
 *
 * Why in Redis rather than in each instance's memory: an instance that
 * starts after others heard none of their joins, and a dead instance's
 * snapshot of its members (its wills) is up to a heartbeat old. One hash
 * per topic, uvws:pres:<topic>, field "<instance id> <name>", value the
 * message to publish should the instance die, is the one truth:
 *   - a join is HSET + PUBLISH in one script, and publishes only if the
 *     field is new, so saying a join again (after a lost link) is silent
 *     for those who already heard it;
 *   - a leave is HDEL + PUBLISH, and publishes only if the field was
 *     there, so a leave whose member was already buried is not told twice;
 *   - the burial of a dead instance (wills.c) removes its fields and
 *     publishes the value of each one still present: a member who left
 *     before the death is gone from the hash and is not announced again.
 * uvws:pres-of:<id> counts, per topic, the instance's fields, so the
 * burial finds them without scanning every hash.
 *
 * The list a join asks for is not the script's reply: replies come on the
 * publishing connection, the other instances' presence messages on the
 * subscribed one, and nothing orders the two. The script publishes the
 * list instead ("U3" | the asker's id | a token | 'L' | names, each
 * followed by NUL; or 'T' alone if another instance holds the name, which
 * makes a name unique across instances) on the topic's channel, so it reaches us among the presence
 * messages exactly where Redis took it: every event before it is in it,
 * every later one comes after it. Other instances drop it (not their id).
 *
 * A leave said while the link is down is kept and sent first when it is
 * back (a join needs nothing of the kind: the application says its joins
 * again then, and only the new ones are published).
 *
 * Ownership: joins waiting for their list and kept leaves are owned by
 * the link's uvws__presence_t, primary's loop only. */
#include "pubsub/redis.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A join waiting for its list. */
struct uvws__pres_req_s {
  uvws__pres_req_t *next;
  uint64_t token;
  uvws__presence_done cb;
  void *ctx;
};

/* ARGV: id (hex), topic, name, the U1 header, join text, leave text, the
 * U3 header ("" when no list is wanted), "1" for a restore. With a list,
 * the name must be free on the other instances: the U3 message is then
 * the header, 'T' (taken: nothing stored) or 'L' and the names. A restore
 * publishes a new entry only if this instance was buried (the others
 * heard it leave), not if Redis lost it (they did not). */
static const char JOIN_SCRIPT[] =
    "local h = 'uvws:pres:' .. ARGV[2] "
    "local me = ARGV[1] .. ' ' "
    "local out, seen = {}, {} "
    "if ARGV[7] ~= '' then "
    "for _, k in ipairs(redis.call('HKEYS', h)) do "
    "local n = string.sub(k, #me + 1) "
    "if string.sub(k, 1, #me) ~= me and not seen[n] then seen[n] = 1 out[#out + 1] = n .. '\\0' end end "
    "if seen[ARGV[3]] then redis.call('PUBLISH', 'uvws:' .. ARGV[2], ARGV[7] .. 'T') return 0 end end "
    "if redis.call('HSET', h, me .. ARGV[3], ARGV[6]) == 1 then "
    "redis.call('HINCRBY', 'uvws:pres-of:' .. ARGV[1], ARGV[2], 1) "
    "if ARGV[8] ~= '1' or redis.call('EXISTS', 'uvws:buried:' .. ARGV[1]) == 1 then "
    "redis.call('PUBLISH', 'uvws:' .. ARGV[2], ARGV[4] .. ARGV[5]) end end "
    "if ARGV[7] ~= '' then redis.call('PUBLISH', 'uvws:' .. ARGV[2], ARGV[7] .. 'L' .. table.concat(out)) end "
    "return 1";

/* ARGV: id (hex), topic, name, the U1 header, leave text. */
static const char LEAVE_SCRIPT[] =
    "local h = 'uvws:pres:' .. ARGV[2] "
    "if redis.call('HDEL', h, ARGV[1] .. ' ' .. ARGV[3]) == 1 then "
    "if redis.call('HINCRBY', 'uvws:pres-of:' .. ARGV[1], ARGV[2], -1) <= 0 then "
    "redis.call('HDEL', 'uvws:pres-of:' .. ARGV[1], ARGV[2]) end "
    "redis.call('PUBLISH', 'uvws:' .. ARGV[2], ARGV[4] .. ARGV[5]) end "
    "return 1";

#define U3_LEN (2 + 16 + 8) /* then 'T' or 'L' */

static void hex_id(const uint8_t id[16], char hex[33]) {
  size_t i;
  for (i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

static uvws__pres_req_t *take(uvws__redis_t *r, uint64_t token) {
  uvws__pres_req_t **p = &uvws__redis_presence(r)->reqs, *q;
  for (; (q = *p) != NULL; p = &q->next)
    if (q->token == token) {
      *p = q->next;
      return q;
    }
  return NULL;
}

/* The script's outcome: an error (or a lost link) ends a request whose
 * list will never come; on success the list is on its way. */
static void join_replied(uvws__redis_t *r, int ok, void *ctx) {
  uvws__pres_req_t *q;
  if (ok || (q = take(r, (uint64_t)(uintptr_t)ctx)) == NULL) return;
  q->cb(q->ctx, UVWS_EUNAVAILABLE, NULL, 0);
  free(q);
}

static int send_script(uvws__redis_t *r, const char *topic, size_t tn, const char *name,
                       const char *text1, const char *text2, const char *u3, size_t u3_len, int restore,
                       void (*done)(uvws__redis_t *, int, void *), void *ctx) {
  const char *argv[11];
  size_t argl[11], i, argc = text2 ? 11 : 8;
  char hex[33], header[19];
  hex_id(uvws__redis_id(r), hex);
  memcpy(header, "U1", 2);
  memcpy(header + 2, uvws__redis_id(r), 16); /* our own copy is dropped: the caller delivers locally */
  header[18] = (char)UVWS_OP_TEXT;
  argv[0] = "EVAL", argv[1] = text2 ? JOIN_SCRIPT : LEAVE_SCRIPT, argv[2] = "0", argv[3] = hex;
  for (i = 0; i < 4; i++) argl[i] = strlen(argv[i]);
  argv[4] = topic, argl[4] = tn;
  argv[5] = name, argl[5] = strlen(name);
  argv[6] = header, argl[6] = sizeof(header);
  argv[7] = text1, argl[7] = strlen(text1);
  if (text2) {
    argv[8] = text2, argl[8] = strlen(text2);
    argv[9] = u3, argl[9] = u3_len;
    argv[10] = restore ? "1" : "0", argl[10] = 1;
  }
  return uvws__redis_call(r, (int)argc, argv, argl, done, ctx);
}

int uvws__presence_join(uvws__redis_t *r, const char *topic, size_t tn, const char *name, const char *join_text,
                        const char *leave_text, int restore, uvws__presence_done cb, void *ctx) {
  uvws__pres_req_t *q = NULL;
  char u3[U3_LEN] = {0};
  int e;
  if (cb) {
    if ((q = calloc(1, sizeof(*q))) == NULL) return UV_ENOMEM;
    q->token = ++uvws__redis_presence(r)->token;
    q->cb = cb, q->ctx = ctx;
    memcpy(u3, "U3", 2);
    memcpy(u3 + 2, uvws__redis_id(r), 16);
    memcpy(u3 + 18, &q->token, 8);
  }
  e = send_script(r, topic, tn, name, join_text, leave_text, u3, q ? U3_LEN : 0, restore,
                  q ? join_replied : NULL, q ? (void *)(uintptr_t)q->token : NULL);
  if (e != 0) {
    free(q);
    return e;
  }
  if (q) {
    uvws__pres_req_t **p = &uvws__redis_presence(r)->reqs;
    q->next = *p;
    *p = q;
  }
  return 0;
}

/* A leave that could not be sent yet: topic, name and text, each with its
 * NUL, in one allocation. */
struct uvws__pres_leave_s {
  uvws__pres_leave_t *next;
  size_t tn;
  char s[];
};

#define MAX_KEPT_LEAVES 100000

/* Sends the kept leaves in order while the link takes them. */
static void flush_leaves(uvws__redis_t *r) {
  uvws__presence_t *ps = uvws__redis_presence(r);
  uvws__pres_leave_t *l;
  while ((l = ps->leaves) != NULL) {
    const char *name = l->s + l->tn + 1;
    if (send_script(r, l->s, l->tn, name, name + strlen(name) + 1, NULL, NULL, 0, 0, NULL, NULL) != 0) return;
    if ((ps->leaves = l->next) == NULL) ps->tail = &ps->leaves;
    ps->nleaves--;
    free(l);
  }
}

void uvws__presence_up(uvws__redis_t *r) {
  if (uvws__redis_presence(r)->nleaves) {
    uvws__log(UVWS_LOG_INFO, "redis: sending %zu presence leaves kept while the link was down",
              uvws__redis_presence(r)->nleaves);
    flush_leaves(r);
  }
}

/* Why keep a leave rather than drop it: its entry would stay in Redis,
 * listed by every later join elsewhere, until this instance dies. */
int uvws__presence_leave(uvws__redis_t *r, const char *topic, size_t tn, const char *name, const char *leave_text) {
  uvws__presence_t *ps = uvws__redis_presence(r);
  size_t nl = strlen(name), xl = strlen(leave_text);
  uvws__pres_leave_t *l;
  if (ps->nleaves == 0 && send_script(r, topic, tn, name, leave_text, NULL, NULL, 0, 0, NULL, NULL) == 0) return 0;
  if (ps->nleaves >= MAX_KEPT_LEAVES || (l = malloc(sizeof(*l) + tn + nl + xl + 3)) == NULL) {
    uvws__log(UVWS_LOG_WARN, "redis: the leave of %s on %.*s is lost (%zu kept already)", name, (int)tn, topic,
              ps->nleaves);
    return UVWS_EUNAVAILABLE;
  }
  l->next = NULL;
  l->tn = tn;
  memcpy(l->s, topic, tn);
  l->s[tn] = '\0';
  memcpy(l->s + tn + 1, name, nl + 1);
  memcpy(l->s + tn + nl + 2, leave_text, xl + 1);
  if (ps->tail == NULL) ps->tail = &ps->leaves;
  *ps->tail = l;
  ps->tail = &l->next;
  ps->nleaves++;
  flush_leaves(r); /* the link may take it now, after the older ones */
  return 0;
}

void uvws__presence_list(uvws__redis_t *r, const char *data, size_t len) {
  const char **names = NULL;
  size_t n = 0, i, cap = 0;
  uint64_t token;
  uvws__pres_req_t *q;
  int status = 0;
  if (len <= U3_LEN || memcmp(data + 2, uvws__redis_id(r), 16) != 0) return; /* another instance's */
  memcpy(&token, data + 18, 8);
  if ((q = take(r, token)) == NULL) return;
  if (data[U3_LEN] != 'L') {
    q->cb(q->ctx, UVWS_ETAKEN, NULL, 0);
    free(q);
    return;
  }
  for (i = U3_LEN + 1; i < len; i++)
    if (data[i] == '\0') cap++;
  if (cap && (names = malloc(cap * sizeof(*names))) == NULL) status = UV_ENOMEM;
  for (i = U3_LEN + 1; names && i < len; i += strlen(data + i) + 1) {
    if (memchr(data + i, '\0', len - i) == NULL) break; /* a name without its NUL */
    names[n++] = data + i;
  }
  q->cb(q->ctx, status, names, n);
  free(names);
  free(q);
}

void uvws__presence_fail_all(uvws__redis_t *r) {
  uvws__pres_req_t **p = &uvws__redis_presence(r)->reqs, *q;
  while ((q = *p) != NULL) {
    *p = q->next;
    q->cb(q->ctx, UVWS_EUNAVAILABLE, NULL, 0);
    free(q);
  }
}

void uvws__presence_free_all(uvws__redis_t *r) {
  uvws__presence_t *ps = uvws__redis_presence(r);
  uvws__pres_req_t *q;
  uvws__pres_leave_t *l;
  while ((q = ps->reqs) != NULL) {
    ps->reqs = q->next;
    free(q);
  }
  while ((l = ps->leaves) != NULL) {
    ps->leaves = l->next;
    free(l);
  }
  ps->nleaves = 0;
  ps->tail = &ps->leaves;
}

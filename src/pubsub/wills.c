/* Instance wills over Redis (see uvws_server_on_wills): what one
 * surviving instance publishes for an instance that died without a word.
 *
 * Why a heartbeat key with a TTL: a SIGKILLed instance says nothing, and
 * nothing in pub/sub tells the others it is gone. Redis's own clock does:
 * each beat sets uvws:inst:<id> to expire after the TTL, so the key of a
 * dead instance vanishes at most a TTL after its last beat, with no
 * keyspace notifications needed (they are off by default). The same
 * script stores this instance's wills (uvws:wills:<id>, a list of topic,
 * text pairs, replaced whole) and looks over the instances it has heard of
 * (the set uvws:insts): for each whose key is gone it publishes every will
 * and deletes them, in one script, so Redis runs it for one instance only
 * and each will goes out once. The id is fresh at each start: a restarted
 * instance inherits nothing, and its previous life is buried like any
 * other dead instance.
 *
 * The same burial removes the dead instance's presence entries
 * (presence.c): for each topic uvws:pres-of:<id> names, every field of
 * uvws:pres:<topic> that is the dead id's goes, and its value (the leave
 * message the instance stored with the join) is published. An entry whose
 * member left before the death was deleted by that leave, so it is not
 * announced again, whatever the age of the last beat.
 *
 * A will is published as the other instances' messages are ("U1", an id,
 * the opcode, the text), under an id of zeros that no instance has, so
 * every instance, the one that ran the script too, takes it as remote. */
#include "pubsub/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ARGV: id, ttl in ms, the payload header, then topic, text pairs.
 * Returns 1 if this instance's wills were published while it lived (its
 * link was away longer than the TTL): a tombstone uvws:buried:<id>, kept a
 * day, tells it so, whereas a Redis restart that lost every key does not
 * look like a burial. */
static const char BEAT_SCRIPT[] =
    "local me = ARGV[1] "
    "local back = redis.call('DEL', 'uvws:buried:' .. me) "
    "redis.call('SET', 'uvws:inst:' .. me, '1', 'PX', ARGV[2]) "
    "redis.call('SADD', 'uvws:insts', me) "
    "redis.call('DEL', 'uvws:wills:' .. me) "
    "for i = 4, #ARGV - 1, 2 do redis.call('RPUSH', 'uvws:wills:' .. me, ARGV[i], ARGV[i + 1]) end "
    "local n = 0 "
    "for _, id in ipairs(redis.call('SMEMBERS', 'uvws:insts')) do "
    "if redis.call('EXISTS', 'uvws:inst:' .. id) == 0 then "
    "local w = redis.call('LRANGE', 'uvws:wills:' .. id, 0, -1) "
    "for j = 1, #w - 1, 2 do redis.call('PUBLISH', 'uvws:' .. w[j], ARGV[3] .. w[j + 1]) n = n + 1 end "
    "redis.call('DEL', 'uvws:wills:' .. id) "
    "local pk, pre = 'uvws:pres-of:' .. id, id .. ' ' "
    "for _, t in ipairs(redis.call('HKEYS', pk)) do "
    "local h = 'uvws:pres:' .. t "
    "local kv = redis.call('HGETALL', h) "
    "for j = 1, #kv - 1, 2 do if string.sub(kv[j], 1, #pre) == pre then "
    "redis.call('HDEL', h, kv[j]) "
    "redis.call('PUBLISH', 'uvws:' .. t, ARGV[3] .. kv[j + 1]) n = n + 1 end end end "
    "redis.call('DEL', pk) "
    "redis.call('SREM', 'uvws:insts', id) "
    "redis.call('SET', 'uvws:buried:' .. id, '1', 'EX', 86400) end end "
    "return back";

#define FIXED_ARGS 6 /* EVAL script 0 id ttl header */

static const uvws__command_t beat_cmd = {"a heartbeat", uvws__redis_buried};

int uvws__wills_add(uvws__wills_t *w, const char *topic, const char *text) {
  size_t tl = strlen(topic), xl = strlen(text);
  char *t, *x;
  if (w->n + 2 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 16;
    char **s = realloc(w->s, cap * sizeof(*s));
    if (s == NULL) return UV_ENOMEM;
    w->s = s;
    w->cap = cap;
  }
  t = malloc(tl + 1);
  x = malloc(xl + 1);
  if (t == NULL || x == NULL) {
    free(t);
    free(x);
    return UV_ENOMEM;
  }
  memcpy(t, topic, tl + 1);
  memcpy(x, text, xl + 1);
  w->s[w->n++] = t;
  w->s[w->n++] = x;
  return 0;
}

void uvws__wills_clear(uvws__wills_t *w) {
  size_t i;
  for (i = 0; i < w->n; i++) free(w->s[i]);
  free(w->s);
  memset(w, 0, sizeof(*w));
}

int uvws__wills_send(uvws__redis_t *r, const uint8_t id[16], unsigned ttl_ms, const uvws__wills_t *w) {
  size_t argc = FIXED_ARGS + w->n, i;
  const char **argv = malloc(argc * sizeof(*argv));
  size_t *argl = malloc(argc * sizeof(*argl));
  char hex[33], ttl[16], header[2 + 16 + 1];
  int e = UV_ENOMEM;
  if (argv && argl) {
    for (i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
    memcpy(header, "U1", 2);
    memset(header + 2, 0, 16); /* nobody's id: every instance takes it as remote */
    header[18] = (char)UVWS_OP_TEXT;
    argv[0] = "EVAL", argv[1] = BEAT_SCRIPT, argv[2] = "0", argv[3] = hex, argv[4] = ttl;
    for (i = 0; i < 5; i++) argl[i] = strlen(argv[i]);
    argv[5] = header, argl[5] = sizeof(header);
    for (i = 0; i < w->n; i++) argv[FIXED_ARGS + i] = w->s[i], argl[FIXED_ARGS + i] = strlen(w->s[i]);
    e = uvws__redis_command(r, (int)argc, argv, argl, &beat_cmd);
  }
  free(argv);
  free(argl);
  return e;
}

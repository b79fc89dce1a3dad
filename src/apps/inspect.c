/* The /inspect route: an echo that also tells its own client what crossed
 * the wire. At open it sends the handshake (request and response headers,
 * and the Sec-WebSocket-Accept computation step by step); then, for every
 * frame received or sent, a JSON description. The trace messages are text
 * frames of their own, which uvws does not trace (see on_frame in uvws.h).
 *
 * Message format (each a JSON object with "uvws" naming the kind):
 *   {"uvws":"handshake","request":{"method","target","version","headers":[[name,value],...]},
 *    "response":{"status":101,"headers":[[name,value],...]},
 *    "accept":{"key","guid","concatenated","sha1","accept"}}
 *   {"uvws":"frame","dir":"in"|"out","t":ms since open,"fin","rsv1","rsv2","rsv3",
 *    "opcode","op","masked","mask":hex|null,"len","len_bits":7|16|64,
 *    "header":hex of the header bytes,"payload":hex of the first <=16 bytes (unmasked),
 *    "masked_payload":hex as on the wire (masked frames only),"truncated":bool,
 *    data frames: "message":n (per direction), on a message's last frame
 *    "message_len":its size before compression; "raw":true on a frame sent
 *    outside the framing (the "invalid" command)}
 *   {"uvws":"command","do":name,"ok":bool,"detail"|"error":text}, the answer to
 *    a command {"uvws":"command","do":"ping"|"close"|"drop"|"fragments"|"invalid",
 *    "code":n,"reason":text} the client sent (README, "The inspector").
 * Written against the public header only. */
#include "apps.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One connection's inspector, owned by the connection (freed in on_close);
 * loop thread only. */
typedef struct {
  uint64_t opened;   /* uv_now at open */
  uint64_t msgs_in;  /* data messages begun by the client so far */
  uint64_t msgs_out; /* data messages begun by us so far */
  size_t sending;    /* size of the message uvws_send is sending, before compression */
  json_t *held;      /* the last frame of an incoming message, until on_message gives its size */
  uint64_t window;   /* uv_now when the current second of commands began */
  unsigned commands; /* commands in that second */
  uv_timer_t *drop;  /* a "drop" command waiting (owned; closed in on_close) */
  json_t *later;     /* traces made while our fragmented message is on its way */
} inspect_state_t;

/* Commands are small: a text message longer than this is never one. Each
 * command makes the server send at most four frames of its own plus their
 * traces (a few KiB), and a connection gets at most COMMANDS_PER_SECOND. */
#define COMMAND_MAX 512
#define COMMANDS_PER_SECOND 5
#define DROP_DELAY_MS 100

static void hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static void send_json(uvws_conn_t *conn, json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT);
  if (text) {
    uvws_send_ex(conn, UVWS_OP_TEXT, text, strlen(text), UVWS_SEND_UNTRACED);
    free(text);
  }
  json_decref(obj);
}

static const char *op_name(int op) {
  switch (op) {
    case UVWS_OP_CONTINUATION: return "continuation";
    case UVWS_OP_TEXT: return "text";
    case UVWS_OP_BINARY: return "binary";
    case UVWS_OP_CLOSE: return "close";
    case UVWS_OP_PING: return "ping";
    case UVWS_OP_PONG: return "pong";
    default: return "reserved";
  }
}

static json_t *headers_of_response(const char *head) {
  json_t *arr = json_array();
  const char *line = strstr(head, "\r\n");
  while (line && line[2] != '\r' && line[2] != '\0') {
    const char *start = line + 2, *end = strstr(start, "\r\n"), *colon;
    if (end == NULL) break;
    colon = memchr(start, ':', (size_t)(end - start));
    if (colon) {
      const char *v = colon + 1;
      while (v < end && *v == ' ') v++;
      json_array_append_new(arr, json_pack("[s#s#]", start, (int)(colon - start), v, (int)(end - v)));
    }
    line = end;
  }
  return arr;
}

static void inspect_open(uvws_conn_t *conn) {
  inspect_state_t *st = calloc(1, sizeof(*st));
  json_t *headers = json_array(), *msg;
  const char *name, *value, *target, *key = NULL;
  size_t nlen, vlen, tlen = 0, klen = 0, i;
  char accept[29], concat[128], digest_hex[41];
  uint8_t digest[20];

  if (st) st->opened = uv_now(uvws_server_loop(uvws_conn_server(conn)));
  uvws_conn_set_data(conn, st);
  for (i = 0; uvws_conn_request_header_at(conn, i, &name, &nlen, &value, &vlen) == 0; i++) {
    json_array_append_new(headers, json_pack("[s#s#]", name, (int)nlen, value, (int)vlen));
    if (nlen == 17 && strncasecmp(name, "Sec-WebSocket-Key", 17) == 0) {
      key = value;
      klen = vlen;
    }
  }
  target = uvws_conn_request_target(conn, &tlen);
  msg = json_pack("{s:s, s:{s:s, s:s#, s:s, s:o}, s:{s:i, s:o}}", "uvws", "handshake", "request",
                  "method", "GET", "target", target ? target : "", (int)tlen, "version", "HTTP/1.1",
                  "headers", headers, "response", "status", 101, "headers",
                  headers_of_response(uvws_conn_response_head(conn)));
  if (key && klen < 64 && uvws_accept_key(key, klen, accept, digest) == 0) {
    memcpy(concat, key, klen);
    memcpy(concat + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 37);
    hex(digest, 20, digest_hex);
    json_object_set_new(msg, "accept",
                        json_pack("{s:s#, s:s, s:s, s:s, s:s}", "key", key, (int)klen, "guid",
                                  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", "concatenated", concat,
                                  "sha1", digest_hex, "accept", accept));
  }
  if (msg) send_json(conn, msg);
}

static json_t *describe(const uvws_frame_info_t *f, uint64_t t) {
  char header_hex[2 * 14 + 1], payload_hex[2 * 16 + 1], wire_hex[2 * 16 + 1], mask_hex[9];
  uint8_t wire[16];
  size_t i, plen = f->payload_len > 16 ? 16 : f->payload_len;
  size_t hlen = f->header_len > 14 ? 14 : f->header_len;
  json_t *msg;

  hex(f->header, hlen, header_hex);
  hex(f->payload, plen, payload_hex);
  msg = json_pack("{s:s, s:s, s:I, s:b, s:b, s:b, s:b, s:i, s:s, s:b, s:I, s:i, s:s, s:s, s:b}",
                  "uvws", "frame", "dir", f->dir == UVWS_FRAME_IN ? "in" : "out", "t", (json_int_t)t,
                  "fin", f->fin, "rsv1", (f->rsv & 0x40) != 0, "rsv2", (f->rsv & 0x20) != 0,
                  "rsv3", (f->rsv & 0x10) != 0, "opcode", f->opcode, "op", op_name(f->opcode),
                  "masked", f->masked, "len", (json_int_t)f->len, "len_bits", f->len_bits,
                  "header", header_hex, "payload", payload_hex, "truncated", f->len > plen);
  if (msg == NULL) return NULL;
  if (f->masked) {
    hex(f->mask, 4, mask_hex);
    for (i = 0; i < plen; i++) wire[i] = f->payload[i] ^ f->mask[i & 3];
    hex(wire, plen, wire_hex);
    json_object_set_new(msg, "mask", json_string(mask_hex));
    json_object_set_new(msg, "masked_payload", json_string(wire_hex));
  } else {
    json_object_set_new(msg, "mask", json_null());
  }
  return msg;
}

static char *dump(json_t *msg) {
  char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  return text;
}

char *uvws_app_inspect_describe(const uvws_frame_info_t *f, uint64_t t) { return dump(describe(f, t)); }

static void send_held(uvws_conn_t *conn, inspect_state_t *st) {
  json_t *held = st->held;
  st->held = NULL;
  if (held) send_json(conn, held);
}

static int is_data(int opcode) {
  return opcode == UVWS_OP_CONTINUATION || opcode == UVWS_OP_TEXT || opcode == UVWS_OP_BINARY;
}

/* Data frames say which message they belong to ("message", counted per
 * direction), and a message's last frame its size before compression
 * ("message_len"). For our own messages that is the size being sent; an
 * incoming one is only known once inflated, so its last frame's trace is
 * held until on_message, which follows it at once (any other trace first
 * sends it as it is: the message failed). */
static void inspect_frame(uvws_conn_t *conn, const uvws_frame_info_t *f) {
  inspect_state_t *st = uvws_conn_get_data(conn);
  uint64_t t = st ? uv_now(uvws_server_loop(uvws_conn_server(conn))) - st->opened : 0;
  json_t *msg = describe(f, t);
  if (msg == NULL || st == NULL) {
    if (msg) send_json(conn, msg);
    return;
  }
  send_held(conn, st);
  if (is_data(f->opcode)) {
    uint64_t *count = f->dir == UVWS_FRAME_IN ? &st->msgs_in : &st->msgs_out;
    if (f->opcode != UVWS_OP_CONTINUATION) ++*count;
    json_object_set_new(msg, "message", json_integer((json_int_t)*count));
    if (f->fin && f->dir == UVWS_FRAME_IN) {
      st->held = msg;
      return;
    }
    if (f->fin) json_object_set_new(msg, "message_len", json_integer((json_int_t)st->sending));
  }
  if (st->later) /* no other message may go between fragments: after them */
    json_array_append_new(st->later, msg);
  else
    send_json(conn, msg);
}

static void reply(uvws_conn_t *conn, const char *what, const char *error, const char *detail) {
  json_t *msg = json_pack("{s:s, s:s, s:b}", "uvws", "command", "do", what, "ok", error == NULL);
  if (msg == NULL) return;
  json_object_set_new(msg, error ? "error" : "detail", json_string(error ? error : detail));
  send_json(conn, msg);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void drop_now(uv_timer_t *t) {
  uvws_conn_t *conn = t->data;
  inspect_state_t *st = uvws_conn_get_data(conn);
  st->drop = NULL;
  uv_close((uv_handle_t *)t, free_handle);
  uvws_conn_abort(conn);
}

/* The TCP connection ends a moment after the answer, so that the answer
 * and the command's trace leave first (an abort drops what is queued). */
static void do_drop(uvws_conn_t *conn, inspect_state_t *st) {
  uv_timer_t *t;
  if (st->drop) {
    reply(conn, "drop", "a drop is already on its way", NULL);
    return;
  }
  t = malloc(sizeof(*t));
  if (t == NULL || uv_timer_init(uvws_server_loop(uvws_conn_server(conn)), t) != 0) {
    free(t);
    reply(conn, "drop", "out of memory", NULL);
    return;
  }
  t->data = conn;
  st->drop = t;
  uv_timer_start(t, drop_now, DROP_DELAY_MS, 0);
  reply(conn, "drop", NULL, "the TCP connection ends in 100 ms, without a close frame");
}

/* Any code a server may send, a reason of at most 123 bytes of UTF-8:
 * uvws_close checks both before it sends anything. */
static void do_close(uvws_conn_t *conn, json_t *cmd) {
  json_t *jcode = json_object_get(cmd, "code"), *jreason = json_object_get(cmd, "reason");
  const char *reason = "";
  int r;
  if (!json_is_integer(jcode) || json_integer_value(jcode) < 0 || json_integer_value(jcode) > 65535) {
    reply(conn, "close", "\"code\" must be a close code (an integer)", NULL);
    return;
  }
  if (jreason) {
    reason = json_string_value(jreason);
    if (reason == NULL || strlen(reason) != json_string_length(jreason)) {
      reply(conn, "close", "\"reason\" must be a string without NUL", NULL);
      return;
    }
  }
  r = uvws_close(conn, (int)json_integer_value(jcode), reason);
  if (r == UVWS_EBADCODE)
    reply(conn, "close", "a server may send 1000-1003, 1007-1014 or 3000-4999 only", NULL);
  else if (r == UV_EINVAL)
    reply(conn, "close", "the reason must be at most 123 bytes of UTF-8", NULL);
}

/* "Fragmented: " (FIN 0), a ping, "three frames, " and "one message"
 * (continuations, the last with FIN 1). */
static void do_fragments(uvws_conn_t *conn, inspect_state_t *st) {
  static const char *const parts[] = {"Fragmented: ", "three frames, ", "one message"};
  json_t *later;
  size_t i;
  reply(conn, "fragments", NULL,
        "one text message in three frames, a ping between the first two; the traces of all but "
        "the first frame follow the message");
  st->sending = strlen(parts[0]) + strlen(parts[1]) + strlen(parts[2]);
  if (uvws_send_fragment(conn, UVWS_OP_TEXT, parts[0], strlen(parts[0]), 0) == 0) {
    st->later = json_array();
    if (uvws_ping(conn, "between fragments", 17) == 0 &&
        uvws_send_fragment(conn, UVWS_OP_CONTINUATION, parts[1], strlen(parts[1]), 0) == 0)
      uvws_send_fragment(conn, UVWS_OP_CONTINUATION, parts[2], strlen(parts[2]), 1);
  }
  st->sending = 0;
  later = st->later;
  st->later = NULL;
  for (i = 0; i < json_array_size(later); i++) send_json(conn, json_incref(json_array_get(later, i)));
  json_decref(later);
}

/* A text-sized frame with the reserved opcode 3: the peer must fail the
 * connection (RFC 6455 section 5.2). uvws does not trace raw bytes, so
 * the trace is made here. */
static void do_invalid(uvws_conn_t *conn, inspect_state_t *st) {
  static const uint8_t frame[] = {0x83, 0x08, 't', 'e', 'a', 'c', 'h', 'i', 'n', 'g'};
  uvws_frame_info_t f;
  json_t *msg;
  memset(&f, 0, sizeof(f));
  f.dir = UVWS_FRAME_OUT;
  f.fin = 1;
  f.opcode = 3;
  f.len = 8;
  f.len_bits = 7;
  f.header = frame;
  f.header_len = 2;
  f.payload = frame + 2;
  f.payload_len = 8;
  reply(conn, "invalid", NULL, "a frame with the reserved opcode 3 follows: the browser must fail the connection");
  msg = describe(&f, uv_now(uvws_server_loop(uvws_conn_server(conn))) - st->opened);
  if (msg) {
    json_object_set_new(msg, "raw", json_true());
    send_json(conn, msg);
  }
  uvws_conn_send_raw(conn, frame, sizeof(frame));
}

/* A command is a JSON text message {"uvws":"command","do":...} (README,
 * "The inspector"); NULL for anything else, which is echoed. */
static json_t *command_of(uvws_opcode_t op, const void *data, size_t len) {
  json_t *cmd;
  if (op != UVWS_OP_TEXT || len == 0 || len > COMMAND_MAX || *(const char *)data != '{') return NULL;
  cmd = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
  if (cmd && !(json_is_object(cmd) && json_is_string(json_object_get(cmd, "uvws")) &&
               strcmp(json_string_value(json_object_get(cmd, "uvws")), "command") == 0)) {
    json_decref(cmd);
    cmd = NULL;
  }
  return cmd;
}

static void run_command(uvws_conn_t *conn, inspect_state_t *st, json_t *cmd) {
  const char *what = json_string_value(json_object_get(cmd, "do"));
  uint64_t now = uv_now(uvws_server_loop(uvws_conn_server(conn)));
  if (what == NULL) what = "";
  if (now - st->window >= 1000) {
    st->window = now;
    st->commands = 0;
  }
  if (++st->commands > COMMANDS_PER_SECOND) {
    reply(conn, what, "at most 5 commands a second", NULL);
  } else if (strcmp(what, "ping") == 0) {
    reply(conn, what, NULL, "a ping follows; the browser answers it with a pong and never tells the page");
    uvws_ping(conn, "uvws ping", 9);
  } else if (strcmp(what, "close") == 0) {
    do_close(conn, cmd);
  } else if (strcmp(what, "drop") == 0) {
    do_drop(conn, st);
  } else if (strcmp(what, "fragments") == 0) {
    do_fragments(conn, st);
  } else if (strcmp(what, "invalid") == 0) {
    do_invalid(conn, st);
  } else {
    reply(conn, what, "unknown command: \"do\" is ping, close, drop, fragments or invalid", NULL);
  }
}

static void inspect_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  inspect_state_t *st = uvws_conn_get_data(conn);
  json_t *cmd;
  if (st == NULL) {
    uvws_send(conn, op, data, len);
    return;
  }
  if (st->held) {
    json_object_set_new(st->held, "message_len", json_integer((json_int_t)len));
    send_held(conn, st);
  }
  if ((cmd = command_of(op, data, len)) != NULL) {
    run_command(conn, st, cmd);
    json_decref(cmd);
    return;
  }
  st->sending = len;
  uvws_send(conn, op, data, len);
  st->sending = 0;
}

static void inspect_close(uvws_conn_t *conn, int code, const char *reason, size_t reason_len) {
  inspect_state_t *st = uvws_conn_get_data(conn);
  (void)code;
  (void)reason;
  (void)reason_len;
  if (st == NULL) return;
  if (st->drop) uv_close((uv_handle_t *)st->drop, free_handle);
  json_decref(st->held);
  free(st);
}

static const char *const inspect_protocols[] = {"echo", "uvws-echo", NULL};

int uvws_app_inspect(uvws_server_t *srv, const char *path) {
  uvws_route_t route = {0};
  route.path = path;
  route.handlers.on_open = inspect_open;
  route.handlers.on_message = inspect_message;
  route.handlers.on_close = inspect_close;
  route.handlers.on_frame = inspect_frame;
  route.handlers.on_upgrade = uvws_app_deflate_choice;
  route.subprotocols = inspect_protocols;
  return uvws_server_route(srv, &route);
}

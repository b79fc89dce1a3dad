/* The WebSocket session: one open WebSocket (the public uvws_conn_t) over
 * any stream (stream.h): a TCP or TLS connection today, an HTTP/2 stream
 * later. It glues the pure engine (proto/ws.c) to the stream, reassembles
 * messages, answers pings, keeps the connection alive, applies
 * backpressure, runs the closing handshake, and implements the public
 * connection API (uvws_send, uvws_close, ...). It knows nothing of HTTP:
 * whoever accepted the upgrade hands it the stream and a view of the
 * request (uvws__ws_open_t), valid during the route's on_open only. */
#ifndef UVWS_WS_SESSION_H
#define UVWS_WS_SESSION_H

#include <zlib.h>

#include "net/stream.h"
#include "ws/open.h"
#include "proto/deflate.h"
#include "proto/ws.h"
#include "util/counters.h"
#include "util/wbuf.h"
#include "uvws.h"

/* A connection keeps its reassembly buffer (fragmented, split or inflated
 * messages) between messages up to this size, and gives it back after
 * UVWS__MSG_KEEP_MS without input: no allocation per message while busy,
 * none held while idle. */
#define UVWS__MSG_KEEP (256u * 1024u)
#define UVWS__MSG_KEEP_MS 2000

/* One loop's WebSocket context: configuration, scratch and counters shared
 * by the loop's sessions. Owned by the loop's runtime; used on that loop's
 * thread only. */
typedef struct {
  const uvws_options_t *opts;    /* the server's (read-only) */
  uvws__pmd_config_t pmd;        /* our permessage-deflate terms */
  z_stream *shared_def;          /* deflater for sessions without takeover; owned */
  uvws__buf_t zbuf;              /* one compressed message, until it is queued */
  uvws__metrics_t *m;
  uvws_server_t *server;         /* what uvws_conn_server() returns; never called */
  /* Set by the runtime: a session is gone (its subscriptions end). */
  void (*on_session_closed)(void *ctx, uvws_conn_t *c);
  void *ctx;
} uvws__ws_env_t;

/* A WebSocket session. Allocated by uvws__ws_open, freed when its stream
 * closes (after the route's on_close); it owns `msg`, `def` and `ws`'s
 * inflater. `topics` belongs to the pub/sub layer, which frees it in
 * env->on_session_closed. Used on its loop's thread only. */
struct uvws_conn_s {
  uvws__stream_t *s;
  uvws__ws_env_t *env;
  const uvws__route_t *route;
  const char *protocol;      /* points into route->subprotocols */
  const uvws__ws_open_t *open; /* during on_open only */
  uint8_t close_sent;        /* a close frame is queued: no more frames */
  uint8_t close_rcvd;        /* the peer's close frame arrived */
  uint8_t failed;            /* we failed the connection (protocol error) */
  uint8_t by_server;         /* the close started on our side */
  uint8_t tracing;           /* inside the route's on_frame */
  uint8_t awaiting_pong;     /* a keep-alive ping is unanswered */
  uint8_t drain_owed;        /* a send was refused (backpressure): on_drain is owed */
  uint8_t uncounted;         /* no longer in uvws_connections{kind="websocket"} */
  uint8_t paused;            /* the route paused reading (uvws_conn_pause) */
  uint8_t frag_out;          /* uvws_send_fragment began a message not ended yet */
  uint8_t turn_msgs;         /* messages and pings taken from this delivery of input */
  uint16_t close_code;       /* for on_close and the log */
  uint64_t started;          /* uv_now() at open */
  uint64_t last_rx;          /* uv_now() of the last bytes received */
  uint64_t last_msg;         /* uv_now() of the last message received */
  uint64_t ping_sent;        /* uv_now() of the unanswered ping */
  uvws__ws_t ws;
  uvws__buf_t msg;           /* reassembly of fragmented messages */
  uvws__buf_t unread;        /* input past the turn's messages: fed at the next flush */
  uvws__pmd_params_t pmd;    /* permessage-deflate terms, if ws.pmd */
  z_stream *def;             /* owned deflater (context takeover), or NULL */
  void *data;                /* the user's */
  void *topics;              /* the pub/sub layer's */
  uint32_t ntopics, topics_cap;
};

/* Takes over `s` as an open WebSocket: installs the session's callbacks on
 * the stream, calls the route's on_open, then feeds `rest` (bytes that
 * followed the request in the same read). 0, or UV_ENOMEM (the stream is
 * then closed). */
int uvws__ws_open(uvws__ws_env_t *env, uvws__stream_t *s, const uvws__ws_open_t *o, char *rest,
                  size_t rest_len);

/* One frame (header_len header bytes, then the payload) built once for
 * many receivers, queued by reference. 0 or the reason it was not. */
int uvws__ws_send_shared(uvws_conn_t *c, uvws__sbuf_t *frame, size_t header_len);

/* 1 while the session takes messages (open, no close sent, not failed). */
static inline int uvws__ws_sendable(const uvws_conn_t *c) {
  return !c->s->closing && !c->close_sent && !c->failed;
}

/* Ends the stream gracefully (stream.h finish): the session's end. */
void uvws__ws_finish(uvws_conn_t *c);
/* _Fail the WebSocket Connection_ (RFC 6455 section 7.1.7) with `code`. */
void uvws__ws_fail(uvws_conn_t *c, unsigned code, const char *why);

/* send.c, for session.c */
int uvws__ws_send_frame_fin(uvws_conn_t *c, int fin, int opcode, const void *data, size_t len,
                            int compress);
static inline int uvws__ws_send_frame(uvws_conn_t *c, int opcode, const void *data, size_t len,
                                      int compress) {
  return uvws__ws_send_frame_fin(c, 1, opcode, data, len, compress);
}
int uvws__ws_send_close(uvws_conn_t *c, unsigned code, const char *reason, size_t rlen);
void uvws__ws_trace(uvws_conn_t *c, uvws_frame_dir_t dir, const uint8_t *hdr, size_t hlen,
                    uint64_t len, const uint8_t *payload, size_t plen);
void uvws__ws_env_free(uvws__ws_env_t *env);

#endif

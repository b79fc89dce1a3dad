/*
 * uvws: an asynchronous WebSocket (RFC 6455) and HTTP/1.1 server on libuv.
 *
 * This is the only public header. Everything the library does is reachable
 * from here; every other header under src/ is private.
 *
 * Conventions (libuv's):
 *   - functions return 0 or a negative error code (UVWS_E* or a libuv UV_E*
 *     code); uvws_strerror() names both;
 *   - the library never exits the process and logs each failure once, at the
 *     place that decides it;
 *   - callbacks run on the loop thread; a connection pointer is valid from
 *     on_open until on_close returns, never after.
 */
#ifndef UVWS_H
#define UVWS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(UVWS_STATIC)
#define UVWS_EXTERN __attribute__((visibility("default")))
#else
#define UVWS_EXTERN
#endif

#define UVWS_VERSION_MAJOR 0
#define UVWS_VERSION_MINOR 1
#define UVWS_VERSION_PATCH 0
#define UVWS_VERSION_STRING "0.1.0"

/* Error codes of our own. They sit far below libuv's (which are -errno), so
 * the two never collide and both can travel in one int. */
#define UVWS_ERRNO_MAP(X)                                                      \
  X(EPROTO,     -30001, "WebSocket protocol error")                            \
  X(EUTF8,      -30002, "invalid UTF-8 in a text message")                     \
  X(ETOOBIG,    -30003, "message exceeds the configured limit")                \
  X(ECLOSED,    -30004, "connection is closing or closed")                     \
  X(ENOROUTE,   -30005, "no such route")                                       \
  X(EEXIST,     -30006, "route already exists")                                \
  X(EBADCODE,   -30007, "close code may not be sent")                          \
  X(ESTATE,     -30008, "operation not allowed in the current state")                 \
  X(EBACKPRESSURE, -30009, "send queue over max_backpressure; message dropped") \
  X(EUNAVAILABLE, -30010, "Redis is unreachable")                             \
  X(ETAKEN,     -30011, "name taken on another instance")

typedef enum {
#define UVWS_ERRNO_GEN(name, val, msg) UVWS_##name = (val),
  UVWS_ERRNO_MAP(UVWS_ERRNO_GEN)
#undef UVWS_ERRNO_GEN
  UVWS_ERRNO_MAX_ = -30000
} uvws_errno_t;

/** Returns a static description of a UVWS_E* or UV_E* code. */
UVWS_EXTERN const char *uvws_strerror(int err);
/** The library's version, "MAJOR.MINOR.PATCH". */
UVWS_EXTERN const char *uvws_version(void);

/* ---- WebSocket constants (RFC 6455 section 5.2 and 7.4) ---------------- */

typedef enum {
  UVWS_OP_CONTINUATION = 0x0,
  UVWS_OP_TEXT = 0x1,
  UVWS_OP_BINARY = 0x2,
  UVWS_OP_CLOSE = 0x8,
  UVWS_OP_PING = 0x9,
  UVWS_OP_PONG = 0xA
} uvws_opcode_t;

enum {
  UVWS_CLOSE_NORMAL = 1000,
  UVWS_CLOSE_GOING_AWAY = 1001,
  UVWS_CLOSE_PROTOCOL_ERROR = 1002,
  UVWS_CLOSE_UNSUPPORTED = 1003,
  UVWS_CLOSE_NO_STATUS = 1005,   /* never on the wire */
  UVWS_CLOSE_ABNORMAL = 1006,    /* never on the wire */
  UVWS_CLOSE_INVALID_DATA = 1007,
  UVWS_CLOSE_POLICY = 1008,
  UVWS_CLOSE_TOO_BIG = 1009,
  UVWS_CLOSE_EXTENSION = 1010,
  UVWS_CLOSE_INTERNAL = 1011,
  UVWS_CLOSE_TRY_AGAIN = 1013
};

/* ---- Logging ------------------------------------------------------------ */

typedef enum {
  UVWS_LOG_ERROR = 0,
  UVWS_LOG_WARN = 1,
  UVWS_LOG_INFO = 2,
  UVWS_LOG_DEBUG = 3
} uvws_log_level_t;

/** Receives every log line (without a trailing newline). The default writes
 * "<ISO-8601 time> <level> <message>" to stderr. */
typedef void (*uvws_log_cb)(uvws_log_level_t level, const char *msg, void *user);

/** Lines above `level` are not written (default UVWS_LOG_INFO). */
UVWS_EXTERN void uvws_log_set_level(uvws_log_level_t level);
/** Sends every log line to `cb` instead of stderr; NULL restores stderr. */
UVWS_EXTERN void uvws_log_set_handler(uvws_log_cb cb, void *user);
/** Parses "error", "warn", "info" or "debug"; returns UV_EINVAL otherwise. */
UVWS_EXTERN int uvws_log_level_parse(const char *name, uvws_log_level_t *out);
/** Writes one log line (printf format, at most 1 KiB) at `level` through
 * the same handler and level filter as the library's own lines, so an
 * application's lines (a route's, a child process's stderr) keep the
 * server's format and destination. */
UVWS_EXTERN void uvws_log(uvws_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- Server and routes --------------------------------------------------- */

typedef struct uvws_server_s uvws_server_t;
typedef struct uvws_conn_s uvws_conn_t;
typedef struct uvws_upgrade_s uvws_upgrade_t;

typedef struct {
  const char *host;          /* listen address; default "localhost", which
                                means both 127.0.0.1 and ::1 (two sockets) */
  int port;                  /* default 8080; 0 picks an ephemeral port */
  const char *web_root;      /* static files; NULL serves none (404) */
  size_t max_message;        /* bytes per WebSocket message; default 16 MiB */
  size_t max_header_bytes;   /* request line + headers; default 16 KiB */
  size_t max_url;            /* request target length; default 8 KiB */
  unsigned handshake_timeout_ms; /* a whole HTTP request (the upgrade request
                                   too) must arrive within this; default 10 s */
  unsigned keepalive_timeout_ms; /* idle keep-alive HTTP connection; default 60 s */
  unsigned close_timeout_ms; /* wait for the peer's close frame; default 5 s */
  unsigned idle_timeout_ms;  /* close (1001) a WebSocket that sent no message for
                                this long; 0 = never (default) */
  unsigned ping_interval_ms; /* ping a WebSocket quiet for this long; 0 = never;
                                default 30 s */
  unsigned ping_timeout_ms;  /* no pong or data within this after a ping: the
                                connection is dropped (1006); default 10 s */
  unsigned shutdown_drain_ms; /* before uvws_server_shutdown closes anything,
                                keep serving this long with /healthz answering
                                503, so load balancers stop sending new
                                clients; default 0 */
  unsigned shutdown_timeout_ms; /* uvws_server_shutdown waits this long for
                                   closing handshakes, then drops; default 5 s */
  unsigned max_connections;  /* more get 503 and are closed; 0 = no limit
                                (default) */
  unsigned max_connections_per_ip; /* more from one address get 429; 0 = no
                                      limit (default) */
  size_t max_frame;          /* largest frame payload; 0 = max_message (default) */
  size_t max_backpressure;   /* a send that would queue more than this for one
                                connection closes it with 1013, or is dropped on
                                routes with drop_on_backpressure (which drop at
                                1 MiB already: see there); default 16 MiB,
                                0 = no limit */
  const char *allow_origin;  /* comma-separated Origins allowed to upgrade
                                (browsers send Origin); NULL = any (default) */
  int metrics;               /* serve GET /metrics and /healthz; default 1 */
  const char *trusted_proxies; /* comma-separated addresses whose X-Forwarded-For
                                  or Forwarded header names the real client (for
                                  logs and per-IP limits); NULL = none (default) */
  /* TLS (https:// and wss://) on a second port, with mbedTLS */
  const char *tls_cert;      /* PEM certificate chain file */
  const char *tls_key;       /* PEM private key file */
  int tls_self_signed;       /* generate a key and certificate in memory */
  int tls_port;              /* default 8443; 0 picks a free one */
  int tls_only;              /* no plain listener */
  int log_json;              /* access and session log lines as JSON; default 0 */
  int log_connections;       /* log WebSocket open/close at info; default 1 */
  /* permessage-deflate (RFC 7692) */
  int deflate;               /* accept offers; default 1 */
  int deflate_level;         /* zlib level 1-9; default 6 */
  int deflate_window_bits;   /* our window, 9-15; default 15 */
  int deflate_mem_level;     /* zlib memLevel 1-9; default 8 */
  size_t deflate_min_size;   /* shorter messages are sent uncompressed; default 64 */
  int deflate_takeover;      /* keep our context between messages: better ratio,
                                but a ~(2^(bits+2) + 2^(mem+9)) byte deflater per
                                connection; default 0 (one shared deflater) */
  /* Scaling */
  unsigned threads;          /* event loops, one per thread; default 1. With
                                more, uvws_server_start() runs threads - 1 more
                                loops on threads of its own, each accepting on
                                the same port (SO_REUSEPORT); handlers then run
                                on those threads too (see uvws_conn_server) */
  const char *redis;         /* "redis://HOST:PORT": topics span every uvws on
                                that Redis (see uvws_publish); NULL = this
                                process only (default) */
} uvws_options_t;

/** Fills in the defaults above. Always call it before changing fields, so
 * fields added later keep sane values. */
UVWS_EXTERN void uvws_options_init(uvws_options_t *opts);

/** One frame as it crossed the wire, for tracing (see on_frame). */
typedef enum { UVWS_FRAME_IN = 0, UVWS_FRAME_OUT = 1 } uvws_frame_dir_t;

typedef struct {
  uvws_frame_dir_t dir;
  int fin;
  int rsv;                  /* RSV bits in place: 0x40 RSV1, 0x20 RSV2, 0x10 RSV3 */
  int opcode;               /* may be a reserved value on a failing frame */
  int masked;
  uint8_t mask[4];
  uint64_t len;             /* payload length */
  int len_bits;             /* how the length was encoded: 7, 16 or 64 */
  const uint8_t *header;    /* the header bytes as on the wire */
  size_t header_len;
  const uint8_t *payload;   /* the first payload bytes, unmasked */
  size_t payload_len;       /* at most 16 */
} uvws_frame_info_t;

/** Callbacks of a WebSocket route. Any of them may be NULL.
 *
 * on_message: one complete message (fragments are reassembled, text is
 *   already validated as UTF-8). `data` is valid only during the call: copy
 *   it to keep it. uvws_send() from inside the callback is the cheap path.
 * on_close: the connection is gone; `code` is the code of the close frame the
 *   peer sent (1005 if it had none), or 1006 if no close frame came (the
 *   transport died, or the peer never answered ours): RFC 6455 section 7.1.5.
 *   `reason` is not NUL-terminated.
 * on_drain: the send queue fell below the low-water mark again. */
typedef struct {
  void (*on_open)(uvws_conn_t *conn);
  void (*on_message)(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len);
  void (*on_close)(uvws_conn_t *conn, int code, const char *reason, size_t reason_len);
  void (*on_drain)(uvws_conn_t *conn);
  /* Streaming: when set, messages are not reassembled; each piece is
   * passed on as it arrives (`fin` marks the message's last piece, an
   * empty message is one call with len 0 and fin 1) and on_message is not
   * called. Text pieces are valid UTF-8 so far, but a piece may end inside
   * a multi-byte character. --max-message still applies. */
  void (*on_fragment)(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len, int fin);
  /* Tracing: every frame received (when complete, before it is acted on)
   * and sent (before it is queued). Frames sent from inside on_frame are not
   * traced themselves. */
  void (*on_frame)(uvws_conn_t *conn, const uvws_frame_info_t *frame);
  /* Deciding: an upgrade request for the route passed uvws's own checks
   * (method, version, headers, Origin, limits) and the subprotocol was
   * chosen; nothing was answered yet. Return 0 to accept (the 101 follows,
   * then on_open), or an HTTP status from 400 to 599 to refuse: the client
   * gets that status with the uvws_upgrade_add_header() headers, and the
   * connection is closed. Anything else is answered 500 and logged. */
  int (*on_upgrade)(uvws_upgrade_t *up);
} uvws_handlers_t;

typedef struct {
  const char *path;                /* exact path, e.g. "/echo" */
  uvws_handlers_t handlers;
  const char *const *subprotocols; /* NULL-terminated list it speaks, or NULL */
  void *user;                      /* uvws_conn_route_data() returns it */
  int drop_on_backpressure;        /* drop the message (uvws_send returns
                                      UVWS_EBACKPRESSURE) instead of closing the
                                      connection: over max_backpressure, and
                                      over 1 MiB queued (where the server stops
                                      reading the connection, so a member would
                                      not be heard while others fill its queue),
                                      unless the queue is empty */
} uvws_route_t;

/** Creates a server on `loop` (not started). The options and the strings they
 * point to are copied. With `loop` NULL the server runs on threads of its
 * own: uvws_server_start() returns at once with every loop running
 * (options.threads of them), and uvws_server_stop() ends it. */
UVWS_EXTERN int uvws_server_new(uvws_server_t **out, uv_loop_t *loop,
                                const uvws_options_t *opts);

/** Adds a WebSocket route, before uvws_server_start (UV_EINVAL after: open
 * connections point into the route table). The route struct and its strings
 * are copied; the subprotocol list too. Returns UVWS_EEXIST for a duplicate
 * path, UV_EINVAL for a path that is not '/' followed by what a request
 * target carries as is (RFC 3986 pchars: letters, digits, -._~!$&'()*+,;=:@
 * and %XX escapes, spelt as clients send them: routes are matched against
 * the undecoded target), so no space, '?', '#' or non-ASCII byte. */
UVWS_EXTERN int uvws_server_route(uvws_server_t *srv, const uvws_route_t *route);

/** Serves the files under `dir` at URL `prefix` (e.g. "/docs"), beside the
 * web root; the longest matching prefix wins. Same rules as the web root:
 * GET/HEAD, no escape from `dir`, symlinks only inside it. Before
 * uvws_server_start only (UV_EINVAL after). */
UVWS_EXTERN int uvws_server_mount(uvws_server_t *srv, const char *prefix, const char *dir);

/** Binds and listens. Logs "listening on http://HOST:PORT" at info level. A
 * start that fails (a port in use, a missing folder, a bad certificate)
 * leaves nothing in the loop: free the server at once, or fix the cause and
 * start it again. */
UVWS_EXTERN int uvws_server_start(uvws_server_t *srv);

/** The port actually bound (useful with port 0), or a negative error. */
UVWS_EXTERN int uvws_server_port(const uvws_server_t *srv);
/** The TLS port actually bound, or a negative error without TLS. */
UVWS_EXTERN int uvws_server_tls_port(const uvws_server_t *srv);

/** Loads tls_cert and tls_key again (e.g. on SIGHUP): new connections get
 * the new certificate, open ones keep theirs. On error the old one stays,
 * the reason is logged, and a negative code is returned. */
UVWS_EXTERN int uvws_server_tls_reload(uvws_server_t *srv);
/** "AB:CD:..." SHA-256 of the certificate in use, or NULL without TLS. */
UVWS_EXTERN const char *uvws_server_tls_fingerprint(const uvws_server_t *srv);

/** Stops accepting, sends close 1001 to every WebSocket, ends HTTP
 * connections, and calls `cb` once every handle is closed; after that the
 * server may be freed with uvws_server_free(). */
UVWS_EXTERN void uvws_server_shutdown(uvws_server_t *srv, void (*cb)(uvws_server_t *srv));
/** For a server created without a loop: from any thread, shuts it down
 * gracefully (as uvws_server_shutdown) and returns when every one of its
 * threads has ended; then uvws_server_free(). UVWS_ESTATE for a server on
 * the caller's loop. */
UVWS_EXTERN int uvws_server_stop(uvws_server_t *srv);
/** Frees a server that was never started (or whose start failed), or whose
 * shutdown callback ran. */
UVWS_EXTERN void uvws_server_free(uvws_server_t *srv);

/** The loop the server runs on. */
UVWS_EXTERN uv_loop_t *uvws_server_loop(const uvws_server_t *srv);
/** The server's user pointer (NULL until set). */
UVWS_EXTERN void *uvws_server_get_data(const uvws_server_t *srv);
/** Sets the server's user pointer; the library never touches it. */
UVWS_EXTERN void uvws_server_set_data(uvws_server_t *srv, void *data);

/* ---- Connections ----------------------------------------------------------- */

/** Queues one message. The payload is copied or written before the call
 * returns, so `data` may be reused at once. Returns UVWS_ECLOSED once a close
 * frame was sent or received. */
UVWS_EXTERN int uvws_send(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len);
/** uvws_send of a NUL-terminated UTF-8 string as a text message. */
UVWS_EXTERN int uvws_send_text(uvws_conn_t *conn, const char *text);

/** Flags for uvws_send_ex. */
enum {
  UVWS_SEND_UNTRACED = 1,  /* not reported to on_frame: for tracers' own messages */
  UVWS_SEND_NO_COMPRESS = 2 /* never compress this message */
};
/** uvws_send, with UVWS_SEND_* flags ORed together. */
UVWS_EXTERN int uvws_send_ex(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len,
                             unsigned flags);
/** Sends a ping with up to 125 bytes of payload (UV_EINVAL beyond). */
UVWS_EXTERN int uvws_ping(uvws_conn_t *conn, const void *data, size_t len);

/** Sends one fragment of a message (RFC 6455 section 5.4), never
 * compressed: the first with `op` UVWS_OP_TEXT or UVWS_OP_BINARY, the
 * next ones with UVWS_OP_CONTINUATION, the last with `fin` 1. Pings and
 * uvws_close may go between fragments, other messages may not: until the
 * last fragment, uvws_send and publishes to this connection return
 * UVWS_ESTATE, and so does a fragment out of that order. Text fragments
 * together must be valid UTF-8. */
UVWS_EXTERN int uvws_send_fragment(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len,
                                   int fin);

/** Closes the TCP connection at once, without a close frame: what is still
 * queued is dropped, the peer sees the connection lost (1006 in a browser),
 * and on_close follows with 1006 after the call has returned. For cutting
 * off a peer, and for showing a learner an abnormal closure. UVWS_ECLOSED
 * if the connection is already closing. */
UVWS_EXTERN int uvws_conn_abort(uvws_conn_t *conn);

/** The most uvws_conn_send_raw() writes at once. */
#define UVWS_RAW_MAX 256
/** For teaching and testing peers only: writes 1 to UVWS_RAW_MAX bytes to
 * the connection as they are, outside uvws's framing (no header added,
 * nothing checked, not traced), so that a page can watch its browser
 * reject, say, a frame with a reserved opcode. Bytes that are not whole
 * frames the peer can parse break the connection, and uvws's own sends
 * know nothing of them. UV_EINVAL for a length out of range. */
UVWS_EXTERN int uvws_conn_send_raw(uvws_conn_t *conn, const void *data, size_t len);

/** Starts the closing handshake with `code` (1000-1003, 1007-1014 or
 * 3000-4999) and an optional UTF-8 reason of at most 123 bytes. The TCP
 * connection ends when the peer answers or after close_timeout_ms. */
UVWS_EXTERN int uvws_close(uvws_conn_t *conn, int code, const char *reason);

/** The connection's user pointer (NULL until set). */
UVWS_EXTERN void *uvws_conn_get_data(const uvws_conn_t *conn);
/** Sets the connection's user pointer; free what it points to in on_close. */
UVWS_EXTERN void uvws_conn_set_data(uvws_conn_t *conn, void *data);
/** The `user` pointer of the connection's route. */
UVWS_EXTERN void *uvws_conn_route_data(const uvws_conn_t *conn);
/** The server the connection belongs to. */
UVWS_EXTERN uvws_server_t *uvws_conn_server(const uvws_conn_t *conn);
/** The route path the connection was upgraded on (e.g. "/echo"). */
UVWS_EXTERN const char *uvws_conn_path(const uvws_conn_t *conn);
/* ---- Publish/subscribe ------------------------------------------------------ */

/** Subscribes an open WebSocket to `topic` (any non-empty string). Repeated
 * subscriptions are one. Subscriptions end when the connection closes. */
UVWS_EXTERN int uvws_subscribe(uvws_conn_t *conn, const char *topic);
/** Ends a subscription; UVWS_ENOROUTE if there was none. */
UVWS_EXTERN int uvws_unsubscribe(uvws_conn_t *conn, const char *topic);
/** Sends one message to every subscriber of `topic` on this server, in
 * subscription order. The frame is built once and shared by every
 * receiver's queue (sent uncompressed, which is valid with or without
 * permessage-deflate). Subscribers over max_backpressure are closed or skip
 * the message as their route says. Returns how many received it.
 *
 * With threads > 1 the subscribers of every loop get it, this loop's too,
 * through each loop's queue, a moment later: the call returns 0. Publishes
 * made one after another (for example under a lock, as /chat does) reach
 * every subscriber in that order; a subscription receives exactly what is
 * published after uvws_subscribe() returned. With options.redis the message
 * also goes to the other instances on that Redis. */
UVWS_EXTERN int uvws_publish(uvws_server_t *srv, const char *topic, uvws_opcode_t op,
                             const void *data, size_t len);
/** A message another uvws instance published (options.redis): the topic
 * (`topic_len` bytes, not NUL-terminated), the opcode and the payload, valid
 * during the call. */
typedef void (*uvws_remote_cb)(uvws_server_t *srv, const char *topic, size_t topic_len,
                               uvws_opcode_t op, const void *data, size_t len, void *user);
/** Calls `cb` for every message that arrives from another instance through
 * Redis, on the loop of the server given (the one the user created), before
 * it is delivered to the local subscribers; lets an application keep state
 * (a chat's history, say) in step across instances. Set it before
 * uvws_server_start(). UVWS_ESTATE without options.redis. */
UVWS_EXTERN int uvws_server_on_remote(uvws_server_t *srv, uvws_remote_cb cb, void *user);
/** uvws_publish for this instance's subscribers only (on every thread),
 * never sent to Redis: for an application that delivers what it received
 * from Redis itself (see uvws_publish_sequenced). */
UVWS_EXTERN int uvws_publish_local(uvws_server_t *srv, const char *topic, uvws_opcode_t op,
                                   const void *data, size_t len);
/** A text message put in one order across every instance (options.redis).
 * In one Redis script the topic gets its next sequence number N (INCR of
 * the key "uvws:seq:<topic>", which starts at Redis's clock in
 * microseconds, so numbers keep growing even across a Redis restart that
 * lost the key), the message
 * head + decimal N + tail is appended to the stream "uvws:log:<topic>"
 * with the entry id "N-0" (trimmed to about `keep` entries, MAXLEN ~),
 * and published. Redis's one order of scripts is then the topic's order.
 * Nothing is delivered to local subscribers: every instance, this one
 * included, hears the message from Redis through the callback of
 * uvws_server_on_sequenced() and delivers it as it sees fit
 * (uvws_publish_local). From any thread. Returns 0 once on its way, or
 * UVWS_EUNAVAILABLE while Redis is unreachable (nothing was sent),
 * UVWS_ESTATE without options.redis, UV_EINVAL for a bad argument. */
UVWS_EXTERN int uvws_publish_sequenced(uvws_server_t *srv, const char *topic, const char *head,
                                       size_t head_len, const char *tail, size_t tail_len,
                                       size_t keep);
/** A sequenced message as it came back from Redis: its topic (`topic_len`
 * bytes), its number and its text (`len` bytes, valid during the call).
 * Messages of one topic arrive in number order; after a lost connection
 * there may be a gap. */
typedef void (*uvws_sequenced_cb)(uvws_server_t *srv, const char *topic, size_t topic_len,
                                  uint64_t seq, const char *data, size_t len, void *user);
/** Calls `cb` on the loop of the server given for every sequenced message
 * of every instance, this one's included. Set it before
 * uvws_server_start(). UVWS_ESTATE without options.redis. */
UVWS_EXTERN int uvws_server_on_sequenced(uvws_server_t *srv, uvws_sequenced_cb cb, void *user);
/** One logged sequenced message: its number and text (not NUL-terminated). */
typedef struct {
  uint64_t seq;
  const char *data;
  size_t len;
} uvws_seq_entry_t;
/** The answer of uvws_redis_range: 0 and the entries, oldest first (valid
 * during the call), or UVWS_EUNAVAILABLE if Redis went away first. */
typedef void (*uvws_range_cb)(uvws_server_t *srv, int status, const uvws_seq_entry_t *entries,
                              size_t n, void *user);
/** Reads the log of a topic's sequenced messages (uvws_publish_sequenced):
 * with `after` 0 its last `count` entries, else up to `count` entries
 * numbered above `after`. `cb` is called once, later, on the loop of the
 * server given (the caller's loop: pass uvws_conn_server()), unless the
 * server stops first. From any thread. 0, UVWS_EUNAVAILABLE while Redis
 * is unreachable (cb is not called), UVWS_ESTATE without options.redis. */
UVWS_EXTERN int uvws_redis_range(uvws_server_t *srv, const char *topic, uint64_t after, size_t count,
                                 uvws_range_cb cb, void *user);
/** Calls `cb(srv, up, user)` on the loop of the server given each time the
 * Redis link comes up (1: connected and subscribed) or goes down (0).
 * Before uvws_server_start(); UVWS_ESTATE without options.redis. */
UVWS_EXTERN int uvws_server_on_redis_state(uvws_server_t *srv, void (*cb)(uvws_server_t *srv, int up, void *user),
                                           void *user);
/** This instance's wills (options.redis): text messages, each for a topic,
 * that one surviving instance publishes if this one dies without a word
 * (SIGKILL, a crash, a lost host). Each reaches every instance as another
 * instance's message does (uvws_server_on_remote, then the topic's
 * subscribers), exactly once. */
typedef struct uvws_wills_s uvws_wills_t;
typedef void (*uvws_wills_cb)(uvws_server_t *srv, uvws_wills_t *wills, void *user);
/** Gives the instance a heartbeat: every ttl_ms / 3 while Redis is up (and
 * at once when it comes up), `cb` lists the wills (uvws_wills_add) on the
 * loop of the server given; they replace the previous list in Redis, with
 * a key that expires ttl_ms later unless the next beat renews it. The same
 * beat publishes the wills of every instance whose key expired, so they go
 * out within ttl_ms + ttl_ms / 3 of the death. The instance's id is fresh
 * at each start: a restarted instance has no wills from before. If this
 * instance's own wills went out while it lived (its link was away longer
 * than ttl_ms), `buried` (if not NULL) is called on the same loop once the
 * link is back, so it can say again what they undid. Before
 * uvws_server_start(); UVWS_ESTATE without options.redis, UV_EINVAL for
 * ttl_ms under 2000. `cb` may be NULL: the heartbeat alone, which
 * buries a dead instance's presence (uvws_presence_join). */
UVWS_EXTERN int uvws_server_on_wills(uvws_server_t *srv, unsigned ttl_ms, uvws_wills_cb cb,
                                     void (*buried)(uvws_server_t *srv, void *user), void *user);
/** Adds a will (both strings copied; `text` UTF-8). 0 or UV_ENOMEM. */
UVWS_EXTERN int uvws_wills_add(uvws_wills_t *wills, const char *topic, const char *text);
/** The names a topic's presence holds on the other instances (see
 * uvws_presence_join), each once, valid during the call; status 0, or
 * (with n 0) UVWS_ETAKEN if one of them holds the name asked for, or
 * UVWS_EUNAVAILABLE if Redis went away first. */
typedef void (*uvws_presence_cb)(uvws_server_t *srv, int status, const char *const *names, size_t n,
                                 void *user);
/** Presence kept in Redis (options.redis): says that `name` is in `topic`
 * on this instance. One script stores the entry (the hash
 * "uvws:pres:<topic>", field "<instance id> <name>", value `leave_text`)
 * and, only if it was not there yet, publishes `join_text` to the other
 * instances (never to this one's subscribers: deliver it yourself, with
 * uvws_publish_local), so saying a join again after a lost link is heard
 * only by those who missed it. With `cb`, the name must be free on the
 * other instances (else nothing is stored or published, and cb gets
 * UVWS_ETAKEN: Redis runs one script at a time, so of two instances
 * asking for one name at once, one gets it), and cb then gets (on the
 * caller's loop, later) the names the topic holds on other instances at
 * that moment, in the order of the other instances' messages: every one
 * published before it is reflected in the list, every later one arrives
 * after it. Without `cb` the entry is stored whatever the others hold
 * (for saying again a join that was granted). When the instance dies, the heartbeat of
 * uvws_server_on_wills() (which presence needs; its `cb` may be NULL)
 * removes its entries and publishes `leave_text` of each one still there,
 * once. Strings are UTF-8 without NUL. From any thread. 0,
 * UVWS_EUNAVAILABLE while Redis is unreachable (nothing stored, cb not
 * called), UVWS_ESTATE without options.redis, UV_EINVAL for a bad
 * argument. */
UVWS_EXTERN int uvws_presence_join(uvws_server_t *srv, const char *topic, const char *name,
                                   const char *join_text, const char *leave_text, uvws_presence_cb cb,
                                   void *user);
/** Stores again an entry this instance had (uvws_presence_join without
 * `cb`), after its link to Redis was lost: if the entry is missing
 * because this instance was buried as dead (the others heard its
 * `leave_text`), `join_text` is published; if it is missing because Redis
 * lost its data (a restart without persistence: the others still list
 * the member), it is stored without a word. Same returns as
 * uvws_presence_join. */
UVWS_EXTERN int uvws_presence_restore(uvws_server_t *srv, const char *topic, const char *name,
                                      const char *join_text, const char *leave_text);
/** Ends `name`'s entry in `topic` (uvws_presence_join) and, only if it
 * was there, publishes `leave_text` to the other instances: a member
 * already buried as dead is not announced leaving twice. While Redis is
 * unreachable the leave is kept (up to 100 000) and sent first when the
 * link is back, so a member who left meanwhile is not listed forever.
 * From any thread. 0, UVWS_EUNAVAILABLE if it could not be kept,
 * UVWS_ESTATE without options.redis, UV_EINVAL for a bad argument. */
UVWS_EXTERN int uvws_presence_leave(uvws_server_t *srv, const char *topic, const char *name,
                                    const char *leave_text);
/** 1 while the server is connected to Redis and subscribed, else 0. From
 * any thread. */
UVWS_EXTERN int uvws_server_redis_up(const uvws_server_t *srv);
/** Subscribers of `topic` right now. */
UVWS_EXTERN size_t uvws_topic_subscribers(const uvws_server_t *srv, const char *topic);

/** 1 if permessage-deflate was negotiated. */
UVWS_EXTERN int uvws_conn_compressed(const uvws_conn_t *conn);
/** The negotiated subprotocol, or NULL. */
UVWS_EXTERN const char *uvws_conn_protocol(const uvws_conn_t *conn);
/** "ip:port" of the peer ("[ip]:port" for IPv6). */
UVWS_EXTERN const char *uvws_conn_peer(const uvws_conn_t *conn);
/** Bytes queued in user space and in libuv that the kernel has not taken. */
UVWS_EXTERN size_t uvws_conn_buffered_amount(const uvws_conn_t *conn);

/** The upgrade request, readable during on_open only (NULL / UV_ENOENT
 * afterwards): its target, its headers in arrival order, and the 101
 * response head exactly as sent. None of the strings is NUL-terminated
 * except the response head. */
UVWS_EXTERN const char *uvws_conn_request_target(const uvws_conn_t *conn, size_t *len);
/** Header `index` (0-based, arrival order); UV_ENOENT past the last. */
UVWS_EXTERN int uvws_conn_request_header_at(const uvws_conn_t *conn, size_t index,
                                            const char **name, size_t *name_len,
                                            const char **value, size_t *value_len);
/** The 101 response, status line and headers, NUL-terminated. */
UVWS_EXTERN const char *uvws_conn_response_head(const uvws_conn_t *conn);

/* ---- Upgrade decisions (on_upgrade) ------------------------------------------ */

/** The request being decided, valid during on_upgrade only. Strings are not
 * NUL-terminated unless said. */
UVWS_EXTERN const char *uvws_upgrade_target(const uvws_upgrade_t *up, size_t *len);
/** Header `index` (0-based, arrival order); UV_ENOENT past the last. */
UVWS_EXTERN int uvws_upgrade_header_at(const uvws_upgrade_t *up, size_t index, const char **name,
                                       size_t *name_len, const char **value, size_t *value_len);
/** The first header called `name` (case-insensitive), or NULL. */
UVWS_EXTERN const char *uvws_upgrade_header(const uvws_upgrade_t *up, const char *name, size_t *len);
/** "ip:port" of the peer ("[ip]:port" for IPv6), NUL-terminated; the client a
 * trusted proxy named, if any. */
UVWS_EXTERN const char *uvws_upgrade_peer(const uvws_upgrade_t *up);
/** 1 if the connection is TLS. */
UVWS_EXTERN int uvws_upgrade_secure(const uvws_upgrade_t *up);
/** The subprotocol the 101 will name (NUL-terminated), or NULL. */
UVWS_EXTERN const char *uvws_upgrade_protocol(const uvws_upgrade_t *up);
/** The route's `user` pointer. */
UVWS_EXTERN void *uvws_upgrade_route_data(const uvws_upgrade_t *up);
/** The server (with --threads, the loop's own) the request arrived on. */
UVWS_EXTERN uvws_server_t *uvws_upgrade_server(const uvws_upgrade_t *up);
/** Declines permessage-deflate for this connection even if both sides could
 * use it (for a page that teaches frame lengths, or a route whose messages do
 * not compress). */
UVWS_EXTERN void uvws_upgrade_decline_deflate(uvws_upgrade_t *up);
/** Adds a header to the answer, the 101 or the refusal (Retry-After with a
 * 503, a cookie with a 101). UV_EINVAL for a name that is not an HTTP token
 * or a value with CR, LF or NUL; UV_ENOBUFS past 2 KiB of added headers. */
UVWS_EXTERN int uvws_upgrade_add_header(uvws_upgrade_t *up, const char *name, const char *value);
/** Gives the connection its user pointer from the start (on_open sees it in
 * uvws_conn_get_data). If the upgrade is accepted but the connection never
 * opens (the peer left, memory ran out), `release(data)` is called instead,
 * so a resource taken while deciding always has an owner. `release` may be
 * NULL. */
UVWS_EXTERN void uvws_upgrade_set_data(uvws_upgrade_t *up, void *data, void (*release)(void *data));

/** Stops (1) or resumes (0) reading the connection: a route whose consumer
 * is slow (a pipe to a process, a database) stops its peer through TCP
 * instead of buffering. Messages already read (at most one read, 64 KiB)
 * are still delivered. Pings are not answered while paused either. */
UVWS_EXTERN int uvws_conn_pause(uvws_conn_t *conn, int paused);

/** Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2): base64 of
 * SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"). Writes 28 characters
 * and a NUL to `accept`, and the raw digest to `sha1` unless it is NULL. */
UVWS_EXTERN int uvws_accept_key(const char *key, size_t len, char accept[29], uint8_t sha1[20]);

#ifdef __cplusplus
}
#endif
#endif /* UVWS_H */

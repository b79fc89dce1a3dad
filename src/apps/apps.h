/* The routes the uvws program ships. Each is an ordinary user of uvws.h. */
#ifndef UVWS_APPS_H
#define UVWS_APPS_H

#include "uvws.h"

/* Echo: each message is sent back with the same type and bytes. */
int uvws_app_echo(uvws_server_t *srv, const char *path);

/* Echo that also reports the handshake and every frame to its client as
 * JSON text messages (format in inspect.c). */
int uvws_app_inspect(uvws_server_t *srv, const char *path);

/* Broadcast: each message goes to every connection of the route. */
int uvws_app_broadcast(uvws_server_t *srv, const char *path);

/* Chat rooms on publish/subscribe (protocol in the README). `history`
 * messages are kept per room. With options.redis an instance that dies
 * has its members leave everywhere within about presence_ttl_s * 4 / 3
 * seconds (at least 2). *handle is freed with uvws_app_chat_free after
 * the server is. */
int uvws_app_chat(uvws_server_t *srv, const char *path, size_t history, unsigned presence_ttl_s,
                  void **handle);
void uvws_app_chat_free(void *handle);

/* Exec routes: each WebSocket is served by a program (README, "Your backend
 * in any language"). One app holds the options of every exec route; create
 * it before the routes, free it after the server. */
typedef struct uvws_exec_s uvws_exec_t;
typedef struct {
  unsigned max_procs;        /* running programs, all routes and loops; more
                                upgrades get 503 (default 256) */
  unsigned close_timeout_ms; /* after stdin is closed, SIGTERM after this,
                                SIGKILL after as long again (default 1000) */
  const char *stderr_mode;   /* "log" (default), "discard" or "client" */
  const char *passenv;       /* comma-separated variables passed on, or NULL */
  size_t max_line;           /* longest stdout line (text routes): 1009 beyond */
} uvws_exec_options_t;
void uvws_exec_options_init(uvws_exec_options_t *o);
/* UV_EINVAL for a bad stderr mode; takes PATH and the passenv values now. */
int uvws_exec_new(uvws_exec_t **out, const uvws_exec_options_t *o);
/* `command` is split into words as a shell would (quotes, backslashes), but
 * nothing is expanded and no shell runs. binary: bytes both ways, unframed;
 * else lines of text. UV_EINVAL for an empty or badly quoted command. */
int uvws_app_exec(uvws_server_t *srv, uvws_exec_t *app, const char *path, const char *command,
                  int binary);
/* Every executable file in `dir` becomes a text route at /NAME, named as
 * it is found at start: no dot files, no folders, names made of letters,
 * digits, '.', '_' and '-' only, symlinks only to files inside `dir`.
 * Returns how many routes were added, or a negative code. */
int uvws_app_exec_dir(uvws_server_t *srv, uvws_exec_t *app, const char *dir);
/* One program for every client of `path` (protocol in exec_shared.c and
 * the README): started by uvws_exec_shared_start, restarted with backoff. */
int uvws_app_exec_shared(uvws_server_t *srv, uvws_exec_t *app, const char *path, const char *command);
/* The subprotocols the exec route at `path` speaks (any kind: command,
 * binary, shared or found by uvws_app_exec_dir), `list` being names
 * separated by commas (RFC 6455 tokens; the caller checks their
 * characters). Call before the route is added. The route answers with the
 * first name of the client's offer that it speaks, in the client's order
 * (uvws__select_subprotocol), and the program sees it as UVWS_PROTOCOL.
 * UV_EINVAL for an empty name, UV_EEXIST for a path given twice. */
int uvws_exec_protocols(uvws_exec_t *app, const char *path, const char *list);
/* After every exec route is added: a path given to uvws_exec_protocols
 * that no exec route has (a typo would silently negotiate nothing), or
 * NULL. */
const char *uvws_exec_protocols_unused(const uvws_exec_t *app);
/* After uvws_server_start, on the server's (the main) loop. */
int uvws_exec_shared_start(uvws_exec_t *app, uvws_server_t *srv);
/* Call when the server starts shutting down (on the loop given to the
 * server, `budget_ms` being its drain and shutdown timeouts): programs
 * still running late in the budget get SIGTERM, then SIGKILL, so none
 * outlives it even when clients never answer the closing handshake. */
int uvws_exec_shutdown(uvws_exec_t *app, uv_loop_t *loop, unsigned budget_ms);
/* After the loop has ended. */
void uvws_exec_free(uvws_exec_t *app);

/* The JSON text (malloc'd; free() it) describing one frame, `t` ms after
 * open: the inspector's message format, exposed for tests. */
char *uvws_app_inspect_describe(const uvws_frame_info_t *frame, uint64_t t);

/* 1 if the query of `target` (`len` bytes, with or without '?...') has a
 * pair whose decoded name and value are `name` and `value` exactly. */
int uvws_app_query_has(const char *target, size_t len, const char *name, const char *value);

/* An on_upgrade for echo routes: "?deflate=off" declines permessage-deflate
 * for the connection; always accepts. */
int uvws_app_deflate_choice(uvws_upgrade_t *up);

#endif

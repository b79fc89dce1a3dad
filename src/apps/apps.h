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
 * messages are kept per room. *handle is freed with uvws_app_chat_free
 * after the server is. */
int uvws_app_chat(uvws_server_t *srv, const char *path, size_t history, void **handle);
void uvws_app_chat_free(void *handle);

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

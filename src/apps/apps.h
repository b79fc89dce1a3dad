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

/* The JSON text (malloc'd; free() it) describing one frame, `t` ms after
 * open: the inspector's message format, exposed for tests. */
char *uvws_app_inspect_describe(const uvws_frame_info_t *frame, uint64_t t);

#endif

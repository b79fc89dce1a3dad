/* Private to src/http/: the HTTP session, shared by http.c (parsing and
 * the session's life), respond.c (responses, the built-ins, the access
 * log), upgrade.c (the WebSocket upgrade) and files.c (static files). */
#ifndef UVWS_HTTP_INT_H
#define UVWS_HTTP_INT_H

#include <llhttp.h>
#include <stdint.h>

#include "http/http.h"
#include "proto/handshake.h"
#include "util/log.h"

#define MAX_HEADERS 100
#define FILE_CHUNK (64u * 1024u)

typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} hdr_t;

/* One connection's HTTP state, from accept to the upgrade or the end. It
 * owns hbuf, pending and fd. */
typedef struct {
  uvws__stream_t *s;
  uvws__http_env_t *env;
  llhttp_t parser;
  uvws__buf_t hbuf;      /* URL, header names and values of the request */
  hdr_t hdrs[MAX_HEADERS];
  unsigned nhdrs;
  uint32_t url_len;
  uint32_t target_off, target_len; /* the origin-form target inside hbuf */
  size_t head_bytes;     /* request line + headers so far, for 431 */
  uint8_t last_cb;       /* 1 after a header name chunk, 2 after a value chunk */
  uint16_t error_status; /* 414 or 431 decided inside a callback */
  uint8_t in_message;
  uint8_t responding;    /* a file body is still being sent */
  uint8_t waiting;       /* parsing waits: the peer reads too slowly, or this turn is over */
  uint8_t deferred;      /* the turn is over: on_writable comes after the others' */
  uint8_t parser_paused; /* llhttp paused at a message end: resume before parsing */
  uint8_t keep_alive;
  uint8_t eof;           /* the peer half-closed; answer what came, then end */
  int fd;
  uint64_t remaining;    /* file bytes still to send */
  uvws__buf_t pending;   /* input not parsed yet (while responding or waiting) */
  uvws__buf_t *parsing;  /* during on_writable: the held input being parsed */
  int status;            /* for the access log */
  uint64_t body_bytes;
} uvws__http_t;

/* Finds a header (case-insensitive); repeated ones are joined with ", "
 * (RFC 9110 section 5.3) at the end of hbuf. Offsets rather than pointers:
 * joining may move hbuf unless handle_request reserved room first (it
 * does, for all lookups of a request). */
typedef struct {
  int found;
  size_t off, len;
} hfind_t;

/* What handling a request left the session to do next. */
typedef enum { A_CONTINUE, A_WAIT, A_CLOSE, A_UPGRADED } action_t;

/* http.c */
hfind_t uvws__http_hfind(uvws__http_t *h, const char *name);
unsigned uvws__http_hcount(const uvws__http_t *h, const char *name);
uvws__hval_t uvws__http_hval(const uvws__http_t *h, hfind_t f);
void uvws__http_free(uvws__http_t *h);

/* respond.c. A response that cannot be built (no memory) becomes a fixed
 * 500 with Connection: close, and keep_alive drops to 0 so the caller ends
 * the connection: never silence. Returns 0, or the write's error. */
int uvws__http_respond(uvws__http_t *h, int status, const char *extra, const char *ctype,
                       const char *body, size_t body_len, uint64_t content_length, int head_only);
int uvws__http_respond_text(uvws__http_t *h, int status, const char *extra, const char *why,
                            int head_only);
const char *uvws__http_status_text(int status);
void uvws__http_access_log(uvws__http_t *h, const char *method, int status);
int uvws__http_builtin(uvws__http_t *h, const char *path, size_t plen, int method);
/* printf into a growable buffer: 0, or -1 without memory */
int uvws__http_put(uvws__buf_t *b, const char *fmt, ...) UVWS__PRINTF(2, 3);

/* upgrade.c */
action_t uvws__http_upgrade(uvws__http_t *h, const uvws__route_t *route, const uvws__upgrade_req_t *req,
                            uvws__hval_t protocols, uvws__hval_t extensions, char *rest, size_t rest_len);
int uvws__http_origin_allowed(const uvws__http_t *h, uvws__hval_t origin);
int uvws__http_forwarded_client(const uvws__http_t *h, uvws__hval_t xff, uvws__hval_t fwd, uint8_t addr[16]);

/* files.c */
action_t uvws__http_serve_file(uvws__http_t *h, const char *target, size_t tlen, int head_only);
int uvws__http_pump_file(uvws__http_t *h);
void uvws__http_close_file(uvws__http_t *h);

#endif

/* HTTP internals shared by http.c (requests, responses, the upgrade) and
 * http_files.c (static files). Private: nothing here is public API. */
#ifndef UVWS_HTTP_H
#define UVWS_HTTP_H

#include <llhttp.h>
#include <stdint.h>

#include "handshake.h"
#include "internal.h"

#define MAX_HEADERS 100
#define FILE_CHUNK (64u * 1024u)
#define FILE_QUEUE_MAX (256u * 1024u) /* read the file only this far ahead */

typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} hdr_t;

/* Per-connection HTTP state, owned by the connection while it speaks HTTP
 * and freed at the upgrade (WebSocket connections do not pay for it). */
struct uvws__http_s {
  llhttp_t parser;
  uvws__buf_t hbuf;      /* URL, header names and values of the request */
  hdr_t hdrs[MAX_HEADERS];
  unsigned nhdrs;
  uint32_t url_len;
  size_t head_bytes;     /* request line + headers so far, for 431 */
  uint8_t last_cb;       /* 1 after a header name chunk, 2 after a value chunk */
  uint16_t error_status; /* 414 or 431 decided inside a callback */
  uint8_t in_message;
  uint8_t responding;    /* a file body is still being sent */
  uint8_t keep_alive;
  int fd;
  uint64_t remaining;    /* file bytes still to send */
  uvws__buf_t pending;   /* input that arrived while responding */
  const char *resp_head; /* the 101 response, during on_open only */
  /* for the access log */
  int status;
  uint64_t body_bytes;
};

/* Finds a header (case-insensitive); repeated ones are joined with ", "
 * (RFC 9110 section 5.3) at the end of hbuf. Offsets rather than pointers:
 * joining may move hbuf unless handle_request reserved room first (it
 * does, for all lookups of a request). */
typedef struct {
  int found;
  size_t off, len;
} hfind_t;

/* What handling a request left the connection to do next. */
typedef enum { A_CONTINUE, A_WAIT, A_CLOSE, A_UPGRADED } action_t;

/* http.c */
hfind_t uvws__http_hfind(uvws__http_t *h, const char *name);
uvws__hval_t uvws__http_hval(const uvws__http_t *h, hfind_t f);
int uvws__http_respond(uvws_conn_t *c, int status, const char *extra, const char *ctype,
                       const char *body, size_t body_len, uint64_t content_length, int head_only);
void uvws__http_respond_text(uvws_conn_t *c, int status, const char *extra, const char *why,
                             int head_only);

/* http_files.c */
action_t uvws__http_serve_file(uvws_conn_t *c, const char *target, size_t tlen, int head_only);
int uvws__http_pump_file(uvws_conn_t *c);
void uvws__http_close_file(uvws__http_t *h);

#endif

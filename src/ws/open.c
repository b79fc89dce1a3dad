/* The upgrade decision as routes see it (uvws_upgrade_*): read-only views
 * of the request that the accepting layer (HTTP/1.1 today, an HTTP/2
 * stream later) filled in, and the few things a route may change. No I/O:
 * the accepting layer builds and sends the answer. */
#include "ws/open.h"

#include <string.h>
#include <strings.h>

const char *uvws_upgrade_target(const uvws_upgrade_t *up, size_t *len) {
  *len = up->target_len;
  return up->target;
}

int uvws_upgrade_header_at(const uvws_upgrade_t *up, size_t index, const char **name, size_t *name_len,
                           const char **value, size_t *value_len) {
  const uvws__header_t *h;
  if (index >= up->nheaders) return UV_ENOENT;
  h = &up->headers[index];
  *name = h->name;
  *name_len = h->name_len;
  *value = h->value;
  *value_len = h->value_len;
  return 0;
}

const char *uvws_upgrade_header(const uvws_upgrade_t *up, const char *name, size_t *len) {
  size_t n = strlen(name), i;
  for (i = 0; i < up->nheaders; i++) {
    const uvws__header_t *h = &up->headers[i];
    if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
      *len = h->value_len;
      return h->value;
    }
  }
  return NULL;
}

const char *uvws_upgrade_peer(const uvws_upgrade_t *up) { return up->peer; }
int uvws_upgrade_secure(const uvws_upgrade_t *up) { return up->secure; }
const char *uvws_upgrade_protocol(const uvws_upgrade_t *up) { return up->protocol; }
void *uvws_upgrade_route_data(const uvws_upgrade_t *up) { return up->route->user; }
uvws_server_t *uvws_upgrade_server(const uvws_upgrade_t *up) { return up->server; }
void uvws_upgrade_decline_deflate(uvws_upgrade_t *up) { up->no_deflate = 1; }

void uvws_upgrade_set_data(uvws_upgrade_t *up, void *data, void (*release)(void *data)) {
  up->data = data;
  up->release = release;
}

/* RFC 9110 section 5.6.2: a token is one or more tchar. */
static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int uvws_upgrade_add_header(uvws_upgrade_t *up, const char *name, const char *value) {
  size_t nl = strlen(name), vl = strlen(value), i;
  if (nl == 0) return UV_EINVAL;
  for (i = 0; i < nl; i++)
    if (!is_tchar((unsigned char)name[i])) return UV_EINVAL;
  for (i = 0; i < vl; i++)
    if (value[i] == '\r' || value[i] == '\n') return UV_EINVAL;
  if (up->extra_len + nl + vl + 4 > UVWS__UPGRADE_EXTRA_MAX) return UV_ENOBUFS;
  memcpy(up->extra + up->extra_len, name, nl);
  up->extra_len += nl;
  memcpy(up->extra + up->extra_len, ": ", 2);
  up->extra_len += 2;
  memcpy(up->extra + up->extra_len, value, vl);
  up->extra_len += vl;
  memcpy(up->extra + up->extra_len, "\r\n", 2);
  up->extra_len += 2;
  up->extra[up->extra_len] = '\0';
  return 0;
}

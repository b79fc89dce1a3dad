/* Static files for GET and HEAD: the web root and the mounts, resolved
 * without escaping their folders (path.c), with Last-Modified and
 * If-Modified-Since, streamed in 64 KiB chunks paced by the socket. */
#include "http.h"
#include "log.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fmt_http_date(time_t t, char out[40]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 if it is not
 * one (the obsolete formats are not worth the code: clients send this one). */
static time_t parse_http_date(const char *s, size_t len) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char buf[40];
  struct tm tm;
  int day, year, hh, mm, ss, i;
  char mon[4];
  if (len < 29 || len >= sizeof(buf)) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (sscanf(buf + 5, "%2d %3s %4d %2d:%2d:%2d GMT", &day, mon, &year, &hh, &mm, &ss) != 6)
    return -1;
  memset(&tm, 0, sizeof(tm));
  for (i = 0; i < 12; i++)
    if (strncmp(mon, months + 3 * i, 3) == 0) break;
  if (i == 12) return -1;
  tm.tm_mday = day;
  tm.tm_mon = i;
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return timegm(&tm);
}

void uvws__http_close_file(uvws__http_t *h) {
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  h->remaining = 0;
  h->responding = 0;
}

/* Sends file chunks until the queue holds FILE_QUEUE_MAX or the file ends.
 * Returns 1 when the body is complete, 0 while more is to come, -1 if the
 * connection had to be aborted. */
int uvws__http_pump_file(uvws_conn_t *c) {
  uvws__http_t *h = c->http;
  uvws_server_t *srv = c->srv;

  while (h->remaining > 0 && uvws__conn_queued(c) < FILE_QUEUE_MAX) {
    size_t want = h->remaining < FILE_CHUNK ? (size_t)h->remaining : FILE_CHUNK;
    ssize_t n;
    uv_buf_t b;
    if (srv->filebuf == NULL && (srv->filebuf = malloc(FILE_CHUNK)) == NULL) {
      uvws__conn_abort(c, "out of memory");
      return -1;
    }
    /* Synchronous reads of at most 64 KiB, paced by the socket: the web
     * root is expected on a local disk, where this costs microseconds and
     * saves a thread-pool round trip per chunk. */
    do n = read(h->fd, srv->filebuf, want);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
      uvws__log(UVWS_LOG_ERROR, "http %s: file read failed mid-response: %s", c->peer,
                n < 0 ? strerror(errno) : "file shrank");
      uvws__http_close_file(h);
      uvws__conn_abort(c, "file read failed");
      return -1;
    }
    b = uv_buf_init(srv->filebuf, (unsigned)n);
    h->remaining -= (uint64_t)n;
    h->body_bytes += (uint64_t)n;
    if (uvws__conn_write(c, &b, 1) != 0) return -1;
  }
  if (h->remaining > 0) return 0;
  uvws__http_close_file(h);
  return 1;
}


action_t uvws__http_serve_file(uvws_conn_t *c, const char *target, size_t tlen, int head_only) {
  uvws__http_t *h = c->http;
  uvws_server_t *srv = c->srv;
  char rel[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
  char lastmod[40], extra[PATH_MAX + 64];
  struct stat st;
  int dir, r, fd;
  hfind_t ims_f;
  const uvws__mount_t *mount;
  const char *sub;

  r = uvws__path_resolve(target, tlen, rel, sizeof(rel), &dir);
  if (r == 414) goto not_found; /* longer than any path the filesystem has */
  if (r != 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(c, r, NULL, "invalid path", head_only);
    return A_CLOSE;
  }
  mount = uvws__server_mount_for(srv, rel, &sub);
  if (mount == NULL || mount->real == NULL) goto not_found;
  r = snprintf(full, sizeof(full), "%s/%s%s%s", mount->real, sub, (dir && sub[0]) ? "/" : "",
               dir ? "index.html" : "");
  if (r < 0 || (size_t)r >= sizeof(full)) goto not_found;
  if (realpath(full, real) == NULL) goto not_found;
  /* Symlinks are followed, but only to places inside the folder served. */
  if (strncmp(real, mount->real, mount->real_len) != 0 ||
      (real[mount->real_len] != '/' && real[mount->real_len] != '\0')) {
    uvws__log(UVWS_LOG_WARN, "http %s: %s resolves outside the folder served; refused", c->peer, rel);
    goto not_found;
  }
  if (stat(real, &st) != 0) goto not_found;
  if (S_ISDIR(st.st_mode) && !dir) {
    size_t plen = uvws__path_len(target, tlen);
    r = snprintf(extra, sizeof(extra), "Location: %.*s/%.*s\r\n", (int)plen, target,
                 (int)(tlen - plen), target + plen);
    if (r < 0 || (size_t)r >= sizeof(extra)) goto not_found;
    uvws__http_respond_text(c, 301, extra, NULL, head_only);
    return A_CONTINUE;
  }
  if (!S_ISREG(st.st_mode)) goto not_found;
  fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    goto not_found;
  }
  fmt_http_date(st.st_mtime, lastmod);
  snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nCache-Control: no-cache\r\n", lastmod);

  ims_f = uvws__http_hfind(h, "If-Modified-Since");
  if (ims_f.found) {
    uvws__hval_t ims = uvws__http_hval(h, ims_f);
    time_t t = parse_http_date(ims.p, ims.len);
    if (t != (time_t)-1 && st.st_mtime <= t) {
      close(fd);
      uvws__http_respond(c, 304, extra, NULL, NULL, 0, 0, 1);
      return A_CONTINUE;
    }
  }
  uvws__http_respond(c, 200, extra, uvws__mime_type(real), NULL, 0, (uint64_t)st.st_size, 1);
  if (head_only || st.st_size == 0) {
    close(fd);
    return A_CONTINUE;
  }
  h->fd = fd;
  h->remaining = (uint64_t)st.st_size;
  h->responding = 1;
  r = uvws__http_pump_file(c);
  if (r < 0) return A_CLOSE;
  return r == 1 ? A_CONTINUE : A_WAIT;

not_found:
  uvws__http_respond_text(c, 404, NULL, NULL, head_only);
  return A_CONTINUE;
}

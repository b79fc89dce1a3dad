/* Static files for GET and HEAD: the web root and the mounts, resolved
 * without escaping their folders (path.c), with Last-Modified and
 * If-Modified-Since, streamed in 64 KiB chunks paced by the stream. */
#include "http/http_int.h"
#include "proto/path.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void uvws__http_close_file(uvws__http_t *h) {
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  h->remaining = 0;
  h->responding = 0;
}

/* Sends file chunks while the queue is under the low-water mark, then asks
 * to hear when it is low again. Returns 1 when the body is complete, 0
 * while more is to come, -1 if the connection had to be closed. */
int uvws__http_pump_file(uvws__http_t *h) {
  uvws__http_env_t *env = h->env;
  uvws__stream_t *s = h->s;

  while (h->remaining > 0 && uvws__stream_queued(s) < UVWS__QUEUE_LOW) {
    size_t want = h->remaining < FILE_CHUNK ? (size_t)h->remaining : FILE_CHUNK;
    ssize_t n;
    uv_buf_t b;
    if (env->filebuf == NULL && (env->filebuf = malloc(FILE_CHUNK)) == NULL) {
      uvws__log(UVWS_LOG_ERROR, "http %s: out of memory mid-response", s->peer);
      uvws__http_close_file(h);
      uvws__stream_close(s, "out of memory");
      return -1;
    }
    /* Synchronous reads of at most 64 KiB, paced by the socket: the web
     * root is expected on a local disk, where this costs microseconds and
     * saves a thread-pool round trip per chunk. */
    do n = read(h->fd, env->filebuf, want);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
      uvws__log(UVWS_LOG_ERROR, "http %s: file read failed mid-response: %s", s->peer,
                n < 0 ? strerror(errno) : "file shrank");
      uvws__http_close_file(h);
      uvws__stream_close(s, "file read failed");
      return -1;
    }
    b = uv_buf_init(env->filebuf, (unsigned)n);
    h->remaining -= (uint64_t)n;
    h->body_bytes += (uint64_t)n;
    if (uvws__stream_write(s, &b, 1) != 0) {
      uvws__http_close_file(h);
      return -1;
    }
  }
  if (h->remaining > 0) {
    s->ops->want_writable(s);
    return 0;
  }
  uvws__http_close_file(h);
  return 1;
}

static const uvws__mount_t *mount_for(const uvws__http_env_t *env, const char *rel, const char **rest) {
  const uvws__mount_t *best = env->nmounts ? &env->mounts[0] : NULL;
  size_t i;
  for (i = 1; i < env->nmounts; i++) {
    const uvws__mount_t *m = &env->mounts[i];
    if (strncmp(rel, m->prefix, m->prefix_len) == 0 &&
        (rel[m->prefix_len] == '/' || rel[m->prefix_len] == '\0') &&
        (best == &env->mounts[0] || m->prefix_len > best->prefix_len))
      best = m;
  }
  *rest = rel;
  if (best && best->prefix_len) {
    *rest = rel + best->prefix_len;
    if (**rest == '/') (*rest)++;
  }
  return best;
}

/* 301 to the folder's URL with its slash, query kept. The Location can be
 * as long as the request target: it is built in a buffer of its size. */
static action_t redirect_to_folder(uvws__http_t *h, const char *target, size_t tlen, int head_only) {
  size_t plen = uvws__path_len(target, tlen);
  uvws__buf_t loc = {NULL, 0, 0, 0};
  if (uvws__http_put(&loc, "Location: %.*s/%.*s\r\n", (int)plen, target, (int)(tlen - plen), target + plen) != 0) {
    uvws__log(UVWS_LOG_ERROR, "http %s: out of memory building a redirect; answering 500", h->s->peer);
    h->keep_alive = 0;
    uvws__http_respond_text(h, 500, NULL, "out of memory", head_only);
    return A_CLOSE;
  }
  uvws__http_respond_text(h, 301, uvws__buf_data(&loc), NULL, head_only);
  uvws__buf_free(&loc);
  return A_CONTINUE;
}

action_t uvws__http_serve_file(uvws__http_t *h, const char *target, size_t tlen, int head_only) {
  char rel[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
  char lastmod[40], extra[128];
  struct stat st;
  int dir, r, fd;
  hfind_t ims_f;
  const uvws__mount_t *mount;
  const char *sub;

  r = uvws__path_resolve(target, tlen, rel, sizeof(rel), &dir);
  if (r == 414) goto not_found; /* longer than any path the filesystem has */
  if (r != 0) {
    h->keep_alive = 0;
    uvws__http_respond_text(h, r, NULL, "invalid path", head_only);
    return A_CLOSE;
  }
  mount = mount_for(h->env, rel, &sub);
  if (mount == NULL || mount->real == NULL) goto not_found;
  r = snprintf(full, sizeof(full), "%s/%s%s%s", mount->real, sub, (dir && sub[0]) ? "/" : "",
               dir ? "index.html" : "");
  if (r < 0 || (size_t)r >= sizeof(full)) goto not_found;
  if (realpath(full, real) == NULL) goto not_found;
  /* Symlinks are followed, but only to places inside the folder served. */
  if (strncmp(real, mount->real, mount->real_len) != 0 ||
      (real[mount->real_len] != '/' && real[mount->real_len] != '\0')) {
    uvws__log(UVWS_LOG_WARN, "http %s: %s resolves outside the folder served; refused", h->s->peer, rel);
    goto not_found;
  }
  if (stat(real, &st) != 0) goto not_found;
  if (S_ISDIR(st.st_mode) && !dir) return redirect_to_folder(h, target, tlen, head_only);
  if (!S_ISREG(st.st_mode)) goto not_found;
  fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    goto not_found;
  }
  uvws__httpdate_format(st.st_mtime, lastmod);
  snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nCache-Control: no-cache\r\n", lastmod);

  ims_f = uvws__http_hfind(h, "If-Modified-Since");
  if (ims_f.found) {
    uvws__hval_t ims = uvws__http_hval(h, ims_f);
    time_t t = uvws__httpdate_parse(ims.p, ims.len);
    if (t != (time_t)-1 && st.st_mtime <= t) {
      close(fd);
      uvws__http_respond(h, 304, extra, NULL, NULL, 0, 0, 1);
      return A_CONTINUE;
    }
  }
  uvws__http_respond(h, 200, extra, uvws__mime_type(real), NULL, 0, (uint64_t)st.st_size, 1);
  if (h->status != 200 || h->s->closing) { /* the head became a 500, or the write failed */
    close(fd);
    return A_CLOSE;
  }
  if (head_only || st.st_size == 0) {
    close(fd);
    return A_CONTINUE;
  }
  h->fd = fd;
  h->remaining = (uint64_t)st.st_size;
  h->responding = 1;
  r = uvws__http_pump_file(h);
  if (r < 0) return A_CLOSE;
  return r == 1 ? A_CONTINUE : A_WAIT;

not_found:
  uvws__http_respond_text(h, 404, NULL, NULL, head_only);
  return A_CONTINUE;
}

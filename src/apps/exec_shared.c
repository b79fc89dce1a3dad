/* --exec-shared routes: one program serves every client of the route, the
 * broadcast websocketd cannot do. Written against the public header.
 *
 * The program runs on the main loop, started by uvws_exec_shared_start and
 * restarted with backoff (100 ms doubling to 30 s; back to 100 ms after it
 * ran 10 s) whenever it ends, until shutdown.
 *   - A client's text message reaches its stdin as "ID\tTEXT\n" (ID as in
 *     UVWS_CONNECTION_ID; a message holding a newline is refused, 1003).
 *   - A stdout line "@ID\tTEXT" goes to that connection alone, any other
 *     line to every client of the route. Both are publishes: the route's
 *     topic "exec:PATH" reaches every thread and, with --redis, every
 *     instance; a connection's own topic carries this instance's random
 *     tag, so "@3" never reaches connection 3 of another instance.
 *     Subscribers that cannot keep up skip lines (drop_on_backpressure).
 *   - A line that is not UTF-8 or is longer than max_line is dropped, with a
 *     log line: one bad line must not cost every client its connection.
 * Clients on other loops hand their lines over through `lock` and an
 * async handle; past EXEC_SHARED_BACKLOG bytes not yet taken by the
 * program, messages are dropped and counted in the log, since one slow
 * program cannot pause clients on other threads. */
#include "exec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_SHARED_BACKLOG (1024u * 1024u)
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 30000u
#define STABLE_MS 10000u

typedef struct exec_shared_s {
  struct exec_shared_s *next;
  exec_route_t *route;
  char topic[1100];   /* "exec:PATH" */
  char tag[24];       /* this instance, for the per-connection topics */
  /* main loop only */
  uvws_server_t *srv;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t restart;
  uv_async_t wake;
  int started, stopping, running, closing; /* closing: handles of the last run */
  int pid;
  unsigned backoff_ms;
  uint64_t started_at;
  char *line;
  size_t line_len, line_cap;
  int discarding; /* the rest of an overlong line */
  char errline[EXEC_ERR_LINE];
  size_t err_len;
  /* under lock: what clients sent, not yet written */
  uv_mutex_t lock;
  char *pending;
  size_t pending_len, pending_cap, in_flight; /* in_flight: given to libuv */
  unsigned long long dropped;
  int wake_closed;
} exec_shared_t;

typedef struct {
  exec_shared_t *sh;
  unsigned long long id;
} shared_conn_t;

typedef struct {
  uv_write_t req;
  exec_shared_t *sh;
  size_t len;
  char *data;
} shared_write_t;

static void spawn_shared(exec_shared_t *sh);

static void conn_topic(const exec_shared_t *sh, const char *id, size_t idlen, char *out, size_t size) {
  snprintf(out, size, "%s:%s:%.*s", sh->topic, sh->tag, (int)idlen, id);
}

/* ---- stdout: one line to everyone, or "@ID\t" to one ------------------------- */

static void shared_line(exec_shared_t *sh, const char *p, size_t n) {
  const char *tab;
  char topic[1200];
  if (!exec_utf8_valid((const unsigned char *)p, n)) {
    uvws_log(UVWS_LOG_WARN, "exec shared %s: pid %d wrote a line that is not UTF-8; dropped", sh->route->path,
             sh->pid);
    return;
  }
  if (n > 1 && p[0] == '@' && (tab = memchr(p, '\t', n)) != NULL && tab - p > 1 &&
      strspn(p + 1, "0123456789") == (size_t)(tab - p - 1)) {
    conn_topic(sh, p + 1, (size_t)(tab - p - 1), topic, sizeof(topic));
    uvws_publish(sh->srv, topic, UVWS_OP_TEXT, tab + 1, n - (size_t)(tab + 1 - p));
    return;
  }
  uvws_publish(sh->srv, sh->topic, UVWS_OP_TEXT, p, n);
}

static void shared_text(exec_shared_t *sh, const char *p, size_t n) {
  size_t max = sh->route->app->opts.max_line;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (!sh->discarding && sh->line_len + take > max) {
      uvws_log(UVWS_LOG_WARN, "exec shared %s: pid %d wrote a line longer than %zu bytes; dropped",
               sh->route->path, sh->pid, max);
      sh->discarding = 1;
      sh->line_len = 0;
    }
    if (sh->discarding) {
      if (nl) sh->discarding = 0;
    } else if (nl && sh->line_len == 0) {
      shared_line(sh, p, take);
    } else if (exec_buf_append(&sh->line, &sh->line_len, &sh->line_cap, p, take) == 0 && nl) {
      shared_line(sh, sh->line, sh->line_len);
      sh->line_len = 0;
    }
    take += nl != NULL;
    p += take;
    n -= take;
  }
}

static void on_shared_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_shared_t *sh = s->data;
  if (n > 0) shared_text(sh, buf->base, (size_t)n);
  else if (n < 0) uv_read_stop(s);
}

static void on_shared_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_shared_t *sh = s->data;
  ssize_t i;
  char shown[EXEC_ERR_LINE];
  for (i = 0; i < n; i++) {
    if (buf->base[i] != '\n') sh->errline[sh->err_len++] = buf->base[i];
    if (buf->base[i] == '\n' || sh->err_len == sizeof(sh->errline)) {
      exec_sanitize(shown, sh->errline, sh->err_len);
      if (sh->route->app->stderr_mode != EXEC_STDERR_DISCARD)
        uvws_log(UVWS_LOG_INFO, "exec shared %s stderr: %.*s", sh->route->path, (int)sh->err_len, shown);
      sh->err_len = 0;
    }
  }
  if (n < 0) uv_read_stop(s);
}

/* ---- stdin: what clients on every loop sent ----------------------------------------- */

static void on_shared_written(uv_write_t *req, int status) {
  shared_write_t *w = (shared_write_t *)req;
  exec_shared_t *sh = w->sh;
  (void)status; /* a program that died: its restart starts afresh */
  uv_mutex_lock(&sh->lock);
  sh->in_flight -= w->len;
  uv_mutex_unlock(&sh->lock);
  free(w->data);
  free(w);
}

/* On the main loop: hands everything pending to the program's stdin. */
static void on_wake(uv_async_t *a) {
  exec_shared_t *sh = a->data;
  shared_write_t *w;
  uv_buf_t b;
  if (!sh->running || uv_is_closing((uv_handle_t *)&sh->in)) return; /* kept for the next run */
  if ((w = calloc(1, sizeof(*w))) == NULL) return;
  uv_mutex_lock(&sh->lock);
  w->data = sh->pending;
  w->len = sh->pending_len;
  sh->pending = NULL;
  sh->pending_len = sh->pending_cap = 0;
  sh->in_flight += w->len;
  uv_mutex_unlock(&sh->lock);
  w->sh = sh;
  b = uv_buf_init(w->data, (unsigned)w->len);
  if (w->len == 0 || uv_write(&w->req, (uv_stream_t *)&sh->in, &b, 1, on_shared_written) != 0)
    on_shared_written(&w->req, 0); /* nothing queued: undoes the count, frees */
}

/* Any loop: appends "ID\tTEXT\n"; 0, or UV_ENOBUFS past the backlog. */
static int shared_push(exec_shared_t *sh, unsigned long long id, const char *text, size_t len) {
  char head[24];
  int hl = snprintf(head, sizeof(head), "%llu\t", id), r = 0, wake = 0;
  size_t need = (size_t)hl + len + 1;
  uv_mutex_lock(&sh->lock);
  if (sh->wake_closed) {
    r = UVWS_ECLOSED;
  } else if (sh->pending_len + sh->in_flight + need > EXEC_SHARED_BACKLOG) {
    r = UV_ENOBUFS;
    if (sh->dropped++ % 1000 == 0)
      uvws_log(UVWS_LOG_WARN, "exec shared %s: the program is not reading; %llu message(s) dropped",
               sh->route->path, sh->dropped);
  } else {
    if (sh->pending_len + need > sh->pending_cap) {
      size_t cap = sh->pending_cap ? sh->pending_cap : 4096;
      char *grown;
      while (cap < sh->pending_len + need) cap *= 2;
      if ((grown = realloc(sh->pending, cap)) == NULL) r = UV_ENOMEM;
      else sh->pending = grown, sh->pending_cap = cap;
    }
    if (r == 0) {
      memcpy(sh->pending + sh->pending_len, head, (size_t)hl);
      memcpy(sh->pending + sh->pending_len + hl, text, len);
      sh->pending[sh->pending_len + need - 1] = '\n';
      wake = sh->pending_len == 0;
      sh->pending_len += need;
    }
  }
  if (wake) uv_async_send(&sh->wake); /* under the lock: the handle cannot be closed meanwhile */
  uv_mutex_unlock(&sh->lock);
  return r;
}

/* ---- the process -------------------------------------------------------------------- */

static void on_run_closed(uv_handle_t *h) {
  exec_shared_t *sh = h->data;
  sh->closing--;
}

static void close_run(exec_shared_t *sh) {
  uv_handle_t *hs[4] = {(uv_handle_t *)&sh->in, (uv_handle_t *)&sh->out, (uv_handle_t *)&sh->err,
                        (uv_handle_t *)&sh->proc};
  int i;
  for (i = 0; i < 4; i++)
    if (!uv_is_closing(hs[i])) {
      sh->closing++;
      uv_close(hs[i], on_run_closed);
    }
}

static void on_restart(uv_timer_t *t) {
  exec_shared_t *sh = t->data;
  if (sh->stopping) return;
  if (sh->closing > 0) { /* the last run's handles are not closed yet */
    uv_timer_start(t, on_restart, 10, 0);
    return;
  }
  spawn_shared(sh);
}

static void on_shared_exit(uv_process_t *p, int64_t status, int sig) {
  exec_shared_t *sh = p->data;
  uint64_t ran = uv_now(p->loop) - sh->started_at;
  exec_pid_remove(sh->route->app, sh->pid);
  sh->running = 0;
  sh->line_len = 0;
  sh->discarding = 0;
  close_run(sh);
  if (sh->stopping) {
    uvws_log(UVWS_LOG_INFO, "exec shared %s: pid %d ended", sh->route->path, sh->pid);
    return;
  }
  if (ran >= STABLE_MS) sh->backoff_ms = BACKOFF_MIN_MS;
  if (sig)
    uvws_log(UVWS_LOG_WARN, "exec shared %s: pid %d killed by signal %d; restarting in %u ms", sh->route->path,
             sh->pid, sig, sh->backoff_ms);
  else
    uvws_log(UVWS_LOG_WARN, "exec shared %s: pid %d exited with status %lld; restarting in %u ms",
             sh->route->path, sh->pid, (long long)status, sh->backoff_ms);
  uv_timer_start(&sh->restart, on_restart, sh->backoff_ms, 0);
  sh->backoff_ms = sh->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sh->backoff_ms * 2;
}

static void spawn_shared(exec_shared_t *sh) {
  uv_loop_t *loop = uvws_server_loop(sh->srv);
  char *env[EXEC_MAX_SHARED + 8];
  size_t i, n = 0;
  int r;
  uv_pipe_init(loop, &sh->in, 0);
  uv_pipe_init(loop, &sh->out, 0);
  uv_pipe_init(loop, &sh->err, 0);
  sh->in.data = sh->out.data = sh->err.data = sh->proc.data = sh;
  for (i = 0; i < sh->route->app->nbaseenv && n < EXEC_MAX_SHARED; i++) env[n++] = sh->route->app->baseenv[i];
  env[n++] = "PYTHONUNBUFFERED=1";
  env[n++] = "SERVER_SOFTWARE=uvws/" UVWS_VERSION_STRING;
  env[n] = NULL;
  sh->started_at = uv_now(loop);
  if ((r = exec_spawn_piped(loop, &sh->proc, &sh->in, &sh->out, &sh->err, sh->route->argv, env,
                            on_shared_exit)) != 0) {
    uvws_log(UVWS_LOG_ERROR, "exec shared %s: cannot start %s: %s; trying again in %u ms", sh->route->path,
             sh->route->argv[0], uvws_strerror(r), sh->backoff_ms);
    close_run(sh);
    uv_timer_start(&sh->restart, on_restart, sh->backoff_ms, 0);
    sh->backoff_ms = sh->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sh->backoff_ms * 2;
    return;
  }
  sh->pid = sh->proc.pid;
  sh->running = 1;
  exec_pid_add(sh->route->app, sh->pid);
  uvws_log(UVWS_LOG_INFO, "exec shared %s: started %s as pid %d", sh->route->path, sh->route->argv[0], sh->pid);
  uv_read_start((uv_stream_t *)&sh->out, exec_on_alloc, on_shared_out);
  uv_read_start((uv_stream_t *)&sh->err, exec_on_alloc, on_shared_err);
  on_wake(&sh->wake); /* what clients sent while it was down */
}

/* ---- the route ---------------------------------------------------------------------------- */

static void sh_open(uvws_conn_t *conn) {
  exec_shared_t *sh = uvws_conn_route_data(conn);
  shared_conn_t *sc = calloc(1, sizeof(*sc));
  char id[24], topic[1200];
  if (sc == NULL) {
    uvws_close(conn, UVWS_CLOSE_INTERNAL, "out of memory");
    return;
  }
  sc->sh = sh;
  sc->id = atomic_fetch_add(&sh->route->app->next_id, 1) + 1;
  uvws_conn_set_data(conn, sc);
  snprintf(id, sizeof(id), "%llu", sc->id);
  conn_topic(sh, id, strlen(id), topic, sizeof(topic));
  if (uvws_subscribe(conn, sh->topic) != 0 || uvws_subscribe(conn, topic) != 0)
    uvws_close(conn, UVWS_CLOSE_INTERNAL, "cannot subscribe");
}

static void sh_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  shared_conn_t *sc = uvws_conn_get_data(conn);
  if (sc == NULL) return;
  if (op != UVWS_OP_TEXT) {
    uvws_close(conn, UVWS_CLOSE_UNSUPPORTED, "text messages only");
  } else if (memchr(data, '\n', len) != NULL) {
    uvws_close(conn, UVWS_CLOSE_UNSUPPORTED, "a message may not contain a newline");
  } else {
    shared_push(sc->sh, sc->id, data, len);
  }
}

static void sh_close(uvws_conn_t *conn, int code, const char *reason, size_t reason_len) {
  (void)code;
  (void)reason;
  (void)reason_len;
  free(uvws_conn_get_data(conn));
}

int uvws_app_exec_shared(uvws_server_t *srv, uvws_exec_t *app, const char *path, const char *command) {
  exec_shared_t *sh;
  uvws_route_t route;
  unsigned char rnd[8];
  int r, n = 0;
  for (sh = app->shared; sh; sh = sh->next) n++;
  if (n >= EXEC_MAX_SHARED || strlen(path) > 1000) return UV_EINVAL;
  if ((sh = calloc(1, sizeof(*sh))) == NULL || (sh->route = calloc(1, sizeof(*sh->route))) == NULL ||
      (sh->route->path = strdup(path)) == NULL) {
    if (sh) free(sh->route);
    free(sh);
    return UV_ENOMEM;
  }
  sh->route->app = app;
  if ((r = exec_split_command(command, &sh->route->argv)) != 0 || (r = uv_mutex_init(&sh->lock)) != 0) {
    exec_free_argv(sh->route->argv);
    free(sh->route->path);
    free(sh->route);
    free(sh);
    return r;
  }
  snprintf(sh->topic, sizeof(sh->topic), "exec:%s", path);
  if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0) memset(rnd, 0, sizeof(rnd));
  snprintf(sh->tag, sizeof(sh->tag), "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
           rnd[5], rnd[6], rnd[7]);
  sh->backoff_ms = BACKOFF_MIN_MS;
  sh->next = app->shared;
  app->shared = sh; /* freed with the app from now on, route or not */
  memset(&route, 0, sizeof(route));
  route.path = path;
  route.user = sh;
  route.drop_on_backpressure = 1;
  route.handlers.on_open = sh_open;
  route.handlers.on_message = sh_message;
  route.handlers.on_close = sh_close;
  route.subprotocols = exec_protocols_for(app, path);
  return uvws_server_route(srv, &route);
}

int uvws_exec_shared_start(uvws_exec_t *app, uvws_server_t *srv) {
  exec_shared_t *sh;
  uv_loop_t *loop = uvws_server_loop(srv);
  int r;
  for (sh = app ? app->shared : NULL; sh; sh = sh->next) {
    if (sh->started) continue;
    sh->srv = srv;
    if ((r = uv_async_init(loop, &sh->wake, on_wake)) != 0) return r;
    uv_timer_init(loop, &sh->restart);
    sh->wake.data = sh->restart.data = sh;
    sh->started = 1;
    spawn_shared(sh);
  }
  return 0;
}

void exec_shared_stop_all(uvws_exec_t *app) {
  exec_shared_t *sh;
  for (sh = app->shared; sh; sh = sh->next) {
    if (!sh->started || sh->stopping) continue;
    sh->stopping = 1;
    uv_mutex_lock(&sh->lock);
    sh->wake_closed = 1;
    uv_mutex_unlock(&sh->lock);
    uv_close((uv_handle_t *)&sh->wake, NULL);
    uv_close((uv_handle_t *)&sh->restart, NULL);
    /* stdin closed: the program's cue to end; the registry's SIGTERM and
     * SIGKILL follow if it does not */
    if (sh->running) uv_close((uv_handle_t *)&sh->in, on_run_closed), sh->closing++;
  }
}

void exec_shared_free_all(uvws_exec_t *app) {
  while (app->shared) {
    exec_shared_t *sh = app->shared;
    app->shared = sh->next;
    uv_mutex_destroy(&sh->lock);
    free(sh->pending);
    free(sh->line);
    exec_free_argv(sh->route->argv);
    free(sh->route->path);
    free(sh->route);
    free(sh);
  }
}

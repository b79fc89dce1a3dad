/* Exec routes: each WebSocket of the route is served by a program of its
 * own, its stdin and stdout being the connection (README, "Your backend in
 * any language"). Written against the public header only.
 *
 * Text routes (--exec): a text message is written to stdin followed by
 * "\n"; a message that itself holds a "\n" would be two lines to the
 * program, so it is refused (1003) rather than split. Each line of stdout
 * (without its "\n") is a text message; a line that is not UTF-8 closes the
 * connection with 1011 (a program that writes bytes belongs on a binary
 * route), a line longer than max_line with 1009. What is left without a
 * final newline when stdout ends is sent as a last line.
 * Binary routes (--exec-binary): bytes as they come, both ways, one binary
 * message per read of stdout.
 *
 * Backpressure, both ways, so memory stays bounded whatever either side
 * does: above EXEC_OUT_HIGH queued to the client, stdout is not read (the
 * program blocks on a full pipe) until on_drain; above EXEC_IN_HIGH waiting
 * for stdin, the WebSocket is paused (uvws_conn_pause) until the program
 * has read it down to EXEC_IN_LOW.
 *
 * Lifecycle (exec_proc.c): the program is started in on_upgrade, so a
 * program that cannot start gets 500 and a full house 503 with
 * Retry-After, both before any 101. The connection ends: stdin is closed,
 * then SIGTERM and SIGKILL follow if needed. The program ends (and its
 * stdout with it): the connection is closed, 1000 for status 0, else 1011
 * with the status or signal as the reason. */
#include "exec.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  uv_write_t req;
  exec_conn_t *ec;
  size_t len;
  char data[];
} in_write_t;

/* Each loop reads into one buffer: a read callback consumes it entirely
 * before the next read on that thread. */
static _Thread_local char read_buf[64 * 1024];

void exec_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

/* RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. */
int exec_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], need, cp, k;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07;
    else return 0;
    if (n - i <= need) return 0;
    for (k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return 0;
    i += need + 1;
  }
  return 1;
}

static void ws_fail(exec_conn_t *ec, int code, const char *reason) {
  if (ec->conn == NULL || ec->closing_ws) return;
  ec->closing_ws = 1;
  uvws_close(ec->conn, code, reason);
}

/* ---- stdout ------------------------------------------------------------------ */

static void send_line(exec_conn_t *ec, const char *p, size_t n) {
  if (!exec_utf8_valid((const unsigned char *)p, n)) {
    uvws_log(UVWS_LOG_WARN, "exec %s #%llu: pid %d wrote a line that is not UTF-8; closing with 1011",
             ec->route->path, ec->id, ec->pid);
    ws_fail(ec, UVWS_CLOSE_INTERNAL, "program output is not UTF-8");
    return;
  }
  uvws_send(ec->conn, UVWS_OP_TEXT, p, n);
}

int exec_buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 1024;
    char *grown;
    while (c < *len + n) c *= 2;
    if ((grown = realloc(*buf, c)) == NULL) return UV_ENOMEM;
    *buf = grown;
    *cap = c;
  }
  memcpy(*buf + *len, p, n);
  *len += n;
  return 0;
}

/* A line sent from the buffer: a big buffer is given back at once, so an
 * idle connection holds no more than a small one. */
static void line_flush(exec_conn_t *ec) {
  send_line(ec, ec->line, ec->line_len);
  ec->line_len = 0;
  if (ec->line_cap > 64 * 1024) {
    free(ec->line);
    ec->line = NULL;
    ec->line_cap = 0;
  }
}

static void out_text(exec_conn_t *ec, const char *p, size_t n) {
  size_t max = ec->route->app->opts.max_line;
  while (n > 0 && ec->conn && !ec->closing_ws) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (ec->line_len + take > max) {
      uvws_log(UVWS_LOG_WARN, "exec %s #%llu: pid %d wrote a line longer than %zu bytes; closing with 1009",
               ec->route->path, ec->id, ec->pid, max);
      ws_fail(ec, UVWS_CLOSE_TOO_BIG, "line longer than --max-message");
      return;
    }
    if (nl && ec->line_len == 0) {
      send_line(ec, p, take); /* the common case: a whole line in one read, no copy */
    } else if (exec_buf_append(&ec->line, &ec->line_len, &ec->line_cap, p, take) != 0) {
      ws_fail(ec, UVWS_CLOSE_INTERNAL, "out of memory");
      return;
    } else if (nl) {
      line_flush(ec);
    }
    take += nl != NULL;
    p += take;
    n -= take;
  }
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_conn_t *ec = s->data;
  if (n == 0) return;
  if (n < 0) {
    if (n != UV_EOF)
      uvws_log(UVWS_LOG_WARN, "exec %s #%llu: reading stdout: %s", ec->route->path, ec->id, uvws_strerror((int)n));
    uv_read_stop(s);
    ec->out_eof = 1;
    if (ec->exited) exec_finish_ws(ec);
    return;
  }
  if (ec->conn == NULL || ec->closing_ws) return; /* winding down: dropped */
  if (ec->route->binary) uvws_send(ec->conn, UVWS_OP_BINARY, buf->base, (size_t)n);
  else out_text(ec, buf->base, (size_t)n);
  if (ec->conn && !ec->closing_ws && uvws_conn_buffered_amount(ec->conn) > EXEC_OUT_HIGH) {
    uv_read_stop(s);
    ec->out_paused = 1;
  }
}

static void ex_drain(uvws_conn_t *conn) {
  exec_conn_t *ec = uvws_conn_get_data(conn);
  if (ec && ec->out_paused) exec_start_reading(ec);
}

void exec_finish_ws(exec_conn_t *ec) {
  char reason[64];
  if (ec->conn == NULL || ec->closing_ws) return;
  if (!ec->route->binary && ec->line_len > 0) {
    line_flush(ec);
    if (ec->conn == NULL || ec->closing_ws) return;
  }
  if (ec->term_signal) {
    snprintf(reason, sizeof(reason), "killed by signal %d", ec->term_signal);
    ws_fail(ec, UVWS_CLOSE_INTERNAL, reason);
  } else if (ec->exit_status != 0) {
    snprintf(reason, sizeof(reason), "exit status %lld", (long long)ec->exit_status);
    ws_fail(ec, UVWS_CLOSE_INTERNAL, reason);
  } else {
    ws_fail(ec, UVWS_CLOSE_NORMAL, NULL);
  }
}

/* ---- stderr -------------------------------------------------------------------- */

void exec_sanitize(char *out, const char *in, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    out[i] = (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c;
  }
}

/* One line of stderr: logged (control characters shown as '?', so a
 * program cannot forge log lines or drive the terminal) and, in client
 * mode, sent as "stderr: <line>". */
static void err_emit(exec_conn_t *ec) {
  char shown[EXEC_ERR_LINE], msg[EXEC_ERR_LINE + 8];
  size_t n = ec->err_len;
  int mode = ec->route->app->stderr_mode;
  exec_sanitize(shown, ec->errline, n);
  uvws_log(UVWS_LOG_INFO, "exec %s #%llu stderr: %.*s", ec->route->path, ec->id, (int)n, shown);
  if (mode == EXEC_STDERR_CLIENT && ec->conn && !ec->closing_ws &&
      exec_utf8_valid((const unsigned char *)ec->errline, n)) {
    memcpy(msg, "stderr: ", 8);
    memcpy(msg + 8, ec->errline, n);
    uvws_send(ec->conn, UVWS_OP_TEXT, msg, n + 8);
  }
  ec->err_len = 0;
}

static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_conn_t *ec = s->data;
  ssize_t i;
  if (n == 0) return;
  if (n < 0) {
    if (ec->err_len) err_emit(ec);
    uv_read_stop(s);
    ec->err_eof = 1;
    return;
  }
  if (ec->route->app->stderr_mode == EXEC_STDERR_DISCARD) return;
  for (i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      err_emit(ec);
      continue;
    }
    ec->errline[ec->err_len++] = c;
    if (ec->err_len == sizeof(ec->errline)) err_emit(ec);
  }
}

void exec_start_reading(exec_conn_t *ec) {
  int r = 0;
  if (!ec->out_eof && (!ec->out_reading || ec->out_paused) &&
      (r = uv_read_start((uv_stream_t *)&ec->out, exec_on_alloc, on_out)) == 0)
    ec->out_reading = 1, ec->out_paused = 0;
  if (r == 0 && !ec->err_eof && !ec->err_reading &&
      (r = uv_read_start((uv_stream_t *)&ec->err, exec_on_alloc, on_err)) == 0)
    ec->err_reading = 1;
  if (r != 0)
    uvws_log(UVWS_LOG_ERROR, "exec %s #%llu: cannot read the program's output: %s", ec->route->path, ec->id,
             uvws_strerror(r));
}

/* ---- stdin ------------------------------------------------------------------------ */

static void on_in_written(uv_write_t *req, int status) {
  in_write_t *w = (in_write_t *)req;
  exec_conn_t *ec = w->ec;
  ec->in_queued -= w->len;
  free(w);
  if (status != 0 && status != UV_ECANCELED)
    uvws_log(UVWS_LOG_DEBUG, "exec %s #%llu: writing stdin: %s", ec->route->path, ec->id, uvws_strerror(status));
  if (ec->ws_paused && ec->in_queued <= EXEC_IN_LOW && ec->conn) {
    ec->ws_paused = 0;
    uvws_conn_pause(ec->conn, 0);
  }
}

static void in_write(exec_conn_t *ec, const void *data, size_t len, int newline) {
  in_write_t *w = malloc(sizeof(*w) + len + 1);
  uv_buf_t b;
  int r;
  if (w == NULL) {
    ws_fail(ec, UVWS_CLOSE_INTERNAL, "out of memory");
    return;
  }
  memcpy(w->data, data, len);
  if (newline) w->data[len++] = '\n';
  w->ec = ec;
  w->len = len;
  b = uv_buf_init(w->data, (unsigned)len);
  if ((r = uv_write(&w->req, (uv_stream_t *)&ec->in, &b, 1, on_in_written)) != 0) {
    free(w);
    uvws_log(UVWS_LOG_DEBUG, "exec %s #%llu: writing stdin: %s", ec->route->path, ec->id, uvws_strerror(r));
    return;
  }
  ec->in_queued += len;
  if (ec->in_queued > EXEC_IN_HIGH && !ec->ws_paused && uvws_conn_pause(ec->conn, 1) == 0) ec->ws_paused = 1;
}

/* ---- the route ---------------------------------------------------------------------- */

static void ex_message(uvws_conn_t *conn, uvws_opcode_t op, const void *data, size_t len) {
  exec_conn_t *ec = uvws_conn_get_data(conn);
  if (ec == NULL || ec->closing_ws || ec->in_closed) return;
  if (ec->route->binary) {
    in_write(ec, data, len, 0);
  } else if (op != UVWS_OP_TEXT) {
    uvws_log(UVWS_LOG_INFO, "exec %s #%llu: binary message on a text route; closing with 1003", ec->route->path,
             ec->id);
    ws_fail(ec, UVWS_CLOSE_UNSUPPORTED, "text messages only");
  } else if (memchr(data, '\n', len) != NULL) {
    uvws_log(UVWS_LOG_INFO, "exec %s #%llu: message with a newline; closing with 1003", ec->route->path, ec->id);
    ws_fail(ec, UVWS_CLOSE_UNSUPPORTED, "a message may not contain a newline");
  } else {
    in_write(ec, data, len, 1);
  }
}

static void ex_open(uvws_conn_t *conn) {
  exec_conn_t *ec = uvws_conn_get_data(conn);
  ec->conn = conn;
  exec_start_reading(ec);
  if (ec->exited && ec->out_eof) exec_finish_ws(ec);
}

static void ex_close(uvws_conn_t *conn, int code, const char *reason, size_t reason_len) {
  exec_conn_t *ec = uvws_conn_get_data(conn);
  (void)code;
  (void)reason;
  (void)reason_len;
  if (ec == NULL) return;
  ec->conn = NULL;
  ec->conn_done = 1;
  exec_end(ec);
}

/* The upgrade was accepted but the connection never opened. */
static void ex_release(void *data) {
  exec_conn_t *ec = data;
  ec->conn_done = 1;
  exec_end(ec);
}

static int ex_upgrade(uvws_upgrade_t *up) {
  exec_route_t *rt = uvws_upgrade_route_data(up);
  uvws_exec_t *app = rt->app;
  unsigned running = atomic_fetch_add(&app->procs, 1);
  exec_conn_t *ec;
  if (running >= app->opts.max_procs) {
    atomic_fetch_sub(&app->procs, 1);
    uvws_log(UVWS_LOG_INFO, "exec %s: %u programs running (--exec-max-procs); 503 for %s", rt->path, running,
             uvws_upgrade_peer(up));
    uvws_upgrade_add_header(up, "Retry-After", "1");
    return 503;
  }
  if ((ec = calloc(1, sizeof(*ec))) == NULL) {
    atomic_fetch_sub(&app->procs, 1);
    return 503;
  }
  ec->route = rt;
  ec->counted = 1;
  ec->id = atomic_fetch_add(&app->next_id, 1) + 1;
  if (exec_spawn(ec, up, uvws_server_loop(uvws_upgrade_server(up))) != 0) return 500;
  uvws_upgrade_set_data(up, ec, ex_release);
  return 0;
}

void uvws_exec_options_init(uvws_exec_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->max_procs = 256;
  o->close_timeout_ms = 1000;
  o->stderr_mode = "log";
  o->max_line = 16u * 1024u * 1024u;
}

int uvws_exec_new(uvws_exec_t **out, const uvws_exec_options_t *o) {
  uvws_exec_t *app;
  int mode, r;
  if (strcmp(o->stderr_mode, "log") == 0) mode = EXEC_STDERR_LOG;
  else if (strcmp(o->stderr_mode, "discard") == 0) mode = EXEC_STDERR_DISCARD;
  else if (strcmp(o->stderr_mode, "client") == 0) mode = EXEC_STDERR_CLIENT;
  else return UV_EINVAL;
  if ((app = calloc(1, sizeof(*app))) == NULL) return UV_ENOMEM;
  app->opts = *o;
  app->opts.stderr_mode = NULL;
  app->opts.passenv = NULL;
  app->stderr_mode = mode;
  atomic_init(&app->procs, 0);
  atomic_init(&app->next_id, 0);
  if ((app->pids = calloc(o->max_procs + EXEC_MAX_SHARED, sizeof(int))) == NULL) {
    free(app);
    return UV_ENOMEM;
  }
  if ((r = uv_mutex_init(&app->lock)) != 0) {
    free(app->pids);
    free(app);
    return r;
  }
  if ((r = exec_base_env(app, o->passenv)) != 0) {
    uv_mutex_destroy(&app->lock);
    free(app->pids);
    free(app);
    return r;
  }
  *out = app;
  return 0;
}

static void route_free(exec_route_t *rt) {
  exec_free_argv(rt->argv);
  free(rt->path);
  free(rt);
}

/* Takes `argv` (freed on failure too). */
static int add_route(uvws_server_t *srv, uvws_exec_t *app, const char *path, char **argv, int binary) {
  exec_route_t *rt = calloc(1, sizeof(*rt));
  uvws_route_t route;
  int r;
  if (rt == NULL || (rt->path = strdup(path)) == NULL) {
    free(rt);
    exec_free_argv(argv);
    return UV_ENOMEM;
  }
  rt->argv = argv;
  rt->app = app;
  rt->binary = binary;
  memset(&route, 0, sizeof(route));
  route.path = path;
  route.user = rt;
  route.handlers.on_upgrade = ex_upgrade;
  route.handlers.on_open = ex_open;
  route.handlers.on_message = ex_message;
  route.handlers.on_close = ex_close;
  route.handlers.on_drain = ex_drain;
  route.subprotocols = exec_protocols_for(app, path);
  if ((r = uvws_server_route(srv, &route)) != 0) {
    route_free(rt);
    return r;
  }
  rt->next = app->routes;
  app->routes = rt;
  return 0;
}

const char *const *exec_protocols_for(uvws_exec_t *app, const char *path) {
  exec_protos_t *p;
  for (p = app->protos; p; p = p->next)
    if (strcmp(p->path, path) == 0) {
      p->used = 1;
      return (const char *const *)p->names;
    }
  return NULL;
}

/* "a,b,c" as a NULL-terminated array of copies; UV_EINVAL for an empty
 * name (",,", a leading or trailing comma, or nothing at all). */
static int split_names(const char *list, char ***out) {
  size_t n = 1, i = 0;
  const char *s, *end;
  char **names;
  for (s = list; *s; s++) n += *s == ',';
  if ((names = calloc(n + 1, sizeof(char *))) == NULL) return UV_ENOMEM;
  for (s = list;; s = end + 1) {
    end = strchr(s, ',');
    if (end == NULL) end = s + strlen(s);
    if (end == s) {
      exec_free_argv(names);
      return UV_EINVAL;
    }
    if ((names[i] = strndup(s, (size_t)(end - s))) == NULL) {
      exec_free_argv(names);
      return UV_ENOMEM;
    }
    i++;
    if (*end == '\0') break;
  }
  *out = names;
  return 0;
}

int uvws_exec_protocols(uvws_exec_t *app, const char *path, const char *list) {
  exec_protos_t *p;
  int r;
  for (p = app->protos; p; p = p->next)
    if (strcmp(p->path, path) == 0) return UV_EEXIST;
  if ((p = calloc(1, sizeof(*p))) == NULL || (p->path = strdup(path)) == NULL) {
    free(p);
    return UV_ENOMEM;
  }
  if ((r = split_names(list, &p->names)) != 0) {
    free(p->path);
    free(p);
    return r;
  }
  p->next = app->protos;
  app->protos = p;
  return 0;
}

const char *uvws_exec_protocols_unused(const uvws_exec_t *app) {
  const exec_protos_t *p;
  for (p = app->protos; p; p = p->next)
    if (!p->used) return p->path;
  return NULL;
}

int uvws_app_exec(uvws_server_t *srv, uvws_exec_t *app, const char *path, const char *command, int binary) {
  char **argv;
  int r = exec_split_command(command, &argv);
  return r != 0 ? r : add_route(srv, app, path, argv, binary);
}

/* Names that are a URL path segment as they are. */
static int dir_name_ok(const char *s) {
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-') return 0;
  return 1;
}

/* One entry of --exec-dir: 1 if it became a route, 0 if it is not one. */
static int dir_entry(uvws_server_t *srv, uvws_exec_t *app, const char *real, const char *name) {
  char file[PATH_MAX], target[PATH_MAX], path[PATH_MAX], **argv;
  size_t rl = strlen(real);
  struct stat st;
  int r;
  if (name[0] == '.') return 0; /* ., .. and dot files */
  if (!dir_name_ok(name)) {
    uvws_log(UVWS_LOG_WARN, "exec dir %s: skipping '%s' (a route name is letters, digits, '.', '_', '-')", real, name);
    return 0;
  }
  if (rl + strlen(name) + 2 > sizeof(file)) return 0;
  memcpy(file, real, rl);
  file[rl] = '/';
  memcpy(file + rl + 1, name, strlen(name) + 1);
  if (realpath(file, target) == NULL || stat(target, &st) != 0 || !S_ISREG(st.st_mode) ||
      access(target, X_OK) != 0)
    return 0;
  if (strncmp(target, real, rl) != 0 || target[rl] != '/') {
    uvws_log(UVWS_LOG_WARN, "exec dir %s: skipping '%s': it points outside the folder", real, name);
    return 0;
  }
  if ((argv = calloc(2, sizeof(char *))) == NULL || (argv[0] = strdup(target)) == NULL) {
    free(argv);
    return UV_ENOMEM;
  }
  path[0] = '/';
  memcpy(path + 1, name, strlen(name) + 1); /* a d_name is at most 255 bytes */
  if ((r = add_route(srv, app, path, argv, 0)) != 0) {
    uvws_log(UVWS_LOG_WARN, "exec dir %s: skipping '%s': %s", real, name, uvws_strerror(r));
    return r == UV_ENOMEM ? r : 0;
  }
  uvws_log(UVWS_LOG_INFO, "exec dir: %s serves %s", path, target);
  return 1;
}

int uvws_app_exec_dir(uvws_server_t *srv, uvws_exec_t *app, const char *dir) {
  char real[PATH_MAX];
  struct dirent *de;
  DIR *d;
  int r = 0, n = 0;
  if (realpath(dir, real) == NULL || (d = opendir(real)) == NULL) return UV_ENOENT;
  while (r >= 0 && (de = readdir(d)) != NULL)
    if ((r = dir_entry(srv, app, real, de->d_name)) > 0) n++;
  closedir(d);
  return r < 0 ? r : n;
}

void uvws_exec_free(uvws_exec_t *app) {
  size_t i;
  if (app == NULL) return;
  exec_shared_free_all(app);
  while (app->routes) {
    exec_route_t *rt = app->routes;
    app->routes = rt->next;
    route_free(rt);
  }
  while (app->protos) {
    exec_protos_t *p = app->protos;
    app->protos = p->next;
    exec_free_argv(p->names);
    free(p->path);
    free(p);
  }
  for (i = 0; i < app->nbaseenv; i++) free(app->baseenv[i]);
  free(app->baseenv);
  free(app->pids);
  uv_mutex_destroy(&app->lock);
  free(app);
}

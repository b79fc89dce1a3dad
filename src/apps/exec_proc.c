/* The process side of the exec routes: the command line split into words,
 * the CGI-like environment, uv_spawn, and the end of a program (stdin
 * closed, SIGTERM, SIGKILL, reaping). Written against the public header.
 *
 * Each program leads a process group of its own (UV_PROCESS_DETACHED, so
 * setsid): the signals go to the whole group, so `sh script` with a `sleep`
 * running ends too, and a terminal's Ctrl-C reaches uvws alone, which then
 * ends its programs in order. */
#include "exec.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* ---- the command line -------------------------------------------------------- */

static int push_word(char ***argv, size_t *argc, const char *w, size_t n) {
  char **grown = realloc(*argv, (*argc + 2) * sizeof(char *));
  if (grown == NULL) return UV_ENOMEM;
  *argv = grown;
  if ((grown[*argc] = malloc(n + 1)) == NULL) return UV_ENOMEM;
  memcpy(grown[*argc], w, n);
  grown[*argc][n] = '\0';
  grown[++*argc] = NULL;
  return 0;
}

/* One word from *pp into `word`: backslash quotes the next character,
 * '...' is literal, "..." is literal but for \" \\ \$ \`. UV_EINVAL for an
 * unterminated quote or a trailing backslash. */
static int scan_word(const char **pp, char *word, size_t *len) {
  const char *p = *pp;
  size_t n = 0;
  while (*p && !isspace((unsigned char)*p)) {
    if (*p == '\\') {
      if (*++p == '\0') return UV_EINVAL;
      word[n++] = *p++;
    } else if (*p == '\'') {
      for (p++; *p && *p != '\''; p++) word[n++] = *p;
      if (*p++ == '\0') return UV_EINVAL;
    } else if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1] && strchr("\"\\$`", p[1])) p++;
        word[n++] = *p;
      }
      if (*p++ == '\0') return UV_EINVAL;
    } else {
      word[n++] = *p++;
    }
  }
  *pp = p;
  *len = n;
  return 0;
}

int exec_split_command(const char *cmd, char ***argv_out) {
  char **argv = NULL, *word = malloc(strlen(cmd) + 1);
  size_t argc = 0, n;
  const char *p = cmd;
  int r = word ? 0 : UV_ENOMEM;
  while (r == 0) {
    while (isspace((unsigned char)*p)) p++;
    if (*p == '\0') break;
    if ((r = scan_word(&p, word, &n)) == 0) r = push_word(&argv, &argc, word, n);
  }
  free(word);
  if (r == 0 && argc == 0) r = UV_EINVAL;
  if (r != 0) {
    exec_free_argv(argv);
    return r;
  }
  *argv_out = argv;
  return 0;
}

void exec_free_argv(char **argv) {
  size_t i;
  for (i = 0; argv && argv[i]; i++) free(argv[i]);
  free(argv);
}

/* ---- the environment ----------------------------------------------------------- */

typedef struct {
  char **v;
  size_t n, cap;
} env_t;

static int env_add(env_t *e, const char *name, const char *value, size_t vlen) {
  size_t nl = strlen(name);
  char *s;
  if (e->n + 2 > e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 32;
    char **v = realloc(e->v, cap * sizeof(char *));
    if (v == NULL) return UV_ENOMEM;
    e->v = v;
    e->cap = cap;
  }
  if ((s = malloc(nl + vlen + 2)) == NULL) return UV_ENOMEM;
  memcpy(s, name, nl);
  s[nl] = '=';
  memcpy(s + nl + 1, value, vlen);
  s[nl + 1 + vlen] = '\0';
  e->v[e->n++] = s;
  e->v[e->n] = NULL;
  return 0;
}

static int env_set(env_t *e, const char *name, const char *value) {
  return env_add(e, name, value, strlen(value));
}

static void env_free(env_t *e) {
  size_t i;
  for (i = 0; i < e->n; i++) free(e->v[i]);
  free(e->v);
}

static int valid_env_name(const char *s, size_t n) {
  size_t i;
  if (n == 0 || isdigit((unsigned char)s[0])) return 0;
  for (i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
  return 1;
}

int exec_base_env(uvws_exec_t *app, const char *passenv) {
  env_t e = {0};
  const char *path = getenv("PATH"), *p = passenv;
  int r = env_set(&e, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
  while (r == 0 && p && *p) {
    size_t n = strcspn(p, ",");
    char name[256];
    const char *v;
    if (!valid_env_name(p, n) || n >= sizeof(name)) {
      r = UV_EINVAL;
      break;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    if (strcmp(name, "PATH") != 0 && (v = getenv(name)) != NULL) r = env_set(&e, name, v);
    p += n + (p[n] == ',');
  }
  if (r != 0) {
    env_free(&e);
    return r;
  }
  app->baseenv = e.v;
  app->nbaseenv = e.n;
  return 0;
}

/* "Sec-WebSocket-Key" -> HTTP_SEC_WEBSOCKET_KEY; a repeated header is
 * joined with ", " as CGI asks. */
static int env_header(env_t *e, const char *name, size_t nl, const char *value, size_t vl) {
  char var[128];
  size_t i, vn = 5;
  memcpy(var, "HTTP_", 5);
  for (i = 0; i < nl && vn < sizeof(var) - 1; i++)
    var[vn++] = isalnum((unsigned char)name[i]) ? (char)toupper((unsigned char)name[i]) : '_';
  var[vn] = '\0';
  for (i = 0; i < e->n; i++) {
    size_t old = strlen(e->v[i]);
    char *s;
    if (strncmp(e->v[i], var, vn) != 0 || e->v[i][vn] != '=') continue;
    if ((s = realloc(e->v[i], old + vl + 3)) == NULL) return UV_ENOMEM;
    memcpy(s + old, ", ", 2);
    memcpy(s + old + 2, value, vl);
    s[old + 2 + vl] = '\0';
    e->v[i] = s;
    return 0;
  }
  return env_add(e, var, value, vl);
}

/* REMOTE_ADDR and REMOTE_PORT from "ip:port" or "[ip]:port". */
static int env_peer(env_t *e, const char *peer) {
  const char *colon = strrchr(peer, ':');
  size_t al;
  int r;
  if (colon == NULL) return env_set(e, "REMOTE_ADDR", peer);
  al = (size_t)(colon - peer);
  if (peer[0] == '[' && al >= 2) r = env_add(e, "REMOTE_ADDR", peer + 1, al - 2);
  else r = env_add(e, "REMOTE_ADDR", peer, al);
  return r ? r : env_set(e, "REMOTE_PORT", colon + 1);
}

static int env_request(env_t *e, uvws_upgrade_t *up, const exec_route_t *rt) {
  size_t tl, hl;
  const char *target = uvws_upgrade_target(up, &tl), *q = memchr(target, '?', tl);
  const char *host = uvws_upgrade_header(up, "Host", &hl), *end;
  uvws_server_t *srv = uvws_upgrade_server(up);
  int secure = uvws_upgrade_secure(up), port = secure ? uvws_server_tls_port(srv) : uvws_server_port(srv);
  char num[16];
  int r;
  snprintf(num, sizeof(num), "%d", port);
  if (host == NULL) host = "", hl = 0;
  /* "[::1]:8080" -> "[::1]", "example.com:8080" -> "example.com" */
  end = host[0] == '[' ? memchr(host, ']', hl) : memchr(host, ':', hl);
  if (end && host[0] == '[') end++;
  if ((r = env_add(e, "SERVER_NAME", host, end ? (size_t)(end - host) : hl)) ||
      (r = env_set(e, "SERVER_PORT", num)) || (r = env_set(e, "SERVER_PROTOCOL", "HTTP/1.1")) ||
      (r = env_set(e, "SERVER_SOFTWARE", "uvws/" UVWS_VERSION_STRING)) ||
      (r = env_set(e, "REQUEST_METHOD", "GET")) || (r = env_set(e, "SCRIPT_NAME", rt->path)) ||
      (r = env_set(e, "PATH_INFO", "")) || (r = env_set(e, "HTTPS", secure ? "on" : "off")) ||
      (r = env_add(e, "QUERY_STRING", q ? q + 1 : "", q ? tl - (size_t)(q + 1 - target) : 0)))
    return r;
  return env_peer(e, uvws_upgrade_peer(up));
}

/* The program's whole environment: CGI's variables, one HTTP_* per request
 * header (but Proxy: HTTP_PROXY would point the program's HTTP clients at
 * a host the peer chose, "httpoxy"), uvws's own, and the base (PATH and
 * --exec-passenv). Nothing else of uvws's environment. */
static int build_env(env_t *e, const exec_conn_t *ec, uvws_upgrade_t *up) {
  const char *name, *value, *proto = uvws_upgrade_protocol(up);
  size_t nl, vl, i;
  char num[24];
  int r = env_request(e, up, ec->route);
  for (i = 0; r == 0 && uvws_upgrade_header_at(up, i, &name, &nl, &value, &vl) == 0; i++)
    if (!(nl == 5 && strncasecmp(name, "proxy", 5) == 0)) r = env_header(e, name, nl, value, vl);
  snprintf(num, sizeof(num), "%llu", ec->id);
  if (r == 0) r = env_set(e, "UVWS_CONNECTION_ID", num);
  if (r == 0 && proto) r = env_set(e, "UVWS_PROTOCOL", proto);
  if (r == 0) r = env_set(e, "PYTHONUNBUFFERED", "1");
  for (i = 0; r == 0 && i < ec->route->app->nbaseenv; i++) {
    const char *eq = strchr(ec->route->app->baseenv[i], '=');
    char var[256];
    snprintf(var, sizeof(var), "%.*s", (int)(eq - ec->route->app->baseenv[i]), ec->route->app->baseenv[i]);
    r = env_set(e, var, eq + 1);
  }
  return r;
}

/* ---- spawning and ending --------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  exec_conn_t *ec = h->data;
  ec->handles--;
  exec_maybe_free(ec);
}

void exec_close_handle(exec_conn_t *ec, uv_handle_t *h) {
  (void)ec;
  if (!uv_is_closing(h)) uv_close(h, on_closed);
}

void exec_maybe_free(exec_conn_t *ec) {
  if (!ec->conn_done || !ec->exited) return;
  exec_close_handle(ec, (uv_handle_t *)&ec->in);
  exec_close_handle(ec, (uv_handle_t *)&ec->out);
  exec_close_handle(ec, (uv_handle_t *)&ec->err);
  exec_close_handle(ec, (uv_handle_t *)&ec->timer);
  if (ec->proc_init) exec_close_handle(ec, (uv_handle_t *)&ec->proc);
  if (ec->handles == 0) {
    free(ec->line);
    free(ec);
  }
}

static void uncount(exec_conn_t *ec) {
  if (ec->counted) atomic_fetch_sub(&ec->route->app->procs, 1);
  ec->counted = 0;
}

static void on_timer(uv_timer_t *t) {
  exec_conn_t *ec = t->data;
  unsigned ms = ec->route->app->opts.close_timeout_ms;
  if (ec->exited) { /* its output did not end with it (a child of its own holds stdout) */
    exec_finish_ws(ec);
    return;
  }
  if (!ec->term_sent) {
    uvws_log(UVWS_LOG_INFO, "exec %s #%llu: pid %d still running %u ms after its stdin closed; SIGTERM",
             ec->route->path, ec->id, ec->pid, ms);
    uv_kill(-ec->pid, SIGTERM);
    ec->term_sent = 1;
    uv_timer_start(t, on_timer, ms, 0);
  } else {
    uvws_log(UVWS_LOG_WARN, "exec %s #%llu: pid %d ignored SIGTERM for %u ms; SIGKILL", ec->route->path,
             ec->id, ec->pid, ms);
    uv_kill(-ec->pid, SIGKILL);
  }
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig) {
  exec_conn_t *ec = p->data;
  ec->exited = 1;
  exec_pid_remove(ec->route->app, ec->pid);
  ec->exit_status = status;
  ec->term_signal = sig;
  uncount(ec);
  if (sig)
    uvws_log(UVWS_LOG_INFO, "exec %s #%llu: pid %d killed by signal %d", ec->route->path, ec->id, ec->pid, sig);
  else
    uvws_log(UVWS_LOG_INFO, "exec %s #%llu: pid %d exited with status %lld", ec->route->path, ec->id, ec->pid,
             (long long)status);
  uv_timer_stop(&ec->timer);
  if (ec->conn_done) {
    exec_maybe_free(ec);
  } else if (ec->out_eof) {
    exec_finish_ws(ec);
  } else {
    uv_timer_start(&ec->timer, on_timer, ec->route->app->opts.close_timeout_ms, 0);
  }
}

void exec_end(exec_conn_t *ec) {
  if (ec->ending) return;
  ec->ending = 1;
  ec->in_closed = 1;
  exec_close_handle(ec, (uv_handle_t *)&ec->in);
  if (!ec->exited) uv_timer_start(&ec->timer, on_timer, ec->route->app->opts.close_timeout_ms, 0);
  /* Nobody reads its output any more, but it must not block writing it
   * while it winds down: read on and drop. */
  if (!ec->out_eof) exec_start_reading(ec);
  exec_maybe_free(ec);
}

/* On Unix these cannot fail (libuv 1.44 returns 0 from each). */
static void init_handles(exec_conn_t *ec, uv_loop_t *loop) {
  uv_pipe_init(loop, &ec->in, 0);
  uv_pipe_init(loop, &ec->out, 0);
  uv_pipe_init(loop, &ec->err, 0);
  uv_timer_init(loop, &ec->timer);
  ec->handles = 4;
  ec->in.data = ec->out.data = ec->err.data = ec->timer.data = ec->proc.data = ec;
}

int exec_spawn_piped(uv_loop_t *loop, uv_process_t *proc, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err,
                     char **argv, char **env, uv_exit_cb exit_cb) {
  uv_pipe_t *pipes[3] = {in, out, err};
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  int i;
  memset(&o, 0, sizeof(o));
  for (i = 0; i < 3; i++) {
    /* the child's view: it reads stdin, writes stdout and stderr */
    stdio[i].flags = UV_CREATE_PIPE | (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
    stdio[i].data.stream = (uv_stream_t *)pipes[i];
  }
  o.exit_cb = exit_cb;
  o.file = argv[0];
  o.args = argv;
  o.env = env;
  o.stdio = stdio;
  o.stdio_count = 3;
  o.flags = UV_PROCESS_DETACHED;
  return uv_spawn(loop, proc, &o);
}

static int spawn(exec_conn_t *ec, uv_loop_t *loop, char **env) {
  int r = exec_spawn_piped(loop, &ec->proc, &ec->in, &ec->out, &ec->err, ec->route->argv, env, on_proc_exit);
  ec->proc.data = ec;
  ec->proc_init = 1; /* initialised by uv_spawn even when it fails */
  ec->handles++;
  return r;
}

int exec_spawn(exec_conn_t *ec, uvws_upgrade_t *up, uv_loop_t *loop) {
  env_t env = {0};
  int r;
  init_handles(ec, loop);
  r = build_env(&env, ec, up);
  if (r == 0) r = spawn(ec, loop, env.v);
  env_free(&env);
  if (r == 0) {
    ec->pid = ec->proc.pid;
    exec_pid_add(ec->route->app, ec->pid);
    uvws_log(UVWS_LOG_DEBUG, "exec %s #%llu: started %s as pid %d for %s", ec->route->path, ec->id,
             ec->route->argv[0], ec->pid, uvws_upgrade_peer(up));
    return 0;
  }
  uvws_log(UVWS_LOG_ERROR, "exec %s: cannot start %s: %s; answering 500", ec->route->path, ec->route->argv[0],
           uvws_strerror(r));
  uncount(ec);
  ec->conn_done = ec->exited = 1;
  exec_maybe_free(ec);
  return r;
}

/* ---- the registry of running programs, and shutdown ------------------------------- */

void exec_pid_add(uvws_exec_t *app, int pid) {
  unsigned i;
  uv_mutex_lock(&app->lock);
  for (i = 0; i < app->opts.max_procs + EXEC_MAX_SHARED; i++)
    if (app->pids[i] == 0) {
      app->pids[i] = pid;
      break;
    }
  uv_mutex_unlock(&app->lock);
}

void exec_pid_remove(uvws_exec_t *app, int pid) {
  unsigned i;
  uv_mutex_lock(&app->lock);
  for (i = 0; i < app->opts.max_procs + EXEC_MAX_SHARED; i++)
    if (app->pids[i] == pid) {
      app->pids[i] = 0;
      break;
    }
  uv_mutex_unlock(&app->lock);
}

/* Signals every running program's group; returns how many there were. */
static unsigned signal_all(uvws_exec_t *app, int sig) {
  unsigned i, n = 0;
  uv_mutex_lock(&app->lock);
  for (i = 0; i < app->opts.max_procs + EXEC_MAX_SHARED; i++)
    if (app->pids[i] != 0) {
      if (sig) uv_kill(-app->pids[i], sig);
      n++;
    }
  uv_mutex_unlock(&app->lock);
  return n;
}

static void on_stop_tick(uv_timer_t *t) {
  uvws_exec_t *app = t->data;
  uint64_t elapsed = uv_now(t->loop) - app->stop_start;
  unsigned left = signal_all(app, 0);
  if (left == 0) {
    uv_close((uv_handle_t *)t, NULL);
    return;
  }
  if (app->stop_phase < 3 && elapsed >= app->stop_kill_at) {
    uvws_log(UVWS_LOG_WARN, "exec: shutting down, %u program(s) still running; SIGKILL", left);
    signal_all(app, SIGKILL);
    app->stop_phase = 3;
  } else if (app->stop_phase < 2 && elapsed >= app->stop_term_at) {
    uvws_log(UVWS_LOG_INFO, "exec: shutting down, %u program(s) still running; SIGTERM", left);
    signal_all(app, SIGTERM);
    app->stop_phase = 2;
  }
}

int uvws_exec_shutdown(uvws_exec_t *app, uv_loop_t *loop, unsigned budget_ms) {
  uint64_t ct;
  int r;
  if (app == NULL || app->stop_phase != 0) return 0;
  ct = app->opts.close_timeout_ms;
  if ((r = uv_timer_init(loop, &app->stop_timer)) != 0) return r;
  app->stop_timer.data = app;
  app->stop_start = uv_now(loop);
  /* the usual rhythm (stdin closed, close timeout, SIGTERM, as long, SIGKILL)
   * fitted at the end of the budget */
  app->stop_term_at = budget_ms > 2 * ct ? budget_ms - 2 * ct : budget_ms / 2;
  app->stop_kill_at = budget_ms > 2 * ct ? budget_ms - ct : budget_ms * 3 / 4;
  app->stop_phase = 1;
  exec_shared_stop_all(app);
  return uv_timer_start(&app->stop_timer, on_stop_tick, 50, 50);
}

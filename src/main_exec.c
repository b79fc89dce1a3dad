/* The uvws program's --exec* flags: gathered while the command line is
 * read, turned into the exec app's routes once the server exists. */
#include "main.h"

#include <stdio.h>
#include <string.h>

enum { EXEC_TEXT, EXEC_BINARY, EXEC_SHARED };

void main_exec_flags_init(main_exec_flags_t *f) {
  memset(f, 0, sizeof(*f));
  uvws_exec_options_init(&f->opts);
}

static const char *route_flag(int kind) {
  return kind == EXEC_TEXT ? "--exec" : kind == EXEC_BINARY ? "--exec-binary" : "--exec-shared";
}

/* A subprotocol name is an HTTP token (RFC 6455 4.1, RFC 7230 3.2.6). */
static int token_char(int ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* --exec-protocol /PATH=NAME[,NAME...]: checked whole here, so a typo
 * stops the start with the name at fault; whether PATH is an exec route
 * is known only once the routes exist (main_exec_routes). */
static int protocol_flag(const char *arg, main_exec_flags_t *f) {
  const char *eq = strchr(arg, '='), *s, *end;
  char why[512];
  size_t i;
  if (arg[0] != '/' || eq == NULL) return main_bad("--exec-protocol", arg, "expected /PATH=NAME[,NAME...]");
  for (s = eq + 1;; s = end + 1) {
    for (end = s; *end && *end != ','; end++)
      if (!token_char((unsigned char)*end)) {
        snprintf(why, sizeof(why),
                 "'%.*s' is not a subprotocol name (RFC 6455: letters, digits and !#$%%&'*+-.^_`|~)",
                 (int)strcspn(s, ","), s);
        return main_bad("--exec-protocol", arg, why);
      }
    if (end == s) return main_bad("--exec-protocol", arg, "an empty subprotocol name (expected /PATH=NAME[,NAME...])");
    if (*end == '\0') break;
  }
  for (i = 0; i < f->nprotos; i++)
    if (strncmp(f->protos[i], arg, (size_t)(eq - arg) + 1) == 0) {
      snprintf(why, sizeof(why), "%.*s already has an --exec-protocol list", (int)(eq - arg), arg);
      return main_bad("--exec-protocol", arg, why);
    }
  if (f->nprotos == MAIN_MAX_EXEC_ROUTES) return main_bad("--exec-protocol", arg, "too many --exec-protocol lists");
  f->protos[f->nprotos++] = arg;
  return 0;
}

int main_exec_flag(int c, const char *arg, main_exec_flags_t *f) {
  int v, kind;
  switch (c) {
    case 'x':
    case 'x' + 256:
    case 'x' + 1792:
      kind = c == 'x' ? EXEC_TEXT : c == 'x' + 256 ? EXEC_BINARY : EXEC_SHARED;
      if (strchr(arg, '=') == NULL || arg[0] != '/') return main_bad(route_flag(kind), arg, "expected /PATH=COMMAND");
      if (f->n == MAIN_MAX_EXEC_ROUTES) return main_bad("--exec", arg, "too many exec routes");
      f->kind[f->n] = kind;
      f->specs[f->n++] = arg;
      return 0;
    case 'x' + 512:
      if (main_parse_int(arg, 1, 100000, &v) != 0) return main_bad("--exec-max-procs", arg, "expected 1 to 100000");
      f->opts.max_procs = (unsigned)v;
      return 0;
    case 'x' + 768:
      if (main_parse_duration(arg, &f->opts.close_timeout_ms) != 0)
        return main_bad("--exec-close-timeout", arg, "expected a duration such as 1s or 500ms");
      return 0;
    case 'x' + 1024:
      if (strcmp(arg, "log") != 0 && strcmp(arg, "discard") != 0 && strcmp(arg, "client") != 0)
        return main_bad("--exec-stderr", arg, "expected log, discard or client");
      f->opts.stderr_mode = arg;
      return 0;
    case 'x' + 1280:
      f->opts.passenv = arg;
      return 0;
    case 'x' + 2048:
      return protocol_flag(arg, f);
    default: /* 'x' + 1536 */
      f->dir = arg;
      return 0;
  }
}

/* A PATH of --exec-protocol (`path`, or the first one when NULL) that
 * is no exec route: 2, having said so. */
static int no_such_route(const main_exec_flags_t *f, const char *path) {
  size_t i = 0, n;
  if (path)
    for (n = strlen(path); i + 1 < f->nprotos; i++)
      if (strncmp(f->protos[i], path, n) == 0 && f->protos[i][n] == '=') break;
  n = strcspn(f->protos[i], "=");
  fprintf(stderr,
          "uvws: --exec-protocol %s: %.*s is not a route of --exec, --exec-binary, --exec-shared or --exec-dir\n"
          "Try 'uvws --help'.\n",
          f->protos[i], (int)n, f->protos[i]);
  return 2;
}

/* The --exec-protocol lists, before the routes that take them. */
static int add_protocols(main_exec_flags_t *f, uvws_exec_t *app) {
  size_t i;
  int r;
  for (i = 0; i < f->nprotos; i++) {
    const char *eq = strchr(f->protos[i], '=');
    char path[1024];
    snprintf(path, sizeof(path), "%.*s", (int)(eq - f->protos[i]), f->protos[i]);
    if ((r = uvws_exec_protocols(app, path, eq + 1)) != 0) {
      fprintf(stderr, "uvws: --exec-protocol %s: %s\n", f->protos[i], uvws_strerror(r));
      return 1;
    }
  }
  return 0;
}

int main_exec_routes(uvws_server_t *srv, main_exec_flags_t *f, size_t max_line, uvws_exec_t **app) {
  const char *unused;
  size_t i;
  int r;
  if (f->n == 0 && f->dir == NULL) return f->nprotos == 0 ? 0 : no_such_route(f, NULL);
  f->opts.max_line = max_line;
  if ((r = uvws_exec_new(app, &f->opts)) != 0) {
    fprintf(stderr, "uvws: --exec-passenv: %s\n", r == UV_EINVAL ? "expected NAME,NAME..." : uvws_strerror(r));
    return 1;
  }
  if ((r = add_protocols(f, *app)) != 0) return r;
  for (i = 0; i < f->n; i++) {
    const char *spec = f->specs[i], *eq = strchr(spec, '=');
    char path[1024];
    snprintf(path, sizeof(path), "%.*s", (int)(eq - spec), spec);
    r = f->kind[i] == EXEC_SHARED ? uvws_app_exec_shared(srv, *app, path, eq + 1)
                                  : uvws_app_exec(srv, *app, path, eq + 1, f->kind[i] == EXEC_BINARY);
    if (r != 0) {
      fprintf(stderr, "uvws: %s %s: %s\n", f->kind[i] == EXEC_TEXT ? "--exec" : "--exec-binary/shared", spec,
              r == UV_EINVAL ? "empty command or unbalanced quote" : uvws_strerror(r));
      return 1;
    }
  }
  if (f->dir && (r = uvws_app_exec_dir(srv, *app, f->dir)) < 0) {
    fprintf(stderr, "uvws: --exec-dir %s: %s\n", f->dir, uvws_strerror(r));
    return 1;
  }
  return (unused = uvws_exec_protocols_unused(*app)) != NULL ? no_such_route(f, unused) : 0;
}

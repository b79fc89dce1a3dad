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
    default: /* 'x' + 1536 */
      f->dir = arg;
      return 0;
  }
}

int main_exec_routes(uvws_server_t *srv, main_exec_flags_t *f, size_t max_line, uvws_exec_t **app) {
  size_t i;
  int r;
  if (f->n == 0 && f->dir == NULL) return 0;
  f->opts.max_line = max_line;
  if ((r = uvws_exec_new(app, &f->opts)) != 0) {
    fprintf(stderr, "uvws: --exec-passenv: %s\n", r == UV_EINVAL ? "expected NAME,NAME..." : uvws_strerror(r));
    return 1;
  }
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
  return 0;
}

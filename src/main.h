/* What the uvws program's files share: the flag value parsers (main.c)
 * and the --exec* flags (main_exec.c). The program, not the library: uses
 * the public header and the apps only. */
#ifndef UVWS_MAIN_H
#define UVWS_MAIN_H

#include "apps/apps.h"
#include "uvws.h"

#include <stddef.h>

/* Each returns 0, or -1 for a value it does not accept. */
int main_parse_size(const char *s, size_t *out);     /* "123", "64K", "16M", "1G" */
int main_parse_int(const char *s, int lo, int hi, int *out);
int main_parse_duration(const char *s, unsigned *ms); /* "10", "10s", "500ms", "2m" */
/* Prints why `value` is refused for `flag`; returns 2, the exit status. */
int main_bad(const char *flag, const char *value, const char *why);

#define MAIN_MAX_EXEC_ROUTES 64

/* --exec and its companions, gathered until the server exists. The
 * strings point into argv. */
typedef struct {
  uvws_exec_options_t opts;
  const char *specs[MAIN_MAX_EXEC_ROUTES];
  int kind[MAIN_MAX_EXEC_ROUTES];
  size_t n;
  const char *dir;
  const char *protos[MAIN_MAX_EXEC_ROUTES]; /* --exec-protocol, "/PATH=NAME,..." */
  size_t nprotos;
} main_exec_flags_t;

/* The getopt codes of the --exec* flags: 'x' + 256 * k. */
#define MAIN_EXEC_FLAG(c) ((c) % 256 == 'x' && (c) / 256 <= 8)

void main_exec_flags_init(main_exec_flags_t *f);
/* One --exec* flag (its getopt code and value): 0, or the exit status. */
int main_exec_flag(int c, const char *arg, main_exec_flags_t *f);
/* The exec routes the flags name, as routes of one app (*app stays NULL
 * when there are none). 0, or the exit status, having said why. */
int main_exec_routes(uvws_server_t *srv, main_exec_flags_t *f, size_t max_line, uvws_exec_t **app);

#endif

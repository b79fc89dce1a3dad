#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uvws_log_level_t uvws__log_level = UVWS_LOG_INFO;
static uvws_log_cb log_cb;
static void *log_user;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void uvws_log_set_level(uvws_log_level_t level) { uvws__log_level = level; }

void uvws_log_set_handler(uvws_log_cb cb, void *user) {
  log_cb = cb;
  log_user = user;
}

int uvws_log_level_parse(const char *name, uvws_log_level_t *out) {
  int i;
  for (i = 0; i < 4; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (uvws_log_level_t)i;
      return 0;
    }
  }
  return UV_EINVAL;
}

static void log_va(uvws_log_level_t level, const char *fmt, va_list ap) UVWS__PRINTF(2, 0);

void uvws__log_write(uvws_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_va(level, fmt, ap);
  va_end(ap);
}

void uvws_log(uvws_log_level_t level, const char *fmt, ...) {
  va_list ap;
  if ((int)level < 0 || level > uvws__log_level) return;
  va_start(ap, fmt);
  log_va(level, fmt, ap);
  va_end(ap);
}

static void log_va(uvws_log_level_t level, const char *fmt, va_list ap) {
  char msg[1024];

  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (log_cb) {
    log_cb(level, msg, log_user);
  } else {
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line keeps lines whole when threads log at once. */
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L, level_names[level], msg);
  }
}

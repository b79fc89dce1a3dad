/* Logging: one line per event, to the handler set with uvws_log_set_handler
 * (stderr by default). */
#ifndef UVWS_LOG_H
#define UVWS_LOG_H

#include "uvws.h"

#if defined(__GNUC__)
#define UVWS__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define UVWS__PRINTF(a, b)
#endif

extern uvws_log_level_t uvws__log_level;

void uvws__log_write(uvws_log_level_t level, const char *fmt, ...) UVWS__PRINTF(2, 3);

/* The check is inline so disabled levels cost a compare, not a call. */
#define uvws__log(level, ...)                                                  \
  do {                                                                         \
    if ((level) <= uvws__log_level) uvws__log_write((level), __VA_ARGS__);    \
  } while (0)

#endif

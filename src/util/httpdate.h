/* IMF-fixdate (RFC 9110 section 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT":
 * for Date, Last-Modified and If-Modified-Since. */
#ifndef UVWS_HTTPDATE_H
#define UVWS_HTTPDATE_H

#include <stdint.h>
#include <time.h>

#define UVWS__HTTPDATE_LEN 29

/* The current date, formatted at most once a second. One per loop (owned
 * by whoever holds it; not for several threads). */
typedef struct {
  char text[40];
  int64_t sec;
} uvws__httpdate_t;

void uvws__httpdate_format(time_t t, char out[40]);
const char *uvws__httpdate_now(uvws__httpdate_t *cache);
/* -1 if `s` is not an IMF-fixdate (the obsolete formats are not worth the
 * code: clients send this one). */
time_t uvws__httpdate_parse(const char *s, size_t len);

#endif

#include "util/httpdate.h"

#include <stdio.h>
#include <string.h>

void uvws__httpdate_format(time_t t, char out[40]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

const char *uvws__httpdate_now(uvws__httpdate_t *cache) {
  time_t now = time(NULL);
  if ((int64_t)now != cache->sec) {
    uvws__httpdate_format(now, cache->text);
    cache->sec = (int64_t)now;
  }
  return cache->text;
}

time_t uvws__httpdate_parse(const char *s, size_t len) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char buf[40];
  struct tm tm;
  int day, year, hh, mm, ss, i;
  char mon[4];
  if (len < UVWS__HTTPDATE_LEN || len >= sizeof(buf)) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (sscanf(buf + 5, "%2d %3s %4d %2d:%2d:%2d GMT", &day, mon, &year, &hh, &mm, &ss) != 6)
    return -1;
  memset(&tm, 0, sizeof(tm));
  for (i = 0; i < 12; i++)
    if (strncmp(mon, months + 3 * i, 3) == 0) break;
  if (i == 12) return -1;
  tm.tm_mday = day;
  tm.tm_mon = i;
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return timegm(&tm);
}

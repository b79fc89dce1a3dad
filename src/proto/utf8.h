/* Incremental UTF-8 validator (Unicode 15, table 3-7 "well-formed byte
 * sequences"): rejects overlong forms, surrogates and code points above
 * U+10FFFF at the first byte that makes the input invalid, and carries its
 * state across calls so a text message can be checked frame by frame. */
#ifndef UVWS_UTF8_H
#define UVWS_UTF8_H

#include <stddef.h>
#include <stdint.h>

enum { UVWS__UTF8_ACCEPT = 0, UVWS__UTF8_REJECT = 8 };

/* Feeds `len` bytes. `*state` starts at UVWS__UTF8_ACCEPT. Returns 0 while
 * the input is a valid prefix, or -1 at the first invalid byte (then
 * `*state` is UVWS__UTF8_REJECT and stays so). At the end of a message the
 * input is complete only if `*state == UVWS__UTF8_ACCEPT`. */
int uvws__utf8_feed(uint8_t *state, const uint8_t *p, size_t len);

/* Whole-buffer check: 1 if `p` is complete, valid UTF-8, else 0. */
int uvws__utf8_valid(const void *p, size_t len);

#endif

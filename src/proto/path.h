/* Request target -> path relative to the web root. Pure: decides only from
 * the bytes, so it can be tested exhaustively; symlinks are the HTTP
 * layer's business (it resolves them and checks the result). */
#ifndef UVWS_PATH_H
#define UVWS_PATH_H

#include <stddef.h>

/* Decodes the path of an origin-form request target (query and fragment
 * dropped), removes "." segments and empty segments, and writes the result
 * without a leading slash ("" for the root) into `out` (NUL-terminated).
 * *dir is set when the path ends with '/' (or is the root).
 *
 * Returns 0, or 400 for anything that could step outside the root or
 * confuse a filesystem: a target not starting with '/', a bad escape, a
 * control character (NUL included) raw or encoded, an encoded '/' or '\', a raw '\', a ".." segment in any spelling,
 * or a result longer than `outsz - 1` (414 then). */
int uvws__path_resolve(const char *target, size_t len, char *out, size_t outsz, int *dir);

/* The path part of a request target (up to '?' or '#'), undecoded. */
size_t uvws__path_len(const char *target, size_t len);

/* 1 if `path` (len bytes) is a route path a request target can carry as
 * it is, since routes are matched against the undecoded target: '/' then
 * RFC 3986 pchars and '/' (unreserved, sub-delims, ':', '@', and '%'
 * followed by two hex digits). No space, control, '?', '#' or byte from
 * 0x80 up (a client sends those percent-encoded). */
int uvws__path_route_ok(const char *path, size_t len);

/* Content-Type for a file name, by extension (case-insensitive). */
const char *uvws__mime_type(const char *name);

#endif

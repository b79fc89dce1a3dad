#include "proto/deflate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

/* ---- negotiation -------------------------------------------------------- */

typedef struct {
  const char *p;
  size_t n;
} span_t;

static int is_ws(char c) { return c == ' ' || c == '\t'; }

static span_t trim(const char *p, size_t n) {
  span_t s;
  while (n && is_ws(*p)) p++, n--;
  while (n && is_ws(p[n - 1])) n--;
  s.p = p;
  s.n = n;
  return s;
}

static int span_is(span_t s, const char *lit) {
  size_t n = strlen(lit);
  return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* Parses "8".."15" (optionally quoted, as RFC 7692 section 7.1 allows). */
static int parse_bits(span_t v) {
  int bits = 0;
  size_t i;
  if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"') {
    v.p++;
    v.n -= 2;
  }
  if (v.n == 0 || v.n > 2 || (v.n == 2 && v.p[0] == '0')) return -1;
  for (i = 0; i < v.n; i++) {
    if (v.p[i] < '0' || v.p[i] > '9') return -1;
    bits = bits * 10 + (v.p[i] - '0');
  }
  return (bits >= 8 && bits <= 15) ? bits : -1;
}

/* Length of the next comma-separated element, honouring quoted strings. */
static size_t element_len(const char *p, size_t n) {
  size_t i;
  int quoted = 0;
  for (i = 0; i < n; i++) {
    if (p[i] == '"') quoted = !quoted;
    else if (p[i] == ',' && !quoted) break;
  }
  return i;
}

/* One offer: "permessage-deflate; a; b=1". Returns 1 if accepted. */
static int consider_offer(const uvws__pmd_config_t *cfg, const char *p, size_t n,
                          uvws__pmd_params_t *out, char *resp, size_t resp_size) {
  int snct = 0, cnct = 0, smwb = -1, cmwb = -1; /* cmwb 0: present without value */
  int seen_snct = 0, seen_cnct = 0, seen_smwb = 0, seen_cmwb = 0;
  size_t i = 0, start;
  span_t name;
  int w;

  /* the extension name */
  while (i < n && p[i] != ';') i++;
  name = trim(p, i);
  if (!span_is(name, "permessage-deflate")) return 0;

  while (i < n) {
    span_t param, key, val = {NULL, 0};
    size_t eq;
    i++; /* ';' */
    start = i;
    while (i < n && p[i] != ';') i++;
    param = trim(p + start, i - start);
    if (param.n == 0) return 0;
    for (eq = 0; eq < param.n && param.p[eq] != '='; eq++) {
    }
    key = trim(param.p, eq);
    if (eq < param.n) val = trim(param.p + eq + 1, param.n - eq - 1);
    if (span_is(key, "server_no_context_takeover")) {
      if (seen_snct++ || val.p) return 0;
      snct = 1;
    } else if (span_is(key, "client_no_context_takeover")) {
      if (seen_cnct++ || val.p) return 0;
      cnct = 1;
    } else if (span_is(key, "server_max_window_bits")) {
      if (seen_smwb++ || !val.p || (smwb = parse_bits(val)) < 0) return 0;
    } else if (span_is(key, "client_max_window_bits")) {
      if (seen_cmwb++) return 0;
      if (val.p) {
        if ((cmwb = parse_bits(val)) < 0) return 0;
      } else {
        cmwb = 0;
      }
    } else {
      return 0; /* unknown parameter: decline this offer (section 7.1) */
    }
  }

  /* Our window: within the client's limit, never 8 (zlib cannot). */
  if (smwb == 8) return 0;
  out->server_bits = (uint8_t)(smwb > 0 && smwb < cfg->server_max_bits ? smwb : cfg->server_max_bits);
  out->server_no_takeover = (uint8_t)(snct || !cfg->server_takeover);
  out->client_no_takeover = (uint8_t)(cnct || !cfg->client_takeover);
  /* The client's window: we may only lower it if it said we may ask. */
  if (cmwb < 0) out->client_bits = 15;
  else out->client_bits = (uint8_t)(cmwb > 0 && cmwb < cfg->client_max_bits ? cmwb : cfg->client_max_bits);

  w = snprintf(resp, resp_size, "permessage-deflate%s%s", out->server_no_takeover ? "; server_no_context_takeover" : "",
               out->client_no_takeover ? "; client_no_context_takeover" : "");
  if (w < 0 || (size_t)w >= resp_size) return 0;
  if (smwb > 0 || out->server_bits < 15) {
    int k = snprintf(resp + w, resp_size - (size_t)w, "; server_max_window_bits=%d", out->server_bits);
    if (k < 0 || (size_t)k >= resp_size - (size_t)w) return 0;
    w += k;
  }
  if (cmwb >= 0) {
    int k = snprintf(resp + w, resp_size - (size_t)w, "; client_max_window_bits=%d", out->client_bits);
    if (k < 0 || (size_t)k >= resp_size - (size_t)w) return 0;
  }
  return 1;
}

int uvws__pmd_negotiate(const uvws__pmd_config_t *cfg, const char *offers, size_t len,
                        uvws__pmd_params_t *out, char *resp, size_t resp_size) {
  size_t i = 0;
  if (offers == NULL) return 0;
  while (i < len) {
    size_t n = element_len(offers + i, len - i);
    if (consider_offer(cfg, offers + i, n, out, resp, resp_size)) return 1;
    i += n + 1;
  }
  return 0;
}

/* ---- compression -------------------------------------------------------- */

int uvws__pmd_deflate_init(z_stream *z, int level, int bits, int mem_level) {
  memset(z, 0, sizeof(*z));
  /* Raw deflate (negative window bits): no zlib header or trailer. */
  return deflateInit2(z, level, Z_DEFLATED, -bits, mem_level, Z_DEFAULT_STRATEGY) == Z_OK ? 0 : UV_ENOMEM;
}

int uvws__pmd_deflate(z_stream *z, const void *in, size_t len, uvws__buf_t *out, int reset) {
  size_t start = out->len;
  int r;

  z->next_in = (Bytef *)(uintptr_t)in;
  z->avail_in = (uInt)len;
  do {
    size_t room = deflateBound(z, z->avail_in) + 16;
    if (uvws__buf_reserve(out, room) != 0) return UV_ENOMEM;
    z->next_out = (Bytef *)uvws__buf_tail(out);
    z->avail_out = (uInt)room;
    r = deflate(z, Z_SYNC_FLUSH);
    out->len += room - z->avail_out;
    if (r != Z_OK && r != Z_BUF_ERROR) return UV_EINVAL;
  } while (z->avail_out == 0 || z->avail_in > 0);
  /* Section 7.2.1: drop the empty stored block's 00 00 ff ff. */
  if (out->len - start >= 4 && memcmp(uvws__buf_data(out) + out->len - 4, "\x00\x00\xff\xff", 4) == 0)
    out->len -= 4;
  /* Nothing pending (an empty message after a flushed one, with context
   * takeover): zlib writes nothing, but the receiver will append the tail,
   * so send the stored block's header byte it completes (7.2.3.6). */
  if (out->len == start && uvws__buf_append(out, "", 1) != 0) return UV_ENOMEM;
  if (reset) deflateReset(z);
  return 0;
}

/* ---- decompression ------------------------------------------------------ */

#define INFLATE_CHUNK 16384
#define WINDOW_MAX 32768

int uvws__pmd_inflate_init(uvws__pmd_inflater_t *inf, int bits) {
  memset(inf, 0, sizeof(*inf));
  return inflateInit2(&inf->z, -bits) == Z_OK ? 0 : UV_ENOMEM;
}

void uvws__pmd_inflate_end(uvws__pmd_inflater_t *inf) { inflateEnd(&inf->z); }

/* After a BFINAL block zlib stops; the message (and, with context
 * takeover, the next ones) may go on, so start a new raw stream that
 * remembers the old window. */
static int restart_after_final(z_stream *z) {
  uint8_t dict[WINDOW_MAX];
  uInt n = sizeof(dict);
  if (inflateGetDictionary(z, dict, &n) != Z_OK) return UVWS__PMD_EDATA;
  if (inflateReset(z) != Z_OK) return UVWS__PMD_EDATA;
  if (n && inflateSetDictionary(z, dict, n) != Z_OK) return UVWS__PMD_EDATA;
  return 0;
}

/* `tail`: the input is the 00 00 ff ff we appended, which must decode to
 * an empty stored block and produce nothing. */
static int inflate_some(uvws__pmd_inflater_t *inf, const uint8_t *in, size_t len,
                        uvws__pmd_emit_cb emit, void *arg, int tail) {
  z_stream *z = &inf->z;
  uint8_t buf[INFLATE_CHUNK];

  z->next_in = (Bytef *)(uintptr_t)in;
  z->avail_in = (uInt)len;
  if (len) inf->after_final = 0;
  for (;;) {
    size_t produced;
    int r, e;
    z->next_out = buf;
    z->avail_out = sizeof(buf);
    r = inflate(z, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) return UVWS__PMD_EDATA;
    produced = sizeof(buf) - z->avail_out;
    if (produced) {
      if (tail) return UVWS__PMD_EDATA; /* the message stopped inside a block */
      if ((e = emit(arg, buf, produced)) != 0) return e;
    }
    if (r == Z_STREAM_END) {
      if ((e = restart_after_final(z)) != 0) return e;
      if (z->avail_in == 0) {
        inf->after_final = 1;
        return 0;
      }
      continue;
    }
    if (z->avail_in == 0 && z->avail_out != 0) return 0;
    if (r == Z_BUF_ERROR && produced == 0) return z->avail_in ? UVWS__PMD_EDATA : 0;
  }
}

int uvws__pmd_inflate(uvws__pmd_inflater_t *inf, const uint8_t *in, size_t len,
                      uvws__pmd_emit_cb emit, void *arg) {
  return inflate_some(inf, in, len, emit, arg, 0);
}

int uvws__pmd_inflate_finish(uvws__pmd_inflater_t *inf, uvws__pmd_emit_cb emit, void *arg,
                             int reset) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  int r = 0;
  /* A message that ended with its final block needs no tail (7.2.3.4);
   * nor does one that already ends on a block boundary because its sender
   * left the 00 00 ff ff in (bit 128 of data_type: zlib waits for a block
   * header; it is only set once a block has ended). */
  if (!inf->after_final && !(inf->z.data_type & 128)) {
    r = inflate_some(inf, tail, sizeof(tail), emit, arg, 1);
    /* zlib's data_type has bit 128 set when it waits for a block header:
     * anything else means the message ended inside a block. */
    if (r == 0 && !(inf->z.data_type & 128)) r = UVWS__PMD_EDATA;
  }
  inf->after_final = 0;
  if (r == 0 && reset) inflateReset(&inf->z);
  return r;
}

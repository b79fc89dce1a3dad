/* The uvws program: flags, logging, signals, and the server with its
 * routes. Uses the public header only. */
#include "main.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UVWS_DEFAULT_WEB_ROOT
#define UVWS_DEFAULT_WEB_ROOT "web"
#endif
#ifndef UVWS_DEFAULT_DOCS_ROOT
#define UVWS_DEFAULT_DOCS_ROOT "docs"
#endif

/* An installed binary finds its files beside it: <prefix>/bin/uvws uses
 * <prefix>/share/uvws/<name>. A binary in the build tree uses the source
 * tree's folders, compiled in. The result lives in `out`. */
static const char *data_dir(const char *name, const char *fallback, char *out, size_t size) {
  char exe[2048];
  size_t len = sizeof(exe);
  char *slash;
  int n;
  if (uv_exepath(exe, &len) != 0 || (slash = strrchr(exe, '/')) == NULL) return fallback;
  *slash = '\0';
  n = snprintf(out, size, "%s/../share/uvws/%s", exe, name);
  if (n < 0 || (size_t)n >= size || access(out, R_OK | X_OK) != 0) return fallback;
  return out;
}

static char web_buf[4096], docs_buf[4096];
static const char *default_web, *default_docs;

static unsigned default_threads(void) {
  unsigned n = uv_available_parallelism();
  return n < 1 ? 1 : n > 64 ? 64 : n;
}

static void usage(FILE *f) {
  uvws_options_t d;
  uvws_options_init(&d);
  fprintf(f,
          "Usage: uvws [options]\n"
          "An asynchronous WebSocket and HTTP/1.1 server on libuv.\n"
          "\n"
          "Routes: /echo     WebSocket echo (subprotocols echo, uvws-echo)\n"
          "        /inspect  echo that also reports every frame as JSON\n"
          "        /chat     chat rooms (JSON protocol, see the README)\n"
          "        /broadcast every message to every client of the route\n"
          "        anything else: a static file from --web\n"
          "\n"
          "Options:\n"
          "  --host ADDR           listen address, IPv4, IPv6 or a name; localhost means\n"
          "                        both 127.0.0.1 and ::1 (default %s)\n"
          "  --port N              TCP port, 0 for any free one (default %d)\n"
          "  --web DIR             static files to serve (default %s)\n"
          "  --docs DIR            the guide, served at /docs/ (default %s;\n"
          "                        'off' serves none)\n"
          "  --max-message BYTES   largest WebSocket message accepted; larger ones\n"
          "                        are closed with 1009; K, M, G suffixes (default 16M)\n"
          "  --max-header-bytes BYTES\n"
          "                        request line and headers; more gets 431 (default %zu)\n"
          "  --chat-history N      messages /chat keeps per room for newcomers (default 50)\n"
          "  --chat-presence-ttl SECONDS\n"
          "                        with --redis: an instance's heartbeat lasts this long;\n"
          "                        the members of one that dies leave everywhere within\n"
          "                        SECONDS * 4/3 (default 7, at least 2)\n"
          "  --max-frame BYTES     largest frame payload, 1009 beyond (default: --max-message)\n"
          "  --max-backpressure BYTES\n"
          "                        a WebSocket whose send queue would pass this is\n"
          "                        closed with 1013 (default 16M; 0: no limit);\n"
          "                        /chat and /broadcast drop messages at 1M instead\n"
          "  --handshake-timeout T a whole HTTP request, the upgrade included, must\n"
          "                        arrive within T (default %us); 408 otherwise\n"
          "  --idle-timeout T      close (1001) a WebSocket that sent no message for T\n"
          "                        (default 0: never)\n"
          "  --ping-interval T     ping a WebSocket that was quiet for T (default %us,\n"
          "                        0: never)\n"
          "  --ping-timeout T      drop a WebSocket (1006) with no pong or data within T\n"
          "                        of a ping (default %us)\n"
          "  --shutdown-drain T    on SIGINT/SIGTERM, first keep serving for T with\n"
          "                        /healthz answering 503, so load balancers move\n"
          "                        new clients away (default 0)\n"
          "  --shutdown-timeout T  on SIGINT/SIGTERM, wait at most T for closing\n"
          "                        handshakes (default %us)\n"
          "  --max-connections N   more get 503 (default 0: no limit)\n"
          "  --max-connections-per-ip N\n"
          "                        more from one address get 429 (default 0: no limit)\n"
          "  --allow-origin LIST   comma-separated Origins that may open WebSockets\n"
          "                        (e.g. https://example.com); others get 403; requests\n"
          "                        without Origin pass (default: any)\n"
          "  --trusted-proxy LIST  comma-separated proxy addresses whose X-Forwarded-For\n"
          "                        or Forwarded header names the client, for logs and\n"
          "                        per-IP limits (default: none; the headers are ignored)\n"
          "  --metrics on|off      serve /metrics (Prometheus), /healthz and /routes.json\n"
          "                        (default on)\n"
          "  --log-format text|json\n"
          "                        access and session log lines (default text)\n"
          "  --tls-cert FILE       PEM certificate chain: serve https:// and wss:// too\n"
          "  --tls-key FILE        PEM private key for --tls-cert\n"
          "  --tls-self-signed     generate a key and certificate in memory (development)\n"
          "  --tls-port N          TLS port (default %d); 0 for any free one\n"
          "  --tls-only            no plain HTTP listener\n"
          "  --deflate on|off      accept permessage-deflate offers (default on)\n"
          "  --deflate-level N     zlib compression level 1-9 (default %d)\n"
          "  --deflate-window-bits N\n"
          "                        our LZ77 window, 9-15 (default %d)\n"
          "  --deflate-mem-level N zlib memLevel 1-9 (default %d)\n"
          "  --deflate-min-size BYTES\n"
          "                        send shorter messages uncompressed (default %zu)\n"
          "  --deflate-takeover on|off\n"
          "                        keep our compression context between messages:\n"
          "                        better ratio, one deflater per connection (default off:\n"
          "                        one shared deflater, ~no memory per connection)\n"
          "  --threads N           event loops, one per thread, all accepting on the\n"
          "                        same port (SO_REUSEPORT) (default: one per core\n"
          "                        this process may use)\n"
          "  --redis URL           redis://[[USER]:PASSWORD@]HOST[:PORT]: /chat rooms\n"
          "                        and every topic span all uvws instances on that\n"
          "                        Redis (default: none)\n"
          "  --log-level LEVEL     error, warn, info or debug (default info)\n"
          "\n"
          "Programs as WebSocket backends (README, \"Your backend in any language\"):\n"
          "  --exec PATH=COMMAND   each WebSocket on PATH runs COMMAND (split into words\n"
          "                        like a shell, quotes and backslashes, but no shell and\n"
          "                        no expansion): each text message is a line on its\n"
          "                        stdin (a message holding a newline is refused, 1003),\n"
          "                        each stdout line a text message; repeatable\n"
          "  --exec-binary PATH=COMMAND\n"
          "                        the same with raw bytes both ways, unframed\n"
          "  --exec-shared PATH=COMMAND\n"
          "                        one COMMAND for every client of PATH, on every\n"
          "                        thread (and instance, with --redis): a message is\n"
          "                        \"ID<TAB>TEXT\" on its stdin; a stdout line goes to\n"
          "                        every client, \"@ID<TAB>TEXT\" to that one alone;\n"
          "                        restarted with backoff when it ends\n"
          "  --exec-dir DIR        every executable file in DIR is a --exec route at\n"
          "                        /NAME (no dot files, symlinks only inside DIR)\n"
          "  --exec-max-procs N    programs running at once; more upgrades get 503\n"
          "                        with Retry-After (default 256)\n"
          "  --exec-close-timeout T\n"
          "                        after a WebSocket closes, the program's stdin is\n"
          "                        closed; SIGTERM after T, SIGKILL after T more\n"
          "                        (default 1s)\n"
          "  --exec-stderr log|discard|client\n"
          "                        the programs' stderr lines: logged (default),\n"
          "                        dropped, or logged and sent as \"stderr: LINE\"\n"
          "  --exec-passenv LIST   comma-separated variables of uvws's environment the\n"
          "                        programs get (besides PATH and the CGI ones)\n"
          "  --exec-protocol PATH=NAME[,NAME...]\n"
          "                        the subprotocols the exec route at PATH (any of the\n"
          "                        four kinds) speaks: the first name of the client's\n"
          "                        offer that is in the list wins (the client's order),\n"
          "                        the 101 names it and the program gets it as\n"
          "                        UVWS_PROTOCOL; no match: no protocol, no variable;\n"
          "                        repeatable, once per PATH\n"
          "\n"
          "Durations T: 10 (seconds), 10s, 500ms or 2m.\n"
          "  --help                show this help and exit\n"
          "  --version             show the version and exit\n"
          "\n"
          "Signals: SIGINT or SIGTERM closes every WebSocket with 1001 and exits 0;\n"
          "a second one exits at once. SIGHUP reloads --tls-cert and --tls-key\n"
          "(open connections keep the old certificate; a bad file keeps the old one).\n",
          d.host, d.port, default_web, default_docs, d.max_header_bytes, d.handshake_timeout_ms / 1000,
          d.ping_interval_ms / 1000, d.ping_timeout_ms / 1000, d.shutdown_timeout_ms / 1000,
          d.tls_port, d.deflate_level,
          d.deflate_window_bits, d.deflate_mem_level, d.deflate_min_size);
}

/* "123", "64K", "16M", "1G" (binary units). */
int main_parse_size(const char *s, size_t *out) {
  char *end;
  unsigned long long v, mult = 1;
  if (*s == '-' || *s == '\0') return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  if (*end) {
    switch (*end) {
      case 'k': case 'K': mult = 1024ull; break;
      case 'm': case 'M': mult = 1024ull * 1024; break;
      case 'g': case 'G': mult = 1024ull * 1024 * 1024; break;
      default: return -1;
    }
    if (end[1] != '\0') return -1;
  }
  if (v > (unsigned long long)SIZE_MAX / mult) return -1;
  *out = (size_t)(v * mult);
  return 0;
}

static int parse_onoff(const char *s, int *out) {
  if (strcmp(s, "on") == 0) *out = 1;
  else if (strcmp(s, "off") == 0) *out = 0;
  else return -1;
  return 0;
}

int main_parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* "10" or "10s" (seconds), "500ms", "2m"; at most a day. */
int main_parse_duration(const char *s, unsigned *ms) {
  char *end;
  unsigned long long v, mult = 1000;
  if (*s == '-' || *s == '\0') return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  if (strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "m") == 0) mult = 60000;
  else if (*end != '\0' && strcmp(end, "s") != 0) return -1;
  if (v > 86400000ull / mult) return -1;
  *ms = (unsigned)(v * mult);
  return 0;
}

int main_bad(const char *flag, const char *value, const char *why) {
  fprintf(stderr, "uvws: invalid value '%s' for %s: %s\nTry 'uvws --help'.\n", value, flag, why);
  return 2;
}

typedef struct {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
  uvws_server_t *srv;
  uvws_exec_t *exec;
  unsigned shutdown_budget_ms; /* drain + shutdown timeout */
  int signals;
} program_t;

static void on_server_done(uvws_server_t *srv) {
  program_t *p = uvws_server_get_data(srv);
  uv_close((uv_handle_t *)&p->sigint, NULL);
  uv_close((uv_handle_t *)&p->sigterm, NULL);
  uv_close((uv_handle_t *)&p->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  program_t *p = h->data;
  if (signum == SIGHUP) {
    if (uvws_server_tls_fingerprint(p->srv)) uvws_server_tls_reload(p->srv);
    return;
  }
  if (++p->signals > 1) {
    fprintf(stderr, "uvws: second signal, exiting now\n");
    _Exit(1);
  }
  fprintf(stderr, "uvws: %s received, shutting down\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
  uvws_exec_shutdown(p->exec, &p->loop, p->shutdown_budget_ms);
  uvws_server_shutdown(p->srv, on_server_done);
}


static const struct option longopts[] = {
    {"host", required_argument, NULL, 'h'},
    {"port", required_argument, NULL, 'p'},
    {"web", required_argument, NULL, 'w'},
    {"docs", required_argument, NULL, 'D'},
    {"max-message", required_argument, NULL, 'm'},
    {"max-header-bytes", required_argument, NULL, 'H'},
    {"log-level", required_argument, NULL, 'l'},
    {"max-frame", required_argument, NULL, 'F'},
    {"chat-history", required_argument, NULL, 'C'},
    {"chat-presence-ttl", required_argument, NULL, 'C' + 256},
    {"max-backpressure", required_argument, NULL, 'B'},
    {"handshake-timeout", required_argument, NULL, 't'},
    {"idle-timeout", required_argument, NULL, 't' + 256},
    {"ping-interval", required_argument, NULL, 't' + 512},
    {"ping-timeout", required_argument, NULL, 't' + 768},
    {"shutdown-timeout", required_argument, NULL, 't' + 1024},
    {"shutdown-drain", required_argument, NULL, 't' + 1280},
    {"max-connections", required_argument, NULL, 'c'},
    {"max-connections-per-ip", required_argument, NULL, 'c' + 256},
    {"allow-origin", required_argument, NULL, 'o'},
    {"metrics", required_argument, NULL, 'M'},
    {"trusted-proxy", required_argument, NULL, 'P'},
    {"log-format", required_argument, NULL, 'L'},
    {"tls-cert", required_argument, NULL, 'T'},
    {"tls-key", required_argument, NULL, 'T' + 256},
    {"tls-self-signed", no_argument, NULL, 'T' + 512},
    {"tls-port", required_argument, NULL, 'T' + 768},
    {"tls-only", no_argument, NULL, 'T' + 1024},
    {"deflate", required_argument, NULL, 'd'},
    {"deflate-level", required_argument, NULL, 'd' + 256},
    {"deflate-window-bits", required_argument, NULL, 'd' + 512},
    {"deflate-mem-level", required_argument, NULL, 'd' + 768},
    {"deflate-min-size", required_argument, NULL, 'd' + 1024},
    {"deflate-takeover", required_argument, NULL, 'd' + 1280},
    {"threads", required_argument, NULL, 'n'},
    {"redis", required_argument, NULL, 'R'},
    {"exec", required_argument, NULL, 'x'},
    {"exec-binary", required_argument, NULL, 'x' + 256},
    {"exec-shared", required_argument, NULL, 'x' + 1792},
    {"exec-dir", required_argument, NULL, 'x' + 1536},
    {"exec-max-procs", required_argument, NULL, 'x' + 512},
    {"exec-close-timeout", required_argument, NULL, 'x' + 768},
    {"exec-stderr", required_argument, NULL, 'x' + 1024},
    {"exec-passenv", required_argument, NULL, 'x' + 1280},
    {"exec-protocol", required_argument, NULL, 'x' + 2048},
    {"help", no_argument, NULL, '?' + 256},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

/* Everything the command line says, before anything starts. */
typedef struct {
  uvws_options_t opts;
  uvws_log_level_t level;
  const char *docs; /* NULL: no guide */
  int docs_given;
  size_t chat_history;
  unsigned presence_ttl; /* 4/3 of it is the bound: at most 10 s, as a chat promises */
  main_exec_flags_t ex;
} config_t;

/* parse_args: the command line asked for --help or --version, answered. */
#define ANSWERED (-1)
/* A flag group's answer for a code that is not its own. */
#define NOT_MINE (-2)

static void config_init(config_t *cf) {
  memset(cf, 0, sizeof(*cf));
  uvws_options_init(&cf->opts);
  main_exec_flags_init(&cf->ex);
  cf->level = UVWS_LOG_INFO;
  cf->chat_history = 50;
  cf->presence_ttl = 7;
  cf->opts.threads = default_threads();
  default_web = data_dir("web", UVWS_DEFAULT_WEB_ROOT, web_buf, sizeof(web_buf));
  default_docs = data_dir("docs", UVWS_DEFAULT_DOCS_ROOT, docs_buf, sizeof(docs_buf));
  cf->docs = default_docs;
  cf->opts.web_root = default_web;
}

/* Every --trusted-proxy entry must be an address: a typo would silently
 * trust nobody. */
static int trusted_proxy_flag(const char *arg) {
  char copy[1024], *tok, *save = NULL;
  unsigned char buf[16];
  snprintf(copy, sizeof(copy), "%s", arg);
  for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    size_t n = strlen(tok);
    if (n > 2 && tok[0] == '[' && tok[n - 1] == ']') tok[n - 1] = '\0', tok++;
    if (uv_inet_pton(AF_INET, tok, buf) != 0 && uv_inet_pton(AF_INET6, tok, buf) != 0)
      return main_bad("--trusted-proxy", arg, "expected comma-separated IP addresses");
  }
  return 0;
}

/* Where to listen, what to serve, the routes' own settings. */
static int serving_flag(config_t *cf, int c, const char *arg) {
  uvws_options_t *o = &cf->opts;
  int v;
  switch (c) {
    case 'h': o->host = arg; return 0;
    case 'p':
      return main_parse_int(arg, 0, 65535, &o->port) != 0 ? main_bad("--port", arg, "expected 0 to 65535") : 0;
    case 'w': o->web_root = arg; return 0;
    case 'n':
      if (main_parse_int(arg, 1, 64, &v) != 0) return main_bad("--threads", arg, "expected 1 to 64");
      o->threads = (unsigned)v;
      return 0;
    case 'R':
      if (strncmp(arg, "redis://", 8) != 0 || arg[8] == '\0')
        return main_bad("--redis", arg, "expected redis://[[USER]:PASSWORD@]HOST[:PORT]");
      o->redis = arg;
      return 0;
    case 'D':
      cf->docs = strcmp(arg, "off") == 0 ? NULL : arg;
      cf->docs_given = 1;
      return 0;
    case 'C':
      if (main_parse_int(arg, 0, 100000, &v) != 0)
        return main_bad("--chat-history", arg, "expected 0 to 100000 messages");
      cf->chat_history = (size_t)v;
      return 0;
    case 'C' + 256:
      if (main_parse_int(arg, 2, 86400, &v) != 0)
        return main_bad("--chat-presence-ttl", arg, "expected 2 to 86400 seconds");
      cf->presence_ttl = (unsigned)v;
      return 0;
    case 'o': o->allow_origin = arg; return 0;
    case 'P':
      if ((v = trusted_proxy_flag(arg)) != 0) return v;
      o->trusted_proxies = arg;
      return 0;
    case 'M': return parse_onoff(arg, &o->metrics) != 0 ? main_bad("--metrics", arg, "expected on or off") : 0;
    case 'L':
      if (strcmp(arg, "json") == 0) o->log_json = 1;
      else if (strcmp(arg, "text") == 0) o->log_json = 0;
      else return main_bad("--log-format", arg, "expected text or json");
      return 0;
    case 'l':
      if (uvws_log_level_parse(arg, &cf->level) != 0)
        return main_bad("--log-level", arg, "expected error, warn, info or debug");
      return 0;
    default: return NOT_MINE;
  }
}

/* Sizes, counts and durations that bound what a client may cost. */
static int limit_flag(uvws_options_t *o, int c, const char *arg) {
  int v;
  switch (c) {
    case 'm':
      if (main_parse_size(arg, &o->max_message) != 0 || o->max_message == 0)
        return main_bad("--max-message", arg, "expected a size such as 65536, 64K or 16M");
      return 0;
    case 'H':
      if (main_parse_size(arg, &o->max_header_bytes) != 0 || o->max_header_bytes < 256)
        return main_bad("--max-header-bytes", arg, "expected a size of at least 256");
      return 0;
    case 'B':
      if (main_parse_size(arg, &o->max_backpressure) != 0)
        return main_bad("--max-backpressure", arg, "expected a size such as 16M, or 0");
      return 0;
    case 'F':
      if (main_parse_size(arg, &o->max_frame) != 0 || o->max_frame == 0)
        return main_bad("--max-frame", arg, "expected a size such as 65536 or 1M");
      return 0;
    case 't':
      if (main_parse_duration(arg, &o->handshake_timeout_ms) != 0 || o->handshake_timeout_ms == 0)
        return main_bad("--handshake-timeout", arg, "expected a duration such as 10s or 500ms");
      return 0;
    case 't' + 256:
      if (main_parse_duration(arg, &o->idle_timeout_ms) != 0)
        return main_bad("--idle-timeout", arg, "expected a duration such as 300s, or 0");
      return 0;
    case 't' + 512:
      if (main_parse_duration(arg, &o->ping_interval_ms) != 0)
        return main_bad("--ping-interval", arg, "expected a duration such as 30s, or 0");
      return 0;
    case 't' + 768:
      if (main_parse_duration(arg, &o->ping_timeout_ms) != 0 || o->ping_timeout_ms == 0)
        return main_bad("--ping-timeout", arg, "expected a duration such as 10s");
      return 0;
    case 't' + 1024:
      if (main_parse_duration(arg, &o->shutdown_timeout_ms) != 0)
        return main_bad("--shutdown-timeout", arg, "expected a duration such as 5s");
      return 0;
    case 't' + 1280:
      if (main_parse_duration(arg, &o->shutdown_drain_ms) != 0)
        return main_bad("--shutdown-drain", arg, "expected a duration such as 10s");
      return 0;
    case 'c':
    case 'c' + 256:
      if (main_parse_int(arg, 0, 10000000, &v) != 0)
        return main_bad(c == 'c' ? "--max-connections" : "--max-connections-per-ip", arg,
                        "expected a count, 0 for no limit");
      if (c == 'c') o->max_connections = (unsigned)v;
      else o->max_connections_per_ip = (unsigned)v;
      return 0;
    default: return NOT_MINE;
  }
}

/* TLS and permessage-deflate. */
static int wire_flag(uvws_options_t *o, int c, const char *arg) {
  switch (c) {
    case 'T': o->tls_cert = arg; return 0;
    case 'T' + 256: o->tls_key = arg; return 0;
    case 'T' + 512: o->tls_self_signed = 1; return 0;
    case 'T' + 768:
      return main_parse_int(arg, 0, 65535, &o->tls_port) != 0 ? main_bad("--tls-port", arg, "expected 0 to 65535")
                                                               : 0;
    case 'T' + 1024: o->tls_only = 1; return 0;
    case 'd': return parse_onoff(arg, &o->deflate) != 0 ? main_bad("--deflate", arg, "expected on or off") : 0;
    case 'd' + 256:
      return main_parse_int(arg, 1, 9, &o->deflate_level) != 0 ? main_bad("--deflate-level", arg, "expected 1 to 9")
                                                                : 0;
    case 'd' + 512:
      if (main_parse_int(arg, 9, 15, &o->deflate_window_bits) != 0)
        return main_bad("--deflate-window-bits", arg, "expected 9 to 15 (zlib cannot deflate with 8)");
      return 0;
    case 'd' + 768:
      if (main_parse_int(arg, 1, 9, &o->deflate_mem_level) != 0)
        return main_bad("--deflate-mem-level", arg, "expected 1 to 9");
      return 0;
    case 'd' + 1024:
      if (main_parse_size(arg, &o->deflate_min_size) != 0)
        return main_bad("--deflate-min-size", arg, "expected a size such as 64 or 1K");
      return 0;
    case 'd' + 1280:
      if (parse_onoff(arg, &o->deflate_takeover) != 0) return main_bad("--deflate-takeover", arg, "expected on or off");
      return 0;
    default: return NOT_MINE;
  }
}

/* Flags that only make sense together. 0, or 2 having said why. */
static int check_combinations(const uvws_options_t *o) {
  if (!o->tls_cert != !o->tls_key) {
    fprintf(stderr, "uvws: --tls-cert and --tls-key go together\nTry 'uvws --help'.\n");
    return 2;
  }
  if (o->tls_cert && o->tls_self_signed) {
    fprintf(stderr, "uvws: --tls-self-signed replaces --tls-cert/--tls-key; give one or the other\n");
    return 2;
  }
  if (o->tls_only && !o->tls_cert && !o->tls_self_signed) {
    fprintf(stderr, "uvws: --tls-only needs --tls-cert and --tls-key, or --tls-self-signed\n");
    return 2;
  }
  return 0;
}

/* 0 to go on, ANSWERED (--help, --version), or the exit status. */
static int parse_args(config_t *cf, int argc, char **argv) {
  int c, r;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == '?' + 256) {
      usage(stdout);
      return ANSWERED;
    }
    if (c == 'V') {
      printf("uvws %s (libuv %s)\n", uvws_version(), uv_version_string());
      return ANSWERED;
    }
    if (MAIN_EXEC_FLAG(c)) r = main_exec_flag(c, optarg, &cf->ex);
    else if (c == '?') r = NOT_MINE;
    else if ((r = serving_flag(cf, c, optarg)) == NOT_MINE && (r = limit_flag(&cf->opts, c, optarg)) == NOT_MINE)
      r = wire_flag(&cf->opts, c, optarg);
    if (r == NOT_MINE) {
      if (optopt) fprintf(stderr, "uvws: option '%s' needs a value or takes none\n", argv[optind - 1]);
      else fprintf(stderr, "uvws: unknown option '%s'\n", argv[optind - 1]);
      fprintf(stderr, "Try 'uvws --help'.\n");
      return 2;
    }
    if (r != 0) return r;
  }
  if ((r = check_combinations(&cf->opts)) != 0) return r;
  if (optind < argc) {
    fprintf(stderr, "uvws: unexpected argument '%s'\nTry 'uvws --help'.\n", argv[optind]);
    return 2;
  }
  return 0;
}

/* The bundled routes, the guide and the exec routes. 0, or the exit
 * status, having said why. */
static int add_routes(program_t *p, config_t *cf, void **chat) {
  const char *docs = cf->docs;
  int r;
  /* The default guide folder is optional (a trimmed install may lack it);
   * one named on the command line must exist. */
  if (docs && !cf->docs_given && access(docs, R_OK | X_OK) != 0) docs = NULL;
  if ((docs && (r = uvws_server_mount(p->srv, "/docs", docs)) != 0) ||
      (r = uvws_app_echo(p->srv, "/echo")) != 0 || (r = uvws_app_inspect(p->srv, "/inspect")) != 0 ||
      (r = uvws_app_broadcast(p->srv, "/broadcast")) != 0 ||
      (r = uvws_app_chat(p->srv, "/chat", cf->chat_history, cf->presence_ttl, chat)) != 0) {
    fprintf(stderr, "uvws: adding routes: %s\n", uvws_strerror(r));
    return 1;
  }
  /* a line is a message */
  return main_exec_routes(p->srv, &cf->ex, cf->opts.max_message, &p->exec);
}

static void start_signals(program_t *p) {
  uv_signal_init(&p->loop, &p->sigint);
  uv_signal_init(&p->loop, &p->sigterm);
  uv_signal_init(&p->loop, &p->sighup);
  p->sigint.data = p->sigterm.data = p->sighup.data = p;
  uv_signal_start(&p->sigint, on_signal, SIGINT);
  uv_signal_start(&p->sigterm, on_signal, SIGTERM);
  uv_signal_start(&p->sighup, on_signal, SIGHUP);
}

/* The server, its routes and signals, until it has shut down: the exit
 * status. */
static int serve(config_t *cf) {
  program_t prog;
  void *chat = NULL;
  int r;
  uvws_log_set_level(cf->level);
  /* A peer that resets mid-write must cost an error code, not the process. */
  signal(SIGPIPE, SIG_IGN);
  memset(&prog, 0, sizeof(prog));
  if ((r = uv_loop_init(&prog.loop)) != 0 || (r = uvws_server_new(&prog.srv, &prog.loop, &cf->opts)) != 0) {
    fprintf(stderr, "uvws: %s\n", uvws_strerror(r));
    return 1;
  }
  uvws_server_set_data(prog.srv, &prog);
  if ((r = add_routes(&prog, cf, &chat)) != 0) {
    /* nothing started: freed here so that a refused command line leaks
     * nothing (LeakSanitizer would make it exit 23 instead of r) */
    uvws_server_free(prog.srv);
    uvws_app_chat_free(chat);
    uvws_exec_free(prog.exec);
    uv_loop_close(&prog.loop);
    return r;
  }
  prog.shutdown_budget_ms = cf->opts.shutdown_drain_ms + cf->opts.shutdown_timeout_ms;
  start_signals(&prog);

  r = uvws_server_start(prog.srv);
  if (r == 0 && prog.exec) r = uvws_exec_shared_start(prog.exec, prog.srv);
  if (r != 0) {
    fprintf(stderr, "uvws: cannot start: %s\n", uvws_strerror(r));
    uvws_server_shutdown(prog.srv, on_server_done);
  }
  uv_run(&prog.loop, UV_RUN_DEFAULT);
  uvws_server_free(prog.srv);
  uvws_app_chat_free(chat);
  uvws_exec_free(prog.exec);
  if (uv_loop_close(&prog.loop) != 0) fprintf(stderr, "uvws: handles left open at exit\n");
  return r == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  config_t cf;
  int r;
  config_init(&cf);
  if ((r = parse_args(&cf, argc, argv)) != 0) return r == ANSWERED ? 0 : r;
  return serve(&cf);
}

/* wsload: a WebSocket load generator on libuv, for bench/compare.
 *
 * N client connections spread over T threads (one uv loop each). Modes:
 *   echo       each connection keeps K messages in flight against an echo
 *              route; reports messages/s and round-trip latency percentiles.
 *   broadcast  N subscribers on --url and one publisher on --pub-url; the
 *              publisher sends timestamped messages (at most K whose
 *              deliveries are not all in), the subscribers measure delivery
 *              latency; reports deliveries/s.
 *   idle       opens N connections and holds them (for the server's memory
 *              per connection); prints "READY n" once they are all open.
 * Loopback only; every run is bounded in time. See bench/README.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "wsutil.h"

enum { MODE_ECHO, MODE_BROADCAST, MODE_IDLE };
enum { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DEAD, ST_CLOSED };
enum { PH_CONNECT, PH_RUN, PH_STOP };

#define BCAST_HDR 34 /* "%016x %016x " : sequence number, send time (ns) */
#define MAX_FRAME ((uint64_t)256 << 20)

/* ---- options -------------------------------------------------------------- */

static struct {
  char host[256];
  int port;
  char path[1024];
  char pub_path[1024];
  int pub_port;
  char pub_host[256];
  int connections;
  int inflight;
  double rate; /* broadcast: publications per second, 0 = as fast as deliveries allow */
  size_t size;
  int binary;
  double duration;
  double warmup;
  int threads;
  int mode;
  int json;
  int sources;
  int allow_masked;
  int connect_concurrency;
  double connect_timeout;
  int verify;
} opt;

/* ---- shared state ---------------------------------------------------------- */

static _Atomic int g_phase = PH_CONNECT;
static _Atomic uint64_t g_t_measure; /* uv_hrtime() ns */
static _Atomic uint64_t g_t_end;
static _Atomic int g_ready_workers;
static _Atomic uint64_t g_deliveries; /* broadcast: every delivery, any time */
static int g_nsubs = 1;               /* broadcast: subscribers open at start */
static uint8_t *g_payload;            /* echo: the message every connection sends */
static struct sockaddr_in g_addr, g_pub_addr;
static volatile sig_atomic_t g_signalled;

/* ---- histogram: log-linear, 1024 sub-buckets per octave (0.1 %) over ns ---- */

#define H_SUB 1024
#define H_OCT 32
#define H_N (H_SUB + H_OCT * H_SUB)

typedef struct {
  uint64_t *b;
  uint64_t n, max;
  double sum;
} hist_t;

static int h_index(uint64_t v) {
  if (v < H_SUB) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - 10;
  if (shift >= H_OCT) return H_N - 1;
  return H_SUB + shift * H_SUB + (int)((v >> shift) - H_SUB);
}

static double h_value(int i) { /* middle of the bucket */
  if (i < H_SUB) return i;
  int shift = (i - H_SUB) / H_SUB;
  uint64_t m = (uint64_t)((i - H_SUB) % H_SUB) + H_SUB;
  return (double)(m << shift) + (double)((1ull << shift) - 1) / 2.0;
}

static void h_add(hist_t *h, uint64_t v) {
  h->b[h_index(v)]++;
  h->n++;
  h->sum += (double)v;
  if (v > h->max) h->max = v;
}

static double h_pct(const hist_t *h, double q) {
  if (!h->n) return 0;
  uint64_t want = (uint64_t)ceil(q * (double)h->n);
  if (want < 1) want = 1;
  uint64_t acc = 0;
  for (int i = 0; i < H_N; i++) {
    acc += h->b[i];
    if (acc >= want) {
      double v = h_value(i);
      return v > (double)h->max ? (double)h->max : v;
    }
  }
  return (double)h->max;
}

/* ---- connections and workers ------------------------------------------------ */

typedef struct worker worker_t;

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  worker_t *w;
  int idx;
  int state;
  int is_pub;
  int counted; /* ready accounting done */
  char key[32];
  uint8_t *rx;
  size_t rx_len, rx_cap, rx_need;
  uint8_t *out;
  size_t out_len, out_cap;
  uint64_t *fifo; /* echo: send times of the messages in flight */
  unsigned fifo_head, fifo_n;
  int in_msg, msg_op, msg_bad;
  uint64_t msg_len;
  uint8_t hdr[BCAST_HDR];
  uint32_t rng;
} conn_t;

typedef struct {
  uv_write_t req;
  char data[];
} wreq_t;

struct worker {
  int id;
  uv_loop_t loop;
  uv_thread_t thread;
  uv_timer_t tick;
  uv_async_t async;
  conn_t **conns;
  int nconns;
  int next_connect, pending;
  int ninited, nclosed;
  _Atomic int nopen;
  int nfailed;
  int reported_ready;
  int started, stopping, finished;
  uint64_t close_deadline;
  hist_t hist;
  uint64_t msgs, bytes;   /* received in the window */
  uint64_t sent_window;   /* sent (published) in the window */
  uint64_t sent_total, recv_total;
  uint64_t err_connect, err_handshake, err_protocol, err_closed, err_write;
  int last_close_code;
  /* broadcast publisher (worker 0 only) */
  conn_t *pub;
  uint64_t published, pub_extra, pub_last_completed, pub_last_progress;
  uint64_t pub_t0;        /* --rate: when publishing began */
};

static worker_t *g_workers;

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x ? x : 0x9E3779B9u;
}

static uint64_t now_ns(void) { return uv_hrtime(); }

static void conn_close(conn_t *c);
static void flush(conn_t *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "wsload: out of memory\n");
    exit(1);
  }
  return q;
}

static uint8_t *out_reserve(conn_t *c, size_t n) {
  if (c->out_cap - c->out_len < n) {
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap - c->out_len < n) cap *= 2;
    c->out = xrealloc(c->out, cap);
    c->out_cap = cap;
  }
  uint8_t *p = c->out + c->out_len;
  c->out_len += n;
  return p;
}

/* Appends one masked frame (client to server, RFC 6455 5.3). */
static void put_frame(conn_t *c, int op, const uint8_t *data, size_t len) {
  size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  uint8_t *p = out_reserve(c, hl + 4 + len);
  p[0] = (uint8_t)(0x80 | op);
  if (len < 126) {
    p[1] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[1] = 0x80 | 126;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
  } else {
    p[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  uint32_t m = xorshift(&c->rng);
  uint8_t mk[4];
  memcpy(mk, &m, 4);
  memcpy(p + hl, mk, 4);
  uint8_t *d = p + hl + 4;
  uint64_t m64;
  uint8_t mk8[8] = {mk[0], mk[1], mk[2], mk[3], mk[0], mk[1], mk[2], mk[3]};
  memcpy(&m64, mk8, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, data + i, 8);
    v ^= m64;
    memcpy(d + i, &v, 8);
  }
  for (; i < len; i++) d[i] = data[i] ^ mk[i & 3];
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0 && status != UV_ECANCELED && c->state == ST_OPEN) c->w->err_write++;
  free(req);
}

static void flush(conn_t *c) {
  if (!c->out_len) return;
  if (uv_is_closing((uv_handle_t *)&c->tcp)) {
    c->out_len = 0;
    return;
  }
  uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  size_t done = r > 0 ? (size_t)r : 0;
  if (r < 0 && r != UV_EAGAIN) {
    if (c->state == ST_OPEN) c->w->err_write++;
    c->out_len = 0;
    conn_close(c);
    return;
  }
  if (done < c->out_len) {
    size_t rest = c->out_len - done;
    wreq_t *wr = malloc(sizeof *wr + rest);
    if (!wr) exit(1);
    memcpy(wr->data, c->out + done, rest);
    wr->req.data = c;
    uv_buf_t wb = uv_buf_init(wr->data, (unsigned)rest);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write) != 0) {
      free(wr);
      c->w->err_write++;
    }
  }
  c->out_len = 0;
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  c->state = ST_CLOSED;
  c->w->nclosed++;
}

static void count_done(conn_t *c, int ok);

static void conn_close(conn_t *c) {
  if (c->state == ST_OPEN || c->state == ST_CLOSING) atomic_fetch_sub(&c->w->nopen, 1);
  if (c->state > ST_NEW && c->state < ST_OPEN) count_done(c, 0);
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (c->state < ST_DEAD) c->state = ST_DEAD;
}

/* ---- connecting ------------------------------------------------------------ */

static void start_connects(worker_t *w);

static void check_ready(worker_t *w) {
  if (!w->reported_ready && w->next_connect == w->nconns && w->pending == 0) {
    w->reported_ready = 1;
    atomic_fetch_add(&g_ready_workers, 1);
  }
}

static void count_done(conn_t *c, int ok) {
  if (c->counted) return;
  c->counted = 1;
  worker_t *w = c->w;
  w->pending--;
  if (ok)
    atomic_fetch_add(&w->nopen, 1);
  else
    w->nfailed++;
  if (atomic_load(&g_phase) == PH_CONNECT) start_connects(w);
  check_ready(w);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  size_t want = c->rx_len + 4096;
  if (c->rx_need > want) want = c->rx_need;
  if (c->rx_cap < want) {
    size_t cap = c->rx_cap ? c->rx_cap : 4096;
    while (cap < want) cap *= 2;
    c->rx = xrealloc(c->rx, cap);
    c->rx_cap = cap;
  }
  buf->base = (char *)c->rx + c->rx_len;
  buf->len = c->rx_cap - c->rx_len;
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0) {
    if (status != UV_ECANCELED) {
      c->w->err_connect++;
      if (c->w->err_connect <= 3) fprintf(stderr, "wsload: connect: %s\n", uv_strerror(status));
    }
    conn_close(c);
    return;
  }
  uint8_t raw[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = xorshift(&c->rng);
    memcpy(raw + i, &r, 4);
  }
  bench_base64(raw, 16, c->key);
  const char *host = c->is_pub ? opt.pub_host : opt.host;
  int port = c->is_pub ? opt.pub_port : opt.port;
  const char *path = c->is_pub ? opt.pub_path : opt.path;
  char req_buf[2048];
  int n = snprintf(req_buf, sizeof req_buf,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, host, port, c->key);
  memcpy(out_reserve(c, (size_t)n), req_buf, (size_t)n);
  c->state = ST_HANDSHAKE;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  flush(c);
}

static void conn_connect(conn_t *c) {
  worker_t *w = c->w;
  c->state = ST_CONNECTING;
  c->tcp.data = c;
  c->creq.data = c;
  uv_tcp_init(&w->loop, &c->tcp);
  w->ninited++;
  w->pending++;
  uv_tcp_nodelay(&c->tcp, 1);
  const struct sockaddr_in *dst = c->is_pub ? &g_pub_addr : &g_addr;
  int r = 0;
  if (opt.sources > 0 && (ntohl(dst->sin_addr.s_addr) >> 24) == 127) {
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)(c->idx % opt.sources));
    r = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
  }
  if (r == 0) r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)dst, on_connect);
  if (r != 0) {
    w->err_connect++;
    if (w->err_connect <= 3) fprintf(stderr, "wsload: connect: %s\n", uv_strerror(r));
    conn_close(c);
  }
}

static void start_connects(worker_t *w) {
  while (w->pending < opt.connect_concurrency && w->next_connect < w->nconns)
    conn_connect(w->conns[w->next_connect++]);
}

/* ---- traffic ----------------------------------------------------------------- */

static int running(void) {
  return atomic_load(&g_phase) == PH_RUN && now_ns() < atomic_load(&g_t_end);
}

static void send_echo(conn_t *c) {
  if (c->fifo_n == (unsigned)opt.inflight) return;
  c->fifo[(c->fifo_head + c->fifo_n) % (unsigned)opt.inflight] = now_ns();
  c->fifo_n++;
  c->w->sent_total++;
  put_frame(c, opt.binary ? 2 : 1, g_payload, opt.size);
}

static void hex16(char *p, uint64_t v) {
  static const char d[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--) {
    p[i] = d[v & 15];
    v >>= 4;
  }
}

static uint64_t unhex16(const uint8_t *p, int *ok) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    int ch = p[i], x;
    if (ch >= '0' && ch <= '9')
      x = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
      x = ch - 'a' + 10;
    else {
      *ok = 0;
      return 0;
    }
    v = v << 4 | (uint64_t)x;
  }
  return v;
}

static void publish_more(worker_t *w) {
  conn_t *c = w->pub;
  if (!c || c->state != ST_OPEN || !running()) return;
  uint64_t now = now_ns();
  uint64_t completed = atomic_load(&g_deliveries) / (uint64_t)g_nsubs;
  if (completed != w->pub_last_completed || !w->pub_last_progress) {
    w->pub_last_completed = completed;
    w->pub_last_progress = now;
  } else if (now - w->pub_last_progress > 1000000000ull) {
    /* Deliveries lost (a subscriber gone?): do not stall for ever. */
    w->pub_extra++;
    w->pub_last_progress = now;
  }
  uint8_t *msg = g_payload;
  uint64_t allowed = UINT64_MAX;
  if (opt.rate > 0) {
    if (!w->pub_t0) w->pub_t0 = now;
    allowed = (uint64_t)((double)(now - w->pub_t0) * opt.rate / 1e9) + 1;
  }
  while (w->published < completed + w->pub_extra + (uint64_t)opt.inflight && w->published < allowed) {
    char h[BCAST_HDR];
    now = now_ns();
    hex16(h, w->published);
    h[16] = ' ';
    hex16(h + 17, now);
    h[33] = ' ';
    memcpy(msg, h, BCAST_HDR);
    put_frame(c, opt.binary ? 2 : 1, msg, opt.size);
    w->published++;
    w->sent_total++;
    if (now >= atomic_load(&g_t_measure)) w->sent_window++;
  }
  flush(c);
}

static void start_traffic(worker_t *w) {
  for (int i = 0; i < w->nconns; i++) {
    conn_t *c = w->conns[i];
    if (c->state != ST_OPEN) continue;
    if (opt.mode == MODE_ECHO) {
      for (int k = 0; k < opt.inflight; k++) send_echo(c);
      flush(c);
    }
  }
  if (opt.mode == MODE_BROADCAST) publish_more(w);
}

static void proto_error(conn_t *c, const char *what) {
  c->w->err_protocol++;
  if (c->w->err_protocol <= 3) fprintf(stderr, "wsload: protocol error: %s\n", what);
}

static void on_message(conn_t *c) {
  worker_t *w = c->w;
  uint64_t now = now_ns();
  w->recv_total++;
  if (opt.mode == MODE_ECHO) {
    if (!c->fifo_n) {
      proto_error(c, "unexpected message");
      return;
    }
    uint64_t t0 = c->fifo[c->fifo_head];
    c->fifo_head = (c->fifo_head + 1) % (unsigned)opt.inflight;
    c->fifo_n--;
    if (c->msg_op != (opt.binary ? 2 : 1) || c->msg_len != opt.size || c->msg_bad)
      proto_error(c, "echo differs from the message sent");
    if (t0 >= atomic_load(&g_t_measure) && now < atomic_load(&g_t_end)) {
      h_add(&w->hist, now - t0);
      w->msgs++;
      w->bytes += c->msg_len;
    }
    if (running()) send_echo(c);
  } else if (opt.mode == MODE_BROADCAST && !c->is_pub) {
    int ok = c->msg_len >= BCAST_HDR;
    uint64_t t0 = ok ? unhex16(c->hdr + 17, &ok) : 0;
    if (!ok || c->msg_len != opt.size) {
      proto_error(c, "broadcast message malformed");
      return;
    }
    uint64_t v = atomic_fetch_add(&g_deliveries, 1) + 1;
    if (t0 >= atomic_load(&g_t_measure) && now < atomic_load(&g_t_end)) {
      h_add(&w->hist, now > t0 ? now - t0 : 0);
      w->msgs++;
      w->bytes += c->msg_len;
    }
    if (v % (uint64_t)g_nsubs == 0 && running()) uv_async_send(&g_workers[0].async);
  }
}

static void handle_frame(conn_t *c, int fin, int op, uint8_t *pl, uint64_t len) {
  if (op >= 8) {
    if (!fin || len > 125) {
      proto_error(c, "bad control frame");
      return;
    }
    if (op == 9) {
      if (c->state == ST_OPEN) put_frame(c, 10, pl, len);
    } else if (op == 8) {
      if (c->state == ST_CLOSING) {
        conn_close(c);
      } else {
        c->w->err_closed++;
        c->w->last_close_code = len >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
        if (c->w->err_closed <= 3)
          fprintf(stderr, "wsload: server closed a connection (code %d)\n", c->w->last_close_code);
        put_frame(c, 8, pl, len >= 2 ? 2 : 0);
        flush(c);
        conn_close(c);
      }
    }
    return;
  }
  if (op == 1 || op == 2) {
    if (c->in_msg) proto_error(c, "new message inside a fragmented one");
    c->in_msg = 1;
    c->msg_op = op;
    c->msg_len = 0;
    c->msg_bad = 0;
  } else if (op == 0) {
    if (!c->in_msg) {
      proto_error(c, "continuation without a message");
      return;
    }
  } else {
    proto_error(c, "unknown opcode");
    return;
  }
  if (opt.mode == MODE_ECHO) {
    if (c->msg_len + len > opt.size)
      c->msg_bad = 1;
    else if (opt.verify && memcmp(g_payload + c->msg_len, pl, len) != 0)
      c->msg_bad = 1;
  } else if (c->msg_len < BCAST_HDR) {
    uint64_t n = BCAST_HDR - c->msg_len;
    if (n > len) n = len;
    memcpy(c->hdr + c->msg_len, pl, n);
  }
  c->msg_len += len;
  if (fin) {
    c->in_msg = 0;
    on_message(c);
  }
}

static void process_frames(conn_t *c) {
  size_t pos = 0;
  c->rx_need = 0;
  while (c->state == ST_OPEN || c->state == ST_CLOSING) {
    size_t avail = c->rx_len - pos;
    if (avail < 2) break;
    uint8_t *p = c->rx + pos;
    int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (p[0] & 0x70) {
      proto_error(c, "RSV bits set");
      conn_close(c);
      return;
    }
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t)p[2] << 8 | p[3];
      hl = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
      hl = 10;
    }
    if (masked) {
      if (!opt.allow_masked) {
        proto_error(c, "masked frame from the server");
        conn_close(c);
        return;
      }
      hl += 4;
    }
    if (len > MAX_FRAME) {
      proto_error(c, "frame too large");
      conn_close(c);
      return;
    }
    if (avail < hl + len) {
      c->rx_need = (size_t)(hl + len);
      break;
    }
    uint8_t *pl = p + hl;
    if (masked) {
      const uint8_t *mk = p + hl - 4;
      for (uint64_t i = 0; i < len; i++) pl[i] ^= mk[i & 3];
    }
    pos += hl + (size_t)len;
    handle_frame(c, fin, op, pl, len);
  }
  if (pos && c->rx_len > pos) memmove(c->rx, c->rx + pos, c->rx_len - pos);
  c->rx_len -= pos < c->rx_len ? pos : c->rx_len;
}

static int handshake(conn_t *c) {
  uint8_t *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->rx_len > 16384) return -1;
    return 0;
  }
  size_t hlen = (size_t)(end - c->rx) + 4;
  char *h = malloc(hlen + 1);
  memcpy(h, c->rx, hlen);
  h[hlen] = '\0';
  int ok = strncmp(h, "HTTP/1.1 101", 12) == 0;
  char want[29];
  bench_ws_accept(c->key, strlen(c->key), want);
  int got_accept = 0;
  for (char *line = strstr(h, "\r\n"); ok && line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
    char *l = line + 2;
    if (strncasecmp(l, "Sec-WebSocket-Accept:", 21) == 0) {
      char *v = l + 21;
      while (*v == ' ' || *v == '\t') v++;
      got_accept = strncmp(v, want, 28) == 0;
    } else if (strncasecmp(l, "Sec-WebSocket-Extensions:", 25) == 0) {
      ok = 0; /* we offered none */
    }
  }
  if (!ok || !got_accept) {
    char *eol = strstr(h, "\r\n");
    if (eol) *eol = '\0';
    if (c->w->err_handshake < 3) fprintf(stderr, "wsload: handshake failed: %s\n", h);
    free(h);
    return -1;
  }
  free(h);
  memmove(c->rx, c->rx + hlen, c->rx_len - hlen);
  c->rx_len -= hlen;
  return 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = s->data;
  worker_t *w = c->w;
  if (nread < 0) {
    if (c->state == ST_HANDSHAKE) {
      w->err_handshake++;
    } else if (c->state == ST_OPEN) {
      w->err_closed++;
      if (w->err_closed <= 3) fprintf(stderr, "wsload: connection lost: %s\n", uv_strerror((int)nread));
    }
    conn_close(c);
    return;
  }
  c->rx_len += (size_t)nread;
  if (c->state == ST_HANDSHAKE) {
    int r = handshake(c);
    if (r == 0) return;
    if (r < 0) {
      w->err_handshake++;
      conn_close(c);
      return;
    }
    c->state = ST_OPEN;
    count_done(c, 1);
    if (w->started && opt.mode == MODE_ECHO) {
      for (int k = 0; k < opt.inflight; k++) send_echo(c);
    }
  }
  process_frames(c);
  if (c->state == ST_OPEN || c->state == ST_CLOSING) flush(c);
  if (c->is_pub) publish_more(w);
}

/* ---- worker thread ---------------------------------------------------------- */

static void begin_stop(worker_t *w) {
  w->stopping = 1;
  w->next_connect = w->nconns;
  w->close_deadline = now_ns() + 1000000000ull;
  static const uint8_t bye[2] = {0x03, 0xE8}; /* 1000 */
  for (int i = 0; i < w->nconns; i++) {
    conn_t *c = w->conns[i];
    if (c->state == ST_OPEN) {
      c->state = ST_CLOSING;
      put_frame(c, 8, bye, 2);
      flush(c);
    } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
      conn_close(c);
    }
  }
}

static void on_tick(uv_timer_t *t) {
  worker_t *w = t->data;
  int ph = atomic_load(&g_phase);
  uint64_t now = now_ns();
  if (ph == PH_RUN && !w->started) {
    w->started = 1;
    start_traffic(w);
  }
  if (ph == PH_RUN && w->pub) publish_more(w);
  if (!w->stopping && (ph == PH_STOP || (ph == PH_RUN && now >= atomic_load(&g_t_end)))) begin_stop(w);
  if (w->stopping && now >= w->close_deadline) {
    for (int i = 0; i < w->nconns; i++) {
      conn_t *c = w->conns[i];
      if (c->state != ST_NEW && !uv_is_closing((uv_handle_t *)&c->tcp)) conn_close(c);
    }
  }
  if (w->stopping && !w->finished && w->nclosed == w->ninited) {
    w->finished = 1;
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->async, NULL);
  }
}

static void on_async(uv_async_t *a) { publish_more(a->data); }

static void worker_main(void *arg) {
  worker_t *w = arg;
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  uv_async_init(&w->loop, &w->async, on_async);
  w->async.data = w;
  /* A paced publisher (--rate) needs a finer clock than the 5 ms tick. */
  uv_timer_start(&w->tick, on_tick, 1, opt.rate > 0 && opt.mode == MODE_BROADCAST && w == &g_workers[0] ? 1 : 5);
  start_connects(w);
  check_ready(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: wsload [options]\n"
          "  --url ws://HOST:PORT/PATH   target (default ws://127.0.0.1:8080/echo)\n"
          "  --mode echo|broadcast|idle  (default echo)\n"
          "  --connections N             client connections (broadcast: subscribers) (default 100)\n"
          "  --inflight K                messages in flight per connection; broadcast: publications\n"
          "                              whose deliveries are not all in (default 1)\n"
          "  --rate N                    broadcast: publish at most N messages per second\n"
          "                              (default 0: as fast as --inflight allows)\n"
          "  --size BYTES                message payload size (default 32; broadcast >= 34)\n"
          "  --binary                    binary messages (default text)\n"
          "  --duration S                measured seconds (default 5)\n"
          "  --warmup S                  seconds of traffic before measuring (default 1)\n"
          "  --threads T                 loops/threads (default: CPUs this process may run on)\n"
          "  --pub-url URL               broadcast: the publisher's URL (default --url)\n"
          "  --sources N                 spread source addresses over 127.0.0.1..N (default 16; 0: no bind)\n"
          "  --connect-concurrency N     handshakes in progress per thread (default 64)\n"
          "  --connect-timeout S         give up waiting for connections (default 60)\n"
          "  --allow-masked              accept masked frames from the server (raw TCP echo ceiling)\n"
          "  --no-verify                 do not compare echoed payloads byte for byte\n"
          "  --json                      machine output: READY/MEASURE_START/MEASURE_END lines, then JSON\n");
}

static int parse_url(const char *url, char *host, int *port, char *path) {
  if (strncmp(url, "ws://", 5) != 0) return -1;
  const char *p = url + 5;
  const char *slash = strchr(p, '/');
  const char *hend = slash ? slash : p + strlen(p);
  const char *colon = memchr(p, ':', (size_t)(hend - p));
  size_t hl = (size_t)((colon ? colon : hend) - p);
  if (hl == 0 || hl >= 255) return -1;
  memcpy(host, p, hl);
  host[hl] = '\0';
  *port = colon ? atoi(colon + 1) : 80;
  snprintf(path, 1024, "%s", slash ? slash : "/");
  return *port > 0 && *port < 65536 ? 0 : -1;
}

static int resolve(const char *host, int port, struct sockaddr_in *sa) {
  const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
  return uv_ip4_addr(h, port, sa);
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static void on_signal(int sig) {
  (void)sig;
  g_signalled = 1;
}

static void sleep_until(uint64_t t) {
  for (;;) {
    uint64_t n = now_ns();
    if (n >= t || g_signalled) return;
    uint64_t d = t - n;
    if (d > 20000000ull) d = 20000000ull;
    struct timespec ts = {0, (long)d};
    nanosleep(&ts, NULL);
  }
}

int main(int argc, char **argv) {
  const char *url = "ws://127.0.0.1:8080/echo", *pub_url = NULL;
  opt.connections = 100;
  opt.inflight = 1;
  opt.size = 32;
  opt.duration = 5;
  opt.warmup = 1;
  opt.sources = 16;
  opt.connect_concurrency = 64;
  opt.connect_timeout = 60;
  opt.verify = 1;
  opt.mode = MODE_ECHO;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (ARG("--url")) url = v;
    else if (ARG("--pub-url")) pub_url = v;
    else if (ARG("--connections")) opt.connections = atoi(v);
    else if (ARG("--inflight")) opt.inflight = atoi(v);
    else if (ARG("--rate")) opt.rate = atof(v);
    else if (ARG("--size")) opt.size = (size_t)strtoull(v, NULL, 10);
    else if (ARG("--duration")) opt.duration = atof(v);
    else if (ARG("--warmup")) opt.warmup = atof(v);
    else if (ARG("--threads")) opt.threads = atoi(v);
    else if (ARG("--sources")) opt.sources = atoi(v);
    else if (ARG("--connect-concurrency")) opt.connect_concurrency = atoi(v);
    else if (ARG("--connect-timeout")) opt.connect_timeout = atof(v);
    else if (ARG("--mode")) {
      if (strcmp(v, "echo") == 0) opt.mode = MODE_ECHO;
      else if (strcmp(v, "broadcast") == 0) opt.mode = MODE_BROADCAST;
      else if (strcmp(v, "idle") == 0) opt.mode = MODE_IDLE;
      else {
        fprintf(stderr, "wsload: unknown mode %s\n", v);
        return 2;
      }
    } else if (strcmp(a, "--binary") == 0) opt.binary = 1;
    else if (strcmp(a, "--json") == 0) opt.json = 1;
    else if (strcmp(a, "--allow-masked") == 0) opt.allow_masked = 1;
    else if (strcmp(a, "--no-verify") == 0) opt.verify = 0;
    else {
      fprintf(stderr, "wsload: bad option %s\n", a);
      usage(stderr);
      return 2;
    }
#undef ARG
  }
  if (!pub_url) pub_url = url;
  if (parse_url(url, opt.host, &opt.port, opt.path) != 0 ||
      parse_url(pub_url, opt.pub_host, &opt.pub_port, opt.pub_path) != 0) {
    fprintf(stderr, "wsload: bad URL (want ws://HOST:PORT/PATH)\n");
    return 2;
  }
  if (resolve(opt.host, opt.port, &g_addr) != 0 || resolve(opt.pub_host, opt.pub_port, &g_pub_addr) != 0) {
    fprintf(stderr, "wsload: host must be an IPv4 address or localhost\n");
    return 2;
  }
  if (opt.connections < 1 || opt.inflight < 1 || opt.duration <= 0 || opt.warmup < 0 ||
      opt.connect_concurrency < 1 || opt.sources < 0 || opt.sources > 254) {
    fprintf(stderr, "wsload: bad numbers\n");
    return 2;
  }
  if (opt.mode == MODE_BROADCAST && opt.size < BCAST_HDR) opt.size = BCAST_HDR;
  if (opt.threads <= 0) {
    cpu_set_t set;
    opt.threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  }
  int total = opt.connections + (opt.mode == MODE_BROADCAST ? 1 : 0);
  if (opt.threads > total) opt.threads = total;

  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)total + 32 > rl.rlim_cur)
    fprintf(stderr, "wsload: warning: %d connections but the open-file limit is %llu\n", total,
            (unsigned long long)rl.rlim_cur);

  g_payload = malloc(opt.size ? opt.size : 1);
  for (size_t i = 0; i < opt.size; i++)
    g_payload[i] = opt.binary ? (uint8_t)(i * 131 + 7) : (uint8_t)('a' + i % 26);

  uint32_t seed;
  if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = (uint32_t)time(NULL);
  g_workers = calloc((size_t)opt.threads, sizeof *g_workers);
  conn_t *conns = calloc((size_t)total, sizeof *conns);
  for (int t = 0; t < opt.threads; t++) {
    worker_t *w = &g_workers[t];
    w->id = t;
    uv_loop_init(&w->loop);
    w->conns = calloc((size_t)total / (size_t)opt.threads + 2, sizeof(conn_t *));
    w->hist.b = calloc(H_N, sizeof(uint64_t));
  }
  for (int i = 0; i < total; i++) {
    conn_t *c = &conns[i];
    c->idx = i;
    c->is_pub = opt.mode == MODE_BROADCAST && i == total - 1;
    worker_t *w = c->is_pub ? &g_workers[0] : &g_workers[i % opt.threads];
    c->w = w;
    c->rng = seed ^ (uint32_t)(i * 2654435761u);
    if (!c->rng) c->rng = 1;
    if (opt.mode == MODE_ECHO) c->fifo = calloc((size_t)opt.inflight, sizeof(uint64_t));
    if (c->is_pub) w->pub = c;
    w->conns[w->nconns++] = c;
  }
  struct rusage ru0, ru1, ru2;
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t t0 = now_ns();
  for (int t = 0; t < opt.threads; t++) uv_thread_create(&g_workers[t].thread, worker_main, &g_workers[t]);

  uint64_t deadline = t0 + (uint64_t)(opt.connect_timeout * 1e9);
  while (atomic_load(&g_ready_workers) < opt.threads && now_ns() < deadline && !g_signalled) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  double connect_s = (double)(now_ns() - t0) / 1e9;
  int nopen = 0;
  for (int t = 0; t < opt.threads; t++) nopen += atomic_load(&g_workers[t].nopen);
  int nsubs = nopen - (opt.mode == MODE_BROADCAST && g_workers[0].pub->state == ST_OPEN ? 1 : 0);
  g_nsubs = nsubs > 0 ? nsubs : 1;
  if (!opt.json)
    fprintf(stderr, "wsload: %d of %d connections open in %.2f s\n", nopen, total, connect_s);
  uint64_t tm = now_ns() + (uint64_t)((opt.mode == MODE_IDLE ? 0 : opt.warmup) * 1e9);
  atomic_store(&g_t_measure, tm);
  atomic_store(&g_t_end, tm + (uint64_t)(opt.duration * 1e9));
  atomic_store(&g_phase, PH_RUN);
  if (opt.json && opt.mode == MODE_IDLE) {
    printf("READY %d\n", nopen);
    fflush(stdout);
  }
  sleep_until(tm);
  getrusage(RUSAGE_SELF, &ru1);
  uint64_t tm_real = now_ns();
  if (opt.json) {
    printf("MEASURE_START\n");
    fflush(stdout);
  }
  sleep_until(atomic_load(&g_t_end));
  uint64_t te = now_ns();
  if (g_signalled) {
    atomic_store(&g_t_end, te);
    atomic_store(&g_phase, PH_STOP);
  }
  getrusage(RUSAGE_SELF, &ru2);
  if (opt.json) {
    printf("MEASURE_END\n");
    fflush(stdout);
  }
  for (int t = 0; t < opt.threads; t++) uv_thread_join(&g_workers[t].thread);

  /* ---- results ---- */
  hist_t h = {calloc(H_N, sizeof(uint64_t)), 0, 0, 0};
  uint64_t msgs = 0, bytes = 0, sent_window = 0, sent_total = 0, recv_total = 0;
  uint64_t e_conn = 0, e_hs = 0, e_proto = 0, e_closed = 0, e_write = 0;
  int close_code = 0;
  for (int t = 0; t < opt.threads; t++) {
    worker_t *w = &g_workers[t];
    for (int i = 0; i < H_N; i++) h.b[i] += w->hist.b[i];
    h.n += w->hist.n;
    h.sum += w->hist.sum;
    if (w->hist.max > h.max) h.max = w->hist.max;
    msgs += w->msgs;
    bytes += w->bytes;
    sent_window += w->sent_window;
    sent_total += w->sent_total;
    recv_total += w->recv_total;
    e_conn += w->err_connect;
    e_hs += w->err_handshake;
    e_proto += w->err_protocol;
    e_closed += w->err_closed;
    e_write += w->err_write;
    if (w->last_close_code) close_code = w->last_close_code;
  }
  double window = (double)(te - tm_real) / 1e9;
  if (window <= 0) window = 1e-9;
  double cu = tv(ru2.ru_utime) - tv(ru1.ru_utime), cs = tv(ru2.ru_stime) - tv(ru1.ru_stime);
  struct rusage ru3;
  getrusage(RUSAGE_SELF, &ru3);
  double ctot = tv(ru3.ru_utime) + tv(ru3.ru_stime) - tv(ru0.ru_utime) - tv(ru0.ru_stime);
  double rate = (double)msgs / window;
  double us = 1e-3;
  const char *mode = opt.mode == MODE_ECHO ? "echo" : opt.mode == MODE_BROADCAST ? "broadcast" : "idle";
  uint64_t errors = e_conn + e_hs + e_proto + e_closed + e_write;
  if (opt.json) {
    printf("{\"mode\":\"%s\",\"url\":\"%s\",\"connections\":%d,\"open\":%d,\"inflight\":%d,"
           "\"size\":%zu,\"binary\":%s,\"threads\":%d,\"connect_s\":%.3f,\"window_s\":%.3f,"
           "\"messages\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"bytes_per_s\":%.1f,"
           "\"sent_total\":%" PRIu64 ",\"recv_total\":%" PRIu64 ",\"published\":%" PRIu64 ","
           "\"subscribers\":%d,"
           "\"latency_us\":{\"samples\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
           "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
           "\"errors\":{\"total\":%" PRIu64 ",\"connect\":%" PRIu64 ",\"handshake\":%" PRIu64
           ",\"protocol\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"write\":%" PRIu64 ",\"last_close_code\":%d},"
           "\"cpu\":{\"window_user_s\":%.3f,\"window_sys_s\":%.3f,\"window_pct\":%.1f,\"total_s\":%.3f}}\n",
           mode, url, opt.connections, nopen, opt.inflight, opt.size, opt.binary ? "true" : "false",
           opt.threads, connect_s, window, msgs, rate, (double)bytes / window, sent_total, recv_total,
           sent_window, opt.mode == MODE_BROADCAST ? g_nsubs : 0, h.n, h.n ? h.sum / (double)h.n * us : 0,
           h_pct(&h, 0.5) * us, h_pct(&h, 0.9) * us, h_pct(&h, 0.99) * us, h_pct(&h, 0.999) * us,
           (double)h.max * us, errors, e_conn, e_hs, e_proto, e_closed, e_write, close_code, cu, cs,
           (cu + cs) / window * 100, ctot);
  } else {
    printf("wsload %s %s: %d/%d connections open (%.2f s to connect), %d thread(s)\n", mode, url, nopen,
           opt.connections + (opt.mode == MODE_BROADCAST), connect_s, opt.threads);
    if (opt.mode != MODE_IDLE) {
      printf("  %s %.3f s: %" PRIu64 " %s, %.0f/s, %.1f MB/s\n", opt.binary ? "binary" : "text", window, msgs,
             opt.mode == MODE_ECHO ? "echoes" : "deliveries", rate, (double)bytes / window / 1e6);
      if (opt.mode == MODE_BROADCAST)
        printf("  publications in window: %" PRIu64 " to %d subscribers\n", sent_window, g_nsubs);
      printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" PRIu64 " samples)\n",
             h_pct(&h, 0.5) * us, h_pct(&h, 0.9) * us, h_pct(&h, 0.99) * us, h_pct(&h, 0.999) * us,
             (double)h.max * us, h.n);
    }
    printf("  errors: %" PRIu64 " (connect %" PRIu64 ", handshake %" PRIu64 ", protocol %" PRIu64
           ", closed %" PRIu64 ", write %" PRIu64 ")\n",
           errors, e_conn, e_hs, e_proto, e_closed, e_write);
    printf("  wsload CPU in window: user %.2f s + sys %.2f s = %.0f%% of one core; total %.2f s\n", cu, cs,
           (cu + cs) / window * 100, ctot);
  }
  return nopen > 0 ? 0 : 1;
}

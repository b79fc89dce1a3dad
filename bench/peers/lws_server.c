/* libwebsockets peer for bench/compare: /echo sends every message back,
 * /broadcast sends every message to all the other /broadcast connections.
 * Messages are reassembled (lws hands over fragments of rx_buffer_size) and
 * queued; one lws_write per WRITEABLE callback, as libwebsockets asks.
 *
 * Usage: bench_lws_server [--port N]  (127.0.0.1, default 8094). It runs on
 * libwebsockets' default poll() loop: its libuv event library measured slower
 * here and did not stop on SIGTERM. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct msg {
  int refs;
  int binary;
  size_t len;
  unsigned char buf[]; /* LWS_PRE + len */
} msg_t;

typedef struct qnode {
  struct qnode *next;
  msg_t *m;
} qnode_t;

typedef struct pss {
  struct lws *wsi;
  struct pss *prev, *next; /* /broadcast members */
  int bcast;
  qnode_t *head, *tail;
  unsigned char *rx;
  size_t rx_len, rx_cap;
} pss_t;

static pss_t *members;
static volatile int interrupted;

static void unref(msg_t *m) {
  if (--m->refs == 0) free(m);
}

static void enqueue(pss_t *p, msg_t *m) {
  qnode_t *q = malloc(sizeof *q);
  q->next = NULL;
  q->m = m;
  m->refs++;
  if (p->tail) p->tail->next = q;
  else p->head = q;
  p->tail = q;
  lws_callback_on_writable(p->wsi);
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  pss_t *p = user;
  switch (reason) {
  case LWS_CALLBACK_ESTABLISHED: {
    memset(p, 0, sizeof *p);
    p->wsi = wsi;
    char uri[256] = "";
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (strcmp(uri, "/broadcast") == 0) {
      p->bcast = 1;
      p->next = members;
      if (members) members->prev = p;
      members = p;
    }
    break;
  }
  case LWS_CALLBACK_RECEIVE: {
    if (p->rx_len + len > p->rx_cap) {
      size_t cap = p->rx_cap ? p->rx_cap : 1024;
      while (cap < p->rx_len + len) cap *= 2;
      p->rx = realloc(p->rx, cap);
      p->rx_cap = cap;
    }
    memcpy(p->rx + p->rx_len, in, len);
    p->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) break;
    msg_t *m = malloc(sizeof *m + LWS_PRE + p->rx_len);
    m->refs = 1;
    m->binary = lws_frame_is_binary(wsi);
    m->len = p->rx_len;
    memcpy(m->buf + LWS_PRE, p->rx, p->rx_len);
    p->rx_len = 0;
    if (!p->bcast) {
      enqueue(p, m);
    } else {
      for (pss_t *q = members; q; q = q->next)
        if (q != p) enqueue(q, m);
    }
    unref(m);
    break;
  }
  case LWS_CALLBACK_SERVER_WRITEABLE: {
    qnode_t *q = p->head;
    if (!q) break;
    p->head = q->next;
    if (!p->head) p->tail = NULL;
    int n = lws_write(wsi, q->m->buf + LWS_PRE, q->m->len, q->m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    unref(q->m);
    free(q);
    if (n < 0) return -1;
    if (p->head) lws_callback_on_writable(wsi);
    break;
  }
  case LWS_CALLBACK_CLOSED:
    if (p->bcast) {
      if (p->prev) p->prev->next = p->next;
      else members = p->next;
      if (p->next) p->next->prev = p->prev;
    }
    while (p->head) {
      qnode_t *q = p->head;
      p->head = q->next;
      unref(q->m);
      free(q);
    }
    free(p->rx);
    p->rx = NULL;
    break;
  default:
    break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {
    {"bench", cb, sizeof(pss_t), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_sig(int s) {
  (void)s;
  interrupted = 1;
}

int main(int argc, char **argv) {
  int port = 8094;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
  }
  signal(SIGINT, on_sig);
  signal(SIGTERM, on_sig);
  signal(SIGPIPE, SIG_IGN);
  lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = port;
  info.iface = "127.0.0.1";
  info.protocols = protocols;
  struct lws_context *ctx = lws_create_context(&info);
  if (!ctx) {
    fprintf(stderr, "bench_lws_server: cannot create the context\n");
    return 1;
  }
  int n = 0;
  while (n >= 0 && !interrupted) n = lws_service(ctx, 0);
  lws_context_destroy(ctx);
  return 0;
}

#include "fake_stream.h"

#include <stdlib.h>
#include <string.h>

static fake_stream_t *fake_of(uvws__stream_t *s) { return (fake_stream_t *)s; }

static int f_write(uvws__stream_t *s, const uv_buf_t *bufs, unsigned n) {
  fake_stream_t *f = fake_of(s);
  unsigned i;
  if (f->closed || f->finished) return UVWS_ECLOSED;
  for (i = 0; i < n; i++) {
    if (uvws__buf_append(&f->out, bufs[i].base, bufs[i].len) != 0) return UV_ENOMEM;
    if (!f->peer_reads) f->unread += bufs[i].len;
  }
  if (f->unread > UVWS__QUEUE_LOW) f->writable_owed = 1;
  f->writes++;
  return 0;
}

static int f_write_shared(uvws__stream_t *s, uvws__sbuf_t *b, size_t off, size_t len) {
  uv_buf_t v = uv_buf_init(b->data + off, (unsigned)len);
  fake_of(s)->shared_writes++;
  return f_write(s, &v, 1);
}

static size_t f_queued(const uvws__stream_t *s) { return ((const fake_stream_t *)s)->unread; }
static void f_pause(uvws__stream_t *s, int paused) { fake_of(s)->paused = paused; }
static void f_want_writable(uvws__stream_t *s) { fake_of(s)->writable_owed = 1; }
static void f_defer(uvws__stream_t *s) { fake_of(s)->deferred = 1; }
static int f_cork(uvws__stream_t *s) {
  if (fake_of(s)->corked) return 0;
  fake_of(s)->corked = 1;
  return 1;
}
static void f_uncork(uvws__stream_t *s) { fake_of(s)->corked = 0; }
static void f_finish(uvws__stream_t *s) {
  fake_of(s)->finished = 1;
  s->finishing = 1;
}
static void f_close(uvws__stream_t *s, const char *why) {
  (void)why;
  fake_of(s)->closed = 1;
  s->closing = 1;
}
static int f_set_client(uvws__stream_t *s, const uint8_t addr[16]) {
  memcpy(s->addr, addr, 16);
  s->via_proxy = 1;
  return addr[0] == 0x20 ? -1 : 0; /* some addresses are "over the limit" */
}

static const uvws__stream_ops_t fake_ops = {
    .write = f_write,
    .write_shared = f_write_shared,
    .queued = f_queued,
    .pause = f_pause,
    .want_writable = f_want_writable,
    .defer = f_defer,
    .cork = f_cork,
    .uncork = f_uncork,
    .finish = f_finish,
    .close = f_close,
    .set_client = f_set_client,
};

void fake_stream_init(fake_stream_t *f, uv_loop_t *loop) {
  memset(f, 0, sizeof(*f));
  f->s.ops = &fake_ops;
  f->s.loop = loop;
  f->peer_reads = 1;
  f->s.addr[10] = f->s.addr[11] = 0xff;
  f->s.addr[12] = 127;
  f->s.addr[15] = 1;
  strcpy(f->s.peer, "127.0.0.1:1");
}

void fake_stream_feed(fake_stream_t *f, const char *data, size_t len) {
  char *copy = malloc(len ? len : 1);
  if (copy == NULL) abort();
  memcpy(copy, data, len);
  if (!f->closed && !f->finished) {
    int corked = f_cork(&f->s);
    f->s.cb->on_data(&f->s, copy, len);
    if (corked) f_uncork(&f->s);
  }
  free(copy);
}

void fake_stream_peer_read(fake_stream_t *f) {
  f->unread = 0;
  if (f->writable_owed && !f->closed) {
    f->writable_owed = 0;
    if (f->s.cb->on_writable) f->s.cb->on_writable(&f->s);
  }
}

void fake_stream_run_deferred(fake_stream_t *f) {
  if (!f->deferred || f->closed) return;
  f->deferred = 0;
  if (f->s.cb->on_resume) f->s.cb->on_resume(&f->s);
}

void fake_stream_eof(fake_stream_t *f) {
  if (!f->closed && f->s.cb->on_eof) f->s.cb->on_eof(&f->s);
}

void fake_stream_free(fake_stream_t *f) {
  if (f->s.cb && f->s.cb->on_close) f->s.cb->on_close(&f->s);
  uvws__buf_free(&f->out);
}

/* A stream (src/net/stream.h) with no socket under it, for testing the
 * layers above the transport alone: what they write is kept in `out`;
 * what the peer "sends" is fed with fake_stream_feed; whether the peer
 * reads is the test's choice (peer_reads), which is what the water marks
 * react to. */
#ifndef UVWS_FAKE_STREAM_H
#define UVWS_FAKE_STREAM_H

#include "net/stream.h"
#include "util/wbuf.h"
#include "uvws.h"

typedef struct {
  uvws__stream_t s;
  uvws__buf_t out;       /* every byte written, in order */
  size_t unread;         /* written, not yet read by the peer: what queued() says */
  int peer_reads;        /* 1: the peer reads everything at once (unread stays 0) */
  int paused, finished, closed, corked, writable_owed, deferred;
  unsigned writes, shared_writes;
} fake_stream_t;

void fake_stream_init(fake_stream_t *f, uv_loop_t *loop);
/* Bytes from the peer (copied first: the layer above may write into them). */
void fake_stream_feed(fake_stream_t *f, const char *data, size_t len);
/* The peer reads everything written so far; on_writable if owed. */
void fake_stream_peer_read(fake_stream_t *f);
/* The next loop iteration for a stream that deferred: on_writable. */
void fake_stream_run_deferred(fake_stream_t *f);
/* The peer half-closes. */
void fake_stream_eof(fake_stream_t *f);
/* Ends the stream (as the transport's close callback would): on_close. */
void fake_stream_free(fake_stream_t *f);

#endif

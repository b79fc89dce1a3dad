/* uvws on threads of its own, inside a program that never touches libuv:
 * an echo server on several event loops. The main thread only waits for
 * SIGINT or SIGTERM (sigwait), then stops the server gracefully and says
 * how many messages the loops echoed between them.
 *
 *   ./threads [port [threads]]     (port 0 = any free port; it is printed)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <uvws.h>

/* Handlers run on every loop's thread: state they share must be atomic or
 * locked. */
static atomic_ulong echoed;

static void on_message(uvws_conn_t *c, uvws_opcode_t op, const void *data, size_t len) {
  atomic_fetch_add_explicit(&echoed, 1, memory_order_relaxed);
  uvws_send(c, op, data, len);
}

int main(int argc, char **argv) {
  uvws_route_t echo = {.path = "/echo", .handlers = {.on_message = on_message}};
  uvws_server_t *srv = NULL;
  uvws_options_t opts;
  sigset_t stop;
  int sig, r;

  /* Blocked before any thread exists, so every thread inherits the mask
   * and only sigwait() below receives them. */
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  uvws_options_init(&opts);
  opts.port = argc > 1 ? atoi(argv[1]) : 9000;
  opts.threads = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
  /* No loop: the server owns its loops and threads; start() returns with
   * all of them running. */
  if ((r = uvws_server_new(&srv, NULL, &opts)) != 0 || (r = uvws_server_route(srv, &echo)) != 0 ||
      (r = uvws_server_start(srv)) != 0) {
    fprintf(stderr, "threads: %s\n", uvws_strerror(r));
    uvws_server_free(srv);
    return 1;
  }
  printf("echo on ws://127.0.0.1:%d/echo, %u threads\n", uvws_server_port(srv), opts.threads);
  fflush(stdout);

  sigwait(&stop, &sig);
  uvws_server_stop(srv); /* closes every WebSocket with 1001, joins the threads */
  printf("%lu messages echoed\n", (unsigned long)atomic_load(&echoed));
  uvws_server_free(srv);
  return 0;
}

/* The exec routes' shared types: the app (options for every route), a
 * route (a command), and one connection with its process. Private to
 * exec.c (WebSocket side, framing) and exec_proc.c (command line,
 * environment, spawning, the end of a process).
 *
 * Threads: the app and its routes are written before uvws_server_start and
 * only read afterwards, except the two atomic counters. A connection and
 * its handles belong to the loop the upgrade arrived on. */
#ifndef UVWS_APPS_EXEC_H
#define UVWS_APPS_EXEC_H

#include <stdatomic.h>

#include "apps.h"

/* Queue marks. Reading stdout stops above OUT_HIGH queued on the
 * WebSocket: that is above the stream's low mark (256 KiB), so on_drain is
 * owed and comes when the queue is back under it. Reading the WebSocket
 * stops above IN_HIGH bytes waiting for the program's stdin. */
#define EXEC_OUT_HIGH (512u * 1024u)
#define EXEC_IN_HIGH (256u * 1024u)
#define EXEC_IN_LOW (64u * 1024u)
#define EXEC_ERR_LINE 1024
#define EXEC_MAX_SHARED 64 /* a longer stderr line is logged in pieces */

typedef struct exec_route_s {
  struct exec_route_s *next;
  struct uvws_exec_s *app;
  char *path;
  char **argv; /* NULL-terminated, owned (each string too) */
  int binary;
} exec_route_t;

/* One uvws_exec_protocols call: the names stay owned here, the route
 * table takes its own copy. */
typedef struct exec_protos_s {
  struct exec_protos_s *next;
  char *path;
  char **names; /* NULL-terminated, owned (each string too) */
  int used;     /* a route took the list */
} exec_protos_t;

struct uvws_exec_s {
  uvws_exec_options_t opts; /* strings not kept: see below */
  int stderr_mode;          /* EXEC_STDERR_* */
  char **baseenv;  /* "PATH=...", the --exec-passenv ones: owned, taken at
                      creation so no loop thread reads environ */
  size_t nbaseenv;
  exec_route_t *routes; /* owned */
  struct exec_shared_s *shared; /* owned: --exec-shared routes */
  exec_protos_t *protos; /* owned: uvws_exec_protocols lists */
  atomic_uint procs;    /* processes started and not yet reaped, all loops */
  atomic_ullong next_id;
  /* The pids running, every loop's, so uvws_exec_shutdown can signal them
   * from the main loop (kill() needs no loop); under `lock`. */
  uv_mutex_t lock;
  int *pids; /* max_procs + EXEC_MAX_SHARED slots, 0 = free */
  /* uvws_exec_shutdown's timer, on the main loop only */
  uv_timer_t stop_timer;
  uint64_t stop_start, stop_term_at, stop_kill_at;
  int stop_phase; /* 0 running, 1 stopping, 2 SIGTERM sent, 3 SIGKILL sent */
};

enum { EXEC_STDERR_LOG = 0, EXEC_STDERR_DISCARD = 1, EXEC_STDERR_CLIENT = 2 };

/* One WebSocket and its process. Owned by the app's code on one loop; freed
 * when the connection is gone (conn_done) and every handle is closed. */
typedef struct {
  exec_route_t *route;
  uvws_conn_t *conn; /* from on_open to on_close, else NULL */
  unsigned long long id;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer; /* SIGTERM / SIGKILL after close; linger after exit */
  int handles;      /* initialised and not yet closed */
  uint8_t conn_done, exited, out_eof, err_eof, in_closed, out_reading, out_paused, err_reading, ws_paused;
  uint8_t term_sent, closing_ws, counted, ending, proc_init;
  int64_t exit_status;
  int term_signal;
  int pid;
  size_t in_queued; /* bytes written to stdin and not yet taken */
  char *line;       /* stdout line so far (text routes) */
  size_t line_len, line_cap;
  char errline[EXEC_ERR_LINE];
  size_t err_len;
} exec_conn_t;

/* exec_proc.c */
int exec_split_command(const char *cmd, char ***argv_out);
void exec_free_argv(char **argv);
int exec_base_env(uvws_exec_t *app, const char *passenv);
/* Starts the route's program for the upgrade `up` on `loop`: 0 with every
 * handle open, or a negative code (logged) with the handles closing and
 * `ec` freed when they are. */
int exec_spawn(exec_conn_t *ec, uvws_upgrade_t *up, uv_loop_t *loop);
/* uv_spawn with the three pipes as stdin, stdout and stderr, in a process
 * group of its own (so signals reach what the program starts). */
int exec_spawn_piped(uv_loop_t *loop, uv_process_t *proc, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err,
                     char **argv, char **env, uv_exit_cb exit_cb);
/* The connection is gone: stdin closed, the program ended in time. */
void exec_end(exec_conn_t *ec);
void exec_pid_add(uvws_exec_t *app, int pid);
void exec_pid_remove(uvws_exec_t *app, int pid);
void exec_close_handle(exec_conn_t *ec, uv_handle_t *h);
/* Frees `ec` once the connection is gone and its handles are closed. */
void exec_maybe_free(exec_conn_t *ec);

/* exec.c: shared helpers */
/* The subprotocols of the route at `path` (marked used), or NULL. */
const char *const *exec_protocols_for(uvws_exec_t *app, const char *path);
void exec_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
int exec_utf8_valid(const unsigned char *s, size_t n);
void exec_sanitize(char *out, const char *in, size_t n);
/* Appends to a growable buffer (doubling from 1 KiB); UV_ENOMEM. */
int exec_buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n);

/* exec_shared.c */
struct exec_shared_s;
void exec_shared_stop_all(uvws_exec_t *app);   /* the main loop, at shutdown */
void exec_shared_free_all(uvws_exec_t *app);   /* after the loops ended */

/* exec.c, called when the process ended and its output is read */
void exec_finish_ws(exec_conn_t *ec);
void exec_start_reading(exec_conn_t *ec);

#endif

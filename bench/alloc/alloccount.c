/* alloccount: an LD_PRELOAD shim that counts heap calls, for bench/alloc/run.
 *
 *   LD_PRELOAD=build/bench/liballoccount.so ALLOCCOUNT_OUT=/tmp/a.txt uvws ...
 *   kill -USR2 PID      # appends one snapshot to $ALLOCCOUNT_OUT (else stderr)
 *
 * It interposes malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc, forwards each to the next
 * definition (libc's, found with dlsym(RTLD_NEXT)) and counts the calls with
 * relaxed atomics (any thread may allocate). Counters are cumulative from
 * process start: a measurement is the difference of two snapshots.
 *
 * A snapshot is written by the SIGUSR2 handler (installed by the constructor;
 * it only reads atomics and calls open/write/close, all async-signal-safe),
 * by alloccount_snapshot() (callable from a program or a debugger), and at
 * exit when ALLOCCOUNT_AT_EXIT=1. Its format, one record per line:
 *
 *   alloccount snap=N pid=P malloc=.. calloc=.. realloc=.. realloc_new=..
 *     realloc_free=.. memalign=.. free=.. free_null=.. bytes=.. live=..
 *     sites_lost=.. hook_allocs=..            (all on one line)
 *   site count=C bytes=B pcs=0x...,0x...      (only with ALLOCCOUNT_SITES)
 *   end snap=N
 *
 *   malloc, calloc   calls; reallocarray counts as realloc
 *   realloc          realloc(p, n) with p != NULL and n > 0 (may move)
 *   realloc_new      realloc(NULL, n): an allocation
 *   realloc_free     realloc(p, 0): a free (glibc frees and returns NULL)
 *   memalign         posix_memalign + aligned_alloc + memalign + valloc + pvalloc
 *   free, free_null  free(p) with p != NULL, and free(NULL) (no-op, not a free)
 *   bytes            bytes requested by every allocating call (realloc: new size)
 *   live             blocks allocated - blocks freed (a leak shows as growth)
 *
 * ALLOCCOUNT_SITES=D (1..8) also records, for every allocating call, the
 * first D return addresses outside this library (libgcc's unwinder, which
 * reads .eh_frame, so -fomit-frame-pointer code unwinds). Sites are cumulative
 * too; each snapshot lists every site seen so far with its count and bytes,
 * so the sites of a window are the difference of two snapshots. Addresses are
 * raw: resolve them offline against /proc/PID/maps (bench/alloc/run does, with
 * addr2line). Unwinding costs about a microsecond per allocation; counts are
 * not affected, only speed.
 *
 * Bootstrapping: dlsym() may itself call calloc/malloc before the real
 * functions are known; those calls are served from a small static arena,
 * whose blocks free() ignores and realloc() copies out of. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- the real functions ---------------------------------------------------- */

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_alloc_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);

static malloc_fn real_malloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static free_fn real_free;
static posix_memalign_fn real_posix_memalign;
static aligned_alloc_fn real_aligned_alloc;
static aligned_alloc_fn real_memalign;
static valloc_fn real_valloc;
static valloc_fn real_pvalloc;

/* ---- bootstrap arena --------------------------------------------------------- */

#define ARENA_SIZE (64 * 1024)
#define ARENA_HDR 16 /* each block starts with its size, keeps 16-byte alignment */
static _Alignas(16) unsigned char arena[ARENA_SIZE];
static atomic_size_t arena_used;

static int in_arena(const void *p) {
  return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_SIZE;
}

static void *arena_alloc(size_t n) {
  size_t need = (ARENA_HDR + n + 15) & ~(size_t)15;
  if (n > ARENA_SIZE) return NULL;
  size_t off = atomic_fetch_add(&arena_used, need);
  if (off + need > ARENA_SIZE) return NULL;
  unsigned char *p = arena + off;
  memcpy(p, &n, sizeof n);
  return p + ARENA_HDR; /* static storage: already zero, so calloc is served too */
}

static size_t arena_size(const void *p) {
  size_t n;
  memcpy(&n, (const unsigned char *)p - ARENA_HDR, sizeof n);
  return n;
}

static _Thread_local int resolving __attribute__((tls_model("initial-exec")));

static void resolve(void) {
  if (real_free) return;
  resolving = 1;
  *(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc"); /* the POSIX idiom for function pointers */
  *(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
  *(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
  *(void **)&real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  *(void **)&real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  *(void **)&real_memalign = dlsym(RTLD_NEXT, "memalign");
  *(void **)&real_valloc = dlsym(RTLD_NEXT, "valloc");
  *(void **)&real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
  /* free last: it is the "resolved" flag (the first call comes before any
   * thread exists: ld.so or a constructor) */
  *(void **)&real_free = dlsym(RTLD_NEXT, "free");
  resolving = 0;
  if (!real_malloc || !real_calloc || !real_realloc || !real_free) {
    static const char msg[] = "alloccount: dlsym(RTLD_NEXT) did not find malloc/free\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    _exit(127);
  }
}

/* ---- counters ------------------------------------------------------------------ */

enum {
  C_MALLOC,
  C_CALLOC,
  C_REALLOC,
  C_REALLOC_NEW,
  C_REALLOC_FREE,
  C_MEMALIGN,
  C_FREE,
  C_FREE_NULL,
  C_BYTES,
  C_NEW,   /* blocks created */
  C_FREED, /* blocks destroyed */
  C_SITES_LOST,
  C_HOOK_ALLOCS,
  C_N
};

/* One cache line per counter: threads that allocate at once do not share one. */
static struct {
  _Alignas(64) atomic_uint_fast64_t v;
} counters[C_N];

static inline void bump(int k, uint64_t n) {
  atomic_fetch_add_explicit(&counters[k].v, n, memory_order_relaxed);
}

static inline uint64_t get(int k) { return atomic_load_explicit(&counters[k].v, memory_order_relaxed); }

/* ---- call sites ------------------------------------------------------------------ */

#define SITE_DEPTH_MAX 8
#define SITE_SLOTS 16384 /* power of two */

typedef struct {
  atomic_uint_fast64_t key; /* 0: empty; else the stack's hash | 1 */
  atomic_int ready;         /* pcs written */
  uintptr_t pcs[SITE_DEPTH_MAX];
  atomic_uint_fast64_t count, bytes;
} site_t;

static site_t sites[SITE_SLOTS];
static int site_depth;   /* 0: off */
static int sites_armed;  /* set once the constructor is done */
static uintptr_t self_lo, self_hi; /* our own text: frames to skip */
static _Thread_local int in_hook __attribute__((tls_model("initial-exec")));

typedef struct {
  uintptr_t pcs[SITE_DEPTH_MAX];
  int n;
  int seen_self;
} trace_t;

/* The unwind starts inside the unwinder (libgcc), then goes through our own
 * frames (record_site, malloc, ...): both are skipped; the caller of the
 * interposed function is the first address recorded. */
static _Unwind_Reason_Code trace_cb(struct _Unwind_Context *ctx, void *arg) {
  trace_t *t = arg;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (ip >= self_lo && ip < self_hi) {
    t->seen_self = 1;
    return _URC_NO_REASON;
  }
  if (!t->seen_self) return _URC_NO_REASON;
  t->pcs[t->n++] = ip;
  return t->n >= site_depth ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static void record_site(size_t bytes) {
  trace_t t;
  t.n = 0;
  t.seen_self = 0;
  _Unwind_Backtrace(trace_cb, &t);
  if (t.n == 0) return;
  uint64_t h = 1469598103934665603ull; /* FNV-1a over the addresses */
  for (int i = 0; i < t.n; i++) {
    uintptr_t v = t.pcs[i];
    for (int b = 0; b < (int)sizeof v; b++) {
      h ^= (v >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  h |= 1;
  for (unsigned probe = 0; probe < 64; probe++) {
    site_t *s = &sites[(h + probe) & (SITE_SLOTS - 1)];
    uint_fast64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
    if (k == 0) {
      uint_fast64_t zero = 0;
      if (atomic_compare_exchange_strong(&s->key, &zero, h)) {
        memcpy(s->pcs, t.pcs, sizeof(uintptr_t) * (size_t)t.n);
        atomic_store_explicit(&s->ready, t.n, memory_order_release);
        k = h;
      } else {
        k = zero;
      }
    }
    if (k == h) {
      atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
      return;
    }
  }
  bump(C_SITES_LOST, 1);
}

/* Called after every allocating call. */
static inline void on_alloc(int kind, size_t bytes) {
  bump(kind, 1);
  bump(C_BYTES, bytes);
  bump(C_NEW, 1);
  if (in_hook) {
    bump(C_HOOK_ALLOCS, 1);
    return;
  }
  if (site_depth && sites_armed) {
    in_hook = 1;
    record_site(bytes);
    in_hook = 0;
  }
}

/* ---- the interposed functions --------------------------------------------------- */

EXPORT void *malloc(size_t n) {
  if (!real_free) {
    if (resolving) return arena_alloc(n);
    resolve();
  }
  void *p = real_malloc(n);
  if (p) on_alloc(C_MALLOC, n);
  return p;
}

EXPORT void *calloc(size_t nmemb, size_t size) {
  if (!real_free) {
    if (resolving) {
      if (size && nmemb > (size_t)-1 / size) return NULL;
      return arena_alloc(nmemb * size);
    }
    resolve();
  }
  void *p = real_calloc(nmemb, size);
  if (p) on_alloc(C_CALLOC, nmemb * size);
  return p;
}

EXPORT void free(void *p) {
  if (p == NULL) {
    bump(C_FREE_NULL, 1);
    return;
  }
  if (in_arena(p)) return;
  if (!real_free) resolve();
  bump(C_FREE, 1);
  bump(C_FREED, 1);
  real_free(p);
}

EXPORT void *realloc(void *p, size_t n) {
  if (!real_free) {
    if (resolving) {
      void *q = arena_alloc(n);
      if (q && p) memcpy(q, p, in_arena(p) && arena_size(p) < n ? arena_size(p) : n);
      return q;
    }
    resolve();
  }
  if (p && in_arena(p)) { /* a bootstrap block leaves the arena */
    void *q = malloc(n ? n : 1);
    if (q) memcpy(q, p, arena_size(p) < n ? arena_size(p) : n);
    return q;
  }
  if (p == NULL) {
    void *q = real_realloc(NULL, n);
    if (q) on_alloc(C_REALLOC_NEW, n);
    return q;
  }
  if (n == 0) {
    bump(C_REALLOC_FREE, 1);
    bump(C_FREED, 1);
    return real_realloc(p, 0);
  }
  void *q = real_realloc(p, n);
  if (q) {
    on_alloc(C_REALLOC, n);
    bump(C_FREED, 1); /* the old block: a resize is one block out, one in */
  }
  return q;
}

EXPORT void *reallocarray(void *p, size_t nmemb, size_t size) {
  if (size && nmemb > (size_t)-1 / size) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, nmemb * size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (!real_free) resolve();
  int r = real_posix_memalign(out, align, n);
  if (r == 0) on_alloc(C_MEMALIGN, n);
  return r;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (!real_free) resolve();
  void *p = real_aligned_alloc(align, n);
  if (p) on_alloc(C_MEMALIGN, n);
  return p;
}

EXPORT void *memalign(size_t align, size_t n) {
  if (!real_free) resolve();
  void *p = real_memalign(align, n);
  if (p) on_alloc(C_MEMALIGN, n);
  return p;
}

EXPORT void *valloc(size_t n) {
  if (!real_free) resolve();
  void *p = real_valloc(n);
  if (p) on_alloc(C_MEMALIGN, n);
  return p;
}

EXPORT void *pvalloc(size_t n) {
  if (!real_free) resolve();
  void *p = real_pvalloc(n);
  if (p) on_alloc(C_MEMALIGN, n);
  return p;
}

/* ---- snapshots: async-signal-safe output ----------------------------------------- */

static char out_path[4096]; /* $ALLOCCOUNT_OUT, copied by the constructor */
static atomic_uint_fast64_t snap_seq;

typedef struct {
  int fd;
  size_t len;
  char buf[4096];
} wr_t;

static void wr_flush(wr_t *w) {
  size_t off = 0;
  while (off < w->len) {
    ssize_t r = write(w->fd, w->buf + off, w->len - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += (size_t)r;
  }
  w->len = 0;
}

static void wr_str(wr_t *w, const char *s) {
  while (*s) {
    if (w->len == sizeof w->buf) wr_flush(w);
    w->buf[w->len++] = *s++;
  }
}

static void wr_u64(wr_t *w, uint64_t v) {
  char d[24];
  int n = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  char s[24];
  for (int i = 0; i < n; i++) s[i] = d[n - 1 - i];
  s[n] = '\0';
  wr_str(w, s);
}

static void wr_hex(wr_t *w, uint64_t v) {
  static const char x[] = "0123456789abcdef";
  char s[19];
  int n = 0;
  s[n++] = '0';
  s[n++] = 'x';
  int started = 0;
  for (int i = 60; i >= 0; i -= 4) {
    int nib = (int)((v >> i) & 15);
    if (nib || started || i == 0) {
      s[n++] = x[nib];
      started = 1;
    }
  }
  s[n] = '\0';
  wr_str(w, s);
}

static void wr_kv(wr_t *w, const char *k, uint64_t v) {
  wr_str(w, " ");
  wr_str(w, k);
  wr_str(w, "=");
  wr_u64(w, v);
}

/* Writes one snapshot. Async-signal-safe: atomics, open/write/close only. */
static void snapshot(void) {
  int saved = errno;
  wr_t w;
  w.len = 0;
  w.fd = 2;
  if (out_path[0]) {
    w.fd = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (w.fd < 0) w.fd = 2;
  }
  uint64_t seq = atomic_fetch_add(&snap_seq, 1) + 1;
  uint64_t nnew = get(C_NEW), nfreed = get(C_FREED);
  wr_str(&w, "alloccount");
  wr_kv(&w, "snap", seq);
  wr_kv(&w, "pid", (uint64_t)getpid());
  wr_kv(&w, "malloc", get(C_MALLOC));
  wr_kv(&w, "calloc", get(C_CALLOC));
  wr_kv(&w, "realloc", get(C_REALLOC));
  wr_kv(&w, "realloc_new", get(C_REALLOC_NEW));
  wr_kv(&w, "realloc_free", get(C_REALLOC_FREE));
  wr_kv(&w, "memalign", get(C_MEMALIGN));
  wr_kv(&w, "free", get(C_FREE));
  wr_kv(&w, "free_null", get(C_FREE_NULL));
  wr_kv(&w, "bytes", get(C_BYTES));
  wr_kv(&w, "live", nnew - nfreed);
  wr_kv(&w, "sites_lost", get(C_SITES_LOST));
  wr_kv(&w, "hook_allocs", get(C_HOOK_ALLOCS));
  wr_str(&w, "\n");
  if (site_depth) {
    for (unsigned i = 0; i < SITE_SLOTS; i++) {
      site_t *s = &sites[i];
      int n = atomic_load_explicit(&s->ready, memory_order_acquire);
      if (!n) continue;
      wr_str(&w, "site");
      wr_kv(&w, "count", atomic_load_explicit(&s->count, memory_order_relaxed));
      wr_kv(&w, "bytes", atomic_load_explicit(&s->bytes, memory_order_relaxed));
      wr_str(&w, " pcs=");
      for (int j = 0; j < n; j++) {
        if (j) wr_str(&w, ",");
        wr_hex(&w, s->pcs[j]);
      }
      wr_str(&w, "\n");
    }
  }
  wr_str(&w, "end");
  wr_kv(&w, "snap", seq);
  wr_str(&w, "\n");
  wr_flush(&w);
  if (w.fd != 2) close(w.fd);
  errno = saved;
}

EXPORT void alloccount_snapshot(void) { snapshot(); }

static void on_sigusr2(int sig) {
  (void)sig;
  snapshot();
}

/* ---- setup ---------------------------------------------------------------------- */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t me = (uintptr_t)arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (me >= lo && me < hi) {
      self_lo = lo;
      self_hi = hi;
      return 1;
    }
  }
  return 0;
}

static int env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : dflt;
}

__attribute__((constructor)) static void alloccount_init(void) {
  resolve();
  const char *out = getenv("ALLOCCOUNT_OUT");
  if (out && strlen(out) < sizeof out_path) memcpy(out_path, out, strlen(out) + 1);
  site_depth = env_int("ALLOCCOUNT_SITES", 0);
  if (site_depth < 0) site_depth = 0;
  if (site_depth > SITE_DEPTH_MAX) site_depth = SITE_DEPTH_MAX;
  if (site_depth) {
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&record_site);
    /* The first unwind may load or set up things that allocate: do it now,
     * with the hook flag set so nothing is recorded from inside it. */
    trace_t t;
    t.n = 0;
    t.seen_self = 0;
    in_hook = 1;
    _Unwind_Backtrace(trace_cb, &t);
    in_hook = 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr2;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, NULL);
  sites_armed = 1;
}

__attribute__((destructor)) static void alloccount_fini(void) {
  if (env_int("ALLOCCOUNT_AT_EXIT", 0)) snapshot();
}

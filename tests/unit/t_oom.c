/*
 * t_oom.c -- every allocation, in turn, fails: compiling golden policies,
 * loading their programs and the hostile .lanec files, creating runtimes
 * and running test blocks. Each failure must give a clean error (a status,
 * a diagnostic, no crash) and leak nothing.
 *
 * The library's calls to malloc, calloc and realloc are redirected with
 * the linker's --wrap (the Makefile links this test with
 * -Wl,--wrap=malloc,...), so the same test runs under AddressSanitizer,
 * whose allocator stays in charge (t_alloc's interposer would take malloc
 * from ASan). The wrappers keep the set of blocks the library holds, so
 * each attempt must give back every block it took; LeakSanitizer checks
 * once more at exit under check-asan.
 *
 * For each case: one clean run counts its allocations (n) and records its
 * result; then for k = 1..n the k-th allocation fails and the result must
 * be a clean failure, or -- where the allocation was optional -- exactly
 * the clean result.
 *
 * Every policy of tests/golden/accept (51; well under a second, since the
 * arena allocates in 16 KiB blocks). To find where one attempt goes wrong:
 * LANE_OOM_POLICY=NAME LANE_OOM_TRACE=K build/tests/t_oom prints the stack
 * of the K-th allocation and runs only that attempt.
 */
#include "tap.h"
#include "sema.h"

#include <dirent.h>
#include <execinfo.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void  __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void  __wrap_free(void *p);

static long nalloc;     /* allocations seen since the last reset */
static long fail_at;    /* fail the fail_at-th (1-based), 0 = never */
static long trace;      /* $LANE_OOM_TRACE=K: print where the K-th fails */

/* The blocks the library holds now: a set of pointers (linear probing,
 * deletion by backward shift). Pointers that libc allocated itself and the
 * library frees (open_memstream's buffer) are not in it and are ignored. */
#define NSLOT (1u << 18)
static void *live[NSLOT];
static long  nlive;

static size_t slot(const void *p) {
  return (size_t)(((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 46);
}

static void live_add(void *p) {
  size_t i = slot(p);
  if (!p || nlive >= (long)NSLOT / 2) return;
  while (live[i]) i = (i + 1) & (NSLOT - 1);
  live[i] = p;
  nlive++;
}

static void live_del(void *p) {
  size_t i = slot(p), j;
  if (!p) return;
  while (live[i] != p) {
    if (!live[i]) return;
    i = (i + 1) & (NSLOT - 1);
  }
  live[i] = NULL;
  nlive--;
  for (j = (i + 1) & (NSLOT - 1); live[j]; j = (j + 1) & (NSLOT - 1)) {
    size_t k = slot(live[j]);
    int between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!between) {
      live[i] = live[j];
      live[j] = NULL;
      i = j;
    }
  }
}

static int fail_now(void) {
  if (++nalloc != fail_at) return 0;
  if (trace == fail_at) {   /* backtrace() allocates once, on its first call: set up in main */
    void *pcs[16];
    fprintf(stderr, "-- allocation %ld fails at:\n", fail_at);
    backtrace_symbols_fd(pcs, backtrace(pcs, 16), 2);
  }
  return 1;
}

void *__wrap_malloc(size_t n) {
  void *p = fail_now() ? NULL : __real_malloc(n);
  live_add(p);
  return p;
}

void *__wrap_calloc(size_t n, size_t size) {
  void *p = fail_now() ? NULL : __real_calloc(n, size);
  live_add(p);
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  if (fail_now()) return NULL;
  void *q = __real_realloc(p, n);
  if (q) { live_del(p); live_add(q); }
  return q;
}

void __wrap_free(void *p) {
  live_del(p);
  __real_free(p);
}

static long in_use(void) { return nlive; }

static FILE *devnull;

/* ---- compile + load + runtime + tests ---- */

typedef struct result {
  int            rc;       /* 0 ok, 1 policy errors, -1 out of memory */
  unsigned char *bytes;    /* the program, when rc == 0 */
  size_t         n;
} result;

static result compile(const char *path) {
  result r = {1, NULL, 0};
  lanec_result c;
  int st = lanec_compile(path, NULL, NULL, &c);
  if (st == LANEC_OK) {
    r.rc = 0;
    lane_error err;
    lane_runtime *rt = lane_runtime_new(c.prog, &err);
    if (!rt && err.code != LANE_ENOMEM) r.rc = 2;
    if (!rt) r.rc = -1;
    lane_runtime_free(rt);
    test_opts o = {1, 1, 0, 0, 1, NULL};
    sema_run_tests_with(c.unit, c.prog, &o, devnull);
    r.bytes = c.bytes;
    r.n = c.nbytes;
    c.bytes = NULL;
  } else if (st == LANEC_ENOMEM) {
    r.rc = -1;
  }
  lanec_print_diags(&c, devnull);
  lanec_result_free(&c);
  if (r.rc) { free(r.bytes); r.bytes = NULL; }
  return r;
}

static void oom_compile(const char *path) {
  fail_at = 0;
  nalloc = 0;
  result want = compile(path);
  long total = nalloc;
  int bad = 0, leaks = 0, clean = 0;
  if (want.rc != 0) { ok(0, "%s compiles without failures (rc %d)", path, want.rc); return; }
  long only = getenv("LANE_OOM_TRACE") ? atol(getenv("LANE_OOM_TRACE")) : 0;
  for (long k = only ? only : 1; k <= (only ? only : total); k++) {
    long before = in_use();
    fail_at = k;
    nalloc = 0;
    result got = compile(path);
    fail_at = 0;
    if (got.rc == 0) {
      if (got.n != want.n || memcmp(got.bytes, want.bytes, want.n) != 0) {
        if (bad++ < 3) diag("%s: allocation %ld failed, yet another program came out", path, k);
      }
    } else if (got.rc != -1) {
      if (bad++ < 3) diag("%s: allocation %ld failed: rc %d, not a clean out-of-memory", path, k, got.rc);
    } else {
      clean++;
    }
    free(got.bytes);
    if (in_use() != before && leaks++ < 3)
      diag("%s: allocation %ld failed: %ld blocks not given back", path, k, in_use() - before);
  }
  ok(!bad && !leaks, "%s: each of %ld allocations failed in turn: %d clean errors, no crash, "
     "no leak", path, total, clean);
  free(want.bytes);
}

/* ---- loading hostile and valid .lanec files ---- */

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *b = __real_malloc(1 << 20);
  *n = b ? fread(b, 1, 1 << 20, f) : 0;
  fclose(f);
  return b;
}

static void oom_load_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int files = 0, bad = 0;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name), n;
    char path[4096];
    if (len < 7 || strcmp(e->d_name + len - 6, ".lanec") != 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unsigned char *b = slurp(path, &n);
    if (!b) continue;
    lane_error want, got;
    nalloc = 0;
    lane_program *p = lane_load(b, n, &want);
    long total = nalloc;
    lane_program_free(p);
    for (long k = 1; k <= total; k++) {
      long before = in_use();
      fail_at = k;
      nalloc = 0;
      p = lane_load(b, n, &got);
      fail_at = 0;
      if (p || got.code != LANE_ENOMEM) {
        if (bad++ < 3) diag("%s: allocation %ld failed, yet %s", path, k, p ? "it loaded" : got.message);
      }
      lane_program_free(p);
      if (in_use() != before && bad++ < 3) diag("%s: allocation %ld failed: a leak", path, k);
    }
    free(b);
    files++;
  }
  if (d) closedir(d);
  ok(files > 0 && !bad, "%d hostile .lanec files: every allocation of lane_load failed in turn, "
     "each LANE_ENOMEM, no leak", files);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
  lane_regex_install(lane_regex_pcre2());   /* the policies' matches() */
  if (getenv("LANE_OOM_TRACE")) {
    void *pcs[2];
    backtrace(pcs, 2);
    trace = atol(getenv("LANE_OOM_TRACE"));
  }
  devnull = fopen("/dev/null", "w");
  if (!devnull) bail("cannot open /dev/null");
  const char *dir = "tests/golden/accept";
  char path[4096];
  DIR *d = opendir(dir);
  struct dirent *e;
  char *names[512];
  int n = 0;
  while (d && (e = readdir(d)) && n < 512) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".lane")) names[n++] = strdup(e->d_name);
  }
  if (d) closedir(d);
  qsort(names, (size_t)n, sizeof *names, by_name);
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (!getenv("LANE_OOM_POLICY") || strstr(path, getenv("LANE_OOM_POLICY"))) oom_compile(path);
    free(names[i]);
  }
  oom_load_dir("tests/golden/lanec");
  fclose(devnull);
  return done_testing();
}

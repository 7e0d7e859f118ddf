/*
 * main.c -- `make bench`: lane against hand-written C, Lua 5.4 and LuaJIT
 * on the reference policy, then scaling (scaling.c).
 *
 *   bench --src tests/bench --out build/bench [--lane build/lane]
 *         [--lua54 build/bench/lua54.so] [--luajit build/bench/luajit.so]
 *         [--passes N] [--no-scaling] [--profile N]
 *
 * 200,000 requests sampled from the Azure LLM inference traces with a
 * fixed seed are decided by every implementation; all must agree on every
 * decision (a checksum over rule, primary and fallbacks, and the bits of
 * the summed cost) or the bench exits 1. Times are ns per decision, the
 * median of the timed passes, decision loop only, in two modes for lane:
 * a request built from the shared breq form inside the loop, as a host
 * would per request, and requests prepared ahead (built untimed, chunk by
 * chunk, as a host that built them when it parsed the bodies). Ratios are
 * against the expert C (expert_c.c); ref_c.c is lane's own algorithm in C.
 * `--profile N` runs N lane decisions and nothing else (for perf/callgrind;
 * `--profile-x N` the expert C's, `--profile-c N` those of lane's algorithm
 * in C); tests/bench/callgrind.sh turns two such runs into instructions
 * per decision.
 *
 * malloc, calloc, realloc and free are interposed (as tests/unit/t_alloc.c
 * does) to count allocations during lane's decision loop and to measure
 * what lane_load keeps allocated.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "lane.h"

/* ---- allocation interposer ----------------------------------------- */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void  __libc_free(void *p);

static volatile int counting, sizing;
static volatile long nalloc;
static volatile long long netbytes;

void *malloc(size_t n) {
  void *p = __libc_malloc(n);
  if (counting) nalloc++;
  if (sizing && p) netbytes += (long long)malloc_usable_size(p);
  return p;
}
void *calloc(size_t n, size_t size) {
  void *p = __libc_calloc(n, size);
  if (counting) nalloc++;
  if (sizing && p) netbytes += (long long)malloc_usable_size(p);
  return p;
}
void *realloc(void *old, size_t n) {
  long long before = sizing && old ? (long long)malloc_usable_size(old) : 0;
  void *p = __libc_realloc(old, n);
  if (counting) nalloc++;
  if (sizing && p) netbytes += (long long)malloc_usable_size(p) - before;
  return p;
}
void free(void *p) {
  if (sizing && p) netbytes -= (long long)malloc_usable_size(p);
  __libc_free(p);
}

/* ---- the lane side ------------------------------------------------- */
static lane_program *P;
static lane_runtime *RT;
static int ROUTE;
static int F_TASK, F_TIER, F_TENANT, F_USER, F_IN, F_OUT, F_IMAGES, F_TOOLS, F_JSON, F_LAT;
static int TO_BENCH[LANE_MAX_MODELS];       /* lane model index -> bench index */
static breq *REQ;
static int NREQ = BENCH_NREQ;
static const uint64_t NOW_MS = 1764331200000ull;   /* 2025-11-28 12:00 UTC */

static uint64_t fixed_clock(void *ctx) { return *(const uint64_t *)ctx; }

static void die(const char *fmt, const char *a) {
  fprintf(stderr, "bench: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  exit(2);
}

static int field(const char *name) {
  int f = lane_field(P, name);
  if (f < 0) die("the program has no field %s", name);
  return f;
}

/* Sets the fields of q in r, an empty request of P. */
static inline void lane_fill(lane_request *r, const breq *q) {
  lane_set_str(r, F_TASK, q->task, q->ntask);
  lane_set_str(r, F_TIER, q->tier, q->ntier);
  lane_set_str(r, F_TENANT, q->tenant, q->ntenant);
  lane_set_str(r, F_USER, q->user, q->nuser);
  lane_set_int(r, F_IN, q->in);
  lane_set_int(r, F_OUT, q->out);
  if (q->images) lane_set_int(r, F_IMAGES, q->images);
  if (q->tools) lane_set_bool(r, F_TOOLS, 1);
  if (q->json) lane_set_bool(r, F_JSON, 1);
  if (q->latency_ms) lane_set_double(r, F_LAT, q->latency_ms);
}

static inline void lane_req(lane_request *r, const breq *q) {
  lane_request_init(r, P);
  lane_fill(r, q);
}

static inline void lane_fold(bsum *s, int rc, const lane_decision *d) {
  int c[LANE_MAX_CANDIDATES];
  if (rc != LANE_OK) { bsum_add(s, 0, 0, c, 0); return; }
  for (int k = 0; k < d->ncandidates; k++) c[k] = TO_BENCH[d->candidates[k]];
  bsum_add(s, d->rule, d->ncandidates, c, d->cost);
}

enum { MODE_ROUTE, MODE_TRACED_NULL, MODE_TRACED };
static long long STEPS;   /* VM steps of the first pass (lane_decision.steps) */

/* Decides requests [a, b), folding into s (not reset); returns the ns. */
static uint64_t lane_run(int mode, int a, int b, bsum *s, long *rules) {
  static __thread lane_event ev[256];
  lane_trace tr = { ev, 256, 0, 0 };
  uint64_t t0 = bench_ns();
  for (int i = a; i < b; i++) {
    lane_request r;
    lane_decision d;
    int rc;
    lane_req(&r, &REQ[i]);
    if (mode == MODE_ROUTE) rc = lane_decide_route(RT, ROUTE, &r, &d);
    else rc = lane_decide_traced(RT, ROUTE, &r, &d, mode == MODE_TRACED ? &tr : NULL);
    lane_fold(s, rc, &d);
    if (rules) {
      rules[rc == LANE_OK ? d.rule : 0]++;
      STEPS += rc == LANE_OK ? d.steps : 0;
    }
  }
  return bench_ns() - t0;
}

static uint64_t c_run(int a, int b, bsum *s) {
  uint64_t t0 = bench_ns();
  for (int i = a; i < b; i++) {
    bdec d;
    ref_c_decide(&REQ[i], &d);
    bsum_add(s, d.rule, d.n, d.c, d.cost);
  }
  return bench_ns() - t0;
}

static uint64_t x_run(int a, int b, bsum *s) {
  uint64_t t0 = bench_ns();
  for (int i = a; i < b; i++) {
    bdec d;
    expert_c_decide(&REQ[i], &d);
    bsum_add(s, d.rule, d.n, d.c, d.cost);
  }
  return bench_ns() - t0;
}

/* lane with the requests prepared ahead (as a host that built them when
 * it parsed the bodies): they are built for [a, b) untimed, then decided.
 * They are compact requests packed PREP_STRIDE bytes apart
 * (lane_request_size), as such a host would keep them. */
static unsigned char *PREP;
static size_t PREP_STRIDE;
static uint64_t lane_prepared_run(int a, int b, bsum *s) {
  for (int i = a; i < b; i++) {
    lane_request *r = lane_request_init_in(PREP + (size_t)(i - a) * PREP_STRIDE, PREP_STRIDE, P, NULL);
    if (!r) die("lane_request_init_in refused the %s", "prepared requests' stride");
    lane_fill(r, &REQ[i]);
  }
  uint64_t t0 = bench_ns();
  for (int i = a; i < b; i++) {
    lane_decision d;
    int rc = lane_decide_route(RT, ROUTE, (lane_request *)(PREP + (size_t)(i - a) * PREP_STRIDE), &d);
    lane_fold(s, rc, &d);
  }
  return bench_ns() - t0;
}

/* One pass over requests [a, b): returns ns per decision. */
static double lane_pass(int mode, int a, int b, bsum *s, long *rules) {
  bsum_init(s);
  return (double)lane_run(mode, a, b, s, rules) / (b - a);
}

static double c_pass(bsum *s) {
  bsum_init(s);
  return (double)c_run(0, NREQ, s) / NREQ;
}

/* One pass of every C-side implementation, interleaved in chunks of
 * 10,000 requests so that a load change on the shared machine hits all
 * alike (the order rotates by chunk): lane with requests built in the
 * loop, lane with them prepared ahead, C in lane's algorithm, the expert
 * C, and lane traced with a NULL trace; ns per decision of each. */
#define CHUNK 10000
enum { I_LANE, I_PREP, I_C, I_X, I_NULL, I_N };
static void interleaved_pass(double ns[I_N], bsum sum[I_N]) {
  uint64_t t[I_N] = {0};
  for (int k = 0; k < I_N; k++) bsum_init(&sum[k]);
  for (int a = 0; a < NREQ; a += CHUNK) {
    int b = a + CHUNK < NREQ ? a + CHUNK : NREQ;
    for (int k = 0; k < I_N; k++) {           /* rotate who goes first */
      int w = (a / CHUNK + k) % I_N;
      switch (w) {
      case I_LANE: t[w] += lane_run(MODE_ROUTE, a, b, &sum[w], NULL); break;
      case I_PREP: t[w] += lane_prepared_run(a, b, &sum[w]); break;
      case I_C: t[w] += c_run(a, b, &sum[w]); break;
      case I_X: t[w] += x_run(a, b, &sum[w]); break;
      default: t[w] += lane_run(MODE_TRACED_NULL, a, b, &sum[w], NULL); break;
      }
    }
  }
  for (int k = 0; k < I_N; k++) ns[k] = (double)t[k] / NREQ;
}

/* ---- setup --------------------------------------------------------- */

/* Warms the runtime: observed latencies for every model (enough calls for
 * live figures, except deepseek_reasoner, which keeps its prior), an open
 * breaker on gpt_4_1_mini, spend charged for 60 tenants (5 over the
 * limit, t5 exactly at it). Then copies what decisions will read. */
static void warm_and_mirror(bstate *st) {
  uint64_t rng = 0x5eed;
  int b = lane_budget(P, "tenant_daily");
  lane_request r;
  if (b < 0) die("no budget %s", "tenant_daily");
  memset(st, 0, sizeof *st);
  st->budget_limit = 200;
  for (int m = 0; m < lane_model_count(P); m++) {
    const bmodel *bm = &bench_models[TO_BENCH[m]];
    int calls = !strcmp(bm->name, "deepseek_reasoner") ? 10 : 60;
    for (int k = 0; k < calls; k++) {
      /* p50 .. 1.3 x p95 of the prior, skewed toward the low end */
      double u = (double)bench_below(&rng, 1000) / 1000.0;
      double lat = bm->p50 + (1.3 * bm->p95 - bm->p50) * u * u;
      lane_observe(RT, m, lat, LANE_CALL_OK);
    }
    if (!strcmp(bm->name, "gpt_4_1_mini"))
      for (int k = 0; k < 6; k++) lane_observe(RT, m, 0, LANE_CALL_SERVER_ERROR);
  }
  for (int t = 0; t < 60; t++) {
    uint8_t n;
    const char *name = bench_tenant(t, &n);
    double usd = t < 5 ? 250.0 : t == 5 ? 200.0 : 1 + (double)bench_below(&rng, 19899) / 100.0;
    lane_request_init(&r, P);
    lane_set_str(&r, F_TENANT, name, n);
    if (lane_charge(RT, &r, usd) != LANE_OK) die("lane_charge failed for %s", name);
  }
  for (int m = 0; m < lane_model_count(P); m++) {
    lane_live_stats ls;
    lane_model_stats(RT, m, &ls);
    if (ls.state == LANE_BREAKER_HALF_OPEN) die("unexpected half-open breaker on %s", lane_model_name(P, m));
    st->p95[TO_BENCH[m]] = ls.p95;
    st->healthy[TO_BENCH[m]] = ls.state == LANE_BREAKER_CLOSED;
  }
  for (int t = 0; t < BENCH_TENANTS; t++) {
    uint8_t n;
    const char *name = bench_tenant(t, &n);
    lane_budget_spent(RT, b, lane_budget_key_hash(P, b, name, n), &st->spent[t]);
  }
}

/* The catalog table must be the program's models: names, providers, ids,
 * latency priors and the cost of a few requests to the last bit. */
static int check_catalog(void) {
  static const int32_t probe[][2] = { {1000, 100}, {250000, 2000}, {123457, 7}, {0, 4096} };
  int bad = 0;
  if (lane_model_count(P) != BENCH_NMODELS) {
    fprintf(stderr, "bench: program has %d models, the C table %d\n", lane_model_count(P), BENCH_NMODELS);
    return -1;
  }
  for (int m = 0; m < BENCH_NMODELS; m++) {
    const bmodel *bm;
    lane_live_stats ls;
    TO_BENCH[m] = -1;
    for (int k = 0; k < BENCH_NMODELS; k++)
      if (!strcmp(bench_models[k].name, lane_model_name(P, m))) TO_BENCH[m] = k;
    if (TO_BENCH[m] < 0) {
      fprintf(stderr, "bench: model %s is not in the C table\n", lane_model_name(P, m));
      return -1;
    }
    bm = &bench_models[TO_BENCH[m]];
    lane_model_stats(RT, m, &ls);
    bad |= strcmp(bm->provider, lane_model_provider(P, m)) || strcmp(bm->id, lane_model_id(P, m)) ||
           ls.p50 != bm->p50 || ls.p95 != bm->p95;
    for (int k = 0; k < 4; k++) {
      lane_request r;
      int lng;
      double c;
      lane_request_init(&r, P);
      lane_set_int(&r, F_IN, probe[k][0]);
      lane_set_int(&r, F_OUT, probe[k][1]);
      lng = bm->long_above > 0 && probe[k][0] > bm->long_above;
      c = (double)probe[k][0] * (lng && bm->long_input > 0 ? bm->long_input : bm->input) +
          (double)probe[k][1] * (lng && bm->long_output > 0 ? bm->long_output : bm->output);
      bad |= c != lane_cost(P, &r, m);
    }
    if (bad) {
      fprintf(stderr, "bench: model %s differs between reference.lane and common.c\n", bm->name);
      return -1;
    }
  }
  return 0;
}

/* ---- threads ------------------------------------------------------- */
typedef struct thr { pthread_barrier_t *bar; int lane; bsum sum; } thr;

static void *thread_main(void *arg) {
  thr *t = arg;
  pthread_barrier_wait(t->bar);
  if (t->lane) lane_pass(MODE_ROUTE, 0, NREQ, &t->sum, NULL);
  else c_pass(&t->sum);
  return NULL;
}

/* Two threads each deciding every request (lane on one program and
 * runtime, or the C version); returns the wall time in ns per request of
 * one thread's share. Both sums must equal want. */
static double two_threads(int lane, const bsum *want, int *agree) {
  pthread_barrier_t bar;
  pthread_t th[2];
  thr t[2];
  uint64_t t0;
  pthread_barrier_init(&bar, NULL, 3);
  for (int i = 0; i < 2; i++) {
    t[i].bar = &bar;
    t[i].lane = lane;
    pthread_create(&th[i], NULL, thread_main, &t[i]);
  }
  pthread_barrier_wait(&bar);
  t0 = bench_ns();
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  t0 = bench_ns() - t0;
  pthread_barrier_destroy(&bar);
  for (int i = 0; i < 2; i++)
    if (t[i].sum.h != want->h || bsum_costbits(&t[i].sum) != bsum_costbits(want)) *agree = 0;
  return (double)t0 / NREQ;
}

/* ---- Lua ----------------------------------------------------------- */
typedef struct impl {
  char                 name[64];
  const bench_lua_api *api;      /* NULL: skipped or failed */
  void                *st;
  double               t[16];    /* ns per decision of each pass */
  int                  n;        /* passes done */
  bsum                 sum;      /* of the last pass */
  int                  failed;   /* an error (counts as a disagreement) */
  char                 note[320];
} impl;

static void lua_open(impl *im, const char *so, const char *label, const bench_lua_ctx *ctx) {
  void *h;
  bench_lua_entry_fn get;
  char err[256] = "";
  memset(im, 0, sizeof *im);
  snprintf(im->name, sizeof im->name, "%s", label);
  if (!so) { snprintf(im->note, sizeof im->note, "skipped: not built (no headers?)"); return; }
  if (!(h = dlopen(so, RTLD_NOW | RTLD_LOCAL))) {
    snprintf(im->note, sizeof im->note, "skipped: %s", dlerror());
    return;
  }
  *(void **)&get = dlsym(h, BENCH_LUA_ENTRY);
  if (!get) { snprintf(im->note, sizeof im->note, "skipped: no %s", BENCH_LUA_ENTRY); return; }
  im->api = get();
  snprintf(im->name, sizeof im->name, "%s", im->api->name);
  if (!(im->st = im->api->open(ctx, err, sizeof err))) {
    snprintf(im->note, sizeof im->note, "failed: %s", err);
    im->api = NULL;
    im->failed = 1;
  }
  /* the plugin stays loaded: LuaJIT may keep unwind tables registered */
}

/* One pass (timed when t is set). */
static void lua_pass(impl *im, int timed) {
  char err[256] = "";
  double ns;
  if (!im->api) return;
  ns = im->api->pass(im->st, &im->sum, err, sizeof err);
  if (ns < 0) {
    snprintf(im->note, sizeof im->note, "failed: %s", err);
    im->api->close(im->st);
    im->api = NULL;
    im->failed = 1;
    return;
  }
  if (timed && im->n < 16) im->t[im->n++] = ns;
}

/* ---- JavaScript under node (policy.js) ----------------------------- */
/* Writes the catalog, the mirrored state and the requests for policy.js,
 * runs it under node for `passes` timed passes and reads its line back:
 * ns per decision (or -1 with note saying why not) and its checksum. */
static double js_run(const char *src, const char *out, const bstate *st, int passes, bsum *sum,
                     char *note, size_t cap) {
  char path[4096], cmd[8400], line[256];
  FILE *f;
  if (system("command -v node >/dev/null 2>&1") != 0) {
    snprintf(note, cap, "skipped: node is not installed");
    return -1;
  }
  snprintf(path, sizeof path, "%s/js_input.txt", out);
  if (!(f = fopen(path, "w"))) {
    snprintf(note, cap, "failed: cannot write %.200s", path);
    return -1;
  }
  fprintf(f, "M %d\n", BENCH_NMODELS);
  for (int m = 0; m < BENCH_NMODELS; m++) {
    const bmodel *b = &bench_models[m];
    fprintf(f, "%s %.17g %.17g %lld %.17g %.17g %lld %lld %u %.17g %.17g %d\n", b->name, b->input,
            b->output, (long long)b->long_above, b->long_input, b->long_output,
            (long long)b->context, (long long)b->max_output, b->caps, b->quality, st->p95[m],
            st->healthy[m] ? 1 : 0);
  }
  fprintf(f, "T %d\n", BENCH_TENANTS);
  for (int t = 0; t < BENCH_TENANTS; t++) {
    uint8_t n;
    fprintf(f, "%s %.17g\n", bench_tenant(t, &n), st->spent[t]);
  }
  fprintf(f, "L %.17g\nR %d\n", st->budget_limit, NREQ);
  for (int i = 0; i < NREQ; i++) {
    const breq *q = &REQ[i];
    fprintf(f, "%.*s %.*s %.*s %.*s %d %d %d %d %d %d\n", q->ntask, q->task, q->ntier, q->tier,
            q->ntenant, q->tenant, q->nuser, q->user, q->in, q->out, q->images, q->tools, q->json,
            q->latency_ms);
  }
  if (fclose(f) != 0) {
    snprintf(note, cap, "failed: cannot write %.200s", path);
    return -1;
  }
  snprintf(cmd, sizeof cmd, "node %s/policy.js %s %d", src, path, passes);
  FILE *p = popen(cmd, "r");
  double ns = -1;
  unsigned long long h = 0, cb = 0;
  if (p && fgets(line, sizeof line, p) && sscanf(line, "ns %lf h %llx cost %llx", &ns, &h, &cb) == 3) {
    union { uint64_t u; double d; } x = { cb };
    sum->h = h;
    sum->cost = x.d;
  } else {
    ns = -1;
    snprintf(note, cap, "failed: %.200s gave no result", cmd);
  }
  if (p && pclose(p) != 0 && ns >= 0) {
    ns = -1;
    snprintf(note, cap, "failed: %.200s exited with an error", cmd);
  }
  return ns;
}

/* ---- main ---------------------------------------------------------- */
static void print_row(const char *name, double ns, double ns_c, const bsum *s, const bsum *ref) {
  printf("%-26s %12.1f %7.2fx  %016llx %016llx%s\n", name, ns, ns / ns_c, (unsigned long long)s->h,
         (unsigned long long)bsum_costbits(s),
         s->h == ref->h && bsum_costbits(s) == bsum_costbits(ref) ? "" : "  MISMATCH");
}

#define SAME(a, b) ((a).h == (b).h && bsum_costbits(&(a)) == bsum_costbits(&(b)))

int main(int argc, char **argv) {
  const char *src = "tests/bench", *out = "build/bench", *lane_cmd = NULL;
  const char *so54 = NULL, *sojit = NULL;
  int passes = 5, scaling = 1, agree = 1, profile_c = 0;
  long profile = 0;
  char path[4096], loadavg[64] = "?";
  unsigned char *bytes;
  size_t nbytes;
  long long prog_bytes, rt_bytes;
  lane_error err;
  lane_runtime_options ro;
  bstate st;
  double t_lane[16], t_null[16], t_c[16], t_x[16], t_prep[16], t_traced[16], r_two[16], r_two_c[16];
  double ns_lane, ns_null, ns_c, ns_x, ns_prep, ns_tr, ns_lua[2], ns_js, two, two_c, compile_ms;
  char js_note[320] = "";
  bsum s_js = {0, 0};
  long rules[64] = {0}, allocs;
  bsum s_lane, s_c, s_null, s_tr, s_x, s_prep;
  impl lua[2];
  scale_result sc;
  uint64_t t0;
  FILE *f;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--no-scaling")) { scaling = 0; continue; }
    if (!v) die("option %s needs a value", a);
    if (!strcmp(a, "--src")) src = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--lane")) lane_cmd = v;
    else if (!strcmp(a, "--lua54")) so54 = v;
    else if (!strcmp(a, "--luajit")) sojit = v;
    else if (!strcmp(a, "--passes")) passes = atoi(v);
    else if (!strcmp(a, "--profile")) profile = atol(v);
    else if (!strcmp(a, "--profile-c")) { profile = atol(v); profile_c = 1; }
    else if (!strcmp(a, "--profile-x")) { profile = atol(v); profile_c = 2; }
    else die("unknown option %s", a);
    i++;
  }
  if (passes < 5) passes = 5;
  if (passes > 15) passes = 15;
  mkdir(out, 0777);
  if ((f = fopen("/proc/loadavg", "r"))) {
    if (!fgets(loadavg, sizeof loadavg, f)) strcpy(loadavg, "?");
    loadavg[strcspn(loadavg, "\n")] = 0;
    fclose(f);
  }

  if (bench_traces_load(src) != 0) return 2;
  REQ = malloc(sizeof *REQ * BENCH_NREQ);
  bench_requests(REQ, NREQ, BENCH_SEED);

  /* compile reference.lane in-process, load it, keep the .lanec */
  snprintf(path, sizeof path, "%s/reference.lane", src);
  t0 = bench_ns();
  if (bench_compile(path, NULL, &bytes, &nbytes) != 0) die("cannot compile %s", path);
  compile_ms = (double)(bench_ns() - t0) / 1e6;
  snprintf(path, sizeof path, "%s/reference.lanec", out);
  if (!(f = fopen(path, "wb")) || fwrite(bytes, 1, nbytes, f) != nbytes) die("cannot write %s", path);
  fclose(f);
  netbytes = 0;
  sizing = 1;
  P = lane_load(bytes, nbytes, &err);
  sizing = 0;
  prog_bytes = netbytes;
  if (!P) die("lane_load: %s", err.message);
  memset(&ro, 0, sizeof ro);
  ro.clock = fixed_clock;
  ro.clock_ctx = (void *)&NOW_MS;
  netbytes = 0;
  sizing = 1;
  RT = lane_runtime_new_with(P, &ro, &err);
  sizing = 0;
  rt_bytes = netbytes;
  if (!RT) die("lane_runtime_new: %s", err.message);
  if ((ROUTE = lane_route(P, "ref")) < 0) die("no route %s", "ref");
  F_TASK = field("task"); F_TIER = field("tier"); F_TENANT = field("tenant");
  F_USER = field("user"); F_IN = field("input_tokens"); F_OUT = field("max_output_tokens");
  F_IMAGES = field("images"); F_TOOLS = field("tools"); F_JSON = field("json");
  F_LAT = field("latency_budget");
  if (check_catalog() != 0) return 2;
  warm_and_mirror(&st);
  ref_c_init(&st);
  expert_c_init(&st);
  PREP_STRIDE = (lane_request_size(P, 0) + 7) & ~(size_t)7;
  if (!(PREP = malloc(PREP_STRIDE * CHUNK))) die("out of %s", "memory");

  if (profile > 0) {      /* decisions only, for perf / callgrind */
    bsum s;
    for (long left = profile; left > 0; left -= NREQ) {
      int n = left < NREQ ? (int)left : NREQ;
      if (profile_c == 1) for (int i = 0; i < n; i++) { bdec d; ref_c_decide(&REQ[i], &d); }
      else if (profile_c == 2) for (int i = 0; i < n; i++) { bdec d; expert_c_decide(&REQ[i], &d); }
      else lane_pass(MODE_ROUTE, 0, n, &s, NULL);
    }
    printf("profile: %ld %s decisions\n", profile,
           profile_c == 1 ? "C (lane's algorithm)" : profile_c == 2 ? "expert C" : "lane");
    return 0;
  }

  printf("lane bench: %d requests (seed 0x%x) sampled from %s/trace_{code,conv}.csv\n",
         NREQ, BENCH_SEED, src);
  printf("policy %s/reference.lane: %d models, route ref with %d rules; "
         "compiled in-process in %.1f ms\n", src, lane_model_count(P),
         lane_rule_count(P, ROUTE), compile_ms);
  printf("machine load before the run: %s (a shared machine: figures move with it)\n", loadavg);
  fflush(stdout);

  {
    bench_lua_ctx lctx = { REQ, NREQ, bench_models, BENCH_NMODELS, &st, src };
    lua_open(&lua[0], so54, "Lua 5.4", &lctx);
    lua_open(&lua[1], sojit, "LuaJIT", &lctx);
    /* one warm-up pass each, then the timed passes interleaved */
    lane_pass(MODE_ROUTE, 0, NREQ, &s_lane, rules);
    c_pass(&s_c);
    lua_pass(&lua[0], 0);
    lua_pass(&lua[1], 0);
    for (int p = 0; p < passes; p++) {
      double ns[I_N];
      bsum sums[I_N];
      interleaved_pass(ns, sums);
      t_lane[p] = ns[I_LANE], t_prep[p] = ns[I_PREP], t_c[p] = ns[I_C], t_x[p] = ns[I_X];
      t_null[p] = ns[I_NULL];
      s_lane = sums[I_LANE], s_prep = sums[I_PREP], s_c = sums[I_C], s_x = sums[I_X];
      s_null = sums[I_NULL];
      lua_pass(&lua[0], 1);
      lua_pass(&lua[1], 1);
    }
    for (int p = 0; p < 3; p++) t_traced[p] = lane_pass(MODE_TRACED, 0, NREQ, &s_tr, NULL);
    ns_js = js_run(src, out, &st, passes, &s_js, js_note, sizeof js_note);
    for (int k = 0; k < 2; k++) {
      ns_lua[k] = lua[k].api ? bench_median(lua[k].t, lua[k].n) : -1;
      if (lua[k].api) lua[k].api->close(lua[k].st);
    }
  }
  ns_lane = bench_median(t_lane, passes);
  ns_c = bench_median(t_c, passes);
  ns_x = bench_median(t_x, passes);
  ns_prep = bench_median(t_prep, passes);
  ns_null = bench_median(t_null, passes);
  ns_tr = bench_median(t_traced, 3);

  /* allocations in one full pass */
  {
    bsum s;
    nalloc = 0;
    counting = 1;
    lane_pass(MODE_ROUTE, 0, NREQ, &s, NULL);
    counting = 0;
    allocs = nalloc;
  }

  /* two threads on one program and runtime, each pass against a
   * single-thread pass just before it; the C version as the control */
  {
    int ta = 1;
    for (int p = 0; p < passes; p++) {
      bsum s;
      double one = lane_pass(MODE_ROUTE, 0, NREQ, &s, NULL);
      r_two[p] = 2 * one / two_threads(1, &s_lane, &ta);
      one = c_pass(&s);
      r_two_c[p] = 2 * one / two_threads(0, &s_c, &ta);
    }
    two = bench_median(r_two, passes);
    two_c = bench_median(r_two_c, passes);
    if (!ta) printf("two-thread decisions: MISMATCH\n");
    agree &= ta;
  }

  printf("decisions by rule:");
  for (int k = 0; k <= lane_rule_count(P, ROUTE); k++)
    if (rules[k]) printf(" %d:%.1f%%", k, 100.0 * rules[k] / NREQ);
  printf("  (0 = no model)\n");
  printf("VM steps per decision (instructions, filter code included, and string work): %.1f\n",
         (double)STEPS / NREQ);

  printf("\n%-26s %12s %8s  %-16s %s\n", "implementation", "ns/decision", "vs xC", "checksum",
         "cost bits");
  print_row("expert C (masks, ctz)", ns_x, ns_x, &s_x, &s_c);
  print_row("C, lane's algorithm", ns_c, ns_x, &s_c, &s_c);
  print_row("lane (requests prepared)", ns_prep, ns_x, &s_prep, &s_c);
  print_row("lane (built in the loop)", ns_lane, ns_x, &s_lane, &s_c);
  print_row("lane (traced, NULL trace)", ns_null, ns_x, &s_null, &s_c);
  print_row("lane (traced, 256 events)", ns_tr, ns_x, &s_tr, &s_c);
  agree &= SAME(s_lane, s_c) && SAME(s_null, s_c) && SAME(s_tr, s_c) && SAME(s_x, s_c) &&
           SAME(s_prep, s_c);
  for (int k = 0; k < 2; k++) {
    if (ns_lua[k] < 0) {
      printf("%-26s %12s %8s  %s\n", lua[k].name, "-", "-", lua[k].note);
      agree &= !lua[k].failed;
      continue;
    }
    print_row(lua[k].name, ns_lua[k], ns_x, &lua[k].sum, &s_c);
    agree &= SAME(lua[k].sum, s_c);
  }
  if (ns_js < 0) {
    printf("%-26s %12s %8s  %s\n", "JavaScript (node)", "-", "-", js_note);
    agree &= strncmp(js_note, "failed", 6) != 0;
  } else {
    print_row("JavaScript (node)", ns_js, ns_x, &s_js, &s_c);
    agree &= SAME(s_js, s_c);
  }
  printf("(median of %d passes of %d decisions each; the C versions and lane's three modes\n"
         " interleaved in chunks of %d requests, Lua and node by pass after a warm-up pass; Lua "
         "pushes 10 arguments\n and makes a lua_pcall per request; node decides from "
         "requests it parsed ahead)\n", passes, NREQ, CHUNK);

  printf("\nallocations per decision (lane): %.6f (%ld in %d decisions)\n",
         (double)allocs / NREQ, allocs, NREQ);
  {   /* what reading the clock costs: a decision reads it once */
    volatile uint64_t sink = 0;
    double cr[5], cc[5];
    for (int k = 0; k < 5; k++) {
      uint64_t c0 = bench_ns();
      for (int i = 0; i < 200000; i++) sink += lane_clock_realtime(NULL);
      uint64_t c1 = bench_ns();
      for (int i = 0; i < 200000; i++) sink += lane_clock_coarse(NULL);
      cr[k] = (double)(c1 - c0) / 200000;
      cc[k] = (double)(bench_ns() - c1) / 200000;
    }
    (void)sink;
    printf("the clock, read once per decision (the bench's runtime has a fixed one): "
           "lane_clock_realtime %.1f ns, lane_clock_coarse %.1f ns\n",
           bench_median(cr, 5), bench_median(cc, 5));
  }
  printf("footprint: reference.lanec %zu bytes; program allocation %lld bytes; "
         "runtime %lld bytes\n", nbytes, prog_bytes, rt_bytes);
  printf("request: %zu bytes compact (lane_request_size, %d fields; the prepared mode's), "
         "%zu bytes as a lane_request variable\n", lane_request_size(P, 0), lane_field_count(P),
         sizeof(lane_request));
  printf("2 threads on one program: %.2fx the throughput of one thread "
         "(hand-written C on this machine: %.2fx)\n", two, two_c);
  fflush(stdout);

  if (bench_swap(bytes, nbytes) != 0) agree = 0;
  fflush(stdout);
  if (bench_fleet(bytes, nbytes) != 0) agree = 0;
  fflush(stdout);

  if (scaling) {
    printf("\nscaling (lane):\n");
    fflush(stdout);
    if (bench_scaling(out, lane_cmd, &sc) != 0) agree = 0;
  }

  printf("\ntargets (measured, not asserted):\n");
  printf("  lane <= 2x expert C, prepared:     %.2fx  %s\n", ns_prep / ns_x,
         ns_prep <= 2 * ns_x ? "met" : "MISSED");
  printf("  lane <= 2x expert C, built in loop: %.2fx  %s\n", ns_lane / ns_x,
         ns_lane <= 2 * ns_x ? "met" : "MISSED");
  printf("  (lane against C in lane's own algorithm: %.2fx)\n", ns_lane / ns_c);
  if (ns_js > 0)
    printf("  lane >= 3x faster than node:       %.2fx  %s\n", ns_js / ns_prep,
           ns_js >= 3 * ns_prep ? "met" : "MISSED");
  else printf("  lane >= 3x faster than node:       skipped (%s)\n", js_note);
  if (ns_lua[1] > 0)
    printf("  lane >= 3x faster than LuaJIT:     %.2fx  %s\n", ns_lua[1] / ns_lane,
           ns_lua[1] >= 3 * ns_lane ? "met" : "MISSED");
  else printf("  lane >= 3x faster than LuaJIT:     skipped (no LuaJIT)\n");
  if (ns_lua[0] > 0)
    printf("  lane >= 20x faster than Lua 5.4:   %.1fx  %s\n", ns_lua[0] / ns_lane,
           ns_lua[0] >= 20 * ns_lane ? "met" : "MISSED");
  else printf("  lane >= 20x faster than Lua 5.4:   skipped (no Lua 5.4)\n");
  printf("  --explain off costs nothing:       traced(NULL) / route = %.3f  %s\n",
         ns_null / ns_lane, ns_null <= 1.03 * ns_lane ? "met (within 3%)" : "MISSED");
  if (scaling && sc.nrules >= 3) {
    double r10 = 0, r1000 = 0, c10000 = -1;
    for (int k = 0; k < sc.nrules; k++) {
      if (sc.rules[k] == 10) r10 = sc.rules_ns[k];
      if (sc.rules[k] == 1000) r1000 = sc.rules_ns[k];
      if (sc.rules[k] == 10000) c10000 = sc.rules_compile_ms[k];
    }
    printf("  1,000 rules within 2x of 10 rules: %.2fx  %s\n", r1000 / r10,
           r1000 <= 2 * r10 ? "met" : "MISSED");
    printf("  10,000 rules compile in < 1 s:     %.0f ms  %s\n", c10000,
           c10000 >= 0 && c10000 < 1000 ? "met" : "MISSED");
  }
  printf("  2 threads >= 1.8x one thread:      %.2fx  %s\n", two, two >= 1.8 ? "met" : "MISSED");
  printf("  0 allocations per decision:        %ld  %s\n", allocs, allocs == 0 ? "met" : "MISSED");

  snprintf(path, sizeof path, "%s/results.json", out);
  if ((f = fopen(path, "w"))) {
    fprintf(f, "{\n  \"requests\": %d, \"passes\": %d, \"loadavg\": \"%s\",\n", NREQ, passes, loadavg);
    fprintf(f, "  \"ns_per_decision\": {\"expert_c\": %.2f, \"c\": %.2f, \"lane\": %.2f, "
               "\"lane_prepared\": %.2f, \"lane_traced_null\": %.2f, "
               "\"lane_traced\": %.2f, \"lua54\": %.2f, \"luajit\": %.2f, \"node\": %.2f},\n",
            ns_x, ns_c, ns_lane, ns_prep, ns_null, ns_tr, ns_lua[0], ns_lua[1], ns_js);
    fprintf(f, "  \"agree\": %s, \"checksum\": \"%016llx\", \"cost_bits\": \"%016llx\",\n",
            agree ? "true" : "false", (unsigned long long)s_c.h,
            (unsigned long long)bsum_costbits(&s_c));
    fprintf(f, "  \"allocations\": %ld, \"lanec_bytes\": %zu, \"program_bytes\": %lld, "
               "\"runtime_bytes\": %lld,\n", allocs, nbytes, prog_bytes, rt_bytes);
    fprintf(f, "  \"two_thread_speedup\": %.3f, \"two_thread_speedup_c\": %.3f\n}\n", two, two_c);
    fclose(f);
    printf("\nresults: %s\n", path);
  }
  lane_runtime_free(RT);
  lane_program_free(P);
  free(bytes);
  if (!agree) {
    printf("\nFAIL: the implementations disagree (see MISMATCH above)\n");
    return 1;
  }
  printf("\nall implementations agree on all %d decisions\n", NREQ);
  return 0;
}

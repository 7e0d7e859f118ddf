/*
 * t_runtime.c -- the live runtime through the public API, with policies
 * compiled in-process (sema + emit + lane_load) so the compiler and the VM
 * are tested together, on a fake clock:
 *
 *   - latency quantiles against exact quantiles of a recorded series
 *     (tests/runtime/azure_conv_4000.csv), whole and per sliding window;
 *   - window expiry, min_samples, error rates;
 *   - the circuit breaker's state machine, step by step;
 *   - fastest() following live p95, unhealthy models routed around;
 *   - budgets: exact nano-dollar spend, fixed and rolling windows, the
 *     overflow account, budget.X.used capping a tenant, save/load and
 *     every way a saved file is refused;
 *   - splits and sampled shadows over 100,000 keys, candidate lists;
 *   - snapshots: JSON that parses, and replays (in-process and through
 *     `lane eval --state`) that reproduce live decisions.
 *
 * Checks that once found bugs (kept as regression tests); each
 * names the bug.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sem.h"
#include "sema.h"
#include "state.h"
#include "tap.h"
#include "unit/compile.h"
#include "reqspec.h"
#include "vm.h"

/* ---------------------------------------------------------------------
 * Harness
 * ------------------------------------------------------------------- */


#define T0 1700006400000ull   /* 2023-11-15 00:00:00 UTC: a day boundary */
#define HOUR 3600000ull
#define DAY 86400000ull

static uint64_t NOW = T0;   /* the fake clock */
static uint64_t fake_clock(void *ctx) { (void)ctx; return NOW; }

static lane_program *P;
static lane_runtime *RT;
static lane_decision D;
static char DIAG[16384];

static void reset(void) {
  lane_runtime_free(RT);
  lane_program_free(P);
  RT = NULL;
  P = NULL;
}

/* Options with the fake clock; zero fields are the defaults. */
static lane_runtime_options opts(uint32_t window_ms, uint32_t min_samples, uint32_t failures,
                                 uint32_t cooldown_ms, uint32_t keys) {
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fake_clock;
  o.window_ms = window_ms;
  o.min_samples = min_samples;
  o.breaker_failures = failures;
  o.breaker_cooldown_ms = cooldown_ms;
  o.budget_keys = keys;
  return o;
}

/* Compiles src to a program (no runtime); NULL with DIAG on errors. */
static lane_program *compile_prog(const char *src) { return test_compile(src, DIAG, sizeof DIAG); }

/* Compiles src and makes P and RT with the options; bails on failure:
 * every policy here is meant to compile. */
static void setup(const char *src, lane_runtime_options o) {
  lane_error err;
  reset();
  P = compile_prog(src);
  if (!P) bail("policy does not compile:\n%s\n%s", src, DIAG);
  RT = lane_runtime_new_with(P, &o, &err);
  if (!RT) bail("runtime: %s", err.message);
}

static int mi(const char *name) {
  for (int i = 0; i < lane_model_count(P); i++)
    if (!strcmp(lane_model_name(P, i), name)) return i;
  bail("no model %s", name);
  return -1;
}

static int decide(const char *route, const char *spec) {
  lane_request r;
  set_fields(&r, P, spec);
  return lane_decide(RT, route, &r, &D);
}

static int charge(const char *spec, double dollars) {
  lane_request r;
  set_fields(&r, P, spec);
  return lane_charge(RT, &r, dollars);
}

static const char *primary(void) {
  return D.ncandidates > 0 ? lane_model_name(P, D.candidates[0]) : "(none)";
}

/* All candidates, space-separated. */
static const char *cands(void) {
  static char buf[1024];
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < D.ncandidates; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "",
                            lane_model_name(P, D.candidates[i]));
  return buf;
}

static lane_live_stats stats(const char *model) {
  lane_live_stats s;
  memset(&s, 0, sizeof s);
  if (lane_model_stats(RT, mi(model), &s) != LANE_OK) bail("lane_model_stats %s", model);
  return s;
}

static void observe_n(const char *model, int n, double ms, int status) {
  int m = mi(model);
  for (int i = 0; i < n; i++) lane_observe(RT, m, ms, status);
}

/* Spend of a string key in budget b, in nano-dollars. */
static long long spent_nanos(const char *budget, const char *key) {
  int b = lane_budget(P, budget);
  double d = -1;
  if (b < 0) bail("no budget %s", budget);
  if (lane_budget_spent(RT, b, lane_budget_key_hash(P, b, key, strlen(key)), &d) != LANE_OK)
    return -1;
  return llround(d * 1e9);
}

static const char *build_dir(void) {
  const char *b = getenv("BUILD");
  return b && *b ? b : "build";
}

/* A scratch path under $BUILD/tests/runtime. */
static const char *scratch(const char *name) {
  static char path[4][1024];
  static int k;
  char dir[900];
  snprintf(dir, sizeof dir, "%s/tests", build_dir());
  mkdir(dir, 0777);
  snprintf(dir, sizeof dir, "%s/tests/runtime", build_dir());
  mkdir(dir, 0777);
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
  return path[k];
}

/* The runtime's snapshot in a malloc'd string. */
static char *snapshot(const lane_runtime *rt) {
  size_t n = lane_runtime_snapshot(rt, NULL, 0);
  char *s = malloc(n + 1);
  if (!s) bail("oom");
  if (lane_runtime_snapshot(rt, s, n + 1) != n) bail("snapshot length changed");
  return s;
}

/* The snapshot with each budget's keys sorted (a loaded table may hold
 * the same keys in other slots), as one string. */
static char *canon_snapshot(const lane_runtime *rt) {
  char *s = snapshot(rt);
  json_error_t je;
  json_t *root = json_loads(s, 0, &je);
  free(s);
  if (!root) bail("snapshot does not parse: %s", je.text);
  size_t i;
  json_t *b;
  json_array_foreach(json_object_get(root, "budgets"), i, b) {
    json_t *keys = json_object_get(b, "keys");
    size_t n = json_array_size(keys);
    for (size_t x = 0; x + 1 < n; x++)   /* selection sort by key_hash */
      for (size_t y = x + 1; y < n; y++) {
        const char *hx = json_string_value(json_object_get(json_array_get(keys, x), "key_hash"));
        const char *hy = json_string_value(json_object_get(json_array_get(keys, y), "key_hash"));
        if (strcmp(hx, hy) > 0) {
          json_t *tx = json_incref(json_array_get(keys, x)), *ty = json_incref(json_array_get(keys, y));
          json_array_set_new(keys, x, ty);
          json_array_set_new(keys, y, tx);
        }
      }
  }
  char *out = json_dumps(root, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
  json_decref(root);
  return out;
}

/* ---------------------------------------------------------------------
 * The recorded series
 * ------------------------------------------------------------------- */
#define FIRST_TOKEN_MS 250.0
#define PER_TOKEN_MS   18.0
#define FAST_FIRST_MS  80.0
#define FAST_TOKEN_MS  6.0

typedef struct row { uint64_t t_ms; int ctx, gen; } row;
static row ROWS[5000];
static int NROWS;

static void load_series(void) {
  const char *path = getenv("LANE_RUNTIME_FIXTURE");
  FILE *f = fopen(path ? path : "tests/runtime/azure_conv_4000.csv", "r");
  char line[256];
  if (!f) bail("cannot open the latency fixture tests/runtime/azure_conv_4000.csv "
               "(run from the repository root)");
  while (fgets(line, sizeof line, f) && NROWS < (int)(sizeof ROWS / sizeof *ROWS)) {
    int y, mo, d, h, mi_, ctx, gen;
    double s;
    if (sscanf(line, "%d-%d-%d %d:%d:%lf,%d,%d", &y, &mo, &d, &h, &mi_, &s, &ctx, &gen) != 8)
      continue;   /* the header */
    ROWS[NROWS].t_ms = (uint64_t)(sem_days(y, mo, d) * 86400000 +
                                  (int64_t)h * 3600000 + (int64_t)mi_ * 60000) +
                       (uint64_t)(s * 1000.0);
    ROWS[NROWS].ctx = ctx;
    ROWS[NROWS].gen = gen;
    NROWS++;
  }
  fclose(f);
}

static double lat_slow(const row *r) { return FIRST_TOKEN_MS + r->gen * PER_TOKEN_MS; }
static double lat_fast(const row *r) { return FAST_FIRST_MS + r->gen * FAST_TOKEN_MS; }

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The exact q-quantile (nearest rank) of v[0..n), sorting v. */
static double exact_q(double *v, int n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmp_dbl);
  int k = (int)ceil(q * n) - 1;
  return v[k < 0 ? 0 : k];
}

#define LAT_POLICY \
  "model slow { input $1/Mtok output $1/Mtok p50 1s p95 3s }\n" \
  "model fast { input $2/Mtok output $2/Mtok p50 100ms p95 300ms }\n" \
  "route q { when req.latency_budget > 0ms -> cheapest(models where p95 <= req.latency_budget)\n" \
  "          otherwise -> cheapest(models) }\n" \
  "route qs { require p95 <= req.latency_budget  otherwise -> slow }\n" \
  "route qf { require p95 <= req.latency_budget  otherwise -> fast }\n"

static double worst_err;   /* largest relative error seen */
static double whole_max[2];   /* largest error of the whole-series p50, p95 */
static const char *whole_worst[2] = {"", ""};

/* An estimate against the exact quantile. Linear interpolation inside a
 * 1/8-octave bucket is guaranteed only within the bucket's width (12.5%);
 * the documented "within about 6%" (vm/README.md) and the issue's ~7% are
 * checked as TODO: real traces have spikes (many calls of one length)
 * that break the uniform-within-bucket assumption (see the regression checks in the
 * report: rows 0-499 p50 is 7.2% off). */
static void check_q(const char *what, double est, double exact, int is95) {
  double e = fabs(est - exact) / exact;
  if (e > worst_err) worst_err = e;
  if (e > whole_max[is95]) {
    static char w[2][128];
    whole_max[is95] = e;
    snprintf(w[is95], sizeof w[is95], "%s", what);
    whole_worst[is95] = w[is95];
  }
  ok(e <= 0.125, "%s: estimate %.1f ms vs exact %.1f ms (%.2f%% off): within one bucket (12.5%%)",
     what, est, exact, 100 * e);
}

/* The whole series in one window: p50 and p95 against exact quantiles. */
static void test_quantiles_whole(void) {
  static double v[5000];
  static const struct { const char *name; int from, to; int fast; } series[] = {
    {"rows 0-499, slow", 0, 500, 0},     {"rows 0-999, slow", 0, 1000, 0},
    {"rows 0-3999, slow", 0, 4000, 0},   {"rows 2000-3999, slow", 2000, 4000, 0},
    {"rows 0-3999, fast", 0, 4000, 1},   {"rows 1000-1199, fast", 1000, 1200, 1},
  };
  for (size_t k = 0; k < sizeof series / sizeof *series; k++) {
    const char *model = series[k].fast ? "fast" : "slow";
    int n = 0;
    setup(LAT_POLICY, opts(4000000000u, 0, 0, 0, 0));   /* one big window */
    NOW = T0;
    for (int i = series[k].from; i < series[k].to && i < NROWS; i++) {
      double ms = series[k].fast ? lat_fast(&ROWS[i]) : lat_slow(&ROWS[i]);
      lane_observe(RT, mi(model), ms, LANE_CALL_OK);
      v[n++] = ms;
    }
    lane_live_stats s = stats(model);
    char what[128];
    is_int(s.samples, n, "%s: %d samples in the window", series[k].name, n);
    double e50 = exact_q(v, n, 0.50), e95 = exact_q(v, n, 0.95);
    snprintf(what, sizeof what, "%s p50", series[k].name);
    check_q(what, s.p50, e50, 0);
    snprintf(what, sizeof what, "%s p95", series[k].name);
    check_q(what, s.p95, e95, 1);
    /* Policies read the same figure: p95 <= budget admits the model just
     * above its estimate and not just below. */
    const char *route = series[k].fast ? "qf" : "qs";
    char spec[128];
    snprintf(spec, sizeof spec, "latency_budget=%.17g", s.p95 * 1.000001);
    is_int(decide(route, spec), LANE_OK, "%s: require p95 <= a budget just above the estimate "
           "admits %s", series[k].name, model);
    snprintf(spec, sizeof spec, "latency_budget=%.17g", s.p95 * 0.999999);
    is_int(decide(route, spec), LANE_ENOMATCH, "%s: ...and a budget just below excludes it",
           series[k].name);
  }
  ok(whole_max[1] <= 0.07, "every whole-series p95 within 7%% of the exact quantile (worst "
     "%.2f%%: %s)", 100 * whole_max[1], whole_worst[1]);
  ok(whole_max[0] <= 0.07, "every whole-series p50 within 7%% of the exact quantile (worst "
       "%.2f%%: %s; regression of: linear interpolation inside a bucket is only bounded by its 12.5%% "
       "width, not the documented ~6%%)", 100 * whole_max[0], whole_worst[0]);
}

/* The trace replayed on its own timestamps through a 60 s window: every
 * 200 calls the estimate is compared with the exact quantiles of the calls
 * the window holds (the six 10 s slots ending at now). */
static void test_quantiles_sliding(void) {
  static double v[5000];
  int checks = 0, bad50 = 0, bad95 = 0, badn = 0, wide = 0;
  double max50 = 0, max95 = 0, sum50 = 0, sum95 = 0;
  const uint64_t slot = 10000;
  setup(LAT_POLICY, opts(60000, 20, 0, 0, 0));
  int m = mi("slow");
  for (int i = 0; i < NROWS; i++) {
    NOW = ROWS[i].t_ms;
    lane_observe(RT, m, lat_slow(&ROWS[i]), LANE_CALL_OK);
    if (i % 50 != 49) continue;
    uint64_t cur = NOW / slot;
    int n = 0;
    for (int j = i; j >= 0 && ROWS[j].t_ms / slot + 6 > cur; j--) v[n++] = lat_slow(&ROWS[j]);
    lane_live_stats s = stats("slow");
    if ((int)s.samples != n) badn++;
    if (n < 20) continue;
    double e50 = exact_q(v, n, 0.5), e95 = exact_q(v, n, 0.95);
    double r50 = fabs(s.p50 - e50) / e50, r95 = fabs(s.p95 - e95) / e95;
    checks++;
    sum50 += r50;
    sum95 += r95;
    if (r50 > max50) max50 = r50;
    if (r95 > max95) max95 = r95;
    if (r50 > 0.125 || r95 > 0.125) wide++;
    if (r50 > 0.07) { bad50++; diag("t=%llu: p50 %.1f vs %.1f", (unsigned long long)NOW, s.p50, e50); }
    if (r95 > 0.07) { bad95++; diag("t=%llu: p95 %.1f vs %.1f", (unsigned long long)NOW, s.p95, e95); }
  }
  ok(checks >= 60, "sliding window: %d checkpoints over %d calls", checks, NROWS);
  is_int(badn, 0, "sliding window: samples == calls in the six slots ending now, every checkpoint");
  is_int(wide, 0, "sliding window: p50 and p95 within one bucket (12.5%%) at every checkpoint");
  ok(sum50 / (checks ? checks : 1) <= 0.03 && sum95 / (checks ? checks : 1) <= 0.03,
     "sliding window: mean error <= 3%% (p50 %.2f%%, p95 %.2f%%)", 100 * sum50 / (checks ? checks : 1),
     100 * sum95 / (checks ? checks : 1));
  ok(bad50 == 0, "sliding window p50 within 7%% at every checkpoint (%d over; max %.2f%%)", bad50,
       100 * max50);
  is_int(bad95, 0, "sliding window p95 within 7%% at every checkpoint (max %.2f%%)", 100 * max95);
  if (max50 > worst_err) worst_err = max50;
  if (max95 > worst_err) worst_err = max95;
}

/* Single values: the estimate of a constant series lands in its bucket. */
static void test_quantiles_points(void) {
  static const double pts[] = {0.3, 1, 7.5, 99, 100, 101, 250, 999, 1000, 4321, 60000, 250000};
  int bad = 0;
  for (size_t k = 0; k < sizeof pts / sizeof *pts; k++) {
    setup(LAT_POLICY, opts(60000, 20, 0, 0, 0));
    NOW = T0;
    observe_n("slow", 40, pts[k], LANE_CALL_OK);
    lane_live_stats s = stats("slow");
    /* within one bucket: 1/8 octave = 12.5% of the bucket's lower bound */
    if (!(s.p50 >= pts[k] / 1.125 && s.p50 <= pts[k] * 1.125 && s.p95 >= pts[k] / 1.125 &&
          s.p95 <= pts[k] * 1.125)) {
      bad++;
      diag("constant %.1f ms: p50 %.3f p95 %.3f", pts[k], s.p50, s.p95);
    }
  }
  is_int(bad, 0, "a constant latency's p50 and p95 are within its 1/8-octave bucket (0.3 ms .. 250 s)");
}

/* ---------------------------------------------------------------------
 * Windows, min_samples, error rates
 * ------------------------------------------------------------------- */
static void test_windows(void) {
  lane_live_stats s;
  setup(LAT_POLICY, opts(60000, 20, 1000, 0, 0));
  NOW = T0;
  s = stats("slow");
  is_dbl(s.p50, 1000, 0, "no data: p50 is the declared prior 1s");
  is_dbl(s.p95, 3000, 0, "no data: p95 is the declared prior 3s");
  is_int(s.samples, 0, "no data: 0 samples");
  is_dbl(s.error_rate, 0, 0, "no data: error rate 0");

  observe_n("slow", 19, 5000, LANE_CALL_OK);
  s = stats("slow");
  is_int(s.samples, 19, "19 calls counted");
  is_dbl(s.p95, 3000, 0, "19 < min_samples 20: still the prior");
  decide("q", "latency_budget=3000");
  is_str(primary(), "slow", "policy reads the prior too (p95 3s <= 3000ms)");
  observe_n("slow", 1, 5000, LANE_CALL_OK);
  s = stats("slow");
  ok(s.p95 > 4500 && s.p95 < 5700, "20th call: live p95 %.1f (calls at 5000 ms)", s.p95);
  decide("q", "latency_budget=3000");
  ok(D.ncandidates == 0 || D.candidates[0] != mi("slow"), "policy sees the live p95 (slow excluded)");

  /* calls age out slot by slot: 6 slots of 10 s */
  NOW = T0 + 59999;
  s = stats("slow");
  is_int(s.samples, 20, "59.999 s later the calls are still in the window");
  NOW = T0 + 60000;
  s = stats("slow");
  ok(s.samples == 0, "exactly 60 s later the calls' slot has left the window: 0 samples (got "
       "%llu: the cache is fresh while now - last observe <= window_ms)", (unsigned long long)s.samples);
  NOW = T0 + 60001;
  s = stats("slow");
  is_int(s.samples, 0, "60.001 s later: 0 samples");
  is_dbl(s.p95, 3000, 0, "...and p95 is the prior again");
  decide("q", "latency_budget=3000");
  is_str(primary(), "slow", "...and the policy reads the prior again");
  NOW = T0 + 10 * 60000;
  s = stats("slow");
  is_dbl(s.p50, 1000, 0, "10 windows later: p50 prior");

  /* Mixed ages: 30 slow calls, then one call 55 s later; 100 s after the
   * first batch, the window holds one call, so the priors apply. */
  setup(LAT_POLICY, opts(60000, 20, 1000, 0, 0));
  NOW = T0;
  observe_n("slow", 30, 8000, LANE_CALL_OK);
  NOW = T0 + 55000;
  observe_n("slow", 1, 8000, LANE_CALL_OK);
  NOW = T0 + 100000;
  s = stats("slow");
  ok(s.samples <= 1, "calls older than the window are not counted when the last call "
       "is recent (samples %llu; regression of: the cached figures live a whole window after the last "
       "observe)", (unsigned long long)s.samples);
  ok(s.p95 == 3000, "stats older than the window fall back to the prior (p95 %.1f)", s.p95);
  decide("q", "latency_budget=3000");
  ok(D.ncandidates > 0 && D.candidates[0] == mi("slow"),
       "a policy does not see 100 s old latencies (primary %s)", primary());

  /* The same figures through lane_observe on another model refresh only
   * that model: a fresh observe on slow itself recomputes correctly. */
  observe_n("slow", 1, 8000, LANE_CALL_OK);
  s = stats("slow");
  is_int(s.samples, 2, "an observe recomputes the window: 2 calls in it");
  is_dbl(s.p95, 3000, 0, "...and the prior applies");

  /* min_samples option */
  setup(LAT_POLICY, opts(60000, 5, 1000, 0, 0));
  NOW = T0;
  observe_n("fast", 4, 50, LANE_CALL_OK);
  is_dbl(stats("fast").p95, 300, 0, "min_samples 5: 4 calls keep the prior");
  observe_n("fast", 1, 50, LANE_CALL_OK);
  ok(fabs(stats("fast").p95 - 50) < 4, "min_samples 5: 5 calls are live (p95 %.2f)", stats("fast").p95);

  /* error rates: failures / calls; latency of answers only */
  setup(LAT_POLICY, opts(60000, 20, 1000, 0, 0));
  NOW = T0;
  observe_n("fast", 10, 40, LANE_CALL_OK);
  observe_n("fast", 5, 9000, LANE_CALL_SERVER_ERROR);
  s = stats("fast");
  is_int(s.samples, 15, "15 calls");
  is_dbl(s.error_rate, 0, 0, "15 < min_samples: error rate reads 0");
  observe_n("fast", 5, 9000, LANE_CALL_TIMEOUT);
  observe_n("fast", 5, 9000, LANE_CALL_CLIENT_ERROR);
  observe_n("fast", 5, 40, LANE_CALL_OK);
  s = stats("fast");
  is_int(s.samples, 30, "30 calls, client errors included");
  is_dbl(s.error_rate, 10.0 / 30.0, 1e-12, "error rate 10/30: client errors are calls, not failures");
  is_dbl(s.p95, 300, 0, "15 answered calls < min_samples: p95 is the prior (failures carry no latency)");
  observe_n("fast", 5, 40, LANE_CALL_OK);
  s = stats("fast");
  ok(s.p95 > 37 && s.p95 < 45, "20 answered: p95 %.2f from answers only (failures at 9 s ignored)", s.p95);
  is_int(s.state, LANE_BREAKER_CLOSED, "breaker_failures 1000: still closed");
  {
    /* Out-of-range models and a NULL runtime are ignored: every model's
     * figures stay exactly as they were (and nothing crashes). */
    int nm = lane_model_count(P);
    lane_live_stats before[8], after[8];
    for (int k = 0; k < nm && k < 8; k++) lane_model_stats(RT, k, &before[k]);
    lane_observe(RT, -1, 1, LANE_CALL_SERVER_ERROR);
    lane_observe(RT, nm, 1, LANE_CALL_SERVER_ERROR);
    lane_observe(RT, 99, 1, LANE_CALL_OK);
    lane_observe(NULL, 0, 1, LANE_CALL_OK);
    int same = nm > 0;
    for (int k = 0; k < nm && k < 8; k++) {
      lane_model_stats(RT, k, &after[k]);
      same &= after[k].samples == before[k].samples && after[k].state == before[k].state &&
              after[k].error_rate == before[k].error_rate && after[k].p95 == before[k].p95;
    }
    ok(same, "observe of an unknown model or without a runtime changes no model's figures");
  }
  lane_live_stats junk;
  is_int(lane_model_stats(RT, 99, &junk), LANE_EARG, "lane_model_stats: model out of range");
}

/* ---------------------------------------------------------------------
 * Breakers
 * ------------------------------------------------------------------- */
#define BRK_POLICY \
  "model a { input $1/Mtok output $1/Mtok p50 200ms p95 500ms }\n" \
  "model b { input $2/Mtok output $2/Mtok p50 300ms p95 800ms }\n" \
  "route r { fallbacks 1  require healthy\n" \
  "          when req.latency_budget > 0ms -> fastest(models)\n" \
  "          otherwise -> cheapest(models) }\n" \
  "route one { require healthy  otherwise -> cheapest(models) }\n" \
  "route onlyb { require healthy  otherwise -> b }\n" \
  "route bare { otherwise -> cheapest(models) }\n"

#define COOL 10000u

static void test_breaker(void) {
  lane_live_stats s;
  static const int trips[] = {LANE_CALL_FAILED, LANE_CALL_RATE_LIMITED, LANE_CALL_SERVER_ERROR,
                              LANE_CALL_TIMEOUT};
  static const char *const tripname[] = {"unknown failure", "429", "5xx", "timeout"};

  for (int k = 0; k < 4; k++) {
    setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
    NOW = T0;
    observe_n("a", 2, 100, trips[k]);
    s = stats("a");
    is_int(s.state, LANE_BREAKER_CLOSED, "%s x2 (breaker_failures 3): closed", tripname[k]);
    decide("r", "");
    is_str(cands(), "a b", "...decisions still use a");
    NOW += 5;
    observe_n("a", 1, 100, trips[k]);
    s = stats("a");
    is_int(s.state, LANE_BREAKER_OPEN, "%s x3: open", tripname[k]);
    is_int(s.until_ms, NOW + COOL, "...until now + cooldown");
  }

  setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  observe_n("a", 200, 100, LANE_CALL_CLIENT_ERROR);
  s = stats("a");
  is_int(s.state, LANE_BREAKER_CLOSED, "200 client errors do not trip the breaker");
  is_int(s.samples, 200, "...though they count as calls");
  decide("r", "");
  is_str(cands(), "a b", "...and a is still chosen");

  /* failures spread over more than a window do not add up */
  setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  observe_n("a", 2, 100, LANE_CALL_SERVER_ERROR);
  NOW = T0 + 60000;
  observe_n("a", 2, 100, LANE_CALL_SERVER_ERROR);
  is_int(stats("a").state, LANE_BREAKER_CLOSED, "2 failures, then 2 more a window later: closed");
  observe_n("a", 1, 100, LANE_CALL_SERVER_ERROR);
  is_int(stats("a").state, LANE_BREAKER_OPEN, "...a third within the window opens it");

  /* the full cycle, step by step */
  setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  decide("r", "");
  is_str(cands(), "a b", "closed: cheapest gives a, then b");
  observe_n("a", 3, 100, LANE_CALL_RATE_LIMITED);
  uint64_t opened = NOW;
  s = stats("a");
  is_int(s.state, LANE_BREAKER_OPEN, "3 x 429: open");
  is_int(decide("r", ""), LANE_OK, "open: decision ok");
  is_str(cands(), "b", "open: a is routed around (require healthy)");
  decide("r", "latency_budget=1000");
  is_str(cands(), "b", "open: fastest(models) routes around a too");
  decide("bare", "");
  is_str(primary(), "a", "a route without require healthy still picks a");
  NOW = opened + COOL - 1;
  decide("r", "");
  is_str(cands(), "b", "1 ms before the cooldown ends: still b only");
  is_int(stats("a").state, LANE_BREAKER_OPEN, "...and still open");
  lane_observe(RT, mi("a"), 100, LANE_CALL_OK);
  is_int(stats("a").state, LANE_BREAKER_OPEN, "a success arriving while open (in flight) does not close it");
  NOW = opened + COOL;
  decide("r", "");
  is_str(cands(), "a b", "cooldown over: the first decision gets the probe (a healthy)");
  s = stats("a");
  is_int(s.state, LANE_BREAKER_HALF_OPEN, "...half-open");
  is_int(s.until_ms, NOW + COOL, "...probe deadline now + cooldown");
  decide("r", "");
  is_str(cands(), "b", "the next decision does not get a");
  decide("r", "latency_budget=1000");
  is_str(cands(), "b", "nor does a fastest() decision");
  NOW += 10;
  decide("r", "");
  is_str(cands(), "b", "nor one 10 ms later");
  lane_observe(RT, mi("a"), 120, LANE_CALL_OK);
  is_int(stats("a").state, LANE_BREAKER_CLOSED, "probe success: closed");
  decide("r", "");
  is_str(cands(), "a b", "closed: a again");
  decide("r", "");
  is_str(cands(), "a b", "...for every decision");
  observe_n("a", 2, 100, LANE_CALL_SERVER_ERROR);
  is_int(stats("a").state, LANE_BREAKER_CLOSED,
         "old failures forgiven: 2 new ones (of 5 in the window) keep it closed");
  observe_n("a", 1, 100, LANE_CALL_SERVER_ERROR);
  is_int(stats("a").state, LANE_BREAKER_OPEN, "a third new failure opens it");

  /* probe failure reopens */
  opened = NOW;
  NOW = opened + COOL;
  decide("r", "");
  is_str(cands(), "a b", "second cooldown over: probe");
  NOW += 50;
  lane_observe(RT, mi("a"), 100, LANE_CALL_TIMEOUT);
  s = stats("a");
  is_int(s.state, LANE_BREAKER_OPEN, "probe timeout: open again");
  is_int(s.until_ms, NOW + COOL, "...for a new cooldown from the failure");
  decide("r", "");
  is_str(cands(), "b", "reopened: routed around");
  NOW += COOL - 1;
  decide("r", "");
  is_str(cands(), "b", "...until the new cooldown ends");

  /* a probe that never reports is renewed after another cooldown */
  NOW += 1;
  decide("r", "");
  is_str(cands(), "a b", "cooldown over: probe granted");
  uint64_t probe_at = NOW;
  NOW = probe_at + COOL - 1;
  decide("r", "");
  is_str(cands(), "b", "probe outstanding, no report: others still routed around");
  is_int(stats("a").state, LANE_BREAKER_HALF_OPEN, "...half-open");
  NOW = probe_at + COOL;
  decide("r", "");
  is_str(cands(), "a b", "a probe that never reported is renewed after another cooldown");
  is_int(stats("a").until_ms, NOW + COOL, "...with a new deadline");
  decide("r", "");
  is_str(cands(), "b", "...once");
  lane_observe(RT, mi("a"), 90, LANE_CALL_CLIENT_ERROR);
  is_int(stats("a").state, LANE_BREAKER_HALF_OPEN, "a client error on the probe neither closes nor reopens");
  lane_observe(RT, mi("a"), 90, LANE_CALL_OK);
  is_int(stats("a").state, LANE_BREAKER_CLOSED, "the probe's success closes it");

  /* both unhealthy: no candidate, and the decision says which rule */
  setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  observe_n("a", 3, 100, LANE_CALL_SERVER_ERROR);
  observe_n("b", 3, 100, LANE_CALL_SERVER_ERROR);
  is_int(decide("r", "latency_budget=1000"), LANE_ENOMATCH, "every model open: LANE_ENOMATCH");
  is_int(D.filtered_rule, 1, "...filtered_rule names rule 1 (its candidates were all filtered)");
  is_str(lane_rule_name(P, lane_route(P, "r"), D.filtered_rule), "req.latency_budget > 0ms",
         "...whose name is its condition");
  is_int(decide("r", ""), LANE_ENOMATCH, "otherwise: LANE_ENOMATCH too");
  is_int(D.filtered_rule, 2, "...filtered_rule 2 (otherwise)");
  is_int(D.ncandidates, 0, "...no candidates");

  /* A decision that evaluates `healthy` on a model it then does not pick
   * (the filter runs on every member before cheapest() orders them). */
  setup(BRK_POLICY, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  observe_n("b", 3, 100, LANE_CALL_SERVER_ERROR);
  NOW = T0 + COOL;
  decide("one", "");
  is_str(cands(), "a", "b's cooldown over; route one (fallbacks 0) picks the cheaper a");
  ok(stats("b").state == LANE_BREAKER_OPEN,
       "a decision that does not route to b leaves b's probe for one that does (regression of: state %d, "
       "the probe was spent on a filter check)", stats("b").state);
  decide("onlyb", "");
  ok(D.ncandidates == 1, "the next decision that wants b gets the probe (got %s)",
       lane_status_name(D.ncandidates ? 0 : LANE_ENOMATCH));
}

/* ---------------------------------------------------------------------
 * fastest() and health in a policy
 * ------------------------------------------------------------------- */
static void test_live_routing(void) {
  setup("model a { input $3/Mtok output $3/Mtok p95 500ms }\n"
        "model b { input $1/Mtok output $1/Mtok p95 800ms }\n"
        "model c { input $2/Mtok output $2/Mtok }\n"   /* no prior: unknown, last */
        "route r { fallbacks 2  require healthy\n"
        "  when req.latency_budget > 0ms -> fastest(models)\n"
        "  otherwise -> cheapest(models) }\n",
        opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  decide("r", "latency_budget=1000");
  is_str(cands(), "a b c", "priors: fastest a (500ms), b (800ms), c (unknown) last");
  decide("r", "input_tokens=1000");
  is_str(cands(), "b c a", "cheapest: b c a");
  observe_n("a", 30, 2000, LANE_CALL_OK);
  decide("r", "latency_budget=1000");
  is_str(cands(), "b a c", "a's live p95 ~2s: fastest is b, then a");
  observe_n("c", 30, 100, LANE_CALL_OK);
  decide("r", "latency_budget=1000");
  is_str(cands(), "c b a", "c's live p95 ~100ms: c first");
  observe_n("b", 30, 5000, LANE_CALL_OK);
  decide("r", "latency_budget=1000");
  is_str(cands(), "c a b", "b's live p95 ~5s: b last");
  observe_n("c", 3, 100, LANE_CALL_SERVER_ERROR);
  decide("r", "latency_budget=1000");
  is_str(cands(), "a b", "c unhealthy: routed around, a b remain");
  decide("r", "input_tokens=1000");
  is_str(cands(), "b a", "cheapest routes around c too");
  NOW += 60000 + COOL;   /* everything ages out; c's cooldown is long over */
  decide("r", "latency_budget=1000");
  is_str(cands(), "a b c", "a window later: priors again, c probed");
}

/* ---------------------------------------------------------------------
 * Budgets
 * ------------------------------------------------------------------- */
#define BUD_POLICY \
  "model cheap { input $0.1/Mtok output $0.1/Mtok quality 0.5 }\n" \
  "model good { input $5/Mtok output $5/Mtok quality 0.9 }\n" \
  "request { org: int }\n" \
  "budget daily { key req.tenant  limit $10  window 1d }\n" \
  "budget hourly { key req.tenant  limit $1  rolling 12h }\n" \
  "budget byorg { key req.org  limit $100  window 1h }\n" \
  "route r { when budget.daily.used >= 100% -> cheap\n" \
  "          when budget.daily.remaining < $1 -> cheap, then good\n" \
  "          when budget.hourly.spent > $0.5 -> cheap\n" \
  "          otherwise -> best(models) }\n"

static void test_budgets(void) {
  int daily, hourly, byorg;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 5 * HOUR;
  daily = lane_budget(P, "daily");
  hourly = lane_budget(P, "hourly");
  byorg = lane_budget(P, "byorg");
  is_int(lane_budget_count(P), 3, "3 budgets");
  ok(daily == 0 && hourly == 1 && byorg == 2, "budget indexes by name");
  is_str(lane_budget_name(P, 1), "hourly", "budget name");
  is_int(lane_budget(P, "nope"), -1, "unknown budget: -1");

  decide("r", "tenant=acme");
  is_str(primary(), "good", "no spend: best(models)");
  is_int(decide("r", ""), LANE_OK, "no key: decides");
  is_int(D.rule, 4, "...reads spent 0, remaining = limit, used 0");

  /* nano-dollar exactness: 0.1 ten times is exactly 1 */
  for (int i = 0; i < 10; i++) charge("tenant=acme", 0.1);
  is_int(spent_nanos("daily", "acme"), 1000000000LL, "10 x $0.1 = exactly $1 (1e9 nano-dollars)");
  double d;
  lane_budget_spent(RT, daily, lane_budget_key_hash(P, daily, "acme", 4), &d);
  is_dbl(d, 1.0, 0, "lane_budget_spent reads exactly 1.0");
  for (int i = 0; i < 1000; i++) charge("tenant=acme", 1e-9);
  is_int(spent_nanos("daily", "acme"), 1000001000LL, "1000 x 1 nano-dollar add up");
  charge("tenant=acme", 0.0000000004);
  is_int(spent_nanos("daily", "acme"), 1000001000LL, "0.4 nano-dollars round to 0");
  charge("tenant=acme", 0.0000000006);
  is_int(spent_nanos("daily", "acme"), 1000001001LL, "0.6 nano-dollars round to 1");
  is_int(spent_nanos("hourly", "acme"), 1000001001LL, "every budget keyed by tenant was charged");
  is_int(charge("tenant=acme", -0.01), LANE_EARG, "negative charge: LANE_EARG");
  is_int(charge("tenant=acme", NAN), LANE_EARG, "NaN charge: LANE_EARG");
  is_int(charge("tenant=acme", INFINITY), LANE_EARG, "infinite charge: LANE_EARG");
  is_int(charge("tenant=acme", 1e12), LANE_EARG, "absurd charge: LANE_EARG");
  is_int(spent_nanos("daily", "acme"), 1000001001LL, "...none of them changed anything");
  is_int(charge("", 5), LANE_OK, "charge without a key: ok");
  is_int(spent_nanos("daily", ""), 0, "...charged nothing (the empty string is not the unset key)");
  lane_request other;
  lane_program *p2 = compile_prog(BUD_POLICY);
  lane_request_init(&other, p2);
  is_int(lane_charge(RT, &other, 1), LANE_EARG, "a request of another program: LANE_EARG");
  lane_program_free(p2);
  is_int(lane_budget_spent(RT, daily, 0, &d), LANE_EARG, "key hash 0: LANE_EARG");
  is_int(lane_budget_spent(RT, 7, 1, &d), LANE_EARG, "budget out of range: LANE_EARG");

  /* int keys: the hash is splitmix64 of the value, from its decimal text */
  charge("org=42", 2.5);
  is_int(spent_nanos("byorg", "42"), 2500000000LL, "int key 42: $2.5");
  is_int(spent_nanos("byorg", "43"), 0, "int key 43: nothing");
  charge("org=-7", 1);
  is_int(spent_nanos("byorg", "-7"), 1000000000LL, "negative int key");
  is_int(spent_nanos("daily", "acme"), 1000001001LL, "an org charge leaves tenant budgets alone");

  /* budget.X.used caps a tenant; others unaffected */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 5 * HOUR;
  charge("tenant=acme", 0.4);
  decide("r", "tenant=acme");
  is_int(D.rule, 4, "$0.4: below every threshold");
  charge("tenant=acme", 0.2);
  decide("r", "tenant=acme");
  is_int(D.rule, 3, "$0.6: budget.hourly.spent > $0.5");
  charge("tenant=acme", 8.5);
  decide("r", "tenant=acme");
  is_int(D.rule, 2, "$9.1: budget.daily.remaining < $1");
  is_str(cands(), "cheap", "...cheap (fallbacks 0)");
  charge("tenant=acme", 0.899999999);
  decide("r", "tenant=acme");
  is_int(D.rule, 2, "$9.999999999: still under 100%%");
  charge("tenant=acme", 0.000000001);
  decide("r", "tenant=acme");
  is_int(D.rule, 1, "exactly $10: budget.daily.used >= 100%% caps the tenant");
  is_str(primary(), "cheap", "...to the cheap model");
  decide("r", "tenant=initech");
  is_int(D.rule, 4, "another tenant is not capped");

  /* Overspent: remaining reads $0, never below; used goes past 100%. */
  setup("model a { input $1/Mtok output $1/Mtok }\n"
        "model b { input $1/Mtok output $1/Mtok }\n"
        "budget d { key req.tenant  limit $1  window 1d }\n"
        "route r { when budget.d.remaining == $0 && budget.d.used == 150% -> a\n"
        "          otherwise -> b }\n", opts(0, 0, 0, 0, 0));
  NOW = T0 + 5 * HOUR;
  charge("tenant=acme", 1.5);
  decide("r", "tenant=acme");
  is_int(D.rule, 1, "$1.5 of $1: remaining is $0 (not -$0.5) and used is 150%%");

  /* fixed windows roll over at period boundaries (1d: 00:00 UTC) */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + DAY - 1;   /* 23:59:59.999 */
  charge("tenant=acme", 10);
  decide("r", "tenant=acme");
  is_int(D.rule, 1, "capped at 23:59:59.999");
  NOW = T0 + DAY;
  decide("r", "tenant=acme");
  is_int(D.rule, 3, "00:00:00.000 the next day: the daily window reset (the rolling 12h one "
         "still holds the $10: rule 3)");
  is_int(spent_nanos("daily", "acme"), 0, "...spent 0");
  charge("tenant=acme", 3);
  NOW = T0 + 2 * DAY + 1;
  is_int(spent_nanos("daily", "acme"), 0, "day 3: day 2's spend is gone");
  NOW = T0 + DAY + 12 * HOUR;
  is_int(spent_nanos("daily", "acme"), 3000000000LL, "day 2 noon again (clock back): day 2's $3");
  NOW = T0 + 3 * DAY;
  is_int(spent_nanos("daily", "acme"), 0, "two periods later (same ring entry): not mistaken for current");
  charge("org=1", 5);
  NOW = T0 + 3 * DAY + HOUR - 1;
  is_int(spent_nanos("byorg", "1"), 5000000000LL, "1h window: spend until hh:59:59.999");
  NOW = T0 + 3 * DAY + HOUR;
  is_int(spent_nanos("byorg", "1"), 0, "...reset at the hour");

  /* rolling: twelve twelfths; the oldest twelfth drops off */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  for (int h = 0; h < 12; h++) {
    NOW = T0 + (uint64_t)h * HOUR + 1234;
    charge("tenant=r", (double)(h + 1));   /* $1 at 0h, $2 at 1h, ... $12 at 11h */
  }
  NOW = T0 + 12 * HOUR - 1;
  is_int(spent_nanos("hourly", "r"), 78000000000LL, "rolling 12h at 11:59:59.999: all 12 twelfths ($78)");
  NOW = T0 + 12 * HOUR;
  is_int(spent_nanos("hourly", "r"), 77000000000LL, "at 12:00: the oldest twelfth ($1) dropped");
  NOW = T0 + 13 * HOUR;
  is_int(spent_nanos("hourly", "r"), 75000000000LL, "at 13:00: $1 and $2 dropped");
  NOW = T0 + 22 * HOUR + 1;
  is_int(spent_nanos("hourly", "r"), 12000000000LL, "at 22:00: only the 11h twelfth left");
  NOW = T0 + 23 * HOUR;
  is_int(spent_nanos("hourly", "r"), 0, "at 23:00: nothing left");
  is_int(spent_nanos("daily", "r"), 78000000000LL, "the fixed daily budget still holds the day's $78");
  NOW = T0 + 23 * HOUR + 30 * 60000;
  charge("tenant=r", 0.5);
  NOW = T0 + 35 * HOUR - 1;
  is_int(spent_nanos("hourly", "r"), 500000000LL, "a charge at 23:30 stays for the rest of its "
         "twelfth + 11 more (until 34:59:59.999)");
  NOW = T0 + 35 * HOUR;
  is_int(spent_nanos("hourly", "r"), 0, "...and is gone 12 twelfths after its twelfth began");

  /* set_spend (snapshot replay) replaces the current window's spend */
  int hh = lane_budget(P, "hourly");
  uint64_t kh = lane_budget_key_hash(P, hh, "r", 1);
  is_int(lane_runtime_set_spend(RT, hh, kh, 0.75), LANE_OK, "set_spend");
  is_int(spent_nanos("hourly", "r"), 750000000LL, "...reads back");
  is_int(lane_runtime_set_spend(RT, hh, kh, -1), LANE_EARG, "set_spend negative: LANE_EARG");
}

/* ---------------------------------------------------------------------
 * The overflow account
 * ------------------------------------------------------------------- */
static void test_overflow(void) {
  char key[32];
  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  NOW = T0 + HOUR;
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 1 + i);
  }
  int own = 0;
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "t%d", i);
    own += spent_nanos("daily", key) == (long long)(1 + i) * 1000000000LL;
  }
  is_int(own, 16, "budget_keys 16: 16 tenants, each its own exact account");
  charge("tenant=new1", 0.25);
  charge("tenant=new2", 0.5);
  is_int(spent_nanos("daily", "new1"), 750000000LL,
         "table full: new tenants share one overflow account (new1 reads $0.75)");
  is_int(spent_nanos("daily", "new2"), 750000000LL, "...new2 reads the same $0.75");
  is_int(spent_nanos("daily", "never"), 750000000LL, "...and so does a tenant never charged");
  is_int(spent_nanos("daily", "t3"), 4000000000LL, "old tenants keep their own exact spend");
  charge("tenant=new3", 9.25);
  decide("r", "tenant=brandnew");
  is_int(D.rule, 1, "a flood of new keys is capped together: $10 in overflow caps a new tenant");
  decide("r", "tenant=t0");
  is_int(D.rule, 3, "...but not an old one (t0's own $1 only trips the $0.5 rolling rule 3)");
  /* Snapshot: the overflow account is listed with key_hash 0. */
  char *snap = snapshot(RT);
  json_error_t je;
  json_t *root = json_loads(snap, 0, &je);
  ok(root != NULL, "snapshot with an overflow account parses");
  json_t *keys = json_object_get(json_array_get(json_object_get(root, "budgets"), 0), "keys");
  int nzero = 0;
  long long total = 0;
  size_t i;
  json_t *k;
  json_array_foreach(keys, i, k) {
    if (!strcmp(json_string_value(json_object_get(k, "key_hash")), "0000000000000000")) nzero++;
    total += llround(json_number_value(json_object_get(k, "spent")) * 1e9);
  }
  is_int(json_array_size(keys), 17, "snapshot: 16 keys + the overflow account");
  is_int(nzero, 1, "...the overflow account has key_hash 0");
  is_int(total, (136LL + 10) * 1000000000LL, "...and the spend adds up exactly ($146)");
  json_decref(root);
  /* Replaying that snapshot (lane eval --state) */
  const char *path = scratch("overflow_snapshot.json");
  FILE *f = fopen(path, "w");
  fputs(snap, f);
  fclose(f);
  char *err = NULL;
  size_t en = 0;
  FILE *ef = open_memstream(&err, &en);
  lane_runtime *rt2 = state_runtime(P, path, ef);
  fclose(ef);
  ok(rt2 != NULL, "a snapshot with an overflow account replays (regression of: state_runtime refuses "
       "key_hash 0: %s)", err && *err ? strtok(err, "\n") : "ok");
  lane_runtime_free(rt2);
  free(err);
  free(snap);
  /* the minimum table: budget_keys 1 is rounded up to 16 */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 1));
  NOW = T0 + HOUR;
  for (int x = 0; x < 20; x++) {
    snprintf(key, sizeof key, "tenant=x%d", x);
    charge(key, 1);
  }
  is_int(spent_nanos("daily", "x0"), 1000000000LL, "budget_keys 1: still 16 own keys (the minimum table)");
  is_int(spent_nanos("daily", "x19"), 4000000000LL, "...the 17th..20th share the overflow ($4)");
}

/* ---------------------------------------------------------------------
 * Save and load
 * ------------------------------------------------------------------- */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *p = NULL;
  *n = 0;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)len + 1);
  if (p) *n = fread(p, 1, (size_t)len, f);
  fclose(f);
  return p;
}

static void spit(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) bail("cannot write %s", path);
  fwrite(p, 1, n, f);
  fclose(f);
}

static void le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing checksum after an edit, so the edit is what the
 * loader must catch. */
static void reseal(unsigned char *p, size_t n) { le64(p + n - 8, bc_fnv1a64(p, n - 8, BC_FNV_OFFSET)); }

/* Loads a bad file into RT; checks it is refused with a reason containing
 * want and that nothing changed. */
static void refused(const char *what, const unsigned char *p, size_t n, const char *want) {
  const char *path = scratch("bad.lanert");
  lane_error err;
  char *before = snapshot(RT), *after;
  spit(path, p, n);
  memset(&err, 0, sizeof err);
  int rc = lane_runtime_load(RT, path, &err);
  after = snapshot(RT);
  ok(rc == LANE_EFORMAT && err.code == LANE_EFORMAT && strstr(err.message, want),
     "%s: refused (%s: %s)", what, lane_status_name(rc), err.message);
  ok(!strcmp(before, after), "%s: ...and nothing changed", what);
  free(before);
  free(after);
}

static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t rd64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint32_t rd32(const unsigned char *p) { return (uint32_t)(rd64(p) & 0xffffffffu); }

/* Offsets in a version-2 file (vm/state.c documents the layout): of the
 * first budget's fields, of the first entry of its first key, and of each
 * budget's name. */
typedef struct v2_layout {
  int ok;
  size_t ktype, kind, cur_at, nkeys, key, nent, entry, names[8];
  uint64_t cur;
} v2_layout;

static v2_layout v2_find(const unsigned char *p, size_t n) {
  v2_layout L;
  size_t at = 24;
  memset(&L, 0, sizeof L);
  uint32_t nb = rd32(p + 20);
#define NEED(k) do { if (at + (k) > n - 8) return L; } while (0)
  NEED(0);
  for (uint32_t b = 0; b < nb && b < 8; b++) {
    NEED(4);
    L.names[b] = at + 4;
    at += 4 + rd32(p + at);                      /* name */
    NEED(4);
    at += 4 + rd32(p + at);                      /* key field */
    NEED(32);
    if (b == 0) { L.ktype = at; L.kind = at + 4; L.cur_at = at + 16; L.cur = rd64(p + at + 16); }
    at += 4 + 4 + 8 + 8;                         /* type, kind, window, cur */
    at += 4 + 16 * (size_t)rd32(p + at);         /* the overflow account */
    NEED(4);
    uint32_t nk = rd32(p + at);
    if (b == 0) { L.nkeys = at; L.key = at + 4; L.nent = at + 12; L.entry = at + 16; }
    at += 4;
    for (uint32_t k = 0; k < nk; k++) {
      NEED(12);
      at += 12 + 16 * (size_t)rd32(p + at + 8);
    }
  }
#undef NEED
  L.ok = at == n - 8 && nb == 3 && !memcmp(p + L.names[0], "daily", 5) && L.entry + 16 <= n - 8 &&
         rd32(p + L.nent) == 1;
  return L;
}

/* As refused, for another status. */
static void refused_as(const char *what, const unsigned char *p, size_t n, int code,
                       const char *want) {
  const char *path = scratch("bad.lanert");
  lane_error err;
  char *before = snapshot(RT), *after;
  spit(path, p, n);
  memset(&err, 0, sizeof err);
  int rc = lane_runtime_load(RT, path, &err);
  after = snapshot(RT);
  ok(rc == code && err.code == code && strstr(err.message, want),
     "%s: refused (%s: %s)", what, lane_status_name(rc), err.message);
  ok(!strcmp(before, after), "%s: ...and nothing changed", what);
  free(before);
  free(after);
}

static void test_save_load(void) {
  static const char *const tenants[] = {"acme", "initech", "hooli", "umbrella", "t5", "t6"};
  char key[64];
  lane_error err;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  NOW = T0 + 3 * HOUR;
  for (int i = 0; i < 6; i++) {
    snprintf(key, sizeof key, "tenant=%s org=%d", tenants[i], i * 11);
    charge(key, 0.001 * (i + 1) + 0.123456789);
  }
  NOW = T0 + 4 * HOUR;   /* a second twelfth of the rolling window */
  charge("tenant=acme", 0.5);
  for (int i = 0; i < 20; i++) {   /* fill the table: overflow */
    snprintf(key, sizeof key, "tenant=flood%d", i);
    charge(key, 0.01);
  }
  const char *path = scratch("rt.lanert");
  is_int(lane_runtime_save(RT, path, &err), LANE_OK, "save");
  char *snap1 = canon_snapshot(RT);

  lane_error e2;
  lane_runtime_options o = opts(0, 0, 0, 0, 16);
  lane_runtime *rt2 = lane_runtime_new_with(P, &o, &e2);
  memset(&err, 0, sizeof err);
  is_int(lane_runtime_load(rt2, path, &err), LANE_OK, "load into a fresh runtime (%s)", err.message);
  char *snap2 = canon_snapshot(rt2);
  is_str(snap2, snap1, "round trip: the snapshot (every key, every budget, overflow) is identical");
  int same = 1;
  for (int i = 0; i < 6; i++) {
    lane_request r;
    lane_decision d1, d2;
    snprintf(key, sizeof key, "tenant=%s org=%d", tenants[i], i * 11);
    set_fields(&r, P, key);
    lane_decide(RT, "r", &r, &d1);
    lane_decide(rt2, "r", &r, &d2);
    for (int b = 0; b < 3; b++) {
      double x = -1, y = -2;
      const char *kv = b == 2 ? (snprintf(key, sizeof key, "%d", i * 11), key) : tenants[i];
      lane_budget_spent(RT, b, lane_budget_key_hash(P, b, kv, strlen(kv)), &x);
      lane_budget_spent(rt2, b, lane_budget_key_hash(P, b, kv, strlen(kv)), &y);
      if (x != y) same = 0;
    }
    if (memcmp(&d1, &d2, sizeof d1)) same = 0;
  }
  ok(same, "round trip: every key's spend and every decision equal");
  NOW = T0 + 15 * HOUR + 1;   /* 3h twelfth out of the rolling window, 4h in */
  lane_runtime_free(RT);
  RT = rt2;
  is_int(spent_nanos("hourly", "acme"), 500000000LL, "loaded rolling spend still ages twelfth by twelfth");
  is_int(spent_nanos("daily", "acme"), 624456789LL, "...the fixed day keeps it all");
  NOW = T0 + DAY;
  is_int(spent_nanos("daily", "acme"), 0, "loaded on the next day: yesterday's window is over");
  NOW = T0 + 4 * HOUR;
  free(snap1);
  free(snap2);

  /* Refusals. RT holds the loaded spend; each refusal must leave it. */
  size_t n;
  unsigned char *good = slurp(path, &n), *bad = malloc(n + 64);
  ok(good && n > 64, "saved file read back (%zu bytes)", n);
  if (!good || !bad) bail("cannot read %s", path);
  v2_layout L = v2_find(good, n);
  if (!ok(L.ok, "the saved file has the version-2 layout (budget 'daily' first, a key with an entry)"))
    bail("cannot locate the fields of %s", path);

  memcpy(bad, good, n);
  bad[n / 2] ^= 0x40;
  refused("one flipped byte", bad, n, "checksum mismatch");
  memcpy(bad, good, n);
  bad[n - 1] ^= 1;
  refused("flipped checksum byte", bad, n, "checksum mismatch");
  int trunc_ok = 1;
  for (size_t cut = 0; cut < n; cut += (cut < 64 ? 1 : 37)) {
    const char *tp = scratch("trunc.lanert");
    char *before = snapshot(RT), *after;
    spit(tp, good, cut);
    memset(&err, 0, sizeof err);
    int rc = lane_runtime_load(RT, tp, &err);
    after = snapshot(RT);
    if (rc != LANE_EFORMAT || strcmp(before, after) || !err.message[0]) trunc_ok = 0;
    free(before);
    free(after);
  }
  ok(trunc_ok, "every truncation (0..%zu bytes) refused with a reason, nothing changed", n);
  /* truncated but resealed: the structure itself is short */
  {
    unsigned char *t = malloc(n);
    memcpy(t, good, n - 24);
    le64(t + n - 24, bc_fnv1a64(t, n - 24, BC_FNV_OFFSET));
    refused("truncated and resealed", t, n - 16, "truncated or corrupt");
    free(t);
  }
  memcpy(bad, good, n);
  memcpy(bad + n, "\0\0\0\0\0\0\0\0", 8);
  memmove(bad + n, bad + n - 8, 8);
  memset(bad + n - 8, 0, 8);
  reseal(bad, n + 8);
  refused("trailing garbage, resealed", bad, n + 8, "truncated or corrupt");
  refused("empty file", good, 0, "not a lane runtime file");
  memcpy(bad, good, n);
  bad[0] = 'X';
  refused("bad magic", bad, n, "not a lane runtime file");
  memcpy(bad, good, n);
  bad[8] = 3;
  reseal(bad, n);
  refused_as("version 3", bad, n, LANE_EVERSION, "unsupported runtime file version 3");
  memcpy(bad, good, n);
  bad[20] = 200;   /* budgets 3 -> 200 */
  reseal(bad, n);
  refused("more budgets than the file holds", bad, n, "truncated or corrupt");
  memcpy(bad, good, n);
  memcpy(bad + L.names[2], "daily", 5);   /* 'byorg' -> 'daily': the same name twice */
  reseal(bad, n);
  refused("a budget twice", bad, n, "budget 'daily' appears twice");
  memcpy(bad, good, n);
  le32(bad + L.ktype, 9);
  reseal(bad, n);
  refused("unknown key type", bad, n, "key type 9");
  memcpy(bad, good, n);
  le32(bad + L.kind, 2);
  reseal(bad, n);
  refused("unknown window kind", bad, n, "kind 2");
  memcpy(bad, good, n);
  le64(bad + L.entry + 8, (uint64_t)-5);
  reseal(bad, n);
  refused("negative spend", bad, n, "negative spend");
  memcpy(bad, good, n);
  le64(bad + L.entry, L.cur + 1);
  reseal(bad, n);
  refused("an entry after the budget's current period", bad, n, "a period after");
  memcpy(bad, good, n);
  le32(bad + L.nent, 2);   /* a fixed window's key: at most 1 entry */
  reseal(bad, n);
  refused("too many entries for a key", bad, n, "at most 1");
  memcpy(bad, good, n);
  le64(bad + L.key, 0);
  reseal(bad, n);
  refused("key hash 0", bad, n, "key hash 0000000000000000");
  memcpy(bad, good, n);
  le32(bad + L.nkeys, 0x0fffffff);
  reseal(bad, n);
  refused("key count beyond the file", bad, n, "keys in what is left of the file");
  memset(&err, 0, sizeof err);
  is_int(lane_runtime_load(RT, scratch("does-not-exist.lanert"), &err), LANE_EARG,
         "missing file: LANE_EARG (%s)", err.message);
  is_int(lane_runtime_save(RT, "/nonexistent-dir/x.lanert", &err), LANE_EARG,
         "unwritable path: LANE_EARG (%s)", err.message);
  free(good);
  free(bad);
}

/* Budget edge cases that lose or corrupt spend. */
static void test_budget_edges(void) {
  char key[64];
  lane_error err;
  /* a file saved with a bigger key table, loaded into a smaller one */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 32));
  NOW = T0 + HOUR;
  long long total = 0;
  for (int i = 0; i < 24; i++) {
    snprintf(key, sizeof key, "tenant=k%d", i);
    charge(key, 1 + i);
    total += (1 + i) * 1000000000LL;
  }
  const char *path = scratch("big.lanert");
  is_int(lane_runtime_save(RT, path, &err), LANE_OK, "save a 32-key table holding 24 tenants");
  lane_runtime_options o = opts(0, 0, 0, 0, 16);
  lane_runtime *small = lane_runtime_new_with(P, &o, &err);
  memset(&err, 0, sizeof err);
  int rc = lane_runtime_load(small, path, &err);
  ok(rc == LANE_OK, "load it into a 16-key runtime (%s)", rc ? err.message : "ok");
  lane_runtime *keep = RT;
  RT = small;
  long long sum = 0;
  char *snap = snapshot(RT);
  json_t *root = json_loads(snap, 0, NULL), *k;
  size_t i;
  json_array_foreach(json_object_get(json_array_get(json_object_get(root, "budgets"), 0), "keys"), i, k)
    sum += llround(json_number_value(json_object_get(k, "spent")) * 1e9);
  json_decref(root);
  free(snap);
  ok(sum == total, "loading into a smaller table keeps every dollar: the 8 keys that no longer "
       "fit add up in the overflow account (regression of: %lld of %lld nano-dollars; each overflowing key "
       "overwrites the overflow entry instead of adding to it)", sum, total);
  RT = keep;
  lane_runtime_free(small);

  /* nano-dollar sums beyond int64 */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + HOUR;
  is_int(charge("tenant=whale", 9.0e9), LANE_OK, "a $9e9 charge is accepted (< $9.2e9)");
  is_int(charge("tenant=whale", 9.0e9), LANE_OK, "...twice");
  double w = -1;
  int wb = lane_budget(P, "daily");
  lane_budget_spent(RT, wb, lane_budget_key_hash(P, wb, "whale", 5), &w);
  ok(w >= 9.0e9, "spend saturates instead of wrapping negative ($%.3f)", w);
  decide("r", "tenant=whale");
  ok(D.rule == 1, "a tenant $18e9 over a $10 budget is capped (rule %d)", D.rule);
}

/* ---------------------------------------------------------------------
 * Splits, shadows, candidate lists
 * ------------------------------------------------------------------- */
static void test_split_shares(void) {
  enum { N = 100000 };
  int na = 0, nb = 0, nc = 0, sticky = 0, i;
  int n3[3] = {0, 0, 0}, ni[2] = {0, 0};
  char spec[64];
  setup("model a { input $1/Mtok output $1/Mtok }\n"
        "model b { input $2/Mtok output $2/Mtok }\n"
        "model c { input $3/Mtok output $3/Mtok }\n"
        "request { acct: int }\n"
        "route s { otherwise -> split { a: 70%, b: 30% } by req.user }\n"
        "route t { otherwise -> split { a: 15%, b: 60%, c: 25% } by req.user }\n"
        "route i { otherwise -> split { a: 70%, b: 30% } by req.acct }\n",
        opts(0, 0, 0, 0, 0));
  int ma = mi("a"), mb = mi("b"), mc = mi("c");
  for (i = 0; i < N; i++) {
    snprintf(spec, sizeof spec, "user=user-%d", i);
    if (decide("s", spec) != LANE_OK) continue;
    int first = D.candidates[0];
    na += first == ma;
    nb += first == mb;
    nc += first == mc;
    decide("s", spec);
    sticky += D.candidates[0] == first;
    decide("t", spec);
    n3[D.candidates[0] == ma ? 0 : D.candidates[0] == mb ? 1 : 2]++;
    snprintf(spec, sizeof spec, "acct=%d", i * 7 + 3);
    decide("i", spec);
    ni[D.candidates[0] == ma ? 0 : 1]++;
  }
  double sa = 100.0 * na / N, sb = 100.0 * nb / N;
  diag("split 70/30 by req.user over %d keys: a %.3f%%, b %.3f%%", N, sa, sb);
  ok(fabs(sa - 70) <= 0.5, "70%% arm within 0.5 points (%.3f%%)", sa);
  ok(fabs(sb - 30) <= 0.5, "30%% arm within 0.5 points (%.3f%%)", sb);
  is_int(nc, 0, "no third arm");
  is_int(sticky, N, "sticky: the same user gets the same arm");
  double t0 = 100.0 * n3[0] / N, t1 = 100.0 * n3[1] / N, t2 = 100.0 * n3[2] / N;
  diag("split 15/60/25: %.3f%% %.3f%% %.3f%%", t0, t1, t2);
  ok(fabs(t0 - 15) <= 0.5 && fabs(t1 - 60) <= 0.5 && fabs(t2 - 25) <= 0.5,
     "15/60/25 split within 0.5 points (%.3f / %.3f / %.3f)", t0, t1, t2);
  double i0 = 100.0 * ni[0] / N;
  diag("split 70/30 by an int key: %.3f%%", i0);
  ok(fabs(i0 - 70) <= 0.5, "70/30 by an int key within 0.5 points (%.3f%%)", i0);
}

static void test_shadows(void) {
  enum { N = 100000 };
  int with = 0, with2 = 0, both = 0, sticky = 0, same = 0, i;
  char spec[64];
  setup("model a { input $1/Mtok output $1/Mtok }\n"
        "model b { input $2/Mtok output $2/Mtok }\n"
        "model m { input $9/Mtok output $9/Mtok }\n"
        "model n { input $9/Mtok output $9/Mtok }\n"
        "route plain { fallbacks 1  when req.tier == \"pro\" -> b  otherwise -> cheapest(models) }\n"
        "route sh { fallbacks 1  when req.tier == \"pro\" -> b  otherwise -> cheapest(models)\n"
        "           shadow m 10%\n"
        "           shadow n 10% }\n"
        "route all { otherwise -> a, shadow m }\n"
        "route self { fallbacks 1  otherwise -> cheapest(models), shadow b }\n",
        opts(0, 0, 0, 0, 0));
  int mm = mi("m"), mn = mi("n");
  for (i = 0; i < N; i++) {
    lane_decision d1, d2;
    snprintf(spec, sizeof spec, "user=u%d tier=%s", i, i % 3 ? "free" : "pro");
    decide("plain", spec);
    d1 = D;
    decide("sh", spec);
    d2 = D;
    int hm = 0, hn = 0;
    for (int k = 0; k < d2.nshadows; k++) {
      hm |= d2.shadows[k] == mm;
      hn |= d2.shadows[k] == mn;
    }
    with += hm;
    with2 += hn;
    both += hm && hn;
    same += d1.rule == d2.rule && d1.ncandidates == d2.ncandidates &&
            !memcmp(d1.candidates, d2.candidates, sizeof d1.candidates) && d1.cost == d2.cost;
    decide("sh", spec);
    sticky += D.nshadows == d2.nshadows && !memcmp(D.shadows, d2.shadows, sizeof D.shadows);
  }
  double sm = 100.0 * with / N, sn = 100.0 * with2 / N, sb = 100.0 * both / N;
  diag("shadow m 10%%: %.3f%% of %d users; shadow n 10%%: %.3f%%; both: %.3f%%", sm, N, sn, sb);
  ok(fabs(sm - 10) <= 0.5, "shadow m 10%%: about 10%% of users (%.3f%%)", sm);
  ok(fabs(sn - 10) <= 0.5, "shadow n 10%%: about 10%% of users (%.3f%%)", sn);
  ok(fabs(sb - 1) <= 0.3, "the two samples are independent: both for about 1%% (%.3f%%)", sb);
  is_int(sticky, N, "sampling is sticky per user");
  is_int(same, N, "a shadow never changes the answer (rule, candidates, cost)");
  decide("all", "user=x");
  ok(D.nshadows == 1 && D.shadows[0] == mm, "unsampled shadow: always");
  decide("self", "user=x");
  is_str(cands(), "a b", "self: cheapest gives a, b");
  is_int(D.nshadows, 0, "a shadow that is a candidate leaves the shadows");
}

/* Chains + fallbacks + pool orders: candidate lists without duplicates,
 * each candidate passing require at decision time. */
static void test_candidates(void) {
  static const char *const models[] = {"m0", "m1", "m2", "m3", "m4", "m5"};
  static const long ctx[] = {8000, 16000, 32000, 64000, 128000, 200000};
  char src[8192];
  size_t len = 0;
  for (int i = 0; i < 6; i++)
    len += (size_t)snprintf(src + len, sizeof src - len,
                            "model %s { input $%d/Mtok output $%d/Mtok context %ld quality 0.%d p95 %dms }\n",
                            models[i], 6 - i, 1 + i, ctx[i], 3 + i, 100 * (i + 1) * (i % 2 ? 1 : 3));
  len += (size_t)snprintf(src + len, sizeof src - len,
    "route r { fallbacks 4  require fits && healthy\n"
    "  when req.task == \"a\" -> m5, then cheapest(models), then fastest(models)\n"
    "  when req.task == \"b\" -> best(models), then m0, then m0, then cheapest(models)\n"
    "  when req.task == \"c\" -> split { m1: 50%%, fastest(models): 50%% } by req.user, then best(models)\n"
    "  when req.task == \"d\" -> m2, then m2\n"
    "  otherwise -> fastest(models where quality >= 0.5), then cheapest(models) }\n");
  setup(src, opts(60000, 20, 3, COOL, 0));
  NOW = T0;
  int total = 0, dup = 0, unfit = 0, unhealthy = 0, short_list = 0, matched = 0, nomatch = 0;
  int badfilter = 0;
  unsigned seed = 12345;
  for (int it = 0; it < 20000; it++) {
    seed = seed * 1103515245u + 12345u;
    if (it % 500 == 0) {   /* change health: trip or heal a model */
      int m = (int)(seed >> 8) % 6;
      NOW += 1000;
      if ((seed >> 4) & 1) observe_n(models[m], 3, 100, LANE_CALL_SERVER_ERROR);
      else lane_observe(RT, m, 100, LANE_CALL_OK);
    }
    static const char *const tasks[] = {"a", "b", "c", "d", "e"};
    char spec[128];
    long in = (long)((seed >> 3) % 220000);
    snprintf(spec, sizeof spec, "task=%s user=u%u input_tokens=%ld max_output_tokens=%u",
             tasks[(seed >> 16) % 5], seed % 1000, in, (seed >> 20) % 4000);
    lane_request r;
    set_fields(&r, P, spec);
    /* health as the decision will see it, read first (a probe may change
     * it during the decision, only ever to healthy) */
    int open_before[6];
    for (int m = 0; m < 6; m++) {
      lane_live_stats s;
      lane_model_stats(RT, m, &s);
      open_before[m] = s.state != LANE_BREAKER_CLOSED && NOW < s.until_ms;
    }
    int rc = lane_decide(RT, "r", &r, &D);
    total++;
    if (rc == LANE_ENOMATCH) {
      nomatch++;
      if (D.filtered_rule < 1) badfilter++;
      continue;
    }
    matched++;
    long out = (long)((seed >> 20) % 4000);
    for (int i = 0; i < D.ncandidates; i++) {
      int m = D.candidates[i];
      for (int j = 0; j < i; j++) dup += D.candidates[j] == m;
      if (in + out > ctx[m]) unfit++;
      if (open_before[m]) unhealthy++;
    }
    /* a full list unless fewer models pass */
    int pass = 0;
    for (int m = 0; m < 6; m++) pass += in + out <= ctx[m] && !open_before[m];
    if (D.rule != 4 && D.ncandidates < (pass < 5 ? pass : 5) && D.rule != 3) short_list++;
  }
  diag("%d decisions: %d matched, %d LANE_ENOMATCH", total, matched, nomatch);
  is_int(dup, 0, "no duplicate candidates (chains repeat models on purpose)");
  is_int(unfit, 0, "every candidate fits the request (require fits)");
  is_int(unhealthy, 0, "no candidate was open at decision time (require healthy)");
  is_int(short_list, 0, "chains fill fallbacks + 1 candidates when enough models pass");
  is_int(badfilter, 0, "every LANE_ENOMATCH names the filtered rule");
  ok(matched > 1000 && nomatch > 100, "both outcomes were exercised");

  setup(src, opts(60000, 20, 3, COOL, 0));   /* all healthy again */
  decide("r", "task=d input_tokens=1000");
  is_str(cands(), "m2", "a chain naming one model twice gives it once");
  is_int(decide("r", "task=a input_tokens=500000"), LANE_ENOMATCH,
         "too big for every model: LANE_ENOMATCH");
  is_int(D.filtered_rule, 1, "...filtered_rule is the first rule whose condition held (1)");
  is_int(decide("r", "task=zzz input_tokens=500000"), LANE_ENOMATCH, "otherwise, too big");
  is_int(D.filtered_rule, 5, "...filtered_rule 5 (otherwise)");
}

/* ---------------------------------------------------------------------
 * Determinism and snapshots
 * ------------------------------------------------------------------- */
#define SNAP_POLICY \
  "model a { input $3/Mtok output $3/Mtok p50 200ms p95 500ms quality 0.9 }\n" \
  "model b { input $1/Mtok output $1/Mtok p50 300ms p95 800ms quality 0.7 }\n" \
  "model c { input $2/Mtok output $2/Mtok p50 100ms p95 400ms quality 0.8 }\n" \
  "model d { input $0.5/Mtok output $0.5/Mtok p95 2s quality 0.6 }\n" \
  "budget daily { key req.tenant  limit $10  window 1d }\n" \
  "route r { fallbacks 2  require fits && healthy && error_rate < 20%\n" \
  "  when budget.daily.used >= 100% -> cheapest(models)\n" \
  "  when req.latency_budget > 0ms -> fastest(models where p95 <= req.latency_budget)\n" \
  "  when req.tier == \"pro\" -> best(models), shadow d 50%\n" \
  "  otherwise -> cheapest(models where p50 < 1s) }\n"

#define NSNAPREQ 12
static const char *const SNAPREQ[NSNAPREQ] = {
  "tenant=acme user=u1",
  "tenant=acme user=u2 latency_budget=1000",
  "tenant=acme user=u3 tier=pro",
  "tenant=acme user=u4 latency_budget=450",
  "tenant=broke user=u5",
  "tenant=broke user=u6 tier=pro",
  "tenant=new user=u7 latency_budget=3000",
  "tenant=new user=u8 tier=pro input_tokens=1000 max_output_tokens=200",
  "user=u9",
  "user=u10 latency_budget=2500",
  "tenant=acme user=u11 tier=pro",
  "tenant=acme user=u12 latency_budget=100",
};

/* Brings the live runtime to an interesting state: live latencies, an
 * open breaker, a high error rate, spend. */
static void snap_state(int open_a) {
  NOW = T0 + 7 * HOUR;
  observe_n("a", 30, 900, LANE_CALL_OK);     /* a slower than its prior */
  observe_n("c", 25, 120, LANE_CALL_OK);
  observe_n("c", 10, 120, LANE_CALL_SERVER_ERROR);   /* error rate 10/35 */
  observe_n("b", 40, 300, LANE_CALL_OK);
  if (open_a) observe_n("a", 5, 100, LANE_CALL_TIMEOUT);
  charge("tenant=acme", 2.5);
  charge("tenant=broke", 10);
  NOW += 1234;
}

static void write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  if (!f) bail("cannot write %s", path);
  fputs(s, f);
  fclose(f);
}

/* A request spec as a flat JSON object for lane eval. */
static void spec_json(const char *spec, char *out, size_t cap) {
  char buf[256], *save = NULL, *tok;
  size_t len = (size_t)snprintf(out, cap, "{");
  snprintf(buf, sizeof buf, "%s", spec);
  for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(tok, '=');
    *eq++ = 0;
    int f = lane_field(P, tok);
    int str = lane_field_type(P, f) == LANE_T_STRING;
    len += (size_t)snprintf(out + len, cap - len, "%s\"%s\": %s%s%s", len > 1 ? ", " : "", tok,
                            str ? "\"" : "", eq, str ? "\"" : "");
  }
  snprintf(out + len, cap - len, "}");
}

static void test_snapshots(void) {
  lane_decision live[NSNAPREQ];
  int rcs[NSNAPREQ];
  setup(SNAP_POLICY, opts(0, 0, 0, 0, 0));
  snap_state(0);
  /* same program + request + state => same decision, twice */
  int same = 1;
  for (int i = 0; i < NSNAPREQ; i++) {
    lane_decision d1;
    rcs[i] = decide("r", SNAPREQ[i]);
    d1 = D;
    decide("r", SNAPREQ[i]);
    if (memcmp(&d1, &D, sizeof D)) same = 0;
    live[i] = d1;
  }
  ok(same, "the same request against the same live state decides the same, twice");
  /* snapshot parses and says what it should */
  char *snap = snapshot(RT);
  json_error_t je;
  json_t *root = json_loads(snap, 0, &je);
  ok(root != NULL, "snapshot JSON parses (%s)", root ? "ok" : je.text);
  is_int(json_integer_value(json_object_get(root, "now_ms")), NOW, "now_ms is the clock");
  ok(json_is_string(json_object_get(root, "program")), "program checksum present");
  json_t *models = json_object_get(root, "models");
  is_int(json_array_size(models), 3, "3 models with live state (d has none)");
  int seen_c = 0;
  size_t i;
  json_t *m;
  json_array_foreach(models, i, m) {
    if (strcmp(json_string_value(json_object_get(m, "model")), "c")) continue;
    seen_c = 1;
    is_int(json_integer_value(json_object_get(m, "samples")), 35, "c: 35 samples");
    is_dbl(json_number_value(json_object_get(m, "error_rate")), 10.0 / 35, 1e-15, "c: error rate 10/35");
    is_str(json_string_value(json_object_get(m, "state")), "open", "c: 10 failures opened its breaker");
    lane_live_stats s = stats("c");
    ok(json_number_value(json_object_get(m, "p95")) == s.p95, "c: p95 is lane_model_stats' to the bit");
  }
  ok(seen_c, "c is in the snapshot");
  json_t *bud = json_array_get(json_object_get(root, "budgets"), 0);
  is_str(json_string_value(json_object_get(bud, "budget")), "daily", "budget daily listed");
  is_int(json_array_size(json_object_get(bud, "keys")), 2, "...with 2 keys");
  json_decref(root);

  /* in-process replay: state_runtime (the code behind lane eval --state) */
  char path[1024];
  snprintf(path, sizeof path, "%s", scratch("snapshot.json"));
  write_file(path, snap);
  lane_runtime *rt2 = state_runtime(P, path, stderr);
  ok(rt2 != NULL, "state_runtime reads the snapshot");
  int equal = 0;
  for (int k = 0; rt2 && k < NSNAPREQ; k++) {
    lane_request r;
    lane_decision d;
    set_fields(&r, P, SNAPREQ[k]);
    int rc = lane_decide(rt2, "r", &r, &d);
    if (rc == rcs[k] && !memcmp(&d, &live[k], sizeof d)) equal++;
    else diag("request %d (%s): live %s [%d], replay rule %d primary %s", k, SNAPREQ[k],
              lane_status_name(rcs[k]), live[k].rule, d.rule,
              d.ncandidates ? lane_model_name(P, d.candidates[0]) : "-");
  }
  is_int(equal, NSNAPREQ, "the replay reproduces every live decision exactly");
  /* two replays from one snapshot agree */
  lane_runtime *rt3 = state_runtime(P, path, stderr);
  int agree = 0;
  for (int k = 0; rt2 && rt3 && k < NSNAPREQ; k++) {
    lane_request r;
    lane_decision d2, d3;
    set_fields(&r, P, SNAPREQ[k]);
    lane_decide(rt2, "r", &r, &d2);
    lane_decide(rt3, "r", &r, &d3);
    agree += !memcmp(&d2, &d3, sizeof d2);
  }
  is_int(agree, NSNAPREQ, "same program + request + snapshot => identical decision");
  lane_runtime_free(rt3);

  /* the lane command: lane eval POLICY --route r --state SNAPSHOT REQ */
  const char *lane = getenv("LANE");
  char cmd[8192], lanepath[1024];
  snprintf(lanepath, sizeof lanepath, "%s", lane && *lane ? lane : "build/lane");
  struct stat sb;
  if (stat(lanepath, &sb) != 0) {
    ok(0, "the lane command is built at %s (make test builds it)", lanepath);
  } else {
    char pol[1024], rq[1024];
    snprintf(pol, sizeof pol, "%s", scratch("snap_policy.lane"));
    snprintf(rq, sizeof rq, "%s", scratch("snap_req.json"));
    write_file(pol, SNAP_POLICY);
    int agree_cli = 0;
    for (int k = 0; k < NSNAPREQ; k++) {
      char js[512], out[4096] = "";
      spec_json(SNAPREQ[k], js, sizeof js);
      write_file(rq, js);
      snprintf(cmd, sizeof cmd, "'%s' eval '%s' --route r --state '%s' '%s' 2>&1", lanepath, pol,
               path, rq);
      FILE *pp = popen(cmd, "r");
      size_t got = pp ? fread(out, 1, sizeof out - 1, pp) : 0;
      out[got] = 0;
      if (pp) pclose(pp);
      json_t *o = json_loads(out, 0, &je);
      const char *prim = json_string_value(json_object_get(o, "primary"));
      json_int_t rule = json_integer_value(json_object_get(o, "rule"));
      int match;
      if (rcs[k] == LANE_OK) {
        match = prim && !strcmp(prim, lane_model_name(P, live[k].candidates[0])) &&
                rule == live[k].rule;
        json_t *fb = json_object_get(o, "fallbacks");
        match = match && (int)json_array_size(fb) == live[k].ncandidates - 1;
        for (int c = 1; match && c < live[k].ncandidates; c++)
          match = !strcmp(json_string_value(json_array_get(fb, (size_t)c - 1)),
                          lane_model_name(P, live[k].candidates[c]));
      } else {
        match = prim == NULL;
      }
      if (match) agree_cli++;
      else diag("lane eval on %s: %s", SNAPREQ[k], out);
      json_decref(o);
    }
    is_int(agree_cli, NSNAPREQ, "`lane eval --state` reproduces every live decision");
  }

  /* with a breaker whose cooldown is over: the snapshot, taken before the
   * decision, replays the probe the same way */
  lane_runtime_free(rt2);
  free(snap);
  setup(SNAP_POLICY, opts(0, 0, 0, 0, 0));
  snap_state(1);
  NOW += 30000;   /* a's cooldown (default 30 s) is over */
  snap = snapshot(RT);
  write_file(path, snap);
  rt2 = state_runtime(P, path, stderr);
  int eq2 = 0;
  for (int k = 0; rt2 && k < NSNAPREQ; k++) {
    lane_request r;
    lane_decision d1, d2;
    set_fields(&r, P, SNAPREQ[k]);
    int r1 = lane_decide(RT, "r", &r, &d1);
    int r2 = lane_decide(rt2, "r", &r, &d2);
    eq2 += r1 == r2 && !memcmp(&d1, &d2, sizeof d1);
  }
  is_int(eq2, NSNAPREQ, "open breakers and probes replay identically");
  lane_runtime_free(rt2);
  free(snap);

  /* set_model_stats / lane_model_stats round trip */
  lane_live_stats in = {123.5, 456.25, 0.125, 50, LANE_BREAKER_OPEN, NOW + 5000}, outst;
  is_int(lane_runtime_set_model_stats(RT, mi("d"), &in), LANE_OK, "set_model_stats");
  lane_model_stats(RT, mi("d"), &outst);
  ok(outst.p50 == in.p50 && outst.p95 == in.p95 && outst.error_rate == in.error_rate &&
     outst.samples == in.samples && outst.state == in.state && outst.until_ms == in.until_ms,
     "lane_model_stats reads back what set_model_stats set");
  in.state = 3;
  is_int(lane_runtime_set_model_stats(RT, mi("d"), &in), LANE_EARG, "state 3: LANE_EARG");

  /* A runtime with non-default options: its snapshot should replay the
   * same, but the snapshot does not carry min_samples. */
  setup(SNAP_POLICY, opts(0, 5, 0, 0, 0));
  NOW = T0 + HOUR;
  observe_n("a", 10, 90, LANE_CALL_OK);   /* a now fast: live with min_samples 5 */
  decide("r", "latency_budget=450");
  lane_decision livd = D;
  snap = snapshot(RT);
  write_file(path, snap);
  rt2 = state_runtime(P, path, stderr);
  lane_request r;
  set_fields(&r, P, "latency_budget=450");
  lane_decision rep;
  lane_decide(rt2, "r", &r, &rep);
  ok(!memcmp(&rep, &livd, sizeof rep),
       "a snapshot of a runtime with min_samples 5 replays the same (regression of: live primary %s, "
       "replay %s: the snapshot has no options, the replay's min_samples 20 hides 10 samples)",
       lane_model_name(P, livd.candidates[0]),
       rep.ncandidates ? lane_model_name(P, rep.candidates[0]) : "-");
  lane_runtime_free(rt2);
  free(snap);
}

/* ---------------------------------------------------------------------
 * Issue 13: money and time are bounded
 * ------------------------------------------------------------------- */

/* Clock steps: spend is never hidden, health recovers. */
#define STEP_POLICY \
  "model a { input $1/Mtok output $1/Mtok p50 50ms p95 200ms }\n" \
  "model b { input $1/Mtok output $1/Mtok p50 50ms p95 300ms }\n" \
  "route r { fallbacks 1  require healthy  otherwise -> cheapest(models) }\n"

/* lane_runtime_options.frozen: each runtime keeps its own time (the lane
 * command's snapshot reader kept one static time for all of them). */
static void test_frozen_clock(void) {
  lane_error err;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  lane_runtime_options a = {0}, b = {0};
  a.frozen = 1;
  a.frozen_ms = T0 + HOUR;
  b.frozen = 1;
  b.frozen_ms = 0;   /* the epoch itself is a time, not "unset" */
  lane_runtime *ra = lane_runtime_new_with(P, &a, &err);
  a.frozen_ms = 1;   /* the caller's struct may change or go away */
  lane_runtime *rb = lane_runtime_new_with(P, &b, &err);
  ok(ra && rb, "two runtimes with frozen clocks");
  if (ra && rb) {
    ok(lane_runtime_now(ra) == T0 + HOUR && lane_runtime_now(rb) == 0,
       "each stands at its own time: %llu and %llu", (unsigned long long)lane_runtime_now(ra),
       (unsigned long long)lane_runtime_now(rb));
  }
  lane_runtime_free(ra);
  lane_runtime_free(rb);
}

static void test_clock_steps(void) {
  lane_error err;
  /* fixed: $0.01 two days ahead, then $50 now, against $10 a day */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 2 * DAY + HOUR;
  charge("tenant=acme", 0.01);
  NOW = T0 + HOUR;   /* the clock steps back two days */
  charge("tenant=acme", 50);
  is_int(spent_nanos("daily", "acme"), 50010000000LL,
         "fixed window, clock stepped back: both charges read (regression of: $0, the $50 went to "
         "a slot tagged two days ahead that reads ignore)");
  decide("r", "tenant=acme");
  is_int(D.rule, 1, "...and the over-budget rule fires");
  NOW = T0 + 2 * DAY + 2 * HOUR;
  is_int(spent_nanos("daily", "acme"), 50010000000LL, "two days later: the same $50.01, counted once");
  NOW = T0 + 3 * DAY;
  is_int(spent_nanos("daily", "acme"), 0, "the next day: a fresh window");
  NOW = T0 + HOUR;
  is_int(spent_nanos("daily", "acme"), 50010000000LL,
         "a step back again reads the newest period holding spend (budget periods never go back)");

  /* rolling: the same, twelfth by twelfth */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 8 * HOUR;
  charge("tenant=r", 0.3);
  NOW = T0 + 5 * HOUR;   /* back three hours */
  charge("tenant=r", 0.4);
  is_int(spent_nanos("hourly", "r"), 700000000LL,
         "rolling window, clock stepped back: both charges read (regression of: $0.40)");
  NOW = T0 + 8 * HOUR + 30 * 60000;
  is_int(spent_nanos("hourly", "r"), 700000000LL, "...and once the clock is back, still $0.70");
  NOW = T0 + 20 * HOUR - 1;
  is_int(spent_nanos("hourly", "r"), 700000000LL, "until twelve twelfths after the newest began");
  NOW = T0 + 20 * HOUR;
  is_int(spent_nanos("hourly", "r"), 0, "...then gone");

  /* latency slots and breakers */
  setup(STEP_POLICY, opts(60000, 5, 5, 30000, 0));
  NOW = T0 + HOUR;
  observe_n("a", 10, 100, LANE_CALL_OK);
  observe_n("b", 5, 10, LANE_CALL_SERVER_ERROR);
  is_int(stats("b").state, LANE_BREAKER_OPEN, "b's breaker opens an hour ahead");
  NOW = T0;   /* back an hour: the slot for now is the one tagged an hour ahead */
  observe_n("a", 10, 1000, LANE_CALL_OK);
  lane_live_stats s = stats("a");
  is_int(s.samples, 10, "latency: calls observed after a step back count (regression of: 0, they "
         "went to a slot tagged an hour ahead)");
  ok(s.p95 > 900 && s.p95 < 1100, "...and p95 is theirs (%g ms)", s.p95);
  s = stats("b");
  ok(s.state == LANE_BREAKER_OPEN && s.until_ms == T0 + 30000,
     "breaker: a cooldown set an hour ahead ends one cooldown from now (until now + %lld ms; "
     "regression of: an hour and 30 s)", (long long)(s.until_ms - T0));
  NOW = T0 + 29999;
  decide("r", "");
  is_str(cands(), "a", "...closed to decisions before it");
  NOW = T0 + 30000;
  decide("r", "");
  is_str(cands(), "a b", "...and probed once it is over");
  NOW = T0 + 2 * HOUR;   /* forward again: the window moved on */
  observe_n("a", 6, 50, LANE_CALL_OK);
  is_int(stats("a").samples, 6, "a step forward: only the calls of the new window");

  /* a file saved by a host whose clock ran two days ahead */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 2 * DAY + 5 * HOUR;
  charge("tenant=acme org=7", 3);
  const char *fp = scratch("future.lanert");
  is_int(lane_runtime_save(RT, fp, &err), LANE_OK, "save two days ahead");
  lane_runtime_options o = opts(0, 0, 0, 0, 0);
  lane_runtime_free(RT);
  RT = lane_runtime_new_with(P, &o, &err);
  NOW = T0 + HOUR;
  lane_state_report rep;
  memset(&rep, 0, sizeof rep);
  is_int(lane_runtime_load_ex(RT, fp, &rep, &err), LANE_OK, "load it now (%s)", err.message);
  is_int(spent_nanos("daily", "acme"), 3000000000LL, "a file from the future: its fixed-window "
         "spend reads now (regression of: $0 until the clock catches up two days later)");
  is_int(spent_nanos("hourly", "acme"), 3000000000LL, "...its rolling spend too");
  is_int(spent_nanos("byorg", "7"), 3000000000LL, "...and the int-keyed budget's");
  is_int(rep.budgets_shifted, 3, "the report: 3 budgets shifted back");
  NOW = T0 + 13 * HOUR - 1;
  is_int(spent_nanos("hourly", "acme"), 3000000000LL, "shifted rolling spend ages from now");
  NOW = T0 + 13 * HOUR;
  is_int(spent_nanos("hourly", "acme"), 0, "...and expires twelve twelfths later");
  NOW = T0 + DAY;
  is_int(spent_nanos("daily", "acme"), 0, "shifted fixed spend: gone the next day");
}

/* Key text is read by the key field's type, exactly. */
#define KEY_POLICY \
  "model m { input $1/Mtok output $1/Mtok }\n" \
  "request { org: int  acct: uint  flag: bool  score: double }\n" \
  "budget by_org { key req.org  limit $10  window 1d }\n" \
  "budget by_acct { key req.acct  limit $10  window 1d }\n" \
  "budget by_flag { key req.flag  limit $10  window 1d }\n" \
  "budget by_score { key req.score  limit $10  window 1d }\n" \
  "budget by_tenant { key req.tenant  limit $10  window 1d }\n" \
  "route r { otherwise -> m }\n"

static uint64_t kh(const char *budget, const char *key) {
  return lane_budget_key_hash(P, lane_budget(P, budget), key, strlen(key));
}

static void test_key_hash(void) {
  setup(KEY_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + HOUR;
  charge("acct=9223372036854775813", 2);
  is_int(spent_nanos("by_acct", "9223372036854775813"), 2000000000LL,
         "uint key 2^63+5 reads its $2 (regression of: $0, strtoll clamped the text to 2^63-1)");
  is_int(spent_nanos("by_acct", "9223372036854775807"), 0, "...and 2^63-1 is another key");
  charge("acct=18446744073709551615", 1);
  is_int(spent_nanos("by_acct", "18446744073709551615"), 1000000000LL, "uint key 2^64-1");
  ok(!kh("by_acct", "18446744073709551616") && !kh("by_acct", "-1") && !kh("by_acct", "+5"),
     "uint keys 2^64, -1, +5: invalid (0)");
  charge("org=0", 1);
  ok(kh("by_org", "abc") == 0, "int key 'abc': invalid, 0 (regression of: hashed as 0, reading key 0's $1)");
  is_int(spent_nanos("by_org", "abc"), -1, "...which lane_budget_spent refuses");
  is_int(spent_nanos("by_org", "0"), 1000000000LL, "...while '0' is key 0");
  static const char *const bad[] = {"", " 5", "5 ", "+5", "0x10", "1e3", "5abc", "--5", "-",
                                    "9223372036854775808", "-9223372036854775809", "5\n"};
  int nbad = 0;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) nbad += kh("by_org", bad[i]) == 0;
  is_int(nbad, (int)(sizeof bad / sizeof *bad), "int keys with spaces, signs, hex, exponents, "
         "trailing text or out of range: all invalid");
  ok(kh("by_org", "007") == kh("by_org", "7") && kh("by_org", "7"), "int key '007' is 7");
  charge("org=-9223372036854775808", 1);
  is_int(spent_nanos("by_org", "-9223372036854775808"), 1000000000LL, "int key INT64_MIN");
  charge("org=-7", 1);
  is_int(spent_nanos("by_org", "-7"), 1000000000LL, "negative int key");
  charge("flag=true", 1);
  is_int(spent_nanos("by_flag", "true"), 1000000000LL, "bool key 'true'");
  is_int(spent_nanos("by_flag", "false"), 0, "bool key 'false': another key");
  ok(kh("by_flag", "1") == kh("by_flag", "true") && kh("by_flag", "0") == kh("by_flag", "false"),
     "bool keys '1' and '0' are true and false (as lane_set_bool stores them)");
  ok(!kh("by_flag", "yes") && !kh("by_flag", "True") && !kh("by_flag", "2"),
     "bool keys 'yes', 'True', '2': invalid");
  charge("score=0.5", 1);
  is_int(spent_nanos("by_score", "0.5"), 1000000000LL, "double key 0.5");
  ok(kh("by_score", ".5") == kh("by_score", "5e-1"), "...is .5 and 5e-1");
  ok(!kh("by_score", "nan") && !kh("by_score", "inf") && !kh("by_score", "0x1p-1") &&
     !kh("by_score", "1e999") && !kh("by_score", "0.5 "), "double keys nan, inf, hex, 1e999, "
     "trailing space: invalid");
  ok(kh("by_tenant", "abc") && kh("by_tenant", "abc") != kh("by_tenant", "0"),
     "string keys are their bytes: 'abc' is not '0'");
  ok(kh("by_tenant", "") != 0, "the empty string is a string key");
}

/* Keys whose window passed give their slot to new keys. */
static void test_key_reclaim(void) {
  char key[64];
  lane_budget_stats st;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  NOW = T0 + HOUR;
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 1);
  }
  NOW = T0 + DAY + HOUR;   /* every window of yesterday's tenants has passed */
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "tenant=n%d", i);
    charge(key, 1);
  }
  is_int(spent_nanos("daily", "n10"), 0, "a new tenant on a table of expired keys reads $0 "
         "(regression of: $10, ten new tenants shared the overflow account)");
  int own = 0;
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "n%d", i);
    own += spent_nanos("daily", key) == 1000000000LL && spent_nanos("hourly", key) == 1000000000LL;
  }
  is_int(own, 10, "each of 10 new tenants has its own account, in slots of yesterday's");
  lane_runtime_budget_stats(RT, lane_budget(P, "daily"), &st);
  ok(st.reclaimed == 10 && st.keys == 16 && st.overflow_charges == 0 && st.slots == 16 &&
     st.capacity == 16, "stats: 10 reclaimed, 16 keys in 16 slots, no overflow (%llu, %llu, %llu)",
     (unsigned long long)st.reclaimed, (unsigned long long)st.keys,
     (unsigned long long)st.overflow_charges);
  NOW = T0 + DAY + 2 * HOUR;
  for (int i = 0; i < 6; i++) {
    snprintf(key, sizeof key, "tenant=m%d", i);
    charge(key, 1);
  }
  charge("tenant=late", 0.5);
  is_int(spent_nanos("daily", "late"), 500000000LL,
         "with 16 live keys, the 17th goes to the overflow account");
  is_int(spent_nanos("daily", "n0"), 1000000000LL, "...and no live key lost its slot");
  lane_runtime_budget_stats(RT, lane_budget(P, "daily"), &st);
  is_int(st.overflow_charges, 1, "stats: 1 overflow charge");

  /* rolling: a key's slot is free twelve twelfths after its newest charge */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  NOW = T0;
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 1);
  }
  NOW = T0 + 12 * HOUR - 1;
  charge("tenant=x", 1);
  is_int(spent_nanos("hourly", "x"), 1000000000LL, "rolling 12h at 11:59: keys still live, x shares the overflow");
  NOW = T0 + 12 * HOUR;
  charge("tenant=y", 2);
  is_int(spent_nanos("hourly", "y"), 2000000000LL, "at 12:00 the keys of 00:00 have expired: y has its own");
  is_int(spent_nanos("daily", "y"), 3000000000LL, "...while the day's fixed window still holds them (y shares the overflow)");
}

/* What a key without a slot reads: LANE_ON_FULL_*. */
static void test_on_full(void) {
  char key[64];
  lane_error err;
  lane_budget_stats st;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  NOW = T0 + HOUR;
  int daily = lane_budget(P, "daily"), hourly = lane_budget(P, "hourly");
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 0.1);
  }
  charge("tenant=spill", 9.5);
  is_int(spent_nanos("daily", "nobody"), 9500000000LL, "shared (default): a key without a slot reads the overflow account");
  decide("r", "tenant=nobody");
  is_int(D.rule, 2, "...so a new tenant starts at $9.50 of $10 (rule 2)");
  is_int(lane_runtime_set_budget_on_full(RT, daily, LANE_ON_FULL_CLOSED), LANE_OK, "set closed");
  is_int(spent_nanos("daily", "nobody"), 10000000000LL, "closed: it reads as at its limit");
  decide("r", "tenant=nobody");
  is_int(D.rule, 1, "...and the over-budget rule fires");
  is_int(lane_runtime_set_budget_on_full(RT, daily, LANE_ON_FULL_OPEN), LANE_OK, "set open");
  lane_runtime_set_budget_on_full(RT, hourly, LANE_ON_FULL_OPEN);
  is_int(spent_nanos("daily", "nobody"), 0, "open: it reads $0");
  decide("r", "tenant=nobody");
  is_int(D.rule, 4, "...and no budget rule fires");
  is_int(spent_nanos("daily", "t3"), 100000000LL, "keys with a slot read their own in every mode");
  char *snap = snapshot(RT);
  ok(strstr(snap, "\"on_full\": \"open\"") != NULL, "the snapshot says each budget's mode");
  free(snap);
  is_int(lane_runtime_set_budget_on_full(RT, daily, 3), LANE_EARG, "mode 3: LANE_EARG");
  is_int(lane_runtime_set_budget_on_full(RT, 99, 0), LANE_EARG, "budget 99: LANE_EARG");
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "tenant=flood%d", i);
    charge(key, 0.01);
  }
  lane_runtime_budget_stats(RT, daily, &st);
  ok(st.overflow_charges == 101 && st.overflow_keys >= 96 && st.overflow_keys <= 106,
     "metric: 101 charges of 101 keys without a slot; estimated keys %llu",
     (unsigned long long)st.overflow_keys);
  is_int(st.on_full, LANE_ON_FULL_OPEN, "...and the mode in effect");

  setup(BUD_POLICY, opts(0, 0, 0, 0, 16));
  is_int(lane_runtime_set_budget_on_full(RT, -1, LANE_ON_FULL_CLOSED), LANE_OK, "budget -1: every budget");
  NOW = T0 + HOUR;
  for (int i = 0; i < 17; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 0.1);
  }
  decide("r", "tenant=t16");
  is_int(D.rule, 1, "...closed: the 17th tenant is capped");
  /* The policy says it: on_full in the budget's declaration. */
  setup("model cheap { input $0.1/Mtok output $0.1/Mtok }\n"
        "model good { input $5/Mtok output $5/Mtok }\n"
        "budget daily { key req.tenant  limit $10  window 1d  on_full closed }\n"
        "budget loose { key req.tenant  limit $10  window 1d  on_full open }\n"
        "route r { when budget.daily.used >= 100% -> cheap\n"
        "          otherwise -> good }\n", opts(0, 0, 0, 0, 16));
  NOW = T0 + HOUR;
  lane_runtime_budget_stats(RT, lane_budget(P, "daily"), &st);
  is_int(st.on_full, LANE_ON_FULL_CLOSED, "on_full closed in the policy: the mode in effect");
  lane_runtime_budget_stats(RT, lane_budget(P, "loose"), &st);
  is_int(st.on_full, LANE_ON_FULL_OPEN, "on_full open in the policy: the mode in effect");
  for (int i = 0; i < 16; i++) {
    snprintf(key, sizeof key, "tenant=t%d", i);
    charge(key, 0.1);
  }
  decide("r", "tenant=t3");
  is_int(D.rule, 2, "on_full closed: a tenant with a slot reads its own $0.10");
  decide("r", "tenant=newcomer");
  is_int(D.rule, 1, "...a tenant without one is capped");
  is_int(spent_nanos("loose", "newcomer"), 0, "on_full open: a tenant without a slot reads $0");

  is_int(lane_runtime_set_budget_on_full(RT, -2, 0), LANE_EARG, "budget -2: LANE_EARG");
  is_int(lane_runtime_set_budget_on_full(RT, -1, 3), LANE_EARG, "budget -1, mode 3: LANE_EARG");
  memset(&err, 0, sizeof err);
  lane_runtime_options o = opts(0, 0, 0, 0, (1u << 24) + 1);
  ok(!lane_runtime_new_with(P, &o, &err) && err.code == LANE_EARG && strstr(err.message, "16777216"),
     "budget_keys above 2^24: LANE_EARG, not a silent clamp (%s)", err.message);
}

/* Memory follows use. A key slot's own bytes: its hash, its state and
 * its byte of the level's key filter. */
#define VM_KEY_BYTES (sizeof(atomic_uint_least64_t) + sizeof(vm_meta) + 1)

/* The table-wide key filter lets a read of a key no level holds skip
 * every level while few keys were placed, and is not read past
 * VM_KEYS_FILTER_MAX: below, at and past that count every placed key reads
 * its own spend, every other key 0, and decisions see the same. */
static void test_keys_filter(void) {
  setup("model m { input $1/Mtok output $1/Mtok }\n"
        "budget daily { key req.tenant limit $100 window 1d }\n"
        "route r {\n  when budget.daily.spent >= $0.003 -> m\n  otherwise -> m\n}\n",
        opts(0, 0, 0, 0, 8192));
  NOW = T0 + HOUR;
  int placed = 0;
  char key[32];
  const int stops[] = { 1, 100, VM_KEYS_FILTER_MAX - 1, VM_KEYS_FILTER_MAX, VM_KEYS_FILTER_MAX + 300 };
  for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
    int bad = 0, badmiss = 0, badrule = 0;
    for (; placed < stops[k]; placed++) {
      char spec[48];
      snprintf(spec, sizeof spec, "tenant=k%d", placed);
      charge(spec, 0.001 * (placed % 7 + 1));
    }
    for (int i = 0; i < placed; i++) {
      snprintf(key, sizeof key, "k%d", i);
      bad += spent_nanos("daily", key) != 1000000LL * (i % 7 + 1);
      if (i % 50 == 0) {
        char spec[48];
        snprintf(spec, sizeof spec, "tenant=k%d", i);
        badrule += decide("r", spec) != LANE_OK || D.rule != (i % 7 + 1 >= 3 ? 1 : 2);
      }
    }
    for (int i = 0; i < 2000; i++) {
      snprintf(key, sizeof key, "never%d", i);
      badmiss += spent_nanos("daily", key) != 0;
    }
    ok(bad == 0 && badmiss == 0 && badrule == 0,
       "%d keys placed: each reads its own spend, 2,000 others read 0, decisions agree "
       "(%d, %d, %d wrong)", placed, bad, badmiss, badrule);
  }
}

static void test_memory(void) {
  static char src[65000];
  size_t len = (size_t)snprintf(src, sizeof src, "model m { input $1/Mtok output $1/Mtok }\n");
  enum { NB = 1000 };
  for (int i = 0; i < NB; i++)
    len += (size_t)snprintf(src + len, sizeof src - len, "budget b%d{key req.tenant limit $1 %s 1d}\n",
                            i, i % 2 ? "rolling" : "window");
  snprintf(src + len, sizeof src - len, "route r { otherwise -> m }\n");
  setup(src, opts(0, 0, 0, 0, 0));
  NOW = T0 + HOUR;
  size_t m0 = lane_runtime_memory(RT);
  size_t base = vm_hub_bytes() + sizeof(struct lane_runtime) + (1 + 1 + NB + 1) * sizeof(void *) +
                sizeof(vm_model) + NB * sizeof(vm_budget_rt);
  is_int(m0, base, "a runtime of %d budgets: %zu bytes, exactly the formula's fixed part "
         "(regression of: 491 MB, a 4097-slot table per budget up front)", NB, m0);
  ok(m0 < 1000000, "...under a megabyte");
  charge("tenant=acme", 0.5);
  size_t l0 = 16 * (VM_KEY_BYTES + sizeof(vm_entry)), l0r = 16 * (VM_KEY_BYTES + 12 * sizeof(vm_entry));
  is_int(lane_runtime_memory(RT) - m0, (NB / 2) * (l0 + l0r),
         "one tenant: each budget allocates its first level (16 slots): %zu bytes fixed, %zu rolling", l0, l0r);
  int all = 1;
  for (int i = 0; i < NB; i++) {
    char name[16];
    double d = 0;
    snprintf(name, sizeof name, "b%d", i);
    int b = lane_budget(P, name);
    lane_budget_spent(RT, b, lane_budget_key_hash(P, b, "acme", 4), &d);
    if (d != 0.5) all = 0;
  }
  ok(all, "...and every budget holds the charge");

  /* the bound: budget_keys 64 is at most 16 + 48 slots per budget */
  setup(BUD_POLICY, opts(0, 0, 0, 0, 64));
  NOW = T0 + HOUR;
  size_t b0 = lane_runtime_memory(RT);
  char key[64];
  for (int i = 0; i < 500; i++) {
    snprintf(key, sizeof key, "tenant=t%d org=%d", i, i);
    charge(key, 0.01);
  }
  lane_budget_stats st;
  lane_runtime_budget_stats(RT, lane_budget(P, "daily"), &st);
  ok(st.slots == 64 && st.capacity == 64 && st.keys >= 56 && st.keys <= 64,
     "500 tenants, budget_keys 64: %llu slots, %llu keys", (unsigned long long)st.slots,
     (unsigned long long)st.keys);
  size_t per = 64 * (VM_KEY_BYTES + sizeof(vm_entry));
  size_t want = b0 + 2 * per + 64 * (VM_KEY_BYTES + 12 * sizeof(vm_entry)) + 3 * VM_SEEN_BITS / 8;
  is_int(lane_runtime_memory(RT), want, "memory stops at the formula's bound for 3 full budgets (%zu bytes)", want);
}

/* Saved state is keyed by budget name, key field and window. */
static void note_count(void *ctx, const char *line) { (void)line; ++*(int *)ctx; }

static lane_runtime *runtime_of(lane_program *p, uint32_t keys) {
  lane_error err;
  lane_runtime_options o = opts(0, 0, 0, 0, keys);
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err);
  if (!rt) bail("runtime: %s", err.message);
  return rt;
}

static long long spent_in(lane_runtime *rt, lane_program *p, const char *budget, const char *key) {
  int b = lane_budget(p, budget);
  double d = -1;
  if (b < 0 || lane_budget_spent(rt, b, lane_budget_key_hash(p, b, key, strlen(key)), &d)) return -1;
  return llround(d * 1e9);
}

#define BUD_CHANGED \
  "model cheap { input $0.1/Mtok output $0.1/Mtok quality 0.5 }\n" \
  "request { org: int }\n" \
  "budget daily { key req.org  limit $10  window 1d }\n" \
  "budget hourly { key req.tenant  limit $1  rolling 1d }\n" \
  "budget byorg { key req.org  limit $100  rolling 1h }\n" \
  "budget fresh { key req.tenant  limit $5  window 1d }\n" \
  "route r { otherwise -> cheap }\n"

static void test_state_matching(void) {
  lane_error err;
  lane_state_report rep;
  int calls = 0;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + 3 * HOUR;
  charge("tenant=acme org=5", 2);
  charge("tenant=beta", 1);
  const char *path = scratch("edit.lanert");
  is_int(lane_runtime_save(RT, path, &err), LANE_OK, "save");

  /* an edit that keeps every budget's meaning: a limit raised */
  static char edited[4096];
  snprintf(edited, sizeof edited, "%s", BUD_POLICY);
  memcpy(strstr(edited, "limit $10 "), "limit $20 ", 10);
  lane_program *p2 = compile_prog(edited);
  lane_runtime *rt2 = runtime_of(p2, 0);
  memset(&rep, 0, sizeof rep);
  memset(&err, 0, sizeof err);
  is_int(lane_runtime_load_ex(rt2, path, &rep, &err), LANE_OK,
         "a daily limit raised: the file loads (regression of: refused, \"the file was saved for "
         "another program\", every budget reset at deploy) (%s)", err.message);
  is_int(spent_in(rt2, p2, "daily", "acme"), 2000000000LL, "...acme's daily $2 kept");
  is_int(spent_in(rt2, p2, "hourly", "beta"), 1000000000LL, "...beta's rolling $1 kept");
  is_int(spent_in(rt2, p2, "byorg", "5"), 2000000000LL, "...org 5's $2 kept");
  ok(rep.budgets_kept == 3 && rep.budgets_dropped == 0 && rep.budgets_new == 0 &&
     rep.keys_kept == 5 && rep.nnotes == 0, "report: 3 budgets and 5 keys kept, nothing dropped");
  is_int(lane_runtime_load_ex(rt2, path, &rep, &err), LANE_OK, "load the same file again");
  is_int(spent_in(rt2, p2, "daily", "acme"), 2000000000LL, "...a key's spend is replaced, not added");
  lane_runtime_free(rt2);
  lane_program_free(p2);

  /* an edit that changes what budgets mean */
  p2 = compile_prog(BUD_CHANGED);
  if (!p2) bail("BUD_CHANGED: %s", DIAG);
  rt2 = runtime_of(p2, 0);
  memset(&rep, 0, sizeof rep);
  rep.note = note_count;
  rep.note_ctx = &calls;
  is_int(lane_runtime_load_ex(rt2, path, &rep, &err), LANE_OK, "key, window kind and length "
         "changed: the file loads (%s)", err.message);
  ok(rep.budgets_kept == 0 && rep.budgets_dropped == 3 && rep.budgets_new == 1 && rep.nnotes == 3 &&
     calls == 3, "report: 3 dropped, 1 new budget, 3 notes, 3 callbacks (%u %u %u %u %d)",
     rep.budgets_kept, rep.budgets_dropped, rep.budgets_new, rep.nnotes, calls);
  ok(strstr(rep.notes, "budget 'daily': its key was req.tenant (string) and is req.org (int) now") &&
     strstr(rep.notes, "budget 'hourly': its window was 43200000 ms and is 86400000 ms now") &&
     strstr(rep.notes, "budget 'byorg': its window was fixed and is rolling now"),
     "...each note says why");
  is_int(spent_in(rt2, p2, "hourly", "beta"), 0, "...and nothing of theirs applied");
  memset(&err, 0, sizeof err);
  is_int(lane_runtime_load(rt2, path, &err), LANE_OK, "the old entry point loads it too");
  ok(err.code == LANE_OK && !strncmp(err.message, "loaded 0 budgets, dropped 3: budget 'daily'", 42),
     "...and says what it dropped in err (%s)", err.message);
  lane_runtime_free(rt2);
  lane_program_free(p2);

  /* a budget renamed */
  p2 = compile_prog("model cheap { input $0.1/Mtok output $0.1/Mtok }\n"
                    "budget day { key req.tenant  limit $10  window 1d }\n"
                    "route r { otherwise -> cheap }\n");
  rt2 = runtime_of(p2, 0);
  lane_runtime_load_ex(rt2, path, &rep, &err);
  ok(rep.budgets_dropped == 3 && rep.budgets_new == 1 &&
     strstr(rep.notes, "budget 'daily' is not in the program: its spend is dropped"),
     "a budget renamed: dropped as not in the program");
  lane_runtime_free(rt2);
  lane_program_free(p2);

  /* version 1, built by hand: loads into the program that saved it only */
  char *snap = snapshot(RT);
  const char *ck = strstr(snap, "\"program\": \"");
  uint64_t checksum = ck ? strtoull(ck + 12, NULL, 16) : 0;
  free(snap);
  unsigned char v1[512];
  size_t n = 0;
  uint64_t day = (T0 + 3 * HOUR) / DAY;
  memcpy(v1, "LANERT\r\n", 8), n = 8;
  le32(v1 + n, 1), n += 4;
  le32(v1 + n, 3), n += 4;
  le64(v1 + n, checksum), n += 8;
  static const struct { const char *name; uint32_t ring; uint64_t sub; } v1b[] = {
    {"daily", 2, DAY}, {"hourly", 12, HOUR}, {"byorg", 2, HOUR}};
  for (int b = 0; b < 3; b++) {
    le32(v1 + n, (uint32_t)strlen(v1b[b].name)), n += 4;
    memcpy(v1 + n, v1b[b].name, strlen(v1b[b].name)), n += strlen(v1b[b].name);
    le32(v1 + n, v1b[b].ring), n += 4;
    le64(v1 + n, v1b[b].sub), n += 8;
    le32(v1 + n, b == 0), n += 4;
    if (b == 0) {   /* acme: $4 today */
      le64(v1 + n, lane_budget_key_hash(P, 0, "acme", 4)), n += 8;
      le64(v1 + n, day + 1), n += 8;
      le64(v1 + n, 4000000000ull), n += 8;
      memset(v1 + n, 0, 16), n += 16;
    }
  }
  le64(v1 + n, bc_fnv1a64(v1, n, BC_FNV_OFFSET)), n += 8;
  rt2 = runtime_of(P, 0);
  memset(&err, 0, sizeof err);
  is_int(lane_runtime_load_mem(rt2, v1, n, &rep, &err), LANE_OK, "a version-1 file loads into "
         "its program (%s)", err.message);
  is_int(spent_in(rt2, P, "daily", "acme"), 4000000000LL, "...with its spend");
  lane_runtime_free(rt2);
  p2 = compile_prog(edited);
  rt2 = runtime_of(p2, 0);
  memset(&err, 0, sizeof err);
  ok(lane_runtime_load_mem(rt2, v1, n, &rep, &err) == LANE_EFORMAT &&
     strstr(err.message, "version-1 runtime file saved for another program"),
     "...and is refused by another, saying why (%s)", err.message);
  lane_runtime_free(rt2);
  lane_program_free(p2);
}

/* Carrying live state to a runtime of an edited program. */
#define CARRY_A \
  "model a { input $1/Mtok output $1/Mtok p50 50ms p95 200ms }\n" \
  "model b { input $2/Mtok output $2/Mtok p50 50ms p95 200ms }\n" \
  "model c { input $3/Mtok output $3/Mtok }\n" \
  "budget daily { key req.tenant  limit $10  window 1d }\n" \
  "route r { fallbacks 2  require healthy  otherwise -> cheapest(models) }\n"
#define CARRY_B \
  "model d { input $0.5/Mtok output $0.5/Mtok }\n" \
  "model b { input $2/Mtok output $2/Mtok p50 50ms p95 200ms }\n" \
  "model a { input $1/Mtok output $1/Mtok p50 50ms p95 200ms }\n" \
  "budget daily { key req.tenant  limit $50  window 1d }\n" \
  "budget extra { key req.user  limit $1  window 1h }\n" \
  "route r { fallbacks 2  require healthy  otherwise -> cheapest(models) }\n"

static void test_carry(void) {
  lane_error err;
  lane_state_report rep;
  setup(CARRY_A, opts(60000, 5, 5, 30000, 0));
  NOW = T0 + HOUR;
  observe_n("a", 10, 400, LANE_CALL_OK);
  observe_n("b", 5, 10, LANE_CALL_TIMEOUT);
  charge("tenant=acme", 7);
  lane_live_stats sa = stats("a"), sb = stats("b");
  lane_program *p2 = compile_prog(CARRY_B);
  lane_runtime_options o = opts(60000, 5, 5, 30000, 0);
  lane_runtime *rt2 = lane_runtime_new_with(p2, &o, &err);
  memset(&rep, 0, sizeof rep);
  is_int(lane_runtime_carry(rt2, RT, &rep, &err), LANE_OK, "carry to an edited program");
  ok(rep.models_kept == 2 && rep.models_dropped == 1 && rep.budgets_kept == 1 &&
     rep.budgets_new == 1 && strstr(rep.notes, "model 'c' is not in the program"),
     "report: models a, b carried, c dropped; daily kept, extra new");
  lane_live_stats ta, tb;
  int ia = -1, ib = -1;
  for (int i = 0; i < lane_model_count(p2); i++) {
    if (!strcmp(lane_model_name(p2, i), "a")) ia = i;
    if (!strcmp(lane_model_name(p2, i), "b")) ib = i;
  }
  lane_model_stats(rt2, ia, &ta);
  lane_model_stats(rt2, ib, &tb);
  ok(ta.samples == sa.samples && ta.p95 == sa.p95 && ta.p50 == sa.p50,
     "a's live latency carried by name (p95 %g, %llu samples)", ta.p95, (unsigned long long)ta.samples);
  ok(tb.state == LANE_BREAKER_OPEN && tb.until_ms == sb.until_ms, "b's open breaker carried");
  is_int(spent_in(rt2, p2, "daily", "acme"), 7000000000LL, "acme's $7 carried to the raised limit");
  lane_request r;
  lane_decision d;
  set_fields(&r, p2, "tenant=acme");
  lane_decide(rt2, "r", &r, &d);
  ok(d.ncandidates == 2 && d.candidates[0] != ib && d.candidates[1] != ib,
     "decisions of the new program route around b");
  lane_runtime_free(rt2);
  o.window_ms = 120000;
  rt2 = lane_runtime_new_with(p2, &o, &err);
  is_int(lane_runtime_carry(rt2, RT, &rep, &err), LANE_OK, "carry to a runtime of another window");
  lane_model_stats(rt2, ib, &tb);
  lane_model_stats(rt2, ia, &ta);
  ok(ta.samples == 0 && tb.state == LANE_BREAKER_OPEN && strstr(rep.notes, "not carried"),
     "...breakers carried, latency not (a note says so)");
  is_int(lane_runtime_carry(rt2, rt2, &rep, &err), LANE_EARG, "carry to itself: LANE_EARG");
  lane_runtime_free(rt2);
  lane_program_free(p2);
}

/* Saving leaves a complete file or the old one, and no temporary. */
static void test_save_files(void) {
  lane_error err;
  setup(BUD_POLICY, opts(0, 0, 0, 0, 0));
  NOW = T0 + HOUR;
  charge("tenant=acme", 1);
  const char *path = scratch("files.lanert");
  for (int i = 0; i < 20; i++) lane_runtime_save(RT, path, &err);
  char dir[900];
  snprintf(dir, sizeof dir, "%s/tests/runtime", build_dir());
  int tmps = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) tmps += strstr(e->d_name, ".lanert.tmp.") != NULL;
  if (d) closedir(d);
  is_int(tmps, 0, "20 saves leave no temporary file beside the state file");
  size_t n0, n1;
  unsigned char *before = slurp(path, &n0), *after;
  memset(&err, 0, sizeof err);
  char sub[1024];
  snprintf(sub, sizeof sub, "%s.dir", path);
  mkdir(sub, 0777);
  snprintf(sub, sizeof sub, "%s.dir/x", path);
  mkdir(sub, 0777);
  snprintf(sub, sizeof sub, "%s.dir", path);
  ok(lane_runtime_save(RT, sub, &err) == LANE_EARG && strstr(err.message, "rename"),
     "saving over a directory fails at the rename (%s)", err.message);
  after = slurp(path, &n1);
  ok(n0 == n1 && !memcmp(before, after, n0), "...and the good file is untouched");
  free(before);
  free(after);
}

int main(void) {
  load_series();
  if (NROWS < 4000) bail("fixture: %d rows", NROWS);
  test_quantiles_whole();
  test_quantiles_sliding();
  test_quantiles_points();
  diag("largest relative quantile error seen: %.2f%%", 100 * worst_err);
  test_windows();
  test_breaker();
  test_live_routing();
  test_budgets();
  test_overflow();
  test_save_load();
  test_budget_edges();
  test_split_shares();
  test_shadows();
  test_candidates();
  test_snapshots();
  test_clock_steps();
  test_frozen_clock();
  test_key_hash();
  test_key_reclaim();
  test_on_full();
  test_memory();
  test_keys_filter();
  test_state_matching();
  test_carry();
  test_save_files();
  reset();
  return done_testing();
}

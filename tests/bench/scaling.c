/*
 * scaling.c -- how lane's decision time grows with rules and models, and
 * what compiling costs; the in-process compiler used by the whole bench.
 *
 * Rules: policies of 10, 100, 1,000 and 10,000 rules over 10 generated
 * models, rule i discriminating on one field: req.tenant == "t<i>",
 * req.task == "k<i>" or req.tier == "r<i>" (i mod 3), each choosing
 * cheapest(models where quality >= 0.5); requests pick a rule uniformly
 * (about 5% match none and take `otherwise`). Each policy is compiled
 * in-process (indexed: the default) and, when the lane command is given,
 * with `lane compile -O0` (no rule index); both must decide alike.
 * Models: 10 .. 1,000 generated models under a four-rule policy with
 * cheapest, best and a latency-budget fastest, on the reference request mix.
 *
 * Figures go to out/scaling.json; out/scaling.gp is drawn by gnuplot
 * into out/scaling.png when gnuplot is installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sema.h"

int bench_compile(const char *path, const char *text, unsigned char **bytes, size_t *n) {
  lanec_result r;
  int rc = lanec_compile(path, text, NULL, &r) == LANEC_OK ? 0 : -1;
  if (rc) lanec_print_diags(&r, stderr);
  *bytes = r.bytes;
  *n = r.nbytes;
  r.bytes = NULL;
  lanec_result_free(&r);
  return rc;
}

static uint64_t fixed_now = 1764331200000ull;
static uint64_t fixed_clock(void *ctx) { (void)ctx; return fixed_now; }

/* ---- policy text ---------------------------------------------------- */

static void gen_models(FILE *f, int n, uint64_t *rng) {
  static const char *const ctx[] = { "8k", "16k", "32k", "128k", "200k", "1M" };
  for (int i = 0; i < n; i++) {
    double in = 0.05 + bench_below(rng, 1500) / 100.0;     /* $0.05 .. $15 /Mtok */
    double out = in * (2 + bench_below(rng, 4));
    uint32_t caps = bench_below(rng, 8);
    fprintf(f, "model g%d { provider \"gen\" name \"g-%d\" input $%.2f/Mtok output $%.2f/Mtok "
               "context %s max_output 8k quality %.2f p95 %ums", i, i, in, out,
            ctx[bench_below(rng, 6)], 0.3 + bench_below(rng, 66) / 100.0,
            200 + 100 * bench_below(rng, 100));
    if (caps)
      fprintf(f, " caps %s%s%s%s%s", caps & 1 ? "vision" : "", caps & 1 && caps & 6 ? ", " : "",
              caps & 2 ? "tools" : "", caps & 2 && caps & 4 ? ", " : "", caps & 4 ? "json" : "");
    fprintf(f, " }\n");
  }
}

static const char KEYS[3][8] = { "tenant", "task", "tier" };
static const char PREFIX[3] = { 't', 'k', 'r' };

static char *rules_policy(int nrules, size_t *len) {
  char *buf = NULL;
  uint64_t rng = 42;
  FILE *f = open_memstream(&buf, len);
  gen_models(f, 10, &rng);
  fprintf(f, "route r {\n  fallbacks 2\n  require fits\n");
  /* Three runs of rules, on tenant, then task, then tier (as a policy
   * groups its per-tenant and per-task rules): each run is indexed. */
  for (int i = 0; i < nrules; i++) {
    int k = (int)((long)i * 3 / nrules);
    fprintf(f, "  when req.%s == \"%c%d\" -> cheapest(models where quality >= 0.5)\n",
            KEYS[k], PREFIX[k], i);
  }
  fprintf(f, "  otherwise -> cheapest(models)\n}\n");
  fclose(f);
  return buf;
}

static char *models_policy(int nmodels, size_t *len) {
  char *buf = NULL;
  uint64_t rng = 7;
  FILE *f = open_memstream(&buf, len);
  gen_models(f, nmodels, &rng);
  fprintf(f,
    "route r {\n  fallbacks 2\n  require fits && healthy\n  require !req.tools || tools\n"
    "  when req.latency_budget > 0ms -> fastest(models where p95 <= req.latency_budget)\n"
    "  when req.tier == \"enterprise\" -> best(models where quality >= 0.7)\n"
    "  when req.tier == \"pro\" -> cheapest(models where quality >= 0.6)\n"
    "  otherwise -> cheapest(models where quality >= 0.4)\n}\n");
  fclose(f);
  return buf;
}

/* ---- requests and timing ------------------------------------------- */

static char VALS[3][10000][8];      /* "t<i>", "k<i>", "r<i>" */
static uint8_t VLEN[3][10000];

static void rule_requests(breq *q, int n, int nrules) {
  uint64_t rng = 0xabcdef;
  for (int i = 0; i < n; i++) {
    uint32_t j = bench_below(&rng, (uint32_t)(nrules + nrules / 19 + 1));
    memset(&q[i], 0, sizeof q[i]);
    q[i].task = q[i].tier = q[i].tenant = "none";
    q[i].ntask = q[i].ntier = q[i].ntenant = 4;
    q[i].user = bench_user((int)bench_below(&rng, BENCH_USERS), &q[i].nuser);
    bench_trace_pick(&rng, &q[i].in, &q[i].out);
    if (j < (uint32_t)nrules) {
      int k = (int)((long)j * 3 / nrules);   /* the field of rule j's run */
      const char *v = VALS[k][j];
      uint8_t len = VLEN[k][j];
      if (k == 0) { q[i].tenant = v; q[i].ntenant = len; }
      else if (k == 1) { q[i].task = v; q[i].ntask = len; }
      else { q[i].tier = v; q[i].ntier = len; }
    }
  }
}

typedef struct loaded {
  lane_program *p;
  lane_runtime *rt;
  int f[8];                /* task tier tenant user in out tools latency */
} loaded;

static int load(const unsigned char *b, size_t n, loaded *L, double *load_ms) {
  lane_error err;
  lane_runtime_options o;
  static const char *const names[8] = { "task", "tier", "tenant", "user", "input_tokens",
                                        "max_output_tokens", "tools", "latency_budget" };
  uint64_t t0 = bench_ns();
  memset(L, 0, sizeof *L);
  if (!(L->p = lane_load(b, n, &err))) {
    fprintf(stderr, "bench: lane_load: %s\n", err.message);
    return -1;
  }
  if (load_ms) *load_ms = (double)(bench_ns() - t0) / 1e6;
  memset(&o, 0, sizeof o);
  o.clock = fixed_clock;
  if (!(L->rt = lane_runtime_new_with(L->p, &o, &err))) {
    fprintf(stderr, "bench: lane_runtime_new: %s\n", err.message);
    lane_program_free(L->p);
    return -1;
  }
  for (int k = 0; k < 8; k++) L->f[k] = lane_field(L->p, names[k]);
  return 0;
}

static void unload(loaded *L) {
  lane_runtime_free(L->rt);
  lane_program_free(L->p);
}

static double pass(const loaded *L, const breq *q, int n, bsum *s) {
  uint64_t t0 = bench_ns();
  bsum_init(s);
  for (int i = 0; i < n; i++) {
    lane_request r;
    lane_decision d;
    lane_request_init(&r, L->p);
    lane_set_str(&r, L->f[0], q[i].task, q[i].ntask);
    lane_set_str(&r, L->f[1], q[i].tier, q[i].ntier);
    lane_set_str(&r, L->f[2], q[i].tenant, q[i].ntenant);
    lane_set_str(&r, L->f[3], q[i].user, q[i].nuser);
    lane_set_int(&r, L->f[4], q[i].in);
    lane_set_int(&r, L->f[5], q[i].out);
    if (q[i].tools) lane_set_bool(&r, L->f[6], 1);
    if (q[i].latency_ms) lane_set_double(&r, L->f[7], q[i].latency_ms);
    if (lane_decide_route(L->rt, 0, &r, &d) == LANE_OK)
      bsum_add(s, d.rule, d.ncandidates, d.candidates, d.cost);
    else
      bsum_add(s, 0, 0, d.candidates, 0);
  }
  return (double)(bench_ns() - t0) / n;
}

/* Median ns per decision over 5 passes of a request count sized so that
 * a pass takes about 40 ms (at least 1,000, at most all n). */
static double time_point(const loaded *L, const breq *q, int n, bsum *s) {
  double t[5], probe = pass(L, q, n < 500 ? n : 500, s);
  int m = (int)(40e6 / (probe > 1 ? probe : 1));
  if (m < 1000) m = 1000;
  if (m > n) m = n;
  for (int k = 0; k < 5; k++) t[k] = pass(L, q, m, s);
  return bench_median(t, 5);
}

/* ---- the runs ------------------------------------------------------- */

static int lane_O0(const char *lane_cmd, const char *out, int nrules, const char *text,
                   size_t len, unsigned char **b, size_t *n) {
  char src[4096], dst[4096], cmd[9000];
  FILE *f;
  snprintf(src, sizeof src, "%s/rules_%d.lane", out, nrules);
  snprintf(dst, sizeof dst, "%s/rules_%d_O0.lanec", out, nrules);
  if (!(f = fopen(src, "w")) || fwrite(text, 1, len, f) != len) { if (f) fclose(f); return -1; }
  fclose(f);
  snprintf(cmd, sizeof cmd, "'%s' compile -O0 '%s' -o '%s' 2>/dev/null", lane_cmd, src, dst);
  if (system(cmd) != 0 || !(f = fopen(dst, "rb"))) return -1;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  *b = malloc(*n);
  if (!*b || fread(*b, 1, *n, f) != *n) { fclose(f); free(*b); return -1; }
  fclose(f);
  return 0;
}

static void plot(const char *out, const scale_result *r) {
  char path[4096], cmd[9000];
  FILE *f;
  snprintf(path, sizeof path, "%s/scaling.gp", out);
  if (!(f = fopen(path, "w"))) return;
  fprintf(f, "$rules << EOD\n");
  for (int k = 0; k < r->nrules; k++)
    fprintf(f, "%d %.2f %.2f\n", r->rules[k], r->rules_ns[k],
            r->rules_noopt_ns[k] > 0 ? r->rules_noopt_ns[k] : 0.0 / 0.0);
  fprintf(f, "EOD\n$models << EOD\n");
  for (int k = 0; k < r->nmodels; k++) fprintf(f, "%d %.2f\n", r->models[k], r->models_ns[k]);
  fprintf(f, "EOD\n$compile << EOD\n");
  for (int k = 0; k < r->nrules; k++)
    fprintf(f, "%d %.3f %.3f\n", r->rules[k], r->rules_compile_ms[k], r->rules_load_ms[k]);
  fprintf(f, "EOD\n"
    "set terminal pngcairo size 1500,480 font ',10' noenhanced\n"
    "set output '%s/scaling.png'\n"
    "set multiplot layout 1,3 title 'lane: decision and compile time (make bench)'\n"
    "set logscale xy\nset grid\nset key top left\nset datafile missing 'nan'\n"
    "set xlabel 'rules'\nset ylabel 'ns per decision'\n"
    "plot $rules using 1:2 with linespoints lw 2 title 'indexed (default)', "
    "$rules using 1:3 with linespoints lw 2 title 'lane compile -O0'\n"
    "set xlabel 'models'\n"
    "plot $models using 1:2 with linespoints lw 2 title 'cheapest/best/fastest over all models'\n"
    "set xlabel 'rules'\nset ylabel 'ms'\n"
    "plot $compile using 1:2 with linespoints lw 2 title 'compile (sema + emit)', "
    "$compile using 1:3 with linespoints lw 2 title 'lane_load (verify)'\n"
    "unset multiplot\n", out);
  fclose(f);
  snprintf(cmd, sizeof cmd, "command -v gnuplot >/dev/null 2>&1 && gnuplot '%s' 2>&1", path);
  if (system(cmd) == 0) printf("  plot: %s/scaling.png\n", out);
  else printf("  plot: skipped (gnuplot not installed; script in %s)\n", path);
}

int bench_scaling(const char *out, const char *lane_cmd, scale_result *r) {
  static const int RULES[] = { 10, 100, 1000, 10000 };
  static const int MODELS[] = { 10, 30, 100, 300, 1000 };
  const int NQ = 20000;
  breq *q = malloc(sizeof *q * NQ);
  int ok = 1;
  char path[4096];
  FILE *j;
  memset(r, 0, sizeof *r);
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 10000; i++)
      VLEN[k][i] = (uint8_t)snprintf(VALS[k][i], sizeof VALS[k][i], "%c%d", PREFIX[k], i);

  for (size_t k = 0; k < sizeof RULES / sizeof RULES[0]; k++) {
    int nr = RULES[k];
    size_t len, n = 0, n0 = 0;
    char *text = rules_policy(nr, &len), name[64];
    unsigned char *b = NULL, *b0 = NULL;
    double ct[3];
    loaded L;
    bsum s, s0;
    snprintf(name, sizeof name, "rules_%d.lane", nr);
    for (int t = 0; t < 3; t++) {
      uint64_t t0 = bench_ns();
      if (b) free(b);
      b = NULL;
      if (bench_compile(name, text, &b, &n) != 0) { free(text); free(q); return -1; }
      ct[t] = (double)(bench_ns() - t0) / 1e6;
    }
    r->rules[r->nrules] = nr;
    r->rules_compile_ms[r->nrules] = bench_median(ct, 3);
    r->rules_bytes[r->nrules] = n;
    r->rules_noopt_ns[r->nrules] = -1;
    rule_requests(q, NQ, nr);
    if (load(b, n, &L, &r->rules_load_ms[r->nrules]) != 0) { free(text); free(q); return -1; }
    r->rules_ns[r->nrules] = time_point(&L, q, NQ, &s);
    unload(&L);
    printf("  %5d rules: %8.1f ns/decision; compile %7.1f ms, lane_load %6.2f ms, %zu bytes",
           nr, r->rules_ns[r->nrules], r->rules_compile_ms[r->nrules],
           r->rules_load_ms[r->nrules], n);
    if (lane_cmd && lane_O0(lane_cmd, out, nr, text, len, &b0, &n0) == 0 &&
        load(b0, n0, &L, NULL) == 0) {
      bsum s1;
      r->rules_noopt_ns[r->nrules] = time_point(&L, q, NQ, &s0);
      pass(&L, q, NQ, &s0);
      unload(&L);
      load(b, n, &L, NULL);
      pass(&L, q, NQ, &s1);
      unload(&L);
      printf("; -O0 %.1f ns", r->rules_noopt_ns[r->nrules]);
      if (s0.h != s1.h || bsum_costbits(&s0) != bsum_costbits(&s1)) {
        printf("  MISMATCH between indexed and -O0 decisions");
        ok = 0;
      }
    }
    printf("\n");
    fflush(stdout);
    r->nrules++;
    free(text);
    free(b);
    free(b0);
  }

  bench_requests(q, NQ, 0x5ca1e);
  for (size_t k = 0; k < sizeof MODELS / sizeof MODELS[0]; k++) {
    int nm = MODELS[k];
    size_t len, n = 0;
    char *text = models_policy(nm, &len), name[64];
    unsigned char *b = NULL;
    loaded L;
    bsum s;
    snprintf(name, sizeof name, "models_%d.lane", nm);
    if (bench_compile(name, text, &b, &n) != 0 || load(b, n, &L, NULL) != 0) {
      free(text); free(b); free(q);
      return -1;
    }
    r->models[r->nmodels] = nm;
    r->models_ns[r->nmodels] = time_point(&L, q, NQ, &s);
    printf("  %5d models: %7.1f ns/decision (%zu bytes)\n", nm, r->models_ns[r->nmodels], n);
    fflush(stdout);
    r->nmodels++;
    unload(&L);
    free(text);
    free(b);
  }
  free(q);

  snprintf(path, sizeof path, "%s/scaling.json", out);
  if ((j = fopen(path, "w"))) {
    fprintf(j, "{\n  \"rules\": [\n");
    for (int k = 0; k < r->nrules; k++) {
      fprintf(j, "    {\"rules\": %d, \"ns_per_decision\": %.2f, ", r->rules[k], r->rules_ns[k]);
      if (r->rules_noopt_ns[k] > 0)
        fprintf(j, "\"ns_per_decision_O0\": %.2f, ", r->rules_noopt_ns[k]);
      fprintf(j, "\"compile_ms\": %.3f, \"load_ms\": %.3f, \"lanec_bytes\": %zu}%s\n",
              r->rules_compile_ms[k], r->rules_load_ms[k], r->rules_bytes[k],
              k + 1 < r->nrules ? "," : "");
    }
    fprintf(j, "  ],\n  \"models\": [\n");
    for (int k = 0; k < r->nmodels; k++)
      fprintf(j, "    {\"models\": %d, \"ns_per_decision\": %.2f}%s\n", r->models[k],
              r->models_ns[k], k + 1 < r->nmodels ? "," : "");
    fprintf(j, "  ]\n}\n");
    fclose(j);
    printf("  figures: %s\n", path);
  }
  plot(out, r);
  return ok ? 0 : -1;
}

/*
 * fuzz_diff.c -- differential: the optimised program decides exactly as the
 * program compiled without optimisations (sema_opts.no_opt: no constant
 * folding, every pool member checked with all its conditions, no rule
 * index).
 *
 * The input drives the policy writer of gen_policy.h, then random
 * requests and live observations. Both programs see the same requests and the same calls;
 * status, rule, candidates, shadows, cost, error count and filtered rule
 * must agree (steps may differ: that is what the optimisations are for).
 * A policy that does not compile optimised is skipped; one that compiles
 * optimised but not unoptimised is a finding.
 * With -DFUZZ_DIFF_PRINT, `fuzz_diff INPUT` prints the policy instead.
 */
#include "fuzz.h"
#include "gen_policy.h"
#include "sema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- compiling and comparing ---- */

static lane_program *build(const char *text, int no_opt, int *skip) {
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.no_opt = no_opt;
  lanec_result r;
  lane_program *p = NULL;
  *skip = 0;
  int st = lanec_compile("diff.lane", text, &o, &r);
  if (st == LANEC_OK) {
    p = r.prog;   /* loaded and verified once, by lanec_compile */
    r.prog = NULL;
  } else if (st == LANEC_EINTERNAL) {
    fprintf(stderr, "%s\n-O%d does not verify:\n", text, !no_opt);
    lanec_print_diags(&r, stderr);
    abort();
  } else {
    int limit = 0;   /* unoptimised code may exceed the worst-case limit */
    for (int i = 0; i < lanec_diag_count(&r); i++) {
      lanec_diag d;
      lanec_diag_get(&r, i, &d);
      limit |= strstr(d.message, "worst case") != NULL;
    }
    if (no_opt && !limit) {
      fprintf(stderr, "%s\n-O0 fails to compile:\n", text);
      lanec_print_diags(&r, stderr);
      abort();
    }
    *skip = 1;
  }
  lanec_result_free(&r);
  return p;
}

static void same(const char *text, const lane_request *r, int rc1, const lane_decision *a,
                 int rc0, const lane_decision *b) {
  int eq = rc1 == rc0;
  if (eq && rc1 == LANE_OK) {
    eq = a->rule == b->rule && a->ncandidates == b->ncandidates &&
         a->nshadows == b->nshadows && memcmp(&a->cost, &b->cost, sizeof a->cost) == 0 &&
         a->nerrors == b->nerrors &&
         !memcmp(a->candidates, b->candidates, (size_t)a->ncandidates * sizeof *a->candidates) &&
         !memcmp(a->shadows, b->shadows, (size_t)a->nshadows * sizeof *a->shadows);
  } else if (eq && rc1 == LANE_ENOMATCH) {
    eq = a->filtered_rule == b->filtered_rule && a->nerrors == b->nerrors;
  }
  if (eq) return;
  fprintf(stderr, "%s\ndecisions differ: optimised rc %d rule %d n %d [%d %d %d] errors %d "
          "cost %.17g filtered %d; unoptimised rc %d rule %d n %d [%d %d %d] errors %d "
          "cost %.17g filtered %d\nrequest:", text,
          rc1, a->rule, a->ncandidates, a->candidates[0], a->candidates[1], a->candidates[2],
          a->nerrors, a->cost, a->filtered_rule, rc0, b->rule, b->ncandidates,
          b->candidates[0], b->candidates[1], b->candidates[2], b->nerrors, b->cost,
          b->filtered_rule);
  for (int f = 0; f < lane_field_count(r->prog); f++)
    if (r->set >> f & 1) {
      fprintf(stderr, " %s=", lane_field_name(r->prog, f));
      if (lane_field_type(r->prog, f) == LANE_T_STRING)
        fprintf(stderr, "\"%.*s\"", (int)r->v[f].s.n, r->v[f].s.p);
      else if (lane_field_type(r->prog, f) == LANE_T_DOUBLE) fprintf(stderr, "%.17g", r->v[f].d);
      else fprintf(stderr, "%lld", (long long)r->v[f].i);
    }
  fputc('\n', stderr);
  abort();
}

static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

static void compare(gen *g, const lane_program *p1, const lane_program *p0) {
  uint64_t now = 1700000000000ull;
  lane_runtime_options o = {fake_clock, &now, 0, 3, 3, 0, 0, 0, 0};
  lane_error err;
  lane_runtime *r1 = lane_runtime_new_with(p1, &o, &err), *r0 = lane_runtime_new_with(p0, &o, &err);
  if (!r1 || !r0) abort();
  int nm = lane_model_count(p1);
  if (nm != lane_model_count(p0)) abort();
  for (int step = 0; step < 48 && g->in.n; step++) {
    if (pick(g, 4) == 0) {
      int m = pick(g, nm);
      double lat = (double)(pick(g, 40) * 100);
      int st = pick(g, 6);
      lane_observe(r1, m, lat, st);
      lane_observe(r0, m, lat, st);
      now += (uint64_t)pick(g, 4) * 1000;
      continue;
    }
    char pool[8][16];
    lane_request q1, q0;
    lane_decision d1, d0;
    fz saved = g->in;
    fz_request(&g->in, p1, &q1, pool, 8);
    g->in = saved;
    fz_request(&g->in, p0, &q0, pool, 8);
    memset(&d1, 0, sizeof d1);
    memset(&d0, 0, sizeof d0);
    int rc1 = lane_decide(r1, "r", &q1, &d1), rc0 = lane_decide(r0, "r", &q0, &d0);
    fz_check_decision(p1, rc1, &d1);
    fz_check_decision(p0, rc0, &d0);
    same(g->buf, &q1, rc1, &d1, rc0, &d0);
  }
  lane_runtime_free(r1);
  lane_runtime_free(r0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static gen g;
  memset(&g, 0, sizeof g.n);
  g.in = (fz){data, size};
  g.n = 0;
  g.depth = 0;
  policy(&g);
  g.buf[g.n] = '\0';
#ifdef FUZZ_DIFF_PRINT
  fputs(g.buf, stdout);
  fflush(stdout);
#endif
  int skip1, skip0;
  lane_program *p1 = build(g.buf, 0, &skip1);
  if (!p1) return 0;
  lane_program *p0 = build(g.buf, 1, &skip0);
  if (p0) compare(&g, p1, p0);
  lane_program_free(p1);
  lane_program_free(p0);
  return 0;
}

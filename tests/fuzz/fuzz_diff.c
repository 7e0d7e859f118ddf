/*
 * fuzz_diff.c -- differential: the optimised program decides exactly as the
 * program compiled without optimisations (sema_opts.no_opt: no constant
 * folding, every pool member checked with all its conditions, no rule
 * index).
 *
 * The input drives a small grammar that writes a random policy -- a few
 * models with random prices, context, caps and quality, a request block,
 * a route of random rules over a few fields, constant subexpressions,
 * named pools, splits and shadows -- and then random requests and live
 * observations. Both programs see the same requests and the same calls;
 * status, rule, candidates, shadows, cost, error count and filtered rule
 * must agree (steps may differ: that is what the optimisations are for).
 * A policy that does not compile optimised is skipped; one that compiles
 * optimised but not unoptimised is a finding.
 * With -DFUZZ_DIFF_PRINT, `fuzz_diff INPUT` prints the policy instead.
 */
#include "fuzz.h"
#include "sema.h"

#include <stdarg.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the policy writer ---- */

typedef struct gen {
  fz    in;          /* the fuzzer's bytes */
  char  buf[16384];  /* the policy */
  size_t n;          /* bytes written */
  int   nmodels;     /* models declared: m0 .. */
  int   depth;       /* expression nesting, bounded */
} gen;

static void out(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(gen *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (g->n < sizeof g->buf) {
    int k = vsnprintf(g->buf + g->n, sizeof g->buf - g->n, fmt, ap);
    if (k > 0) g->n += (size_t)k;
    if (g->n > sizeof g->buf - 1) g->n = sizeof g->buf - 1;
  }
  va_end(ap);
}

static int pick(gen *g, int n) { return n > 0 ? fz_u8(&g->in) % n : 0; }

static const char *const strs[] = {"a", "b", "acme", "chat", "code", "pro", "free", ""};
#define NSTR 8

static void int_expr(gen *g);

/* An int-typed expression: fields, literals, arithmetic that may fail. */
static void int_atom(gen *g) {
  static const char *const ints[] = {"0", "1", "2", "3", "-1", "7", "1000",
                                     "9223372036854775807", "-9223372036854775808"};
  switch (pick(g, 6)) {
  case 0: out(g, "req.images"); break;
  case 1: out(g, "req.n"); break;
  case 2: out(g, "size(req.team)"); break;
  case 3: out(g, "int(req.input_tokens)"); break;
  default: out(g, "%s", ints[pick(g, 9)]); break;
  }
}

static void int_expr(gen *g) {
  static const char *const ops[] = {"+", "-", "*", "/", "%"};
  if (g->depth > 4 || pick(g, 3)) { int_atom(g); return; }
  g->depth++;
  out(g, "(");
  int_expr(g);
  out(g, " %s ", ops[pick(g, 5)]);
  int_expr(g);
  out(g, ")");
  g->depth--;
}

static void cond(gen *g);

/* A request-level condition (a rule's `when`). */
static void cond_atom(gen *g) {
  static const char *const rel[] = {"==", "!=", "<", "<=", ">", ">="};
  switch (pick(g, 14)) {
  case 0: case 1: out(g, "req.tier == \"%s\"", strs[pick(g, NSTR)]); break;
  case 2: out(g, "req.task != \"%s\"", strs[pick(g, NSTR)]); break;
  case 3: out(g, "req.input_tokens %s %dk", rel[pick(g, 6)], pick(g, 64)); break;
  case 4: out(g, "req.team in [\"%s\", \"%s\"]", strs[pick(g, NSTR)], strs[pick(g, NSTR)]); break;
  case 5: out(g, "bucket(req.user) < %d%%", pick(g, 101)); break;
  case 6: out(g, "req.spent >= %d%%", pick(g, 120)); break;
  case 7: out(g, "req.team.startsWith(\"%s\")", strs[pick(g, NSTR)]); break;
  case 8: out(g, "req.tools"); break;
  case 9: out(g, "req.latency_budget %s %dms", rel[pick(g, 6)], pick(g, 4) * 500); break;
  case 10: out(g, "%s", pick(g, 2) ? "true" : "false"); break;
  case 11: out(g, "req.n in [1, 2, 3]"); break;
  default:
    int_expr(g);
    out(g, " %s ", rel[pick(g, 6)]);
    int_expr(g);
    break;
  }
}

static void cond(gen *g) {
  if (g->depth > 3 || pick(g, 2)) { cond_atom(g); return; }
  g->depth++;
  switch (pick(g, 4)) {
  case 0: out(g, "!("); cond(g); out(g, ")"); break;
  case 1: out(g, "("); cond(g); out(g, " ? "); cond(g); out(g, " : "); cond(g); out(g, ")"); break;
  default:
    out(g, "(");
    cond(g);
    out(g, pick(g, 2) ? " && " : " || ");
    cond(g);
    out(g, ")");
    break;
  }
  g->depth--;
}

/* A model-level condition (pools, require). */
static void mcond_atom(gen *g) {
  static const char *const caps[] = {"vision", "tools", "json", "reasoning"};
  switch (pick(g, 16)) {
  case 0: out(g, "%s", caps[pick(g, 4)]); break;
  case 1: out(g, "cost < $0.%03d", pick(g, 50)); break;
  case 2: out(g, "quality >= 0.%d", pick(g, 10)); break;
  case 3: out(g, "fits"); break;
  case 4: out(g, "healthy"); break;
  case 5: out(g, "context >= %dk", pick(g, 4) * 32); break;
  case 6: out(g, "p95 <= %dms", pick(g, 5) * 500); break;
  case 7: out(g, "input < $%d/Mtok", pick(g, 5)); break;
  case 8: out(g, "provider == \"p%d\"", pick(g, 3)); break;
  case 9: out(g, "name.startsWith(\"m%d\")", pick(g, 4)); break;
  case 10: out(g, "error_rate < %d%%", pick(g, 40)); break;
  case 11: out(g, "req.images == 0 || vision"); break;
  case 12: out(g, "p95 <= req.latency_budget"); break;
  case 13: out(g, "max_output >= req.max_output_tokens"); break;
  case 14: out(g, "quality * 2.0 > 1.0 + 0.%d", pick(g, 10)); break;
  default: cond_atom(g); break;
  }
}

static void mcond(gen *g) {
  if (g->depth > 3 || pick(g, 2)) { mcond_atom(g); return; }
  g->depth++;
  switch (pick(g, 3)) {
  case 0: out(g, "!("); mcond(g); out(g, ")"); break;
  default:
    out(g, "(");
    mcond(g);
    out(g, pick(g, 2) ? " && " : " || ");
    mcond(g);
    out(g, ")");
    break;
  }
  g->depth--;
}

static void target(gen *g, int chain) {
  static const char *const ord[] = {"cheapest", "fastest", "best"};
  switch (pick(g, chain ? 5 : 6)) {
  case 0: out(g, "m%d", pick(g, g->nmodels)); break;
  case 1: out(g, "%s(rated)", ord[pick(g, 3)]); break;
  case 5: {
    int w = pick(g, 101);
    out(g, "split { m%d: %d%%, m%d: %d%% } by req.%s", pick(g, g->nmodels), w,
        pick(g, g->nmodels), 100 - w, pick(g, 2) ? "user" : "n");
    break;
  }
  default:
    out(g, "%s(%s where ", ord[pick(g, 3)], pick(g, 2) ? "models" : "rated");
    mcond(g);
    out(g, ")");
    break;
  }
}

static void policy(gen *g) {
  static const char *const capnames[] = {"vision", "tools", "json", "reasoning"};
  g->nmodels = 1 + pick(g, 6);
  for (int i = 0; i < g->nmodels; i++) {
    out(g, "model m%d { provider \"p%d\" name \"m%d\" input $%d/Mtok output $%d/Mtok",
        i, pick(g, 3), i, pick(g, 6), pick(g, 20));
    if (pick(g, 4)) out(g, " context %dk", 1 + pick(g, 200));
    if (pick(g, 2)) out(g, " max_output %dk", 1 + pick(g, 16));
    if (pick(g, 3)) out(g, " p95 %dms", pick(g, 40) * 100);
    int caps = pick(g, 16), first = 1;
    for (int c = 0; c < 4; c++)
      if (caps & (1 << c)) { out(g, "%s%s", first ? " caps " : ", ", capnames[c]); first = 0; }
    out(g, " quality 0.%d }\n", pick(g, 10));
  }
  out(g, "request { team: string  spent: fraction  n: int }\n");
  out(g, "pool rated = models where ");
  mcond(g);
  out(g, "\nroute r {\n  fallbacks %d\n", pick(g, 4));
  for (int i = pick(g, 3); i > 0; i--) { out(g, "  require "); mcond(g); out(g, "\n"); }
  int nrules = 1 + pick(g, 8), run = pick(g, 2) ? 4 + pick(g, 4) : 0;
  for (int i = 0; i < nrules + run; i++) {
    out(g, "  when ");
    if (i < run) {   /* a run of rules on one string field: the rule index */
      out(g, "req.tier == \"%s\"", strs[pick(g, 4)]);
      if (pick(g, 2)) { out(g, " && "); cond(g); }
    } else {
      cond(g);
    }
    out(g, " -> ");
    target(g, 0);
    if (pick(g, 3) == 0) { out(g, ", then "); target(g, 1); }
    if (pick(g, 4) == 0) out(g, ", shadow m%d", pick(g, g->nmodels));
    out(g, "\n");
  }
  if (pick(g, 3)) { out(g, "  otherwise -> "); target(g, 0); out(g, "\n"); }
  out(g, "}\n");
}

/* ---- compiling and comparing ---- */

static lane_program *build(const char *text, int no_opt, int *skip) {
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.no_opt = no_opt;
  lanec_result r;
  lane_program *p = NULL;
  *skip = 0;
  if (lanec_compile("diff.lane", text, &o, &r) == LANEC_OK) {
    p = r.prog;   /* loaded and verified once, by lanec_compile */
    r.prog = NULL;
  } else {
    int limit = 0;   /* unoptimised code may exceed the worst-case limit */
    for (int i = 0; i < lanec_diag_count(&r); i++) {
      lanec_diag d;
      lanec_diag_get(&r, i, &d);
      if (strstr(d.message, "does not verify")) {
        fprintf(stderr, "%s\n-O%d does not verify: %s\n", text, !no_opt, d.message);
        abort();
      }
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

/*
 * gen_policy.h -- the policy writer shared by the differential fuzz
 * targets (fuzz_diff.c, fuzz_explain.c): the input drives a small grammar
 * that writes a random policy -- a few models with random prices, context,
 * caps and quality, a request block, a route of random rules over a few
 * fields, constant subexpressions, named pools, splits and shadows -- into
 * gen.buf. Static functions: each target includes it once.
 */
#ifndef LANE_GEN_POLICY_H
#define LANE_GEN_POLICY_H

#include <stdarg.h>

#include "fuzz.h"

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

#endif /* LANE_GEN_POLICY_H */

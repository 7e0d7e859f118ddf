/*
 * lint.c -- `lane lint`: checks over a policy that compiles.
 *
 * The lints read the checked unit and decide what they can at compile time
 * with the evaluator, per model, exactly as emit.c decides static filters:
 * a condition is split at its top-level &&s and each conjunct is true,
 * false or unknown (it depends on the request or on live state) for each
 * model. Every lint is conservative: a finding is a claim that holds for
 * every request and every live state, never a guess.
 *
 * Findings are collected, filtered by level and by `# lane: allow ID`
 * comments, sorted by place and printed as text, JSON or SARIF. Pages for
 * every lint: compiler/lints/README.md.
 */
#include "lint.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum lint_level { LV_OFF, LV_WARNING, LV_ERROR } lint_level;

/* The lint table: enum tag, id, default level, one-line summary (SARIF's
 * shortDescription; the README's index says the same). */
#define LINT_TABLE(X)                                                                  \
  X(SUBSUMED_RULE, "subsumed-rule", LV_WARNING,                                        \
    "a rule that never decides: an earlier rule decides every request it matches")     \
  X(CONSTANT_CONDITION, "constant-condition", LV_WARNING,                              \
    "a condition, or a part of one, that is always true or always false")              \
  X(CONTRADICTORY_BOUNDS, "contradictory-bounds", LV_ERROR,                            \
    "bounds on one value that cannot all hold, as in req.x > 10 && req.x < 5")         \
  X(NO_OTHERWISE, "no-otherwise", LV_WARNING,                                          \
    "a route without 'otherwise': a request no rule matches gets no model")            \
  X(EMPTY_ROUTE, "empty-route", LV_WARNING,                                            \
    "a route with no candidate for some requests: every model it may choose fails "    \
    "a requirement")                                                                   \
  X(EMPTY_POOL, "empty-pool", LV_ERROR,                                                \
    "a pool or selection that no model enters, given the models' static properties")   \
  X(UNREACHABLE_LATENCY, "unreachable-latency", LV_WARNING,                            \
    "a p50/p95 bound that no candidate's declared latency meets")                      \
  X(MISSING_CAPABILITY, "missing-capability", LV_WARNING,                              \
    "a named candidate that fails a static requirement of its route")                  \
  X(UNUSED_MODEL, "unused-model", LV_WARNING,                                          \
    "a model declared in the policy that no route names or can select")                \
  X(UNUSED_POOL, "unused-pool", LV_WARNING, "a pool that no route uses")               \
  X(UNUSED_BUDGET, "unused-budget", LV_WARNING, "a budget that no condition reads")    \
  X(UNUSED_IMPORT, "unused-import", LV_WARNING,                                        \
    "an import none of whose models is named or can be selected")                      \
  X(UNUSED_FIELD, "unused-field", LV_WARNING,                                          \
    "a request field declared in the policy that nothing reads")                       \
  X(DEPRECATED_MODEL, "deprecated-model", LV_WARNING,                                  \
    "a model named by the policy past its catalog deprecation date")                   \
  X(UNSTABLE_SPLIT_KEY, "unstable-split-key", LV_WARNING,                              \
    "a split keyed by a value that changes from request to request")                   \
  X(SUSPICIOUS_PRICE, "suspicious-price", LV_WARNING,                                  \
    "a routable model with a zero price or one far from its provider's other models")  \
  X(SHORT_CHAIN, "short-chain", LV_OFF,                                                \
    "a rule that cannot offer as many candidates as the route's fallbacks ask for")

enum {
#define LINT_ENUM(tag, id, level, summary) L_##tag,
  LINT_TABLE(LINT_ENUM)
#undef LINT_ENUM
  NLINTS
};

static const struct lint_info {
  const char *id;       /* stable kebab-case id */
  int         level;    /* default lint_level */
  const char *summary;  /* one line */
} lints[NLINTS] = {
#define LINT_INFO(tag, id, level, summary) {id, level, summary},
  LINT_TABLE(LINT_INFO)
#undef LINT_INFO
};

static const char *const level_names[] = {"off", "warning", "error"};

/* ---- the linter ---- */

typedef struct finding {
  int         lint;     /* L_* */
  int         level;    /* LV_WARNING or LV_ERROR */
  ast_span    span;     /* where */
  const char *msg;      /* arena-owned, without the [id] */
  int         seq;      /* order of report: ties keep it */
  int         file_ix;  /* module of span.file, for sorting */
} finding;

/* Conjuncts (or disjuncts) of a condition, as emit.c splits them. */
typedef struct condset {
  const ast_node *v[64];  /* the parts */
  int             n;      /* how many */
} condset;

/* The models a target may pick and what is left to decide for each. */
typedef struct cands {
  condset   cs;         /* route requires, then the pool's conditions */
  int       n;          /* models that pass every static conjunct */
  int      *m;          /* their indices, in declaration order */
  uint64_t *dyn;        /* for each: conjuncts (bits of cs) decided per request */
} cands;

/* One target of a route, with its candidates. */
typedef struct rtarget {
  const ast_node *rule;    /* N_WHEN or N_OTHERWISE */
  int             rule_ix; /* index in the route's rules */
  const ast_node *t;       /* N_MODELREF or N_SELECT */
  const ast_node *split;   /* the N_SPLIT whose arm t is, or NULL */
  cands           c;       /* what t may pick */
} rtarget;

/* A route under analysis. */
typedef struct rctx {
  const sema_route *r;     /* the route */
  condset           req;   /* its requires, split at && (bits 0.. of every cands) */
  rtarget          *t;     /* its targets, rule by rule */
  int               nt, cap; /* used, allocated */
} rctx;

/* A p50/p95 upper bound against a constant, with what it met. */
typedef struct lat_bound {
  const ast_node *node;    /* the comparison */
  int             prop;    /* MP_P50 or MP_P95 */
  double          limit;   /* ms */
  int             strict;  /* < rather than <= */
  int             nseen;   /* candidates it was applied to */
  int             met;     /* some candidate meets it, or has no prior */
  int             fastest; /* the candidate with the lowest prior, or -1 */
} lat_bound;

typedef struct linter {
  sema_unit      *u;           /* the checked policy */
  const src_file *root;        /* the file being linted */
  int             level[NLINTS]; /* lint_level of each lint in this run */
  finding        *f;           /* findings, in order of report */
  int             nf, capf;    /* used, allocated */
  unsigned char  *named;       /* per model: a route names it (target, shadow) */
  unsigned char  *mentioned;   /* per model: the root file names it anywhere */
  unsigned char  *selectable;  /* per model: some selection may pick it */
  ast_span       *where_named; /* per model: where a route first names it */
  ast_span       *where_sel;   /* per model: the first selection that may pick it */
  unsigned char  *pool_used;   /* per pool: a route selects from it */
  unsigned char  *pool_empty;  /* per pool: no model enters it */
  unsigned char  *budget_used; /* per budget: some expression reads it */
  unsigned char  *field_read;  /* per field: some expression reads it */
  lat_bound      *lat;         /* latency bounds seen */
  int             nlat, caplat;/* used, allocated */
  int             nomem;       /* an allocation failed */
} linter;


static void report(linter *L, int lint, ast_span sp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a finding of lint at sp unless the lint is off in this run. */
static void report(linter *L, int lint, ast_span sp, const char *fmt, ...) {
  if (L->level[lint] == LV_OFF) return;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  char *msg = n >= 0 ? ast_alloc(&L->u->ctx, (size_t)n + 1) : NULL;
  if (msg) vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  if (!msg || sema_grow(&L->f, L->nf, &L->capf, sizeof *L->f)) { L->nomem = 1; return; }
  finding *f = &L->f[L->nf];
  f->lint = lint;
  f->level = L->level[lint];
  f->span = sp;
  f->msg = msg;
  f->seq = L->nf++;
}

/* A printf into the arena, for pieces of messages. */
static const char *fmt(linter *L, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(linter *L, const char *f, ...) {
  va_list ap, ap2;
  va_start(ap, f);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, f, ap2);
  va_end(ap2);
  char *s = n >= 0 ? ast_alloc(&L->u->ctx, (size_t)n + 1) : NULL;
  if (s) vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  if (!s) L->nomem = 1;
  return s ? s : "";
}

/* ---- expressions ---- */

/* The end (line, byte column just past) of the rightmost node under n:
 * where an expression written over several lines stops. */
static void end_of(const ast_node *n, int *line, int *col) {
  if (!n) return;
  if (n->span.file && (n->span.line > *line ||
                       (n->span.line == *line && n->span.col + n->span.len > *col))) {
    *line = n->span.line;
    *col = n->span.col + n->span.len;
  }
  end_of(n->a, line, col);
  end_of(n->b, line, col);
  end_of(n->c, line, col);
  for (int i = 0; i < n->list.n; i++) end_of(n->list.v[i], line, col);
}

/* An expression's source text for messages, each run of blanks, line
 * ends and comments as one space (strings as written). */
static const char *text_of(linter *L, const ast_node *n) {
  const src_file *f = n->span.file;
  size_t len;
  if (!f) return "";
  int eline = n->span.line, ecol = n->span.col + n->span.len;
  end_of(n, &eline, &ecol);
  const char *p = ast_source_line(f, n->span.line, &len);
  const char *e = ast_source_line(f, eline, &len);
  if (!p || !e) return "";
  p += n->span.col - 1;
  e += ecol - 1;
  if (e < p) e = p;
  char *buf = ast_alloc(&L->u->ctx, (size_t)(e - p) + 1), *o = buf;
  if (!buf) { L->nomem = 1; return ""; }
  int gap = 0;
  char quote = 0;
  for (; p < e; p++) {
    char c = *p;
    if (quote) {
      *o++ = c;
      if (c == '\\' && p + 1 < e) *o++ = *++p;
      else if (c == quote) quote = 0;
      continue;
    }
    if (c == '#') {
      while (p + 1 < e && p[1] != '\n') p++;
      gap = 1;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { gap = 1; continue; }
    if (gap && o > buf) *o++ = ' ';
    gap = 0;
    if (c == '"' || c == '\'') quote = c;
    *o++ = c;
  }
  *o = 0;
  return buf;
}

/* Whether n reads a name of reference kind rk (RK_FIELD, RK_MPROP, ...). */
static int reads(const ast_node *n, int rk) {
  if (!n) return 0;
  if ((n->kind == N_IDENT || n->kind == N_SELECTOR) && n->refkind == rk) return 1;
  if (reads(n->a, rk) || reads(n->b, rk) || reads(n->c, rk)) return 1;
  for (int i = 0; i < n->list.n; i++)
    if (reads(n->list.v[i], rk)) return 1;
  return 0;
}

/* Marks the fields, budgets and models that n reads. */
static void note_reads(linter *L, const ast_node *n) {
  if (!n) return;
  const sema_unit *u = L->u;
  if (n->kind == N_IDENT || n->kind == N_SELECTOR) {
    if (n->refkind == RK_FIELD && n->ref >= 0 && n->ref < u->nfields) L->field_read[n->ref] = 1;
    if (n->refkind == RK_BUDGET && (n->ref >> 2) < u->nbudgets) L->budget_used[n->ref >> 2] = 1;
    if (n->refkind == RK_MODEL && n->ref >= 0 && n->ref < u->nmodels) L->mentioned[n->ref] = 1;
  }
  note_reads(L, n->a);
  note_reads(L, n->b);
  note_reads(L, n->c);
  for (int i = 0; i < n->list.n; i++) note_reads(L, n->list.v[i]);
}

static int same_str(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* Structural equality of two checked expressions: same operators, names,
 * resolved references and literals. Equal expressions give equal values
 * for the same request, model and live state. */
static int same_expr(const ast_node *a, const ast_node *b) {
  if (a == b) return 1;
  if (!a || !b || a->kind != b->kind || a->op != b->op || a->refkind != b->refkind ||
      a->ref != b->ref || a->type != b->type || !same_str(a->name, b->name) ||
      a->len != b->len || (a->len && memcmp(a->str, b->str, a->len) != 0) ||
      a->list.n != b->list.n)
    return 0;
  switch (a->kind) {
  case N_INT: case N_TOKENS: if (a->lit.i != b->lit.i) return 0; break;
  case N_UINT: if (a->lit.u != b->lit.u) return 0; break;
  case N_BOOL: if (a->lit.b != b->lit.b) return 0; break;
  case N_DOUBLE: case N_MONEY: case N_PRICE: case N_DURATION: case N_FRACTION:
    if (a->lit.d != b->lit.d) return 0;
    break;
  default: break;
  }
  if (!same_expr(a->a, b->a) || !same_expr(a->b, b->b) || !same_expr(a->c, b->c)) return 0;
  for (int i = 0; i < a->list.n; i++)
    if (!same_expr(a->list.v[i], b->list.v[i])) return 0;
  return 1;
}

static int in_set(const condset *cs, const ast_node *n) {
  for (int i = 0; i < cs->n; i++)
    if (same_expr(cs->v[i], n)) return 1;
  return 0;
}

/* Adds c split at its top-level operator op (OP_AND or OP_OR). */
static void split_at(condset *cs, const ast_node *c, int op) {
  if (c->kind == N_BINARY && c->op == op) {
    split_at(cs, c->a, op);
    split_at(cs, c->b, op);
    return;
  }
  if (cs->n < 64) cs->v[cs->n++] = c;
}

/* The conditions of a pool expression, named pools first (as emit.c). */
static void pool_conds(const sema_unit *u, const ast_node *p, condset *cs, int depth) {
  if (depth > 64) return;
  if (p->name && p->ref >= 0 && p->ref < u->npools)
    pool_conds(u, u->pools[p->ref].def, cs, depth + 1);
  if (p->a) split_at(cs, p->a, OP_AND);
}

static ev_val eval_for(const linter *L, int m, const ast_node *n) {
  ev_env env = {.u = L->u, .model = m};
  return ev_eval(&env, n);
}

static int is_true(ev_val v) { return v.kind == EV_OK && v.v.i; }
static int rejects(ev_val v) { return v.kind == EV_ERROR || (v.kind == EV_OK && !v.v.i); }

/* Fills c->m and c->dyn with the models (only one, or -1: all) that pass
 * every conjunct of c->cs that is decided at compile time. 0 or -1. */
static int cands_build(linter *L, cands *c, int only) {
  const sema_unit *u = L->u;
  c->n = 0;
  c->m = malloc(((size_t)u->nmodels + 1) * sizeof *c->m);
  c->dyn = malloc(((size_t)u->nmodels + 1) * sizeof *c->dyn);
  if (!c->m || !c->dyn) { L->nomem = 1; return -1; }
  for (int m = 0; m < u->nmodels; m++) {
    if (only >= 0 && m != only) continue;
    uint64_t dyn = 0;
    int out = 0;
    for (int i = 0; i < c->cs.n && !out; i++) {
      ev_val v = eval_for(L, m, c->cs.v[i]);
      if (rejects(v)) out = 1;
      else if (v.kind == EV_UNKNOWN) dyn |= (uint64_t)1 << i;
    }
    if (out) continue;
    c->m[c->n] = m;
    c->dyn[c->n++] = dyn;
  }
  return 0;
}

static void cands_free(cands *c) {
  free(c->m);
  free(c->dyn);
  c->m = NULL;
  c->dyn = NULL;
}

/* Where model m is, among c's candidates, or -1. */
static int cand_index(const cands *c, int m) {
  for (int k = 0; k < c->n; k++)
    if (c->m[k] == m) return k;
  return -1;
}

/* "0.9s", "1500ms": a duration for messages. */
static const char *fmt_ms(linter *L, double ms) {
  if (ms >= 1000) return fmt(L, "%gs", ms / 1000);
  return fmt(L, "%gms", ms);
}

static const char *fmt_price(linter *L, double per_token) {
  return fmt(L, "$%g/Mtok", per_token * 1e6);
}

/* Joins the source texts of a set: "a", "a and b", "a, b and c", each in
 * quotes when quoted is set. */
static const char *join_texts(linter *L, const condset *cs, const char *sep, int quoted) {
  const char *s = "";
  for (int i = 0; i < cs->n; i++) {
    const char *q = quoted ? "'" : "";
    const char *glue = i == 0 ? "" : sep ? sep : i == cs->n - 1 ? " and " : ", ";
    s = fmt(L, "%s%s%s%s%s", s, glue, q, text_of(L, cs->v[i]), q);
  }
  return s;
}

/* ---- conditions: constant-condition, contradictory-bounds ---- */

enum { IN_WHEN, IN_REQUIRE, IN_WHERE };

/* Reports the largest parts of a condition (reached through && || !) that
 * fold to a constant; the whole condition gets a message of its own. */
static void check_constant(linter *L, const ast_node *n, const ast_node *top, int where) {
  ev_val v = eval_for(L, -1, n);
  if (v.kind == EV_OK && v.ty == TY_BOOL) {
    static const char *const whole[3][2] = {
      {"condition is always false: this rule never matches",
       "condition is always true: this rule matches every request (write 'otherwise' "
       "for a catch-all)"},
      {"requirement is always false: no model ever passes it, so the route never decides",
       "requirement is always true: it filters nothing"},
      {"'where' condition is always false: no model enters this pool",
       "'where' condition is always true: it filters nothing"},
    };
    if (n == top)
      report(L, L_CONSTANT_CONDITION, n->span, "%s", whole[where][v.v.i ? 1 : 0]);
    else
      report(L, L_CONSTANT_CONDITION, n->span, "'%s' is always %s", text_of(L, n),
             v.v.i ? "true" : "false");
    return;
  }
  if (n->kind == N_BINARY && (n->op == OP_AND || n->op == OP_OR)) {
    check_constant(L, n->a, top, where);
    check_constant(L, n->b, top, where);
  } else if (n->kind == N_UNARY && n->op == OP_NOT) {
    check_constant(L, n->a, top, where);
  }
}

/* One conjunct as a bound on an expression: x OP constant, x on the left. */
typedef struct bound {
  const ast_node *x;     /* the bounded expression */
  int             op;    /* OP_EQ OP_NE OP_LT OP_LE OP_GT OP_GE */
  int             is_str;/* the constant is a string (== and != only) */
  double          d;     /* a numeric constant (ints, units, bools) */
  const char     *s;     /* a string constant */
  size_t          n;     /* its bytes */
  int             integral; /* x takes whole values: bounds round inward */
} bound;

static int flip(int op) {
  switch (op) {
  case OP_LT: return OP_GT;
  case OP_LE: return OP_GE;
  case OP_GT: return OP_LT;
  case OP_GE: return OP_LE;
  default: return op;
  }
}

static int as_bound(const linter *L, const ast_node *c, bound *b) {
  if (c->kind != N_BINARY || c->op < OP_EQ || c->op > OP_GE) return 0;
  ev_val va = eval_for(L, -1, c->a), vb = eval_for(L, -1, c->b), k;
  if (vb.kind == EV_OK && va.kind == EV_UNKNOWN) { b->x = c->a; k = vb; b->op = c->op; }
  else if (va.kind == EV_OK && vb.kind == EV_UNKNOWN) { b->x = c->b; k = va; b->op = flip(c->op); }
  else return 0;
  int t = b->x->type;
  b->integral = t == TY_INT || t == TY_UINT || t == TY_TOKENS || t == TY_BOOL;
  b->is_str = k.ty == TY_STRING;
  if (b->is_str) {
    b->s = k.s;
    b->n = k.n;
    return b->op == OP_EQ || b->op == OP_NE;
  }
  switch (sema_ty_mtype(k.ty)) {
  case LANE_T_INT: b->d = (double)k.v.i; break;
  case LANE_T_UINT: b->d = (double)k.v.u; break;
  case LANE_T_DOUBLE: b->d = k.v.d; break;
  case LANE_T_BOOL:
    b->d = (double)k.v.i;
    if (b->op != OP_EQ && b->op != OP_NE) return 0;
    break;
  default: return 0;
  }
  return !isnan(b->d);
}

/* A bound as an interval [lo, hi] (open ends flagged); 0 for != and for
 * an integral x equal to a fraction (a constant condition, not a bound). */
static int interval(const bound *b, double *lo, int *lo_open, double *hi, int *hi_open) {
  *lo = -INFINITY; *hi = INFINITY; *lo_open = *hi_open = 0;
  double d = b->d;
  switch (b->op) {
  case OP_EQ:
    if (b->integral && d != floor(d)) return 0;
    *lo = *hi = d;
    return 1;
  case OP_LT: if (b->integral) *hi = ceil(d) - 1; else { *hi = d; *hi_open = 1; } return 1;
  case OP_LE: *hi = b->integral ? floor(d) : d; return 1;
  case OP_GT: if (b->integral) *lo = floor(d) + 1; else { *lo = d; *lo_open = 1; } return 1;
  case OP_GE: *lo = b->integral ? ceil(d) : d; return 1;
  default: return 0;
  }
}

/* Whether no value satisfies both bounds (on the same expression). In one
 * dimension, convex sets that pairwise meet all meet, so pairs suffice
 * for everything but !=, which only an equal == contradicts. */
static int disjoint(const bound *a, const bound *b) {
  if (a->is_str != b->is_str) return 0;
  if (a->is_str) {
    int eq = a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    if (a->op == OP_EQ && b->op == OP_EQ) return !eq;
    return eq && a->op != b->op;
  }
  if (a->op == OP_NE || b->op == OP_NE) {
    const bound *ne = a->op == OP_NE ? a : b, *o = a->op == OP_NE ? b : a;
    return o->op == OP_EQ && o->d == ne->d;
  }
  double l1, h1, l2, h2;
  int lo1, ho1, lo2, ho2;
  if (!interval(a, &l1, &lo1, &h1, &ho1) || !interval(b, &l2, &lo2, &h2, &ho2)) return 0;
  double lo = l1 > l2 ? l1 : l2, hi = h1 < h2 ? h1 : h2;
  int lo_open = (l1 == lo && lo1) || (l2 == lo && lo2);
  int hi_open = (h1 == hi && ho1) || (h2 == hi && ho2);
  return lo > hi || (lo == hi && (lo_open || hi_open));
}

/* Checks one chain of conjuncts for bounds on one expression that cannot
 * all hold. */
static void check_chain(linter *L, const condset *cs) {
  bound b[64];
  int ok[64];
  for (int i = 0; i < cs->n; i++) {
    ok[i] = as_bound(L, cs->v[i], &b[i]);
    if (!ok[i]) continue;
    for (int j = 0; j < i; j++)
      if (ok[j] && same_expr(b[j].x, b[i].x) && disjoint(&b[j], &b[i])) {
        report(L, L_CONTRADICTORY_BOUNDS, cs->v[i]->span,
               "'%s' contradicts '%s': the condition can never hold", text_of(L, cs->v[i]),
               text_of(L, cs->v[j]));
        break;
      }
  }
}

/* Finds every maximal chain of && in a condition. */
static void check_bounds(linter *L, const ast_node *n, int in_and) {
  if (!n) return;
  int is_and = n->kind == N_BINARY && n->op == OP_AND;
  if (is_and && !in_and) {
    condset cs = {.n = 0};
    split_at(&cs, n, OP_AND);
    check_chain(L, &cs);
  }
  check_bounds(L, n->a, is_and);
  check_bounds(L, n->b, is_and);
  check_bounds(L, n->c, 0);
  for (int i = 0; i < n->list.n; i++) check_bounds(L, n->list.v[i], 0);
}

static void lint_condition(linter *L, const ast_node *c, int where) {
  if (!c) return;
  note_reads(L, c);
  check_constant(L, c, c, where);
  check_bounds(L, c, 0);
}

/* ---- names: deprecated-model and what routes use ---- */

static void check_deprecated(linter *L, ast_span sp, int m) {
  const sema_model *md = &L->u->models[m];
  char today[11];
  if (!md->deprecated[0] || strcmp(md->deprecated, sema_today(today)) > 0) return;
  report(L, L_DEPRECATED_MODEL, sp,
         "model '%s' was deprecated on %s (its catalog says so); route to a current model",
         md->name, md->deprecated);
}

/* A route names model t->ref (a target or a shadow). */
static void note_named(linter *L, const ast_node *t) {
  int m = t->ref;
  if (m < 0 || m >= L->u->nmodels) return;
  if (!L->named[m]) L->where_named[m] = t->span;
  L->named[m] = L->mentioned[m] = 1;
  check_deprecated(L, t->span, m);
}

static void mark_pool(linter *L, const ast_node *p, int depth) {
  if (depth > 64 || !p->name || p->ref < 0 || p->ref >= L->u->npools) return;
  L->pool_used[p->ref] = 1;
  mark_pool(L, L->u->pools[p->ref].def, depth + 1);
}

/* ---- splits: unstable-split-key ---- */

/* user, tenant and custom string or integer fields (team, account) may
 * name someone, so they are given the benefit of the doubt; the other
 * standard fields change from one request to the next (task, tokens,
 * images, flags) or are shared by whole groups (tier, region). */
static int identity_field(const sema_unit *u, int f) {
  if (f == BC_F_USER || f == BC_F_TENANT) return 1;
  if (f < BC_NSTD || f >= u->nfields) return 0;
  int t = u->fields[f].ty;
  return t == TY_STRING || t == TY_INT || t == TY_UINT;
}

/* The first field n reads that is not an identity, or NULL; *any is set
 * when n reads a field at all. */
static const ast_node *unstable_read(const sema_unit *u, const ast_node *n, int *any) {
  if (!n) return NULL;
  if (n->kind == N_SELECTOR && n->refkind == RK_FIELD) {
    *any = 1;
    return identity_field(u, n->ref) ? NULL : n;
  }
  const ast_node *kids[3] = {n->a, n->b, n->c}, *r;
  for (int i = 0; i < 3; i++)
    if ((r = unstable_read(u, kids[i], any))) return r;
  for (int i = 0; i < n->list.n; i++)
    if ((r = unstable_read(u, n->list.v[i], any))) return r;
  return NULL;
}

static void lint_split_key(linter *L, const ast_node *split) {
  const ast_node *k = split->a;
  int any = 0;
  note_reads(L, k);
  const ast_node *bad = unstable_read(L->u, k, &any);
  if (bad && (bad->ref == BC_F_TIER || bad->ref == BC_F_REGION))
    report(L, L_UNSTABLE_SPLIT_KEY, k->span,
           "split key '%s' is shared by whole groups of users, so each group takes one "
           "arm; key the split by an identity such as req.user or req.tenant",
           text_of(L, bad));
  else if (bad)
    report(L, L_UNSTABLE_SPLIT_KEY, k->span,
           "split key '%s' changes from one request to the next, so the same user lands "
           "in different arms; key the split by an identity such as req.user or req.tenant",
           text_of(L, bad));
  else if (!any)
    report(L, L_UNSTABLE_SPLIT_KEY, k->span,
           "split key '%s' is a constant: every request takes the same arm", text_of(L, k));
}

/* ---- routes ---- */

static void add_target(linter *L, rctx *R, const ast_node *rule, int ri, const ast_node *t,
                       const ast_node *split) {
  if (sema_grow(&R->t, R->nt, &R->cap, sizeof *R->t)) { L->nomem = 1; return; }
  rtarget *x = &R->t[R->nt++];
  memset(x, 0, sizeof *x);
  x->rule = rule;
  x->rule_ix = ri;
  x->t = t;
  x->split = split;
  x->c.cs = R->req;
  if (t->kind == N_SELECT) {
    pool_conds(L->u, t->a, &x->c.cs, 0);
    lint_condition(L, t->a->a, IN_WHERE);
    mark_pool(L, t->a, 0);
  }
  if (cands_build(L, &x->c, t->kind == N_MODELREF ? t->ref : -1) != 0) return;
  if (t->kind == N_MODELREF) { note_named(L, t); return; }
  for (int k = 0; k < x->c.n; k++) {
    int m = x->c.m[k];
    if (!L->selectable[m]) L->where_sel[m] = t->span;
    L->selectable[m] = 1;
  }
}

/* Collects the targets of every rule; notes shadows and split keys. */
static void collect_targets(linter *L, rctx *R) {
  const sema_route *r = R->r;
  for (int ri = 0; ri < r->rules.n; ri++) {
    const ast_node *rule = r->rules.v[ri];
    for (int k = 0; k < rule->list.n; k++) {
      const ast_node *t = rule->list.v[k];
      switch (t->kind) {
      case N_MODELREF: case N_SELECT: add_target(L, R, rule, ri, t, NULL); break;
      case N_SPLIT:
        lint_split_key(L, t);
        for (int a = 0; a < t->list.n; a++) {
          const ast_node *arm = t->list.v[a]->a;
          if (arm->kind == N_MODELREF || arm->kind == N_SELECT)
            add_target(L, R, rule, ri, arm, t);
        }
        break;
      case N_SHADOW: note_named(L, t); break;
      default: break;
      }
    }
  }
  for (int i = 0; i < r->shadows.n; i++) note_named(L, r->shadows.v[i]);
}

/* Whether every request rule j's condition matches is matched by rule
 * i's: each conjunct of i (not always true) is a conjunct of j. */
static int implied(const linter *L, const ast_node *ri, const ast_node *rj) {
  if (ri->kind != N_WHEN) return 0;
  condset ci = {.n = 0}, cj = {.n = 0};
  split_at(&ci, ri->a, OP_AND);
  if (rj->kind == N_WHEN) split_at(&cj, rj->a, OP_AND);
  for (int k = 0; k < ci.n; k++)
    if (!is_true(eval_for(L, -1, ci.v[k])) && !in_set(&cj, ci.v[k])) return 0;
  return 1;
}

/* Whether rule i has a candidate whenever rule j has one: i has a
 * candidate that passes everything at compile time, or every model j may
 * pick, i may pick through a target outside any split, under only
 * per-request conjuncts that j's target puts on it as well. */
static int covers(const rctx *R, int i, int j) {
  int any = 0, always = 0;
  for (int b = 0; b < R->nt && !always; b++)   /* a candidate with nothing left to check */
    if (R->t[b].rule_ix == i && !R->t[b].split)
      for (int k = 0; k < R->t[b].c.n && !always; k++) always = R->t[b].c.dyn[k] == 0;
  for (int a = 0; a < R->nt; a++) {
    const rtarget *tj = &R->t[a];
    if (tj->rule_ix != j) continue;
    for (int k = 0; k < tj->c.n; k++) {
      int m = tj->c.m[k], ok = 0;
      any = 1;
      for (int b = 0; b < R->nt && !ok; b++) {
        const rtarget *ti = &R->t[b];
        int at = ti->rule_ix == i && !ti->split ? cand_index(&ti->c, m) : -1;
        if (at < 0) continue;
        ok = 1;
        for (int bit = 0; bit < ti->c.cs.n && ok; bit++)
          if ((ti->c.dyn[at] >> bit & 1) && !in_set(&tj->c.cs, ti->c.cs.v[bit])) ok = 0;
      }
      if (!ok && !always) return 0;
    }
  }
  return any;
}

static void lint_subsumed(linter *L, const rctx *R) {
  const ast_list *rules = &R->r->rules;
  for (int j = 1; j < rules->n; j++) {
    const ast_node *rj = rules->v[j];
    if (rj->kind == N_WHEN && rejects(eval_for(L, -1, rj->a))) continue;
    for (int i = 0; i < j; i++) {
      const ast_node *ri = rules->v[i];
      if (!implied(L, ri, rj) || !covers(R, i, j)) continue;
      report(L, L_SUBSUMED_RULE, rj->span,
             "%s never decides: every request it matches is decided first by the rule at "
             "line %d (when %s)", rj->kind == N_WHEN ? "this rule" : "'otherwise'",
             ri->span.line, ri->text ? ri->text : "");
      break;
    }
  }
}

/* Splits requirement c, for model m, into disjuncts that read only the
 * request (gates) and disjuncts m fails at compile time (fails). 1 when
 * that is all of them: m then fails c exactly when every gate is false. */
static int gated(const linter *L, int m, const ast_node *c, condset *gates, condset *fails) {
  condset d = {.n = 0};
  split_at(&d, c, OP_OR);
  gates->n = fails->n = 0;
  for (int i = 0; i < d.n; i++) {
    ev_val v = eval_for(L, m, d.v[i]);
    if (!reads(d.v[i], RK_MPROP)) {
      if (is_true(v)) return 0;
      if (v.kind == EV_UNKNOWN) gates->v[gates->n++] = d.v[i];
      continue;
    }
    if (v.kind != EV_OK || v.v.i) return 0;
    fails->v[fails->n++] = d.v[i];
  }
  return gates->n > 0 && fails->n > 0;
}

/* "lacks vision and tools" when every failed part is a capability flag,
 * else "fails 'quality >= 0.9'". */
static const char *fail_text(linter *L, const condset *fails) {
  int caps = fails->n > 0;
  for (int i = 0; i < fails->n; i++) {
    const ast_node *x = fails->v[i];
    caps &= x->kind == N_IDENT && x->refkind == RK_MPROP && x->ref >= MP_CAP;
  }
  return caps ? fmt(L, "lacks %s", join_texts(L, fails, NULL, 0))
              : fmt(L, "fails %s", join_texts(L, fails, NULL, 1));
}

/* Whether rule's condition has one of gates as a conjunct: then every
 * request it matches passes the requirement the gates belong to. */
static int rule_opens(const ast_node *rule, const condset *gates) {
  condset c = {.n = 0};
  if (rule->kind != N_WHEN) return 0;
  split_at(&c, rule->a, OP_AND);
  for (int i = 0; i < gates->n; i++)
    if (in_set(&c, gates->v[i])) return 1;
  return 0;
}

static void lint_missing_caps(linter *L, const rctx *R) {
  for (int a = 0; a < R->nt; a++) {
    const ast_node *t = R->t[a].t;
    if (t->kind != N_MODELREF || t->ref < 0) continue;
    int m = t->ref;
    for (int c = 0; c < R->req.n; c++) {
      const ast_node *req = R->req.v[c];
      ev_val v = eval_for(L, m, req);
      condset gates, fails = {.n = 0};
      if (rejects(v)) {
        condset d = {.n = 0};
        split_at(&d, req, OP_OR);
        for (int i = 0; i < d.n; i++)
          if (reads(d.v[i], RK_MPROP)) fails.v[fails.n++] = d.v[i];
        if (!fails.n) continue;   /* a constant: constant-condition says so */
        report(L, L_MISSING_CAPABILITY, t->span,
               "candidate '%s' %s: route '%s' requires '%s', so it is never chosen here",
               t->name, fail_text(L, &fails), R->r->name, text_of(L, req));
        break;
      }
      if (v.kind == EV_UNKNOWN && gated(L, m, req, &gates, &fails) &&
          !rule_opens(R->t[a].rule, &gates)) {
        report(L, L_MISSING_CAPABILITY, t->span,
               "candidate '%s' %s: route '%s' requires '%s', so it serves only requests "
               "where %s", t->name, fail_text(L, &fails), R->r->name, text_of(L, req),
               join_texts(L, &gates, " || ", 0));
      }
    }
  }
}

/* A requirement that, for some requests, every candidate of every rule
 * those requests can reach fails: the route has nothing to return. */
static void lint_empty_route(linter *L, const rctx *R) {
  for (int c = 0; c < R->req.n; c++) {
    condset gates = {.n = 0}, fails, d = {.n = 0};
    split_at(&d, R->req.v[c], OP_OR);
    for (int i = 0; i < d.n; i++)   /* the same for every model */
      if (!reads(d.v[i], RK_MPROP) && eval_for(L, -1, d.v[i]).kind == EV_UNKNOWN)
        gates.v[gates.n++] = d.v[i];
    int pairs = 0, all = gates.n > 0;
    for (int a = 0; a < R->nt && all; a++) {
      const cands *x = &R->t[a].c;
      if (rule_opens(R->t[a].rule, &gates)) continue;
      for (int k = 0; k < x->n && all; k++) {
        all = (x->dyn[k] >> c & 1) && gated(L, x->m[k], R->req.v[c], &gates, &fails);
        pairs++;
      }
    }
    if (!all || !pairs) continue;
    report(L, L_EMPTY_ROUTE, R->req.v[c]->span,
           "route '%s' has no model for requests unless %s: no candidate of any rule passes "
           "'%s'", R->r->name, join_texts(L, &gates, " || ", 0), text_of(L, R->req.v[c]));
  }
}

static void lint_no_otherwise(linter *L, const sema_route *r) {
  for (int i = 0; i < r->rules.n; i++)
    if (r->rules.v[i]->kind == N_OTHERWISE) return;
  report(L, L_NO_OTHERWISE, r->node->span,
         "route '%s' has no 'otherwise': a request no rule matches gets no model", r->name);
}

/* Rules that cannot fill primary + fallbacks: distinct candidates of the
 * targets outside splits, plus the smallest arm of each split. */
static void lint_short_chain(linter *L, const rctx *R) {
  const sema_route *r = R->r;
  if (r->fallbacks <= 0 || L->level[L_SHORT_CHAIN] == LV_OFF) return;
  unsigned char *seen = calloc((size_t)L->u->nmodels + 1, 1);
  if (!seen) { L->nomem = 1; return; }
  for (int ri = 0; ri < r->rules.n; ri++) {
    memset(seen, 0, (size_t)L->u->nmodels + 1);
    int total = 0;
    for (int a = 0; a < R->nt; a++) {
      const rtarget *x = &R->t[a];
      if (x->rule_ix != ri) continue;
      if (!x->split) {
        for (int k = 0; k < x->c.n; k++)
          if (!seen[x->c.m[k]]) { seen[x->c.m[k]] = 1; total++; }
        continue;
      }
      if (a > 0 && R->t[a - 1].split == x->split) continue;   /* counted with its first arm */
      int least = x->c.n;
      for (int b = a + 1; b < R->nt && R->t[b].split == x->split; b++)
        if (R->t[b].c.n < least) least = R->t[b].c.n;
      total += least;
    }
    if (total < r->fallbacks + 1)
      report(L, L_SHORT_CHAIN, r->rules.v[ri]->span,
             "this rule offers at most %d candidate%s, but route '%s' asks for a primary and "
             "%d fallback%s", total, total == 1 ? "" : "s", r->name, r->fallbacks,
             r->fallbacks == 1 ? "" : "s");
  }
  free(seen);
}

/* ---- selections: empty-pool, unreachable-latency ---- */

/* Whether some model passes every conjunct of cs but the one at skip. */
static int anyone_passes(const linter *L, const condset *cs, int skip) {
  for (int m = 0; m < L->u->nmodels; m++) {
    int out = 0;
    for (int i = 0; i < cs->n && !out; i++)
      out = i != skip && rejects(eval_for(L, m, cs->v[i]));
    if (!out) return 1;
  }
  return 0;
}

/* Why no model passes cs: a smallest set of its conjuncts that no model
 * passes (each one is needed: without it, some model would pass). */
static const char *why_empty(linter *L, const condset *cs) {
  if (L->u->nmodels == 0) return "the policy declares no model";
  condset need = *cs;
  for (int i = 0; i < need.n;) {
    if (anyone_passes(L, &need, i)) { i++; continue; }
    memmove(&need.v[i], &need.v[i + 1], (size_t)(need.n - i - 1) * sizeof *need.v);
    need.n--;
  }
  if (need.n == 1) return fmt(L, "no model passes '%s'", text_of(L, need.v[0]));
  return fmt(L, "no model passes %s %s", need.n == 2 ? "both" : "all of",
             join_texts(L, &need, NULL, 1));
}

static int is_latency(const ast_node *n) {
  return n->kind == N_IDENT && n->refkind == RK_MPROP && (n->ref == MP_P95 || n->ref == MP_P50);
}

/* Whether c is `p95 <= constant` (or <, or written the other way round). */
static int latency_bound(const linter *L, const ast_node *c, lat_bound *b) {
  if (c->kind != N_BINARY) return 0;
  const ast_node *x = c->a, *k = c->b;
  int op = c->op;
  if (!is_latency(x)) { x = c->b; k = c->a; op = flip(op); }
  if (!is_latency(x) || (op != OP_LT && op != OP_LE)) return 0;
  ev_val v = eval_for(L, -1, k);
  if (v.kind != EV_OK || v.ty != TY_DURATION) return 0;
  b->node = c;
  b->prop = x->ref;
  b->limit = v.v.d;
  b->strict = op == OP_LT;
  return 1;
}

/* Applies the latency bounds among c's conjuncts to c's candidates. */
static void note_latency(linter *L, const cands *c) {
  for (int i = 0; i < c->cs.n; i++) {
    lat_bound nb;
    if (!latency_bound(L, c->cs.v[i], &nb)) continue;
    lat_bound *b = NULL;
    for (int k = 0; k < L->nlat && !b; k++)
      if (L->lat[k].node == nb.node) b = &L->lat[k];
    if (!b) {
      if (sema_grow(&L->lat, L->nlat, &L->caplat, sizeof *L->lat)) { L->nomem = 1; return; }
      b = &L->lat[L->nlat++];
      *b = nb;
      b->nseen = b->met = 0;
      b->fastest = -1;
    }
    for (int k = 0; k < c->n; k++) {
      const sema_model *md = &L->u->models[c->m[k]];
      double p = b->prop == MP_P95 ? md->p95 : md->p50;
      b->nseen++;
      if (p <= 0 || (b->strict ? p < b->limit : p <= b->limit)) b->met = 1;
      const sema_model *best = b->fastest >= 0 ? &L->u->models[b->fastest] : NULL;
      if (!best || p < (b->prop == MP_P95 ? best->p95 : best->p50)) b->fastest = c->m[k];
    }
  }
}

static void lint_latency(linter *L) {
  for (int i = 0; i < L->nlat; i++) {
    const lat_bound *b = &L->lat[i];
    if (!b->nseen || b->met) continue;
    const sema_model *md = &L->u->models[b->fastest];
    const char *prop = b->prop == MP_P95 ? "p95" : "p50";
    report(L, L_UNREACHABLE_LATENCY, b->node->span,
           "no candidate has a declared %s within %s (the fastest, '%s', has %s): '%s' "
           "passes none of them until live figures say otherwise", prop,
           fmt_ms(L, b->limit), md->name, fmt_ms(L, b->prop == MP_P95 ? md->p95 : md->p50),
           text_of(L, b->node));
  }
}

/* Pool declarations: their conditions, emptiness and latency bounds. */
static void lint_pools(linter *L) {
  sema_unit *u = L->u;
  for (int p = 0; p < u->npools; p++) {
    cands c = {.n = 0};
    c.cs.n = 0;
    pool_conds(u, u->pools[p].def, &c.cs, 0);
    lint_condition(L, u->pools[p].def->a, IN_WHERE);
    if (cands_build(L, &c, -1) == 0) {
      note_latency(L, &c);
      L->pool_empty[p] = c.n == 0;
    }
    cands_free(&c);
  }
  for (int p = 0; p < u->npools; p++) {
    const ast_node *def = u->pools[p].def;
    int parent = def->name ? def->ref : -1;
    if (!L->pool_empty[p] || (parent >= 0 && parent < u->npools && L->pool_empty[parent]))
      continue;
    condset cs = {.n = 0};
    pool_conds(u, def, &cs, 0);
    report(L, L_EMPTY_POOL, u->pools[p].span, "pool '%s' is empty: %s", u->pools[p].name,
           why_empty(L, &cs));
  }
}

static void lint_route(linter *L, const sema_route *r) {
  rctx R = {.r = r};
  for (int i = 0; i < r->requires.n; i++) {
    split_at(&R.req, r->requires.v[i]->a, OP_AND);
    lint_condition(L, r->requires.v[i]->a, IN_REQUIRE);
  }
  for (int i = 0; i < r->rules.n; i++)
    if (r->rules.v[i]->kind == N_WHEN) lint_condition(L, r->rules.v[i]->a, IN_WHEN);
  collect_targets(L, &R);
  if (!L->nomem) {
    for (int a = 0; a < R.nt; a++) {
      const rtarget *x = &R.t[a];
      note_latency(L, &x->c);
      if (x->t->kind != N_SELECT || x->c.n > 0) continue;
      const ast_node *p = x->t->a;
      if (p->name && p->ref >= 0 && p->ref < L->u->npools && L->pool_empty[p->ref]) continue;
      report(L, L_EMPTY_POOL, x->t->span, "this selection is always empty: %s",
             why_empty(L, &x->c.cs));
    }
    lint_subsumed(L, &R);
    lint_missing_caps(L, &R);
    lint_empty_route(L, &R);
    lint_no_otherwise(L, r);
    lint_short_chain(L, &R);
  }
  for (int a = 0; a < R.nt; a++) cands_free(&R.t[a].c);
  free(R.t);
}

/* ---- declarations nobody uses ---- */

static int module_of(const sema_unit *u, const src_file *f) {
  for (int k = 0; k < u->nmods; k++)
    if (&u->mods[k]->file == f) return k;
  return -1;
}

/* Marks module k and every module it imports, transitively. */
static void reach_modules(const sema_unit *u, int k, unsigned char *reach) {
  if (reach[k]) return;
  reach[k] = 1;
  const ast_list *decls = &u->mods[k]->decls;
  for (int i = 0; i < decls->n; i++)
    if (decls->v[i]->kind == N_IMPORT && decls->v[i]->ref > 0 && decls->v[i]->ref < u->nmods)
      reach_modules(u, decls->v[i]->ref, reach);
}

/* An import is used when a model of it (or of what it imports) is named
 * or may be selected, or a request field it declares is read. */
static void lint_import(linter *L, const ast_node *d, int at) {
  const sema_unit *u = L->u;
  int k = d->ref;
  if (k <= 0 || k >= u->nmods) return;
  const ast_list *decls = &u->mods[0]->decls;
  for (int i = 0; i < at; i++)
    if (decls->v[i]->kind == N_IMPORT && decls->v[i]->ref == k) {
      report(L, L_UNUSED_IMPORT, d->span, "module '%.*s' is already imported on line %d",
             (int)d->len, d->str, decls->v[i]->span.line);
      return;
    }
  unsigned char *reach = calloc((size_t)u->nmods, 1);
  if (!reach) { L->nomem = 1; return; }
  reach_modules(u, k, reach);
  int used = 0;
  for (int m = 0; m < u->nmodels && !used; m++) {
    int mk = module_of(u, u->models[m].span.file);
    used = mk >= 0 && reach[mk] && (L->mentioned[m] || L->selectable[m]);
  }
  for (int f = BC_NSTD; f < u->nfields && !used; f++) {
    int fk = module_of(u, u->fields[f].span.file);
    used = fk >= 0 && reach[fk] && L->field_read[f];
  }
  free(reach);
  if (!used)
    report(L, L_UNUSED_IMPORT, d->span,
           "import \"%.*s\" is unused: no model of it is named or can be selected",
           (int)d->len, d->str);
}

static void lint_unused(linter *L) {
  const sema_unit *u = L->u;
  const ast_list *decls = &u->mods[0]->decls;
  for (int i = 0; i < decls->n; i++) {
    const ast_node *d = decls->v[i];
    if (d->kind == N_IMPORT) lint_import(L, d, i);
    if (d->kind != N_MODEL || d->ref < 0 || d->ref >= u->nmodels || strchr(d->name, '.'))
      continue;
    if (!L->named[d->ref] && !L->selectable[d->ref])
      report(L, L_UNUSED_MODEL, d->span,
             "model '%s' is never used: no route names it and no selection can pick it",
             d->name);
  }
  for (int p = 0; p < u->npools; p++)
    if (!L->pool_used[p])
      report(L, L_UNUSED_POOL, u->pools[p].span, "pool '%s' is never used by a route",
             u->pools[p].name);
  for (int b = 0; b < u->nbudgets; b++)
    if (!L->budget_used[b])
      report(L, L_UNUSED_BUDGET, u->budgets[b].node->span,
             "budget '%s' is never read: no condition uses budget.%s.spent, .remaining or "
             ".used", u->budgets[b].name, u->budgets[b].name);
  for (int f = BC_NSTD; f < u->nfields; f++)
    if (u->fields[f].span.file == L->root && !L->field_read[f])
      report(L, L_UNUSED_FIELD, u->fields[f].span, "request field '%s' is never read",
             u->fields[f].name);
}

/* ---- prices: suspicious-price ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Where a price finding goes: the model's declaration or override in the
 * root file (so an allow comment there silences it), else where a route
 * names it, else the first selection that may pick it. */
static ast_span price_site(const linter *L, int m) {
  const ast_list *decls = &L->u->mods[0]->decls;
  for (int i = 0; i < decls->n; i++)
    if (decls->v[i]->kind == N_MODEL && decls->v[i]->ref == m) return decls->v[i]->span;
  return L->named[m] ? L->where_named[m] : L->where_sel[m];
}

static int price_outlier(linter *L, int m, const char *what, double p, double med) {
  const sema_model *md = &L->u->models[m];
  if (p > med * 100)
    report(L, L_SUSPICIOUS_PRICE, price_site(L, m),
           "model '%s' costs %s for %s, %.0fx the median of provider '%s' (%s); check its "
           "price", md->name, fmt_price(L, p), what, p / med, md->provider, fmt_price(L, med));
  else if (p < med / 100)
    report(L, L_SUSPICIOUS_PRICE, price_site(L, m),
           "model '%s' costs %s for %s, 1/%.0f of the median of provider '%s' (%s); check "
           "its price", md->name, fmt_price(L, p), what, med / p, md->provider,
           fmt_price(L, med));
  else return 0;
  return 1;
}

static void lint_prices(linter *L) {
  const sema_unit *u = L->u;
  double *in = malloc(((size_t)u->nmodels + 1) * sizeof *in);
  double *out = malloc(((size_t)u->nmodels + 1) * sizeof *out);
  if (!in || !out) { free(in); free(out); L->nomem = 1; return; }
  for (int m = 0; m < u->nmodels; m++) {
    if (!L->named[m] && !L->selectable[m]) continue;
    const sema_model *md = &u->models[m];
    const char *zero = md->input == 0 && md->output == 0 ? "zero input and output prices"
                     : md->input == 0 ? "a zero input price"
                     : md->output == 0 ? "a zero output price" : NULL;
    if (zero) {
      report(L, L_SUSPICIOUS_PRICE, price_site(L, m),
             "model '%s' has %s: cheapest() ranks it first and its expected cost "
             "reads $0; declare its prices", md->name, zero);
      continue;
    }
    if (!md->provider[0]) continue;
    int n = 0;
    for (int k = 0; k < u->nmodels; k++) {
      const sema_model *o = &u->models[k];
      if (o->input > 0 && o->output > 0 && strcmp(o->provider, md->provider) == 0) {
        in[n] = o->input;
        out[n++] = o->output;
      }
    }
    if (n < 3) continue;
    double mi = median(in, n), mo = median(out, n);
    if (!price_outlier(L, m, "input", md->input, mi))
      price_outlier(L, m, "output", md->output, mo);
  }
  free(in);
  free(out);
}

/* ---- allow comments, order ---- */

static int id_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

static const char *skip_blanks(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/* Whether comment text (from its '#') is `# lane: allow ID[, ID...]`
 * naming id; anything after the list is a free-form reason. */
static int allows(const char *text, size_t len, const char *id) {
  const char *p = text, *e = text + len;
  size_t idn = strlen(id);
  while (p < e && *p == '#') p++;
  p = skip_blanks(p, e);
  if (e - p < 5 || memcmp(p, "lane:", 5) != 0) return 0;
  p = skip_blanks(p + 5, e);
  if (e - p < 6 || memcmp(p, "allow", 5) != 0 || (p[5] != ' ' && p[5] != '\t')) return 0;
  p = skip_blanks(p + 5, e);
  for (;;) {
    const char *s = p;
    while (p < e && id_char(*p)) p++;
    if (p == s) return 0;
    if ((size_t)(p - s) == idn && memcmp(s, id, idn) == 0) return 1;
    p = skip_blanks(p, e);
    if (p == e || *p != ',') return 0;
    p = skip_blanks(p + 1, e);
  }
}

/* An allow on the finding's line, or alone on the line just above it. */
static int allowed(const linter *L, const finding *f) {
  const ast_ctx *cx = &L->u->ctx;
  for (int i = 0; i < cx->ncomments; i++) {
    const ast_comment *c = &cx->comments[i];
    if (c->span.file != f->span.file) continue;
    if (c->span.line != f->span.line && !(c->span.line == f->span.line - 1 && c->own_line))
      continue;
    if (allows(c->text, c->len, lints[f->lint].id)) return 1;
  }
  return 0;
}

static int cmp_finding(const void *pa, const void *pb) {
  const finding *a = pa, *b = pb;
  if (a->file_ix != b->file_ix) return a->file_ix < b->file_ix ? -1 : 1;
  if (a->span.line != b->span.line) return a->span.line < b->span.line ? -1 : 1;
  if (a->span.col != b->span.col) return a->span.col < b->span.col ? -1 : 1;
  if (a->lint != b->lint) return a->lint < b->lint ? -1 : 1;
  return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Drops allowed findings and sorts the rest by place. */
static void settle(linter *L) {
  int n = 0;
  for (int i = 0; i < L->nf; i++) {
    if (allowed(L, &L->f[i])) continue;
    L->f[n] = L->f[i];
    L->f[n++].file_ix = module_of(L->u, L->f[i].span.file);
  }
  L->nf = n;
  if (n > 1) qsort(L->f, (size_t)n, sizeof *L->f, cmp_finding);
}

/* ---- running ---- */

static int lint_run(linter *L) {
  sema_unit *u = L->u;
  size_t nm = (size_t)u->nmodels + 1;
  L->root = &u->mods[0]->file;
  L->named = calloc(nm, 1);
  L->mentioned = calloc(nm, 1);
  L->selectable = calloc(nm, 1);
  L->where_named = calloc(nm, sizeof *L->where_named);
  L->where_sel = calloc(nm, sizeof *L->where_sel);
  L->pool_used = calloc((size_t)u->npools + 1, 1);
  L->pool_empty = calloc((size_t)u->npools + 1, 1);
  L->budget_used = calloc((size_t)u->nbudgets + 1, 1);
  L->field_read = calloc((size_t)u->nfields + 1, 1);
  if (!L->named || !L->mentioned || !L->selectable || !L->where_named || !L->where_sel ||
      !L->pool_used || !L->pool_empty || !L->budget_used || !L->field_read)
    return -1;
  const ast_list *decls = &u->mods[0]->decls;
  for (int i = 0; i < decls->n; i++) {
    const ast_node *d = decls->v[i];
    if (d->kind == N_MODEL && d->ref >= 0 && d->ref < u->nmodels && strchr(d->name, '.')) {
      L->mentioned[d->ref] = 1;
      check_deprecated(L, d->span, d->ref);
    }
    if (d->kind == N_BUDGET || d->kind == N_TEST)
      for (int k = 0; k < d->list.n; k++)
        if (d->list.v[k]->kind == N_PROP || d->list.v[k]->kind == N_EXPECT)
          note_reads(L, d->list.v[k]->a);
  }
  lint_pools(L);
  for (int r = 0; r < u->nroutes && !L->nomem; r++) lint_route(L, &u->routes[r]);
  lint_latency(L);
  lint_unused(L);
  lint_prices(L);
  if (L->nomem) return -1;
  settle(L);
  return 0;
}

static void linter_free(linter *L) {
  free(L->f);
  free(L->named);
  free(L->mentioned);
  free(L->selectable);
  free(L->where_named);
  free(L->where_sel);
  free(L->pool_used);
  free(L->pool_empty);
  free(L->budget_used);
  free(L->field_read);
  free(L->lat);
}

/* ---- output ---- */

static void print_text(const linter *L, FILE *out) {
  for (int i = 0; i < L->nf; i++) {
    const finding *f = &L->f[i];
    size_t n = strlen(f->msg) + strlen(lints[f->lint].id) + 4;
    char *msg = malloc(n);
    if (!msg) continue;
    snprintf(msg, n, "%s [%s]", f->msg, lints[f->lint].id);
    ast_diag d = {.level = f->level == LV_ERROR ? DIAG_ERROR : DIAG_WARNING, .span = f->span,
                  .msg = msg};
    diag_render_one(out, &d);
    free(msg);
  }
}

/* A JSON string; messages quote policy text, which is UTF-8 unless the
 * file is not, and then the bytes are replaced rather than lost. */
static json_t *jstr(const char *s) {
  json_t *j = json_string(s);
  if (j) return j;
  size_t n = strlen(s);
  char *t = malloc(n + 1);
  if (!t) return json_string("");
  for (size_t i = 0; i <= n; i++) t[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
  j = json_string(t);
  free(t);
  return j;
}

static const char *file_name(const finding *f) {
  return f->span.file && f->span.file->name ? f->span.file->name : "";
}

static json_t *json_findings(const linter *L) {
  json_t *a = json_array();
  for (int i = 0; a && i < L->nf; i++) {
    const finding *f = &L->f[i];
    json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:i, s:i, s:o}",
                                       "id", lints[f->lint].id,
                                       "level", level_names[f->level],
                                       "file", jstr(file_name(f)),
                                       "line", f->span.line, "col", f->span.col,
                                       "message", jstr(f->msg)));
  }
  return a;
}

/* A path as a URI reference: unreserved bytes and '/' as they are, the
 * rest percent-encoded. */
static json_t *uri_of(const char *path) {
  size_t n = strlen(path);
  char *s = malloc(3 * n + 1), *o = s;
  if (!s) return json_string("");
  for (const char *p = path; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c))
      *o++ = (char)c;
    else o += sprintf(o, "%%%02X", c);
  }
  *o = 0;
  json_t *j = json_string(s);
  free(s);
  return j;
}

static json_t *sarif_log(const linter *L) {
  json_t *rules = json_array(), *results = json_array();
  for (int k = 0; k < NLINTS; k++)
    json_array_append_new(rules, json_pack(
        "{s:s, s:{s:s}, s:{s:b, s:s}, s:{s:s}}", "id", lints[k].id,
        "shortDescription", "text", lints[k].summary,
        "defaultConfiguration", "enabled", lints[k].level != LV_OFF,
        "level", lints[k].level == LV_ERROR ? "error" : "warning",
        "help", "text", "See compiler/lints/README.md in the lane sources."));
  for (int i = 0; i < L->nf; i++) {
    const finding *f = &L->f[i];
    json_t *region = json_pack("{s:i, s:i, s:i}", "startLine", f->span.line,
                               "startColumn", f->span.col, "endColumn",
                               f->span.col + f->span.len);
    json_array_append_new(results, json_pack(
        "{s:s, s:i, s:s, s:{s:o}, s:[{s:{s:{s:o}, s:o}}]}", "ruleId", lints[f->lint].id,
        "ruleIndex", f->lint, "level", level_names[f->level], "message", "text", jstr(f->msg),
        "locations", "physicalLocation", "artifactLocation", "uri", uri_of(file_name(f)),
        "region", region));
  }
  return json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:o}}, s:o}]}",
                   "$schema", "https://json.schemastore.org/sarif-2.1.0.json",
                   "version", "2.1.0", "runs", "tool", "driver", "name", "lane",
                   "version", LANE_VERSION_STRING, "rules", rules, "results", results);
}

static void print_json(json_t *j, FILE *out) {
  char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  if (s) fprintf(out, "%s\n", s);
  free(s);
  json_decref(j);
}

/* ---- the command ---- */

static int find_lint(const char *id) {
  for (int k = 0; k < NLINTS; k++)
    if (strcmp(lints[k].id, id) == 0) return k;
  return -1;
}

static int unknown_lint(FILE *err, const char *id) {
  const char *ids[NLINTS];
  for (int k = 0; k < NLINTS; k++) ids[k] = lints[k].id;
  const char *best = sema_suggest(id, ids, NLINTS);
  fprintf(err, "lane: unknown lint '%s'%s%s%s (the lints are listed in compiler/lints/README.md)\n",
          id, best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
  return 2;
}

/* Sets each lint's level for this run; 0, or 2 after an unknown id. */
static int set_levels(int *level, const char *const *enable, int nenable,
                      const char *const *disable, int ndisable, FILE *err) {
  for (int k = 0; k < NLINTS; k++) level[k] = lints[k].level;
  for (int i = 0; i < nenable; i++) {
    int k = find_lint(enable[i]);
    if (k < 0) return unknown_lint(err, enable[i]);
    if (level[k] == LV_OFF) level[k] = LV_WARNING;
  }
  for (int i = 0; i < ndisable; i++) {
    int k = find_lint(disable[i]);
    if (k < 0) return unknown_lint(err, disable[i]);
    level[k] = LV_OFF;
  }
  return 0;
}

int lint_command(const char *path, const sema_opts *opts, const char *const *enable,
                 int nenable, const char *const *disable, int ndisable, const char *format,
                 FILE *out, FILE *err) {
  int form = !format || !strcmp(format, "text") ? 0 : !strcmp(format, "json") ? 1
           : !strcmp(format, "sarif") ? 2 : -1;
  if (form < 0) {
    fprintf(err, "lane: unknown lint format '%s'; expected text, json or sarif\n", format);
    return 2;
  }
  linter L;
  memset(&L, 0, sizeof L);
  if (set_levels(L.level, enable, nenable, disable, ndisable, err)) return 2;
  sema_unit u;
  sema_init(&u, opts);
  L.u = &u;
  int rc = 0;
  unsigned char *bytes = NULL;
  size_t n = 0;
  if (sema_load(&u, path, NULL) != 0 && u.nmods == 0) rc = 2;
  else if (u.ctx.nerrors || sema_check(&u) != 0 || emit_program(&u, &bytes, &n) != 0) rc = 1;
  free(bytes);
  if (rc) {
    diag_render(err, &u.ctx);   /* warnings too: the policy is not linted */
    sema_free(&u);
    return rc;
  }
  /* The compiler's own warnings (deprecations) are lints here, with levels
   * and allows, so they are not printed twice. */
  if (lint_run(&L) != 0) {
    fprintf(err, "lane: out of memory while linting\n");
    rc = 2;
  } else {
    if (form == 0) print_text(&L, out);
    else print_json(form == 1 ? json_findings(&L) : sarif_log(&L), out);
    for (int i = 0; i < L.nf; i++) rc |= L.f[i].level == LV_ERROR;
  }
  linter_free(&L);
  sema_free(&u);
  return rc;
}

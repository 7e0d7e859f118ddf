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
 * Conditions are read as chains of && and || with negations pushed
 * through (!(a && b) is the chain !a || !b), so that each part keeps its
 * polarity: contradictions are looked for in && chains, tautologies in ||
 * chains, and unset-field judges a comparison with the chains around it.
 *
 * Findings are collected, filtered by level and by `# lane: allow ID`
 * comments, sorted by place and printed as text, JSON or SARIF. A policy
 * that does not compile is not linted; its diagnostics are printed as
 * findings (compile-error) in the same formats. Pages for every lint:
 * compiler/lints/README.md.
 *
 * Cost: about that of compiling. No check compares every rule with every
 * other: subsumed-rule looks rules up by the hash of their conditions and
 * stops at a work limit it reports (analysis-limit); the rest is linear
 * or sorts.
 */
#include "lint.h"
#include "sem.h"

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
    "a rule that cannot offer as many candidates as the route's fallbacks ask for")    \
  X(TAUTOLOGY, "tautology", LV_WARNING,                                                \
    "a condition, or a part of one, that every value satisfies, as in req.x > 0 || "   \
    "req.x <= 0")                                                                      \
  X(UNSET_FIELD, "unset-field", LV_WARNING,                                            \
    "a comparison that also holds when the request field it reads is unset (0, \"\" "   \
    "or false)")                                                                       \
  X(FLOAT_EQUALITY, "float-equality", LV_WARNING,                                      \
    "== or != on computed money, double, duration or fraction values")                 \
  X(UNREACHABLE_PRICE_TIER, "unreachable-price-tier", LV_WARNING,                      \
    "a long-context price tier that no decision reaches: the model's context ends "    \
    "where the tier starts and every route that may choose it requires fits")          \
  X(ANALYSIS_LIMIT, "analysis-limit", LV_WARNING,                                      \
    "a check stopped at its work limit on a very large route: findings may be missing") \
  X(COMPILE_ERROR, "compile-error", LV_ERROR,                                          \
    "the policy does not compile (syntax, names, types, units, limits); not linted")   \
  X(COMPILE_WARNING, "compile-warning", LV_WARNING,                                    \
    "a compiler warning, reported with the errors of a policy that does not compile")

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
  const ast_diag *notes;/* compile-error: the notes that follow it, or NULL */
  int         nnotes;   /* how many */
} finding;

/* The starts of a source file's lines, for text_of. */
typedef struct line_index {
  size_t *start;          /* byte offset of each line, or NULL until built */
  size_t  n;              /* lines */
} line_index;

/* Conjuncts (or disjuncts) of a condition, as emit.c splits them: a
 * selection has at most 64 (emit.c rejects more), so a bit set of them
 * fits a uint64_t. Rule conditions, which may be longer, use `lits`. */
typedef struct condset {
  const ast_node *v[64];  /* the parts */
  int             n;      /* how many */
  int             over;   /* there were more than 64: the set is incomplete */
} condset;

/* One part of a chain of && (or ||) with negations pushed through:
 * !(a || b) is the chain !a && !b, so each part is a node and a sign. */
typedef struct lit {
  const ast_node *n;      /* the part, without the !s above it */
  const ast_node *as_written; /* the part with its own !s, for places */
  int             neg;    /* 1: the part is the negation of n */
} lit;

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
  int               over;  /* a selection has more than 64 conditions */
  uint64_t          req_always; /* bit i: req.v[i] always holds (a tautology) */
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
  int             seq;     /* order of noting */
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
  unsigned char  *tier_fits;   /* per model: some target picks it under `fits` */
  unsigned char  *tier_open;   /* per model: some target or shadow without `fits` */
  int            *mod_of;      /* per model: its module (index in u->mods), or -1 */
  lit            *lits;        /* chains under analysis, a stack */
  int             nlits, caplits; /* used, allocated */
  lane_request   *zero;        /* a request with no field set (unset-field) */
  const ast_node **decl_of;    /* per model: its declaration or override in the
                                  root file, or NULL */
  line_index     *lines;       /* per module: its line starts, built on demand */
  int             unshown;     /* compile errors counted but not kept */
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
  memset(f, 0, sizeof *f);
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

/* The index of the module whose file is f, or -1. */
static int module_of(const sema_unit *u, const src_file *f) {
  for (int k = 0; k < u->nmods; k++)
    if (&u->mods[k]->file == f) return k;
  return -1;
}

/* Where line `line` (1-based) of f starts, or NULL: through an index of
 * line starts built once per file (ast_source_line scans from the top,
 * which a finding per rule of a large policy cannot afford). */
static const char *line_at(linter *L, const src_file *f, int line) {
  int k = L->lines ? module_of(L->u, f) : -1;
  if (k < 0 || line < 1) {   /* no index (a policy that did not compile) */
    size_t n;
    return line >= 1 ? ast_source_line(f, line, &n) : NULL;
  }
  line_index *x = &L->lines[k];
  if (!x->start) {
    size_t n = 1;
    for (size_t i = 0; i < f->len; i++) n += f->text[i] == '\n';
    x->start = malloc(n * sizeof *x->start);
    if (!x->start) { L->nomem = 1; return NULL; }
    x->start[0] = 0;
    x->n = 1;
    for (size_t i = 0; i < f->len; i++)
      if (f->text[i] == '\n') x->start[x->n++] = i + 1;
  }
  return (size_t)line <= x->n ? f->text + x->start[line - 1] : NULL;
}

/* An expression's source text for messages, each run of blanks, line
 * ends and comments as one space (strings as written). */
static const char *text_of(linter *L, const ast_node *n) {
  const src_file *f = n->span.file;
  if (!f) return "";
  int eline = n->span.line, ecol = n->span.col + n->span.len;
  end_of(n, &eline, &ecol);
  const char *p = line_at(L, f, n->span.line);
  const char *e = line_at(L, f, eline);
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

static uint64_t hmix(uint64_t h, uint64_t v) { return bc_splitmix64(h ^ v); }

/* A hash of an expression's structure: equal under same_expr, equal hash. */
static uint64_t expr_hash(const ast_node *n) {
  if (!n) return 0x51ed27;
  uint64_t h = hmix((uint64_t)n->kind, (uint64_t)n->op << 8 ^ (uint64_t)n->refkind << 16 ^
                                           (uint64_t)(uint32_t)n->type << 24);
  h = hmix(h, (uint64_t)(uint32_t)n->ref);
  if (n->name) h = hmix(h, bc_fnv1a64(n->name, strlen(n->name), BC_FNV_OFFSET));
  if (n->len) h = hmix(h, bc_fnv1a64(n->str, n->len, BC_FNV_OFFSET));
  switch (n->kind) {
  case N_INT: case N_TOKENS: h = hmix(h, (uint64_t)n->lit.i); break;
  case N_UINT: h = hmix(h, n->lit.u); break;
  case N_BOOL: h = hmix(h, (uint64_t)n->lit.b); break;
  case N_DOUBLE: case N_MONEY: case N_PRICE: case N_DURATION: case N_FRACTION: {
    double d = n->lit.d == 0 ? 0 : n->lit.d;   /* -0.0 == 0.0 */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    h = hmix(h, bits);
    break;
  }
  default: break;
  }
  h = hmix(hmix(hmix(h, expr_hash(n->a)), expr_hash(n->b)), expr_hash(n->c));
  h = hmix(h, (uint64_t)n->list.n);
  for (int i = 0; i < n->list.n; i++) h = hmix(h, expr_hash(n->list.v[i]));
  return h;
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
  else cs->over = 1;
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

/* ---- chains: && and || with negations pushed through ---- */

static int is_not(const ast_node *n) { return n->kind == N_UNARY && n->op == OP_NOT; }
static int is_logic(const ast_node *n) {
  return n->kind == N_BINARY && (n->op == OP_AND || n->op == OP_OR);
}
/* What op becomes under a negation: !(a && b) is !a || !b. */
static int eff_op(int op, int neg) { return neg ? (op == OP_AND ? OP_OR : OP_AND) : op; }

/* Pushes onto L->lits the parts of the chain of op (OP_AND or OP_OR, after
 * negation) that n heads, n being negated when neg is set. */
static void push_parts(linter *L, const ast_node *n, int neg, int op) {
  const ast_node *written = n;
  while (is_not(n)) { n = n->a; neg = !neg; }
  if (is_logic(n) && eff_op(n->op, neg) == op) {
    push_parts(L, n->a, neg, op);
    push_parts(L, n->b, neg, op);
    return;
  }
  if (sema_grow(&L->lits, L->nlits, &L->caplits, sizeof *L->lits)) { L->nomem = 1; return; }
  L->lits[L->nlits++] = (lit){n, written, neg};
}

/* A part as text: "x > 0", or "!(x > 0)" when negated. */
static const char *lit_text(linter *L, const lit *p) {
  const ast_node *n = p->n;
  if (!p->neg) return text_of(L, n);
  int bare = n->kind == N_IDENT || n->kind == N_SELECTOR || n->kind == N_CALL;
  return fmt(L, bare ? "!%s" : "!(%s)", text_of(L, n));
}

/* Whether evaluating n can raise an error (overflow, division, a
 * conversion out of range): only names, literals, comparisons and logic
 * over them, and double arithmetic (IEEE: no errors) are sure not to. */
static int cannot_fail(const ast_node *n) {
  if (!n) return 1;
  switch (n->kind) {
  case N_INT: case N_UINT: case N_DOUBLE: case N_BOOL: case N_STRING: case N_NULL:
  case N_MONEY: case N_PRICE: case N_DURATION: case N_TOKENS: case N_FRACTION:
  case N_IDENT: case N_SELECTOR:
    return 1;
  case N_UNARY: return n->op == OP_NOT && cannot_fail(n->a);
  case N_BINARY:
    if (n->op >= OP_ADD && n->op <= OP_MOD && sema_ty_mtype(n->type) != LANE_T_DOUBLE) return 0;
    return cannot_fail(n->a) && cannot_fail(n->b);
  default: return 0;
  }
}

/* ---- bounds: contradictory-bounds, tautology ---- */

/* One part as a bound on an expression: x OP constant, x on the left. */
typedef struct bound {
  const ast_node *x;     /* the bounded expression */
  int             op;    /* OP_EQ OP_NE OP_LT OP_LE OP_GT OP_GE, negation applied */
  int             is_str;/* the constant is a string (== and != only) */
  double          d;     /* a numeric constant (ints, units, bools) */
  const char     *s;     /* a string constant */
  size_t          n;     /* its bytes */
  int             integral; /* x takes whole values: bounds round inward */
  int             nan_in;/* x may be NaN (a double) and NaN satisfies the part */
  int             lo0;   /* x is never negative (uint, bool) */
  int             hi1;   /* x is a bool: 0 or 1 */
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

/* The comparison that holds exactly when op does not (NaN aside). */
static int negate_op(int op) {
  switch (op) {
  case OP_EQ: return OP_NE;
  case OP_NE: return OP_EQ;
  case OP_LT: return OP_GE;
  case OP_LE: return OP_GT;
  case OP_GT: return OP_LE;
  default: return OP_LT;   /* OP_GE */
  }
}

/* A part as a bound: a comparison of an expression with a constant, or a
 * bare boolean expression (x, which is x == true). */
static int as_bound(const linter *L, const lit *p, bound *b) {
  const ast_node *c = p->n;
  ev_val k;
  memset(&k, 0, sizeof k);
  if (c->kind == N_BINARY && c->op >= OP_EQ && c->op <= OP_GE) {
    ev_val va = eval_for(L, -1, c->a), vb = eval_for(L, -1, c->b);
    if (vb.kind == EV_OK && va.kind == EV_UNKNOWN) { b->x = c->a; k = vb; b->op = c->op; }
    else if (va.kind == EV_OK && vb.kind == EV_UNKNOWN) { b->x = c->b; k = va; b->op = flip(c->op); }
    else return 0;
  } else if (c->type == TY_BOOL && eval_for(L, -1, c).kind == EV_UNKNOWN) {
    b->x = c;
    b->op = OP_EQ;
    k.kind = EV_OK;
    k.ty = TY_BOOL;
    k.v.i = 1;
  } else {
    return 0;
  }
  int t = b->x->type;
  b->integral = t == TY_INT || t == TY_UINT || t == TY_TOKENS || t == TY_BOOL;
  b->lo0 = t == TY_UINT || t == TY_BOOL;
  b->hi1 = t == TY_BOOL;
  b->is_str = k.ty == TY_STRING;
  int nan = !b->integral && !b->is_str && sema_ty_mtype(t) == LANE_T_DOUBLE;
  /* NaN meets != only; the negation of any other comparison it meets. */
  b->nan_in = nan && (p->neg ? b->op != OP_NE : b->op == OP_NE);
  if (p->neg) b->op = negate_op(b->op);
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
  if (a->is_str != b->is_str || (a->nan_in && b->nan_in)) return 0;
  if (a->is_str) {
    int eq = sem_bytes_eq(a->s, a->n, b->s, b->n);
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

/* Whether value d satisfies numeric bound b. */
static int meets(const bound *b, double d) {
  switch (b->op) {
  case OP_EQ: return d == b->d;
  case OP_NE: return d != b->d;
  case OP_LT: return d < b->d;
  case OP_LE: return d <= b->d;
  case OP_GT: return d > b->d;
  default: return d >= b->d;
  }
}

typedef struct ival { double lo, hi; int lo_open, hi_open; } ival;

static int cmp_ival(const void *pa, const void *pb) {
  const ival *a = pa, *b = pb;
  if (a->lo != b->lo) return a->lo < b->lo ? -1 : 1;
  return a->lo_open - b->lo_open;
}

/* Whether the intervals v[0..n) cover [dlo, dhi] (integers only, when
 * integral): sorted by their low ends, each must start inside what the
 * ones before it cover. */
static int ivals_cover(ival *v, int n, double dlo, double dhi, int integral) {
  if (n == 0) return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_ival);
  if (v[0].lo > dlo || (v[0].lo == dlo && v[0].lo_open && !isinf(dlo))) return 0;
  double reach = v[0].hi;
  int reach_open = v[0].hi_open;
  for (int i = 0;; i++) {
    if (i > 0) {
      int joins = integral ? v[i].lo <= reach + 1
                           : v[i].lo < reach || (v[i].lo == reach && !(v[i].lo_open && reach_open));
      if (!joins) return 0;
      if (v[i].hi > reach || (v[i].hi == reach && !v[i].hi_open)) {
        reach = v[i].hi;
        reach_open = v[i].hi_open;
      }
    }
    if (reach > dhi || (reach == dhi && (!reach_open || isinf(dhi)))) return 1;
    if (i + 1 == n) return 0;
  }
}

/* Whether every value of the expression the bounds g[0..n) share meets
 * one of them: 2 yes, 1 every value but NaN, 0 no. Linear but for the
 * sort of the intervals. */
static int bounds_cover(const bound *g, int n) {
  int ne = -1, nan_ok = 0;
  if (g[0].is_str) {   /* != s with != t, or != s with == s */
    for (int i = 0; i < n; i++) {
      if (g[i].op != OP_NE) continue;
      if (ne >= 0 && !sem_bytes_eq(g[i].s, g[i].n, g[ne].s, g[ne].n)) return 2;
      if (ne < 0) ne = i;
    }
    for (int i = 0; ne >= 0 && i < n; i++)
      if (g[i].op == OP_EQ && sem_bytes_eq(g[i].s, g[i].n, g[ne].s, g[ne].n))
        return 2;
    return 0;
  }
  for (int i = 0; i < n; i++) {
    nan_ok |= g[i].nan_in;
    if (g[i].op != OP_NE) continue;
    if (ne >= 0 && g[ne].d != g[i].d) return 2;   /* != a || != b */
    ne = i;
  }
  /* A double may be NaN, which only some negated parts let through. */
  int whole = !g[0].integral && sema_ty_mtype(g[0].x->type) == LANE_T_DOUBLE && !nan_ok ? 1 : 2;
  if (ne >= 0) {   /* != k: covered when some other part takes k */
    for (int i = 0; i < n; i++)
      if (i != ne && g[i].op != OP_NE && meets(&g[i], g[ne].d)) return 2;
    return 0;
  }
  ival *v = malloc((size_t)n * sizeof *v);
  int nv = 0;
  if (!v) return 0;
  for (int i = 0; i < n; i++)
    if (interval(&g[i], &v[nv].lo, &v[nv].lo_open, &v[nv].hi, &v[nv].hi_open)) nv++;
  double dlo = g[0].lo0 ? 0 : -INFINITY, dhi = g[0].hi1 ? 1 : INFINITY;
  int r = ivals_cover(v, nv, dlo, dhi, g[0].integral) ? whole : 0;
  free(v);
  return r;
}

/* Parts i and j are a condition and its negation. */
static int complementary(const lit *a, const lit *b) {
  return a->neg != b->neg && same_expr(a->n, b->n);
}

/* A part of a chain, analysed once: as a bound when it is one, and
 * hashed, so that parts on one expression can be brought together by a
 * sort instead of comparing every part with every other. */
typedef struct part {
  bound    b;      /* the part as a bound */
  int      ok;     /* b is valid */
  int      i;      /* index in the chain */
  uint64_t hn;     /* expr_hash of the part */
  uint64_t hx;     /* expr_hash of b.x, when ok */
} part;

/* By the part's hash, then by place. */
static int cmp_part_n(const void *pa, const void *pb) {
  const part *a = pa, *b = pb;
  if (a->hn != b->hn) return a->hn < b->hn ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

/* Bounds first, by bounded expression and kind of constant, then by place. */
static int cmp_part_x(const void *pa, const void *pb) {
  const part *a = pa, *b = pb;
  if (a->ok != b->ok) return b->ok - a->ok;
  if (a->hx != b->hx) return a->hx < b->hx ? -1 : 1;
  if (a->b.is_str != b->b.is_str) return a->b.is_str - b->b.is_str;
  return (a->i > b->i) - (a->i < b->i);
}

/* Parts compared with each part in one group of parts on the same
 * expression (a chain holds at most a few of them in practice); past it
 * analysis-limit says so. */
#define CHAIN_PEERS 256

/* The parts of the chain L->lits[lo..hi), or NULL (memory). */
static part *chain_parts(linter *L, int lo, int hi) {
  part *p = malloc(((size_t)(hi - lo) + 1) * sizeof *p);
  if (!p) { L->nomem = 1; return NULL; }
  for (int i = lo; i < hi; i++) {
    part *x = &p[i - lo];
    x->i = i - lo;
    x->ok = as_bound(L, &L->lits[i], &x->b);
    x->hn = expr_hash(L->lits[i].n);
    x->hx = x->ok ? expr_hash(x->b.x) : 0;
  }
  return p;
}

/* The end of the run of p[a..n) that shares p[a]'s key (cmp_part_n or,
 * when by_x, cmp_part_x without the place). */
static int run_end(const part *p, int n, int a, int by_x) {
  int e = a + 1;
  if (by_x)
    while (e < n && p[e].ok && p[a].ok && p[e].hx == p[a].hx && p[e].b.is_str == p[a].b.is_str)
      e++;
  else
    while (e < n && p[e].hn == p[a].hn) e++;
  return e;
}

static void chain_limit(linter *L, const ast_node *written, int k) {
  report(L, L_ANALYSIS_LIMIT, written->span,
         "this chain of %d parts has more than %d on one expression; each was compared with "
         "%d of them only, so a contradiction or tautology among them may be missed", k,
         CHAIN_PEERS, CHAIN_PEERS);
}

/* Reports the parts of an && chain (L->lits[lo..hi), headed by written)
 * that contradict an earlier part: a bound no value meets with it, or its
 * own negation. Each part is reported once, with the earliest such part. */
static void check_contradiction(linter *L, const ast_node *written, int lo, int hi) {
  int k = hi - lo, cut = 0;
  part *p = chain_parts(L, lo, hi);
  int *with = malloc(((size_t)k + 1) * sizeof *with);
  if (!p || !with) { L->nomem = 1; goto out; }
  for (int i = 0; i < k; i++) with[i] = -1;
  for (int pass = 0; pass < 2; pass++) {   /* 0: negations, 1: bounds */
    qsort(p, (size_t)k, sizeof *p, pass ? cmp_part_x : cmp_part_n);
    for (int a = 0, e; a < k; a = e) {
      e = run_end(p, k, a, pass);
      if (pass && !p[a].ok) break;   /* the bounds are first */
      for (int s = a + 1; s < e; s++) {
        int i = p[s].i;
        for (int t = s - 1; t >= a && (with[i] < 0 || p[t].i < with[i]); t--) {
          if (s - t > CHAIN_PEERS) { cut = 1; break; }
          int j = p[t].i;
          int clash = pass ? same_expr(p[t].b.x, p[s].b.x) && disjoint(&p[t].b, &p[s].b)
                           : complementary(&L->lits[lo + i], &L->lits[lo + j]);
          if (clash) with[i] = j;   /* walking back: ends at the earliest */
        }
      }
    }
  }
  for (int i = 0; i < k; i++)
    if (with[i] >= 0)
      report(L, L_CONTRADICTORY_BOUNDS, L->lits[lo + i].as_written->span,
             "'%s' contradicts '%s': the condition can never hold", lit_text(L, &L->lits[lo + i]),
             lit_text(L, &L->lits[lo + with[i]]));
  if (cut) chain_limit(L, written, k);
out:
  free(p);
  free(with);
}

/* "'a', 'b' or 'c'", at most four of the parts idx[0..n) of the chain at lo. */
static const char *parts_text(linter *L, int lo, const int *idx, int n) {
  const char *s = "";
  int shown = n > 4 ? 3 : n;
  for (int k = 0; k < shown; k++)
    s = fmt(L, "%s%s'%s'", s, k == 0 ? "" : k == n - 1 ? " or " : ", ",
            lit_text(L, &L->lits[lo + idx[k]]));
  return n > shown ? fmt(L, "%s or %d more of its parts", s, n - shown) : s;
}

/* Whether the || chain L->lits[lo..hi) always holds: 2 for every request,
 * 1 for every one but those where *x is NaN, else 0. *why says which
 * parts do it; of several reasons, the one complete earliest. A cut
 * comparison is reported on written, unless it is NULL. */
static int tautology_of(linter *L, const ast_node *written, int lo, int hi,
                        const ast_node **x, const char **why) {
  int k = hi - lo, r = 0, first = k, pair[2] = {0, 0}, *gi = NULL, cut = 0;
  part *p = chain_parts(L, lo, hi);
  bound *g = malloc(((size_t)k + 1) * sizeof *g);
  gi = malloc(((size_t)k + 1) * sizeof *gi);
  if (!p || !g || !gi) { L->nomem = 1; goto out; }
  qsort(p, (size_t)k, sizeof *p, cmp_part_n);   /* a part and its negation */
  for (int a = 0, e; a < k; a = e) {
    e = run_end(p, k, a, 0);
    for (int s = a + 1; s < e; s++) {
      cut |= s - a > CHAIN_PEERS;
      for (int t = s - a > CHAIN_PEERS ? s - CHAIN_PEERS : a; t < s; t++) {
        const lit *ls = &L->lits[lo + p[s].i], *lt = &L->lits[lo + p[t].i];
        if (p[s].i < first && complementary(ls, lt) && cannot_fail(ls->n)) {
          first = p[s].i;
          pair[0] = p[t].i;
          pair[1] = p[s].i;
          *x = ls->n;
          r = 2;
        }
      }
    }
  }
  if (r) *why = fmt(L, "one of '%s' and '%s' holds for every request",
                    lit_text(L, &L->lits[lo + pair[0]]), lit_text(L, &L->lits[lo + pair[1]]));
  qsort(p, (size_t)k, sizeof *p, cmp_part_x);   /* bounds on one expression */
  for (int a = 0, e; a < k && p[a].ok; a = e) {
    e = run_end(p, k, a, 1);
    int n = 0;
    for (int s = a; s < e; s++)   /* the run's parts on p[a]'s expression */
      if (same_expr(p[s].b.x, p[a].b.x)) { gi[n] = p[s].i; g[n++] = p[s].b; }
    int c = n > 1 && cannot_fail(p[a].b.x) ? bounds_cover(g, n) : 0;
    if (!c || gi[n - 1] >= first) continue;   /* a reason that completes earlier wins */
    first = gi[n - 1];
    r = c;
    *x = p[a].b.x;
    *why = fmt(L, "every %svalue of %s meets %s", c == 1 ? "other " : "", text_of(L, p[a].b.x),
               parts_text(L, lo, gi, n));
  }
  if (cut && written) chain_limit(L, written, k);
out:
  free(p);
  free(g);
  free(gi);
  return r;
}

/* Whether c, a part of a rule's condition split at &&, always holds: it
 * folds to true or its || chain is a tautology for every request. */
static int always_holds(linter *L, const ast_node *c) {
  if (is_true(eval_for(L, -1, c))) return 1;
  int lo = L->nlits;
  push_parts(L, c, 0, OP_OR);
  const ast_node *x;
  const char *why;
  int r = !L->nomem && L->nlits - lo > 1 && tautology_of(L, NULL, lo, L->nlits, &x, &why) == 2;
  L->nlits = lo;
  return r;
}

/* An enclosing chain of the part being walked: L->lits[lo..hi), its op,
 * and which of its parts holds the walk. */
typedef struct scope {
  int lo, hi;     /* its parts: L->lits[lo..hi) */
  int op;         /* OP_AND or OP_OR */
  int cur;        /* the part being walked */
  int quiet;      /* a tautology, reported: its parts are not judged again */
} scope;

typedef struct walk {
  int             where;    /* IN_WHEN, IN_REQUIRE, IN_WHERE */
  const ast_node *top;      /* the whole condition */
  int             nested;   /* > 0 inside an operand, an argument or a ternary */
  int             base;     /* scopes below it belong to an outer condition */
  int             nsc;      /* scopes in use */
  scope           sc[AST_MAX_DEPTH + 2]; /* enclosing chains, outermost first */
} walk;

/* Reports an || chain (L->lits[lo..hi), head n as written) that always
 * holds; 1 if it does. A chain that folds to a constant is
 * constant-condition's. */
static int check_tautology(linter *L, const walk *w, const ast_node *n, const ast_node *written,
                           int lo, int hi) {
  if (L->level[L_TAUTOLOGY] == LV_OFF || eval_for(L, -1, n).kind == EV_OK) return 0;
  const ast_node *x;
  const char *why;
  int r = tautology_of(L, written, lo, hi, &x, &why);
  if (!r) return 0;
  static const char *const whole[3] = {
    "this rule matches every request (write 'otherwise' for a catch-all)",
    "the requirement filters nothing", "it filters nothing"};
  if (r == 1)
    report(L, L_TAUTOLOGY, written->span, "'%s' always holds unless %s is NaN: %s",
           text_of(L, written), text_of(L, x), why);
  else if (written == w->top)
    report(L, L_TAUTOLOGY, written->span, "'%s' is always true: %s; %s", text_of(L, written),
           why, whole[w->where]);
  else
    report(L, L_TAUTOLOGY, written->span, "'%s' is always true: %s", text_of(L, written), why);
  return 1;
}

/* ---- unset-field ---- */

/* Whether n reads nothing but request fields (at least one: their bits
 * into *mask) and constants. */
static int reads_fields(const ast_node *n, uint64_t *mask) {
  if (!n) return 1;
  if (n->kind == N_IDENT || n->kind == N_SELECTOR) {
    if (n->refkind == RK_MODEL) return 1;
    if (n->refkind != RK_FIELD || n->ref < 0 || n->ref >= 64) return 0;
    *mask |= (uint64_t)1 << n->ref;
    return 1;
  }
  if (!reads_fields(n->a, mask) || !reads_fields(n->b, mask) || !reads_fields(n->c, mask))
    return 0;
  for (int i = 0; i < n->list.n; i++)
    if (!reads_fields(n->list.v[i], mask)) return 0;
  return 1;
}

/* n evaluated for a request that sets no field. */
static ev_val at_zero(const linter *L, const ast_node *n) {
  ev_env env = {.u = L->u, .model = -1, .req = L->zero};
  return ev_eval(&env, n);
}

/* A comparison of request fields (their bits into *mask) with a constant
 * (*k) that holds, with sign neg, for a request that sets none of them. */
static int holds_unset(const linter *L, const ast_node *n, int neg, uint64_t *mask, ev_val *k) {
  if (n->kind != N_BINARY || n->op < OP_EQ || n->op > OP_GE) return 0;
  ev_val va = eval_for(L, -1, n->a), vb = eval_for(L, -1, n->b);
  const ast_node *x;
  if (vb.kind == EV_OK && va.kind == EV_UNKNOWN) { x = n->a; *k = vb; }
  else if (va.kind == EV_OK && vb.kind == EV_UNKNOWN) { x = n->b; *k = va; }
  else return 0;
  *mask = 0;
  if (!reads_fields(x, mask) || !*mask) return 0;
  ev_val v = at_zero(L, n);
  return v.kind == EV_OK && (v.v.i != 0) != neg;
}

/* Whether constant k is a zero value: 0, 0.0, "" or false. */
static int is_zero(const ev_val *k) {
  switch (sema_ty_mtype(k->ty)) {
  case LANE_T_STRING: return k->n == 0;
  case LANE_T_DOUBLE: return k->v.d == 0;
  case LANE_T_UINT: return k->v.u == 0;
  default: return k->v.i == 0;
  }
}

/* A part unset-field reports (guards aside): a comparison that holds for
 * unset fields against a constant other than their zero value. */
static int unset_suspect(const linter *L, const lit *p, uint64_t *mask) {
  ev_val k;
  return holds_unset(L, p->n, p->neg, mask, &k) && !is_zero(&k);
}

/* Whether an enclosing chain decides the unset case without the part at
 * w's innermost scope: an && part that is false when the fields in mask
 * are unset (a bound such as `req.x > 0ms`, or has(req.x)), or an || part
 * that holds then and names that case on purpose (`req.x == 0ms`,
 * `!has(req.x)`). Parts reading other fields say nothing. */
static int unset_decided(const linter *L, const walk *w, uint64_t mask) {
  for (int s = w->base; s < w->nsc; s++) {
    const scope *sc = &w->sc[s];
    for (int i = sc->lo; i < sc->hi; i++) {
      const lit *g = &L->lits[i];
      uint64_t gm = 0, dummy;
      if (i == sc->cur || !reads_fields(g->n, &gm) || !gm || (gm & ~mask)) continue;
      ev_val v = at_zero(L, g->n);
      int holds = v.kind == EV_OK && (v.v.i != 0) != g->neg;
      if (sc->op == OP_AND ? !holds : holds && !unset_suspect(L, g, &dummy)) return 1;
    }
  }
  return 0;
}

/* "0ms", "\"\"", "false": how an unset field of type ty reads. */
static const char *zero_text(int ty) {
  switch (ty) {
  case TY_STRING: return "\"\"";
  case TY_BOOL: return "false";
  case TY_MONEY: return "$0";
  case TY_PRICE: return "$0/Mtok";
  case TY_DURATION: return "0ms";
  case TY_FRACTION: return "0%";
  case TY_UINT: return "0u";
  default: return "0";
  }
}

static void check_unset(linter *L, const walk *w, const lit *p) {
  uint64_t mask;
  if (w->nested || L->level[L_UNSET_FIELD] == LV_OFF) return;
  for (int s = 0; s < w->nsc; s++)
    if (w->sc[s].quiet) return;
  if (!unset_suspect(L, p, &mask) || unset_decided(L, w, mask)) return;
  const sema_unit *u = L->u;
  const char *names = "", *zeros = "", *first = NULL, *zero = NULL;
  int nf = 0, same = 1;
  for (int f = 0; f < u->nfields && f < 64; f++) {
    if (!(mask >> f & 1)) continue;
    const char *z = zero_text(u->fields[f].ty);
    if (!first) { first = u->fields[f].name; zero = z; }
    same &= strcmp(z, zero) == 0;
    names = fmt(L, "%s%sreq.%s", names, nf ? " and " : "", u->fields[f].name);
    zeros = fmt(L, "%s%sreq.%s reads as %s", zeros, nf ? ", " : "", u->fields[f].name, z);
    nf++;
  }
  static const char *const who[3] = {"can match this rule", "pass this requirement",
                                     "pass this filter"};
  report(L, L_UNSET_FIELD, p->as_written->span,
         "'%s' also holds when %s %s unset (%s): requests without %s %s; guard it with "
         "'has(req.%s) && ...'", lit_text(L, p), names, nf == 1 ? "is" : "are",
         nf == 1 ? fmt(L, "it reads as %s", zero) : same ? fmt(L, "they read as %s", zero)
                 : zeros,
         nf == 1 ? "it" : "them", who[w->where], first);
}

/* ---- float-equality ---- */

static int float_ty(int t) {
  return t == TY_DOUBLE || t == TY_MONEY || t == TY_PRICE || t == TY_DURATION ||
         t == TY_FRACTION;
}

/* Whether n's value comes out of floating-point arithmetic: cost, live
 * latency and error figures, budget figures, or + - * / on doubles. A
 * request field, a literal or a declared property is exactly what was
 * written or set. */
static int computed(const ast_node *n) {
  switch (n->kind) {
  case N_IDENT:
    return n->refkind == RK_MPROP && (n->ref == MP_COST || n->ref == MP_P50 ||
                                      n->ref == MP_P95 || n->ref == MP_ERROR_RATE);
  case N_SELECTOR: return n->refkind == RK_BUDGET;
  case N_BINARY: return n->op >= OP_ADD && n->op <= OP_MOD && float_ty(n->type);
  case N_UNARY: return computed(n->a);
  case N_COND: return computed(n->b) || computed(n->c);
  case N_CALL:
    for (int i = 0; i < n->list.n; i++)
      if (computed(n->list.v[i])) return 1;
    return n->a && computed(n->a);
  default: return 0;
  }
}

static int zero_const(const linter *L, const ast_node *n) {
  ev_val v = eval_for(L, -1, n);
  return v.kind == EV_OK && sema_ty_mtype(v.ty) == LANE_T_DOUBLE && v.v.d == 0;
}

/* Every == and != in n between floating-point values, one of them
 * computed; a comparison with 0 is exact and left alone. */
static void check_float_eq(linter *L, const ast_node *n) {
  if (!n) return;
  if (n->kind == N_BINARY && (n->op == OP_EQ || n->op == OP_NE) && float_ty(n->a->type) &&
      float_ty(n->b->type) && (computed(n->a) || computed(n->b)) &&
      !zero_const(L, n->a) && !zero_const(L, n->b) && eval_for(L, -1, n).kind != EV_OK) {
    const ast_node *c = computed(n->a) ? n->a : n->b;
    report(L, L_FLOAT_EQUALITY, n->span,
           "'%s' compares computed %s for exact equality: a difference in the last bit of "
           "rounding makes it %s; use a bound (<, <=, >, >=) or a tolerance", text_of(L, n),
           sema_ty_name(c->type), n->op == OP_EQ ? "false" : "true");
  }
  check_float_eq(L, n->a);
  check_float_eq(L, n->b);
  check_float_eq(L, n->c);
  for (int i = 0; i < n->list.n; i++) check_float_eq(L, n->list.v[i]);
}

/* ---- the walk over a condition ---- */

static void walk_cond(linter *L, walk *w, const ast_node *n, const ast_node *written, int neg);

/* Conditions inside operands, arguments and ternaries: their chains are
 * checked, without the enclosing chains' guards. */
static void walk_nested(linter *L, walk *w, const ast_node *n) {
  int base = w->base;
  w->base = w->nsc;
  w->nested++;
  const ast_node *kids[3] = {n->a, n->b, n->c};
  for (int i = 0; i < 3; i++)
    if (kids[i]) walk_cond(L, w, kids[i], kids[i], 0);
  for (int i = 0; i < n->list.n; i++) walk_cond(L, w, n->list.v[i], n->list.v[i], 0);
  w->nested--;
  w->base = base;
}

/* Walks condition n (negated when neg is set; `written` is n with the !s
 * written around it) chain by chain: each && and || chain, with negations
 * pushed through, is checked for contradictions and tautologies, then
 * each of its parts is walked in turn. */
static void walk_cond(linter *L, walk *w, const ast_node *n, const ast_node *written, int neg) {
  while (is_not(n)) { n = n->a; neg = !neg; }
  if (!is_logic(n)) {
    lit p = {n, written, neg};
    check_unset(L, w, &p);
    walk_nested(L, w, n);
    return;
  }
  int op = eff_op(n->op, neg), lo = L->nlits;
  push_parts(L, n, neg, op);
  int hi = L->nlits;
  if (L->nomem) return;
  int quiet = 0;
  if (op == OP_AND) check_contradiction(L, written, lo, hi);
  else quiet = check_tautology(L, w, n, written, lo, hi);
  if (w->nsc < AST_MAX_DEPTH + 2) {
    w->sc[w->nsc++] = (scope){lo, hi, op, lo, quiet};
    for (int i = lo; i < hi && !L->nomem; i++) {
      w->sc[w->nsc - 1].cur = i;
      lit p = L->lits[i];   /* a copy: walking may move the stack */
      walk_cond(L, w, p.n, p.as_written, p.neg);
    }
    w->nsc--;
  }
  L->nlits = lo;
}

static void lint_condition(linter *L, const ast_node *c, int where) {
  if (!c) return;
  note_reads(L, c);
  check_constant(L, c, c, where);
  check_float_eq(L, c);
  walk *w = calloc(1, sizeof *w);
  if (!w) { L->nomem = 1; return; }
  w->where = where;
  w->top = c;
  walk_cond(L, w, c, c, 0);
  free(w);
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
  if (x->c.cs.over) { R->over = 1; return; }   /* emit.c rejects such a selection */
  if (cands_build(L, &x->c, t->kind == N_MODELREF ? t->ref : -1) != 0) return;
  int fits = 0;   /* unreachable-price-tier: the candidates must fit */
  for (int i = 0; i < x->c.cs.n; i++) {
    const ast_node *c = x->c.cs.v[i];
    fits |= c->kind == N_IDENT && c->refkind == RK_MPROP && c->ref == MP_FITS;
  }
  for (int k = 0; k < x->c.n; k++) (fits ? L->tier_fits : L->tier_open)[x->c.m[k]] = 1;
  if (t->kind == N_MODELREF) { note_named(L, t); return; }
  for (int k = 0; k < x->c.n; k++) {
    int m = x->c.m[k];
    if (!L->selectable[m]) L->where_sel[m] = t->span;
    L->selectable[m] = 1;
  }
}

/* A shadow gets every request of its rule, whatever fits. */
static void note_shadow(linter *L, const ast_node *t) {
  note_named(L, t);
  if (t->ref >= 0 && t->ref < L->u->nmodels) L->tier_open[t->ref] = 1;
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
      case N_SHADOW: note_shadow(L, t); break;
      default: break;
      }
    }
  }
  for (int i = 0; i < r->shadows.n; i++) note_shadow(L, r->shadows.v[i]);
}

/* ---- subsumed-rule ---- */

/* A part of a rule's condition split at its top-level &&s. */
typedef struct conj {
  const ast_node *n;       /* the part */
  uint64_t        h;       /* expr_hash(n) */
  int             trivial; /* always holds: implied by any rule */
} conj;

/* What subsumed-rule knows of one rule. */
typedef struct rinfo {
  int t0, nt;              /* its targets: R->t[t0 .. t0 + nt) */
  int c0, nc;              /* its parts: conj[c0 .. c0 + nc) */
  int nontrivial;          /* parts that are not trivial */
  int always;              /* a target outside a split has a candidate with
                              nothing left to check per request */
} rinfo;

/* Limits of subsumed-rule, each reported (analysis-limit) when reached:
 * a rule is compared with at most SUBSUMED_PER_RULE earlier rules that
 * share a condition with it (the earliest ones), and a route with at most
 * SUBSUMED_WORK_LIMIT units of work (a pair of rules, a part, a candidate
 * looked up): at tens of nanoseconds a unit, a second or so. */
#define SUBSUMED_PER_RULE   200
#define SUBSUMED_WORK_LIMIT 50000000L

/* An index entry: rule `rule` is filed under the hash of one of its parts. */
typedef struct rkey { uint64_t h; int rule; } rkey;

static int cmp_rkey(const void *pa, const void *pb) {
  const rkey *a = pa, *b = pb;
  if (a->h != b->h) return a->h < b->h ? -1 : 1;
  return (a->rule > b->rule) - (a->rule < b->rule);
}

static int cmp_u64(const void *pa, const void *pb) {
  uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return (a > b) - (a < b);
}

static int cmp_int(const void *pa, const void *pb) {
  int a = *(const int *)pa, b = *(const int *)pb;
  return (a > b) - (a < b);
}

/* The first entry of sorted v[0..n) with hash >= h. */
static size_t lower_u64(const uint64_t *v, size_t n, uint64_t h) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid] < h) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static size_t lower_rkey(const rkey *v, size_t n, uint64_t h) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].h < h) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* Appends the parts of c split at its top-level &&s. */
static void split_conj(linter *L, conj **v, int *n, int *cap, const ast_node *c) {
  if (c->kind == N_BINARY && c->op == OP_AND) {
    split_conj(L, v, n, cap, c->a);
    split_conj(L, v, n, cap, c->b);
    return;
  }
  if (sema_grow(v, *n, cap, sizeof **v)) { L->nomem = 1; return; }
  (*v)[(*n)++] = (conj){c, expr_hash(c), always_holds(L, c)};
}

/* Whether every request rule j matches is matched by rule i: each part of
 * i that is not trivial is a part of j. */
static int implied(const conj *cv, const rinfo *ri, const rinfo *rj) {
  for (int a = ri->c0; a < ri->c0 + ri->nc; a++) {
    if (cv[a].trivial) continue;
    int found = 0;
    for (int b = rj->c0; b < rj->c0 + rj->nc && !found; b++)
      found = cv[b].h == cv[a].h && same_expr(cv[b].n, cv[a].n);
    if (!found) return 0;
  }
  return 1;
}

/* Whether rule i has a candidate whenever rule j has one: i has a
 * candidate that passes everything at compile time, or every model j may
 * pick, i may pick through a target outside any split, under only
 * per-request conjuncts that j's target puts on it as well. Adds the
 * comparisons made to *work. */
static int covers(const rctx *R, const rinfo *ri, const rinfo *rj, long *work) {
  int any = 0;
  for (int a = rj->t0; a < rj->t0 + rj->nt; a++) {
    const rtarget *tj = &R->t[a];
    any |= tj->c.n > 0;
    if (ri->always) continue;
    for (int k = 0; k < tj->c.n; k++) {
      int m = tj->c.m[k], ok = 0;
      for (int b = ri->t0; b < ri->t0 + ri->nt && !ok; b++) {
        const rtarget *ti = &R->t[b];
        *work += ti->c.n;
        int at = !ti->split ? cand_index(&ti->c, m) : -1;
        if (at < 0) continue;
        ok = 1;
        for (int bit = 0; bit < ti->c.cs.n && ok; bit++)
          if ((ti->c.dyn[at] >> bit & 1) && !in_set(&tj->c.cs, ti->c.cs.v[bit])) ok = 0;
      }
      if (!ok) return 0;
    }
  }
  return any;
}

/* What the rules of R are made of: targets, parts, whether they always
 * have a candidate. 0, or -1 when memory ran out. */
static int rules_info(linter *L, const rctx *R, rinfo *ri, conj **cv, int *ncv) {
  const ast_list *rules = &R->r->rules;
  int cap = 0, a = 0;
  for (int i = 0; i < rules->n; i++) {
    rinfo *x = &ri[i];
    x->t0 = a;
    for (; a < R->nt && R->t[a].rule_ix == i; a++)
      for (int k = 0; k < R->t[a].c.n && !R->t[a].split && !x->always; k++)
        x->always = R->t[a].c.dyn[k] == 0;
    x->nt = a - x->t0;
    x->c0 = *ncv;
    if (rules->v[i]->kind == N_WHEN) split_conj(L, cv, ncv, &cap, rules->v[i]->a);
    x->nc = *ncv - x->c0;
    for (int k = x->c0; k < *ncv; k++) x->nontrivial += !(*cv)[k].trivial;
  }
  return L->nomem ? -1 : 0;
}

/* Files each rule with a part that is not trivial under its rarest such
 * part: a rule that implies rule j is filed under one of j's parts. */
static rkey *rules_index(const conj *cv, int ncv, const rinfo *ri, int nrules, int *nkeys) {
  uint64_t *hs = malloc(((size_t)ncv + 1) * sizeof *hs);
  rkey *keys = malloc(((size_t)nrules + 1) * sizeof *keys);
  size_t nh = 0;
  *nkeys = 0;
  if (!hs || !keys) { free(hs); free(keys); return NULL; }
  for (int k = 0; k < ncv; k++)
    if (!cv[k].trivial) hs[nh++] = cv[k].h;
  qsort(hs, nh, sizeof *hs, cmp_u64);
  for (int i = 0; i < nrules; i++) {
    size_t best = SIZE_MAX;
    uint64_t key = 0;
    for (int k = ri[i].c0; k < ri[i].c0 + ri[i].nc; k++) {
      if (cv[k].trivial) continue;
      size_t n = cv[k].h == UINT64_MAX ? nh - lower_u64(hs, nh, cv[k].h)
                 : lower_u64(hs, nh, cv[k].h + 1) - lower_u64(hs, nh, cv[k].h);
      if (n < best) { best = n; key = cv[k].h; }
    }
    if (best != SIZE_MAX) keys[(*nkeys)++] = (rkey){key, i};
  }
  free(hs);
  qsort(keys, (size_t)*nkeys, sizeof *keys, cmp_rkey);
  return keys;
}

/* Rules that never decide because an earlier rule decides every request
 * they match. Candidate earlier rules come from the index (those filed
 * under one of the later rule's parts) and the catch-alls, so a policy of
 * distinct conditions costs a lookup per part, not a pass over the rules. */
static void lint_subsumed(linter *L, const rctx *R) {
  const ast_list *rules = &R->r->rules;
  int nr = rules->n, ncv = 0, nkeys = 0, ncand = 0, capcand = 0, nall = 0;
  rinfo *ri = calloc((size_t)nr + 1, sizeof *ri);
  int *all = malloc(((size_t)nr + 1) * sizeof *all), *cand = NULL;
  conj *cv = NULL;
  rkey *keys = NULL;
  long work = 0;
  int capped = 0;                 /* rules compared with only some candidates */
  const ast_node *first_capped = NULL;
  if (!ri || !all || rules_info(L, R, ri, &cv, &ncv) != 0 ||
      !(keys = rules_index(cv, ncv, ri, nr, &nkeys))) {
    L->nomem = 1;
    goto done;
  }
  for (int j = 0; j < nr; j++) {
    const ast_node *rj = rules->v[j];
    if (j > 0 && !(rj->kind == N_WHEN && rejects(eval_for(L, -1, rj->a)))) {
      /* The earliest candidates: each list is in rule order, so the
       * first SUBSUMED_PER_RULE + 1 of their union are among the first
       * SUBSUMED_PER_RULE + 1 of each. */
      ncand = 0;
      for (int k = 0; k < nall && k <= SUBSUMED_PER_RULE; k++) {
        if (sema_grow(&cand, ncand, &capcand, sizeof *cand)) { L->nomem = 1; goto done; }
        cand[ncand++] = all[k];
      }
      for (int c = ri[j].c0; c < ri[j].c0 + ri[j].nc; c++) {
        size_t at = lower_rkey(keys, (size_t)nkeys, cv[c].h), first = at;
        for (; at < (size_t)nkeys && keys[at].h == cv[c].h && keys[at].rule < j &&
               at - first <= SUBSUMED_PER_RULE; at++) {
          if (sema_grow(&cand, ncand, &capcand, sizeof *cand)) { L->nomem = 1; goto done; }
          cand[ncand++] = keys[at].rule;
        }
      }
      if (ncand > 1) qsort(cand, (size_t)ncand, sizeof *cand, cmp_int);
      for (int k = 0, seen = 0; k < ncand; k++) {
        int i = cand[k];
        if ((k > 0 && cand[k - 1] == i) || rules->v[i]->kind != N_WHEN) continue;
        if (++seen > SUBSUMED_PER_RULE) {
          if (!capped++) first_capped = rj;
          break;
        }
        work += 1 + ri[i].nc;
        if (work > SUBSUMED_WORK_LIMIT) {
          report(L, L_ANALYSIS_LIMIT, rj->span,
                 "subsumed-rule stopped here after %ld comparisons, its limit for one route: "
                 "this rule and the %d after it in route '%s' were not checked",
                 SUBSUMED_WORK_LIMIT, nr - 1 - j, R->r->name);
          goto done;
        }
        if (!implied(cv, &ri[i], &ri[j]) || !covers(R, &ri[i], &ri[j], &work)) continue;
        const ast_node *rule_i = rules->v[i];
        report(L, L_SUBSUMED_RULE, rj->span,
               "%s never decides: every request it matches is decided first by the rule at "
               "line %d (when %s)", rj->kind == N_WHEN ? "this rule" : "'otherwise'",
               rule_i->span.line, rule_i->text ? rule_i->text : "");
        break;
      }
    }
    if (rj->kind == N_WHEN && ri[j].nontrivial == 0) all[nall++] = j;
  }
  if (capped)
    report(L, L_ANALYSIS_LIMIT, first_capped->span,
           "subsumed-rule compared %d rule%s of route '%s', this one first, with only the "
           "first %d of the earlier rules that share a condition with %s, so it may miss "
           "an earlier rule that makes %s dead", capped, capped == 1 ? "" : "s", R->r->name,
           SUBSUMED_PER_RULE, capped == 1 ? "it" : "them", capped == 1 ? "it" : "them");
done:
  free(ri);
  free(all);
  free(cand);
  free(cv);
  free(keys);
}

/* Splits requirement c, for model m, into disjuncts that read only the
 * request (gates) and disjuncts m fails at compile time (fails). 1 when
 * that is all of them: m then fails c exactly when every gate is false. */
static int gated(const linter *L, int m, const ast_node *c, condset *gates, condset *fails) {
  condset d = {.n = 0};
  split_at(&d, c, OP_OR);
  gates->n = fails->n = 0;
  if (d.over) return 0;
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
 * request it matches passes the requirement the gates belong to. A
 * condition of more than 64 conjuncts answers `unsure`. */
static int rule_opens(const ast_node *rule, const condset *gates, int unsure) {
  condset c = {.n = 0};
  if (rule->kind != N_WHEN) return 0;
  split_at(&c, rule->a, OP_AND);
  if (c.over) return unsure;
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
      if (R->req_always >> c & 1) continue;   /* a tautology: it filters nothing */
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
          !rule_opens(R->t[a].rule, &gates, 1)) {
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
    if (d.over || (R->req_always >> c & 1)) continue;
    for (int i = 0; i < d.n; i++)   /* the same for every model */
      if (!reads(d.v[i], RK_MPROP) && eval_for(L, -1, d.v[i]).kind == EV_UNKNOWN)
        gates.v[gates.n++] = d.v[i];
    int pairs = 0, all = gates.n > 0;
    for (int a = 0; a < R->nt && all; a++) {
      const cands *x = &R->t[a].c;
      if (rule_opens(R->t[a].rule, &gates, 0)) continue;
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
  for (int ri = 0, a0 = 0, a1; ri < r->rules.n; ri++, a0 = a1) {
    int total = 0;
    for (a1 = a0; a1 < R->nt && R->t[a1].rule_ix == ri; a1++) {}   /* its targets */
    for (int a = a0; a < a1; a++) {
      const rtarget *x = &R->t[a];
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
    for (int a = a0; a < a1; a++)   /* clear what this rule marked */
      if (!R->t[a].split)
        for (int k = 0; k < R->t[a].c.n; k++) seen[R->t[a].c.m[k]] = 0;
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
    if (sema_grow(&L->lat, L->nlat, &L->caplat, sizeof *L->lat)) { L->nomem = 1; return; }
    lat_bound *b = &L->lat[L->nlat];
    *b = nb;
    b->nseen = b->met = 0;
    b->fastest = -1;
    b->seq = L->nlat++;
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

/* By comparison node, then in order of report. */
static int cmp_lat(const void *pa, const void *pb) {
  const lat_bound *a = pa, *b = pb;
  uintptr_t x = (uintptr_t)a->node, y = (uintptr_t)b->node;
  if (x != y) return x < y ? -1 : 1;
  return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Each bound was noted once per selection it applies to: merged here, so
 * that it is reported when no candidate of any of them meets it. */
static void lint_latency(linter *L) {
  if (L->nlat > 1) qsort(L->lat, (size_t)L->nlat, sizeof *L->lat, cmp_lat);
  for (int i = 0, j; i < L->nlat; i = j) {
    lat_bound b = L->lat[i];
    for (j = i + 1; j < L->nlat && L->lat[j].node == b.node; j++) {
      const lat_bound *o = &L->lat[j];
      b.nseen += o->nseen;
      b.met |= o->met;
      if (o->fastest < 0) continue;
      const sema_model *x = &L->u->models[o->fastest];
      const sema_model *y = b.fastest >= 0 ? &L->u->models[b.fastest] : NULL;
      if (!y || (b.prop == MP_P95 ? x->p95 < y->p95 : x->p50 < y->p50)) b.fastest = o->fastest;
    }
    if (!b.nseen || b.met) continue;
    const sema_model *md = &L->u->models[b.fastest];
    const char *prop = b.prop == MP_P95 ? "p95" : "p50";
    report(L, L_UNREACHABLE_LATENCY, b.node->span,
           "no candidate has a declared %s within %s (the fastest, '%s', has %s): '%s' "
           "passes none of them until live figures say otherwise", prop,
           fmt_ms(L, b.limit), md->name, fmt_ms(L, b.prop == MP_P95 ? md->p95 : md->p50),
           text_of(L, b.node));
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
  for (int i = 0; i < R.req.n; i++)
    if (always_holds(L, R.req.v[i])) R.req_always |= (uint64_t)1 << i;
  if (R.over || R.req.over)   /* emit.c rejects these: defensive */
    report(L, L_ANALYSIS_LIMIT, r->node->span,
           "route '%s' has a selection with more than 64 conditions; it was not analysed",
           r->name);
  else if (!L->nomem) {
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
    int mk = L->mod_of[m];
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
  if (L->decl_of[m]) return L->decl_of[m]->span;
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

/* A priced model's provider and prices, for the medians. */
typedef struct pprice { const char *prov; double in, out; } pprice;

static int cmp_pprice(const void *pa, const void *pb) {
  return strcmp(((const pprice *)pa)->prov, ((const pprice *)pb)->prov);
}

/* The first of v[0..n) (sorted by provider) whose provider is >= prov. */
static int lower_prov(const pprice *v, int n, const char *prov) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(v[mid].prov, prov) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* Zero prices, and prices far from the median of the provider's priced
 * models (grouped once by provider, each group's medians taken once). */
static void lint_prices(linter *L) {
  const sema_unit *u = L->u;
  size_t nm = (size_t)u->nmodels + 1;
  pprice *pp = malloc(nm * sizeof *pp);
  double *tmp = malloc(nm * sizeof *tmp), *med = malloc(2 * nm * sizeof *med);
  unsigned char *done = calloc(nm, 1);
  if (!pp || !tmp || !med || !done) { L->nomem = 1; goto out; }
  int np = 0;
  for (int k = 0; k < u->nmodels; k++) {
    const sema_model *o = &u->models[k];
    if (o->input > 0 && o->output > 0) pp[np++] = (pprice){o->provider, o->input, o->output};
  }
  qsort(pp, (size_t)np, sizeof *pp, cmp_pprice);
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
    int g = lower_prov(pp, np, md->provider), n = 0;
    while (g + n < np && strcmp(pp[g + n].prov, md->provider) == 0) n++;
    if (n < 3) continue;
    if (!done[g]) {
      for (int k = 0; k < n; k++) tmp[k] = pp[g + k].in;
      med[2 * g] = median(tmp, n);
      for (int k = 0; k < n; k++) tmp[k] = pp[g + k].out;
      med[2 * g + 1] = median(tmp, n);
      done[g] = 1;
    }
    if (!price_outlier(L, m, "input", md->input, med[2 * g]))
      price_outlier(L, m, "output", md->output, med[2 * g + 1]);
  }
out:
  free(pp);
  free(tmp);
  free(med);
  free(done);
}

/* "200k", "1M", "131072": a token count for messages. */
static const char *fmt_tokens(linter *L, int64_t t) {
  if (t % 1000000 == 0) return fmt(L, "%lldM", (long long)(t / 1000000));
  if (t % 1000 == 0) return fmt(L, "%lldk", (long long)(t / 1000));
  return fmt(L, "%lld", (long long)t);
}

/* ---- unreachable-price-tier ---- */

/* A model's long-context tier applies when input_tokens > long_above,
 * and `fits` needs input_tokens + max_output_tokens <= context: with
 * long_above >= context no request that fits reaches the tier. Judged
 * once per model the policy names (a target, a shadow, an override, a
 * test): a model some target may pick without `fits` (or a shadow) could
 * still see the tier, and a catalog model reached only through a
 * selection is not the policy's choice, so neither is reported. */
static void lint_tiers(linter *L) {
  const sema_unit *u = L->u;
  for (int m = 0; m < u->nmodels; m++) {
    const sema_model *md = &u->models[m];
    if (!L->mentioned[m] || !L->tier_fits[m] || L->tier_open[m] || md->long_above <= 0 ||
        md->context <= 0 ||
        md->long_above < md->context ||
        (md->long_input <= 0 && md->long_output <= 0 && md->long_cached_input <= 0))
      continue;
    report(L, L_UNREACHABLE_PRICE_TIER, price_site(L, m),
           "model '%s' has a price tier for inputs above %s tokens that no decision reaches: "
           "its context is %s and every route that may choose it requires 'fits'; if your "
           "deployment accepts longer inputs, override its context", md->name,
           fmt_tokens(L, md->long_above), fmt_tokens(L, md->context));
  }
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

/* Comments by file, then line, then place. */
static int cmp_comment(const void *pa, const void *pb) {
  const ast_comment *a = *(const ast_comment *const *)pa, *b = *(const ast_comment *const *)pb;
  uintptr_t fa = (uintptr_t)a->span.file, fb = (uintptr_t)b->span.file;
  if (fa != fb) return fa < fb ? -1 : 1;
  if (a->span.line != b->span.line) return a->span.line < b->span.line ? -1 : 1;
  return ((uintptr_t)a > (uintptr_t)b) - ((uintptr_t)a < (uintptr_t)b);
}

/* An allow on the finding's line, or alone on the line just above it;
 * by[0..n) are the comments sorted by cmp_comment. */
static int allowed(const finding *f, const ast_comment *const *by, int n) {
  uintptr_t file = (uintptr_t)f->span.file;
  int lo = 0, hi = n;
  while (lo < hi) {   /* the first comment at or after (file, line - 1) */
    int mid = lo + (hi - lo) / 2;
    uintptr_t mf = (uintptr_t)by[mid]->span.file;
    if (mf < file || (mf == file && by[mid]->span.line < f->span.line - 1)) lo = mid + 1;
    else hi = mid;
  }
  for (; lo < n && (uintptr_t)by[lo]->span.file == file && by[lo]->span.line <= f->span.line;
       lo++) {
    const ast_comment *c = by[lo];
    if (c->span.line != f->span.line && !c->own_line) continue;
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

/* Drops allowed findings and sorts the rest by place. 0, or -1 when
 * memory ran out. */
static int settle(linter *L) {
  const ast_ctx *cx = &L->u->ctx;
  const ast_comment **by = malloc(((size_t)cx->ncomments + 1) * sizeof *by);
  if (!by) return -1;
  for (int i = 0; i < cx->ncomments; i++) by[i] = &cx->comments[i];
  qsort(by, (size_t)cx->ncomments, sizeof *by, cmp_comment);
  int n = 0;
  for (int i = 0; i < L->nf; i++) {
    if (allowed(&L->f[i], by, cx->ncomments)) continue;
    L->f[n] = L->f[i];
    L->f[n++].file_ix = module_of(L->u, L->f[i].span.file);
  }
  free(by);
  L->nf = n;
  if (n > 1) qsort(L->f, (size_t)n, sizeof *L->f, cmp_finding);
  return 0;
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
  L->tier_fits = calloc(nm, 1);
  L->tier_open = calloc(nm, 1);
  L->mod_of = calloc(nm, sizeof *L->mod_of);
  L->decl_of = calloc(nm, sizeof *L->decl_of);
  L->zero = calloc(1, sizeof *L->zero);
  L->lines = calloc((size_t)u->nmods + 1, sizeof *L->lines);
  if (!L->named || !L->mentioned || !L->selectable || !L->where_named || !L->where_sel ||
      !L->pool_used || !L->pool_empty || !L->budget_used || !L->field_read || !L->tier_fits ||
      !L->tier_open || !L->mod_of || !L->decl_of || !L->zero || !L->lines)
    return -1;
  for (int m = 0; m < u->nmodels; m++) L->mod_of[m] = module_of(u, u->models[m].span.file);
  const ast_list *decls = &u->mods[0]->decls;
  for (int i = 0; i < decls->n; i++) {
    const ast_node *d = decls->v[i];
    if (d->kind == N_MODEL && d->ref >= 0 && d->ref < u->nmodels && !L->decl_of[d->ref])
      L->decl_of[d->ref] = d;
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
  lint_tiers(L);
  if (L->nomem) return -1;
  return settle(L);
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
  free(L->tier_fits);
  free(L->tier_open);
  free(L->mod_of);
  free(L->decl_of);
  free(L->lits);
  free(L->zero);
  for (int k = 0; L->lines && k < L->u->nmods; k++) free(L->lines[k].start);
  free(L->lines);
}

/* ---- a policy that does not compile: compile-error, compile-warning ---- */

/* The compiler's diagnostics as findings, each error or warning with the
 * notes that follow it, sorted by place. Errors past --max-errors were
 * counted but not kept: L->unshown says how many. 0, or -1 (memory). */
static int compile_findings(linter *L) {
  const ast_ctx *cx = &L->u->ctx;
  int kept = 0;
  for (int i = 0; i < cx->ndiags; i++) {
    const ast_diag *d = &cx->diags[i];
    if (d->level == DIAG_NOTE) continue;
    kept += d->level == DIAG_ERROR;
    if (sema_grow(&L->f, L->nf, &L->capf, sizeof *L->f)) return -1;
    finding *f = &L->f[L->nf];
    memset(f, 0, sizeof *f);
    f->lint = d->level == DIAG_ERROR ? L_COMPILE_ERROR : L_COMPILE_WARNING;
    f->level = lints[f->lint].level;
    f->span = d->span;
    f->msg = d->msg;
    f->seq = L->nf++;
    f->file_ix = module_of(L->u, d->span.file);
    while (i + 1 + f->nnotes < cx->ndiags && cx->diags[i + 1 + f->nnotes].level == DIAG_NOTE)
      f->nnotes++;
    f->notes = f->nnotes ? &cx->diags[i + 1] : NULL;
  }
  L->unshown = cx->nerrors > kept ? cx->nerrors - kept : 0;
  if (L->nf > 1) qsort(L->f, (size_t)L->nf, sizeof *L->f, cmp_finding);
  return 0;
}

static const char *unshown_text(const linter *L) {
  return fmt((linter *)L, "%d more errors not shown; --max-errors N shows up to N", L->unshown);
}

/* ---- output ---- */

/* One diagnostic, its source line taken from the linter's line index. */
static void render(linter *L, FILE *out, const ast_diag *d) {
  const char *line = d->span.file ? line_at(L, d->span.file, d->span.line) : NULL;
  size_t n = 0;
  if (line) {
    const char *end = d->span.file->text + d->span.file->len;
    while (line + n < end && line[n] != '\n') n++;
    if (n && line[n - 1] == '\r') n--;
  }
  diag_render_one_at(out, d, line, n);
}

static void print_text(const linter *L, FILE *out) {
  for (int i = 0; i < L->nf; i++) {
    const finding *f = &L->f[i];
    size_t n = strlen(f->msg) + strlen(lints[f->lint].id) + 4;
    char *msg = malloc(n);
    if (msg) snprintf(msg, n, "%s [%s]", f->msg, lints[f->lint].id);
    ast_diag d = {.level = f->level == LV_ERROR ? DIAG_ERROR : DIAG_WARNING, .span = f->span,
                  .msg = msg ? msg : (char *)f->msg};   /* out of memory: without the id */
    render((linter *)L, out, &d);
    free(msg);
    for (int k = 0; k < f->nnotes; k++) render((linter *)L, out, &f->notes[k]);
  }
  if (L->unshown) fprintf(out, "lane: %s\n", unshown_text(L));
}

/* The file of a place; a place without one (a limit of the whole policy)
 * is reported on the file being linted, at line 0. */
static const char *file_name(const linter *L, ast_span sp) {
  const src_file *f = sp.file ? sp.file : L->root;
  return f && f->name ? f->name : "";
}

static void item_of(const linter *L, ast_span sp, const char *msg, lint_item *it) {
  it->file = file_name(L, sp);
  it->line = sp.file ? sp.line : 0;
  it->col = sp.file ? sp.col : 0;
  it->len = sp.file ? sp.len : 0;
  it->message = msg;
}

/* ---- the report, read by the lane command's JSON and SARIF writers ---- */

struct lint_report {
  linter       L;
  lanec_result res;   /* the compiled policy */
};

int lint_report_count(const lint_report *r) { return r->L.nf; }

void lint_report_item(const lint_report *r, int i, lint_item *it) {
  const finding *f = &r->L.f[i];
  item_of(&r->L, f->span, f->msg, it);
  it->lint = f->lint;
  it->level = level_names[f->level];
  it->nnotes = f->nnotes;
}

void lint_report_note(const lint_report *r, int i, int k, lint_item *it) {
  const ast_diag *d = &r->L.f[i].notes[k];
  item_of(&r->L, d->span, d->msg, it);
  it->lint = -1;
  it->level = NULL;
  it->nnotes = 0;
}

int lint_report_unshown(const lint_report *r, lint_item *it) {
  if (!r->L.unshown) return 0;
  item_of(&r->L, (ast_span){0}, unshown_text(&r->L), it);
  it->lint = L_COMPILE_ERROR;
  it->level = "error";
  it->nnotes = 0;
  return 1;
}

void lint_report_print_text(const lint_report *r, FILE *out) { print_text(&r->L, out); }

int lint_count(void) { return NLINTS; }

const char *lint_id(int k) { return k >= 0 && k < NLINTS ? lints[k].id : NULL; }

const char *lint_summary(int k) { return k >= 0 && k < NLINTS ? lints[k].summary : NULL; }

const char *lint_default_level(int k) {
  return k >= 0 && k < NLINTS ? level_names[lints[k].level] : NULL;
}

void lint_report_free(lint_report *r) {
  if (!r) return;
  linter_free(&r->L);
  lanec_result_free(&r->res);
  free(r);
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

/* The lint id named by --enable or --disable, or -1 after a message: an
 * unknown id, or one of the compiler's, whose level a run cannot change. */
static int configurable(FILE *err, const char *id) {
  int k = find_lint(id);
  if (k < 0) return unknown_lint(err, id), -1;
  if (k == L_COMPILE_ERROR || k == L_COMPILE_WARNING) {
    fprintf(err, "lane: '%s' cannot be enabled or disabled: it is what the compiler reports "
            "for a policy that does not compile\n", id);
    return -1;
  }
  return k;
}

/* Sets each lint's level for this run; 0, or 2 after an id it cannot set. */
static int set_levels(int *level, const char *const *enable, int nenable,
                      const char *const *disable, int ndisable, FILE *err) {
  for (int k = 0; k < NLINTS; k++) level[k] = lints[k].level;
  for (int i = 0; i < nenable; i++) {
    int k = configurable(err, enable[i]);
    if (k < 0) return 2;
    if (level[k] == LV_OFF) level[k] = LV_WARNING;
  }
  for (int i = 0; i < ndisable; i++) {
    int k = configurable(err, disable[i]);
    if (k < 0) return 2;
    level[k] = LV_OFF;
  }
  return 0;
}

int lint_policy(const char *path, const sema_opts *opts, const char *const *enable,
                int nenable, const char *const *disable, int ndisable, lint_report **out,
                FILE *err) {
  *out = NULL;
  lint_report *R = calloc(1, sizeof *R);
  if (!R) {
    fprintf(err, "lane: out of memory while linting\n");
    return 2;
  }
  linter *L = &R->L;
  if (set_levels(L->level, enable, nenable, disable, ndisable, err)) {
    free(R);
    return 2;
  }
  int st = lanec_compile(path, NULL, opts, &R->res);
  sema_unit *u = R->res.unit;
  L->u = u;
  if (st == LANEC_EREAD || st == LANEC_ENOMEM) {   /* nothing to lint */
    if (st == LANEC_EREAD) lanec_print_diags(&R->res, err);
    else fprintf(err, "lane: out of memory while linting\n");
    lint_report_free(R);
    return 2;
  }
  int rc = st != LANEC_OK;
  /* A policy that does not compile is not linted: its diagnostics are the
   * findings (compile-error, compile-warning), so that code-scanning tools
   * see them too. Else the compiler's own warnings (deprecations) are
   * lints, with levels and allows, and are not printed twice. */
  L->root = &u->mods[0]->file;
  if (rc ? compile_findings(L) != 0 : lint_run(L) != 0) {
    fprintf(err, "lane: out of memory while linting\n");
    lint_report_free(R);
    return 2;
  }
  for (int i = 0; i < L->nf; i++) rc |= L->f[i].level == LV_ERROR;
  rc |= L->unshown > 0;
  *out = R;
  return rc;
}

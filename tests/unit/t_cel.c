/*
 * t_cel.c -- CEL conformance: the subset of google/cel-spec's tests that
 * lane supports, run through the whole pipeline, three ways.
 *
 * tests/cel/cases.tsv holds every conformance test (tests/cel/extract.py
 * made it from ../shared/data/cel/conformance.json), each marked with what
 * it expects or why lane skips it. For a supported case the expression
 * becomes the condition of a rule,
 *
 *   model m { input $1/Mtok output $1/Mtok }
 *   route r { when (EXPR) == (EXPECTED) -> m  otherwise -> m }
 *
 * (`when (EXPR)` when true is expected), compiled in-process, loaded,
 * decided on: it passes when rule 1 fires without run-time errors. An
 * expected error passes when evaluation fails: a constant error is a
 * compile error from folding, or a run-time error (nerrors > 0); a type
 * error counts only where CEL's own error is "no such overload" (a checked
 * CEL rejects those too). Cases CEL runs with its checker off
 * (disableCheck) are run too; where lane's checker rejects them, the
 * failure is reported apart, as expected behaviour.
 *
 * Every case is a constant expression, so compiled as written the
 * compile-time evaluator (eval.c) computes it and the VM only tests the
 * folded bool. So each case runs three ways, and each must give CEL's
 * answer:
 *
 *   folded   as written, optimised: the evaluator computes it;
 *   VM -O0   sema_opts.no_opt (lane compile -O0): every operation the VM
 *            has an instruction for is VM code over pushed literals;
 *   VM req   every literal those operations read becomes a request field
 *            (`request { l0: int ... }`, set in the lane_request), compiled
 *            optimised: nothing there is constant, so nothing is folded.
 *
 * What the VM has no instruction for (lists and indexing, size() of a
 * list, string(), int()/uint()/double() of a string, + on strings, == on
 * lists, null) stays constant and is folded in every way. A case without
 * such parts counts as computed by the VM, and its programs are checked
 * for it (computed_as): the req program loads one field per literal and
 * pushes no constant, the -O0 one pushes one constant per literal. Every
 * folded program's condition must be one constant, so that the folded way
 * keeps testing the evaluator.
 *
 * tests/cel/passing.txt lists the cases that pass today, every way; each
 * must keep passing every way. Other supported cases are TODO tests (known
 * failures, reported with the reason, per way), and must fail alike every
 * way (a constant error is a compile error folded, a run-time error in the
 * VM); skipped cases are counted by reason.
 *
 *   build/tests/t_cel                 TAP
 *   build/tests/t_cel --update        rewrite tests/cel/passing.txt
 *   build/tests/t_cel --show NAME     print one case's policy, request,
 *                                     code and outcome, every way
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "disasm.h"
#include "sema.h"
#include "tap.h"
#include "vm.h"

#define CASES "tests/cel/cases.tsv"
#define PASSING "tests/cel/passing.txt"

typedef struct cel_case {
  char *name;     /* suite/section/test */
  char *kind;     /* true, eq, nan, error or skip:WHY */
  char *want;     /* lane literal (eq) or CEL's error message (error) */
  char *expr;     /* the CEL expression */
  int   unchecked;/* CEL runs it with its type checker off */
  int   listed;   /* in passing.txt */
  int   passed;   /* passed this run, every way */
} cel_case;

typedef struct outcome {
  int  pass;            /* the case holds */
  char stage[16];       /* syntax, check, fold, verify, decide, runtime, value, ok */
  char msg[256];        /* first diagnostic, or what was computed */
} outcome;

static cel_case *cases;
static int ncases;

/* ---- reading the data ---- */

static char *unescape(char *s) {
  char *o = s, *r = s;
  for (; *r; r++) {
    if (*r != '\\' || !r[1]) { *o++ = *r; continue; }
    r++;
    if (*r == 'x' && r[1] && r[2]) {   /* \xHH: a control character */
      char hex[3] = {r[1], r[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      r += 2;
      continue;
    }
    *o++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r == 'r' ? '\r' : *r;
  }
  *o = 0;
  return s;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}

static int read_cases(char *text) {
  int cap = 0;
  for (char *line = text, *next; line && *line; line = next) {
    char *f[4];
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    f[0] = line;
    for (int i = 1; i < 4; i++) {
      f[i] = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
      if (f[i]) *f[i]++ = 0;
    }
    if (!f[3]) return -1;
    if (ncases == cap) {
      cap = cap ? cap * 2 : 1024;
      cases = realloc(cases, (size_t)cap * sizeof *cases);
      if (!cases) return -1;
    }
    cel_case *c = &cases[ncases++];
    memset(c, 0, sizeof *c);
    c->name = f[0];
    c->kind = f[1];
    {
      char *comma = strchr(f[1], ',');
      if (comma && !strcmp(comma, ",unchecked")) { *comma = 0; c->unchecked = 1; }
    }
    c->want = unescape(f[2]);
    c->expr = unescape(f[3]);
  }
  return ncases;
}

static cel_case *find_case(const char *name) {
  for (int i = 0; i < ncases; i++)
    if (strcmp(cases[i].name, name) == 0) return &cases[i];
  return NULL;
}

/* ---- running one case ---- */

/* The ways a case is run; each must give CEL's answer. */
enum { W_FOLD, W_O0, W_REQ, NWAYS };
static const char *const way_name[NWAYS] = {"folded", "VM -O0", "VM req"};

static int is_skip(const cel_case *c) { return strncmp(c->kind, "skip:", 5) == 0; }

static void policy(const cel_case *c, char *src, size_t n) {
  const char *head = "model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when (\n";
  const char *tail = "  otherwise -> m\n}\n";
  if (!strcmp(c->kind, "true"))
    snprintf(src, n, "%s%s\n) -> m\n%s", head, c->expr, tail);
  else if (!strcmp(c->kind, "eq"))
    snprintf(src, n, "%s%s\n) == (%s) -> m\n%s", head, c->expr, c->want, tail);
  else   /* nan: x != x; error: x == x, which fails if x does */
    snprintf(src, n, "%s%s\n) %s (\n%s\n) -> m\n%s", head, c->expr,
             !strcmp(c->kind, "nan") ? "!=" : "==", c->expr, tail);
}

static void first_diag(const sema_unit *u, outcome *o, const char *stage) {
  snprintf(o->stage, sizeof o->stage, "%s", stage);
  for (int i = 0; i < u->ctx.ndiags; i++)
    if (u->ctx.diags[i].level == DIAG_ERROR) {
      snprintf(o->msg, sizeof o->msg, "%s", u->ctx.diags[i].msg);
      return;
    }
  snprintf(o->msg, sizeof o->msg, "(no message)");
}

/* What the compile-time evaluator computes for the expression, for a
 * wrong-value report of the folded way. */
static void show_value(sema_unit *u, outcome *o) {
  ev_env env = {.u = u, .model = -1};
  const ast_node *cond = u->routes[0].rules.v[0]->a;
  char buf[200];
  if (cond->kind == N_BINARY && (cond->op == OP_EQ || cond->op == OP_NE)) cond = cond->a;
  ev_val v = ev_eval(&env, cond);
  snprintf(o->msg, sizeof o->msg, "got %s", ev_show(u, &v, buf, sizeof buf));
}

static int mentions_overload(const char *s) { return strstr(s, "overload") != NULL; }

/* ---- lifting literals into request fields ----
 *
 * The plan walks the checked condition from its root through the nodes VM
 * code computes (operators with an instruction, && || ?: !, the left of
 * `in`, builtins with an opcode) down to their literals. Each distinct
 * literal becomes a request field l0, l1, ... of its type; the lifted
 * policy is the same text with `request { l0: int ... }` appended (so
 * every line and column stays put), parsed again, its literals at the
 * planned positions replaced by `req.lK` before checking, and the request
 * sets lK to the literal's value. What VM code cannot compute (a list,
 * indexing, size() of a list, string(), + on strings, == on lists, null)
 * keeps its literals: it is folded in every way, and the plan says so. */
#define MAX_LEAVES 1024
#define MAX_LIFT (LANE_MAX_FIELDS - BC_NSTD)

typedef struct lift_plan {
  int  nleaves;          /* literal occurrences VM code computes with */
  int  nfields;          /* distinct literals: the fields l0, l1, ... */
  int  consts;           /* constant parts left to the compiler */
  char why[64];          /* the first of them */
  int  found;            /* lifted unit: literals replaced */
  struct { int line, col, field; } leaf[MAX_LEAVES];
  const ast_node *lit[MAX_LIFT]; /* field k: its first literal (checked unit) */
  ast_node val[MAX_LIFT];        /* field k: that literal in the lifted unit */
} lift_plan;

static lift_plan lplan;

static int is_lit(const ast_node *n) {
  return n->kind == N_INT || n->kind == N_UINT || n->kind == N_DOUBLE || n->kind == N_BOOL ||
         n->kind == N_STRING;
}

static int same_lit(const ast_node *a, const ast_node *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
  case N_STRING: return a->len == b->len && (a->len == 0 || !memcmp(a->str, b->str, a->len));
  case N_DOUBLE: return !memcmp(&a->lit.d, &b->lit.d, sizeof a->lit.d);
  case N_BOOL: return !a->lit.b == !b->lit.b;
  default: return a->lit.u == b->lit.u;
  }
}

static const char *lit_type(int kind) {
  switch (kind) {
  case N_INT: return "int";
  case N_UINT: return "uint";
  case N_DOUBLE: return "double";
  case N_BOOL: return "bool";
  default: return "string";
  }
}

/* Counts a constant part the VM cannot compute; the first one is named. */
static void const_part(lift_plan *lp, const char *what) {
  if (!lp->consts++) snprintf(lp->why, sizeof lp->why, "%s", what);
}

static void add_leaf(lift_plan *lp, const ast_node *n) {
  int f = 0;
  while (f < lp->nfields && !same_lit(lp->lit[f], n)) f++;
  if (lp->nleaves == MAX_LEAVES || f == MAX_LIFT) {   /* left as it is */
    const_part(lp, "too many literals to lift");
    return;
  }
  if (f == lp->nfields) lp->lit[lp->nfields++] = n;
  lp->leaf[lp->nleaves].line = n->span.line;
  lp->leaf[lp->nleaves].col = n->span.col;
  lp->leaf[lp->nleaves++].field = f;
}

static void plan_walk(lift_plan *lp, const ast_node *n) {
  static const char *const opname[] = {"", "||", "&&", "==", "!=", "<", "<=", ">", ">=",
                                       "in", "+", "-", "*", "/", "%", "!", "-"};
  char what[64];
  switch (n->kind) {
  case N_INT: case N_UINT: case N_DOUBLE: case N_BOOL: case N_STRING:
    add_leaf(lp, n);
    return;
  case N_UNARY: plan_walk(lp, n->a); return;
  case N_COND: plan_walk(lp, n->a); plan_walk(lp, n->b); plan_walk(lp, n->c); return;
  case N_BINARY:
    if (n->op == OP_IN) {   /* the list is a table of constants */
      int lits = n->b->kind == N_LIST;
      for (int i = 0; lits && i < n->b->list.n; i++) lits = is_lit(n->b->list.v[i]);
      plan_walk(lp, n->a);
      if (!lits) const_part(lp, "a computed list after 'in'");
      return;
    }
    if (n->op == OP_AND || n->op == OP_OR || sema_binplan(n->op, n->a->type, n->b->type).op >= 0) {
      plan_walk(lp, n->a);
      plan_walk(lp, n->b);
      return;
    }
    snprintf(what, sizeof what, "'%s' on %s", opname[n->op], sema_ty_name(n->a->type));
    const_part(lp, what);
    return;
  case N_CALL: {
    int fn = sema_builtins[n->ref].fn, mixed = 0;
    for (int i = 0; (fn == BF_GREATEST || fn == BF_LEAST) && i < n->list.n; i++)
      mixed |= n->list.v[i]->type != n->type;   /* types differ, or a list */
    if (mixed) {
      snprintf(what, sizeof what, "%s() of mixed types", n->name);
      const_part(lp, what);
      return;
    }
    if (fn == BF_TSPART) {   /* the zone is an operand of TS_PART, a constant */
      plan_walk(lp, n->a);
      return;
    }
    if (fn == BF_MATCHES) {   /* the pattern is an operand of S_MATCH, a constant */
      plan_walk(lp, n->a ? n->a : n->list.v[0]);
      return;
    }
    if (sema_builtins[n->ref].op != -1) {
      if (n->a) plan_walk(lp, n->a);
      for (int i = 0; i < n->list.n; i++) plan_walk(lp, n->list.v[i]);
      return;
    }
    snprintf(what, sizeof what, "%s() of %s", n->name,
             sema_ty_name(n->a ? n->a->type : n->list.n ? n->list.v[0]->type : TY_ERROR));
    const_part(lp, what);
    return;
  }
  case N_LIST: const_part(lp, "a list"); return;
  case N_INDEX: const_part(lp, "indexing"); return;
  case N_NULL: const_part(lp, "null"); return;
  default: const_part(lp, "a name"); return;
  }
}

/* Replaces the planned literals of a parsed (unchecked) tree by req.lK. */
static void lift_walk(sema_unit *u, ast_node *n, lift_plan *lp) {
  if (!n) return;
  if (is_lit(n))
    for (int i = 0; i < lp->nleaves; i++) {
      if (lp->leaf[i].line != n->span.line || lp->leaf[i].col != n->span.col) continue;
      int f = lp->leaf[i].field;
      char name[16];
      ast_node *req = ast_new(&u->ctx, N_IDENT, n->span);
      snprintf(name, sizeof name, "l%d", f);
      if (!req) return;
      if (lp->val[f].kind == N_NULL) lp->val[f] = *n;   /* N_NULL: not yet seen */
      req->name = "req";
      n->kind = N_SELECTOR;
      n->a = req;
      n->name = ast_strndup(&u->ctx, name, strlen(name));
      lp->found++;
      return;
    }
  lift_walk(u, n->a, lp);
  lift_walk(u, n->b, lp);
  lift_walk(u, n->c, lp);
  for (int i = 0; i < n->list.n; i++) lift_walk(u, n->list.v[i], lp);
}

/* Sets the request fields of a lifted program; 0, or -1 naming the field. */
static int set_fields(const lane_program *p, lane_request *r, const lift_plan *lp, outcome *o) {
  for (int f = 0; f < lp->nfields; f++) {
    const ast_node *v = &lp->val[f];
    char name[16];
    int rc, idx;
    snprintf(name, sizeof name, "l%d", f);
    idx = lane_field(p, name);
    switch (v->kind) {
    case N_INT: rc = lane_set_int(r, idx, v->lit.i); break;
    case N_UINT: rc = lane_set_uint(r, idx, v->lit.u); break;
    case N_DOUBLE: rc = lane_set_double(r, idx, v->lit.d); break;
    case N_BOOL: rc = lane_set_bool(r, idx, v->lit.b); break;
    default: rc = lane_set_str(r, idx, v->str, v->len); break;
    }
    if (rc != LANE_OK) {
      snprintf(o->stage, sizeof o->stage, "request");
      snprintf(o->msg, sizeof o->msg, "cannot set %s: %s", name, lane_status_name(rc));
      return -1;
    }
  }
  return 0;
}

/* ---- was it computed the way it says? ----
 *
 * The folded program's condition is one PUSH_B: the evaluator computed
 * it. For a case without constant parts, a VM program must compute every
 * literal's operations: the req program loads one field per literal and
 * pushes no constant (PUSH_B only as the flag pair of each TRY); the -O0
 * program pushes one constant per literal and nothing folded from several. */
static int computed_as(const lane_program *p, int way, int nleaves, char *msg, size_t n) {
  const bc_route *r = &p->im.routes[0];
  const bc_insn *code = p->im.code + r->start;
  int push = 0, push_b = 0, ntry = 0, load = 0, good;
  if (way == W_FOLD) {   /* RULE 0; PUSH_B; JF */
    good = r->end - r->start > 3 && code[1].op == BC_OP_PUSH_B && code[2].op == BC_OP_JF;
    if (!good) snprintf(msg, n, "not folded: the condition is more than a constant");
    return good;
  }
  for (uint32_t pc = r->start; pc < r->end; pc++)
    switch (p->im.code[pc].op) {
    case BC_OP_PUSH_I: case BC_OP_PUSH_U: case BC_OP_PUSH_D: case BC_OP_PUSH_S: push++; break;
    case BC_OP_PUSH_B: push_b++; break;
    case BC_OP_TRY: ntry++; break;
    case BC_OP_LOAD: load++; break;
    default: break;
    }
  if (way == W_REQ) good = load == nleaves && push == 0 && push_b == 2 * ntry;
  else good = load == 0 && push + push_b - 2 * ntry == nleaves;
  if (!good)
    snprintf(msg, n, "not computed by the VM: %d literals, the program loads %d fields and "
             "pushes %d constants", nleaves, load, push + push_b - 2 * ntry);
  return good;
}

/* Prints the code part of p's disassembly. */
static void show_code(FILE *show, const lane_program *p) {
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  if (!m) return;
  bc_disasm_source(m, p, NULL);
  fclose(m);
  const char *code = buf ? strstr(buf, "\ncode:\n") : NULL;
  fputs(code ? code + 1 : buf ? buf : "", show);
  free(buf);
}

/* Runs case c one way. With show, prints the policy, the request and the
 * program's disassembly. With keep, returns the program (or NULL). */
static outcome run_case(const cel_case *c, int way, FILE *show, lane_program **keep,
                        int *vm_all) {
  static char src[1 << 16];
  outcome o;
  sema_unit u, a;
  sema_opts opts;
  unsigned char *b = NULL;
  size_t n = 0;
  lane_program *p = NULL;
  int err_expected = !strcmp(c->kind, "error"), planned = 0, have_a = 0;
  memset(&o, 0, sizeof o);
  memset(&opts, 0, sizeof opts);
  memset(&lplan, 0, sizeof lplan);
  for (int f = 0; f < MAX_LIFT; f++) lplan.val[f].kind = N_NULL;
  if (keep) *keep = NULL;
  policy(c, src, sizeof src);
  if (way == W_REQ) {   /* plan on the policy as written */
    sema_init(&a, NULL);
    have_a = 1;
    if (sema_load(&a, "cel.lane", src) == 0 && sema_check(&a) == 0) {
      plan_walk(&lplan, a.routes[0].rules.v[0]->a);
      planned = 1;
      size_t len = strlen(src);
      len += (size_t)snprintf(src + len, sizeof src - len, "request {");
      for (int f = 0; f < lplan.nfields && len < sizeof src; f++)
        len += (size_t)snprintf(src + len, sizeof src - len, " l%d: %s", f,
                                lit_type(lplan.lit[f]->kind));
      if (len < sizeof src) snprintf(src + len, sizeof src - len, " }\n");
    }
  }
  if (show) fprintf(show, "%s", src);
  opts.no_opt = way == W_O0;
  sema_init(&u, &opts);
  if (sema_load(&u, "cel.lane", src) != 0) {
    first_diag(&u, &o, "syntax");
    goto out;
  }
  if (planned) {
    for (int i = 0; i < u.mods[0]->decls.n; i++) lift_walk(&u, u.mods[0]->decls.v[i], &lplan);
    if (lplan.found != lplan.nleaves) {
      snprintf(o.stage, sizeof o.stage, "harness");
      snprintf(o.msg, sizeof o.msg, "lifted %d of %d literals", lplan.found, lplan.nleaves);
      goto out;
    }
  }
  if (sema_check(&u) != 0) {
    first_diag(&u, &o, "check");
    o.pass = err_expected && mentions_overload(c->want);
    goto out;
  }
  if (!planned) {
    plan_walk(&lplan, u.routes[0].rules.v[0]->a);
    planned = 1;
  }
  if (vm_all) *vm_all = lplan.consts == 0;
  if (emit_program(&u, &b, &n) != 0) {
    first_diag(&u, &o, "fold");
    o.pass = err_expected;
    goto out;
  }
  lane_error err;
  p = lane_load(b, n, &err);
  if (!p) {
    snprintf(o.stage, sizeof o.stage, "verify");
    snprintf(o.msg, sizeof o.msg, "%s", err.message);
    goto out;
  }
  if (show) {
    for (int f = 0; way == W_REQ && f < lplan.nfields; f++) {
      char buf[200];
      ev_val v;
      memset(&v, 0, sizeof v);
      v.kind = EV_OK;
      v.ty = lplan.val[f].kind == N_INT ? TY_INT : lplan.val[f].kind == N_UINT ? TY_UINT
           : lplan.val[f].kind == N_DOUBLE ? TY_DOUBLE : lplan.val[f].kind == N_BOOL ? TY_BOOL
           : TY_STRING;
      v.v.u = lplan.val[f].lit.u;
      if (v.ty == TY_BOOL) v.v.i = lplan.val[f].lit.b != 0;
      v.s = lplan.val[f].str;
      v.n = lplan.val[f].len;
      fprintf(show, "# req.l%d = %s\n", f, ev_show(&u, &v, buf, sizeof buf));
    }
    show_code(show, p);
  }
  if ((way == W_FOLD || lplan.consts == 0) &&
      !computed_as(p, way, lplan.nleaves, o.msg, sizeof o.msg)) {
    snprintf(o.stage, sizeof o.stage, "harness");
    goto out;
  }
  {
    lane_runtime *rt = lane_runtime_new(p, &err);
    lane_request r;
    lane_decision d;
    int rc = LANE_ENOMEM;
    lane_request_init(&r, p);
    if (way != W_REQ || set_fields(p, &r, &lplan, &o) == 0) {
      rc = rt ? lane_decide(rt, "r", &r, &d) : LANE_ENOMEM;
      if (rc != LANE_OK) {
        snprintf(o.stage, sizeof o.stage, "decide");
        snprintf(o.msg, sizeof o.msg, "%s", lane_status_name(rc));
      } else if (d.nerrors > 0) {
        snprintf(o.stage, sizeof o.stage, "runtime");
        snprintf(o.msg, sizeof o.msg, "run-time error at line %d", d.error_line);
        o.pass = err_expected;
      } else if (err_expected) {
        snprintf(o.stage, sizeof o.stage, "value");
        snprintf(o.msg, sizeof o.msg, "no error (rule %d)", d.rule);
      } else if (d.rule != 1) {
        snprintf(o.stage, sizeof o.stage, "value");
        if (way == W_FOLD) show_value(&u, &o);
        else snprintf(o.msg, sizeof o.msg, "the VM found the condition false (rule %d)", d.rule);
      } else {
        snprintf(o.stage, sizeof o.stage, "ok");
        o.pass = 1;
      }
    }
    lane_runtime_free(rt);
  }
out:
  if (show) fprintf(show, "%s: %s (%s)\n", o.pass ? "pass" : "FAIL", o.stage, o.msg);
  if (keep) *keep = p;
  else lane_program_free(p);
  free(b);
  sema_free(&u);
  if (have_a) sema_free(&a);
  return o;
}

/* ---- failure reasons ---- */

typedef struct reason {
  char text[160];     /* stage: message with names and numbers blanked */
  int  count;
  const cel_case *example;
  char detail[256];   /* the example's full message */
} reason;

static reason reasons[512];
static int nreasons;

/* "unknown function 'foo'" -> "unknown function '…'"; digits -> N. */
static void normalize(const cel_case *c, const outcome *o, int way, char *out, size_t n) {
  size_t len = (size_t)snprintf(out, n, "%s%s%s%s: ", way == W_FOLD ? "" : way_name[way],
                                way == W_FOLD ? "" : " only: ",
                                c->unchecked && !strcmp(o->stage, "check") ?
                                "unchecked in CEL, rejected by lane's " : "", o->stage);
  int inq = 0;
  if (!strcmp(o->stage, "value")) {
    snprintf(out + len, n - len, "wrong value%s",
             strncmp(o->msg, "no error", 8) == 0 ? " (expected an error)" : "");
    return;
  }
  for (const char *s = o->msg; *s && len + 4 < n; s++) {
    if (*s == '\'') {
      if (!inq) { memcpy(out + len, "'...'", 5); len += 5; }
      inq = !inq;
      continue;
    }
    if (inq) continue;
    if (*s >= '0' && *s <= '9') {
      if (len == 0 || out[len - 1] != 'N') out[len++] = 'N';
      continue;
    }
    out[len++] = *s;
  }
  out[len] = 0;
}

static void count_reason(const cel_case *c, const outcome *o, int way) {
  char key[160];
  int i;
  normalize(c, o, way, key, sizeof key);
  for (i = 0; i < nreasons; i++)
    if (!strcmp(reasons[i].text, key)) break;
  if (i == nreasons) {
    if (nreasons == (int)(sizeof reasons / sizeof *reasons)) return;
    snprintf(reasons[i].text, sizeof reasons[i].text, "%s", key);
    reasons[i].example = c;
    snprintf(reasons[i].detail, sizeof reasons[i].detail, "%s", o->msg);
    nreasons++;
  }
  reasons[i].count++;
}

static int by_count(const void *a, const void *b) {
  return ((const reason *)b)->count - ((const reason *)a)->count;
}

/* ---- per-suite and per-skip counts ---- */

typedef struct tally { char name[64]; int total, supported, passed, skipped; } tally;
static tally suites[64];
static int nsuites;
static tally skips[128];
static int nskips;

static tally *tally_of(tally *t, int *n, int max, const char *name, size_t len) {
  for (int i = 0; i < *n; i++)
    if (strlen(t[i].name) == len && !strncmp(t[i].name, name, len)) return &t[i];
  if (*n == max) return &t[max - 1];
  snprintf(t[*n].name, sizeof t[*n].name, "%.*s", (int)len, name);
  return &t[(*n)++];
}

/* ---- the table in tests/cel/README.md ---- */

#define README "tests/cel/README.md"
#define TABLE_BEGIN "<!-- t_cel: the tables below are a run's; build/tests/t_cel --update rewrites them -->\n"
#define TABLE_END "<!-- t_cel: end -->\n"

/* This run's tables, Markdown, malloc'd: per suite file, then the skips by
 * reason. */
static char *tables(int supported, int passed) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) bail("out of memory");
  fprintf(f, "| suite file | tests | attempted | pass | fail | skipped |\n|---|---:|---:|---:|---:|---:|\n");
  for (int i = 0; i < nsuites; i++)
    fprintf(f, "| `%s` | %d | %d | %d | %d | %d |\n", suites[i].name, suites[i].total,
            suites[i].supported, suites[i].passed, suites[i].supported - suites[i].passed,
            suites[i].skipped);
  fprintf(f, "| all | %d | %d | %d | %d | %d |\n\n", ncases, supported, passed,
          supported - passed, ncases - supported);
  fprintf(f, "| skipped | why (`extract.py` gives each case its reason in `cases.tsv`) |\n|---:|---|\n");
  for (int i = 0; i < nskips; i++) fprintf(f, "| %d | %s |\n", skips[i].total, skips[i].name);
  fprintf(f, "\n| failing | why (attempted cases lane does not pass, each way alike) |\n|---:|---|\n");
  for (int i = 0; i < nreasons; i++)
    fprintf(f, "| %d | %s (e.g. `%s`) |\n", reasons[i].count, reasons[i].text,
            reasons[i].example->name);
  fclose(f);
  return buf;
}

/* Whether README's tables are t's; with update, rewrites them to t. */
static int readme_tables(const char *t, int update) {
  char *doc = slurp(README);
  if (!doc) bail("cannot read %s", README);
  char *b = strstr(doc, TABLE_BEGIN), *e = b ? strstr(b, TABLE_END) : NULL;
  if (!b || !e) bail("%s: no tables between '%.20s...' and '%.20s...'", README, TABLE_BEGIN,
                     TABLE_END);
  b += strlen(TABLE_BEGIN);
  int same = (size_t)(e - b) == strlen(t) && !memcmp(b, t, strlen(t));
  if (update && !same) {
    FILE *f = fopen(README, "w");
    if (!f) bail("cannot write %s", README);
    fwrite(doc, 1, (size_t)(b - doc), f);
    fputs(t, f);
    fputs(e, f);
    fclose(f);
    diag("wrote %s: its tables", README);
  }
  free(doc);
  return same;
}

static void todo(int cond, const char *name, const char *why) {
  printf("%sok %d - %s # TODO %s\n", cond ? "" : "not ", ++tap_run, name, why);
}

/* Writes s on one line (newlines as spaces), for diagnostics. */
static void one_line(FILE *f, const char *s) {
  for (; *s; s++) fputc(*s == '\n' ? ' ' : *s, f);
}

int main(int argc, char **argv) {
  lane_regex_install(lane_regex_pcre2());   /* matches(): liblane-re */
  char *text = slurp(CASES), *listed;
  int update = argc > 1 && !strcmp(argv[1], "--update");
  int total_supported = 0, total_passed = 0, newly = 0, disagree = 0;
  int way_pass[NWAYS] = {0}, way_stage[NWAYS][4] = {{0}};   /* ok, runtime, fold, check */
  int vm_all = 0, vm_all_pass = 0;
  static tally consts[64];
  int nconsts = 0;
  if (!text) bail("cannot read %s (run from the top of the repository)", CASES);
  if (read_cases(text) < 1000) bail("%s: malformed", CASES);

  if (argc > 2 && !strcmp(argv[1], "--show")) {
    cel_case *c = find_case(argv[2]);
    if (!c) bail("no case %s", argv[2]);
    if (is_skip(c)) { printf("%s: %s\n", c->name, c->kind); return 0; }
    for (int w = 0; w < NWAYS; w++) {
      printf("==== %s ====\n", way_name[w]);
      run_case(c, w, stdout, NULL, NULL);
    }
    return 0;
  }

  /* The harness itself: wrong expectations must fail, every way. */
  {
    static const struct { const char *kind, *want, *expr; int pass; } ctl[] = {
      {"eq", "3", "1 + 1", 0}, {"eq", "2", "1 + 1", 1}, {"true", "", "1 > 2", 0},
      {"eq", "\"b\"", "'a'", 0}, {"eq", "false", "true", 0}, {"nan", "", "1.0", 0},
      {"nan", "", "0.0 / 0.0", 1}, {"error", "", "1 + 1", 0}, {"error", "", "1 / 0", 1},
      {"error", "overload", "'a' + 1", 1}, {"error", "", "'a' + 1", 0},
      {"eq", "1", "1 +", 0}, {"true", "", "'abc'.endsWith('bc')", 1},
      {"true", "", "'abc'.endsWith('ab')", 0}, {"eq", "\"ab\"", "'a' + 'b'", 1},
    };
    for (size_t i = 0; i < sizeof ctl / sizeof *ctl; i++) {
      cel_case c;
      memset(&c, 0, sizeof c);
      c.name = "control";
      c.kind = (char *)ctl[i].kind;
      c.want = (char *)ctl[i].want;
      c.expr = (char *)ctl[i].expr;
      for (int w = 0; w < NWAYS; w++) {
        outcome o = run_case(&c, w, NULL, NULL, NULL);
        if (!update)
          is_int(o.pass, ctl[i].pass, "control, %s: %s %s %s %s", way_name[w], ctl[i].expr,
                 ctl[i].kind, ctl[i].want, ctl[i].pass ? "passes" : "fails");
      }
    }
  }

  /* The check that the VM computed a case tells the three programs apart:
   * (1 + 1) == (2) has three literals. */
  if (!update) {
    cel_case c;
    lane_program *p[NWAYS];
    char msg[256];
    int all = -1;
    memset(&c, 0, sizeof c);
    c.name = "control";
    c.kind = "eq";
    c.want = "2";
    c.expr = "1 + 1";
    for (int w = 0; w < NWAYS; w++) {
      run_case(&c, w, NULL, &p[w], &all);
      if (!p[w]) bail("control: 1 + 1 == 2 does not compile %s", way_name[w]);
    }
    is_int(all, 1, "control: 1 + 1 == 2 has no constant part the VM cannot compute");
    for (int w = 0; w < NWAYS; w++)
      for (int as = 0; as < NWAYS; as++)
        is_int(computed_as(p[w], as, 3, msg, sizeof msg), w == as,
               "control: the %s program %s as %s", way_name[w], w == as ? "counts" : "does not count",
               way_name[as]);
    for (int w = 0; w < NWAYS; w++) lane_program_free(p[w]);
  }

  listed = slurp(PASSING);
  if (!listed && !update) bail("cannot read %s", PASSING);
  {
    int unknown = 0;
    for (char *line = listed, *next; line && *line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      if (!*line || *line == '#') continue;
      /* the suite repeats some names (index_of/empty_index is two cases):
       * the k-th line naming one marks its k-th case */
      cel_case *c = NULL;
      for (int i = 0; i < ncases && !c; i++)
        if (!cases[i].listed && !strcmp(cases[i].name, line)) c = &cases[i];
      if (!c) c = find_case(line);
      if (c) c->listed = 1;
      else { unknown++; diag("passing.txt names an unknown case: %s", line); }
    }
    if (!update) is_int(unknown, 0, "every case in %s is in %s", PASSING, CASES);
  }

  for (int i = 0; i < ncases; i++) {
    cel_case *c = &cases[i];
    const char *slash = strchr(c->name, '/');
    tally *s = tally_of(suites, &nsuites, 64, c->name, slash ? (size_t)(slash - c->name) : strlen(c->name));
    outcome o[NWAYS];
    char cls[NWAYS][16];
    int all = 0, pass_all = 1, agree = 1;
    s->total++;
    if (is_skip(c)) {
      s->skipped++;
      tally_of(skips, &nskips, 128, c->kind + 5, strlen(c->kind + 5))->total++;
      if (c->listed) ok(0, "%s is listed as passing but is skipped", c->name);
      continue;
    }
    s->supported++;
    total_supported++;
    for (int w = 0; w < NWAYS; w++) {
      o[w] = run_case(c, w, NULL, NULL, w == W_REQ ? &all : NULL);
      pass_all &= o[w].pass;
      /* how it failed or passed, where folded and VM ways may differ
       * legitimately: a constant error is a compile error when folded and a
       * run-time error in the VM */
      snprintf(cls[w], sizeof cls[w], "%s%s", o[w].pass ? "pass " : "",
               !strcmp(o[w].stage, "fold") || !strcmp(o[w].stage, "runtime") ? "error"
               : o[w].stage);
      agree &= !strcmp(cls[w], cls[W_FOLD]);
      if (o[w].pass) {
        way_pass[w]++;
        way_stage[w][!strcmp(o[w].stage, "ok") ? 0 : !strcmp(o[w].stage, "runtime") ? 1
                     : !strcmp(o[w].stage, "fold") ? 2 : 3]++;
      }
      if (!o[w].pass && (w == W_FOLD || strcmp(cls[w], cls[W_FOLD]) != 0)) {
        count_reason(c, &o[w], w);
      }
    }
    c->passed = pass_all;
    if (pass_all) { s->passed++; total_passed++; }
    if (all) {
      vm_all++;
      vm_all_pass += pass_all;
    } else if (pass_all) {   /* plan: the last run's, the req way's */
      const char *why = lplan.consts ? lplan.why : "none: a type error, no program runs";
      tally_of(consts, &nconsts, 64, why, strlen(why))->total++;
    }
    if (update) continue;
    for (int w = 0; w < NWAYS; w++) {
      if (c->listed) {
        if (!ok(o[w].pass, "%s: %s", way_name[w], c->name)) {
          diag("  %s: %s", o[w].stage, o[w].msg);
          fputs("#   expr: ", stdout);
          one_line(stdout, c->expr);
          fputc('\n', stdout);
        }
      } else {
        char name[320], why[320];
        snprintf(name, sizeof name, "%s: %s", way_name[w], c->name);
        snprintf(why, sizeof why, "lane: %s: %s", o[w].stage, o[w].msg);
        for (char *q = why; *q; q++) if (*q == '\n' || *q == '#') *q = ' ';
        todo(o[w].pass, name, pass_all ? "now passes: add it to tests/cel/passing.txt" : why);
      }
    }
    /* A known failure must fail alike every way: otherwise the compiler
     * and the VM disagree. */
    if (!c->listed) {
      if (!ok(agree, "%s: folded and VM agree (%s)", c->name, cls[W_FOLD])) {
        disagree++;
        for (int w = 0; w < NWAYS; w++) diag("  %s: %s: %s", way_name[w], o[w].stage, o[w].msg);
      }
      newly += pass_all;
    }
  }

  for (int i = 0; i < nsuites; i++)
    diag("%-16s %4d tests: %3d supported, %3d pass (%d%%), %4d skipped", suites[i].name,
         suites[i].total, suites[i].supported, suites[i].passed,
         suites[i].supported ? 100 * suites[i].passed / suites[i].supported : 100,
         suites[i].skipped);
  diag("all              %4d tests: %3d supported, %3d pass (%d%%), %4d skipped", ncases,
       total_supported, total_passed,
       total_supported ? 100 * total_passed / total_supported : 100, ncases - total_supported);
  diag("each supported case runs three ways (a pass is one that passes all three):");
  for (int w = 0; w < NWAYS; w++)
    diag("  %-7s %3d run, %3d pass: %3d values, %3d run-time errors, %3d compile-time "
         "errors, %3d type errors", way_name[w], total_supported, way_pass[w],
         way_stage[w][0], way_stage[w][1], way_stage[w][2], way_stage[w][3]);
  diag("computed by the VM: %d cases (%d pass) have no part the VM cannot compute; "
       "their programs are checked for it", vm_all, vm_all_pass);
  diag("passing cases with constant parts folded in every way, by the first such part:");
  for (int i = 0; i < nconsts; i++) diag("  %4d %s", consts[i].total, consts[i].name);
  diag("skipped, by reason:");
  for (int i = 0; i < nskips; i++) diag("  %4d %s", skips[i].total, skips[i].name);
  qsort(reasons, (size_t)nreasons, sizeof *reasons, by_count);
  diag("failures among supported cases, by reason:");
  for (int i = 0; i < nreasons; i++) {
    printf("#   %4d %s\n#          e.g. %s: ", reasons[i].count, reasons[i].text,
           reasons[i].example->name);
    one_line(stdout, reasons[i].example->expr);
    printf("  [%s]\n", reasons[i].detail);
  }
  if (newly) diag("%d supported cases pass that passing.txt does not list "
                  "(build/tests/t_cel --update)", newly);
  if (disagree) diag("%d known failures fail differently folded and in the VM", disagree);
  char *t = tables(total_supported, total_passed);
  ok(readme_tables(t, update) || update,
     "%s's tables are this run's counts (build/tests/t_cel --update rewrites them)", README);
  free(t);

  if (update) {
    FILE *f = fopen(PASSING, "w");
    if (!f) bail("cannot write %s", PASSING);
    fprintf(f, "# CEL conformance cases lane passes (t_cel --update); each must keep passing.\n");
    for (int i = 0; i < ncases; i++)
      if (cases[i].passed) fprintf(f, "%s\n", cases[i].name);
    fclose(f);
    diag("wrote %s: %d cases", PASSING, total_passed);
  }
  free(listed);
  free(cases);
  free(text);
  return done_testing();
}

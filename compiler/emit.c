/*
 * emit.c -- folding and code generation: a checked unit becomes a bc_image
 * and then .lanec bytes.
 *
 * Static model filters are decided here, per model, with the evaluator:
 * a model that fails a static test never enters the pool; one that passes
 * every test needs no per-decision check; only the rest carry
 * BC_MEMBER_CHECK and run the filter code in the VM. Route code goes
 * first, one region per route; filter regions follow.
 *
 * With sema_opts.no_opt the optimisations are off, so that a differential
 * test can compare both programs' decisions: a constant expression is
 * computed by VM code whenever the VM has instructions for it, every model
 * of a pool is a checked member and its filter keeps every condition
 * (except those the VM cannot compute, such as `tags`), and no rule index
 * is built. best() pools are still sorted by quality: the loader requires
 * it.
 */
#include "sema.h"
#include "builtins.h"
#include "sem.h"

#include <stdlib.h>
#include <string.h>

/* A growable array of instructions with their source lines. */
typedef struct cbuf {
  bc_insn  *v;      /* instructions */
  uint32_t *line;   /* source line of each */
  int       n, cap; /* used, allocated */
} cbuf;

typedef struct itab { uint32_t *slot; uint32_t cap; } itab;   /* index + 1; 0 free */

typedef struct emitter {
  sema_unit *u;             /* what is being emitted */
  bc_image   im;            /* tables under construction */
  itab       intern[5];     /* hash tables of strings, ints, doubles, explain
                               nodes and regions */
  int capstr, capkint, capkdbl, capmembers, cappools, capfilters, caprules,
      caplists, capelems, capswitches, capcases, capxnodes, capxrules, capxsels,
      capxlist, capxreg;    /* allocated sizes of im arrays and xreg */
  cbuf       route;         /* route code */
  cbuf       filt;          /* filter code, relocated after the routes */
  cbuf       xcode;         /* explain regions' code, after the filters */
  bc_filter *xreg;          /* explain regions in xcode (jumps relative to
                               their start until linked) */
  uint32_t   nxreg;
  uint32_t   ncandfilters;  /* filters CAND names, before the explain regions */
  uint32_t   xrule;         /* explain: the rule being emitted, index in RULES */
  uint32_t   xplace;        /* explain: CANDs emitted in it so far */
  int        xmode;         /* emitting an explain region: errors only mark xfail */
  int        xfail;
  struct xlines *lines;     /* explain: line starts of the files quoted */
  int        nlines_files;
  cbuf      *cur;           /* where instructions go now */
  int        line;          /* source line for new instructions */
  int        fail;          /* an error was reported or memory ran out */
  int        no_opt;        /* sema_opts.no_opt: no optimisations */
  int        ntry;          /* TRY handlers open around the current code */
  cbuf       icode;         /* iteration regions' code, after the filters' */
  bc_filter *ireg;          /* iteration regions in icode (jumps relative to
                               their start until linked) */
  uint32_t   nireg;
  int        capireg;
  struct { const ast_node *n; uint32_t reg; } *imemo; /* a macro's region, once */
  int        nimemo, capimemo;
  struct { const ast_node *n; int base, nvars, field; } act[BC_MAX_ITER];
  int        nact;          /* macros whose iteration region is being emitted */
  uint32_t  *pat;           /* matches()'s patterns (string indexes) by slot */
  uint32_t   npat;
  int        cappat;
} emitter;

/* Appends one item to a malloc'd array (n, cap), or marks failure. */
#define APPEND(E, arr, n, cap, val)                                         \
  do {                                                                      \
    if ((int)(n) >= (cap)) {                                                \
      int nc_ = (cap) ? (cap) * 2 : 16;                                     \
      void *p_ = realloc((arr), (size_t)nc_ * sizeof *(arr));               \
      if (!p_) { (E)->fail = 1; (E)->u->ctx.nomem = 1; break; }             \
      (arr) = p_;                                                           \
      (cap) = nc_;                                                          \
    }                                                                       \
    (arr)[(n)++] = (val);                                                   \
  } while (0)

/* Reports an error through diag_error, the layer's printf-checked helper,
 * and marks the emission failed. */
#define fail(E, sp, ...)                                                        \
  ((E)->xmode ? (void)((E)->xfail = 1)                                          \
              : (diag_error(&(E)->u->ctx, (sp), __VA_ARGS__), (void)((E)->fail = 1)))

/* ---- constants ---- */

/* Constants are interned through open-addressing hash tables of indexes
 * (one per kind: strings, ints, doubles, compared by their bytes), so a
 * policy of thousands of rules compiles in time linear in its size. */
enum { K_STR, K_INT, K_DBL, K_XNODE, K_XREG };

static uint32_t kcount(const emitter *E, int kind) {
  switch (kind) {
  case K_STR: return E->im.nstr;
  case K_INT: return E->im.nkint;
  case K_DBL: return E->im.nkdbl;
  case K_XNODE: return E->im.nxnodes;
  default: return E->nxreg;
  }
}

static const void *kbytes(const emitter *E, int kind, uint32_t i, size_t *n) {
  switch (kind) {
  case K_STR: *n = E->im.str[i].len; return E->im.str[i].p;
  case K_INT: *n = 8; return &E->im.kint[i];
  case K_DBL: *n = 8; return &E->im.kdbl[i];
  case K_XNODE: *n = sizeof(bc_xnode); return &E->im.xnodes[i];
  default:
    *n = (E->xreg[i].end - E->xreg[i].start) * sizeof(bc_insn);
    return &E->xcode.v[E->xreg[i].start];
  }
}

/* The slot for key in table kind: holding its index + 1, or 0 (free). */
static uint32_t *kslot(emitter *E, int kind, const void *key, size_t n) {
  itab *t = &E->intern[kind];
  uint32_t mask = t->cap - 1, i = (uint32_t)bc_fnv1a64(key, n, BC_FNV_OFFSET) & mask;
  for (;; i = (i + 1) & mask) {
    size_t en;
    if (!t->slot[i]) return &t->slot[i];
    const void *eb = kbytes(E, kind, t->slot[i] - 1, &en);
    if (en == n && (n == 0 || memcmp(eb, key, n) == 0)) return &t->slot[i];
  }
}

/* Keeps table kind at most half full; 0, or -1 when memory ran out. */
static int kgrow(emitter *E, int kind) {
  itab *t = &E->intern[kind];
  uint32_t n = kcount(E, kind);
  if (t->cap && (n + 1) * 2 <= t->cap) return 0;
  itab old = *t;
  t->cap = old.cap ? old.cap * 2 : 256;
  t->slot = calloc(t->cap, sizeof *t->slot);
  if (!t->slot) { *t = old; E->fail = 1; E->u->ctx.nomem = 1; return -1; }
  for (uint32_t i = 0; i < n; i++) {
    size_t en;
    const void *eb = kbytes(E, kind, i, &en);
    *kslot(E, kind, eb, en) = i + 1;
  }
  free(old.slot);
  return 0;
}

static uint32_t str_index(emitter *E, const char *s, size_t n) {
  if (kgrow(E, K_STR)) return 0;
  uint32_t *slot = kslot(E, K_STR, s, n);
  if (*slot) return *slot - 1;
  char *copy = ast_strndup(&E->u->ctx, s, n);
  if (!copy) { E->fail = 1; return 0; }
  bc_str st = {copy, (uint32_t)n};
  APPEND(E, E->im.str, E->im.nstr, E->capstr, st);
  if (E->fail) return 0;
  *slot = E->im.nstr;
  return E->im.nstr - 1;
}

static uint32_t cstr(emitter *E, const char *s) { return str_index(E, s, strlen(s)); }

static uint32_t kint_index(emitter *E, int64_t v) {
  if (kgrow(E, K_INT)) return 0;
  uint32_t *slot = kslot(E, K_INT, &v, sizeof v);
  if (*slot) return *slot - 1;
  APPEND(E, E->im.kint, E->im.nkint, E->capkint, v);
  if (E->fail) return 0;
  *slot = E->im.nkint;
  return E->im.nkint - 1;
}

static uint32_t kdbl_index(emitter *E, double v) {
  if (kgrow(E, K_DBL)) return 0;
  uint32_t *slot = kslot(E, K_DBL, &v, sizeof v);
  if (*slot) return *slot - 1;
  APPEND(E, E->im.kdbl, E->im.nkdbl, E->capkdbl, v);
  if (E->fail) return 0;
  *slot = E->im.nkdbl;
  return E->im.nkdbl - 1;
}

/* ---- instructions ---- */

static int emit(emitter *E, int op, int a, int b, uint32_t c) {
  cbuf *cb = E->cur;
  if (cb->n >= cb->cap) {
    int nc = cb->cap ? cb->cap * 2 : 64;
    bc_insn *v = realloc(cb->v, (size_t)nc * sizeof *v);
    if (v) cb->v = v;
    uint32_t *l = realloc(cb->line, (size_t)nc * sizeof *l);
    if (l) cb->line = l;
    if (!v || !l) { E->fail = 1; E->u->ctx.nomem = 1; return 0; }
    cb->cap = nc;
  }
  bc_insn in = {(uint8_t)op, (uint8_t)a, (uint16_t)b, c};
  cb->v[cb->n] = in;
  cb->line[cb->n] = (uint32_t)E->line;
  return cb->n++;
}

static int here(emitter *E) { return E->cur->n; }
static int here_of(const cbuf *cb) { return cb->n; }

static void patch(emitter *E, int at) {
  if (at < E->cur->n) E->cur->v[at].c = (uint32_t)E->cur->n;
}

/* ---- expressions ---- */

static void emit_expr(emitter *E, const ast_node *n);
static void emit_call(emitter *E, const ast_node *n);

static void emit_const(emitter *E, const ast_node *n, const ev_val *v) {
  switch (sema_ty_mtype(v->ty)) {
  case LANE_T_INT: emit(E, BC_OP_PUSH_I, 0, 0, kint_index(E, v->v.i)); break;
  case LANE_T_UINT: emit(E, BC_OP_PUSH_U, 0, 0, kint_index(E, (int64_t)v->v.u)); break;
  case LANE_T_DOUBLE: emit(E, BC_OP_PUSH_D, 0, 0, kdbl_index(E, v->v.d)); break;
  case LANE_T_BOOL: emit(E, BC_OP_PUSH_B, v->v.i ? 1 : 0, 0, 0); break;
  case LANE_T_STRING: emit(E, BC_OP_PUSH_S, 0, 0, str_index(E, v->s, v->n)); break;
  default:
    fail(E, n->span, "a %s value cannot be used at run time here", sema_ty_name(v->ty));
  }
}

static uint32_t list_index(emitter *E, const ast_node *n, const ev_val *l, int want) {
  int mt = sema_ty_mtype(want);
  bc_list bl = {(uint32_t)mt, E->im.nlistelems, 0};
  for (size_t i = 0; i < l->n; i++) {
    const ev_val *it = &l->items[i];
    uint32_t idx;
    if (it->ty != want && !(want == TY_TOKENS && it->ty == TY_INT)) {
      fail(E, n->span, "list elements must be %s to match the left side of 'in'",
           sema_ty_name(want));
      return 0;
    }
    if (mt == LANE_T_STRING) idx = str_index(E, it->s, it->n);
    else if (mt == LANE_T_DOUBLE) idx = kdbl_index(E, it->v.d);
    else idx = kint_index(E, it->v.i);
    APPEND(E, E->im.listelems, E->im.nlistelems, E->capelems, idx);
    bl.count++;
  }
  if (!mt) { fail(E, n->span, "cannot test %s with 'in' at run time", sema_ty_name(want)); return 0; }
  APPEND(E, E->im.lists, E->im.nlists, E->caplists, bl);
  return E->im.nlists - 1;
}

static int is_number(int ty) { return ty == TY_INT || ty == TY_UINT || ty == TY_DOUBLE; }

/* Whether n is a request field that is a map (req.metadata), or a list
 * (req.tags). */
static int is_map_field(const ast_node *n) {
  return n->kind == N_SELECTOR && n->refkind == RK_FIELD && TY_IS_MAP(n->type);
}

static int is_list_field(const ast_node *n) {
  return n->kind == N_SELECTOR && n->refkind == RK_FIELD && (n->type & TY_LIST);
}

/* Whether n is x.split(sep) (no limit) of a string known only at run time.
 * It makes no list: size(), 'in' and [i] of it compile to the S_SPLIT_*
 * instructions, which walk x part by part. */
static int is_split(const ast_node *n) {
  return n->kind == N_CALL && sema_builtins[n->ref].fn == BF_SPLIT && n->a && !n->is_const;
}


/* Pushes x and sep of split call n; 0 (reported) for a limit. */
static int emit_split_args(emitter *E, const ast_node *n) {
  if (n->list.n != 1) {
    fail(E, n->span, "split() with a limit is supported only on constants; of a string known "
         "at run time, use size(), 'in' or [i] of split(sep)%s", "");
    return 0;
  }
  emit_expr(E, n->a);
  emit_expr(E, n->list.v[0]);
  return 1;
}

/* Whether n is filter() over a request's map or list: size() of it counts
 * the entries that pass (ITER_N); the list itself is never made. */
static int is_field_filter(const ast_node *n) {
  return n->kind == N_CALL && sema_builtins[n->ref].fn == BF_FILTER && n->a &&
         (is_map_field(n->a) || is_list_field(n->a));
}

static void emit_in(emitter *E, const ast_node *n) {
  ev_env env = {.u = E->u, .model = -1};
  if (is_map_field(n->b) || is_list_field(n->b)) {   /* k in req.m, s in req.tags */
    emit_expr(E, n->a);
    emit(E, is_map_field(n->b) ? BC_OP_MAP_HAS : BC_OP_LIST_HAS, 0, 0, (uint32_t)n->b->ref);
    return;
  }
  ev_val l = ev_eval(&env, n->b);
  if (l.kind == EV_OK && TY_IS_MAP(l.ty)) {   /* a constant map: its keys */
    ev_val *keys = ast_alloc(&E->u->ctx, (l.n + 1) * sizeof *keys);
    if (!keys) return;
    for (size_t i = 0; i < l.n; i++) keys[i] = l.items[2 * i];
    int kt = TY_MKEY(l.ty);
    l.ty = TY_LIST | (kt == TY_NULL ? TY_NULL : kt);
    l.items = keys;
  }
  if (l.kind != EV_OK && is_split(n->b)) {   /* x in s.split(sep) */
    emit_expr(E, n->a);
    if (emit_split_args(E, n->b)) emit(E, BC_OP_S_SPLIT_HAS, 0, 0, 0);
    return;
  }
  if (l.kind != EV_OK && n->b->kind == N_CALL && n->b->a &&
      (is_map_field(n->b->a) || is_list_field(n->b->a))) {   /* filter() of req.tags: why not */
    emit_call(E, n->b);
    return;
  }
  if (l.kind != EV_OK) {
    fail(E, n->b->span, "the right side of 'in' must be a constant list, a request's map or "
         "list, or split() of a string%s", "");
    return;
  }
  emit_expr(E, n->a);
  int want = n->a->type, et = l.ty & ~TY_LIST, mt = sema_ty_mtype(want);
  int num = mt == LANE_T_INT || mt == LANE_T_UINT || mt == LANE_T_DOUBLE;
  if (et == TY_DYN || (num && want != TY_TOKENS && want != et && et != TY_NULL)) {
    /* Items of other types never equal x and are left out; numbers of
     * another type compare as doubles, as == compares them. */
    int mixed = 0;
    for (size_t i = 0; i < l.n; i++)
      mixed |= num && want != TY_TOKENS && l.items[i].ty != want && is_number(l.items[i].ty);
    ev_val *d = ast_alloc(&E->u->ctx, (l.n + 1) * sizeof *d);
    if (!d) return;
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++) {
      const ev_val *it = &l.items[i];
      if (mixed && is_number(it->ty)) {
        d[k] = *it;
        d[k].ty = TY_DOUBLE;
        if (it->ty == TY_INT) d[k].v.d = (double)it->v.i;
        else if (it->ty == TY_UINT) d[k].v.d = (double)it->v.u;
        k++;
      } else if (it->ty == want || (want == TY_TOKENS && it->ty == TY_INT)) {
        d[k++] = *it;
      }
    }
    l.items = d;
    l.n = k;
    if (mixed) {
      if (mt != LANE_T_DOUBLE) emit(E, mt == LANE_T_INT ? BC_OP_I2D : BC_OP_U2D, 0, 0, 0);
      want = TY_DOUBLE;
    }
  }
  emit(E, BC_OP_IN_LIST, 0, 0, list_index(E, n, &l, want));
}

static int is_has(const ast_node *n) {
  return n->kind == N_CALL && sema_builtins[n->ref].fn == BF_HAS;
}

/* Whether node n itself (not its operands) can raise an error at run time:
 * int and uint arithmetic (overflow, division by zero) and range-checked
 * conversions. */
static int raises_here(const ast_node *n) {
  switch (n->kind) {
  case N_BINARY: {
    if (n->op < OP_ADD || n->op > OP_MOD) return 0;
    sema_plan p = sema_binplan(n->op, n->a->type, n->b->type);
    return p.op >= 0 && bc_op_can_fail(p.op);
  }
  case N_UNARY: return n->op == OP_NEG && sema_ty_mtype(n->type) == LANE_T_INT;
  case N_CALL: {
    int op = sema_builtins[n->ref].op, fn = sema_builtins[n->ref].fn;
    if (fn >= BF_ALL && fn <= BF_TMAP) return 1;   /* ITER: a run's error */
    if (fn == BF_JOIN) return 1;                     /* LIST_JOIN: too long */
    return op >= 0 && bc_op_can_fail(op);
  }
  case N_INDEX:   /* no such key or index */
    return TY_IS_MAP(n->a->type) || is_list_field(n->a) || is_split(n->a);
  case N_SELECTOR: return n->refkind == RK_MAPKEY;
  default: return 0;
  }
}

/* Whether evaluating n can raise an error when its constants are folded
 * (the optimised program: the rule index). */
static int raises(const ast_node *n) {
  if (n->is_const || is_has(n)) return 0;
  if ((n->a && raises(n->a)) || (n->b && raises(n->b)) || (n->c && raises(n->c))) return 1;
  for (int i = 0; i < n->list.n; i++)
    if (raises(n->list.v[i])) return 1;
  return raises_here(n);
}

static int minmax_op(const ast_node *n);

/* Whether VM code can compute constant expression n node by node (no_opt):
 * literals of a machine type and operators and builtins that have an
 * instruction. Anything else (lists, indexing, const-only builtins, null)
 * is folded even then, as its type requires. */
static int runtime_ok(const ast_node *n) {
  switch (n->kind) {
  case N_INT: case N_UINT: case N_DOUBLE: case N_BOOL: case N_STRING:
  case N_MONEY: case N_PRICE: case N_DURATION: case N_TOKENS: case N_FRACTION:
    return sema_ty_mtype(n->type) != 0;
  case N_UNARY: return runtime_ok(n->a);
  case N_COND: return runtime_ok(n->a) && runtime_ok(n->b) && runtime_ok(n->c);
  case N_BINARY:
    if (n->op == OP_IN) return runtime_ok(n->a);
    if (n->op != OP_AND && n->op != OP_OR && sema_binplan(n->op, n->a->type, n->b->type).op < 0)
      return 0;
    return runtime_ok(n->a) && runtime_ok(n->b);
  case N_CALL:
    if (sema_builtins[n->ref].op == -1 || (n->a && !runtime_ok(n->a))) return 0;
    if ((sema_builtins[n->ref].fn == BF_GREATEST || sema_builtins[n->ref].fn == BF_LEAST) &&
        minmax_op(n) < 0)
      return 0;
    for (int i = 0; i < n->list.n; i++)
      if (!runtime_ok(n->list.v[i])) return 0;
    return 1;
  default: return 0;
  }
}

/* Whether emit_expr folds constant n: always, unless no_opt, where only
 * literals and what VM code cannot compute are folded. */
static int folds(const emitter *E, const ast_node *n) {
  if (!n->is_const) return 0;
  if (!E->no_opt || n->kind <= N_FRACTION) return 1;
  return !runtime_ok(n);
}

/* Whether evaluating n at run time can raise an error. A folded constant
 * cannot; one computed by VM code (no_opt) raises exactly when its value
 * is an error, which is known now. */
static int can_fail(const emitter *E, const ast_node *n) {
  if (is_has(n)) return 0;   /* has() reads no value: its argument never runs */
  if (n->is_const) {
    ev_env env = {.u = E->u, .model = -1};
    return !folds(E, n) && ev_eval(&env, n).kind == EV_ERROR;
  }
  if ((n->a && can_fail(E, n->a)) || (n->b && can_fail(E, n->b)) || (n->c && can_fail(E, n->c)))
    return 1;
  for (int i = 0; i < n->list.n; i++)
    if (can_fail(E, n->list.v[i])) return 1;
  return raises_here(n);
}

/* CEL's && and || are commutative: an error on one side is absorbed when
 * the other side decides (false && error is false, true || error is
 * true). Evaluating first the side that cannot fail and short-circuiting
 * gives exactly that whenever at most one side can raise an error. When
 * both can, the left side runs under a TRY and the right side once, with
 * a flag saying whether the left raised; OR_E/AND_E then decide:
 *
 *     TRY h; <a>; ENDTRY; JT_KEEP end; PUSH_B 0; JMP b
 *  h: PUSH_B 1
 *  b: <b>; OR_E
 *  end:                                  (&&: JF_KEEP and AND_E) */
static void emit_logic(emitter *E, const ast_node *n) {
  const ast_node *first = n->a, *second = n->b;
  int is_and = n->op == OP_AND, fa = can_fail(E, first), fb = can_fail(E, second);
  if (fa && !fb) { first = n->b; second = n->a; }
  if (!(fa && fb)) {
    emit_expr(E, first);
    int j = emit(E, is_and ? BC_OP_JF_KEEP : BC_OP_JT_KEEP, 0, 0, 0);
    emit_expr(E, second);
    patch(E, j);
    return;
  }
  if (E->ntry >= BC_MAX_TRY) {
    char lim[16];
    snprintf(lim, sizeof lim, "%d", BC_MAX_TRY);
    fail(E, n->span, "this condition nests more than %s '&&' and '||' whose both "
         "sides can raise an error; split it or guard the operations that can "
         "fail", lim);
    return;
  }
  int t = emit(E, BC_OP_TRY, 0, 0, 0);
  E->ntry++;
  emit_expr(E, first);
  E->ntry--;
  emit(E, BC_OP_ENDTRY, 0, 0, 0);
  int jend = emit(E, is_and ? BC_OP_JF_KEEP : BC_OP_JT_KEEP, 0, 0, 0);
  emit(E, BC_OP_PUSH_B, 0, 0, 0);
  int jb = emit(E, BC_OP_JMP, 0, 0, 0);
  patch(E, t);
  emit(E, BC_OP_PUSH_B, 1, 0, 0);
  patch(E, jb);
  emit_expr(E, second);
  emit(E, is_and ? BC_OP_AND_E : BC_OP_OR_E, 0, 0, 0);
  patch(E, jend);
}

static void emit_binary(emitter *E, const ast_node *n) {
  if (n->op == OP_AND || n->op == OP_OR) { emit_logic(E, n); return; }
  if (n->op == OP_IN) { emit_in(E, n); return; }
  if (n->refkind == RK_HETERO) {   /* the sides only for their errors */
    const ast_node *side[2] = {n->a, n->b};
    for (int i = 0; i < 2; i++)
      if (sema_ty_mtype(side[i]->type) && can_fail(E, side[i])) {
        emit_expr(E, side[i]);
        emit(E, BC_OP_POP, sema_ty_mtype(side[i]->type), 0, 0);
      }
    emit(E, BC_OP_PUSH_B, n->op == OP_NE, 0, 0);
    return;
  }
  sema_plan p = sema_binplan(n->op, n->a->type, n->b->type);
  if (p.op < 0) {
    fail(E, n->span, "this operation on %s is supported only on constants",
         sema_ty_name(n->a->type));
    return;
  }
  emit_expr(E, n->a);
  if (p.lconv != 0xFF) emit(E, p.lconv, 0, 0, 0);
  emit_expr(E, n->b);
  if (p.rconv != 0xFF) emit(E, p.rconv, 0, 0, 0);
  emit(E, p.op, 0, 0, 0);
}

static void emit_mprop(emitter *E, const ast_node *n) {
  int p = n->ref;
  if (p >= MP_CAP) { emit(E, BC_OP_M_CAP, 0, 0, (uint32_t)(p - MP_CAP)); return; }
  /* p < MP_CAP here: a property of BC_MPROPS (cppcheck misses the return) */
  // cppcheck-suppress arrayIndexOutOfBoundsCond
  if (bc_mprops[p].op == BC_OP_NONE) {   /* tags */
    fail(E, n->span, "'%s' can be tested only where the rest of the condition is "
         "known at compile time", bc_mprops[p].name);
    return;
  }
  emit(E, bc_mprops[p].op, bc_mprops[p].mf >= 0 ? bc_mprops[p].mf : 0, 0, 0);
}

/* The opcode math.greatest or math.least (call n) folds its arguments
 * with, or -1 where only folding computes it (types that differ, a
 * list). */
static int minmax_op(const ast_node *n) {
  int fn = sema_builtins[n->ref].fn;
  if (fn != BF_GREATEST && fn != BF_LEAST) return -1;
  for (int i = 0; i < n->list.n; i++)
    if (n->list.v[i]->type != n->type) return -1;
  switch (sema_ty_mtype(n->type)) {
  case LANE_T_INT: return fn == BF_GREATEST ? BC_OP_MAX_I : BC_OP_MIN_I;
  case LANE_T_UINT: return fn == BF_GREATEST ? BC_OP_MAX_U : BC_OP_MIN_U;
  case LANE_T_DOUBLE: return fn == BF_GREATEST ? BC_OP_MAX_D : BC_OP_MIN_D;
  default: return -1;
  }
}

/* Whether n reads a model (a property, a capability, cost, fits ...). */
static int reads_model(const ast_node *n) {
  if (n->refkind == RK_MPROP && (n->kind == N_IDENT || n->kind == N_SELECTOR)) return 1;
  if ((n->a && reads_model(n->a)) || (n->b && reads_model(n->b)) || (n->c && reads_model(n->c)))
    return 1;
  for (int i = 0; i < n->list.n; i++)
    if (reads_model(n->list.v[i])) return 1;
  return 0;
}

/* The iteration region of macro n (all, exists, exists_one over a
 * request's map): its condition, ending in IRET, emitted once in icode
 * and shared by every ITER that runs it (route code, explain regions).
 * Inner macros' regions are emitted first, so a region runs only regions
 * before it (the loader's rule). Returns its index among the iteration
 * regions, linked after the filters CAND names. */
static uint32_t iter_region(emitter *E, const ast_node *n, int field) {
  for (int i = 0; i < E->nimemo; i++)
    if (E->imemo[i].n == n) return E->imemo[i].reg;
  const ast_node *pred = n->list.v[n->list.n - 1];
  if (E->nact >= BC_MAX_ITER) {
    fail(E, n->span, "macros over a request's map nest more than %d deep", BC_MAX_ITER);
    return 0;
  }
  if (reads_model(pred)) {
    fail(E, pred->span, "a macro over a request's map cannot read a model's properties; move "
         "that test out of it%s", "");
    return 0;
  }
  cbuf tmp = {0}, *saved = E->cur;
  int ntry = E->ntry, line = E->line, two = n->list.n == 3, xfail = E->xfail;
  E->xfail = 0;   /* an explain region's failure inside: this region is not kept */
  E->act[E->nact].n = n;
  E->act[E->nact].base = n->list.v[0]->ref;
  E->act[E->nact].nvars = two ? 2 : 1;
  E->act[E->nact].field = field;
  E->nact++;
  E->cur = &tmp;
  E->ntry = 0;
  emit_expr(E, pred);
  emit(E, BC_OP_IRET, 0, 0, 0);
  E->nact--;
  E->ntry = ntry;
  if (E->fail || E->xfail) {   /* reported, or reported when the route's code is emitted */
    E->xfail = E->xmode ? 1 : xfail;
    free(tmp.v);
    free(tmp.line);
    E->cur = saved;
    E->line = line;
    return 0;
  }
  E->xfail = xfail;
  E->cur = &E->icode;
  uint32_t start = (uint32_t)here(E);
  for (int i = 0; i < tmp.n && !E->fail; i++) {   /* jumps stay relative to the region */
    E->line = (int)tmp.line[i];
    emit(E, tmp.v[i].op, tmp.v[i].a, tmp.v[i].b, tmp.v[i].c);
  }
  free(tmp.v);
  free(tmp.line);
  E->cur = saved;
  E->line = line;
  bc_filter f = {start, (uint32_t)here_of(&E->icode)};
  APPEND(E, E->ireg, E->nireg, E->capireg, f);
  if (E->fail) return 0;
  if (E->nimemo >= E->capimemo) {
    int nc = E->capimemo ? 2 * E->capimemo : 8;
    void *m = realloc(E->imemo, (size_t)nc * sizeof *E->imemo);
    if (!m) { E->fail = 1; E->u->ctx.nomem = 1; return 0; }
    E->imemo = m;
    E->capimemo = nc;
  }
  E->imemo[E->nimemo].n = n;
  E->imemo[E->nimemo++].reg = E->nireg - 1;
  return E->nireg - 1;
}

/* A macro's variable, read in its iteration region: the entry of the ITER
 * at its macro's depth. */
static void emit_var(emitter *E, const ast_node *n) {
  for (int d = E->nact - 1; d >= 0; d--)
    if (n->ref >= E->act[d].base && n->ref < E->act[d].base + E->act[d].nvars) {
      /* a map's one variable is its key; a list's its item (with two:
       * the index, then the item) */
      int list = (E->u->fields[E->act[d].field].ty & TY_LIST) != 0;
      int which = n->ref - E->act[d].base + (list && E->act[d].nvars == 1);
      emit(E, BC_OP_MVAR, d, which, (uint32_t)E->act[d].field);
      return;
    }
  fail(E, n->span, "'%s' is a macro's variable, known only while the macro runs", n->name);
}

/* size(x) or x.size() of what the VM counts without a list: a request's
 * map or list (MAP_SIZE), s.split(sep) (S_SPLIT_N), filter() over a
 * request's map or list (ITER_N). 0 for anything else (a string's size is
 * an ordinary opcode). */
static int emit_size(emitter *E, const ast_node *n, const ast_node *x) {
  if (sema_builtins[n->ref].op == BC_OP_MAP_SIZE && !is_map_field(x)) {
    fail(E, n->span, "size() of a map needs a request's map field or a constant map%s", "");
    return 1;
  }
  if (is_map_field(x) || is_list_field(x)) {   /* size(req.m), size(req.tags) */
    emit(E, BC_OP_MAP_SIZE, 0, 0, (uint32_t)x->ref);
    return 1;
  }
  if (is_split(x)) {   /* s.split(sep).size() */
    if (emit_split_args(E, x)) emit(E, BC_OP_S_SPLIT_N, 0, 0, 0);
    return 1;
  }
  if (is_field_filter(x)) {   /* a count */
    uint32_t r = iter_region(E, x, x->a->ref);
    emit(E, BC_OP_ITER_N, 0, (int)r + 1, (uint32_t)x->a->ref);
    return 1;
  }
  return 0;
}

static void emit_call(emitter *E, const ast_node *n) {
  const sema_builtin *b = &sema_builtins[n->ref];
  if (b->fn == BF_SIZE && emit_size(E, n, n->a ? n->a : n->list.v[0])) return;
  if ((b->fn == BF_ALL || b->fn == BF_EXISTS || b->fn == BF_EXISTS_ONE) &&
      (is_map_field(n->a) || is_list_field(n->a))) {
    uint32_t r = iter_region(E, n, n->a->ref);
    emit(E, BC_OP_ITER, b->fn == BF_ALL ? 0 : b->fn == BF_EXISTS ? 1 : 2, (int)r + 1,
         (uint32_t)n->a->ref);
    return;
  }
  if (b->fn >= BF_ALL && b->fn <= BF_TMAP && (is_map_field(n->a) || is_list_field(n->a))) {
    fail(E, n->span, "%s() of a request's map or list makes a list or a map, which lane has "
         "only as constants; test the entries with all(), exists() or exists_one(), or count "
         "them with size() of filter()", b->name);
    return;
  }
  if (b->fn == BF_GREATEST || b->fn == BF_LEAST) {
    int op = minmax_op(n);
    if (op < 0) {
      fail(E, n->span, "%s() of values of different types is supported only on constants", b->name);
      return;
    }
    for (int i = 0; i < n->list.n; i++) {
      emit_expr(E, n->list.v[i]);
      if (i) emit(E, op, 0, 0, 0);
    }
    return;
  }
  if (b->fn == BF_JOIN && is_list_field(n->a)) {   /* req.tags.join(sep) */
    if (n->list.n) emit_expr(E, n->list.v[0]);
    else emit(E, BC_OP_PUSH_S, 0, 0, str_index(E, "", 0));
    emit(E, BC_OP_LIST_JOIN, 0, 0, (uint32_t)n->a->ref);
    return;
  }
  if (b->op == -1) {
    fail(E, n->span, "%s() of a value known only at run time is not supported", b->name);
    return;
  }
  if (b->fn == BF_HAS && n->list.v[0]->refkind == RK_MAPKEY) {   /* has(req.m.k) */
    const ast_node *f = n->list.v[0];
    if (!is_map_field(f->a)) {
      fail(E, n->span, "has() of a map's key needs a request's map field or a constant map%s", "");
      return;
    }
    emit(E, BC_OP_PUSH_S, 0, 0, str_index(E, f->name, strlen(f->name)));
    emit(E, BC_OP_MAP_HAS, 0, 0, (uint32_t)f->a->ref);
    return;
  }
  if (b->fn == BF_HAS) {   /* the field's presence, not its value */
    emit(E, BC_OP_HAS, 0, 0, (uint32_t)n->list.v[0]->ref);
    return;
  }
  if (b->fn == BF_MATCHES) {   /* the pattern is an operand: a slot, compiled at load */
    const ast_node *subject = n->a ? n->a : n->list.v[0], *pat = n->list.v[n->list.n - 1];
    ev_env env = {.u = E->u, .model = -1};
    ev_val v = ev_eval(&env, pat);
    if (v.kind != EV_OK) {
      fail(E, pat->span, "matches() needs a constant pattern%s", "");
      return;
    }
    uint32_t str = str_index(E, v.s, v.n), slot = 0;
    while (slot < E->npat && E->pat[slot] != str) slot++;
    if (slot == E->npat) {
      if (E->npat == 65535) {
        fail(E, pat->span, "more than 65535 patterns in one program%s", "");
        return;
      }
      APPEND(E, E->pat, E->npat, E->cappat, str);
    }
    emit_expr(E, subject);
    emit(E, BC_OP_S_MATCH, 0, (int)slot, str);
    return;
  }
  if (b->fn == BF_TSPART || b->fn == BF_DURPART) {   /* the zone is an operand, not a value */
    const char *rule = b->fn == BF_TSPART && n->list.n ? n->list.v[0]->text : NULL;
    emit_expr(E, n->a);
    emit(E, b->op, sema_ts_part(b->name), 0, rule ? str_index(E, rule, strlen(rule)) : BC_NONE);
    return;
  }
  if (n->a) emit_expr(E, n->a);
  for (int i = 0; i < n->list.n; i++) emit_expr(E, n->list.v[i]);
  if (b->op >= 0) emit(E, b->op, 0, 0, 0);
}

/* The smallest subexpression of n that raises the error n raises. */
static const ast_node *error_site(const ev_env *env, const ast_node *n) {
  const ast_node *kids[3] = {n->a, n->b, n->c};
  for (int i = 0; i < 3; i++)
    if (kids[i] && ev_eval(env, kids[i]).kind == EV_ERROR) return error_site(env, kids[i]);
  for (int i = 0; i < n->list.n; i++)
    if (ev_eval(env, n->list.v[i]).kind == EV_ERROR) return error_site(env, n->list.v[i]);
  return n;
}

/* Errors are reported and emission goes on, so one run finds them all; the
 * bytes are not encoded once any was reported (E->fail). */
static void emit_expr(emitter *E, const ast_node *n) {
  if (E->u->ctx.nomem) return;
  int saved = E->line;
  if (n->span.line) E->line = n->span.line;
  ev_env env = {.u = E->u, .model = -1};
  ev_val v = folds(E, n) ? ev_eval(&env, n) : (ev_val){.kind = EV_UNKNOWN};
  if (v.kind == EV_ERROR) {
    fail(E, error_site(&env, n)->span, "%s", v.err);
  } else if (v.kind == EV_OK && !(v.ty & TY_LIST)) {
    emit_const(E, n, &v);
  } else switch (n->kind) {
  case N_IDENT:
    if (n->refkind == RK_NOW) emit(E, BC_OP_NOW, 0, 0, 0);
    else if (n->refkind == RK_VAR) emit_var(E, n);
    else if (n->refkind == RK_MPROP) emit_mprop(E, n);
    else fail(E, n->span, "'%s' cannot be used at run time", n->name);
    break;
  case N_SELECTOR:
    if (n->refkind == RK_FIELD) emit(E, BC_OP_LOAD, 0, 0, (uint32_t)n->ref);
    else if (n->refkind == RK_BUDGET) emit(E, BC_OP_BUDGET, n->ref & 3, 0, (uint32_t)(n->ref >> 2));
    else if (n->refkind == RK_MAPKEY && is_map_field(n->a)) {   /* req.m.k */
      emit(E, BC_OP_PUSH_S, 0, 0, str_index(E, n->name, strlen(n->name)));
      emit(E, BC_OP_MAP_GET, 0, 0, (uint32_t)n->a->ref);
    }
    else fail(E, n->span, "'%s' cannot be used at run time", n->name);
    break;
  case N_CALL: emit_call(E, n); break;
  case N_UNARY:
    emit_expr(E, n->a);
    if (n->op == OP_NOT) emit(E, BC_OP_NOT, 0, 0, 0);
    else emit(E, sema_ty_mtype(n->type) == LANE_T_DOUBLE ? BC_OP_NEG_D : BC_OP_NEG_I, 0, 0, 0);
    break;
  case N_BINARY: emit_binary(E, n); break;
  case N_COND: {
    emit_expr(E, n->a);
    int jf = emit(E, BC_OP_JF, 0, 0, 0);
    emit_expr(E, n->b);
    int jend = emit(E, BC_OP_JMP, 0, 0, 0);
    patch(E, jf);
    emit_expr(E, n->c);
    patch(E, jend);
    break;
  }
  case N_INDEX:
    if (is_map_field(n->a) || is_list_field(n->a)) {   /* req.m[k], req.tags[i] */
      emit_expr(E, n->b);
      if (is_list_field(n->a) && sema_ty_mtype(n->b->type) == LANE_T_UINT) emit(E, BC_OP_U2I, 0, 0, 0);
      emit(E, is_map_field(n->a) ? BC_OP_MAP_GET : BC_OP_LIST_GET, 0, 0, (uint32_t)n->a->ref);
      break;
    }
    if (is_split(n->a)) {   /* s.split(sep)[i] */
      if (!emit_split_args(E, n->a)) break;
      emit_expr(E, n->b);
      if (sema_ty_mtype(n->b->type) == LANE_T_UINT) emit(E, BC_OP_U2I, 0, 0, 0);
      emit(E, BC_OP_S_SPLIT_GET, 0, 0, 0);
      break;
    }
    fail(E, n->span, "a list can be indexed only where list and index are constants%s", "");
    break;
  default:
    fail(E, n->span, "a %s value can be used only on the right of 'in' or in constants",
         sema_ty_name(n->type));
    break;
  }
  E->line = saved;
}

/* ---- pools and filters ---- */

typedef struct condset { const ast_node *v[64]; int n; } condset;


/* Adds a condition, split at its top-level &&s, so that each conjunct is
 * decided per model on its own and a static one never reaches the filter
 * code. Splitting keeps CEL's meaning: false in any conjunct wins. */
static void add_cond(emitter *E, condset *cs, const ast_node *c) {
  if (c->kind == N_BINARY && c->op == OP_AND) {
    add_cond(E, cs, c->a);
    add_cond(E, cs, c->b);
    return;
  }
  if (cs->n == 64) {
    fail(E, c->span, "a selection has more than 64 conditions joined by '&&' (its route's "
         "requires and its pools' included); the limit is 64: move some into a named pool "
         "that %s", "fewer selections share, or merge them");
    return;
  }
  cs->v[cs->n++] = c;
}

/* Gathers the conditions of a pool expression, named pools first. */
static void pool_conds(emitter *E, const ast_node *p, condset *cs, int depth) {
  if (depth > 64) {   /* not silently: the pools below would lose their conditions */
    fail(E, p->span, "pools are defined in terms of pools more than 64 deep; the limit is %d",
         64);
    return;
  }
  if (p->name && p->ref >= 0) pool_conds(E, E->u->pools[p->ref].def, cs, depth + 1);
  if (p->a) add_cond(E, cs, p->a);
}

/* Emits a filter region for conditions cs[keep]; returns its index. */
static uint32_t emit_filter(emitter *E, const condset *cs, const int *keep) {
  cbuf *saved = E->cur;
  E->cur = &E->filt;
  int start = here(E);
  int jumps[64], nj = 0;
  int first = 1;
  for (int i = 0; i < cs->n; i++) {
    if (!keep[i]) continue;
    if (!first) jumps[nj++] = emit(E, BC_OP_JF_KEEP, 0, 0, 0);
    emit_expr(E, cs->v[i]);
    first = 0;
  }
  for (int i = 0; i < nj; i++) patch(E, jumps[i]);
  emit(E, BC_OP_FRET, 0, 0, 0);
  bc_filter f = {(uint32_t)start, (uint32_t)here(E)};
  E->cur = saved;
  APPEND(E, E->im.filters, E->im.nfilters, E->capfilters, f);
  return E->im.nfilters - 1;
}

/* Pre-sorts a best() pool by quality, descending; insertion sort keeps
 * declaration order among equals, so ties still go to the earlier model. */
static void sort_by_quality(emitter *E, const bc_pool *pool) {
  if (pool->count < 2) return;   /* an empty pool may have no members array */
  uint32_t *m = E->im.members + pool->first;
  const sema_model *md = E->u->models;
  for (uint32_t i = 1; i < pool->count; i++) {
    uint32_t v = m[i], j = i;
    double q = md[v & BC_MEMBER_MODEL].quality;
    for (; j > 0 && md[m[j - 1] & BC_MEMBER_MODEL].quality < q; j--) m[j] = m[j - 1];
    m[j] = v;
  }
}

/* Whether condition n reads `tags`, which only the compiler can test. */
static int mentions_tags(const ast_node *n) {
  if (n->kind == N_IDENT && n->refkind == RK_MPROP && n->ref == MP_TAGS) return 1;
  if ((n->a && mentions_tags(n->a)) || (n->b && mentions_tags(n->b)) ||
      (n->c && mentions_tags(n->c)))
    return 1;
  for (int i = 0; i < n->list.n; i++)
    if (mentions_tags(n->list.v[i])) return 1;
  return 0;
}

/* ---- explain tables (bc.h, "Explanations") ----
 *
 * Each condition a rule tests or a member must pass becomes a tree of
 * nodes whose leaves and shown operands are explain regions: the same
 * code emit_expr writes for the condition, ending in XRET, which only
 * explanations run. Nodes and regions are interned by their bytes, so a
 * condition that many rules or selections share (a route's requires,
 * `req.tier`) is stored once. */

_Static_assert(sizeof(bc_xnode) == BC_RECORD_XNODES, "bc_xnode has no padding");
_Static_assert(sizeof(bc_insn) == BC_RECORD_CODE, "bc_insn has no padding");

/* The explain region computing n as machine type `type`, or BC_NONE when
 * n has no code (a `tags` test, decided at compile time). */
static uint32_t xregion(emitter *E, const ast_node *n, int type) {
  cbuf *saved = E->cur;
  int ntry = E->ntry, line = E->line;
  E->cur = &E->xcode;
  E->xmode = 1;
  E->xfail = 0;
  E->ntry = 0;
  uint32_t start = (uint32_t)here(E);
  emit_expr(E, n);
  if (n->span.line) E->line = n->span.line;
  emit(E, BC_OP_XRET, type, 0, 0);
  uint32_t end = (uint32_t)here(E);
  int failed = E->xfail || E->fail;
  E->cur = saved;
  E->xmode = 0;
  E->ntry = ntry;
  E->line = line;
  if (failed) {
    E->xcode.n = (int)start;
    /* A constant that folds to an error (`x + 1` at INT64_MAX) has no
     * constant to push: the VM computes it, and raises that error, as
     * with -O0. Only `tags`, which the VM cannot read, has no code. */
    if (E->no_opt || E->fail) return BC_NONE;
    E->no_opt = 1;
    uint32_t k = xregion(E, n, type);
    E->no_opt = 0;
    return k;
  }
  for (uint32_t pc = start; pc < end; pc++)   /* jumps relative to the region */
    if (bc_ops[E->xcode.v[pc].op].fmt == BC_FMT_JUMP) E->xcode.v[pc].c -= start;
  if (kgrow(E, K_XREG)) return BC_NONE;
  bc_filter f = {start, end};
  APPEND(E, E->xreg, E->nxreg, E->capxreg, f);
  if (E->fail) return BC_NONE;
  uint32_t *slot = kslot(E, K_XREG, &E->xcode.v[start], (end - start) * sizeof(bc_insn));
  if (*slot) {   /* the same code is there: drop this copy */
    E->nxreg--;
    E->xcode.n = (int)start;
    return *slot - 1;
  }
  *slot = E->nxreg;
  return E->nxreg - 1;
}

/* The start of every line of a source file, found once per file, so that
 * quoting a condition costs its line's length, not the file's. */
typedef struct xlines {
  const src_file *file;
  const char    **start;   /* line k (1-based) starts at start[k - 1] */
  int             n;
} xlines;

static const char *source_line(emitter *E, const ast_span *sp, size_t *len) {
  xlines *x = NULL;
  for (int i = 0; i < E->nlines_files && !x; i++)
    if (E->lines[i].file == sp->file) x = &E->lines[i];
  if (!x) {
    xlines *v = realloc(E->lines, (size_t)(E->nlines_files + 1) * sizeof *v);
    if (!v) { E->fail = 1; E->u->ctx.nomem = 1; return NULL; }
    E->lines = v;
    x = &v[E->nlines_files];
    memset(x, 0, sizeof *x);
    const char *t = sp->file->text, *end = t ? t + sp->file->len : NULL;
    int n = 1;
    for (const char *q = t; q && q < end; q++) n += *q == '\n';
    x->start = t ? malloc((size_t)n * sizeof *x->start) : NULL;
    if (t && !x->start) { E->fail = 1; E->u->ctx.nomem = 1; return NULL; }
    E->nlines_files++;
    x->file = sp->file;
    if (t) {
      x->start[x->n++] = t;
      for (const char *q = t; q < end; q++)
        if (*q == '\n') x->start[x->n++] = q + 1;
    }
  }
  if (sp->line < 1 || sp->line > x->n) return NULL;
  const char *p = x->start[sp->line - 1], *end = sp->file->text + sp->file->len;
  const char *q = memchr(p, '\n', (size_t)(end - p));
  if (!q) q = end;
  if (q > p && q[-1] == '\r') q--;
  *len = (size_t)(q - p);
  return p;
}

static uint32_t xnode(emitter *E, int kind, int unit, const ast_node *n, uint32_t region,
                      uint32_t a, uint32_t b) {
  char text[SEM_SRC_MAX];
  size_t len = 0;
  const char *line = n->span.file ? source_line(E, &n->span, &len) : NULL;
  if (line || !n->span.file) sema_node_text(n, line, len, text, sizeof text);
  else snprintf(text, sizeof text, "(expression)");
  bc_xnode x;
  memset(&x, 0, sizeof x);
  x.kind = (uint8_t)kind;
  x.unit = (uint8_t)unit;
  x.text = cstr(E, text);
  x.region = region;
  x.a = a;
  x.b = b;
  if (E->fail || kgrow(E, K_XNODE)) return BC_NONE;
  APPEND(E, E->im.xnodes, E->im.nxnodes, E->capxnodes, x);
  if (E->fail) return BC_NONE;
  uint32_t *slot = kslot(E, K_XNODE, &x, sizeof x);
  if (*slot) { E->im.nxnodes--; return *slot - 1; }
  *slot = E->im.nxnodes;
  return E->im.nxnodes - 1;
}

/* The tree of boolean condition n, or BC_NONE if part of it has no code. */
static uint32_t xtree(emitter *E, const ast_node *n) {
  if ((n->kind == N_BINARY && (n->op == OP_AND || n->op == OP_OR)) ||
      (n->kind == N_UNARY && n->op == OP_NOT)) {
    uint32_t a = xtree(E, n->a), b = n->kind == N_BINARY ? xtree(E, n->b) : BC_NONE;
    if (a == BC_NONE || (n->kind == N_BINARY && b == BC_NONE)) return BC_NONE;
    int kind = n->kind == N_UNARY ? BC_X_NOT : n->op == OP_AND ? BC_X_AND : BC_X_OR;
    return xnode(E, kind, 0, n, BC_NONE, a, b);
  }
  uint32_t r = xregion(E, n, LANE_T_BOOL), side[2] = {BC_NONE, BC_NONE};
  if (r == BC_NONE) return BC_NONE;
  if (n->kind == N_BINARY && n->op >= OP_EQ && n->op <= OP_IN) {
    const ast_node *op[2] = {n->a, n->b};
    for (int i = 0; i < 2; i++) {   /* a literal is not shown: its text says it */
      int unit = sema_ty_unit(op[i]->type);
      if (op[i]->is_const || !unit) continue;
      uint32_t v = xregion(E, op[i], sema_ty_mtype(op[i]->type));
      if (v != BC_NONE) side[i] = xnode(E, BC_X_VALUE, unit, op[i], v, BC_NONE, BC_NONE);
    }
  }
  return xnode(E, BC_X_LEAF, 0, n, r, side[0], side[1]);
}

static int mentions_tags(const ast_node *n);

/* A condition a member must pass: split at its top-level &&s, as a
 * filter is; a conjunct on `tags`, decided at compile time, passes every
 * member that reaches it. */
static uint32_t xcond(emitter *E, const ast_node *n) {
  if (n->kind == N_BINARY && n->op == OP_AND) {
    uint32_t a = xcond(E, n->a), b = xcond(E, n->b);
    return a == BC_NONE || b == BC_NONE ? BC_NONE : xnode(E, BC_X_AND, 0, n, BC_NONE, a, b);
  }
  uint32_t t = mentions_tags(n) ? BC_NONE : xtree(E, n);
  return t != BC_NONE ? t : xnode(E, BC_X_PASS, 0, n, BC_NONE, BC_NONE, BC_NONE);
}

/* The conditions of the CAND being emitted, for its place in the rule. */
static void xsel(emitter *E, const condset *cs) {
  bc_xsel x = {E->xrule, E->xplace++, E->im.nxlist, 0};
  for (int i = 0; i < cs->n && !E->fail; i++) {
    uint32_t k = xcond(E, cs->v[i]);
    if (k == BC_NONE) return;   /* out of memory: E->fail */
    APPEND(E, E->im.xlist, E->im.nxlist, E->capxlist, k);
    x.count++;
  }
  APPEND(E, E->im.xsels, E->im.nxsels, E->capxsels, x);
}

/* Emits CAND for the models in base (-1: all) that may pass cs. */
/* Whether condition c is the bare model property `fits` or `healthy`: the
 * VM checks those natively on every member (BC_CAND_*), no filter needed. */
static int native_check(const emitter *E, const ast_node *c) {
  if (E->no_opt || c->kind != N_IDENT || c->refkind != RK_MPROP) return 0;
  return c->ref == MP_FITS ? (int)BC_CAND_FITS : c->ref == MP_HEALTHY ? (int)BC_CAND_HEALTHY : 0;
}

static void emit_cand(emitter *E, int order, int only_model, const condset *cs, ast_span sp) {
  sema_unit *u = E->u;
  int keep[64] = {0};
  int nchecked = 0, native = 0;
  bc_pool pool = {E->im.nmembers, 0};
  for (int i = 0; i < cs->n; i++) native |= native_check(E, cs->v[i]);
  for (int m = 0; m < u->nmodels; m++) {
    if (only_model >= 0 && m != only_model) continue;
    ev_env env = {.u = u, .model = m};
    int out = 0, check = 0, needs[64];
    for (int i = 0; i < cs->n && !out; i++) {
      if (native_check(E, cs->v[i])) { needs[i] = 0; continue; }   /* in CAND */
      if (E->no_opt && !mentions_tags(cs->v[i])) {   /* decided by the VM */
        needs[i] = check = 1;
        continue;
      }
      ev_val v = ev_eval(&env, cs->v[i]);
      needs[i] = v.kind == EV_UNKNOWN;
      if (v.kind == EV_ERROR || (v.kind == EV_OK && !v.v.i)) out = 1;
      check |= needs[i];
    }
    if (out) continue;
    uint32_t member = (uint32_t)m | (check ? BC_MEMBER_CHECK : 0);
    APPEND(E, E->im.members, E->im.nmembers, E->capmembers, member);
    if (E->fail) return;   /* out of memory: the pool is not all there */
    pool.count++;
    if (check) {
      nchecked++;
      for (int i = 0; i < cs->n; i++) keep[i] |= needs[i];
    }
  }
  if (order == BC_ORD_BEST) sort_by_quality(E, &pool);
  APPEND(E, E->im.pools, E->im.npools, E->cappools, pool);
  uint32_t filter = nchecked ? emit_filter(E, cs, keep) + 1 : 0;
  int saved = E->line;
  E->line = sp.line;
  emit(E, BC_OP_CAND, order | native, (int)filter, E->im.npools - 1);
  E->line = saved;
  xsel(E, cs);
}

/* ---- routes ---- */

static void emit_target(emitter *E, const sema_route *r, const ast_node *t);

static void route_conds(emitter *E, const sema_route *r, condset *cs) {
  for (int i = 0; i < r->requires.n; i++) add_cond(E, cs, r->requires.v[i]->a);
}

static void emit_split(emitter *E, const sema_route *r, const ast_node *t) {
  int cum = 0, last = sema_split_last(t), nends = 0;
  /* one jump to the end per arm but the last: as many as the split has
   * (a fixed 64 used to drop every arm past the 64th, silently) */
  int *ends = malloc((size_t)(t->list.n ? t->list.n : 1) * sizeof *ends);
  if (!ends) { E->fail = 1; E->u->ctx.nomem = 1; return; }
  for (int i = 0; i <= last; i++) {
    const ast_node *arm = t->list.v[i];
    if (arm->ref == 0) continue;
    cum += arm->ref;
    int jf = -1;
    if (i != last) {
      emit_expr(E, t->a);
      emit(E, t->a->type == TY_STRING ? BC_OP_BUCKET_S
              : t->a->type == TY_UINT ? BC_OP_BUCKET_U : BC_OP_BUCKET_I, 0, 0, 0);
      emit(E, BC_OP_PUSH_D, 0, 0, kdbl_index(E, (double)cum / 100.0));
      emit(E, BC_OP_LT_D, 0, 0, 0);
      jf = emit(E, BC_OP_JF, 0, 0, 0);
    }
    emit_target(E, r, arm->a);
    if (i != last) {
      ends[nends++] = emit(E, BC_OP_JMP, 0, 0, 0);
      patch(E, jf);
    }
  }
  for (int i = 0; i < nends; i++) patch(E, ends[i]);
  free(ends);
}

static void emit_target(emitter *E, const sema_route *r, const ast_node *t) {
  int saved = E->line;
  E->line = t->span.line;
  condset cs;
  cs.n = 0;
  switch (t->kind) {
  case N_MODELREF:
    route_conds(E, r, &cs);
    emit_cand(E, BC_ORD_LISTED, t->ref, &cs, t->span);
    break;
  case N_SELECT: {
    static const int ord[] = {0, BC_ORD_CHEAPEST, BC_ORD_FASTEST, BC_ORD_BEST};
    route_conds(E, r, &cs);
    pool_conds(E, t->a, &cs, 0);
    emit_cand(E, ord[t->op], -1, &cs, t->span);
    break;
  }
  case N_SPLIT: emit_split(E, r, t); break;
  case N_SHADOW: emit(E, BC_OP_SHADOW, 0, t->op, (uint32_t)t->ref); break;
  default: break;
  }
  E->line = saved;
}

/* ---- the rule index ----
 *
 * A run of consecutive rules that each test one string field against a
 * constant (`req.tenant == "acme" && ...`) is indexed: a SWITCH at the run's
 * first rule jumps straight to the first rule whose constant equals the
 * field's value, and every rule of the run, when it does not decide, jumps
 * to the next rule with the same constant. First-match order is kept, and
 * a decision touches only the rules that can match. */
#define INDEX_MIN 4   /* shorter runs are cheaper to test in order */

typedef struct rule_key { int field; const char *s; size_t n; } rule_key;

/* The field and constant of a rule's top-level `req.F == "K"` conjunct on
 * field want (any field when want < 0); 0 if none. */
static int key_of(const ast_node *c, int want, rule_key *k) {
  if (c->kind == N_BINARY && c->op == OP_AND)
    return key_of(c->a, want, k) || key_of(c->b, want, k);
  if (c->kind != N_BINARY || c->op != OP_EQ) return 0;
  const ast_node *f = c->a, *v = c->b;
  if (f->is_const) { f = c->b; v = c->a; }
  if (f->kind != N_SELECTOR || f->refkind != RK_FIELD || f->type != TY_STRING ||
      !v->is_const || v->kind != N_STRING || (want >= 0 && f->ref != want))
    return 0;
  k->field = f->ref;
  k->s = v->str;
  k->n = v->len;
  return 1;
}

static int key_eq(const rule_key *a, const rule_key *b) {
  return sem_bytes_eq(a->s, a->n, b->s, b->n);
}

static int key_cmp(const void *pa, const void *pb) {
  const rule_key *a = pa, *b = pb;
  return sem_bytes_cmp(a->s, a->n, b->s, b->n);   /* the SWITCH's order */
}

/* Per rule of a route: the end of its indexed run (0 when not indexed),
 * its key, and where it goes when it does not decide. */
typedef struct rule_plan {
  int      run_end;    /* first rule after its run; 0: not in a run */
  rule_key key;        /* its constant */
  int      next;       /* next rule with the same key, or run_end */
} rule_plan;

/* Whether rule ri can be indexed on field want (any when < 0). A condition
 * that can raise a runtime error is not: skipping it when its key does not
 * match would hide an error that evaluating it in order reports (`a / b > 1
 * && req.tier == "x"` raises its error before the key is tested), and the
 * index must change nothing a decision reports. */
static int indexable(const ast_node *ri, int want, rule_key *k) {
  return ri->kind == N_WHEN && key_of(ri->a, want, k) && !raises(ri->a);
}

/* Rules [i,j) sorted by key, then by number: each rule's next is the
 * one after it in its key's group. n log n, where comparing every pair
 * took a 10,000-rule route half its compile time. -1 when memory ran out. */
typedef struct keyed { rule_key key; int rule; } keyed;

static int by_key(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  int c = key_cmp(&a->key, &b->key);
  return c ? c : (a->rule > b->rule) - (a->rule < b->rule);
}

static int link_same_keys(rule_plan *pl, int i, int j) {
  keyed *v = malloc((size_t)(j - i) * sizeof *v);
  if (!v) return -1;
  for (int a = i; a < j; a++) v[a - i] = (keyed){pl[a].key, a};
  qsort(v, (size_t)(j - i), sizeof *v, by_key);
  for (int k = 0; k + 1 < j - i; k++)
    if (key_eq(&v[k].key, &v[k + 1].key)) pl[v[k].rule].next = v[k + 1].rule;
  free(v);
  return 0;
}

static int plan_index(const sema_route *r, rule_plan *pl) {
  int n = r->rules.n;
  for (int i = 0; i < n; i++) pl[i].next = i + 1;
  for (int i = 0; i < n;) {
    rule_key k;
    if (!indexable(r->rules.v[i], -1, &k)) { i++; continue; }
    int j = i;
    while (j < n && indexable(r->rules.v[j], k.field, &pl[j].key))
      j++;
    if (j - i < INDEX_MIN) { i = j > i ? j : i + 1; continue; }
    for (int a = i; a < j; a++) {
      pl[a].run_end = j;
      pl[a].next = j;
    }
    if (link_same_keys(pl, i, j)) return -1;
    i = j;
  }
  return 0;
}

/* Emits the SWITCH of a run starting at rule i; its targets are rule
 * numbers until patch_route turns them into instructions. */
static void emit_switch(emitter *E, const sema_route *r, const rule_plan *pl, int i) {
  int j = pl[i].run_end, n = 0;
  keyed *v = malloc((size_t)(j - i) * sizeof *v);
  if (!v) { E->fail = 1; E->u->ctx.nomem = 1; return; }
  for (int a = i; a < j; a++) v[a - i] = (keyed){pl[a].key, a};
  /* by key, then rule: each key's first rule heads its group, n log n */
  qsort(v, (size_t)(j - i), sizeof *v, by_key);
  for (int k = 0; k < j - i; k++)
    if (k == 0 || !key_eq(&v[k - 1].key, &v[k].key)) v[n++] = v[k];
  bc_switch sw = {(uint32_t)pl[i].key.field, E->im.ncases, (uint32_t)n, (uint32_t)j};
  for (int b = 0; b < n; b++) {
    bc_case c = {str_index(E, v[b].key.s, v[b].key.n), (uint32_t)v[b].rule};
    APPEND(E, E->im.cases, E->im.ncases, E->capcases, c);
  }
  APPEND(E, E->im.switches, E->im.nswitches, E->capswitches, sw);
  (void)r;
  free(v);
  emit(E, BC_OP_SWITCH, 0, 0, E->im.nswitches - 1);
}

static void emit_route(emitter *E, int ri) {
  const sema_route *r = &E->u->routes[ri];
  int n = r->rules.n;
  bc_route br = {cstr(E, r->name), (uint32_t)here(E), 0, (uint32_t)r->fallbacks,
                 E->im.nrules, (uint32_t)n};
  rule_plan *pl = calloc((size_t)n + 1, sizeof *pl);
  uint32_t *rule_pc = calloc((size_t)n + 1, sizeof *rule_pc);
  int *jumps = calloc((size_t)n * 2 + 1, sizeof *jumps);   /* JF, JMP per rule */
  uint32_t first_switch = E->im.nswitches;
  if (!pl || !rule_pc || !jumps) { E->fail = 1; E->u->ctx.nomem = 1; goto out; }
  if (E->no_opt) for (int i = 0; i < n; i++) pl[i].next = i + 1;
  else if (plan_index(r, pl)) { E->fail = 1; E->u->ctx.nomem = 1; goto out; }
  for (int i = 0; i < n && !E->u->ctx.nomem; i++) {
    const ast_node *rule = r->rules.v[i];
    E->line = rule->span.line;
    const char *name = rule->kind == N_OTHERWISE ? "otherwise" : rule->text;
    bc_rule br_rule = {cstr(E, name ? name : "when"), (uint32_t)rule->span.line, 0};
    APPEND(E, E->im.rules, E->im.nrules, E->caprules, br_rule);
    rule_pc[i] = (uint32_t)emit(E, BC_OP_RULE, 0, 0, (uint32_t)i);
    E->xrule = E->im.nrules - 1;
    E->xplace = 0;
    uint32_t xr = rule->kind == N_WHEN ? xtree(E, rule->a) : BC_NONE;
    APPEND(E, E->im.xrules, E->im.nxrules, E->capxrules, xr);
    if (pl[i].run_end && (i == 0 || pl[i - 1].run_end != pl[i].run_end)) emit_switch(E, r, pl, i);
    jumps[2 * i] = jumps[2 * i + 1] = -1;
    if (rule->kind == N_WHEN) {
      emit_expr(E, rule->a);
      jumps[2 * i] = emit(E, BC_OP_JF, 0, 0, 0);
    }
    for (int k = 0; k < rule->list.n; k++) emit_target(E, r, rule->list.v[k]);
    for (int k = 0; k < r->shadows.n; k++) emit_target(E, r, r->shadows.v[k]);
    E->line = rule->span.line;
    emit(E, BC_OP_ENDRULE, 0, 0, 0);
    if (pl[i].next != i + 1) jumps[2 * i + 1] = emit(E, BC_OP_JMP, 0, 0, 0);
  }
  E->line = r->node->span.line;
  rule_pc[n] = (uint32_t)emit(E, BC_OP_NOMATCH, 0, 0, 0);
  /* Patch: jumps, resume points and switch cases name rules until now. */
  for (int i = 0; i < n && !E->fail; i++) {
    uint32_t to = rule_pc[pl[i].next];
    for (int k = 0; k < 2; k++)
      if (jumps[2 * i + k] >= 0) E->cur->v[jumps[2 * i + k]].c = to;
    E->im.rules[br.first_rule + (uint32_t)i].next = to;
  }
  for (uint32_t s = first_switch; s < E->im.nswitches && !E->fail; s++) {
    bc_switch *sw = &E->im.switches[s];
    uint32_t self = 0;
    for (int i = 0; i < n; i++)
      if (pl[i].run_end == (int)sw->otherwise && (i == 0 || pl[i - 1].run_end != pl[i].run_end))
        self = (uint32_t)i;
    for (uint32_t k = 0; k < sw->count; k++) {
      bc_case *c = &E->im.cases[sw->first + k];
      /* the run's first rule continues right after the SWITCH */
      c->target = c->target == self ? rule_pc[self] + 2 : rule_pc[c->target];
    }
    sw->otherwise = rule_pc[sw->otherwise];
  }
  br.end = (uint32_t)here(E);
  bc_route *routes = realloc(E->im.routes, (size_t)(E->im.nroutes + 1) * sizeof *routes);
  if (!routes) { E->fail = 1; E->u->ctx.nomem = 1; goto out; }
  E->im.routes = routes;
  E->im.routes[E->im.nroutes++] = br;
out:
  free(pl);
  free(rule_pc);
  free(jumps);
}

/* ---- tables ---- */

static int emit_tables(emitter *E) {
  sema_unit *u = E->u;
  bc_image *im = &E->im;
  im->models = calloc((size_t)u->nmodels + 1, sizeof *im->models);
  im->fields = calloc((size_t)u->nfields + 1, sizeof *im->fields);
  im->caps = calloc((size_t)u->ncaps + 1, sizeof *im->caps);
  im->budgets = calloc((size_t)u->nbudgets + 1, sizeof *im->budgets);
  if (!im->models || !im->fields || !im->caps || !im->budgets) return -1;
  for (int i = 0; i < u->nmodels; i++) {
    const sema_model *m = &u->models[i];
    bc_model *b = &im->models[i];
#define COPY_S(v) cstr(E, v)
#define COPY_D(v) (v)
#define COPY_I(v) (v)
#define EMIT_MP_COPY(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
    SEMA_MP_VALUE(kind)(b->member = COPY_##mt(m->member);)
    b->name = cstr(E, m->name);   /* strings in this order: name, provider, id, ... */
    BC_MPROPS(EMIT_MP_COPY)
#undef EMIT_MP_COPY
    b->caps = m->caps;
    b->line = (uint32_t)m->span.line;
  }
  im->nmodels = (uint32_t)u->nmodels;
  for (int i = 0; i < u->nfields; i++) {
    im->fields[i].name = cstr(E, u->fields[i].name);
    int ty = u->fields[i].ty, map = TY_IS_MAP(ty), list = (ty & TY_LIST) != 0;
    im->fields[i].type = (uint8_t)(map ? LANE_T_MAP : list ? LANE_T_LIST : sema_ty_mtype(ty));
    im->fields[i].unit = (uint8_t)sema_ty_unit(map ? TY_MVAL(ty) : list ? ty & ~TY_LIST : ty);
    im->fields[i].flags = u->fields[i].sensitive ? BC_FIELD_SENSITIVE : 0;
  }
  im->nfields = (uint32_t)u->nfields;
  for (int i = 0; i < u->ncaps; i++) im->caps[i] = cstr(E, u->caps[i]);
  im->ncaps = (uint32_t)u->ncaps;
  for (int i = 0; i < u->nbudgets; i++) {
    const sema_budget *b = &u->budgets[i];
    bc_budget bb = {cstr(E, b->name), (uint32_t)(b->key_field < 0 ? 0 : b->key_field),
                    b->limit, b->window_ms,
                    (b->rolling ? BC_BUDGET_ROLLING : 0) |
                    (b->on_full == LANE_ON_FULL_CLOSED ? BC_BUDGET_FULL_CLOSED
                     : b->on_full == LANE_ON_FULL_OPEN ? BC_BUDGET_FULL_OPEN : 0u), 0};
    im->budgets[i] = bb;
  }
  im->nbudgets = (uint32_t)u->nbudgets;
  return 0;
}

/* Joins route, filter and explain code, relocating the filters' and
 * explain regions' jumps and regions; the explain regions become filters
 * after those CANDs name. */
static int link_code(emitter *E) {
  int nr = E->route.n, ni = nr + E->filt.n, nf = ni + E->icode.n, n = nf + E->xcode.n;
  E->ncandfilters = E->im.nfilters;
  for (uint32_t i = 0; i < E->nireg; i++) {   /* iteration regions, after the filters */
    bc_filter f = E->ireg[i];
    for (uint32_t pc = f.start; pc < f.end; pc++)
      if (bc_ops[E->icode.v[pc].op].fmt == BC_FMT_JUMP) E->icode.v[pc].c += f.start;
    f.start += (uint32_t)E->filt.n;   /* all move by nr below */
    f.end += (uint32_t)E->filt.n;
    APPEND(E, E->im.filters, E->im.nfilters, E->capfilters, f);
    if (E->fail) return -1;
  }
  for (uint32_t i = 0; i < E->nxreg; i++) {
    bc_filter f = E->xreg[i];
    for (uint32_t pc = f.start; pc < f.end; pc++)
      if (bc_ops[E->xcode.v[pc].op].fmt == BC_FMT_JUMP) E->xcode.v[pc].c += f.start;
    f.start += (uint32_t)(E->filt.n + E->icode.n);   /* after the filters' and iterations' */
    f.end += (uint32_t)(E->filt.n + E->icode.n);
    APPEND(E, E->im.filters, E->im.nfilters, E->capfilters, f);
    if (E->fail) return -1;
  }
  for (uint32_t i = 0; i < E->im.nxnodes; i++)
    if (E->im.xnodes[i].region != BC_NONE)
      E->im.xnodes[i].region += E->ncandfilters + E->nireg;
  cbuf *bufs[4] = {&E->route, &E->filt, &E->icode, &E->xcode};
  for (int k = 0; k < 4; k++)   /* ITER names its region among the iteration regions */
    for (int i = 0; i < bufs[k]->n; i++)
      if (bc_ops[bufs[k]->v[i].op].fmt == BC_FMT_ITER)
        bufs[k]->v[i].b = (uint16_t)(bufs[k]->v[i].b + E->ncandfilters);
  E->im.code = malloc((size_t)(n ? n : 1) * sizeof *E->im.code);
  E->im.lines = malloc((size_t)(n ? n : 1) * sizeof *E->im.lines);
  E->im.nlines = (uint32_t)n;
  if (!E->im.code || !E->im.lines) return -1;
  if (nr) {
    memcpy(E->im.code, E->route.v, (size_t)nr * sizeof *E->im.code);
    memcpy(E->im.lines, E->route.line, (size_t)nr * sizeof *E->im.lines);
  }
  for (int i = 0; i < E->filt.n; i++) {
    bc_insn in = E->filt.v[i];
    if (bc_ops[in.op].fmt == BC_FMT_JUMP) in.c += (uint32_t)nr;
    E->im.code[nr + i] = in;
    E->im.lines[nr + i] = E->filt.line[i];
  }
  for (int i = 0; i < E->icode.n; i++) {
    bc_insn in = E->icode.v[i];
    if (bc_ops[in.op].fmt == BC_FMT_JUMP) in.c += (uint32_t)ni;
    E->im.code[ni + i] = in;
    E->im.lines[ni + i] = E->icode.line[i];
  }
  for (int i = 0; i < E->xcode.n; i++) {
    bc_insn in = E->xcode.v[i];
    if (bc_ops[in.op].fmt == BC_FMT_JUMP) in.c += (uint32_t)nf;
    E->im.code[nf + i] = in;
    E->im.lines[nf + i] = E->xcode.line[i];
  }
  for (uint32_t i = 0; i < E->im.nfilters; i++) {
    E->im.filters[i].start += (uint32_t)nr;
    E->im.filters[i].end += (uint32_t)nr;
  }
  E->im.ncode = (uint32_t)n;
  return 0;
}

static void free_image(bc_image *im) {
  free(im->str); free(im->kint); free(im->kdbl); free(im->caps); free(im->models);
  free(im->fields); free(im->pools); free(im->members); free(im->filters);
  free(im->routes); free(im->rules); free(im->lists); free(im->listelems);
  free(im->budgets); free(im->code); free(im->lines);
  free(im->switches); free(im->cases);
  free(im->xnodes); free(im->xrules); free(im->xsels); free(im->xlist);
  free(im->route_out);
}

/* ROUTEOUT: each route's output_estimate, when any route has one (else
 * the section stays empty and the file reads as before). */
static int emit_route_out(emitter *E) {
  sema_unit *u = E->u;
  int any = 0;
  for (int i = 0; i < u->nroutes; i++) any |= u->routes[i].output_estimate > 0;
  if (!any) return 0;
  E->im.route_out = calloc((size_t)u->nroutes, sizeof *E->im.route_out);
  if (!E->im.route_out) return -1;
  E->im.nroute_out = (uint32_t)u->nroutes;
  for (int i = 0; i < u->nroutes; i++) E->im.route_out[i] = u->routes[i].output_estimate;
  return 0;
}

/* Reports the program-wide limits the image exceeds; 0 if none. */
static int check_limits(emitter *E) {
  const bc_image *im = &E->im;
  ast_ctx *ctx = &E->u->ctx;
  ast_span none = {0};
  int bad = 0;
  if (im->ncode > SEMA_MAX_CODE && ++bad)
    diag_error(ctx, none, "the policy compiles to %u instructions, the limit is %u",
               (unsigned)im->ncode, SEMA_MAX_CODE);
  if (E->ncandfilters > SEMA_MAX_FILTERS && ++bad)
    diag_error(ctx, none, "the policy needs %u model filters, the limit is %u",
               (unsigned)E->ncandfilters, SEMA_MAX_FILTERS);
  const struct { uint32_t n; const char *what; } k[] = {
    {im->nstr, "string"}, {im->nkint, "int"}, {im->nkdbl, "double"}};
  for (int i = 0; i < 3; i++)
    if (k[i].n > SEMA_MAX_CONSTANTS && ++bad)
      diag_error(ctx, none, "the policy has %u %s constants, the limit is %u",
                 (unsigned)k[i].n, k[i].what, SEMA_MAX_CONSTANTS);
  return bad;
}

/* Loads the encoded program as a host would, once: a route whose worst
 * case is over the VM's default limit is reported here, at compile time,
 * at the route the loader names. The program is kept in *prog (if not
 * NULL), else freed. */
static int check_load(sema_unit *u, const unsigned char *b, size_t n, lane_program **prog) {
  lane_error err;
  int over;
  lane_program *p = bc_load_ex(b, n, NULL, NULL, &over, &err);
  if (p) {
    if (prog) *prog = p;
    else lane_program_free(p);
    return 0;
  }
  if (err.code == LANE_ENOMEM) { u->ctx.nomem = 1; return -1; }
  if (err.code == LANE_ELIMIT)
    diag_error(&u->ctx, over >= 0 && over < u->nroutes ? u->routes[over].node->span : (ast_span){0},
               "%s", err.message);
  else {
    u->unverified = 1;
    diag_error(&u->ctx, (ast_span){0}, "internal error: the program does not verify: %s",
               err.message);
  }
  return -1;
}

int emit_program(sema_unit *u, unsigned char **out, size_t *n) {
  return emit_program_loaded(u, out, n, NULL);
}

int emit_program_loaded(sema_unit *u, unsigned char **out, size_t *n, lane_program **prog) {
  if (prog) *prog = NULL;
  emitter E;
  memset(&E, 0, sizeof E);
  E.u = u;
  E.cur = &E.route;
  E.no_opt = u->opts.no_opt;
  int rc = -1;
  if (emit_tables(&E) == 0) {
    for (int i = 0; i < u->nroutes && !u->ctx.nomem && !E.fail; i++) {
      if (u->routes[i].rules.n > SEMA_MAX_RULES) {
        diag_error(&u->ctx, u->routes[i].node->span, "route '%s' has %d rules, the limit is %d",
                   u->routes[i].name, u->routes[i].rules.n, SEMA_MAX_RULES);
        E.fail = 1;
        break;
      }
      emit_route(&E, i);
    }
    /* ctx.nomem: the evaluator ran out of memory deciding a model or a
     * constant, so some of the program may be missing */
    if (!E.fail && !u->ctx.nomem && emit_route_out(&E)) {
      u->ctx.nomem = 1;
      E.fail = 1;
    }
    if (!E.fail && !u->ctx.nomem && link_code(&E) == 0) {
      if (check_limits(&E)) E.fail = 1;
      else if (bc_encode(&E.im, out, n) == 0) {
        rc = check_load(u, *out, *n, prog);
        if (rc) { free(*out); *out = NULL; }
      }
    }
  }
  if (rc && !u->ctx.nerrors) {   /* no error reported: memory ran out */
    u->ctx.nomem = 1;
    diag_error(&u->ctx, (ast_span){0}, "out of memory while emitting");
  }
  free_image(&E.im);
  for (int k = 0; k < 5; k++) free(E.intern[k].slot);
  free(E.route.v); free(E.route.line);
  free(E.filt.v); free(E.filt.line);
  free(E.xcode.v); free(E.xcode.line); free(E.xreg);
  free(E.icode.v); free(E.icode.line); free(E.ireg); free(E.imemo); free(E.pat);
  for (int i = 0; i < E.nlines_files; i++) free(E.lines[i].start);
  free(E.lines);
  return rc;
}

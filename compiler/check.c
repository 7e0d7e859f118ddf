/*
 * check.c -- types and units of every expression, and the resolution of
 * the names inside them.
 *
 * Each expression is checked in a context that says which names it may
 * see: request fields and budgets (route conditions), model properties
 * (`models where …` and `require`), a decision (test `expect`), or
 * nothing but constants (model properties, fallbacks, split weights).
 */
#include "sema.h"
#include "builtins.h"
#include "sem.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  CX_CONST = 0,
  CX_REQ = 1,     /* req.x and budget.b.x */
  CX_MODEL = 2,   /* bare model properties, cost, fits, healthy */
  CX_TEST = 4     /* rule, primary, fallbacks, cost, model names */
};

int sema_pool_find(const sema_unit *u, const char *name);
int sema_budget_find(const sema_unit *u, const char *name);
int sema_route_find(const sema_unit *u, const char *name);

static int check(sema_unit *u, ast_node *n, int cx);

/* The type names, twice (a macro does not expand inside itself). */
#define TY_NAMES(X, a) X(a, "error") X(a, "int") X(a, "uint") X(a, "double") X(a, "bool") \
  X(a, "string") X(a, "null") X(a, "money") X(a, "price") X(a, "duration") X(a, "tokens")  \
  X(a, "fraction") X(a, "model") X(a, "dyn") X(a, "timestamp") X(a, "type")
#define TY_NAMES2(X, a) X(a, "error") X(a, "int") X(a, "uint") X(a, "double") X(a, "bool") \
  X(a, "string") X(a, "null") X(a, "money") X(a, "price") X(a, "duration") X(a, "tokens")  \
  X(a, "fraction") X(a, "model") X(a, "dyn") X(a, "timestamp") X(a, "type")
#define TY_NAME(_, n) n,
#define TY_LIST_NAME(_, n) "list(" n ")",
#define TY_MAP_NAME(k, v) "map(" k ", " v ")",
#define TY_MAP_ROW(_, k) { TY_NAMES2(TY_MAP_NAME, k) },

const char *sema_ty_name(int ty) {
  static const char *const names[TY_NTYPES] = { TY_NAMES(TY_NAME, _) };
  static const char *const lists[TY_NTYPES] = { TY_NAMES(TY_LIST_NAME, _) };
  static const char *const maps[TY_NTYPES][TY_NTYPES] = { TY_NAMES(TY_MAP_ROW, _) };
  if (ty & TY_LIST) {
    int e = ty & ~TY_LIST;
    return e > 0 && e < TY_NTYPES ? lists[e] : "list";
  }
  if (TY_IS_MAP(ty)) {
    int k = TY_MKEY(ty), v = TY_MVAL(ty);
    return ty == TY_MAP ? "map" : k < TY_NTYPES && v < TY_NTYPES ? maps[k][v] : "map";
  }
  return ty >= 0 && ty < TY_NTYPES ? names[ty] : "?";
}

int sema_ty_unit(int ty) {
  switch (ty) {
  case TY_INT: return BC_U_INT;
  case TY_UINT: return BC_U_UINT;
  case TY_DOUBLE: return BC_U_DOUBLE;
  case TY_BOOL: return BC_U_BOOL;
  case TY_STRING: return BC_U_STRING;
  case TY_TOKENS: return BC_U_TOKENS;
  case TY_MONEY: return BC_U_MONEY;
  case TY_DURATION: return BC_U_DURATION;
  case TY_FRACTION: return BC_U_FRACTION;
  case TY_PRICE: return BC_U_PRICE;
  case TY_TIMESTAMP: return BC_U_TIMESTAMP;
  default: return 0;
  }
}

int sema_ty_mtype(int ty) {
  switch (ty) {
  case TY_INT: case TY_TOKENS: case TY_TIMESTAMP: return LANE_T_INT;
  case TY_UINT: return LANE_T_UINT;
  case TY_DOUBLE: case TY_MONEY: case TY_PRICE: case TY_DURATION: case TY_FRACTION:
    return LANE_T_DOUBLE;
  case TY_BOOL: return LANE_T_BOOL;
  case TY_STRING: return LANE_T_STRING;
  default: return 0;
  }
}

/* ---- operation plans ---- */

#define NOCONV 0xFF

static int is_scaled(int t) {   /* units that scale by plain numbers */
  return t == TY_MONEY || t == TY_PRICE || t == TY_DURATION || t == TY_FRACTION;
}

static int is_num(int t) { return t == TY_INT || t == TY_UINT || t == TY_DOUBLE; }

static int ordered(int t) {   /* bools too: false < true, as in CEL */
  return t != TY_NULL && t != TY_MODEL && t != TY_ERROR && t != TY_TYPE && !(t & TY_LIST) &&
         !TY_IS_MAP(t);
}

static const char *const type_values[] = {
  "bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type",
  "google.protobuf.Timestamp", "google.protobuf.Duration",
};

int sema_type_name(const char *name) {
  for (size_t i = 0; i < sizeof type_values / sizeof *type_values; i++)
    if (!strcmp(type_values[i], name)) return 1;
  return 0;
}

const char *sema_type_value(int ty) {
  if (ty & TY_LIST) return "list";
  if (TY_IS_MAP(ty)) return "map";
  switch (ty) {
  case TY_NULL: return "null_type";
  case TY_TIMESTAMP: return "google.protobuf.Timestamp";
  case TY_DURATION: return "google.protobuf.Duration";
  default: return sema_ty_name(ty);   /* int, ... and lane's units: money, tokens */
  }
}

/* Opcode for a machine op family (bc_binop) on machine type mt, or -1:
 * BC_BINOPS. */
static int mop(int fam, int mt) {
  static const int ops[BC_NBINOPS][5] = {
#define MOP_ROW(f, i, u, d, s, b) { BC_OP_##i, BC_OP_##u, BC_OP_##d, BC_OP_##s, BC_OP_##b },
    BC_BINOPS(MOP_ROW)
#undef MOP_ROW
  };
  int col = mt == LANE_T_INT ? 0 : mt == LANE_T_UINT ? 1 : mt == LANE_T_DOUBLE ? 2
          : mt == LANE_T_STRING ? 3 : mt == LANE_T_BOOL ? 4 : -1;
  return col < 0 || fam < 0 || fam >= BC_NBINOPS ? -1 : ops[fam][col];
}

static int to_double_op(int t) {
  int mt = sema_ty_mtype(t);
  return mt == LANE_T_INT ? BC_OP_I2D : mt == LANE_T_UINT ? BC_OP_U2D : NOCONV;
}

static sema_plan plan(int ty, int lconv, int rconv, int op) {
  sema_plan p = {ty, (uint8_t)lconv, (uint8_t)rconv, op};
  return p;
}

/* Both operands as doubles, machine family fam, result ty. */
static sema_plan dplan(int ty, int fam, int lt, int rt) {
  return plan(ty, to_double_op(lt), to_double_op(rt), mop(fam, LANE_T_DOUBLE));
}

static sema_plan arith_plan(int fam, int lt, int rt) {
  sema_plan bad = plan(TY_ERROR, NOCONV, NOCONV, -1);
  if (fam == BC_BIN_MOD) {
    if (lt == rt && (lt == TY_INT || lt == TY_UINT)) return plan(lt, NOCONV, NOCONV, mop(BC_BIN_MOD, sema_ty_mtype(lt)));
    if (lt == TY_TOKENS && (rt == TY_INT || rt == TY_TOKENS)) return plan(TY_TOKENS, NOCONV, NOCONV, BC_OP_MOD_I);
    return bad;
  }
  if (fam == BC_BIN_ADD && lt == TY_TIMESTAMP && rt == TY_DURATION)
    return plan(TY_TIMESTAMP, NOCONV, NOCONV, BC_OP_TS_ADD);
  if (fam == BC_BIN_ADD && lt == TY_DURATION && rt == TY_TIMESTAMP)
    return plan(TY_TIMESTAMP, NOCONV, NOCONV, BC_OP_TS_ADD_R);
  if (fam == BC_BIN_SUB && lt == TY_TIMESTAMP && rt == TY_DURATION)
    return plan(TY_TIMESTAMP, NOCONV, NOCONV, BC_OP_TS_SUB);
  if (fam == BC_BIN_SUB && lt == TY_TIMESTAMP && rt == TY_TIMESTAMP)
    return plan(TY_DURATION, NOCONV, NOCONV, BC_OP_TS_DIFF);
  if (fam == BC_BIN_ADD || fam == BC_BIN_SUB) {
    if (lt == rt && (is_num(lt) || is_scaled(lt) || lt == TY_TOKENS))
      return plan(lt, NOCONV, NOCONV, mop(fam, sema_ty_mtype(lt)));
    if ((lt == TY_TOKENS && rt == TY_INT) || (lt == TY_INT && rt == TY_TOKENS))
      return plan(TY_TOKENS, NOCONV, NOCONV, mop(fam, LANE_T_INT));
    if (fam == BC_BIN_ADD && lt == TY_STRING && rt == TY_STRING)
      return plan(TY_STRING, NOCONV, NOCONV, BC_OP_S_CAT);
    if (fam == BC_BIN_ADD && (lt & TY_LIST) && (rt & TY_LIST))   /* constants */
      return plan(lt == rt || rt == (TY_LIST | TY_NULL) ? lt : lt == (TY_LIST | TY_NULL) ? rt
                  : TY_LIST | TY_DYN, NOCONV, NOCONV, -1);
    return bad;
  }
  if (fam == BC_BIN_MUL) {
    if (lt == rt && is_num(lt)) return plan(lt, NOCONV, NOCONV, mop(BC_BIN_MUL, sema_ty_mtype(lt)));
    if ((lt == TY_PRICE && rt == TY_TOKENS) || (lt == TY_TOKENS && rt == TY_PRICE))
      return dplan(TY_MONEY, BC_BIN_MUL, lt, rt);
    if ((lt == TY_TOKENS && rt == TY_INT) || (lt == TY_INT && rt == TY_TOKENS))
      return plan(TY_TOKENS, NOCONV, NOCONV, BC_OP_MUL_I);
    if (is_scaled(lt) && (rt == TY_INT || rt == TY_DOUBLE)) return dplan(lt, BC_BIN_MUL, lt, rt);
    if (is_scaled(rt) && (lt == TY_INT || lt == TY_DOUBLE)) return dplan(rt, BC_BIN_MUL, lt, rt);
    if (lt == TY_FRACTION && is_scaled(rt)) return dplan(rt, BC_BIN_MUL, lt, rt);
    if (rt == TY_FRACTION && is_scaled(lt)) return dplan(lt, BC_BIN_MUL, lt, rt);
    return bad;
  }
  /* / */
  if (lt == rt && is_num(lt)) return plan(lt, NOCONV, NOCONV, mop(BC_BIN_DIV, sema_ty_mtype(lt)));
  if (lt == rt && (is_scaled(lt) || lt == TY_TOKENS)) return dplan(TY_DOUBLE, BC_BIN_DIV, lt, rt);
  if (lt == TY_TOKENS && rt == TY_INT) return plan(TY_TOKENS, NOCONV, NOCONV, BC_OP_DIV_I);
  if (is_scaled(lt) && (rt == TY_INT || rt == TY_DOUBLE)) return dplan(lt, BC_BIN_DIV, lt, rt);
  if (lt == TY_MONEY && rt == TY_TOKENS) return dplan(TY_PRICE, BC_BIN_DIV, lt, rt);
  return bad;
}

static sema_plan compare_plan(int fam, int lt, int rt) {
  sema_plan bad = plan(TY_ERROR, NOCONV, NOCONV, -1);
  int eq = fam == BC_BIN_EQ || fam == BC_BIN_NE;
  if (TY_IS_MAP(lt) && TY_IS_MAP(rt))   /* constants: maps have no run-time value */
    return eq ? plan(TY_BOOL, NOCONV, NOCONV, -1) : bad;
  if ((lt & TY_LIST) && (rt & TY_LIST) && lt != rt) {
    /* [] and [1, 'a'] compare with any list, and numbers across types,
     * item by item (constants: lists have no run-time form) */
    int le = lt & ~TY_LIST, re = rt & ~TY_LIST;
    if (le == TY_NULL || re == TY_NULL || le == TY_DYN || re == TY_DYN ||
        (is_num(le) && is_num(re)))
      return eq ? plan(TY_BOOL, NOCONV, NOCONV, -1) : bad;
    return bad;
  }
  if (lt == rt) {
    if (lt == TY_MODEL || (lt & TY_LIST) || lt == TY_NULL)
      return eq ? plan(TY_BOOL, NOCONV, NOCONV, -1) : bad;
    if (!eq && !ordered(lt)) return bad;
    return plan(TY_BOOL, NOCONV, NOCONV, mop(fam, sema_ty_mtype(lt)));
  }
  if ((lt == TY_TOKENS && rt == TY_INT) || (lt == TY_INT && rt == TY_TOKENS))
    return plan(TY_BOOL, NOCONV, NOCONV, mop(fam, LANE_T_INT));
  if (is_num(lt) && is_num(rt))   /* CEL compares numbers across types */
    return dplan(TY_BOOL, fam, lt, rt);
  return bad;
}

sema_plan sema_binplan(int op, int lt, int rt) {
  switch (op) {
  case OP_ADD: return arith_plan(BC_BIN_ADD, lt, rt);
  case OP_SUB: return arith_plan(BC_BIN_SUB, lt, rt);
  case OP_MUL: return arith_plan(BC_BIN_MUL, lt, rt);
  case OP_DIV: return arith_plan(BC_BIN_DIV, lt, rt);
  case OP_MOD: return arith_plan(BC_BIN_MOD, lt, rt);
  case OP_EQ: return compare_plan(BC_BIN_EQ, lt, rt);
  case OP_NE: return compare_plan(BC_BIN_NE, lt, rt);
  case OP_LT: return compare_plan(BC_BIN_LT, lt, rt);
  case OP_LE: return compare_plan(BC_BIN_LE, lt, rt);
  case OP_GT: return compare_plan(BC_BIN_GT, lt, rt);
  case OP_GE: return compare_plan(BC_BIN_GE, lt, rt);
  default: return plan(TY_ERROR, NOCONV, NOCONV, -1);
  }
}

/* ---- names ---- */

static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 40 || lb > 40) return 99;
  int d[41][41];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

/* Keeps the closest of candidates to name, within a third of its length. */
typedef struct suggest { const char *name; const char *best; int dist; } suggest;

static void consider(suggest *s, const char *cand) {
  int d = edit_distance(s->name, cand);
  int limit = (int)strlen(s->name) / 3 + 1;
  if (d <= limit && d < s->dist) { s->dist = d; s->best = cand; }
}

static void hint(char *buf, size_t n, const suggest *s) {
  if (s->best) snprintf(buf, n, "; did you mean '%s'?", s->best);
  else buf[0] = 0;
}

/* Whether row k of BC_MPROPS is a property an expression reads by name. */
static int readable(int k) { return bc_mprops[k].name[0] && bc_mprops[k].kind != BC_MPK_RECORD; }

static const struct { const char *name; int dv; int ty; } dvals[] = {
  {"rule", DV_RULE, TY_INT}, {"rule_name", DV_RULE_NAME, TY_STRING},
  {"primary", DV_PRIMARY, TY_MODEL}, {"fallbacks", DV_FALLBACKS, TY_LIST | TY_MODEL},
  {"shadows", DV_SHADOWS, TY_LIST | TY_MODEL}, {"cost", DV_COST, TY_MONEY},
  {"route", DV_ROUTE, TY_STRING}, {"errors", DV_ERRORS, TY_INT},
  {"decided", DV_DECIDED, TY_BOOL}, {"filtered_rule", DV_FILTERED, TY_INT},
};

/* Resolves a model property name (static only when dyn is 0). */
static int resolve_mprop(sema_unit *u, ast_node *n, const char *name, int dyn) {
  for (int k = 0; k < BC_NMPROPS; k++)
    if (readable(k) && strcmp(bc_mprops[k].name, name) == 0 &&
        (dyn || bc_mprops[k].kind != BC_MPK_LIVE)) {
      n->refkind = RK_MPROP;
      n->ref = k;
      return sema_mprops[k].ty;
    }
  int cap = sema_cap_find(u, name);
  if (cap >= 0) {
    n->refkind = RK_MPROP;
    n->ref = MP_CAP + cap;
    return TY_BOOL;
  }
  return TY_ERROR;
}

/* Flattens a chain of identifiers and selectors ("a.b.c") into buf. */
static int qualified(const ast_node *n, char *buf, size_t size) {
  if (n->kind == N_IDENT) return snprintf(buf, size, "%s", n->name) < (int)size;
  if (n->kind != N_SELECTOR || !qualified(n->a, buf, size)) return 0;
  size_t len = strlen(buf);
  return snprintf(buf + len, size - len, ".%s", n->name) < (int)(size - len);
}

static int check_ident(sema_unit *u, ast_node *n, int cx) {
  const char *name = n->name;
  for (int i = u->nmvars - 1; i >= 0; i--)   /* a macro's variable, innermost first */
    if (!strcmp(u->mvars[i].name, name)) {
      n->refkind = RK_VAR;
      n->ref = i;
      n->op = u->mvars[i].is_const;
      return u->mvars[i].ty;
    }
  if (cx & CX_TEST)
    for (size_t i = 0; i < sizeof dvals / sizeof *dvals; i++)
      if (strcmp(dvals[i].name, name) == 0) {
        n->refkind = RK_DECISION;
        n->ref = dvals[i].dv;
        return dvals[i].ty;
      }
  if (cx & CX_MODEL) {
    int ty = resolve_mprop(u, n, name, 1);
    if (ty) return ty;
  }
  if (strcmp(name, "now") == 0) {
    if (!(cx & CX_REQ)) {
      diag_error(&u->ctx, n->span, "'now' is the decision's clock; it cannot be used here, "
                 "where this must be a constant");
      return TY_ERROR;
    }
    n->refkind = RK_NOW;
    return TY_TIMESTAMP;
  }
  if (strcmp(name, "req") == 0) {
    diag_error(&u->ctx, n->span, "'req' needs a field, as in req.tier");
    return TY_ERROR;
  }
  if (strcmp(name, "budget") == 0) {
    diag_error(&u->ctx, n->span, "'budget' needs a budget and a figure, as in budget.daily.used");
    return TY_ERROR;
  }
  int m = sema_model_find(u, name);
  if (m >= 0 && (cx & CX_TEST)) {
    n->refkind = RK_MODEL;
    n->ref = m;
    return TY_MODEL;
  }
  if (m >= 0 && !(cx & CX_MODEL)) {
    diag_error(&u->ctx, n->span,
               "'%s' is a model; name models as route targets (-> %s), not in expressions",
               name, name);
    return TY_ERROR;
  }
  if (sema_type_name(name)) {   /* int, list, ...: a type value (CEL's) */
    n->refkind = RK_TYPENAME;
    return TY_TYPE;
  }
  suggest s = {name, NULL, 99};
  char h[96];
  if (cx & CX_MODEL) {
    for (int k = 0; k < BC_NMPROPS; k++)
      if (readable(k)) consider(&s, bc_mprops[k].name);
    for (int i = 0; i < u->ncaps; i++) consider(&s, u->caps[i]);
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, n->span, "unknown model property or capability '%s'%s", name, h);
  } else if (cx & CX_TEST) {
    for (size_t i = 0; i < sizeof dvals / sizeof *dvals; i++) consider(&s, dvals[i].name);
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, n->span, "unknown name '%s' in an expectation%s", name, h);
  } else {
    for (int k = 0; k < BC_NMPROPS; k++)
      if ((readable(k) && strcmp(bc_mprops[k].name, name) == 0) || sema_cap_find(u, name) >= 0) {
        diag_error(&u->ctx, n->span,
                   "'%s' is a model property; use it inside 'models where …' or 'require'",
                   name);
        return TY_ERROR;
      }
    if (sema_field_find(u, name) >= 0)
      diag_error(&u->ctx, n->span, "unknown name '%s'; request fields are written req.%s",
                 name, name);
    else
      diag_error(&u->ctx, n->span, "unknown name '%s'", name);
  }
  return TY_ERROR;
}

static int check_req_field(sema_unit *u, ast_node *n, int cx) {
  if (!(cx & CX_REQ)) {
    diag_error(&u->ctx, n->span, "request fields cannot be used here; this must be a constant");
    return TY_ERROR;
  }
  int f = sema_field_find(u, n->name);
  if (f < 0) {
    suggest s = {n->name, NULL, 99};
    char h[96];
    for (int i = 0; i < u->nfields; i++) consider(&s, u->fields[i].name);
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, n->span,
               "unknown request field '%s'%s (declare custom fields in a request { } block)",
               n->name, h);
    return TY_ERROR;
  }
  n->refkind = RK_FIELD;
  n->ref = f;
  return u->fields[f].ty;
}

static int check_budget_ref(sema_unit *u, ast_node *n, int cx) {
  const char *bname = n->a->name;
  int b = sema_budget_find(u, bname);
  if (!(cx & CX_REQ)) {
    diag_error(&u->ctx, n->span, "budgets cannot be used here; this must be a constant");
    return TY_ERROR;
  }
  if (b < 0) {
    suggest s = {bname, NULL, 99};
    char h[96];
    for (int i = 0; i < u->nbudgets; i++) consider(&s, u->budgets[i].name);
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, n->a->span, "unknown budget '%s'%s", bname, h);
    return TY_ERROR;
  }
  static const char *const figs[] = {"spent", "remaining", "used"};
  for (int k = 0; k < 3; k++)
    if (strcmp(n->name, figs[k]) == 0) {
      n->refkind = RK_BUDGET;
      n->ref = b * 4 + k;
      return k == 2 ? TY_FRACTION : TY_MONEY;
    }
  diag_error(&u->ctx, n->span, "a budget has spent, remaining and used, not '%s'", n->name);
  return TY_ERROR;
}

static int const_item_type(sema_unit *u, ast_node *n);

/* The type of a map lookup n (m.k or m[k]) on a map of type mt: its value
 * type, or for a constant map of mixed values, the value's own. */
static int map_value(sema_unit *u, ast_node *n, int mt) {
  return TY_MVAL(mt) == TY_DYN ? const_item_type(u, n) : TY_MVAL(mt);
}

/* Whether a key of type kt can be looked up in a map whose keys are mk
 * (numbers across types, as == compares them). */
static int key_fits(int mk, int kt) {
  return mk == kt || mk == TY_DYN || mk == TY_NULL ||
         ((mk == TY_INT || mk == TY_UINT || mk == TY_DOUBLE) &&
          (kt == TY_INT || kt == TY_UINT || kt == TY_DOUBLE));
}

static int check_selector(sema_unit *u, ast_node *n, int cx) {
  ast_node *a = n->a;
  if (a->kind == N_IDENT && strcmp(a->name, "req") == 0) return check_req_field(u, n, cx);
  if (a->kind == N_SELECTOR && a->a->kind == N_IDENT && strcmp(a->a->name, "budget") == 0)
    return check_budget_ref(u, n, cx);
  if (a->kind == N_IDENT && strcmp(a->name, "budget") == 0) {
    diag_error(&u->ctx, n->span, "'budget.%s' needs a figure: .spent, .remaining or .used",
               n->name);
    return TY_ERROR;
  }
  char q[256];
  if (qualified(n, q, sizeof q) && sema_type_name(q)) {
    n->refkind = RK_TYPENAME;
    return TY_TYPE;
  }
  if (qualified(n, q, sizeof q)) {
    int m = sema_model_find(u, q);
    if (m >= 0 && (cx & CX_TEST)) {
      n->refkind = RK_MODEL;
      n->ref = m;
      return TY_MODEL;
    }
    if (m >= 0) {
      diag_error(&u->ctx, n->span,
                 "'%s' is a model; name models as route targets (-> %s), not in expressions",
                 q, q);
      return TY_ERROR;
    }
  }
  int at = check(u, a, cx);
  if (at == TY_ERROR) return TY_ERROR;
  if (at == TY_MODEL) {
    int ty = resolve_mprop(u, n, n->name, 0);
    if (ty) return ty;
    diag_error(&u->ctx, n->span, "a model has no property '%s'", n->name);
    return TY_ERROR;
  }
  if (TY_IS_MAP(at) && (TY_MKEY(at) == TY_STRING || TY_MKEY(at) == TY_DYN)) {
    n->refkind = RK_MAPKEY;   /* m.k is m["k"] */
    return map_value(u, n, at);
  }
  diag_error(&u->ctx, n->span, "%s has no field '%s'", sema_ty_name(at), n->name);
  return TY_ERROR;
}

/* has(req.f): CEL's presence test, on a request field of any type. Its
 * argument is a field, not a value: nothing is loaded. */
static int check_has(sema_unit *u, ast_node *n, int cx) {
  ast_node *f = n->list.n == 1 ? n->list.v[0] : NULL;
  int field = f && f->kind == N_SELECTOR && f->a && f->a->kind == N_IDENT &&
              strcmp(f->a->name, "req") == 0;
  if (!n->a && f && f->kind == N_SELECTOR && f->a && !field) {   /* has(m.k): a map's key */
    int mt = check(u, f->a, cx);
    if (mt == TY_ERROR) return TY_ERROR;
    if (TY_IS_MAP(mt) && (TY_MKEY(mt) == TY_STRING || TY_MKEY(mt) == TY_DYN ||
                          TY_MKEY(mt) == TY_NULL)) {
      f->refkind = RK_MAPKEY;
      f->type = TY_MVAL(mt) == TY_DYN ? TY_DYN : TY_MVAL(mt);   /* not evaluated: no error */
      f->is_const = f->a->is_const;
      for (int i = 0; i < sema_nbuiltins; i++)
        if (sema_builtins[i].fn == BF_HAS) n->ref = i;
      return TY_BOOL;
    }
  }
  if (n->a || !f || !field) {
    diag_error(&u->ctx, n->span, "has() takes one request field, as in has(req.latency_budget), "
               "or a map's key, as in has(req.metadata.team)");
    return TY_ERROR;
  }
  if (check(u, f, cx) == TY_ERROR) return TY_ERROR;
  for (int i = 0; i < sema_nbuiltins; i++)
    if (sema_builtins[i].fn == BF_HAS) n->ref = i;
  return TY_BOOL;
}

/* dyn(x): CEL's dynamic type. lane knows every value's type when it
 * compiles, so dyn(x) is x, typed as x; what it changes is that == and
 * != with a value of another type are false and true, not a type error
 * (check_binary). */
static int check_dyn(sema_unit *u, ast_node *n, int cx) {
  if (n->a || n->list.n != 1) {
    diag_error(&u->ctx, n->span, "dyn() takes one value, as in dyn(req.x)");
    return TY_ERROR;
  }
  int t = check(u, n->list.v[0], cx);
  for (int i = 0; i < sema_nbuiltins; i++)
    if (sema_builtins[i].fn == BF_DYN) n->ref = i;
  return t;
}

static int is_dyn(const ast_node *n) {
  return n->kind == N_CALL && sema_builtins[n->ref].fn == BF_DYN;
}

/* math.f(args): the parser reads a call on a receiver; the receiver
 * `math`, a name nothing else has, makes it the math extension's function
 * "math.f" (sema_builtins) of args. */
static void namespaced(sema_unit *u, ast_node *n) {
  if (!n->a || n->a->kind != N_IDENT || strcmp(n->a->name, "math") != 0) return;
  size_t k = strlen(n->name);
  char *nm = ast_alloc(&u->ctx, k + 6);
  if (!nm) return;
  memcpy(nm, "math.", 5);
  memcpy(nm + 5, n->name, k + 1);
  n->name = nm;
  n->a = NULL;
}

static int is_num(int t);

/* The type of constant n as folding finds it (a dyn item's, the winner
 * of math.greatest over mixed types), after a diagnostic for an error. */
static int folded_type(sema_unit *u, ast_node *n) {
  ev_env env = {.u = u, .model = -1};
  ev_val v = ev_eval(&env, n);
  if (v.kind == EV_ERROR) {
    diag_error(&u->ctx, n->span, "%s", v.err);
    return TY_ERROR;
  }
  return v.kind == EV_OK ? v.ty : TY_ERROR;
}

/* Types math.greatest and math.least order: numbers, and each unit with
 * itself. */
static int minmax_type(int t) {
  return is_num(t) || t == TY_TOKENS || t == TY_MONEY || t == TY_PRICE || t == TY_DURATION ||
         t == TY_FRACTION;
}

/* math.greatest(x, ...) and math.least: numbers of one type give that
 * type, at run time too. Numbers of mixed types, or a list, give the
 * winner's own type (CEL's), which only folding knows: constants only. */
static int check_minmax(sema_unit *u, ast_node *n, int cx, int fn) {
  const char *f = fn == BF_GREATEST ? "math.greatest" : "math.least";
  for (int i = 0; i < sema_nbuiltins; i++)
    if (sema_builtins[i].fn == fn) n->ref = i;
  if (n->list.n == 0) {
    diag_error(&u->ctx, n->span, "%s() takes one or more numbers, or a list of them", f);
    return TY_ERROR;
  }
  int first = TY_ERROR, same = 1, nums = 1, consts = 1;
  for (int i = 0; i < n->list.n; i++) {
    ast_node *a = n->list.v[i];
    int t = check(u, a, cx);
    if (t == TY_ERROR) return TY_ERROR;
    int et = n->list.n == 1 && (t & TY_LIST) ? t & ~TY_LIST : t;
    if (!minmax_type(et) && et != TY_DYN && !(t & TY_LIST && et == TY_NULL)) {
      diag_error(&u->ctx, a->span, "%s() takes numbers, not %s", f, sema_ty_name(t));
      return TY_ERROR;
    }
    if (i == 0) first = t;
    same &= t == first;
    nums &= is_num(t);
    consts &= a->is_const;
  }
  if (same && !(first & TY_LIST)) return first;
  if (!same && !nums) {
    diag_error(&u->ctx, n->span, "%s() of %s and %s: units do not mix", f,
               sema_ty_name(first), sema_ty_name(n->list.v[n->list.n - 1]->type));
    return TY_ERROR;
  }
  if (!consts) {
    diag_error(&u->ctx, n->span, "%s() of numbers of different types takes constants only: "
               "its type is the winner's; convert them to one type, as in double(x)", f);
    return TY_ERROR;
  }
  return folded_type(u, n);
}

static const struct { const char *name; int fn; } macros[] = {
  {"all", BF_ALL}, {"exists", BF_EXISTS}, {"exists_one", BF_EXISTS_ONE},
  {"existsOne", BF_EXISTS_ONE}, {"map", BF_MAP}, {"filter", BF_FILTER},
  {"transformList", BF_TLIST}, {"transformMap", BF_TMAP},
};

/* Declares macro variable v (an N_IDENT) of type ty; 0, or -1 when too
 * many are in scope. */
static int push_var(sema_unit *u, ast_node *v, int ty, int is_const) {
  if (u->nmvars >= SEMA_MAX_MVARS) {
    diag_error(&u->ctx, v->span, "macros nest more than %d variables deep", SEMA_MAX_MVARS);
    return -1;
  }
  u->mvars[u->nmvars].name = v->name;
  u->mvars[u->nmvars].ty = ty;
  u->mvars[u->nmvars].is_const = is_const;
  v->refkind = RK_VAR;
  v->ref = u->nmvars++;
  v->type = ty;
  v->is_const = is_const;
  v->op = is_const;
  return 0;
}

/* CEL's comprehension macros on a list or a map: x.all(v, p), exists,
 * exists_one (existsOne), map(v, e) and map(v, p, e), filter(v, p), and
 * the two-variable forms all(i, v, p), exists, existsOne,
 * transformList(i, v, [p,] e), transformMap(k, v, [p,] e). A list's
 * variable is its item (with two, its index and item), a map's its key
 * (with two, its key and value). The variables are in scope in the
 * macro's arguments only. Lists and maps are constants, so a macro folds;
 * over model tags it is decided per model when the filter is. */
static int check_macro(sema_unit *u, ast_node *n, int cx, int fn) {
  int rt = check(u, n->a, cx), na = n->list.n;
  if (rt == TY_ERROR) return TY_ERROR;
  int map = TY_IS_MAP(rt);
  if (!(rt & TY_LIST) && !map) {
    diag_error(&u->ctx, n->span, "%s() works on a list or a map, not %s", n->name,
               sema_ty_name(rt));
    return TY_ERROR;
  }
  int two = fn == BF_TLIST || fn == BF_TMAP || (na == 3 && fn != BF_MAP && fn != BF_FILTER);
  int min = two ? 3 : 2, max = two ? (fn == BF_TLIST || fn == BF_TMAP ? 4 : 3)
                          : fn == BF_MAP ? 3 : 2;
  if (na < min || na > max) {
    diag_error(&u->ctx, n->span, "%s() takes %s", n->name,
               fn == BF_MAP ? "a variable and an expression, and maybe a condition before it: "
                              "x.map(v, e) or x.map(v, p, e)"
               : fn == BF_TLIST || fn == BF_TMAP ? "two variables, maybe a condition, and an "
                                                   "expression: x.transformList(i, v, e)"
               : "a variable and a condition, as in x.all(v, v > 0), or two: x.all(i, v, p)");
    return TY_ERROR;
  }
  for (int i = 0; i < (two ? 2 : 1); i++)
    if (n->list.v[i]->kind != N_IDENT) {
      diag_error(&u->ctx, n->list.v[i]->span, "%s()'s first argument%s must be a variable "
                 "name", n->name, two ? "s" : "");
      return TY_ERROR;
    }
  int key = map ? TY_MKEY(rt) : TY_INT, item = map ? TY_MVAL(rt) : rt & ~TY_LIST;
  if (key == TY_NULL) key = TY_DYN;     /* {} and []: no item, any type */
  if (item == TY_NULL) item = TY_DYN;
  int base = u->nmvars, is_const = n->a->is_const, t = TY_ERROR;
  if (push_var(u, n->list.v[0], two ? key : map ? key : item, is_const) ||
      (two && push_var(u, n->list.v[1], item, is_const))) {
    u->nmvars = base;
    return TY_ERROR;
  }
  int first = two ? 2 : 1, last = na - 1, ok = 1;
  int has_cond = fn == BF_ALL || fn == BF_EXISTS || fn == BF_EXISTS_ONE || fn == BF_FILTER ||
                 last > first;   /* map(v, p, e), transform*(i, v, p, e) */
  for (int i = first; i < na; i++) {
    int at = check(u, n->list.v[i], cx);
    int cond = has_cond && (i < last || fn == BF_ALL || fn == BF_EXISTS ||
                            fn == BF_EXISTS_ONE || fn == BF_FILTER);
    if (at == TY_ERROR) ok = 0;
    else if (cond && at != TY_BOOL) {
      diag_error(&u->ctx, n->list.v[i]->span, "%s()'s condition must be bool, not %s",
                 n->name, sema_ty_name(at));
      ok = 0;
    } else if (!cond && ((at & TY_LIST) || TY_IS_MAP(at) || at == TY_MODEL)) {
      diag_error(&u->ctx, n->list.v[i]->span, "%s() of %s: lists of lists and maps are not "
                 "supported", n->name, sema_ty_name(at));
      ok = 0;
    } else if (!cond) {
      t = at;
    }
  }
  u->nmvars = base;
  if (!ok) return TY_ERROR;
  for (int i = 0; i < sema_nbuiltins; i++)
    if (sema_builtins[i].fn == fn) { n->ref = i; break; }
  switch (fn) {
  case BF_ALL: case BF_EXISTS: case BF_EXISTS_ONE: return TY_BOOL;
  case BF_FILTER: return map ? TY_LIST | key : rt;
  case BF_TMAP: return TY_MAPOF(map ? key : TY_INT, t);
  default: return TY_LIST | t;   /* map, transformList */
  }
}

/* The pattern of matches(): a constant, which the installed engine
 * (lane_regex_install; the lane command installs liblane-re's) compiles
 * now, so a bad one is an error at its place, not at load. */
static int check_pattern(sema_unit *u, ast_node *r) {
  ev_env env = {.u = u, .model = -1};
  ev_val v = r->is_const ? ev_eval(&env, r) : (ev_val){.kind = EV_UNKNOWN};
  const lane_regex_engine *e = lane_regex_installed();
  char why[200] = "";
  if (v.kind != EV_OK) {
    diag_error(&u->ctx, r->span, "matches() needs a constant pattern: it compiles once, when "
               "the program loads");
    return -1;
  }
  if (!e) {
    diag_error(&u->ctx, r->span, "matches() needs a regular-expression engine, and this host "
               "installed none (lane_regex_install; the lane command has liblane-re's)");
    return -1;
  }
  void *re = e->compile(v.s, v.n, why, sizeof why);
  if (!re) {
    diag_error(&u->ctx, r->span, "bad regular expression: %s", why);
    return -1;
  }
  e->release(re);
  return 0;
}

/* The time zone argument z of a timestamp accessor: a constant, turned
 * into its POSIX rule now (z->text), so a decision reads no file. */
static int check_zone(sema_unit *u, ast_node *z) {
  ev_env env = {.u = u, .model = -1};
  ev_val v = z->is_const ? ev_eval(&env, z) : (ev_val){.kind = EV_UNKNOWN};
  char rule[256], why[300];
  if (v.kind != EV_OK) {
    diag_error(&u->ctx, z->span, "a time zone must be a constant, as in \"America/New_York\" "
               "or \"+05:30\"");
    return -1;
  }
  int rc = sema_tz_rule(v.s, v.n, rule, sizeof rule, why, sizeof why);
  if (rc == -2) u->ctx.nomem = 1;
  if (rc == -1) diag_error(&u->ctx, z->span, "%s", why);
  if (rc) return -1;
  z->text = ast_strndup(&u->ctx, rule, strlen(rule));
  return z->text ? 0 : -1;
}

static int check_call(sema_unit *u, ast_node *n, int cx) {
  namespaced(u, n);
  if (n->a && n->list.n >= 2 && n->list.v[0]->kind == N_IDENT)
    for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
      if (!strcmp(n->name, macros[i].name)) return check_macro(u, n, cx, macros[i].fn);
  if (!strcmp(n->name, "has")) return check_has(u, n, cx);
  if (!strcmp(n->name, "dyn")) return check_dyn(u, n, cx);
  if (!strcmp(n->name, "type") && !n->a) {   /* type(x): x's type, known now */
    if (n->list.n != 1) {
      diag_error(&u->ctx, n->span, "type() takes one value");
      return TY_ERROR;
    }
    if (check(u, n->list.v[0], cx) == TY_ERROR) return TY_ERROR;
    for (int i = 0; i < sema_nbuiltins; i++)
      if (sema_builtins[i].fn == BF_TYPE) n->ref = i;
    return TY_TYPE;
  }
  if (!strcmp(n->name, "math.greatest")) return check_minmax(u, n, cx, BF_GREATEST);
  if (!strcmp(n->name, "math.least")) return check_minmax(u, n, cx, BF_LEAST);
  int args[4], nargs = 0;
  if (n->a) args[nargs++] = check(u, n->a, cx);
  for (int i = 0; i < n->list.n; i++) {
    int t = check(u, n->list.v[i], cx);
    if (nargs < 4) args[nargs] = t;
    nargs++;
  }
  for (int i = 0; i < nargs && i < 4; i++)
    if (args[i] == TY_ERROR) return TY_ERROR;
  int known = 0;
  for (int i = 0; i < sema_nbuiltins; i++) {
    const sema_builtin *b = &sema_builtins[i];
    if (strcmp(b->name, n->name) != 0) continue;
    known = 1;
    if ((n->a != NULL) != b->method || nargs != b->nargs) continue;
    int match = 1;
    for (int k = 0; k < nargs; k++)
      if (!(b->args[k] == args[k] || (b->args[k] == TY_LIST && (args[k] & TY_LIST)) ||
            ((b->args[k] & TY_LIST) && args[k] == (TY_LIST | TY_NULL)) ||   /* [] */
            (b->args[k] == TY_MAP && TY_IS_MAP(args[k]))))
        match = 0;
    if (!match) continue;
    n->ref = i;
    if (b->fn == BF_TSPART && nargs == 2 && check_zone(u, n->list.v[0]) < 0) return TY_ERROR;
    if (b->fn == BF_MATCHES && check_pattern(u, n->list.v[n->list.n - 1]) < 0) return TY_ERROR;
    return b->result;
  }
  if (!known) {
    suggest s = {n->name, NULL, 99};
    char h[96];
    for (int i = 0; i < sema_nbuiltins; i++) consider(&s, sema_builtins[i].name);
    consider(&s, "has");
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, n->span, "unknown function '%s'%s", n->name, h);
    return TY_ERROR;
  }
  char sig[160] = "";
  size_t len = 0;
  for (int k = 0; k < nargs && k < 4; k++)
    len += (size_t)snprintf(sig + len, sizeof sig - len, "%s%s", k ? ", " : "",
                            sema_ty_name(args[k]));
  diag_error(&u->ctx, n->span, "no overload of %s%s takes (%s)", n->name,
             n->a ? " (as a method)" : "", sig);
  return TY_ERROR;
}

static const char *op_verb(int op) {
  switch (op) {
  case OP_ADD: return "add";
  case OP_SUB: return "subtract";
  case OP_MUL: return "multiply";
  case OP_DIV: return "divide";
  case OP_MOD: return "take the remainder of";
  default: return "compare";
  }
}

/* When plain number literal `a` is used where type `want` is, says how to
 * write it with that unit. */
static void literal_hint(char *buf, size_t n, const ast_node *a, int want) {
  buf[0] = 0;
  if ((a->kind != N_INT && a->kind != N_DOUBLE) || !a->span.file) return;
  size_t len;
  const char *line = ast_source_line(a->span.file, a->span.line, &len);
  if (!line || (size_t)(a->span.col - 1 + a->span.len) > len) return;
  int k = a->span.len;
  const char *lit = line + a->span.col - 1;
  switch (want) {
  case TY_DURATION:
    snprintf(buf, n, "; write %.*s with a unit, as in %.*sms or %.*ss", k, lit, k, lit, k, lit);
    break;
  case TY_MONEY: snprintf(buf, n, "; write %.*s as money, as in $%.*s", k, lit, k, lit); break;
  case TY_FRACTION: snprintf(buf, n, "; write %.*s as a percentage, as in %.*s%%", k, lit, k, lit); break;
  case TY_PRICE: snprintf(buf, n, "; write %.*s as a price, as in $%.*s/Mtok", k, lit, k, lit); break;
  default: break;
  }
}

/* The hint for a binary operation whose one side is a plain number. */
static void unit_hint(char *buf, size_t n, const ast_node *a, const ast_node *b) {
  if (b->kind == N_INT || b->kind == N_DOUBLE) literal_hint(buf, n, b, a->type);
  else literal_hint(buf, n, a, b->type);
}

static int check_binary(sema_unit *u, ast_node *n, int cx) {
  int lt = check(u, n->a, cx), rt = check(u, n->b, cx);
  if (lt == TY_ERROR || rt == TY_ERROR) return TY_ERROR;
  if (lt == TY_DYN || rt == TY_DYN) {
    /* an item of a constant list or map of mixed types (or of an empty
     * one) under a macro: folded, and the evaluator checks the types each
     * value has, as CEL does at run time */
    if (n->op == OP_AND || n->op == OP_OR || (n->op >= OP_EQ && n->op <= OP_IN)) return TY_BOOL;
    return TY_DYN;
  }
  if (n->op == OP_AND || n->op == OP_OR) {
    const char *w = n->op == OP_AND ? "&&" : "||";
    if (lt != TY_BOOL) {
      diag_error(&u->ctx, n->a->span, "'%s' needs bool operands, not %s", w, sema_ty_name(lt));
      return TY_ERROR;
    }
    if (rt != TY_BOOL) {
      diag_error(&u->ctx, n->b->span, "'%s' needs bool operands, not %s", w, sema_ty_name(rt));
      return TY_ERROR;
    }
    return TY_BOOL;
  }
  if (n->op == OP_IN && TY_IS_MAP(rt)) {
    if (!key_fits(TY_MKEY(rt), lt)) {
      diag_error(&u->ctx, n->span, "cannot look for %s in the keys of %s", sema_ty_name(lt),
                 sema_ty_name(rt));
      return TY_ERROR;
    }
    return TY_BOOL;
  }
  if (n->op == OP_IN) {
    if (!(rt & TY_LIST)) {
      diag_error(&u->ctx, n->b->span, "the right side of 'in' must be a list, not %s",
                 sema_ty_name(rt));
      return TY_ERROR;
    }
    int et = rt & ~TY_LIST;
    if (et != lt && et != TY_NULL && et != TY_DYN && !(is_num(et) && is_num(lt))) {
      diag_error(&u->ctx, n->span, "cannot look for %s in %s", sema_ty_name(lt),
                 sema_ty_name(rt));
      return TY_ERROR;
    }
    return TY_BOOL;
  }
  sema_plan p = sema_binplan(n->op, lt, rt);
  if (p.ty == TY_ERROR && (n->op == OP_EQ || n->op == OP_NE) && (is_dyn(n->a) || is_dyn(n->b))) {
    n->refkind = RK_HETERO;
    return TY_BOOL;
  }
  if (p.ty == TY_ERROR) {
    char h[96];
    unit_hint(h, sizeof h, n->a, n->b);
    if ((n->op == OP_EQ || n->op == OP_NE) && (rt & TY_LIST) && !(lt & TY_LIST))
      snprintf(h, sizeof h, "; to test membership, write %s",
               n->op == OP_EQ ? "x in [...]" : "!(x in [...])");
    if (n->op >= OP_EQ && n->op <= OP_GE)
      diag_error(&u->ctx, n->span, "cannot compare %s with %s%s", sema_ty_name(lt),
                 sema_ty_name(rt), h);
    else
      diag_error(&u->ctx, n->span, "cannot %s %s and %s%s", op_verb(n->op),
                 sema_ty_name(lt), sema_ty_name(rt), h);
  }
  return p.ty;
}

static int check_unary(sema_unit *u, ast_node *n, int cx) {
  int t = check(u, n->a, cx);
  if (t == TY_ERROR) return t;
  if (t == TY_DYN) return n->op == OP_NOT ? TY_BOOL : TY_DYN;   /* folded; see check_binary */
  if (n->op == OP_NOT) {
    if (t == TY_BOOL) return t;
    diag_error(&u->ctx, n->span, "'!' needs a bool, not %s", sema_ty_name(t));
    return TY_ERROR;
  }
  if (t == TY_INT || t == TY_DOUBLE || t == TY_TOKENS || is_scaled(t)) return t;
  diag_error(&u->ctx, n->span, "cannot negate %s", sema_ty_name(t));
  return TY_ERROR;
}

static int is_constant(const ast_node *n);

static int is_const_list(const ast_node *n) {
  for (int i = 0; i < n->list.n; i++)
    if (!n->list.v[i]->is_const) return 0;
  return 1;
}

/* The first item type of list n that is not its first item's. */
static int first_other(const ast_node *n) {
  for (int i = 1; i < n->list.n; i++)
    if (n->list.v[i]->type != n->list.v[0]->type) return n->list.v[i]->type;
  return n->list.v[0]->type;
}

static int check_list(sema_unit *u, ast_node *n, int cx) {
  int et = TY_NULL;
  for (int i = 0; i < n->list.n; i++) {
    int t = check(u, n->list.v[i], cx);
    if (t == TY_ERROR) return t;
    if (t & TY_LIST) {
      diag_error(&u->ctx, n->list.v[i]->span, "lists of lists are not supported");
      return TY_ERROR;
    }
    if (et == TY_NULL && i == 0) et = t;
    else if (t != et) et = TY_DYN;   /* CEL's list(dyn): constants only */
  }
  if (et == TY_DYN && !is_const_list(n)) {
    diag_error(&u->ctx, n->span, "list elements must share a type, unless the list is a "
               "constant (%s and %s here)", sema_ty_name(n->list.v[0]->type),
               sema_ty_name(first_other(n)));
    return TY_ERROR;
  }
  return TY_LIST | et;
}

/* Whether a checked node folds to a constant: a literal, or an operator or
 * builtin call over constants. Children are checked first, so one pass
 * decides it for the whole tree. */
static int is_constant(const ast_node *n) {
  switch (n->kind) {
  case N_INT: case N_UINT: case N_DOUBLE: case N_BOOL: case N_STRING: case N_NULL:
  case N_MONEY: case N_PRICE: case N_DURATION: case N_TOKENS: case N_FRACTION:
    return 1;
  case N_IDENT:   /* a macro's variable over a constant list or map; a type */
    return (n->refkind == RK_VAR && n->op) || n->refkind == RK_TYPENAME;
  case N_SELECTOR:
    return (n->refkind == RK_MAPKEY && n->a->is_const) || n->refkind == RK_TYPENAME;
  case N_CALL:
    if (sema_builtins[n->ref].fn == BF_TYPE) return 1;   /* the type is known now */
    /* fall through */
  case N_UNARY: case N_BINARY: case N_COND: case N_INDEX: case N_LIST: case N_MAP:
    if ((n->a && !n->a->is_const) || (n->b && !n->b->is_const) || (n->c && !n->c->is_const))
      return 0;
    for (int i = 0; i < n->list.n; i++)
      if (!n->list.v[i]->is_const) return 0;
    return 1;
  default:
    return 0;
  }
}

/* A map literal, {k: v, ...}: a constant, as lists are (maps have no
 * run-time value; a request's maps are fields). Keys are int, uint, bool
 * or string; keys or values of mixed types make CEL's dyn. */
static int check_map(sema_unit *u, ast_node *n, int cx) {
  int kt = TY_NULL, vt = TY_NULL;
  for (int i = 0; i + 1 < n->list.n; i += 2) {
    ast_node *k = n->list.v[i], *v = n->list.v[i + 1];
    int a = check(u, k, cx), b = check(u, v, cx);
    if (a == TY_ERROR || b == TY_ERROR) return TY_ERROR;
    if (a != TY_INT && a != TY_UINT && a != TY_BOOL && a != TY_STRING) {
      diag_error(&u->ctx, k->span, "a map key must be an int, uint, bool or string, not %s",
                 sema_ty_name(a));
      return TY_ERROR;
    }
    if ((b & TY_LIST) || TY_IS_MAP(b)) {
      diag_error(&u->ctx, v->span, "maps of lists or maps are not supported");
      return TY_ERROR;
    }
    if (!k->is_const || !v->is_const) {
      diag_error(&u->ctx, (k->is_const ? v : k)->span,
                 "a map literal's keys and values must be constants; a request's map is a "
                 "field (request { metadata: map(string, string) })");
      return TY_ERROR;
    }
    kt = i == 0 ? a : kt == a ? kt : TY_DYN;
    vt = i == 0 ? b : vt == b ? vt : TY_DYN;
  }
  return TY_MAPOF(kt, vt);
}

/* The type of item n (N_INDEX) of a constant list of mixed types: its
 * value's, which only folding knows. */
static int const_item_type(sema_unit *u, ast_node *n) {
  if (!n->a->is_const || (n->b && !n->b->is_const)) {
    diag_error(&u->ctx, n->span, "an item of a list or map of mixed types needs a constant "
               "index");
    return TY_ERROR;
  }
  return folded_type(u, n);
}

static int check(sema_unit *u, ast_node *n, int cx) {
  int t = TY_ERROR;
  switch (n->kind) {
  case N_INT: t = TY_INT; break;
  case N_UINT: t = TY_UINT; break;
  case N_DOUBLE: t = TY_DOUBLE; break;
  case N_BOOL: t = TY_BOOL; break;
  case N_STRING: t = TY_STRING; break;
  case N_NULL: t = TY_NULL; break;
  case N_MONEY: t = TY_MONEY; break;
  case N_PRICE: t = TY_PRICE; break;
  case N_DURATION: t = TY_DURATION; break;
  case N_TOKENS: t = TY_TOKENS; break;
  case N_FRACTION: t = TY_FRACTION; break;
  case N_IDENT: t = check_ident(u, n, cx); break;
  case N_SELECTOR: t = check_selector(u, n, cx); break;
  case N_CALL: t = check_call(u, n, cx); break;
  case N_UNARY: t = check_unary(u, n, cx); break;
  case N_BINARY: t = check_binary(u, n, cx); break;
  case N_LIST: t = check_list(u, n, cx); break;
  case N_MAP: t = check_map(u, n, cx); break;
  case N_INDEX: {
    int lt = check(u, n->a, cx), it = check(u, n->b, cx);
    if (lt == TY_ERROR || it == TY_ERROR) break;
    if (TY_IS_MAP(lt)) {
      if (!key_fits(TY_MKEY(lt), it)) {
        diag_error(&u->ctx, n->span, "cannot index %s with %s", sema_ty_name(lt),
                   sema_ty_name(it));
        break;
      }
      t = map_value(u, n, lt);
      break;
    }
    /* CEL takes a double of a whole value as an index where it is dyn */
    if (!(lt & TY_LIST) || (it != TY_INT && it != TY_UINT && !(it == TY_DOUBLE && is_dyn(n->b)))) {
      diag_error(&u->ctx, n->span, "cannot index %s with %s", sema_ty_name(lt),
                 sema_ty_name(it));
      break;
    }
    t = lt & ~TY_LIST;
    if (t == TY_DYN) t = const_item_type(u, n);
    break;
  }
  case N_COND: {
    int ct = check(u, n->a, cx), at = check(u, n->b, cx), bt = check(u, n->c, cx);
    if (ct == TY_ERROR || at == TY_ERROR || bt == TY_ERROR) break;
    if (ct != TY_BOOL) {
      diag_error(&u->ctx, n->a->span, "the condition of '?:' must be bool, not %s",
                 sema_ty_name(ct));
      break;
    }
    if (at != bt) {
      diag_error(&u->ctx, n->span, "the branches of '?:' differ: %s and %s",
                 sema_ty_name(at), sema_ty_name(bt));
      break;
    }
    t = at;
    break;
  }
  default:
    diag_error(&u->ctx, n->span, "not an expression");
    break;
  }
  n->type = t;
  n->is_const = t != TY_ERROR && is_constant(n);
  return t;
}

/* Checks e as a bool condition in context cx. */
static void check_cond(sema_unit *u, ast_node *e, int cx, const char *what) {
  int t = check(u, e, cx);
  if (t != TY_ERROR && t != TY_BOOL)
    diag_error(&u->ctx, e->span, "%s must be bool, not %s", what, sema_ty_name(t));
}

/* Checks a constant expression of type want and evaluates it. Plain ints
 * are accepted for tokens and doubles. Returns 0 with *out, or -1. */
int sema_check_const(sema_unit *u, ast_node *e, int want, const char *what, ev_val *out) {
  int t = check(u, e, CX_CONST);
  if (t == TY_ERROR) return -1;
  int ok = t == want || (want == TY_TOKENS && t == TY_INT) ||
           (want == TY_DOUBLE && t == TY_INT) ||
           (want == (TY_LIST | TY_STRING) && t == (TY_LIST | TY_NULL)) ||
           (TY_IS_MAP(want) && TY_IS_MAP(t) &&   /* {} or {"k": v}, ints for doubles */
            (TY_MKEY(t) == TY_STRING || TY_MKEY(t) == TY_NULL) &&
            (TY_MVAL(t) == TY_MVAL(want) || TY_MVAL(t) == TY_NULL ||
             (TY_MVAL(t) == TY_INT && (TY_MVAL(want) == TY_TOKENS ||
                                       sema_ty_mtype(TY_MVAL(want)) == LANE_T_DOUBLE))));
  if (!ok) {
    char h[96] = "";
    if (t == TY_MONEY && want == TY_PRICE) snprintf(h, sizeof h, "; a price is per token, as in $3/Mtok");
    else if (t == TY_FRACTION && want == TY_DOUBLE && e->kind == N_FRACTION) {
      char num[40];
      snprintf(h, sizeof h, "; write it as a number from 0 to 1: %s", ev_num(num, sizeof num, e->lit.d));
    } else literal_hint(h, sizeof h, e, want);
    diag_error(&u->ctx, e->span, "%s must be %s, not %s%s", what, sema_ty_name(want),
               sema_ty_name(t), h);
    return -1;
  }
  ev_env env = {.u = u, .model = -1};
  *out = ev_eval(&env, e);
  if (out->kind == EV_ERROR) {
    diag_error(&u->ctx, e->span, "%s: %s", what, out->err);
    return -1;
  }
  if (out->kind != EV_OK) {
    diag_error(&u->ctx, e->span, "%s must be a constant", what);
    return -1;
  }
  if (want == TY_DOUBLE && t == TY_INT) out->v.d = (double)out->v.i;
  out->ty = want;
  return 0;
}

/* ---- pools and targets ---- */

static void check_pool(sema_unit *u, ast_node *p);

static void check_named_pool(sema_unit *u, ast_node *ref) {
  int i = sema_pool_find(u, ref->name);
  if (i < 0) {
    suggest s = {ref->name, NULL, 99};
    char h[96];
    for (int k = 0; k < u->npools; k++) consider(&s, u->pools[k].name);
    hint(h, sizeof h, &s);
    diag_error(&u->ctx, ref->span, "unknown pool '%s'%s", ref->name, h);
    return;
  }
  ref->ref = i;
  sema_pool *p = &u->pools[i];
  if (p->state == 1) {
    diag_error(&u->ctx, ref->span, "pool '%s' is defined in terms of itself", ref->name);
    return;
  }
  if (p->state == 0) {
    p->state = 1;
    check_pool(u, p->def);
    p->state = 2;
  }
}

static void check_pool(sema_unit *u, ast_node *p) {
  p->ref = -1;
  if (p->name) check_named_pool(u, p);
  if (p->a) check_cond(u, p->a, CX_REQ | CX_MODEL, "a 'where' condition");
}

const char *sema_suggest(const char *name, const char *const *cands, int n) {
  suggest s = {name, NULL, 99};
  for (int i = 0; i < n; i++) consider(&s, cands[i]);
  return s.best;
}

const char *sema_suggest_model(const sema_unit *u, const char *name) {
  suggest s = {name, NULL, 99};
  for (int i = 0; i < u->nmodels; i++) consider(&s, u->models[i].name);
  return s.best;
}

/* Today as "YYYY-MM-DD": $LANE_TODAY when set (reproducible builds and
 * tests), else the UTC date. */
const char *sema_today(char buf[11]) {
  const char *env = getenv("LANE_TODAY");
  if (env && strlen(env) == 10) return memcpy(buf, env, 11);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, 11, "%Y-%m-%d", &tm);
  return buf;
}

/* Warns when a policy names a model its catalog marks deprecated. */
void sema_warn_deprecated(sema_unit *u, ast_span sp, const sema_model *m) {
  char today[11];
  if (!m->deprecated[0] || strcmp(m->deprecated, sema_today(today)) > 0) return;
  diag_report(&u->ctx, DIAG_WARNING, sp,
              "model '%s' was deprecated on %s (its catalog says so); route to a "
              "current model", m->name, m->deprecated);
}

static int check_model_ref(sema_unit *u, ast_node *t) {
  int m = sema_model_find(u, t->name);
  if (m < 0) {
    const char *best = sema_suggest_model(u, t->name);
    const char *dot = strchr(t->name, '.');
    char mod[160];
    if (dot && dot > t->name && (size_t)(dot - t->name) < 64 &&
        (snprintf(mod, sizeof mod, "std/providers/%.*s", (int)(dot - t->name), t->name),
         sema_module_declares(u, mod, t->name)))
      diag_error(&u->ctx, t->span, "unknown model '%s'; it is in the standard library: "
                 "add import \"%s\"", t->name, mod);
    else if (best)
      diag_error(&u->ctx, t->span, "unknown model '%s'; did you mean '%s'?", t->name, best);
    else
      diag_error(&u->ctx, t->span, "unknown model '%s'", t->name);
    return -1;
  }
  t->ref = m;
  u->models[m].used = 1;
  sema_warn_deprecated(u, t->span, &u->models[m]);
  return m;
}

static void check_target(sema_unit *u, ast_node *t) {
  switch (t->kind) {
  case N_MODELREF: check_model_ref(u, t); break;
  case N_SHADOW:
    check_model_ref(u, t);
    t->op = 0;   /* sampled percent; 0: every request */
    if (t->a) {
      double pct = t->a->lit.d * 100;
      long whole = (long)(pct + 0.5);
      if (whole < 1 || whole > 100 || pct - (double)whole > 1e-9 || (double)whole - pct > 1e-9)
        diag_error(&u->ctx, t->a->span,
                   "a shadow's sample must be a whole percent from 1%% to 100%%");
      else t->op = whole == 100 ? 0 : (int)whole;
    }
    break;
  case N_SELECT: check_pool(u, t->a); break;
  case N_SPLIT: {
    int key = check(u, t->a, CX_REQ);
    if (key != TY_ERROR && key != TY_STRING && key != TY_INT && key != TY_UINT)
      diag_error(&u->ctx, t->a->span, "a split key must be a string, an int or a uint, not %s",
                 sema_ty_name(key));
    long total = 0;
    int bad = 0;
    for (int i = 0; i < t->list.n; i++) {
      ast_node *arm = t->list.v[i];
      check_target(u, arm->a);
      if (arm->a->kind == N_SPLIT || arm->a->kind == N_SHADOW) {
        diag_error(&u->ctx, arm->a->span, "a split arm must be a model or a selection");
        bad = 1;
      }
      ev_val w;
      if (sema_check_const(u, arm->b, TY_FRACTION, "a split weight", &w) != 0) { bad = 1; continue; }
      double pct = w.v.d * 100;
      long whole = (long)(pct + 0.5);
      if (pct < 0 || pct - (double)whole > 1e-9 || (double)whole - pct > 1e-9) {
        diag_error(&u->ctx, arm->b->span, "split weights must be whole percents from 0%% to 100%%");
        bad = 1;
        continue;
      }
      arm->ref = (int)whole;
      total += whole;
    }
    if (!bad && total != 100)
      diag_error(&u->ctx, t->span, "split weights add up to %ld%%, not 100%%", total);
    break;
  }
  default: break;
  }
}

/* Counts the distinct shadow models of a rule with the route's own. */
static int count_shadows(const sema_route *r, const ast_node *rule) {
  int seen[LANE_MAX_SHADOWS + 1], n = 0;
  for (int pass = 0; pass < 2; pass++) {
    const ast_list *l = pass ? &r->shadows : &rule->list;
    for (int k = 0; k < l->n; k++) {
      const ast_node *t = l->v[k];
      if (t->kind != N_SHADOW || t->ref < 0) continue;
      int dup = 0;
      for (int i = 0; i < n; i++) dup |= seen[i] == t->ref;
      if (!dup && n <= LANE_MAX_SHADOWS) seen[n++] = t->ref;
    }
  }
  return n;
}

static void check_route(sema_unit *u, sema_route *r) {
  for (int i = 0; i < r->requires.n; i++)
    check_cond(u, r->requires.v[i]->a, CX_REQ | CX_MODEL, "a 'require' condition");
  for (int i = 0; i < r->shadows.n; i++) check_target(u, r->shadows.v[i]);
  for (int i = 0; i < r->rules.n; i++) {
    ast_node *rule = r->rules.v[i];
    if (rule->kind == N_WHEN) check_cond(u, rule->a, CX_REQ, "a 'when' condition");
    for (int k = 0; k < rule->list.n; k++) check_target(u, rule->list.v[k]);
    if (count_shadows(r, rule) > LANE_MAX_SHADOWS)
      diag_error(&u->ctx, rule->span,
                 "this rule has more than %d shadows (its own and the route's); "
                 "a decision carries at most %d", LANE_MAX_SHADOWS, LANE_MAX_SHADOWS);
  }
}

static void check_budget(sema_unit *u, sema_budget *b) {
  int have[3] = {0, 0, 0};
  ast_node *d = b->node;
  for (int i = 0; i < d->list.n; i++) {
    ast_node *p = d->list.v[i];
    ev_val v;
    if (p->name && strcmp(p->name, "key") == 0 && p->a) {
      have[0] = 1;
      int t = check(u, p->a, CX_REQ);
      if (t == TY_ERROR) continue;
      if (p->a->refkind != RK_FIELD) {
        diag_error(&u->ctx, p->a->span, "a budget key must be a request field, as in req.tenant");
        continue;
      }
      b->key_field = p->a->ref;
    } else if (p->name && strcmp(p->name, "limit") == 0 && p->a) {
      have[1] = 1;
      if (sema_check_const(u, p->a, TY_MONEY, "a budget limit", &v) == 0) {
        if (!(v.v.d > 0)) diag_error(&u->ctx, p->a->span, "a budget limit must be above $0");
        b->limit = v.v.d;
      }
    } else if (p->name && (strcmp(p->name, "window") == 0 || strcmp(p->name, "rolling") == 0) &&
               p->a) {
      if (have[2]++) {
        diag_error(&u->ctx, p->span, "a budget has one window: 'window' (fixed) or 'rolling'");
        continue;
      }
      b->rolling = p->name[0] == 'r';
      if (sema_check_const(u, p->a, TY_DURATION, "a budget window", &v) == 0) {
        if (!(v.v.d >= 1000)) diag_error(&u->ctx, p->a->span, "a budget window must be at least 1s");
        b->window_ms = v.v.d;
      }
    } else if (p->name && strcmp(p->name, "on_full") == 0 && p->a) {
      static const char *const modes[] = {"shared", "closed", "open"};
      int m = -1;
      for (int k = 0; k < 3 && p->a->kind == N_IDENT; k++)
        if (strcmp(p->a->name, modes[k]) == 0) m = k;
      if (m < 0)
        diag_error(&u->ctx, p->a->span, "on_full is shared, closed or open (what a key reads "
                   "when the budget's key table is full)");
      else
        b->on_full = m;   /* LANE_ON_FULL_SHARED, _CLOSED, _OPEN */
    } else {
      diag_error(&u->ctx, p->span,
                 "unknown budget property '%s'; expected key, limit, window, rolling or on_full",
                 p->name ? p->name : "caps");
    }
  }
  static const char *const names[] = {"key", "limit", "window"};
  for (int k = 0; k < 3; k++)
    if (!have[k]) diag_error(&u->ctx, d->span, "budget '%s' needs a %s", b->name, names[k]);
}

static void check_test(sema_unit *u, ast_node *t) {
  int routes = 0;
  for (int i = 0; i < t->list.n; i++) {
    ast_node *it = t->list.v[i];
    if (it->kind == N_TROUTE) {
      routes++;
      it->ref = sema_route_find(u, it->name);
      if (it->ref < 0) {
        suggest s = {it->name, NULL, 99};
        char h[96];
        for (int k = 0; k < u->nroutes; k++) consider(&s, u->routes[k].name);
        hint(h, sizeof h, &s);
        diag_error(&u->ctx, it->span, "unknown route '%s'%s", it->name, h);
      }
    } else if (it->kind == N_TREQ) {
      for (int k = 0; k < it->list.n; k++) {
        ast_node *init = it->list.v[k];
        int f = sema_field_find(u, init->name);
        if (f < 0) {
          suggest s = {init->name, NULL, 99};
          char h[96];
          for (int m = 0; m < u->nfields; m++) consider(&s, u->fields[m].name);
          hint(h, sizeof h, &s);
          diag_error(&u->ctx, init->span, "unknown request field '%s'%s", init->name, h);
          continue;
        }
        init->ref = f;
        ev_val v;
        sema_check_const(u, init->a, u->fields[f].ty, init->name, &v);
      }
    } else if (it->kind == N_EXPECT) {
      check_cond(u, it->a, CX_TEST, "an expectation");
    } else if (it->kind == N_TSTATE && !strcmp(it->name, "now")) {
      int64_t ms;
      if (sem_ts_parse(it->str, it->len, &ms) || ms <= 0)
        diag_error(&u->ctx, it->span, "a test's now is an RFC 3339 time after 1970, as in now "
                   "\"2026-01-05T23:00:00Z\"");
    } else if (it->kind == N_TSTATE && strcmp(it->name, "state") != 0) {
      diag_error(&u->ctx, it->span, "a test item is route, req, state \"FILE\", now \"TIME\" or "
                 "expect, not '%s'", it->name);
    }
  }
  if (routes != 1)
    diag_error(&u->ctx, t->span, "a test names exactly one route ('route NAME'), not %d", routes);
}

void sema_check_exprs(sema_unit *u) {
  for (int i = 0; i < u->npools; i++)
    if (u->pools[i].state == 0) {
      u->pools[i].state = 1;
      check_pool(u, u->pools[i].def);
      u->pools[i].state = 2;
    }
  for (int i = 0; i < u->nbudgets; i++) check_budget(u, &u->budgets[i]);
  for (int i = 0; i < u->nroutes; i++) check_route(u, &u->routes[i]);
  for (int i = 0; i < u->tests.n; i++) check_test(u, u->tests.v[i]);
}

/* One expression outside any declaration (lane eval --expr): request
 * fields may be read, model properties and decisions may not. */
int sema_check_expr(sema_unit *u, ast_node *e) {
  return check(u, e, CX_REQ);
}

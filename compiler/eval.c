/*
 * eval.c -- evaluation of checked expressions at compile time.
 *
 * One evaluator serves three uses: folding constants (model properties,
 * weights, fallbacks), deciding static model filters per model (names that
 * depend on the request or on live state evaluate to EV_UNKNOWN, and && ||
 * use three-valued logic), and checking test expectations against a
 * decision. Arithmetic follows the VM exactly: the same opcodes, the same
 * overflow and division errors, the same IEEE doubles. Every operation
 * both compute is the VM's own, from vm/sem.h; this file only maps
 * values and errors.
 */
#include "sema.h"
#include "builtins.h"
#include "sem.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static ev_val unknown(void) {
  ev_val v;
  memset(&v, 0, sizeof v);
  v.kind = EV_UNKNOWN;
  return v;
}

static ev_val error(const char *why) {
  ev_val v = unknown();
  v.kind = EV_ERROR;
  v.err = why;
  return v;
}

static ev_val mk(int ty) {
  ev_val v = unknown();
  v.kind = EV_OK;
  v.ty = ty;
  return v;
}

static ev_val mk_i(int ty, int64_t i) { ev_val v = mk(ty); v.v.i = i; return v; }
static ev_val mk_d(int ty, double d) { ev_val v = mk(ty); v.v.d = d; return v; }
static ev_val mk_b(int b) { return mk_i(TY_BOOL, b != 0); }
static ev_val mk_s(const char *s, size_t n) { ev_val v = mk(TY_STRING); v.s = s; v.n = n; return v; }

static ast_ctx *ctx_of(const ev_env *env) { return (ast_ctx *)&env->u->ctx; }

/* ---- machine operations, as the VM runs them (vm/sem.h) ---- */

static int scmp(const ev_val *a, const ev_val *b) { return sem_bytes_cmp(a->s, a->n, b->s, b->n); }

static ev_val mk_u(uint64_t u) { ev_val v = mk(TY_UINT); v.v.u = u; return v; }

static ev_val conv(int op, ev_val a) {
  int64_t i = 0;
  uint64_t u = 0;
  switch (op) {
  case BC_OP_I2D: return mk_d(TY_DOUBLE, (double)a.v.i);
  case BC_OP_U2D: return mk_d(TY_DOUBLE, (double)a.v.u);
  case BC_OP_D2I: return sem_d2i(a.v.d, &i) ? error(sem_fault_text(op, 0)) : mk_i(TY_INT, i);
  case BC_OP_D2U: return sem_d2u(a.v.d, &u) ? error(sem_fault_text(op, 0)) : mk_u(u);
  case BC_OP_I2U: return sem_i2u(a.v.i, &u) ? error(sem_fault_text(op, 0)) : mk_u(u);
  case BC_OP_U2I: return sem_u2i(a.v.u, &i) ? error(sem_fault_text(op, 0)) : mk_i(TY_INT, i);
  default: return a;
  }
}

/* The folding error for a sem_* status of an int (uns 0) or uint (uns 1)
 * operation; op tells division from modulus. */
static ev_val arith_error(int st, int op) { return error(sem_fault_text(op, st == SEM_EZERO)); }

static ev_val mop_int(int op, int64_t a, int64_t b) {
  int64_t r = 0;
  int st;
  switch (op) {
  case BC_OP_ADD_I: st = sem_add_i(a, b, &r); break;
  case BC_OP_SUB_I: st = sem_sub_i(a, b, &r); break;
  case BC_OP_MUL_I: st = sem_mul_i(a, b, &r); break;
  case BC_OP_DIV_I: st = sem_div_i(a, b, &r); break;
  case BC_OP_MOD_I: st = sem_mod_i(a, b, &r); break;
  case BC_OP_EQ_I: return mk_b(a == b);
  case BC_OP_NE_I: return mk_b(a != b);
  case BC_OP_LT_I: return mk_b(a < b);
  case BC_OP_LE_I: return mk_b(a <= b);
  case BC_OP_GT_I: return mk_b(a > b);
  case BC_OP_GE_I: return mk_b(a >= b);
  default: return error("bad int operation");
  }
  return st ? arith_error(st, op) : mk_i(TY_INT, r);
}

static ev_val mop_uint(int op, uint64_t a, uint64_t b) {
  uint64_t r = 0;
  int st;
  switch (op) {
  case BC_OP_ADD_U: st = sem_add_u(a, b, &r); break;
  case BC_OP_SUB_U: st = sem_sub_u(a, b, &r); break;
  case BC_OP_MUL_U: st = sem_mul_u(a, b, &r); break;
  case BC_OP_DIV_U: st = sem_div_u(a, b, &r); break;
  case BC_OP_MOD_U: st = sem_mod_u(a, b, &r); break;
  case BC_OP_EQ_U: return mk_b(a == b);
  case BC_OP_NE_U: return mk_b(a != b);
  case BC_OP_LT_U: return mk_b(a < b);
  case BC_OP_LE_U: return mk_b(a <= b);
  case BC_OP_GT_U: return mk_b(a > b);
  case BC_OP_GE_U: return mk_b(a >= b);
  default: return error("bad uint operation");
  }
  return st ? arith_error(st, op) : mk_u(r);
}

static ev_val mop_dbl(int op, double a, double b) {
  switch (op) {
  case BC_OP_ADD_D: return mk_d(TY_DOUBLE, a + b);
  case BC_OP_SUB_D: return mk_d(TY_DOUBLE, a - b);
  case BC_OP_MUL_D: return mk_d(TY_DOUBLE, a * b);
  case BC_OP_DIV_D: return mk_d(TY_DOUBLE, a / b);
  case BC_OP_EQ_D: return mk_b(a == b);
  case BC_OP_NE_D: return mk_b(a != b);
  case BC_OP_LT_D: return mk_b(a < b);
  case BC_OP_LE_D: return mk_b(a <= b);
  case BC_OP_GT_D: return mk_b(a > b);
  case BC_OP_GE_D: return mk_b(a >= b);
  default: return error("bad double operation");
  }
}

/* Applies machine opcode op to two values of its operand type. */
static ev_val mop(int op, ev_val a, ev_val b) {
  int64_t t = 0;
  switch (op) {
  case BC_OP_TS_ADD: case BC_OP_TS_SUB:
    return sem_ts_add(a.v.i, op == BC_OP_TS_SUB ? -b.v.d : b.v.d, &t)
               ? error(sem_fault_text(op, 0)) : mk_i(TY_TIMESTAMP, t);
  case BC_OP_TS_ADD_R:
    return sem_ts_add(b.v.i, a.v.d, &t) ? error(sem_fault_text(op, 0)) : mk_i(TY_TIMESTAMP, t);
  case BC_OP_TS_DIFF: return mk_d(TY_DURATION, (double)a.v.i - (double)b.v.i);
  case BC_OP_EQ_S: return mk_b(scmp(&a, &b) == 0);
  case BC_OP_NE_S: return mk_b(scmp(&a, &b) != 0);
  case BC_OP_LT_S: return mk_b(scmp(&a, &b) < 0);
  case BC_OP_LE_S: return mk_b(scmp(&a, &b) <= 0);
  case BC_OP_GT_S: return mk_b(scmp(&a, &b) > 0);
  case BC_OP_GE_S: return mk_b(scmp(&a, &b) >= 0);
  case BC_OP_EQ_B: return mk_b(a.v.i == b.v.i);
  case BC_OP_NE_B: return mk_b(a.v.i != b.v.i);
  case BC_OP_LT_B: return mk_b(a.v.i < b.v.i);
  case BC_OP_LE_B: return mk_b(a.v.i <= b.v.i);
  case BC_OP_GT_B: return mk_b(a.v.i > b.v.i);
  case BC_OP_GE_B: return mk_b(a.v.i >= b.v.i);
  default: break;
  }
  const char *nm = bc_ops[op].in;
  if (nm[0] == 'I') return mop_int(op, a.v.i, b.v.i);
  if (nm[0] == 'U') return mop_uint(op, a.v.u, b.v.u);
  return mop_dbl(op, a.v.d, b.v.d);
}

/* ---- structural equality (models, lists, null) ---- */

static int vequal(const ev_val *a, const ev_val *b);

/* The entry of map m whose key equals k (numbers across types, as == compares
 * them): its value, or NULL. */
static const ev_val *map_find(const ev_val *m, const ev_val *k) {
  for (size_t i = 0; i < m->n; i++)
    if (vequal(&m->items[2 * i], k)) return &m->items[2 * i + 1];
  return NULL;
}

static int vequal(const ev_val *a, const ev_val *b) {
  if (TY_IS_MAP(a->ty) || TY_IS_MAP(b->ty)) {   /* the same keys, equal values */
    if (!TY_IS_MAP(a->ty) || !TY_IS_MAP(b->ty) || a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
      const ev_val *v = map_find(b, &a->items[2 * i]);
      if (!v || !vequal(&a->items[2 * i + 1], v)) return 0;
    }
    return 1;
  }
  if ((a->ty & TY_LIST) || (b->ty & TY_LIST)) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
      if (!vequal(&a->items[i], &b->items[i])) return 0;
    return 1;
  }
  if ((a->ty == TY_STRING && b->ty == TY_STRING) || (a->ty == TY_TYPE && b->ty == TY_TYPE))
    return scmp(a, b) == 0;
  if (a->ty == b->ty) {
    if (sema_ty_mtype(a->ty) == LANE_T_DOUBLE) return a->v.d == b->v.d;
    return a->v.i == b->v.i;
  }
  sema_plan p = sema_binplan(OP_EQ, a->ty, b->ty);
  if (p.op < 0) return 0;
  ev_val r = mop(p.op, conv(p.lconv, *a), conv(p.rconv, *b));
  return r.kind == EV_OK && r.v.i;
}

/* ---- names ---- */

static ev_val model_prop(const ev_env *env, int m, int prop) {
  const sema_model *md = &env->u->models[m];
  if (prop >= MP_CAP) return mk_b((md->caps >> (prop - MP_CAP)) & 1);
  /* prop < MP_CAP here (cppcheck misses the return), and soff is the
   * offsetof of a member of that type, so the casts below are aligned */
  // cppcheck-suppress arrayIndexOutOfBoundsCond
  const char *at = (const char *)md + sema_mprops[prop].soff;
  // cppcheck-suppress arrayIndexOutOfBoundsCond
  if (sema_mprops[prop].soff)   /* a declared value: by its type */
    switch (bc_mprops[prop].mt) {
    // cppcheck-suppress invalidPointerCast
    case 'D': return mk_d(sema_mprops[prop].ty, *(const double *)at);
    case 'I': return mk_i(sema_mprops[prop].ty, *(const int64_t *)at);
    default: {
      const char *s = *(const char *const *)at;
      return mk_s(s, strlen(s));
    }
    }
  switch (prop) {
  case MP_TAGS: {
    ev_val v = mk(TY_LIST | TY_STRING);
    ev_val *items = ast_alloc(ctx_of(env), (size_t)(md->ntags + 1) * sizeof *items);
    if (!items) return error("out of memory");
    for (int i = 0; i < md->ntags; i++) items[i] = mk_s(md->tags[i], strlen(md->tags[i]));
    v.items = items;
    v.n = (size_t)md->ntags;
    return v;
  }
  default: return unknown();   /* cost, fits, healthy, error rate: per decision */
  }
}

static ev_val model_list(const ev_env *env, const int *idx, int n) {
  ev_val v = mk(TY_LIST | TY_MODEL);
  ev_val *items = ast_alloc(ctx_of(env), (size_t)(n + 1) * sizeof *items);
  if (!items) return error("out of memory");
  for (int i = 0; i < n; i++) items[i] = mk_i(TY_MODEL, idx[i]);
  v.items = items;
  v.n = (size_t)n;
  return v;
}

static ev_val decision_val(const ev_env *env, int dv) {
  const lane_decision *d = env->dec;
  if (!d) return unknown();
  if (dv == DV_DECIDED) return mk_b(env->decided);
  if (dv == DV_FILTERED) return mk_i(TY_INT, d->filtered_rule);
  if (!env->decided && dv != DV_ERRORS && dv != DV_ROUTE)
    return error("there is no decision (no rule produced a model)");
  switch (dv) {
  case DV_RULE: return mk_i(TY_INT, d->rule);
  case DV_RULE_NAME: {
    const char *s = lane_rule_name(env->prog, d->route, d->rule);
    return s ? mk_s(s, strlen(s)) : mk_s("", 0);
  }
  case DV_PRIMARY: return mk_i(TY_MODEL, d->candidates[0]);
  case DV_FALLBACKS: return model_list(env, d->candidates + 1, d->ncandidates - 1);
  case DV_SHADOWS: return model_list(env, d->shadows, d->nshadows);
  case DV_COST: return mk_d(TY_MONEY, d->cost);
  case DV_ERRORS: return mk_i(TY_INT, d->nerrors);
  case DV_ROUTE: {
    const char *s = lane_route_name(env->prog, d->route);
    return mk_s(s, strlen(s));
  }
  default: return unknown();
  }
}

/* A request field's value, when explaining a decision. */
/* A request's map field (stored as sem.h says) as a map value. */
static ev_val map_field_val(const ev_env *env, int ty, const lane_value *m, int set) {
  ev_val v = mk(ty);
  const char *p = set ? m->s.p : NULL;
  size_t n = set ? m->s.n : 0, at = 4;
  uint32_t count = sem_map_count(p, n);
  int vt = TY_MVAL(ty), str = sema_ty_mtype(vt) == LANE_T_STRING;
  ev_val *items = ast_alloc(ctx_of(env), (2 * (size_t)count + 1) * sizeof *items);
  if (!items) return error("out of memory");
  for (uint32_t i = 0; i < count; i++) {
    const char *k, *vb;
    size_t kn, vn;
    sem_map_next(p, &at, str, &k, &kn, &vb, &vn);
    items[2 * i] = mk_s(k, kn);
    ev_val x = mk(vt);
    if (str) { x.s = vb; x.n = vn; }
    else if (sema_ty_mtype(vt) == LANE_T_DOUBLE) memcpy(&x.v.d, vb, 8);
    else memcpy(&x.v.i, vb, 8);
    items[2 * i + 1] = x;
  }
  v.items = items;
  v.n = count;
  return v;
}

static ev_val field_val(const ev_env *env, const ast_node *n) {
  const lane_request *r = env->req;
  int f = n->ref, set = (int)(r->set >> f & 1);
  int ty = env->u->fields[f].ty;
  if (TY_IS_MAP(ty)) return map_field_val(env, ty, &r->v[f], set);
  if (ty & TY_LIST) {   /* a list(string): a map of empty keys, its values the items */
    ev_val m = map_field_val(env, TY_MAPOF(TY_STRING, TY_STRING), &r->v[f], set);
    if (m.kind != EV_OK) return m;
    ev_val *items = ast_alloc(ctx_of(env), (m.n + 1) * sizeof *items);
    if (!items) return error("out of memory");
    for (size_t i = 0; i < m.n; i++) items[i] = m.items[2 * i + 1];
    ev_val l = mk(ty);
    l.items = items;
    l.n = m.n;
    return l;
  }
  switch (sema_ty_mtype(ty)) {
  case LANE_T_STRING: return set ? mk_s(r->v[f].s.p, r->v[f].s.n) : mk_s("", 0);
  case LANE_T_DOUBLE: return mk_d(ty, set ? r->v[f].d : 0);
  case LANE_T_BOOL: return mk_b(set && r->v[f].i);
  case LANE_T_UINT: { ev_val v = mk(TY_UINT); v.v.u = set ? r->v[f].u : 0; return v; }
  default: return mk_i(ty, set ? r->v[f].i : 0);
  }
}

/* A budget figure for the request's key, when explaining. */
static ev_val budget_val(const ev_env *env, const ast_node *n) {
  int b = n->ref >> 2, which = n->ref & 3, f = env->u->budgets[b].key_field;
  const lane_request *r = env->req;
  double spent = 0, limit = env->u->budgets[b].limit;
  if (f >= 0 && (r->set >> f & 1)) {
    /* The key as lane_budget_key_hash reads it: its text, by type. */
    char buf[40];
    const char *k = buf;
    size_t kn;
    switch (sema_ty_mtype(env->u->fields[f].ty)) {
    case LANE_T_STRING: k = r->v[f].s.p; kn = r->v[f].s.n; break;
    case LANE_T_UINT: kn = (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->v[f].u); break;
    case LANE_T_BOOL: kn = (size_t)snprintf(buf, sizeof buf, "%s", r->v[f].i ? "true" : "false"); break;
    case LANE_T_DOUBLE: kn = (size_t)snprintf(buf, sizeof buf, "%.17g", r->v[f].d); break;
    default: kn = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)r->v[f].i); break;
    }
    lane_budget_spent(env->rt, b, lane_budget_key_hash(env->prog, b, k, kn), &spent);
  }
  return mk_d(which == 2 ? TY_FRACTION : TY_MONEY, sem_budget_figure(spent, limit, which));
}

/* Whether the VM let model m pass `healthy` in the decision being
 * explained (sem_breaker_health on its breaker now). A model among the
 * decision's candidates passed whatever it was asked: it may have taken
 * its breaker's probe since, which moves the deadline on. */
/* Whether the VM's breaker rule let model m be chosen: by the live view
 * the decision saw (env->stats, taken before it), else by rt as it is now
 * -- which, after a decision that claimed a probe, reads half-open. */
static int live_healthy(const ev_env *env, const lane_live_stats *st) {
  uint64_t now = env->stats ? env->now : lane_runtime_now(env->rt);
  return sem_breaker_health(st->state, st->until_ms, now) != SEM_UNHEALTHY;
}

/* A model property that depends on the request or live state, when
 * explaining: the same figures the VM read, by the VM's rules. */
static ev_val live_prop(const ev_env *env, int m, int prop) {
  lane_live_stats st;
  const sema_model *md = &env->u->models[m];
  if (env->stats) st = env->stats[m];
  else lane_model_stats(env->rt, m, &st);
  switch (prop) {
  case MP_COST:   /* as the decision's route counts it (its output_estimate) */
    return mk_d(TY_MONEY, env->dec ? lane_route_cost(env->prog, env->dec->route, env->req, m)
                                   : lane_cost(env->prog, env->req, m));
  case MP_FITS: {
    int64_t in = field_val(env, &(ast_node){.ref = BC_F_INPUT_TOKENS}).v.i;
    int64_t out = field_val(env, &(ast_node){.ref = BC_F_MAX_OUTPUT_TOKENS}).v.i;
    return mk_b(sem_fits(in, out, md->context, md->max_output));
  }
  case MP_HEALTHY: return mk_b(live_healthy(env, &st));
  case MP_P50: return mk_d(TY_DURATION, st.p50);
  case MP_P95: return mk_d(TY_DURATION, st.p95);
  case MP_ERROR_RATE: return mk_d(TY_FRACTION, st.error_rate);
  default: return model_prop(env, m, prop);
  }
}

static ev_val eval_ident(const ev_env *env, const ast_node *n) {
  switch (n->refkind) {
  case RK_MODEL: return mk_i(TY_MODEL, n->ref);
  case RK_DECISION: return decision_val(env, n->ref);
  case RK_MPROP:
    if (env->model < 0) return unknown();
    if (env->req && env->rt && env->prog) return live_prop(env, env->model, n->ref);
    /* Bare p50/p95 in a filter are live figures: not known statically. */
    // cppcheck-suppress arrayIndexOutOfBoundsCond ; guarded by n->ref < MP_CAP
    if (n->ref < MP_CAP && bc_mprops[n->ref].kind == BC_MPK_PRIOR) return unknown();
    return model_prop(env, env->model, n->ref);
  default: return unknown();
  }
}

/* ---- builtins ---- */

static ev_val bucket(const ev_val *k) {
  return mk_d(TY_FRACTION, k->ty == TY_STRING ? sem_bucket_s(k->s, k->n) : sem_bucket_u(k->v.u));
}

/* string(x) of a constant, as CEL writes it. */
static ev_val format_value(const ev_env *env, const ev_val *v) {
  char buf[40];
  int len;
  switch (v->ty) {
  case TY_STRING: return *v;
  case TY_BOOL: len = snprintf(buf, sizeof buf, "%s", v->v.i ? "true" : "false"); break;
  case TY_UINT: len = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v->v.u); break;
  case TY_DOUBLE: len = sem_dtoa(buf, sizeof buf, v->v.d); break;   /* as D2S */
  default: len = snprintf(buf, sizeof buf, "%lld", (long long)v->v.i); break;
  }
  char *s = ast_strndup(ctx_of(env), buf, (size_t)len);
  return s ? mk_s(s, (size_t)len) : error("out of memory");
}

/* int(s), uint(s), bool(s) of a string, as the VM parses them (sem.h);
 * double(s) of a constant string: the whole string must be the number. */
static ev_val parse_number(const ev_val *s, int ty) {
  int64_t i;
  if (ty == TY_UINT) {
    ev_val v = mk(TY_UINT);
    return sem_parse_u(s->s, s->n, &v.v.u) ? error(sem_fault_text(BC_OP_S2U, 0)) : v;
  }
  if (ty == TY_BOOL)
    return sem_parse_b(s->s, s->n, &i) ? error(sem_fault_text(BC_OP_S2B, 0)) : mk_b((int)i);
  if (ty == TY_INT)
    return sem_parse_i(s->s, s->n, &i) ? error(sem_fault_text(BC_OP_S2I, 0)) : mk_i(TY_INT, i);
  double d;
  return sem_parse_d(s->s, s->n, &d) ? error(sem_fault_text(BC_OP_S2D, 0)) : mk_d(TY_DOUBLE, d);
}

/* lowerAscii, upperAscii and replace of constants, as the VM builds them
 * (sem.h), within LANE_MAX_STRING. */
static ev_val eval_build(const ev_env *env, const sema_builtin *b, const ev_val *a, int na) {
  char *out = ast_alloc(ctx_of(env), LANE_MAX_STRING + 1);
  size_t len = a[0].n;
  if (!out) return error("out of memory");
  if (b->fn == BF_REPLACE) {
    if (sem_replace(a[0].s, a[0].n, a[1].s, a[1].n, a[2].s, a[2].n, na > 3 ? a[3].v.i : -1, out,
                    LANE_MAX_STRING, &len))
      return error(sem_fault_text(b->op, 0));
  } else {
    sem_ascii_case(a[0].s, a[0].n, b->fn == BF_UPPER, out);
  }
  return mk_s(out, len);
}

/* s.split(sep[, n]): Go's strings.SplitN, as CEL's strings extension. */
static ev_val eval_split(const ev_env *env, const ev_val *a, int na) {
  int64_t limit = na > 2 ? a[2].v.i : -1;
  const char *s = a[0].s, *sep = a[1].s, *p;
  size_t n = a[0].n, sn = a[1].n, count = 0, at = 0, pn;
  ev_val *items = ast_alloc(ctx_of(env), (n + 2) * sizeof *items);
  if (!items) return error("out of memory");
  while (limit != 0) {   /* the parts as the VM's S_SPLIT_* visit them */
    if (limit > 0 && (int64_t)count == limit - 1) {   /* the rest is the last part */
      if (at < n || (sn && at == n)) items[count++] = mk_s(s + at, n - at);
      break;
    }
    if (!sem_split_next(s, n, sep, sn, &at, &p, &pn)) break;
    items[count++] = mk_s(p, pn);
  }
  ev_val v = mk(TY_LIST | TY_STRING);
  v.items = items;
  v.n = count;
  return v;
}

/* list.join([sep]). */
static ev_val eval_join(const ev_env *env, const ev_val *a, int na) {
  size_t len = 0, sn = na > 1 ? a[1].n : 0;
  for (size_t i = 0; i < a[0].n; i++) len += a[0].items[i].n + (i ? sn : 0);
  if (len > LANE_MAX_STRING) return error(sem_fault_text(BC_OP_S_CAT, 0));
  char *out = ast_alloc(ctx_of(env), len + 1), *o = out;
  if (!out) return error("out of memory");
  for (size_t i = 0; i < a[0].n; i++) {
    if (i && sn) { memcpy(o, a[1].s, sn); o += sn; }
    if (a[0].items[i].n) memcpy(o, a[0].items[i].s, a[0].items[i].n);
    o += a[0].items[i].n;
  }
  return mk_s(out, len);
}

#define NOOP_OP (-2)   /* builtins.c's NOOP: the identity */

/* timestamp(), duration(), int() and string() of them, as the VM. */
static ev_val eval_time(const ev_env *env, int op, const ev_val *a) {
  int64_t t;
  double d;
  char buf[48];
  switch (op) {
  case BC_OP_TS_PARSE:
    return sem_ts_parse(a->s, a->n, &t) ? error(sem_fault_text(op, 0)) : mk_i(TY_TIMESTAMP, t);
  case BC_OP_DUR_PARSE:
    return sem_dur_parse(a->s, a->n, &d) ? error(sem_fault_text(op, 0)) : mk_d(TY_DURATION, d);
  case BC_OP_TS2I: return mk_i(TY_INT, sem_floordiv(a->v.i, 1000));
  case BC_OP_SEC2TS:
    return a->v.i < SEM_TS_MIN / 1000 || a->v.i > SEM_TS_MAX / 1000
               ? error(sem_fault_text(op, 0)) : mk_i(TY_TIMESTAMP, a->v.i * 1000);
  case NOOP_OP: return *a;
  default: {
    int len = op == BC_OP_TS2S ? sem_ts_format(a->v.i, buf, sizeof buf)
                               : sem_dur_format(a->v.d, buf, sizeof buf);
    char *s = ast_strndup(ctx_of(env), buf, (size_t)len);
    return s ? mk_s(s, (size_t)len) : error("out of memory");
  }
  }
}

/* The math extension's fixed-arity functions: the opcode's operation. */
static ev_val eval_math(int op, const ev_val *a) {
  int64_t i = 0;
  uint64_t u = 0;
  switch (op) {
  case BC_OP_CEIL: return mk_d(TY_DOUBLE, sem_ceil(a[0].v.d));
  case BC_OP_FLOOR: return mk_d(TY_DOUBLE, sem_floor(a[0].v.d));
  case BC_OP_ROUND: return mk_d(TY_DOUBLE, sem_round(a[0].v.d));
  case BC_OP_TRUNC: return mk_d(TY_DOUBLE, sem_trunc(a[0].v.d));
  case BC_OP_ABS_I: return sem_abs_i(a[0].v.i, &i) ? error(sem_fault_text(op, 0)) : mk_i(TY_INT, i);
  case BC_OP_ABS_D: return mk_d(TY_DOUBLE, sem_fabs(a[0].v.d));
  case BC_OP_SIGN_I: return mk_i(TY_INT, (a[0].v.i > 0) - (a[0].v.i < 0));
  case BC_OP_SIGN_U: return mk_u(a[0].v.u != 0);
  case BC_OP_SIGN_D: return mk_d(TY_DOUBLE, sem_sign_d(a[0].v.d));
  case BC_OP_ISNAN: return mk_b(isnan(a[0].v.d));
  case BC_OP_ISINF: return mk_b(isinf(a[0].v.d));
  case BC_OP_ISFINITE: return mk_b(isfinite(a[0].v.d));
  case BC_OP_BAND_I: return mk_i(TY_INT, a[0].v.i & a[1].v.i);
  case BC_OP_BAND_U: return mk_u(a[0].v.u & a[1].v.u);
  case BC_OP_BOR_I: return mk_i(TY_INT, a[0].v.i | a[1].v.i);
  case BC_OP_BOR_U: return mk_u(a[0].v.u | a[1].v.u);
  case BC_OP_BXOR_I: return mk_i(TY_INT, a[0].v.i ^ a[1].v.i);
  case BC_OP_BXOR_U: return mk_u(a[0].v.u ^ a[1].v.u);
  case BC_OP_BNOT_I: return mk_i(TY_INT, ~a[0].v.i);
  case BC_OP_BNOT_U: return mk_u(~a[0].v.u);
  case BC_OP_SHL_I: case BC_OP_SHL_U: case BC_OP_SHR_I: case BC_OP_SHR_U: {
    int left = op == BC_OP_SHL_I || op == BC_OP_SHL_U;
    if ((left ? sem_shl_u : sem_shr_u)(a[0].v.u, a[1].v.i, &u)) return error(sem_fault_text(op, 0));
    return op == BC_OP_SHL_I || op == BC_OP_SHR_I ? mk_i(TY_INT, (int64_t)u) : mk_u(u);
  }
  default: return a[0];   /* abs of a uint */
  }
}

/* Whether a > b, numbers compared as the VM compares them. */
static int greater(const ev_val *a, const ev_val *b) {
  sema_plan p = sema_binplan(OP_GT, a->ty, b->ty);
  if (p.op < 0) return 0;
  ev_val r = mop(p.op, conv(p.lconv, *a), conv(p.rconv, *b));
  return r.kind == EV_OK && r.v.i;
}

/* math.greatest and math.least: of the arguments, or of a list's items;
 * the first wins a tie, a NaN wins outright (as MAX_D and MIN_D). */
static ev_val eval_minmax(const ev_env *env, const ast_node *n, int most) {
  ev_val one = ev_eval(env, n->list.v[0]), best;
  const ev_val *items = NULL;
  size_t count = (size_t)n->list.n;
  if (one.kind != EV_OK) return one;
  if (n->list.n == 1 && (one.ty & TY_LIST)) {
    items = one.items;
    count = one.n;
    if (!count) return error("math.greatest and math.least need at least one value");
  }
  for (size_t i = 0; i < count; i++) {
    ev_val v = items ? items[i] : i ? ev_eval(env, n->list.v[i]) : one;
    if (v.kind != EV_OK) return v;
    if (v.ty != TY_INT && v.ty != TY_UINT && sema_ty_mtype(v.ty) != LANE_T_DOUBLE &&
        v.ty != TY_TOKENS)
      return error("no such overload: math.greatest and math.least take numbers");
    if (i == 0 || (best.ty == TY_DOUBLE && best.v.d != best.v.d)) {
      if (i == 0) best = v;
      continue;
    }
    if ((sema_ty_mtype(v.ty) == LANE_T_DOUBLE && v.v.d != v.v.d) ||
        (most ? greater(&v, &best) : greater(&best, &v)))
      best = v;
  }
  return best;
}

/* CEL's comprehension macros (check_macro): each item of the list (each
 * key of the map) binds the macro's variables, at their depth, in a copy
 * of the environment. all: false wins over an error, an error over true;
 * exists the reverse; exists_one, map, filter and the transforms stop at
 * the first error. An unknown item or condition (a model's tags before
 * the model is known) makes the result unknown. */
static ev_val eval_macro(const ev_env *env, const ast_node *n, int fn) {
  ev_val c = ev_eval(env, n->a);
  if (c.kind != EV_OK) return c;
  int map = TY_IS_MAP(c.ty), two = fn == BF_TLIST || fn == BF_TMAP ||
            (n->list.n == 3 && fn != BF_MAP && fn != BF_FILTER);
  int base = n->list.v[0]->ref, first = two ? 2 : 1, last = n->list.n - 1;
  int cond = fn == BF_ALL || fn == BF_EXISTS || fn == BF_EXISTS_ONE || fn == BF_FILTER;
  const ast_node *pred = cond ? n->list.v[last] : last > first ? n->list.v[first] : NULL;
  const ast_node *expr = cond ? NULL : n->list.v[last];
  ev_val vars[SEMA_MAX_MVARS], out = mk(n->type), pending = unknown();
  if (base < 0 || base + two >= SEMA_MAX_MVARS) return error("macro variables too deep");
  if (base && !env->vars) return unknown();   /* an inner macro, outside its outer one */
  if (env->vars && base) memcpy(vars, env->vars, (size_t)base * sizeof *vars);
  ev_env e = *env;
  e.vars = vars;
  ev_val *items = NULL;
  size_t count = 0, ones = 0;
  if (fn == BF_MAP || fn == BF_FILTER || fn == BF_TLIST || fn == BF_TMAP) {
    items = ast_alloc(ctx_of(env), (2 * c.n + 1) * sizeof *items);
    if (!items) return error("out of memory");
  }
  pending.kind = EV_OK;   /* none yet: an error or an unknown replaces it */
  for (size_t i = 0; i < c.n; i++) {
    const ev_val *key = map ? &c.items[2 * i] : NULL, *item = map ? &c.items[2 * i + 1]
                                                                  : &c.items[i];
    if (two) {
      vars[base] = map ? *key : mk_i(TY_INT, (int64_t)i);
      vars[base + 1] = *item;
    } else {
      vars[base] = map ? *key : *item;
    }
    if (pred) {
      ev_val r = ev_eval(&e, pred);
      if (r.kind == EV_OK && fn == BF_ALL && !r.v.i) return mk_b(0);
      if (r.kind == EV_OK && fn == BF_EXISTS && r.v.i) return mk_b(1);
      if (r.kind != EV_OK && (fn == BF_ALL || fn == BF_EXISTS)) {
        if (pending.kind == EV_OK || r.kind == EV_UNKNOWN) pending = r;
        continue;
      }
      if (r.kind != EV_OK) return r;
      if (!r.v.i) continue;
      ones++;
      if (fn == BF_FILTER) items[count++] = map ? *key : *item;
    }
    if (expr) {
      ev_val r = ev_eval(&e, expr);
      if (r.kind != EV_OK) return r;
      if (fn == BF_TMAP) {
        items[2 * count] = map ? *key : mk_i(TY_INT, (int64_t)i);
        items[2 * count + 1] = r;
      } else {
        items[count] = r;
      }
      count++;
    }
  }
  switch (fn) {
  case BF_ALL: return pending.kind == EV_OK ? mk_b(1) : pending;
  case BF_EXISTS: return pending.kind == EV_OK ? mk_b(0) : pending;
  case BF_EXISTS_ONE: return mk_b(ones == 1);
  default:
    out.items = items;
    out.n = count;
    return out;
  }
}

static ev_val eval_call(const ev_env *env, const ast_node *n) {
  int fn = sema_builtins[n->ref].fn;
  if (fn >= BF_ALL && fn <= BF_TMAP) return eval_macro(env, n, fn);
  if (fn == BF_TYPE) {   /* the static type; a constant's value (dyn: its own type) */
    const ast_node *x = n->list.v[0];
    int ty = x->type;
    if (x->is_const) {
      ev_val v = ev_eval(env, x);
      if (v.kind != EV_OK) return v;
      ty = v.ty;
    }
    const char *name = sema_type_value(ty);
    ev_val t = mk(TY_TYPE);
    t.s = name;
    t.n = strlen(name);
    return t;
  }
  if (fn == BF_HAS && n->list.v[0]->refkind == RK_MAPKEY) {   /* has(m.k) */
    ev_val m = ev_eval(env, n->list.v[0]->a);
    if (m.kind != EV_OK) return m;
    ev_val k = mk_s(n->list.v[0]->name, strlen(n->list.v[0]->name));
    return mk_b(map_find(&m, &k) != NULL);
  }
  if (fn == BF_HAS)   /* known only with a request */
    return env->req ? mk_b((int)(env->req->set >> n->list.v[0]->ref & 1))
                    : unknown();
  if (fn == BF_GREATEST || fn == BF_LEAST) return eval_minmax(env, n, fn == BF_GREATEST);
  ev_val a[4];
  int na = 0;
  if (n->a) a[na++] = ev_eval(env, n->a);
  for (int i = 0; i < n->list.n && na < 4; i++) a[na++] = ev_eval(env, n->list.v[i]);
  for (int i = 0; i < na; i++)
    if (a[i].kind != EV_OK) return a[i];
  const sema_builtin *b = &sema_builtins[n->ref];
  switch (b->fn) {
  case BF_SIZE:
    return mk_i(TY_INT, a[0].ty == TY_STRING ? sem_utf8_size(a[0].s, a[0].n) : (int64_t)a[0].n);
  case BF_STARTS: return mk_b(sem_starts(a[0].s, a[0].n, a[1].s, a[1].n));
  case BF_ENDS: return mk_b(sem_ends(a[0].s, a[0].n, a[1].s, a[1].n));
  case BF_CONTAINS: return mk_b(sem_contains(a[0].s, a[0].n, a[1].s, a[1].n));
  case BF_CHARAT: case BF_SUBSTR: case BF_TRIM: {   /* views of the receiver's bytes */
    ev_val r = a[0];
    const char *p = a[0].s;
    size_t len = a[0].n;
    int st = SEM_OK;
    if (b->fn == BF_CHARAT) st = sem_char_at(a[0].s, a[0].n, a[1].v.i, &p, &len);
    else if (b->fn == BF_SUBSTR)
      st = sem_substring(a[0].s, a[0].n, a[1].v.i, na > 2 ? a[2].v.i : 0, na == 2, &p, &len);
    else sem_trim(a[0].s, a[0].n, &p, &len);
    if (st) return error(sem_fault_text(b->op, 0));
    r.s = p;
    r.n = len;
    return r;
  }
  case BF_INDEX: case BF_LASTINDEX: {
    int64_t r = 0;
    int st = (b->fn == BF_INDEX ? sem_index_of : sem_last_index_of)(
        a[0].s, a[0].n, a[1].s, a[1].n, na > 2 ? a[2].v.i : 0, na > 2, &r);
    if (st) return error(sem_fault_text(b->op, 0));
    return mk_i(TY_INT, r);
  }
  case BF_DYN: return a[0];
  case BF_MATCHES: {   /* the installed engine, as the VM's S_MATCH */
    const lane_regex_engine *e = lane_regex_installed();
    char why[160];
    void *re = e ? e->compile(a[1].s, a[1].n, why, sizeof why) : NULL;
    if (!re) return unknown();   /* checked: an engine and a good pattern */
    int m = e->match(re, a[0].s, a[0].n);
    e->release(re);
    return m < 0 ? error(sem_fault_text(BC_OP_S_MATCH, 0)) : mk_b(m);
  }
  case BF_TIME: return eval_time(env, b->op, &a[0]);
  case BF_TSPART: {
    sem_tz z;
    const char *rule = na > 1 ? n->list.v[0]->text : NULL;
    if (rule && sem_tz_parse(rule, &z)) return unknown();   /* checked: cannot happen */
    return mk_i(TY_INT, sem_ts_part(a[0].v.i, sema_ts_part(b->name), rule ? &z : NULL));
  }
  case BF_DURPART: {
    static const double per[] = {3600000.0, 60000.0, 1000.0, 1.0};
    double q = a[0].v.d / per[sema_ts_part(b->name) - SEM_TS_HOURS];
    return mk_i(TY_INT, q != q ? 0 : q >= 9.2e18 ? INT64_MAX : q <= -9.2e18 ? INT64_MIN
                                                              : (int64_t)q);
  }
  case BF_LOWER: case BF_UPPER: case BF_REPLACE: return eval_build(env, b, a, na);
  case BF_SPLIT: return eval_split(env, a, na);
  case BF_JOIN: return eval_join(env, a, na);
  case BF_MATH: return eval_math(b->op, a);
  case BF_BUCKET: return bucket(&a[0]);
  case BF_STRING: return format_value(env, &a[0]);
  case BF_INT: case BF_UINT: case BF_DOUBLE: case BF_BOOL:
    if (a[0].ty == TY_STRING) return parse_number(&a[0], b->result);
    /* fall through */
  default: {
    ev_val r = b->op >= 0 ? conv(b->op, a[0]) : a[0];
    if (r.kind == EV_OK) r.ty = b->result;
    return r;
  }
  }
}

/* ---- operators ---- */

/* A value of a dyn operand of && or || that is not a bool is CEL's
 * "no such overload". */
static ev_val as_bool(ev_val v) {
  return v.kind == EV_OK && v.ty != TY_BOOL ? error("no such overload: && and || take bools") : v;
}

static ev_val eval_logic(const ev_env *env, const ast_node *n) {
  int is_and = n->op == OP_AND;
  ev_val a = as_bool(ev_eval(env, n->a));
  if (a.kind == EV_OK && a.v.i != is_and) return mk_b(!is_and);   /* short circuit */
  ev_val b = as_bool(ev_eval(env, n->b));
  if (b.kind == EV_OK && b.v.i != is_and) return mk_b(!is_and);   /* absorbs a */
  /* An unknown side may yet absorb the other's error (error || true is
   * true): unknown before error, or a static model filter would drop a
   * model that the VM keeps. */
  if (a.kind == EV_UNKNOWN || b.kind == EV_UNKNOWN) return unknown();
  if (a.kind == EV_ERROR) return a;
  if (b.kind == EV_ERROR) return b;
  return mk_b(is_and);
}

static ev_val eval_concat(const ev_env *env, ev_val a, ev_val b, int ty) {
  if (ty == TY_STRING) {
    if (a.n + b.n > LANE_MAX_STRING) return error(sem_fault_text(BC_OP_S_CAT, 0));
    char *s = ast_alloc(ctx_of(env), a.n + b.n + 1);
    if (!s) return error("out of memory");
    memcpy(s, a.s, a.n);
    memcpy(s + a.n, b.s, b.n);
    return mk_s(s, a.n + b.n);
  }
  ev_val *items = ast_alloc(ctx_of(env), (a.n + b.n + 1) * sizeof *items);
  if (!items) return error("out of memory");
  for (size_t i = 0; i < a.n; i++) items[i] = a.items[i];
  for (size_t i = 0; i < b.n; i++) items[a.n + i] = b.items[i];
  ev_val v = mk(ty);
  v.items = items;
  v.n = a.n + b.n;
  return v;
}

static ev_val eval_binary(const ev_env *env, const ast_node *n) {
  if (n->op == OP_AND || n->op == OP_OR) return eval_logic(env, n);
  ev_val a = ev_eval(env, n->a);
  ev_val b = ev_eval(env, n->b);
  if (a.kind == EV_ERROR) return a;
  if (b.kind == EV_ERROR) return b;
  if (a.kind != EV_OK || b.kind != EV_OK) return unknown();
  if (n->op == OP_IN && TY_IS_MAP(b.ty)) return mk_b(map_find(&b, &a) != NULL);
  if (n->op == OP_IN) {
    for (size_t i = 0; i < b.n; i++)
      if (vequal(&a, &b.items[i])) return mk_b(1);
    return mk_b(0);
  }
  if (n->refkind == RK_HETERO) return mk_b(n->op == OP_NE);
  sema_plan p = sema_binplan(n->op, a.ty, b.ty);
  if (p.ty == TY_ERROR && (n->op == OP_EQ || n->op == OP_NE) &&
      (n->a->type == TY_DYN || n->b->type == TY_DYN))   /* heterogeneous, as dyn() */
    return mk_b((n->op == OP_EQ) == vequal(&a, &b));
  if (p.ty == TY_ERROR) return error("operands of different types");
  if (p.op < 0 || p.op == BC_OP_S_CAT) {
    if (n->op == OP_EQ) return mk_b(vequal(&a, &b));
    if (n->op == OP_NE) return mk_b(!vequal(&a, &b));
    return eval_concat(env, a, b, p.ty);
  }
  ev_val r = mop(p.op, conv(p.lconv, a), conv(p.rconv, b));
  if (r.kind == EV_OK) r.ty = p.ty;
  return r;
}

static ev_val eval_unary(const ev_env *env, const ast_node *n) {
  ev_val a = ev_eval(env, n->a);
  if (a.kind != EV_OK) return a;
  if (n->op == OP_NOT)
    return a.ty == TY_BOOL ? mk_b(!a.v.i) : error("no such overload: ! takes a bool");
  if (a.ty != TY_INT && sema_ty_mtype(a.ty) != LANE_T_DOUBLE)   /* -x of a dyn item */
    return error("no such overload: - takes a number");
  if (sema_ty_mtype(a.ty) == LANE_T_DOUBLE) { a.v.d = -a.v.d; return a; }
  if (sem_neg_i(a.v.i, &a.v.i)) return error(sem_fault_text(BC_OP_NEG_I, 0));
  return a;
}

static ev_val eval_list(const ev_env *env, const ast_node *n) {
  ev_val v = mk(n->type);
  ev_val *items = ast_alloc(ctx_of(env), (size_t)(n->list.n + 1) * sizeof *items);
  if (!items) return error("out of memory");
  for (int i = 0; i < n->list.n; i++) {
    items[i] = ev_eval(env, n->list.v[i]);
    if (items[i].kind != EV_OK) return items[i];
  }
  v.items = items;
  v.n = (size_t)n->list.n;
  return v;
}

/* A map literal: its entries in order; a key given twice is an error. */
static ev_val eval_map(const ev_env *env, const ast_node *n) {
  ev_val v = mk(n->type);
  size_t count = (size_t)n->list.n / 2;
  ev_val *items = ast_alloc(ctx_of(env), (2 * count + 1) * sizeof *items);
  if (!items) return error("out of memory");
  v.items = items;
  for (size_t i = 0; i < count; i++) {
    ev_val k = ev_eval(env, n->list.v[2 * i]), x = ev_eval(env, n->list.v[2 * i + 1]);
    if (k.kind != EV_OK) return k;
    if (x.kind != EV_OK) return x;
    v.n = i;
    if (map_find(&v, &k)) return error("a map literal repeats a key");
    items[2 * i] = k;
    items[2 * i + 1] = x;
  }
  v.n = count;
  return v;
}

/* m[k] and m.k. */
static ev_val map_get(const ev_val *m, const ev_val *k) {
  const ev_val *v = map_find(m, k);
  return v ? *v : error(sem_fault_text(BC_OP_MAP_GET, 0));
}

ev_val ev_eval(const ev_env *env, const ast_node *n) {
  switch (n->kind) {
  case N_INT: case N_TOKENS: return mk_i(n->kind == N_INT ? TY_INT : TY_TOKENS, n->lit.i);
  case N_UINT: { ev_val v = mk(TY_UINT); v.v.u = n->lit.u; return v; }
  case N_BOOL: return mk_b(n->lit.b);
  case N_NULL: return mk(TY_NULL);
  case N_STRING: return mk_s(n->str, n->len);
  case N_DOUBLE: case N_MONEY: case N_PRICE: case N_DURATION: case N_FRACTION:
    return mk_d(n->type, n->lit.d);
  case N_IDENT:
    if (n->refkind == RK_TYPENAME) { ev_val t = mk(TY_TYPE); t.s = n->name; t.n = strlen(n->name); return t; }
    if (n->refkind == RK_VAR) return env->vars ? env->vars[n->ref] : unknown();
    if (n->refkind == RK_NOW) return env->now ? mk_i(TY_TIMESTAMP, (int64_t)env->now) : unknown();
    return eval_ident(env, n);
  case N_SELECTOR:
    if (n->refkind == RK_TYPENAME) {   /* google.protobuf.Timestamp */
      char *q = ast_alloc(ctx_of(env), 64);
      if (!q) return error("out of memory");
      snprintf(q, 64, "google.protobuf.%s", n->name);
      ev_val t = mk(TY_TYPE);
      t.s = q;
      t.n = strlen(q);
      return t;
    }
    if (n->refkind == RK_MAPKEY) {
      ev_val m = ev_eval(env, n->a), k = mk_s(n->name, strlen(n->name));
      return m.kind != EV_OK ? m : map_get(&m, &k);
    }
    if (n->refkind == RK_MODEL) return mk_i(TY_MODEL, n->ref);
    if (n->refkind == RK_MPROP) {
      ev_val m = ev_eval(env, n->a);
      if (m.kind != EV_OK) return m;
      return model_prop(env, (int)m.v.i, n->ref);
    }
    if (env->req && n->refkind == RK_FIELD) return field_val(env, n);
    if (env->req && env->rt && env->prog && n->refkind == RK_BUDGET) return budget_val(env, n);
    return unknown();   /* request fields and budgets, at compile time */
  case N_CALL: return eval_call(env, n);
  case N_UNARY: return eval_unary(env, n);
  case N_BINARY: return eval_binary(env, n);
  case N_LIST: return eval_list(env, n);
  case N_MAP: return eval_map(env, n);
  case N_INDEX: {
    ev_val l = ev_eval(env, n->a), i = ev_eval(env, n->b);
    if (l.kind != EV_OK) return l;
    if (i.kind != EV_OK) return i;
    if (TY_IS_MAP(l.ty)) return map_get(&l, &i);
    if (i.ty == TY_DOUBLE) {   /* dyn(2.0): a whole value */
      double d = i.v.d;
      if (!(d >= 0 && d < (double)l.n) || d != (double)(int64_t)d)
        return error(d == d && d == (double)(int64_t)d ? "index out of range"
                                                       : "index is not a whole number");
      i.v.i = (int64_t)d;
    }
    if (i.v.i < 0 || (uint64_t)i.v.i >= l.n) return error("index out of range");
    return l.items[i.v.i];
  }
  case N_COND: {
    ev_val c = ev_eval(env, n->a);
    if (c.kind != EV_OK) return c;
    return ev_eval(env, c.v.i ? n->b : n->c);
  }
  default: return unknown();
  }
}

/* The shortest %g form that reads back as exactly d (at most 17 digits):
 * 0.00054 stays "0.00054", and the double just below it shows as
 * "0.00053999999999999993", so two different values never print alike. */
const char *ev_num(char *buf, size_t n, double d) { return sem_num(buf, n, d); }

const char *ev_show(const sema_unit *u, const ev_val *v, char *buf, size_t n) {
  if (v->kind == EV_UNKNOWN) { snprintf(buf, n, "(unknown)"); return buf; }
  if (v->kind == EV_ERROR) { snprintf(buf, n, "error: %s", v->err); return buf; }
  if (sema_ty_unit(v->ty))   /* a scalar: as the VM's explanations show it */
    return sem_show(buf, n, sema_ty_unit(v->ty), v->ty == TY_UINT ? (int64_t)v->v.u : v->v.i,
                    v->v.d, v->s, v->n);
  switch (v->ty) {
  case TY_MODEL: snprintf(buf, n, "%s", u->models[v->v.i].name); break;
  case TY_TYPE: snprintf(buf, n, "%.*s", (int)v->n, v->s); break;
  case TY_NULL: snprintf(buf, n, "null"); break;
  default: {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < v->n && len + 2 < n; i++) {
      char item[128];
      ev_show(u, &v->items[i], item, sizeof item);
      len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", item);
    }
    if (len + 2 < n) snprintf(buf + len, n - len, "]");
    break;
  }
  }
  return buf;
}

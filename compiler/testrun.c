/*
 * testrun.c -- runs a policy's test blocks against its compiled program.
 *
 * Each test builds a request from its `req { }` constants, decides on its
 * route with the real VM, and evaluates every `expect` against the
 * decision. Output is TAP, so `lane test` runs under prove.
 */
#include "sema.h"

#include <string.h>

/* Sets field f of r from a constant; returns 0 or -1. */
static int set_field(lane_request *r, int f, const ev_val *v) {
  switch (sema_ty_mtype(v->ty)) {
  case LANE_T_INT: return lane_set_int(r, f, v->v.i);
  case LANE_T_UINT: return lane_set_uint(r, f, v->v.u);
  case LANE_T_DOUBLE: return lane_set_double(r, f, v->v.d);
  case LANE_T_BOOL: return lane_set_bool(r, f, (int)v->v.i);
  case LANE_T_STRING: return lane_set_str(r, f, v->s, v->n);
  default: return -1;
  }
}

static void build_request(sema_unit *u, const ast_node *t, lane_request *r) {
  ev_env env = {u, -1, NULL, NULL};
  for (int i = 0; i < t->list.n; i++) {
    const ast_node *it = t->list.v[i];
    if (it->kind != N_TREQ) continue;
    for (int k = 0; k < it->list.n; k++) {
      const ast_node *init = it->list.v[k];
      ev_val v = ev_eval(&env, init->a);
      if (v.kind != EV_OK) continue;
      if (v.ty == TY_INT && sema_ty_mtype(u->fields[init->ref].ty) == LANE_T_DOUBLE) {
        v.v.d = (double)v.v.i;
        v.ty = TY_DOUBLE;
      }
      set_field(r, init->ref, &v);
    }
  }
}

/* Shows the left operand of a failed comparison, the most useful hint. */
static void explain(sema_unit *u, const ev_env *env, const ast_node *e, FILE *out) {
  char buf[512];
  const ast_node *shown = e;
  if (e->kind == N_BINARY && e->op >= OP_EQ && e->op <= OP_IN) shown = e->a;
  else if (e->kind == N_UNARY) shown = e->a;
  ev_val v = ev_eval(env, shown);
  int line = e->span.line;
  fprintf(out, "#   %s:%d: expect failed; %s is %s\n",
          e->span.file ? e->span.file->name : "?", line,
          shown->kind == N_IDENT ? shown->name : "the left side", ev_show(u, &v, buf, sizeof buf));
}

static int run_one(sema_unit *u, const lane_program *p, lane_runtime *rt,
                   const ast_node *t, int num, FILE *out) {
  int route = -1;
  for (int i = 0; i < t->list.n; i++)
    if (t->list.v[i]->kind == N_TROUTE) route = lane_route(p, t->list.v[i]->name);
  lane_request r;
  lane_request_init(&r, p);
  build_request(u, t, &r);
  lane_decision d;
  int rc = route >= 0 ? lane_decide_route(rt, route, &r, &d) : LANE_EARG;
  if (rc != LANE_OK) {
    fprintf(out, "not ok %d - %.*s\n#   decision failed: %s\n", num, (int)t->len, t->str,
            rc == LANE_ENOMATCH ? "no rule matched" : lane_status_name(rc));
    return 1;
  }
  ev_env env = {u, -1, &d, p};
  int failed = 0;
  for (int i = 0; i < t->list.n; i++) {
    const ast_node *it = t->list.v[i];
    if (it->kind != N_EXPECT) continue;
    ev_val v = ev_eval(&env, it->a);
    if (v.kind == EV_OK && v.v.i) continue;
    if (!failed) fprintf(out, "not ok %d - %.*s\n", num, (int)t->len, t->str);
    failed = 1;
    explain(u, &env, it->a, out);
  }
  if (!failed) fprintf(out, "ok %d - %.*s\n", num, (int)t->len, t->str);
  return failed;
}

int sema_run_tests(sema_unit *u, const lane_program *p, FILE *out) {
  lane_error err;
  lane_runtime *rt = lane_runtime_new(p, &err);
  if (!rt) {
    fprintf(out, "Bail out! %s\n", err.message);
    return u->tests.n ? u->tests.n : 1;
  }
  fprintf(out, "1..%d\n", u->tests.n);
  int failed = 0;
  for (int i = 0; i < u->tests.n; i++) failed += run_one(u, p, rt, u->tests.v[i], i + 1, out);
  lane_runtime_free(rt);
  return failed;
}

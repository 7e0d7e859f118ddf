/*
 * explain.c -- `lane eval --explain`: why a decision went where it went.
 *
 * The VM records what it tried (lane_decide_traced): each rule started,
 * whether its condition held, each model a selection considered, kept or
 * removed, and what was chosen. With the policy's source at hand, the
 * compiler's evaluator, given the same request and live state, then says
 * which part of a condition failed and with what values, and which
 * require or filter removed a model. The VM's trace decides; the
 * evaluator only explains, with the same operations (vm/sem.h). It is
 * given the decision too: live state read after the decision may have
 * moved on (a candidate took its breaker's probe), and the evaluator
 * answers `healthy` for a candidate as the VM did.
 */
#include "explain.h"
#include "sem.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

/* The source text of a node, as the explain tables hold it. */
static void src_text(const ast_node *n, char *buf, size_t cap) {
  sema_node_text(n, NULL, 0, buf, cap);
}

static int is_literal(const ast_node *n) { return n->is_const; }

/* The evaluator's view of the decision being explained. */
static ev_env env_of(const explain_in *in) {
  ev_env env = {.u = in->u, .model = -1, .dec = in->dec, .prog = in->prog, .req = in->req,
                .rt = in->rt, .decided = in->rc == LANE_OK, .stats = in->before, .now = in->now};
  return env;
}

lane_live_stats *explain_capture(const lane_runtime *rt, const lane_program *p, uint64_t *now) {
  int n = lane_model_count(p);
  lane_live_stats *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
  if (!s) return NULL;
  *now = lane_runtime_now(rt);
  for (int m = 0; m < n; m++) lane_model_stats(rt, m, &s[m]);
  return s;
}

/* Says why a boolean expression is not true for env, into buf. */
static void why_not(const ev_env *env, const ast_node *n, char *buf, size_t cap) {
  char src[SEM_SRC_MAX], show[SEM_SHOW_MAX];
  ev_val v = ev_eval(env, n);
  src_text(n, src, sizeof src);
  if (v.kind == EV_ERROR) { text_cat(buf, cap, "`%s` raised an error: %s", src, v.err); return; }
  if (n->kind == N_BINARY && (n->op == OP_AND || n->op == OP_OR)) {
    ev_val a = ev_eval(env, n->a), b = ev_eval(env, n->b);
    int a_bad = !(a.kind == EV_OK && a.v.i), b_bad = !(b.kind == EV_OK && b.v.i);
    if (n->op == OP_AND) {
      /* a false side decides even when the other raised an error */
      int a_false = a.kind == EV_OK && !a.v.i, b_false = b.kind == EV_OK && !b.v.i;
      why_not(env, a_false ? n->a : b_false ? n->b : a_bad ? n->a : n->b, buf, cap);
    } else if (a_bad && b_bad) {
      why_not(env, n->a, buf, cap);
      text_cat(buf, cap, "; and ");
      why_not(env, n->b, buf, cap);
    }
    return;
  }
  if (n->kind == N_UNARY && n->op == OP_NOT) { text_cat(buf, cap, "`%s` is true", src + 1); return; }
  text_cat(buf, cap, "`%s` is false", src);
  if (n->kind == N_BINARY && n->op >= OP_EQ && n->op <= OP_IN) {
    const ast_node *side[2] = {n->a, n->b};
    int shown = 0;
    for (int i = 0; i < 2; i++) {
      /* a list or a map has no value the bytecode's tables show */
      if (is_literal(side[i]) || !sema_ty_unit(side[i]->type)) continue;
      ev_val sv = ev_eval(env, side[i]);
      src_text(side[i], src, sizeof src);
      text_cat(buf, cap, "%s%s = %s", shown++ ? ", " : " (", src, ev_show(env->u, &sv, show, sizeof show));
    }
    if (shown) text_cat(buf, cap, ")");
  }
}

/* The rule node of a route's rule number (1-based). */
static const ast_node *rule_node(const sema_unit *u, int route, int rule) {
  const sema_route *r = &u->routes[route];
  return rule >= 1 && rule <= r->rules.n ? r->rules.v[rule - 1] : NULL;
}

/* The first top-level conjunct of c that does not hold for env, or NULL. */
static const ast_node *failing(const ev_env *env, const ast_node *c) {
  if (c->kind == N_BINARY && c->op == OP_AND) {
    const ast_node *f = failing(env, c->a);
    return f ? f : failing(env, c->b);
  }
  ev_val v = ev_eval(env, c);
  return v.kind == EV_OK && v.v.i ? NULL : c;
}

/* The same over a selection's pool: a named pool's definition, then the
 * selection's own condition. Pools name pools only without cycles (the
 * checker refuses one), so the walk ends. */
static const ast_node *pool_failing(const ev_env *env, const ast_node *p) {
  const sema_unit *u = env->u;
  const ast_node *f = NULL;
  if (p->name && p->ref >= 0) f = pool_failing(env, u->pools[p->ref].def);
  if (!f && p->a) f = failing(env, p->a);
  return f;
}

/* The target that chooses in place *place of a rule (LANE_EV_SELECT's
 * count: a selection or a model named alone, split arms included, in the
 * order emit.c writes them, a split's arms of weight 0 left out as it
 * leaves them out), counting *place down; NULL if t holds fewer. */
static const ast_node *target_at(const ast_node *t, int *place) {
  switch (t->kind) {
  case N_MODELREF:
  case N_SELECT:
    return (*place)-- == 0 ? t : NULL;
  case N_SPLIT: {
    for (int i = 0, last = sema_split_last(t); i <= last; i++) {
      if (t->list.v[i]->ref == 0) continue;
      const ast_node *f = target_at(t->list.v[i]->a, place);
      if (f) return f;
    }
    return NULL;
  }
  default: return NULL;
  }
}

/* The first require of the route, or filter of selection `sel` of rule
 * `rule` (its place among the rule's selections, as LANE_EV_SELECT
 * says), that model m does not pass; NULL when it passes them all. */
static const ast_node *removed_by(const ev_env *base, int route, int rule, int sel, int m) {
  const sema_unit *u = base->u;
  const sema_route *r = &u->routes[route];
  ev_env env = *base;
  env.model = m;
  for (int i = 0; i < r->requires.n; i++) {
    const ast_node *f = failing(&env, r->requires.v[i]->a);
    if (f) return f;
  }
  const ast_node *rn = rule_node(u, route, rule);
  const ast_node *t = NULL;
  for (int k = 0; rn && !t && k < rn->list.n; k++) t = target_at(rn->list.v[k], &sel);
  return t && t->kind == N_SELECT ? pool_failing(&env, t->a) : NULL;
}

/* Why model m was removed in rule `rule`: the first require or filter
 * condition that does not hold for it. */
static void why_removed(const ev_env *base, int route, int rule, int sel, int m, char *buf,
                        size_t cap) {
  const ast_node *f = removed_by(base, route, rule, sel, m);
  if (!f) return;   /* the VM's reason (lane_event.check) stands */
  ev_env env = *base;
  env.model = m;
  why_not(&env, f, buf, cap);
}

/* ---- the evaluator's reasons ---- */

static void explain_why_rule(const explain_in *in, int rule, char *buf, size_t cap) {
  ev_env env = env_of(in);
  const ast_node *rn = in->u ? rule_node(in->u, in->route, rule) : NULL;
  if (cap) buf[0] = 0;
  if (rn && rn->kind == N_WHEN) why_not(&env, rn->a, buf, cap);
}

static void explain_why_removed(const explain_in *in, int rule, int sel, int model, char *buf,
                         size_t cap) {
  ev_env env = env_of(in);
  if (cap) buf[0] = 0;
  if (in->u) why_removed(&env, in->route, rule, sel, model, buf, cap);
}

int explain_rule_holds(const explain_in *in, int rule) {
  ev_env env = env_of(in);
  const ast_node *rn = in->u ? rule_node(in->u, in->route, rule) : NULL;
  if (!rn) return -2;
  if (rn->kind != N_WHEN) return 1;   /* otherwise */
  ev_val v = ev_eval(&env, rn->a);
  return v.kind == EV_OK ? (v.v.i != 0) : v.kind == EV_ERROR ? -1 : -2;
}

int explain_member_passes(const explain_in *in, int rule, int sel, int model) {
  ev_env env = env_of(in);
  return in->u ? removed_by(&env, in->route, rule, sel, model) == NULL : -2;
}

/* lane_explain_text's hooks: the evaluator's reasons, with the source. */
static void hook_rule(void *ctx, int rule, char *buf, size_t cap) {
  explain_why_rule(ctx, rule, buf, cap);
}

static void hook_removed(void *ctx, int rule, int sel, int model, int check, char *buf,
                         size_t cap) {
  (void)check;
  explain_why_removed(ctx, rule, sel, model, buf, cap);
}

static void print_with(const explain_in *in, const lane_explain_hooks *hp, FILE *out) {
  size_t n = lane_explain_text(in->rt, in->route, in->req, in->rc, in->dec, in->trace, hp,
                               NULL, 0);
  char *text = malloc(n + 1);
  if (!text) {
    fprintf(out, "(no memory for the explanation)\n");
    return;
  }
  lane_explain_text(in->rt, in->route, in->req, in->rc, in->dec, in->trace, hp, text, n + 1);
  fputs(text, out);
  free(text);
}

void explain_print_text(const explain_in *in, FILE *out) { print_with(in, NULL, out); }

void explain_print_source(const explain_in *in, FILE *out) {
  lane_explain_hooks h = {(void *)in, hook_rule, hook_removed};
  print_with(in, in->u ? &h : NULL, out);
}

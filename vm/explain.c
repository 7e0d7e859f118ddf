/*
 * explain.c -- lane_explain_text and lane_explain: why a decision went
 * where it went, written from the VM's own trace and the program's
 * explain tables.
 *
 * The trace says which rules were tried and how they ended, which members
 * each target considered (LANE_EV_SELECT marks where a target starts),
 * which check removed a member (lane_event.check) and what was chosen.
 * The explain tables (XNODES, XRULES, XSELS; bc.h) say which part of a
 * rule's condition, or of the conditions a member must pass, is false and
 * with what values: their regions are VM code, run here by the
 * interpreter itself, so a .lanec explains what the VM computes, as the
 * policy's source would (tests/unit/t_explain.c holds the two equal for
 * every golden policy). A program without the tables explains from the
 * trace alone; hooks may replace the reasons.
 */
#include "sem.h"
#include "text.h"
#include "vm.h"


const char *lane_check_name(int check) {
  switch (check) {
  case LANE_CHECK_FITS: return "fits";
  case LANE_CHECK_HEALTHY: return "healthy";
  case LANE_CHECK_FILTER: return "filter";
  default: return "";
  }
}

/* The reason a member was removed, from the trace alone. */
static const char *check_reason(int check) {
  switch (check) {
  case LANE_CHECK_FITS: return "`fits` is false";
  case LANE_CHECK_HEALTHY: return "`healthy` is false";
  case LANE_CHECK_FILTER: return "a condition of its selection or of the route's requires is false";
  default: return "a check of this decision";
  }
}

/* ---- reasons from the explain tables ---- */

typedef struct xctx {
  lane_runtime        *rt;
  const lane_request  *r;
  const lane_decision *d;       /* the decision explained, or NULL */
  uint32_t             model;   /* the member explained; one past the models: none */
  char               (*sbuf)[BC_SCRATCH]; /* 4 rooms for strings regions build */
  unsigned            *snext;   /* the next room to use */
} xctx;

typedef struct xval {
  int         ok;      /* 1: v holds the value; 0: the error err */
  vmval       v;
  const char *err;
} xval;

static const bc_image *img(const xctx *c) { return &c->rt->prog->im; }

static xval xbool(int b) {
  xval v;
  memset(&v, 0, sizeof v);
  v.ok = 1;
  v.v.v.i = b;
  return v;
}

/* Node k's value: its region's, or CEL's logic over its children's (an
 * error is absorbed by the side that decides), as the VM computes it. */
static xval xeval(const xctx *c, uint32_t k) {
  const bc_xnode *n = &img(c)->xnodes[k];
  xval v, a, b;
  switch (n->kind) {
  case BC_X_LEAF:
  case BC_X_VALUE:
    memset(&v, 0, sizeof v);
    v.ok = vm_explain_region(c->rt, c->r, c->d, n->region, c->model, &v.v, &v.err,
                             c->sbuf[*c->snext % 4], sizeof c->sbuf[0]);
    ++*c->snext;   /* a value's string lives until four more are built */
    return v;
  case BC_X_NOT:
    v = xeval(c, n->a);
    if (v.ok) v.v.v.i = !v.v.v.i;
    return v;
  case BC_X_AND:
  case BC_X_OR: {
    int is_and = n->kind == BC_X_AND;
    a = xeval(c, n->a);
    if (a.ok && a.v.v.i != is_and) return xbool(!is_and);   /* short circuit */
    b = xeval(c, n->b);
    if (b.ok && b.v.v.i != is_and) return xbool(!is_and);   /* absorbs a */
    if (!a.ok) return a;
    if (!b.ok) return b;
    return xbool(is_and);
  }
  default: return xbool(1);   /* PASS */
  }
}

static int holds(const xval *v) { return v->ok && v->v.v.i; }

static const char *xtext(const xctx *c, uint32_t k) {
  return img(c)->str[img(c)->xnodes[k].text].p;
}

/* Says why node k is not true, into buf: the part that is false or raised
 * an error, with the values of a comparison's operands. */
static void why_not(const xctx *c, uint32_t k, char *buf, size_t cap) {
  const bc_xnode *n = &img(c)->xnodes[k];
  const char *src = xtext(c, k);
  char show[SEM_SHOW_MAX];
  xval v = xeval(c, k);
  if (!v.ok) { text_cat(buf, cap, "`%s` raised an error: %s", src, v.err); return; }
  if (n->kind == BC_X_AND || n->kind == BC_X_OR) {
    xval a = xeval(c, n->a), b = xeval(c, n->b);
    int a_bad = !holds(&a), b_bad = !holds(&b);
    if (n->kind == BC_X_AND) {
      /* a false side decides even when the other raised an error */
      int a_false = a.ok && !a.v.v.i, b_false = b.ok && !b.v.v.i;
      why_not(c, a_false ? n->a : b_false ? n->b : a_bad ? n->a : n->b, buf, cap);
    } else if (a_bad && b_bad) {
      why_not(c, n->a, buf, cap);
      text_cat(buf, cap, "; and ");
      why_not(c, n->b, buf, cap);
    }
    return;
  }
  if (n->kind == BC_X_NOT) { text_cat(buf, cap, "`%s` is true", src[0] ? src + 1 : src); return; }
  text_cat(buf, cap, "`%s` is false", src);
  int shown = 0;
  const uint32_t side[2] = {n->a, n->b};
  for (int i = 0; n->kind == BC_X_LEAF && i < 2; i++) {
    if (side[i] == BC_NONE) continue;
    xval sv = xeval(c, side[i]);
    const bc_xnode *s = &img(c)->xnodes[side[i]];
    if (sv.ok)
      sem_show(show, sizeof show, s->unit, sv.v.v.i, sv.v.v.d, sv.v.v.s, sv.v.n);
    else
      snprintf(show, sizeof show, "error: %s", sv.err);
    text_cat(buf, cap, "%s%s = %s", shown++ ? ", " : " (", xtext(c, side[i]), show);
  }
  if (shown) text_cat(buf, cap, ")");
}

/* The first top-level conjunct of node k that does not hold, or BC_NONE. */
static uint32_t failing(const xctx *c, uint32_t k) {
  const bc_xnode *n = &img(c)->xnodes[k];
  if (n->kind == BC_X_AND) {
    uint32_t f = failing(c, n->a);
    return f != BC_NONE ? f : failing(c, n->b);
  }
  xval v = xeval(c, k);
  return holds(&v) ? BC_NONE : k;
}

/* Global index of rule (1-based) of route, or BC_NONE. */
static uint32_t rule_index(const lane_program *p, int route, int rule) {
  if (route < 0 || (uint32_t)route >= p->im.nroutes) return BC_NONE;
  const bc_route *rt = &p->im.routes[route];
  if (rule < 1 || (uint32_t)rule > rt->nrules) return BC_NONE;
  return rt->first_rule + (uint32_t)rule - 1;
}

static size_t why_rule_in(lane_runtime *rt, int route, int rule, const lane_request *r,
                     const lane_decision *d, char *buf, size_t n) {
  char why[SEM_REASON_MAX] = "";
  if (buf && n) buf[0] = 0;
  if (!rt || !r || r->prog != rt->prog) return 0;
  const bc_image *im = &rt->prog->im;
  uint32_t g = rule_index(rt->prog, route, rule);
  if (g == BC_NONE || g >= im->nxrules || im->xrules[g] == BC_NONE) return 0;
  char sbuf[4][BC_SCRATCH];   /* as a decision's scratch */
  unsigned snext = 0;
  xctx c = {rt, r, d, im->nmodels, sbuf, &snext};
  xval v = xeval(&c, im->xrules[g]);
  if (!holds(&v)) why_not(&c, im->xrules[g], why, sizeof why);
  return (size_t)snprintf(buf, n, "%s", why);
}

size_t lane_why_rule(lane_runtime *rt, int route, int rule, const lane_request *r,
                     const lane_decision *d, char *buf, size_t n) {
  vm_pin pin;
  size_t rc = why_rule_in(vm_enter(rt, &pin), route, rule, r, d, buf, n);
  vm_leave(&pin);
  return rc;
}

static size_t why_removed_in(lane_runtime *rt, int route, int rule, int sel, int model,
                        const lane_request *r, const lane_decision *d, char *buf, size_t n) {
  char why[SEM_REASON_MAX] = "";
  if (buf && n) buf[0] = 0;
  if (!rt || !r || r->prog != rt->prog || model < 0 || model >= lane_model_count(rt->prog))
    return 0;
  const bc_image *im = &rt->prog->im;
  uint32_t g = rule_index(rt->prog, route, rule);
  char sbuf[4][BC_SCRATCH];   /* as a decision's scratch */
  unsigned snext = 0;
  xctx c = {rt, r, d, (uint32_t)model, sbuf, &snext};
  for (uint32_t i = 0; g != BC_NONE && i < im->nxsels; i++) {
    const bc_xsel *s = &im->xsels[i];
    if (s->rule != g || (int)s->place != sel) continue;
    for (uint32_t k = 0; k < s->count; k++) {
      uint32_t f = failing(&c, im->xlist[s->first + k]);
      if (f == BC_NONE) continue;
      why_not(&c, f, why, sizeof why);
      break;
    }
    break;
  }
  return (size_t)snprintf(buf, n, "%s", why);
}

size_t lane_why_removed(lane_runtime *rt, int route, int rule, int sel, int model,
                        const lane_request *r, const lane_decision *d, char *buf, size_t n) {
  vm_pin pin;
  size_t rc = why_removed_in(vm_enter(rt, &pin), route, rule, sel, model, r, d, buf, n);
  vm_leave(&pin);
  return rc;
}

/* ---- the text ---- */

static const char *name_of(const lane_program *p, int m) {
  const char *s = lane_model_name(p, m);
  return s ? s : "?";
}

static void rules(text_out *o, lane_runtime *rt, int route, const lane_request *r,
                  const lane_decision *d, const lane_trace *t, const lane_explain_hooks *h) {
  const lane_program *p = rt->prog;
  int sel = -1;   /* the target the MEMBER events belong to */
  char why[SEM_REASON_MAX], num[40], cost[48];
  for (int i = 0; i < t->n; i++) {
    const lane_event *e = &t->events[i];
    switch (e->kind) {
    case LANE_EV_RULE: {
      const char *name = lane_rule_name(p, route, e->rule);
      int matched = 0, error = 0, ncand = 0;
      for (int k = i + 1; k < t->n && t->events[k].kind != LANE_EV_RULE; k++) {
        if (t->events[k].kind == LANE_EV_MATCH) { matched = 1; ncand = t->events[k].model; }
        if (t->events[k].kind == LANE_EV_ERROR) error = 1;
      }
      text_printf(o, "rule %d  %s\n", e->rule, name ? name : "?");
      if (error) {
        text_printf(o, "    no: its condition raised an error (line %d)\n", e->line);
      } else if (!matched) {
        why[0] = 0;
        if (h && h->why_rule) h->why_rule(h->ctx, e->rule, why, sizeof why);
        else if (!h) lane_why_rule(rt, route, e->rule, r, d, why, sizeof why);
        text_printf(o, "    no%s%s\n", why[0] ? ": " : "", why);
      } else {
        text_printf(o, "    %s\n", ncand ? "matched" : "matched, but every candidate was removed");
      }
      break;
    }
    case LANE_EV_SELECT: sel = e->model; break;
    case LANE_EV_MEMBER:
      why[0] = 0;
      if (!e->passed) {
        if (h && h->why_removed)
          h->why_removed(h->ctx, e->rule, sel, e->model, e->check, why, sizeof why);
        else if (!h)
          lane_why_removed(rt, route, e->rule, sel, e->model, r, d, why, sizeof why);
        if (!why[0]) snprintf(why, sizeof why, "%s", check_reason(e->check));
      }
      snprintf(cost, sizeof cost, "$%s", sem_num(num, sizeof num, e->cost));
      text_printf(o, "    %-40s %-13s %s%s\n", name_of(p, e->model), cost,
          e->passed ? "kept" : "removed: ", why);
      break;
    case LANE_EV_CHOSEN: text_printf(o, "    -> %s\n", name_of(p, e->model)); break;
    case LANE_EV_SHADOW: text_printf(o, "    shadow %s\n", name_of(p, e->model)); break;
    default: break;
    }
  }
  if (t->truncated) text_printf(o, "(trace truncated)\n");
}

static void decision(text_out *o, const lane_program *p, const lane_request *r, int status,
                     const lane_decision *d) {
  char num[40];
  if (status != LANE_OK) {
    if (status == LANE_ENOMATCH && d->filtered_rule)
      text_printf(o, "no decision: rule %d matched but all its candidates were removed\n",
          d->filtered_rule);
    else if (status == LANE_ENOMATCH)
      text_printf(o, "no decision: no rule matched\n");
    else
      text_printf(o, "no decision: %s\n", lane_status_name(status));
    return;
  }
  text_printf(o, "decision: rule %d, ", d->rule);
  for (int i = 0; i < d->ncandidates; i++)
    text_printf(o, "%s%s ($%s)", i ? ", then " : "", name_of(p, d->candidates[i]),
        sem_num(num, sizeof num, lane_route_cost(p, d->route, r, d->candidates[i])));
  text_printf(o, "; expected cost $%s", sem_num(num, sizeof num, d->cost));
  if (d->output_from == LANE_OUTPUT_ESTIMATE)
    text_printf(o, " (no max_output_tokens: %lld output tokens, the route's output_estimate)",
                (long long)d->output_tokens);
  text_printf(o, "\n");
}

static size_t explain_text_in(lane_runtime *rt, int route, const lane_request *r, int status,
                         const lane_decision *d, const lane_trace *trace,
                         const lane_explain_hooks *hooks, char *buf, size_t n) {
  text_out o = {buf, n, 0};
  if (buf && n) buf[0] = 0;
  if (!rt || !d || !r || r->prog != rt->prog) return 0;
  if (trace) rules(&o, rt, route, r, d, trace, hooks);
  decision(&o, rt->prog, r, status, d);
  return o.len;
}

size_t lane_explain_text(lane_runtime *rt, int route, const lane_request *r, int status,
                         const lane_decision *d, const lane_trace *trace,
                         const lane_explain_hooks *hooks, char *buf, size_t n) {
  vm_pin pin;
  size_t rc = explain_text_in(vm_enter(rt, &pin), route, r, status, d, trace, hooks, buf, n);
  vm_leave(&pin);
  return rc;
}

/* Events lane_explain records; more are reported as truncated. */
#define EXPLAIN_EVENTS 4096

static size_t explain_in(lane_runtime *rt, int route, const lane_request *r, lane_decision *out_d,
                    char *buf, size_t n) {
  if (buf && n) buf[0] = 0;
  if (!rt || !r) return 0;
  lane_event *ev = malloc(EXPLAIN_EVENTS * sizeof *ev);
  if (!ev) return 0;
  lane_trace t = {ev, EXPLAIN_EVENTS, 0, 0};
  lane_decision d;
  memset(&d, 0, sizeof d);
  int st = lane_decide_traced(rt, route, r, &d, &t);
  size_t len = 0;
  if (st == LANE_OK || st == LANE_ENOMATCH)
    len = lane_explain_text(rt, route, r, st, &d, &t, NULL, buf, n);
  if (out_d) *out_d = d;
  free(ev);
  return len;
}

size_t lane_explain(lane_runtime *rt, int route, const lane_request *r, lane_decision *out_d,
                    char *buf, size_t n) {
  vm_pin pin;
  size_t rc = explain_in(vm_enter(rt, &pin), route, r, out_d, buf, n);
  vm_leave(&pin);
  return rc;
}

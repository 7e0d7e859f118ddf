/*
 * explain.c -- lane_explain_text and lane_explain: why a decision went
 * where it went, written from the VM's own trace.
 *
 * The trace says which rules were tried and how they ended, which members
 * each target considered (LANE_EV_SELECT marks where a target starts),
 * which check removed a member (lane_event.check) and what was chosen.
 * That is enough for a production host to explain a decision from the
 * .lanec alone. The compiler, which has the policy's source, passes hooks
 * that name the failing part of a condition and the values it saw; the
 * text around them is the same, written here once.
 */
#include "sem.h"
#include "vm.h"

#include <stdarg.h>

/* A bounded writer with snprintf's contract: counts what it could not
 * store, so the caller learns the length it needs. */
typedef struct out {
  char  *buf;
  size_t cap, len;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int k = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (k > 0) o->len += (size_t)k;
}

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

static const char *name_of(const lane_program *p, int m) {
  const char *s = lane_model_name(p, m);
  return s ? s : "?";
}

static void rules(out *o, const lane_program *p, int route, const lane_trace *t,
                  const lane_explain_hooks *h) {
  int sel = -1;   /* the target the MEMBER events belong to */
  char why[1024], num[40], cost[48];
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
      put(o, "rule %d  %s\n", e->rule, name ? name : "?");
      if (error) {
        put(o, "    no: its condition raised an error (line %d)\n", e->line);
      } else if (!matched) {
        why[0] = 0;
        if (h && h->why_rule) h->why_rule(h->ctx, e->rule, why, sizeof why);
        put(o, "    no%s%s\n", why[0] ? ": " : "", why);
      } else {
        put(o, "    %s\n", ncand ? "matched" : "matched, but every candidate was removed");
      }
      break;
    }
    case LANE_EV_SELECT: sel = e->model; break;
    case LANE_EV_MEMBER:
      why[0] = 0;
      if (!e->passed) {
        if (h && h->why_removed) h->why_removed(h->ctx, e->rule, sel, e->model, e->check, why,
                                                sizeof why);
        if (!why[0]) snprintf(why, sizeof why, "%s", check_reason(e->check));
      }
      snprintf(cost, sizeof cost, "$%s", sem_num(num, sizeof num, e->cost));
      put(o, "    %-40s %-13s %s%s\n", name_of(p, e->model), cost,
          e->passed ? "kept" : "removed: ", why);
      break;
    case LANE_EV_CHOSEN: put(o, "    -> %s\n", name_of(p, e->model)); break;
    case LANE_EV_SHADOW: put(o, "    shadow %s\n", name_of(p, e->model)); break;
    default: break;
    }
  }
  if (t->truncated) put(o, "(trace truncated)\n");
}

static void decision(out *o, const lane_program *p, const lane_request *r, int status,
                     const lane_decision *d) {
  char num[40];
  if (status != LANE_OK) {
    if (status == LANE_ENOMATCH && d->filtered_rule)
      put(o, "no decision: rule %d matched but all its candidates were removed\n",
          d->filtered_rule);
    else if (status == LANE_ENOMATCH)
      put(o, "no decision: no rule matched\n");
    else
      put(o, "no decision: %s\n", lane_status_name(status));
    return;
  }
  put(o, "decision: rule %d, ", d->rule);
  for (int i = 0; i < d->ncandidates; i++)
    put(o, "%s%s ($%s)", i ? ", then " : "", name_of(p, d->candidates[i]),
        sem_num(num, sizeof num, lane_cost(p, r, d->candidates[i])));
  put(o, "; expected cost $%s\n", sem_num(num, sizeof num, d->cost));
}

size_t lane_explain_text(const lane_program *p, int route, const lane_request *r, int status,
                         const lane_decision *d, const lane_trace *trace,
                         const lane_explain_hooks *hooks, char *buf, size_t n) {
  out o = {buf, n, 0};
  if (buf && n) buf[0] = 0;
  if (!p || !d || !r) return 0;
  if (trace) rules(&o, p, route, trace, hooks);
  decision(&o, p, r, status, d);
  return o.len;
}

/* Events lane_explain records; more are reported as truncated. */
#define EXPLAIN_EVENTS 4096

size_t lane_explain(lane_runtime *rt, int route, const lane_request *r, lane_decision *out_d,
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
    len = lane_explain_text(r->prog, route, r, st, &d, &t, NULL, buf, n);
  if (out_d) *out_d = d;
  free(ev);
  return len;
}

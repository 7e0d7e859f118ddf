/*
 * fuzz_explain.c -- differential: what `lane eval --explain` says agrees
 * with what the VM decided, on the same request and live state.
 *
 * Explanations are written by the compiler's evaluator (compiler/eval.c
 * through explain.c) from the policy's source, while decisions are made by
 * the VM: the seam where the two could disagree, and where most fuzz
 * findings so far came from. The input drives the policy writer of
 * gen_policy.h, then random live observations (latency, failures that
 * open breakers, the clock moving on) and random requests. Each request is
 * decided with a trace, and for every event of it:
 *   - a rule the VM started and found not to hold must not hold for the
 *     evaluator either (nor raise an error when the VM saw none);
 *   - a rule that matched must hold; one that raised an error must raise;
 *   - a model the VM kept must pass every require and filter of the rule
 *     for the evaluator, and a model it removed must fail one (else
 *     explain would say "a check of this decision" instead of a reason).
 * The explanation text is also written, to a null stream, for both the
 * source and the bytecode alone (no unit), as `lane eval` does.
 */
#include "explain.h"
#include "fuzz.h"
#include "gen_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }


static const char *holds_name(int h) {
  return h == 1 ? "holds" : h == 0 ? "does not hold" : h == -1 ? "raises an error" : "unknown";
}

/* Prints the policy, the request, the trace and the explanation, then
 * aborts: everything needed to reproduce a finding with lane eval. */
static void finding(const gen *g, const explain_in *in, const char *what, int rule,
                    const char *model, int vm, int ev) {
  fprintf(stderr, "%s\nrule %d%s%s: the VM says %s, the explainer %s\n(%s)\nrequest:", g->buf,
          rule, model ? ", model " : "", model ? model : "", holds_name(vm), holds_name(ev), what);
  for (int f = 0; f < lane_field_count(in->prog); f++) {
    if (!(in->req->set >> f & 1)) continue;
    const lane_value *v = &in->req->v[f];
    fprintf(stderr, " %s=", lane_field_name(in->prog, f));
    switch (lane_field_type(in->prog, f)) {
    case LANE_T_STRING: fprintf(stderr, "\"%.*s\"", (int)v->s.n, v->s.p); break;
    case LANE_T_DOUBLE: fprintf(stderr, "%.17g", v->d); break;
    case LANE_T_UINT: fprintf(stderr, "%llu", (unsigned long long)v->u); break;
    default: fprintf(stderr, "%lld", (long long)v->i); break;
    }
  }
  fprintf(stderr, "\ntrace:\n");
  for (int i = 0; i < in->trace->n; i++) {
    const lane_event *e = &in->trace->events[i];
    fprintf(stderr, "  kind %d rule %d model %d passed %d\n", e->kind, e->rule, e->model,
            e->passed);
  }
  explain_print_text(in, stderr);
  abort();
}

/* Checks one traced decision against the evaluator. */
static void check(const gen *g, const explain_in *in) {
  const lane_trace *t = in->trace;
  int sel = -1;
  for (int i = 0; i < t->n; i++) {
    const lane_event *e = &t->events[i];
    if (e->kind == LANE_EV_SELECT) sel = e->model;
    if (e->kind == LANE_EV_RULE) {
      int matched = 0, error = 0;
      for (int k = i + 1; k < t->n && t->events[k].kind != LANE_EV_RULE; k++) {
        matched |= t->events[k].kind == LANE_EV_MATCH;
        error |= t->events[k].kind == LANE_EV_ERROR;
      }
      int vm = error ? -1 : matched, ev = explain_rule_holds(in, e->rule);
      if (ev != vm) finding(g, in, "a rule's condition", e->rule, NULL, vm, ev);
    } else if (e->kind == LANE_EV_MEMBER) {
      int ev = explain_member_passes(in, e->rule, sel, e->model);
      if (ev != e->passed)
        finding(g, in, "a selection's member", e->rule, lane_model_name(in->prog, e->model),
                e->passed, ev);
    }
  }
}

static char *text_of(const explain_in *in, void (*print)(const explain_in *, FILE *)) {
  char *t = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&t, &n);
  if (!f) abort();
  print(in, f);
  fclose(f);
  return t;
}

/* The explain tables (what a .lanec gives) against the evaluator on the
 * source: the same text. */
static void same_text(const gen *g, const explain_in *in) {
  char *tables = text_of(in, explain_print_text), *source = text_of(in, explain_print_source);
  if (strcmp(tables, source) != 0) {
    fprintf(stderr, "%s\nthe explain tables say:\n%s\nthe source says:\n%s", g->buf, tables,
            source);
    finding(g, in, "the explanation's text", 0, NULL, -2, -2);
  }
  free(tables);
  free(source);
}

static void run(gen *g, const lanec_result *res) {
  const lane_program *p = res->prog;
  uint64_t now = 1700000000000ull;
  lane_runtime_options o = {fake_clock, &now, 0, 3, 3, 0, 0, 0, 0};
  lane_error err;
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err);
  if (!rt) abort();
  int nm = lane_model_count(p);
  static lane_event events[1024];
  for (int step = 0; step < 48 && g->in.n; step++) {
    if (pick(g, 4) == 0) {
      lane_observe(rt, pick(g, nm), (double)(pick(g, 40) * 100), pick(g, 6));
      now += (uint64_t)pick(g, 4) * 1000;
      continue;
    }
    char pool[8][16];
    lane_request q;
    lane_decision d;
    fz_request(&g->in, p, &q, pool, 8);
    memset(&d, 0, sizeof d);
    lane_trace trace = {events, 1024, 0, 0};
    uint64_t at = 0;
    lane_live_stats *before = explain_capture(rt, p, &at);
    if (!before) abort();
    int rc = lane_decide_traced(rt, 0, &q, &d, &trace);
    fz_check_decision(p, rc, &d);
    explain_in in = {res->unit, p, rt, 0, &q, &d, rc, &trace, before, at};
    if (!trace.truncated) {
      check(g, &in);
      same_text(g, &in);
    }
    free(before);
  }
  lane_runtime_free(rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static gen g;
  g.in = (fz){data, size};
  g.n = 0;
  g.depth = 0;
  policy(&g);
  g.buf[g.n] = '\0';
  lanec_result res;
  if (lanec_compile("explain.lane", g.buf, NULL, &res) == LANEC_OK) run(&g, &res);
  lanec_result_free(&res);
  return 0;
}

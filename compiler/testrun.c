/*
 * testrun.c -- runs a policy's test blocks against its compiled program.
 *
 * Each test builds a request from its `req { }` constants, optionally
 * loads live state from a snapshot (`state "file.json"`), decides on its
 * route with the real VM (traced), and evaluates every `expect` against
 * the decision. A failed test shows what each expectation saw and the
 * explanation of the decision. Coverage counts the rules that fired and,
 * for every condition the VM tried, which of its parts were seen true
 * and false.
 */
#include "sema.h"
#include "explain.h"
#include "sem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Sets map field f of r, of type fty, from a constant map (checked:
 * string keys, values of the field's value type, or ints where it is a
 * double). */
static int set_map(lane_request *r, int f, const ev_val *v, int fty) {
  lane_entry *e = calloc(v->n + 1, sizeof *e);
  if (!e) return -1;
  int dbl = sema_ty_mtype(TY_MVAL(fty)) == LANE_T_DOUBLE;
  for (size_t i = 0; i < v->n; i++) {
    const ev_val *k = &v->items[2 * i], *x = &v->items[2 * i + 1];
    e[i].key = k->s;
    e[i].klen = k->n;
    if (x->ty == TY_STRING) { e[i].v.s.p = x->s; e[i].v.s.n = x->n; }
    else if (dbl) e[i].v.d = x->ty == TY_INT ? (double)x->v.i : x->v.d;
    else e[i].v.i = x->v.i;
  }
  int rc = lane_set_map(r, f, e, v->n);
  free(e);
  return rc;
}

/* Sets list field f of r from a constant list of strings (checked). */
static int set_list(lane_request *r, int f, const ev_val *v) {
  lane_value *items = calloc(v->n + 1, sizeof *items);
  if (!items) return -1;
  for (size_t i = 0; i < v->n; i++) {
    items[i].s.p = v->items[i].s;
    items[i].s.n = v->items[i].n;
  }
  int rc = lane_set_list(r, f, items, v->n);
  free(items);
  return rc;
}

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
  ev_env env = {.u = u, .model = -1};
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
      if (TY_IS_MAP(v.ty)) set_map(r, init->ref, &v, u->fields[init->ref].ty);
      else if (v.ty & TY_LIST) set_list(r, init->ref, &v);
      else set_field(r, init->ref, &v);
    }
  }
}

/* The snapshot a test names, relative to its file; NULL if none. */
static const ast_node *state_item(const ast_node *t) {
  for (int i = 0; i < t->list.n; i++)
    if (t->list.v[i]->kind == N_TSTATE && !strcmp(t->list.v[i]->name, "state"))
      return t->list.v[i];
  return NULL;
}

/* The time a test sets (`now "2026-01-05T23:00:00Z"`, checked), in ms;
 * 0 if none. */
static uint64_t now_item(const ast_node *t) {
  int64_t ms = 0;
  for (int i = 0; i < t->list.n; i++)
    if (t->list.v[i]->kind == N_TSTATE && !strcmp(t->list.v[i]->name, "now") &&
        sem_ts_parse(t->list.v[i]->str, t->list.v[i]->len, &ms))
      ms = 0;
  return ms > 0 ? (uint64_t)ms : 0;
}

static uint64_t fixed_clock(void *ctx) { return *(const uint64_t *)ctx; }

int sema_test_state_path(const ast_node *t, char *buf, size_t n) {
  const ast_node *st = state_item(t);
  if (!st) return 0;
  const char *name = t->span.file ? t->span.file->name : "";
  const char *slash = strrchr(name, '/');
  int k;
  if (st->str[0] == '/' || !slash) k = snprintf(buf, n, "%.*s", (int)st->len, st->str);
  else k = snprintf(buf, n, "%.*s/%.*s", (int)(slash - name), name, (int)st->len, st->str);
  return k >= 0 && (size_t)k < n ? 1 : -1;
}

/* The test's runtime: a snapshot's (`state FILE`), or a fresh one whose
 * clock stands at the test's `now` (*clock, which must outlive it) or
 * runs. */
static lane_runtime *test_runtime(const sema_unit *u, const lane_program *p, const ast_node *t,
                                  const test_opts *o, FILE *err, uint64_t *clock) {
  char path[4096];
  int has = sema_test_state_path(t, path, sizeof path);
  *clock = now_item(t);
  if (has && *clock) {
    fprintf(err, "lane: %s:%d: a test sets now or names a state, not both (a snapshot's time "
            "is its own)\n", t->span.file ? t->span.file->name : "?", t->span.line);
    return NULL;
  }
  if (!has) {
    lane_error e;
    lane_runtime_options ro;
    memset(&ro, 0, sizeof ro);
    if (*clock) {
      ro.clock = fixed_clock;
      ro.clock_ctx = clock;
    }
    lane_runtime *rt = lane_runtime_new_with(p, &ro, &e);
    if (!rt) fprintf(err, "lane: %s\n", e.message);
    return rt;
  }
  if (has < 0) {
    fprintf(err, "lane: %s:%d: the snapshot's path is longer than %zu bytes\n",
            t->span.file ? t->span.file->name : "?", t->span.line, sizeof path - 1);
    return NULL;
  }
  if (!o->load_state) {
    fprintf(err, "lane: %s: this host cannot read runtime snapshots (`lane test` can)\n", path);
    return NULL;
  }
  size_t n = 0;
  char *bytes = sema_read_input(u, path, SEMA_MAX_SNAPSHOT, &n);
  if (!bytes) {
    fprintf(err, "lane: cannot read '%s': %s\n", path,
            errno == ENOENT && u->opts.files ? "not among the files given (a sealed set)"
                                             : ast_strerror(errno));
    return NULL;
  }
  lane_runtime *rt = NULL;
  if (n > SEMA_MAX_SNAPSHOT)
    fprintf(err, "lane: %s: a snapshot is at most %u MiB\n", path, SEMA_MAX_SNAPSHOT >> 20);
  else
    rt = o->load_state(p, path, bytes, n, err);
  free(bytes);
  return rt;
}

/* Shows the left operand of a failed comparison, the most useful hint. */
static void explain_expect(sema_unit *u, const ev_env *env, const ast_node *e, FILE *out) {
  char buf[512];
  const ast_node *shown = e;
  if (e->kind == N_BINARY && e->op >= OP_EQ && e->op <= OP_IN) shown = e->a;
  else if (e->kind == N_UNARY) shown = e->a;
  ev_val v = ev_eval(env, shown);
  fprintf(out, "#   %s:%d: expect failed; %s is %s\n",
          e->span.file ? e->span.file->name : "?", e->span.line,
          shown->kind == N_IDENT ? shown->name : "the left side", ev_show(u, &v, buf, sizeof buf));
}

/* ---- coverage ---- */

typedef struct cov_atom {
  const ast_node *n;              /* a boolean part of a condition */
  int route, rule;                /* whose condition, rule 1-based */
  int seen_true, seen_false;      /* outcomes observed */
} cov_atom;

typedef struct coverage {
  int      *fired;     /* per (route, rule): how many tests it decided */
  int      *base;      /* first index of each route in fired */
  cov_atom *atoms;     /* boolean parts of every condition */
  int       natoms, capatoms;
  int       nomem;     /* an atom could not be recorded */
} coverage;

static void add_atoms(coverage *c, const ast_node *n, int route, int rule) {
  if (n->kind == N_BINARY && (n->op == OP_AND || n->op == OP_OR)) {
    add_atoms(c, n->a, route, rule);
    add_atoms(c, n->b, route, rule);
    return;
  }
  if (n->kind == N_UNARY && n->op == OP_NOT) { add_atoms(c, n->a, route, rule); return; }
  if (c->natoms == c->capatoms) {
    int cap = c->capatoms ? c->capatoms * 2 : 32;
    cov_atom *v = realloc(c->atoms, (size_t)cap * sizeof *v);
    if (!v) { c->nomem = 1; return; }
    c->atoms = v;
    c->capatoms = cap;
  }
  cov_atom a = {n, route, rule, 0, 0};
  c->atoms[c->natoms++] = a;
}

static int cov_init(coverage *c, const sema_unit *u) {
  memset(c, 0, sizeof *c);
  int total = 0;
  c->base = calloc((size_t)u->nroutes + 1, sizeof *c->base);
  for (int r = 0; r < u->nroutes && c->base; r++) {
    c->base[r] = total;
    total += u->routes[r].rules.n;
    for (int k = 0; k < u->routes[r].rules.n; k++)
      if (u->routes[r].rules.v[k]->kind == N_WHEN)
        add_atoms(c, u->routes[r].rules.v[k]->a, r, k + 1);
  }
  c->fired = calloc((size_t)total + 1, sizeof *c->fired);
  if (c->base && c->fired && !c->nomem) return 0;
  free(c->base);   /* out of memory: give back what was had */
  free(c->fired);
  free(c->atoms);
  memset(c, 0, sizeof *c);
  return -1;
}

/* Marks the outcomes of the parts of every condition the VM tried. */
static void cov_record(coverage *c, int route, const lane_trace *t, const ev_env *env) {
  for (int i = 0; i < t->n; i++) {
    if (t->events[i].kind != LANE_EV_RULE) continue;
    for (int k = 0; k < c->natoms; k++) {
      if (c->atoms[k].route != route || c->atoms[k].rule != t->events[i].rule) continue;
      ev_val v = ev_eval(env, c->atoms[k].n);
      if (v.kind != EV_OK) continue;
      if (v.v.i) c->atoms[k].seen_true = 1;
      else c->atoms[k].seen_false = 1;
    }
  }
}

/* Prints the report; returns the rule coverage in percent. */
static double cov_report(const coverage *c, const sema_unit *u, FILE *out) {
  int rules = 0, hit = 0, branches = 2 * c->natoms, seen = 0;
  for (int r = 0; r < u->nroutes; r++)
    for (int k = 0; k < u->routes[r].rules.n; k++) {
      rules++;
      if (c->fired[c->base[r] + k]) { hit++; continue; }
      const ast_node *n = u->routes[r].rules.v[k];
      fprintf(out, "# not covered: route %s rule %d (%s) at %s:%d\n", u->routes[r].name, k + 1,
              n->kind == N_WHEN && n->text ? n->text : "otherwise",
              n->span.file ? n->span.file->name : "?", n->span.line);
    }
  for (int k = 0; k < c->natoms; k++) {
    seen += c->atoms[k].seen_true + c->atoms[k].seen_false;
    if (c->atoms[k].seen_true && c->atoms[k].seen_false) continue;
    char src[160];
    size_t len;
    const ast_node *a = c->atoms[k].n;
    const char *line = a->span.file ? ast_source_line(a->span.file, a->span.line, &len) : NULL;
    snprintf(src, sizeof src, "%.*s", line ? a->span.len : 1, line ? line + a->span.col - 1 : "?");
    fprintf(out, "# branch never %s: `%s` at %s:%d\n", c->atoms[k].seen_true ? "false" : "true",
            src, a->span.file ? a->span.file->name : "?", a->span.line);
  }
  double pct = rules ? 100.0 * hit / rules : 100.0;
  fprintf(out, "# coverage: rules %d/%d (%.0f%%), condition branches %d/%d (%.0f%%)\n", hit,
          rules, pct, seen, branches, branches ? 100.0 * seen / branches : 100.0);
  return pct;
}

/* ---- running ---- */

/* Events a test's trace keeps: more are counted as truncated, and explain
 * says so. */
#define TEST_EVENTS 4096

static int run_one(sema_unit *u, const lane_program *p, const ast_node *t, int num,
                   const test_opts *o, coverage *cov, lane_event *events, FILE *out) {
  int route = -1;
  for (int i = 0; i < t->list.n; i++)
    if (t->list.v[i]->kind == N_TROUTE) route = lane_route(p, t->list.v[i]->name);
  uint64_t clock_ms = 0;
  lane_runtime *rt = test_runtime(u, p, t, o, out, &clock_ms);
  lane_request r;
  lane_request_init(&r, p);
  build_request(u, t, &r);
  lane_decision d;
  lane_trace trace = {events, TEST_EVENTS, 0, 0};
  uint64_t now = 0;   /* the live view the decision is about to see */
  lane_live_stats *before = rt ? explain_capture(rt, p, &now) : NULL;
  int rc = rt && route >= 0 ? lane_decide_traced(rt, route, &r, &d, &trace) : LANE_EARG;
  if (rc == LANE_EARG) {
    fprintf(out, "%s %d - %.*s\n#   cannot decide (route or live state)\n",
            o->tap ? "not ok" : "FAIL", num, (int)t->len, t->str);
    lane_runtime_free(rt);
    free(before);
    return 1;
  }
  ev_env env = {.u = u, .model = -1, .dec = &d, .prog = p, .req = &r, .rt = rt,
                .decided = rc == LANE_OK, .stats = before, .now = now};
  if (cov) {
    if (rc == LANE_OK) cov->fired[cov->base[route] + d.rule - 1]++;
    cov_record(cov, route, &trace, &env);
  }
  int failed = 0;
  for (int i = 0; i < t->list.n; i++) {
    const ast_node *it = t->list.v[i];
    if (it->kind != N_EXPECT) continue;
    ev_val v = ev_eval(&env, it->a);
    if (v.kind == EV_OK && v.v.i) continue;
    if (!failed) fprintf(out, "%s %d - %.*s\n", o->tap ? "not ok" : "FAIL", num, (int)t->len, t->str);
    failed = 1;
    explain_expect(u, &env, it->a, out);
  }
  if (failed && o->explain) {
    explain_in in = {u, p, rt, route, &r, &d, rc, &trace, before, now};
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    if (m) {
      explain_print_text(&in, m);
      fclose(m);
      for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) { fprintf(out, "#     %s\n", line); break; }
        if (nl > line) fprintf(out, "#     %.*s\n", (int)(nl - line), line);
      }
      free(text);
    }
  }
  if (!failed && !o->quiet)
    fprintf(out, "%s %d - %.*s\n", o->tap ? "ok" : "ok  ", num, (int)t->len, t->str);
  lane_runtime_free(rt);
  free(before);
  return failed;
}

int sema_run_tests_with(sema_unit *u, const lane_program *p, const test_opts *o, FILE *out) {
  coverage cov = {0}, *c = NULL;
  lane_event *events = malloc(TEST_EVENTS * sizeof *events);
  if (!events || (o->coverage && cov_init(&cov, u) != 0)) {
    fprintf(out, "Bail out! out of memory\n");
    free(events);
    return 1;
  }
  if (o->coverage) c = &cov;
  if (o->tap) fprintf(out, "1..%d\n", u->tests.n);
  int failed = 0;
  for (int i = 0; i < u->tests.n; i++) failed += run_one(u, p, u->tests.v[i], i + 1, o, c, events, out);
  if (!o->tap)
    fprintf(out, "%d tests, %d passed, %d failed\n", u->tests.n, u->tests.n - failed, failed);
  if (c) {
    double pct = cov_report(c, u, out);
    if (o->threshold > 0 && pct + 1e-9 < o->threshold) {
      fprintf(out, "# rule coverage %.0f%% is below the threshold of %.0f%%\n", pct, o->threshold);
      failed++;
    }
    free(cov.fired);
    free(cov.base);
    free(cov.atoms);
  }
  free(events);
  return failed;
}

int sema_run_tests(sema_unit *u, const lane_program *p, FILE *out) {
  test_opts o = {1, 0, 0, 0, 1, NULL};
  return sema_run_tests_with(u, p, &o, out);
}

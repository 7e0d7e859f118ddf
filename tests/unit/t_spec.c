/*
 * t_spec.c -- the member-filter parts the loader works out (vm/spec.c):
 * which filters get them, and that a program decides exactly as its twin
 * without them (bc_unspecialize) -- rule, candidates, shadows, cost bits,
 * probes and steps -- over thousands of random requests, with breakers
 * opening and budgets filling on both runtimes alike. The policies mix
 * capability requires, request-only requires, a require that raises an
 * error (overflow), a budget read in a require, and selections whose
 * `where` reads cost and p95 (the tails).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lanec.h"
#include "tap.h"
#include "unit/compile.h"
#include "vm.h"

static char DIAG[4096];

static lane_program *must(const char *src) {
  lane_program *p = test_compile(src, DIAG, sizeof DIAG);
  if (!p) bail("policy does not compile:\n%s\n%s", src, DIAG);
  return p;
}

static uint64_t NOW = 1767268800000ull;
static uint64_t fixed(void *ctx) { (void)ctx; return NOW; }

static uint64_t rng = 0x5eed5eedull;
static uint32_t below(uint32_t n) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)((rng >> 33) % n);
}

#define MODELS                                                                                   \
  "model a { provider \"p\" name \"a\" input $1/Mtok output $2/Mtok context 100k max_output 8k " \
  "caps vision, tools  quality 0.9  p50 100ms p95 300ms }\n"                                     \
  "model b { provider \"p\" name \"b\" input $0.5/Mtok output $1/Mtok context 32k max_output 4k " \
  "caps tools  quality 0.8  p50 200ms p95 600ms }\n"                                            \
  "model c { provider \"q\" name \"c\" input $0.2/Mtok output $0.4/Mtok context 128k "           \
  "caps json  quality 0.7  p50 300ms p95 900ms }\n"                                             \
  "model d { provider \"q\" name \"d\" input $0.1/Mtok output $0.1/Mtok context 8k "             \
  "quality 0.6  p50 50ms p95 150ms }\n"                                                         \
  "model e { provider \"r\" name \"e\" input $3/Mtok output $9/Mtok context 200k "               \
  "caps vision, json, tools  quality 0.95  p50 900ms p95 2s }\n"                                \
  "model f { provider \"r\" name \"f\" input $0.3/Mtok output $0.6/Mtok context 64k "            \
  "caps vision, json  quality 0.75  p50 150ms p95 400ms }\n"

static const char *POLICIES[] = {
  MODELS
  "request { flag: bool  n: int }\n"
  "budget daily { key req.tenant limit $40 window 1d }\n"
  "route r {\n"
  "  fallbacks 2\n"
  "  require fits && healthy\n"
  "  require req.images == 0 || vision\n"
  "  require !req.tools || tools\n"
  "  require !req.json || json\n"
  "  require req.n * 1000000000000 < 5000000000000000000 || tools\n"
  "  require budget.daily.used < 50% || json\n"
  "  when req.flag -> cheapest(models where cost < $0.001)\n"
  "  when req.task == \"x\" -> fastest(models where p95 <= req.latency_budget)\n"
  "  when req.tier == \"t\" -> best(models), then d\n"
  "  when req.tier == \"u\" -> cheapest(models where quality >= 0.7 && (vision || json))\n"
  "  otherwise -> cheapest(models)\n"
  "}\n",
  MODELS
  "route r {\n"
  "  fallbacks 1\n"
  "  require healthy\n"
  "  when req.images > 0 -> cheapest(models where vision && (req.tools == false || tools))\n"
  /* `||` and `&&` ending a condition: their first test's KEEP jumps to
   * the JF, which the fused code skips (spec.c's thread_keeps) */
  "  when req.task == \"chat\" || req.json -> best(models), then cheapest(models)\n"
  "  when req.task == \"code\" && !req.tools -> fastest(models)\n"
  "  when req.task == \"code\" -> best(models where !req.json || json)\n"
  "  otherwise -> cheapest(models where (req.input_tokens < 1000 || context >= 100k) && "
  "cost < $0.05)\n"
  "}\n",
  /* A require whose request-only test can make the whole filter true
   * (a JT_KEEP to the FRET) before a capability test: no prefix may be
   * cut after it (the decide_diff fuzz target found this one). */
  MODELS
  "route r {\n"
  "  fallbacks 2\n"
  "  require req.images == 0 || vision && (quality >= 0.9 || cost < $0.001)\n"
  "  otherwise -> cheapest(models)\n"
  "}\n",
  /* Selections whose whole filter is a tail the VM runs natively. */
  MODELS
  "route r {\n"
  "  fallbacks 2\n"
  "  when req.task == \"x\" -> fastest(models where p95 <= req.latency_budget)\n"
  "  otherwise -> cheapest(models where cost < $0.0005)\n"
  "}\n",
};

static void same(int i, int rc, const lane_decision *a, int rc2, const lane_decision *b, int *bad) {
  int eq = rc == rc2 && a->steps == b->steps && a->filtered_rule == b->filtered_rule &&
           a->nerrors == b->nerrors && a->error_line == b->error_line;
  if (eq && rc == LANE_OK)
    eq = a->rule == b->rule && a->ncandidates == b->ncandidates && a->probed == b->probed &&
         !memcmp(&a->cost, &b->cost, sizeof a->cost) &&
         !memcmp(a->candidates, b->candidates, (size_t)a->ncandidates * sizeof a->candidates[0]);
  if (!eq && (*bad)++ < 3)
    diag("request %d: rc %d/%d rule %d/%d steps %u/%u", i, rc, rc2, a->rule, b->rule, a->steps,
         b->steps);
}

/* Whether each policy's filters have parts to keep (policy 2 has none:
 * its only require can end the filter true before its capability test). */
static const int HAS_PARTS[] = {1, 1, 0, 1, 1};

/* Policy 4: 150 models, so model sets take three words, with prices,
 * p95s, qualities and limits that repeat (ties to break by pool order),
 * some without a context or max_output limit, best() pools that the
 * selection walks member by member (sorted by quality, not by index), and
 * != tests, fused and in a require's native conjuncts. */
static char BIG[64 * 1024];
static const char *big_policy(void) {
  static const char *const caps[] = {"", "caps vision", "caps tools", "caps json",
                                     "caps vision, tools", "caps tools, json"};
  size_t n = 0;
  for (int m = 0; m < 150; m++) {
    char ctx[32] = "", out[32] = "";
    if (m % 7) snprintf(ctx, sizeof ctx, "context %dk", 8 * (1 + m % 5));
    if (m % 5) snprintf(out, sizeof out, "max_output %d", 1000 * (1 + m % 4));
    n += (size_t)snprintf(BIG + n, sizeof BIG - n,
                          "model m%d { provider \"p%d\" name \"m%d\" input $%d/Mtok output $%d/Mtok "
                          "%s %s %s quality 0.%d p50 %dms p95 %dms }\n",
                          m, m % 4, m, 1 + m % 3, 2 + m % 4, ctx, out, caps[m % 6], 5 + m % 5,
                          50 + 10 * (m % 6), 200 + 100 * (m % 6));
  }
  snprintf(BIG + n, sizeof BIG - n, "%s",
           "route r {\n"
           "  fallbacks 2\n"
           "  require fits && healthy\n"
           "  require req.images == 0 || vision\n"
           "  require !req.tools || tools\n"
           "  when req.task == \"x\" -> fastest(models where p95 <= req.latency_budget)\n"
           "  when req.tier == \"t\" -> best(models where !req.json || json)\n"
           "  when req.tier == \"u\" -> best(models where cost < $0.01)\n"
           "  when req.task == \"code\" -> cheapest(models where quality >= 0.7)\n"
           "  when req.tier != \"free\" && !req.json -> cheapest(models where req.images != 1 || vision)\n"
           "  otherwise -> cheapest(models)\n"
           "}\n");
  return BIG;
}

static void run(int k, const char *src) {
  lane_program *p = must(src), *p2 = must(src);
  bc_unspecialize(p2);
  if (p->im.nmodels > 64) {
    ok(p->plan && p->plan->words == (p->im.nmodels + 63) / 64 && !p2->plan,
       "policy %d: %u models, sets of %u words", k, p->im.nmodels, p->plan ? p->plan->words : 0);
    uint32_t conj = 0;
    for (uint32_t f = 0; p->plan && f < p->im.nfilters; f++) conj += p->plan->cn[f] > 0;
    ok(conj > 0, "policy %d: %u filter parts run as native conjuncts (vm_conj)", k, conj);
  }
  int parts = 0, native = 0;
  for (uint32_t f = 0; f < p->im.nfilters; f++) {
    parts += p->fspec[f].kind != VM_SPEC_NONE;
    native += p->fspec[f].kind != VM_SPEC_NONE && p->fspec[f].tailk != VM_TAIL_CODE;
  }
  ok(HAS_PARTS[k] ? parts > 0 : parts == 0,
     "policy %d: %d of %u filters (explain regions included) have a part kept per capability "
     "class or a native tail (%d)", k, parts, p->im.nfilters, native);
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fixed;
  lane_error err;
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err), *rt2 = lane_runtime_new_with(p2, &o, &err);
  if (!rt || !rt2) bail("runtime: %s", err.message);
  static const char *tasks[] = {"x", "code", "chat", ""}, *tiers[] = {"t", "u", "free", ""};
  static const char *tenants[] = {"t1", "t2", "t3"};
  int bad = 0, n = 4000, served = 0, errors = 0;
  uint64_t steps = 0;
  for (int i = 0; i < n; i++) {
    lane_request r, r2;
    lane_request_init(&r, p);
    const char *task = tasks[below(4)], *tier = tiers[below(4)], *tenant = tenants[below(3)];
    lane_set_str(&r, lane_field(p, "task"), task, strlen(task));
    lane_set_str(&r, lane_field(p, "tier"), tier, strlen(tier));
    lane_set_str(&r, lane_field(p, "tenant"), tenant, strlen(tenant));
    lane_set_int(&r, lane_field(p, "input_tokens"), below(3) ? below(5000) : below(300000));
    lane_set_int(&r, lane_field(p, "max_output_tokens"), below(10000));
    if (below(3) == 0) lane_set_int(&r, lane_field(p, "images"), below(3));
    if (below(2)) lane_set_bool(&r, lane_field(p, "tools"), (int)below(2));
    if (below(2)) lane_set_bool(&r, lane_field(p, "json"), (int)below(2));
    if (below(3) == 0) lane_set_double(&r, lane_field(p, "latency_budget"), below(1000));
    if (lane_field(p, "flag") >= 0 && below(4) == 0) lane_set_bool(&r, lane_field(p, "flag"), 1);
    if (lane_field(p, "n") >= 0 && below(2))
      lane_set_int(&r, lane_field(p, "n"), below(4) ? (int64_t)below(100) : INT64_MAX / 3);
    r2 = r;
    r2.prog = p2;
    lane_decision d, d2;
    int rc = lane_decide_route(rt, 0, &r, &d), rc2 = lane_decide_route(rt2, 0, &r2, &d2);
    same(i, rc, &d, rc2, &d2, &bad);
    steps += d.steps;
    errors += d.nerrors;
    if (rc == LANE_OK) {
      served++;
      double usd = (double)below(50) / 1000.0;
      lane_charge(rt, &r, usd);
      lane_charge(rt2, &r2, usd);
      int status = below(10) == 0 ? LANE_CALL_SERVER_ERROR : LANE_CALL_OK;
      double ms = 50 + below(2000);
      lane_observe(rt, d.candidates[0], ms, status);
      lane_observe(rt2, d.candidates[0], ms, status);
    }
    if (i % 500 == 499) NOW += 31000;   /* cooldowns pass: probes */
  }
  is_int(bad, 0, "policy %d: %d requests decided alike with and without the kept parts "
         "(%d served, %.1f steps a decision)", k, n, served, (double)steps / n);
  lane_runtime_free(rt);
  lane_runtime_free(rt2);
  lane_program_free(p);
  lane_program_free(p2);
}

/* The decision's set of closed breakers (vm.c, health_words) is rebuilt
 * after each breaker change: a model whose breaker opens is out of the
 * very next decision, and back, through its probe, after the cooldown. */
static void test_breaker_set(void) {
  lane_program *p = must("model a { provider \"p\" name \"a\" input $1/Mtok output $1/Mtok }\n"
                         "model b { provider \"p\" name \"b\" input $2/Mtok output $2/Mtok }\n"
                         "route r { require healthy  otherwise -> cheapest(models) }\n");
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fixed;
  o.breaker_failures = 3;
  o.breaker_cooldown_ms = 10000;
  lane_error err;
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err);
  if (!rt) bail("runtime: %s", err.message);
  lane_request r;
  lane_request_init(&r, p);
  lane_set_int(&r, lane_field(p, "input_tokens"), 1000);
  lane_decision d;
  int a = 0, b = 1;   /* declaration order */
  if (strcmp(lane_model_name(p, a), "a") || strcmp(lane_model_name(p, b), "b")) bail("model order");
  lane_decide_route(rt, 0, &r, &d);
  is_int(d.candidates[0], a, "a closed breaker: the cheaper model a");
  for (int i = 0; i < 3; i++) lane_observe(rt, a, 100, LANE_CALL_SERVER_ERROR);
  lane_decide_route(rt, 0, &r, &d);
  ok(d.candidates[0] == b && d.ncandidates == 1, "a's breaker opened: the next decision has b only");
  NOW += 10001;
  lane_decide_route(rt, 0, &r, &d);
  ok(d.candidates[0] == a && (d.probed & 1), "after the cooldown a is back, taking its probe");
  lane_decide_route(rt, 0, &r, &d);
  is_int(d.candidates[0], b, "while the probe is out, b");
  lane_observe(rt, a, 100, LANE_CALL_OK);
  lane_decide_route(rt, 0, &r, &d);
  ok(d.candidates[0] == a && !d.probed, "the probe answered: a's breaker closed, a again");
  lane_runtime_free(rt);
  lane_program_free(p);
}

/* cheapest()'s pruned walk (vm.c's sel_pruned) meets members by their
 * lowest input or output price, not in pool order: members of equal cost
 * must still come in pool order, and a member whose price bound equals
 * the third pick's cost may still enter on a lower index. Models a0 .. d
 * all cost $0.003 for 1,000 tokens in and 1,000 out; a0 comes first in
 * the pool but last by input price. The pool-order answer is a0, a, b
 * (the twin without the plan says so too); then with more output than
 * input, by output price. */
static void test_pruned_ties(void) {
  static const char *src =
    "model a0 { provider \"p\" name \"a0\" input $3/Mtok output $0/Mtok }\n"
    "model a { provider \"p\" name \"a\" input $2/Mtok output $1/Mtok }\n"
    "model b { provider \"p\" name \"b\" input $1/Mtok output $2/Mtok }\n"
    "model c { provider \"p\" name \"c\" input $2/Mtok output $1/Mtok }\n"
    "model d { provider \"p\" name \"d\" input $1/Mtok output $2/Mtok }\n"
    "model z { provider \"p\" name \"z\" input $0/Mtok output $3/Mtok }\n"
    "route r { fallbacks 2  require healthy  otherwise -> cheapest(models) }\n";
  lane_program *p = must(src), *twin = must(src);
  bc_unspecialize(twin);
  lane_error err;
  lane_runtime *rt = lane_runtime_new(p, &err), *rt2 = lane_runtime_new(twin, &err);
  if (!rt || !rt2) bail("runtime: %s", err.message);
  const struct { int in, out; const char *want; } cases[] = {
    { 1000, 1000, "a0 a b" },     /* by input price: b d a c a0 z */
    { 1000, 2000, "a0 a c" },     /* by output price: a0 a c b d z */
    { 2000, 1000, "z b d" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lane_request r, r2;
    lane_decision d, d2;
    lane_request_init(&r, p);
    lane_request_init(&r2, twin);
    lane_set_int(&r, lane_field(p, "input_tokens"), cases[i].in);
    lane_set_int(&r, lane_field(p, "max_output_tokens"), cases[i].out);
    lane_set_int(&r2, lane_field(twin, "input_tokens"), cases[i].in);
    lane_set_int(&r2, lane_field(twin, "max_output_tokens"), cases[i].out);
    int rc = lane_decide_route(rt, 0, &r, &d), rc2 = lane_decide_route(rt2, 0, &r2, &d2), bad = 0;
    char got[64] = "";
    for (int k = 0; rc == LANE_OK && k < d.ncandidates; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? " " : "",
               lane_model_name(p, d.candidates[k]));
    same((int)i, rc, &d, rc2, &d2, &bad);
    ok(!strcmp(got, cases[i].want) && !bad, "pruned cheapest, %d in %d out: %s (want %s), "
       "as the twin decides", cases[i].in, cases[i].out, got, cases[i].want);
  }
  lane_runtime_free(rt);
  lane_runtime_free(rt2);
  lane_program_free(p);
  lane_program_free(twin);
}

int main(void) {
  test_breaker_set();
  test_pruned_ties();
  size_t k = 0;
  for (; k < sizeof POLICIES / sizeof POLICIES[0]; k++) run((int)k, POLICIES[k]);
  run((int)k, big_policy());
  return done_testing();
}

/*
 * t_vm.c -- decisions of hand-assembled programs: orders, ties, fallbacks,
 * chains, filters, fall-through, runtime errors, shadows, setters.
 */
#include <math.h>
#include <stdint.h>

#include "tap.h"

#include "golden/lanec/asm.h"

static uint32_t M[6], all, by_quality, checked, mixed, only1, only0, only2, only4;
static uint32_t f_q08, f_q095, f_fits, f_err, f_healthy;
static uint32_t team, score, count;

static uint32_t filter_quality(la *a, double q) {
  uint32_t f = la_filter(a);
  la_op(a, BC_OP_M_FIELD, BC_MF_QUALITY, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, q));
  la_op(a, BC_OP_GE_D, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  return f;
}

static uint32_t filter_op(la *a, int op) {
  uint32_t f = la_filter(a);
  la_op(a, op, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  return f;
}

/* A route of one rule: CAND order filter pool; ENDRULE. */
static void simple(la *a, const char *name, uint32_t fallbacks, int order, int filter,
                   uint32_t pool) {
  la_route(a, name, fallbacks);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, order, filter, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
}

/* Ends a rule whose condition left a bool: JF to the next rule, CAND, ENDRULE. */
static void then_cand(la *a, int order, int filter, uint32_t pool, uint32_t *jf) {
  *jf = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, order, filter, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, *jf);
}

static la *build(void) {
  la *a = la_new();
  uint32_t j, j2, C = BC_MEMBER_CHECK;
  team = la_field(a, "team", BC_U_STRING);
  score = la_field(a, "score", BC_U_FRACTION);
  count = la_field(a, "count", BC_U_UINT);
  la_cap(a, "vision");
  M[0] = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 1);
  M[1] = la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  M[2] = la_model(a, "beta.mid", 3, 6, 100000, 8000, 0.8, 0, 0);
  M[3] = la_model(a, "beta.twin", 1, 2, 64000, 4000, 0.6, 500, 0);
  M[4] = la_model(a, "gamma.fast", 5, 5, 32000, 8000, 0.9, 100, 0);
  all = la_pool(a, 5, (uint32_t[]){ 0, 1, 2, 3, 4 });
  by_quality = la_pool(a, 5, (uint32_t[]){ 0, 4, 2, 1, 3 });  /* best() pools come sorted */
  checked = la_pool(a, 5, (uint32_t[]){ 0 | C, 1 | C, 2 | C, 3 | C, 4 | C });
  mixed = la_pool(a, 3, (uint32_t[]){ 1, 2 | C, 0 | C });
  only0 = la_pool(a, 1, (uint32_t[]){ 0 });
  only1 = la_pool(a, 1, (uint32_t[]){ 1 });
  only2 = la_pool(a, 1, (uint32_t[]){ 2 });
  only4 = la_pool(a, 1, (uint32_t[]){ 4 });
  f_q08 = filter_quality(a, 0.8) + 1;
  f_q095 = filter_quality(a, 0.95) + 1;
  f_fits = filter_op(a, BC_OP_M_FITS) + 1;
  f_healthy = filter_op(a, BC_OP_M_HEALTHY) + 1;
  f_err = la_filter(a) + 1;
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GE_I, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);

  simple(a, "cheapest", 2, BC_ORD_CHEAPEST, 0, all);
  simple(a, "fastest", 2, BC_ORD_FASTEST, 0, all);
  simple(a, "best", 2, BC_ORD_BEST, 0, by_quality);
  simple(a, "listed", 2, BC_ORD_LISTED, 0, all);
  simple(a, "one", 0, BC_ORD_CHEAPEST, 0, all);
  simple(a, "many", 8, BC_ORD_CHEAPEST, 0, all);
  simple(a, "checked", 2, BC_ORD_CHEAPEST, (int)f_q08, checked);
  simple(a, "mixed", 2, BC_ORD_LISTED, (int)f_q08, mixed);
  simple(a, "fits", 2, BC_ORD_CHEAPEST, (int)f_fits, checked);
  simple(a, "nomatch", 2, BC_ORD_CHEAPEST, (int)f_q095, checked);
  simple(a, "healthy", 2, BC_ORD_LISTED, (int)f_healthy, checked);

  la_route(a, "chain", 2);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, 0, all);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "fallthrough", 2);
  la_rule(a, "quality >= 95%");
  la_op(a, BC_OP_SHADOW, 0, 0, M[2]);
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f_q095, checked);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "errfilter", 0);
  la_rule(a, "filter raises");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, (int)f_err, checked);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "diverr", 0);
  a->line = 7;
  la_rule(a, "req.images / 0 > 0");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  then_cand(a, BC_ORD_LISTED, 0, only0, &j);
  a->line = 9;
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "overflow", 0);
  a->line = 12;
  la_rule(a, "req.input_tokens + max > 0");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_INPUT_TOKENS);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, INT64_MAX));
  la_op(a, BC_OP_ADD_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  then_cand(a, BC_ORD_LISTED, 0, only0, &j);
  a->line = 13;
  la_rule(a, "uint(1) - uint(2) == 0");
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 1));
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 2));
  la_op(a, BC_OP_SUB_U, 0, 0, 0);
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_EQ_U, 0, 0, 0);
  then_cand(a, BC_ORD_LISTED, 0, only0, &j);
  a->line = 14;
  la_rule(a, "int(req.score / 0.0) == 0");
  la_op(a, BC_OP_LOAD, 0, 0, score);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.0));
  la_op(a, BC_OP_DIV_D, 0, 0, 0);
  la_op(a, BC_OP_D2I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_EQ_I, 0, 0, 0);
  then_cand(a, BC_ORD_LISTED, 0, only0, &j);
  a->line = 15;
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "shadow", 0);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_SHADOW, 0, 0, M[4]);
  la_op(a, BC_OP_SHADOW, 0, 0, M[4]);
  la_op(a, BC_OP_SHADOW, 0, 0, M[0]);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  la_route(a, "strings", 0);
  la_rule(a, "req.task == \"chat\" && req.tier in [\"free\", \"pro\"]");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_TASK);
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, "chat"));
  la_op(a, BC_OP_EQ_S, 0, 0, 0);
  j2 = la_op(a, BC_OP_JF_KEEP, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_TIER);
  la_op(a, BC_OP_IN_LIST, 0, 0, la_list_str(a, 2, (const char *const[]){ "free", "pro" }));
  la_patch(a, j2);
  then_cand(a, BC_ORD_LISTED, 0, only0, &j);
  la_rule(a, "bucket(req.user) == 41%");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_USER);
  la_op(a, BC_OP_BUCKET_S, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.41));
  la_op(a, BC_OP_EQ_D, 0, 0, 0);
  then_cand(a, BC_ORD_LISTED, 0, only2, &j);
  la_rule(a, "size(req.team) == 5 || req.images in [7]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  la_op(a, BC_OP_S_SIZE, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 5));
  la_op(a, BC_OP_EQ_I, 0, 0, 0);
  j2 = la_op(a, BC_OP_JT_KEEP, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_IN_LIST, 0, 0, la_list_int(a, 1, (const int64_t[]){ 7 }));
  la_patch(a, j2);
  then_cand(a, BC_ORD_LISTED, 0, only4, &j);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, only1);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

static lane_runtime *rt;

static void expect(const char *route, const lane_request *r, int rc, int rule, int n,
                   const int *cands, const char *what) {
  lane_decision d;
  int got = lane_decide(rt, route, r, &d), same = 1;
  is_int(got, rc, "%s: status", what);
  if (rc != LANE_OK) return;
  is_int(d.rule, rule, "%s: rule", what);
  for (int i = 0; i < n && i < d.ncandidates; i++) same &= d.candidates[i] == cands[i];
  if (!ok(d.ncandidates == n && same, "%s: candidates", what)) {
    char buf[64] = "";
    for (int i = 0; i < d.ncandidates; i++)
      snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " %d", d.candidates[i]);
    diag("got%s", buf);
  }
}

#define C(...) (const int[]){ __VA_ARGS__ }

int main(void) {
  la *a = build();
  lane_error err;
  lane_program *p = la_load(a, &err), *p2;
  lane_request r, other;
  lane_decision d;

  ok(p != NULL, "program loads%s%s", p ? "" : ": ", p ? "" : err.message);
  if (!p) bail("cannot continue");
  rt = lane_runtime_new(p, &err);
  ok(rt != NULL, "runtime");

  lane_request_init(&r, p);
  is_int(lane_set_int(&r, BC_F_INPUT_TOKENS, 1000), LANE_OK, "set input_tokens");
  is_int(lane_set_int(&r, BC_F_MAX_OUTPUT_TOKENS, 100), LANE_OK, "set max_output_tokens");

  /* orders and ties: costs are 0.013 0.0012 0.0036 0.0012 0.0055 */
  expect("cheapest", &r, LANE_OK, 1, 3, C(1, 3, 2), "cheapest, tie keeps declaration order");
  expect("fastest", &r, LANE_OK, 1, 3, C(4, 1, 3), "fastest, unknown p95 last");
  expect("best", &r, LANE_OK, 1, 3, C(4, 0, 2), "best: quality, then cost");
  expect("listed", &r, LANE_OK, 1, 3, C(0, 1, 2), "listed");
  expect("one", &r, LANE_OK, 1, 1, C(1), "fallbacks 0");
  expect("many", &r, LANE_OK, 1, 5, C(1, 3, 2, 4, 0), "fallbacks 8, pool of 5");
  expect("chain", &r, LANE_OK, 1, 3, C(1, 3, 2), "chain deduplicates");
  expect("checked", &r, LANE_OK, 1, 3, C(2, 4, 0), "filter on checked members");
  expect("mixed", &r, LANE_OK, 1, 3, C(1, 2, 0), "unchecked members skip the filter");
  lane_decide(rt, "cheapest", &r, &d);
  is_dbl(d.cost, lane_cost(p, &r, 1), 0, "cost is the primary's");
  is_dbl(d.cost, 1000 * (1 / 1e6) + 100 * (2 / 1e6), 0, "cost formula");
  ok(d.steps == 3 && d.steps <= lane_program_max_steps(p), "steps %u counted", d.steps);
  is_int(d.nerrors, 0, "no errors");
  is_dbl(lane_cost(p, &r, 99), 0, 0, "cost of a bad model is 0");

  /* fall-through, shadows cleared by the next rule */
  lane_decide(rt, "fallthrough", &r, &d);
  ok(d.rule == 2 && d.ncandidates == 1 && d.candidates[0] == 1,
     "all candidates filtered: falls through");
  is_int(d.nshadows, 0, "shadows of a rule that did not decide are dropped");
  expect("nomatch", &r, LANE_ENOMATCH, 0, 0, NULL, "no rule produces a model");
  lane_decide(rt, "errfilter", &r, &d);
  ok(d.rule == 2 && d.nerrors == 0, "an error in a filter excludes the model");

  /* runtime errors in conditions */
  lane_decide(rt, "diverr", &r, &d);
  ok(d.rule == 2 && d.candidates[0] == 1, "division by zero: rule does not match");
  is_int(d.nerrors, 1, "nerrors");
  is_int(d.error_line, 7, "error_line");
  lane_request_init(&other, p);
  lane_set_int(&other, BC_F_INPUT_TOKENS, 0);
  lane_decide(rt, "overflow", &other, &d);
  ok(d.rule == 1 && d.nerrors == 0, "no overflow: rule 1");
  lane_set_int(&other, BC_F_INPUT_TOKENS, 1);
  lane_set_double(&other, score, 1.0);
  lane_decide(rt, "overflow", &other, &d);
  ok(d.rule == 4 && d.candidates[0] == 1, "int overflow, uint below zero, inf to int");
  is_int(d.nerrors, 3, "three errors");
  is_int(d.error_line, 12, "first error's line");

  /* fits */
  lane_request_init(&other, p);
  lane_set_int(&other, BC_F_INPUT_TOKENS, 15000);
  lane_set_int(&other, BC_F_MAX_OUTPUT_TOKENS, 2000);
  expect("fits", &other, LANE_OK, 1, 3, C(3, 2, 4), "fits excludes a small context");
  lane_set_int(&other, BC_F_MAX_OUTPUT_TOKENS, 5000);
  expect("fits", &other, LANE_OK, 1, 3, C(2, 4, 0), "fits checks max_output");
  lane_set_int(&other, BC_F_INPUT_TOKENS, INT64_MAX);
  lane_set_int(&other, BC_F_MAX_OUTPUT_TOKENS, 1);
  expect("fits", &other, LANE_ENOMATCH, 0, 0, NULL, "overflowing token sum fits nothing");

  /* shadows */
  lane_decide(rt, "shadow", &r, &d);
  ok(d.nshadows == 2 && d.shadows[0] == 4 && d.shadows[1] == 0, "shadows deduplicated");

  /* strings, lists, buckets, && and || */
  lane_request_init(&other, p);
  lane_set_str(&other, BC_F_TASK, "chat", 4);
  lane_set_str(&other, BC_F_TIER, "free", 4);
  expect("strings", &other, LANE_OK, 1, 1, C(0), "== and in on strings");
  lane_set_str(&other, BC_F_TIER, "gold", 4);
  lane_set_str(&other, BC_F_USER, "alice", 5);
  expect("strings", &other, LANE_OK, 2, 1, C(2), "bucket(\"alice\") is 41%%");
  lane_set_str(&other, BC_F_USER, "bob", 3);
  lane_set_str(&other, team, "h\xc3\xa9llo", 6);
  expect("strings", &other, LANE_OK, 3, 1, C(4), "size counts code points");
  lane_set_str(&other, team, "hello!", 6);
  expect("strings", &other, LANE_OK, 4, 1, C(1), "otherwise");
  lane_set_int(&other, BC_F_IMAGES, 7);
  expect("strings", &other, LANE_OK, 3, 1, C(4), "int in list, || short circuit");

  /* live health */
  for (int i = 0; i < 4; i++) lane_observe(rt, 0, 100, 0);
  expect("healthy", &r, LANE_OK, 1, 3, C(0, 1, 2), "4 failures: still healthy");
  lane_observe(rt, 0, 100, 0);
  expect("healthy", &r, LANE_OK, 1, 3, C(1, 2, 3), "5 consecutive failures: unhealthy");
  lane_observe(rt, 0, 100, 1);
  expect("healthy", &r, LANE_OK, 1, 3, C(1, 2, 3),
         "a late success does not close an open breaker (it waits for its cooldown)");
  lane_observe(rt, 99, 1, 0);
  lane_observe(rt, -1, 1, 0);
  lane_charge(rt, &r, 1.0);

  /* bad arguments */
  is_int(lane_decide(rt, "nope", &r, &d), LANE_EARG, "unknown route");
  is_int(lane_decide(rt, NULL, &r, &d), LANE_EARG, "NULL route");
  is_int(lane_decide_route(rt, 99, &r, &d), LANE_EARG, "route index out of range");
  is_int(lane_decide_route(rt, lane_route(p, "one"), &r, &d), LANE_OK, "by index");
  p2 = la_load(a, &err);
  lane_request_init(&other, p2);
  is_int(lane_decide(rt, "one", &other, &d), LANE_EARG, "request of another program");
  lane_program_free(p2);

  /* setters */
  lane_request_init(&other, p);
  is_int(lane_set_int(&other, BC_F_TASK, 1), LANE_EARG, "int into a string field");
  is_int(lane_set_str(&other, BC_F_IMAGES, "x", 1), LANE_EARG, "string into an int field");
  is_int(lane_set_bool(&other, BC_F_IMAGES, 1), LANE_EARG, "bool into an int field");
  is_int(lane_set_bool(&other, BC_F_TOOLS, 5), LANE_OK, "bool");
  is_int(other.v[BC_F_TOOLS].i, 1, "bool normalized");
  is_int(lane_set_double(&other, BC_F_IMAGES, 1.5), LANE_EARG, "non-integral double into int");
  is_int(lane_set_double(&other, BC_F_IMAGES, 2.0), LANE_OK, "integral double into int");
  is_int(lane_set_double(&other, BC_F_IMAGES, NAN), LANE_EARG, "nan into int");
  is_int(lane_set_double(&other, BC_F_IMAGES, 1e300), LANE_EARG, "huge double into int");
  is_int(lane_set_double(&other, BC_F_LATENCY_BUDGET, 800), LANE_OK, "duration");
  is_int(lane_set_int(&other, BC_F_LATENCY_BUDGET, 800), LANE_EARG, "int into a duration");
  is_int(lane_set_uint(&other, count, UINT64_MAX), LANE_OK, "uint");
  is_int(lane_set_int(&other, count, -1), LANE_EARG, "negative int into uint");
  is_int(lane_set_uint(&other, BC_F_IMAGES, UINT64_MAX), LANE_EARG, "huge uint into int");
  is_int(lane_set_int(&other, -1, 0), LANE_EARG, "field -1");
  is_int(lane_set_int(&other, 64, 0), LANE_EARG, "field 64");
  is_int(lane_set_str(&other, team, NULL, 3), LANE_EARG, "NULL string with a length");
  is_int(lane_set_str(&other, team, NULL, 0), LANE_OK, "NULL empty string");

  lane_runtime_free(rt);
  lane_program_free(p);
  free(a);
  return done_testing();
}

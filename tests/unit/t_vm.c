/*
 * t_vm.c -- decisions of hand-assembled programs: orders, ties, fallbacks,
 * chains, filters, fall-through, runtime errors, shadows, setters; traces
 * the caller gets wrong; contains() against a naive search; and string
 * work counted in steps, within the worst case at the limit.
 */
#include <math.h>
#include <stdint.h>

#include "tap.h"

#include "golden/lanec/asm.h"
#include "sem.h"
#include "lanec.h"
#include "compile.h"

static uint32_t M[6], all, by_quality, checked, mixed, only1, only0, only2, only4;
static uint32_t f_q08, f_q095, f_fits, f_err, f_healthy;
static uint32_t team, score, count, hay, needle;

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

static la *build(void) {
  la *a = la_new();
  uint32_t j2, C = BC_MEMBER_CHECK;
  team = la_field(a, "team", BC_U_STRING);
  score = la_field(a, "score", BC_U_FRACTION);
  count = la_field(a, "count", BC_U_UINT);
  hay = la_field(a, "hay", BC_U_STRING);
  needle = la_field(a, "needle", BC_U_STRING);
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
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
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
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
  a->line = 13;
  la_rule(a, "uint(1) - uint(2) == 0");
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 1));
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 2));
  la_op(a, BC_OP_SUB_U, 0, 0, 0);
  la_op(a, BC_OP_PUSH_U, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_EQ_U, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
  a->line = 14;
  la_rule(a, "int(req.score / 0.0) == 0");
  la_op(a, BC_OP_LOAD, 0, 0, score);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.0));
  la_op(a, BC_OP_DIV_D, 0, 0, 0);
  la_op(a, BC_OP_D2I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_EQ_I, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
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

  la_route(a, "contains", 0);   /* rule 1 if req.hay.contains(req.needle) */
  la_rule(a, "req.hay.contains(req.needle)");
  la_op(a, BC_OP_LOAD, 0, 0, hay);
  la_op(a, BC_OP_LOAD, 0, 0, needle);
  la_op(a, BC_OP_S_CONTAINS, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
  la_rule(a, "otherwise");
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
  la_then_cand(a, BC_ORD_LISTED, 0, only0);
  la_rule(a, "bucket(req.user) == 41%");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_USER);
  la_op(a, BC_OP_BUCKET_S, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.41));
  la_op(a, BC_OP_EQ_D, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, only2);
  la_rule(a, "size(req.team) == 5 || req.images in [7]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  la_op(a, BC_OP_S_SIZE, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 5));
  la_op(a, BC_OP_EQ_I, 0, 0, 0);
  j2 = la_op(a, BC_OP_JT_KEEP, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_IN_LIST, 0, 0, la_list_int(a, 1, (const int64_t[]){ 7 }));
  la_patch(a, j2);
  la_then_cand(a, BC_ORD_LISTED, 0, only4);
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

static int naive_contains(const char *s, size_t n, const char *t, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(s + i, t, m) == 0) return 1;
  return 0;
}

/* The i-th string over an alphabet of k letters, by length then order. */
static size_t nth_string(unsigned i, int k, char *out) {
  size_t len = 0;
  unsigned here = 1;   /* strings of length len */
  while (i >= here) { i -= here; here *= (unsigned)k; len++; }
  for (size_t p = len; p-- > 0; i /= (unsigned)k) out[p] = (char)('a' + i % (unsigned)k);
  return len;
}

/* contains() (two-way matching) agrees with a naive search: every
 * haystack of up to 9 letters over {a, b} with every needle of up to 6,
 * then random ones over {a, b, c} up to 40 and 12 bytes. */
static int contains_agrees(lane_runtime *run, const lane_program *p) {
  char s[64], t[64];
  unsigned seed = 7;
  lane_request r;
  lane_decision d;
  for (unsigned i = 0; i < 1023; i++)
    for (unsigned j = 0; j < 127; j++) {
      size_t n = nth_string(i, 2, s), m = nth_string(j, 2, t);
      lane_request_init(&r, p);
      lane_set_str(&r, hay, s, n);
      lane_set_str(&r, needle, t, m);
      if (lane_decide(run, "contains", &r, &d) != LANE_OK ||
          (d.rule == 1) != naive_contains(s, n, t, m)) {
        diag("\"%.*s\".contains(\"%.*s\"): rule %d", (int)n, s, (int)m, t, d.rule);
        return 0;
      }
    }
  for (int k = 0; k < 20000; k++) {
    size_t n = (seed = seed * 1103515245u + 12345u) >> 16 & 63, m;
    n = n % 41;
    m = ((seed = seed * 1103515245u + 12345u) >> 16) % 13;
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + ((seed = seed * 1103515245u + 12345u) >> 16) % 3);
    for (size_t i = 0; i < m; i++) t[i] = (char)('a' + ((seed = seed * 1103515245u + 12345u) >> 16) % 3);
    if (m && n >= m && (seed >> 20) % 2) memcpy(t, s + (seed >> 8) % (n - m + 1), m);
    lane_request_init(&r, p);
    lane_set_str(&r, hay, s, n);
    lane_set_str(&r, needle, t, m);
    if (lane_decide(run, "contains", &r, &d) != LANE_OK ||
        (d.rule == 1) != naive_contains(s, n, t, m)) {
      diag("\"%.*s\".contains(\"%.*s\"): rule %d", (int)n, s, (int)m, t, d.rule);
      return 0;
    }
  }
  return 1;
}

/* A trace the caller got wrong is refused before anything is written. */
static void traces(lane_runtime *run, const lane_program *p, const lane_request *r) {
  lane_event ev[64];
  lane_decision d;
  memset(ev, 0x5a, sizeof ev);
  lane_trace bad = { ev, -1, 0, 0 };   /* n == cap was never true: wrote past ev */
  is_int(lane_decide_traced(run, lane_route(p, "fallthrough"), r, &d, &bad), LANE_EARG,
         "trace with cap -1: LANE_EARG");
  ok(bad.n == 0 && ev[0].kind == 0x5a5a5a5a && ev[1].kind == 0x5a5a5a5a,
     "trace with cap -1: nothing written");
  lane_trace neg = { ev, 64, -3, 0 };
  is_int(lane_decide_traced(run, lane_route(p, "fallthrough"), r, &d, &neg), LANE_EARG,
         "trace with n -3: LANE_EARG");
  lane_trace null = { NULL, 2, 0, 0 };
  is_int(lane_decide_traced(run, lane_route(p, "fallthrough"), r, &d, &null), LANE_EARG,
         "trace with cap 2 and no events: LANE_EARG");
  lane_trace none = { NULL, 0, 0, 0 };
  is_int(lane_decide_traced(run, lane_route(p, "fallthrough"), r, &d, &none), LANE_OK,
         "trace with cap 0 and no events: decides");
  ok(none.n == 0 && none.truncated == 1, "trace with cap 0: truncated, nothing written");
  lane_trace two = { ev, 2, 0, 0 };
  is_int(lane_decide_traced(run, lane_route(p, "fallthrough"), r, &d, &two), LANE_OK,
         "trace with cap 2: decides");
  ok(two.n == 2 && two.truncated == 1 && ev[2].kind == 0x5a5a5a5a,
     "trace with cap 2: two events, truncated, nothing past them");
}

/*
 * String work counts (vm/README.md, "Cost model"). One rule runs every
 * string operation on two request strings s and t, at most LANE_MAX_STRING
 * (4096) bytes each as far as the loader knows, and tests s against a
 * list of eight 4096-byte strings. The worst case, by hand (W below):
 *   RULE                                              1
 *   s == t: LOAD LOAD EQ_S (1 + 4096/CMP)             2 + 1 + 4096/CMP
 *   s < t, startsWith, endsWith, each: + NE_B         3 * (3 + 1 + 4096/CMP)
 *   s.contains(t): LOAD LOAD (1 + 8192/FIND) NE_B     4 + 8192/FIND
 *   size(s) >= 0: LOAD (1 + 4096/SCAN) PUSH_I GE_I NE_B  5 + 4096/SCAN
 *   bucket(s) >= 0: LOAD (1 + 4096/HASH) PUSH_D GE_D NE_B  5 + 4096/HASH
 *   s in list: LOAD (1 + 8/ELEMS + 8*4096/CMP) NE_B   3 + 8/ELEMS + 32768/CMP
 *   JF, CAND (1 + 1 member), ENDRULE                  4
 *   RULE, CAND (2), ENDRULE (rule 2), NOMATCH         5
 * With s = t = 4096 bytes of "a", every operation reads all it may and
 * the condition is false: the decision counts W - 5 (the first CAND and
 * ENDRULE and the NOMATCH do not run, and a CAND's members count in the
 * worst case only).
 */
#define W (1 + (3 + 4096 / BC_COST_CMP) + 3 * (4 + 4096 / BC_COST_CMP) + \
           (4 + 8192 / BC_COST_FIND) + (5 + 4096 / BC_COST_SCAN) + (5 + 4096 / BC_COST_HASH) + \
           (3 + 8 / BC_COST_ELEMS + 32768 / BC_COST_CMP) + 4 + 5)
static void string_work(void) {
  static char elems[8][4097], big[LANE_MAX_STRING + 2];
  const char *list[8];
  la *a = la_new();
  uint32_t m = la_model(a, "acme.m", 1, 1, 0, 0, 0.5, 0, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m }), sf = la_field(a, "s", BC_U_STRING);
  uint32_t tf = la_field(a, "t", BC_U_STRING), l;
  lane_load_options opt = { 0, 0 };
  lane_error err;
  lane_program *p;
  for (int i = 0; i < 8; i++) {
    memset(elems[i], 'a', 4095);
    elems[i][4095] = (char)('A' + i);
    list[i] = elems[i];
  }
  l = la_list_str(a, 8, list);
  la_route(a, "work", 0);
  la_rule(a, "every string operation");
  la_op(a, BC_OP_LOAD, 0, 0, sf);
  la_op(a, BC_OP_LOAD, 0, 0, tf);
  la_op(a, BC_OP_EQ_S, 0, 0, 0);
  const int two[] = { BC_OP_LT_S, BC_OP_S_STARTS, BC_OP_S_ENDS, BC_OP_S_CONTAINS };
  for (int i = 0; i < 4; i++) {
    la_op(a, BC_OP_LOAD, 0, 0, sf);
    la_op(a, BC_OP_LOAD, 0, 0, tf);
    la_op(a, two[i], 0, 0, 0);
    la_op(a, BC_OP_NE_B, 0, 0, 0);
  }
  la_op(a, BC_OP_LOAD, 0, 0, sf);
  la_op(a, BC_OP_S_SIZE, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GE_I, 0, 0, 0);
  la_op(a, BC_OP_NE_B, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, sf);
  la_op(a, BC_OP_BUCKET_S, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0));
  la_op(a, BC_OP_GE_D, 0, 0, 0);
  la_op(a, BC_OP_NE_B, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, sf);
  la_op(a, BC_OP_IN_LIST, 0, 0, l);
  la_op(a, BC_OP_NE_B, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);

  p = la_load(a, &err);
  is_int(p ? (long long)lane_program_max_steps(p) : -1, W,
         "string work: worst case counts the bytes strings may take");
  lane_program_free(p);
  {
    size_t n;
    unsigned char *b = la_bytes(a, &n);
    opt.max_steps = W - 1;
    p = lane_load_with(b, n, &opt, &err);
    ok(!p && err.code == LANE_ELIMIT, "string work: refused one step below its worst case");
    opt.max_steps = W;
    p = lane_load_with(b, n, &opt, &err);
    ok(p != NULL, "string work: loads with max_steps at its worst case%s%s", p ? "" : ": ",
       p ? "" : err.message);
    free(b);
  }
  if (p) {
    lane_runtime *wrt = lane_runtime_new(p, &err);
    lane_request r;
    lane_decision d;
    memset(big, 'a', sizeof big);
    lane_request_init(&r, p);
    is_int(lane_set_str(&r, sf, big, LANE_MAX_STRING + 1), LANE_ELIMIT,
           "lane_set_str: %d bytes, one over LANE_MAX_STRING: LANE_ELIMIT", LANE_MAX_STRING + 1);
    ok(!(r.set >> sf & 1), "lane_set_str: a refused string leaves the field unset");
    is_int(lane_set_str(&r, sf, big, LANE_MAX_STRING), LANE_OK,
           "lane_set_str: LANE_MAX_STRING bytes: LANE_OK");
    is_int(lane_set_str(&r, tf, big, LANE_MAX_STRING), LANE_OK, "second string");
    is_int(lane_set_str(&r, tf, big, LANE_MAX_STRING + 1), LANE_ELIMIT,
           "lane_set_str: over the limit on a set field: LANE_ELIMIT");
    ok(r.v[tf].s.n == LANE_MAX_STRING, "lane_set_str: a refused string leaves the field as it was");
    is_int(lane_decide(wrt, "work", &r, &d), LANE_OK, "string work: decides");
    is_int(d.steps, W - 5, "string work: maximal strings count what the worst case allows");
    ok(d.steps <= lane_program_max_steps(p), "string work: within the worst case");
    lane_runtime_free(wrt);
    lane_program_free(p);
  }
  free(a);
}
#undef W

/* S_SPLIT_GET gives a view of its string, so the verifier must give the
 * part its string's length class: lastIndexOf() in a part of a
 * 20,000-byte constant counts every byte within the worst case. */
static void split_view_bound(void) {
  static char big[20001], pat[101];
  memset(big, 'a', 20000);
  memset(pat, 'b', 100);
  la *a = la_new();
  uint32_t m = la_model(a, "acme.m", 1, 1, 0, 0, 0.5, 0, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m });
  la_route(a, "r", 0);
  la_rule(a, "a part's size");
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, big));
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, ","));
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_S_SPLIT_GET, 0, 0, 0);
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, pat));
  la_op(a, BC_OP_S_LASTINDEX, 0, 0, 0);   /* a compare at each start: the part's length counts */
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_LT_I, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  lane_error err;
  lane_program *p = la_load(a, &err);
  ok(p != NULL, "split view: loads%s%s", p ? "" : ": ", p ? "" : err.message);
  if (p) {
    lane_runtime *run = lane_runtime_new(p, &err);
    lane_request r;
    lane_decision d;
    lane_request_init(&r, p);
    lane_decide(run, "r", &r, &d);
    ok(d.rule == 1 && d.steps > 20000 * 100 / BC_COST_CMP && d.steps <= lane_program_max_steps(p),
       "split view: lastIndexOf() in a 20,000-byte part counted (%u steps), within the worst case "
       "(%llu)", d.steps, (unsigned long long)lane_program_max_steps(p));
    lane_runtime_free(run);
    lane_program_free(p);
  }
  free(a);
}

/* One ITER's worst case buckets the entries by length (iter_bound): few
 * can be long. Lists of every shape that fills LANE_MAX_MAP (as many
 * items of one length as fit, 256 at most), each item scanned whole by
 * lastIndexOf(), stay within the program's worst case; and that worst
 * case is below 256 runs at LANE_MAX_STRING each. */
static void iter_bound_shapes(void) {
  const char *src =
    "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
    "request { tags: list(string) }\n"
    "route r {\n  when req.tags.exists_one(t, t.lastIndexOf(\"zz\") >= 0) -> a\n"
    "  otherwise -> b\n}\n";
  static const size_t lens[] = {0, 1, 16, 17, 64, 65, 256, 257, 1024, 1025, 2000, 4096};
  char diag[2048], buf[64 * 1024] __attribute__((aligned(16)));
  static char item[LANE_MAX_STRING];
  static lane_value items[BC_MAX_MAP_ENTRIES];
  lane_program *p = test_compile(src, diag, sizeof diag);
  if (!p) bail("cannot compile the iteration policy: %s", diag);
  lane_runtime *run = lane_runtime_new(p, NULL);
  uint64_t max = lane_program_max_steps(p);
  uint32_t most = 0;
  int bad = 0, f = lane_field(p, "tags");
  char why[160] = "";
  memset(item, 'a', sizeof item);
  for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
    size_t n = (LANE_MAX_MAP - 4) / (lens[k] + 8);
    if (n > BC_MAX_MAP_ENTRIES) n = BC_MAX_MAP_ENTRIES;
    for (size_t i = 0; i < n; i++) items[i].s.p = item, items[i].s.n = lens[k];
    lane_request *r = lane_request_init_in(buf, sizeof buf, p, NULL);
    if (lane_set_list(r, f, items, n) != LANE_OK) bail("cannot set %zu items of %zu bytes", n, lens[k]);
    lane_decision d;
    lane_decide(run, "r", r, &d);
    if (d.steps > most) most = d.steps;
    if (d.steps > max && !bad++)
      snprintf(why, sizeof why, "; %zu items of %zu bytes took %u steps", n, lens[k], d.steps);
  }
  ok(!bad, "iteration: every list shape within the worst case (%llu; the most taken %u)%s",
     (unsigned long long)max, most, why);
  ok(max < (uint64_t)BC_MAX_MAP_ENTRIES * (2 * LANE_MAX_STRING / BC_COST_SCAN + LANE_MAX_STRING * 2 /
                                          BC_COST_CMP),
     "iteration: the worst case is below 256 runs on LANE_MAX_STRING-byte items (%llu)",
     (unsigned long long)max);
  lane_runtime_free(run);
  lane_program_free(p);
}

/* sem_bytes_eq compares strings of up to 16 bytes in place (overlapping
 * words from both ends): every length 0 .. 40, equal, and unequal at each
 * position, at every offset inside a buffer that ends where the string
 * does (ASan sees a read past it). */
static void bytes_eq_lengths(void) {
  int bad = 0, cases = 0;
  for (size_t n = 0; n <= 40; n++) {
    for (size_t off = 0; off < 3; off++) {
      unsigned char *a = malloc(off + n + 1), *b = malloc(n + 1);
      if (!a || !b) bail("out of memory");
      for (size_t i = 0; i < n; i++) a[off + i] = b[i] = (unsigned char)('a' + (i * 7 + n) % 26);
      bad += !sem_bytes_eq(a + off, n, b, n);
      cases++;
      for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x20;
        bad += sem_bytes_eq(a + off, n, b, n) || sem_bytes_eq(b, n, a + off, n);
        b[i] ^= 0x20;
        cases++;
      }
      if (n) bad += sem_bytes_eq(a + off, n, b, n - 1);
      free(a);
      free(b);
    }
  }
  ok(bad == 0, "sem_bytes_eq: %d comparisons of 0 to 40 bytes, equal and unequal at each "
     "byte, agree with the bytes (%d wrong)", cases, bad);
}

/* The math extension's rounding is written without libm (liblane links
 * libc alone): it must agree with libm's ceil, floor, round, trunc and
 * fabs bit for bit -- zeros' signs, halves, 2^52 and above, NaN and the
 * infinities -- on edges and on a sweep of doubles of every magnitude. */
static int same_bits(double a, double b) {
  return (a != a && b != b) || !memcmp(&a, &b, sizeof a);
}

static void rounding_matches_libm(void) {
  static const double edges[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994,
                                 -0.49999999999999994, 1.0, -1.0, 4503599627370495.5,
                                 -4503599627370495.5, 4503599627370496.0, 9007199254740993.0,
                                 1e300, -1e300, 5e-324, -5e-324, 1.0 / 0.0, -1.0 / 0.0};
  int bad = 0, cases = 0;
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (int i = 0; i < 200000; i++) {
    double d;
    if (i < (int)(sizeof edges / sizeof *edges)) d = edges[i];
    else if (i == (int)(sizeof edges / sizeof *edges)) d = 0.0 / 0.0;
    else {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;   /* xorshift64: bits of any double */
      uint64_t bits = (x & 0x800FFFFFFFFFFFFFu) | ((uint64_t)(1000 + x % 110) << 52);
      memcpy(&d, &bits, sizeof d);                 /* exponents 2^-23 .. 2^86 */
    }
    bad += !same_bits(sem_trunc(d), trunc(d)) + !same_bits(sem_floor(d), floor(d)) +
           !same_bits(sem_ceil(d), ceil(d)) + !same_bits(sem_round(d), round(d)) +
           !same_bits(sem_fabs(d), fabs(d));
    cases += 5;
  }
  ok(bad == 0, "sem_trunc/floor/ceil/round/fabs agree with libm on %d cases (%d differ)", cases, bad);
}

/* Map fields: lane_set_map stores entries as sem.h says, refuses what it
 * must (and leaves the field as it was), and MAP_GET, MAP_HAS and
 * MAP_SIZE read them: an unset map is empty, a key it lacks an error. */
static void map_fields(void) {
  const char *src =
    "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
    "model c { input $1/Mtok output $1/Mtok }\nmodel d { input $1/Mtok output $1/Mtok }\n"
    "request { m: map(string, string)  n: map(string, double)  f: map(string, bool) }\n"
    "route r {\n  when req.m.team == \"x\" -> a\n  when \"k\" in req.n && req.n[\"k\"] > 1.5 -> b\n"
    "  when (has(req.f.zz) || size(req.f) == 2) && req.f.on -> c\n  otherwise -> d\n}\n";
  lanec_result cr;
  if (lanec_compile("maps.lane", src, NULL, &cr) != LANEC_OK) lanec_print_diags(&cr, stdout);
  lane_program *p = cr.prog;
  cr.prog = NULL;
  lanec_result_free(&cr);
  if (!p) bail("cannot compile the map policy");
  lane_runtime *rt2 = lane_runtime_new(p, NULL);
  int m = lane_field(p, "m"), n = lane_field(p, "n"), f = lane_field(p, "f");
  is_int(lane_field_type(p, m), LANE_T_MAP, "a map field is LANE_T_MAP");
  is_str(lane_field_unit(p, n), "map(string, double)", "its unit names the value type");
  lane_request r;
  lane_decision d;
  lane_request_init(&r, p);
  lane_decide(rt2, "r", &r, &d);
  ok(d.rule == 4 && d.nerrors == 1, "unset maps are empty: no key (an error), size 0 (rule %d, "
     "%d errors)", d.rule, d.nerrors);
  lane_entry e[3] = {{"team", 4, {.s = {"x", 1}}}, {"other", 5, {.s = {"", 0}}}};
  is_int(lane_set_map(&r, m, e, 2), LANE_OK, "set a map(string, string)");
  is_int((int)r.ntext, 4 + 4 + 4 + 4 + 1 + 4 + 5 + 4, "  it takes 4 + per entry 4 + key + 4 + "
         "value bytes of the text room");
  lane_decide(rt2, "r", &r, &d);
  is_int(d.rule, 1, "req.m.team");
  e[1].key = "team";
  e[1].klen = 4;
  is_int(lane_set_map(&r, m, e, 2), LANE_EARG, "a key given twice: LANE_EARG");
  is_int(lane_set_map(&r, n, e, 2), LANE_EARG, "  (and the field is left as it was)");
  lane_decide(rt2, "r", &r, &d);
  is_int(d.rule, 1, "  req.m is as it was");
  is_int(lane_set_map(&r, lane_field(p, "user"), e, 1), LANE_EARG, "a string field: LANE_EARG");
  e[0] = (lane_entry){"k", 1, {.d = 2.5}};
  is_int(lane_set_map(&r, n, e, 1), LANE_OK, "set a map(string, double)");
  lane_set_map(&r, m, NULL, 0);
  lane_decide(rt2, "r", &r, &d);
  is_int(d.rule, 2, "\"k\" in req.n && req.n[\"k\"] > 1.5");
  e[0] = (lane_entry){"on", 2, {.i = 1}};
  e[1] = (lane_entry){"off", 3, {.i = 2}};
  is_int(lane_set_map(&r, f, e, 2), LANE_EARG, "a bool of 2: LANE_EARG");
  e[1].v.i = 0;
  is_int(lane_set_map(&r, f, e, 2), LANE_OK, "set a map(string, bool)");
  lane_set_map(&r, n, NULL, 0);
  lane_decide(rt2, "r", &r, &d);
  is_int(d.rule, 3, "(has(req.f.zz) || size(req.f) == 2) && req.f.on");
  static char big[LANE_MAX_STRING + 1];
  memset(big, 'k', sizeof big);
  e[0] = (lane_entry){big, LANE_MAX_STRING + 1, {.i = 1}};
  is_int(lane_set_map(&r, f, e, 1), LANE_ELIMIT, "a key past LANE_MAX_STRING: LANE_ELIMIT");
  lane_entry *many = calloc(2000, sizeof *many);
  char (*keys)[16] = calloc(2000, 16);
  if (!many || !keys) bail("out of memory");
  for (int i = 0; i < 2000; i++) {
    snprintf(keys[i], 16, "k%d", i);
    many[i] = (lane_entry){keys[i], strlen(keys[i]), {.i = 1}};
  }
  is_int(lane_set_map(&r, f, many, LANE_MAX_MAP_ENTRIES + 1), LANE_ELIMIT,
         "%d entries: past LANE_MAX_MAP_ENTRIES", LANE_MAX_MAP_ENTRIES + 1);
  char buf[64 * 1024] __attribute__((aligned(16)));
  lane_request *big_r = lane_request_init_in(buf, sizeof buf, p, NULL);
  for (int i = 0; i < LANE_MAX_MAP_ENTRIES; i++) {   /* long keys: past LANE_MAX_MAP in bytes */
    char *k = malloc(96);
    if (!k) bail("out of memory");
    snprintf(k, 96, "%03d-%068d", i % 1000, 0);
    many[i] = (lane_entry){k, strlen(k), {.i = 1}};
  }
  is_int(lane_set_map(big_r, f, many, LANE_MAX_MAP_ENTRIES), LANE_ELIMIT,
         "%d entries of 72-byte keys (more than 16 KiB): past LANE_MAX_MAP",
         LANE_MAX_MAP_ENTRIES);
  for (int i = 0; i < LANE_MAX_MAP_ENTRIES; i++) many[i].klen = 40;
  is_int(lane_set_map(big_r, f, many, LANE_MAX_MAP_ENTRIES), LANE_OK,
         "%d entries of 40-byte keys fit a 64 KiB compact request", LANE_MAX_MAP_ENTRIES);
  lane_decide(rt2, "r", big_r, &d);
  ok(d.rule == 4 && d.steps > 500 && d.steps <= lane_program_max_steps(p), "  has() scans its "
     "%zu bytes, counted, within the worst case (%u of %llu steps)", (size_t)big_r->v[f].s.n,
     d.steps, (unsigned long long)lane_program_max_steps(p));
  lane_request small;
  lane_request_init(&small, p);
  is_int(lane_set_map(&small, f, many, 100), LANE_ELIMIT, "100 entries do not fit "
         "a request variable's 1,024 bytes of room: LANE_ELIMIT");
  is_int((int)small.ntext, 0, "  nothing of the room was taken");
  for (int i = 0; i < LANE_MAX_MAP_ENTRIES; i++) free((char *)many[i].key);
  free(many);
  free(keys);
  lane_runtime_free(rt2);
  lane_program_free(p);
}

/* The parts of s split at sep, as Go's strings.Split (CEL's split()),
 * written plainly: at most 16 parts of s (at most 16 bytes here). */
static int ref_split(const char *s, const char *sep, const char *part[16], size_t len[16]) {
  int n = 0;
  size_t sn = strlen(sep);
  if (!sn) {   /* each UTF-8 sequence */
    for (const char *q = s; *q; n++) {
      size_t k = 1;
      while ((q[k] & 0xC0) == 0x80) k++;
      part[n] = q;
      len[n] = k;
      q += k;
    }
    return n;
  }
  const char *q = s, *hit;
  while ((hit = strstr(q, sep)) != NULL) {
    part[n] = q;
    len[n++] = (size_t)(hit - q);
    q = hit + sn;
  }
  part[n] = q;
  len[n++] = strlen(q);
  return n;
}

static int decide_rule(lane_runtime *run, const char *route, const lane_request *r, int *errs) {
  lane_decision d;
  lane_decide(run, route, r, &d);
  *errs = (int)d.nerrors;
  return d.rule;
}

/* split() of run-time strings (S_SPLIT_N, S_SPLIT_HAS, S_SPLIT_GET),
 * join() of a list field (LIST_JOIN) and size() of filter() (ITER_N)
 * against ref_split over every string of up to four of 'a' ',' 'é' and
 * seven separators: sizes, membership, each part and past the last,
 * join(split(s, sep), sep) == s, and a count of the parts that are "a". */
static void split_join_agree(void) {
  const char *src =
    "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
    "request { s: string  sep: string  x: string  i: int  tags: list(string) }\n"
    "route n {\n  when size(req.s.split(req.sep)) == req.i -> a\n  otherwise -> b\n}\n"
    "route h {\n  when req.x in req.s.split(req.sep) -> a\n  otherwise -> b\n}\n"
    "route g {\n  when req.s.split(req.sep)[req.i] == req.x -> a\n  otherwise -> b\n}\n"
    "route j {\n  when req.tags.join(req.sep) == req.x -> a\n  otherwise -> b\n}\n"
    "route c {\n  when req.tags.filter(t, t == req.x).size() == req.i -> a\n  otherwise -> b\n}\n";
  char diag[2048];
  lane_program *p = test_compile(src, diag, sizeof diag);
  if (!p) bail("cannot compile the split policy: %s", diag);
  lane_runtime *run = lane_runtime_new(p, NULL);
  int fs = lane_field(p, "s"), fsep = lane_field(p, "sep"), fx = lane_field(p, "x");
  int fi = lane_field(p, "i"), ft = lane_field(p, "tags");
  static const char *const alpha[] = {"a", ",", "\xc3\xa9"};
  static const char *const seps[] = {"", ",", ",,", "a,", "\xc3\xa9", "aa", "x"};
  int cases = 0, bad = 0, errs;
  char why[160] = "";
  for (int len = 0; len <= 4; len++) {
    int total = 1;
    for (int k = 0; k < len; k++) total *= 3;
    for (int code = 0; code < total; code++) {
      char s[16] = "";
      for (int k = 0, c = code; k < len; k++, c /= 3) strcat(s, alpha[c % 3]);
      for (size_t e = 0; e < sizeof seps / sizeof *seps; e++) {
        const char *part[16];
        size_t plen[16];
        int np = ref_split(s, seps[e], part, plen), as = 0;
        lane_request r;
        lane_request_init(&r, p);
        lane_set_str(&r, fs, s, strlen(s));
        lane_set_str(&r, fsep, seps[e], strlen(seps[e]));
        cases++;
#define AGREE(cond, ...) do { if (!(cond)) { if (!bad++) snprintf(why, sizeof why, __VA_ARGS__); } } while (0)
        lane_set_int(&r, fi, np);
        AGREE(decide_rule(run, "n", &r, &errs) == 1, "size(\"%s\".split(\"%s\")) is not %d", s, seps[e], np);
        lane_set_int(&r, fi, np + 1);
        AGREE(decide_rule(run, "n", &r, &errs) == 2, "size(\"%s\".split(\"%s\")) is %d", s, seps[e], np + 1);
        lane_value items[16];
        for (int k = 0; k < np; k++) {
          lane_set_str(&r, fx, part[k], plen[k]);
          AGREE(decide_rule(run, "h", &r, &errs) == 1, "part %d of \"%s\".split(\"%s\") not 'in'", k, s, seps[e]);
          lane_set_int(&r, fi, k);
          AGREE(decide_rule(run, "g", &r, &errs) == 1 && !errs, "[%d] of \"%s\".split(\"%s\")", k, s, seps[e]);
          items[k].s.p = part[k];
          items[k].s.n = plen[k];
          as += plen[k] == 1 && part[k][0] == 'a';
        }
        lane_set_str(&r, fx, "z", 1);
        AGREE(decide_rule(run, "h", &r, &errs) == 2, "\"z\" in \"%s\".split(\"%s\")", s, seps[e]);
        lane_set_int(&r, fi, np);
        AGREE(decide_rule(run, "g", &r, &errs) == 2 && errs == 1, "[%d] of \"%s\".split(\"%s\") is not an error", np, s, seps[e]);
        lane_set_int(&r, fi, -1);
        AGREE(decide_rule(run, "g", &r, &errs) == 2 && errs == 1, "[-1] of \"%s\".split(\"%s\") is not an error", s, seps[e]);
        if (lane_set_list(&r, ft, items, (size_t)np) != LANE_OK) bail("cannot set the list");
        if (seps[e][0]) {
          lane_set_str(&r, fx, s, strlen(s));
          AGREE(decide_rule(run, "j", &r, &errs) == 1, "join(split(\"%s\", \"%s\"))", s, seps[e]);
        }
        lane_set_str(&r, fx, "a", 1);
        lane_set_int(&r, fi, as);
        AGREE(decide_rule(run, "c", &r, &errs) == 1, "%d parts of \"%s\".split(\"%s\") are \"a\"", as, s, seps[e]);
#undef AGREE
      }
    }
  }
  ok(!bad, "split(), join() and size() of filter() agree with a plain split on %d cases%s%s",
     cases, bad ? "; first: " : "", why);
  {   /* each part is work: 4,096 commas make 4,097 parts, each counted */
    static char commas[LANE_MAX_STRING];
    char room[8192] __attribute__((aligned(16)));
    lane_request *r = lane_request_init_in(room, sizeof room, p, NULL);
    memset(commas, ',', sizeof commas);
    lane_set_str(r, fs, commas, sizeof commas);
    lane_set_str(r, fsep, ",", 1);
    lane_set_int(r, fi, LANE_MAX_STRING + 1);
    lane_decision d;
    lane_decide(run, "n", r, &d);
    ok(d.rule == 1 && d.steps >= BC_COST_PART * (LANE_MAX_STRING + 1) &&
       d.steps <= lane_program_max_steps(p), "split(): %d commas make %d parts, each counted "
       "(%u steps, at most %llu)", LANE_MAX_STRING, LANE_MAX_STRING + 1, d.steps,
       (unsigned long long)lane_program_max_steps(p));
  }
  lane_runtime_free(run);
  lane_program_free(p);
}

/* Times and durations at the edges: any int may reach a timestamp
 * opcode from a file, and a duration has no range, so these must stay
 * defined (UBSan checks) and keep within their buffers. */
static void time_edges(void) {
  int64_t t = 0;
  char buf[48];
  sem_tz z;
  is_int(sem_ts_add(INT64_MAX, 5.0, &t), SEM_ERANGE, "INT64_MAX + 5 ms: out of range, no overflow");
  is_int(sem_ts_add(INT64_MIN, -5.0, &t), SEM_ERANGE, "INT64_MIN - 5 ms: out of range");
  ok(!sem_tz_parse("EST5EDT,M3.2.0,M11.1.0", &z), "a POSIX rule parses");
  is_int((int)sem_ts_part(INT64_MAX, SEM_TS_YEAR, &z), 9999, "INT64_MAX as a timestamp reads "
         "as the last one (year 9999)");
  is_int((int)sem_ts_part(INT64_MIN, SEM_TS_YEAR, NULL), 1, "INT64_MIN as the first (year 1, UTC)");
  int n = sem_dur_format(1e303, buf, sizeof buf);
  ok(n > 0 && (size_t)n < sizeof buf && strchr(buf, 'e'), "a duration of 1e303 ms formats "
     "within its buffer: %s", buf);
  n = sem_dur_format(1e18, buf, sizeof buf);
  is_str(buf, "1000000000000000s", "1e18 ms is 1000000000000000s");
  (void)n;
  la *a = la_new();   /* a map of timestamps names its unit */
  uint32_t f = la_field(a, "times", BC_U_TIMESTAMP);
  a->fields[f].type = LANE_T_MAP;
  la_route(a, "r", 0);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  lane_error err;
  lane_program *p = la_load(a, &err);
  ok(p && !strcmp(lane_field_unit(p, (int)f), "map(string, timestamp)"),
     "a map field of timestamps: lane_field_unit says map(string, timestamp)%s%s",
     p ? "" : ": ", p ? "" : err.message);
  lane_program_free(p);
  free(a);
}

/* Compact requests (lane_request_init_in): their size, their refusals, the
 * text room API, and every route deciding alike on a compact request and
 * a lane_request variable holding the same values. */
static void compact_requests(lane_runtime *run, const lane_program *p) {
  lane_error err;
  size_t head = lane_request_size(p, 0);
  int nf = lane_field_count(p);
  is_int((long long)head, (long long)(offsetof(lane_request, v) + (size_t)nf * sizeof(lane_value)),
         "lane_request_size: the header and one lane_value per field (%d fields: %zu bytes)",
         nf, head);
  ok(sizeof(void *) != 8 || head == 32 + 16 * (size_t)nf, "  32 + 16 x fields on LP64");
  is_int((long long)lane_request_size(p, 100), (long long)head + 100, "  plus the text room asked");
  is_int((long long)lane_request_size(p, SIZE_MAX), 0, "  0 when the sum overflows");
  is_int((long long)lane_request_size(NULL, 0), 0, "  0 without a program");
  ok(head < sizeof(lane_request) / 4, "a compact request is under a quarter of a variable "
     "(%zu of %zu bytes)", head, sizeof(lane_request));

  lane_value *buf = calloc(1, head + 64 + sizeof(lane_value));
  if (!buf) bail("out of memory");
  ok(lane_request_init_in(buf, head - 1, p, &err) == NULL && err.code == LANE_EARG &&
     strstr(err.message, "lane_request_size") != NULL,
     "a buffer one byte short is refused: %s", err.message);
  ok(lane_request_init_in((char *)buf + 4, head + 8, p, &err) == NULL && err.code == LANE_EARG &&
     strstr(err.message, "aligned") != NULL, "a misaligned buffer is refused: %s", err.message);
  ok(lane_request_init_in(NULL, head, p, &err) == NULL && err.code == LANE_EARG,
     "no buffer: refused");
  ok(lane_request_init_in(buf, head, NULL, &err) == NULL && err.code == LANE_EARG,
     "no program: refused");

  lane_request *c = lane_request_init_in(buf, head + 10, p, &err);
  if (!ok(c != NULL && (void *)c == (void *)buf, "a compact request with 10 bytes of text"))
    bail("cannot continue");
  size_t left = 0;
  char *t = lane_request_text(c, &left);
  ok(t == (char *)buf + head && left == 10, "its text room follows its values (%zu left)", left);
  is_int(lane_request_text_used(c, 11), LANE_ELIMIT, "marking 11 bytes used: LANE_ELIMIT");
  memcpy(t, "ab", 2);
  is_int(lane_request_text_used(c, 2), LANE_OK, "marking 2 used");
  ok(lane_request_text(c, &left) == t + 2 && left == 8, "  8 left after them");
  is_int(lane_set_str(c, (int)team, t, 2), LANE_OK, "a string set from the text room");
  lane_request var;
  lane_request_init(&var, p);
  ok(lane_request_text(&var, &left) == var.text && left == LANE_REQUEST_TEXT,
     "a variable's text room is its own %d bytes", LANE_REQUEST_TEXT);

  /* the same values both ways: every route decides alike */
  struct { int f, kind; int64_t i; const char *s; } vals[] = {
    { BC_F_INPUT_TOKENS, 0, 1000, NULL }, { BC_F_MAX_OUTPUT_TOKENS, 0, 100, NULL },
    { (int)count, 0, 3, NULL }, { (int)score, 0, 7, NULL }, { (int)hay, 1, 0, "haystack" },
    { (int)needle, 1, 0, "st" }, { (int)team, 1, 0, "ab" } };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    int tp = lane_field_type(p, vals[i].f);
    lane_request *both[2] = { &var, c };
    for (int k = 0; k < 2; k++) {
      if (vals[i].kind) lane_set_str(both[k], vals[i].f, vals[i].s, strlen(vals[i].s));
      else if (tp == LANE_T_DOUBLE) lane_set_double(both[k], vals[i].f, (double)vals[i].i);
      else if (tp == LANE_T_INT || tp == LANE_T_UINT) lane_set_int(both[k], vals[i].f, vals[i].i);
    }
  }
  int same = 1, n = lane_route_count(p);
  for (int rt_i = 0; rt_i < n; rt_i++) {
    lane_decision a, b;
    int ra = lane_decide_route(run, rt_i, &var, &a), rb = lane_decide_route(run, rt_i, c, &b);
    if (ra != rb || (ra == LANE_OK && (a.rule != b.rule || a.ncandidates != b.ncandidates ||
                     memcmp(a.candidates, b.candidates, sizeof a.candidates) ||
                     a.steps != b.steps || a.cost != b.cost))) {
      same = 0;
      diag("route %s: %d/%d rule %d/%d", lane_route_name(p, rt_i), ra, rb, a.rule, b.rule);
    }
  }
  ok(same, "all %d routes decide alike on a compact request and a variable", n);
  free(buf);
}

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
  /* five code points in 13 bytes: size() reads eight bytes at a time */
  lane_set_str(&other, team, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xc3\xa9\xc3\xa9", 13);
  expect("strings", &other, LANE_OK, 3, 1, C(4), "size counts code points, 8 bytes at a time");
  lane_set_str(&other, team, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xc3\xa9\xc3\xa9!", 14);
  expect("strings", &other, LANE_OK, 4, 1, C(1), "six code points in 14 bytes");
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

  ok(contains_agrees(rt, p), "contains() agrees with a naive search");
  traces(rt, p, &r);
  string_work();
  compact_requests(rt, p);
  bytes_eq_lengths();
  rounding_matches_libm();
  map_fields();
  split_join_agree();
  split_view_bound();
  iter_bound_shapes();
  time_edges();

  lane_runtime_free(rt);
  lane_program_free(p);
  free(a);
  return done_testing();
}

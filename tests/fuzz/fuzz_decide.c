/*
 * fuzz_decide.c -- a verified program x random requests and live state ->
 * lane_decide.
 *
 * Input: a little-endian u32 length L, L bytes of .lanec (resealed: size
 * field and checksum are recomputed, so mutated programs reach the
 * verifier), then a script of operations: decide (with a request filled
 * from the input, plain or traced), observe a call, charge spend, move the
 * fake clock, read stats, budgets and costs, snapshot, and save and load
 * budget spend. Whatever the verifier accepts must decide without a
 * sanitizer finding, within its worst case, with candidates in range.
 * Seeds: the compiled golden policies with a few operations each.
 */
#include "fuzz.h"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

/* The two must decide alike: a program and its twin loaded without the
 * filter parts spec.c works out (bc_unspecialize), each on a runtime of
 * its own that sees the same calls, charges and clock. */
static void same(int rc, const lane_decision *a, int rc2, const lane_decision *b) {
  if (rc != rc2 || a->steps != b->steps || a->filtered_rule != b->filtered_rule ||
      a->nerrors != b->nerrors || a->error_line != b->error_line)
    abort();
  if (rc != LANE_OK) return;
  if (a->rule != b->rule || a->ncandidates != b->ncandidates || a->nshadows != b->nshadows ||
      a->probed != b->probed || memcmp(&a->cost, &b->cost, sizeof a->cost) ||
      memcmp(a->candidates, b->candidates, (size_t)a->ncandidates * sizeof a->candidates[0]) ||
      memcmp(a->shadows, b->shadows, (size_t)a->nshadows * sizeof a->shadows[0]))
    abort();
}

static void decide(fz *f, const lane_program *p, lane_runtime *rt, const lane_program *p2,
                   lane_runtime *rt2) {
  char pool[8][16];
  lane_request r, r2;
  lane_decision d, d2;
  lane_event ev[16], ev2[16];
  lane_trace tr = {ev, 1 + fz_u8(f) % 16, 0, 0}, tr2 = {ev2, tr.cap, 0, 0};
  int nr = lane_route_count(p), route = (int)(fz_u8(f) % (unsigned)(nr + 1)) - (nr == 0);
  fz_request(f, p, &r, pool, 8);
  r2 = r;
  r2.prog = p2;
  int traced = fz_u8(f) & 1;
  int rc = traced ? lane_decide_traced(rt, route, &r, &d, &tr) : lane_decide_route(rt, route, &r, &d);
  int rc2 = traced ? lane_decide_traced(rt2, route, &r2, &d2, &tr2)
                   : lane_decide_route(rt2, route, &r2, &d2);
  fz_check_decision(p, rc, &d);
  same(rc, &d, rc2, &d2);
  if (rc == LANE_OK) {
    (void)lane_cost(p, &r, d.candidates[0]);
    double usd = fz_double(f);
    int c1 = lane_charge(rt, &r, usd), c2 = lane_charge(rt2, &r2, usd);
    if ((c1 != LANE_OK && c1 != LANE_EARG) || c1 != c2) abort();
  }
  if (tr.n < 0 || tr.n > tr.cap) abort();
}

static void run(fz *f, const lane_program *p, const lane_program *p2) {
  uint64_t now = 1700000000000ull + fz_u32(f);
  lane_runtime_options o = {fake_clock, &now, fz_u8(f) % 4 ? 0 : 1 + fz_u32(f) % 120000,
                            fz_u8(f) % 8, fz_u8(f) % 8, fz_u8(f) % 4 ? 0 : fz_u32(f) % 60000,
                            fz_u8(f) % 4 ? 0 : fz_u8(f), 0, 0};
  lane_error err;
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err);
  if (!rt) {
    if (err.code != LANE_EARG) abort();
    return;
  }
  lane_runtime *rt2 = lane_runtime_new_with(p2, &o, &err);
  if (!rt2) abort();
  int nm = lane_model_count(p), nb = lane_budget_count(p);
  for (int step = 0; step < 64 && f->n; step++) {
    switch (fz_u8(f) % 8) {
    case 0: case 1: case 2: decide(f, p, rt, p2, rt2); break;
    case 3: {
      int m = (int)(fz_u8(f) % (unsigned)(nm + 2)) - 1;
      double ms = fz_double(f);
      int status = fz_u8(f) % 7;
      lane_observe(rt, m, ms, status);
      lane_observe(rt2, m, ms, status);
      break;
    }
    case 4: now += fz_u32(f) % 100000; break;
    case 5: {
      lane_live_stats st;
      int m = (int)(fz_u8(f) % (unsigned)(nm + 2)) - 1;
      if (lane_model_stats(rt, m, &st) == LANE_OK && fz_u8(f) % 4 == 0) {
        st.p95 = fz_double(f);
        st.state = fz_u8(f) % 4;
        lane_runtime_set_model_stats(rt, m, &st);
        lane_runtime_set_model_stats(rt2, m, &st);
      }
      break;
    }
    case 6: {
      int b = (int)(fz_u8(f) % (unsigned)(nb + 2)) - 1;
      char key[8];
      size_t kn = fz_u8(f) % sizeof key;
      double spent;
      for (size_t i = 0; i < kn; i++) key[i] = (char)('0' + fz_u8(f) % 10);
      uint64_t h = lane_budget_key_hash(p, b, key, kn);
      lane_budget_spent(rt, b, h, &spent);
      if (fz_u8(f) % 4 == 0) {
        double usd = fz_double(f);
        lane_runtime_set_spend(rt, b, h, usd);
        lane_runtime_set_spend(rt2, b, h, usd);
      }
      break;
    }
    default: {
      char buf[512];
      size_t need = lane_runtime_snapshot(rt, buf, fz_u8(f) % sizeof buf);
      if (need > 4096 && need < (1u << 24) && fz_u8(f) % 8 == 0) {
        char *big = malloc(need + 1);
        if (big && lane_runtime_snapshot(rt, big, need + 1) != need) abort();
        free(big);
      }
      break;
    }
    }
  }
  lane_runtime_free(rt);
  lane_runtime_free(rt2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz f = {data, size};
  uint32_t len = fz_u32(&f);
  if (len > f.n || len < BC_HEADER_SIZE || len > 1 << 20) return 0;
  uint8_t *b = malloc(len);
  if (!b) return 0;
  memcpy(b, f.p, len);
  f.p += len;
  f.n -= len;
  fz_reseal(b, len);
  lane_error err;
  lane_load_options lo = {200000, 0};
  lane_program *p = lane_load_with(b, len, &lo, &err);
  lane_program *p2 = p ? lane_load_with(b, len, &lo, &err) : NULL;
  free(b);
  if (!p) return 0;
  if (!p2) abort();
  bc_unspecialize(p2);
  run(&f, p, p2);
  lane_program_free(p);
  lane_program_free(p2);
  return 0;
}

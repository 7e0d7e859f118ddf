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

static void decide(fz *f, const lane_program *p, lane_runtime *rt) {
  char pool[8][16];
  lane_request r;
  lane_decision d;
  lane_event ev[16];
  lane_trace tr = {ev, 1 + fz_u8(f) % 16, 0, 0};
  int nr = lane_route_count(p), route = (int)(fz_u8(f) % (unsigned)(nr + 1)) - (nr == 0);
  fz_request(f, p, &r, pool, 8);
  int rc = fz_u8(f) & 1 ? lane_decide_traced(rt, route, &r, &d, &tr)
                        : lane_decide_route(rt, route, &r, &d);
  fz_check_decision(p, rc, &d);
  if (rc == LANE_OK) {
    (void)lane_cost(p, &r, d.candidates[0]);
    int rc2 = lane_charge(rt, &r, fz_double(f));
    if (rc2 != LANE_OK && rc2 != LANE_EARG) abort();
  }
  if (tr.n < 0 || tr.n > tr.cap) abort();
}

static void run(fz *f, const lane_program *p) {
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
  int nm = lane_model_count(p), nb = lane_budget_count(p);
  for (int step = 0; step < 64 && f->n; step++) {
    switch (fz_u8(f) % 8) {
    case 0: case 1: case 2: decide(f, p, rt); break;
    case 3: {
      int m = (int)(fz_u8(f) % (unsigned)(nm + 2)) - 1;
      lane_observe(rt, m, fz_double(f), fz_u8(f) % 7);
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
      if (fz_u8(f) % 4 == 0) lane_runtime_set_spend(rt, b, h, fz_double(f));
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
  free(b);
  if (!p) return 0;
  run(&f, p);
  lane_program_free(p);
  return 0;
}

/*
 * t_scale.c -- the verifier's work grows linearly with a hostile file.
 *
 * Each kind of tests/golden/lanec/big.h attacks a path of vm/load.c that
 * once took time quadratic in the file: route names compared pairwise,
 * switches and lists rescanning the cases or elements they share, a
 * switch's targets or a pool's order rescanned for every instruction that
 * uses it, long case strings compared once per switch. Each kind is built
 * at 1 MB and at 8 MB and loaded through bc_load_counted, which counts the
 * verifier's inner-loop iterations and the bytes it compares (by 16). The
 * 8 MB file may cost at most 8 times the 1 MB one and a quarter more (the
 * strings are ranked by a merge sort, n log n), and at most two units a
 * byte. A count, not a clock: the verdict is the same on any
 * machine and under any sanitizer. tests/bench/verify_scale.c measures
 * the wall times (20 s to 15 minutes at 8 MB before, tens of ms after).
 */
#include "tap.h"

#include "golden/lanec/big.h"

#define MB ((size_t)1 << 20)

/* Loads kind k at `size` bytes; returns the work, *msg the outcome. */
static uint64_t work_of(big_kind k, size_t size, char *msg, size_t cap, size_t *n,
                        int *decided_ok) {
  lane_load_options opt = { UINT64_MAX, 0 };   /* verify all of it, whatever the worst case */
  lane_error err;
  uint64_t work = 0;
  unsigned char *b = big_file(k, size, n);
  lane_program *p = bc_load_counted(b, *n, &opt, &work, &err);
  snprintf(msg, cap, "%s", p ? "loaded" : err.message);
  *decided_ok = 1;
  if (p) {   /* and whatever loaded decides within its worst case */
    lane_runtime *rt = lane_runtime_new(p, &err);
    lane_request r;
    lane_decision d;
    lane_request_init(&r, p);
    *decided_ok = rt && lane_decide_route(rt, 0, &r, &d) == LANE_OK &&
                  d.steps <= lane_program_max_steps(p);
    lane_runtime_free(rt);
  }
  lane_program_free(p);
  free(b);
  return work;
}

int main(void) {
  for (int k = 0; k < BIG_CONTAINS; k++) {
    char m1[200], m8[200], want[200];
    size_t n1, n8;
    int d1, d8;
    uint64_t w1 = work_of((big_kind)k, MB, m1, sizeof m1, &n1, &d1);
    uint64_t w8 = work_of((big_kind)k, 8 * MB, m8, sizeof m8, &n8, &d8);
    diag("%s: %zu bytes %llu work, %zu bytes %llu work (x%.2f)", big_names[k], n1,
         (unsigned long long)w1, n8, (unsigned long long)w8, w1 ? (double)w8 / (double)w1 : 0);
    if (k == BIG_SWITCH_SHARED) {   /* a switch's cases are its own */
      snprintf(want, sizeof want, "switch 1: cases [0,+%u) overlap those of switch 0",
               (unsigned)(8 * MB / 2 / 25));
      is_str(m8, want, "%s: refused", big_names[k]);
    } else {
      is_str(m8, "loaded", "%s: loads", big_names[k]);
    }
    ok(d1 && d8, "%s: decides within its worst case", big_names[k]);
    ok(w8 <= w1 * 10, "%s: 8 MB costs at most 10 times 1 MB (%llu, %llu)", big_names[k],
       (unsigned long long)w8, (unsigned long long)w1);
    ok(w8 <= 2 * n8, "%s: at most two units of work a byte (%llu for %zu bytes)", big_names[k],
       (unsigned long long)w8, n8);
  }
  return done_testing();
}

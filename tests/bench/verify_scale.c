/*
 * verify_scale.c -- how long lane_load takes on the hostile files of
 * tests/golden/lanec/big.h, and one decision on the `contains` one.
 *
 * Not part of `make bench` (the verifier's growth is tested without a
 * clock by tests/unit/t_scale.c); a measurement to run by hand:
 *
 *   make build/liblane.a
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Ivm -Itests/golden/lanec \
 *     tests/bench/verify_scale.c build/liblane.a -lm -o /tmp/verify_scale
 *   /tmp/verify_scale [MB...]          every kind at each size (default 1 8)
 *   /tmp/verify_scale --kind K [MB...] kind K only (routes, lists, ...)
 *   /tmp/verify_scale --contains MB    the `contains` file: loaded with
 *                                      max_steps 9, the default and the
 *                                      largest, and decided when it loads
 *
 * Add -DNO_WORK to build against a liblane without bc_load_counted (the
 * work column is then 0). Times are wall clock, one run each.
 */
#include <time.h>

#include "big.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static lane_program *load(const unsigned char *b, size_t n, uint64_t max_steps, uint64_t *work,
                          lane_error *err) {
  lane_load_options opt = { max_steps, 0 };
  *work = 0;
#ifdef NO_WORK
  return lane_load_with(b, n, &opt, err);
#else
  return bc_load_counted(b, n, &opt, work, err);
#endif
}

static void one(big_kind k, double mb) {
  size_t n;
  uint64_t work;
  lane_error err;
  unsigned char *b = big_file(k, (size_t)(mb * (1 << 20)), &n);
  double t0 = now_s();
  lane_program *p = load(b, n, UINT64_MAX, &work, &err);
  double t = now_s() - t0;
  printf("%-14s %5.1f MB %10zu bytes %9.3f s %14llu work  %.70s\n", big_names[k], mb, n, t,
         (unsigned long long)work, p ? "loaded" : err.message);
  fflush(stdout);
  lane_program_free(p);
  free(b);
}

static void contains(double mb) {
  size_t n;
  uint64_t work, limits[] = { 9, 0, UINT64_MAX };
  unsigned char *b = big_file(BIG_CONTAINS, (size_t)(mb * (1 << 20)), &n);
  for (int i = 0; i < 3; i++) {
    lane_error err;
    double t0 = now_s();
    lane_program *p = load(b, n, limits[i], &work, &err);
    printf("contains %.1f MB (%zu bytes), max_steps %llu: load %.3f s: %s\n", mb, n,
           (unsigned long long)limits[i], now_s() - t0, p ? "loaded" : err.message);
    if (p) {
      lane_runtime *rt = lane_runtime_new(p, &err);
      lane_request r;
      lane_decision d;
      int rc;
      lane_request_init(&r, p);
      t0 = now_s();
      rc = lane_decide(rt, "r", &r, &d);
      printf("  one decision: %.3f s, %s, %u steps, worst case %llu\n", now_s() - t0,
             lane_status_name(rc), (unsigned)d.steps,
             (unsigned long long)lane_program_max_steps(p));
      lane_runtime_free(rt);
      lane_program_free(p);
    }
    fflush(stdout);
  }
  free(b);
}

int main(int argc, char **argv) {
  int only = -1, first = 1;
  if (argc == 3 && strcmp(argv[1], "--contains") == 0) {
    contains(atof(argv[2]));
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--kind") == 0) {
    for (int k = 0; k < BIG_CONTAINS; k++)
      if (strcmp(argv[2], big_names[k]) == 0) only = k;
    if (only < 0) { fprintf(stderr, "verify_scale: no kind %s\n", argv[2]); return 2; }
    first = 3;
  }
  for (int k = 0; k < BIG_CONTAINS; k++) {
    if (only >= 0 && k != only) continue;
    if (argc <= first) {
      one((big_kind)k, 1);
      one((big_kind)k, 8);
    }
    for (int i = first; i < argc; i++) one((big_kind)k, atof(argv[i]));
  }
  return 0;
}

/*
 * swap.c -- `make bench`, part "hot swap": what lane_runtime_swap costs
 * the decisions around it. One thread decides without pause (a host's
 * request: lane_runtime_acquire, build the request, lane_decide, release)
 * for a while alone, then while the main thread swaps in a fresh copy of
 * the reference program 200 times, 1 ms apart. Reported: the decision
 * latency quantiles of both runs, and how long a swap takes (the new
 * program already loaded; the swap waits for calls still reading the old
 * one, never the other way round).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "lane.h"

enum { MAXLAT = 4000000, SWAPS = 200 };

typedef struct run {
  lane_runtime *rt;
  atomic_int    stop;
  double       *lat;      /* ns per decision */
  int           n;
  int           failed;
} run;

static uint64_t FIXED_NOW = 1767225600000ull;
static uint64_t fixed(void *ctx) { (void)ctx; return FIXED_NOW; }

static void *decider(void *arg) {
  run *r = arg;
  while (!atomic_load_explicit(&r->stop, memory_order_relaxed) && r->n < MAXLAT) {
    uint64_t t0 = bench_ns();
    lane_runtime *v = lane_runtime_acquire(r->rt);
    const lane_program *p = lane_runtime_program(v);
    lane_request q;
    lane_request_init(&q, p);
    lane_set_str(&q, lane_field(p, "task"), "chat", 4);
    lane_set_str(&q, lane_field(p, "tier"), "pro", 3);
    lane_set_str(&q, lane_field(p, "tenant"), "t7", 2);
    lane_set_int(&q, lane_field(p, "input_tokens"), 1200);
    lane_set_int(&q, lane_field(p, "max_output_tokens"), 400);
    lane_decision d;
    if (lane_decide(v, "ref", &q, &d) != LANE_OK) r->failed++;
    lane_runtime_release(v);
    r->lat[r->n++] = (double)(bench_ns() - t0);
  }
  return NULL;
}

static void quantiles(const char *what, double *v, int n) {
  if (n <= 0) return;
  bench_median(v, n);   /* sorts */
  printf("  %-22s %8d decisions: p50 %6.0f ns  p99 %6.0f ns  p99.9 %7.0f ns  max %8.0f ns\n",
         what, n, v[n / 2], v[(int)(n * 0.99)], v[(int)(n * 0.999)], v[n - 1]);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int bench_swap(const unsigned char *bytes, size_t nbytes) {
  lane_error err;
  lane_program *first = lane_load(bytes, nbytes, &err);
  if (!first) return fprintf(stderr, "bench swap: %s\n", err.message), -1;
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fixed;
  lane_runtime *rt = lane_runtime_new_with(first, &o, &err);
  run r = {rt, 0, malloc(sizeof(double) * MAXLAT), 0, 0};
  double swaps[SWAPS];
  int nswaps = 0, failed_swaps = 0;
  if (!rt || !r.lat) return fprintf(stderr, "bench swap: out of memory\n"), -1;
  printf("\nhot swap (lane_runtime_swap while one thread decides: acquire, request, decide, "
         "release):\n");
  pthread_t th;
  pthread_create(&th, NULL, decider, &r);   /* alone */
  sleep_ms(400);
  atomic_store(&r.stop, 1);
  pthread_join(th, NULL);
  quantiles("no swaps:", r.lat, r.n);
  int failed_alone = r.failed;
  r.n = 0;
  r.failed = 0;
  atomic_store(&r.stop, 0);
  pthread_create(&th, NULL, decider, &r);   /* with swaps */
  for (int i = 0; i < SWAPS; i++) {
    lane_program *p = lane_load(bytes, nbytes, &err);
    uint64_t t0 = bench_ns();
    if (p && lane_runtime_swap(rt, p, NULL, &err) == LANE_OK) swaps[nswaps++] = (double)(bench_ns() - t0);
    else { failed_swaps++; lane_program_free(p); }
    sleep_ms(1);
  }
  atomic_store(&r.stop, 1);
  pthread_join(th, NULL);
  quantiles("during 200 swaps:", r.lat, r.n);
  bench_median(swaps, nswaps);
  printf("  a swap (program loaded): median %.1f us, max %.1f us; %d failed swaps, %d failed "
         "decisions\n", nswaps ? swaps[nswaps / 2] / 1e3 : 0, nswaps ? swaps[nswaps - 1] / 1e3 : 0,
         failed_swaps, failed_alone + r.failed);
  lane_runtime_free(rt);
  lane_program_free(first);
  free(r.lat);
  return failed_swaps || failed_alone || r.failed ? -1 : 0;
}

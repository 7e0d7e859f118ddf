/*
 * t_threads.c -- several threads deciding on one shared program and
 * runtime get exactly the single-threaded decisions.
 */
#include <pthread.h>

#include "tap.h"

#include "golden/lanec/asm.h"

#define NTHREADS 4
#define NREQ     64
#define ROUNDS   2000

static lane_program *prog;
static lane_runtime *rt;
static lane_request reqs[NREQ];
static lane_decision want[NREQ];
static char users[NREQ][24];

static la *build(void) {
  la *a = la_new();
  uint32_t C = BC_MEMBER_CHECK, pool, f, j;
  la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  la_model(a, "beta.mid", 3, 6, 100000, 8000, 0.8, 0, 0);
  la_model(a, "gamma.fast", 5, 5, 32000, 8000, 0.9, 100, 0);
  pool = la_pool(a, 4, (uint32_t[]){ 0 | C, 1 | C, 2 | C, 3 | C });
  f = la_filter(a);
  la_op(a, BC_OP_M_FITS, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 2);
  la_rule(a, "bucket(req.user) < 50%");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_USER);
  la_op(a, BC_OP_BUCKET_S, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  la_op(a, BC_OP_LT_D, 0, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_FASTEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

static void *worker(void *arg) {
  long bad = 0;
  lane_decision d;
  (void)arg;
  for (int k = 0; k < ROUNDS; k++)
    for (int i = 0; i < NREQ; i++) {
      lane_decide(rt, "chat", &reqs[i], &d);
      if (memcmp(&d, &want[i], sizeof d) != 0) bad++;
    }
  return (void *)bad;
}

int main(void) {
  la *a = build();
  lane_error err;
  pthread_t th[NTHREADS];
  long bad = 0;
  int matched = 0;

  prog = la_load(a, &err);
  ok(prog != NULL, "program loads");
  if (!prog) return done_testing();
  rt = lane_runtime_new(prog, &err);
  for (int i = 0; i < NREQ; i++) {
    lane_request_init(&reqs[i], prog);
    snprintf(users[i], sizeof users[i], "user-%d", i);
    lane_set_str(&reqs[i], BC_F_USER, users[i], strlen(users[i]));
    lane_set_int(&reqs[i], BC_F_INPUT_TOKENS, 1000 * (i % 40));
    lane_set_int(&reqs[i], BC_F_MAX_OUTPUT_TOKENS, 100 * (i % 7));
    memset(&want[i], 0, sizeof want[i]);
    if (lane_decide(rt, "chat", &reqs[i], &want[i]) == LANE_OK) matched++;
  }
  ok(matched > NREQ / 2, "%d of %d requests decided single-threaded", matched, NREQ);
  for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, worker, NULL);
  for (int t = 0; t < NTHREADS; t++) {
    void *r;
    pthread_join(th[t], &r);
    bad += (long)r;
  }
  is_int(bad, 0, "%d threads x %d decisions equal the single-threaded ones",
         NTHREADS, ROUNDS * NREQ);
  lane_runtime_free(rt);
  lane_program_free(prog);
  free(a);
  return done_testing();
}

/*
 * t_stress.c -- several threads on one program and one runtime, doing
 * lane_decide + lane_observe + lane_charge (and snapshots and stats reads)
 * concurrently for a bounded number of iterations, on a shared fake clock
 * that advances while they run, so time slots and budget periods are
 * claimed concurrently. Checks:
 *
 *   - every budget's spend is exactly the sum of the charges (integer
 *     nano-dollars: nothing lost, nothing doubled), per key for a table
 *     that fits and in total for one that overflows;
 *   - every decision is valid (candidates distinct, in range, not
 *     shadows, cost = lane_cost of the primary; LANE_ENOMATCH names a
 *     rule);
 *   - when several threads decide at once on a model whose cooldown has
 *     just ended, exactly one gets the probe.
 *
 * Meant to be clean under `make check-tsan`.
 */
#include <math.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"
#include "tap.h"

#define NTHREADS 4
#define ITERS    20000
#define NTEAMS   8
#define NUSERS   64
#define T0       1700006400000ull   /* a day boundary */

static atomic_uint_least64_t CLOCK;
static uint64_t clock_fn(void *ctx) { (void)ctx; return atomic_load(&CLOCK); }

static lane_program *P;
static lane_runtime *RT;
static int F_TEAM, F_USER, F_LAT, F_IN, F_OUT, F_TIER;

static const char *const POLICY =
  "model a { input $3/Mtok output $3/Mtok p50 200ms p95 500ms context 100k quality 0.9 }\n"
  "model b { input $1/Mtok output $1/Mtok p50 300ms p95 800ms context 50k quality 0.7 }\n"
  "model c { input $2/Mtok output $2/Mtok p50 100ms p95 400ms context 200k quality 0.8 }\n"
  "model d { input $0.5/Mtok output $0.5/Mtok p95 2s context 16k quality 0.6 }\n"
  "request { team: string }\n"
  "budget team_fixed { key req.team  limit $1000  window 1h }\n"
  "budget team_rolling { key req.team  limit $1000  rolling 12s }\n"
  "budget per_user { key req.user  limit $0.001  window 1d }\n"
  "route r { fallbacks 2  require fits && healthy\n"
  "  when budget.per_user.used >= 100% -> cheapest(models)\n"
  "  when req.latency_budget > 0ms -> fastest(models where p95 <= req.latency_budget)\n"
  "  when req.tier == \"pro\" -> split { a: 50%, best(models): 50% } by req.user, shadow d 30%\n"
  "  otherwise -> cheapest(models where error_rate < 30%), then c, shadow a }\n"
  "route one { require healthy  otherwise -> a }\n";

static lane_program *compile(const char *src) {
  static char buf[8192];
  sema_unit u;
  lane_program *p = NULL;
  snprintf(buf, sizeof buf, "%s", src);
  sema_init(&u, NULL);
  if (sema_load(&u, "stress.lane", buf) == 0 && sema_check(&u) == 0) {
    unsigned char *b = NULL;
    size_t n = 0;
    if (emit_program(&u, &b, &n) == 0) {
      lane_error err;
      p = lane_load(b, n, &err);
      if (!p) diag("lane_load: %s", err.message);
    }
    free(b);
  }
  if (!p) diag_render(stdout, &u.ctx);
  sema_free(&u);
  return p;
}

static char TEAMS[NTEAMS][24], USERS[NUSERS][24];

typedef struct work {
  int      id;
  uint64_t seed;
  int64_t  team_nanos[NTEAMS];   /* charged per team */
  int64_t  total_nanos;          /* charged in all */
  long     decisions, ok, nomatch, invalid, snapshots;
} work;

static uint64_t rnd(uint64_t *s) {   /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static int valid(int rc, const lane_decision *d, const lane_request *r) {
  int nm = lane_model_count(P);
  if (rc == LANE_ENOMATCH) return d->filtered_rule >= 1 && d->ncandidates == 0;
  if (rc != LANE_OK) return 0;
  if (d->ncandidates < 1 || d->ncandidates > 3 || d->rule < 1 || d->rule > 4) return 0;
  for (int i = 0; i < d->ncandidates; i++) {
    if (d->candidates[i] < 0 || d->candidates[i] >= nm) return 0;
    for (int j = 0; j < i; j++)
      if (d->candidates[j] == d->candidates[i]) return 0;
    for (int j = 0; j < d->nshadows; j++)
      if (d->shadows[j] == d->candidates[i]) return 0;
  }
  for (int j = 0; j < d->nshadows; j++)
    if (d->shadows[j] < 0 || d->shadows[j] >= nm) return 0;
  return d->cost == lane_cost(P, r, d->candidates[0]);
}

static void *worker(void *arg) {
  work *w = arg;
  char *snap = malloc(1 << 16);
  for (int it = 0; it < ITERS; it++) {
    uint64_t x = rnd(&w->seed);
    lane_request r;
    lane_decision d;
    int team = (int)(x % NTEAMS), user = (int)((x >> 8) % NUSERS);
    lane_request_init(&r, P);
    lane_set_str(&r, F_TEAM, TEAMS[team], strlen(TEAMS[team]));
    lane_set_str(&r, F_USER, USERS[user], strlen(USERS[user]));
    lane_set_int(&r, F_IN, (int64_t)((x >> 16) % 60000));
    lane_set_int(&r, F_OUT, (int64_t)((x >> 32) % 2000));
    if ((x >> 40) % 3 == 0) lane_set_double(&r, F_LAT, (double)((x >> 42) % 3000));
    if ((x >> 50) % 4 == 0) lane_set_str(&r, F_TIER, "pro", 3);
    int rc = lane_decide(RT, "r", &r, &d);
    w->decisions++;
    if (!valid(rc, &d, &r)) w->invalid++;
    if (rc == LANE_OK) {
      w->ok++;
      /* the call's outcome: mostly answers, some failures of every kind */
      int st = (x >> 20) % 20 == 0 ? (int)((x >> 24) % 6) : LANE_CALL_OK;
      double ms = 50.0 + (double)((x >> 28) % 4000);
      lane_observe(RT, d.candidates[0], ms, st);
      for (int s = 0; s < d.nshadows; s++) lane_observe(RT, d.shadows[s], ms * 1.5, LANE_CALL_OK);
    } else {
      w->nomatch++;
    }
    int64_t nanos = 1 + (int64_t)((x >> 12) % 200000);
    if (lane_charge(RT, &r, (double)nanos / 1e9) != LANE_OK) w->invalid++;
    w->team_nanos[team] += nanos;
    w->total_nanos += nanos;
    if (it % 16 == 15) atomic_fetch_add(&CLOCK, 1);   /* time passes */
    if (w->id == 0 && it % 1000 == 0) {   /* a reader of everything */
      lane_live_stats st;
      for (int m = 0; m < lane_model_count(P); m++) lane_model_stats(RT, m, &st);
      size_t n = lane_runtime_snapshot(RT, snap, 1 << 16);
      if (n < (1 << 16)) w->snapshots++;
    }
  }
  free(snap);
  return NULL;
}

/* Sum of every key's spend (the overflow account included) of budget
 * name, from a snapshot, in nano-dollars. */
static int64_t snapshot_total(const char *name, int *nkeys) {
  size_t n = lane_runtime_snapshot(RT, NULL, 0);
  char *s = malloc(n + 1);
  lane_runtime_snapshot(RT, s, n + 1);
  json_error_t je;
  json_t *root = json_loads(s, 0, &je), *b;
  free(s);
  int64_t total = 0;
  size_t i, k;
  *nkeys = 0;
  json_array_foreach(json_object_get(root, "budgets"), i, b) {
    json_t *key;
    if (strcmp(json_string_value(json_object_get(b, "budget")), name)) continue;
    json_array_foreach(json_object_get(b, "keys"), k, key) {
      total += llround(json_number_value(json_object_get(key, "spent")) * 1e9);
      (*nkeys)++;
    }
  }
  json_decref(root);
  return total;
}

/* ---- exactly one probe among concurrent decisions ---- */
#define PROBE_ROUNDS 150
static pthread_barrier_t BAR;
static atomic_int GOT;

static void *prober(void *arg) {
  (void)arg;
  lane_request r;
  lane_decision d;
  lane_request_init(&r, P);
  for (int k = 0; k < PROBE_ROUNDS; k++) {
    pthread_barrier_wait(&BAR);   /* main has opened a and ended its cooldown */
    if (lane_decide(RT, "one", &r, &d) == LANE_OK) atomic_fetch_add(&GOT, 1);
    pthread_barrier_wait(&BAR);   /* main counts */
  }
  return NULL;
}

int main(void) {
  pthread_t th[NTHREADS];
  work w[NTHREADS];
  lane_error err;

  P = compile(POLICY);
  ok(P != NULL, "stress policy compiles");
  if (!P) return done_testing();
  F_TEAM = lane_field(P, "team");
  F_USER = lane_field(P, "user");
  F_LAT = lane_field(P, "latency_budget");
  F_IN = lane_field(P, "input_tokens");
  F_OUT = lane_field(P, "max_output_tokens");
  F_TIER = lane_field(P, "tier");
  for (int i = 0; i < NTEAMS; i++) snprintf(TEAMS[i], sizeof TEAMS[i], "team-%d", i);
  for (int i = 0; i < NUSERS; i++) snprintf(USERS[i], sizeof USERS[i], "user-%d", i);

  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = clock_fn;
  o.window_ms = 600;          /* 100 ms slots: claimed concurrently */
  o.min_samples = 10;
  o.breaker_failures = 30;
  o.breaker_cooldown_ms = 50;
  o.budget_keys = 16;         /* 64 users overflow; 8 teams fit */
  atomic_store(&CLOCK, T0);
  RT = lane_runtime_new_with(P, &o, &err);
  ok(RT != NULL, "runtime");
  if (!RT) return done_testing();

  for (int i = 0; i < NTHREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].id = i;
    w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    pthread_create(&th[i], NULL, worker, &w[i]);
  }
  long decisions = 0, okc = 0, nomatch = 0, invalid = 0, snaps = 0;
  int64_t team[NTEAMS] = {0}, total = 0;
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    decisions += w[i].decisions;
    okc += w[i].ok;
    nomatch += w[i].nomatch;
    invalid += w[i].invalid;
    snaps += w[i].snapshots;
    for (int t = 0; t < NTEAMS; t++) team[t] += w[i].team_nanos[t];
    total += w[i].total_nanos;
  }
  uint64_t elapsed = atomic_load(&CLOCK) - T0;
  diag("%d threads x %d iterations: %ld decisions (%ld ok, %ld LANE_ENOMATCH), %llu ms of "
       "fake time, $%.9f charged", NTHREADS, ITERS, decisions, okc, nomatch,
       (unsigned long long)elapsed, (double)total / 1e9);
  is_int(decisions, NTHREADS * ITERS, "every iteration decided");
  is_int(invalid, 0, "every decision valid, every charge accepted");
  ok(okc > decisions / 2, "most decisions found a model (%ld)", okc);
  ok(snaps > 0, "snapshots taken while the others ran (%ld)", snaps);
  ok(elapsed < 11000, "all charges within one rolling window (%llu ms)", (unsigned long long)elapsed);

  int bf = lane_budget(P, "team_fixed"), br = lane_budget(P, "team_rolling");
  int exact_f = 0, exact_r = 0;
  for (int t = 0; t < NTEAMS; t++) {
    double f = -1, r = -1;
    lane_budget_spent(RT, bf, lane_budget_key_hash(P, bf, TEAMS[t], strlen(TEAMS[t])), &f);
    lane_budget_spent(RT, br, lane_budget_key_hash(P, br, TEAMS[t], strlen(TEAMS[t])), &r);
    exact_f += llround(f * 1e9) == team[t];
    exact_r += llround(r * 1e9) == team[t];
    if (llround(f * 1e9) != team[t])
      diag("%s fixed: %lld nanos, charged %lld", TEAMS[t], llround(f * 1e9), (long long)team[t]);
  }
  is_int(exact_f, NTEAMS, "fixed 1h budget: each of %d teams holds exactly what was charged", NTEAMS);
  is_int(exact_r, NTEAMS, "rolling 12s budget (1 s twelfths claimed concurrently): exact per team");
  int nkeys = 0;
  int64_t user_total = snapshot_total("per_user", &nkeys);
  is_int(user_total, total, "per-user budget (64 users, 16 slots + overflow): exact total %lld",
         (long long)total);
  is_int(nkeys, 17, "...16 own keys + the overflow account");
  int64_t team_total = snapshot_total("team_fixed", &nkeys);
  is_int(team_total, total, "team budget total exact");

  /* exactly one probe among concurrent decisions */
  pthread_barrier_init(&BAR, NULL, NTHREADS + 1);
  for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, prober, NULL);
  int a = 0, one = 0, closed = 0;
  for (int i = 0; i < lane_model_count(P); i++)
    if (!strcmp(lane_model_name(P, i), "a")) a = i;
  for (int k = 0; k < PROBE_ROUNDS; k++) {
    lane_live_stats st;
    atomic_fetch_add(&CLOCK, 1000);   /* a fresh window */
    for (int f = 0; f < 30; f++) lane_observe(RT, a, 10, LANE_CALL_SERVER_ERROR);
    lane_model_stats(RT, a, &st);
    if (st.state != LANE_BREAKER_OPEN) diag("round %d: a not open (%d)", k, st.state);
    atomic_store(&GOT, 0);
    atomic_fetch_add(&CLOCK, 50);     /* the cooldown is over */
    pthread_barrier_wait(&BAR);
    pthread_barrier_wait(&BAR);
    one += atomic_load(&GOT) == 1;
    lane_observe(RT, a, 10, LANE_CALL_OK);   /* the probe succeeds */
    lane_model_stats(RT, a, &st);
    closed += st.state == LANE_BREAKER_CLOSED;
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&BAR);
  is_int(one, PROBE_ROUNDS, "%d rounds of %d concurrent decisions after a cooldown: exactly one "
         "gets the probe each time", PROBE_ROUNDS, NTHREADS);
  is_int(closed, PROBE_ROUNDS, "...and its success closes the breaker");

  lane_runtime_free(RT);
  lane_program_free(P);
  return done_testing();
}

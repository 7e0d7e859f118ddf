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
#include <dirent.h>
#include <math.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
  lanec_result r;
  snprintf(buf, sizeof buf, "%s", src);
  if (lanec_compile("stress.lane", buf, NULL, &r) != LANEC_OK) lanec_print_diags(&r, stdout);
  lane_program *p = r.prog;
  r.prog = NULL;
  lanec_result_free(&r);
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
static int64_t snapshot_total_of(lane_runtime *rt, const char *name, int *nkeys) {
  size_t n = lane_runtime_snapshot(rt, NULL, 0);
  char *s = malloc(n + 1);
  lane_runtime_snapshot(rt, s, n + 1);
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

static int64_t snapshot_total(const char *name, int *nkeys) { return snapshot_total_of(RT, name, nkeys); }

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

/* ---- saving while others charge: every save that returns OK loads ---- */
#define SAVES 150
static atomic_int STOP;
static char SAVE_PATH[1024];

typedef struct saver {
  int  saved, save_failed, load_failed;   /* saves OK, saves refused, OK saves that did not load */
  char why[256];                          /* the first failed save */
  char why_load[256];                     /* the first OK save that did not load */
} saver;

static lane_runtime *RS;   /* the runtime saved while charged */

/* Charges keys that keep arriving (a new team every 16 charges), so that
 * every save meets keys that were not there when it began. */
static void *charger(void *arg) {
  int id = (int)(uintptr_t)arg;
  uint64_t seed = (uint64_t)id * 0x9e3779b97f4a7c15ull + 1;
  char team[32];
  for (unsigned n = 0; !atomic_load(&STOP); n++) {
    uint64_t x = rnd(&seed);
    lane_request r;
    int len = snprintf(team, sizeof team, "s%d-%u", id, n / 16);
    lane_request_init(&r, P);
    lane_set_str(&r, F_TEAM, team, (size_t)len);
    lane_set_str(&r, F_USER, USERS[(x >> 8) % NUSERS], strlen(USERS[(x >> 8) % NUSERS]));
    lane_charge(RS, &r, 1e-6 * (double)(1 + (x >> 20) % 1000));
    if ((x >> 40) % 64 == 0) atomic_fetch_add(&CLOCK, 1);
  }
  return NULL;
}

static void *saver_fn(void *arg) {
  saver *sv = arg;
  lane_error err;
  for (int i = 0; i < SAVES; i++) {
    if (lane_runtime_save(RS, SAVE_PATH, &err) != LANE_OK) {
      if (!sv->save_failed++) snprintf(sv->why, sizeof sv->why, "save: %s", err.message);
      continue;
    }
    sv->saved++;
    lane_runtime *fresh = lane_runtime_new(P, &err);
    if (!fresh || lane_runtime_load(fresh, SAVE_PATH, &err) != LANE_OK) {
      if (!sv->load_failed++) snprintf(sv->why_load, sizeof sv->why_load, "%s", err.message);
    }
    lane_runtime_free(fresh);
  }
  return NULL;
}

static void test_save_race(void) {
  pthread_t ch[2], sv[2];
  saver s[2];
  lane_error err;
  const char *b = getenv("BUILD");
  char dir[900];
  snprintf(dir, sizeof dir, "%s/tests", b && *b ? b : "build");
  mkdir(dir, 0777);
  snprintf(SAVE_PATH, sizeof SAVE_PATH, "%s/stress.lanert", dir);
  remove(SAVE_PATH);
  RS = lane_runtime_new_with(P, &(lane_runtime_options){.clock = clock_fn}, &err);
  atomic_store(&STOP, 0);
  memset(s, 0, sizeof s);
  for (int i = 0; i < 2; i++) pthread_create(&ch[i], NULL, charger, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < 2; i++) pthread_create(&sv[i], NULL, saver_fn, &s[i]);
  for (int i = 0; i < 2; i++) pthread_join(sv[i], NULL);
  atomic_store(&STOP, 1);
  for (int i = 0; i < 2; i++) pthread_join(ch[i], NULL);
  int saved = s[0].saved + s[1].saved, sfail = s[0].save_failed + s[1].save_failed,
      lfail = s[0].load_failed + s[1].load_failed;
  is_int(saved, 2 * SAVES, "two savers on one path while two threads charge: %d of %d saves OK "
         "(regression of: 10-16 failed, sharing path.tmp)%s%s", saved, 2 * SAVES,
         s[0].why[0] ? "; " : "", s[0].why[0] ? s[0].why : s[1].why);
  is_int(lfail, 0, "...and every one of them loads (regression of: 2 in 300 did not, \"budget "
         "'roll' is not where the file has it\": keys counted and written in two passes)%s%s",
         lfail ? "; " : "", s[0].why_load[0] ? s[0].why_load : s[1].why_load);
  (void)sfail;
  lane_runtime *fresh = lane_runtime_new(P, &err);
  is_int(lane_runtime_load(fresh, SAVE_PATH, &err), LANE_OK, "the file left at the path loads (%s)",
         err.message);
  lane_runtime_free(fresh);
  int tmps = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) tmps += strstr(e->d_name, "stress.lanert.tmp.") != NULL;
  if (d) closedir(d);
  is_int(tmps, 0, "...and no temporary file is left beside it");
  remove(SAVE_PATH);
  lane_runtime_free(RS);
}

/* ---- keys reclaimed while others charge: nothing lost ---- */
#define PHASES    30
#define PHASE_KEYS 120
#define PER_PHASE 1500
static lane_program *PC;
static lane_runtime *RC;
static int FC_TENANT;
static pthread_barrier_t PBAR;
static int64_t CHARGED[NTHREADS][PHASE_KEYS];

static void *churner(void *arg) {
  int id = (int)(uintptr_t)arg;
  uint64_t seed = 0x51afd6ed5ull * (uint64_t)(id + 3);
  char key[32];
  for (int ph = 0; ph < PHASES; ph++) {
    pthread_barrier_wait(&PBAR);   /* main set the clock to this phase */
    memset(CHARGED[id], 0, sizeof CHARGED[id]);
    for (int i = 0; i < PER_PHASE; i++) {
      uint64_t x = rnd(&seed);
      int k = (int)(x % PHASE_KEYS);
      int64_t nanos = 1 + (int64_t)((x >> 16) % 100000);
      lane_request r;
      int n = snprintf(key, sizeof key, "p%d-k%d", ph, k);
      lane_request_init(&r, PC);
      lane_set_str(&r, FC_TENANT, key, (size_t)n);
      lane_charge(RC, &r, (double)nanos / 1e9);
      CHARGED[id][k] += nanos;
    }
    pthread_barrier_wait(&PBAR);   /* main checks */
  }
  return NULL;
}

static void test_reclaim_churn(void) {
  pthread_t th[NTHREADS];
  lane_error err;
  PC = compile("model a { input $1/Mtok output $1/Mtok }\n"
               "budget churn { key req.tenant  limit $1000  window 1s }\n"
               "budget churn_r { key req.tenant  limit $1000  rolling 12s }\n"
               "route r { otherwise -> a }\n");
  if (!PC) { ok(0, "churn policy compiles"); return; }
  FC_TENANT = lane_field(PC, "tenant");
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = clock_fn;
  o.budget_keys = 64;
  RC = lane_runtime_new_with(PC, &o, &err);
  lane_runtime_set_budget_on_full(RC, -1, LANE_ON_FULL_OPEN);   /* no slot reads 0: own spend shows */
  pthread_barrier_init(&PBAR, NULL, NTHREADS + 1);
  for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, churner, (void *)(uintptr_t)i);
  int exact = 0, per_key = 0, rolling_exact = 0, splits = 0;
  int64_t phase_total[PHASES];
  int bc = lane_budget(PC, "churn");
  for (int ph = 0; ph < PHASES; ph++) {
    atomic_store(&CLOCK, T0 + 1000ull * (uint64_t)ph + 500);
    pthread_barrier_wait(&PBAR);
    pthread_barrier_wait(&PBAR);
    int64_t total = 0, own = 0;
    int keys_ok = 1, nk, split = 0;
    for (int k = 0; k < PHASE_KEYS; k++) {
      char key[32];
      int64_t c = 0;
      double d = 0;
      for (int t = 0; t < NTHREADS; t++) c += CHARGED[t][k];
      int n = snprintf(key, sizeof key, "p%d-k%d", ph, k);
      lane_budget_spent(RC, bc, lane_budget_key_hash(PC, bc, key, (size_t)n), &d);
      int64_t got = llround(d * 1e9);
      /* A key reads its own charges, or less: a charge that could not
       * settle in the key's slot within its tries (a take-over holding it,
       * under heavy contention) went to the overflow account, counted in
       * the total below, never lost and never read twice. */
      if (got > c) keys_ok = 0;
      if (got != 0 && got != c) split++;
      own += got;
      total += c;
    }
    phase_total[ph] = total;
    int64_t fixed = snapshot_total_of(RC, "churn", &nk);
    exact += fixed == total;
    per_key += keys_ok && own <= total;
    splits += split;
    int64_t window = 0;
    for (int q = ph >= 11 ? ph - 11 : 0; q <= ph; q++) window += phase_total[q];
    rolling_exact += snapshot_total_of(RC, "churn_r", &nk) == window;
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&PBAR);
  lane_budget_stats st, sr;
  lane_runtime_budget_stats(RC, bc, &st);
  lane_runtime_budget_stats(RC, lane_budget(PC, "churn_r"), &sr);
  diag("churn: %llu slots reclaimed (fixed), %llu (rolling); %llu overflow charges; %llu unmerged",
       (unsigned long long)st.reclaimed, (unsigned long long)sr.reclaimed,
       (unsigned long long)st.overflow_charges, (unsigned long long)(st.unmerged + sr.unmerged));
  is_int(exact, PHASES, "%d phases of %d new keys on a 64-key table, %d threads: each 1 s window "
         "holds exactly what was charged (own accounts + overflow)", PHASES, PHASE_KEYS, NTHREADS);
  is_int(per_key, PHASES, "...no key reads more than its own charges (%d read part of them: "
         "the rest went to the overflow account under contention)", splits);
  is_int(rolling_exact, PHASES, "...and the rolling 12 s window exactly its twelve phases");
  ok(st.reclaimed >= 64 * (PHASES - 1) && sr.reclaimed > 0,
     "slots of expired keys were reclaimed concurrently (%llu, %llu)",
     (unsigned long long)st.reclaimed, (unsigned long long)sr.reclaimed);
  is_int(st.unmerged + sr.unmerged, 0, "no duplicate slot left unmerged");
  lane_runtime_free(RC);
  lane_program_free(PC);
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

  test_save_race();
  test_reclaim_churn();

  lane_runtime_free(RT);
  lane_program_free(P);
  return done_testing();
}

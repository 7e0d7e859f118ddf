/*
 * t_swap.c -- lane_runtime_swap: what a swap keeps and drops, that a
 * failed swap changes nothing, and swaps under load: threads deciding,
 * observing and charging without pause while 100 swaps happen (some of
 * them refused), with no decision failing or seeing a program that is not
 * the one it pinned, and spend exact to the nano-dollar at the end. Runs
 * under ASan and TSan with the rest of the suite (make check-asan,
 * check-tsan).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "bc.h"
#include "lanec.h"
#include "tap.h"
#include "unit/compile.h"

static char DIAG[4096];

static lane_program *compile_prog(const char *src) { return test_compile(src, DIAG, sizeof DIAG); }

static lane_program *must(const char *src) {
  lane_program *p = compile_prog(src);
  if (!p) bail("policy does not compile:\n%s\n%s", src, DIAG);
  return p;
}

static uint64_t NOW = 1767225600000ull;   /* 2026-01-01 */
static uint64_t fake_clock(void *ctx) { (void)ctx; return NOW; }

static lane_runtime_options opts(void) {
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fake_clock;
  return o;
}

static int model_index(const lane_program *p, const char *name) {
  for (int i = 0; i < lane_model_count(p); i++)
    if (!strcmp(lane_model_name(p, i), name)) return i;
  return -1;
}

static double spent(lane_runtime *rt, const char *budget, const char *key) {
  const lane_program *p = lane_runtime_program(rt);
  int b = lane_budget(p, budget);
  double d = -1;
  if (b < 0 || lane_budget_spent(rt, b, lane_budget_key_hash(p, b, key, strlen(key)), &d) != LANE_OK)
    return -1;
  return d;
}

static void charge_key(lane_runtime *rt, const char *key, double dollars) {
  const lane_program *p = lane_runtime_program(rt);
  lane_request r;
  lane_request_init(&r, p);
  lane_set_str(&r, lane_field(p, "tenant"), key, strlen(key));
  lane_charge(rt, &r, dollars);
}

/* ---------------------------------------------------------------------
 * What a swap keeps
 * ------------------------------------------------------------------- */
#define MODELS                                                                     \
  "model a { provider \"pa\" name \"a-1\" input $1/Mtok output $1/Mtok p50 100ms }\n" \
  "model b { provider \"pb\" name \"b-1\" input $2/Mtok output $2/Mtok p50 100ms }\n"
#define REQ ""

static void test_keeps(void) {
  lane_error err;
  lane_runtime_options o = opts();
  lane_program *p1 = must(MODELS REQ
                          "budget daily { key req.tenant limit $10 window 1d }\n"
                          "budget hourly { key req.tenant limit $1 rolling 1h }\n"
                          "budget by_user { key req.tenant limit $1 window 1d }\n"
                          "budget gone { key req.tenant limit $1 window 1d }\n"
                          "route r { otherwise -> a, then b }\n");
  lane_runtime *rt = lane_runtime_new_with(p1, &o, &err);
  if (!rt) bail("runtime: %s", err.message);
  is_int((int)lane_runtime_generation(rt), 1, "a new runtime serves generation 1");
  ok(lane_runtime_program(rt) == p1, "...its program");
  charge_key(rt, "acme", 2.5);
  for (int i = 0; i < 6; i++) lane_observe(rt, model_index(p1, "b"), 50, LANE_CALL_SERVER_ERROR);
  lane_live_stats st;
  lane_model_stats(rt, model_index(p1, "b"), &st);
  is_int(st.state, LANE_BREAKER_OPEN, "b's breaker is open before the swap");

  /* The edit: daily's limit changes (kept), hourly's window changes
   * (dropped), by_user's key changes (dropped), gone goes, fresh comes;
   * model a is renamed a2 (same provider and id: kept), b stays, c comes. */
  lane_program *p2 = must("model a2 { provider \"pa\" name \"a-1\" input $1/Mtok output $1/Mtok }\n"
                          "model b { provider \"pb\" name \"b-1\" input $2/Mtok output $2/Mtok }\n"
                          "model c { provider \"pc\" name \"c-1\" input $3/Mtok output $3/Mtok }\n"
                          "request { user2: string }\n"
                          "budget daily { key req.tenant limit $20 window 1d }\n"
                          "budget hourly { key req.tenant limit $1 rolling 2h }\n"
                          "budget by_user { key req.user2 limit $1 window 1d }\n"
                          "budget fresh { key req.tenant limit $1 window 1d }\n"
                          "route r { otherwise -> a2, then b, then c }\n");
  lane_state_report rep;
  memset(&rep, 0, sizeof rep);
  int rc = lane_runtime_swap(rt, p2, &rep, &err);
  is_int(rc, LANE_OK, "the swap succeeds");
  ok(lane_runtime_program(rt) == p2, "...and rt serves the new program");
  is_int((int)lane_runtime_generation(rt), 2, "...as generation 2");
  is_int((int)rep.budgets_kept, 1, "one budget kept (daily: only its limit changed)");
  is_int((int)rep.budgets_dropped, 3, "three dropped: hourly (window), by_user (key), gone");
  is_int((int)rep.budgets_new, 1, "one new (fresh)");
  is_int((int)rep.keys_kept, 1, "daily's one key kept");
  is_int((int)rep.models_kept, 2, "two models kept: b by name, a2 by provider and id");
  is_int((int)rep.models_dropped, 0, "none dropped");
  ok(strstr(rep.notes, "'hourly': its window was 3600000 ms and is 7200000 ms now") != NULL,
     "the note says hourly's window changed");
  ok(strstr(rep.notes, "'by_user': its key was req.tenant (string) and is req.user2 (string)") != NULL,
     "the note says by_user's key changed");
  ok(strstr(rep.notes, "budget 'gone' is not in the new program") != NULL, "the note names 'gone'");
  ok(strstr(rep.notes, "model 'a2' takes the live state of 'a' (pa, a-1)") != NULL,
     "the note says a2 took a's state");
  is_dbl(spent(rt, "daily", "acme"), 2.5, 0, "daily's spend is there, to the cent");
  is_dbl(spent(rt, "hourly", "acme"), 0, 0, "hourly starts fresh");
  is_dbl(spent(rt, "fresh", "acme"), 0, 0, "fresh starts fresh");
  lane_model_stats(rt, model_index(p2, "b"), &st);
  is_int(st.state, LANE_BREAKER_OPEN, "b's breaker is still open");
  lane_model_stats(rt, model_index(p2, "c"), &st);
  is_int(st.state, LANE_BREAKER_CLOSED, "c starts closed");

  /* Failed swaps change nothing. */
  lane_runtime *v = lane_runtime_acquire(rt);
  ok(v && v != rt && lane_runtime_program(v) == p2, "acquire pins a view of the active program");
  rc = lane_runtime_swap(v, p1, &rep, &err);
  ok(rc == LANE_EARG && strstr(err.message, "not a view"), "a swap on a view is refused (%s)",
     err.message);
  rc = lane_runtime_swap(rt, NULL, &rep, &err);
  ok(rc == LANE_EARG, "a swap to no program is refused (%s)", err.message);
  rc = lane_runtime_swap(rt, p2, &rep, &err);
  ok(rc == LANE_EARG && strstr(err.message, "active"), "a swap to the active program is refused (%s)",
     err.message);
  ok(lane_runtime_program(rt) == p2 && lane_runtime_generation(rt) == 2 &&
         rep.budgets_kept == 0 && rep.nnotes == 0,
     "...and each changed nothing, the report empty");

  /* A view pinned before a swap keeps deciding on its program, and what
   * it charges counts for the program after it. */
  lane_program *p3 = must(MODELS REQ "budget daily { key req.tenant limit $20 window 1d }\n"
                          "route r { otherwise -> b }\n");
  ok(lane_runtime_swap(rt, p3, NULL, &err) == LANE_OK, "a third program");
  lane_request r;
  lane_request_init(&r, lane_runtime_program(v));
  lane_decision d;
  ok(lane_decide(v, "r", &r, &d) == LANE_OK &&
         !strcmp(lane_model_name(lane_runtime_program(v), d.candidates[0]), "a2"),
     "the pinned view still decides with its program (a2)");
  ok(lane_decide(rt, "r", &r, &d) == LANE_EARG,
     "the runtime refuses a request of a program it no longer serves");
  charge_key(v, "acme", 1.25);
  is_dbl(spent(rt, "daily", "acme"), 3.75, 0, "a charge through the old view counts for the new");
  lane_runtime_release(v);
  lane_runtime_free(rt);
  lane_program_free(p1);   /* the first program stays the caller's; p2, p3 were the runtime's */
}

/* ---------------------------------------------------------------------
 * Under load
 * ------------------------------------------------------------------- */
enum { THREADS = 4, SWAPS = 100 };

/* Version k of the policy routes tier "gold" to model g<k % 3>, declared
 * in an order that moves its index: a decision read against another
 * version's program would name another model. */
static char *version(int k) {
  static const char *order[3][3] = {{"g0", "g1", "g2"}, {"g2", "g0", "g1"}, {"g1", "g2", "g0"}};
  char *s = malloc(4096);
  int n = 0;
  for (int i = 0; i < 3; i++) {
    const char *m = order[k % 3][i];
    n += snprintf(s + n, 4096 - (size_t)n,
                  "model %s { provider \"p\" name \"%s\" input $1/Mtok output $1/Mtok }\n", m, m);
  }
  snprintf(s + n, 4096 - (size_t)n,
           "budget daily { key req.tenant limit $%d window 1d }\n"
           "route r {\n  when req.tier == \"gold\" -> g%d\n  otherwise -> g0\n}\n"
           "route v%d { otherwise -> g0 }\n",
           100 + k, k % 3, k);
  return s;
}

typedef struct worker {
  lane_runtime *rt;
  atomic_int   *stop;
  atomic_int   *started;   /* workers that made their first decision */
  int           id;
  long          decisions, failures, wrong, charges;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  char key[32];
  snprintf(key, sizeof key, "tenant-%d", w->id);
  while (!atomic_load(w->stop)) {
    lane_runtime *v = lane_runtime_acquire(w->rt);
    const lane_program *p = lane_runtime_program(v);
    lane_request r;
    lane_request_init(&r, p);
    lane_set_str(&r, lane_field(p, "tier"), "gold", 4);
    lane_set_str(&r, lane_field(p, "tenant"), key, strlen(key));
    lane_decision d;
    if (lane_decide(v, "r", &r, &d) != LANE_OK) {
      w->failures++;
    } else {
      /* The rule's model must be the one this program's version names
       * (its second route is "v<version>"). */
      const char *name = lane_model_name(p, d.candidates[0]);
      const char *vr = lane_route_name(p, 1);
      char want[16];
      snprintf(want, sizeof want, "g%d", vr ? atoi(vr + 1) % 3 : -1);
      if (!name || strcmp(name, want)) w->wrong++;
      lane_observe(v, d.candidates[0], 10 + (double)(w->decisions % 7), LANE_CALL_OK);
      if (lane_charge(v, &r, 0.000001) == LANE_OK) w->charges++;   /* a micro-dollar */
    }
    if (w->decisions++ == 0) atomic_fetch_add(w->started, 1);
    lane_runtime_release(v);
  }
  return NULL;
}

static void test_under_load(void) {
  lane_error err;
  lane_runtime_options o = opts();
  char *src = version(0);
  lane_program *first = must(src);
  free(src);
  lane_runtime *rt = lane_runtime_new_with(first, &o, &err);
  if (!rt) bail("runtime: %s", err.message);
  atomic_int stop = 0, started = 0;
  worker w[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){rt, &stop, &started, i, 0, 0, 0, 0};
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  /* The swaps start once every worker is deciding: on a loaded machine
   * the threads could otherwise first run after the last swap. */
  while (atomic_load(&started) < THREADS) sched_yield();
  int swapped = 0, refused = 0, refused_right = 0;
  for (int k = 1; k <= SWAPS; k++) {
    if (k % 10 == 3) {   /* a corrupt program never gets to a swap */
      src = version(k);
      lanec_result r;
      lanec_compile("t.lane", src, NULL, &r);
      free(src);
      r.bytes[r.nbytes / 2] ^= 0x5a;
      lane_program *bad = lane_load(r.bytes, r.nbytes, &err);
      refused++;
      refused_right += !bad && err.code == LANE_EFORMAT;
      if (bad) lane_program_free(bad);
      lanec_result_free(&r);
      continue;
    }
    if (k % 10 == 7) {   /* a swap the runtime refuses: the active program again */
      refused++;
      refused_right += lane_runtime_swap(rt, (lane_program *)lane_runtime_program(rt), NULL,
                                         &err) == LANE_EARG;
      continue;
    }
    src = version(k);
    lane_program *p = must(src);
    free(src);
    lane_state_report rep;
    memset(&rep, 0, sizeof rep);
    if (lane_runtime_swap(rt, p, &rep, &err) == LANE_OK && rep.budgets_kept == 1) swapped++;
    else lane_program_free(p);
  }
  atomic_store(&stop, 1);
  long decisions = 0, failures = 0, wrong = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    decisions += w[i].decisions;
    failures += w[i].failures;
    wrong += w[i].wrong;
  }
  is_int(swapped, 80, "80 swaps made, each keeping the budget");
  is_int(refused_right, refused, "20 refused with a reason (10 corrupt programs, 10 swaps to "
                                 "the active one)");
  is_int((int)lane_runtime_generation(rt), 81, "the runtime is at generation 81");
  ok(decisions > 0, "%ld decisions made meanwhile", decisions);
  is_int((int)failures, 0, "no decision failed");
  is_int((int)wrong, 0, "no decision read another program's models");
  int exact = 1;
  for (int i = 0; i < THREADS; i++) {
    char key[32];
    snprintf(key, sizeof key, "tenant-%d", i);
    const lane_program *p = lane_runtime_program(rt);
    int b = lane_budget(p, "daily");
    double d = -1;
    lane_budget_spent(rt, b, lane_budget_key_hash(p, b, key, strlen(key)), &d);
    /* charges are whole micro-dollars, kept in nano-dollars: exact */
    long got = (long)(d * 1e6 + 0.5);
    if (got != w[i].charges) {
      diag("%s: %ld micro-dollars charged, %ld read", key, w[i].charges, got);
      exact = 0;
    }
  }
  ok(exact, "every thread's spend is exact across 80 swaps");
  lane_runtime_free(rt);
  lane_program_free(first);
}

/* ---------------------------------------------------------------------
 * A budget without a key field
 * ------------------------------------------------------------------- */
static uint32_t rd32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The verifier allows a budget whose key field is BC_NONE (no key); the
 * compiler never writes one, so it is made here by hand. Saving and
 * matching such a budget's state read fields[BC_NONE] before (a crash). */
static void test_keyless(void) {
  lane_error err;
  lanec_result r;
  lanec_compile("t.lane", MODELS "budget daily { key req.tenant limit $1 window 1d }\n"
                "route r { otherwise -> a }\n", NULL, &r);
  if (!r.bytes) bail("does not compile");
  unsigned char *b = r.bytes;
  size_t n = r.nbytes;
  int patched = 0;
  for (uint32_t i = 0, count = rd32(b + 12); i < count; i++) {
    const unsigned char *e = b + 32 + 12 * i;
    if (rd32(e) != 15) continue;   /* BUDGETS: {name, key_field, ...} */
    memset(b + rd32(e + 4) + 4, 0xff, 4);
    patched = 1;
  }
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(h >> (8 * i));
  lane_program *p = lane_load(b, n, &err);
  ok(patched && p, "a program with a keyless budget loads (%s)", p ? "ok" : err.message);
  lanec_result_free(&r);
  if (!p) return;
  lane_runtime_options o = opts();
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err), *rt2 = lane_runtime_new_with(p, &o, &err);
  char path[] = "/tmp/t_swap_keyless_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  ok(lane_runtime_save(rt, path, &err) == LANE_OK, "its state saves (%s)", err.message);
  lane_state_report rep;
  memset(&rep, 0, sizeof rep);
  ok(lane_runtime_load_ex(rt2, path, &rep, &err) == LANE_OK && rep.budgets_kept == 1,
     "...and loads back, the budget kept");
  lane_program *p2 = must(MODELS "budget daily { key req.tenant limit $1 window 1d }\n"
                          "route r { otherwise -> a }\n");
  ok(lane_runtime_swap(rt, p2, &rep, &err) == LANE_OK && rep.budgets_dropped == 1 &&
         strstr(rep.notes, "its key was none and is req.tenant (string) now"),
     "a swap to a keyed budget of that name drops it, saying why");
  unlink(path);
  lane_runtime_free(rt);
  lane_runtime_free(rt2);
  lane_program_free(p);
}

int main(void) {
  test_keyless();
  test_keeps();
  test_under_load();
  done_testing();
}

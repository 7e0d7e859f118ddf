/*
 * t_redis.c -- liblane-redis against a real redis-server, started here on
 * 127.0.0.1 and a free port (skipped with a message when redis-server is
 * not installed; CI installs it, and under LANE_CI=1 a skip fails):
 *
 *   - three processes charge one tenant against one budget: the fleet's
 *     total in Redis is the sum of their charges to the nano-dollar, and
 *     the fleet overspends by at most one request per process (leases);
 *   - Redis killed mid-run and started again empty: charging goes on,
 *     no decision fails, and after reconcile the total is exact again;
 *   - breaker spread: one process sees a provider fail, another skips it
 *     after a sync round, while its own view shows no failures of its own;
 *     then by the threads alone, the delay reported;
 *   - a process that never charged a key reads the fleet's spend on it
 *     (the budget's feed);
 *   - bad URLs are refused with a reason; Redis away at attach: local-only
 *     with a warning.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lane_redis.h"
#include "lanec.h"
#include "tap.h"
#include "unit/compile.h"

static char DIAG[4096];
static int PORT;
static pid_t REDIS;
static char URL[64];

static lane_program *must(const char *src) {
  lane_program *p = test_compile(src, DIAG, sizeof DIAG);
  if (!p) bail("policy does not compile:\n%s\n%s", src, DIAG);
  return p;
}

static int model_ix(const lane_program *p, const char *name) {
  for (int i = 0; i < lane_model_count(p); i++)
    if (!strcmp(lane_model_name(p, i), name)) return i;
  bail("no model %s", name);
  return -1;
}

static _Atomic uint64_t NOW = 1767268800000ull;   /* 2026-01-01 12:00 UTC */
static uint64_t fixed_clock(void *ctx) { (void)ctx; return NOW; }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &n))
    bail("no free port: %s", strerror(errno));
  close(s);
  return ntohs(a.sin_port);
}

static redisContext *redis_cli(void) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", PORT, tv);
  if (c && c->err) {
    redisFree(c);
    return NULL;
  }
  return c;
}

static int start_redis(void) {
  char port[16];
  snprintf(port, sizeof port, "%d", PORT);
  REDIS = fork();
  if (REDIS == 0) {
    int fd = open("/dev/null", 1);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {
    redisContext *c = redis_cli();
    if (c) {
      redisReply *r = redisCommand(c, "PING");
      int up = r && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
      redisFree(c);
      if (up) return 1;
    }
    int st;
    if (waitpid(REDIS, &st, WNOHANG) == REDIS) return 0;
    sleep_ms(10);
  }
  return 0;
}

static void stop_redis(void) {
  if (REDIS > 0) {
    kill(REDIS, SIGKILL);
    waitpid(REDIS, NULL, 0);
    REDIS = 0;
  }
}

static long long redis_int(const char *fmt, const char *arg) {
  redisContext *c = redis_cli();
  if (!c) return -1;
  redisReply *r = redisCommand(c, fmt, arg);
  long long v = !r ? -1 : r->type == REDIS_REPLY_INTEGER ? r->integer
              : r->type == REDIS_REPLY_STRING ? atoll(r->str) : r->type == REDIS_REPLY_NIL ? 0 : -1;
  if (r) freeReplyObject(r);
  redisFree(c);
  return v;
}

#define MODELS                                                                              \
  "model paid { provider \"pa\" name \"paid-1\" input $1/Mtok output $1/Mtok p50 100ms }\n" \
  "model free { provider \"pb\" name \"free-1\" input $0/Mtok output $0/Mtok p50 100ms }\n"

static const char *POLICY = MODELS
  "budget daily { key req.tenant limit $1 window 1d }\n"
  "route r {\n"
  "  require healthy\n"
  "  when budget.daily.used >= 100% -> free\n"
  "  otherwise -> paid, then free\n"
  "}\n";

/* The outage test's: a limit the run never reaches, so every decision is
 * a paid one and the totals can be checked to the nano-dollar. */
static const char *POLICY_BIG = MODELS
  "budget daily { key req.tenant limit $100 window 1d }\n"
  "route r {\n"
  "  require healthy\n"
  "  when budget.daily.used >= 100% -> free\n"
  "  otherwise -> paid, then free\n"
  "}\n";

static lane_runtime *runtime(lane_program *p) {
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fixed_clock;
  lane_error err;
  lane_runtime *rt = lane_runtime_new_with(p, &o, &err);
  if (!rt) bail("runtime: %s", err.message);
  return rt;
}

static char WARNED[4][512];
static int NWARN;
static void keep_warning(void *ctx, const char *line) {
  (void)ctx;
  if (NWARN < 4) snprintf(WARNED[NWARN++], sizeof WARNED[0], "%s", line);
}

/* Rounds every 20 ms; tests that run rounds themselves (lane_redis_sync)
 * to check a state between two use SLOW, so the thread's own rounds do
 * not race their checks. */
static unsigned SYNC_MS = 20;
enum { SLOW = 600000 };
static lane_redis *attach(lane_runtime *rt, const char *inst, const char *prefix) {
  lane_redis_options o;
  memset(&o, 0, sizeof o);
  o.url = URL;
  o.prefix = prefix;
  o.instance = inst;
  o.sync_ms = SYNC_MS;
  o.warn = keep_warning;
  lane_error err;
  lane_redis *rs = lane_redis_attach(rt, &o, &err);
  if (!rs) bail("attach: %s", err.message);
  return rs;
}

/* ---------------------------------------------------------------------
 * Bad options and Redis away
 * ------------------------------------------------------------------- */
static void test_options(void) {
  lane_program *p = must(POLICY);
  lane_runtime *rt = runtime(p);
  lane_redis_options o;
  lane_error err;
  static const struct { const char *url, *want; } bad[] = {
    {"http://127.0.0.1:6379", "must start with redis://"},
    {"redis://", "no host"},
    {"redis://h:0", "port must be 1..65535"},
    {"redis://h:99999", "port must be 1..65535"},
    {"redis://h:6379/x", "the database is a number"},
    {"redis://user@h", "credentials are [user]:password@"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&o, 0, sizeof o);
    o.url = bad[i].url;
    lane_redis *rs = lane_redis_attach(rt, &o, &err);
    ok(!rs && err.code == LANE_EARG && strstr(err.message, bad[i].want), "'%s' is refused: %s",
       bad[i].url, err.message);
  }
  memset(&o, 0, sizeof o);
  o.url = "redis://127.0.0.1:6379";
  o.prefix = "a{b}";
  ok(!lane_redis_attach(rt, &o, &err) && strstr(err.message, "without { or }"),
     "a prefix with a hash tag brace is refused: %s", err.message);

  /* Redis away: attach works, the runtime runs local-only, with a warning. */
  char away[64];
  snprintf(away, sizeof away, "redis://127.0.0.1:%d", free_port());
  memset(&o, 0, sizeof o);
  o.url = away;
  o.sync_ms = 10;
  o.warn = keep_warning;
  NWARN = 0;
  lane_redis *rs = lane_redis_attach(rt, &o, &err);
  ok(rs != NULL && NWARN == 1 && strstr(WARNED[0], "not answering") &&
         strstr(WARNED[0], "local-only"),
     "Redis away at attach: attached, with a warning (%s)", NWARN ? WARNED[0] : "none");
  lane_request r;
  lane_request_init(&r, p);
  lane_set_str(&r, lane_field(p, "tenant"), "t", 1);
  lane_decision d;
  ok(lane_decide(rt, "r", &r, &d) == LANE_OK && lane_charge(rt, &r, 0.25) == LANE_OK,
     "decisions and charges go on");
  lane_redis_stats st;
  lane_redis_get_stats(rs, &st);
  ok(!st.connected && st.pending_nanos == 250000000u && st.journal_entries == 1 &&
         strstr(st.last_error, "connect"),
     "stats: not connected, $0.25 journaled in 1 entry (%s)", st.last_error);
  ok(lane_redis_sync(rs) == LANE_EARG, "a sync round says Redis is away");
  lane_redis *twice = lane_redis_attach(rt, &o, &err);
  ok(!twice && err.code == LANE_EARG && strstr(err.message, "no store attached yet"),
     "a second adapter on the same runtime is refused: %s", err.message);
  double spent;
  lane_budget_spent(rt, 0, lane_budget_key_of(p, 0, &r), &spent);
  is_dbl(spent, 0.25, 1e-12, "the key reads its local spend, not held");
  is_int(lane_redis_detach(rs), 250000000, "detach reports the nano-dollars never acknowledged");
  lane_runtime_free(rt);
  lane_program_free(p);
}

/* ---------------------------------------------------------------------
 * Three processes, one tenant, one budget
 * ------------------------------------------------------------------- */
typedef struct child_report {
  int64_t charged;          /* nano-dollars this process charged */
  int64_t left;             /* what detach said was never acknowledged */
  uint32_t decisions, failed, paid;
  uint64_t worst_ns;        /* slowest lane_decide */
  uint64_t disconnects, reconnects;
  int64_t  view;            /* the tenant's spend as this process reads it at
                               the end, after the others stopped and two rounds */
} child_report;

/* A process of the fleet: decides and charges `cost` per paid decision
 * for `ms` milliseconds, then reports through fd. */
static void fleet_child(int fd, const char *inst, const char *prefix, double cost, unsigned ms,
                        unsigned gap_us, int warm) {
  lane_program *p = must(warm ? POLICY_BIG : POLICY);
  lane_runtime *rt = runtime(p);
  lane_redis *rs = attach(rt, inst, prefix);
  child_report rep = {0};
  lane_request r;
  lane_request_init(&r, p);
  lane_set_str(&r, lane_field(p, "tenant"), "acme", 4);
  int paid = model_ix(p, "paid");
  if (warm) {   /* a first charge and a round: the key has its first slice */
    lane_charge(rt, &r, cost);
    rep.charged += (int64_t)(cost * 1e9 + 0.5);
    lane_redis_sync(rs);
  }
  uint64_t end = mono_ns() + (uint64_t)ms * 1000000u;
  while (mono_ns() < end) {
    lane_decision d;
    uint64_t t0 = mono_ns();
    int rc = lane_decide(rt, "r", &r, &d);
    uint64_t took = mono_ns() - t0;
    if (took > rep.worst_ns) rep.worst_ns = took;
    rep.decisions++;
    if (rc != LANE_OK) {
      rep.failed++;
      continue;
    }
    if (d.candidates[0] == paid) {
      rep.paid++;
      lane_charge(rt, &r, cost);
      rep.charged += (int64_t)(cost * 1e9 + 0.5);
    }
    struct timespec ts = {0, (long)gap_us * 1000L};
    nanosleep(&ts, NULL);
  }
  sleep_ms(300);   /* the others stop too */
  lane_redis_sync(rs);
  lane_redis_sync(rs);
  double v = 0;
  lane_budget_spent(rt, 0, lane_budget_key_of(p, 0, &r), &v);
  rep.view = (int64_t)(v * 1e9 + 0.5);
  lane_redis_stats st;
  lane_redis_get_stats(rs, &st);
  rep.disconnects = st.disconnects;
  rep.reconnects = st.reconnects;
  rep.left = lane_redis_detach(rs);
  if (write(fd, &rep, sizeof rep) != (ssize_t)sizeof rep) _exit(3);
  lane_runtime_free(rt);
  lane_program_free(p);
  _exit(0);
}

static int run_fleet(int n, const char *prefix, double cost, unsigned ms, unsigned gap_us,
                     child_report *out, void (*midway)(void)) {
  int warm = midway != NULL;
  int fds[8][2];
  pid_t pids[8];
  for (int i = 0; i < n; i++) {
    if (pipe(fds[i])) bail("pipe");
    fflush(stdout);
    pids[i] = fork();
    if (pids[i] == 0) {
      char inst[32];
      snprintf(inst, sizeof inst, "proc%d", i);
      close(fds[i][0]);
      fleet_child(fds[i][1], inst, prefix, cost, ms, gap_us, warm);
    }
    close(fds[i][1]);
  }
  if (midway) midway();
  int good = 1;
  for (int i = 0; i < n; i++) {
    if (read(fds[i][0], &out[i], sizeof out[i]) != (ssize_t)sizeof out[i]) good = 0;
    close(fds[i][0]);
    int st;
    waitpid(pids[i], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) good = 0;
  }
  return good;
}

/* The Redis key of tenant acme's spend on budget daily today. */
static char SPEND_KEY[256];
static void spend_key(const char *prefix) {
  lane_program *p = must(POLICY);
  lane_request r;
  lane_request_init(&r, p);
  lane_set_str(&r, lane_field(p, "tenant"), "acme", 4);
  snprintf(SPEND_KEY, sizeof SPEND_KEY, "%sb:{daily:%016" PRIx64 "}:%u:%" PRIu64, prefix,
           lane_budget_key_of(p, 0, &r), 86400000u, NOW / 86400000u);
  lane_program_free(p);
}

static void test_three(void) {
  spend_key("three:");

  child_report rep[3];
  double cost = 0.013;   /* $1 is 76.9 requests */
  ok(run_fleet(3, "three:", cost, 1500, 200, rep, NULL), "three processes ran and reported");
  int64_t sum = 0;
  uint32_t paid = 0, failed = 0;
  for (int i = 0; i < 3; i++) {
    sum += rep[i].charged;
    paid += rep[i].paid;
    failed += rep[i].failed;
    diag("process %d: %u decisions, %u paid ($%.3f), worst decision %.1f us, %" PRId64
         " nano-dollars never acknowledged", i, rep[i].decisions, rep[i].paid,
         (double)rep[i].charged / 1e9, (double)rep[i].worst_ns / 1e3, rep[i].left);
  }
  long long fleet = redis_int("GET %s", SPEND_KEY);
  is_int(fleet, sum, "the fleet total in Redis is the sum of the processes' charges, exactly");
  ok(rep[0].left == 0 && rep[1].left == 0 && rep[2].left == 0, "every charge was acknowledged");
  is_int(failed, 0, "no decision failed");
  int64_t limit = 1000000000, over = sum - limit;
  ok(sum >= limit - (int64_t)(cost * 1e9 + 0.5) && over <= 3 * (int64_t)(cost * 1e9 + 0.5),
     "the fleet spent its $1 and overspent by at most one request per process: $%.3f "
     "(%+.3f, a request is $%.3f)", (double)sum / 1e9, (double)over / 1e9, cost);
  ok(paid >= 76 && paid <= 79, "%u paid requests for a $1 limit at $%.3f", paid, cost);
}

/* ---------------------------------------------------------------------
 * Redis killed mid-run, then started again, empty
 * ------------------------------------------------------------------- */
static void outage(void) {
  sleep_ms(400);
  stop_redis();
  sleep_ms(600);   /* three processes charge with Redis away */
  if (!start_redis()) bail("redis-server did not come back");
}

static void test_outage(void) {
  spend_key("outage:");

  child_report rep[3];
  double cost = 0.0001;   /* POLICY_BIG's $100 is a million requests: never reached */
  ok(run_fleet(3, "outage:", cost, 1800, 300, rep, outage), "three processes ran through the outage");
  int64_t sum = 0;
  uint32_t failed = 0;
  uint64_t worst = 0;
  for (int i = 0; i < 3; i++) {
    sum += rep[i].charged;
    failed += rep[i].failed;
    if (rep[i].worst_ns > worst) worst = rep[i].worst_ns;
    diag("process %d: %u decisions, %u paid, worst decision %.1f us", i, rep[i].decisions,
         rep[i].paid, (double)rep[i].worst_ns / 1e3);
  }
  diag("worst decision latency over the run, the outage included: %.1f us", (double)worst / 1e3);
  is_int(failed, 0, "no decision failed while Redis was away");
  ok(rep[0].paid + rep[1].paid + rep[2].paid == rep[0].decisions + rep[1].decisions + rep[2].decisions,
     "every decision after the first slice chose the paid model: no key was held shut by the "
     "outage or by Redis coming back empty");
  is_int(redis_int("GET %s", SPEND_KEY), sum,
         "after Redis came back empty, the fleet total is exact again (reconciled from the journals)");
  ok(rep[0].left == 0 && rep[1].left == 0 && rep[2].left == 0, "nothing left unacknowledged");
  ok(rep[0].disconnects == 1 && rep[1].disconnects == 1 && rep[2].disconnects == 1 &&
         rep[0].reconnects == 1 && rep[1].reconnects == 1 && rep[2].reconnects == 1,
     "each process lost Redis once and found it again while running");
  ok(rep[0].view == sum && rep[1].view == sum && rep[2].view == sum,
     "and each one's runtime reads the fleet's exact total after the reconcile: %lld, %lld, %lld "
     "of %lld nano-dollars", (long long)rep[0].view, (long long)rep[1].view,
     (long long)rep[2].view, (long long)sum);
}

/* One process of a two-process fleet in this process: its program,
 * runtime and adapter. */
typedef struct member {
  lane_program *p;
  lane_runtime *rt;
  lane_redis   *rs;
} member;

static member join(const char *src, const char *inst, const char *prefix) {
  member m;
  m.p = must(src);
  m.rt = runtime(m.p);
  m.rs = attach(m.rt, inst, prefix);
  return m;
}

static void leave(member *m) {
  lane_redis_detach(m->rs);
  lane_runtime_free(m->rt);
  lane_program_free(m->p);
}

/* ---------------------------------------------------------------------
 * Breaker spread and each process's own view
 * ------------------------------------------------------------------- */
static void test_breaker(void) {
  member fa = join(POLICY, "a", "brk:"), fb = join(POLICY, "b", "brk:");
  int paid = model_ix(fb.p, "paid");
  lane_request r;
  lane_request_init(&r, fb.p);
  lane_decision d;
  ok(lane_decide(fb.rt, "r", &r, &d) == LANE_OK && d.candidates[0] == paid, "b routes to paid");
  for (int i = 0; i < 5; i++) lane_observe(fa.rt, paid, 900, LANE_CALL_SERVER_ERROR);
  lane_live_stats st;
  lane_model_stats(fa.rt, paid, &st);
  ok(st.state == LANE_BREAKER_OPEN, "a saw five failures: its breaker is open");
  lane_model_stats(fb.rt, paid, &st);
  ok(st.state == LANE_BREAKER_CLOSED, "b has not heard yet");
  ok(lane_redis_sync(fa.rs) == LANE_OK && lane_redis_sync(fb.rs) == LANE_OK, "a pushes, b pulls");
  lane_model_stats(fb.rt, paid, &st);
  ok(st.state == LANE_BREAKER_OPEN && st.samples == 5,
     "b's breaker is open after one round, with the fleet's 5 calls (%" PRIu64 ")", st.samples);
  ok(lane_decide(fb.rt, "r", &r, &d) == LANE_OK && d.candidates[0] == model_ix(fb.p, "free"),
     "b skips the failing provider");
  lane_redis_model_view own;
  ok(lane_redis_model_own(fb.rs, "paid", &own) == LANE_EARG || own.calls == 0,
     "b's own view has no calls of its own");
  ok(lane_redis_model_own(fa.rs, "paid", &own) == LANE_OK && own.calls == 5 && own.failures == 5,
     "a's own view: its 5 calls, 5 failures");
  /* Latency spreads too, bucket by bucket. */
  int fr = model_ix(fa.p, "free");
  for (int i = 0; i < 40; i++) lane_observe(fa.rt, fr, 250, LANE_CALL_OK);
  lane_redis_sync(fa.rs);
  lane_redis_sync(fb.rs);
  lane_live_stats sa_st, sb_st;
  lane_model_stats(fa.rt, fr, &sa_st);
  lane_model_stats(fb.rt, fr, &sb_st);
  ok(sb_st.samples == 40 && sb_st.p50 == sa_st.p50 && sb_st.p95 == sa_st.p95,
     "b's latency figures for free are a's: p50 %.1f = %.1f ms over %" PRIu64 " calls", sb_st.p50,
     sa_st.p50, sb_st.samples);
  /* A second round adds nothing twice. */
  lane_redis_sync(fb.rs);
  lane_redis_sync(fb.rs);
  lane_model_stats(fb.rt, fr, &sb_st);
  is_int((long long)sb_st.samples, 40, "more rounds count nothing twice");
  leave(&fa);
  leave(&fb);
}

/* The same by the threads alone: how long after a's fifth failure b's
 * breaker opens, with rounds every 20 ms (reported, not asserted: the
 * machines are shared). */
static void test_breaker_timed(void) {
  member fa = join(POLICY, "a", "brk2:"), fb = join(POLICY, "b", "brk2:");
  int paid = model_ix(fb.p, "paid");
  sleep_ms(50);   /* both have run a round */
  uint64_t t0 = mono_ns();
  for (int i = 0; i < 5; i++) lane_observe(fa.rt, paid, 900, LANE_CALL_TIMEOUT);
  lane_live_stats st = {0};
  uint64_t waited = 0;
  while (waited < 5000000000ull) {
    lane_model_stats(fb.rt, paid, &st);
    if (st.state == LANE_BREAKER_OPEN) break;
    sleep_ms(1);
    waited = mono_ns() - t0;
  }
  ok(st.state == LANE_BREAKER_OPEN, "b's breaker opens by the sync threads alone");
  diag("b's breaker opened %.1f ms after a's fifth failure (rounds every 20 ms)",
       (double)(mono_ns() - t0) / 1e6);
  lane_request r;
  lane_request_init(&r, fb.p);
  lane_decision d;
  ok(lane_decide(fb.rt, "r", &r, &d) == LANE_OK && d.candidates[0] == model_ix(fb.p, "free"),
     "and b skips the provider");
  leave(&fa);
  leave(&fb);
}

/* A process that never charged a key still reads the fleet's spend on it:
 * the budget's feed names the keys pushed lately, and a round pulls them. */
static void test_feed(void) {
  member fa = join(POLICY, "a", "feed:"), fb = join(POLICY, "b", "feed:");
  lane_request r;
  lane_request_init(&r, fa.p);
  lane_set_str(&r, lane_field(fa.p, "tenant"), "zeta", 4);
  lane_charge(fa.rt, &r, 0.375);
  lane_redis_sync(fa.rs);
  uint64_t h = lane_budget_key_of(fa.p, 0, &r);
  double b0, b1;
  lane_budget_spent(fb.rt, 0, h, &b0);
  lane_redis_sync(fb.rs);   /* reads the feed: zeta changed */
  lane_redis_sync(fb.rs);   /* pulls zeta */
  lane_budget_spent(fb.rt, 0, h, &b1);
  /* (b's own thread may have read the feed already: b0 is 0 or the total) */
  ok((b0 == 0 || b0 == 0.375) && b1 == 0.375,
     "b never charged zeta and reads the fleet's $0.375 after its rounds (%g before them)", b0);
  lane_charge(fa.rt, &r, 0.125);
  lane_redis_sync(fa.rs);
  lane_redis_sync(fb.rs);
  lane_redis_sync(fb.rs);
  lane_budget_spent(fb.rt, 0, h, &b1);
  ok(b1 == 0.5, "and follows it: $%g", b1);
  lane_redis_stats st;
  lane_redis_get_stats(fb.rs, &st);
  ok(st.keys == 1 && st.holds == 0 && st.pending_nanos == 0,
     "b syncs the key without holding it or owing anything");
  leave(&fa);
  leave(&fb);
}

/* A rolling budget sums the fleet's spend over its twelve periods. */
static void test_rolling(void) {
  const char *src = MODELS "budget hourly { key req.tenant limit $5 rolling 1h }\n"
                           "route r { otherwise -> paid }\n";
  member fa = join(src, "a", "roll:"), fb = join(src, "b", "roll:");
  lane_request r;
  lane_request_init(&r, fa.p);
  lane_set_str(&r, lane_field(fa.p, "tenant"), "t9", 2);
  uint64_t saved = NOW;
  lane_charge(fa.rt, &r, 0.5);
  NOW += 10 * 60000;   /* two periods later */
  lane_charge(fa.rt, &r, 0.25);
  lane_request rq;
  lane_request_init(&rq, fb.p);
  lane_set_str(&rq, lane_field(fb.p, "tenant"), "t9", 2);
  lane_charge(fb.rt, &rq, 0.125);
  lane_redis_sync(fa.rs);
  lane_redis_sync(fb.rs);
  lane_redis_sync(fa.rs);
  double a, b;
  uint64_t h = lane_budget_key_of(fa.p, 0, &r);
  lane_budget_spent(fa.rt, 0, h, &a);
  lane_budget_spent(fb.rt, 0, h, &b);
  ok(a == 0.875 && b == 0.875, "both read the fleet's $0.875 over the rolling hour: %g and %g", a, b);
  leave(&fa);
  leave(&fb);
  NOW = saved;
}

int main(void) {
  if (system("command -v redis-server >/dev/null 2>&1") != 0) {
    plan(1);
    skip_env(1, "redis-server is not installed (apt-get install redis-server)");
    return done_testing();
  }
  signal(SIGPIPE, SIG_IGN);
  PORT = free_port();
  snprintf(URL, sizeof URL, "redis://127.0.0.1:%d/0", PORT);
  if (!start_redis()) bail("redis-server did not start on port %d", PORT);
  test_options();
  SYNC_MS = SLOW;
  test_breaker();
  test_feed();
  test_rolling();
  SYNC_MS = 20;
  test_breaker_timed();
  test_three();
  test_outage();
  stop_redis();
  return done_testing();
}

/*
 * fleet.c -- `make bench`, part "fleet": what sharing state through Redis
 * (liblane-redis) costs a decision. Two runtimes of the reference program:
 * one local-only, one attached to a redis-server started here (127.0.0.1,
 * a free port; the part is skipped, saying so, without redis-server).
 * One thread decides without pause on each in turn (acquire, build the
 * request, lane_decide, release) and charges every answer to one of 100
 * tenants, so the attached runtime's sync thread pushes, pulls and leases
 * all along. Runs of 300 ms alternate, five of each; reported: the median
 * over runs of each run's p50 and p99 decision latency, their ratio, and
 * what a charge costs (the attached one also records it for the adapter).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "lane.h"
#include "lane_redis.h"

enum { RUNS = 5, RUN_MS = 300, MAXN = 2000000, TENANTS = 100 };

static uint64_t fleet_clock(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int port_free(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  int port = -1;
  if (s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof a) && !getsockname(s, (struct sockaddr *)&a, &n))
    port = ntohs(a.sin_port);
  if (s >= 0) close(s);
  return port;
}

/* One run on rt: decision latencies into lat, charge latencies into ch. */
static int one_run(lane_runtime *rt, double *lat, double *ch, int *failed) {
  static const char *tenants[TENANTS];
  static char names[TENANTS][8];
  if (!tenants[0])
    for (int i = 0; i < TENANTS; i++) {
      snprintf(names[i], sizeof names[i], "t%d", i);
      tenants[i] = names[i];
    }
  int n = 0;
  uint64_t end = bench_ns() + (uint64_t)RUN_MS * 1000000u;
  while (n < MAXN && bench_ns() < end) {
    const char *t = tenants[n % TENANTS];
    uint64_t t0 = bench_ns();
    lane_runtime *v = lane_runtime_acquire(rt);
    const lane_program *p = lane_runtime_program(v);
    lane_request q;
    lane_request_init(&q, p);
    lane_set_str(&q, lane_field(p, "task"), "chat", 4);
    lane_set_str(&q, lane_field(p, "tier"), "pro", 3);
    lane_set_str(&q, lane_field(p, "tenant"), t, strlen(t));
    lane_set_int(&q, lane_field(p, "input_tokens"), 1200);
    lane_set_int(&q, lane_field(p, "max_output_tokens"), 400);
    lane_decision d;
    if (lane_decide(v, "ref", &q, &d) != LANE_OK) (*failed)++;
    uint64_t t1 = bench_ns();
    lane_charge(v, &q, 0.000125);
    uint64_t t2 = bench_ns();
    lane_runtime_release(v);
    lat[n] = (double)(t1 - t0);
    ch[n] = (double)(t2 - t1);
    n++;
  }
  return n;
}

int bench_fleet(const unsigned char *bytes, size_t nbytes) {
  printf("\nfleet state (liblane-redis attached, sync every 100 ms, against local-only):\n");
  if (system("command -v redis-server >/dev/null 2>&1") != 0) {
    printf("  skipped: redis-server is not installed (apt-get install redis-server)\n");
    return 0;
  }
  int port = port_free();
  char ports[16], url[64];
  snprintf(ports, sizeof ports, "%d", port);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
  fflush(stdout);
  pid_t rp = fork();
  if (rp == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
    execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", (char *)NULL);
    _exit(127);
  }
  pause_ms(300);
  lane_error err;
  lane_program *p = lane_load(bytes, nbytes, &err);
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = fleet_clock;
  lane_runtime *local = p ? lane_runtime_new_with(p, &o, &err) : NULL;
  lane_runtime *shared = p ? lane_runtime_new_with(p, &o, &err) : NULL;
  lane_redis_options ro;
  memset(&ro, 0, sizeof ro);
  ro.url = url;
  ro.prefix = "bench:";
  lane_redis *rs = shared ? lane_redis_attach(shared, &ro, &err) : NULL;
  double *lat = malloc(sizeof(double) * MAXN), *ch = malloc(sizeof(double) * MAXN);
  int rc = -1;
  if (!rs || !lat || !ch) {
    printf("  failed: %s\n", err.message);
    goto out;
  }
  double p50[2][RUNS], p99[2][RUNS], c50[2][RUNS];
  long total[2] = {0, 0};
  int failed = 0;
  for (int r = 0; r < RUNS; r++)
    for (int m = 0; m < 2; m++) {
      int n = one_run(m ? shared : local, lat, ch, &failed);
      total[m] += n;
      bench_median(lat, n);
      p50[m][r] = lat[n / 2];
      p99[m][r] = lat[(int)(n * 0.99)];
      c50[m][r] = bench_median(ch, n);
    }
  lane_redis_stats st;
  lane_redis_get_stats(rs, &st);
  double a50 = bench_median(p50[0], RUNS), b50 = bench_median(p50[1], RUNS);
  double a99 = bench_median(p99[0], RUNS), b99 = bench_median(p99[1], RUNS);
  printf("  local-only:     %8ld decisions: p50 %5.0f ns  p99 %6.0f ns; a charge %5.0f ns\n",
         total[0], a50, a99, bench_median(c50[0], RUNS));
  printf("  Redis attached: %8ld decisions: p50 %5.0f ns  p99 %6.0f ns; a charge %5.0f ns\n",
         total[1], b50, b99, bench_median(c50[1], RUNS));
  printf("  attached / local: p50 %.3fx, p99 %.3fx (median of %d alternating runs of %d ms)\n",
         b50 / a50, b99 / a99, RUNS, RUN_MS);
  printf("  sync rounds %llu (slowest %.2f ms), %llu keys, %llu slices leased, %s, %d failed "
         "decisions\n", (unsigned long long)st.rounds, (double)st.worst_round_us / 1e3,
         (unsigned long long)st.keys, (unsigned long long)st.leases,
         st.connected ? "connected" : "NOT connected", failed);
  rc = failed || !st.connected ? -1 : 0;
out:
  if (rs) lane_redis_detach(rs);
  lane_runtime_free(local);
  lane_runtime_free(shared);
  lane_program_free(p);
  free(lat);
  free(ch);
  kill(rp, SIGKILL);
  waitpid(rp, NULL, 0);
  return rc;
}

/*
 * metrics.c -- counters for GET /metrics in the Prometheus text format.
 *
 * Series (family + label text -> value) in a hash table that grows as
 * series appear, under one mutex: updates happen a few times per request
 * and each is a hash and a compare, so the lock is held for nanoseconds
 * and sums stay exact. There is no cap on series; an update lost because
 * memory ran out, or one naming an undeclared family (a bug), is counted
 * in lane_gateway_metrics_lost_total.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway.h"


/* The families served, in output order. */
static const struct family {
  const char *name;  /* metric name */
  const char *type;  /* counter or gauge */
  const char *help;  /* # HELP text */
} families[] = {
  {"lane_gateway_requests_total", "counter", "Responses sent, by path and HTTP status."},
  {"lane_gateway_decisions_total", "counter",
   "Routing decisions for forwarded requests, by route, rule and primary model."},
  {"lane_gateway_dry_runs_total", "counter", "Decisions returned without calling anyone."},
  {"lane_gateway_no_match_total", "counter", "Requests no rule of the route could serve."},
  {"lane_gateway_attempts_total", "counter", "Upstream calls made, by provider and model."},
  {"lane_gateway_upstream_connections_total", "counter",
   "Upstream connections opened, by provider (kept connections are reused: at steady state a "
   "request opens none)."},
  {"lane_gateway_connections_refused_total", "counter",
   "Client connections closed at once for a limit: connections (limits.connections) or "
   "connections_per_ip (limits.connections_per_ip)."},
  {"lane_gateway_client_timeouts_total", "counter",
   "Client connections cut for sending too slowly: phase headers (limits.header_timeout_ms) "
   "or body (limits.body_timeout_ms)."},
  {"lane_gateway_retries_total", "counter",
   "Calls made again to the same model (retry), by provider, model and the status retried."},
  {"lane_gateway_shadows_total", "counter",
   "Shadow calls made (a copy of the request to a shadow model), by provider, model and result."},
  {"lane_gateway_shadow_seconds_total", "counter",
   "Time shadow calls took to answer, by provider and model (with shadows_total{result=\"ok\"}: "
   "the mean)."},
  {"lane_gateway_shadow_spend_dollars_total", "counter",
   "What answered shadow calls cost, from their usage, by provider and model (never charged to "
   "budgets)."},
  {"lane_gateway_shadows_dropped_total", "counter",
   "Shadows decided but not sent, by reason (queue_full, off, no_provider, untranslatable, "
   "no_memory, stopping)."},
  {"lane_gateway_fallbacks_total", "counter",
   "Moves to the next candidate, by route and the model given up on."},
  {"lane_gateway_provider_errors_total", "counter",
   "Failed upstream calls, by provider, model and kind."},
  {"lane_gateway_skipped_total", "counter",
   "Candidates not tried: no provider configured, or a body that cannot be translated."},
  {"lane_gateway_served_total", "counter", "Requests answered, by provider, model and mode."},
  {"lane_gateway_unserved_total", "counter",
   "Requests no candidate could serve, by route and reason."},
  {"lane_gateway_stream_errors_total", "counter",
   "Streams that failed after their first byte reached the client."},
  {"lane_gateway_spend_dollars_total", "counter",
   "Actual spend from responses' usage (expected cost when absent), by provider and model."},
  {"lane_gateway_log_records_total", "counter", "Decision and outcome records written."},
  {"lane_gateway_log_dropped_total", "counter",
   "Records dropped because the log's queue was full (writing never blocks a request)."},
  {"lane_gateway_log_rotations_total", "counter", "Decision log files rotated."},
  {"lane_gateway_log_errors_total", "counter", "Decision log writes or renames that failed."},
  {"lane_gateway_reloads_total", "counter",
   "Policy reloads tried, by cause (start, SIGHUP, poll) and result (ok, unchanged, failed)."},
  {"lane_gateway_reload_failures_total", "counter",
   "Reloads refused: the policy could not be read, verified, tested or swapped in."},
  {"lane_gateway_policy_info", "gauge",
   "1 for the policy revision served now (0 for those served before), with its generation."},
  {"lane_gateway_policy_generation", "gauge", "Programs served since start: 1, then +1 a reload."},
  {"lane_gateway_redis_connected", "gauge",
   "1 while Redis answers; 0: budgets and health run local-only, charges journaled."},
  {"lane_gateway_redis_rounds_total", "counter", "Sync rounds that reached Redis."},
  {"lane_gateway_redis_failures_total", "counter", "Sync rounds that found Redis away or failing."},
  {"lane_gateway_redis_disconnects_total", "counter", "Times Redis was lost."},
  {"lane_gateway_redis_journal_dollars", "gauge",
   "This process's charges Redis has not acknowledged yet (pushed when it answers)."},
  {"lane_gateway_redis_keys", "gauge", "Budget keys this process syncs."},
  {"lane_gateway_redis_held_keys", "gauge",
   "Budget keys held at their limit: this process spent its slice of the fleet's budget."},
  {"lane_gateway_redis_leases_total", "counter", "Budget slices Redis granted this process."},
  {"lane_gateway_redis_round_seconds_max", "gauge", "The slowest sync round that reached Redis."},
  {"lane_gateway_metrics_lost_total", "counter",
   "Metric updates lost: memory ran out for a new series, or the family is not declared (a bug)."},
};
enum { NFAMILIES = sizeof families / sizeof families[0] };

typedef struct series {
  int      family;      /* index into families */
  uint64_t hash;        /* of family and labels */
  char    *labels;      /* label text between the braces */
  double   value;       /* running sum */
} series;

/* lane_gateway_overhead_seconds: upper bounds of its buckets, in
 * microseconds (the last is +Inf). */
static const double OVERHEAD_LE_US[] = {2.5, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90,
                                        100, 125, 150, 200, 300, 500, 1000, 2000, 5000, 20000};
enum { NBUCKETS = sizeof OVERHEAD_LE_US / sizeof OVERHEAD_LE_US[0] + 1 };

struct gw_metrics {
  pthread_mutex_t mu;   /* guards everything below but the histogram */
  size_t          n, cap; /* series in use, and room */
  series         *s;    /* in order of first use */
  size_t         *slot; /* hash table: index into s + 1, 0 empty; nslot a power of 2 */
  size_t          nslot;
  uint64_t        fam_hash[NFAMILIES]; /* of each family's name */
  double          lost; /* updates lost (lane_gateway_metrics_lost_total) */
  atomic_uint_least64_t hist[NBUCKETS];   /* overhead: requests per bucket */
  atomic_uint_least64_t hist_sum_ns;      /* and their sum */
};

void gw_metrics_overhead(gw_metrics *m, uint64_t ns) {
  if (!m) return;
  int b = 0;
  while (b < NBUCKETS - 1 && (double)ns > OVERHEAD_LE_US[b] * 1000) b++;
  atomic_fetch_add_explicit(&m->hist[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->hist_sum_ns, ns, memory_order_relaxed);
}

/* The histogram's lines: cumulative buckets, sum and count. */
static void overhead_text(gw_metrics *m, gw_buf *b) {
  char line[256];
  static const char head[] =
           "# HELP lane_gateway_overhead_seconds The gateway's own time per answered request: "
           "from its body's last byte in to its upstream request out, plus from the answer in "
           "to the response handed to the server, fallbacks included; upstream time excluded "
           "(streams are not counted).\n# TYPE lane_gateway_overhead_seconds histogram\n";
  gw_buf_add(b, head, sizeof head - 1);
  uint64_t cum = 0;
  for (int i = 0; i < NBUCKETS; i++) {
    cum += atomic_load_explicit(&m->hist[i], memory_order_relaxed);
    if (i < NBUCKETS - 1)
      snprintf(line, sizeof line, "lane_gateway_overhead_seconds_bucket{le=\"%g\"} %llu\n",
               OVERHEAD_LE_US[i] / 1e6, (unsigned long long)cum);
    else
      snprintf(line, sizeof line, "lane_gateway_overhead_seconds_bucket{le=\"+Inf\"} %llu\n",
               (unsigned long long)cum);
    gw_buf_add(b, line, strlen(line));
  }
  snprintf(line, sizeof line, "lane_gateway_overhead_seconds_sum %.9f\n"
           "lane_gateway_overhead_seconds_count %llu\n",
           (double)atomic_load_explicit(&m->hist_sum_ns, memory_order_relaxed) / 1e9,
           (unsigned long long)cum);
  gw_buf_add(b, line, strlen(line));
}

static uint64_t fnv(uint64_t h, const char *p) {
  for (; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

gw_metrics *gw_metrics_new(void) {
  gw_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->mu, NULL);
  for (int f = 0; f < NFAMILIES; f++) m->fam_hash[f] = fnv(14695981039346656037ull, families[f].name);
  return m;
}

void gw_metrics_free(gw_metrics *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n; i++) free(m->s[i].labels);
  free(m->s);
  free(m->slot);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

/* The family named name, or -1. */
static int family_of(const gw_metrics *m, const char *name) {
  uint64_t h = fnv(14695981039346656037ull, name);
  for (int f = 0; f < NFAMILIES; f++)
    if (m->fam_hash[f] == h && !strcmp(families[f].name, name)) return f;
  return -1;
}

/* Doubles the hash table (or makes its first): 0, or -1 out of memory. */
static int grow_slots(gw_metrics *m) {
  size_t n = m->nslot ? m->nslot * 2 : 256;
  size_t *t = calloc(n, sizeof *t);
  if (!t) return -1;
  for (size_t i = 0; i < m->n; i++) {
    size_t k = (size_t)m->s[i].hash & (n - 1);
    while (t[k]) k = (k + 1) & (n - 1);
    t[k] = i + 1;
  }
  free(m->slot);
  m->slot = t;
  m->nslot = n;
  return 0;
}

/* The series of family f with labels (made when new), or NULL when memory
 * ran out. Called with mu held. */
static series *series_of(gw_metrics *m, int f, const char *labels) {
  uint64_t h = fnv(m->fam_hash[f], labels);
  if (m->nslot) {
    for (size_t k = (size_t)h & (m->nslot - 1); m->slot[k]; k = (k + 1) & (m->nslot - 1)) {
      series *e = &m->s[m->slot[k] - 1];
      if (e->hash == h && e->family == f && !strcmp(e->labels, labels)) return e;
    }
  }
  if ((m->n + 1) * 2 > m->nslot && grow_slots(m)) return NULL;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 128;
    series *s = realloc(m->s, cap * sizeof *s);
    if (!s) return NULL;
    m->s = s;
    m->cap = cap;
  }
  char *copy = strdup(labels);
  if (!copy) return NULL;
  series *e = &m->s[m->n];
  e->family = f, e->hash = h, e->labels = copy, e->value = 0;
  size_t k = (size_t)h & (m->nslot - 1);
  while (m->slot[k]) k = (k + 1) & (m->nslot - 1);
  m->slot[k] = ++m->n;
  return e;
}

void gw_label(char *buf, size_t cap, const char *key, const char *value) {
  size_t n = strlen(buf);
  if (n + 1 >= cap) return;
  int w = snprintf(buf + n, cap - n, "%s%s=\"", n ? "," : "", key);
  if (w < 0 || (size_t)w >= cap - n) {
    buf[n] = 0;
    return;
  }
  n += (size_t)w;
  for (const char *p = value ? value : ""; *p && n + 3 < cap; p++) {
    if (*p == '\\' || *p == '"') buf[n++] = '\\', buf[n++] = *p;
    else if (*p == '\n') buf[n++] = '\\', buf[n++] = 'n';
    else buf[n++] = *p;
  }
  buf[n++] = '"';
  buf[n] = 0;
}

static void update(gw_metrics *m, const char *name, const char *labels, double v, int set);

void gw_metrics_add(gw_metrics *m, const char *name, const char *labels, double v) {
  update(m, name, labels, v, 0);
}

void gw_metrics_set(gw_metrics *m, const char *name, const char *labels, double v) {
  update(m, name, labels, v, 1);
}

void gw_metrics_zero(gw_metrics *m, const char *name) {
  int f = m ? family_of(m, name) : -1;
  if (f < 0) return;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n; i++)
    if (m->s[i].family == f) m->s[i].value = 0;
  pthread_mutex_unlock(&m->mu);
}

static void update(gw_metrics *m, const char *name, const char *labels, double v, int set) {
  if (!m) return;
  int f = family_of(m, name);
  pthread_mutex_lock(&m->mu);
  series *e = f >= 0 ? series_of(m, f, labels) : NULL;
  if (e) e->value = set ? v : e->value + v;
  else m->lost++;
  pthread_mutex_unlock(&m->mu);
  if (f < 0) fprintf(stderr, "lane-gateway: bug: metric %s is not declared in metrics.c\n", name);
}

void gw_metrics_redis(gw_metrics *m, lane_redis *rs) {
  lane_redis_stats st;
  if (!rs || lane_redis_get_stats(rs, &st) != LANE_OK) return;
  gw_metrics_set(m, "lane_gateway_redis_connected", "", st.connected);
  gw_metrics_set(m, "lane_gateway_redis_rounds_total", "", (double)st.rounds);
  gw_metrics_set(m, "lane_gateway_redis_failures_total", "", (double)st.failures);
  gw_metrics_set(m, "lane_gateway_redis_disconnects_total", "", (double)st.disconnects);
  gw_metrics_set(m, "lane_gateway_redis_journal_dollars", "", (double)st.pending_nanos / 1e9);
  gw_metrics_set(m, "lane_gateway_redis_keys", "", (double)st.keys);
  gw_metrics_set(m, "lane_gateway_redis_held_keys", "", (double)st.holds);
  gw_metrics_set(m, "lane_gateway_redis_leases_total", "", (double)st.leases);
  gw_metrics_set(m, "lane_gateway_redis_round_seconds_max", "", (double)st.worst_round_us / 1e6);
}

char *gw_metrics_text(gw_metrics *m, size_t *len) {
  gw_buf b = {0};
  char line[512];
  pthread_mutex_lock(&m->mu);
  for (int f = 0; f < NFAMILIES; f++) {
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
             families[f].help, families[f].name, families[f].type);
    gw_buf_add(&b, line, strlen(line));
    if (!strcmp(families[f].name, "lane_gateway_metrics_lost_total")) {
      snprintf(line, sizeof line, "%s %.17g\n", families[f].name, m->lost);
      gw_buf_add(&b, line, strlen(line));
      continue;
    }
    for (size_t i = 0; i < m->n; i++) {
      if (m->s[i].family != f) continue;
      /* the labels are as long as they came: no line buffer */
      gw_buf_add(&b, families[f].name, strlen(families[f].name));
      gw_buf_add(&b, "{", 1);
      gw_buf_add(&b, m->s[i].labels, strlen(m->s[i].labels));
      snprintf(line, sizeof line, "} %.17g\n", m->s[i].value);
      gw_buf_add(&b, line, strlen(line));
    }
  }
  pthread_mutex_unlock(&m->mu);
  overhead_text(m, &b);
  *len = b.n;
  return b.p;
}

/*
 * log.c -- the gateway's decision log: every decision and every upstream
 * attempt's outcome as liblane writes them (lane_log_decision,
 * lane_log_outcome; doc/decision-log.schema.json), appended to one file
 * that is rotated by size and age.
 *
 * Writing never blocks a decision: a request thread formats its record
 * and hands it to a bounded queue; one writer thread appends. A record
 * that finds the queue full is dropped and counted
 * (lane_gateway_log_dropped_total). Rotation renames the file to
 * PATH.YYYYMMDDTHHMMSSZ.N and opens a new one, between two records, so no
 * record is split or lost. On a clean stop the writer drains the queue,
 * flushes and syncs the file before the gateway exits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

struct gw_log {
  pthread_mutex_t mu;
  pthread_cond_t  cv;
  char          **q;          /* ring of queued lines (malloc'd) */
  size_t         *qn;         /* their lengths */
  int             cap, head, n;
  int             stop;
  unsigned long   drops;      /* records dropped: the queue was full */
  pthread_t       th;
  int             started;
  char           *path;
  long            max_bytes;  /* rotate before a record would pass it */
  long            max_age_ms; /* rotate a file older than this */
  FILE           *f;
  long            bytes;      /* in the current file */
  uint64_t        opened;     /* wall ms the current file was opened */
  unsigned        seq;        /* rotations so far */
  gw_metrics     *m;
};

static uint64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int open_file(gw_log *l) {
  l->f = fopen(l->path, "a");
  if (!l->f) return -1;
  struct stat st;   /* appending to what is there: it counts toward max_bytes */
  l->bytes = fstat(fileno(l->f), &st) == 0 ? (long)st.st_size : 0;
  l->opened = wall_ms();
  return 0;
}

/* Closes the current file under a new name and opens a fresh one. */
static void rotate(gw_log *l) {
  char stamp[32], *to = malloc(strlen(l->path) + 64);
  time_t now = (time_t)(wall_ms() / 1000);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fflush(l->f);
  fsync(fileno(l->f));
  fclose(l->f);
  l->f = NULL;
  if (to) {
    sprintf(to, "%s.%s.%u", l->path, stamp, ++l->seq);
    if (rename(l->path, to) == 0) gw_metrics_add(l->m, "lane_gateway_log_rotations_total", "", 1);
    else gw_metrics_add(l->m, "lane_gateway_log_errors_total", "", 1);
    free(to);
  }
  if (open_file(l)) {
    gw_metrics_add(l->m, "lane_gateway_log_errors_total", "", 1);
    fprintf(stderr, "lane-gateway: %s: %s; decision records are dropped\n", l->path,
            strerror(errno));
  }
}

static void write_one(gw_log *l, char *line, size_t n) {
  if (l->f && l->bytes > 0 &&
      ((l->max_bytes > 0 && l->bytes + (long)n > l->max_bytes) ||
       (l->max_age_ms > 0 && wall_ms() - l->opened >= (uint64_t)l->max_age_ms)))
    rotate(l);
  if (!l->f || fwrite(line, 1, n, l->f) != n) {
    gw_metrics_add(l->m, "lane_gateway_log_errors_total", "", 1);
  } else {
    l->bytes += (long)n;
    gw_metrics_add(l->m, "lane_gateway_log_records_total", "", 1);
  }
  free(line);
}

static void *writer(void *arg) {
  gw_log *l = arg;
  char **batch = malloc((size_t)l->cap * sizeof *batch);
  size_t *bn = malloc((size_t)l->cap * sizeof *bn);
  for (;;) {
    pthread_mutex_lock(&l->mu);
    while (!l->n && !l->stop) pthread_cond_wait(&l->cv, &l->mu);
    if (!l->n && l->stop) { pthread_mutex_unlock(&l->mu); break; }
    int k = 0;
    while (l->n && batch && bn) {   /* take all there is: one lock per batch */
      batch[k] = l->q[l->head];
      bn[k++] = l->qn[l->head];
      l->head = (l->head + 1) % l->cap;
      l->n--;
    }
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < k; i++) write_one(l, batch[i], bn[i]);
    if (l->f) fflush(l->f);
    if (!batch || !bn) break;
  }
  free(batch);
  free(bn);
  return NULL;
}

gw_log *gw_log_open(const char *path, long max_bytes, long max_age_s, int queue, gw_metrics *m,
                    char *why, size_t cap) {
  gw_log *l = calloc(1, sizeof *l);
  if (!l) return snprintf(why, cap, "out of memory"), NULL;
  l->cap = queue > 0 ? queue : 65536;
  l->q = calloc((size_t)l->cap, sizeof *l->q);
  l->qn = calloc((size_t)l->cap, sizeof *l->qn);
  l->path = strdup(path);
  l->max_bytes = max_bytes;
  l->max_age_ms = max_age_s * 1000;
  l->m = m;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (!l->q || !l->qn || !l->path) {
    snprintf(why, cap, "out of memory");
  } else if (open_file(l)) {
    snprintf(why, cap, "decision_log %s: %s", path, strerror(errno));
  } else if (pthread_create(&l->th, NULL, writer, l) != 0) {
    snprintf(why, cap, "decision_log: cannot start its writer thread");
  } else {
    l->started = 1;
    return l;
  }
  gw_log_close(l);
  return NULL;
}

int gw_log_put(gw_log *l, char *line, size_t n) {
  if (!l || !line) { free(line); return -1; }
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap || l->stop) {
    unsigned long d = ++l->drops;
    pthread_mutex_unlock(&l->mu);
    free(line);
    gw_metrics_add(l->m, "lane_gateway_log_dropped_total", "", 1);
    if ((d & (d - 1)) == 0)   /* the 1st, 2nd, 4th, ...: said, not flooded */
      fprintf(stderr, "lane-gateway: decision log: its queue of %d records is full; %lu "
              "record%s dropped so far (lane_gateway_log_dropped_total)\n", l->cap, d,
              d == 1 ? "" : "s");
    return -1;
  }
  int at = (l->head + l->n) % l->cap;
  l->q[at] = line;
  l->qn[at] = n;
  l->n++;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return 0;
}

void gw_log_close(gw_log *l) {
  if (!l) return;
  if (l->started) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);   /* the writer drains the queue first */
  }
  if (l->f) {
    fflush(l->f);
    fsync(fileno(l->f));
    fclose(l->f);
  }
  for (int i = 0; l->q && i < l->n; i++) free(l->q[(l->head + i) % l->cap]);
  free(l->q);
  free(l->qn);
  free(l->path);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l);
}

/* A record from one of liblane's writers, sized then queued; prefix
 * (members and a comma, or "") goes after its opening brace. */
#define QUEUE_RECORD(call, prefix)                                            \
  do {                                                                        \
    char small_[2048];                                                        \
    char *buf_ = small_;                                                      \
    size_t cap_ = sizeof small_, n_ = 0;                                      \
    for (int try_ = 0; try_ < 2; try_++) {                                    \
      n_ = (call);                                                            \
      if (n_ < cap_ || !n_) break;                                            \
      buf_ = malloc(n_ + 1);                                                  \
      cap_ = n_ + 1;                                                          \
      if (!buf_) break;                                                       \
    }                                                                         \
    if (!buf_ || !n_) { if (buf_ != small_) free(buf_); break; }              \
    size_t pn_ = strlen(prefix);                                              \
    char *line_ = buf_ == small_ || pn_ ? malloc(n_ + pn_ + 1) : buf_;        \
    if (line_ && line_ != buf_) {                                             \
      line_[0] = buf_[0];                                                     \
      memcpy(line_ + 1, prefix, pn_);                                         \
      memcpy(line_ + 1 + pn_, buf_ + 1, n_);                                  \
      n_ += pn_;                                                              \
      if (buf_ != small_) free(buf_);                                         \
    }                                                                         \
    if (!line_) {                                                             \
      if (buf_ != small_) free(buf_);                                         \
      gw_metrics_add(g->metrics, "lane_gateway_log_dropped_total", "", 1);    \
      break;                                                                  \
    }                                                                         \
    gw_log_put(g->log, line_, n_);                                            \
  } while (0)

void gw_log_decision(gw_call *c, int route, int status) {
  gw *g = c->g;
  if (!g->log) return;
  const unsigned char *key = g->log_key_set ? g->log_key : NULL;
  /* The revision that decided it (a member the schema names; liblane's
   * record has the program's checksum, "policy"). */
  json_t *rev = json_string(c->pol->revision);
  char *q = rev ? json_dumps(rev, JSON_ENCODE_ANY) : NULL;
  char prefix[256];
  snprintf(prefix, sizeof prefix, "\"revision\":%s,", q && strlen(q) < 200 ? q : "\"?\"");
  free(q);
  json_decref(rev);
  QUEUE_RECORD(lane_log_decision(c->pol->rt, route, c->req, status, &c->d, c->id, key, buf_, cap_),
               prefix);
}

/* An outcome record of c: the fields both kinds share. */
static void outcome_queue(gw_call *c, lane_outcome *o, int model, double latency_ms, int http,
                          const char *error, long in, long out, double cost) {
  gw *g = c->g;
  if (!g->log) return;
  o->id = c->id;
  o->ts_ms = wall_ms();
  o->model = model;
  o->status = http;
  o->latency_ms = latency_ms;
  o->input_tokens = in;
  o->output_tokens = out;
  o->cost = cost;
  o->error = error;
  QUEUE_RECORD(lane_log_outcome(c->pol->prog, o, buf_, cap_), "");
}

void gw_log_outcome(gw_call *c, int model, double latency_ms, int http, const char *error,
                    int final, long in, long out, double cost) {
  lane_outcome o;
  memset(&o, 0, sizeof o);
  o.attempts = c->calls;
  o.fallbacks = c->tried;
  o.attempt = c->calls;
  o.final = final;
  outcome_queue(c, &o, model, latency_ms, http, error, in, out, cost);
}

void gw_log_shadow(gw_call *c, int model, double latency_ms, int http, const char *error, long in,
                   long out, double cost) {
  lane_outcome o;
  memset(&o, 0, sizeof o);
  o.attempts = 1;
  o.attempt = 1;
  o.shadow = 1;   /* final 0: never the decision's answer */
  outcome_queue(c, &o, model, latency_ms, http, error, in, out, cost);
}

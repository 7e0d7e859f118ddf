/*
 * shadow.c -- sending the decision's shadows: a copy of the request to
 * each shadow model, so that a team can compare a model (an in-house one,
 * a cheaper one) with the one that answers, on real traffic.
 *
 * A request's shadows are queued when it is decided, before its primary is
 * called, and sent by a pool of worker threads of their own: a shadow
 * never delays the client's answer, never changes it, and never fails it.
 * The queue is bounded ("shadow": {"queue"}); a shadow that finds it full
 * is dropped and counted (lane_gateway_shadows_dropped_total), never
 * waited for. Each call is whole (a streaming request's shadow is asked
 * for a whole answer), bounded by "timeout_ms", and recorded:
 * lane_observe for the shadow model (its live p95, error rate and breaker
 * are real), metrics by model, and an outcome record with "shadow": true
 * in the decision log, under the decision's id. Budgets are not charged:
 * a shadow is the operator's experiment, not the tenant's spend (its cost
 * is in lane_gateway_shadow_spend_dollars_total).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway.h"

typedef struct job {
  struct job *next;
  gw_call    *c;       /* a call of its own: the policy held, the body copied */
  int         model;   /* the shadow model */
} job;

struct gw_shadows {
  pthread_mutex_t mu;
  pthread_cond_t  cv;
  job            *head, *tail;
  long            queued, cap;
  int             nworkers;
  pthread_t      *workers;
  int             stopping;
};

void gw_shadows_dropped(gw *g, const char *reason, long n) {
  char labels[64] = "";
  gw_label(labels, sizeof labels, "reason", reason);
  gw_metrics_add(g->metrics, "lane_gateway_shadows_dropped_total", labels, (double)n);
}

static void job_free(job *j) {
  gw_call_release(j->c);
  free(j);
}

static void *worker(void *arg) {
  gw *g = arg;
  gw_shadows *s = g->shadows;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    job *j = s->head;
    s->head = j->next;
    if (!s->head) s->tail = NULL;
    s->queued--;
    pthread_mutex_unlock(&s->mu);
    gw_shadow_call(j->c, j->model);
    job_free(j);
  }
}

int gw_shadows_start(gw *g, char *why, size_t cap) {
  if (g->cfg.shadow_concurrency == 0) return 0;   /* decided, logged, not sent */
  gw_shadows *s = calloc(1, sizeof *s);
  if (!s) return snprintf(why, cap, "out of memory"), -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->cap = g->cfg.shadow_queue;
  s->workers = calloc((size_t)g->cfg.shadow_concurrency, sizeof *s->workers);
  g->shadows = s;
  if (!s->workers) return snprintf(why, cap, "out of memory"), -1;
  for (long i = 0; i < g->cfg.shadow_concurrency; i++) {
    if (pthread_create(&s->workers[i], NULL, worker, g))
      return snprintf(why, cap, "cannot start the shadow workers"), -1;
    s->nworkers++;
  }
  return 0;
}

void gw_shadows_stop(gw *g) {
  gw_shadows *s = g->shadows;
  if (!s) return;
  atomic_store(&g->shadows_stopping, 1);   /* calls in flight stop within a poll (200 ms) */
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  long left = s->queued;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i], NULL);   /* calls in flight end */
  for (job *j = s->head, *n; j; j = n) {
    n = j->next;
    job_free(j);
  }
  if (left > 0) {
    gw_shadows_dropped(g, "stopping", left);
    fprintf(stderr, "lane-gateway: %ld shadow call(s) still queued at stop were not sent\n", left);
  }
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s->workers);
  free(s);
  g->shadows = NULL;
}

/* A call of its own for one shadow: the policy held, the body and the
 * headers it needs copied (the client's request ends before it is sent). */
static gw_call *shadow_copy(const gw_call *c) {
  gw_call *s = calloc(1, sizeof *s + c->nraw + 1);
  if (!s) return NULL;
  char *raw = (char *)(s + 1);
  memcpy(raw, c->raw, c->nraw);
  raw[c->nraw] = 0;
  atomic_init(&s->refs, 1);
  s->g = c->g;
  s->pol = c->pol;
  atomic_fetch_add(&c->pol->refs, 1);
  s->format = c->format;
  s->stream = c->stream;   /* the shadow asks for a whole answer; this says to rewrite */
  s->raw = raw;
  s->nraw = c->nraw;
  s->served = -1;
  memcpy(s->id, c->id, sizeof s->id);
  s->anthropic_version = c->anthropic_version ? s->hdr_version : NULL;
  s->anthropic_beta = c->anthropic_beta ? s->hdr_beta : NULL;
  if (c->anthropic_version) snprintf(s->hdr_version, sizeof s->hdr_version, "%s", c->anthropic_version);
  if (c->anthropic_beta) snprintf(s->hdr_beta, sizeof s->hdr_beta, "%s", c->anthropic_beta);
  return s;
}

void gw_shadows_submit(gw *g, const gw_call *c) {
  if (!c->d.nshadows) return;
  gw_shadows *s = g->shadows;
  if (!s) {
    gw_shadows_dropped(g, "off", c->d.nshadows);   /* shadow.concurrency 0 */
    return;
  }
  for (int i = 0; i < c->d.nshadows; i++) {
    job *j = calloc(1, sizeof *j);
    gw_call *copy = j ? shadow_copy(c) : NULL;
    if (!copy) {
      free(j);
      gw_shadows_dropped(g, "no_memory", 1);
      continue;
    }
    j->c = copy;
    j->model = c->d.shadows[i];
    pthread_mutex_lock(&s->mu);
    int full = s->queued >= s->cap || s->stopping;
    if (!full) {
      if (s->tail) s->tail->next = j;
      else s->head = j;
      s->tail = j;
      s->queued++;
      pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (full) {
      job_free(j);
      gw_shadows_dropped(g, "queue_full", 1);
    }
  }
}

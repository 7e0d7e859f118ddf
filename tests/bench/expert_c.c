/*
 * expert_c.c -- reference.lane's route `ref` the way a performance
 * engineer writes it when nothing but speed matters: the limit lane is
 * measured against (ref_c.c is lane's own algorithm written in C).
 *
 * At start-up everything static becomes a 64-bit model mask: each pool,
 * health, the capabilities, and context and max-output fit as tables of
 * thresholds sorted at load (a binary search gives the mask of the models
 * a request fits). Per request: one eligibility mask (fit AND health AND
 * the capability masks the request needs), request constants as doubles
 * once, and a p95 mask for the latency rule from the sorted p95 table.
 * Each selection walks the set bits of pool & eligible & ~chosen with
 * ctz, computes cost with two multiplies and an add from a per-model price
 * pair (the long-context pair when the request is past the model's
 * threshold), and keeps the best k by insertion with an early reject
 * against the k-th key. Ties break by declaration order, and the cost
 * formula's IEEE operations are lane's, so it must agree with lane on
 * every decision (bench_main checks the checksum).
 */
#include <math.h>
#include <string.h>

#include "bench.h"

typedef uint64_t mask;

static const bmodel *M = bench_models;
static bstate S;
static mask P_rated, P_q060, P_q070, P_q080, P_q084, P_q085, P_vision, P_tool, P_long;
static mask HEALTHY, CAPM_VISION, CAPM_TOOLS, CAPM_JSON, ALL;
static int  M_flash;
static double PIN[BENCH_NMODELS], POUT[BENCH_NMODELS];      /* standard prices */
static double LIN[BENCH_NMODELS], LOUT[BENCH_NMODELS];      /* past long_above */
static int64_t LONG_ABOVE[BENCH_NMODELS];                   /* 0: no long prices */
static double QNEG[BENCH_NMODELS], P95KEY[BENCH_NMODELS];   /* best's and fastest's keys */

/* Thresholds sorted ascending, each with the mask of models whose limit
 * is at least it; a request needing n fits the first threshold >= n. */
typedef struct fit_table { int n; int64_t at[BENCH_NMODELS]; mask ok[BENCH_NMODELS]; mask unlimited; } fit_table;
static fit_table CTX, OUT;
typedef struct p95_table { int n; double at[BENCH_NMODELS]; mask le[BENCH_NMODELS]; } p95_table;
static p95_table P95;

static bspend SPEND;

static mask where(double qmin, uint32_t caps, int64_t ctxmin) {
  mask r = 0;
  for (int m = 0; m < BENCH_NMODELS; m++)
    if (M[m].quality > 0 && M[m].quality >= qmin && (M[m].caps & caps) == caps &&
        M[m].context >= ctxmin)
      r |= (mask)1 << m;
  return r;
}

static void fit_build(fit_table *t, int use_out) {
  memset(t, 0, sizeof *t);
  for (int m = 0; m < BENCH_NMODELS; m++) {
    int64_t lim = use_out ? M[m].max_output : M[m].context;
    if (!lim) { t->unlimited |= (mask)1 << m; continue; }
    int k = 0;
    while (k < t->n && t->at[k] < lim) k++;
    if (k == t->n || t->at[k] != lim) {
      memmove(&t->at[k + 1], &t->at[k], (size_t)(t->n - k) * sizeof t->at[0]);
      t->at[k] = lim;
      t->n++;
    }
  }
  for (int k = 0; k < t->n; k++) {
    t->ok[k] = t->unlimited;
    for (int m = 0; m < BENCH_NMODELS; m++) {
      int64_t lim = use_out ? M[m].max_output : M[m].context;
      if (lim && lim >= t->at[k]) t->ok[k] |= (mask)1 << m;
    }
  }
}

static inline mask fit(const fit_table *t, int64_t need) {
  int lo = 0, hi = t->n;   /* first threshold >= need */
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (t->at[mid] < need) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->n ? t->ok[lo] : t->unlimited;
}

void expert_c_init(const bstate *st) {
  S = *st;
  P_rated = where(0, 0, 0);
  P_q060 = where(0.6, 0, 0);
  P_q070 = where(0.7, 0, 0);
  P_q080 = where(0.8, 0, 0);
  P_q084 = where(0.84, 0, 0);
  P_q085 = where(0.85, 0, 0);
  P_vision = where(0.8, CAP_VISION, 0);
  P_tool = where(0.8, CAP_TOOLS, 0);
  P_long = where(0.75, 0, 128000);
  HEALTHY = CAPM_VISION = CAPM_TOOLS = CAPM_JSON = ALL = 0;
  for (int m = 0; m < BENCH_NMODELS; m++) {
    mask b = (mask)1 << m;
    ALL |= b;
    if (S.healthy[m]) HEALTHY |= b;
    if (M[m].caps & CAP_VISION) CAPM_VISION |= b;
    if (M[m].caps & CAP_TOOLS) CAPM_TOOLS |= b;
    if (M[m].caps & CAP_JSON) CAPM_JSON |= b;
    PIN[m] = M[m].input;
    POUT[m] = M[m].output;
    LONG_ABOVE[m] = M[m].long_above > 0 ? M[m].long_above : 0;
    LIN[m] = M[m].long_input > 0 ? M[m].long_input : M[m].input;
    LOUT[m] = M[m].long_output > 0 ? M[m].long_output : M[m].output;
    QNEG[m] = -M[m].quality;
    P95KEY[m] = S.p95[m] > 0 ? S.p95[m] : INFINITY;
    if (!strcmp(M[m].name, "gemini_2_5_flash")) M_flash = m;
  }
  fit_build(&CTX, 0);
  fit_build(&OUT, 1);
  /* p95 <= latency: thresholds ascending, each with the models at or below */
  memset(&P95, 0, sizeof P95);
  for (int m = 0; m < BENCH_NMODELS; m++) {
    int k = 0;
    while (k < P95.n && P95.at[k] < S.p95[m]) k++;
    if (k == P95.n || P95.at[k] != S.p95[m]) {
      memmove(&P95.at[k + 1], &P95.at[k], (size_t)(P95.n - k) * sizeof P95.at[0]);
      P95.at[k] = S.p95[m];
      P95.n++;
    }
  }
  for (int k = 0; k < P95.n; k++)
    for (int m = 0; m < BENCH_NMODELS; m++)
      if (S.p95[m] <= P95.at[k]) P95.le[k] |= (mask)1 << m;
  bspend_fill(&SPEND, &S);
}

/* The models whose p95 is at most ms: the last threshold <= ms. */
static inline mask p95_le(double ms) {
  int lo = 0, hi = P95.n;   /* first threshold > ms */
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (P95.at[mid] <= ms) lo = mid + 1;
    else hi = mid;
  }
  return lo ? P95.le[lo - 1] : 0;
}

/* Per decision. */
typedef struct ctx {
  double  din, dout;     /* token counts as doubles, once */
  int64_t in;
  mask    elig, chosen;
  int     nc, c[BENCH_MAXC];
} ctx;

static inline double cost_of(const ctx *x, int m) {
  if (LONG_ABOVE[m] && x->in > LONG_ABOVE[m]) return x->din * LIN[m] + x->dout * LOUT[m];
  return x->din * PIN[m] + x->dout * POUT[m];
}

enum { BY_COST, BY_P95, BY_QUALITY };

/* Top-k of the set bits of set, in declaration order, by key (a, b):
 * only a strictly smaller key moves ahead; the k-th key rejects early. */
static inline void pick(ctx *x, mask set, int by, double cost_max) {
  int need = BENCH_MAXC - x->nc, nb = 0, bm[BENCH_MAXC];
  double k1[BENCH_MAXC], k2[BENCH_MAXC];
  set &= x->elig & ~x->chosen;
  while (set) {
    int m = __builtin_ctzll(set);
    set &= set - 1;
    double cost = cost_of(x, m), a, b;
    if (!(cost < cost_max)) continue;
    if (by == BY_COST) { a = cost; b = 0; }
    else { a = by == BY_P95 ? P95KEY[m] : QNEG[m]; b = cost; }
    if (nb == need && !(a < k1[nb - 1] || (a == k1[nb - 1] && b < k2[nb - 1]))) continue;
    int pos = nb < need ? nb++ : nb - 1;
    while (pos > 0 && (a < k1[pos - 1] || (a == k1[pos - 1] && b < k2[pos - 1]))) {
      bm[pos] = bm[pos - 1]; k1[pos] = k1[pos - 1]; k2[pos] = k2[pos - 1];
      pos--;
    }
    bm[pos] = m; k1[pos] = a; k2[pos] = b;
  }
  for (int i = 0; i < nb; i++) {
    x->c[x->nc++] = bm[i];
    x->chosen |= (mask)1 << bm[i];
  }
}


static inline int try_set(ctx *x, mask set, int by, double cost_max) {
  x->nc = 0;
  x->chosen = 0;
  pick(x, set, by, cost_max);
  return x->nc > 0;
}

void expert_c_decide(const breq *q, bdec *d) {
  ctx x;
  int rule = 0;
  int64_t in = q->in > 0 ? q->in : 0, out = q->out > 0 ? q->out : 0;
  x.in = in;
  x.din = (double)in;
  x.dout = (double)out;
  x.elig = HEALTHY & fit(&CTX, in + out) & fit(&OUT, out) & (q->images ? CAPM_VISION : ALL) &
           (q->tools ? CAPM_TOOLS : ALL) & (q->json ? CAPM_JSON : ALL);
  x.nc = 0;
  int ent = BENCH_IS(q->tier, q->ntier, "enterprise");
  int code = BENCH_IS(q->task, q->ntask, "code");
  double lat = q->latency_ms;

  if (bspend_get(&SPEND, q->tenant, q->ntenant) / S.budget_limit >= 1.0 &&
      try_set(&x, P_q060, BY_COST, INFINITY)) { rule = 1; goto done; }
  if (lat > 0 && lat < 1500 && try_set(&x, P_rated & p95_le(lat), BY_P95, INFINITY)) {
    rule = 2;
    goto done;
  }
  if (ent && code && try_set(&x, P_rated, BY_QUALITY, INFINITY)) { rule = 3; goto done; }
  if (q->images > 0 && try_set(&x, P_vision, BY_COST, INFINITY)) { rule = 4; goto done; }
  if (BENCH_IS(q->task, q->ntask, "chat") && bench_splitmix(bench_fnv1a(q->user, q->nuser)) % 100 < 5) {
    x.nc = 0;
    x.chosen = 0;
    if (x.elig >> M_flash & 1) {
      x.c[x.nc++] = M_flash;
      x.chosen = (mask)1 << M_flash;
    }
    pick(&x, P_q080, BY_COST, INFINITY);
    if (x.nc) { rule = 5; goto done; }
  }
  if (in + out > 8000 && try_set(&x, P_long, BY_COST, INFINITY)) { rule = 6; goto done; }
  if (ent && try_set(&x, P_rated, BY_QUALITY, 0.02)) { rule = 7; goto done; }
  if (q->tools && try_set(&x, P_tool, BY_COST, INFINITY)) { rule = 8; goto done; }
  if (code && try_set(&x, P_q085, BY_COST, INFINITY)) { rule = 9; goto done; }
  if (BENCH_IS(q->tier, q->ntier, "pro") && try_set(&x, P_q084, BY_COST, INFINITY)) { rule = 10; goto done; }
  if (BENCH_IS(q->tier, q->ntier, "free") && try_set(&x, P_q070, BY_COST, 0.0002)) { rule = 11; goto done; }
  if (try_set(&x, P_q080, BY_COST, INFINITY)) { rule = 12; goto done; }
  d->rule = 0;
  d->n = 0;
  d->cost = 0;
  return;
done:
  d->rule = rule;
  d->n = x.nc;
  for (int i = 0; i < x.nc; i++) d->c[i] = x.c[i];
  d->cost = cost_of(&x, x.c[0]);
}

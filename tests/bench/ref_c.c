/*
 * ref_c.c -- reference.lane's route `ref`, written by hand in C the way a
 * performance engineer would: static pools resolved once at start-up,
 * no allocation per decision, capability requirements as one bit mask,
 * a top-3 partial selection (insertion into three slots) instead of a
 * sort, the tenant's spend from an open-addressing table keyed by the
 * FNV-1a hash of the tenant name, bucket() only when the canary's task
 * matches. It must give exactly lane's decisions (bench_main checks the
 * checksum), so orders break ties by declaration order and costs use the
 * formula of lang/README.md in the same IEEE operation order.
 */
#include <math.h>
#include <string.h>

#include "bench.h"

enum { ORD_CHEAPEST, ORD_FASTEST, ORD_BEST, ORD_LISTED };
enum { F_NONE, F_P95_LE_LATENCY, F_COST_LT };

typedef struct pool { int n; int m[BENCH_NMODELS]; } pool;

static const bmodel *M = bench_models;
static bstate S;
static pool P_rated, P_q060, P_q070, P_q080, P_q084, P_q085, P_vision, P_tool, P_long;
static pool P_best_rated;                     /* rated, by quality descending */
static int  M_flash;                          /* gemini_2_5_flash */

static bspend SPEND;

static void pool_where(pool *p, double qmin, uint32_t caps, int64_t ctxmin) {
  p->n = 0;
  for (int m = 0; m < BENCH_NMODELS; m++)
    if (M[m].quality > 0 && M[m].quality >= qmin && (M[m].caps & caps) == caps &&
        M[m].context >= ctxmin)
      p->m[p->n++] = m;
}

void ref_c_init(const bstate *st) {
  S = *st;
  pool_where(&P_rated, 0, 0, 0);
  pool_where(&P_q060, 0.6, 0, 0);
  pool_where(&P_q070, 0.7, 0, 0);
  pool_where(&P_q080, 0.8, 0, 0);
  pool_where(&P_q084, 0.84, 0, 0);
  pool_where(&P_q085, 0.85, 0, 0);
  pool_where(&P_vision, 0.8, CAP_VISION, 0);
  pool_where(&P_tool, 0.8, CAP_TOOLS, 0);
  pool_where(&P_long, 0.75, 0, 128000);
  P_best_rated = P_rated;                     /* stable insertion sort */
  for (int i = 1; i < P_best_rated.n; i++) {
    int v = P_best_rated.m[i], j = i;
    for (; j > 0 && M[P_best_rated.m[j - 1]].quality < M[v].quality; j--)
      P_best_rated.m[j] = P_best_rated.m[j - 1];
    P_best_rated.m[j] = v;
  }
  for (int m = 0; m < BENCH_NMODELS; m++)
    if (!strcmp(M[m].name, "gemini_2_5_flash")) M_flash = m;
  bspend_fill(&SPEND, &S);
}

/* Per-decision view of the request. */
typedef struct ctx {
  int64_t  in, out;       /* clamped at 0 */
  uint32_t need_caps;     /* vision / tools / json the request needs */
  double   latency;       /* ms */
  double   cost_max;      /* F_COST_LT */
  int      filter;
  int      nc, c[BENCH_MAXC];
} ctx;

static inline double cost_on(const ctx *x, int m) {
  const bmodel *md = &M[m];
  int lng = md->long_above > 0 && x->in > md->long_above;
  double p_in = lng && md->long_input > 0 ? md->long_input : md->input;
  double p_out = lng && md->long_output > 0 ? md->long_output : md->output;
  /* cached_tokens is 0 and reasoning unset in every bench request, so the
   * cached term is +0.0, which changes no bit of the sum */
  return (double)x->in * p_in + (double)x->out * p_out;
}

/* The route's requires: fits && healthy, and the capability clauses. */
static inline int admissible(const ctx *x, int m) {
  const bmodel *md = &M[m];
  if ((md->caps & x->need_caps) != x->need_caps || !S.healthy[m]) return 0;
  if (md->context && x->in + x->out > md->context) return 0;
  return !md->max_output || x->out <= md->max_output;
}

static inline int chosen(const ctx *x, int m) {
  for (int i = 0; i < x->nc; i++)
    if (x->c[i] == m) return 1;
  return 0;
}

/* Fills the candidates up to fallbacks + 1 from pool p in order ord:
 * a top-k insertion where only a strictly better key moves ahead. */
static void pick(ctx *x, const pool *p, int ord) {
  int need = BENCH_MAXC - x->nc, nb = 0, bm[BENCH_MAXC];
  double k1[BENCH_MAXC], k2[BENCH_MAXC];
  if (need <= 0) return;
  for (int i = 0; i < p->n; i++) {
    int m = p->m[i], pos;
    double a = 0, b = 0, cost = 0;
    if (ord == ORD_BEST && nb == need && -M[m].quality > k1[nb - 1]) break;
    if (chosen(x, m) || !admissible(x, m)) continue;
    if (x->filter == F_P95_LE_LATENCY && !(S.p95[m] <= x->latency)) continue;
    cost = cost_on(x, m);
    if (x->filter == F_COST_LT && !(cost < x->cost_max)) continue;
    switch (ord) {
    case ORD_CHEAPEST: a = cost; break;
    case ORD_FASTEST: a = S.p95[m] > 0 ? S.p95[m] : INFINITY; b = cost; break;
    case ORD_BEST: a = -M[m].quality; b = cost; break;
    default: break;
    }
    for (pos = nb; pos > 0; pos--)
      if (!(a < k1[pos - 1] || (a == k1[pos - 1] && b < k2[pos - 1]))) break;
    if (pos >= need) continue;
    if (nb < need) nb++;
    for (int j = nb - 1; j > pos; j--) { bm[j] = bm[j - 1]; k1[j] = k1[j - 1]; k2[j] = k2[j - 1]; }
    bm[pos] = m; k1[pos] = a; k2[pos] = b;
  }
  for (int i = 0; i < nb; i++) x->c[x->nc++] = bm[i];
}


/* Tries one rule: pick from p (with the filter already set); 1 if it
 * produced a candidate. */
static inline int try_pool(ctx *x, const pool *p, int ord, int filter) {
  x->filter = filter;
  x->nc = 0;
  pick(x, p, ord);
  return x->nc > 0;
}

void ref_c_decide(const breq *q, bdec *d) {
  ctx x;
  int rule = 0;
  x.in = q->in > 0 ? q->in : 0;
  x.out = q->out > 0 ? q->out : 0;
  x.need_caps = (q->images ? CAP_VISION : 0) | (q->tools ? CAP_TOOLS : 0) |
                (q->json ? CAP_JSON : 0);
  x.latency = q->latency_ms;
  x.cost_max = 0;
  x.nc = 0;
  int ent = BENCH_IS(q->tier, q->ntier, "enterprise");
  int code = BENCH_IS(q->task, q->ntask, "code");

  if (bspend_get(&SPEND, q->tenant, q->ntenant) / S.budget_limit >= 1.0 &&
      try_pool(&x, &P_q060, ORD_CHEAPEST, F_NONE)) { rule = 1; goto done; }
  if (x.latency > 0 && x.latency < 1500 &&
      try_pool(&x, &P_rated, ORD_FASTEST, F_P95_LE_LATENCY)) { rule = 2; goto done; }
  if (ent && code && try_pool(&x, &P_best_rated, ORD_BEST, F_NONE)) { rule = 3; goto done; }
  if (q->images > 0 && try_pool(&x, &P_vision, ORD_CHEAPEST, F_NONE)) { rule = 4; goto done; }
  if (BENCH_IS(q->task, q->ntask, "chat") && bench_splitmix(bench_fnv1a(q->user, q->nuser)) % 100 < 5) {
    x.nc = 0;
    x.filter = F_NONE;
    if (admissible(&x, M_flash)) x.c[x.nc++] = M_flash;
    pick(&x, &P_q080, ORD_CHEAPEST);
    if (x.nc) { rule = 5; goto done; }
  }
  if (x.in + x.out > 8000 && try_pool(&x, &P_long, ORD_CHEAPEST, F_NONE)) { rule = 6; goto done; }
  if (ent) {
    x.cost_max = 0.02;
    if (try_pool(&x, &P_best_rated, ORD_BEST, F_COST_LT)) { rule = 7; goto done; }
  }
  if (q->tools && try_pool(&x, &P_tool, ORD_CHEAPEST, F_NONE)) { rule = 8; goto done; }
  if (code && try_pool(&x, &P_q085, ORD_CHEAPEST, F_NONE)) { rule = 9; goto done; }
  if (BENCH_IS(q->tier, q->ntier, "pro") && try_pool(&x, &P_q084, ORD_CHEAPEST, F_NONE)) {
    rule = 10;
    goto done;
  }
  if (BENCH_IS(q->tier, q->ntier, "free")) {
    x.cost_max = 0.0002;
    if (try_pool(&x, &P_q070, ORD_CHEAPEST, F_COST_LT)) { rule = 11; goto done; }
  }
  if (try_pool(&x, &P_q080, ORD_CHEAPEST, F_NONE)) { rule = 12; goto done; }
  d->rule = 0;
  d->n = 0;
  d->cost = 0;
  return;
done:
  d->rule = rule;
  d->n = x.nc;
  for (int i = 0; i < x.nc; i++) d->c[i] = x.c[i];
  d->cost = cost_on(&x, x.c[0]);
}

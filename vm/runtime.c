/*
 * runtime.c -- live state for decisions: per-model latency histograms over
 * a sliding window, error rates and circuit breakers; per-key budget spend
 * in integer nano-dollars; saving, loading and snapshots.
 *
 * Everything a decision reads is updated with atomics and read without
 * locks. Windows are rings of time slots tagged with the period they hold;
 * the first writer of a new period claims the slot by compare-and-swap,
 * clears it and publishes the tag, and others wait the few instructions
 * that takes. So concurrent updates within a period lose nothing, and a
 * reader sees each slot as of one period ("consistent enough": a decision
 * may mix slots updated a moment apart, never a half-cleared one's data
 * under a wrong tag).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm.h"

#define BUSY (1ull << 63)         /* tag bit: slot being cleared */
#define SPIN_LIMIT 100000         /* waits for a clearing slot, then goes on */

/* ---------------------------------------------------------------------
 * Clock and options
 * ------------------------------------------------------------------- */
static uint64_t system_clock(void *ctx) {
  struct timespec ts;
  (void)ctx;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t vm_now(const lane_runtime *rt) { return rt->opt.clock(rt->opt.clock_ctx); }

uint64_t lane_runtime_now(const lane_runtime *rt) { return rt ? vm_now(rt) : 0; }

static void set_err(lane_error *err, int code, const char *fmt, const char *arg) {
  if (!err) return;
  err->code = code;
  err->line = 0;
  snprintf(err->message, sizeof err->message, fmt, arg ? arg : "");
}

static uint32_t pow2_at_least(uint32_t n) {
  uint32_t c = 16;
  while (c < n && c < (1u << 24)) c <<= 1;
  return c;
}

/* ---------------------------------------------------------------------
 * Tagged slots
 * ------------------------------------------------------------------- */

/* Makes tag hold period `want` (stored as want + 1), clearing the slot's
 * data with clear(data) when it held an older period. */
static void claim(atomic_uint_least64_t *tag, uint64_t want, void (*clear)(void *), void *data) {
  uint64_t w = want + 1;
  for (int spins = 0; spins < SPIN_LIMIT; spins++) {
    uint64_t t = atomic_load_explicit(tag, memory_order_acquire);
    if (t == w || (!(t & BUSY) && t > w)) return;   /* current, or a newer period */
    if (t & BUSY) continue;
    if (atomic_compare_exchange_weak_explicit(tag, &t, w | BUSY, memory_order_acq_rel,
                                              memory_order_relaxed)) {
      clear(data);
      atomic_store_explicit(tag, w, memory_order_release);
      return;
    }
  }
}

/* Whether a tag holds one of the `n` periods ending at `cur`. */
static int live(uint64_t tag, uint64_t cur, uint32_t n) {
  if (tag & BUSY || tag == 0) return 0;
  uint64_t p = tag - 1;
  return p <= cur && cur - p < n;
}

/* ---------------------------------------------------------------------
 * Latency histograms: log-linear buckets from the double's bits
 * ------------------------------------------------------------------- */

/* Bucket of a latency: 8 per octave from 2^VM_MIN_EXP ms; 0 below, the
 * last bucket above. */
static int hbucket(double ms) {
  uint64_t bits;
  if (!(ms > 0)) return 0;
  memcpy(&bits, &ms, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  if (e < VM_MIN_EXP) return 0;
  int i = (e - VM_MIN_EXP) * VM_OCT_SUB + (int)((bits >> 49) & 7) + 1;
  return i >= VM_HBUCKETS ? VM_HBUCKETS - 1 : i;
}

/* 2^e for a small exponent, without libm. */
static double pow2(int e) {
  uint64_t bits = (uint64_t)(e + 1023) << 52;
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* Lower and upper bound of bucket i. */
static void hbounds(int i, double *lo, double *hi) {
  if (i == 0) { *lo = 0; *hi = pow2(VM_MIN_EXP); return; }
  int k = i - 1, e = k / VM_OCT_SUB + VM_MIN_EXP, sub = k % VM_OCT_SUB;
  *lo = pow2(e) * (1.0 + sub / (double)VM_OCT_SUB);
  *hi = i == VM_HBUCKETS - 1 ? *lo * 2 : pow2(e) * (1.0 + (sub + 1) / (double)VM_OCT_SUB);
}

static void clear_slot(void *p) {
  vm_slot *s = p;
  atomic_store_explicit(&s->calls, 0, memory_order_relaxed);
  atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
  for (int i = 0; i < VM_HBUCKETS; i++)
    atomic_store_explicit(&s->hist[i], 0, memory_order_relaxed);
}

typedef struct window_sum {
  uint64_t calls, fails, ok;      /* over the live slots */
  uint64_t until;                 /* when the oldest slot with calls expires */
  uint64_t hist[VM_HBUCKETS];
} window_sum;

static void sum_window(const lane_runtime *rt, const vm_model *m, uint64_t now, window_sum *w) {
  uint64_t cur = now / rt->slot_ms;
  memset(w, 0, sizeof *w);
  for (int i = 0; i < VM_SLOTS; i++) {
    const vm_slot *s = &m->slot[i];
    uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
    if (!live(tag, cur, VM_SLOTS)) continue;
    uint64_t ends = (tag - 1 + VM_SLOTS) * rt->slot_ms;
    if (atomic_load_explicit(&s->calls, memory_order_relaxed) && (!w->until || ends < w->until))
      w->until = ends;
    w->calls += atomic_load_explicit(&s->calls, memory_order_relaxed);
    w->fails += atomic_load_explicit(&s->fails, memory_order_relaxed);
    for (int b = 0; b < VM_HBUCKETS; b++) {
      uint64_t c = atomic_load_explicit(&s->hist[b], memory_order_relaxed);
      w->hist[b] += c;
      w->ok += c;
    }
  }
}

/* The q-quantile of the window's latencies: the middle of the bucket it
 * falls in, so the estimate is within half a bucket (6.25%) whatever the
 * calls' spread inside the bucket. */
static double quantile(const window_sum *w, double q) {
  double rank = q * (double)w->ok, cum = 0;
  for (int b = 0; b < VM_HBUCKETS; b++) {
    if (!w->hist[b]) continue;
    if (cum + (double)w->hist[b] >= rank) {
      double lo, hi;
      hbounds(b, &lo, &hi);
      return (lo + hi) / 2;
    }
    cum += (double)w->hist[b];
  }
  return 0;
}

static uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static double bitsd(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/* Recomputes a model's cached figures: done by observers, off the
 * decision path, so decisions read four atomics. */
static void refresh(lane_runtime *rt, vm_model *m, uint64_t now) {
  window_sum w;
  sum_window(rt, m, now, &w);
  atomic_store_explicit(&m->p50, dbits(quantile(&w, 0.50)), memory_order_relaxed);
  atomic_store_explicit(&m->p95, dbits(quantile(&w, 0.95)), memory_order_relaxed);
  atomic_store_explicit(&m->err, dbits(w.calls ? (double)w.fails / (double)w.calls : 0),
                        memory_order_relaxed);
  atomic_store_explicit(&m->samples, w.calls, memory_order_relaxed);
  atomic_store_explicit(&m->lat_samples, w.ok, memory_order_relaxed);
  atomic_store_explicit(&m->valid_until, w.until, memory_order_relaxed);
  atomic_store_explicit(&m->cached_at, now ? now : 1, memory_order_release);
}

/* ---------------------------------------------------------------------
 * Breakers
 * ------------------------------------------------------------------- */
static void breaker_fail(lane_runtime *rt, vm_model *m, uint64_t now, uint64_t fails) {
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  if (st == LANE_BREAKER_OPEN) return;
  if (st == LANE_BREAKER_CLOSED && fails < rt->opt.breaker_failures) return;
  atomic_store_explicit(&m->until, now + rt->opt.breaker_cooldown_ms, memory_order_relaxed);
  atomic_store_explicit(&m->state, LANE_BREAKER_OPEN, memory_order_release);
}

static void breaker_ok(vm_model *m) {
  uint32_t st = LANE_BREAKER_HALF_OPEN;
  if (!atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_CLOSED,
                                               memory_order_acq_rel, memory_order_relaxed))
    return;
  for (int i = 0; i < VM_SLOTS; i++)   /* a fresh start: old failures are forgiven */
    atomic_store_explicit(&m->slot[i].fails, 0, memory_order_relaxed);
}

int vm_health(const lane_runtime *rt, uint32_t model, uint64_t now) {
  const vm_model *m = &rt->m[model];
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  if (st == LANE_BREAKER_CLOSED) return 1;
  return now >= atomic_load_explicit(&m->until, memory_order_relaxed) ? 2 : 0;
}

int vm_claim_probe(lane_runtime *rt, uint32_t model, uint64_t now) {
  vm_model *m = &rt->m[model];
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  uint64_t until = atomic_load_explicit(&m->until, memory_order_relaxed);
  if (st == LANE_BREAKER_CLOSED) return 1;
  if (now < until) return 0;
  /* Cooldown over (open) or the last probe never reported (half-open):
   * move the deadline first, so one claimant wins. */
  if (!atomic_compare_exchange_strong_explicit(&m->until, &until,
                                               now + rt->opt.breaker_cooldown_ms,
                                               memory_order_acq_rel, memory_order_relaxed))
    return 0;
  st = LANE_BREAKER_OPEN;
  atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_HALF_OPEN,
                                          memory_order_acq_rel, memory_order_relaxed);
  return 1;
}

/* ---------------------------------------------------------------------
 * Live figures as decisions see them
 * ------------------------------------------------------------------- */
/* Whether the cached figures describe the window as of now with enough
 * calls. A cache whose oldest slot has left the window is recomputed here,
 * once (the first reader after it expired pays about a microsecond). */
static int fresh(lane_runtime *rt, vm_model *m, uint64_t now, uint64_t *n) {
  uint64_t at = atomic_load_explicit(&m->cached_at, memory_order_acquire);
  if (at && now >= atomic_load_explicit(&m->valid_until, memory_order_relaxed) &&
      atomic_load_explicit(&m->samples, memory_order_relaxed))
    refresh(rt, m, now);
  *n = atomic_load_explicit(&m->samples, memory_order_relaxed);
  return at != 0 && *n >= rt->opt.min_samples;
}

double vm_latency(lane_runtime *rt, uint32_t model, uint64_t now, int p95) {
  vm_model *m = &rt->m[model];
  const bc_model *md = &rt->prog->im.models[model];
  uint64_t n;
  if (!fresh(rt, m, now, &n) ||
      atomic_load_explicit(&m->lat_samples, memory_order_relaxed) < rt->opt.min_samples)
    return p95 ? md->p95 : md->p50;
  return bitsd(atomic_load_explicit(p95 ? &m->p95 : &m->p50, memory_order_relaxed));
}

double vm_error_rate(lane_runtime *rt, uint32_t model, uint64_t now) {
  vm_model *m = &rt->m[model];
  uint64_t n;
  if (!fresh(rt, m, now, &n)) return 0;
  return bitsd(atomic_load_explicit(&m->err, memory_order_relaxed));
}

/* ---------------------------------------------------------------------
 * Observations
 * ------------------------------------------------------------------- */
void lane_observe(lane_runtime *rt, int model, double latency_ms, int status) {
  if (!rt || model < 0 || (uint32_t)model >= rt->nmodels) return;
  vm_model *m = &rt->m[model];
  uint64_t now = vm_now(rt), cur = now / rt->slot_ms;
  vm_slot *s = &m->slot[cur % VM_SLOTS];
  int fail = status != LANE_CALL_OK && status != LANE_CALL_CLIENT_ERROR;
  claim(&s->tag, cur, clear_slot, s);
  atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
  if (fail) atomic_fetch_add_explicit(&s->fails, 1, memory_order_relaxed);
  else if (status == LANE_CALL_OK)   /* latency of answers only */
    atomic_fetch_add_explicit(&s->hist[hbucket(latency_ms)], 1, memory_order_relaxed);
  refresh(rt, m, now);
  if (fail) {
    window_sum w;
    sum_window(rt, m, now, &w);
    breaker_fail(rt, m, now, w.fails);
  } else if (status == LANE_CALL_OK) {
    breaker_ok(m);
  }
}

int lane_model_stats(const lane_runtime *crt, int model, lane_live_stats *out) {
  /* Reading may refresh an expired cache: atomics only, as decisions do. */
  lane_runtime *rt = (lane_runtime *)crt;
  if (!rt || !out || model < 0 || (uint32_t)model >= rt->nmodels) return LANE_EARG;
  uint64_t now = vm_now(rt), n;
  vm_model *m = &rt->m[model];
  out->p50 = vm_latency(rt, (uint32_t)model, now, 0);
  out->p95 = vm_latency(rt, (uint32_t)model, now, 1);
  out->error_rate = vm_error_rate(rt, (uint32_t)model, now);
  fresh(rt, m, now, &n);
  out->samples = atomic_load_explicit(&m->cached_at, memory_order_relaxed) ? n : 0;
  out->state = (int)atomic_load_explicit(&m->state, memory_order_acquire);
  out->until_ms = out->state ? atomic_load_explicit(&m->until, memory_order_relaxed) : 0;
  return LANE_OK;
}

int lane_runtime_set_model_stats(lane_runtime *rt, int model, const lane_live_stats *st) {
  if (!rt || !st || model < 0 || (uint32_t)model >= rt->nmodels || st->state < 0 ||
      st->state > LANE_BREAKER_HALF_OPEN)
    return LANE_EARG;
  vm_model *m = &rt->m[model];
  uint64_t now = vm_now(rt);
  for (int i = 0; i < VM_SLOTS; i++) {
    clear_slot(&m->slot[i]);
    atomic_store_explicit(&m->slot[i].tag, 0, memory_order_relaxed);
  }
  atomic_store_explicit(&m->p50, dbits(st->p50), memory_order_relaxed);
  atomic_store_explicit(&m->p95, dbits(st->p95), memory_order_relaxed);
  atomic_store_explicit(&m->err, dbits(st->error_rate), memory_order_relaxed);
  atomic_store_explicit(&m->samples, st->samples, memory_order_relaxed);
  atomic_store_explicit(&m->lat_samples, st->samples, memory_order_relaxed);
  atomic_store_explicit(&m->valid_until, now + rt->opt.window_ms, memory_order_relaxed);
  atomic_store_explicit(&m->cached_at, st->samples ? (now ? now : 1) : 0, memory_order_release);
  atomic_store_explicit(&m->until, st->until_ms, memory_order_relaxed);
  atomic_store_explicit(&m->state, (uint32_t)st->state, memory_order_release);
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Budgets
 * ------------------------------------------------------------------- */
int lane_budget_count(const lane_program *p) { return p ? (int)p->im.nbudgets : 0; }

const char *lane_budget_name(const lane_program *p, int b) {
  if (!p || b < 0 || (uint32_t)b >= p->im.nbudgets) return NULL;
  return p->im.str[p->im.budgets[b].name].p;
}

int lane_budget(const lane_program *p, const char *name) {
  for (int b = 0; name && b < lane_budget_count(p); b++)
    if (!strcmp(lane_budget_name(p, b), name)) return b;
  return -1;
}

static uint64_t nonzero(uint64_t h) { return h ? h : 1; }

/* The key hash of a request's key field for budget b; 0 if it is unset. */
static uint64_t request_key(const lane_program *p, uint32_t b, const lane_request *r) {
  uint32_t f = p->im.budgets[b].key_field;
  if (f >= p->im.nfields || !(r->set >> f & 1)) return 0;
  if (p->im.fields[f].type == LANE_T_STRING)
    return nonzero(bc_fnv1a64(r->v[f].s.p, r->v[f].s.n, BC_FNV_OFFSET));
  return nonzero(bc_splitmix64(r->v[f].u));
}

uint64_t lane_budget_key_hash(const lane_program *p, int budget, const char *key, size_t n) {
  if (!p || !key || budget < 0 || (uint32_t)budget >= p->im.nbudgets) return 0;
  uint32_t f = p->im.budgets[budget].key_field;
  if (f < p->im.nfields && p->im.fields[f].type != LANE_T_STRING) {
    char buf[32];
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, key, n);
    buf[n] = 0;
    return nonzero(bc_splitmix64((uint64_t)strtoll(buf, NULL, 10)));
  }
  return nonzero(bc_fnv1a64(key, n, BC_FNV_OFFSET));
}

/* The slot of key h in budget b: its own, claimed if claim is set; the
 * shared overflow slot (index cap) when its probe run is full; -1 when
 * the key has never been charged. */
static long find_key(vm_budget_rt *b, uint64_t h, int claim_it) {
  uint32_t mask = b->cap - 1, probes = b->cap < VM_PROBES ? b->cap : VM_PROBES;
  for (uint32_t k = 0, i = (uint32_t)h & mask; k < probes; k++, i = (i + 1) & mask) {
    uint64_t cur = atomic_load_explicit(&b->keys[i], memory_order_acquire);
    if (cur == h) return i;
    if (cur != 0) continue;
    if (!claim_it) return -1;
    if (atomic_compare_exchange_strong_explicit(&b->keys[i], &cur, h, memory_order_acq_rel,
                                                memory_order_acquire) || cur == h)
      return i;
  }
  return b->cap;   /* full: the overflow account */
}

static void clear_entry(void *p) {
  atomic_store_explicit(&((vm_entry *)p)->nanos, 0, memory_order_relaxed);
}

static int64_t key_spend(const vm_budget_rt *b, long slot, uint64_t now) {
  uint64_t cur = now / b->sub_ms;
  int64_t sum = 0;
  for (uint32_t i = 0; i < b->ring; i++) {
    const vm_entry *e = &b->entries[(size_t)slot * b->ring + i];
    if (!live(atomic_load_explicit(&e->tag, memory_order_acquire), cur, b->span)) continue;
    int64_t v = atomic_load_explicit(&e->nanos, memory_order_relaxed);
    sum = sum > INT64_MAX - v ? INT64_MAX : sum + v;
  }
  return sum;
}

double vm_budget_read(const lane_runtime *rt, uint32_t budget, const lane_request *r,
                      int which, uint64_t now) {
  const bc_budget *bb = &rt->prog->im.budgets[budget];
  uint64_t h = request_key(rt->prog, budget, r);
  long slot = h ? find_key(&rt->b[budget], h, 0) : -1;
  double spent = slot < 0 ? 0 : (double)key_spend(&rt->b[budget], slot, now) / 1e9;
  if (which == 0) return spent;
  if (which == 1) return spent < bb->limit ? bb->limit - spent : 0;
  return bb->limit > 0 ? spent / bb->limit : 0;
}

/* Dollars to nano-dollars, rounded; -1 if negative, not finite or huge. */
static int64_t to_nanos(double dollars) {
  if (!(dollars >= 0 && dollars < 9.2e9)) return -1;
  return (int64_t)(dollars * 1e9 + 0.5);
}

static void add_spend(vm_budget_rt *b, long slot, uint64_t now, int64_t nanos) {
  uint64_t cur = now / b->sub_ms;
  vm_entry *e = &b->entries[(size_t)slot * b->ring + cur % b->ring];
  claim(&e->tag, cur, clear_entry, e);
  /* Saturate rather than wrap: a runaway total must still read as over. */
  int64_t old = atomic_load_explicit(&e->nanos, memory_order_relaxed), sum;
  do {
    sum = old > INT64_MAX - nanos ? INT64_MAX : old + nanos;
  } while (!atomic_compare_exchange_weak_explicit(&e->nanos, &old, sum, memory_order_relaxed,
                                                  memory_order_relaxed));
}

int lane_charge(lane_runtime *rt, const lane_request *r, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || !r || r->prog != rt->prog || nanos < 0) return LANE_EARG;
  uint64_t now = vm_now(rt);
  for (uint32_t b = 0; b < rt->nbudgets; b++) {
    uint64_t h = request_key(rt->prog, b, r);
    if (h) add_spend(&rt->b[b], find_key(&rt->b[b], h, 1), now, nanos);
  }
  return LANE_OK;
}

int lane_budget_spent(const lane_runtime *rt, int budget, uint64_t h, double *dollars) {
  if (!rt || !dollars || budget < 0 || (uint32_t)budget >= rt->nbudgets || !h) return LANE_EARG;
  long slot = find_key(&rt->b[budget], h, 0);
  *dollars = slot < 0 ? 0 : (double)key_spend(&rt->b[budget], slot, vm_now(rt)) / 1e9;
  return LANE_OK;
}

/* Sets a key's spend in the current window to nanos: the current period's
 * entry holds it all, older ones are cleared. */
static void put_spend(vm_budget_rt *b, long slot, uint64_t now, int64_t nanos) {
  uint64_t cur = now / b->sub_ms;
  for (uint32_t i = 0; i < b->ring; i++) {
    vm_entry *e = &b->entries[(size_t)slot * b->ring + i];
    atomic_store_explicit(&e->nanos, 0, memory_order_relaxed);
    atomic_store_explicit(&e->tag, 0, memory_order_release);
  }
  vm_entry *e = &b->entries[(size_t)slot * b->ring + cur % b->ring];
  atomic_store_explicit(&e->nanos, nanos, memory_order_relaxed);
  atomic_store_explicit(&e->tag, cur + 1, memory_order_release);
}

int lane_runtime_set_spend(lane_runtime *rt, int budget, uint64_t h, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || budget < 0 || (uint32_t)budget >= rt->nbudgets || nanos < 0) return LANE_EARG;
  vm_budget_rt *b = &rt->b[budget];
  put_spend(b, h ? find_key(b, h, 1) : (long)b->cap, vm_now(rt), nanos);   /* 0: overflow */
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------- */
static int init_budgets(lane_runtime *rt) {
  const bc_image *im = &rt->prog->im;
  rt->nbudgets = im->nbudgets;
  rt->b = calloc(im->nbudgets + 1, sizeof *rt->b);
  if (!rt->b) return -1;
  for (uint32_t i = 0; i < im->nbudgets; i++) {
    vm_budget_rt *b = &rt->b[i];
    double wd = im->budgets[i].window_ms;   /* verified finite and >= 0, not bounded */
    uint64_t w = wd < 18446744073709551616.0 ? (uint64_t)wd : UINT64_MAX;
    int rolling = (im->budgets[i].flags & BC_BUDGET_ROLLING) != 0;
    b->ring = rolling ? VM_ROLLING : 2;
    b->span = rolling ? VM_ROLLING : 1;     /* periods that make the window */
    b->sub_ms = rolling ? w / VM_ROLLING : w;
    if (b->sub_ms == 0) b->sub_ms = 1;
    b->cap = pow2_at_least(rt->opt.budget_keys);
    b->keys = calloc((size_t)b->cap + 1, sizeof *b->keys);
    b->entries = calloc(((size_t)b->cap + 1) * b->ring, sizeof *b->entries);
    if (!b->keys || !b->entries) return -1;
  }
  return 0;
}

lane_runtime *lane_runtime_new_with(const lane_program *p, const lane_runtime_options *opt,
                                    lane_error *err) {
  if (!p) { set_err(err, LANE_EARG, "no program given%s", NULL); return NULL; }
  lane_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) { set_err(err, LANE_ENOMEM, "out of memory creating a runtime%s", NULL); return NULL; }
  if (opt) rt->opt = *opt;
  if (!rt->opt.clock) rt->opt.clock = system_clock;
  if (!rt->opt.window_ms) rt->opt.window_ms = 60000;
  if (rt->opt.window_ms < VM_SLOTS) rt->opt.window_ms = VM_SLOTS;
  if (!rt->opt.min_samples) rt->opt.min_samples = 20;
  if (!rt->opt.breaker_failures) rt->opt.breaker_failures = 5;
  if (!rt->opt.breaker_cooldown_ms) rt->opt.breaker_cooldown_ms = 30000;
  if (!rt->opt.budget_keys) rt->opt.budget_keys = 4096;
  rt->prog = p;
  rt->slot_ms = rt->opt.window_ms / VM_SLOTS;
  rt->nmodels = p->im.nmodels;
  rt->m = calloc(rt->nmodels + 1, sizeof *rt->m);   /* zero: closed, no data */
  if (!rt->m || init_budgets(rt) != 0) {
    lane_runtime_free(rt);
    set_err(err, LANE_ENOMEM, "out of memory creating a runtime%s", NULL);
    return NULL;
  }
  return rt;
}

lane_runtime *lane_runtime_new(const lane_program *p, lane_error *err) {
  return lane_runtime_new_with(p, NULL, err);
}

void lane_runtime_free(lane_runtime *rt) {
  if (!rt) return;
  for (uint32_t i = 0; rt->b && i < rt->nbudgets; i++) {
    free(rt->b[i].keys);
    free(rt->b[i].entries);
  }
  free(rt->b);
  free(rt->m);
  free(rt);
}

/* ---------------------------------------------------------------------
 * Saving and loading budget spend
 *
 * File: "LANERT\r\n", u32 version 1, u32 budgets, u64 program checksum,
 * then per budget: u32 name length, name, u32 ring, u64 period ms, u32
 * keys, and per key: u64 hash, ring x { u64 tag, i64 nano-dollars }; last
 * u64 FNV-1a 64 of everything before it. Little-endian throughout.
 * ------------------------------------------------------------------- */
#define RT_MAGIC "LANERT\r\n"
#define RT_VERSION 1u

typedef struct wbuf { unsigned char *p; size_t n, cap; int oom; } wbuf;

static void wput(wbuf *w, const void *src, size_t n) {
  if (w->oom) return;
  if (w->n + n > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 4096;
    while (cap < w->n + n) cap *= 2;
    unsigned char *p = realloc(w->p, cap);
    if (!p) { w->oom = 1; return; }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
}

static void w32(wbuf *w, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  wput(w, b, 4);
}

static void w64(wbuf *w, uint64_t v) { w32(w, (uint32_t)v); w32(w, (uint32_t)(v >> 32)); }

static int key_used(const vm_budget_rt *b, uint32_t slot) {
  for (uint32_t i = 0; i < b->ring; i++)
    if (atomic_load_explicit(&b->entries[(size_t)slot * b->ring + i].tag, memory_order_acquire))
      return 1;
  return 0;
}

int lane_runtime_save(const lane_runtime *rt, const char *path, lane_error *err) {
  if (!rt || !path) { set_err(err, LANE_EARG, "no runtime or path%s", NULL); return LANE_EARG; }
  wbuf w = {0};
  wput(&w, RT_MAGIC, 8);
  w32(&w, RT_VERSION);
  w32(&w, rt->nbudgets);
  w64(&w, rt->prog->checksum);
  for (uint32_t i = 0; i < rt->nbudgets; i++) {
    const vm_budget_rt *b = &rt->b[i];
    const bc_str *name = &rt->prog->im.str[rt->prog->im.budgets[i].name];
    uint32_t nkeys = 0;
    for (uint32_t s = 0; s <= b->cap; s++) nkeys += key_used(b, s);
    w32(&w, name->len);
    wput(&w, name->p, name->len);
    w32(&w, b->ring);
    w64(&w, b->sub_ms);
    w32(&w, nkeys);
    for (uint32_t s = 0; s <= b->cap; s++) {
      if (!key_used(b, s)) continue;
      w64(&w, s == b->cap ? 0 : atomic_load_explicit(&b->keys[s], memory_order_acquire));
      for (uint32_t k = 0; k < b->ring; k++) {
        const vm_entry *e = &b->entries[(size_t)s * b->ring + k];
        uint64_t tag = atomic_load_explicit(&e->tag, memory_order_acquire) & ~BUSY;
        w64(&w, tag);
        w64(&w, (uint64_t)atomic_load_explicit(&e->nanos, memory_order_relaxed));
      }
    }
  }
  w64(&w, bc_fnv1a64(w.p, w.n, BC_FNV_OFFSET));
  if (w.oom) { free(w.p); set_err(err, LANE_ENOMEM, "out of memory saving%s", NULL); return LANE_ENOMEM; }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  int ok = f && fwrite(w.p, 1, w.n, f) == w.n;
  if (f && fclose(f) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  free(w.p);
  if (!ok) {
    remove(tmp);
    set_err(err, LANE_EARG, "cannot write '%s'", path);
    return LANE_EARG;
  }
  return LANE_OK;
}

typedef struct rbuf { const unsigned char *p; size_t n, at; int bad; } rbuf;

static uint64_t r64n(rbuf *r, size_t n) {
  uint64_t v = 0;
  if (r->bad || r->n - r->at < n) { r->bad = 1; return 0; }
  for (size_t i = 0; i < n; i++) v |= (uint64_t)r->p[r->at + i] << (8 * i);
  r->at += n;
  return v;
}

static uint32_t r32(rbuf *r) { return (uint32_t)r64n(r, 4); }
static uint64_t r64(rbuf *r) { return r64n(r, 8); }

/* One pass over a saved file: checks everything, and applies it when
 * apply is set (only after a checking pass succeeded). */
static int read_saved(lane_runtime *rt, rbuf *r, int apply, lane_error *err) {
  char what[160];
  r->at = 8;
  if (r32(r) != RT_VERSION) { set_err(err, LANE_EFORMAT, "unsupported runtime file version%s", NULL); return LANE_EFORMAT; }
  uint32_t nb = r32(r);
  if (r64(r) != rt->prog->checksum) {
    set_err(err, LANE_EFORMAT, "the file was saved for another program (checksum differs)%s", NULL);
    return LANE_EFORMAT;
  }
  if (nb != rt->nbudgets) {
    snprintf(what, sizeof what, "%u budgets in the file, %u in the program", nb, rt->nbudgets);
    set_err(err, LANE_EFORMAT, "%s", what);
    return LANE_EFORMAT;
  }
  for (uint32_t i = 0; i < nb && !r->bad; i++) {
    vm_budget_rt *b = &rt->b[i];
    const bc_str *name = &rt->prog->im.str[rt->prog->im.budgets[i].name];
    uint32_t len = r32(r);
    if (r->bad || len != name->len || r->n - r->at < len || memcmp(r->p + r->at, name->p, len)) {
      set_err(err, LANE_EFORMAT, "budget '%s' is not where the file has it", name->p);
      return LANE_EFORMAT;
    }
    r->at += len;
    if (r32(r) != b->ring || r64(r) != b->sub_ms) {
      set_err(err, LANE_EFORMAT, "budget '%s' has another window in the file", name->p);
      return LANE_EFORMAT;
    }
    uint32_t nkeys = r32(r);
    if (r->bad || (uint64_t)nkeys * (8 + 16ull * b->ring) > r->n - r->at) { r->bad = 1; break; }
    for (uint32_t k = 0; k < nkeys; k++) {
      uint64_t h = r64(r);
      long slot = apply ? (h ? find_key(b, h, 1) : (long)b->cap) : 0;
      for (uint32_t e = 0; e < b->ring; e++) {
        uint64_t tag = r64(r);
        int64_t nanos = (int64_t)r64(r);
        if (tag & BUSY || nanos < 0) r->bad = 1;
        if (!apply || r->bad) continue;
        vm_entry *en = &b->entries[(size_t)slot * b->ring + e];
        uint64_t have = atomic_load_explicit(&en->tag, memory_order_relaxed);
        if (slot == (long)b->cap && tag && have == tag) {   /* keys sharing the overflow */
          int64_t old = atomic_load_explicit(&en->nanos, memory_order_relaxed);
          nanos = old > INT64_MAX - nanos ? INT64_MAX : old + nanos;
        } else if (slot == (long)b->cap && have > tag) {
          continue;                                         /* keep the newer period */
        }
        atomic_store_explicit(&en->nanos, nanos, memory_order_relaxed);
        atomic_store_explicit(&en->tag, tag, memory_order_release);
      }
    }
  }
  if (r->bad || r->at != r->n - 8) {
    set_err(err, LANE_EFORMAT, "truncated or corrupt runtime file%s", NULL);
    return LANE_EFORMAT;
  }
  return LANE_OK;
}

int lane_runtime_load(lane_runtime *rt, const char *path, lane_error *err) {
  if (!rt || !path) { set_err(err, LANE_EARG, "no runtime or path%s", NULL); return LANE_EARG; }
  FILE *f = fopen(path, "rb");
  if (!f) { set_err(err, LANE_EARG, "cannot read '%s'", path); return LANE_EARG; }
  size_t cap = 1 << 16, n = 0;
  unsigned char *p = malloc(cap);
  while (p) {
    n += fread(p + n, 1, cap - n, f);
    if (n < cap) break;
    unsigned char *q = cap < ((size_t)1 << 31) ? realloc(p, cap * 2) : NULL;
    if (!q) { free(p); p = NULL; break; }
    p = q;
    cap *= 2;
  }
  fclose(f);
  if (!p) { set_err(err, LANE_ENOMEM, "out of memory reading '%s'", path); return LANE_ENOMEM; }
  rbuf r = {p, n, 0, 0};
  int rc = LANE_EFORMAT;
  if (n < 8 + 24 || memcmp(p, RT_MAGIC, 8) != 0)
    set_err(err, LANE_EFORMAT, "'%s' is not a lane runtime file", path);
  else if (bc_fnv1a64(p, n - 8, BC_FNV_OFFSET) != (r.at = n - 8, r64(&r)))
    set_err(err, LANE_EFORMAT, "checksum mismatch: '%s' is corrupted", path);
  else if ((rc = read_saved(rt, &r, 0, err)) == LANE_OK)
    rc = read_saved(rt, &r, 1, err);
  free(p);
  return rc;
}

/* ---------------------------------------------------------------------
 * Snapshots (JSON)
 * ------------------------------------------------------------------- */
typedef struct jbuf { char *p; size_t cap, n; } jbuf;

static void jprintf(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(jbuf *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(j->n < j->cap ? j->p + j->n : NULL, j->n < j->cap ? j->cap - j->n : 0, fmt, ap);
  va_end(ap);
  if (k > 0) j->n += (size_t)k;
}

static void jstring(jbuf *j, const bc_str *s) {
  jprintf(j, "\"");
  for (uint32_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->p[i];
    if (c == '"' || c == '\\') jprintf(j, "\\%c", c);
    else if (c < 0x20) jprintf(j, "\\u%04x", c);
    else jprintf(j, "%c", c);
  }
  jprintf(j, "\"");
}

size_t lane_runtime_snapshot(const lane_runtime *rt, char *buf, size_t cap) {
  static const char *const states[] = {"closed", "open", "half_open"};
  jbuf j = {buf, buf ? cap : 0, 0};
  if (!rt) return 0;
  uint64_t now = vm_now(rt);
  const bc_image *im = &rt->prog->im;
  jprintf(&j, "{\"now_ms\": %llu, \"program\": \"%016llx\",\n \"options\": {\"window_ms\": %u, "
              "\"min_samples\": %u, \"breaker_failures\": %u, \"breaker_cooldown_ms\": %u, "
              "\"budget_keys\": %u},\n \"models\": [",
          (unsigned long long)now, (unsigned long long)rt->prog->checksum, rt->opt.window_ms,
          rt->opt.min_samples, rt->opt.breaker_failures, rt->opt.breaker_cooldown_ms,
          rt->opt.budget_keys);
  int first = 1;
  for (uint32_t m = 0; m < rt->nmodels; m++) {
    lane_live_stats st;
    lane_model_stats(rt, (int)m, &st);
    if (!st.samples && st.state == LANE_BREAKER_CLOSED) continue;   /* nothing live */
    jprintf(&j, "%s\n  {\"model\": ", first ? "" : ",");
    jstring(&j, &im->str[im->models[m].name]);
    jprintf(&j, ", \"p50\": %.17g, \"p95\": %.17g, \"error_rate\": %.17g, \"samples\": %llu, "
                "\"state\": \"%s\", \"until_ms\": %llu}",
            st.p50, st.p95, st.error_rate, (unsigned long long)st.samples, states[st.state],
            (unsigned long long)st.until_ms);
    first = 0;
  }
  jprintf(&j, "%s], \"budgets\": [", first ? "" : "\n");
  for (uint32_t i = 0; i < rt->nbudgets; i++) {
    const vm_budget_rt *b = &rt->b[i];
    jprintf(&j, "%s\n  {\"budget\": ", i ? "," : "");
    jstring(&j, &im->str[im->budgets[i].name]);
    jprintf(&j, ", \"keys\": [");
    int k = 0;
    for (uint32_t s = 0; s <= b->cap; s++) {
      int64_t nanos = key_used(b, s) ? key_spend(b, (long)s, now) : 0;
      if (!nanos) continue;
      uint64_t h = s == b->cap ? 0 : atomic_load_explicit(&b->keys[s], memory_order_acquire);
      jprintf(&j, "%s{\"key_hash\": \"%016llx\", \"spent\": %.17g}", k++ ? ", " : "",
              (unsigned long long)h, (double)nanos / 1e9);
    }
    jprintf(&j, "]}");
  }
  jprintf(&j, "%s]}\n", rt->nbudgets ? "\n" : "");
  return j.n;
}

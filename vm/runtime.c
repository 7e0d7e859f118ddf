/*
 * runtime.c -- live state for decisions: per-model latency histograms over
 * a sliding window, error rates and circuit breakers; per-key budget spend
 * in integer nano-dollars; saving, loading and carrying spend to another
 * program's runtime; snapshots (saving, loading, carrying and snapshots
 * are in state.c; runtime.h is what the two share).
 *
 * Everything a decision reads is updated with atomics and read without
 * locks. Windows are rings of time slots tagged with the period they hold;
 * the first writer of a new period claims the slot by compare-and-swap,
 * clears it and publishes the tag, and others wait the few instructions
 * that takes. So concurrent updates within a period lose nothing, and a
 * reader sees each slot as of one period ("consistent enough": a decision
 * may mix slots updated a moment apart, never a half-cleared one's data
 * under a wrong tag).
 *
 * Budget key tables (vm/README.md, "Budget keys", has the short version):
 *
 *   - Slots come in levels allocated when a key first needs them: 16, 48,
 *     192, 768, ... slots (each three times all before it), up to
 *     budget_keys in all. A key's path is a probe run of VM_PROBES slots in
 *     each level in turn. A slot goes from unused (hash 0) to holding a key
 *     and never back, so a key always sits in its run of one level before
 *     any unused slot of that run: lookups read each run up to there.
 *   - A charge pins its key's slot (gate + 1), checks that the slot still
 *     holds its key, adds, and unpins. Taking a slot over -- from a key
 *     whose window has passed (reclaim), to move a duplicate, to replace a
 *     key's spend (load, set_spend) -- needs the gate at 0 and sets
 *     VM_HELD, which makes later pins back off. So a take-over never
 *     overlaps a charge, and a charge that finds its slot held, or holding
 *     another key once pinned, looks its key up again: no add lands in a
 *     slot that changed hands, and only spend whose window has passed is
 *     ever cleared. A charge that cannot settle in 16 tries, or finds no
 *     slot, goes to the overflow account: recorded, never lost.
 *   - A new key takes the first slot of its path that is unused or
 *     reclaimable (its newest period is out of the window, or it is
 *     VM_TOMB). Two threads placing the same new key at once could pick
 *     different slots only if a slot became reclaimable in between. Every
 *     placement bumps `assigns`; a placer that sees another placement
 *     between its lookup and its own scans the path and moves any later
 *     copy of its key into the first. Of two racing placers the later sees
 *     both, so no key keeps two slots (a move that cannot get its slot --
 *     a charge stuck inside it -- counts in `unmerged`, and reads then add
 *     up every slot of a key, which is exact either way).
 *   - Readers take the slot holding the key (the only one, once a racing
 *     placement is merged; lookups may read levels in any order, see
 *     probe), read its entries and check the hash again: a slot taken over
 *     meanwhile reads 0 (its spend had expired, which is why it was taken
 *     over).
 *   - Budget periods never go back: a budget's current period is the later
 *     of the clock's and the newest period holding spend (`top`), so spend
 *     recorded under a clock that has since stepped back stays visible.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define SPIN_LIMIT 100000         /* waits for a clearing slot, then goes on */
#define TRIES 16                  /* a charge's lookups before the overflow account */


/* ---------------------------------------------------------------------
 * Clock and options
 * ------------------------------------------------------------------- */
uint64_t vm_now(const lane_runtime *rt) { return rt->opt.clock(rt->opt.clock_ctx); }

uint64_t lane_runtime_now(const lane_runtime *rt) { return rt ? vm_now(rt) : 0; }



static uint32_t pow2_at_least(uint32_t n) {
  uint32_t c = 16;
  while (c < n && c < VM_MAX_KEYS) c <<= 1;
  return c;
}

/* Backs off while another thread finishes a few stores: spins, then
 * yields the processor to it. */
static void backoff(unsigned spins) {
  if (spins >= 64) sched_yield();
}

static void amax(atomic_uint_least64_t *a, uint64_t v) {
  uint64_t o = LD(a);
  while (o < v && !atomic_compare_exchange_weak_explicit(a, &o, v, memory_order_acq_rel,
                                                         memory_order_relaxed)) {
  }
}


/* ---------------------------------------------------------------------
 * Tagged slots
 * ------------------------------------------------------------------- */

/* Makes a latency slot hold period `want` (stored as want + 1), clearing
 * its data with clear(data) when it held an older period. A later period
 * there (a whole window later: the ring has VM_SLOTS slots) means either
 * that this thread read the clock a window ago, and its call joins the
 * newer period as it always did, or that the clock stepped back by a
 * window or more: the clock, read again, tells which, and in the second
 * case the slot holds calls from a time that has not come, which would
 * hide this one -- it is cleared and reused. */
static void claim(const lane_runtime *rt, atomic_uint_least64_t *tag, uint64_t want,
                  void (*clear)(void *), void *data) {
  uint64_t w = want + 1;
  for (int spins = 0; spins < SPIN_LIMIT; spins++) {
    uint64_t t = atomic_load_explicit(tag, memory_order_acquire);
    if (t == w) return;
    if (t & BUSY) continue;
    if (t > w && vm_now(rt) / rt->slot_ms + 1 >= t) return;   /* current, or a newer period */
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

/* Sums the live slots. A slot tagged a window or more after cur, with the
 * clock read again still behind it, holds calls from before the clock
 * stepped back: it is emptied, so that it cannot come back to life when
 * the clock reaches its period again. */
static void sum_window(const lane_runtime *rt, vm_model *m, uint64_t now, window_sum *w) {
  uint64_t cur = now / rt->slot_ms;
  memset(w, 0, sizeof *w);
  for (int i = 0; i < VM_SLOTS; i++) {
    vm_slot *s = &m->slot[i];
    uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
    if (!(tag & BUSY) && tag > cur + VM_SLOTS && tag > vm_now(rt) / rt->slot_ms + VM_SLOTS &&
        atomic_compare_exchange_strong_explicit(&s->tag, &tag, BUSY, memory_order_acq_rel,
                                                memory_order_relaxed)) {
      clear_slot(s);
      STR(&s->tag, 0);
      continue;
    }
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
  vm_breaker_moved(rt);
}

static void breaker_ok(const lane_runtime *rt, vm_model *m) {
  uint32_t st = LANE_BREAKER_HALF_OPEN;
  if (!atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_CLOSED,
                                               memory_order_acq_rel, memory_order_relaxed))
    return;
  vm_breaker_moved(rt);
  for (int i = 0; i < VM_SLOTS; i++)   /* a fresh start: old failures are forgiven */
    atomic_store_explicit(&m->slot[i].fails, 0, memory_order_relaxed);
}

/* The breaker's deadline (cooldown end or probe deadline). One more than a
 * cooldown ahead was set by a clock that has since stepped back: it is
 * brought to one cooldown from now, so a step back never keeps a model
 * out for longer than a cooldown. */
static uint64_t breaker_until(const lane_runtime *rt, const vm_model *m, uint64_t now) {
  atomic_uint_least64_t *u = (atomic_uint_least64_t *)&m->until;
  uint64_t until = LD(u), most = now + rt->opt.breaker_cooldown_ms;
  while (until > most &&
         !atomic_compare_exchange_weak_explicit(u, &until, most, memory_order_acq_rel,
                                                memory_order_relaxed)) {
  }
  return until > most ? most : until;
}

int vm_health(const lane_runtime *rt, uint32_t model, uint64_t now) {
  const vm_model *m = rt->m[model];
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  if (st == LANE_BREAKER_CLOSED) return SEM_HEALTHY;   /* no deadline to read */
  return sem_breaker_health((int)st, breaker_until(rt, m, now), now);
}

int vm_claim_probe(lane_runtime *rt, uint32_t model, uint64_t now) {
  vm_model *m = rt->m[model];
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  uint64_t until = breaker_until(rt, m, now);
  if (st == LANE_BREAKER_CLOSED) return 1;
  if (now < until) return 0;
  /* Cooldown over (open) or the last probe never reported (half-open):
   * move the deadline first, so one claimant wins. */
  if (!atomic_compare_exchange_strong_explicit(&m->until, &until,
                                               now + rt->opt.breaker_cooldown_ms,
                                               memory_order_acq_rel, memory_order_relaxed))
    return 0;
  st = LANE_BREAKER_OPEN;
  if (atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_HALF_OPEN,
                                              memory_order_acq_rel, memory_order_relaxed))
    vm_breaker_moved(rt);   /* not closed either way; counted all the same */
  return 1;
}

/* ---------------------------------------------------------------------
 * Live figures as decisions see them
 * ------------------------------------------------------------------- */
/* Whether the cached figures describe the window as of now with enough
 * calls. A cache whose oldest slot has left the window, or that was made
 * at a later time (the clock stepped back), is recomputed here, once (the
 * first reader after it expired pays about a microsecond). */
static int fresh(lane_runtime *rt, vm_model *m, uint64_t now, uint64_t *n) {
  uint64_t at = atomic_load_explicit(&m->cached_at, memory_order_acquire);
  if (at && atomic_load_explicit(&m->samples, memory_order_relaxed) &&
      (now >= atomic_load_explicit(&m->valid_until, memory_order_relaxed) || now < at))
    refresh(rt, m, now);
  *n = atomic_load_explicit(&m->samples, memory_order_relaxed);
  return at != 0 && *n >= rt->opt.min_samples;
}

double vm_latency(lane_runtime *rt, uint32_t model, uint64_t now, int p95) {
  vm_model *m = rt->m[model];
  const bc_model *md = &rt->prog->im.models[model];
  uint64_t n;
  if (!fresh(rt, m, now, &n) ||
      atomic_load_explicit(&m->lat_samples, memory_order_relaxed) < rt->opt.min_samples)
    return p95 ? md->p95 : md->p50;
  return bitsd(atomic_load_explicit(p95 ? &m->p95 : &m->p50, memory_order_relaxed));
}

double vm_error_rate(lane_runtime *rt, uint32_t model, uint64_t now) {
  vm_model *m = rt->m[model];
  uint64_t n;
  if (!fresh(rt, m, now, &n)) return 0;
  return bitsd(atomic_load_explicit(&m->err, memory_order_relaxed));
}

/* ---------------------------------------------------------------------
 * Observations
 * ------------------------------------------------------------------- */
/* Adds n calls of one status (and latency) to model m's slot now, then
 * runs the breaker rule. */
static void observe_n(lane_runtime *rt, vm_model *m, double latency_ms, int status, uint32_t n) {
  uint64_t now = vm_now(rt), cur = now / rt->slot_ms;
  vm_slot *s = &m->slot[cur % VM_SLOTS];
  int fail = status != LANE_CALL_OK && status != LANE_CALL_CLIENT_ERROR;
  claim(rt, &s->tag, cur, clear_slot, s);
  atomic_fetch_add_explicit(&s->calls, n, memory_order_relaxed);
  if (fail) atomic_fetch_add_explicit(&s->fails, n, memory_order_relaxed);
  else if (status == LANE_CALL_OK)   /* latency of answers only */
    atomic_fetch_add_explicit(&s->hist[hbucket(latency_ms)], n, memory_order_relaxed);
  refresh(rt, m, now);
  if (fail) {
    window_sum w;
    sum_window(rt, m, now, &w);
    breaker_fail(rt, m, now, w.fails);
  } else if (status == LANE_CALL_OK) {
    breaker_ok(rt, m);
  }
}

static void observe_in(lane_runtime *rt, int model, double latency_ms, int status) {
  if (!rt || model < 0 || (uint32_t)model >= rt->nmodels) return;
  observe_n(rt, rt->m[model], latency_ms, status, 1);
  const lane_fleet_hooks *fl = vm_fleet(rt);
  if (fl && fl->observed) fl->observed(fl->ctx, rt, model, latency_ms, status);
}

void lane_observe(lane_runtime *rt, int model, double latency_ms, int status) {
  vm_pin pin;
  observe_in(vm_enter(rt, &pin), model, latency_ms, status);
  vm_leave(&pin);
}

static int model_stats_in(const lane_runtime *crt, int model, lane_live_stats *out) {
  /* Reading may refresh an expired cache: atomics only, as decisions do. */
  lane_runtime *rt = (lane_runtime *)crt;
  if (!rt || !out || model < 0 || (uint32_t)model >= rt->nmodels) return LANE_EARG;
  uint64_t now = vm_now(rt), n;
  vm_model *m = rt->m[model];
  out->p50 = vm_latency(rt, (uint32_t)model, now, 0);
  out->p95 = vm_latency(rt, (uint32_t)model, now, 1);
  out->error_rate = vm_error_rate(rt, (uint32_t)model, now);
  fresh(rt, m, now, &n);
  out->samples = atomic_load_explicit(&m->cached_at, memory_order_relaxed) ? n : 0;
  out->state = (int)atomic_load_explicit(&m->state, memory_order_acquire);
  out->until_ms = out->state ? breaker_until(rt, m, now) : 0;
  return LANE_OK;
}

int lane_model_stats(const lane_runtime *crt, int model, lane_live_stats *out) {
  vm_pin pin;
  int rc = model_stats_in(vm_enter(crt, &pin), model, out);
  vm_leave(&pin);
  return rc;
}

static int runtime_set_model_stats_in(lane_runtime *rt, int model, const lane_live_stats *st) {
  if (!rt || !st || model < 0 || (uint32_t)model >= rt->nmodels || st->state < 0 ||
      st->state > LANE_BREAKER_HALF_OPEN)
    return LANE_EARG;
  vm_model *m = rt->m[model];
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
  vm_breaker_moved(rt);
  return LANE_OK;
}

int lane_runtime_set_model_stats(lane_runtime *rt, int model, const lane_live_stats *st) {
  vm_pin pin;
  int rc = runtime_set_model_stats_in(vm_enter(rt, &pin), model, st);
  vm_leave(&pin);
  return rc;
}

/* ---------------------------------------------------------------------
 * Budgets: keys and hashes
 * ------------------------------------------------------------------- */
int lane_budget_count(const lane_program *p) { return p ? (int)p->im.nbudgets : 0; }

static uint64_t field_key(const lane_program *p, uint32_t f, const lane_request *r);

uint64_t lane_budget_key_of(const lane_program *p, int b, const lane_request *r) {
  if (!p || !r || r->prog != p || b < 0 || (uint32_t)b >= p->im.nbudgets) return 0;
  return field_key(p, p->im.budgets[b].key_field, r);
}

const char *lane_budget_name(const lane_program *p, int b) {
  if (!p || b < 0 || (uint32_t)b >= p->im.nbudgets) return NULL;
  return p->im.str[p->im.budgets[b].name].p;
}

int lane_budget(const lane_program *p, const char *name) {
  for (int b = 0; name && b < lane_budget_count(p); b++)
    if (!strcmp(lane_budget_name(p, b), name)) return b;
  return -1;
}

/* Key hashes are never 0 (no key) nor VM_TOMB (a slot whose key moved). */
uint64_t vm_key_norm(uint64_t h) { return h == 0 ? 1 : h == VM_TOMB ? VM_TOMB - 1 : h; }

/* The key hash of request field f; 0 if it is unset. */
static uint64_t field_key(const lane_program *p, uint32_t f, const lane_request *r) {
  if (f >= p->im.nfields || !(r->set >> f & 1)) return 0;
  if (p->im.fields[f].type == LANE_T_STRING)
    return vm_key_norm(bc_fnv1a64(r->v[f].s.p, r->v[f].s.n, BC_FNV_OFFSET));
  return vm_key_norm(bc_splitmix64(r->v[f].u));
}

/* Decimal digits, exactly: 1 and *v, or 0 for anything else or a value
 * above UINT64_MAX. */
static int digits(const char *s, size_t n, uint64_t *v) {
  *v = 0;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(unsigned char)s[i] - '0';
    if (d > 9 || *v > (UINT64_MAX - d) / 10) return 0;
    *v = *v * 10 + d;
  }
  return 1;
}

/* The value a key's text stands for in a field of type ty, as lane_set_*
 * stores it (lane_value.u's bits): 1 and *v, or 0 if the text is not one. */
static int key_value(int ty, const char *s, size_t n, uint64_t *v) {
  uint64_t mag;
  switch (ty) {
  case LANE_T_INT:
    if (n && s[0] == '-') {
      if (!digits(s + 1, n - 1, &mag) || mag > (uint64_t)INT64_MAX + 1) return 0;
      *v = 0 - mag;
      return 1;
    }
    return digits(s, n, v) && *v <= (uint64_t)INT64_MAX;
  case LANE_T_UINT: return digits(s, n, v);
  case LANE_T_BOOL:   /* as lane_set_bool stores it: 0 or 1 */
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 1 && s[0] == '1')) { *v = 1; return 1; }
    if ((n == 5 && !memcmp(s, "false", 5)) || (n == 1 && s[0] == '0')) { *v = 0; return 1; }
    return 0;
  case LANE_T_DOUBLE: {
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf || !(s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
      return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (memchr(buf, 0, n) || strpbrk(buf, "xXnNiI")) return 0;   /* no hex, nan, inf */
    double d = strtod(buf, &end);
    if (end != buf + n || !(d - d == 0)) return 0;
    *v = dbits(d);
    return 1;
  }
  default: return 0;
  }
}

uint64_t lane_budget_key_hash(const lane_program *p, int budget, const char *key, size_t n) {
  if (!p || (!key && n) || budget < 0 || (uint32_t)budget >= p->im.nbudgets) return 0;
  uint32_t f = p->im.budgets[budget].key_field;
  int ty = f < p->im.nfields ? p->im.fields[f].type : LANE_T_STRING;
  if (ty == LANE_T_STRING) return vm_key_norm(bc_fnv1a64(key, n, BC_FNV_OFFSET));
  uint64_t v;
  return key_value(ty, key, n, &v) ? vm_key_norm(bc_splitmix64(v)) : 0;
}

/* ---------------------------------------------------------------------
 * Budgets: periods and entries
 * ------------------------------------------------------------------- */

/* The budget's current period: the clock's, or the newest period holding
 * spend if that is later (the clock stepped back since). */
uint64_t vm_bud_cur(const vm_budget_rt *b, uint64_t now) {
  uint64_t p = now / b->sub_ms, t = LDA(&b->top);
  return t > p + 1 ? t - 1 : p;
}

/* Spend in the window ending at period cur of one ring of entries. */
int64_t vm_ring_spend(const vm_budget_rt *b, const vm_entry *ring, uint64_t cur) {
  int64_t sum = 0;
  for (uint32_t i = 0; i < b->ring; i++) {
    const vm_entry *e = &ring[i];
    if (!live(atomic_load_explicit(&e->tag, memory_order_acquire), cur, b->span)) continue;
    int64_t v = atomic_load_explicit(&e->nanos, memory_order_acquire);
    sum = sum > INT64_MAX - v ? INT64_MAX : sum + v;
  }
  return sum;
}

/* Adds nanos to the entry for period p in ring (or to the later period
 * the entry holds already: budget periods never go back), saturating.
 * *q is the period charged. 0, with nothing added, if the entry stayed
 * busy (the thread clearing it stopped between two stores) and force is
 * not set. */
static int add_entry(vm_entry *ring, uint32_t n, uint64_t p, int64_t nanos, uint64_t *q,
                     int force) {
  vm_entry *e = &ring[p % n];
  uint64_t w = p + 1;
  *q = p;
  for (unsigned spins = 0;; spins++) {
    uint64_t t = LDA(&e->tag);
    if (t == w) break;
    if (!(t & BUSY)) {
      if (t > w) { *q = t - 1; break; }
      if (atomic_compare_exchange_weak_explicit(&e->tag, &t, w | BUSY, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        ST(&e->nanos, 0);
        STR(&e->tag, w);
        break;
      }
      continue;
    }
    if (spins >= SPIN_LIMIT) {
      if (!force) return 0;
      break;
    }
    backoff(spins);
  }
  /* Saturate rather than wrap: a runaway total must still read as over. */
  int64_t old = atomic_load_explicit(&e->nanos, memory_order_relaxed), sum;
  do {
    sum = old > INT64_MAX - nanos ? INT64_MAX : old + nanos;
  } while (!atomic_compare_exchange_weak_explicit(&e->nanos, &old, sum, memory_order_relaxed,
                                                  memory_order_relaxed));
  return 1;
}

/* Empties a ring. Release stores: a reader whose acquire load sees one
 * of them also sees what the writer stored before (a slot's VM_TOMB). */
static void clear_ring(vm_entry *ring, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    STR(&ring[i].nanos, 0);
    STR(&ring[i].tag, 0);
  }
}

/* Whether a key whose newest charged period is last - 1 has no spend left
 * in the window ending at cur. A slot being given its key (last 0) has not
 * expired. */
static int expired(uint64_t last, uint64_t cur, uint32_t span) {
  return last && last - 1 + span <= cur;
}

/* ---------------------------------------------------------------------
 * Budgets: key slots
 * ------------------------------------------------------------------- */

/* Level L starts after base(L) = 16 x 4^(L-1) slots (0 for level 0) and
 * holds 16 (level 0) or 48 x 4^(L-1) slots, the last cut to end at cap. */
static uint32_t level_base(uint32_t level) {
  return level ? (uint32_t)VM_LEVEL0 << (2 * (level - 1)) : 0;
}

static uint32_t level_slots(const vm_budget_rt *b, uint32_t level) {
  uint32_t base = level_base(level), n = level ? 3 * base : VM_LEVEL0;
  return n < b->cap - base ? n : b->cap - base;
}

uint32_t vm_level_slots(const vm_budget_rt *b, uint32_t level) { return b->lslots[level]; }

/* A level's slots: hashes, states, rings, then its key filter (a byte a
 * slot; levels hold a multiple of 16 slots). */
static size_t slots_bytes(const vm_budget_rt *b, uint32_t n) {
  return (size_t)n * (sizeof(atomic_uint_least64_t) + sizeof(vm_meta) + b->ring * sizeof(vm_entry));
}

static size_t level_bytes(const vm_budget_rt *b, uint32_t level) {
  uint32_t n = vm_level_slots(b, level);
  return slots_bytes(b, n) + (size_t)n;
}

/* The key filter of a level of n slots: 8 bits a slot, two of them set
 * for each key ever given a slot of the level, before the key is
 * published there (insert). Never cleared: a key that leaves keeps its
 * bits, which only make a later miss read the run. A lookup skips a level
 * whose filter lacks one of the key's bits (probe): the key is not there.
 * It follows the level's slots, at the offset kept at creation. */
static atomic_uint_least64_t *filter_at(const vm_budget_rt *b, unsigned char *blk, uint32_t level) {
  return (atomic_uint_least64_t *)blk + b->lfilter[level];
}

/* A filter's two bits b1, b2: set (before the key is published), or both
 * set. The level filters and the table-wide one share these. */
static void filter_set(atomic_uint_least64_t *f, uint32_t b1, uint32_t b2) {
  atomic_fetch_or_explicit(&f[b1 >> 6], 1ull << (b1 & 63), memory_order_relaxed);
  atomic_fetch_or_explicit(&f[b2 >> 6], 1ull << (b2 & 63), memory_order_relaxed);
}

static int filter_has(const atomic_uint_least64_t *f, uint32_t b1, uint32_t b2) {
  return (LD(&f[b1 >> 6]) >> (b1 & 63) & 1) && (LD(&f[b2 >> 6]) >> (b2 & 63) & 1);
}

static void filter_bits(uint64_t h, uint32_t n, uint32_t *b1, uint32_t *b2) {
  uint64_t x = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull, bits = (uint64_t)n * 8;
  x ^= x >> 29;
  *b1 = (uint32_t)(((x & 0xffffffffu) * bits) >> 32);
  *b2 = (uint32_t)(((x >> 32) * bits) >> 32);
}

static void filter_add(const vm_budget_rt *b, unsigned char *blk, uint32_t level, uint32_t n,
                       uint64_t h) {
  uint32_t b1, b2;
  filter_bits(h, n, &b1, &b2);
  filter_set(filter_at(b, blk, level), b1, b2);
}

static int filter_may_hold(const vm_budget_rt *b, unsigned char *blk, uint32_t level, uint32_t n,
                           uint64_t h) {
  uint32_t b1, b2;
  filter_bits(h, n, &b1, &b2);
  return filter_has(filter_at(b, blk, level), b1, b2);
}

/* The table-wide key filter (vm_budget_rt.keys_filter): two bits of
 * VM_KEYS_FILTER x 64 from a mix of h other than the levels'. */
static void keys_filter_bits(uint64_t h, uint32_t *b1, uint32_t *b2) {
  uint64_t x = (h ^ (h >> 29)) * 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 32;
  *b1 = (uint32_t)(x & (VM_KEYS_FILTER * 64 - 1));
  *b2 = (uint32_t)((x >> 16) & (VM_KEYS_FILTER * 64 - 1));
}

static void keys_filter_add(vm_budget_rt *b, uint64_t h) {
  uint32_t b1, b2;
  keys_filter_bits(h, &b1, &b2);
  filter_set(b->keys_filter, b1, b2);
}

/* 0 if no level holds key h: the filter lacks one of its bits while few
 * enough keys were placed for it to say so; 1 if one may. */
static int keys_filter_may_hold(const vm_budget_rt *b, uint64_t h) {
  if (LD(&b->assigns) >= VM_KEYS_FILTER_MAX) return 1;
  uint32_t b1, b2;
  keys_filter_bits(h, &b1, &b2);
  return filter_has(b->keys_filter, b1, b2);
}

/* Where key h's probe run starts in a level of n slots: each level mixes
 * the hash afresh, so keys that collide in one level spread out in the
 * next. */
static uint32_t level_start(uint64_t h, uint32_t level, uint32_t n) {
  uint64_t x = h + 0x9e3779b97f4a7c15ull * (level + 1);
  x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return (uint32_t)(((x >> 32) * n) >> 32);
}

unsigned char *vm_level_get(const vm_budget_rt *b, uint32_t level) {
  return (unsigned char *)LDA((atomic_uintptr_t *)&b->level[level]);
}

/* The level, allocated (zeroed) and published by whoever gets there
 * first; NULL if the allocation failed. */
/* A level is handed out only once b->nalloc counts it (amax, release):
 * a reader that loads nalloc (acquire) reads every level below it, so no
 * key is put in a level before a read can find it there. */
static unsigned char *level_alloc(lane_runtime *rt, vm_budget_rt *b, uint32_t level) {
  unsigned char *blk = vm_level_get(b, level);
  if (blk) {
    amax(&b->nalloc, level + 1);
    return blk;
  }
  size_t size = level_bytes(b, level);
  unsigned char *mine = calloc(1, size);
  if (!mine) {
    atomic_fetch_add_explicit(&b->grow_failed, 1, memory_order_relaxed);
    return NULL;
  }
  uintptr_t want = 0;
  if (atomic_compare_exchange_strong_explicit(&b->level[level], &want, (uintptr_t)mine,
                                              memory_order_acq_rel, memory_order_acquire)) {
    vm_count_bytes(rt, size);
    amax(&b->nalloc, level + 1);
    return mine;
  }
  free(mine);
  amax(&b->nalloc, level + 1);
  return (unsigned char *)want;
}

vm_ref vm_slot_ref(const vm_budget_rt *b, unsigned char *blk, uint32_t n, uint32_t i) {
  atomic_uint_least64_t *hashes = (atomic_uint_least64_t *)blk;
  vm_meta *meta = (vm_meta *)(hashes + n);
  vm_entry *ents = (vm_entry *)(meta + n);
  return (vm_ref){&hashes[i], &meta[i], &ents[(size_t)i * b->ring]};
}

/* A key's path: the probe run of each allocated level in turn. */
typedef struct kpath {
  uint64_t h;                       /* the key */
  uint32_t level, k, i, run, n;     /* level, probes made, slot, run, slots */
  unsigned char *blk;               /* the level's slots; NULL: not started */
} kpath;

static void path_init(kpath *w, uint64_t h) { memset(w, 0, sizeof *w); w->h = h; }

/* The next slot of the path: 1 and *r, or 0 at its end -- past the last
 * level, or at a level not allocated yet (*unalloc set, when given). With
 * rt, such a level is allocated instead (0 only if that fails). */
static inline int path_next(kpath *w, vm_budget_rt *b, lane_runtime *rt, vm_ref *r,
                            int *unalloc) {
  while (!w->blk || w->k == w->run) {
    uint32_t level = w->blk ? w->level + 1 : 0;
    if (level >= b->nlevels) return 0;
    unsigned char *blk = rt ? level_alloc(rt, b, level) : vm_level_get(b, level);
    if (!blk) {
      if (unalloc) *unalloc = 1;
      return 0;
    }
    w->level = level;
    w->blk = blk;
    w->n = vm_level_slots(b, level);
    w->run = w->n < VM_PROBES ? w->n : VM_PROBES;
    w->k = 0;
    w->i = level_start(w->h, level, w->n);
  }
  *r = vm_slot_ref(b, w->blk, w->n, w->i);
  w->i = w->i + 1 == w->n ? 0 : w->i + 1;
  w->k++;
  return 1;
}

static int pin(vm_meta *k) {
  if (!(atomic_fetch_add_explicit(&k->gate, 1, memory_order_acq_rel) & VM_HELD)) return 1;
  atomic_fetch_sub_explicit(&k->gate, 1, memory_order_release);
  return 0;
}

static void unpin(vm_meta *k) { atomic_fetch_sub_explicit(&k->gate, 1, memory_order_release); }

/* Holds a slot: waits (bounded) until no charge is inside. */
static int hold(vm_meta *k) {
  for (unsigned spins = 0; spins < SPIN_LIMIT; spins++) {
    uint32_t g = 0;
    if (atomic_compare_exchange_weak_explicit(&k->gate, &g, VM_HELD, memory_order_acq_rel,
                                              memory_order_relaxed))
      return 1;
    backoff(spins);
  }
  return 0;
}

static void release(vm_meta *k) { atomic_fetch_sub_explicit(&k->gate, VM_HELD, memory_order_release); }

/* A slot's spend for key h as of cur: 0 if the slot stopped holding h
 * while it was read (it was taken over: its spend had expired). The
 * entries are read with acquire loads, so if one of them was cleared by a
 * take-over, the VM_TOMB stored before the clearing is seen here. */
int64_t vm_slot_spend(const vm_budget_rt *b, const vm_ref *r, uint64_t h, uint64_t cur) {
  int64_t v = vm_ring_spend(b, r->e, cur);
  return LDA(r->h) == h ? v : 0;
}

enum { K_FOUND, K_ROOM, K_FULL };

/* Whether a charge of h would find a slot on a path where every slot
 * holds a key: one that is VM_TOMB or expired could be taken over. */
static int reclaimable_on_path(vm_budget_rt *b, uint64_t h, uint64_t cur) {
  kpath w;
  vm_ref s;
  path_init(&w, h);
  while (path_next(&w, b, NULL, &s, NULL)) {
    uint64_t x = LD(s.h);
    if (x == VM_TOMB || expired(LD(&s.m->last), cur, b->span)) return 1;
  }
  return 0;
}

/* Looks key h up. K_FOUND: *r is a slot of it and, with sum, *sum its
 * spend (of every slot of it once a duplicate was left unmerged); K_ROOM:
 * no slot, and a charge would get one (an unused or reclaimable slot, or
 * a level not allocated yet, is on its path); K_FULL: a charge would go
 * to the overflow account. A key sits in the run of one level, before any
 * unused slot of it. Levels below the largest allocated one are (nearly)
 * full, and each holds three times the keys of all levels below it; the
 * largest holds filled - its base. So the scan reads the level likely to
 * hold the most keys first -- the largest, or the one below it while the
 * largest is young -- then the other, then the rest downwards, each run up
 * to its first unused slot. With one level, an unused slot ends the scan.
 * Only the levels' dense hash arrays are read; slot state only when every
 * slot on the path is taken. */
static int probe_in(const vm_budget_rt *cb, uint64_t h, uint64_t cur, vm_ref *r, int64_t *sum,
                    int filtered) {
  vm_budget_rt *b = (vm_budget_rt *)cb;   /* read only */
  int found = 0, all = sum && LD(&b->unmerged), skipped = 0;
  uint32_t top = (uint32_t)atomic_load_explicit(&b->nalloc, memory_order_acquire);
  if (sum) *sum = 0;
  int room = top < b->nlevels;   /* a level still to allocate */
  /* no level holds h: a charge would get a slot in the level to allocate;
   * with every level allocated, whether one has room needs the runs */
  if (filtered && !keys_filter_may_hold(b, h)) return room ? K_ROOM : probe_in(b, h, cur, r, sum, 0);
  int down = top > 1;            /* not in level order: no early end */
  int young = down && LD(&b->filled) - level_base(top - 1) < b->lslots[top - 2];
  for (uint32_t j = 0; j < top; j++) {
    uint32_t level = !down ? j : young && j < 2 ? top - 2 + j : top - 1 - j;
    unsigned char *blk = vm_level_get(b, level);
    const atomic_uint_least64_t *hs = (const atomic_uint_least64_t *)blk;
    uint32_t n = b->lslots[level], run = n < VM_PROBES ? n : VM_PROBES;
    if (filtered && !filter_may_hold(b, blk, level, n, h)) {
      skipped = 1;
      continue;
    }
    /* the run as at most two stretches, [i, n) then from 0 (a miss reads
     * whole runs: no wrap test per slot) */
    for (uint32_t i = level_start(h, level, n), left = run; left; i = 0) {
      uint32_t end = n - i < left ? n : i + left;
      left -= end - i;
      for (; i < end; i++) {
        uint64_t x = LDA(&hs[i]);
        if (x == 0) {
          if (!down) return found ? K_FOUND : K_ROOM;
          room = 1;
          goto next_level;
        }
        if (x != h) continue;
        vm_ref s = vm_slot_ref(b, blk, n, i);
        if (!found++) *r = s;
        if (sum) {
          int64_t v = vm_slot_spend(b, &s, h, cur);
          *sum = *sum > INT64_MAX - v ? INT64_MAX : *sum + v;
        }
        if (!all) return K_FOUND;
      }
    }
  next_level:;
  }
  if (found) return K_FOUND;
  if (room) return K_ROOM;
  /* every level allocated: whether a charge would find a slot needs the
   * runs of the levels skipped too */
  if (skipped) return probe_in(b, h, cur, r, sum, 0);
  return reclaimable_on_path(b, h, cur) ? K_ROOM : K_FULL;
}

static int probe(const vm_budget_rt *b, uint64_t h, uint64_t cur, vm_ref *r, int64_t *sum) {
  return probe_in(b, h, cur, r, sum, 1);
}

/* Adds nanos for period p to key h's slot r: 1, or 0 if r is held or no
 * longer holds h (the caller looks h up again). */
static int add_slot(vm_budget_rt *b, vm_ref *r, uint64_t h, uint64_t p, int64_t nanos) {
  if (!pin(r->m)) return 0;
  uint64_t q;
  int ok = LD(r->h) == h && add_entry(r->e, b->ring, p, nanos, &q, 0);
  if (ok) {
    amax(&r->m->last, q + 1);
    amax(&b->top, q + 1);
  }
  unpin(r->m);
  return ok;
}

enum { MOVED, MOVE_RETRY, MOVE_STUCK };

/* Moves the live spend of slot d, a later copy of key h, into c, its
 * first, and retires d (VM_TOMB). MOVE_RETRY if c stopped holding h (the
 * caller scans again); MOVE_STUCK if d could not be held. */
static int move_slot(vm_budget_rt *b, vm_ref *d, vm_ref *c, uint64_t h, uint64_t cur) {
  if (!hold(d->m)) return MOVE_STUCK;
  int rc = MOVED;
  if (LD(d->h) == h) {
    for (uint32_t i = 0; i < b->ring && rc == MOVED; i++) {
      vm_entry *e = &d->e[i];
      uint64_t t = LD(&e->tag) & ~BUSY;
      int64_t v = LD(&e->nanos);
      if (t && v && t - 1 + b->span > cur && !add_slot(b, c, h, t - 1, v)) {
        rc = MOVE_RETRY;
      } else {
        ST(&e->nanos, 0);
        ST(&e->tag, 0);
      }
    }
    if (rc == MOVED) {
      ST(&d->m->last, 0);
      ST(&d->m->held, 0);
      STR(d->h, VM_TOMB);
      atomic_fetch_sub_explicit(&b->nkeys, 1, memory_order_relaxed);
    }
  }
  release(d->m);
  return rc;
}

/* Another key was placed while h was, so h may hold two slots: moves
 * every later slot of h into the first. */
static void merge(vm_budget_rt *b, uint64_t h, uint64_t cur) {
  for (int round = 0; round < TRIES; round++) {
    int found = 0, retry = 0;
    kpath w;
    vm_ref s, first = {0};
    path_init(&w, h);
    while (!retry && path_next(&w, b, NULL, &s, NULL)) {
      uint64_t x = LDA(s.h);
      if (x == 0) break;
      if (x != h) continue;
      if (!found++) { first = s; continue; }
      int m = move_slot(b, &s, &first, h, cur);
      if (m == MOVE_RETRY) retry = 1;
      else if (m == MOVE_STUCK) atomic_fetch_add_explicit(&b->unmerged, 1, memory_order_relaxed);
    }
    if (!retry) return;
  }
  atomic_fetch_add_explicit(&b->unmerged, 1, memory_order_relaxed);
}

/* After placing h: seq was `assigns` before h was looked up; any other
 * placement since then means h may have been placed twice. */
static void placed(vm_budget_rt *b, uint64_t h, uint64_t cur, uint64_t seq) {
  if (atomic_fetch_add_explicit(&b->assigns, 1, memory_order_acq_rel) != seq) merge(b, h, cur);
}

/* Takes slot r over for key h from x -- a key whose window has passed, or
 * VM_TOMB -- if no charge is inside it. */
static int take_over(vm_budget_rt *b, vm_ref *r, uint64_t x, uint64_t h, uint64_t cur) {
  uint32_t g = 0;
  if (!atomic_compare_exchange_strong_explicit(&r->m->gate, &g, VM_HELD, memory_order_acq_rel,
                                               memory_order_relaxed))
    return 0;
  int ok = LD(r->h) == x && (x == VM_TOMB || expired(LD(&r->m->last), cur, b->span));
  if (ok) {
    STR(r->h, VM_TOMB);   /* a reader of x that sees the clearing drops what it read */
    clear_ring(r->e, b->ring);
    ST(&r->m->held, 0);
    ST(&r->m->last, cur + 1);
    STR(r->h, h);
    atomic_fetch_add_explicit(x == VM_TOMB ? &b->nkeys : &b->reclaimed, 1, memory_order_relaxed);
  }
  release(r->m);
  return ok;
}

/* Gives key h a slot: the first of its path that is unused or
 * reclaimable, allocating levels as the path reaches them. 1 when h has a
 * slot (this call's or another's), 0 when its path holds only live keys
 * or a level could not be allocated. */
static int insert(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t cur, uint64_t seq) {
  kpath w;
  vm_ref s;
  path_init(&w, h);
  while (path_next(&w, b, rt, &s, NULL)) {
    uint64_t x = LDA(s.h);
    if (x == h) return 1;
    if (x == 0 || x == VM_TOMB || expired(LD(&s.m->last), cur, b->span)) {
      filter_add(b, w.blk, w.level, w.n, h);   /* before h can be seen there */
      keys_filter_add(b, h);
    }
    if (x == 0) {
      if (atomic_compare_exchange_strong_explicit(&*s.h, &x, h, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        STR(&s.m->last, cur + 1);
        atomic_fetch_add_explicit(&b->nkeys, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->filled, 1, memory_order_relaxed);
        placed(b, h, cur, seq);
        return 1;
      }
      if (x == h) return 1;
    }
    if ((x == VM_TOMB || expired(LD(&s.m->last), cur, b->span)) && take_over(b, &s, x, h, cur)) {
      placed(b, h, cur, seq);
      return 1;
    }
  }
  return 0;
}

/* Marks h in the bitmap that estimates distinct keys in the overflow
 * account (allocated at the first). */
static void seen(lane_runtime *rt, vm_budget_rt *b, uint64_t h) {
  atomic_uint_least64_t *bits = (atomic_uint_least64_t *)LDA(&b->seen);
  if (!bits) {
    uintptr_t want = 0;
    atomic_uint_least64_t *mine = calloc(VM_SEEN_BITS / 64, sizeof *mine);
    if (!mine) return;
    if (atomic_compare_exchange_strong_explicit(&b->seen, &want, (uintptr_t)mine,
                                                memory_order_acq_rel, memory_order_acquire)) {
      vm_count_bytes(rt, VM_SEEN_BITS / 8);
      bits = mine;
    } else {
      free(mine);
      bits = (atomic_uint_least64_t *)want;
    }
  }
  uint64_t x = (h * 0x9e3779b97f4a7c15ull) >> 52;   /* 12 bits */
  if (!(LD(&bits[x >> 6]) >> (x & 63) & 1))
    atomic_fetch_or_explicit(&bits[x >> 6], 1ull << (x & 63), memory_order_relaxed);
}

/* Records nanos in the overflow account; h is the key that had no slot
 * (0: the account itself, when set or loaded). */
void vm_to_overflow(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t p, int64_t nanos) {
  uint64_t q;
  add_entry(b->ovf, b->ring, p, nanos, &q, 1);
  amax(&b->top, q + 1);
  if (!h) return;
  atomic_fetch_add_explicit(&b->ovf_charges, 1, memory_order_relaxed);
  seen(rt, b, h);
}

/* Records nanos for key h in period p of budget b (cur: its current
 * period). 1 if the key's own slot took them, 0 if the overflow account. */
int vm_record(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t cur, uint64_t p,
                  int64_t nanos) {
  for (unsigned tries = 0; tries < TRIES; tries++) {
    uint64_t seq = LDA(&b->assigns);
    vm_ref r;
    if (probe(b, h, cur, &r, NULL) != K_FOUND) {
      if (!insert(rt, b, h, cur, seq)) break;
      continue;
    }
    if (add_slot(b, &r, h, p, nanos)) return 1;
    backoff(64);
  }
  vm_to_overflow(rt, b, h, p, nanos);
  return 0;
}

/* Empties key h's spend (set_spend and load replace it). */
void vm_clear_key(vm_budget_rt *b, uint64_t h, uint64_t cur) {
  for (unsigned tries = 0; tries < TRIES; tries++) {
    vm_ref r;
    if (probe(b, h, cur, &r, NULL) != K_FOUND || !hold(r.m)) return;
    int mine = LD(r.h) == h;
    if (mine) clear_ring(r.e, b->ring);
    release(r.m);
    if (mine) return;
  }
}

/* ---------------------------------------------------------------------
 * Budgets: charging and reading
 * ------------------------------------------------------------------- */

/* Spend of key h as decisions read it, in nano-dollars: its own, or for a
 * key without a slot what on_full says (*at_limit for CLOSED). */
static int64_t read_key(const vm_budget_rt *b, uint64_t h, uint64_t now, int *at_limit) {
  uint64_t cur = vm_bud_cur(b, now);
  int64_t sum;
  vm_ref r;
  *at_limit = 0;
  switch (probe(b, h, cur, &r, &sum)) {
  case K_FOUND:
    if (LD(&r.m->held) == cur + 1) *at_limit = 1;   /* a spent lease */
    return sum;
  case K_ROOM: return 0;
  default: break;
  }
  switch (LD(&b->on_full)) {
  case LANE_ON_FULL_OPEN: return 0;
  case LANE_ON_FULL_CLOSED: *at_limit = 1; return 0;
  default: return vm_ring_spend(b, b->ovf, cur);
  }
}

double vm_budget_read(const lane_runtime *rt, uint32_t budget, const lane_request *r,
                      int which, uint64_t now) {
  const bc_budget *bb = &rt->prog->im.budgets[budget];
  uint64_t h = field_key(rt->prog, bb->key_field, r);
  int at_limit = 0;
  double spent = h ? (double)read_key(rt->b[budget], h, now, &at_limit) / 1e9 : 0;
  if (at_limit) spent = bb->limit;
  return sem_budget_figure(spent, bb->limit, which);
}

/* Dollars to nano-dollars, rounded; -1 if negative, not finite or huge. */
static int64_t to_nanos(double dollars) {
  if (!(dollars >= 0 && dollars < 9.2e9)) return -1;
  return (int64_t)(dollars * 1e9 + 0.5);
}

static int charge_in(lane_runtime *rt, const lane_request *r, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || !r || r->prog != rt->prog || nanos < 0) return LANE_EARG;
  uint64_t now = vm_now(rt), kh[LANE_MAX_FIELDS], have = 0;
  const lane_fleet_hooks *fl = vm_fleet(rt);
  for (uint32_t i = 0; i < rt->nbudgets; i++) {
    uint32_t f = rt->prog->im.budgets[i].key_field;   /* verified < nfields <= 64 */
    if (f >= LANE_MAX_FIELDS) continue;
    if (!(have >> f & 1)) {   /* one hash per key field, however many budgets use it */
      kh[f] = field_key(rt->prog, f, r);
      have |= 1ull << f;
    }
    if (!kh[f]) continue;
    vm_budget_rt *b = rt->b[i];
    uint64_t cur = vm_bud_cur(b, now);
    vm_record(rt, b, kh[f], cur, cur, nanos);
    if (fl && fl->charged) fl->charged(fl->ctx, rt, (int)i, kh[f], cur, nanos);
  }
  return LANE_OK;
}

int lane_charge(lane_runtime *rt, const lane_request *r, double dollars) {
  vm_pin pin;
  int rc = charge_in(vm_enter(rt, &pin), r, dollars);
  vm_leave(&pin);
  return rc;
}

static int budget_spent_in(const lane_runtime *rt, int budget, uint64_t h, double *dollars) {
  if (!rt || !dollars || budget < 0 || (uint32_t)budget >= rt->nbudgets || !h) return LANE_EARG;
  int at_limit;
  int64_t v = read_key(rt->b[budget], vm_key_norm(h), vm_now(rt), &at_limit);
  *dollars = at_limit ? rt->prog->im.budgets[budget].limit : (double)v / 1e9;
  return LANE_OK;
}

int lane_budget_spent(const lane_runtime *rt, int budget, uint64_t h, double *dollars) {
  vm_pin pin;
  int rc = budget_spent_in(vm_enter(rt, &pin), budget, h, dollars);
  vm_leave(&pin);
  return rc;
}

/* Sets a key's spend in the current window to nanos, all in the current
 * period (h 0: the overflow account). */
static int runtime_set_spend_in(lane_runtime *rt, int budget, uint64_t h, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || budget < 0 || (uint32_t)budget >= rt->nbudgets || nanos < 0) return LANE_EARG;
  vm_budget_rt *b = rt->b[budget];
  uint64_t cur = vm_bud_cur(b, vm_now(rt));
  if (!h) {
    clear_ring(b->ovf, b->ring);
    vm_to_overflow(rt, b, 0, cur, nanos);
    return LANE_OK;
  }
  h = vm_key_norm(h);
  vm_clear_key(b, h, cur);
  vm_record(rt, b, h, cur, cur, nanos);
  return LANE_OK;
}

int lane_runtime_set_spend(lane_runtime *rt, int budget, uint64_t h, double dollars) {
  vm_pin pin;
  int rc = runtime_set_spend_in(vm_enter(rt, &pin), budget, h, dollars);
  vm_leave(&pin);
  return rc;
}

static int runtime_set_budget_on_full_in(lane_runtime *rt, int budget, int mode) {
  if (!rt || budget < -1 || (budget >= 0 && (uint32_t)budget >= rt->nbudgets) ||
      mode < LANE_ON_FULL_SHARED || mode > LANE_ON_FULL_OPEN)
    return LANE_EARG;
  for (uint32_t i = budget < 0 ? 0 : (uint32_t)budget; i < rt->nbudgets; i++) {
    ST(&rt->b[i]->on_full, (uint32_t)mode);
    if (budget >= 0) break;
  }
  return LANE_OK;
}

int lane_runtime_set_budget_on_full(lane_runtime *rt, int budget, int mode) {
  vm_pin pin;
  int rc = runtime_set_budget_on_full_in(vm_enter(rt, &pin), budget, mode);
  vm_leave(&pin);
  return rc;
}

/* ln(x) for x >= 1, without libm: x = m 2^e, ln m = 2 atanh((m-1)/(m+1)). */
static double ln_pos(double x) {
  uint64_t bits = dbits(x);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  double m = bitsd((bits & ((1ull << 52) - 1)) | (1023ull << 52));
  double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;
  for (int k = 1; k < 40; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return e * 0.69314718055994530942 + 2 * sum;
}

static int runtime_budget_stats_in(const lane_runtime *rt, int budget, lane_budget_stats *out) {
  if (!rt || !out || budget < 0 || (uint32_t)budget >= rt->nbudgets) return LANE_EARG;
  const vm_budget_rt *b = rt->b[budget];
  memset(out, 0, sizeof *out);
  out->keys = LD(&b->nkeys);
  for (uint32_t l = 0; l < b->nlevels; l++)
    if (vm_level_get(b, l)) out->slots += vm_level_slots(b, l);
  out->capacity = b->cap;
  out->overflow_charges = LD(&b->ovf_charges);
  out->reclaimed = LD(&b->reclaimed);
  out->grow_failures = LD(&b->grow_failed);
  out->on_full = LD(&b->on_full);
  out->unmerged = (uint32_t)LD(&b->unmerged);
  const atomic_uint_least64_t *bits = (const atomic_uint_least64_t *)LDA(&b->seen);
  if (bits) {   /* linear counting: n = m ln(m / zeros) */
    unsigned zeros = 0;
    for (int i = 0; i < VM_SEEN_BITS / 64; i++) zeros += 64 - (unsigned)__builtin_popcountll(LD(&bits[i]));
    double m = VM_SEEN_BITS, est = m * (ln_pos(m) - ln_pos(zeros ? zeros : 1));
    out->overflow_keys = (uint64_t)(est + 0.5);
    if (out->overflow_keys > out->overflow_charges) out->overflow_keys = out->overflow_charges;
  }
  return LANE_OK;
}

int lane_runtime_budget_stats(const lane_runtime *rt, int budget, lane_budget_stats *out) {
  vm_pin pin;
  int rc = runtime_budget_stats_in(vm_enter(rt, &pin), budget, out);
  vm_leave(&pin);
  return rc;
}

/* ---------------------------------------------------------------------
 * Fleet state: what a store adapter reads and adds (lane.h, "Fleet state")
 * ------------------------------------------------------------------- */
static uint64_t budget_window(const bc_budget *bb, uint64_t *sub_ms, uint32_t *ring);

int lane_budget_describe(const lane_program *p, int budget, lane_budget_info *out) {
  if (!p || !out || budget < 0 || (uint32_t)budget >= p->im.nbudgets) return LANE_EARG;
  const bc_budget *bb = &p->im.budgets[budget];
  bc_str key;
  memset(out, 0, sizeof *out);
  out->name = p->im.str[bb->name].p;
  out->key_type = (int)vm_budget_key(&p->im, (uint32_t)budget, &key);
  out->key_field = key.p ? key.p : "";
  out->limit = bb->limit;
  out->window_ms = budget_window(bb, &out->period_ms, &out->periods);
  out->rolling = (bb->flags & BC_BUDGET_ROLLING) != 0;
  return LANE_OK;
}

static int add_fleet_spend_in(lane_runtime *rt, int budget, uint64_t h, uint64_t period,
                              int64_t nanos) {
  if (!rt || budget < 0 || (uint32_t)budget >= rt->nbudgets || !h || nanos < 0) return LANE_EARG;
  vm_budget_rt *b = rt->b[budget];
  uint64_t cur = vm_bud_cur(b, vm_now(rt));
  if (period > cur) period = cur;
  if (nanos == 0 || period + b->span <= cur) return LANE_OK;   /* nothing, or out of the window */
  vm_record(rt, b, vm_key_norm(h), cur, period, nanos);
  return LANE_OK;
}

int lane_runtime_add_fleet_spend(lane_runtime *rt, int budget, uint64_t h, uint64_t period,
                                 int64_t nanos) {
  vm_pin pin;
  int rc = add_fleet_spend_in(vm_enter(rt, &pin), budget, h, period, nanos);
  vm_leave(&pin);
  return rc;
}

static int hold_key_in(lane_runtime *rt, int budget, uint64_t h, uint64_t period, int held) {
  if (!rt || budget < 0 || (uint32_t)budget >= rt->nbudgets || !h) return LANE_EARG;
  vm_budget_rt *b = rt->b[budget];
  h = vm_key_norm(h);
  uint64_t cur = vm_bud_cur(b, vm_now(rt));
  vm_ref r;
  if (probe(b, h, cur, &r, NULL) != K_FOUND) {
    if (!held) return LANE_OK;
    if (!insert(rt, b, h, cur, LDA(&b->assigns)) || probe(b, h, cur, &r, NULL) != K_FOUND)
      return LANE_ELIMIT;
  }
  if (held) STR(&r.m->held, period + 1);
  else {
    uint64_t want = period + 1;   /* only this period's hold: a later one stays */
    atomic_compare_exchange_strong_explicit(&r.m->held, &want, 0, memory_order_acq_rel,
                                            memory_order_relaxed);
  }
  return LANE_OK;
}

int lane_runtime_hold_key(lane_runtime *rt, int budget, uint64_t h, uint64_t period, int held) {
  vm_pin pin;
  int rc = hold_key_in(vm_enter(rt, &pin), budget, h, period, held);
  vm_leave(&pin);
  return rc;
}

static int observe_fleet_in(lane_runtime *rt, int model, double latency_ms, int status,
                            uint32_t count) {
  if (!rt || model < 0 || (uint32_t)model >= rt->nmodels) return LANE_EARG;
  if (count) observe_n(rt, rt->m[model], latency_ms, status, count);
  return LANE_OK;
}

int lane_runtime_observe_fleet(lane_runtime *rt, int model, double latency_ms, int status,
                               uint32_t count) {
  vm_pin pin;
  int rc = observe_fleet_in(vm_enter(rt, &pin), model, latency_ms, status, count);
  vm_leave(&pin);
  return rc;
}

_Static_assert(LANE_LATENCY_BUCKETS == VM_HBUCKETS, "lane.h's bucket count is the runtime's");

int lane_latency_bucket(double ms) { return hbucket(ms); }

double lane_latency_bucket_ms(int i) {
  double lo, hi;
  if (i < 0 || i >= VM_HBUCKETS) return 0;
  hbounds(i, &lo, &hi);
  return lo;
}

/* ---------------------------------------------------------------------
 * State objects (swap.c shares them between views)
 * ------------------------------------------------------------------- */
vm_model *vm_model_new(const lane_runtime *rt) {
  vm_model *m = vm_calloc(rt, 1, sizeof *m);   /* zero: closed, no data */
  if (m) ST(&m->refs, 1);
  return m;
}

uint32_t vm_budget_policy_on_full(const bc_budget *bb) {
  return bb->flags & BC_BUDGET_FULL_CLOSED ? LANE_ON_FULL_CLOSED
       : bb->flags & BC_BUDGET_FULL_OPEN ? LANE_ON_FULL_OPEN : LANE_ON_FULL_SHARED;
}

/* A budget's window in whole ms, its period (*sub_ms, at least 1) and
 * periods in the window (*ring: 1, or VM_ROLLING for a rolling one). */
static uint64_t budget_window(const bc_budget *bb, uint64_t *sub_ms, uint32_t *ring) {
  double wd = bb->window_ms;   /* verified finite and >= 0, not bounded */
  uint64_t w = wd < 18446744073709551616.0 ? (uint64_t)wd : UINT64_MAX;
  int rolling = (bb->flags & BC_BUDGET_ROLLING) != 0;
  *ring = rolling ? VM_ROLLING : 1;
  *sub_ms = rolling ? w / VM_ROLLING : w;
  if (*sub_ms == 0) *sub_ms = 1;
  return w;
}

vm_budget_rt *vm_budget_new(const lane_runtime *rt, const bc_budget *bb) {
  vm_budget_rt *b = vm_calloc(rt, 1, sizeof *b);
  if (!b) return NULL;
  uint32_t cap = pow2_at_least(rt->opt.budget_keys), nlevels = 1;
  while (level_base(nlevels) < cap) nlevels++;
  uint32_t ring;
  b->window_ms = budget_window(bb, &b->sub_ms, &ring);
  b->ring = (uint16_t)ring;
  b->span = b->ring;                      /* periods that make the window */
  b->cap = cap;
  b->nlevels = nlevels;
  for (uint32_t l = 0; l < nlevels; l++) {
    b->lslots[l] = level_slots(b, l);
    b->lfilter[l] = (uint32_t)(slots_bytes(b, b->lslots[l]) / sizeof(atomic_uint_least64_t));
  }
  b->on_full = vm_budget_policy_on_full(bb);
  ST(&b->refs, 1);
  return b;
}

void vm_model_unref(const lane_runtime *rt, vm_model *m) {
  if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
  vm_uncount_bytes(rt, sizeof *m);
  free(m);
}

void vm_budget_unref(const lane_runtime *rt, vm_budget_rt *b) {
  if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
  size_t n = sizeof *b;
  for (uint32_t l = 0; l < VM_LEVELS; l++) {
    void *blk = (void *)LD(&b->level[l]);
    if (blk) n += level_bytes(b, l);
    free(blk);
  }
  void *bits = (void *)LD(&b->seen);
  if (bits) n += VM_SEEN_BITS / 8;
  free(bits);
  vm_uncount_bytes(rt, n);
  free(b);
}

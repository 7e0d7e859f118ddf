/*
 * runtime.c -- live state for decisions: per-model latency histograms over
 * a sliding window, error rates and circuit breakers; per-key budget spend
 * in integer nano-dollars; saving, loading and carrying spend to another
 * program's runtime; snapshots.
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

#include "sem.h"
#include "vm.h"

#define BUSY (1ull << 63)         /* tag bit: slot being cleared */
#define SPIN_LIMIT 100000         /* waits for a clearing slot, then goes on */
#define TRIES 16                  /* a charge's lookups before the overflow account */

#define LD(a)     atomic_load_explicit((a), memory_order_relaxed)
#define LDA(a)    atomic_load_explicit((a), memory_order_acquire)
#define ST(a, v)  atomic_store_explicit((a), (v), memory_order_relaxed)
#define STR(a, v) atomic_store_explicit((a), (v), memory_order_release)

/* ---------------------------------------------------------------------
 * Clock and options
 * ------------------------------------------------------------------- */
static uint64_t system_clock(void *ctx) {
  struct timespec ts;
  (void)ctx;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* lane_runtime_options.frozen_ms: ctx is the runtime's own copy of it. */
static uint64_t frozen_clock(void *ctx) { return *(const uint64_t *)ctx; }

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

/* Allocations of a runtime are counted for lane_runtime_memory. */
static void *rt_calloc(lane_runtime *rt, size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p) atomic_fetch_add_explicit(&rt->bytes, n * size, memory_order_relaxed);
  return p;
}

size_t lane_runtime_memory(const lane_runtime *rt) { return rt ? LD(&rt->bytes) : 0; }

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
}

static void breaker_ok(vm_model *m) {
  uint32_t st = LANE_BREAKER_HALF_OPEN;
  if (!atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_CLOSED,
                                               memory_order_acq_rel, memory_order_relaxed))
    return;
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
  const vm_model *m = &rt->m[model];
  uint32_t st = atomic_load_explicit(&m->state, memory_order_acquire);
  if (st == LANE_BREAKER_CLOSED) return SEM_HEALTHY;   /* no deadline to read */
  return sem_breaker_health((int)st, breaker_until(rt, m, now), now);
}

int vm_claim_probe(lane_runtime *rt, uint32_t model, uint64_t now) {
  vm_model *m = &rt->m[model];
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
  atomic_compare_exchange_strong_explicit(&m->state, &st, LANE_BREAKER_HALF_OPEN,
                                          memory_order_acq_rel, memory_order_relaxed);
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
  claim(rt, &s->tag, cur, clear_slot, s);
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
  out->until_ms = out->state ? breaker_until(rt, m, now) : 0;
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
 * Budgets: keys and hashes
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

/* Key hashes are never 0 (no key) nor VM_TOMB (a slot whose key moved). */
static uint64_t key_norm(uint64_t h) { return h == 0 ? 1 : h == VM_TOMB ? VM_TOMB - 1 : h; }

/* The key hash of request field f; 0 if it is unset. */
static uint64_t field_key(const lane_program *p, uint32_t f, const lane_request *r) {
  if (f >= p->im.nfields || !(r->set >> f & 1)) return 0;
  if (p->im.fields[f].type == LANE_T_STRING)
    return key_norm(bc_fnv1a64(r->v[f].s.p, r->v[f].s.n, BC_FNV_OFFSET));
  return key_norm(bc_splitmix64(r->v[f].u));
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
  if (ty == LANE_T_STRING) return key_norm(bc_fnv1a64(key, n, BC_FNV_OFFSET));
  uint64_t v;
  return key_value(ty, key, n, &v) ? key_norm(bc_splitmix64(v)) : 0;
}

/* ---------------------------------------------------------------------
 * Budgets: periods and entries
 * ------------------------------------------------------------------- */

/* The budget's current period: the clock's, or the newest period holding
 * spend if that is later (the clock stepped back since). */
static uint64_t bud_cur(const vm_budget_rt *b, uint64_t now) {
  uint64_t p = now / b->sub_ms, t = LDA(&b->top);
  return t > p + 1 ? t - 1 : p;
}

/* Spend in the window ending at period cur of one ring of entries. */
static int64_t ring_spend(const vm_budget_rt *b, const vm_entry *ring, uint64_t cur) {
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
typedef struct vm_ref {
  atomic_uint_least64_t *h;   /* the slot's key hash */
  vm_meta               *m;   /* its state */
  vm_entry              *e;   /* its ring of entries */
} vm_ref;

/* Level L starts after base(L) = 16 x 4^(L-1) slots (0 for level 0) and
 * holds 16 (level 0) or 48 x 4^(L-1) slots, the last cut to end at cap. */
static uint32_t level_base(uint32_t level) {
  return level ? (uint32_t)VM_LEVEL0 << (2 * (level - 1)) : 0;
}

static uint32_t level_slots(const vm_budget_rt *b, uint32_t level) {
  uint32_t base = level_base(level), n = level ? 3 * base : VM_LEVEL0;
  return n < b->cap - base ? n : b->cap - base;
}

static size_t level_bytes(const vm_budget_rt *b, uint32_t level) {
  return (size_t)level_slots(b, level) *
         (sizeof(atomic_uint_least64_t) + sizeof(vm_meta) + b->ring * sizeof(vm_entry));
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

static unsigned char *level_get(const vm_budget_rt *b, uint32_t level) {
  return (unsigned char *)LDA((atomic_uintptr_t *)&b->level[level]);
}

/* The level, allocated (zeroed) and published by whoever gets there
 * first; NULL if the allocation failed. */
static unsigned char *level_alloc(lane_runtime *rt, vm_budget_rt *b, uint32_t level) {
  unsigned char *blk = level_get(b, level);
  if (blk) return blk;
  size_t size = level_bytes(b, level);
  unsigned char *mine = calloc(1, size);
  if (!mine) {
    atomic_fetch_add_explicit(&b->grow_failed, 1, memory_order_relaxed);
    return NULL;
  }
  uintptr_t want = 0;
  if (atomic_compare_exchange_strong_explicit(&b->level[level], &want, (uintptr_t)mine,
                                              memory_order_acq_rel, memory_order_acquire)) {
    atomic_fetch_add_explicit(&rt->bytes, size, memory_order_relaxed);
    return mine;
  }
  free(mine);
  return (unsigned char *)want;
}

static vm_ref slot_ref(const vm_budget_rt *b, unsigned char *blk, uint32_t n, uint32_t i) {
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
    unsigned char *blk = rt ? level_alloc(rt, b, level) : level_get(b, level);
    if (!blk) {
      if (unalloc) *unalloc = 1;
      return 0;
    }
    w->level = level;
    w->blk = blk;
    w->n = level_slots(b, level);
    w->run = w->n < VM_PROBES ? w->n : VM_PROBES;
    w->k = 0;
    w->i = level_start(w->h, level, w->n);
  }
  *r = slot_ref(b, w->blk, w->n, w->i);
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
static int64_t slot_spend(const vm_budget_rt *b, const vm_ref *r, uint64_t h, uint64_t cur) {
  int64_t v = ring_spend(b, r->e, cur);
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
static int probe(const vm_budget_rt *cb, uint64_t h, uint64_t cur, vm_ref *r, int64_t *sum) {
  vm_budget_rt *b = (vm_budget_rt *)cb;   /* read only */
  int found = 0, all = sum && LD(&b->unmerged);
  uint32_t top = b->nlevels;
  if (sum) *sum = 0;
  while (top > 0 && !level_get(b, top - 1)) top--;
  int room = top < b->nlevels;   /* a level still to allocate */
  int down = top > 1;            /* not in level order: no early end */
  int young = down && LD(&b->filled) - level_base(top - 1) < level_slots(b, top - 2);
  for (uint32_t j = 0; j < top; j++) {
    uint32_t level = !down ? j : young && j < 2 ? top - 2 + j : top - 1 - j;
    unsigned char *blk = level_get(b, level);
    const atomic_uint_least64_t *hs = (const atomic_uint_least64_t *)blk;
    uint32_t n = level_slots(b, level), run = n < VM_PROBES ? n : VM_PROBES;
    for (uint32_t k = 0, i = level_start(h, level, n); k < run; k++, i = i + 1 == n ? 0 : i + 1) {
      uint64_t x = LDA(&hs[i]);
      if (x == 0) {
        if (!down) return found ? K_FOUND : K_ROOM;
        room = 1;
        break;
      }
      if (x != h) continue;
      vm_ref s = slot_ref(b, blk, n, i);
      if (!found++) *r = s;
      if (sum) {
        int64_t v = slot_spend(b, &s, h, cur);
        *sum = *sum > INT64_MAX - v ? INT64_MAX : *sum + v;
      }
      if (!all) return K_FOUND;
    }
  }
  if (found) return K_FOUND;
  return room || reclaimable_on_path(b, h, cur) ? K_ROOM : K_FULL;
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
      atomic_fetch_add_explicit(&rt->bytes, VM_SEEN_BITS / 8, memory_order_relaxed);
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
static void to_overflow(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t p, int64_t nanos) {
  uint64_t q;
  add_entry(b->ovf, b->ring, p, nanos, &q, 1);
  amax(&b->top, q + 1);
  if (!h) return;
  atomic_fetch_add_explicit(&b->ovf_charges, 1, memory_order_relaxed);
  seen(rt, b, h);
}

/* Records nanos for key h in period p of budget b (cur: its current
 * period). 1 if the key's own slot took them, 0 if the overflow account. */
static int record(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t cur, uint64_t p,
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
  to_overflow(rt, b, h, p, nanos);
  return 0;
}

/* Empties key h's spend (set_spend and load replace it). */
static void clear_key(vm_budget_rt *b, uint64_t h, uint64_t cur) {
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
  uint64_t cur = bud_cur(b, now);
  int64_t sum;
  vm_ref r;
  *at_limit = 0;
  switch (probe(b, h, cur, &r, &sum)) {
  case K_FOUND: return sum;
  case K_ROOM: return 0;
  default: break;
  }
  switch (LD(&b->on_full)) {
  case LANE_ON_FULL_OPEN: return 0;
  case LANE_ON_FULL_CLOSED: *at_limit = 1; return 0;
  default: return ring_spend(b, b->ovf, cur);
  }
}

double vm_budget_read(const lane_runtime *rt, uint32_t budget, const lane_request *r,
                      int which, uint64_t now) {
  const bc_budget *bb = &rt->prog->im.budgets[budget];
  uint64_t h = field_key(rt->prog, bb->key_field, r);
  int at_limit = 0;
  double spent = h ? (double)read_key(&rt->b[budget], h, now, &at_limit) / 1e9 : 0;
  if (at_limit) spent = bb->limit;
  return sem_budget_figure(spent, bb->limit, which);
}

/* Dollars to nano-dollars, rounded; -1 if negative, not finite or huge. */
static int64_t to_nanos(double dollars) {
  if (!(dollars >= 0 && dollars < 9.2e9)) return -1;
  return (int64_t)(dollars * 1e9 + 0.5);
}

int lane_charge(lane_runtime *rt, const lane_request *r, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || !r || r->prog != rt->prog || nanos < 0) return LANE_EARG;
  uint64_t now = vm_now(rt), kh[LANE_MAX_FIELDS], have = 0;
  for (uint32_t i = 0; i < rt->nbudgets; i++) {
    uint32_t f = rt->prog->im.budgets[i].key_field;   /* verified < nfields <= 64 */
    if (f >= LANE_MAX_FIELDS) continue;
    if (!(have >> f & 1)) {   /* one hash per key field, however many budgets use it */
      kh[f] = field_key(rt->prog, f, r);
      have |= 1ull << f;
    }
    if (!kh[f]) continue;
    vm_budget_rt *b = &rt->b[i];
    uint64_t cur = bud_cur(b, now);
    record(rt, b, kh[f], cur, cur, nanos);
  }
  return LANE_OK;
}

int lane_budget_spent(const lane_runtime *rt, int budget, uint64_t h, double *dollars) {
  if (!rt || !dollars || budget < 0 || (uint32_t)budget >= rt->nbudgets || !h) return LANE_EARG;
  int at_limit;
  int64_t v = read_key(&rt->b[budget], key_norm(h), vm_now(rt), &at_limit);
  *dollars = at_limit ? rt->prog->im.budgets[budget].limit : (double)v / 1e9;
  return LANE_OK;
}

/* Sets a key's spend in the current window to nanos, all in the current
 * period (h 0: the overflow account). */
int lane_runtime_set_spend(lane_runtime *rt, int budget, uint64_t h, double dollars) {
  int64_t nanos = to_nanos(dollars);
  if (!rt || budget < 0 || (uint32_t)budget >= rt->nbudgets || nanos < 0) return LANE_EARG;
  vm_budget_rt *b = &rt->b[budget];
  uint64_t cur = bud_cur(b, vm_now(rt));
  if (!h) {
    clear_ring(b->ovf, b->ring);
    to_overflow(rt, b, 0, cur, nanos);
    return LANE_OK;
  }
  h = key_norm(h);
  clear_key(b, h, cur);
  record(rt, b, h, cur, cur, nanos);
  return LANE_OK;
}

int lane_runtime_set_budget_on_full(lane_runtime *rt, int budget, int mode) {
  if (!rt || budget < -1 || (budget >= 0 && (uint32_t)budget >= rt->nbudgets) ||
      mode < LANE_ON_FULL_SHARED || mode > LANE_ON_FULL_OPEN)
    return LANE_EARG;
  for (uint32_t i = budget < 0 ? 0 : (uint32_t)budget; i < rt->nbudgets; i++) {
    ST(&rt->b[i].on_full, (uint32_t)mode);
    if (budget >= 0) break;
  }
  return LANE_OK;
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

int lane_runtime_budget_stats(const lane_runtime *rt, int budget, lane_budget_stats *out) {
  if (!rt || !out || budget < 0 || (uint32_t)budget >= rt->nbudgets) return LANE_EARG;
  const vm_budget_rt *b = &rt->b[budget];
  memset(out, 0, sizeof *out);
  out->keys = LD(&b->nkeys);
  for (uint32_t l = 0; l < b->nlevels; l++)
    if (level_get(b, l)) out->slots += level_slots(b, l);
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

/* ---------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------- */
static int init_budgets(lane_runtime *rt) {
  const bc_image *im = &rt->prog->im;
  rt->nbudgets = im->nbudgets;
  rt->b = rt_calloc(rt, im->nbudgets + 1, sizeof *rt->b);
  if (!rt->b) return -1;
  uint32_t cap = pow2_at_least(rt->opt.budget_keys), nlevels = 1;
  while (level_base(nlevels) < cap) nlevels++;
  for (uint32_t i = 0; i < im->nbudgets; i++) {
    vm_budget_rt *b = &rt->b[i];
    double wd = im->budgets[i].window_ms;   /* verified finite and >= 0, not bounded */
    uint64_t w = wd < 18446744073709551616.0 ? (uint64_t)wd : UINT64_MAX;
    int rolling = (im->budgets[i].flags & BC_BUDGET_ROLLING) != 0;
    b->ring = rolling ? VM_ROLLING : 1;
    b->span = b->ring;                      /* periods that make the window */
    b->window_ms = w;
    b->sub_ms = rolling ? w / VM_ROLLING : w;
    if (b->sub_ms == 0) b->sub_ms = 1;
    b->cap = cap;
    b->nlevels = nlevels;
    uint32_t fl = im->budgets[i].flags;   /* the policy's on_full */
    b->on_full = fl & BC_BUDGET_FULL_CLOSED ? LANE_ON_FULL_CLOSED
               : fl & BC_BUDGET_FULL_OPEN ? LANE_ON_FULL_OPEN : LANE_ON_FULL_SHARED;
  }
  return 0;
}

lane_runtime *lane_runtime_new_with(const lane_program *p, const lane_runtime_options *opt,
                                    lane_error *err) {
  if (!p) { errf(err, LANE_EARG, "no program given"); return NULL; }
  if (opt && opt->budget_keys > VM_MAX_KEYS) {
    errf(err, LANE_EARG, "budget_keys %u is above the limit of %u", opt->budget_keys,
         VM_MAX_KEYS);
    return NULL;
  }
  lane_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) { errf(err, LANE_ENOMEM, "out of memory creating a runtime"); return NULL; }
  ST(&rt->bytes, sizeof *rt);
  if (opt) rt->opt = *opt;
  if (!rt->opt.clock && rt->opt.frozen) {
    rt->opt.clock = frozen_clock;
    rt->opt.clock_ctx = &rt->opt.frozen_ms;
  }
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
  rt->m = rt_calloc(rt, rt->nmodels + 1, sizeof *rt->m);   /* zero: closed, no data */
  if (!rt->m || init_budgets(rt) != 0) {
    lane_runtime_free(rt);
    errf(err, LANE_ENOMEM, "out of memory creating a runtime");
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
    for (uint32_t l = 0; l < VM_LEVELS; l++) free((void *)LD(&rt->b[i].level[l]));
    free((void *)LD(&rt->b[i].seen));
  }
  free(rt->b);
  free(rt->m);
  free(rt);
}

/* ---------------------------------------------------------------------
 * Saved state: the file
 *
 * Version 2, little-endian throughout:
 *   "LANERT\r\n", u32 version 2, u64 clock ms at saving, u32 budgets;
 *   per budget: u32 length + name, u32 length + key field name, u32 key
 *   type (lane_type), u32 kind (0 fixed, 1 rolling), u64 window ms, u64
 *   current period (the budget's, a window of ring periods ends there),
 *   the overflow account's entries, u32 keys, and per key: u64 key hash
 *   and its entries; entries are u32 count (at most ring: 1 fixed, 12
 *   rolling), then count x { u64 period, i64 nano-dollars } with period
 *   <= the current one;
 *   last, u64 FNV-1a 64 of every byte before it.
 * Only entries with spend in the window are written, so an idle key costs
 * nothing. Version 1 (no key fields or kinds, entries as ring x { u64
 * period + 1, i64 }, the program's checksum in the header) is still read,
 * into the program that saved it only.
 * ------------------------------------------------------------------- */
#define RT_MAGIC "LANERT\r\n"
#define RT_VERSION 2u

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

static void le32(unsigned char *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static void w32(wbuf *w, uint32_t v) {
  unsigned char b[4];
  le32(b, v);
  wput(w, b, 4);
}

static void w64(wbuf *w, uint64_t v) { w32(w, (uint32_t)v); w32(w, (uint32_t)(v >> 32)); }

/* Rewrites a u32 or u64 written at `at` (counts known only afterwards). */
static void patch(wbuf *w, size_t at, uint64_t v, int bytes) {
  if (w->oom) return;
  for (int i = 0; i < bytes; i++) w->p[at + i] = (unsigned char)(v >> (8 * i));
}

/* Writes the entries of ring with spend in the window ending at cur; the
 * count of them, and the newest period in *newest. */
static uint32_t put_entries(wbuf *w, const vm_budget_rt *b, const vm_entry *ring, uint64_t cur,
                            uint64_t *newest) {
  size_t at = w->n;
  uint32_t n = 0;
  w32(w, 0);
  for (uint32_t i = 0; i < b->ring; i++) {
    uint64_t t = LDA(&ring[i].tag);
    int64_t v = LDA(&ring[i].nanos);
    if (!t || (t & BUSY) || t - 1 + b->span <= cur || v <= 0) continue;
    w64(w, t - 1);
    w64(w, (uint64_t)v);
    if (t - 1 > *newest) *newest = t - 1;
    n++;
  }
  patch(w, at, n, 4);
  return n;
}

/* One budget, in one pass: counts and the current period are written as
 * found and patched in, so they always agree with what follows. */
static void save_budget(wbuf *w, const lane_runtime *rt, uint32_t i, uint64_t now) {
  const bc_image *im = &rt->prog->im;
  const vm_budget_rt *b = &rt->b[i];
  const bc_budget *bb = &im->budgets[i];
  const bc_str *name = &im->str[bb->name], *key = &im->str[im->fields[bb->key_field].name];
  uint64_t cur = bud_cur(b, now), newest = cur;
  w32(w, name->len);
  wput(w, name->p, name->len);
  w32(w, key->len);
  wput(w, key->p, key->len);
  w32(w, im->fields[bb->key_field].type);
  w32(w, b->span > 1);
  w64(w, b->window_ms);
  size_t at_cur = w->n, at_keys;
  w64(w, cur);
  put_entries(w, b, b->ovf, cur, &newest);
  at_keys = w->n;
  w32(w, 0);
  uint32_t nkeys = 0;
  for (uint32_t l = 0; l < b->nlevels; l++) {
    unsigned char *blk = level_get(b, l);
    for (uint32_t s = 0, n = level_slots(b, l); blk && s < n; s++) {
      vm_ref r = slot_ref(b, blk, n, s);
      uint64_t h = LDA(r.h);
      if (!h || h == VM_TOMB) continue;
      size_t mark = w->n;
      w64(w, h);
      uint32_t got = put_entries(w, b, r.e, cur, &newest);
      if (!got || LDA(r.h) != h) { w->n = w->oom ? w->n : mark; continue; }
      nkeys++;
    }
  }
  patch(w, at_keys, nkeys, 4);
  patch(w, at_cur, newest, 8);
}

/* The whole file in memory; *oom on failure. */
static void save_bytes(const lane_runtime *rt, wbuf *w) {
  uint64_t now = vm_now(rt);
  memset(w, 0, sizeof *w);
  wput(w, RT_MAGIC, 8);
  w32(w, RT_VERSION);
  w64(w, now);
  w32(w, rt->nbudgets);
  for (uint32_t i = 0; i < rt->nbudgets; i++) save_budget(w, rt, i, now);
  w64(w, bc_fnv1a64(w->p, w->n, BC_FNV_OFFSET));
}

/* ---------------------------------------------------------------------
 * Saved state: reading
 * ------------------------------------------------------------------- */
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

/* A length-prefixed string of the file; NULL past its end. */
static const char *rstr(rbuf *r, uint32_t *len) {
  *len = r32(r);
  if (r->bad || r->n - r->at < *len) { r->bad = 1; return NULL; }
  const char *s = (const char *)r->p + r->at;
  r->at += *len;
  return s;
}

/* What a file holds, read and checked before anything is applied. */
typedef struct st_budget {
  const char *name, *key;   /* in the file's bytes, or the program's strings */
  uint32_t nlen, klen;      /* their lengths */
  uint32_t ktype, rolling;  /* key field's lane_type; 1 for a rolling window */
  uint64_t window_ms, cur;  /* window length; current period when saved */
  uint32_t key0, nkeys;     /* its keys in st_file.k: the overflow account
                               first (hash 0), then the keys */
  int      dst;             /* budget it applies to; -1 dropped */
} st_budget;

typedef struct st_key { uint64_t hash; uint32_t ent0, nent; } st_key;       /* entries in e */
typedef struct st_ent { uint64_t period; int64_t nanos; } st_ent;

typedef struct st_file {
  uint32_t   nb;                 /* budgets */
  st_budget *b;
  uint32_t   nk, capk;           /* keys */
  st_key    *k;
  uint32_t   ne, cape;           /* entries */
  st_ent    *e;
  int        oom;                /* an allocation failed */
} st_file;

static void st_free(st_file *f) { free(f->b); free(f->k); free(f->e); }

static int grow(void **p, uint32_t *cap, uint32_t n, size_t size) {
  if (n < *cap) return 0;
  uint32_t c = *cap ? *cap * 2 : 256;
  void *q = realloc(*p, (size_t)c * size);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int st_key_add(st_file *f, uint64_t hash) {
  if (grow((void **)&f->k, &f->capk, f->nk, sizeof *f->k)) return f->oom = 1, -1;
  f->k[f->nk++] = (st_key){hash, f->ne, 0};
  return 0;
}

static int st_ent_add(st_file *f, uint64_t period, int64_t nanos) {
  if (grow((void **)&f->e, &f->cape, f->ne, sizeof *f->e)) return f->oom = 1, -1;
  f->e[f->ne++] = (st_ent){period, nanos};
  f->k[f->nk - 1].nent++;
  return 0;
}

/* Refuses a file: -1, with err saying where (through errf, the layer's
 * one printf-checked error helper; the reason must be a literal). */
static int refused(int code) { (void)code; return -1; }
#define CORRUPT(fmt, ...) \
  refused(errf(err, LANE_EFORMAT, "truncated or corrupt runtime file: " fmt, __VA_ARGS__))

/* Version 2 entries of one key (or account) of budget sb. */
static int read_entries(rbuf *r, st_file *f, const st_budget *sb, lane_error *err) {
  uint32_t n = r32(r), span = sb->rolling ? VM_ROLLING : 1;
  if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
  if (n > span) return CORRUPT("budget '%.*s': %u entries for a key, at most %u", (int)sb->nlen,
                               sb->name, n, span);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t p = r64(r);
    int64_t v = (int64_t)r64(r);
    if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
    if (v < 0 || p > sb->cur)
      return CORRUPT("budget '%.*s': an entry of %s", (int)sb->nlen, sb->name,
                     v < 0 ? "negative spend" : "a period after the budget's current one");
    if (st_ent_add(f, p, v)) return -1;
  }
  return 0;
}

/* f owns what is read into it, and every caller of st_read frees it with
 * st_free, on failure too; clang's analyzer does not follow f->b out of
 * this function and calls each early return a leak. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
static int read_v2(rbuf *r, st_file *f, lane_error *err) {
  r64(r);   /* the clock when saved: for people reading dumps */
  f->nb = r32(r);
  if (r->bad || f->nb > (r->n - r->at) / 44)   /* the smallest budget takes 44 bytes */
    return CORRUPT("%u budgets in %zu bytes", f->nb, r->n);
  if (f->nb && !(f->b = calloc(f->nb, sizeof *f->b))) return f->oom = 1, -1;
  for (uint32_t i = 0; i < f->nb; i++) {
    st_budget *sb = &f->b[i];
    sb->name = rstr(r, &sb->nlen);
    sb->key = rstr(r, &sb->klen);
    sb->ktype = r32(r);
    sb->rolling = r32(r);
    sb->window_ms = r64(r);
    sb->cur = r64(r);
    if (r->bad) return CORRUPT("budget %u ends early", i);
    if (sb->ktype < LANE_T_INT || sb->ktype > LANE_T_STRING || sb->rolling > 1)
      return CORRUPT("budget '%.*s': key type %u, kind %u", (int)sb->nlen, sb->name, sb->ktype,
                     sb->rolling);
    sb->key0 = f->nk;
    if (st_key_add(f, 0) || read_entries(r, f, sb, err)) return -1;
    uint32_t nkeys = r32(r);
    if (r->bad || nkeys > (r->n - r->at) / 12)
      return CORRUPT("budget '%.*s': %u keys in what is left of the file", (int)sb->nlen,
                     sb->name, nkeys);
    for (uint32_t k = 0; k < nkeys; k++) {
      uint64_t h = r64(r);
      if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
      if (h == 0 || h == VM_TOMB) return CORRUPT("budget '%.*s': key hash %016llx",
                                                 (int)sb->nlen, sb->name, (unsigned long long)h);
      if (st_key_add(f, h) || read_entries(r, f, sb, err)) return -1;
    }
    sb->nkeys = f->nk - sb->key0;
  }
  return 0;
}
// NOLINTEND(clang-analyzer-unix.Malloc)

/* Version 1: only for the program that saved it (its checksum is in the
 * file); budgets in the program's order, entries tagged period + 1. */
static int read_v1(rbuf *r, st_file *f, const lane_runtime *rt, lane_error *err) {
  const bc_image *im = &rt->prog->im;
  f->nb = r32(r);
  if (r64(r) != rt->prog->checksum)
    return errf(err, LANE_EFORMAT, "a version-1 runtime file saved for another program "
                "(checksum differs): version 1 does not record key fields, so its spend "
                "cannot be matched; load it with the program that saved it and save again"), -1;
  if (r->bad || f->nb != rt->nbudgets)
    return errf(err, LANE_EFORMAT, "%u budgets in the file, %u in the program", f->nb,
                rt->nbudgets), -1;
  if (f->nb && !(f->b = calloc(f->nb, sizeof *f->b))) return f->oom = 1, -1;
  for (uint32_t i = 0; i < f->nb; i++) {
    st_budget *sb = &f->b[i];
    const vm_budget_rt *b = &rt->b[i];
    const bc_budget *bb = &im->budgets[i];
    const bc_str *name = &im->str[bb->name], *key = &im->str[im->fields[bb->key_field].name];
    uint32_t len = r32(r);
    if (r->bad || len != name->len || r->n - r->at < len || memcmp(r->p + r->at, name->p, len))
      return errf(err, LANE_EFORMAT, "budget '%s' is not where the file has it", name->p), -1;
    r->at += len;
    uint32_t ring = r32(r);
    if (ring != (b->span > 1 ? VM_ROLLING : 2) || r64(r) != b->sub_ms)
      return errf(err, LANE_EFORMAT, "budget '%s' has another window in the file", name->p), -1;
    *sb = (st_budget){name->p, key->p, name->len, key->len, im->fields[bb->key_field].type,
                      b->span > 1, b->window_ms, 0, f->nk, 0, -1};
    uint32_t nkeys = r32(r);
    if (r->bad || (uint64_t)nkeys * (8 + 16ull * ring) > r->n - r->at)
      return CORRUPT("budget '%s': %u keys in what is left of the file", name->p, nkeys);
    for (uint32_t k = 0; k < nkeys; k++) {
      uint64_t h = r64(r);   /* 0: the overflow account */
      if (st_key_add(f, h ? key_norm(h) : 0)) return -1;
      for (uint32_t e = 0; e < ring; e++) {
        uint64_t tag = r64(r);
        int64_t nanos = (int64_t)r64(r);
        if (tag & BUSY || nanos < 0) return CORRUPT("budget '%s': a bad entry", name->p);
        if (!tag || !nanos) continue;
        if (st_ent_add(f, tag - 1, nanos)) return -1;
        if (tag - 1 > sb->cur) sb->cur = tag - 1;
      }
    }
    sb->nkeys = f->nk - sb->key0;
  }
  return 0;
}

/* Reads a whole file image (r->p, r->n bytes; its checksum already
 * checked) into f. */
static int st_read(rbuf *rb, const lane_runtime *rt, st_file *f, lane_error *err) {
  rbuf r = {rb->p, rb->n - 8, 8, 0};
  uint32_t version = r32(&r);
  int rc;
  memset(f, 0, sizeof *f);
  if (version == 1) rc = read_v1(&r, f, rt, err);
  else if (version == RT_VERSION) rc = read_v2(&r, f, err);
  else return errf(err, LANE_EVERSION, "unsupported runtime file version %u (this runtime "
                   "reads versions 1 and 2)", version);
  if (f->oom) return errf(err, LANE_ENOMEM, "out of memory reading a runtime file");
  if (rc) return err ? err->code : LANE_EFORMAT;
  if (r.at != r.n) {
    CORRUPT("%zu bytes after the last budget", r.n - r.at);
    return LANE_EFORMAT;
  }
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Saved state: matching and applying
 * ------------------------------------------------------------------- */
static void note(lane_state_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(lane_state_report *rep, const char *fmt, ...) {
  char line[320];
  va_list ap;
  if (!rep) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  rep->nnotes++;
  if (rep->note) rep->note(rep->note_ctx, line);
  size_t used = strlen(rep->notes), len = strlen(line);
  if (used + len + 2 <= sizeof rep->notes) {
    memcpy(rep->notes + used, line, len);
    memcpy(rep->notes + used + len, "\n", 2);
  }
}

static void report_reset(lane_state_report *rep) {
  if (!rep) return;
  lane_note_fn fn = rep->note;
  void *ctx = rep->note_ctx;
  memset(rep, 0, sizeof *rep);
  rep->note = fn;
  rep->note_ctx = ctx;
}

static const char *type_name(uint32_t t) {
  static const char *const names[] = {"?", "int", "uint", "double", "bool", "string"};
  return t <= LANE_T_STRING ? names[t] : "?";
}

/* Budget indexes sorted by name, to match a file's budgets by name. */
typedef struct byname { const char *p; uint32_t len; int i; } byname;

static int byname_cmp(const void *a, const void *b) {
  const byname *x = a, *y = b;
  return sem_bytes_cmp(x->p, x->len, y->p, y->len);
}

/* Sets each saved budget's dst: the budget of rt's program that still
 * means the same, or -1 with a note saying why not. */
static int st_match(st_file *f, const lane_runtime *rt, lane_state_report *rep, lane_error *err) {
  const bc_image *im = &rt->prog->im;
  byname *prog = calloc(im->nbudgets + 1, sizeof *prog), *saved = calloc(f->nb + 1, sizeof *saved);
  unsigned char *used = calloc(im->nbudgets + 1, 1);
  if (!prog || !saved || !used) {
    free(prog); free(saved); free(used);
    return errf(err, LANE_ENOMEM, "out of memory matching saved budgets");
  }
  for (uint32_t i = 0; i < im->nbudgets; i++)
    prog[i] = (byname){im->str[im->budgets[i].name].p, im->str[im->budgets[i].name].len, (int)i};
  for (uint32_t i = 0; i < f->nb; i++) saved[i] = (byname){f->b[i].name, f->b[i].nlen, (int)i};
  qsort(prog, im->nbudgets, sizeof *prog, byname_cmp);
  qsort(saved, f->nb, sizeof *saved, byname_cmp);
  int rc = LANE_OK;
  for (uint32_t i = 1; i < f->nb && rc == LANE_OK; i++)
    if (!byname_cmp(&saved[i - 1], &saved[i])) {
      CORRUPT("budget '%.*s' appears twice", (int)saved[i].len, saved[i].p);
      rc = LANE_EFORMAT;
    }
  for (uint32_t i = 0; i < f->nb && rc == LANE_OK; i++) {
    st_budget *sb = &f->b[i];
    byname want = {sb->name, sb->nlen, 0};
    byname *hit = bsearch(&want, prog, im->nbudgets, sizeof *prog, byname_cmp);
    int n = (int)sb->nlen;
    sb->dst = -1;
    if (!hit) {
      note(rep, "budget '%.*s' is not in the program: its spend is dropped", n, sb->name);
      continue;
    }
    used[hit->i] = 1;
    const bc_budget *bb = &im->budgets[hit->i];
    const bc_field *kf = &im->fields[bb->key_field];
    const bc_str *kn = &im->str[kf->name];
    const vm_budget_rt *b = &rt->b[hit->i];
    if (sb->klen != kn->len || memcmp(sb->key, kn->p, kn->len) || sb->ktype != kf->type)
      note(rep, "budget '%.*s': its key was req.%.*s (%s) and is req.%s (%s) now: its spend is "
           "dropped", n, sb->name, (int)sb->klen, sb->key, type_name(sb->ktype), kn->p,
           type_name(kf->type));
    else if (sb->rolling != (b->span > 1))
      note(rep, "budget '%.*s': its window was %s and is %s now: its spend is dropped", n,
           sb->name, sb->rolling ? "rolling" : "fixed", sb->rolling ? "fixed" : "rolling");
    else if (sb->window_ms != b->window_ms)
      note(rep, "budget '%.*s': its window was %llu ms and is %llu ms now: its spend is dropped",
           n, sb->name, (unsigned long long)sb->window_ms, (unsigned long long)b->window_ms);
    else
      sb->dst = hit->i;
  }
  if (rep && rc == LANE_OK) {
    for (uint32_t i = 0; i < f->nb; i++) {
      if (f->b[i].dst >= 0) rep->budgets_kept++;
      else rep->budgets_dropped++;
    }
    for (uint32_t i = 0; i < im->nbudgets; i++) rep->budgets_new += !used[i];
  }
  free(prog);
  free(saved);
  free(used);
  return rc;
}

/* Applies every kept budget: first each saved key's spend is emptied (its
 * spend is replaced, so loading twice is loading once), then the saved
 * entries that are still in the window are recorded, shifted back when
 * the file is ahead of this runtime's clock. Cannot fail: a key that finds
 * no slot goes to the overflow account. */
static void st_apply(lane_runtime *rt, const st_file *f, lane_state_report *rep, uint64_t now) {
  for (uint32_t i = 0; i < f->nb; i++) {
    const st_budget *sb = &f->b[i];
    if (sb->dst < 0) continue;
    vm_budget_rt *b = &rt->b[sb->dst];
    uint64_t cur = bud_cur(b, now);
    for (uint32_t k = sb->key0; k < sb->key0 + sb->nkeys; k++)
      if (f->k[k].hash) clear_key(b, f->k[k].hash, cur);
  }
  for (uint32_t i = 0; i < f->nb; i++) {
    const st_budget *sb = &f->b[i];
    if (sb->dst < 0) continue;
    vm_budget_rt *b = &rt->b[sb->dst];
    uint64_t cur = bud_cur(b, now), shift = sb->cur > cur ? sb->cur - cur : 0;
    if (shift && rep) rep->budgets_shifted++;
    for (uint32_t k = sb->key0; k < sb->key0 + sb->nkeys; k++) {
      const st_key *sk = &f->k[k];
      int any = 0, own = 1;
      for (uint32_t e = sk->ent0; e < sk->ent0 + sk->nent; e++) {
        uint64_t p = f->e[e].period;
        if (p < shift || p - shift + b->span <= cur || !f->e[e].nanos) continue;
        any = 1;
        if (!sk->hash) to_overflow(rt, b, 0, p - shift, f->e[e].nanos);
        else own &= record(rt, b, sk->hash, cur, p - shift, f->e[e].nanos);
      }
      if (!rep || !sk->hash) continue;
      if (!any) rep->keys_expired++;
      else if (own) rep->keys_kept++;
      else rep->keys_overflowed++;
    }
  }
}

/* Loads a file image (p, n) into rt: checked whole first, then matched and
 * applied; nothing changes unless it all reads right. */
static int load_image(lane_runtime *rt, const unsigned char *p, size_t n, const char *what,
                      lane_state_report *rep, lane_error *err) {
  rbuf r = {p, n, 0, 0};
  st_file f;
  lane_state_report local;   /* without a report, err still gets its summary */
  int rc;
  if (!rep && err) {
    memset(&local, 0, sizeof local);
    rep = &local;
  }
  report_reset(rep);
  if (n < 8 + 4 + 8 || memcmp(p, RT_MAGIC, 8) != 0)
    return errf(err, LANE_EFORMAT, "'%s' is not a lane runtime file", what);
  else if (bc_fnv1a64(p, n - 8, BC_FNV_OFFSET) != (r.at = n - 8, r64(&r)))
    return errf(err, LANE_EFORMAT, "checksum mismatch: '%s' is corrupted", what);
  r.n = n;
  if ((rc = st_read(&r, rt, &f, err)) == LANE_OK && (rc = st_match(&f, rt, rep, err)) == LANE_OK) {
    st_apply(rt, &f, rep, vm_now(rt));
    if (err) {
      err->code = LANE_OK;
      err->line = 0;
      int k = snprintf(err->message, sizeof err->message, "loaded %u budgets, dropped %u",
                       rep->budgets_kept, rep->budgets_dropped);
      for (const char *c = rep->notes; *c && k + 3 < (int)sizeof err->message; c++) {
        if (c == rep->notes) err->message[k++] = ':', err->message[k++] = ' ';
        if (*c != '\n') err->message[k++] = *c;
        else if (c[1]) err->message[k++] = ';', err->message[k++] = ' ';
      }
      err->message[k < (int)sizeof err->message ? k : (int)sizeof err->message - 1] = 0;
    }
  }
  st_free(&f);
  return rc;
}

int lane_runtime_load_mem(lane_runtime *rt, const void *bytes, size_t n,
                          lane_state_report *report, lane_error *err) {
  if (!rt || (!bytes && n)) return errf(err, LANE_EARG, "no runtime or bytes");
  return load_image(rt, bytes ? bytes : "", n, "(memory)", report, err);
}

int lane_runtime_load_ex(lane_runtime *rt, const char *path, lane_state_report *report,
                         lane_error *err) {
  if (!rt || !path) { errf(err, LANE_EARG, "no runtime or path"); return LANE_EARG; }
  FILE *f = fopen(path, "rb");
  if (!f) return errf(err, LANE_EARG, "cannot read '%s': %s", path, strerror(errno));
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
  int rerr = ferror(f);
  fclose(f);
  if (!p && cap >= ((size_t)1 << 31))
    return errf(err, LANE_EFORMAT, "'%s' is larger than 2 GiB, the limit of a runtime file", path);
  if (!p) return errf(err, LANE_ENOMEM, "out of memory reading '%s'", path);
  if (rerr) { free(p); return errf(err, LANE_EARG, "cannot read '%s'", path); }
  int rc = load_image(rt, p, n, path, report, err);
  free(p);
  return rc;
}

int lane_runtime_load(lane_runtime *rt, const char *path, lane_error *err) {
  return lane_runtime_load_ex(rt, path, NULL, err);
}

/* ---------------------------------------------------------------------
 * Saved state: writing a file that is complete or not there
 * ------------------------------------------------------------------- */
static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Whether fd holds exactly p[0..n). */
static int reads_back(int fd, const unsigned char *p, size_t n) {
  unsigned char buf[1 << 14];
  size_t at = 0;
  for (;;) {
    ssize_t k = pread(fd, buf, sizeof buf, (off_t)at);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return 0;
    if (k == 0) return at == n;
    if (at + (size_t)k > n || memcmp(buf, p + at, (size_t)k)) return 0;
    at += (size_t)k;
  }
}

/* Syncs the directory holding path, so the rename is durable. */
static int sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = fd < 0 ? -1 : 0;
  free(dir);
  if (fd >= 0 && fsync(fd) != 0 && errno != EINVAL) rc = -1;   /* EINVAL: no sync for it */
  if (fd >= 0) close(fd);
  return rc;
}

static int write_file(const lane_runtime *rt, const char *path, const unsigned char *p, size_t n,
                      lane_error *err) {
  size_t len = strlen(path) + 64;
  char *tmp = malloc(len);
  if (!tmp) return errf(err, LANE_ENOMEM, "out of memory saving");
  int fd = -1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  for (int tries = 0; fd < 0 && tries < 100; tries++) {
    uint64_t seq = atomic_fetch_add_explicit(&((lane_runtime *)rt)->saves, 1, memory_order_relaxed);
    snprintf(tmp, len, "%s.tmp.%ld.%llx", path, (long)getpid(),
             (unsigned long long)(seq ^ ((uint64_t)ts.tv_nsec << 20) ^ (uintptr_t)rt));
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    errf(err, LANE_EARG, "cannot write '%s': %s", tmp, strerror(errno));
    free(tmp);
    return LANE_EARG;
  }
  const char *why = NULL;
  if (write_all(fd, p, n)) why = "write";
  else if (fsync(fd)) why = "fsync";
  else if (!reads_back(fd, p, n)) why = "read back";
  int e = errno;
  if (close(fd) && !why) why = "close", e = errno;
  if (!why && rename(tmp, path)) why = "rename", e = errno;
  if (why) {
    unlink(tmp);
    errf(err, LANE_EARG, "cannot write '%s' (%s): %s", path, why,
         !strcmp(why, "read back") ? "the file read back differs" : strerror(e));
    free(tmp);
    return LANE_EARG;
  }
  free(tmp);
  if (sync_dir(path))
    return errf(err, LANE_EARG, "saved '%s', but its directory could not be synced: %s", path,
                strerror(errno));
  return LANE_OK;
}

int lane_runtime_save(const lane_runtime *rt, const char *path, lane_error *err) {
  if (!rt || !path) { errf(err, LANE_EARG, "no runtime or path"); return LANE_EARG; }
  wbuf w;
  st_file f;
  save_bytes(rt, &w);
  if (w.oom) { free(w.p); errf(err, LANE_ENOMEM, "out of memory saving"); return LANE_ENOMEM; }
  /* What is written must read back: checked on the bytes before they go. */
  rbuf r = {w.p, w.n, 0, 0};
  int rc = st_read(&r, rt, &f, err);
  st_free(&f);
  if (rc == LANE_OK) rc = write_file(rt, path, w.p, w.n, err);
  free(w.p);
  return rc;
}

/* ---------------------------------------------------------------------
 * Carrying state to another runtime
 * ------------------------------------------------------------------- */
static void copy_model(vm_model *d, const vm_model *s, int stats) {
  if (stats) {
    for (int i = 0; i < VM_SLOTS; i++) {
      const vm_slot *ss = &s->slot[i];
      vm_slot *ds = &d->slot[i];
      uint64_t tag = LDA(&ss->tag) & ~BUSY;
      ST(&ds->calls, LD(&ss->calls));
      ST(&ds->fails, LD(&ss->fails));
      for (int b = 0; b < VM_HBUCKETS; b++) ST(&ds->hist[b], LD(&ss->hist[b]));
      STR(&ds->tag, tag);
    }
    ST(&d->p50, LD(&s->p50));
    ST(&d->p95, LD(&s->p95));
    ST(&d->err, LD(&s->err));
    ST(&d->samples, LD(&s->samples));
    ST(&d->lat_samples, LD(&s->lat_samples));
    ST(&d->valid_until, LD(&s->valid_until));
    STR(&d->cached_at, LDA(&s->cached_at));
  }
  ST(&d->until, LD(&s->until));
  STR(&d->state, LDA(&s->state));
}

/* Each model of dst takes the live state of src's model of the same name. */
static int carry_models(lane_runtime *dst, const lane_runtime *src, lane_state_report *rep,
                        lane_error *err) {
  const bc_image *di = &dst->prog->im, *si = &src->prog->im;
  byname *names = calloc(si->nmodels + 1, sizeof *names);
  unsigned char *used = calloc(si->nmodels + 1, 1);
  if (!names || !used) {
    free(names);
    free(used);
    return errf(err, LANE_ENOMEM, "out of memory carrying model state");
  }
  for (uint32_t i = 0; i < si->nmodels; i++)
    names[i] = (byname){si->str[si->models[i].name].p, si->str[si->models[i].name].len, (int)i};
  qsort(names, si->nmodels, sizeof *names, byname_cmp);
  int stats = dst->slot_ms == src->slot_ms;
  for (uint32_t i = 0; i < di->nmodels; i++) {
    const bc_str *n = &di->str[di->models[i].name];
    byname want = {n->p, n->len, 0};
    byname *hit = bsearch(&want, names, si->nmodels, sizeof *names, byname_cmp);
    if (!hit) continue;
    copy_model(&dst->m[i], &src->m[hit->i], stats);
    used[hit->i] = 1;
    if (rep) rep->models_kept++;
  }
  if (!stats)
    note(rep, "live latency and error rates not carried: the window is %u ms here and %u ms "
         "there (breakers are)", dst->opt.window_ms, src->opt.window_ms);
  for (uint32_t i = 0; i < si->nmodels; i++) {
    if (used[i]) continue;
    note(rep, "model '%s' is not in the program: its live state is dropped",
         si->str[si->models[i].name].p);
    if (rep) rep->models_dropped++;
  }
  free(names);
  free(used);
  return LANE_OK;
}

int lane_runtime_carry(lane_runtime *dst, const lane_runtime *src, lane_state_report *report,
                       lane_error *err) {
  if (!dst || !src || dst == src)
    return errf(err, LANE_EARG, "carry needs two runtimes");
  wbuf w;
  st_file f;
  save_bytes(src, &w);
  if (w.oom) { free(w.p); return errf(err, LANE_ENOMEM, "out of memory carrying state"); }
  report_reset(report);
  rbuf r = {w.p, w.n, 0, 0};
  int rc = st_read(&r, dst, &f, err);
  if (rc == LANE_OK) rc = st_match(&f, dst, report, err);
  if (rc == LANE_OK) rc = carry_models(dst, src, report, err);
  if (rc == LANE_OK) st_apply(dst, &f, report, vm_now(dst));
  st_free(&f);
  free(w.p);
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

static const char *const ON_FULL[] = {"shared", "closed", "open"};

/* One budget's keys with spend now (the overflow account as key_hash 0). */
static void jbudget(jbuf *j, const lane_runtime *rt, uint32_t i, uint64_t now) {
  const vm_budget_rt *b = &rt->b[i];
  const bc_image *im = &rt->prog->im;
  uint64_t cur = bud_cur(b, now);
  int k = 0;
  jprintf(j, "%s\n  {\"budget\": ", i ? "," : "");
  jstring(j, &im->str[im->budgets[i].name]);
  jprintf(j, ", \"on_full\": \"%s\", \"keys\": [", ON_FULL[LD(&b->on_full) % 3]);
  for (uint32_t l = 0; l < b->nlevels; l++) {
    unsigned char *blk = level_get(b, l);
    for (uint32_t s = 0, n = level_slots(b, l); blk && s < n; s++) {
      vm_ref r = slot_ref(b, blk, n, s);
      uint64_t h = LDA(r.h);
      int64_t nanos = h && h != VM_TOMB ? slot_spend(b, &r, h, cur) : 0;
      if (!nanos) continue;
      jprintf(j, "%s{\"key_hash\": \"%016llx\", \"spent\": %.17g}", k++ ? ", " : "",
              (unsigned long long)h, (double)nanos / 1e9);
    }
  }
  int64_t ovf = ring_spend(b, b->ovf, cur);
  if (ovf)
    jprintf(j, "%s{\"key_hash\": \"%016llx\", \"spent\": %.17g}", k++ ? ", " : "", 0ull,
            (double)ovf / 1e9);
  jprintf(j, "]}");
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
  for (uint32_t i = 0; i < rt->nbudgets; i++) jbudget(&j, rt, i, now);
  jprintf(&j, "%s]}\n", rt->nbudgets ? "\n" : "");
  return j.n;
}

/*
 * swap.c -- a runtime's hub, its views, and swapping the program it
 * serves without stopping decisions (lane_runtime_swap).
 *
 * A runtime is a hub (vm.h): live state in objects -- one per model, one
 * per budget -- and views, each one program with a pointer per model and
 * per budget to the object that holds its state. The hub's handle, what
 * lane_runtime_new returns, stands for whichever view is active.
 *
 * A swap builds a view of the new program whose pointers reuse the active
 * view's objects where they mean the same thing (a model of the same
 * name, or else of the same provider and id; a budget of the same name
 * with the same key field and window), and fresh objects elsewhere; then
 * it publishes the view. Nothing is copied, so a charge or an observation
 * made through the old view while the swap runs, or long after through a
 * view a request pinned, lands in the same object the new view reads:
 * spend is exact across any number of swaps.
 *
 * Who may still be using a view (memory reclamation):
 *   - A call on the handle (lane_decide(handle, ...)) pins the active view
 *     for its length with a sleepable-RCU-like scheme: it adds one to a
 *     counter of its thread's stripe in the current of two sets, reads the
 *     active view, works, and subtracts one. A swap publishes the new view,
 *     then twice flips the set new pins use and waits for the set it left
 *     to drain (two flips: a pin may have read the set number just before
 *     a flip). After that no call on the handle can still be using the old
 *     view, and decisions never wait for anything: the swap does.
 *   - lane_runtime_acquire pins a view for longer (a request's whole life,
 *     upstream calls included) with a reference count, taken inside such a
 *     pin so the view cannot go between reading and counting it. The hub
 *     holds one reference to the active view; the last release frees it.
 * Stripes are 64-byte lines picked per thread, so threads deciding at once
 * do not share a counter's cache line.
 */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define STRIPES 64                /* pin counters per set (a power of two) */

typedef struct stripe {
  _Alignas(64) atomic_uint_least64_t n;   /* pins inside, this stripe and set */
} stripe;

struct vm_hub {
  stripe                pins[2][STRIPES]; /* calls on the handle, by set and stripe */
  atomic_uint           set;        /* the set new pins count in */
  atomic_uintptr_t      cur;        /* the active view */
  atomic_int            lock;       /* 1 while a swap runs */
  atomic_size_t         bytes;      /* allocated for the hub's state */
  atomic_uint_least64_t saves;      /* lane_runtime_save calls: temp names */
  atomic_uint_least64_t logseq;     /* decision records without an id (log.c) */
  /* breaker changes, read by every decision: a line of its own */
  _Alignas(64) atomic_uint_least64_t breakers;
  char                  pad_breakers[56];
  void                 *raw;        /* what calloc gave, the hub 64-aligned in it */
  lane_fleet_hooks      fleet;      /* lane_runtime_set_fleet's */
  int                   has_fleet;  /* 1 while fleet is set */
  lane_runtime          handle;     /* what lane_runtime_new returns */
};

static vm_hub *hub_of(const lane_runtime *rt) { return rt->hub; }

size_t vm_hub_bytes(void) { return sizeof(vm_hub) + 63; }

const lane_fleet_hooks *vm_fleet(const lane_runtime *rt) {
  const vm_hub *h = hub_of(rt);
  return h->has_fleet ? &h->fleet : NULL;
}

int lane_runtime_set_fleet(lane_runtime *rt, const lane_fleet_hooks *hooks) {
  if (!rt || !rt->handle) return LANE_EARG;
  vm_hub *h = hub_of(rt);
  if (hooks && h->has_fleet) return LANE_EARG;   /* one adapter at a time */
  h->has_fleet = 0;
  if (hooks) {
    h->fleet = *hooks;
    h->has_fleet = 1;
  }
  return LANE_OK;
}

void vm_breaker_moved(const lane_runtime *rt) {
  atomic_fetch_add_explicit(&hub_of(rt)->breakers, 1, memory_order_acq_rel);
}

uint64_t vm_breaker_count(const lane_runtime *rt) {
  return atomic_load_explicit(&hub_of(rt)->breakers, memory_order_acquire);
}

void *vm_calloc(const lane_runtime *rt, size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p) atomic_fetch_add_explicit(&hub_of(rt)->bytes, n * size, memory_order_relaxed);
  return p;
}

void vm_count_bytes(const lane_runtime *rt, size_t n) {
  atomic_fetch_add_explicit(&hub_of(rt)->bytes, n, memory_order_relaxed);
}

void vm_uncount_bytes(const lane_runtime *rt, size_t n) {
  atomic_fetch_sub_explicit(&hub_of(rt)->bytes, n, memory_order_relaxed);
}

uint64_t vm_next_save(const lane_runtime *rt) {
  return atomic_fetch_add_explicit(&hub_of(rt)->saves, 1, memory_order_relaxed);
}

uint64_t vm_next_logseq(const lane_runtime *rt) {
  return atomic_fetch_add_explicit(&hub_of(rt)->logseq, 1, memory_order_relaxed);
}

size_t lane_runtime_memory(const lane_runtime *rt) {
  return rt ? atomic_load_explicit(&hub_of(rt)->bytes, memory_order_relaxed) : 0;
}

/* ---------------------------------------------------------------------
 * Pins
 * ------------------------------------------------------------------- */
/* This thread's stripe, given out in turn at its first pin. */
static unsigned my_stripe(void) {
  static atomic_uint next;
  static _Thread_local unsigned mine;   /* stripe + 1; 0 not yet given */
  if (!mine) mine = (atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % STRIPES) + 1;
  return mine - 1;
}

lane_runtime *vm_enter_hub(lane_runtime *rt, vm_pin *pin) {
  vm_hub *h = hub_of(rt);
  unsigned s = my_stripe(), set = atomic_load(&h->set) & 1;
  atomic_fetch_add(&h->pins[set][s].n, 1);          /* seq_cst: before reading cur */
  pin->hub = h;
  pin->idx = set;
  pin->stripe = s;
  return (lane_runtime *)atomic_load(&h->cur);
}

void vm_leave_hub(vm_pin *pin) {
  atomic_fetch_sub_explicit(&pin->hub->pins[pin->idx][pin->stripe].n, 1, memory_order_release);
}

static void pause_a_little(unsigned spins) {
  if (spins < 64) return;
  if (spins < 1024) { sched_yield(); return; }
  struct timespec ts = {0, 50000};   /* a pin lasts one call: this is rare */
  nanosleep(&ts, NULL);
}

/* Waits until no call on the handle that may have read the view active
 * before the last store to cur is still inside its pin. */
static void wait_for_pins(vm_hub *h) {
  for (int flip = 0; flip < 2; flip++) {
    unsigned old = atomic_load(&h->set) & 1;
    atomic_store(&h->set, old ^ 1);
    for (unsigned s = 0; s < STRIPES; s++)
      for (unsigned spins = 0; atomic_load(&h->pins[old][s].n) != 0; spins++) pause_a_little(spins);
  }
}

/* ---------------------------------------------------------------------
 * Views
 * ------------------------------------------------------------------- */
static void view_free(lane_runtime *v) {
  for (uint32_t i = 0; v->m && i < v->nmodels; i++) vm_model_unref(v, v->m[i]);
  for (uint32_t i = 0; v->b && i < v->nbudgets; i++) vm_budget_unref(v, v->b[i]);
  vm_uncount_bytes(v, sizeof *v + (v->nmodels + 1) * sizeof *v->m +
                          (v->nbudgets + 1) * sizeof *v->b);
  if (v->owns_prog) lane_program_free((lane_program *)v->prog);
  free(v->m);
  free(v->b);
  free(v);
}

static void view_unref(lane_runtime *v) {
  if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) view_free(v);
}

/* A view of p with empty state pointers (NULL when memory runs out). */
static lane_runtime *view_new(vm_hub *h, const lane_program *p) {
  lane_runtime *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->prog = p;
  v->opt = h->handle.opt;
  v->slot_ms = h->handle.slot_ms;
  v->hub = h;
  v->nmodels = p->im.nmodels;
  v->nbudgets = p->im.nbudgets;
  v->m = calloc(v->nmodels + 1, sizeof *v->m);
  v->b = calloc(v->nbudgets + 1, sizeof *v->b);
  vm_count_bytes(v, sizeof *v + (v->nmodels + 1) * sizeof *v->m +
                        (v->nbudgets + 1) * sizeof *v->b);
  ST(&v->refs, 1);
  if (!v->m || !v->b) { view_free(v); return NULL; }
  return v;
}

/* Fills every pointer still NULL with a fresh object: 0, or -1 when
 * memory runs out. */
static int view_fill(lane_runtime *v) {
  for (uint32_t i = 0; i < v->nmodels; i++)
    if (!v->m[i] && !(v->m[i] = vm_model_new(v))) return -1;
  for (uint32_t i = 0; i < v->nbudgets; i++)
    if (!v->b[i] && !(v->b[i] = vm_budget_new(v, &v->prog->im.budgets[i]))) return -1;
  return 0;
}

/* ---------------------------------------------------------------------
 * Matching a new program's models and budgets to the active view's
 * ------------------------------------------------------------------- */
static bc_str str(const bc_image *im, uint32_t i) { return im->str[i]; }

/* Each model of v takes the state object of old's model of the same name,
 * or else of the one model of the same provider and id none took. */
static int match_models(lane_runtime *v, const lane_runtime *old, lane_state_report *rep) {
  const bc_image *ni = &v->prog->im, *oi = &old->prog->im;
  uint32_t n = oi->nmodels;
  vm_byname *byname = calloc(n + 1, sizeof *byname);
  unsigned char *used = calloc(n + 1, 1);
  if (!byname || !used) { free(byname); free(used); return -1; }
  for (uint32_t i = 0; i < n; i++) {
    bc_str s = str(oi, oi->models[i].name);
    byname[i] = (vm_byname){s.p, s.len, (int)i};
  }
  qsort(byname, n, sizeof *byname, vm_byname_cmp);
  for (uint32_t i = 0; i < ni->nmodels; i++) {
    bc_str s = str(ni, ni->models[i].name);
    vm_byname *hit = vm_byname_find(byname, n, s.p, s.len);
    if (hit && !used[hit->i]) {
      v->m[i] = old->m[hit->i];
      used[hit->i] = 1;
    }
  }
  for (uint32_t i = 0; i < ni->nmodels; i++) {   /* renamed: the same provider and id */
    if (v->m[i]) continue;
    const bc_model *nm = &ni->models[i];
    uint32_t found = n, count = 0;
    for (uint32_t k = 0; k < n; k++) {
      const bc_model *om = &oi->models[k];
      bc_str a = str(ni, nm->provider), b = str(oi, om->provider);
      bc_str c = str(ni, nm->id), d = str(oi, om->id);
      if (a.len == b.len && !memcmp(a.p, b.p, a.len) && c.len == d.len &&
          !memcmp(c.p, d.p, c.len)) {
        count++;
        found = k;
      }
    }
    if (count == 1 && !used[found]) {
      v->m[i] = old->m[found];
      used[found] = 1;
      vm_note(rep, "model '%s' takes the live state of '%s' (%s, %s)", str(ni, nm->name).p,
              str(oi, oi->models[found].name).p, str(ni, nm->provider).p, str(ni, nm->id).p);
    }
  }
  for (uint32_t i = 0; i < ni->nmodels; i++)
    if (v->m[i]) {
      atomic_fetch_add_explicit(&v->m[i]->refs, 1, memory_order_relaxed);
      if (rep) rep->models_kept++;
    }
  for (uint32_t k = 0; k < n; k++) {
    if (used[k]) continue;
    vm_note(rep, "model '%s' is not in the new program: its live state is dropped",
            str(oi, oi->models[k].name).p);
    if (rep) rep->models_dropped++;
  }
  free(byname);
  free(used);
  return 0;
}

/* A budget's window as its state keeps it: rolling or fixed, whole ms. */
static void window_of(const bc_budget *bb, int *rolling, uint64_t *ms) {
  double wd = bb->window_ms;
  *rolling = (bb->flags & BC_BUDGET_ROLLING) != 0;
  *ms = wd < 18446744073709551616.0 ? (uint64_t)wd : UINT64_MAX;
}

/* Each budget of v takes the state object of old's budget of the same
 * name, key field and window; from[i], old's budget that budget i of v
 * took it from, is left alone for the others. */
static int match_budgets(lane_runtime *v, const lane_runtime *old, uint32_t *from,
                         lane_state_report *rep) {
  const bc_image *ni = &v->prog->im, *oi = &old->prog->im;
  uint32_t n = ni->nbudgets;
  vm_byname *byname = calloc(n + 1, sizeof *byname);
  unsigned char *seen = calloc(n + 1, 1);
  if (!byname || !seen) { free(byname); free(seen); return -1; }
  for (uint32_t i = 0; i < n; i++) {
    bc_str s = str(ni, ni->budgets[i].name);
    byname[i] = (vm_byname){s.p, s.len, (int)i};
  }
  qsort(byname, n, sizeof *byname, vm_byname_cmp);
  for (uint32_t k = 0; k < oi->nbudgets; k++) {
    const bc_budget *ob = &oi->budgets[k];
    bc_str name = str(oi, ob->name), okey, nkey;
    vm_byname *hit = vm_byname_find(byname, n, name.p, name.len);
    if (!hit) {
      vm_note(rep, "budget '%s' is not in the new program: its spend is dropped", name.p);
      if (rep) rep->budgets_dropped++;
      continue;
    }
    seen[hit->i] = 1;
    const bc_budget *nb = &ni->budgets[hit->i];
    uint32_t otype = vm_budget_key(oi, k, &okey), ntype = vm_budget_key(ni, hit->i, &nkey);
    int orolling, nrolling;
    uint64_t oms, nms;
    window_of(ob, &orolling, &oms);
    window_of(nb, &nrolling, &nms);
    if (!vm_budget_same(rep, name.p, name.len, okey.p, okey.len, otype, orolling, oms, nkey.p,
                        nkey.len, ntype, nrolling, nms)) {
      if (rep) rep->budgets_dropped++;
      continue;
    }
    vm_budget_rt *b = old->b[k];
    v->b[hit->i] = b;
    from[hit->i] = k;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    if (rep) {
      rep->budgets_kept++;
      rep->keys_kept += LD(&b->nkeys);
    }
  }
  for (uint32_t i = 0; i < n; i++)
    if (rep && !seen[i]) rep->budgets_new++;
  free(byname);
  free(seen);
  return 0;
}

/* ---------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------- */
uint64_t lane_clock_realtime(void *ctx) {
  struct timespec ts;
  (void)ctx;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t lane_clock_coarse(void *ctx) {
#ifdef CLOCK_REALTIME_COARSE
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0)
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
  return lane_clock_realtime(ctx);
}

/* lane_runtime_options.frozen_ms: ctx is the hub's own copy of it. */
static uint64_t frozen_clock(void *ctx) { return *(const uint64_t *)ctx; }

lane_runtime *lane_runtime_new_with(const lane_program *p, const lane_runtime_options *opt,
                                    lane_error *err) {
  if (!p) { errf(err, LANE_EARG, "no program given"); return NULL; }
  if (opt && opt->budget_keys > VM_MAX_KEYS) {
    errf(err, LANE_EARG, "budget_keys %u is above the limit of %u", opt->budget_keys,
         VM_MAX_KEYS);
    return NULL;
  }
  /* calloc, aligned by hand: a host's malloc interposer (t_alloc) or a
   * sanitizer's sees one allocator for every call of liblane. */
  void *raw = calloc(1, sizeof(vm_hub) + 63);
  if (!raw) { errf(err, LANE_ENOMEM, "out of memory creating a runtime"); return NULL; }
  vm_hub *h = (vm_hub *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
  h->raw = raw;
  lane_runtime *rt = &h->handle;
  ST(&h->bytes, sizeof(vm_hub) + 63);
  if (opt) rt->opt = *opt;
  if (!rt->opt.clock && rt->opt.frozen) {
    rt->opt.clock = frozen_clock;
    rt->opt.clock_ctx = &rt->opt.frozen_ms;
  }
  if (!rt->opt.clock) rt->opt.clock = lane_clock_realtime;
  if (!rt->opt.window_ms) rt->opt.window_ms = 60000;
  if (rt->opt.window_ms < VM_SLOTS) rt->opt.window_ms = VM_SLOTS;
  if (!rt->opt.min_samples) rt->opt.min_samples = 20;
  if (!rt->opt.breaker_failures) rt->opt.breaker_failures = 5;
  if (!rt->opt.breaker_cooldown_ms) rt->opt.breaker_cooldown_ms = 30000;
  if (!rt->opt.budget_keys) rt->opt.budget_keys = 4096;
  rt->prog = p;
  rt->slot_ms = rt->opt.window_ms / VM_SLOTS;
  rt->hub = h;
  rt->handle = 1;
  lane_runtime *v = view_new(h, p);
  if (!v || view_fill(v) != 0) {
    if (v) view_free(v);
    free(h->raw);
    errf(err, LANE_ENOMEM, "out of memory creating a runtime");
    return NULL;
  }
  v->gen = 1;
  atomic_store(&h->cur, (uintptr_t)v);
  return rt;
}

lane_runtime *lane_runtime_new(const lane_program *p, lane_error *err) {
  return lane_runtime_new_with(p, NULL, err);
}

void lane_runtime_free(lane_runtime *rt) {
  if (!rt) return;
  if (!rt->handle) { lane_runtime_release(rt); return; }
  vm_hub *h = hub_of(rt);
  view_unref((lane_runtime *)atomic_load(&h->cur));
  free(h->raw);
}

lane_runtime *lane_runtime_acquire(lane_runtime *rt) {
  if (!rt) return NULL;
  if (!rt->handle) {
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
  }
  vm_pin pin;
  lane_runtime *v = vm_enter_hub(rt, &pin);
  atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
  vm_leave_hub(&pin);
  return v;
}

void lane_runtime_release(lane_runtime *view) {
  if (view && !view->handle) view_unref(view);
}

const lane_program *lane_runtime_program(const lane_runtime *rt) {
  if (!rt) return NULL;
  if (!rt->handle) return rt->prog;
  return ((const lane_runtime *)atomic_load(&hub_of(rt)->cur))->prog;
}

uint64_t lane_runtime_generation(const lane_runtime *rt) {
  if (!rt) return 0;
  if (!rt->handle) return rt->gen;
  return ((const lane_runtime *)atomic_load(&hub_of(rt)->cur))->gen;
}

int lane_runtime_swap(lane_runtime *rt, lane_program *p, lane_state_report *report,
                      lane_error *err) {
  vm_report_reset(report);
  if (!rt || !p) return errf(err, LANE_EARG, "swap needs a runtime and a program");
  if (!rt->handle)
    return errf(err, LANE_EARG, "swap the runtime lane_runtime_new made, not a view from "
                                "lane_runtime_acquire");
  vm_hub *h = hub_of(rt);
  int unlocked = 0;
  for (unsigned spins = 0; !atomic_compare_exchange_weak(&h->lock, &unlocked, 1); spins++) {
    unlocked = 0;
    pause_a_little(spins);
  }
  lane_runtime *old = (lane_runtime *)atomic_load(&h->cur);
  int rc = LANE_OK;
  if (p == old->prog) {
    rc = errf(err, LANE_EARG, "that program is the one active: swap in a program once");
  } else {
    /* What the swap keeps is reported as it is built; a failure below
     * empties the report again: nothing was kept, nothing changed. */
    lane_runtime *v = view_new(h, p);
    uint32_t *from = malloc((p->im.nbudgets + 1) * sizeof *from);
    if (from)
      for (uint32_t i = 0; i < p->im.nbudgets; i++) from[i] = BC_NONE;
    if (!v || !from || match_models(v, old, report) != 0 ||
        match_budgets(v, old, from, report) != 0 || view_fill(v) != 0) {
      if (v) view_free(v);
      free(from);
      vm_report_reset(report);
      rc = errf(err, LANE_ENOMEM, "out of memory swapping programs: the old one stays");
    } else {
      /* A kept budget follows its new policy's on_full where that changed. */
      for (uint32_t i = 0; i < v->nbudgets; i++) {
        if (from[i] == BC_NONE) continue;
        uint32_t was = vm_budget_policy_on_full(&old->prog->im.budgets[from[i]]);
        uint32_t now = vm_budget_policy_on_full(&p->im.budgets[i]);
        if (was != now) ST(&v->b[i]->on_full, now);
      }
      free(from);
      v->owns_prog = 1;
      v->gen = old->gen + 1;
      atomic_store(&h->cur, (uintptr_t)v);
      wait_for_pins(h);
    }
  }
  atomic_store(&h->lock, 0);
  if (rc == LANE_OK) view_unref(old);   /* the hub's reference: freed with its last pin */
  return rc;
}

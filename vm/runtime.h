/*
 * runtime.h -- what runtime.c (live state: windows, breakers, budget key
 * tables) and state.c (saving, loading, carrying state, snapshots) share:
 * the atomics' shorthands, a slot's parts, and the key-table operations
 * the state file is read into and written from. Internal to liblane.
 */
#ifndef LANE_RUNTIME_H
#define LANE_RUNTIME_H

#include "sem.h"
#include "vm.h"

#define BUSY (1ull << 63)         /* tag bit: slot being cleared */
#define LD(a)     atomic_load_explicit((a), memory_order_relaxed)
#define LDA(a)    atomic_load_explicit((a), memory_order_acquire)
#define ST(a, v)  atomic_store_explicit((a), (v), memory_order_relaxed)
#define STR(a, v) atomic_store_explicit((a), (v), memory_order_release)

/* A key slot's parts, as vm_slot_ref finds them. */
typedef struct vm_ref {
  atomic_uint_least64_t *h;   /* the slot's key hash */
  vm_meta               *m;   /* its state */
  vm_entry              *e;   /* its ring of entries */
} vm_ref;

/* A budget's current period at time now: the clock's, or the newest
 * period holding spend if that is later (the clock stepped back). */
uint64_t vm_bud_cur(const vm_budget_rt *b, uint64_t now);
/* Forgets key h of budget b (its slot becomes a tombstone). */
void vm_clear_key(vm_budget_rt *b, uint64_t h, uint64_t cur);
/* A key hash as stored: 0 and the tombstone are moved off. */
uint64_t vm_key_norm(uint64_t h);
/* Level `level`'s slots, allocated or NULL, and how many it holds. */
unsigned char *vm_level_get(const vm_budget_rt *b, uint32_t level);
uint32_t vm_level_slots(const vm_budget_rt *b, uint32_t level);
/* Adds nanos to key h's period p (the budget's current period cur);
 * 1 if the key has a slot of its own, 0 if it went to the overflow
 * account. */
int vm_record(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t cur, uint64_t p, int64_t nanos);
/* Spend in a ring of entries within the budget's span from cur. */
int64_t vm_ring_spend(const vm_budget_rt *b, const vm_entry *ring, uint64_t cur);
/* Slot i of a level block of n slots. */
vm_ref vm_slot_ref(const vm_budget_rt *b, unsigned char *blk, uint32_t n, uint32_t i);
/* Key h's spend in slot r as of period cur; 0 if the slot holds another. */
int64_t vm_slot_spend(const vm_budget_rt *b, const vm_ref *r, uint64_t h, uint64_t cur);
/* Adds nanos in period p to the budget's overflow account (key h, or 0). */
void vm_to_overflow(lane_runtime *rt, vm_budget_rt *b, uint64_t h, uint64_t p, int64_t nanos);

/* Names (budgets' or models') with their index, sorted by bytes, to match
 * state by name: a saved file's budgets, another program's models. */
typedef struct vm_byname { const char *p; uint32_t len; int i; } vm_byname;
int vm_byname_cmp(const void *a, const void *b);   /* for qsort */
/* The entry named (p, len) among n sorted ones, or NULL. */
vm_byname *vm_byname_find(vm_byname *v, uint32_t n, const char *p, uint32_t len);

#endif /* LANE_RUNTIME_H */

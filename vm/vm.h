/*
 * vm.h -- liblane internals shared by the loader (load.c), the interpreter
 * (vm.c) and the disassembler (disasm.c). Not installed, not part of the API.
 *
 * A lane_program is one allocation: this struct, the decoded arrays of its
 * bc_image, the per-route worst cases and a copy of the file bytes. The
 * image's strings point into that copy. Once bc_verify has accepted it the
 * program is never written again, so threads share it without locks.
 */
#ifndef LANE_VM_H
#define LANE_VM_H

#include <stdatomic.h>

#include "bc.h"
#include "lane.h"

/* One entry of the file's section table, as read. */
typedef struct vm_section {
  uint32_t id;            /* enum bc_section_id */
  uint32_t offset;        /* byte offset of the body */
  uint32_t size;          /* body size in bytes */
} vm_section;

struct lane_program {
  bc_image        im;           /* decoded, verified image */
  uint16_t        version;      /* header format version */
  uint32_t        nsec;         /* entries of sec */
  vm_section      sec[BC_SEC_MAX]; /* section table in file order */
  uint64_t        checksum;     /* header checksum */
  uint64_t       *route_steps;  /* nroutes worst-case instruction counts */
  uint64_t       *filter_steps; /* nfilters worst cases of one filter run */
  uint64_t        max_steps;    /* max of route_steps, 0 without routes */
  size_t          nbytes;       /* size of the file */
  unsigned char  *bytes;        /* copy of the file, owned */
};

/* Live stats: the window is VM_SLOTS time slots; a slot holds one
 * period's calls, failures and a latency histogram (8 buckets per octave
 * from 2^VM_MIN_EXP ms, so an estimate is within about 6%). */
#define VM_SLOTS     6
#define VM_OCT_SUB   8
#define VM_MIN_EXP   (-2)
#define VM_OCTAVES   22
#define VM_HBUCKETS  (VM_OCTAVES * VM_OCT_SUB + 2)
#define VM_ROLLING   12     /* periods of a rolling budget window */
#define VM_PROBES    16     /* probe run of a budget key level */
#define VM_LEVEL0    16     /* slots of a key table's first level */
#define VM_LEVELS    12     /* levels of 16, 48, 192, ... slots: up to 2^24 */
#define VM_MAX_KEYS  (1u << 24) /* most budget_keys */
#define VM_SEEN_BITS 4096   /* bits estimating distinct keys in overflow */
#define VM_TOMB      UINT64_MAX /* key hash of a slot whose key moved away */
#define VM_HELD      (1u << 31) /* gate bit: slot taken over, moved or set */

typedef struct vm_slot {
  atomic_uint_least64_t tag;        /* period held + 1; 0 none; top bit: clearing */
  atomic_uint_least32_t calls;      /* calls observed */
  atomic_uint_least32_t fails;      /* failures that count (not client errors) */
  atomic_uint_least32_t hist[VM_HBUCKETS]; /* latencies of answered calls */
} vm_slot;

typedef struct vm_model {
  vm_slot               slot[VM_SLOTS]; /* the window */
  atomic_uint_least64_t p50, p95, err;  /* cached figures (double bits) */
  atomic_uint_least64_t samples;        /* calls in the window, cached */
  atomic_uint_least64_t lat_samples;    /* answered calls in the window */
  atomic_uint_least64_t cached_at;      /* clock ms of the cache; 0 none */
  atomic_uint_least64_t valid_until;    /* clock ms when the oldest slot in
                                           the cache leaves the window */
  atomic_uint_least32_t state;          /* LANE_BREAKER_* */
  atomic_uint_least64_t until;          /* open: cooldown end; half-open:
                                           probe deadline */
} vm_model;

typedef struct vm_entry {
  atomic_uint_least64_t tag;        /* period held + 1; 0 none; top bit: clearing */
  atomic_int_least64_t  nanos;      /* spend in that period, nano-dollars */
} vm_entry;

/* A budget key slot's state; the key hashes of a level come first (a
 * dense array, so a probe run is two cache lines), then these, then the
 * slots' rings of entries. */
typedef struct vm_meta {
  atomic_uint_least64_t last;       /* newest period charged + 1; 0 while
                                       the slot is being given its key */
  atomic_uint_least32_t gate;       /* charges inside (pins), + VM_HELD
                                       while taken over, moved or set */
  uint32_t              pad;        /* 0 */
} vm_meta;

/* Per budget. Key slots come in levels allocated on demand (level 0 holds
 * 16 slots, level L > 0 holds 48 x 4^(L-1), the last one cut to reach
 * cap exactly); runtime.c explains the protocol. */
typedef struct vm_budget_rt {
  /* what every charge and read touches, first (one cache line) */
  uint16_t  ring;                   /* entries per key: 1 fixed, 12 rolling */
  uint16_t  span;                   /* periods in the window: 1 or 12 */
  uint32_t  cap;                    /* most key slots, a power of two */
  uint64_t  sub_ms;                 /* one period */
  uint32_t  nlevels;                /* levels that make cap */
  atomic_uint_least32_t on_full;    /* LANE_ON_FULL_* */
  atomic_uint_least64_t top;        /* newest period holding spend + 1 */
  atomic_uint_least64_t assigns;    /* keys given a slot, ever */
  atomic_uint_least64_t unmerged;   /* duplicate slots left unmerged */
  atomic_uint_least64_t filled;     /* slots ever given a key (never emptied) */
  atomic_uintptr_t level[VM_LEVELS];/* key levels; 0 until first needed */
  /* the rest */
  uint64_t  window_ms;              /* the declared window, whole ms */
  atomic_uintptr_t seen;            /* VM_SEEN_BITS of keys sent to overflow */
  atomic_uint_least64_t nkeys;      /* slots holding a key */
  atomic_uint_least64_t reclaimed;  /* slots taken over from expired keys */
  atomic_uint_least64_t ovf_charges;/* charges of keys without a slot */
  atomic_uint_least64_t grow_failed;/* level allocations that failed */
  vm_entry  ovf[VM_ROLLING];        /* the shared overflow account (ring) */
} vm_budget_rt;

struct lane_runtime {
  const lane_program  *prog;        /* program served, borrowed */
  lane_runtime_options opt;         /* options, defaults filled in */
  uint64_t             slot_ms;     /* window_ms / VM_SLOTS */
  uint32_t             nmodels;     /* entries of m */
  vm_model            *m;           /* per model */
  uint32_t             nbudgets;    /* entries of b */
  vm_budget_rt        *b;           /* per budget */
  atomic_size_t        bytes;       /* allocated for this runtime */
  atomic_uint_least64_t saves;      /* lane_runtime_save calls: temp names */
  atomic_uint_least64_t logseq;     /* decision records without an id (log.c) */
};

/* One operand stack slot. Bools are 0/1 in i. */
typedef struct vmval {
  union {
    int64_t     i;      /* int, bool */
    uint64_t    u;      /* uint */
    double      d;      /* double */
    const char *s;      /* string bytes, not NUL-terminated */
  } v;
  size_t n;             /* string length in bytes */
} vmval;

/* Runs explain region f (a FILTERS region ending in XRET) for request r
 * with model as the current model (one past the models: none), as a
 * decision now would: 1 with *out its value, or 0 when it raised an
 * error, *fault naming it (vm.c). Changes no live state: a breaker's
 * probe is only ever claimed by a decision. d (may be NULL) is the
 * decision explained: a candidate that took its breaker's probe in it
 * (d->probed) reads healthy, as the decision saw it, though its breaker
 * is half-open now. */
int vm_explain_region(lane_runtime *rt, const lane_request *r, const lane_decision *d,
                      uint32_t f, uint32_t model, vmval *out, const char **fault);

/* Runtime reads for the interpreter (runtime.c). */
uint64_t vm_now(const lane_runtime *rt);
/* The breaker's rule (sem_breaker_health) for model now: SEM_HEALTHY
 * (closed), SEM_PROBE (its deadline has come: a probe could be sent) or
 * SEM_UNHEALTHY. */
int      vm_health(const lane_runtime *rt, uint32_t model, uint64_t now);
/* Claims the probe of a model whose vm_health was 2; 1 if this caller got
 * it (the decision sends the probe), 0 if another did first. */
int      vm_claim_probe(lane_runtime *rt, uint32_t model, uint64_t now);
double   vm_latency(lane_runtime *rt, uint32_t model, uint64_t now, int p95);
double   vm_error_rate(lane_runtime *rt, uint32_t model, uint64_t now);
/* budget b's spent (which 0), remaining (1) or used (2) for r's key. */
double   vm_budget_read(const lane_runtime *rt, uint32_t b, const lane_request *r, int which,
                        uint64_t now);

/* Checks the header and section table of a file and decodes it into a new
 * program (not yet verified beyond the file structure and the string
 * table). NULL with err filled on failure. */
lane_program *bc_decode(const void *bytes, size_t n, size_t max_bytes,
                        lane_error *err);
/* Verifies every table, index, region, operand and stack type of a decoded
 * program and computes its worst cases. Returns LANE_OK, or a status with
 * err filled (LANE_EFORMAT, LANE_ELIMIT, LANE_ENOMEM). */
int bc_verify(lane_program *p, uint64_t max_steps, lane_error *err);

/* The VM layer's one error helper: fills err (if not NULL) with code and
 * the printf-formatted message, line 0; returns code. Defined in load.c;
 * the loader's rejections are written errf(err, code, FMT, ...), which
 * t_verify reads to check every message has a hostile file. */
int vm_errf(lane_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define errf vm_errf

/* Section name ("CODE") for an id, or NULL if the id is unknown. */
const char *bc_section_name(uint32_t id);
/* Record size of a section id, or 0 if unknown. */
uint32_t bc_section_record(uint32_t id);
/* Unit name as written in policies ("tokens"), or "?" if unknown. */
const char *bc_unit_name(uint32_t unit);
/* lane_type that a unit is stored as, or 0 if unknown. */
int bc_unit_type(uint32_t unit);

#endif /* LANE_VM_H */

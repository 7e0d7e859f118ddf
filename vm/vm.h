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

/* A member filter's part that depends on the request and the model's
 * capabilities alone (spec.c says which and why). */
enum { VM_SPEC_NONE, VM_SPEC_WHOLE, VM_SPEC_PREFIX, VM_SPEC_TAIL };
/* A tail the VM evaluates natively: `cost < K` and `p95 <= req.f`. */
enum { VM_TAIL_CODE, VM_TAIL_COST_LT, VM_TAIL_P95_LE };
typedef struct vm_fspec {
  uint8_t  kind;          /* VM_SPEC_*; TAIL: no prefix, a native tail */
  uint8_t  tailk;         /* VM_TAIL_*: how the tail runs */
  uint32_t targ;          /* COST_LT: its KDBL index; P95_LE: its field */
  uint32_t capmask;       /* capability bits the part reads */
  uint32_t canon;         /* equal parts share it */
  uint32_t tail;          /* PREFIX, TAIL: the tail's first instruction */
  uint32_t xstart;        /* PREFIX: its copy in xcode */
} vm_fspec;

/* What the loader works out for selections run as bitset walks (spec.c,
 * vm.c's vm_cand_sets): model sets of VM words each, a model's bit at
 * word m / 64, bit m % 64. */
#define VM_SET_WORDS 32   /* programs with more models walk members one by one */
typedef struct vm_fit {
  uint32_t        n;            /* distinct nonzero limits */
  int64_t        *at;           /* ascending */
  uint64_t       *ok;           /* (n + 1) sets: row k the models whose limit
                                   is 0 or at least at[k]; row n: limit 0 */
} vm_fit;
/* A model's prices for a request without cached tokens or reasoning
 * (cost_q's plain case): long (input > la) or not. */
typedef struct vm_price {
  int64_t         la;           /* long_above, INT64_MAX without a long tier */
  double          in, out;      /* input, output */
  double          lin, lout;    /* the long tier's, or input, output */
} vm_price;
/* A model's lowest input (out 0) or output price: what cheapest()'s
 * pruned walk orders members by and bounds their cost with (spec.c's
 * orders, vm.c's sel_pruned: one definition for both). */
static inline double vm_price_floor(const vm_price *pr, int out) {
  double a = out ? pr->out : pr->in, b = out ? pr->lout : pr->lin;
  return a < b ? a : b;
}

/* A filter part (vm_fspec WHOLE or PREFIX) as conjuncts run natively
 * (spec.c, vm.c's conj_eval): `test`, `cap`, or `test || cap`, where a
 * test is a fusable request test (LOAD f; [NOT | PUSH k; CMP]; Jx). */
#define VM_CONJ_MAX 16
typedef struct vm_conj {
  bc_insn         test;         /* the test as its fused instruction (BC_OP_X_*) */
  uint32_t        k;            /* the test's constant (its PUSH's index) */
  uint8_t         ntest;        /* its instructions, its jump included; 0: none */
  uint8_t         cap;          /* capability bit read; 0xff none */
  uint8_t         jf;           /* 1: its own JF_KEEP to the FRET follows */
  uint8_t         pad;
} vm_conj;

typedef struct vm_plan {
  uint32_t        words;        /* words of a model set */
  vm_price       *price;        /* per model */
  vm_conj        *conj;         /* the filters' parts' conjuncts */
  uint32_t       *cfirst;       /* per filter: its first in conj */
  uint8_t        *cn;           /* per filter: how many; 0: interpreted */
  uint64_t       *pool;         /* npools sets: the members */
  uint64_t       *check;        /* npools sets: members marked BC_MEMBER_CHECK */
  uint8_t        *ascending;    /* per pool: members listed by model index
                                   (strictly): a walk of its set's bits
                                   meets them in pool order */
  vm_fit          ctx, out;     /* context and max_output, for `fits` */
  uint64_t       *caps;         /* VM_CAPS sets: the models with capability c */
  uint32_t       *ord;          /* per pool listed in model order, at ordfirst:
                                   its members by their lowest input price,
                                   then by their lowest output price (ties by
                                   model): cheapest()'s pruned walk */
  uint32_t       *ordfirst;     /* per pool: its first in ord (2 x count) */
} vm_plan;
#define VM_CAPS BC_MAX_CAPS     /* capability bits of a model (bc_model.caps) */

struct lane_program {
  bc_image        im;           /* decoded, verified image */
  vm_fspec       *fspec;        /* per filter (spec.c) */
  vm_plan        *plan;         /* selections as set walks; NULL: none (spec.c) */
  bc_insn        *fcode;        /* the code with fused compare-and-jumps
                                   (spec.c); NULL: none */
  bc_insn        *xcode;        /* the PREFIX parts as regions of their own */
  uint16_t        version;      /* header format version */
  uint32_t        nsec;         /* entries of sec */
  vm_section      sec[BC_SEC_MAX]; /* section table in file order */
  uint64_t        checksum;     /* header checksum */
  uint64_t       *route_steps;  /* nroutes worst-case instruction counts */
  uint64_t       *filter_steps; /* nfilters worst cases of one filter run */
  uint64_t        max_steps;    /* max of route_steps, 0 without routes */
  size_t          nbytes;       /* size of the file */
  unsigned char  *bytes;        /* copy of the file, owned */
  const lane_regex_engine *re_engine; /* the engine its patterns were compiled by */
  void          **re;           /* nre compiled patterns, by S_MATCH's slot (b) */
  uint32_t       *re_states;    /* each one's states bound (lane_regex_engine.states) */
  uint32_t        nre;
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
#define VM_KEYS_FILTER 32   /* words of a budget's table-wide key filter (2,048 bits) */
#define VM_KEYS_FILTER_MAX 512 /* placements after which it is not read (too full to say no) */
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
  atomic_uint_least32_t refs;           /* views sharing it (swap.c) */
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
  atomic_uint_least64_t held;       /* period + 1 the key reads as at its
                                       limit in (a spent lease); 0 none */
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
  atomic_uint_least64_t nalloc;     /* levels allocated (they are, in order);
                                       raised (amax) before a level is handed out */
  uint32_t  lslots[VM_LEVELS];      /* slots of each level (vm_level_slots) */
  uint32_t  lfilter[VM_LEVELS];     /* where its key filter starts, in words
                                       of 8 bytes from the level's start */
  /* the rest */
  atomic_uint_least64_t keys_filter[VM_KEYS_FILTER]; /* two bits for each key
                                       ever given a slot of any level, set
                                       before it is published, never cleared:
                                       a read of a key without them skips
                                       every level while it says something
                                       (fewer than VM_KEYS_FILTER_MAX keys
                                       placed) */
  uint64_t  window_ms;              /* the declared window, whole ms */
  atomic_uintptr_t seen;            /* VM_SEEN_BITS of keys sent to overflow */
  atomic_uint_least64_t nkeys;      /* slots holding a key */
  atomic_uint_least64_t reclaimed;  /* slots taken over from expired keys */
  atomic_uint_least64_t ovf_charges;/* charges of keys without a slot */
  atomic_uint_least64_t grow_failed;/* level allocations that failed */
  vm_entry  ovf[VM_ROLLING];        /* the shared overflow account (ring) */
  atomic_uint_least32_t refs;       /* views sharing it (swap.c) */
} vm_budget_rt;

/* A runtime is a hub of live state and views of it (swap.c).
 *
 *   view    one program over the hub's state: per model and per budget a
 *           pointer to a state object, which views of other programs
 *           share when the model or budget means the same (swap.c says
 *           when). Everything the interpreter and the runtime code read
 *           goes through a view.
 *   handle  what lane_runtime_new returns (hub->handle): calls on it work
 *           on the view active at that moment, pinned for the call's
 *           length (vm_enter); lane_runtime_swap changes the active view;
 *           lane_runtime_acquire pins one for longer.
 *
 * So a charge or an observation made through a view that is no longer
 * active still lands in the state the active view reads: nothing is
 * copied at a swap, and nothing recorded meanwhile is lost. */
typedef struct vm_hub vm_hub;

struct lane_runtime {
  const lane_program  *prog;        /* program of the view; a handle: the
                                       first view's (see vm_enter) */
  lane_runtime_options opt;         /* options, defaults filled in (the
                                       hub's, copied) */
  uint64_t             slot_ms;     /* window_ms / VM_SLOTS */
  uint32_t             nmodels;     /* entries of m */
  vm_model           **m;           /* per model of prog: its state */
  uint32_t             nbudgets;    /* entries of b */
  vm_budget_rt       **b;           /* per budget of prog: its state */
  vm_hub              *hub;         /* the state's owner */
  int                  handle;      /* 1: the hub's handle, not a view */
  int                  owns_prog;   /* 1: the view frees prog (swapped in) */
  atomic_uint_least64_t refs;       /* a view: pins, + 1 while active */
  uint64_t             gen;         /* a view: 1 for the first, +1 a swap */
  /* A view's breakers as a model set (vm.c, health_words): bit m set if
   * model m's breaker was closed when the hub's breaker count stood at
   * hgen - 1; hgen 0: not built, or being rebuilt. */
  atomic_uint_least64_t hgen;
  atomic_uint          hbusy;       /* 1 while a decision rebuilds hwords */
  atomic_uint_least64_t hwords[VM_SET_WORDS];
};

/* A pin of the active view for one call on a handle (vm_enter). */
typedef struct vm_pin {
  vm_hub  *hub;                     /* NULL: nothing pinned */
  unsigned idx, stripe;
} vm_pin;

/* The view a call on rt works on: rt itself when it is a view (its
 * caller holds it), else the hub's active view, pinned until vm_leave.
 * NULL for NULL. */
lane_runtime *vm_enter_hub(lane_runtime *rt, vm_pin *pin);
void vm_leave_hub(vm_pin *pin);
static inline lane_runtime *vm_enter(const lane_runtime *rt, vm_pin *pin) {
  pin->hub = NULL;
  if (!rt || !rt->handle) return (lane_runtime *)rt;
  return vm_enter_hub((lane_runtime *)rt, pin);
}
static inline void vm_leave(vm_pin *pin) {
  if (pin->hub) vm_leave_hub(pin);
}

/* The fleet hooks set on the hub (lane_runtime_set_fleet), or NULL. */
const lane_fleet_hooks *vm_fleet(const lane_runtime *rt);

/* The hub's breaker count: every change of a model's breaker state adds
 * one (vm_breaker_moved, after the change), so a view's hwords built at
 * a count still current are exact (vm.c, health_words). */
void     vm_breaker_moved(const lane_runtime *rt);
uint64_t vm_breaker_count(const lane_runtime *rt);

/* Bytes of a hub, its handle included (lane_runtime_memory's first term). */
size_t vm_hub_bytes(void);
/* Allocations of the hub's state, counted for lane_runtime_memory. */
void *vm_calloc(const lane_runtime *rt, size_t n, size_t size);
void  vm_count_bytes(const lane_runtime *rt, size_t n);
void  vm_uncount_bytes(const lane_runtime *rt, size_t n);
/* The hub's counters: saves (temp names), decision records without an id. */
uint64_t vm_next_save(const lane_runtime *rt);
uint64_t vm_next_logseq(const lane_runtime *rt);

/* State objects (runtime.c): a model's or a budget's, fresh, with one
 * reference (NULL when memory runs out); released with vm_model_unref /
 * vm_budget_unref, which free them with the last reference. rt: any view
 * or handle of the hub, for the count of bytes. */
vm_model     *vm_model_new(const lane_runtime *rt);
vm_budget_rt *vm_budget_new(const lane_runtime *rt, const bc_budget *bb);
void          vm_model_unref(const lane_runtime *rt, vm_model *m);
void          vm_budget_unref(const lane_runtime *rt, vm_budget_rt *b);
/* Reports of what a load, carry or swap kept (state.c): a note, and
 * the report emptied but for its caller's note function. */
void vm_note(lane_state_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vm_report_reset(lane_state_report *rep);
/* The name of budget i's key field into *name and its lane_type; "" and
 * 0 for a budget without one. */
uint32_t vm_budget_key(const bc_image *im, uint32_t i, bc_str *name);
/* Whether a budget that was saved (or served) as name, keyed by req.key
 * of type ktype, over a rolling (or fixed) window of window_ms, means the
 * same as one keyed by req.nkey of type nktype over nrolling, nwindow_ms:
 * 1, or 0 with a note saying what changed. */
int vm_budget_same(lane_state_report *rep, const char *name, uint32_t nlen, const char *key,
                   uint32_t klen, uint32_t ktype, int rolling, uint64_t window_ms,
                   const char *nkey, uint32_t nklen, uint32_t nktype, int nrolling,
                   uint64_t nwindow_ms);
/* The LANE_ON_FULL_* a budget's policy declares. */
uint32_t      vm_budget_policy_on_full(const bc_budget *bb);

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
 * is half-open now. A string the region builds (a + b) is built in sbuf
 * (scap bytes, at most BC_SCRATCH used), where *out may point. */
int vm_explain_region(lane_runtime *rt, const lane_request *r, const lane_decision *d,
                      uint32_t f, uint32_t model, vmval *out, const char **fault,
                      char *sbuf, size_t scap);

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

/* Fused instructions (spec.c, vm.c): never in a file, only in a
 * program's fcode and xcode. Each stands at the LOAD of a verified
 * sequence LOAD f; [PUSH_x k; CMP_x | NOT]; JF | JF_KEEP | JT_KEEP t,
 * whose instructions stay in place after it (a jump into the sequence
 * runs them one by one), does what the sequence does and counts its
 * steps. a: the comparison (VM_FC_*) | the jump << 3 | NOT << 5. */
enum { VM_FC_EQ, VM_FC_NE, VM_FC_LT, VM_FC_LE, VM_FC_GT, VM_FC_GE };
/* The jump: JF, JF_KEEP, JT_KEEP; and the two KEEPs whose target is a JF
 * (an `&&` or `||` ending a condition), which go where that JF would
 * send the value they keep, counting its step (spec.c's fused_code). */
enum { VM_FJ_F, VM_FJ_F_KEEP, VM_FJ_T_KEEP, VM_FJ_F_KEEP_JF, VM_FJ_T_KEEP_JF, VM_FJ_KINDS };
#define VM_FJ_NOT 64u
#define VM_FJ(a) ((a) >> 3 & 7)   /* a fused instruction's jump */
/* Each family's op is its base plus 5 x (the comparison, or NOT for
 * X_LJ) + the jump, so the interpreter has one case per combination and
 * no switch inside it (vm_x_op): 30 int and 30 double comparisons, 10
 * string (== and !=) and 10 bool jumps. */
enum {
  BC_OP_X_ICMP = BC_NOPS,
  BC_OP_X_DCMP = BC_OP_X_ICMP + 6 * VM_FJ_KINDS,
  BC_OP_X_SCMP = BC_OP_X_DCMP + 6 * VM_FJ_KINDS,
  BC_OP_X_LJ = BC_OP_X_SCMP + 2 * VM_FJ_KINDS,
  VM_NOPS = BC_OP_X_LJ + 2 * VM_FJ_KINDS
};
/* The op of family (BC_OP_X_*) for a fused instruction's a. */
static inline uint8_t vm_x_op(int family, uint8_t a) {
  int sub = family == BC_OP_X_LJ ? (a & VM_FJ_NOT ? 1 : 0) : (a & 7);
  return (uint8_t)(family + sub * VM_FJ_KINDS + VM_FJ(a));
}
/* The family of a fused op. */
static inline int vm_x_family(uint8_t op) {
  return op < BC_OP_X_DCMP ? BC_OP_X_ICMP : op < BC_OP_X_SCMP ? BC_OP_X_DCMP
       : op < BC_OP_X_LJ ? BC_OP_X_SCMP : BC_OP_X_LJ;
}
/* The instructions after fused instruction f that it stands for, its
 * jump the last: PUSH, CMP and Jx; NOT and Jx; or Jx. */
static inline uint32_t vm_x_span(const bc_insn *f) {
  return vm_x_family(f->op) != BC_OP_X_LJ ? 3 : f->a & VM_FJ_NOT ? 2 : 1;
}

/* Works out each member filter's vm_fspec (spec.c); after verification.
 * (bc_unspecialize, in bc.h, is its test hook.) */
void bc_specialize(lane_program *p);

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
/* "map(string, int)": a map field of value unit `unit`, as policies write it. */
const char *bc_map_unit_name(uint32_t unit);
/* lane_type that a unit is stored as, or 0 if unknown. */
int bc_unit_type(uint32_t unit);

#endif /* LANE_VM_H */

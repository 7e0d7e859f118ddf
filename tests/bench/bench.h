/*
 * bench.h -- what the benchmark's parts share: the request form every
 * implementation decides from, the reference catalog as a C table, the
 * live state mirrored from lane's runtime into the other implementations,
 * the checksum, the timer and the interface of the Lua plugins.
 *
 * The same routing policy exists four times: tests/bench/reference.lane
 * (lane), ref_c.c (hand-written C), policy.lua (Lua 5.4 and LuaJIT). They
 * must agree on every decision; the checksum proves it.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- requests ------------------------------------------------------- */

/* One request, as a host would hold it after parsing: borrowed strings
 * with lengths, token counts, flags. Every implementation decides from
 * this (lane through lane_set_*, Lua through its C API). */
typedef struct breq {
  const char *task, *tier, *tenant, *user;
  uint8_t     ntask, ntier, ntenant, nuser;
  int32_t     in, out;          /* input_tokens, max_output_tokens */
  int32_t     images;           /* attached images */
  uint8_t     tools, json;      /* needs tool calls / JSON output */
  int32_t     latency_ms;       /* latency budget in ms, 0 = none */
} breq;

#define BENCH_NREQ      200000
#define BENCH_SEED      0x1a2e2026u
#define BENCH_TENANTS   500     /* t0 .. t499 */
#define BENCH_USERS     100000  /* u0 .. u99999 */

/* Loads the two trace samples (tests/bench/trace_*.csv, columns
 * ContextTokens,GeneratedTokens) from dir. Returns 0, or -1 with a
 * message on stderr. */
int  bench_traces_load(const char *dir);
/* n requests of the reference mix, the same for a given seed. */
void bench_requests(breq *out, int n, uint32_t seed);
/* The token counts of one trace row picked by the generator state. */
void bench_trace_pick(uint64_t *rng, int32_t *in, int32_t *out);
/* Interned names "t<i>" and "u<i>" (static storage). */
const char *bench_tenant(int i, uint8_t *n);
const char *bench_user(int i, uint8_t *n);
/* splitmix64-based generator: next 64 bits, and uniform 0..n-1. */
uint64_t bench_rand(uint64_t *s);
uint32_t bench_below(uint64_t *s, uint32_t n);

/* ---- the reference catalog ---------------------------------------- */

enum { CAP_VISION = 1, CAP_TOOLS = 2, CAP_JSON = 4, CAP_REASONING = 8,
       CAP_CACHING = 16, CAP_AUDIO = 32, CAP_PDF = 64 };

typedef struct bmodel {
  const char *name, *provider, *id;
  double  input, output, cached_input, reasoning_output;   /* $ per token */
  int64_t long_above;
  double  long_input, long_output, long_cached_input;
  int64_t context, max_output;
  uint32_t caps;
  double  quality, p50, p95;                               /* priors, ms */
} bmodel;

#define BENCH_NMODELS 28
extern const bmodel bench_models[BENCH_NMODELS];

/* ---- live state mirrored from lane's runtime ----------------------- */

/* What the policy reads besides the request: per model the live p95 and
 * breaker health, per tenant the day's spend. bench_main fills it from
 * lane's runtime (lane_model_stats, lane_budget_spent) after warming it,
 * so all implementations decide on the same state. */
typedef struct bstate {
  double  p95[BENCH_NMODELS];       /* live p95, ms */
  int     healthy[BENCH_NMODELS];   /* breaker lets the model be chosen */
  double  spent[BENCH_TENANTS];     /* tenant_daily spend today, $ */
  double  budget_limit;             /* $200 */
} bstate;

/* ---- what both hand-written C versions use --------------------------- */
/* Inline: they are on the timed path. FNV-1a 64 and splitmix64, as lane's
 * bucket() and budget keys use them. */
static inline uint64_t bench_fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

static inline uint64_t bench_splitmix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The tenants' spend: open addressing keyed by the FNV-1a hash of the
 * tenant's name (> 2 x BENCH_TENANTS slots). */
#define BENCH_SPEND_SLOTS 1024
typedef struct bspend {
  uint64_t key[BENCH_SPEND_SLOTS];
  double   val[BENCH_SPEND_SLOTS];
} bspend;
/* Fills t with every tenant of st that has spend (common.c). */
void bspend_fill(bspend *t, const bstate *st);
static inline double bspend_get(const bspend *t, const char *s, size_t n) {
  uint64_t h = bench_fnv1a(s, n) | 1;
  uint32_t i = (uint32_t)h & (BENCH_SPEND_SLOTS - 1);
  for (;;) {
    if (t->key[i] == h) return t->val[i];
    if (!t->key[i]) return 0;
    i = (i + 1) & (BENCH_SPEND_SLOTS - 1);
  }
}

/* A string field equal to a literal. */
static inline int bench_streq(const char *s, size_t n, const char *lit, size_t ln) {
  return n == ln && memcmp(s, lit, ln) == 0;
}
#define BENCH_IS(s, n, lit) bench_streq((s), (n), lit, sizeof lit - 1)

/* ---- decisions and the checksum ----------------------------------- */

#define BENCH_FALLBACKS 2
#define BENCH_MAXC      (BENCH_FALLBACKS + 1)

/* One decision: rule 1-based (0: no rule produced a model), candidates as
 * indexes into bench_models, the primary's expected cost. */
typedef struct bdec {
  int    rule, n, c[BENCH_MAXC];
  double cost;
} bdec;

typedef struct bsum {
  uint64_t h;        /* FNV-style fold of rule, n and candidates */
  double   cost;     /* sum of the primaries' costs, in request order */
} bsum;

static inline void bsum_init(bsum *s) { s->h = 0xcbf29ce484222325ull; s->cost = 0; }
static inline void bsum_add(bsum *s, int rule, int n, const int *c, double cost) {
  uint64_t h = s->h;
  h = (h ^ (uint64_t)(uint32_t)rule) * 0x100000001b3ull;
  h = (h ^ (uint64_t)(uint32_t)n) * 0x100000001b3ull;
  for (int i = 0; i < n; i++) h = (h ^ (uint64_t)(uint32_t)c[i]) * 0x100000001b3ull;
  s->h = h;
  s->cost += cost;
}
static inline uint64_t bsum_costbits(const bsum *s) {
  union { double d; uint64_t u; } x;
  x.d = s->cost;
  return x.u;
}

/* Monotonic time in ns. */
uint64_t bench_ns(void);
/* Median of n values (sorts v). */
double bench_median(double *v, int n);

/* ---- the lane side (scaling.c) -------------------------------------- */

/* Compiles a policy in-process (sema_load/sema_check/emit_program): the
 * file at path, or text under that name. Returns 0 with malloc'd bytes,
 * or -1 after printing the diagnostics. */
int bench_compile(const char *path, const char *text, unsigned char **bytes, size_t *n);

#define BENCH_POINTS 8
typedef struct scale_result {
  int    nrules, rules[BENCH_POINTS];
  double rules_ns[BENCH_POINTS];          /* ns per decision, indexed (default) */
  double rules_noopt_ns[BENCH_POINTS];    /* compiled with -O0; < 0 if not run */
  double rules_compile_ms[BENCH_POINTS];  /* sema + emit, median of 3 */
  double rules_load_ms[BENCH_POINTS];     /* lane_load (verification) */
  size_t rules_bytes[BENCH_POINTS];       /* .lanec size */
  int    nmodels, models[BENCH_POINTS];
  double models_ns[BENCH_POINTS];
} scale_result;

/* Rules 10..10,000 and models 10..1,000: decision time, compile and load
 * time; writes out/scaling.json and out/scaling.png (gnuplot). lane_cmd,
 * if not NULL, compiles the -O0 (unindexed) variants. Returns 0, or -1 if
 * an indexed and an unindexed program decided differently. */
int bench_scaling(const char *out, const char *lane_cmd, scale_result *r);
/* The hot-swap part (swap.c): decision latency alone and during 200
 * swaps, and a swap's time. 0, or -1 if a swap or a decision failed. */
int bench_swap(const unsigned char *bytes, size_t nbytes);
/* The fleet part (fleet.c): decision latency with liblane-redis attached
 * against local-only (skipped without redis-server). 0, or -1 if a
 * decision failed or Redis could not be reached. */
int bench_fleet(const unsigned char *bytes, size_t nbytes);

/* ---- hand-written C (ref_c.c) -------------------------------------- */
void ref_c_init(const bstate *st);
void ref_c_decide(const breq *q, bdec *d);
/* ---- expert C (expert_c.c): masks, ctz walks, top-k with early reject */
void expert_c_init(const bstate *st);
void expert_c_decide(const breq *q, bdec *d);

/* ---- Lua plugins (lua_impl.c, built once per Lua) ------------------ */

/* The context a plugin receives: requests, catalog, state, and the
 * directory holding policy.lua. */
typedef struct bench_lua_ctx {
  const breq   *reqs;
  int           nreq;
  const bmodel *models;
  int           nmodels;
  const bstate *state;
  const char   *dir;
} bench_lua_ctx;

/* A plugin exports one function, BENCH_LUA_ENTRY, returning its API:
 * open builds a state for ctx (NULL with a message in err on failure),
 * pass decides every request once and returns ns per decision (< 0 on an
 * error, with the message in err), close frees the state. */
typedef struct bench_lua_api {
  const char *name;             /* "Lua 5.4.4" / "LuaJIT 2.1.0-beta3" */
  void   *(*open)(const bench_lua_ctx *ctx, char *err, size_t errlen);
  double  (*pass)(void *state, bsum *sum, char *err, size_t errlen);
  void    (*close)(void *state);
} bench_lua_api;

typedef const bench_lua_api *(*bench_lua_entry_fn)(void);
#define BENCH_LUA_ENTRY "bench_lua_api_get"

#endif /* BENCH_H */

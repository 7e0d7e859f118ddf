/*
 * lane.h -- the public C API of liblane, the lane routing VM.
 *
 * This is the only header a host includes. A host loads a compiled policy
 * (a .lanec file produced by `lane compile`) once, creates a runtime over
 * it, and then, per request, fills a lane_request on its own stack and
 * calls lane_decide.
 *
 *   program  immutable after lane_load; share it freely between threads.
 *   runtime  live state (health, latency) for one program; thread-safe.
 *   request  caller-owned, usually on the stack; one per decision.
 *   decision caller-owned output of lane_decide.
 *
 * Errors: every function that can fail returns a status (or NULL) and, when
 * given a lane_error, fills it. liblane never prints, exits or aborts.
 */
#ifndef LANE_H
#define LANE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LANE_BUILDING) && defined(__GNUC__)
#define LANE_API __attribute__((visibility("default")))
#else
#define LANE_API
#endif

/* ---------------------------------------------------------------------
 * Limits and version
 * ------------------------------------------------------------------- */
#define LANE_VERSION_STRING  "0.1.0"
#define LANE_FORMAT_VERSION  2      /* .lanec format version this VM reads */
#define LANE_MAX_FIELDS      64     /* request fields per program */
#define LANE_MAX_CANDIDATES  9      /* primary + up to 8 fallbacks */
#define LANE_MAX_SHADOWS     4      /* shadow models per decision */
#define LANE_MAX_MODELS      4096   /* models per program */

/* ---------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------- */
typedef enum lane_status {
  LANE_OK = 0,
  LANE_ENOMEM,      /* an allocation failed */
  LANE_EFORMAT,     /* bytecode malformed, corrupted or hostile */
  LANE_EVERSION,    /* bytecode of a format version this VM does not read */
  LANE_ELIMIT,      /* bytecode exceeds a limit the host set */
  LANE_EARG,        /* bad argument: unknown route, field, wrong type */
  LANE_ENOMATCH,    /* no rule of the route produced a model */
  LANE_EJSON        /* a request body could not be read (adapters) */
} lane_status;

typedef struct lane_error {
  int  code;          /* a lane_status */
  int  line;          /* policy source line, when known; else 0 */
  char message[200];  /* NUL-terminated, human-readable reason */
} lane_error;

/* A short constant name for a status ("LANE_EFORMAT"). Never NULL. */
LANE_API const char *lane_status_name(int status);

/* ---------------------------------------------------------------------
 * Programs
 * ------------------------------------------------------------------- */
typedef struct lane_program lane_program;

typedef struct lane_load_options {
  uint64_t max_steps;   /* reject a program whose worst-case instruction
                           count for one decision exceeds this; 0 = default
                           (1,000,000) */
  size_t   max_bytes;   /* reject a file larger than this; 0 = 64 MiB */
} lane_load_options;

/* Verifies and loads a .lanec image. The bytes are copied; the caller keeps
 * ownership of `bytes`. Returns a new program, or NULL with err filled
 * (LANE_EFORMAT with the reason, LANE_EVERSION, LANE_ELIMIT, LANE_ENOMEM).
 * Nothing in the image is trusted: every index, offset, jump and operand
 * type is checked before the program is returned. */
LANE_API lane_program *lane_load(const void *bytes, size_t n, lane_error *err);
/* As lane_load, with limits (opt may be NULL for the defaults). */
LANE_API lane_program *lane_load_with(const void *bytes, size_t n,
                                      const lane_load_options *opt,
                                      lane_error *err);
LANE_API void lane_program_free(lane_program *p);

/* Introspection. Names are borrowed from the program and live as long as
 * it does. Indexes out of range give NULL / -1. */
LANE_API int         lane_route_count(const lane_program *p);
LANE_API const char *lane_route_name(const lane_program *p, int route);
LANE_API int         lane_route(const lane_program *p, const char *name);
LANE_API int         lane_rule_count(const lane_program *p, int route);
/* Rule names are the rule's condition as written, or "otherwise". rule is
 * 1-based, as lane_decision.rule: 1 .. lane_rule_count(p, route). */
LANE_API const char *lane_rule_name(const lane_program *p, int route, int rule);
LANE_API int         lane_model_count(const lane_program *p);
/* The model's lane name, e.g. "anthropic.claude_haiku_4_5". */
LANE_API const char *lane_model_name(const lane_program *p, int model);
/* The provider and the provider's model id, e.g. "anthropic",
 * "claude-haiku-4-5". */
LANE_API const char *lane_model_provider(const lane_program *p, int model);
LANE_API const char *lane_model_id(const lane_program *p, int model);
/* Worst-case instructions one decision can execute, computed at load. */
LANE_API uint64_t    lane_program_max_steps(const lane_program *p);

/* ---------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------- */
typedef enum lane_type {
  LANE_T_INT = 1,   /* int64_t (also token counts) */
  LANE_T_UINT,      /* uint64_t */
  LANE_T_DOUBLE,    /* double (money in dollars, durations in ms,
                       fractions as 0..1) */
  LANE_T_BOOL,      /* int, 0 or 1 */
  LANE_T_STRING     /* borrowed bytes, not necessarily NUL-terminated */
} lane_type;

typedef union lane_value {
  int64_t  i;                           /* LANE_T_INT, LANE_T_BOOL */
  uint64_t u;                           /* LANE_T_UINT */
  double   d;                           /* LANE_T_DOUBLE */
  struct { const char *p; size_t n; } s;/* LANE_T_STRING */
} lane_value;

/* A request lives on the caller's stack; treat its members as private.
 * Unset fields read as zero, false or the empty string. String values are
 * borrowed: they must stay valid until the last lane_decide on it. */
#define LANE_REQUEST_TEXT 1024              /* bytes an adapter may copy strings to */

typedef struct lane_request {
  const lane_program *prog;             /* program whose fields these are */
  uint64_t            set;              /* bit i: field i was set */
  lane_value          v[LANE_MAX_FIELDS]; /* values by field index */
  size_t              ntext;            /* bytes of text in use */
  char                text[LANE_REQUEST_TEXT]; /* strings copied by
                                           lane_request_from_json; a request
                                           holding them must not be copied
                                           by value */
} lane_request;

/* The index of a request field by name ("tier", "input_tokens", or a field
 * of the policy's request { } block), or -1. Look fields up once. */
LANE_API int       lane_field(const lane_program *p, const char *name);
LANE_API int       lane_field_count(const lane_program *p);
LANE_API const char *lane_field_name(const lane_program *p, int field);
/* The machine type of a field (lane_type), or 0 if out of range. */
LANE_API int       lane_field_type(const lane_program *p, int field);
/* The unit of a field as written in policies: "int", "string", "tokens",
 * "money", "duration", "fraction", "price", "double", "bool", "uint". */
LANE_API const char *lane_field_unit(const lane_program *p, int field);

LANE_API void lane_request_init(lane_request *r, const lane_program *p);
/* Setters return LANE_OK, or LANE_EARG if the field index is out of range
 * or the field has another type. Durations are in milliseconds, money in
 * dollars, fractions as 0..1. lane_set_double accepts int and uint fields
 * only when the value is integral and in range; lane_set_int accepts uint
 * fields for v >= 0 and lane_set_uint int fields for v <= INT64_MAX.
 * lane_set_bool stores v != 0. lane_set_str: s may be NULL only if n == 0. */
LANE_API int lane_set_str(lane_request *r, int field, const char *s, size_t n);
LANE_API int lane_set_int(lane_request *r, int field, int64_t v);
LANE_API int lane_set_uint(lane_request *r, int field, uint64_t v);
LANE_API int lane_set_double(lane_request *r, int field, double v);
LANE_API int lane_set_bool(lane_request *r, int field, int v);

/* ---------------------------------------------------------------------
 * Request adapters (a separate library: link -llane-json -ljansson)
 * ------------------------------------------------------------------- */
enum {
  LANE_FORMAT_OPENAI_CHAT = 1,          /* POST /v1/chat/completions body */
  LANE_FORMAT_ANTHROPIC_MESSAGES = 2    /* POST /v1/messages body */
};

/* Fills the standard fields of r (already lane_request_init'ed) from a
 * request body in one of the formats allowed: input_tokens (an estimate of
 * every message, the system prompt and tool definitions), max_output_tokens,
 * images, tools, json, stream, reasoning, user, model (the model the
 * client asked for), and any `metadata` key naming a string field of the
 * policy. Strings are copied into r->text. Returns LANE_OK; LANE_EJSON
 * with err saying why (not JSON, wrong types, too large or deep, strings
 * that do not fit r->text); LANE_EARG for a NULL request or body or bad
 * formats; LANE_ENOMEM. On error r is left exactly as it was. Implemented
 * in liblane-json (vm/json.c documents the token estimate), not in liblane. */
LANE_API int lane_request_from_json(lane_request *r, const char *body, size_t len,
                                    int formats, lane_error *err);

/* ---------------------------------------------------------------------
 * Runtime: live stats, circuit breakers and budgets
 * ------------------------------------------------------------------- */
typedef struct lane_runtime lane_runtime;

/* A clock in milliseconds since the Unix epoch. Budgets use it for their
 * windows, so it is wall time; tests pass a fake one. */
typedef uint64_t (*lane_clock_fn)(void *ctx);

typedef struct lane_runtime_options {
  lane_clock_fn clock;          /* NULL: the system's real-time clock */
  void         *clock_ctx;      /* passed to clock */
  uint32_t      window_ms;      /* live stats window (default 60000) */
  uint32_t      min_samples;    /* fewer calls in the window: a model keeps
                                   its declared p50/p95 and error rate 0
                                   (default 20) */
  uint32_t      breaker_failures;   /* failures in the window that open a
                                       model's breaker (default 5) */
  uint32_t      breaker_cooldown_ms; /* open this long, then one probe
                                        (default 30000) */
  uint32_t      budget_keys;    /* keys tracked per budget (default 4096;
                                   rounded up to a power of two, at least
                                   16) */
} lane_runtime_options;

/* Live state for one program. The program must outlive the runtime. NULL
 * with err on failure (LANE_ENOMEM, LANE_EARG). All functions on a runtime
 * are thread-safe; updates are atomics, decisions read without locks. */
LANE_API lane_runtime *lane_runtime_new(const lane_program *p, lane_error *err);
LANE_API lane_runtime *lane_runtime_new_with(const lane_program *p,
                                             const lane_runtime_options *opt,
                                             lane_error *err);
LANE_API void          lane_runtime_free(lane_runtime *rt);

/* Outcomes of a call, for lane_observe. 0 and 1 keep their old meaning. */
typedef enum lane_call {
  LANE_CALL_FAILED = 0,         /* failed, kind unknown: as a server error */
  LANE_CALL_OK = 1,             /* answered */
  LANE_CALL_RATE_LIMITED = 2,   /* HTTP 429 */
  LANE_CALL_SERVER_ERROR = 3,   /* 5xx or a connection error */
  LANE_CALL_TIMEOUT = 4,        /* no answer in time */
  LANE_CALL_CLIENT_ERROR = 5    /* other 4xx: the request's fault; counts as
                                   a call but does not trip the breaker */
} lane_call;

/* Reports one call's outcome: latency feeds the model's live p50/p95 (a
 * histogram over a sliding window), failures its error rate and circuit
 * breaker. A breaker opens after breaker_failures failures in the window,
 * stays open for the cooldown, then lets one probe through (half-open):
 * success closes it, failure opens it again. Unknown model: ignored. */
LANE_API void lane_observe(lane_runtime *rt, int model, double latency_ms, int status);

/* Records actual spend after a call: adds dollars to every budget of the
 * program whose key field is set in r, in integer nano-dollars, so sums
 * never drift (and saturate rather than wrap). Returns LANE_OK, or
 * LANE_EARG (negative, not finite, or $9.2e9 and above). */
LANE_API int lane_charge(lane_runtime *rt, const lane_request *r, double dollars);

/* Breaker states of lane_live_stats.state. */
enum { LANE_BREAKER_CLOSED = 0, LANE_BREAKER_OPEN = 1, LANE_BREAKER_HALF_OPEN = 2 };

typedef struct lane_live_stats {
  double   p50, p95;            /* live estimates, ms; the priors when samples
                                   < min_samples */
  double   error_rate;          /* failures / calls in the window, 0..1 */
  uint64_t samples;             /* calls in the window */
  int      state;               /* LANE_BREAKER_* */
  uint64_t until_ms;            /* open: end of cooldown; half-open: probe
                                   deadline */
} lane_live_stats;

/* The live view of model m now, as decisions see it. LANE_EARG if m is out
 * of range. */
LANE_API int lane_model_stats(const lane_runtime *rt, int model, lane_live_stats *out);
/* Replaces the live view of model m (for replaying a snapshot): decisions
 * read these figures until new calls are observed. */
LANE_API int lane_runtime_set_model_stats(lane_runtime *rt, int model,
                                          const lane_live_stats *s);

/* Budgets, by index 0 .. lane_budget_count(p) - 1. */
LANE_API int         lane_budget_count(const lane_program *p);
LANE_API const char *lane_budget_name(const lane_program *p, int budget);
LANE_API int         lane_budget(const lane_program *p, const char *name);
/* The key hash a budget uses for a key value: FNV-1a 64 of a string key's
 * bytes, splitmix64 of an int key (pass its decimal text). */
LANE_API uint64_t    lane_budget_key_hash(const lane_program *p, int budget,
                                          const char *key, size_t n);
/* Spend of one key in the budget's current window, in dollars. */
LANE_API int lane_budget_spent(const lane_runtime *rt, int budget, uint64_t key_hash,
                               double *dollars);
/* Sets the spend of one key in the current window (replaying a snapshot). */
LANE_API int lane_runtime_set_spend(lane_runtime *rt, int budget, uint64_t key_hash,
                                    double dollars);

/* Saves budget spend to a file and loads it back, so a restart does not
 * reset a tenant's spend. The file names the program (its checksum) and
 * every budget; a corrupt, truncated or mismatched file is refused with a
 * reason (LANE_EFORMAT) and changes nothing. Loading sets the spend of
 * every key in the file and leaves other keys as they are; keys that do not
 * fit a smaller key table add up in its overflow account. */
LANE_API int lane_runtime_save(const lane_runtime *rt, const char *path, lane_error *err);
LANE_API int lane_runtime_load(lane_runtime *rt, const char *path, lane_error *err);

/* Writes the runtime's live state -- model stats and breakers, budget
 * spend by key hash, the clock -- as JSON into buf (NUL-terminated if it
 * fits). Returns the length of the whole text; call again with a larger
 * buffer when it is >= cap. */
LANE_API size_t lane_runtime_snapshot(const lane_runtime *rt, char *buf, size_t cap);
/* Milliseconds now, by the runtime's clock. */
LANE_API uint64_t lane_runtime_now(const lane_runtime *rt);

/* ---------------------------------------------------------------------
 * Decisions
 * ------------------------------------------------------------------- */
typedef struct lane_decision {
  int    route;                         /* route index */
  int    rule;                          /* 1-based rule that fired */
  int    ncandidates;                   /* primary + fallbacks, >= 1 */
  int    candidates[LANE_MAX_CANDIDATES]; /* model indexes, primary first */
  int    nshadows;                      /* models to copy the request to */
  int    shadows[LANE_MAX_SHADOWS];     /* model indexes */
  double cost;                          /* expected cost of the primary, $ */
  uint32_t steps;                       /* instructions executed */
  int    nerrors;                       /* conditions that raised an error
                                           (overflow, division by zero) and
                                           so did not match */
  int    error_line;                    /* source line of the first one */
  int    filtered_rule;                 /* LANE_ENOMATCH: the first rule whose
                                           condition held but whose candidates
                                           were all filtered out (1-based), or
                                           0 if no condition held */
} lane_decision;

/* Decides which models serve request r on the named route. Allocates
 * nothing, takes no locks, always terminates. Returns LANE_OK and fills
 * out; LANE_EARG for an unknown route or a request of another program;
 * LANE_ENOMATCH when no rule produced a model (out->filtered_rule says
 * whether candidates were filtered out). */
LANE_API int lane_decide(lane_runtime *rt, const char *route,
                         const lane_request *r, lane_decision *out);
/* As lane_decide with a route index from lane_route. */
LANE_API int lane_decide_route(lane_runtime *rt, int route,
                               const lane_request *r, lane_decision *out);

/* Tracing, for explanations: what a decision tried, in order. Recorded
 * only into a trace the caller passes; a decision without one does no
 * tracing work beyond a null test. */
typedef enum lane_event_kind {
  LANE_EV_RULE = 1,   /* rule `rule` started (its condition is evaluated) */
  LANE_EV_MATCH,      /* its condition held; `model` = candidates it has now */
  LANE_EV_ERROR,      /* its condition raised an error at `line` */
  LANE_EV_MEMBER,     /* a selection considered `model`: passed 1, or 0 when
                         a per-decision check (require, filter) removed it;
                         cost = its expected cost */
  LANE_EV_CHOSEN,     /* `model` became the next candidate */
  LANE_EV_SHADOW      /* `model` became a shadow */
} lane_event_kind;

typedef struct lane_event {
  int    kind;        /* lane_event_kind */
  int    rule;        /* 1-based rule */
  int    model;       /* model index, or a count (LANE_EV_MATCH) */
  int    passed;      /* LANE_EV_MEMBER: 1 kept, 0 removed */
  int    line;        /* source line, when known */
  double cost;        /* LANE_EV_MEMBER: expected cost on the model */
} lane_event;

typedef struct lane_trace {
  lane_event *events; /* caller's array */
  int         cap;    /* its size */
  int         n;      /* events recorded */
  int         truncated; /* 1 if more happened than cap holds */
} lane_trace;

/* As lane_decide_route, recording what it tried into trace (n reset to 0).
 * trace may be NULL. */
LANE_API int lane_decide_traced(lane_runtime *rt, int route, const lane_request *r,
                                lane_decision *out, lane_trace *trace);

/* The expected cost in dollars of request r on model m (the formula of
 * lang/README.md, "Expected cost"), or 0 if m is out of range. */
LANE_API double lane_cost(const lane_program *p, const lane_request *r, int model);

#ifdef __cplusplus
}
#endif
#endif /* LANE_H */

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
typedef struct lane_request {
  const lane_program *prog;             /* program whose fields these are */
  uint64_t            set;              /* bit i: field i was set */
  lane_value          v[LANE_MAX_FIELDS]; /* values by field index */
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
 * Runtime and decisions
 * ------------------------------------------------------------------- */
typedef struct lane_runtime lane_runtime;

/* Live state for one program: model health and observed latency. The
 * program must outlive the runtime. NULL with err on failure. */
LANE_API lane_runtime *lane_runtime_new(const lane_program *p, lane_error *err);
LANE_API void          lane_runtime_free(lane_runtime *rt);

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
} lane_decision;

/* Decides which models serve request r on the named route. Allocates
 * nothing, takes no locks, always terminates. Returns LANE_OK and fills
 * out; LANE_EARG for an unknown route or a request of another program;
 * LANE_ENOMATCH when no rule produced a model. err may be NULL. */
LANE_API int lane_decide(lane_runtime *rt, const char *route,
                         const lane_request *r, lane_decision *out);
/* As lane_decide with a route index from lane_route. */
LANE_API int lane_decide_route(lane_runtime *rt, int route,
                               const lane_request *r, lane_decision *out);

/* The expected cost in dollars of request r on model m:
 * input_tokens*input + max_output_tokens*output (per-token prices), or 0
 * if m is out of range. */
LANE_API double lane_cost(const lane_program *p, const lane_request *r, int model);

/* Reports one call's outcome so later decisions see live health and
 * latency. ok is 1 for success, 0 for a failure. Thread-safe. */
LANE_API void lane_observe(lane_runtime *rt, int model, double latency_ms, int ok);
/* Records actual spend for budgets (budget tracking: see README). */
LANE_API void lane_charge(lane_runtime *rt, const lane_request *r, double dollars);

#ifdef __cplusplus
}
#endif
#endif /* LANE_H */

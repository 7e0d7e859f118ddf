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
#define LANE_FORMAT_VERSION  3      /* .lanec format version this VM reads */
/* The ABI of this header: bumped whenever a public struct's layout, a
 * limit above, or what a function's arguments mean changes. A host built
 * against one ABI and run with a liblane of another is refused by
 * LANE_ABI_CHECK, below. */
#define LANE_ABI_VERSION     5
#define LANE_MAX_FIELDS      64     /* request fields per program */
#define LANE_MAX_CANDIDATES  9      /* primary + up to 8 fallbacks */
#define LANE_MAX_SHADOWS     4      /* shadow models per decision */
#define LANE_MAX_MODELS      4096   /* models per program */
#define LANE_MAX_STRING      4096   /* bytes of a request string (lane_set_str) */
#define LANE_MAX_MAP         16384  /* bytes of a request map as stored (lane_set_map) */
#define LANE_MAX_MAP_ENTRIES 256    /* entries of a request map (lane_set_map) */

/* ---------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------- */
typedef enum lane_status {
  LANE_OK = 0,
  LANE_ENOMEM,      /* an allocation failed */
  LANE_EFORMAT,     /* bytecode malformed, corrupted or hostile */
  LANE_EVERSION,    /* bytecode of a format version this VM does not read */
  LANE_ELIMIT,      /* bytecode exceeds a limit the host set; a request
                       string is longer than LANE_MAX_STRING */
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

/* ---------------------------------------------------------------------
 * Regular expressions: matches() runs an engine the host installs
 * ------------------------------------------------------------------- */
/* A regular-expression engine (RE2 syntax). liblane has none, so that it
 * links libc alone; liblane-re (link -llane-re -lpcre2-8) provides
 * lane_regex_pcre2(). A program that calls matches() loads only once an
 * engine is installed: each of its patterns, all constants, is compiled
 * once then, never per decision. */
typedef struct lane_regex_engine {
  const char *name;   /* "pcre2 10.42 (DFA)" */
  /* Compiles pattern p (n bytes): a handle, or NULL with why (whyn bytes). */
  void *(*compile)(const char *p, size_t n, char *why, size_t whyn);
  /* Whether s (n bytes) holds a match of re anywhere (RE2's partial
   * match): 1 or 0; -1 when the engine's bound on work was reached. It may
   * run on many threads at once and must not allocate. */
  int (*match)(const void *re, const char *s, size_t n);
  void (*release)(void *re);
  /* The most states re can hold active at one byte of a subject: the
   * loader counts a match of n bytes as n times that work, so it must
   * bound the engine's real work (linear in n: no backtracking, and no
   * restarting at each offset). */
  uint32_t (*states)(const void *re);
} lane_regex_engine;
/* Installs engine e for the programs loaded from now on, process-wide
 * (NULL: none); a host calls it once at start-up, before loading. */
LANE_API void lane_regex_install(const lane_regex_engine *e);
LANE_API const lane_regex_engine *lane_regex_installed(void);
/* liblane-re's engine: PCRE2's DFA matcher (no backtracking: time linear
 * in the subject for a given pattern), patterns in UTF-8 with RE2's
 * syntax. Implemented in liblane-re, not in liblane. */
LANE_API const lane_regex_engine *lane_regex_pcre2(void);

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
/* The checksum in the program's header: which policy wrote a decision
 * log (its "policy", as 16 hex digits). */
LANE_API uint64_t    lane_program_checksum(const lane_program *p);

/* ---------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------- */
typedef enum lane_type {
  LANE_T_INT = 1,   /* int64_t (also token counts) */
  LANE_T_UINT,      /* uint64_t */
  LANE_T_DOUBLE,    /* double (money in dollars, durations in ms,
                       fractions as 0..1) */
  LANE_T_BOOL,      /* int, 0 or 1 */
  LANE_T_STRING,    /* borrowed bytes, not necessarily NUL-terminated */
  LANE_T_MAP,       /* a map from strings to values of the field's unit
                       (`map(string, int)`), set with lane_set_map */
  LANE_T_LIST       /* a list of strings (`list(string)`), set with
                       lane_set_list */
} lane_type;

typedef union lane_value {
  int64_t  i;                           /* LANE_T_INT, LANE_T_BOOL */
  uint64_t u;                           /* LANE_T_UINT */
  double   d;                           /* LANE_T_DOUBLE */
  struct { const char *p; size_t n; } s;/* LANE_T_STRING; LANE_T_MAP: the
                                           entries as stored (private) */
} lane_value;

/* One entry of a map field (lane_set_map): a key and a value of the map's
 * value type, as the setters below take it (v.s for a string; v.i for an
 * int or a bool; v.u; v.d for a double, money, a duration ...). */
typedef struct lane_entry {
  const char *key;    /* the key's bytes */
  size_t      klen;   /* their count */
  lane_value  v;      /* the value */
} lane_entry;

/* A request lives on the caller's stack, or in a buffer the caller sized
 * for the program; treat its members as private. Unset fields read as
 * zero, false or the empty string. String values are borrowed: they must
 * stay valid until the last lane_decide on it.
 *
 * Two shapes, read alike by every function that takes a lane_request:
 *   - a lane_request variable (lane_request_init): room for any program's
 *     fields and LANE_REQUEST_TEXT bytes of text, 2,080 bytes on LP64.
 *     A decision reads its header and the program's values only.
 *   - a compact request (lane_request_init_in): the header (32 bytes),
 *     one lane_value (16 bytes) per field of the program, then the text
 *     room the caller gave. A host that prepares requests ahead of their
 *     decisions packs them at lane_request_size bytes each.
 * A compact request is the leading part of a lane_request (as a struct
 * sockaddr_in is of a sockaddr_storage): it holds v[0 .. fields - 1] and
 * nothing after; pass its pointer, never copy it by value. */
#define LANE_REQUEST_TEXT 1024              /* text room of a lane_request variable */

typedef struct lane_request {
  const lane_program *prog;             /* program whose fields these are */
  uint64_t            set;              /* bit i: field i was set */
  uint32_t            nv;               /* values held: the program's fields */
  uint32_t            room;             /* bytes of text room */
  uint32_t            ntext;            /* bytes of text in use */
  uint32_t            compact;          /* 1: text room follows v[nv - 1] */
  lane_value          v[LANE_MAX_FIELDS]; /* values by field index */
  char                text[LANE_REQUEST_TEXT]; /* a variable's text room (strings
                                           copied by lane_request_from_json); a
                                           request holding them must not be
                                           copied by value */
} lane_request;

/* The index of a request field by name ("tier", "input_tokens", or a field
 * of the policy's request { } block), or -1. Look fields up once. */
LANE_API int       lane_field(const lane_program *p, const char *name);
LANE_API int       lane_field_count(const lane_program *p);
LANE_API const char *lane_field_name(const lane_program *p, int field);
/* The machine type of a field (lane_type), or 0 if out of range. */
LANE_API int       lane_field_type(const lane_program *p, int field);
/* The unit of a field as written in policies: "int", "string", "tokens",
 * "money", "duration", "fraction", "price", "double", "bool", "uint"; for
 * a map field, "map(string, " and its value's unit: "map(string, int)"; a
 * list field "list(string)". */
LANE_API const char *lane_field_unit(const lane_program *p, int field);
/* 1 if the policy declares the field `sensitive` (decision logs hash it),
 * else 0. */
LANE_API int       lane_field_sensitive(const lane_program *p, int field);

/* Makes r, a lane_request variable, an empty request of program p. */
LANE_API void lane_request_init(lane_request *r, const lane_program *p);
/* Bytes a compact request of p takes with `text` bytes of text room: 32 +
 * 16 x lane_field_count(p) + text on LP64 (0 if p is NULL or the sum
 * overflows). */
LANE_API size_t lane_request_size(const lane_program *p, size_t text);
/* Lays an empty compact request of p out in buf, `size` bytes aligned for
 * a lane_value (8 bytes; malloc's and an array of lane_value's are), and
 * returns it; the bytes past lane_request_size(p, 0) are its text room (at
 * most UINT32_MAX are used). NULL, with err saying why (LANE_EARG), if p
 * or buf is NULL, buf is not aligned, or size is smaller than
 * lane_request_size(p, 0). The request lives as long as buf. */
LANE_API lane_request *lane_request_init_in(void *buf, size_t size, const lane_program *p,
                                            lane_error *err);
/* The request's text room, for an adapter that copies strings into the
 * request: the first free byte, with *left (if not NULL) the bytes left.
 * An adapter copies a string there, calls lane_request_text_used, then
 * sets the field to it. NULL for a NULL request. */
LANE_API char *lane_request_text(lane_request *r, size_t *left);
/* Marks n more bytes of the text room used: LANE_OK, or LANE_ELIMIT if
 * fewer than n are left (nothing is marked). */
LANE_API int   lane_request_text_used(lane_request *r, size_t n);
/* Setters return LANE_OK, or LANE_EARG if the field index is out of range
 * or the field has another type. Durations are in milliseconds, money in
 * dollars, fractions as 0..1. lane_set_double accepts int and uint fields
 * only when the value is integral and in range; lane_set_int accepts uint
 * fields for v >= 0 and lane_set_uint int fields for v <= INT64_MAX.
 * lane_set_bool stores v != 0. lane_set_str: s may be NULL only if n == 0;
 * a string of more than LANE_MAX_STRING bytes is refused with LANE_ELIMIT
 * (the field is left as it was), so that the work a decision does on
 * request strings stays within the program's worst case
 * (lane_program_max_steps). */
LANE_API int lane_set_str(lane_request *r, int field, const char *s, size_t n);
LANE_API int lane_set_int(lane_request *r, int field, int64_t v);
LANE_API int lane_set_uint(lane_request *r, int field, uint64_t v);
LANE_API int lane_set_double(lane_request *r, int field, double v);
LANE_API int lane_set_bool(lane_request *r, int field, int v);
/* Sets map field `field` (LANE_T_MAP) to the n entries e: the keys, and
 * the strings among the values, are copied into r's text room (as
 * lane_request_text), so e may go once it returns. The value type is the
 * field's unit (lane_field_unit: "map(string, int)" takes v.i). Returns
 * LANE_OK; LANE_EARG for a field of another type, a NULL e with n > 0, a
 * key given twice, or a bool that is not 0 or 1; LANE_ELIMIT when a key or
 * a string value is longer than LANE_MAX_STRING, the map takes more than
 * LANE_MAX_MAP bytes as stored (4 per map, then per entry 4 + its key and
 * 4 + a string or 8 for a number), it has more than LANE_MAX_MAP_ENTRIES
 * entries, or r's text room is short. On error
 * the field is left as it was. An unset map field is the empty map. */
LANE_API int lane_set_map(lane_request *r, int field, const lane_entry *e, size_t n);
/* Sets list field `field` (LANE_T_LIST, a policy's list(string)) to the n
 * strings items[i].s, copied into r's text room as lane_set_map copies,
 * and stored alike (a map whose keys are empty): at most
 * LANE_MAX_MAP_ENTRIES items, each at most LANE_MAX_STRING bytes, the
 * list at most LANE_MAX_MAP bytes as stored (4, then 8 + its bytes per
 * item). LANE_OK, LANE_EARG (another type, NULL items with n > 0) or
 * LANE_ELIMIT; on error the field is left as it was. */
LANE_API int lane_set_list(lane_request *r, int field, const lane_value *items, size_t n);

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
 * policy. Strings are copied into r's text room (lane_request_text).
 *
 * formats says which endpoint the body came to. A host that knows it
 * passes that one format (a body POSTed to /v1/messages:
 * LANE_FORMAT_ANTHROPIC_MESSAGES) and the body is read as that format,
 * whatever its shape. A host that does not passes both, and the body's
 * shape decides (vm/json/json.c lists the signals); a body whose shape points
 * to both formats with equal strength is refused, naming one field of each.
 *
 * Returns LANE_OK; LANE_EJSON with err saying why (not JSON, wrong types,
 * both formats' fields, a limit passed: body size, nesting, values in the
 * body, entries of an array, strings that do not fit r's text room); LANE_EARG
 * for a NULL request or body or bad formats; LANE_ENOMEM. On error r is
 * left exactly as it was. Implemented in liblane-json (vm/json/json.c documents
 * the token estimate and every limit), not in liblane. */
LANE_API int lane_request_from_json(lane_request *r, const char *body, size_t len,
                                    int formats, lane_error *err);

/* ---------------------------------------------------------------------
 * Runtime: live stats, circuit breakers and budgets
 * ------------------------------------------------------------------- */
typedef struct lane_runtime lane_runtime;

/* A clock in milliseconds since the Unix epoch. Budgets use it for their
 * windows, so it is wall time; tests pass a fake one.
 *
 * Clock steps. Wall time can step back (NTP, a VM restored) or forward.
 *   - Budgets: a budget's periods never go back. Its current period is the
 *     later of the clock's and the newest period holding spend, so after a
 *     step back its window stands still (and is charged and read as that
 *     newest period) until the clock passes it again: spend recorded under
 *     the later clock is never hidden. A step forward is time that passed:
 *     windows it passes expire.
 *   - Latency windows: a time slot holding a later period than the clock's
 *     (the clock stepped back by a window or more) is cleared and reused,
 *     so calls observed after the step count; stats restart from there.
 *   - Breakers: a cooldown or probe deadline more than one cooldown ahead
 *     of the clock (it stepped back) ends one cooldown from now instead.
 * lane_runtime_now returns the clock as it is. */
typedef uint64_t (*lane_clock_fn)(void *ctx);
/* Clocks a host may pass as lane_runtime_options.clock (ctx unused). A
 * decision reads the clock once. lane_clock_realtime is the default:
 * CLOCK_REALTIME, exact to the ms, a system call's cost where the vDSO
 * cannot serve it (tens of ns on some virtual machines). lane_clock_coarse
 * reads CLOCK_REALTIME_COARSE where the system has it (a few ns; it moves
 * in steps of the kernel tick, 1 to 4 ms, which windows of seconds and
 * cooldowns do not notice), else the default. */
LANE_API uint64_t lane_clock_realtime(void *ctx);
LANE_API uint64_t lane_clock_coarse(void *ctx);

/* What a budget key reads when the key table has no slot for it (every
 * slot on its path holds a key whose window has not passed and the table
 * is at budget_keys). Its charges go to the budget's overflow account in
 * every mode, so no dollar is lost; lane_runtime_budget_stats counts them.
 * Set with lane_runtime_set_budget_on_full. */
enum {
  LANE_ON_FULL_SHARED = 0,  /* reads the overflow account: keys without a
                               slot are capped together (the default) */
  LANE_ON_FULL_CLOSED = 1,  /* reads as at its limit: spent = limit,
                               remaining $0, used 100% */
  LANE_ON_FULL_OPEN = 2     /* reads as $0 spent */
};

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
  uint32_t      budget_keys;    /* most keys with a slot of their own per
                                   budget (default 4096; rounded up to a
                                   power of two, at least 16, at most
                                   16777216: more is LANE_EARG). Slots are
                                   allocated as keys arrive, not up front */
  int           frozen;         /* with clock NULL: time stands at
                                   frozen_ms (replaying a snapshot, tests);
                                   the runtime keeps its own copy */
  uint64_t      frozen_ms;      /* ms since the epoch */
} lane_runtime_options;

/* Live state for one program. The program must outlive the runtime. NULL
 * with err on failure (LANE_ENOMEM, LANE_EARG: an option out of range).
 * All functions on a runtime are thread-safe; updates are atomics,
 * decisions read without locks. Memory: vm/README.md gives the formula;
 * lane_runtime_memory reports it. */
LANE_API lane_runtime *lane_runtime_new(const lane_program *p, lane_error *err);
LANE_API lane_runtime *lane_runtime_new_with(const lane_program *p,
                                             const lane_runtime_options *opt,
                                             lane_error *err);
LANE_API void          lane_runtime_free(lane_runtime *rt);
/* Bytes the runtime has allocated now (it grows as budgets see new keys,
 * up to the bound of vm/README.md). 0 for NULL. */
LANE_API size_t        lane_runtime_memory(const lane_runtime *rt);

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
 * never drift (and saturate rather than wrap). A key the budget's table
 * has no slot for is recorded in its overflow account. May allocate (a
 * budget's key table grows as keys arrive); if that fails the key is
 * recorded in the overflow account. Returns LANE_OK, or LANE_EARG
 * (negative, not finite, or $9.2e9 and above). */
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
/* The key hash a budget uses for a key value given as text, read by the
 * key field's type exactly as lane_set_* would store it: a string key's
 * bytes (FNV-1a 64); an int key in decimal (an optional '-', digits, within
 * int64); a uint key in decimal digits (within uint64); a bool key "true",
 * "false", "1" or "0"; a double key as a finite decimal number (optional '-', digits,
 * '.', exponent; no hex, inf or nan), read by strtod. Returns 0 -- an
 * invalid key, which lane_budget_spent refuses -- for any other text
 * (spaces, '+', a sign on a uint, trailing characters, out of range) or a
 * bad budget. Never returns UINT64_MAX (a key hashing to it uses
 * UINT64_MAX - 1). */
LANE_API uint64_t    lane_budget_key_hash(const lane_program *p, int budget,
                                          const char *key, size_t n);
/* The key hash budget `budget` charges and decisions read for request r
 * (its key field's value, as lane_charge hashes it), or 0 when the field
 * is not set (no key: nothing charged, $0 read) or for a bad argument. */
LANE_API uint64_t    lane_budget_key_of(const lane_program *p, int budget,
                                        const lane_request *r);
/* Spend of one key in the budget's current window, in dollars, as
 * decisions read it (so for a key the table has no slot for: what the
 * budget's on_full mode says). LANE_EARG for key hash 0. */
LANE_API int lane_budget_spent(const lane_runtime *rt, int budget, uint64_t key_hash,
                               double *dollars);
/* Sets the spend of one key in the current window (replaying a snapshot);
 * key hash 0 sets the overflow account. */
LANE_API int lane_runtime_set_spend(lane_runtime *rt, int budget, uint64_t key_hash,
                                    double dollars);
/* Sets what keys without a slot read (LANE_ON_FULL_*) in one budget, or
 * in every budget for budget -1. Any time, from any thread; decisions see
 * it at once. LANE_EARG for a bad budget or mode. */
LANE_API int lane_runtime_set_budget_on_full(lane_runtime *rt, int budget, int mode);

/* A budget's key table, for metrics. */
typedef struct lane_budget_stats {
  uint64_t keys;             /* slots holding a key (a key whose window has
                                passed keeps its slot until reclaimed) */
  uint64_t slots;            /* slots allocated so far */
  uint64_t capacity;         /* most slots: budget_keys rounded up */
  uint64_t overflow_charges; /* charges recorded in the overflow account
                                because their key had no slot */
  uint64_t overflow_keys;    /* distinct keys among those charges, estimated
                                (linear counting over 4096 bits: within
                                about 2% up to 10,000 keys, 4% at 20,000;
                                it saturates at about 34,000) */
  uint64_t reclaimed;        /* slots taken over from keys whose window had
                                passed */
  uint64_t grow_failures;    /* key levels that could not be allocated (their
                                keys went to the overflow account) */
  uint32_t on_full;          /* LANE_ON_FULL_* in effect */
  uint32_t unmerged;         /* duplicate slots that could not be merged
                                (vm/README.md); reads then add every slot
                                of a key. 0 in practice */
} lane_budget_stats;

/* Fills out for one budget. LANE_EARG for a bad runtime, budget or out. */
LANE_API int lane_runtime_budget_stats(const lane_runtime *rt, int budget,
                                       lane_budget_stats *out);

/* Saves budget spend to a file and loads it back, so a restart does not
 * reset a tenant's spend.
 *
 * Save writes one consistent pass of the runtime (charges may go on
 * meanwhile) to a new file beside `path` (path.tmp.PID.N, created with
 * O_EXCL, mode 0666 less the umask), syncs it, reads it back and compares,
 * then renames it over `path` and syncs the directory: a save that returns
 * LANE_OK left a complete file that loads, and a failed one leaves the old
 * file as it was. Returns LANE_OK, LANE_ENOMEM, or LANE_EARG with the
 * system's reason.
 *
 * Load applies the spend of every saved budget that still means the same:
 * same budget name, same key field (name and type), same window kind and
 * length -- a changed limit keeps the spend. Other saved budgets are
 * dropped with a note; budgets the file lacks keep what they have. Each
 * saved key's spend replaces the key's; saved keys that find no slot add
 * up in the overflow account, and so does the file's overflow account. A
 * file whose periods are later than the runtime's (saved by a host whose
 * clock ran ahead) is shifted back so its newest period is the current
 * one: every dollar stays visible. A corrupt, truncated or unreadable file
 * is refused with a reason (LANE_EFORMAT; LANE_EVERSION for a format this
 * runtime does not read; LANE_EARG if it cannot be read) and changes
 * nothing. Version-1 files (before keys and windows were recorded) load
 * only into the program that saved them, as before.
 *
 * lane_runtime_load reports what it dropped only in err->message (code
 * LANE_OK, a one-line summary) when err is given; lane_runtime_load_ex
 * fills a report. */
LANE_API int lane_runtime_save(const lane_runtime *rt, const char *path, lane_error *err);
LANE_API int lane_runtime_load(lane_runtime *rt, const char *path, lane_error *err);

/* Called with each note of a report (a NUL-terminated line, valid during
 * the call). */
typedef void (*lane_note_fn)(void *ctx, const char *note);

/* What a load or carry kept and dropped. The caller sets note/note_ctx (or
 * zeroes them); the call fills the rest. */
typedef struct lane_state_report {
  lane_note_fn note;         /* in: called with every note, if set */
  void        *note_ctx;     /* in: passed to note */
  uint32_t budgets_kept;     /* saved budgets whose spend was applied */
  uint32_t budgets_dropped;  /* saved budgets left out, each with a note */
  uint32_t budgets_new;      /* budgets of the program the source has no
                                budget of that name for */
  uint32_t budgets_shifted;  /* kept budgets whose periods were ahead of
                                the clock and were shifted back */
  uint64_t keys_kept;        /* keys whose spend was applied */
  uint64_t keys_expired;     /* saved keys whose window had passed */
  uint64_t keys_overflowed;  /* kept keys that found no slot: their spend
                                went to the overflow account */
  uint32_t models_kept;      /* lane_runtime_carry: models whose live
                                state was carried */
  uint32_t models_dropped;   /* lane_runtime_carry: models of the source
                                the program lacks, each with a note */
  uint32_t nnotes;           /* notes made, also those notes could not hold */
  char     notes[1024];      /* the first notes that fit whole, one per
                                line, NUL-terminated */
} lane_state_report;

/* As lane_runtime_load, filling report (may be NULL). */
LANE_API int lane_runtime_load_ex(lane_runtime *rt, const char *path,
                                  lane_state_report *report, lane_error *err);
/* As lane_runtime_load_ex from bytes in memory (n bytes of a saved file;
 * the caller keeps them). */
LANE_API int lane_runtime_load_mem(lane_runtime *rt, const void *bytes, size_t n,
                                   lane_state_report *report, lane_error *err);
/* Carries live state from src to dst, a runtime of another program (or of
 * the same) -- for swapping programs without losing state: budget spend
 * with the matching rules of lane_runtime_load, and each model's live
 * stats and breaker by model name (stats only when both runtimes have the
 * same window_ms). src may be serving; dst should not be yet. Returns
 * LANE_OK, LANE_ENOMEM (nothing changed) or LANE_EARG. */
LANE_API int lane_runtime_carry(lane_runtime *dst, const lane_runtime *src,
                                lane_state_report *report, lane_error *err);

/* ---------------------------------------------------------------------
 * Swapping programs while deciding (hot reload)
 * ------------------------------------------------------------------- */
/* Makes p the program rt serves, while other threads go on deciding:
 * decisions already running, and views pinned with lane_runtime_acquire,
 * finish on the program they started with; every decision that starts
 * after the call returns uses p. No lock is taken on the decision path:
 * the swap waits (microseconds) for calls on rt that may still read the
 * old program, never the other way round.
 *
 * Live state is shared by meaning, not copied: each model of p uses the
 * live stats and breaker of the old program's model of the same name (or
 * else of the one model with the same provider and id); each budget uses
 * the spend of the old program's budget of the same name whose key field
 * (name and type) and window (kind and length) are unchanged -- a changed
 * limit keeps its spend. Other budgets and models start fresh. Because it
 * is shared, a charge or observation made through the old program, even
 * after the swap (by a request that pinned it), counts for the new one:
 * spend is exact across swaps. report (may be NULL) says what was kept
 * (budgets_kept, keys_kept, models_kept), what started fresh
 * (budgets_new) and what was dropped, each with a note.
 *
 * On LANE_OK p belongs to the runtime: it frees p once p has been swapped
 * out and its last pinned view is released, or at lane_runtime_free. Do
 * not free p or pass it again. (The program given to lane_runtime_new
 * stays the caller's, as before: free it after lane_runtime_free.) On
 * failure nothing changed and p is still the caller's: LANE_EARG (rt is a
 * view, p is NULL or already active), LANE_ENOMEM. Swaps on one runtime
 * are serialized. rt must be what lane_runtime_new returned. */
LANE_API int lane_runtime_swap(lane_runtime *rt, lane_program *p, lane_state_report *report,
                               lane_error *err);

/* Pins the program rt serves now, for as long as a request needs it (its
 * decision, its upstream calls, lane_observe and lane_charge after them,
 * its decision-log record): returns a view, a lane_runtime every function
 * of this header accepts, which works on that program whatever swaps
 * happen meanwhile, and on the same live state as rt. Build the request
 * with lane_runtime_program(view). Release it with lane_runtime_release
 * (lane_runtime_free on a view does the same). Never NULL for a runtime;
 * takes no lock. Acquiring a view pins it once more. Release every view
 * before lane_runtime_free(rt). */
LANE_API lane_runtime *lane_runtime_acquire(lane_runtime *rt);
LANE_API void lane_runtime_release(lane_runtime *view);
/* The program a view decides with; for rt itself, the one active now
 * (valid until the next swap: acquire a view to keep it). */
LANE_API const lane_program *lane_runtime_program(const lane_runtime *rt);
/* Which program that is: 1 for the first, one more at each swap. */
LANE_API uint64_t lane_runtime_generation(const lane_runtime *rt);

/* Writes the runtime's live state -- model stats and breakers, budget
 * spend by key hash, the clock -- as JSON into buf (NUL-terminated if it
 * fits). Returns the length of the whole text; call again with a larger
 * buffer when it is >= cap. */
LANE_API size_t lane_runtime_snapshot(const lane_runtime *rt, char *buf, size_t cap);
/* Milliseconds now, by the runtime's clock. */
LANE_API uint64_t lane_runtime_now(const lane_runtime *rt);

/* ---------------------------------------------------------------------
 * Fleet state: what a store adapter (vm/redis, liblane-redis) uses to
 * share budgets and model health between processes. liblane itself does
 * no I/O: it tells the adapter what this process charged and observed,
 * and takes in what the rest of the fleet did.
 * ------------------------------------------------------------------- */
/* A budget as the program declares it. */
typedef struct lane_budget_info {
  const char *name;        /* borrowed from the program */
  const char *key_field;   /* the key's request field ("" for none) */
  int         key_type;    /* its lane_type (0 for none) */
  double      limit;       /* dollars per window */
  uint64_t    window_ms;   /* the window */
  uint64_t    period_ms;   /* one period: the window, or a twelfth of a
                              rolling one; spend is kept per period
                              number now_ms / period_ms */
  uint32_t    periods;     /* periods in the window: 1, or 12 rolling */
  int         rolling;     /* 1 for a rolling window */
} lane_budget_info;
/* Fills out for one budget; LANE_EARG for a bad program, index or out. */
LANE_API int lane_budget_describe(const lane_program *p, int budget, lane_budget_info *out);

/* What liblane tells an adapter, from the thread that made the call:
 * charged after lane_charge recorded nanos (nano-dollars) for one budget
 * (index in view's program) and key in period `period`; observed after
 * lane_observe recorded a call. Both run on the charging or observing
 * thread, never on a decision; they must not call lane_charge or
 * lane_observe. */
typedef struct lane_fleet_hooks {
  void *ctx;
  void (*charged)(void *ctx, lane_runtime *view, int budget, uint64_t key_hash,
                  uint64_t period, int64_t nanos);
  void (*observed)(void *ctx, lane_runtime *view, int model, double latency_ms, int status);
} lane_fleet_hooks;
/* Sets the hooks (copied; NULL removes them). Set them before the
 * runtime is shared and remove them only when no call runs on it.
 * LANE_EARG for a view or NULL rt, or when hooks are set already (one
 * adapter at a time: remove them first). */
LANE_API int lane_runtime_set_fleet(lane_runtime *rt, const lane_fleet_hooks *hooks);

/* Adds spend the rest of the fleet recorded (nanos > 0) to key key_hash's
 * period `period`, which decisions then read with this process's own;
 * no hook is called. A period that has left the window adds nothing; one
 * ahead of this runtime's clock goes to its current period. LANE_EARG
 * for a bad budget, key hash 0 or nanos < 0. */
LANE_API int lane_runtime_add_fleet_spend(lane_runtime *rt, int budget, uint64_t key_hash,
                                          uint64_t period, int64_t nanos);
/* A lease: while held (held 1) in period `period`, key key_hash reads as
 * at its limit (as on_full closed does), whatever its spend -- this
 * process has spent the slice of the budget the fleet gave it. held 0
 * lets it read its spend again; the hold ends by itself with the period.
 * LANE_OK; LANE_EARG for a bad budget or key hash 0; LANE_ELIMIT when the
 * key has no slot of its own (it reads what on_full says). */
LANE_API int lane_runtime_hold_key(lane_runtime *rt, int budget, uint64_t key_hash,
                                   uint64_t period, int held);
/* Adds count calls the rest of the fleet observed on a model (status and
 * latency as lane_observe's) to the window now, with the breaker rule run
 * on the result, so failures elsewhere open this process's breaker. No
 * hook is called. LANE_EARG for a bad model. */
LANE_API int lane_runtime_observe_fleet(lane_runtime *rt, int model, double latency_ms,
                                        int status, uint32_t count);
/* The latency histogram's buckets (8 per octave from 0.25 ms): the bucket
 * a latency falls in, and a latency that falls in bucket i (its lower
 * bound; 0 for bucket 0), so an adapter can ship counts per bucket and
 * replay them exactly. */
#define LANE_LATENCY_BUCKETS 178
LANE_API int    lane_latency_bucket(double latency_ms);
LANE_API double lane_latency_bucket_ms(int bucket);

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
  unsigned probed;                      /* bit i set: candidates[i] took its
                                           breaker's probe in this decision
                                           (past its cooldown, it was let
                                           through once; its outcome closes
                                           or reopens the breaker) */
  int64_t output_tokens;                /* the output tokens its costs counted */
  int    output_from;                   /* where they came from: LANE_OUTPUT_* */
} lane_decision;

/* lane_decision.output_from: the output tokens expected costs count. */
enum {
  LANE_OUTPUT_NONE = 0,     /* no max_output_tokens, no estimate: input only */
  LANE_OUTPUT_REQUEST = 1,  /* the request's max_output_tokens */
  LANE_OUTPUT_ESTIMATE = 2  /* the route's output_estimate (no max_output_tokens) */
};

/* Decides which models serve request r on the named route. Allocates
 * nothing, takes no locks, always terminates. Returns LANE_OK and fills
 * out; LANE_EARG for an unknown route or a request of another program
 * (after a swap: a request built for a program rt no longer serves; see
 * lane_runtime_acquire);
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
  LANE_EV_SHADOW,     /* `model` became a shadow */
  LANE_EV_SELECT      /* a target of the rule starts choosing (a
                         selection, or a model named alone): `model` = its
                         place among the rule's targets in source order,
                         from 0, split arms included, whether or not the
                         others ran; the MEMBER events up to the next
                         SELECT or RULE are its own. A target with nothing
                         left to fill has its SELECT and no MEMBERs */
} lane_event_kind;

typedef struct lane_event {
  int    kind;        /* lane_event_kind */
  int    rule;        /* 1-based rule */
  int    model;       /* model index, or a count (LANE_EV_MATCH) */
  int    passed;      /* LANE_EV_MEMBER: 1 kept, 0 removed */
  int    line;        /* source line, when known */
  double cost;        /* LANE_EV_MEMBER: expected cost on the model */
  int    check;       /* LANE_EV_MEMBER removed: the check that removed it
                         (LANE_CHECK_FITS, _HEALTHY, _FILTER); else 0 */
} lane_event;

/* lane_event.check: what removed a member from a selection, in the order
 * the VM tests them. */
enum {
  LANE_CHECK_FITS = 1,    /* `fits`: the request does not fit its context
                             or max output (tested natively) */
  LANE_CHECK_HEALTHY = 2, /* `healthy`: its breaker is open (natively) */
  LANE_CHECK_FILTER = 3   /* a condition of the selection's pool or of the
                             route's requires, run as the filter's code */
};
/* A check's short name ("fits", "healthy", "filter"), or "" for 0 or an
 * unknown value. Never NULL. */
LANE_API const char *lane_check_name(int check);

typedef struct lane_trace {
  lane_event *events; /* caller's array; may be NULL when cap is 0 */
  int         cap;    /* its size, >= 0 */
  int         n;      /* events recorded; >= 0 on entry */
  int         truncated; /* 1 if more happened than cap holds */
} lane_trace;

/* The explanation of a traced decision, as text, into buf (at most n
 * bytes with the NUL; snprintf's contract: returns the length the whole
 * text needs, so a caller whose buf was too small can call again with the
 * same trace, without deciding again). One block per rule tried: whether
 * it matched and, if not, which part of its condition was false with the
 * values it saw; each member its targets considered with its expected
 * cost, kept or removed and why (the condition that removed it, or the
 * check: `fits`, `healthy`); what was chosen and shadowed; then the
 * decision. r, status and d are what lane_decide_traced was given and
 * returned for trace, on rt.
 * Reasons come from the program's explain tables, which `lane compile`
 * writes (a program without them gives the trace's check alone); their
 * values are read from rt now. hooks, if not NULL, give the reasons
 * instead: the compiler's test of the tables passes its own. */
typedef struct lane_explain_hooks {
  void *ctx;
  /* why rule `rule` (1-based) did not match: into buf, "" for nothing */
  void (*why_rule)(void *ctx, int rule, char *buf, size_t cap);
  /* why `model` was removed from target `sel` (LANE_EV_SELECT's place)
   * of rule `rule` by check (lane_event.check) */
  void (*why_removed)(void *ctx, int rule, int sel, int model, int check, char *buf,
                      size_t cap);
} lane_explain_hooks;
LANE_API size_t lane_explain_text(lane_runtime *rt, int route, const lane_request *r,
                                  int status, const lane_decision *d,
                                  const lane_trace *trace, const lane_explain_hooks *hooks,
                                  char *buf, size_t n);

/* One reason of an explanation, from the program's explain tables, with
 * live values read from rt now, into buf (snprintf's contract): why rule
 * `rule` (1-based) of route does not match r ("" when it does, or when
 * the program has no tables); why `model` does not pass the conditions of
 * target `sel` (LANE_EV_SELECT's place) of that rule ("" when it passes
 * them, or it was the trace's check, `fits` or `healthy`, alone). d, the
 * decision explained (may be NULL), keeps `healthy` as it saw it for the
 * models whose probe it took (d->probed), whose breakers are half-open
 * now. */
LANE_API size_t lane_why_rule(lane_runtime *rt, int route, int rule, const lane_request *r,
                              const lane_decision *d, char *buf, size_t n);
LANE_API size_t lane_why_removed(lane_runtime *rt, int route, int rule, int sel, int model,
                                 const lane_request *r, const lane_decision *d, char *buf,
                                 size_t n);

/* Decides request r on route (an index) with a trace of its own and writes
 * the explanation as lane_explain_text does (no hooks). Returns the length
 * the text needs; 0 with buf "" when nothing could be decided (a bad
 * route or request, no memory). A decision is made each call: to retry
 * with a larger buf without deciding again, or to keep the decision, call
 * lane_decide_traced and lane_explain_text yourself. */
LANE_API size_t lane_explain(lane_runtime *rt, int route, const lane_request *r,
                             lane_decision *out, char *buf, size_t n);

/* As lane_decide_route, recording what it tried into trace (n reset to 0,
 * at most cap events written). trace may be NULL. LANE_EARG, with nothing
 * decided or written, for a trace with cap or n negative, or with cap > 0
 * and events NULL. */
LANE_API int lane_decide_traced(lane_runtime *rt, int route, const lane_request *r,
                                lane_decision *out, lane_trace *trace);

/* The expected cost in dollars of request r on model m (the formula of
 * lang/README.md, "Expected cost"), or 0 if m is out of range. */
LANE_API double lane_cost(const lane_program *p, const lane_request *r, int model);
/* The expected cost of r on model m as decisions on route `route` count it:
 * a request without max_output_tokens counts the route's output_estimate
 * (none if the route has none) as its output. 0 if the route or model is
 * out of range. */
LANE_API double lane_route_cost(const lane_program *p, int route, const lane_request *r,
                                int model);

#ifdef __cplusplus
}
#endif
/* ---------------------------------------------------------------------
 * Decision logs (vm/log.c; the schema: doc/decision-log.schema.json)
 * ------------------------------------------------------------------- */
#define LANE_LOG_VERSION 1   /* the "v" of every record */

/* Decision d of request r on route, as lane_decide_route (or _traced)
 * returned status and filled d on rt, as one JSON line ending in '\n',
 * into buf (snprintf's contract: returns the length needed). The record
 * holds a decision id (id, or one made from the clock and a counter when
 * NULL), the time, the policy's checksum, the route, rule, candidates,
 * shadows and expected cost, the request fields set (never message text),
 * and the live view the decision read: each model whose figures are not
 * a fresh runtime's, each budget's spend for the request's key -- all
 * that `lane replay` needs to decide it again exactly. Fields declared
 * `sensitive` are written as "h:" and the SipHash-2-4 of their value
 * under key (16 bytes), or as "redacted" when key is NULL: never in clear;
 * their bucket (lane_bucket, 0..99) is kept in "buckets", so a canary or
 * split by them replays exactly (a test of their exact value cannot).
 * Read the live view just after the decision, before charging. Returns 0
 * with buf "" for a bad argument. */
LANE_API size_t lane_log_decision(lane_runtime *rt, int route, const lane_request *r,
                                  int status, const lane_decision *d, const char *id,
                                  const unsigned char *key, char *buf, size_t n);

/* What became of a decision, joined to its record by id. */
typedef struct lane_outcome {
  const char *id;           /* the decision record's id */
  uint64_t    ts_ms;        /* when the call ended */
  int         model;        /* the model that answered (or was tried
                               last), or -1 */
  int         attempts;     /* calls made, fallbacks included */
  int         fallbacks;    /* fallbacks taken */
  int         status;       /* the final HTTP status, or 0 without one */
  double      latency_ms;   /* from the first attempt to the answer */
  int64_t     input_tokens, output_tokens; /* as the provider billed them */
  double      cost;         /* actual dollars */
  int         has_score;    /* 1: score holds a host's grade */
  double      score;        /* user feedback or an eval's grade, 0..1 */
  int         attempt;      /* a record per attempt: its number (1-based),
                               or 0 for one record per decision */
  int         final;        /* 1: the decision's last record (its answer,
                               or that none came); 0: an attempt that failed */
  const char *error;        /* a failed attempt's kind ("timeout",
                               "http_5xx", ...), or NULL */
  int         shadow;       /* 1: a shadow's call (a copy of the request sent
                               to compare a model; never the client's answer,
                               never joined to the decision by replay) */
} lane_outcome;

/* An outcome as one JSON line ("type":"outcome"), snprintf's contract. */
LANE_API size_t lane_log_outcome(const lane_program *p, const lane_outcome *o, char *buf,
                                 size_t n);

/* The bucket a string falls in, 0..99: what bucket(s) < P% and split
 * arms compare (bucket(s) is this / 100). */
LANE_API int lane_bucket(const char *s, size_t n);

/* Reads a log key file: 32 hex digits (16 bytes), white space around
 * them and nothing else. LANE_OK, or LANE_EARG with err saying why (it
 * cannot be read, or is not such a key). */
LANE_API int lane_log_key_load(const char *path, unsigned char key[16], lane_error *err);

/* SipHash-2-4 of n bytes under a 16-byte key: the keyed hash decision
 * logs write for sensitive fields (and replay tools compare). */
LANE_API uint64_t lane_siphash24(const unsigned char key[16], const void *data, size_t n);

/* ---------------------------------------------------------------------
 * Version and ABI
 * ------------------------------------------------------------------- */
/* The version of the liblane that is running ("0.1.0"), which may differ
 * from the LANE_VERSION_STRING a host was compiled with. */
LANE_API const char *lane_version(void);
/* The LANE_ABI_VERSION liblane was built with. */
LANE_API int lane_abi_version(void);

/* The sizes of the structs a host shares with liblane, in this order;
 * hosts in other languages (bindings/python) pass their own. */
#define LANE_ABI_SIZES                                                        \
  { sizeof(lane_error), sizeof(lane_request), sizeof(lane_decision),         \
    sizeof(lane_event), sizeof(lane_trace), sizeof(lane_live_stats),         \
    sizeof(lane_budget_stats), sizeof(lane_state_report),                    \
    sizeof(lane_load_options), sizeof(lane_runtime_options),                 \
    sizeof(lane_outcome), sizeof(lane_entry) }
#define LANE_ABI_NSIZES 12

/* Checks, at run time, that the liblane loaded is the one a host was built
 * for: the same abi version and, for the first n structs of
 * LANE_ABI_SIZES, the same sizes (n may be smaller than LANE_ABI_NSIZES
 * for a host that uses fewer). Returns LANE_OK, or LANE_EVERSION with err
 * naming the first difference and both versions. C hosts call
 * LANE_ABI_CHECK(&err) once at start-up. */
LANE_API int lane_abi_check(int abi, const size_t *sizes, int n, lane_error *err);
#define LANE_ABI_CHECK(err)                                                   \
  lane_abi_check(LANE_ABI_VERSION, (const size_t[])LANE_ABI_SIZES,            \
                 LANE_ABI_NSIZES, (err))

#endif /* LANE_H */

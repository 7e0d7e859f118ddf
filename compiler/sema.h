/*
 * sema.h -- the compiler's passes over the AST: load (imports), resolve,
 * check (types and units), evaluation of constants and static model
 * filters, and emission of bytecode.
 *
 * One sema_unit per compilation. It owns an ast_ctx (arena and
 * diagnostics); everything it builds lives in that arena, except the
 * encoded program, which the caller receives as malloc'd bytes.
 */
#ifndef LANE_SEMA_H
#define LANE_SEMA_H

#include "ast.h"
#include "lanec.h"
#include "bc.h"
#include "lane.h"

/* ---- types ---- */
typedef enum sema_ty {
  TY_ERROR = 0,   /* already reported; silences cascades */
  TY_INT, TY_UINT, TY_DOUBLE, TY_BOOL, TY_STRING, TY_NULL,
  TY_MONEY,       /* dollars */
  TY_PRICE,       /* dollars per token */
  TY_DURATION,    /* milliseconds */
  TY_TOKENS,      /* token count */
  TY_FRACTION,    /* 0..1 */
  TY_MODEL,       /* a model (tests only) */
  TY_DYN,         /* the items of a constant list of mixed types, [1, 'a']:
                     each has its own type, known when it is folded */
  TY_TIMESTAMP,   /* milliseconds since the Unix epoch (CEL's timestamp) */
  TY_TYPE,        /* a type as a value (CEL's type(x), int, list ...): constants */
  TY_NTYPES,
  TY_LIST = 0x100,  /* or'ed with the element type */
  TY_MAP = 0x10000  /* or'ed with key << 9 | value: map(key, value) */
} sema_ty;

/* map(k, v) types: a request field's (map(string, V)), or a constant's.
 * The key sits above TY_LIST's bit, so a map never reads as a list. */
#define TY_MAPOF(k, v) (TY_MAP | (k) << 9 | (v))
#define TY_MKEY(t)     ((t) >> 9 & 31)
#define TY_MVAL(t)     ((t) & 31)
#define TY_IS_MAP(t)   (((t) & TY_MAP) != 0)
_Static_assert(TY_NTYPES <= 32, "a map type holds its key and value types in 5 bits each");

const char *sema_ty_name(int ty);   /* "money", "list(string)" */
/* The name type(x) gives for a value of type ty (CEL's: "int", "list",
 * "google.protobuf.Timestamp"; lane's units by their own names), or NULL
 * for a type name that is not one (n of them in *names). */
const char *sema_type_value(int ty);
int         sema_type_name(const char *name);   /* 1 if `name` names a type value */
int         sema_ty_mtype(int ty);  /* machine type LANE_T_*, or 0 */
int         sema_ty_unit(int ty);   /* bc_unit of a scalar type, or 0 */

/* What a resolved name refers to (ast_node.refkind; ast_node.ref is the
 * index or property). */
typedef enum sema_ref {
  RK_NONE,
  RK_FIELD,       /* request field, ref = field index */
  RK_MPROP,       /* model property of the current/selected model, ref = MP_* */
  RK_BUDGET,      /* ref = budget index * 4 + (0 spent, 1 remaining, 2 used) */
  RK_MODEL,       /* a model constant, ref = model index */
  RK_DECISION,    /* test: ref = DV_* */
  RK_MAPKEY,      /* N_SELECTOR m.k on a map m: the value of key "k" */
  RK_NOW,         /* N_IDENT now: the decision's clock */
  RK_TYPENAME,    /* N_IDENT int, list ... (or google.protobuf.Timestamp): a type value */
  RK_VAR,         /* N_IDENT a macro's variable (x in l.all(x, p)): ref =
                     its depth, op = 1 when its list or map is a constant */
  RK_HETERO       /* N_BINARY == or != whose sides never share a type, one
                     of them dyn(): constant false (==) or true (!=), CEL's
                     heterogeneous equality; the sides still run, for the
                     errors they may raise */
} sema_ref;

/* Model properties: the rows of BC_MPROPS (vm/bc.h), whose kind says which
 * are known at compile time and which are read per decision (live stats,
 * the request's cost and fit); MP_CAP + bit is a capability. */
typedef enum sema_mprop {
#define SEMA_MP_ENUM(id, name, member, unit, mt, off, kind, op, mfa, group, doc) MP_##id = BC_MP_##id,
  BC_MPROPS(SEMA_MP_ENUM)
#undef SEMA_MP_ENUM
  MP_CAP = 64                     /* + capability bit */
} sema_mprop;

/* The language types of BC_MPROPS' unit column that are not units. */
#define TY_TAGS (TY_LIST | TY_STRING)
#define TY_NONE TY_ERROR

/* SEMA_MP_VALUE(kind)(...) keeps its arguments for rows a model
 * declaration sets and sema_model holds as a member (STATIC, PRIOR). */
#define SEMA_MP_VALUE(kind)        SEMA_MP_VALUE_##kind
#define SEMA_MP_VALUE_STATIC(...)  __VA_ARGS__
#define SEMA_MP_VALUE_PRIOR(...)   __VA_ARGS__
#define SEMA_MP_VALUE_LIVE(...)
#define SEMA_MP_VALUE_COMPILE(...)
#define SEMA_MP_VALUE_RECORD(...)
#define SEMA_MP_CTYPE_D double
#define SEMA_MP_CTYPE_I int64_t
#define SEMA_MP_CTYPE_S const char *

/* The compiler's columns of BC_MPROPS, indexed by MP_*: its language type
 * and, for SEMA_MP_VALUE rows, where sema_model holds it. */
typedef struct sema_mpinfo {
  int    ty;              /* sema_ty */
  size_t soff;            /* offsetof(sema_model, member), or 0 */
} sema_mpinfo;

extern const sema_mpinfo sema_mprops[BC_NMPROPS];

typedef enum sema_dval { DV_RULE, DV_RULE_NAME, DV_PRIMARY, DV_FALLBACKS,
                         DV_SHADOWS, DV_COST, DV_ROUTE, DV_ERRORS, DV_DECIDED,
                         DV_FILTERED } sema_dval;

/* ---- declarations ---- */
typedef struct sema_model {
  const char *name;        /* lane name, "anthropic.claude_haiku_4_5" */
  ast_span    span;        /* first declaration */
  /* one member per declared row of BC_MPROPS: provider, id, prices, ... */
#define SEMA_MP_MEMBER(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  SEMA_MP_VALUE(kind)(SEMA_MP_CTYPE_##mt member;)
  BC_MPROPS(SEMA_MP_MEMBER)
#undef SEMA_MP_MEMBER
  uint32_t    caps;        /* capability bits */
  const char **tags;       /* tag strings */
  int         ntags;       /* number of tags */
  int         used;        /* referenced by the policy */
} sema_model;

typedef struct sema_field {
  const char *name;        /* field name */
  int         ty;          /* sema_ty */
  ast_span    span;        /* declaration (file NULL for standard ones) */
  int         sensitive;   /* declared `sensitive`: logs hash its value */
} sema_field;

typedef struct sema_pool {
  const char *name;        /* pool name */
  ast_node   *def;         /* N_POOL */
  ast_span    span;        /* the declaration */
  int         state;       /* 0 unchecked, 1 checking, 2 done */
} sema_pool;

typedef struct sema_budget {
  const char *name;        /* budget name */
  ast_node   *node;        /* N_BUDGET */
  int         key_field;   /* request field index */
  double      limit;       /* dollars */
  double      window_ms;   /* window */
  int         rolling;     /* 1: a rolling window, else fixed periods */
  int         on_full;     /* LANE_ON_FULL_*: what a key without a slot reads */
} sema_budget;

typedef struct sema_route {
  const char *name;        /* route name */
  ast_node   *node;        /* N_ROUTE */
  int         fallbacks;   /* alternatives after the primary */
  int64_t     output_estimate; /* output tokens counted when a request has no
                                  max_output_tokens; 0: none (input only) */
  ast_list    requires;    /* N_REQUIRE conditions */
  ast_list    rules;       /* N_WHEN and N_OTHERWISE, in order */
  ast_list    shadows;     /* route-level N_SHADOW */
} sema_route;

/* A loaded module: one source file. */
typedef struct sema_module {
  src_file    file;        /* the source */
  ast_list    decls;       /* its declarations */
  int         state;       /* 0 loaded, 1 declaring, 2 declared */
} sema_module;

/* Limits of a compiled program (lang/README.md, "Limits"), each reported
 * with its name when a policy exceeds it; the front end's are in ast.h,
 * models, fields and capabilities in lane.h and bc.h. */
#define SEMA_MAX_RULES     32768     /* rules in one route */
#define SEMA_MAX_ROUTES    1024      /* routes in a policy */
#define SEMA_MAX_CODE      (1u << 20) /* instructions in the program */
#define SEMA_MAX_CONSTANTS (1u << 20) /* strings, int and double constants, each */
#define SEMA_MAX_FILTERS   65535     /* filter regions (CAND names one in 16 bits) */
#define SEMA_MAX_MVARS     16        /* macro variables in scope at once (nested macros) */

/* The compile options are lanec.h's (lanec_opts). */
typedef struct lanec_opts sema_opts;

/* A name index over one of the unit's arrays: open addressing, so that
 * declaring and finding n names is O(n), not O(n^2) (100k pools took 14 s). */
typedef struct sema_ixent { const char *name; int idx; } sema_ixent;
typedef struct sema_index { sema_ixent *slot; uint32_t cap, n; } sema_index;

typedef struct sema_unit {
  ast_ctx      ctx;        /* arena and diagnostics */
  sema_opts    opts;       /* search paths */
  sema_module **mods;      /* loaded modules, root first */
  int          nmods;
  sema_model  *models;     int nmodels, capmodels;
  sema_field  *fields;     int nfields, capfields;
  sema_pool   *pools;      int npools, cappools;
  sema_budget *budgets;    int nbudgets, capbudgets;
  sema_route  *routes;     int nroutes, caproutes;
  ast_list     tests;      /* N_TEST */
  sema_index   ix_models, ix_fields, ix_pools, ix_budgets, ix_routes;   /* by name */
  int          routes_over;/* routes declared past SEMA_MAX_ROUTES (refused) */
  int          unverified; /* emit: the loader refused the emitted bytes for
                              a reason other than a limit (a compiler bug) */
  const char  *caps[BC_MAX_CAPS]; int ncaps; /* capability names */
  struct { const char *name; int ty, is_const; } mvars[SEMA_MAX_MVARS];
  int          nmvars;     /* macro variables in scope while checking */
} sema_unit;

void sema_init(sema_unit *u, const sema_opts *opts);
void sema_free(sema_unit *u);
/* Loads the root file (path) or, if text is not NULL, the given text under
 * that name, with every import. Returns 0 or -1 (diagnostics in u->ctx). */
int  sema_load(sema_unit *u, const char *path, const char *text);
/* Resolves names and checks types and units. Returns the error count. */
int  sema_check(sema_unit *u);
/* Checks expression e (read by parse_expr into u's context) as one that
 * may read request fields; returns its type, TY_ERROR after a diagnostic.
 * Call after sema_check. */
int  sema_check_expr(sema_unit *u, ast_node *e);
int  sema_model_find(const sema_unit *u, const char *name);
int  sema_field_find(const sema_unit *u, const char *name);
int  sema_cap_find(const sema_unit *u, const char *name);
/* Grows a malloc'd array (*pp) of n items of size bytes to hold one more,
 * doubling *cap; 0, or -1 when memory ran out (the array is kept). */
int sema_grow(void *pp, int n, int *cap, size_t size);
/* The candidate closest in spelling to name (within a third of its
 * length), or NULL. */
const char *sema_suggest(const char *name, const char *const *cands, int n);
/* Today's date "YYYY-MM-DD" ($LANE_TODAY if set, else UTC) into buf. */
const char *sema_today(char buf[11]);
/* A warning when the policy names model m after its deprecation date. */
void sema_warn_deprecated(sema_unit *u, ast_span sp, const sema_model *m);
/* Whether module mod ("std/providers/openai"), imported or not, declares
 * model name ("openai.gpt_5"). */
int sema_module_declares(sema_unit *u, const char *mod, const char *name);
/* The declared model closest in spelling to name, or NULL. */
const char *sema_suggest_model(const sema_unit *u, const char *name);

/* ---- constant evaluation (eval.c) ---- */
typedef enum ev_kind { EV_UNKNOWN, EV_ERROR, EV_OK } ev_kind;

typedef struct ev_val {
  ev_kind kind;            /* EV_OK: the members below are valid */
  int     ty;              /* sema_ty */
  union {
    int64_t  i;            /* INT, TOKENS, MODEL (index), BOOL */
    uint64_t u;            /* UINT */
    double   d;            /* DOUBLE, MONEY, PRICE, DURATION, FRACTION */
  } v;
  const char *s; size_t n; /* STRING bytes, or list items or map entries
                              (n of them) */
  const struct ev_val *items; /* TY_LIST: n items; TY_MAP: 2n, each key
                                 before its value */
  const char *err;         /* EV_ERROR: why */
} ev_val;

/* What the evaluator may look at. A NULL member makes names that need it
 * evaluate to EV_UNKNOWN. */
typedef struct ev_env {
  const sema_unit   *u;
  int                model;    /* current model for MPROPs, or -1 */
  const lane_decision *dec;    /* tests, explain: the decision */
  const lane_program  *prog;   /* tests, explain: the program decided on */
  const lane_request  *req;    /* explain: request fields, or NULL */
  const lane_runtime  *rt;     /* explain: live stats and budgets, or NULL */
  int                  decided;/* tests: 1 if dec holds a decision */
  const lane_live_stats *stats;/* explain: each model's live view as the
                                  decision saw it (taken before it: a
                                  decision may claim a probe), or NULL to
                                  read rt now */
  uint64_t             now;    /* with stats: the decision's clock */
  const struct ev_val *vars;   /* macro variables' values by depth (RK_VAR), or NULL */
} ev_env;

ev_val ev_eval(const ev_env *env, const ast_node *n);
/* d in the shortest %g form that reads back as exactly d, into buf. */
const char *ev_num(char *buf, size_t n, double d);
/* Formats a value for messages into buf (numbers as ev_num). */
const char *ev_show(const sema_unit *u, const ev_val *v, char *buf, size_t n);
/* Binary operation plans shared by the checker, evaluator and emitter. */
typedef struct sema_plan {
  int     ty;              /* result type, TY_ERROR if not allowed */
  uint8_t lconv, rconv;    /* conversion opcode for an operand, or 0xFF */
  int     op;              /* machine opcode (bc_op), or -1 (const only) */
} sema_plan;
sema_plan sema_binplan(int op, int lt, int rt);
/* The arms of a split (N_SPLIT) that are emitted, in order: those up to
 * the last of weight above 0, skipping any of weight 0. Returns that last
 * arm's index (-1 if none); emit.c writes them and explain.c counts them
 * (a trace's target places), so both read the rule from here. */
int sema_split_last(const ast_node *split);
/* The source text of node n as explanations quote it: its span on its
 * first line, "(expression)" when the source is not at hand, at most
 * cap - 1 bytes (SEM_SRC_MAX), ending in "..." when the node goes on past
 * its first line or past that; emit.c stores it in the explain tables and
 * explain.c writes it, so both quote alike. line (len bytes) is the
 * source line n starts on, or NULL to find it (ast_source_line, which
 * reads the file from its top: emit.c, quoting every condition, passes
 * lines from an index of its own). */
void sema_node_text(const ast_node *n, const char *line, size_t len, char *buf, size_t cap);

/* ---- emission (emit.c) ---- */
/* Emits the checked unit as .lanec bytes (malloc'd), loaded and verified
 * once as a host would load them. Returns 0, or -1 with diagnostics. */
int emit_program(sema_unit *u, unsigned char **out, size_t *n);
/* As emit_program, keeping that verified program in *prog (the caller
 * frees it with lane_program_free; NULL on failure). */
int emit_program_loaded(sema_unit *u, unsigned char **out, size_t *n, lane_program **prog);

/* ---- policy tests (test blocks) ---- */
typedef struct test_opts {
  int    tap;        /* TAP output (else readable text) */
  int    coverage;   /* report rule and condition-branch coverage */
  double threshold;  /* with coverage: fail below this rule coverage, % */
  int    quiet;      /* print only failures and the summary */
  int    explain;    /* show the decision's explanation under a failure */
  /* Makes a runtime from the runtime snapshot a test names (`state
   * FILE`): its n bytes, read by the test runner from disk or from the
   * sealed set (lanec_opts.files), and its path for messages, which go to
   * err. NULL: such a test fails, saying this host cannot. The lane
   * command and liblane-bundle pass the JSON reader of
   * compiler/bundle/state.h, so liblanec needs no JSON. */
  lane_runtime *(*load_state)(const lane_program *p, const char *path, const char *bytes,
                              size_t n, FILE *err);
} test_opts;

/* Bytes of a snapshot a test may name (`state FILE`); a larger one fails
 * its test, saying so. */
#define SEMA_MAX_SNAPSHOT (64u << 20)

/* Runs every test block against the loaded program. Returns the number of
 * failed tests (a coverage below the threshold counts as one). */
int sema_run_tests_with(sema_unit *u, const lane_program *p, const test_opts *o, FILE *out);
/* As sema_run_tests_with, TAP with explanations. */
int sema_run_tests(sema_unit *u, const lane_program *p, FILE *out);
/* The path of the snapshot test t (N_TEST) names with `state FILE`: FILE
 * relative to the directory of the file t is in, or as written when
 * absolute. 1 with the path in buf, 0 when t names none, -1 when the path
 * needs more than n bytes. The test runner reads it from there; `lane
 * build` puts the file in a bundle under it. */
int sema_test_state_path(const ast_node *t, char *buf, size_t n);
/* path normalised by its text alone: empty and "." parts dropped, each
 * ".." taking away the part before it ("a/./b/../c" is "a/c", "./x" is
 * "x", "../x" stays, "/.." is "/"); no file is looked at. 0 with the
 * result in out, -1 when it needs more than cap bytes. How a sealed set's
 * paths are compared, and how `lane build` names a bundle's files. */
int sema_path_norm(const char *path, char *out, size_t cap);
/* Reads a whole input file of unit u -- a source or a snapshot -- from
 * the sealed set when u's options have one (lanec_opts.files), else from
 * disk (a regular file only). Returns it malloc'd and NUL-ended, with its
 * length in *len, or NULL with errno set (ENOENT: not found, also for a
 * path not in the sealed set). Reading stops past max bytes: a result
 * longer than max means the file is. */
char *sema_read_input(const sema_unit *u, const char *path, size_t max, size_t *len);
/* Adds the test blocks of another file (a NAME_test.lane beside the
 * policy) to the unit; anything but tests there is an error. Call after
 * sema_load, before sema_check. Returns 0 or -1. */
int sema_load_tests(sema_unit *u, const char *path);

#endif /* LANE_SEMA_H */

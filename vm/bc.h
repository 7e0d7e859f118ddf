/*
 * bc.h -- the .lanec bytecode format, the opcode table and the in-memory
 * image shared by the compiler's emitter and the VM's loader.
 *
 * Internal to lane (not installed). The compiler fills a bc_image and calls
 * bc_encode; the loader decodes bytes into a bc_image and verifies it.
 *
 * File layout (all integers little-endian, doubles as IEEE-754 bit patterns
 * in a u64):
 *
 *   offset size
 *   0      8    magic  89 'L' 'N' 'C' 0D 0A 1A 0A
 *   8      2    format version (LANE_FORMAT_VERSION)
 *   10     2    flags (0; reserved)
 *   12     4    number of sections
 *   16     4    file size in bytes
 *   20     4    reserved, 0
 *   24     8    checksum: FNV-1a 64 over the whole file, these 8 bytes
 *               taken as zero
 *   32     12*n section table: { u32 id, u32 offset, u32 size }
 *   ...         section bodies, each an array of fixed-size records
 *
 * A section id appears at most once; a missing section is empty. A section
 * body lies inside the file, after the table, and its size is a whole
 * number of records. Sections may not overlap.
 */
#ifndef LANE_BC_H
#define LANE_BC_H

#include <stddef.h>
#include <stdint.h>

#define BC_MAGIC        "\x89LNC\r\n\x1a\n"
#define BC_HEADER_SIZE  32
#define BC_SECTION_SIZE 12
#define BC_MAX_STACK    64      /* operand stack slots a decision may use */
#define BC_MAX_TRY      16      /* TRY handlers active at once */
#define BC_MAX_ITER     8       /* ITERs nested (a macro over a request's map in another's body) */
#define BC_SCRATCH      16384   /* bytes of strings a decision builds at once (+, lowerAscii,
                                   replace, string(x)): a rule, a filter run or an
                                   iteration run gives its own back; each string built is
                                   at most LANE_MAX_STRING */
/* Entries a request map can hold (lane_set_map refuses more): the runs
 * an ITER makes at most. */
#define BC_MAX_MAP_ENTRIES LANE_MAX_MAP_ENTRIES
#define BC_MAX_CAPS     32      /* capability names per program */
#define BC_NONE         0xFFFFFFFFu /* "no index" in u32 index fields */

/*
 * The sections, listed once. Each row: name (BC_SEC_<name>), id, bytes of
 * one record, the bc_image array that holds its records and their count,
 * the array's element type, and its codec:
 *   REC   records laid out by BC_REC_<name> below: encoded, decoded and
 *         sized from that list alone
 *   OWN   an array of the image with a codec of its own (bc.c, load.c)
 *   BYTES no array: STRDATA, the bytes behind STRIDX
 * What the loader checks of each is in load.c and vm/README.md.
 */
#define BC_SECTIONS(X)                                                       \
  X(STRIDX,     1,   8, str,       nstr,       bc_str,    OWN)               \
  X(STRDATA,    2,   1, _,         _,          _,         BYTES)             \
  X(KINT,       3,   8, kint,      nkint,      int64_t,   REC)               \
  X(KDBL,       4,   8, kdbl,      nkdbl,      double,    REC)               \
  X(CAPS,       5,   4, caps,      ncaps,      uint32_t,  REC)               \
  X(MODELS,     6, BC_MODEL_BYTES, models, nmodels, bc_model, OWN)          \
  X(FIELDS,     7,   8, fields,    nfields,    bc_field,  REC)               \
  X(POOLS,      8,   8, pools,     npools,     bc_pool,   REC)               \
  X(MEMBERS,    9,   4, members,   nmembers,   uint32_t,  REC)               \
  X(FILTERS,   10,   8, filters,   nfilters,   bc_filter, REC)               \
  X(ROUTES,    11,  24, routes,    nroutes,    bc_route,  REC)               \
  X(RULES,     12,  12, rules,     nrules,     bc_rule,   REC)               \
  X(LISTS,     13,  12, lists,     nlists,     bc_list,   REC)               \
  X(LISTELEMS, 14,   4, listelems, nlistelems, uint32_t,  REC)               \
  X(BUDGETS,   15,  32, budgets,   nbudgets,   bc_budget, REC)               \
  X(CODE,      16,   8, code,      ncode,      bc_insn,   REC)               \
  X(LINES,     17,   4, lines,     nlines,     uint32_t,  REC)               \
  X(SWITCHES,  18,  16, switches,  nswitches,  bc_switch, REC)               \
  X(CASES,     19,   8, cases,     ncases,     bc_case,   REC)               \
  X(XNODES,    20,  20, xnodes,    nxnodes,    bc_xnode,  REC)               \
  X(XRULES,    21,   4, xrules,    nxrules,    uint32_t,  REC)               \
  X(XSELS,     22,  16, xsels,     nxsels,     bc_xsel,   REC)               \
  X(XLIST,     23,   4, xlist,     nxlist,     uint32_t,  REC)               \
  X(ROUTEOUT,  24,   8, route_out, nroute_out, int64_t,   REC)

/*
 * Record layouts of the REC sections: F(width, member, offset) per field,
 * width 8, 16, 32 or 64 (unsigned little-endian) or D (an IEEE double as
 * its u64 bits); member is appended to the element (empty for an array
 * of scalars). Static asserts in bc.c check that they fill the record.
 */
#define BC_REC_KINT(F)      F(64, , 0)      /* i64 constants (also u64 bit patterns) */
#define BC_REC_KDBL(F)      F(D, , 0)       /* f64 constants */
#define BC_REC_CAPS(F)      F(32, , 0)      /* string index: capability name of bit i */
#define BC_REC_FIELDS(F)    F(32, .name, 0) F(8, .type, 4) F(8, .unit, 5) F(16, .flags, 6)
#define BC_REC_POOLS(F)     F(32, .first, 0) F(32, .count, 4)   /* into MEMBERS */
#define BC_REC_MEMBERS(F)   F(32, , 0)      /* model index | BC_MEMBER_CHECK */
#define BC_REC_FILTERS(F)   F(32, .start, 0) F(32, .end, 4)     /* code region */
#define BC_REC_ROUTES(F)    F(32, .name, 0) F(32, .start, 4) F(32, .end, 8) \
                            F(32, .fallbacks, 12) F(32, .first_rule, 16) F(32, .nrules, 20)
#define BC_REC_RULES(F)     F(32, .name, 0) F(32, .line, 4) F(32, .next, 8)
#define BC_REC_LISTS(F)     F(32, .type, 0) F(32, .first, 4) F(32, .count, 8)  /* into LISTELEMS */
#define BC_REC_LISTELEMS(F) F(32, , 0)      /* index into KINT, KDBL or STRIDX per type */
#define BC_REC_BUDGETS(F)   F(32, .name, 0) F(32, .key_field, 4) F(D, .limit, 8) \
                            F(D, .window_ms, 16) F(32, .flags, 24) F(32, .reserved, 28)
#define BC_REC_CODE(F)      F(8, .op, 0) F(8, .a, 1) F(16, .b, 2) F(32, .c, 4)
#define BC_REC_LINES(F)     F(32, , 0)      /* source line per instruction (0 = none);
                                               as many as CODE, or none */
#define BC_REC_SWITCHES(F)  F(32, .field, 0) F(32, .first, 4) F(32, .count, 8) \
                            F(32, .otherwise, 12)  /* into CASES; no two share a case */
#define BC_REC_CASES(F)     F(32, .str, 0) F(32, .target, 4)  /* strictly ascending by
                                                              the strings' bytes */
/* What explanations read (bc_xnode below); a program without them
 * decides the same and explains from its trace alone. */
#define BC_REC_XNODES(F)    F(8, .kind, 0) F(8, .unit, 1) F(16, .reserved, 2) \
                            F(32, .text, 4) F(32, .region, 8) F(32, .a, 12) F(32, .b, 16)
#define BC_REC_XRULES(F)    F(32, , 0)      /* per rule: its condition's node, BC_NONE for
                                               otherwise; as many as RULES, or none */
#define BC_REC_XSELS(F)     F(32, .rule, 0) F(32, .place, 4) F(32, .first, 8) \
                            F(32, .count, 12)  /* into XLIST */
#define BC_REC_XLIST(F)     F(32, , 0)      /* node index */
/* Per route: the output tokens its costs count for a request without
 * max_output_tokens (`output_estimate`), 0 for none; as many as ROUTES,
 * or none (a program of no such route: an older file reads the same). */
#define BC_REC_ROUTEOUT(F)  F(64, , 0)
#define BC_MAX_OUTPUT_ESTIMATE 100000000   /* tokens */
/* STRIDX: { u32 off, u32 len } into STRDATA, where data[off+len] must be
 * NUL, strings in order, none overlapping the one before it. MODELS: one
 * bc_model, laid out by BC_MPROPS below. */

/* BC_SEC_ARRAY(codec)(...) keeps its arguments for sections with an array
 * in bc_image; BC_SEC_IS_REC(codec)(...) for REC sections. */
#define BC_SEC_ARRAY(codec)        BC_SEC_ARRAY_##codec
#define BC_SEC_ARRAY_REC(...)      __VA_ARGS__
#define BC_SEC_ARRAY_OWN(...)      __VA_ARGS__
#define BC_SEC_ARRAY_BYTES(...)
#define BC_SEC_IS_REC(codec)       BC_SEC_IS_REC_##codec
#define BC_SEC_IS_REC_REC(...)     __VA_ARGS__
#define BC_SEC_IS_REC_OWN(...)
#define BC_SEC_IS_REC_BYTES(...)

enum bc_section_id {
#define BC_SEC_ENUM(name, id, rec, field, nfield, type, codec) BC_SEC_##name = id,
  BC_SECTIONS(BC_SEC_ENUM)
#undef BC_SEC_ENUM
  BC_SEC_MAX = 1     /* one past the largest id: ids are 1, 2, ... (bc.c checks) */
#define BC_SEC_COUNT(name, id, rec, field, nfield, type, codec) + 1
  BC_SECTIONS(BC_SEC_COUNT)
#undef BC_SEC_COUNT
};


/*
 * Model properties, one row each: everything the compiler, the loader, the
 * VM and the tools know about one is generated from this table. Rows in
 * the record come first, in the record's order.
 *
 *   id      BC_MP_<id> (the row), and BC_MF_<id> for rows M_FIELD reads
 *   name    as the language spells it; "" when no policy names it
 *   member  its member in bc_model and in the compiler's sema_model
 *   unit    language type: a bc_unit (PRICE, TOKENS, ...), TAGS (a list of
 *           strings) or NONE
 *   mt      machine type in the record and on the stack: D double, I
 *           int64, S string index, U uint32, B bool, N none
 *   off     byte offset in the MODELS record (-1: not in the file); the
 *           stored rows tile the record (tests/unit/t_bc.c checks it) and
 *           are aligned, so bc_model has no padding
 *   kind    STATIC declared, in the record, known at compile time;
 *           PRIOR  declared, in the record as a prior, live in the VM;
 *           LIVE   per decision only (request or live state);
 *           COMPILE declared, known at compile time only, not in the file;
 *           RECORD in the record, not a property an expression reads
 *   op      the opcode filter code reads it with, or NONE
 *   mfa     for op M_FIELD: its operand a, 0 .. BC_NMFIELDS - 1 (fixed by
 *           the file format: a new one takes the next number); else -1
 *   group   a model block's line group (lang/fmt.c, catalog import), also
 *           the order a list of properties is given in; 0 = not declared
 *   doc     one line
 */
#define BC_MPROPS(X) \
  X(LANE_NAME,         "",                  name,              STRING,   S,   0, RECORD,  M_FIELD,    8, 0, \
    "lane name, \"anthropic.claude_haiku_4_5\"")                                                            \
  X(PROVIDER,          "provider",          provider,          STRING,   S,   4, STATIC,  M_FIELD,    6, 1, \
    "provider, \"anthropic\"")                                                                              \
  X(NAME,              "name",              id,                STRING,   S,   8, STATIC,  M_FIELD,    7, 1, \
    "the provider's model id")                                                                              \
  X(REGION,            "region",            region,            STRING,   S,  12, STATIC,  M_FIELD,    9, 1, \
    "region or \"\"")                                                                                       \
  X(INPUT,             "input",             input,             PRICE,    D,  16, STATIC,  M_FIELD,    0, 2, \
    "$ per input token")                                                                                    \
  X(OUTPUT,            "output",            output,            PRICE,    D,  24, STATIC,  M_FIELD,    1, 2, \
    "$ per output token")                                                                                   \
  X(CACHED_INPUT,      "cached_input",      cached_input,      PRICE,    D,  32, STATIC,  M_FIELD,    2, 2, \
    "$ per cached input token")                                                                             \
  X(CONTEXT,           "context",           context,           TOKENS,   I,  40, STATIC,  M_FIELD,    3, 3, \
    "context window, tokens; 0 = unknown")                                                                  \
  X(MAX_OUTPUT,        "max_output",        max_output,        TOKENS,   I,  48, STATIC,  M_FIELD,    4, 3, \
    "max output tokens; 0 = unknown")                                                                       \
  X(QUALITY,           "quality",           quality,           DOUBLE,   D,  56, STATIC,  M_FIELD,    5, 6, \
    "the user's score, 0..1")                                                                               \
  X(P50,               "p50",               p50,               DURATION, D,  64, PRIOR,   M_P50,     -1, 7, \
    "median latency, ms: live, else this prior; 0 = unknown")                                               \
  X(P95,               "p95",               p95,               DURATION, D,  72, PRIOR,   M_P95,     -1, 7, \
    "p95 latency, ms: live, else this prior; 0 = unknown")                                                  \
  X(CAPS,              "caps",              caps,              NONE,     U,  80, RECORD,  NONE,      -1, 5, \
    "capability bits, bit i named by CAPS[i]")                                                              \
  X(LINE,              "",                  line,              NONE,     U,  84, RECORD,  NONE,      -1, 0, \
    "source line of the declaration")                                                                       \
  X(CACHE_WRITE,       "cache_write",       cache_write,       PRICE,    D,  88, STATIC,  M_FIELD,   10, 2, \
    "$ per token written to the prompt cache")                                                              \
  X(REASONING_OUTPUT,  "reasoning_output",  reasoning_output,  PRICE,    D,  96, STATIC,  M_FIELD,   11, 2, \
    "$ per output token when reasoning is asked; 0 = output")                                               \
  X(LONG_ABOVE,        "long_above",        long_above,        TOKENS,   I, 104, STATIC,  M_FIELD,   12, 4, \
    "long-context tier above this many input tokens; 0 = none")                                             \
  X(LONG_INPUT,        "long_input",        long_input,        PRICE,    D, 112, STATIC,  M_FIELD,   13, 4, \
    "$ per input token in the tier; 0 = input")                                                             \
  X(LONG_OUTPUT,       "long_output",       long_output,       PRICE,    D, 120, STATIC,  M_FIELD,   14, 4, \
    "$ per output token in the tier; 0 = output")                                                           \
  X(LONG_CACHED_INPUT, "long_cached_input", long_cached_input, PRICE,    D, 128, STATIC,  M_FIELD,   15, 4, \
    "$ per cached token in the tier; 0 = cached_input")                                                     \
  X(DEPRECATED,        "deprecated",        deprecated,        STRING,   S, 136, STATIC,  M_FIELD,   16, 8, \
    "deprecation date \"YYYY-MM-DD\" or \"\"")                                                              \
  X(RESERVED,          "",                  reserved,          NONE,     U, 140, RECORD,  NONE,      -1, 0, \
    "0")                                                                                                    \
  X(TAGS,              "tags",              tags,              TAGS,     N,  -1, COMPILE, NONE,      -1, 9, \
    "tag strings, for static filters")                                                                      \
  X(COST,              "cost",              cost,              MONEY,    D,  -1, LIVE,    M_COST,    -1, 0, \
    "the request's expected cost on the model")                                                             \
  X(FITS,              "fits",              fits,              BOOL,     B,  -1, LIVE,    M_FITS,    -1, 0, \
    "whether the request fits the context and max output")                                                  \
  X(HEALTHY,           "healthy",           healthy,           BOOL,     B,  -1, LIVE,    M_HEALTHY, -1, 0, \
    "whether the breaker lets the model be chosen")                                                         \
  X(ERROR_RATE,        "error_rate",        error_rate,        FRACTION, D,  -1, LIVE,    M_ERRRATE, -1, 0, \
    "failures / calls in the window; 0 without data")

#define BC_MP_GROUPS 16   /* line groups are 0 (none) .. BC_MP_GROUPS - 1 */

/* BC_MP_IN_RECORD(kind)(...) keeps its arguments for rows in the record. */
#define BC_MP_IN_RECORD(kind)    BC_MP_IN_RECORD_##kind
#define BC_MP_IN_RECORD_STATIC(...)  __VA_ARGS__
#define BC_MP_IN_RECORD_PRIOR(...)   __VA_ARGS__
#define BC_MP_IN_RECORD_RECORD(...)  __VA_ARGS__
#define BC_MP_IN_RECORD_LIVE(...)
#define BC_MP_IN_RECORD_COMPILE(...)
/* C types of the machine types in bc_model. */
#define BC_MP_CTYPE_D double
#define BC_MP_CTYPE_I int64_t
#define BC_MP_CTYPE_S uint32_t
#define BC_MP_CTYPE_U uint32_t

enum bc_mprop {
#define BC_MP_ENUM(id, name, member, unit, mt, off, kind, op, mfa, group, doc) BC_MP_##id,
  BC_MPROPS(BC_MP_ENUM)
#undef BC_MP_ENUM
  BC_NMPROPS
};

typedef enum bc_mpkind {
  BC_MPK_STATIC,  /* BC_MPROPS kinds, see there */
  BC_MPK_PRIOR,
  BC_MPK_LIVE,
  BC_MPK_COMPILE,
  BC_MPK_RECORD
} bc_mpkind;

/* Bytes of the model record: its rows' (BC_MPROPS decides it; 144 in
 * format 3). */
#define BC_MODEL_BYTES (0 BC_MPROPS(BC_MP_BYTES))
#define BC_MP_BYTES(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_IN_RECORD(kind)(+ sizeof(BC_MP_CTYPE_##mt))

/* Bytes of one record of each section: BC_RECORD_MODELS ... */
enum {
#define BC_SEC_REC(name, id, rec, field, nfield, type, codec) BC_RECORD_##name = rec,
  BC_SECTIONS(BC_SEC_REC)
#undef BC_SEC_REC
};

/* The model record, one member per stored row, each described by its doc. */
typedef struct bc_model {
#define BC_MP_MEMBER(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_IN_RECORD(kind)(BC_MP_CTYPE_##mt member;)
  BC_MPROPS(BC_MP_MEMBER)
#undef BC_MP_MEMBER
} bc_model;

/* Units of request fields; the machine type follows from the unit. */
typedef enum bc_unit {
  BC_U_INT = 1,   /* int64 */
  BC_U_UINT,      /* uint64 */
  BC_U_DOUBLE,    /* double */
  BC_U_BOOL,      /* bool */
  BC_U_STRING,    /* string */
  BC_U_TOKENS,    /* int64 token count */
  BC_U_MONEY,     /* double dollars */
  BC_U_DURATION,  /* double milliseconds */
  BC_U_FRACTION,  /* double 0..1 */
  BC_U_PRICE,     /* double dollars per token */
  BC_U_TIMESTAMP  /* int64 milliseconds since the Unix epoch (shown in RFC 3339) */
} bc_unit;

typedef struct bc_field {
  uint32_t name;          /* string: field name */
  uint8_t  type;          /* lane_type (LANE_T_*) */
  uint8_t  unit;          /* bc_unit; must agree with type */
  uint16_t flags;         /* BC_FIELD_*; other bits 0 */
} bc_field;

/* bc_field.flags: declared `sensitive` (a string field): decision logs
 * write a keyed hash of its value, never the value (vm/log.c). */
#define BC_FIELD_SENSITIVE 1u

/* The first BC_NSTD fields of every program are the standard request
 * fields, in this order, with these units; the loader checks it. */
#define BC_STD_FIELDS(X)                 \
  X(TASK,              "task",              BC_U_STRING)   \
  X(TIER,              "tier",              BC_U_STRING)   \
  X(TENANT,            "tenant",            BC_U_STRING)   \
  X(USER,              "user",              BC_U_STRING)   \
  X(INPUT_TOKENS,      "input_tokens",      BC_U_TOKENS)   \
  X(MAX_OUTPUT_TOKENS, "max_output_tokens", BC_U_TOKENS)   \
  X(IMAGES,            "images",            BC_U_INT)      \
  X(TOOLS,             "tools",             BC_U_BOOL)     \
  X(JSON,              "json",              BC_U_BOOL)     \
  X(STREAM,            "stream",            BC_U_BOOL)     \
  X(LATENCY_BUDGET,    "latency_budget",    BC_U_DURATION) \
  X(REGION,            "region",            BC_U_STRING)   \
  X(CACHED_TOKENS,     "cached_tokens",     BC_U_TOKENS)   \
  X(REASONING,         "reasoning",         BC_U_BOOL)     \
  X(MODEL,             "model",             BC_U_STRING)

enum bc_std_field {
#define BC_STD_ENUM(id, name, unit) BC_F_##id,
  BC_STD_FIELDS(BC_STD_ENUM)
#undef BC_STD_ENUM
  BC_NSTD
};

/* A pool member: a model index, with BC_MEMBER_CHECK set when the member
 * must pass the CAND's dynamic filter; members without it passed every
 * static test at compile time and need none. Members are in declaration
 * order, which breaks ties. */
#define BC_MEMBER_CHECK 0x80000000u
#define BC_MEMBER_MODEL 0x7FFFFFFFu

typedef struct bc_pool   { uint32_t first, count; } bc_pool;     /* MEMBERS range */
typedef struct bc_filter { uint32_t start, end; } bc_filter;     /* code [start,end) */

typedef struct bc_route {
  uint32_t name;          /* string: route name */
  uint32_t start;         /* first instruction */
  uint32_t end;           /* one past the last instruction */
  uint32_t fallbacks;     /* alternatives after the primary, < LANE_MAX_CANDIDATES */
  uint32_t first_rule;    /* index of its first rule in RULES */
  uint32_t nrules;        /* rules of this route, otherwise included */
} bc_route;

/* A rule's code starts with RULE i. If a condition raises an error the VM
 * resumes at `next`, which must be the next rule's RULE or the route's
 * final NOMATCH, where the operand stack is empty. */
typedef struct bc_rule {
  uint32_t name;          /* string: condition as written, or "otherwise" */
  uint32_t line;          /* source line */
  uint32_t next;          /* instruction to resume at after an error */
} bc_rule;

/* Constant lists, for `x in [..]`. type is LANE_T_INT (KINT indexes),
 * LANE_T_UINT (KINT), LANE_T_DOUBLE (KDBL) or LANE_T_STRING (STRIDX). */
typedef struct bc_list { uint32_t type, first, count; } bc_list;

#define BC_BUDGET_ROLLING 1u  /* flags: a rolling window, else fixed periods */
#define BC_BUDGET_FULL_CLOSED 2u  /* on_full closed: a key without a slot reads at its limit */
#define BC_BUDGET_FULL_OPEN   4u  /* on_full open: a key without a slot reads $0 spent;
                                     neither: the shared overflow account */

/* A rule index: SWITCH c jumps to the target of the case whose string
 * equals request field `field`, else to `otherwise`. */
typedef struct bc_switch { uint32_t field, first, count, otherwise; } bc_switch;
typedef struct bc_case   { uint32_t str, target; } bc_case;

/*
 * Explanations. A condition is kept as a tree of nodes, children before
 * parents, so that a .lanec says which part of a condition failed and
 * with what values, as the policy's source would. A node's value comes
 * from an explain region (a FILTERS region that ends in XRET, which only
 * explanations run) or from its children:
 *
 *   AND, OR  a && b, a || b: CEL's logic over the values of a and b
 *   NOT      !a
 *   LEAF     any other boolean condition: region computes it; a and b are
 *            the VALUE nodes of a comparison's operands shown beside it
 *            (BC_NONE for a literal or none)
 *   VALUE    region computes a value of unit `unit` (for display)
 *   PASS     a condition decided at compile time for every member that
 *            reaches it (one on `tags`): true, never evaluated
 *
 * text is the node's source text. XRULES gives each rule's condition;
 * XSELS, for CAND number `place` (LANE_EV_SELECT's) of rule `rule` (an
 * index into RULES), the conditions a member must pass in order: the
 * route's requires, then its pool's, outermost named pool first.
 */
typedef enum bc_xkind {
  BC_X_AND = 1,
  BC_X_OR,
  BC_X_NOT,
  BC_X_LEAF,
  BC_X_VALUE,
  BC_X_PASS,
  BC_X_NKINDS
} bc_xkind;

typedef struct bc_xnode {
  uint8_t  kind;          /* bc_xkind */
  uint8_t  unit;          /* VALUE: bc_unit of the value; else 0 */
  uint16_t reserved;      /* 0 */
  uint32_t text;          /* string: the source text */
  uint32_t region;        /* LEAF, VALUE: filter index of its XRET region; else BC_NONE */
  uint32_t a, b;          /* children (AND, OR, NOT) or operands (LEAF); else BC_NONE */
} bc_xnode;

typedef struct bc_xsel { uint32_t rule, place, first, count; } bc_xsel;

typedef struct bc_budget {
  uint32_t name;          /* string: budget name */
  uint32_t key_field;     /* request field keying the spend */
  double   limit;         /* dollars */
  double   window_ms;     /* window length */
  uint32_t flags;         /* BC_BUDGET_* */
  uint32_t reserved;      /* 0 */
} bc_budget;

typedef struct bc_insn {
  uint8_t  op;            /* bc_op */
  uint8_t  a;             /* small operand, per format */
  uint16_t b;             /* medium operand, per format */
  uint32_t c;             /* index, constant or jump target */
} bc_insn;


/* Operand formats: which of a, b and c an instruction uses (unused ones
 * must be 0) and what they mean. */
#define BC_FORMATS(X)                                                          \
  X(NONE,   NONE, "no operands")                                               \
  X(JUMP,   C,    "c: target instruction, after this one, in the region")      \
  X(KINT,   C,    "c: KINT index")                                             \
  X(KDBL,   C,    "c: KDBL index")                                             \
  X(STR,    C,    "c: string index")                                           \
  X(BOOL,   A,    "a: 0 or 1")                                                 \
  X(FIELD,  C,    "c: request field index; pushes the field's type")          \
  X(MFIELD, A,    "a: model property, BC_MF_* < BC_NMFIELDS; pushes its type")         \
  X(CAP,    C,    "c: capability bit < number of CAPS")                        \
  X(LIST,   C,    "c: list index; pops a value of the list's type")            \
  X(BUDGET, AC,   "a: 0 spent, 1 remaining, 2 used; c: budget index")          \
  X(CAND,   ABC,  "a: bc_order | BC_CAND_* checks; b: filter index + 1 "       \
                  "(0 = none); c: pool")                                        \
  X(MODEL,  C,    "c: model index (no opcode has it now; SHADOW's c is "       \
                  "checked the same way)")                                      \
  X(SHADOW, BC,   "c: model index; b: sampled percent 1..100, 0 = always")     \
  X(SWITCH, C,    "c: switch index; its targets are after the instruction, "   \
                  "in the region")                                              \
  X(RULE,   C,    "c: rule index within the route's rules")                 \
  X(TYPE,   A,    "a: a lane_type, 1 int, 2 uint, 3 double, 4 bool, 5 string")   \
  X(ITER,   ABC,  "a: 0 all, 1 exists, 2 exists_one; b: iteration region + 1 "  \
                  "(a filter ending in IRET); c: map field")                   \
  X(MVAR,   ABC,  "a: the ITER depth, 0 outermost; b: 0 key, 1 value; c: the " \
                  "map field (the value's type)")                                                \
  X(REGEX,  BC,   "b: the pattern's slot (one per pattern); c: string of the "  \
                  "pattern")                                                    \
  X(TSPART, AC,   "a: the part (sem.h SEM_TS_*: 0 year ... 9 milliseconds); c: "\
                  "string of a POSIX TZ rule, or BC_NONE for UTC")

/* The operands a format uses, as bits: 1 a, 2 b, 4 c. */
#define BC_USES_NONE 0
#define BC_USES_A    1
#define BC_USES_C    4
#define BC_USES_AC   5
#define BC_USES_BC   6
#define BC_USES_ABC  7

typedef enum bc_fmt {
#define BC_FMT_ENUM(name, uses, doc) BC_FMT_##name,
  BC_FORMATS(BC_FMT_ENUM)
#undef BC_FMT_ENUM
} bc_fmt;

enum {
  BC_NFMTS = 0    /* number of formats */
#define BC_FMT_COUNT(name, uses, doc) + 1
  BC_FORMATS(BC_FMT_COUNT)
#undef BC_FMT_COUNT
};

typedef struct bc_fmtinfo {
  const char *name;       /* "JUMP" */
  uint8_t     uses;       /* BC_USES_*: bit 0 a, bit 1 b, bit 2 c */
  const char *doc;        /* what the operands mean */
} bc_fmtinfo;

extern const bc_fmtinfo bc_fmts[BC_NFMTS];

/* What control does after an instruction (BC_OPCODES' flow column). */
typedef enum bc_flow {
  BC_FLOW_NEXT,   /* falls through to the next instruction (and a JUMP
                     format's c is a second successor, the stack as after
                     the instruction) */
  BC_FLOW_STOP,   /* never falls through: jumps, or ends its region */
  BC_FLOW_KEEP    /* falls through, or jumps to c keeping its input on the
                     stack (the && and || short circuits) */
} bc_flow;

/* Checks CAND makes natively on every member, before its filter: the
 * common `require fits && healthy` without interpreting a filter. */
#define BC_CAND_FITS    4u
#define BC_CAND_HEALTHY 8u
#define BC_CAND_ORDER   3u   /* the bits of a that hold the bc_order */

/* Candidate orders for CAND (operand a). */
typedef enum bc_order {
  BC_ORD_LISTED = 0,  /* members in their listed order */
  BC_ORD_CHEAPEST,    /* expected cost ascending */
  BC_ORD_FASTEST,     /* p95 (live, else prior) ascending */
  BC_ORD_BEST,        /* quality descending, then cost ascending */
  BC_NORDERS
} bc_order;

/* Regions: route code runs the route ops; filter code runs the model ops
 * and ends in FRET (a CAND's filter) or XRET (an explain region). Where: R route only, F filter only, A anywhere. */

/*
 * The opcode table. Each row:
 *   name    BC_OP_<name>
 *   fmt     operand format (BC_FORMATS)
 *   in      stack input types, bottom first; out: stack output types.
 *           I int64, U uint64, D double, B bool, S string, '*' decided by
 *           the operand (field, model property or list type)
 *   w       cost weight: steps counted for the worst case (CAND is weighted
 *           further per member, and work that grows with a length by
 *           bc_len_steps below)
 *   fail    1 if it can raise a runtime error (overflow, division by zero,
 *           range)
 *   reg     region: R route code only, F filter code only, A anywhere
 *   flow    NEXT, STOP or KEEP (bc_flow)
 *   empty   1 if it needs an empty operand stack and no TRY open
 *   doc     meaning
 */
#define BC_OPCODES(X) \
  X(PUSH_I,    KINT,   "",   "I", 1, 0, A, NEXT, 0,                            \
    "push KINT[c]")                                                            \
  X(PUSH_U,    KINT,   "",   "U", 1, 0, A, NEXT, 0,                            \
    "push KINT[c] as the uint64 with its bits")                                \
  X(PUSH_D,    KDBL,   "",   "D", 1, 0, A, NEXT, 0,                            \
    "push KDBL[c]")                                                            \
  X(PUSH_B,    BOOL,   "",   "B", 1, 0, A, NEXT, 0,                            \
    "push a (0 or 1)")                                                         \
  X(PUSH_S,    STR,    "",   "S", 1, 0, A, NEXT, 0,                            \
    "push string c (bytes and length from the string table)")                  \
  X(LOAD,      FIELD,  "",   "*", 1, 0, A, NEXT, 0,                            \
    "push request field c; an unset field is 0, false or \"\"")                \
  X(NOT,       NONE,   "B",  "B", 1, 0, A, NEXT, 0,                            \
    "pop b, push !b")                                                          \
  X(JMP,       JUMP,   "",   "",  1, 0, A, STOP, 0,                            \
    "continue at c (always forward)")                                          \
  X(JF,        JUMP,   "B",  "",  1, 0, A, NEXT, 0,                            \
    "pop b; if it is false continue at c")                                     \
  X(JF_KEEP,   JUMP,   "B",  "",  1, 0, A, KEEP, 0,                            \
    "if the top is false continue at c with it kept (the && short "            \
    "circuit), else pop it and fall through")                                  \
  X(JT_KEEP,   JUMP,   "B",  "",  1, 0, A, KEEP, 0,                            \
    "if the top is true continue at c with it kept (the || short "             \
    "circuit), else pop it and fall through")                                  \
  X(ADD_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a + b; overflow is an error")                              \
  X(SUB_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a - b; overflow is an error")                              \
  X(MUL_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a * b; overflow is an error")                              \
  X(DIV_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a / b truncated toward zero; b == 0 and INT64_MIN /"       \
    " -1 are errors")                                                          \
  X(MOD_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a % b, with the sign of a; b == 0 and INT64_MIN % "        \
    "-1 are errors, as in CEL")                                                \
  X(NEG_I,     NONE,   "I",  "I", 1, 1, A, NEXT, 0,                            \
    "pop a, push -a; -INT64_MIN is an error")                                  \
  X(ADD_U,     NONE,   "UU", "U", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a + b; wrap-around is an error")                           \
  X(SUB_U,     NONE,   "UU", "U", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a - b; a result below zero is an error")                   \
  X(MUL_U,     NONE,   "UU", "U", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a * b; wrap-around is an error")                           \
  X(DIV_U,     NONE,   "UU", "U", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a / b; b == 0 is an error")                                \
  X(MOD_U,     NONE,   "UU", "U", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a % b; b == 0 is an error")                                \
  X(ADD_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a + b (IEEE, never an error; built with -ffp-"             \
    "contract=off so results are the same everywhere)")                        \
  X(SUB_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a - b (IEEE, never an error)")                             \
  X(MUL_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a * b (IEEE, never an error)")                             \
  X(DIV_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a / b (IEEE, never an error: x/0 is inf or nan)")          \
  X(NEG_D,     NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop a, push -a: flips the sign, also of 0 and nan")                       \
  X(I2D,       NONE,   "I",  "D", 1, 0, A, NEXT, 0,                            \
    "int to the nearest double")                                               \
  X(U2D,       NONE,   "U",  "D", 1, 0, A, NEXT, 0,                            \
    "uint to the nearest double")                                              \
  X(D2I,       NONE,   "D",  "I", 1, 1, A, NEXT, 0,                            \
    "double to int, truncating toward zero; nan, inf and values outside"       \
    " (-2^63, 2^63) are an error, as in CEL (which excludes -2^63 "            \
    "itself)")                                                                 \
  X(D2U,       NONE,   "D",  "U", 1, 1, A, NEXT, 0,                            \
    "double to uint, truncating toward zero; nan, inf, values <= -1 and"       \
    " >= 2^64 are an error")                                                   \
  X(I2U,       NONE,   "I",  "U", 1, 1, A, NEXT, 0,                            \
    "int to uint; a negative int is an error")                                 \
  X(U2I,       NONE,   "U",  "I", 1, 1, A, NEXT, 0,                            \
    "uint to int; a value above INT64_MAX is an error")                        \
  X(EQ_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a == b")                                                   \
  X(NE_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a != b")                                                   \
  X(LT_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a < b (signed)")                                           \
  X(LE_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a <= b (signed)")                                          \
  X(GT_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a > b (signed)")                                           \
  X(GE_I,      NONE,   "II", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a >= b (signed)")                                          \
  X(EQ_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a == b")                                                   \
  X(NE_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a != b")                                                   \
  X(LT_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a < b (unsigned)")                                         \
  X(LE_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a <= b (unsigned)")                                        \
  X(GT_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a > b (unsigned)")                                         \
  X(GE_U,      NONE,   "UU", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a >= b (unsigned)")                                        \
  X(EQ_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a == b (IEEE: nan equals nothing, not even nan)")          \
  X(NE_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a != b (true when either is nan)")                         \
  X(LT_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a < b (false when either is nan)")                         \
  X(LE_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a <= b (false when either is nan)")                        \
  X(GT_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a > b (false when either is nan)")                         \
  X(GE_D,      NONE,   "DD", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a >= b (false when either is nan)")                        \
  X(EQ_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push whether a and b have the same bytes")                      \
  X(NE_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push whether a and b differ in a byte or in length")            \
  X(LT_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a < b bytewise, which for UTF-8 is code point "            \
    "order; a proper prefix sorts first")                                      \
  X(LE_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a <= b bytewise")                                          \
  X(GT_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a > b bytewise")                                           \
  X(GE_S,      NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a >= b bytewise")                                          \
  X(EQ_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a == b (both 0 or 1)")                                     \
  X(NE_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a != b (both 0 or 1)")                                     \
  X(IN_LIST,   LIST,   "*",  "B", 1, 0, A, NEXT, 0,                            \
    "pop x; push whether x is in list c (a linear scan; doubles compare"       \
    " with ==, so nan is in no list)")                                         \
  X(S_SIZE,    NONE,   "S",  "I", 1, 0, A, NEXT, 0,                            \
    "pop s; push its length in code points: the bytes that are not "           \
    "UTF-8 continuation bytes (invalid UTF-8 is counted, not rejected)")       \
  X(S_STARTS,  NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop t, s; push s.startsWith(t); the empty t starts every s")              \
  X(S_ENDS,    NONE,   "SS", "B", 1, 0, A, NEXT, 0,                            \
    "pop t, s; push s.endsWith(t); the empty t ends every s")                  \
  X(S_CONTAINS, NONE,   "SS", "B", 1, 0, A, NEXT, 0,                           \
    "pop t, s; push s.contains(t), in linear time (two-way search); the"       \
    " empty t is in every s")                                                  \
  X(BUCKET_S,  NONE,   "S",  "D", 1, 0, A, NEXT, 0,                            \
    "pop s; push splitmix64(fnv1a64(s)) % 100 / 100")                          \
  X(BUCKET_I,  NONE,   "I",  "D", 1, 0, A, NEXT, 0,                            \
    "pop i; push splitmix64(the uint64 bits of i) % 100 / 100")                \
  X(BUDGET,    BUDGET, "",   "D", 1, 0, A, NEXT, 0,                            \
    "push budget c's spent (a = 0, dollars), remaining (a = 1, dollars)"       \
    " or used (a = 2, the fraction of the limit) for the request's key,"       \
    " which it hashes; live, from the runtime")                                \
  X(M_FIELD,   MFIELD, "",   "*", 1, 0, F, NEXT, 0,                            \
    "push static property a (a row of BC_MPROPS) of the current model")        \
  X(M_CAP,     CAP,    "",   "B", 1, 0, F, NEXT, 0,                            \
    "push whether the current model has capability bit c")                     \
  X(M_COST,    NONE,   "",   "D", 1, 0, F, NEXT, 0,                            \
    "push the request's expected cost on the current model: the cost "         \
    "formula above cost_on in vm.c (lang/README.md), with cached "             \
    "tokens, the long-context tier and reasoning prices")                      \
  X(M_FITS,    NONE,   "",   "B", 1, 0, F, NEXT, 0,                            \
    "push (context == 0 || in + out <= context) && (max_output == 0 || "       \
    "out <= max_output) for the current model; a sum that overflows "          \
    "fits no known context")                                                   \
  X(M_HEALTHY, NONE,   "",   "B", 1, 0, F, NEXT, 0,                            \
    "push whether the current model's breaker lets it be chosen now: "         \
    "closed, or past its cooldown, when it is pending and takes this "         \
    "decision's probe only if a selection picks it")                           \
  X(M_P50,     NONE,   "",   "D", 1, 0, F, NEXT, 0,                            \
    "push the live median latency of the current model over the window,"       \
    " or its declared prior while it has fewer than min_samples calls")        \
  X(M_P95,     NONE,   "",   "D", 1, 0, F, NEXT, 0,                            \
    "push the live p95 latency of the current model over the window, or"       \
    " its declared prior while it has fewer than min_samples calls")           \
  X(M_ERRRATE, NONE,   "",   "D", 1, 0, F, NEXT, 0,                            \
    "push failures / calls of the current model in the window; 0 "             \
    "without data")                                                            \
  X(FRET,      NONE,   "B",  "",  1, 0, F, STOP, 0,                            \
    "pop b: the filter's answer; ends a filter region")                        \
  X(RULE,      RULE,   "",   "",  1, 0, R, NEXT, 1,                            \
    "rule c of the route starts: it becomes the current rule (an error "       \
    "resumes at its next) and the candidates and shadows are cleared")         \
  X(SWITCH,    SWITCH, "",   "",  1, 0, R, STOP, 1,                            \
    "the rule index: a binary search for request field f's string among"       \
    " switch c's sorted cases; continue at the match's target (the next"       \
    " rule that tests that value), else at otherwise (past the run of "        \
    "indexed rules); an unset field is \"\"")                                  \
  X(CAND,      CAND,   "",   "",  1, 0, R, NEXT, 1,                            \
    "fill up to fallbacks + 1 candidates from pool c, best first by "          \
    "order a & 3; members already chosen are skipped; with BC_CAND_FITS"       \
    " or BC_CAND_HEALTHY in a every member must fit the request or be "        \
    "healthy (checked natively); a member marked BC_MEMBER_CHECK must "        \
    "pass filter b - 1 (if b != 0), where an error counts as false; "          \
    "ties on every key (cost; p95 then cost; quality then cost) keep "         \
    "member order; traced, it records LANE_EV_SELECT with its place among "    \
    "the rule's CANDs, then a LANE_EV_MEMBER per member considered")           \
  X(SHADOW,    SHADOW, "",   "",  1, 0, R, NEXT, 1,                            \
    "add model c to the shadows unless it is there or they are full; "         \
    "with b, only when splitmix64(fnv1a64(model name, req.user)) % 100 "       \
    "< b")                                                                     \
  X(ENDRULE,   NONE,   "",   "",  1, 0, R, NEXT, 1,                            \
    "with candidates, the current rule decides: candidates leave the "         \
    "shadows (a model that answers needs no copy) and the decision "           \
    "stops; without, fall through to the next rule")                           \
  X(NOMATCH,   NONE,   "",   "",  1, 0, R, STOP, 1,                            \
    "no rule produced a model; ends a route region")                           \
  X(TRY,       JUMP,   "",   "",  1, 0, A, NEXT, 0,                            \
    "until the matching ENDTRY, an error drops the stack back to its "         \
    "depth here and continues at c (CEL's error absorption when both "         \
    "sides of && or || can fail; see OR_E)")                                   \
  X(ENDTRY,    NONE,   "",   "",  1, 0, A, NEXT, 0,                            \
    "the innermost TRY's code finished without an error: drop its "            \
    "handler")                                                                 \
  X(OR_E,      NONE,   "BB", "B", 1, 1, A, NEXT, 0,                            \
    "pop b and f (f: the left side raised an error); push true if b, "         \
    "else raise the error if f, else push false")                              \
  X(AND_E,     NONE,   "BB", "B", 1, 1, A, NEXT, 0,                            \
    "pop b and f (f: the left side raised an error); push false if !b, "       \
    "else raise the error if f, else push true")                               \
  X(HAS,       FIELD,  "",   "B", 1, 0, A, NEXT, 0,                            \
    "push whether request field c was set (CEL's has())")                      \
  X(BUCKET_U,  NONE,   "U",  "D", 1, 0, A, NEXT, 0,                            \
    "pop u; push splitmix64(u) % 100 / 100: an int and a uint with the "       \
    "same bits share a bucket")                                                \
  X(XRET,      TYPE,   "*",  "",  1, 0, F, STOP, 0,                            \
    "pop v, a value of type a, alone on the stack: the value of an explain "   \
    "region (XNODES), which only explanations run; ends the region")      \
  X(LT_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a < b: false orders before true, as in CEL")               \
  X(LE_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a <= b (false before true)")                               \
  X(GT_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a > b (false before true)")                                \
  X(GE_B,      NONE,   "BB", "B", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a >= b (false before true)")                               \
  X(S_CHARAT,  NONE,   "SI", "S", 1, 1, A, NEXT, 0,                            \
    "pop i, s; push s.charAt(i): the code point at index i, \"\" at size(s);"   \
    " i < 0 or > size(s) is an error")                                         \
  X(S_SUBSTR,  NONE,   "SI", "S", 1, 1, A, NEXT, 0,                            \
    "pop a, s; push s.substring(a): code points a to the end; a < 0 or > "      \
    "size(s) is an error")                                                     \
  X(S_SUBSTR2, NONE,   "SII", "S", 1, 1, A, NEXT, 0,                           \
    "pop e, a, s; push s.substring(a, e): code points [a, e); an index out "   \
    "of [0, size(s)] or a > e is an error")                                    \
  X(S_INDEX,   NONE,   "SS", "I", 1, 0, A, NEXT, 0,                            \
    "pop t, s; push s.indexOf(t): the code point index of t's first "          \
    "occurrence, -1 none, 0 for an empty t")                                   \
  X(S_INDEX_AT, NONE,  "SSI", "I", 1, 1, A, NEXT, 0,                           \
    "pop i, t, s; push s.indexOf(t, i): the first occurrence at or after i;"   \
    " an empty t gives i; else i out of [0, size(s)) is an error")             \
  X(S_LASTINDEX, NONE, "SS", "I", 1, 0, A, NEXT, 0,                            \
    "pop t, s; push s.lastIndexOf(t): the code point index of t's last "       \
    "occurrence, -1 none, size(s) for an empty t")                             \
  X(S_LASTINDEX_AT, NONE, "SSI", "I", 1, 1, A, NEXT, 0,                        \
    "pop i, t, s; push s.lastIndexOf(t, i): the last occurrence starting at"   \
    " or before i; an empty t gives i; else i out of [0, size(s)) is an "      \
    "error")                                                                   \
  X(S_TRIM,    NONE,   "S",  "S", 1, 0, A, NEXT, 0,                            \
    "pop s; push s without leading and trailing Unicode white space")          \
  X(S2I,       NONE,   "S",  "I", 1, 1, A, NEXT, 0,                            \
    "pop s; push int(s): an optional sign and decimal digits, nothing else;"   \
    " anything else or out of range is an error")                              \
  X(S2U,       NONE,   "S",  "U", 1, 1, A, NEXT, 0,                            \
    "pop s; push uint(s): decimal digits only; else an error")                \
  X(S2B,       NONE,   "S",  "B", 1, 1, A, NEXT, 0,                            \
    "pop s; push bool(s): 1 t T true TRUE True, or 0 f F false FALSE False;"   \
    " else an error")                                                         \
  X(POP,       TYPE,   "*",  "",  1, 0, A, NEXT, 0,                            \
    "pop a value of type a: an operand computed only for the error it may "    \
    "raise (dyn(x) == y where x and y never have one type)")                  \
  X(MAX_I,     NONE,   "II", "I", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the larger (math.greatest)")                               \
  X(MAX_U,     NONE,   "UU", "U", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the larger")                                               \
  X(MAX_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the larger; NaN if either is NaN")                         \
  X(MIN_I,     NONE,   "II", "I", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the smaller (math.least)")                                 \
  X(MIN_U,     NONE,   "UU", "U", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the smaller")                                              \
  X(MIN_D,     NONE,   "DD", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push the smaller; NaN if either is NaN")                        \
  X(CEIL,      NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push ceil(d) (math.ceil)")                                         \
  X(FLOOR,     NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push floor(d) (math.floor)")                                       \
  X(ROUND,     NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push d rounded to the nearest whole value, halves away from "      \
    "zero (math.round)")                                                       \
  X(TRUNC,     NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push d without its fraction (math.trunc)")                         \
  X(ABS_I,     NONE,   "I",  "I", 1, 1, A, NEXT, 0,                            \
    "pop i; push |i|; an error for -2^63 (math.abs)")                          \
  X(ABS_D,     NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push |d|")                                                         \
  X(SIGN_I,    NONE,   "I",  "I", 1, 0, A, NEXT, 0,                            \
    "pop i; push -1, 0 or 1 (math.sign)")                                      \
  X(SIGN_U,    NONE,   "U",  "U", 1, 0, A, NEXT, 0,                            \
    "pop u; push 0u or 1u")                                                    \
  X(SIGN_D,    NONE,   "D",  "D", 1, 0, A, NEXT, 0,                            \
    "pop d; push -1.0 or 1.0, or d for zeros and NaN")                         \
  X(ISNAN,     NONE,   "D",  "B", 1, 0, A, NEXT, 0,                            \
    "pop d; push whether d is NaN (math.isNaN)")                               \
  X(ISINF,     NONE,   "D",  "B", 1, 0, A, NEXT, 0,                            \
    "pop d; push whether d is an infinity (math.isInf)")                       \
  X(ISFINITE,  NONE,   "D",  "B", 1, 0, A, NEXT, 0,                            \
    "pop d; push whether d is neither NaN nor infinite (math.isFinite)")       \
  X(BAND_I,    NONE,   "II", "I", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a & b (math.bitAnd)")                                      \
  X(BAND_U,    NONE,   "UU", "U", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a & b")                                                    \
  X(BOR_I,     NONE,   "II", "I", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a | b (math.bitOr)")                                       \
  X(BOR_U,     NONE,   "UU", "U", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a | b")                                                    \
  X(BXOR_I,    NONE,   "II", "I", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a ^ b (math.bitXor)")                                      \
  X(BXOR_U,    NONE,   "UU", "U", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a ^ b")                                                    \
  X(BNOT_I,    NONE,   "I",  "I", 1, 0, A, NEXT, 0,                            \
    "pop i; push ~i (math.bitNot)")                                            \
  X(BNOT_U,    NONE,   "U",  "U", 1, 0, A, NEXT, 0,                            \
    "pop u; push ~u")                                                          \
  X(SHL_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop n, a; push a << n: 0 for n >= 64, an error for n < 0 "                \
    "(math.bitShiftLeft)")                                                     \
  X(SHL_U,     NONE,   "UI", "U", 1, 1, A, NEXT, 0,                            \
    "pop n, a; push a << n: 0 for n >= 64, an error for n < 0")                \
  X(SHR_I,     NONE,   "II", "I", 1, 1, A, NEXT, 0,                            \
    "pop n, a; push a >> n filling with zeros (the bits as a uint): 0 for n "  \
    ">= 64, an error for n < 0 (math.bitShiftRight)")                          \
  X(SHR_U,     NONE,   "UI", "U", 1, 1, A, NEXT, 0,                            \
    "pop n, a; push a >> n: 0 for n >= 64, an error for n < 0")                \
  X(MAP_GET,   FIELD,  "S",  "*", 1, 1, A, NEXT, 0,                            \
    "pop k; push the value of key k in map field c (a string is a view of "    \
    "the request's bytes); a key it lacks is an error (an unset field is "     \
    "the empty map)")                                                          \
  X(MAP_HAS,   FIELD,  "S",  "B", 1, 0, A, NEXT, 0,                            \
    "pop k; push whether map field c has key k (k in req.m, has(req.m.k))")    \
  X(MAP_SIZE,  FIELD,  "",   "I", 1, 0, A, NEXT, 0,                            \
    "push the number of entries of map or list field c")                      \
  X(LIST_GET,  FIELD,  "I",  "S", 1, 1, A, NEXT, 0,                            \
    "pop i; push item i of list field c (a view of the request's bytes); an "  \
    "index out of range is an error")                                         \
  X(LIST_HAS,  FIELD,  "S",  "B", 1, 0, A, NEXT, 0,                            \
    "pop s; push whether list field c holds s (s in req.tags)")               \
  X(ITER,      ITER,   "",   "B", 1, 1, A, NEXT, 0,                            \
    "run iteration region b - 1 once per entry of map field c, in order, the " \
    "entry readable by MVAR at this ITER's depth; push, by a, all: false if "  \
    "a run gave false, else an error if one raised one, else true; exists: "   \
    "true if a run gave true, else an error if one raised one, else false; "   \
    "exists_one: an error if a run raised one, else whether exactly one gave " \
    "true (CEL's macros over a request's map)")                               \
  X(MVAR,      MVAR,   "",   "*", 1, 0, A, NEXT, 0,                            \
    "push the key (b = 0) or value (b = 1) of the entry the ITER at depth a "  \
    "is on; only in an iteration region")                                     \
  X(IRET,      NONE,   "B",  "",  1, 0, A, STOP, 0,                            \
    "pop b, alone on the stack: one run's answer; ends an iteration region")   \
  X(S_CAT,     NONE,   "SS", "S", 1, 1, A, NEXT, 0,                            \
    "pop b, a; push a + b, built in the decision's scratch (BC_SCRATCH); an "  \
    "error past LANE_MAX_STRING bytes or a full scratch")                     \
  X(S_LOWER,   NONE,   "S",  "S", 1, 1, A, NEXT, 0,                            \
    "pop s; push s.lowerAscii(): A-Z mapped to a-z, other bytes kept (built)") \
  X(S_UPPER,   NONE,   "S",  "S", 1, 1, A, NEXT, 0,                            \
    "pop s; push s.upperAscii() (built)")                                     \
  X(S_REPLACE, NONE,   "SSS", "S", 1, 1, A, NEXT, 0,                           \
    "pop w, o, s; push s.replace(o, w): every o, left to right, without "     \
    "overlaps; an empty o matches at the start and after each code point "     \
    "(built)")                                                                 \
  X(S_REPLACE_N, NONE, "SSSI", "S", 1, 1, A, NEXT, 0,                          \
    "pop n, w, o, s; push s.replace(o, w, n): the first n (all when n < 0)"    \
    " (built)")                                                                \
  X(I2S,       NONE,   "I",  "S", 1, 1, A, NEXT, 0,                            \
    "pop i; push string(i), decimal (built)")                                 \
  X(U2S,       NONE,   "U",  "S", 1, 1, A, NEXT, 0,                            \
    "pop u; push string(u), decimal (built)")                                 \
  X(D2S,       NONE,   "D",  "S", 4, 1, A, NEXT, 0,                            \
    "pop d; push string(d): the shortest %g form that reads back as d "        \
    "(built)")                                                                 \
  X(B2S,       NONE,   "B",  "S", 1, 0, A, NEXT, 0,                            \
    "pop b; push \"true\" or \"false\"")                                         \
  X(S2D,       NONE,   "S",  "D", 2, 1, A, NEXT, 0,                            \
    "pop s; push double(s): the whole string a decimal or exponent number "    \
    "(strtod's form, up to 63 bytes); else an error")                         \
  X(SEC2TS,    NONE,   "I",  "I", 1, 1, A, NEXT, 0,                            \
    "pop s; push timestamp(s): s seconds since the Unix epoch; out of years "  \
    "1 to 9999 an error")                                                     \
  X(S_MATCH,   REGEX,  "S",  "B", 1, 1, A, NEXT, 0,                            \
    "pop s; push s.matches(pattern c): a match anywhere in s, by the "         \
    "installed engine (lane_regex_install), compiled at load; its bound on "   \
    "work reached is an error")                                               \
  X(NOW,       NONE,   "",   "I", 1, 0, A, NEXT, 0,                            \
    "push the decision's clock: a timestamp, ms since the Unix epoch")        \
  X(TS_PARSE,  NONE,   "S",  "I", 1, 1, A, NEXT, 0,                            \
    "pop s; push timestamp(s): RFC 3339, years 1 to 9999, digits past "        \
    "milliseconds dropped; else an error")                                    \
  X(DUR_PARSE, NONE,   "S",  "D", 1, 1, A, NEXT, 0,                            \
    "pop s; push duration(s) in ms: Go's form (1h30m, 1.5s, 300ms, 2us); "     \
    "else, or past 10,000 years, an error")                                   \
  X(TS_ADD,    NONE,   "ID", "I", 1, 1, A, NEXT, 0,                            \
    "pop d, t; push t + d (d's whole ms); out of years 1 to 9999 an error")   \
  X(TS_ADD_R,  NONE,   "DI", "I", 1, 1, A, NEXT, 0,                            \
    "pop t, d; push d + t, as TS_ADD")                                        \
  X(TS_SUB,    NONE,   "ID", "I", 1, 1, A, NEXT, 0,                            \
    "pop d, t; push t - d, as TS_ADD")                                        \
  X(TS_DIFF,   NONE,   "II", "D", 1, 0, A, NEXT, 0,                            \
    "pop b, a; push a - b: a duration in ms")                                 \
  X(TS2I,      NONE,   "I",  "I", 1, 0, A, NEXT, 0,                            \
    "pop t; push int(t): whole seconds since the epoch, rounded down")       \
  X(TS2S,      NONE,   "I",  "S", 1, 1, A, NEXT, 0,                            \
    "pop t; push string(t): RFC 3339 in UTC, with ms when it has them (built)")\
  X(DUR2S,     NONE,   "D",  "S", 1, 1, A, NEXT, 0,                            \
    "pop d; push string(d): seconds with a fraction when it has one, \"1.5s\""  \
    " (built)")                                                                \
  X(TS_PART,   TSPART, "I",  "I", 1, 0, A, NEXT, 0,                            \
    "pop t; push part a of t (getFullYear ... getMilliseconds) in zone c")    \
  X(DUR_PART,  TSPART, "D",  "I", 1, 0, A, NEXT, 0,                            \
    "pop d; push d in whole hours (a = 6), minutes (7), seconds (8) or ms "    \
    "(9), toward zero; c is BC_NONE")                                          \
  X(ITER_N,    ITER,   "",   "I", 1, 1, A, NEXT, 0,                            \
    "run iteration region b - 1 once per entry of map or list field c, as "    \
    "ITER; push how many runs gave true, or an error if one raised one "       \
    "(size() of a filter() over a request's map or list); a is 0")           \
  X(S_SPLIT_N, NONE,   "SS", "I", 1, 0, A, NEXT, 0,                            \
    "pop sep, s; push s.split(sep).size(): the parts of s between the "       \
    "occurrences of sep, left to right without overlaps; an empty sep splits " \
    "at each code point, and the empty string then has no parts")            \
  X(S_SPLIT_HAS, NONE, "SSS", "B", 1, 0, A, NEXT, 0,                           \
    "pop sep, s, x; push x in s.split(sep)")                                  \
  X(S_SPLIT_GET, NONE, "SSI", "S", 1, 1, A, NEXT, 0,                           \
    "pop i, sep, s; push s.split(sep)[i], a view of s; an index out of range " \
    "is an error")                                                            \
  X(LIST_JOIN, FIELD,  "S",  "S", 1, 1, A, NEXT, 0,                            \
    "pop sep; push the items of list field c, sep between them (built)")

typedef enum bc_op {
#define BC_OP_ENUM(name, fmt, in, out, w, fail, reg, flow, empty, doc) BC_OP_##name,
  BC_OPCODES(BC_OP_ENUM)
#undef BC_OP_ENUM
  BC_NOPS
} bc_op;

#define BC_OP_NONE (-1)  /* "no opcode" in the tables below */

/* Binary operators by machine type: the family (BC_BIN_<fam>), then its
 * opcode on int, uint, double, string and bool operands, NONE where that
 * type has none. The compiler's operator plans read it (compiler/check.c);
 * conversions and units are decided there. */
#define BC_BINOPS(X)                          \
  X(ADD, ADD_I, ADD_U, ADD_D, NONE, NONE)     \
  X(SUB, SUB_I, SUB_U, SUB_D, NONE, NONE)     \
  X(MUL, MUL_I, MUL_U, MUL_D, NONE, NONE)     \
  X(DIV, DIV_I, DIV_U, DIV_D, NONE, NONE)     \
  X(MOD, MOD_I, MOD_U, NONE,  NONE, NONE)     \
  X(EQ,  EQ_I,  EQ_U,  EQ_D,  EQ_S, EQ_B)     \
  X(NE,  NE_I,  NE_U,  NE_D,  NE_S, NE_B)     \
  X(LT,  LT_I,  LT_U,  LT_D,  LT_S, LT_B)     \
  X(LE,  LE_I,  LE_U,  LE_D,  LE_S, LE_B)     \
  X(GT,  GT_I,  GT_U,  GT_D,  GT_S, GT_B)     \
  X(GE,  GE_I,  GE_U,  GE_D,  GE_S, GE_B)

typedef enum bc_binop {
#define BC_BIN_ENUM(fam, i, u, d, s, b) BC_BIN_##fam,
  BC_BINOPS(BC_BIN_ENUM)
#undef BC_BIN_ENUM
  BC_NBINOPS
} bc_binop;

/* BC_MP_MF(op)(...) keeps its arguments for rows M_FIELD reads. */
#define BC_MP_MF(op)             BC_MP_MF_##op
#define BC_MP_MF_M_FIELD(...)    __VA_ARGS__
#define BC_MP_MF_M_P50(...)
#define BC_MP_MF_M_P95(...)
#define BC_MP_MF_M_COST(...)
#define BC_MP_MF_M_FITS(...)
#define BC_MP_MF_M_HEALTHY(...)
#define BC_MP_MF_M_ERRRATE(...)
#define BC_MP_MF_NONE(...)

/* M_FIELD's operand a: BC_MF_<id>, the mfa column. */
enum bc_mfield {
#define BC_MF_ENUM(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_MF(op)(BC_MF_##id = mfa,)
  BC_MPROPS(BC_MF_ENUM)
#undef BC_MF_ENUM
  BC_NMFIELDS = 0
#define BC_MF_COUNT(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_MF(op)(+ 1)
  BC_MPROPS(BC_MF_COUNT)
#undef BC_MF_COUNT
};

/* The row of each M_FIELD operand (bc.c). */
extern const uint8_t bc_mfield_row[BC_NMFIELDS];

typedef struct bc_opinfo {
  const char *name;       /* "PUSH_I" */
  bc_fmt      fmt;        /* operand format */
  const char *in;         /* stack inputs, bottom first */
  const char *out;        /* stack outputs */
  uint8_t     weight;     /* worst-case cost weight */
  uint8_t     can_fail;   /* 1 if it can raise a runtime error */
  char        region;     /* 'A', 'R' or 'F' */
  uint8_t     flow;       /* bc_flow */
  uint8_t     empty;      /* 1: needs an empty stack and no TRY open */
  const char *doc;        /* meaning */
} bc_opinfo;

extern const bc_opinfo bc_ops[BC_NOPS];

/* BC_MPROPS as data (bc.c), indexed by bc_mprop. */
typedef struct bc_mpinfo {
  const char *id;         /* "INPUT" */
  const char *name;       /* language name, "" for none */
  const char *member;     /* "input" */
  uint8_t     unit;       /* bc_unit, 0 for TAGS and NONE */
  char        mt;         /* machine type: 'D', 'I', 'S', 'U', 'B' or 'N' */
  uint8_t     kind;       /* bc_mpkind */
  uint8_t     group;      /* line group, 0 = not declared */
  int16_t     off;        /* offset in the file's record, -1 = not there */
  uint16_t    moff;       /* offsetof(bc_model, member), for stored rows */
  int16_t     op;         /* opcode that reads it, or BC_OP_NONE */
  int8_t      mf;         /* M_FIELD's operand for it, or -1 */
  const char *doc;        /* one line */
} bc_mpinfo;

extern const bc_mpinfo bc_mprops[BC_NMPROPS];

/*
 * The cost model (vm/README.md, "Cost model"). A step is one instruction;
 * work that grows with a length is counted in steps too, so that the
 * worst case the loader computes (max_steps) bounds a decision's time, not
 * only its instructions:
 */
#define BC_COST_CMP   64  /* bytes memcmp'd per step: == < startsWith, lists, switches */
#define BC_COST_SCAN  16  /* bytes scanned per step: size() */
#define BC_COST_HASH  4   /* bytes hashed per step: bucket(), sampled shadows, budget keys */
#define BC_COST_FIND  4   /* haystack and needle bytes per step: contains() */
#define BC_COST_ELEMS 4   /* list elements per step: in */
#define BC_COST_PART  2   /* steps per part split() visits (a search begun, a part
                             compared; about 9 ns on 4,096 commas): at most one
                             more part than bytes */

/* Opcodes whose string result is a view of their first operand's bytes
 * (never longer): the verifier gives it that operand's length class. */
#define BC_OP_IS_VIEW(op) ((op) == BC_OP_S_CHARAT || (op) == BC_OP_S_SUBSTR || \
                           (op) == BC_OP_S_SUBSTR2 || (op) == BC_OP_S_TRIM ||  \
                           (op) == BC_OP_S_SPLIT_GET)

/* The steps an instruction counts beyond its weight for work that grows
 * with lengths: a and b are the lengths in bytes of its string operands
 * (the one below the top first), or for IN_LIST the elements visited and
 * the bytes compared, for SWITCH the probes and the bytes compared, for a
 * sampled SHADOW the bytes of the model's name and of req.user, for
 * BUDGET the bytes of its key. The loader passes bounds and the VM the
 * actual figures; it never decreases when either grows, so a decision
 * counts at most the worst case. */
static inline uint64_t bc_len_steps(int op, uint64_t a, uint64_t b) {
  switch (op) {
  case BC_OP_EQ_S: case BC_OP_NE_S: case BC_OP_LT_S: case BC_OP_LE_S: case BC_OP_GT_S:
  case BC_OP_GE_S: case BC_OP_S_STARTS: case BC_OP_S_ENDS:
    return (a < b ? a : b) / BC_COST_CMP;
  case BC_OP_S_CONTAINS: return (a + b) / BC_COST_FIND;
  case BC_OP_S_SIZE: case BC_OP_S_TRIM: case BC_OP_S2I: case BC_OP_S2U: case BC_OP_S2B:
    return a / BC_COST_SCAN;
  case BC_OP_S_CHARAT: case BC_OP_S_SUBSTR: case BC_OP_S_SUBSTR2:   /* size, then offsets */
    return 2 * a / BC_COST_SCAN;
  case BC_OP_S_INDEX: case BC_OP_S_INDEX_AT:
    return 2 * a / BC_COST_SCAN + (a + b) / BC_COST_FIND;
  case BC_OP_S_LASTINDEX: case BC_OP_S_LASTINDEX_AT:   /* a compare at each start */
    return 2 * a / BC_COST_SCAN + (a * (b ? b : 1)) / BC_COST_CMP;
  case BC_OP_MAP_GET: case BC_OP_MAP_HAS: case BC_OP_LIST_GET: case BC_OP_LIST_HAS:
    return a / BC_COST_SCAN;   /* a: the map's or list's bytes */
  case BC_OP_S_CAT: case BC_OP_S_LOWER: case BC_OP_S_UPPER:   /* bytes copied */
    return (a + b) / BC_COST_SCAN;
  case BC_OP_S_REPLACE: case BC_OP_S_REPLACE_N:   /* a: s and o; b: the result */
    return 2 * a / BC_COST_FIND + b / BC_COST_SCAN;
  case BC_OP_S_SPLIT_N: case BC_OP_S_SPLIT_GET:   /* a: s; b: sep */
    return (a + b) / BC_COST_FIND + a / BC_COST_SCAN;
  case BC_OP_S_SPLIT_HAS:   /* and each part compared with x */
    return (a + b) / BC_COST_FIND + a / BC_COST_SCAN + a / BC_COST_CMP;
  case BC_OP_LIST_JOIN:   /* a: the list's bytes; b: the result's */
    return (a + b) / BC_COST_SCAN;
  /* formatting and parsing numbers through libc: about 100 ns for an
   * int, 5 us for a double's shortest form (up to 17 tries), 200 ns for
   * strtod, each counted as that many 1.3 ns steps */
  case BC_OP_I2S: case BC_OP_U2S: return 80;
  case BC_OP_D2S: return 4000;
  case BC_OP_S2D: return 150 + a / BC_COST_SCAN;
  case BC_OP_TS_PARSE: case BC_OP_DUR_PARSE: return 16 + a / BC_COST_SCAN;
  case BC_OP_TS2S: case BC_OP_DUR2S: return 4000;   /* snprintf, and strtod for a duration */
  case BC_OP_TS_PART: return 64;                      /* a zone's rule parsed, dates worked out */
  case BC_OP_S_MATCH:   /* an automaton: each subject byte against b active states */
    return 8 + a * (1 + b / 8) / BC_COST_SCAN;
  case BC_OP_BUCKET_S: case BC_OP_BUDGET: return a / BC_COST_HASH;
  case BC_OP_SHADOW: return (a + b) / BC_COST_HASH;
  case BC_OP_IN_LIST: return a / BC_COST_ELEMS + b / BC_COST_CMP;
  case BC_OP_SWITCH: return a + b / BC_COST_CMP;
  default: return 0;
  }
}

/* A decoded (or to-be-encoded) program. Arrays are owned by whoever built
 * the image; strings point at NUL-terminated bytes of length len. */
typedef struct bc_str { const char *p; uint32_t len; } bc_str;

typedef struct bc_image {
  uint16_t   flags;                     /* header flags */
  /* per section with an array, BC_SECTIONS' count and array: nstr, str
   * (strings), nkint, kint, ... nlines, lines (ncode source lines, or
   * 0 and NULL) */
#define BC_IMAGE_ARRAY(name, id, rec, field, nfield, type, codec) \
  BC_SEC_ARRAY(codec)(uint32_t nfield; type *field;)
  BC_SECTIONS(BC_IMAGE_ARRAY)
#undef BC_IMAGE_ARRAY
} bc_image;

/* Serializes an image into a new malloc'd buffer (*out, *n). Returns 0, or
 * -1 if memory ran out. The caller frees *out. */
int      bc_encode(const bc_image *im, unsigned char **out, size_t *n);
uint64_t bc_fnv1a64(const void *p, size_t n, uint64_t h);
#define  BC_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t bc_checksum(const unsigned char *file, size_t n);
/* Whether an opcode can raise a runtime error (overflow, /0, range). */
int      bc_op_can_fail(uint32_t op);
/* The hash behind bucket(): splitmix64 finalizer. */
uint64_t bc_splitmix64(uint64_t x);

/* Test hook, not API: lane_load_with that also adds to *work (if not
 * NULL) the verifier's inner-loop iterations, a deterministic measure of
 * its time (tests/unit/t_scale.c checks that it grows linearly). */
struct lane_program;
struct lane_load_options;
struct lane_error;
struct lane_program *bc_load_counted(const void *bytes, size_t n,
                                     const struct lane_load_options *opt, uint64_t *work,
                                     struct lane_error *err);
/* Test hook, not API: turns off what spec.c worked out for a loaded
 * program (member filters run whole for every member), so that tests and
 * the decide fuzz target can check both paths decide alike. */
void bc_unspecialize(struct lane_program *p);
/* For the compiler, not API: lane_load_with that also says, when a route's
 * worst case is over the limit (LANE_ELIMIT), which route (*over, its
 * index; else -1), so that the error is reported at the route's
 * declaration without reading the message. */
struct lane_program *bc_load_ex(const void *bytes, size_t n,
                                const struct lane_load_options *opt, uint64_t *work,
                                int *over, struct lane_error *err);

#endif /* LANE_BC_H */

/*
 * ast.h -- the lane syntax tree, source files, spans and diagnostics.
 *
 * One ast_ctx per compilation owns an arena: every node, string and list
 * lives in it and is freed by ast_ctx_free. Diagnostics accumulate in the
 * context; nothing here prints except diag_render, which writes to a FILE
 * the caller gives.
 */
#ifndef LANE_AST_H
#define LANE_AST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Limits of the front end (lang/README.md, "Limits"); each one exceeded is
 * a compile error that names it. */
#define AST_MAX_SOURCE  (8u << 20) /* bytes in one source file */
#define AST_MAX_IDENT   128        /* bytes in an identifier */
#define AST_MAX_STRING  4096       /* bytes in a string literal, decoded */
#define AST_MAX_DEPTH   256        /* nesting of nodes under a declaration */

/* A source file held in memory. */
typedef struct src_file {
  const char *name;       /* path as given, for messages */
  const char *text;       /* contents, NUL-terminated */
  size_t      len;        /* bytes of text */
  const char *module;     /* module name: "anthropic" for .../anthropic.lane */
  int         is_root;    /* 1 for the file being compiled */
} src_file;

/* Where something is: 1-based line and column (in bytes), length in bytes. */
typedef struct ast_span {
  const src_file *file;   /* file, or NULL for generated nodes */
  int line;               /* 1-based */
  int col;                /* 1-based byte column */
  int len;                /* bytes covered on the first line, >= 1 */
  int more;               /* 1: it goes on below its first line */
} ast_span;

typedef struct ast_node ast_node;

typedef struct ast_list {
  ast_node **v;           /* items */
  int        n;           /* number of items */
  int        cap;         /* allocated slots */
} ast_list;

/* Operators of unary and binary expressions (ast_node.op). */
typedef enum ast_op {
  OP_NONE,
  OP_OR, OP_AND,                                     /* || && */
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN,   /* relations */
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,            /* arithmetic */
  OP_NOT, OP_NEG                                     /* unary ! - */
} ast_op;

/* Selection orders (ast_node.op of N_SELECT). */
typedef enum ast_order { ORD_CHEAPEST = 1, ORD_FASTEST, ORD_BEST } ast_order;

/*
 * Node kinds. For each: which members of ast_node it uses.
 * "name" is an arena string; "a", "b", "c" are child nodes; "list" items.
 */
typedef enum ast_kind {
  /* literals: lit holds the value */
  N_INT,        /* lit.i */
  N_UINT,       /* lit.u  (123u) */
  N_DOUBLE,     /* lit.d */
  N_BOOL,       /* lit.b */
  N_STRING,     /* str, len (escapes already decoded) */
  N_NULL,       /* null */
  N_MONEY,      /* lit.d dollars            ($0.002) */
  N_PRICE,      /* lit.d dollars per token  ($3/Mtok = 3e-6) */
  N_DURATION,   /* lit.d milliseconds       (800ms, 2s, 5m, 1h, 1d) */
  N_TOKENS,     /* lit.i tokens             (32k, 1M) */
  N_FRACTION,   /* lit.d 0..1               (5% = 0.05) */
  /* expressions */
  N_IDENT,      /* name; "req", "budget", "cost", a model field, ... */
  N_SELECTOR,   /* a.name: a = operand, name = field */
  N_INDEX,      /* a[b] */
  N_CALL,       /* name(list): a = receiver for a.name(list), or NULL */
  N_UNARY,      /* op (OP_NOT, OP_NEG), a */
  N_BINARY,     /* op, a, b */
  N_COND,       /* a ? b : c */
  N_LIST,       /* [list] */
  N_MAP,        /* {k: v, ...}: list = keys and values, alternating */
  /* pools and targets */
  N_POOL,       /* name = pool name, or NULL for `models`; a = where
                   condition or NULL */
  N_SELECT,     /* op = ast_order, a = N_POOL: cheapest(P) ... */
  N_MODELREF,   /* name = model name as written ("muse", "a.b") */
  N_SPLIT,      /* list = N_ARM items, a = key expression */
  N_ARM,        /* a = target, b = weight expression (split arm) */
  N_SHADOW,     /* name = model name (in a target chain or a route);
                   a = N_FRACTION sampled share, or NULL for every request */
  /* declarations (top level) */
  N_IMPORT,     /* str, len = module path */
  N_MODEL,      /* name = model name (maybe qualified), list = N_PROP */
  N_PROP,       /* name = property, a = value expression; for `caps`,
                   list = N_IDENT items and a = NULL */
  N_REQUEST,    /* list = N_FIELD */
  N_FIELD,      /* name = field, str = type name */
  N_POOLDEF,    /* name, a = N_POOL */
  N_BUDGET,     /* name, list = N_PROP (key, limit, window) */
  N_ROUTE,      /* name, list = route items */
  N_TEST,       /* str, len = test name, list = test items */
  /* route items */
  N_FALLBACKS,  /* a = count expression */
  N_REQUIRE,    /* a = condition */
  N_WHEN,       /* a = condition, list = chain of targets (N_MODELREF,
                   N_SELECT, N_SPLIT, N_SHADOW) */
  N_OTHERWISE,  /* list = chain of targets */
  /* N_SHADOW may also stand alone in a route body */
  /* test items */
  N_TROUTE,     /* name = route to decide on */
  N_TREQ,       /* list = N_INIT */
  N_INIT,       /* name = field, a = value */
  N_EXPECT,     /* a = condition */
  N_TSTATE      /* name = "state", str, len = snapshot file (live state) */
} ast_kind;

struct ast_node {
  ast_kind  kind;         /* selects the members used, see ast_kind */
  ast_span  span;         /* where it was written */
  int       op;           /* ast_op or ast_order */
  const char *name;       /* identifier, qualified name or field */
  const char *str;        /* string bytes (N_STRING, N_IMPORT, N_TEST,
                             N_FIELD's type name) */
  size_t    len;          /* bytes of str */
  union {
    int64_t  i;           /* N_INT, N_TOKENS */
    uint64_t u;           /* N_UINT */
    double   d;           /* N_DOUBLE, N_MONEY, N_PRICE, N_DURATION,
                             N_FRACTION */
    int      b;           /* N_BOOL */
  } lit;
  ast_node *a, *b, *c;    /* children, per kind */
  ast_list  list;         /* items, per kind */
  /* Filled by the compiler's passes; zero after parsing. */
  int       type;         /* sema type id */
  int       ref;          /* resolved index (model, field, pool, ...) */
  int       refkind;      /* what ref indexes */
  const char *text;       /* N_WHEN: the condition's source text */
  int       is_const;     /* expression needs nothing from a request, a
                             model or a decision: folds to a constant */
};

/* ---- diagnostics ---- */
typedef enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } diag_level;

typedef struct ast_diag {
  diag_level  level;      /* severity */
  ast_span    span;       /* where */
  char       *msg;        /* message, arena-owned */
} ast_diag;

/* A comment as written, kept for the formatter and for `# lane: allow`. */
typedef struct ast_comment {
  ast_span    span;       /* where the '#' is; len covers the comment */
  const char *text;       /* from '#' to the end of the line (no newline) */
  size_t      len;        /* bytes of text */
  int         own_line;   /* 1 when nothing but blanks precedes it */
} ast_comment;

/* ---- the context ---- */
typedef struct arena_block arena_block;

typedef struct ast_ctx {
  arena_block *arena;     /* allocation blocks */
  int          nomem;     /* set when an allocation failed */
  ast_diag    *diags;     /* diagnostics in order of report */
  int          ndiags;    /* number reported */
  int          capdiags;  /* allocated */
  int          nerrors;   /* number of DIAG_ERROR reported */
  int          max_errors;/* stop recording errors past this (0 = 20) */
  ast_comment *comments;  /* every comment read, in order of reading */
  int          ncomments; /* number recorded */
  int          capcomments; /* allocated */
} ast_ctx;

void  ast_ctx_init(ast_ctx *ctx);
void  ast_ctx_free(ast_ctx *ctx);
/* Arena allocation, zeroed. NULL (and ctx->nomem set) when memory ran out. */
void *ast_alloc(ast_ctx *ctx, size_t n);
char *ast_strndup(ast_ctx *ctx, const char *s, size_t n);

ast_node *ast_new(ast_ctx *ctx, ast_kind kind, ast_span span);
/* Appends to a list; returns 0, or -1 when memory ran out. */
int       ast_push(ast_ctx *ctx, ast_list *l, ast_node *item);
/* Line `line` (1-based) of f without its line end, length in *n; NULL if
 * there is no such line. */
const char *ast_source_line(const src_file *f, int line, size_t *n);
/* Span from the start of a to the end of b when on one line; else a, with
 * more set when b lies below it. */
ast_span  ast_join(ast_span a, ast_span b);

/* Records a diagnostic (printf-style message). */
void diag_report(ast_ctx *ctx, diag_level lv, ast_span sp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_vreport(ast_ctx *ctx, diag_level lv, ast_span sp, const char *fmt,
                  va_list ap) __attribute__((format(printf, 4, 0)));
#define diag_error(ctx, sp, ...) diag_report((ctx), DIAG_ERROR, (sp), __VA_ARGS__)
/* Writes every diagnostic as
 *   file:line:col: error: message
 *     source line
 *     ^~~~ caret under the span
 * and, past the limit, a line saying how many more were suppressed. */
void diag_render(FILE *out, const ast_ctx *ctx);
/* One diagnostic, same format. */
void diag_render_one(FILE *out, const ast_diag *d);
/* As diag_render_one, with the source line (n bytes, no line end) the
 * caller already has, or NULL: for callers that render many diagnostics
 * of one file (ast_source_line scans from the top each time). */
void diag_render_one_at(FILE *out, const ast_diag *d, const char *line, size_t n);

/* Whether s is a date as policies write it, "YYYY-MM-DD", with a plausible
 * month and day (a model's `deprecated`, a catalog's deprecation_date). */
int ast_valid_date(const char *s);

/* ---- reading sources ---- */
/* Opens path for reading only if it is a regular file: a FIFO, a device or
 * a directory is refused at once (opening a FIFO with fopen would block
 * until a writer comes) with errno EINVAL. NULL with errno set otherwise. */
FILE *ast_fopen_regular(const char *path);
/* strerror(e), except that EINVAL from ast_fopen_regular reads "not a
 * regular file". */
const char *ast_strerror(int e);

/* ---- the parser (lang/parser.y, lang/lexer.l) ---- */
/* Parses one file; appends its top-level declarations to `decls`.
 * Syntax errors are reported to ctx and parsing recovers at the next
 * declaration. Returns the number of syntax errors (0 = ok), or -1 when
 * memory ran out. */
int parse_file(ast_ctx *ctx, const src_file *file, ast_list *decls);

/* Parses text holding one expression (lane eval --expr) into *expr, which
 * is also appended to keep (the depth check walks it there). Returns the
 * number of errors, as parse_file; *expr is NULL on a syntax error. */
int parse_expr(ast_ctx *ctx, const src_file *file, ast_list *keep, ast_node **expr);

/* Debug: writes an S-expression form of a node (used by tests). */
void ast_dump(FILE *out, const ast_node *n);

#endif /* LANE_AST_H */

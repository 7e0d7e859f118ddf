/*
 * catalog.h -- price catalogs in the LiteLLM model_prices_and_context_window
 * JSON format: import into lane modules, fetch over HTTP, diff.
 *
 * Each entry point of the first section is a whole `lane catalog`
 * subcommand: it prints its report to out, its errors to err, and returns
 * the command's exit code (0 ok, 1 findings, 2 usage or input error). The
 * second section is what catalog.c, catalog_diff.c and catalog_fetch.c
 * share (and what the tests and the import fuzz target call).
 */
#ifndef LANE_CATALOG_H
#define LANE_CATALOG_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "bc.h"   /* BC_MPROPS */

/* ---- the subcommands ---- */

/* lane catalog import FILE.json -o DIR [--provider P]... : writes one
 * DIR/<provider>.lane per provider (all providers when none is named). */
int catalog_import(const char *json_path, const char *out_dir,
                   const char *const *providers, int nproviders,
                   FILE *out, FILE *err);

/* Options of lane catalog fetch. Zero values mean the defaults. */
typedef struct catalog_fetch_opts {
  long        timeout_ms;     /* whole transfer (default 30000) */
  long        connect_ms;     /* connection (default 10000) */
  long        max_redirects;  /* default 3 */
  long        max_bytes;      /* body size cap (default CATALOG_MAX_BYTES) */
  const char *ca_file;        /* extra CA bundle (tests), or NULL */
  int         force;          /* 1: replace FILE even by a catalog with fewer
                                 than half its model entries */
} catalog_fetch_opts;

/* lane catalog fetch URL -o FILE: downloads with libcurl (TLS verified),
 * sends If-None-Match with the ETag saved beside FILE (FILE.etag) when it
 * was saved for the same URL, and replaces FILE atomically only once the
 * new body parses as a catalog (within the limits below) that keeps at
 * least half of FILE's model entries (or opts->force). */
int catalog_fetch(const char *url, const char *out_path,
                  const catalog_fetch_opts *opts, FILE *out, FILE *err);

/* Options of lane catalog diff. */
typedef struct catalog_diff_opts {
  int                lane;        /* 1: the models import would write, by lane
                                     name; 0: raw catalog entries by key */
  const char *const *providers;   /* only these providers (module names, as
                                     --provider of import); none: all */
  int                nproviders;  /* number of providers */
} catalog_diff_opts;

/* lane catalog diff OLD.json NEW.json [--format keys|lane] [--provider P]...
 * Returns 0 when identical, 1 when there are differences. opts may be
 * NULL (raw entries, all providers). */
int catalog_diff(const char *old_path, const char *new_path, const catalog_diff_opts *opts,
                 FILE *out, FILE *err);

/* ---- shared by catalog*.c ---- */

/* Limits on a catalog, each reported by name when exceeded. They bound
 * what jansson builds: the shared catalog has 41,581 values, 4,735 objects
 * and arrays, nesting 6 and 1.7 MB (README.md, "Catalogs"). */
#define CATALOG_MAX_BYTES      (64L * 1024 * 1024) /* file or body size */
#define CATALOG_MAX_VALUES     1000000L  /* JSON values of every kind */
#define CATALOG_MAX_CONTAINERS 200000L   /* objects and arrays among them */
#define CATALOG_MAX_DEPTH      32        /* nesting of objects and arrays */

/* Why a catalog could not be read. */
typedef enum catalog_errkind {
  CATALOG_EREAD,    /* the file: text is "cannot read 'PATH': reason" */
  CATALOG_ESYNTAX,  /* invalid JSON at line:column, text is jansson's */
  CATALOG_ELIMIT    /* a limit above: text names it */
} catalog_errkind;

typedef struct catalog_error {
  catalog_errkind kind;       /* selects what text says */
  int             line, column; /* CATALOG_ESYNTAX only */
  char            text[720];  /* one line, no trailing newline (jansson's
                                 text of up to 160 bytes, escaped) */
} catalog_error;

/* Parses len bytes of JSON within the limits above (counted before jansson
 * allocates anything), rejecting duplicate keys. NULL with *e filled. */
json_t *catalog_parse(const char *text, size_t len, catalog_error *e);

/* Reads and parses a file of at most max_bytes (0: CATALOG_MAX_BYTES). */
json_t *catalog_read(const char *path, long max_bytes, catalog_error *e);

/* Prints e as one line: "lane: PATH:L:C: invalid JSON: ...", "lane: PATH:
 * <limit>" or "lane: cannot read ...". */
void catalog_report_error(FILE *err, const char *path, const catalog_error *e);

/* Capability flags import writes, in this order: bit i is catalog_caps[i].
 * The last one is not a catalog flag: it marks mode "responses". */
#define CATALOG_NCAPS 8
#define CATALOG_CAP_RESPONSES_ONLY (1u << 7)
extern const char *const catalog_caps[CATALOG_NCAPS];

/* CATALOG_MP(unit)(...) keeps its arguments for the rows of BC_MPROPS
 * that import reads from a catalog and writes: its prices and token counts. */
#define CATALOG_MP(unit)             CATALOG_MP_##unit
#define CATALOG_MP_PRICE(...)        __VA_ARGS__
#define CATALOG_MP_TOKENS(...)       __VA_ARGS__
#define CATALOG_MP_STRING(...)
#define CATALOG_MP_DOUBLE(...)
#define CATALOG_MP_DURATION(...)
#define CATALOG_MP_MONEY(...)
#define CATALOG_MP_BOOL(...)
#define CATALOG_MP_FRACTION(...)
#define CATALOG_MP_TAGS(...)
#define CATALOG_MP_NONE(...)

/* offsetof(catalog_model, member) of each CATALOG_MP row, else 0 */
extern const size_t catalog_mprop_off[BC_NMPROPS];

/* One model as import writes it. */
typedef struct catalog_model {
  const char *key;            /* catalog key, borrowed from the JSON */
  char       *module;         /* module name: "openai", "vertex_ai" */
  char       *id;             /* provider's model id: the key without "provider/" */
  char       *ident;          /* identifier within the module (unique) */
  int         prefixed;       /* 1 when the key had a "provider/" prefix */
  /* the CATALOG_MP rows: input, output, ... ($/token), context, ... (tokens;
   * 0 = unknown or none), as their BC_MPROPS docs say */
#define CATALOG_MP_MEMBER(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  CATALOG_MP(unit)(BC_MP_CTYPE_##mt member;)
  BC_MPROPS(CATALOG_MP_MEMBER)
#undef CATALOG_MP_MEMBER
  unsigned    caps;                    /* bit i = catalog_caps[i] */
  char        deprecated[11];          /* "YYYY-MM-DD" or "" */
  int         renamed;    /* 0: ident from the id; 1: from the whole key;
                             2: with a key hash suffix (see catalog.c) */
  const char *clash;      /* renamed: a key that wanted the same name */
} catalog_model;

/* An entry that is not imported, and why. */
typedef struct catalog_skip {
  const char *key;            /* catalog key, borrowed from the JSON */
  char       *why;            /* "mode embedding", "no per-token prices", ... */
} catalog_skip;

#define CATALOG_NSKIPKINDS 9

/* Every model of a catalog that import writes, sorted by module then key,
 * and every entry it skips. */
typedef struct catalog_set {
  catalog_model *v;           /* models */
  int            n, cap;      /* used, allocated */
  catalog_skip  *skips;       /* skipped entries, in catalog order */
  int            nskips, capskips; /* used, allocated */
  int            total;       /* entries in the catalog */
  int            other;       /* entries of providers not asked for */
  int            count[CATALOG_NSKIPKINDS]; /* skips by kind (catalog_skip_kinds) */
} catalog_set;

extern const char *const catalog_skip_kinds[CATALOG_NSKIPKINDS];

/* Reads every entry of root (a JSON object) of the given modules (all when
 * nproviders is 0; module names as catalog_module_of makes them) into s
 * and names the models (the rule is in catalog.c). With report, prints "skip KEY: why" and
 * "collision: ..." lines there. 0, or -1 when memory ran out. */
int  catalog_collect(json_t *root, const char *const *providers, int nproviders,
                     catalog_set *s, FILE *report);
void catalog_set_free(catalog_set *s);

/* The module name a litellm_provider or a --provider argument stands
 * for, malloc'ed; NULL when it names none (why says so) or memory ran out
 * (why is ""). */
char *catalog_module_of(const char *provider, char *why, size_t n);

/* A price as import writes it after '$' and before "/Mtok": the shortest
 * text that reads back to exactly p. buf holds at least 64 bytes. */
void catalog_price_text(char *buf, size_t n, double p);
/* A token count as import writes it: "128k", "1M", "16384". */
void catalog_tokens_text(char *buf, size_t n, int64_t t);

/* One generated module: models v[0..n) of a catalog_set. */
typedef struct catalog_module {
  const char          *name;  /* module name (v[0].module) */
  const catalog_model *v;     /* its models, in a catalog_set */
  int                  n;     /* how many */
  char                *text;  /* the source, malloc'ed */
  size_t               len;   /* its length */
} catalog_module;

/* Writes the source of every module of s (source names the catalog in
 * each header comment). 0 with *mods (free with catalog_modules_free), or
 * 2 with one line on err: a module beyond a compiler limit, out of memory. */
int  catalog_render(const catalog_set *s, const char *source, catalog_module **mods,
                    int *nmods, FILE *err);
void catalog_modules_free(catalog_module *mods, int nmods);

#endif /* LANE_CATALOG_H */

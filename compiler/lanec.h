/*
 * lanec.h -- liblanec, the lane compiler as a library: a policy (a file,
 * or text under a name) with its imports in, verified bytecode and the
 * loaded program out, every diagnostic with its place.
 *
 *   lanec_opts o = {0};
 *   lanec_result r;
 *   if (lanec_compile("policy.lane", NULL, &o, &r) == LANEC_OK)
 *     ... r.bytes, r.nbytes (write them), r.prog (decide with it) ...
 *   else
 *     lanec_print_diags(&r, stderr);
 *   lanec_result_free(&r);
 *
 * The bytes are loaded and verified once, inside lanec_compile, exactly as
 * lane_load would load them; r.prog is that program. The other entry
 * points of liblanec work on a result's checked policy: lint.h
 * (lint_policy: the findings of `lane lint`), explain.h (why a decision
 * went where it went) and sema.h's test runner (a policy's test blocks).
 * liblanec links liblane and libc; it prints only where asked to.
 */
#ifndef LANEC_H
#define LANEC_H

#include <stddef.h>
#include <stdio.h>

#include "lane.h"

/* One file of a sealed set (lanec_opts.files): a path as the compiler
 * names it and the file's bytes, which the caller owns and keeps alive
 * while the compile runs (they need not end in a NUL). */
typedef struct lanec_file {
  const char *path;        /* "policy.lane", "std/providers/openai.lane" */
  const char *bytes;       /* the contents */
  size_t      n;           /* bytes of contents */
} lanec_file;

typedef struct lanec_opts {
  const char *const *include; /* -I directories, searched in order */
  int         ninclude;    /* number of -I directories (any number) */
  const char *stdlib;      /* directory behind "std/", or NULL for default */
  int         max_errors;  /* diagnostics kept (0 = 20) */
  int         no_opt;      /* 1: emit without optimisations (lane compile
                              -O0, the differential fuzz target): no constant
                              folding beyond what types need, every pool
                              member checked at run time with all its
                              conditions, no rule index; see emit.c */
  const char *tests;       /* a file of further test blocks to add (a
                              NAME_test.lane beside the policy), or NULL */
  int         check_only;  /* 1: stop once the policy is checked (names,
                              types, units): no bytes, no program */
  /* A sealed set of files (a bundle's sources), or NULL. When set, the
   * compile reads nothing from disk: the root (unless text is given),
   * every import, the tests file and each test's `state` snapshot are
   * looked up in files by exact path, and a path not in it is not found.
   * Imports resolve as on disk, by name alone: beside the importing file,
   * then each -I directory; `std/X` is the path "std/X.lane" (stdlib,
   * LANE_STDLIB and the executable's place are not read). Paths are
   * compared as text once normalised ("a/./b/../c" is "a/c"; see
   * sema_path_norm), never through the file system: two paths are one
   * module when they normalise alike. Paths must be unique so. */
  const lanec_file *files;
  int         nfiles;      /* entries of files */
} lanec_opts;

enum lanec_status {
  LANEC_OK      = 0,  /* compiled (or checked, with check_only) */
  LANEC_EPOLICY = 1,  /* the policy has errors: see the diagnostics */
  LANEC_EREAD   = 2,  /* the root file cannot be read (a diagnostic says why) */
  LANEC_ENOMEM  = 3,  /* memory ran out; r->unit may be NULL */
  LANEC_EINTERNAL = 4 /* the compiler emitted bytes the loader refuses: a
                         bug in lane, not in the policy (a diagnostic gives
                         the loader's reason) */
};

struct sema_unit;

typedef struct lanec_result {
  int               status; /* a lanec_status, as lanec_compile returned */
  unsigned char    *bytes;  /* the .lanec file (malloc'd), or NULL */
  size_t            nbytes;
  lane_program     *prog;   /* bytes, loaded and verified; or NULL */
  struct sema_unit *unit;   /* the checked policy, its AST and diagnostics
                               (sema.h, for the tools of this tree); NULL
                               only when memory ran out */
} lanec_result;

/* Compiles the policy at path, or, when text is not NULL, the NUL-ended
 * text under the name path. opts may be NULL (all defaults). Fills *r
 * (always: free it with lanec_result_free) and returns r->status. */
int lanec_compile(const char *path, const char *text, const lanec_opts *opts,
                  lanec_result *r);
void lanec_result_free(lanec_result *r);

/* Diagnostics, in the order reported: errors, warnings and the notes that
 * follow them. Strings are borrowed from the result. A diagnostic about
 * the whole policy (a program-wide limit) has file NULL, line 0. */
enum lanec_level { LANEC_ERROR = 0, LANEC_WARNING = 1, LANEC_NOTE = 2 };
typedef struct lanec_diag {
  int         level;       /* a lanec_level */
  const char *file;        /* as the policy or import was named, or NULL */
  int         line, col;   /* 1-based; 0 when not known */
  int         len;         /* bytes of source it covers */
  const char *message;
} lanec_diag;
int  lanec_diag_count(const lanec_result *r);
void lanec_diag_get(const lanec_result *r, int i, lanec_diag *d);
/* `file:line:col: error: MESSAGE`, the source line and a caret, per
 * diagnostic, then "N more errors not shown" when errors were dropped. */
void lanec_print_diags(const lanec_result *r, FILE *out);

#endif /* LANEC_H */

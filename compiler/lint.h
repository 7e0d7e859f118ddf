/*
 * lint.h -- `lane lint`: checks over a policy that compiles, for rules that
 * never decide, conditions that never change, selections that are always
 * empty, names nobody uses and prices that look wrong.
 *
 * Every lint has a stable kebab-case id and a default level; its page is
 * compiler/lints/README.md. A run may change levels (enable, disable), and
 * a comment `# lane: allow ID[, ID...]` on the line of a finding, or alone
 * on the line just above it, silences that finding.
 */
#ifndef LANE_LINT_H
#define LANE_LINT_H

#include <stdio.h>

#include "sema.h"

/* The findings of one run, in order (by file and place). */
typedef struct lint_report lint_report;

/* Compiles the policy at path (opts: -I directories, --max-errors) and runs
 * every lint at its level into *out. enable[] turns lints on (an
 * off-by-default lint becomes a warning); disable[] turns them off and wins
 * over enable[]. A policy that does not compile is not linted: its compile
 * diagnostics are the findings (compile-error, compile-warning); a policy
 * that compiles has its compiler warnings (deprecations) reported as lints
 * instead. Usage messages go to err, and so do the diagnostics of a file
 * that cannot be read.
 *
 * Returns 0 (no error-level finding), 1 (an error-level finding, or the
 * policy does not compile) or 2 (the file cannot be read, an unknown lint
 * id, --enable/--disable of compile-error or compile-warning, or no
 * memory; then *out is NULL). The caller owns every argument and frees
 * *out with lint_report_free. */
int lint_policy(const char *path, const sema_opts *opts,
                const char *const *enable, int nenable,
                const char *const *disable, int ndisable,
                lint_report **out, FILE *err);

/* The findings as compiler diagnostics: `file:line:col: warning: MESSAGE
 * [id]`, the source line and a caret, the notes after. */
void lint_report_print_text(const lint_report *r, FILE *out);

/* One finding or note, for writers of other formats (the lane command's
 * JSON and SARIF). Strings are borrowed from the report. A place without a
 * file position (a limit of the whole policy) has the linted file, line 0. */
typedef struct lint_item {
  int         lint;      /* index of its lint (lint_id), -1 for a note */
  const char *level;     /* "warning" or "error"; NULL for a note */
  const char *file;
  int         line, col, len;
  const char *message;   /* without the [id] */
  int         nnotes;    /* notes that follow it (compile-error) */
} lint_item;
int  lint_report_count(const lint_report *r);
void lint_report_item(const lint_report *r, int i, lint_item *it);
void lint_report_note(const lint_report *r, int i, int k, lint_item *it);
/* When compile errors were counted but not kept: 1, with *it the
 * compile-error "N more errors not shown; ..." on the linted file, line 0;
 * else 0. */
int  lint_report_unshown(const lint_report *r, lint_item *it);
void lint_report_free(lint_report *r);

/* The lints: index 0 .. lint_count()-1, with their stable id, one-line
 * summary and default level ("off", "warning" or "error"). */
int         lint_count(void);
const char *lint_id(int k);
const char *lint_summary(int k);
const char *lint_default_level(int k);

#endif /* LANE_LINT_H */

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

/* Compiles the policy at path (opts: -I directories, --max-errors), runs
 * every lint at its level and prints the findings to out in format
 * "text" (as compiler diagnostics, `file:line:col: warning: MESSAGE [id]`
 * with the source line and a caret), "json" (an array of {id, level, file,
 * line, col, message}) or "sarif" (SARIF 2.1.0). enable[] turns lints on
 * (an off-by-default lint becomes a warning); disable[] turns them off and
 * wins over enable[]. A policy that does not compile is not linted: its
 * compile diagnostics are the findings (compile-error, compile-warning),
 * printed to out in the same format; a policy that compiles has its
 * compiler warnings (deprecations) reported as lints instead. Usage
 * messages go to err, and so do the diagnostics of a file that cannot be
 * read.
 *
 * Returns 0 (no error-level finding), 1 (an error-level finding, or the
 * policy does not compile) or 2 (the file cannot be read, an unknown lint
 * id or format, --enable/--disable of compile-error or compile-warning).
 * The caller owns every argument; nothing is kept. */
int lint_command(const char *path, const sema_opts *opts,
                 const char *const *enable, int nenable,
                 const char *const *disable, int ndisable,
                 const char *format, FILE *out, FILE *err);

#endif /* LANE_LINT_H */

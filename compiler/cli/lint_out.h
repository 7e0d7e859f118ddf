/*
 * lint_out.h -- `lane lint` as the command runs it: the linter of
 * liblanec (lint.h) with its findings written as text, JSON or SARIF.
 */
#ifndef LANE_LINT_OUT_H
#define LANE_LINT_OUT_H

#include <stdio.h>

#include "lint.h"

/* Lints the policy at path (see lint_policy) and prints the findings to
 * out in format "text" (compiler diagnostics), "json" (an array of {id,
 * level, file, line, col, message[, notes]}) or "sarif" (SARIF 2.1.0).
 * Returns lint_policy's 0, 1 or 2; 2 also for an unknown format. */
int lint_command(const char *path, const sema_opts *opts,
                 const char *const *enable, int nenable,
                 const char *const *disable, int ndisable,
                 const char *format, FILE *out, FILE *err);

#endif /* LANE_LINT_OUT_H */

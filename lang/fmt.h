/*
 * fmt.h -- `lane fmt`: one canonical layout for every policy.
 *
 * The formatter prints the syntax tree again, with its own spacing,
 * indentation, line breaks and parentheses, literals as written in the
 * source and every comment put back by position. The result is parsed
 * again and must give the same tree, the same rule names and the same
 * comments in the same order; otherwise formatting fails with an error
 * rather than change what the policy means. The layout rules are listed
 * at the top of fmt.c.
 */
#ifndef LANE_FMT_H
#define LANE_FMT_H

#include <stddef.h>
#include <stdio.h>

#include "ast.h"

/* Formats text (the source of path, len bytes) into *out, a malloc'd
 * NUL-terminated canonical text of *outlen bytes that the caller frees.
 * Returns 0, or -1 with the diagnostics in ctx: syntax errors, or an error
 * when the formatted text would not mean the same (ctx->nomem when memory
 * ran out). path and the ctx must outlive the rendering of its
 * diagnostics; the source is copied into ctx's arena. */
int fmt_text(ast_ctx *ctx, const char *path, const char *text, size_t len, char **out,
             size_t *outlen);

/* lane fmt FILE... [--check] [--diff]. Without options, rewrites each
 * file that is not in canonical layout (atomically: a temporary file
 * beside it, then rename). --check writes nothing and lists on err each
 * file that would change; --diff writes nothing and prints a unified diff
 * of each change on out. Diagnostics go to err. Returns the exit code: 2
 * when a file cannot be read, has syntax errors or cannot be written;
 * else 1 when --check or --diff found a file that would change; else 0. */
int fmt_command(const char *const *files, int nfiles, int check, int diff, FILE *out,
                FILE *err);

#endif /* LANE_FMT_H */

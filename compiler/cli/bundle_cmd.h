/*
 * bundle_cmd.h -- `lane build`, `lane inspect` and `lane keygen`: policy
 * bundles and their signing keys (compiler/bundle/). Each returns the
 * command's exit code: 0 ok, 1 findings (errors in the policy, failed
 * tests, a program its sources do not give), 2 usage or input errors
 * (unreadable, malformed, altered or wrongly signed files).
 */
#ifndef LANE_BUNDLE_CMD_H
#define LANE_BUNDLE_CMD_H

#include <stdio.h>

#include "lanec.h"

typedef struct build_args {
  const char       *policy;     /* POLICY.lane */
  const lanec_opts *opts;       /* -I, -O0, --max-errors, and the tests file (--tests, or
                                   POLICY_test.lane beside the policy) */
  const char       *sign;       /* --sign KEY (a secret key file), or NULL */
  const char       *revision;   /* --revision R, or NULL */
} build_args;

/* Compiles the policy, makes its bundle, then opens it and runs its tests
 * exactly as a host would (lane_bundle_open, lane_bundle_test): a failed
 * test is printed to out and nothing is made. On 0, *bytes (malloc'd) and
 * *n are the bundle, for the caller to write; a summary goes to out. */
int build_bundle(const build_args *a, unsigned char **bytes, size_t *n, FILE *out, FILE *err);

/* Prints the bundle at path: manifest, files, signature (format "text" or
 * "json"). key: a public key file whose valid signature is required, or
 * NULL. test: also compile its sources again and run its tests. */
int inspect_bundle(const char *path, const char *key, int test, const char *format, FILE *out,
                   FILE *err);

/* Writes NAME.key and NAME.pub. */
int keygen_command(const char *name, FILE *out, FILE *err);

#endif /* LANE_BUNDLE_CMD_H */

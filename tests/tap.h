/*
 * tap.h -- a small Test Anything Protocol emitter for lane's C tests.
 *
 *   plan(n) or no plan and done_testing() at the end;
 *   ok(cond, fmt, ...), is_int(got, want, fmt, ...), is_str(...),
 *   is_dbl(...), diag(fmt, ...), skip(n, why), skip_env(n, why), bail(...).
 * Every failure prints file:line and got/expected as TAP diagnostics.
 * Header-only: each test program includes it once.
 */
#ifndef LANE_TAP_H
#define LANE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Descriptions and diagnostics are printf formats the compiler checks. */
#define TAP_FMT(f, a) __attribute__((format(printf, f, a)))

static int tap_run;     /* tests run so far */
static int tap_failed;  /* tests failed so far */
static int tap_planned; /* planned count, 0 = none */

TAP_FMT(1, 0) static inline void tap_vdesc(const char *fmt, va_list ap) {
  if (fmt && *fmt) { fputs(" - ", stdout); vprintf(fmt, ap); }
  fputc('\n', stdout);
}

static inline void plan(int n) { tap_planned = n; printf("1..%d\n", n); }

TAP_FMT(1, 2) static inline void diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("# ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
}

/* Counts and prints one result line: "ok N - desc" or "not ok N - desc". */
TAP_FMT(4, 0) static inline int tap_result(int cond, const char *file, int line, const char *fmt,
                             va_list ap) {
  tap_run++;
  if (!cond) tap_failed++;
  printf("%sok %d", cond ? "" : "not ", tap_run);
  tap_vdesc(fmt, ap);
  if (!cond) printf("#   Failed test at %s line %d.\n", file, line);
  return cond;
}

TAP_FMT(4, 5) static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tap_result(cond, file, line, fmt, ap);
  va_end(ap);
  fflush(stdout);
  return cond;
}

TAP_FMT(5, 6) static inline int tap_is_int(long long got, long long want, const char *file, int line,
                             const char *fmt, ...) {
  va_list ap;
  int cond = got == want;
  va_start(ap, fmt);
  tap_result(cond, file, line, fmt, ap);
  va_end(ap);
  if (!cond) printf("#          got: %lld\n#     expected: %lld\n", got, want);
  fflush(stdout);
  return cond;
}

static inline void tap_show(const char *label, const char *s) {
  printf("#     %s: ", label);
  if (!s) { puts("(null)"); return; }
  fputc('\'', stdout);
  for (; *s; s++) {
    if (*s == '\n') fputs("\n#           ", stdout);
    else fputc(*s, stdout);
  }
  puts("'");
}

TAP_FMT(5, 6) static inline int tap_is_str(const char *got, const char *want, const char *file,
                             int line, const char *fmt, ...) {
  va_list ap;
  int cond = (got && want) ? strcmp(got, want) == 0 : got == want;
  va_start(ap, fmt);
  tap_result(cond, file, line, fmt, ap);
  va_end(ap);
  if (!cond) {
    tap_show("     got", got);
    tap_show("expected", want);
  }
  fflush(stdout);
  return cond;
}

TAP_FMT(6, 7) static inline int tap_is_dbl(double got, double want, double eps, const char *file,
                             int line, const char *fmt, ...) {
  va_list ap;
  double d = got - want;
  int cond = (d < 0 ? -d : d) <= eps;
  va_start(ap, fmt);
  tap_result(cond, file, line, fmt, ap);
  va_end(ap);
  if (!cond) printf("#          got: %.17g\n#     expected: %.17g\n", got, want);
  fflush(stdout);
  return cond;
}

/* Skips n tests for a reason of the build (e.g. a sanitizer owns malloc). */
static inline void skip(int n, const char *why) {
  while (n-- > 0) printf("ok %d # skip %s\n", ++tap_run, why);
}

/* Skips n tests because this machine lacks something the project does not
 * ship (a tool, a network). Said loudly on stderr; under LANE_CI=1 (set by
 * .ci/run, where everything is installed) it is a failure instead. */
static inline void skip_env(int n, const char *why) {
  const char *ci = getenv("LANE_CI");
  if (ci && *ci && strcmp(ci, "0") != 0) {
    while (n-- > 0) {
      tap_run++;
      tap_failed++;
      printf("not ok %d - skipped in CI: %s\n", tap_run, why);
    }
    return;
  }
  fprintf(stderr, "SKIPPED %d test%s: %s\n", n, n == 1 ? "" : "s", why);
  skip(n, why);
}

TAP_FMT(1, 2) static inline void bail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("Bail out! ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  exit(255);
}

static inline int done_testing(void) {
  if (!tap_planned) printf("1..%d\n", tap_run);
  else if (tap_planned != tap_run)
    diag("planned %d tests but ran %d", tap_planned, tap_run);
  return tap_failed || (tap_planned && tap_planned != tap_run) ? 1 : 0;
}

#define ok(cond, ...)           tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)  tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...)  tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_dbl(got, want, eps, ...) tap_is_dbl((got), (want), (eps), __FILE__, __LINE__, __VA_ARGS__)

#endif /* LANE_TAP_H */

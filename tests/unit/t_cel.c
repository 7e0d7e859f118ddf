/*
 * t_cel.c -- CEL conformance: the subset of google/cel-spec's tests that
 * lane supports, run through the whole pipeline.
 *
 * tests/cel/cases.tsv holds every conformance test (tests/cel/extract.py
 * made it from ../shared/data/cel/conformance.json), each marked with what
 * it expects or why lane skips it. For a supported case the expression
 * becomes the condition of a rule,
 *
 *   model m { input $1/Mtok output $1/Mtok }
 *   route r { when (EXPR) == (EXPECTED) -> m  otherwise -> m }
 *
 * (`when (EXPR)` when true is expected), compiled in-process, loaded,
 * decided on: it passes when rule 1 fires without run-time errors. An
 * expected error passes when evaluation fails: lane folds constants, so a
 * constant error is a compile error from folding, or a run-time error
 * (nerrors > 0); a type error counts only where CEL's own error is "no
 * such overload" (a checked CEL rejects those too). Cases CEL runs with its
 * checker off (disableCheck) are run too; where lane's checker rejects
 * them, the failure is reported apart, as expected behaviour.
 *
 * tests/cel/passing.txt lists the cases that pass today; each must keep
 * passing. Other supported cases are TODO tests (known failures, reported
 * with the reason); skipped cases are counted by reason.
 *
 *   build/tests/t_cel                 TAP
 *   build/tests/t_cel --update        rewrite tests/cel/passing.txt
 *   build/tests/t_cel --show NAME     print one case's policy and outcome
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"
#include "tap.h"

#define CASES "tests/cel/cases.tsv"
#define PASSING "tests/cel/passing.txt"

typedef struct cel_case {
  char *name;     /* suite/section/test */
  char *kind;     /* true, eq, nan, error or skip:WHY */
  char *want;     /* lane literal (eq) or CEL's error message (error) */
  char *expr;     /* the CEL expression */
  int   unchecked;/* CEL runs it with its type checker off */
  int   listed;   /* in passing.txt */
  int   passed;   /* passed this run */
} cel_case;

typedef struct outcome {
  int  pass;            /* the case holds */
  char stage[16];       /* syntax, check, fold, verify, decide, runtime, value, ok */
  char msg[256];        /* first diagnostic, or what was computed */
} outcome;

static cel_case *cases;
static int ncases;

/* ---- reading the data ---- */

static char *unescape(char *s) {
  char *o = s, *r = s;
  for (; *r; r++) {
    if (*r != '\\' || !r[1]) { *o++ = *r; continue; }
    r++;
    if (*r == 'x' && r[1] && r[2]) {   /* \xHH: a control character */
      char hex[3] = {r[1], r[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      r += 2;
      continue;
    }
    *o++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r == 'r' ? '\r' : *r;
  }
  *o = 0;
  return s;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}

static int read_cases(char *text) {
  int cap = 0;
  for (char *line = text, *next; line && *line; line = next) {
    char *f[4];
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    f[0] = line;
    for (int i = 1; i < 4; i++) {
      f[i] = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
      if (f[i]) *f[i]++ = 0;
    }
    if (!f[3]) return -1;
    if (ncases == cap) {
      cap = cap ? cap * 2 : 1024;
      cases = realloc(cases, (size_t)cap * sizeof *cases);
      if (!cases) return -1;
    }
    cel_case *c = &cases[ncases++];
    memset(c, 0, sizeof *c);
    c->name = f[0];
    c->kind = f[1];
    {
      char *comma = strchr(f[1], ',');
      if (comma && !strcmp(comma, ",unchecked")) { *comma = 0; c->unchecked = 1; }
    }
    c->want = unescape(f[2]);
    c->expr = unescape(f[3]);
  }
  return ncases;
}

static cel_case *find_case(const char *name) {
  for (int i = 0; i < ncases; i++)
    if (strcmp(cases[i].name, name) == 0) return &cases[i];
  return NULL;
}

/* ---- running one case ---- */

static int is_skip(const cel_case *c) { return strncmp(c->kind, "skip:", 5) == 0; }

static void policy(const cel_case *c, char *src, size_t n) {
  const char *head = "model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when (\n";
  const char *tail = "  otherwise -> m\n}\n";
  if (!strcmp(c->kind, "true"))
    snprintf(src, n, "%s%s\n) -> m\n%s", head, c->expr, tail);
  else if (!strcmp(c->kind, "eq"))
    snprintf(src, n, "%s%s\n) == (%s) -> m\n%s", head, c->expr, c->want, tail);
  else   /* nan: x != x; error: x == x, which fails if x does */
    snprintf(src, n, "%s%s\n) %s (\n%s\n) -> m\n%s", head, c->expr,
             !strcmp(c->kind, "nan") ? "!=" : "==", c->expr, tail);
}

static void first_diag(const sema_unit *u, outcome *o, const char *stage) {
  snprintf(o->stage, sizeof o->stage, "%s", stage);
  for (int i = 0; i < u->ctx.ndiags; i++)
    if (u->ctx.diags[i].level == DIAG_ERROR) {
      snprintf(o->msg, sizeof o->msg, "%s", u->ctx.diags[i].msg);
      return;
    }
  snprintf(o->msg, sizeof o->msg, "(no message)");
}

/* What lane computes for the expression, for a wrong-value report. */
static void show_value(sema_unit *u, outcome *o) {
  ev_env env = {u, -1, NULL, NULL, NULL, NULL, 0};
  const ast_node *cond = u->routes[0].rules.v[0]->a;
  char buf[200];
  if (cond->kind == N_BINARY && (cond->op == OP_EQ || cond->op == OP_NE)) cond = cond->a;
  ev_val v = ev_eval(&env, cond);
  snprintf(o->msg, sizeof o->msg, "got %s", ev_show(u, &v, buf, sizeof buf));
}

static int mentions_overload(const char *s) { return strstr(s, "overload") != NULL; }

static outcome run_case(const cel_case *c, char *src, size_t srcn) {
  outcome o;
  sema_unit u;
  unsigned char *b = NULL;
  size_t n = 0;
  lane_program *p = NULL;
  int err_expected = !strcmp(c->kind, "error");
  memset(&o, 0, sizeof o);
  policy(c, src, srcn);
  sema_init(&u, NULL);
  if (sema_load(&u, "cel.lane", src) != 0) {
    first_diag(&u, &o, "syntax");
  } else if (sema_check(&u) != 0) {
    first_diag(&u, &o, "check");
    o.pass = err_expected && mentions_overload(c->want);
  } else if (emit_program(&u, &b, &n) != 0) {
    first_diag(&u, &o, "fold");
    o.pass = err_expected;
  } else {
    lane_error err;
    p = lane_load(b, n, &err);
    if (!p) {
      snprintf(o.stage, sizeof o.stage, "verify");
      snprintf(o.msg, sizeof o.msg, "%s", err.message);
    } else {
      lane_runtime *rt = lane_runtime_new(p, &err);
      lane_request r;
      lane_decision d;
      int rc;
      lane_request_init(&r, p);
      rc = rt ? lane_decide(rt, "r", &r, &d) : LANE_ENOMEM;
      if (rc != LANE_OK) {
        snprintf(o.stage, sizeof o.stage, "decide");
        snprintf(o.msg, sizeof o.msg, "%s", lane_status_name(rc));
      } else if (d.nerrors > 0) {
        snprintf(o.stage, sizeof o.stage, "runtime");
        snprintf(o.msg, sizeof o.msg, "run-time error at line %d", d.error_line);
        o.pass = err_expected;
      } else if (err_expected) {
        snprintf(o.stage, sizeof o.stage, "value");
        snprintf(o.msg, sizeof o.msg, "no error (rule %d)", d.rule);
      } else if (d.rule != 1) {
        snprintf(o.stage, sizeof o.stage, "value");
        show_value(&u, &o);
      } else {
        snprintf(o.stage, sizeof o.stage, "ok");
        o.pass = 1;
      }
      lane_runtime_free(rt);
      lane_program_free(p);
    }
  }
  free(b);
  sema_free(&u);
  return o;
}

/* ---- failure reasons ---- */

typedef struct reason {
  char text[160];     /* stage: message with names and numbers blanked */
  int  count;
  const cel_case *example;
  char detail[256];   /* the example's full message */
} reason;

static reason reasons[512];
static int nreasons;

/* "unknown function 'foo'" -> "unknown function '…'"; digits -> N. */
static void normalize(const cel_case *c, const outcome *o, char *out, size_t n) {
  size_t len = (size_t)snprintf(out, n, "%s%s: ",
                                c->unchecked && !strcmp(o->stage, "check") ?
                                "unchecked in CEL, rejected by lane's " : "", o->stage);
  int inq = 0;
  if (!strcmp(o->stage, "value")) {
    snprintf(out + len, n - len, "wrong value%s",
             strncmp(o->msg, "no error", 8) == 0 ? " (expected an error)" : "");
    return;
  }
  for (const char *s = o->msg; *s && len + 4 < n; s++) {
    if (*s == '\'') {
      if (!inq) { memcpy(out + len, "'...'", 5); len += 5; }
      inq = !inq;
      continue;
    }
    if (inq) continue;
    if (*s >= '0' && *s <= '9') {
      if (len == 0 || out[len - 1] != 'N') out[len++] = 'N';
      continue;
    }
    out[len++] = *s;
  }
  out[len] = 0;
}

static void count_reason(const cel_case *c, const outcome *o) {
  char key[160];
  int i;
  normalize(c, o, key, sizeof key);
  for (i = 0; i < nreasons; i++)
    if (!strcmp(reasons[i].text, key)) break;
  if (i == nreasons) {
    if (nreasons == (int)(sizeof reasons / sizeof *reasons)) return;
    snprintf(reasons[i].text, sizeof reasons[i].text, "%s", key);
    reasons[i].example = c;
    snprintf(reasons[i].detail, sizeof reasons[i].detail, "%s", o->msg);
    nreasons++;
  }
  reasons[i].count++;
}

static int by_count(const void *a, const void *b) {
  return ((const reason *)b)->count - ((const reason *)a)->count;
}

/* ---- per-suite and per-skip counts ---- */

typedef struct tally { char name[64]; int total, supported, passed, skipped; } tally;
static tally suites[64];
static int nsuites;
static tally skips[128];
static int nskips;

static tally *tally_of(tally *t, int *n, int max, const char *name, size_t len) {
  for (int i = 0; i < *n; i++)
    if (strlen(t[i].name) == len && !strncmp(t[i].name, name, len)) return &t[i];
  if (*n == max) return &t[max - 1];
  snprintf(t[*n].name, sizeof t[*n].name, "%.*s", (int)len, name);
  return &t[(*n)++];
}

static void todo(int cond, const char *name, const char *why) {
  printf("%sok %d - %s # TODO %s\n", cond ? "" : "not ", ++tap_run, name, why);
}

/* Writes s on one line (newlines as spaces), for diagnostics. */
static void one_line(FILE *f, const char *s) {
  for (; *s; s++) fputc(*s == '\n' ? ' ' : *s, f);
}

int main(int argc, char **argv) {
  char *text = slurp(CASES), *listed;
  static char src[1 << 16];
  int update = argc > 1 && !strcmp(argv[1], "--update");
  int total_supported = 0, total_passed = 0, regressions = 0, newly = 0;
  if (!text) bail("cannot read %s (run from the top of the repository)", CASES);
  if (read_cases(text) < 1000) bail("%s: malformed", CASES);

  if (argc > 2 && !strcmp(argv[1], "--show")) {
    cel_case *c = find_case(argv[2]);
    if (!c) bail("no case %s", argv[2]);
    if (is_skip(c)) { printf("%s: %s\n", c->name, c->kind); return 0; }
    outcome o = run_case(c, src, sizeof src);
    printf("%s\n%s: %s (%s)\n", src, o.pass ? "pass" : "FAIL", o.stage, o.msg);
    return 0;
  }

  /* The harness itself: wrong expectations must fail. */
  {
    static const struct { const char *kind, *want, *expr; int pass; } ctl[] = {
      {"eq", "3", "1 + 1", 0}, {"eq", "2", "1 + 1", 1}, {"true", "", "1 > 2", 0},
      {"eq", "\"b\"", "'a'", 0}, {"eq", "false", "true", 0}, {"nan", "", "1.0", 0},
      {"nan", "", "0.0 / 0.0", 1}, {"error", "", "1 + 1", 0}, {"error", "", "1 / 0", 1},
      {"error", "overload", "'a' + 1", 1}, {"error", "", "'a' + 1", 0},
      {"eq", "1", "1 +", 0},
    };
    for (size_t i = 0; i < sizeof ctl / sizeof *ctl; i++) {
      cel_case c;
      memset(&c, 0, sizeof c);
      c.name = "control";
      c.kind = (char *)ctl[i].kind;
      c.want = (char *)ctl[i].want;
      c.expr = (char *)ctl[i].expr;
      outcome o = run_case(&c, src, sizeof src);
      if (!update)
        is_int(o.pass, ctl[i].pass, "control: %s %s %s %s", ctl[i].expr, ctl[i].kind,
               ctl[i].want, ctl[i].pass ? "passes" : "fails");
    }
  }

  listed = slurp(PASSING);
  if (!listed && !update) bail("cannot read %s", PASSING);
  {
    int unknown = 0;
    for (char *line = listed, *next; line && *line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      if (!*line || *line == '#') continue;
      cel_case *c = find_case(line);
      if (c) c->listed = 1;
      else { unknown++; diag("passing.txt names an unknown case: %s", line); }
    }
    if (!update) is_int(unknown, 0, "every case in %s is in %s", PASSING, CASES);
  }

  for (int i = 0; i < ncases; i++) {
    cel_case *c = &cases[i];
    const char *slash = strchr(c->name, '/');
    tally *s = tally_of(suites, &nsuites, 64, c->name, slash ? (size_t)(slash - c->name) : strlen(c->name));
    s->total++;
    if (is_skip(c)) {
      s->skipped++;
      tally_of(skips, &nskips, 128, c->kind + 5, strlen(c->kind + 5))->total++;
      if (c->listed) { ok(0, "%s is listed as passing but is skipped", c->name); regressions++; }
      continue;
    }
    s->supported++;
    total_supported++;
    outcome o = run_case(c, src, sizeof src);
    c->passed = o.pass;
    if (o.pass) { s->passed++; total_passed++; }
    else count_reason(c, &o);
    if (update) continue;
    if (c->listed) {
      if (!ok(o.pass, "%s", c->name)) {
        regressions++;
        diag("  %s: %s", o.stage, o.msg);
        fputs("#   expr: ", stdout);
        one_line(stdout, c->expr);
        fputc('\n', stdout);
      }
    } else {
      char why[320];
      snprintf(why, sizeof why, "lane: %s: %s", o.stage, o.msg);
      for (char *q = why; *q; q++) if (*q == '\n' || *q == '#') *q = ' ';
      todo(o.pass, c->name, o.pass ? "now passes: add it to tests/cel/passing.txt" : why);
      newly += o.pass;
    }
  }

  for (int i = 0; i < nsuites; i++)
    diag("%-16s %4d tests: %3d supported, %3d pass (%d%%), %4d skipped", suites[i].name,
         suites[i].total, suites[i].supported, suites[i].passed,
         suites[i].supported ? 100 * suites[i].passed / suites[i].supported : 100,
         suites[i].skipped);
  diag("all              %4d tests: %3d supported, %3d pass (%d%%), %4d skipped", ncases,
       total_supported, total_passed,
       total_supported ? 100 * total_passed / total_supported : 100, ncases - total_supported);
  diag("skipped, by reason:");
  for (int i = 0; i < nskips; i++) diag("  %4d %s", skips[i].total, skips[i].name);
  qsort(reasons, (size_t)nreasons, sizeof *reasons, by_count);
  diag("failures among supported cases, by reason:");
  for (int i = 0; i < nreasons; i++) {
    printf("#   %4d %s\n#          e.g. %s: ", reasons[i].count, reasons[i].text,
           reasons[i].example->name);
    one_line(stdout, reasons[i].example->expr);
    printf("  [%s]\n", reasons[i].detail);
  }
  if (newly) diag("%d supported cases pass that passing.txt does not list "
                  "(build/tests/t_cel --update)", newly);

  if (update) {
    FILE *f = fopen(PASSING, "w");
    if (!f) bail("cannot write %s", PASSING);
    fprintf(f, "# CEL conformance cases lane passes (t_cel --update); each must keep passing.\n");
    for (int i = 0; i < ncases; i++)
      if (cases[i].passed) fprintf(f, "%s\n", cases[i].name);
    fclose(f);
    diag("wrote %s: %d cases", PASSING, total_passed);
    ok(1, "updated");
  }
  (void)regressions;
  free(listed);
  free(cases);
  free(text);
  return done_testing();
}

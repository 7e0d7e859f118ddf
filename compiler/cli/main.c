/*
 * main.c -- the lane command.
 *
 * Its commands and options are usage_text below; doc/lane.1 documents the
 * same ones (tests/cli/docs.sh checks that the two, and the options
 * parse_args accepts, agree).
 *
 * Exit codes: 0 ok, 1 findings (policy errors, failed tests, no rule
 * matched), 2 usage or input errors.
 */
#include "sema.h"
#include "builtins.h"
#include "sem.h"
#include "bundle_cmd.h"
#include "catalog.h"
#include "disasm.h"
#include "explain_json.h"
#include "fmt.h"
#include "lint_out.h"
#include "convert.h"
#include "replay.h"
#include "state.h"

#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FINDINGS 1
#define EXIT_USAGE 2

static const char usage_text[] =
  "usage: lane COMMAND [options] FILE...\n"
  "\n"
  "commands:\n"
  "  compile POLICY.lane [-o OUT.lanec]   compile to verified bytecode\n"
  "  check   POLICY.lane...               parse and type-check only\n"
  "  fmt     POLICY.lane... [--check] [--diff]\n"
  "                                       rewrite in the canonical layout; --check lists\n"
  "                                       files that would change, --diff shows how\n"
  "  lint    POLICY.lane [--enable ID]... [--disable ID]... [--format text|json|sarif]\n"
  "                                       find likely mistakes; see compiler/lints/README.md\n"
  "  test    POLICY.lane [--tap] [--coverage] [--threshold P]\n"
  "                                       run the test blocks of the policy and of\n"
  "                                       POLICY_test.lane beside it\n"
  "  disasm  FILE.lanec|POLICY.lane       show header, sections, models and code\n"
  "  build   POLICY.lane [-o OUT.bundle] [--sign KEY] [--revision R] [--tests FILE]\n"
  "                                       compile, run the tests (of --tests FILE, else of\n"
  "                                       POLICY_test.lane beside it; all must pass) and\n"
  "                                       write a bundle: program, manifest, every source\n"
  "                                       file and snapshot; --sign signs it with a secret\n"
  "                                       key from keygen; --revision names it\n"
  "  inspect FILE.bundle [--key KEY.pub] [--test] [--format text|json]\n"
  "                                       show a bundle's manifest, files and signature;\n"
  "                                       --key requires a valid signature by that key;\n"
  "                                       --test compiles its sources again and runs its\n"
  "                                       tests, as a host does before using it\n"
  "  keygen  -o NAME                      write a signing key pair: NAME.key (secret,\n"
  "                                       mode 0600) and NAME.pub\n"
  "  eval    FILE.lanec|POLICY.lane [--route NAME] [--format json|text] [--explain]\n"
  "          [--state SNAPSHOT.json] [--now TIME] [--ignore-unknown]\n"
  "          [--log FILE [--log-key FILE]] REQUESTS...\n"
  "                                       decide for flat JSON requests: each REQUESTS is a\n"
  "                                       file (or - for stdin) of one object or JSON Lines;\n"
  "                                       --route may be left out when there is one route;\n"
  "                                       --state replays a runtime snapshot; --now sets the\n"
  "                                       clock (and `now`), an RFC 3339 time; --explain shows\n"
  "                                       each rule tried and why; --log appends a decision\n"
  "                                       record per request (sensitive fields hashed with\n"
  "                                       the 16-byte key in --log-key's file)\n"
  "  replay  POLICY LOG... [--against OLD] [--route NAME] [--format text|json] [--top N]\n"
  "          [--chart FILE.svg]\n"
  "                                       decide logged traffic again with the logged live\n"
  "                                       state: the policy that wrote the log must\n"
  "                                       reproduce it (exit 1 if not); cost, rule and\n"
  "                                       model mix, outcomes; --against: what changes\n"
  "  diff    OLD NEW TRAFFIC... [--max-changed P] [--max-cost-increase P] [--route NAME]\n"
  "          [--format text|json] [--top N] [--chart FILE.svg]\n"
  "                                       the same comparison for a policy change on any\n"
  "                                       traffic (logs or JSON Lines of requests); exit 1\n"
  "                                       when a gate (percent) fails; --chart draws cost\n"
  "                                       and model mix over time, old against new\n"
  "  eval    --expr EXPR [POLICY.lane] [REQUESTS...]\n"
  "                                       the value of an expression, e.g.\n"
  "                                       --expr 'bucket(\"u-1268\")'; on each request\n"
  "                                       when it reads request fields\n"
  "  convert trace TRACE.csv... [--set FIELD=VALUE]... [--users N] [-o OUT]\n"
  "                                       a trace (TIMESTAMP,ContextTokens,GeneratedTokens)\n"
  "                                       as request records: arrival times, token sizes;\n"
  "                                       --set and --users give the fields it lacks\n"
  "  convert body POLICY BODY.json... [-o OUT]\n"
  "                                       OpenAI or Anthropic request bodies as request\n"
  "                                       records of the policy's fields\n"
  "  catalog import FILE.json -o DIR [--provider P]...\n"
  "                                       LiteLLM price catalog -> one module per provider\n"
  "  catalog fetch URL -o FILE [--timeout-ms N] [--max-bytes N] [--force]\n"
  "                                       download a catalog (http/https, ETag-aware);\n"
  "                                       FILE is replaced only by a valid catalog with at\n"
  "                                       least half its model entries (or --force)\n"
  "  catalog diff OLD.json NEW.json [--format keys|lane] [--provider P]...\n"
  "                                       entries added, removed, changed (prices, limits,\n"
  "                                       capabilities, dates); lane: as lane models\n"
  "  builtins [--opcodes]                 list builtin functions, or the bytecode's\n"
  "                                       opcodes (Markdown)\n"
  "  version                              print the version (also --version)\n"
  "\n"
  "options:\n"
  "  -I DIR        also look for imports in DIR (std/ is the standard library)\n"
  "  -o PATH       output: compile's file (default: POLICY.lanec), build's bundle\n"
  "                (default: POLICY.bundle), keygen's key names, catalog import's\n"
  "                directory, catalog fetch's file\n"
  "  --max-errors N  report at most N errors (default 20)\n"
  "  -O0           compile without optimisations (no folding, no rule index)\n"
  "  -h, --help    print this text (also: lane help)\n"
  "\n"
  "exit codes: 0 ok, 1 findings or failed tests, 2 usage or input errors\n";

/* The command line. Every list holds any number of arguments: each array
 * has room for all of argv (parse_args allocates them). */
typedef struct cli {
  const char *cmd;          /* subcommand */
  const char **files;       /* positional arguments */
  int         nfiles;
  const char *out;          /* -o */
  const char *route;        /* --route */
  const char *format;       /* --format */
  const char *state;        /* --state, for eval */
  const char *now;          /* --now RFC3339, for eval: the clock, and `now` */
  int         tap;          /* --tap, for test */
  int         coverage;     /* --coverage, for test */
  double      threshold;    /* --threshold P, for test */
  int         explain;      /* --explain, for eval */
  const char *expr;         /* --expr EXPR, for eval */
  int         ignore_unknown; /* --ignore-unknown, for eval */
  int         check, diff;  /* --check, --diff, for fmt */
  const char **providers;   /* --provider, for catalog import and diff */
  const char **enable;      /* --enable ID, for lint */
  const char **disable;     /* --disable ID, for lint */
  const char **include;     /* -I DIR (c->opts.include points here) */
  int         nenable, ndisable;
  int         nproviders;
  sema_opts   opts;         /* -I, --max-errors */
  long        timeout_ms;   /* --timeout-ms, for catalog fetch */
  long        max_bytes;    /* --max-bytes, for catalog fetch */
  int         force;        /* --force, for catalog fetch */
  int         opcodes;      /* --opcodes, for builtins */
  const char *log;          /* --log FILE, for eval */
  const char *log_key;      /* --log-key FILE, for eval */
  const char *against;      /* --against OLD, for replay */
  double      max_changed;  /* --max-changed P, for diff; < 0 none */
  double      max_cost_up;  /* --max-cost-increase P, for diff; < 0 none */
  long        top;          /* --top N, for replay and diff */
  const char **sets;        /* --set FIELD=VALUE, for convert trace */
  int         nsets;
  long        users;        /* --users N, for convert trace */
  const char *chart;        /* --chart FILE.svg, for replay and diff */
  const char *sign;         /* --sign KEY, for build */
  const char *revision;     /* --revision R, for build */
  const char *tests;        /* --tests FILE, for build */
  const char *key;          /* --key KEY.pub, for inspect */
  int         test;         /* --test, for inspect */
} cli;

static int usage(const char *msg) {
  if (msg) fprintf(stderr, "lane: %s\n", msg);
  fputs(usage_text, stderr);
  return EXIT_USAGE;
}

static void free_args(cli *c) {
  free(c->files);
  free(c->providers);
  free(c->enable);
  free(c->disable);
  free(c->include);
  free(c->sets);
}

/* A whole-number option's value, from lo to hi: 0 with *out set, or -1
 * after saying what it needs. */
static int count_option(const char *opt, const char *val, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(val, &end, 10);
  if (errno || end == val || *end || v < lo || v > hi) {
    if (hi == LONG_MAX)
      fprintf(stderr, "lane: %s needs a whole number of at least %ld, not '%s'\n", opt, lo, val);
    else
      fprintf(stderr, "lane: %s needs a whole number from %ld to %ld, not '%s'\n", opt, lo, hi,
              val);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_args(cli *c, int argc, char **argv) {
  memset(c, 0, sizeof *c);
  c->cmd = argv[1];
  c->max_changed = c->max_cost_up = -1;
  c->top = 20;
  size_t room = (size_t)argc;
  c->files = calloc(room, sizeof *c->files);
  c->providers = calloc(room, sizeof *c->providers);
  c->enable = calloc(room, sizeof *c->enable);
  c->disable = calloc(room, sizeof *c->disable);
  c->include = calloc(room, sizeof *c->include);
  c->sets = calloc(room, sizeof *c->sets);
  c->opts.include = c->include;
  if (!c->files || !c->providers || !c->enable || !c->disable || !c->include || !c->sets) {
    fprintf(stderr, "lane: out of memory reading %d arguments\n", argc);
    return -1;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-o") || !strcmp(a, "--route") || !strcmp(a, "--format") ||
        !strcmp(a, "-I") || !strcmp(a, "--max-errors") || !strcmp(a, "--provider") ||
        !strcmp(a, "--state") || !strcmp(a, "--enable") || !strcmp(a, "--disable") ||
        !strcmp(a, "--timeout-ms") || !strcmp(a, "--max-bytes") || !strcmp(a, "--expr") ||
        !strcmp(a, "--log") || !strcmp(a, "--log-key") || !strcmp(a, "--against") ||
        !strcmp(a, "--max-changed") || !strcmp(a, "--max-cost-increase") || !strcmp(a, "--top") ||
        !strcmp(a, "--set") || !strcmp(a, "--users") || !strcmp(a, "--chart") ||
        !strcmp(a, "--sign") || !strcmp(a, "--revision") || !strcmp(a, "--tests") ||
        !strcmp(a, "--key") || !strcmp(a, "--now")) {
      if (!val) { fprintf(stderr, "lane: %s needs a value\n", a); return -1; }
      i++;
      if (!strcmp(a, "-o")) c->out = val;
      else if (!strcmp(a, "--route")) c->route = val;
      else if (!strcmp(a, "--format")) c->format = val;
      else if (!strcmp(a, "--state")) c->state = val;
      else if (!strcmp(a, "--now")) c->now = val;
      else if (!strcmp(a, "--expr")) c->expr = val;
      else if (!strcmp(a, "--log")) c->log = val;
      else if (!strcmp(a, "--log-key")) c->log_key = val;
      else if (!strcmp(a, "--against")) c->against = val;
      else if (!strcmp(a, "--chart")) c->chart = val;
      else if (!strcmp(a, "--sign")) c->sign = val;
      else if (!strcmp(a, "--revision")) c->revision = val;
      else if (!strcmp(a, "--tests")) c->tests = val;
      else if (!strcmp(a, "--key")) c->key = val;
      else if (!strcmp(a, "--set")) {
        const char *eq = strchr(val, '=');
        if (!eq || eq == val || eq - val >= 128) {
          fprintf(stderr, "lane: --set needs FIELD=VALUE (a field name of 1 to 127 bytes), not '%s'\n", val);
          return -1;
        }
        c->sets[c->nsets++] = val;
      }
      else if (!strcmp(a, "--users")) {
        if (count_option(a, val, 1, 1000000000, &c->users)) return -1;
      }
      else if (!strcmp(a, "--max-changed") || !strcmp(a, "--max-cost-increase")) {
        char *end;
        double v = strtod(val, &end);
        if (end == val || (*end && strcmp(end, "%")) || !(v >= 0)) {
          fprintf(stderr, "lane: %s needs a percentage (e.g. 5 or 5%%), not '%s'\n", a, val);
          return -1;
        }
        if (!strcmp(a, "--max-changed")) c->max_changed = v;
        else c->max_cost_up = v;
      }
      else if (!strcmp(a, "--enable")) c->enable[c->nenable++] = val;
      else if (!strcmp(a, "--disable")) c->disable[c->ndisable++] = val;
      else if (!strcmp(a, "--max-errors")) c->opts.max_errors = atoi(val);
      else if (!strcmp(a, "--timeout-ms") || !strcmp(a, "--max-bytes")) {
        if (count_option(a, val, 1, LONG_MAX, !strcmp(a, "--timeout-ms") ? &c->timeout_ms
                                                                          : &c->max_bytes))
          return -1;
      } else if (!strcmp(a, "--top")) {
        if (count_option(a, val, 0, 1000000, &c->top)) return -1;
      }
      else if (!strcmp(a, "--provider")) c->providers[c->nproviders++] = val;
      else c->include[c->opts.ninclude++] = val;
    } else if (!strcmp(a, "--explain")) {
      c->explain = 1;
    } else if (!strcmp(a, "--force")) {
      c->force = 1;
    } else if (!strcmp(a, "--test")) {
      c->test = 1;
    } else if (!strcmp(a, "--opcodes")) {
      c->opcodes = 1;
    } else if (!strcmp(a, "--ignore-unknown")) {
      c->ignore_unknown = 1;
    } else if (!strcmp(a, "-O0")) {
      c->opts.no_opt = 1;
    } else if (!strcmp(a, "--check")) {
      c->check = 1;
    } else if (!strcmp(a, "--diff")) {
      c->diff = 1;
    } else if (!strcmp(a, "--tap")) {
      c->tap = 1;
    } else if (!strcmp(a, "--coverage")) {
      c->coverage = 1;
    } else if (!strcmp(a, "--threshold") && val) {
      c->threshold = atof(val);
      c->coverage = 1;
      i++;
    } else if (!strncmp(a, "-I", 2) && a[2]) {
      c->include[c->opts.ninclude++] = a + 2;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "lane: unknown option '%s'\n", a);
      return -1;
    } else {
      c->files[c->nfiles++] = a;
    }
  }
  return 0;
}

/* ---- compiling ---- */

/* Compiles path (lanec.h) into *r, which the caller frees. Diagnostics go
 * to stderr. 0 ok, 1 errors. */
static int compile(lanec_result *r, const cli *c, const char *path) {
  int rc = lanec_compile(path, NULL, &c->opts, r) != LANEC_OK;
  lanec_print_diags(r, stderr);
  return rc;
}

/* Writes path atomically: a temporary file beside it, flushed to disk, then
 * renamed over it, so a failed or interrupted write leaves the previous
 * file as it was. -1 with errno set on failure. */
static int write_file(const char *path, const unsigned char *b, size_t n) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 16);
  if (!tmp) { errno = ENOMEM; return -1; }
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) { int e = errno; free(tmp); errno = e; return -1; }
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, b + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  int rc = done == n && fchmod(fd, 0644) == 0 && fsync(fd) == 0 ? 0 : -1;
  int e = errno;
  if (close(fd) != 0 && rc == 0) { rc = -1; e = errno; }
  if (rc == 0 && rename(tmp, path) != 0) { rc = -1; e = errno; }
  if (rc != 0) unlink(tmp);
  free(tmp);
  errno = e;
  return rc;
}

/* Reads a whole stream; NULL with errno set when reading fails or memory
 * runs out (never a silently short result). */
static unsigned char *read_stream(FILE *f, size_t *n) {
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  while (b) {
    len += fread(b + len, 1, cap - len, f);
    if (ferror(f)) { int e = errno; free(b); errno = e ? e : EIO; return NULL; }
    if (len < cap) break;
    unsigned char *nb = realloc(b, cap * 2);
    if (!nb) { free(b); errno = ENOMEM; return NULL; }
    b = nb;
    cap *= 2;
  }
  if (!b) errno = ENOMEM;
  *n = len;
  return b;
}

/* A whole file. A policy or a program must be a regular file (a FIFO would
 * block); request files may be pipes too (lane eval <(...)). */
static unsigned char *read_bytes(const char *path, size_t *n, int regular_only) {
  FILE *f = regular_only ? ast_fopen_regular(path) : fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *b = read_stream(f, n);
  int e = errno;
  fclose(f);
  errno = e;
  return b;
}

static int is_lanec(const unsigned char *b, size_t n) {
  return n >= 8 && memcmp(b, BC_MAGIC, 8) == 0;
}

/* Loads a .lanec, or compiles a .lane, into a verified program (verified
 * once). With keep, a compiled policy's result stays alive there (for
 * explanations); keep->unit is NULL when the input was bytecode. */
static lane_program *load_program_keep(const cli *c, const char *path, int *rc,
                                       lanec_result *keep) {
  size_t n = 0;
  unsigned char *b = read_bytes(path, &n, 1);
  if (!b) {
    fprintf(stderr, "lane: cannot read '%s': %s\n", path, ast_strerror(errno));
    *rc = EXIT_USAGE;
    return NULL;
  }
  if (keep) memset(keep, 0, sizeof *keep);
  if (!is_lanec(b, n)) {
    free(b);
    lanec_result own = {0}, *r = keep ? keep : &own;
    int bad = compile(r, c, path);
    lane_program *p = r->prog;
    r->prog = NULL;
    if (!keep || bad) lanec_result_free(r);
    if (bad) *rc = EXIT_FINDINGS;
    return p;
  }
  lane_error err;
  lane_program *p = lane_load(b, n, &err);
  free(b);
  if (!p) {
    fprintf(stderr, "lane: %s: %s\n", path, err.message);
    *rc = EXIT_USAGE;
  }
  return p;
}

static lane_program *load_program(const cli *c, const char *path, int *rc) {
  return load_program_keep(c, path, rc, NULL);
}

static int cmd_compile(const cli *c) {
  if (c->nfiles != 1) return usage("compile takes one policy file");
  const char *src = c->files[0];
  char outbuf[4096];
  const char *out = c->out;
  if (!out) {
    size_t len = strlen(src);
    if (len > 5 && !strcmp(src + len - 5, ".lane")) len -= 5;
    snprintf(outbuf, sizeof outbuf, "%.*s.lanec", (int)len, src);
    out = outbuf;
  }
  lanec_result r;   /* its bytes were loaded and verified, once */
  int rc = compile(&r, c, src) ? EXIT_FINDINGS : 0;
  if (!rc && write_file(out, r.bytes, r.nbytes) != 0) {
    fprintf(stderr, "lane: cannot write '%s': %s\n", out, strerror(errno));
    rc = EXIT_USAGE;
  }
  lanec_result_free(&r);
  return rc;
}

/* Checking is compiling without writing: folding finds constant errors. */
static int cmd_check(const cli *c) {
  if (c->nfiles < 1) return usage("check takes policy files");
  int rc = 0;
  for (int i = 0; i < c->nfiles; i++) {
    lanec_result r;
    if (compile(&r, c, c->files[i])) rc = EXIT_FINDINGS;
    lanec_result_free(&r);
  }
  return rc;
}

/* NAME_test.lane beside NAME.lane, if there is one. */
static int test_file(const char *policy, char *buf, size_t n) {
  size_t len = strlen(policy);
  if (len > 5 && !strcmp(policy + len - 5, ".lane")) len -= 5;
  snprintf(buf, n, "%.*s_test.lane", (int)len, policy);
  struct stat st;   /* stat, not open: opening a FIFO would block */
  return stat(buf, &st) == 0;
}

static int cmd_test(const cli *c) {
  if (c->nfiles != 1) return usage("test takes one policy file");
  char extra[4096];
  lanec_opts opts = c->opts;
  if (test_file(c->files[0], extra, sizeof extra)) opts.tests = extra;
  lanec_result r;
  int rc = lanec_compile(c->files[0], NULL, &opts, &r) == LANEC_OK ? 0 : EXIT_FINDINGS;
  lanec_print_diags(&r, stderr);
  if (rc == 0) {
    test_opts o = {c->tap, c->coverage, c->threshold, 0, 1, state_runtime_bytes};
    rc = sema_run_tests_with(r.unit, r.prog, &o, stdout) ? EXIT_FINDINGS : 0;
  }
  lanec_result_free(&r);
  return rc;
}

/* lane build POLICY.lane [-o OUT.bundle] [--sign KEY] [--revision R] [--tests FILE] */
static int cmd_build(const cli *c) {
  if (c->nfiles != 1) return usage("build takes one policy file");
  const char *src = c->files[0];
  char outbuf[4096], extra[4096];
  const char *out = c->out;
  if (!out) {
    size_t len = strlen(src);
    if (len > 5 && !strcmp(src + len - 5, ".lane")) len -= 5;
    snprintf(outbuf, sizeof outbuf, "%.*s.bundle", (int)len, src);
    out = outbuf;
  }
  lanec_opts opts = c->opts;
  if (c->tests) opts.tests = c->tests;
  else if (test_file(src, extra, sizeof extra)) opts.tests = extra;
  build_args a = {src, &opts, c->sign, c->revision};
  unsigned char *b = NULL;
  size_t n = 0;
  int rc = build_bundle(&a, &b, &n, stdout, stderr);
  if (!rc && write_file(out, b, n) != 0) {
    fprintf(stderr, "lane: cannot write '%s': %s\n", out, strerror(errno));
    rc = EXIT_USAGE;
  }
  if (!rc) printf("wrote %s (%zu bytes)\n", out, n);
  free(b);
  return rc;
}

/* lane inspect FILE.bundle [--key KEY.pub] [--test] [--format text|json] */
static int cmd_inspect(const cli *c) {
  if (c->nfiles != 1) return usage("inspect takes one bundle");
  if (c->format && strcmp(c->format, "text") && strcmp(c->format, "json"))
    return usage("--format is text or json");
  return inspect_bundle(c->files[0], c->key, c->test, c->format, stdout, stderr);
}

/* lane keygen -o NAME */
static int cmd_keygen(const cli *c) {
  if (c->nfiles || !c->out) return usage("keygen takes -o NAME (and writes NAME.key, NAME.pub)");
  return keygen_command(c->out, stdout, stderr);
}

static int cmd_disasm(const cli *c) {
  if (c->nfiles != 1) return usage("disasm takes one file");
  int rc = 0;
  lane_program *p = load_program(c, c->files[0], &rc);
  if (!p) return rc;
  size_t n = 0;
  unsigned char *text = read_bytes(c->files[0], &n, 1);
  if (text && !is_lanec(text, n)) {   /* a policy: show its lines beside the code */
    unsigned char *t = realloc(text, n + 1);
    if (t) { t[n] = 0; text = t; } else { free(text); text = NULL; }
  } else {
    free(text);
    text = NULL;
  }
  bc_disasm_source(stdout, p, (const char *)text);
  free(text);
  lane_program_free(p);
  return 0;
}

/* ---- eval ---- */

/* Fills r from a flat JSON object; the json stays alive while r is used.
 * A field the policy does not declare is an error, or is skipped (and
 * counted in *ignored) with ignore_unknown. */
static int request_from_json(const lane_program *p, json_t *obj, lane_request *r,
                             int ignore_unknown, int *ignored, char *why, size_t whyn) {
  if (!json_is_object(obj)) {
    snprintf(why, whyn, "a request must be a JSON object of field names to values");
    return -1;
  }
  lane_request_init(r, p);
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    int f = lane_field(p, key);
    if (f < 0 && ignore_unknown) { (*ignored)++; continue; }
    if (f < 0) {
      snprintf(why, whyn, "unknown request field '%s' (not declared by the policy; "
               "--ignore-unknown skips such fields)", key);
      return -1;
    }
    if (json_is_null(v)) continue;
    int t = lane_field_type(p, f), rc = -1;
    if (t == LANE_T_MAP || t == LANE_T_LIST) {
      const char *bad = t == LANE_T_MAP ? replay_set_map(r, f, v) : replay_set_list(r, f, v);
      if (bad) {
        snprintf(why, whyn, "field '%s' (%s): %s", key, lane_field_unit(p, f), bad);
        return -1;
      }
      continue;
    }
    if (t == LANE_T_STRING && json_is_string(v))
      rc = lane_set_str(r, f, json_string_value(v), json_string_length(v));
    else if (t == LANE_T_BOOL && json_is_boolean(v))
      rc = lane_set_bool(r, f, json_is_true(v));
    else if (t == LANE_T_INT && json_is_integer(v))
      rc = lane_set_int(r, f, json_integer_value(v));
    else if (t == LANE_T_UINT && json_is_integer(v) && json_integer_value(v) >= 0)
      rc = lane_set_uint(r, f, (uint64_t)json_integer_value(v));
    else if (t == LANE_T_DOUBLE && json_is_number(v))
      rc = lane_set_double(r, f, json_number_value(v));
    if (rc != LANE_OK) {
      snprintf(why, whyn, "field '%s' wants %s", key, lane_field_unit(p, f));
      return -1;
    }
  }
  return 0;
}

static json_t *model_array(const lane_program *p, const int *m, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_string(lane_model_name(p, m[i])));
  return a;
}

static void print_json(const lane_program *p, const char *source, const lane_decision *d) {
  json_t *o = json_object();
  json_t *src = json_string(source);   /* NULL for a name that is not UTF-8 */
  json_object_set_new(o, "source", src ? src : json_string("(a file name that is not UTF-8)"));
  json_object_set_new(o, "route", json_string(lane_route_name(p, d->route)));
  json_object_set_new(o, "rule", json_integer(d->rule));
  json_object_set_new(o, "rule_name", json_string(lane_rule_name(p, d->route, d->rule)));
  json_object_set_new(o, "primary", json_string(lane_model_name(p, d->candidates[0])));
  json_object_set_new(o, "provider", json_string(lane_model_provider(p, d->candidates[0])));
  json_object_set_new(o, "model", json_string(lane_model_id(p, d->candidates[0])));
  json_object_set_new(o, "fallbacks", model_array(p, d->candidates + 1, d->ncandidates - 1));
  json_object_set_new(o, "shadows", model_array(p, d->shadows, d->nshadows));
  json_object_set_new(o, "cost", json_real(d->cost));
  if (d->output_from == LANE_OUTPUT_ESTIMATE)   /* the cost counts the route's estimate */
    json_object_set_new(o, "output_estimate", json_integer(d->output_tokens));
  if (d->nerrors) {
    json_object_set_new(o, "errors", json_integer(d->nerrors));
    json_object_set_new(o, "error_line", json_integer(d->error_line));
  }
  char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  if (s) puts(s);
  free(s);
  json_decref(o);
}

static void print_text(const lane_program *p, const char *name, const lane_decision *d) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  printf("%-36s %-8s rule %d  %-34s  fallbacks:", base, lane_route_name(p, d->route), d->rule,
         lane_model_name(p, d->candidates[0]));
  for (int i = 1; i < d->ncandidates; i++)
    printf("%s%s", i > 1 ? "," : " ", lane_model_name(p, d->candidates[i]));
  if (d->ncandidates == 1) printf(" -");
  for (int i = 0; i < d->nshadows; i++)
    printf("%s%s", i ? "," : "  shadow: ", lane_model_name(p, d->shadows[i]));
  printf("  cost $%.6f%s", d->cost, d->output_from == LANE_OUTPUT_ESTIMATE ? "" : "\n");
  if (d->output_from == LANE_OUTPUT_ESTIMATE)
    printf(" (output: %lld tokens, the route's estimate)\n", (long long)d->output_tokens);
}

/* ---- request sources ---- */

typedef int (*request_fn)(void *arg, const char *name, json_t *obj);

/* Calls fn for every JSON value in file path ("-": standard input): one
 * object, or any number one after another (JSON Lines). A value is named
 * "path" when it is the file's only one, else "path:LINE". Returns the
 * worst exit code. */
static int each_request(const char *path, request_fn fn, void *arg) {
  int is_stdin = !strcmp(path, "-");
  const char *shown = is_stdin ? "stdin" : path;
  size_t n = 0;
  unsigned char *b = is_stdin ? read_stream(stdin, &n) : read_bytes(path, &n, 0);
  if (!b) {
    fprintf(stderr, "lane: cannot read '%s': %s\n", shown, strerror(errno));
    return EXIT_USAGE;
  }
  size_t namecap = strlen(shown) + 24;   /* the name, ':', an int */
  char *name = malloc(namecap);
  if (!name) {
    free(b);
    fprintf(stderr, "lane: out of memory reading '%s'\n", shown);
    return EXIT_USAGE;
  }
  size_t pos = 0, bol = 0;   /* bol: where the current line begins */
  int line = 1, count = 0, rc = 0;
  for (;;) {
    while (pos < n && (b[pos] == ' ' || b[pos] == '\t' || b[pos] == '\r' || b[pos] == '\n'))
      if (b[pos++] == '\n') { line++; bol = pos; }
    if (pos == n) break;
    json_error_t e;
    json_t *obj = json_loadb((const char *)b + pos, n - pos, JSON_DISABLE_EOF_CHECK, &e);
    if (!obj) {
      fprintf(stderr, "lane: %s:%d:%d: invalid JSON: %s\n", shown, line + e.line - 1,
              e.line == 1 ? (int)(pos - bol) + e.column : e.column, e.text);
      rc = EXIT_USAGE;
      break;
    }
    int start = line;
    for (size_t k = pos; k < pos + e.position; k++)
      if (b[k] == '\n') { line++; bol = k + 1; }
    pos += e.position;
    size_t q = pos;   /* the only value in the file keeps the file's name */
    while (q < n && (b[q] == ' ' || b[q] == '\t' || b[q] == '\r' || b[q] == '\n')) q++;
    if (count == 0 && q == n) snprintf(name, namecap, "%s", shown);
    else snprintf(name, namecap, "%s:%d", shown, start);
    count++;
    int one = fn(arg, name, obj);
    json_decref(obj);
    if (one > rc) rc = one;
  }
  if (count == 0 && rc == 0) {
    fprintf(stderr, "lane: %s: no request in it (want a JSON object, or JSON Lines)\n", shown);
    rc = EXIT_USAGE;
  }
  free(name);
  free(b);
  return rc;
}

/* ---- eval ---- */

typedef struct eval_ctx {
  const cli          *c;
  const lane_program *p;
  lane_runtime       *rt;
  int                 route;
  lane_event         *events; /* with --explain: EVAL_EVENTS of them */
  FILE               *log;    /* --log, or NULL */
  const unsigned char *key;   /* --log-key's 16 bytes, or NULL */
  uint64_t           *ts;     /* the clock for the request being decided, 0: real */
} eval_ctx;

static uint64_t eval_now;   /* --now, in ms since the epoch; 0 none */

static uint64_t record_clock(void *ctx) {
  uint64_t ts = *(const uint64_t *)ctx;
  if (ts) return ts;
  if (eval_now) return eval_now;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Appends the decision record of one request to --log. */
static int log_decision(const eval_ctx *x, const lane_request *r, int st, const lane_decision *d) {
  char small[4096];
  size_t n = lane_log_decision(x->rt, x->route, r, st, d, NULL, x->key, small, sizeof small);
  char *buf = n < sizeof small ? small : malloc(n + 1);
  if (!buf) return -1;
  if (buf != small) lane_log_decision(x->rt, x->route, r, st, d, NULL, x->key, buf, n + 1);
  int rc = fwrite(buf, 1, n, x->log) == n ? 0 : -1;
  if (buf != small) free(buf);
  return rc;
}

/* Events an explanation keeps; more are reported as truncated. */
#define EVAL_EVENTS 4096

static int eval_one(void *arg, const char *name, json_t *obj) {
  const eval_ctx *x = arg;
  json_t *inner = json_object_get(obj, "request");   /* a request or decision record */
  json_t *ts = json_object_get(obj, "ts");
  *x->ts = 0;
  if (json_is_string(json_object_get(obj, "type")) && json_is_object(inner)) {
    if (json_is_integer(ts) && json_integer_value(ts) > 0) *x->ts = (uint64_t)json_integer_value(ts);
    obj = inner;
  }
  const cli *c = x->c;
  lane_request r;
  char why[512];
  int rc = 0, ignored = 0;
  if (request_from_json(x->p, obj, &r, c->ignore_unknown, &ignored, why, sizeof why) != 0) {
    fprintf(stderr, "lane: %s: %s\n", name, why);
    return EXIT_USAGE;
  }
  lane_decision d;
  lane_trace trace = {x->events, x->events ? EVAL_EVENTS : 0, 0, 0};
  int st = lane_decide_traced(x->rt, x->route, &r, &d, c->explain ? &trace : NULL);
  if (x->log && log_decision(x, &r, st, &d) != 0) {
    fprintf(stderr, "lane: %s: cannot write the decision log\n", c->log);
    return EXIT_USAGE;
  }
  if (c->explain) {
    /* the reasons come from the program's explain tables, as a .lanec's */
    explain_in in = {NULL, x->p, x->rt, x->route, &r, &d, st, &trace, NULL, 0};
    if (strcmp(c->format, "json")) fprintf(stdout, "== %s\n", name);
    if (!strcmp(c->format, "json")) explain_print_json(&in, stdout);
    else explain_print_text(&in, stdout);
    if (st != LANE_OK) rc = EXIT_FINDINGS;
  } else if (st == LANE_OK && !strcmp(c->format, "text")) print_text(x->p, name, &d);
  else if (st == LANE_OK) print_json(x->p, name, &d);
  else {
    fprintf(stderr, "lane: %s: %s\n", name,
            st == LANE_ENOMATCH ? "no rule matched this request" : lane_status_name(st));
    rc = EXIT_FINDINGS;
  }
  return rc;
}

static int cmd_expr(const cli *c);

/* ---- replay and diff (replay.c) ---- */

static int run_replay(const cli *c, const char *newpath, const char *oldpath,
                      const char *const *files, int nfiles) {
  int rc = 0;
  if (c->format && strcmp(c->format, "json") && strcmp(c->format, "text"))
    return usage("--format is json or text");
  lane_program *p = load_program(c, newpath, &rc);
  lane_program *old = p && oldpath ? load_program(c, oldpath, &rc) : NULL;
  if (p && (!oldpath || old)) {
    replay_opts o = {c->format ? c->format : "text", c->route, c->max_changed, c->max_cost_up,
                     (int)c->top, 1, c->chart, stdout, stderr};
    rc = replay_run(&o, p, newpath, old, oldpath, files, nfiles);
  }
  lane_program_free(old);
  lane_program_free(p);
  return rc;
}

static int cmd_convert(const cli *c) {
  if (c->nfiles < 2 || (strcmp(c->files[0], "trace") && strcmp(c->files[0], "body")))
    return usage("convert trace TRACE.csv... or convert body POLICY BODY.json...");
  int body = !strcmp(c->files[0], "body");
  if (body && c->nfiles < 3) return usage("convert body takes a policy and request bodies");
  if (body && (c->nsets || c->users)) return usage("--set and --users are for convert trace");
  FILE *out = c->out ? fopen(c->out, "w") : stdout;
  if (!out) { fprintf(stderr, "lane: %s: cannot write\n", c->out); return EXIT_USAGE; }
  convert_opts o = {c->sets, c->nsets, c->users, out, stderr};
  int rc = 0;
  lane_program *p = body ? load_program(c, c->files[1], &rc) : NULL;
  for (int i = body ? 2 : 1; i < c->nfiles && (!body || p); i++) {
    int one;
    if (body) {
      size_t n = 0;
      unsigned char *b = read_bytes(c->files[i], &n, 0);
      if (!b) { fprintf(stderr, "lane: cannot read '%s': %s\n", c->files[i], strerror(errno)); one = 2; }
      else { one = convert_body(&o, p, c->files[i], (const char *)b, n); free(b); }
    } else {
      one = convert_trace(&o, c->files[i]);
    }
    if (one > rc) rc = one;
  }
  lane_program_free(p);
  if (out != stdout && fclose(out) != 0) { fprintf(stderr, "lane: %s: cannot write\n", c->out); rc = 2; }
  return rc;
}

static int cmd_replay(const cli *c) {
  if (c->nfiles < 2) return usage("replay takes a policy and at least one log (- for stdin)");
  if (c->max_changed >= 0 || c->max_cost_up >= 0)
    return usage("the gates --max-changed and --max-cost-increase are diff's");
  return run_replay(c, c->files[0], c->against, c->files + 1, c->nfiles - 1);
}

static int cmd_diff(const cli *c) {
  if (c->nfiles < 3) return usage("diff takes OLD NEW and at least one traffic file");
  if (c->against) return usage("diff names both policies: lane diff OLD NEW TRAFFIC...");
  return run_replay(c, c->files[1], c->files[0], c->files + 2, c->nfiles - 2);
}

static int cmd_eval(const cli *given) {
  cli copy = *given, *c = &copy;
  if (c->expr) return cmd_expr(c);
  if (!c->format) c->format = c->explain ? "text" : "json";   /* what reads best */
  if (c->nfiles < 2)
    return usage("eval takes a program and at least one request source (a file, or - for stdin)");
  if (strcmp(c->format, "json") && strcmp(c->format, "text"))
    return usage("--format is json or text");
  int rc = 0;
  lane_program *p = load_program(c, c->files[0], &rc);
  if (!p) return rc;
  if (!c->route && lane_route_count(p) == 1) c->route = lane_route_name(p, 0);
  int route = c->route ? lane_route(p, c->route) : -1;
  lane_error err;
  /* A request record's time (its "ts") is the clock its decision reads,
   * so a converted trace is decided, and logged, at its arrival times;
   * other requests read the real clock. --state freezes the clock. */
  uint64_t record_ts = 0;
  if (c->now) {
    int64_t t;
    if (sem_ts_parse(c->now, strlen(c->now), &t) || t <= 0) {
      fprintf(stderr, "lane: --now needs an RFC 3339 time after 1970, as in "
              "2026-01-05T23:00:00Z, not '%s'\n", c->now);
      lane_program_free(p);
      return EXIT_USAGE;
    }
    if (c->state) {
      fprintf(stderr, "lane: --now and --state: a snapshot's time is its own\n");
      lane_program_free(p);
      return EXIT_USAGE;
    }
    eval_now = (uint64_t)t;
  }
  lane_runtime_options ro;
  memset(&ro, 0, sizeof ro);
  ro.clock = record_clock;
  ro.clock_ctx = &record_ts;
  lane_runtime *rt = route < 0 ? NULL
                   : c->state ? state_runtime(p, c->state, stderr)
                              : lane_runtime_new_with(p, &ro, &err);
  if (route >= 0 && !rt && c->state) {
    rc = EXIT_USAGE;
  } else if (route < 0) {
    if (c->route) fprintf(stderr, "lane: no route '%s'; the program has:", c->route);
    else fprintf(stderr, "lane: the program has %d routes; say which with --route:",
                 lane_route_count(p));
    for (int i = 0; i < lane_route_count(p); i++) fprintf(stderr, " %s", lane_route_name(p, i));
    fputc('\n', stderr);
    rc = EXIT_USAGE;
  } else if (!rt) {
    fprintf(stderr, "lane: %s\n", err.message);
    rc = EXIT_USAGE;
  } else {
    unsigned char key[16];
    eval_ctx x = {c, p, rt, route, NULL, NULL, NULL, &record_ts};
    lane_error kerr;
    if (c->log_key && lane_log_key_load(c->log_key, key, &kerr) != LANE_OK) {
      fprintf(stderr, "lane: %s\n", kerr.message);
      rc = EXIT_USAGE;
    }
    else if (c->log_key) x.key = key;
    if (!rc && c->log && !(x.log = fopen(c->log, "a"))) {
      fprintf(stderr, "lane: %s: cannot open for appending\n", c->log);
      rc = EXIT_USAGE;
    }
    int nomem = c->explain && !(x.events = malloc(EVAL_EVENTS * sizeof *x.events));
    if (nomem) {
      fprintf(stderr, "lane: out of memory\n");
      rc = EXIT_USAGE;
    }
    for (int i = 1; i < c->nfiles && !nomem && rc != EXIT_USAGE; i++) {
      int one = each_request(c->files[i], eval_one, &x);
      if (one > rc) rc = one;
    }
    if (x.log && fclose(x.log) != 0) {
      fprintf(stderr, "lane: %s: cannot write the decision log\n", c->log);
      rc = EXIT_USAGE;
    }
    free(x.events);
  }
  lane_runtime_free(rt);
  lane_program_free(p);
  return rc;
}

/* ---- eval --expr ---- */

typedef struct expr_ctx {
  sema_unit          *u;
  const ast_node     *e;
  const lane_program *p;
  int                 ignore_unknown;
} expr_ctx;

/* Prints the expression's value on one request (or on none: name NULL). */
static int show_value(const expr_ctx *x, const char *name, const lane_request *r) {
  ev_env env = {.u = x->u, .model = -1, .prog = x->p, .req = r};
  ev_val v = ev_eval(&env, x->e);
  char buf[4096];
  if (v.kind == EV_UNKNOWN) {
    fprintf(stderr, "lane: --expr: the expression reads request fields; give request files "
            "(after the policy, if it declares them)\n");
    return EXIT_USAGE;
  }
  if (v.kind == EV_ERROR) {
    fprintf(stderr, "lane: %s%s%s\n", name ? name : "", name ? ": " : "", v.err);
    return EXIT_FINDINGS;
  }
  ev_show(x->u, &v, buf, sizeof buf);
  if (name) printf("%s: %s\n", name, buf);
  else printf("%s\n", buf);
  return 0;
}

static int expr_one(void *arg, const char *name, json_t *obj) {
  const expr_ctx *x = arg;
  lane_request r;
  char why[512];
  int ignored = 0;
  if (request_from_json(x->p, obj, &r, x->ignore_unknown, &ignored, why, sizeof why) != 0) {
    fprintf(stderr, "lane: %s: %s\n", name, why);
    return EXIT_USAGE;
  }
  return show_value(x, name, &r);
}

/* lane eval --expr EXPR [POLICY.lane] [REQUEST...]: the value of one
 * expression, on constants alone or on each request (request fields are
 * the standard ones, plus the policy's). */
static int cmd_expr(const cli *c) {
  static const char stub[] =   /* a program to read requests into */
    "model lane_expr { input $0/Mtok output $0/Mtok }\nroute lane_expr { otherwise -> lane_expr }\n";
  int first = 0;
  const char *policy = NULL;
  if (c->nfiles > 0) {
    size_t len = strlen(c->files[0]);
    if (len > 5 && !strcmp(c->files[0] + len - 5, ".lane")) { policy = c->files[0]; first = 1; }
  }
  /* The policy is checked through lanec.h, then the expression is parsed
   * and checked into the same unit, and only then emitted (once). */
  lanec_opts opts = c->opts;
  opts.check_only = 1;
  lanec_result res;
  int rc = 0;
  ast_node *e = NULL;
  if (lanec_compile(policy ? policy : "(--expr)", policy ? NULL : stub, &opts, &res) != LANEC_OK) {
    rc = EXIT_FINDINGS;
  }
  sema_unit *up = res.unit;
  if (!rc) {
    src_file *f = ast_alloc(&up->ctx, sizeof *f);
    ast_list keep = {0};
    if (f) {
      f->name = "--expr";
      f->text = c->expr;
      f->len = strlen(c->expr);
      f->module = "";
    }
    if (!f || parse_expr(&up->ctx, f, &keep, &e) != 0 || !e ||
        sema_check_expr(up, e) == TY_ERROR)
      rc = EXIT_FINDINGS;
  }
  lanec_print_diags(&res, stderr);
  if (rc || first == c->nfiles) {   /* no requests: constants only */
    if (!rc) {
      expr_ctx x = {up, e, NULL, c->ignore_unknown};
      rc = show_value(&x, NULL, NULL);
    }
    lanec_result_free(&res);
    return rc;
  }
  int shown = up->ctx.ndiags;
  if (emit_program_loaded(up, &res.bytes, &res.nbytes, &res.prog) != 0) {
    for (int i = shown; i < up->ctx.ndiags; i++) diag_render_one(stderr, &up->ctx.diags[i]);
    rc = EXIT_FINDINGS;
  } else {
    expr_ctx x = {up, e, res.prog, c->ignore_unknown};
    for (int i = first; i < c->nfiles; i++) {
      int one = each_request(c->files[i], expr_one, &x);
      if (one > rc) rc = one;
    }
  }
  lanec_result_free(&res);
  return rc;
}

/* lane catalog import FILE.json -o DIR [--provider P]...
 * lane catalog fetch URL -o FILE [--timeout-ms N] [--max-bytes N] [--force]
 * lane catalog diff OLD.json NEW.json [--format keys|lane] [--provider P]...
 * An option that a subcommand does not use is refused, not ignored. */
static int cmd_catalog(const cli *c) {
  const char *sub = c->nfiles ? c->files[0] : "";
  int fetch = !strcmp(sub, "fetch"), diff = !strcmp(sub, "diff");
  if ((c->timeout_ms || c->max_bytes || c->force) && !fetch)
    return usage("--timeout-ms, --max-bytes and --force are options of catalog fetch");
  if (c->format && !diff) return usage("--format is an option of catalog diff");
  if (c->nproviders && fetch) return usage("catalog fetch takes no --provider");
  if (!strcmp(sub, "import")) {
    if (c->nfiles != 2 || !c->out) return usage("catalog import takes FILE.json -o DIR");
    return catalog_import(c->files[1], c->out, c->providers, c->nproviders, stdout, stderr);
  }
  if (fetch) {
    if (c->nfiles != 2 || !c->out) return usage("catalog fetch takes URL -o FILE");
    catalog_fetch_opts o = {0};
    o.timeout_ms = c->timeout_ms;
    o.max_bytes = c->max_bytes;
    o.force = c->force;
    return catalog_fetch(c->files[1], c->out, &o, stdout, stderr);
  }
  if (diff) {
    if (c->nfiles != 3 || c->out) return usage("catalog diff takes OLD.json NEW.json");
    if (c->format && strcmp(c->format, "keys") && strcmp(c->format, "lane"))
      return usage("catalog diff --format is keys (catalog entries) or lane (lane models)");
    catalog_diff_opts o = {0};
    o.lane = c->format && !strcmp(c->format, "lane");
    o.providers = c->providers;
    o.nproviders = c->nproviders;
    return catalog_diff(c->files[1], c->files[2], &o, stdout, stderr);
  }
  return usage("catalog takes import, fetch or diff");
}

/* Prints s for a Markdown table cell: | escaped. */
static void md_cell(const char *s) {
  for (; *s; s++) {
    if (*s == '|') putchar('\\');
    putchar(*s);
  }
}

/* The opcode reference as Markdown, from BC_FORMATS and BC_OPCODES, for
 * doc/opcodes.md (a test keeps the two equal). */
static int cmd_opcodes(void) {
  static const char *const flow[] = { "", "never falls through", "keeps its bool on the jump" };
  puts("# lane bytecode: opcodes");
  puts("");
  puts("Generated by `lane builtins --opcodes` from `BC_FORMATS` and `BC_OPCODES`");
  puts("in `vm/bc.h`, where they are documented; `tests/golden/run.sh` checks that");
  puts("this file is its output. The file layout, the verifier and the cost model");
  puts("are in `vm/README.md`.");
  puts("");
  puts("## Operand formats");
  puts("");
  puts("An instruction is `u8 op, u8 a, u16 b, u32 c`; operands its format does not");
  puts("use must be 0.");
  puts("");
  puts("| format | uses | meaning |");
  puts("|---|---|---|");
  for (int f = 0; f < BC_NFMTS; f++) {
    const bc_fmtinfo *fi = &bc_fmts[f];
    printf("| `%s` | %s%s%s%s | ", fi->name, fi->uses & 1 ? "a" : "", fi->uses & 2 ? "b" : "",
           fi->uses & 4 ? "c" : "", fi->uses ? "" : "-");
    md_cell(fi->doc);
    puts(" |");
  }
  puts("");
  puts("## Opcodes");
  puts("");
  puts("Stack types: I int64, U uint64, D double, B bool, S string, `*` the type of");
  puts("the field, model property or list the operand names; inputs bottom first.");
  puts("Steps: the weight counted for the worst case (string work adds steps by");
  puts("length, `bc_len_steps`). Region: R route code, F filter code, A both.");
  puts("");
  puts("| # | opcode | format | stack | steps | region | control | meaning |");
  puts("|---|---|---|---|---|---|---|---|");
  for (int op = 0; op < BC_NOPS; op++) {
    const bc_opinfo *o = &bc_ops[op];
    printf("| %d | `%s` | %s | `%s -> %s` | %u | %c | ", op, o->name, bc_fmts[o->fmt].name,
           o->in[0] ? o->in : "-", o->out[0] ? o->out : "-", (unsigned)o->weight, o->region);
    const char *sep = "";
    if (o->can_fail) { printf("can fail"); sep = "; "; }
    if (o->flow) { printf("%s%s", sep, flow[o->flow]); sep = "; "; }
    if (o->empty) printf("%sneeds an empty stack", sep);
    printf(" | ");
    md_cell(o->doc);
    puts(" |");
  }
  return 0;
}

/* The builtin table as Markdown, for lang/README.md (a test keeps the two
 * equal). */
static int cmd_builtins(const cli *c) {
  if (c->opcodes) return cmd_opcodes();
  puts("| call | arguments | result | meaning |");
  puts("|---|---|---|---|");
  for (int i = 0; i < sema_nbuiltins; i++) {
    const sema_builtin *b = &sema_builtins[i];
    char call[64], args[96] = "";
    static const char *const arg_names[] = {"", "y", "y, z", "y, z, n"};
    static const char *const call_args[] = {"x", "x, y", "x, y, z"};
    int minmax = b->fn == BF_GREATEST || b->fn == BF_LEAST;
    if (b->fn >= BF_ALL && b->fn <= BF_TMAP) {   /* macros: variables and expressions */
      static const char *const forms[] = {"v, p", "v, p", "v, p", "i, v, p", "v, e",
                                          "v, p", "i, v, e", "k, v, e"};
      printf("| `x.%s(%s)` | a list or a map | %s | %s (%s) |\n", b->name,
             forms[(b->fn - BF_ALL) + (b->fn >= BF_MAP || !strcmp(b->name, "existsOne"))],
             b->fn <= BF_EXISTS_ONE ? "bool" : b->fn == BF_TMAP ? "map" : "list", b->doc,
             b->fn <= BF_EXISTS_ONE ? "constants, model tags, and a request's map or list in the VM"
             : b->fn == BF_FILTER ? "constants and model tags; size() of it over a request's map "
                                    "or list in the VM"
                                  : "constants and model tags");
      continue;
    }
    if (b->method) snprintf(call, sizeof call, "`x.%s(%s)`", b->name, arg_names[b->nargs - 1]);
    else snprintf(call, sizeof call, "`%s(%s)`", b->name, minmax ? "x, ..." : call_args[b->nargs - 1]);
    for (int k = 0; k < b->nargs; k++)
      snprintf(args + strlen(args), sizeof args - strlen(args), "%s%s", k ? ", " : "",
               b->fn == BF_HAS ? "a request field" : b->fn == BF_DYN ? "any"
               : minmax ? "numbers, or a list" : sema_ty_name(b->args[k]));
    printf("| %s | %s | %s | %s%s |\n", call, args,
           b->fn == BF_DYN ? "x's type" : minmax ? "theirs" : sema_ty_name(b->result), b->doc,
           b->fn == BF_SPLIT && b->nargs == 2
               ? " (of a run-time string: size(), in and [i] of it, in the VM)"
           : b->fn == BF_JOIN ? " (constants, and a request's list in the VM)"
           : b->op == -1 ? " (constants only)" : "");
  }
  return 0;
}

int main(int argc, char **argv) {
  lane_regex_install(lane_regex_pcre2());   /* matches(): liblane-re */
  if (argc < 2) return usage(NULL);
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("lane %s (bytecode format %d)\n", LANE_VERSION_STRING, LANE_FORMAT_VERSION);
    return 0;
  }
  cli c;
  int rc;
  if (parse_args(&c, argc, argv) != 0) rc = usage(NULL);
  else if ((c.sign || c.revision || c.tests) && strcmp(c.cmd, "build"))
    rc = usage("--sign, --revision and --tests are options of build");
  else if ((c.key || c.test) && strcmp(c.cmd, "inspect"))
    rc = usage("--key and --test are options of inspect");
  else if (!strcmp(c.cmd, "compile")) rc = cmd_compile(&c);
  else if (!strcmp(c.cmd, "build")) rc = cmd_build(&c);
  else if (!strcmp(c.cmd, "inspect")) rc = cmd_inspect(&c);
  else if (!strcmp(c.cmd, "keygen")) rc = cmd_keygen(&c);
  else if (!strcmp(c.cmd, "check")) rc = cmd_check(&c);
  else if (!strcmp(c.cmd, "fmt"))
    rc = c.nfiles < 1 ? usage("fmt takes policy files")
                      : fmt_command(c.files, c.nfiles, c.check, c.diff, stdout, stderr);
  else if (!strcmp(c.cmd, "lint"))
    rc = c.nfiles == 1 ? lint_command(c.files[0], &c.opts, c.enable, c.nenable, c.disable,
                                      c.ndisable, c.format, stdout, stderr)
                       : usage("lint takes one policy file");
  else if (!strcmp(c.cmd, "test")) rc = cmd_test(&c);
  else if (!strcmp(c.cmd, "disasm")) rc = cmd_disasm(&c);
  else if (!strcmp(c.cmd, "eval")) rc = cmd_eval(&c);
  else if (!strcmp(c.cmd, "replay")) rc = cmd_replay(&c);
  else if (!strcmp(c.cmd, "diff")) rc = cmd_diff(&c);
  else if (!strcmp(c.cmd, "convert")) rc = cmd_convert(&c);
  else if (!strcmp(c.cmd, "builtins")) rc = cmd_builtins(&c);
  else if (!strcmp(c.cmd, "catalog")) rc = cmd_catalog(&c);
  else {
    fprintf(stderr, "lane: unknown command '%s'\n", c.cmd);
    rc = usage(NULL);
  }
  free_args(&c);
  return rc;
}

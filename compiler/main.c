/*
 * main.c -- the lane command.
 *
 *   lane compile POLICY.lane [-o OUT.lanec] [-I DIR]...
 *   lane check   POLICY.lane [-I DIR]...
 *   lane test    POLICY.lane [-I DIR]...
 *   lane disasm  FILE.lanec | POLICY.lane
 *   lane eval    FILE.lanec | POLICY.lane --route NAME [--format json|text] REQUEST.json...
 *
 * Exit codes: 0 ok, 1 findings (policy errors, failed tests, no rule
 * matched), 2 usage or input errors.
 */
#include "sema.h"
#include "builtins.h"
#include "catalog.h"
#include "disasm.h"
#include "explain.h"
#include "fmt.h"
#include "lint.h"
#include "state.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_FINDINGS 1
#define EXIT_USAGE 2

static const char usage_text[] =
  "usage: lane COMMAND [options] FILE...\n"
  "\n"
  "commands:\n"
  "  compile POLICY.lane [-o OUT.lanec]   compile to verified bytecode\n"
  "  check   POLICY.lane                  parse and type-check only\n"
  "  fmt     POLICY.lane... [--check] [--diff]\n"
  "                                       rewrite in the canonical layout; --check lists\n"
  "                                       files that would change, --diff shows how\n"
  "  lint    POLICY.lane [--enable ID]... [--disable ID]... [--format text|json|sarif]\n"
  "                                       find likely mistakes; see compiler/lints/README.md\n"
  "  test    POLICY.lane [--tap] [--coverage] [--threshold P]\n"
  "                                       run the test blocks of the policy and of\n"
  "                                       POLICY_test.lane beside it\n"
  "  disasm  FILE.lanec|POLICY.lane       show header, sections, models and code\n"
  "  eval    FILE.lanec|POLICY.lane --route NAME [--format json|text] [--state SNAPSHOT.json]\n"
  "          [--explain] REQUEST.json...    decide; --state replays a runtime snapshot,\n"
  "                                       --explain shows each rule tried and why\n"
  "                                       decide for flat JSON requests\n"
  "  catalog import FILE.json -o DIR [--provider P]...\n"
  "                                       LiteLLM price catalog -> one module per provider\n"
  "  catalog fetch URL -o FILE [--timeout-ms N] [--max-bytes N]\n"
  "                                       download a catalog (http/https, ETag-aware);\n"
  "                                       FILE is replaced only by a valid catalog\n"
  "  catalog diff OLD.json NEW.json       added and removed models, changed prices\n"
  "  builtins                             list builtin functions (Markdown)\n"
  "  version                              print the version\n"
  "\n"
  "options:\n"
  "  -I DIR        also look for imports in DIR (stdlib/ is always searched for std/)\n"
  "  -o FILE       output file for compile (default: POLICY.lanec)\n"
  "  --max-errors N  report at most N errors (default 20)\n"
  "  -O0           compile without optimisations (no folding, no rule index)\n"
  "\n"
  "exit codes: 0 ok, 1 findings or failed tests, 2 usage or input errors\n";

typedef struct cli {
  const char *cmd;          /* subcommand */
  const char *files[64];    /* positional arguments */
  int         nfiles;
  const char *out;          /* -o */
  const char *route;        /* --route */
  const char *format;       /* --format */
  const char *state;        /* --state, for eval */
  int         tap;          /* --tap, for test */
  int         coverage;     /* --coverage, for test */
  double      threshold;    /* --threshold P, for test */
  int         explain;      /* --explain, for eval */
  int         check, diff;  /* --check, --diff, for fmt */
  const char *providers[64];/* --provider, for catalog import */
  const char *enable[64];   /* --enable ID, for lint */
  const char *disable[64];  /* --disable ID, for lint */
  int         nenable, ndisable;
  int         nproviders;
  sema_opts   opts;         /* -I, --max-errors */
  long        timeout_ms;   /* --timeout-ms, for catalog fetch */
  long        max_bytes;    /* --max-bytes, for catalog fetch */
} cli;

static int usage(const char *msg) {
  if (msg) fprintf(stderr, "lane: %s\n", msg);
  fputs(usage_text, stderr);
  return EXIT_USAGE;
}

static int parse_args(cli *c, int argc, char **argv) {
  memset(c, 0, sizeof *c);
  c->cmd = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-o") || !strcmp(a, "--route") || !strcmp(a, "--format") ||
        !strcmp(a, "-I") || !strcmp(a, "--max-errors") || !strcmp(a, "--provider") ||
        !strcmp(a, "--state") || !strcmp(a, "--enable") || !strcmp(a, "--disable") ||
        !strcmp(a, "--timeout-ms") || !strcmp(a, "--max-bytes")) {
      if (!val) { fprintf(stderr, "lane: %s needs a value\n", a); return -1; }
      i++;
      if (!strcmp(a, "-o")) c->out = val;
      else if (!strcmp(a, "--route")) c->route = val;
      else if (!strcmp(a, "--format")) c->format = val;
      else if (!strcmp(a, "--state")) c->state = val;
      else if (!strcmp(a, "--enable")) { if (c->nenable < 64) c->enable[c->nenable++] = val; }
      else if (!strcmp(a, "--disable")) { if (c->ndisable < 64) c->disable[c->ndisable++] = val; }
      else if (!strcmp(a, "--max-errors")) c->opts.max_errors = atoi(val);
      else if (!strcmp(a, "--timeout-ms") || !strcmp(a, "--max-bytes")) {
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v <= 0) {
          fprintf(stderr, "lane: %s needs a positive integer, not '%s'\n", a, val);
          return -1;
        }
        if (!strcmp(a, "--timeout-ms")) c->timeout_ms = v;
        else c->max_bytes = v;
      }
      else if (!strcmp(a, "--provider")) {
        if (c->nproviders < 64) c->providers[c->nproviders++] = val;
      }
      else if (c->opts.ninclude < SEMA_MAX_INCLUDES) c->opts.include[c->opts.ninclude++] = val;
    } else if (!strcmp(a, "--explain")) {
      c->explain = 1;
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
      if (c->opts.ninclude < SEMA_MAX_INCLUDES) c->opts.include[c->opts.ninclude++] = a + 2;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "lane: unknown option '%s'\n", a);
      return -1;
    } else if (c->nfiles < 64) {
      c->files[c->nfiles++] = a;
    }
  }
  return 0;
}

/* ---- compiling ---- */

/* Compiles path into *bytes. Diagnostics go to stderr. 0 ok, 1 errors. */
static int compile(sema_unit *u, const cli *c, const char *path, unsigned char **bytes,
                   size_t *n) {
  sema_init(u, &c->opts);
  int rc = 0;
  if (sema_load(u, path, NULL) != 0 || sema_check(u) != 0) rc = 1;
  else if (emit_program(u, bytes, n) != 0) rc = 1;
  diag_render(stderr, &u->ctx);
  return rc;
}

static int write_file(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  while (b) {
    len += fread(b + len, 1, cap - len, f);
    if (len < cap) break;
    unsigned char *nb = realloc(b, cap * 2);
    if (!nb) { free(b); b = NULL; break; }
    b = nb;
    cap *= 2;
  }
  fclose(f);
  *n = len;
  return b;
}

static int is_lanec(const unsigned char *b, size_t n) {
  return n >= 8 && memcmp(b, BC_MAGIC, 8) == 0;
}

/* Loads a .lanec, or compiles a .lane, into a verified program. With
 * keep, a compiled policy's unit stays alive there (for explanations);
 * keep->nmods is 0 when the input was bytecode. */
static lane_program *load_program_keep(const cli *c, const char *path, int *rc,
                                       sema_unit *keep) {
  size_t n = 0;
  unsigned char *b = read_bytes(path, &n);
  if (!b) {
    fprintf(stderr, "lane: cannot read '%s': %s\n", path, strerror(errno));
    *rc = EXIT_USAGE;
    return NULL;
  }
  if (keep) memset(keep, 0, sizeof *keep);
  if (!is_lanec(b, n)) {
    free(b);
    sema_unit own;   /* compile() initialises it */
    // cppcheck-suppress uninitvar
    sema_unit *u = keep ? keep : &own;
    int bad = compile(u, c, path, &b, &n);
    if (!keep || bad) sema_free(u);
    if (keep && bad) memset(keep, 0, sizeof *keep);
    if (bad) { *rc = EXIT_FINDINGS; return NULL; }
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
  sema_unit u;
  unsigned char *bytes = NULL;
  size_t n = 0;
  int rc = compile(&u, c, src, &bytes, &n);
  sema_free(&u);
  if (rc) return EXIT_FINDINGS;
  lane_error err;
  lane_program *p = lane_load(bytes, n, &err);   /* never write what cannot load */
  if (!p) {
    fprintf(stderr, "lane: internal error: the compiled program does not verify: %s\n",
            err.message);
    free(bytes);
    return EXIT_FINDINGS;
  }
  lane_program_free(p);
  rc = write_file(out, bytes, n);
  free(bytes);
  if (rc) {
    fprintf(stderr, "lane: cannot write '%s': %s\n", out, strerror(errno));
    return EXIT_USAGE;
  }
  return 0;
}

/* Checking is compiling without writing: folding finds constant errors. */
static int cmd_check(const cli *c) {
  if (c->nfiles < 1) return usage("check takes policy files");
  int rc = 0;
  for (int i = 0; i < c->nfiles; i++) {
    sema_unit u;
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (compile(&u, c, c->files[i], &bytes, &n)) rc = EXIT_FINDINGS;
    free(bytes);
    sema_free(&u);
  }
  return rc;
}

/* NAME_test.lane beside NAME.lane, if there is one. */
static int test_file(const char *policy, char *buf, size_t n) {
  size_t len = strlen(policy);
  if (len > 5 && !strcmp(policy + len - 5, ".lane")) len -= 5;
  snprintf(buf, n, "%.*s_test.lane", (int)len, policy);
  FILE *f = fopen(buf, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static int cmd_test(const cli *c) {
  if (c->nfiles != 1) return usage("test takes one policy file");
  sema_unit u;
  unsigned char *bytes = NULL;
  size_t n = 0;
  char extra[4096];
  int rc = 0;
  sema_init(&u, &c->opts);
  if (sema_load(&u, c->files[0], NULL) != 0 ||
      (test_file(c->files[0], extra, sizeof extra) && sema_load_tests(&u, extra) != 0) ||
      sema_check(&u) != 0 || emit_program(&u, &bytes, &n) != 0)
    rc = EXIT_FINDINGS;
  diag_render(stderr, &u.ctx);
  if (rc == 0) {
    lane_error err;
    lane_program *p = lane_load(bytes, n, &err);
    if (!p) {
      fprintf(stderr, "lane: %s\n", err.message);
      rc = EXIT_FINDINGS;
    } else {
      test_opts o = {c->tap, c->coverage, c->threshold, 0, 1};
      rc = sema_run_tests_with(&u, p, &o, stdout) ? EXIT_FINDINGS : 0;
      lane_program_free(p);
    }
  }
  free(bytes);
  sema_free(&u);
  return rc;
}

static int cmd_disasm(const cli *c) {
  if (c->nfiles != 1) return usage("disasm takes one file");
  int rc = 0;
  lane_program *p = load_program(c, c->files[0], &rc);
  if (!p) return rc;
  size_t n = 0;
  unsigned char *text = read_bytes(c->files[0], &n);
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

/* Fills r from a flat JSON object; the json stays alive while r is used. */
static int request_from_json(const lane_program *p, json_t *obj, lane_request *r,
                             char *why, size_t whyn) {
  if (!json_is_object(obj)) {
    snprintf(why, whyn, "a request must be a JSON object of field names to values");
    return -1;
  }
  lane_request_init(r, p);
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    int f = lane_field(p, key);
    if (f < 0) {
      snprintf(why, whyn, "unknown request field '%s' (not declared by the policy)", key);
      return -1;
    }
    if (json_is_null(v)) continue;
    int t = lane_field_type(p, f), rc = -1;
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

static void print_json(const lane_program *p, const lane_decision *d) {
  json_t *o = json_object();
  json_object_set_new(o, "route", json_string(lane_route_name(p, d->route)));
  json_object_set_new(o, "rule", json_integer(d->rule));
  json_object_set_new(o, "rule_name", json_string(lane_rule_name(p, d->route, d->rule)));
  json_object_set_new(o, "primary", json_string(lane_model_name(p, d->candidates[0])));
  json_object_set_new(o, "provider", json_string(lane_model_provider(p, d->candidates[0])));
  json_object_set_new(o, "model", json_string(lane_model_id(p, d->candidates[0])));
  json_object_set_new(o, "fallbacks", model_array(p, d->candidates + 1, d->ncandidates - 1));
  json_object_set_new(o, "shadows", model_array(p, d->shadows, d->nshadows));
  json_object_set_new(o, "cost", json_real(d->cost));
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
  printf("  cost $%.6f\n", d->cost);
}

static int eval_one(const cli *c, const lane_program *p, lane_runtime *rt, int route,
                    const char *file, const sema_unit *u) {
  json_error_t jerr;
  json_t *obj = json_load_file(file, 0, &jerr);
  if (!obj) {
    fprintf(stderr, "lane: %s:%d:%d: invalid JSON: %s\n", file, jerr.line, jerr.column,
            jerr.text);
    return EXIT_USAGE;
  }
  lane_request r;
  char why[256];
  int rc = 0;
  if (request_from_json(p, obj, &r, why, sizeof why) != 0) {
    fprintf(stderr, "lane: %s: %s\n", file, why);
    rc = EXIT_USAGE;
  } else {
    lane_decision d;
    static lane_event events[4096];
    lane_trace trace = {events, 4096, 0, 0};
    int st = lane_decide_traced(rt, route, &r, &d, c->explain ? &trace : NULL);
    if (c->explain) {
      explain_in in = {u && u->nmods ? u : NULL, p, rt, route, &r, &d, st, &trace};
      if (strcmp(c->format, "json")) fprintf(stdout, "== %s\n", file);
      explain_print(&in, !strcmp(c->format, "json"), stdout);
      if (st != LANE_OK) rc = EXIT_FINDINGS;
    } else if (st == LANE_OK && !strcmp(c->format, "text")) print_text(p, file, &d);
    else if (st == LANE_OK) print_json(p, &d);
    else {
      fprintf(stderr, "lane: %s: %s\n", file,
              st == LANE_ENOMATCH ? "no rule matched this request" : lane_status_name(st));
      rc = EXIT_FINDINGS;
    }
  }
  json_decref(obj);
  return rc;
}

static int cmd_eval(const cli *given) {
  cli copy = *given, *c = &copy;
  if (!c->format) c->format = c->explain ? "text" : "json";   /* what reads best */
  if (c->nfiles < 2) return usage("eval takes a program and at least one request file");
  if (!c->route) return usage("eval needs --route NAME");
  if (strcmp(c->format, "json") && strcmp(c->format, "text"))
    return usage("--format is json or text");
  int rc = 0;
  sema_unit u;
  lane_program *p = load_program_keep(c, c->files[0], &rc, c->explain ? &u : NULL);
  if (!p) return rc;
  int route = lane_route(p, c->route);
  lane_error err;
  lane_runtime *rt = route < 0 ? NULL
                   : c->state ? state_runtime(p, c->state, stderr) : lane_runtime_new(p, &err);
  if (route >= 0 && !rt && c->state) {
    rc = EXIT_USAGE;
  } else if (route < 0) {
    fprintf(stderr, "lane: no route '%s'; the program has:", c->route);
    for (int i = 0; i < lane_route_count(p); i++) fprintf(stderr, " %s", lane_route_name(p, i));
    fputc('\n', stderr);
    rc = EXIT_USAGE;
  } else if (!rt) {
    fprintf(stderr, "lane: %s\n", err.message);
    rc = EXIT_USAGE;
  } else {
    for (int i = 1; i < c->nfiles; i++) {
      int one = eval_one(c, p, rt, route, c->files[i], c->explain ? &u : NULL);
      if (one > rc) rc = one;
    }
  }
  lane_runtime_free(rt);
  lane_program_free(p);
  if (c->explain && u.nmods) sema_free(&u);
  return rc;
}

/* lane catalog import FILE.json -o DIR [--provider P]...
 * lane catalog fetch URL -o FILE [--timeout-ms N] [--max-bytes N]
 * lane catalog diff OLD.json NEW.json */
static int cmd_catalog(const cli *c) {
  const char *sub = c->nfiles ? c->files[0] : "";
  if (!strcmp(sub, "import")) {
    if (c->nfiles != 2 || !c->out) return usage("catalog import takes FILE.json -o DIR");
    return catalog_import(c->files[1], c->out, c->providers, c->nproviders, stdout, stderr);
  }
  if (!strcmp(sub, "fetch")) {
    if (c->nfiles != 2 || !c->out) return usage("catalog fetch takes URL -o FILE");
    catalog_fetch_opts o = {0};
    o.timeout_ms = c->timeout_ms;
    o.max_bytes = c->max_bytes;
    return catalog_fetch(c->files[1], c->out, &o, stdout, stderr);
  }
  if (!strcmp(sub, "diff")) {
    if (c->nfiles != 3) return usage("catalog diff takes OLD.json NEW.json");
    return catalog_diff(c->files[1], c->files[2], stdout, stderr);
  }
  return usage("catalog takes import, fetch or diff");
}

/* The builtin table as Markdown, for lang/README.md (a test keeps the two
 * equal). */
static int cmd_builtins(void) {
  puts("| call | arguments | result | meaning |");
  puts("|---|---|---|---|");
  for (int i = 0; i < sema_nbuiltins; i++) {
    const sema_builtin *b = &sema_builtins[i];
    char call[64];
    if (b->method) snprintf(call, sizeof call, "`x.%s(%s)`", b->name, b->nargs > 1 ? "y" : "");
    else snprintf(call, sizeof call, "`%s(x)`", b->name);
    printf("| %s | %s%s%s | %s | %s%s |\n", call, sema_ty_name(b->args[0]),
           b->nargs > 1 ? ", " : "", b->nargs > 1 ? sema_ty_name(b->args[1]) : "",
           sema_ty_name(b->result), b->doc, b->op == -1 ? " (constants only)" : "");
  }
  return 0;
}

int main(int argc, char **argv) {
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
  if (parse_args(&c, argc, argv) != 0) return usage(NULL);
  if (!strcmp(c.cmd, "compile")) return cmd_compile(&c);
  if (!strcmp(c.cmd, "check")) return cmd_check(&c);
  if (!strcmp(c.cmd, "fmt"))
    return c.nfiles < 1 ? usage("fmt takes policy files")
                        : fmt_command(c.files, c.nfiles, c.check, c.diff, stdout, stderr);
  if (!strcmp(c.cmd, "lint"))
    return c.nfiles == 1 ? lint_command(c.files[0], &c.opts, c.enable, c.nenable, c.disable,
                                        c.ndisable, c.format, stdout, stderr)
                         : usage("lint takes one policy file");
  if (!strcmp(c.cmd, "test")) return cmd_test(&c);
  if (!strcmp(c.cmd, "disasm")) return cmd_disasm(&c);
  if (!strcmp(c.cmd, "eval")) return cmd_eval(&c);
  if (!strcmp(c.cmd, "builtins")) return cmd_builtins();
  if (!strcmp(c.cmd, "catalog")) return cmd_catalog(&c);
  fprintf(stderr, "lane: unknown command '%s'\n", c.cmd);
  return usage(NULL);
}

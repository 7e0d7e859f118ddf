/*
 * t_verify.c -- the loader rejects hostile files with the exact message.
 *
 * Reads every tests/golden/lanec/NAME.lanec (or $LANE_GOLDEN_LANEC/...) and
 * compares lane_load's message with NAME.expect. Then, on a valid file:
 * every truncation and every single-bit flip is rejected; a few thousand
 * random corruptions with a resealed checksum never crash, and when one
 * loads, deciding on it terminates; the max_steps limit is exact.
 *
 * And every rejection the loader can give has a hostile file here: the
 * message formats are read from vm/load.c and vm/bc.c and each must match
 * some NAME.expect (printf conversions as wildcards), unless it is on the
 * allow-list below of messages no file can trigger.
 */
#include <ctype.h>
#include <dirent.h>

#include "tap.h"

#include "golden/lanec/asm.h"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *b = NULL;
  long len;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (b = malloc((size_t)len + 1)) != NULL) {
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
  }
  fclose(f);
  return b;
}

/* The .expect messages golden() read, for coverage(). */
static struct expect { char *name, *msg; } expects[512];
static int nexpects;

static void golden(void) {
  const char *dir = getenv("LANE_GOLDEN_LANEC");
  char *names[512], path[4096];
  int n = 0;
  DIR *d;
  struct dirent *e;
  if (!dir) dir = "tests/golden/lanec";
  if (!(d = opendir(dir))) bail("cannot open %s (run from the top of the tree)", dir);
  while ((e = readdir(d)) != NULL && n < 512) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strcmp(e->d_name + len - 6, ".lanec") == 0) {
      names[n] = malloc(len - 5);
      memcpy(names[n], e->d_name, len - 6);
      names[n][len - 6] = 0;
      n++;
    }
  }
  if (e) bail("more than 512 files in %s", dir);
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], cmp_names);
  ok(n >= 18, "%d hostile files", n);
  for (int i = 0; i < n; i++) {
    size_t len = 0, elen = 0;
    unsigned char *b, *want;
    lane_error err;
    lane_program *p;
    snprintf(path, sizeof path, "%s/%s.lanec", dir, names[i]);
    b = slurp(path, &len);
    snprintf(path, sizeof path, "%s/%s.expect", dir, names[i]);
    want = slurp(path, &elen);
    if (!b || !want) {
      ok(0, "%s: cannot read the .lanec or .expect file", names[i]);
      free(b); free(want); free(names[i]);
      continue;
    }
    while (elen && (want[elen - 1] == '\n' || want[elen - 1] == '\r')) want[--elen] = 0;
    memset(&err, 0, sizeof err);
    p = lane_load(b, len, &err);
    ok(p == NULL && err.code != LANE_OK, "%s: rejected (%s)", names[i],
       lane_status_name(err.code));
    is_str(err.message, (char *)want, "%s: message", names[i]);
    lane_program_free(p);
    expects[nexpects].name = names[i];
    expects[nexpects++].msg = (char *)want;
    free(b);
  }
}

/* ---------------------------------------------------------------------
 * Every rejection message of the loader has a hostile file.
 *
 * The loader words its rejections as errf(err, code, FMT, ...) and
 * insn_fail(im, err, pc, FMT, ...), which prefixes "instruction %u (%s): ";
 * two macros build formats from their arguments: RANGE(lim, WHAT) in
 * check_operands and CHECK_STR(what, i, part, idx), through bad_index.
 * This reads those calls from the source (comments removed) and matches
 * every format against the .expect files.
 * ------------------------------------------------------------------- */
static const char *const sources[] = { "vm/load.c", "vm/bc.c" };

#define INSN_PREFIX "instruction %u (%s): "

/* Formats that wrap others rather than being messages: insn_fail's own,
 * and bad_index's, expanded per CHECK_STR use. Each must still be in the
 * source as written here, or the expansions below are out of date. */
static const char *const wrappers[] = {
  INSN_PREFIX "%s",
  "%s %u %s: string index %u out of range (%u strings)",
};
/* RANGE's body, the one format argument that is not only literals. */
#define RANGE_BODY "what \" %u out of range (%u)\""

/* Messages no file can trigger. Each must still be a loader message; where
 * it can be triggered in-process, check() does so and the message must
 * match. */
static lane_program *no_bytes(lane_error *err) { return lane_load(NULL, 5, err); }

static lane_program *too_large(lane_error *err) {
  static const unsigned char b[64] = "\x89LNC\r\n\x1a\n";
  lane_load_options opt = { .max_bytes = sizeof b - 1 };
  return lane_load_with(b, sizeof b, &opt, err);
}

/* matches(): a program with S_MATCH on `pattern` (slot 0), and a second
 * S_MATCH on `other` in the same slot when it is not NULL; loaded with
 * `engine` installed, then liblane-re's again. */
static lane_program *with_match(const lane_regex_engine *engine, const char *pattern,
                                const char *other, lane_error *err) {
  la *a = la_new();
  uint32_t m0 = la_model(a, "acme.m", 1, 1, 1000, 100, 0.5, 100, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m0 });
  la_route(a, "chat", 0);
  la_rule(a, "req.task.matches(...)");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_TASK);
  la_op(a, BC_OP_S_MATCH, 0, 0, la_str(a, pattern));
  if (other) {
    la_op(a, BC_OP_LOAD, 0, 0, BC_F_TASK);
    la_op(a, BC_OP_S_MATCH, 0, 0, la_str(a, other));
    la_op(a, BC_OP_EQ_B, 0, 0, 0);
  }
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_route_end(a);
  lane_regex_install(engine);
  lane_program *p = la_load(a, err);
  lane_regex_install(lane_regex_pcre2());
  free(a);
  return p;
}

static lane_program *no_engine(lane_error *err) { return with_match(NULL, "a+", NULL, err); }
static lane_program *slot_clash(lane_error *err) {
  return with_match(lane_regex_pcre2(), "a+", "b+", err);
}
static lane_program *bad_pattern(lane_error *err) {
  return with_match(lane_regex_pcre2(), "(a)\\1", NULL, err);
}

static const struct allowed {
  const char *fmt, *why;
  int code;                                /* the status it comes with */
  lane_program *(*check)(lane_error *);
} allowed[] = {
  /* A NULL pointer with a length is an argument error (LANE_EARG), not a
   * file: no bytes to put in one. */
  { "no bytes given", "lane_load(NULL, 5): an argument, not a file", LANE_EARG, no_bytes },
  /* Needs a file over the 64 MiB default; the same check with a smaller
   * max_bytes is made here. */
  { "file too large: %zu bytes, the limit is %zu",
    "a file over 64 MiB; triggered with lane_load_with's max_bytes", LANE_ELIMIT, too_large },
  /* malloc failing: t_oom fails every allocation of lane_load on each file
   * in tests/golden/lanec and wants LANE_ENOMEM each time. */
  { "out of memory loading %zu bytes", "malloc failing (t_oom)", LANE_ENOMEM, NULL },
  /* calloc failing for the verifier's state: t_oom, as above. */
  { "out of memory verifying %u instructions", "calloc failing (t_oom)", LANE_ENOMEM, NULL },
  /* matches(): which engine is installed is the host's, not the file's;
   * each is triggered here by installing none, or PCRE2's. */
  { "the program uses matches(), and no regular-expression engine is installed: link "
    "liblane-re and call lane_regex_install(lane_regex_pcre2())",
    "no engine installed (lane_regex_install(NULL))", LANE_EARG, no_engine },
  { INSN_PREFIX "slot %u holds another pattern", "needs an engine to compile the first",
    LANE_EFORMAT, slot_clash },
  { INSN_PREFIX "pattern \"%.60s\": %s", "the engine's refusal: a backreference",
    LANE_EFORMAT, bad_pattern },
  { "out of memory compiling %u patterns", "calloc failing (t_oom)", LANE_ENOMEM, NULL },
};
#define NALLOWED (int)(sizeof allowed / sizeof allowed[0])

/* Whether text t is what printf format f can print: %d and %u digits (and
 * a sign for %d), %x hex digits, %g a number, nan or inf, %s anything. */
static int fmt_match(const char *f, const char *t) {
  for (;;) {
    const char *cls;
    int any = 0, len;
    if (*f != '%' || f[1] == '%') {
      if (*f == '%') f++;
      if (*f != *t) return 0;
      if (!*f) return 1;
      f++, t++;
      continue;
    }
    for (f++; strchr("-+ #0123456789.*", *f) && *f; f++) {}
    while (strchr("hljzt", *f) && *f) f++;
    switch (*f) {
    case 'd': case 'i': cls = "-0123456789"; break;
    case 'u': cls = "0123456789"; break;
    case 'x': case 'X': cls = "0123456789abcdefABCDEF"; break;
    case 'g': case 'f': case 'e': cls = "-+.0123456789eEinfaINFA"; break;
    case 's': cls = NULL; any = 1; break;
    default: return 0;   /* a conversion this test does not know */
    }
    f++;
    len = any ? (int)strlen(t) : (int)strspn(t, cls);
    for (int k = len; k >= (any ? 0 : 1); k--)
      if (fmt_match(f, t + k)) return 1;
    return 0;
  }
}

/* Text without comments: each comment byte becomes a space (newlines kept). */
static void strip_comments(char *s) {
  for (char *p = s; *p; p++) {
    if (*p == '"' || *p == '\'') {
      char q = *p;
      for (p++; *p && *p != q; p++)
        if (*p == '\\' && p[1]) p++;
      if (!*p) return;
    } else if (p[0] == '/' && p[1] == '*') {
      char *e = strstr(p + 2, "*/");
      char *end = e ? e + 2 : p + strlen(p);
      for (; p < end; p++) if (*p != '\n') *p = ' ';
      p--;
    } else if (p[0] == '/' && p[1] == '/') {
      for (; *p && *p != '\n'; p++) *p = ' ';
      p--;
    }
  }
}

/* Splits the argument list that starts at s (just after '(') into args
 * [start, end) pairs; returns the count, or -1 if unbalanced. */
static int split_args(const char *s, const char *arg[][2], int max) {
  int depth = 0, n = 0;
  const char *start = s;
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\'') {
      char q = *p;
      for (p++; *p && *p != q; p++)
        if (*p == '\\' && p[1]) p++;
      if (!*p) return -1;
    } else if (*p == '(' || *p == '[' || *p == '{') {
      depth++;
    } else if ((*p == ')' || *p == ']' || *p == '}') && depth) {
      depth--;
    } else if ((*p == ',' && !depth) || *p == ')') {
      if (n == max) return -1;
      arg[n][0] = start;
      arg[n++][1] = p;
      if (*p == ')') return n;
      start = p + 1;
    }
  }
  return -1;
}

/* Reads an argument made only of string literals (whitespace and line
 * continuations between them) into out: 1; no literal at all: 0; literals
 * mixed with anything else: -1. */
static int literal(const char *p, const char *end, char *out, size_t cap) {
  size_t n = 0;
  int lits = 0, other = 0;
  while (p < end) {
    if (*p == '"') {
      for (p++; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
          c = *++p;
          if (c == 'n') c = '\n';
          else if (c == 't') c = '\t';
        }
        if (n + 1 < cap) out[n++] = c;
      }
      p++;
      lits++;
    } else {
      if (!strchr(" \t\r\n\\", *p)) other = 1;
      p++;
    }
  }
  out[n] = 0;
  return lits && !other ? 1 : lits ? -1 : 0;
}

/* Writes arg as one line with runs of whitespace as one space. */
static void squeeze(const char *p, const char *end, char *out, size_t cap) {
  size_t n = 0;
  while (p < end && strchr(" \t\r\n\\", *p)) p++;
  for (; p < end && n + 1 < cap; p++) {
    if (strchr(" \t\r\n\\", *p)) {
      while (p + 1 < end && strchr(" \t\r\n\\", p[1])) p++;
      if (p + 1 < end) out[n++] = ' ';
    } else {
      out[n++] = *p;
    }
  }
  out[n] = 0;
}

typedef struct message { char fmt[256]; const char *file; int line; } message;

static void add_message(message *m, int *n, const char *fmt, const char *file, int line) {
  for (int i = 0; i < *n; i++)
    if (strcmp(m[i].fmt, fmt) == 0) return;
  if (*n == 256) bail("more than 256 messages");
  if (strlen(fmt) >= sizeof m[*n].fmt) bail("%s:%d: message too long for this test", file, line);
  memcpy(m[*n].fmt, fmt, strlen(fmt) + 1);
  m[*n].file = file;
  m[(*n)++].line = line;
}

/* Collects the loader's message formats into m; returns how many, or -1
 * after a failed test naming a call it cannot read. */
static int messages(message *m) {
  int n = 0, wrapper_seen[2] = {0, 0}, range_seen = 0, bad = 0;
  for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
    size_t len = 0;
    char *src = (char *)slurp(sources[k], &len);
    if (!src) bail("cannot read %s (run from the top of the tree)", sources[k]);
    strip_comments(src);
    for (char *p = src; *p; p++) {
      static const char *const names[] = { "errf", "insn_fail", "RANGE", "CHECK_STR" };
      const char *arg[8][2];
      char lit[256], part[256], fmt[600], raw[256];
      int which = -1, nargs, line = 1, r;
      if (*p == '"' || *p == '\'') {          /* not inside literals */
        char q = *p;
        for (p++; *p && *p != q; p++)
          if (*p == '\\' && p[1]) p++;
        if (!*p) break;
        continue;
      }
      if (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) continue;
      for (int i = 0; i < 4; i++)
        if (strncmp(p, names[i], strlen(names[i])) == 0) which = i;
      if (which < 0) continue;
      char *q = p + strlen(names[which]);
      if (isalnum((unsigned char)*q) || *q == '_') continue;
      while (isspace((unsigned char)*q)) q++;
      if (*q != '(') continue;
      for (char *c = src; c < p; c++) line += *c == '\n';
      nargs = split_args(q + 1, arg, 8);
#define UNREAD(...) { bad++; diag(__VA_ARGS__); continue; }
      if (which == 0 || which == 1) {          /* errf, insn_fail */
        int at = which == 0 ? 2 : 3;
        if (nargs <= at)
          UNREAD("%s:%d: %s with %d arguments", sources[k], line, names[which], nargs)
        r = literal(arg[at][0], arg[at][1], lit, sizeof lit);
        squeeze(arg[at][0], arg[at][1], raw, sizeof raw);
        if (r == 0 && strcmp(raw, "const char *fmt") == 0) continue;   /* its definition */
        if (r == -1 && which == 1 && strcmp(raw, RANGE_BODY) == 0) { range_seen++; continue; }
        if (r != 1) UNREAD("%s:%d: cannot read the format of %s: %s", sources[k], line,
                           names[which], raw)
        if (which == 0 && strcmp(lit, wrappers[0]) == 0) { wrapper_seen[0]++; continue; }
        if (which == 0 && strcmp(lit, wrappers[1]) == 0) { wrapper_seen[1]++; continue; }
        snprintf(fmt, sizeof fmt, "%s%s", which == 1 ? INSN_PREFIX : "", lit);
      } else if (which == 2) {                 /* RANGE(lim, what) */
        if (nargs != 2) UNREAD("%s:%d: RANGE with %d arguments", sources[k], line, nargs)
        r = literal(arg[1][0], arg[1][1], lit, sizeof lit);
        squeeze(arg[1][0], arg[1][1], raw, sizeof raw);
        if (r == 0 && strcmp(raw, "what") == 0) continue;              /* its #define */
        if (r != 1) UNREAD("%s:%d: cannot read RANGE's what: %s", sources[k], line, raw)
        snprintf(fmt, sizeof fmt, "%s%s %%u out of range (%%u)", INSN_PREFIX, lit);
      } else {                                 /* CHECK_STR(what, i, part, idx) */
        if (nargs != 4) UNREAD("%s:%d: CHECK_STR with %d arguments", sources[k], line, nargs)
        r = literal(arg[0][0], arg[0][1], lit, sizeof lit);
        squeeze(arg[0][0], arg[0][1], raw, sizeof raw);
        if (r == 0 && strcmp(raw, "what") == 0) continue;              /* its #define */
        squeeze(arg[2][0], arg[2][1], part, sizeof part);
        if (r == 1 && strcmp(part, "p->member") == 0) {   /* every string of BC_MPROPS */
          for (int mp = 0; mp < BC_NMPROPS; mp++)
            if (bc_mprops[mp].off >= 0 && bc_mprops[mp].mt == 'S') {
              snprintf(fmt, sizeof fmt, "%s %%u %s: string index %%u out of range (%%u strings)",
                       lit, bc_mprops[mp].member);
              add_message(m, &n, fmt, sources[k], line);
            }
          continue;
        }
        if (r != 1 || literal(arg[2][0], arg[2][1], part, sizeof part) != 1)
          UNREAD("%s:%d: cannot read CHECK_STR's what and part", sources[k], line)
        snprintf(fmt, sizeof fmt, "%s %%u %s: string index %%u out of range (%%u strings)", lit,
                 part);
      }
#undef UNREAD
      add_message(m, &n, fmt, sources[k], line);
    }
    free(src);
  }
  ok(!bad, "every errf, insn_fail, RANGE and CHECK_STR call of the loader is read");
  ok(wrapper_seen[0] == 1 && wrapper_seen[1] == 1 && range_seen == 1,
     "insn_fail, bad_index and RANGE still word their messages as this test expands them");
  return bad ? -1 : n;
}

/* Checks the loader's messages against the .expect files. */
static void coverage(void) {
  static message m[256];
  int n, uncovered = 0, strays = 0;
  int used[NALLOWED];
  memset(used, 0, sizeof used);

  ok(fmt_match("model %u out of range (%u)", "model 2 out of range (2)") &&
     !fmt_match("model %u out of range (%u)", "model field 17 out of range (17)") &&
     fmt_match("route %s: %u fallbacks", "route a b: 9 fallbacks") &&
     fmt_match("model %u (%s): %s %g is", "model 1 (x): input price nan is") &&
     fmt_match("flags 0x%04x, 100%%", "flags 0x0001, 100%") &&
     !fmt_match("field %u: x", "field : x") && !fmt_match("a %d", "a 1b"),
     "fmt_match: conversions match what they print, and only that");
  n = messages(m);
  if (n < 0) return;
  ok(n >= 100, "%d rejection messages in the loader", n);
  for (int i = 0; i < n; i++) {
    int a = -1, hit = -1;
    for (int k = 0; k < NALLOWED; k++)
      if (strcmp(allowed[k].fmt, m[i].fmt) == 0) a = k;
    if (a >= 0) {
      lane_error err;
      lane_program *p;
      used[a] = 1;
      if (!allowed[a].check) {
        diag("allowed without a file: %s (%s)", m[i].fmt, allowed[a].why);
        continue;
      }
      memset(&err, 0, sizeof err);
      p = allowed[a].check(&err);
      ok(!p && err.code == allowed[a].code && fmt_match(m[i].fmt, err.message),
         "allowed without a file: %s (%s): got %s, %s", m[i].fmt, allowed[a].why,
         lane_status_name(err.code), err.message);
      lane_program_free(p);
      continue;
    }
    for (int k = 0; k < nexpects && hit < 0; k++)
      if (fmt_match(m[i].fmt, expects[k].msg)) hit = k;
    if (hit < 0) uncovered++;
    ok(hit >= 0, "%s:%d: \"%s\": %s%s", m[i].file, m[i].line, m[i].fmt,
       hit >= 0 ? expects[hit].name : "no hostile file gives this message",
       hit >= 0 ? ".expect" : "");
  }
  for (int k = 0; k < NALLOWED; k++)
    ok(used[k], "allow-list entry is a message of the loader: %s", allowed[k].fmt);
  /* The other way round: each .expect is one of the loader's messages. */
  for (int k = 0; k < nexpects; k++) {
    int hits = 0;
    for (int i = 0; i < n; i++) hits += fmt_match(m[i].fmt, expects[k].msg);
    if (hits != 1) {
      strays++;
      diag("%s.expect matches %d loader messages: %s", expects[k].name, hits, expects[k].msg);
    }
  }
  ok(!strays, "each of the %d .expect files matches exactly one loader message", nexpects);
  ok(!uncovered, "%d of %d loader messages have a hostile file or a reason on the allow-list",
     n - uncovered, n);
}

/* A valid program with a filter, lists, several rules and a runtime-error
 * path, for the corruption tests. */
static la *valid(void) {
  la *a = la_new();
  uint32_t team = la_field(a, "team", BC_U_STRING);
  uint32_t m0 = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  uint32_t m1 = la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  uint32_t pool = la_pool(a, 2, (uint32_t[]){ m0 | BC_MEMBER_CHECK, m1 | BC_MEMBER_CHECK });
  uint32_t f = la_filter(a), j;
  la_op(a, BC_OP_M_FITS, 0, 0, 0);
  j = la_op(a, BC_OP_JF_KEEP, 0, 0, 0);
  la_op(a, BC_OP_M_COST, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  la_op(a, BC_OP_LT_D, 0, 0, 0);
  la_patch(a, j);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 1);
  la_rule(a, "req.images / req.images > 0");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  la_then_cand(a, BC_ORD_BEST, (int)f + 1, pool);
  la_rule(a, "req.team in [\"a\"]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  la_op(a, BC_OP_IN_LIST, 0, 0, la_list_str(a, 1, (const char *const[]){ "a" }));
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_SHADOW, 0, 0, m1);
  la_op(a, BC_OP_CAND, BC_ORD_FASTEST, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

static void reseal(unsigned char *b, size_t n) {
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(h >> (8 * i));
}

/* Decides on every route with a few requests; returns 0 if a decision ran
 * past the program's worst case. */
static int exercise(lane_program *p) {
  lane_runtime *rt = lane_runtime_new(p, NULL);
  lane_request r;
  lane_decision d;
  int good = 1;
  if (!rt) return 0;
  for (int k = 0; k < 3; k++) {
    lane_request_init(&r, p);
    if (k > 0) {
      lane_set_int(&r, BC_F_IMAGES, k - 1);
      lane_set_int(&r, BC_F_INPUT_TOKENS, 1000 * k);
    }
    for (int i = 0; i < lane_route_count(p); i++) {
      lane_decide_route(rt, i, &r, &d);
      if (d.steps > lane_program_max_steps(p)) good = 0;
    }
  }
  lane_runtime_free(rt);
  return good;
}

/* Lists and pools may share elements and members: the verifier checks
 * each element and member once (vm/load.c), and still names the fault
 * that checking the lists one by one would. */
static void shared_ranges(void) {
  la *a = valid();
  lane_error err;
  lane_program *p;
  uint32_t nl = a->im.nlists, np = a->im.npools, e;
  char want[160];
  a->lists[nl] = a->lists[0];                       /* a second list over list 0's */
  a->im.nlists = nl + 1;
  a->pools[np] = a->pools[0];                       /* a second pool over pool 0's */
  a->im.npools = np + 1;
  p = la_load(a, &err);
  ok(p != NULL, "lists and pools sharing a range load%s%s", p ? "" : ": ", p ? "" : err.message);
  lane_program_free(p);
  /* the shared element a string but no int constant: bad for the second
   * list only, though the first is checked first */
  a->lists[nl].type = LANE_T_INT;
  e = a->listelems[a->lists[0].first] = a->im.nstr - 1;
  p = la_load(a, &err);
  snprintf(want, sizeof want, "list %u element 0: int constant %u out of range (%u)",
           (unsigned)nl, (unsigned)e, (unsigned)a->im.nkint);
  ok(!p && e >= a->im.nkint, "shared element bad for the second list only: refused");
  is_str(err.message, want, "shared element bad for the second list only: names it");
  lane_program_free(p);
  /* bad for both: the first list is named */
  e = a->listelems[a->lists[0].first] = a->im.nstr + 5;
  p = la_load(a, &err);
  snprintf(want, sizeof want, "list 0 element 0: string %u out of range (%u)", (unsigned)e,
           (unsigned)a->im.nstr);
  ok(!p, "shared element bad for both lists: refused");
  is_str(err.message, want, "shared element bad for both lists: names the first");
  lane_program_free(p);
  free(a);
}

int main(void) {
  lane_regex_install(lane_regex_pcre2());   /* files with matches() load */
  la *a = valid();
  size_t n;
  unsigned char *v = la_bytes(a, &n), *b = malloc(n);
  lane_error err;
  lane_program *p;
  int all = 1, worst_ok = 1, loaded = 0;
  uint64_t worst;
  uint32_t seed = 12345;

  golden();
  coverage();
  shared_ranges();

  p = lane_load(v, n, &err);
  ok(p != NULL, "valid program loads%s%s", p ? "" : ": ", p ? "" : err.message);
  if (!p) bail("cannot continue");
  ok(exercise(p), "decisions stay within the worst case");
  worst = lane_program_max_steps(p);
  lane_program_free(p);

  for (size_t len = 0; len < n; len++) {
    p = lane_load(v, len, &err);
    if (p || err.code == LANE_OK || !err.message[0]) all = 0;
    lane_program_free(p);
  }
  ok(all, "every truncation of a %zu-byte file is rejected", n);

  all = 1;
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(b, v, n);
      b[i] ^= (unsigned char)(1u << bit);
      p = lane_load(b, n, &err);
      if (p || err.code == LANE_OK || !err.message[0]) all = 0;
      lane_program_free(p);
    }
  ok(all, "every single-bit flip is rejected");

  /* Corruptions past the checksum: the verifier must hold on its own. */
  for (int k = 0; k < 20000; k++) {
    int flips = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
    memcpy(b, v, n);
    for (int f = 0; f < flips; f++) {
      size_t at;
      seed = seed * 1103515245u + 12345u;
      at = 32 + (seed >> 8) % (n - 32);
      seed = seed * 1103515245u + 12345u;
      b[at] = (seed >> 20) & 1 ? (unsigned char)(seed >> 8) : b[at] ^ (unsigned char)(1u << ((seed >> 9) & 7));
    }
    reseal(b, n);
    p = lane_load(b, n, &err);
    if (p) {
      loaded++;
      if (!exercise(p)) worst_ok = 0;
      lane_program_free(p);
    } else if (err.code == LANE_OK || !err.message[0]) {
      all = 0;
    }
  }
  ok(all, "resealed corruptions: every rejection has a status and a message");
  ok(worst_ok, "resealed corruptions: %d loaded, none ran past its worst case", loaded);

  {
    lane_load_options opt = { worst - 1, 0 };
    p = lane_load_with(v, n, &opt, &err);
    ok(p == NULL && err.code == LANE_ELIMIT, "max_steps one below the worst case: ELIMIT");
    is_str(err.message, "route chat: worst case of 50 instructions exceeds the limit of 49",
           "limit message");
    opt.max_steps = worst;
    p = lane_load_with(v, n, &opt, &err);
    ok(p != NULL, "max_steps equal to the worst case loads");
    lane_program_free(p);
    opt.max_steps = 0;
    opt.max_bytes = n - 1;
    p = lane_load_with(v, n, &opt, &err);
    ok(p == NULL && err.code == LANE_ELIMIT, "max_bytes: ELIMIT");
  }
  p = lane_load(NULL, 0, &err);
  ok(p == NULL && err.code == LANE_EFORMAT, "NULL, 0 is an empty file");
  p = lane_load(v, n, NULL);
  ok(p != NULL, "err may be NULL");
  lane_program_free(p);
  free(b);
  free(v);
  free(a);
  for (int i = 0; i < nexpects; i++) {
    free(expects[i].name);
    free(expects[i].msg);
  }
  return done_testing();
}

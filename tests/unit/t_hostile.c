/*
 * t_hostile.c -- hostile input, end to end.
 *
 * Bytecode: a compiled program with each section's offset, then its size,
 * wrong in turn (past the end of the file, inside the header, not whole
 * records, overlapping the next section), resealed so the checksum does not
 * hide the fault: each must be refused with LANE_EFORMAT naming a section.
 * Source: huge literals, pathological Unicode, long lines, deep nesting, a
 * file over the size limit, too many rules: each must give the documented
 * error (or compile, where the input is legal), never crash.
 * The golden suites hold the exact messages (tests/golden/lanec,
 * tests/golden/reject/limit_*); this test covers the combinations.
 */
#include "tap.h"
#include "sema.h"

static const char policy[] =
  "request { spent: double }\n"
  "model a { input $1/Mtok output $2/Mtok context 8k caps vision quality 0.5 }\n"
  "model b { input $3/Mtok output $4/Mtok context 128k quality 0.9 }\n"
  "request { team: string }\n"
  "pool p = models where quality > 0.1\n"
  "budget t { key req.team  limit $10  window 1d }\n"
  "route r {\n  require fits\n"
  "  when req.tier == \"a\" -> a\n  when req.tier == \"b\" -> b\n"
  "  when req.tier == \"c\" -> best(p)\n  when req.tier == \"d\" -> a\n"
  "  when req.team in [\"x\", \"y\"] -> cheapest(p where cost < $0.01)\n"
  "  when budget.t.used > 50% -> fastest(models)\n"
  "  otherwise -> split { a: 50%, b: 50% } by req.user\n}\n";

/* Compiles text; returns the bytes (caller frees) or NULL, with the
 * diagnostics rendered into msg. */
static unsigned char *compile(const char *text, size_t *n, char *msg, size_t cap) {
  lanec_result r;
  unsigned char *b = NULL;
  if (lanec_compile("hostile.lane", text, NULL, &r) == LANEC_OK) {
    b = r.bytes;
    *n = r.nbytes;
    r.bytes = NULL;
  }
  FILE *m = fmemopen(msg, cap, "w");
  if (m) { lanec_print_diags(&r, m); fclose(m); }
  msg[cap - 1] = '\0';
  lanec_result_free(&r);
  return b;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void reseal(unsigned char *b, size_t n) {
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(h >> (8 * i));
}

/* Loads a mutated copy; 1 if refused with EFORMAT and a message naming a
 * section. */
static int refused(const unsigned char *v, size_t n, int entry, int field, uint32_t value,
                   char *why, size_t cap) {
  unsigned char *b = malloc(n);
  lane_error err;
  memcpy(b, v, n);
  put32(b + 32 + 12 * entry + 4 * field, value);
  reseal(b, n);
  lane_program *p = lane_load(b, n, &err);
  free(b);
  snprintf(why, cap, "%s", p ? "loaded" : err.message);
  lane_program_free(p);
  return !p && err.code == LANE_EFORMAT && strstr(err.message, "section") != NULL;
}

static void sections(void) {
  char msg[4096], why[256];
  size_t n;
  unsigned char *v = compile(policy, &n, msg, sizeof msg);
  if (!v) { ok(0, "the base policy compiles: %s", msg); return; }
  uint32_t nsec = get32(v + 12), table_end = 32 + 12 * nsec;
  int bad = 0, cases = 0;
  for (uint32_t i = 0; i < nsec; i++) {
    const unsigned char *e = v + 32 + 12 * i;
    uint32_t off = get32(e + 4), size = get32(e + 8);
    struct { int field; uint32_t value; const char *what; } m[] = {
      {1, (uint32_t)n, "offset at the end of the file, size kept"},
      {1, (uint32_t)n - 4 < off ? off + 1 : (uint32_t)n - 4, "offset near the end"},
      {1, 8, "offset inside the header"},
      {1, table_end - 4, "offset inside the section table"},
      {1, 0xFFFFFFF0u, "offset near 2^32"},
      {2, (uint32_t)n, "size past the end"},
      {2, 0xFFFFFFFFu, "size 2^32 - 1"},
      {2, size + 4097, "size into the next section or past the end"},
    };
    if (!size) continue;   /* an empty section is fine anywhere */
    for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
      if (m[k].field == 1 && m[k].value == off) continue;
      cases++;
      if (!refused(v, n, (int)i, m[k].field, m[k].value, why, sizeof why) && bad++ < 5)
        diag("section entry %u (id %u), %s: %s", (unsigned)i, (unsigned)get32(e), m[k].what, why);
    }
  }
  ok(!bad, "%d section offsets and sizes wrong in turn, each refused naming a section", cases);
  free(v);
}

/* Compiles text and checks that it fails with want in the messages (or
 * compiles when want is NULL). */
static void hostile(const char *what, const char *text, const char *want) {
  char msg[8192] = "";
  size_t n;
  unsigned char *b = compile(text, &n, msg, sizeof msg);
  if (!want) {
    ok(b != NULL, "%s: compiles", what);
    if (!b) diag("%.300s", msg);
  } else {
    ok(!b && strstr(msg, want), "%s: refused with \"%s\"", what, want);
    if (b || !strstr(msg, want)) diag("%.300s", msg);
  }
  free(b);
}

static char *repeat(const char *head, const char *unit, int times, const char *tail) {
  size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
  char *s = malloc(hl + ul * (size_t)times + tl + 1), *p = s;
  memcpy(p, head, hl); p += hl;
  for (int i = 0; i < times; i++) { memcpy(p, unit, ul); p += ul; }
  memcpy(p, tail, tl + 1);
  return s;
}

/* A NUL byte in a file (the text API takes C strings, so through a file). */
static void nul_byte(void) {
  static const char text[] = "model m { input $1/Mtok output $1/Mtok }\nroute r {\0 otherwise -> m }\n";
  char path[] = "/tmp/lane-t_hostile-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f || fwrite(text, 1, sizeof text - 1, f) != sizeof text - 1 || fclose(f)) {
    ok(0, "cannot write %s", path);
    return;
  }
  lanec_result r;
  lanec_diag d = {0};
  int rc = lanec_compile(path, NULL, NULL, &r);
  if (lanec_diag_count(&r) > 0) lanec_diag_get(&r, 0, &d);
  ok(rc == LANEC_EPOLICY && d.message && strstr(d.message, "unexpected byte 0x00"),
     "a NUL byte in a file: \"unexpected byte 0x00\"");
  lanec_result_free(&r);
  remove(path);
}

static void policies(void) {
  const char *M = "model m { input $1/Mtok output $1/Mtok }\nrequest { spent: double }\n";
  char buf[2048];
  char *s;
#define ROUTE(cond) (snprintf(buf, sizeof buf, "%sroute r {\n  when %s -> m\n  otherwise -> m\n}\n", M, cond), buf)
  hostile("an integer literal past 2^64", ROUTE("req.images > 123456789012345678901234567890"),
          "too large");
  hostile("an integer literal of 2^63", ROUTE("req.images > 9223372036854775808"), "too large");
  hostile("a double literal past DBL_MAX", ROUTE("req.spent > 1e999"), "number 1e999 is out of range");
  hostile("a duration past DBL_MAX", ROUTE("req.latency_budget > 1e306d"), "duration 1e306d is out of range");
  hostile("a price past DBL_MAX", ROUTE("cost < $1e999"), "out of range");
  hostile("a price with an exponent past LONG_MIN (fuzz: compile/regress-price-exponent-overflow)",
          "model m { input $1e-99999999999999999999/Mtok output $1/Mtok }\nroute r { otherwise -> m }\n",
          NULL);
  hostile("tokens past 2^63", ROUTE("req.input_tokens > 99999999999999999M"), "error");
  hostile("a non-ASCII identifier", ROUTE("req.t\xc3\xa9nant == \"x\""), "unexpected");
  hostile("invalid UTF-8 in a string", ROUTE("req.tier == \"\xff\xfe\""), "invalid UTF-8");
  hostile("an overlong UTF-8 encoding", ROUTE("req.tier == \"\xc0\xaf\""), "invalid UTF-8");
  hostile("a UTF-16 surrogate in UTF-8", ROUTE("req.tier == \"\xed\xa0\x80\""), "invalid UTF-8");
  hostile("bidi overrides and combining marks in a string",
          ROUTE("req.tier == \"\xe2\x80\xae\x61\xcc\x81\xcc\x81\xcc\x81\xe2\x80\xac\""), NULL);
  hostile("an escape for a surrogate", ROUTE("req.tier == \"\\ud800\""), "error");
  s = repeat("model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when req.images > 0", " ",
             200000, "-> m\n  otherwise -> m\n}\n");
  hostile("a line of 200,000 bytes", s, NULL);
  free(s);
  s = repeat("model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when ", "-", 5000,
             "req.images > 0 -> m\n  otherwise -> m\n}\n");
  hostile("5,000 unary minus signs", s, "nesting is too deep");
  free(s);
  s = repeat("model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when req.images > 0", " || req.tools",
             100000, " -> m\n  otherwise -> m\n}\n");
  hostile("a chain of 100,000 ||", s, "nesting is too deep");
  free(s);
  s = repeat("model m { input $1/Mtok output $1/Mtok }\nroute r {\n  when ", "(", 20000,
             "req.tools -> m\n  otherwise -> m\n}\n");
  hostile("20,000 open parentheses", s, "error");
  free(s);
  s = repeat("model m { input $1/Mtok output $1/Mtok }\nroute r {\n", "  when req.images == 1 -> m\n",
             SEMA_MAX_RULES + 1, "}\n");
  {
    char want[80];
    snprintf(want, sizeof want, "route 'r' has %d rules, the limit is %d", SEMA_MAX_RULES + 1,
             SEMA_MAX_RULES);
    hostile("a route of one rule over the limit", s, want);
  }
  free(s);
  s = repeat("model m { input $1/Mtok output $1/Mtok }\n", "#", AST_MAX_SOURCE, "\n");
  hostile("a file over 8 MiB", s, "file is larger than the limit of 8388608 bytes");
  free(s);
  s = repeat("", "model m", 4097, "");
  {   /* 4097 models: m0000 .. m4096 */
    char *t = malloc(4097 * 48 + 64), *p = t;
    for (int i = 0; i < 4097; i++)
      p += sprintf(p, "model m%04d { input $1/Mtok output $1/Mtok }\n", i);
    strcpy(p, "route r { otherwise -> m0000 }\n");
    hostile("4097 models", t, "too many models (at most 4096)");
    free(t);
  }
  free(s);
#undef ROUTE
}

int main(void) {
  sections();
  policies();
  nul_byte();
  return done_testing();
}

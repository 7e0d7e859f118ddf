/*
 * t_bundle.c -- liblane-bundle through its API (lane_bundle.h), on
 * bundles made in-process from sources in memory (a sealed set, through
 * bundle_make): opening, signatures and keys, every truncation and every
 * flipped byte of a signed bundle, each rule of the container and of the
 * manifest broken in turn (containers written anew with the library's own
 * writer, so that only the rule under test is broken), lane_bundle_test
 * (passing, failing, a program its sources do not give, sources that do
 * not compile, the report cut to its buffer, from several threads), the
 * program taken, files read, public key files.
 */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "lane_bundle.h"
#include "tap.h"
#include "bundle_policy.h"

static const char TESTS[] =
  "test \"in the outage the small one answers\" {\n"
  "  route r\n  state \"../state/outage.json\"\n"
  "  req { tier: \"pro\", input_tokens: 1k, max_output_tokens: 100 }\n"
  "  expect primary == fleet.small\n"
  "}\n";
static unsigned char PK[32], SK[64], PK2[32], SK2[64];

/* Makes a bundle of the policy: tests (NULL: none) as p/policy_test.lane,
 * recorded with opts rec (NULL: as compiled), compiled with -I inc when
 * inc, and with -O0 when no_opt. */
static unsigned char *make(const char *tests, const unsigned char *sk, int no_opt,
                           const lanec_opts *rec, size_t *n) {
  static const char inc_fleet[] = "model big { input $1/Mtok output $1/Mtok }\n";
  lanec_file files[] = {{"inc/other.lane", inc_fleet, sizeof inc_fleet - 1},
                        {"p/fleet.lane", FLEET, sizeof FLEET - 1},
                        {"p/policy.lane", POLICY, sizeof POLICY - 1},
                        {"p/policy_test.lane", tests ? tests : "", tests ? strlen(tests) : 0},
                        {"state/outage.json", SNAPSHOT, sizeof SNAPSHOT - 1}};
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.files = files;
  o.nfiles = 5;
  o.tests = tests ? "p/policy_test.lane" : NULL;
  o.no_opt = no_opt;
  lanec_result r;
  unsigned char *b = NULL;
  lane_error err;
  if (lanec_compile("p/policy.lane", NULL, &o, &r) != LANEC_OK) {
    lanec_print_diags(&r, stdout);
    bail("the test policy does not compile");
  }
  bundle_build_opts bo = {sk ? "r-1" : NULL, sk, 1764331200};
  if (bundle_make(&r, rec ? rec : &o, &bo, &b, n, &err) != LANE_OK) bail("bundle_make: %s", err.message);
  lanec_result_free(&r);
  return b;
}

static int open_ok(const unsigned char *b, size_t n, const unsigned char *pk, lane_bundle **out) {
  lane_error err;
  int rc = lane_bundle_open(b, n, pk, out, &err);
  if (rc != LANE_OK) diag("refused: %s", err.message);
  return rc;
}

/* Opens b and returns the status; the reason in WHY. */
static char WHY[256];
static int refused(const unsigned char *b, size_t n, const unsigned char *pk) {
  lane_bundle *bd = (lane_bundle *)1;
  lane_error err;
  memset(&err, 0, sizeof err);
  int rc = lane_bundle_open(b, n, pk, &bd, &err);
  snprintf(WHY, sizeof WHY, "%s", err.message);
  if (rc == LANE_OK) lane_bundle_free(bd);
  else if (bd != NULL || !err.message[0] || err.code != rc) return -1;   /* broken refusal */
  return rc;
}

/* ---- rewriting bundles: each rule broken alone ---- */

typedef struct parts {
  int           n;
  int           kind[8];
  char          name[8][64];
  unsigned char *data[8];
  size_t        len[8];
} parts;

static void split(const unsigned char *b, size_t n, parts *p) {
  bundle_entry *e;
  lane_error err;
  if (bundle_parse(b, n, &e, &p->n, &err) != LANE_OK || p->n > 8) bail("split: %s", err.message);
  for (int i = 0; i < p->n; i++) {
    p->kind[i] = e[i].kind;
    snprintf(p->name[i], sizeof p->name[i], "%.*s", (int)e[i].nname, e[i].name);
    p->data[i] = malloc(e[i].n + 1);
    memcpy(p->data[i], e[i].data, e[i].n);
    p->len[i] = e[i].n;
  }
  free(e);
}

static void parts_free(parts *p) {
  for (int i = 0; i < p->n; i++) free(p->data[i]);
}

/* The parts written as a bundle (announcing count entries; -1: as many as
 * there are), signed with sk when given (a SIG part is then left out). */
static unsigned char *join(const parts *p, int count, const unsigned char *sk, size_t *n) {
  bundle_writer w;
  lane_error err;
  int k = 0;
  for (int i = 0; i < p->n; i++) k += p->kind[i] != BK_SIG || !sk;
  bundle_w_start(&w, count >= 0 ? (uint32_t)count : (uint32_t)(k + (sk != NULL)));
  for (int i = 0; i < p->n; i++)
    if (p->kind[i] != BK_SIG || !sk)
      bundle_w_entry(&w, p->kind[i], p->name[i][0] ? p->name[i] : NULL, p->data[i], p->len[i]);
  if (sk) bundle_w_sign(&w, sk);
  if (bundle_w_finish(&w, &err) != LANE_OK) bail("join: %s", err.message);
  *n = w.n;
  return w.b;
}

/* The manifest of p as JSON (new reference), and back. */
static json_t *manifest_of(const parts *p) {
  json_t *m = json_loadb((const char *)p->data[0], p->len[0], JSON_PRESERVE_ORDER, NULL);
  if (!m) bail("manifest_of");
  return m;
}

static void set_manifest(parts *p, json_t *m) {
  char *s = json_dumps(m, JSON_PRESERVE_ORDER);
  free(p->data[0]);
  p->data[0] = (unsigned char *)s;
  p->len[0] = strlen(s);
  json_decref(m);
}

/* A manifest edit: key set to v (NULL: removed). Opens the result. */
static int with_member(const unsigned char *b, size_t n, const char *key, json_t *v) {
  parts p;
  split(b, n, &p);
  json_t *m = manifest_of(&p);
  if (v) json_object_set_new(m, key, v);
  else json_object_del(m, key);
  set_manifest(&p, m);
  size_t n2;
  unsigned char *b2 = join(&p, -1, NULL, &n2);
  int rc = refused(b2, n2, NULL);
  free(b2);
  parts_free(&p);
  return rc;
}

static void test_open(void) {
  size_t n, ns;
  unsigned char *b = make(NULL, NULL, 0, NULL, &n);
  unsigned char *s = make(TESTS, SK, 0, NULL, &ns);
  lane_bundle *bd = NULL;
  is_int(open_ok(b, n, NULL, &bd), LANE_OK, "an unsigned bundle opens");
  is_int(strlen(lane_bundle_revision(bd)), 12, "  its revision: 12 hex digits of the source digest");
  ok(strstr(lane_bundle_manifest(bd), "\"policy\": \"p/policy.lane\"") != NULL, "  its manifest");
  is_int(lane_route_count(lane_bundle_program(bd)), 1, "  its program, loaded");
  is_int(lane_bundle_signed(bd), LANE_BUNDLE_UNSIGNED, "  unsigned");
  ok(lane_bundle_key_id(bd) == NULL, "  no key id");
  lane_bundle_free(bd);
  char id[LANE_BUNDLE_KEY_ID + 1];
  bundle_key_id(PK, id);
  is_int(open_ok(s, ns, NULL, &bd), LANE_OK, "a signed bundle opens without a key");
  is_int(lane_bundle_signed(bd), LANE_BUNDLE_SIGNED, "  signed, not verified");
  is_str(lane_bundle_key_id(bd), id, "  by the key's id");
  is_str(lane_bundle_revision(bd), "r-1", "  its revision as given");
  lane_bundle_free(bd);
  is_int(open_ok(s, ns, PK, &bd), LANE_OK, "a signed bundle opens with its key");
  is_int(lane_bundle_signed(bd), LANE_BUNDLE_VERIFIED, "  verified");
  lane_bundle_free(bd);
  is_int(refused(s, ns, PK2), LANE_EFORMAT, "another key is refused");
  ok(strstr(WHY, "not by the key given") != NULL, "  %s", WHY);
  is_int(refused(b, n, PK), LANE_EFORMAT, "an unsigned bundle is refused when a key is given");
  ok(strstr(WHY, "is not signed") != NULL, "  %s", WHY);
  lane_error err;
  is_int(lane_bundle_open(NULL, 0, NULL, &bd, &err), LANE_EARG, "no bytes: LANE_EARG");
  is_int(lane_bundle_open(b, n, NULL, NULL, &err), LANE_EARG, "no place for the result: LANE_EARG");
  unsigned char *again = make(NULL, NULL, 0, NULL, &ns);
  ok(ns == n && !memcmp(again, b, n), "the same sources and time give the same bytes");
  free(again);
  free(b);
  free(s);
}

/* Every truncation and every flipped byte of a signed bundle. */
static void test_hostile(void) {
  size_t n;
  unsigned char *b = make(TESTS, SK, 0, NULL, &n);
  int bad = 0, loose = 0;
  for (size_t k = 0; k < n; k++) {
    int rc = refused(b, k, NULL);
    bad += rc != LANE_EFORMAT;
  }
  is_int(bad, 0, "every one of the %zu truncations is refused (LANE_EFORMAT)", n);
  int digest = 0, sig = 0;
  for (size_t k = 0; k < n; k++) {
    b[k] ^= 0x20;
    int rc = refused(b, n, NULL);
    bad += rc != LANE_EFORMAT && rc != LANE_EVERSION;
    digest += rc == LANE_EFORMAT && strstr(WHY, "do not match its digest") != NULL;
    /* the digest recomputed: the signature must catch it */
    if (k < n - BUNDLE_TRAILER) {
      unsigned char keep[BUNDLE_TRAILER];
      memcpy(keep, b + n - BUNDLE_TRAILER, BUNDLE_TRAILER);
      crypto_hash_sha256(b + n - BUNDLE_TRAILER, b, n - BUNDLE_TRAILER);
      rc = refused(b, n, PK);
      loose += rc == LANE_OK;
      sig += rc == LANE_EFORMAT && strstr(WHY, "does not verify") != NULL;
      memcpy(b + n - BUNDLE_TRAILER, keep, BUNDLE_TRAILER);
    }
    b[k] ^= 0x20;
  }
  is_int(bad, 0, "every flipped byte is refused");
  ok(digest > (int)n / 2, "  most by the digest (%d of %zu)", digest, n);
  is_int(loose, 0, "with the digest recomputed, none passes with the key");
  ok(sig > (int)n / 2, "  most by the signature (%d)", sig);
  free(b);
}

/* Each container rule broken alone. */
static void test_container(void) {
  size_t n, n2;
  unsigned char *b = make(TESTS, NULL, 0, NULL, &n), *b2;
  parts p;
  split(b, n, &p);
  is_int(p.n, 6, "the parts: manifest, program, four sources");
  /* version */
  b2 = malloc(n);
  memcpy(b2, b, n);
  b2[8] = 2;
  crypto_hash_sha256(b2 + n - 32, b2, n - 32);
  is_int(refused(b2, n, NULL), LANE_EVERSION, "format version 2: LANE_EVERSION");
  ok(strstr(WHY, "bundle format version 2; this lane reads version 1") != NULL, "  %s", WHY);
  free(b2);
  static const struct { int count; const char *why; } counts[] = {
    {1, "the header announces 1 entries"}, {5, "bytes between the last of 5 entries"},
    {7, "truncated: entry 7 of 7 is cut off"}, {70000, "the header announces 70000 entries"}};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
    b2 = join(&p, counts[i].count, NULL, &n2);
    is_int(refused(b2, n2, NULL), LANE_EFORMAT, "%d entries announced, %d there", counts[i].count, p.n);
    ok(strstr(WHY, counts[i].why) != NULL, "  %s", WHY);
    free(b2);
  }
  /* order, kinds, names */
  struct { int i, kind; const char *name; const char *why; } edits[] = {
    {0, BK_PROGRAM, NULL, "a bundle starts with its MANIFEST"},
    {1, BK_SOURCE, "p/x.lane", "the second entry must be the PROGRAM"},
    {2, BK_PROGRAM, NULL, "one MANIFEST and one PROGRAM, first"},
    {3, BK_SIG, "0123456789abcdef", "a SIG must be the last entry"},
    {0, BK_MANIFEST, "m", "the MANIFEST and the PROGRAM have no name"},
    {3, BK_SOURCE, "p/../p/fleet.lane", "normal form"},
    {3, BK_SOURCE, "p/./x.lane", "normal form"},
    {3, BK_SOURCE, "p/a\tb.lane", "without control characters"},
    {3, BK_SOURCE, "p/\xff.lane", "UTF-8"},
    {3, BK_SOURCE, "p/fleet.lane", "out of order or repeated"},
    {4, BK_SOURCE, "a.lane", "out of order or repeated"},
    {5, BK_SIG, "0123456789ABCDEF", "named by a key id of 16 hex digits"},
    {5, BK_SIG, "0123456789abcdef", "a SIG holds 64 bytes"},
    {5, 9, "x", "unknown kind (9)"}};
  for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
    parts q = p;
    q.kind[edits[i].i] = edits[i].kind;
    snprintf(q.name[edits[i].i], sizeof q.name[0], "%s", edits[i].name ? edits[i].name : "");
    b2 = join(&q, -1, NULL, &n2);
    int rc = refused(b2, n2, NULL);
    char qb[72];
    const char *shown = edits[i].name ? bundle_quote(edits[i].name, strlen(edits[i].name), qb) : "";
    ok(rc == LANE_EFORMAT && strstr(WHY, edits[i].why), "entry %d as %s '%s': refused (%s)",
       edits[i].i + 1, bundle_kind_name(edits[i].kind), shown, WHY);
    free(b2);
  }
  /* a reserved byte */
  b2 = join(&p, -1, NULL, &n2);
  b2[BUNDLE_HEADER + 1] = 1;
  crypto_hash_sha256(b2 + n2 - 32, b2, n2 - 32);
  ok(refused(b2, n2, NULL) == LANE_EFORMAT && strstr(WHY, "reserved byte is 1"), "a reserved byte of 1: %s", WHY);
  free(b2);
  /* a manifest over 1 MiB */
  parts q = p;
  size_t big = BUNDLE_MAX_MANIFEST + 1;
  q.data[0] = malloc(big);
  memset(q.data[0], ' ', big);
  q.len[0] = big;
  b2 = join(&q, -1, NULL, &n2);
  ok(refused(b2, n2, NULL) == LANE_EFORMAT && strstr(WHY, "a MANIFEST is at most 1 MiB"), "%s", WHY);
  free(b2);
  free(q.data[0]);
  parts_free(&p);
  free(b);
}

/* A container of more SOURCE entries than a bundle may hold (4096) is
 * refused before anything else is read; it once took one more. */
static void test_too_many_files(void) {
  bundle_writer w;
  lane_error err;
  enum { N = BUNDLE_MAX_FILES + 1 };
  bundle_w_start(&w, N + 2);
  bundle_w_entry(&w, BK_MANIFEST, NULL, "{}", 2);
  bundle_w_entry(&w, BK_PROGRAM, NULL, "x", 1);
  for (int i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "s%05d", i);
    bundle_w_entry(&w, BK_SOURCE, name, "", 0);
  }
  if (bundle_w_finish(&w, &err) != LANE_OK) bail("too many files: %s", err.message);
  ok(refused(w.b, w.n, NULL) == LANE_EFORMAT && strstr(WHY, "4097 SOURCE entries"),
     "4097 SOURCE entries are refused (%s)", WHY);
  free(w.b);
}

/* Each manifest rule broken alone. */
static void test_manifest(void) {
  size_t n, ns;
  unsigned char *b = make(TESTS, NULL, 0, NULL, &n);
  unsigned char *s = make(TESTS, SK, 0, NULL, &ns);
  struct { const char *key; json_t *v; const char *why; } cases[] = {
    {"bundle_version", json_integer(2), "\"bundle_version\" is not 1"},
    {"bundle_version", NULL, "\"bundle_version\" is not 1"},
    {"extra", json_true(), "unknown field \"extra\""},
    {"revision", NULL, "no \"revision\""},
    {"revision", json_integer(1), "\"revision\" is not a string"},
    /* a revision is shown as it is (terminals, logs): only the characters
     * `lane build` takes, not an escape sequence or a forged log line */
    {"revision", json_string("v1\x1b[31mRED\nFAKE: ok"), "the revision has characters other"},
    {"policy", json_string("p/nope.lane"), "the policy 'p/nope.lane' is not in the bundle"},
    {"tests_file", json_string("p/nope.lane"), "the tests file 'p/nope.lane' is not in the bundle"},
    {"include", json_string("inc"), "\"include\" is not an array"},
    {"include", json_pack("[s]", "a\nb"), "not a directory name"},
    {"no_opt", json_integer(0), "\"no_opt\" is not true or false"},
    {"routes", json_pack("[s]", "q"), "does not name route 'r'"},
    {"routes", json_pack("[]"), "is not the program's 1 route"},
    {"tests", json_integer(-1), "\"tests\" is not a count"},
    {"program_checksum", json_string("0000000000000000"), "\"program_checksum\" does not match"},
    {"source_digest", json_string("sha256:00"), "\"source_digest\" does not match"},
    {"stdlib_digest", NULL, "no \"stdlib_digest\""},
    {"files", json_pack("[ssss]", "p/fleet.lane", "p/policy.lane", "p/policy_test.lane", "x"),
     "does not name the SOURCE 'state/outage.json'"},
    {"files", json_pack("[s]", "p/fleet.lane"), "names 1 files, the bundle holds 4"},
    {"lane_version", json_string("0.1 beta"), "\"lane_version\" is not a version"},
    {"built_at", json_string("yesterday"), "is not YYYY-MM-DDTHH:MM:SSZ"},
    {"key_id", json_string("0123456789abcdef"), "a \"key_id\", yet the bundle is not signed"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int rc = with_member(b, n, cases[i].key, cases[i].v);
    ok(rc == LANE_EFORMAT && strstr(WHY, cases[i].why), "manifest %s %s: refused (%s)", cases[i].key,
       cases[i].v ? "changed" : "removed", WHY);
  }
  /* a signed bundle's manifest must name its key: rewrite and re-sign */
  parts p;
  split(s, ns, &p);
  json_t *m = manifest_of(&p);
  json_object_del(m, "key_id");
  set_manifest(&p, m);
  size_t n2;
  unsigned char *b2 = join(&p, -1, SK, &n2);
  ok(refused(b2, n2, PK) == LANE_EFORMAT && strstr(WHY, "no \"key_id\", yet the bundle is signed"),
     "a signed bundle whose manifest has no key_id: %s", WHY);
  free(b2);
  parts_free(&p);
  /* text that is not such an object */
  static const char *const texts[][2] = {
    {"[1]", "not a JSON object"}, {"{\"a\": 1", "not JSON"},
    {"{\"revision\": \"a\", \"revision\": \"b\"}", "not JSON"}};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    split(b, n, &p);
    free(p.data[0]);
    p.data[0] = (unsigned char *)strdup(texts[i][0]);
    p.len[0] = strlen(texts[i][0]);
    b2 = join(&p, -1, NULL, &n2);
    ok(refused(b2, n2, NULL) == LANE_EFORMAT && strstr(WHY, texts[i][1]), "manifest %s: %s",
       texts[i][0], WHY);
    free(b2);
    parts_free(&p);
  }
  /* a program lane_load refuses */
  split(b, n, &p);
  p.data[1][40] ^= 1;
  b2 = join(&p, -1, NULL, &n2);
  ok(refused(b2, n2, NULL) == LANE_EFORMAT && strstr(WHY, "the program: "), "a damaged program: %s", WHY);
  free(b2);
  parts_free(&p);
  free(b);
  free(s);
}

/* ---- tests at load ---- */

static void *test_thread(void *arg) {
  char report[4096];
  lane_error err;
  long failed = lane_bundle_test(arg, report, sizeof report, &err);
  return (void *)failed;
}

static void test_tests(void) {
  size_t n;
  unsigned char *b = make(TESTS, SK, 0, NULL, &n);
  lane_bundle *bd = NULL;
  char report[8192];
  lane_error err;
  if (open_ok(b, n, PK, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), 0, "a bundle's tests pass");
  ok(strstr(report, "4 files compiled again by lane") && strstr(report, "give the bundled program") &&
     strstr(report, "ok   2 - in the outage the small one answers") &&
     strstr(report, "2 tests, 2 passed, 0 failed"), "  the report says so, the snapshot test too");
  /* cut reports: the text and a line that says so, within cap */
  char small[100];
  memset(small, 'x', sizeof small);
  is_int(lane_bundle_test(bd, small, sizeof small, &err), 0, "a report into 100 bytes");
  size_t len = strlen(small);
  if (!ok(len == sizeof small - 1 && strstr(small, "\n[report cut here: it has ") &&
          !strncmp(small + len - 8, " bytes]\n", 8), "  cut to 99 bytes, ending in the note"))
    diag("%zu bytes: %s", len, small);
  char tiny[8];
  is_int(lane_bundle_test(bd, tiny, sizeof tiny, &err), 0, "a report into 8 bytes");
  is_str(tiny, "\n[repor", "  as much of the note as fits");
  is_int(lane_bundle_test(bd, NULL, 0, &err), 0, "no report at all");
  is_int(lane_bundle_test(bd, NULL, 10, &err), -1, "NULL with a size: -1");
  /* the program taken: the tests still run */
  lane_program *p = lane_bundle_take_program(bd);
  ok(p && !lane_bundle_take_program(bd) && !lane_bundle_program(bd), "the program is taken once");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), 0, "  the tests run after it was taken");
  lane_program_free(p);
  /* threads */
  pthread_t th[4];
  int started = 0, failed = 0;
  for (int i = 0; i < 4; i++) started += pthread_create(&th[i], NULL, test_thread, bd) == 0;
  for (int i = 0; i < started; i++) {
    void *rv;
    pthread_join(th[i], &rv);
    failed += (int)(long)rv != 0;
  }
  ok(started == 4 && failed == 0, "four threads test one bundle at once, all pass");
  lane_bundle_free(bd);
  free(b);

  b = make(FAILING, NULL, 0, NULL, &n);
  if (open_ok(b, n, NULL, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), 1, "a failing test: 1 failure");
  ok(strstr(report, "FAIL 2 - this one fails") && strstr(report, "expect failed; primary is fleet.small"),
     "  the report shows it and what it saw");
  lane_bundle_free(bd);
  free(b);

  /* compiled with -O0, recorded without: the sources give another program */
  lanec_opts rec;
  memset(&rec, 0, sizeof rec);
  rec.tests = "p/policy_test.lane";
  b = make(TESTS, NULL, 1, &rec, &n);
  if (open_ok(b, n, NULL, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), -1, "a program its sources do not give: -1");
  ok(err.code == LANE_EFORMAT && strstr(err.message, "the bundled program is not what lane ") &&
     strstr(err.message, "compiles from the bundle's sources (lane "), "  %s", err.message);
  ok(strstr(report, err.message) != NULL, "  the report says it too");
  lane_bundle_free(bd);
  free(b);

  /* recorded with an -I directory the compile had not: imports still resolve beside first */
  const char *inc[] = {"nowhere"};
  rec.include = inc;
  rec.ninclude = 1;
  b = make(TESTS, NULL, 0, &rec, &n);
  if (open_ok(b, n, NULL, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), 0, "an -I directory that adds nothing changes nothing");
  lane_bundle_free(bd);
  free(b);
  rec.include = NULL;
  rec.ninclude = 0;
  rec.tests = NULL;   /* the tests file is bundled but not used: one test, and the manifest says two */
  b = make(TESTS, NULL, 0, &rec, &n);
  if (open_ok(b, n, NULL, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), -1, "a test count the sources do not give: -1");
  ok(strstr(err.message, "the manifest counts 2 tests, and the sources hold 1") != NULL, "  %s", err.message);
  lane_bundle_free(bd);
  free(b);
}

/* A bundle whose sources no longer compile: its policy replaced by text
 * with an error, digests recomputed (as an altered unsigned bundle). */
static void test_not_compiling(void) {
  size_t n, n2;
  unsigned char *b = make(NULL, NULL, 0, NULL, &n);
  parts p;
  split(b, n, &p);
  for (int i = 2; i < p.n; i++)
    if (!strcmp(p.name[i], "p/policy.lane")) {
      static const char broken[] = "import \"fleet\"\nroute r { otherwise -> nosuch }\n";
      free(p.data[i]);
      p.data[i] = (unsigned char *)strdup(broken);
      p.len[i] = sizeof broken - 1;
    }
  lanec_file f[4];
  for (int i = 2; i < p.n; i++) {
    f[i - 2].path = p.name[i];
    f[i - 2].bytes = (const char *)p.data[i];
    f[i - 2].n = p.len[i];
  }
  char digest[72];
  json_t *m = manifest_of(&p);
  bundle_digest(f, p.n - 2, 0, digest);
  json_object_set_new(m, "source_digest", json_string(digest));
  set_manifest(&p, m);
  unsigned char *b2 = join(&p, -1, NULL, &n2);
  lane_bundle *bd = NULL;
  char report[4096];
  lane_error err;
  if (open_ok(b2, n2, NULL, &bd) != LANE_OK) bail("open");
  is_int(lane_bundle_test(bd, report, sizeof report, &err), -1, "sources that do not compile: -1");
  ok(strstr(err.message, "do not compile with lane ") && strstr(err.message, "p/policy.lane:2:"),
     "  %s", err.message);
  ok(strstr(report, "p/policy.lane:2:") != NULL, "  the report holds the diagnostics");
  lane_bundle_free(bd);
  free(b2);
  parts_free(&p);
  free(b);
}

/* ---- files and keys ---- */

static const char *scratch(const char *name) {
  static char path[2][1024];
  static int k;
  const char *b = getenv("BUILD");
  char dir[900];
  snprintf(dir, sizeof dir, "%s/tests", b && *b ? b : "build");
  mkdir(dir, 0777);
  snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/bundle-unit");
  mkdir(dir, 0777);
  k = !k;
  snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
  return path[k];
}

static void put(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) bail("cannot write %s", path);
}

static void test_files(void) {
  size_t n;
  unsigned char *b = make(NULL, SK, 0, NULL, &n);
  const char *path = scratch("one.bundle");
  put(path, b, n);
  lane_bundle *bd = NULL;
  lane_error err;
  is_int(lane_bundle_read_file(path, PK, &bd, &err), LANE_OK, "lane_bundle_read_file");
  lane_bundle_free(bd);
  is_int(lane_bundle_read_file(scratch("nosuch.bundle"), NULL, &bd, &err), LANE_EARG, "a missing file: LANE_EARG");
  ok(bd == NULL && strstr(err.message, "cannot read"), "  %s", err.message);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", scratch("x"));
  *strrchr(dir, '/') = 0;
  is_int(lane_bundle_read_file(dir, NULL, &bd, &err), LANE_EARG, "a directory: LANE_EARG");
  ok(strstr(err.message, "is not a regular file") != NULL, "  %s", err.message);
  free(b);

  char hex[65], line[128];
  unsigned char pk[32];
  bundle_hex(PK, 32, hex);
  snprintf(line, sizeof line, "lane-ed25519-public %s\n", hex);
  put(scratch("k.pub"), line, strlen(line));
  is_int(lane_key_load_public(scratch("k.pub"), pk, &err), LANE_OK, "a public key file");
  ok(!memcmp(pk, PK, 32), "  holds the key");
  static const struct { const char *text; const char *why; } bad[] = {
    {"lane-ed25519-public 00\n", "has 2 hex digits, not 64"},
    {"lane-ed25519-secret 00\n", "is a secret key"},
    {"ssh-ed25519 AAAA\n", "is not a lane public key file"},
    {"", "is not a lane public key file"},
    {"lane-ed25519-public 0000000000000000000000000000000000000000000000000000000000000000\n",
     "does not hold a valid Ed25519 public key"},
    {NULL, "something follows the key"}};   /* the good key, then another line */
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (bad[i].text) snprintf(line, sizeof line, "%s", bad[i].text);
    else snprintf(line, sizeof line, "lane-ed25519-public %s\nmore\n", hex);
    put(scratch("bad.pub"), line, strlen(line));
    int rc = lane_key_load_public(scratch("bad.pub"), pk, &err);
    ok(rc == LANE_EFORMAT && strstr(err.message, bad[i].why), "a bad public key file: %s", err.message);
  }
  is_int(lane_key_load_public(scratch("none.pub"), pk, &err), LANE_EARG, "a missing key file: LANE_EARG");
}

int main(void) {
  if (sodium_init() < 0) bail("sodium_init");
  unsigned char seed[32];
  for (int i = 0; i < 32; i++) seed[i] = (unsigned char)(i * 7 + 1);
  crypto_sign_seed_keypair(PK, SK, seed);
  seed[0] ^= 1;
  crypto_sign_seed_keypair(PK2, SK2, seed);
  test_open();
  test_hostile();
  test_container();
  test_manifest();
  test_too_many_files();
  test_tests();
  test_not_compiling();
  test_files();
  return done_testing();
}

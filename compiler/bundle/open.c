/*
 * open.c -- lane_bundle.h: a bundle opened, checked, tested and taken
 * apart. Opening checks the container (format.c), the signature, the
 * manifest against what the bundle holds (file names, digests, program
 * checksum, routes) and loads the program; testing compiles the sources
 * again from the bundle alone and runs the tests.
 */
#include "bundle.h"
#include "sema.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INCLUDE 64     /* -I directories a manifest may record (each import looks in all) */

struct lane_bundle {
  unsigned char       *bytes;        /* the copy every entry points into */
  size_t               n;
  char                *manifest;     /* the MANIFEST's text, NUL-ended */
  const unsigned char *program;      /* the PROGRAM entry */
  size_t               nprogram;
  lane_program        *prog;         /* loaded at open; NULL once taken */
  lanec_file          *files;        /* the SOURCE entries, paths NUL-ended copies */
  int                  nfiles;
  char                *revision;     /* the manifest's, each a copy */
  char                *policy;
  char                *tests_file;   /* or NULL */
  char                *lane_version;
  char               **include;      /* -I directories, in order */
  int                  ninclude;
  int                  no_opt;       /* compiled with -O0 */
  int                  ntests;       /* test blocks */
  char                 key_id[LANE_BUNDLE_KEY_ID + 1];   /* "" when unsigned */
  int                  signature;    /* a lane_bundle_signature */
};

void lane_bundle_free(lane_bundle *b) {
  if (!b) return;
  for (int i = 0; b->files && i < b->nfiles; i++) free((char *)b->files[i].path);
  for (int i = 0; b->include && i < b->ninclude; i++) free(b->include[i]);
  free(b->files);
  free(b->include);
  free(b->revision);
  free(b->policy);
  free(b->tests_file);
  free(b->lane_version);
  free(b->manifest);
  lane_program_free(b->prog);
  free(b->bytes);
  free(b);
}

/* ---- the manifest ---- */

static const char *const FIELDS[] = {
  "bundle_version", "revision", "policy", "tests_file", "include", "no_opt", "routes", "tests",
  "program_checksum", "source_digest", "stdlib_digest", "files", "lane_version", "built_at",
  "key_id"
};

__attribute__((format(printf, 2, 3))) static int bad(lane_error *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bundle_verr(err, LANE_EFORMAT, fmt, ap);
  va_end(ap);
  return LANE_EFORMAT;
}

/* A name from the bundle, quoted for a message. */
#define Q(s) bundle_quote((s), strlen(s), (char[72]){0})

/* The string member key of m, of 1 to max bytes without NUL; NULL after
 * filling err. */
static const char *string_of(json_t *m, const char *key, size_t max, lane_error *err) {
  json_t *v = json_object_get(m, key);
  if (!v) { bad(err, "manifest: no \"%s\"", key); return NULL; }
  size_t n = json_string_length(v);
  const char *s = json_string_value(v);
  if (!json_is_string(v) || n < 1 || n > max || strlen(s) != n) {
    bundle_err(err, LANE_EFORMAT, "manifest: \"%s\" is not a string of 1 to %zu bytes", key, max);
    return NULL;
  }
  return s;
}

static char *dup_of(const char *s) {
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* The index of the SOURCE named s, or -1. */
static int file_index(const lane_bundle *b, const char *s) {
  for (int i = 0; i < b->nfiles; i++)
    if (!strcmp(b->files[i].path, s)) return i;
  return -1;
}

/* "files" names every SOURCE entry, in order, and nothing else. */
static int check_files(const lane_bundle *b, json_t *m, lane_error *err) {
  json_t *a = json_object_get(m, "files");
  if (!json_is_array(a)) return bad(err, "manifest: \"%s\" is not an array of names", "files");
  if (json_array_size(a) != (size_t)b->nfiles)
    return bundle_err(err, LANE_EFORMAT, "manifest: \"files\" names %zu files, the bundle holds %d",
                      json_array_size(a), b->nfiles);
  for (int i = 0; i < b->nfiles; i++) {
    json_t *v = json_array_get(a, (size_t)i);
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) != strlen(b->files[i].path) || strcmp(s, b->files[i].path))
      return bad(err, "manifest: \"files\" does not name the SOURCE '%s' in its place",
                 Q(b->files[i].path));
  }
  return LANE_OK;
}

/* Which key of m is not a manifest field, or NULL. */
static const char *unknown_field(json_t *m) {
  const char *key;
  json_t *v;
  json_object_foreach(m, key, v) {
    size_t i = 0;
    while (i < sizeof FIELDS / sizeof *FIELDS && strcmp(FIELDS[i], key)) i++;
    if (i == sizeof FIELDS / sizeof *FIELDS) return key;
  }
  return NULL;
}

/* The hex string member key of m is exactly want. */
static int check_equal(json_t *m, const char *key, const char *want, const char *what,
                       lane_error *err) {
  const char *s = string_of(m, key, 80, err);
  if (!s) return LANE_EFORMAT;
  if (strcmp(s, want))
    return bundle_err(err, LANE_EFORMAT, "manifest: \"%s\" does not match %s", key, what);
  return LANE_OK;
}

/* YYYY-MM-DDTHH:MM:SSZ */
static int stamp_ok(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
  if (strlen(s) != sizeof shape - 1) return 0;
  for (size_t i = 0; shape[i]; i++)
    if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i]) return 0;
  return 1;
}

/* Fields that need no program: versions, names, options, digests. */
static int read_fields(lane_bundle *b, json_t *m, lane_error *err) {
  const char *key = unknown_field(m), *s;
  char want[72];
  if (key) return bad(err, "manifest: unknown field \"%s\"", Q(key));
  json_t *v = json_object_get(m, "bundle_version");
  if (!json_is_integer(v) || json_integer_value(v) != LANE_BUNDLE_VERSION)
    return bundle_err(err, LANE_EFORMAT, "manifest: \"bundle_version\" is not %d, the container's",
                      LANE_BUNDLE_VERSION);
  if (!(s = string_of(m, "revision", BUNDLE_MAX_REVISION, err))) return LANE_EFORMAT;
  if (!bundle_revision_ok(s))
    return bad(err, "manifest: the revision has characters other than letters, digits and "
               "'._-+:/@'");
  if (!(b->revision = dup_of(s))) return LANE_ENOMEM;
  if (check_files(b, m, err) != LANE_OK) return LANE_EFORMAT;
  if (!(s = string_of(m, "policy", BUNDLE_MAX_NAME, err))) return LANE_EFORMAT;
  if (file_index(b, s) < 0) return bad(err, "manifest: the policy '%s' is not in the bundle", Q(s));
  if (!(b->policy = dup_of(s))) return LANE_ENOMEM;
  v = json_object_get(m, "tests_file");
  if (!json_is_null(v)) {
    if (!(s = string_of(m, "tests_file", BUNDLE_MAX_NAME, err))) return LANE_EFORMAT;
    if (file_index(b, s) < 0)
      return bad(err, "manifest: the tests file '%s' is not in the bundle", Q(s));
    if (!(b->tests_file = dup_of(s))) return LANE_ENOMEM;
  }
  v = json_object_get(m, "include");
  if (!json_is_array(v) || json_array_size(v) > MAX_INCLUDE)
    return bundle_err(err, LANE_EFORMAT, "manifest: \"include\" is not an array of at most %d "
                      "directories", MAX_INCLUDE);
  b->include = calloc(json_array_size(v) + 1, sizeof *b->include);
  if (!b->include) return LANE_ENOMEM;
  for (size_t i = 0; i < json_array_size(v); i++) {
    json_t *d = json_array_get(v, i);
    s = json_string_value(d);
    if (!s || !bundle_name_ok(s, json_string_length(d)) || strlen(s) != json_string_length(d))
      return bundle_err(err, LANE_EFORMAT, "manifest: \"include\" holds something that is not a "
                        "directory name");
    if (!(b->include[b->ninclude++] = dup_of(s))) return LANE_ENOMEM;
  }
  v = json_object_get(m, "no_opt");
  if (!json_is_boolean(v)) return bad(err, "manifest: \"%s\" is not true or false", "no_opt");
  b->no_opt = json_is_true(v);
  v = json_object_get(m, "tests");
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
    return bad(err, "manifest: \"%s\" is not a count of tests", "tests");
  b->ntests = (int)json_integer_value(v);
  bundle_digest(b->files, b->nfiles, 0, want);
  if (check_equal(m, "source_digest", want, "the bundle's sources", err)) return LANE_EFORMAT;
  bundle_digest(b->files, b->nfiles, 1, want);
  if (check_equal(m, "stdlib_digest", want, "the bundle's std/ sources", err)) return LANE_EFORMAT;
  if (!(s = string_of(m, "lane_version", 64, err))) return LANE_EFORMAT;
  for (const char *c = s; *c; c++)
    if (*c <= ' ' || *c > '~') return bad(err, "manifest: \"%s\" is not a version", "lane_version");
  if (!(b->lane_version = dup_of(s))) return LANE_ENOMEM;
  if (!(s = string_of(m, "built_at", 32, err))) return LANE_EFORMAT;
  if (!stamp_ok(s)) return bad(err, "manifest: \"%s\" is not YYYY-MM-DDTHH:MM:SSZ", "built_at");
  v = json_object_get(m, "key_id");
  if (!v != !b->key_id[0])
    return bundle_err(err, LANE_EFORMAT, b->key_id[0] ? "manifest: no \"key_id\", yet the bundle "
                      "is signed" : "manifest: a \"key_id\", yet the bundle is not signed");
  if (v && check_equal(m, "key_id", b->key_id, "the key of the signature", err)) return LANE_EFORMAT;
  return LANE_OK;
}

/* Fields about the program: its checksum and routes. */
static int check_program(const lane_bundle *b, json_t *m, lane_error *err) {
  char sum[17];
  snprintf(sum, sizeof sum, "%016llx", (unsigned long long)lane_program_checksum(b->prog));
  if (check_equal(m, "program_checksum", sum, "the program's", err)) return LANE_EFORMAT;
  json_t *a = json_object_get(m, "routes");
  int nr = lane_route_count(b->prog);
  if (!json_is_array(a) || json_array_size(a) != (size_t)nr)
    return bundle_err(err, LANE_EFORMAT, "manifest: \"routes\" is not the program's %d route%s",
                      nr, nr == 1 ? "" : "s");
  for (int i = 0; i < nr; i++) {
    const char *s = json_string_value(json_array_get(a, (size_t)i));
    if (!s || strcmp(s, lane_route_name(b->prog, i)))
      return bad(err, "manifest: \"routes\" does not name route '%s' in its place",
                 Q(lane_route_name(b->prog, i)));
  }
  return LANE_OK;
}

/* ---- opening ---- */

/* The signature: required and verified with pubkey, else only noted. */
static int check_signature(lane_bundle *b, const bundle_entry *sig, const unsigned char *pubkey,
                           lane_error *err) {
  char given[LANE_BUNDLE_KEY_ID + 1];
  if (sig) {
    memcpy(b->key_id, sig->name, LANE_BUNDLE_KEY_ID);
    b->key_id[LANE_BUNDLE_KEY_ID] = 0;
  }
  b->signature = sig ? LANE_BUNDLE_SIGNED : LANE_BUNDLE_UNSIGNED;
  if (!pubkey) return LANE_OK;
  bundle_key_id(pubkey, given);
  if (!sig)
    return bundle_err(err, LANE_EFORMAT, "the bundle is not signed, and a key (%s) was given: only "
                      "a bundle signed by it is accepted", given);
  if (strcmp(b->key_id, given))
    return bundle_err(err, LANE_EFORMAT, "the bundle is signed by key %s, not by the key given (%s)",
                      b->key_id, given);
  if (crypto_sign_verify_detached(sig->data, b->bytes, sig->off, pubkey) != 0)
    return bundle_err(err, LANE_EFORMAT, "the signature by key %s does not verify: the bundle was "
                      "altered after it was signed", given);
  b->signature = LANE_BUNDLE_VERIFIED;
  return LANE_OK;
}

/* Everything after the container: sources, signature, manifest, program. */
static int open_parts(lane_bundle *b, const bundle_entry *e, int count,
                      const unsigned char *pubkey, lane_error *err) {
  const bundle_entry *sig = e[count - 1].kind == BK_SIG ? &e[count - 1] : NULL;
  int rc = check_signature(b, sig, pubkey, err);
  if (rc != LANE_OK) return rc;
  b->nfiles = count - 2 - (sig != NULL);   /* bundle_parse: count >= 2, 3 with a SIG */
  if (b->nfiles < 0) return bundle_err(err, LANE_EFORMAT, "no sources");
  b->files = calloc((size_t)b->nfiles + 1, sizeof *b->files);
  b->manifest = malloc(e[0].n + 1);
  if (!b->files || !b->manifest) return bundle_err(err, LANE_ENOMEM, "out of memory");
  for (int i = 0; i < b->nfiles; i++) {
    const bundle_entry *s = &e[2 + i];
    char *path = malloc(s->nname + 1);
    if (!path) return bundle_err(err, LANE_ENOMEM, "out of memory");
    memcpy(path, s->name, s->nname);
    path[s->nname] = 0;
    b->files[i].path = path;
    b->files[i].bytes = (const char *)s->data;
    b->files[i].n = s->n;
  }
  memcpy(b->manifest, e[0].data, e[0].n);
  b->manifest[e[0].n] = 0;
  b->program = e[1].data;
  b->nprogram = e[1].n;
  json_error_t je;
  json_t *m = json_loadb(b->manifest, e[0].n, JSON_REJECT_DUPLICATES, &je);
  if (!m) return bundle_err(err, LANE_EFORMAT, "the manifest is not JSON: line %d: %s", je.line, je.text);
  if (!json_is_object(m)) rc = bundle_err(err, LANE_EFORMAT, "the manifest is not a JSON object");
  else rc = read_fields(b, m, err);
  if (rc == LANE_ENOMEM) bundle_err(err, rc, "out of memory");
  lane_error le;
  if (rc == LANE_OK && !(b->prog = lane_load(b->program, b->nprogram, &le)))
    rc = bundle_err(err, le.code, "the program: %s", le.message);
  if (rc == LANE_OK) rc = check_program(b, m, err);
  json_decref(m);
  return rc;
}

int lane_bundle_open(const void *bytes, size_t n, const unsigned char *pubkey, lane_bundle **out,
                     lane_error *err) {
  if (!out) return bundle_err(err, LANE_EARG, "no place for the bundle");
  *out = NULL;
  if (!bytes) return bundle_err(err, LANE_EARG, "no bytes given");
  if (bundle_sodium(err) != LANE_OK) return LANE_ENOMEM;
  bundle_entry *e = NULL;
  int count = 0;
  int rc = bundle_parse(bytes, n, &e, &count, err);   /* on the caller's bytes: no copy of junk */
  if (rc != LANE_OK) return rc;
  lane_bundle *b = calloc(1, sizeof *b);
  unsigned char *copy = b && n ? malloc(n) : NULL;   /* bundle_parse: n >= 48 */
  if (!copy) {
    free(b);
    free(e);
    return bundle_err(err, LANE_ENOMEM, "out of memory copying %zu bytes", n);
  }
  memcpy(copy, bytes, n);
  /* the entries, moved onto the copy */
  for (int i = 0; i < count; i++) {
    e[i].name = (const char *)copy + (e[i].name - (const char *)bytes);
    e[i].data = copy + (e[i].data - (const unsigned char *)bytes);
  }
  b->bytes = copy;
  b->n = n;
  rc = open_parts(b, e, count, pubkey, err);
  free(e);
  if (rc != LANE_OK) {
    lane_bundle_free(b);
    return rc;
  }
  *out = b;
  return LANE_OK;
}

int lane_bundle_read_file(const char *path, const unsigned char *pubkey, lane_bundle **out,
                          lane_error *err) {
  char q[72];
  if (out) *out = NULL;
  if (!path) return bundle_err(err, LANE_EARG, "no file named");
  const char *shown = bundle_quote(path, strlen(path), q);
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return bundle_err(err, LANE_EARG, "cannot read '%s': %s", shown, strerror(errno));
  struct stat st;
  int rc = LANE_OK;
  unsigned char *b = NULL;
  size_t n = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = bundle_err(err, LANE_EARG, "'%s' is not a regular file", shown);
  else if ((unsigned long long)st.st_size > LANE_BUNDLE_MAX_BYTES)
    rc = bundle_err(err, LANE_EFORMAT, "'%s': %lld bytes; a bundle is at most %u MiB", shown,
                    (long long)st.st_size, LANE_BUNDLE_MAX_BYTES >> 20);
  else if (!(b = malloc((size_t)st.st_size + 1)))
    rc = bundle_err(err, LANE_ENOMEM, "out of memory reading '%s'", shown);
  while (rc == LANE_OK) {   /* to the end, in case the file grew: never more than the limit */
    ssize_t k = read(fd, b + n, (size_t)st.st_size + 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) rc = bundle_err(err, LANE_EARG, "cannot read '%s': %s", shown, strerror(errno));
    else if (k == 0) break;
    else if ((n += (size_t)k) > (size_t)st.st_size)
      rc = bundle_err(err, LANE_EARG, "'%s' changed while it was read", shown);
  }
  close(fd);
  if (rc == LANE_OK) rc = lane_bundle_open(b, n, pubkey, out, err);
  free(b);
  return rc;
}

/* ---- accessors ---- */

const char *lane_bundle_revision(const lane_bundle *b) { return b ? b->revision : NULL; }
const char *lane_bundle_manifest(const lane_bundle *b) { return b ? b->manifest : NULL; }
const lane_program *lane_bundle_program(const lane_bundle *b) { return b ? b->prog : NULL; }
int lane_bundle_signed(const lane_bundle *b) { return b ? b->signature : LANE_BUNDLE_UNSIGNED; }
const char *lane_bundle_key_id(const lane_bundle *b) {
  return b && b->key_id[0] ? b->key_id : NULL;
}

lane_program *lane_bundle_take_program(lane_bundle *b) {
  if (!b) return NULL;
  lane_program *p = b->prog;
  b->prog = NULL;
  return p;
}

/* ---- tests ---- */

/* text (n bytes) into report (cap bytes): whole, or cut and saying so. */
static void put_report(char *report, size_t cap, const char *text, size_t n) {
  if (!cap) return;
  if (n < cap) {
    memcpy(report, text, n);
    report[n] = 0;
    return;
  }
  char note[80];
  int k = snprintf(note, sizeof note, "\n[report cut here: it has %zu bytes]\n", n);
  size_t nk = k > 0 ? (size_t)k : 0, keep = cap - 1 > nk ? cap - 1 - nk : 0;
  memcpy(report, text, keep);
  size_t room = cap - 1 - keep;
  memcpy(report + keep, note, room < nk ? room : nk);
  report[keep + (room < nk ? room : nk)] = 0;
}

/* The first error of a compile, for a one-line reason. */
static void first_error(const lanec_result *r, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", r->status == LANEC_ENOMEM ? "out of memory" : "(no message)");
  for (int i = 0; i < lanec_diag_count(r); i++) {
    lanec_diag d;
    lanec_diag_get(r, i, &d);
    if (d.level != LANEC_ERROR) continue;
    if (d.file) snprintf(buf, cap, "%s:%d: %s", d.file, d.line, d.message);
    else snprintf(buf, cap, "%s", d.message);
    return;
  }
}

/* Compiles the sources and runs the tests, writing to out; see lane_bundle_test. */
static int run_tests(const lane_bundle *b, FILE *out, lane_error *err) {
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.include = (const char *const *)b->include;
  o.ninclude = b->ninclude;
  o.no_opt = b->no_opt;
  o.tests = b->tests_file;
  o.files = b->files;
  o.nfiles = b->nfiles;
  lanec_result r;
  int failed = -1, st = lanec_compile(b->policy, NULL, &o, &r);
  char why[160];
  if (st != LANEC_OK) {
    first_error(&r, why, sizeof why);
    bundle_err(err, st == LANEC_ENOMEM ? LANE_ENOMEM : LANE_EFORMAT, "the bundle's sources do not "
               "compile with lane %s (lane %s built it): %s", lane_version(), b->lane_version, why);
    fprintf(out, "%s\n", err->message);
    lanec_print_diags(&r, out);
  } else if (r.nbytes != b->nprogram || memcmp(r.bytes, b->program, r.nbytes)) {
    bundle_err(err, LANE_EFORMAT, "the bundled program is not what lane %s compiles from the "
               "bundle's sources (lane %s built it)", lane_version(), b->lane_version);
    fprintf(out, "%s\n", err->message);
  } else if (r.unit->tests.n != b->ntests) {
    bundle_err(err, LANE_EFORMAT, "the manifest counts %d tests, and the sources hold %d",
               b->ntests, r.unit->tests.n);
    fprintf(out, "%s\n", err->message);
  } else {
    fprintf(out, "# revision %s: %d files compiled again by lane %s give the bundled program\n",
            b->revision, b->nfiles, lane_version());
    /* r.prog was loaded from bytes equal to the bundled program's */
    test_opts to = {0, 0, 0, 0, 1, state_runtime_bytes};
    failed = sema_run_tests_with(r.unit, r.prog, &to, out);
  }
  lanec_result_free(&r);
  return failed;
}

int lane_bundle_test(const lane_bundle *b, char *report, size_t cap, lane_error *err) {
  if (!b || (!report && cap)) {
    bundle_err(err, LANE_EARG, "no bundle, or no report buffer of that size");
    return -1;
  }
  if (cap) report[0] = 0;
  char *text = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&text, &n);
  if (!out) {
    bundle_err(err, LANE_ENOMEM, "out of memory for the report");
    return -1;
  }
  lane_error mine;
  int failed = run_tests(b, out, err ? err : &mine);   /* fills it only for -1 */
  if (fclose(out) != 0 || !text) {
    free(text);
    bundle_err(err, LANE_ENOMEM, "out of memory for the report");
    return -1;
  }
  put_report(report, cap, text, n);
  free(text);
  return failed;
}

/*
 * bundle_cmd.c -- `lane build`, `lane inspect` and `lane keygen` on top of
 * liblane-bundle (compiler/bundle/). `lane build` tests what it made the
 * way a host will (lane_bundle_open, then lane_bundle_test: the sources
 * compiled again from the bundle alone), so a bundle it writes is one a
 * host accepts.
 */
#include "bundle_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"

#define REPORT_CAP (4u << 20)   /* bytes of a test report shown */

/* The time a bundle says it was built: $SOURCE_DATE_EPOCH (seconds since
 * 1970, for reproducible builds) when set, else now. -1 after saying why. */
static long long build_time(FILE *err) {
  const char *e = getenv("SOURCE_DATE_EPOCH");
  if (!e || !*e) return (long long)time(NULL);
  char *end;
  errno = 0;
  long long v = strtoll(e, &end, 10);
  if (errno || *end || v < 0 || e[0] < '0' || e[0] > '9') {
    fprintf(err, "lane: SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, not '%s'\n",
            e);
    return -1;
  }
  return v;
}

/* The exit code for a lane_bundle status: input errors are 2. */
static int exit_of(int status) { return status == LANE_OK ? 0 : 2; }

int build_bundle(const build_args *a, unsigned char **bytes, size_t *n, FILE *out, FILE *err) {
  *bytes = NULL;
  *n = 0;
  unsigned char sk[64], pk[32], *skp = NULL;
  lane_error e;
  if (a->sign) {
    if (bundle_key_load_secret(a->sign, sk, &e) != LANE_OK) {
      fprintf(err, "lane: %s\n", e.message);
      return 2;
    }
    skp = sk;
    crypto_sign_ed25519_sk_to_pk(pk, sk);   /* to open what it signs, as a host will */
  }
  long long when = build_time(err);
  if (when < 0) {
    sodium_memzero(sk, sizeof sk);
    return 2;
  }
  lanec_result r;
  int rc = lanec_compile(a->policy, NULL, a->opts, &r) == LANEC_OK ? 0 : 1;
  lanec_print_diags(&r, err);
  if (r.status == LANEC_EREAD) rc = 2;
  unsigned char *b = NULL;
  size_t nb = 0;
  bundle_build_opts bo = {a->revision, skp, when};
  if (!rc && bundle_make(&r, a->opts, &bo, &b, &nb, &e) != LANE_OK) {
    fprintf(err, "lane: %s: %s\n", a->policy, e.message);
    rc = 2;
  }
  lanec_result_free(&r);
  sodium_memzero(sk, sizeof sk);
  if (rc) return rc;
  /* open and test it as a host will, with the signer's public key */
  lane_bundle *bd = NULL;
  char *report = malloc(REPORT_CAP);
  int failed = -1;
  if (!report) {
    fprintf(err, "lane: out of memory\n");
    rc = 2;
  } else if (lane_bundle_open(b, nb, skp ? pk : NULL, &bd, &e) != LANE_OK) {
    fprintf(err, "lane: the bundle made of %s does not open (a bug in lane): %s\n", a->policy,
            e.message);
    rc = 2;
  } else if ((failed = lane_bundle_test(bd, report, REPORT_CAP, &e)) != 0) {
    fputs(report, out);
    if (failed > 0)
      fprintf(err, "lane: %s: %d test%s failed; no bundle written\n", a->policy, failed,
              failed == 1 ? "" : "s");
    else
      fprintf(err, "lane: %s: %s; no bundle written\n", a->policy, e.message);
    rc = failed > 0 || e.code == LANE_EFORMAT ? 1 : 2;
  } else {
    const char *last = report + strlen(report);   /* the runner's summary line */
    while (last > report && last[-1] == '\n') last--;
    const char *start = last;
    while (start > report && start[-1] != '\n') start--;
    fprintf(out, "bundle: revision %s, %.*s", lane_bundle_revision(bd), (int)(last - start), start);
    if (lane_bundle_key_id(bd)) fprintf(out, ", signed by key %s", lane_bundle_key_id(bd));
    fputc('\n', out);
  }
  lane_bundle_free(bd);
  free(report);
  if (rc) { free(b); return rc; }
  *bytes = b;
  *n = nb;
  return 0;
}

/* ---- inspect ---- */

/* A whole regular file of at most LANE_BUNDLE_MAX_BYTES into *b (malloc'd);
 * LANE_OK, or a status with err's reason, as lane_bundle_read_file. */
static int read_all(const char *path, unsigned char **b, size_t *n, lane_error *err) {
  *b = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);   /* a FIFO must not block */
  if (fd < 0) return bundle_err(err, LANE_EARG, "cannot read '%s': %s", path, strerror(errno));
  struct stat st;
  int rc = LANE_OK;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = bundle_err(err, LANE_EARG, "'%s' is not a regular file", path);
  else if ((unsigned long long)st.st_size > LANE_BUNDLE_MAX_BYTES)
    rc = bundle_err(err, LANE_EFORMAT, "%lld bytes; a bundle is at most %u MiB",
                    (long long)st.st_size, LANE_BUNDLE_MAX_BYTES >> 20);
  else if (!(*b = malloc((size_t)st.st_size + 1)))
    rc = bundle_err(err, LANE_ENOMEM, "out of memory reading '%s'", path);
  while (rc == LANE_OK) {   /* to the end, one byte past what stat said, in case it grew */
    ssize_t k = read(fd, *b + *n, (size_t)st.st_size + 1 - *n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) rc = bundle_err(err, LANE_EARG, "cannot read '%s': %s", path, strerror(errno));
    else if (k == 0) break;
    else if ((*n += (size_t)k) > (size_t)st.st_size)
      rc = bundle_err(err, LANE_EARG, "'%s' changed while it was read", path);
  }
  close(fd);
  if (rc != LANE_OK) { free(*b); *b = NULL; }
  return rc;
}

static const char *signature_word(int s) {
  return s == LANE_BUNDLE_VERIFIED ? "verified" : s == LANE_BUNDLE_SIGNED ? "signed" : "unsigned";
}

static void print_text(const char *path, size_t n, const lane_bundle *b, json_t *m,
                       const bundle_entry *e, int count, const char *key, FILE *out) {
  const char *s;
  fprintf(out, "%s: lane bundle, format %d, %zu bytes\n", path, LANE_BUNDLE_VERSION, n);
  fprintf(out, "  revision          %s\n", lane_bundle_revision(b));
  fprintf(out, "  policy            %s\n", json_string_value(json_object_get(m, "policy")));
  s = json_string_value(json_object_get(m, "tests_file"));
  fprintf(out, "  tests file        %s\n", s ? s : "(none)");
  fprintf(out, "  routes           ");
  json_t *a = json_object_get(m, "routes");
  for (size_t i = 0; i < json_array_size(a); i++)
    fprintf(out, " %s", json_string_value(json_array_get(a, i)));
  fprintf(out, "\n  tests             %lld\n",
          (long long)json_integer_value(json_object_get(m, "tests")));
  fprintf(out, "  program checksum  %s (%zu bytes)\n",
          json_string_value(json_object_get(m, "program_checksum")), e[1].n);
  fprintf(out, "  source digest     %s\n", json_string_value(json_object_get(m, "source_digest")));
  fprintf(out, "  stdlib digest     %s\n", json_string_value(json_object_get(m, "stdlib_digest")));
  fprintf(out, "  built             by lane %s at %s\n",
          json_string_value(json_object_get(m, "lane_version")),
          json_string_value(json_object_get(m, "built_at")));
  fprintf(out, "  compile options  ");
  a = json_object_get(m, "include");
  for (size_t i = 0; i < json_array_size(a); i++)
    fprintf(out, " -I %s", json_string_value(json_array_get(a, i)));
  if (json_is_true(json_object_get(m, "no_opt"))) fprintf(out, " -O0");
  if (!json_array_size(json_object_get(m, "include")) && !json_is_true(json_object_get(m, "no_opt")))
    fprintf(out, " (none)");
  int nsrc = count - 2 - (e[count - 1].kind == BK_SIG);
  fprintf(out, "\n  files             %d\n", nsrc);
  for (int k = 2; k < 2 + nsrc; k++)
    fprintf(out, "    %-48.*s %8zu bytes\n", (int)e[k].nname, e[k].name, e[k].n);
  int sig = lane_bundle_signed(b);
  if (sig == LANE_BUNDLE_VERIFIED)
    fprintf(out, "  signature         by key %s, verified with %s\n", lane_bundle_key_id(b), key);
  else if (sig == LANE_BUNDLE_SIGNED)
    fprintf(out, "  signature         by key %s (not verified: give --key with its public key)\n",
            lane_bundle_key_id(b));
  else
    fprintf(out, "  signature         none (unsigned)\n");
}

static int print_json(const char *path, size_t n, const lane_bundle *b, json_t *m, int tested,
                      int failed, const char *report, FILE *out) {
  json_t *o = json_object();
  json_t *p = json_string(path);
  json_object_set_new(o, "file", p ? p : json_string("(a file name that is not UTF-8)"));
  json_object_set_new(o, "bytes", json_integer((json_int_t)n));
  json_object_set_new(o, "format", json_integer(LANE_BUNDLE_VERSION));
  json_object_set_new(o, "signature", json_string(signature_word(lane_bundle_signed(b))));
  json_object_set_new(o, "key_id", lane_bundle_key_id(b) ? json_string(lane_bundle_key_id(b))
                                                         : json_null());
  json_object_set(o, "manifest", m);
  if (tested) {
    json_t *t = json_object();
    json_object_set_new(t, "failed", json_integer(failed));
    json_object_set_new(t, "report", json_string(report));
    json_object_set_new(o, "test", t);
  }
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s) return -1;
  fprintf(out, "%s\n", s);
  free(s);
  return 0;
}

int inspect_bundle(const char *path, const char *key, int test, const char *format, FILE *out,
                   FILE *err) {
  int json = format && !strcmp(format, "json");
  unsigned char pk[32];
  lane_error e;
  if (key && lane_key_load_public(key, pk, &e) != LANE_OK) {
    fprintf(err, "lane: %s\n", e.message);
    return 2;
  }
  size_t n = 0;
  unsigned char *bytes = NULL;
  if (read_all(path, &bytes, &n, &e) != LANE_OK) {
    fprintf(err, "lane: %s\n", e.message);
    return 2;
  }
  lane_bundle *b = NULL;
  int rc = lane_bundle_open(bytes, n, key ? pk : NULL, &b, &e);
  if (rc != LANE_OK) {
    fprintf(err, "lane: %s: %s\n", path, e.message);
    free(bytes);
    return exit_of(rc);
  }
  bundle_entry *ent = NULL;
  int count = 0;
  json_t *m = json_loads(lane_bundle_manifest(b), 0, NULL);
  rc = bundle_parse(bytes, n, &ent, &count, &e) == LANE_OK && m ? 0 : 2;
  if (rc) fprintf(err, "lane: %s: out of memory\n", path);
  char *report = NULL;
  int failed = 0;
  if (!rc && test) {
    report = malloc(REPORT_CAP);
    failed = report ? lane_bundle_test(b, report, REPORT_CAP, &e) : -1;
    if (!report) {
      fprintf(err, "lane: out of memory\n");
      rc = 2;
    } else if (failed < 0) {
      fprintf(err, "lane: %s: %s\n", path, e.message);
      rc = e.code == LANE_EFORMAT ? 1 : 2;
    } else if (failed > 0) {
      rc = 1;
    }
  }
  if (!rc || (report && failed != 0 && rc == 1)) {
    if (json) {
      if (print_json(path, n, b, m, test, failed, report ? report : "", out) != 0) {
        fprintf(err, "lane: out of memory\n");
        rc = 2;
      }
    } else {
      print_text(path, n, b, m, ent, count, key, out);
      if (report) fprintf(out, "\n%s", report);
    }
  }
  json_decref(m);
  free(ent);
  free(report);
  lane_bundle_free(b);
  free(bytes);
  return rc;
}

int keygen_command(const char *name, FILE *out, FILE *err) {
  char id[LANE_BUNDLE_KEY_ID + 1];
  lane_error e;
  if (bundle_keygen(name, id, &e) != LANE_OK) {
    fprintf(err, "lane: %s\n", e.message);
    return 2;
  }
  fprintf(out, "wrote %s.key (the secret key: keep it private) and %s.pub; key id %s\n", name,
          name, id);
  return 0;
}

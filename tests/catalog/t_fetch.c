/*
 * t_fetch.c -- catalog_fetch and catalog_diff against tests/catalog/server.py.
 *
 * Run by tests/catalog/fetch.sh, which builds this file, starts the server
 * and sets:
 *   LANE_TEST_URL       http://127.0.0.1:PORT (the server)
 *   LANE_TEST_REFUSED   http://127.0.0.1:PORT2 (nothing listening)
 *   LANE_TEST_DIR       an empty scratch directory
 *   LANE_TEST_FIXTURES  tests/catalog
 *   LANE_TEST_TLS_URL   https://127.0.0.1:PORT3 (optional, with ...)
 *   LANE_TEST_CA        the self-signed certificate the TLS port serves
 *
 * FILE.etag holds the ETag and the URL it came from, one line each.
 */
#include "catalog.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *base, *refused, *dir, *fixtures;

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *b = malloc(cap + 1);
  for (;;) {
    len += fread(b + len, 1, cap - len, f);
    if (len < cap) break;
    cap *= 2;
    b = realloc(b, cap + 1);
  }
  fclose(f);
  b[len] = 0;
  if (n) *n = len;
  return b;
}

static void spit(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (!f) bail("cannot write %s: %s", path, strerror(errno));
  fputs(s, f);
  fclose(f);
}

static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

/* Files in dir whose name contains ".tmp." (leftover temp files). */
static int leftovers(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) { diag("leftover temp file %s", e->d_name); n++; }
  if (d) closedir(d);
  return n;
}

typedef struct run { int rc; char *out, *err; size_t nout, nerr; double secs; } run;

static run fetch(const char *url, const char *path, const catalog_fetch_opts *o) {
  run r;
  FILE *out = open_memstream(&r.out, &r.nout), *err = open_memstream(&r.err, &r.nerr);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r.rc = catalog_fetch(url, path, o, out, err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  fclose(out);
  fclose(err);
  r.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return r;
}

static run diff_with(const char *a, const char *b, const catalog_diff_opts *o) {
  run r;
  FILE *out = open_memstream(&r.out, &r.nout), *err = open_memstream(&r.err, &r.nerr);
  r.rc = catalog_diff(a, b, o, out, err);
  fclose(out);
  fclose(err);
  r.secs = 0;
  return r;
}

static run diff(const char *a, const char *b) { return diff_with(a, b, NULL); }

static void run_free(run *r) { free(r->out); free(r->err); }

/* One line, ending in a newline. */
static int one_line(const char *s) {
  const char *nl = strchr(s, '\n');
  return nl && nl[1] == 0;
}

/* The state of FILE and FILE.etag before a failing fetch. */
typedef struct snap { char *body, *etag; size_t nbody, netag; struct stat st; } snap;

static snap take(const char *path) {
  snap s;
  char *ep = fmt("%s.etag", path);
  s.body = slurp(path, &s.nbody);
  s.etag = slurp(ep, &s.netag);
  if (stat(path, &s.st) != 0) memset(&s.st, 0, sizeof s.st);
  free(ep);
  return s;
}

static int same(const snap *a, const snap *b) {
  return a->body && b->body && a->nbody == b->nbody && !memcmp(a->body, b->body, a->nbody) &&
         a->etag && b->etag && a->netag == b->netag && !memcmp(a->etag, b->etag, a->netag) &&
         a->st.st_ino == b->st.st_ino && a->st.st_mtime == b->st.st_mtime &&
         a->st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec;
}

static void snap_free(snap *s) { free(s->body); free(s->etag); }

/* Pins path's mtime far in the past, so that a rewrite would show. */
static void age(const char *path) {
  struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
  if (utimensat(AT_FDCWD, path, ts, 0) != 0) bail("utimensat %s: %s", path, strerror(errno));
}

/* A fetch that must fail: exit 2, one line on err naming the URL and
 * containing want, nothing on out, FILE and FILE.etag untouched. */
static void fails(const char *path, const char *url, const catalog_fetch_opts *o,
                  const char *want, const char *name) {
  snap before = take(path);
  run r = fetch(url, path, o);
  snap after = take(path);
  int good = r.rc == 2 && one_line(r.err) && strstr(r.err, want) && r.nout == 0 &&
             same(&before, &after) && leftovers() == 0;
  /* the URL is named (with any user:password removed) */
  const char *at = strchr(url, '@');
  if (at) good = good && strstr(r.err, at + 1) && !strstr(r.err, "secret");
  else good = good && strstr(r.err, url);
  ok(good, "%s: exit 2, \"%s\", old file and .etag untouched", name, want);
  if (!good) {
    diag("rc %d, out '%s'", r.rc, r.out);
    diag("err '%s'", r.err);
    diag("file and etag the same: %d", same(&before, &after));
  }
  run_free(&r);
  snap_free(&before);
  snap_free(&after);
}

static void test_fetch(void) {
  char *path = fmt("%s/cat.json", dir), *etag = fmt("%s/cat.json.etag", dir);
  char *good_fix = fmt("%s/good.json", fixtures), *changed_fix = fmt("%s/changed.json", fixtures);
  size_t ngood, nchanged;
  char *good = slurp(good_fix, &ngood), *changed = slurp(changed_fix, &nchanged);
  if (!good || !changed) bail("fixtures missing under %s", fixtures);
  catalog_fetch_opts o = {.timeout_ms = 5000};

  /* first fetch */
  char *url = fmt("%s/good.json", base);
  run r = fetch(url, path, &o);
  char *want = fmt("fetched %s: 6 entries, %zu bytes -> %s\n", url, ngood, path);
  is_int(r.rc, 0, "fetch good.json: exit 0");
  is_str(r.out, want, "fetch good.json: the summary line");
  is_str(r.err, "", "fetch good.json: nothing on err");
  size_t n;
  char *got = slurp(path, &n);
  ok(got && n == ngood && !memcmp(got, good, n), "the file is the served catalog, byte for byte");
  free(got);
  got = slurp(etag, NULL);
  char *want_etag = fmt("\"good-v1\"\n%s\n", url);
  is_str(got, want_etag, "the ETag is saved in FILE.etag with the URL it came from");
  free(want_etag);
  free(got);
  struct stat st;
  ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "a new file gets 0666 & ~umask");
  is_int(leftovers(), 0, "no temp file left");
  run_free(&r);
  free(want);

  /* unchanged: 304, the file not rewritten */
  age(path);
  age(etag);
  snap before = take(path);
  r = fetch(url, path, &o);
  snap after = take(path);
  want = fmt("fetched %s: not modified, %s unchanged\n", url, path);
  is_int(r.rc, 0, "second fetch: exit 0");
  is_str(r.out, want, "second fetch: 304, not modified");
  ok(same(&before, &after), "a 304 leaves file, .etag, inode and mtime alone");
  run_free(&r);
  free(want);
  free(url);
  snap_free(&before);
  snap_free(&after);

  /* Another URL whose server happens to use the same ETag: the ETag saved
   * for good.json is not sent, so the new catalog arrives (issue 13: a 304
   * after a URL switch kept the old catalog). */
  url = fmt("%s/same-etag.json", base);
  r = fetch(url, path, &o);
  got = slurp(path, &n);
  ok(r.rc == 0 && strstr(r.out, "6 entries") && got && n == nchanged &&
     !memcmp(got, changed, n), "another URL with the same ETag: downloaded, not 304");
  if (r.rc != 0 || !strstr(r.out, "6 entries")) diag("out '%s' err '%s'", r.out, r.err);
  free(got);
  run_free(&r);
  free(url);

  /* An .etag written without its URL (an older lane) is not sent either. */
  url = fmt("%s/good.json", base);
  r = fetch(url, path, &o);
  ok(r.rc == 0 && strstr(r.out, "6 entries"), "back to good.json: downloaded");
  run_free(&r);
  spit(etag, "\"good-v1\"\n");
  r = fetch(url, path, &o);
  ok(r.rc == 0 && strstr(r.out, "6 entries"), "an .etag without a URL is not sent");
  run_free(&r);
  got = slurp(etag, NULL);
  want_etag = fmt("\"good-v1\"\n%s\n", url);
  is_str(got, want_etag, "and is rewritten with the URL");
  free(want_etag);
  free(got);
  free(url);

  /* A URL with credentials is recorded without them, and still matches. */
  url = fmt("http://user:secret@%s/good.json", base + 7);
  r = fetch(url, path, &o);
  got = slurp(etag, NULL);
  ok(r.rc == 0 && strstr(r.out, "not modified") && got && !strstr(got, "secret"),
     "user:password@ is left out of FILE.etag, and the URL matches without it");
  free(got);
  run_free(&r);
  free(url);

  /* A redirect: the ETag belongs to the URL asked for, not where it led. */
  url = fmt("%s/redirect", base);
  r = fetch(url, path, &o);
  ok(r.rc == 0 && strstr(r.out, "6 entries"), "redirect -> good.json: a new URL, downloaded");
  run_free(&r);
  before = take(path);
  r = fetch(url, path, &o);
  after = take(path);
  ok(r.rc == 0 && strstr(r.out, "not modified") && same(&before, &after),
     "redirect again: If-None-Match goes along the redirect, 304, untouched");
  run_free(&r);
  free(url);
  snap_free(&before);
  snap_free(&after);

  /* every error leaves the old file and its ETag alone */
  char *u;
#define FAILS(opts, want_, name, ...) \
  do { u = fmt(__VA_ARGS__); fails(path, u, opts, want_, name); free(u); } while (0)
  FAILS(&o, "invalid JSON at line 5, column 22", "invalid JSON", "%s/broken.json", base);
  FAILS(&o, "not a catalog: no entry has input_cost_per_token or litellm_provider",
        "valid JSON, not a catalog", "%s/notcatalog.json", base);
  FAILS(&o, "not a catalog: the top level is not a JSON object", "a JSON array",
        "%s/array.json", base);
  char *trunc = fmt("truncated body: %zu of %zu bytes arrived", ngood / 2, ngood + 1000);
  FAILS(&o, trunc, "Content-Length larger than the body", "%s/truncated.json", base);
  free(trunc);
  FAILS(&o, "HTTP 404 error", "404", "%s/404", base);
  FAILS(&o, "HTTP 500 error", "500", "%s/500", base);
  FAILS(&o, "too many redirects (more than 3)", "redirect loop", "%s/loop", base);
  catalog_fetch_opts o1 = {.timeout_ms = 5000, .max_redirects = 1};
  FAILS(&o1, "too many redirects (more than 1)", "max_redirects 1, loop", "%s/loop", base);
  FAILS(&o, "unsupported protocol", "redirect to file://", "%s/redirect-file", base);
  FAILS(&o, "unsupported protocol", "file:// URL", "file:///etc/passwd");
  FAILS(&o, "unsupported protocol", "ftp:// URL", "ftp://%s/good.json", base + 7);
  FAILS(&o, "cannot connect", "connection refused", "%s/good.json", refused);
  FAILS(&o, "cannot resolve host", "DNS failure (.invalid)", "http://lane-catalog-test.invalid/good.json");
  FAILS(&o, "HTTP 404 error", "user:password is not printed", "http://user:secret@%s/404",
        base + 7);
  FAILS(&o, "TLS", "https to a plain HTTP port", "https://%s/good.json", base + 7);
  catalog_fetch_opts small = {.timeout_ms = 5000, .max_bytes = 65536};
  char *toobig = fmt("body too large: Content-Length %s exceeds the limit of 65536 bytes",
                     getenv("LANE_TEST_BIG_SIZE") ? getenv("LANE_TEST_BIG_SIZE") : "?");
  FAILS(&small, toobig, "big body with Content-Length", "%s/big.json", base);
  free(toobig);
  FAILS(&small, "body too large: more than the limit of 65536 bytes",
        "big chunked body, no Content-Length", "%s/big-stream.json", base);
  /* issue 13: a 63 MB body of empty objects took 4.77 GB and replaced a
   * good catalog with a 1-entry one */
  FAILS(&o, "the catalog has more than 200000 objects and arrays, the limit "
        "(CATALOG_MAX_CONTAINERS)", "250,000 empty objects", "%s/hostile.json", base);
  FAILS(&o, "the new catalog has 1 model entries, fewer than half of the 6 in",
        "a catalog that lost most of its entries", "%s/tiny.json", base);

  /* timeouts: from opts, then from LANE_FETCH_TIMEOUT_MS */
  catalog_fetch_opts quick = {.timeout_ms = 1000};
  u = fmt("%s/slow.json", base);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fails(path, u, &quick, "timed out after 1000 ms", "slow server, timeout_ms 1000");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  ok(secs < 3.0, "the timeout is kept (%.2f s)", secs);
  setenv("LANE_FETCH_TIMEOUT_MS", "800", 1);
  fails(path, u, NULL, "timed out after 800 ms", "slow server, LANE_FETCH_TIMEOUT_MS=800");
  unsetenv("LANE_FETCH_TIMEOUT_MS");
  free(u);

  /* force replaces it anyway, and says so */
  u = fmt("%s/tiny.json", base);
  char *p3 = fmt("%s/tiny.json", dir);
  spit(p3, good);
  catalog_fetch_opts forced = {.timeout_ms = 5000, .force = 1};
  r = fetch(u, p3, &forced);
  got = slurp(p3, NULL);
  char *note = fmt("note: %s had 6 model entries, the new catalog has 1 (--force)\n", p3);
  ok(r.rc == 0 && strstr(r.out, note) && strstr(r.out, "1 entries") && got && strstr(got, "gpt-4o") &&
     !strstr(got, "claude"), "force: the smaller catalog replaces the file, with a note");
  if (r.rc) diag("err '%s'", r.err);
  free(note);
  free(got);
  run_free(&r);
  /* a file that is not a catalog is replaced, with a note */
  spit(p3, "not json\n");
  char *e3 = fmt("%s.etag", p3);
  unlink(e3);
  free(e3);
  r = fetch(u, p3, &o);
  ok(r.rc == 0 && strstr(r.out, "is not a catalog") && strstr(r.out, "replacing it"),
     "an old file that is not a catalog: replaced, with a note");
  run_free(&r);
  free(p3);
  free(u);

  /* a changed catalog replaces the file and the ETag */
  url = fmt("%s/changed.json", base);
  r = fetch(url, path, &o);
  want = fmt("fetched %s: 6 entries, %zu bytes -> %s\n", url, nchanged, path);
  is_str(r.out, want, "changed.json: fetched");
  is_int(r.rc, 0, "changed.json: exit 0");
  got = slurp(path, &n);
  ok(got && n == nchanged && !memcmp(got, changed, n), "the file is now the changed catalog");
  free(got);
  got = slurp(etag, NULL);
  want_etag = fmt("\"changed-v1\"\n%s\n", url);
  is_str(got, want_etag, "and FILE.etag its ETag and URL");
  free(want_etag);
  free(got);
  is_int(leftovers(), 0, "no temp file left");
  run_free(&r);
  free(want);
  free(url);

  /* the mode of a replaced file is kept */
  chmod(path, 0640);
  url = fmt("%s/good.json", base);
  r = fetch(url, path, &o);
  ok(r.rc == 0 && stat(path, &st) == 0 && (st.st_mode & 0777) == 0640,
     "a replaced file keeps its mode (0640)");
  run_free(&r);

  /* no ETag from the server: a stale FILE.etag goes */
  u = fmt("%s/noetag.json", base);
  r = fetch(u, path, &o);
  got = slurp(path, &n);
  ok(r.rc == 0 && got && n == ngood && access(etag, F_OK) != 0,
     "a response without ETag removes the old FILE.etag");
  free(got);
  run_free(&r);
  free(u);

  /* a .etag without its file is not sent (a 304 would leave no file) */
  unlink(path);
  spit(etag, "\"good-v1\"\n");
  r = fetch(url, path, &o);
  got = slurp(path, &n);
  ok(r.rc == 0 && strstr(r.out, "6 entries") && got && n == ngood,
     "FILE missing, FILE.etag present: downloaded again");
  free(got);
  run_free(&r);

  /* bad arguments and an unwritable place */
  char *nodir = fmt("%s/no/such/dir/cat.json", dir);
  r = fetch(url, nodir, &o);
  ok(r.rc == 2 && one_line(r.err) && strstr(r.err, "cannot create a temp file") &&
     strstr(r.err, url), "output directory missing: exit 2, one line");
  run_free(&r);
  free(nodir);
  r = fetch(NULL, path, &o);
  ok(r.rc == 2 && strstr(r.err, "needs a URL"), "no URL: exit 2");
  run_free(&r);
  r = fetch(url, NULL, &o);
  ok(r.rc == 2 && strstr(r.err, "needs an output file"), "no output file: exit 2");
  run_free(&r);
  r = fetch(url, dir, &o);
  ok(r.rc == 2 && strstr(r.err, "not a regular file"), "output is a directory: exit 2");
  run_free(&r);
  free(url);

  /* TLS: verified against the system store (fails), then with ca_file */
  const char *tls = getenv("LANE_TEST_TLS_URL"), *ca = getenv("LANE_TEST_CA");
  if (tls && *tls && ca && *ca) {
    u = fmt("%s/good.json", tls);
    fails(path, u, &o, "TLS certificate verification failed",
          "self-signed certificate rejected");
    catalog_fetch_opts with_ca = {.timeout_ms = 5000, .ca_file = ca};
    char *p2 = fmt("%s/tls.json", dir);
    r = fetch(u, p2, &with_ca);
    ok(r.rc == 0 && strstr(r.out, "6 entries"), "https with the test CA: fetched");
    if (r.rc) diag("%s", r.err);
    run_free(&r);
    free(p2);
    free(u);
  } else {
    skip_env(2, "no TLS server (openssl missing)");
  }

  free(path);
  free(etag);
  free(good_fix);
  free(changed_fix);
  free(good);
  free(changed);
}

static void test_diff(void) {
  char *good = fmt("%s/good.json", fixtures), *changed = fmt("%s/changed.json", fixtures);
  char *old = fmt("%s/diff_old.json", fixtures), *new = fmt("%s/diff_new.json", fixtures);
  char *expf = fmt("%s/diff_expected.txt", fixtures);
  char *broken = fmt("%s/broken.json", dir), *arr = fmt("%s/array.json", dir);
  char *missing = fmt("%s/missing.json", dir);

  run r = diff(good, changed);
  is_int(r.rc, 1, "diff good changed: exit 1");
  is_str(r.out,
         "~ anthropic.claude-3-5-sonnet-20240620-v1:0: input_cost_per_token 3e-06 -> 2.5e-06\n"
         "+ mistral/mistral-large-latest (mistral)\n"
         "- text-embedding-3-small (openai)\n"
         "1 added, 1 removed, 1 changed\n",
         "diff good changed: one price, one added, one removed");
  is_str(r.err, "", "diff: nothing on err");
  run_free(&r);

  r = diff(good, good);
  is_int(r.rc, 0, "diff good good: exit 0");
  is_str(r.out, "0 added, 0 removed, 0 changed\n", "diff good good: only the summary");
  run_free(&r);

  char *exp = slurp(expf, NULL);
  r = diff(old, new);
  is_int(r.rc, 1, "diff diff_old diff_new: exit 1");
  is_str(r.out, exp, "diff diff_old diff_new: as in diff_expected.txt");
  run_free(&r);
  free(exp);
  run r2 = diff(old, new);
  r = diff(old, new);
  is_str(r.out, r2.out, "diff output is deterministic");
  run_free(&r);
  run_free(&r2);

  /* --format lane: what import writes, by lane name (issue 12) */
  char *lold = fmt("%s/lane_old.json", fixtures), *lnew = fmt("%s/lane_new.json", fixtures);
  char *lexpf = fmt("%s/lane_diff_expected.txt", fixtures), *lexp = slurp(lexpf, NULL);
  catalog_diff_opts lane = {.lane = 1};
  r = diff_with(lold, lnew, &lane);
  is_int(r.rc, 1, "diff --format lane: exit 1");
  is_str(r.out, lexp, "diff --format lane: as in lane_diff_expected.txt");
  ok(r.out && strstr(r.out, "~ deepseek.deepseek_reasoner: caps -tools\n") &&
     strstr(r.out, "~ mistral.mistral_large_latest: caps +vision\n"),
     "capabilities lost and gained are lines of their own");
  ok(r.out && !strstr(r.out, "embedding") && !strstr(r.out, "dall"),
     "entries import skips (embedding, image) are not in the lane view");
  run_free(&r);
  const char *only_deepseek[] = {"deepseek"};
  catalog_diff_opts lane_ds = {.lane = 1, .providers = only_deepseek, .nproviders = 1};
  r = diff_with(lold, lnew, &lane_ds);
  is_str(r.out,
         "~ deepseek.deepseek_deepseek_reasoner: caps -tools\n"
         "~ deepseek.deepseek_reasoner: caps -tools\n"
         "0 added, 0 removed, 2 changed\n", "diff --format lane --provider deepseek");
  run_free(&r);
  const char *only_azure[] = {"azure"};
  catalog_diff_opts raw_az = {.providers = only_azure, .nproviders = 1};
  r = diff_with(lold, lnew, &raw_az);
  is_str(r.out, "~ azure/gpt-4o: input_cost_per_token 5e-06 -> 2.5e-06\n"
                "0 added, 0 removed, 1 changed\n", "diff --provider azure (raw keys)");
  run_free(&r);
  const char *nosuch[] = {"nosuch"};
  catalog_diff_opts bad_prov = {.providers = nosuch, .nproviders = 1};
  r = diff_with(lold, lnew, &bad_prov);
  ok(r.rc == 2 && r.nout == 0 && one_line(r.err) && strstr(r.err, "--provider nosuch"),
     "diff --provider of neither catalog: exit 2, said so");
  run_free(&r);
  r = diff_with(lnew, lnew, &lane);
  ok(r.rc == 0 && !strcmp(r.out, "0 added, 0 removed, 0 changed\n"), "diff --format lane, same file: exit 0");
  run_free(&r);
  free(lold);
  free(lnew);
  free(lexpf);
  free(lexp);

  spit(broken, "{\n  \"a\": {\"input_cost_per_token\": 1e-06,}\n}\n");
  r = diff(good, broken);
  char *want = fmt("lane: %s:2:39: invalid JSON: ", broken);
  ok(r.rc == 2 && !strncmp(r.err, want, strlen(want)) && one_line(r.err) && r.nout == 0,
     "diff with invalid JSON: exit 2, FILE:line:col");
  if (r.rc != 2 || strncmp(r.err, want, strlen(want))) diag("err '%s'", r.err);
  run_free(&r);
  free(want);

  r = diff(missing, good);
  ok(r.rc == 2 && strstr(r.err, "cannot read") && strstr(r.err, missing) && r.nout == 0,
     "diff with a missing file: exit 2");
  run_free(&r);

  spit(arr, "[1, 2]\n");
  r = diff(arr, good);
  ok(r.rc == 2 && strstr(r.err, "not a catalog"), "diff with a JSON array: exit 2");
  run_free(&r);

  free(good);
  free(changed);
  free(old);
  free(new);
  free(expf);
  free(broken);
  free(arr);
  free(missing);
}

int main(void) {
  base = getenv("LANE_TEST_URL");
  refused = getenv("LANE_TEST_REFUSED");
  dir = getenv("LANE_TEST_DIR");
  fixtures = getenv("LANE_TEST_FIXTURES");
  if (!base || !refused || !dir || !fixtures || strncmp(base, "http://", 7) != 0)
    bail("set LANE_TEST_URL, LANE_TEST_REFUSED, LANE_TEST_DIR, LANE_TEST_FIXTURES");
  umask(022);
  test_diff();
  test_fetch();
  return done_testing();
}

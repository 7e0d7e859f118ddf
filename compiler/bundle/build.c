/*
 * build.c -- a bundle from a compile: the program, the manifest, every
 * file the compiler read (standard-library modules renamed "std/PATH.lane",
 * the name a sealed compile resolves `import "std/PATH"` to), and the
 * snapshots the policy's tests name; signed when given a key.
 */
#include "bundle.h"
#include "sema.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The files of a bundle being made; paths and snapshot bytes are owned. */
typedef struct fileset {
  lanec_file *f;        /* path, bytes, n */
  char      **own;      /* per file: malloc'd bytes (a snapshot), or NULL */
  int         n, cap;
} fileset;

static void fs_free(fileset *s) {
  for (int i = 0; i < s->n; i++) {
    free((char *)s->f[i].path);
    free(s->own[i]);
  }
  free(s->f);
  free(s->own);
}

/* The file named path (normalised), or NULL. */
static const lanec_file *fs_find(const fileset *s, const char *path) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->f[i].path, path)) return &s->f[i];
  return NULL;
}

/* Adds a file under the normal form of path (sema_path_norm), with bytes
 * (owned when own); a second file of that name must hold the same bytes. */
static int fs_add(fileset *s, const char *path, const char *bytes, size_t n, char *own,
                  lane_error *err) {
  char q[72], norm[BUNDLE_MAX_NAME + 1];
  if (sema_path_norm(path, norm, sizeof norm) != 0) {
    free(own);
    return bundle_err(err, LANE_EARG, "the path '%s' is longer than a bundle keeps (%d bytes)",
                      bundle_quote(path, strlen(path), q), BUNDLE_MAX_NAME);
  }
  const lanec_file *had = fs_find(s, norm);
  if (had) {
    int same = had->n == n && (!n || !memcmp(had->bytes, bytes, n));
    free(own);
    if (same) return LANE_OK;
    return bundle_err(err, LANE_EARG, "two different files would both be '%s' in the bundle",
                      bundle_quote(norm, strlen(norm), q));
  }
  size_t plen = strlen(norm);
  char *p = malloc(plen + 1);
  if (p && s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 16;
    lanec_file *f = realloc(s->f, (size_t)cap * sizeof *f);
    if (f) s->f = f;
    char **o = f ? realloc(s->own, (size_t)cap * sizeof *o) : NULL;
    if (o) { s->own = o; s->cap = cap; }
  }
  if (!p || s->n == s->cap) {
    free(p);
    free(own);
    return bundle_err(err, LANE_ENOMEM, "out of memory collecting the policy's files");
  }
  memcpy(p, norm, plen + 1);
  if (!bundle_name_ok(p, plen)) {
    bundle_err(err, LANE_EARG, "the file name '%s' cannot name a bundle entry (1 to %d bytes of "
               "UTF-8 without control characters)", bundle_quote(p, plen, q), BUNDLE_MAX_NAME);
    free(p);
    free(own);
    return LANE_EARG;
  }
  s->f[s->n].path = p;
  s->f[s->n].bytes = bytes;
  s->f[s->n].n = n;
  s->own[s->n++] = own;
  return LANE_OK;
}

/* The name each module takes in the bundle: "std/PATH.lane" for one a
 * `std/PATH` import resolved to, else its path. NULL in names[i] means the
 * path; a module reached by two std/ names cannot be named once. */
static int std_names(const sema_unit *u, char **names, lane_error *err) {
  char q[72];
  for (int i = 0; i < u->nmods; i++)
    for (int k = 0; k < u->mods[i]->decls.n; k++) {
      const ast_node *d = u->mods[i]->decls.v[k];
      if (d->kind != N_IMPORT || d->len <= 4 || memcmp(d->str, "std/", 4) || d->ref < 0 ||
          d->ref >= u->nmods)
        continue;
      char *name = malloc(d->len + 6);
      if (!name) return bundle_err(err, LANE_ENOMEM, "out of memory naming the stdlib modules");
      snprintf(name, d->len + 6, "%.*s.lane", (int)d->len, d->str);
      char *had = names[d->ref];
      if (had && strcmp(had, name)) {
        bundle_err(err, LANE_EARG, "'%s' is imported both as %.*s and as %.*s: a bundle names each "
                   "file once; import it one way", bundle_quote(u->mods[d->ref]->file.name,
                   strlen(u->mods[d->ref]->file.name), q), (int)(strlen(had) - 5), had,
                   (int)d->len, d->str);
        free(name);
        return LANE_EARG;
      }
      free(had);
      names[d->ref] = name;
    }
  return LANE_OK;
}

/* A path of the policy's own that a sealed compile would take for a
 * standard-library module. */
static int not_std(const char *path, lane_error *err) {
  char q[72], norm[BUNDLE_MAX_NAME + 1];
  if (sema_path_norm(path, norm, sizeof norm) != 0 || strncmp(norm, "std/", 4)) return LANE_OK;
  return bundle_err(err, LANE_EARG, "'%s' would be taken for a standard-library module in a "
                    "bundle (its path starts with std/): build from another directory, or "
                    "rename that folder", bundle_quote(path, strlen(path), q));
}

/* Every file the compile read, and every snapshot its tests name, each
 * once under its normalised path. */
static int collect(const sema_unit *u, fileset *s, lane_error *err) {
  char **names = calloc((size_t)u->nmods + 1, sizeof *names);
  if (!names) return bundle_err(err, LANE_ENOMEM, "out of memory collecting the policy's files");
  int rc = std_names(u, names, err);
  for (int i = 0; i < u->nmods && rc == LANE_OK; i++) {
    const src_file *f = &u->mods[i]->file;
    const char *path = names[i] ? names[i] : f->name;
    if (!names[i]) rc = not_std(path, err);
    if (rc == LANE_OK) rc = fs_add(s, path, f->text, f->len, NULL, err);
  }
  for (int i = 0; i <= u->nmods; i++) free(names[i]);
  free(names);
  for (int i = 0; i < u->tests.n && rc == LANE_OK; i++) {
    const ast_node *t = u->tests.v[i];
    char path[4096], q[72];
    int has = sema_test_state_path(t, path, sizeof path);
    if (has < 0)
      return bundle_err(err, LANE_EARG, "test \"%s\": its snapshot's path is longer than %zu bytes",
                        bundle_quote(t->str, t->len, q), sizeof path - 1);
    if (!has) continue;
    if ((rc = not_std(path, err)) != LANE_OK) break;
    size_t n = 0;
    char *bytes = sema_read_input(u, path, SEMA_MAX_SNAPSHOT, &n);
    if (!bytes)
      return bundle_err(err, LANE_EARG, "cannot read '%s', the snapshot test \"%s\" names: %s",
                        path, bundle_quote(t->str, t->len, q), strerror(errno));
    if (n > SEMA_MAX_SNAPSHOT) {
      free(bytes);
      return bundle_err(err, LANE_EARG, "'%s': a snapshot is at most %u MiB", path,
                        SEMA_MAX_SNAPSHOT >> 20);
    }
    rc = fs_add(s, path, bytes, n, bytes, err);
  }
  if (rc == LANE_OK && s->n > BUNDLE_MAX_FILES)
    rc = bundle_err(err, LANE_EARG, "the policy reads %d files; a bundle holds at most %d", s->n,
                    BUNDLE_MAX_FILES);
  return rc;
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const lanec_file *)a)->path, ((const lanec_file *)b)->path);
}

int bundle_revision_ok(const char *r) {
  size_t n = strlen(r);
  if (n < 1 || n > BUNDLE_MAX_REVISION) return 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+:/@", r[i]))
      return 0;
  return 1;
}

/* Sets key to v in m; counts a failure in *bad (v is NULL when memory ran out). */
static void set(json_t *m, const char *key, json_t *v, int *bad) {
  if (!v || json_object_set_new(m, key, v) != 0) *bad = 1;
}

/* The manifest, as JSON text (malloc'd), or NULL when memory ran out. */
static char *manifest(const lanec_result *r, const lanec_opts *co, const fileset *s,
                      const char *policy, const char *tests, const char *revision,
                      const char *src, const char *std, const char *key_id, const char *when) {
  json_t *m = json_object(), *routes = json_array(), *files = json_array(), *inc = json_array();
  int bad = !m || !routes || !files || !inc;
  char sum[17];
  snprintf(sum, sizeof sum, "%016llx", (unsigned long long)lane_program_checksum(r->prog));
  for (int i = 0; i < lane_route_count(r->prog) && !bad; i++)
    bad |= json_array_append_new(routes, json_string(lane_route_name(r->prog, i))) != 0;
  for (int i = 0; i < s->n && !bad; i++)
    bad |= json_array_append_new(files, json_string(s->f[i].path)) != 0;
  for (int i = 0; co && i < co->ninclude && !bad; i++)
    bad |= json_array_append_new(inc, json_string(co->include[i])) != 0;
  if (!bad) {
    set(m, "bundle_version", json_integer(LANE_BUNDLE_VERSION), &bad);
    set(m, "revision", json_string(revision), &bad);
    set(m, "policy", json_string(policy), &bad);
    set(m, "tests_file", tests ? json_string(tests) : json_null(), &bad);
    set(m, "include", json_incref(inc), &bad);
    set(m, "no_opt", json_boolean(co && co->no_opt), &bad);
    set(m, "routes", json_incref(routes), &bad);
    set(m, "tests", json_integer(r->unit->tests.n), &bad);
    set(m, "program_checksum", json_string(sum), &bad);
    set(m, "source_digest", json_string(src), &bad);
    set(m, "stdlib_digest", json_string(std), &bad);
    set(m, "files", json_incref(files), &bad);
    set(m, "lane_version", json_string(lane_version()), &bad);
    set(m, "built_at", json_string(when), &bad);
    if (key_id) set(m, "key_id", json_string(key_id), &bad);
  }
  char *text = bad ? NULL : json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(m);
  json_decref(routes);
  json_decref(files);
  json_decref(inc);
  return text;
}

int bundle_make(const lanec_result *r, const lanec_opts *co, const bundle_build_opts *o,
                unsigned char **out, size_t *n, lane_error *err) {
  *out = NULL;
  *n = 0;
  if (!r || r->status != LANEC_OK || !r->bytes || !r->prog || !r->unit || !r->unit->nmods)
    return bundle_err(err, LANE_EARG, "no compiled policy to bundle");
  if (bundle_sodium(err) != LANE_OK) return LANE_ENOMEM;
  if (o->revision && !bundle_revision_ok(o->revision)) {
    char q[72];
    return bundle_err(err, LANE_EARG, "revision '%s': use 1 to %d letters, digits and . _ - + : / @",
                      bundle_quote(o->revision, strlen(o->revision), q), BUNDLE_MAX_REVISION);
  }
  for (int i = 0; co && i < co->ninclude; i++)
    if (!bundle_name_ok(co->include[i], strlen(co->include[i])))
      return bundle_err(err, LANE_EARG, "an -I directory's name cannot be kept in a manifest");
  time_t when = (time_t)o->built_at;
  struct tm tm;
  char stamp[32];
  if ((long long)when != o->built_at || !gmtime_r(&when, &tm) || tm.tm_year + 1900 < 1970 ||
      tm.tm_year + 1900 > 9999 || !strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return bundle_err(err, LANE_EARG, "built_at %lld is not a time from 1970 to 9999", o->built_at);
  fileset s = {0};
  int rc = collect(r->unit, &s, err);
  if (rc != LANE_OK) { fs_free(&s); return rc; }
  qsort(s.f, (size_t)s.n, sizeof *s.f, by_path);   /* own[] no longer lines up: only freed */
  char src[72], std[72], rev[BUNDLE_MAX_REVISION + 1], id[LANE_BUNDLE_KEY_ID + 1];
  bundle_digest(s.f, s.n, 0, src);
  bundle_digest(s.f, s.n, 1, std);
  if (o->revision) snprintf(rev, sizeof rev, "%s", o->revision);
  else snprintf(rev, sizeof rev, "%.12s", src + 7);   /* after "sha256:" */
  if (o->sk) bundle_key_id(o->sk + 32, id);
  char policy[BUNDLE_MAX_NAME + 1], tests[BUNDLE_MAX_NAME + 1];
  sema_path_norm(r->unit->mods[0]->file.name, policy, sizeof policy);   /* a bundled file: fits */
  if (co && co->tests) sema_path_norm(co->tests, tests, sizeof tests);
  char *text = manifest(r, co, &s, policy, co && co->tests ? tests : NULL, rev, src, std,
                        o->sk ? id : NULL, stamp);
  if (!text) { fs_free(&s); return bundle_err(err, LANE_ENOMEM, "out of memory writing the manifest"); }
  size_t tn = strlen(text);
  bundle_writer w;
  bundle_w_start(&w, (uint32_t)(2 + s.n + (o->sk ? 1 : 0)));
  bundle_w_entry(&w, BK_MANIFEST, NULL, text, tn);
  bundle_w_entry(&w, BK_PROGRAM, NULL, r->bytes, r->nbytes);
  for (int i = 0; i < s.n; i++) bundle_w_entry(&w, BK_SOURCE, s.f[i].path, s.f[i].bytes, s.f[i].n);
  if (o->sk) bundle_w_sign(&w, o->sk);
  rc = tn > BUNDLE_MAX_MANIFEST
           ? bundle_err(err, LANE_EARG, "the manifest would take %zu bytes; at most %u", tn,
                        BUNDLE_MAX_MANIFEST)
           : bundle_w_finish(&w, err);
  if (rc == LANE_OK) {
    *out = w.b;
    *n = w.n;
  } else {
    free(w.b);
  }
  free(text);
  fs_free(&s);
  return rc;
}

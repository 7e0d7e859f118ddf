/*
 * fuzz_import.c -- price catalog JSON -> `lane catalog import`
 * (compiler/cli/catalog.c): catalog_parse, catalog_collect, catalog_render.
 *
 * Any bytes in. catalog_parse either refuses them with a one-line message
 * (not JSON, a duplicate key, one of the catalog limits) or the catalog's
 * entries become models and the models modules. catalog_render may refuse
 * a module with a one-line message (a compiler limit). Every module it
 * writes must compile as an import (sema, emit, lane_load), and the
 * compiled unit must hold exactly the models the importer collected, each
 * with the same name, provider, id, prices (bit for bit), limits,
 * capabilities and deprecation date: no catalog text can add, drop or
 * change a model. Names are identifiers, unique in their module.
 *
 * The modules are written to a directory made once per process under
 * $TMPDIR (default /tmp), each removed after its input, the directory at
 * exit.
 * Seeds: small excerpts of the shared LiteLLM catalog (one or a few real
 * entries each: chat and responses modes, a long-context tier, cached and
 * reasoning prices, key collisions, Azure and Bedrock), and the hostile
 * catalogs of tests/catalog (inject_date.json, inject_key.json).
 */
#define _XOPEN_SOURCE 700   /* mkdtemp, open_memstream */
#include "catalog.h"
#include "fuzz.h"
#include "sema.h"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *tmpdir;

/* Each module file is removed after its input, the directory at exit. */
static void cleanup(void) {
  rmdir(tmpdir);
  free(tmpdir);
}

static void setup(void) {
  const char *t = getenv("TMPDIR");
  size_t n = strlen(t && *t ? t : "/tmp") + 32;
  tmpdir = malloc(n);
  if (!tmpdir) abort();
  snprintf(tmpdir, n, "%s/lane-fuzz-import-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmpdir)) { perror("mkdtemp"); abort(); }
  atexit(cleanup);
}

/* A refusal is one line of text. */
static void check_message(const char *s, size_t n) {
  if (!s || n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1)) {
    fprintf(stderr, "refusal without a one-line message: '%.*s'\n", (int)n, s ? s : "");
    abort();
  }
}

static int is_ident(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > AST_MAX_IDENT || (*s >= '0' && *s <= '9')) return 0;
  return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The compiled model of catalog model m, field by field. */
static void check_model(const sema_unit *u, const catalog_model *m) {
  char name[2 * AST_MAX_IDENT + 2];
  snprintf(name, sizeof name, "%s.%s", m->module, m->ident);
  int i = sema_model_find(u, name);
  if (i < 0) { fprintf(stderr, "model %s is not in the compiled unit\n", name); abort(); }
  const sema_model *s = &u->models[i];
  uint32_t caps = 0;
  for (int k = 0; k < CATALOG_NCAPS; k++) {
    int bit = sema_cap_find(u, catalog_caps[k]);
    if (bit < 0) abort();
    if (m->caps >> k & 1) caps |= 1u << bit;
  }
  if (strcmp(s->provider, m->module) || strcmp(s->id, m->id) ||
      !same_double(s->input, m->input) || !same_double(s->output, m->output) ||
      !same_double(s->cached_input, m->cached_input) ||
      !same_double(s->cache_write, m->cache_write) ||
      !same_double(s->reasoning_output, m->reasoning_output) ||
      !same_double(s->long_input, m->long_input) || !same_double(s->long_output, m->long_output) ||
      !same_double(s->long_cached_input, m->long_cached_input) || s->context != m->context ||
      s->max_output != m->max_output || s->long_above != m->long_above || s->caps != caps ||
      strcmp(s->deprecated, m->deprecated)) {
    fprintf(stderr, "model %s (key '%s') compiled differently from the catalog: input %a/%a "
            "output %a/%a caps %x/%x\n", name, m->key, s->input, m->input, s->output,
            m->output, (unsigned)s->caps, (unsigned)caps);
    abort();
  }
}

/* Compiles mod as an import and compares every model. */
static void check_module(const catalog_module *mod) {
  if (!is_ident(mod->name) || mod->n < 1) abort();
  size_t n = strlen(tmpdir) + strlen(mod->name) + 16;
  char *path = malloc(n), *root = malloc(strlen(tmpdir) + 32);
  if (!path || !root) abort();
  snprintf(path, n, "%s/%s.lane", tmpdir, mod->name);
  sprintf(root, "%s/root-policy.lane", tmpdir);   /* '-' is in no module name */
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(mod->text, 1, mod->len, f) != mod->len || fclose(f) != 0) abort();
  char *text = malloc(2 * strlen(mod->name) + strlen(mod->v[0].ident) + 64);
  if (!text) abort();
  sprintf(text, "import \"%s\"\nroute r { otherwise -> %s.%s }\n", mod->name, mod->name,
          mod->v[0].ident);
  lanec_result res;
  if (lanec_compile(root, text, NULL, &res) != LANEC_OK) {
    lanec_print_diags(&res, stderr);
    fprintf(stderr, "the module of %s does not compile:\n%.*s\n", mod->name, (int)mod->len,
            mod->text);
    abort();
  }
  sema_unit *up = res.unit;
  lane_program *p = res.prog;
  if (up->nmodels != mod->n) {
    fprintf(stderr, "%d models compiled, %d imported\n", up->nmodels, mod->n);
    abort();
  }
  for (int i = 0; i < mod->n; i++) {
    check_model(up, &mod->v[i]);
    if (!is_ident(mod->v[i].ident)) abort();
  }
  (void)p;   /* loaded and verified by lanec_compile */
  lanec_result_free(&res);
  unlink(path);
  free(text);
  free(root);
  free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!tmpdir) setup();
  if (size > 1 << 20) return 0;
  catalog_error e;
  json_t *root = catalog_parse((const char *)data, size, &e);
  if (!root) {
    size_t n = strlen(e.text);
    if (n == 0 || memchr(e.text, '\n', n)) abort();
    return 0;
  }
  catalog_set s;
  if (json_is_object(root)) {
    if (catalog_collect(root, NULL, 0, &s, NULL) != 0) abort();
    catalog_module *mods = NULL;
    int nmods = 0;
    char *msg = NULL;
    size_t nmsg = 0;
    FILE *err = open_memstream(&msg, &nmsg);
    if (!err) abort();
    int rc = catalog_render(&s, "fuzz.json", &mods, &nmods, err);
    fclose(err);
    if (rc != 0) check_message(msg, nmsg);
    int total = 0;
    for (int i = 0; i < nmods; i++) {
      check_module(&mods[i]);
      total += mods[i].n;
    }
    if (rc == 0 && total != s.n) abort();
    catalog_modules_free(mods, nmods);
    catalog_set_free(&s);
    free(msg);
  }
  json_decref(root);
  return 0;
}

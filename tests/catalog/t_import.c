/*
 * t_import.c -- `lane catalog import` (catalog_import), and what the
 * generated modules do once compiled: the import must be safe against a
 * hostile catalog, include the Responses-API models with a capability a
 * policy can test, give names that do not depend on key order, read the
 * catalog within its limits and keep every price to the bit.
 *
 * Run by tests/catalog/fetch.sh, which builds it against liblanec.a and
 * sets:
 *   LANE_TEST_DIR       an empty scratch directory
 *   LANE_TEST_FIXTURES  tests/catalog
 *
 * Bug tests use catalog_import and the compiler only (the interfaces that
 * existed before issues 12 and 13), so they can be built against the old
 * importer to see them fail.
 */
#include "catalog.h"
#include "sema.h"
#include "tap.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

static const char *dir, *fixtures;

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

static void spit(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) bail("cannot write %s: %s", path, strerror(errno));
  fwrite(s, 1, n, f);
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

/* ---- running the import ---- */

typedef struct run { int rc; char *out, *err; size_t nout, nerr; double secs; } run;

static run import(const char *json, const char *out_dir, const char *const *prov, int np) {
  run r;
  FILE *out = open_memstream(&r.out, &r.nout), *err = open_memstream(&r.err, &r.nerr);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r.rc = catalog_import(json, out_dir, prov, np, out, err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  fclose(out);
  fclose(err);
  r.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return r;
}

static void run_free(run *r) { free(r->out); free(r->err); }

/* A fixture imported into a fresh directory DIR/name. */
static char *import_fixture(const char *fixture, const char *name, const char *const *prov,
                            int np, run *r) {
  char *json = fmt("%s/%s", fixtures, fixture), *out = fmt("%s/%s", dir, name);
  *r = import(json, out, prov, np);
  free(json);
  return out;
}

/* ---- compiling what was imported ---- */

typedef struct built {
  lanec_result  res;     /* the compile (lanec.h) */
  sema_unit     u;       /* its checked unit (models with their values) */
  lane_program *p;       /* the verified program, or NULL */
  lane_runtime *rt;      /* a runtime for it */
  char         *diags;   /* rendered diagnostics */
  size_t        ndiags;  /* their length */
} built;

/* Writes policy text to DIR/SUB/NAME.lane (beside the imported modules)
 * and compiles it; b->p is NULL when it does not compile. */
static void build(built *b, const char *sub, const char *name, const char *policy, int no_opt) {
  char *path = fmt("%s/%s.lane", sub, name);
  spit(path, policy, strlen(policy));
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.no_opt = no_opt;
  memset(b, 0, sizeof *b);
  lanec_compile(path, NULL, &o, &b->res);
  if (b->res.unit) b->u = *b->res.unit;   /* a view: res owns what it points to */
  FILE *d = open_memstream(&b->diags, &b->ndiags);
  lanec_print_diags(&b->res, d);
  fclose(d);
  lane_error err;
  if ((b->p = b->res.prog) != NULL) b->rt = lane_runtime_new(b->p, &err);
  b->res.prog = NULL;
  free(path);
}

static void built_free(built *b) {
  lane_runtime_free(b->rt);
  lane_program_free(b->p);
  lanec_result_free(&b->res);
  free(b->diags);
}

/* The primary of route r for a request; "" when there is no decision. */
static const char *decide(const built *b, const char *api, long long in, long long out) {
  if (!b->rt) return "";
  lane_request r;
  lane_decision d;
  lane_request_init(&r, b->p);
  lane_set_int(&r, lane_field(b->p, "input_tokens"), in);
  lane_set_int(&r, lane_field(b->p, "max_output_tokens"), out);
  if (api) lane_set_str(&r, lane_field(b->p, "api"), api, strlen(api));
  if (lane_decide(b->rt, "r", &r, &d) != LANE_OK) return "";
  return lane_model_name(b->p, d.candidates[0]);
}

static const sema_model *model(const built *b, const char *name) {
  for (int i = 0; i < b->u.nmodels; i++)
    if (!strcmp(b->u.models[i].name, name)) return &b->u.models[i];
  return NULL;
}

static int has_provider(const built *b, const char *provider) {
  for (int i = 0; i < b->u.nmodels; i++)
    if (!strcmp(b->u.models[i].provider, provider)) return 1;
  return 0;
}

/* ---- issue 13: nothing from the catalog reaches a module unchecked ---- */

static void test_injection(void) {
  run r;
  char *out = import_fixture("inject_date.json", "date", NULL, 0, &r);
  ok(r.rc == 0 && strstr(r.out, "skip gpt-4o: deprecation_date \"2026-01-01\"\\x0A}") &&
     strstr(r.out, "is not a date YYYY-MM-DD"),
     "a deprecation_date holding source text: the entry is skipped, with the reason");
  if (r.rc) diag("err: %s", r.err);
  built b;
  build(&b, out, "pick",
        "import \"openai\"\n"
        "model openai.gpt_4o_mini { quality 0.5 }\n"
        "route r { otherwise -> best(models) }\n", 0);
  ok(b.p != NULL, "the generated module compiles");
  if (!b.p) diag("%s", b.diags);
  ok(!has_provider(&b, "attacker") && b.u.nmodels == 1,
     "no model from provider \"attacker\": exactly the one good entry (%d models)", b.u.nmodels);
  is_str(decide(&b, NULL, 1000, 100), "openai.gpt_4o_mini", "best(models) picks the real model");
  built_free(&b);
  run_free(&r);
  free(out);

  out = import_fixture("inject_key.json", "key", NULL, 0, &r);
  ok(r.rc == 0 && strstr(r.out, "imported 6 models") &&
     strstr(r.out, "skip empty-provider: litellm_provider \"\" names no module") &&
     strstr(r.out, "skip dashes-only: litellm_provider \"--\" names no module"),
     "keys with newlines, quotes, backslashes; odd providers: imported or skipped with reasons");
  if (!strstr(r.out, "imported 6 models")) diag("out: %s\nerr: %s", r.out, r.err);
  build(&b, out, "all",
        "import \"openai\"\nimport \"import_\"\nimport \"m_9lives\"\nimport \"we_ird\"\n"
        "route r { otherwise -> cheapest(models) }\n", 0);
  ok(b.p != NULL, "every generated module compiles (a keyword and a digit as provider too)");
  if (!b.p) diag("%s", b.diags);
  ok(b.u.nmodels == 6 && !has_provider(&b, "attacker"), "6 models, none injected (%d)",
     b.u.nmodels);
  const sema_model *m =
      model(&b, "openai.gpt_4o_model_injected_by_key_provider_attacker_input_0_mtok_output_0_mtok_quality_1");
  ok(m && !strcmp(m->id, "gpt-4o\nmodel injected_by_key {\n  provider \"attacker\"  input "
                          "$0/Mtok  output $0/Mtok  quality 1\n}\n#"),
     "a key with newlines: its id arrives byte for byte");
  m = model(&b, "openai.quote_and_backslash");
  ok(m && !strcmp(m->id, "quote\"and\\backslash"), "quotes and backslashes arrive escaped");
  m = model(&b, "openai.tab_here_and");
  ok(m && !strcmp(m->id, "tab\there\xe2\x80\xa8" "and\xc3\xa9"), "a tab and UTF-8 arrive too");
  ok(model(&b, "import_.import_") && model(&b, "m_9lives.m_9lives") && model(&b, "we_ird.weird_x"),
     "provider names become identifiers: import_, m_9lives, we_ird");
  char *text = fmt("%s/openai.lane", out), *src = slurp(text, NULL);
  ok(src && strstr(src, "\n# gpt-4o\\x0Amodel injected_by_key {\\x0A") &&
     !strstr(src, "\nmodel injected_by_key"), "the key in the comment above is escaped too");
  free(src);
  free(text);
  built_free(&b);
  run_free(&r);
  free(out);
}

/* Values that did not survive the old writer: prices below 1e-18 (24
 * decimals of $/Mtok), -0.0, a huge tier threshold, long names. */
static void test_values(void) {
  char *json = fmt("%s/values.json", dir), *out = fmt("%s/values", dir);
  char *name = malloc(220);
  memset(name, 'a', 200);
  name[200] = 0;
  char *text = fmt(
      "{\"tiny\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
      "\"input_cost_per_token\": 1.5e-300, \"output_cost_per_token\": 4.9e-324},\n"
      " \"negzero\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
      "\"input_cost_per_token\": -0.0, \"output_cost_per_token\": 1},\n"
      " \"odd\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
      "\"input_cost_per_token\": 0.30000000000000004e-6, \"output_cost_per_token\": 1.2345678901234567e-7},\n"
      " \"hugetier\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
      "\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06, "
      "\"input_cost_per_token_above_99999999999999999999k_tokens\": 2e-06},\n"
      " \"%s\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
      "\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06}}\n", name);
  spit(json, text, strlen(text));
  run r = import(json, out, NULL, 0);
  ok(r.rc == 0 && strstr(r.out, "skip hugetier: input_cost_per_token_above_99999999999999999999k_tokens: "
                                "the threshold is not 1 to 10^12-1 thousand tokens"),
     "a tier threshold that overflows: skipped, with the reason");
  char *want = fmt("skip %s: the identifier would be 200 bytes long, the limit is 128", name);
  ok(strstr(r.out, want) != NULL, "an identifier over 128 bytes: skipped, with the reason");
  if (!strstr(r.out, want)) diag("out: %s", r.out);
  free(want);
  built b;
  build(&b, out, "p", "import \"openai\"\nroute r { otherwise -> cheapest(models) }\n", 0);
  ok(b.p != NULL, "prices at the edges of a double compile");
  if (!b.p) diag("%s", b.diags);
  const sema_model *t = model(&b, "openai.tiny"), *z = model(&b, "openai.negzero"),
                   *o = model(&b, "openai.odd");
  ok(t && t->input == 1.5e-300 && t->output == 4.9e-324, "1.5e-300 and the least subnormal, exactly");
  ok(z && z->input == 0 && !signbit(z->input) && z->output == 1, "-0.0 is $0, and $1/token stays");
  ok(o && o->input == 0.30000000000000004e-6 && o->output == 1.2345678901234567e-7,
     "17-digit prices, exactly");
  built_free(&b);
  run_free(&r);
  free(text);
  free(name);
  free(json);
  free(out);
}

/* ---- issue 12: Responses-API models ---- */

static void test_responses(void) {
  const char *prov[] = {"openai", "azure", "deepseek"};
  run r;
  char *out = import_fixture("import.json", "responses", prov, 3, &r);
  ok(r.rc == 0 && !strstr(r.out, "skip gpt-5-pro") && !strstr(r.out, "skip o3-pro") &&
     !strstr(r.out, "skip azure/gpt-5-pro"), "mode responses is imported (gpt-5-pro, o3-pro, azure)");
  if (r.rc) diag("err: %s", r.err);
  built b;
  build(&b, out, "caps",
        "import \"openai\"\nimport \"azure\"\nroute r { otherwise -> cheapest(models) }\n", 0);
  ok(b.p != NULL, "openai and azure modules compile");
  if (!b.p) diag("%s", b.diags);
  int bit = sema_cap_find(&b.u, "responses_only");
  const sema_model *pro = model(&b, "openai.gpt_5_pro"), *o3 = model(&b, "openai.o3_pro"),
                   *codex = model(&b, "openai.codex_mini_latest"),
                   *o1 = model(&b, "openai.o1_pro"), *az = model(&b, "azure.gpt_5_pro"),
                   *g4 = model(&b, "openai.gpt_4o");
  ok(bit >= 0 && pro && o3 && codex && o1 && az && g4, "the five responses models are there");
  ok(bit >= 0 && pro && o3 && codex && o1 && az && g4 && (pro->caps >> bit & 1) &&
     (o3->caps >> bit & 1) && (codex->caps >> bit & 1) && (o1->caps >> bit & 1) &&
     (az->caps >> bit & 1) && !(g4->caps >> bit & 1),
     "they carry responses_only; gpt-4o (mode chat) does not");
  ok(pro && pro->input == 1.5e-05 && pro->output == 0.00012 && pro->context == 400000,
     "with their prices and limits");
  built_free(&b);

  /* A Chat-Completions-only policy excludes them; the condition is
   * decided per model at compile time, or by the VM when it reads the
   * request, optimised and at -O0. */
  static const char pol[] =
      "import \"openai\"\n"
      "request { api: string }\n"
      "model openai.gpt_5_pro { quality 0.99 }\n"
      "model openai.o1_pro { quality 0.98 }\n"
      "model openai.gpt_4o { quality 0.9 }\n"
      "pool rated = models where quality > 0\n"
      "route r {\n"
      "  require !responses_only || req.api == \"responses\"\n"
      "  otherwise -> best(rated)\n"
      "}\n"
      "route chat_only {\n"
      "  require !responses_only\n"
      "  otherwise -> best(rated)\n"
      "}\n";
  for (int no_opt = 0; no_opt <= 1; no_opt++) {
    build(&b, out, no_opt ? "chat_o0" : "chat", pol, no_opt);
    ok(b.p != NULL, "require !responses_only type-checks and compiles%s", no_opt ? " (-O0)" : "");
    if (!b.p) diag("%s", b.diags);
    is_str(decide(&b, "chat", 1000, 100), "openai.gpt_4o",
           "a chat request skips gpt-5-pro and o1-pro%s", no_opt ? " (-O0)" : "");
    is_str(decide(&b, "responses", 1000, 100), "openai.gpt_5_pro",
           "a responses request may have them%s", no_opt ? " (-O0)" : "");
    built_free(&b);
  }
  /* known to every program, even one that imports no such model */
  build(&b, out, "nocatalog",
        "model a { input $1/Mtok output $1/Mtok }\n"
        "route r { require !responses_only\n otherwise -> a }\n", 0);
  ok(b.p != NULL, "responses_only is a capability every program knows");
  if (!b.p) diag("%s", b.diags);
  built_free(&b);
  run_free(&r);
  free(out);
}

/* ---- issue 12: names that do not depend on key order ---- */

/* fixture's object with its keys in another order (a fixed shuffle). */
static void shuffled(const char *from, const char *to) {
  json_error_t e;
  json_t *src = json_load_file(from, 0, &e), *dst = json_object();
  const char *keys[64];
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(src, k, v) if (n < 64) keys[n++] = k;
  unsigned seed = 12345;
  for (size_t i = n; i > 1; i--) {
    seed = seed * 1103515245u + 12345u;
    size_t j = (seed >> 8) % i;
    const char *t = keys[i - 1];
    keys[i - 1] = keys[j];
    keys[j] = t;
  }
  for (size_t i = 0; i < n; i++) json_object_set(dst, keys[i], json_object_get(src, keys[i]));
  if (json_dump_file(dst, to, JSON_INDENT(1)) != 0) bail("cannot write %s", to);
  json_decref(src);
  json_decref(dst);
}

/* The report without its "wrote DIR/..." lines (the directories differ). */
static char *report_of(const char *out) {
  char *r = strdup(out ? out : ""), *w = r;
  for (const char *p = out ? out : ""; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
    if (strncmp(p, "wrote ", 6) != 0) { memmove(w, p, len); w += len; }
    p += len;
  }
  *w = 0;
  return r;
}

/* The module text after its header (which names the date). */
static char *body_of(const char *path) {
  char *s = slurp(path, NULL);
  char *m = s ? strstr(s, "\n\n# ") : NULL;
  char *r = m ? strdup(m) : NULL;
  free(s);
  return r;
}

static void test_names(void) {
  run r, r2;
  char *a = import_fixture("import.json", "order_a", NULL, 0, &r);
  char *json = fmt("%s/import.json", fixtures), *sdir = fmt("%s/shuffled", dir);
  char *sjson = fmt("%s/import.json", sdir);
  mkdir(sdir, 0777);
  shuffled(json, sjson);
  char *b = fmt("%s/order_b", dir);
  r2 = import(sjson, b, NULL, 0);
  const char *mods[] = {"openai", "azure", "deepseek", "gemini", "anthropic", "mistral",
                        "vercel_ai_gateway"};
  char *ra = report_of(r.out), *rb = report_of(r2.out);
  int same = r.rc == 0 && r2.rc == 0 && !strcmp(ra, rb);
  if (strcmp(ra, rb)) diag("reports differ:\n%s---\n%s", ra, rb);
  free(ra);
  free(rb);
  for (size_t i = 0; i < sizeof mods / sizeof *mods; i++) {
    char *pa = fmt("%s/%s.lane", a, mods[i]), *pb = fmt("%s/%s.lane", b, mods[i]);
    char *ta = body_of(pa), *tb = body_of(pb);
    if (!ta || !tb || strcmp(ta, tb)) { same = 0; diag("%s differs", mods[i]); }
    free(ta);
    free(tb);
    free(pa);
    free(pb);
  }
  ok(same, "the catalog with its keys shuffled: the same modules, byte for byte, the same report");
  ok(strstr(r.out, "collision: deepseek-chat and deepseek/deepseek-chat both map to "
                   "deepseek.deepseek_chat; deepseek/deepseek-chat is deepseek.deepseek_deepseek_chat\n") &&
     strstr(r.out, "gemini/gemini-exp-1206 is gemini.gemini_gemini_exp_1206\n"),
     "the key without a prefix keeps the name; the prefixed key takes its whole key");
  /* two keys that differ in punctuation only: a hash of each key */
  uint32_t h1 = 2166136261u, h2 = 2166136261u;
  for (const char *p = "vercel_ai_gateway/anthropic/claude-3-5-sonnet"; *p; p++)
    h1 = (h1 ^ (unsigned char)*p) * 16777619u;
  for (const char *p = "vercel_ai_gateway/anthropic/claude-3.5-sonnet"; *p; p++)
    h2 = (h2 ^ (unsigned char)*p) * 16777619u;
  char *w1 = fmt("is vercel_ai_gateway.anthropic_claude_3_5_sonnet_h%08x\n", (unsigned)h1);
  char *w2 = fmt("is vercel_ai_gateway.anthropic_claude_3_5_sonnet_h%08x\n", (unsigned)h2);
  ok(strstr(r.out, w1) && strstr(r.out, w2),
     "keys that differ only in punctuation get _h + FNV-1a of the key");
  free(w1);
  free(w2);
  run_free(&r);
  run_free(&r2);

  /* Removing a key that sorted first renamed the others (x_y_2 -> x_y). */
  static const char three[] =
      "{\"p/x-y\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 1e-06, "
      "\"output_cost_per_token\": 1e-06},\n"
      " \"x-y\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 2e-06, "
      "\"output_cost_per_token\": 2e-06},\n"
      " \"x.y\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 3e-06, "
      "\"output_cost_per_token\": 3e-06},\n"
      " \"q\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 4e-06, "
      "\"output_cost_per_token\": 4e-06}}\n";
  static const char two[] =
      "{\"x-y\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 2e-06, "
      "\"output_cost_per_token\": 2e-06},\n"
      " \"x.y\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 3e-06, "
      "\"output_cost_per_token\": 3e-06}}\n";
  char *j3 = fmt("%s/three.json", dir), *j2 = fmt("%s/two.json", dir);
  char *d3 = fmt("%s/three", dir), *d2 = fmt("%s/two", dir);
  spit(j3, three, strlen(three));
  spit(j2, two, strlen(two));
  r = import(j3, d3, NULL, 0);
  r2 = import(j2, d2, NULL, 0);
  /* each model's name, found by its price */
  built b3, b2;
  build(&b3, d3, "pol", "import \"p\"\nroute r { otherwise -> cheapest(models) }\n", 0);
  build(&b2, d2, "pol", "import \"p\"\nroute r { otherwise -> cheapest(models) }\n", 0);
  const char *n3[2] = {NULL, NULL}, *n2[2] = {NULL, NULL};
  for (int i = 0; i < b3.u.nmodels; i++) {
    if (b3.u.models[i].input == 2e-06) n3[0] = b3.u.models[i].name;
    if (b3.u.models[i].input == 3e-06) n3[1] = b3.u.models[i].name;
  }
  for (int i = 0; i < b2.u.nmodels; i++) {
    if (b2.u.models[i].input == 2e-06) n2[0] = b2.u.models[i].name;
    if (b2.u.models[i].input == 3e-06) n2[1] = b2.u.models[i].name;
  }
  ok(b3.p && b2.p && n3[0] && n2[0] && n3[1] && n2[1] && !strcmp(n3[0], n2[0]) &&
     !strcmp(n3[1], n2[1]),
     "x-y and x.y keep their names when p/x-y goes away (%s, %s / %s, %s)",
     n3[0] ? n3[0] : "?", n3[1] ? n3[1] : "?", n2[0] ? n2[0] : "?", n2[1] ? n2[1] : "?");
  ok(model(&b3, "p.p_x_y") && model(&b3, "p.q"), "p/x-y is p.p_x_y; an unrelated key keeps its name");
  built_free(&b3);
  built_free(&b2);
  run_free(&r);
  run_free(&r2);
  free(j3);
  free(j2);
  free(d3);
  free(d2);
  free(a);
  free(b);
  free(json);
  free(sdir);
  free(sjson);
}

/* ---- issue 13: bounded reading ---- */

static void hostile(const char *name, const char *text, size_t n, const char *want) {
  char *json = fmt("%s/hostile_%s.json", dir, name), *out = fmt("%s/hostile_%s", dir, name);
  spit(json, text, n);
  run r = import(json, out, NULL, 0);
  struct stat st;
  ok(r.rc == 2 && strstr(r.err, want) && r.nout == 0 && stat(out, &st) != 0 && r.secs < 5,
     "%s: exit 2, \"%s\", nothing written (%.2f s)", name, want, r.secs);
  if (r.rc != 2 || !strstr(r.err, want)) diag("rc %d err '%s'", r.rc, r.err);
  run_free(&r);
  free(json);
  free(out);
}

static void test_limits(void) {
  /* 250,000 empty objects in one priced entry (a 63 MB body of them took
   * 4.77 GB before) */
  size_t n = 0, cap = 4 << 20;
  char *b = malloc(cap);
  n += (size_t)sprintf(b, "{\"x\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\", "
                          "\"input_cost_per_token\": 1, \"output_cost_per_token\": 1, \"j\": [");
  for (int i = 0; i < 250000; i++) { memcpy(b + n, "{},", 3); n += 3; }
  memcpy(b + n - 1, "]}}", 3);
  n += 2;
  hostile("objects", b, n, "the catalog has more than 200000 objects and arrays, the limit "
                           "(CATALOG_MAX_CONTAINERS)");
  n = (size_t)sprintf(b, "{\"x\": [");
  for (int i = 0; i < 1000001; i++) { memcpy(b + n, "0,", 2); n += 2; }
  memcpy(b + n - 1, "]}", 2);
  n += 1;
  hostile("values", b, n, "the catalog has more than 1000000 JSON values, the limit "
                          "(CATALOG_MAX_VALUES)");
  n = (size_t)sprintf(b, "{\"x\": ");
  for (int i = 0; i < 40; i++) b[n++] = '[';
  for (int i = 0; i < 40; i++) b[n++] = ']';
  b[n++] = '}';
  hostile("deep", b, n, "nests objects and arrays deeper than 32 levels, the limit "
                        "(CATALOG_MAX_DEPTH)");
  static const char dup[] =
      "{\"a\": {\"litellm_provider\": \"p\", \"mode\": \"chat\", \"input_cost_per_token\": 1, "
      "\"output_cost_per_token\": 1},\n \"a\": {\"litellm_provider\": \"evil\"}}\n";
  hostile("duplicate", dup, sizeof dup - 1, "duplicate object key");
  static const char bad[] = "{\"a\": {\"mode\": \"chat\",}}\n";
  hostile("syntax", bad, sizeof bad - 1, "hostile_syntax.json:1:23: invalid JSON:");
  hostile("array", "[1, 2]\n", 7, "a catalog is a JSON object of model entries");
  free(b);

  /* the counts are exact: 200,000 objects and arrays pass, 200,001 do not */
  catalog_error e;
  cap = 1 << 20;
  b = malloc(cap);
  n = 0;
  b[n++] = '[';
  for (int i = 0; i < 199999; i++) { memcpy(b + n, "[],", 3); n += 3; }
  b[n - 1] = ']';
  json_t *j = catalog_parse(b, n, &e);
  ok(j != NULL, "200,000 arrays: parsed (the limit is inclusive)");
  json_decref(j);
  b[n - 1] = ',';
  memcpy(b + n, "[]]", 3);
  j = catalog_parse(b, n + 3, &e);
  ok(!j && e.kind == CATALOG_ELIMIT, "200,001: refused");
  json_decref(j);
  static const char keys[] = "{\"a\": 1, \"b\": {\"c\": \"x,{[\\\"]}\"}, \"d\": [true, null]}";
  j = catalog_parse(keys, sizeof keys - 1, &e);
  ok(j && json_object_size(j) == 3, "keys, strings holding brackets and escapes: parsed");
  json_decref(j);
  /* keys are not values: an object of 999,999 keys is 1,000,000 values */
  free(b);
  b = malloc(16 << 20);
  n = 0;
  b[n++] = '{';
  for (int i = 0; i < 999999; i++) n += (size_t)sprintf(b + n, "%s\n \"k%d\" : %d", i ? "," : "", i, i & 7);
  b[n++] = '}';
  j = catalog_parse(b, n, &e);
  ok(j && json_object_size(j) == 999999, "999,999 keys and values, spaced out: 1,000,000 values, parsed");
  if (!j) diag("%s", e.text);
  json_decref(j);
  memcpy(b + n - 1, ", \"x\": 0}", 10);
  j = catalog_parse(b, n + 8, &e);
  ok(!j && e.kind == CATALOG_ELIMIT, "one more: refused");
  json_decref(j);
  free(b);
}

/* ---- --provider ---- */

static void test_providers(void) {
  const char *prov[] = {"deepseek", "nosuch"};
  run r;
  char *out = import_fixture("import.json", "prov", prov, 2, &r);
  struct stat st;
  ok(r.rc == 2 && strstr(r.err, "--provider nosuch:") && strstr(r.err, "has no chat model of that provider") &&
     stat(out, &st) != 0, "a --provider with no model: exit 2, said, nothing written");
  run_free(&r);
  free(out);
  const char *raw[] = {"vertex_ai-language-models"};
  out = import_fixture("import.json", "prov2", raw, 1, &r);
  ok(r.rc == 2 && strstr(r.err, "--provider vertex_ai:"),
     "a litellm_provider name means its module (vertex_ai)");
  run_free(&r);
  free(out);
}

int main(void) {
  dir = getenv("LANE_TEST_DIR");
  fixtures = getenv("LANE_TEST_FIXTURES");
  if (!dir || !fixtures) bail("set LANE_TEST_DIR and LANE_TEST_FIXTURES");
  test_injection();
  test_values();
  test_responses();
  test_names();
  test_limits();
  test_providers();
  return done_testing();
}

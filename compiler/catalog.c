/*
 * catalog.c -- `lane catalog import`: a LiteLLM price catalog
 * (model_prices_and_context_window.json) becomes one lane module per
 * provider, each declaring that provider's chat models.
 *
 * Every entry is either imported or skipped with a one-line reason; the
 * report ends with the counts. Output is deterministic: models sorted by
 * catalog key, prices written in the shortest decimal that the lexer reads
 * back to the catalog's exact double.
 */
#define _XOPEN_SOURCE 700   /* strdup, mkdir */
#include "catalog.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* One imported model. */
typedef struct cat_model {
  const char *key;          /* catalog key, borrowed from the JSON */
  char       *provider;     /* module name: "anthropic", "vertex_ai" */
  char       *id;           /* provider's model id */
  char       *ident;        /* lane identifier within the module */
  json_t     *e;            /* the entry */
} cat_model;

/* Skip reasons and their counts, for the summary. */
typedef struct cat_reasons {
  char *why[64];            /* reason kinds, e.g. "mode image_generation" */
  int   count[64];
  int   n;
} cat_reasons;

static void count_reason(cat_reasons *r, const char *why) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->why[i], why)) { r->count[i]++; return; }
  if (r->n == 64) { r->count[63]++; return; }
  r->why[r->n] = strdup(why);
  r->count[r->n++] = 1;
}

/* ---- reading values ---- */

/* A price: a JSON number (integer zeros allowed), finite, 0..$1 per token. */
static int get_price(json_t *e, const char *k, double *out, char *why, size_t n) {
  json_t *v = json_object_get(e, k);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_number(v)) { snprintf(why, n, "%s is not a number", k); return -1; }
  double d = json_number_value(v);
  if (!isfinite(d) || d < 0 || d > 1) {
    snprintf(why, n, "%s %.17g is not a price (0 to $1 per token)", k, d);
    return -1;
  }
  *out = d;
  return 0;
}

/* A token count: an integer or an integral float (2000000.0), >= 0. */
static int get_tokens(json_t *e, const char *k, int64_t *out, char *why, size_t n) {
  json_t *v = json_object_get(e, k);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  double d = json_is_integer(v) ? (double)json_integer_value(v)
           : json_is_real(v) ? json_real_value(v) : -1;
  if (!(d >= 0 && d <= 1e15 && d == floor(d))) {
    snprintf(why, n, "%s is not a whole token count", k);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}

static int get_flag(json_t *e, const char *k) { return json_is_true(json_object_get(e, k)); }

/* ---- names ---- */

/* The module a litellm_provider belongs to: vertex_ai-language-models ->
 * vertex_ai, bedrock_converse -> bedrock, cohere_chat -> cohere; others as
 * they are. */
static char *module_of(const char *lp) {
  size_t n = strcspn(lp, "-");
  if (!strcmp(lp, "bedrock_converse")) n = strlen("bedrock");
  if (!strcmp(lp, "cohere_chat")) n = strlen("cohere");
  char *s = malloc(n + 1);
  if (!s) return NULL;
  for (size_t i = 0; i < n; i++) {
    char c = lp[i];
    s[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a')
         : ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '_';
  }
  s[n] = 0;
  return s;
}

/* The provider's id: the key without a leading "provider/" segment. */
static char *model_id(const char *key, const char *lp, const char *module) {
  const char *slash = strchr(key, '/');
  if (slash) {
    size_t n = (size_t)(slash - key);
    if ((strlen(lp) == n && !strncmp(key, lp, n)) ||
        (strlen(module) == n && !strncmp(key, module, n)))
      key = slash + 1;
  }
  return strdup(key);
}

static int is_keyword(const char *s) {
  static const char *const kw[] = {
    "import", "model", "request", "pool", "budget", "route", "test", "when", "otherwise",
    "require", "fallbacks", "shadow", "then", "cheapest", "fastest", "best", "split", "by",
    "models", "where", "caps", "req", "expect", "true", "false", "null", "in"
  };
  for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
    if (!strcmp(s, kw[i])) return 1;
  return 0;
}

/* Lower case; every run of other characters becomes one '_'; a leading
 * digit gets "m_"; a keyword gets a trailing '_'. */
static char *identifier(const char *id) {
  size_t n = strlen(id);
  char *s = malloc(n + 4), *o = s;
  if (!s) return NULL;
  if (*id >= '0' && *id <= '9') { *o++ = 'm'; *o++ = '_'; }
  for (; *id; id++) {
    char c = *id;
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) *o++ = c;
    else if (o > s && o[-1] != '_') *o++ = '_';
  }
  while (o > s && o[-1] == '_') o--;
  if (o == s) *o++ = 'm';
  *o = 0;
  if (is_keyword(s)) { *o++ = '_'; *o = 0; }
  return s;
}

/* ---- writing ---- */

/* The shortest plain decimal X (no exponent) for which the lexer's reading
 * of `$X/Mtok`, strtod("Xe-6"), is exactly p. */
static void write_price(FILE *f, const char *name, double p) {
  char buf[64], probe[80];
  for (int decimals = 0; decimals <= 24; decimals++) {
    snprintf(buf, sizeof buf, "%.*f", decimals, p * 1e6);
    snprintf(probe, sizeof probe, "%se-6", buf);
    if (strtod(probe, NULL) == p) break;
  }
  fprintf(f, "  %s $%s/Mtok", name, buf);
}

static void write_tokens(FILE *f, const char *name, int64_t t) {
  if (t > 0 && t % 1000000 == 0) fprintf(f, "  %s %lldM", name, (long long)(t / 1000000));
  else if (t > 0 && t % 1000 == 0) fprintf(f, "  %s %lldk", name, (long long)(t / 1000));
  else fprintf(f, "  %s %lld", name, (long long)t);
}

/* The long-context tier: the lowest N with input_cost_per_token_above_Nk_tokens. */
static long long long_tier(json_t *e) {
  const char *k;
  json_t *v;
  long long best = 0;
  json_object_foreach(e, k, v) {
    char tail[16];
    long long n;
    if (sscanf(k, "input_cost_per_token_above_%lldk_token%15s", &n, tail) == 2 &&
        !strcmp(tail, "s") && n > 0 && (!best || n < best))
      best = n;
  }
  return best * 1000;
}

/* Writes one model block; returns 0, or -1 with why if a value is bad. */
static int write_model(FILE *f, const cat_model *m, char *why, size_t n) {
  json_t *e = m->e;
  double in, out, cached, cwrite, reason, lin = 0, lout = 0, lcached = 0;
  int64_t ctx, maxout;
  long long above = long_tier(e);
  if (get_price(e, "input_cost_per_token", &in, why, n) ||
      get_price(e, "output_cost_per_token", &out, why, n) ||
      get_price(e, "cache_read_input_token_cost", &cached, why, n) ||
      get_price(e, "cache_creation_input_token_cost", &cwrite, why, n) ||
      get_price(e, "output_cost_per_reasoning_token", &reason, why, n) ||
      get_tokens(e, "max_input_tokens", &ctx, why, n) ||
      get_tokens(e, "max_output_tokens", &maxout, why, n))
    return -1;
  if (above) {
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof k1, "input_cost_per_token_above_%lldk_tokens", above / 1000);
    snprintf(k2, sizeof k2, "output_cost_per_token_above_%lldk_tokens", above / 1000);
    snprintf(k3, sizeof k3, "cache_read_input_token_cost_above_%lldk_tokens", above / 1000);
    if (get_price(e, k1, &lin, why, n) || get_price(e, k2, &lout, why, n) ||
        get_price(e, k3, &lcached, why, n))
      return -1;
  }
  json_t *dep = json_object_get(e, "deprecation_date");
  fprintf(f, "\n# %s\nmodel %s {\n  provider \"%s\"  name \"", m->key, m->ident, m->provider);
  for (const char *c = m->id; *c; c++)   /* ids are plain, but escape to be safe */
    fprintf(f, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
  fputs("\"\n", f);
  write_price(f, "input", in);
  write_price(f, "output", out);
  if (cached > 0) write_price(f, "cached_input", cached);
  if (cwrite > 0) write_price(f, "cache_write", cwrite);
  if (reason > 0) write_price(f, "reasoning_output", reason);
  fputc('\n', f);
  if (ctx || maxout) {
    if (ctx) write_tokens(f, "context", ctx);
    if (maxout) write_tokens(f, "max_output", maxout);
    fputc('\n', f);
  }
  if (above) {
    write_tokens(f, "long_above", above);
    if (lin > 0) write_price(f, "long_input", lin);
    if (lout > 0) write_price(f, "long_output", lout);
    if (lcached > 0) write_price(f, "long_cached_input", lcached);
    fputc('\n', f);
  }
  static const struct { const char *key, *cap; } caps[] = {
    {"supports_vision", "vision"}, {"supports_function_calling", "tools"},
    {"supports_response_schema", "json"}, {"supports_reasoning", "reasoning"},
    {"supports_prompt_caching", "caching"}, {"supports_audio_input", "audio"},
    {"supports_pdf_input", "pdf"},
  };
  int ncaps = 0;
  for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
    if (get_flag(e, caps[i].key)) fprintf(f, "%s%s", ncaps++ ? ", " : "  caps ", caps[i].cap);
  if (ncaps) fputc('\n', f);
  if (json_is_string(dep)) fprintf(f, "  deprecated \"%s\"\n", json_string_value(dep));
  fputs("}\n", f);
  return 0;
}

/* ---- the import ---- */

static int by_key(const void *a, const void *b) {
  const cat_model *x = a, *y = b;
  int c = strcmp(x->provider, y->provider);
  return c ? c : strcmp(x->key, y->key);
}

static int wanted(const char *module, const char *const *providers, int n) {
  if (n == 0) return 1;
  for (int i = 0; i < n; i++)
    if (!strcmp(providers[i], module)) return 1;
  return 0;
}

/* Checks an entry; returns the reason it is skipped, or NULL. */
static const char *skip_reason(const char *key, json_t *e, char *why, size_t n) {
  if (!strcmp(key, "sample_spec") || !strcmp(key, "fallback_generalizations"))
    return "not a model";
  if (!json_is_object(e)) return "not an object";
  json_t *mode = json_object_get(e, "mode");
  if (!json_is_string(mode)) return "no mode";
  if (strcmp(json_string_value(mode), "chat")) {
    snprintf(why, n, "mode %s", json_string_value(mode));
    return why;
  }
  if (!json_is_string(json_object_get(e, "litellm_provider"))) return "no litellm_provider";
  if (!json_object_get(e, "input_cost_per_token") || !json_object_get(e, "output_cost_per_token"))
    return "no per-token prices";
  return NULL;
}

/* Whether an earlier model of v[i]'s module already has identifier s. */
static const cat_model *taken(const cat_model *v, int i, const char *s) {
  for (int j = 0; j < i; j++)
    if (!strcmp(v[j].provider, v[i].provider) && !strcmp(v[j].ident, s)) return &v[j];
  return NULL;
}

/* Gives each model a unique identifier within its module: the second key
 * that maps to `x` becomes `x_2`, and so on. Reports each renaming. */
static int name_models(cat_model *v, int n, FILE *out) {
  for (int i = 0; i < n; i++) {
    const cat_model *first = taken(v, i, v[i].ident);
    if (!first) continue;
    size_t len = strlen(v[i].ident) + 16;
    char *s = malloc(len);
    if (!s) return -1;
    for (int k = 2; snprintf(s, len, "%s_%d", v[i].ident, k), taken(v, i, s); k++) {}
    fprintf(out, "collision: %s and %s both map to %s.%s; %s is %s.%s\n", first->key,
            v[i].key, v[i].provider, v[i].ident, v[i].key, v[i].provider, s);
    free(v[i].ident);
    v[i].ident = s;
  }
  return 0;
}

static int write_module(const char *dir, const char *src, const cat_model *v, int n,
                        FILE *out, FILE *err, cat_reasons *bad, int *written) {
  char path[4096], tmp[4200], date[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%d", &tm);
  snprintf(path, sizeof path, "%s/%s.lane", dir, v[0].provider);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(err, "lane: cannot write '%s': %s\n", tmp, strerror(errno));
    return -1;
  }
  const char *base = strrchr(src, '/');
  fprintf(f, "# std/providers/%s -- %s chat models and their prices.\n#\n"
             "# Generated by `lane catalog import` on %s from %s, a catalog in\n"
             "# LiteLLM's model_prices_and_context_window.json format (BerriAI/litellm,\n"
             "# MIT). Do not edit: regenerate with `make stdlib`. Imported, each model\n"
             "# is named %s.<identifier>. Prices are US dollars per token; quality\n"
             "# and latency priors are the user's own and are not set here.\n",
          v[0].provider, v[0].provider, date, base ? base + 1 : src, v[0].provider);
  int k = 0;
  for (int i = 0; i < n; i++) {
    char why[256];
    if (write_model(f, &v[i], why, sizeof why) != 0) {
      fprintf(out, "skip %s: %s\n", v[i].key, why);
      count_reason(bad, "value out of range");
      continue;
    }
    k++;
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    fprintf(err, "lane: cannot write '%s': %s\n", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  *written += k;
  fprintf(out, "wrote %s: %d models\n", path, k);
  return 0;
}

int catalog_import(const char *json_path, const char *out_dir,
                   const char *const *providers, int nproviders, FILE *out, FILE *err) {
  json_error_t jerr;
  json_t *root = json_load_file(json_path, 0, &jerr);
  if (!root) {
    fprintf(err, "lane: %s:%d:%d: %s\n", json_path, jerr.line, jerr.column, jerr.text);
    return 2;
  }
  if (!json_is_object(root)) {
    fprintf(err, "lane: %s: a catalog is a JSON object of model entries\n", json_path);
    json_decref(root);
    return 2;
  }
  if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
    fprintf(err, "lane: cannot create '%s': %s\n", out_dir, strerror(errno));
    json_decref(root);
    return 2;
  }
  size_t cap = json_object_size(root) + 1;
  cat_model *v = calloc(cap, sizeof *v);
  cat_reasons reasons = {0};
  int n = 0, other = 0, rc = 0, written = 0, total = 0;
  const char *key;
  json_t *e;
  json_object_foreach(root, key, e) {
    char why[128];
    const char *skip = skip_reason(key, e, why, sizeof why);
    total++;
    if (skip) {
      fprintf(out, "skip %s: %s\n", key, skip);
      count_reason(&reasons, strncmp(skip, "mode ", 5) ? skip : "not a chat model");
      continue;
    }
    const char *lp = json_string_value(json_object_get(e, "litellm_provider"));
    char *module = module_of(lp);
    if (!module || !v) { rc = 2; free(module); break; }
    if (!wanted(module, providers, nproviders)) { free(module); other++; continue; }
    v[n].key = key;
    v[n].provider = module;
    v[n].id = model_id(key, lp, module);
    v[n].ident = v[n].id ? identifier(v[n].id) : NULL;
    v[n].e = e;
    if (!v[n].id || !v[n].ident) { rc = 2; n++; break; }
    n++;
  }
  if (rc == 0) {
    qsort(v, (size_t)n, sizeof *v, by_key);
    if (name_models(v, n, out) < 0) rc = 2;
  }
  for (int i = 0; i < n && rc == 0;) {
    int j = i;
    while (j < n && !strcmp(v[j].provider, v[i].provider)) j++;
    if (write_module(out_dir, json_path, v + i, j - i, out, err, &reasons, &written)) rc = 2;
    i = j;
  }
  if (rc == 0) {
    int skipped = 0;
    for (int i = 0; i < reasons.n; i++) skipped += reasons.count[i];
    fprintf(out, "%d entries: imported %d models", total, written);
    if (nproviders) fprintf(out, ", %d of other providers", other);
    fprintf(out, ", skipped %d", skipped);
    for (int i = 0; i < reasons.n; i++)
      fprintf(out, "%s%s %d", i ? ", " : " (", reasons.why[i], reasons.count[i]);
    fprintf(out, "%s\n", reasons.n ? ")" : "");
  } else if (rc == 2 && !v) {
    fprintf(err, "lane: out of memory\n");
  }
  for (int i = 0; i < n; i++) { free(v[i].provider); free(v[i].id); free(v[i].ident); }
  for (int i = 0; i < reasons.n; i++) free(reasons.why[i]);
  free(v);
  json_decref(root);
  return rc;
}

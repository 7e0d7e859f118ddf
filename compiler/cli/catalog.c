/*
 * catalog.c -- `lane catalog import`: a LiteLLM price catalog
 * (model_prices_and_context_window.json) becomes one lane module per
 * provider, each declaring that provider's chat models (mode "chat", and
 * mode "responses" with the capability responses_only).
 *
 * The work is in three steps that the diff and the fuzz target share:
 * catalog_parse reads the JSON within fixed limits, catalog_collect checks
 * every entry into a catalog_model (or a skip with its reason) and names
 * the models, catalog_render writes the modules. Nothing from the catalog
 * reaches a module unchecked: identifiers are made of [a-z0-9_], strings
 * are escaped as lane string literals, keys in comments are escaped too,
 * dates must be YYYY-MM-DD, numbers are range-checked and written so that
 * the lexer reads back the catalog's exact double.
 *
 * Names. A model's identifier is its id (the key without a "provider/"
 * prefix) in lower case, every run of other characters turned into one
 * '_' (a leading digit gets "m_", a keyword a trailing '_'). When several
 * keys of one module give the same identifier, none is numbered by
 * position: the one key without a prefix keeps it, a prefixed key takes
 * the identifier of its whole key (deepseek/deepseek-chat ->
 * deepseek_deepseek_chat), and what still collides (keys that differ only
 * in case or punctuation) gets "_h" and eight hex digits of the FNV-1a
 * hash of its key. So a name depends on the key and on the keys that
 * share its identifier, never on the order of the catalog or on unrelated
 * entries. Every renaming is reported.
 *
 * The report is deterministic: skip lines sorted by key, then collisions,
 * then one line per module written, then the counts.
 */
#define _XOPEN_SOURCE 700   /* strdup, mkdir, open_memstream */
#include "catalog.h"

#include "ast.h"    /* AST_MAX_IDENT, AST_MAX_STRING, AST_MAX_SOURCE */
#include "lane.h"   /* LANE_MAX_MODELS */

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *const catalog_caps[CATALOG_NCAPS] = {
  "vision", "tools", "json", "reasoning", "caching", "audio", "pdf", "responses_only"
};

/* The catalog flag behind each capability but the last. */
static const char *const cap_keys[CATALOG_NCAPS - 1] = {
  "supports_vision", "supports_function_calling", "supports_response_schema",
  "supports_reasoning", "supports_prompt_caching", "supports_audio_input",
  "supports_pdf_input",
};

enum { SK_NOT_MODEL, SK_NOT_OBJECT, SK_NO_MODE, SK_NOT_CHAT, SK_NO_PROVIDER, SK_NO_PRICES,
       SK_BAD_VALUE, SK_NAME_LONG, SK_COLLISION,
       SK_OTHER = -2,   /* a provider not asked for */
       SK_NOMEM = -3 };

const char *const catalog_skip_kinds[CATALOG_NSKIPKINDS] = {
  "not a model", "not an object", "no mode", "not a chat model", "no litellm_provider",
  "no per-token prices", "bad value", "name too long", "name collision",
};

/* ---- reading JSON within limits ---- */

static void limit_error(catalog_error *e, const char *what, long limit, const char *name) {
  e->kind = CATALOG_ELIMIT;
  snprintf(e->text, sizeof e->text, "the catalog has more than %ld %s, the limit (%s)", limit,
           what, name);
}

/* Skips a string starting at s[i] == '"'; returns the index after it. */
static size_t skip_string(const char *s, size_t n, size_t i) {
  for (i++; i < n && s[i] != '"'; i++)
    if (s[i] == '\\') i++;
  return i < n ? i + 1 : n;
}

/* Counts what jansson would build from s, without building it: values
 * (object keys are not values), objects and arrays, and nesting. On valid
 * JSON the counts are exact; on invalid JSON they bound what jansson
 * builds before it stops. 0, or -1 with e filled. */
static int prescan(const char *s, size_t n, catalog_error *e) {
  char stack[CATALOG_MAX_DEPTH];   /* '{' or '[' per open container */
  int depth = 0, want_key = 0;
  long values = 0, containers = 0;
  for (size_t i = 0; i < n;) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':') {
      if (c == ':') want_key = 0;
      i++;
      continue;
    }
    if (c == ',' || c == '}' || c == ']') {
      if (c != ',' && depth > 0) depth--;
      want_key = c == ',' && depth > 0 && stack[depth - 1] == '{';
      i++;
      continue;
    }
    if (!(c == '"' && want_key)) values++;
    if (c == '{' || c == '[') {
      if (depth == CATALOG_MAX_DEPTH) {
        e->kind = CATALOG_ELIMIT;
        snprintf(e->text, sizeof e->text, "the catalog nests objects and arrays deeper than "
                 "%d levels, the limit (CATALOG_MAX_DEPTH)", CATALOG_MAX_DEPTH);
        return -1;
      }
      stack[depth++] = c;
      want_key = c == '{';
      containers++;
      i++;
    } else if (c == '"') {
      want_key = 0;
      i = skip_string(s, n, i);
    } else {   /* a number, true, false, null, or garbage jansson will refuse */
      while (i < n && !strchr(" \t\n\r,:]}[{\"", s[i])) i++;
      if (i < n && s[i] == '\0') i++;   /* strchr matches the terminator */
    }
    if (values > CATALOG_MAX_VALUES) {
      limit_error(e, "JSON values", CATALOG_MAX_VALUES, "CATALOG_MAX_VALUES");
      return -1;
    }
    if (containers > CATALOG_MAX_CONTAINERS) {
      limit_error(e, "objects and arrays", CATALOG_MAX_CONTAINERS, "CATALOG_MAX_CONTAINERS");
      return -1;
    }
  }
  return 0;
}

json_t *catalog_parse(const char *text, size_t len, catalog_error *e) {
  if (prescan(text, len, e) != 0) return NULL;
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {   /* jansson quotes the input near the error: keep it one line */
    e->kind = CATALOG_ESYNTAX;
    e->line = jerr.line;
    e->column = jerr.column;
    char *o = e->text;
    for (const char *p = jerr.text; *p && o < e->text + sizeof e->text - 5; p++) {
      unsigned char c = (unsigned char)*p;
      if (c < 0x20 || c == 0x7f) o += sprintf(o, "\\x%02X", c);
      else *o++ = (char)c;
    }
    *o = 0;
  }
  return root;
}

static json_t *read_error(catalog_error *e, const char *path, const char *why) {
  e->kind = CATALOG_EREAD;
  snprintf(e->text, sizeof e->text, "cannot read '%s': %s", path, why);
  return NULL;
}

json_t *catalog_read(const char *path, long max_bytes, catalog_error *e) {
  if (max_bytes <= 0) max_bytes = CATALOG_MAX_BYTES;
  FILE *f = fopen(path, "rb");
  if (!f) return read_error(e, path, strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  int toobig = 0, rerr = 0;
  while (buf) {
    size_t want = cap - len, got = fread(buf + len, 1, want, f);
    len += got;
    if (got < want) { rerr = ferror(f); break; }
    if (len > (size_t)max_bytes) { toobig = 1; break; }
    char *nb = realloc(buf, cap * 2);
    if (!nb) { free(buf); buf = NULL; break; }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (!toobig && len > (size_t)max_bytes) toobig = 1;
  json_t *root = NULL;
  if (!buf) {
    read_error(e, path, "out of memory");
  } else if (rerr) {
    read_error(e, path, "read error");
  } else if (toobig) {
    e->kind = CATALOG_ELIMIT;
    snprintf(e->text, sizeof e->text, "'%s' is larger than %ld bytes, the limit of a catalog",
             path, max_bytes);
  } else {
    root = catalog_parse(buf, len, e);
  }
  free(buf);
  return root;
}

/* ---- printing catalog text safely ---- */

/* Catalog text in a comment or a report line: printable ASCII as it is,
 * '\' and every other byte as an escape, so a line stays one line. */
static void put_text(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\\') fputs("\\\\", f);
    else if (c >= 0x20 && c < 0x7f) fputc(c, f);
    else fprintf(f, "\\x%02X", c);
  }
}

/* A lane string literal. jansson has checked the UTF-8 and refused NUL;
 * controls become \xHH (which the lexer reads as that one byte). */
static void put_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02X", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* Up to 40 bytes of s for a message, "..." when there is more. */
static void excerpt(char *buf, size_t n, const char *s) {
  size_t len = strlen(s);
  snprintf(buf, n, "%.40s%s", s, len > 40 ? "..." : "");
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
  *out = d == 0 ? 0.0 : d;   /* -0.0 would print as "$-0/Mtok" */
  return 0;
}

/* A token count: an integer or an integral float (2000000.0), 0..1e15. */
static int get_tokens(json_t *e, const char *k, int64_t *out, char *why, size_t n) {
  json_t *v = json_object_get(e, k);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  double d = json_is_integer(v) ? (double)json_integer_value(v)
           : json_is_real(v) ? json_real_value(v) : -1;
  if (!(d >= 0 && d <= 1e15 && d == floor(d))) {
    snprintf(why, n, "%s is not a whole token count (0 to 10^15)", k);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}


static int get_date(json_t *e, char out[11], char *why, size_t n) {
  json_t *v = json_object_get(e, "deprecation_date");
  out[0] = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v) || !ast_valid_date(json_string_value(v))) {
    char ex[48] = "(not a string)";
    if (json_is_string(v)) excerpt(ex, sizeof ex, json_string_value(v));
    snprintf(why, n, "deprecation_date \"%s\" is not a date YYYY-MM-DD", ex);
    return -1;
  }
  memcpy(out, json_string_value(v), 11);
  return 0;
}

/* The long-context tier: the lowest N with input_cost_per_token_above_Nk_tokens
 * (N in decimal digits, 1 to 10^12 - 1), its digits in digits[] (the
 * shortest spelling of N, should leading zeros give it twice). */
static int long_tier(json_t *e, int64_t *above, char digits[16], char *why, size_t n) {
  static const char pre[] = "input_cost_per_token_above_";
  const char *k;
  json_t *v;
  *above = 0;
  json_object_foreach(e, k, v) {
    if (strncmp(k, pre, sizeof pre - 1) != 0) continue;
    const char *d = k + sizeof pre - 1;
    size_t nd = strspn(d, "0123456789");
    if (nd == 0 || strcmp(d + nd, "k_tokens") != 0) continue;
    long long t = nd <= 12 ? strtoll(d, NULL, 10) : 0;
    if (t <= 0) {
      snprintf(why, n, "%s: the threshold is not 1 to 10^12-1 thousand tokens", k);
      return -1;
    }
    if (*above == 0 || t * 1000 < *above || (t * 1000 == *above && nd < strlen(digits))) {
      *above = t * 1000;
      snprintf(digits, 16, "%.*s", (int)nd, d);
    }
  }
  return 0;
}

/* Every value import writes, checked; 0 or -1 with why. */
static int read_values(json_t *e, catalog_model *m, char *why, size_t n) {
  char digits[16];
  if (get_price(e, "input_cost_per_token", &m->input, why, n) ||
      get_price(e, "output_cost_per_token", &m->output, why, n) ||
      get_price(e, "cache_read_input_token_cost", &m->cached_input, why, n) ||
      get_price(e, "cache_creation_input_token_cost", &m->cache_write, why, n) ||
      get_price(e, "output_cost_per_reasoning_token", &m->reasoning_output, why, n) ||
      get_tokens(e, "max_input_tokens", &m->context, why, n) ||
      get_tokens(e, "max_output_tokens", &m->max_output, why, n) ||
      get_date(e, m->deprecated, why, n) || long_tier(e, &m->long_above, digits, why, n))
    return -1;
  if (m->long_above) {
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof k1, "input_cost_per_token_above_%sk_tokens", digits);
    snprintf(k2, sizeof k2, "output_cost_per_token_above_%sk_tokens", digits);
    snprintf(k3, sizeof k3, "cache_read_input_token_cost_above_%sk_tokens", digits);
    if (get_price(e, k1, &m->long_input, why, n) || get_price(e, k2, &m->long_output, why, n) ||
        get_price(e, k3, &m->long_cached_input, why, n))
      return -1;
  }
  for (int i = 0; i < CATALOG_NCAPS - 1; i++)
    if (json_is_true(json_object_get(e, cap_keys[i]))) m->caps |= 1u << i;
  return 0;
}

/* ---- names ---- */

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

/* Lower case; every run of other characters becomes one '_' (none at
 * either end); a leading digit gets "m_"; nothing left is "m"; a keyword
 * gets a trailing '_'. n bytes of s. */
static char *identifier_n(const char *s, size_t n) {
  char *r = malloc(n + 4), *o;
  if (!r) return NULL;
  o = r + 2;   /* room for "m_" in front */
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) *o++ = c;
    else if (o > r + 2 && o[-1] != '_') *o++ = '_';
  }
  while (o > r + 2 && o[-1] == '_') o--;
  if (o == r + 2) *o++ = 'm';
  *o = 0;
  if (r[2] >= '0' && r[2] <= '9') {   /* the first kept character, not s[0] */
    r[0] = 'm';
    r[1] = '_';
  } else {
    memmove(r, r + 2, (size_t)(o - r - 2) + 1);
    o -= 2;
  }
  if (is_keyword(r)) { *o++ = '_'; *o = 0; }
  return r;
}

static char *identifier(const char *s) { return identifier_n(s, strlen(s)); }

/* The module of a litellm_provider: the part before any '-'
 * (vertex_ai-language-models -> vertex_ai), bedrock_converse -> bedrock,
 * cohere_chat -> cohere, made an identifier. */
char *catalog_module_of(const char *lp, char *why, size_t n) {
  size_t len = strcspn(lp, "-");
  if (!strcmp(lp, "bedrock_converse")) len = strlen("bedrock");
  if (!strcmp(lp, "cohere_chat")) len = strlen("cohere");
  char ex[48];
  excerpt(ex, sizeof ex, lp);
  why[0] = 0;
  if (len == 0 || lp[strspn(lp, "-_")] == 0 || strspn(lp, "-_") >= len) {
    snprintf(why, n, "litellm_provider \"%s\" names no module", ex);
    return NULL;
  }
  char *m = identifier_n(lp, len);
  if (m && strlen(m) > AST_MAX_IDENT) {
    snprintf(why, n, "litellm_provider \"%s\" makes a module name of %zu bytes, the limit is %d",
             ex, strlen(m), AST_MAX_IDENT);
    free(m);
    return NULL;
  }
  return m;
}

/* The provider's id: the key without a leading "provider/" segment. */
static char *model_id(const char *key, const char *lp, const char *module, int *prefixed) {
  const char *slash = strchr(key, '/');
  *prefixed = 0;
  if (slash) {
    size_t n = (size_t)(slash - key);
    if ((strlen(lp) == n && !strncmp(key, lp, n)) ||
        (strlen(module) == n && !strncmp(key, module, n))) {
      key = slash + 1;
      *prefixed = 1;
    }
  }
  return strdup(key);
}

static int wanted(const char *module, const char *const *providers, int n) {
  if (n == 0) return 1;
  for (int i = 0; i < n; i++)
    if (!strcmp(providers[i], module)) return 1;
  return 0;
}

/* ---- collecting ---- */

/* Checks one entry; fills m and returns -1 for a model, else an SK_* kind
 * (why says more for SK_NOT_CHAT and the bad values). */
static int read_entry(const char *key, json_t *e, const char *const *providers, int np,
                      catalog_model *m, char *why, size_t n) {
  why[0] = 0;
  if (!strcmp(key, "sample_spec") || !strcmp(key, "fallback_generalizations"))
    return SK_NOT_MODEL;
  if (!json_is_object(e)) return SK_NOT_OBJECT;
  json_t *mode = json_object_get(e, "mode");
  if (!json_is_string(mode)) return SK_NO_MODE;
  const char *ms = json_string_value(mode);
  int responses = !strcmp(ms, "responses");
  if (strcmp(ms, "chat") != 0 && !responses) {
    char ex[48];
    excerpt(ex, sizeof ex, ms);
    snprintf(why, n, "mode %s", ex);
    return SK_NOT_CHAT;
  }
  json_t *lpv = json_object_get(e, "litellm_provider");
  if (!json_is_string(lpv)) return SK_NO_PROVIDER;
  if (!json_object_get(e, "input_cost_per_token") || !json_object_get(e, "output_cost_per_token"))
    return SK_NO_PRICES;
  const char *lp = json_string_value(lpv);
  m->module = catalog_module_of(lp, why, n);
  if (!m->module) return why[0] ? SK_BAD_VALUE : SK_NOMEM;
  if (!wanted(m->module, providers, np)) return SK_OTHER;
  m->key = key;
  if (!(m->id = model_id(key, lp, m->module, &m->prefixed))) return SK_NOMEM;
  if (strlen(m->id) > AST_MAX_STRING) {
    snprintf(why, n, "the model id is %zu bytes long, a string holds at most %d",
             strlen(m->id), AST_MAX_STRING);
    return SK_NAME_LONG;
  }
  if (!(m->ident = identifier(m->id))) return SK_NOMEM;
  if (strlen(m->ident) > AST_MAX_IDENT) {
    snprintf(why, n, "the identifier would be %zu bytes long, the limit is %d",
             strlen(m->ident), AST_MAX_IDENT);
    return SK_NAME_LONG;
  }
  if (read_values(e, m, why, n) != 0) return SK_BAD_VALUE;
  if (responses) m->caps |= CATALOG_CAP_RESPONSES_ONLY;
  return -1;
}

static void model_free(catalog_model *m) {
  free(m->module);
  free(m->id);
  free(m->ident);
  memset(m, 0, sizeof *m);
}

static int add_skip(catalog_set *s, const char *key, int kind, const char *why) {
  if (s->nskips == s->capskips) {
    int cap = s->capskips ? s->capskips * 2 : 64;
    catalog_skip *v = realloc(s->skips, (size_t)cap * sizeof *v);
    if (!v) return -1;
    s->skips = v;
    s->capskips = cap;
  }
  char *w = strdup(why && *why ? why : catalog_skip_kinds[kind]);
  if (!w) return -1;
  s->skips[s->nskips].key = key;
  s->skips[s->nskips++].why = w;
  s->count[kind]++;
  return 0;
}

static int add_model(catalog_set *s, const catalog_model *m) {
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 256;
    catalog_model *v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = *m;
  return 0;
}

/* ---- naming ---- */

/* Orders by module, identifier, naming level, key. */
static int by_ident(const void *a, const void *b) {
  const catalog_model *x = a, *y = b;
  int c = strcmp(x->module, y->module);
  if (!c) c = strcmp(x->ident, y->ident);
  if (!c) c = x->renamed - y->renamed;
  return c ? c : strcmp(x->key, y->key);
}

static int by_key(const void *a, const void *b) {
  const catalog_model *x = a, *y = b;
  int c = strcmp(x->module, y->module);
  return c ? c : strcmp(x->key, y->key);
}

static int by_skip_key(const void *a, const void *b) {
  return strcmp(((const catalog_skip *)a)->key, ((const catalog_skip *)b)->key);
}

/* End of the run of models from v[i] with v[i]'s module and identifier. */
static int run_end(const catalog_model *v, int n, int i) {
  int j = i + 1;
  while (j < n && !strcmp(v[j].module, v[i].module) && !strcmp(v[j].ident, v[i].ident)) j++;
  return j;
}

/* "collision: CLASH and KEY both map to M.ID; KEY is M.NEW" for every
 * renamed model, ID being the identifier of its id. */
static int report_renames(const catalog_set *s, FILE *report) {
  for (int i = 0; i < s->n && report; i++) {
    const catalog_model *m = &s->v[i];
    if (!m->renamed) continue;
    char *plain = identifier(m->id);
    if (!plain) return -1;
    fputs("collision: ", report);
    put_text(report, m->clash);
    fputs(" and ", report);
    put_text(report, m->key);
    fprintf(report, " both map to %s.%s; ", m->module, plain);
    put_text(report, m->key);
    fprintf(report, " is %s.%s\n", m->module, m->ident);
    free(plain);
  }
  return 0;
}

/* Renames m to level 1 (its whole key) or 2 (a hash suffix); clash is a
 * key that wanted the same identifier (the first one is kept). */
static int rename_model(catalog_model *m, int level, const char *clash) {
  char *old = m->ident, *name;
  if (level == 1) {
    name = identifier(m->key);
  } else {
    uint32_t h = 2166136261u;   /* FNV-1a, 32 bits */
    for (const char *p = m->key; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    char *base = identifier(m->id);
    size_t len = base ? strlen(base) + 12 : 0;
    name = base ? malloc(len) : NULL;
    if (name) snprintf(name, len, "%s_h%08x", base, (unsigned)h);
    free(base);
  }
  if (!name) return -1;
  m->ident = name;
  m->renamed = level;
  if (!m->clash) m->clash = clash;
  free(old);
  return 0;
}

/* Level 0 -> 1 or 2: in each run of one identifier, the one key without a
 * prefix keeps it; prefixed keys take their whole key; several keys
 * without a prefix all take a hash suffix. */
static int name_first(catalog_set *s) {
  if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof *s->v, by_ident);
  int n = s->n;
  for (int i = 0; i < n;) {
    int j = run_end(s->v, n, i), bare = 0, owner = -1;
    for (int k = i; k < j; k++)
      if (!s->v[k].prefixed) { bare++; owner = k; }
    for (int k = i; k < j && j - i > 1; k++) {
      if (bare == 1 && k == owner) continue;
      const char *clash = owner >= 0 && k != owner ? s->v[owner].key : s->v[k == i ? i + 1 : i].key;
      if (rename_model(&s->v[k], s->v[k].prefixed ? 1 : 2, clash)) return -1;
    }
    i = j;
  }
  return 0;
}

/* Level 1 -> 2: whole-key identifiers that another model has, or that
 * several take, all get a hash suffix instead. */
static int name_second(catalog_set *s) {
  if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof *s->v, by_ident);
  for (int i = 0; i < s->n;) {
    int j = run_end(s->v, s->n, i), plain = 0, whole = 0;
    for (int k = i; k < j; k++) {
      plain += s->v[k].renamed == 0;
      whole += s->v[k].renamed == 1;
    }
    for (int k = i; k < j && whole && (plain || whole > 1); k++)
      if (s->v[k].renamed == 1 &&
          rename_model(&s->v[k], 2, s->v[k == i ? i + 1 : i].key))
        return -1;
    i = j;
  }
  return 0;
}

/* What still collides (only hashed names can), and identifiers that grew
 * past the limit, are skipped; the rest is sorted by module and key. */
static int name_last(catalog_set *s) {
  if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof *s->v, by_ident);
  int w = 0, nomem = 0;
  for (int i = 0; i < s->n;) {
    int j = run_end(s->v, s->n, i);
    for (int k = i; k < j; k++) {
      catalog_model *m = &s->v[k];
      char why[200];
      int kind = -1;
      if (j - i > 1 && m->renamed == 2) {
        snprintf(why, sizeof why, "its identifier %.*s is another model's too", 140, m->ident);
        kind = SK_COLLISION;
      } else if (strlen(m->ident) > AST_MAX_IDENT) {
        snprintf(why, sizeof why, "the identifier would be %zu bytes long, the limit is %d",
                 strlen(m->ident), AST_MAX_IDENT);
        kind = SK_NAME_LONG;
      }
      if (kind < 0) { s->v[w++] = *m; continue; }
      if (add_skip(s, m->key, kind, why)) nomem = 1;   /* the set stays whole */
      model_free(m);
    }
    i = j;
  }
  s->n = w;
  if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof *s->v, by_key);
  return nomem ? -1 : 0;
}

/* "skip KEY: why" for skips[from..]. */
static void put_skips(const catalog_set *s, int from, FILE *report) {
  for (int i = from; i < s->nskips && report; i++) {
    fputs("skip ", report);
    put_text(report, s->skips[i].key);
    fputs(": ", report);
    put_text(report, s->skips[i].why);
    fputc('\n', report);
  }
}

int catalog_collect(json_t *root, const char *const *providers, int np, catalog_set *s,
                    FILE *report) {
  memset(s, 0, sizeof *s);
  const char *key;
  json_t *e;
  json_object_foreach(root, key, e) {
    catalog_model m;
    char why[512];
    memset(&m, 0, sizeof m);
    s->total++;
    int kind = read_entry(key, e, providers, np, &m, why, sizeof why);
    if (kind == SK_OTHER) s->other++;
    if (kind == SK_NOMEM || (kind >= 0 && add_skip(s, key, kind, why)) ||
        (kind == -1 && add_model(s, &m))) {
      model_free(&m);
      return -1;
    }
    if (kind != -1) model_free(&m);
  }
  if (s->nskips > 1) qsort(s->skips, (size_t)s->nskips, sizeof *s->skips, by_skip_key);
  put_skips(s, 0, report);
  int nskips = s->nskips;
  if (name_first(s) || name_second(s) || name_last(s) || report_renames(s, report)) return -1;
  put_skips(s, nskips, report);   /* skipped while naming */
  return 0;
}

void catalog_set_free(catalog_set *s) {
  for (int i = 0; i < s->n; i++) model_free(&s->v[i]);
  for (int i = 0; i < s->nskips; i++) free(s->skips[i].why);
  free(s->v);
  free(s->skips);
  memset(s, 0, sizeof *s);
}

/* ---- writing ---- */

/* The shortest plain decimal X for which the lexer's reading of `$X/Mtok`,
 * strtod("Xe-6"), is exactly p; for prices too small for 24 decimals, p's
 * shortest exponent form with the exponent raised by 6 (the lexer lowers
 * it again, exactly). */
void catalog_price_text(char *buf, size_t n, double p) {
  char probe[96], m[48];
  for (int decimals = 0; decimals <= 24; decimals++) {
    snprintf(buf, n, "%.*f", decimals, p * 1e6);
    snprintf(probe, sizeof probe, "%se-6", buf);
    if (strtod(probe, NULL) == p) return;
  }
  for (int digits = 0; digits <= 17; digits++) {
    snprintf(m, sizeof m, "%.*e", digits, p);
    if (strtod(m, NULL) == p || digits == 17) break;
  }
  char *e = strchr(m, 'e');
  long ex = e ? strtol(e + 1, NULL, 10) : 0;
  if (e) *e = 0;
  snprintf(buf, n, "%se%ld", m, ex + 6);
}

void catalog_tokens_text(char *buf, size_t n, int64_t t) {
  if (t > 0 && t % 1000000 == 0) snprintf(buf, n, "%lldM", (long long)(t / 1000000));
  else if (t > 0 && t % 1000 == 0) snprintf(buf, n, "%lldk", (long long)(t / 1000));
  else snprintf(buf, n, "%lld", (long long)t);
}

static void write_price(FILE *f, const char *name, double p) {
  char buf[64];
  catalog_price_text(buf, sizeof buf, p);
  fprintf(f, "  %s $%s/Mtok", name, buf);
}

static void write_tokens(FILE *f, const char *name, int64_t t) {
  char buf[32];
  catalog_tokens_text(buf, sizeof buf, t);
  fprintf(f, "  %s %s", name, buf);
}

const size_t catalog_mprop_off[BC_NMPROPS] = {
#define CATALOG_MP_OFF(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  0 CATALOG_MP(unit)(+ offsetof(catalog_model, member)),
  BC_MPROPS(CATALOG_MP_OFF)
#undef CATALOG_MP_OFF
};

/* The prices and token counts of m, a line per line group of BC_MPROPS,
 * each that is set (input and output always). */
static void write_values(FILE *f, const catalog_model *m) {
  for (int g = 1; g < BC_MP_GROUPS; g++) {
    int any = 0;
    for (int k = 0; k < BC_NMPROPS; k++) {
      const char *at = (const char *)m + catalog_mprop_off[k];
      double d;
      int64_t t;
      if (bc_mprops[k].group != g || !catalog_mprop_off[k]) continue;
      if (bc_mprops[k].unit == BC_U_PRICE) {
        memcpy(&d, at, sizeof d);
        if (d > 0 || k == BC_MP_INPUT || k == BC_MP_OUTPUT) write_price(f, bc_mprops[k].name, d);
        else continue;
      } else {
        memcpy(&t, at, sizeof t);
        if (t) write_tokens(f, bc_mprops[k].name, t);
        else continue;
      }
      any = 1;
    }
    if (any) fputc('\n', f);
  }
}

static void write_model(FILE *f, const catalog_model *m) {
  fputs("\n# ", f);
  put_text(f, m->key);
  fprintf(f, "\nmodel %s {\n  provider \"%s\"  name ", m->ident, m->module);
  put_string(f, m->id);
  fputc('\n', f);
  write_values(f, m);
  int ncaps = 0;
  for (int i = 0; i < CATALOG_NCAPS; i++)
    if (m->caps >> i & 1) fprintf(f, "%s%s", ncaps++ ? ", " : "  caps ", catalog_caps[i]);
  if (ncaps) fputc('\n', f);
  if (m->deprecated[0]) fprintf(f, "  deprecated \"%s\"\n", m->deprecated);
  fputs("}\n", f);
}

/* One module's source into mod->text; 0, or 2 with one line on err. */
static int render_module(catalog_module *mod, const char *source, const char *date, FILE *err) {
  if (mod->n > LANE_MAX_MODELS) {
    fprintf(err, "lane: provider %s has %d models, more than a program can hold (%d, "
            "LANE_MAX_MODELS)\n", mod->name, mod->n, LANE_MAX_MODELS);
    return 2;
  }
  FILE *f = open_memstream(&mod->text, &mod->len);
  if (!f) { fprintf(err, "lane: out of memory\n"); return 2; }
  const char *base = strrchr(source, '/');
  fprintf(f, "# std/providers/%s -- %s chat models and their prices.\n#\n"
             "# Generated by `lane catalog import` on %s from ", mod->name, mod->name, date);
  put_text(f, base ? base + 1 : source);
  fprintf(f, ", a catalog in\n"
             "# LiteLLM's model_prices_and_context_window.json format (BerriAI/litellm,\n"
             "# MIT). Do not edit: regenerate with `make stdlib`. Imported, each model\n"
             "# is named %s.<identifier>. Prices are US dollars per token; quality\n"
             "# and latency priors are the user's own and are not set here.\n", mod->name);
  for (int i = 0; i < mod->n; i++) write_model(f, &mod->v[i]);
  if (fclose(f) != 0 || !mod->text) {
    fprintf(err, "lane: out of memory\n");
    return 2;
  }
  if (mod->len > AST_MAX_SOURCE) {
    fprintf(err, "lane: the module of provider %s would be %zu bytes, more than a source file "
            "may hold (%u, AST_MAX_SOURCE)\n", mod->name, mod->len, AST_MAX_SOURCE);
    return 2;
  }
  return 0;
}

int catalog_render(const catalog_set *s, const char *source, catalog_module **mods,
                   int *nmods, FILE *err) {
  char date[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%d", &tm);
  *mods = NULL;
  *nmods = 0;
  int n = 0;
  for (int i = 0; i < s->n; i++) n += i == 0 || strcmp(s->v[i].module, s->v[i - 1].module);
  catalog_module *v = calloc((size_t)n + 1, sizeof *v);
  if (!v) { fprintf(err, "lane: out of memory\n"); return 2; }
  int k = 0;
  for (int i = 0; i < s->n;) {
    int j = i;
    while (j < s->n && !strcmp(s->v[j].module, s->v[i].module)) j++;
    v[k].name = s->v[i].module;
    v[k].v = s->v + i;
    v[k].n = j - i;
    if (render_module(&v[k++], source, date, err)) {
      catalog_modules_free(v, k);
      return 2;
    }
    i = j;
  }
  *mods = v;
  *nmods = k;
  return 0;
}

void catalog_modules_free(catalog_module *mods, int nmods) {
  for (int i = 0; i < nmods && mods; i++) free(mods[i].text);
  free(mods);
}

/* ---- the import ---- */

/* Writes text to dir/name.lane through a temp file; 0 or -1 (reported). */
static int write_file(const char *dir, const catalog_module *m, FILE *err) {
  size_t n = strlen(dir) + strlen(m->name) + 16;
  char *path = malloc(n), *tmp = malloc(n + 4);
  int rc = -1;
  if (!path || !tmp) {
    fprintf(err, "lane: out of memory\n");
  } else {
    snprintf(path, n, "%s/%s.lane", dir, m->name);
    snprintf(tmp, n + 4, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
      fprintf(err, "lane: cannot write '%s': %s\n", tmp, strerror(errno));
    } else {
      size_t w = fwrite(m->text, 1, m->len, f);
      if (fclose(f) != 0 || w != m->len || rename(tmp, path) != 0) {
        fprintf(err, "lane: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
      } else {
        rc = 0;
      }
    }
  }
  free(path);
  free(tmp);
  return rc;
}

/* The --provider arguments as module names, malloc'ed (n of them). */
static char **module_args(const char *const *providers, int n, FILE *err) {
  char **v = calloc((size_t)n + 1, sizeof *v);
  for (int i = 0; v && i < n; i++) {
    char why[160];
    v[i] = catalog_module_of(providers[i], why, sizeof why);
    if (!v[i]) {
      fputs("lane: --provider ", err);
      put_text(err, providers[i]);
      fprintf(err, ": %s\n", why[0] ? why : "out of memory");
      for (int k = 0; k < i; k++) free(v[k]);
      free(v);
      return NULL;
    }
  }
  if (!v) fprintf(err, "lane: out of memory\n");
  return v;
}

static void free_args(char **v, int n) {
  for (int i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

void catalog_report_error(FILE *err, const char *path, const catalog_error *e) {
  if (e->kind == CATALOG_ESYNTAX)
    fprintf(err, "lane: %s:%d:%d: invalid JSON: %s\n", path, e->line, e->column, e->text);
  else if (e->kind == CATALOG_ELIMIT)
    fprintf(err, "lane: %s: %s\n", path, e->text);
  else
    fprintf(err, "lane: %s\n", e->text);
}

static void summary(FILE *out, const catalog_set *s, int written, int np) {
  int skipped = 0, first = 1;
  for (int i = 0; i < CATALOG_NSKIPKINDS; i++) skipped += s->count[i];
  fprintf(out, "%d entries: imported %d models", s->total, written);
  if (np) fprintf(out, ", %d of other providers", s->other);
  fprintf(out, ", skipped %d", skipped);
  for (int i = 0; i < CATALOG_NSKIPKINDS; i++)
    if (s->count[i]) {
      fprintf(out, "%s%s %d", first ? " (" : ", ", catalog_skip_kinds[i], s->count[i]);
      first = 0;
    }
  fprintf(out, "%s\n", first ? "" : ")");
}

/* Each provider asked for must give a model: a misspelt or vanished one
 * would otherwise leave its old module in place without a word. */
static int check_args(const catalog_set *s, char **mods, int np, const char *path, FILE *err) {
  for (int i = 0; i < np; i++) {
    int found = 0;
    for (int k = 0; k < s->n && !found; k++) found = !strcmp(s->v[k].module, mods[i]);
    if (!found) {
      fprintf(err, "lane: --provider %s: %s has no chat model of that provider\n", mods[i], path);
      return 2;
    }
  }
  return 0;
}

int catalog_import(const char *json_path, const char *out_dir,
                   const char *const *providers, int np, FILE *out, FILE *err) {
  catalog_error ce;
  json_t *root = catalog_read(json_path, 0, &ce);
  if (!root) {
    catalog_report_error(err, json_path, &ce);
    return 2;
  }
  if (!json_is_object(root)) {
    fprintf(err, "lane: %s: a catalog is a JSON object of model entries\n", json_path);
    json_decref(root);
    return 2;
  }
  char **mods = module_args(providers, np, err);
  catalog_set s;
  catalog_module *gen = NULL;
  int ngen = 0, rc = mods ? 0 : 2;
  memset(&s, 0, sizeof s);
  if (rc == 0 && catalog_collect(root, (const char *const *)mods, np, &s, out) != 0) {
    fprintf(err, "lane: out of memory\n");
    rc = 2;
  }
  if (rc == 0) rc = check_args(&s, mods, np, json_path, err);
  if (rc == 0) rc = catalog_render(&s, json_path, &gen, &ngen, err);
  if (rc == 0 && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
    fprintf(err, "lane: cannot create '%s': %s\n", out_dir, strerror(errno));
    rc = 2;
  }
  int written = 0;
  for (int i = 0; i < ngen && rc == 0; i++) {
    if (write_file(out_dir, &gen[i], err) != 0) { rc = 2; break; }
    fprintf(out, "wrote %s/%s.lane: %d models\n", out_dir, gen[i].name, gen[i].n);
    written += gen[i].n;
  }
  if (rc == 0) summary(out, &s, written, np);
  catalog_modules_free(gen, ngen);
  catalog_set_free(&s);
  free_args(mods, np);
  json_decref(root);
  return rc;
}

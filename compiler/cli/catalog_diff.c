/*
 * catalog_diff.c -- lane catalog diff OLD.json NEW.json [--format keys|lane]
 * [--provider P]...
 *
 * Both files are price catalogs in the LiteLLM model_prices_and_context_window
 * format, read within the limits of catalog.h.
 *
 * --format keys (the default): raw catalog entries by key. Entries that are
 * not objects, and the non-model keys sample_spec and
 * fallback_generalizations, are skipped. One line each, sorted by key
 * (strcmp order):
 *
 *   + key (provider)                               entry added
 *   - key (provider)                               entry removed
 *   ~ key: input_cost_per_token 3e-06 -> 2.5e-06   one changed field
 *   N added, N removed, N changed                  summary (entries)
 *
 * The fields compared are every key whose name contains "cost" (nested
 * objects such as search_context_cost_per_query are compared leaf by leaf,
 * as field.subkey), every capability flag (supports_*), max_input_tokens,
 * max_output_tokens, max_tokens, deprecation_date, mode and
 * litellm_provider. Numbers compare by value (0 equals 0.0) and print in
 * the shortest form that reads back to the same double; strings print as
 * JSON strings; a missing field prints as (none).
 *
 * --format lane: only what `lane catalog import` would write, by lane name
 * (module.identifier), compared as a policy sees it:
 *
 *   + openai.gpt_5_pro (gpt-5-pro)                 model added
 *   - openai.o1_mini (o1-mini): now skipped: mode completion
 *   ~ openai.gpt_4o: caps -vision +audio           capabilities lost, gained
 *   ~ openai.gpt_4o: input $2.5/Mtok -> $2/Mtok    a price, limit or date
 *   ~ deepseek.deepseek_chat: catalog key deepseek-chat -> deepseek/deepseek-chat
 *   N added, N removed, N changed                  summary (models)
 *
 * --provider P (either format, repeatable): only entries of that provider
 * (its module name, as for import; an entry counts when either side has
 * it). A provider found in neither file is a usage error.
 *
 * Returns 0 when there are no differences, 1 when there are some, 2 when a
 * file cannot be read, is not valid JSON (reported with line:column),
 * exceeds a limit or is not a JSON object.
 */
#include "catalog.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Prints s with control characters replaced, so a line stays one line. */
static void put_safe(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
  }
}

/* The shortest %.Ng (N <= 17) that reads back as exactly d. */
static void fmt_double(char *buf, size_t n, double d) {
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, n, "%.*g", p, d);
    if (strtod(buf, NULL) == d) return;
  }
  snprintf(buf, n, "%.17g", d);
}

static void put_value(FILE *f, const json_t *v) {
  char buf[64];
  if (!v) { fputs("(none)", f); return; }
  switch (json_typeof(v)) {
  case JSON_INTEGER:
    fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return;
  case JSON_REAL:
    fmt_double(buf, sizeof buf, json_real_value(v));
    fputs(buf, f);
    return;
  case JSON_ARRAY: {
    fputc('[', f);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) fputs(", ", f);
      put_value(f, json_array_get(v, i));
    }
    fputc(']', f);
    return;
  }
  default: {
    /* strings, true/false/null, and objects (only inside arrays) */
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    if (s) { put_safe(f, s); free(s); }
    else fputs("?", f);
    return;
  }
  }
}

/* Equal as catalog values: numbers by value, the rest as jansson sees it. */
static int same_value(const json_t *a, const json_t *b) {
  if (!a || !b) return a == b;
  if (json_is_integer(a) && json_is_integer(b))
    return json_integer_value(a) == json_integer_value(b);
  if (json_is_number(a) && json_is_number(b))
    return json_number_value(a) == json_number_value(b);
  return json_equal(a, b);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted, deduplicated union of the keys of two objects (either may be
 * NULL or not an object). The strings belong to the objects. */
static const char **key_union(const json_t *a, const json_t *b, size_t *n) {
  size_t cap = json_object_size(a) + json_object_size(b), len = 0;
  const char **keys = malloc((cap ? cap : 1) * sizeof *keys);
  if (!keys) return NULL;
  const char *k;
  json_t *v;
  if (json_is_object(a)) json_object_foreach((json_t *)a, k, v) keys[len++] = k;
  if (json_is_object(b)) json_object_foreach((json_t *)b, k, v) keys[len++] = k;
  qsort(keys, len, sizeof *keys, cmp_str);
  size_t w = 0;
  for (size_t i = 0; i < len; i++)
    if (w == 0 || strcmp(keys[w - 1], keys[i]) != 0) keys[w++] = keys[i];
  *n = w;
  return keys;
}

static int compared_field(const char *k) {
  return strstr(k, "cost") || !strncmp(k, "supports_", 9) || !strcmp(k, "max_input_tokens") ||
         !strcmp(k, "max_output_tokens") || !strcmp(k, "max_tokens") ||
         !strcmp(k, "deprecation_date") || !strcmp(k, "mode") || !strcmp(k, "litellm_provider");
}

static int is_model(const char *key, const json_t *v) {
  return v && json_is_object(v) && strcmp(key, "sample_spec") != 0 &&
         strcmp(key, "fallback_generalizations") != 0;
}

/* Prints one line per changed leaf of field path (old a, new b); returns
 * how many, or -1 when out of memory. */
static int diff_field(FILE *out, const char *model, const char *path, const json_t *a,
                      const json_t *b) {
  if (same_value(a, b)) return 0;
  if ((a && json_is_object(a)) || (b && json_is_object(b))) {
    const json_t *oa = json_is_object(a) ? a : NULL, *ob = json_is_object(b) ? b : NULL;
    if ((a && !oa) || (b && !ob)) goto leaf; /* object vs scalar: one line */
    size_t n;
    const char **keys = key_union(oa, ob, &n);
    if (!keys) return -1;
    int count = 0;
    for (size_t i = 0; i < n && count >= 0; i++) {
      size_t len = strlen(path) + strlen(keys[i]) + 2;
      char *sub = malloc(len);
      if (!sub) { count = -1; break; }
      snprintf(sub, len, "%s.%s", path, keys[i]);
      int c = diff_field(out, model, sub, oa ? json_object_get(oa, keys[i]) : NULL,
                         ob ? json_object_get(ob, keys[i]) : NULL);
      free(sub);
      count = c < 0 ? -1 : count + c;
    }
    free(keys);
    return count;
  }
leaf:
  fputs("~ ", out);
  put_safe(out, model);
  fputs(": ", out);
  put_safe(out, path);
  fputc(' ', out);
  put_value(out, a);
  fputs(" -> ", out);
  put_value(out, b);
  fputc('\n', out);
  return 1;
}

static void put_model(FILE *out, char sign, const char *key, const json_t *m) {
  const char *prov = json_string_value(json_object_get(m, "litellm_provider"));
  fprintf(out, "%c ", sign);
  put_safe(out, key);
  fputs(" (", out);
  put_safe(out, prov ? prov : "no provider");
  fputs(")\n", out);
}

static json_t *load(const char *path, FILE *err) {
  catalog_error ce;
  json_t *root = catalog_read(path, 0, &ce);
  if (!root) {
    catalog_report_error(err, path, &ce);
    return NULL;
  }
  if (!json_is_object(root)) {
    fprintf(err, "lane: %s: not a catalog (the top level is not a JSON object)\n", path);
    json_decref(root);
    return NULL;
  }
  return root;
}

/* ---- providers ---- */

/* Whether entry m belongs to one of the modules (all when n is 0). */
static int of_providers(const json_t *m, char **mods, int n) {
  if (n == 0) return 1;
  const char *lp = json_string_value(json_object_get(m, "litellm_provider"));
  char why[160], *mod = lp ? catalog_module_of(lp, why, sizeof why) : NULL;
  int found = 0;
  for (int i = 0; i < n && mod && !found; i++) found = !strcmp(mod, mods[i]);
  free(mod);
  return found;
}

/* The --provider arguments as module names; each must name a provider of
 * an entry of a or b. NULL (reported) otherwise. */
static char **provider_args(const catalog_diff_opts *o, json_t *a, json_t *b, FILE *err) {
  char **v = calloc((size_t)o->nproviders + 1, sizeof *v);
  int bad = !v;
  if (!v) fprintf(err, "lane: catalog diff: out of memory\n");
  for (int i = 0; !bad && i < o->nproviders; i++) {
    char why[160];
    v[i] = catalog_module_of(o->providers[i], why, sizeof why);
    if (!v[i]) {
      fputs("lane: --provider ", err);
      put_safe(err, o->providers[i]);
      fprintf(err, ": %s\n", why[0] ? why : "out of memory");
      bad = 1;
      break;
    }
    int seen = 0;
    const char *k;
    json_t *m;
    for (json_t *root = a; root && !seen; root = root == a ? b : NULL)
      json_object_foreach(root, k, m)
        if (is_model(k, m) && of_providers(m, v + i, 1)) { seen = 1; break; }
    if (!seen) {
      fprintf(err, "lane: --provider %s: neither catalog has an entry of that provider\n", v[i]);
      bad = 1;
    }
  }
  if (bad && v) {
    for (int i = 0; i < o->nproviders; i++) free(v[i]);
    free(v);
    v = NULL;
  }
  return v;
}

/* ---- raw entries ---- */

static int raw_diff(json_t *a, json_t *b, char **mods, int nmods, FILE *out, long count[3]) {
  size_t n;
  const char **keys = key_union(a, b, &n);
  if (!keys) return -1;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const char *k = keys[i];
    json_t *ma = json_object_get(a, k), *mb = json_object_get(b, k);
    int ia = is_model(k, ma), ib = is_model(k, mb);
    if (!ia && !ib) continue;
    if (!(ia && of_providers(ma, mods, nmods)) && !(ib && of_providers(mb, mods, nmods)))
      continue;
    if (!ia) { put_model(out, '+', k, mb); count[0]++; continue; }
    if (!ib) { put_model(out, '-', k, ma); count[1]++; continue; }
    size_t nf;
    const char **fields = key_union(ma, mb, &nf);
    if (!fields) { rc = -1; break; }
    int lines = 0;
    for (size_t j = 0; j < nf && lines >= 0; j++) {
      if (!compared_field(fields[j])) continue;
      int c = diff_field(out, k, fields[j], json_object_get(ma, fields[j]),
                         json_object_get(mb, fields[j]));
      lines = c < 0 ? -1 : lines + c;
    }
    free(fields);
    if (lines < 0) { rc = -1; break; }
    if (lines > 0) count[2]++;
  }
  free(keys);
  return rc;
}

/* ---- lane models ---- */

static int by_name(const void *a, const void *b) {
  const catalog_model *x = *(const catalog_model *const *)a, *y = *(const catalog_model *const *)b;
  int c = strcmp(x->module, y->module);
  return c ? c : strcmp(x->ident, y->ident);
}

static int by_model_key(const void *a, const void *b) {
  return strcmp((*(const catalog_model *const *)a)->key, (*(const catalog_model *const *)b)->key);
}

/* Pointers to the models of s sorted by cmp. */
static const catalog_model **sorted(const catalog_set *s, int (*cmp)(const void *, const void *)) {
  const catalog_model **v = malloc(((size_t)s->n + 1) * sizeof *v);
  if (!v) return NULL;
  for (int i = 0; i < s->n; i++) v[i] = &s->v[i];
  qsort(v, (size_t)s->n, sizeof *v, cmp);
  return v;
}

static const catalog_model *find_key(const catalog_model **v, int n, const char *key) {
  catalog_model probe;
  const catalog_model *pp = &probe, **hit;
  probe.key = key;
  hit = bsearch(&pp, v, (size_t)n, sizeof *v, by_model_key);
  return hit ? *hit : NULL;
}

static const catalog_skip *find_skip(const catalog_set *s, const char *key) {
  for (int i = 0; i < s->nskips; i++)   /* sorted by key, but a short list */
    if (!strcmp(s->skips[i].key, key)) return &s->skips[i];
  return NULL;
}

/* "- module.ident (key)" and, when the key is still in the new catalog,
 * what became of it. */
static void put_removed(FILE *out, const catalog_model *m, const catalog_set *nb,
                        const catalog_model **bkeys) {
  fprintf(out, "- %s.%s (", m->module, m->ident);
  put_safe(out, m->key);
  fputc(')', out);
  const catalog_model *now = find_key(bkeys, nb->n, m->key);
  const catalog_skip *sk = now ? NULL : find_skip(nb, m->key);
  if (now) fprintf(out, ": now %s.%s", now->module, now->ident);
  if (sk) {
    fputs(": now skipped: ", out);
    put_safe(out, sk->why);
  }
  fputc('\n', out);
}

static void put_price(FILE *out, double p, int optional) {
  char buf[64];
  if (optional && p == 0) { fputs("(none)", out); return; }
  catalog_price_text(buf, sizeof buf, p);
  fprintf(out, "$%s/Mtok", buf);
}

static void put_tokens(FILE *out, int64_t t) {
  char buf[32];
  if (t == 0) { fputs("(none)", out); return; }
  catalog_tokens_text(buf, sizeof buf, t);
  fputs(buf, out);
}

/* One "~ name: what old -> new" line per difference; returns how many. */
static int diff_models(FILE *out, const catalog_model *x, const catalog_model *y) {
  int lines = 0;
#define LINE(what) (fprintf(out, "~ %s.%s: %s ", y->module, y->ident, what), lines++)
  if (strcmp(x->id, y->id)) {
    LINE("name");
    put_safe(out, x->id);
    fputs(" -> ", out);
    put_safe(out, y->id);
    fputc('\n', out);
  }
  for (int pass = 0; pass < 2; pass++)   /* the prices, then the token counts */
    for (int k = 0; k < BC_NMPROPS; k++) {
      size_t off = catalog_mprop_off[k];
      if (!off || (bc_mprops[k].unit == BC_U_PRICE) != (pass == 0)) continue;
      if (pass == 0) {
        double p, q;
        memcpy(&p, (const char *)x + off, sizeof p);
        memcpy(&q, (const char *)y + off, sizeof q);
        if (p == q) continue;
        int optional = k != BC_MP_INPUT && k != BC_MP_OUTPUT;
        LINE(bc_mprops[k].name);
        put_price(out, p, optional);
        fputs(" -> ", out);
        put_price(out, q, optional);
      } else {
        int64_t p, q;
        memcpy(&p, (const char *)x + off, sizeof p);
        memcpy(&q, (const char *)y + off, sizeof q);
        if (p == q) continue;
        LINE(bc_mprops[k].name);
        put_tokens(out, p);
        fputs(" -> ", out);
        put_tokens(out, q);
      }
      fputc('\n', out);
    }
  if (x->caps != y->caps) {
    LINE("caps");
    int first = 1;
    for (int i = 0; i < CATALOG_NCAPS; i++)
      if ((x->caps ^ y->caps) >> i & 1) {
        fprintf(out, "%s%c%s", first ? "" : " ", (y->caps >> i & 1) ? '+' : '-', catalog_caps[i]);
        first = 0;
      }
    fputc('\n', out);
  }
  if (strcmp(x->deprecated, y->deprecated)) {
    LINE("deprecated");
    fprintf(out, x->deprecated[0] ? "\"%s\"" : "(none)", x->deprecated);
    fprintf(out, y->deprecated[0] ? " -> \"%s\"\n" : " -> (none)\n", y->deprecated);
  }
  if (strcmp(x->key, y->key)) {
    LINE("catalog key");
    put_safe(out, x->key);
    fputs(" -> ", out);
    put_safe(out, y->key);
    fputc('\n', out);
  }
#undef LINE
  return lines;
}

static int lane_diff(json_t *a, json_t *b, char **mods, int nmods, FILE *out, long count[3]) {
  catalog_set sa, sb;
  const catalog_model **va = NULL, **vb = NULL, **bkeys = NULL;
  int rc = -1;
  memset(&sb, 0, sizeof sb);
  if (catalog_collect(a, (const char *const *)mods, nmods, &sa, NULL) != 0) goto done;
  if (catalog_collect(b, (const char *const *)mods, nmods, &sb, NULL) != 0) goto done;
  va = sorted(&sa, by_name);
  vb = sorted(&sb, by_name);
  bkeys = sorted(&sb, by_model_key);
  if (!va || !vb || !bkeys) goto done;
  for (int i = 0, j = 0; i < sa.n || j < sb.n;) {
    int c = i == sa.n ? 1 : j == sb.n ? -1 : by_name(&va[i], &vb[j]);
    if (c < 0) {
      put_removed(out, va[i++], &sb, bkeys);
      count[1]++;
    } else if (c > 0) {
      fprintf(out, "+ %s.%s (", vb[j]->module, vb[j]->ident);
      put_safe(out, vb[j++]->key);
      fputs(")\n", out);
      count[0]++;
    } else {
      count[2] += diff_models(out, va[i++], vb[j++]) > 0;
    }
  }
  rc = 0;
done:
  free(va);
  free(vb);
  free(bkeys);
  catalog_set_free(&sa);
  catalog_set_free(&sb);
  return rc;
}

int catalog_diff(const char *old_path, const char *new_path, const catalog_diff_opts *opts,
                 FILE *out, FILE *err) {
  static const catalog_diff_opts none;
  if (!opts) opts = &none;
  if (!old_path || !new_path) {
    fprintf(err, "lane: catalog diff takes two catalog files\n");
    return 2;
  }
  json_t *a = load(old_path, err);
  if (!a) return 2;
  json_t *b = load(new_path, err);
  if (!b) { json_decref(a); return 2; }
  int rc = 2;
  long count[3] = {0, 0, 0};   /* added, removed, changed */
  char **mods = provider_args(opts, a, b, err);
  if (mods) {
    int bad = opts->lane ? lane_diff(a, b, mods, opts->nproviders, out, count)
                         : raw_diff(a, b, mods, opts->nproviders, out, count);
    if (bad) {
      fprintf(err, "lane: catalog diff: out of memory\n");
    } else {
      fprintf(out, "%ld added, %ld removed, %ld changed\n", count[0], count[1], count[2]);
      rc = count[0] || count[1] || count[2] ? 1 : 0;
      if (fflush(out) != 0 || ferror(out)) {
        fprintf(err, "lane: catalog diff: cannot write the report\n");
        rc = 2;
      }
    }
    for (int i = 0; i < opts->nproviders; i++) free(mods[i]);
    free(mods);
  }
  json_decref(a);
  json_decref(b);
  return rc;
}

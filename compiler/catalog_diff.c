/*
 * catalog_diff.c -- lane catalog diff OLD.json NEW.json.
 *
 * Both files are price catalogs in the LiteLLM model_prices_and_context_window
 * format: one JSON object whose keys are model names and whose values are
 * objects of fields. Entries that are not objects, and the non-model keys
 * sample_spec and fallback_generalizations, are skipped.
 *
 * The report is sorted by model key (strcmp order), one line each:
 *
 *   + key (provider)                               model added
 *   - key (provider)                               model removed
 *   ~ key: input_cost_per_token 3e-06 -> 2.5e-06   one changed field
 *   N added, N removed, N changed                  summary (models)
 *
 * The fields compared are every key whose name contains "cost" (nested
 * objects such as search_context_cost_per_query are compared leaf by leaf,
 * as field.subkey) plus max_input_tokens, max_output_tokens,
 * deprecation_date and mode. Numbers compare by value (0 equals 0.0) and
 * print in the shortest form that reads back to the same double; strings
 * print as JSON strings; a missing field prints as (none).
 *
 * Returns 0 when there are no differences, 1 when there are some, 2 when a
 * file cannot be read or is not valid JSON (reported with line:column).
 */
#include "catalog.h"

#include <errno.h>
#include <jansson.h>
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
  return strstr(k, "cost") || !strcmp(k, "max_input_tokens") ||
         !strcmp(k, "max_output_tokens") || !strcmp(k, "deprecation_date") ||
         !strcmp(k, "mode");
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
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(err, "lane: cannot read '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  json_error_t jerr;
  json_t *root = json_loadf(f, 0, &jerr);
  int rerr = ferror(f);
  fclose(f);
  if (!root) {
    if (rerr) fprintf(err, "lane: cannot read '%s': read error\n", path);
    else fprintf(err, "lane: %s:%d:%d: invalid JSON: %s\n", path, jerr.line, jerr.column,
                 jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    fprintf(err, "lane: %s: not a catalog (the top level is not a JSON object)\n", path);
    json_decref(root);
    return NULL;
  }
  return root;
}

int catalog_diff(const char *old_path, const char *new_path, FILE *out, FILE *err) {
  if (!old_path || !new_path) {
    fprintf(err, "lane: catalog diff takes two catalog files\n");
    return 2;
  }
  json_t *a = load(old_path, err);
  if (!a) return 2;
  json_t *b = load(new_path, err);
  if (!b) { json_decref(a); return 2; }

  int rc = 0;
  size_t n;
  const char **keys = key_union(a, b, &n);
  if (!keys) {
    fprintf(err, "lane: catalog diff: out of memory\n");
    rc = 2;
    goto done;
  }
  long added = 0, removed = 0, changed = 0;
  for (size_t i = 0; i < n; i++) {
    const char *k = keys[i];
    json_t *ma = json_object_get(a, k), *mb = json_object_get(b, k);
    int ia = is_model(k, ma), ib = is_model(k, mb);
    if (!ia && !ib) continue;
    if (!ia) { put_model(out, '+', k, mb); added++; continue; }
    if (!ib) { put_model(out, '-', k, ma); removed++; continue; }
    size_t nf;
    const char **fields = key_union(ma, mb, &nf);
    if (!fields) { rc = 2; break; }
    int lines = 0;
    for (size_t j = 0; j < nf && lines >= 0; j++) {
      if (!compared_field(fields[j])) continue;
      int c = diff_field(out, k, fields[j], json_object_get(ma, fields[j]),
                         json_object_get(mb, fields[j]));
      lines = c < 0 ? -1 : lines + c;
    }
    free(fields);
    if (lines < 0) { rc = 2; break; }
    if (lines > 0) changed++;
  }
  free(keys);
  if (rc == 2) {
    fprintf(err, "lane: catalog diff: out of memory\n");
    goto done;
  }
  fprintf(out, "%ld added, %ld removed, %ld changed\n", added, removed, changed);
  rc = added || removed || changed ? 1 : 0;
  if (fflush(out) != 0 || ferror(out)) {
    fprintf(err, "lane: catalog diff: cannot write the report\n");
    rc = 2;
  }
done:
  json_decref(a);
  json_decref(b);
  return rc;
}

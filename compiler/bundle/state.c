/*
 * state.c -- reads a runtime snapshot (the JSON of lane_runtime_snapshot)
 * into a runtime with a frozen clock. See state.h.
 */
#include "state.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const states[] = {"closed", "open", "half_open"};

static int set_model(const lane_program *p, lane_runtime *rt, json_t *m, const char *path,
                     FILE *err) {
  const char *name = json_string_value(json_object_get(m, "model"));
  const char *st = json_string_value(json_object_get(m, "state"));
  int idx = -1, state = -1;
  for (int i = 0; name && i < lane_model_count(p); i++)
    if (!strcmp(lane_model_name(p, i), name)) idx = i;
  for (int i = 0; st && i < 3; i++)
    if (!strcmp(states[i], st)) state = i;
  if (idx < 0 || state < 0) {
    fprintf(err, "lane: %s: %s\n", path,
            idx < 0 ? "a model of the snapshot is not in the program"
                    : "a model's state is not closed, open or half_open");
    return -1;
  }
  lane_live_stats s = {
    json_number_value(json_object_get(m, "p50")), json_number_value(json_object_get(m, "p95")),
    json_number_value(json_object_get(m, "error_rate")),
    (uint64_t)json_integer_value(json_object_get(m, "samples")), state,
    (uint64_t)json_integer_value(json_object_get(m, "until_ms"))};
  return lane_runtime_set_model_stats(rt, idx, &s) == LANE_OK ? 0 : -1;
}

static int set_budget(const lane_program *p, lane_runtime *rt, json_t *b, const char *path,
                      FILE *err) {
  const char *name = json_string_value(json_object_get(b, "budget"));
  int idx = lane_budget(p, name);
  if (idx < 0) {
    fprintf(err, "lane: %s: budget '%s' is not in the program\n", path, name ? name : "?");
    return -1;
  }
  /* What a key without a slot reads, as the snapshot's runtime had it. */
  const char *full = json_string_value(json_object_get(b, "on_full"));
  if (full) {
    int mode = !strcmp(full, "shared") ? LANE_ON_FULL_SHARED
             : !strcmp(full, "closed") ? LANE_ON_FULL_CLOSED
             : !strcmp(full, "open") ? LANE_ON_FULL_OPEN : -1;
    if (mode < 0 || lane_runtime_set_budget_on_full(rt, idx, mode) != LANE_OK) {
      fprintf(err, "lane: %s: budget '%s': on_full is \"shared\", \"closed\" or \"open\", "
                   "not \"%s\"\n", path, name, full);
      return -1;
    }
  }
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(b, "keys"), i, k) {
    /* key_hash 0 is the shared overflow account of a full key table */
    const char *hex = json_string_value(json_object_get(k, "key_hash"));
    const char *key = json_string_value(json_object_get(k, "key"));
    char *end = NULL;
    uint64_t h = hex ? strtoull(hex, &end, 16)
               : key ? lane_budget_key_hash(p, idx, key, strlen(key)) : 0;
    if (hex && (end == hex || *end)) {
      fprintf(err, "lane: %s: budget '%s': key_hash \"%s\" is not a hexadecimal number\n",
              path, name, hex);
      return -1;
    }
    if ((!hex && !h) ||
        lane_runtime_set_spend(rt, idx, h, json_number_value(json_object_get(k, "spent")))) {
      fprintf(err, "lane: %s: budget '%s': each key needs \"key\" or \"key_hash\" and "
                   "\"spent\" >= 0\n", path, name);
      return -1;
    }
  }
  return 0;
}

static lane_runtime *from_json(const lane_program *p, json_t *root, const char *path, FILE *err);

lane_runtime *state_runtime(const lane_program *p, const char *path, FILE *err) {
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root) {
    fprintf(err, "lane: %s:%d:%d: invalid JSON: %s\n", path, jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  return from_json(p, root, path, err);
}

lane_runtime *state_runtime_bytes(const lane_program *p, const char *path, const char *bytes,
                                  size_t n, FILE *err) {
  json_error_t jerr;
  json_t *root = json_loadb(bytes, n, 0, &jerr);
  if (!root) {
    fprintf(err, "lane: %s:%d:%d: invalid JSON: %s\n", path, jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  return from_json(p, root, path, err);
}

/* Takes root (and frees it). */
static lane_runtime *from_json(const lane_program *p, json_t *root, const char *path, FILE *err) {
  json_t *now = json_object_get(root, "now_ms");
  if (!json_is_integer(now) || json_integer_value(now) < 0) {
    fprintf(err, "lane: %s: not a runtime snapshot (no \"now_ms\")\n", path);
    json_decref(root);
    return NULL;
  }
  lane_runtime_options opt = {0};
  opt.frozen = 1;   /* the runtime keeps its own copy of the time */
  opt.frozen_ms = (uint64_t)json_integer_value(now);
  json_t *o = json_object_get(root, "options");   /* the live runtime's own */
  opt.window_ms = (uint32_t)json_integer_value(json_object_get(o, "window_ms"));
  opt.min_samples = (uint32_t)json_integer_value(json_object_get(o, "min_samples"));
  opt.breaker_failures = (uint32_t)json_integer_value(json_object_get(o, "breaker_failures"));
  opt.breaker_cooldown_ms = (uint32_t)json_integer_value(json_object_get(o, "breaker_cooldown_ms"));
  opt.budget_keys = (uint32_t)json_integer_value(json_object_get(o, "budget_keys"));
  lane_error e;
  lane_runtime *rt = lane_runtime_new_with(p, &opt, &e);
  size_t i;
  json_t *v;
  int bad = !rt;
  if (!rt) fprintf(err, "lane: %s\n", e.message);
  json_array_foreach(json_object_get(root, "models"), i, v)
    if (!bad && set_model(p, rt, v, path, err)) bad = 1;
  json_array_foreach(json_object_get(root, "budgets"), i, v)
    if (!bad && set_budget(p, rt, v, path, err)) bad = 1;
  json_decref(root);
  if (bad) { lane_runtime_free(rt); return NULL; }
  return rt;
}

/*
 * replay.c -- `lane replay POLICY LOG...` and `lane diff OLD NEW
 * TRAFFIC...` (replay.h).
 *
 * Each line of the inputs is one JSON record: a decision record (vm/log.c:
 * the request and the live view the decision read), an outcome record
 * (joined to its decision by id), or a plain request object (traffic
 * without state: a captured request stream or a converted trace). A
 * decision is made again on a runtime whose clock, model figures and
 * budget spend are set to what the record says, so the policy that wrote
 * the log decides exactly as it did; any difference is reported with its
 * file and line. A line that is not a usable record is reported the same
 * way and skipped; the rest is still read.
 *
 * State is set lazily: a model's figures are written to the runtime only
 * when they differ from what it holds, so a log whose figures move slowly
 * replays at the speed of parsing and deciding.
 */
#include "replay.h"
#include "bc.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- one program's side of the replay ---- */

typedef struct side {
  const lane_program *p;
  const char         *name;
  lane_runtime       *rt;
  uint64_t            clock;     /* what the runtime's clock reads now */
  lane_live_stats    *fresh;     /* each model's figures in a fresh runtime */
  lane_live_stats    *cur;       /* what the runtime holds now */
  char                synth[LANE_MAX_FIELDS][48]; /* stand-ins for hashed fields */
  struct { char s[40]; int bucket; } *cache;  /* STAND_CACHE stand-ins found */
} side;

#define STAND_CACHE 4096

static uint64_t side_clock(void *ctx) { return ((const side *)ctx)->clock; }

/* Opens side s (zeroed by the caller); side_close frees it either way. */
static int side_open(side *s, const lane_program *p, const char *name, FILE *err) {
  s->p = p;
  s->name = name;
  s->clock = 1;
  lane_runtime_options o;
  memset(&o, 0, sizeof o);
  o.clock = side_clock;
  o.clock_ctx = s;
  o.budget_keys = 1u << 24;   /* every logged key its own slot, as set */
  lane_error e;
  s->rt = lane_runtime_new_with(p, &o, &e);
  int n = lane_model_count(p);
  s->cache = calloc(STAND_CACHE, sizeof *s->cache);
  s->fresh = calloc((size_t)n + 1, sizeof *s->fresh);
  s->cur = calloc((size_t)n + 1, sizeof *s->cur);
  if (!s->rt || !s->fresh || !s->cur || !s->cache) {
    fprintf(err, "lane: %s: %s\n", name, s->rt ? "out of memory" : e.message);
    return -1;
  }
  for (int m = 0; m < n; m++) lane_model_stats(s->rt, m, &s->fresh[m]);
  memcpy(s->cur, s->fresh, (size_t)n * sizeof *s->cur);
  return 0;
}

static void side_close(side *s) {
  lane_runtime_free(s->rt);
  free(s->cache);
  free(s->fresh);
  free(s->cur);
}

static int same_stats(const lane_live_stats *a, const lane_live_stats *b) {
  return a->p50 == b->p50 && a->p95 == b->p95 && a->error_rate == b->error_rate &&
         a->samples == b->samples && a->state == b->state && a->until_ms == b->until_ms;
}

static int breaker_of(const char *s) {
  return !s ? -1 : !strcmp(s, "closed") ? LANE_BREAKER_CLOSED : !strcmp(s, "open")
         ? LANE_BREAKER_OPEN : !strcmp(s, "half_open") ? LANE_BREAKER_HALF_OPEN : -1;
}

/* Sets the runtime to the record's live view: clock, every model's
 * figures (the logged ones, a fresh runtime's for the others) and the
 * spend each budget read for the request's key. NULL state: a fresh view
 * at the record's time. Returns NULL, or what is wrong with the state. */
static const char *side_state(side *s, json_t *state, uint64_t ts, const lane_request *r) {
  json_t *models = json_object_get(state, "models"), *budgets = json_object_get(state, "budgets");
  json_t *clock = json_object_get(state, "clock");
  s->clock = json_is_integer(clock) ? (uint64_t)json_integer_value(clock) : ts ? ts : 1;
  for (int m = 0; m < lane_model_count(s->p); m++) {
    lane_live_stats want = s->fresh[m];
    json_t *j = models ? json_object_get(models, lane_model_name(s->p, m)) : NULL;
    if (j) {
      want.p50 = json_number_value(json_object_get(j, "p50"));
      want.p95 = json_number_value(json_object_get(j, "p95"));
      want.error_rate = json_number_value(json_object_get(j, "error_rate"));
      want.samples = (uint64_t)json_integer_value(json_object_get(j, "samples"));
      want.state = breaker_of(json_string_value(json_object_get(j, "breaker")));
      want.until_ms = (uint64_t)json_integer_value(json_object_get(j, "until"));
      if (want.state < 0) return "a model's breaker is not closed, open or half_open";
    }
    if (same_stats(&want, &s->cur[m])) continue;
    if (lane_runtime_set_model_stats(s->rt, m, &want) != LANE_OK)
      return "a model's figures cannot be set";
    s->cur[m] = want;
  }
  for (int b = 0; b < lane_budget_count(s->p); b++) {
    json_t *j = budgets ? json_object_get(budgets, lane_budget_name(s->p, b)) : NULL;
    double spent = j ? json_number_value(json_object_get(j, "spent")) : 0;
    uint64_t h = lane_budget_key_of(s->p, b, r);   /* 0: no key, the decision read $0 */
    if (h && lane_runtime_set_spend(s->rt, b, h, spent) != LANE_OK)
      return "a budget's spend cannot be set";
  }
  return NULL;
}

/* The request of a record for this side's program: fields it does not
 * declare are left out (a new policy may declare others). The strings
 * stay the JSON's. Returns NULL, or what is wrong. */
/* A stand-in for a sensitive field the log holds as a hash: the hash and
 * the first suffix that puts it in the logged bucket, so bucket() and
 * splits decide as they did (the same user, the same stand-in). */
static const char *stand_in(side *s, char *buf, const char *hash, int bucket) {
  size_t p = strlen(hash);
  if (p > 24) p = 24;
  /* the same user is the same stand-in: found once */
  uint64_t h = bc_fnv1a64(hash, p, (uint64_t)bucket) % STAND_CACHE;
  if (s->cache[h].bucket == bucket + 1 && !strncmp(s->cache[h].s, hash, p) &&
      s->cache[h].s[p] == '~') {   /* copied: the request borrows buf until decided */
    memcpy(buf, s->cache[h].s, sizeof s->cache[h].s);
    return buf;
  }
  memcpy(buf, hash, p);
  buf[p] = '~';
  for (int k = 0; k < 100000; k++) {
    char digits[12];
    int nd = 0;
    for (int v = k; nd == 0 || v; v /= 10) digits[nd++] = (char)('0' + v % 10);
    for (int i = 0; i < nd; i++) buf[p + 1 + i] = digits[nd - 1 - i];
    buf[p + 1 + nd] = 0;
    if (lane_bucket(buf, p + 1 + (size_t)nd) == bucket) {
      memcpy(s->cache[h].s, buf, p + 2 + (size_t)nd);
      s->cache[h].bucket = bucket + 1;
      return buf;
    }
  }
  return hash;
}

const char *replay_set_list(lane_request *r, int f, const void *arr) {
  const json_t *a = arr;
  if (!json_is_array(a)) return "a list field holds another type (a JSON array is a list)";
  size_t n = json_array_size(a);
  lane_value *items = calloc(n + 1, sizeof *items);
  if (!items) return "out of memory";
  const char *why = NULL;
  for (size_t i = 0; i < n && !why; i++) {
    const json_t *v = json_array_get(a, i);
    if (!json_is_string(v)) why = "a list(string) holds a value that is not a string";
    else {
      items[i].s.p = json_string_value(v);
      items[i].s.n = json_string_length(v);
    }
  }
  if (!why) {
    int rc = lane_set_list(r, f, items, n);
    if (rc == LANE_ELIMIT) why = "a list is too large (an item past LANE_MAX_STRING, more than "
                                 "LANE_MAX_MAP_ENTRIES items, the list past LANE_MAX_MAP, or "
                                 "the request's text room)";
    else if (rc != LANE_OK) why = "a list is refused";
  }
  free(items);
  return why;
}

const char *replay_set_map(lane_request *r, int f, const void *obj) {
  const json_t *o = obj;
  if (!json_is_object(o)) return "a map field holds another type (a JSON object is a map)";
  const char *unit = lane_field_unit(r->prog, f);   /* "map(string, int)" */
  if (!unit || strncmp(unit, "map(string, ", 12)) return "a map of an unknown value type";
  const char *vt = unit + 12;
  int str = !strncmp(vt, "string", 6), flag = !strncmp(vt, "bool", 4);
  int whole = !strncmp(vt, "int", 3) || !strncmp(vt, "tokens", 6), uns = !strncmp(vt, "uint", 4);
  size_t n = json_object_size(o), i = 0;
  lane_entry *e = calloc(n + 1, sizeof *e);
  if (!e) return "out of memory";
  const char *k;
  json_t *v;
  const char *why = NULL;
  json_object_foreach((json_t *)o, k, v) {
    e[i].key = k;
    e[i].klen = strlen(k);
    if (str && json_is_string(v)) {
      e[i].v.s.p = json_string_value(v);
      e[i].v.s.n = json_string_length(v);
    } else if (flag && json_is_boolean(v)) {
      e[i].v.i = json_is_true(v);
    } else if ((whole || uns) && json_is_integer(v) && (!uns || json_integer_value(v) >= 0)) {
      e[i].v.i = json_integer_value(v);
    } else if (!str && !flag && !whole && !uns && json_is_number(v)) {
      e[i].v.d = json_number_value(v);
    } else {
      why = "a map's value is not of the map's value type";
      break;
    }
    i++;
  }
  if (!why) {
    int rc = lane_set_map(r, f, e, n);
    if (rc == LANE_ELIMIT) why = "a map is too large (a key or string past LANE_MAX_STRING, "
                                 "the map past LANE_MAX_MAP, or the request's text room)";
    else if (rc != LANE_OK) why = "a map is refused";
  }
  free(e);
  return why;
}

static const char *side_request(side *s, json_t *obj, json_t *bks, lane_request *r) {
  const char *k;
  json_t *v;
  lane_request_init(r, s->p);
  json_object_foreach(obj, k, v) {
    int f = lane_field(s->p, k), rc = LANE_OK;
    if (f < 0 || json_is_null(v)) continue;
    switch (lane_field_type(s->p, f)) {
    case LANE_T_MAP: case LANE_T_LIST: {
      const char *why = lane_field_type(s->p, f) == LANE_T_MAP ? replay_set_map(r, f, v)
                                                               : replay_set_list(r, f, v);
      if (why) return why;
      break;
    }
    case LANE_T_STRING: {
      if (!json_is_string(v)) return "a string field holds another type";
      json_t *b = json_object_get(bks, k);
      if (lane_field_sensitive(s->p, f) && json_is_integer(b)) {
        const char *x = stand_in(s, s->synth[f], json_string_value(v),
                                 (int)json_integer_value(b));
        rc = lane_set_str(r, f, x, strlen(x));
        break;
      }
      rc = lane_set_str(r, f, json_string_value(v), json_string_length(v));
      break;
    }
    case LANE_T_BOOL:
      if (!json_is_boolean(v)) return "a bool field holds another type";
      rc = lane_set_bool(r, f, json_is_true(v));
      break;
    case LANE_T_INT:
      if (!json_is_integer(v)) return "an int field holds another type";
      rc = lane_set_int(r, f, json_integer_value(v));
      break;
    case LANE_T_UINT:
      if (!json_is_integer(v) || json_integer_value(v) < 0) return "a uint field holds another type";
      rc = lane_set_uint(r, f, (uint64_t)json_integer_value(v));
      break;
    default:
      if (!json_is_number(v)) return "a number field holds another type";
      rc = lane_set_double(r, f, json_number_value(v));
      break;
    }
    if (rc != LANE_OK) return "a field's value is refused (too long, or out of range)";
  }
  return NULL;
}

/* ---- what is kept per decision ---- */

typedef struct rec {
  uint32_t file, line;
  uint32_t id;              /* offset of its id in the id arena, or UINT32_MAX */
  int16_t  model[2];        /* primary per side (0 new, 1 old), -1 none */
  int16_t  rule[2];
  double   cost[2];
  double   p95;             /* the logged p95 of the logged primary, or nan */
  double   lat[2];          /* per side: the p95 its primary had (logged, else the
                               policy's prior), or nan without a decision */
  double   actual;          /* outcome: actual cost, or nan */
  double   latency;         /* outcome: latency, or nan */
  double   score;           /* outcome: score, or nan */
  uint64_t ts;              /* the record's time, ms; 0 unknown */
} rec;

typedef struct outcome {
  uint32_t id;              /* offset in the id arena */
  double   cost, latency, score;
} outcome;

typedef struct run {
  const replay_opts *o;
  side        s[2];
  int         nsides;
  const char *const *files;
  rec        *recs;
  size_t      nrecs, caprecs;
  outcome    *outs;
  size_t      nouts, capouts;
  char       *ids;          /* id strings, NUL-terminated, back to back */
  size_t      nids, capids;
  uint32_t   *idx;          /* hash of decision ids -> rec index + 1 */
  size_t      capidx;
  long        malformed, mismatched, checked, nomatch[2];
  int         nomem;
  int        *new_of;       /* per model of the old program: the new one's of the
                               same name, or -2 when it has none */
  int        *old_of;       /* per model of the new program: the old one's, or -1 */
} run;

static void *grow(void *p, size_t *cap, size_t need, size_t size, int *nomem) {
  if (need <= *cap) return p;
  size_t nc = *cap ? *cap * 2 : 1024;
  while (nc < need) nc *= 2;
  void *q = realloc(p, nc * size);
  if (!q) { *nomem = 1; return NULL; }
  *cap = nc;
  return q;
}

static uint32_t add_id(run *R, const char *id) {
  size_t n = strlen(id) + 1;
  char *p = grow(R->ids, &R->capids, R->nids + n, 1, &R->nomem);
  if (!p) return UINT32_MAX;
  R->ids = p;
  if (R->nids + n > UINT32_MAX) { R->nomem = 1; return UINT32_MAX; }
  memcpy(R->ids + R->nids, id, n);
  uint32_t at = (uint32_t)R->nids;
  R->nids += n;
  return at;
}

static uint64_t hash_str(const char *s) { return bc_fnv1a64(s, strlen(s), BC_FNV_OFFSET); }

/* Indexes decisions by id (open addressing, at most half full). */
static void index_ids(run *R) {
  R->capidx = 16;
  while (R->capidx < R->nrecs * 2) R->capidx *= 2;
  R->idx = calloc(R->capidx, sizeof *R->idx);
  if (!R->idx) { R->nomem = 1; return; }
  for (size_t i = 0; i < R->nrecs; i++) {
    if (R->recs[i].id == UINT32_MAX) continue;
    size_t k = hash_str(R->ids + R->recs[i].id) & (R->capidx - 1);
    while (R->idx[k]) k = (k + 1) & (R->capidx - 1);
    R->idx[k] = (uint32_t)i + 1;
  }
}

static rec *find_id(const run *R, const char *id) {
  if (!R->idx) return NULL;
  for (size_t k = hash_str(id) & (R->capidx - 1); R->idx[k]; k = (k + 1) & (R->capidx - 1)) {
    rec *r = &R->recs[R->idx[k] - 1];
    if (!strcmp(R->ids + r->id, id)) return r;
  }
  return NULL;
}

/* ---- one line ---- */

static void bad(run *R, uint32_t file, uint32_t line, const char *why) {
  R->malformed++;
  if (R->malformed <= 20)
    fprintf(R->o->err, "lane: %s:%u: %s; skipped\n", R->files[file], (unsigned)line, why);
}

static int names_eq(const lane_program *p, json_t *arr, const int *v, int n) {
  if (!json_is_array(arr) || (int)json_array_size(arr) != n) return 0;
  for (int i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, (size_t)i));
    if (!s || strcmp(s, lane_model_name(p, v[i]))) return 0;
  }
  return 1;
}

/* Whether side 0's decision is the logged one; else says how it differs. */
static int reproduces(const lane_program *p, json_t *j, int st, const lane_decision *d,
                      char *why, size_t n) {
  const char *status = json_string_value(json_object_get(j, "status"));
  const char *now = st == LANE_OK ? "ok" : st == LANE_ENOMATCH ? "nomatch" : "error";
  if (!status || strcmp(status, now)) {
    snprintf(why, n, "logged %s, replayed %s", status ? status : "(no status)", now);
    return 0;
  }
  if (st != LANE_OK) return 1;
  json_int_t rule = json_integer_value(json_object_get(j, "rule"));
  if (rule != d->rule) {
    snprintf(why, n, "logged rule %lld, replayed rule %d", (long long)rule, d->rule);
    return 0;
  }
  if (!names_eq(p, json_object_get(j, "candidates"), d->candidates, d->ncandidates)) {
    snprintf(why, n, "rule %d: other candidates (replayed primary %s)", d->rule,
             lane_model_name(p, d->candidates[0]));
    return 0;
  }
  if (!names_eq(p, json_object_get(j, "shadows"), d->shadows, d->nshadows)) {
    snprintf(why, n, "rule %d: other shadows", d->rule);
    return 0;
  }
  double cost = json_number_value(json_object_get(j, "cost"));
  if (cost != d->cost) {
    snprintf(why, n, "expected cost logged %.17g, replayed %.17g", cost, d->cost);
    return 0;
  }
  return 1;
}

static int model_index(const lane_program *p, const char *name) {
  for (int m = 0; m < lane_model_count(p); m++)
    if (!strcmp(lane_model_name(p, m), name)) return m;
  return -1;
}

/* The models of the two programs matched by name, once: decisions are
 * compared by name, as the programs may list models differently. */
static int match_models(run *R) {
  const lane_program *np = R->s[0].p, *op = R->s[1].p;
  int nn = lane_model_count(np), no = lane_model_count(op);
  R->new_of = malloc(((size_t)no + 1) * sizeof *R->new_of);
  R->old_of = malloc(((size_t)nn + 1) * sizeof *R->old_of);
  if (!R->new_of || !R->old_of) return -1;
  for (int m = 0; m < no; m++) {
    int k = model_index(np, lane_model_name(op, m));
    R->new_of[m] = k >= 0 ? k : -2;
  }
  for (int m = 0; m < nn; m++) R->old_of[m] = model_index(op, lane_model_name(np, m));
  return 0;
}

static void one_line(run *R, uint32_t file, uint32_t line, const char *text, size_t len) {
  json_error_t je;
  json_t *j = json_loadb(text, len, 0, &je);
  if (!json_is_object(j)) {
    char why[200];
    snprintf(why, sizeof why, "not a JSON object (%s)", j ? "another JSON value" : je.text);
    bad(R, file, line, why);
    json_decref(j);
    return;
  }
  const char *type = json_string_value(json_object_get(j, "type"));
  if (type && !strcmp(type, "outcome")) {
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id) { bad(R, file, line, "an outcome without an id"); json_decref(j); return; }
    /* a failed attempt, or a shadow's call (a copy sent to compare a
     * model, never the answer): not joined */
    if (json_is_false(json_object_get(j, "final")) || json_is_true(json_object_get(j, "shadow"))) {
      json_decref(j);
      return;
    }
    outcome *o = grow(R->outs, &R->capouts, R->nouts + 1, sizeof *R->outs, &R->nomem);
    if (!o) { json_decref(j); return; }
    R->outs = o;
    json_t *sc = json_object_get(j, "score");
    R->outs[R->nouts++] = (outcome){add_id(R, id),
                                    json_number_value(json_object_get(j, "cost")),
                                    json_number_value(json_object_get(j, "latency_ms")),
                                    json_is_number(sc) ? json_number_value(sc) : NAN};
    json_decref(j);
    return;
  }
  int logged = type && !strcmp(type, "decision"), wrapped = type && !strcmp(type, "request");
  if (type && !logged && !wrapped) {
    bad(R, file, line, "an unknown record type");
    json_decref(j);
    return;
  }
  json_t *req = type ? json_object_get(j, "request") : j;
  const char *route = type ? json_string_value(json_object_get(j, "route")) : NULL;
  if (!route) route = R->o->route;
  if (!json_is_object(req)) { bad(R, file, line, "a decision without a request"); json_decref(j); return; }
  rec *rs = grow(R->recs, &R->caprecs, R->nrecs + 1, sizeof *R->recs, &R->nomem);
  if (!rs) { json_decref(j); return; }
  R->recs = rs;
  rec *r = &R->recs[R->nrecs];
  memset(r, 0, sizeof *r);
  r->file = file;
  r->line = line;
  r->id = UINT32_MAX;
  r->p95 = r->actual = r->latency = r->score = r->lat[0] = r->lat[1] = NAN;
  const char *id = logged ? json_string_value(json_object_get(j, "id")) : NULL;
  uint64_t ts = (uint64_t)json_integer_value(json_object_get(j, "ts"));
  for (int k = 0; k < R->nsides; k++) {
    side *s = &R->s[k];
    lane_request q;
    lane_decision d;
    const char *why = side_request(s, req, json_object_get(j, "buckets"), &q);
    int ri = route ? lane_route(s->p, route) : lane_route_count(s->p) == 1 ? 0 : -1;
    if (!why && ri < 0)
      why = route ? "the policy has no such route" : "the record names no route and the policy has several (--route)";
    if (!why) why = side_state(s, logged ? json_object_get(j, "state") : NULL, ts, &q);
    if (why) {
      char msg[300];
      snprintf(msg, sizeof msg, "%s (%s)", why, s->name);
      bad(R, file, line, msg);
      json_decref(j);
      return;
    }
    int st = lane_decide_route(s->rt, ri, &q, &d);
    for (int i = 0; i < d.ncandidates; i++)   /* a probe taken: the runtime moved on */
      if (d.probed >> i & 1) memset(&s->cur[d.candidates[i]], 0xff, sizeof s->cur[0]);
    r->model[k] = (int16_t)(st == LANE_OK ? d.candidates[0] : -1);
    r->lat[k] = st == LANE_OK ? s->cur[d.candidates[0]].p95 : NAN;
    r->rule[k] = (int16_t)(st == LANE_OK ? d.rule : 0);
    r->cost[k] = st == LANE_OK ? d.cost : 0;
    if (st != LANE_OK) R->nomatch[k]++;
    if (logged) {   /* the side that wrote the log must reproduce it */
      const char *pol = json_string_value(json_object_get(j, "policy"));
      char want[20];
      snprintf(want, sizeof want, "%016llx", (unsigned long long)lane_program_checksum(s->p));
      if (pol && !strcmp(pol, want)) {
        char diff[300];
        R->checked++;
        if (!reproduces(s->p, j, st, &d, diff, sizeof diff)) {
          R->mismatched++;
          if (R->mismatched <= 20)
            fprintf(R->o->err, "lane: %s:%u: decision %s not reproduced by %s: %s\n",
                    R->files[file], (unsigned)line, id ? id : "?", s->name, diff);
        }
      }
    }
  }
  r->ts = ts;
  if (id) r->id = add_id(R, id);
  json_t *primary = json_array_get(json_object_get(j, "candidates"), 0);
  json_t *ms = json_object_get(json_object_get(j, "state"), "models");
  json_t *pm = json_is_string(primary) ? json_object_get(ms, json_string_value(primary)) : NULL;
  if (pm) r->p95 = json_number_value(json_object_get(pm, "p95"));
  R->nrecs++;
  json_decref(j);
}

/* ---- reading ---- */

static int read_file(run *R, uint32_t file) {
  const char *path = R->files[file];
  FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "r");
  if (!f) { fprintf(R->o->err, "lane: %s: cannot read\n", path); return -1; }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  uint32_t no = 0;
  int tty = R->o->progress && isatty(fileno(R->o->err));
  while ((n = getline(&line, &cap, f)) >= 0 && !R->nomem) {
    no++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    size_t k = 0;
    while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t')) k++;
    if (k == (size_t)n) continue;
    one_line(R, file, no, line, (size_t)n);
    if (tty && no % 100000 == 0) fprintf(R->o->err, "\rreplay: %s: %u lines", path, (unsigned)no);
  }
  if (tty && no >= 100000) fprintf(R->o->err, "\r%*s\r", 60, "");
  int err = ferror(f);
  free(line);
  if (f != stdin) fclose(f);
  if (err) { fprintf(R->o->err, "lane: %s: read error\n", path); return -1; }
  return 0;
}

/* ---- the report ---- */

typedef struct tally { long n, changed; double cost, actual, expected_with_actual; long nactual;
                       double score; long nscore; } tally;

/* Decisions by how much their expected cost changed, most first; ties
 * in input order. */
typedef struct chg { double d; size_t i; } chg;

static int cmp_change(const void *pa, const void *pb) {
  const chg *a = pa, *b = pb;
  return a->d < b->d ? 1 : a->d > b->d ? -1 : (a->i > b->i) - (a->i < b->i);
}

/* The top changed decisions, sorted (n of them), or NULL. */
static chg *most_changed(const run *R, size_t *n) {
  chg *v = malloc((R->nrecs + 1) * sizeof *v);
  *n = 0;
  if (!v) return NULL;
  for (size_t i = 0; i < R->nrecs; i++) {
    const rec *r = &R->recs[i];
    if (r->cost[0] != r->cost[1]) v[(*n)++] = (chg){fabs(r->cost[0] - r->cost[1]), i};
  }
  qsort(v, *n, sizeof *v, cmp_change);
  if (*n > (size_t)R->o->top) *n = (size_t)R->o->top;
  return v;
}

static double pct(double a, double b) { return b != 0 ? 100.0 * a / b : 0; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(run *R, int *gate_failed) {
  FILE *out = R->o->out;
  const lane_program *p = R->s[0].p;
  int nm = lane_model_count(p), json = !strcmp(R->o->format, "json");
  int two = R->nsides == 2, maxrule = 0;
  for (size_t i = 0; i < R->nrecs; i++)
    for (int k = 0; k < R->nsides; k++)
      if (R->recs[i].rule[k] > maxrule) maxrule = R->recs[i].rule[k];
  tally *bym = calloc((size_t)nm + 1, sizeof *bym), *byr = calloc((size_t)maxrule + 1, sizeof *byr);
  tally *oldm = calloc((size_t)lane_model_count(two ? R->s[1].p : p) + 1, sizeof *oldm);
  double total[2] = {0, 0};
  long changed = 0;
  double *lat = malloc((2 * R->nrecs + 1) * sizeof *lat);
  size_t nlat = 0;
  if (!bym || !byr || !oldm || !lat) { R->nomem = 1; goto out; }
  for (size_t i = 0; i < R->nrecs; i++) {
    rec *r = &R->recs[i];
    /* changed: another primary (by name; none is -1) or another cost */
    int ch = two && (r->model[0] != (r->model[1] >= 0 ? R->new_of[r->model[1]] : -1) ||
                     r->cost[0] != r->cost[1]);
    changed += ch;
    for (int k = 0; k < R->nsides; k++) total[k] += r->cost[k];
    if (r->model[0] >= 0) {
      tally *t = &bym[r->model[0]];
      t->n++; t->changed += ch; t->cost += r->cost[0];
      if (!isnan(r->actual)) { t->actual += r->actual; t->expected_with_actual += r->cost[0]; t->nactual++; }
      if (!isnan(r->score)) { t->score += r->score; t->nscore++; }
    }
    if (two && r->model[1] >= 0) { oldm[r->model[1]].n++; oldm[r->model[1]].cost += r->cost[1]; }
    tally *t = &byr[r->rule[0]];
    t->n++; t->changed += ch; t->cost += r->cost[0];
    double l = !isnan(r->latency) ? r->latency : r->p95;
    if (!isnan(l)) lat[nlat++] = l;
  }
  qsort(lat, nlat, sizeof *lat, cmp_double);
  double p95med[2] = {NAN, NAN};
  for (int k = 0; k < R->nsides; k++) {
    size_t m = 0;
    for (size_t i = 0; i < R->nrecs; i++)
      if (!isnan(R->recs[i].lat[k])) lat[nlat + m++] = R->recs[i].lat[k];
    qsort(lat + nlat, m, sizeof *lat, cmp_double);
    if (m) p95med[k] = lat[nlat + m / 2];
  }
  double n = (double)R->nrecs;
  double share = pct((double)changed, n), up = pct(total[0] - total[1], total[1]);
  if (two && R->o->max_changed >= 0 && share > R->o->max_changed) *gate_failed = 1;
  if (two && R->o->max_cost_increase >= 0 && up > R->o->max_cost_increase) *gate_failed = 1;
  if (json) {
    json_t *o = json_object(), *rules = json_array(), *models = json_array();
    json_object_set_new(o, "policy", json_string(R->s[0].name));
    if (two) json_object_set_new(o, "against", json_string(R->s[1].name));
    json_object_set_new(o, "decisions", json_integer((json_int_t)R->nrecs));
    json_object_set_new(o, "skipped_lines", json_integer(R->malformed));
    json_object_set_new(o, "reproduced_checked", json_integer(R->checked));
    json_object_set_new(o, "not_reproduced", json_integer(R->mismatched));
    json_object_set_new(o, "no_decision", json_integer(R->nomatch[0]));
    json_object_set_new(o, "expected_cost", json_real(total[0]));
    if (two) {
      json_object_set_new(o, "old_expected_cost", json_real(total[1]));
      json_object_set_new(o, "cost_change_percent", json_real(up));
      json_object_set_new(o, "changed", json_integer(changed));
      json_object_set_new(o, "changed_percent", json_real(share));
      json_object_set_new(o, "gate_failed", json_boolean(*gate_failed));
    }
    if (nlat) json_object_set_new(o, "latency_median_ms", json_real(lat[nlat / 2]));
    if (!isnan(p95med[0])) json_object_set_new(o, "primary_p95_median_ms", json_real(p95med[0]));
    if (two && !isnan(p95med[1]))
      json_object_set_new(o, "old_primary_p95_median_ms", json_real(p95med[1]));
    for (int k = 0; k <= maxrule; k++) {
      if (!byr[k].n) continue;
      json_t *e = json_object();
      json_object_set_new(e, "rule", json_integer(k));
      json_object_set_new(e, "decisions", json_integer(byr[k].n));
      json_object_set_new(e, "expected_cost", json_real(byr[k].cost));
      if (two) json_object_set_new(e, "changed", json_integer(byr[k].changed));
      json_array_append_new(rules, e);
    }
    for (int m = 0; m < nm; m++) {
      if (!bym[m].n) continue;
      json_t *e = json_object();
      json_object_set_new(e, "model", json_string(lane_model_name(p, m)));
      json_object_set_new(e, "decisions", json_integer(bym[m].n));
      json_object_set_new(e, "expected_cost", json_real(bym[m].cost));
      if (two) json_object_set_new(e, "changed", json_integer(bym[m].changed));
      if (bym[m].nactual) {
        json_object_set_new(e, "outcomes", json_integer(bym[m].nactual));
        json_object_set_new(e, "actual_cost", json_real(bym[m].actual));
        json_object_set_new(e, "actual_over_expected",
                            json_real(bym[m].expected_with_actual > 0
                                          ? bym[m].actual / bym[m].expected_with_actual : 0));
      }
      if (bym[m].nscore) json_object_set_new(e, "mean_score", json_real(bym[m].score / (double)bym[m].nscore));
      json_array_append_new(models, e);
    }
    json_object_set_new(o, "rules", rules);
    json_object_set_new(o, "models", models);
    if (two) {
      json_t *top = json_array();
      size_t nt;
      chg *ix = most_changed(R, &nt);
      if (!ix) R->nomem = 1;
      if (ix) {
        for (size_t i = 0; i < nt; i++) {
          const rec *r = &R->recs[ix[i].i];
          json_t *e = json_object();
          json_object_set_new(e, "source", json_sprintf("%s:%u", R->files[r->file], (unsigned)r->line));
          if (r->id != UINT32_MAX) json_object_set_new(e, "id", json_string(R->ids + r->id));
          json_object_set_new(e, "old_model", r->model[1] >= 0 ? json_string(lane_model_name(R->s[1].p, r->model[1])) : json_null());
          json_object_set_new(e, "new_model", r->model[0] >= 0 ? json_string(lane_model_name(p, r->model[0])) : json_null());
          json_object_set_new(e, "old_cost", json_real(r->cost[1]));
          json_object_set_new(e, "new_cost", json_real(r->cost[0]));
          json_array_append_new(top, e);
        }
        free(ix);
      }
      json_object_set_new(o, "most_changed", top);
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    if (s) fprintf(out, "%s\n", s);
    free(s);
    json_decref(o);
    goto out;
  }
  fprintf(out, "%s: %zu decisions", R->s[0].name, R->nrecs);
  if (R->malformed) fprintf(out, " (%ld lines skipped)", R->malformed);
  fputc('\n', out);
  if (R->checked)
    fprintf(out, "reproduced: %ld of %ld logged decisions%s\n", R->checked - R->mismatched,
            R->checked, R->mismatched ? "  <- NOT all: see the messages above" : "");
  fprintf(out, "no decision: %ld (%.1f%%)\n", R->nomatch[0], pct((double)R->nomatch[0], n));
  if (two)
    fprintf(out, "expected cost: $%.6f (was $%.6f with %s: %+.1f%%)\n"
            "changed: %ld of %zu decisions (%.1f%%)\n", total[0], total[1], R->s[1].name, up,
            changed, R->nrecs, share);
  else
    fprintf(out, "expected cost: $%.6f\n", total[0]);
  if (nlat) fprintf(out, "latency, median: %.0f ms (%s)\n", lat[nlat / 2],
                    "outcomes, else the primary's logged p95");
  if (two && !isnan(p95med[0]) && !isnan(p95med[1]))
    fprintf(out, "p95 of the primary, median: %.0f ms (was %.0f ms)\n", p95med[0], p95med[1]);
  else if (!isnan(p95med[0]))
    fprintf(out, "p95 of the primary, median: %.0f ms\n", p95med[0]);
  fprintf(out, "\n%-24s %10s  %6s  %13s%s\n", "by rule:", "decisions", "share", "expected cost",
          two ? "  changed" : "");
  for (int k = 0; k <= maxrule; k++) {
    if (!byr[k].n) continue;
    char name[32];
    snprintf(name, sizeof name, k ? "rule %d" : "no decision", k);
    fprintf(out, "  %-22s %10ld  %5.1f%%  $%12.6f", name, byr[k].n, pct((double)byr[k].n, n), byr[k].cost);
    if (two) fprintf(out, "  %5.1f%%", pct((double)byr[k].changed, (double)byr[k].n));
    fputc('\n', out);
  }
  int w = 22;
  for (int m = 0; m < nm; m++)
    if (bym[m].n && (int)strlen(lane_model_name(p, m)) > w) w = (int)strlen(lane_model_name(p, m));
  fprintf(out, "\n%-*s %10s  %6s  %13s  %s\n", w + 2, "by model (primary):", "decisions", "share",
          "expected cost", two ? "changed   was" : "actual/expected  score");
  for (int m = 0; m < nm; m++) {
    int om = two ? R->old_of[m] : -1;
    if (!bym[m].n && !(om >= 0 && oldm[om].n)) continue;
    fprintf(out, "  %-*s %10ld  %5.1f%%  $%12.6f", w, lane_model_name(p, m), bym[m].n,
            pct((double)bym[m].n, n), bym[m].cost);
    if (two) {
      fprintf(out, "  %5.1f%%  %5.1f%%", pct((double)bym[m].changed, (double)bym[m].n),
              om >= 0 ? pct((double)oldm[om].n, n) : 0.0);
    } else {
      if (bym[m].nactual) fprintf(out, "  %15.3f", bym[m].expected_with_actual > 0
                                                    ? bym[m].actual / bym[m].expected_with_actual : 0);
      else fprintf(out, "  %15s", "-");
      if (bym[m].nscore) fprintf(out, "  %5.3f", bym[m].score / (double)bym[m].nscore);
    }
    fputc('\n', out);
  }
  if (two) {
    size_t nt;
    chg *ix = most_changed(R, &nt);
    if (!ix) R->nomem = 1;
    if (ix) {
      if (nt) fprintf(out, "\nmost changed in cost:\n");
      for (size_t i = 0; i < nt; i++) {
        const rec *r = &R->recs[ix[i].i];
        fprintf(out, "  %s:%u  %s $%.6f -> %s $%.6f\n", R->files[r->file], (unsigned)r->line,
                r->model[1] >= 0 ? lane_model_name(R->s[1].p, r->model[1]) : "(none)", r->cost[1],
                r->model[0] >= 0 ? lane_model_name(p, r->model[0]) : "(none)", r->cost[0]);
      }
      free(ix);
    }
    if (*gate_failed)
      fprintf(out, "\ngate failed:%s%s\n",
              R->o->max_changed >= 0 && share > R->o->max_changed ? " too many decisions changed" : "",
              R->o->max_cost_increase >= 0 && up > R->o->max_cost_increase ? " expected cost rose too much" : "");
  }
out:
  free(bym);
  free(byr);
  free(oldm);
  free(lat);
}

/* ---- the chart: cost and model mix over time, SVG ---- */

#define CH_BINS 48
#define CH_W 760
#define CH_H 220
#define CH_X 70        /* left margin */
#define CH_TOP 40

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b"};

static int bin_of(const rec *r, size_t i, size_t n, uint64_t t0, uint64_t t1) {
  double f = t1 > t0 ? (double)(r->ts - t0) / (double)(t1 - t0) : (double)i / (double)(n ? n : 1);
  int b = (int)(f * CH_BINS);
  return b < 0 ? 0 : b >= CH_BINS ? CH_BINS - 1 : b;
}

static void polyline(FILE *f, const double *v, double lo, double hi, int y0, const char *color,
                     int dashed) {
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
          dashed ? " stroke-dasharray=\"5,4\"" : "");
  for (int b = 0; b < CH_BINS; b++) {
    double x = CH_X + (b + 0.5) * (CH_W - CH_X - 20) / (double)CH_BINS;
    double y = y0 + CH_H - (hi > lo ? (v[b] - lo) / (hi - lo) : 0) * CH_H;
    fprintf(f, "%.1f,%.1f ", x, y);
  }
  fprintf(f, "\"/>\n");
}

static void axis(FILE *f, int y0, const char *title, const char *top, const char *bottom) {
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", CH_X, y0 - 10, title);
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n",
          CH_X, y0, CH_W - CH_X - 20, CH_H);
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", CH_X - 6, y0 + 12, top);
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", CH_X - 6, y0 + CH_H,
          bottom);
}

/* Writes the chart to path: the expected cost so far, and the share of
 * the most used models per time bin; the new policy solid, the old one
 * dashed. 0, or -1 when the file cannot be written. */
static int chart(const run *R, const char *path) {
  const lane_program *p = R->s[0].p;
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  uint64_t t0 = UINT64_MAX, t1 = 0;
  for (size_t i = 0; i < R->nrecs; i++) {
    if (R->recs[i].ts < t0) t0 = R->recs[i].ts;
    if (R->recs[i].ts > t1) t1 = R->recs[i].ts;
  }
  double cost[2][CH_BINS] = {{0}}, count[CH_BINS] = {0};
  for (size_t i = 0; i < R->nrecs; i++) {
    int b = bin_of(&R->recs[i], i, R->nrecs, t0, t1);
    count[b]++;
    for (int k = 0; k < R->nsides; k++) cost[k][b] += R->recs[i].cost[k];
  }
  double top = 0;
  for (int k = 0; k < R->nsides; k++) {
    for (int b = 1; b < CH_BINS; b++) cost[k][b] += cost[k][b - 1];
    if (cost[k][CH_BINS - 1] > top) top = cost[k][CH_BINS - 1];
  }
  /* the most used models, by name across both policies */
  int nm = lane_model_count(p), pick[6], npick = 0;
  long *uses = calloc((size_t)nm + 1, sizeof *uses);
  if (!uses) { fclose(f); return -1; }
  for (size_t i = 0; i < R->nrecs; i++) {
    if (R->recs[i].model[0] >= 0) uses[R->recs[i].model[0]]++;
    if (R->nsides == 2 && R->recs[i].model[1] >= 0) {
      int m = R->new_of[R->recs[i].model[1]];
      if (m >= 0) uses[m]++;
    }
  }
  while (npick < 6) {
    int best = -1;
    for (int m = 0; m < nm; m++)
      if (uses[m] > 0 && (best < 0 || uses[m] > uses[best])) best = m;
    if (best < 0) break;
    pick[npick++] = best;
    uses[best] = 0;
  }
  free(uses);
  int h = CH_TOP + 2 * (CH_H + 60) + 20 + 18 * (npick + 1);
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          CH_W, h);
  char a[64], b[64] = "";
  snprintf(a, sizeof a, "$%.4g", top);
  axis(f, CH_TOP, "expected cost so far (solid: new, dashed: old)", a, "$0");
  for (int k = 0; k < R->nsides; k++) polyline(f, cost[k], 0, top, CH_TOP, "#333", k == 1);
  int y2 = CH_TOP + CH_H + 60;
  axis(f, y2, "share of decisions per model (solid: new, dashed: old)", "100%", "0%");
  for (int i = 0; i < npick; i++) {
    for (int k = 0; k < R->nsides; k++) {
      double share[CH_BINS] = {0};
      int m = k ? R->old_of[pick[i]] : pick[i];
      for (size_t r = 0; m >= 0 && r < R->nrecs; r++)
        if (R->recs[r].model[k] == m) share[bin_of(&R->recs[r], r, R->nrecs, t0, t1)]++;
      for (int bb = 0; bb < CH_BINS; bb++) share[bb] = count[bb] ? share[bb] / count[bb] : 0;
      if (m >= 0) polyline(f, share, 0, 1, y2, palette[i], k == 1);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", CH_X,
            y2 + CH_H + 40 + 18 * i, palette[i], lane_model_name(p, pick[i]));
  }
  if (t1 > t0) {
    for (int k = 0; k < 2; k++) {
      time_t t = (time_t)((k ? t1 : t0) / 1000);
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(k ? b : a, 64, "%Y-%m-%d %H:%M UTC", &tm);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
            CH_X, y2 + CH_H + 18, a, CH_W - 20, y2 + CH_H + 18, b);
  }
  fprintf(f, "</svg>\n");
  return fclose(f) == 0 ? 0 : -1;
}

int replay_run(const replay_opts *o, const lane_program *prog, const char *name,
               const lane_program *old, const char *oldname, const char *const *files,
               int nfiles) {
  run R;
  memset(&R, 0, sizeof R);
  R.o = o;
  R.files = files;
  R.nsides = old ? 2 : 1;
  int rc = 0, gate = 0;
  if (side_open(&R.s[0], prog, name, o->err) || (old && side_open(&R.s[1], old, oldname, o->err)))
    rc = 2;
  else if (old && match_models(&R)) {
    fprintf(o->err, "lane: out of memory\n");
    rc = 2;
  }
  for (int i = 0; !rc && i < nfiles; i++)
    if (read_file(&R, (uint32_t)i)) rc = 2;
  if (!rc && !R.nomem) {
    index_ids(&R);
    for (size_t i = 0; i < R.nouts; i++) {
      rec *r = find_id(&R, R.ids + R.outs[i].id);
      if (!r) continue;
      r->actual = R.outs[i].cost;
      r->latency = R.outs[i].latency;
      r->score = R.outs[i].score;
    }
  }
  if (R.nomem) { fprintf(o->err, "lane: out of memory\n"); rc = 2; }
  if (!rc && R.malformed > 20)
    fprintf(o->err, "lane: %ld lines skipped in all (the first 20 shown)\n", R.malformed);
  if (!rc && R.mismatched > 20)
    fprintf(o->err, "lane: %ld decisions not reproduced in all (the first 20 shown)\n", R.mismatched);
  if (!rc && !R.nrecs) { fprintf(o->err, "lane: no decision or request to replay\n"); rc = 2; }
  if (!rc) {
    report(&R, &gate);
    if (o->chart && chart(&R, o->chart) != 0) {
      fprintf(o->err, "lane: %s: cannot write the chart\n", o->chart);
      rc = 2;
    }
    if (R.nomem) { fprintf(o->err, "lane: out of memory\n"); rc = 2; }
    else if (!rc && (R.mismatched || gate)) rc = 1;
  }
  side_close(&R.s[0]);
  if (old) side_close(&R.s[1]);
  free(R.recs);
  free(R.outs);
  free(R.ids);
  free(R.idx);
  free(R.new_of);
  free(R.old_of);
  return rc;
}

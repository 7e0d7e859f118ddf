/*
 * crosscheck.c -- `lane eval` against an independent computation of the
 * expected cost, straight from the shared LiteLLM catalog (issue 3).
 *
 *   crosscheck LANE CATALOG.json STDLIB_DIR WORK_DIR
 *
 * The generated modules STDLIB_DIR/providers/NAME.lane name each model's
 * catalog key in the comment line above its `model` block; that is the
 * only thing read from them. Prices come from the catalog itself, with
 * jansson (json_number_value), and the cost is computed here with the
 * formula of lang/README.md, "Expected cost":
 *
 *   in = input_tokens, out = max_output_tokens (negative -> 0),
 *   cached = cached_tokens clamped to 0..in,
 *   tier = the entry has input_cost_per_token_above_<N>k_tokens (lowest N)
 *          and in > N*1000,
 *   p_in     = tier && long_input > 0 ? long_input : input
 *   p_cached = tier && long_cached > 0 ? long_cached
 *            : cache_read > 0 ? cache_read : p_in
 *   p_out    = reasoning && reasoning_output > 0 ? reasoning_output
 *            : tier && long_output > 0 ? long_output : output
 *   cost     = ((double)(in - cached) * p_in + (double)cached * p_cached)
 *              + (double)out * p_out
 *
 * Build with -ffp-contract=off. A few hundred models (every one with a
 * long-context tier, a reasoning price or a cached-input price, plus a
 * sample of the rest from every module) each get some twenty requests:
 * plain, cached (some, all, more than the input), input at the tier
 * threshold and one above, reasoning on/off/absent, zero and negative
 * output, large counts and a few pseudo-random ones. One policy with one
 * route per model (`otherwise -> module.ident`) is compiled once and
 * `lane eval` runs once per route with all that model's request files;
 * every printed "cost" (17 significant digits, read with strtod) must
 * equal the expected double bit for bit.
 *
 * CROSSCHECK_MUTATE=ulp|ge|noclamp|noreason perturbs the expected side
 * (one ulp up; tier at in >= N*1000; no cached clamp; reasoning price
 * ignored) to show that the test goes red; never set in `make test`.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "tap.h"

/* ---- models ---- */

typedef struct model {
  char   *module;       /* "openai" */
  char   *ident;        /* "gpt_5_mini" */
  char   *key;          /* catalog key */
  json_t *e;            /* catalog entry (borrowed) */
  /* prices from the catalog, dollars per token */
  double  input, output, cache_read, reasoning_output;
  long long above;      /* long-context threshold in tokens, 0 = none */
  double  long_input, long_output, long_cached;
  int     selected;
  int     nreq, req[32];   /* indices into the request table */
} model;

static model *models;
static int nmodels, capmodels;

/* ---- requests ---- */

typedef struct request {
  int       has_in, has_out, has_cached;
  long long in, out, cached;
  int       reasoning;  /* -1 absent, 0 false, 1 true */
} request;

static request *reqs;
static int nreqs, capreqs;

static int req_eq(const request *a, const request *b) {
  return a->has_in == b->has_in && a->has_out == b->has_out &&
         a->has_cached == b->has_cached && a->in == b->in && a->out == b->out &&
         a->cached == b->cached && a->reasoning == b->reasoning;
}

/* Index of r in the table, added if new (linear search with a last-hit
 * shortcut is plenty for a few thousand entries). */
static int req_add(const request *r) {
  for (int i = nreqs - 1; i >= 0; i--)
    if (req_eq(&reqs[i], r)) return i;
  if (nreqs == capreqs) {
    capreqs = capreqs ? capreqs * 2 : 256;
    reqs = realloc(reqs, (size_t)capreqs * sizeof *reqs);
    if (!reqs) bail("out of memory");
  }
  reqs[nreqs] = *r;
  return nreqs++;
}

static void req_fmt(const request *r, char *buf, size_t n) {
  size_t o = 0;
  o += (size_t)snprintf(buf + o, n - o, "{");
  const char *sep = "";
  if (r->has_in) { o += (size_t)snprintf(buf + o, n - o, "%s\"input_tokens\": %lld", sep, r->in); sep = ", "; }
  if (o < n && r->has_out) { o += (size_t)snprintf(buf + o, n - o, "%s\"max_output_tokens\": %lld", sep, r->out); sep = ", "; }
  if (o < n && r->has_cached) { o += (size_t)snprintf(buf + o, n - o, "%s\"cached_tokens\": %lld", sep, r->cached); sep = ", "; }
  if (o < n && r->reasoning >= 0) { o += (size_t)snprintf(buf + o, n - o, "%s\"reasoning\": %s", sep, r->reasoning ? "true" : "false"); }
  if (o < n) snprintf(buf + o, n - o, "}");
}

/* ---- the independent formula ---- */

enum { T_LONG = 1, T_CACHED = 2, T_REASON = 4, T_AT_THRESHOLD = 8, T_LONG_CACHED = 16,
       T_LONG_OUTPUT = 32, T_CLAMPED = 64, T_REASON_DISTINCT = 128 };

static const char *mutate;

static double expected_cost(const model *m, const request *r, unsigned *tiers) {
  long long in = r->has_in ? r->in : 0;
  long long out = r->has_out ? r->out : 0;
  long long cached = r->has_cached ? r->cached : 0;
  int reasoning = r->reasoning == 1;
  unsigned t = 0;
  if (out < 0) out = 0;
  if (cached < 0) cached = 0;
  if (cached > in && strcmp(mutate, "noclamp") != 0) { cached = in; t |= T_CLAMPED; }
  if (!strcmp(mutate, "noreason")) reasoning = 0;
  int tier = m->above > 0 && (!strcmp(mutate, "ge") ? in >= m->above : in > m->above);
  if (m->above > 0 && in == m->above) t |= T_AT_THRESHOLD;
  double p_in = tier && m->long_input > 0 ? m->long_input : m->input;
  double p_cached = tier && m->long_cached > 0 ? m->long_cached
                  : m->cache_read > 0 ? m->cache_read : p_in;
  double p_out = reasoning && m->reasoning_output > 0 ? m->reasoning_output
               : tier && m->long_output > 0 ? m->long_output : m->output;
  double cost = ((double)(in - cached) * p_in + (double)cached * p_cached) + (double)out * p_out;
  if (tier) t |= T_LONG;
  if (cached > 0 && (m->cache_read > 0 || (tier && m->long_cached > 0))) t |= T_CACHED;
  if (tier && cached > 0 && m->long_cached > 0) t |= T_LONG_CACHED;
  if (reasoning && m->reasoning_output > 0 && out > 0) {
    t |= T_REASON;
    if (m->reasoning_output != (tier && m->long_output > 0 ? m->long_output : m->output))
      t |= T_REASON_DISTINCT;
  }
  else if (tier && m->long_output > 0 && out > 0) t |= T_LONG_OUTPUT;
  if (!strcmp(mutate, "ulp")) cost = nextafter(cost, INFINITY);
  *tiers = t;
  return cost;
}

/* ---- reading the catalog ---- */

static double price(json_t *e, const char *k) {
  return json_number_value(json_object_get(e, k));   /* 0 if absent or null */
}

static void catalog_prices(model *m) {
  json_t *e = m->e;
  const char *k;
  json_t *v;
  m->input = price(e, "input_cost_per_token");
  m->output = price(e, "output_cost_per_token");
  m->cache_read = price(e, "cache_read_input_token_cost");
  m->reasoning_output = price(e, "output_cost_per_reasoning_token");
  /* The tier: the lowest N with input_cost_per_token_above_<N>k_tokens. */
  long long best = 0;
  json_object_foreach(e, k, v) {
    const char *pre = "input_cost_per_token_above_";
    size_t pl = strlen(pre);
    if (strncmp(k, pre, pl) != 0) continue;
    char *end;
    long long n = strtoll(k + pl, &end, 10);
    if (end != k + pl && n > 0 && !strcmp(end, "k_tokens") && (!best || n < best)) best = n;
  }
  m->above = best * 1000;
  if (best) {
    char key[96];
    snprintf(key, sizeof key, "input_cost_per_token_above_%lldk_tokens", best);
    m->long_input = price(e, key);
    snprintf(key, sizeof key, "output_cost_per_token_above_%lldk_tokens", best);
    m->long_output = price(e, key);
    snprintf(key, sizeof key, "cache_read_input_token_cost_above_%lldk_tokens", best);
    m->long_cached = price(e, key);
  }
}

/* ---- reading the generated modules: "# <key>" then "model <ident> {" ---- */

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (!d) bail("out of memory");
  return memcpy(d, s, n);
}

/* Reads one module; returns the count of model blocks, *orphans counts
 * blocks without a key comment just above them. */
static int scan_module(const char *path, const char *module, json_t *cat, int *orphans,
                       int *missing) {
  FILE *f = fopen(path, "r");
  if (!f) { diag("cannot read %s: %s", path, strerror(errno)); return -1; }
  char *line = NULL, *prev = NULL;
  size_t cap = 0;
  ssize_t len;
  int blocks = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (!strncmp(line, "model ", 6)) {
      blocks++;
      char ident[256];
      if (sscanf(line + 6, "%255[A-Za-z0-9_]", ident) != 1 || !prev || strncmp(prev, "# ", 2)) {
        if (++*orphans <= 5) diag("%s: no '# <catalog key>' line above '%s'", path, line);
      } else {
        json_t *e = json_object_get(cat, prev + 2);
        if (!json_is_object(e)) {
          if (++*missing <= 5) diag("%s: catalog key '%s' (%s) is not in the catalog", path, prev + 2, ident);
        } else {
          if (nmodels == capmodels) {
            capmodels = capmodels ? capmodels * 2 : 512;
            models = realloc(models, (size_t)capmodels * sizeof *models);
            if (!models) bail("out of memory");
          }
          model *m = &models[nmodels++];
          memset(m, 0, sizeof *m);
          m->module = xstrdup(module);
          m->ident = xstrdup(ident);
          m->key = xstrdup(prev + 2);
          m->e = e;
          catalog_prices(m);
        }
      }
    }
    free(prev);
    prev = xstrdup(line);
  }
  free(prev);
  free(line);
  fclose(f);
  return blocks;
}

/* ---- requests for one model ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void) {   /* splitmix64: deterministic across machines */
  uint64_t z = (rng += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void add(model *m, long long in, long long out, int has_cached, long long cached,
                int reasoning) {
  request r = {1, 1, has_cached, in, out, has_cached ? cached : 0, reasoning};
  if (m->nreq < (int)(sizeof m->req / sizeof *m->req)) m->req[m->nreq++] = req_add(&r);
}

static void make_requests(model *m) {
  long long T = m->above ? m->above : 200000;   /* a tier-like size for every model */
  add(m, 1200, 300, 0, 0, -1);                  /* plain */
  add(m, 50000, 1000, 1, 20000, -1);            /* some cached */
  add(m, 8000, 500, 1, 8000, -1);               /* all cached */
  add(m, 3000, 200, 1, 5000, -1);               /* more cached than input: clamped */
  add(m, T, 800, 1, 1000, -1);                  /* exactly at the threshold */
  add(m, T + 1, 800, 1, 1000, -1);              /* one above */
  add(m, T, 4000, 0, 0, 1);                     /* at the threshold, reasoning */
  add(m, T + 1, 4000, 1, T / 2, 1);             /* above, cached, reasoning */
  add(m, T + 1, 4000, 1, T + 7, 0);             /* above, all cached (clamped) */
  add(m, 10000, 20000, 0, 0, 1);                /* reasoning on */
  add(m, 10000, 20000, 0, 0, 0);                /* reasoning off */
  add(m, 777, 0, 0, 0, -1);                     /* zero output */
  add(m, 100, -5, 1, -10, 1);                   /* negative output and cached -> 0 */
  add(m, 900000, 65536, 1, 123457, 1);          /* large, cached, reasoning */
  add(m, 900000, 65536, 0, 0, -1);              /* large */
  add(m, 123457, 98765, 1, 3, 0);               /* odd counts */
  add(m, 2000000000LL, 1000000, 1, 1, 1);       /* very large */
  {                                             /* only input_tokens */
    request r = {1, 0, 0, 5, 0, 0, -1};
    m->req[m->nreq++] = req_add(&r);
  }
  for (int i = 0; i < 3; i++) {                 /* pseudo-random around the threshold */
    long long in = (long long)(next_rand() % (uint64_t)(2 * T + 2));
    long long out = (long long)(next_rand() % 200001);
    long long cached = (long long)(next_rand() % (uint64_t)(in + 2001)) - 1000;
    add(m, in, out, 1, cached, (int)(next_rand() % 3) - 1);
  }
}

/* ---- running lane ---- */

/* A shell command line being built. */
typedef struct cmdline { char *s; size_t len, cap; } cmdline;

static void raw(cmdline *c, const char *t) {
  size_t n = strlen(t);
  if (c->len + n + 1 > c->cap) {
    c->cap = (c->len + n + 1) * 2;
    c->s = realloc(c->s, c->cap);
    if (!c->s) bail("out of memory");
  }
  memcpy(c->s + c->len, t, n + 1);
  c->len += n;
}

/* Appends " 'arg'", quoted for sh. */
static void arg(cmdline *c, const char *a) {
  raw(c, c->len ? " '" : "'");
  for (const char *p = a; *p; p++) {
    char ch[2] = {*p, 0};
    raw(c, *p == '\'' ? "'\\''" : ch);
  }
  raw(c, "'");
}

static void show_file(const char *path, int max) {
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (max-- > 0 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    diag("  %s", line);
  }
  fclose(f);
}

/* Per-tier tallies. */
static const struct { unsigned bit; const char *name; } tier_names[] = {
  {T_LONG, "long-context tier in force (in > threshold)"},
  {T_AT_THRESHOLD, "input exactly at the threshold (base prices)"},
  {T_CACHED, "cached tokens at a cache-read price"},
  {T_LONG_CACHED, "cached tokens at the long-context cache-read price"},
  {T_LONG_OUTPUT, "output at the long-context output price"},
  {T_REASON, "output at the reasoning price"},
  {T_REASON_DISTINCT, "  of which the reasoning price differs from the output price"},
  {T_CLAMPED, "cached tokens clamped to the input"},
};
#define NTIERS ((int)(sizeof tier_names / sizeof *tier_names))

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: crosscheck LANE CATALOG.json STDLIB_DIR WORK_DIR\n");
    return 2;
  }
  const char *lane = argv[1], *catalog = argv[2], *stdlib = argv[3], *work = argv[4];
  mutate = getenv("CROSSCHECK_MUTATE") ? getenv("CROSSCHECK_MUTATE") : "";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);

  plan(10 + 13);

  /* 1: the catalog */
  json_error_t jerr;
  json_t *cat = json_load_file(catalog, 0, &jerr);
  if (!ok(json_is_object(cat), "the shared catalog parses with jansson (%s)", catalog)) {
    diag("%s:%d: %s", catalog, jerr.line, jerr.text);
    bail("no catalog");
  }
  if (*mutate) diag("CROSSCHECK_MUTATE=%s: the expected side is perturbed, expect failures", mutate);

  /* 2: the generated modules */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/providers", stdlib);
  DIR *d = opendir(dir);
  if (!d) bail("cannot open %s: %s", dir, strerror(errno));
  char *names[64];
  int nnames = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n > 5 && !strcmp(de->d_name + n - 5, ".lane") && nnames < 64)
      names[nnames++] = xstrdup(de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)nnames, sizeof *names, by_name);
  int blocks = 0, orphans = 0, missing = 0;
  int mod_first[64], mod_count[64];
  for (int i = 0; i < nnames; i++) {
    char path[4400], module[256];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(module, sizeof module, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
    mod_first[i] = nmodels;
    int b = scan_module(path, module, cat, &orphans, &missing);
    mod_count[i] = nmodels - mod_first[i];
    if (b > 0) blocks += b;
  }
  ok(nnames == 13 && blocks > 0 && orphans == 0 && missing == 0 && nmodels == blocks,
     "%d modules, %d model blocks, each under a '# <key>' comment naming a catalog entry "
     "(%d without, %d not in the catalog)", nnames, blocks, orphans, missing);

  /* Choose: every model with a tier, a reasoning price or a cache-read
   * price, and every 8th other model of each module (at least 2). */
  int nsel = 0, nlong = 0, nreason = 0, ncache = 0;
  for (int i = 0; i < nnames; i++) {
    int other = 0, taken_other = 0;
    for (int j = mod_first[i]; j < mod_first[i] + mod_count[i]; j++) {
      model *m = &models[j];
      int special = m->above > 0 || m->reasoning_output > 0 || m->cache_read > 0;
      if (special) m->selected = 1;
      else if (other++ % 8 == 0 || taken_other < 2) { m->selected = 1; taken_other++; }
      if (!m->selected) continue;
      nsel++;
      nlong += m->above > 0;
      nreason += m->reasoning_output > 0;
      ncache += m->cache_read > 0;
      make_requests(m);
    }
  }
  /* 3 */
  ok(nsel >= 300, "%d models chosen (at least 300): %d with a long-context tier, "
     "%d with a reasoning price, %d with a cache-read price", nsel, nlong, nreason, ncache);

  /* The request files and the policy. */
  mkdir(work, 0777);
  char path[4400];
  for (int i = 0; i < nreqs; i++) {
    char body[512];
    snprintf(path, sizeof path, "%s/q%d.json", work, i);
    req_fmt(&reqs[i], body, sizeof body);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", body) < 0 || fclose(f) != 0) bail("cannot write %s", path);
  }
  snprintf(path, sizeof path, "%s/all.lane", work);
  FILE *pf = fopen(path, "w");
  if (!pf) bail("cannot write %s", path);
  fprintf(pf, "# generated by tests/cost/crosscheck.c: one route per model\n");
  for (int i = 0; i < nnames; i++) fprintf(pf, "import \"std/providers/%s\"\n", models[mod_first[i]].module);
  for (int j = 0; j < nmodels; j++)
    if (models[j].selected)
      fprintf(pf, "route r%d { otherwise -> %s.%s }\n", j, models[j].module, models[j].ident);
  if (fclose(pf) != 0) bail("cannot write %s", path);

  /* 4: compile once */
  cmdline cmd = {0};
  char lanec[4400], errf[4400];
  snprintf(lanec, sizeof lanec, "%s/all.lanec", work);
  snprintf(errf, sizeof errf, "%s/lane.err", work);
  arg(&cmd, lane);
  arg(&cmd, "compile");
  arg(&cmd, path);
  arg(&cmd, "-o");
  arg(&cmd, lanec);
  raw(&cmd, " 2>");
  arg(&cmd, errf);
  int rc = system(cmd.s);
  if (!ok(rc == 0, "lane compile: one policy, %d routes, all 13 modules imported", nsel)) {
    show_file(errf, 20);
    bail("the policy does not compile");
  }

  /* 5..: eval once per route, compare every pair */
  long pairs = 0, bad = 0, shown = 0, evalfail = 0, nanc = 0, wrongmodel = 0;
  long tier_pairs[NTIERS] = {0}, tier_bad[NTIERS] = {0}, base_pairs = 0;
  long mod_pairs[64] = {0}, mod_bad[64] = {0}, mod_models[64] = {0};
  char *line = NULL;
  size_t lcap = 0;
  for (int i = 0; i < nnames; i++) {
    for (int j = mod_first[i]; j < mod_first[i] + mod_count[i]; j++) {
      model *m = &models[j];
      if (!m->selected) continue;
      mod_models[i]++;
      char route[32], want[600];
      snprintf(route, sizeof route, "r%d", j);
      snprintf(want, sizeof want, "%s.%s", m->module, m->ident);
      cmd.len = 0;
      arg(&cmd, lane);
      arg(&cmd, "eval");
      arg(&cmd, lanec);
      arg(&cmd, "--route");
      arg(&cmd, route);
      for (int k = 0; k < m->nreq; k++) {
        snprintf(path, sizeof path, "%s/q%d.json", work, m->req[k]);
        arg(&cmd, path);
      }
      raw(&cmd, " 2>");
      arg(&cmd, errf);
      FILE *p = popen(cmd.s, "r");
      if (!p) bail("popen: %s", strerror(errno));
      int k = 0;
      ssize_t len;
      while ((len = getline(&line, &lcap, p)) >= 0) {
        if (k >= m->nreq) { k++; continue; }
        const request *r = &reqs[m->req[k]];
        unsigned tiers;
        double want_cost = expected_cost(m, r, &tiers);
        double got = NAN;
        const char *c = strstr(line, "\"cost\":");
        if (c) got = strtod(c + 7, NULL);
        json_t *o = json_loads(line, 0, NULL);
        const char *prim = json_string_value(json_object_get(o, "primary"));
        int model_ok = prim && !strcmp(prim, want);
        int same = !isnan(got) && memcmp(&got, &want_cost, sizeof got) == 0;
        wrongmodel += !model_ok;
        nanc += isnan(got);
        pairs++;
        mod_pairs[i]++;
        if (!(tiers & (T_LONG | T_CACHED | T_REASON | T_LONG_OUTPUT))) base_pairs++;
        for (int t = 0; t < NTIERS; t++)
          if (tiers & tier_names[t].bit) { tier_pairs[t]++; tier_bad[t] += !same; }
        if (!same || !model_ok) {
          bad++;
          mod_bad[i]++;
          if (shown++ < 8) {
            char body[512];
            req_fmt(r, body, sizeof body);
            diag("MISMATCH %s (catalog '%s') route %s q%d.json %s", want, m->key, route,
                 m->req[k], body);
            diag("  expected %a (%.17g)", want_cost, want_cost);
            diag("       got %a (%.17g)%s%s", got, got, model_ok ? "" : " primary ",
                 model_ok ? "" : (prim ? prim : "(none)"));
          }
        }
        json_decref(o);
        k++;
      }
      int st = pclose(p);
      if (st != 0 || k != m->nreq) {
        evalfail++;
        if (k < m->nreq) {          /* requests without a decision count as wrong */
          long miss = m->nreq - k;
          bad += miss;
          mod_bad[i] += miss;
          pairs += miss;
          mod_pairs[i] += miss;
        }
        if (evalfail <= 3) {
          diag("lane eval --route %s (%s): exit status %d, %d lines for %d requests", route,
               want, WIFEXITED(st) ? WEXITSTATUS(st) : -1, k, m->nreq);
          show_file(errf, 10);
        }
      }
    }
  }
  free(line);
  free(cmd.s);

  /* Per-module results (tests 5..17). */
  for (int i = 0; i < nnames && i < 13; i++)
    ok(mod_pairs[i] > 0 && mod_bad[i] == 0, "%-12s %3ld models, %5ld pairs, %ld disagree",
       models[mod_first[i]].module, mod_models[i], mod_pairs[i], mod_bad[i]);
  for (int i = nnames; i < 13; i++) ok(0, "module %d of 13 is missing", i + 1);

  diag("pairs by price tier (a pair may count under several):");
  diag("  %6ld at base prices only (no tier, cache-read or reasoning price applies)", base_pairs);
  for (int t = 0; t < NTIERS; t++)
    diag("  %6ld %s, %ld disagree", tier_pairs[t], tier_names[t].name, tier_bad[t]);

  /* 18.. */
  ok(pairs >= 2000, "%ld (model, request) pairs checked (at least 2,000) over %d models, "
     "%d distinct requests", pairs, nsel, nreqs);
  int covered = base_pairs >= 20;
  /* In the 2026-07-24 catalog every reasoning price equals the output
   * price, so T_REASON_DISTINCT is reported but not required. */
  for (int t = 0; t < NTIERS; t++)
    if (tier_names[t].bit != T_REASON_DISTINCT) covered &= tier_pairs[t] >= 20;
  ok(covered, "every price tier is exercised by at least 20 pairs");
  ok(evalfail == 0, "every lane eval exits 0 with one decision per request (%ld failed)", evalfail);
  ok(wrongmodel == 0, "every decision names the route's model (%ld do not)", wrongmodel);
  ok(nanc == 0, "no cost is missing or NaN (%ld)", nanc);
  ok(bad == 0, "lane eval agrees with the catalog to the last bit on every pair "
     "(%ld of %ld disagree)", bad, pairs);

  clock_gettime(CLOCK_MONOTONIC, &t1);
  diag("%ld pairs, %d models, %.1f s", pairs, nsel, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

  for (int j = 0; j < nmodels; j++) { free(models[j].module); free(models[j].ident); free(models[j].key); }
  free(models);
  free(reqs);
  for (int i = 0; i < nnames; i++) free(names[i]);
  json_decref(cat);
  return done_testing();
}

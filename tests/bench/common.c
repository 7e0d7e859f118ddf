/*
 * common.c -- the benchmark's shared data: the reference catalog as a C
 * table, the trace samples, the seeded request generator, the timer.
 *
 * The catalog rows are copies of stdlib/providers/ entries (prices,
 * limits, capabilities) with our own quality and latency ratings; the
 * same models are declared in reference.lane, and bench_main checks each
 * row against the compiled program before timing anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* name, provider, id, input, output, cached_input, reasoning_output,
 * long_above, long_input, long_output, long_cached_input, context,
 * max_output, caps, quality, p50, p95 -- in reference.lane's order. */
const bmodel bench_models[BENCH_NMODELS] = {
  {"claude_haiku_4_5", "anthropic", "claude-haiku-4-5", 1e-6, 5e-6, 0.1e-6, 0, 0, 0, 0, 0, 200000, 64000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.86, 700, 1600},
  {"claude_sonnet_4_5", "anthropic", "claude-sonnet-4-5", 3e-6, 15e-6, 0.3e-6, 0, 200000, 6e-6, 22.5e-6, 0.6e-6, 200000, 64000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.93, 1800, 4500},
  {"claude_opus_4_5", "anthropic", "claude-opus-4-5", 5e-6, 25e-6, 0.5e-6, 0, 0, 0, 0, 0, 200000, 64000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.95, 2500, 6000},
  {"claude_3_haiku_20240307", "anthropic", "claude-3-haiku-20240307", 0.25e-6, 1.25e-6, 0.03e-6, 0, 0, 0, 0, 0, 200000, 4096, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING, 0.68, 400, 1000},
  {"gpt_5", "openai", "gpt-5", 1.25e-6, 10e-6, 0.125e-6, 0, 0, 0, 0, 0, 272000, 128000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.92, 2500, 7000},
  {"gpt_5_mini", "openai", "gpt-5-mini", 0.25e-6, 2e-6, 0.025e-6, 0, 0, 0, 0, 0, 272000, 128000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.84, 1200, 3000},
  {"gpt_5_nano", "openai", "gpt-5-nano", 0.05e-6, 0.4e-6, 0.005e-6, 0, 0, 0, 0, 0, 272000, 128000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.70, 600, 1400},
  {"gpt_4_1", "openai", "gpt-4.1", 2e-6, 8e-6, 0.5e-6, 0, 0, 0, 0, 0, 1047576, 32768, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING | CAP_PDF, 0.88, 900, 2200},
  {"gpt_4_1_mini", "openai", "gpt-4.1-mini", 0.4e-6, 1.6e-6, 0.1e-6, 0, 0, 0, 0, 0, 1047576, 32768, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING | CAP_PDF, 0.78, 500, 1100},
  {"gpt_4_1_nano", "openai", "gpt-4.1-nano", 0.1e-6, 0.4e-6, 0.025e-6, 0, 0, 0, 0, 0, 1047576, 32768, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING | CAP_PDF, 0.66, 300, 700},
  {"gpt_4o", "openai", "gpt-4o", 2.5e-6, 10e-6, 1.25e-6, 0, 0, 0, 0, 0, 128000, 16384, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING | CAP_PDF, 0.85, 800, 2000},
  {"gpt_4o_mini", "openai", "gpt-4o-mini", 0.15e-6, 0.6e-6, 0.075e-6, 0, 0, 0, 0, 0, 128000, 16384, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_CACHING | CAP_PDF, 0.74, 450, 1050},
  {"o4_mini", "openai", "o4-mini", 1.1e-6, 4.4e-6, 0.275e-6, 0, 0, 0, 0, 0, 200000, 100000, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.87, 3000, 9000},
  {"gpt_4", "openai", "gpt-4", 30e-6, 60e-6, 0, 0, 0, 0, 0, 0, 8192, 4096, CAP_TOOLS | CAP_CACHING, 0.72, 1500, 4000},
  {"gpt_3_5_turbo", "openai", "gpt-3.5-turbo", 0.5e-6, 1.5e-6, 0, 0, 0, 0, 0, 0, 16385, 4096, CAP_TOOLS | CAP_CACHING, 0.60, 400, 900},
  {"gemini_2_5_pro", "gemini", "gemini-2.5-pro", 1.25e-6, 10e-6, 0.125e-6, 0, 200000, 2.5e-6, 15e-6, 0.25e-6, 1048576, 65535, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_AUDIO | CAP_PDF, 0.91, 3000, 8000},
  {"gemini_2_5_flash", "gemini", "gemini-2.5-flash", 0.3e-6, 2.5e-6, 0.03e-6, 2.5e-6, 0, 0, 0, 0, 1048576, 65535, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.83, 600, 1300},
  {"gemini_2_5_flash_lite", "gemini", "gemini-2.5-flash-lite", 0.1e-6, 0.4e-6, 0.01e-6, 0.4e-6, 0, 0, 0, 0, 1048576, 65535, CAP_VISION | CAP_TOOLS | CAP_JSON | CAP_REASONING | CAP_CACHING | CAP_PDF, 0.72, 350, 800},
  {"mistral_large_latest", "mistral", "mistral-large-latest", 0.5e-6, 1.5e-6, 0, 0, 0, 0, 0, 0, 262144, 262144, CAP_VISION | CAP_TOOLS | CAP_JSON, 0.84, 1000, 2600},
  {"mistral_small_latest", "mistral", "mistral-small-latest", 0.06e-6, 0.18e-6, 0, 0, 0, 0, 0, 0, 131072, 131072, CAP_VISION | CAP_TOOLS | CAP_JSON, 0.71, 350, 850},
  {"codestral_latest", "mistral", "codestral-latest", 1e-6, 3e-6, 0, 0, 0, 0, 0, 0, 32000, 8191, CAP_JSON, 0.80, 300, 750},
  {"deepseek_chat", "deepseek", "deepseek-chat", 0.28e-6, 0.42e-6, 0.028e-6, 0, 0, 0, 0, 0, 131072, 8192, CAP_TOOLS | CAP_JSON | CAP_CACHING, 0.85, 1500, 4000},
  {"deepseek_reasoner", "deepseek", "deepseek-reasoner", 0.28e-6, 0.42e-6, 0.028e-6, 0, 0, 0, 0, 0, 131072, 65536, CAP_JSON | CAP_REASONING | CAP_CACHING, 0.89, 6000, 15000},
  {"llama_3_1_8b_instant", "groq", "llama-3.1-8b-instant", 0.05e-6, 0.08e-6, 0, 0, 0, 0, 0, 0, 128000, 8192, CAP_TOOLS, 0.58, 120, 300},
  {"llama_3_3_70b_versatile", "groq", "llama-3.3-70b-versatile", 0.59e-6, 0.79e-6, 0, 0, 0, 0, 0, 0, 128000, 32768, CAP_TOOLS, 0.77, 250, 600},
  {"gemma_7b_it", "groq", "gemma-7b-it", 0.05e-6, 0.08e-6, 0, 0, 0, 0, 0, 0, 8192, 8192, CAP_TOOLS, 0.52, 150, 350},
  {"grok_4", "xai", "grok-4", 3e-6, 15e-6, 0, 0, 0, 0, 0, 0, 256000, 256000, CAP_TOOLS | CAP_CACHING, 0.90, 3000, 8000},
  {"command_r_plus", "cohere", "command-r-plus", 2.5e-6, 10e-6, 0, 0, 0, 0, 0, 0, 128000, 4096, CAP_TOOLS, 0.78, 900, 2400},
};

/* ---- traces -------------------------------------------------------- */

typedef struct trace { int32_t *in, *out; int n; } trace;
static trace T_code, T_conv;

static int load_one(const char *dir, const char *name, trace *t) {
  char path[4096], line[256];
  FILE *f;
  int cap = 0;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!(f = fopen(path, "r"))) { fprintf(stderr, "bench: cannot open %s\n", path); return -1; }
  t->n = 0;
  while (fgets(line, sizeof line, f)) {
    long a, b;
    if (sscanf(line, "%ld,%ld", &a, &b) != 2) continue;   /* the header */
    if (t->n == cap) {
      cap = cap ? 2 * cap : 4096;
      t->in = realloc(t->in, (size_t)cap * sizeof *t->in);
      t->out = realloc(t->out, (size_t)cap * sizeof *t->out);
      if (!t->in || !t->out) { fclose(f); return -1; }
    }
    t->in[t->n] = (int32_t)a;
    t->out[t->n] = (int32_t)b;
    t->n++;
  }
  fclose(f);
  if (t->n == 0) { fprintf(stderr, "bench: %s has no rows\n", path); return -1; }
  return 0;
}

int bench_traces_load(const char *dir) {
  return load_one(dir, "trace_code.csv", &T_code) || load_one(dir, "trace_conv.csv", &T_conv)
           ? -1 : 0;
}

/* ---- generator ----------------------------------------------------- */

uint64_t bench_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t bench_below(uint64_t *s, uint32_t n) {
  return (uint32_t)(((bench_rand(s) >> 32) * (uint64_t)n) >> 32);
}

void bench_trace_pick(uint64_t *rng, int32_t *in, int32_t *out) {
  const trace *t = bench_below(rng, 100) < 40 ? &T_code : &T_conv;
  uint32_t i = bench_below(rng, (uint32_t)t->n);
  *in = t->in[i];
  *out = t->out[i];
}

static char tenant_names[BENCH_TENANTS][8];
static char user_names[BENCH_USERS][8];
static uint8_t tenant_len[BENCH_TENANTS], user_len[BENCH_USERS];

static void names_init(void) {
  static int done;
  if (done) return;
  done = 1;
  for (int i = 0; i < BENCH_TENANTS; i++)
    tenant_len[i] = (uint8_t)snprintf(tenant_names[i], sizeof tenant_names[i], "t%d", i);
  for (int i = 0; i < BENCH_USERS; i++)
    user_len[i] = (uint8_t)snprintf(user_names[i], sizeof user_names[i], "u%d", i);
}

const char *bench_tenant(int i, uint8_t *n) { names_init(); *n = tenant_len[i]; return tenant_names[i]; }
const char *bench_user(int i, uint8_t *n) { names_init(); *n = user_len[i]; return user_names[i]; }

static void setstr(const char **p, uint8_t *n, const char *s) { *p = s; *n = (uint8_t)strlen(s); }

/* The reference mix: 40% code (the code trace), 60% conversation (chat,
 * summarize, extract; the conversation trace); tiers free 50%, pro 35%,
 * enterprise 15%; tenants skewed toward low numbers; 6% with images, 15%
 * with tools, 10% JSON, 8% with a latency budget. */
void bench_requests(breq *out, int n, uint32_t seed) {
  static const int32_t lat[] = { 300, 500, 700, 900, 1100, 1300, 2000 };
  uint64_t rng = seed;
  names_init();
  for (int i = 0; i < n; i++) {
    breq *q = &out[i];
    const trace *t;
    uint32_t k;
    memset(q, 0, sizeof *q);
    if (bench_below(&rng, 100) < 40) {
      t = &T_code;
      setstr(&q->task, &q->ntask, "code");
    } else {
      uint32_t v = bench_below(&rng, 100);
      t = &T_conv;
      setstr(&q->task, &q->ntask, v < 70 ? "chat" : v < 85 ? "summarize" : "extract");
    }
    k = bench_below(&rng, (uint32_t)t->n);
    q->in = t->in[k];
    q->out = t->out[k];
    k = bench_below(&rng, 100);
    setstr(&q->tier, &q->ntier, k < 50 ? "free" : k < 85 ? "pro" : "enterprise");
    k = bench_below(&rng, 1 + bench_below(&rng, BENCH_TENANTS));
    q->tenant = bench_tenant((int)k, &q->ntenant);
    q->user = bench_user((int)bench_below(&rng, BENCH_USERS), &q->nuser);
    if (bench_below(&rng, 100) < 6) q->images = 1 + (int32_t)bench_below(&rng, 3);
    q->tools = bench_below(&rng, 100) < 15;
    q->json = bench_below(&rng, 100) < 10;
    if (bench_below(&rng, 100) < 8) q->latency_ms = lat[bench_below(&rng, 7)];
  }
}

/* ---- the C versions' spend table ------------------------------------ */

void bspend_fill(bspend *t, const bstate *st) {
  memset(t, 0, sizeof *t);
  for (int k = 0; k < BENCH_TENANTS; k++) {
    if (!(st->spent[k] > 0)) continue;
    uint8_t n;
    const char *name = bench_tenant(k, &n);
    uint64_t h = bench_fnv1a(name, n) | 1;
    uint32_t i = (uint32_t)h & (BENCH_SPEND_SLOTS - 1);
    while (t->key[i] && t->key[i] != h) i = (i + 1) & (BENCH_SPEND_SLOTS - 1);
    t->key[i] = h;
    t->val[i] = st->spent[k];
  }
}

/* ---- time ---------------------------------------------------------- */

uint64_t bench_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  if (n <= 0) return 0;
  qsort(v, (size_t)n, sizeof *v, dcmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

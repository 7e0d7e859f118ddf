/*
 * fuzz_state.c -- saved runtime state: any bytes loaded as a saved file,
 * then saves, loads and carries while another thread charges.
 *
 * Input: u8 program (which of three built-in policies loads the file: the
 * one that saved the seeds, an edited one whose budgets partly changed
 * meaning, one with uint, bool and double keys), u8 flags (bit 0: reseal
 * the file's trailing FNV-1a so mutations reach the parser; bit 1: small
 * key tables), u32 length L, L bytes of file, then a script of one-byte
 * operations with their operands: charge, step the clock (either way), save
 * and load back, load the file again, carry to another program's runtime,
 * set a key's spend, read stats and snapshot, change on_full.
 *
 * What must hold: loading never crashes or leaks; a file that is refused
 * (any status but LANE_OK) says why and changes nothing (the snapshot is
 * the same before and after); with a charger running, every save returns
 * LANE_OK and loads back into a fresh runtime, and every carry returns
 * LANE_OK. Seeds (tests/fuzz/corpus/state): files saved by real runtimes
 * (now, two days ahead, full tables), a version-1 file, broken ones; build
 * this file with -DFUZZ_STATE_SEEDS and replay.c's objects instead of
 * libFuzzer to write them (see the end).
 */
#include "fuzz.h"
#include "sema.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const POLICY[3] = {
  "model m { input $1/Mtok output $1/Mtok }\n"
  "request { org: int }\n"
  "budget daily { key req.tenant  limit $10  window 1d }\n"
  "budget roll { key req.tenant  limit $1  rolling 12h }\n"
  "budget byorg { key req.org  limit $100  window 1h }\n"
  "route r { when budget.daily.used >= 100% -> m\n  otherwise -> m }\n",

  "model m { input $1/Mtok output $1/Mtok }\n"
  "request { org: int }\n"
  "budget daily { key req.tenant  limit $20  window 1d }\n"
  "budget roll { key req.tenant  limit $1  rolling 1d }\n"
  "budget byorg { key req.tenant  limit $100  window 1h }\n"
  "budget extra { key req.user  limit $5  window 1h }\n"
  "route r { otherwise -> m }\n",

  "model m { input $1/Mtok output $1/Mtok }\n"
  "request { acct: uint  flag: bool  score: double  org: int }\n"
  "budget daily { key req.acct  limit $10  window 1d }\n"
  "budget byflag { key req.flag  limit $1  rolling 2h }\n"
  "budget byscore { key req.score  limit $1  window 1h }\n"
  "budget byorg { key req.org  limit $100  window 1h }\n"
  "route r { otherwise -> m }\n",
};

static lane_program *PROG[3];
static atomic_uint_least64_t NOW;

static uint64_t fake_clock(void *ctx) { (void)ctx; return atomic_load(&NOW); }

static lane_program *compile(const char *src) {
  static char buf[4096];
  lanec_result r;
  snprintf(buf, sizeof buf, "%s", src);
  lanec_compile("state.lane", buf, NULL, &r);
  lane_program *p = r.prog;
  r.prog = NULL;
  lanec_result_free(&r);
  if (!p) abort();
  return p;
}

static lane_runtime *runtime(int prog, int small) {
  lane_runtime_options o;
  lane_error err;
  memset(&o, 0, sizeof o);
  o.clock = fake_clock;
  o.budget_keys = small ? 16 : 0;
  lane_runtime *rt = lane_runtime_new_with(PROG[prog], &o, &err);
  if (!rt) abort();
  return rt;
}

/* The runtime's snapshot. Without other threads two calls give the same
 * length; with a charger running it may grow in between: then again. */
static char *snap(const lane_runtime *rt, int alone) {
  size_t n = lane_runtime_snapshot(rt, NULL, 0);
  for (;;) {
    char *s = malloc(n + 1);
    if (!s) abort();
    size_t m = lane_runtime_snapshot(rt, s, n + 1);
    if (m == n || (!alone && m < n)) return s;
    if (alone) abort();
    free(s);
    n = m;
  }
}

/* Sets a key field of the request from the input: any field, any value. */
static void fill(fz *f, const lane_program *p, lane_request *r, char (*pool)[16]) {
  fz_request(f, p, r, pool, 4);
  static const char *const tenants[] = {"acme", "beta", "gamma", "", "t1", "t2", "t3", "t4"};
  const char *t = tenants[fz_u8(f) % 8];
  lane_set_str(r, lane_field(p, "tenant"), t, strlen(t));
}

/* A thread charging while the script runs. */
typedef struct charger {
  lane_runtime *rt;
  int           prog;
  atomic_int    stop;
  uint64_t      seed;
} charger;

static void *charge_loop(void *arg) {
  charger *c = arg;
  const lane_program *p = PROG[c->prog];
  int ft = lane_field(p, "tenant"), fo = lane_field(p, "org");
  char key[24];
  while (!atomic_load(&c->stop)) {
    c->seed = c->seed * 6364136223846793005ull + 1442695040888963407ull;
    lane_request r;
    lane_request_init(&r, p);
    int n = snprintf(key, sizeof key, "k%u", (unsigned)(c->seed >> 58));
    lane_set_str(&r, ft, key, (size_t)n);
    lane_set_int(&r, fo, (int64_t)(c->seed >> 60));
    if (lane_charge(c->rt, &r, 1e-6 * (double)(c->seed >> 54)) != LANE_OK) abort();
  }
  return NULL;
}

/* Where saves go: $BUILD/tests (make test's replay), else $TMPDIR or /tmp
 * (libFuzzer runs); one file per process. */
static const char *scratch_path(void) {
  static char path[1024];
  if (!path[0]) {
    const char *b = getenv("BUILD"), *t = getenv("TMPDIR");
    struct stat st;
    snprintf(path, sizeof path, "%s/tests", b && *b ? b : ".");
    if (b && *b && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
      snprintf(path, sizeof path, "%s/tests/fuzz_state.%ld.lanert", b, (long)getpid());
    else
      snprintf(path, sizeof path, "%s/lane-fuzz-state.%ld.lanert", t && *t ? t : "/tmp",
               (long)getpid());
  }
  return path;
}

/* The script, with a charger running on rt. */
static void script(fz *f, lane_runtime *rt, int prog, const uint8_t *file, size_t n, int small) {
  const lane_program *p = PROG[prog];
  lane_error err;
  for (int step = 0; step < 48 && f->n; step++) {
    switch (fz_u8(f) % 8) {
    case 0: {
      char pool[4][16];
      lane_request r;
      fill(f, p, &r, pool);
      int rc = lane_charge(rt, &r, fz_double(f));
      if (rc != LANE_OK && rc != LANE_EARG) abort();
      break;
    }
    case 1: {   /* the clock steps: forward, or back, by up to three days */
      uint64_t d = fz_u32(f) % (3 * 86400000u);
      if (fz_u8(f) & 1) atomic_fetch_add(&NOW, d);
      else atomic_fetch_sub(&NOW, d);
      break;
    }
    case 2: {
      int rc = lane_runtime_save(rt, scratch_path(), &err);
      if (rc != LANE_OK) { fprintf(stderr, "save: %s\n", err.message); abort(); }
      lane_runtime *fresh = runtime(fz_u8(f) % 3, small);
      if (lane_runtime_load(fresh, scratch_path(), &err) != LANE_OK) {
        fprintf(stderr, "a saved file does not load: %s\n", err.message);
        abort();
      }
      lane_runtime_free(fresh);
      break;
    }
    case 3: {
      lane_state_report rep;
      memset(&rep, 0, sizeof rep);
      int rc = lane_runtime_load_mem(rt, file, n, &rep, &err);
      if (rc == LANE_OK && rep.budgets_kept > (uint32_t)lane_budget_count(p)) abort();
      break;
    }
    case 4: {
      lane_runtime *dst = runtime(fz_u8(f) % 3, small);
      lane_state_report rep;
      memset(&rep, 0, sizeof rep);
      if (lane_runtime_carry(dst, rt, &rep, &err) != LANE_OK) abort();
      lane_runtime_free(dst);
      break;
    }
    case 5: {
      int b = (int)(fz_u8(f) % (unsigned)(lane_budget_count(p) + 1)) - (fz_u8(f) & 1);
      char key[8];
      size_t kn = fz_u8(f) % sizeof key;
      for (size_t i = 0; i < kn; i++) key[i] = (char)('0' + fz_u8(f) % 10);
      lane_runtime_set_spend(rt, b, lane_budget_key_hash(p, b, key, kn), fz_double(f));
      break;
    }
    case 6: {
      lane_budget_stats st;
      for (int b = 0; b < lane_budget_count(p); b++)
        if (lane_runtime_budget_stats(rt, b, &st) != LANE_OK || st.slots > st.capacity) abort();
      free(snap(rt, 0));
      break;
    }
    default:
      lane_runtime_set_budget_on_full(rt, fz_u8(f) % 4, fz_u8(f) % 4);
      break;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!PROG[0])
    for (int i = 0; i < 3; i++) PROG[i] = compile(POLICY[i]);
  fz f = {data, size};
  int prog = fz_u8(&f) % 3, flags = fz_u8(&f), small = flags & 2;
  uint32_t n = fz_u32(&f);
  if (n > f.n) n = (uint32_t)f.n;
  uint8_t *file = malloc(n ? n : 1);
  if (!file) return 0;
  memcpy(file, f.p, n);
  f.p += n;
  f.n -= n;
  if ((flags & 1) && n >= 16) {   /* reseal: the checksum follows the mutation */
    uint64_t h = bc_fnv1a64(file, n - 8, BC_FNV_OFFSET);
    for (int i = 0; i < 8; i++) file[n - 8 + i] = (uint8_t)(h >> (8 * i));
  }
  atomic_store(&NOW, 1700006400000ull + fz_u32(&f));
  lane_runtime *rt = runtime(prog, small);
  {   /* some spend first, so that a refusal has something to leave alone */
    char pool[4][16];
    lane_request r;
    for (int i = 0; i < 4; i++) {
      fill(&f, PROG[prog], &r, pool);
      lane_charge(rt, &r, 0.25 * (i + 1));
    }
  }
  char *before = snap(rt, 1);
  lane_state_report rep;
  lane_error err;
  memset(&rep, 0, sizeof rep);
  memset(&err, 0, sizeof err);
  int rc = lane_runtime_load_mem(rt, file, n, &rep, &err);
  if (rc != LANE_OK) {
    char *after = snap(rt, 1);
    if ((rc != LANE_EFORMAT && rc != LANE_EVERSION && rc != LANE_ENOMEM) || !err.message[0] ||
        strcmp(before, after)) {
      fprintf(stderr, "refused (%d: %s) but changed the runtime, or no reason\n", rc, err.message);
      abort();
    }
    free(after);
  } else if (rep.budgets_kept + rep.budgets_new > (uint32_t)lane_budget_count(PROG[prog]) ||
             rep.nnotes < rep.budgets_dropped) {
    abort();
  }
  free(before);
  charger c = {rt, prog, 0, size};
  pthread_t th;
  int threaded = pthread_create(&th, NULL, charge_loop, &c) == 0;
  script(&f, rt, prog, file, n, small);
  if (threaded) {
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
  }
  unlink(scratch_path());
  lane_runtime_free(rt);
  free(file);
  return 0;
}

#ifdef FUZZ_STATE_SEEDS
/* Writes the seed corpus into the directory argv[1]. Built like the
 * replay program but with this main instead of replay.c's, from the top of
 * the tree after `make`:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -DFUZZ_STATE_SEEDS -Icompiler/cli -Ivm -Ilang
 *      -Icompiler -Ibuild/lang -Itests/fuzz tests/fuzz/fuzz_state.c
 *      build/lane-cli.a build/liblanec.a build/liblane.a -ljansson -lcurl -lm -o seeds &&
 *   ./seeds tests/fuzz/corpus/state */
static void put(const char *dir, const char *name, int prog, int flags, const uint8_t *file,
                size_t n, const char *script_bytes, size_t sn) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *out = fopen(path, "wb");
  if (!out) abort();
  uint8_t head[6] = {(uint8_t)prog, (uint8_t)flags, (uint8_t)n, (uint8_t)(n >> 8),
                     (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
  fwrite(head, 1, 6, out);
  fwrite(file, 1, n, out);
  fwrite(script_bytes, 1, sn, out);
  fclose(out);
}

static uint8_t *saved(lane_runtime *rt, size_t *n) {
  lane_error err;
  if (lane_runtime_save(rt, scratch_path(), &err) != LANE_OK) abort();
  FILE *in = fopen(scratch_path(), "rb");
  static uint8_t buf[1 << 20];
  *n = fread(buf, 1, sizeof buf, in);
  fclose(in);
  unlink(scratch_path());
  return buf;
}

int main(int argc, char **argv) {
  static const char script_bytes[] = "\x00\x05\x10\x02\x01\x07\x40\x00\x00\x01\x02\x00\x03\x04"
                                     "\x01\x00\x01\x02\x00\x05\x02\x01\x09\x06\x07\x01\x02\x02";
  const char *dir = argc > 1 ? argv[1] : ".";
  char key[32];
  for (int i = 0; i < 3; i++) PROG[i] = compile(POLICY[i]);
  atomic_store(&NOW, 1700006400000ull + 5 * 3600000ull);
  for (int small = 0; small < 2; small++) {
    lane_runtime *rt = runtime(0, small);
    lane_request r;
    for (int i = 0; i < 24; i++) {
      lane_request_init(&r, PROG[0]);
      int kn = snprintf(key, sizeof key, "t%d", i);
      lane_set_str(&r, lane_field(PROG[0], "tenant"), key, (size_t)kn);
      lane_set_int(&r, lane_field(PROG[0], "org"), i % 5);
      lane_charge(rt, &r, 0.1 * (i + 1));
    }
    size_t n;
    uint8_t *b = saved(rt, &n);
    put(dir, small ? "seed-full-table" : "seed-saved", 0, small ? 2 : 0, b, n, script_bytes,
        sizeof script_bytes - 1);
    put(dir, small ? "seed-edited-full" : "seed-edited", 1, small ? 3 : 1, b, n, script_bytes,
        sizeof script_bytes - 1);
    put(dir, small ? "seed-keys-full" : "seed-keys", 2, small ? 3 : 1, b, n, script_bytes, 8);
    lane_runtime_free(rt);
  }
  {   /* saved two days ahead */
    atomic_store(&NOW, 1700006400000ull + 2 * 86400000ull);
    lane_runtime *rt = runtime(0, 0);
    lane_request r;
    lane_request_init(&r, PROG[0]);
    lane_set_str(&r, lane_field(PROG[0], "tenant"), "acme", 4);
    lane_charge(rt, &r, 3);
    size_t n;
    uint8_t *b = saved(rt, &n);
    put(dir, "seed-future", 0, 1, b, n, script_bytes, sizeof script_bytes - 1);
    lane_runtime_free(rt);
  }
  {   /* version 1 of program 0: daily (ring 2), roll (12), byorg (2) */
    uint8_t v1[256];
    size_t n = 0;
    uint64_t ck;
    char *s = NULL;
    lane_runtime *rt = runtime(0, 0);
    s = snap(rt, 1);
    ck = strtoull(strstr(s, "\"program\": \"") + 12, NULL, 16);
    free(s);
    lane_runtime_free(rt);
#define LE(v, k) do { for (int i_ = 0; i_ < (k); i_++) v1[n++] = (uint8_t)((uint64_t)(v) >> (8 * i_)); } while (0)
    memcpy(v1, "LANERT\r\n", 8);
    n = 8;
    LE(1, 4); LE(3, 4); LE(ck, 8);
    static const struct { const char *name; uint32_t ring; uint64_t sub; } b[] = {
      {"daily", 2, 86400000}, {"roll", 12, 3600000}, {"byorg", 2, 3600000}};
    for (int i = 0; i < 3; i++) {
      LE(strlen(b[i].name), 4);
      memcpy(v1 + n, b[i].name, strlen(b[i].name));
      n += strlen(b[i].name);
      LE(b[i].ring, 4); LE(b[i].sub, 8); LE(i == 0, 4);
      if (i == 0) {
        LE(lane_budget_key_hash(PROG[0], 0, "acme", 4), 8);
        LE(1700006400000ull / 86400000 + 1, 8); LE(4000000000ull, 8);
        LE(0, 8); LE(0, 8);
      }
    }
    uint64_t sum = bc_fnv1a64(v1, n, BC_FNV_OFFSET);
    LE(sum, 8);
    put(dir, "seed-v1", 0, 0, v1, n, script_bytes, sizeof script_bytes - 1);
    put(dir, "seed-v1-other", 1, 0, v1, n, script_bytes, 6);
  }
  put(dir, "seed-empty", 0, 0, (const uint8_t *)"", 0, script_bytes, sizeof script_bytes - 1);
  put(dir, "seed-garbage", 2, 1, (const uint8_t *)"LANERT\r\n\x02\0\0\0garbage-and-more-of-it", 31,
      script_bytes, 12);
  return 0;
}
#endif

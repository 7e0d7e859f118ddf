/*
 * t_verify.c -- the loader rejects hostile files with the exact message.
 *
 * Reads every tests/golden/lanec/NAME.lanec (or $LANE_GOLDEN_LANEC/...) and
 * compares lane_load's message with NAME.expect. Then, on a valid file:
 * every truncation and every single-bit flip is rejected; a few thousand
 * random corruptions with a resealed checksum never crash, and when one
 * loads, deciding on it terminates; the max_steps limit is exact.
 */
#include <dirent.h>

#include "tap.h"

#include "golden/lanec/asm.h"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *b = NULL;
  long len;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (b = malloc((size_t)len + 1)) != NULL) {
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
  }
  fclose(f);
  return b;
}

static void golden(void) {
  const char *dir = getenv("LANE_GOLDEN_LANEC");
  char *names[512], path[4096];
  int n = 0;
  DIR *d;
  struct dirent *e;
  if (!dir) dir = "tests/golden/lanec";
  if (!(d = opendir(dir))) bail("cannot open %s (run from the top of the tree)", dir);
  while ((e = readdir(d)) != NULL && n < 512) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strcmp(e->d_name + len - 6, ".lanec") == 0) {
      names[n] = malloc(len - 5);
      memcpy(names[n], e->d_name, len - 6);
      names[n][len - 6] = 0;
      n++;
    }
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], cmp_names);
  ok(n >= 18, "%d hostile files", n);
  for (int i = 0; i < n; i++) {
    size_t len = 0, elen = 0;
    unsigned char *b, *want;
    lane_error err;
    lane_program *p;
    snprintf(path, sizeof path, "%s/%s.lanec", dir, names[i]);
    b = slurp(path, &len);
    snprintf(path, sizeof path, "%s/%s.expect", dir, names[i]);
    want = slurp(path, &elen);
    if (!b || !want) {
      ok(0, "%s: cannot read the .lanec or .expect file", names[i]);
      free(b); free(want); free(names[i]);
      continue;
    }
    while (elen && (want[elen - 1] == '\n' || want[elen - 1] == '\r')) want[--elen] = 0;
    memset(&err, 0, sizeof err);
    p = lane_load(b, len, &err);
    ok(p == NULL && err.code != LANE_OK, "%s: rejected (%s)", names[i],
       lane_status_name(err.code));
    is_str(err.message, (char *)want, "%s: message", names[i]);
    lane_program_free(p);
    free(b); free(want); free(names[i]);
  }
}

/* A valid program with a filter, lists, several rules and a runtime-error
 * path, for the corruption tests. */
static la *valid(void) {
  la *a = la_new();
  uint32_t team = la_field(a, "team", BC_U_STRING);
  uint32_t m0 = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  uint32_t m1 = la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  uint32_t pool = la_pool(a, 2, (uint32_t[]){ m0 | BC_MEMBER_CHECK, m1 | BC_MEMBER_CHECK });
  uint32_t f = la_filter(a), j;
  la_op(a, BC_OP_M_FITS, 0, 0, 0);
  j = la_op(a, BC_OP_JF_KEEP, 0, 0, 0);
  la_op(a, BC_OP_M_COST, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  la_op(a, BC_OP_LT_D, 0, 0, 0);
  la_patch(a, j);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 1);
  la_rule(a, "req.images / req.images > 0");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_BEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "req.team in [\"a\"]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  la_op(a, BC_OP_IN_LIST, 0, 0, la_list_str(a, 1, (const char *const[]){ "a" }));
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_SHADOW, 0, 0, m1);
  la_op(a, BC_OP_CAND, BC_ORD_FASTEST, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

static void reseal(unsigned char *b, size_t n) {
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(h >> (8 * i));
}

/* Decides on every route with a few requests; returns 0 if a decision ran
 * past the program's worst case. */
static int exercise(lane_program *p) {
  lane_runtime *rt = lane_runtime_new(p, NULL);
  lane_request r;
  lane_decision d;
  int good = 1;
  if (!rt) return 0;
  for (int k = 0; k < 3; k++) {
    lane_request_init(&r, p);
    if (k > 0) {
      lane_set_int(&r, BC_F_IMAGES, k - 1);
      lane_set_int(&r, BC_F_INPUT_TOKENS, 1000 * k);
    }
    for (int i = 0; i < lane_route_count(p); i++) {
      lane_decide_route(rt, i, &r, &d);
      if (d.steps > lane_program_max_steps(p)) good = 0;
    }
  }
  lane_runtime_free(rt);
  return good;
}

int main(void) {
  la *a = valid();
  size_t n;
  unsigned char *v = la_bytes(a, &n), *b = malloc(n);
  lane_error err;
  lane_program *p;
  int all = 1, worst_ok = 1, loaded = 0;
  uint64_t worst;
  uint32_t seed = 12345;

  golden();

  p = lane_load(v, n, &err);
  ok(p != NULL, "valid program loads%s%s", p ? "" : ": ", p ? "" : err.message);
  if (!p) bail("cannot continue");
  ok(exercise(p), "decisions stay within the worst case");
  worst = lane_program_max_steps(p);
  lane_program_free(p);

  for (size_t len = 0; len < n; len++) {
    p = lane_load(v, len, &err);
    if (p || err.code == LANE_OK || !err.message[0]) all = 0;
    lane_program_free(p);
  }
  ok(all, "every truncation of a %zu-byte file is rejected", n);

  all = 1;
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(b, v, n);
      b[i] ^= (unsigned char)(1u << bit);
      p = lane_load(b, n, &err);
      if (p || err.code == LANE_OK || !err.message[0]) all = 0;
      lane_program_free(p);
    }
  ok(all, "every single-bit flip is rejected");

  /* Corruptions past the checksum: the verifier must hold on its own. */
  for (int k = 0; k < 20000; k++) {
    int flips = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
    memcpy(b, v, n);
    for (int f = 0; f < flips; f++) {
      size_t at;
      seed = seed * 1103515245u + 12345u;
      at = 32 + (seed >> 8) % (n - 32);
      seed = seed * 1103515245u + 12345u;
      b[at] = (seed >> 20) & 1 ? (unsigned char)(seed >> 8) : b[at] ^ (unsigned char)(1u << ((seed >> 9) & 7));
    }
    reseal(b, n);
    p = lane_load(b, n, &err);
    if (p) {
      loaded++;
      if (!exercise(p)) worst_ok = 0;
      lane_program_free(p);
    } else if (err.code == LANE_OK || !err.message[0]) {
      all = 0;
    }
  }
  ok(all, "resealed corruptions: every rejection has a status and a message");
  ok(worst_ok, "resealed corruptions: %d loaded, none ran past its worst case", loaded);

  {
    lane_load_options opt = { worst - 1, 0 };
    p = lane_load_with(v, n, &opt, &err);
    ok(p == NULL && err.code == LANE_ELIMIT, "max_steps one below the worst case: ELIMIT");
    is_str(err.message, "route chat: worst case of 50 instructions exceeds the limit of 49",
           "limit message");
    opt.max_steps = worst;
    p = lane_load_with(v, n, &opt, &err);
    ok(p != NULL, "max_steps equal to the worst case loads");
    lane_program_free(p);
    opt.max_steps = 0;
    opt.max_bytes = n - 1;
    p = lane_load_with(v, n, &opt, &err);
    ok(p == NULL && err.code == LANE_ELIMIT, "max_bytes: ELIMIT");
  }
  p = lane_load(NULL, 0, &err);
  ok(p == NULL && err.code == LANE_EFORMAT, "NULL, 0 is an empty file");
  p = lane_load(v, n, NULL);
  ok(p != NULL, "err may be NULL");
  lane_program_free(p);
  free(b);
  free(v);
  free(a);
  return done_testing();
}

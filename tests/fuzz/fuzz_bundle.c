/*
 * fuzz_bundle.c -- hostile bytes -> lane_bundle_open (and, for what
 * opens, lane_bundle_test).
 *
 * Input: u8 flags, then the bundle. Flags: bit 0 reseals the trailing
 * SHA-256 so that mutations reach the entries, the signature and the
 * manifest instead of stopping at the digest; bit 1 opens with the
 * fixed public key below (the seeds are signed with its secret half);
 * bit 2 runs the tests of a bundle that opens (compile and decide), bit
 * 3 with a 64-byte report buffer (the cut report). A refusal must come
 * with a status and a message and leave *out NULL; an open bundle must
 * answer every accessor consistently; nothing may crash, leak or read out
 * of bounds. Seeds: build with -DFUZZ_BUNDLE_SEEDS (below).
 */
#include <sodium.h>

#include "bundle.h"
#include "fuzz.h"
#include "sema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds' signing key, from a fixed seed. */
static unsigned char PK[32], SK[64];

static void keys(void) {
  static int done;
  if (done) return;
  unsigned char seed[32];
  for (int i = 0; i < 32; i++) seed[i] = (unsigned char)(i * 7 + 1);
  if (sodium_init() < 0) abort();
  crypto_sign_seed_keypair(PK, SK, seed);
  done = 1;
}

static void check_open(const lane_bundle *b, int with_key) {
  const char *rev = lane_bundle_revision(b), *m = lane_bundle_manifest(b);
  if (!rev || !*rev || strlen(rev) > BUNDLE_MAX_REVISION || !m || !lane_bundle_program(b)) abort();
  int sig = lane_bundle_signed(b);
  const char *id = lane_bundle_key_id(b);
  if (with_key && sig != LANE_BUNDLE_VERIFIED) abort();
  if (!with_key && sig == LANE_BUNDLE_VERIFIED) abort();
  if ((sig == LANE_BUNDLE_UNSIGNED) != (id == NULL)) abort();
  if (id && strlen(id) != LANE_BUNDLE_KEY_ID) abort();
  if (with_key) {
    char want[LANE_BUNDLE_KEY_ID + 1];
    bundle_key_id(PK, want);
    if (strcmp(want, id)) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keys();
  if (size < 1 || size > (1u << 20)) return 0;
  int flags = data[0];
  size_t n = size - 1;
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return 0;
  memcpy(b, data + 1, n);
  if ((flags & 1) && n >= BUNDLE_HEADER + BUNDLE_TRAILER)
    crypto_hash_sha256(b + n - BUNDLE_TRAILER, b, n - BUNDLE_TRAILER);
  lane_bundle *bd = (lane_bundle *)b;   /* must be set to NULL on a refusal */
  lane_error err;
  memset(&err, 0, sizeof err);
  int rc = lane_bundle_open(b, n, (flags & 2) ? PK : NULL, &bd, &err);
  if (rc != LANE_OK) {
    if (bd || !err.message[0] || !memchr(err.message, 0, sizeof err.message) ||
        (rc != LANE_EFORMAT && rc != LANE_EVERSION && rc != LANE_ENOMEM))
      abort();
    free(b);
    return 0;
  }
  memset(b, 0xA5, n);   /* the bundle holds its own copy */
  check_open(bd, flags & 2);
  if (flags & 4) {
    size_t cap = (flags & 8) ? 64 : 1 << 16;
    char *report = malloc(cap);
    if (!report) abort();
    memset(report, 'x', cap);
    int failed = lane_bundle_test(bd, report, cap, &err);
    if (failed < -1 || !memchr(report, 0, cap)) abort();
    if (failed < 0 && !err.message[0]) abort();
    free(report);
  }
  lane_program *p = lane_bundle_take_program(bd);
  if (!p || lane_bundle_take_program(bd) || lane_bundle_program(bd)) abort();
  lane_program_free(p);
  lane_bundle_free(bd);
  free(b);
  return 0;
}

#ifdef FUZZ_BUNDLE_SEEDS
#include "bundle_policy.h"
/* Writes the seed corpus into the directory argv[1]: small bundles made
 * from sources in memory (a sealed set, so no file is read), unsigned and
 * signed with the key above, with imports, tests, a snapshot, a failing
 * test. Built like the replay program, with this main instead of
 * replay.c's, from the top of the tree after `make`:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -DFUZZ_BUNDLE_SEEDS -Icompiler/bundle -Icompiler
 *      -Ilang -Ibuild/lang -Ivm -Itests -Itests/fuzz tests/fuzz/fuzz_bundle.c build/lane-bundle.a
 *      build/liblanec.a build/liblane.a -ljansson -lsodium -lm -o seeds && ./seeds tests/fuzz/corpus/bundle */
static const char TESTS[] =
  "test \"during the outage the small one answers\" {\n"
  "  route r\n"
  "  state \"outage.json\"\n"
  "  req { tier: \"pro\", input_tokens: 1k, max_output_tokens: 100 }\n"
  "  expect primary == fleet.small\n"
  "}\n";
static void seed(const char *dir, const char *name, int flags, const char *tests, int sign) {
  lanec_file files[] = {{"p/fleet.lane", FLEET, sizeof FLEET - 1},
                        {"p/outage.json", SNAPSHOT, sizeof SNAPSHOT - 1},
                        {"p/policy.lane", POLICY, sizeof POLICY - 1},
                        {"p/policy_test.lane", tests ? tests : "", tests ? strlen(tests) : 0}};
  lanec_opts o;
  memset(&o, 0, sizeof o);
  o.files = files;
  o.nfiles = 4;
  o.tests = tests ? "p/policy_test.lane" : NULL;
  lanec_result r;
  if (lanec_compile("p/policy.lane", NULL, &o, &r) != LANEC_OK) {
    lanec_print_diags(&r, stderr);
    abort();
  }
  bundle_build_opts bo = {sign ? "v7" : NULL, sign ? SK : NULL, 1764331200};
  unsigned char *b;
  size_t n;
  lane_error err;
  if (bundle_make(&r, &o, &bo, &b, &n, &err) != LANE_OK) {
    fprintf(stderr, "%s\n", err.message);
    abort();
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *out = fopen(path, "wb");
  if (!out) abort();
  fputc(flags, out);
  fwrite(b, 1, n, out);
  fclose(out);
  free(b);
  lanec_result_free(&r);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  keys();
  seed(dir, "seed-unsigned", 4, NULL, 0);
  seed(dir, "seed-unsigned-resealed", 5, NULL, 0);
  seed(dir, "seed-signed-key", 6, TESTS, 1);
  seed(dir, "seed-signed-nokey", 5, TESTS, 1);
  seed(dir, "seed-failing-test", 12, FAILING, 0);
  return 0;
}
#endif

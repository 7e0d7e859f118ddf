/*
 * fuzz_compile.c -- policy source -> compile.
 *
 * Any text: the front end and the passes must report errors, never crash,
 * leak or read out of bounds. A policy that compiles must verify (or
 * exceed only the worst-case limit) and its test blocks must run.
 * Seeds: the golden policies (tests/fuzz/corpus/compile).
 */
#include "fuzz.h"
#include "sema.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  if (!devnull && !(devnull = fopen("/dev/null", "w"))) abort();
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  lanec_result r;
  if (lanec_compile("fuzz.lane", text, NULL, &r) == LANEC_OK) {
    test_opts o = {1, 1, 0, 0, 1, NULL};
    sema_run_tests_with(r.unit, r.prog, &o, devnull);
  }
  for (int i = 0; i < lanec_diag_count(&r); i++) {   /* what the emitter made must verify */
    lanec_diag d;
    lanec_diag_get(&r, i, &d);
    if (!d.file && !strncmp(d.message, "internal error: ", 16)) {   /* emit.c: did not load */
      fprintf(stderr, "compiled program does not verify: %s\n", d.message);
      abort();
    }
  }
  lanec_print_diags(&r, devnull);
  lanec_result_free(&r);
  free(text);
  return 0;
}

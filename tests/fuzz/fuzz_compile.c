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
  int st = lanec_compile("fuzz.lane", text, NULL, &r);
  if (st == LANEC_OK) {
    test_opts o = {1, 1, 0, 0, 1, NULL};
    sema_run_tests_with(r.unit, r.prog, &o, devnull);
  }
  if (st == LANEC_EINTERNAL) {   /* what the emitter made must verify */
    lanec_print_diags(&r, stderr);
    abort();
  }
  lanec_print_diags(&r, devnull);
  lanec_result_free(&r);
  free(text);
  return 0;
}

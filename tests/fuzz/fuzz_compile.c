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
  sema_unit u;
  sema_init(&u, NULL);
  if (sema_load(&u, "fuzz.lane", text) == 0 && sema_check(&u) == 0) {
    unsigned char *b = NULL;
    size_t n = 0;
    if (emit_program(&u, &b, &n) == 0) {
      lane_error err;
      lane_program *p = lane_load(b, n, &err);
      if (!p && err.code != LANE_ELIMIT) {
        fprintf(stderr, "compiled program does not verify: %s\n", err.message);
        abort();
      }
      if (p) {
        test_opts o = {1, 1, 0, 0, 1, NULL};
        sema_run_tests_with(&u, p, &o, devnull);
        lane_program_free(p);
      }
      free(b);
    }
  }
  diag_render(devnull, &u.ctx);
  sema_free(&u);
  free(text);
  return 0;
}

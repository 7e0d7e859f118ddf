/*
 * compile.h -- compiles a policy's text for a unit test (header-only,
 * after ../tap.h and lanec.h): the loaded program, or NULL with the
 * diagnostics, as `lane compile` prints them, in diag.
 */
#ifndef LANE_TEST_COMPILE_H
#define LANE_TEST_COMPILE_H

static lane_program *test_compile(const char *src, char *diag, size_t cap) {
  lanec_result r;
  diag[0] = 0;
  lanec_compile("t.lane", src, NULL, &r);
  lane_program *p = r.prog;
  r.prog = NULL;
  if (!p) {
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    lanec_print_diags(&r, f);
    fclose(f);
    snprintf(diag, cap, "%s", out ? out : "");
    free(out);
  }
  lanec_result_free(&r);
  return p;
}

#endif

/*
 * fuzz_load.c -- arbitrary bytes -> lane_load (header, sections, verifier).
 *
 * Each input is loaded as it is, then again with its size field and
 * checksum resealed, so that mutations of a valid program reach the
 * verifier instead of stopping at the checksum. A program that loads is
 * introspected and decided on with an empty request on every route.
 * Seeds: tests/golden/lanec/NAME.lanec and the compiled golden policies.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_load(const uint8_t *b, size_t n) {
  lane_error err;
  lane_load_options o = {200000, 0};
  lane_program *p = lane_load_with(b, n, &o, &err);
  if (!p) {
    if (err.code == LANE_OK || !memchr(err.message, '\0', sizeof err.message)) abort();
    return;
  }
  lane_runtime *rt = lane_runtime_new(p, &err);
  if (!rt) abort();
  for (int m = 0; m < lane_model_count(p); m++)
    if (!lane_model_name(p, m) || !lane_model_provider(p, m) || !lane_model_id(p, m)) abort();
  for (int f = 0; f < lane_field_count(p); f++)
    if (!lane_field_name(p, f) || !lane_field_unit(p, f)) abort();
  for (int r = 0; r < lane_route_count(p); r++) {
    lane_request req;
    lane_decision d;
    lane_request_init(&req, p);
    for (int k = 1; k <= lane_rule_count(p, r); k++)
      if (!lane_rule_name(p, r, k)) abort();
    int rc = lane_decide_route(rt, r, &req, &d);
    fz_check_decision(p, rc, &d);
  }
  lane_runtime_free(rt);
  lane_program_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return 0;
  try_load(data, size);
  if (size >= BC_HEADER_SIZE) {
    uint8_t *b = malloc(size);
    if (!b) return 0;
    memcpy(b, data, size);
    fz_reseal(b, size);
    try_load(b, size);
    free(b);
  }
  return 0;
}

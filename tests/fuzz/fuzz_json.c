/*
 * fuzz_json.c -- request body JSON -> lane_request_from_json (vm/json/json.c,
 * liblane-json). Built only when vm/json/json.c exists.
 *
 * The first byte picks the formats allowed; the rest is the body. The
 * adapter must return LANE_OK or LANE_EJSON with a message, leave the
 * request as it was on error, keep copied strings inside r->text, and the
 * request must then decide. The program is compiled once from a policy
 * with custom string fields (so `metadata` keys have somewhere to go).
 * Seeds: hand-written as chat and messages bodies, and the agent-framework
 * bodies of tests/json/agents/ (seed-agents-*, formats byte 3: the shape
 * decides).
 */
#include "fuzz.h"
#include "sema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy[] =
  "model a { provider \"p\" name \"a\" input $1/Mtok output $2/Mtok context 128k caps vision, tools }\n"
  "model b { provider \"p\" name \"b\" input $0.1/Mtok output $0.2/Mtok context 8k }\n"
  "request { team: string  project: string  n: int }\n"
  "route r {\n  require fits\n  when req.images > 0 -> a\n  when req.team == \"x\" -> b\n"
  "  otherwise -> cheapest(models)\n}\n";

static lane_program *prog;
static lane_runtime *rt;

static void setup(void) {
  lanec_result r;
  lane_error err;
  if (lanec_compile("json.lane", policy, NULL, &r) != LANEC_OK) {
    lanec_print_diags(&r, stderr);
    abort();
  }
  prog = r.prog;
  r.prog = NULL;
  lanec_result_free(&r);
  if (!(rt = lane_runtime_new(prog, &err))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!prog) setup();
  if (size < 1 || size > 1 << 20) return 0;
  int formats = data[0] % 4;
  lane_request r, before;
  lane_error err;
  lane_decision d;
  lane_request_init(&r, prog);
  lane_set_str(&r, lane_field(prog, "team"), "keep", 4);
  memcpy(&before, &r, sizeof r);
  int rc = lane_request_from_json(&r, (const char *)data + 1, size - 1, formats, &err);
  if (rc != LANE_OK) {
    if (rc != LANE_EJSON && rc != LANE_EARG) abort();
    if (!memchr(err.message, '\0', sizeof err.message)) abort();
    if (r.set != before.set || r.ntext != before.ntext ||      /* left as it was */
        memcmp(r.v, before.v, sizeof r.v) != 0)
      abort();
    return 0;
  }
  if (r.ntext > sizeof r.text) abort();
  for (int f = 0; f < lane_field_count(prog); f++) {
    if (!(r.set >> f & 1) || lane_field_type(prog, f) != LANE_T_STRING) continue;
    const char *s = r.v[f].s.p;
    size_t n = r.v[f].s.n;
    /* a string is the caller's literal or lies inside r.text */
    if (!(s == before.v[f].s.p && n == before.v[f].s.n) &&
        n && (s < r.text || s + n > r.text + r.ntext))
      abort();
  }
  rc = lane_decide(rt, "r", &r, &d);
  fz_check_decision(prog, rc, &d);
  return 0;
}

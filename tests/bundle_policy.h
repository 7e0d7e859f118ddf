/*
 * bundle_policy.h -- the policy t_bundle bundles and fuzz_bundle's seed
 * builder seeds its corpus with (header-only): a root importing a fleet of
 * two models, a passing test block, one that fails, and the snapshot a
 * test reads. Each includer adds its own tests file (TESTS), whose
 * snapshot path depends on where it puts the files.
 */
#ifndef LANE_TEST_BUNDLE_POLICY_H
#define LANE_TEST_BUNDLE_POLICY_H

static const char POLICY[] =
  "import \"fleet\"\n"
  "route r {\n"
  "  require healthy\n"
  "  when req.tier == \"pro\" -> best(models)\n"
  "  otherwise -> cheapest(models)\n"
  "}\n"
  "test \"pro gets the best\" {\n"
  "  route r\n"
  "  req { tier: \"pro\", input_tokens: 1k, max_output_tokens: 100 }\n"
  "  expect primary == fleet.big\n"
  "}\n";
static const char FLEET[] =
  "model big { provider \"p\" name \"big-1\" input $3/Mtok output $15/Mtok quality 0.9 }\n"
  "model small { provider \"p\" name \"small-1\" input $0.1/Mtok output $0.4/Mtok quality 0.6 }\n";
static const char FAILING[] =
  "test \"this one fails\" {\n  route r\n"
  "  req { tier: \"free\", input_tokens: 1k, max_output_tokens: 100 }\n"
  "  expect primary == fleet.big\n}\n";
static const char SNAPSHOT[] =
  "{\"now_ms\": 1764331200000, \"models\": [{\"model\": \"fleet.big\", \"p50\": 900, "
  "\"p95\": 2000, \"error_rate\": 0.5, \"samples\": 100, \"state\": \"open\", "
  "\"until_ms\": 1764331230000}]}\n";

#endif

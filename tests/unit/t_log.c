/*
 * t_log.c -- decision and outcome records (vm/log.c) in-process: SipHash
 * against the paper's test vectors, snprintf's contract, strings escaped
 * (control characters, quotes, invalid UTF-8) and read back as JSON,
 * sensitive fields hashed, the live view the decision read, outcomes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lanec.h"
#include "tap.h"

static const char POLICY[] =
  "model a { input $1/Mtok  output $2/Mtok  p95 900ms }\n"
  "model b { input $3/Mtok  output $4/Mtok  p95 2s }\n"
  "request { user: string sensitive  note: string }\n"
  "budget daily { key req.tenant  limit $10  window 1d }\n"
  "route r {\n"
  "  when budget.daily.remaining < $5 -> a\n"
  "  otherwise -> fastest(models where healthy)\n"
  "}\n";

int main(void) {
  /* SipHash-2-4, key 00..0f (Aumasson and Bernstein, appendix A) */
  unsigned char key[16], msg[64];
  for (int i = 0; i < 16; i++) key[i] = (unsigned char)i;
  for (int i = 0; i < 64; i++) msg[i] = (unsigned char)i;
  is_int(lane_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull, 1, "siphash: the empty message");
  is_int(lane_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull, 1,
         "siphash: 15 bytes, the paper's worked example");

  lanec_result res;
  memset(&res, 0, sizeof res);
  if (lanec_compile("log.lane", POLICY, NULL, &res) != LANEC_OK) {
    lanec_print_diags(&res, stderr);
    bail("the policy does not compile");
  }
  lane_program *p = res.prog;
  lane_runtime *rt = lane_runtime_new(p, NULL);
  lane_request r;
  lane_decision d;
  lane_request_init(&r, p);
  const char note[] = "line\none \"quoted\" \\ \x01 bad \xff end";
  lane_set_str(&r, lane_field(p, "user"), "alice", 5);
  lane_set_str(&r, lane_field(p, "note"), note, sizeof note - 1);
  lane_set_str(&r, lane_field(p, "tenant"), "t-1", 3);
  lane_set_int(&r, lane_field(p, "input_tokens"), 1000);
  int b = lane_budget(p, "daily");
  lane_runtime_set_spend(rt, b, lane_budget_key_hash(p, b, "t-1", 3), 7.25);
  lane_live_stats st;
  lane_model_stats(rt, 0, &st);
  st.state = LANE_BREAKER_OPEN;
  st.until_ms = UINT64_MAX / 2;
  lane_runtime_set_model_stats(rt, 0, &st);
  int rc = lane_decide_route(rt, 0, &r, &d);
  is_int(rc, LANE_OK, "decided");

  char small[16];
  size_t need = lane_log_decision(rt, 0, &r, rc, &d, "dec-1", key, small, sizeof small);
  ok(need > sizeof small && strlen(small) == sizeof small - 1,
     "snprintf's contract: %zu bytes needed, %zu kept", need, strlen(small));
  char *line = malloc(need + 1);
  is_int((long long)lane_log_decision(rt, 0, &r, rc, &d, "dec-1", key, line, need + 1),
         (long long)need, "the same length the second time");
  ok(line[need - 1] == '\n' && strchr(line, '\n') == line + need - 1,
     "one line, ending in a newline (the note's newline is escaped)");
  ok(!strstr(line, "alice"), "the sensitive field is not in clear");
  json_error_t je;
  json_t *j = json_loads(line, 0, &je);
  ok(json_is_object(j), "the record is JSON (%s)", j ? "" : je.text);
  json_t *req = json_object_get(j, "request"), *state = json_object_get(j, "state");
  char want[40];
  snprintf(want, sizeof want, "h:%016llx", (unsigned long long)lane_siphash24(key, "alice", 5));
  is_str(json_string_value(json_object_get(req, "user")), want, "user is its keyed hash");
  is_str(json_string_value(json_object_get(req, "note")),
         "line\none \"quoted\" \\ \x01 bad \xef\xbf\xbd end",
         "strings read back: escapes, and an invalid byte as U+FFFD");
  is_int(json_integer_value(json_object_get(req, "input_tokens")), 1000, "an int field");
  is_str(json_string_value(json_object_get(j, "id")), "dec-1", "the host's id");
  is_str(json_string_value(json_object_get(json_object_get(json_object_get(state, "models"), "a"),
                                           "breaker")),
         "open", "the breaker the decision read");
  ok(json_real_value(json_object_get(json_object_get(json_object_get(state, "budgets"), "daily"),
                                     "spent")) == 7.25,
     "the budget spend the decision read");
  ok(!json_object_get(json_object_get(state, "models"), "b"),
     "a model with a fresh runtime's figures is left out");
  is_str(json_string_value(json_array_get(json_object_get(j, "candidates"), 0)), "a",
         "the decision: $2.75 remaining, rule 1 names a");
  is_int(json_integer_value(json_object_get(j, "rule")), 1, "  by rule 1");
  json_decref(j);
  free(line);

  char nokey[4096];
  lane_log_decision(rt, 0, &r, rc, &d, NULL, NULL, nokey, sizeof nokey);
  ok(strstr(nokey, "\"user\":\"redacted\"") && !strstr(nokey, "alice"),
     "without a key: \"redacted\"");
  ok(strstr(nokey, "\"id\":\"") != NULL, "without an id: one is made");
  is_int((long long)lane_log_decision(rt, 5, &r, rc, &d, NULL, NULL, nokey, sizeof nokey), 0,
         "a bad route: 0, nothing written");

  lane_outcome o = {"dec-1", 1000, 1, 2, 1, 200, 812.5, 900, 100, 0.0042, 1, 0.75, 2, 1, NULL, 0};
  char oc[512];
  lane_log_outcome(p, &o, oc, sizeof oc);
  j = json_loads(oc, 0, &je);
  ok(j && !strcmp(json_string_value(json_object_get(j, "type")), "outcome") &&
     !strcmp(json_string_value(json_object_get(j, "model")), "b") &&
     json_real_value(json_object_get(j, "score")) == 0.75 &&
     json_integer_value(json_object_get(j, "attempts")) == 2,
     "an outcome record: %s", oc);
  json_decref(j);

  lane_runtime_free(rt);
  lanec_result_free(&res);
  return done_testing();
}

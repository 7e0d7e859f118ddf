/*
 * explain_json.c -- the explanation of a decision as JSON, for `lane eval
 * --explain --format json`. The reasons come from liblane's explain
 * tables (lane_why_rule, lane_why_removed), as in the text; the JSON is
 * written here, with the lane command, so that no library needs jansson
 * for it.
 */
#include "explain_json.h"

#include <jansson.h>

#include "sem.h"
#include <stdlib.h>
#include <string.h>

static json_t *json_trace(const explain_in *in) {
  const lane_trace *t = in->trace;
  const lane_program *p = in->prog;
  json_t *rules = json_array(), *cur = NULL, *cands = NULL;
  int sel = -1;   /* the selection the MEMBER events belong to */
  for (int i = 0; i < t->n; i++) {
    const lane_event *e = &t->events[i];
    char why[SEM_REASON_MAX];
    switch (e->kind) {
    case LANE_EV_SELECT:
      sel = e->model;
      break;
    case LANE_EV_RULE:
      cur = json_object();
      cands = json_array();
      json_object_set_new(cur, "rule", json_integer(e->rule));
      json_object_set_new(cur, "name", json_string(lane_rule_name(p, in->route, e->rule)));
      json_object_set_new(cur, "result", json_string("no"));
      lane_why_rule(in->rt, in->route, e->rule, in->req, in->dec, why, sizeof why);
      if (why[0]) json_object_set_new(cur, "why", json_string(why));
      json_object_set_new(cur, "candidates", cands);
      json_array_append_new(rules, cur);
      break;
    case LANE_EV_MATCH:
      if (!cur) break;
      json_object_set_new(cur, "result", json_string(e->model ? "matched" : "filtered"));
      json_object_del(cur, "why");
      break;
    case LANE_EV_ERROR:
      if (cur) json_object_set_new(cur, "result", json_string("error"));
      break;
    case LANE_EV_MEMBER: {
      if (!cands) break;
      json_t *c = json_object();
      json_object_set_new(c, "model", json_string(lane_model_name(p, e->model)));
      json_object_set_new(c, "cost", json_real(e->cost));
      json_object_set_new(c, "result", json_string(e->passed ? "kept" : "removed"));
      if (!e->passed) {   /* the VM's check, and the failing part */
        if (lane_check_name(e->check)[0])
          json_object_set_new(c, "check", json_string(lane_check_name(e->check)));
        why[0] = 0;
        lane_why_removed(in->rt, in->route, e->rule, sel, e->model, in->req, in->dec, why,
                         sizeof why);
        if (why[0]) json_object_set_new(c, "why", json_string(why));
      }
      json_array_append_new(cands, c);
      break;
    }
    case LANE_EV_CHOSEN: {
      size_t k;
      json_t *c;
      json_array_foreach(cands, k, c)
        if (!strcmp(json_string_value(json_object_get(c, "model")), lane_model_name(p, e->model)))
          json_object_set_new(c, "result", json_string("chosen"));
      break;
    }
    default: break;
    }
  }
  return rules;
}

void explain_print_json(const explain_in *in, FILE *out) {
  json_t *o = json_object();
  json_object_set_new(o, "route", json_string(lane_route_name(in->prog, in->route)));
  json_object_set_new(o, "rules", json_trace(in));
  if (in->rc == LANE_OK) {
    json_t *c = json_array();
    for (int i = 0; i < in->dec->ncandidates; i++)
      json_array_append_new(c, json_string(lane_model_name(in->prog, in->dec->candidates[i])));
    json_object_set_new(o, "rule", json_integer(in->dec->rule));
    json_object_set_new(o, "candidates", c);
    json_object_set_new(o, "cost", json_real(in->dec->cost));
  } else {
    json_object_set_new(o, "decision", json_null());
    json_object_set_new(o, "filtered_rule", json_integer(in->dec->filtered_rule));
  }
  char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  if (s) fprintf(out, "%s\n", s);
  free(s);
  json_decref(o);
}

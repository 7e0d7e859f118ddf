/*
 * explain_json.h -- `lane eval --explain --format json`: the explanation
 * of liblanec (explain.h) as one JSON object.
 */
#ifndef LANE_EXPLAIN_JSON_H
#define LANE_EXPLAIN_JSON_H

#include <stdio.h>

#include "explain.h"

/* Writes {"route", "rules": [{rule, name, result, why?, candidates: [{model,
 * cost, result, why?}]}], then "rule", "candidates", "cost" of the decision
 * or "decision": null and "filtered_rule"} and a newline to out. */
void explain_print_json(const explain_in *in, FILE *out);

#endif /* LANE_EXPLAIN_JSON_H */

/*
 * explain.h -- explanations of decisions (`lane eval --explain`, failed
 * policy tests): every rule tried, why a condition failed with the values
 * it saw, which check removed each model, the final order and costs.
 */
#ifndef LANE_EXPLAIN_H
#define LANE_EXPLAIN_H

#include <stdio.h>

#include "sema.h"

typedef struct explain_in {
  const sema_unit     *u;       /* the checked policy, or NULL (then only
                                   what the VM recorded is shown) */
  const lane_program  *prog;    /* the program decided on */
  const lane_runtime  *rt;      /* its live state */
  int                  route;   /* route index */
  const lane_request  *req;     /* the request */
  const lane_decision *dec;     /* the decision */
  int                  rc;      /* what lane_decide_traced returned */
  const lane_trace    *trace;   /* what the VM recorded */
} explain_in;

/* Writes the explanation as text, or as one JSON object when json is set. */
void explain_print(const explain_in *in, int json, FILE *out);

#endif

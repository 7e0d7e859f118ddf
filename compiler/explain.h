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
  lane_runtime        *rt;      /* its live state */
  int                  route;   /* route index */
  const lane_request  *req;     /* the request */
  const lane_decision *dec;     /* the decision */
  int                  rc;      /* what lane_decide_traced returned */
  const lane_trace    *trace;   /* what the VM recorded */
  const lane_live_stats *before;/* every model's live view just before the
                                   decision (explain_capture), or NULL:
                                   then rt is read as it is after it, and
                                   a breaker probe the decision claimed
                                   reads as the VM did not see it */
  uint64_t             now;     /* with before: the clock then */
} explain_in;

/* Takes every model's live view and the clock of rt, for explain_in's
 * before and now: call it just before deciding. NULL when memory runs
 * out (explain then reads rt as it is); free it with free(). */
lane_live_stats *explain_capture(const lane_runtime *rt, const lane_program *p, uint64_t *now);

/* Writes the explanation as text: each rule tried and why it did not
 * match, each model considered and why it was removed, then the decision.
 * The reasons come from the program's explain tables (lane_explain_text),
 * as a host with only the .lanec gets them; in->u is not read. */
void explain_print_text(const explain_in *in, FILE *out);

/* The same text with the reasons the evaluator finds in the policy's
 * source (in->u, required), read from the live view before the decision:
 * the oracle tests/unit/t_explain.c and the explain fuzz target hold the
 * tables' reasons equal to. */
void explain_print_source(const explain_in *in, FILE *out);

/* What the evaluator, which writes the reasons, finds for the decision's
 * request and state: whether rule `rule`'s condition holds (1, 0, -1 when
 * it raises an error, -2 when it cannot tell, as without the source), and
 * whether `model` passes every require and the filter of selection `sel`
 * of that rule (1, 0; -2 without the source). The explain fuzz target checks both against what
 * the VM recorded. */
int explain_rule_holds(const explain_in *in, int rule);
int explain_member_passes(const explain_in *in, int rule, int sel, int model);

#endif

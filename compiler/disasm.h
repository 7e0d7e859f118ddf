/*
 * disasm.h -- human-readable listing of a loaded .lanec program.
 *
 * Part of the tools library (liblanec), not of liblane: it prints.
 */
#ifndef LANE_DISASM_H
#define LANE_DISASM_H

#include <stdio.h>

#include "lane.h"

/* Writes the header, section table, models, fields, pools, lists, budgets,
 * routes with their rules, the code of every region with decoded operands
 * and the worst-case instruction counts. Deterministic: golden-tested.
 * When text (the policy source) is not NULL, each source line is printed
 * as a comment above the code compiled from it. */
void bc_disasm_source(FILE *out, const lane_program *p, const char *text);

#endif /* LANE_DISASM_H */

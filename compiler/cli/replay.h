/*
 * replay.h -- `lane replay` and `lane diff`: decide logged or captured
 * traffic again with a policy (and an old one beside it), check that the
 * policy that wrote a log reproduces it, and report cost, model and rule
 * mix, what changes and what it costs.
 */
#ifndef LANE_REPLAY_H
#define LANE_REPLAY_H

#include <stdio.h>

#include "lane.h"

typedef struct replay_opts {
  const char *format;       /* "text" or "json" */
  const char *route;        /* route for records that name none (plain requests) */
  double      max_changed;  /* diff gate: % of decisions changed; < 0 none */
  double      max_cost_increase; /* diff gate: % expected cost up; < 0 none */
  int         top;          /* requests listed whose cost changed most */
  int         progress;     /* show progress on stderr (a terminal) */
  const char *chart;        /* write an SVG chart here, or NULL */
  FILE       *out, *err;
} replay_opts;

/* Replays the records of files (decision logs, with outcomes; or JSON
 * Lines of plain requests) through prog, and through old too when not
 * NULL. names say how to call them. Returns 0; 1 when the policy that
 * wrote a log does not reproduce a logged decision, or a gate failed; 2
 * when a file cannot be read or no record could be used. */
int replay_run(const replay_opts *o, const lane_program *prog, const char *name,
               const lane_program *old, const char *oldname, const char *const *files,
               int nfiles);

/* Sets map field f of r from JSON object obj (a jansson json_t; its
 * strings are copied into r): values must fit the map's value type.
 * NULL, or why not. lane eval and lane replay read map fields so. */
const char *replay_set_map(lane_request *r, int f, const void *obj);
/* As replay_set_map, a list(string) field from a JSON array. */
const char *replay_set_list(lane_request *r, int f, const void *arr);

#endif

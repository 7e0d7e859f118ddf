/*
 * state.h -- runtime snapshots for the command line: `lane eval --state
 * FILE` decides against the live state a service exported with
 * lane_runtime_snapshot, so a surprising production decision can be
 * reproduced exactly.
 */
#ifndef LANE_STATE_H
#define LANE_STATE_H

#include <stdio.h>

#include "lane.h"

/* Creates a runtime for p whose clock is frozen at the snapshot's now_ms
 * and whose model stats, breakers and budget spend are the snapshot's.
 * NULL with a one-line reason on err when the file cannot be read, is not
 * a snapshot, or names a model or budget the program does not have. */
lane_runtime *state_runtime(const lane_program *p, const char *path, FILE *err);

#endif

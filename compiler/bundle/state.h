/*
 * state.h -- runtime snapshots (the JSON of lane_runtime_snapshot) read
 * into a runtime: `lane eval --state FILE` decides against the live state
 * a service exported, so a surprising production decision can be
 * reproduced exactly, and a policy test's `state FILE` runs against it
 * (from disk in `lane test`, from a bundle in lane_bundle_test).
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
/* The same from the n bytes of a snapshot already read, named path in
 * messages: test_opts.load_state (compiler/sema.h). */
lane_runtime *state_runtime_bytes(const lane_program *p, const char *path, const char *bytes,
                                  size_t n, FILE *err);

#endif

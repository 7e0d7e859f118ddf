/*
 * reqspec.h -- builds a lane_request from "name=value name=value ..." for
 * the C tests that decide many small requests (t_sema, t_runtime). Each
 * value is parsed by its field's type; a bad spec bails out of the test.
 * Header-only, after tap.h.
 */
#ifndef LANE_TEST_REQSPEC_H
#define LANE_TEST_REQSPEC_H

#include <stdlib.h>
#include <string.h>

#include "lane.h"
#include "tap.h"

/* Initialises r for p and sets the fields of spec. The string values live
 * in a static buffer: one request at a time. */
static void set_fields(lane_request *r, const lane_program *p, const char *spec) {
  static char buf[4096];
  char *save = NULL, *tok;
  lane_request_init(r, p);
  snprintf(buf, sizeof buf, "%s", spec ? spec : "");
  for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(tok, '=');
    int f, rc = LANE_EARG;
    if (!eq) bail("bad field spec '%s'", tok);
    *eq++ = 0;
    f = lane_field(p, tok);
    switch (lane_field_type(p, f)) {
    case LANE_T_STRING: rc = lane_set_str(r, f, eq, strlen(eq)); break;
    case LANE_T_INT: rc = lane_set_int(r, f, strtoll(eq, NULL, 10)); break;
    case LANE_T_UINT: rc = lane_set_uint(r, f, strtoull(eq, NULL, 10)); break;
    case LANE_T_DOUBLE: rc = lane_set_double(r, f, strtod(eq, NULL)); break;
    case LANE_T_BOOL: rc = lane_set_bool(r, f, strcmp(eq, "true") == 0); break;
    default: break;
    }
    if (rc != LANE_OK) bail("cannot set field '%s' to '%s'", tok, eq);
  }
}

#endif /* LANE_TEST_REQSPEC_H */

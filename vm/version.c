/*
 * version.c -- lane_version, lane_abi_version and lane_abi_check: a host
 * (or a binding in another language) finds out at run time whether the
 * liblane it loaded has the struct layouts it was built for.
 */
#include "vm.h"

const char *lane_version(void) { return LANE_VERSION_STRING; }

int lane_abi_version(void) { return LANE_ABI_VERSION; }

int lane_abi_check(int abi, const size_t *sizes, int n, lane_error *err) {
  static const char *const names[LANE_ABI_NSIZES] = {
      "lane_error", "lane_request", "lane_decision", "lane_event", "lane_trace",
      "lane_live_stats", "lane_budget_stats", "lane_state_report", "lane_load_options",
      "lane_runtime_options", "lane_outcome", "lane_entry"};
  const size_t mine[LANE_ABI_NSIZES] = LANE_ABI_SIZES;
  if (abi != LANE_ABI_VERSION)
    return errf(err, LANE_EVERSION,
                "built for lane ABI %d, but this liblane %s has ABI %d: rebuild against its "
                "lane.h", abi, LANE_VERSION_STRING, LANE_ABI_VERSION);
  if (n < 0 || n > LANE_ABI_NSIZES || (n > 0 && !sizes))
    return errf(err, LANE_EARG, "lane_abi_check: %d sizes given, this liblane knows %d", n,
                LANE_ABI_NSIZES);
  for (int i = 0; i < n; i++)
    if (sizes[i] != mine[i])
      return errf(err, LANE_EVERSION,
                  "%s is %zu bytes where the host was built, %zu in this liblane %s: "
                  "rebuild against its lane.h", names[i], sizes[i], mine[i],
                  LANE_VERSION_STRING);
  return errf(err, LANE_OK, "%s", "");
}

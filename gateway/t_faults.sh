#!/bin/sh
# t_faults.sh -- the fault cases of gateway/bench/faults.py that t_gateway.py
# does not check, as TAP (run by `make test` under prove): upstream calls per
# client request under retries (a chain that fails throughout: 3 x (1 + 2)
# calls; a 500 twice then an answer; a stream retried before its first
# byte; a dropped connection and a malformed 200 not retried).
#
# Environment (set by `make test`): BUILD (build dir), LANE (the lane
# command), CC. Writes under $BUILD/tests/faults/.
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
OUT=$BUILD/tests/faults
mkdir -p "$OUT" || exit 2
if ! echo '#include <microhttpd.h>' | ${CC:-cc} -E - >/dev/null 2>&1; then
  echo "1..1"
  echo "not ok 1 - libmicrohttpd-dev is installed (make deps, as root, installs it)"
  exit 1
fi
if ! make --no-print-directory BUILD="$BUILD" gateway >"$OUT/build.log" 2>&1; then
  echo "1..1"
  echo "not ok 1 - make gateway"
  sed 's/^/# /' "$OUT/build.log"
  exit 0
fi
exec python3 gateway/bench/faults.py --build "$BUILD" --lane "$LANE" --out "$OUT" --tap

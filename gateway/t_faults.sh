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
. gateway/prologue.sh   # OUT made, libmicrohttpd there, the gateway built
exec python3 gateway/bench/faults.py --build "$BUILD" --lane "$LANE" --out "$OUT" --tap

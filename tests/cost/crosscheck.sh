#!/bin/sh
# crosscheck.sh -- builds tests/cost/crosscheck.c and runs it: `lane eval`
# must give, to the last bit, the expected cost computed independently from
# the LiteLLM catalog for thousands of (model, request) pairs over the
# generated stdlib/providers modules (issue 3). See crosscheck.c.
#
# Environment (set by `make test`): BUILD (build dir), LANE (the lane
# command, absolute), CC, SAN (sanitizer flags). CATALOG overrides the
# catalog path (default: tests/cost/litellm_model_prices.json, the copy of
# the shared catalog that stdlib/providers was generated from, so the
# check travels with the repository). Writes only under $BUILD/tests/cost/.
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
LANE=${LANE:-$ROOT/$BUILD/lane}
CC=${CC:-cc}
SAN=${SAN:-}
CATALOG=${CATALOG:-$ROOT/tests/cost/litellm_model_prices.json}
OUT=$BUILD/tests/cost

if [ ! -f "$CATALOG" ]; then
  echo "1..1"
  echo "not ok 1 - the catalog is readable at $CATALOG"
  exit 1
fi
case $LANE in /*) ;; *) LANE=$ROOT/$LANE ;; esac
if [ ! -x "$LANE" ]; then
  echo "Bail out! no lane command at $LANE (run make all first)"
  exit 255
fi

mkdir -p "$OUT" || exit 2
rm -rf "$OUT/work" "$OUT/crosscheck"
# shellcheck disable=SC2086  # SAN is a list of flags
if ! $CC $SAN -std=c11 -D_POSIX_C_SOURCE=200809L -ffp-contract=off -Wall -Wextra -Werror \
     -I"$ROOT/tests" -o "$OUT/crosscheck" tests/cost/crosscheck.c -ljansson -lm \
     2> "$OUT/build.err"; then
  echo "1..1"
  echo "not ok 1 - tests/cost/crosscheck.c builds"
  sed 's/^/# /' "$OUT/build.err"
  exit 1
fi

# The generated modules are read from this checkout's stdlib/, and lane is
# told to import from the same place.
export LANE_STDLIB="$ROOT/stdlib"
exec "$OUT/crosscheck" "$LANE" "$CATALOG" "$ROOT/stdlib" "$OUT/work"

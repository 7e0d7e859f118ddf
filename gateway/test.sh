#!/bin/sh
# test.sh -- lane-gateway end to end, as TAP (run by `make test` under prove).
#
# Builds build/lane-gateway (`make gateway`), then t_gateway.py compiles
# examples/policies/support.lane, starts fake_provider.py and the gateway on
# 127.0.0.1, and checks fallbacks, errors, dry runs, streaming, cross-format
# translation, metrics, and the official OpenAI and Anthropic Node.js SDKs
# (installed into gateway/node/ with npm ci; skipped when that
# cannot be done). A second, fresh gateway serves t_gateway.lane for the
# budget spend (exact, per tenant and team, from GET /admin/state) and
# circuit breaker checks. The servers stop by themselves if left running.
#
# Environment (set by `make test`): BUILD (build dir), LANE (the lane
# command), CC. Writes under $BUILD/tests/gateway/ (and node_modules/).
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
OUT=$BUILD/tests/gateway
. gateway/prologue.sh   # OUT made, libmicrohttpd there, the gateway built
exec python3 gateway/t_gateway.py --gateway "$BUILD/lane-gateway" --lane "$LANE" --out "$OUT"

#!/bin/sh
# demo.sh -- the main job on the bundled example: compile the support
# policy, run its tests, and decide for every example request.
# Usage: sh examples/demo.sh [path/to/lane]
set -e
LANE=${1:-build/lane}
out=$(dirname "$LANE")/support.lanec
"$LANE" compile examples/policies/support.lane -o "$out"
echo "compiled examples/policies/support.lane -> $out ($(wc -c <"$out") bytes, verified)"
echo
echo "policy tests:"
"$LANE" test examples/policies/support.lane | sed 's/^/  /'
echo
printf '%-36s %-8s %-6s  %-34s  %s\n' request route rule primary "fallbacks / shadows / expected cost"
"$LANE" eval "$out" --route support --format text examples/requests/*.json

echo
echo "the same requests during an incident (examples/state/incident.json: gpt-5-mini's"
echo "breaker open, gemini flash-lite slow, tenant t-acme over its daily budget):"
"$LANE" eval "$out" --route support --format text --state examples/state/incident.json \
  examples/requests/*.json

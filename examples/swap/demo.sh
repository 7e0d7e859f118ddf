#!/bin/sh
# demo.sh -- the swap, end to end: a chat product on a rented frontier
# model with the in-house model muse on a 5% canary; an hour of real
# traffic (the Azure LLM inference trace: arrival times and token sizes)
# decided and logged; the log replayed to check it; then `lane diff` of
# the canary against "muse takes all chat": the cost saved, the requests
# that move, the latency change, and a chart.
# Usage: sh examples/swap/demo.sh [path/to/lane]
set -e
LANE=${1:-build/lane}
out=$(dirname "$LANE")/swap
mkdir -p "$out"
rm -f "$out/decisions.log"

"$LANE" convert trace tests/runtime/azure_conv_4000.csv --set task=chat --users 2000 \
  -o "$out/traffic.jsonl"
echo "traffic: $(wc -l <"$out/traffic.jsonl") chat requests from an hour of a real trace ->" \
  "$out/traffic.jsonl"

openssl rand -hex 16 >"$out/log.key" 2>/dev/null ||
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$out/log.key"
"$LANE" eval examples/swap/canary.lane --log "$out/decisions.log" --log-key "$out/log.key" \
  "$out/traffic.jsonl" >/dev/null
echo "logged: $(wc -l <"$out/decisions.log") decisions of examples/swap/canary.lane ->" \
  "$out/decisions.log (users hashed)"
echo

echo "\$ lane replay examples/swap/canary.lane $out/decisions.log"
"$LANE" replay examples/swap/canary.lane "$out/decisions.log" | sed 's/^/  /'
echo

echo "\$ lane diff examples/swap/canary.lane examples/swap/allin.lane $out/decisions.log --top 5 \\"
echo "    --chart $out/chart.svg"
"$LANE" diff examples/swap/canary.lane examples/swap/allin.lane "$out/decisions.log" --top 5 \
  --chart "$out/chart.svg" | sed 's/^/  /'
echo
echo "chart: $out/chart.svg (cost so far and model mix over the hour, old dashed, new solid)"
echo

# Ship: a signed bundle of the new policy, checked as the gateway checks it
# before it swaps it in (signature, then the policy's tests).
rm -f "$out/release.key" "$out/release.pub"
"$LANE" keygen -o "$out/release" >/dev/null
echo "\$ lane build examples/swap/allin.lane -o $out/allin.bundle --sign $out/release.key --revision allin-1"
"$LANE" build examples/swap/allin.lane -o "$out/allin.bundle" --sign "$out/release.key" \
  --revision allin-1 | sed 's/^/  /'
echo "\$ lane inspect $out/allin.bundle --key $out/release.pub --test"
"$LANE" inspect "$out/allin.bundle" --key "$out/release.pub" --test | sed 's/^/  /'
echo "then: \"policy\": \"allin.bundle\", \"policy_key\": \"release.pub\" in the gateway's config," \
  "and kill -HUP (gateway/README.md, \"Reloading the policy\")"

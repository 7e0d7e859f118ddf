#!/bin/sh
# replay.sh -- decision logs, `lane replay` and `lane diff`, as TAP:
# decide -> log -> replay reproduces every decision with the live state
# (a breaker open, p95s and error rates, budget spend) that the log
# carries; sensitive fields never appear in clear; a malformed line is
# reported with its file and line and the rest still read; a tampered
# record is caught; --against and diff report what changes; diff's gates
# exit 1; every record validates against doc/decision-log.schema.json.
#
# Environment (set by `make test`): LANE (the lane command), BUILD.
# Writes only under $BUILD/tests/replay/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
case "$LANE" in /*) ;; *) LANE=$(pwd)/$LANE ;; esac
OUT=$BUILD/tests/replay
rm -rf "$OUT"
mkdir -p "$OUT" || exit 2
. tests/tap.sh

POLICY=examples/policies/support.lane
REQS=$(ls examples/requests/*.json)
NREQ=$(echo "$REQS" | wc -l)

# ---- round trip with live state ----
# the incident snapshot: gpt-5-mini's breaker open, live p95s and error
# rates, t-acme's daily spend
# shellcheck disable=SC2086
"$LANE" eval "$POLICY" --route support --state examples/state/incident.json \
  --log "$OUT/d.log" $REQS >"$OUT/o" 2>"$OUT/e"
t $? "lane eval --log writes a decision record per request"
show "$OUT/e"
[ "$(wc -l <"$OUT/d.log")" -eq "$NREQ" ]
t $? "  one line per request ($NREQ)"
grep -q '"breaker":"open"' "$OUT/d.log" && grep -q '"spent":212.4' "$OUT/d.log"
t $? "  the records carry the breaker and the tenant's spend the decisions read"

"$LANE" replay "$POLICY" "$OUT/d.log" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "reproduced: $NREQ of $NREQ logged decisions" "$OUT/o"
t $? "replay with the policy that wrote the log reproduces every decision (exit $rc)"
show "$OUT/o"; show "$OUT/e"

# the same requests without the incident decide otherwise: the state matters
# shellcheck disable=SC2086
"$LANE" eval "$POLICY" --route support $REQS >"$OUT/calm" 2>/dev/null
# shellcheck disable=SC2086
"$LANE" eval "$POLICY" --route support --state examples/state/incident.json $REQS >"$OUT/incident" 2>/dev/null
! cmp -s "$OUT/calm" "$OUT/incident"
t $? "  (the incident changes decisions, so reproducing them needs the logged state)"

# ---- a tampered record is caught, with its file and line ----
sed '3s/"rule":[0-9]*/"rule":99/' "$OUT/d.log" >"$OUT/tampered.log"
"$LANE" replay "$POLICY" "$OUT/tampered.log" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "tampered.log:3: decision .* not reproduced by .*: logged rule 99" "$OUT/e"
t $? "a record the policy does not reproduce is an error naming file:line (exit $rc)"
show "$OUT/e"

# ---- malformed lines are reported and skipped ----
{ head -2 "$OUT/d.log"; echo '{"v":1,"type":"decision",'; echo 'not json'; tail -n +3 "$OUT/d.log"; } >"$OUT/broken.log"
"$LANE" replay "$POLICY" "$OUT/broken.log" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "broken.log:3: not a JSON object" "$OUT/e" &&
  grep -q "broken.log:4: not a JSON object" "$OUT/e" &&
  grep -q "reproduced: $NREQ of $NREQ" "$OUT/o" && grep -q "(2 lines skipped)" "$OUT/o"
t $? "malformed lines are reported with file:line and skipped; every other record replays"
show "$OUT/e"

# ---- sensitive fields ----
cat >"$OUT/s.lane" <<'EOF'
model a { input $1/Mtok  output $2/Mtok }
model b { input $3/Mtok  output $4/Mtok }
request { user: string sensitive  email: string sensitive  team: string }
route r {
  when req.team == "red" -> a
  otherwise -> cheapest(models)
}
EOF
printf '%s\n' '{"user":"alice-7781","email":"alice@example.com","team":"red"}' \
  '{"user":"bob-1200","email":"bob@example.com","team":"blue"}' >"$OUT/s.jsonl"
echo 000102030405060708090a0b0c0d0e0f >"$OUT/key"
"$LANE" eval "$OUT/s.lane" --log "$OUT/s.log" --log-key "$OUT/key" "$OUT/s.jsonl" >/dev/null 2>"$OUT/e"
t $? "a policy with sensitive fields logs"
show "$OUT/e"
! grep -q -e alice -e bob -e example.com "$OUT/s.log" && grep -q '"user":"h:[0-9a-f]\{16\}"' "$OUT/s.log"
t $? "  sensitive fields appear only as keyed hashes, never in clear"
show "$OUT/s.log"
"$LANE" eval "$OUT/s.lane" --log "$OUT/s2.log" "$OUT/s.jsonl" >/dev/null 2>&1
! grep -q -e alice -e bob -e example.com "$OUT/s2.log" && grep -q '"email":"redacted"' "$OUT/s2.log"
t $? "  without a key they are written as \"redacted\""
"$LANE" replay "$OUT/s.lane" "$OUT/s.log" >"$OUT/o" 2>"$OUT/e"
grep -q "reproduced: 2 of 2" "$OUT/o"
t $? "  and the log replays"
printf 'model a { input $1/Mtok output $1/Mtok }\nrequest { n: int sensitive }\nroute r { otherwise -> a }\n' >"$OUT/bad.lane"
"$LANE" check "$OUT/bad.lane" >/dev/null 2>"$OUT/e"
[ $? = 1 ] && grep -q "bad.lane:2:11: error: only a string field can be sensitive" "$OUT/e"
t $? "  only a string field can be sensitive: an error at file:line:col"
show "$OUT/e"
echo 0011 >"$OUT/shortkey"
"$LANE" eval "$OUT/s.lane" --log "$OUT/s3.log" --log-key "$OUT/shortkey" "$OUT/s.jsonl" >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "a log key is 32 hex digits" "$OUT/e"
t $? "  a bad log key is refused, nothing decided"

# ---- a policy change: --against and diff ----
# the canary goes from 5% to everything: muse takes the chat traffic
sed 's/bucket(req.user) < 5%/bucket(req.user) < 100%/' "$POLICY" >"$OUT/allin.lane"
grep -q '< 100%' "$OUT/allin.lane"
t $? "  (the new policy differs from the old: the canary at 100%)"
"$LANE" replay "$OUT/allin.lane" "$OUT/d.log" --against "$POLICY" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "^changed: [1-9][0-9]* of $NREQ decisions" "$OUT/o" && grep -q "most changed in cost:" "$OUT/o"
t $? "replay --against shows the decisions that change and the costliest changes (exit $rc)"
show "$OUT/o"

"$LANE" diff "$POLICY" "$OUT/allin.lane" "$OUT/d.log" --max-changed 0 >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "gate failed: too many decisions changed" "$OUT/o"
t $? "diff --max-changed 0 fails the gate (exit $rc)"
"$LANE" diff "$POLICY" "$OUT/allin.lane" "$OUT/d.log" --max-changed 100 --max-cost-increase 100 >"$OUT/o" 2>"$OUT/e"
t $? "diff with loose gates passes"
"$LANE" diff "$POLICY" "$POLICY" "$OUT/d.log" --max-changed 0 --max-cost-increase 0 --format json >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["changed"] == 0 and d["cost_change_percent"] == 0 and not d["gate_failed"], d
assert d["decisions"] == int(sys.argv[2]), d
' "$OUT/o" "$NREQ"
t $? "diff of a policy with itself changes nothing, as JSON (exit $rc)"
show "$OUT/e"

# plain requests (no state) as traffic, JSON Lines
cat $REQS | python3 -c 'import json,sys; [print(json.dumps(json.loads(l))) for l in sys.stdin.read().replace("}\n{", "}\x00{").split("\x00")]' >"$OUT/plain.jsonl" 2>/dev/null ||
  for f in $REQS; do tr -d '\n' <"$f"; echo; done >"$OUT/plain.jsonl"
"$LANE" diff "$POLICY" "$OUT/allin.lane" "$OUT/plain.jsonl" --route support >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "decisions" "$OUT/o"
t $? "diff reads JSON Lines of plain requests as traffic (--route) (exit $rc)"
show "$OUT/e"

# ---- outcomes join their decisions ----
id=$(head -1 "$OUT/d.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["id"])')
model=$(head -1 "$OUT/d.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["candidates"][0])')
{ cat "$OUT/d.log"; printf '{"v":1,"type":"outcome","id":"%s","ts":1,"model":"%s","attempts":1,"fallbacks":0,"status":200,"latency_ms":812,"input_tokens":900,"output_tokens":100,"cost":0.5,"score":0.75}\n' "$id" "$model"; } >"$OUT/with_outcome.log"
"$LANE" replay "$POLICY" "$OUT/with_outcome.log" --format json >"$OUT/o" 2>"$OUT/e"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m = [x for x in d["models"] if x["model"] == sys.argv[2]][0]
assert m["outcomes"] == 1 and m["actual_cost"] == 0.5 and m["mean_score"] == 0.75, m
' "$OUT/o" "$model"
t $? "an outcome record joins its decision by id: actual cost and score per model"
show "$OUT/e"

# ---- lane convert ----
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,x\n2023-11-16 18:16:00,1000,10\n' >"$OUT/t.csv"
"$LANE" convert trace "$OUT/t.csv" --set task=chat --set images=0 --users 50 -o "$OUT/t.jsonl" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && [ "$(wc -l <"$OUT/t.jsonl")" -eq 2 ] && grep -q "t.csv:3: not a trace row; skipped" "$OUT/e" &&
  head -1 "$OUT/t.jsonl" | grep -q '"ts":1700158546680' &&
  head -1 "$OUT/t.jsonl" | grep -q '"input_tokens":374,"max_output_tokens":44,"task":"chat","images":0,"user":"u-'
t $? "convert trace: arrival times (UTC ms), token sizes, --set fields, users; a bad row named and skipped (exit $rc)"
show "$OUT/t.jsonl"; show "$OUT/e"
"$LANE" convert trace tests/runtime/azure_conv_4000.csv --set task=chat --users 500 -o "$OUT/conv.jsonl" 2>"$OUT/e" &&
  [ "$(wc -l <"$OUT/conv.jsonl")" -eq 4000 ]
t $? "convert trace: the bundled 4,000-request slice of the Azure conversation trace"
"$LANE" eval examples/swap/canary.lane --log "$OUT/conv.log" "$OUT/conv.jsonl" >/dev/null 2>"$OUT/e" &&
  "$LANE" replay examples/swap/canary.lane "$OUT/conv.log" >"$OUT/o" 2>"$OUT/e" &&
  grep -q "reproduced: 4000 of 4000" "$OUT/o" && head -1 "$OUT/conv.log" | grep -q '"ts":1700158546680'
t $? "a converted trace decided at its arrival times, logged (users redacted, their buckets kept) and replayed: all reproduced"
show "$OUT/e"
"$LANE" convert body "$POLICY" tests/json/openai/*.json tests/json/anthropic/*.json -o "$OUT/bodies.jsonl" 2>"$OUT/e"
rc=$?
[ "$(wc -l <"$OUT/bodies.jsonl")" -ge 2 ] && grep -q '"input_tokens":' "$OUT/bodies.jsonl" &&
  "$LANE" diff "$POLICY" "$OUT/allin.lane" "$OUT/bodies.jsonl" --route support >"$OUT/o" 2>>"$OUT/e"
t $? "convert body: OpenAI and Anthropic request bodies as request records, diffed (exit $rc)"
show "$OUT/e"
"$LANE" diff examples/swap/canary.lane examples/swap/allin.lane "$OUT/conv.log" --chart "$OUT/chart.svg" >/dev/null 2>"$OUT/e" &&
  python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
lines = [e for e in root.iter() if e.tag.endswith("polyline")]
assert len(lines) >= 4, len(lines)
' "$OUT/chart.svg"
t $? "diff --chart writes an SVG of cost and model mix over time, old and new"
show "$OUT/e"

# ---- bad input: a clear message, exit 2, nothing written ----
bad() {   # bad EXPECTED-TEXT ARGS...: lane ARGS exits 2 and says EXPECTED-TEXT
  want=$1; shift
  "$LANE" "$@" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  [ $rc = 2 ] && grep -q -- "$want" "$OUT/e"
  t $? "lane $* -> exit 2: $want (exit $rc)"
  show "$OUT/e"
}
bad "--top needs a whole number from 0 to 1000000, not '-1'" diff "$POLICY" "$POLICY" "$OUT/d.log" --top -1
bad "--users needs a whole number from 1 to 1000000000, not '0'" convert trace "$OUT/t.csv" --users 0
bad "--max-changed needs a percentage" diff "$POLICY" "$POLICY" "$OUT/d.log" --max-changed lots
bad "--set needs FIELD=VALUE" convert trace "$OUT/t.csv" --set task
bad "the gates --max-changed and --max-cost-increase are diff's" replay "$POLICY" "$OUT/d.log" --max-changed 5
printf 'a,b\n1,2\n' >"$OUT/notrace.csv"
bad "notrace.csv:1: not a trace: the header needs ContextTokens and GeneratedTokens" convert trace "$OUT/notrace.csv"
printf 'not json\n' >"$OUT/junk.log"
bad "no decision or request to replay" replay "$POLICY" "$OUT/junk.log"
bad "cannot write the chart" diff "$POLICY" "$POLICY" "$OUT/d.log" --chart "$OUT/no/such/dir/c.svg"

# ---- a map field round trip ----
# req.metadata (map(string, string)) and a map(string, int): logged as
# JSON objects, read back by replay, which decides the same
cat >"$OUT/map.lane" <<'EOF'
model m1 { input $1/Mtok output $1/Mtok }
model m2 { input $1/Mtok output $1/Mtok }
model m3 { input $1/Mtok output $1/Mtok }
request { metadata: map(string, string)  limits: map(string, int) }
route r {
  when req.metadata.team == "search" -> m1
  when "rpm" in req.limits && req.limits.rpm > 100 -> m2
  otherwise -> m3
}
EOF
printf '%s\n' '{"metadata": {"team": "search", "x": "y"}}' '{"limits": {"rpm": 500}}' \
  '{"metadata": {}, "limits": {"rpm": 5}}' >"$OUT/map.jsonl"
"$LANE" eval "$OUT/map.lane" --log "$OUT/map.log" "$OUT/map.jsonl" >"$OUT/o" 2>"$OUT/e"
t $? "lane eval reads map fields from JSON objects and logs them"
show "$OUT/e"
grep -o '"rule": [0-9]' "$OUT/o" | tr '\n' ' ' | grep -q '"rule": 1 "rule": 2 "rule": 3'
t $? "  the decisions read the maps (rules 1, 2, 3)"
grep -q '"request":{"metadata":{"team":"search","x":"y"}}' "$OUT/map.log"
t $? "  a map is logged as an object, its entries in order"
"$LANE" replay "$OUT/map.lane" "$OUT/map.log" >"$OUT/o" 2>"$OUT/e"
[ $? = 0 ] && grep -q "reproduced: 3 of 3 logged decisions" "$OUT/o"
t $? "  lane replay reads the maps back and reproduces every decision"
show "$OUT/e"
printf '%s\n' '{"limits": {"rpm": "many"}}' >"$OUT/badmap.jsonl"
"$LANE" eval "$OUT/map.lane" "$OUT/badmap.jsonl" >"$OUT/o" 2>"$OUT/e"
[ $? != 0 ] && grep -q "field 'limits' (map(string, int)): a map's value is not of the map's value type" "$OUT/e"
t $? "  a map value of the wrong type is refused, naming the field"
show "$OUT/e"

# ---- the schema ----
python3 tests/schema_check.py "$OUT/d.log" "$OUT/s.log" "$OUT/with_outcome.log" "$OUT/conv.log" \
  "$OUT/map.log"
t $? "every record written validates against doc/decision-log.schema.json"

tap_end

#!/bin/sh
# cli.sh -- the lane command's argument handling and request sources, as
# TAP: any number of files and repeated options (no silent limit), lane
# eval reading stdin and JSON Lines with each request's source named,
# --ignore-unknown, the default route, and lane eval --expr.
#
# Environment (set by `make test`): LANE (the lane command), BUILD.
# Writes only under $BUILD/tests/cli/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
case "$LANE" in /*) ;; *) LANE=$(pwd)/$LANE ;; esac
OUT=$BUILD/tests/cli
rm -rf "$OUT"
mkdir -p "$OUT" || exit 2
. tests/tap.sh

# ---- any number of files ----
good='model a { input $1/Mtok  output $1/Mtok }

route r {
  otherwise -> a
}'
i=1
while [ $i -le 70 ]; do printf '%s\n' "$good" >"$OUT/p$i.lane"; i=$((i + 1)); done
printf 'model a { input $1/Mtok  output $1/Mtok }\nroute r { otherwise -> b }\n' >"$OUT/p69.lane"
files=$(i=1; while [ $i -le 70 ]; do printf '%s ' "$OUT/p$i.lane"; i=$((i + 1)); done)
# shellcheck disable=SC2086
"$LANE" check $files >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "p69.lane:2:24: error: unknown model 'b'" "$OUT/e"
t $? "lane check on 70 files reports the error in file 69 and exits 1 (exit $rc)"
show "$OUT/e"

i=66
while [ $i -le 70 ]; do printf 'model a {input $1/Mtok output $1/Mtok}\nroute r {otherwise->a}\n' >"$OUT/p$i.lane"; i=$((i + 1)); done
# shellcheck disable=SC2086
"$LANE" fmt --check $files >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && [ "$(grep -c 'is not formatted' "$OUT/e")" = 5 ] && grep -q 'p70.lane is not formatted' "$OUT/e"
t $? "lane fmt --check on 70 files finds the 5 unformatted ones, 66 to 70 (exit $rc)"
show "$OUT/e"

# 2,000 request files, one decision each
mkdir -p "$OUT/reqs"
i=1
while [ $i -le 2000 ]; do printf '{"input_tokens": %d}\n' $i >"$OUT/reqs/r$i.json"; i=$((i + 1)); done
printf '%s\n' "$good" >"$OUT/one.lane"
( cd "$OUT/reqs" && "$LANE" eval ../one.lane --route r r*.json ) >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && [ "$(wc -l <"$OUT/o")" = 2000 ] && [ ! -s "$OUT/e" ]
t $? "lane eval on 2,000 request files prints 2,000 decisions (exit $rc, $(wc -l <"$OUT/o") lines)"

# -I given 20 times: the module is found in the 20th directory
i=1
incs=""
while [ $i -le 20 ]; do mkdir -p "$OUT/inc$i"; incs="$incs -I $OUT/inc$i"; i=$((i + 1)); done
printf 'model far { input $1/Mtok  output $1/Mtok }\n' >"$OUT/inc20/farmod.lane"
printf 'import "farmod"\nroute r { otherwise -> farmod.far }\n' >"$OUT/far.lane"
# shellcheck disable=SC2086
"$LANE" check $incs "$OUT/far.lane" >"$OUT/o" 2>"$OUT/e"
t $? "-I given 20 times: an import is found in the 20th directory"
show "$OUT/e"

# --disable given 70 times (the same lint), then --enable 70 times
opts=""
i=1
while [ $i -le 70 ]; do opts="$opts --disable no-otherwise --enable unused-model"; i=$((i + 1)); done
printf 'model a { input $1/Mtok  output $1/Mtok }\nroute r {\n  when req.tier == "x" -> a\n}\n' >"$OUT/lint.lane"
# shellcheck disable=SC2086
"$LANE" lint $opts "$OUT/lint.lane" >"$OUT/o" 2>"$OUT/e"
rc=$?
! grep -q 'no-otherwise' "$OUT/o" && [ ! -s "$OUT/e" ]
t $? "lint with 140 repeated --disable/--enable options: all taken (exit $rc)"
show "$OUT/o"; show "$OUT/e"

# ---- request sources ----
printf '{"input_tokens": 10}\n{"input_tokens": 20}\n\n{"input_tokens": 30,\n "max_output_tokens": 5}\n' >"$OUT/reqs.jsonl"
"$LANE" eval "$OUT/one.lane" --route r "$OUT/reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && [ "$(sed -n 's/^{"source": "\([^"]*\)".*/\1/p' "$OUT/o" | tr '\n' ' ')" = \
  "$OUT/reqs.jsonl:1 $OUT/reqs.jsonl:2 $OUT/reqs.jsonl:4 " ]
t $? "JSON Lines: three requests, each named file:line (a value may span lines)"
show "$OUT/o"; show "$OUT/e"

cat "$OUT/reqs.jsonl" | "$LANE" eval "$OUT/one.lane" --route r - >"$OUT/o" 2>"$OUT/e"
[ $? = 0 ] && [ "$(grep -c '"source": "stdin:' "$OUT/o")" = 3 ]
t $? "- reads the requests from stdin, named stdin:LINE"

printf '{"input_tokens": 10}' | "$LANE" eval "$OUT/one.lane" --route r - >"$OUT/o" 2>"$OUT/e"
grep -q '^{"source": "stdin", ' "$OUT/o"
t $? "one request on stdin is named stdin"

"$LANE" eval "$OUT/one.lane" --route r "$OUT/reqs/r7.json" >"$OUT/o" 2>"$OUT/e"
grep -q "^{\"source\": \"$OUT/reqs/r7.json\", " "$OUT/o"
t $? "a file with one request is named by its path"

printf '{"input_tokens": 1}\n{"input_tokens": }\n' | "$LANE" eval "$OUT/one.lane" --route r - >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$OUT/o")" = 1 ] && grep -q '^lane: stdin:2:18: invalid JSON' "$OUT/e"
t $? "invalid JSON on line 2: the first request decides, then exit 2 naming stdin:2:18"
show "$OUT/e"

printf '{"input_tokens": 1, "colour": "red"}\n' >"$OUT/unknown.json"
"$LANE" eval "$OUT/one.lane" --route r "$OUT/unknown.json" >"$OUT/o" 2>"$OUT/e"
[ $? = 2 ] && grep -q "unknown request field 'colour'.*--ignore-unknown" "$OUT/e"
t $? "an unknown field is refused, and the message names --ignore-unknown"
"$LANE" eval "$OUT/one.lane" --route r --ignore-unknown "$OUT/unknown.json" >"$OUT/o" 2>"$OUT/e"
[ $? = 0 ] && grep -q '"primary": "a"' "$OUT/o"
t $? "--ignore-unknown decides on the fields the policy knows"

# ---- the default route ----
"$LANE" eval "$OUT/one.lane" "$OUT/reqs/r1.json" >"$OUT/o" 2>"$OUT/e"
[ $? = 0 ] && grep -q '"route": "r"' "$OUT/o"
t $? "one route: --route may be left out"
printf 'model a { input $1/Mtok  output $1/Mtok }\nroute r1 { otherwise -> a }\nroute r2 { otherwise -> a }\n' >"$OUT/two.lane"
"$LANE" eval "$OUT/two.lane" "$OUT/reqs/r1.json" >"$OUT/o" 2>"$OUT/e"
[ $? = 2 ] && grep -q 'the program has 2 routes; say which with --route: r1 r2' "$OUT/e"
t $? "two routes and no --route: exit 2, the routes listed"
show "$OUT/e"

# ---- eval --expr ----
# bucket() computed apart from lane: splitmix64(fnv1a64(key)) % 100.
want=$(python3 -c '
import sys
M = (1 << 64) - 1
def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & M
    return h
def sm(x):
    z = (x + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return (z ^ (z >> 31)) & M
print("%d%%" % (sm(fnv(b"u-1268")) % 100), "%d%%" % (sm(2) % 100), "%d%%" % (sm(7) % 100))')
got=$("$LANE" eval --expr 'bucket("u-1268")' 2>&1; "$LANE" eval --expr 'bucket(2u)' 2>&1;
      "$LANE" eval --expr 'bucket(7)' 2>&1)
[ "$(echo $got)" = "$want" ]
t $? "--expr: bucket(\"u-1268\"), bucket(2u), bucket(7) as computed apart ($want; got $(echo $got))"
[ "$("$LANE" eval --expr 'bucket(-1) == bucket(18446744073709551615u)')" = true ]
t $? "--expr: an int and a uint with the same bits share a bucket"
# 1200 * 2e-07 + 300 * 1e-06 in doubles is 0.0005399999999999999 (python3
# agrees), not the double nearest 0.00054, and is shown so
[ "$("$LANE" eval --expr '$0.2/Mtok * 1.2k + $1/Mtok * 0.3k')" = '$0.0005399999999999999' ] &&
  [ "$("$LANE" eval --expr '$0.00024 + $0.0003')" = '$0.00054' ]
t $? "--expr: money shows every digit that tells two values apart"
"$LANE" eval --expr '1 / 0' >"$OUT/o" 2>"$OUT/e"
[ $? = 1 ] && grep -q 'division by zero' "$OUT/e"
t $? "--expr: an error exits 1 and says what"
"$LANE" eval --expr 'req.input_tokens * 2' >"$OUT/o" 2>"$OUT/e"
[ $? = 2 ] && grep -q 'reads request fields; give request files' "$OUT/e"
t $? "--expr reading request fields without requests: exit 2, says to give them"
"$LANE" eval --expr 'req.input_tokens * 2' "$OUT/reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
[ "$(cat "$OUT/o" | tr '\n' '|')" = "$OUT/reqs.jsonl:1: 20 tokens|$OUT/reqs.jsonl:2: 40 tokens|$OUT/reqs.jsonl:4: 60 tokens|" ]
t $? "--expr on each request of a JSON Lines file"
show "$OUT/o"
printf 'model a { input $1/Mtok  output $1/Mtok }\nrequest { team: string }\nroute r { otherwise -> a }\n' >"$OUT/team.lane"
printf '{"team": "red"}\n{}\n' | "$LANE" eval --expr 'has(req.team) && req.team.startsWith("r")' "$OUT/team.lane" - >"$OUT/o" 2>"$OUT/e"
[ "$(cat "$OUT/o" | tr '\n' '|')" = "stdin:1: true|stdin:2: false|" ]
t $? "--expr with a policy's own fields and has()"
show "$OUT/o"; show "$OUT/e"
"$LANE" eval --expr 'req.nope' >"$OUT/o" 2>"$OUT/e"
[ $? = 1 ] && grep -q "^--expr:1:1: error: unknown request field 'nope'" "$OUT/e"
t $? "--expr: an unknown field is a compile error at --expr:1:1"

# ---- budgets: on_full from the policy, and from a snapshot ----
printf 'model cheap { input $1/Mtok  output $1/Mtok }\nmodel good { input $2/Mtok  output $2/Mtok }\n\nbudget daily { key req.tenant  limit $10  window 1d  on_full closed }\n\nroute r {\n  when budget.daily.used >= 100%% -> cheap\n  otherwise                      -> good\n}\n' >"$OUT/full.lane"
keys=$(i=1; while [ $i -le 15 ]; do printf '{"key": "t%d", "spent": 1}, ' $i; i=$((i + 1)); done)
printf '{"now_ms": 3600000, "options": {"budget_keys": 16}, "budgets": [{"budget": "daily", "keys": [%s{"key": "acme", "spent": 1}]}]}\n' "$keys" >"$OUT/full_state.json"
printf '{"tenant": "acme"}\n{"tenant": "newcomer"}\n' >"$OUT/full_reqs.jsonl"
"$LANE" eval "$OUT/full.lane" --state "$OUT/full_state.json" "$OUT/full_reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
[ "$(sed -n 's/.*"primary": "\([a-z]*\)".*/\1/p' "$OUT/o" | tr '\n' ' ')" = "good cheap " ]
t $? "on_full closed: with 16 key slots, all taken, a newcomer reads as at its limit"
show "$OUT/o"; show "$OUT/e"
printf '{"now_ms": 3600000, "options": {"budget_keys": 16}, "budgets": [{"budget": "daily", "on_full": "open", "keys": [%s{"key": "acme", "spent": 1}]}]}\n' "$keys" >"$OUT/open_state.json"
"$LANE" eval "$OUT/full.lane" --state "$OUT/open_state.json" "$OUT/full_reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
[ "$(sed -n 's/.*"primary": "\([a-z]*\)".*/\1/p' "$OUT/o" | tr '\n' ' ')" = "good good " ]
t $? "a snapshot's on_full (open) replaces the policy's when replayed"
show "$OUT/e"
printf '{"now_ms": 1, "budgets": [{"budget": "daily", "on_full": "strict", "keys": []}]}\n' >"$OUT/bad_state.json"
"$LANE" eval "$OUT/full.lane" --state "$OUT/bad_state.json" "$OUT/full_reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
[ $? = 2 ] && grep -q 'on_full is "shared", "closed" or "open", not "strict"' "$OUT/e"
t $? "a snapshot with an unknown on_full is refused, saying what it takes"
printf '{"now_ms": 1, "budgets": [{"budget": "daily", "keys": [{"key_hash": "12zz", "spent": 1}]}]}\n' >"$OUT/bad_hash.json"
"$LANE" eval "$OUT/full.lane" --state "$OUT/bad_hash.json" "$OUT/full_reqs.jsonl" >"$OUT/o" 2>"$OUT/e"
[ $? = 2 ] && grep -q 'key_hash "12zz" is not a hexadecimal number' "$OUT/e"
t $? "a snapshot key_hash that is not hexadecimal is refused (it read as 0x12 before)"

# ---- files that are not regular, atomic writes, terminal escapes ----
rm -f "$OUT/fifo.lane"
if mkfifo "$OUT/fifo.lane" 2>/dev/null; then
  printf 'import "fifo"\n%s\n' "$good" >"$OUT/imp_fifo.lane"
  timeout 20 "$LANE" check "$OUT/imp_fifo.lane" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  [ $rc = 1 ] && grep -q "cannot read '.*fifo.lane': not a regular file" "$OUT/e"
  t $? "an import of a FIFO is refused at once, not read for ever (exit $rc)"
  show "$OUT/e"
  timeout 20 "$LANE" check "$OUT/fifo.lane" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  [ $rc = 1 ] && grep -q 'not a regular file' "$OUT/e"
  t $? "lane check of a FIFO is refused at once (exit $rc)"
else
  t 1 "mkfifo works in $OUT"
fi

"$LANE" compile "$OUT/one.lane" -o "$OUT/one.lanec" >"$OUT/o" 2>"$OUT/e"
cp "$OUT/one.lanec" "$OUT/one.before"
mkdir -p "$OUT/adir"
"$LANE" compile "$OUT/one.lane" -o "$OUT/adir" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && grep -q "cannot write '$OUT/adir'" "$OUT/e" && [ -d "$OUT/adir" ] &&
  [ -z "$(ls -A "$OUT/adir")" ] && [ -z "$(ls "$OUT" | grep '\.tmp\.')" ]
t $? "a failed write (onto a directory) says so and leaves no temporary file (exit $rc)"
show "$OUT/e"
printf '%s\nroute q { otherwise -> b }\n' "$good" >"$OUT/broken.lane"
"$LANE" compile "$OUT/broken.lane" -o "$OUT/one.lanec" >"$OUT/o" 2>"$OUT/e"
[ $? = 1 ] && cmp -s "$OUT/one.lanec" "$OUT/one.before"
t $? "a policy that does not compile leaves the previous .lanec as it was"

printf 'model a { provider "x\\u001b[2J"  input $1/Mtok  output $1/Mtok }\n\nroute r {\n  otherwise -> a  # \033[31m\n}\n' >"$OUT/esc.lane"
"$LANE" disasm "$OUT/esc.lane" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && ! grep -q "$(printf '\033')" "$OUT/o" && grep -q 'provider x\\x1B\[2J' "$OUT/o" &&
  grep -q '# \\x1B\[31m' "$OUT/o"
t $? "lane disasm writes escape characters of names and source lines as \\xNN (exit $rc)"
show "$OUT/e"

# --now sets the clock a decision reads (`now`); a bad time is refused
echo '{}' >"$OUT/empty.json"
"$LANE" eval tests/golden/accept/cel_time.lane --now 2026-01-10T17:00:00Z "$OUT/empty.json" \
  >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q '"rule": 2' "$OUT/o"
t $? "lane eval --now 2026-01-10T17:00:00Z: a Saturday in Berlin, rule 2 (exit $rc)"
"$LANE" eval tests/golden/accept/cel_time.lane --now 2026-01-07T04:30:00Z "$OUT/empty.json" \
  >"$OUT/o" 2>"$OUT/e"
grep -q '"rule": 1' "$OUT/o"
t $? "lane eval --now 2026-01-07T04:30:00Z: 23:30 in New York, rule 1"
"$LANE" eval tests/golden/accept/cel_time.lane --now soon "$OUT/empty.json" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && grep -q "lane: --now needs an RFC 3339 time" "$OUT/e"
t $? "lane eval --now soon: refused with a reason (exit $rc)"
show "$OUT/e"

tap_end

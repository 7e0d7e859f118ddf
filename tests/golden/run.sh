#!/bin/sh
# run.sh -- the golden suites, as TAP. Each suite is data:
#
#   accept/NAME.lane    a policy that must compile; its test blocks must
#                       pass (`lane test --tap`: exit 0 and one "ok" per
#                       test block in the source), and every case in NAME.golden
#                       must give exactly the decision written there:
#                           route ROUTE
#                           request {flat JSON}
#                           decision {JSON as `lane eval` prints it}
#   reject/NAME.lane    a policy that must fail `lane check` with exit 1
#                       and exactly the text in NAME.err on stderr
#   warn/NAME.lane      `lane check` exits 0 with exactly the warnings in
#                       NAME.err
#   explain/NAME.lane   `lane eval --explain` on NAME.json prints NAME.out
#   testrun/NAME.lane   `lane test` must print exactly NAME.out and exit 1
#                       when it reports a failure, else 0 (failing tests
#                       are the point here)
#   disasm/NAME.lane    `lane disasm` must print exactly NAME.disasm
#   lint/NAME.lane      `lane lint` must print exactly NAME.out (its exit
#                       code follows: 1 with an error-level finding);
#                       a first line `# lint-args: ARGS` passes ARGS
#
# Run from the repository root: LANE=build/lane sh tests/golden/run.sh
# Regenerate expectations after a reviewed change: sh tests/golden/update.sh
LANE=${LANE:-build/lane}
case "$LANE" in /*) ;; *) LANE=$(pwd)/$LANE ;; esac   # the suites cd
dir=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
  [ -s "$tmp/diff" ] && sed 's/^/#   /' "$tmp/diff"
  return 0
}

# The number of test blocks in a policy and its NAME_test.lane, counted
# from the source, apart from lane.
count_tests() {
  c=0
  for f in "$1" "${1%.lane}_test.lane"; do
    [ -f "$f" ] && c=$((c + $(grep -cE '^[[:space:]]*test[[:space:]]+"' "$f")))
  done
  echo $c
}

# `lane test --tap` passed: exit 0, a plan of exactly the policy's test
# blocks, that many "ok" lines and no "not ok" (so the verdict does not rest
# on the exit code alone). Arguments: policy, output file, exit code.
tests_passed() {
  want=$(count_tests "$1")
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$2")
  oks=$(grep -c '^ok [0-9]' "$2")
  [ "$3" -eq 0 ] && [ "$want" -gt 0 ] && [ "$plan" = "$want" ] && [ "$oks" -eq "$want" ] &&
    ! grep -q '^not ok' "$2" && return 0
  { echo "exit $3, $want test blocks in the source, plan '$plan', $oks ok lines"; cat "$2"; } >"$tmp/diff"
  return 1
}

# accepted policies
for p in "$dir"/accept/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  case "$name" in *_test) continue ;; esac   # run with their policy
  "$LANE" test --tap "$p" >"$tmp/out" 2>&1
  if tests_passed "$p" "$tmp/out" $?; then ok "accept $name: compiles, $want tests pass"
  else notok "accept $name: compiles, tests pass"; fi
  g="$dir/accept/$name.golden"
  [ -f "$g" ] || continue
  "$LANE" compile "$p" -o "$tmp/p.lanec" 2>"$tmp/diff" || { notok "accept $name: compile"; continue; }
  route=""; i=0
  while IFS= read -r line; do
    case "$line" in
      "route "*) route=${line#route } ;;
      "request "*) printf '%s\n' "${line#request }" >"$tmp/req.json" ;;
      "decision "*)
        i=$((i + 1))
        printf '%s\n' "${line#decision }" >"$tmp/want"
        ( cd "$tmp" && "$LANE" eval p.lanec --route "$route" req.json ) >"$tmp/got" 2>&1
        if diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then ok "accept $name: case $i"
        else notok "accept $name: case $i"; fi ;;
    esac
  done <"$g"
done

# the bundled examples: their tests pass and every example request decides
root=$(cd "$dir/../.." && pwd)
for p in "$root"/examples/policies/*.lane; do
  [ -e "$p" ] || continue
  case "$p" in *_test.lane) continue ;; esac   # run with their policy
  name=$(basename "$p" .lane)
  "$LANE" test --tap "$p" --coverage --threshold 100 >"$tmp/out" 2>&1
  if tests_passed "$p" "$tmp/out" $? && grep -q '^# coverage: rules \([0-9]*\)/\1 ' "$tmp/out"; then
    ok "example $name: $want tests pass, every rule covered"
  else cat "$tmp/out" >>"$tmp/diff"; notok "example $name: tests pass, every rule covered"; fi
done
if [ -e "$root/examples/policies/support.lane" ]; then
  "$LANE" compile "$root/examples/policies/support.lane" -o "$tmp/s.lanec" 2>"$tmp/diff" &&
  "$LANE" eval "$tmp/s.lanec" --route support --format text "$root"/examples/requests/*.json >"$tmp/out" 2>"$tmp/diff"
  rc=$?
  lines=$(wc -l <"$tmp/out"); want=$(ls "$root"/examples/requests/*.json | wc -l)
  if [ $rc -eq 0 ] && [ "$lines" -eq "$want" ]; then ok "example support: all $want requests decide"
  else notok "example support: all requests decide (rc $rc, $lines of $want)"; fi
fi

# the incident snapshot replays to the same decisions (examples/state)
if [ -e "$root/examples/state/incident.json" ]; then
  ( cd "$root" && "$LANE" eval examples/policies/support.lane --route support --format text \
      --state examples/state/incident.json examples/requests/*.json ) >"$tmp/got" 2>&1
  if diff -u "$dir/examples/incident.txt" "$tmp/got" >"$tmp/diff"; then ok "example support: incident snapshot replays"
  else notok "example support: incident snapshot replays"; fi
fi

# the language reference's builtin table is the compiler's own table
if [ -e "$root/lang/README.md" ]; then
  "$LANE" builtins >"$tmp/want"
  sed -n '/^### Builtin functions/,/^###/p' "$root/lang/README.md" | grep '^|' >"$tmp/got"
  if diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then ok "lang/README.md lists the builtin table"
  else notok "lang/README.md lists the builtin table (regenerate with lane builtins)"; fi
fi

# the opcode reference is the opcode table's own
if [ -e "$root/doc/opcodes.md" ]; then
  "$LANE" builtins --opcodes >"$tmp/want"
  if diff -u "$tmp/want" "$root/doc/opcodes.md" >"$tmp/diff"; then ok "doc/opcodes.md is the opcode table"
  else notok "doc/opcodes.md is the opcode table (regenerate with lane builtins --opcodes >doc/opcodes.md)"; fi
fi

# the verdict of `lane test`: testrun/NAME.lane (with NAME_test.lane when
# there is one) must make `lane test ARGS NAME.lane` print exactly NAME.out
# (stdout and stderr) and exit 1 when NAME.out reports a failure (a FAIL or
# "not ok" line, or coverage below the threshold), else 0. A first line
# `# test-args: ARGS` passes ARGS.
for p in "$dir"/testrun/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  case "$name" in *_test) continue ;; esac
  args=$(sed -n '1s/^# test-args://p' "$p")
  ( cd "$dir/testrun" && "$LANE" test $args "$name.lane" ) >"$tmp/got" 2>&1
  rc=$?
  want=0
  grep -q -e '^FAIL ' -e '^not ok ' -e 'below the threshold' "$dir/testrun/$name.out" && want=1
  if [ $rc -ne $want ]; then
    { echo "exit code $rc, expected $want"; cat "$tmp/got"; } >"$tmp/diff"; notok "testrun $name: exit $want"; continue
  fi
  if diff -u "$dir/testrun/$name.out" "$tmp/got" >"$tmp/diff"; then ok "testrun $name: exit $want"
  else notok "testrun $name"; fi
done

# rejected policies
for p in "$dir"/reject/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/reject" && "$LANE" check "$name.lane" ) >"$tmp/out" 2>"$tmp/got"
  rc=$?
  if [ $rc -ne 1 ]; then echo "exit code $rc, expected 1" >"$tmp/diff"; notok "reject $name: exit 1"; continue; fi
  if diff -u "$dir/reject/$name.err" "$tmp/got" >"$tmp/diff"; then ok "reject $name"
  else notok "reject $name"; fi
done

# warnings: `lane check` exits 0 and prints exactly NAME.err (dates are
# judged against LANE_TODAY=2026-11-28, so the suite does not age)
for p in "$dir"/warn/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/warn" && LANE_TODAY=2026-11-28 "$LANE" check "$name.lane" ) >"$tmp/out" 2>"$tmp/got"
  rc=$?
  if [ $rc -ne 0 ]; then echo "exit code $rc, expected 0" >"$tmp/diff"; notok "warn $name: exit 0"; continue; fi
  if diff -u "$dir/warn/$name.err" "$tmp/got" >"$tmp/diff"; then ok "warn $name"
  else notok "warn $name"; fi
done

# explanations: `lane eval NAME.lane --route R --explain NAME.json` prints
# exactly NAME.out (R from the policy's first line, `# route: R`), and so
# does the compiled NAME.lanec: the reasons come from its explain tables
for p in "$dir"/explain/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  route=$(sed -n '1s/^# route: //p' "$p")
  ( cd "$dir/explain" && "$LANE" eval "$name.lane" --route "$route" --explain "$name.json" ) >"$tmp/got" 2>&1
  if diff -u "$dir/explain/$name.out" "$tmp/got" >"$tmp/diff"; then ok "explain $name"
  else notok "explain $name"; fi
  "$LANE" compile "$p" -o "$tmp/x.lanec" >"$tmp/got" 2>&1 &&
    ( cd "$dir/explain" && "$LANE" eval "$tmp/x.lanec" --route "$route" --explain "$name.json" ) >"$tmp/got" 2>&1
  if diff -u "$dir/explain/$name.out" "$tmp/got" >"$tmp/diff"; then ok "explain $name from the .lanec"
  else notok "explain $name from the .lanec"; fi
done

# lint: `lane lint` prints exactly NAME.out and exits 1 when it holds an
# error-level finding, else 0, with nothing on stderr. A first line
# `# lint-args: ARGS` passes ARGS (--enable ID, --disable ID, --format
# json|sarif) before the file; a SARIF result must also be well-formed
# JSON with the SARIF top-level fields. Dates are judged against
# LANE_TODAY=2026-11-28.
for p in "$dir"/lint/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  args=$(sed -n '1s/^# lint-args://p' "$p")
  ( cd "$dir/lint" && LANE_TODAY=2026-11-28 "$LANE" lint $args "$name.lane" ) >"$tmp/got" 2>"$tmp/err"
  rc=$?
  want=0
  grep -q -e ': error: ' -e '"level": "error"' "$dir/lint/$name.out" && want=1
  if [ $rc -ne $want ]; then
    { echo "exit code $rc, expected $want"; cat "$tmp/err"; } >"$tmp/diff"; notok "lint $name: exit $want"; continue
  fi
  if [ -s "$tmp/err" ]; then cp "$tmp/err" "$tmp/diff"; notok "lint $name: nothing on stderr"; continue; fi
  case "$args" in
    *sarif*)
      if ! python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == "2.1.0" and "$schema" in d
run = d["runs"][0]
assert run["tool"]["driver"]["name"] == "lane" and run["tool"]["driver"]["rules"]
for r in run["results"]:
    loc = r["locations"][0]["physicalLocation"]
    assert r["ruleId"] and r["level"] and r["message"]["text"]
    assert loc["artifactLocation"]["uri"] and loc["region"]["startLine"] >= 1
' "$tmp/got" >"$tmp/diff" 2>&1; then notok "lint $name: well-formed SARIF"; continue; fi ;;
  esac
  if diff -u "$dir/lint/$name.out" "$tmp/got" >"$tmp/diff"; then ok "lint $name"
  else notok "lint $name"; fi
done

# formatting: `lane fmt` turns fmt/NAME.lane (as a careless human writes
# it) into exactly NAME.out; NAME.out is canonical (`--check` exits 0);
# `--check` on NAME.lane exits 1 and `--diff` prints a unified diff and
# writes nothing.
for p in "$dir"/fmt/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  cp "$p" "$tmp/$name.lane"
  "$LANE" fmt "$tmp/$name.lane" >"$tmp/diff" 2>&1 || { notok "fmt $name: formats"; continue; }
  if diff -u "$dir/fmt/$name.out" "$tmp/$name.lane" >"$tmp/diff"; then ok "fmt $name"
  else notok "fmt $name"; fi
  cp "$dir/fmt/$name.out" "$tmp/$name.lane"
  if "$LANE" fmt --check "$tmp/$name.lane" >"$tmp/diff" 2>&1; then ok "fmt $name: output is canonical"
  else notok "fmt $name: output is canonical"; fi
  cp "$p" "$tmp/$name.lane"
  "$LANE" fmt --check "$tmp/$name.lane" >/dev/null 2>&1; rc=$?
  "$LANE" fmt --diff "$tmp/$name.lane" >"$tmp/got" 2>&1; rc2=$?
  if [ $rc -eq 1 ] && [ $rc2 -eq 1 ] && cmp -s "$p" "$tmp/$name.lane" &&
     head -1 "$tmp/got" | grep -q '^--- ' && grep -q '^@@ -' "$tmp/got"; then
    ok "fmt $name: --check and --diff exit 1 and write nothing"
  else
    echo "--check exit $rc, --diff exit $rc2 (expected 1 and 1)" >"$tmp/diff"
    notok "fmt $name: --check and --diff exit 1 and write nothing"
  fi
done

# disassembly
for p in "$dir"/disasm/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/disasm" && "$LANE" disasm "$name.lane" ) >"$tmp/got" 2>&1
  if diff -u "$dir/disasm/$name.disasm" "$tmp/got" >"$tmp/diff"; then ok "disasm $name"
  else notok "disasm $name"; fi
done

# the hostile .lanec files are what gen.c writes today (t_verify checks
# each is rejected with its reason; this keeps the generator honest)
libdir=$(dirname "$LANE")
# shellcheck disable=SC2086  # SAN: the sanitizer flags liblane.a was built with
if ${CC:-cc} $SAN -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$root/vm" \
     -I"$dir/lanec" "$dir/lanec/gen.c" "$libdir/liblane.a" -lm -o "$tmp/gen" >"$tmp/diff" 2>&1 &&
   mkdir -p "$tmp/lanec" && "$tmp/gen" "$tmp/lanec" >/dev/null 2>>"$tmp/diff" &&
   diff -r -x '*.c' -x '*.h' -x '*.md' "$dir/lanec" "$tmp/lanec" >>"$tmp/diff" 2>&1; then
  ok "lanec: gen.c writes exactly the checked-in hostile files"
else notok "lanec: gen.c writes exactly the checked-in hostile files"; fi

echo "1..$n"
[ $fail -eq 0 ]

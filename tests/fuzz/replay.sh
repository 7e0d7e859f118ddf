#!/bin/sh
# replay.sh -- every fuzz target's corpus (seeds and regression inputs of
# past findings) replayed once by the target's replay program, as TAP.
# Run by `make test` with BUILD and FUZZ_TARGETS set.
#
# A target passes only when its replay program exits 0 and reports that it
# replayed at least one input: a crash, an abort (a differential mismatch),
# a sanitizer report or an unreadable corpus fails it, and the last lines
# of its output (which name the input being replayed) are shown.
B=${BUILD:-build}
dir=$(dirname "$0")
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp"' EXIT
n=0
fail=0
for t in ${FUZZ_TARGETS:-compile load decide diff}; do
  n=$((n + 1))
  "$B/tests/replay_$t" "$dir/corpus/$t" >"$tmp" 2>&1
  rc=$?
  summary=$(sed -n 's/^ok 1 - //p' "$tmp")
  if [ $rc -eq 0 ] && [ -n "$summary" ]; then
    echo "ok $n - fuzz corpus $t: $summary"
  else
    fail=$((fail + 1))
    echo "not ok $n - fuzz corpus $t (exit status $rc)"
    tail -15 "$tmp" | sed 's/^/#   /'
  fi
done
echo "1..$n"
[ $fail -eq 0 ]

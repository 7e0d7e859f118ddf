#!/bin/sh
# replay.sh -- every fuzz target's corpus (seeds and regression inputs of
# past findings) replayed once by the target's replay program, as TAP.
# Run by `make test` with BUILD and FUZZ_TARGETS set.
B=${BUILD:-build}
dir=$(dirname "$0")
n=0
fail=0
for t in ${FUZZ_TARGETS:-compile load decide diff}; do
  n=$((n + 1))
  if out=$("$B/tests/replay_$t" "$dir/corpus/$t" 2>&1 | tail -5); then
    echo "ok $n - fuzz corpus $t: $(echo "$out" | sed -n 's/^ok 1 - //p')"
  else
    fail=$((fail + 1))
    echo "not ok $n - fuzz corpus $t"
    echo "$out" | sed 's/^/#   /'
  fi
done
echo "1..$n"
[ $fail -eq 0 ]

#!/bin/sh
# run.sh TARGET SECONDS -- runs one libFuzzer target (built by `make
# fuzz-build` into $FUZZ_BUILD, default build-fuzz) for SECONDS.
# New inputs go to $FUZZ_BUILD/fuzz/corpus/TARGET; the checked-in seeds in
# tests/fuzz/corpus/TARGET are read, not written (`make fuzz-merge` adds
# the small interesting ones). A crash is written to
# $FUZZ_BUILD/fuzz/artifacts/TARGET-crash-*: add it to the corpus, fix it.
set -e
t=$1
secs=${2:-60}
B=${FUZZ_BUILD:-build-fuzz}
dir=$(dirname "$0")
mkdir -p "$B/fuzz/corpus/$t" "$B/fuzz/artifacts"
dict=""
[ -f "$dir/$t.dict" ] && dict="-dict=$dir/$t.dict"
echo "fuzz $t: ${secs}s"
"$B/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$B/fuzz/artifacts/$t-" $dict \
  "$B/fuzz/corpus/$t" "$dir/corpus/$t" 2>"$B/fuzz/$t.log" || {
    rc=$?; tail -60 "$B/fuzz/$t.log"; exit $rc; }
grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$B/fuzz/$t.log" | sed "s/^/fuzz $t: /"

#!/bin/sh
# callgrind.sh -- machine instructions per decision, counted by callgrind
# outside the timed runs (`make bench` runs it when valgrind is installed):
# the bench's --profile modes decide N requests and nothing else, once with
# 10,000 and once with 60,000 decisions; the difference of the two totals
# over 50,000 is what one decision costs, set-up excluded.
#
#   sh tests/bench/callgrind.sh BENCH_BINARY SRC_DIR OUT_DIR
BENCH=$1
SRC=${2:-tests/bench}
OUT=${3:-build/bench}
command -v valgrind >/dev/null || { echo "instructions per decision: skipped (no valgrind)"; exit 0; }
count() {   # count MODE N: callgrind's total instructions
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$1.$2" "$BENCH" --src "$SRC" \
    --out "$OUT" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf 'instructions per decision (callgrind, 60,000 - 10,000 decisions over 50,000):\n'
for mode in --profile-x --profile-c --profile; do
  a=$(count $mode 10000)
  b=$(count $mode 60000)
  case $mode in
    --profile-x) name="expert C" ;;
    --profile-c) name="C, lane's algorithm" ;;
    *) name="lane (request built in the loop)" ;;
  esac
  if [ -n "$a" ] && [ -n "$b" ]; then
    printf '  %-34s %6d\n' "$name" $(( (b - a) / 50000 ))
  else
    printf '  %-34s failed\n' "$name"
  fi
done
rm -f "$OUT"/callgrind.--profile*

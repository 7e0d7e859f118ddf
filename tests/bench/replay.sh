#!/bin/sh
# replay.sh -- `make bench`'s decision-log figures: how fast `lane eval
# --log` writes, and `lane replay` and `lane diff` read, a log of N
# decisions (default 1,000,000) of the swap example on the real Azure
# conversation trace (tests/runtime/azure_conv_4000.csv, repeated).
# Wall times, median of 3 runs; the machine is shared, so read the ratio
# to the decisions/s, not the absolute figure.
# Usage: sh tests/bench/replay.sh LANE OUTDIR [N]
set -e
LANE=$1
OUT=$2
N=${3:-1000000}
mkdir -p "$OUT"
"$LANE" convert trace tests/runtime/azure_conv_4000.csv --set task=chat --users 2000 \
  -o "$OUT/slice.jsonl"
rows=$(wc -l <"$OUT/slice.jsonl")
reps=$(( (N + rows - 1) / rows ))
i=0
: >"$OUT/traffic.jsonl"
while [ $i -lt $reps ]; do cat "$OUT/slice.jsonl"; i=$((i + 1)); done | head -n "$N" >"$OUT/traffic.jsonl"
now() { date +%s.%N; }
median3() {   # median3 CMD...: runs it 3 times, prints the median wall seconds
  t1=$( s=$(now); "$@" >/dev/null; e=$(now); awk "BEGIN { print $e - $s }" )
  t2=$( s=$(now); "$@" >/dev/null; e=$(now); awk "BEGIN { print $e - $s }" )
  t3=$( s=$(now); "$@" >/dev/null; e=$(now); awk "BEGIN { print $e - $s }" )
  printf '%s\n%s\n%s\n' "$t1" "$t2" "$t3" | sort -n | sed -n 2p
}
log() { rm -f "$OUT/decisions.log"; "$LANE" eval examples/swap/canary.lane --log "$OUT/decisions.log" "$OUT/traffic.jsonl"; }
w=$(median3 log)
log >/dev/null
r=$(median3 "$LANE" replay examples/swap/canary.lane "$OUT/decisions.log")
d=$(median3 "$LANE" diff examples/swap/canary.lane examples/swap/allin.lane "$OUT/decisions.log")
"$LANE" replay examples/swap/canary.lane "$OUT/decisions.log" | sed -n 2p
bytes=$(wc -c <"$OUT/decisions.log")
printf 'decision log of %d decisions (%d bytes, %d bytes each):\n' "$N" "$bytes" $((bytes / N))
rate() { awk "BEGIN { printf \"%.0f\", $N / $1 }"; }
printf '  lane eval --log   %6.2f s  (%s decisions/s, JSON in, JSON out)\n' "$w" "$(rate "$w")"
printf '  lane replay       %6.2f s  (%s decisions/s)\n' "$r" "$(rate "$r")"
printf '  lane diff         %6.2f s  (%s decisions/s, two policies)\n' "$d" "$(rate "$d")"

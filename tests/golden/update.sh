#!/bin/sh
# update.sh -- proposes new golden expectations from the current build, and
# writes only the ones you accept by name.
#
#   sh tests/golden/update.sh                       show every expectation
#                                                   that would change (a
#                                                   unified diff each); write
#                                                   nothing
#   sh tests/golden/update.sh --accept reject/x.err --accept accept/y.golden
#                                                   write exactly those files
#
# A golden file is a claim that the output is right, not a record of what
# the build happens to print: read each diff, and accept a file only when
# the new text is what it should say. Decisions (accept/NAME.golden) are
# checked against the policy's own hand-derived test blocks: a decision
# file is not rewritten while `lane test` fails on its policy.
# Exit status: 0 when nothing differs or every difference was accepted,
# 1 when a difference is left unaccepted, 2 on a usage error.
LANE=${LANE:-build/lane}
dir=$(dirname "$0")
LANE=$(cd "$(dirname "$LANE")" && pwd)/$(basename "$LANE")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

accepted=""
while [ $# -gt 0 ]; do
  case $1 in
    --accept) [ $# -ge 2 ] || { echo "update.sh: --accept needs a file" >&2; exit 2; }
              f=${2#tests/golden/}
              [ -e "$dir/${f%.*}.lane" ] || [ -e "$dir/$f" ] ||
                { echo "update.sh: no golden case for $2" >&2; exit 2; }
              accepted="$accepted $f"; shift 2 ;;
    *) echo "usage: update.sh [--accept SUITE/FILE]..." >&2; exit 2 ;;
  esac
done
is_accepted() { case " $accepted " in *" $1 "*) return 0 ;; esac; return 1; }

left=0
# propose REL NEWFILE: compares tests/golden/REL with NEWFILE.
propose() {
  if [ -f "$dir/$1" ] && cmp -s "$dir/$1" "$2"; then return 0; fi
  if [ -f "$dir/$1" ]; then diff -u "$dir/$1" "$2" | sed "1s|.*|--- $1|;2s|.*|+++ $1 (new)|"
  else echo "--- (none)"; echo "+++ $1 (new)"; sed 's/^/+/' "$2"; fi
  if is_accepted "$1"; then
    case $1 in
      accept/*.golden)
        p=$dir/${1%.golden}.lane
        if ! "$LANE" test "$p" >"$tmp/test.out" 2>&1; then
          echo "update.sh: NOT written: $1: the policy's own tests fail:" >&2
          sed 's/^/  /' "$tmp/test.out" >&2
          left=$((left + 1)); return 0
        fi ;;
    esac
    cp "$2" "$dir/$1" && echo "update.sh: written: $1" >&2
  else
    echo "update.sh: not written: $1 (review the diff; --accept $1 writes it)" >&2
    left=$((left + 1))
  fi
}

for p in "$dir"/reject/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/reject" && "$LANE" check "$name.lane" ) 2>"$tmp/new" >/dev/null
  propose "reject/$name.err" "$tmp/new"
done
for p in "$dir"/warn/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/warn" && LANE_TODAY=2026-11-28 "$LANE" check "$name.lane" ) 2>"$tmp/new" >/dev/null
  propose "warn/$name.err" "$tmp/new"
done
for p in "$dir"/explain/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  route=$(sed -n '1s/^# route: //p' "$p")
  ( cd "$dir/explain" && "$LANE" eval "$name.lane" --route "$route" --explain "$name.json" ) >"$tmp/new" 2>&1
  propose "explain/$name.out" "$tmp/new"
done
for p in "$dir"/lint/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  args=$(sed -n '1s/^# lint-args://p' "$p")
  ( cd "$dir/lint" && LANE_TODAY=2026-11-28 "$LANE" lint $args "$name.lane" ) >"$tmp/new"
  propose "lint/$name.out" "$tmp/new"
done
for p in "$dir"/testrun/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  case $name in *_test) continue ;; esac
  args=$(sed -n '1s/^# test-args://p' "$p")
  ( cd "$dir/testrun" && "$LANE" test $args "$name.lane" ) >"$tmp/new" 2>&1
  propose "testrun/$name.out" "$tmp/new"
done
for p in "$dir"/disasm/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/disasm" && "$LANE" disasm "$name.lane" ) >"$tmp/new" 2>&1
  propose "disasm/$name.disasm" "$tmp/new"
done
for g in "$dir"/accept/*.golden; do
  [ -e "$g" ] || continue
  name=$(basename "$g" .golden)
  "$LANE" compile "$dir/accept/$name.lane" -o "$tmp/p.lanec" || { left=$((left + 1)); continue; }
  route=""
  while IFS= read -r line; do
    case "$line" in
      "route "*) route=${line#route }; printf '%s\n' "$line" ;;
      "request "*) printf '%s\n' "${line#request }" >"$tmp/req.json"; printf '%s\n' "$line" ;;
      "decision "*) printf 'decision %s\n' "$(cd "$tmp" && "$LANE" eval p.lanec --route "$route" req.json 2>&1)" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$g" >"$tmp/new"
  propose "accept/$name.golden" "$tmp/new"
done
[ $left -eq 0 ]

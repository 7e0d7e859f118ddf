#!/bin/sh
# update.sh -- rewrites the golden expectations from the current build.
# Review the diff (git diff tests/golden) before committing: a golden file
# is a claim that the output is right, not a record of what it happens to be.
LANE=${LANE:-build/lane}
dir=$(dirname "$0")
LANE=$(cd "$(dirname "$LANE")" && pwd)/$(basename "$LANE")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in "$dir"/reject/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/reject" && "$LANE" check "$name.lane" ) 2>"$dir/reject/$name.err" >/dev/null
done
for p in "$dir"/warn/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/warn" && LANE_TODAY=2026-11-28 "$LANE" check "$name.lane" ) 2>"$dir/warn/$name.err" >/dev/null
done
for p in "$dir"/explain/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  route=$(sed -n '1s/^# route: //p' "$p")
  ( cd "$dir/explain" && "$LANE" eval "$name.lane" --route "$route" --explain "$name.json" ) >"$dir/explain/$name.out" 2>&1
done
if "$LANE" --help 2>&1 | grep -q '^ *lint '; then
  for p in "$dir"/lint/*.lane; do
    [ -e "$p" ] || continue
    name=$(basename "$p" .lane)
    args=$(sed -n '1s/^# lint-args://p' "$p")
    ( cd "$dir/lint" && LANE_TODAY=2026-11-28 "$LANE" lint $args "$name.lane" ) >"$dir/lint/$name.out"
  done
fi
for p in "$dir"/disasm/*.lane; do
  [ -e "$p" ] || continue
  name=$(basename "$p" .lane)
  ( cd "$dir/disasm" && "$LANE" disasm "$name.lane" ) >"$dir/disasm/$name.disasm" 2>&1
done
for g in "$dir"/accept/*.golden; do
  [ -e "$g" ] || continue
  name=$(basename "$g" .golden)
  "$LANE" compile "$dir/accept/$name.lane" -o "$tmp/p.lanec" || continue
  route=""
  while IFS= read -r line; do
    case "$line" in
      "route "*) route=${line#route }; printf '%s\n' "$line" ;;
      "request "*) printf '%s\n' "${line#request }" >"$tmp/req.json"; printf '%s\n' "$line" ;;
      "decision "*) printf 'decision %s\n' "$(cd "$tmp" && "$LANE" eval p.lanec --route "$route" req.json 2>&1)" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$g" >"$tmp/new"
  cp "$tmp/new" "$g"
done

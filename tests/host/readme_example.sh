#!/bin/sh
# readme_example.sh -- the C host example under "## Embedding the VM" in
# README.md is compiled as written (-std=c11 -Wall -Wextra -Werror, only
# vm/ on the include path) against build/liblane.a and build/liblane.so,
# run on examples/policies/support.lane, and must print the model and the
# expected cost that `lane eval` gives for the same request.
#
# Environment (set by `make test`): BUILD (build dir), LANE (the lane
# command), CC, SAN (sanitizer flags the library was built with).
# Writes only under $BUILD/tests/host/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
CC=${CC:-cc}
SAN=${SAN:-}
README=${README:-README.md}   # overridable to test this script itself
OUT=$BUILD/tests/host/readme
mkdir -p "$OUT" || exit 2
rm -f "$OUT"/host_* "$OUT"/host.c "$OUT"/support.lanec

n=0
t() {   # t OK|FAIL description
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

echo "1..10"

# The first ```c block after the heading, up to its closing fence.
awk '/^## Embedding the VM/ { sec = 1; next }
     /^## / { sec = 0 }
     sec && !inb && /^```c[ \t]*$/ { inb = 1; found = 1; next }
     inb && /^```/ { exit }
     inb { print }' "$README" > "$OUT/host.c"
lines=$(wc -l < "$OUT/host.c")
[ "$lines" -gt 0 ]; t $? "README has a \`\`\`c block under '## Embedding the VM' ($lines lines)"
[ "$lines" -le 30 ]; t $? "the example is at most 30 lines ($lines)"

# shellcheck disable=SC2086  # SAN is a list of flags
$CC -std=c11 -Wall -Wextra -Werror $SAN -Ivm -o "$OUT/host_static" "$OUT/host.c" \
  "$BUILD/liblane.a" 2> "$OUT/static.err"
rc=$?; t $rc "compiles and links against $BUILD/liblane.a (libc only)"
[ $rc = 0 ] || sed 's/^/# /' "$OUT/static.err"

libdir=$(cd "$BUILD" && pwd)
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror $SAN -Ivm -o "$OUT/host_shared" "$OUT/host.c" \
  -L"$libdir" -llane -Wl,-rpath,"$libdir" 2> "$OUT/shared.err"
rc=$?; t $rc "compiles and links against $BUILD/liblane.so"
[ $rc = 0 ] || sed 's/^/# /' "$OUT/shared.err"

"$LANE" compile examples/policies/support.lane -o "$OUT/support.lanec" 2> "$OUT/compile.err"
rc=$?; t $rc "lane compile examples/policies/support.lane"
[ $rc = 0 ] || sed 's/^/# /' "$OUT/compile.err"

# What the example should print, from lane eval on the same request.
printf '{"tier": "free", "input_tokens": 1200, "max_output_tokens": 300}\n' > "$OUT/req.json"
"$LANE" eval "$OUT/support.lanec" --route support "$OUT/req.json" > "$OUT/eval.json" 2>&1
want=$(perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>);
  printf "%s, expected \$%.6f\n", $d->{primary}, $d->{cost}' < "$OUT/eval.json" 2>/dev/null)
case $want in
  openai.gpt_5_nano,\ expected\ \$0.000*) t 0 "lane eval: $want" ;;
  *) t 1 "lane eval gives the free-tier model and cost (got '$want')"; sed 's/^/# /' "$OUT/eval.json" ;;
esac

for kind in static shared; do
  got=$("$OUT/host_$kind" "$OUT/support.lanec" 2> "$OUT/$kind.run.err")
  rc=$?
  t $rc "the $kind host runs and exits 0"
  if [ "$got" = "$want" ] && [ -n "$want" ]; then
    t 0 "the $kind host prints '$got'"
  else
    t 1 "the $kind host prints '$want'"
    echo "#      got: '$got'"
    sed 's/^/# /' "$OUT/$kind.run.err"
  fi
done

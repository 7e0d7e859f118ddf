#!/bin/sh
# symbols.sh -- the dynamic symbols liblane.so defines are exactly the
# functions vm/lane.h declares with LANE_API: nothing internal (bc_, vm_,
# helpers) leaks, and nothing declared is missing. liblane-json.so (the
# request adapters) exports exactly lane_request_from_json. liblane-bundle.a
# (one object: the bundle library with the compiler inside) defines as
# global exactly the LANE_API functions of compiler/bundle/lane_bundle.h.
#
# Environment: BUILD (build dir, default build). Writes under $BUILD/tests/host/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
OUT=$BUILD/tests/host/symbols
mkdir -p "$OUT" || exit 2
echo "1..8"

# Declared: the identifier before the first '(' on each LANE_API line that
# is not the macro's own definition.
# The request adapters (lane_request_from_json) live in liblane-json, and
# the regular-expression engine (lane_regex_pcre2) in liblane-re, not
# in liblane: the VM core depends on libc only.
perl -ne 'print "$1\n" if !/^\s*#/ && /\bLANE_API\b.*?([A-Za-z_]\w*)\s*\(/' vm/lane.h |
  grep -v -e '^lane_request_from_json$' -e '^lane_regex_pcre2$' | sort -u > "$OUT/declared"
# Exported: defined dynamic symbols of code or data (not the linker's own).
nm -D --defined-only "$BUILD/liblane.so" > "$OUT/nm" 2> "$OUT/nm.err"
rc=$?
if [ $rc = 0 ]; then echo "ok 1 - nm -D --defined-only $BUILD/liblane.so"
else echo "not ok 1 - nm -D --defined-only $BUILD/liblane.so"; sed 's/^/# /' "$OUT/nm.err"; fi
awk 'NF >= 3 && $2 ~ /^[TtDdBbRrVvWwGgSsi]$/ { print $3 }' "$OUT/nm" |
  grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort -u > "$OUT/exported"

nd=$(wc -l < "$OUT/declared"); ne=$(wc -l < "$OUT/exported")
if [ "$nd" -ge 20 ]; then echo "ok 2 - vm/lane.h declares $nd LANE_API functions"
else echo "not ok 2 - vm/lane.h declares $nd LANE_API functions (parse failed?)"; fi

extra=$(comm -13 "$OUT/declared" "$OUT/exported")
missing=$(comm -23 "$OUT/declared" "$OUT/exported")
if [ -z "$extra" ]; then echo "ok 3 - no undeclared symbol is exported ($ne exported)"
else echo "not ok 3 - undeclared symbols exported:"; echo "$extra" | sed 's/^/#   /'; fi
if [ -z "$missing" ]; then echo "ok 4 - every declared function is exported"
else echo "not ok 4 - declared but not exported:"; echo "$missing" | sed 's/^/#   /'; fi
leak=$(grep -E '^(bc|vm|lex|parse|ast|sema|emit|lint)_' "$OUT/exported")
if [ -z "$leak" ] && ! grep -qv '^lane_' "$OUT/exported"; then
  echo "ok 5 - every exported symbol starts with lane_"
else echo "not ok 5 - symbols without the lane_ prefix:"; grep -v '^lane_' "$OUT/exported" | sed 's/^/#   /'; fi

# liblane-json.so: the adapter and nothing else (jansson stays undefined:
# it is linked, not bundled).
if nm -D --defined-only "$BUILD/liblane-json.so" > "$OUT/nm-json" 2> "$OUT/nm-json.err"; then
  echo "ok 6 - nm -D --defined-only $BUILD/liblane-json.so"
else echo "not ok 6 - nm -D --defined-only $BUILD/liblane-json.so"; sed 's/^/# /' "$OUT/nm-json.err"; fi
awk 'NF >= 3 && $2 ~ /^[TtDdBbRrVvWwGgSsi]$/ { print $3 }' "$OUT/nm-json" |
  grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort -u > "$OUT/exported-json"
if [ "$(cat "$OUT/exported-json")" = lane_request_from_json ]; then
  echo "ok 7 - liblane-json.so exports exactly lane_request_from_json"
else echo "not ok 7 - liblane-json.so exports exactly lane_request_from_json; it exports:"
  sed 's/^/#   /' "$OUT/exported-json"; fi

# liblane-bundle.a: the compiler inside it is local, so no host name can
# clash with it.
perl -ne 'print "$1\n" if !/^\s*#/ && /\bLANE_API\b.*?([A-Za-z_]\w*)\s*\(/' \
  compiler/bundle/lane_bundle.h | sort -u > "$OUT/declared-bundle"
nm --defined-only -g "$BUILD/liblane-bundle.a" 2> "$OUT/nm-bundle.err" |
  awk 'NF >= 3 { print $3 }' | sort -u > "$OUT/exported-bundle"
if [ -s "$OUT/declared-bundle" ] && cmp -s "$OUT/declared-bundle" "$OUT/exported-bundle"; then
  echo "ok 8 - liblane-bundle.a defines exactly the $(wc -l < "$OUT/declared-bundle") functions of lane_bundle.h"
else echo "not ok 8 - liblane-bundle.a defines exactly the functions of lane_bundle.h; the difference:"
  diff "$OUT/declared-bundle" "$OUT/exported-bundle" | sed 's/^/#   /'; sed 's/^/#   /' "$OUT/nm-bundle.err"; fi

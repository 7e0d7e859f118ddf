#!/bin/sh
# install.sh -- `make install` into a temporary prefix, then use it as a
# service would: every file in place, sonames and links, pkg-config files,
# the README's C host example (extracted as tests/host/readme_example.sh
# does) built with `pkg-config --cflags --libs lane` and run, an adapter
# host built with `pkg-config ... lane-json`, a bundle host built with
# `pkg-config ... lane-bundle` verifying and testing a bundle the installed
# lane signed, only lane_ symbols exported,
# the installed lane finding its installed stdlib (also after the prefix is
# moved), and a DESTDIR staging install.
#
# Environment (set by `make test`): BUILD, CC, SAN. Writes only under
# $BUILD/tests/install/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
CC=${CC:-cc}
SAN=${SAN:-}
OUT=$(pwd)/$BUILD/tests/install
rm -rf "$OUT" && mkdir -p "$OUT" || exit 2
P=$OUT/prefix
V=$(sed -n 's/.*LANE_VERSION_STRING *"\([^"]*\)".*/\1/p' vm/lane.h)

n=0
t() {   # t STATUS description: ok when STATUS is 0
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
show() { sed 's/^/# /' "$1"; }

echo "1..35"

# install-files is install without the build step (make test built it all).
make --no-print-directory install-files BUILD="$BUILD" PREFIX="$P" > "$OUT/make.log" 2>&1
rc=$?; t $rc "make install PREFIX=$P"
[ $rc = 0 ] || show "$OUT/make.log"

missing=""
for f in bin/lane lib/liblane.a lib/liblane.so.$V lib/liblane-json.a lib/liblane-json.so.$V \
         include/lane.h lib/pkgconfig/lane.pc lib/pkgconfig/lane-json.pc \
         lib/liblane-bundle.a include/lane_bundle.h lib/pkgconfig/lane-bundle.pc \
         share/lane/stdlib/providers/anthropic.lane share/lane/stdlib/providers/openai.lane \
         share/man/man1/lane.1; do
  [ -f "$P/$f" ] || missing="$missing $f"
done
[ -z "$missing" ]; t $? "installed files are in place${missing:+ (missing:$missing)}"
[ -x "$P/bin/lane" ]; t $? "bin/lane is executable"
cmp -s vm/lane.h "$P/include/lane.h"; t $? "include/lane.h is vm/lane.h"
cmp -s compiler/bundle/lane_bundle.h "$P/include/lane_bundle.h"
t $? "include/lane_bundle.h is compiler/bundle/lane_bundle.h"

links=""
for l in liblane liblane-json; do
  [ "$(readlink "$P/lib/$l.so.0")" = "$l.so.$V" ] || links="$links $l.so.0"
  [ "$(readlink "$P/lib/$l.so")" = "$l.so.0" ] || links="$links $l.so"
done
[ -z "$links" ]; t $? "symlinks lib.so -> lib.so.0 -> lib.so.$V${links:+ (wrong:$links)}"
readelf -d "$P/lib/liblane.so.$V" > "$OUT/readelf.lane" 2>&1
grep -q 'SONAME.*\[liblane\.so\.0\]' "$OUT/readelf.lane"; t $? "liblane.so.$V has soname liblane.so.0"
readelf -d "$P/lib/liblane-json.so.$V" > "$OUT/readelf.json" 2>&1
grep -q 'SONAME.*\[liblane-json\.so\.0\]' "$OUT/readelf.json" &&
  grep -q 'NEEDED.*\[liblane\.so\.0\]' "$OUT/readelf.json"
t $? "liblane-json.so.$V has soname liblane-json.so.0 and needs liblane.so.0"
! grep -q 'NEEDED.*jansson' "$OUT/readelf.lane"; t $? "liblane itself does not need jansson"

# Exported symbols: lane_ only; the adapter library exactly its one function.
nm -D --defined-only "$P/lib/liblane.so.$V" | awk 'NF >= 3 { print $3 }' |
  grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort -u > "$OUT/syms.lane"
[ -s "$OUT/syms.lane" ] && ! grep -qv '^lane_' "$OUT/syms.lane"
t $? "liblane.so exports only lane_ symbols ($(wc -l < "$OUT/syms.lane"))"
grep -v '^lane_' "$OUT/syms.lane" | sed 's/^/#   /'
nm -D --defined-only "$P/lib/liblane-json.so.$V" | awk 'NF >= 3 { print $3 }' |
  grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort -u > "$OUT/syms.json"
[ "$(cat "$OUT/syms.json")" = lane_request_from_json ]
t $? "liblane-json.so exports exactly lane_request_from_json"

# pkg-config
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
flags=$(pkg-config --cflags --libs lane 2> "$OUT/pc.err" | sed 's/ *$//')
[ "$flags" = "-I$P/include -L$P/lib -llane" ]; t $? "pkg-config --cflags --libs lane: $flags"
[ -z "$flags" ] && show "$OUT/pc.err"
[ "$(pkg-config --modversion lane)" = "$V" ]; t $? "pkg-config --modversion lane: $V"
jflags=$(pkg-config --cflags --libs lane-json 2>&1 | sed 's/ *$//')
[ "$jflags" = "-I$P/include -L$P/lib -llane-json -llane" ]
t $? "pkg-config --cflags --libs lane-json: $jflags"

# The README's host example, against the installed library only.
awk '/^## Embedding the VM/ { sec = 1; next }
     /^## / { sec = 0 }
     sec && !inb && /^```c[ \t]*$/ { inb = 1; next }
     inb && /^```/ { exit }
     inb { print }' README.md > "$OUT/host.c"
[ -s "$OUT/host.c" ]; t $? "README.md's C host example extracted ($(wc -l < "$OUT/host.c") lines)"
# shellcheck disable=SC2086  # flag lists
$CC -std=c11 -Wall -Wextra -Werror $SAN -o "$OUT/host" "$OUT/host.c" $flags \
  2> "$OUT/host.err"
rc=$?; t $rc "the example builds with \`pkg-config --cflags --libs lane\`"
[ $rc = 0 ] || show "$OUT/host.err"
readelf -d "$OUT/host" 2>/dev/null | grep -q 'NEEDED.*\[liblane\.so\.0\]'
t $? "the host needs liblane.so.0 (the soname)"
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror $SAN -o "$OUT/host_static" "$OUT/host.c" \
  $(pkg-config --cflags lane) "$P/lib/liblane.a" 2> "$OUT/host_static.err"
rc=$?; t $rc "the example links statically against lib/liblane.a"
[ $rc = 0 ] || show "$OUT/host_static.err"

env -u LANE_STDLIB "$P/bin/lane" compile examples/policies/support.lane -o "$OUT/support.lanec" \
  > "$OUT/compile.log" 2>&1
rc=$?; t $rc "the installed lane compiles examples/policies/support.lane"
[ $rc = 0 ] || show "$OUT/compile.log"
printf '{"tier": "free", "input_tokens": 1200, "max_output_tokens": 300}\n' > "$OUT/req.json"
want=$("$P/bin/lane" eval "$OUT/support.lanec" --route support "$OUT/req.json" 2>&1 |
  perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>);
    printf "%s, expected \$%.6f\n", $d->{primary}, $d->{cost}' 2>/dev/null)
got=$(LD_LIBRARY_PATH="$P/lib" "$OUT/host" "$OUT/support.lanec" 2> "$OUT/run.err")
rc=$?
[ $rc = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]
t $? "the shared host prints what the installed lane eval says: '$got'"
[ "$got" = "$want" ] || { echo "#   want: '$want'"; show "$OUT/run.err"; }
got=$("$OUT/host_static" "$OUT/support.lanec" 2>&1)
[ "$got" = "$want" ]; t $? "the static host prints the same"

# An adapter host: lane-json.pc, lane_request_from_json on a real body.
cat > "$OUT/jhost.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <lane.h>

int main(int argc, char **argv) {
  static unsigned char buf[1 << 20];
  static char body[1 << 16];
  FILE *f = fopen(argv[1], "rb"), *g = fopen(argv[2], "rb");
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0, bn = g ? fread(body, 1, sizeof body, g) : 0;
  lane_error err;
  lane_program *p = lane_load(buf, n, &err);
  if (!p || argc < 3) return 2;
  lane_runtime *rt = lane_runtime_new(p, &err);
  lane_request r;
  lane_request_init(&r, p);
  lane_set_str(&r, lane_field(p, "tier"), "pro", 3);
  if (lane_request_from_json(&r, body, bn, LANE_FORMAT_OPENAI_CHAT | LANE_FORMAT_ANTHROPIC_MESSAGES,
                             &err) != LANE_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  lane_decision d;
  if (lane_decide(rt, "support", &r, &d) != LANE_OK) return 1;
  printf("%s\n", lane_model_name(p, d.candidates[0]));
  lane_runtime_free(rt);
  lane_program_free(p);
  return 0;
}
EOF
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror $SAN -o "$OUT/jhost" "$OUT/jhost.c" $jflags \
  2> "$OUT/jhost.err"
rc=$?; t $rc "an adapter host builds with \`pkg-config --cflags --libs lane-json\`"
[ $rc = 0 ] || show "$OUT/jhost.err"
got=$(LD_LIBRARY_PATH="$P/lib" "$OUT/jhost" "$OUT/support.lanec" tests/json/openai/09.json 2>&1)
rc=$?
[ $rc = 0 ] && [ -n "$got" ]; t $? "it routes tests/json/openai/09.json: $got"

# A bundle host: lane-bundle.pc, a bundle the installed lane built and
# signed (stdlib modules from the installed stdlib), verified and tested.
bflags=$(pkg-config --cflags --libs lane-bundle 2>&1 | sed 's/ *$//')
[ "$bflags" = "-I$P/include -L$P/lib -llane-bundle $P/lib/liblane.a -lm -ljansson -lsodium" ]
t $? "pkg-config --cflags --libs lane-bundle: $bflags"
cat > "$OUT/bhost.c" <<'EOF'
#include <stdio.h>
#include <lane_bundle.h>

int main(int argc, char **argv) {
  static char report[1 << 16];
  unsigned char pk[32];
  lane_error err;
  lane_bundle *b;
  if (argc < 3 || lane_key_load_public(argv[2], pk, &err) != LANE_OK ||
      lane_bundle_read_file(argv[1], pk, &b, &err) != LANE_OK) {
    fprintf(stderr, "%s\n", argc < 3 ? "usage" : err.message);
    return 2;
  }
  int failed = lane_bundle_test(b, report, sizeof report, &err);
  if (failed != 0) {
    fprintf(stderr, "%s%s\n", report, failed < 0 ? err.message : "");
    return 1;
  }
  lane_program *p = lane_bundle_take_program(b);
  printf("%s %s %d\n", lane_bundle_revision(b), lane_bundle_key_id(b), lane_route_count(p));
  lane_program_free(p);
  lane_bundle_free(b);
  return 0;
}
EOF
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror $SAN -o "$OUT/bhost" "$OUT/bhost.c" $bflags 2> "$OUT/bhost.err"
rc=$?; t $rc "a bundle host builds with \`pkg-config --cflags --libs lane-bundle\`"
[ $rc = 0 ] || show "$OUT/bhost.err"
{ env -u LANE_STDLIB "$P/bin/lane" keygen -o "$OUT/rel" &&
  env -u LANE_STDLIB SOURCE_DATE_EPOCH=1764331200 "$P/bin/lane" build examples/policies/support.lane \
    -o "$OUT/support.bundle" --sign "$OUT/rel.key" --revision v1; } > "$OUT/build.log" 2>&1
rc=$?; t $rc "the installed lane makes a signed bundle of examples/policies/support.lane"
[ $rc = 0 ] || show "$OUT/build.log"
id=$(sed -n 's/.*key id \([0-9a-f]*\).*/\1/p' "$OUT/build.log")
got=$("$OUT/bhost" "$OUT/support.bundle" "$OUT/rel.pub" 2> "$OUT/bhost.run")
[ -n "$id" ] && [ "$got" = "v1 $id 1" ]
t $? "the host verifies it, its tests pass, and it takes the program: '$got'"
[ "$got" = "v1 $id 1" ] || show "$OUT/bhost.run"
head -c 5000 "$OUT/support.bundle" > "$OUT/cut.bundle"
"$OUT/bhost" "$OUT/cut.bundle" "$OUT/rel.pub" > /dev/null 2> "$OUT/bhost.cut"
[ $? = 2 ] && grep -q "truncated" "$OUT/bhost.cut"
t $? "the host refuses a truncated bundle: $(cat "$OUT/bhost.cut")"

# The installed lane reads the installed stdlib (a module only it has), also
# once the prefix has moved elsewhere.
cat > "$P/share/lane/stdlib/install_probe.lane" <<'EOF'
model probe {
  provider "probe"  name "probe-1"
  input $1/Mtok  output $2/Mtok  context 8k  max_output 1k
}
EOF
printf 'import "std/install_probe"\nroute r { otherwise -> install_probe.probe }\n' \
  > "$OUT/probe.lane"
env -u LANE_STDLIB "$P/bin/lane" check "$OUT/probe.lane" > "$OUT/probe.log" 2>&1
rc=$?; t $rc "the installed lane finds share/lane/stdlib beside its bin/"
[ $rc = 0 ] || show "$OUT/probe.log"
mv "$P" "$OUT/moved" && env -u LANE_STDLIB "$OUT/moved/bin/lane" check "$OUT/probe.lane" \
  > "$OUT/moved.log" 2>&1
rc=$?; t $rc "... and still after the prefix is moved"
[ $rc = 0 ] || show "$OUT/moved.log"
"$BUILD/lane" check "$OUT/probe.lane" > "$OUT/tree.log" 2>&1
[ $? = 1 ] && grep -q "cannot find module 'std/install_probe'" "$OUT/tree.log"
t $? "the build tree's lane keeps reading the source tree's stdlib"

# The Python binding: installed where python3 looks under the prefix, and
# finding the prefix's own liblane.so without LD_LIBRARY_PATH.
py=$(find "$OUT/moved" -name lane.py | head -1)
[ -n "$py" ] && case "$py" in "$OUT/moved/lib/"*) true ;; *) false ;; esac
t $? "the Python binding is installed under PREFIX/lib (${py#$OUT/moved/})"
# A sanitizer build's library needs its runtime first in the process.
case "$SAN" in
  *address*) sanrt=libasan.so ;; *thread*) sanrt=libtsan.so ;; *undefined*) sanrt=libubsan.so ;;
  *) sanrt= ;;
esac
pre=${sanrt:+$($CC -print-file-name=$sanrt)}
# The interpreter itself, not a wrapper script (pyenv's python3 is one, and
# a sanitizer runtime preloaded into the shell that runs it crashes it).
pyexe=$(python3 -c 'import sys; print(sys.executable)')
( cd "$OUT" && env -u LANE_LIBDIR PYTHONPATH="$(dirname "$py")" LD_PRELOAD="$pre" \
    ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$pyexe" -c '
import lane, sys
lib = lane._open("lane")
assert lane.__file__.startswith(sys.argv[1]), lane.__file__
assert lib._name.startswith(sys.argv[1]), lib._name
print(lib._name)' "$OUT/moved" ) > "$OUT/py.log" 2>&1
rc=$?; t $rc "python3 imports the installed lane.py and it loads the installed liblane.so"
[ $rc = 0 ] || show "$OUT/py.log"

# DESTDIR: staged under DESTDIR, configured for PREFIX.
make --no-print-directory install-files BUILD="$BUILD" PREFIX=/opt/lane DESTDIR="$OUT/stage" \
  > "$OUT/stage.log" 2>&1
rc=$?
[ $rc = 0 ] && [ -x "$OUT/stage/opt/lane/bin/lane" ] && [ -f "$OUT/stage/opt/lane/lib/liblane.so.$V" ] &&
  [ -f "$OUT/stage/opt/lane/share/man/man1/lane.1" ]
t $? "make install DESTDIR=... PREFIX=/opt/lane stages under DESTDIR"
[ $rc = 0 ] || show "$OUT/stage.log"
grep -qx 'prefix=/opt/lane' "$OUT/stage/opt/lane/lib/pkgconfig/lane.pc" 2>/dev/null
t $? "the staged lane.pc says prefix=/opt/lane"

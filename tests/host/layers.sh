#!/bin/sh
# layers.sh -- the folders are link units stacked in one order, and no lower
# unit reaches a higher one, by include or by link:
#
#   vm/            liblane         libc only
#   vm/json/       liblane-json    + liblane, jansson
#   vm/redis/      liblane-redis   + liblane, hiredis, pthreads
#   lang/          front end       + vm (text.h)
#   compiler/      liblanec        + lang, vm
#   compiler/bundle/ liblane-bundle + compiler, lang, vm, jansson, libsodium
#   compiler/cli/  the lane command + compiler/bundle, compiler, lang, vm, vm/json,
#                                     jansson, libcurl
#   gateway/       a host          vm/lane.h, vm/redis/lane_redis.h and
#                                  compiler/bundle/lane_bundle.h only
#                                  (+ jansson, libcurl, libmicrohttpd, libsodium,
#                                  hiredis)
#
# This order is written here on purpose, apart from the Makefile: the test
# checks the Makefile's include paths against it, every `#include "..."` of
# every unit against the headers its units below provide, every system
# header a low unit must not use, and that each archive links with nothing
# above it. Env: BUILD (default build), CC, SAN (sanitizer flags).
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
CC=${CC:-cc}
OUT=$BUILD/tests/layers
mkdir -p "$OUT" || exit 2

. tests/tap.sh

# unit: folder, the folders whose headers it may include (itself first).
units="vm:vm
vm/json:vm/json vm
vm/redis:vm/redis vm
lang:lang vm
compiler:compiler lang vm
compiler/bundle:compiler/bundle compiler lang vm
compiler/cli:compiler/cli compiler/bundle compiler lang vm vm/json
gateway:gateway vm=lane.h vm/redis=lane_redis.h compiler/bundle=lane_bundle.h"
# System headers a unit must not include.
banned() {
  case $1 in
    vm) echo "jansson.h curl/curl.h microhttpd.h hiredis sodium.h pthread.h" ;;
    vm/json) echo "curl/curl.h microhttpd.h" ;;
    vm/redis) echo "jansson.h curl/curl.h microhttpd.h sodium.h" ;;
    lang|compiler) echo "jansson.h curl/curl.h microhttpd.h sodium.h" ;;
    compiler/bundle) echo "curl/curl.h microhttpd.h" ;;
    *) echo "" ;;
  esac
}
# The Makefile variable holding a unit's include path.
incvar() {
  case $1 in vm) echo INC_vm ;; vm/json) echo INC_json ;; vm/redis) echo INC_redis ;; lang) echo INC_lang ;;
    compiler) echo INC_compiler ;; compiler/bundle) echo INC_bundle ;; compiler/cli) echo INC_cli ;;
    *) echo "" ;; esac
}

echo "$units" | while IFS=: read -r unit allowed; do
  files=$(find "$unit" -maxdepth 1 -name '*.[ch]' | sort)
  [ -n "$files" ] || { echo "not ok - $unit has no C files"; continue; }
  bad=$OUT/$(echo "$unit" | tr / _).bad
  : > "$bad"
  for f in $files; do
    grep -o '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*"' "$f" | sed 's/.*"\(.*\)"/\1/' |
      while read -r h; do
        found=
        for d in $allowed; do
          case $d in
            *=*) [ "${d#*=}" = "$h" ] && [ -f "${d%%=*}/$h" ] && { found=$d; break; } ;;  # one public header
            *) [ -f "$d/$h" ] && { found=$d; break; } ;;
          esac
        done
        # flex and bison write lang's parser.h and lexer.h into $BUILD/lang.
        case $unit:$h in lang:parser.h|lang:lexer.h|compiler*:parser.h|compiler*:lexer.h) found=gen ;; esac
        [ -n "$found" ] || echo "$f includes \"$h\", which no unit below $unit provides" >> "$bad"
      done
    for s in $(banned "$unit"); do
      grep -q "^[[:space:]]*#[[:space:]]*include[[:space:]]*<$s" "$f" &&
        echo "$f includes <$s>, which $unit may not use" >> "$bad"
    done
  done
  echo "$unit" > "$bad.unit"
done

for unit in vm vm/json vm/redis lang compiler compiler/bundle compiler/cli gateway; do
  bad=$OUT/$(echo "$unit" | tr / _).bad
  t "$([ -f "$bad" ] && [ ! -s "$bad" ] && echo 0 || echo 1)" "$unit/ includes only its own headers and those of the units below it" "$bad"
done

# The Makefile gives each unit only the include path of the units it may use.
# (A make of its own: under `make -j` the caller's jobserver flags would
# make it print warnings among the flags.)
mk=$OUT/make-inc.txt
: > "$mk"
echo "$units" | while IFS=: read -r unit allowed; do
  v=$(incvar "$unit")
  [ -n "$v" ] || continue
  got=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -f Makefile -f - BUILD="$BUILD" print-inc <<EOF 2>&1
print-inc: ; @echo \$($v)
EOF
)
  for flag in $got; do
    d=${flag#-I}
    case $d in "$BUILD"/lang) continue ;; esac
    ok=
    for a in $allowed; do [ "$d" = "$a" ] && ok=1; done
    [ -n "$ok" ] || echo "$v grants -I$d, which $unit may not use" >> "$mk"
  done
done
t "$([ -s "$mk" ] && echo 1 || echo 0)" "the Makefile's include paths keep the same order" "$mk"

# Link level: each archive, every object of it pulled in, links with only
# what its layer may use (SAN: the sanitizer runtime the build used).
printf 'int main(void) { return 0; }\n' > "$OUT/main.c"
link() {  # link NAME ARCHIVES... -- LIBS...
  name=$1; shift
  arch=
  while [ "$1" != -- ]; do arch="$arch $1"; shift; done
  shift
  # shellcheck disable=SC2086
  $CC $SAN -o "$OUT/$name" "$OUT/main.c" -Wl,--whole-archive $arch -Wl,--no-whole-archive "$@" \
    > "$OUT/$name.err" 2>&1
}
link liblane "$BUILD/liblane.a" -- -lm
t $? "liblane.a links with libc alone (and libm)" "$OUT/liblane.err"
link liblane-json "$BUILD/liblane-json.a" "$BUILD/liblane.a" -- -ljansson -lm
t $? "liblane-json.a links with liblane and jansson" "$OUT/liblane-json.err"
link liblane-redis "$BUILD/liblane-redis.a" "$BUILD/liblane.a" -- -lhiredis -lpthread -lm
t $? "liblane-redis.a links with liblane, hiredis and pthreads" "$OUT/liblane-redis.err"
link liblanec "$BUILD/liblanec.a" "$BUILD/liblane.a" -- -lm
t $? "liblanec.a links with liblane alone: no jansson, no libcurl" "$OUT/liblanec.err"
link lane-bundle "$BUILD/lane-bundle.a" "$BUILD/liblanec.a" "$BUILD/liblane.a" -- -ljansson -lsodium -lm
t $? "lane-bundle.a links with liblanec, liblane, jansson and libsodium: no libcurl" "$OUT/lane-bundle.err"
# What hosts link: liblanec inside, liblane beside it.
link liblane-bundle "$BUILD/liblane-bundle.a" "$BUILD/liblane.a" -- -ljansson -lsodium -lm
t $? "liblane-bundle.a links with liblane, jansson and libsodium alone" "$OUT/liblane-bundle.err"

tap_end

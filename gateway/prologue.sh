# prologue.sh -- sourced by test.sh and t_faults.sh, from the top of the
# tree, with OUT set: makes OUT, checks that libmicrohttpd's header is
# there and builds the gateway, answering TAP for the whole file (and
# leaving) when either cannot be done.
mkdir -p "$OUT" || exit 2
if ! echo '#include <microhttpd.h>' | ${CC:-cc} -E - >/dev/null 2>&1; then
  echo "1..1"
  echo "not ok 1 - libmicrohttpd-dev is installed (make deps, as root, installs it)"
  exit 1
fi
if ! make --no-print-directory BUILD="$BUILD" gateway >"$OUT/build.log" 2>&1; then
  echo "1..1"
  echo "not ok 1 - make gateway"
  sed 's/^/# /' "$OUT/build.log"
  exit 0
fi

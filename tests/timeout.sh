#!/bin/sh
# timeout.sh -- runs one test program of `make test` under a time limit:
# prove --exec 'sh tests/timeout.sh' runs every test through it.
#
# A test that runs longer than LANE_TEST_TIMEOUT seconds (default 900: far
# above any test's time, even under a sanitizer on a loaded machine) is
# killed, said so on stderr, and fails (prove reports its exit status and
# the missing results) while the rest of the suite goes on, instead of
# hanging CI. The interpreter follows the file name: .sh runs under sh,
# .py under python3, anything else is executed as is.
limit=${LANE_TEST_TIMEOUT:-900}
t=$1
shift
case $t in
  *.sh) set -- sh "$t" "$@" ;;
  *.py) set -- python3 "$t" "$@" ;;
  *) set -- "$t" "$@" ;;
esac
timeout -k 10 "$limit" "$@"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  echo "TIMEOUT: $t did not finish in $limit s and was killed (LANE_TEST_TIMEOUT)" >&2
fi
exit $rc

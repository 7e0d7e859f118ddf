# tap.sh -- TAP for the shell tests, sourced after they cd to the tree's
# top (`. tests/tap.sh`): t STATUS DESCRIPTION [DETAIL FILE] counts one
# test, ok when STATUS is 0, and shows the first lines of DETAIL FILE when
# it failed; show FILE shows a file's first lines as a diagnostic;
# tap_end prints the plan and returns 1 when any test failed.
n=0
fail=0
t() {
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else
    echo "not ok $n - $2"; fail=$((fail + 1))
    [ -n "$3" ] && [ -s "$3" ] && head -30 "$3" | sed 's/^/#   /'
  fi
  return 0
}
show() { [ -s "$1" ] && head -20 "$1" | sed 's/^/#   /'; return 0; }
tap_end() { echo "1..$n"; [ "$fail" = 0 ]; }

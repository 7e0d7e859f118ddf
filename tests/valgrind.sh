#!/bin/sh
# valgrind.sh -- the unit tests and the golden suites' runs of the lane
# command under valgrind memcheck: any memory error or leak (definite or
# indirect) fails. Run by `make check-valgrind` with BUILD=build-valgrind.
# t_alloc (its own malloc), t_threads and t_stress (threads: minutes under
# valgrind's serialised scheduler, and TSan covers them) are left out.
B=${BUILD:-build-valgrind}
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
fail=0
n=0
for t in "$B"/tests/t_*; do
  case "$t" in *.d|*/t_alloc|*/t_threads|*/t_stress) continue ;; esac
  n=$((n + 1))
  if $VG "$t" >"$B/vg.out" 2>&1; then echo "ok $n - valgrind $(basename "$t")"
  else fail=$((fail + 1)); echo "not ok $n - valgrind $(basename "$t")"; tail -30 "$B/vg.out" | sed 's/^/#   /'; fi
done
# the lane command under valgrind, through the golden runner
cat >"$B/lane-vg" <<EOS
#!/bin/sh
exec $VG $(cd "$B" && pwd)/lane "\$@"
EOS
chmod +x "$B/lane-vg"
n=$((n + 1))
if LANE="$B/lane-vg" sh tests/golden/run.sh >"$B/vg-golden.out" 2>&1; then
  echo "ok $n - valgrind golden suites ($(grep -c '^ok' "$B/vg-golden.out") runs)"
else
  fail=$((fail + 1)); echo "not ok $n - valgrind golden suites"
  grep -A20 '^not ok' "$B/vg-golden.out" | head -60 | sed 's/^/#   /'
fi
echo "1..$n"
[ $fail -eq 0 ]

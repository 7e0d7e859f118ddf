#!/bin/sh
# fetch.sh -- the catalog tests: `lane catalog import`, `fetch` and `diff`,
# as TAP.
#
# Builds tests/catalog/t_import.c and t_fetch.c (with $SAN) against
# $BUILD/lane-cli.a (the lane command's catalog code), liblanec.a and liblane.a and runs t_import (catalog_import
# and the compiled modules); starts tests/catalog/server.py on 127.0.0.1
# (plus an HTTPS port with a throw-away self-signed certificate when
# openssl is there), runs t_fetch (catalog_fetch and catalog_diff called
# directly), checks from the server's side that unchanged catalogs were
# answered 304, then drives `$LANE catalog import|fetch|diff`. Nothing here
# is skipped: a missing python3 or a server that does not start fails the
# test.
#
# Environment (set by `make test`): BUILD (build dir), LANE (the lane
# command), CC, SAN (sanitizer flags the library was built with).
# Writes only under $BUILD/tests/catalog/. No traffic leaves the machine:
# the server binds 127.0.0.1, the DNS case uses the reserved .invalid TLD,
# proxies from the environment are ignored.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
case "$LANE" in /*) ;; *) LANE=$(pwd)/$LANE ;; esac
CC=${CC:-cc}
SAN=${SAN:-}
FIX=tests/catalog
OUT=$BUILD/tests/catalog
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY \
  LANE_FETCH_TIMEOUT_MS
rm -rf "$OUT"
mkdir -p "$OUT/work" "$OUT/cli" || exit 2

n=0
t() {   # t STATUS description: ok when STATUS is 0
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
show() { [ -s "$1" ] && sed 's/^/#   /' "$1"; return 0; }

# ---- the server ----
tls_args=""
if command -v openssl >/dev/null 2>&1 &&
   openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
     -addext subjectAltName=IP:127.0.0.1 -keyout "$OUT/key.pem" -out "$OUT/cert.pem" \
     >"$OUT/openssl.log" 2>&1; then
  tls_args="--tls $OUT/cert.pem $OUT/key.pem"
fi
# shellcheck disable=SC2086  # tls_args is a list
python3 $FIX/server.py --lifetime 120 --slow 5 $tls_args >"$OUT/server.out" 2>"$OUT/server.err" &
spid=$!
trap 'kill $spid 2>/dev/null' EXIT
trap 'kill $spid 2>/dev/null; exit 2' INT TERM
i=0
while [ ! -s "$OUT/server.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
read -r port tls_port <"$OUT/server.out"
if [ -z "$port" ]; then
  echo "1..1"
  echo "not ok 1 - the test server (python3 $FIX/server.py) starts"
  show "$OUT/server.err"
  exit 1
fi
URL=http://127.0.0.1:$port
# A port with nothing listening: bound once by the kernel's choice, closed.
rport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# The size of /big.json, which the too-large message must quote.
big_size=$(python3 -c 'import sys, urllib.request as u
print(len(u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=5).read()))' "$URL/big.json")

# ---- t_import and t_fetch: catalog_import, catalog_fetch, catalog_diff from C ----
# c_test NAME: builds tests/catalog/NAME.c, runs it with the environment
# given before the call, renumbers its results into this script's sequence.
c_test() {
  # shellcheck disable=SC2086  # SAN is a list of flags
  $CC -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -g $SAN -Icompiler/cli -Icompiler -Ilang -I"$BUILD/lang" -Ivm -Itests -o "$OUT/$1" $FIX/$1.c \
    "$BUILD/lane-cli.a" "$BUILD/liblanec.a" "$BUILD/liblane.a" -ljansson -lcurl -lm 2>"$OUT/$1.cc.err"
  rc=$?
  t $rc "$1.c builds against $BUILD/lane-cli.a"
  show "$OUT/$1.cc.err"
  [ $rc = 0 ] || return
  "$OUT/$1" >"$OUT/$1.out" 2>"$OUT/$1.err"
  rc=$?
  awk -v n=$n '
    /^(not )?ok [0-9]+/ {
      n++; neg = /^not /; sub(/^(not )?ok [0-9]+/, ""); print (neg ? "not ok " : "ok ") n $0; next }
    /^1\.\.[0-9]+/ { next }
    { print }
    END { print n > "/dev/stderr" }' "$OUT/$1.out" 2>"$OUT/count"
  n=$(cat "$OUT/count")
  grep -q '^1\.\.[0-9]' "$OUT/$1.out"
  t $? "$1 ran to its end"
  t $rc "$1 exits 0${SAN:+ under $SAN}"
  [ $rc = 0 ] || show "$OUT/$1.err"
  grep '^SKIPPED' "$OUT/$1.err" >&2   # say a skip loudly
}
mkdir -p "$OUT/import"
export LANE_TEST_DIR="$OUT/import" LANE_TEST_FIXTURES="$FIX"
c_test t_import
tls_url=""
[ -n "$tls_port" ] && tls_url=https://127.0.0.1:$tls_port
export LANE_TEST_URL="$URL" LANE_TEST_REFUSED="http://127.0.0.1:$rport" \
  LANE_TEST_DIR="$OUT/work" LANE_TEST_TLS_URL="$tls_url" LANE_TEST_CA="$OUT/cert.pem" \
  LANE_TEST_BIG_SIZE="$big_size"
c_test t_fetch

# The server's side: an unchanged catalog was not sent twice.
python3 - "$URL/stats" >"$OUT/stats" 2>&1 <<'EOF'
import json, sys, urllib.request
op = urllib.request.build_opener(urllib.request.ProxyHandler({}))
s = json.load(op.open(sys.argv[1], timeout=5))
print(s.get("/good.json", [0, 0])[1])
EOF
n304=$(cat "$OUT/stats")
[ "$n304" -ge 2 ] 2>/dev/null
t $? "the server answered 304 to If-None-Match (${n304} times)"

# ---- the lane command ----
C=$OUT/cli/cat.json
  "$LANE" catalog fetch "$URL/good.json" -o "$C" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  [ $rc = 0 ] && grep -q "^fetched $URL/good.json: 6 entries, [0-9]* bytes -> $C\$" "$OUT/o" &&
    cmp -s "$C" $FIX/good.json && [ -s "$C.etag" ] && [ ! -s "$OUT/e" ]
  t $? "lane catalog fetch URL -o FILE: exit 0, FILE and FILE.etag written"
  [ $rc = 0 ] || show "$OUT/e"
  cp "$C.etag" "$OUT/etag.before"
  "$LANE" catalog fetch "$URL/good.json" -o "$C" >"$OUT/o" 2>"$OUT/e" &&
    grep -q 'not modified' "$OUT/o"
  t $? "lane catalog fetch again: exit 0, not modified"
  "$LANE" catalog fetch "$URL/broken.json" -o "$C" >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && [ "$(wc -l <"$OUT/e")" = 1 ] && grep -q "$URL/broken.json: invalid JSON at line 5, column 22" "$OUT/e" &&
    cmp -s "$C" $FIX/good.json && cmp -s "$C.etag" "$OUT/etag.before"
  rc=$?
  t $rc "lane catalog fetch invalid JSON: exit 2, one line, file and .etag kept"
  [ $rc = 0 ] || show "$OUT/e"
  "$LANE" catalog fetch "$URL/slow.json" -o "$C" --timeout-ms 1000 >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'timed out after 1000 ms' "$OUT/e" && cmp -s "$C" $FIX/good.json
  t $? "lane catalog fetch --timeout-ms 1000: exit 2, timed out"
  "$LANE" catalog fetch "$URL/big.json" -o "$C" --max-bytes 65536 >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'body too large' "$OUT/e" && cmp -s "$C" $FIX/good.json
  t $? "lane catalog fetch --max-bytes 65536: exit 2, too large"
  "$LANE" catalog fetch "$URL/changed.json" -o "$C" >"$OUT/o" 2>"$OUT/e" &&
    cmp -s "$C" $FIX/changed.json && [ "$(find "$OUT/cli" -name '*.tmp.*' | wc -l)" = 0 ]
  t $? "lane catalog fetch changed.json: replaced, no temp file left"
  "$LANE" catalog fetch "$URL/good.json" >"$OUT/o" 2>"$OUT/e"
  t $(($? == 2 ? 0 : 1)) "lane catalog fetch without -o: exit 2"

  cat >"$OUT/want" <<'EOF'
~ anthropic.claude-3-5-sonnet-20240620-v1:0: input_cost_per_token 3e-06 -> 2.5e-06
+ mistral/mistral-large-latest (mistral)
- text-embedding-3-small (openai)
1 added, 1 removed, 1 changed
EOF
  "$LANE" catalog diff $FIX/good.json $FIX/changed.json >"$OUT/o" 2>"$OUT/e"
  [ $? = 1 ] && cmp -s "$OUT/o" "$OUT/want"
  t $? "lane catalog diff good changed: exit 1, the three lines and the summary"
  diff "$OUT/want" "$OUT/o" | sed 's/^/#   /'
  "$LANE" catalog diff $FIX/diff_old.json $FIX/diff_new.json >"$OUT/o" 2>"$OUT/e"
  [ $? = 1 ] && cmp -s "$OUT/o" $FIX/diff_expected.txt
  t $? "lane catalog diff diff_old diff_new: as in diff_expected.txt"
  "$LANE" catalog diff $FIX/good.json $FIX/good.json >"$OUT/o" 2>"$OUT/e" &&
    [ "$(cat "$OUT/o")" = "0 added, 0 removed, 0 changed" ]
  t $? "lane catalog diff good good: exit 0"
  "$LANE" catalog diff $FIX/good.json "$OUT/missing.json" >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'cannot read' "$OUT/e"
  t $? "lane catalog diff with a missing file: exit 2"

  # issue 12: capabilities, lane names, --provider
  "$LANE" catalog diff $FIX/lane_old.json $FIX/lane_new.json --format lane >"$OUT/o" 2>"$OUT/e"
  [ $? = 1 ] && cmp -s "$OUT/o" $FIX/lane_diff_expected.txt
  t $? "lane catalog diff --format lane: as in lane_diff_expected.txt"
  diff $FIX/lane_diff_expected.txt "$OUT/o" | sed 's/^/#   /'
  "$LANE" catalog diff $FIX/lane_old.json $FIX/lane_new.json --format lane --provider mistral \
    >"$OUT/o" 2>"$OUT/e"
  [ $? = 1 ] && [ "$(cat "$OUT/o")" = "~ mistral.mistral_large_latest: caps +vision
0 added, 0 removed, 1 changed" ]
  t $? "lane catalog diff --format lane --provider mistral: only mistral's line"
  "$LANE" catalog diff $FIX/lane_old.json $FIX/lane_new.json --provider deepseek >"$OUT/o" 2>"$OUT/e"
  [ $? = 1 ] && [ "$(cat "$OUT/o")" = "~ deepseek-reasoner: supports_function_calling true -> false
~ deepseek/deepseek-reasoner: supports_function_calling true -> false
0 added, 0 removed, 2 changed" ]
  t $? "lane catalog diff --provider deepseek: raw keys, capability flags compared"
  "$LANE" catalog diff $FIX/lane_old.json $FIX/lane_new.json --format yaml >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'format is keys' "$OUT/e"
  t $? "lane catalog diff --format yaml: exit 2"
  "$LANE" catalog diff $FIX/lane_old.json $FIX/lane_new.json --provider nosuch >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'provider nosuch: neither catalog' "$OUT/e"
  t $? "lane catalog diff --provider nosuch: exit 2, said"

  # issue 13: a shrunken catalog needs --force; a hostile one is refused
  C2=$OUT/cli/cat2.json
  "$LANE" catalog fetch "$URL/good.json" -o "$C2" >"$OUT/o" 2>"$OUT/e" &&
  "$LANE" catalog fetch "$URL/tiny.json" -o "$C2" >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'fewer than half of the 6' "$OUT/e" && cmp -s "$C2" $FIX/good.json
  t $? "lane catalog fetch of a 1-entry catalog over a 6-entry one: refused, file kept"
  "$LANE" catalog fetch "$URL/tiny.json" -o "$C2" --force >"$OUT/o" 2>"$OUT/e" &&
    grep -q '(--force)' "$OUT/o" && grep -q 'gpt-4o' "$C2" && ! grep -q claude "$C2"
  t $? "lane catalog fetch --force: replaced, with a note"
  cp $FIX/good.json "$C2"
  "$LANE" catalog fetch "$URL/hostile.json" -o "$C2" >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'CATALOG_MAX_CONTAINERS' "$OUT/e" && cmp -s "$C2" $FIX/good.json
  t $? "lane catalog fetch of 250,000 empty objects: refused by name, file kept"
  cp $FIX/good.json "$C2"
  "$LANE" catalog fetch "$URL/good.json" -o "$C2" >"$OUT/o" 2>"$OUT/e" &&
  "$LANE" catalog fetch "$URL/same-etag.json" -o "$C2" >"$OUT/o" 2>"$OUT/e" &&
    cmp -s "$C2" $FIX/changed.json && ! grep -q 'not modified' "$OUT/o"
  t $? "lane catalog fetch from another URL whose ETag matches: downloaded, not 304"
  "$LANE" catalog import $FIX/good.json -o "$OUT/cli/imp" --force >"$OUT/o" 2>"$OUT/e"
  [ $? = 2 ] && grep -q 'options of catalog fetch' "$OUT/e"
  t $? "lane catalog import --force: refused, not ignored"

  # issue 13: catalog text never becomes policy text
  "$LANE" catalog import $FIX/inject_date.json -o "$OUT/cli/inj" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  printf 'import "openai"\nmodel openai.gpt_4o_mini { quality 0.5 }\nroute r { otherwise -> best(models) }\n' \
    >"$OUT/cli/inj/p.lane"
  echo '{"input_tokens": 1000}' >"$OUT/cli/q.json"
  [ $rc = 0 ] && "$LANE" eval "$OUT/cli/inj/p.lane" --route r "$OUT/cli/q.json" >"$OUT/o" 2>"$OUT/e" &&
    grep -q '"primary": "openai.gpt_4o_mini"' "$OUT/o" && ! grep -q attacker "$OUT/o"
  t $? "a deprecation_date holding a model block: no injected model to route to"
  [ $? = 0 ] || show "$OUT/o"

kill $spid 2>/dev/null
wait $spid 2>/dev/null
trap - EXIT
echo "1..$n"

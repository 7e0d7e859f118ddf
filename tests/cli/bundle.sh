#!/bin/sh
# bundle.sh -- `lane keygen`, `lane build` and `lane inspect`, as TAP: key
# pairs (mode 0600, never replaced, malformed files named); bundles of the
# example policy, unsigned and signed, whose files, digests and revision
# are checked against the disk and against bundle_edit.py (a second reader
# written from compiler/bundle/README.md); signatures verified, and
# refused for another key or an unsigned bundle; a flipped byte in the
# manifest, the program, a source or the signature refused with its reason
# (by the digest, or, once the digest is recomputed, by the signature or
# the manifest); truncated files; a program its sources do not give; a
# policy whose test fails (no bundle written) and a bundle whose test fails
# (inspect --test); tests run from the bundle alone, with the sources gone;
# -I and --tests recorded; reproducible bytes under SOURCE_DATE_EPOCH.
#
# Environment (set by `make test`): LANE (the lane command), BUILD.
# Writes only under $BUILD/tests/bundle/.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
LANE=${LANE:-$BUILD/lane}
case "$LANE" in /*) ;; *) LANE=$(pwd)/$LANE ;; esac
OUT=$(pwd)/$BUILD/tests/bundle
rm -rf "$OUT"
mkdir -p "$OUT" || exit 2
. tests/tap.sh
ED="python3 tests/cli/bundle_edit.py"
POLICY=examples/policies/support.lane
VERSION=$("$LANE" version | awk '{print $2}')

# expect_refused FILE PATTERN DESCRIPTION [inspect options]: exit 2, the
# reason on stderr matching PATTERN.
expect_refused() {
  f=$1 pat=$2 what=$3
  shift 3
  "$LANE" inspect "$f" "$@" >"$OUT/o" 2>"$OUT/e"
  rc=$?
  [ $rc = 2 ] && grep -q "$pat" "$OUT/e"
  t $? "$what (exit $rc: $(head -1 "$OUT/e"))" "$OUT/e"
}

# ---- keys ----
"$LANE" keygen -o "$OUT/rel" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && [ -f "$OUT/rel.key" ] && [ -f "$OUT/rel.pub" ] && grep -q "key id [0-9a-f]\{16\}" "$OUT/o"
t $? "keygen -o rel writes rel.key and rel.pub and names the key id (exit $rc)" "$OUT/e"
KEYID=$(sed -n 's/.*key id \([0-9a-f]*\).*/\1/p' "$OUT/o")
[ "$(stat -c %a "$OUT/rel.key")" = 600 ] && [ "$(stat -c %a "$OUT/rel.pub")" = 644 ]
t $? "  the secret key is mode 0600 ($(stat -c %a "$OUT/rel.key")), the public one 0644"
grep -qx 'lane-ed25519-secret [0-9a-f]\{128\}' "$OUT/rel.key" && grep -qx 'lane-ed25519-public [0-9a-f]\{64\}' "$OUT/rel.pub"
t $? "  each is one line: a tag and the key in hex"
cp "$OUT/rel.key" "$OUT/rel.key.was"
"$LANE" keygen -o "$OUT/rel" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && grep -q "exists; lane keygen does not replace keys" "$OUT/e" && cmp -s "$OUT/rel.key" "$OUT/rel.key.was"
t $? "keygen refuses to replace a key pair (exit $rc)" "$OUT/e"
"$LANE" keygen -o "$OUT/other" >/dev/null 2>&1 && "$LANE" keygen >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "keygen takes -o NAME" "$OUT/e"
t $? "keygen without -o is a usage error" "$OUT/e"

# ---- build ----
"$LANE" build "$POLICY" -o "$OUT/plain.bundle" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "12 tests, 12 passed, 0 failed" "$OUT/o" && grep -q "wrote .*plain.bundle" "$OUT/o"
t $? "build: the example policy's 12 tests pass and the bundle is written (exit $rc)" "$OUT/e"
show "$OUT/o"
ls "$OUT" | grep -q '\.tmp\.' && t 1 "  no temporary file is left" || t 0 "  no temporary file is left"
"$LANE" build "$POLICY" -o "$OUT/signed.bundle" --sign "$OUT/rel.key" --revision v42 >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "revision v42, .*signed by key $KEYID" "$OUT/o"
t $? "build --sign --revision: signed by the key keygen named (exit $rc)" "$OUT/e"

$ED list "$OUT/plain.bundle" >"$OUT/entries" 2>&1
[ "$(awk '{print $1}' "$OUT/entries" | tr '\n' ' ')" = "MANIFEST PROGRAM SOURCE SOURCE SOURCE SOURCE SOURCE SOURCE " ]
t $? "the bundle as README.md describes it: manifest, program, six sources" "$OUT/entries"
ok=0
for f in examples/policies/support.lane examples/policies/support_test.lane examples/state/incident.json; do
  $ED extract "$OUT/plain.bundle" "$f" >"$OUT/x" 2>/dev/null && cmp -s "$OUT/x" "$f" || ok=1
done
for m in anthropic openai gemini; do
  $ED extract "$OUT/plain.bundle" "std/providers/$m.lane" >"$OUT/x" 2>/dev/null &&
    cmp -s "$OUT/x" "stdlib/providers/$m.lane" || ok=1
done
t $ok "its sources are the files read: policy, tests file, snapshot (as examples/state/incident.json), std/providers/{anthropic,openai,gemini}.lane"
"$LANE" compile "$POLICY" -o "$OUT/support.lanec" 2>/dev/null
python3 - "$OUT/plain.bundle" "$OUT/support.lanec" >"$OUT/m" 2>&1 <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n0 = struct.unpack_from("<I", b, 20)[0]
m = json.loads(b[24:24 + n0])
n1 = struct.unpack_from("<I", b, 24 + n0 + 4)[0]
prog = b[24 + n0 + 8:24 + n0 + 8 + n1]
print(json.dumps(m))
assert prog == open(sys.argv[2], "rb").read(), "program differs from lane compile's"
EOF
t $? "  its program is lane compile's output, byte for byte" "$OUT/m"
digest=$($ED digest "$OUT/plain.bundle")
std=$($ED digest "$OUT/plain.bundle" --stdlib)
python3 -c '
import json, sys
m = json.loads(open(sys.argv[1]).readline())
want = {"bundle_version": 1, "policy": "examples/policies/support.lane",
        "tests_file": "examples/policies/support_test.lane", "include": [], "no_opt": False,
        "routes": ["support"], "tests": 12, "source_digest": sys.argv[2],
        "stdlib_digest": sys.argv[3], "revision": sys.argv[2][7:19], "lane_version": sys.argv[4]}
bad = [k for k in want if m.get(k) != want[k]]
assert not bad, "wrong: %s in %s" % (bad, m)
assert "key_id" not in m and len(m["program_checksum"]) == 16 and m["built_at"].endswith("Z")
' "$OUT/m" "$digest" "$std" "$VERSION" >"$OUT/e" 2>&1
t $? "  its manifest: digests as README.md defines them, revision from the source digest, routes, tests" "$OUT/e"

# ---- inspect and signatures ----
"$LANE" inspect "$OUT/signed.bundle" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "revision  *v42" "$OUT/o" && grep -q "by key $KEYID (not verified" "$OUT/o" &&
  grep -q "std/providers/openai.lane" "$OUT/o"
t $? "inspect: manifest, files, and the signer's key id, not verified without --key (exit $rc)" "$OUT/e"
"$LANE" inspect "$OUT/signed.bundle" --key "$OUT/rel.pub" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "by key $KEYID, verified with" "$OUT/o"
t $? "inspect --key: the signature verifies (exit $rc)" "$OUT/e"
"$LANE" inspect "$OUT/signed.bundle" --key "$OUT/rel.pub" --format json >"$OUT/j" 2>"$OUT/e"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["signature"] == "verified" and j["key_id"] == sys.argv[2], j
assert j["manifest"]["revision"] == "v42" and j["manifest"]["key_id"] == sys.argv[2], j
assert "std/providers/openai.lane" in j["manifest"]["files"], j
' "$OUT/j" "$KEYID" >"$OUT/e" 2>&1
t $? "inspect --format json: the manifest and the signature as JSON" "$OUT/e"
"$LANE" inspect "$OUT/signed.bundle" --key "$OUT/rel.pub" --test >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "compiled again by lane $VERSION give the bundled program" "$OUT/o" &&
  grep -q "12 tests, 12 passed, 0 failed" "$OUT/o"
t $? "inspect --test: compiled again, the same program, 12 tests pass (exit $rc)" "$OUT/o"
expect_refused "$OUT/signed.bundle" "signed by key $KEYID, not by the key given" \
  "another key's public key is refused" --key "$OUT/other.pub"
expect_refused "$OUT/plain.bundle" "is not signed, and a key .* was given" \
  "an unsigned bundle is refused when a key is given" --key "$OUT/rel.pub"

# ---- flipped bytes ----
for k in MANIFEST PROGRAM SOURCE SIG; do
  $ED flip "$OUT/signed.bundle" "$OUT/flip.bundle" $k
  expect_refused "$OUT/flip.bundle" "do not match its digest: it was corrupted or altered" \
    "a flipped byte in the $k is refused by the digest"
  $ED flip "$OUT/signed.bundle" "$OUT/flip.bundle" $k --reseal
  expect_refused "$OUT/flip.bundle" "the signature by key $KEYID does not verify" \
    "  with the digest recomputed, by the signature" --key "$OUT/rel.pub"
done
$ED flip "$OUT/plain.bundle" "$OUT/flip.bundle" SOURCE std/providers/openai.lane --reseal
expect_refused "$OUT/flip.bundle" '"source_digest" does not match' \
  "unsigned, digest recomputed: a changed source is refused by the manifest's source digest"
$ED flip "$OUT/plain.bundle" "$OUT/flip.bundle" PROGRAM --reseal
expect_refused "$OUT/flip.bundle" "the program: " \
  "unsigned, digest recomputed: a changed program is refused by lane_load"

# ---- truncated and foreign files ----
size=$(wc -c <"$OUT/signed.bundle")
for len in 0 7 40 1000 $((size / 2)) $((size - 33)) $((size - 1)); do
  head -c $len "$OUT/signed.bundle" >"$OUT/cut.bundle"
  expect_refused "$OUT/cut.bundle" "truncated\|do not match its digest" "cut to $len of $size bytes: refused"
done
expect_refused "$OUT/support.lanec" "not a lane bundle (it does not start with LANEBNDL)" "a .lanec is not a bundle"
expect_refused "$OUT/nosuch.bundle" "cannot read" "a missing file"

# ---- a program its sources do not give ----
# the same route, one fallback fewer (its own tests do not count them)
sed 's/fallbacks 2/fallbacks 1/; s/expect size(fallbacks) == 2/expect size(fallbacks) == 1/' "$POLICY" \
  >"$OUT/edited.lane"
: >"$OUT/no_test.lane"
"$LANE" build "$OUT/edited.lane" -o "$OUT/edited.bundle" --tests "$OUT/no_test.lane" >"$OUT/o" 2>"$OUT/e"
t $? "a bundle of the policy with one fallback fewer" "$OUT/e"
$ED set-program "$OUT/plain.bundle" "$OUT/edited.bundle" "$OUT/mixed.bundle" >"$OUT/e" 2>&1
"$LANE" inspect "$OUT/mixed.bundle" >"$OUT/o" 2>"$OUT/e"
t $? "a bundle with another policy's program (manifest made to match) opens" "$OUT/e"
"$LANE" inspect "$OUT/mixed.bundle" --test >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "the bundled program is not what lane $VERSION compiles from the bundle's sources (lane $VERSION built it)" "$OUT/e"
t $? "  inspect --test refuses it: its sources do not give its program (exit $rc)" "$OUT/e"

# ---- failing tests ----
mkdir -p "$OUT/p"
cat >"$OUT/p/pol.lane" <<'EOF'
model a { input $1/Mtok  output $2/Mtok }
model b { input $3/Mtok  output $4/Mtok }
route r { otherwise -> cheapest(models) }
test "cheap first" {
  route r
  req { input_tokens: 1k, max_output_tokens: 100 }
  expect primary == a
}
EOF
cat >"$OUT/p/wrong_test.lane" <<'EOF'
test "b first, wrongly" {
  route r
  req { input_tokens: 1k, max_output_tokens: 100 }
  expect primary == b
}
EOF
echo keep >"$OUT/p/pol.bundle"
"$LANE" build "$OUT/p/pol.lane" --tests "$OUT/p/wrong_test.lane" >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "FAIL 2 - b first, wrongly" "$OUT/o" && grep -q "1 test failed; no bundle written" "$OUT/e" &&
  [ "$(cat "$OUT/p/pol.bundle")" = keep ] && ! ls "$OUT/p" | grep -q '\.tmp\.'
t $? "build refuses a policy whose test fails: prints it, writes nothing, keeps the old file (exit $rc)" "$OUT/e"
show "$OUT/o"
"$LANE" build "$OUT/p/pol.lane" -o "$OUT/p/good.bundle" >"$OUT/o" 2>"$OUT/e"
sed 's/expect primary == a/expect primary == b/' "$OUT/p/pol.lane" >"$OUT/p/pol2.lane"
$ED set-source "$OUT/p/good.bundle" "$OUT/p/bad.bundle" "$OUT/p/pol.lane" "$OUT/p/pol2.lane" >"$OUT/e" 2>&1
"$LANE" inspect "$OUT/p/bad.bundle" >/dev/null 2>>"$OUT/e"
t $? "a bundle whose test was changed to fail (digests made to match) opens" "$OUT/e"
"$LANE" inspect "$OUT/p/bad.bundle" --test >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 1 ] && grep -q "FAIL 1 - cheap first" "$OUT/o" && grep -q "expect failed; primary is a" "$OUT/o" &&
  grep -q "1 tests, 0 passed, 1 failed" "$OUT/o"
t $? "  inspect --test reports the failure, what it saw and why (exit $rc)" "$OUT/o"

# ---- from the bundle alone ----
mkdir -p "$OUT/gone/lib"
printf 'model m { input $1/Mtok  output $2/Mtok }\n' >"$OUT/gone/lib/fleet.lane"
printf '{"now_ms": 1764331200000, "models": [{"model": "fleet.m", "p50": 1, "p95": 2, "error_rate": 0.9, "samples": 50, "state": "open", "until_ms": 1764331230000}]}\n' >"$OUT/gone/down.json"
cat >"$OUT/gone/pol.lane" <<'EOF'
import "fleet"
import "std/providers/anthropic"
route r {
  require healthy
  when req.tier == "x" -> fleet.m
  otherwise -> anthropic.claude_haiku_4_5
}
test "m answers tier x" { route r  req { tier: "x" }  expect primary == fleet.m }
EOF
cat >"$OUT/gone/more_tests.lane" <<'EOF'
test "not while its breaker is open" {
  route r
  state "down.json"
  req { tier: "x" }
  expect rule == 2
}
EOF
( cd "$OUT" && "$LANE" build gone/pol.lane -I gone/lib --tests gone/more_tests.lane -o gone.bundle ) >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "2 tests, 2 passed" "$OUT/o"
t $? "build with -I and --tests: an -I module, a stdlib module, a snapshot (exit $rc)" "$OUT/e"
show "$OUT/o"
"$LANE" inspect "$OUT/gone.bundle" --format json >"$OUT/j" 2>"$OUT/e"
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["manifest"]
assert m["include"] == ["gone/lib"] and m["tests_file"] == "gone/more_tests.lane", m
assert m["files"] == ["gone/down.json", "gone/lib/fleet.lane", "gone/more_tests.lane", "gone/pol.lane",
                      "std/providers/anthropic.lane"], m["files"]
' "$OUT/j" >"$OUT/e" 2>&1
t $? "  the manifest records -I gone/lib, the tests file and the five files" "$OUT/e"
rm -rf "$OUT/gone"
( cd / && "$LANE" inspect "$OUT/gone.bundle" --test ) >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 0 ] && grep -q "2 tests, 2 passed" "$OUT/o"
t $? "  with its sources deleted and from another directory, its tests still pass (exit $rc)" "$OUT/o"

# ---- rules, options, keys ----
mkdir -p "$OUT/w/std"
cp "$OUT/p/pol.lane" "$OUT/w/std/pol.lane"
( cd "$OUT/w" && "$LANE" build std/pol.lane -o x.bundle ) >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && grep -q "would be taken for a standard-library module" "$OUT/e"
t $? "a policy of the user's own named std/... is refused (exit $rc)" "$OUT/e"
"$LANE" build "$OUT/p/pol.lane" -o "$OUT/x.bundle" --revision 'bad revision' >"$OUT/o" 2>"$OUT/e"
rc=$?
[ $rc = 2 ] && grep -q "revision 'bad revision': use 1 to 128 letters" "$OUT/e"
t $? "a revision with a space is refused (exit $rc)" "$OUT/e"
"$LANE" compile "$OUT/p/pol.lane" --sign "$OUT/rel.key" >/dev/null 2>"$OUT/e"
rc=$?
"$LANE" build "$OUT/p/pol.lane" --key "$OUT/rel.pub" >/dev/null 2>>"$OUT/e"
rc2=$?
[ $rc = 2 ] && [ $rc2 = 2 ] && grep -q -- "--sign, --revision and --tests are options of build" "$OUT/e" &&
  grep -q -- "--key and --test are options of inspect" "$OUT/e"
t $? "options of build and inspect are refused elsewhere" "$OUT/e"
cp "$OUT/rel.key" "$OUT/open.key" && chmod 644 "$OUT/open.key"
"$LANE" build "$OUT/p/pol.lane" -o "$OUT/x.bundle" --sign "$OUT/open.key" >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "may be read by others (mode 0644)" "$OUT/e"
t $? "a secret key others may read is refused" "$OUT/e"
"$LANE" build "$OUT/p/pol.lane" -o "$OUT/x.bundle" --sign "$OUT/rel.pub" >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "is a public key; signing needs the secret key" "$OUT/e"
t $? "a public key given to --sign is named as such" "$OUT/e"
expect_refused "$OUT/signed.bundle" "is a secret key; give the public key" \
  "a secret key given to --key is named as such" --key "$OUT/rel.key"
printf 'lane-ed25519-public 12ab\n' >"$OUT/short.pub"
expect_refused "$OUT/signed.bundle" "the key has 4 hex digits, not 64" "a short public key" --key "$OUT/short.pub"
printf 'ssh-ed25519 AAAA\n' >"$OUT/ssh.pub"
expect_refused "$OUT/signed.bundle" "is not a lane public key file" "an ssh key is not a lane key" --key "$OUT/ssh.pub"
# the first hex digit of the seed changed: a key file that still parses
python3 -c '
import sys
s = open(sys.argv[1]).read()
i = len("lane-ed25519-secret ")
open(sys.argv[2], "w").write(s[:i] + ("1" if s[i] != "1" else "2") + s[i + 1:])
' "$OUT/rel.key" "$OUT/bent.key"
chmod 600 "$OUT/bent.key"
"$LANE" build "$OUT/p/pol.lane" -o "$OUT/x.bundle" --sign "$OUT/bent.key" >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "public half does not match its secret seed" "$OUT/e"
t $? "a damaged secret key (its seed changed) is refused" "$OUT/e"

# ---- reproducible ----
SOURCE_DATE_EPOCH=1764331200 "$LANE" build "$POLICY" -o "$OUT/r1.bundle" --sign "$OUT/rel.key" >/dev/null 2>&1
SOURCE_DATE_EPOCH=1764331200 "$LANE" build "$POLICY" -o "$OUT/r2.bundle" --sign "$OUT/rel.key" >/dev/null 2>&1
cmp -s "$OUT/r1.bundle" "$OUT/r2.bundle" && grep -q '"built_at": "2025-11-28T12:00:00Z"' "$OUT/r1.bundle"
t $? "with SOURCE_DATE_EPOCH, the same sources and key give the same bytes"
SOURCE_DATE_EPOCH=soon "$LANE" build "$POLICY" -o "$OUT/r3.bundle" >/dev/null 2>"$OUT/e"
[ $? = 2 ] && grep -q "SOURCE_DATE_EPOCH must be a whole number" "$OUT/e"
t $? "  a SOURCE_DATE_EPOCH that is not a number is refused" "$OUT/e"

tap_end

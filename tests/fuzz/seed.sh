#!/bin/sh
# seed.sh -- (re)writes the seed corpora of tests/fuzz/corpus/ from the
# golden tests. Run from the repository root after `make`; the corpora are
# checked in, and grow with `make fuzz-merge` and with regression inputs.
#   compile  golden policies (accept, reject, warn, disasm, explain)
#   load     hostile .lanec files and the compiled accept policies
#   decide   compiled accept policies, length-prefixed, plus a fixed script
#   diff     fixed pseudo-random bytes (the target's grammar does the rest)
#   explain  the same bytes as diff (the same grammar)
#   json     chat and messages request bodies
set -e
LANE=${LANE:-build/lane}
c=tests/fuzz/corpus
g=tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p $c/compile $c/load $c/decide $c/diff $c/explain $c/json
small() { [ "$(wc -c <"$1")" -le "${2:-16384}" ]; }
for d in accept reject warn disasm explain; do
  for p in $g/$d/*.lane; do small "$p" 8192 && cp "$p" "$c/compile/seed-$d-$(basename "$p" .lane)"; done
done
for f in $g/lanec/*.lanec; do small "$f" && cp "$f" "$c/load/seed-$(basename "$f" .lanec)"; done
for p in $g/accept/*.lane; do
  name=$(basename "$p" .lane)
  "$LANE" compile "$p" -o "$tmp/p.lanec" 2>/dev/null || continue
  small "$tmp/p.lanec" || continue
  cp "$tmp/p.lanec" "$c/load/seed-accept-$name"
  python3 - "$tmp/p.lanec" "$c/decide/seed-$name" <<'PY'
import struct, sys, random
b = open(sys.argv[1], 'rb').read()
r = random.Random(len(b))
script = bytes(r.randrange(256) for _ in range(160))
open(sys.argv[2], 'wb').write(struct.pack('<I', len(b)) + b + script)
PY
done
python3 - "$c/diff" <<'PY'
import sys, random
r = random.Random(7)
for i in range(24):
    open(f"{sys.argv[1]}/seed-{i:02d}", 'wb').write(bytes(r.randrange(256) for _ in range(200 + 20 * i)))
PY
cp $c/diff/seed-* $c/explain/
printf '\001{"model":"gpt-5","messages":[{"role":"user","content":"hi"}],"max_tokens":500,"user":"frank","metadata":{"team":"x"}}' >$c/json/seed-chat
printf '\002{"model":"claude","system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{}}]}],"max_tokens":1000,"tools":[{"name":"t"}]}' >$c/json/seed-messages
printf '\003{"messages":[],"stream":true,"response_format":{"type":"json_object"},"reasoning_effort":"high"}' >$c/json/seed-both
printf '\003[1,2,{"a":' >$c/json/seed-broken
echo "seeds: $(ls $c/compile | wc -l) compile, $(ls $c/load | wc -l) load, $(ls $c/decide | wc -l) decide, $(ls $c/diff | wc -l) diff, $(ls $c/explain | wc -l) explain, $(ls $c/json | wc -l) json"

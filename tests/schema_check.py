#!/usr/bin/env python3
"""schema_check.py FILE... -- every line of every FILE is a record that
validates against doc/decision-log.schema.json (the subset of JSON Schema
it uses: oneOf, $ref, type, const, enum, pattern, required, properties,
additionalProperties, items). Exit 1 naming the first that does not.
Used by tests/cli/replay.sh and gateway/t_gateway.py."""
import os
import json, sys
schema = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "doc", "decision-log.schema.json")))
def check(v, s, path):
    if "oneOf" in s:
        errs = []
        for alt in s["oneOf"]:
            try: check(v, alt, path); return
            except AssertionError as e: errs.append(str(e))
        raise AssertionError("%s: matches no alternative: %s" % (path, errs))
    if "$ref" in s:
        return check(v, schema["$defs"][s["$ref"].split("/")[-1]], path)
    t = s.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    ok = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if types:
        good = False
        for ty in types:
            if ty == "integer": good |= isinstance(v, int) and not isinstance(v, bool)
            elif ty == "number": good |= isinstance(v, (int, float)) and not isinstance(v, bool)
            else: good |= isinstance(v, ok[ty])
        assert good, "%s: %r is not %s" % (path, v, types)
    if "const" in s: assert v == s["const"], "%s: %r != %r" % (path, v, s["const"])
    if "enum" in s: assert v in s["enum"], "%s: %r not in %r" % (path, v, s["enum"])
    if "pattern" in s:
        import re
        assert re.search(s["pattern"], v), "%s: %r does not match %s" % (path, v, s["pattern"])
    if isinstance(v, dict):
        for k in s.get("required", []): assert k in v, "%s: %s missing" % (path, k)
        props = s.get("properties", {})
        for k, x in v.items():
            if k in props: check(x, props[k], path + "." + k)
            elif isinstance(s.get("additionalProperties"), dict): check(x, s["additionalProperties"], path + "." + k)
            else: assert s.get("additionalProperties", True) is not False, "%s: unexpected %s" % (path, k)
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v): check(x, s["items"], "%s[%d]" % (path, i))
n = 0
for f in sys.argv[1:]:
    for i, line in enumerate(open(f), 1):
        check(json.loads(line), schema, "%s:%d" % (f, i)); n += 1
assert n > 10, n

#!/usr/bin/env python3
"""extract.py -- builds tests/cel/cases.tsv from CEL's conformance suite.

    python3 tests/cel/extract.py ../shared/data/cel/conformance.json > tests/cel/cases.tsv

The input is google/cel-spec's conformance tests (v0.25.1, Apache-2.0, as
shipped in @bufbuild/cel-spec 0.6.1; see ../shared/data/README.md). Every
test becomes one line, so t_cel can count what it skips:

    NAME <TAB> KIND <TAB> EXPECTED <TAB> EXPR

NAME is file/section/test. KIND is
    true       no expected value: the expression must be true
    eq         the expression must equal EXPECTED, a lane literal
    nan        the expression must be a double NaN
    error      evaluation must fail; EXPECTED is CEL's message
    skip:WHY   a feature lane does not have (maps, bytes, macros, ...)
and ",unchecked" follows the kind when CEL runs the test with its type
checker off (disableCheck): lane always checks, so a type error there is
expected behaviour rather than a bug.
EXPR and EXPECTED are escaped: backslash, tab, newline and CR as \\\\ \\t \\n \\r,
other control characters as \\xHH.
"""
import json
import re
import sys

# Functions and methods lane has (compiler/builtins.c).
LANE_FUNCS = {"size", "startsWith", "endsWith", "contains", "int", "uint", "double", "bool",
              "string", "charAt", "indexOf", "lastIndexOf", "substring", "trim", "dyn", "math_f", "has", "lowerAscii", "upperAscii", "replace",
              "split", "join", "type", "matches"}
TYPE_NAMES = {"bool", "int", "uint", "double", "string", "list", "map", "null_type", "type"}
MATH_FUNCS = {"greatest", "least", "ceil", "floor", "round", "trunc", "abs", "sign",
              "isNaN", "isInf", "isFinite", "bitAnd", "bitOr", "bitXor", "bitNot",
              "bitShiftLeft", "bitShiftRight"}
LANE_MACROS = {"all", "exists", "exists_one", "existsOne", "map", "filter",
               "transformList", "transformMap"}
MACROS = {"all", "exists", "exists_one", "map", "filter", "transformList",
          "transformMap", "transformMapEntry", "sortBy"}
TIME_FUNCS = {"timestamp", "duration", "getFullYear", "getMonth", "getDate",
              "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours",
              "getMinutes", "getSeconds", "getMilliseconds"}


def esc(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def strip_strings(expr):
    """expr with string and bytes literals replaced by "" / #, or None
    when a literal does not end."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        m = re.match(r'([rRbB]{0,2})("""|\'\'\'|"|\')', expr[i:])
        if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            prefix, q = m.group(1), m.group(2)
            raw = "r" in prefix.lower()
            j = i + len(m.group(0))
            while j < n:
                if not raw and expr[j] == "\\":
                    j += 2
                    continue
                if expr.startswith(q, j):
                    break
                if len(q) == 1 and expr[j] == "\n":
                    return None
                j += 1
            if j >= n:
                return None
            out.append(" # " if "b" in prefix.lower() else " \"\" ")
            i = j + len(q)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def unsupported(o):
    """Why lane cannot run test o, or None."""
    if "bindings" in o:
        return "bindings"
    if "typeEnv" in o:
        return "declared variables"
    if o.get("container"):
        return "container"
    if o.get("checkOnly"):
        return "check only"
    if "result" in o.get("typedResult", {}):
        o = dict(o, value=o["typedResult"]["result"])
    if "value" in o:
        kind = next(iter(o["value"]))
        if kind not in ("boolValue", "int64Value", "uint64Value", "doubleValue",
                        "stringValue", "listValue", "mapValue", "typeValue"):
            return "result " + kind.replace("Value", "")
    e = strip_strings(o["expr"])
    if e is None:
        return "unterminated string (parse test)"
    if "#" in e:
        return "bytes"
    # Numbers out of the way (hex, exponents, u suffixes), then names.
    e = re.sub(r'(?<![A-Za-z0-9_])(0[xX][0-9a-fA-F]+|[0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?'
               r'|\.[0-9]+([eE][+-]?[0-9]+)?)[uU]?', ' 0 ', e)
    # google.protobuf.Timestamp and .Duration are type names lane has
    e = re.sub(r'google\s*\.\s*protobuf\s*\.\s*(Timestamp|Duration)(?![A-Za-z0-9_])', ' int ', e)
    # math.f( is one name, which lane has
    e = re.sub(r'(?<![A-Za-z0-9_.])math\s*\.\s*(' + "|".join(sorted(MATH_FUNCS)) + r')\s*\(',
               ' math_f(', e)
    if re.search(r'[A-Za-z0-9_]\s*\{', e):
        return "messages"
    if re.search(r'\?\.|\[\?|optional', e):
        return "optionals"
    if re.search(r'\[\s*\[', e) or re.search(r',\s*\[', e):
        return "lists of lists"
    # the variables macros bind: x.all(v, ...), x.all(i, v, ...)
    bound = set()
    for m in re.finditer(r'\.\s*(' + "|".join(sorted(LANE_MACROS)) +
                         r')\s*\(\s*([A-Za-z_]\w*)\s*,\s*(?:([A-Za-z_]\w*)\s*,)?', e):
        bound.update(x for x in m.group(2, 3) if x)
    for m in re.finditer(r'(\.?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\(?)', e):
        dot, name, call = m.group(1), m.group(2), m.group(3)
        if name in ("true", "false", "null", "in") and not call:
            continue
        if (name in bound or name in TYPE_NAMES) and not call and not dot:
            continue
        if call:
            if name in LANE_FUNCS:
                continue
            if name in MACROS and name not in LANE_MACROS:
                return "macros"
            if name in LANE_MACROS:
                continue
            if name in TIME_FUNCS:
                continue
            if name == "bytes":
                return "bytes"
            return "function " + name + "()"
        if dot:
            return "field selection"
        ns = re.match(r'\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\(', e[m.end(2):])
        if ns:
            return "extension functions " + name + ".*()"
        return "identifiers (variables, type names)"
    return None


def lane_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\u%04x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            return None
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def expected(o):
    """(kind, literal) for the test's expectation."""
    if "result" in o.get("typedResult", {}):
        o = dict(o, value=o["typedResult"]["result"])
    if "evalError" in o:
        msgs = [e.get("message", "") for e in o["evalError"].get("errors", [])]
        return "error", "; ".join(msgs)
    if "value" not in o:
        return "true", ""
    (k, v), = o["value"].items()
    if k == "boolValue":
        return ("true", "") if v else ("eq", "false")
    if k == "int64Value":
        return "eq", str(int(v))
    if k == "uint64Value":
        return "eq", str(int(v)) + "u"
    if k == "doubleValue":
        if v == "NaN":
            return "nan", ""
        if v in ("Infinity", "-Infinity"):
            return "eq", "(1.0/0.0)" if v == "Infinity" else "(-1.0/0.0)"
        lit = repr(float(v))
        if not re.search(r'[.eE]', lit):
            lit += ".0"
        return "eq", lit
    if k == "stringValue":
        lit = lane_string(v)
        return ("eq", lit) if lit is not None else ("skip:unpaired surrogate", "")
    if k == "typeValue":
        ok = v in TYPE_NAMES or v in ("google.protobuf.Timestamp", "google.protobuf.Duration")
        return ("eq", v) if ok else ("skip:result type " + v, "")
    if k in ("listValue", "mapValue"):
        lit = composite(k, v)
        return ("eq", lit) if lit is not None else ("skip:result " + k.replace("Value", ""), "")
    return "skip:result " + k, ""


def scalar(o):
    """A lane literal for a scalar value of the suite, or None."""
    (k, v), = o.items()
    if k == "boolValue":
        return "true" if v else "false"
    if k == "int64Value":
        return str(int(v))
    if k == "uint64Value":
        return str(int(v)) + "u"
    if k == "doubleValue" and v not in ("NaN", "Infinity", "-Infinity"):
        lit = repr(float(v))
        return lit if re.search(r'[.eE]', lit) else lit + ".0"
    if k == "stringValue":
        return lane_string(v)
    return None


def composite(k, v):
    """A list or map result as a lane literal of scalars, or None."""
    if k == "listValue":
        items = [scalar(x) for x in v.get("values", [])]
        return None if None in items else "[" + ", ".join(items) + "]"
    parts = []
    for e in v.get("entries", []):
        a, b = scalar(e["key"]), scalar(e["value"])
        if a is None or b is None:
            return None
        parts.append(a + ": " + b)
    return "{" + ", ".join(parts) + "}"


def main():
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    for f in data["suites"]:
        for s in f.get("suites", []):
            for t in s["tests"]:
                o = t["original"]
                name = "%s/%s/%s" % (f["name"], s["name"], o["name"])
                why = unsupported(o)
                kind, lit = expected(o)
                if why:
                    kind, lit = "skip:" + why, ""
                if o.get("disableCheck") and not kind.startswith("skip:"):
                    kind += ",unchecked"
                print("\t".join([name, kind, esc(lit), esc(o["expr"])]))


if __name__ == "__main__":
    main()

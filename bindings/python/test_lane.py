#!/usr/bin/env python3
"""test_lane.py -- the Python binding against the real libraries (TAP).

make test runs it under prove with BUILD (build dir), LANE (the lane
command) and SAN (sanitizer flags) set; plain `python3
bindings/python/test_lane.py` works after `make`. No pytest needed.
A sanitizer build's libraries need their runtime first in the process:
the script re-executes itself with it preloaded.
"""
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))
LANE = os.environ.get("LANE") or os.path.join(BUILD, "lane")
SAN = os.environ.get("SAN", "")


def preload_sanitizer():
    """Re-executes under LD_PRELOAD of the sanitizer runtime, if needed."""
    if not SAN or os.environ.get("LANE_PY_PRELOADED"):
        return
    rt = "libasan.so" if "address" in SAN else "libtsan.so" if "thread" in SAN else \
         "libubsan.so" if "undefined" in SAN else None
    if not rt:
        return
    cc = os.environ.get("CC", "cc")
    path = subprocess.run([cc, "-print-file-name=" + rt], capture_output=True,
                          text=True).stdout.strip()
    env = dict(os.environ, LANE_PY_PRELOADED="1", LD_PRELOAD=path,
               ASAN_OPTIONS="detect_leaks=0:" + os.environ.get("ASAN_OPTIONS", ""))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


preload_sanitizer()
os.environ["LANE_LIBDIR"] = BUILD
os.environ["LANE"] = LANE
sys.path.insert(0, HERE)
import lane  # noqa: E402

n = 0
failed = 0


def ok(cond, desc, got=None):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, desc))
    if not cond:
        failed += 1
        if got is not None:
            print("#   got: %r" % (got,))
    return cond


def is_(got, want, desc):
    ok(got == want, desc, None if got == want else (got, "expected", want))


def compiled(tmp, name, src):
    """src written to tmp/name.lane, compiled by the lane command, loaded."""
    path = os.path.join(tmp, name + ".lane")
    with open(path, "w") as f:
        f.write(src)
    subprocess.run([LANE, "compile", path, "-o", path + "c"], check=True)
    return lane.Program.load(path + "c")


tmp = tempfile.mkdtemp(prefix="lane-py-")
try:
    lanec = os.path.join(tmp, "support.lanec")
    subprocess.run([LANE, "compile", os.path.join(REPO, "examples/policies/support.lane"),
                    "-o", lanec], check=True)
    prog = lane.Program.load(lanec)
    ok("support" in prog.routes, "load a .lanec: routes %s" % prog.routes)
    is_(prog.fields["input_tokens"], "tokens", "field units")
    rt = lane.Runtime(prog)

    # decide, and agree with lane eval on the same request
    fields = {"tier": "free", "tenant": "t-1", "input_tokens": 1200, "max_output_tokens": 300}
    req = prog.request(**fields)
    d = rt.decide("support", req)
    rq = os.path.join(tmp, "req.json")
    with open(rq, "w") as f:
        json.dump(fields, f)
    ev = json.loads(subprocess.run([LANE, "eval", lanec, "--route", "support", rq],
                                   capture_output=True, text=True, check=True).stdout)
    is_(d.primary, ev["primary"], "decide: primary as lane eval (%s)" % d.primary)
    is_(d.fallbacks, ev["fallbacks"], "decide: fallbacks as lane eval")
    is_(d.cost, ev["cost"], "decide: cost bit-identical to lane eval")
    is_(d.rule_name, ev["rule_name"], "decide: rule name")
    is_(d.model["provider"], ev["provider"], "decide: provider")
    is_(req.cost(d.primary), d.cost, "Request.cost of the primary is the decision's cost")
    is_(req.fields(), fields, "Request.fields reads back what was set")

    # decision and outcome records, replayed by the lane command
    lrt = lane.Runtime(prog)   # its own: the live figures it logs are its own
    lrt.observe(prog.model(d.primary), 850.0)
    d = lrt.decide("support", req)
    rec = lrt.log_record(d, req, key=bytes(range(16)), id="py-1")
    out = lrt.outcome_record("py-1", d.primary, 812.0, 0.0031, input_tokens=1200,
                             output_tokens=280, score=0.9)
    r = json.loads(rec)
    is_((r["type"], r["id"], r["candidates"][0], r["rule"]), ("decision", "py-1", d.primary, d.rule),
        "log_record: the decision as liblane writes it")
    is_(json.loads(out)["score"], 0.9, "outcome_record: with a score")
    # a shadow's record of the same decision (another model, a low score):
    # written with "shadow": true and never joined by replay
    sh = lrt.outcome_record("py-1", d.primary, 900.0, 0.005, score=0.1, shadow=True)
    is_((json.loads(sh).get("shadow"), json.loads(sh).get("final")), (True, False),
        "outcome_record(shadow=True): \"shadow\": true, not final")
    logf = os.path.join(tmp, "py.log")
    with open(logf, "w") as f:
        f.write(rec + out + sh)
    p = subprocess.run([LANE, "replay", lanec, logf, "--format", "json"], capture_output=True,
                       text=True)
    rep = json.loads(p.stdout or "{}")
    m = [x for x in rep.get("models", []) if x["model"] == d.primary]
    ok(p.returncode == 0 and rep.get("not_reproduced") == 0 and rep.get("reproduced_checked") == 1
       and m and m[0].get("mean_score") == 0.9,
       "lane replay reproduces the Python host's record and joins its outcome", p.stderr)

    # setters
    try:
        req.set("input_tokens", "many")
        ok(False, "a string into a token field raises")
    except lane.LaneError as e:
        ok(e.status == "LANE_EARG", "a string into a token field raises LANE_EARG")
    try:
        req.set("no_such_field", 1)
        ok(False, "an unknown field raises")
    except lane.LaneError as e:
        ok("no_such_field" in e.message, "an unknown field raises: " + e.message)
    r2 = prog.request(latency_budget=900.0, spent_frac=0.5, stream=True)
    is_((r2.get("latency_budget"), r2.get("spent_frac"), r2.get("stream")), (900.0, 0.5, True),
        "durations, fractions and bools")

    # request bodies (liblane-json)
    with open(os.path.join(REPO, "tests/json/openai/09.json"), "rb") as f:
        body = f.read()
    r3 = prog.request_from_json(body, tier="pro", tenant="t-2")
    is_((r3.get("model"), r3.get("images"), r3.get("tools"), r3.get("input_tokens")),
        ("gpt-5-mini", 1, True, 1527), "request_from_json: OpenAI body with an image")
    d3 = rt.decide("support", r3)
    ok(d3.rule_name == "req.images > 0", "an image routes by rule %d %r" % (d3.rule, d3.rule_name))
    r4 = prog.request_from_json({"model": "claude-haiku-4-5", "max_tokens": 50,
                                 "system": "be brief", "metadata": {"user_id": "u-7"},
                                 "messages": [{"role": "user", "content": "hello"}]})
    is_((r4.get("user"), r4.get("max_output_tokens"), r4.get("input_tokens")),
        ("u-7", 50, 4 + 8 + 3), "request_from_json: an Anthropic dict")
    before = r4.fields()
    try:
        r4.from_json(b'{"messages": 5}')
        ok(False, "a malformed body raises")
    except lane.LaneError as e:
        is_((e.status, e.message), ("LANE_EJSON", "messages must be an array, found an integer"),
            "a malformed body raises LANE_EJSON with the reason")
    is_(r4.fields(), before, "... and leaves the request as it was")

    # live state: observe, stats, charge, budgets
    for _ in range(30):
        rt.observe(d.primary, 250.0, lane.CALL_OK)
    st = rt.stats(d.primary)
    ok(st["samples"] == 30 and 230 < st["p95"] < 270 and st["state"] == "closed",
       "observe: 30 samples, p95 about 250 ms (%.1f)" % st["p95"])
    for _ in range(5):
        rt.observe(d.fallbacks[0], 0, lane.CALL_SERVER_ERROR)
    is_(rt.stats(d.fallbacks[0])["state"], "open", "five failures open the breaker")
    rt.charge(req, 0.25)
    rt.charge(req, 0.5)
    is_(rt.spent("tenant_daily", "t-1"), 0.75, "charge: tenant t-1 spent $0.75")
    snap = rt.snapshot()
    ok(isinstance(snap, dict) and snap, "snapshot is JSON (%d keys)" % len(snap))
    d5 = rt.decide("support", req)
    ok(d.fallbacks[0] not in d5.candidates, "the open breaker's model is skipped now")

    # explanations: in-process from the VM's trace, the same as lane eval
    # --explain on the .lanec with the same live state; and the raw trace
    text = rt.explain("support", req)
    ok(re.search(r"^decision: rule \d+, %s" % re.escape(d5.primary), text, re.M),
       "explain (in-process): names the same primary")
    ok("rule 1" in text, "explain: lists the rules tried")
    ok("removed: `healthy` is false" in text,
       "explain: the open breaker's model is removed by `healthy`", text)
    with tempfile.TemporaryDirectory() as t2:
        rq, st = os.path.join(t2, "r.json"), os.path.join(t2, "s.json")
        with open(rq, "w") as f:
            json.dump(req.fields(), f)
        with open(st, "w") as f:
            f.write(rt.snapshot_text())
        p = subprocess.run([LANE, "eval", prog.path, "--route", "support", "--explain",
                            "--state", st, rq], capture_output=True, text=True)
    is_(p.stdout.split("\n", 1)[1] if "\n" in p.stdout else p.stdout, text,
        "explain in-process is lane eval --explain on the .lanec, word for word")
    d6, events = rt.trace("support", req)
    is_(d6.primary, d5.primary, "trace: the same decision")
    ok(events and events[0]["kind"] == "rule" and
       any(e["kind"] == "chosen" and e["model"] == d6.primary for e in events),
       "trace: %d events, the primary chosen" % len(events))
    ok(any(e["kind"] == "member" and e.get("check") == "healthy" for e in events),
       "trace: the open breaker's model is removed by check 'healthy' (lane_check_name)")

    # request fields take only values of their type, in range: nothing is
    # converted silently
    tprog = compiled(tmp, "types",
                "model a { input $1/Mtok output $1/Mtok }\n"
                "request { uid: uint  n: int  flag: bool  name: string  frac: fraction }\n"
                "route r { otherwise -> a }\n")

    def refused(name, value, why):
        try:
            tprog.request().set(name, value)
        except lane.LaneError as e:
            ok(why in str(e), "%s=%r refused: %s" % (name, value, e))
        else:
            ok(False, "%s=%r refused" % (name, value))
    refused("uid", 2**64 + 5, "out of range for a uint")
    refused("uid", -1, "out of range for a uint")
    refused("n", 2**63, "out of range for an int")
    refused("name", 5, "wants a str")
    refused("flag", "false", "wants True or False")
    refused("flag", 1, "wants True or False")
    refused("n", 1.5, "wants an int")
    refused("frac", "0.5", "wants a number")
    # map fields: a dict in, the same dict out; the policy reads it
    mprog = compiled(tmp, "maps",
                "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
                "request { metadata: map(string, string)  caps: map(string, double) }\n"
                "route r { when req.metadata.team == \"x\" && req.caps[\"usd\"] > 1.5 -> a\n"
                "  otherwise -> b }\n")
    mreq = mprog.request().set("metadata", {"team": "x", "é": "ü"}).set("caps", {"usd": 2})
    is_(mreq.get("metadata"), {"team": "x", "é": "ü"}, "a map field reads back as its dict")
    is_(mreq.get("caps"), {"usd": 2.0}, "an int is a double in a map(string, double)")
    is_(lane.Runtime(mprog).decide("r", mreq).primary, "a", "the policy reads the maps")
    try:
        mprog.request().set("metadata", {"team": 5})
    except lane.LaneError as e:
        ok("its values are str" in str(e), "a map value of another type is refused: %s" % e)
    else:
        ok(False, "a map value of another type is refused")
    # list fields: a list of str in, the same list out
    lprog = compiled(tmp, "list",
                "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
                "request { tags: list(string) }\n"
                "route r { when req.tags.exists(t, t == \"vip\") -> a  otherwise -> b }\n")
    lreq = lprog.request().set("tags", ["x", "vip"])
    is_(lreq.get("tags"), ["x", "vip"], "a list field reads back as its list")
    is_(lane.Runtime(lprog).decide("r", lreq).primary, "a", "the policy reads the list")
    # matches(): liblane-re's engine is installed when the module loads
    rprog = compiled(tmp, "re",
                "model a { input $1/Mtok output $1/Mtok }\nmodel b { input $1/Mtok output $1/Mtok }\n"
                "route r { when req.model.matches(\"^claude-\") -> a  otherwise -> b }\n")
    is_(lane.Runtime(rprog).decide("r", rprog.request(model="claude-4")).primary, "a",
        "a policy with matches() loads and decides")
    # output_estimate: a request without max_output_tokens counts the
    # route's estimate, and the decision says so
    eprog = compiled(tmp, "est",
                "model a { input $1/Mtok output $4/Mtok }\n"
                "route r { output_estimate 300  otherwise -> a }\n")
    ert = lane.Runtime(eprog)
    d1 = ert.decide("r", eprog.request(input_tokens=1000))
    d2 = ert.decide("r", eprog.request(input_tokens=1000, max_output_tokens=10))
    is_((d1.output_tokens, d1.output_from, round(d1.cost * 1e3, 9)), (300, "estimate", 2.2),
        "no max_output_tokens: the route's 300 counted ($1/Mtok x 1000 + $4/Mtok x 300)")
    is_((d2.output_tokens, d2.output_from, round(d2.cost * 1e3, 9)), (10, "request", 1.04),
        "max_output_tokens 10: the request's figure counted")
    tr = tprog.request(uid=2**64 - 1, n=-2**63, flag=False, name="x", frac=0.5)
    is_((tr.get("uid"), tr.get("n"), tr.get("flag"), tr.get("name"), tr.get("frac")),
        (2**64 - 1, -2**63, False, "x", 0.5), "values at the edges of each type are kept exactly")

    # a snapshot taken while other threads add state is whole JSON
    import threading
    srt = lane.Runtime(prog)
    stop = threading.Event()

    def grow():
        i = 0
        while not stop.is_set():
            srt.charge(prog.request(tenant="t-%d" % i, input_tokens=1), 0.001)
            i += 1
    th = threading.Thread(target=grow)
    th.start()
    good = 0
    try:
        for _ in range(200):
            json.loads(srt.snapshot_text())
            good += 1
    finally:
        stop.set()
        th.join()
    is_(good, 200, "200 snapshots while keys are added: every one is whole JSON")

    # hot swap: a view keeps its program; the runtime swaps; spend is kept
    srt = lane.Runtime(prog)
    is_(srt.generation, 1, "a new runtime serves generation 1")
    with srt.acquire() as v1:
        r1 = v1.prog.request(tenant="acme", input_tokens=1000)
        d1 = v1.decide("support", r1)
        v1.charge(r1, 0.25)
        prog2 = lane.Program.load(lanec)
        rep = srt.swap(prog2)
        ok(rep["budgets_kept"] >= 1 and rep["models_kept"] == len(prog.models) and
           prog2._p is None, "swap: budgets and models kept by meaning (%r)" % rep)
        is_(srt.generation, 2, "...generation 2")
        d1b = v1.decide("support", r1)
        is_(d1b.primary, d1.primary, "a view pinned before the swap still decides on its program")
        v1.charge(r1, 0.5)
    with srt.acquire() as v2:
        is_(v2.generation, 2, "a view acquired now pins the new program")
        is_(round(v2.spent("tenant_daily", "acme"), 9), 0.75,
            "charges through the old view and before the swap add up in the new program")
    try:
        srt.swap(prog2)
        ok(False, "an emptied Program cannot be swapped in again")
    except lane.LaneError as e:
        ok(e.status == "LANE_EARG", "an emptied Program cannot be swapped in again: " + e.message)

    # ABI and layout: every field of every struct lane.py mirrors sits at the
    # offset, with the size, that the C compiler gives it in lane.h.
    cnames = {"_Error": "lane_error", "_Request": "lane_request",
              "_Decision": "lane_decision", "_Event": "lane_event", "_Trace": "lane_trace",
              "_LiveStats": "lane_live_stats", "_Value": "lane_value",
              "_StateReport": "lane_state_report", "_Outcome": "lane_outcome"}
    want = {}
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "lane.h"',
             'int main(void) {']
    for py, c in cnames.items():
        t = getattr(lane, py)
        want["%s size" % c] = ctypes.sizeof(t)
        lines.append('  printf("%s size %%zu\\n", sizeof(%s));' % (c, c))
        for fname, _ in t._fields_:
            f = getattr(t, fname)
            want["%s.%s" % (c, fname)] = (f.offset, f.size)
            lines.append('  printf("%s.%s %%zu %%zu\\n", offsetof(%s, %s), sizeof(((%s *)0)->%s));'
                         % (c, fname, c, fname, c, fname))
    lines.append("  return 0;\n}")
    src = os.path.join(tmp, "layout.c")
    with open(src, "w") as f:
        f.write("\n".join(lines))
    exe = os.path.join(tmp, "layout")
    p = subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-I", os.path.join(REPO, "vm"),
                        "-o", exe, src], capture_output=True, text=True)
    if ok(p.returncode == 0, "the layout probe builds against vm/lane.h", p.stderr):
        got = {}
        for line in subprocess.run([exe], capture_output=True, text=True).stdout.splitlines():
            k, *v = line.split()
            if v[0] == "size":
                got["%s size" % k] = int(v[1])
            else:
                got[k] = (int(v[0]), int(v[1]))
        bad = [(k, want[k], got.get(k)) for k in want if got.get(k) != want[k]]
        ok(not bad and len(got) == len(want),
           "%d fields and sizes of lane.py's structs match lane.h" % len(want), bad)
    is_(lane._lib.lane_abi_version(), lane.ABI_VERSION, "lane.py and liblane have one ABI")
    is_(lane.__liblane_version__, re.search(r'LANE_VERSION_STRING\s+"([^"]+)"',
        open(os.path.join(REPO, "vm/lane.h")).read()).group(1), "lane_version() is lane.h's")
    err = lane._Error()
    sizes = (ctypes.c_size_t * 2)(ctypes.sizeof(lane._Error), ctypes.sizeof(lane._Request) + 8)
    st = lane._lib.lane_abi_check(lane.ABI_VERSION, sizes, 2, ctypes.byref(err))
    ok(st != 0 and b"lane_request" in err.message,
       "a struct of another size is refused, by name: %s" % err.message.decode())
    st = lane._lib.lane_abi_check(lane.ABI_VERSION + 1, sizes, 0, ctypes.byref(err))
    ok(st != 0 and b"ABI" in err.message, "another ABI is refused: %s" % err.message.decode())

    # the README's snippet runs as written (beside a support.lanec)
    with open(os.path.join(HERE, "README.md")) as f:
        m = re.search(r"```python\n(.*?)```", f.read(), re.S)
    if ok(m, "README.md has a python snippet"):
        shutil.copy(os.path.join(REPO, "tests/json/anthropic/05.json"),
                    os.path.join(tmp, "body.json"))
        p = subprocess.run([sys.executable, "-c", m.group(1)], cwd=tmp, capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=HERE))
        ok(p.returncode == 0 and "expected $" in p.stdout,
           "the README snippet runs: %s" % p.stdout.strip().replace("\n", " | "))
        if p.returncode:
            print("# " + p.stderr.replace("\n", "\n# "))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("1..%d" % n)
sys.exit(1 if failed else 0)

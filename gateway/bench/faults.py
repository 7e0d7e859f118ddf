#!/usr/bin/env python3
"""faults.py -- the gateway's fault suite (`make bench-gateway`, after the
speed rows): for each fault case one client request, and the upstream
calls it caused, per model, against the count the gateway's documented
behaviour designs (gateway/README.md, "What it does on errors").

    python3 gateway/bench/faults.py --build BUILD [--lane LANE] [--out DIR] [--tap]

Starts fake_provider.py (faults injected by words of the message:
fault:MODEL=KIND) and two lane-gateways serving faults.lane (first, then
second, then third, all on the fake), deadline 3 s and no
attempt_timeout_ms (each attempt gets its share of the time left): one
without retries, one with retry {attempts 2, backoff 50 ms}. Each case
sends one request with its own tag and counts the fake's log entries with
that tag, per model.

Prints a table (case, status, hits per model, designed, ok/MISMATCH) and
writes OUT/faults.json (OUT: BUILD/bench). A mismatch is printed loudly
but does not fail the run: this is a report. It exits non-zero only when
a gateway cannot start or crashes.

--tap: a test instead (gateway/t_faults.sh, in `make test`): the cases
t_gateway.py does not already check (those with no `tested_by`), each an
`ok`/`not ok` line, the designed counts asserted.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GATEWAY_DIR = os.path.dirname(HERE)
sys.path.insert(0, GATEWAY_DIR)
from t_gateway import Gateway, first_line, stream_text   # noqa: E402  the same client

MODELS = ("first", "second", "third")   # faults.lane's chain; ids "first-1", ...
DEADLINE_MS = 3000
RETRY = {"attempts": 2, "backoff_ms": 50, "max_backoff_ms": 200, "max_retry_after_ms": 5000}


class Case:
    """One fault case. faults: a kind per model of the chain (None: it
    answers); status: what the client must get; served: the model that
    must answer (None: nobody); hits: designed upstream calls per model;
    secs: (lo, hi) bounds of the request's time, or None; tested_by: where
    t_gateway.py already checks the same thing (None: only here)."""

    def __init__(self, name, gw, faults, status, served, hits, stream=False, cut=False,
                 secs=None, why="", tested_by=None):
        self.name, self.gw, self.faults, self.stream, self.cut = name, gw, faults, stream, cut
        self.status, self.served, self.hits, self.secs = status, served, hits, secs
        self.why, self.tested_by = why, tested_by


def hits(*n):
    return dict(zip(MODELS, n))


SHARE = DEADLINE_MS / 1000.0 / 3      # a hanging first's share: the time left over 3 candidates
CASES = [
    # ---- no retries ----
    Case("500 on first", "plain", ["500"], 200, "second", hits(1, 1),
         why="http_5xx: next candidate", tested_by="run: fault 500"),
    Case("429 on first", "plain", ["429"], 200, "second", hits(1, 1),
         why="http_429, no retry configured: next candidate", tested_by="run: fault 429"),
    Case("hang on first", "plain", ["hang"], 200, "second", hits(1, 1),
         secs=(SHARE * 0.9, SHARE + 1.0),
         why="timeout after its share of the deadline (3 s / 3 candidates)",
         tested_by="attempt_shares"),
    Case("drop on first", "plain", ["drop"], 200, "second", hits(1, 1),
         why="connection closed without an answer: next candidate", tested_by="run: fault drop"),
    Case("malformed JSON 200 on first", "plain", ["malformed"], 200, "second", hits(1, 1),
         why="2xx that is not JSON: malformed, next candidate", tested_by="run: fault malformed"),
    Case("non-chat 200 on first", "plain", ["notchat"], 200, "second", hits(1, 1),
         why='{"hello": "world"}: malformed, next candidate', tested_by="run: fault notchat"),
    Case("400 from first", "plain", ["400"], 400, "first", hits(1, 0),
         why="client_error: passed to the client, no fallback", tested_by="run: a provider's 400"),
    Case("every candidate 500", "plain", ["500", "500", "500"], 502, None, hits(1, 1, 1),
         why="502 lane_no_candidate, x-should-retry: false; chain 3 x (1 + 0 retries)",
         tested_by="run: nobody can serve (muse refused there)"),
    Case("stream: cut0 on first (before a byte)", "plain", ["cut0"], 200, "second", hits(1, 1),
         stream=True, why="not committed before the first byte: next candidate",
         tested_by="run: stream, cut0 before the first byte"),
    Case("stream: 500 on first", "plain", ["500"], 200, "second", hits(1, 1), stream=True,
         why="not committed before the first byte: next candidate",
         tested_by="run: stream, 500 before the first byte"),
    Case("stream: cut on first (after a byte)", "plain", ["cut"], 200, "first", hits(1, 0),
         stream=True, cut=True, why="committed: the client's stream breaks, no fallback",
         tested_by="run: stream cut after its first byte"),
    # ---- retry {attempts 2, backoff 50 ms} ----
    Case("500x2 on first, then its answer", "retry", ["500x2"], 200, "first", hits(3, 0),
         why="retried twice (attempts 2), the third call answers"),
    Case("429 retry-after-ms 300 on first", "retry", ["429x1ra300"], 200, "first", hits(2, 0),
         secs=(0.3, 2.0), why="retried after the provider's retry-after-ms",
         tested_by="retries: 429 with retry-after-ms 300"),
    Case("429 retry-after-ms 9000 on first", "retry", ["429x1ra9000"], 200, "second",
         hits(1, 1), secs=(0, 1.0), why="past max_retry_after_ms (5 s): next candidate at once",
         tested_by="retries: retry-after past max_retry_after_ms"),
    Case("500 on first, always", "retry", ["500"], 200, "second", hits(3, 1),
         why="1 + 2 retries, then next candidate", tested_by="retries: keeps failing"),
    Case("every candidate 500, retries", "retry", ["500", "500", "500"], 502, None,
         hits(3, 3, 3), why="502, x-should-retry: false; chain 3 x (1 + 2 retries) = 9 calls"),
    Case("400 from first, retries", "retry", ["400"], 400, "first", hits(1, 0),
         why="a 4xx is never retried", tested_by="retries: a 400 is not retried"),
    Case("hang on first, retries", "retry", ["hang"], 200, "second", hits(1, 1),
         secs=(SHARE * 0.9, SHARE + 1.0), why="a timeout is not retried: next candidate",
         tested_by="attempt_shares (that gateway has retries)"),
    Case("drop on first, retries", "retry", ["drop"], 200, "second", hits(1, 1),
         why="a connection failure is not retried: next candidate"),
    Case("malformed JSON 200 on first, retries", "retry", ["malformed"], 200, "second",
         hits(1, 1), why="200 is not in retry.on: next candidate, no retry"),
    Case("stream: 503x1 on first, retries", "retry", ["503x1"], 200, "first", hits(2, 0),
         stream=True, why="before the first byte a stream is retried like a whole answer"),
]


def start_gateway(gw_bin, cfgfile, errlog):
    with open(errlog, "w") as err:
        p = subprocess.Popen([gw_bin, "-c", cfgfile, "--exit-after", "600"],
                             stdout=subprocess.PIPE, stderr=err, text=True)
    m = re.search(r"127\.0\.0\.1:(\d+)", first_line(p))
    return p, int(m.group(1)) if m else None


def fake_log(port):
    return Gateway(port).request("GET", "/_log").json or []


def run_case(c, gw, fake_port, seq):
    """Sends the case's request; returns what happened, judged."""
    tag = "f%03d" % seq
    words = [tag, "please", "help"] + ["fault:%s-1=%s" % (m, k)
                                       for m, k in zip(MODELS, c.faults) if k]
    body = {"model": "gpt-4o", "max_tokens": 50, "stream": c.stream,
            "messages": [{"role": "user", "content": " ".join(words)}]}
    r = gw.request("POST", "/v1/chat/completions", body, stream=c.stream, timeout=20)
    calls = [e for e in fake_log(fake_port) if e.get("tag") == tag]
    got = {m: 0 for m in MODELS}
    for e in calls:
        got[(e.get("model") or "?").rsplit("-", 1)[0]] = got.get(
            (e.get("model") or "?").rsplit("-", 1)[0], 0) + 1
    # A call closed without an answer on a kept connection is sent once
    # more by libcurl on a new one (gateway/README.md): one attempt, two
    # hits. Counted apart, so the designed count stays the gateway's.
    drops = [e for e in calls if e.get("outcome") == "drop"]
    resent = 1 if len(drops) == 2 and drops[0]["conn"] != drops[1]["conn"] else 0
    model = (r.h("x-lane-model") or "") or None
    text = stream_text(r, "openai") if c.stream and r.events else ""
    problems = []
    if r.error:
        problems.append("client: %s" % r.error)
    if r.status != c.status:
        problems.append("status %s, designed %d" % (r.status, c.status))
    if c.served and model != c.served:
        problems.append("served by %s, designed %s" % (model, c.served))
    if c.stream and c.status == 200:
        if r.cut != c.cut:
            problems.append("stream %s, designed %s" % ("cut" if r.cut else "whole",
                                                        "cut" if c.cut else "whole"))
        if not c.cut and not text.endswith(tag):
            problems.append("stream text %r" % text[-60:])
    if c.status == 400 and b"injected 400" not in r.raw:
        problems.append("the provider's 400 not passed on: %r" % r.raw[:120])
    if c.status == 502 and r.h("x-should-retry") != "false":
        problems.append("x-should-retry: %s" % r.h("x-should-retry"))
    counted = dict(got, first=got["first"] - resent)
    if any(counted.get(m, 0) != c.hits.get(m, 0) for m in set(counted) | set(c.hits)):
        problems.append("hits %s, designed %s" % (fmt_hits(counted), fmt_hits(c.hits)))
    if c.secs and not c.secs[0] <= r.t_total <= c.secs[1]:
        problems.append("%.2f s, designed %.2f..%.2f s" % (r.t_total, c.secs[0], c.secs[1]))
    return {"case": c.name, "gateway": c.gw, "stream": c.stream, "tag": tag,
            "faults": dict(zip(MODELS, c.faults)), "status": r.status, "served_by": model,
            "cut": r.cut if c.stream else None, "attempts": r.h("x-lane-attempts"),
            "x_should_retry": r.h("x-should-retry"), "seconds": round(r.t_total, 3),
            "hits": got, "libcurl_resent": resent,
            "designed": {"status": c.status, "served_by": c.served, "hits": c.hits,
                         "seconds": c.secs, "cut": c.cut if c.stream else None},
            "why": c.why, "tested_by": c.tested_by, "ok": not problems, "problems": problems}


def fmt_hits(h):
    return "/".join(str(h.get(m, 0)) for m in MODELS) + \
        "".join(" %s=%d" % (k, v) for k, v in h.items() if k not in MODELS and v)


def status_of(res):
    s = str(res["status"] or "-")
    if res["stream"] and res["status"] == 200:
        s += " cut" if res["cut"] else " sse"
    return s


def designed_status(c):
    return "%d%s" % (c.status, (" cut" if c.cut else " sse") if c.stream and c.status == 200
                     else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--lane", help="the lane command (default BUILD/lane)")
    ap.add_argument("--out", help="where configs, logs and faults.json go (default BUILD/bench)")
    ap.add_argument("--tap", action="store_true",
                    help="a TAP test of the cases t_gateway.py does not check")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    lane = a.lane or os.path.join(build, "lane")
    out = os.path.abspath(a.out or os.path.join(build, "bench"))
    work = os.path.join(out, "faults")
    os.makedirs(work, exist_ok=True)
    for k in list(os.environ):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del os.environ[k]
    cases = [c for c in CASES if not (a.tap and c.tested_by)]
    n = [0]

    def tap(cond, name, diag=None):
        n[0] += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", n[0], name), flush=True)
        for line in ([] if cond or diag is None else str(diag).splitlines()[:20]):
            print("#   " + line)
        return cond

    def fatal(why):
        if a.tap:
            tap(False, why)
            print("1..%d" % n[0])
        else:
            print("faults: %s" % why, file=sys.stderr)
        return 1

    policy = os.path.join(work, "faults.lanec")
    p = subprocess.run([lane, "compile", os.path.join(HERE, "faults.lane"), "-o", policy],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return fatal("lane compile gateway/bench/faults.lane: %s" % p.stderr.strip())
    fake = subprocess.Popen([sys.executable, os.path.join(GATEWAY_DIR, "fake_provider.py"),
                             "--lifetime", "600"], stdout=subprocess.PIPE,
                            stderr=open(os.path.join(work, "fake.err"), "w"), text=True)
    gws = {}
    results, crashed = [], None
    try:
        fport = first_line(fake)
        if not fport.isdigit():
            return fatal("fake_provider.py did not start")
        base = {"listen": "127.0.0.1:0", "policy": policy, "route": "faults",
                "deadline_ms": DEADLINE_MS, "connect_timeout_ms": 1000, "stream_idle_ms": 3000,
                "shadow": {"concurrency": 0},
                "providers": {"openai": {"base_url": "http://127.0.0.1:%s/openai/v1" % fport,
                                         "format": "openai"}}}
        for name, cfg in (("plain", base), ("retry", dict(base, retry=RETRY))):
            if not any(c.gw == name for c in cases):
                continue
            cfgfile = os.path.join(work, "gw_%s.json" % name)
            with open(cfgfile, "w") as f:
                json.dump(cfg, f, indent=2)
            proc, port = start_gateway(os.path.join(build, "lane-gateway"), cfgfile,
                                       os.path.join(work, "gw_%s.err" % name))
            gws[name] = (proc, port)
            if port is None:
                return fatal("lane-gateway (%s) did not start: see %s" % (
                    name, os.path.join(work, "gw_%s.err" % name)))
        if not a.tap:
            print("fault suite: lane-gateway serving gateway/bench/faults.lane (first, then second,"
                  " then third) against fake_provider.py, one request per case")
            print("gateways: deadline %d ms, no attempt_timeout_ms (a share of the time left "
                  "each); 'plain': no retries; 'retry': %s\n" % (DEADLINE_MS, json.dumps(RETRY)))
            head = "%-40s %-5s %-7s %-7s %-17s %-11s %6s  %s" % (
                "case", "gw", "status", "by", "hits f/s/t", "designed", "secs", "")
            print(head)
            print("-" * (len(head) + 8))
        for i, c in enumerate(cases, 1):
            proc, port = gws[c.gw]
            res = run_case(c, Gateway(port), int(fport), i)
            results.append(res)
            if proc.poll() is not None:
                crashed = "lane-gateway (%s) exited with %s during '%s'" % (
                    c.gw, proc.returncode, c.name)
                res["ok"] = False
                res["problems"].append(crashed)
            if a.tap:
                tap(res["ok"], "%s (%s gateway): %s; hits %s" % (
                    c.name, c.gw, c.why, fmt_hits(c.hits)), "\n".join(res["problems"]) +
                    "\nattempts: %s" % res["attempts"])
            else:
                hits_got = fmt_hits(res["hits"]) + (" (%d resent)" % res["libcurl_resent"]
                                                     if res["libcurl_resent"] else "")
                print("%-40s %-5s %-7s %-7s %-17s %-11s %6.2f  %s" % (
                    c.name, c.gw, status_of(res), res["served_by"] or "-", hits_got,
                    "%s %s" % (designed_status(c).split()[0], fmt_hits(c.hits)),
                    res["seconds"], "ok" if res["ok"] else "MISMATCH"), flush=True)
                for pr in res["problems"]:
                    print("    !!! MISMATCH: %s" % pr, flush=True)
            if crashed:
                break
    finally:
        stopped = {}
        for name, (proc, _) in gws.items():
            if proc.poll() is None:
                proc.terminate()
                try:
                    stopped[name] = proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    stopped[name] = proc.wait(5)
            else:
                stopped[name] = proc.returncode
        fake.terminate()
        fake.wait(10)
    bad = [r for r in results if not r["ok"]]
    if a.tap:
        for name, rc in stopped.items():
            tap(rc == 0, "lane-gateway (%s) stops cleanly on SIGTERM (exit %s)" % (name, rc))
            with open(os.path.join(work, "gw_%s.err" % name)) as f:
                log = f.read()
            tap("Sanitizer" not in log, "lane-gateway (%s): no sanitizer report" % name, log[-3000:])
        print("1..%d" % n[0])
        return 1 if crashed else 0
    with open(os.path.join(out, "faults.json"), "w") as f:
        json.dump({"deadline_ms": DEADLINE_MS, "retry": RETRY, "policy": "gateway/bench/faults.lane",
                   "cases": results, "mismatches": len(bad), "crashed": crashed}, f, indent=2)
    print("\n%d cases, %s; hits f/s/t: upstream calls to first/second/third for the one request"
          % (len(results), "all as designed" if not bad else
             "!!! %d MISMATCH%s !!!" % (len(bad), "ES" if len(bad) > 1 else "")))
    print("results: %s" % os.path.join(out, "faults.json"))
    if crashed:
        print("!!! %s" % crashed, file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

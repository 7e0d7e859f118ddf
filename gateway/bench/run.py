#!/usr/bin/env python3
"""run.py -- `make bench-gateway`: lane-gateway against a direct call, on
loopback, in one run.

    python3 gateway/bench/run.py --build BUILD [--seconds S] [--conns 1,16,64]

Starts the C fake provider (upstream.c) and lane-gateway serving
examples/policies/support.lane with every provider pointed at the fake;
then, for each connection count, times the same chat body sent by the C
load generator (loadgen.c) straight to the fake and through the gateway
(whole answers, then streams), and reads what the gateway spent: CPU (its
/proc/PID/stat ticks over the run), RSS, new upstream connections (the
fake's count), and its own time per request (its lane_gateway_overhead_seconds
histogram). Prints a table, writes BUILD/bench/gateway.json and, with
gnuplot, gateway.png. Nothing is asserted: the targets of issue 19 are
printed as met or missed.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICK = os.sysconf("SC_CLK_TCK")


def first_line(p, limit=10.0):
    t0 = time.monotonic()
    line = p.stdout.readline().decode().strip()
    if not line and time.monotonic() - t0 >= limit:
        raise RuntimeError("no first line")
    return line


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"VmRSS:\s+(\d+)", f.read())
    return int(m.group(1)) if m else 0


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.read().decode()


def overhead(gw_port):
    """The gateway's histogram: (count, {le_us: cumulative})."""
    text = get(gw_port, "/metrics")
    buckets, count = {}, 0
    for line in text.splitlines():
        m = re.match(r'lane_gateway_overhead_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1)) * 1e6
            buckets[le] = int(m.group(2))
        m = re.match(r"lane_gateway_overhead_seconds_count (\d+)", line)
        if m:
            count = int(m.group(1))
    return count, buckets


def quantile(before, after, q):
    """The bucket bound holding quantile q of the requests between two
    readings of the histogram, linearly placed inside its bucket."""
    n = after[0] - before[0]
    if n <= 0:
        return None
    want, lo, prev = q * n, 0.0, 0
    for le in sorted(after[1]):
        cum = after[1][le] - before[1].get(le, 0)
        if cum >= want:
            if le == float("inf"):
                return lo
            inside = cum - prev
            return lo + (le - lo) * ((want - prev) / inside if inside else 1.0)
        lo, prev = le, cum
    return None


def loadgen(build, port, conns, seconds, body, headers=(), warmup=1):
    cmd = [os.path.join(build, "bench", "lane-bench-loadgen"), "--port", str(port), "--conns",
           str(conns), "--seconds", str(seconds), "--warmup", str(warmup), "--body", body]
    for h in headers:
        cmd += ["--header", h]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": p.stderr.strip() or p.stdout.strip(), "rps": 0, "p50_us": 0, "p99_us": 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", default="1,16,64")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    out = os.path.join(build, "bench")
    os.makedirs(out, exist_ok=True)
    lane = os.path.join(build, "lane")
    policy = os.path.join(out, "gw_support.lanec")
    subprocess.run([lane, "compile", os.path.join(ROOT, "examples/policies/support.lane"), "-o",
                    policy], check=True)
    body = os.path.join(HERE, "chat.json")
    with open(body) as f:
        stream_body_obj = json.load(f)
    stream_body_obj["stream"] = True
    stream_body = os.path.join(out, "gw_chat_stream.json")
    with open(stream_body, "w") as f:
        json.dump(stream_body_obj, f)

    up = subprocess.Popen([os.path.join(out, "lane-bench-upstream")], stdout=subprocess.PIPE)
    # the same fake answering after 20 ms, as a provider's fastest answers
    # do: throughput is then bounded by connections, not by CPU
    slow = subprocess.Popen([os.path.join(out, "lane-bench-upstream"), "--delay-us", "20000"],
                            stdout=subprocess.PIPE)
    gw = gw_slow = None
    try:
        up_port = int(first_line(up))
        slow_port = int(first_line(slow))
        def start_gateway(name, port):
            base = "http://127.0.0.1:%d/v1" % port
            cfg = {"listen": "127.0.0.1:0", "policy": policy, "route": "support",
                   "defaults": {"tier": "free"},
                   "providers": {p: {"base_url": base, "format": "openai"}
                                 for p in ("openai", "anthropic", "gemini", "inhouse")}}
            cfgfile = os.path.join(out, name + ".json")
            with open(cfgfile, "w") as f:
                json.dump(cfg, f)
            g = subprocess.Popen([os.path.join(build, "lane-gateway"), "-c", cfgfile],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            return g, int(re.search(r":(\d+) ", first_line(g)).group(1))
        gw, gw_port = start_gateway("gw_bench", up_port)
        gw_slow, gw_slow_port = start_gateway("gw_bench_20ms", slow_port)
        print("lane-gateway bench: loopback, fake provider in C (upstream.c), load from loadgen.c,"
              " %d s per run after 1 s of warm-up" % a.seconds)
        print("machine load before: %s" % open("/proc/loadavg").read().strip())
        print("body: gateway/bench/chat.json (%d bytes), tier free -> openai.gpt_5_nano\n"
              % os.path.getsize(body))
        rows = []
        head = ("%-7s %5s %10s %10s %9s %9s %9s %7s %9s %8s %8s" %
                ("mode", "conns", "direct/s", "lane/s", "lane/dir", "p50 add", "p99 add",
                 "own p50", "cpu/req", "conn/req", "RSS MB"))
        print(head)
        print("-" * len(head))
        plan = [("whole", body, c, up_port, gw, gw_port) for c in map(int, a.conns.split(","))]
        plan += [("stream", stream_body, c, up_port, gw, gw_port)
                 for c in map(int, a.conns.split(","))]
        plan += [("whole20", body, c, slow_port, gw_slow, gw_slow_port) for c in (16, 64)]
        for mode, b, conns, uport, g, gport in plan:
            direct = loadgen(build, uport, conns, a.seconds, b)
            loadgen(build, gport, conns, 1, b, warmup=0)   # warm: connections opened, then kept
            s0 = json.loads(get(uport, "/_stats"))
            h0 = overhead(gport)
            c0 = cpu_ticks(g.pid)
            via = loadgen(build, gport, conns, a.seconds, b, warmup=0)
            c1 = cpu_ticks(g.pid)
            h1 = overhead(gport)
            s1 = json.loads(get(uport, "/_stats"))
            reqs = max(s1["requests"] - s0["requests"], 1)
            row = {
                "mode": mode, "conns": conns, "direct": direct, "lane": via,
                "throughput_ratio": via["rps"] / direct["rps"] if direct.get("rps") else 0,
                "added_p50_us": via["p50_us"] - direct["p50_us"],
                "added_p99_us": via["p99_us"] - direct["p99_us"],
                "own_p50_us": quantile(h0, h1, 0.5) if mode != "stream" else None,
                "own_p99_us": quantile(h0, h1, 0.99) if mode != "stream" else None,
                "cpu_us_per_request": (c1 - c0) / TICK * 1e6 / reqs,
                "new_upstream_connections_per_request":
                    (s1["connections"] - s0["connections"]) / reqs,
                "rss_mb": rss_kb(g.pid) / 1024.0,
            }
            rows.append(row)
            own = row["own_p50_us"]
            print("%-7s %5d %10.0f %10.0f %8.2fx %7.0fus %7.0fus %7s %7.0fus %8.4f %8.1f%s" % (
                mode, conns, direct["rps"], via["rps"], row["throughput_ratio"],
                row["added_p50_us"], row["added_p99_us"],
                "%.1fus" % own if own is not None else "-", row["cpu_us_per_request"],
                row["new_upstream_connections_per_request"], row["rss_mb"],
                "  errors: %s" % via.get("error") if via.get("error") or via.get("errors")
                else ""))
        res = {"seconds": a.seconds, "body_bytes": os.path.getsize(body), "rows": rows}
        with open(os.path.join(out, "gateway.json"), "w") as f:
            json.dump(res, f, indent=2)
        print("\nresults: %s" % os.path.join(out, "gateway.json"))
        targets(rows)
        plot(out, rows)
        print("(whole20: the fake answers after 20 ms, as a provider's fastest answers do)")
    finally:
        for p in (gw, gw_slow, up, slow):
            if p:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def targets(rows):
    def row(mode, conns):
        return next((r for r in rows if r["mode"] == mode and r["conns"] == conns), None)
    print("\ntargets (issue 19; measured, not asserted):")
    r1, r16 = row("whole", 1), row("whole", 16)
    if r1:
        v = r1["added_p50_us"]
        print("  added p50 <= 50 us at 1 connection:        %6.0f us  %s" % (v, "met" if v <= 50 else "MISSED"))
        o = r1["own_p50_us"]
        if o is not None:
            print("  gateway's own time p50 <= 10 us:           %6.1f us  %s" % (o, "met" if o <= 10 else "MISSED"))
    if r16:
        v = r16["throughput_ratio"]
        print("  16 connections: >= 50%% of direct req/s:    %6.0f%%    %s" % (v * 100, "met" if v >= 0.5 else "MISSED"))
    s16 = row("whole20", 16)
    if s16:
        v = s16["throughput_ratio"]
        print("    (a provider answering in 20 ms:           %6.0f%%    %s)" % (v * 100, "met" if v >= 0.5 else "MISSED"))
    worst = max(r["new_upstream_connections_per_request"] for r in rows)
    print("  0 new upstream connections per request:    %6.4f     %s" % (worst, "met" if worst < 0.001 else "MISSED"))


def plot(out, rows):
    if not shutil.which("gnuplot"):
        print("plot: skipped (no gnuplot)")
        return
    dat = os.path.join(out, "gateway.dat")
    with open(dat, "w") as f:
        for r in rows:
            if r["mode"] == "whole":
                f.write("%d %.1f %.1f %.1f %.1f\n" % (r["conns"], r["direct"]["p50_us"],
                                                      r["lane"]["p50_us"], r["direct"]["rps"],
                                                      r["lane"]["rps"]))
    png = os.path.join(out, "gateway.png")
    script = """
set terminal pngcairo size 900,420 noenhanced
set output '%s'
set multiplot layout 1,2 title 'lane-gateway on loopback (whole answers)'
set logscale x 2
set xlabel 'connections'
set ylabel 'p50 latency (us)'
plot '%s' using 1:2 with linespoints title 'direct', '' using 1:3 with linespoints title 'through lane'
set ylabel 'requests/s'
plot '%s' using 1:4 with linespoints title 'direct', '' using 1:5 with linespoints title 'through lane'
unset multiplot
""" % (png, dat, dat)
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    print("plot: %s" % png if p.returncode == 0 else "plot: gnuplot failed: %s" % p.stderr[:200])


if __name__ == "__main__":
    sys.exit(main())

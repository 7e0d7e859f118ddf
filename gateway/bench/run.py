#!/usr/bin/env python3
"""run.py -- `make bench-gateway`: lane-gateway against a direct call, on
loopback, in one run.

    python3 gateway/bench/run.py --build BUILD [--seconds S] [--conns 1,16,64] [--no-portkey]

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

When node and npm are there, Portkey's gateway (@portkey-ai/gateway,
pinned by gateway/bench/portkey/) is installed once into BUILD/bench/portkey
and timed as a peer on the same whole and stream rows, in front of the
same fake (x-portkey-provider: openai, x-portkey-custom-host). Without
node or npm, or when the install or its start fails, one line says why
and the rest runs; --no-portkey leaves it out.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
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


def portkey_install(out):
    """Portkey's gateway from the npm registry, installed into OUT/portkey
    once (again only when gateway/bench/portkey/ changes): ((node, its
    start-server.js, its version), None), or (None, why not)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "no %s on PATH" % ("node" if not node else "npm")
    src, dest = os.path.join(HERE, "portkey"), os.path.join(out, "portkey")
    pkg = os.path.join(dest, "node_modules", "@portkey-ai", "gateway")
    script = os.path.join(pkg, "build", "start-server.js")
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        with open(os.path.join(src, name), "rb") as f:
            h.update(f.read())
    stamp = os.path.join(dest, "installed-from")
    try:
        with open(stamp) as f:
            done = f.read().strip() == h.hexdigest() and os.path.exists(script)
    except OSError:
        done = False
    if not done:
        os.makedirs(dest, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(src, name), dest)
        print("portkey: npm install --prefix %s (once)" % dest, flush=True)
        try:
            p = subprocess.run([npm, "install", "--prefix", dest, "--no-audit", "--no-fund",
                                "--loglevel=error"], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, "npm install failed: %s" % e
        if p.returncode != 0 or not os.path.exists(script):
            lines = [l for l in (p.stderr + p.stdout).splitlines()
                     if l.strip() and "complete log" not in l]
            return None, "npm install failed: %s" % ("; ".join(lines[:2]) or
                                                      "exit %d" % p.returncode)
        with open(stamp, "w") as f:
            f.write(h.hexdigest() + "\n")
    with open(os.path.join(pkg, "package.json")) as f:
        version = json.load(f).get("version", "?")
    return (node, script, version), None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portkey_start(node, script, out, headers, bodies):
    """Starts Portkey's gateway (its CLI: --port=N, --headless) and checks
    it answers each body through it with a 200: (process, port), or
    (None, why not)."""
    port = free_port()
    with open(os.path.join(out, "portkey.log"), "w") as log:
        p = subprocess.Popen([node, script, "--port=%d" % port, "--headless"],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    t_end, up = time.monotonic() + 20, False
    while not up and time.monotonic() < t_end and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            up = True
        except OSError:
            time.sleep(0.1)
    why = None
    if not up:
        why = ("it exited (%s) at start" % p.returncode if p.poll() is not None else
               "it did not listen on port %d within 20 s" % port) + \
            ": see %s" % os.path.join(out, "portkey.log")
    for body in bodies if not why else ():
        with open(body, "rb") as f:
            req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port,
                                         data=f.read(), method="POST",
                                         headers=dict(h.split(": ", 1) for h in headers))
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
        except (OSError, ValueError) as e:
            detail = e.read()[:200].decode(errors="replace") if hasattr(e, "read") else ""
            why = "a request through it failed (%s): %s %s" % (os.path.basename(body), e, detail)
            break
    if why:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        return None, why
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--no-portkey", action="store_true",
                    help="leave out the Portkey peer row")
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
    # the floor: a byte relay in C (relay.c) in front of the same fake,
    # what any proxy adds on this machine (two more loopback hops)
    relay = None
    gw = gw_slow = pk = None
    pk_info = {"skipped": "--no-portkey"}
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
        relay = subprocess.Popen([os.path.join(out, "lane-bench-relay"), "--to", str(up_port)],
                                 stdout=subprocess.PIPE)
        relay_port = int(first_line(relay))
        gw, gw_port = start_gateway("gw_bench", up_port)
        gw_slow, gw_slow_port = start_gateway("gw_bench_20ms", slow_port)
        pk_headers = ["x-portkey-provider: openai",
                      "x-portkey-custom-host: http://127.0.0.1:%d/v1" % up_port,
                      "Authorization: Bearer sk-bench"]
        if not a.no_portkey:
            got, why = portkey_install(out)
            if got:
                node, script, version = got
                pk, pk_port = portkey_start(node, script, out, pk_headers, (body, stream_body))
                if pk is None:
                    why = pk_port
                else:
                    pk_info = {"version": version, "skipped": None, "headers": pk_headers,
                               "node": subprocess.run([node, "--version"], capture_output=True,
                                                      text=True).stdout.strip()}
            if why:
                pk_info = {"skipped": why}
        if pk_info["skipped"]:
            print("portkey: the Portkey row is skipped: %s" % pk_info["skipped"])
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
            if mode in ("whole", "stream"):
                rl = loadgen(build, relay_port, conns, a.seconds, b)
                row["relay"] = {"run": rl,
                                "throughput_ratio": rl["rps"] / direct["rps"] if direct.get("rps") else 0,
                                "added_p50_us": rl["p50_us"] - direct["p50_us"],
                                "added_p99_us": rl["p99_us"] - direct["p99_us"]}
            if pk and mode in ("whole", "stream"):
                row["portkey"] = peer(build, pk, pk_port, uport, conns, a.seconds, b, pk_headers,
                                      direct)
            rows.append(row)
            own = row["own_p50_us"]
            print("%-7s %5d %10.0f %10.0f %8.2fx %7.0fus %7.0fus %7s %7.0fus %8.4f %8.1f%s" % (
                mode, conns, direct["rps"], via["rps"], row["throughput_ratio"],
                row["added_p50_us"], row["added_p99_us"],
                "%.1fus" % own if own is not None else "-", row["cpu_us_per_request"],
                row["new_upstream_connections_per_request"], row["rss_mb"],
                "  errors: %s" % via.get("error") if via.get("error") or via.get("errors")
                else ""))
        relay_table(rows)
        if pk:
            portkey_table(rows, pk_info)
        res = {"seconds": a.seconds, "body_bytes": os.path.getsize(body), "portkey": pk_info,
               "rows": rows}
        with open(os.path.join(out, "gateway.json"), "w") as f:
            json.dump(res, f, indent=2)
        print("\nresults: %s" % os.path.join(out, "gateway.json"))
        targets(rows)
        plot(out, rows)
        print("(whole20: the fake answers after 20 ms, as a provider's fastest answers do)")
    finally:
        for p in (pk, gw, gw_slow, relay, up, slow):
            if p:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def peer(build, proc, port, uport, conns, seconds, body, headers, direct):
    """A timed run through a peer gateway (Portkey's) after a one-second
    warm-up: what the run through lane measures, read the same way."""
    loadgen(build, port, conns, 1, body, headers, warmup=0)
    s0 = json.loads(get(uport, "/_stats"))
    c0 = cpu_ticks(proc.pid)
    via = loadgen(build, port, conns, seconds, body, headers, warmup=0)
    c1 = cpu_ticks(proc.pid)
    s1 = json.loads(get(uport, "/_stats"))
    reqs = max(s1["requests"] - s0["requests"], 1)
    return {"run": via,
            "throughput_ratio": via["rps"] / direct["rps"] if direct.get("rps") else 0,
            "added_p50_us": via["p50_us"] - direct["p50_us"],
            "added_p99_us": via["p99_us"] - direct["p99_us"],
            "cpu_us_per_request": (c1 - c0) / TICK * 1e6 / reqs,
            "new_upstream_connections_per_request": (s1["connections"] - s0["connections"]) / reqs,
            "rss_mb": rss_kb(proc.pid) / 1024.0}


def relay_table(rows):
    print("\nthe floor: a byte relay in C (relay.c: one thread, epoll, nothing parsed) in front "
          "of the same fake;\nwhat any proxy adds here: two more loopback hops")
    head = ("%-7s %5s %10s %10s %9s %9s %9s | %9s %9s" %
            ("mode", "conns", "direct/s", "relay/s", "relay/dir", "p50 add", "p99 add",
             "lane p50+", "lane/dir"))
    print(head)
    print("-" * len(head))
    for r in rows:
        f = r.get("relay")
        if f:
            print("%-7s %5d %10.0f %10.0f %8.2fx %7.0fus %7.0fus | %7.0fus %8.2fx" % (
                r["mode"], r["conns"], r["direct"]["rps"], f["run"]["rps"], f["throughput_ratio"],
                f["added_p50_us"], f["added_p99_us"], r["added_p50_us"], r["throughput_ratio"]))


def portkey_table(rows, info):
    print("\nPortkey's gateway %s (node %s) as the peer: the same fake, bodies and runs"
          % (info["version"], info["node"]))
    head = ("%-7s %5s %10s %10s %8s %9s %9s %9s %8s %8s | %9s %9s" %
            ("mode", "conns", "direct/s", "portkey/s", "pk/dir", "p50 add", "p99 add", "cpu/req",
             "conn/req", "RSS MB", "lane p50+", "lane cpu"))
    print(head)
    print("-" * len(head))
    for r in rows:
        p = r.get("portkey")
        if not p:
            continue
        run = p["run"]
        print("%-7s %5d %10.0f %10.0f %7.2fx %7.0fus %7.0fus %7.0fus %8.4f %8.1f | %7.0fus %7.0fus%s"
              % (r["mode"], r["conns"], r["direct"]["rps"], run["rps"], p["throughput_ratio"],
                 p["added_p50_us"], p["added_p99_us"], p["cpu_us_per_request"],
                 p["new_upstream_connections_per_request"], p["rss_mb"], r["added_p50_us"],
                 r["cpu_us_per_request"],
                 "  errors: %s" % (run.get("error") or "%d, not 2xx %d" % (
                     run.get("errors", 0), run.get("not_2xx", 0)))
                 if run.get("error") or run.get("errors") or run.get("not_2xx") else ""))


def targets(rows):
    def row(mode, conns):
        return next((r for r in rows if r["mode"] == mode and r["conns"] == conns), None)
    print("\ntargets (issue 19; measured, not asserted):")
    r1, r16 = row("whole", 1), row("whole", 16)
    if r1:
        v = r1["added_p50_us"]
        print("  added p50 <= 50 us at 1 connection:        %6.0f us  %s" % (v, "met" if v <= 50 else "MISSED"))
        if r1.get("relay"):
            print("    (the floor, a byte relay, adds:          %6.0f us)" % r1["relay"]["added_p50_us"])
        o = r1["own_p50_us"]
        if o is not None:
            print("  gateway's own time p50 <= 10 us:           %6.1f us  %s" % (o, "met" if o <= 10 else "MISSED"))
    if r16:
        v = r16["throughput_ratio"]
        print("  16 connections: >= 50%% of direct req/s:    %6.0f%%    %s" % (v * 100, "met" if v >= 0.5 else "MISSED"))
        if r16.get("relay"):
            print("    (the floor, a byte relay, reaches:       %6.0f%%)" % (r16["relay"]["throughput_ratio"] * 100))
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
    pk = any(r.get("portkey") for r in rows)
    with open(dat, "w") as f:
        for r in rows:
            if r["mode"] == "whole":
                p = (r.get("portkey") or {}).get("run") or {}
                f.write("%d %.1f %.1f %.1f %.1f %s %s\n" % (
                    r["conns"], r["direct"]["p50_us"], r["lane"]["p50_us"], r["direct"]["rps"],
                    r["lane"]["rps"], p.get("p50_us", "NaN"), p.get("rps", "NaN")))
    peer_p50 = ", '' using 1:6 with linespoints title 'through Portkey'" if pk else ""
    peer_rps = ", '' using 1:7 with linespoints title 'through Portkey'" if pk else ""
    png = os.path.join(out, "gateway.png")
    script = """
set terminal pngcairo size 900,420 noenhanced
set output '%s'
set multiplot layout 1,2 title 'lane-gateway on loopback (whole answers)'
set logscale x 2
%s
set xlabel 'connections'
set ylabel 'p50 latency (us)'
plot '%s' using 1:2 with linespoints title 'direct', '' using 1:3 with linespoints title 'through lane'%s
set ylabel 'requests/s'
plot '%s' using 1:4 with linespoints title 'direct', '' using 1:5 with linespoints title 'through lane'%s
unset multiplot
""" % (png, "set logscale y" if pk else "", dat, peer_p50, dat, peer_rps)
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    print("plot: %s" % png if p.returncode == 0 else "plot: gnuplot failed: %s" % p.stderr[:200])


if __name__ == "__main__":
    sys.exit(main())

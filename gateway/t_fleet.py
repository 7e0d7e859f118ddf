"""t_fleet.py -- three lane-gateways sharing budgets on one Redis, part of
t_gateway.py's TAP run.

Starts redis-server on 127.0.0.1 and a free port (skipped with a message
when it is not installed; under LANE_CI=1 that is a failure), then three
gateways serving t_gateway.lane's route `spend` with "redis" in their
config. One load generator (6 client threads) sends real requests to the
three in turn for tenant acme and team red; then:

  - every request was answered, and the costs the answers report
    (x-lane-cost, rounded to nano-dollars as lane_charge rounds them) add
    up to the fleet total in Redis, to the nano-dollar;
  - after a sync round each gateway's own runtime reads that same fleet
    total for the tenant (GET /admin/state), whichever gateway took the
    requests;
  - GET /healthz and /metrics say Redis is connected, with no charge left
    in the journal; at exit each gateway pushes what it has.

Helpers (ok, is_eq, Gateway, Suite, start, first_line, skip) are
t_gateway.py's, passed in as T.
"""
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import t_reload

NANO = 10 ** 9


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def resp(port, *args):
    """One Redis command over RESP, its reply as Python values."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        out = b"*%d\r\n" % len(args)
        for x in args:
            x = x.encode() if isinstance(x, str) else x
            out += b"$%d\r\n%s\r\n" % (len(x), x)
        c.sendall(out)
        f = c.makefile("rb")
        return _read(f)


def _read(f):
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise RuntimeError("bad reply %r" % line)


def suite(T, a, base_cfg, env):
    if not shutil.which("redis-server"):
        T.skip("fleet: three gateways on one Redis",
               "redis-server is not installed (apt-get install redis-server)")
        return
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--loglevel", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        up = t_reload.wait_for(lambda: _ping(rport), 10)
        if not T.ok(up, "fleet: redis-server answers on 127.0.0.1:%d" % rport):
            return
        cfg = t_reload.served_from(base_cfg, policy="t_gateway.lanec",
                                   redis={"url": "redis://127.0.0.1:%d/0" % rport,
                                          "prefix": "fleet:", "sync_ms": 50})
        gws = []
        for i in range(3):
            proc, port, errlog = t_reload.launch(T, a, dict(cfg, redis=dict(cfg["redis"],
                                                 instance="gw%d" % i)), env, "gateway-fleet%d" % i)
            procs.append((proc, errlog))
            gws.append(T.Gateway(port) if port else None)
        if not T.ok(all(gws), "fleet: three gateways start with \"redis\" in their config"):
            return
        suites = [T.Suite(g, 0, a.lane, a.out, prefix="F%d" % i) for i, g in enumerate(gws)]
        hdr = {"x-lane-field-tenant": "acme", "x-lane-field-team": "red"}
        lock = threading.Lock()
        costs, statuses = [], []
        stop = time.monotonic() + 3.0

        def client(k):
            n = 0
            while time.monotonic() < stop:
                s = suites[(k + n) % 3]
                r = s.send("openai", "fleet load %d-%d" % (k, n), hdr)
                with lock:
                    statuses.append(r.status)
                    if r.status == 200:
                        costs.append(r.h("x-lane-cost"))
                n += 1

        ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        want = sum(int(round(float(c) * NANO)) for c in costs if c)
        T.ok(len(statuses) > 30 and all(s == 200 for s in statuses) and len(costs) == len(statuses),
             "fleet: %d requests over three gateways, every one answered with its cost"
             % len(statuses), [s for s in statuses if s != 200][:10])

        # Each gateway's runtime reads the fleet's total once a round has run.
        def views():
            out = []
            for s in suites:
                st = T.admin_state(s)
                spend = T.budget_spend(st, "tenant_daily") or {}
                out.append(sum(spend.values()))
            return out
        seen = t_reload.wait_for(lambda: (lambda v: v if all(x == want for x in v) else None)(views()), 10)
        T.ok(seen is not None, "fleet: each gateway's runtime reads the fleet's spend for acme, "
             "exactly: %d nano-dollars" % want, {"want": want, "views": views()})
        h = t_reload.health(gws[0])
        rh = h.get("redis", {})
        T.ok(rh.get("connected") is True and rh.get("journal_nanos") == 0 and rh.get("rounds", 0) > 0,
             "fleet: GET /healthz says Redis is connected, nothing journaled", h)
        m = gws[1].request("GET", "/metrics")
        text = m.raw.decode("utf-8", "replace") if m.status == 200 else ""
        T.ok(re.search(r"^lane_gateway_redis_connected(\{\})? 1$", text, re.M) and
             re.search(r"^lane_gateway_redis_journal_dollars(\{\})? 0$", text, re.M),
             "fleet: /metrics has lane_gateway_redis_connected 1 and an empty journal",
             [l for l in text.splitlines() if "redis" in l])
        for proc, _ in procs:
            t_reload.finish(proc)
        keys = resp(rport, "KEYS", "fleet:b:{tenant_daily:*}:*")
        spent = [k for k in keys if not k.endswith(":x")]
        total = sum(int(resp(rport, "GET", k) or 0) for k in spent)
        T.is_eq(total, want, "fleet: after the gateways stopped, Redis holds the fleet's exact total "
                "for tenant_daily (%d key(s))" % len(spent))
        pushed = 0
        for k in keys:
            if k.endswith(":x"):
                h = resp(rport, "HGETALL", k)
                pushed += sum(int(v) for f, v in zip(h[::2], h[1::2]) if f.startswith("o:"))
        T.is_eq(pushed, want, "fleet: the three instances' own totals add up to it")
        errs = "".join(open(e).read() for _, e in procs)
        T.ok("never reached Redis" not in errs and "lost Redis" not in errs,
             "fleet: no gateway lost Redis or left charges behind", errs[-2000:])
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                t_reload.finish(proc)
        redis.kill()
        redis.wait(10)


def _ping(port):
    try:
        return resp(port, "PING") == "PONG"
    except OSError:
        return False

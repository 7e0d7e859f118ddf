"""t_reload.py -- lane-gateway's policy reloads, part of t_gateway.py's TAP run.

A third gateway serves t_gateway.lane's route `spend` from a policy file
that the test replaces while clients keep sending requests:

  - SIGHUP with an edited policy under load (4 client threads, dry runs):
    every request is answered, each client sees the revision in
    x-lane-revision change exactly once and never back, and each answer is
    the one its revision's program gives; spend is kept across the swap
    (the budget's limit changed, its key and window did not);
  - a corrupt file, then a policy without the gateway's route (found by
    polling): both refused with their reason in /healthz and /metrics,
    the gateway still serving the revision it had;
  - polling swaps a changed file back in; a SIGHUP with unchanged bytes
    changes nothing;
  - the decision log names the revision of every decision;
  - a restart with another edit keeps the spend of the budgets that still
    mean the same (the state file, saved at exit, loaded by meaning).

Helpers (ok, is_eq, Gateway, Suite, start, first_line) are t_gateway.py's,
passed in as T so that the TAP count is one.
"""
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time


def compile_to(T, a, src_text, name):
    src = os.path.join(a.out, name + ".lane")
    with open(src, "w") as f:
        f.write(src_text)
    out = os.path.join(a.out, name + ".lanec")
    p = subprocess.run([a.lane, "compile", src, "-o", out], capture_output=True, text=True,
                       timeout=60)
    return out if p.returncode == 0 else None


def install(src, live):
    """Replaces the live policy file atomically, as a deploy would."""
    tmp = live + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, live)


def health(gw):
    r = gw.request("GET", "/healthz")
    return r.json if r.status == 200 and isinstance(r.json, dict) else {}


def wait_for(cond, limit=15.0):
    t = time.monotonic() + limit
    while time.monotonic() < t:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return None


def dry(T, gw):
    return gw.request("POST", T.path_of("openai"), T.body_of("openai", "reload check"),
                      {"x-lane-dry-run": "1", "x-lane-field-tenant": "acme",
                       "x-lane-field-team": "red"})


def tenant_spend(T, gw):
    st = T.admin_state(type("S", (), {"gw": gw})())
    spend = T.budget_spend(st, "tenant_daily")
    return sum(spend.values()) if spend is not None else None


def launch(T, a, cfg, env, name):
    cfgfile = os.path.join(a.out, name + ".json")
    with open(cfgfile, "w") as f:
        json.dump(cfg, f, indent=2)
    errlog = os.path.join(a.out, name + ".err")
    proc = T.start([a.gateway, "-c", cfgfile, "--exit-after", "200"], env=env, log=errlog)
    m = re.search(r"127\.0\.0\.1:(\d+)", T.first_line(proc))
    return proc, (int(m.group(1)) if m else None), errlog


def served_from(base_cfg, **kw):
    """A config serving route spend of kw["policy"], without the main
    suite's decision log and state file."""
    cfg = dict(base_cfg, route="spend", defaults={}, **kw)
    cfg.pop("decision_log", None)
    cfg.pop("state_file", None)
    return cfg


def finish(proc):
    proc.terminate()
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def under_load(T, gw, swap, threads=4, after=0.6):
    """Clients send dry runs without pause; swap() is called meanwhile.
    Returns each client's list of (status, revision, primary)."""
    stop = threading.Event()
    seen = [[] for _ in range(threads)]

    def client(i):
        while not stop.is_set():
            r = dry(T, gw)
            seen[i].append((r.status, r.h("x-lane-revision"),
                            (r.json or {}).get("primary") if isinstance(r.json, dict) else None))

    ts = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    time.sleep(after)
    swap()
    time.sleep(after)
    stop.set()
    for t in ts:
        t.join(20)
    return seen


def suite(T, a, base_cfg, env):
    src = open(T.LEDGER_POLICY).read()
    v1 = compile_to(T, a, src, "reload_v1")
    # v2: route spend prefers beta; tenant_daily's limit rises (its spend is kept)
    v2 = compile_to(T, a, src.replace("otherwise -> alpha, then beta", "otherwise -> beta, then alpha")
                    .replace("limit $100 ", "limit $150 "), "reload_v2")
    # v3, for the restart: team_monthly's window changes (its spend is dropped)
    v3 = compile_to(T, a, src.replace("rolling 30d", "rolling 7d"), "reload_v3")
    noroute = compile_to(T, a, src.replace("route spend", "route spending"), "reload_noroute")
    if not T.ok(all([v1, v2, v3, noroute]), "reload: four versions of t_gateway.lane compile"):
        return
    bad = os.path.join(a.out, "reload_bad.lanec")
    data = bytearray(open(v1, "rb").read())
    data[len(data) // 2] ^= 0x5A
    open(bad, "wb").write(bytes(data))
    live = os.path.join(a.out, "reload_live.lanec")
    state = os.path.join(a.out, "reload.state")
    logp = os.path.join(a.out, "reload.log")
    for f in (state, logp):
        if os.path.exists(f):
            os.remove(f)
    install(v1, live)
    cfg = dict(base_cfg, policy="reload_live.lanec", route="spend", defaults={},
               state_file="reload.state", reload={"poll_s": 1},
               decision_log={"path": "reload.log", "queue": 4096})

    proc, port, errlog = launch(T, a, cfg, env, "gateway-reload")
    if not T.ok(port is not None, "reload: lane-gateway starts on the live policy file"):
        finish(proc)
        return
    gw = T.Gateway(port)
    s = T.Suite(gw, 0, a.lane, a.out, prefix="R")
    h = health(gw)
    r1 = h.get("revision", "")
    T.ok(h.get("status") == "ok" and r1.startswith("lanec-") and h.get("generation") == 1,
         "reload: GET /healthz names the revision and generation 1 (%s)" % r1, h)
    hdr = {"x-lane-field-tenant": "acme", "x-lane-field-team": "red"}
    answered = sum(s.send("openai", "charge me %d" % i, hdr).status == 200 for i in range(5))
    spend1 = tenant_spend(T, gw)
    T.ok(answered == 5 and spend1, "reload: five answers charged to tenant acme ($%s)"
         % (spend1 and spend1 / 1e9))

    def sighup():
        install(v2, live)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: health(gw).get("generation") == 2)

    seen = under_load(T, gw, sighup)
    h = health(gw)
    r2 = h.get("revision", "")
    T.ok(h.get("generation") == 2 and r2 != r1 and h.get("reload_failures") == 0,
         "reload: the edited policy was swapped in (generation 2, %s)" % r2, h)
    total = sum(len(x) for x in seen)
    T.ok(total > 20 and all(st == 200 for x in seen for st, _, _ in x),
         "reload: every one of %d requests under load answered 200" % total,
         [x for x in seen if any(st != 200 for st, _, _ in x)][:1])
    once = True
    for x in seen:
        revs = [rv for _, rv, _ in x]
        changes = sum(1 for i in range(1, len(revs)) if revs[i] != revs[i - 1])
        once &= changes == 1 and revs[0] == r1 and revs[-1] == r2
    T.ok(once, "reload: each client saw x-lane-revision change exactly once, %s to %s" % (r1, r2),
         [[rv for _, rv, _ in x][::max(1, len(x) // 20)] for x in seen])
    want = {r1: "alpha", r2: "beta"}
    T.ok(all(want.get(rv) == pm for x in seen for _, rv, pm in x),
         "reload: every answer is its revision's program's (alpha before, beta after)")
    spend2 = tenant_spend(T, gw)
    T.is_eq(spend2, spend1, "reload: tenant acme's spend is kept across the swap, to the nano-dollar")
    answered = sum(s.send("openai", "charge me after %d" % i, hdr).status == 200 for i in range(5))
    spend3 = tenant_spend(T, gw)
    T.ok(answered == 5 and spend3 and spend3 > spend2, "reload: charges after the swap add to it")

    install(bad, live)
    proc.send_signal(signal.SIGHUP)
    h = wait_for(lambda: (lambda j: j if j.get("reload_failures") == 1 else None)(health(gw)))
    T.ok(h and h["revision"] == r2 and "refused" in h["last_reload"]["result"] and
         "checksum" in h["last_reload"]["result"],
         "reload: a corrupt file is refused, the gateway still serves %s (%s)"
         % (r2, h and h["last_reload"]["result"]), h)
    r = dry(T, gw)
    T.ok(r.status == 200 and r.h("x-lane-revision") == r2, "reload: ...and answers with it")

    install(noroute, live)   # found by the poller this time
    h = wait_for(lambda: (lambda j: j if j.get("reload_failures") == 2 else None)(health(gw)))
    T.ok(h and h["revision"] == r2 and "no route 'spend'" in h["last_reload"]["result"],
         "reload: polling refuses a policy without the gateway's route (%s)"
         % (h and h["last_reload"]["result"]), h)
    time.sleep(2.5)   # two more polls find the same bytes
    T.is_eq(health(gw).get("reload_failures"), 2,
            "reload: polls that find the bytes refused last do not test or count them again")

    install(v1, live)
    h = wait_for(lambda: (lambda j: j if j.get("generation") == 3 else None)(health(gw)))
    T.ok(h and h["revision"] == r1, "reload: polling swaps a changed file in (generation 3, %s)"
         % (h and h["revision"]), h)
    before = health(gw).get("reloads")
    proc.send_signal(signal.SIGHUP)
    h = wait_for(lambda: (lambda j: j if j.get("reloads", 0) > before else None)(health(gw)))
    T.ok(h and h["generation"] == 3 and "unchanged" in h["last_reload"]["result"],
         "reload: SIGHUP with the same bytes changes nothing", h)

    m = gw.request("GET", "/metrics").raw.decode()
    T.ok(re.search(r'lane_gateway_policy_info\{revision="%s",generation="3"\} 1\b' % r1, m) and
         re.search(r'lane_gateway_policy_info\{revision="%s",generation="2"\} 0\b' % r2, m) and
         re.search(r"lane_gateway_reload_failures_total\{\} 2\b", m) and
         re.search(r'lane_gateway_reloads_total\{cause="SIGHUP",result="failed"\} 1\b', m),
         "reload: /metrics shows the revision served, the reloads and the 2 failures",
         "\n".join(l for l in m.splitlines() if "reload" in l or "policy_" in l))

    rc = finish(proc)
    T.is_eq(rc, 0, "reload: lane-gateway stops cleanly, saving the state file")
    log = open(errlog).read()
    T.ok("Sanitizer" not in log, "reload: no sanitizer report", log[-3000:])
    try:
        recs = [json.loads(l) for l in open(logp)]
    except (OSError, ValueError) as e:
        recs = []
        T.ok(False, "reload: the decision log reads", str(e))
    decs = [x for x in recs if x.get("type") == "decision"]
    T.ok(decs and all(x.get("revision") in (r1, r2) for x in decs) and
         {x["revision"] for x in decs} == {r1, r2},
         "reload: each of %d decision records names its revision" % len(decs))
    p = subprocess.run(["python3", "tests/schema_check.py", logp], capture_output=True, text=True,
                       timeout=60)
    T.ok(p.returncode == 0, "reload: the records validate against the schema", p.stderr[-1500:])

    # A restart with another edit: team_monthly's window changed.
    install(v3, live)
    proc, port, errlog = launch(T, a, cfg, env, "gateway-restart")
    if T.ok(port is not None, "restart: lane-gateway starts on an edited policy"):
        gw = T.Gateway(port)
        T.is_eq(tenant_spend(T, gw), spend3,
                "restart: tenant_daily's spend is loaded from the state file (another checksum)")
        st = T.admin_state(type("S", (), {"gw": gw})())
        T.is_eq(T.budget_spend(st, "team_monthly"), {},
                "restart: team_monthly, whose window changed, starts at $0")
        finish(proc)
        log = open(errlog).read()
        T.ok("team_monthly': its window was 2592000000 ms and is 604800000 ms now" in log,
             "restart: the gateway says which budget's spend it dropped and why", log[-2000:])


class PolicyServer:
    """Serves one file's bytes at /policy with an ETag of its content;
    answers 304 to If-None-Match on it; counts requests and 304s."""

    def __init__(self, path):
        self.path, self.gets, self.not_modified, self.status = path, 0, 0, 200
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                srv.gets += 1
                data = open(srv.path, "rb").read()
                tag = '"%x"' % (hash(data) & 0xFFFFFFFFFFFF)
                if srv.status != 200:
                    self.send_response(srv.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == tag:
                    srv.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def url_suite(T, a, base_cfg, env):
    """The policy at a URL, polled every second with If-None-Match."""
    v1 = os.path.join(a.out, "reload_v1.lanec")
    v2 = os.path.join(a.out, "reload_v2.lanec")
    served = os.path.join(a.out, "reload_served.lanec")
    install(v1, served)
    srv = PolicyServer(served)
    cfg = served_from(base_cfg, policy="http://127.0.0.1:%d/policy" % srv.port,
                      reload={"poll_s": 1, "timeout_ms": 2000, "max_bytes": 1 << 20})
    proc, port, errlog = launch(T, a, cfg, env, "gateway-url")
    try:
        if not T.ok(port is not None, "url: lane-gateway starts on a policy fetched over HTTP"):
            return
        gw = T.Gateway(port)
        r1 = health(gw).get("revision")
        got = wait_for(lambda: srv.not_modified >= 2)
        h = health(gw)
        T.ok(got and h.get("generation") == 1 and "unchanged" in h["last_reload"]["result"],
             "url: polls send If-None-Match and a 304 changes nothing (%d polls, %d 304s)"
             % (srv.gets, srv.not_modified), h)
        install(v2, served)
        h = wait_for(lambda: (lambda j: j if j.get("generation") == 2 else None)(health(gw)))
        T.ok(h and h["revision"] != r1, "url: a changed policy is fetched and swapped in", h)
        srv.status = 500
        h = wait_for(lambda: (lambda j: j if j.get("reload_failures", 0) >= 1 else None)(health(gw)))
        T.ok(h and h["generation"] == 2 and "HTTP 500" in h["last_reload"]["result"],
             "url: an HTTP 500 is a failed reload, the policy served stays (%s)"
             % (h and h["last_reload"]["result"]), h)
        srv.status = 200
        big = os.path.join(a.out, "reload_big.lanec")
        with open(big, "wb") as f:
            f.write(open(v1, "rb").read() + b"\0" * (1 << 20))
        install(big, served)
        h = wait_for(lambda: (lambda j: j if "max_bytes" in j.get("last_reload", {}).get("result", "")
                              else None)(health(gw)))
        T.ok(h and h["generation"] == 2, "url: a policy over reload.max_bytes is refused (%s)"
             % (h and h["last_reload"]["result"]), h)
        r = dry(T, gw)
        T.ok(r.status == 200, "url: and requests are answered all along")
    finally:
        rc = finish(proc)
        srv.close()
    T.is_eq(rc, 0, "url: lane-gateway stops cleanly")
    log = open(errlog).read()
    T.ok("Sanitizer" not in log, "url: no sanitizer report", log[-3000:])


def lane(a, *args, at=None):
    """Runs lane; at: the build time a bundle records (SOURCE_DATE_EPOCH)."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(at)) if at else None
    return subprocess.run([a.lane] + list(args), capture_output=True, text=True, timeout=120,
                          env=env)


def reload_once(proc, gw, src, live):
    """Installs src, sends SIGHUP, waits for the reload to be counted;
    returns /healthz after it."""
    h0 = health(gw)
    n0 = h0.get("reloads", 0) + h0.get("reload_failures", 0)
    install(src, live)
    proc.send_signal(signal.SIGHUP)
    return wait_for(lambda: (lambda j: j if j.get("reloads", 0) + j.get("reload_failures", 0) > n0
                             else None)(health(gw))) or {}


def bundle_suite(T, a, base_cfg, env):
    """Signed bundles: only those the configured key signed, whole and
    passing their tests, are served; the rest are refused under load."""
    out = a.out
    edit = ["python3", "tests/cli/bundle_edit.py"]
    for k in ("release", "other"):
        for ext in (".key", ".pub"):
            if os.path.exists(os.path.join(out, k + ext)):
                os.remove(os.path.join(out, k + ext))
        lane(a, "keygen", "-o", os.path.join(out, k))
    src = open(T.LEDGER_POLICY).read()
    test = ('\ntest "spend: alpha first" {\n  route spend\n  req { tenant: "t", team: "x", '
            'input_tokens: 1000, max_output_tokens: 100 }\n  expect primary == alpha\n}\n')
    v1src = os.path.join(out, "bundle_v1.lane")
    v2src = os.path.join(out, "bundle_v2.lane")
    open(v1src, "w").write(src + test)
    open(v2src, "w").write(src.replace("otherwise -> alpha, then beta", "otherwise -> beta, then alpha")
                           + test.replace("alpha first", "beta first").replace("== alpha", "== beta"))
    b = {name: os.path.join(out, "b_%s.bundle" % name) for name in
         ("v1", "v2", "v3", "unsigned", "other", "tampered", "good", "failing")}
    b["lanec"] = os.path.join(out, "b_v1.lanec")
    t0 = 1800000000   # build times: v1 first, v2 ten seconds later, v3 (v1 again) last
    rs = [lane(a, "build", v1src, "-o", b["v1"], "--sign", os.path.join(out, "release.key"),
               "--revision", "r1", at=t0),
          lane(a, "build", v2src, "-o", b["v2"], "--sign", os.path.join(out, "release.key"),
               "--revision", "r2", at=t0 + 10),
          lane(a, "build", v1src, "-o", b["v3"], "--sign", os.path.join(out, "release.key"),
               "--revision", "r3", at=t0 + 20),
          lane(a, "build", v2src, "-o", b["unsigned"], "--revision", "r2-unsigned"),
          lane(a, "build", v2src, "-o", b["other"], "--sign", os.path.join(out, "other.key"),
               "--revision", "r2-other"),
          lane(a, "build", v1src, "-o", b["good"], "--revision", "good"),
          lane(a, "compile", v1src, "-o", b["lanec"])]
    rs.append(subprocess.run(edit + ["flip", b["v2"], b["tampered"], "PROGRAM", "--reseal"],
                             capture_output=True, text=True))
    bad_src = os.path.join(out, "bundle_v1_failing.lane")
    open(bad_src, "w").write(open(v1src).read().replace("expect primary == alpha",
                                                        "expect primary == delta"))
    rs.append(subprocess.run(edit + ["set-source", b["good"], b["failing"], v1src, bad_src],
                             capture_output=True, text=True))
    if not T.ok(all(r.returncode == 0 for r in rs), "bundles: keys made, 8 bundles built or altered, a .lanec compiled",
                "\n".join(r.stderr for r in rs if r.returncode)):
        return
    live = os.path.join(out, "bundle_live.bundle")
    install(b["v1"], live)
    cfg = served_from(base_cfg, policy="bundle_live.bundle", policy_key="release.pub")
    proc, port, errlog = launch(T, a, cfg, env, "gateway-bundle")
    try:
        if not T.ok(port is not None, "bundles: lane-gateway starts on a signed bundle"):
            return
        gw = T.Gateway(port)
        T.is_eq(health(gw).get("revision"), "r1", "bundles: /healthz names the bundle's revision")
        steps = [("v2", "ok", "r2", None), ("tampered", "failed", "r2", "signature"),
                 ("unsigned", "failed", "r2", "not signed"), ("other", "failed", "r2", "key"),
                 ("v1", "failed", "r2", "rollback"), ("v3", "ok", "r3", None),
                 ("good", "failed", "r3", "not signed"), ("lanec", "failed", "r3", "bare .lanec")]
        results = []

        def reloads():
            for name, _, _, _ in steps:
                results.append(reload_once(proc, gw, b[name], live))

        seen = under_load(T, gw, reloads, after=0.3)
        for (name, want, rev, word), h in zip(steps, results):
            res = h.get("last_reload", {}).get("result", "")
            T.ok(h.get("revision") == rev and (("now serving" in res) if want == "ok" else
                                               ("refused" in res and word in res)),
                 "bundles: %s -> %s, serving %s (%s)" % (name, want, rev, res[:160]), h)
        total = sum(len(x) for x in seen)
        T.ok(total > 20 and all(st == 200 for x in seen for st, _, _ in x),
             "bundles: every one of %d requests during the 8 reloads answered 200" % total)
        want = {"r1": "alpha", "r2": "beta", "r3": "alpha"}
        T.ok(all(want.get(rv) == pm for x in seen for _, rv, pm in x),
             "bundles: every answer is its revision's program's")
        h = health(gw)
        T.ok(h.get("reload_failures") == 6 and h.get("generation") == 3,
             "bundles: 6 reloads refused, 2 made (generation 3)", h)
    finally:
        rc = finish(proc)
    T.is_eq(rc, 0, "bundles: lane-gateway stops cleanly")

    # Without a key: a bundle whose test fails is refused.
    install(b["good"], live)
    cfg.pop("policy_key")
    proc, port, errlog = launch(T, a, cfg, env, "gateway-bundle-tests")
    try:
        if T.ok(port is not None, "bundles: lane-gateway starts on an unsigned bundle (no key set)"):
            gw = T.Gateway(port)
            h = reload_once(proc, gw, b["failing"], live)
            res = h.get("last_reload", {}).get("result", "")
            T.ok(h.get("revision") == "good" and "1 of its tests failed" in res and
                 "spend: alpha first" in res,
                 "bundles: a bundle whose test fails is refused, naming the test (%s)" % res[:200], h)
    finally:
        finish(proc)
    log = open(errlog).read()
    T.ok("expect failed" in log, "bundles: the test report goes to stderr", log[-1500:])

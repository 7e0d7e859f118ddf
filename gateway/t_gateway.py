#!/usr/bin/env python3
"""t_gateway.py -- lane-gateway end to end, as TAP (run by test.sh).

Starts fake_provider.py and lane-gateway (examples/policies/support.lane,
compiled here) on 127.0.0.1, sends requests in both formats, with faults
injected on the candidates the policy chose (asked first with
x-lane-dry-run), and checks from both sides -- the client's answers and the
fake's log of every upstream call -- that each request is answered exactly
once, by the candidate the fallback order says, with the right headers,
errors, costs and metrics. Then the official OpenAI and Anthropic Node.js
SDKs (gateway/node) talk to the gateway.

A second, fresh gateway serves t_gateway.lane (prices declared in the file)
for the checks that must not share a runtime with the rest: budget spend
per tenant and team, read from GET /admin/state and compared in exact
nano-dollars with costs worked out here from the policy's prices and the
fake's usage; and the circuit breaker of a model nothing else calls, closed
after N-1 failures and open after the N-th.

Every wait is bounded; both servers stop by themselves (--lifetime,
--exit-after) and are stopped at the end.
"""
import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = {"openai": "sk-test-openai-5ec7e7", "anthropic": "sk-ant-test-b0b0b0",
        "gemini": "gm-test-c4c4c4"}
n_tests = 0
failures = 0


def ok(cond, name, diag=None):
    global n_tests, failures
    n_tests += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n_tests, name), flush=True)
    if not cond:
        failures += 1
        if diag is not None:
            for line in str(diag).splitlines()[:30]:
                print("#   " + line)
    return cond


def skip(name, why):
    """Skips for what this machine may lack (node, npm, the npm registry):
    said loudly on stderr; under LANE_CI=1, where .ci/run installs all of
    it, a failure instead."""
    global n_tests, failures
    n_tests += 1
    if os.environ.get("LANE_CI", "") not in ("", "0"):
        failures += 1
        print("not ok %d - %s: skipped in CI: %s" % (n_tests, name, why), flush=True)
        return
    print("SKIPPED %s: %s" % (name, why), file=sys.stderr, flush=True)
    print("ok %d - %s # skip %s" % (n_tests, name, why), flush=True)


def is_eq(got, want, name):
    return ok(got == want, name, "got:      %r\nexpected: %r" % (got, want))


class Resp:
    def __init__(self):
        self.status, self.headers, self.raw, self.json = 0, {}, b"", None
        self.events, self.cut, self.t_first, self.t_total, self.error = [], False, None, None, None

    def h(self, k):
        return self.headers.get(k.lower())


class Gateway:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, stream=False, timeout=15):
        r = Resp()
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            hdrs = {"Content-Type": "application/json"}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            r.status = resp.status
            r.headers = {k.lower(): v for k, v in resp.getheaders()}
            if stream and r.status == 200 and "event-stream" in (r.h("content-type") or ""):
                read_events(resp, r, t0)
            else:
                r.raw = resp.read()
                try:
                    r.json = json.loads(r.raw)
                except ValueError:
                    pass
        except (OSError, http.client.HTTPException) as e:
            r.error = repr(e)
        finally:
            conn.close()
        r.t_total = time.monotonic() - t0
        return r


def read_events(resp, r, t0):
    """SSE events as (event name, data text), with the first one's time."""
    name, data = None, []
    try:
        for _ in range(10000):
            line = resp.readline()
            if not line:
                break
            line = line.decode().rstrip("\r\n")
            if r.t_first is None and line:
                r.t_first = time.monotonic() - t0
            if not line:
                if data:
                    r.events.append((name, "\n".join(data)))
                name, data = None, []
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
    except (http.client.IncompleteRead, OSError, ValueError):
        r.cut = True
    # readline() hides a chunked body that broke off (it just ends); a
    # proper last chunk leaves chunk_left None.
    if resp.chunked and resp.chunk_left is not None:
        r.cut = True


def stream_text(r, fmt):
    out = []
    for name, data in r.events:
        if data == "[DONE]":
            continue
        d = json.loads(data)
        if fmt == "openai":
            for c in d.get("choices") or []:
                out.append((c.get("delta") or {}).get("content") or "")
        elif d.get("type") == "content_block_delta":
            out.append(d["delta"].get("text", ""))
    return "".join(out)


def answer_text(r, fmt):
    if not isinstance(r.json, dict):
        return None
    if fmt == "openai":
        try:
            return r.json["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None
    return "".join(b.get("text", "") for b in r.json.get("content") or [])


def path_of(fmt):
    return "/v1/chat/completions" if fmt == "openai" else "/v1/messages"


def body_of(fmt, text, stream=False, usage=False):
    if fmt == "openai":
        b = {"model": "gpt-4o", "max_tokens": 200,
             "messages": [{"role": "system", "content": "You answer support questions."},
                          {"role": "user", "content": text}]}
        if stream:
            b["stream"] = True
            if usage:
                b["stream_options"] = {"include_usage": True}
        return b
    b = {"model": "claude-3-haiku", "max_tokens": 200, "system": "You answer support questions.",
         "messages": [{"role": "user", "content": text}]}
    if stream:
        b["stream"] = True
    return b


class Suite:
    def __init__(self, gw, fake_port, lane, out, prefix="t"):
        self.gw, self.fake_port, self.lane, self.out = gw, fake_port, lane, out
        self.seq, self.prefix = 0, prefix   # tags: the fake's log is shared
        self.decided = 0          # requests that reached a decision (not dry runs)
        self.dry = 0              # dry runs
        self.moves = 0            # fallbacks expected in the metrics
        self.refused = 0          # attempts on the unreachable in-house provider
        self.resent = 0           # calls libcurl sent again (below, "drop")
        self.charges = []         # what the gateway should have charged:
                                  # a number, or a model (its usage cost)
        self.usage_cost = {}      # model -> cost of the fake's usage
        self.served = 0           # answers from a provider

    def fake_log(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.fake_port, timeout=5)
        conn.request("GET", "/_log")
        data = json.loads(conn.getresponse().read())
        conn.close()
        return data

    def calls(self, tag):
        return [e for e in self.fake_log() if e["tag"] == tag]

    def tag(self):
        self.seq += 1
        return "%s%03d" % (self.prefix, self.seq)

    def dry_run(self, fmt, text, headers=None):
        h = {"x-lane-dry-run": "1"}
        h.update(headers or {})
        r = self.gw.request("POST", path_of(fmt), body_of(fmt, text), h)
        if r.status == 200:
            self.dry += 1
        return r

    def plan(self, fmt, faults, headers=None):
        """A tag and a message text with `faults` (kinds by candidate
        position) aimed at the candidates the policy picks for it."""
        tag = self.tag()
        text, cands = tag + " please help", []
        for _ in range(3):  # the text's length counts in the decision
            r = self.dry_run(fmt, text, headers)
            if r.status != 200:
                return tag, text, None
            if [c["model"] for c in r.json["candidates"]] == [c["model"] for c in cands]:
                break
            cands = r.json["candidates"]
            words = ["fault:%s=%s" % (cands[i]["id"], k) for i, k in enumerate(faults)
                     if k and i < len(cands)]
            text = " ".join([tag, "please", "help"] + words)
        return tag, text, cands

    def send(self, fmt, text, headers=None, stream=False, usage=False):
        r = self.gw.request("POST", path_of(fmt), body_of(fmt, text, stream, usage), headers,
                            stream=stream)
        return r

    def book(self, r, stream=False, has_usage=True):
        """What the metrics should count for a request that was decided."""
        self.decided += 1
        fb = int(r.h("x-lane-fallbacks") or 0)
        attempts = [a for a in (r.h("x-lane-attempts") or "").split(",") if a]
        self.refused += sum(1 for a in attempts if a.endswith("=refused"))
        model = r.h("x-lane-model")
        if not model:                       # nobody answered: one move less
            self.moves += max(fb - 1, 0)
            return
        self.moves += fb
        if r.status == 200 and not r.cut:
            self.served += 1
            cost = float(r.h("x-lane-cost") or 0)
            if not stream:
                self.usage_cost[model] = cost
            self.charges.append(model if stream and has_usage else cost)

    def spend(self):
        missing = [c for c in self.charges if isinstance(c, str) and c not in self.usage_cost]
        if missing:
            print("#   charged at a usage cost never seen: %r" % missing)
        return sum(self.usage_cost.get(c, float("nan")) if isinstance(c, str) else c
                   for c in self.charges)


def cost_from_eval(lane, policy, out, req):
    path = os.path.join(out, "eval_req.json")
    with open(path, "w") as f:
        json.dump(req, f)
    p = subprocess.run([lane, "eval", policy, "--route", "support", path], capture_output=True,
                       text=True, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None


def start(cmd, env=None, log=None):
    errf = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env, text=True)


def first_line(proc, limit=10.0):
    """The process's first stdout line, waiting at most `limit` seconds."""
    box = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(limit)
    return box[0].strip() if box else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--lane", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-sdk", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for k in list(os.environ):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del os.environ[k]

    policy = os.path.join(a.out, "support.lanec")
    p = subprocess.run([a.lane, "compile", "examples/policies/support.lane", "-o", policy],
                       capture_output=True, text=True, timeout=60)
    if not ok(p.returncode == 0, "lane compile examples/policies/support.lane", p.stderr):
        print("1..%d" % n_tests)
        return

    fake = start([sys.executable, os.path.join(HERE, "fake_provider.py"), "--lifetime", "240"]
                 + ["--key=%s=%s" % kv for kv in KEYS.items()], log=os.path.join(a.out, "fake.err"))
    fport = first_line(fake)
    ok(fport.isdigit(), "the fake providers listen on 127.0.0.1:%s" % fport)
    logpath = os.path.join(a.out, "decisions.log")
    for f in os.listdir(a.out):
        if f.startswith("decisions.log"):
            os.remove(os.path.join(a.out, f))
    cfg = {
        "listen": "127.0.0.1:0", "policy": "support.lanec", "route": "support",
        "decision_log": {"path": "decisions.log", "max_bytes": 40000, "queue": 4096},
        "deadline_ms": 5000, "attempt_timeout_ms": 1200, "connect_timeout_ms": 1000,
        "stream_idle_ms": 3000, "default_max_tokens": 1024, "defaults": {"tier": "free"},
        # Shadows decided, logged, not sent: muse (refused below) would
        # otherwise fail its shadow calls and open its breaker. They are
        # sent by the gateway of shadow_suite.
        "shadow": {"concurrency": 0},
        # Two workers, each with its own server and kept connections
        # (reuse counts on it).
        "limits": {"threads": 2},
        "providers": {
            "openai": {"base_url": "http://127.0.0.1:%s/openai/v1" % fport,
                       "api_key_env": "T_OPENAI_KEY", "format": "openai"},
            "anthropic": {"base_url": "http://127.0.0.1:%s/anthropic/v1/" % fport,
                          "api_key_env": "T_ANTHROPIC_KEY", "format": "anthropic"},
            "gemini": {"base_url": "http://127.0.0.1:%s/gemini/v1" % fport,
                       "api_key_env": "T_GEMINI_KEY", "format": "openai",
                       "max_tokens_field": "max_completion_tokens"},
            # Port 9 (discard) has no listener here: every call is refused.
            "inhouse": {"base_url": "http://127.0.0.1:9/v1", "format": "openai"},
        },
    }
    env = dict(os.environ, T_OPENAI_KEY=KEYS["openai"], T_ANTHROPIC_KEY=KEYS["anthropic"],
               T_GEMINI_KEY=KEYS["gemini"])
    try:
        if fport.isdigit():
            s = with_gateway(a, "gateway", cfg, env, lambda port: main_suite(a, port, fport, policy))
            if s:
                decision_log(a, s, logpath, policy)
            # The budget and breaker checks: a fresh gateway, its own policy.
            ledger_policy = os.path.join(a.out, "t_gateway.lanec")
            p = subprocess.run([a.lane, "compile", LEDGER_POLICY, "-o", ledger_policy],
                               capture_output=True, text=True, timeout=60)
            if ok(p.returncode == 0, "lane compile gateway/t_gateway.lane", p.stderr):
                cfg2 = dict(cfg, policy="t_gateway.lanec", route="spend", defaults={})
                del cfg2["decision_log"]
                with_gateway(a, "gateway-ledger", cfg2, env,
                             lambda port: ledger_and_breaker(
                                 Suite(Gateway(port), int(fport), a.lane, a.out, prefix="L")))
            # No attempt_timeout_ms: each attempt's share of the deadline.
            # Small body limits, checked on the same gateway.
            cfg3 = dict(cfg, deadline_ms=3000,
                        limits={"body_bytes": 65536, "bodies_bytes": 131072,
                                "header_timeout_ms": 1500, "body_timeout_ms": 1500},
                        retry={"attempts": 2, "backoff_ms": 50, "max_backoff_ms": 200})
            del cfg3["attempt_timeout_ms"], cfg3["decision_log"]
            def shares_and_limits(port):
                attempt_shares(Suite(Gateway(port), int(fport), a.lane, a.out, prefix="S"))
                retries(Suite(Gateway(port), int(fport), a.lane, a.out, prefix="R"))
                limits(port)
                slow_clients(port)
            with_gateway(a, "gateway-shares", cfg3, env, shares_and_limits)
            # Connections per client address, counted over both workers.
            cfg5 = dict(cfg, limits={"connections_per_ip": 3, "threads": 2})
            del cfg5["decision_log"]
            with_gateway(a, "gateway-per-ip", cfg5, env, per_ip)
            # Shadows sent: muse served by the fake.
            cfg4 = dict(cfg, shadow={"concurrency": 1, "queue": 1, "timeout_ms": 1500},
                        decision_log={"path": "shadow.log"})
            cfg4["providers"] = dict(cfg["providers"], inhouse={
                "base_url": "http://127.0.0.1:%s/inhouse/v1" % fport, "format": "openai"})
            for f in os.listdir(a.out):
                if f.startswith("shadow.log"):
                    os.remove(os.path.join(a.out, f))
            with_gateway(a, "gateway-shadow", cfg4, env,
                         lambda port: shadow_suite(
                             Suite(Gateway(port), int(fport), a.lane, a.out, prefix="H"),
                             os.path.join(a.out, "shadow.log")))
            # Reloads: a third gateway whose policy file changes under it.
            sys.path.insert(0, HERE)
            import t_reload
            config_errors(a, cfg, env)
            t_reload.suite(sys.modules[__name__], a, dict(cfg), env)
            t_reload.url_suite(sys.modules[__name__], a, dict(cfg), env)
            t_reload.bundle_suite(sys.modules[__name__], a, dict(cfg), env)
            # Fleet state: three gateways sharing budgets on one Redis.
            import t_fleet
            t_fleet.suite(sys.modules[__name__], a, dict(cfg), env)
    finally:
        fake.terminate()
        fake.wait(10)
    print("1..%d" % n_tests)


def attempt_shares(s):
    """Without attempt_timeout_ms, a hanging candidate gets its share of
    the deadline (3 s over three candidates: 1 s), not all of it."""
    h = {"x-lane-field-tier": "pro"}
    tag, text, cands = s.plan("openai", ["hang"], h)
    r = s.send("openai", text, h)
    calls = s.calls(tag)
    ok(r.status == 200 and r.h("x-lane-model") == cands[1]["model"] and
       [c["outcome"] for c in calls] == ["hang", "ok"] and 0.9 < r.t_total < 2.5,
       "no attempt_timeout_ms, deadline 3 s, hanging primary: %s answers after %.2f s "
       "(the primary's share: a third)" % (cands[1]["model"], r.t_total),
       (r.status, r.headers, calls))
    tag, text, cands = s.plan("openai", ["hang", "hang"], h)
    r = s.send("openai", text, h)
    calls = s.calls(tag)
    ok(r.status == 200 and r.h("x-lane-model") == cands[2]["model"] and
       [c["outcome"] for c in calls] == ["hang", "hang", "ok"] and 1.9 < r.t_total < 2.9,
       "two hanging candidates: the third answers after %.2f s (a third, then half of the "
       "rest)" % r.t_total, (r.status, r.headers, calls))


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAHnOcQAAAAABJRU5ErkJggg=="


def tools_across(s, hx):
    """A conversation with a system prompt, an image, tool definitions, a
    tool call and its result, sent by an OpenAI client to an Anthropic model
    and by an Anthropic client to an OpenAI model, whole and streamed: the
    provider gets each piece in its own format (the fake checks their
    shapes), and the model's tool call comes back in the client's."""
    gw = s.gw
    weather = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    for stream in (False, True):
        tag = s.tag()
        body = {"model": "gpt-4o", "tool_choice": "auto", "stream": stream, "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is the weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_abc", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "12C, clouds"},
            {"role": "user", "content": tag + " and in Paris? call:get_weather"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                                                       "description": "Weather in a city",
                                                       "parameters": weather}}]}
        r = gw.request("POST", "/v1/chat/completions", body, hx, stream=stream)
        s.book(r, stream=stream)
        calls = s.calls(tag)
        got = calls[0] if calls else {}
        if stream:
            args, names, finish = "", [], None
            for _, data in r.events:
                if data == "[DONE]":
                    continue
                ch = json.loads(data)
                for c in ch.get("choices", []):
                    for tc in (c.get("delta") or {}).get("tool_calls") or []:
                        if (tc.get("function") or {}).get("name"):
                            names.append(tc["function"]["name"])
                        args += (tc.get("function") or {}).get("arguments") or ""
                    finish = c.get("finish_reason") or finish
            answer = (names, json.loads(args or "null"), finish)
        else:
            msg = ((r.json or {}).get("choices") or [{}])[0]
            tc = ((msg.get("message") or {}).get("tool_calls") or [{}])[0]
            fn = tc.get("function") or {}
            answer = ([fn.get("name")], json.loads(fn.get("arguments") or "null"),
                      msg.get("finish_reason"))
        ok(r.status == 200 and got.get("format") == "anthropic" and got.get("system") and
           got.get("tools") == ["get_weather"] and got.get("images") == 1 and
           got.get("tool_results") == ["call_abc"] and
           answer == (["get_weather"], {"city": tag}, "tool_calls"),
           "OpenAI client -> Anthropic model%s: system, image, tools, the tool call and its result "
           "arrive as Anthropic blocks; the model's tool call comes back as tool_calls"
           % (", streamed" if stream else ""), (r.status, r.raw[:300], calls, answer))
    for stream in (False, True):
        tag = s.tag()
        body = {"model": "claude-x", "max_tokens": 300, "stream": stream,
                "system": [{"type": "text", "text": "Be terse."}],
                "tools": [{"name": "get_weather", "description": "Weather in a city",
                           "input_schema": weather}],
                "tool_choice": {"type": "any"},
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is the weather here?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                     "data": PNG}}]},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_abc", "name": "get_weather",
                         "input": {"city": "Oslo"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_abc", "content": "12C"},
                        {"type": "text", "text": tag + " and in Paris? call:get_weather"}]}]}
        r = gw.request("POST", "/v1/messages", body, None, stream=stream)
        s.book(r, stream=stream)
        calls = s.calls(tag)
        got = calls[0] if calls else {}
        if stream:
            names, partial, stop = [], "", None
            for name, data in r.events:
                ev = json.loads(data)
                if ev.get("type") == "content_block_start" and \
                        ev["content_block"].get("type") == "tool_use":
                    names.append(ev["content_block"]["name"])
                elif ev.get("type") == "content_block_delta" and \
                        ev["delta"].get("type") == "input_json_delta":
                    partial += ev["delta"]["partial_json"]
                elif ev.get("type") == "message_delta":
                    stop = ev["delta"].get("stop_reason")
            answer = (names, json.loads(partial or "null"), stop)
        else:
            blocks = [b for b in (r.json or {}).get("content", []) if b.get("type") == "tool_use"]
            answer = ([b.get("name") for b in blocks], blocks[0].get("input") if blocks else None,
                      (r.json or {}).get("stop_reason"))
        ok(r.status == 200 and got.get("format") == "openai" and
           got.get("tools") == ["get_weather"] and got.get("images") == 1 and
           got.get("tool_results") == ["toolu_abc"] and
           answer == (["get_weather"], {"city": tag}, "tool_use"),
           "Anthropic client -> OpenAI model%s: system, image, tools, the tool_use and its "
           "tool_result arrive in OpenAI's shape; the model's tool call comes back as a tool_use "
           "block" % (", streamed" if stream else ""), (r.status, r.raw[:300], calls, answer))


def splice_bodies(s):
    """Same-format providers get the client's bytes with the top-level
    model replaced: a nested "model" is left alone, a missing one is added,
    a key written with escapes goes the parsed way; every other member
    arrives, in order."""
    cases = [
        ("nested model first", '{"metadata": {"model": "keep-me"}, "model": "gpt-4o", '
         '"messages": [{"role": "user", "content": "%s hi"}]}', ["metadata", "model", "messages"]),
        ("no model", '{ "messages" : [ {"role":"user","content":"%s hi"} ] , "user":"u1" }',
         ["model", "messages", "user"]),
        ("escaped key", '{"mod\\u0065l": "gpt-4o", "messages": [{"role": "user", '
         '"content": "%s hi"}], "metadata": {"model": "keep-me"}}', ["model", "messages", "metadata"]),
        ("spaces and a string with braces", '{\n  "messages": [{"role": "user", "content": '
         '"%s {\\"model\\": \\"x\\"} ]"}],\n  "model"  :  "gpt-4o"\n}', ["messages", "model"]),
    ]
    for name, tmpl, keys in cases:
        tag = s.tag()
        r = s.gw.request("POST", "/v1/chat/completions", (tmpl % tag).encode())
        s.book(r)
        calls = s.calls(tag)
        ok(r.status == 200 and len(calls) == 1 and calls[0]["model"] == "gpt-5-nano" and
           calls[0]["keys"] == keys and
           (calls[0]["metadata"] in (None, {"model": "keep-me"})),
           "forwarded body, %s: the model replaced, members %s in order" % (name, keys),
           (r.status, r.raw[:200], calls))


def retries(s):
    """retry: 2 attempts, backoff 50 ms (to 200): the same model is called
    again on 429/5xx before the next candidate, within its share."""
    h = {"x-lane-field-tier": "pro"}
    def run(faults):
        tag, text, cands = s.plan("openai", faults, h)
        r = s.send("openai", text, h)
        return r, s.calls(tag), cands
    r, calls, cands = run(["500x1"])
    ok(r.status == 200 and r.h("x-lane-model") == cands[0]["model"] and
       r.h("x-lane-fallbacks") == "0" and [c["outcome"] for c in calls] == ["500", "ok"] and
       all(c["model"] == cands[0]["id"] for c in calls),
       "retry: one 500 from the primary, then its answer (2 calls, no fallback)", (r.headers, calls))
    r, calls, cands = run(["429x1ra300"])
    ok(r.status == 200 and r.h("x-lane-model") == cands[0]["model"] and
       [c["outcome"] for c in calls] == ["429", "ok"] and r.t_total >= 0.3,
       "retry: a 429 with retry-after-ms 300 is retried after %.2f s" % r.t_total,
       (r.headers, calls))
    r, calls, cands = run(["500"])
    ok(r.status == 200 and r.h("x-lane-model") == cands[1]["model"] and
       [c["outcome"] for c in calls] == ["500", "500", "500", "ok"] and
       r.h("x-lane-attempts").count("=http_5xx") == 3,
       "retry: a primary that keeps failing is called 3 times, then the fallback answers",
       (r.headers, calls))
    r, calls, cands = run(["429x1ra9000"])
    ok(r.status == 200 and r.h("x-lane-model") == cands[1]["model"] and
       [c["outcome"] for c in calls] == ["429", "ok"] and r.t_total < 2.0,
       "retry: a retry-after past max_retry_after_ms (9 s): the fallback at once",
       (r.headers, calls))
    r, calls, cands = run(["400"])
    ok(r.status == 400 and len(calls) == 1, "retry: a 400 is not retried", calls)
    text = s.gw.request("GET", "/metrics").raw.decode()
    ok(re.search(r'lane_gateway_retries_total\{[^}]*status="500"\} 3', text) is not None and
       re.search(r'lane_gateway_retries_total\{[^}]*status="429"\} 1', text) is not None,
       "lane_gateway_retries_total counts the retries by status", text[-1500:])


def shadow_suite(s, logpath):
    """Pro traffic is shadowed to muse (rule 8): a copy goes to muse, never
    delaying the answer, whole even when the client streams, and its
    outcome is logged under the decision's id with "shadow": true."""
    h = {"x-lane-field-tier": "pro"}
    tag, text, cands = s.plan("openai", [], h)
    r = s.send("openai", text, h, stream=True)
    calls = []
    for _ in range(40):
        calls = s.calls(tag)
        if any(c["provider"] == "inhouse" for c in calls):
            break
        time.sleep(0.05)
    sh = [c for c in calls if c["provider"] == "inhouse"]
    main = [c for c in calls if c["provider"] != "inhouse"]
    ok(r.status == 200 and stream_text(r, "openai").endswith(tag) and len(main) == 1 and
       len(sh) == 1 and sh[0]["model"] == "muse-support-v3" and sh[0]["stream"] is False,
       "a pro request is answered by %s and shadowed to muse (one whole call, though the client "
       "streamed)" % cands[0]["model"], calls)
    did = r.h("x-lane-decision-id")
    # a shadow that hangs does not hold the answer; with one worker and a
    # queue of one, a burst of them is dropped and counted, never waited for
    times = []
    for _ in range(4):
        tag, text, cands = s.plan("openai", [], h)
        t0 = time.monotonic()
        r = s.send("openai", text + " fault:muse-support-v3=hang", h)
        times.append(time.monotonic() - t0)
        ok(r.status == 200 and r.h("x-lane-model") == cands[0]["model"],
           "a request whose shadow hangs is answered by %s in %.2f s" % (cands[0]["model"], times[-1]))
    time.sleep(3.5)   # the hanging shadows time out (timeout_ms 1500)
    text = s.gw.request("GET", "/metrics").raw.decode()
    def total(name, label):
        return sum(float(m.group(1)) for m in re.finditer(
            r'^%s\{[^}]*%s[^}]*\} (\S+)$' % (name, re.escape(label)), text, re.M))
    ok(max(times) < 1.0, "no answer waited for its shadow (slowest %.2f s)" % max(times))
    ok(total("lane_gateway_shadows_total", 'result="ok"') >= 1 and
       total("lane_gateway_shadows_total", 'result="timeout"') >= 1 and
       total("lane_gateway_shadows_dropped_total", 'reason="queue_full"') >= 1 and
       total("lane_gateway_shadow_seconds_total", 'model="muse"') > 0,
       "metrics: shadows answered, timed out, and dropped with the queue full", text[-2500:])
    # the log: the shadow's outcome under the decision's id
    recs = []
    for _ in range(40):
        try:
            recs = [rec for _, _, rec in log_records(logpath)[1]]
        except (OSError, ValueError):
            recs = []
        if any(x.get("id") == did and x.get("shadow") for x in recs):
            break
        time.sleep(0.05)
    shadow_recs = [x for x in recs if x.get("id") == did and x.get("shadow")]
    ok(len(shadow_recs) == 1 and shadow_recs[0]["model"] == "muse" and
       shadow_recs[0]["final"] is False and shadow_recs[0]["status"] == 200 and
       shadow_recs[0]["cost"] > 0,
       "decision log: the shadow's outcome, \"shadow\": true, under decision %s" % did,
       shadow_recs or recs[-5:])


def config_errors(a, cfg, env):
    """A config the gateway cannot honour stops it at start, naming the key."""
    bad = [
        ("retry.on naming a 4xx", dict(cfg, retry={"attempts": 2, "on": [404]}),
         "retry.on: that status is not 429 or a 5xx"),
        ("retry.attempts past 10", dict(cfg, retry={"attempts": 11}), "retry: attempts 0 to 10"),
        ("a provider's retry", dict(cfg, providers=dict(cfg["providers"], openai=dict(
            cfg["providers"]["openai"], retry={"backoff_ms": 500, "max_backoff_ms": 100}))),
         "provider openai: retry: attempts 0 to 10, backoff_ms >= 0, max_backoff_ms >= backoff_ms"),
        ("shadow.concurrency negative", dict(cfg, shadow={"concurrency": -1}),
         "\"shadow\" is {\"concurrency\": 0 to 256"),
        ("limits.bodies_bytes under body_bytes",
         dict(cfg, limits={"body_bytes": 1000, "bodies_bytes": 10}),
         "limits: body_bytes > 0, bodies_bytes >= body_bytes"),
        ("limits.threads 0", dict(cfg, limits={"threads": 0}), "threads 1 to 1024"),
    ]
    for name, c, want in bad:
        path = os.path.join(a.out, "bad_config.json")
        with open(path, "w") as f:
            json.dump(c, f)
        p = subprocess.run([a.gateway, "-c", path], env=env, capture_output=True, text=True,
                           timeout=20)
        ok(p.returncode == 1 and want in p.stderr,
           "config with %s: the gateway stops at start, saying %r" % (name, want), p.stderr[-500:])


def raw_open(port, head, body=b""):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(head.encode() + body)
    return c


def raw_answer(c, limit=10.0):
    """The status line and the whole answer (until the server closes or a
    full Content-Length body is in)."""
    c.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            if sep and m and len(rest) >= int(m.group(1)):
                break
    except OSError:
        pass
    return data


def post_head(port, n, chunked=False, path="/v1/chat/completions"):
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            "x-lane-dry-run: 1\r\n%s\r\n" % (path, port, "Transfer-Encoding: chunked\r\n"
                                               if chunked else "Content-Length: %d\r\n" % n))


def per_ip(port, n=3):
    """limits.connections_per_ip 3 over two workers: three connections
    from 127.0.0.1 are served, a fourth is closed unanswered and counted;
    once one of the three closes, a new one is served."""
    held = []
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode())
        held.append(c)
    served = sum(raw_answer(c, 5.0).startswith(b"HTTP/1.1 200") for c in held)
    extra = raw_answer(raw_open(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 5.0)
    ok(served == n and extra == b"",
       "limits.connections_per_ip %d: %d kept connections served, the next one closed "
       "unanswered" % (n, n), (served, extra[:200]))
    held.pop().close()
    again = b""
    for i in range(50):   # the close is seen by the gateway within a moment
        again = raw_answer(raw_open(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5.0)
        if again.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    ok(again.startswith(b"HTTP/1.1 200"), "a connection closed makes room for another", again[:200])
    for c in held:   # room for the metrics request: the last close may not be seen yet
        c.close()
    held = []
    text = ""
    for i in range(50):
        text = raw_answer(raw_open(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5.0).decode("latin-1")
        if text.startswith("HTTP/1.1 200"):
            break
        time.sleep(0.1)
    m = re.search(r'lane_gateway_connections_refused_total\{limit="connections_per_ip"\} (\S+)', text)
    ok(m is not None and float(m.group(1)) >= 1,
       "lane_gateway_connections_refused_total{limit=\"connections_per_ip\"} counts it",
       text[-600:])
    for c in held:
        c.close()


def limits(port):
    """limits.body_bytes 64 KiB, limits.bodies_bytes 128 KiB."""
    gw = Gateway(port)
    # A Content-Length over the limit: 413 before any byte of the body.
    t0 = time.monotonic()
    c = raw_open(port, post_head(port, 20 * 1000 * 1000))
    a = raw_answer(c)
    c.close()
    ok(a.startswith(b"HTTP/1.1 413") and b"lane_too_large" in a and b"body_bytes" in a and
       time.monotonic() - t0 < 5,
       "Content-Length 20 MB over limits.body_bytes: 413 on the header, no body read", a[:300])
    # A chunked body that grows past it: 413 once it has.
    big = json.dumps({"model": "x", "messages": [{"role": "user", "content": "y" * 70000}]})
    c = raw_open(port, post_head(port, 0, chunked=True),
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big.encode()))
    a = raw_answer(c)
    c.close()
    ok(a.startswith(b"HTTP/1.1 413") and b"lane_too_large" in a,
       "a chunked body past limits.body_bytes: 413", a[:300])
    # Two uploads of 60,000 bytes each, stopped before their last byte, hold
    # 120,000 of the 131,072 bytes all bodies may take: a third is refused
    # with 503 and Retry-After, and served once the two are gone.
    part = b"{" + b" " * 59999
    held = [raw_open(port, post_head(port, 60001), part) for _ in range(2)]
    time.sleep(0.5)
    c = raw_open(port, post_head(port, 60001), part + b"}")
    a = raw_answer(c)
    c.close()
    ok(a.startswith(b"HTTP/1.1 503") and b"lane_busy" in a and b"Retry-After: 1" in a and
       b"x-should-retry: true" in a,
       "bodies held at once past limits.bodies_bytes: 503 lane_busy, Retry-After", a[:400])
    for h in held:
        h.close()
    time.sleep(0.5)
    r = gw.request("POST", "/v1/chat/completions", body_of("openai", "after"),
                   {"x-lane-dry-run": "1"})
    is_eq(r.status, 200, "the held bodies closed: their bytes are given back, a request is served")


def closed(c):
    """Whether the server closed connection c (read end or reset)."""
    c.setblocking(False)
    try:
        return c.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def slow_clients(port, n=600):
    """limits.header_timeout_ms and body_timeout_ms 1500: n slowloris
    connections (a request line, then a header line every 0.4 s) do not
    stop another client, and are cut once their headers are 1.5 s late; a
    body that stalls is cut too."""
    gw = Gateway(port)
    slow = []
    try:
        for i in range(n):
            slow.append(raw_open(port, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"))
        t0 = time.monotonic()
        served = None
        for k in range(4):
            for c in slow:
                try:
                    c.sendall(b"X-Slow-%d: 1\r\n" % k)
                except OSError:
                    pass
            if served is None:
                r = gw.request("POST", "/v1/chat/completions", body_of("openai", "meanwhile"),
                               {"x-lane-dry-run": "1"})
                served = (r.status, time.monotonic() - t0)
            time.sleep(0.4)
        ok(served is not None and served[0] == 200 and served[1] < 1.0,
           "%d slowloris connections trickling headers: another client is served (%s)"
           % (n, served))
        time.sleep(max(0.0, 2.4 - (time.monotonic() - t0)))
        cut = sum(1 for c in slow if closed(c))
        ok(cut == n, "the %d slowloris connections are cut once their headers are 1.5 s late "
           "(%d cut)" % (n, cut))
    finally:
        for c in slow:
            c.close()
    c = raw_open(port, post_head(port, 100), b"{\"model\": ")
    time.sleep(2.2)
    ok(closed(c), "a body stalled past limits.body_timeout_ms is cut")
    c.close()
    text = gw.request("GET", "/metrics").raw.decode()
    m1 = re.search(r'lane_gateway_client_timeouts_total\{phase="headers"\} (\S+)', text)
    m2 = re.search(r'lane_gateway_client_timeouts_total\{phase="body"\} (\S+)', text)
    ok(m1 and float(m1.group(1)) >= n and m2 and float(m2.group(1)) >= 1,
       "lane_gateway_client_timeouts_total counts them by phase", (m1 and m1.group(0),
                                                                   m2 and m2.group(0)))


def many_clients(s, n=1100):
    """n keep-alive clients connected at once (descriptors past 1024, which
    select() cannot watch), each sending a dry run on its open connection."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 200 and (hard == resource.RLIM_INFINITY or hard >= n + 200):
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + 200, hard))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n + 200:
            return skip("%d keep-alive clients at once" % n, "ulimit -n is below %d" % (n + 200))
    except (ImportError, ValueError, OSError) as e:
        return skip("%d keep-alive clients at once" % n, repr(e))
    port = s.gw.port
    body = json.dumps(body_of("openai", "many")).encode()
    conns, answered, errors = [], 0, []
    try:
        for _ in range(n):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        head = post_head(port, len(body))
        for c in conns:
            c.sendall(head.encode() + body)
        for c in conns:
            a = raw_answer(c, 30)
            if a.startswith(b"HTTP/1.1 200"):
                answered += 1
            elif len(errors) < 3:
                errors.append(a[:200])
        # the same connections once more: kept alive
        again = 0
        for c in conns[:50]:
            c.sendall(head.encode() + body)
            again += raw_answer(c, 30).startswith(b"HTTP/1.1 200")
    except OSError as e:
        errors.append(repr(e))
        again = 0
    finally:
        for c in conns:
            c.close()
    s.dry += answered + again
    ok(answered == n and again == 50,
       "%d keep-alive clients connected at once: %d answered, 50 of them again on the same "
       "connection (%d)" % (n, answered, again), errors)


def main_suite(a, port, fport, policy):
    s = Suite(Gateway(port), int(fport), a.lane, a.out)
    run(s, policy, a.no_sdk)
    metrics(s)
    return s


def log_records(path):
    """Every record of a decision log and its rotated files, in order."""
    d = os.path.dirname(path)
    base = os.path.basename(path)
    rotated = sorted(f for f in os.listdir(d) if f.startswith(base + "."))
    files = [os.path.join(d, f) for f in rotated] + [path]
    recs = []
    for f in files:
        with open(f) as fh:
            for i, line in enumerate(fh, 1):
                recs.append((f, i, json.loads(line)))
    return files, recs


def decision_log(a, s, path, policy):
    """The main gateway's decision log, after it stopped: rotated by size
    with no record lost, an outcome for every upstream attempt (the fakes
    failed many on purpose), one final outcome per forwarded decision."""
    try:
        files, recs = log_records(path)
    except (OSError, ValueError) as e:
        ok(False, "decision log: every line of every file is JSON", str(e))
        return
    ok(len(files) >= 3, "decision log: rotated by size (%d files)" % len(files))
    dec = [r for _, _, r in recs if r.get("type") == "decision"]
    outs = [r for _, _, r in recs if r.get("type") == "outcome"]
    is_eq(len(dec), int(s.m_decisions),
          "decision log: one record per decision, none lost across rotations")
    is_eq(len(set(r["id"] for r in dec)), len(dec), "decision log: decision ids are unique")
    ids = set(r["id"] for r in dec)
    ok(all(o["id"] in ids for o in outs), "decision log: every outcome joins a decision by id")
    answered = [o for o in outs if o["final"] and o["model"]]
    is_eq(sum(1 for o in outs if not o["final"]) + len(answered), int(s.m_attempts),
          "decision log: an outcome for every upstream attempt (failed ones, then the answer)")
    finals = {}
    for o in outs:
        if o["final"]:
            finals[o["id"]] = finals.get(o["id"], 0) + 1
    forwarded = [r for r in dec if r["status"] == "ok"]
    ok(all(finals.get(r["id"]) == 1 for r in forwarded),
       "decision log: exactly one final outcome per forwarded decision (%d)" % len(forwarded))
    kinds = set(o.get("error") for o in outs if not o["final"])
    ok({"http_5xx", "http_429", "timeout", "refused"} <= kinds,
       "decision log: failed attempts name their kind (%s)" % ", ".join(sorted(k for k in kinds if k)))
    p = subprocess.run([sys.executable, "tests/schema_check.py"] + files, capture_output=True,
                       text=True, timeout=60)
    ok(p.returncode == 0, "decision log: every record validates against "
       "doc/decision-log.schema.json", p.stderr[-2000:])
    p = subprocess.run([a.lane, "replay", policy] + files, capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"reproduced: (\d+) of (\d+)", p.stdout)
    ok(m is not None and m.group(2) == str(len(dec)) and "skipped" not in p.stderr,
       "decision log: lane replay reads every record of every file", p.stdout + p.stderr)
    print("# decision log: %d files, %d decisions, %d outcomes; replay: %s"
          % (len(files), len(dec), len(outs), m.group(0) if m else "?"))


def with_gateway(a, name, cfg, env, body):
    """Starts lane-gateway with config cfg (written to OUT/NAME.json), runs
    body(port), stops it, and checks its exit and its log."""
    cfgfile = os.path.join(a.out, name + ".json")
    with open(cfgfile, "w") as f:
        json.dump(cfg, f, indent=2)
    errlog = os.path.join(a.out, name + ".err")
    gwp = start([a.gateway, "-c", cfgfile, "--exit-after", "200"], env=env, log=errlog)
    line = first_line(gwp)
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    ok(m is not None, "lane-gateway (%s) listens on 127.0.0.1 (%s)" % (cfg["policy"], line))
    result = None
    try:
        if m:
            result = body(int(m.group(1)))
    finally:
        gwp.terminate()
        try:
            rc = gwp.wait(15)
        except subprocess.TimeoutExpired:
            gwp.kill()
            rc = gwp.wait(5)
    with open(errlog) as f:
        log = f.read()
    is_eq(rc, 0, "%s: lane-gateway stops cleanly on SIGTERM" % name)
    ok(not any(k in log for k in KEYS.values()), "%s: no API key appears in the gateway's log" % name)
    ok("Sanitizer" not in log, "%s: no sanitizer report" % name, log[-3000:])
    return result


def run(s, policy, no_sdk):
    gw = s.gw
    r = gw.request("GET", "/healthz")
    ok(r.status == 200 and isinstance(r.json, dict) and r.json.get("status") == "ok" and
       r.json.get("revision", "").startswith("lanec-") and r.json.get("generation") == 1 and
       r.json.get("reload_failures") == 0,
       "GET /healthz: ok, the revision served, generation 1, no reload failure", r.raw)

    # ---- dry run ----
    before = len(s.fake_log())
    r = s.dry_run("openai", "t000 what is my order status")
    d = r.json or {}
    is_eq((r.status, d.get("rule"), d.get("primary")), (200, 9, "openai.gpt_5_nano"),
          "dry run: a free-tier request gets rule 9, openai.gpt_5_nano")
    ok(len(d.get("candidates", [])) == 3 and r.h("x-lane-model") == d.get("primary") and
       r.h("x-lane-rule") == "9" and r.h("x-lane-dry-run") == "1",
       "dry run: three candidates and the x-lane-* headers", r.headers)
    is_eq(len(s.fake_log()), before, "dry run: no provider was called")
    ev = cost_from_eval(s.lane, policy, s.out, {"tier": "free", "input_tokens": 1000,
                                                 "max_output_tokens": 200})

    # ---- a plain request, each format ----
    for fmt in ("openai", "anthropic"):
        tag, text, cands = s.plan(fmt, [])
        r = s.send(fmt, text)
        s.book(r)
        want = "openai/gpt-5-nano: " + tag
        ok(r.status == 200 and answer_text(r, fmt) == want,
           "%s client, free tier: answered by openai/gpt-5-nano" % fmt, (r.status, r.raw[:300]))
        is_eq((r.h("x-lane-model"), r.h("x-lane-rule"), r.h("x-lane-fallbacks")),
              ("openai.gpt_5_nano", "9", "0"), "%s: x-lane-model, x-lane-rule, x-lane-fallbacks" % fmt)
        calls = s.calls(tag)
        is_eq([(c["provider"], c["model"], c["outcome"]) for c in calls],
              [("openai", "gpt-5-nano", "ok")], "%s: exactly one upstream call" % fmt)
        if fmt == "anthropic":
            ok(r.json and r.json.get("type") == "message" and
               r.json.get("usage", {}).get("output_tokens") == 200,
               "anthropic client, OpenAI model: the answer is an Anthropic message", r.raw[:300])
    if ev:
        ok(abs(float(r.h("x-lane-cost") or 0) - ev["cost"]) < 1e-12 and
           r.h("x-lane-cost-basis") == "usage",
           "x-lane-cost is the usage (1000 in, 200 out) at gpt-5-nano's prices: $%.9f" % ev["cost"],
           (r.h("x-lane-cost"), ev))
    else:
        ok(False, "lane eval for the cost cross-check")

    # ---- the official SDKs, while every model is healthy ----
    if not no_sdk:
        sdk(s)

    # ---- one fault on the primary: the next candidate answers ----
    kinds = {"500": "http_5xx", "503": "http_5xx", "429": "http_429", "drop": "connection",
             "malformed": "malformed", "notchat": "malformed", "hang": "timeout",
             "cut0": "connection"}
    for kind in kinds:
        tag, text, cands = s.plan("openai", [kind], {"x-lane-field-tier": "pro"})
        r = s.send("openai", text, {"x-lane-field-tier": "pro"})
        s.book(r)
        calls = s.calls(tag)
        want = [(cands[0]["provider"], cands[0]["id"], kind),
                (cands[1]["provider"], cands[1]["id"], "ok")]
        if (kind == "drop" and len(calls) == 3 and calls[1]["outcome"] == "drop" and
                calls[0]["conn"] != calls[1]["conn"]):
            # Closed without an answer on a kept connection, a call is sent
            # once more on a new one (libcurl: a kept connection the server
            # closed is told from a failed call that way); the new one is
            # dropped too, and the gateway moves on. One attempt.
            s.resent += 1
            calls = calls[1:]
        ok(r.status == 200 and r.h("x-lane-model") == cands[1]["model"] and
           r.h("x-lane-fallbacks") == "1" and
           answer_text(r, "openai") == "%s/%s: %s" % (cands[1]["provider"], cands[1]["id"], tag) and
           [(c["provider"], c["model"], c["outcome"]) for c in calls] == want,
           "fault %s on %s: served by the first fallback %s, once" % (kind, cands[0]["model"],
                                                                      cands[1]["model"]),
           (r.status, r.headers, r.raw[:200], calls))
        if kind == "hang":
            ok(1.1 < r.t_total < 3.0, "hang: the attempt is abandoned after attempt_timeout_ms "
               "(%.2f s)" % r.t_total)

    # ---- two faults: the second fallback answers ----
    tag, text, cands = s.plan("anthropic", ["500", "429"], {"x-lane-field-tier": "pro"})
    r = s.send("anthropic", text, {"x-lane-field-tier": "pro"})
    s.book(r)
    calls = s.calls(tag)
    ok(r.status == 200 and r.h("x-lane-model") == cands[2]["model"] and
       r.h("x-lane-fallbacks") == "2" and len(calls) == 3 and calls[2]["outcome"] == "ok",
       "500 then 429: the second fallback %s answers" % cands[2]["model"], (r.headers, calls))

    # ---- the canary: the in-house model is unreachable (refused) ----
    h = {"x-lane-field-task": "chat", "x-lane-field-tier": "pro"}
    user = None
    for i in range(300):
        rr = gw.request("POST", "/v1/chat/completions",
                        dict(body_of("openai", "probe"), user="user-%d" % i),
                        dict(h, **{"x-lane-dry-run": "1"}))
        s.dry += rr.status == 200
        if rr.json and rr.json.get("rule") == 5:
            user = "user-%d" % i
            cands = rr.json["candidates"]
            break
    if ok(user is not None, "a canary user (rule 5, sticky bucket < 5%%): %s" % user):
        tag = s.tag()
        b = dict(body_of("openai", tag + " hi"), user=user)
        r = gw.request("POST", "/v1/chat/completions", b, h)
        s.book(r)
        ok(cands[0]["model"] == "muse" and r.status == 200 and r.h("x-lane-model") == cands[1]["model"]
           and r.h("x-lane-fallbacks") == "1" and len(s.calls(tag)) == 1,
           "muse refuses the connection: %s answers" % cands[1]["model"], (cands, r.headers))

    # ---- nobody can serve: an error in the client's format ----
    for fmt in ("openai", "anthropic"):
        tag, text, cands = s.plan(fmt, ["500", "503"])   # the third is muse: refused
        r = s.send(fmt, text)
        s.book(r)
        calls = s.calls(tag)
        e = (r.json or {}).get("error") or {}
        shape = ("message" in e and e.get("code") == "lane_no_candidate") if fmt == "openai" else \
            (r.json or {}).get("type") == "error" and e.get("type") == "api_error"
        ok(r.status == 502 and shape and cands[2]["model"] == "muse" and len(calls) == 2 and
           all(c["model"] in e.get("message", "") for c in cands),
           "%s: every candidate failed -> 502 with a %s error object naming them" % (fmt, fmt),
           (r.status, r.raw[:400], calls))
        is_eq(r.h("x-should-retry"), "false",
              "%s: the 502 after the whole chain says x-should-retry: false" % fmt)

    # ---- the deadline ----
    tag, text, cands = s.plan("openai", ["hang"])
    r = s.send("openai", text, {"x-lane-deadline-ms": "700"})
    s.book(r)
    e = (r.json or {}).get("error") or {}
    ok(r.status == 504 and e.get("code") == "lane_deadline" and 0.6 < r.t_total < 2.0 and
       len(s.calls(tag)) == 1,
       "x-lane-deadline-ms 700 with a hanging primary: 504 after %.2f s, no fallback" % r.t_total,
       (r.status, r.raw[:300]))
    is_eq(r.h("x-should-retry"), "false", "the 504 says x-should-retry: false")

    # ---- the request's fault is passed through, not retried ----
    for fmt in ("openai", "anthropic"):
        tag, text, cands = s.plan(fmt, ["400"])
        r = s.send(fmt, text)
        s.book(r)
        ok(r.status == 400 and len(s.calls(tag)) == 1 and "injected 400" in r.raw.decode(),
           "%s: a provider's 400 is the client's answer, no fallback" % fmt, (r.status, r.raw))
        is_eq(r.h("x-lane-model"), cands[0]["model"],
              "%s: the provider's 400 names the model that refused (x-lane-model)" % fmt)

    # ---- the body forwarded in its own bytes, its model replaced ----
    splice_bodies(s)

    # ---- the gateway's own refusals ----
    r = gw.request("POST", "/v1/chat/completions", b"{not json")
    ok(r.status == 400 and "error" in (r.json or {}) and r.h("x-should-retry") == "false",
       "malformed body: 400, OpenAI error object, x-should-retry: false")
    # ---- what lane_request_from_json accepts, the gateway accepts ----
    r = s.dry_run("openai", "nul \u0000 inside")
    ok(r.status == 200, "a \\u0000 escape in a message: served (as lane_request_from_json reads it)",
       r.raw[:300])
    r = gw.request("POST", "/v1/chat/completions",
                   b'{"model": "a", "model": "b", "messages": [{"role": "user", "content": "x"}]}',
                   {"x-lane-dry-run": "1"})
    ok(r.status == 400 and "duplicate" in r.raw.decode() and "line 1" in r.raw.decode(),
       "a duplicate key: 400 naming it and where (one value decided, another forwarded, "
       "otherwise)", r.raw[:300])
    long_model, long_user = "m" * 3000, "u" * 4000
    r = gw.request("POST", "/v1/chat/completions",
                   dict(body_of("openai", "long"), model=long_model, user=long_user),
                   {"x-lane-dry-run": "1", "x-lane-field-tenant": "t" * 3000})
    s.dry += r.status == 200
    ok(r.status == 200, "a 3,000-byte model name, a 4,000-byte user and a 3,000-byte "
       "x-lane-field-tenant: served (the request's room is sized for them)", r.raw[:300])
    r = gw.request("POST", "/v1/chat/completions",
                   dict(body_of("openai", "long"), user="u" * 5000), {"x-lane-dry-run": "1"})
    ok(r.status == 400 and "4096" in r.raw.decode(),
       "a 5,000-byte user: 400 naming the limit of a request string (4096 bytes)", r.raw[:300])
    r = gw.request("POST", "/v1/messages", b"[]")
    ok(r.status == 400 and (r.json or {}).get("type") == "error",
       "non-object body: 400, Anthropic error object")
    r = gw.request("POST", "/v1/chat/completions", body_of("openai", "x"), {"x-lane-route": "nope"})
    ok(r.status == 400 and "unknown route" in r.raw.decode(), "x-lane-route: unknown route -> 400")
    r = gw.request("POST", "/v1/chat/completions", body_of("openai", "x"),
                   {"x-lane-field-images": "lots"})
    ok(r.status == 400 and "x-lane-field-images" in r.raw.decode(), "a bad x-lane-field-* -> 400")
    r = gw.request("POST", "/v1/messages", body_of("anthropic", "x"),
                   {"x-lane-field-input_tokens": "50000000"})
    ok(r.status == 503 and (r.json or {}).get("type") == "error" and "filtered" in r.raw.decode(),
       "a request no model fits: 503, Anthropic error object", r.raw[:300])

    # ---- cross-format ----
    hx = {"x-lane-field-tier": "enterprise", "x-lane-field-task": "code"}
    tag, text, cands = s.plan("openai", [], hx)
    r = s.send("openai", text, hx)
    s.book(r)
    calls = s.calls(tag)
    ok(r.status == 200 and r.h("x-lane-model") == "anthropic.claude_sonnet_4_5" and
       answer_text(r, "openai") == "anthropic/claude-sonnet-4-5: " + tag and
       r.json.get("object") == "chat.completion" and r.json["usage"]["prompt_tokens"] == 1000 and
       calls and calls[0]["format"] == "anthropic" and calls[0]["system"],
       "openai client -> Anthropic model: body and answer translated, system moved", (r.raw[:400], calls))

    # ---- tools, images, tool results: translated both ways ----
    tools_across(s, hx)

    # ---- streaming ----
    tag, text, cands = s.plan("openai", [])
    r = s.send("openai", text + " pace:250", stream=True)
    s.book(r, stream=True, has_usage=False)
    ok(r.status == 200 and not r.cut and stream_text(r, "openai") == "openai/gpt-5-nano: " + tag
       and r.events and r.events[-1][1] == "[DONE]",
       "openai stream passes through, ends with [DONE]", (r.status, r.events[:3], r.error))
    ok(r.t_first is not None and r.t_total - r.t_first > 1.0,
       "events arrive as they are sent (first after %.2f s, last after %.2f s)"
       % (r.t_first or -1, r.t_total))

    tag, text, cands = s.plan("anthropic", [], hx)
    r = s.send("anthropic", text, hx, stream=True)
    s.book(r, stream=True)
    names = [n for n, _ in r.events]
    ok(r.status == 200 and stream_text(r, "anthropic") == "anthropic/claude-sonnet-4-5: " + tag and
       names[:2] == ["message_start", "content_block_start"] and names[-1] == "message_stop",
       "anthropic stream passes through", names)

    tag, text, cands = s.plan("openai", [], hx)
    r = s.send("openai", text, hx, stream=True, usage=True)
    s.book(r, stream=True)
    last = json.loads(r.events[-2][1]) if len(r.events) > 1 else {}
    ok(r.status == 200 and stream_text(r, "openai") == "anthropic/claude-sonnet-4-5: " + tag and
       r.events[-1][1] == "[DONE]" and last.get("usage", {}).get("completion_tokens") == 200,
       "openai client streams from an Anthropic model: chunks, usage, [DONE]", r.events[-3:])

    tag, text, cands = s.plan("anthropic", [])
    r = s.send("anthropic", text, stream=True)
    s.book(r, stream=True)
    names = [n for n, _ in r.events]
    ok(r.status == 200 and stream_text(r, "anthropic") == "openai/gpt-5-nano: " + tag and
       names[0] == "message_start" and names[-1] == "message_stop",
       "anthropic client streams from an OpenAI model: events translated", names)

    for kind in ("500", "cut0"):
        tag, text, cands = s.plan("openai", [kind], {"x-lane-field-tier": "pro"})
        r = s.send("openai", text, {"x-lane-field-tier": "pro"}, stream=True)
        s.book(r, stream=True, has_usage=False)
        ok(r.status == 200 and r.h("x-lane-model") == cands[1]["model"] and not r.cut and
           stream_text(r, "openai").endswith(tag) and len(s.calls(tag)) == 2,
           "stream, %s before the first byte: falls back to %s" % (kind, cands[1]["model"]),
           (r.headers, s.calls(tag)))

    tag, text, cands = s.plan("openai", ["cut"])
    r = s.send("openai", text, stream=True)
    s.book(r, stream=True, has_usage=False)
    s.cut_streams = 1
    ok(r.status == 200 and r.cut and len(r.events) == 2 and len(s.calls(tag)) == 1,
       "stream cut after its first byte: the client's stream breaks, no second answer",
       (r.status, r.cut, r.events, s.calls(tag)))

    # ---- kept connections ----
    reuse(s)

    # ---- many at once ----
    concurrent(s)
    many_clients(s)

    # The circuit breaker is checked on a fresh gateway (ledger_and_breaker):
    # here the faults above have already failed most models a few times.


def metric_total(s, name, label=None):
    text = s.gw.request("GET", "/metrics").raw.decode()
    t = 0.0
    for line in text.splitlines():
        mm = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if mm and mm.group(1) == name and (label is None or label in (mm.group(2) or "")):
            t += float(mm.group(3))
    return t


def reuse(s, n=8, workers=2):
    """One client's requests in a row to one provider go on kept upstream
    connections: each of the gateway's workers (limits.threads) keeps its
    own, so the fake sees at most one TCP connection per worker, and the
    gateway's count of connections opened grows by at most as many."""
    label = 'provider="openai"'
    before = metric_total(s, "lane_gateway_upstream_connections_total", label)
    conns, good = [], 0
    for i in range(n):
        tag = s.tag()
        r = s.send("openai", tag + " kept")
        s.book(r)
        good += r.status == 200 and r.h("x-lane-model") == "openai.gpt_5_nano"
        conns += [c["conn"] for c in s.calls(tag)]
    opened = metric_total(s, "lane_gateway_upstream_connections_total", label) - before
    ok(good == n and len(conns) == n and len(set(conns)) <= workers and opened <= workers,
       "%d requests in a row to openai, %d workers: %d upstream connection(s) seen by the "
       "provider, %d opened (lane_gateway_upstream_connections_total)"
       % (n, workers, len(set(conns)), opened), conns)


def concurrent(s, n=24):
    tags, results = [], {}
    for i in range(n):
        tags.append(s.tag())

    def one(i, tag):
        words = [tag, "hi"]
        if i % 3 == 1:
            words.append("fault:gpt-5-nano=500")
        if i % 3 == 2:
            words.append("fault:gpt-5-nano=429")
        fmt = "openai" if i % 2 else "anthropic"
        results[tag] = (fmt, s.send(fmt, " ".join(words), stream=(i % 4 == 0)))

    threads = [threading.Thread(target=one, args=(i, t)) for i, t in enumerate(tags)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    log = s.fake_log()
    good = 0
    problems = []
    for tag in tags:
        fmt, r = results.get(tag, (None, None))
        calls = [c for c in log if c["tag"] == tag]
        oks = [c for c in calls if c["outcome"] == "ok"]
        text = stream_text(r, fmt) if r and r.events else answer_text(r, fmt) if r else None
        fb = int(r.h("x-lane-fallbacks") or -1) if r else -1
        tried = [a for a in ((r and r.h("x-lane-attempts")) or "").split(",") if a]
        upstream = [a for a in tried if not a.endswith("=refused")]
        if r and r.status == 200 and len(oks) == 1 and text == "%s/%s: %s" % (
                oks[0]["provider"], oks[0]["model"], tag) and fb == len(tried) and \
                len(upstream) == len(calls) - 1:
            good += 1
        else:
            problems.append((tag, r and r.status, text, calls))
    for streams in (False, True):   # answers' costs first, then the streams that reuse them
        for tag in tags:
            fmt, r = results.get(tag, (None, None))
            if r and bool(r.events) == streams:
                s.book(r, stream=streams, has_usage=fmt == "anthropic")
    is_eq(good, n, "%d concurrent requests (a third 500, a third 429 on gpt-5-nano): each "
          "answered once, by its own upstream call, fallbacks as logged" % n)
    if problems:
        print("#   " + repr(problems[:3]))


def sdk(s):
    nd = os.path.join(HERE, "node")
    if subprocess.run(["sh", "-c", "command -v node && command -v npm"],
                      capture_output=True).returncode != 0:
        for _ in range(8):
            skip("Node.js SDKs", "node or npm is not installed")
        return
    stamp = os.path.join(nd, "node_modules", ".package-lock.json")
    fresh = os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(
        os.path.join(nd, "package-lock.json"))
    why = ""
    if not fresh:
        for cmd in (["npm", "ci", "--offline", "--no-audit", "--no-fund"],
                    ["npm", "ci", "--no-audit", "--no-fund"]):
            try:
                p = subprocess.run(cmd, cwd=nd, capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                why = "npm ci timed out"
                continue
            if p.returncode == 0:
                fresh = True
                break
            lines = [l for l in p.stderr.splitlines() if "error" in l and "complete log" not in l]
            why = (lines or ["npm ci failed"])[0]
    if not fresh:
        for _ in range(8):
            skip("Node.js SDKs", "cannot install the SDKs (registry unreachable?): " + why)
        return
    try:
        p = subprocess.run(["node", "sdk_test.mjs", "http://127.0.0.1:%d" % s.gw.port],
                           cwd=nd, capture_output=True, text=True, timeout=90)
        res = json.loads(p.stdout or "{}")
    except (subprocess.TimeoutExpired, ValueError) as e:
        res, p = {}, None
        print("#   " + repr(e))
    if p is not None and p.returncode != 0:
        print("#   " + p.stderr.replace("\n", "\n#   ")[:3000])
    for name, want in (("openai", "openai/gpt-5-nano: sdk1"),
                       ("openai_stream", "anthropic/claude-sonnet-4-5: sdk2"),
                       ("anthropic", "anthropic/claude-sonnet-4-5: sdk3"),
                       ("anthropic_stream", "openai/gpt-5-nano: sdk4"),
                       ("openai_tools", "get_weather sdk5"),
                       ("openai_tools_stream", "get_weather sdk6"),
                       ("anthropic_tools", "get_weather sdk7 tool_use"),
                       ("anthropic_tools_stream", "get_weather sdk8 tool_use")):
        got = res.get(name, {})
        is_eq(got.get("text"), want, "Node SDK %s: %s" % (name.replace("_", " "), got.get("how", "")))
        s.decided += 1
        s.served += 1
        s.moves += int(got.get("fallbacks") or 0)
        s.refused += sum(1 for a in (got.get("attempts") or "").split(",") if a.endswith("=refused"))
        # openai's stream helper shows no headers: its model is the route's
        model = "anthropic.claude_sonnet_4_5" if name == "openai_tools_stream" else got.get("model")
        if got.get("cost") and not name.endswith("_stream"):   # a whole answer: its usage cost
            s.usage_cost[model] = float(got["cost"])
        s.charges.append(model)


def metrics(s):
    r = s.gw.request("GET", "/metrics")
    text = r.raw.decode()
    ok(r.status == 200 and "# TYPE lane_gateway_decisions_total counter" in text,
       "GET /metrics serves Prometheus text")
    m = {}
    for line in text.splitlines():
        mm = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if mm:
            m.setdefault(mm.group(1), []).append((mm.group(2) or "", float(mm.group(3))))

    def total(name, label=None):
        return sum(v for l, v in m.get(name, []) if label is None or label in l)

    is_eq(total("lane_gateway_decisions_total"), s.decided, "metrics: decisions")
    is_eq(total("lane_gateway_dry_runs_total"), s.dry, "metrics: dry runs")
    ok(total("lane_gateway_shadows_dropped_total", 'reason="off"') >= 1,
       "metrics: shadows decided with shadow.concurrency 0 are counted as dropped, reason off")
    is_eq(total("lane_gateway_fallbacks_total"), s.moves, "metrics: fallbacks taken")
    log = s.fake_log()
    count = lambda *kinds: sum(1 for e in log if e["outcome"] in kinds)
    is_eq(total("lane_gateway_provider_errors_total", 'kind="http_5xx"'), count("500", "503"),
          "metrics: 5xx errors, as the fakes counted them")
    is_eq(total("lane_gateway_provider_errors_total", 'kind="http_429"'), count("429"),
          "metrics: 429s")
    is_eq(total("lane_gateway_provider_errors_total", 'kind="timeout"'), count("hang"),
          "metrics: timeouts")
    is_eq(total("lane_gateway_provider_errors_total", 'kind="refused"'), s.refused,
          "metrics: refused connections (in-house model)")
    is_eq(total("lane_gateway_stream_errors_total"), 1, "metrics: one stream broke off")
    is_eq(total("lane_gateway_served_total"), s.served, "metrics: answers")
    is_eq(total("lane_gateway_attempts_total"), len(log) + s.refused - s.resent,
          "metrics: upstream attempts = calls the fakes saw + refused connections - calls "
          "libcurl sent again on a new connection")
    spend = total("lane_gateway_spend_dollars_total")
    ok(abs(spend - s.spend()) < 1e-9, "metrics: spend $%.9f = the answers' costs $%.9f"
       % (spend, s.spend()))
    ok(count("invalid", "bad_key") == 0, "the fakes saw no invalid body and no wrong key")
    print("# requests: %d to the gateway's API (%d dry runs), %d upstream calls, %d fallbacks"
          % (s.decided + s.dry, s.dry, len(log), s.moves))
    s.m_attempts = total("lane_gateway_attempts_total")
    s.m_decisions = total("lane_gateway_decisions_total") + total("lane_gateway_no_match_total")
    is_eq(total("lane_gateway_log_dropped_total"), 0, "metrics: no decision-log record dropped")


# ---- budgets and the breaker, on a fresh gateway (t_gateway.lane) ----

LEDGER_POLICY = "gateway/t_gateway.lane"
NANO = 10 ** 9


def policy_models(path):
    """The models of a policy file as written: lane name -> provider, id
    and prices in nano-dollars per token (input, output, cached input),
    read from the $/Mtok figures in the text -- not from lane."""
    with open(path) as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    out = {}
    for name, body in re.findall(r"\bmodel\s+(\w+)\s*\{([^}]*)\}", text):
        def prop(key, pat):
            m = re.search(r"\b%s\s+%s" % (key, pat), body)
            return m.group(1) if m else None
        price = {k: Fraction(v) * 1000 if v is not None else None   # $/Mtok -> n$/token
                 for k in ("input", "output", "cached_input")
                 for v in [prop(k, r"\$([0-9.]+)/Mtok")]}
        out[name] = dict(price, provider=prop("provider", r'"([^"]*)"'),
                         id=prop("name", r'"([^"]*)"'))
    return out


def usage_nanos(model, usage):
    """Cost of usage (input tokens, output tokens, cached of the input) on
    a model, as the gateway README defines it: uncached input, cached input
    (at the input price when none is declared) and output at the model's
    prices. Exact; every figure here is a whole number of nano-dollars."""
    n_in, n_out, n_cached = usage
    cached_price = model["cached_input"] if model["cached_input"] is not None else model["input"]
    c = (n_in - n_cached) * model["input"] + n_cached * cached_price + n_out * model["output"]
    if c.denominator != 1:
        raise ValueError("not a whole number of nano-dollars: %s" % c)
    return int(c)


def fnv1a64(key):
    """A string budget key's hash, as lane_budget_key_hash computes it:
    FNV-1a 64 of its bytes (0 becomes 1), as the snapshot prints it."""
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return "%016x" % (h or 1)


def dollars(nanos):
    return "%d.%09d" % divmod(nanos, NANO)


def admin_state(s):
    r = s.gw.request("GET", "/admin/state")
    return r.json if r.status == 200 and isinstance(r.json, dict) else None


def budget_spend(state, budget):
    """key hash -> nano-dollars spent, from GET /admin/state."""
    for b in (state or {}).get("budgets", []):
        if b.get("budget") == budget:
            return {k["key_hash"]: int(round(k["spent"] * NANO)) for k in b["keys"]}
    return None


def breaker_state(state, model):
    """A model's breaker as the snapshot says (a model with nothing live is
    left out of it: closed)."""
    if state is None:
        return None
    for m in state.get("models", []):
        if m.get("model") == model:
            return m.get("state")
    return "closed"


def ledger_and_breaker(s):
    models = policy_models(LEDGER_POLICY)
    ok(set(models) >= {"alpha", "beta", "gamma", "delta"} and
       all(models[m]["input"] is not None and models[m]["output"] is not None for m in models),
       "t_gateway.lane: prices of alpha, beta, gamma and delta read from the file",
       models)
    st = admin_state(s)
    ok(st is not None and budget_spend(st, "tenant_daily") == {} and
       budget_spend(st, "team_monthly") == {},
       "GET /admin/state: a runtime snapshot, no spend yet", st)
    ledger(s, models)
    breaker(s, models)


def ledger(s, models):
    # tenant, team, client format, stream, usage the fake reports (input,
    # output, cached of the input), the upstream calls as (model, outcome)
    # -- a fault is injected where the outcome is not "ok" -- and the status.
    plan = [
        ("acme", "red", "openai", False, (1000, 200, 0), [("alpha", "ok")], 200),
        ("acme", "red", "anthropic", False, (1500, 300, 1000), [("alpha", "ok")], 200),
        # the primary fails: only the fallback's answer is charged
        ("globex", "red", "openai", False, (1200, 250, 200), [("alpha", "500"), ("beta", "ok")],
         200),
        # both fail: nothing is charged
        ("globex", "red", "anthropic", False, (9000, 900, 0),
         [("alpha", "500"), ("beta", "503")], 502),
        # a stream: its usage comes last, and that is what is charged
        ("hooli", "blue", "openai", True, (800, 100, 0), [("alpha", "ok")], 200),
        # the provider refuses the request (400, passed to the client): nothing
        ("initech", "blue", "openai", False, (5000, 500, 0), [("alpha", "400")], 400),
        # no tenant: the team's budget only
        (None, "blue", "openai", False, (2000, 400, 0), [("alpha", "ok")], 200),
    ]
    want = {"tenant_daily": {}, "team_monthly": {}}
    problems = []
    for tenant, team, fmt, stream, usage, expect, status in plan:
        tag = s.tag()
        words = [tag, "please", "help", "usage:%d:%d:%d" % usage]
        words += ["fault:%s=%s" % (models[m]["id"], k) for m, k in expect if k != "ok"]
        h = {"x-lane-field-team": team}
        if tenant:
            h["x-lane-field-tenant"] = tenant
        r = s.send(fmt, " ".join(words), h, stream=stream, usage=stream)
        answerer = expect[-1][0] if expect[-1][1] == "ok" else None
        cost = usage_nanos(models[answerer], usage) if answerer else 0
        if expect[-1][1] == "400":   # a refusal passed on names the model that refused
            answerer = expect[-1][0]
        for budget, key in (("tenant_daily", tenant), ("team_monthly", team)):
            if key:
                want[budget][key] = want[budget].get(key, 0) + cost
        calls = [(c["model"], c["outcome"]) for c in s.calls(tag)]
        good = (r.status == status and r.h("x-lane-rule") == "2" and
                r.h("x-lane-model") == answerer and
                calls == [(models[m]["id"], k) for m, k in expect])
        if good and cost and not stream:   # a stream's header is the expected cost
            good = r.h("x-lane-cost") == dollars(cost) and r.h("x-lane-cost-basis") == "usage"
        if good and stream:
            good = not r.cut and stream_text(r, fmt) == "openai/alpha-1: " + tag
        if not good:
            problems.append((tenant, fmt, r.status, r.headers, calls, r.raw[:200]))
    ok(not problems, "%d requests on route spend answered as planned (x-lane-cost = the "
       "usage at the policy's prices)" % len(plan), problems)

    # A tenant that only asked for a decision.
    r = s.dry_run("openai", "how much", {"x-lane-field-tenant": "umbrella",
                                         "x-lane-field-team": "green"})
    ok(r.status == 200 and r.json and r.json.get("primary") == "alpha", "dry run for umbrella")

    st = admin_state(s)
    for budget, keys in (("tenant_daily", ("acme", "globex", "hooli", "initech", "umbrella")),
                         ("team_monthly", ("red", "blue", "green"))):
        spent = budget_spend(st, budget) or {}
        for key in keys:
            got, exp = spent.get(fnv1a64(key), 0), want[budget].get(key, 0)
            is_eq(got, exp, "budget %s, key %s: spent %d n$ ($%s)" % (budget, key, exp,
                                                                      dollars(exp)))
        is_eq(sorted(spent), sorted(fnv1a64(k) for k, v in want[budget].items() if v),
              "budget %s: only keys that were answered are charged" % budget)


def breaker(s, models):
    gamma, delta = models["gamma"]["id"], models["delta"]["id"]
    h = {"x-lane-route": "breaker"}
    st = admin_state(s)
    n = (st or {}).get("options", {}).get("breaker_failures", 0)
    if not ok(n >= 2, "breaker: the runtime opens a breaker after %d failures "
              "(GET /admin/state options)" % n, st):
        return

    def primary():
        r = s.dry_run("openai", "who", h)
        return [c["model"] for c in (r.json or {}).get("candidates", [])]

    # The request's own fault (400) does not count.
    tag = s.tag()
    r = s.send("openai", "%s hi fault:%s=400" % (tag, gamma), h)
    ok(r.status == 400 and [c["model"] for c in s.calls(tag)] == [gamma] and
       breaker_state(admin_state(s), "gamma") == "closed",
       "breaker: a 400 from gamma goes to the client and is not a failure", (r.status, r.raw))

    log = []
    for i in range(1, n + 1):
        before = primary()
        tag = s.tag()
        r = s.send("openai", "%s hi fault:%s=500" % (tag, gamma), h)
        calls = [(c["model"], c["outcome"]) for c in s.calls(tag)]
        log.append((i, before, r.status, r.h("x-lane-model"), calls,
                    breaker_state(admin_state(s), "gamma")))
    fine = all(b[:1] == ["gamma"] and st_ == 200 and m == "delta" and
               c == [(gamma, "500"), (delta, "ok")] for _, b, st_, m, c, _ in log)
    ok(fine, "breaker: each of %d requests failing on gamma was decided for gamma first, "
       "tried there once and answered by delta" % n, log)
    is_eq([x[5] for x in log[:n - 1]], ["closed"] * (n - 1),
          "breaker: gamma's breaker stays closed through failures 1 .. %d" % (n - 1))
    ok(log[-1][1][:1] == ["gamma"] and log[-1][4][:1] == [(gamma, "500")],
       "breaker: after %d failures gamma is still chosen and tried (request %d called it)"
       % (n - 1, n), log[-1])
    is_eq(log[-1][5], "open", "breaker: failure %d opens gamma's breaker" % n)
    cands = primary()
    tag = s.tag()
    r = s.send("openai", "%s hi" % tag, h)
    calls = [(c["model"], c["outcome"]) for c in s.calls(tag)]
    ok(cands == ["delta"] and r.status == 200 and r.h("x-lane-model") == "delta" and
       calls == [(delta, "ok")] and not r.h("x-lane-attempts"),
       "breaker: once open, gamma is not a candidate: the next request goes to delta only",
       (cands, r.status, r.headers, calls))


if __name__ == "__main__":
    main()

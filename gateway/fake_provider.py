#!/usr/bin/env python3
"""fake_provider.py -- OpenAI- and Anthropic-style model APIs for testing
lane-gateway, on 127.0.0.1 only, standard library only.

    python3 fake_provider.py [--lifetime SECONDS] [--key PROVIDER=KEY]...

Prints its port on the first line of stdout, serves until the lifetime
ends (default 120 s), then exits by itself.

  POST /PROVIDER/v1/chat/completions   OpenAI Chat Completions
  POST /PROVIDER/v1/messages           Anthropic Messages
  GET  /_log                           every call so far, as JSON (each with
                                       "conn", the client's address and port:
                                       calls on one kept connection share it)

A call is checked like the real API would (key, required fields, message
roles) and answered "PROVIDER/MODEL: TAG", TAG being the first word of the
last user message, with usage of 1000 input and 200 output tokens (unless
a usage: word says otherwise). Words of that message steer it:

  fault:MODEL=KIND   when MODEL is asked: 500, 503, 429, 400 (HTTP
                     errors in the API's format), hang (answer nothing
                     for 30 s), drop (close without answering),
                     500xN, 503xN, 429xN (the first N calls of this
                     message's tag to MODEL get that error, later ones
                     an answer; 429x1ra300 adds retry-after-ms: 300),
                     malformed (200 with broken JSON), notchat (200 with
                     JSON that is no chat answer), cut0 (200 headers,
                     then close before any byte of body), cut (a stream
                     sends two events, waits, then closes mid-stream)
  pace:MS            pause between stream events (default 20)
  call:NAME          answer with a call of tool NAME, arguments {"city": TAG}
                     (whole or streamed, in the API's format)
  usage:IN:OUT[:CACHED]  the usage to report: IN input tokens (CACHED of
                     them cache reads, default 0) and OUT output tokens.
                     OpenAI: prompt_tokens IN, prompt_tokens_details.
                     cached_tokens CACHED; Anthropic: input_tokens IN -
                     CACHED, cache_read_input_tokens CACHED.
"""
import argparse
import json
import os
import re
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

LOG = []
LOG_LOCK = threading.Lock()
SEEN = {}          # (tag, model) -> calls so far, for the 500xN faults
KEYS = {}
USAGE_IN, USAGE_OUT = 1000, 200


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def check_openai(body):
    if not isinstance(body.get("model"), str):
        return "model is required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages must be a non-empty array"
    calls = set()
    for m in msgs:
        if m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            return "bad role %r" % m.get("role")
        c = m.get("content")
        if isinstance(c, list):
            for part in c:
                t = part.get("type")
                if t == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    if not (url.startswith("data:image/") and ";base64," in url) and \
                            not url.startswith("http"):
                        return "image_url.url must be a data: URL or http(s)"
                elif t != "text" or not isinstance(part.get("text"), str):
                    return "content part of type %r" % t
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            if tc.get("type") != "function" or not isinstance(fn.get("name"), str):
                return "tool_calls: type function with a name"
            try:
                json.loads(fn.get("arguments", ""))
            except ValueError:
                return "tool_calls: arguments must be JSON text"
            calls.add(tc.get("id"))
        if m.get("role") == "tool" and m.get("tool_call_id") not in calls:
            return "a tool message must answer a tool call before it"
    for t in body.get("tools") or []:
        fn = t.get("function") or {}
        if t.get("type") != "function" or not isinstance(fn.get("name"), str) or \
                not isinstance(fn.get("parameters", {}), dict):
            return "tools: type function with a name and parameters"
    if "max_tokens" in body and not isinstance(body["max_tokens"], int):
        return "max_tokens must be an integer"
    return None


def check_anthropic(body):
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: at least one message is required"
    uses = set()
    for m in msgs:
        if m.get("role") not in ("user", "assistant"):
            return "messages: Unexpected role %r" % m.get("role")
        c = m.get("content")
        if isinstance(c, list):
            if not c:
                return "messages: content must not be empty"
            for b in c:
                t = b.get("type")
                if t == "tool_use":
                    if not isinstance(b.get("input"), dict) or not b.get("id") or not b.get("name"):
                        return "tool_use: id, name and an input object"
                    uses.add(b["id"])
                elif t == "tool_result":
                    if b.get("tool_use_id") not in uses:
                        return "tool_result: tool_use_id must answer a tool_use before it"
                elif t == "image":
                    src = b.get("source") or {}
                    if src.get("type") == "base64":
                        if not src.get("media_type", "").startswith("image/") or not src.get("data"):
                            return "image: base64 source with media_type and data"
                    elif src.get("type") != "url" or not src.get("url"):
                        return "image: a base64 or url source"
                elif t != "text" or not isinstance(b.get("text"), str):
                    return "content block of type %r" % t
    for t in body.get("tools") or []:
        if not isinstance(t.get("name"), str) or not isinstance(t.get("input_schema"), dict):
            return "tools: name and input_schema"
    if "system" in body and not isinstance(body["system"], (str, list)):
        return "system: must be a string or blocks"
    return None


def features(fmt, body):
    """What the call carried besides text: tool names, images, tool results."""
    tools = [((t.get("function") or {}).get("name") if fmt == "openai" else t.get("name"))
             for t in body.get("tools") or []]
    images, results = 0, []
    for m in body.get("messages") or []:
        if fmt == "openai" and m.get("role") == "tool":
            results.append(m.get("tool_call_id"))
        c = m.get("content")
        for b in c if isinstance(c, list) else []:
            images += b.get("type") in ("image", "image_url")
            if b.get("type") == "tool_result":
                results.append(b.get("tool_use_id"))
    return {"tools": tools, "images": images, "tool_results": results}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/_log":
            with LOG_LOCK:
                data = json.dumps(LOG).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        parts = self.path.strip("/").split("/")
        if len(parts) < 3:
            return self.send_error(404)
        prov, api = parts[0], "/".join(parts[2:])
        fmt = "openai" if api == "chat/completions" else "anthropic" if api == "messages" else None
        if fmt is None:
            return self.send_error(404)
        entry = {"provider": prov, "format": fmt, "model": None, "tag": None, "outcome": None,
                 "conn": "%s:%d" % self.client_address[:2]}   # the TCP connection it came on
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.finish_call(entry, "invalid", lambda: self.error(fmt, 400, "not JSON"))
        entry["model"] = body.get("model")
        entry["keys"] = list(body.keys())           # top-level members, in order
        entry.update(features(fmt, body))
        entry["metadata"] = body.get("metadata")
        entry["stream"] = bool(body.get("stream"))
        entry["system"] = "system" in body
        msgs = body.get("messages") or []
        last = next((m for m in reversed(msgs) if isinstance(m, dict) and m.get("role") == "user"), {})
        words = text_of(last.get("content")).split()
        entry["tag"] = words[0] if words else ""
        want = KEYS.get(prov)
        got = (self.headers.get("Authorization", "")[7:] if fmt == "openai"
               else self.headers.get("x-api-key", ""))
        if want is not None and got != want:
            return self.finish_call(entry, "bad_key", lambda: self.error(fmt, 401, "bad key"))
        if fmt == "anthropic" and not self.headers.get("anthropic-version"):
            return self.finish_call(entry, "invalid",
                                    lambda: self.error(fmt, 400, "anthropic-version required"))
        why = check_openai(body) if fmt == "openai" else check_anthropic(body)
        if why:
            return self.finish_call(entry, "invalid", lambda: self.error(fmt, 400, why))
        fault, pace, usage = None, 0.02, (USAGE_IN, USAGE_OUT, 0)
        for w in words:
            if w.startswith("fault:") and "=" in w:
                model, kind = w[6:].split("=", 1)
                if model == entry["model"]:
                    fault = kind
            elif w.startswith("pace:"):
                pace = int(w[5:]) / 1000.0
            elif w.startswith("usage:"):
                n = [int(x) for x in w[6:].split(":")]
                usage = (n[0], n[1], n[2] if len(n) > 2 else 0)
        text = "%s/%s: %s" % (prov, entry["model"], entry["tag"])
        call = next((w[5:] for w in words if w.startswith("call:")), None)
        if call:   # answer with a call of tool CALL, arguments {"city": TAG}
            args = {"city": entry["tag"]}
            if entry["stream"]:
                return self.finish_call(entry, "ok", lambda: self.stream_call(
                    fmt, entry["model"], call, args, usage))
            return self.finish_call(entry, "ok", lambda: self.send_json(
                200, self.call_answer(fmt, entry["model"], call, args, usage)))
        m = re.match(r"^(429|500|503)x(\d+)(?:ra(\d+))?$", fault or "")
        if m:   # the first N calls of this tag to this model fail, then it answers
            key = (entry["tag"], entry["model"])
            with LOG_LOCK:
                SEEN[key] = SEEN.get(key, 0) + 1
                n = SEEN[key]
            if n <= int(m.group(2)):
                code, ra = int(m.group(1)), m.group(3)
                return self.finish_call(entry, m.group(1), lambda: self.error(
                    fmt, code, "injected " + m.group(1),
                    {"retry-after-ms": ra} if ra else None))
            fault = None
        if fault in ("500", "503", "429", "400"):
            code = int(fault)
            return self.finish_call(entry, fault, lambda: self.error(fmt, code, "injected " + fault))
        if fault == "hang":
            with LOG_LOCK:
                entry["outcome"] = "hang"
                LOG.append(entry)
            time.sleep(30)
            self.close_connection = True
            return
        if fault == "drop":
            return self.finish_call(entry, "drop", self.drop)
        if fault == "malformed":
            return self.finish_call(entry, "malformed", lambda: self.send_body(200, b'{"id": "x", "choi'))
        if fault == "notchat":
            return self.finish_call(entry, "notchat", lambda: self.send_json(200, {"hello": "world"}))
        if fault == "cut0":
            return self.finish_call(entry, "cut0", self.cut0)
        if entry["stream"]:
            incl = bool((body.get("stream_options") or {}).get("include_usage"))
            return self.finish_call(entry, "cut" if fault == "cut" else "ok",
                                    lambda: self.stream(fmt, entry["model"], text, pace,
                                                        fault == "cut", incl, usage))
        return self.finish_call(entry, "ok",
                                lambda: self.send_json(200, self.answer(fmt, entry["model"], text,
                                                                        usage)))

    # ---- answers ----
    def finish_call(self, entry, outcome, respond):
        with LOG_LOCK:
            entry["outcome"] = outcome
            LOG.append(entry)
        respond()

    def send_body(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, code, obj):
        self.send_body(code, json.dumps(obj).encode())

    def error(self, fmt, code, message, headers=None):
        if fmt == "openai":
            obj = {"error": {"message": message, "type": "fake_error", "param": None, "code": None}}
        else:
            obj = {"type": "error", "error": {"type": "api_error", "message": message}}
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def drop(self):
        self.close_connection = True
        self.connection.shutdown(2)

    def cut0(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "500")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    @staticmethod
    def usage_of(fmt, usage):
        n_in, n_out, n_cached = usage
        if fmt == "openai":
            u = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
            if n_cached:
                u["prompt_tokens_details"] = {"cached_tokens": n_cached}
            return u
        u = {"input_tokens": n_in - n_cached, "output_tokens": n_out}
        if n_cached:
            u["cache_read_input_tokens"] = n_cached
        return u

    @staticmethod
    def answer(fmt, model, text, usage):
        if fmt == "openai":
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": Handler.usage_of(fmt, usage)}
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": Handler.usage_of(fmt, usage)}

    @staticmethod
    def call_answer(fmt, model, name, args, usage):
        if fmt == "openai":
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": {
                        "role": "assistant", "content": None,
                        "tool_calls": [{"id": "call_fake1", "type": "function", "function": {
                            "name": name, "arguments": json.dumps(args)}}]},
                        "finish_reason": "tool_calls"}],
                    "usage": Handler.usage_of(fmt, usage)}
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Let me look."},
                            {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": args}],
                "stop_reason": "tool_use", "stop_sequence": None,
                "usage": Handler.usage_of(fmt, usage)}

    def stream_call(self, fmt, model, name, args, usage):
        """A streamed tool call: its arguments in two pieces."""
        text = json.dumps(args)
        halves = [text[:len(text) // 2], text[len(text) // 2:]]
        if fmt == "openai":
            events = [oa_chunk(model, {"role": "assistant", "content": None}),
                      oa_chunk(model, {"tool_calls": [{"index": 0, "id": "call_fake1",
                                                       "type": "function", "function": {
                                                           "name": name, "arguments": ""}}]})]
            events += [oa_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": h}}]})
                       for h in halves]
            events += [oa_chunk(model, {}, "tool_calls"),
                       oa_usage_chunk(model, self.usage_of(fmt, usage)), b"data: [DONE]\n\n"]
        else:
            events = [an_message_start(model, self.usage_of(fmt, usage)),
                      an_event("content_block_start", {
                          "type": "content_block_start", "index": 0,
                          "content_block": {"type": "tool_use", "id": "toolu_fake1",
                                            "name": name, "input": {}}})]
            events += [an_event("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": h}}) for h in halves]
            events += an_message_end("tool_use", usage[1])
        self.send_events(events)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_events(self, events, pace=0.0, cut=False):
        """A 200 event stream of events, pace seconds apart; cut: the
        connection is closed after two of them instead."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i, e in enumerate(events):
                if cut and i == 2:
                    time.sleep(max(pace, 0.3))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.chunk(e)
                if pace:
                    time.sleep(pace)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def stream(self, fmt, model, text, pace, cut, include_usage, usage):
        pieces = [text[:len(text) // 3], text[len(text) // 3:2 * len(text) // 3], text[2 * len(text) // 3:]]
        if fmt == "openai":
            events = [oa_chunk(model, {"role": "assistant", "content": ""})]
            events += [oa_chunk(model, {"content": p}) for p in pieces]
            events.append(oa_chunk(model, {}, "stop"))
            if include_usage:
                events.append(oa_usage_chunk(model, self.usage_of(fmt, usage)))
            events.append(b"data: [DONE]\n\n")
        else:
            events = [an_message_start(model, self.usage_of(fmt, usage)),
                      an_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                       "content_block": {"type": "text", "text": ""}}),
                      an_event("ping", {"type": "ping"})]
            events += [an_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                        "delta": {"type": "text_delta", "text": p}})
                       for p in pieces]
            events += an_message_end("end_turn", usage[1])
        self.send_events(events, pace, cut)


def oa_chunk(model, delta, finish=None):
    """An OpenAI chat.completion.chunk event."""
    return b"data: " + json.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"


def oa_usage_chunk(model, usage):
    """OpenAI's last chunk when stream_options.include_usage is set."""
    return b"data: " + json.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
        "choices": [], "usage": usage}).encode() + b"\n\n"


def an_event(name, obj):
    """An Anthropic server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"


def an_message_start(model, usage):
    return an_event("message_start", {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": dict(usage, output_tokens=1)}})


def an_message_end(stop_reason, output_tokens):
    """The closing events of an Anthropic stream of one block."""
    return [an_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            an_event("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                       "usage": {"output_tokens": output_tokens}}),
            an_event("message_stop", {"type": "message_stop"})]


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120)
    ap.add_argument("--key", action="append", default=[])
    args = ap.parse_args()
    for kv in args.key:
        k, v = kv.split("=", 1)
        KEYS[k] = v
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    t = threading.Timer(args.lifetime, lambda: os._exit(0))
    t.daemon = True
    t.start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

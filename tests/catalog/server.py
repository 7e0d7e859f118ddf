#!/usr/bin/env python3
"""server.py -- the HTTP server behind tests/catalog/fetch.sh.

Python 3 standard library only. Binds 127.0.0.1 on a free port and prints
"PORT" (or "PORT TLSPORT" with --tls CERT KEY, which also serves the same
paths over HTTPS) as its first stdout line. Exits by itself after
--lifetime seconds (default 120) even if the test that started it died.

  /good.json         tests/catalog/good.json, ETag "good-v1"; 304 on a
                     matching If-None-Match
  /changed.json      tests/catalog/changed.json, ETag "changed-v1"
  /noetag.json       good.json without an ETag
  /broken.json       invalid JSON (line 4)
  /notcatalog.json   valid JSON, not a catalog
  /array.json        a JSON array
  /truncated.json    Content-Length larger than the body, then closes
  /slow.json         sleeps --slow seconds (default 5) before answering
  /big.json          a valid catalog of about 200 KB, with Content-Length
  /big-stream.json   the same, chunked (no Content-Length)
  /tiny.json         a valid catalog of 1 entry (good.json has 6)
  /hostile.json      one priced entry and 250,000 empty objects (750 KB):
                     more objects and arrays than a catalog may have
  /same-etag.json    changed.json with good.json's ETag "good-v1" (another
                     server that happens to use the same ETag); 304 on a
                     matching If-None-Match
  /redirect          302 -> /good.json
  /redirect-file     302 -> file:///etc/passwd
  /loop              302 -> /loop
  /404, /500         those statuses
  /stats             JSON: {path: [requests, 304s]}
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


GOOD = read("good.json")
CHANGED = read("changed.json")
BROKEN = b'{\n  "gpt-4o": {\n    "input_cost_per_token": 2.5e-06,\n    "mode": "chat"\n    "litellm_provider": "openai"\n  }\n}\n'
NOTCATALOG = b'{"name": "not a catalog", "items": [1, 2, 3], "nested": {"a": 1}}\n'
ARRAY = b'[{"input_cost_per_token": 1e-06, "litellm_provider": "x"}]\n'
BIG = (json.dumps({"model-%05d" % i: {"input_cost_per_token": 1e-06 * (i % 7 + 1),
                                       "output_cost_per_token": 2e-06,
                                       "litellm_provider": "bulk", "mode": "chat"}
                   for i in range(2000)}, indent=1) + "\n").encode()

TINY = b'{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", ' \
       b'"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}}\n'
HOSTILE = (b'{"x": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06, '
           b'"output_cost_per_token": 2e-06, "junk": [' + b'{},' * 249999 + b'{}]}}\n')

STATS = {}
STATS_LOCK = threading.Lock()
SLOW = 5.0


def etag_matches(header, etag):
    if not header:
        return False
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lane-test/1"

    def log_message(self, fmt, *args):  # quiet; prove reads stdout
        pass

    def count(self, not_modified=False):
        with STATS_LOCK:
            s = STATS.setdefault(self.path, [0, 0])
            s[0] += 1
            if not_modified:
                s[1] += 1

    def send_body(self, body, status=200, etag=None, ctype="application/json"):
        if etag and etag_matches(self.headers.get("If-None-Match"), etag):
            self.count(True)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.count()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, where):
        self.count()
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        p = self.path
        try:
            if p == "/good.json":
                self.send_body(GOOD, etag='"good-v1"')
            elif p == "/changed.json":
                self.send_body(CHANGED, etag='"changed-v1"')
            elif p == "/tiny.json":
                self.send_body(TINY, etag='"tiny"')
            elif p == "/hostile.json":
                self.send_body(HOSTILE, etag='"hostile"')
            elif p == "/same-etag.json":
                self.send_body(CHANGED, etag='"good-v1"')
            elif p == "/noetag.json":
                self.send_body(GOOD)
            elif p == "/broken.json":
                self.send_body(BROKEN, etag='"broken"')
            elif p == "/notcatalog.json":
                self.send_body(NOTCATALOG, etag='"notcatalog"')
            elif p == "/array.json":
                self.send_body(ARRAY)
            elif p == "/big.json":
                self.send_body(BIG, etag='"big"')
            elif p == "/big-stream.json":
                self.count()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(BIG), 8192):
                    chunk = BIG[i:i + 8192]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif p == "/truncated.json":
                self.count()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(GOOD) + 1000))
                self.send_header("ETag", '"truncated"')
                self.end_headers()
                self.wfile.write(GOOD[: len(GOOD) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif p == "/slow.json":
                self.count()
                time.sleep(SLOW)
                self.send_body(GOOD, etag='"slow"')
            elif p == "/redirect":
                self.redirect("/good.json")
            elif p == "/redirect-file":
                self.redirect("file:///etc/passwd")
            elif p == "/loop":
                self.redirect("/loop")
            elif p == "/404":
                self.send_body(b'{"error": "not found"}\n', status=404)
            elif p == "/500":
                self.send_body(b'{"error": "boom"}\n', status=500)
            elif p == "/stats":
                with STATS_LOCK:
                    body = json.dumps(STATS, sort_keys=True).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_body(b'{"error": "no such path"}\n', status=404)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def main():
    global SLOW
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--slow", type=float, default=5.0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()
    SLOW = a.slow

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler)]
    if a.tls:
        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(" ".join(str(s.server_address[1]) for s in servers), flush=True)

    # Bounded life: exit even if nobody stops us.
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)

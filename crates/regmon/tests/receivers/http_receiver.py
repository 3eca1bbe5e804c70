#!/usr/bin/env python3
"""A test HTTP receiver for regmon's om_http (Python 3 standard library only).

It speaks the shapes of three ingest APIs, as far as a sender can tell:
  POST /_bulk                     Elasticsearch bulk: NDJSON action+document
                                  pairs; answers {"took":1,"errors":false,"items":[...]}
  POST /services/collector/event  Splunk HEC: one or more JSON objects;
                                  answers {"text":"Success","code":0}
  POST /loki/api/v1/push          Loki push: {"streams":[{"stream":{},"values":[[ns,line]]}]};
                                  answers 204
  POST <any other path>           plain: the body is one event (multiline:
                                  one per line; multipart/mixed: one per part)
It is a fake, not a real Elasticsearch, Splunk or Loki.

Every event received is appended to EVENTS (JSON lines:
{"path", "event", "headers", "shape"}); every request to EVENTS.requests
(method, path, headers, body size, status answered).

Faults, from the control file (JSON, re-read on each request; a list of
rules consumed in order) or from the query string (?fault=500&times=2):
  {"status": 500, "times": N}            answer 500 (or 429 with "retry_after")
  {"reject": "TEXT", "status": 400}      answer 400 to a request holding TEXT
                                         (every time)
  {"stall": SECONDS, "times": N}         read the request, wait, then answer
  {"close": true, "times": N}            read the request, close without answering

Usage: http_receiver.py EVENTS [--control FILE] [--cert CERT --key KEY]
It binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout.
"""

import argparse
import email.parser
import email.policy
import gzip
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ARGS = None


def take_fault(body):
    """The fault rule that applies to this request, if any (consumed)."""
    if not ARGS.control or not os.path.exists(ARGS.control):
        return None
    with LOCK:
        try:
            with open(ARGS.control) as f:
                rules = json.load(f)
        except (OSError, ValueError):
            return None
        for i, r in enumerate(rules):
            if "reject" in r:
                if r["reject"].encode() in body:
                    return r
                continue
            times = r.get("times", 1)
            if times <= 0:
                continue
            r["times"] = times - 1
            with open(ARGS.control + ".tmp", "w") as f:
                json.dump(rules, f)
            os.replace(ARGS.control + ".tmp", ARGS.control)
            return r
    return None


def split_events(path, ctype, body):
    """(shape, [event text]) of a request body."""
    text = body.decode("utf-8", "replace")
    if ctype.startswith("multipart/"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
        )
        parts = []
        for p in msg.iter_parts():
            payload = p.get_payload(decode=True) or b""
            parts.append((payload.decode("utf-8", "replace"), headers(p)))
        return "multipart", parts
    if path == "/_bulk":
        lines = [l for l in text.split("\n") if l.strip()]
        if len(lines) % 2:
            raise ValueError("odd number of bulk lines")
        out = []
        for a, d in zip(lines[0::2], lines[1::2]):
            json.loads(a)
            out.append((d, {"action": json.loads(a)}))
        return "es", out
    if path == "/services/collector/event":
        dec = json.JSONDecoder()
        out, i = [], 0
        while i < len(text):
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            obj, i = dec.raw_decode(text, i)
            ev = obj["event"]
            out.append((ev if isinstance(ev, str) else json.dumps(ev), {}))
        return "hec", out
    if path == "/loki/api/v1/push":
        out = []
        for line in [l for l in text.split("\n") if l.strip()]:
            for s in json.loads(line)["streams"]:
                for ts, v in s["values"]:
                    int(ts)
                    out.append((v, {"labels": s["stream"], "ts": ts}))
        return "loki", out
    if "\n" in text.rstrip("\n"):
        return "plain", [(l, {}) for l in text.rstrip("\n").split("\n")]
    return "plain", [(text.rstrip("\n"), {})]


def headers(h):
    """Header names in lower case (HTTP/1.1 names are case-insensitive)."""
    return {k.lower(): v for k, v in h.items()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="application/json", extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)
        self.record(status)

    def record(self, status):
        with LOCK, open(ARGS.events + ".requests", "a") as f:
            f.write(json.dumps({
                "path": self.path, "headers": headers(self.headers),
                "size": self.size, "status": status,
            }) + "\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        self.size = n
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        enc = self.headers.get("Content-Encoding", "")
        try:
            body = gzip.decompress(raw) if enc == "gzip" else zlib.decompress(raw) if enc == "deflate" else raw
        except Exception as e:
            return self.reply(400, json.dumps({"error": "bad body encoding: %s" % e}).encode())
        q = urllib.parse.parse_qs(url.query)
        fault = take_fault(body)
        if fault is None and "fault" in q:
            fault = {"status": int(q["fault"][0])}
        if fault:
            if "stall" in fault:
                time.sleep(fault["stall"])
            elif fault.get("close"):
                self.record("closed")
                self.close_connection = True
                self.connection.shutdown(2)
                return
            else:
                st = fault.get("status", 500)
                extra = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
                return self.reply(st, json.dumps({"error": "scripted %d" % st}).encode(), extra=extra)
        try:
            shape, events = split_events(path, self.headers.get("Content-Type", ""), body)
        except Exception as e:
            return self.reply(400, json.dumps({"error": "bad request: %s" % e}).encode())
        with LOCK, open(ARGS.events, "a") as f:
            for ev, meta in events:
                f.write(json.dumps({
                    "path": path, "shape": shape, "event": ev, "meta": meta,
                    "headers": headers(self.headers),
                }) + "\n")
        if shape == "es":
            items = [{"index": {"status": 201, "result": "created"}} for _ in events]
            self.reply(200, json.dumps({"took": 1, "errors": False, "items": items}).encode())
        elif shape == "hec":
            self.reply(200, b'{"text":"Success","code":0}')
        elif shape == "loki":
            self.reply(204)
        else:
            self.reply(200, b"OK", "text/plain")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("events")
    p.add_argument("--control")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--port", type=int, default=0)
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

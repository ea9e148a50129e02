"""The station update server (`flash.py serve --dir PUB`) crews run on a laptop or station PC.

Serves the published tree (index.sm, *.sm, blobs/<sha256>) as static files with Range and ETag
support (any HTTP server or CDN could do this part; an unchanged index costs a 304), takes
journal uploads (POST /journal/<reader>: concatenated 32-byte records, stored once per reader
and sequence number however often a reader retries) and status reports (POST
/status/<reader>), and shows what each reader reported (GET /status: JSON, GET /: a table).
"""

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REC = 32
MAX_UPLOAD = 64 * 1024
_READER = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class Station:
    """What the server knows: journal records per reader (deduplicated by sequence), the last
    status of each reader. Persisted as JSON lines under `data` so a restart loses nothing."""

    def __init__(self, pub, data):
        self.pub = Path(pub).resolve()
        self.data = Path(data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.records = {}  # reader -> {seq: hex}
        self.status = {}  # reader -> dict (+ "seen" time)
        self.uploads = 0
        for f in self.data.glob("journal-*.jsonl"):
            rid = f.stem[len("journal-"):]
            recs = self.records.setdefault(rid, {})
            for line in f.read_text().splitlines():
                seq, hexrec = json.loads(line)
                recs[seq] = hexrec

    def add_records(self, rid, body):
        """Store new records; returns the highest sequence now held contiguously from the
        reader's first one seen (what it may drop)."""
        with self.lock:
            recs = self.records.setdefault(rid, {})
            new = []
            for off in range(0, len(body) - REC + 1, REC):
                rec = body[off:off + REC]
                seq = int.from_bytes(rec[4:8], "little")
                if seq not in recs:
                    recs[seq] = rec.hex()
                    new.append((seq, rec.hex()))
            if new:
                with open(self.data / ("journal-%s.jsonl" % rid), "a") as f:
                    for item in new:
                        f.write(json.dumps(item) + "\n")
            self.uploads += 1
            seqs = sorted(recs)
            top = seqs[0] - 1 if seqs else 0
            for s in seqs:
                if s != top + 1:
                    break
                top = s
            return top, len(new)

    def set_status(self, rid, st):
        with self.lock:
            st["seen"] = int(time.time())
            st["journal_held"] = len(self.records.get(rid, ()))
            self.status[rid] = st

    def summary(self):
        with self.lock:
            return {"readers": dict(self.status), "uploads": self.uploads}


def handler_for(station):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _send(self, code, body, ctype="application/json", extra=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/status":
                return self._send(200, json.dumps(station.summary()).encode())
            if path == "/":
                return self._send(200, _page(station.summary()).encode(), "text/html")
            f = (station.pub / path.lstrip("/")).resolve()
            if station.pub not in f.parents or not f.is_file():
                return self._send(404, b"{}")
            data = f.read_bytes()
            etag = '"%s"' % hashlib.sha256(data).hexdigest()
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", extra=[("ETag", etag)])
            m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            if m:
                start = int(m.group(1))
                if start >= len(data):
                    return self._send(416, b"", extra=[("Content-Range",
                                                        "bytes */%d" % len(data))])
                return self._send(206, data[start:], "application/octet-stream",
                                  [("Content-Range", "bytes %d-%d/%d" % (
                                      start, len(data) - 1, len(data)))])
            return self._send(200, data, "application/octet-stream", [("ETag", etag)])

        do_HEAD = do_GET

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            parts = self.path.strip("/").split("/")
            if n > MAX_UPLOAD or len(parts) != 2 or not _READER.match(parts[1]):
                return self._send(400, b'{"error": "bad request"}')
            body = self.rfile.read(n)
            kind, rid = parts
            if kind == "journal":
                if len(body) % REC:
                    return self._send(400, b'{"error": "not whole records"}')
                acked, new = station.add_records(rid, body)
                return self._send(200, json.dumps({"acked": acked, "new": new}).encode())
            if kind == "status":
                try:
                    st = json.loads(body)
                except ValueError:
                    return self._send(400, b'{"error": "not JSON"}')
                station.set_status(rid, st)
                return self._send(200, b"{}")
            return self._send(404, b"{}")

    return Handler


def _page(summary):
    rows = "".join(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            rid, s.get("app"), s.get("list"), s.get("backlog"), s.get("journal_held"),
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.get("seen", 0))))
        for rid, s in sorted(summary["readers"].items()))
    return ("<!doctype html><title>Station update server</title><h1>Readers</h1><table>"
            "<tr><th>reader</th><th>app</th><th>list</th><th>journal backlog</th>"
            "<th>records held</th><th>last seen (UTC)</th></tr>%s</table>" % rows)


def make_server(pub, data, host="0.0.0.0", port=8080):
    station = Station(pub, data)
    srv = ThreadingHTTPServer((host, port), handler_for(station))
    srv.daemon_threads = True
    srv.station = station
    return srv

"""A reader's upload and status requests from CPython, signed as firmware/sync.py signs them:
for the bench, the tests' attackers and genuine stand-ins, and crew tools."""

import http.client
import json

from flashtool.server import auth


class ReaderClient:
    # timeout: for a hung server only; an upload's answer waits for the database's commit,
    # which a loaded machine's disk can stretch to seconds
    def __init__(self, host, port, reader, kid, key, boot=1, jepoch=7, timeout=300):
        self.host, self.port = host, port
        self.reader, self.kid, self.key = reader, kid, key
        self.boot, self.ctr, self.jepoch = boot, 0, jepoch
        self.timeout = timeout

    def request(self, method, path, body=b"", headers=None, sign=True, jepoch=None):
        """One signed request on a fresh connection -> (status, parsed JSON or raw bytes)."""
        h = dict(headers or {})
        if sign:
            self.ctr += 1
            je = self.jepoch if jepoch is None else jepoch
            h["Authorization"] = auth.sign(self.key, method, path, self.reader, self.kid,
                                           self.boot, self.ctr, je if "/journal/" in path
                                           else 0, body)
            if "/journal/" in path:
                h["Journal-Epoch"] = str(je)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def upload(self, raw, **kw):
        return self.request("POST", "/journal/" + self.reader, raw, **kw)

    def report(self, status, **kw):
        return self.request("POST", "/status/" + self.reader, json.dumps(status).encode(), **kw)

"""Reader authentication: every upload and status report carries

    Authorization: Reader <reader id> <key id> <boot epoch> <counter> <HMAC-SHA256 hex>

The MAC covers the method, the path, those four fields, the journal epoch (uploads; "0" for
status) and the body (`message()`, the reader's sync.py signs the same bytes), under the
reader's own 32-byte key from the server's key ring (`keys.py`). Checked in constant time.
Replays are refused by the store, which keeps for each reader the highest (key id, boot epoch,
counter) it accepted, in the same transaction as what the request stores.
"""

import hashlib
import hmac
import re
import time

SCHEME = "Reader"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_NUM = re.compile(r"^(0|[1-9][0-9]{0,9})$")  # canonical decimal: what was signed is what is read
_MAC = re.compile(r"^[0-9a-f]{64}$")


class AuthError(Exception):
    """status: the HTTP answer (401 not authenticated, 403 authenticated as someone else)."""

    def __init__(self, status, reason, reader=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.reader = reader


class Claim:
    __slots__ = ("reader", "kid", "boot", "ctr", "mac", "fields")

    def __init__(self, reader, kid, boot, ctr, mac, fields):
        self.reader, self.kid, self.boot, self.ctr, self.mac = reader, kid, boot, ctr, mac
        self.fields = fields  # the four fields as sent (signed text)


def valid_id(reader):
    return bool(_ID.match(reader or ""))


def parse(header):
    parts = (header or "").split(" ")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise AuthError(401, "no reader credential")
    _, rid, kid, boot, ctr, mac = parts
    if not valid_id(rid) or not all(_NUM.match(x) for x in (kid, boot, ctr)) \
            or not _MAC.match(mac):
        raise AuthError(401, "malformed credential")
    return Claim(rid, int(kid), int(boot), int(ctr), mac, (rid, kid, boot, ctr))


def message(method, path, fields, jepoch, body):
    """The signed bytes (same layout as firmware/sync.py builds them)."""
    head = "RDR1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n" % ((method, path) + tuple(fields) + (jepoch,))
    return head.encode() + bytes(body)


def verify(ring, method, path, header, jepoch, body):
    """The request's Claim, or AuthError. `path` is the raw request path (query included)."""
    claim = parse(header)
    key = ring.key(claim.reader, claim.kid)
    if key is None:
        raise AuthError(401, "unknown reader or key" if ring.known(claim.reader)
                        else "unknown reader", claim.reader)
    want = hmac.new(key, message(method, path, claim.fields, jepoch, body),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, claim.mac):
        raise AuthError(401, "bad MAC", claim.reader)
    return claim


def sign(key, method, path, reader, kid, boot, ctr, jepoch=0, body=b""):
    """The Authorization value a reader sends (CPython clients: tests, bench, tools)."""
    fields = (reader, str(kid), str(boot), str(ctr))
    mac = hmac.new(key, message(method, path, fields, str(jepoch), body),
                   hashlib.sha256).hexdigest()
    return "%s %s %s" % (SCHEME, " ".join(fields), mac)


class Failures:
    """Authentication failures per claimed reader (unknown ids pooled), kept in memory: counting
    them in the database would let anyone make the server write."""

    def __init__(self, ring):
        self.ring = ring
        self.counts = {}  # reader -> [count, last time, last reason]

    def add(self, reader, reason):
        rid = reader if reader and self.ring.known(reader) else "(unknown)"
        c = self.counts.setdefault(rid, [0, 0, ""])
        c[0] += 1
        c[1] = int(time.time())
        c[2] = reason
        return rid, c[0]

"""Signed manifests for everything the reader takes over the air (app bundles, lists, deltas, key
sets, config, firmware images, and the top-level index that ties one release together).

One format for host tools (CPython) and the reader (MicroPython), so the bytes signed on the
laptop are the bytes checked on the gate. Layout (ASCII header line, then the signed body):

    SM1 <key id, 16 hex> <RSA-2048 PKCS#1 v1.5 SHA-256 signature, 512 hex>\n
    <body: JSON object>

The signature covers the body bytes exactly (no re-serialisation). Every TUF attack the gate can
meet maps to one named rejection (ManifestError.code): bad signature, key not trusted for this
kind, rollback/replay, expired (freeze, against a monotonic time floor), wrong board, data longer
than signed (endless data) and files that are not the signed ones (mix-and-match).
"""

import hashlib
import json

import rsapkcs1

MAGIC = b"SM1 "
MAX_MANIFEST = 16384  # bytes; a manifest is small, anything bigger is an attack
MAX_VERSION = 0x7FFFFFFF  # fast-forward guard: no version a signer could not plausibly issue
_HEADER = 4 + 16 + 1 + 512 + 1

# Which key role may sign which kind: app releases, config and trust data need the app key;
# lists change often and are signed by the list key, which cannot ship code.
KINDS = {
    "index": "app",
    "app": "app",
    "firmware": "app",
    "config": "app",
    "keys": "app",
    "list": "list",
    "delta": "list",
    "fares": "list",
}

E_FORMAT = 1
E_SIGNATURE = 2
E_KEY = 3
E_ROLLBACK = 4
E_EXPIRED = 5
E_BOARD = 6
E_LENGTH = 7
E_HASH = 8
E_KIND = 9
_WHY = {E_FORMAT: "format", E_SIGNATURE: "signature", E_KEY: "key", E_ROLLBACK: "rollback",
        E_EXPIRED: "expired", E_BOARD: "board", E_LENGTH: "length", E_HASH: "hash",
        E_KIND: "kind"}


class ManifestError(ValueError):
    def __init__(self, code, detail=""):
        super().__init__("manifest %s: %s" % (_WHY.get(code, "?"), detail))
        self.code = code
        self.why = _WHY.get(code, "?")


def key_id(n):
    """Short id of an RSA public key: first 8 bytes of SHA-256 of the big-endian modulus."""
    return _hex(hashlib.sha256(n.to_bytes(256, "big")).digest()[:8])


def _hex(b):
    return "".join("%02x" % x for x in b)


def load_key(text):
    """A public key file: JSON {"role": .., "n": hex, "e": int} -> (key id, (n, e, role))."""
    try:
        d = json.loads(text)
        n = int(d["n"], 16)
        e = d["e"]
        role = d["role"]
    except (ValueError, KeyError, TypeError) as x:
        raise ManifestError(E_FORMAT, "public key file: %s" % x) from None
    if n >> 2048 or not n >> 2040 or type(e) is not int or e < 3 or not e & 1:
        raise ManifestError(E_FORMAT, "public key must be RSA-2048 with an odd exponent")
    return key_id(n), (n, e, role)


class Manifest:
    """A verified manifest body. `files` is a list of (name, size, sha256 hex)."""

    def __init__(self, body, raw_len):
        self.kind = body["kind"]
        self.version = body["version"]
        self.counter = body.get("counter", 0)
        self.board = body["board"]
        self.issued = body["issued"]
        self.expires = body["expires"]
        self.release = body.get("release", "")
        self.files = [tuple(f) for f in body.get("files", ())]
        self.body = body
        self.size = raw_len

    def file(self, name):
        for f in self.files:
            if f[0] == name:
                return f
        raise ManifestError(E_HASH, "%s is not in the signed file list" % name)

    def total(self):
        return sum(f[1] for f in self.files)

    def check_newer(self, version, counter=0, allow_same=False):
        """Versions and security counters only go up (same version allowed only on request,
        e.g. re-reading what is installed)."""
        if self.counter < counter:
            raise ManifestError(E_ROLLBACK, "security counter %d < %d" % (self.counter, counter))
        if self.version < version or (self.version == version and not allow_same):
            raise ManifestError(E_ROLLBACK, "version %d, have %d" % (self.version, version))


def verify(data, keys, kind=None, board=None, floor=0):
    """Check a manifest's bytes; return a Manifest or raise ManifestError.

    keys: {key id: (n, e, role)} trusted by this reader. kind: what the caller expects (None:
    any). board: this reader's board name. floor: the latest securely attested time (the newest
    `issued` ever accepted, or a trusted clock if later): an expired manifest is refused even
    when the reader's own clock was lost."""
    if len(data) > MAX_MANIFEST:
        raise ManifestError(E_LENGTH, "manifest over %d bytes" % MAX_MANIFEST)
    if len(data) <= _HEADER or data[:4] != MAGIC or data[_HEADER - 1] != 0x0A:
        raise ManifestError(E_FORMAT, "no SM1 header")
    kid = str(data[4:20], "ascii")
    key = keys.get(kid)
    if key is None:
        raise ManifestError(E_KEY, "key %s is not trusted" % kid)
    try:
        sig = bytes.fromhex(str(data[21:533], "ascii"))
    except ValueError:
        raise ManifestError(E_FORMAT, "signature is not hex") from None
    body = memoryview(data)[_HEADER:]
    try:
        rsapkcs1.verify(key[0], key[1], hashlib.sha256(body).digest(), sig)
    except rsapkcs1.SignatureError as x:
        raise ManifestError(E_SIGNATURE, str(x)) from None
    try:
        d = json.loads(bytes(body))
        m = Manifest(d, len(data))
        _check_types(m)
    except (ValueError, KeyError, TypeError, AttributeError) as x:
        raise ManifestError(E_FORMAT, "body: %s" % x) from None
    if m.kind not in KINDS or (kind is not None and m.kind != kind):
        raise ManifestError(E_KIND, "got %s, want %s" % (m.kind, kind))
    if KINDS[m.kind] != key[2]:
        raise ManifestError(E_KEY, "a %s key cannot sign %s" % (key[2], m.kind))
    if board is not None and m.board != board:
        raise ManifestError(E_BOARD, "for %s, this is %s" % (m.board, board))
    if m.expires <= floor or m.issued > m.expires:
        raise ManifestError(E_EXPIRED, "expired at %d (time floor %d)" % (m.expires, floor))
    return m


def _check_types(m):
    for v in (m.version, m.counter, m.issued, m.expires):
        if type(v) is not int or v < 0 or v > MAX_VERSION * 2:
            raise ValueError("bad number %r" % (v,))
    if m.version > MAX_VERSION:
        raise ValueError("version out of range")
    if type(m.kind) is not str or type(m.board) is not str:
        raise ValueError("kind/board")
    for f in m.files:
        if (len(f) != 3 or type(f[0]) is not str or type(f[1]) is not int or f[1] < 0
                or len(f[2]) != 64 or ".." in f[0] or f[0].startswith("/")):
            raise ValueError("file entry %r" % (f,))


class FileCheck:
    """Streamed check of one signed file: refuses a byte past the signed size (endless data)
    and anything whose SHA-256 is not the signed one (a file from another release)."""

    def __init__(self, entry):
        self.name, self.size, self.sha = entry
        self.done = 0
        self._h = hashlib.sha256()

    def update(self, buf, n=None):
        n = len(buf) if n is None else n
        if self.done + n > self.size:
            raise ManifestError(E_LENGTH, "%s longer than signed %d" % (self.name, self.size))
        self._h.update(buf if n == len(buf) else memoryview(buf)[:n])
        self.done += n

    def finish(self):
        if self.done != self.size:
            raise ManifestError(E_LENGTH, "%s: %d of %d bytes" % (self.name, self.done, self.size))
        if _hex(self._h.digest()) != self.sha:
            raise ManifestError(E_HASH, "%s is not the signed file" % self.name)

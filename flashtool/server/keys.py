"""Per-reader upload keys: the server's key ring and the file each reader gets.

The ring (`readers.json` beside the database, mode 0600) maps reader id -> {key id: 32-byte key
hex}. `issue()` adds a new key id for a reader (first provisioning or rotation) and writes the
reader's copy, `{"reader", "kid", "key"}`, which `flash.py deploy` puts at /keys/upload.key.
The first request a reader signs with a newer key id retires its older ones (the store refuses
lower key ids from then on); `revoke()` drops a key at once (a reader stolen or lost).
"""

import json
import os
import secrets
import threading
import time
from pathlib import Path

from flashtool.server.auth import valid_id

KEY_BYTES = 32
READER_FILE = "upload.key"  # on the reader: /keys/upload.key


class KeyRing:
    """The ring file, re-read when it changes (checked at most once a second), so keys issued
    or revoked while the server runs take effect without a restart."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys = {}
        self._stamp = None
        self._checked = 0.0
        self._load()

    def _load(self):
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        raw = json.loads(self.path.read_text())["readers"]
        self._keys = {rid: {int(k): bytes.fromhex(v) for k, v in kids.items()}
                      for rid, kids in raw.items()}
        self._stamp = stamp

    def _fresh(self):
        now = time.monotonic()
        if now - self._checked >= 1.0:
            with self._lock:
                self._checked = now
                self._load()
        return self._keys

    def key(self, reader, kid):
        return self._fresh().get(reader, {}).get(kid)

    def known(self, reader):
        return reader in self._fresh()

    def readers(self):
        return sorted(self._fresh())


def _read(ring):
    ring = Path(ring)
    return json.loads(ring.read_text()) if ring.exists() else {"readers": {}}


def _write(ring, data):
    ring = Path(ring)
    ring.parent.mkdir(parents=True, exist_ok=True)
    tmp = ring.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, ring)


def issue(ring, reader, out=None, key=None):
    """A new key for `reader` (next key id) into the ring; returns (kid, key bytes, path of the
    reader's copy or None). `key`: given bytes instead of fresh random ones (tests)."""
    if not valid_id(reader):
        raise ValueError("reader id must be 1-32 of A-Z a-z 0-9 _ . -")
    data = _read(ring)
    kids = data["readers"].setdefault(reader, {})
    kid = max((int(k) for k in kids), default=0) + 1
    key = key if key is not None else secrets.token_bytes(KEY_BYTES)
    if len(key) != KEY_BYTES:
        raise ValueError("an upload key is %d bytes" % KEY_BYTES)
    kids[str(kid)] = key.hex()
    _write(ring, data)
    path = None
    if out is not None:
        path = Path(out) / reader / READER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(reader_file(reader, kid, key))
    return kid, key, path


def reader_file(reader, kid, key):
    return json.dumps({"reader": reader, "kid": kid, "key": key.hex()}) + "\n"


def revoke(ring, reader, kid=None):
    """Drop one key id of a reader, or all its keys (kid None)."""
    data = _read(ring)
    kids = data["readers"].get(reader, {})
    if kid is None:
        data["readers"].pop(reader, None)
    else:
        kids.pop(str(kid), None)
    _write(ring, data)

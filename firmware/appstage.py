"""Staging one verified app release into the inactive .mpy slot, resumable after a power cut.

Each file is written as `<name>.part` and renamed to its name only once its size and SHA-256
match the signed entry; the signed manifest being staged is kept in /ota/staging.sm, so after a
cut the same release resumes where LittleFS last committed (a .part prefix is re-hashed, never
trusted) and a different release starts clean. The selector record is switched last, in one
atomic rename (see bootsel).
"""

import os

import bootsel
import files
import signedmanifest as sm
import slog
from ota import (
    BUF,
    E_BUSY,
    E_FAILED,
    RELEASE,
    STAGING,
    STATE_DIR,
    OtaError,
    installed,
    raise_floor,
    verify,
)

log = slog.Logger("ota")


class AppStager:
    """Stage one verified app release into the inactive slot. Use: run prepare(); for each
    entry of pending(): begin(entry) -> offset to resume from, write(buf, n)..., end(); then
    run finish(), which switches. prepare() and finish() are generators so the sync task can
    yield to the lane between their steps."""

    def __init__(self, data, m):
        rec = bootsel.read()
        if rec is not None and rec.get("state") in ("new", "pending"):
            raise OtaError(E_BUSY, "app %s not confirmed yet" % rec.get("version"))
        version, floor, failed = installed()
        m.check_newer(version, floor)
        if failed == m.version:
            raise OtaError(E_FAILED, "version %d failed its self-test here" % m.version)
        self.m = m
        self.rec = rec
        cur = rec["slot"] if rec is not None and rec.get("state") == "valid" else None
        self.prev = cur
        self.slot = "b" if cur == "a" else "a"
        self.dir = bootsel.slot_dir(self.slot)
        self.buf = bytearray(BUF)
        self._f = None
        self._check = None
        self._data = data

    def prepare(self):
        """Generator (one step per file removed, so a caller on the event loop can yield
        between steps): a release other than the one being staged starts from an empty slot."""
        if files.read(STAGING) != bytes(self._data):
            for path in files.walk(self.dir):  # before the new staging.sm: a cut redoes the wipe
                os.remove(path)
                yield
            files.rmtree(self.dir)
            files.mkdir(STATE_DIR)
            files.replace(STAGING, self._data)
        files.mkdir(self.dir)

    def pending(self):
        """The signed entries not yet complete in the slot."""
        return [e for e in self.m.files if files.size(self.dir + "/" + e[0]) != e[1]]

    def begin(self, entry):
        """Open one file for writing; returns the byte offset to fetch from."""
        path = self.dir + "/" + entry[0]
        files.mkdirs(self.dir, entry[0])
        self._check = sm.FileCheck(entry)
        part = path + ".part"
        have = files.size(part)
        if have is None or have > entry[1]:
            self._f = open(part, "wb")
            return 0
        self._hash_file(part, self._check)  # a prefix from before a cut: re-hash, never trust
        self._f = open(part, "ab")
        return have

    def write(self, buf, n):
        self._check.update(buf, n)
        self._f.write(buf if n == len(buf) else memoryview(buf)[:n])
        self._f.flush()  # the committed prefix is what a resume starts from

    def end(self):
        self._f.close()
        self._f = None
        name = self._check.name
        path = self.dir + "/" + name
        try:
            self._check.finish()
        except sm.ManifestError:
            if self._check.done >= self._check.size:
                os.remove(path + ".part")  # complete but wrong: never resume from it
            raise
        os.rename(path + ".part", path)

    def abort(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def finish(self):
        """Generator, one step per file: drop anything unsigned, re-check every file against
        the manifest (no file from another release may run), then switch the selector in one
        rename."""
        signed = [e[0] for e in self.m.files] + [RELEASE]
        for path in files.walk(self.dir):
            if path[len(self.dir) + 1:] not in signed:
                os.remove(path)
                yield
        for e in self.m.files:
            c = sm.FileCheck(e)
            self._hash_file(self.dir + "/" + e[0], c)
            try:
                c.finish()
            except sm.ManifestError:
                os.remove(self.dir + "/" + e[0])  # fetched again on the next attempt
                raise
            yield
        files.replace(self.dir + "/" + RELEASE, self._data)
        yield
        rec = self.rec or {}
        prev_version = rec.get("version", 0) if self.prev else 0
        bootsel.write({"slot": self.slot, "state": "new", "version": self.m.version,
                       "counter": self.m.counter, "prev": self.prev,
                       "prev_version": prev_version, "floor": rec.get("floor", 0),
                       "failed": rec.get("failed")})
        yield
        raise_floor(self.m.issued)
        yield
        files.remove(STAGING)
        log.info("switch", "slot=%s version=%d counter=%d", self.slot, self.m.version,
                 self.m.counter)

    def _hash_file(self, path, check):
        buf = self.buf
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                check.update(buf, n)


def install_from_dir(root, board_name, clock=None, name="app.sm"):
    """Install a published app bundle from a local directory tree (root/app.sm, root/blobs/)
    (crew USB stick, tests). Returns the manifest; the new app runs after the next reset."""
    data = files.read(root + "/" + name)
    if data is None:
        raise OtaError(2, "no %s in %s" % (name, root))
    m = verify(data, "app", board_name, clock)
    st = AppStager(data, m)
    for _ in st.prepare():
        pass
    for e in st.pending():
        off = st.begin(e)
        with open(root + "/blobs/" + e[2], "rb") as src:
            src.seek(off)
            try:
                while True:
                    n = src.readinto(st.buf)
                    if not n:
                        break
                    st.write(st.buf, n)
            except Exception:
                st.abort()
                raise
        st.end()
    for _ in st.finish():
        pass
    return m

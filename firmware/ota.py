"""App updates on the reader: verify a signed app manifest, stage its files into the inactive
slot (resumable after a power cut), switch the boot selector, and confirm the new app only after
its self-test.

Staging is power-safe without a journal of its own: each file is written as `<name>.part` and
renamed to its name only once its size and SHA-256 match the signed entry; the signed manifest
being staged is kept in /ota/staging.sm, so after a cut the same release resumes where LittleFS
last committed (a .part prefix is re-hashed, never trusted) and a different release starts
clean. The selector record is switched last, in one atomic rename (see bootsel).
"""

import asyncio
import json
import os

import bootsel
import signedmanifest as sm
import slog

log = slog.Logger("ota")

KEYS_DIR = "/keys"
STATE_DIR = "/ota"
STAGING = "/ota/staging.sm"
FLOOR = "/ota/floor"
RELEASE = "release.sm"  # the signed manifest of what a slot holds, kept with it
DL_FIRMWARE = "/ota/firmware.dl"  # progress of a firmware image download (resume record)
DL_LIST = "/ota/list.dl"  # progress of a list download
SELFTEST_DELAY_MS = 3000  # at least: let the app start its tasks and serve a poll or two
_BUF = 4096

E_BUSY = 16  # EBUSY: the running app is not confirmed yet; nothing new is staged over it
E_FAILED = 125  # this version already failed its self-test here
E_STALE = 116  # ESTALE: a progress record that does not fit what is being installed


class OtaError(OSError):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


def load_keys(path=KEYS_DIR):
    """Trusted public keys {key id: (n, e, role)} from /keys/*.pub (put there by deploy)."""
    keys = {}
    try:
        names = os.listdir(path)
    except OSError:
        return keys
    for name in names:
        if name.endswith(".pub"):
            with open(path + "/" + name) as f:
                kid, key = sm.load_key(f.read())
            keys[kid] = key
    return keys


def time_floor(clock=None):
    """The latest securely attested time: the newest `issued` of any manifest accepted, or the
    clock when it is set and later (the RTC is not battery-backed: it may be lost, not trusted
    to go back)."""
    t = 0
    try:
        with open(FLOOR) as f:
            t = int(f.read())
    except (OSError, ValueError):
        pass
    now = clock.time() if clock else None
    return max(t, now or 0)


def raise_floor(t):
    if t > time_floor():
        _mkdir(STATE_DIR)
        _replace(FLOOR, str(t))


def verify(data, kind, board_name, clock=None, keys=None):
    """A signed manifest checked against this reader's keys, board and time floor."""
    return sm.verify(data, keys if keys is not None else load_keys(), kind, board_name,
                     time_floor(clock))


def read_progress(path):
    """The progress record of an interrupted download at path (a small JSON dict), None when
    there is none (an unreadable one is removed)."""
    raw = _read(path)
    if raw is None:
        return None
    try:
        rec = json.loads(raw)
        if isinstance(rec, dict):
            return rec
    except ValueError:
        pass
    _remove(path)
    return None


def load_progress(path, sha):
    """The progress record at path if it names the signed file with this SHA-256; a record
    for anything else is void and removed."""
    rec = read_progress(path)
    if rec is not None and rec.get("sha") != sha:
        _remove(path)
        rec = None
    return rec


def save_progress(path, rec):
    _mkdir(STATE_DIR)
    _replace(path, json.dumps(rec))


def installed():
    """(version, security-counter floor, failed version) of the app that boots."""
    rec = bootsel.read()
    if rec is None:
        return 0, 0, None
    ver = rec.get("version", 0) if rec.get("state") != "factory" else 0
    return ver, rec.get("floor", 0), rec.get("failed")


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
        self.buf = bytearray(_BUF)
        self._f = None
        self._check = None
        self._data = data

    def prepare(self):
        """Generator (one step per file removed, so a caller on the event loop can yield
        between steps): a release other than the one being staged starts from an empty slot."""
        if _read(STAGING) != bytes(self._data):
            for path in _walk(self.dir):  # before the new staging.sm: a cut redoes the wipe
                os.remove(path)
                yield
            _rmtree(self.dir)
            _mkdir(STATE_DIR)
            _replace(STAGING, self._data)
        _mkdir(self.dir)

    def pending(self):
        """The signed entries not yet complete in the slot."""
        return [e for e in self.m.files if _size(self.dir + "/" + e[0]) != e[1]]

    def begin(self, entry):
        """Open one file for writing; returns the byte offset to fetch from."""
        path = self.dir + "/" + entry[0]
        _mkdirs(self.dir, entry[0])
        self._check = sm.FileCheck(entry)
        part = path + ".part"
        have = _size(part)
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
        for path in _walk(self.dir):
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
        _replace(self.dir + "/" + RELEASE, self._data)
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
        _remove(STAGING)
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
    data = _read(root + "/" + name)
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


class FirmwareStager:
    """A full-firmware image (MicroPython with frozen modules) into the next ESP-IDF OTA
    partition: stream it in with the erase-then-program block protocol, read it back and check
    the signed SHA-256 from flash (what will boot, not what was received), then set_boot().
    The bootloader boots it PENDING_VERIFY; the self-test confirms it (confirm_after_self_test)
    or the next reset rolls back to the running image.

    An interrupted download resumes: progress() is a record naming the signed image, the
    partition and the bytes programmed (whole blocks); resume(record) on a new stager re-reads
    that prefix from the partition into the hash (never trusted) and continues from the next
    block boundary."""

    def __init__(self, m, partition_cls):
        if len(m.files) != 1:
            raise sm.ManifestError(sm.E_FORMAT, "a firmware manifest names one image")
        self.entry = m.files[0]
        self.m = m
        self.part = partition_cls(partition_cls.RUNNING).get_next_update()
        if self.entry[1] > self.part.info()[3]:
            raise sm.ManifestError(sm.E_LENGTH, "image over the %d-byte partition"
                                   % self.part.info()[3])
        self.buf = bytearray(_BUF)
        self._fill = 0
        self._block = 0
        self._check = sm.FileCheck(self.entry)

    def write(self, buf, n):
        """Accumulate; each full 4 KiB block is erased and programmed."""
        self._check.update(buf, n)
        off = 0
        while off < n:
            k = min(n - off, _BUF - self._fill)
            self.buf[self._fill:self._fill + k] = memoryview(buf)[off:off + k]
            self._fill += k
            off += k
            if self._fill == _BUF:
                self._flush()

    def _flush(self):
        for i in range(self._fill, _BUF):
            self.buf[i] = 0xFF
        self.part.writeblocks(self._block, self.buf)
        self._block += 1
        self._fill = 0

    def durable(self):
        """Bytes of the image programmed, in whole blocks, short of its end."""
        return min(self._block * _BUF, (self.entry[1] - 1) // _BUF * _BUF)

    def progress(self):
        return {"sha": self.entry[2], "part": self.part.info()[4], "n": self.durable()}

    def resume(self, rec):
        """Generator, one step per block re-read: continue after rec["n"] bytes already in
        the partition. OtaError(E_STALE) when the record names another image or partition
        (the next update slot changed since) or an impossible length."""
        n = rec.get("n")
        if self._block or self._fill or rec.get("sha") != self.entry[2] \
                or rec.get("part") != self.part.info()[4] or not isinstance(n, int) \
                or n <= 0 or n % _BUF or n >= self.entry[1]:
            raise OtaError(E_STALE, "firmware progress record does not fit")
        for block in range(n // _BUF):
            self.part.readblocks(block, self.buf)
            self._check.update(self.buf, _BUF)
            yield
        self._block = n // _BUF  # the next block is erased again before it is programmed

    def finish(self):
        """Generator, one step per block read back (up to 2 MiB: the sync task yields to the
        lane between steps); the image becomes bootable only after the last."""
        if self._fill:
            self._flush()
        self._check.finish()
        readback = sm.FileCheck(self.entry)
        left = self.entry[1]
        block = 0
        while left:
            self.part.readblocks(block, self.buf)
            k = min(left, _BUF)
            readback.update(self.buf, k)
            left -= k
            block += 1
            yield
        readback.finish()
        self.part.set_boot()
        log.info("firmware", "version=%d staged in %s", self.m.version, self.part.info()[4])


# --- first boot of a new app -----------------------------------------------------------------

_checks = []


def add_check(name, fn):
    """The app registers what its self-test covers (drivers answer, list readable, a decision
    smoke test). fn() returns true when fine; may be a coroutine function."""
    _checks.append((name, fn))


def _updater_ok():
    for k in load_keys().values():
        if k[2] == "app":
            return True
    return False


def _fs_ok():
    _replace(STATE_DIR + "/probe", "ok")
    return _read(STATE_DIR + "/probe") == b"ok"


async def self_test():
    """Names of the checks that failed (empty: all passed)."""
    failed = []
    for name, fn in [("updater", _updater_ok), ("fs", _fs_ok)] + _checks:
        try:
            r = fn()
            if hasattr(r, "send"):
                r = await r
        except Exception as e:
            log.error("check", "%s raised %r", name, e)
            r = False
        if not r:
            failed.append(name)
    return failed


async def confirm_after_self_test(board, cfg):
    """Started by main for an app on its first boot. Waits longer than the watchdog period (a
    hung main loop must have reset the reader first), then self-test. Pass: mark it valid
    (selector and, for a full-firmware image, the ESP-IDF otadata). Fail: reset; the selector
    rolls back."""
    await asyncio.sleep_ms(max(SELFTEST_DELAY_MS, cfg["wdt_ms"] * 3 // 2))
    failed = await self_test()
    if failed:
        log.error("selftest", "failed=%s -> reset, rollback", ",".join(failed))
        board.reset()
    rec = bootsel.confirm()
    if getattr(board, "app_pending", False):
        board.Partition.mark_app_valid_cancel_rollback()
        log.info("valid", "firmware partition=%s", board.app_slot)
    log.info("valid", "version=%s slot=%s", rec and rec.get("version"), rec and rec.get("slot"))


# --- small file helpers (atomic replace, trees) -----------------------------------------------

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _replace(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


def _mkdirs(top, name):
    parts = name.split("/")[:-1]
    d = top
    for p in parts:
        d = d + "/" + p
        _mkdir(d)


def _walk(top):
    out = []
    try:
        entries = list(os.ilistdir(top))
    except OSError:
        return out
    for e in entries:
        path = top + "/" + e[0]
        if e[1] == 0x4000:
            out.extend(_walk(path))
        else:
            out.append(path)
    return out


def _rmtree(top):
    try:
        entries = list(os.ilistdir(top))
    except OSError:
        return
    for e in entries:
        path = top + "/" + e[0]
        if e[1] == 0x4000:
            _rmtree(path)
            os.rmdir(path)
        else:
            os.remove(path)

"""Streamed install of a full list or a delta into the slot the switch record does not name:
hashed from what reads back from flash, signature-checked, then activated by the store's
atomic switch record (ListStore._activate).

An interrupted install can be resumed: progress() names where it writes (slot, area, the
switch-record generation it started under) and how many of its bytes are in flash in whole
sectors; resume() on a fresh Installer re-reads the header from flash and checks it again,
re-hashes that prefix from flash (never trusting it) and continues from the sector boundary,
erasing it again. The caller keeps the progress record (firmware/sync.py)."""

import hashlib

from micropython import const
from rsapkcs1 import SignatureError, verify

from blocklist import fmt
from blocklist.fmt import (
    E_BASE,
    E_DIGEST,
    E_FORMAT,
    E_KEY,
    E_OVERSIZE,
    E_ROLLBACK,
    E_SIGNATURE,
    E_STATE,
    E_TRUNCATED,
    KIND_DELTA,
    ListError,
)

_SECTOR = const(4096)
_STAGE = const(4096)  # install RAM: this read-back buffer + the 512-byte header + trailer


class Installer:
    """Streams one artefact into flash, hashing what reads back, and activates it in finish().
    Any refusal raises ListError and leaves the active list untouched."""

    def __init__(self, store, total):
        self._s = store
        self._total = total
        self._pos = 0
        self._hdr = bytearray(min(fmt.PAGE, max(total, 0)))
        self._h = None
        self._dead = False
        if total < fmt.HEADER_LEN + fmt.TRAILER:
            self._fail(E_TRUNCATED, "%d bytes is too short for a list" % total)
        if total > store.image_cap:
            self._fail(E_OVERSIZE, "%d bytes exceeds the %d-byte slot" % (total, store.image_cap))

    def _fail(self, code, reason):
        self._dead = True
        raise ListError(code, reason)

    def write(self, chunk):
        if self._dead:
            raise ListError(E_STATE, "install already failed")
        n = len(chunk)
        if self._pos + n > self._total:
            self._fail(E_OVERSIZE, "more data than announced")
        if self._h is None:
            take = min(n, len(self._hdr) - self._pos)
            self._hdr[self._pos: self._pos + take] = chunk[:take]
            self._pos += take
            if self._pos < len(self._hdr):
                return
            self._start()
            self._pos = 0
            self._put(self._hdr)
            chunk = memoryview(chunk)[take:]
        if len(chunk):
            self._put(chunk)

    def _start(self):
        s = self._s
        try:
            h = fmt.Header(self._hdr, self._total)
        except ListError as e:
            self._fail(e.code, e.reason)
        if h.key_id != s._kid:
            self._fail(E_KEY, "signed for another list key")
        if h.seq <= s.seq:
            self._fail(E_ROLLBACK, "sequence %d is not newer than %d" % (h.seq, s.seq))
        if h.kind == KIND_DELTA and (not s._ok or h.base_seq != s.base_seq):
            self._fail(E_BASE, "delta for list %d, active list is %d" % (h.base_seq, s.base_seq))
        try:
            self._part, self._base, self._slot = s._target(h, self._total)
        except ListError as e:
            self._fail(e.code, e.reason)
        self._hd = h
        self._gen = s._gen
        self._erased = self._base  # sectors of the area erased so far (partition offset)
        self._h = hashlib.sha256()
        self._stage = s.stage  # _STAGE bytes, the store's: one install at a time
        self._trail = bytearray(fmt.TRAILER)

    def _put(self, buf):
        self._burn(self._base + self._pos, buf, self._absorb, self._pos)
        self._pos += len(buf)

    def _burn(self, at, buf, absorb, rel):
        """Program buf at partition offset `at`, erasing sectors just ahead of it, then read it
        back through absorb(rel + done, k) in stage-buffer pieces: what is hashed is what the
        flash now holds, so a failed program cannot pass as signed data."""
        part = self._part
        n = len(buf)
        while self._erased < at + n:
            part.ioctl(6, self._erased // _SECTOR)
            self._erased += _SECTOR
        part.writeblocks(at // _SECTOR, buf, at % _SECTOR)
        done = 0
        while done < n:
            k = min(_STAGE, n - done)
            absorb(rel + done, k)
            done += k

    def _absorb(self, rel, k):
        """Read k (<= _STAGE) bytes of the artefact at offset rel back from flash into the
        stage buffer: the signed part into the digest, the trailer kept aside."""
        p = self._base + rel
        mv = memoryview(self._stage)[:k]
        self._part.readblocks(p // _SECTOR, mv, p % _SECTOR)
        signed = self._hd.signed_len
        body = max(0, min(k, signed - rel))
        if body:
            self._h.update(mv[:body])
        if body < k:
            t = rel + body - signed
            self._trail[t: t + k - body] = mv[body:]

    # --- resume -------------------------------------------------------------------------------
    def durable(self):
        """Bytes of the artefact programmed and read back, in whole sectors and short of its
        end (what a resume may start from); 0 before the header was checked or after a
        failure."""
        if self._h is None or self._dead:
            return 0
        return min(self._pos, self._total - 1) // _SECTOR * _SECTOR

    def progress(self):
        """(slot, area base, switch-record generation, durable()): what a progress record
        keeps to resume this install; None before the header was checked."""
        if self._h is None or self._dead:
            return None
        return (self._slot, self._base, self._gen, self.durable())

    def resume(self, slot, base, gen, n, feed=None):
        """Generator: continue, on this fresh Installer, an install of the same artefact that
        was interrupted after progress() said (slot, base, gen, n). The header is read back
        from flash and every _start() check runs again (key, rollback, base); the first n
        bytes are re-read from flash into the digest, and feed(buf, k) gets them too (the
        caller's own check of the file), one step per stage buffer so the caller can yield.
        Then write() takes the artefact from byte n; the sector at n is erased again (a cut
        may have left it, and any after it, half programmed). ListError when the record is
        void: another install switched the store since (generation), or it names another
        area than this header now gets. A wrong prefix is refused by the digest in finish()."""
        s = self._s
        if self._dead or self._h is not None or self._pos:
            self._fail(E_STATE, "only a fresh install can resume")
        part = s._area(slot, base)
        if part is None or n <= 0 or n % _SECTOR or n >= self._total:
            self._fail(E_STATE, "progress record does not match the store")
        part.readblocks(base // _SECTOR, self._hdr, 0)
        self._start()  # what the flash holds must pass the same checks as a fresh header
        if self._slot != slot or self._base != base or self._gen != gen:
            self._fail(E_STATE, "progress record names another area or store state")
        done = 0
        while done < n:
            k = min(_STAGE, n - done)
            self._absorb(done, k)
            if feed is not None:
                feed(self._stage, k)
            done += k
            yield
        self._pos = n
        self._erased = self._base + n

    def finish(self):
        """Check length, digest and signature; then switch to the new list atomically."""
        if self._dead:
            raise ListError(E_STATE, "install already failed")
        self._dead = True
        if self._h is None or self._pos != self._total:
            raise ListError(E_TRUNCATED, "got %d of %d bytes" % (self._pos, self._total))
        self._verify()
        h = self._hd
        self._s._activate(h, self._slot, self._total)
        return h.seq

    def _verify(self):
        """The signed part as read back from flash: its digest, the RSA signature, and the
        exact records in the strictly increasing order the binary search needs."""
        digest = self._h.digest()
        if digest != bytes(self._trail[: fmt.DIGEST_LEN]):
            self._fail(E_DIGEST, "body digest mismatch (corrupted in transit or flash)")
        try:
            verify(self._s._n, self._s._e, digest, bytes(self._trail[fmt.DIGEST_LEN:]))
        except SignatureError as e:
            self._fail(E_SIGNATURE, "signature rejected: %s" % e.args[0])
        self._check_sorted(self._hd.nrec, fmt.PAGE)

    def _check_sorted(self, nrec, at):
        """Lookups binary-search the exact records (a delta's, a full image's exceptions):
        refuse an artefact whose records are out of order."""
        prev = bytearray(fmt.REC_LEN)
        cur = bytearray(fmt.REC_LEN)
        for j in range(nrec):
            a = self._base + at + j * fmt.REC_LEN
            self._part.readblocks(a // _SECTOR, cur, a % _SECTOR)
            if j and cur[:10] <= prev[:10]:  # fingerprint, category: strictly increasing
                self._fail(E_FORMAT, "exact record %d out of order" % j)
            prev, cur = cur, prev

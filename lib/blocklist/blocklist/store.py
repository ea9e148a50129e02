"""The reader's list store: two raw flash slots, streamed installs, atomic switch, lookup.

Slot layout (each of bl_a, bl_b; 4 KiB sectors, S sectors per slot):
  [0, S-16)      full image area (a new full list goes to the slot not in use)
  [S-16, S-1)    delta area (a new delta goes to the area not in use)
  S-1            switch record sector
The switch record (generation-numbered, CRC'd, one per record sector) names the full slot and
the delta area in use. Installing writes only to places the current record does not name,
then writes the new record over the older record sector: a power cut anywhere leaves either the
old record (old list) or the new one (new list) as the newest valid record.
"""

import binascii
import hashlib
import struct

from micropython import const

from blocklist import fmt
from blocklist.fmt import (
    E_IDENT,
    KIND_DELTA,
    KIND_FULL,
    ListError,
)
from blocklist.fpage import match
from blocklist.install import Installer
from blocklist.khash import MAX_IDENT, MSG_LEN, message
from blocklist.sha256v import Sha256

_SECTOR = const(4096)
_TAIL = const(16)  # sectors at the end of each slot: delta area + record sector
# magic, generation, full slot, delta area (0xFF: none), full seq, full len, delta seq, delta len
_REC = "<4sIBB2xIIII"
_REC_LEN = const(28)
_REC_MAGIC = b"BLSW"
_NONE = const(0xFF)


def key_id(n):
    return hashlib.sha256(n.to_bytes(fmt.SIG_LEN, "big")).digest()[: fmt.KEY_ID_LEN]


def open_store(partition_cls, pubkey):
    """The store the partition table calls for: the one-image store (segstore.SegStore) on a
    board with a `bl_seg` region (seed scale, 32 MiB), else the two-slot ListStore."""
    if partition_cls.find(partition_cls.TYPE_DATA, label="bl_seg"):
        from blocklist.segstore import SegStore

        return SegStore(partition_cls, pubkey)
    return ListStore(partition_cls, pubkey)


class ListStore:
    """ListStore(Partition, (n, e)): the active list and the installer for new ones."""

    def __init__(self, partition_cls, pubkey):
        self._n, self._e = pubkey
        self._kid = key_id(self._n)
        self._attach(partition_cls)
        self._sha = Sha256()
        self._msg = bytearray(MSG_LEN)
        self._d = bytearray(32)
        self._page = bytearray(fmt.PAGE)
        self._r = bytearray(fmt.REC_LEN)
        self._hits = bytearray(fmt.MAX_CATS)
        # the installer's 4 KiB read-back buffer, made with the store (at boot) rather than
        # per install: by then a 112 KiB heap can hold 40 KB free and no 4 KiB block
        self.stage = bytearray(_SECTOR)
        self.load()

    def _attach(self, partition_cls):
        t = partition_cls.TYPE_DATA
        self._parts = (partition_cls.find(t, label="bl_a")[0],
                       partition_cls.find(t, label="bl_b")[0])
        size = self._parts[0].ioctl(4, 0) * _SECTOR
        self.image_cap = size - _TAIL * _SECTOR
        self.delta_cap = (_TAIL - 1) * _SECTOR
        self._rec_off = size - _SECTOR

    # --- state --------------------------------------------------------------------------------
    def _records(self):
        """Valid switch records as (gen, sector index, fields), newest first."""
        out = []
        b = bytearray(_REC_LEN + 4)
        for i in (0, 1):
            self._parts[i].readblocks(self._rec_off // _SECTOR, b, 0)
            f = struct.unpack_from(_REC, b, 0)
            if f[0] == _REC_MAGIC and struct.unpack_from("<I", b, _REC_LEN)[0] == \
                    binascii.crc32(b[:_REC_LEN]):
                out.append((f[1], i, f))
        out.sort(reverse=True)
        return out

    def _read(self, part, off, n):
        b = bytearray(n)
        part.readblocks(off // _SECTOR, b, off % _SECTOR)
        return b

    def _reset(self):
        self._ok = False
        self._gen = 0
        self.seq = 0
        self.base_seq = 0
        self.issued = 0
        self.max_age_s = 0
        self.categories = {}
        self._ncat = 0
        self._dn = 0
        self._dnp = 0
        self._xc = 0
        self._pa = 0  # lookup's page address: an attribute from the start, so setting it
        self._rec = None  # in a lookup never grows the instance (allocation-free)

    def load(self):
        """(Re)read the newest switch record and the headers it names (boot, after install)."""
        self._reset()
        recs = self._records()
        if not recs:
            return
        self._gen, _, f = recs[0]
        _, _, fslot, darea, fseq, flen, dseq, dlen = f
        if fslot > 1:
            return
        part = self._parts[fslot]
        h = self._header(part, 0, flen, KIND_FULL, fseq)
        if h is None:
            return
        self._rec = f
        self._use(part, h, fmt.PAGE)
        if darea < 2:
            self._use_delta(self._parts[darea], self.image_cap, dlen, dseq)
        self._ok = True

    def _header(self, part, at, length, kind, seq):
        """The header at `at` if it is the artefact a record names (kind, sequence, length),
        else None: the flash no longer holds what the record names."""
        try:
            h = fmt.Header(self._read(part, at, fmt.PAGE), length)
        except ListError:
            return None
        return h if h.kind == kind and h.seq == seq else None

    def _use(self, part, h, xat):
        """Look up in the full list h (its exact records at xat in part)."""
        self._part = part
        self._key = h.key
        self.base_seq = self.seq = h.seq
        self.issued = h.issued
        self.max_age_s = h.max_age_s
        self._stale_after = self.issued + self.max_age_s
        cats = h.cats
        self._ncat = len(cats)
        self._ids = bytes(c[0] for c in cats)
        self._grp = bytes(c[6] for c in cats)
        self._gfirst = bytes(min(i for i in range(len(cats)) if cats[i][6] == g)
                             for g in range(h.ngroups))
        self._cbits = h.cbits
        self._dcbits = bytes(b + 1 for b in h.cbits)  # a delta page adds the op bit
        self._np = h.npages
        self._pages_at = h.pages_at
        self._xat = xat
        self._xc = h.nrec  # exact records: the builder's collision resolutions
        self.categories = {c[0]: (c[5], c[1], c[2], c[3] & (fmt.FLAG_HEALTH | fmt.FLAG_PASS_SET))
                           for c in cats}

    def _use_delta(self, part, at, dlen, dseq):
        """Apply the delta at `at` in part if it is the one the record names, for this list."""
        try:
            dh = fmt.Header(self._read(part, at, fmt.HEADER_LEN), dlen)
        except ListError:
            return
        if dh.kind == KIND_DELTA and dh.seq == dseq and dh.base_seq == self.base_seq:
            self._dpart = part
            self._dat = at
            self._dn = dh.nrec
            self._dnp = dh.npages
            self._dpages_at = at + dh.pages_at
            self.seq = dh.seq
            self.issued = dh.issued
            self.max_age_s = dh.max_age_s
            self._stale_after = self.issued + self.max_age_s

    def active(self):
        return self._ok

    def is_stale(self, now_s):
        """True when the list is older than its max age, or the time is unknown (None)."""
        if not self._ok or now_s is None:
            return True
        # a comparison: UTC seconds are big ints on a 32-bit port, arithmetic would allocate
        return now_s > self._stale_after

    def status(self, now_s):
        """What the reader reports about its list (status page, sync, journal)."""
        return {"active": self._ok, "seq": self.seq, "base_seq": self.base_seq,
                "issued": self.issued, "max_age_s": self.max_age_s, "stale": self.is_stale(now_s)}

    def action(self, cid, now_s):
        """The action for a hit in category cid now: its stale policy once the list is stale."""
        c = self.categories[cid]
        return c[2] if self.is_stale(now_s) else c[1]

    # --- lookup (hot path: allocation-free) ---------------------------------------------------
    def lookup(self, ns, ident, n):
        """Category id the identifier is listed in (first in header order), 0 if not listed.
        Per category: the delta's exact record if it has one, else the full image's exact
        record (a resolved fingerprint collision), else the fingerprint page; the page is read
        once and each group's sub-list decoded only when a category of it is reached."""
        if not self._ok:
            return 0
        if n < 1 or n > MAX_IDENT or ns < 1 or ns > 255:
            raise ListError(E_IDENT, "identifier length or namespace out of range")
        d = self._d
        self._sha.digest_into(self._msg, message(self._key, ns, ident, n, self._msg), d)
        hits = self._hits
        for i in range(self._ncat):
            hits[i] = 0
        v = d[8] | d[9] << 8 | d[10] << 16 | (d[11] & 0x3F) << 24  # khash.page_of()
        quo = d[12] | d[13] << 8  # khash.quotient()
        rem = d[14] | d[15] << 8 | d[16] << 16  # khash.remainder()
        if self._locate(v % self._np):
            if self._dn:
                self._search(self._dpart, self._dat + fmt.PAGE, self._dn, d, 0)
            if self._dnp:
                self._delta_page(v, quo, rem)
        if self._xc:
            self._search(self._part, self._xat, self._xc, d, 1)
        a = self._pa
        self._part.readblocks(a // _SECTOR, self._page, a % _SECTOR)
        g = -1
        mask = 0
        for ci in range(self._ncat):
            st = hits[ci]
            if st == fmt.OP_ADD:
                return self._ids[ci]
            if st == fmt.OP_REMOVE:
                continue
            if self._grp[ci] != g:
                g = self._grp[ci]
                mask = match(self._page, self._cbits, g, quo, rem)
            if mask >> (ci - self._gfirst[g]) & 1:
                return self._ids[ci]
        return 0

    def _locate(self, p):
        """Where page p is (self._pa) and whose exact records apply (self._xat, self._xc);
        True when the delta applies to it (always here: one list in one slot)."""
        self._pa = self._pages_at + p * fmt.PAGE
        return True

    def _delta_page(self, v, quo, rem):
        """A compact delta's page: each entry is category index * 2 + op (0 add, 1 remove);
        it marks the categories its exact records left silent, a removal over an addition."""
        a = self._dpages_at + v % self._dnp * fmt.PAGE
        self._dpart.readblocks(a // _SECTOR, self._page, a % _SECTOR)
        hits = self._hits
        g = -1
        mask = 0
        for ci in range(self._ncat):
            if self._grp[ci] != g:
                g = self._grp[ci]
                mask = match(self._page, self._dcbits, g, quo, rem)
            if hits[ci] or not mask:
                continue
            k = (ci - self._gfirst[g]) << 1
            if mask >> (k + 1) & 1:
                hits[ci] = fmt.OP_REMOVE
            elif mask >> k & 1:
                hits[ci] = fmt.OP_ADD

    def _cmp(self, d):
        r = self._r
        for i in range(8):
            if r[i] != d[i]:
                return -1 if r[i] < d[i] else 1
        return 0

    def _get(self, part, at, j):
        a = at + j * fmt.REC_LEN
        part.readblocks(a // _SECTOR, self._r, a % _SECTOR)

    def _search(self, part, at, nrec, d, exceptions):
        """Binary search of sorted exact records (a delta's, or a full image's exceptions)
        for this digest; marks adds/removes per category. In a delta a removal overrides an
        addition and a page hit; an exception only speaks where the delta is silent."""
        lo = 0
        hi = nrec
        while lo < hi:
            mid = (lo + hi) >> 1
            self._get(part, at, mid)
            if self._cmp(d) < 0:
                lo = mid + 1
            else:
                hi = mid
        r = self._r
        hits = self._hits
        while lo < nrec:
            self._get(part, at, lo)
            if self._cmp(d):
                return
            for ci in range(self._ncat):
                if self._ids[ci] == r[8]:
                    st = hits[ci]
                    if not st or not exceptions and r[9] == fmt.OP_REMOVE:
                        hits[ci] = r[9]
            lo += 1

    # --- install ------------------------------------------------------------------------------
    def begin(self, total_len):
        """Start a streamed install of a full image or a delta of total_len bytes."""
        return Installer(self, total_len)

    def _target(self, h, total):
        """(partition, offset, slot) an install of h writes to: the places the switch record
        does not name. Raises ListError when the store cannot take it."""
        rec = self._rec
        if h.kind == KIND_DELTA:
            if total > self.delta_cap:
                raise ListError(fmt.E_OVERSIZE, "delta exceeds the %d-byte area" % self.delta_cap)
            slot = 1 - rec[3] if rec[3] != _NONE else 0
            return self._parts[slot], self.image_cap, slot
        if h.kind != KIND_FULL:
            raise ListError(fmt.E_FORMAT, "this store takes full images and deltas")
        slot = 1 - rec[2] if rec else 0
        return self._parts[slot], 0, slot

    def _area(self, slot, at):
        """The partition of a place _target() names (resume), None for any other."""
        return self._parts[slot] if slot in (0, 1) and at in (0, self.image_cap) else None

    def _activate(self, h, slot, total):
        """Switch to the installed artefact: write the new switch record."""
        if h.kind == KIND_FULL:
            self._commit(slot, _NONE, h.seq, total, 0, 0)
        else:
            r = self._rec
            self._commit(r[2], slot, r[4], r[5], h.seq, total)

    def _commit(self, fslot, darea, fseq, flen, dseq, dlen):
        recs = self._records()
        sector = 1 - recs[0][1] if recs else 0  # overwrite the older record, keep the newest
        b = bytearray(_REC_LEN + 4)
        struct.pack_into(_REC, b, 0, _REC_MAGIC, self._gen + 1, fslot, darea, fseq, flen,
                         dseq, dlen)
        struct.pack_into("<I", b, _REC_LEN, binascii.crc32(b[:_REC_LEN]))
        part = self._parts[sector]
        blk = self._rec_off // _SECTOR
        part.ioctl(6, blk)
        part.writeblocks(blk, b, 0)
        self.load()

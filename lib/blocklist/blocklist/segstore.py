"""The one-image list store: for a board whose flash holds one copy of the list but never two
(seed scale, 15 M + 1 M entries, on a 32 MiB module). One region (`bl_seg`, layout in
region.py) holds the image's fingerprint pages as segments in slots plus one spare slot, the
signed indexes, two delta areas and a log of map records.

A full image arrives segmented (fmt.KIND_SEG): its index (header, exact records, segment
digests) is signature-checked first, then each segment is written to the spare slot, read back
and hashed against its signed digest, and only then a map record names that slot for the
segment and makes the old one the spare (a rolling install). A power cut leaves the old or the
new record; a spare is never read by a lookup.

Lookup while an install is half done: an identifier's page lives in one segment, and the
lookup is answered by the one list that segment belongs to: a segment not yet switched by the
old image with its delta, a switched one by the new image alone (its own exact records, no
delta). So every identifier gets the answer of the old list or of the new one, never a mix;
and when the new image is the compaction of the active image and delta (the server's daily
rebuild, `flash.py blocklist compact`), both answer every member and every changed identifier
the same, so the gate's answers do not change at all during the install.

An image with another geometry (hash key, page count, segment size, category groups), a first
list, or a new image while another one's install is pending, is a plain install: the old list
stops (the no-list action) while the segments are written in place. docs/blocklist.md.
"""

import binascii
import hashlib
import struct

from micropython import const

from blocklist import fmt, region
from blocklist.fmt import E_DIGEST, E_FORMAT, E_OVERSIZE, E_STATE, KIND_DELTA, KIND_SEG, ListError
from blocklist.install import Installer
from blocklist.store import ListStore

_SECTOR = const(4096)
_NONE = const(0xFF)
_PER_SECTOR = const(16)  # map records per record sector (region.REC_LEN bytes each)
# modes: no install pending / a rolling install (old list decides per segment) / a plain
# install (no list until it completes)
_IDLE = const(0)
_ROLL = const(2)
_PLAIN = const(3)
# magic, generation; mode, active index area, pending index area, delta area; active seq and
# length, delta seq and length, pending seq and length; segments, segments of the pending
# image in place, segment bytes; then the slot of each segment and the spare's; CRC-32 last
_REC = "<4sIBBBBIIIIIIHHI"
_REC_HEAD = const(48)
_REC_CRC = const(252)
_MAGIC = b"BLSG"
# field indexes in the record tuple after magic and generation
_MODE = const(0)
_AIDX = const(1)
_PIDX = const(2)
_DAREA = const(3)
_FSEQ = const(4)
_ALEN = const(5)
_DSEQ = const(6)
_DLEN = const(7)
_PSEQ = const(8)
_PLEN = const(9)
_NSEG = const(10)
_DONE = const(11)
_SEGB = const(12)
_BLANK = (_IDLE, _NONE, _NONE, _NONE, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _layout(h):
    """What lookups of two images must share to mix their segments: key, pages, segment
    size, category ids and groups."""
    return (h.key, h.npages, h.seg_bytes, bytes(c[0] for c in h.cats) +
            bytes(c[6] for c in h.cats))


class SegStore(ListStore):
    """SegStore(Partition, (n, e)): ListStore's API over the one-image region. `pending_seq`,
    `done` and `nseg` say how far a rolling or plain install has come (0 when none is)."""

    def _attach(self, partition_cls):
        self._region = partition_cls.find(partition_cls.TYPE_DATA, label="bl_seg")[0]
        self._nsec = self._region.ioctl(4, 0)
        self.image_cap = self._nsec * _SECTOR
        self.delta_cap = region.delta_sectors(self._nsec) * _SECTOR
        self._slots_at = region.slots_at(self._nsec)
        self._rb = bytearray(region.REC_LEN)
        self._map = bytearray(fmt.MAX_SEGS + 1)

    # --- map records --------------------------------------------------------------------------
    def _scan(self):
        """Newest valid map record into self._rb (False when there is none) and where the
        next one goes: the first erased slot after it in its sector, else the other sector."""
        b = self._rb
        best = -1
        at = None
        for sec in (0, 1):
            for i in range(_PER_SECTOR):
                self._region.readblocks(sec, b, i * region.REC_LEN)
                if b[:4] == _MAGIC and struct.unpack_from("<I", b, _REC_CRC)[0] == \
                        binascii.crc32(memoryview(b)[:_REC_CRC]):
                    gen = struct.unpack_from("<I", b, 4)[0]
                    if gen > best:
                        best = gen
                        at = (sec, i)
        self._wsec, self._wslot = 1, _PER_SECTOR  # nothing valid: start on sector 0, erased
        if at is None:
            return False
        self._wsec, self._wslot = at[0], _PER_SECTOR
        for i in range(at[1] + 1, _PER_SECTOR):
            self._region.readblocks(at[0], b, i * region.REC_LEN)
            if b == b"\xff" * region.REC_LEN:
                self._wslot = i
                break
        self._region.readblocks(at[0], b, at[1] * region.REC_LEN)
        return True

    def _append(self, f, smap):
        """Write the next map record (fields f, segment map smap) after the newest one, then
        reload. The newest valid record is never touched: a cut leaves it or the new one."""
        b = self._rb
        for i in range(region.REC_LEN):
            b[i] = 0
        struct.pack_into(_REC, b, 0, _MAGIC, self._gen + 1, *f)
        b[_REC_HEAD: _REC_HEAD + f[_NSEG] + 1] = smap[: f[_NSEG] + 1]
        struct.pack_into("<I", b, _REC_CRC, binascii.crc32(memoryview(b)[:_REC_CRC]))
        if self._wslot >= _PER_SECTOR:  # sector full: move to the other, older one
            self._wsec = 1 - self._wsec
            self._wslot = 0
            self._region.ioctl(6, self._wsec)
        self._region.writeblocks(self._wsec, b, self._wslot * region.REC_LEN)
        self.load()

    # --- state --------------------------------------------------------------------------------
    def load(self):
        """(Re)read the newest map record, the indexes it names and the delta (boot, after
        every record)."""
        self._reset()
        self.pending_seq = self.done = self.nseg = 0
        self._axat = self._axc = self._pxat = self._pxc = 0
        self._f = _BLANK
        if not self._scan():
            return
        r = struct.unpack_from(_REC, self._rb, 0)
        self._gen = r[1]
        f = self._f = r[2:]
        nseg = f[_NSEG]
        if nseg > fmt.MAX_SEGS:
            return
        self._map[: nseg + 1] = self._rb[_REC_HEAD: _REC_HEAD + nseg + 1]
        self.seq = max(f[_FSEQ], f[_DSEQ])  # with no list too: versions only go up
        if f[_MODE] != _IDLE:
            self.pending_seq = f[_PSEQ]
            self.done = f[_DONE]
            self.nseg = nseg
        if f[_AIDX] == _NONE:
            return
        part = self._region
        at = region.index_at(f[_AIDX])
        h = self._header(part, at, f[_ALEN], KIND_SEG, f[_FSEQ])
        if h is None or h.nseg != nseg or h.seg_bytes != f[_SEGB]:
            return
        self._geom = _layout(h)
        self._segb = h.seg_bytes
        self._use(part, h, at + fmt.PAGE)
        self._axat = self._xat
        self._axc = self._xc
        if f[_MODE] == _ROLL:
            pat = region.index_at(f[_PIDX])
            ph = self._header(part, pat, f[_PLEN], KIND_SEG, f[_PSEQ])
            if ph is None or _layout(ph) != self._geom:
                return  # switched segments without their index: no list is the safe verdict
            self._pxat = pat + fmt.PAGE
            self._pxc = ph.nrec
        if f[_DAREA] != _NONE:
            self._use_delta(part, region.delta_at(self._nsec, f[_DAREA]), f[_DLEN], f[_DSEQ])
        self._ok = True

    def _locate(self, p):
        """Page p's segment, and the list that segment belongs to: the new image's exact
        records and no delta once it is switched, else the old image's and its delta."""
        a = p * fmt.PAGE
        s = a // self._segb
        self._pa = self._slots_at + self._map[s] * self._segb + a - s * self._segb
        if s < self.done:
            self._xat = self._pxat
            self._xc = self._pxc
            return False
        self._xat = self._axat
        self._xc = self._axc
        return True

    # --- install ------------------------------------------------------------------------------
    def begin(self, total_len):
        return SegInstaller(self, total_len)

    def _pending(self, h):
        return self.pending_seq and h.seq == self.pending_seq

    def _target(self, h, total):
        f = self._f
        if h.kind == KIND_DELTA:
            if f[_MODE] != _IDLE:
                raise ListError(E_STATE, "install of list %d pending" % self.pending_seq)
            if total > self.delta_cap:
                raise ListError(E_OVERSIZE, "delta exceeds the %d-byte area" % self.delta_cap)
            slot = 1 - f[_DAREA] if f[_DAREA] != _NONE else 0
            return self._region, region.delta_at(self._nsec, slot), slot
        if h.kind != KIND_SEG:
            raise ListError(E_FORMAT, "this store takes segmented images and deltas")
        if h.pages_at > region.IDX_SECTORS * _SECTOR or \
                h.nseg + 1 > region.slots(self._nsec, h.seg_bytes):
            raise ListError(E_OVERSIZE, "%d segments of %d bytes and a %d-byte index exceed "
                            "the region" % (h.nseg, h.seg_bytes, h.pages_at))
        if self._pending(h):
            slot = f[_PIDX]  # the same image again: continue its install
        else:
            slot = 0
            while slot in (f[_AIDX], f[_PIDX]):
                slot += 1
        return self._region, region.index_at(slot), slot

    def _area(self, slot, at):
        if slot in (0, 1) and at == region.delta_at(self._nsec, slot):
            return self._region
        return None

    def _activate(self, h, slot, total):
        f = list(self._f)
        f[_DAREA] = slot
        f[_DSEQ] = h.seq
        f[_DLEN] = total
        self._append(f, self._map)

    def _open(self, h, slot, total):
        """The verified index of h is in index area slot: start its rolling install when it
        can mix with the active list, else a plain one (the list stops until it is done)."""
        f = list(self._f)
        if self._ok and f[_MODE] == _IDLE and _layout(h) == self._geom:
            f[_MODE] = _ROLL
            smap = self._map
        else:
            f = [_PLAIN, _NONE, _NONE, _NONE, self.seq, 0, 0, 0, 0, 0, h.nseg, 0, h.seg_bytes]
            smap = bytes(range(h.nseg + 1))
        f[_PIDX] = slot
        f[_PSEQ] = h.seq
        f[_PLEN] = total
        f[_DONE] = 0
        self._append(f, smap)

    def _slot_for(self, j):
        """Where segment j of the pending image is written: the spare (rolling) or its own
        slot (plain)."""
        f = self._f
        return self._map[f[_NSEG] if f[_MODE] == _ROLL else j]

    def _switch(self, j):
        """Segment j of the pending image is in place: map it (the last one completes the
        install: the new image becomes the list, without a delta)."""
        f = list(self._f)
        nseg = f[_NSEG]
        smap = bytearray(self._map[: nseg + 1])
        if f[_MODE] == _ROLL:
            smap[j], smap[nseg] = smap[nseg], smap[j]
        f[_DONE] = j + 1
        if j + 1 == nseg:
            f = [_IDLE, f[_PIDX], _NONE, _NONE, f[_PSEQ], f[_PLEN], 0, 0, 0, 0, nseg, 0,
                 f[_SEGB]]
        self._append(f, smap)


class SegInstaller(Installer):
    """Installer for the one-image store: deltas as in the two-slot store; a segmented image's
    index into a free index area (or, continuing its pending install, compared with the one
    there), then each segment into its slot, checked against its digest and switched."""

    def _start(self):
        super()._start()
        h = self._hd
        self._seg = h.kind == KIND_SEG
        if self._seg:
            s = self._s
            self._cont = s._pending(h)
            self._gen = h.seq  # the install's identity across its own switches
            self._ilen = h.pages_at
            self._segb = h.seg_bytes
            self._body = h.npages * fmt.PAGE
            self._j = -1  # the segment being written

    def _put(self, buf):
        if not self._seg:
            return super()._put(buf)
        n = len(buf)
        off = 0
        while off < n:
            piece = memoryview(buf)[off:]
            if self._pos < self._ilen:
                piece = piece[: self._ilen - self._pos]
                if self._cont:
                    self._compare(piece)
                else:
                    super()._put(piece)
                if self._pos == self._ilen and not self._cont:
                    self._verify()
                    self._s._open(self._hd, self._slot, self._total)
                    self._cont = True
            else:
                piece = self._segment(piece)
            off += len(piece)

    def _compare(self, piece):
        """Continuing a pending install: the index streamed must be the one in flash."""
        k = len(piece)
        a = self._base + self._pos
        mv = memoryview(self._stage)[:k]
        self._part.readblocks(a // _SECTOR, mv, a % _SECTOR)
        if bytes(mv) != bytes(piece):
            self._fail(E_DIGEST, "not the list whose install is pending")
        self._pos += k

    def _segment(self, piece):
        """Take what belongs to the current segment from piece; returns what was taken."""
        s = self._s
        rel = self._pos - self._ilen
        j = rel // self._segb
        off = rel - j * self._segb
        size = min(self._segb, self._body - j * self._segb)
        piece = piece[: size - off]
        k = len(piece)
        if j < s.done:  # in place already (a continued install)
            self._pos += k
            return piece
        if off == 0:
            self._sh = hashlib.sha256()
            self._at = s._slots_at + s._slot_for(j) * self._segb
            self._erased = self._at
        elif j != self._j:
            self._fail(E_STATE, "a segment must be written from its start")
        self._j = j
        self._burn(self._at + off, piece, self._seg_absorb, off)
        self._pos += k
        if off + k == size:
            a = self._base + self._hd.digests_at + j * fmt.DIGEST_LEN
            mv = memoryview(self._stage)[: fmt.DIGEST_LEN]
            self._part.readblocks(a // _SECTOR, mv, a % _SECTOR)
            if self._sh.digest() != bytes(mv):
                self._fail(E_DIGEST, "segment %d does not match its signed digest" % j)
            s._switch(j)
        return piece

    def _seg_absorb(self, off, k):
        a = self._at + off
        mv = memoryview(self._stage)[:k]
        self._part.readblocks(a // _SECTOR, mv, a % _SECTOR)
        self._sh.update(mv)

    def finish(self):
        if not getattr(self, "_seg", False):
            return super().finish()
        if self._dead:
            raise ListError(E_STATE, "install already failed")
        self._dead = True
        if self._pos != self._total or self._s.seq != self._hd.seq:
            raise ListError(fmt.E_TRUNCATED, "got %d of %d bytes" % (self._pos, self._total))
        return self._hd.seq

    def durable(self):
        """Segmented image: the index and the segments already switched (a resume starts at
        a segment boundary and the spare is written again)."""
        if not getattr(self, "_seg", False):
            return super().durable()
        s = self._s
        if self._dead or not self._cont or s.pending_seq != self._hd.seq:
            return 0
        return self._ilen + s.done * self._segb

    def resume(self, slot, base, gen, n, feed=None):
        """As Installer.resume; for a segmented image the progress record names its index
        area and the list's sequence, and the prefix is read back from the index and the
        segments in place."""
        s = self._s
        if base != region.index_at(slot):
            yield from super().resume(slot, base, gen, n, feed)
            return
        if self._dead or self._h is not None or self._pos:
            self._fail(E_STATE, "only a fresh install can resume")
        if not s.pending_seq or gen != s.pending_seq or slot != s._f[_PIDX]:
            self._fail(E_STATE, "progress record does not match the store")
        s._region.readblocks(base // _SECTOR, self._hdr, 0)
        self._start()
        if not self._seg or not self._cont or n < self._ilen or n >= self._total or \
                (n - self._ilen) % self._segb or n > self._ilen + s.done * self._segb:
            self._fail(E_STATE, "progress record does not match the store")
        rel = 0
        while rel < n:
            if rel < self._ilen:
                a = base + rel
                k = min(len(self._stage), self._ilen - rel)
            else:
                j = (rel - self._ilen) // self._segb
                off = rel - self._ilen - j * self._segb
                a = s._slots_at + s._map[j] * self._segb + off
                k = min(len(self._stage), self._segb - off)
            k = min(k, n - rel)
            s._region.readblocks(a // _SECTOR, memoryview(self._stage)[:k], a % _SECTOR)
            if feed is not None:
                feed(self._stage, k)
            rel += k
            yield
        self._pos = n

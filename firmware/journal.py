"""The verdict journal: an append-only log in the raw `journal` partition, designed for NOR.

Why raw flash and not a file: a LittleFS commit per record costs about one 4 KiB erase per
record (reliability-and-ota.md §6.2); here a record is one 32-byte program into a pre-erased
sector, and a sector is erased only when it is recycled (<= 1/127 erase per record).

Layout (see docs/reader.md): record sectors 0..N-1 used round-robin by a sector sequence number
(position = sseq % N), each with a 32-byte header (magic, sseq, first record seq, CRC) and 127
record slots; the last two sectors of the partition hold the upload cursor as a ping-pong log
of (acked seq, ~acked seq) pairs, and the two before them the torn-purchase log
(firmware/tornlog.py), which the journal never writes. Boot finds the head from the sector
headers and the write slot by binary search (slots fill in order); every record carries its
sequence and a CRC-32. A sector still holding records the server has not acknowledged is never
erased.

Every sector header also carries the journal's epoch, a random number drawn when a blank
journal opens its first sector: sequences restart at 1 only in a new journal, so the server
keys records by (reader, epoch, seq) and an erased journal never collides with its past.

Migration (docs/ota.md): the previous app used every sector but the cursor's two for records
(no torn-purchase log) and wrote 0xFF in header bytes 16..23. This app writes there the
layout's first sector sequence and its position: sectors from that sequence on are placed by
(sseq - first + position) % N, older ones (0xFF there, a CRC'd fact, never a guess) by sseq %
(total - 2) as before. An app-only update onto such a journal keeps its epoch, sequences and
cursor: the next sector opened is the first of the new layout (right after the old head, so
the ring stays in order), and the old sectors in the torn log's two are erased once the server
holds every record in them; until then `torn_area` is None and purchases wait (ticketing.py).
"""

import os
from array import array
from struct import pack_into

from micropython import const

SECTOR = const(4096)
REC = const(32)
SLOTS = const(128)  # per sector; slot 0 is the header
PER_SECTOR = const(127)
_CURSOR_SECTORS = const(2)
TORN_SECTORS = const(2)  # before the cursor sectors: firmware/tornlog.py
_ENTRY = const(8)
_ENTRIES = const(512)  # cursor entries per sector
_SCAN = const(256)
_MAGIC_REC = const(0x52)  # 'R': a verdict
MAGIC_PURCHASE = const(0x50)  # 'P': an e-purse purchase, first half (docs/reader.md)
MAGIC_PURCHASE2 = const(0x51)  # 'Q': its second half, in the next slot (the tap's verdict)
MAGIC_PSAM = const(0x53)  # 'S': the PSAM in use from here on (terminal number, station)
PROOF_NONE = const(0xFF)  # verdict byte 26: nothing stated (codes, events, old records)
_HDR_MAGIC = b"JRN1"
_LEGACY = const(0x3FFFFFFF)  # the epoch of a journal written before epochs (0xFF.. in flash)


class JournalError(OSError):
    pass


class JournalFull(JournalError):
    """Every record sector holds records the server has not acknowledged yet."""

    def __init__(self):
        super().__init__(28, "journal full")  # ENOSPC


def _crc_table():
    hi = array("H", bytes(512))
    lo = array("H", bytes(512))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        hi[i] = c >> 16
        lo[i] = c & 0xFFFF
    return hi, lo


_TH, _TL = _crc_table()


_C = bytearray(4)  # the CRC just computed, little-endian (no tuple, no big integer)


def _crc(buf, off, n):
    """CRC-32 (IEEE) of buf[off:off+n] into _C. Computed in 16-bit halves: no big integers,
    so no allocation on a 32-bit port."""
    hi = 0xFFFF
    lo = 0xFFFF
    th = _TH
    tl = _TL
    for i in range(off, off + n):
        x = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tl[x]
        hi = (hi >> 8) ^ th[x]
    c = _C
    c[0] = (lo & 0xFF) ^ 0xFF
    c[1] = (lo >> 8) ^ 0xFF
    c[2] = (hi & 0xFF) ^ 0xFF
    c[3] = (hi >> 8) ^ 0xFF


def crc_ok(buf, off, n):
    """The CRC of buf[off:off+n] equals the 4 bytes stored after it (little-endian)."""
    _crc(buf, off, n)
    e = off + n
    c = _C
    return buf[e] == c[0] and buf[e + 1] == c[1] and buf[e + 2] == c[2] and buf[e + 3] == c[3]


def crc_put(buf, off, n):
    _crc(buf, off, n)
    e = off + n
    c = _C
    buf[e] = c[0]
    buf[e + 1] = c[1]
    buf[e + 2] = c[2]
    buf[e + 3] = c[3]


def _put32(b, o, v):
    # struct writes a big int without a temporary: UTC seconds and 32-bit keys are big ints on
    # a 32-bit port, where shifting and masking them would allocate
    pack_into("<I", b, o, v)


def _get32(b, o):
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)


def _blank(b, off, n):
    for i in range(off, off + n):
        if b[i] != 0xFF:
            return False
    return True


def _fresh_epoch():
    """1 .. 2^30-2 from the hardware RNG (os.urandom; the ESP32's is a true RNG): a small
    integer on a 32-bit port, so writing a header never allocates."""
    b = os.urandom(4)
    return ((b[0] | (b[1] << 8) | (b[2] << 16) | ((b[3] & 0x3F) << 24)) % (_LEGACY - 1)) + 1


def decode(r):
    """A raw 32-byte record -> (seq, time, key, verdict, reason, mode, list_seq, kind,
    category, ms, station). time 0 = no trusted time."""
    return (_get32(r, 4), _get32(r, 8), _get32(r, 12), r[1], r[2], r[3], _get32(r, 16), r[20],
            r[21], r[22] | (r[23] << 8), r[24] | (r[25] << 8))


class Journal:
    def __init__(self, part, sectors=None):
        """part: an esp32.Partition (4 KiB blocks). sectors: record sectors to use (default:
        all but the two cursor sectors; tests use fewer to reach the wrap quickly)."""
        total = part.ioctl(4, 0)
        room = total - _CURSOR_SECTORS - TORN_SECTORS
        if part.ioctl(5, 0) != SECTOR or room < 2:
            raise JournalError(22, "journal partition too small or not 4 KiB blocks")
        self.sectors = n = room if sectors is None else sectors
        if n < 2 or n > room:
            raise JournalError(22, "bad sector count")
        self._p = part
        self._cur0 = total - _CURSOR_SECTORS
        # the previous app's record sectors (a test's own sector count: no previous layout)
        self._nold = total - _CURSOR_SECTORS if sectors is None else n
        self._room = room
        self.torn_area = None  # (partition, first block) of the torn log, once it is free
        self._rec = bytearray(REC)
        self._hdr = bytearray(REC)
        self._ent = bytearray(_ENTRY)
        self._scan = bytearray(_SCAN)
        self.full = False
        self._mount()

    # -- boot --------------------------------------------------------------------------------
    def _header(self, pos):
        """(sseq, first_seq) of the sector at pos, or None when it has no valid header (the
        epoch is left at self._hdr[12:16])."""
        h = self._hdr
        self._p.readblocks(pos, h, 0)
        m = _HDR_MAGIC
        if h[0] != m[0] or h[1] != m[1] or h[2] != m[2] or h[3] != m[3] or not crc_ok(h, 0, 28):
            return None
        return _get32(h, 4), _get32(h, 8)

    def _slot_blank(self, pos, slot):
        r = self._rec
        self._p.readblocks(pos, r, slot * REC)
        return _blank(r, 0, REC)

    def _read_rec(self, pos, slot):
        """Reads the slot into self._rec; True when it holds a valid record (of any kind)."""
        r = self._rec
        self._p.readblocks(pos, r, slot * REC)
        m = r[0]
        return (m == _MAGIC_REC or m == MAGIC_PURCHASE or m == MAGIC_PURCHASE2
                or m == MAGIC_PSAM) and crc_ok(
            r, 0, 28)

    def _pos(self, ss):
        """Where sector sequence ss lives: this layout from its first sector on, the previous
        app's before it."""
        if ss >= self._s0:
            return (ss - self._s0 + self._q0) % self.sectors
        return ss % self._nold

    def _mount(self):
        self._load_cursor()
        n = self.sectors
        nold = self._nold
        h = self._hdr
        new = old = s0 = q0 = 0
        low = 0x3FFFFFFF
        held = False
        for pos in range(nold):
            x = self._header(pos)
            if x is None:
                continue
            ss = x[0]
            if _blank(h, 16, 4):  # the previous app's layout
                if ss % nold != pos:
                    continue
                old = ss if ss > old else old
                held = held or pos >= n
            elif pos >= n or ss < _get32(h, 16) or (
                    ss - _get32(h, 16) + _get32(h, 20)) % n != pos:
                continue
            elif ss > new:
                new, s0, q0 = ss, _get32(h, 16), _get32(h, 20)
            low = ss if ss < low else low
        self.spare_ready = False
        self._point = True  # this layout's first sector is in flash (or the journal is blank)
        self.torn_area = None if held else (self._p, self._room)
        if new:
            self._s0, self._q0 = s0, q0
        elif old:  # the next sector opened is the first of this layout, after the old head
            self._point = False
            self._s0 = old + 1
            q = old % nold + 1
            self._q0 = q if q < n else 0
        else:
            # blank journal: the first append opens sector sseq 1 (and draws the epoch)
            self._s0 = self._q0 = 1
            self.epoch = 0
            self.head = 0
            self._hpos = 0
            self.tail = 1
            self._first = 1
            self._slot = SLOTS
            self.next_seq = self.acked + 1
            return
        self.head = head = new or old
        self._hpos = pos = self._pos(head)
        self._first = self._header(pos)[1]
        self.epoch = _LEGACY if h[15] == 0xFF else _get32(h, 12)
        lo, hi = 1, SLOTS  # first blank slot: slots before it were programmed in order
        while lo < hi:
            mid = (lo + hi) // 2
            if self._slot_blank(pos, mid):
                hi = mid
            else:
                lo = mid + 1
        self._slot = lo if self._point else SLOTS
        self.next_seq = self._first
        s = lo - 1
        while s >= 1:
            if self._read_rec(pos, s):
                self.next_seq = _get32(self._rec, 4) + 1
                break
            s -= 1
        if self.acked >= self.next_seq:
            self.acked = self.next_seq - 1
        self.tail = low

    def _load_cursor(self):
        best = 0
        best_sec = 0
        wp = [0, 0]
        b = self._scan
        for k in range(_CURSOR_SECTORS):
            blk = self._cur0 + k
            for off in range(0, SECTOR, _SCAN):
                self._p.readblocks(blk, b, off)
                for i in range(0, _SCAN, _ENTRY):
                    if _blank(b, i, _ENTRY):
                        continue
                    wp[k] = (off + i) // _ENTRY + 1
                    v = _get32(b, i)
                    if v ^ _get32(b, i + 4) == 0xFFFFFFFF and v >= best:
                        best = v
                        best_sec = k
        self.acked = best
        self._cur = best_sec
        self._cur_wp = wp[best_sec]

    # -- appending ---------------------------------------------------------------------------
    def prepare(self):
        """Idle-time work: have the next sector erased before the head sector fills, so an
        append is a single program; and the migration's steps (docs/ota.md). Returns False
        when the journal is full."""
        if not self._point:
            if not self._spare():
                return False
            self._open_sector()  # the first sector of this layout, after the old head
        if self.torn_area is None:
            self._release()
        return self._spare()

    def _release(self):
        """The previous layout's sectors outside this one's record area (the torn log's two)
        are erased once every record in them is acknowledged: all older ones are then too."""
        nold = self._nold
        for pos in range(self.sectors, nold):
            x = self._header(pos)
            if x is None or not _blank(self._hdr, 16, 4) or x[0] % nold != pos:
                continue
            # its successor (ss < head) gives its last record; gone: erased, acknowledged
            h2 = self._header(self._pos(x[0] + 1))
            if h2 is not None and h2[0] == x[0] + 1 and h2[1] - 1 > self.acked:
                return
            self._p.ioctl(6, pos)
        self.torn_area = (self._p, self._room)

    def _spare(self):
        if self.spare_ready:
            return True
        nxt = self.head + 1
        pos = self._pos(nxt)
        h = self._header(pos)
        if h is not None and h[0] < nxt:
            # the victim is the oldest sector: recycle it only when all of it is acknowledged
            # (its successor gone: released by the migration, so acknowledged, and so is it)
            v = h[0]
            h2 = self._header(self._pos(v + 1))
            if h2 is not None and h2[0] == v + 1 and h2[1] - 1 > self.acked:
                self.full = True
                return False
            self._p.ioctl(6, pos)
            self.tail = v + 1
        elif not self._sector_blank(pos):
            self._p.ioctl(6, pos)
        self.full = False
        self.spare_ready = True
        return True

    def _sector_blank(self, pos):
        b = self._scan
        for off in range(0, SECTOR, _SCAN):
            self._p.readblocks(pos, b, off)
            if not _blank(b, 0, _SCAN):
                return False
        return True

    def _open_sector(self):
        if not self._spare():
            raise JournalFull()
        nxt = self.head + 1
        h = self._hdr
        m = _HDR_MAGIC
        for i in range(REC):
            h[i] = m[i] if i < 4 else 0xFF
        if not self.epoch:
            self.epoch = _fresh_epoch()
        _put32(h, 4, nxt)
        _put32(h, 8, self.next_seq)
        _put32(h, 12, self.epoch)
        _put32(h, 16, self._s0)  # the layout (docs/reader.md)
        _put32(h, 20, self._q0)
        crc_put(h, 0, 28)
        pos = self._pos(nxt)
        self._p.writeblocks(pos, h, 0)
        self._point = True
        if self.head == 0:
            self.tail = nxt
        self.head = nxt
        self._hpos = pos
        self._first = self.next_seq
        self._slot = 1
        self.spare_ready = False

    def append(self, verdict, reason, mode, now_s, key, list_seq, kind, category, ms, station,
               proof=PROOF_NONE):
        """Write one verdict record; returns its sequence number once it is durable in flash.
        Raises JournalFull (nothing written) when no sector can be recycled."""
        if self._slot >= SLOTS:
            self._open_sector()
        r = self._rec
        r[0] = _MAGIC_REC
        r[1] = verdict
        r[2] = reason
        r[3] = mode
        _put32(r, 8, now_s or 0)
        _put32(r, 12, key)
        _put32(r, 16, list_seq)
        r[20] = kind
        r[21] = category & 0xFF
        ms = ms if ms < 0xFFFF else 0xFFFF
        r[22] = ms & 0xFF
        r[23] = ms >> 8
        r[24] = station & 0xFF
        r[25] = (station >> 8) & 0xFF
        r[26] = proof
        r[27] = 0xFF
        return self._program()

    def append_raw(self, src, off):
        """Write the record laid out in src[off:off+28] (magic and fields; its sequence number
        and CRC are filled in here); returns the sequence number once durable. Only the
        purchase and PSAM kinds: a record of a kind the boot scan does not know would read as
        torn."""
        m = src[off]
        if m != MAGIC_PURCHASE and m != MAGIC_PURCHASE2 and m != MAGIC_PSAM:
            raise JournalError(22, "record kind")
        if self._slot >= SLOTS:
            self._open_sector()
        r = self._rec
        for i in range(28):
            r[i] = src[off + i]
        return self._program()

    def _program(self):
        seq = self.next_seq
        r = self._rec
        _put32(r, 4, seq)
        crc_put(r, 0, 28)
        slot = self._slot
        self._slot = slot + 1  # a failed program still spends the slot (it is not blank)
        self._p.writeblocks(self._hpos, r, slot * REC)
        self.next_seq = seq + 1
        return seq

    # -- upload (sync) -----------------------------------------------------------------------
    def backlog(self):
        """Records written but not yet acknowledged by the server."""
        return self.next_seq - 1 - self.acked

    def capacity(self):
        """Unacknowledged records the journal holds before it is full (every sector)."""
        return self.sectors * PER_SECTOR

    def ack(self, upto_seq):
        """The server acknowledged every record up to upto_seq: persist the cursor (one
        8-byte program; the other cursor sector is erased once per 512 acks)."""
        if upto_seq > self.next_seq - 1:
            upto_seq = self.next_seq - 1
        if upto_seq <= self.acked:
            return self.acked
        if self._cur_wp >= _ENTRIES:
            self._cur = 1 - self._cur
            self._p.ioctl(6, self._cur0 + self._cur)
            self._cur_wp = 0
        e = self._ent
        _put32(e, 0, upto_seq)
        _put32(e, 4, upto_seq ^ 0xFFFFFFFF)
        wp = self._cur_wp
        self._cur_wp = wp + 1
        self._p.writeblocks(self._cur0 + self._cur, e, wp * _ENTRY)
        self.acked = upto_seq
        return upto_seq

    def _find(self, seq):
        """Sector sequence number of the sector that holds record `seq` (binary search on the
        first_seq in the headers)."""
        lo, hi = self.tail, self.head
        while lo < hi:
            mid = (lo + hi + 1) // 2
            m = mid  # the first sector in flash from mid on (the migration may leave a gap)
            h = self._header(self._pos(m))
            while (h is None or h[0] != m) and m < hi:
                m += 1
                h = self._header(self._pos(m))
            if h is not None and h[0] == m and h[1] <= seq:
                lo = m
            else:
                hi = mid - 1
        return lo

    def records(self, start, max_records):
        """Raw records with seq >= start, oldest first, at most max_records (allocates: for
        the upload batch and tests, not the tap path)."""
        out = []
        if self.head == 0 or start >= self.next_seq:
            return out
        ss = self._find(start)
        while ss <= self.head and len(out) < max_records:
            pos = self._pos(ss)
            h = self._header(pos)
            if h is not None and h[0] == ss:
                end = self._slot if ss == self.head else SLOTS
                for slot in range(1, end):
                    if self._read_rec(pos, slot) and _get32(self._rec, 4) >= start:
                        out.append(bytes(self._rec))
                        if len(out) >= max_records:
                            break
            ss += 1
        return out

    def pending(self, max_records):
        """The next upload batch: unacknowledged raw records, oldest first."""
        return self.records(self.acked + 1, max_records)

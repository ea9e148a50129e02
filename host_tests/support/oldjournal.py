"""The previous app's journal (before the torn-purchase log), as a small writer for the migration
tests (MicroPython, on the NOR model): record sectors 0..total-3 placed by sseq % (total - 2),
headers with 0xFF in bytes 16..27, the upload cursor in the last two sectors; records as that
app wrote them (a purchase's 0x51 with the terminal number in it, byte 3 0xFF).

Written here from that layout (docs/ota.md), not run from git history: the tests then need no
git checkout of an old commit, and the layout is small and frozen."""

from struct import pack_into

from journal import REC, SLOTS, crc_put


def verdict(i):
    """28 bytes of verdict record i, the fields host_tests' rec(j, i) gives Journal.append."""
    r = bytearray(b"\xff" * 28)
    r[0], r[1], r[2], r[3] = 0x52, 1 + i % 3, i % 27, i % 4
    pack_into("<IIIBBHH", r, 8, 1_700_000_000 + i, (i * 7919) & 0x3FFFFFFF, 42, 1 + i % 4,
              i % 5, i % 300, 1234)
    return r


class OldJournal:
    def __init__(self, part, epoch=0x1234567, head=0, seq=1):
        """head, seq: a journal that has run a while (its sectors up to sseq `head` already
        recycled and blank), so a test reaches a full partition's last sectors quickly."""
        total = part.ioctl(4, 0)
        self.p = part
        self.n = total - 2
        self.cur0 = total - 2
        self.epoch = epoch
        self.head = head
        self.slot = SLOTS
        self.seq = seq
        self.first = {}  # sseq -> its first record's seq
        self.acked = 0
        self.wp = [0, 0]
        self.cs = 0

    def append(self, raw):
        """raw: bytes 0..27 (kind first); returns the record's seq."""
        if self.slot >= SLOTS:
            self._open()
        r = bytearray(raw) + bytearray(4)
        pack_into("<I", r, 4, self.seq)
        crc_put(r, 0, 28)
        self.p.writeblocks(self.head % self.n, r, self.slot * REC)
        self.slot += 1
        self.seq += 1
        return self.seq - 1

    def _open(self):
        nxt = self.head + 1
        victim = nxt - self.n
        if victim in self.first:
            if self.first[victim + 1] - 1 > self.acked:
                raise OSError(28, "journal full")
            del self.first[victim]
        self.p.ioctl(6, nxt % self.n)
        h = bytearray(b"JRN1" + b"\xff" * 28)
        pack_into("<III", h, 4, nxt, self.seq, self.epoch)
        crc_put(h, 0, 28)
        self.p.writeblocks(nxt % self.n, h, 0)
        self.first[nxt] = self.seq
        self.head = nxt
        self.slot = 1

    def ack(self, upto):
        if self.wp[self.cs] >= 512:
            self.cs ^= 1
            self.p.ioctl(6, self.cur0 + self.cs)
            self.wp[self.cs] = 0
        e = bytearray(8)
        pack_into("<II", e, 0, upto, upto ^ 0xFFFFFFFF)
        self.p.writeblocks(self.cur0 + self.cs, e, self.wp[self.cs] * 8)
        self.wp[self.cs] += 1
        self.acked = upto

"""The torn-purchase log: what a DEBIT carried, in flash before it goes out, so a reader that
loses power (or resets) with a debit unanswered still finishes it with GET TRANSACTION PROVE on
the card's next tap (never two charges, never two openings for one journey).

Why not a file: a LittleFS commit costs about an erase (tens of ms) and would sit in every
purchase before the DEBIT. Here an entry is one 128-byte program into a pre-erased slot of two
4 KiB sectors of the journal partition (journal.TORN_SECTORS, which the journal never uses),
used in turn: 32 entries a sector, each with its number (increasing) and a CRC, so a torn
program reads as no entry. Nothing is written to clear an entry: on boot the caller keeps the
entries whose purchase is not in the journal (ticketing.py), so a finished purchase costs no
second program. The other sector is erased ahead of time (`erase_ahead`), once the caller has
copied into the current one what it still needs from it (`older`).
"""

from journal import crc_ok, crc_put
from micropython import const

ENTRY = const(128)
PER = const(32)  # entries per 4 KiB sector
MAGIC = const(0x54)  # 'T'
_CRC = const(72)  # entries use bytes 0..71 (ticketing._Torn), the CRC follows


def _get32(b, o):
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)


def _blank(b):
    for x in b:
        if x != 0xFF:
            return False
    return True


class TornLog:
    def __init__(self, part, first):
        """part: the journal partition; first: the first of the log's two blocks."""
        self._p = part
        self._b0 = first
        self._e = self.buf = bytearray(ENTRY)  # read into; the caller packs entries into it
        self.n = 1  # the next entry's number
        self._sec = 0  # the sector being written (0, 1)
        self._slot = 0  # its next slot
        self._first = 1  # the number of its first entry
        self.spare = False  # the other sector is known erased
        self._mount()

    def _read(self, sec, slot):
        """The slot into self._e; True when it holds a valid entry."""
        e = self._e
        self._p.readblocks(self._b0 + sec, e, slot * ENTRY)
        return e[0] == MAGIC and crc_ok(e, 0, _CRC)

    def _mount(self):
        best = 0
        used = [0, 0]  # slots spent (valid or torn) per sector
        first = [0, 0]
        for sec in range(2):
            for slot in range(PER):
                if self._read(sec, slot):
                    n = _get32(self._e, 4)
                    if not first[sec]:
                        first[sec] = n
                    if n >= best:
                        best = n
                        self._sec = sec
                if not _blank(self._e):
                    used[sec] = slot + 1
        self.n = best + 1
        self._slot = used[self._sec]
        self._first = first[self._sec] or self.n
        self.spare = used[self._sec ^ 1] == 0

    def entry(self, i):
        """Entry slot i (0 .. 2 * PER - 1) in a buffer of the log's own (valid until the next
        call), or None when it holds no valid entry. Boot reads them one at a time: a list of
        them all would be 8 KB of short-lived heap between the app's long-lived objects."""
        return self._e if self._read(i // PER, i % PER) else None

    def put(self, src):
        """Write the entry laid out in src[0:72] (self.buf, or any buffer; its magic, number
        and CRC are set here, in src too); returns its number once it is in flash."""
        if self._slot >= PER:
            if not self.spare:
                self._erase_other()
            self._sec ^= 1
            self._slot = 0
            self._first = self.n
            self.spare = False
        n = self.n
        src[0] = MAGIC
        src[4] = n & 0xFF
        src[5] = (n >> 8) & 0xFF
        src[6] = (n >> 16) & 0xFF
        src[7] = (n >> 24) & 0x3F
        crc_put(src, 0, _CRC)
        self._p.writeblocks(self._b0 + self._sec, src, self._slot * ENTRY)
        self._slot += 1
        self.n = n + 1
        return n

    def older(self, n):
        """Entry `n` is in the sector the next erase_ahead() would erase."""
        return n < self._first

    def erase_ahead(self):
        """Idle-time work: erase the other sector so the next sector change is a program.
        The caller has put again, first, whatever it still needs from it."""
        if not self.spare:
            self._erase_other()

    def _erase_other(self):
        self._p.ioctl(6, self._b0 + (self._sec ^ 1))
        self.spare = True

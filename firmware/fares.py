"""The fare table: signed, versioned, delivered like the lists (a `fares` manifest signed by
the list key, its file checked by size and SHA-256), and priced on the reader without
allocating.

File `fares.bin` (big-endian; built by `flash.py fares`, docs/reader.md "Fares"):

    0   "FAR1"
    4   version u32 (= the manifest's)
    8   stations u16, bands u8, card types u8
    12  entry charge u16 (fen, taken at entry and counted against the exit fare)
    14  cap u16 (highest fare of a journey, 0 = none)
    16  penalty u16 (exit with no entry record)
    18  transfer s u16 (an entry this soon after an exit continues that journey)
    20  max trip min u16 (0 = none), 22 overtime surcharge u16
    24  beyond step u16 (100 m), 26 beyond add u16 (fen per step past the last band)
    28  flat fare u16 (bus readers), 30 minimum balance to enter u16 (fen)
    32  bands x (up to u16 in 100 m, fare u16)
        card types x (type u8, percent u8)
        station ids x u16, ascending
        distances: stations x stations u16 (100 m; FFFF = no route), row = exit station

The reader keeps the header, bands, concessions, station ids and one row: the distances from
every station to its own.
"""

import os
from array import array

import signedmanifest as sm
from micropython import const

SM_PATH = "/fares.sm"
BIN_PATH = "/fares.bin"
MAGIC = b"FAR1"
MAX_STATIONS = const(4096)
MAX_BANDS = const(32)
MAX_TYPES = const(32)
NO_ROUTE = const(0xFFFF)
_HDR = const(32)


class FareError(ValueError):
    def __init__(self, what):
        super().__init__("fare table: %s" % what)
        self.code = 22  # EINVAL


def _u16(b, o):
    return b[o] << 8 | b[o + 1]


def _zeros(n):
    return array("H", (0 for _ in range(n)))


class FareTable:
    """A verified table for one station. `version`, `entry_charge`, `penalty`, `transfer_s`,
    `flat`, `min_balance`; `price()` for a journey ending here."""

    def __init__(self, station):
        self.station = station
        self.version = 0
        self.bands = array("H")
        self.types = array("B")
        self.ids = array("H")
        self.row = array("H")

    def _header(self, h):
        if h[0:4] != MAGIC:
            raise FareError("magic")
        self.version = h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7]
        self.n = _u16(h, 8)
        self.nb = h[10]
        self.nt = h[11]
        if not 1 <= self.n <= MAX_STATIONS or not 1 <= self.nb <= MAX_BANDS or self.nt > MAX_TYPES:
            raise FareError("counts")
        self.entry_charge = _u16(h, 12)
        self.cap = _u16(h, 14)
        self.penalty = _u16(h, 16)
        self.transfer_s = _u16(h, 18)
        self.max_trip_s = _u16(h, 20) * 60
        self.overtime = _u16(h, 22)
        self.step = _u16(h, 24)
        self.add = _u16(h, 26)
        self.flat = _u16(h, 28)
        self.min_balance = _u16(h, 30)

    def size(self):
        t = self.nt * 2
        return _HDR + self.nb * 4 + t + (t & 2) + self.n * 2 + self.n * self.n * 2

    def load(self, f, size, check):
        """Read an opened table file: every byte through check.update (its signed hash), the
        small parts and this station's row kept."""
        buf = bytearray(256)
        mv = memoryview(buf)
        pos = 0

        def read(n):
            nonlocal pos
            got = f.readinto(mv[:n])
            if got != n:
                raise FareError("cut at %d" % pos)
            check.update(mv[:n])
            pos += n
            return buf

        self._header(read(_HDR))
        if self.size() != size:
            raise FareError("size %d, header says %d" % (size, self.size()))
        b = read(self.nb * 4)
        self.bands = array("H", (_u16(b, i * 2) for i in range(self.nb * 2)))
        t = self.nt * 2 + (self.nt * 2 & 2)
        b = read(t)
        self.types = array("B", b[:self.nt * 2])
        ids = _zeros(self.n)
        k = 0
        while k < self.n:
            m = min(self.n - k, 128)
            b = read(m * 2)
            for i in range(m):
                ids[k + i] = _u16(b, i * 2)
            k += m
        for i in range(1, self.n):
            if ids[i] <= ids[i - 1]:
                raise FareError("station ids not ascending")
        self.ids = ids
        me = self.index(self.station)
        if me < 0:
            raise FareError("station %d not in the table" % self.station)
        row = _zeros(self.n)
        for r in range(self.n):
            k = 0
            while k < self.n:
                m = min(self.n - k, 128)
                b = read(m * 2)
                if r == me:
                    for i in range(m):
                        row[k + i] = _u16(b, i * 2)
                k += m
        self.row = row
        for i in range(self.nb - 1):
            if self.bands[2 * i + 2] <= self.bands[2 * i]:
                raise FareError("bands not ascending")

    def index(self, station):
        """Position of a station id (binary search; -1 when unknown). Allocation-free."""
        ids = self.ids
        lo = 0
        hi = len(ids) - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            v = ids[mid]
            if v == station:
                return mid
            if v < station:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def concession(self, fare, card_type):
        t = self.types
        for i in range(0, len(t), 2):
            if t[i] == card_type:
                return fare * t[i + 1] // 100
        return fare

    def price(self, origin, card_type, journey_s):
        """The fare in fen of a journey from `origin` to this station, or -1 when the table
        knows no route. Allocation-free (small integers, arrays)."""
        i = self.index(origin)
        if i < 0:
            return -1
        d = self.row[i]
        if d == NO_ROUTE:
            return -1
        b = self.bands
        nb = self.nb
        fare = -1
        for k in range(nb):
            if d <= b[2 * k]:
                fare = b[2 * k + 1]
                break
        if fare < 0:
            fare = b[2 * nb - 1]
            if self.step:
                fare += (d - b[2 * nb - 2] + self.step - 1) // self.step * self.add
        fare = self.concession(fare, card_type)
        if self.cap and fare > self.cap:
            fare = self.cap
        if self.max_trip_s and journey_s > self.max_trip_s:
            fare += self.overtime
        return fare


def load(station, keys, board_name, floor=0, sm_path=SM_PATH, bin_path=BIN_PATH):
    """The installed table, verified: the manifest's signature (kind "fares", a list key), then
    the file against its signed size and hash while it is parsed. Raises FareError or
    sm.ManifestError; OSError when none is installed."""
    size = os.stat(sm_path)[6]
    if size > sm.MAX_MANIFEST:  # read no more than the file: a 16 KiB block may not exist
        raise sm.ManifestError(sm.E_LENGTH, "fares.sm")
    with open(sm_path, "rb") as f:
        raw = f.read(size)
    m = sm.verify(raw, keys, "fares", board_name, floor)
    entry = m.file("fares.bin")
    t = FareTable(station)
    check = sm.FileCheck(entry)
    with open(bin_path, "rb") as f:
        t.load(f, entry[1], check)
    check.finish()
    if t.version != m.version:
        raise FareError("file version %d, manifest %d" % (t.version, m.version))
    return t


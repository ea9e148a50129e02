"""NOR-flash model over a host image file.

Behaves like the SPI NOR on an ESP32 module: 4 KiB erase sectors, erase sets bytes to 0xFF,
programming may only clear bits and is refused over bytes that are not erased. Every program and
erase is one counted operation; a test can cut the power at operation N (cleanly, or with a torn
program/erase), after which the chip is dead until the emulated reader boots again.

The image is a host file read and written through one small preallocated buffer, so the 16 MiB of
flash never sits in the interpreter's heap.
"""

import micropython
from micropython import const

SECTOR = const(4096)
_CHUNK = const(256)

# Torn-write variants for the operation that is cut.
CLEAN = const(0)  # the cut operation never happens
TORN_PREFIX = const(1)  # only a prefix of the program (or erase) lands
TORN_BITS = const(2)  # a random subset of the 1->0 transitions lands


class PowerCut(BaseException):
    """The emulated supply failed. Derives from BaseException so `except Exception` in firmware
    code cannot swallow it; the host boot code turns it into a process exit."""


class FlashError(OSError):
    """A NOR rule was broken: out of range, misaligned erase, or program over unerased bytes."""


@micropython.viper
def _all_erased(buf, n: int) -> bool:
    p = ptr8(buf)
    i = 0
    while i < n:
        if p[i] != 0xFF:
            return False
        i += 1
    return True


@micropython.viper
def _fill_ff(buf, n: int):
    p = ptr8(buf)
    i = 0
    while i < n:
        p[i] = 0xFF
        i += 1


class NorFlash:
    def __init__(self, path, size):
        self.size = size
        self._f = open(path, "r+b")
        self._buf = bytearray(_CHUNK)
        self.ops = 0  # programs + erases since power-on
        self.erases = 0
        self.programs = 0
        self.cut_at = 0  # 0: never; N: the Nth operation is cut
        self.torn = CLEAN
        self.dead = False
        self.trace = None  # optional callable(kind, addr, length) for wear accounting in tests

    @classmethod
    def erased(cls, path, size):
        """A new chip on a fresh, fully erased image file (tests and benchmarks)."""
        b = bytearray(SECTOR)
        _fill_ff(b, SECTOR)
        with open(path, "wb") as f:
            for _ in range(size // SECTOR):
                f.write(b)
        return cls(path, size)

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError(22)  # EINVAL
        if self.dead:
            raise PowerCut()

    def _cut_now(self):
        self.ops += 1
        return self.cut_at and self.ops >= self.cut_at

    def _rand(self, limit, salt=0):
        # Deterministic per cut point, so a failing run can be replayed exactly.
        x = ((self.cut_at + salt) * 1103515245 + 12345) & 0x7FFFFFFF
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        return (x >> 8) % limit if limit else 0

    def read(self, addr, buf):
        n = len(buf)
        self._check(addr, n)
        self._f.seek(addr)
        self._f.readinto(buf)

    def program(self, addr, buf):
        n = len(buf)
        self._check(addr, n)
        f = self._f
        b = self._buf
        done = 0
        while done < n:
            k = min(_CHUNK, n - done)
            f.seek(addr + done)
            f.readinto(b, k)
            if not _all_erased(b, k):
                raise FlashError(5)  # EIO: program over unerased bytes
            done += k
        if self._cut_now():
            self._die_programming(addr, buf, n)
        if self.trace:
            self.trace(1, addr, n)
        f.seek(addr)
        f.write(buf)
        self.programs += 1

    def erase(self, addr):
        if addr % SECTOR:
            raise FlashError(22)
        self._check(addr, SECTOR)
        if self._cut_now():
            self._die_erasing(addr)
        if self.trace:
            self.trace(2, addr, SECTOR)
        self._fill(addr, SECTOR)
        self.erases += 1

    def _fill(self, addr, n):
        b = self._buf
        _fill_ff(b, _CHUNK)
        f = self._f
        f.seek(addr)
        while n > 0:
            k = min(_CHUNK, n)
            f.write(b, 0, k)
            n -= k

    def _die_programming(self, addr, buf, n):
        f = self._f
        if self.torn == TORN_PREFIX:
            f.seek(addr)
            f.write(buf, 0, self._rand(n))
        elif self.torn == TORN_BITS:
            b = self._buf
            done = 0
            while done < n:
                k = min(_CHUNK, n - done)
                for i in range(k):
                    # keep a random subset of the bits the program would have cleared
                    b[i] = buf[done + i] | self._rand(256, done + i)
                f.seek(addr + done)
                f.write(b, 0, k)
                done += k
        self._halt()

    def _die_erasing(self, addr):
        if self.torn != CLEAN:
            self._fill(addr, self._rand(SECTOR))
        self._halt()

    def _halt(self):
        self.dead = True
        f = self._f
        f.flush()
        raise PowerCut()

    def flush(self):
        self._f.flush()

    def copy_to(self, path, addr=0, n=None):
        """Snapshot [addr, addr+n) of the image (tests restore it between cut points)."""
        self._copy(path, "wb", addr, self.size - addr if n is None else n)

    def copy_from(self, path, addr=0, n=None):
        """Restore a snapshot at `addr` and bring the chip back to life, as a new power-on."""
        self._copy(path, "rb", addr, n)
        self.dead = False
        self.ops = self.erases = self.programs = 0

    def _copy(self, path, mode, addr, n):
        b = bytearray(SECTOR)  # test-only path: a transient buffer is fine here
        f = self._f
        other = open(path, mode)
        f.seek(addr)
        while n is None or n > 0:
            if mode == "wb":
                k = f.readinto(b, min(SECTOR, n))
                other.write(b, 0, k)
            else:
                k = other.readinto(b, SECTOR if n is None else min(SECTOR, n))
                if not k:
                    break
                f.write(b, 0, k)
            if n is not None:
                n -= k
        other.close()
        f.flush()

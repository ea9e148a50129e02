"""Driver for a GM65/GM805-class serial scan engine (Grow "zone bit" protocol).

Configuration: `7E 00 | type | len | addrH addrL | data | CRC-16/XMODEM` commands, answered by
`02 00 00 | len | data | CRC`; the engine stays silent on a bad CRC or a malformed command, so
every command has a timeout and retries. Scan data has no framing at all: a code ends at the
terminator (CR by default) or after an idle gap, whichever comes first. A reply can arrive late
(queued behind scan output that was on the wire): anything starting with `02 00 00` at the start
of a code is taken as a reply, so scan data must not begin with STX (ride codes never do).

The receive path (`poll`/`feed`) allocates nothing: a fixed chunk buffer, a fixed assembly
buffer (over-long input is dropped and counted) and a fixed copy of the last code, which also
serves to suppress the same code re-read while it stays in view. `poll()` is the non-blocking
core; `command()` is the thin async layer over it.
"""

import asyncio

import micropython
from micropython import const

READ = const(0x07)
WRITE = const(0x08)
SAVE = const(0x09)
CRC_BYPASS = const(0xABCD)  # the engine accepts this in place of the CRC

ZONE_MODE = const(0x0000)  # bits 1-0: mode
ZONE_TRIGGER = const(0x0002)  # bit 0: software trigger (command-triggered mode)
MODE_MANUAL = const(0)
MODE_COMMAND = const(1)
MODE_CONTINUOUS = const(2)
MODE_SENSE = const(3)

ETIMEDOUT = const(110)
EINVAL = const(22)

_MAX_WRITE = const(245)
_CHUNK = const(64)
_R_IDLE = const(0)
_R_BODY = const(1)
_LATE_MS = const(1000)  # a reply this late after its command is still recognised


@micropython.viper
def _plain(src: ptr8, i: int, end: int, dst: ptr8, n: int, cap: int, term: int) -> int:
    """Copy the plain scan bytes of src[i:end] (up to a terminator, LF, CR or STX) to dst[n:cap];
    returns how many there were (some may not have fitted). Native code: an RSA ride code is
    1,216 bytes, which a bytecode loop over every byte takes ~60 ms of an ESP32 for (counted)."""
    k = i
    while k < end:
        b = src[k]
        if b == term or b == 10 or b == 13 or b == 2:
            break
        if n < cap:
            dst[n] = b
            n += 1
        k += 1
    return k - i


@micropython.viper
def _differ(a: ptr8, b: ptr8, n: int) -> int:
    """1 if a[:n] and b[:n] differ (the same code re-read is compared on every read)."""
    for i in range(n):
        if a[i] != b[i]:
            return 1
    return 0


@micropython.viper
def _copy(dst: ptr8, src: ptr8, n: int):
    for i in range(n):
        dst[i] = src[i]


class ScanEngineError(OSError):
    """A command the engine did not answer (errno ETIMEDOUT) or a bad argument (EINVAL)."""


def crc16_xmodem(buf, off, n, crc=0):
    """CRC-16/XMODEM (poly 0x1021, init 0) of buf[off:off+n], allocation-free."""
    for i in range(off, off + n):
        crc ^= buf[i] << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class ScanEngine:
    def __init__(self, uart, clock, bufsize=512, gap_ms=40, same_ms=3000, terminator=0x0D,
                 baud=9600):
        self._uart = uart
        self.baud = baud  # for reply wire times (a 256-byte zone read takes 270 ms at 9600)
        self._clock = clock
        self.gap_ms = gap_ms
        self.same_ms = same_ms
        self.terminator = terminator
        self.code = bytearray(bufsize)  # the last delivered code (valid until the next poll)
        self.code_len = 0
        self.arriving = bytearray(bufsize)  # the code being received, arriving[:partial()]
        self._n = 0  # bytes assembled in arriving
        self._over = False  # current input ran past the buffer: dropped at its end
        self._last_ms = 0  # when the last scan byte arrived
        self.start_ms = 0  # when the first byte of the current / last delivered code arrived
        self.rx_ms = 0  # when anything last arrived (the engine is alive)
        self._seen_ms = 0  # when the last delivered code was last read
        self._rx = bytearray(_CHUNK)
        self._rpos = 0
        self._rend = 0
        self.drained = True  # the last poll() found the UART empty
        self._tx = bytearray(8 + _MAX_WRITE)
        self.reply = bytearray(262)  # 02 00 00 len data(<=256) crc crc
        self.reply_len = -1  # data bytes of the last good reply; -1 while none
        self._pending = False
        self._sent_ms = 0
        self._owed = 0  # frames sent (each try counts) whose reply has not come in yet
        self._rstate = _R_IDLE
        self._rn = 0
        self._ready = 0
        # counters (health)
        self.codes = 0
        self.suppressed = 0
        self.overruns = 0
        self.bad_replies = 0
        self.timeouts = 0
        self.late_replies = 0

    # -- configuration commands --
    def send(self, typ, addr, data=b"", n=-1, crc=-1):
        """Write one command frame; the reply is collected by `poll()`. `crc` overrides the
        computed CRC (CRC_BYPASS, or a wrong one in tests)."""
        if n < 0:
            n = len(data)
        if not 1 <= n <= _MAX_WRITE or not 0 <= addr <= 0xFFFF:
            raise ScanEngineError(EINVAL)
        t = self._tx
        t[0] = 0x7E
        t[1] = 0
        t[2] = typ
        t[3] = n
        t[4] = addr >> 8
        t[5] = addr & 0xFF
        for i in range(n):
            t[6 + i] = data[i]
        if crc < 0:
            crc = crc16_xmodem(t, 2, 4 + n)
        t[6 + n] = crc >> 8
        t[7 + n] = crc & 0xFF
        self.reply_len = -1
        self._pending = True
        self._rstate = _R_IDLE
        self._sent_ms = self._clock.ticks_ms()
        self._owed += 1
        self._uart.write(memoryview(t)[: 8 + n])

    async def command(self, typ, addr, data=b"", n=-1, crc=-1, timeout_ms=150, retries=2):
        """Send and wait for the reply; retries on silence. Returns the reply's data length
        (bytes in `self.reply[4:]`); raises ScanEngineError(ETIMEDOUT). The timeout is
        counted from the end of the reply's wire time."""
        clock = self._clock
        answer = ((data[0] or 256) if typ == READ else 1) + 6
        timeout_ms += ((n if n >= 0 else len(data)) + 8) * 10000 // self.baud  # frame out
        timeout_ms += answer * 10000 // self.baud
        for _ in range(retries + 1):
            self.send(typ, addr, data, n, crc)
            t0 = clock.ticks_ms()
            while clock.ticks_diff(clock.ticks_ms(), t0) < timeout_ms:
                await asyncio.sleep_ms(5)
                self.poll()
                if self.reply_len >= 0:
                    return self.reply_len
            self.timeouts += 1
        self._pending = False
        raise ScanEngineError(ETIMEDOUT)

    async def read_zone(self, addr, count=1):
        """Read `count` (1..256) zone bytes into self.reply[4:]; returns the count."""
        one = bytearray(1)
        one[0] = count & 0xFF
        return await self.command(READ, addr, one)

    async def write_zone(self, addr, data):
        return await self.command(WRITE, addr, data)

    async def save(self):
        """Make the volatile zone settings permanent (the engine's flash wears: rarely)."""
        return await self.command(SAVE, 0, b"\x00")

    async def set_mode(self, mode):
        await self.read_zone(ZONE_MODE)
        v = bytearray(1)
        v[0] = (self.reply[4] & 0xFC) | (mode & 3)
        await self.write_zone(ZONE_MODE, v)
        return v[0]

    async def trigger(self):
        """Start one scan session (command-triggered mode)."""
        await self.write_zone(ZONE_TRIGGER, b"\x01")

    # -- receive path (allocation-free) --
    def partial(self):
        """Bytes of a code still arriving (in self.arriving, since self.start_ms), 0 if none:
        lets a caller start on its first part while the rest is on the wire."""
        return 0 if self._over else self._n

    def take(self):
        """Length of a code delivered since the last take() (in self.code), else 0."""
        n = self._ready
        self._ready = 0
        return n

    def poll(self, now=-1):
        """Read what the UART holds and process it. Returns the length of a newly delivered
        code in self.code (0 if none); the rest of the chunk is kept for the next poll."""
        if now < 0:
            now = self._clock.ticks_ms()
        empty = False  # the UART had nothing: only then is a pause on the line a real gap
        if self._rpos >= self._rend:
            got = self._uart.readinto(self._rx, _CHUNK)
            self._rpos = 0
            self._rend = got or 0
            self.drained = not got
            if got:
                self.rx_ms = now
            else:
                empty = True
        n = self._feed(self._rx, self._rend, now)
        if n or not empty:
            return n
        diff = self._clock.ticks_diff
        if (self._n or self._over) and diff(now, self._last_ms) >= self.gap_ms:
            n = self._complete(now)  # idle gap: the code ended without a terminator
        if self._rstate and diff(now, self.rx_ms) >= self.gap_ms:
            self._rstate = _R_IDLE  # a reply cut short: the command will time out
            self.bad_replies += 1
        return n

    def _feed(self, buf, end, now):
        """Process buf[self._rpos:end]; stops after a completed code and returns its length."""
        i = self._rpos
        acc = self.arriving
        cap = len(acc)
        term = self.terminator
        n = self._n
        seen = False  # scan bytes in this chunk (for the idle gap)
        while i < end:
            if not self._rstate:
                k = _plain(buf, i, end, acc, n, cap, term)
                if k:
                    seen = True
                    if not n and not self._over:
                        self.start_ms = now
                    if n + k > cap:
                        self._over = True
                    n = min(n + k, cap)
                    i += k
                    continue
            b = buf[i]
            i += 1
            if (self._rstate or (b == 0x02 and not n)) and self._reply_byte(b, now):
                continue
            if b == term or b == 0x0A or b == 0x0D:
                if n or self._over:
                    self._n = n
                    n = self._complete(now)
                    if n:
                        self._rpos = i
                        return n
                continue
            seen = True
            if not n and not self._over:
                self.start_ms = now
            if n < cap:
                acc[n] = b
                n += 1
            else:
                self._over = True
        if seen:
            self._last_ms = now
        self._n = n
        self._rpos = end
        return 0

    def _reply_byte(self, b, now):
        """Feed a byte to the reply parser; False if it is not part of a reply."""
        r = self.reply
        k = self._rn
        if self._rstate == _R_IDLE:
            if b != 0x02 or self._n:
                return False
            if not self._pending:
                if not self._owed or self._clock.ticks_diff(now, self._sent_ms) > _LATE_MS:
                    self._owed = 0
                    return False  # no command out lately: STX is scan data
                self.late_replies += 1  # answer to a command that already timed out
            self._rstate = _R_BODY
            r[0] = b
            self._rn = 1
            return True
        r[k] = b
        k += 1
        self._rn = k
        if (k == 2 and b != 0x00) or (k == 3 and b != 0x00):
            # not a success reply: give up on it, the command times out and is retried
            self.bad_replies += 1
            self._rstate = _R_IDLE
            self._owed = max(0, self._owed - 1)
            return True
        if k >= 4:
            ln = r[3] or 256
            if k == ln + 6:
                self._rstate = _R_IDLE
                self._owed = max(0, self._owed - 1)  # each frame sent is answered once
                crc = crc16_xmodem(r, 2, ln + 2)
                if crc == (r[ln + 4] << 8 | r[ln + 5]):
                    self.reply_len = ln
                    self._pending = False
                else:
                    self.bad_replies += 1
        return True

    def _complete(self, now):
        n = self._n
        self._n = 0
        if self._over:
            self._over = False
            self.overruns += 1
            return 0
        code = self.code
        if n == self.code_len and self._clock.ticks_diff(now, self._seen_ms) < self.same_ms \
                and not _differ(self.arriving, code, n):
            self._seen_ms = now
            self.suppressed += 1
            return 0
        _copy(code, self.arriving, n)
        self.code_len = n
        self._seen_ms = now
        self.codes += 1
        self._ready = n
        return n

    def forget(self):
        """Drop the same-code memory (the next read of any code is delivered)."""
        self.code_len = 0

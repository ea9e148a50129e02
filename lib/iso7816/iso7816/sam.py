"""A SAM (ISO/IEC 7816 contact card, e.g. a PSAM) on a UART, without blocking.

Wiring the driver copes with: a plain UART at 8E2 whose TX and RX are tied to the card's single
I/O line (every character we send comes back first: `echo=True`), or an interface chip that
separates them (`echo=False`); a reset pin, and a power pin where the board switches VCC. The
card clock (`clk_hz`) is the board's: 1 etu = Fi / (Di x clk).

`open()` (a generator, like every multi-step operation here: drive it with `run()` or step it
from asyncio) cold-resets, reads the ATR, and sends a PPS for the fastest rate both the card
(TA1) and the link (`max_baud`) allow; a refused PPS costs a second reset at the default rate.

An APDU is `start(apdu, n)` then `poll()` until True: the response data is in resp[0:rlen] and
the status word in `sw`. T=0 is handled inside: procedure bytes (INS: the rest, ~INS: one
byte, 60: wait), `61xx` (GET RESPONSE, chained), `6Cxx` (the same header again with Le = xx),
the work waiting time (Mute), the echo. `start`/`poll` allocate nothing (buffers and views are
made once), so a purchase never waits on the garbage collector.
"""

from micropython import const

from .atr import DI, FI, MAX_ATR, Atr, baud, length
from .errors import BadAtr, Collision, Mute, NoAtr, Overflow, ProtocolError, SamError

_IDLE = const(0)
_PROC = const(1)  # waiting for a procedure byte
_DATA = const(2)  # receiving data bytes
_SW2 = const(3)
_DONE = const(4)

_OUT = const(262)  # header + 255 data bytes + margin
_RING = const(256)  # sent characters still to come back on a single I/O line
_NULL = const(0x60)
_ATR_CLOCKS = const(40000)  # first ATR character within 40,000 clock cycles of RST high
_IWT_ETU = const(9600)  # initial waiting time between ATR / PPS characters


class Sam:
    def __init__(self, uart, clock, reset_pin, power_pin=None, clk_hz=3579545, echo=False,
                 max_baud=115200, rsize=258):
        self.uart = uart
        self.clock = clock
        self.rst = reset_pin
        self.pwr = power_pin
        self.clk_hz = clk_hz
        self.echo = echo
        self.max_baud = max_baud
        self.resp = bytearray(rsize)
        self.rlen = 0
        self.sw = 0
        self.atr = None
        self.fi = self.di = 1
        self.baud = 0
        # counters (diagnostics, benchmark)
        self.apdus = 0
        self.chars_out = 0
        self.chars_in = 0
        self.nulls = 0
        self.get_responses = 0
        self.resends = 0  # 6Cxx
        self.stale = 0
        self._rx = bytearray(32)
        self._pos = 0
        self._cnt = 0
        self._out = bytearray(_OUT)
        self._mv = memoryview(self._out)
        self._tv = [None] * (_OUT + 1)
        self._on = 0
        self._oi = 0
        self._one = bytearray(1)
        self._ring = bytearray(_RING)
        self._rw = 0
        self._rr = 0
        self._echo_n = 0
        self._hdr = bytearray(5)
        self._st = _IDLE
        self._apdu = None
        self._di = 0
        self._rem = 0
        self._take = 0
        self._din = False
        self._le = 0
        self._rbase = 0
        self._sw1 = 0
        self._ins = 0
        self._retry = 0
        self._deadline = 0
        self._tx_end = 0
        self._next_tx = 0
        self._char_us = 1250
        self._pace_us = 0
        self._wwt_us = 1000000

    # -- rate and timing -------------------------------------------------------------------
    def _set_rate(self, fi, di):
        """Fi/Di indices in force: UART rate, character time, work waiting time."""
        self.fi = fi
        self.di = di
        clk = self.clk_hz
        self.baud = baud(clk, fi, di)
        self.uart.init(baudrate=self.baud, bits=8, parity=0, stop=2)
        f = FI[fi]
        d = DI[di]
        self._char_us = 12 * f * 1000000 // (d * clk) + 1
        wi = self.atr.wi if self.atr is not None else 10
        # WWT = 960 x WI x Fi / f; plus a character and a millisecond of polling slack
        self._wwt_us = 960 * wi * f * 1000 // (clk // 1000) + self._char_us + 1000
        g = self.atr.guard if self.atr is not None else 0
        self._pace_us = (12 + g) * f * 1000000 // (d * clk) + 1 if 0 < g < 255 else 0

    def _etu_us(self, n):
        return n * FI[self.fi] * 1000000 // (DI[self.di] * self.clk_hz) + 1

    # -- characters ------------------------------------------------------------------------
    def _drain(self):
        u = self.uart
        while u.any():
            self.stale += u.readinto(self._rx) or 0
        self._pos = self._cnt = 0
        self._echo_n = 0
        self._on = self._oi = 0

    def _getc(self):
        """The next character from the card (our own echoes checked and skipped), or -1."""
        while True:
            if self._pos >= self._cnt:
                n = self.uart.readinto(self._rx)
                if not n:
                    return -1
                self._pos = 0
                self._cnt = n
            b = self._rx[self._pos]
            self._pos += 1
            self.chars_in += 1
            if not self._echo_n:
                return b
            if b != self._ring[self._rr]:
                self._st = _IDLE
                raise Collision()
            self._rr = (self._rr + 1) & 0xFF
            self._echo_n -= 1

    def _queue(self, src, off, n):
        o = self._out
        at = self._on
        if at + n > _OUT:
            raise Overflow()
        for i in range(n):
            o[at + i] = src[off + i]
        self._on = at + n

    def _wrote(self, src, off, n, now):
        self.chars_out += n
        if self.echo:
            r = self._ring
            w = self._rw
            for i in range(n):
                r[w] = src[off + i]
                w = (w + 1) & 0xFF
            self._rw = w
            self._echo_n += n
        self._deadline = self.clock.ticks_add(now, n * self._char_us + self._wwt_us)
        self._tx_end = self.clock.ticks_add(now, n * self._char_us)

    def _flush(self, now):
        """Send what is queued: at once, or one character at a time when TC1 asks for extra
        guard time (12 + N etu between characters, more than a UART's two stop bits)."""
        n = self._on
        if not self._pace_us:
            v = self._tv[n]
            if v is None:
                v = self._tv[n] = self._mv[:n]
            self.uart.write(v)
            self._wrote(self._out, 0, n, now)
            self._on = 0
            return
        clock = self.clock
        if self._oi and clock.ticks_diff(now, self._next_tx) < 0:
            return
        one = self._one
        one[0] = self._out[self._oi]
        self.uart.write(one)
        self._wrote(one, 0, 1, now)
        self._next_tx = clock.ticks_add(now, self._pace_us)
        self._oi += 1
        if self._oi >= n:
            self._on = self._oi = 0

    # -- APDU (T=0) --------------------------------------------------------------------------
    def start(self, apdu, n):
        """Begin sending the command APDU apdu[0:n] (cases 1-4, short); apdu must stay
        unchanged until poll() returns True."""
        if self.atr is None:
            raise SamError(107, "not activated")  # ENOTCONN
        if n < 4 or n > 261:
            raise SamError(22, "APDU length")
        h = self._hdr
        for i in range(4):
            h[i] = apdu[i]
        le = -1
        if n == 4:
            lc = 0
            h[4] = 0
        elif n == 5:
            lc = 0
            h[4] = apdu[4]
            le = apdu[4]
        else:
            lc = apdu[4]
            if lc == 0 or (n != 5 + lc and n != 6 + lc):
                raise SamError(22, "APDU length")
            h[4] = lc
            if n == 6 + lc:
                le = apdu[5 + lc]
        if self._st != _IDLE and self._st != _DONE:
            self._st = _IDLE
            raise SamError(16, "APDU still running")  # EBUSY
        self._drain()
        self.apdus += 1
        self._apdu = apdu
        self._di = 0
        self._le = le
        self.rlen = 0
        self.sw = 0
        self._retry = 1
        self._header(lc == 0 and le >= 0, lc if lc else (le if le >= 0 else 0))

    def _header(self, din, p3):
        """Queue the header in _hdr with P3 = p3; din: the card sends p3 bytes (0 = 256)."""
        h = self._hdr
        h[4] = p3
        self._ins = h[1]
        self._din = din
        self._rem = (p3 or 256) if din else p3
        self._rbase = self.rlen
        self._queue(h, 0, 5)
        self._st = _PROC

    def poll(self):
        """Advance the exchange; True once resp[0:rlen] and sw hold the answer. Raises Mute,
        ProtocolError, Collision, Overflow."""
        st = self._st
        if st == _DONE:
            return True
        if st == _IDLE:
            raise SamError(22, "no APDU running")
        now = self.clock.ticks_us()
        if self._on:
            self._flush(now)
        while True:
            b = self._getc()
            if b < 0:
                break
            if self._on:
                self._st = _IDLE
                raise ProtocolError("character while we still had to send")
            self._deadline = self.clock.ticks_add(now, self._wwt_us)
            if self._byte(b):
                return True
            if self._on:
                self._flush(now)
        if self.clock.ticks_diff(now, self._deadline) > 0:
            self._st = _IDLE
            raise Mute()
        return False

    def _byte(self, b):
        st = self._st
        if st == _PROC:
            ins = self._ins
            if b == _NULL:
                self.nulls += 1
            elif b == ins or b == ins ^ 0xFF:
                k = self._rem if b == ins else 1
                if self._din:
                    if not k:
                        raise self._bad(b)
                    self._take = k
                    self._st = _DATA
                elif k:  # an ACK with nothing left to send (case 1) is tolerated
                    self._queue(self._apdu, 5 + self._di, k)
                    self._di += k
                    self._rem -= k
            elif b & 0xF0 == 0x60 or b & 0xF0 == 0x90:
                self._sw1 = b
                self._st = _SW2
            else:
                raise self._bad(b)
            return False
        if st == _DATA:
            i = self.rlen
            if i >= len(self.resp):
                self._st = _IDLE
                raise Overflow()
            self.resp[i] = b
            self.rlen = i + 1
            self._rem -= 1
            self._take -= 1
            if not self._take:
                self._st = _PROC
            return False
        sw1 = self._sw1
        if sw1 == 0x61:
            # the card has b bytes (0: 256) for us: GET RESPONSE, as often as it says so
            self.get_responses += 1
            h = self._hdr
            h[0] = 0x00
            h[1] = 0xC0
            h[2] = h[3] = 0
            le = self._le
            self._header(True, b if not le or (b and b < le) else le)
            return False
        if sw1 == 0x6C and self._retry:
            # wrong Le: the same header again with Le = b, what came with it dropped
            self._retry = 0
            self.resends += 1
            self.rlen = self._rbase
            self._header(True, b)
            return False
        self.sw = sw1 << 8 | b
        self._st = _DONE
        return True

    def wait_us(self):
        """How long an async caller may wait before poll() has something to do without a
        character arriving: the next paced character to send (TC1 guard time), else the work
        waiting time running out (Mute). A wait that ends on `need()` characters ends sooner."""
        c = self.clock
        now = c.ticks_us()
        t = self._next_tx if self._on else self._deadline
        d = c.ticks_diff(t, now)
        return d + 1 if d > 0 else 0

    def need(self):
        """Characters worth waking for: our own echoes still to come back, then one from the
        card (all the data bytes an INS procedure byte announced, which come together)."""
        k = self._take if self._st == _DATA else 1
        return self._echo_n + k

    def _bad(self, b):
        self._st = _IDLE
        return ProtocolError("procedure byte %02x" % b)

    def transmit(self, apdu, n):
        """Generator: the whole APDU exchange; returns rlen."""
        self.start(apdu, n)
        while not self.poll():
            yield
        return self.rlen

    # -- activation -----------------------------------------------------------------------
    def _wait_us(self, us):
        clock = self.clock
        t0 = clock.ticks_us()
        while clock.ticks_diff(clock.ticks_us(), t0) < us:
            yield

    def _read(self, buf, want, first_us, gap_us, total=None):
        """Generator: up to `want` characters into buf (or, with total(buf, n), until it says
        how many); -1 when nothing came within first_us, else the count received before a
        gap longer than gap_us."""
        clock = self.clock
        n = 0
        t = clock.ticks_us()
        limit = first_us
        while n < want:
            b = self._getc()
            if b >= 0:
                buf[n] = b
                n += 1
                t = clock.ticks_us()
                limit = gap_us
                if total is not None:
                    k = total(buf, n)
                    if k:
                        want = k
                continue
            if clock.ticks_diff(clock.ticks_us(), t) > limit:
                return n if n else -1
            yield
        return n

    def reset(self, cold=True):
        """Generator: cold reset (VCC off and on, where the board switches it) or warm reset
        (RST only), then the ATR at the default rate. Returns the Atr."""
        self._st = _IDLE
        self.atr = None
        self._set_rate(1, 1)
        self.rst.value(0)
        if cold and self.pwr is not None:
            self.pwr.value(0)
            yield from self._wait_us(10000)
            self.pwr.value(1)
        yield from self._wait_us(1000)  # RST low for >= 400 clock cycles with the clock on
        self._drain()
        self.rst.value(1)
        buf = self._out
        first = _ATR_CLOCKS * 1000 // (self.clk_hz // 1000) + self._char_us + 2000
        n = yield from self._read(buf, MAX_ATR + 1, first, self._etu_us(_IWT_ETU), length)
        if n < 0:
            raise NoAtr()
        want = length(buf, n)
        if not want or n < want:
            raise BadAtr("cut after %d bytes" % n)
        atr = Atr(buf, n)
        if not atr.protocols & 1:
            raise BadAtr("T=0 not offered")
        self.atr = atr
        self._set_rate(1, 1)  # timing from the ATR's TC1/TC2
        return atr

    def best_rate(self):
        """(fi, di) indices: the card's Fi with the largest Di it allows that keeps the rate
        within max_baud."""
        atr = self.atr
        fi = atr.fi
        top = DI[atr.di]
        best = 1
        for i in range(1, 10):
            d = DI[i]
            if d <= top and d > DI[best] and baud(self.clk_hz, fi, i) <= self.max_baud:
                best = i
        return fi, best

    def pps(self):
        """Generator: negotiate the fastest common rate (nothing to do when the ATR's TA2 fixes
        it, or when that rate is the default). Returns the baud in use. Raises ProtocolError
        or Mute when the card refuses; the card must then be reset."""
        atr = self.atr
        if atr.specific:
            if atr.specific_ta1:
                self._set_rate(atr.fi, atr.di)
            return self.baud
        fi, di = self.best_rate()
        if FI[fi] == 372 and DI[di] == 1:
            return self.baud
        req = self._hdr
        req[0] = 0xFF
        req[1] = 0x10 | (atr.first & 0x0F)
        req[2] = fi << 4 | di
        req[3] = req[0] ^ req[1] ^ req[2]
        self._drain()
        self._queue(req, 0, 4)
        self._flush(self.clock.ticks_us())
        while self._on:
            yield
            self._flush(self.clock.ticks_us())
        got = bytearray(6)  # our echoes are skipped by _getc before the answer
        iwt = self._etu_us(_IWT_ETU)
        n = yield from self._read(got, 6, iwt + 4 * self._char_us, iwt, _pps_len)
        if n < 3 or _pps_len(got, n) != n:
            raise Mute("no PPS answer") if n < 0 else ProtocolError("PPS answer")
        x = 0
        for i in range(n):
            x ^= got[i]
        if x or got[0] != 0xFF or got[1] & 0x0F != req[1] & 0x0F:
            raise ProtocolError("PPS answer")
        if got[1] & 0x10:
            if n < 4 or got[2] != req[2]:
                raise ProtocolError("PPS1 not confirmed")
            self._set_rate(fi, di)
        return self.baud

    def open(self):
        """Generator: cold reset, ATR, PPS (a refusal: reset again at the default rate).
        Returns the Atr."""
        atr = yield from self.reset(True)
        try:
            yield from self.pps()
        except (ProtocolError, Mute):
            atr = yield from self.reset(True)
        return atr

    def close(self):
        """Deactivate: RST low, VCC off."""
        self._st = _IDLE
        self.atr = None
        self.rst.value(0)
        if self.pwr is not None:
            self.pwr.value(0)

    def run(self, gen, step_ms=1):
        """Drive a generator operation to the end, blocking; returns its value."""
        sleep = self.clock.sleep_ms
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            sleep(step_ms)


def _pps_len(b, n):
    if n < 2:
        return 0
    p = b[1]
    return 3 + ((p >> 4) & 1) + ((p >> 5) & 1) + ((p >> 6) & 1)

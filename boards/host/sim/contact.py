"""The card side of an ISO/IEC 7816-3 contact-card slot on the reader's UART: power and reset
lines, the ATR, PPS, T=0 character by character, and the wire in between, for a card
application (`sim.psam.Psam`) behind it.

Wire: every character takes 12 etu at the card's current rate (1 etu = Fi / (Di x clk)); the
reader's characters take what its UART framing says (8E2 = 12 bits) at its configured baud.
A reader whose baud or framing does not match the card's rate (3 % tolerance) sends and reads
garbage, as on the bench; with TC1 = N the card misreads characters that follow each other
closer than 12 + N etu. On a single I/O line (`echo`) every reader character also comes back
to the reader's RX. Nothing here has a clock: times are the reader's virtual µs.

T=0 as a card does it: procedure bytes (INS: all the data; ~INS: one byte at a time; 60 while
processing takes long), `61xx` when a command has data to return and GET RESPONSE to hand it
over (in `chunk`-sized pieces: longer 61xx chains), `6Cxx` for a wrong Le. Faults for tests:
`present` (pulled out), `pull_after` (pulled out at the Nth command header), `mute_atr`,
`mute_after` (silent from the Nth command header until a reset), `proc` ("ack" | "single" |
"null"), `nulls` (NULLs ahead of each procedure byte in "null" mode), `junk` (a wrong procedure
byte), `pps` ("echo" | "default" | "mute"), `delay_us` (added to every command's processing).
"""

import heapq
import itertools

from sim.hw import UartDevice

FI = (372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0)
DI = (0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0)
CLK_HZ = 3_579_545
IN, OUT, NONE = 1, 2, 3  # data direction of a command, as the application knows it
ATR_DELAY_CLOCKS = 10_000  # reset high -> first ATR character (ISO: 400..40,000)
TURN_ETU = 12  # the card's pause before it answers


def atr_length(b):
    """Total length an ATR's interface bytes announce (TCK counted when T != 0 is offered)."""
    y = b[1] >> 4
    p = 2
    tck = 0
    while y & 8:
        p += bin(y).count("1")
        td = b[p - 1]
        tck |= 1 if td & 0x0F else 0
        y = td >> 4
    return p + bin(y).count("1") + (b[1] & 0x0F) + tck


class ContactSlot(UartDevice):
    def __init__(self, app, atr, clk_hz=CLK_HZ, echo=True, power_pin=True):
        super().__init__(baud=clk_hz // 372)
        self.app = app
        self.atr = bytes(atr)
        self.clk_hz = clk_hz
        self.echo = echo
        self.power_pin = power_pin
        ta1 = self._ta1()
        self.card_fi, self.card_di = (ta1 >> 4, ta1 & 0x0F) if ta1 is not None else (1, 1)
        self.guard = self._tc1()
        # faults
        self.present = True
        self.mute_atr = False
        self.mute_after = None
        self.pull_after = None
        self.delay_us = 0
        self.proc = "ack"
        self.nulls = 0
        self.junk = None
        self.chunk = 256
        self.pps = "echo"
        # figures (benchmark) and what happened (tests)
        self.chars_in = 0
        self.chars_out = 0
        self.wire_us = 0.0
        self.proc_us = 0
        self.headers = []
        self.garbled = 0
        self.resets = 0
        self._q = []
        self._seq = itertools.count()
        self.powered = not power_pin
        self.rst = 0
        self._power_off(0)

    # -- ATR facts --------------------------------------------------------------------------
    def _iface(self):
        """{(level, 'A'|'B'|'C'|'D'): value} of the ATR's interface bytes."""
        b = self.atr
        y = b[1] >> 4
        p = 2
        level = 1
        out = {}
        while True:
            for bit, name in ((1, "A"), (2, "B"), (4, "C"), (8, "D")):
                if y & bit:
                    out[(level, name)] = b[p]
                    p += 1
            if not y & 8:
                return out
            y = out[(level, "D")] >> 4
            level += 1

    def _ta1(self):
        return self._iface().get((1, "A"))

    def _tc1(self):
        g = self._iface().get((1, "C"), 0)
        return 0 if g == 255 else g

    # -- rate -------------------------------------------------------------------------------
    def etu_us(self):
        return FI[self.fi] * 1e6 / (DI[self.di] * self.clk_hz)

    def char_us(self):
        return 12 * self.etu_us()

    def rate(self):
        return self.clk_hz * DI[self.di] / FI[self.fi]

    def _matched(self):
        bits, parity, stop = self.framing
        return (abs(self.host_baud / self.rate() - 1) <= 0.03 and bits == 8 and parity == 0
                and stop == 2)

    def _reader_char_us(self):
        bits, parity, stop = self.framing
        return (1 + bits + (parity is not None) + stop) * 1e6 / self.host_baud

    # -- lines ------------------------------------------------------------------------------
    def _power_off(self, now):
        self.state = "off"
        self.fi = self.di = 1
        self._drop_after(now)
        self._rx = bytearray()
        self._pending = b""
        self._sw = 0x9000
        self._free = 0.0
        self._last_in = None
        self._count = 0
        self._pps_allowed = False
        self.app.reset()

    def power_line(self, now, level):
        if not self.power_pin:
            return
        if level and not self.powered:
            self.powered = True
            self.state = "reset"
        elif not level and self.powered:
            self.powered = False
            self._power_off(now)

    def reset_line(self, now, level):
        if level == self.rst:
            return
        self.rst = level
        if not self.powered:
            return
        if not level:
            self._power_off(now)
            self.state = "reset"
            return
        self.resets += 1
        if not self.present or self.mute_atr:
            self.state = "dead"
            return
        t = now + ATR_DELAY_CLOCKS * 1e6 / self.clk_hz
        self._emit(t, self.atr)
        self.state = "idle"
        self._pps_allowed = True

    def power_cycle(self):
        self.powered = not self.power_pin
        self.rst = 0
        self._power_off(0)
        self._q = []

    # -- output -----------------------------------------------------------------------------
    def _drop_after(self, now):
        self._q = [e for e in self._q if e[0] <= now or e[3]]
        heapq.heapify(self._q)

    def _put(self, t, b, echo=False):
        heapq.heappush(self._q, (t, next(self._seq), b, echo))

    def _emit(self, t, data):
        """The card sends data from time t (or when its previous character is done)."""
        t = max(t, self._free)
        per = self.char_us()
        for b in data:
            t += per
            self.chars_out += 1
            self.wire_us += per
            self._put(t, b if self._matched() else (b * 7 + 3) & 0xFF)
        self._free = t
        return t

    def read(self, now_us, maxlen):
        out = bytearray()
        q = self._q
        while q and q[0][0] <= now_us and len(out) < maxlen:
            out.append(heapq.heappop(q)[2])
        waiting = sum(1 for e in q if e[0] <= now_us)
        return bytes(out), waiting, int(q[0][0]) if q else 0

    def arrivals(self, now_us):
        return sorted(e[0] for e in self._q)

    def pending(self):
        return len(self._q)

    def flush_output(self):
        self._q = []

    # -- input ------------------------------------------------------------------------------
    def receive(self, now_us, data):
        per = self._reader_char_us()
        t = max(float(now_us), self._last_in or 0.0)
        for b in data:
            start = t
            t += per
            self.chars_in += 1
            self.wire_us += per
            if self.echo:
                self._put(t, b, True)
            ok = self._matched()
            if ok and self.guard and self._last_in is not None:
                ok = start - (self._last_in - per) >= (12 + self.guard) * self.etu_us() - 1
            self._last_in = t
            self._in_free_us = t  # UART.flush() returns once it is on the wire
            if not ok:
                self.garbled += 1
                b = (b * 5 + 1) & 0xFF
            self._byte(t, b)

    def _byte(self, t, b):
        st = self.state
        if st in ("off", "reset", "dead") or not self.present or t < self._free:
            return  # unpowered, silent, or talking over the card: lost
        self._rx.append(b)
        if st == "idle":
            if self._pps_allowed and self._rx[0] == 0xFF:
                self.state = "pps"
                return
            self._pps_allowed = False
            self.state = "hdr"
            st = "hdr"
        if st == "pps":
            self._pps_byte(t)
        elif st == "hdr" and len(self._rx) == 5:
            self._header(t)
        elif st == "data":
            self._data_byte(t)

    def _pps_byte(self, t):
        r = self._rx
        if len(r) < 2:
            return
        p0 = r[1]
        want = 3 + ((p0 >> 4) & 1) + ((p0 >> 5) & 1) + ((p0 >> 6) & 1)
        if len(r) < want:
            return
        x = 0
        for v in r:
            x ^= v
        self._rx = bytearray()
        self.state = "idle"
        self._pps_allowed = False
        fi, di = (r[2] >> 4, r[2] & 0x0F) if p0 & 0x10 else (1, 1)
        fits = (not x and FI[fi] == FI[self.card_fi] and DI[di] and DI[di] <= DI[self.card_di])
        if not fits or self.pps == "mute":
            self.state = "dead"  # ISO: a card that does not accept may stay mute
            return
        turn = t + TURN_ETU * self.etu_us()
        if self.pps == "default":
            ans = bytes([0xFF, p0 & 0x0F])
            end = self._emit(turn, ans + bytes([ans[0] ^ ans[1]]))
        else:
            end = self._emit(turn, bytes(r))
            self.fi, self.di = fi, di
        self._free = end

    # -- T=0 --------------------------------------------------------------------------------
    def _header(self, t):
        h = bytes(self._rx)
        self._rx = bytearray()
        self.headers.append(h)
        self._count += 1
        if self.pull_after is not None and self._count > self.pull_after:
            self.present = False
            return
        if self.mute_after is not None and self._count > self.mute_after:
            self.state = "dead"
            return
        cla, ins, p1, p2, p3 = h
        self._h = h
        turn = t + TURN_ETU * self.etu_us()
        if ins & 0xF0 in (0x60, 0x90) or ins & 1:
            return self._finish(turn, 0, b"", 0x6D00)
        if cla == 0x00 and ins == 0xC0:
            return self._get_response(turn, p3)
        self._pending = b""
        d = self.app.direction(cla, ins, p1, p2)
        if d == IN and p3:
            self._need = p3
            self._data = bytearray()
            self.state = "data"
            self._proc_byte(turn, first=True)
            return
        data, sw, us = self.app.command(h, b"")
        le = p3 or 256
        if d == OUT and data and len(data) != le:
            return self._finish(turn, us, b"", 0x6C00 | (len(data) & 0xFF))
        return self._finish(turn, us, data[:le] if d == OUT else b"", sw)

    def _proc_byte(self, t, first=False):
        """Ask for data: the whole rest (INS) or, in "single" mode, one byte (~INS)."""
        ins = self._h[1]
        pre = bytes([0x60] * self.nulls) if first and self.proc == "null" else b""
        if self.junk is not None:
            pre += bytes([self.junk])
        self._free = self._emit(t, pre + bytes([ins ^ 0xFF if self.proc == "single" else ins]))

    def _data_byte(self, t):
        self._data.append(self._rx[-1])
        self._rx = bytearray()
        if len(self._data) < self._need:
            if self.proc == "single":
                self._proc_byte(t + TURN_ETU * self.etu_us())
            return
        self.state = "idle"
        data, sw, us = self.app.command(self._h, bytes(self._data))
        turn = t + TURN_ETU * self.etu_us()
        if data:
            self._pending = bytes(data)
            self._sw = sw
            return self._finish(turn, us, b"", 0x6100 | min(len(data), self.chunk) & 0xFF)
        self._finish(turn, us, b"", sw)

    def _get_response(self, t, p3):
        le = p3 or 256
        have = self._pending
        if not have:
            return self._finish(t, 0, b"", 0x6985)
        if le > len(have):
            return self._finish(t, 0, b"", 0x6C00 | (len(have) & 0xFF))
        part, self._pending = have[:le], have[le:]
        if self._pending:
            sw = 0x6100 | (min(len(self._pending), self.chunk) & 0xFF)
        else:
            sw = self._sw
        self._finish(t, 0, part, sw)

    def _finish(self, t, proc_us, data, sw):
        """After proc_us of work (NULL bytes while it runs long), the data with its procedure
        byte(s), then SW1 SW2."""
        self.state = "idle"
        self._rx = bytearray()
        if proc_us:
            proc_us += self.delay_us
        self.proc_us += proc_us
        wwt = 960 * 10 * FI[self.fi] * 1e6 / self.clk_hz
        out = bytearray()
        start = t
        while proc_us > wwt * 0.5:  # keep the reader waiting: NULL before each half WWT
            start = self._emit(start + wwt * 0.5, b"\x60")
            proc_us -= wwt * 0.5
        ins = self._h[1]
        if data:
            if self.proc == "null":
                out += bytes([0x60] * self.nulls)
            if self.junk is not None:
                out.append(self.junk)
            if self.proc == "single":
                for b in data:
                    out += bytes([ins ^ 0xFF, b])
            else:
                out += bytes([ins]) + data
        out += bytes([sw >> 8, sw & 0xFF])
        self._free = self._emit(start + proc_us, bytes(out))

"""Simulator of a GM65/GM805-class serial QR scan engine on the reader's UART 2.

Behaviour modelled from the Grow manuals (docs: shared reference, scan engines section 16-17):
the zone-bit command protocol with exact CRC-16/XMODEM behaviour (silence on a bad CRC or a
malformed frame, the AB CD bypass, a frame still incomplete 400 ms after 7E 00 is dropped),
volatile zones until a save, modes (manual, command-triggered with the auto-clearing trigger
zone, continuous and sense with a re-read interval), and a virtual phone that shows a code from
a virtual instant. Faults for tests: raw garbage, partial output, over-long codes, a dead engine.
The CRC here is written independently of the driver's, so the two check each other.
"""

import threading

from sim.hw import UartDevice

ZONE_MODE = 0x0000
ZONE_TRIGGER = 0x0002
DEFAULT_MODE = 0xD4  # LED on, sound on, aimer standard, illumination standard, manual mode
PARTIAL_DROP_US = 400_000
BYPASS = b"\xab\xcd"


def crc_xmodem(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def frame(typ, addr, data, crc=None):
    """A command frame as the reader should send it (for tests)."""
    body = bytes([typ, len(data), addr >> 8, addr & 0xFF]) + bytes(data)
    c = crc_xmodem(body) if crc is None else crc
    return b"\x7e\x00" + body + bytes([c >> 8, c & 0xFF])


def reply(data):
    body = bytes([0x00, len(data) & 0xFF]) + bytes(data)
    c = crc_xmodem(body)
    return b"\x02\x00" + body + bytes([c >> 8, c & 0xFF])


class ScanEngineSim(UartDevice):
    rate_follows_host = True  # installed at the rate the reader's qr_baud names

    def __init__(self, baud=9600, decode_ms=80, reread_ms=400, session_ms=3000,
                 terminator=b"\r"):
        super().__init__(baud)
        self.decode_us = decode_ms * 1000
        self.reread_us = reread_ms * 1000  # continuous mode: same code read again
        self.session_us = session_ms * 1000  # command mode: one trigger scans this long
        self.terminator = terminator
        self.saved = bytearray(0x100)
        self.saved[ZONE_MODE] = DEFAULT_MODE
        self.zones = bytearray(self.saved)
        self.silent = False  # a dead or unpowered engine: no replies, no output
        self.lock = threading.RLock()
        self._cmd = bytearray()
        self._cmd_t = 0
        self._shown = None
        self._shown_t = None
        self._next_emit = None
        self._session_t = None
        self.now_us = 0
        # what happened, for tests
        self.commands = []  # (type, addr, data) of every accepted command
        self.bad_crc = 0
        self.malformed = 0
        self.dropped_partial = 0
        self.emitted = 0
        self.saves = 0

    # -- world side (tests, emulator) --
    def mode(self):
        return self.zones[ZONE_MODE] & 3

    def show(self, text, at_us=None):
        """A phone presents `text` from `at_us` (default: the reader's next request)."""
        with self.lock:
            self._shown = text.encode() if isinstance(text, str) else bytes(text)
            self._shown_t = at_us
            self._next_emit = None

    def hide(self, text=None):
        """The phone goes away (only if it still shows `text`, when given)."""
        with self.lock:
            if text is None or self._shown == (text.encode() if isinstance(text, str) else text):
                self._shown = None

    def set_silent(self, silent):
        """The engine dies (or comes back): no replies, no output while silent."""
        with self.lock:
            self.silent = silent
            self._cmd.clear()

    def inject(self, data, at_us=None):
        """Raw bytes on the wire (garbage, a partial code, a code without terminator)."""
        with self.lock:
            self.send(self.now_us if at_us is None else at_us, bytes(data))

    # -- UART side --
    def power_cycle(self):
        with self.lock:
            super().power_cycle()
            self.zones = bytearray(self.saved)
            self._cmd.clear()
            self._session_t = None
            self._next_emit = None

    def receive(self, now_us, data):
        with self.lock:
            if self.silent:
                return
            if self._cmd and now_us - self._cmd_t > PARTIAL_DROP_US:
                self._cmd.clear()
                self.dropped_partial += 1
            for b in data:
                if not self._cmd:
                    if b != 0x7E:
                        continue  # not a command start: ignored
                    self._cmd_t = now_us
                self._cmd.append(b)
                self._parse(now_us)

    def _parse(self, now_us):
        c = self._cmd
        if len(c) >= 2 and c[1] != 0x00:
            self.malformed += 1
            c.clear()
            return
        if len(c) < 4:
            return
        total = 8 + c[3]
        if len(c) < total:
            return
        typ, n, addr = c[2], c[3], c[4] << 8 | c[5]
        data = bytes(c[6:6 + n])
        crc = bytes(c[6 + n:8 + n])
        c.clear()
        if crc != BYPASS and crc_xmodem(bytes([typ, n, addr >> 8, addr & 0xFF]) + data) != \
                (crc[0] << 8 | crc[1]):
            self.bad_crc += 1
            return  # silence
        if n == 0 or typ not in (0x07, 0x08, 0x09) or addr + (n if typ == 0x08 else 0) > 0x100:
            self.malformed += 1
            return
        self.commands.append((typ, addr, data))
        if typ == 0x07:
            count = data[0] or 256
            out = bytes(self.zones[addr:addr + count]).ljust(count, b"\x00")
            self.send(now_us, reply(out), 1000)
        elif typ == 0x08:
            self.zones[addr:addr + n] = data
            if addr <= ZONE_TRIGGER < addr + n and self.zones[ZONE_TRIGGER] & 1:
                self._session_t = now_us
                self._next_emit = None
            self.send(now_us, reply(b"\x00"), 1000)
        else:
            self.saved[:] = self.zones
            self.saves += 1
            self.send(now_us, reply(b"\x00"), 1000)

    def advance(self, now_us):
        with self.lock:
            self.now_us = now_us
            if self.silent or self._shown is None:
                self._end_session(now_us)
                return
            if self._shown_t is None:
                self._shown_t = now_us
            mode = self.mode()
            if mode in (2, 3):
                if self._next_emit is None:
                    self._next_emit = self._shown_t + self.decode_us
                k = 0
                while self._next_emit <= now_us and k < 20:
                    self._emit(self._next_emit)
                    self._next_emit += self.reread_us
                    k += 1
            elif mode == 1 and self._session_t is not None:
                t = max(self._shown_t, self._session_t) + self.decode_us
                if t <= now_us and t <= self._session_t + self.session_us:
                    self._emit(t)
                    self._session_t = None
                    self.zones[ZONE_TRIGGER] &= 0xFE
            self._end_session(now_us)

    def _end_session(self, now_us):
        if self._session_t is not None and now_us > self._session_t + self.session_us:
            self._session_t = None
            self.zones[ZONE_TRIGGER] &= 0xFE

    def _emit(self, t):
        self.send(t, self._shown + self.terminator)
        self.emitted += 1


def install(hw, **kw):
    """Wire a scan-engine simulator to the reader's UART 2; returns it."""
    sim = ScanEngineSim(**kw)
    sim.lock = hw.lock
    hw.uarts[2] = sim
    return sim

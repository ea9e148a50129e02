"""The emulated reader's hardware, host side: the link server and the device models.

One `Hardware` object is the world outside the MCU: chips on the UARTs and buses, the gate's
pins, the display, the maintenance port. It survives reboots of the reader (a power cut also
power-cycles the chips through `power_cycle()`). It has no clock of its own: every request from
the reader carries the reader's virtual time in microseconds.
"""

import json
import math
import os
import socket
import struct
import threading
from collections import deque

from sim import line

OP_HELLO = 1
OP_UART_CONFIG = 2
OP_UART_WRITE = 3
OP_UART_READ = 4
OP_I2C_WRITE = 5
OP_I2C_READ = 6
OP_SPI_XFER = 7
OP_PIN_WRITE = 8
OP_PIN_READ = 9
OP_DISPLAY = 10
OP_MAINT_READ = 11
OP_EVENT = 12
OP_UART_WAKE = 13
OP_PIN_WAKE = 14

_REQ = struct.Struct("<BBHIQQQ")
_REP = struct.Struct("<BBHIQ")


class UartDevice:
    """A chip on a UART. Each end has its own rate: `baud` is the chip's, `host_baud` the
    reader UART's (its `init(baudrate=...)`). Bytes cross the wire 8N1 (10 bit-times each), back
    to back after whatever is still on the wire in that direction, and only become readable
    once fully received; when the two rates differ, the receiving end gets what a UART at its
    rate makes of the other's waveform (`sim.line`). Subclasses call `send()` and `heard()`
    and implement `receive(now_us, data)` and optionally `advance(now_us)`."""

    def __init__(self, baud=115200):
        self.baud = baud
        self.host_baud = baud
        self.host_untimed = False  # the host end is a pty: its bytes carry no line timing
        self._switch = None  # (at_us, baud): the chip changes its rate then
        self.framing = (8, None, 1)  # (bits, parity None/0 even/1 odd, stop bits) as configured
        self._out = deque()  # (ready_us, byte)
        self._tx_free_us = 0  # chip -> host direction busy until
        self._in_free_us = 0  # host -> chip direction busy until

    def byte_us(self):
        return 10_000_000 / self.baud

    def wire_us(self, n):
        return n * 10_000_000 / self.baud

    # A chip that was set at installation to the rate the reader's config names (the scan
    # engine: `qr_baud`) follows the reader's UART.init(); the PN532 does not.
    rate_follows_host = False

    def configure(self, baud):
        """The reader's UART changes its rate; the chip's stays what it was unless
        `rate_follows_host`."""
        self.host_baud = baud
        if self.rate_follows_host:
            self.baud = baud

    def switch_baud(self, at_us, baud):
        """The chip changes its own rate at `at_us` (e.g. PN532 SetSerialBaudRate)."""
        self._switch = (at_us, baud)

    def _settle(self, t):
        if self._switch is not None and t >= self._switch[0]:
            self.baud = self._switch[1]
            self._switch = None

    def send(self, now_us, data, delay_us=0):
        """Queue `data` to start `delay_us` after `now_us` (after anything already queued)."""
        t = max(now_us + delay_us, self._tx_free_us)
        self._settle(t)
        per = self.byte_us()
        if self.host_baud == self.baud:
            for b in data:
                t += per
                self._out.append((int(t), b))
        else:
            frames = [(t + i * per, b) for i, b in enumerate(data)]
            for _, done, b in line.resample(frames, self.baud, self.host_baud):
                self._out.append((int(done), b))
            t += len(data) * per
        self._tx_free_us = t

    def heard(self, now_us, data):
        """What the chip makes of `data` written by the host at `now_us`:
        [(start_us, done_us, byte)], byte by byte as it arrives."""
        start = max(now_us, self._in_free_us)
        self._settle(start)
        rate = self.baud if self.host_untimed else self.host_baud
        per = 10_000_000 / rate
        self._in_free_us = start + len(data) * per
        frames = [(start + i * per, b) for i, b in enumerate(data)]
        if rate == self.baud:
            return [(s, s + per, b) for s, b in frames]
        return line.resample(frames, rate, self.baud)

    def tx_idle_us(self):
        """When the last byte the host wrote has left its UART (machine.UART.flush)."""
        return int(self._in_free_us)

    def flush_output(self):
        self._out.clear()
        self._tx_free_us = 0

    def pending(self):
        return len(self._out)

    def arrivals(self, now_us):
        """When each byte the host has not read yet becomes readable, ascending: the ones on
        the wire and the ones the chip has already decided to send (a wake-up query)."""
        self.advance(now_us)
        return [t for t, _ in self._out]

    def ready_at(self, now_us, n, until_us):
        """When at least n bytes are readable (now_us at the earliest), None if not by
        until_us as far as the chip knows now."""
        ts = self.arrivals(now_us)
        if len(ts) < n:
            return None
        t = max(ts[n - 1], now_us)
        return t if t <= until_us else None

    def advance(self, now_us):
        """Let time-driven behaviour (finishing a command, a phone appearing) happen."""

    def receive(self, now_us, data):
        raise NotImplementedError

    def read(self, now_us, maxlen):
        self.advance(now_us)
        self._settle(now_us)
        out = bytearray()
        q = self._out
        while q and q[0][0] <= now_us and len(out) < maxlen:
            out.append(q.popleft()[1])
        waiting = sum(1 for t, _ in q if t <= now_us)
        nxt = q[0][0] if q else 0
        return bytes(out), waiting, nxt

    def power_cycle(self):
        self.flush_output()


class BusDevice:
    """A chip on I2C (by address) or SPI (by chip select)."""

    def i2c_write(self, now_us, data):
        return True  # acknowledged

    def i2c_read(self, now_us, n):
        return bytes(n), 0  # data, status (0 ok, 1 nack, 2 clock stretched too long)

    def spi_xfer(self, now_us, data, cs_fresh):
        return bytes(len(data))

    def power_cycle(self):
        pass


class Hardware:
    """Everything the reader's board is wired to. Thread-safe for the test/dashboard side."""

    def __init__(self, pins):
        self.pins = dict(pins)  # name -> id
        self.names = {v: k for k, v in pins.items()}
        self.levels = {}  # output pin name -> level, as driven by the reader
        self.inputs = {}  # input pin name -> level, as set by the world (sensors)
        self.pin_log = []  # (now_us, name, level) for tests and the dashboard
        self.uarts = {}  # chan -> UartDevice
        self.i2c = {}  # address -> BusDevice
        self.spi = {}  # cs pin name -> BusDevice
        self.display = ("", "")
        self.display_log = []
        self.maint = deque()
        self.events = deque(maxlen=2000)
        self.now_us = 0
        self.boot_now_us = 0  # the reader's clock when it last powered on (its RTC was set then)
        self.idle_us = 0  # virtual time the reader's accelerated clock has skipped (wire/RF waits)
        # The reader's µs ticks wrap at this period (2**30 on a 32-bit port, 2**62 on a 64-bit
        # one); times it sends are unwrapped against the last one, times it gets are wrapped.
        self.ticks_period = 1 << 62
        self._last_ms = None
        self._abs_ms = 0
        self.hooks = []  # callables(now_us) run on every request (scenario scripts)
        self.lock = threading.RLock()
        self.boot = {}  # what the next HELLO answers
        self._cs_fresh = {}
        self._pin_watchers = {}
        # inputs a chip drives: name -> level(now), and name -> when(now, level, until) for
        # wake-up queries (the PN532's P70_IRQ)
        self.pin_level = {}
        self.pin_wake = {}

    # -- world side --
    def set_input(self, name, level):
        with self.lock:
            self.inputs[name] = level

    def level(self, name):
        with self.lock:
            return self.levels.get(name, 0)

    def maintenance(self, line):
        with self.lock:
            self.maint.append(line.encode())

    def power_cycle(self):
        with self.lock:
            for d in list(self.uarts.values()) + list(self.i2c.values()) + list(self.spi.values()):
                d.power_cycle()
            self.levels.clear()

    # -- reader side --
    def unwrap(self, us, ms, idle):
        """(now µs, idle µs) on an unbroken timeline from the reader's wrapped ticks: the ms
        ticks place the request (they wrap only every 12.4 days on a 32-bit port; the timeline
        is 1,000 x the reader's ms ticks, so its log times line up with it), the µs ticks give
        the exact instant near that, and the idle time grew by at most the time elapsed."""
        p = self.ticks_period
        if self._last_ms is None:  # the first request: the timeline is the reader's ms ticks
            self._last_ms = self._abs_ms = ms
        d = (ms - self._last_ms) % p
        self._abs_ms += d - p if d >= p // 2 else d
        self._last_ms = ms
        near = self._abs_ms * 1000
        now = near + ((us - near + p // 2) % p) - p // 2
        base = (idle - self.idle_us) % p
        grown = base + max(0, (now - self.now_us - base) // p) * p
        return now, self.idle_us + grown

    def resume_ticks(self):
        """(µs, ms) ticks at which a rebooted reader continues this timeline, 1 ms on: its own
        last ticks, so its ms clock keeps the lead over the host's it had."""
        p = self.ticks_period
        return (self.now_us + 1000) % p, ((self._last_ms or 0) + 1) % p

    def handle(self, op, chan, arg, payload, now):
        with self.lock:
            self.now_us = now
            for h in self.hooks:
                h(now)
            return self._dispatch(op, chan, arg, payload, now)

    def _dispatch(self, op, chan, arg, payload, now):
        if op == OP_HELLO:
            self.boot_now_us = now
            return 0, 0, json.dumps(self.boot).encode(), 0
        if op == OP_UART_CONFIG:
            dev = self.uarts.get(chan)
            if dev:
                if len(payload) >= 7:
                    bits, parity, stop = payload[4], payload[5], payload[6]
                    dev.framing = (bits, None if parity == 0xFF else parity, stop)
                dev.configure(struct.unpack_from("<I", payload)[0])
            return 0, 0, b"", 0
        if op == OP_UART_WRITE:
            dev = self.uarts.get(chan)
            if not dev:
                return 0, 0, b"", 0
            dev.advance(now)
            if payload:
                dev.receive(now, bytes(payload))
            return 0, 0, b"", dev.tx_idle_us()  # an empty write asks when TX is idle
        if op == OP_UART_READ:
            dev = self.uarts.get(chan)
            if not dev:
                return 0, 0, b"", 0
            data, waiting, nxt = dev.read(now, arg)
            return 0, min(waiting, 0xFFFF), data, nxt
        if op == OP_I2C_WRITE:
            dev = self.i2c.get(arg)
            ok = dev.i2c_write(now, bytes(payload)) if dev else False
            return 0, 0 if ok else 1, b"", 0
        if op == OP_I2C_READ:
            dev = self.i2c.get(arg)
            if not dev:
                return 0, 1, b"", 0
            data, status = dev.i2c_read(now, arg_len(payload))
            return 0, status, data, 0
        if op == OP_SPI_XFER:
            for cs, dev in self.spi.items():
                if self.levels.get(cs, 1) == 0:
                    fresh = self._cs_fresh.pop(cs, False)
                    data = dev.spi_xfer(now, bytes(payload), fresh)
                    return 0, 0, (data if arg & 0x100 else b""), 0
            # nothing selected: the line floats high
            return 0, 0, (b"\xff" * len(payload) if arg & 0x100 else b""), 0
        if op == OP_PIN_WRITE:
            name = self.names.get(chan, str(chan))
            if name in self.spi and arg == 0 and self.levels.get(name, 1) == 1:
                self._cs_fresh[name] = True
            self.levels[name] = arg
            self.pin_log.append((now, name, arg))
            del self.pin_log[:-5000]
            for d in self._pin_watchers.get(name, ()):
                d(now, arg)
            return 0, 0, b"", 0
        if op == OP_PIN_READ:
            name = self.names.get(chan, str(chan))
            fn = self.pin_level.get(name)
            return 0, fn(now) if fn else self.inputs.get(name, 0), b"", 0
        if op in (OP_UART_WAKE, OP_PIN_WAKE):
            return 0, 0, self._wake(op, chan, arg, now, now + arg_len(payload)), 0
        if op == OP_DISPLAY:
            zh, _, en = bytes(payload).decode().partition("\n")
            self.display = (zh, en)
            self.display_log.append((now, zh, en))
            del self.display_log[:-1000]
            return 0, 0, b"", 0
        if op == OP_MAINT_READ:
            return 0, 0, (self.maint.popleft() if self.maint else b""), 0
        if op == OP_EVENT:
            self.events.append((now, bytes(payload).decode()))
            return 0, 0, b"", 0
        return 22, 0, b"", 0  # EINVAL: unknown op

    def _wake(self, op, chan, arg, now, until):
        """A wake-up query: µs from now until UART `chan` holds `arg` bytes or pin `chan`
        reads `arg`, as 4 bytes (FFFFFFFF: not by `until`)."""
        t = None
        if op == OP_UART_WAKE:
            dev = self.uarts.get(chan)
            t = dev.ready_at(now, max(arg, 1), until) if dev else None
        else:
            name = self.names.get(chan, str(chan))
            fn = self.pin_wake.get(name)
            if fn is not None:
                t = fn(now, arg, until)
            elif self.inputs.get(name, 0) == arg:
                t = now
        return struct.pack("<I", 0xFFFFFFFF if t is None else max(0, math.ceil(t) - now))

    def watch_pin(self, name, fn):
        """Call fn(now_us, level) when the reader drives `name` (e.g. the PN532 reset line)."""
        self._pin_watchers.setdefault(name, []).append(fn)


def arg_len(payload):
    return struct.unpack("<I", payload)[0] if len(payload) == 4 else 0


class LinkServer:
    """Serves one reader connection at a time on a Unix socket (one per boot)."""

    def __init__(self, hw, path):
        self.hw = hw
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4)
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self._stop = True
        try:
            # shut down first: a thread blocked in accept() on a closed fd could otherwise take
            # a later reader's connection once the fd number is reused
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        f = conn.makefile("rwb", buffering=0)
        try:
            while True:
                h = _read_exact(f, _REQ.size)
                if h is None:
                    return
                op, chan, arg, n, now, idle, now_ms = _REQ.unpack(h)
                now, self.hw.idle_us = self.hw.unwrap(now, now_ms, idle)
                payload = _read_exact(f, n) if n else b""
                try:
                    status, rarg, data, nxt = self.hw.handle(op, chan, arg, payload, now)
                except Exception as e:  # a simulator bug must not hang the reader
                    self.hw.events.append((now, "simulator error: %r" % (e,)))
                    status, rarg, data, nxt = 5, 0, b"", 0
                conn.sendall(_REP.pack(status, chan, rarg, len(data),
                                       int(nxt) % self.hw.ticks_period) + data)
        except (ConnectionError, OSError):
            return
        finally:
            conn.close()


def _read_exact(f, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)

"""The wire between the emulated reader and its hardware simulator process.

The chip simulators (PN532, scan engine, gate, sensors) run in a separate host process so they
do not eat the app's heap. Every bus access is one lockstep request over a Unix socket carrying
the reader's virtual time; the simulator answers with what the hardware would show at that
instant (bytes that have finished crossing the wire at the configured baud, pin levels, ...).
So the simulators never need their own clock and a run is deterministic.

Request header (32 bytes): op u8, chan u8, arg u16, len u32, now_us u64, idle_us u64 (virtual
time the accelerated clock has jumped over so far: the wire/RF waits, which lets the host split a
latency into CPU and modelled time), now_ms u64, then `len` bytes. Times are the reader's ticks,
which wrap (every 17.9 minutes for µs on a 32-bit port): the host unwraps µs with the ms ticks,
which wrap only every 12.4 days.
Reply header (16 bytes): status u8, chan u8, arg u16, len u32, next_us u64, then `len` bytes.
"""

import socket
import struct
import time

from micropython import const

OP_HELLO = const(1)
OP_UART_CONFIG = const(2)
OP_UART_WRITE = const(3)
OP_UART_READ = const(4)
OP_I2C_WRITE = const(5)
OP_I2C_READ = const(6)
OP_SPI_XFER = const(7)
OP_PIN_WRITE = const(8)
OP_PIN_READ = const(9)
OP_DISPLAY = const(10)
OP_MAINT_READ = const(11)
OP_EVENT = const(12)
OP_UART_WAKE = const(13)  # when will UART `chan` hold `arg` bytes (within the µs given)?
OP_PIN_WAKE = const(14)  # when will pin `chan` read `arg` (within the µs given)?

_REQ = const(32)
_HDR = const(16)


class LinkError(OSError):
    pass


class Link:
    def __init__(self, path, clock):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\x01\x00" + path.encode())
        self._s = s
        self._clock = clock
        self._h = bytearray(_REQ)
        self.next_us = 0  # from the last reply: when the simulator has more for us
        self._wake = bytearray(4)
        self.arg = 0  # from the last reply

    def call(self, op, chan=0, arg=0, wbuf=None, wlen=0, rbuf=None):
        """One lockstep exchange. Returns the number of reply bytes placed in `rbuf`."""
        clock = self._clock
        t0 = time.ticks_us()
        h = self._h
        struct.pack_into("<BBHIQQQ", h, 0, op, chan, arg, wlen, clock.ticks_us(),
                         clock.skipped_us, clock.ticks_ms())
        s = self._s
        s.write(h)
        if wlen:
            s.write(wbuf, 0, wlen)
        self._fill(h, _HDR)
        n = h[4] | h[5] << 8 | h[6] << 16 | h[7] << 24
        self.arg = h[2] | h[3] << 8
        self.next_us = struct.unpack_from("<Q", h, 8)[0]
        if h[0]:
            self._drain(n)
            raise LinkError(h[0])
        if n:
            if rbuf is None or n > len(rbuf):
                self._drain(n)
                raise LinkError(90)  # EMSGSIZE
            self._fill(rbuf, n)
        # the simulated hardware costs no firmware time: keep the virtual clock still
        clock.exclude(time.ticks_diff(time.ticks_us(), t0))
        return n

    def _fill(self, buf, n):
        got = self._s.readinto(buf, n)
        if got is None or got <= 0:
            raise LinkError(104)  # ECONNRESET: the simulator went away
        if got < n:  # rare on a Unix socket: finish through a view
            mv = memoryview(buf)
            while got < n:
                k = self._s.readinto(mv[got:n])
                if not k:
                    raise LinkError(104)
                got += k

    def wake_in(self, op, chan, arg, limit_us):
        """µs from now until the condition a wake query names holds (0: it holds now), or -1
        when it will not within limit_us by what the simulators know now."""
        b = self._wake
        struct.pack_into("<I", b, 0, limit_us if limit_us < 0xFFFFFFFF else 0xFFFFFFFF)
        self.call(op, chan, arg, b, 4, b)
        v = struct.unpack_from("<I", b)[0]
        return -1 if v == 0xFFFFFFFF else v

    def _drain(self, n):
        b = bytearray(64)
        while n:
            n -= self._s.readinto(b, min(64, n))


class UART:
    """machine.UART subset: a byte stream wired to a simulated chip on channel `chan`."""

    IRQ_RX = 1

    def __init__(self, link, chan, baudrate=115200, **kw):
        self._link = link
        self._chan = chan
        self._one = bytearray(1)
        self.init(baudrate, **kw)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, **kw):
        """Rate and framing go to the simulator (a contact card checks 8E2 and its rate)."""
        self.baudrate = baudrate
        cfg = struct.pack("<IBBB", baudrate, bits, 0xFF if parity is None else parity, stop)
        self._link.call(OP_UART_CONFIG, self._chan, 0, cfg, 7)

    def write(self, buf):
        n = len(buf)
        self._link.call(OP_UART_WRITE, self._chan, 0, buf, n)
        return n

    def readinto(self, buf, nbytes=-1):
        if nbytes < 0:
            nbytes = len(buf)
        n = self._link.call(OP_UART_READ, self._chan, nbytes, None, 0, buf)
        return n or None

    def read(self, nbytes=256):
        b = bytearray(nbytes)
        n = self.readinto(b)
        return bytes(b[:n]) if n else None

    def any(self):
        self._link.call(OP_UART_READ, self._chan, 0)
        return self._link.arg  # bytes waiting

    def irq(self, handler=None, trigger=0):
        """Accepted for the board API; the emulated clock wakes a waiting task itself, at the
        instant the simulator says the bytes are there (`wake_in`)."""
        self._irq = handler

    def wake_in(self, n, limit_us):
        """µs until at least n bytes are readable (0: now), -1: not within limit_us."""
        return self._link.wake_in(OP_UART_WAKE, self._chan, n, limit_us)

    def flush(self):
        """Wait until every byte written has left the wire (as machine.UART.flush on the
        ESP32): a rate change right after a write would otherwise garble its tail."""
        self._link.call(OP_UART_WRITE, self._chan)  # an empty write answers when TX is idle
        clock = self._link._clock
        wait = time.ticks_diff(self._link.next_us, clock.ticks_us())
        if wait > 0:
            clock.sleep_us(wait)


class I2C:
    """machine.I2C subset for a simulated bus; `timeout_us` bounds clock stretching."""

    def __init__(self, link, chan, freq=400000, timeout_us=50000):
        self._link = link
        self._chan = chan
        self.freq = freq
        self.timeout_us = timeout_us
        self._n = bytearray(4)

    def writeto(self, addr, buf, stop=True):
        self._link.call(OP_I2C_WRITE, self._chan, addr, buf, len(buf))
        if self._link.arg:
            raise OSError(19)  # ENODEV: address not acknowledged
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        struct.pack_into("<I", self._n, 0, len(buf))
        self._link.call(OP_I2C_READ, self._chan, addr, self._n, 4, buf)
        if self._link.arg == 1:
            raise OSError(19)
        if self._link.arg == 2:
            raise OSError(116)  # ETIMEDOUT: the slave stretched the clock past timeout_us


MSB = const(0)
LSB = const(1)


class SPI:
    """machine.SPI subset. The PN532 shifts LSB first: a bus configured MSB first shows the
    chip bit-reversed bytes, exactly as on hardware, so a driver that forgets it fails."""

    def __init__(self, link, chan, baudrate=1000000, polarity=0, phase=0, firstbit=MSB):
        self._link = link
        self._chan = chan
        self.baudrate = baudrate
        self.mode = polarity << 1 | phase
        self.firstbit = firstbit

    def write(self, buf):
        self._xfer(buf, None)

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = write
        self._xfer(buf, buf)

    def write_readinto(self, wbuf, rbuf):
        self._xfer(wbuf, rbuf)

    def _xfer(self, wbuf, rbuf):
        rev = self.firstbit != LSB
        if rev:
            wbuf = bytearray(wbuf)
            _reverse(wbuf)
        n = len(wbuf)
        flags = self.mode | (0x100 if rbuf is not None else 0)
        self._link.call(OP_SPI_XFER, self._chan, flags, wbuf, n, rbuf)
        if rev and rbuf is not None:
            _reverse(rbuf)


def _reverse(buf):
    for i in range(len(buf)):
        b = buf[i]
        r = 0
        for _ in range(8):
            r = r << 1 | (b & 1)
            b >>= 1
        buf[i] = r


class Pin:
    """machine.Pin subset; outputs are reported to the simulator, inputs are read from it."""

    IN = 0
    OUT = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, link, id, mode=IN, value=None):
        self._link = link
        self._id = id
        self._mode = mode
        self._v = 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            if self._mode == Pin.IN:
                self._link.call(OP_PIN_READ, self._id)
                return self._link.arg
            return self._v
        v = 1 if v else 0
        if v != self._v or self._mode != Pin.OUT:
            self._mode = Pin.OUT
            self._v = v
            self._link.call(OP_PIN_WRITE, self._id, v)

    __call__ = value

    def irq(self, handler=None, trigger=IRQ_FALLING):
        """Accepted for the board API (see UART.irq)."""
        self._irq = handler

    def wake_in(self, level, limit_us):
        """µs until the input reads `level` (0: now), -1: not within limit_us."""
        return self._link.wake_in(OP_PIN_WAKE, self._id, level, limit_us)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class Display:
    """The gate display: two lines (Chinese, English) shown to the rider."""

    def __init__(self, link):
        self._link = link

    def show(self, zh, en):
        b = (zh + "\n" + en).encode()
        self._link.call(OP_DISPLAY, 0, 0, b, len(b))


class Maintenance:
    """Local maintenance console (the crew's laptop on the service port)."""

    def __init__(self, link):
        self._link = link
        self._buf = bytearray(128)

    def readline(self):
        n = self._link.call(OP_MAINT_READ, 0, 0, None, 0, self._buf)
        return bytes(self._buf[:n]).decode() if n else None

    def write(self, text):
        b = text.encode()
        self._link.call(OP_EVENT, 0, 0, b, len(b))

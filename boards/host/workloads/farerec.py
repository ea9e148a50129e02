"""Fare recording workload (entry "farerec"), used by `flash.py bench fares` and `bench
device`: one session of the fare gate on the emulated board (PSAM activation, PN532
initialisation, then for each card the tap and the empty poll after it), recorded as the
bytes crossing both chips' UARTs, the PSAM's pin changes and the points where the reader
waited (asyncio found every task waiting on a device or a timer), in the order they
happened. The QEMU build replays it (hotpaths.fare_taps) through the same code (faretap)
and counts the instructions. Prints "SAM hz echo" (the slot), "NOW i t" (the RTC at tap i,
held on that second for the tap) and the record as "REC hex" lines.

Record entries: kind (0x10/0x11: the reader wrote to the PN532 / PSAM UART; 0x20/0x21: a
read returned these bytes; 0x30: the reader waited; 0x40: a PSAM pin was set, the value in
the data), u16 length, data."""

import asyncio
import asyncio.core as core
from binascii import hexlify

import app
import board
import config
import faretap
import slog

W = 0x10
R = 0x20
P = 0x30
X = 0x40


class Log:
    def __init__(self):
        self.buf = bytearray()
        self.on = False

    def add(self, kind, data=b""):
        if self.on:
            n = len(data)
            self.buf += bytes((kind, n & 0xFF, n >> 8))
            self.buf += data


class RecUart:
    """The board's UART, every write and every read's bytes logged."""

    def __init__(self, uart, port, log):
        self.u = uart
        self.port = port
        self.log = log
        self.IRQ_RX = uart.IRQ_RX

    def write(self, buf):
        self.log.add(W | self.port, bytes(buf))
        return self.u.write(buf)

    def readinto(self, buf, nbytes=-1):
        n = self.u.readinto(buf, nbytes)
        if n:
            self.log.add(R | self.port, bytes(buf[:n]))
        return n

    def any(self):
        return self.u.any()

    def init(self, *a, **kw):
        return self.u.init(*a, **kw)

    def flush(self):
        return self.u.flush()

    def irq(self, *a, **kw):
        return self.u.irq(*a, **kw)

    def wake_in(self, n, limit_us):
        return self.u.wake_in(n, limit_us)


class RecPin:
    def __init__(self, pin, log):
        self.p = pin
        self.log = log

    def value(self, v=None):
        if v is not None:
            self.log.add(X, bytes((v,)))
        return self.p.value(v) if v is not None else self.p.value()


def run():
    slog.set_clock(board.clock)
    cfg = config.load()[0]
    log = Log()
    q = core._io_queue
    real = q.wait_io_event

    def wait_io_event(dt):
        if dt:
            log.add(P)
        real(dt)

    q.wait_io_event = wait_io_event
    uart, rst, pwr, hz, echo = board.sam_slot()
    nfc_bus = board.nfc_bus()
    lb = faretap.LaneBoard(board, board.clock, (RecUart(nfc_bus[1], 0, log), board.nfc_reset()),
                           (RecUart(uart, 1, log), RecPin(rst, log), RecPin(pwr, log), hz, echo))
    a, nfc, t = faretap.build(lb, cfg, app.load_fares(board, cfg))
    print("SAM %d %d" % (hz, echo))
    log.on = True
    asyncio.run(session(a, nfc, t, board.settings.get("taps", 2), log))
    q.wait_io_event = real
    b = log.buf
    for i in range(0, len(b), 96):
        print("REC", hexlify(b[i:i + 96]).decode())


async def session(a, nfc, t, n, log):
    m = board.maintenance()
    if not await faretap.start(nfc, t):
        print("NO PSAM")
        return
    for i in range(n):
        m.write("fare:present %d" % i)
        now = board.clock.time()
        board.clock.set_time(now)  # a whole second ahead: the tap's date and time stay put
        print("NOW %d %d" % (i, now))
        await faretap.tap(a, nfc, board.clock)
        m.write("fare:remove")
        await faretap.gone(a, nfc)
    print("TAPS %d" % a.taps)

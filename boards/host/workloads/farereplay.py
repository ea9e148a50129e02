"""The fare gate's whole tap replayed on the QEMU Cortex-M3 build (hotpaths.fare_taps, for
`flash.py bench fares` and `bench device`): a session recorded on the emulated board
(farerec.py: both chips' UART bytes, the PSAM's pins, the points where the reader waited)
fed back to the reader's own objects (faretap.py), so the instructions counted are those of
the tap the emulated reader made, wait for wait. Imported only when replaying (its classes
stay off the other hot paths' heap)."""

import gc
import struct
import time

import board


class _Tape:
    """A fare session recorded on the emulated board (boards/host/workloads/farerec.py)
    replayed to the reader's own objects: what a chip sent becomes readable in the recorded
    order once the reader has written what came before it and, where the recording shows the
    reader waiting, once it waits here too (asyncio's device wait, the `wait` hook below); a
    wait with nothing recorded to end it ends at its own deadline (the clock jumps there, and
    the jump is not counted). The reader runs on the board's own clock, as on the device.
    Writes and pin changes are checked against the recording (every byte while `verify`,
    else the kind and length). No wire time passes: the bench adds the modelled times."""

    def __init__(self, rec):
        from array import array

        if len(rec) > 0xFFFF:
            raise ValueError("recording too long")
        self.mv = rec
        n = p = 0
        while p < len(rec):  # count first: the arrays are made once, at their size
            p += 3 + (rec[p + 1] | rec[p + 2] << 8)
            n += 1
        self.kind = bytearray(n)
        self.start = array("H", range(n))
        self.end = array("H", range(n))
        p = 0
        for i in range(n):
            self.kind[i] = rec[p]
            self.start[i] = p + 3
            p += 3 + (rec[p + 1] | rec[p + 2] << 8)
            self.end[i] = p
        self.pos = array("H", self.start)
        self.n = n
        self.h = 0
        self.verify = True
        self.clock = board.clock
        self.skipped_us = 0  # time the replay jumped over (deadlines), taken out of the count
        self.waits = self.extra = self.missed = 0

    def _skip(self):
        h = self.h
        k = self.kind
        while h < self.n and k[h] & 0xF0 == 0x20 and self.pos[h] == self.end[h]:
            h += 1
        self.h = h

    def any(self, port):
        k = self.kind
        i = self.h
        want = 0x20 | port
        t = 0
        while i < self.n and k[i] & 0xF0 == 0x20:
            if k[i] == want:
                t += self.end[i] - self.pos[i]
            i += 1
        return t

    def readinto(self, port, buf, nbytes):
        k = self.kind
        i = self.h
        want = 0x20 | port
        while i < self.n and k[i] & 0xF0 == 0x20:
            p = self.pos[i]
            if k[i] == want and p < self.end[i]:
                m = self.end[i] - p
                lim = len(buf) if nbytes < 0 else nbytes
                m = m if m < lim else lim
                buf[:m] = self.mv[p:p + m]  # a UART driver's copy is C
                self.pos[i] = p + m
                self._skip()
                return m
            i += 1
        return None

    def _expect(self, kind, buf):
        h = self.h
        while h < self.n and self.kind[h] == 0x30:  # the reader went on without that wait
            h += 1
            self.missed += 1
        if (h >= self.n or self.kind[h] != kind or self.end[h] - self.start[h] != len(buf)
                or (self.verify and bytes(buf) != bytes(self.mv[self.start[h]:self.end[h]]))):
            raise ValueError("replay left the recording at entry %d (kind %02x)" % (h, kind))
        self.h = h + 1
        self._skip()

    def write(self, port, buf):
        self._expect(0x10 | port, buf)
        return len(buf)

    def waited(self, timer):
        """The reader waits: the next recorded wait is over (while a timer loop polls, every
        wait recorded before the next byte or pin change)."""
        self.waits += 1
        if self.h >= self.n or self.kind[self.h] != 0x30:
            self.extra += 1
            return
        self.h += 1
        while timer and self.h < self.n and self.kind[self.h] == 0x30:
            self.h += 1
        self._skip()

    def install(self):
        """asyncio's device wait: the C poller asks each waiting stream (Ready.ioctl), as on
        the device; when none is ready, the clock jumps to the first deadline."""
        import asyncio.core as core

        q = core._io_queue
        real = self._real = q.wait_io_event
        tape = self

        def wait(dt):
            if not dt:
                return real(0)
            tape.waited(not q.map)
            if not q.map:
                return real(dt)
            real(0)
            if core._task_queue.peek() is None:
                tape.jump(q.map)
                real(0)

        q.wait_io_event = wait

    ticks_us = staticmethod(time.ticks_us)  # the tap's timer (faretap.tap): the count
    ticks_diff = staticmethod(time.ticks_diff)

    def jump(self, waiting):
        """No wait recorded ends here: on to the first deadline. The board's clock is the
        device's (C ticks); on QEMU its ticks count instructions, so the jump is a busy sleep
        whose ticks are kept in skipped_us and taken back out of the count; the emulated
        board's clock jumps by itself (`advance`)."""
        c = self.clock
        now = c.ticks_us()
        best = -1
        for k in waiting:
            d = c.ticks_diff(waiting[k][2].due, now)
            if best < 0 or d < best:
                best = d if d > 0 else 0
        t0 = time.ticks_us()
        if hasattr(c, "advance"):
            c.advance(best + 1)
        else:
            end = c.ticks_add(now, best + 1)
            while c.ticks_diff(end, c.ticks_us()) > 0:  # (sleep_us may come back early)
                time.sleep_us(c.ticks_diff(end, c.ticks_us()))
        self.skipped_us = time.ticks_add(self.skipped_us, time.ticks_diff(time.ticks_us(), t0))

    def uninstall(self):
        import asyncio.core as core

        core._io_queue.wait_io_event = self._real


class _TapePort:
    """One chip's UART in the replay (0: PN532, 1: PSAM)."""

    def __init__(self, tape, port):
        self.t = tape
        self.port = port

    def write(self, buf):
        return self.t.write(self.port, buf)

    def readinto(self, buf, nbytes=-1):
        return self.t.readinto(self.port, buf, nbytes)

    def any(self):
        return self.t.any(self.port)

    def init(self, *a, **kw):
        pass

    def flush(self):
        pass


class _TapePin:
    """A PSAM pin, its changes checked against the recording (tape None: the PN532's reset
    line, which the recording leaves out)."""

    def __init__(self, tape):
        self.t = tape
        self.v = 1
        self._one = bytearray(1)

    def value(self, v=None):
        if v is None:
            return self.v
        if self.t is not None:
            self._one[0] = v
            self.t._expect(0x40, self._one)
        self.v = v


class _NoCheck:
    def update(self, b):
        pass


def session(items, pre, name, counts, low, align):
    """One recorded fare session (farerec) replayed through faretap, as the emulated reader
    ran it: PSAM activation, PN532 init, then the taps; the first replayed checking each byte
    the reader writes (and warming its buffers and caches), the others counted (each on a heap
    left as the one before left it: allocation costs vary with it): HOT line (totals of the
    poll that finds the card: read, purchase, journal, gate, release), FARE line (what the
    replay saw: the most waits in a tap, waits the reader made that the recording did not
    have and the reverse, the least heap a tap took, negative when a collection ran in it;
    the longest tap in µs)."""
    import asyncio
    import io
    import json

    import config
    import fares
    import faretap
    import reasons

    cfg = config.validate(json.loads(bytes(items[pre + ".cfg"])))
    data = bytes(items[pre + ".tbl"])
    tbl = fares.FareTable(cfg["station_id"])
    tbl.load(io.BytesIO(data), len(data), _NoCheck())
    del data
    hz, echo = struct.unpack_from("<IB", items[pre + ".sam"], 0)
    nows = items[pre + ".now"]
    tape = _Tape(items[pre + ".rec"])
    P = board.Partition
    if hasattr(board.flash, "erase_range"):  # each session on a blank journal
        info = P.find(P.TYPE_DATA, label="journal")[0].info()
        board.flash.erase_range(info[2], info[3])
    lb = faretap.LaneBoard(board, board.clock, (_TapePort(tape, 0), _TapePin(None)),
                           (_TapePort(tape, 1), _TapePin(tape), _TapePin(tape), hz, bool(echo)))
    a, nfc, t = faretap.build(lb, cfg, tbl)
    out = []

    async def session():
        if not await faretap.start(nfc, t):
            raise ValueError("replay: no PSAM")
        n = len(nows) // 4
        for i in range(n):
            board.clock.set_time(struct.unpack_from("<I", nows, 4 * i)[0])
            tape.verify = not i
            gc.collect()
            low[0] = min(low[0], gc.mem_free())
            align()  # activation waited on timers: the tick's phase is the host's until here
            w0, e0, m0 = tape.waits, tape.extra, tape.missed
            c0 = counts()
            f0 = gc.mem_free()
            el, jumped = await faretap.tap(a, nfc, tape)
            us = el - jumped
            f1 = gc.mem_free()
            c1 = counts()
            if i:
                out.append((us, tuple(y - x for x, y in zip(c0, c1)),
                            (tape.waits - w0, tape.extra - e0, tape.missed - m0, f0 - f1)))
            cred = nfc.cred
            if cred.verdict != reasons.PASS or not cred.nrec:
                raise ValueError("replayed tap %d: verdict %d reason %d" % (
                    i, cred.verdict, cred.reason))
            await faretap.gone(a, nfc)

    tape.install()
    try:
        asyncio.run(session())
    finally:
        tape.uninstall()
    if tape.h != tape.n:
        raise ValueError("replay ended at entry %d of %d" % (tape.h, tape.n))
    tot = [sum(x[1][k] for x in out) for k in range(5)]
    w = [max(x[2][k] for x in out) for k in range(3)] + [min(x[2][3] for x in out)]
    print("HOT %s %d %d %d %d %d %d %d" % ((name, len(out), sum(x[0] for x in out)) + tuple(tot)))
    print("FARE %s entries=%d waits=%d extra=%d missed=%d alloc=%d max_us=%d" % (
        (name, tape.n) + tuple(w) + (max(x[0] for x in out),)))
    del a, nfc, t, tape
    gc.collect()

"""lib/aioready on MicroPython: a wait ends when a UART holds the bytes asked for or a line
goes low, or at its deadline, never before; asking and finding the source ready allocates
nothing (it runs once per frame of every tap)."""

AIO = r'''
import asyncio
import time
import micropython
from aioready import Ready


class Clock:
    ticks_us = staticmethod(time.ticks_us)
    ticks_add = staticmethod(time.ticks_add)
    ticks_diff = staticmethod(time.ticks_diff)


class Uart:
    IRQ_RX = 1

    def __init__(self):
        self.n = 0
        self.handler = None

    def any(self):
        return self.n

    def irq(self, handler=None, trigger=0):
        self.handler = handler


class Line:
    IRQ_FALLING = 2

    def __init__(self):
        self.v = 1
        self.handler = None

    def value(self):
        return self.v

    def irq(self, handler=None, trigger=0):
        self.handler = handler


u = Uart()
p = Line()
rd = Ready(Clock(), u, p)
print("armed", u.handler is not None, p.handler is not None)


async def later(ms, fn):
    await asyncio.sleep_ms(ms)
    fn()


async def timed(us, na, nb):
    t0 = time.ticks_us()
    await rd.wait(us, na, nb)
    return time.ticks_diff(time.ticks_us(), t0)


def set_n(k):
    u.n = k


def low():
    p.v = 0


# mp() runs on the host's clock: the upper bounds tell a wait the device ended from one its
# deadline ended with a margin that no time spent off a CPU on a loaded host reaches (the
# deadlines are a minute; the device acts after tens of ms), and the lower bounds hold anyway
async def main():
    # six bytes asked for: four do not end the wait, six do (long before the deadline)
    asyncio.create_task(later(10, lambda: set_n(4)))
    asyncio.create_task(later(40, lambda: set_n(6)))
    el = await timed(60_000_000, 6, 0)
    print("uart", u.n, el >= 40_000, el < 30_000_000)
    u.n = 0
    # the line going low ends a wait on it; a UART that is not asked about does not
    u.n = 99
    asyncio.create_task(later(30, low))
    el = await timed(60_000_000, 0, 1)
    print("line", p.v, el >= 30_000, el < 30_000_000)
    # nothing comes: the wait ends at its deadline, not before
    p.v = 1
    u.n = 0
    el = await timed(50_000, 6, 1)
    print("deadline", el >= 50_000, el < 30_000_000)
    # ready already: no suspension at all, and nothing allocated to find out
    u.n = 6
    aw = rd.wait(1_000_000, 6, 0)
    k = 0
    micropython.heap_lock()
    try:
        for _ in range(50):
            aw = rd.wait(1_000_000, 6, 0)
            try:
                next(aw)
            except StopIteration:
                k += 1
            if rd.ready():
                k += 1
    finally:
        micropython.heap_unlock()
    print("ready", k)


asyncio.run(main())
'''


def test_waits_end_on_the_device_or_the_deadline_and_cost_nothing_when_ready(mp):
    out = mp(AIO)
    assert "armed True True" in out, out
    assert "uart 6 True True" in out, out
    assert "line 0 True True" in out, out
    assert "deadline True True" in out, out
    assert "ready 100" in out, out

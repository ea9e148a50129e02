"""Waits that end as soon as a device has something for us, or at a deadline.

A driver core that is polled (`start()` / `poll()`) tells its async caller two things between
polls: how long it may wait at most before it has a timeout to check, and what would be worth
waking for (a UART holding n bytes, an interrupt line gone low). `Ready.wait(us, na, nb)`
waits for exactly that, so a PN532 or a SAM exchange costs one wake per frame instead of one
per millisecond.

How: peterhinch's pattern for interrupts in asyncio (an interrupt handler may only set state;
a stream whose `ioctl` reports it wakes the waiting task), with the deadline and the level
check inside `ioctl` instead of a timeout task per wait (`asyncio.wait_for_ms` makes two tasks
and cancels one: more time than the waiting it saves). The interrupt (`Pin.irq` falling edge,
`UART.irq` receive) only wakes the event loop; `ioctl` reads the level, so an edge that came
before the wait began is never lost. Up to two sources (`a`, `b`): the PN532 and the SAM are
waited on together while both work. A source is a UART (ready when `any() >= n`) or an input
pin (ready when low, e.g. the PN532's P70_IRQ). `n = 0` leaves a source out of a wait.

Nothing here allocates per wait beyond asyncio's own IO-queue entry.
"""

import asyncio.core as core
import io

from micropython import const

_POLL = const(3)  # MP_STREAM_POLL


def _arm(src, wake):
    """Have the source's interrupt wake the event loop (boards without it: the deadline)."""
    try:
        if hasattr(src, "any"):
            src.irq(handler=wake, trigger=src.IRQ_RX)
        else:
            src.irq(handler=wake, trigger=src.IRQ_FALLING)
    except (AttributeError, ValueError, OSError):
        pass


class _Await:
    """The awaitable `Ready.wait()` returns: suspends once (queued on the IO poller), then
    finishes. Made once per Ready, like asyncio's own sleep singleton."""

    def __init__(self, ready):
        self._r = ready
        self._waiting = False
        self._exc = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        if self._waiting:
            self._waiting = False
        elif not self._r.ready():
            self._waiting = True
            core._io_queue.queue_read(self._r)
            return None
        self._exc.__traceback__ = None
        raise self._exc


class Ready(io.IOBase):
    def __init__(self, clock, a=None, b=None):
        self.clock = clock
        self.a = a
        self.b = b
        self.na = 0  # what a wait asks of each source (0: not waited on)
        self.nb = 0
        self.due = 0  # ticks_us at which the current wait ends anyway
        self._ua = a is not None and hasattr(a, "any")
        self._ub = b is not None and hasattr(b, "any")
        self._aw = _Await(self)
        self._wake = self._irq  # one bound method, made once (handlers must not allocate)
        for src in (a, b):
            if src is not None:
                _arm(src, self._wake)

    def _irq(self, _src):
        pass  # the interrupt has woken the event loop; ioctl looks at the line

    def wait(self, us, na=0, nb=0):
        """Awaitable: until source a holds `na` bytes (a pin: is low), b holds `nb`, or `us`
        microseconds have passed."""
        c = self.clock
        self.due = c.ticks_add(c.ticks_us(), us if us > 0 else 0)
        self.na = na if self.a is not None else 0
        self.nb = nb if self.b is not None else 0
        self._aw._waiting = False
        return self._aw

    def ready(self):
        if self.na and (self.a.any() >= self.na if self._ua else not self.a.value()):
            return True
        if self.nb and (self.b.any() >= self.nb if self._ub else not self.b.value()):
            return True
        c = self.clock
        return c.ticks_diff(c.ticks_us(), self.due) >= 0

    def ioctl(self, req, flags):
        if req == _POLL:
            return flags if self.ready() else 0
        return -1

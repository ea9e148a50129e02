"""The emulated reader's clock: ticks, an RTC and the watchdog, in real or accelerated time.

Virtual time = the interpreter's ticks + an offset. In accelerated mode those ticks are the
process's own CPU time (the runner preloads boards/host/sim/cpuclock.c), whenever every task is
waiting on a timer the clock jumps to the next deadline instead of sleeping (a day of gate
traffic replays in seconds), and time spent inside the simulated hardware is excluded (the
offset moves back by it), so a tap costs the firmware's own CPU time plus the modelled wire and
RF time, whatever the load on the host. In real-time mode the clock is the host clock.

The virtual clock never runs behind the host clock: asyncio's C task queue stamps tasks woken
by an Event with the host's ticks, and a clock behind them would delay those tasks.
"""

import asyncio.core as _core
import time

from micropython import const

_S = const(1_000_000)
_MARGIN = const(1 << 40)  # µs the accelerated clock starts ahead: room to exclude link time


class WatchdogReset(BaseException):
    """The watchdog expired: the host boot code turns this into a reboot."""


class Clock:
    def __init__(self, accelerated=False, epoch=None):
        self.accelerated = accelerated
        self._off = 0
        self._epoch_us = None  # RTC: UTC microseconds at virtual tick 0 (None: never set)
        if epoch is not None:
            self.set_time(epoch)
        self.wdt = None
        self.skipped_us = 0  # idle time jumped over in accelerated mode

    # -- ticks (same semantics as the time module) --
    def ticks_us(self):
        return time.ticks_add(time.ticks_us(), self._off)

    def ticks_ms(self):
        return self.ticks_us() // 1000

    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)

    def start(self, accelerated):
        self.accelerated = accelerated
        if accelerated:
            self._off += _MARGIN

    def resume(self, us):
        """Start no earlier than virtual time `us` (the end of the previous boot)."""
        gap = time.ticks_diff(us, self.ticks_us())
        if gap > 0:
            self._off += gap

    def exclude(self, us):
        if self.accelerated and self._off > us:
            self._off -= us

    def advance(self, us):
        self._off += us
        self.skipped_us += us

    def sleep_ms(self, ms):
        """Blocking sleep for driver settle times (reset pulses): jumps when accelerated."""
        self.sleep_us(ms * 1000)

    def sleep_us(self, us):
        if self.accelerated:
            self.advance(us)
        else:
            time.sleep_us(us)
        self.check_wdt()

    # -- RTC --
    def time(self):
        """UTC seconds, or None when the RTC has never been set (no trusted time)."""
        if self._epoch_us is None:
            return None
        return (self._epoch_us + self.ticks_us()) // _S

    def set_time(self, epoch):
        self._epoch_us = epoch * _S - self.ticks_us()

    # -- watchdog --
    def check_wdt(self):
        w = self.wdt
        if w is not None and time.ticks_diff(self.ticks_ms(), w.fed) > w.timeout:
            raise WatchdogReset()

    def install(self):
        """Make asyncio run on this clock (and skip idle time when accelerated)."""
        _core.ticks = self.ticks_ms
        q = _core._io_queue
        real_wait = q.wait_io_event
        clock = self

        def wait_io_event(dt):
            clock.check_wdt()
            if clock.accelerated and dt > 0 and not q.map:
                real_wait(0)
                clock.advance(dt * 1000)  # nothing but timers: jump to the next deadline
            else:
                real_wait(dt)  # real sockets are waiting: their timeouts run in real time

        q.wait_io_event = wait_io_event


class WDT:
    """machine.WDT stand-in: fed from the main loop; expiry raises WatchdogReset."""

    def __init__(self, clock, timeout=5000):
        self.timeout = timeout
        self._clock = clock
        self.fed = clock.ticks_ms()
        clock.wdt = self

    def feed(self):
        self.fed = self._clock.ticks_ms()

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

# Half the ticks period: 2**29 on a 32-bit port, 2**61 on a 64-bit one, computed without forming
# the period itself (2**30 is not a small int on a 32-bit port). Offsets stay strictly inside
# +-_HALF, the range time.ticks_add accepts.
_HALF = (time.ticks_add(0, -1) >> 1) + 1
_MARGIN_MS = const(1 << 24)  # ms the accelerated clock starts ahead: room to exclude link time


def _wrap(x):
    """x modulo the ticks period, as an offset strictly inside (-_HALF, _HALF)."""
    while x >= _HALF:
        x -= _HALF
        x -= _HALF
    while x < -_HALF:
        x += _HALF
        x += _HALF
    return x if x != -_HALF else x + 1  # (one µs off, at exactly half a period)


class WatchdogReset(BaseException):
    """The watchdog expired: the host boot code turns this into a reboot."""


class Clock:
    """One offset over the host's µs ticks; the ms ticks follow the virtual µs ticks (as
    µs // 1000 would, but on a 32-bit port the µs ticks wrap every 17.9 minutes and the ms
    ticks every 12.4 days, so they cannot be divided), and the RTC counts whole seconds on the
    ms ticks. Nothing here forms a number beyond a small int in normal running, so reading the
    clock does not allocate on either port. Read the ms ticks at least every 8 minutes (asyncio
    does, constantly)."""

    def __init__(self, accelerated=False, epoch=None):
        self.accelerated = accelerated
        self._off_us = 0
        self._mark_us = time.ticks_us()  # virtual µs tick at which the ms ticks were _mark_ms
        self._mark_ms = time.ticks_ms()
        self._rtc_s = None  # RTC: UTC seconds at tick _rtc_mark (None: never set)
        self._rtc_mark = 0
        if epoch is not None:
            self.set_time(epoch)
        self.wdt = None
        self.skipped_us = 0  # idle time jumped over in accelerated mode (µs ticks ring)

    # -- ticks (same semantics as the time module) --
    def ticks_us(self):
        return time.ticks_add(time.ticks_us(), self._off_us)

    def ticks_ms(self):
        d = time.ticks_diff(self.ticks_us(), self._mark_us)
        if d >= 1000:
            k = d // 1000
            self._mark_ms = time.ticks_add(self._mark_ms, k)
            self._mark_us = time.ticks_add(self._mark_us, k * 1000)
        return self._mark_ms

    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)

    def _shift(self, us):
        """Move virtual time forward by `us`, or back by at most the time since the last
        reading (exclude): the ms ticks never go backwards."""
        q = _HALF >> 1  # steps of a quarter period, so each stays readable as a difference
        while us > q or us < -q:  # only at start-up on a 32-bit port
            step = q if us > 0 else -q
            self._shift(step)
            us -= step
        self.ticks_ms()
        self._off_us = _wrap(self._off_us + us)

    def start(self, accelerated):
        self.accelerated = accelerated
        if accelerated:
            self._shift(_MARGIN_MS * 1000)

    def resume(self, us, ms):
        """Continue the previous boot's virtual timeline at ticks (`us`, `ms`); (0, 0) on the
        first boot. Accelerated, the clock is set to it exactly (a 32-bit port's µs ticks are
        only comparable within +-9 minutes, so "no earlier than" would be ambiguous); the ms
        clock stays ahead of the host's by the margin less the real time the reader was off.
        In real time the clock is the host's and only ever moves forward."""
        if not us:
            return
        if self.accelerated:
            self._off_us = _wrap(self._off_us + time.ticks_diff(us, self.ticks_us()))
            self._mark_us = self.ticks_us()
            self._mark_ms = ms
            return
        gap = time.ticks_diff(us, self.ticks_us())
        if gap > 0:
            self._shift(gap)

    def exclude(self, us):
        """Take `us` of time spent in the simulated hardware back out of the virtual clock,
        keeping the ms clock ahead of the host's (asyncio's C queue stamps woken tasks with the
        host's ticks_ms: a clock behind them would delay those tasks)."""
        if self.accelerated and time.ticks_diff(self.ticks_ms(), time.ticks_ms()) > us // 1000 + 1:
            self._shift(-us)

    def advance(self, us):
        self._shift(us)
        self.skipped_us = time.ticks_add(self.skipped_us, _wrap(us))

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
        if self._rtc_s is None:
            return None
        d = time.ticks_diff(self.ticks_ms(), self._rtc_mark)
        if d >= 1000:
            s = d // 1000
            self._rtc_s += s
            self._rtc_mark = time.ticks_add(self._rtc_mark, s * 1000)
        return self._rtc_s

    def set_time(self, epoch):
        self._rtc_s = epoch
        self._rtc_mark = self.ticks_ms()

    # -- watchdog --
    def check_wdt(self):
        w = self.wdt
        if w is not None and time.ticks_diff(self.ticks_ms(), w.fed) > w.timeout:
            raise WatchdogReset()

    def idle_us(self, waiting, dt):
        """How far the accelerated clock may jump while every task waits: to the first timer
        (`dt` ms; -1: none) or the first device wait to end (an `aioready.Ready` in asyncio's IO
        queue: when the simulator says its UART will hold the bytes or its line will be low,
        else its deadline)."""
        best = dt * 1000 if dt > 0 else -1
        for k in waiting:
            r = waiting[k][2]
            if r.ready():
                return 0
            w = time.ticks_diff(r.due, self.ticks_us())
            if r.na:
                w = _sooner(r.a, r.na, w)
            if r.nb:
                w = _sooner(r.b, r.nb, w)
            if best < 0 or w < best:
                best = w
        return best if best > 0 else 0

    def install(self):
        """Make asyncio run on this clock (and skip idle time when accelerated)."""
        _core.ticks = self.ticks_ms
        q = _core._io_queue
        real_wait = q.wait_io_event
        clock = self

        def wait_io_event(dt):
            clock.check_wdt()
            m = q.map
            if m and not _devices_only(m):
                real_wait(dt)  # real sockets are waiting: their timeouts run in real time
                return
            if dt != 0 and clock.accelerated:
                while True:  # jump to the first timer or device wait to end
                    t0 = clock.ticks_us()
                    jump = clock.idle_us(m, dt)
                    # asking the simulators is the emulation's work, not the firmware's: the
                    # ESP32's poll loop waits in C (the waits' own checks, ready(), count)
                    clock.exclude(time.ticks_diff(clock.ticks_us(), t0))
                    if jump:
                        clock.advance(jump)
                    if m:
                        _wake_ready(q)
                    if dt > 0 or _core._task_queue.peek():
                        return
                    if not jump:
                        clock.advance(1)  # a device said "now" a hair early: on by 1 µs
            if not m:
                real_wait(dt)  # timers only
                return
            _wake_ready(q)  # device waits in real time: look every millisecond
            while dt != 0 and not _core._task_queue.peek():
                time.sleep_us(1000)
                _wake_ready(q)
                if dt > 0:
                    return

        q.wait_io_event = wait_io_event


def _devices_only(waiting):
    """Every stream asyncio waits on is a device wait (aioready.Ready), no real socket."""
    for k in waiting:
        if not hasattr(waiting[k][2], "due"):
            return False
    return True


def _wake_ready(q):
    """asyncio's IO poll, for device waits only (the unix port's select.poll sleeps a
    millisecond before it asks a stream that has no file descriptor, on every call)."""
    while True:
        done = None
        for k in q.map:
            e = q.map[k]
            if e[0] is not None and e[2].ready():
                done = e
                break
        if done is None:
            return
        _core._task_queue.push(done[0])
        done[0] = None
        if done[1] is None:
            q._dequeue(done[2])


def _sooner(src, n, w):
    """w, or the µs until `src` (a link UART holding n bytes, or a link pin reading low) is
    ready when that comes first."""
    t = src.wake_in(n if hasattr(src, "any") else 0, w)
    return t if 0 <= t < w else w


class WDT:
    """machine.WDT stand-in: fed from the main loop; expiry raises WatchdogReset."""

    def __init__(self, clock, timeout=5000):
        self.timeout = timeout
        self._clock = clock
        self.fed = clock.ticks_ms()
        clock.wdt = self

    def feed(self):
        self.fed = self._clock.ticks_ms()

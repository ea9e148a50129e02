"""Verdict to actuators: the lock and passage sensor (Gate), LEDs, buzzer and display
(Feedback). Both run as background tasks, so the decision path only sets a few fields and
returns: the next tap is never held up by a beep pattern or a slow display."""

import asyncio

import reasons as R
from micropython import const

_POLL_MS = const(10)
_BEEP_MS = const(80)
_SHOW_MS = const(1500)  # how long a verdict stays on the display and LEDs

IDLE = ("请刷卡或扫码", "Tap card or scan code")


class Gate:
    """Opens the lock for each rider admitted; closes when the passage sensor has seen all of
    them through (sensor 1 then 0), or when nobody comes within open_ms."""

    def __init__(self, lock, sensor, clock, open_ms):
        self._lock = lock
        self._sensor = sensor
        self._clock = clock
        self.open_ms = open_ms
        self.waiting = 0  # riders admitted and not yet through
        self.passed = 0  # riders counted through by the sensor
        self.timeouts = 0
        self.held = False  # emergency release: open regardless of riders
        self._since = 0
        self._occupied = False
        lock.off()

    def admit(self):
        self.waiting += 1
        self._since = self._clock.ticks_ms()
        self._lock.on()

    def hold(self, on):
        """Emergency release (on) or back to controlled passage (off)."""
        self.held = on
        if on:
            self._lock.on()
        elif not self.waiting:
            self._lock.off()

    def _close_if_done(self):
        if not self.waiting and not self.held:
            self._lock.off()

    async def run(self):
        clock = self._clock
        while True:
            await asyncio.sleep_ms(_POLL_MS)
            if not self.waiting:
                self._occupied = False
                continue
            s = self._sensor.value()
            if s:
                self._occupied = True
            elif self._occupied:
                self._occupied = False
                self.waiting -= 1
                self.passed += 1
                self._since = clock.ticks_ms()
                self._close_if_done()
            elif clock.ticks_diff(clock.ticks_ms(), self._since) > self.open_ms:
                self.timeouts += 1
                self.waiting = 0
                self._close_if_done()


class Feedback:
    """Green/red LEDs, buzzer (1 beep pass, 2 manual check, 3 deny) and the two-language
    display. A new verdict cuts the previous pattern short."""

    def __init__(self, green, red, buzzer, display):
        self._green = green
        self._red = red
        self._buzzer = buzzer
        self._display = display
        self._ev = asyncio.Event()
        self._gen = 0
        self._verdict = 0
        self._reason = 0
        self._fare = -1
        self._balance = 0
        self.idle = IDLE
        self.beeps = 0  # total beeps sounded (tests, diagnostics)

    def signal(self, verdict, reason, fare=-1, balance=0):
        """fare >= 0: a purchase was made; the display shows it and the balance left."""
        self._verdict = verdict
        self._reason = reason
        self._fare = fare
        self._balance = balance
        self._gen += 1
        self._ev.set()

    def set_idle(self, zh, en):
        """What the display shows between riders (e.g. emergency release, out of service)."""
        self.idle = (zh, en)
        self.signal(0, 0)

    async def run(self):
        while True:
            await self._ev.wait()
            self._ev.clear()
            gen = self._gen
            v = self._verdict
            if v == 0:
                self._idle()
                continue
            zh, en = R.text(self._reason)
            if self._fare >= 0 and v == R.PASS:  # formatted here, off the decision path
                f, b = _yuan(self._fare), _yuan(self._balance)
                zh = "%s 扣款%s 余额%s" % (zh, f, b)
                en = "%s - fare %s, balance %s" % (en, f, b)
            self._display.show(zh, en)
            self._green.value(v == R.PASS or v == R.MANUAL)
            self._red.value(v != R.PASS)
            n = 1 if v == R.PASS else (2 if v == R.MANUAL else 3)
            for _ in range(n):
                if gen != self._gen:
                    break
                self._buzzer.on()
                self.beeps += 1
                await asyncio.sleep_ms(_BEEP_MS)
                self._buzzer.off()
                await asyncio.sleep_ms(_BEEP_MS)
            t = 0
            while t < _SHOW_MS and gen == self._gen:
                await asyncio.sleep_ms(50)
                t += 50
            if gen == self._gen:
                self._idle()

    def _idle(self):
        self._buzzer.off()
        self._green.off()
        self._red.off()
        self._display.show(self.idle[0], self.idle[1])


def _yuan(fen):
    sign = "-" if fen < 0 else ""
    fen = -fen if fen < 0 else fen
    return "%s%d.%02d" % (sign, fen // 100, fen % 100)

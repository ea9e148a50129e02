"""The world around an emulated gate: a scheduler on the reader's virtual time and the gate's
mechanics (riders walk through when the lock opens, which the passage sensor sees).

Everything here runs inside `Hardware.hooks`, i.e. on each request from the reader, with the
reader's virtual time; so scripted riders arrive at exact virtual instants in accelerated runs
and "now" in real-time runs.
"""

import heapq
import itertools


class Scheduler:
    """Run callables at virtual times (µs), in order, from the reader's requests."""

    def __init__(self, hw):
        self.hw = hw
        self._q = []
        self._n = itertools.count()
        hw.hooks.append(self._run)

    def at(self, t_us, fn):
        heapq.heappush(self._q, (int(t_us), next(self._n), fn))

    def after(self, delay_us, fn):
        self.at(self.hw.now_us + delay_us, fn)

    def pending(self):
        return len(self._q)

    def _run(self, now):
        q = self._q
        while q and q[0][0] <= now:
            _, _, fn = heapq.heappop(q)
            fn(now)


class Gate:
    """Flap gate + passage sensor. When the reader opens the lock and a rider is waiting, the
    rider steps in after `walk_ms` and clears the sensor `pass_ms` later. Counts passages and
    tailgating-free openings that nobody used."""

    def __init__(self, hw, sched, walk_ms=700, pass_ms=500):
        self.hw = hw
        self.sched = sched
        self.walk_us = walk_ms * 1000
        self.pass_us = pass_ms * 1000
        self.waiting = 0  # riders allowed through and about to walk
        self.passages = 0
        self.openings = 0
        hw.watch_pin("GATE_LOCK", self._lock)

    def rider_will_pass(self):
        """The current rider walks through at the next opening."""
        self.waiting += 1

    def _lock(self, now, level):
        if level != 1:
            return
        self.openings += 1
        if self.waiting:
            self.waiting -= 1
            self.sched.at(now + self.walk_us, self._enter)

    def _enter(self, now):
        self.hw.set_input("PASSAGE", 1)
        self.sched.at(now + self.pass_us, self._leave)

    def _leave(self, now):
        self.hw.set_input("PASSAGE", 0)
        self.passages += 1

"""The RF field (which virtual cards are in it, over the reader's virtual time) and the fault
counters a test sets on what the chip sends."""

import random


class Faults:
    """Counters for faults on what the chip sends; each applies to the next N frames."""

    def __init__(self, seed=1):
        self.rng = random.Random(seed)
        self.drop = 0  # drop one byte of each of the next N frames
        self.corrupt = 0  # flip one byte of each of the next N frames
        self.garbage = 0  # N junk bytes ahead of the next frame
        self.nack_storm = 0  # N NACK frames ahead of the next ACK
        self.late_ack_us = 0  # the next ACK comes this much later (once)
        self.hang = False  # deaf and mute until RSTPD_N is pulsed
        self.ignore = 0  # ignore the next N commands entirely (lost on the line)
        self.stale = 0  # a leftover response frame arrives ahead of the next N ACKs


class Field:
    """Cards in the RF field over virtual time (µs of the reader's clock)."""

    def __init__(self, sim):
        self._sim = sim
        self._cards = []  # [card, t_in, t_out]

    def _at(self, at_us, delay_ms):
        return (self._sim.now if at_us is None else at_us) + int(delay_ms * 1000)

    def present(self, card, at_us=None, delay_ms=0):
        with self._sim.lock:
            self._cards.append([card, self._at(at_us, delay_ms), None])

    def remove(self, card, at_us=None, delay_ms=0):
        with self._sim.lock:
            t = self._at(at_us, delay_ms)
            for e in self._cards:
                if e[0] is card and e[2] is None:
                    e[2] = t

    def clear(self):
        with self._sim.lock:
            now = self._sim.now
            for e in self._cards:
                if e[2] is None or e[2] > now:
                    e[2] = now

    def cards(self, now):
        out = []
        keep = []
        for e in self._cards:
            if e[2] is not None and e[2] <= now:
                e[0].left_field()
                continue
            keep.append(e)
            if e[1] <= now:
                out.append(e[0])
        self._cards = keep
        return out

    def arrived(self, now):
        """When the latest of the cards in the field at `now` came in (None: field empty)."""
        ts = [e[1] for e in self._cards if e[1] <= now and (e[2] is None or e[2] > now)]
        return max(ts) if ts else None

    def has(self, card, now):
        return card in self.cards(now)

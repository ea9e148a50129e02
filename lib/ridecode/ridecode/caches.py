"""Fixed-size caches for the verifier: preallocated once, never grow, whatever riders do.

Both are keyed by bytes the verifier already holds (a certificate digest, a code's MAC), with
the first four bytes kept as an int so a lookup is mostly int compares. Numbers live in 32-bit
arrays: no boxed integer per slot on the ESP32, whose small ints stop at 2**30.
"""

from array import array

from micropython import const

_CERT_KEY = const(32)
_REPLAY_KEY = const(16)


def _word(b, off):
    return b[off] << 24 | b[off + 1] << 16 | b[off + 2] << 8 | b[off + 3]


def _same(a, aoff, b, boff, n):
    for i in range(n):
        if a[aoff + i] != b[boff + i]:
            return False
    return True


class CertCache:
    """Least-recently-used set of certificate digests whose issuer signature verified."""

    def __init__(self, slots):
        self.slots = slots
        self._keys = bytearray(slots * _CERT_KEY)
        self._word = array("I", [0] * slots)
        self._used = array("I", [0] * slots)  # 0: empty; else use stamp
        self._stamp = 0
        self.hits = 0
        self.misses = 0

    def clear(self):
        for i in range(self.slots):
            self._used[i] = 0

    def lookup(self, digest):
        w = _word(digest, 0)
        keys = self._keys
        for i in range(self.slots):
            if self._used[i] and self._word[i] == w and _same(keys, i * _CERT_KEY, digest, 0,
                                                              _CERT_KEY):
                self._stamp += 1
                self._used[i] = self._stamp
                self.hits += 1
                return True
        self.misses += 1
        return False

    def add(self, digest):
        used = self._used
        victim = 0
        for i in range(self.slots):
            if used[i] < used[victim]:
                victim = i
        off = victim * _CERT_KEY
        for j in range(_CERT_KEY):
            self._keys[off + j] = digest[j]
        self._word[victim] = _word(digest, 0)
        self._stamp += 1
        used[victim] = self._stamp


class ReplayCache:
    """Ring of recently accepted codes (their MACs and generation times): a code passes once per
    reader. The ring must span the freshness window at peak scan rate; when it wraps over an
    entry that is still fresh, `fresh_evictions` counts it so health reports can flag a ring
    that is too small."""

    def __init__(self, slots):
        self.slots = slots
        self._keys = bytearray(slots * _REPLAY_KEY)
        self._word = array("I", [0] * slots)
        self._time = array("I", [0] * slots)  # generation time; 0: empty
        self._next = 0
        self.fresh_evictions = 0

    def clear(self):
        for i in range(self.slots):
            self._time[i] = 0

    def seen(self, mac, off):
        w = _word(mac, off)
        keys = self._keys
        for i in range(self.slots):
            if self._word[i] == w and self._time[i] and _same(keys, i * _REPLAY_KEY, mac,
                                                                   off, _REPLAY_KEY):
                return True
        return False

    def add(self, mac, off, gen_time, oldest_fresh):
        i = self._next
        if self._time[i] and self._time[i] >= oldest_fresh:
            self.fresh_evictions += 1
        base = i * _REPLAY_KEY
        for j in range(_REPLAY_KEY):
            self._keys[base + j] = mac[off + j]
        self._word[i] = _word(mac, off)
        self._time[i] = gen_time
        self._next = (i + 1) % self.slots

"""Reader-side check of a ride code: issuer signature, keys, validity, freshness, replay.

Returns a result constant and fills a credential.Credential; it never decides pass or deny. A
reader without trusted time gets NO_TRUSTED_TIME for a code that is otherwise genuine: staff
check it by hand, the gate never opens on it.
"""

import hashlib

import base45
import rsapkcs1
from civildate import ymd
from micropython import const

from ridecode import layout
from ridecode.caches import CertCache, ReplayCache
from ridecode.hmac256 import hmac_sha256

OK = const(0)
MALFORMED = const(1)  # not a ride code, truncated, bad base45, bad field
FORGED = const(2)  # issuer signature or dynamic-part MAC does not verify
UNKNOWN_KEY = const(3)  # issuer key id or the day's dynamic key not in the key set
REVOKED = const(4)  # issuer key id revoked
EXPIRED = const(5)  # certificate validity ended
NOT_YET_VALID = const(6)  # certificate validity not started
STALE = const(7)  # dynamic part too old (a screenshot) or dated in the future
REPLAYED = const(8)  # this exact code was already accepted by this reader
NO_TRUSTED_TIME = const(9)  # genuine, but the reader cannot tell the time: manual check

NAMES = ("ok", "malformed", "forged", "unknown-key", "revoked", "expired", "not-yet-valid",
         "stale", "replayed", "no-trusted-time")

_KIND_CODE = const(4)  # credential.KIND_CODE (firmware module; not imported by a lib)
_SIG = const(256)
_FIXED = const(12)
_DYN = const(22)
_DAY = const(86400)


def _u32(b, i):
    return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]


class Verifier:
    """`check(buf, n, cred)` for the text a scan engine delivered (`buf[:n]`, no terminator).

    A dynamic part is fresh from `skew_s` before to `window_s + skew_s` after the reader's
    time: the defaults make a screenshot useless 60 s after it was taken."""

    def __init__(self, keyset, clock, window_s=30, skew_s=30, replay_slots=128, cache_slots=16):
        if window_s < 1 or skew_s < 0 or replay_slots < 1 or cache_slots < 1:
            raise ValueError("verifier parameters")
        self.window_s = window_s
        self.skew_s = skew_s
        self._clock = clock
        self._bin = bytearray(layout.MAX_BINARY)
        self.certs = CertCache(cache_slots)
        self.replay = ReplayCache(replay_slots)
        self.counts = [0] * len(NAMES)
        self.keyset = None
        self.set_keyset(keyset)

    def set_keyset(self, keyset):
        """A new key set: forget verified certificates (a key may have been revoked)."""
        self.keyset = keyset
        self.certs.clear()

    def check(self, buf, n, cred):
        r = self._check(buf, n, cred)
        self.counts[r] += 1
        cred.error = r
        return r

    def _check(self, buf, n, cred):
        cred.clear()
        cred.kind = _KIND_CODE
        p = layout.PREFIX
        lp = len(p)
        if n < lp or n > layout.MAX_TEXT or n > len(buf):
            return MALFORMED
        for i in range(lp):
            if buf[i] != p[i]:
                return MALFORMED
        b = self._bin
        try:
            m = base45.decode_into(buf, lp, n - lp, b)
        except ValueError:
            return MALFORMED
        # certificate: version, key id, category, account length, account, from, to, signature
        if m < layout.MIN_BINARY or b[0] != layout.VERSION:
            return MALFORMED
        acc = b[3]
        cert_end = _FIXED + acc
        if acc < 1 or acc > layout.ACCOUNT_MAX or m != cert_end + _SIG + _DYN:
            return MALFORMED
        for i in range(4, 4 + acc):
            if not 0x20 < b[i] < 0x7F:
                return MALFORMED
        valid_from = _u32(b, 4 + acc)
        valid_to = _u32(b, 8 + acc)
        dyn = cert_end + _SIG
        gen = _u32(b, dyn)
        self._fill(cred, b, acc, valid_from, valid_to, gen)
        ks = self.keyset
        kid = b[1]
        if ks.revoked[kid]:
            return REVOKED
        key = ks.issuer(kid)
        if key is None:
            return UNKNOWN_KEY
        mv = memoryview(b)
        cert_id = hashlib.sha256(mv[:dyn]).digest()  # certificate + signature
        if not self.certs.lookup(cert_id):
            h = hashlib.sha256(layout.CERT_DOMAIN)
            h.update(mv[:cert_end])
            try:
                rsapkcs1.verify(key[0], key[1], h.digest(), mv[cert_end:dyn])
            except rsapkcs1.SignatureError:
                return FORGED
            self.certs.add(cert_id)
        now = self._clock.time()
        if now is not None:
            if now < valid_from - self.skew_s:
                return NOT_YET_VALID
            if now >= valid_to:
                return EXPIRED
            age = now - gen
            if age > self.window_s + self.skew_s or age < -self.skew_s:
                return STALE
        day_key = ks.days.get(gen // _DAY)
        if day_key is None:
            return UNKNOWN_KEY
        user_key = hmac_sha256(day_key, cert_id)
        mac = hmac_sha256(user_key, layout.DYN_DOMAIN, mv[dyn:dyn + 6])
        d = 0
        for i in range(layout.MAC_LEN):
            d |= mac[i] ^ b[dyn + 6 + i]
        if d:
            return FORGED
        if now is None:
            return NO_TRUSTED_TIME
        if self.replay.seen(b, dyn + 6):
            return REPLAYED
        self.replay.add(b, dyn + 6, gen, now - self.window_s - 2 * self.skew_s)
        return OK

    @staticmethod
    def _fill(cred, b, acc, valid_from, valid_to, gen):
        cred.set_number(memoryview(b)[4:4 + acc], acc)
        cred.card_type = b[2]
        cred.valid_from = ymd(valid_from // _DAY)
        cred.valid_to = ymd(valid_to // _DAY)
        cred.issued_at = gen

"""Reader-side check of a ride code: issuer signature, rider signature (RC2) or day-key MAC
(RC1), validity, freshness, replay.

Returns a result constant and fills a credential.Credential; it never decides pass or deny. A
reader without trusted time gets NO_TRUSTED_TIME for a code that is otherwise genuine: staff
check it by hand, the gate never opens on it. RC1 codes are accepted only while the reader is
configured to (`rc1`): a reader holds the RC1 day keys, so whoever extracts them can make RC1
codes (docs/ride-code.md).
"""

import hashlib

import base45
import p256
import rsapkcs1
from civildate import ymd
from micropython import const

from ridecode import layout
from ridecode.caches import CertCache, ReplayCache
from ridecode.hmac256 import hmac_sha256

OK = const(0)
MALFORMED = const(1)  # not a ride code, truncated, bad base45, bad field
FORGED = const(2)  # issuer signature, rider signature or dynamic-part MAC does not verify
UNKNOWN_KEY = const(3)  # issuer key id or the day's dynamic key not in the key set
REVOKED = const(4)  # issuer key id revoked
EXPIRED = const(5)  # certificate validity ended
NOT_YET_VALID = const(6)  # certificate validity not started
STALE = const(7)  # dynamic part too old (a screenshot) or dated in the future
REPLAYED = const(8)  # this exact code was already accepted by this reader
NO_TRUSTED_TIME = const(9)  # genuine, but the reader cannot tell the time: manual check
NON_CANONICAL = const(10)  # rider signature r or s out of range, or s above n/2 (malleated)
BAD_KEY = const(11)  # the certified rider key is not a point of the curve
RETIRED = const(12)  # an RC1 code on a reader that no longer accepts RC1

NAMES = ("ok", "malformed", "forged", "unknown-key", "revoked", "expired", "not-yet-valid",
         "stale", "replayed", "no-trusted-time", "non-canonical", "bad-key", "retired")

_KIND_CODE = const(4)  # credential.KIND_CODE (firmware module; not imported by a lib)
_SIG = const(256)
_FIXED = const(12)
_DYN = const(22)
_DYN2 = const(70)
_KEYS = const(128)
_DAY = const(86400)
_PREFIX_LEN = const(4)


def _u32(b, i):
    return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]


class Verifier:
    """`check(buf, n, cred)` for the text a scan engine delivered (`buf[:n]`, no terminator).

    A dynamic part is fresh from `skew_s` before to `window_s + skew_s` after the reader's
    time: the defaults make a screenshot useless 30 s after it was taken (the app refreshes
    its code at least every 15 s)."""

    def __init__(self, keyset, clock, window_s=20, skew_s=10, replay_slots=128, cache_slots=16,
                 rc1=False):
        if window_s < 1 or skew_s < 0 or replay_slots < 1 or cache_slots < 1:
            raise ValueError("verifier parameters")
        self.window_s = window_s
        self.skew_s = skew_s
        self.rc1 = rc1
        self._clock = clock
        self._bin = bytearray(layout.MAX_BINARY2)
        self._ecdsa = p256.Verifier()
        self._seen = b""  # the last RC2 signed-message digest (the replay key)
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

    @staticmethod
    def _version(buf, n):
        """1 or 2 from the text's prefix (RC1: or RC2:), else 0."""
        if n < _PREFIX_LEN or buf[0] != 0x52 or buf[1] != 0x43 or buf[3] != 0x3A:
            return 0
        v = buf[2] - 0x30
        return v if v == 1 or v == 2 else 0

    def _check(self, buf, n, cred):
        cred.clear()
        cred.kind = _KIND_CODE
        if n > len(buf):
            return MALFORMED
        v = self._version(buf, n)
        if v == 1 and not self.rc1:
            return RETIRED
        if v == 0 or n > (layout.MAX_TEXT if v == 1 else layout.MAX_TEXT2):
            return MALFORMED
        b = self._bin
        try:
            m = base45.decode_into(buf, _PREFIX_LEN, n - _PREFIX_LEN, b)
        except ValueError:
            return MALFORMED
        # certificate: version, key id, category, account length, account, from, to,
        # [RC2: rider key, 2**128 * rider key], issuer signature; then the dynamic part
        acc = b[3]
        keys = _KEYS if v == 2 else 0
        cert_end = _FIXED + acc + keys
        dyn = cert_end + _SIG
        if m < _FIXED or b[0] != v or acc < 1 or acc > layout.ACCOUNT_MAX or \
                m != dyn + (_DYN2 if v == 2 else _DYN):
            return MALFORMED
        for i in range(4, 4 + acc):
            if not 0x20 < b[i] < 0x7F:
                return MALFORMED
        valid_from = _u32(b, 4 + acc)
        valid_to = _u32(b, 8 + acc)
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
            h = hashlib.sha256(layout.CERT2_DOMAIN if v == 2 else layout.CERT_DOMAIN)
            h.update(mv[:cert_end])
            try:
                rsapkcs1.verify(key[0], key[1], h.digest(), mv[cert_end:dyn])
            except rsapkcs1.SignatureError:
                return FORGED
            self.certs.add(cert_id)  # RC2: its keys are checked with every signature
        now = self._clock.time()
        if now is not None:
            if now < valid_from - self.skew_s:
                return NOT_YET_VALID
            if now >= valid_to:
                return EXPIRED
            age = now - gen
            if age > self.window_s + self.skew_s or age < -self.skew_s:
                return STALE
        if v == 2:
            r = self._rider(mv, cert_id, cert_end, dyn)
            seen = self._seen  # replay key: the signed message's digest, not the signature
            off = 0
        else:
            r = self._mac(ks, mv, b, cert_id, dyn, gen)
            seen = b
            off = dyn + 6
        if r != OK:
            return r
        if now is None:
            return NO_TRUSTED_TIME
        if self.replay.seen(seen, off):
            return REPLAYED
        self.replay.add(seen, off, gen, now - self.window_s - 2 * self.skew_s)
        return OK

    def _rider(self, mv, cert_id, cert_end, dyn):
        """RC2: the rider's signature over the dynamic part, bound to the certificate."""
        h = hashlib.sha256(layout.DYN2_DOMAIN)
        h.update(cert_id)
        h.update(mv[dyn:dyn + 6])
        digest = self._seen = h.digest()
        try:
            self._ecdsa.verify(mv[cert_end - _KEYS:cert_end - 64], digest, mv[dyn + 6:dyn + _DYN2],
                               low_s=True, key_hi=mv[cert_end - 64:cert_end])
        except p256.SignatureError as e:
            if e.code == p256.E_INVALID:
                return FORGED
            return BAD_KEY if e.code == p256.E_KEY else NON_CANONICAL
        return OK

    @staticmethod
    def _mac(ks, mv, b, cert_id, dyn, gen):
        """RC1: the dynamic part's MAC under the day key the reader holds."""
        day_key = ks.days.get(gen // _DAY)
        if day_key is None:
            return UNKNOWN_KEY
        user_key = hmac_sha256(day_key, cert_id)
        mac = hmac_sha256(user_key, layout.DYN_DOMAIN, mv[dyn:dyn + 6])
        d = 0
        for i in range(layout.MAC_LEN):
            d |= mac[i] ^ b[dyn + 6 + i]
        return FORGED if d else OK

    @staticmethod
    def _fill(cred, b, acc, valid_from, valid_to, gen):
        cred.set_number(memoryview(b)[4:4 + acc], acc)
        cred.card_type = b[2]
        cred.valid_from = ymd(valid_from // _DAY)
        cred.valid_to = ymd(valid_to // _DAY)
        cred.issued_at = gen

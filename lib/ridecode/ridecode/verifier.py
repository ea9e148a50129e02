"""Reader-side check of a ride code: issuer signature, rider signature (RC2) or day-key MAC
(RC1), validity, freshness, replay.

Returns a result constant and fills a credential.Credential; it never decides pass or deny. A
reader without trusted time gets NO_TRUSTED_TIME for a code that is otherwise genuine: staff
check it by hand, the gate never opens on it. RC1 codes are accepted only while the reader is
configured to (`rc1`): a reader holds the RC1 day keys, so whoever extracts them can make RC1
codes (docs/ride-code.md). RC2 rider keys are RSA-2048 with e = 3 (two modular multiplications
a verify) or, where a reader is configured to (`p256`), ECDSA P-256 (some 16 M instructions a
verify on a 32-bit core: over the ESP32's budget, docs/ride-code.md).

`prefetch()` checks the issuer certificate of a code that is still arriving (it comes first):
the RSA operation then overlaps the dynamic part's time on the wire.
"""

import hashlib

import base45
import p256 as _p256
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
BAD_KEY = const(11)  # the certified rider key is not a curve point / a 2048-bit odd modulus
RETIRED = const(12)  # an RC1 code on a reader that no longer accepts RC1
KEY_OFF = const(13)  # an RC2 rider-key algorithm this reader is configured not to accept

NAMES = ("ok", "malformed", "forged", "unknown-key", "revoked", "expired", "not-yet-valid",
         "stale", "replayed", "no-trusted-time", "non-canonical", "bad-key", "retired",
         "key-off")

_KIND_CODE = const(4)  # credential.KIND_CODE (firmware module; not imported by a lib)
_SIG = const(256)
_FIXED = const(12)
_DYN = const(22)
_KEYS = const(128)  # P-256: the key and 2**128 times it
_ECSIG = const(64)
_ALG_RSA3 = const(1)  # layout.ALG_RSA3
_ALG_P256 = const(2)  # layout.ALG_P256
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
                 rc1=False, p256=False):
        if window_s < 1 or skew_s < 0 or replay_slots < 1 or cache_slots < 1:
            raise ValueError("verifier parameters")
        self.window_s = window_s
        self.skew_s = skew_s
        self.rc1 = rc1
        self._clock = clock
        self._bin = bytearray(layout.MAX_BINARY2)
        self._ecdsa = _p256.Verifier() if p256 else None  # its 4.5 KB workspace only if used
        self._seen = b""  # the last RC2 signed-message digest (the replay key)
        self._cert_id = b""  # SHA-256 of the last certificate checked
        self._at = -1  # the code prefetch() last finished with (one certificate check a code)
        self.prefetches = 0
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
        # [RC2: rider-key algorithm, rider key], issuer signature; then the dynamic part
        acc = b[3]
        cert_end, dyn_len = self._shape(b, v, acc)
        dyn = cert_end + _SIG
        if m < _FIXED or b[0] != v or acc < 1 or acc > layout.ACCOUNT_MAX or not dyn_len or \
                m != dyn + dyn_len:
            return MALFORMED
        for i in range(4, 4 + acc):
            if not 0x20 < b[i] < 0x7F:
                return MALFORMED
        valid_from = _u32(b, 4 + acc)
        valid_to = _u32(b, 8 + acc)
        gen = _u32(b, dyn)
        self._fill(cred, b, acc, valid_from, valid_to, gen)
        alg = b[_FIXED + acc] if v == 2 else 0
        if alg == _ALG_P256 and self._ecdsa is None:
            return KEY_OFF
        mv = memoryview(b)
        r = self._cert(b, mv, v, cert_end, dyn)
        if r != OK:
            return r
        cert_id = self._cert_id
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
            r = self._rider(mv, b, alg, cert_id, cert_end, dyn)
            seen = self._seen  # replay key: the signed message's digest, not the signature
            off = 0
        else:
            r = self._mac(self.keyset, mv, b, cert_id, dyn, gen)
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

    @staticmethod
    def _shape(b, v, acc):
        """(end of the signed certificate body, dynamic part length) for a code whose version
        is v and account length acc; dynamic length 0 for an unknown rider-key algorithm."""
        if v == 1:
            return _FIXED + acc, _DYN
        alg = b[_FIXED + acc] if acc <= layout.ACCOUNT_MAX else 0
        if alg == _ALG_RSA3:
            return _FIXED + acc + 1 + _SIG, 6 + _SIG
        if alg == _ALG_P256:
            return _FIXED + acc + 1 + _KEYS, 6 + _ECSIG
        return _FIXED + acc, 0

    def _cert(self, b, mv, v, cert_end, dyn):
        """The issuer's signature over the certificate, or the cache of those already checked.
        Leaves SHA-256(certificate) in self._cert_id."""
        ks = self.keyset
        kid = b[1]
        if ks.revoked[kid]:
            return REVOKED
        key = ks.issuer(kid)
        if key is None:
            return UNKNOWN_KEY
        cert_id = self._cert_id = hashlib.sha256(mv[:dyn]).digest()  # body + signature
        if not self.certs.lookup(cert_id):
            h = hashlib.sha256(layout.CERT2_DOMAIN if v == 2 else layout.CERT_DOMAIN)
            h.update(mv[:cert_end])
            try:
                rsapkcs1.verify(key[0], key[1], h.digest(), mv[cert_end:dyn])
            except rsapkcs1.SignatureError:
                return FORGED
            self.certs.add(cert_id)  # RC2: the rider key is checked with every signature
        return OK

    def prefetch(self, buf, n, at):
        """A code still arriving (buf[:n], the first n characters; `at` tells codes apart, e.g.
        when its first byte came): once its certificate is in, check the issuer signature into
        the certificate cache, so the check when the code is complete is a warm one. Once per
        code; a text that is no RC2 code, or whose certificate does not verify, is left to
        check() to refuse. Returns True when there is nothing more to do for this code."""
        if at == self._at:
            return True
        if n < _PREFIX_LEN + 6:
            return False  # too little to tell yet
        if self._version(buf, n) != 2:
            self._at = at
            return True
        b = self._bin
        try:
            base45.decode_into(buf, _PREFIX_LEN, 6, b)  # version .. account length
            acc = b[3]
            if acc > layout.ACCOUNT_MAX or b[0] != 2:
                self._at = at
                return True
            # up to the rider-key algorithm byte, in whole base45 groups (more text follows)
            need = _PREFIX_LEN + (_FIXED + acc + 2) // 2 * 3
            if n < need:
                return False
            base45.decode_into(buf, _PREFIX_LEN, need - _PREFIX_LEN, b)
            cert_end, dyn_len = self._shape(b, 2, acc)
            dyn = cert_end + _SIG
            need = _PREFIX_LEN + (dyn + 1) // 2 * 3
            if not dyn_len or (b[_FIXED + acc] == _ALG_P256 and self._ecdsa is None):
                self._at = at
                return True
            if n < need:
                return False
            base45.decode_into(buf, _PREFIX_LEN, need - _PREFIX_LEN, b)
        except ValueError:
            self._at = at
            return True
        self._at = at
        self.prefetches += 1
        self._cert(b, memoryview(b), 2, cert_end, dyn)
        return True

    def _signed(self, mv, cert_id, dyn):
        """RC2: the digest of what the rider signed, bound to the certificate; kept as the
        replay key (the signed message, not the signature bytes)."""
        h = hashlib.sha256(layout.DYN2_DOMAIN)
        h.update(cert_id)
        h.update(mv[dyn:dyn + 6])
        digest = self._seen = h.digest()
        return digest

    def _rider(self, mv, b, alg, cert_id, cert_end, dyn):
        """RC2: the rider's signature over the dynamic part."""
        digest = self._signed(mv, cert_id, dyn)
        sig = dyn + 6
        if alg == _ALG_RSA3:
            at = cert_end - _SIG
            if not b[at] & 0x80 or not b[cert_end - 1] & 1:
                return BAD_KEY  # not an odd 2048-bit modulus
            try:
                rsapkcs1.verify(int.from_bytes(mv[at:cert_end], "big"), 3, digest,
                                mv[sig:sig + _SIG])
            except rsapkcs1.SignatureError as e:
                return NON_CANONICAL if e.code == rsapkcs1.E_RANGE else FORGED
            return OK
        try:
            self._ecdsa.verify(mv[cert_end - _KEYS:cert_end - 64], digest, mv[sig:sig + _ECSIG],
                               low_s=True, key_hi=mv[cert_end - 64:cert_end])
        except _p256.SignatureError as e:
            if e.code == _p256.E_INVALID:
                return FORGED
            return BAD_KEY if e.code == _p256.E_KEY else NON_CANONICAL
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

"""ECDSA P-256 (secp256r1) signature verification with SHA-256 digests, fast enough for
MicroPython on the ESP32: the field arithmetic runs as native code (vm.py, generated), the
generator's multiples are tables in flash, and u1*G + u2*Q is one joint wNAF pass.

A key can come with its multiple 2**128 * Q (`verify(..., key_hi=...)`), taken from the same
signed source as the key: the pass then needs 128 doublings instead of 256.

Policy-free: `verify` raises SignatureError with a code saying why a signature is refused;
whether high-S signatures are acceptable is the caller's choice (`low_s`). Public keys are
64 bytes x || y, signatures 64 bytes r || s (IEEE P1363), digests 32 bytes.
"""

from micropython import const

from p256 import scalar, vm

E_FORMAT = const(1)  # wrong length, r or s outside 1..n-1
E_HIGH_S = const(2)  # s above n/2 where the caller asked for low-S
E_KEY = const(3)  # a public key that is not a point of the curve
E_INVALID = const(4)  # well-formed, but not a signature of this digest by this key

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N_INV13 = 0x3B1  # n**-1 mod 2**13
_P_AT = vm.CONSTS_AT + 2 * vm.NL  # p in the workspace


class SignatureError(ValueError):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def _word(slot):
    return vm.SLOT0 + vm.NL * slot


# the terms of u1*G + u2*Q: (table kind, table, offset of the scalar in Verifier._u, bytes)
_PLAIN = ((vm.KIND_G, 0, 0, 32), (vm.KIND_Q, _word(vm.S_QT), 32, 32))
# with H = 2**128 Q: u1lo*G + u1hi*(2**128 G) + u2lo*Q + u2hi*H
_SPLIT = ((vm.KIND_G, 0, 16, 16), (vm.KIND_G, vm.G_HALF, 0, 16),
          (vm.KIND_Q, _word(vm.S_QT), 48, 16), (vm.KIND_Q, _word(vm.S_HT), 32, 16))


def _limbs(x, n=21):
    """x as n little-endian 13-bit limbs in uint16 words (bytes)."""
    b = bytearray(2 * n)
    for i in range(n):
        v = (x >> (13 * i)) & 0x1FFF
        b[2 * i] = v & 0xFF
        b[2 * i + 1] = v >> 8
    return b


class Verifier:
    """One preallocated workspace (about 4 KB), reused by every verification."""

    def __init__(self):
        ws = self._ws = bytearray(2 * vm.WS_WORDS)
        at = 2 * vm.CONSTS_AT
        ws[at:at + len(vm.CONSTS)] = vm.CONSTS
        at = 2 * _word(vm.S_ONE)
        ws[at:at + len(vm.SLOT_CONSTS)] = vm.SLOT_CONSTS
        self._u = bytearray(64)  # u1, u2 (big-endian)
        # the inverse of s mod n: f, g, d, e, n (21 limbs each), n**-1 mod 2**13
        self._inv = bytearray(2 * 106)
        self._inv0 = _limbs(N) + bytes(84) + _limbs(1) + _limbs(N) + _limbs(_N_INV13, 1)
        self._d = bytearray(35)

    def _run(self, job):
        vm._vm(self._ws, vm.PROGS, vm.GTAB, job)

    def _set(self, word, v):
        self._ws[2 * word] = v & 0xFF
        self._ws[2 * word + 1] = v >> 8

    def _key(self, key, sx, sy, job):
        if len(key) != 64:
            raise SignatureError(E_KEY, "public key length")
        ws = self._ws
        scalar.load(ws, _word(sx), key, 0)
        scalar.load(ws, _word(sy), key, 32)
        if not (scalar.less(ws, _word(sx), _P_AT) and scalar.less(ws, _word(sy), _P_AT)):
            raise SignatureError(E_KEY, "public key coordinate out of range")
        self._run(job)
        if not scalar.equal(ws, _word(vm.S_T0), _word(vm.S_T1)):
            raise SignatureError(E_KEY, "public key not on the curve")

    def check_key(self, key):
        """Raise SignatureError(E_KEY) unless `key` (x || y) is a point of P-256; it then has
        order n (the curve's cofactor is 1)."""
        self._key(key, vm.S_QX, vm.S_QY, vm.J_KEY)

    def _inverse(self, sig):
        """s**-1 mod n for the s in sig[32:64]."""
        t = self._inv
        t[:] = self._inv0
        scalar.load(t, 21, sig, 32)
        d = self._d
        sign = scalar.inverse(t, d)
        w = int.from_bytes(d, "big")
        if d[0] & 0x80:
            w -= 1 << 280
        return sign * w % N

    def _lanes(self, lanes):
        top = -1
        for i, (kind, table, off, n) in enumerate(lanes):
            hd = vm.HDR + 4 + 3 * i
            self._set(hd, i * vm.NAF_LEN)
            self._set(hd + 1, kind)
            self._set(hd + 2, table)
            top = max(top, scalar.wnaf(self._ws, 2 * vm.NAF + i * vm.NAF_LEN, self._u, off, n,
                                       vm.G_WIDTH if kind == vm.KIND_G else vm.Q_WIDTH))
        self._set(vm.HDR + vm.H_LANES, len(lanes))
        self._set(vm.HDR + vm.H_TOP, top)

    def verify(self, key, digest, sig, low_s=False, key_hi=None):
        """Raise SignatureError unless `sig` is an ECDSA signature of `digest` by `key`.
        `key_hi`, if given, must be 2**128 * key from the same trusted source."""
        if len(sig) != 64 or len(digest) != 32:
            raise SignatureError(E_FORMAT, "signature or digest length")
        mv = memoryview(sig)
        r = int.from_bytes(mv[:32], "big")
        s = int.from_bytes(mv[32:], "big")
        if not 0 < r < N or not 0 < s < N:
            raise SignatureError(E_FORMAT, "r or s out of range")
        if low_s and s > N >> 1:
            raise SignatureError(E_HIGH_S, "high s")
        self.check_key(key)
        if key_hi is not None:
            self._key(key_hi, vm.S_HX, vm.S_HY, vm.J_KEY_H)
        w = self._inverse(sig)
        u = self._u
        u[0:32] = (int.from_bytes(digest, "big") * w % N).to_bytes(32, "big")
        u[32:64] = (r * w % N).to_bytes(32, "big")
        if key_hi is None:
            self._lanes(_PLAIN)
        else:
            self._lanes(_SPLIT)
            self._run(vm.J_PRE_H)
        self._run(vm.J_PRE_Q)
        self._run(-1)
        ws = self._ws
        if ws[2 * (vm.HDR + vm.H_INF)]:
            raise SignatureError(E_INVALID, "bad signature")
        scalar.load(ws, _word(vm.S_RX), sig, 0)
        self._run(vm.J_FINAL)
        if scalar.equal(ws, _word(vm.S_T1), _word(vm.S_T2)):
            return
        if r + N < P:  # x(R) may have been reduced mod n
            u[0:32] = (r + N).to_bytes(32, "big")
            scalar.load(ws, _word(vm.S_RX), u, 0)
            self._run(vm.J_FINAL)
            if scalar.equal(ws, _word(vm.S_T1), _word(vm.S_T2)):
                return
        raise SignatureError(E_INVALID, "bad signature")

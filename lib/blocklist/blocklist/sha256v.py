"""SHA-256 in viper, allocation-free, for the per-tap lookup (hashlib allocates a hash object
and a digest per call, which a heap_lock()ed hot path cannot afford).

Words are kept to 32 bits with a mask read from a buffer at run time, so the same code is right
on the 64-bit host (uint is 64 bits) and on the 32-bit ESP32 (the mask is then all ones).
"""

import micropython
from micropython import const

_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
    0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
    0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
    0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
    0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
    0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
    0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
    0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
    0xC67178F2,
)
_H0 = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
       0x5BE0CD19)
_BLOCK = const(64)


def _words(vals):
    b = bytearray(4 * len(vals))
    for i, v in enumerate(vals):
        for j in range(4):
            b[4 * i + j] = (v >> (8 * j)) & 0xFF  # native (little-endian) uint32 for ptr32
    return b


@micropython.viper
def _compress(st, w, blk, boff: int, k, mask):
    s = ptr32(st)
    W = ptr32(w)
    K = ptr32(k)
    m = ptr8(blk)
    M = uint(ptr32(mask)[0])
    i = 0
    while i < 16:
        o = boff + 4 * i
        W[i] = (uint(m[o]) << 24) | (uint(m[o + 1]) << 16) | (uint(m[o + 2]) << 8) | uint(m[o + 3])
        i += 1
    while i < 64:
        x = uint(W[i - 15])
        y = uint(W[i - 2])
        s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
        s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
        W[i] = (uint(W[i - 16]) + s0 + uint(W[i - 7]) + s1) & M
        i += 1
    a = uint(s[0])
    b = uint(s[1])
    c = uint(s[2])
    d = uint(s[3])
    e = uint(s[4])
    f = uint(s[5])
    g = uint(s[6])
    h = uint(s[7])
    i = 0
    while i < 64:
        t = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
        t1 = (h + t + ((e & f) ^ ((e ^ M) & g)) + uint(K[i]) + uint(W[i])) & M
        t = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
        t2 = (t + ((a & b) ^ (a & c) ^ (b & c))) & M
        h = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + t2) & M
        i += 1
    s[0] = (uint(s[0]) + a) & M
    s[1] = (uint(s[1]) + b) & M
    s[2] = (uint(s[2]) + c) & M
    s[3] = (uint(s[3]) + d) & M
    s[4] = (uint(s[4]) + e) & M
    s[5] = (uint(s[5]) + f) & M
    s[6] = (uint(s[6]) + g) & M
    s[7] = (uint(s[7]) + h) & M


@micropython.viper
def _out(st, dst):
    s = ptr32(st)
    d = ptr8(dst)
    i = 0
    while i < 8:
        v = uint(s[i])
        d[4 * i] = (v >> 24) & 0xFF
        d[4 * i + 1] = (v >> 16) & 0xFF
        d[4 * i + 2] = (v >> 8) & 0xFF
        d[4 * i + 3] = v & 0xFF
        i += 1


class Sha256:
    """One reusable hasher: digest_into(msg, n, out) hashes msg[0:n] into out[0:32].
    msg must have room for the padding (n rounded up to 64, plus 64)."""

    def __init__(self):
        self._k = _words(_K)
        self._h0 = _words(_H0)
        self._st = bytearray(32)
        self._w = bytearray(256)
        self._mask = _words((0xFFFFFFFF,))

    def digest_into(self, msg, n, out):
        st = self._st
        h0 = self._h0
        for i in range(32):
            st[i] = h0[i]
        # Merkle-Damgard padding, written in place after the message
        total = ((n + 8) // _BLOCK + 1) * _BLOCK
        msg[n] = 0x80
        for i in range(n + 1, total):
            msg[i] = 0
        bits = n * 8
        for i in range(4):
            msg[total - 1 - i] = (bits >> (8 * i)) & 0xFF
        off = 0
        while off < total:
            _compress(st, self._w, msg, off, self._k, self._mask)
            off += _BLOCK
        _out(st, out)

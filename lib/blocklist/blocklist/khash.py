"""Keyed hashing of identifiers and filter probe positions, shared by the host builder
(CPython) and the reader (MicroPython); tests run it on both.

An entry is SHA-256(key || namespace || length || identifier): the list never holds an
identifier in clear, the per-list key stops precomputed tables and cross-list linking, and the
namespace keeps a card number and an account id with the same digits apart. From that one
digest: bytes 0-7 are the exact-match fingerprint (delta records), bytes 8-11 pick the page
(30 bits, small-int safe on the 32-bit port), bytes 12-15 give h1, h2 for enhanced double
hashing of the k bit positions inside the 4096-bit page.
"""

import hashlib

from blocklist.fmt import KEY_LEN, MAX_K

MAX_IDENT = 32  # one SHA-256 block with the 18-byte prefix and padding
MSG_LEN = 128  # message buffer: prefix + identifier + padding room
# enhanced double hashing term (i^3 - i) / 6 (Dillinger & Manolios)
CUBE = tuple((i * i * i - i) // 6 for i in range(MAX_K))


def message(key, ns, ident, n, out):
    """Write the hashed message into out; return its length."""
    for i in range(KEY_LEN):
        out[i] = key[i]
    out[KEY_LEN] = ns
    out[KEY_LEN + 1] = n
    for i in range(n):
        out[KEY_LEN + 2 + i] = ident[i]
    return KEY_LEN + 2 + n


def digest(key, ns, ident):
    """The entry digest (allocates: builder, tools and tests; the reader uses sha256v)."""
    buf = bytearray(KEY_LEN + 2 + len(ident))
    message(key, ns, ident, len(ident), buf)
    return hashlib.sha256(buf).digest()


def page_of(d, npages):
    return (d[8] | d[9] << 8 | d[10] << 16 | (d[11] & 0x3F) << 24) % npages


def probes(d):
    """h1, h2 (odd, so the k positions are distinct) in [0, 4096)."""
    return d[12] | (d[13] & 0x0F) << 8, d[14] | (d[15] & 0x0F) << 8 | 1


def bits(d, k):
    """The k bit positions inside the page."""
    h1, h2 = probes(d)
    return [(h1 + i * h2 + CUBE[i]) & 4095 for i in range(k)]

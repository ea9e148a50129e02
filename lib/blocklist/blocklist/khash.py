"""Keyed hashing of identifiers and filter probe positions, shared by the host builder
(CPython) and the reader (MicroPython); tests run it on both.

An entry is SHA-256(key || namespace || length || identifier): the list never holds an
identifier in clear, the per-list key stops precomputed tables and cross-list linking, and the
namespace keeps a card number and an account id with the same digits apart. From that one
digest: bytes 0-7 are the exact-match fingerprint (delta records), bytes 8-11 pick the page
(30 bits, small-int safe on the 32-bit port), bytes 12-31 are thirteen independent 12-bit bit
positions inside the 4096-bit page; positions 13.. (k > 13) come from enhanced double hashing
of the first two. Plain double hashing from 24 bits alone would cap the distinct bit patterns
at 2^23, and a non-member sharing a member's pattern in the same page is always a false hit:
~1e-5 at 128 entries per page, far above the target.
"""

import hashlib

from blocklist.fmt import KEY_LEN, MAX_K

DIRECT = 13  # positions read straight from the digest (bytes 12-31)
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
    """The entry digest: SHA-256 of what message() writes (allocates: builder, tools, tests;
    the reader's lookup uses message() and sha256v)."""
    return hashlib.sha256(bytes(key) + bytes((ns, len(ident))) + bytes(ident)).digest()


def page_of(d, npages):
    return (d[8] | d[9] << 8 | d[10] << 16 | (d[11] & 0x3F) << 24) % npages


def position(d, i):
    """Bit position i (< DIRECT) inside the page: the i-th 12-bit field from byte 12 on."""
    j = 12 + (12 * i >> 3)
    if i & 1:
        return d[j] >> 4 | d[j + 1] << 4
    return d[j] | (d[j + 1] & 0x0F) << 8


def bits(d, k):
    """The k bit positions inside the page (the reader's lookup inlines this rule)."""
    q = int.from_bytes(bytes(d[12:32]), "little")  # same fields as position(), one at a time
    h1 = q & 4095
    h2 = (q >> 12) & 4095 | 1
    return [(q >> (12 * i)) & 4095 if i < DIRECT else (h1 + i * h2 + CUBE[i]) & 4095
            for i in range(k)]

"""Keyed hashing of identifiers, shared by the host builder (CPython) and the reader
(MicroPython); tests run it on both.

An entry is SHA-256(key || namespace || length || identifier): the list never holds an
identifier in clear, the per-list key stops precomputed tables and cross-list linking, and the
namespace keeps a card number and an account id with the same digits apart. From that one
digest: bytes 0-7 are the exact-match fingerprint (delta records), bytes 8-11 pick the page
(30 bits, small-int safe on the 32-bit port), bytes 12-13 give the quotient (bucket) and
bytes 14-16 the remainder of the page fingerprint (fpage.py). The fields are disjoint, so the
page, the bucket and the remainder are independent.
"""

import hashlib

from blocklist.fmt import KEY_LEN

MAX_IDENT = 32  # one SHA-256 block with the 18-byte prefix and padding
MSG_LEN = 128  # message buffer: prefix + identifier + padding room


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


def quotient(d):
    """16 bits; a page keeps its low q bits."""
    return d[12] | d[13] << 8


def remainder(d):
    """24 bits; a page keeps its low r bits."""
    return d[14] | d[15] << 8 | d[16] << 16

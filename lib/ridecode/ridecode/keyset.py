"""The signed key set: issuer public keys, revocations and per-day dynamic-code keys.

One artefact, signed by the root key the reader trusts, replaced whole by sync. The signature is
checked before anything in it is believed; serials only go up, so an old set (with a revoked
key still valid in it) cannot be replayed onto a reader. Layout in docs/ride-code.md.
"""

import hashlib

import rsapkcs1

from ridecode import layout

MAGIC = b"RCKS"
FORMAT = 1
MAX_ISSUERS = 8
MAX_REVOKED = 64
MAX_DAYS = 16
DAY_KEY_LEN = 32
_ISSUER_LEN = 1 + 4 + layout.SIG_LEN
_HEAD = 18  # magic, format, serial, valid_from, valid_to, issuer count
MAX_LEN = (_HEAD + MAX_ISSUERS * _ISSUER_LEN + 1 + MAX_REVOKED + 1
           + MAX_DAYS * (2 + DAY_KEY_LEN) + layout.SIG_LEN)

# KeySetError codes
E_MALFORMED = 1
E_SIGNATURE = 2
E_ROLLBACK = 3


class KeySetError(ValueError):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def _u32(b, i):
    return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]


class KeySet:
    """What a verified key set says. Built by `load()` (or directly by tests and tools)."""

    def __init__(self, serial=0, valid_from=0, valid_to=0):
        self.serial = serial
        self.valid_from = valid_from
        self.valid_to = valid_to
        self.issuers = {}  # key id -> (n, e)
        self.revoked = bytearray(256)  # 1 at a revoked key id
        self.days = {}  # day number (UTC seconds // 86400) -> 32-byte key

    def issuer(self, kid):
        return self.issuers.get(kid)


def load(data, root_n, root_e, min_serial=0):
    """Verify and parse a key set (bytes). Raises KeySetError; returns a KeySet."""
    n = len(data)
    k = layout.SIG_LEN
    if n < _HEAD + 2 + k or n > MAX_LEN or data[:4] != MAGIC or data[4] != FORMAT:
        raise KeySetError(E_MALFORMED, "not a key set")
    body = memoryview(data)[: n - k]
    h = hashlib.sha256(layout.KEYSET_DOMAIN)
    h.update(body)
    try:
        rsapkcs1.verify(root_n, root_e, h.digest(), memoryview(data)[n - k:])
    except rsapkcs1.SignatureError:
        raise KeySetError(E_SIGNATURE, "key set signature") from None
    ks = KeySet(_u32(data, 5), _u32(data, 9), _u32(data, 13))
    if ks.serial < min_serial:
        raise KeySetError(E_ROLLBACK, "key set serial went down")
    end = n - k
    i = _HEAD
    count = data[17]
    if count > MAX_ISSUERS or i + count * _ISSUER_LEN + 2 > end:
        raise KeySetError(E_MALFORMED, "issuer count")
    for _ in range(count):
        kid = data[i]
        e = _u32(data, i + 1)
        mod = int.from_bytes(data[i + 5: i + 5 + k], "big")
        if e < 3 or not e & 1 or not mod & 1 or data[i + 5] == 0 or kid in ks.issuers:
            raise KeySetError(E_MALFORMED, "issuer key")
        ks.issuers[kid] = (mod, e)
        i += _ISSUER_LEN
    count = data[i]
    i += 1
    if count > MAX_REVOKED or i + count + 1 > end:
        raise KeySetError(E_MALFORMED, "revocation count")
    for j in range(count):
        ks.revoked[data[i + j]] = 1
    i += count
    count = data[i]
    i += 1
    if count > MAX_DAYS or i + count * (2 + DAY_KEY_LEN) != end:
        raise KeySetError(E_MALFORMED, "day key count")
    for _ in range(count):
        ks.days[data[i] << 8 | data[i + 1]] = bytes(data[i + 2: i + 2 + DAY_KEY_LEN])
        i += 2 + DAY_KEY_LEN
    return ks

"""HMAC-SHA256 (RFC 2104) over hashlib, on MicroPython and CPython alike.

MicroPython's hashlib has no copy() and the unix/ESP32 ports ship no hmac module; the keys
here are at most one block, so this is two short hashes and two 64-byte pads. micropython-lib's
hmac (the pinned one) does the same work with 8 % more instructions and twice the garbage per MAC
(docs/device-figures.md).
"""

import hashlib

_BLOCK = 64


def hmac_sha256(key, msg1, msg2=b""):
    """HMAC-SHA256(key, msg1 || msg2); `key` at most 64 bytes."""
    if len(key) > _BLOCK:
        raise ValueError("hmac key too long")
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    h = hashlib.sha256(ipad)
    h.update(msg1)
    if msg2:
        h.update(msg2)
    o = hashlib.sha256(opad)
    o.update(h.digest())
    return o.digest()

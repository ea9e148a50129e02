"""RSA PKCS#1 v1.5 signature verification with SHA-256, strict.

The whole encoded block is rebuilt from the digest and compared byte for byte with the
signature's public-key operation, so the lax-parser forgeries (Bleichenbacher 2006, which made
e = 3 dangerous) have nothing to slip through: no parsing of padding, no trailing garbage, no
alternative DigestInfo encodings. Small exponents are then as safe as 65537 and much cheaper
(two modular multiplications instead of seventeen).

Runs on MicroPython and CPython (the host signing tools use it to check what they sign).
"""

# DigestInfo for SHA-256 (RFC 8017 section 9.2 note 1)
_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class SignatureError(ValueError):
    pass


def encoded(digest, k):
    """EMSA-PKCS1-v1_5 encoding of a SHA-256 digest for a k-byte modulus."""
    if len(digest) != 32:
        raise SignatureError("digest must be 32 bytes")
    pad = k - 3 - len(_PREFIX) - 32
    if pad < 8:
        raise SignatureError("modulus too short")
    return b"\x00\x01" + b"\xff" * pad + b"\x00" + _PREFIX + digest


def verify(n, e, digest, sig):
    """Raise SignatureError unless `sig` is a valid signature of `digest` under (n, e).
    `n` and `e` are ints; `sig` is exactly the modulus length in bytes."""
    k = len(sig)
    if k < 64 or not (n >> (8 * k - 8)) or n >> (8 * k):
        raise SignatureError("signature length")
    s = int.from_bytes(sig, "big")
    if s >= n:
        raise SignatureError("signature out of range")
    m = pow(s, e, n)
    if m.to_bytes(k, "big") != encoded(digest, k):
        raise SignatureError("bad signature")

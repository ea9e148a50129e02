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


E_LENGTH = 1  # signature or modulus of the wrong size (plain ints: CPython tools import this)
E_RANGE = 2  # signature value not below the modulus (s and s + n would be the same signature)
E_INVALID = 3  # the public operation does not give the expected encoded block


class SignatureError(ValueError):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def encoded(digest, k):
    """EMSA-PKCS1-v1_5 encoding of a SHA-256 digest for a k-byte modulus."""
    if len(digest) != 32:
        raise SignatureError(E_LENGTH, "digest must be 32 bytes")
    pad = k - 3 - len(_PREFIX) - 32
    if pad < 8:
        raise SignatureError(E_LENGTH, "modulus too short")
    return b"\x00\x01" + b"\xff" * pad + b"\x00" + _PREFIX + digest


def verify(n, e, digest, sig):
    """Raise SignatureError unless `sig` is a valid signature of `digest` under (n, e).
    `n` and `e` are ints; `sig` is exactly the modulus length in bytes."""
    k = len(sig)
    if k < 64 or not (n >> (8 * k - 8)) or n >> (8 * k):
        raise SignatureError(E_LENGTH, "signature length")
    s = int.from_bytes(sig, "big")
    if s >= n:
        raise SignatureError(E_RANGE, "signature out of range")
    m = pow(s, e, n)
    if m.to_bytes(k, "big") != encoded(digest, k):
        raise SignatureError(E_INVALID, "bad signature")

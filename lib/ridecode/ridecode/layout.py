"""The ride-code byte layouts (docs/ride-code.md), shared by the reader and the host tools.

Plain ints, no micropython.const: the issuing tool imports this module on CPython too.
"""

PREFIX = b"RC1:"  # text form: PREFIX + base45(binary), all QR alphanumeric characters
VERSION = 1  # binary layout version (RSA-2048 issuer signature, day-key MAC)
SIG_LEN = 256  # RSA-2048
ACCOUNT_MAX = 20  # fits credential.Credential.number
CERT_FIXED = 12  # version, key id, category, account length, valid_from, valid_to
DYN_LEN = 22  # generation time u32, counter u16, MAC 16
MAC_LEN = 16
MAX_BINARY = CERT_FIXED + ACCOUNT_MAX + SIG_LEN + DYN_LEN  # 310 <= 400
MIN_BINARY = CERT_FIXED + 1 + SIG_LEN + DYN_LEN
MAX_TEXT = len(PREFIX) + (MAX_BINARY // 2) * 3 + (MAX_BINARY % 2) * 2
DAY_S = 86400

# RC2: the certificate binds the rider's P-256 public key (and its multiple 2**128 * key, which
# halves the reader's work); the dynamic part is signed with the rider's private key.
PREFIX2 = b"RC2:"
VERSION2 = 2
KEY_LEN = 64  # P-256 point, x || y
RIDER_KEYS = 2 * KEY_LEN  # the key, then 2**128 times the key
RIDER_SIG = 64  # ECDSA r || s, s at most n/2
DYN2_LEN = 6 + RIDER_SIG  # generation time u32, counter u16, signature
MAX_BINARY2 = CERT_FIXED + ACCOUNT_MAX + RIDER_KEYS + SIG_LEN + DYN2_LEN  # 486
MIN_BINARY2 = CERT_FIXED + 1 + RIDER_KEYS + SIG_LEN + DYN2_LEN
MAX_TEXT2 = len(PREFIX2) + (MAX_BINARY2 // 2) * 3 + (MAX_BINARY2 % 2) * 2

# Domain separation: a signature or MAC made for one purpose never verifies for another.
CERT_DOMAIN = b"ridecode-cert-v1"
DYN_DOMAIN = b"ridecode-dyn-v1"
KEYSET_DOMAIN = b"ridecode-keyset-v1"
CERT2_DOMAIN = b"ridecode-cert-v2"
DYN2_DOMAIN = b"ridecode-dyn-v2"  # signed: DYN2_DOMAIN || SHA-256(certificate) || gen || counter

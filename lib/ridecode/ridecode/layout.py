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

# RC2: the certificate binds the rider's public key under a rider-key algorithm; the dynamic
# part is signed with the rider's private key.
PREFIX2 = b"RC2:"
VERSION2 = 2
ALG_RSA3 = 1  # RSA-2048, e = 3, PKCS#1 v1.5 SHA-256: the default (two modular multiplications)
ALG_P256 = 2  # ECDSA P-256 with 2**128 * key: accepted where a reader is configured to
KEY_LEN = 64  # P-256 point, x || y
RIDER_KEYS = 2 * KEY_LEN  # P-256: the key, then 2**128 times the key
RIDER_SIG = 64  # P-256: ECDSA r || s, s at most n/2
RSA_KEY = 256  # RSA-2048 modulus (e = 3 is implied by the algorithm)
RSA_SIG = 256
# per algorithm: (certified key bytes, rider signature bytes)
RIDER_ALGS = {ALG_RSA3: (RSA_KEY, RSA_SIG), ALG_P256: (RIDER_KEYS, RIDER_SIG)}
DYN2_LEN = 6 + RIDER_SIG  # P-256 dynamic part: generation time u32, counter u16, signature
DYN2_RSA_LEN = 6 + RSA_SIG  # RSA dynamic part
# the certificate: the RC1 fields, the algorithm byte, the rider key, the issuer signature
MAX_BINARY2 = CERT_FIXED + ACCOUNT_MAX + 1 + RSA_KEY + SIG_LEN + DYN2_RSA_LEN  # 807
MAX_TEXT2 = len(PREFIX2) + (MAX_BINARY2 // 2) * 3 + (MAX_BINARY2 % 2) * 2  # 1215

# Domain separation: a signature or MAC made for one purpose never verifies for another.
CERT_DOMAIN = b"ridecode-cert-v1"
DYN_DOMAIN = b"ridecode-dyn-v1"
KEYSET_DOMAIN = b"ridecode-keyset-v1"
CERT2_DOMAIN = b"ridecode-cert-v2"
DYN2_DOMAIN = b"ridecode-dyn-v2"  # signed: DYN2_DOMAIN || SHA-256(certificate) || gen || counter

"""The ride-code byte layout (docs/ride-code.md), shared by the reader and the host tools.

Plain ints, no micropython.const: the issuing tool imports this module on CPython too.
"""

PREFIX = b"RC1:"  # text form: PREFIX + base45(binary), all QR alphanumeric characters
VERSION = 1  # binary layout version (RSA-2048 issuer signature)
SIG_LEN = 256  # RSA-2048
ACCOUNT_MAX = 20  # fits credential.Credential.number
CERT_FIXED = 12  # version, key id, category, account length, valid_from, valid_to
DYN_LEN = 22  # generation time u32, counter u16, MAC 16
MAC_LEN = 16
MAX_BINARY = CERT_FIXED + ACCOUNT_MAX + SIG_LEN + DYN_LEN  # 310 <= 400
MIN_BINARY = CERT_FIXED + 1 + SIG_LEN + DYN_LEN
MAX_TEXT = len(PREFIX) + (MAX_BINARY // 2) * 3 + (MAX_BINARY % 2) * 2
DAY_S = 86400

# Domain separation: a signature or MAC made for one purpose never verifies for another.
CERT_DOMAIN = b"ridecode-cert-v1"
DYN_DOMAIN = b"ridecode-dyn-v1"
KEYSET_DOMAIN = b"ridecode-keyset-v1"

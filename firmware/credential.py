"""What a tap or a scan hands to the decision core.

Identity is the card's application number (read over APDUs) or a ride code's account, never
the UID: phones randomise it and cloners copy it. The UID is kept only for the log.
"""

from micropython import const

# How the credential was presented.
KIND_CPU = const(1)  # ISO 14443-4 transit CPU card (T-Union application)
KIND_PHONE = const(2)  # phone NFC card: same application, random UID per tap
KIND_MIFARE = const(3)  # legacy MIFARE Classic 1K: number from a sector (clonable, weaker)
KIND_CODE = const(4)  # signed QR ride code

# Blocklist namespaces: the identifier spaces entries are keyed in.
NS_CARD = const(1)  # T-Union application card number (physical cards and phones)
NS_MIFARE = const(2)  # MIFARE Classic card number
NS_ACCOUNT = const(3)  # ride-code account identifier

_NS = {KIND_CPU: NS_CARD, KIND_PHONE: NS_CARD, KIND_MIFARE: NS_MIFARE, KIND_CODE: NS_ACCOUNT}


class Credential:
    """One presentation. Readers fill a preallocated instance per tap (`clear()` then set)."""

    def __init__(self):
        self.number = bytearray(20)  # ASCII digits / account id, `number_len` bytes used
        self.serial = bytearray(8)  # CPU cards: application serial (SFI 0x15 bytes 12-19)
        self.recs = bytearray(128)  # purchase journal records to write before the verdict
        self.clear()

    def clear(self):
        self.kind = 0
        self.number_len = 0
        self.card_type = 0  # issuer card type (e.g. 0x01 normal, 0x05 student, 0x06 elderly)
        self.valid_from = 0  # YYYYMMDD, 0 = not stated
        self.valid_to = 0  # YYYYMMDD card/code expiry, 0 = not stated
        self.concession_to = 0  # YYYYMMDD end of the concession entitlement, 0 = none
        self.clash = False  # more than one card in the field
        self.weak = False  # identity not cryptographically bound (MIFARE Classic)
        self.error = 0  # read failure reason code (0: read completed)
        self.uid_len = 0
        self.issued_at = 0  # ride codes: generation time (UTC seconds)
        self.t0 = 0  # ticks_ms when the source first saw it (tap -> verdict latency)
        # set by the fare path (firmware/ticketing.py), which decides while the card is there
        self.verdict = 0  # 0: not decided yet
        self.reason = 0
        self.key = 0
        self.category = 0
        self.proof = 0xFF  # journal: 0xFF not stated, 0 unauthenticated read, 1 purchase proven
        self.nrec = 0  # 32-byte records in `recs`
        self.fare = -1  # fen charged (display), -1: none
        self.balance = 0  # fen after the purchase (display)

    def set_number(self, data, n=None):
        n = len(data) if n is None else n
        if n > len(self.number):
            raise ValueError("identifier too long")
        for i in range(n):
            self.number[i] = data[i]
        self.number_len = n

    def namespace(self):
        return _NS.get(self.kind, 0)

    def ident(self):
        """The identifier as bytes (allocates: for logs and tests, not the hot path)."""
        return bytes(self.number[: self.number_len])

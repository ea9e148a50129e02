"""Named PN532 errors. Every failure the driver reports is one of these (never a bare
IndexError from a short frame): callers and the fuzz tests rely on it."""

# PN532 status codes (UM0701 "Error code list"), for ChipError names.
NAMES = {
    0x01: "timeout", 0x02: "crc", 0x03: "parity", 0x04: "bit count", 0x05: "mifare framing",
    0x06: "bit collision", 0x07: "buffer too small", 0x09: "rf overflow",
    0x0A: "rf field late", 0x0B: "rf protocol", 0x0D: "overheating", 0x0E: "buffer overflow",
    0x10: "invalid parameter", 0x12: "dep unsupported", 0x13: "format",
    0x14: "mifare auth", 0x18: "not supported", 0x23: "uid check byte", 0x25: "dep state",
    0x26: "not allowed", 0x27: "wrong context", 0x29: "released", 0x2A: "card exchanged",
    0x2B: "card disappeared", 0x2C: "nfcid3 mismatch", 0x2D: "over-current",
    0x2E: "nad missing", 0x7F: "syntax error",
}

# Statuses that mean the card is no longer there to talk to.
GONE = (0x01, 0x29, 0x2B)


class PN532Error(OSError):
    """Base of every driver error; `code` is a PN532 status or an errno-like value."""

    def __init__(self, code, what):
        super().__init__(code, what)
        self.code = code
        self.what = what


class Timeout(PN532Error):
    """No ACK or response in time (the chip is busy, asleep or hung)."""

    def __init__(self, what="timeout"):
        super().__init__(110, what)


class FrameError(PN532Error):
    """A frame that breaks the grammar: bad LCS/DCS, length, postamble, TFI."""

    def __init__(self, what):
        super().__init__(5, what)


class CardGone(PN532Error):
    """The target stopped answering or was released (pulled out of the field)."""

    def __init__(self, code):
        super().__init__(code, NAMES.get(code, "gone"))


class ChipError(PN532Error):
    """The PN532 reported an error status (or the syntax-error frame, code 0x7F)."""

    def __init__(self, code):
        super().__init__(code, NAMES.get(code, "unknown"))


class Overflow(PN532Error):
    """The answer does not fit the caller's buffer."""

    def __init__(self):
        super().__init__(90, "answer too long")

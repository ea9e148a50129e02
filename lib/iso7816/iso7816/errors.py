"""Named SAM link errors. Every failure the driver reports is one of these, with an errno-like
code, so the caller can tell a missing SAM from a protocol fault."""


class SamError(OSError):
    """Base of every driver error; `code` is an errno value."""

    def __init__(self, code, what):
        super().__init__(code, what)
        self.code = code
        self.what = what


class NoAtr(SamError):
    """Nothing answered the reset: no SAM in the slot, unpowered or dead."""

    def __init__(self, what="no ATR"):
        super().__init__(19, what)  # ENODEV


class BadAtr(SamError):
    """An ATR that breaks ISO 7816-3 (TS, length, TCK) or asks for what this link cannot do."""

    def __init__(self, what):
        super().__init__(71, what)  # EPROTO


class Mute(SamError):
    """No character within the work waiting time: the SAM stopped answering (or was pulled)."""

    def __init__(self, what="mute"):
        super().__init__(110, what)  # ETIMEDOUT


class ProtocolError(SamError):
    """A character the T=0 or PPS rules do not allow at that point."""

    def __init__(self, what):
        super().__init__(71, what)  # EPROTO


class Collision(SamError):
    """On a single I/O line our own character came back different: someone else was sending."""

    def __init__(self):
        super().__init__(5, "echo differs: line collision")  # EIO


class Overflow(SamError):
    """The answer does not fit the response buffer."""

    def __init__(self):
        super().__init__(90, "answer too long")  # EMSGSIZE

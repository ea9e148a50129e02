"""Named purchase errors. A refusal carries the status word that refused (so the caller can
say why: 9401 no funds, 9302 a MAC, 6Dxx no purse), a malformed answer says what was wrong."""


class PurseError(OSError):
    def __init__(self, code, what, sw=0):
        super().__init__(code, what)
        self.code = code
        self.what = what
        self.sw = sw


class CardRefused(PurseError):
    """The card answered a status word other than 9000 (`sw`)."""

    def __init__(self, step, sw):
        super().__init__(13, step, sw)  # EACCES


class SamRefused(PurseError):
    """The PSAM answered a status word other than 9000 (`sw`; 9302: MAC2 wrong)."""

    def __init__(self, step, sw):
        super().__init__(13, step, sw)


class BadResponse(PurseError):
    """An answer of the wrong length or out of range: garbage, not a purse."""

    def __init__(self, step):
        super().__init__(74, step)  # EBADMSG

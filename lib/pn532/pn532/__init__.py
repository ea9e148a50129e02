"""PN532 NFC controller driver (see docs/pn532.md)."""

from .core import PN532, Target
from .errors import CardGone, ChipError, FrameError, Overflow, PN532Error, Timeout


def transport(bus):
    """The transport for a `board.nfc_bus()` tuple: ("hsu", uart) | ("i2c", i2c) |
    ("spi", spi, cs)."""
    kind = bus[0]
    if kind == "hsu":
        from .hsu import HSU

        return HSU(bus[1])
    if kind == "i2c":
        from .i2c import I2C

        return I2C(bus[1])
    if kind == "spi":
        from .spi import SPI

        return SPI(bus[1], bus[2])
    raise ValueError("unknown PN532 bus %r" % (kind,))


__all__ = ["PN532", "Target", "CardGone", "ChipError", "FrameError", "Overflow", "PN532Error",
           "Timeout", "transport"]

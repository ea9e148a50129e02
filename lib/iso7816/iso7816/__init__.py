"""ISO/IEC 7816-3 contact-card driver for a SAM on a UART (see docs/psam.md)."""

from .atr import Atr
from .errors import BadAtr, Collision, Mute, NoAtr, Overflow, ProtocolError, SamError
from .sam import Sam

__all__ = ["Atr", "BadAtr", "Collision", "Mute", "NoAtr", "Overflow", "ProtocolError", "Sam",
           "SamError"]

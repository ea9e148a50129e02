"""E-purse purchase commands, card and PSAM side (see docs/psam.md)."""

from .errors import BadResponse, CardRefused, PurseError, SamRefused
from .purchase import Purchase

__all__ = ["BadResponse", "CardRefused", "Purchase", "PurseError", "SamRefused"]

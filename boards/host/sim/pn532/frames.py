"""The frames the PN532 sends on every transport (UM0701 §6.2.1)."""

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"


def frame(payload):
    """Information frame (normal or extended) around TFI + data."""
    n = len(payload)
    dcs = (-sum(payload)) & 0xFF
    if n <= 255:
        return bytes([0, 0, 0xFF, n, (-n) & 0xFF]) + bytes(payload) + bytes([dcs, 0])
    hi, lo = n >> 8, n & 0xFF
    return (bytes([0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF]) + bytes(payload)
            + bytes([dcs, 0]))

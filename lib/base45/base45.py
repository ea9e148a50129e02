"""Base45 (RFC 9285): binary data as QR alphanumeric characters.

A QR code in alphanumeric mode stores 5.5 bits per character against 8 in byte mode, so base45
(1.5 characters per byte) makes a smaller symbol than base64 in byte mode. Decoding writes into
a caller's buffer and allocates nothing: it runs on every scan.
"""

ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BAD = 0xFF  # not a base45 character (plain int: the module also runs on CPython tools)


def _table():
    t = bytearray(b"\xff" * 256)
    for i, c in enumerate(ALPHABET):
        t[c] = i
    return bytes(t)


_VAL = _table()


class Base45Error(ValueError):
    """Text that is not valid base45 (bad character, length or value out of range)."""


def decoded_len(n):
    """Bytes that `n` base45 characters decode to (-1 if no valid text has that length)."""
    if n % 3 == 1:
        return -1
    return (n // 3) * 2 + (1 if n % 3 == 2 else 0)


def _groups_py(src, i, end, dst, val):
    """Whole 3-character groups of src[i:end] into dst from 0: the byte count, -1 for a bad
    character, -2 for a group above 0xFFFF."""
    j = 0
    while i + 3 <= end:
        a = val[src[i]]
        b = val[src[i + 1]]
        c = val[src[i + 2]]
        if a == _BAD or b == _BAD or c == _BAD:
            return -1
        v = a + b * 45 + c * 2025
        if v > 0xFFFF:
            return -2
        dst[j] = v >> 8
        dst[j + 1] = v & 0xFF
        j += 2
        i += 3
    return j


_groups = _groups_py
try:
    import micropython
except ImportError:  # CPython (the host tools): the plain decoder
    micropython = None
if micropython:
    # The same in native code on the reader: an RSA ride code is 1,215 characters, which the
    # bytecode loop above takes ~20 ms for on an ESP32 (counted), on every scan.
    @micropython.viper
    def _groups_v(src: ptr8, i: int, end: int, dst: ptr8, val: ptr8) -> int:
        j = 0
        while i + 3 <= end:
            a = val[src[i]]
            b = val[src[i + 1]]
            c = val[src[i + 2]]
            if a == 0xFF or b == 0xFF or c == 0xFF:
                return -1
            v = a + b * 45 + c * 2025
            if v > 0xFFFF:
                return -2
            dst[j] = v >> 8
            dst[j + 1] = v & 0xFF
            j += 2
            i += 3
        return j

    _groups = _groups_v


def decode_into(src, off, n, dst):
    """Decode src[off:off+n] into dst; returns the byte count. Raises Base45Error."""
    m = decoded_len(n)
    if m < 0:
        raise Base45Error("base45 length")
    if m > len(dst) or off < 0 or off + n > len(src):
        raise Base45Error("base45 too long")
    end = off + n
    j = _groups(src, off, end, dst, _VAL)
    if j < 0:
        raise Base45Error("base45 character" if j == -1 else "base45 value")
    i = off + j // 2 * 3
    if i < end:
        a = _VAL[src[i]]
        b = _VAL[src[i + 1]]
        if a == _BAD or b == _BAD:
            raise Base45Error("base45 character")
        v = a + b * 45
        if v > 0xFF:
            raise Base45Error("base45 value")
        dst[j] = v
        j += 1
    return j


def encode(data):
    """Base45 text (bytes) of `data`. For tools and tests: allocates."""
    out = bytearray()
    a = ALPHABET
    for i in range(0, len(data) - 1, 2):
        v = data[i] << 8 | data[i + 1]
        out.append(a[v % 45])
        out.append(a[v // 45 % 45])
        out.append(a[v // 2025])
    if len(data) % 2:
        v = data[-1]
        out.append(a[v % 45])
        out.append(a[v // 45])
    return bytes(out)


def decode(text):
    """Bytes of base45 `text` (str or bytes). For tools and tests: allocates."""
    if isinstance(text, str):
        text = text.encode()
    m = decoded_len(len(text))
    out = bytearray(max(m, 0))
    n = decode_into(text, 0, len(text), out)
    return bytes(out[:n])

"""PN532 frame codec on preallocated buffers (UM0701 §6.2): normal and extended information
frames, ACK, NACK and the error frame. The decoder is a byte-wise state machine so a stream
transport (HSU) can feed whatever has arrived, and it resynchronises on the next 00 FF start
code after junk or a stale half frame. Nothing here allocates."""

import micropython
from micropython import const

from .errors import FrameError

K_NONE = const(0)
K_ACK = const(1)
K_NACK = const(2)
K_FRAME = const(3)  # buf[0] = TFI, buf[1] = code, buf[2:n] = data
K_ERROR = const(4)  # the application-level error frame (TFI 7F)

_S_SYNC = const(0)
_S_LEN = const(1)
_S_LCS = const(2)
_S_XLM = const(3)
_S_XLL = const(4)
_S_XLCS = const(5)
_S_DATA = const(6)
_S_DCS = const(7)
_S_POST = const(8)

NORMAL_MAX = const(255)  # LEN counts TFI + data
EXT_MAX = const(266)  # TFI + code + 264 data bytes (libnfc's extended limit)
OVERHEAD = const(11)  # extended header + DCS + postamble


@micropython.viper
def _take(dst, d: int, src, s: int, k: int) -> int:
    """Copy src[s:s+k] to dst[d:] and return the bytes' sum: a frame's body, the loop that
    runs per byte of every command and answer (viper: a tenth of the bytecode loop's time)."""
    o = ptr8(dst)
    i = ptr8(src)
    acc = 0
    for j in range(k):
        b = i[s + j]
        o[d + j] = b
        acc += b
    return acc


def encode(out, tfi, cmd, params, n):
    """Write the frame for TFI, cmd, params[0:n] into `out`; returns its length."""
    ln = n + 2
    s = tfi + cmd
    out[0] = 0
    out[1] = 0
    out[2] = 0xFF
    if ln <= NORMAL_MAX:
        out[3] = ln
        out[4] = (-ln) & 0xFF
        i = 5
    elif ln <= EXT_MAX:
        out[3] = 0xFF
        out[4] = 0xFF
        out[5] = ln >> 8
        out[6] = ln & 0xFF
        out[7] = (-(ln >> 8) - ln) & 0xFF
        i = 8
    else:
        raise FrameError("too long")
    out[i] = tfi
    out[i + 1] = cmd
    i += 2
    s += _take(out, i, params, 0, n)
    i += n
    out[i] = (-s) & 0xFF
    out[i + 1] = 0
    return i + 2


class Decoder:
    """Feed bytes; when `kind` is set a whole frame has been taken (payload in `buf[0:n]`)."""

    def __init__(self, size=EXT_MAX):
        self.buf = bytearray(size)
        self.size = size
        self.used = 0
        self.fed = 0  # bytes taken in total: progress for stall detection
        self.reset()

    def reset(self):
        self.st = _S_SYNC
        self.prev = 1
        self.kind = K_NONE
        self.len = 0
        self.n = 0
        self.sum = 0

    def busy(self):
        """True while in the middle of a frame."""
        return self.st != _S_SYNC and self.kind == K_NONE

    def need(self):
        """Bytes still needed at least to finish the frame (0: not inside a frame)."""
        st = self.st
        if st == _S_DATA:
            return self.len - self.n + 2
        if st == _S_POST:
            return 1
        if st == _S_SYNC:
            return 0
        return (0, 2, 1, 3, 2, 1, 0, 2, 1)[st]

    def feed(self, src, off, cnt):
        """Consume src[off:off+cnt] up to the end of one frame; returns bytes consumed.
        Raises FrameError (with `used` set to the bytes consumed) on a broken frame."""
        i = off
        end = off + cnt
        st = self.st
        buf = self.buf
        while i < end:
            if st == _S_DATA:
                n = self.n
                k = self.len - n
                if k > end - i:
                    k = end - i
                self.sum = (self.sum + _take(buf, n, src, i, k)) & 0xFF
                n += k
                i += k
                self.n = n
                if n == self.len:
                    st = _S_DCS
                continue
            b = src[i]
            i += 1
            if st == _S_SYNC:
                if b == 0xFF and self.prev == 0:
                    st = _S_LEN
                self.prev = b
            elif st == _S_LEN:
                self.len = b
                st = _S_LCS
            elif st == _S_LCS:
                ln = self.len
                if ln == 0 and b == 0xFF:
                    self.kind = K_ACK
                    st = _S_POST
                elif ln == 0xFF and b == 0:
                    self.kind = K_NACK
                    st = _S_POST
                elif ln == 0xFF and b == 0xFF:
                    st = _S_XLM
                elif (ln + b) & 0xFF or ln == 0:
                    self._bad(i - off, "LCS")
                elif ln > self.size:
                    self._bad(i - off, "length")
                else:
                    self.n = 0
                    self.sum = 0
                    st = _S_DATA
            elif st == _S_XLM:
                self.len = b << 8
                st = _S_XLL
            elif st == _S_XLL:
                self.len |= b
                st = _S_XLCS
            elif st == _S_XLCS:
                ln = self.len
                if ((ln >> 8) + ln + b) & 0xFF:
                    self._bad(i - off, "LCS")
                if ln == 0 or ln > self.size:
                    self._bad(i - off, "length")
                self.n = 0
                self.sum = 0
                st = _S_DATA
            elif st == _S_DCS:
                if (self.sum + b) & 0xFF:
                    self._bad(i - off, "DCS")
                self.kind = K_ERROR if buf[0] == 0x7F else K_FRAME
                st = _S_POST
            else:  # _S_POST
                if b != 0:
                    self._bad(i - off, "postamble")
                self.st = st
                self.used = i - off
                self.fed += i - off
                return i - off
        self.st = st
        self.used = i - off
        self.fed += i - off
        return i - off

    def _bad(self, used, what):
        self.reset()
        self.used = used
        raise FrameError(what)

"""Answer-to-reset parsing (ISO/IEC 7816-3 §8): TS, T0, the TA/TB/TC/TD interface bytes of
every level, historical bytes and TCK.

`length()` says how long an ATR is from the bytes received so far, so the reader knows when the
last one has arrived without waiting for a timeout; `Atr` holds what the link needs from it.
"""

from .errors import BadAtr

MAX_ATR = 33
# Fi and Di by the 4-bit indices of TA1 (ISO/IEC 7816-3 tables 7 and 8); 0 = reserved.
FI = (372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0)
DI = (0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0)
DIRECT = 0x3B
INVERSE_SEEN_DIRECT = 0x03  # TS 3F (inverse convention) read by a direct-convention UART


def _count(y):
    return (y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1) + ((y >> 3) & 1)


def length(b, n):
    """Total length of the ATR whose first n bytes are in b, or 0 while it cannot be known yet.
    TCK is counted when any TDi names a protocol other than T=0."""
    if n < 2:
        return 0
    y = b[1] >> 4
    p = 2
    tck = 0
    while y & 8:
        p += _count(y)
        if p > n:
            return 0
        td = b[p - 1]
        if td & 0x0F:
            tck = 1
        y = td >> 4
    return p + _count(y) + (b[1] & 0x0F) + tck


class Atr:
    """What an ATR says. fi, di: indices of TA1 (default 1, 1); guard: TC1 extra guard time N
    in etu; wi: T=0 waiting integer (TC2, default 10); protocols: bit T set for each offered
    T; specific: TA2 present (no PPS; `specific_ta1` says whether TA1's rate applies)."""

    def __init__(self, b, n):
        if n < 2 or n > MAX_ATR:
            raise BadAtr("length %d" % n)
        if b[0] == INVERSE_SEEN_DIRECT:
            raise BadAtr("inverse convention (TS 3F) not supported")
        if b[0] != DIRECT:
            raise BadAtr("TS %02x" % b[0])
        if length(b, n) != n:
            raise BadAtr("length %d, interface bytes say %d" % (n, length(b, n)))
        self.raw = bytes(b[:n])
        self.fi = 1
        self.di = 1
        self.guard = 0
        self.wi = 10
        self.protocols = 0
        self.specific = False
        self.specific_ta1 = False
        y = b[1] >> 4
        p = 2
        level = 1
        proto = 0  # protocol the current level's bytes belong to (T=0 before any TD)
        first_t = -1
        tck = False
        while True:
            ta = tc = td = -1
            if y & 1:
                ta = b[p]
                p += 1
            if y & 2:
                p += 1  # TBi: programming voltage (deprecated), nothing to use
            if y & 4:
                tc = b[p]
                p += 1
            if y & 8:
                td = b[p]
                p += 1
            if level == 1:
                if ta >= 0:
                    self.fi = ta >> 4
                    self.di = ta & 0x0F
                    if not FI[self.fi] or not DI[self.di]:
                        raise BadAtr("TA1 %02x reserved value" % ta)
                if tc >= 0:
                    self.guard = tc
            elif level == 2:
                if ta >= 0:
                    self.specific = True
                    self.specific_ta1 = not ta & 0x10
                if tc >= 0 and proto == 0:
                    if tc == 0:
                        raise BadAtr("TC2 00")
                    self.wi = tc
            if td < 0:
                break
            proto = td & 0x0F
            if first_t < 0:
                first_t = proto
            self.protocols |= 1 << proto
            if proto:
                tck = True
            y = td >> 4
            level += 1
        if first_t < 0:
            self.protocols = 1  # no TD1: T=0 only
        self.hist = p
        self.hist_len = b[1] & 0x0F
        if tck:
            x = 0
            for i in range(1, n):
                x ^= b[i]
            if x:
                raise BadAtr("TCK")
        self.first = first_t if first_t >= 0 else 0

    def historical(self):
        return self.raw[self.hist:self.hist + self.hist_len]


def baud(clk_hz, fi, di):
    """Bits per second for the clock and the Fi/Di indices (1 etu = Fi / (Di x f))."""
    return clk_hz * DI[di] // FI[fi]

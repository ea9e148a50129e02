"""Viper helpers around the field code: bytes into limbs, slot comparison, signed-digit
recoding of the scalars. Words stay below 2**31 as in vm.py (32-bit targets)."""

import micropython


@micropython.viper
def load(ws: ptr16, at: int, src: ptr8, off: int):
    """32 big-endian bytes at src[off] -> 20 limbs of 13 bits at ws[at]."""
    k = 0
    while k < 20:
        bit = 13 * k
        j = bit >> 3  # byte index from the least significant end
        v = int(src[off + 31 - j])
        if j < 31:
            v |= int(src[off + 30 - j]) << 8
        if j < 30:
            v |= int(src[off + 29 - j]) << 16
        ws[at + k] = (v >> (bit & 7)) & 0x1FFF
        k += 1


@micropython.viper
def equal(ws: ptr16, a: int, b: int) -> bool:
    """Whether the 20 words at ws[a] and ws[b] are equal."""
    j = 0
    d = 0
    while j < 20:
        d |= int(ws[a + j]) ^ int(ws[b + j])
        j += 1
    return d == 0


@micropython.viper
def wnaf(out: ptr8, at: int, k: ptr8, koff: int, nbytes: int, w: int) -> int:
    """Width-w NAF of the big-endian scalar k[koff:koff+nbytes] into the bytes out[at ..
    at + 8*nbytes] (two's complement digits, odd and below 2**(w-1) in magnitude; of any w
    consecutive digits at most one is nonzero). Returns the top nonzero digit's index, or -1."""
    n = 8 * nbytes + 1
    i = 0
    while i < n:
        out[at + i] = 0
        i += 1
    full = 1 << w
    carry = 0
    top = -1
    last = koff + nbytes - 1
    i = 0
    while i < n:
        j = i >> 3
        v = 0
        if j < nbytes:
            v = int(k[last - j])
            if j + 1 < nbytes:
                v |= int(k[last - j - 1]) << 8
        v >>= i & 7
        if ((v + carry) & 1) == 0:
            carry = ((v & 1) + carry) >> 1
            i += 1
            continue
        v = (v & (full - 1)) + carry
        carry = 0
        if v >= full >> 1:
            v -= full
            carry = 1
        out[at + i] = v & 0xFF
        top = i
        i += w
    return top


@micropython.viper
def inverse(t: ptr16, out: ptr8) -> int:
    """x**-1 mod m by Bernstein-Yang divsteps, 13 at a time (variable time: the inputs are
    public). t holds five 21-limb signed numbers of 13-bit limbs: f = m (odd), g = x, d = 0,
    e = 1 and m again; the low limb of m**-1 mod 2**13 follows at t[105]. Writes d as 35
    big-endian two's complement bytes to out and returns the sign of f (the inverse is
    sign * d mod m)."""
    f = ptr16(uint(t))
    g = ptr16(uint(t) + 42)
    d = ptr16(uint(t) + 84)
    e = ptr16(uint(t) + 126)
    m = ptr16(uint(t) + 168)
    minv = int(t[105])
    delta = 1
    while True:
        z = 0
        i = 0
        while i < 21:
            z |= int(g[i])
            i += 1
        if z == 0:
            break
        # 13 divsteps on the low limbs: 2**13 * (f', g') = (u f + v g, q f + r g)
        fl = int(f[0])
        gl = int(g[0])
        u = 1
        v = 0
        q = 0
        r = 1
        i = 0
        while i < 13:
            if gl & 1:
                if delta > 0:
                    delta = 1 - delta
                    x = fl
                    fl = gl
                    gl = (gl - x) >> 1
                    x = u
                    u = q << 1
                    q -= x
                    x = v
                    v = r << 1
                    r -= x
                else:
                    delta += 1
                    gl = (gl + fl) >> 1
                    q += u
                    r += v
                    u <<= 1
                    v <<= 1
            else:
                delta += 1
                gl >>= 1
                u <<= 1
                v <<= 1
            i += 1
        # the low 13 bits of d' and e' vanish once the right multiple of m is added
        md = (0 - ((u * int(d[0]) + v * int(e[0])) & 0x1FFF) * minv) & 0x1FFF
        me = (0 - ((q * int(d[0]) + r * int(e[0])) & 0x1FFF) * minv) & 0x1FFF
        af = 0
        ag = 0
        ad = 0
        ae = 0
        i = 0
        while i < 21:
            fi = int(f[i])
            gi = int(g[i])
            di = int(d[i])
            ei = int(e[i])
            mi = int(m[i])
            if i == 20:  # the top limb is signed
                if fi >= 0x8000:
                    fi -= 0x10000
                if gi >= 0x8000:
                    gi -= 0x10000
                if di >= 0x8000:
                    di -= 0x10000
                if ei >= 0x8000:
                    ei -= 0x10000
            af += u * fi + v * gi
            ag += q * fi + r * gi
            ad += u * di + v * ei + md * mi
            ae += q * di + r * ei + me * mi
            if i > 0:
                f[i - 1] = af & 0x1FFF
                g[i - 1] = ag & 0x1FFF
                d[i - 1] = ad & 0x1FFF
                e[i - 1] = ae & 0x1FFF
            af >>= 13
            ag >>= 13
            ad >>= 13
            ae >>= 13
            i += 1
        f[20] = af & 0xFFFF
        g[20] = ag & 0xFFFF
        d[20] = ad & 0xFFFF
        e[20] = ae & 0xFFFF
    # d -> 35 bytes, big-endian two's complement
    acc = 0
    bits = 0
    i = 0
    k = 34
    while k >= 0:
        if bits < 8 and i < 21:
            x = int(d[i])
            if i == 20 and x >= 0x8000:
                x -= 0x10000
            acc |= x << bits
            bits += 13
            i += 1
        out[k] = acc & 0xFF
        acc >>= 8
        bits -= 8
        k -= 1
    if int(f[20]) >= 0x8000:
        return -1
    return 1


@micropython.viper
def less(ws: ptr16, a: int, b: int) -> bool:
    """Whether the 20-limb number at ws[a] is below the one at ws[b]."""
    j = 19
    while j > 0 and ws[a + j] == ws[b + j]:
        j -= 1
    return int(ws[a + j]) < int(ws[b + j])

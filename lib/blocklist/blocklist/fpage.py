"""One fingerprint page: the entries of the whole list whose digest picks this page, as sorted
fingerprints with their category, Elias-Fano coded (quotient in unary, remainder in binary).

A page costs ~(r + 2 + 3) bits per entry for a false-hit rate of about 2^-r, against ~1.5 x
log2(1/eps) for a page-blocked Bloom filter per category, and one read answers every category
(the false-positive budget is not split between categories). Shared by the host tools
(CPython) and the reader's lookup (MicroPython, allocation-free).

Layout (bits LSB first within bytes):
  byte 0-1  n, entries in the page      byte 2  q, quotient bits      byte 3  r, remainder bits
  bit 32..        unary quotients: entry i (sorted by fingerprint) sets bit quotient_i + i,
                  n + 2^q bits
  then            n remainders of r bits, then n category indexes of CAT_BITS bits
A probe (quotient b, remainder x) matches entry i when quotient_i == b and remainder_i == x.
"""

from blocklist.fmt import CAT_BITS, E_FORMAT, MAX_Q, MAX_R, PAGE, PAGE_USED, ListError

# zero bits per byte value (select on the unary part, one byte at a time)
ZEROS = bytes(8 - bin(i).count("1") for i in range(256))
HEAD_BITS = 32


def field(page, pos, w):
    """w (<= MAX_R) bits at bit offset pos. Reads stay within 30 bits: small ints on the
    32-bit port, so no allocation."""
    j = pos >> 3
    s = pos & 7
    v = (page[j] | page[j + 1] << 8 | page[j + 2] << 16) >> s
    if w > 24 - s:
        v |= page[j + 3] << (24 - s)
    return v & ((1 << w) - 1)


def size_bits(n, q, r):
    """Bits a page with n entries at (q, r) fills, header included."""
    return HEAD_BITS + n + (1 << q) + n * (r + CAT_BITS)


def match(page, quo, rem):
    """Bitmask of the category indexes listed under this fingerprint in the page (0: none).
    quo, rem: khash.quotient(d), khash.remainder(d). A page whose fields do not fit raises
    ListError(E_FORMAT) instead of reading past its end."""
    n = page[0] | page[1] << 8
    if not n:
        return 0
    q = page[2]
    r = page[3]
    if q > MAX_Q or r > MAX_R or size_bits(n, q, r) > PAGE_USED:
        raise ListError(E_FORMAT, "corrupt fingerprint page")
    b = quo & ((1 << q) - 1)
    rem &= (1 << r) - 1
    p = HEAD_BITS  # bit just after the b-th zero of the unary part: entries of bucket b
    if b:
        z = b
        j = 4
        while True:
            c = ZEROS[page[j]]
            if c >= z:
                break
            z -= c
            j += 1
            if j >= PAGE:
                raise ListError(E_FORMAT, "corrupt fingerprint page")
        v = page[j]
        t = 0
        while True:
            if not v >> t & 1:
                z -= 1
                if not z:
                    break
            t += 1
        p = j * 8 + t + 1
    i = p - HEAD_BITS - b
    rbase = HEAD_BITS + n + (1 << q)
    cbase = rbase + n * r
    mask = 0
    while i < n and page[p >> 3] >> (p & 7) & 1:
        if field(page, rbase + i * r, r) == rem:
            mask |= 1 << field(page, cbase + i * CAT_BITS, CAT_BITS)
        p += 1
        i += 1
    return mask

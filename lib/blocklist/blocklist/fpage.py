"""One fingerprint page: the entries of the whole list whose digest picks this page, one
sub-list per category group (categories sharing a false-positive budget), each the sorted
fingerprints of its entries with their category, Elias-Fano coded (quotient in unary,
remainder in binary).

A sub-list costs ~(r + 2 + category bits) per entry for a false-hit rate of about 2^-r, and
one read answers every group: a strict group (lost/stolen, 1e-7) keeps long fingerprints, a
lenient one (a pass-set of millions, 1e-3) short ones, side by side. Shared by the host tools
(CPython) and the reader's lookup (MicroPython, allocation-free).

Layout (bits LSB first within bytes), G = number of groups (header):
  per group g, bytes 4g..4g+3: n (u16) entries, q quotient bits, r remainder bits
  bit 32G ..      the sub-lists in group order, each starting on a byte:
                  unary quotients: entry i (sorted by fingerprint) sets bit quotient_i + i,
                  n + 2^q bits; then n remainders of r bits, then n category indexes of the
                  group's category bits (0 when the group has one category)
A probe (quotient b, remainder x) matches entry i when quotient_i == b and remainder_i == x.
"""

from blocklist.fmt import E_FORMAT, GROUP_HEAD, MAX_Q, MAX_R, PAGE_USED, ListError

# zero bits per byte value (select on the unary part, one byte at a time)
ZEROS = bytes(8 - bin(i).count("1") for i in range(256))


def field(page, pos, w):
    """w (<= MAX_R) bits at bit offset pos. Reads stay within 30 bits: small ints on the
    32-bit port, so no allocation."""
    j = pos >> 3
    s = pos & 7
    v = (page[j] | page[j + 1] << 8 | page[j + 2] << 16) >> s
    if w > 24 - s:
        v |= page[j + 3] << (24 - s)
    return v & ((1 << w) - 1)


def size_bits(n, q, r, cb):
    """Bits a sub-list of n entries at (q, r) with cb-bit categories fills, rounded up to a
    whole byte so the next one starts on a byte."""
    if not n:
        return 0
    return (n + (1 << q) + n * (r + cb) + 7) & ~7


def _bad():
    raise ListError(E_FORMAT, "corrupt fingerprint page")


def match(page, cbits, g, quo, rem):
    """Bitmask of the category indexes (within group g) listed under this fingerprint in the
    page (0: none). cbits: category bits per group (fmt.Header.cbits); quo, rem:
    khash.quotient(d), khash.remainder(d). A page whose fields do not fit raises
    ListError(E_FORMAT) instead of reading past its end."""
    pos = len(cbits) * GROUP_HEAD
    at = n = q = r = 0
    for k in range(len(cbits)):
        h = k << 2
        kn = page[h] | page[h + 1] << 8
        kq = page[h + 2]
        kr = page[h + 3]
        if kq > MAX_Q or kr > MAX_R:
            _bad()
        if k == g:
            at = pos
            n = kn
            q = kq
            r = kr
        pos += size_bits(kn, kq, kr, cbits[k])
    if pos > PAGE_USED:
        _bad()
    if not n:
        return 0
    cb = cbits[g]
    b = quo & ((1 << q) - 1)
    rem &= (1 << r) - 1
    end = at + n + (1 << q)  # the unary part is [at, end)
    p = at  # bit just after the b-th zero of the unary part: entries of bucket b
    if b:
        z = b
        j = at >> 3
        while True:
            c = ZEROS[page[j]]
            if c >= z:
                break
            z -= c
            j += 1
            if j << 3 >= end:
                _bad()
        v = page[j]
        t = 0
        while True:
            if not v >> t & 1:
                z -= 1
                if not z:
                    break
            t += 1
        p = j * 8 + t + 1
    i = p - at - b
    rbase = end
    cbase = rbase + n * r
    mask = 0
    while i < n and p < end and page[p >> 3] >> (p & 7) & 1:
        if field(page, rbase + i * r, r) == rem:
            mask |= 1 << field(page, cbase + i * cb, cb)
        p += 1
        i += 1
    return mask

"""Blocklist image format, shared by the host builder (CPython) and the reader (MicroPython).

A full image is: a header (page 0), its exact records (the builder's resolutions of member
fingerprint collisions, padded to whole pages), the fingerprint pages; a delta has the same
layout, its changes as exact records and/or fingerprint pages (a compact delta). Then the
SHA-256 of everything before it and an RSA-2048 PKCS#1 v1.5 signature of that digest. All
integers little-endian. Layout details: docs/blocklist.md.

A segmented image (the one-image store of a 32 MiB board, segstore.py) signs only its index
(header, exact records, the SHA-256 of each segment of its fingerprint pages) and carries the
pages after the signature: each segment is checked and put in place on its own.

Each category states its own false-positive budget (the harm of a false hit); categories with
the same budget form a group, and every fingerprint page holds one sub-list per group, so a
lookup still reads one page whatever the number of categories and groups.
"""

import struct

try:
    from micropython import const
except ImportError:  # CPython (host tools)
    def const(x):
        return x

MAGIC = b"TBL1"
FORMAT = const(3)
KIND_FULL = const(1)
KIND_DELTA = const(2)
KIND_SEG = const(3)  # a full image cut into segments, each checked against the signed index

# Category actions (what the decision core does with a hit).
PASS = const(1)
DENY = const(2)
MANUAL = const(3)
ACTIONS = {"pass": PASS, "deny": DENY, "manual": MANUAL}
FLAG_HEALTH = const(1)
# a health category kept as a pass-set: its members have health information, a credential
# outside it has none (the decision core sends it to the manual check)
FLAG_PASS_SET = const(2)

PAGE = const(512)  # one fingerprint page = the one flash read of a lookup, all categories
PAGE_USED = const(4072)  # bits a page may fill: 3 bytes stay free for 24-bit field reads
MAX_Q = const(16)  # quotient bits come from digest bytes 12-13
MAX_R = const(23)  # remainder bits from bytes 14-16; 23 + 7 keeps reads in 30-bit small ints
MAX_GROUPS = const(4)  # sub-lists per page (one per distinct false-positive budget)
GROUP_HEAD = const(32)  # bits of a sub-list's header in the page: n u16, q u8, r u8
KEY_LEN = const(16)
KEY_ID_LEN = const(8)
SIG_LEN = const(256)  # RSA-2048
DIGEST_LEN = const(32)
TRAILER = const(288)  # digest + signature
MAX_CATS = const(8)

# magic, format, kind, ncat, seq, base_seq, issued, max_age_s, signed_len, key, key_id, nrec,
# npages (full: fingerprint pages, from offset PAGE)
HEADER = "<4sHBBIIIII16s8sII4x"
HEADER_LEN = const(64)
# id, action, stale_action, flags, entry count, name, group, false-positive budget as 1 in N
CAT = "<BBBBI28sB3xI4x"
CAT_LEN = const(48)
REC_LEN = const(16)  # exact record: 8-byte keyed hash, category id, op, 6 reserved
MAX_EXACT = const(4096)  # exact records in a full image (the builder needs a handful)
OP_ADD = const(1)
OP_REMOVE = const(2)
# segmented image: after the largest category table, segment bytes (whole 4 KiB sectors) and
# the number of segments; their digests follow the exact records, in whole pages
SEG = "<II"
SEG_AT = const(448)
MAX_SEGS = const(200)  # the one-image store's map record holds a slot number per segment


class ListError(ValueError):
    """A list image or delta was refused; `code` says why, the message says it in words."""

    def __init__(self, code, reason):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "blocklist error %d: %s" % (self.code, self.reason)


E_TRUNCATED = const(1)
E_OVERSIZE = const(2)
E_FORMAT = const(3)
E_DIGEST = const(4)
E_SIGNATURE = const(5)
E_KEY = const(6)
E_ROLLBACK = const(7)
E_BASE = const(8)
E_STATE = const(9)
E_IDENT = const(10)


def pack_header(kind, ncat, seq, base_seq, issued, max_age_s, signed_len, key, key_id, nrec,
                npages=0):
    b = bytearray(HEADER_LEN)
    struct.pack_into(HEADER, b, 0, MAGIC, FORMAT, kind, ncat, seq, base_seq, issued,
                     max_age_s, signed_len, key, key_id, nrec, npages)
    return b


def pack_cat(cid, action, stale_action, flags, count, name, group=0, fp_den=1):
    return struct.pack(CAT, cid, action, stale_action, flags, count,
                       name.encode() if isinstance(name, str) else name, group, fp_den)


def cat_bits(n):
    """Bits of a category index in a group of n categories (0 for one)."""
    b = 0
    while (1 << b) < n:
        b += 1
    return b


def rec_pages(nrec):
    """Whole pages the exact records of a full image take after the header."""
    return (nrec * REC_LEN + PAGE - 1) // PAGE


class Header:
    """Parsed, range-checked header. Raises ListError(E_FORMAT) on anything inconsistent."""

    def __init__(self, buf, total=None):
        if len(buf) < HEADER_LEN:
            raise ListError(E_TRUNCATED, "shorter than a header")
        (magic, fmtv, self.kind, self.ncat, self.seq, self.base_seq, self.issued,
         self.max_age_s, self.signed_len, self.key, self.key_id, self.nrec,
         self.npages) = struct.unpack_from(HEADER, buf, 0)
        if magic != MAGIC:
            raise ListError(E_FORMAT, "not a blocklist image (bad magic)")
        if fmtv != FORMAT:
            raise ListError(E_FORMAT, "unsupported format version %d" % fmtv)
        self.cats = []
        if self.kind in (KIND_FULL, KIND_SEG):
            if not 1 <= self.ncat <= MAX_CATS:
                raise ListError(E_FORMAT, "category count %d" % self.ncat)
            if self.nrec > MAX_EXACT:
                raise ListError(E_FORMAT, "%d exact records" % self.nrec)
            self.pages_at = PAGE * (1 + rec_pages(self.nrec))
            end = self.pages_at + self.npages * PAGE
            if self.kind == KIND_SEG:
                self._segments(buf)
                end = self.digests_at + PAGE * ((self.nseg * DIGEST_LEN + PAGE - 1) // PAGE)
                self.pages_at = end + TRAILER  # the pages follow the signature
                self.length = self.pages_at + self.npages * PAGE
            else:
                self.length = end + TRAILER
            if self.npages < 1 or end != self.signed_len:
                raise ListError(E_FORMAT, "page count %d does not match the length"
                                % self.npages)
            if len(buf) < HEADER_LEN + self.ncat * CAT_LEN:
                raise ListError(E_TRUNCATED, "category table cut short")
            seen = []
            sizes = [0] * MAX_GROUPS
            for i in range(self.ncat):
                c = struct.unpack_from(CAT, buf, HEADER_LEN + i * CAT_LEN)
                cid, act, stale, flags, count, name, group, den = c
                # groups in header order (strictest budget first): 0, 0, 1, 2, 2, ...
                last = self.cats[-1][6] if self.cats else 0
                if cid == 0 or cid in seen or act not in (PASS, DENY, MANUAL) or \
                        stale not in (PASS, DENY, MANUAL) or not last <= group <= last + 1 \
                        or group >= MAX_GROUPS or (i == 0 and group) or den < 1:
                    raise ListError(E_FORMAT, "bad category entry %d" % i)
                seen.append(cid)
                sizes[group] += 1
                self.cats.append((cid, act, stale, flags, count,
                                  bytes(name).rstrip(b"\0").decode(), group, den))
            self.ngroups = self.cats[-1][6] + 1
            # per group: category index bits in the page (the reader's fpage.match argument)
            self.cbits = bytes(cat_bits(sizes[g]) for g in range(self.ngroups))
        elif self.kind == KIND_DELTA:
            # the same layout as a full image: records from PAGE, then fingerprint pages
            # whose sub-lists carry category index * 2 + op (0 add, 1 remove)
            self.pages_at = PAGE * (1 + rec_pages(self.nrec))
            if self.pages_at + self.npages * PAGE != self.signed_len:
                raise ListError(E_FORMAT, "delta record or page count does not match its "
                                "length")
            self.length = self.signed_len + TRAILER
        else:
            raise ListError(E_FORMAT, "unknown image kind %d" % self.kind)
        if total is not None and self.length != total:
            raise ListError(E_FORMAT, "length field %d does not match %d bytes"
                            % (self.length, total))

    def _segments(self, buf):
        """A segmented image's segment size and count; its digests start where a full
        image's pages would."""
        if len(buf) < SEG_AT + 8:
            raise ListError(E_TRUNCATED, "segment table cut short")
        self.seg_bytes, self.nseg = struct.unpack_from(SEG, buf, SEG_AT)
        if self.seg_bytes < 4096 or self.seg_bytes % 4096 or not 0 < self.nseg <= MAX_SEGS \
                or self.nseg != (self.npages * PAGE + self.seg_bytes - 1) // self.seg_bytes:
            raise ListError(E_FORMAT, "bad segment table")
        self.digests_at = self.pages_at

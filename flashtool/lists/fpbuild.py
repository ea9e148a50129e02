"""The fingerprint-page builder behind `blocklist build`, vectorised with NumPy so a
16-million-entry list builds in well under a minute on two cores: keyed digests (two
processes), page sizing per category group, page encoding, and the exactness pass that finds
every member answered in a wrong category (a fingerprint collision between members, within a
group or across groups) and resolves it with an exact record.

The reader's decoder (lib/blocklist/blocklist/fpage.py) is plain MicroPython; this module
writes what it reads, and the exactness pass decodes the suspect members with that same
decoder, so what is checked is what the reader does.
"""

import hashlib
import math
from multiprocessing import get_context

import numpy as np

from flashtool import use_lib

use_lib("blocklist")

from blocklist import fmt, fpage  # noqa: E402

MAX_L = fmt.MAX_Q + fmt.MAX_R  # longest fingerprint a sub-list can keep (39 bits)
PAGE_BITS = fmt.PAGE * 8
U = np.uint64
ONE = U(1)


def _u64(a):
    return np.asarray(a).astype(np.uint64, copy=False)

_JOB = None  # (key, entries) the hashing workers read (set before forking)


# --- keyed digests ------------------------------------------------------------------------------
def _hash_range(bounds):
    lo, hi = bounds
    key, ents = _JOB
    sha = hashlib.sha256
    pre = {}  # key || namespace || length, per (namespace, length)
    out = []
    for i in range(lo, hi):
        e = ents[i]
        ident = e[1]
        p = pre.get((e[0], len(ident)))
        if p is None:
            ns = e[0]
            if not 1 <= ns <= 255 or not 1 <= len(ident) <= 32:
                raise ValueError("bad entry: namespace %r, identifier %r" % (ns, ident))
            p = pre[(ns, len(ident))] = key + bytes((ns, len(ident)))
        cid = e[2]
        if not 0 <= cid <= 255:
            raise ValueError("entry in unknown category %r" % (cid,))
        out.append(sha(p + ident).digest()[:17])
        out.append(_BYTE[cid])
    return b"".join(out)


_BYTE = [bytes((i,)) for i in range(256)]


def digests(entries, key, procs=2, progress=None):
    """(N, 18) uint8: the first 17 bytes of khash.digest() of every entry (exact fingerprint,
    page, quotient, remainder) and its category id, hashed in `procs` processes."""
    global _JOB
    n = len(entries)
    _JOB = (bytes(key), entries)
    step = 250_000
    jobs = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
    parts = []
    try:
        if procs > 1 and n > step:
            with get_context("fork").Pool(procs) as pool:
                for part in pool.imap(_hash_range, jobs):
                    parts.append(part)
                    if progress:
                        progress("hash", min(n, len(parts) * step), n)
        else:
            for job in jobs:
                parts.append(_hash_range(job))
                if progress:
                    progress("hash", job[1], n)
    finally:
        _JOB = None
    return np.frombuffer(b"".join(parts), np.uint8).reshape(n, 18)


def fields(d):
    """fp8 (big-endian u64, sorts like the bytes), page value (30 bits, before the modulo),
    quotient (16 bits), remainder (24 bits): khash's fields, vectorised."""
    fp8 = np.ascontiguousarray(d[:, :8]).view(">u8").ravel().astype(np.uint64)
    w = np.ascontiguousarray(d[:, 8:16]).view("<u8").ravel()
    v = (w & U(0x3FFFFFFF)).astype(np.uint32)
    quo = ((w >> U(32)) & U(0xFFFF)).astype(np.uint32)
    rem = ((w >> U(48)) | (d[:, 16].astype(np.uint64) << U(16))).astype(np.uint32)
    return fp8, v, quo, rem


# --- sub-list sizing ----------------------------------------------------------------------------
class Planner:
    """Per page: (q, r) for each group's sub-list. The strict groups (all but the last) get the
    shortest fingerprint that keeps the page within their budget; the last (most lenient)
    group gets the longest that fits the rest; room still left lengthens the strict ones. A
    crowded page costs the lenient group bits first and the strict ones only when even that
    cannot fit; the page count is chosen so that each group's mean over the pages (the rate
    a random non-member sees) meets its budget."""

    def __init__(self, eps, cbits):
        self.eps = list(eps)
        self.cbits = list(cbits)
        self.room = fmt.PAGE_USED - len(self.eps) * fmt.GROUP_HEAD
        self._sub = {}
        self._rows = {}

    def sub(self, n, length, cb):
        """(bits, q) of the smallest sub-list of n entries with length-bit fingerprints."""
        k = (n, length, cb)
        got = self._sub.get(k)
        if got is None:
            got = (0, 0)
            if n:
                got = min((fpage.size_bits(n, q, length - q, cb), q)
                          for q in range(max(0, length - fmt.MAX_R),
                                         min(fmt.MAX_Q, length) + 1))
            self._sub[k] = got
        return got

    def row(self, loads):
        """Fingerprint lengths per group for one page's loads, or None if it cannot fit."""
        loads = tuple(int(x) for x in loads)
        got = self._rows.get(loads, 0)
        if got != 0:
            return got
        last = len(loads) - 1
        lens = [0] * len(loads)
        for g in range(last):
            if loads[g]:
                lens[g] = min(MAX_L, math.ceil(math.log2(loads[g] / self.eps[g])))

        def strict():
            return sum(self.sub(loads[g], lens[g], self.cbits[g])[0] for g in range(last))

        used = strict()
        floor = self.sub(loads[last], 0, self.cbits[last])[0]
        while used + floor > self.room:  # a crowded page: the strict groups give bits too
            g = max(range(last), key=lambda k: lens[k])
            if not lens[g]:
                break
            lens[g] -= 1
            used = strict()
        got = None
        if used + floor <= self.room:
            n = loads[last]
            best = 0
            for length in range(MAX_L if n else 0, -1, -1):
                if used + self.sub(n, length, self.cbits[last])[0] <= self.room:
                    best = length
                    break
            else:
                best = -1
            if best >= 0:
                lens[last] = best
                used += self.sub(n, best, self.cbits[last])[0]
                for g in range(last):  # room left: longer fingerprints for the strict groups
                    while loads[g] and lens[g] < MAX_L:
                        extra = self.sub(loads[g], lens[g] + 1, self.cbits[g])[0] - \
                            self.sub(loads[g], lens[g], self.cbits[g])[0]
                        if used + extra > self.room:
                            break
                        used += extra
                        lens[g] += 1
                got = tuple(lens)
        self._rows[loads] = got
        return got

    def plan(self, loads):
        """loads (P, G) -> (q, r) arrays (P, G), or None if a page cannot fit."""
        uniq, inv = np.unique(loads, axis=0, return_inverse=True)
        qs = []
        rs = []
        for row in uniq:
            lens = self.row(row)
            if lens is None:
                return None
            qrow = [self.sub(int(n), x, cb)[1] for n, x, cb in zip(row, lens, self.cbits)]
            qs.append(qrow)
            rs.append([x - qq for x, qq in zip(lens, qrow)])
        inv = inv.ravel()
        return np.array(qs, np.int64)[inv], np.array(rs, np.int64)[inv]

    @staticmethod
    def rates(loads, q, r):
        """Per group: mean over pages of n / 2^(q + r), the design false-hit rate."""
        return (loads / np.exp2(q + r)).mean(axis=0)


def groups_of(budgets):
    """Category budgets in header order (non-decreasing) -> group index per category."""
    out = []
    for i, b in enumerate(budgets):
        out.append(0 if i == 0 else out[-1] + (b != budgets[i - 1]))
    return out


def size_pages(v_e, g_e, planner, eps, est, progress=None, fixed=None):
    """The smallest page count (within 0.25 %) whose plan fits every page and meets every
    group's budget: grow from the estimate in 3 % steps, then bisect. fixed: the page count
    the list must keep (a compaction: the reader mixes its segments with the old image's)."""
    ngroups = len(eps)
    vg = [v_e[g_e == g] for g in range(ngroups)]  # page values per group, split once

    def trial(npages):
        loads = np.stack([np.bincount(x % np.uint32(npages), minlength=npages)
                          for x in vg], axis=1)
        plan = planner.plan(loads)
        if progress:
            progress("size", npages, 0)
        if plan is None:
            return None
        rates = planner.rates(loads, *plan)
        if any(rates[g] > eps[g] for g in range(ngroups) if len(vg[g])):
            return None
        return loads, plan[0], plan[1], rates

    if fixed is not None:
        got = trial(fixed)
        if got is None:
            raise ValueError("the list no longer fits its %d pages within its budgets: build "
                             "it with more pages (readers install that one plain)" % fixed)
        return fixed, got
    lo = 0
    hi = max(1, est)
    got = trial(hi)
    while got is None:
        lo = hi
        hi = hi + hi // 33 + 1
        got = trial(hi)
    while hi - lo > max(1, hi // 400):
        mid = (lo + hi) // 2
        t = trial(mid)
        if t is None:
            lo = mid
        else:
            hi, got = mid, t
    return hi, got


def fingerprints(pg, quo, rem, q, r):
    """The fingerprint (quotient << r | remainder, q + r <= 39 bits) of each probe under the
    plan of its page and group (pg = page * groups + group)."""
    qm = ((ONE << q.astype(np.uint64)) - ONE).ravel()[pg]
    re_ = r.astype(np.uint64).ravel()[pg]
    return ((quo.astype(np.uint64) & qm) << re_) | \
        (rem.astype(np.uint64) & ((ONE << re_) - ONE))


def encode(npages, page, g, quo, rem, lcat, q, r, cbits):
    """Entries (page, group, quotient, remainder, category index within the group) and the
    plan (q, r per page and group) -> (the pages as bytes, the kept entries' sorted keys:
    (page * groups + group) << 44 | fingerprint << 3 | category). Entries equal in page,
    group, fingerprint and category are stored once."""
    ngroups = len(cbits)
    if npages * ngroups >= 1 << 20:
        raise ValueError("%d pages: more than the sort key holds" % npages)
    pg = page.astype(np.int64) * ngroups + g
    key = np.sort((pg.astype(np.uint64) << U(44)) |
                  (fingerprints(pg, quo, rem, q, r) << U(3)) | lcat.astype(np.uint64))
    del pg
    keep = np.ones(len(key), bool)
    keep[1:] = key[1:] != key[:-1]
    key = key[keep]
    del keep
    pg = (key >> U(44)).astype(np.int64)
    gs = pg % ngroups
    n = np.bincount(pg, minlength=npages * ngroups).reshape(npages, ngroups)
    qq = q.astype(np.uint64)
    rr = r.astype(np.uint64)
    nn = n.astype(np.uint64)
    cb = np.array(cbits, np.uint64)
    sizes = np.where(n > 0, (nn + (ONE << qq) + nn * (rr + cb[None, :]) + U(7)) & ~U(7), U(0))
    start = U(ngroups * fmt.GROUP_HEAD) + np.cumsum(sizes, axis=1, dtype=np.uint64) - sizes
    first = np.flatnonzero(np.concatenate(([True], pg[1:] != pg[:-1])))
    rank = (np.arange(len(pg)) - np.repeat(first, np.diff(np.append(first, len(pg))))) \
        .astype(np.uint64)
    qe = qq.ravel()[pg]
    re_ = rr.ravel()[pg]
    ne = nn.ravel()[pg]
    cbe = cb[gs]
    fpr = (key >> U(3)) & U((1 << 41) - 1)
    base = (pg // ngroups).astype(np.uint64) * U(PAGE_BITS) + start.ravel()[pg]
    del pg, gs
    words = np.zeros(npages * (PAGE_BITS // 64) + 1, np.uint64)
    _put(words, base + (fpr >> re_) + rank, ONE, ONE)  # unary: bit quotient_i + i
    rbase = base + ne + (ONE << qe)
    del base
    _put(words, rbase + rank * re_, fpr & ((ONE << re_) - ONE), re_)
    _put(words, rbase + ne * re_ + rank * cbe, key & U(7), cbe)
    out = words[:-1].astype("<u8").view(np.uint8).reshape(npages, fmt.PAGE)
    for k in range(ngroups):
        out[:, 4 * k] = n[:, k] & 0xFF
        out[:, 4 * k + 1] = n[:, k] >> 8
        out[:, 4 * k + 2] = np.where(n[:, k] > 0, q[:, k], 0)
        out[:, 4 * k + 3] = np.where(n[:, k] > 0, r[:, k], 0)
    return out.tobytes(), key


def one_page(rows, cbits, planner=None):
    """A single page from rows (group, quotient, remainder, category index in the group),
    planned like the builder plans a page: the encoder tests feed the decoder with this."""
    ngroups = len(cbits)
    planner = planner or Planner([1e-7] * ngroups, cbits)
    arr = np.array(rows, np.int64).reshape(-1, 4)
    loads = np.bincount(arr[:, 0], minlength=ngroups).reshape(1, ngroups)
    q, r = planner.plan(loads)
    zero = np.zeros(len(arr), np.int64)
    return encode(1, zero, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], q, r, cbits)[0], \
        (q[0], r[0])


def _put(words, pos, val, width):
    """OR val (width <= 23 bits) into the bit stream at bit offsets pos (fields never
    overlap); a field may straddle two 64-bit words."""
    pos = _u64(pos)
    val = np.broadcast_to(_u64(val), pos.shape)
    width = np.broadcast_to(_u64(width), pos.shape)
    live = width > 0
    pos, val, width = pos[live], val[live], width[live]
    w = (pos >> np.uint64(6)).astype(np.int64)
    sh = pos & np.uint64(63)
    np.bitwise_or.at(words, w, val << sh)
    spill = sh + width > np.uint64(64)
    if spill.any():
        np.bitwise_or.at(words, w[spill] + 1, val[spill] >> (np.uint64(64) - sh[spill]))


POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int64)


class Layout:
    """Categories in header order [(id, budget)] -> groups, category bits, budgets."""

    def __init__(self, cats):
        self.ids = [c[0] for c in cats]
        budgets = [c[1] for c in cats]
        self.gidx = groups_of(budgets)
        self.ngroups = self.gidx[-1] + 1
        if self.ngroups > fmt.MAX_GROUPS:
            raise ValueError("%d distinct budgets: at most %d groups"
                             % (self.ngroups, fmt.MAX_GROUPS))
        self.gfirst = [self.gidx.index(g) for g in range(self.ngroups)]
        self.cbits = [fmt.cat_bits(self.gidx.count(g)) for g in range(self.ngroups)]
        self.eps = [budgets[self.gfirst[g]] for g in range(self.ngroups)]
        self.lut = np.full(256, -1, np.int64)
        self.lut[self.ids] = np.arange(len(self.ids))


def members_of(entries, key, lay, procs=2, progress=None):
    """The members of a list: their fields (fp8, page value, quotient, remainder), category
    mask, the 64-bit fingerprints two identifiers share, and the (member, category) pairs."""
    d = digests(entries, key, procs, progress)
    ci = lay.lut[d[:, 17]]
    if (ci < 0).any():
        raise ValueError("entry in unknown category")
    fp8, v, quo, rem = fields(d)
    del d
    if (np.diff(np.sort(fp8)) == 0).any():
        fp8, v, quo, rem, mask, clash8, pm, pc = merge(fp8, v, quo, rem, ci)
    else:  # every row a distinct identifier (the usual case): members are the rows
        mask, clash8, pm, pc = (1 << ci).astype(np.uint8), set(), None, ci
    return {"fp8": fp8, "v": v, "quo": quo, "rem": rem, "mask": mask, "clash8": clash8,
            "pm": pm, "pc": pc}


def pages_for(v_e, quo_e, rem_e, g_e, lcat, eps, cbits, progress=None, npages=None,
              room=0.0):
    """Entries -> fingerprint pages sized for the budgets eps (on npages pages if given, else
    the fewest plus `room`, a fraction): (pages bytes, sorted keys, npages, page per entry, q,
    r, design rate per group, the fewest pages)."""
    planner = Planner(eps, cbits)
    need = sum(np.count_nonzero(g_e == g) * (math.log2(1 / eps[g]) + 2 + cbits[g])
               for g in range(len(eps)))
    est = math.ceil(need / planner.room) if len(v_e) else 1
    npages, (loads, q, r, rates) = size_pages(v_e, g_e, planner, eps, est, progress, npages)
    fewest = npages
    if room:
        npages, (loads, q, r, rates) = size_pages(v_e, g_e, planner, eps, est, progress,
                                                  math.ceil(fewest * (1 + room)))
    page = (v_e % np.uint32(npages)).astype(np.int64)
    if progress:
        progress("encode", 0, npages)
    pages, keys = encode(npages, page, g_e, quo_e, rem_e, lcat, q, r, cbits)
    if progress:
        progress("encode", npages, npages)
    return pages, keys, npages, page, q, r, rates, fewest


def build(entries, cats, key, procs=2, progress=None, npages=None, room=0.0, ghosts=()):
    """entries: list of (ns, ident bytes, category id); cats: [(category id, budget)] in header
    order (budgets non-decreasing: strictest group first); npages: the page count to keep (a
    compaction), else the smallest that meets the budgets and `room` (a fraction) more for
    later growth; ghosts: identifiers (ns, ident) in no category that must not be answered
    listed either (a compaction's removed ones: the delta it replaces answered them exactly).
    Returns a dict: pages (bytes), records (the exact records, bytes), npages, counts {cid:
    members}, and figures."""
    lay = Layout(cats)
    ids, gidx = lay.ids, lay.gidx
    m = members_of(entries, key, lay, procs, progress)
    mask_m, pc = m["mask"], m["pc"]
    sel = (lambda a: a) if m["pm"] is None else (lambda a: a[m["pm"]])
    v_e, quo_e, rem_e = sel(m["v"]), sel(m["quo"]), sel(m["rem"])
    g_e = np.array(gidx, np.int64)[pc]
    counts = {ids[i]: int(((mask_m >> i) & 1).sum()) for i in range(len(ids))}
    lcat = pc - np.array(lay.gfirst, np.int64)[g_e]
    pages, keys, npages, page, q, r, rates, fewest = pages_for(
        v_e, quo_e, rem_e, g_e, lcat, lay.eps, lay.cbits, progress, npages, room)
    recs, suspects = exactness(pages, keys, npages, q, r, lay, haunted(m, ghosts, key, procs),
                               progress)
    ncat = len(ids)
    per_cat = np.bincount(page * ncat + pc, minlength=npages * ncat).reshape(npages, ncat)
    cat_fp = {ids[i]: float((per_cat[:, i] / np.exp2(q + r)[:, gidx[i]]).mean())
              for i in range(ncat)}
    return {"pages": pages, "records": recs, "npages": npages, "fewest_pages": fewest,
            "counts": counts,
            "group_fp": [float(x) for x in rates], "cat_fp": cat_fp, "groups": gidx,
            "cbits": bytes(lay.cbits), "members": len(mask_m), "suspects": suspects,
            "exceptions": len(recs) // fmt.REC_LEN}


def haunted(m, ghosts, key, procs):
    """The members m and, for the exactness pass only, the ghosts as members of no category:
    wherever the pages list one, it gets removal records (refused, as for members, if one
    shares its 64-bit fingerprint with another identifier)."""
    if not ghosts:
        return m
    fp8, v, quo, rem = fields(digests([(ns, ident, 0) for ns, ident in ghosts], key, procs))
    shared = fp8[np.isin(fp8, m["fp8"])]
    return dict(m, fp8=np.concatenate((m["fp8"], fp8)), v=np.concatenate((m["v"], v)),
                quo=np.concatenate((m["quo"], quo)), rem=np.concatenate((m["rem"], rem)),
                mask=np.concatenate((m["mask"], np.zeros(len(fp8), m["mask"].dtype))),
                clash8=m["clash8"] | set(shared.tolist()))


def primary_group(mask_m, lay):
    """Per member: the group of its first own category (header order)."""
    low = np.full(len(mask_m), len(lay.ids), np.int64)
    for i in range(len(lay.ids) - 1, -1, -1):
        low[(mask_m >> i) & 1 == 1] = i
    return low, np.array(lay.gidx + [lay.ngroups], np.int64)[low]


def key_hits(keys, g, ngroups, sel, page_m, quo_m, rem_m, q, r):
    """Bool per member in sel: its probe key (page, group g, fingerprint under the page's plan)
    is among the stored entries' keys."""
    eg = keys[(keys >> U(44)) % U(ngroups) == U(g)] >> U(3)  # sorted sub-list keys
    out = np.zeros(len(sel), bool)
    if len(sel) and len(eg):
        pg = page_m[sel] * ngroups + g
        km = (pg.astype(np.uint64) << U(41)) | fingerprints(pg, quo_m[sel], rem_m[sel], q, r)
        ks = np.sort(km)  # sorted needles: the search walks the keys in order
        i = np.minimum(np.searchsorted(eg, ks), len(eg) - 1)
        found = np.unique(ks[eg[i] == ks])
        if len(found):
            j = np.minimum(np.searchsorted(found, km), len(found) - 1)
            out = found[j] == km
    return out


def delta_suspects(keys, npages, q, r, lay, m):
    """Members a compact delta's pages may answer wrong: any delta entry under their
    fingerprint in a group up to their first own category's (decided exactly afterwards)."""
    _, gprim = primary_group(m["mask"], lay)
    page_m = (m["v"] % U(npages)).astype(np.int64)
    susp = np.zeros(len(page_m), bool)
    for g in range(lay.ngroups):
        sel = np.flatnonzero(gprim >= g)
        susp[sel] |= key_hits(keys, g, lay.ngroups, sel, page_m, m["quo"], m["rem"], q, r)
    return np.flatnonzero(susp)


def merge(fp8, v, quo, rem, ci):
    """Rows of one identifier (equal 17-byte digest prefix) merged into one member with a
    category mask. Returns the members' fields and mask, the 64-bit fingerprints two
    different identifiers share, and the (member, category) pairs as (pm, pc)."""
    n = len(fp8)
    order = np.argsort(fp8)
    f = fp8[order]
    o0, o1 = order[:-1], order[1:]
    same8 = f[1:] == f[:-1]
    same = same8 & (v[o1] == v[o0]) & (quo[o1] == quo[o0]) & (rem[o1] == rem[o0])
    clash8 = set(f[1:][same8 & ~same].tolist())
    new = np.ones(n, bool)
    new[1:] = ~same
    starts = np.flatnonzero(new)
    member = np.empty(n, np.int64)
    member[order] = np.cumsum(new) - 1
    mask_m = np.bitwise_or.reduceat((1 << ci).astype(np.uint8)[order], starts)
    rep = order[starts]
    pair = np.sort(member * 8 + ci)
    pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))]
    return fp8[rep], v[rep], quo[rep], rem[rep], mask_m, clash8, pair // 8, pair % 8


def exactness(pages, keys, npages, q, r, lay, m, progress=None):
    """Every member whose page lists another entry under its fingerprint, in a category it
    is not in (a collision within its group or in another group's sub-list), decoded with
    the reader's own fpage.match; each false category before its own gets an exact record
    (fp8, category, REMOVE), which the reader checks before the page. (A later false category
    shows only once a delta removes its own: build_delta resolves those.) Returns (records
    bytes, suspects)."""
    cbits, gidx, gfirst, ids = lay.cbits, lay.gidx, lay.gfirst, lay.ids
    mask_m, fp8_m, v_m, quo_m, rem_m = m["mask"], m["fp8"], m["v"], m["quo"], m["rem"]
    ngroups = lay.ngroups
    page_m = (v_m % U(npages)).astype(np.int64)
    susp = np.zeros(len(page_m), bool)
    low, gprim = primary_group(mask_m, lay)
    for g in range(ngroups):
        gm = sum(1 << i for i, x in enumerate(gidx) if x == g)
        own = POPCOUNT[mask_m & gm]
        # members without an entry in this group that reach it: is their probe key taken?
        sel = np.flatnonzero((gprim >= g) & (own == 0))
        susp[sel] |= key_hits(keys, g, ngroups, sel, page_m, quo_m, rem_m, q, r)
        # members with an entry here, in a group of several categories: is the key shared
        # with another category?
        if POPCOUNT[gm] > 1:
            eg = keys[(keys >> U(44)) % U(ngroups) == U(g)] >> U(3)
            crowded = np.unique(eg[1:][eg[1:] == eg[:-1]])
            if len(crowded):
                sel = np.flatnonzero((gprim >= g) & (own > 0))
                pg = page_m[sel] * ngroups + g
                km = (pg.astype(np.uint64) << U(41)) | fingerprints(pg, quo_m[sel],
                                                                     rem_m[sel], q, r)
                j = np.minimum(np.searchsorted(crowded, km), len(crowded) - 1)
                susp[sel[crowded[j] == km]] = True
        if progress:
            progress("exact", g + 1, ngroups)
    cb = bytes(cbits)
    recs = []
    for x in np.flatnonzero(susp).tolist():
        p = page_m[x] * fmt.PAGE
        pb = pages[p: p + fmt.PAGE]
        got = 0
        for g in range(len(cbits)):
            got |= fpage.match(pb, cb, g, int(quo_m[x]), int(rem_m[x])) << gfirst[g]
        false = got & ~int(mask_m[x]) & ((1 << int(low[x])) - 1)
        if not false:
            continue
        f8 = int(fp8_m[x])
        if f8 in m["clash8"]:
            raise ValueError("a resolved member shares its 64-bit fingerprint with another "
                             "identifier: rebuild with another hash key")
        for i in range(len(ids)):
            if false >> i & 1:
                recs.append(f8.to_bytes(8, "big") + bytes((ids[i], fmt.OP_REMOVE)) + bytes(6))
    recs.sort()
    if len(recs) > fmt.MAX_EXACT:
        raise ValueError("%d member collisions to resolve (at most %d): the budgets are too "
                         "weak for this many entries" % (len(recs), fmt.MAX_EXACT))
    return b"".join(recs), int(susp.sum())

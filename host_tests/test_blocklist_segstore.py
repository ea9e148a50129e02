"""The one-image list store (lib/blocklist segstore.SegStore) on MicroPython, compiled, on a
scaled-down region (4 KiB segments instead of 256 KiB): a first list installed plain, deltas,
rolling installs with every lookup checked between segment switches, continuing an install
after a reboot (from byte 0, and through progress()/resume()), plain installs when the
geometry changes or another image was pending, refusals that keep the old list (or the
mixed state) deciding, and an allocation-free lookup over mixed segments.

The rule the checks hold the reader to (docs/blocklist.md, "One-image store"): an identifier
is answered by the list its page's segment belongs to, the new image once that segment is
switched, else the old image with its delta. Helpers are shared with the power-cut campaign
(test_blocklist_segcuts.py).
"""

import pytest
import test_blocklist_store as bls
from test_blocklist_store import Lab, entries

from flashtool.lists import blocklist as cb

keys = bls.keys
lab = bls.lab
SEG = 4096  # one sector: 8 pages a segment
PAGES = 48  # every image here keeps this geometry unless a test changes it
REGION = 80 * 4096  # records, 3 index areas, 2 delta areas of 4 sectors, 22 slots
BOARD = """
flash = nor.NorFlash(%%(img)r, %d)
partition.attach(flash, (('bl_seg', 1, 0x40, 0, %d),))
from blocklist.store import open_store
"""
HELPERS = """
def expect(store, old, new, seg, newseq):
    # the rule: the new list once the identifier's segment is switched, else the old one;
    # no list while a plain install runs
    if store.pending_seq == newseq:
        if not store.active():
            return 0
        return new if seg < store.done else old
    return new if store.seq == newseq else old

def check4(store, path, newseq):
    # lookups of a case file (ns identifier old new segment): the mismatches
    bad = []
    for line in open(path):
        ns, ident, old, new, seg = line.split()
        ident = ident.encode()
        want = expect(store, int(old), int(new), int(seg), newseq)
        got = store.lookup(int(ns), ident, len(ident))
        if got != want:
            bad.append((ident, want, got))
    return bad

def stream(store, path, chunk=1024, upto=None, every=None):
    # install path; every(inst) after each chunk; stop (no finish) after `upto` bytes
    f = open(path, 'rb')
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    inst = store.begin(size)
    buf = bytearray(chunk)
    pos = 0
    while upto is None or pos < upto:
        k = f.readinto(buf)
        if not k:
            break
        inst.write(memoryview(buf)[:k])
        pos += k
        if every:
            every(inst)
    f.close()
    return inst if upto is not None else inst.finish()
"""


class SegLab(Lab):
    """Lab on a scaled-down one-image region (the flash is the region); images are segmented
    and keep one page count unless a test asks for another."""

    def __init__(self, tmp_path, mp, keys, segment=SEG, pages=PAGES, region=REGION):
        super().__init__(tmp_path, mp, keys, board=BOARD % (region, region), size=region)
        self.segment = segment
        self.pages = pages

    def full(self, name, ents, seq, priv=None, **kw):
        kw.setdefault("segment", self.segment)
        kw.setdefault("npages", self.pages)
        return super().full(name, ents, seq, priv, **kw)

    def compact(self, name, base, members, changes, seq):
        data = cb.compact(base.read_bytes(), members, changes, self.priv, seq,
                          issued=bls.ISSUED + 1200)
        p = self.dir / name
        p.write_bytes(data)
        return p

    def cases4(self, old, new, idents):
        """A case file for check4(): per identifier what the old list (image, delta) and the
        new one answer, and the segment of its page."""
        oimg, odelta = (p.read_bytes() if p else None for p in old)
        nimg, ndelta = (p.read_bytes() if p else None for p in new)
        h = cb.fmt.Header(nimg, len(nimg))
        rows = []
        for ns, ident in idents:
            a = cb.lookup(oimg, ns, ident, odelta) if oimg else 0
            b = cb.lookup(nimg, ns, ident, ndelta)
            page = cb.khash.page_of(cb.khash.digest(h.key, ns, ident), h.npages)
            seg = page * cb.fmt.PAGE // h.seg_bytes if h.kind == cb.fmt.KIND_SEG else 0
            rows.append("%d %s %d %d %d\n" % (ns, ident.decode(), a, b, seg))
        p = self.dir / ("cases%d.txt" % len(list(self.dir.glob("cases*"))))
        p.write_text("".join(rows))
        return str(p)

    def run(self, code, **kw):
        return super().run(HELPERS + code, **kw)


@pytest.fixture
def seglab(tmp_path, mp, keys):
    return SegLab(tmp_path, mp, keys)


def world(lab, n=6000):
    """A list (l1, n entries), its delta d2 (cumulative changes: removals, moves, new
    entries; built with the member list, so it answers every member exactly) and d3 (more of
    the same), the compaction c4 of l1 + d3, and the idents to check: members old and new,
    changed ones, non-members."""
    v1 = entries(b"A", n)
    l1 = lab.full("l1.img", v1, 1)
    ch2 = [(cb.fmt.OP_REMOVE, *v1[i]) for i in range(0, 60, 3)] + \
        [(cb.fmt.OP_ADD, *e) for e in entries(b"N", 40)] + \
        [(cb.fmt.OP_REMOVE, *v1[1]), (cb.fmt.OP_ADD, v1[1][0], v1[1][1], 3)]
    d2 = lab.delta("d2.img", l1, ch2, 2, compact=True, members=v1)
    ch3 = ch2 + [(cb.fmt.OP_ADD, *e) for e in entries(b"M", 30, cats=(1, 4))]
    d3 = lab.delta("d3.img", l1, ch3, 3, compact=True, members=v1)
    c4 = lab.compact("c4.img", l1, v1, ch3, 4)
    idents = [e[:2] for e in v1[:n // 10]] + [(c[1], c[2]) for c in ch3] + \
        [e[:2] for e in entries(b"Z", n // 20)]
    return v1, l1, d2, d3, c4, idents


def test_plain_first_install_then_lookups_and_reboot(seglab):
    v1 = entries(b"A", 6000)
    l1 = seglab.full("l1.img", v1, 1, max_age_s=7200)
    cases = seglab.cases4((None, None), (l1, None), [e[:2] for e in v1[::7]] +
                          [e[:2] for e in entries(b"Z", 500)])
    out = seglab.run("""
store = open_store(Partition, PUB)
print(type(store).__name__, store.active(), store.seq)
seen = []
def every(inst):
    seen.append((store.pending_seq, store.done, store.active(), len(check4(store, %r, 1))))
print(stream(store, %r, every=every))
print(sorted(set(seen)))
print('meta', store.seq, store.pending_seq, store.max_age_s, check4(store, %r, 1))
store = open_store(Partition, PUB)
print('reboot', store.active(), store.seq, check4(store, %r, 1))
""" % (cases, str(l1), cases, cases))
    lines = out.splitlines()
    assert lines[0] == "SegStore False 0"
    assert lines[1] == "1"
    # no list while the first one streams in, and no lookup answered anything meanwhile
    seen = eval(lines[2])
    assert {s[:3] for s in seen} >= {(0, 0, False), (1, 0, False), (1, 5, False),
                                     (0, 0, True)}, seen
    assert all(s[3] == 0 for s in seen), seen
    assert lines[3] == "meta 1 0 7200 []"
    assert lines[4] == "reboot True 1 []"


def test_rolling_compaction_never_changes_an_answer(seglab):
    v1, l1, d2, d3, c4, idents = world(seglab)
    cases = seglab.cases4((l1, d3), (c4, None), idents)
    out = seglab.run("""
store = open_store(Partition, PUB)
attempt(store, %(l1)r)
print(attempt(store, %(d2)r), attempt(store, %(d3)r), store.seq, store.base_seq)
seen = []
def every(inst):
    seen.append((store.pending_seq, store.done, store.active(), store.seq,
                 len(check4(store, %(cases)r, 4))))
n0 = flash.programs
print(stream(store, %(c4)r, every=every), flash.programs - n0)
print(sorted(set(seen)))
print('after', store.seq, store.base_seq, store.pending_seq, store._dn + store._dnp,
      check4(store, %(cases)r, 4))
store = open_store(Partition, PUB)
print('reboot', store.seq, check4(store, %(cases)r, 4))
""" % {"l1": str(l1), "d2": str(d2), "d3": str(d3), "c4": str(c4), "cases": cases})
    lines = out.splitlines()
    assert lines[0] == "ok 2 ok 3 3 1"
    assert lines[1].startswith("4 ")
    seen = eval(lines[2])
    # the roll went through every segment with the old list deciding (seq 3, its delta)
    assert {(s[0], s[1]) for s in seen if s[0]} == {(4, j) for j in range(6)}, seen
    assert all(s[2] for s in seen), seen  # the list never stopped
    assert all(s[4] == 0 for s in seen), seen
    assert lines[3] == "after 4 4 0 0 []"  # the compaction took the delta in
    assert lines[4] == "reboot 4 []"
    # and the compaction answers as list + delta did, for every identifier checked
    old = [x.split()[2] for x in open(cases)]
    new = [x.split()[3] for x in open(cases)]
    assert old == new


def test_rolling_other_image_answers_old_or_new_per_segment(seglab):
    """An image that is not the compaction (same key and geometry, other members): during the
    roll an identifier whose page is in a switched segment gets the new answer, any other the
    old list's (with its delta); some identifiers do change, both ways."""
    v1, l1, d2, d3, c4, idents = world(seglab)
    v5 = entries(b"A", 3000) + entries(b"B", 3000)
    l5 = seglab.full("l5.img", v5, 5)
    idents += [e[:2] for e in v5[3000:3600]]
    cases = seglab.cases4((l1, d2), (l5, None), idents)
    rows = [x.split() for x in open(cases)]
    assert sum(r[2] != r[3] for r in rows) > 500  # the two lists disagree on many
    out = seglab.run("""
store = open_store(Partition, PUB)
attempt(store, %r)
attempt(store, %r)
seen = []
def every(inst):
    seen.append((store.done, len(check4(store, %r, 5))))
print(stream(store, %r, every=every), sorted(set(seen)))
""" % (str(l1), str(d2), cases, str(l5)))
    seq, seen = out.split(" ", 1)
    assert seq == "5"
    seen = eval(seen)
    assert {s[0] for s in seen} == set(range(6)) and all(s[1] == 0 for s in seen), seen


def test_lookup_over_mixed_segments_is_allocation_free(seglab):
    v1, l1, d2, d3, c4, idents = world(seglab)
    h = cb.fmt.Header(c4.read_bytes(), c4.stat().st_size)
    by_seg = {}
    for ns, ident, cid in v1[60:400]:  # members no delta changes
        page = cb.khash.page_of(cb.khash.digest(h.key, ns, ident), h.npages)
        by_seg.setdefault(page * 512 // SEG, (ns, ident, cid))
    early, late = by_seg[0], by_seg[max(by_seg)]
    out = seglab.run("""
store = open_store(Partition, PUB)
attempt(store, %r)
attempt(store, %r)
inst = stream(store, %r, upto=%d)
a = bytearray(%r)
b = bytearray(%r)
def probe():
    micropython.heap_lock()
    try:
        x = store.lookup(%d, a, len(a))
        y = store.lookup(%d, b, len(b))
    finally:
        micropython.heap_unlock()
    return x, y
x, y = probe()
print(store.pending_seq, store.done, x, y)
""" % (str(l1), str(d3), str(c4), h.pages_at + 2 * SEG, early[1], late[1], early[0],
       late[0]))
    assert out.split() == ["4", "2", str(early[2]), str(late[2])]


def test_install_continues_after_reboot(seglab):
    """Cut short after three segments: after the reboot the mixed list answers by the rule;
    the same image streamed from byte 0 skips what is in place; through progress() and
    resume() it starts at the first segment not in place and the prefix read back from flash
    is the file's."""
    v1, l1, d2, d3, c4, idents = world(seglab)
    cases = seglab.cases4((l1, d3), (c4, None), idents)
    h = cb.fmt.Header(c4.read_bytes(), c4.stat().st_size)
    out = seglab.run("""
import hashlib
data = bytearray(%(size)d)  # the artefact, allocated before the heap fragments
open(%(c4)r, 'rb').readinto(data)
def fresh():
    flash.copy_from(%(snap)r)
    return open_store(Partition, PUB)

store = open_store(Partition, PUB)
attempt(store, %(l1)r)
attempt(store, %(d3)r)
inst = stream(store, %(c4)r, upto=%(upto)d)
rec = inst.progress()
flash.copy_to(%(snap)r)
store = fresh()
print('reboot', store.seq, store.pending_seq, store.done, rec, check4(store, %(cases)r, 4))
n0 = flash.programs
print('again', stream(store, %(c4)r), flash.programs - n0, check4(store, %(cases)r, 4))
store = fresh()
inst = store.begin(len(data))
h = hashlib.sha256()
for _ in inst.resume(*rec, feed=lambda b, k: h.update(bytes(b[:k]))):
    pass
same = h.digest() == hashlib.sha256(memoryview(data)[:rec[3]]).digest()
n0 = flash.programs
inst.write(memoryview(data)[rec[3]:])
print('resumed', same, inst.finish(), flash.programs - n0, check4(store, %(cases)r, 4))
store = fresh()
try:
    for _ in store.begin(len(data)).resume(rec[0], rec[1], 99, rec[3]):
        pass
except fmt.ListError as e:
    print('void', e.code)
""" % {"snap": str(seglab.dir / "snap.bin"), "l1": str(l1), "d3": str(d3), "c4": str(c4),
       "upto": h.pages_at + 3 * SEG + 100, "cases": cases, "size": c4.stat().st_size})
    lines = out.splitlines()
    # l1's index is in area 0, c4's in area 1; three segments in place
    assert lines[0] == "reboot 3 4 3 (1, 73728, 4, %d) []" % (h.pages_at + 3 * SEG)
    again = lines[1].split()
    resumed = lines[2].split()
    assert again[:2] == ["again", "4"] and again[3] == "[]"
    assert resumed[:3] == ["resumed", "True", "4"] and resumed[4] == "[]"
    # only the three segments not in place were written again, no index: resumed, one
    # program each and a map record each; from byte 0 in 1 KiB chunks, at most 5 pieces each
    assert int(resumed[3]) == 3 + 3
    assert int(again[2]) <= 3 * 5 + 3


def test_plain_install_when_the_geometry_changes_or_another_is_pending(seglab):
    v1, l1, d2, d3, c4, idents = world(seglab)
    other_key = seglab.full("k5.img", v1, 5, key=bytes(range(1, 17)))
    more_pages = seglab.full("p6.img", v1, 6, npages=PAGES + 8)
    out = seglab.run("""
store = open_store(Partition, PUB)
attempt(store, %(l1)r)
attempt(store, %(d2)r)
seen = []
def every(inst):
    seen.append((store.pending_seq, store.active()))
print(stream(store, %(k5)r, every=every), sorted(set(seen)))
seen = []
print(stream(store, %(p6)r, every=every), sorted(set(seen)))
inst = stream(store, %(c7)r, upto=3000)  # the compaction of list 6: a roll, left pending
print(store.pending_seq, store.done, store.active())
seen = []
print(stream(store, %(l8)r, every=every), sorted(set(seen)),
      store.lookup(1, b'A000000000000000', 16))
""" % {"l1": str(l1), "d2": str(d2), "k5": str(other_key), "p6": str(more_pages),
       "c7": str(seglab.compact("c7.img", more_pages, v1, [], 7)),
       "l8": str(seglab.full("l8.img", v1, 8))})
    lines = out.splitlines()
    assert lines[0] == "5 [(0, True), (5, False)]"  # other key: plain, the list stops
    assert lines[1] == "6 [(0, True), (6, False)]"  # more pages: plain
    assert lines[2] == "7 0 True"
    # a new image while 7's roll is pending: the mixed list decides while the index streams,
    # then a plain install
    assert lines[3] == "8 [(0, True), (7, True), (8, False)] %d" % v1[0][2]


def test_refusals_keep_the_list_deciding(seglab):
    v1, l1, d2, d3, c4, idents = world(seglab)
    cases = seglab.cases4((l1, d2), (c4, None), idents)
    data = bytearray(c4.read_bytes())
    h = cb.fmt.Header(data, len(data))
    bad_seg = bytearray(data)
    bad_seg[h.pages_at + 2 * SEG + 77] ^= 1  # segment 2 altered after signing
    bad_sig = bytearray(data)
    bad_sig[h.signed_len + 40] ^= 1
    full_kind = seglab.raw("f.img", cb.build_image(v1, seglab.priv, 9, key=seglab.key))
    huge = seglab.full("h.img", v1, 9, npages=8 * 30)  # 30 segments: more than 21 slots
    out = seglab.run("""
store = open_store(Partition, PUB)
attempt(store, %(l1)r)
attempt(store, %(d2)r)
for name, p in (('sig', %(sig)r), ('kind', %(full)r), ('huge', %(huge)r), ('old', %(l1)r)):
    print(name, attempt(store, p), store.seq, store.pending_seq, check4(store, %(cases)r, 4))
print('seg', attempt(store, %(seg)r), store.pending_seq, store.done, store.active(),
      check4(store, %(cases)r, 4))
print('delta', attempt(store, %(d3)r))
store = open_store(Partition, PUB)
print('reboot', store.pending_seq, store.done, check4(store, %(cases)r, 4))
print('good', attempt(store, %(c4)r), check4(store, %(cases)r, 4))
""" % {"l1": str(l1), "d2": str(d2), "d3": str(d3), "c4": str(c4), "cases": cases,
       "sig": str(seglab.raw("sig.img", bad_sig)), "seg": str(seglab.raw("seg.img", bad_seg)),
       "full": str(full_kind), "huge": str(huge)})
    got = {line.split()[0]: line for line in out.splitlines()}
    assert got["sig"].startswith("sig refused 5 ") and got["sig"].endswith(" 2 0 []")
    assert got["kind"].startswith("kind refused 3 this store takes segmented images")
    assert got["huge"].startswith("huge refused 2 ")
    assert got["old"].startswith("old refused 7 ")
    # a segment that is not the signed one: refused at that segment, the two before it are
    # in place and the list answers by the rule
    assert got["seg"].startswith("seg refused 4 segment 2 does not match")
    assert got["seg"].endswith(" 4 2 True []")
    assert got["delta"].startswith("delta refused 9 install of list 4 pending")
    assert got["reboot"] == "reboot 4 2 []"
    assert got["good"] == "good ok 4 []"


def test_two_slot_store_refuses_a_segmented_image(lab):
    v1 = entries(b"A", 300)
    p = lab.full("s.img", v1, 1, segment=SEG)
    out = lab.run("store = ListStore(Partition, PUB)\nprint(attempt(store, %r))" % str(p))
    assert out.strip().startswith("refused 3 this store takes full images and deltas")

"""The reader's list store on MicroPython (compiled .mpy, 192k heap): streamed install, lookup,
rejects that keep the old list, deltas, anti-rollback, freshness, allocation-free lookup.

Helpers here are shared with test_blocklist_powercut.py.
"""

import pytest

from flashtool.lists import blocklist as cb
from flashtool.release.keys import load_private

ISSUED = 1_790_000_000
# the production board's partition table (two list slots) over a 16 MiB image
AB_BOARD = """
flash = nor.NorFlash(%(img)r, 16777216)
partition.attach(flash, hosttables.PARTITIONS)
"""
PRELUDE = """
import micropython, nor, partition, hosttables
from partition import Partition
from blocklist.store import ListStore
from blocklist import fmt
%(board)s
PUB = (%(n)d, %(e)d)

def install(store, path, chunk=4096, total=None):
    f = open(path, 'rb')
    buf = bytearray(chunk)
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    inst = store.begin(size if total is None else total)
    while True:
        k = f.readinto(buf)
        if not k:
            break
        inst.write(memoryview(buf)[:k])
    f.close()
    return inst.finish()

def attempt(store, path, **kw):
    try:
        return 'ok %%d' %% install(store, path, **kw)
    except fmt.ListError as e:
        return 'refused %%d %%s' %% (e.code, e.reason)

def check(store, path):
    # lookups of a case file (lines: ns identifier expected-category): the mismatches
    bad = []
    for line in open(path):
        ns, ident, want = line.split()
        ns = int(ns)
        ident = ident.encode()
        got = store.lookup(ns, ident, len(ident))
        if got != int(want):
            bad.append((ns, ident, want, got))
    return bad
"""


def entries(tag, n, cats=(1, 2, 3, 4, 5)):
    """n entries over the namespaces and categories, identifiers unique to `tag`."""
    return [(1 + i % 3, b"%s%015d" % (tag, i), cats[i % len(cats)]) for i in range(n)]


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    cb.keygen(d, "good")
    cb.keygen(d, "other")
    return load_private(d / "good.pem"), load_private(d / "other.pem")


class Lab:
    """A flash image, the list key and helpers to build artefacts and run MicroPython code."""

    def __init__(self, tmp_path, mp, keys, board=AB_BOARD, size=16 << 20):
        self.dir = tmp_path
        self.mp = mp
        self.priv, self.other = keys
        self.img = tmp_path / "flash.img"
        with open(self.img, "wb") as f:
            f.write(b"\xff" * size)
        n, e = cb.pubkey(self.priv)
        self.prelude = PRELUDE % {"board": board % {"img": str(self.img)}, "n": n, "e": e}
        self.key = bytes(range(16))

    def full(self, name, ents, seq, priv=None, **kw):
        kw.setdefault("issued", ISSUED)
        kw.setdefault("key", self.key)
        data = cb.build_image(ents, priv or self.priv, seq, **kw)
        p = self.dir / name
        p.write_bytes(data)
        return p

    def delta(self, name, base, changes, seq, **kw):
        kw.setdefault("issued", ISSUED + 600)
        data = cb.build_delta(base.read_bytes(), changes, self.priv, seq, **kw)
        p = self.dir / name
        p.write_bytes(data)
        return p

    def cases(self, ents, absent=()):
        """A case file: every entry in its category, every `absent` one not listed."""
        p = self.dir / ("cases%d.txt" % len(list(self.dir.glob("cases*"))))
        rows = [(ns, i, c) for ns, i, c in ents] + [(ns, i, 0) for ns, i, _ in absent]
        p.write_text("".join("%d %s %d\n" % (ns, i.decode(), c) for ns, i, c in rows))
        return str(p)

    def raw(self, name, data):
        p = self.dir / name
        p.write_bytes(data)
        return p

    def run(self, code, **kw):
        return self.mp(self.prelude + code, **kw)


@pytest.fixture
def lab(tmp_path, mp, keys):
    return Lab(tmp_path, mp, keys)


def test_install_lookup_and_reboot(lab):
    ents = entries(b"A", 400)
    absent = entries(b"Z", 3000)
    p = lab.full("l5.img", ents, 5, max_age_s=7200)
    out = lab.run("""
store = ListStore(Partition, PUB)
print('before', store.active(), store.seq, store.lookup(1, b'A000000000000000', 16))
print(attempt(store, %r, chunk=1000))
print('bad', check(store, %r))
print('meta', store.seq, store.issued, store.max_age_s, sorted(store.categories.items()))
store = ListStore(Partition, PUB)  # reboot: the switch record brings the list back
print('after', store.active(), store.seq, check(store, %r))
""" % (str(p), lab.cases(ents, absent), lab.cases(ents[:50])))
    lines = out.splitlines()
    assert lines[0] == "before False 0 0"
    assert lines[1] == "ok 5"
    assert lines[2] == "bad []"
    assert lines[3] == ("meta 5 %d 7200 [(1, ('lost_stolen', 2, 2, 0)), (2, ('unpaid', 2, 2, 0)), "
                        "(3, ('not_verified', 3, 3, 0)), (4, ('health_hold', 2, 3, 1)), "
                        "(5, ('health_unknown', 3, 3, 1))]" % ISSUED)
    assert lines[4] == "after True 5 []"


def test_namespaces_keep_same_digits_apart(lab):
    p = lab.full("ns.img", [(1, b"123456789", 1)], 1)
    out = lab.run("""
store = ListStore(Partition, PUB)
print(attempt(store, %r))
print([store.lookup(ns, b'123456789', 9) for ns in (1, 2, 3)])
""" % str(p))
    assert out.splitlines()[1] == "[1, 0, 0]"


def test_lookup_is_allocation_free(lab):
    ents = entries(b"A", 200)
    p = lab.full("l1.img", ents, 1)
    d = lab.delta("d2.img", p, [(2, 1, ents[0][1], ents[0][2]), (1, 2, b"NEW1", 3)], 2)
    out = lab.run("""
store = ListStore(Partition, PUB)
print(attempt(store, %r))
member = bytearray(%r)
other = bytearray(b'Z000000000000001')
def probe():
    micropython.heap_lock()
    try:
        a = store.lookup(%d, member, len(member))
        b = store.lookup(2, other, len(other))
    finally:
        micropython.heap_unlock()
    return a, b
print(probe())
print(attempt(store, %r))
print(probe(), store.lookup(2, b'NEW1', 4))
""" % (str(p), ents[3][1], ents[3][0], str(d)))
    lines = out.splitlines()
    assert lines[:2] == ["ok 1", "(%d, 0)" % ents[3][2]]
    assert lines[2:] == ["ok 2", "(%d, 0) 3" % ents[3][2]]


def test_bad_images_are_refused_and_old_list_stays(lab):
    ents = entries(b"A", 300)
    good = lab.full("l5.img", ents, 5)
    data = good.read_bytes()
    newer = lab.full("l6.img", entries(b"B", 300), 6).read_bytes()
    flipped_sig = bytearray(newer)
    flipped_sig[-1] ^= 1
    flipped_page = bytearray(newer)
    flipped_page[600] ^= 0x10  # a filter page bit: body digest no longer matches
    forged_digest = bytearray(flipped_page)
    import hashlib

    h = cb.fmt.Header(newer, len(newer))
    forged_digest[h.signed_len: h.signed_len + 32] = hashlib.sha256(
        forged_digest[: h.signed_len]).digest()  # digest fixed up, signature then fails
    bad_magic = bytearray(newer)
    bad_magic[0:4] = b"XXXX"
    bad_format = bytearray(newer)
    bad_format[4] = 9
    other_key = lab.full("o6.img", entries(b"B", 300), 6, priv=lab.other)
    # a foreign key's signature carrying our key id: caught by the signature check
    spoofed = bytearray(other_key.read_bytes())
    spoofed[44:52] = data[44:52]
    h2 = cb.fmt.Header(spoofed, len(spoofed))
    spoofed[h2.signed_len: h2.signed_len + 32] = hashlib.sha256(spoofed[: h2.signed_len]).digest()
    older = lab.full("l4.img", entries(b"B", 300), 4)
    same = lab.full("l5b.img", entries(b"B", 300), 5)
    trials = {
        "truncated": (lab.raw("t.img", newer[:-1000]), "total=%d" % len(newer)),
        "short": (lab.raw("s.img", newer[:100]), ""),
        "sig": (lab.raw("sig.img", flipped_sig), ""),
        "page": (lab.raw("page.img", flipped_page), ""),
        "forged": (lab.raw("forged.img", forged_digest), ""),
        "magic": (lab.raw("magic.img", bad_magic), ""),
        "format": (lab.raw("format.img", bad_format), ""),
        "other_key": (other_key, ""),
        "spoofed": (lab.raw("spoofed.img", spoofed), ""),
        "older": (older, ""),
        "same": (same, ""),
        "oversize": (lab.raw("big.img", newer), "total=%d" % (5 << 20)),
        "overrun": (lab.raw("over.img", newer + b"\0" * 10), "total=%d" % len(newer)),
    }
    code = ["store = ListStore(Partition, PUB)", "print('base', attempt(store, %r))" % str(good)]
    for name, (path, kw) in trials.items():
        code.append("print(%r, attempt(store, %r, %s))" % (name, str(path), kw))
        code.append("assert store.seq == 5 and not check(store, %r)" % lab.cases(ents[:40]))
    code.append("store = ListStore(Partition, PUB)")
    code.append("print('reboot', store.seq, check(store, %r))" % lab.cases(ents))
    out = lab.run("\n".join(code)).splitlines()
    got = {line.split()[0]: line for line in out}
    assert got["base"] == "base ok 5"
    expect = {"truncated": 1, "short": 1, "sig": 5, "page": 4, "forged": 5, "magic": 3,
              "format": 3, "other_key": 6, "spoofed": 5, "older": 7, "same": 7, "oversize": 2,
              "overrun": 2}
    for name, code_ in expect.items():
        assert got[name].startswith("%s refused %d " % (name, code_)), got[name]
    assert got["reboot"] == "reboot 5 []"
    # the reasons are readable
    assert "not newer than 5" in got["older"]
    assert "another list key" in got["other_key"]


def test_delta_adds_removes_and_sequence(lab):
    ents = entries(b"A", 300)
    base = lab.full("l10.img", ents, 10, max_age_s=3600)
    removed = ents[0]  # paid off: must pass at once despite the filter hit
    moved = ents[1]
    ch1 = [(2, *removed), (1, 2, b"ACC-NEW-1", 2), (2, *moved), (1, moved[0], moved[1], 4)]
    d11 = lab.delta("d11.img", base, ch1, 11)
    ch2 = ch1[:1] + [(1, 3, b"ACC-NEW-2", 5)]  # cumulative: NEW-1 and the move withdrawn
    d12 = lab.delta("d12.img", base, ch2, 12)
    other_base = lab.full("l9.img", ents, 9)
    d_wrong = lab.delta("dw.img", other_base, ch1, 13)
    full13 = lab.full("l13.img", ents[:100], 13)
    out = lab.run("""
store = ListStore(Partition, PUB)
print(attempt(store, %(base)r))
print(attempt(store, %(d11)r), store.seq, store.issued)
L = lambda e: store.lookup(e[0], e[1], len(e[1]))
print(L(%(removed)r), L((2, b'ACC-NEW-1')), L(%(moved)r), L(%(keep)r))
print(attempt(store, %(d11)r))
print(attempt(store, %(dw)r))
print(attempt(store, %(d12)r))
store = ListStore(Partition, PUB)
print(store.seq, L(%(removed)r), L((2, b'ACC-NEW-1')), L(%(moved)r), L((3, b'ACC-NEW-2')))
print(attempt(store, %(full13)r), store.seq, L(%(removed)r), L((3, b'ACC-NEW-2')))
""" % {"base": str(base), "d11": str(d11), "d12": str(d12), "dw": str(d_wrong),
       "full13": str(full13), "removed": removed[:2], "moved": moved[:2], "keep": ents[2][:2]})
    lines = out.splitlines()
    assert lines[0] == "ok 10"
    assert lines[1] == "ok 11 11 %d" % (ISSUED + 600)
    assert lines[2] == "0 2 4 %d" % ents[2][2]
    assert lines[3].startswith("refused 7 ")
    assert lines[4].startswith("refused 8 ")
    assert lines[5] == "ok 12"
    assert lines[6] == "12 0 0 %d 5" % moved[2]
    assert lines[7] == "ok 13 13 %d 0" % removed[2]


def test_freshness_and_stale_policy(lab):
    p = lab.full("l1.img", entries(b"A", 10), 1, max_age_s=3600)
    out = lab.run("""
store = ListStore(Partition, PUB)
print(store.is_stale(%(t)d))
print(attempt(store, %(p)r))
for now in (%(t)d, %(t)d + 3600, %(t)d + 3601, None):
    print(now, store.is_stale(now), [store.action(c, now) for c in (1, 3, 4, 5)])
print(sorted(store.status(%(t)d + 3601).items()))
""" % {"p": str(p), "t": ISSUED})
    lines = out.splitlines()
    assert lines[0] == "True"  # no list: stale
    assert lines[2] == "%d False [2, 3, 2, 3]" % ISSUED
    assert lines[3] == "%d False [2, 3, 2, 3]" % (ISSUED + 3600)
    assert lines[4] == "%d True [2, 3, 3, 3]" % (ISSUED + 3601)  # health hold -> manual lane
    assert lines[5] == "None True [2, 3, 3, 3]"  # clock never set: treat as stale
    assert lines[6] == ("[('active', True), ('base_seq', 1), ('issued', %d), ('max_age_s', 3600),"
                        " ('seq', 1), ('stale', True)]" % ISSUED)


def test_bad_identifiers_get_a_clear_error(lab):
    p = lab.full("l1.img", entries(b"A", 10), 1)
    out = lab.run("""
store = ListStore(Partition, PUB)
attempt(store, %r)
for ns, n in ((1, 33), (0, 5), (1, 0)):
    try:
        store.lookup(ns, bytearray(40), n)
    except fmt.ListError as e:
        print(e.code)
""" % str(p))
    assert out.split() == ["10", "10", "10"]


def test_delta_fills_an_empty_category(lab):
    base = lab.full("l1.img", entries(b"A", 50, cats=(1,)), 1)
    d = lab.delta("d2.img", base, [(1, 3, b"ACC-9", 3)], 2)
    out = lab.run("""
store = ListStore(Partition, PUB)
attempt(store, %r)
print(store.lookup(3, b'ACC-9', 5), attempt(store, %r), store.lookup(3, b'ACC-9', 5))
""" % (str(base), str(d)))
    assert out.strip() == "0 ok 2 3"


def test_damaged_slot_boots_without_a_list(lab):
    p = lab.full("l3.img", entries(b"A", 20), 3)
    out = lab.run("""
store = ListStore(Partition, PUB)
attempt(store, %r)
Partition.find(Partition.TYPE_DATA, label='bl_a')[0].ioctl(6, 0)  # header sector wiped
store = ListStore(Partition, PUB)
print(store.active(), store.lookup(1, b'A000000000000000', 16), attempt(store, %r))
""" % (str(p), str(p)))
    assert out.strip() == "False 0 ok 3"


def test_reader_and_host_tool_agree_on_false_hits(lab):
    """A deliberately weak list (5 % FP) so non-members hit: the reader reports exactly the
    categories the host model predicts, i.e. both run the same probe rule."""
    ents = entries(b"A", 8000, cats=(1, 2))  # pages must be full for the FP to show
    p = lab.full("weak.img", ents, 1, fp=0.05)
    img = p.read_bytes()
    others = entries(b"Q", 3000)
    want = [(ns, ident, cb.lookup(img, ns, ident)) for ns, ident, _ in others]
    assert 30 < sum(1 for w in want if w[2]) < 600  # the weak list really does hit
    out = lab.run("""
store = ListStore(Partition, PUB)
attempt(store, %r)
print(check(store, %r))
""" % (str(p), lab.cases(want)))
    assert out.strip() == "[]"


def test_delta_with_unsorted_records_is_refused(lab):
    ents = entries(b"A", 20)
    base = lab.full("l1.img", ents, 1)
    good = lab.delta("d2.img", base, [(2, *ents[0]), (1, 3, b"X1", 2), (1, 3, b"X2", 2)], 2)
    g = good.read_bytes()
    h = cb.fmt.Header(g, len(g))
    recs = [g[512 + 16 * j: 528 + 16 * j] for j in range(h.nrec)]
    body = g[:512] + b"".join(reversed(recs)) + g[512 + 16 * h.nrec: h.signed_len]
    # correctly signed, but out of order
    bad = lab.raw("bad.img", cb.sign(body, lab.priv))
    out = lab.run("""
store = ListStore(Partition, PUB)
attempt(store, %r)
print(attempt(store, %r))
print(store.seq, attempt(store, %r))
""" % (str(base), str(bad), str(good)))
    lines = out.splitlines()
    assert lines[0].startswith("refused 3 exact record 1 out of order"), lines
    assert lines[1] == "1 ok 2"

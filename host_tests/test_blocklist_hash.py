"""The code shared by the host builder and the reader gives the same results on CPython and on
MicroPython (compiled .mpy): keyed digests, pages and fingerprint fields, and the fingerprint
page decoder on pages the host encoder wrote; the reader's viper SHA-256 equals hashlib on
every message length the lookup can produce and beyond."""

import hashlib
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib" / "blocklist"))

from blocklist import fmt, fpage, khash  # noqa: E402

from flashtool.lists import fpbuild  # noqa: E402

KEY = bytes(range(100, 116))
IDENTS = [(1 + i % 3, bytes(random.Random(i).randrange(256) for _ in range(1 + i % 32)))
          for i in range(200)]


def reference():
    rows = []
    for ns, ident in IDENTS:
        d = khash.digest(KEY, ns, ident)
        rows.append("%s %d %d %d" % (d.hex(), khash.page_of(d, 8191), khash.quotient(d),
                                     khash.remainder(d)))
    return rows


def test_cpython_digest_is_plain_sha256_of_the_message():
    ns, ident = IDENTS[5]
    assert khash.digest(KEY, ns, ident) == hashlib.sha256(
        KEY + bytes([ns, len(ident)]) + ident).digest()
    d = khash.digest(KEY, ns, ident)
    assert khash.quotient(d) == int.from_bytes(d[12:14], "little")
    assert khash.remainder(d) == int.from_bytes(d[14:17], "little")


def test_same_results_on_micropython(mp, tmp_path):
    data = tmp_path / "idents.txt"
    data.write_text("".join("%d %s\n" % (ns, ident.hex()) for ns, ident in IDENTS))
    out = mp("""
import binascii
from blocklist import khash
from blocklist.sha256v import Sha256
key = bytes(range(100, 116))
sha = Sha256()
msg = bytearray(khash.MSG_LEN)
dv = bytearray(32)
for line in open(%r):
    ns, ident = line.split()
    ident = binascii.unhexlify(ident)
    d = khash.digest(key, int(ns), ident)
    sha.digest_into(msg, khash.message(key, int(ns), ident, len(ident), msg), dv)
    assert bytes(dv) == d
    print('%%s %%d %%d %%d' %% (binascii.hexlify(d).decode(), khash.page_of(d, 8191),
                              khash.quotient(d), khash.remainder(d)))
""" % str(data))
    assert out.splitlines() == reference()


LAYOUTS = [  # (category bits per group, budgets, entries per group)
    *[((3,), (1e-7,), (n,)) for n in (0, 1, 2, 40, 100, 150, 170, 200, 400, 800)],
    *[((2, 0), (1e-7, 5e-3), loads) for loads in ((0, 300), (20, 300), (5, 0), (30, 330),
                                                 (60, 600), (1, 1))],
    ((1, 0, 2), (1e-7, 1e-5, 1e-3), (10, 40, 200)),
]


def pages():
    """Pages from the host encoder: empty, sparse (long remainders, r capped), full (short
    remainders), two and three groups side by side, shared fingerprints in two categories,
    duplicate rows; each with probes: every member and random non-members."""
    rnd = random.Random(7)
    out = []
    for cbits, eps, loads in LAYOUTS:
        rows = []
        for g, n in enumerate(loads):
            grp = [(g, rnd.getrandbits(16), rnd.getrandbits(24), rnd.randrange(1 << cbits[g]))
                   for _ in range(n)]
            if n > 2 and cbits[g]:
                grp += [(g, grp[0][1], grp[0][2], (grp[0][3] + 1) % (1 << cbits[g])), grp[1]]
            rows += grp
        page, (q, r) = fpbuild.one_page(rows, cbits, fpbuild.Planner(eps, cbits))
        probes = [(a, b) for _g, a, b, _c in rows] + [(rnd.getrandbits(16), rnd.getrandbits(24))
                                                      for _ in range(300)]
        if rows:  # same bucket, remainder one off: must not match
            probes.append((rows[-1][1], rows[-1][2] ^ 1))
        out.append((rows, cbits, page, (q, r), probes))
    return out


def expect(rows, q, r, probe, g):
    """The categories of group g whose fingerprint equals the probe's under (q[g], r[g])."""
    mq = (1 << int(q[g])) - 1
    mr = (1 << int(r[g])) - 1
    return sum(1 << c for c in {c for gg, a, b, c in rows if gg == g and
                                (a ^ probe[0]) & mq == 0 and (b ^ probe[1]) & mr == 0})


def test_fingerprint_pages_on_both_interpreters(mp, tmp_path):
    data = tmp_path / "pages.txt"
    want = []
    built = pages()
    with open(data, "w") as f:
        for rows, cbits, page, (q, r), probes in built:
            f.write("%s %s %s\n" % (page.hex(), bytes(cbits).hex() or "-",
                                    ",".join("%d:%d" % p for p in probes)))
            got = [[fpage.match(page, bytes(cbits), g, *p) for g in range(len(cbits))]
                   for p in probes]
            for (g, _a, _b, ci), m in zip(rows, got):
                assert m[g] >> ci & 1  # every member found in its category
            for p, m in zip(probes, got):
                assert m == [expect(rows, q, r, p, g) for g in range(len(cbits))]
            want.append(" ".join(",".join(map(str, m)) for m in got))
    for _rows, cbits, page, _, _ in built:  # every page within its bounds, 3 bytes free
        end = sum(fpage.size_bits(page[4 * g] | page[4 * g + 1] << 8, page[4 * g + 2],
                                  page[4 * g + 3], cbits[g]) for g in range(len(cbits)))
        assert end + 32 * len(cbits) <= fmt.PAGE_USED
        assert page[-3:] == b"\0\0\0"
    out = mp("""
import binascii
from blocklist import fpage
for line in open(%r):
    page, cbits, probes = line.split()
    page = binascii.unhexlify(page)
    cbits = binascii.unhexlify(cbits)
    print(' '.join(','.join(str(fpage.match(page, cbits, g, int(a), int(b)))
                            for g in range(len(cbits)))
                   for a, b in (p.split(':') for p in probes.split(','))))
""" % str(data), heapsize="2m")  # the test data, not the decoder, needs the room
    assert out.splitlines() == want


def test_corrupt_page_is_a_named_error_not_an_overrun(mp):
    out = mp("""
from blocklist import fmt, fpage
for head in (b'\\xff\\x0f\\x07\\x16', b'\\x10\\x00\\x11\\x10', b'\\x10\\x00\\x07\\x18',
             b'\\x01\\x00\\x04\\x10\\xff\\x0f\\x07\\x16'):
    page = bytearray(512)
    page[0:len(head)] = head
    try:
        fpage.match(page, b'\\x03\\x00', 0, 0x7f, 5)
        print('matched')
    except fmt.ListError as e:
        print(e.code)
page = bytearray(b'\\xff' * 512)  # a bitmap of ones only: the select must stop in the page
page[0:4] = b'\\x01\\x00\\x07\\x10'
try:
    print(fpage.match(page, b'\\x03', 0, 5, 0))
except fmt.ListError as e:
    print(e.code)
""")
    assert out.split() == ["3", "3", "3", "3", "3"]


def test_viper_sha256_matches_hashlib_all_lengths(mp):
    out = mp("""
import hashlib
from blocklist.sha256v import Sha256
sha = Sha256()
buf = bytearray(400)
out = bytearray(32)
bad = []
for n in range(300):
    for i in range(n):
        buf[i] = (i * 131 + n * 7) & 0xFF
    want = hashlib.sha256(bytes(buf[:n])).digest()
    sha.digest_into(buf, n, out)
    if bytes(out) != want:
        bad.append(n)
print(bad)
""")
    assert out.strip() == "[]"

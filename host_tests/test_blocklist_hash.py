"""The keyed hashing shared by the host builder and the reader gives the same digests, pages
and bit positions on CPython and on MicroPython (compiled .mpy), and the reader's viper
SHA-256 equals hashlib on every message length the lookup can produce and beyond."""

import hashlib
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib" / "blocklist"))

from blocklist import khash  # noqa: E402

KEY = bytes(range(100, 116))
IDENTS = [(1 + i % 3, bytes(random.Random(i).randrange(256) for _ in range(1 + i % 32)))
          for i in range(200)]


def reference():
    rows = []
    for ns, ident in IDENTS:
        d = khash.digest(KEY, ns, ident)
        rows.append("%s %d %s" % (d.hex(), khash.page_of(d, 8191), khash.bits(d, 24)))
    return rows


def test_cpython_digest_is_plain_sha256_of_the_message():
    ns, ident = IDENTS[5]
    assert khash.digest(KEY, ns, ident) == hashlib.sha256(
        KEY + bytes([ns, len(ident)]) + ident).digest()
    d = khash.digest(KEY, ns, ident)
    assert len(set(khash.bits(d, 31))) == 31  # odd h2: distinct positions


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
    print('%%s %%d %%s' %% (binascii.hexlify(d).decode(), khash.page_of(d, 8191),
                            khash.bits(d, 24)))
""" % str(data))
    assert out.splitlines() == reference()


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

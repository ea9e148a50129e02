"""base45, the strict RSA check under e = 3 (Wycheproof vectors, a Bleichenbacher-2006 forgery)
and the signed key-set loader, on MicroPython from the compiled build."""

import hashlib
import json
from pathlib import Path

import pytest
from test_ridecode_support import NOW, make_world, verify

from flashtool.codes import issuer as cc

base45 = cc.base45


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)
WYCHEPROOF = Path("/work/shared/vectors/wycheproof/rsa_signature_2048_sha256_test.json")

RFC9285 = [(b"AB", b"BB8"), (b"Hello!!", b"%69 VD92EX0"), (b"base-45", b"UJCLQE7W581"),
           (b"ietf!", b"QED8WEX0"), (b"", b"")]


def test_base45_rfc9285_vectors_on_micropython(mp):
    for raw, text in RFC9285:
        assert base45.encode(raw) == text and base45.decode(text) == raw  # the tools' side
    out = mp("""
        import base45
        for text in %r:
            print(base45.decode(text).hex())
        for bad in (b"GGW", b"A", b"ABCD", b"ab8", b"::::", b"BB\\n"):
            try:
                base45.decode(bad)
                print("accepted", bad)
            except base45.Base45Error:
                print("rejected")
    """ % ([t for _, t in RFC9285],))
    lines = out.splitlines()
    assert lines[:5] == [r.hex() for r, _ in RFC9285]
    assert lines[5:] == ["rejected"] * 6  # GGW = 65536 > 0xFFFF; lengths 1 and 4 mod 3


def test_base45_decode_into_allocates_nothing(mp):
    text = b"RC1:" + base45.encode(bytes(range(256)) + bytes(54))
    out = mp("""
        import base45, micropython
        src = %r
        dst = bytearray(400)
        n = len(src)
        micropython.heap_lock()
        try:
            m = base45.decode_into(src, 4, n - 4, dst)
        finally:
            micropython.heap_unlock()
        print(m, bytes(dst[:256]) == bytes(range(256)))
    """ % text)
    assert out.split() == ["310", "True"]


def test_wycheproof_rsa_pkcs1_2048_sha256_on_micropython(mp, tmp_path):
    data = json.loads(WYCHEPROOF.read_text())
    lines = []
    for g in data["testGroups"]:
        n, e = g["publicKey"]["modulus"], g["publicKey"]["publicExponent"]
        for t in g["tests"]:
            lines.append("%s %s %s %s %s %d" % (t["result"], n, e, t["msg"] or "-",
                                                t["sig"] or "-", t["tcId"]))
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    out = mp("""
        import hashlib, rsapkcs1
        from binascii import unhexlify
        def h(x):
            return b"" if x == "-" else unhexlify(x)
        with open(%r) as f:
            for line in f:
                res, n, e, msg, sig, tc = line.split()
                try:
                    digest = hashlib.sha256(h(msg)).digest()
                    rsapkcs1.verify(int(n, 16), int(e, 16), digest, h(sig))
                    got = "valid"
                except rsapkcs1.SignatureError:
                    got = "invalid"
                print(tc, res, got)
    """ % str(path))
    rows = [line.split() for line in out.splitlines()]
    assert len(rows) == data["numberOfTests"] == 259
    wrong = [r for r in rows if r[1] != "acceptable" and r[1] != r[2]]
    assert not wrong
    assert sum(r[2] == "valid" for r in rows) == 9


def _icbrt(x):
    lo, hi = 0, 1 << ((x.bit_length() + 2) // 3 + 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if mid ** 3 < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _lax_parse(block, digest):
    """How the 2006-era lax verifiers read a block: 00 01, skip FFs, 00, DigestInfo, hash, and
    ignore whatever follows."""
    if block[:2] != b"\x00\x01":
        return False
    i = 2
    while block[i] == 0xFF:
        i += 1
    if block[i] != 0:
        return False
    body = block[i + 1:]
    return body[:19] == bytes.fromhex("3031300d060960864801650304020105000420") and \
        body[19:51] == digest


def bleichenbacher_forgery(digest, k=256):
    """s with s**3 = 00 01 FF 00 DigestInfo digest GARBAGE (no modulus knowledge needed)."""
    head = b"\x00\x01\xff\x00" + bytes.fromhex("3031300d060960864801650304020105000420") + digest
    shift = 8 * (k - len(head))
    s = _icbrt(int.from_bytes(head, "big") << shift)
    block = (s ** 3).to_bytes(k, "big")
    return s.to_bytes(k, "big"), block


def test_e3_bleichenbacher_forgery_is_refused(mp, world):
    """The forged signature passes a lax parser for ANY e = 3 key, but the reader rebuilds the
    whole encoded block and compares it: the code is FORGED."""
    w = world
    body = w.make_cert(account="FORGED01")[:-256]
    digest = hashlib.sha256(cc.layout.CERT_DOMAIN + body).digest()
    sig, block = bleichenbacher_forgery(digest)
    assert int.from_bytes(sig, "big") < w.issuer["n"]
    assert pow(int.from_bytes(sig, "big"), 3, w.issuer["n"]) == int.from_bytes(block, "big")
    assert _lax_parse(block, digest)  # a lax verifier would accept it
    forged_cert = body + sig
    code = cc.make_code(forged_cert, cc.user_key(w.days[NOW // 86400], forged_cert), NOW - 5, 1)
    rows, stats = verify(mp, world, [(NOW, code), (NOW, code)])
    assert [r["result"] for r in rows] == ["forged", "forged"]
    assert stats[:2] == [0, 2]  # a refused certificate is never cached


# -- the signed key set --
KS_HARNESS = """
from ridecode import keyset
data = open(%r, "rb").read()
for case in %r:
    kind, arg = case
    d = bytearray(data)
    if kind == "flip":
        d[arg] ^= 0x01
    elif kind == "cut":
        d = d[:arg]
    try:
        ks = keyset.load(bytes(d), %d, %d, min_serial=%d)
        print("loaded", ks.serial, sorted(ks.issuers), ks.revoked[2], len(ks.days))
    except keyset.KeySetError as e:
        print("error", e.code)
"""


def _ks(mp, world, cases, min_serial=0):
    out = mp(KS_HARNESS % (str(world.ks_path), cases, world.root["n"], world.root["e"],
                           min_serial))
    return out.splitlines()


def test_keyset_loads_and_rejects_rollback(mp, world):
    assert _ks(mp, world, [("as-is", 0)]) == ["loaded 7 [1, 2] 1 3"]
    assert _ks(mp, world, [("as-is", 0)], min_serial=7) == ["loaded 7 [1, 2] 1 3"]
    assert _ks(mp, world, [("as-is", 0)], min_serial=8) == ["error 3"]


def test_keyset_any_bit_flip_or_cut_is_rejected(mp, world):
    n = len(world.keyset)
    cases = [("flip", i) for i in range(n)] + [("cut", i) for i in range(n)]
    out = _ks(mp, world, cases)
    assert len(out) == len(cases)
    assert all(line in ("error 1", "error 2") for line in out)


def test_keyset_signed_by_another_root_is_rejected(mp, world, tmp_path):
    other = cc.make_keyset(world.stranger, 9, {1: world.issuer})
    p = tmp_path / "other.bin"
    p.write_bytes(other)
    out = mp("""
        from ridecode import keyset
        try:
            keyset.load(open(%r, "rb").read(), %d, 3)
        except keyset.KeySetError as e:
            print("error", e.code)
    """ % (str(p), world.root["n"]))
    assert out.split() == ["error", "2"]

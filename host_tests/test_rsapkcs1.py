"""The strict RSA PKCS#1 v1.5 SHA-256 verifier against Wycheproof
(rsa_signature_2048_sha256_test.json, read in place), on MicroPython from the compiled .mpy and
on CPython: every valid signature accepted, every invalid one rejected. The one "acceptable"
case (MissingNull: DigestInfo without the NULL parameter) is rejected on purpose: the verifier
only accepts the exact RFC 8017 encoding, which is what our signers produce.
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT.parent / "shared" / "vectors" / "wycheproof" / "rsa_signature_2048_sha256_test.json"
if not VECTORS.exists():
    VECTORS = Path("/work/shared/vectors/wycheproof/rsa_signature_2048_sha256_test.json")
sys.path.insert(0, str(ROOT / "lib" / "rsapkcs1"))

import rsapkcs1  # noqa: E402

pytestmark = pytest.mark.skipif(not VECTORS.exists(), reason="Wycheproof vectors not present")


def cases():
    j = json.loads(VECTORS.read_text())
    for g in j["testGroups"]:
        n = int(g["publicKey"]["modulus"], 16)
        e = int(g["publicKey"]["publicExponent"], 16)
        for t in g["tests"]:
            yield t["tcId"], n, e, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]), t["result"]


def expected(result):
    return result == "valid"  # "acceptable" (MissingNull) is refused: strict encoding only


def test_wycheproof_on_cpython():
    seen = {"valid": 0, "invalid": 0, "acceptable": 0}
    for tc, n, e, msg, sig, result in cases():
        try:
            rsapkcs1.verify(n, e, hashlib.sha256(msg).digest(), sig)
            ok = True
        except rsapkcs1.SignatureError:
            ok = False
        assert ok == expected(result), (tc, result)
        seen[result] += 1
    assert seen == {"valid": 9, "invalid": 249, "acceptable": 1}


def test_wycheproof_on_micropython(mp, tmp_path):
    lines = ["%d %x %x %s %s %d" % (tc, n, e, msg.hex() or "-", sig.hex() or "-",
                                    expected(result)) for tc, n, e, msg, sig, result in cases()]
    data = tmp_path / "vectors.txt"
    data.write_text("\n".join(lines) + "\n")
    out = mp("""
import hashlib, binascii, rsapkcs1
def unhex(s):
    return b'' if s == '-' else binascii.unhexlify(s)
wrong = []
count = 0
for line in open(%r):
    tc, n, e, msg, sig, want = line.split()
    try:
        rsapkcs1.verify(int(n, 16), int(e, 16), hashlib.sha256(unhex(msg)).digest(), unhex(sig))
        ok = 1
    except rsapkcs1.SignatureError:
        ok = 0
    count += 1
    if ok != int(want):
        wrong.append(int(tc))
print(count, wrong)
""" % str(data), timeout=600)
    assert out.strip() == "259 []"


def test_rejects_bad_arguments():
    _, n, e, msg, sig, _ = next(c for c in cases() if c[5] == "valid")
    d = hashlib.sha256(msg).digest()
    with pytest.raises(rsapkcs1.SignatureError):
        rsapkcs1.verify(n, e, d[:31], sig)  # digest of the wrong size
    with pytest.raises(rsapkcs1.SignatureError):
        rsapkcs1.verify(n, e, d, sig[1:])  # signature shorter than the modulus
    with pytest.raises(rsapkcs1.SignatureError):
        rsapkcs1.verify(n, e, d, n.to_bytes(256, "big"))  # s >= n
    rsapkcs1.verify(n, e, d, sig)

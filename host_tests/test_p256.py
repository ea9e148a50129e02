"""lib/p256 (ECDSA P-256 in viper) on the MicroPython binary: the Wycheproof vectors, with and
without the 2**128 multiple of the key, the refusal codes, what a verification allocates;
plus the generated field code is current and compiles (and freezes) for the ESP32."""

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from flashtool.build import p256gen
from flashtool.build.mpy import _mpy_cross

ROOT = Path(__file__).resolve().parents[1]
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
EMITTER_MODULES = ("lib/p256/p256/vm.py", "lib/p256/p256/scalar.py")


def shared(*parts):
    """A file of ../shared (beside the checkout, or beside the worktrees folder)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        p = base.joinpath("shared", *parts)
        if p.exists():
            return p
    pytest.skip("../shared/%s is absent (vectors and vendor sources live outside the repo)"
                % "/".join(parts))


def key_hi(pub):
    """2**128 * pub (64 bytes x || y), the host's reference arithmetic."""
    x, y = p256gen.multiply(1 << 128, (int.from_bytes(pub[:32], "big"),
                                       int.from_bytes(pub[32:], "big")))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


HARNESS = """
import p256
from binascii import unhexlify
v = p256.Verifier()
def h(x):
    return b"" if x == "-" else unhexlify(x)
with open(%r) as f:
    for line in f:
        tc, key, hi, digest, sig, low = line.split()
        try:
            v.verify(h(key), h(digest), h(sig), low_s=low == "1",
                     key_hi=None if hi == "-" else h(hi))
            print(tc, "valid")
        except p256.SignatureError as e:
            print(tc, "invalid", e.code)
"""


def run_cases(mp, tmp_path, cases):
    """cases: (id, key, key_hi or None, digest, sig, low_s) -> {id: (verdict, code)}."""
    path = tmp_path / "cases.txt"
    path.write_text("".join("%s %s %s %s %s %d\n" % (tc, k.hex(), hi.hex() if hi else "-",
                                                      d.hex(), s.hex() or "-", low)
                            for tc, k, hi, d, s, low in cases))
    out = {}
    for line in mp(HARNESS % str(path)).splitlines():
        w = line.split()
        out[w[0]] = (w[1], int(w[2]) if len(w) > 2 else 0)
    return out


def wycheproof():
    data = json.loads(shared("vectors", "wycheproof",
                             "ecdsa_secp256r1_sha256_p1363_test.json").read_text())
    for g in data["testGroups"]:
        k = g["publicKey"]
        pub = int(k["wx"], 16).to_bytes(32, "big") + int(k["wy"], 16).to_bytes(32, "big")
        for t in g["tests"]:
            yield (t["tcId"], pub, hashlib.sha256(bytes.fromhex(t["msg"])).digest(),
                   bytes.fromhex(t["sig"]), t["result"])
    assert data["numberOfTests"] == 262


@pytest.mark.parametrize("split", [False, True], ids=["plain", "key_hi"])
def test_wycheproof_p1363_vectors_on_micropython(mp, tmp_path, split):
    tests = list(wycheproof())
    his = {pub: key_hi(pub) for _, pub, _, _, _ in tests} if split else {}
    got = run_cases(mp, tmp_path, [(tc, pub, his.get(pub), d, sig, 0)
                                   for tc, pub, d, sig, _ in tests])
    assert len(got) == len(tests) == 262
    wrong = [(tc, want, got[str(tc)]) for tc, _, _, _, want in tests
             if got[str(tc)][0] != want]
    assert not wrong
    assert sum(v[0] == "valid" for v in got.values()) == 173


def _signed(seed, msg):
    """A key derived from a fixed seed and a signature of msg by it (raw r || s)."""
    key = ec.derive_private_key(seed, ec.SECP256R1())
    nums = key.public_key().public_numbers()
    pub = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return pub, r, s


def _raw(r, s):
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_each_refusal_has_its_code(mp, tmp_path):
    msg = b"ride code"
    d = hashlib.sha256(msg).digest()
    pub, r, s = _signed(0x1234567, msg)
    lo, hi = min(s, N - s), max(s, N - s)
    other, _, _ = _signed(0x7654321, msg)
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    off_curve = pub[:63] + bytes([pub[63] ^ 1])
    x_too_big = p.to_bytes(32, "big") + pub[32:]
    cases = {
        "good-low": (pub, d, _raw(r, lo), 1), "good-high": (pub, d, _raw(r, hi), 0),
        "high-s": (pub, d, _raw(r, hi), 1), "r-zero": (pub, d, _raw(0, lo), 0),
        "s-is-n": (pub, d, _raw(r, N), 0), "short": (pub, d, _raw(r, lo)[:63], 0),
        "off-curve": (off_curve, d, _raw(r, lo), 0), "x-above-p": (x_too_big, d, _raw(r, lo), 0),
        "other-key": (other, d, _raw(r, lo), 0), "other-digest": (pub, d[::-1], _raw(r, lo), 0),
        "r-plus-one": (pub, d, _raw(r + 1, lo), 0),
    }
    got = run_cases(mp, tmp_path, [(k, v[0], None, v[1], v[2], v[3]) for k, v in cases.items()])
    assert got == {
        "good-low": ("valid", 0), "good-high": ("valid", 0), "high-s": ("invalid", 2),
        "r-zero": ("invalid", 1), "s-is-n": ("invalid", 1), "short": ("invalid", 1),
        "off-curve": ("invalid", 3), "x-above-p": ("invalid", 3), "other-key": ("invalid", 4),
        "other-digest": ("invalid", 4), "r-plus-one": ("invalid", 4),
    }


def test_signatures_from_the_host_library_verify_both_ways(mp, tmp_path):
    """Keys from fixed seeds, signatures by `cryptography` (its nonces are random, the verdict
    is not): every one verifies with and without key_hi, and a flipped bit refuses."""
    cases = []
    for i in range(24):
        msg = b"code %d" % i
        pub, r, s = _signed(1000 + i, msg)
        d = hashlib.sha256(msg).digest()
        sig = _raw(r, s)
        bad = bytearray(sig)
        bad[i % 64] ^= 1 << (i % 8)
        cases += [("a%d" % i, pub, None, d, sig, 0), ("b%d" % i, pub, key_hi(pub), d, sig, 0),
                  ("c%d" % i, pub, key_hi(pub), d, bytes(bad), 0)]
    got = run_cases(mp, tmp_path, cases)
    assert all(got["a%d" % i] == got["b%d" % i] == ("valid", 0) for i in range(24))
    assert all(got["c%d" % i][0] == "invalid" for i in range(24))


def test_verify_allocates_little_and_the_ladder_nothing(mp):
    msg = b"heap"
    pub, r, s = _signed(99, msg)
    out = mp("""
        import gc, micropython, p256
        from p256 import vm
        v = p256.Verifier()
        key, hi, d, sig = %r, %r, %r, %r
        v.verify(key, d, sig, key_hi=hi)
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        v.verify(key, d, sig, key_hi=hi)
        b = gc.mem_alloc()
        micropython.heap_lock()
        try:
            v._run(-1)
            v._run(vm.J_DBL)
        finally:
            micropython.heap_unlock()
        print(b - a)
    """ % (pub, key_hi(pub), hashlib.sha256(msg).digest(), _raw(r, s)))
    assert 0 < int(out) < 2048  # a few small integers and their bytes, no workspace


def test_generated_field_code_is_current():
    assert p256gen.OUT.read_text() == p256gen.source(), "run: python -m flashtool.build.p256gen"


def test_program_checker_refuses_an_overflow():
    """The bound tracker is what keeps every limb sum below 2**31: it must refuse a lazy sum
    that could exceed 4p and a product of it."""
    with pytest.raises(ValueError):
        p256gen.assemble("T0 = X1 +~ Y1\nT1 = T0 +~ Z1")
    with pytest.raises(ValueError):
        p256gen.assemble("T0 = X1 +~ Y1\nT0 = T0 -~ T0")
    p256gen.assemble("T0 = X1 +~ Y1\nT1 = T0 * T0")


def test_emitter_modules_compile_for_xtensawin(tmp_path):
    """The ESP32's native emitter (mpy-cross -march=xtensawin) takes the viper code."""
    for src in EMITTER_MODULES:
        out = tmp_path / (Path(src).stem + ".mpy")
        r = subprocess.run([_mpy_cross(), "-march=xtensawin", "-O2", "-o", str(out),
                            str(ROOT / src)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        head = out.read_bytes()[:3]
        assert head[0] == ord("M") and (head[2] >> 2) & 0x2F == 10  # MP_NATIVE_ARCH_XTENSAWIN


def test_emitter_modules_freeze_for_xtensawin(tmp_path):
    """Frozen into the ESP32 firmware the native code runs from flash: mpy-tool refuses code
    with relocations, so freeze the xtensawin .mpy files with the upstream tool."""
    tarball = shared("vendor", "micropython-1.28.0.tar.gz")
    tools = ROOT / "build" / "vendor"
    want = ("micropython-1.28.0/tools/mpy-tool.py", "micropython-1.28.0/py/makeqstrdata.py")
    if not all((tools / w).exists() for w in want):
        with tarfile.open(tarball) as t:
            for w in want:
                t.extract(w, tools, filter="data")
    mpys = []
    for src in EMITTER_MODULES:
        out = tmp_path / (Path(src).stem + ".mpy")
        subprocess.run([_mpy_cross(), "-march=xtensawin", "-O2", "-o", str(out), str(ROOT / src)],
                       check=True)
        mpys.append(str(out))
    qstrs = tmp_path / "qstrdefs.h"
    qstrs.write_text("QCFG(BYTES_IN_LEN, (1))\nQCFG(BYTES_IN_HASH, (1))\n")
    r = subprocess.run([sys.executable, str(tools / want[0]), "-f", "-q", str(qstrs), *mpys],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("frozen native code") >= 4


def test_app_bundles_leave_the_native_code_frozen():
    """An app slot would load native code into executable RAM on the ESP32 (scarce): p256
    stays in the frozen firmware, the app bundle does not carry it."""
    from flashtool.release.bundle import app_files

    files = app_files(ROOT / "build" / "host")
    assert "ridecode/verifier.mpy" in files
    assert not [f for f in files if f.startswith("p256/")]

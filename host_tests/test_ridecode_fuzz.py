"""Fuzzed ride-code strings on the reader's verifier (MicroPython, compiled): nothing unhandled,
nobody passes, RC2 (the format, RSA and P-256 rider keys) and RC1 (kept for the migration,
switched on here). Short forms in `make test`; >= 100,000 strings of each under
@pytest.mark.long."""

import random
import struct

import pytest
from test_ridecode_support import NOW, RESULTS, make_world

from flashtool.codes import issuer as cc

base45 = cc.base45
ALPHA = base45.ALPHABET
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 group order


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def mutate(rng, world, cert_pool):
    """One fuzzed code string (bytes), never equal to a genuine code. The format follows the
    certificate's version byte."""
    cert = rng.choice(cert_pool)
    make = world.code2 if cert[0] == 2 else world.code
    good = make(cert=cert, gen=NOW - rng.randrange(40), counter=rng.randrange(65536))
    prefix = good[:4]
    kind = rng.randrange(10)
    s = bytearray(good)
    if kind == 0:  # a few characters replaced by base45 characters
        for _ in range(rng.randint(1, 3)):
            s[rng.randrange(4, len(s))] = rng.choice(ALPHA)
    elif kind == 1:  # any byte anywhere
        for _ in range(rng.randint(1, 3)):
            s[rng.randrange(len(s))] = rng.randrange(256)
    elif kind == 2:  # cut, or a range deleted
        a = rng.randrange(len(s))
        del s[a:a + rng.randint(1, 40)]
    elif kind == 3:  # inserted characters
        a = rng.randrange(len(s) + 1)
        s[a:a] = bytes(rng.choice(ALPHA) for _ in range(rng.randint(1, 6)))
    elif kind == 4:  # binary-level field changes, cleanly re-encoded: reaches the crypto checks
        raw = bytearray(base45.decode(bytes(s[4:])))
        for _ in range(rng.randint(1, 3)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        s = bytearray(prefix + base45.encode(bytes(raw)))
    elif kind == 5:  # random binary of a plausible length, valid base45
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 820)))
        s = bytearray(prefix + base45.encode(raw))
    elif kind == 6:  # random binary with a plausible header (version, key id, account len)
        acc = rng.randint(0, 25)
        raw = bytes([cert[0], rng.choice((1, 2, 9)), 5, acc]) + bytes(
            rng.randrange(256) for _ in range(rng.randint(0, 810)))
        s = bytearray(prefix + base45.encode(raw))
    elif kind == 7:  # two codes glued, or a doubled prefix
        s = bytearray(good + (good if rng.random() < 0.5 else prefix))
    elif kind == 8:  # the signature (RC1: the MAC) replaced: edge values, its other half, noise
        raw = bytearray(base45.decode(bytes(s[4:])))
        alg = cert[12 + cert[3]] if cert[0] == 2 else 0
        n = {1: 256, 2: 32}.get(alg, 8)  # RSA: the signature; P-256: s; RC1: half the MAC
        order = N if alg == 2 else int.from_bytes(cert[13 + cert[3]:269 + cert[3]], "big")
        half = int.from_bytes(raw[-n:], "big")
        tail = rng.choice((0, 1, order - 1, order, order + 1, 2 ** (8 * n) - 1, order - half,
                           rng.randrange(2 ** (8 * n))))
        raw[-n:] = (tail % 2 ** (8 * n)).to_bytes(n, "big")
        if alg == 2 and rng.random() < 0.3:
            raw[-2 * n:-n] = bytes(rng.randrange(256) for _ in range(n))
        s = bytearray(prefix + base45.encode(bytes(raw)))
    else:  # noise
        s = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 1300)))
    if bytes(s) == good:
        s.append(ALPHA[0])
    return bytes(s)


HARNESS = """
import credential
from ridecode import keyset, verifier
ks = keyset.load(open(%r, "rb").read(), %d, %d)
class Clock:
    def time(self):
        return %d
v = verifier.Verifier(ks, Clock(), replay_slots=64, rc1=%s, p256=True)
cred = credential.Credential()
buf = bytearray(1300)
count = 0
with open(%r, "rb") as f:
    while True:
        h = f.read(2)
        if not h:
            break
        n = h[0] << 8 | h[1]
        f.readinto(buf, n) if n else 0
        r = v.check(buf, n, cred)
        count += 1
        if r == verifier.OK:
            print("PASSED", count)
print("counts", count, " ".join(str(c) for c in v.counts))
"""


def campaign(mp, world, tmp_path, n, seed, version):
    rng = random.Random(seed)
    if version == 2:
        ec = world.ec_rider  # P-256 rider keys too (the reader here is configured for them)
        certs = [world.cert2, world.make_cert2(account="A1", category=1),
                 world.make_cert2(key=world.revoked, kid=2),
                 world.make_cert2(key=world.stranger, kid=9),
                 world.make_cert2(valid_from=NOW - 10 * 86400, valid_to=NOW - 1),
                 world.make_cert2(rider=ec), world.make_cert2(account="A2", rider=ec)]
        reached = ("malformed", "forged", "unknown-key", "revoked", "expired", "non-canonical")
    else:
        certs = [world.cert, world.make_cert(account="A1", category=1),
                 world.make_cert(key=world.revoked, kid=2),
                 world.make_cert(key=world.stranger, kid=9),
                 world.make_cert(valid_from=NOW - 10 * 86400, valid_to=NOW - 1)]
        reached = ("malformed", "forged", "unknown-key", "revoked", "expired")
    path = tmp_path / "fuzz.bin"
    with open(path, "wb") as f:
        for _ in range(n):
            s = mutate(rng, world, certs)[:1300]
            f.write(struct.pack(">H", len(s)) + s)
    out = mp(HARNESS % (str(world.ks_path), world.root["n"], world.root["e"], NOW,
                        version == 1, str(path)), timeout=3600)
    assert "PASSED" not in out, out[:2000]
    last = out.splitlines()[-1].split()
    assert last[0] == "counts" and int(last[1]) == n
    counts = dict(zip(RESULTS, map(int, last[2:])))
    print(counts)
    assert counts["ok"] == 0
    # the campaign reached every stage of the verifier, not only the parser
    for reason in reached:
        assert counts[reason] > 0, counts
    return counts


def test_fuzzed_rc2_strings_short(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 10_000, seed=1, version=2)


def test_fuzzed_rc1_strings_short(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 3_000, seed=4, version=1)


@pytest.mark.long
def test_fuzzed_rc2_strings_full(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 100_000, seed=2, version=2)


@pytest.mark.long
def test_fuzzed_rc1_strings_full(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 100_000, seed=5, version=1)

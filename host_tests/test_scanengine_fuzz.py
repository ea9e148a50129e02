"""Fuzzed scan-engine byte streams through the driver and the verifier (MicroPython, compiled):
garbage, partial and over-long output, stray reply frames, codes split by CR/LF or idle gaps.
Nothing unhandled; every genuine code among them passes, nothing else does. Short form in
`make test`; >= 100,000 streams under @pytest.mark.long."""

import random
import struct

import pytest
from test_ridecode_fuzz import mutate
from test_ridecode_support import NOW, make_world

SEP = {0: b"\r", 1: b"\r\n", 2: b"\n", 3: b""}  # 3: an idle gap ends the segment


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def segment(rng, world, certs, i):
    """(bytes, genuine?) for one stretch of engine output (i: unique per genuine code)."""
    k = rng.randrange(8)
    counter = i & 0xFFFF
    if k == 0:
        return world.code2(gen=NOW - 5 - 7 * (i >> 16), counter=counter), True
    if k == 1:
        return mutate(rng, world, certs), False
    if k == 2:  # line noise with the protocol's own bytes in it
        pool = b"\x02\x00\x7e\x0d\x0a\xab\xcdRC2:" + bytes(range(32, 127))
        return bytes(rng.choice(pool) for _ in range(rng.randint(1, 80))), False
    if k == 3:  # a stray reply frame (valid shape, random content)
        body = bytes([0, rng.randrange(256)]) + bytes(rng.randrange(256) for _ in range(4))
        return b"\x02\x00" + body, False
    if k == 4:  # over-long output
        return bytes(rng.choice(b"ABC123 $%") for _ in range(rng.randint(1025, 2000))), False
    if k == 5:  # half a genuine code (cut by the phone moving away)
        c = world.code2(counter=counter)
        return c[:rng.randrange(1, len(c))], False
    if k == 6:  # a genuine code with a byte lost on the wire
        c = bytearray(world.code2(counter=counter))
        del c[rng.randrange(len(c))]
        return bytes(c), False
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 600))), False


HARNESS = """
import time
import credential
import scanengine
from ridecode import keyset, verifier

class Uart:
    def __init__(self, f):
        self.f = f
        self.left = 0
    def readinto(self, buf, n):
        n = min(n, self.left)
        if not n:
            return None
        got = self.f.readinto(memoryview(buf)[:n])
        self.left -= got
        return got
    def write(self, b):
        return len(b)

class Clock:
    ticks_diff = staticmethod(time.ticks_diff)
    now = 0
    def ticks_ms(self):
        return self.now
    def time(self):
        return %d

ks = keyset.load(open(%r, "rb").read(), %d, %d)
clock = Clock()
v = verifier.Verifier(ks, clock, replay_slots=64)
cred = credential.Credential()
f = open(%r, "rb")
uart = Uart(f)
se = scanengine.ScanEngine(uart, clock, bufsize=1280, gap_ms=40, same_ms=3000)
segs = 0
ok = 0

def drain(step):
    global ok
    while True:
        clock.now += step
        n = se.poll(clock.now)
        if n:
            if v.check(se.code, n, cred) == verifier.OK:
                ok += 1
        elif uart.left == 0:
            return

while True:
    h = f.read(3)
    if not h:
        break
    uart.left = h[0] << 8 | h[1]
    drain(1)
    if h[2]:
        drain(50)  # an idle gap after this segment
    segs += 1
drain(50)
print("done", segs, ok, se.codes, se.suppressed, se.overruns, " ".join(str(c) for c in v.counts))
"""


def campaign(mp, world, tmp_path, n, seed):
    rng = random.Random(seed)
    certs = [world.cert2, world.make_cert2(key=world.stranger, kid=9)]
    path = tmp_path / "streams.bin"
    genuine = 0
    with open(path, "wb") as f:
        for i in range(n):
            data, good = segment(rng, world, certs, i)
            sep = rng.randrange(4)
            if good and sep == 3 and rng.random() < 0.5:
                sep = 0
            data = data + SEP[sep]
            genuine += good
            f.write(struct.pack(">HB", len(data), sep == 3) + data)
            if sep != 3 and not good and rng.random() < 0.3:
                f.write(struct.pack(">HB", 0, 1))  # the phone went away: a gap
    out = mp(HARNESS % (NOW, str(world.ks_path), world.root["n"], world.root["e"], str(path)),
             timeout=3600)
    last = out.splitlines()[-1].split()
    assert last[0] == "done", out[-2000:]
    segs, ok, codes, suppressed, overruns = map(int, last[1:6])
    print("streams", n, "genuine", genuine, "delivered", codes, "suppressed", suppressed,
          "overruns", overruns, "results", last[6:])
    assert ok == genuine  # every genuine code passed; no fuzzed stream passed
    assert overruns > 0 and codes > n // 2


def test_fuzzed_streams_short(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 8000, seed=3)


@pytest.mark.long
def test_fuzzed_streams_full(mp, world, tmp_path):
    campaign(mp, world, tmp_path, 100_000, seed=4)

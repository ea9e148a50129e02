"""`flash.py bench reader`: tap -> verdict cost of the decision core and the journal append,
and the journal's wear and capacity, on the MicroPython unix port running the compiled
firmware (decision.mpy, journal.mpy) against the NOR flash model of the real 2 MiB journal
partition.

ESP32 estimate = host MicroPython CPU time x 50 + modelled flash time (a 32-byte page program
~0.4 ms typical for a W25Q-class SPI NOR, a 4 KiB sector erase ~45 ms typical / 400 ms worst,
done off the tap path by the pre-erase). The list lookup is measured by `bench blocklist`.
"""

import os
import subprocess
import tempfile
from pathlib import Path

from flashtool import ROOT
from flashtool.bench import CPU_FACTOR

PROGRAM_US = 400  # 32-byte page program, typical
ERASE_MS = 45  # 4 KiB sector erase, typical (400 worst case)

SNIPPET = r"""
import gc, time
from array import array
import nor, partition, journal, decision
from credential import Credential

IMG = %(img)r
SIZE = 2 * 1024 * 1024
fl = nor.NorFlash.erased(IMG, SIZE)
partition.attach(fl, (("journal", 1, 0x41, 0, SIZE),))
P = partition.Partition("journal")


class Lists:
    '''Stand-in with the ListStore method names; its lookup costs nothing (see bench
    blocklist for the real one).'''
    categories = {1: ("lost", 2, 1, 0), 3: ("health hold", 2, 3, 1)}
    seq = 9
    def lookup(self, ns, buf, n):
        return 0
    def is_stale(self, now_s):
        return False


cfg = {"station_id": 12, "direction": "entry", "lane_mode": "normal", "health_rule": True,
       "passback_s": 600, "mifare_allowed": False}
d = decision.Decider(cfg)
d.use_lists(Lists())
j = journal.Journal(P)
c = Credential()
c.kind = 1
c.set_number(b"3104000000000000")
c.valid_to = 20991231
N = %(n)d
dec = array("H", bytes(2 * N))
app = array("H", bytes(2 * N))
ticks = time.ticks_us
diff = time.ticks_diff
bytes_prog = [0]
def trace(kind, addr, n):
    if kind == 1:
        bytes_prog[0] += n
fl.trace = trace
gc.collect()
for i in range(N):
    c.number[15] = 48 + i %% 10
    c.number[14] = 48 + (i // 10) %% 10
    c.number[13] = 48 + (i // 100) %% 10
    t0 = ticks()
    v = d.decide(c, 1_795_500_000 + i, i * 2)
    t1 = ticks()
    j.append(v, d.reason, d.mode, 1_795_500_000 + i, d.key, 9, 1, d.category, 1, 12)
    t2 = ticks()
    d.admit(i * 2)
    dec[i] = min(diff(t1, t0), 65535)
    app[i] = min(diff(t2, t1), 65535)
    if i %% 100 == 99:
        j.ack(j.next_seq - 1)
    j.prepare()
def stats(a):
    # mean, p50, p99, max from a histogram (a sorted copy would not fit the 192k heap)
    hist = array("I", bytes(4 * 1024))
    for x in a:
        hist[min(x, 1023)] += 1
    out = [sum(a) // N]
    for q in (N // 2, N * 99 // 100):
        acc = 0
        for us in range(1024):
            acc += hist[us]
            if acc > q:
                break
        out.append(us)
    out.append(max(a))
    return " ".join(str(x) for x in out)


print("DECIDE", stats(dec))
print("APPEND", stats(app))
del dec, app
t = ticks()
j2 = journal.Journal(P)
print("MOUNT", diff(ticks(), t), j2.next_seq)
# steady state: appends acknowledged every 100, once the ring has wrapped
j = journal.Journal(P, %(sectors)s)
M = j.sectors * journal.PER_SECTOR
for lap in (0, 1):  # lap 0 fills the blank ring; lap 1 recycles every sector: measured
    fl.erases = fl.programs = bytes_prog[0] = 0
    for i in range(M):
        j.append(1, 0, 0, 1_795_500_000 + i, 77, 9, 1, 0, 1, 12)
        if i %% 100 == 99:
            j.ack(j.next_seq - 1)
        j.prepare()
print("WEAR", M, fl.erases, fl.programs, bytes_prog[0], journal.Journal(P).capacity(),
      j.sectors)
"""


def run(args):
    n = 2000 if args.quick else 10000
    sectors = "sectors=16" if args.quick else "None"
    with tempfile.TemporaryDirectory() as tmp:
        code = SNIPPET % {"img": os.path.join(tmp, "j.img"), "n": n, "sectors": sectors}
        script = Path(tmp) / "bench.py"
        script.write_text(code)
        exe = str(ROOT / ".venv" / "bin" / "micropython")
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % (ROOT / "build" / "host").resolve())
        r = subprocess.run([exe, "-X", "heapsize=192k", str(script)], env=env,
                           capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise SystemExit("bench reader failed:\n" + r.stdout + r.stderr)
    res = {line.split()[0]: list(map(int, line.split()[1:])) for line in r.stdout.splitlines()}
    dm, d50, d99, dmax = res["DECIDE"]
    am, a50, a99, amax = res["APPEND"]
    recs, erases, programs, nbytes, cap, ring = res["WEAR"]
    mount_us, _ = res["MOUNT"]
    print("-- tap -> verdict (MicroPython unix port, compiled firmware, %d taps) --" % n)
    print("decide()          host mean %4d us  p50 %4d  p99 %4d  max %5d" % (dm, d50, d99, dmax))
    print("journal.append()  host mean %4d us  p50 %4d  p99 %4d  max %5d" % (am, a50, a99, amax))
    cpu = dm + am
    est = cpu * CPU_FACTOR / 1000 + PROGRAM_US / 1000
    p99 = (d99 + a99) * CPU_FACTOR / 1000 + PROGRAM_US / 1000
    worst = (dmax + amax) * CPU_FACTOR / 1000 + PROGRAM_US / 1000
    print("ESP32 estimate: %.1f ms mean, %.1f ms p99, %.0f ms max (host scheduling noise "
          "included) (host CPU x %d"
          " + one %d us page program); list lookup not included (bench blocklist)" % (
              est, p99, worst, CPU_FACTOR, PROGRAM_US))
    print("-- journal wear, steady state (one lap of a wrapped ring of %d sectors, acks every "
          "100) --"
          % ring)
    print("records %d  erases %d  programs %d  bytes programmed %d" % (recs, erases, programs,
                                                                       nbytes))
    print("erases/record %.4f (budget 0.05)  programs/record %.3f  bytes/record %.1f" % (
        erases / recs, programs / recs, nbytes / recs))
    print("capacity %d records = %.1f days at 5,000 taps/day (budget >= 7)" % (cap, cap / 5000))
    print("sector erases amortised: %.2f ms/record on ESP32 at %d ms each, off the tap path "
          "(pre-erase after the gate opens)" % (erases / recs * ERASE_MS, ERASE_MS))
    print("boot scan (mount, 2 MiB partition): host %d us -> ESP32 estimate %.0f ms (x %d; "
          "flash reads not modelled)" % (mount_us, mount_us * CPU_FACTOR / 1000, CPU_FACTOR))

"""`flash.py bench blocklist`: size, bits/entry, measured false-positive rate, members found,
lookup cost on MicroPython and build time for a 1,000,000-entry list (--quick: 100,000).

The FP count runs the shared keyed hash and probe rule in CPython over fresh non-members (two
processes); the lookup cost is measured on the MicroPython unix port running the compiled
ListStore against the NOR flash model, and the ESP32 figure is the project estimate: host CPU
time x 50 (x 200 for the big-integer RSA verify) + modelled flash reads.
"""

import csv
import hashlib
import math
import os
import subprocess
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR
from flashtool.lists import blocklist as cb
from flashtool.release.keys import load_private

# SPI flash read model (ESP32, 80 MHz QIO through the cache-bypassing partition API):
# ~20 us command/setup + 512 bytes at ~40 MB/s
PAGE_READ_US = 20 + 512 / 40
_IMG = None  # the image the workers scan (set before forking)
_RANGES = ()  # members: (first index, end index, category id)


def _worker(job):
    """Scan identifiers b"<lead>%018d" % i for i in [lo, hi): for non-members (lead "9") count
    those reported in any category; for members (lead "1") count those not reported at all
    and those reported first in another category. Same rule as ListStore.lookup (the shared
    fpage.match decoder on the page khash.page_of picks)."""
    lo, hi, lead = job
    img = _IMG
    h = cb.fmt.Header(img, len(img))
    npages = h.npages
    ids = [c[0] for c in h.cats]
    match = cb.fpage.match
    kh = cb.khash
    sha = hashlib.sha256
    prefix = h.key + bytes([1, 19])
    fmt_id = lead + b"%018d"
    want = 0
    hits = missing = other = 0
    for i in range(lo, hi):
        d = sha(prefix + fmt_id % i).digest()
        a = 512 * (1 + kh.page_of(d, npages))
        mask = match(img[a: a + 512], kh.quotient(d), kh.remainder(d))
        got = ids[(mask & -mask).bit_length() - 1] if mask else 0
        if lead == b"9":
            hits += got != 0
            continue
        for first, stop, cid in _RANGES:
            if first <= i < stop:
                want = cid
        missing += got == 0
        other += got not in (0, want)
    return hits, missing, other


def scan(img, n, lead, ranges=(), procs=2):
    global _IMG, _RANGES
    _IMG = img
    _RANGES = ranges
    step = -(-n // (procs * 8))
    jobs = [(lo, min(n, lo + step), lead) for lo in range(0, n, step)]
    with get_context("fork").Pool(procs) as pool:
        res = pool.map(_worker, jobs)
    return tuple(sum(r[i] for r in res) for i in range(3))


def mixed(n, shares=((1, 0.5), (2, 0.3), (3, 0.1), (4, 0.05), (5, 0.05))):
    """Members b"1%018d" % i by index range per category: (entries, ranges)."""
    out = []
    ranges = []
    start = 0
    for cid, share in shares:
        cnt = round(n * share)
        out += [(1, b"1%018d" % i, cid) for i in range(start, start + cnt)]
        ranges.append((start, start + cnt, cid))
        start += cnt
    return out, ranges


def build_from_csv(ents, priv, workdir, fp):
    """The CLI path: CSV -> entries -> signed image; returns (image, seconds)."""
    path = workdir / "list.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for ns, ident, cid in ents:
            w.writerow((ns, ident.decode(), cid))
    t0 = time.perf_counter()
    c0 = time.process_time()
    img = cb.build_image(cb.read_entries(path), priv, seq=1, fp=fp)
    return img, (time.perf_counter() - t0, time.process_time() - c0)


MP_LOOKUP = """
import gc, time, nor, partition, hosttables
from partition import Partition
from blocklist.store import ListStore
flash = nor.NorFlash(%(flash)r, 16777216)
partition.attach(flash, hosttables.PARTITIONS)
store = ListStore(Partition, (%(n)d, %(e)d))
f = open(%(img)r, 'rb')
f.seek(0, 2)
total = f.tell()
f.seek(0)
buf = bytearray(16384)
gc.collect()
m0 = gc.mem_alloc()
t0 = time.ticks_us()
inst = store.begin(total)
held = 0
while True:
    k = f.readinto(buf)
    if not k:
        break
    inst.write(memoryview(buf)[:k])
    if not held:
        gc.collect()
        held = gc.mem_alloc() - m0
t1 = time.ticks_us()
inst.finish()
t2 = time.ticks_us()
print('install', time.ticks_diff(t1, t0), time.ticks_diff(t2, t1), flash.erases, flash.programs,
      held)
x = bytearray(19)
found = 0
spent = [0, 0]
for lead, mul, slot in ((b'1', 7919, 0), (b'8', 1, 1)):
    for i in range(%(m)d):
        x[:] = lead + b'%%018d' %% (i * mul %% %(members)d)  # not timed
        t0 = time.ticks_us()
        c = store.lookup(1, x, 19)
        spent[slot] += time.ticks_diff(time.ticks_us(), t0)
        if c:
            found += 1 if slot == 0 else 1000000
print('lookup', found, spent[0], spent[1])
"""


def mp_lookup(img_path, pub, members, m):
    from flashtool.build.mpy import build
    from sim.runner import blank_image, micropython_bin

    link, _ = build("host", quiet=True)
    with tempfile.TemporaryDirectory() as d:
        flash = Path(d) / "flash.img"
        blank_image(flash)
        script = Path(d) / "bench.py"
        script.write_text(MP_LOOKUP % {"flash": str(flash), "n": pub[0], "e": pub[1],
                                       "img": str(img_path), "members": members, "m": m})
        r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                           env=dict(os.environ, MICROPYPATH=str(link.resolve())),
                           capture_output=True, text=True, timeout=1200)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    vals = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        vals[parts[0]] = [int(x) for x in parts[1:]]
    return vals


def report(title, img, ents, ranges, fp_target, build_s, nonmembers):
    h = cb.fmt.Header(img, len(img))
    n = len(ents)
    bits = len(img) * 8 / n
    t0 = time.perf_counter()
    fps = scan(img, nonmembers, b"9")[0]
    fp_s = time.perf_counter() - t0
    _, missing, other = scan(img, n, b"1", ranges)
    rate = fps / nonmembers
    eps = cb.design_fp(img)
    print("-- %s --" % title)
    print("entries %d, categories %s" % (n, ", ".join("%s %d" % (c[5], c[4]) for c in h.cats)))
    print("image %d bytes = %.2f MiB (slot image area %.2f MiB), %.2f bits/entry" % (
        len(img), len(img) / 2 ** 20, cb.IMAGE_CAP / 2 ** 20, bits))
    print("design FP target %.1e for the whole list (one fingerprint page answers every "
          "category); %d pages" % (fp_target, h.npages))
    print("measured FP %d / %d fresh non-members = %.2e  (%s 1e-6)  [%.1f s, 2 processes]" % (
        fps, nonmembers, rate, "<=" if rate <= 1e-6 else "ABOVE", fp_s))
    print("bits/entry %.2f vs 1.55 x log2(1/eps) = %.2f with eps = %.2e, this layout's "
          "computed FP (mean over pages of n/2^(q+r); measured above)%s = %.3f x log2(1/eps)"
          % (bits, 1.55 * math.log2(1 / eps), eps,
             "" if bits <= 1.55 * math.log2(1 / eps) else "  ABOVE", bits / math.log2(1 / eps)))
    print("members checked %d (all): missing %d, reported first in another category %d"
          % (n, missing, other))
    print("build from CSV %.1f s wall, %.1f s CPU (read CSV, hash, encode pages, sign; the "
          "machine is shared, so wall time is noisy)" % build_s)


def run(args):
    n = 100_000 if args.quick else 1_000_000
    nonmembers = 1_000_000 if args.quick else 10_000_000
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cb.keygen(work, "bench")
        priv = load_private(work / "bench.pem")
        pub = cb.pubkey(priv)
        one, ranges = mixed(n, ((1, 1.0),))
        img, build_s = build_from_csv(one, priv, work, cb.DEFAULT_FP)
        report("%d entries, one category (lost_stolen)" % n, img, one, ranges, cb.DEFAULT_FP,
               build_s, nonmembers)
        (work / "one.img").write_bytes(img)
        mix, ranges = mixed(n)
        img2, build2 = build_from_csv(mix, priv, work, cb.DEFAULT_FP)
        report("%d entries, category mix 50/30/10/5/5 %%" % n, img2, mix, ranges, cb.DEFAULT_FP,
               build2, nonmembers)
        m = 200 if args.quick else 1000
        (work / "mix.img").write_bytes(img2)
        for title, path in (("one category", work / "one.img"),
                            ("5-category mix", work / "mix.img")):
            reader_figures(title, path, pub, n, m)


def reader_figures(title, path, pub, n, m):
    v = mp_lookup(path, pub, n, m)
    size = path.stat().st_size
    wr_us, fin_us, erases, programs, held = v["install"]
    found, mem_us, non_us = v["lookup"]
    print("-- on the reader, %s list (MicroPython unix port, compiled ListStore, NOR flash "
          "model) --" % title)
    print("install %d bytes: stream+program+read-back hash %.2f s host, finish (RSA-2048 "
          "verify, switch) %.3f s host; %d erases, %d programs" % (
              size, wr_us / 1e6, fin_us / 1e6, erases, programs))
    print("  RAM held by the installer: %d bytes (plus the caller's 16 KB chunk buffer)" % held)
    print("  ESP32 estimate: RSA verify %.2f s (host x %d); flash erase/program time dominates "
          "the rest (4 MiB: ~1024 x 45 ms erase + 16384 x 0.7 ms page program ~ 58 s)" % (
              fin_us / 1e6 * BIGINT_FACTOR, BIGINT_FACTOR))
    print("lookup: %d/%d members found, %d false hits in %d non-members" % (
        found % 1000000, m, found // 1000000, m))
    for tag, us in (("member", mem_us), ("non-member", non_us)):
        per = us / m
        print("  %s lookup %.1f us host CPU (incl. NOR model file reads) -> ESP32 estimate "
              "%.2f ms (x %d) + one page read %.0f us = %.2f ms" % (
                  tag, per, per * CPU_FACTOR / 1000, CPU_FACTOR, PAGE_READ_US,
                  (per * CPU_FACTOR + PAGE_READ_US) / 1000))

"""`flash.py bench blocklist [--scale quick|full|seed]`: size, bits/entry, false-positive
rate per category, members found in their own category, lookup cost on MicroPython and
build time. quick: 100,000 entries against 1 M non-members; full (default): 1,000,000 against
10 M; seed: the seed-scale list of issue 17, 15 M pass-set credentials + 1 M in the deny
categories, every member checked and 10 M non-members, plus the delta for 100,000 changes and
the compaction of list + delta, installed on the 32 MiB board's one-image store (plain, then
the delta, then rolled in segment by segment with the gate's lookups between the switches).

The list's hash key comes from --key-seed (fixed by default), so a run gives the same lists
and the same verdicts every time. FP counts and member checks run the shared keyed hash and
the reader's page decoder (lib/blocklist fpage.match) in CPython, two processes; the lookup
cost is measured on the MicroPython unix port running the compiled ListStore against the NOR
flash model. At seed scale the ESP32 figures come from instructions counted on the QEMU
Cortex-M3 build (a sample list with the seed image's categories and load, `bench device`'s
calibration) + modelled flash time, with the old rule (host CPU time x CPU_FACTOR, x
BIGINT_FACTOR for the RSA verify) beside them; the quick and full scales give the old rule
only (`bench device` counts a 1 M-entry list's lookups).
"""

import hashlib
import math
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR
from flashtool.bench.device import READ_MB_S, READ_SETUP_US
from flashtool.lists import blocklist as cb
from flashtool.release.keys import load_private

fmt = cb.fmt
# SPI flash read model (ESP32, 80 MHz QIO through the cache-bypassing partition API):
# ~20 us command/setup + 512 bytes at ~40 MB/s
PAGE_READ_US = 20 + 512 / 40
REC_READ_US = 20 + 16 / 40  # one 16-byte exact record of a binary search
DEMO_MIX = ((1, 0.5), (2, 0.3), (3, 0.1), (4, 0.05), (5, 0.05))
SEED_DENY = ((1, 0.5), (2, 0.3), (4, 0.2))  # of the 1 M deny entries
SEED_PASS = 15_000_000
SEED_DENY_N = 1_000_000
_IMG = None  # (image, header, exact records {fp8: {cid: op}}) the workers read (pre-fork)
_RANGES = ()  # members: (lead, first index, end index, category id)


def bench_key(seed):
    """The list hash key for a run: fixed by the seed, so every run builds the same list."""
    return hashlib.sha256(b"bench blocklist key %d" % seed).digest()[: fmt.KEY_LEN]


def answer(img, h, exact, d):
    """The category the reader answers for digest d: ListStore.lookup's rule (exact records
    first, then the page's sub-lists in header order), with the shared decoder."""
    marks = exact.get(d[:8])
    a = h.pages_at + fmt.PAGE * cb.khash.page_of(d, h.npages)
    page = img[a: a + fmt.PAGE]
    g = -1
    mask = first = 0
    for i, c in enumerate(h.cats):
        if c[6] != g:  # a new group: its sub-list (bit 0 = the group's first category)
            g = c[6]
            first = i
            mask = cb.fpage.match(page, h.cbits, g, d[12] | d[13] << 8,
                                  d[14] | d[15] << 8 | d[16] << 16)
        if marks and marks.get(c[0]) == fmt.OP_REMOVE:
            continue
        if mask >> (i - first) & 1:
            return c[0]
    return 0


def _worker(job):
    """Identifiers lead + b"%018d" % i for i in [lo, hi): for non-members (want None) the
    category each is reported in; for members, those not reported and those reported in
    another category than their own."""
    lo, hi, lead, member = job
    img, h, exact = _IMG
    sha = hashlib.sha256
    prefix = h.key + bytes([1, 19])
    form = lead + b"%018d"
    got = {}
    missing = other = 0
    want = 0
    for i in range(lo, hi):
        c = answer(img, h, exact, sha(prefix + form % i).digest())
        if not member:
            if c:
                got[c] = got.get(c, 0) + 1
            continue
        for ld, first, stop, cid in _RANGES:
            if ld == lead and first <= i < stop:
                want = cid
        missing += c == 0
        other += c not in (0, want)
    return got, missing, other


def scan(img, n, lead, member, procs=2, start=0):
    """Identifiers lead%018d for i in [start, n): (categories non-members are reported in,
    members missing, members in another category than _RANGES says)."""
    global _IMG
    h = fmt.Header(img, len(img))
    exact = {}
    for j in range(h.nrec):
        r = img[fmt.PAGE + j * fmt.REC_LEN: fmt.PAGE + (j + 1) * fmt.REC_LEN]
        exact.setdefault(bytes(r[:8]), {})[r[8]] = r[9]
    _IMG = (img, h, exact)
    step = -(-(n - start) // (procs * 8))
    jobs = [(lo, min(n, lo + step), lead, member) for lo in range(start, n, step)]
    with get_context("fork").Pool(procs) as pool:
        res = pool.map(_worker, jobs)
    got = {}
    for r in res:
        for c, k in r[0].items():
            got[c] = got.get(c, 0) + k
    return got, sum(r[1] for r in res), sum(r[2] for r in res)


def members(lead, n, shares, start=0):
    """n members lead%018d by index range per category: (entries, ranges)."""
    out = []
    ranges = []
    for cid, share in shares:
        cnt = round(n * share)
        out += [(1, lead + b"%018d" % i, cid) for i in range(start, start + cnt)]
        ranges.append((lead, start, start + cnt, cid))
        start += cnt
    return out, ranges


def group_bits(img):
    """Per group: bits its sub-lists fill (page headers and free space not counted)."""
    h = fmt.Header(img, len(img))
    total = [0] * h.ngroups
    for p in range(h.npages):
        a = h.pages_at + fmt.PAGE * p
        for g in range(h.ngroups):
            b = a + 4 * g
            total[g] += cb.fpage.size_bits(img[b] | img[b + 1] << 8, img[b + 2], img[b + 3],
                                           h.cbits[g])
    return total


def report(title, img, ents, ranges, stats, build_s, nonmembers):
    global _RANGES
    h = fmt.Header(img, len(img))
    n = len(ents)
    _RANGES = ranges
    t0 = time.perf_counter()
    fps = scan(img, nonmembers, b"9", False)[0]
    fp_s = time.perf_counter() - t0
    missing = other = 0
    for lead in sorted({r[0] for r in ranges}):
        top = max(r[2] for r in ranges if r[0] == lead)
        _, m, o = scan(img, top, lead, True)
        missing += m
        other += o
    used = group_bits(img)
    print("-- %s --" % title)
    print("image %d bytes = %.2f MiB, %.2f bits/entry; %d pages of %d bytes, %d exact records "
          "(member collisions the builder resolved)" % (
              len(img), len(img) / 2 ** 20, len(img) * 8 / n, h.npages, fmt.PAGE, h.nrec))
    print("  %-15s %9s %5s %8s %11s %11s %13s" % ("category", "entries", "group", "budget",
                                                  "bits/entry", "design FP", "measured FP"))
    gsize = {}
    for c in h.cats:
        gsize[c[6]] = gsize.get(c[6], 0) + c[4]
    share = len(img) * 8 / max(1, sum(used))  # headers, free bits, trailer: pro rata
    for c in h.cats:
        bits = used[c[6]] / max(1, gsize[c[6]]) * share
        k = fps.get(c[0], 0)
        print("  %-15s %9d %5d %8.0e %11.2f %11.2e %4d = %.1e" % (
            c[5], c[4], c[6], 1 / c[7], bits, stats["cat_fp"][c[0]], k, k / nonmembers))
    over = [c[5] for c in h.cats if stats["cat_fp"][c[0]] * c[7] > 1]
    print("measured over %d fresh non-members [%.0f s, 2 processes]; design FP within every "
          "category's budget: %s" % (nonmembers, fp_s, "yes" if not over else
                                     "NO (%s)" % ", ".join(over)))
    for g in range(h.ngroups):
        eps = min(1 / c[7] for c in h.cats if c[6] == g)
        n_g = gsize[g]
        if n_g:
            print("  group %d: %.2f bits/entry of sub-list = %.3f x log2(1/eps) at eps %.0e; "
                  "binary fuse (4-wise) %.2f, ribbon ~%.2f, lower bound %.2f" % (
                      g, used[g] / n_g, used[g] / n_g / math.log2(1 / eps), eps,
                      1.075 * math.ceil(math.log2(1 / eps)), 1.05 * math.log2(1 / eps),
                      math.log2(1 / eps)))
    print("members checked %d (all): missing %d, reported in another category %d" % (
        n, missing, other))
    print("build %.1f s wall, %.1f s CPU of this process (hashing runs in 2 processes: see "
          "wall); the machine is shared, so wall time is noisy" % build_s)


def timed_build(ents, priv, key, categories=None, show=False, **kw):
    t0 = time.perf_counter()
    c0 = time.process_time()
    stats = {}

    def progress(stage, done, total):
        if show and stage != "size":
            print("  [%6.1f s] %s %d/%d" % (time.perf_counter() - t0, stage, done, total),
                  file=sys.stderr, flush=True)

    img = cb.build_image(ents, priv, 1, key=key, categories=categories, stats=stats,
                         progress=progress, **kw)
    return img, stats, (time.perf_counter() - t0, time.process_time() - c0)


MP_LOOKUP = """
import gc, time, nor, partition
from partition import Partition
from blocklist.store import ListStore
SLOT = %(slot)d
flash = nor.NorFlash(%(flash)r, 2 * SLOT)
partition.attach(flash, (('bl_a', 1, 0x40, 0, SLOT), ('bl_b', 1, 0x40, SLOT, SLOT)))
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
for lead, top, mul in %(probes)r:
    found = 0
    spent = 0
    for i in range(%(m)d):
        x[:] = lead + b'%%018d' %% (i * mul %% top)  # not timed
        t0 = time.ticks_us()
        c = store.lookup(1, x, 19)
        spent += time.ticks_diff(time.ticks_us(), t0)
        if c:
            found += 1
    print('lookup', lead.decode(), found, spent)
"""


def mp_lookup(img_path, pub, probes, m):
    from flashtool.build.mpy import build
    from sim.runner import micropython_bin

    link, _ = build("host", quiet=True)
    size = img_path.stat().st_size
    slot = max(4 << 20, -(-(size + 16 * 4096) // (1 << 20)) << 20)
    with tempfile.TemporaryDirectory() as d:
        flash = Path(d) / "flash.img"
        with open(flash, "wb") as f:  # an erased chip holding two slots of this size
            block = b"\xff" * (1 << 20)
            for _ in range(2 * slot >> 20):
                f.write(block)
        script = Path(d) / "bench.py"
        script.write_text(MP_LOOKUP % {"flash": str(flash), "n": pub[0], "e": pub[1],
                                       "img": str(img_path), "slot": slot, "probes": probes,
                                       "m": m})
        r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                           env=dict(os.environ, MICROPYPATH=str(link.resolve())),
                           capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    out = {"lookup": {}}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts[0] == "lookup":
            out["lookup"][parts[1]] = (int(parts[2]), int(parts[3]))
        else:
            out[parts[0]] = [int(x) for x in parts[1:]]
    return out, slot


def reader_figures(title, path, pub, probes, m):
    v, slot = mp_lookup(path, pub, probes, m)
    size = path.stat().st_size
    wr_us, fin_us, erases, programs, held = v["install"]
    print("-- on the reader, %s (MicroPython unix port, compiled ListStore, NOR flash model "
          "with two %d MiB list slots) --" % (title, slot >> 20))
    print("install %d bytes: stream+program+read-back hash %.2f s host, finish (RSA-2048 "
          "verify, switch) %.3f s host; %d erases, %d programs" % (
              size, wr_us / 1e6, fin_us / 1e6, erases, programs))
    print("  RAM held by the installer: %d bytes (plus the caller's 16 KB chunk buffer)" % held)
    print("  ESP32 estimate: RSA verify %.2f s (host x %d); flash erase/program time dominates "
          "the rest (~%.0f s at 45 ms per 4 KiB erase + 0.7 ms per 256-byte program)" % (
              fin_us / 1e6 * BIGINT_FACTOR, BIGINT_FACTOR,
              size / 4096 * 0.045 + size / 256 * 0.0007))
    lookups(v["lookup"], m)


def lookups(got, m, reads=1, note="", counted=None, ns=None):
    """The lookup figures of a MicroPython run: {lead: (found, us for m lookups)}; with
    counted ({lead: (found, n, instructions, flash reads, read bytes)} of the same lookups on
    the QEMU Cortex-M3) the ESP32 estimate is counted instructions x ns + modelled flash reads,
    the old rule (host CPU x CPU_FACTOR) beside it; without, the old rule alone."""
    for lead, what in (("1", "deny-category members"), ("2", "pass-set members"),
                       ("9", "non-members")):
        if lead not in got:
            continue
        found, us = got[lead]
        per = us / m
        old = (per * CPU_FACTOR + reads * PAGE_READ_US) / 1000
        if counted is None:
            print("  lookup%s, %s: %d/%d listed; %.1f us host CPU (incl. NOR model reads) -> "
                  "ESP32 by the old rule %.2f ms (x %d) + %d page read(s) %.0f us = %.2f ms "
                  "(counted figures: bench device)" % (
                      note, what, found, m, per, per * CPU_FACTOR / 1000, CPU_FACTOR, reads,
                      reads * PAGE_READ_US, old))
            continue
        _, _, instr, nreads, nbytes = counted[lead]
        fl = nreads * READ_SETUP_US + nbytes / READ_MB_S
        print("  lookup%s, %s: %d/%d listed; %.1f us host CPU; ESP32 %.2f ms = %s instructions "
              "(counted) x %.1f ns + %g flash read(s) %.0f us  [old rule: %.2f ms]" % (
                  note, what, found, m, per, (instr * ns / 1000 + fl) / 1000,
                  "{:,}".format(int(round(instr, -3))), ns, nreads, fl, old))


def run(args):
    scale = getattr(args, "scale", None) or ("quick" if args.quick else "full")
    key = bench_key(getattr(args, "key_seed", 17))
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cb.keygen(work, "bench")  # signing only: the figures do not depend on this key
        priv = load_private(work / "bench.pem")
        pub = cb.pubkey(priv)
        if scale == "seed":
            return seed(work, priv, pub, key)
        n = 100_000 if scale == "quick" else 1_000_000
        nonmembers = 1_000_000 if scale == "quick" else 10_000_000
        m = 200 if scale == "quick" else 1000
        for title, shares, name in (
                ("%d entries, one category (lost_stolen)" % n, ((1, 1.0),), "one"),
                ("%d entries, demo mix 50/30/10/5/5 %%" % n, DEMO_MIX, "mix")):
            ents, ranges = members(b"1", n, shares)
            img, stats, build_s = timed_build(ents, priv, key)
            report(title, img, ents, ranges, stats, build_s, nonmembers)
            (work / (name + ".img")).write_bytes(img)
        for title, name in (("one category", "one"), ("demo mix", "mix")):
            reader_figures(title + " list", work / (name + ".img"), pub,
                           ((b"1", n, 7919), (b"9", 1 << 30, 1)), m)


def seed(work, priv, pub, key):
    """15 M pass-set credentials + 1 M deny entries (SEED_CATEGORIES), all members checked,
    10 M non-members; the delta for 100,000 changes; the compaction of list + delta; then on
    the reader, the 32 MiB board's one-image store: the list, its delta, the compaction
    rolled in."""
    deny, r1 = members(b"1", SEED_DENY_N, SEED_DENY)
    passes, r2 = members(b"2", SEED_PASS, ((6, 1.0),))
    ents = deny + passes
    del deny, passes
    print("seed scale: building %d entries (progress on stderr)" % len(ents), flush=True)
    # a segmented image for the 32 MiB board, with room for the list to grow while its daily
    # compactions keep the page count (docs/blocklist.md, "One-image store")
    img, stats, build_s = timed_build(ents, priv, key, cb.SEED_CATEGORIES, show=True,
                                      segment=cb.SEG_BYTES, room=SEED_ROOM)
    (work / "seed.img").write_bytes(img)
    report("seed scale: %d pass-set (health_ok) + %d deny entries" % (SEED_PASS, SEED_DENY_N),
           img, ents, r1 + r2, stats, build_s, 10_000_000)
    h = fmt.Header(img, len(img))
    fewest = stats["fewest_pages"]
    print("pages: the fewest that meet every budget %d (%.2f MiB of pages); built with %.0f %% "
          "room: %d pages in %d segments of %d KiB, %.2f MiB" % (
              fewest, fewest * fmt.PAGE / 2 ** 20, 100 * SEED_ROOM, h.npages, h.nseg,
              h.seg_bytes >> 10, len(img) / 2 ** 20))
    # a day's churn: 90,000 upgrades, 5,000 pass-set removals, 4,000 new deny entries,
    # 1,000 deny entries cleared
    changes = [(fmt.OP_ADD, 1, b"3%018d" % i, 6) for i in range(90_000)]
    changes += [(fmt.OP_REMOVE, 1, b"2%018d" % i, 6) for i in range(5_000)]
    changes += [(fmt.OP_ADD, 1, b"4%018d" % i, 1) for i in range(4_000)]
    changes += [(fmt.OP_REMOVE, 1, b"1%018d" % i, 1) for i in range(1_000)]
    t0 = time.perf_counter()
    delta = cb.build_delta(img, changes, priv, 2, members=ents, cap=None)
    delta_s = time.perf_counter() - t0
    (work / "delta.img").write_bytes(delta)
    dh = fmt.Header(delta, len(delta))
    state = cb.DeltaState.parse(delta, h)
    want = {}
    for op, ns, ident, cid in changes:
        want[(ns, ident)] = cid if op == fmt.OP_ADD else 0
    wrong = 0
    for (ns, ident), cid in want.items():
        got = state.listed(img, cb.khash.digest(key, ns, ident))
        wrong += next((c[0] for c in state.h.cats if c[0] in got), 0) != cid
    print("delta for %d changes (90,000 upgrades, 5,000 pass-set removals, 4,000 new and "
          "1,000 cleared deny entries): %d bytes = %.2f %% of the full image (goal <= 1 %%); "
          "%d fingerprint pages + %d exact records; built in %.1f s (all %d members checked "
          "against its pages); changed identifiers answered wrong: %d; fits the 32 MiB "
          "board's %d-byte delta area: %s" % (
              len(changes), len(delta), 100 * len(delta) / len(img), dh.npages, dh.nrec,
              delta_s, len(ents), wrong, cb.SEG_DELTA_CAP,
              "yes" if len(delta) <= cb.SEG_DELTA_CAP else "NO"))
    t0 = time.perf_counter()
    comp = cb.compact(img, ents, changes, priv, 3)
    comp_s = time.perf_counter() - t0
    del ents
    (work / "comp.img").write_bytes(comp)
    compaction_check(comp, want, comp_s)
    probes = [(1, b"1%018d" % i) for i in range(1000, SEED_DENY_N, 50_021)] + \
        [(1, b"2%018d" % i) for i in range(5000, SEED_PASS, 750_019)] + \
        [k for k in list(want)[::2500]]
    expect = [cb.lookup(comp, ns, ident) for ns, ident in probes]
    counted = counted_seed(priv, pub, key, h.npages)
    seg_figures(work, pub, fmt.Header(comp, len(comp)), probes, expect, 1000, counted)


SEED_ROOM = 0.02  # pages beyond the fewest: the pass-set grows by upgrades
SEED_BOARD = "esp32s3_gate32"


def compaction_check(comp, want, comp_s):
    """The compaction answers every changed identifier in its new category and every other
    member of the new state in its own (all of them, with the reader's decoder)."""
    global _RANGES
    h = fmt.Header(comp, len(comp))
    exact = {}
    for j in range(h.nrec):
        r = comp[fmt.PAGE + j * fmt.REC_LEN: fmt.PAGE + (j + 1) * fmt.REC_LEN]
        exact.setdefault(bytes(r[:8]), {})[r[8]] = r[9]
    wrong = sum(answer(comp, h, exact, cb.khash.digest(h.key, ns, ident)) != cid
                for (ns, ident), cid in want.items())
    # the new state: deny members but the 1,000 cleared, the pass-set but the 5,000 removed,
    # the 90,000 upgrades and 4,000 new deny entries (members() gives the category ranges)
    _RANGES = members(b"1", SEED_DENY_N, SEED_DENY)[1] + [(b"2", 0, SEED_PASS, 6),
                                                          (b"3", 0, 90_000, 6),
                                                          (b"4", 0, 4_000, 1)]
    missing = other = 0
    for lead, start, n in ((b"1", 1000, SEED_DENY_N), (b"2", 5000, SEED_PASS),
                           (b"3", 0, 90_000), (b"4", 0, 4_000)):
        _, m, o = scan(comp, n, lead, True, start=start)
        missing += m
        other += o
    print("compaction of list + delta (seq 3: same key, %d pages, %d segments): %d bytes, "
          "built in %.1f s; changed identifiers (added, moved, removed) answered other than "
          "list + delta: %d; members of the new state checked %d: missing %d, in another "
          "category %d; %d exact records (collisions and removed identifiers its pages still "
          "list)" % (
              h.npages, h.nseg, len(comp), comp_s, wrong,
              SEED_DENY_N - 1000 + SEED_PASS - 5000 + 94_000, missing, other, h.nrec))


SEG_MP = """
import gc, time, nor, partition
from partition import Partition
from blocklist.store import open_store
flash = nor.NorFlash(%(flash)r, %(size)d)
partition.attach(flash, %(table)r)
store = open_store(Partition, (%(n)d, %(e)d))
buf = bytearray(16384)
x = bytearray(19)
PROBES = %(probes)r
EXPECT = %(expect)r

def gate():
    # the gate's lookups between two segment switches: answers that differ from the list's
    bad = 0
    for i in range(len(PROBES)):
        ns, ident = PROBES[i]
        bad += store.lookup(ns, ident, len(ident)) != EXPECT[i]
    return bad

def install(name, path, first, probe=False):
    # first: the bytes of the first write (a segmented image's index: its RSA check is timed)
    f = open(path, 'rb')
    f.seek(0, 2)
    total = f.tell()
    f.seek(0)
    gc.collect()
    m0 = gc.mem_alloc()
    e0 = flash.erases
    p0 = flash.programs
    held = aside = t_index = switches = bad = 0
    done = store.done
    t0 = time.ticks_us()
    inst = store.begin(total)
    while True:
        k = f.readinto(memoryview(buf)[:first or len(buf)])
        if not k:
            break
        inst.write(memoryview(buf)[:k])
        if first:
            t_index = time.ticks_diff(time.ticks_us(), t0)
            first = 0
        if store.done != done or not held:  # a segment switched (or the first chunk)
            t1 = time.ticks_us()
            done = store.done
            switches += 1
            gc.collect()
            held = max(held, gc.mem_alloc() - m0)
            if probe:
                bad += gate()
            aside += time.ticks_diff(time.ticks_us(), t1)
    t1 = time.ticks_us()
    seq = inst.finish()
    t2 = time.ticks_us()
    f.close()
    print('install', name, total, time.ticks_diff(t1, t0) - aside, time.ticks_diff(t2, t1),
          t_index, flash.erases - e0, flash.programs - p0, held, switches, bad, seq)

def timing(name):
    for lead, top, mul in %(leads)r:
        found = 0
        spent = 0
        for i in range(%(m)d):
            x[:] = lead + b'%%018d' %% (i * mul %% top)  # not timed
            t0 = time.ticks_us()
            c = store.lookup(1, x, 19)
            spent += time.ticks_diff(time.ticks_us(), t0)
            if c:
                found += 1
        print('lookup', name, lead.decode(), found, spent)

install('list', %(img)r, %(ilen)d)
timing('list')
install('delta', %(delta)r, 0)
timing('delta')
install('roll', %(comp)r, %(ilen)d, True)
timing('roll')
print('region', store.image_cap, store.delta_cap, store.nseg, store._segb)
"""


def seg_figures(work, pub, h, probes, expect, m, counted):
    """The seed-scale list on the 32 MiB board's one-image store (its partition table, a
    32 MiB NOR model): installed plain, its delta, then the compaction rolled in with the
    gate's lookups between the segment switches; lookup cost in each state, with the ESP32
    estimates from `counted` (counted_seed) when there is one."""
    from flashtool.build.mpy import build
    from sim.runner import flash_layout, micropython_bin

    link, _ = build("host", quiet=True)
    size, table = flash_layout(SEED_BOARD)
    region = next(r for r in table if r[0] == "bl_seg")
    flash = work / "flash32.img"
    with open(flash, "wb") as f:
        block = b"\xff" * (1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    script = work / "segbench.py"
    script.write_text(SEG_MP % {
        "flash": str(flash), "size": size, "table": [tuple(r) for r in table], "n": pub[0],
        "e": pub[1], "probes": probes, "expect": expect, "m": m, "img": str(work / "seed.img"),
        "ilen": h.pages_at,
        "delta": str(work / "delta.img"), "comp": str(work / "comp.img"),
        "leads": ((b"1", SEED_DENY_N, 7919), (b"2", SEED_PASS, 104729), (b"9", 1 << 30, 1))})
    r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                       env=dict(os.environ, MICROPYPATH=str(link.resolve())),
                       capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    v = {}
    looks = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts[0] == "lookup":
            looks.setdefault(parts[1], {})[parts[2]] = (int(parts[3]), int(parts[4]))
        elif parts[0] == "install":
            v[parts[1]] = [int(x) for x in parts[2:]]
        else:
            v[parts[0]] = [int(x) for x in parts[1:]]
    cap, dcap, _, _ = v["region"]
    print("-- on the reader: the %s board (%d MiB NOR model, its partition table), the "
          "one-image store in bl_seg (%d MiB at 0x%x; MicroPython unix port, compiled) --" % (
              SEED_BOARD, size >> 20, region[4] >> 20, region[3]))
    nsec = region[4] // 4096
    print("region: %d slots of %d KiB for %d segments + 1 spare, 3 index areas of %d KiB, "
          "2 delta areas of %d bytes, 2 map-record sectors" % (
              cb.region.slots(nsec, h.seg_bytes), h.seg_bytes >> 10, h.nseg,
              cb.region.IDX_SECTORS * 4, dcap))
    for name, what in (("list", "first list (plain: no list until it is in)"),
                       ("delta", "delta for 100,000 changes"),
                       ("roll", "compaction rolled in (the old list + delta decide until each "
                        "segment's switch)")):
        total, wr_us, fin_us, idx_us, erases, programs, held, switches, bad, seq = v[name]
        print("install, %s: %d bytes, %.2f s host (stream, program, read-back hash%s), "
              "finish %.3f s; %d erases, %d programs; RAM held %d bytes + the 16 KB chunk; "
              "now seq %d" % (what, total, wr_us / 1e6, ", RSA" if name == "delta" else "",
                              fin_us / 1e6, erases, programs, held, seq))
        cpu = esp_cpu(counted, name, total, h.pages_at)
        if name == "delta":
            print("  ESP32: %s; by the old rule RSA verify %.2f s (host x %d); flash %.1f s" % (
                cpu, fin_us / 1e6 * BIGINT_FACTOR, BIGINT_FACTOR, flash_s(erases, total)))
        else:
            print("  index (%d bytes: stream, program, read back, RSA check, record) %.3f s host "
                  "(old rule %.2f s, all x %d); %d segments%s; ESP32 flash time %.1f min "
                  "(%.2f s a segment)" % (
                      h.pages_at, idx_us / 1e6, idx_us / 1e6 * BIGINT_FACTOR, BIGINT_FACTOR,
                      h.nseg,
                      "" if name == "list" else ", %d switches; the gate's %d probe lookups "
                      "(members, changed identifiers) after each answered differently from "
                      "list + delta: %d" % (switches - 1, len(probes), bad),
                      flash_s(erases, total) / 60, flash_s(erases, total) / h.nseg))
            print("  ESP32: %s" % cpu)
        lookups(looks[name], m, 1 if name != "delta" else 2,
                {"list": "", "delta": " with the delta", "roll": " after the roll"}[name],
                counted and counted["lookup"][name], counted and counted["ns"])
    print("  (seed-scale images fill %.1f %% of the region (%d bytes))" % (
        100 * v["roll"][0] / cap, cap))


# The seed list's lookups and install counted on the QEMU Cortex-M3 (the reader frozen in, as
# `bench device`): a sample list with the seed image's categories and entries per page, in a
# one-image region on the board's RAM flash, installed plain, then its delta, then rolled.
QEMU_SEG = """
import time, board, partition, hotpaths
from partition import Partition
from blocklist.store import open_store
items = hotpaths._input()
fl = board.flash
fl.erase_range(0, %(region)d)
partition.attach(fl, (("bl_seg", 1, 0x40, 0, %(region)d),))
store = open_store(Partition, (int.from_bytes(items["listn"], "big"), %(e)d))
x = bytearray(19)
ILEN = %(ilen)r  # the index: the first write (a delta is one write)
for state in ("list", "delta", "roll"):
    img = items[state]
    first = ILEN.get(state, len(img))
    t0 = time.ticks_us()
    inst = store.begin(len(img))
    inst.write(img[:first])
    t1 = time.ticks_us()
    for p in range(first, len(img), 4096):
        inst.write(img[p:p + 4096])
    inst.finish()
    t2 = time.ticks_us()
    print("IN", state, len(img), time.ticks_diff(t1, t0), time.ticks_diff(t2, t1))
    for lead in ("1", "2", "9"):
        ids = items["id" + lead]
        found = spent = 0
        r0 = fl.reads
        b0 = fl.read_bytes
        for i in range(len(ids) // 19):
            x[:] = ids[19 * i:19 * i + 19]
            t0 = time.ticks_us()
            c = store.lookup(1, x, 19)
            spent += time.ticks_diff(time.ticks_us(), t0)
            found += c != 0
        print("LK", state, lead, len(ids) // 19, found, spent, fl.reads - r0, fl.read_bytes - b0)
"""
SAMPLE_PAGES = 256  # the counted sample: 256 pages (16 segments of 8 KiB) at the seed load


def counted_seed(priv, pub, key, seed_pages, m=200):
    """The seed list's lookups and install counted on the QEMU Cortex-M3 and converted to ESP32
    time by bench device's calibration: {"lookup": {state: {lead: (found, n, instructions per
    lookup, flash reads, read bytes)}}, "install": {state: (bytes, index instructions, segment
    instructions)}, "ns": ns per instruction}; None when the QEMU build cannot be made."""
    from flashtool.bench import device
    from flashtool.build.firmware import check_qemu_toolchain, qemu

    try:
        check_qemu_toolchain()
        elf = qemu()
    except SystemExit as e:
        print("counted ESP32 figures skipped: %s (make device)" % e)
        return None
    scale = SAMPLE_PAGES / seed_pages
    deny, _ = members(b"1", round(SEED_DENY_N * scale), SEED_DENY)
    passes, _ = members(b"2", round(SEED_PASS * scale), ((6, 1.0),))
    ents = deny + passes
    nd, npass = len(deny), len(passes)
    k = round(100_000 * scale / 100)  # the day's churn, scaled: 90/5/4/1 per 100
    changes = [(fmt.OP_ADD, 1, b"3%018d" % i, 6) for i in range(90 * k)]
    changes += [(fmt.OP_REMOVE, 1, b"2%018d" % i, 6) for i in range(5 * k)]
    changes += [(fmt.OP_ADD, 1, b"4%018d" % i, 1) for i in range(4 * k)]
    changes += [(fmt.OP_REMOVE, 1, b"1%018d" % i, 1) for i in range(k)]
    img = cb.build_image(ents, priv, 1, key=key, categories=cb.SEED_CATEGORIES,
                         segment=8192, npages=SAMPLE_PAGES)
    delta = cb.build_delta(img, changes, priv, 2, members=ents, cap=None)
    comp = cb.compact(img, ents, changes, priv, 3)
    h = fmt.Header(img, len(img))
    ilen = {"list": h.pages_at, "roll": fmt.Header(comp, len(comp)).pages_at}
    items = [("list", img), ("delta", delta), ("roll", comp),
             ("listn", pub[0].to_bytes(256, "big"))]
    for lead, lo, hi in ((b"1", k, nd), (b"2", 5 * k, npass), (b"9", 0, 1 << 30)):
        step = max(1, (hi - lo) // m) if lead != b"9" else 7919
        items.append(("id" + lead.decode(), b"".join(lead + b"%018d" % (lo + i * step)
                                                     for i in range(m))))
    out = device.run_qemu(elf, QEMU_SEG % {"region": 2 << 20, "e": pub[1], "ilen": ilen},
                          device.pack_input(items))
    got = {"lookup": {}, "install": {}, "ilen": ilen}
    for line in out:
        f = line.split()
        if f[:1] == ["LK"]:
            n = int(f[3])
            got["lookup"].setdefault(f[1], {})[f[2]] = (
                int(f[4]), n, int(f[5]) * 1000 / n, int(f[6]) / n, int(f[7]) / n)
        elif f[:1] == ["IN"]:
            got["install"][f[1]] = (int(f[2]), int(f[3]) * 1000, int(f[4]) * 1000)
    got["ns"] = device.calibration(device.count_calibration(elf))[2]
    print("ESP32 estimates below: instructions counted on the QEMU Cortex-M3 (the reader frozen "
          "in, `bench device`) on a sample list with the seed image's categories and load (%d "
          "entries in %d pages, its delta for %d changes and their compaction, in a one-image "
          "region), x %.2f ns per instruction (bench device's calibration), + modelled flash "
          "time; the old rule (host CPU x %d, x %d for RSA) beside them" % (
              len(ents), SAMPLE_PAGES, len(changes), got["ns"], CPU_FACTOR, BIGINT_FACTOR))
    return got


def esp_cpu(counted, name, total, index_len):
    """The ESP32 CPU time of an install of `total` bytes, from the counted sample's: its index
    (or a delta's streaming) as counted, its segments (or a delta's finish) per byte."""
    if counted is None:
        return "no counted figures (make device)"
    nbytes, first, rest = counted["install"][name]
    ns = counted["ns"]
    if name == "delta":
        return ("stream and hash %.2f s + RSA verify and switch %.2f s (counted on the sample's "
                "%d-byte delta, %s instructions per byte streamed)" % (
                    first / nbytes * total * ns / 1e9, rest * ns / 1e9, nbytes,
                    "{:,}".format(round(first / nbytes))))
    ilen = counted["ilen"][name]
    per = rest / (nbytes - ilen)
    return ("index with its RSA check %.2f s; segments (stream, program, read back, hash, "
            "switch records) %.0f s CPU = %s instructions a byte (counted on a %d-page sample)"
            % (first * ns / 1e9, per * (total - index_len) * ns / 1e9, "{:,}".format(round(per)),
               SAMPLE_PAGES))


def flash_s(erases, nbytes):
    """ESP32 flash time: 45 ms per 4 KiB erase + 0.7 ms per 256-byte program (datasheet
    typicals)."""
    return erases * 0.045 + nbytes / 256 * 0.0007

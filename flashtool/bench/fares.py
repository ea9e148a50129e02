"""`flash.py bench fares`: the whole entry and the whole exit tap of a fare gate (poll, SELECT,
READ BINARY x2, READ RECORD, INITIALIZE, PSAM MAC1, UPDATE CAPP, DEBIT, PSAM MAC2 check,
torn-log entry, journal x2, gate), split into NFC (PN532 wire, RF and card time; the reader
waits on the chip's UART or P70_IRQ), SAM wire (T=0 characters at the negotiated rate), SAM
processing (the PSAM simulator's stated model) and CPU.

The CPU is counted: each row's lanes also record a session (boards/host/workloads/farerec.py:
both chips' UART bytes, the PSAM's pins and the points where the reader waited, in order),
which the QEMU Cortex-M3 build replays through the reader's own objects (hotpaths.fare_taps)
and counts in executed instructions, converted with the calibration of
docs/device-figures.md (NS_PER_INSTR), plus the tap's flash programs (torn-log entry, two
journal records) at the modelled program time. The host MicroPython CPU time of the emulated
reader is printed beside it, converted by the calibration's bytecode range (x 94 - x 160,
what the estimate used before the count) and by the old rule (x CPU_FACTOR), as comparisons.
Budget: whole entry or exit <= 300 ms p95 (DB11/T 1164.6), aim 200; the row of the
production nfc_baud (config.DEFAULTS) is the budget's row.
"""

import re
import shutil
import statistics
import struct
import tempfile
from pathlib import Path

from flashtool import ROOT
from flashtool.bench import CPU_FACTOR, NS_PER_INSTR
from flashtool.fares.lane import Lane
from sim import cards, pboc
from sim.runner import WORKLOADS


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _run(lane, make_card, entry, taps):
    """Run workload `entry` (with faretap) on lane's reader, presenting card i on "fare:present
    i" and clearing the field on "fare:remove"; returns (output lines, [(sam wire µs, sam
    processing µs)] per tap)."""
    slot = lane.slot
    seen = [0]
    marks = []
    per_tap = []

    def hook(now):
        ev = list(lane.hw.events)
        for _, text in ev[seen[0]:]:
            if text.startswith("fare:present"):
                lane.nfc.field.present(make_card(int(text.split()[1])), at_us=now)
                marks.append((slot.wire_us, slot.proc_us))
            elif text == "fare:remove":
                w, p = marks[-1]
                per_tap.append((slot.wire_us - w, slot.proc_us - p))
                lane.nfc.field.clear()
        seen[0] = len(ev)

    lane.hw.hooks.append(hook)
    for name in (entry, "faretap"):
        shutil.copy(WORKLOADS / (name + ".py"), lane.dir / (name + ".py"))
    try:
        code, lines = lane.reader.run(entry=entry, extra_path=lane.dir,
                                      settings={"taps": taps}, timeout=600)
    finally:
        lane.hw.hooks.remove(hook)
    if code or any(ln.startswith("NO PSAM") for ln in lines):
        raise SystemExit("fare workload %s failed (%s):\n%s" % (entry, code,
                                                                "\n".join(lines[-30:])))
    return lines, per_tap


def bench_lane(lane, make_card, taps):
    """[(el_us, idle_us, sam_wire_us, sam_proc_us)] per tap, on lane's reader."""
    lines, per_tap = _run(lane, make_card, "farewl", taps)
    rows = []
    for line in lines:
        if line.startswith("TAP "):
            f = dict(x.split("=") for x in line.split()[2:])
            rows.append((int(f["el_us"]), int(f["idle_us"])))
    return [(el, idle, w, p) for (el, idle), (w, p) in zip(rows, per_tap)]


def record_lane(lane, make_card, pre, taps=5):
    """One session of lane's reader recorded (boards/host/workloads/farerec.py) as the QEMU
    replay's input items (hotpaths.fare_taps): pre + ".rec" the record, ".now" the RTC at each
    tap, ".cfg" the reader's config, ".tbl" the fare table, ".sam" the slot's clock and echo."""
    lines, _ = _run(lane, make_card, "farerec", taps)
    rec, nows, sam = b"", [], None
    for line in lines:
        f = line.split()
        if f[:1] == ["REC"]:
            rec += bytes.fromhex(f[1])
        elif f[:1] == ["NOW"]:
            nows.append(int(f[2]))
        elif f[:1] == ["SAM"]:
            sam = struct.pack("<IB", int(f[1]), int(f[2]))
    if "TAPS %d" % taps not in lines or len(nows) != taps or sam is None:
        raise SystemExit("recording the fare session failed:\n" + "\n".join(lines[-30:]))
    put = lane.dir / "put"
    return [(pre + ".rec", rec), (pre + ".now", struct.pack("<%dI" % taps, *nows)),
            (pre + ".cfg", (put / "config.json").read_bytes()),
            (pre + ".tbl", (put / "fares.bin").read_bytes()), (pre + ".sam", sam)]


CALIBRATED_HIGH = 160  # ESP32 / host time, bytecode: the calibration's range (device-figures)
CALIBRATED_LOW = 94


def split(rows):
    """Per tap in ms: cpu, nfc, sam wire, sam processing, ESP32 estimate (calibrated, high),
    the same at the low end of the calibration, and by the old rule."""
    out = []
    for el, idle, w, p in rows:
        cpu = (el - idle) / 1000
        rest = idle / 1000
        out.append((cpu, (idle - w - p) / 1000, w / 1000, p / 1000,
                    cpu * CALIBRATED_HIGH + rest, cpu * CALIBRATED_LOW + rest,
                    cpu * CPU_FACTOR + rest))
    return out


def record_fares(tmp, baud=115200):
    """The replay's input for a CPU card (3DES) at an entry and an exit gate (`bench device`,
    test_device): two sessions recorded on fresh lanes, the exit's cards those that entered."""
    issuer = pboc.IssuerKeys.from_seed("bench-fares")
    made = {}

    def card(i):
        if i not in made:
            made[i] = cards.tunion("3106%012d" % i, issuer=issuer)
        return made[i]

    items = []
    for pre, station, direction in (("fe", 101, "entry"), ("fx", 104, "exit")):
        lane = Lane(Path(tmp) / direction, station, direction, issuer, Path(tmp) / "keys",
                    cfg={"nfc_baud": baud}, epoch=1_767_000_000 + (900 if station == 104 else 0))
        try:
            items += record_lane(lane, card, pre)
        finally:
            lane.close()
    return items


def count_taps(elf, blob):
    """Every hot path on the QEMU Cortex-M3 build (hotpaths.run), the recorded fare sessions
    replayed last, with the other paths' state live as on a reader in service (list store,
    journal, ride-code verifiers): {"entry"|"exit": (instructions of the longest counted tap,
    their mean, flash ms, waits, heap bytes allocated)} of the counted taps (recorded cards
    but the first), and "gc": (instructions of a collection, bytes free
    after it)."""
    from flashtool.bench import device

    lines = device.run_qemu(elf, "import hotpaths\nhotpaths.run()", blob)
    hot, _, mem = device._parse(lines)
    out = {"gc": (hot["gc_collect"][1] * 1000 / hot["gc_collect"][0], mem[0])}
    for line in lines:
        f = line.split()
        if f[:1] == ["FARE"]:
            w = dict(x.split("=") for x in f[2:])
            if w["extra"] != "0" or w["missed"] != "0" or int(w["alloc"]) < 0:
                raise SystemExit("the replay of %s did not follow the recording (or a "
                                 "collection ran in it): %s" % (f[1], line))
            reps, t, reads, rbytes, programs = hot[f[1]][:5]
            out[f[1][len("fare_"):]] = (
                int(w["max_us"]) * 1000, t * 1000 / reps,
                device.flash_us(reads, rbytes, programs) / reps / 1000, int(w["waits"]),
                int(w["alloc"]))
    return out


def production_baud():
    """config.DEFAULTS' nfc_baud: the budget's row."""
    text = (ROOT / "firmware" / "config.py").read_text()
    return int(re.search(r'"nfc_baud": (\d+),', text).group(1))


def run(args):
    from flashtool.bench import device
    from flashtool.build.firmware import check_qemu_toolchain, qemu

    check_qemu_toolchain()
    elf = qemu(quiet=True)
    base = device.input_items(*device.record_nfc())
    taps = 8 if args.quick else 40
    issuer = pboc.IssuerKeys.from_seed("bench-fares")
    print("ESP32 estimate = the tap's CPU counted on the QEMU Cortex-M3 build (the whole tap "
          "replayed from a recording of both chips, with every other hot path's state live; "
          "instructions x %.1f ns: docs/device-figures.md) + its flash programs + modelled NFC "
          "(PN532 wire + RF + card) + SAM wire (T=0 at the PPS rate) + SAM processing (stated "
          "model: MAC1 12 ms 3DES / 16 ms SM4, MAC2 5 / 7 ms) + a garbage collection (GC) "
          "if the tap allocates more than a collected heap has free; instr and CPU: the "
          "longest of 4 counted taps (p50 uses their mean). Comparisons: host MicroPython "
          "CPU x %d and x %d (the calibration's bytecode range) and x %d (old rule) + the "
          "same modelled times. %d taps per row, ms"
          % (NS_PER_INSTR, CALIBRATED_HIGH, CALIBRATED_LOW, CPU_FACTOR, taps))
    print("%-6s %-15s %7s %9s %6s %5s %6s %5s %5s %5s %6s %6s %6s %6s %6s" % (
        "tap", "card, HSU", "host us", "instr", "CPU", "flash", "NFC", "SAMw", "SAMp", "GC",
        "p50", "p95", "x160", "x94", "old"))
    makers = [("cpu-3des", 115200, lambda n: cards.tunion("3106%012d" % n, issuer=issuer)),
              ("cpu-sm4", 115200, lambda n: cards.tunion("3107%012d" % n, issuer=issuer,
                                                         alg=pboc.ALG_SM4)),
              ("phone", 115200, lambda n: cards.phone("3108%012d" % n, seed=n, issuer=issuer)),
              ("cpu-3des", 460800, lambda n: cards.tunion("3111%012d" % n, issuer=issuer)),
              ("phone", 460800, lambda n: cards.phone("3112%012d" % n, seed=n, issuer=issuer)),
              ("cpu-3des", 921600, lambda n: cards.tunion("3109%012d" % n, issuer=issuer)),
              ("phone", 921600, lambda n: cards.phone("3110%012d" % n, seed=n, issuer=issuer))]
    worst = {}
    notes = []
    with tempfile.TemporaryDirectory(prefix="bench-fares-") as tmp:
        tmp = Path(tmp)
        for name, baud, make in makers:
            made = {}

            def card(i, make=make, made=made):
                if i not in made:
                    made[i] = make(i)
                return made[i]

            items, per = [], {}
            for run_, (station, direction) in enumerate(((101, "entry"), (104, "exit")) * 2):
                lane = Lane(tmp / ("%s-%d-%s-%d" % (name, baud, direction, run_)), station,
                            direction, issuer, tmp / "keys", cfg={"nfc_baud": baud},
                            epoch=1_767_000_000 + (900 if station == 104 else 0))
                try:
                    if run_ < 2:
                        per[direction] = split(bench_lane(lane, card, taps))
                    else:  # five more cards recorded: the first warms the replay, four count
                        items += record_lane(lane, lambda i, card=card: card(1000 + i),
                                             "fe" if direction == "entry" else "fx")
                finally:
                    lane.close()
            counted = count_taps(elf, device.pack_input(base + items))
            gc_instr, gc_free = counted["gc"]
            for direction in ("entry", "exit"):
                s = per[direction]
                instr, mean, flash_ms, waits, alloc = counted[direction]
                cpu = instr * NS_PER_INSTR / 1e6 + flash_ms  # the longest counted tap
                cpu50 = mean * NS_PER_INSTR / 1e6 + flash_ms
                # the NFC task collects after each tap (nfc_task.run): a tap meets a
                # collection only when it allocates more than a collected heap has free
                gc_ms = gc_instr * NS_PER_INSTR / 1e6 if alloc > gc_free else 0.0
                rest = [x[1] + x[2] + x[3] for x in s]
                p95 = [cpu + gc_ms + _pct(rest, 95)] + [_pct([x[k] for x in s], 95)
                                                       for k in (4, 5, 6)]
                w = worst.setdefault(baud, [0.0] * 4)
                worst[baud] = [max(a, b) for a, b in zip(w, p95)]
                notes.append((waits, alloc))
                print("%-6s %-15s %7.0f %9s %6.1f %5.1f %6.1f %5.1f %5.1f %5.1f %6.1f %6.1f "
                      "%6.1f %6.1f %6.1f" % (
                          direction, "%s %d" % (name, baud),
                          1000 * statistics.median(x[0] for x in s),
                          "{:,}".format(int(float("%.3g" % instr))), cpu - flash_ms, flash_ms,
                          statistics.median(x[1] for x in s), statistics.median(x[2] for x in s),
                          statistics.median(x[3] for x in s), gc_ms, cpu50 + _pct(rest, 50),
                          *p95))
    print("      per counted tap: %s waits on the chips, %s bytes allocated; a collection "
          "with every hot path's state live: %s instructions = %.1f ms, %d bytes free after "
          "it (the NFC task collects after each tap, off the tap's path)"
          % ("-".join(str(f(w for w, _ in notes)) for f in (min, max)),
             "-".join(str(f(a for _, a in notes)) for f in (min, max)),
             "{:,}".format(int(float("%.3g" % gc_instr))), gc_instr * NS_PER_INSTR / 1e6,
             gc_free))
    prod = production_baud()
    for baud, (w, hi, lo, old) in sorted(worst.items(), key=lambda kv: kv[0] != prod):
        print("      budget: whole entry / exit <= 300 ms p95 (aim 200), HSU %d%s -> worst p95 "
              "%.1f ms counted: %s%s (host CPU x %d: %.1f, x %d: %.1f, old rule: %.1f)"
              % (baud, " (nfc_baud default: the budget's row)" if baud == prod else "", w,
                 "MET" if w <= 300 else "NOT MET", ", aim met" if w <= 200 else "",
                 CALIBRATED_HIGH, hi, CALIBRATED_LOW, lo, old))

"""`flash.py bench fares`: the whole entry and the whole exit tap of a fare gate (poll, SELECT,
READ BINARY x2, READ RECORD, INITIALIZE, PSAM MAC1, UPDATE CAPP, DEBIT, PSAM MAC2 check,
journal x3, gate), split into NFC (PN532 wire, RF and card time, with the 1 ms polling waits),
SAM wire (T=0 characters at the negotiated rate), SAM processing (the PSAM simulator's stated
model) and CPU (host MicroPython time). ESP32 estimate = CPU x CPU_FACTOR + the modelled rest.
Budget: whole entry or exit <= 300 ms p95 (DB11/T 1164.6), aim 200.
"""

import shutil
import statistics
import tempfile
from pathlib import Path

from flashtool.bench import CPU_FACTOR
from flashtool.fares.lane import Lane
from sim import cards, pboc
from sim.runner import WORKLOADS


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_lane(lane, make_card, taps):
    """[(el_us, idle_us, sam_wire_us, sam_proc_us)] per tap, on lane's reader."""
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
    shutil.copy(WORKLOADS / "farewl.py", lane.dir / "farewl.py")
    code, lines = lane.reader.run(entry="farewl", extra_path=lane.dir,
                                  settings={"taps": taps}, timeout=600)
    if code or any(ln.startswith("NO PSAM") for ln in lines):
        raise SystemExit("fare bench workload failed (%s):\n%s" % (code, "\n".join(lines[-30:])))
    rows = []
    for line in lines:
        if line.startswith("TAP "):
            f = dict(x.split("=") for x in line.split()[2:])
            rows.append((int(f["el_us"]), int(f["idle_us"])))
    lane.hw.hooks.remove(hook)
    return [(el, idle, w, p) for (el, idle), (w, p) in zip(rows, per_tap)]


def split(rows):
    """Per tap in ms: cpu, nfc, sam wire, sam processing, ESP32 estimate."""
    out = []
    for el, idle, w, p in rows:
        cpu = (el - idle) / 1000
        out.append((cpu, (idle - w - p) / 1000, w / 1000, p / 1000,
                    cpu * CPU_FACTOR + idle / 1000))
    return out


def run(args):
    taps = 8 if args.quick else 40
    issuer = pboc.IssuerKeys.from_seed("bench-fares")
    print("ESP32 estimate = host MicroPython CPU x %d + modelled NFC (PN532 wire + RF + card, "
          "1 ms polling waits included) + SAM wire (T=0 at the PPS rate) + SAM processing "
          "(stated model: MAC1 12 ms 3DES / 16 ms SM4, MAC2 5 / 7 ms); %d taps per row, ms"
          % (CPU_FACTOR, taps))
    print("%-6s %-17s %7s %7s %9s %9s %11s %11s" % (
        "tap", "card, PN532 HSU", "CPU p50", "NFC p50", "SAM wire", "SAM proc", "ESP32 p50",
        "ESP32 p95"))
    makers = [("cpu-3des", 115200, lambda n: cards.tunion("3106%012d" % n, issuer=issuer)),
              ("cpu-sm4", 115200, lambda n: cards.tunion("3107%012d" % n, issuer=issuer,
                                                         alg=pboc.ALG_SM4)),
              ("phone", 115200, lambda n: cards.phone("3108%012d" % n, seed=n, issuer=issuer)),
              ("cpu-3des", 921600, lambda n: cards.tunion("3109%012d" % n, issuer=issuer)),
              ("phone", 921600, lambda n: cards.phone("3110%012d" % n, seed=n, issuer=issuer))]
    worst = {115200: 0.0, 921600: 0.0}
    with tempfile.TemporaryDirectory(prefix="bench-fares-") as tmp:
        tmp = Path(tmp)
        for name, baud, make in makers:
            made = {}

            def card(i, make=make, made=made):
                if i not in made:
                    made[i] = make(i)
                return made[i]

            for station, direction in ((101, "entry"), (104, "exit")):
                lane = Lane(tmp / ("%s-%d-%s" % (name, baud, direction)), station, direction,
                            issuer, tmp / "keys", cfg={"nfc_baud": baud},
                            epoch=1_767_000_000 + (900 if station == 104 else 0))
                try:
                    s = split(bench_lane(lane, card, taps))
                finally:
                    lane.close()
                est = [x[4] for x in s]
                worst[baud] = max(worst[baud], _pct(est, 95))
                print("%-6s %-17s %7.2f %7.1f %9.1f %9.1f %11.1f %11.1f" % (
                    direction, "%s %d" % (name, baud), statistics.median(x[0] for x in s),
                    statistics.median(x[1] for x in s), statistics.median(x[2] for x in s),
                    statistics.median(x[3] for x in s), _pct(est, 50), _pct(est, 95)))
    for baud, w in worst.items():
        print("      budget: whole entry / exit <= 300 ms p95 (aim 200), HSU %d -> worst p95 "
              "%.1f ms %s" % (baud, w, "MET" if w <= 300 else "NOT MET"))

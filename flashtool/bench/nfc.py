"""`flash.py bench nfc`: per-tap latency of the NFC read, for each PN532 transport.

The reader (MicroPython, compiled firmware, accelerated virtual clock) runs `NfcReader.poll_once`
for a card presented by the simulator; a tap is one poll that finds the card: list, SELECT,
READ BINARY x2, InRelease. For each tap it reports host CPU time (virtual elapsed minus the
idle time the clock skipped) and the modelled wire + RF wait (the skipped time, which includes
1 ms polling granularity: conservative). ESP32 estimate = CPU x 50 + wire/RF; on I2C and SPI
the bus transfer time (bytes x bit time, counted by the simulator) is added because the
simulator answers bus transactions without consuming reader time.
"""

import tempfile
from pathlib import Path

from flashtool import use_host_board

CPU_FACTOR = 50

# Test/bench workload run on the reader (entry "nfcload"): modes in board.settings["nfc_mode"].
WORKLOAD = r'''
import asyncio
import board
import slog
from nfc_task import NfcReader


def _line(c):
    return "CRED kind=%d num=%s type=%d from=%d to=%d conc=%d clash=%d weak=%d err=%d uid=%d" % (
        c.kind, c.ident().decode(), c.card_type, c.valid_from, c.valid_to, c.concession_to,
        int(c.clash), int(c.weak), c.error, c.uid_len)


def run():
    slog.set_clock(board.clock)
    s = board.settings
    cfg = {"mifare_allowed": bool(s.get("nfc_mifare")), "nfc_poll_ms": s.get("nfc_poll", 100),
           "nfc_baud": s.get("nfc_baud", 115200)}
    r = NfcReader(board.nfc_bus(), board.nfc_reset(), board.clock, cfg, board.nfc_irq())
    mode = s.get("nfc_mode", "task")
    got = []

    async def on(c):
        got.append(1)
        print(_line(c))

    async def task():
        asyncio.create_task(r.run(on))
        stop = s.get("nfc_stop_ms", 0)
        t0 = board.clock.ticks_ms()
        last = t0
        maxgap = 0
        while True:
            await asyncio.sleep_ms(20)
            now = board.clock.ticks_ms()
            maxgap = max(maxgap, board.clock.ticks_diff(now, last))
            last = now
            if stop and board.clock.ticks_diff(board.clock.ticks_ms(), t0) > stop:
                break
            if len(got) >= s.get("nfc_taps", 1000000):
                break
        print("STATS polls=%d taps=%d clashes=%d resets=%d errors=%d timeouts=%d held=%d" % (
            r.stats["polls"], r.stats["taps"], r.stats["clashes"], r.stats["resets"],
            r.stats["errors"], r.stats["timeouts"], r.stats["held"]))
        print("LOOP maxgap=%d" % maxgap)  # how long the NFC task ever held the event loop
        d = r.drv
        print("DRV commands=%d stale=%d resent=%d bad=%d timeouts=%d aborts=%d resets=%d" % (
            d.commands, d.stale, d.resent, d.bad_frames, d.timeouts, d.aborts, d.resets))

    async def bench():
        clock = board.clock
        m = board.maintenance()
        await r.init()
        for i in range(s.get("nfc_taps", 10)):
            m.write("nfc:present %d" % i)
            n = len(got)
            while len(got) == n:
                t0 = clock.ticks_us()
                k0 = clock.skipped_us
                await r.poll_once(on)
            el = clock.ticks_diff(clock.ticks_us(), t0)
            idle = clock.ticks_diff(clock.skipped_us, k0)
            print("TAP %d el_us=%d idle_us=%d" % (i, el, idle))
            m.write("nfc:remove")
            await r.poll_once(on)

    asyncio.run(task() if mode == "task" else bench())
'''


def write_workload(directory):
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "nfcload.py").write_text(WORKLOAD)
    return d


def attach_presenter(reader, sim, make_card):
    """A hardware hook: presents make_card(i) / clears the field when the workload asks
    (maintenance events), at the reader's virtual time of its next request. Returns the list
    of simulator bus bytes per tap (from present to remove)."""
    seen = [0]
    per_tap = []
    mark = [0]

    def hook(now):
        ev = list(reader.hw.events)
        for _, text in ev[seen[0]:]:
            if text.startswith("nfc:present"):
                sim.field.present(make_card(int(text.split()[1])), at_us=now)
                mark[0] = sim.bus_bytes
            elif text == "nfc:remove":
                sim.field.clear()
                per_tap.append(sim.bus_bytes - mark[0])
        seen[0] = len(ev)

    reader.hw.hooks.append(hook)
    return per_tap


def bench_transport(transport, taps, make_card, baud=115200):
    use_host_board()
    from sim import pn532
    from sim.runner import Reader

    with tempfile.TemporaryDirectory(prefix="bench-nfc-") as tmp:
        extra = write_workload(Path(tmp) / "extra")
        r = Reader(workdir=Path(tmp) / "reader", nfc=transport)
        try:
            sim = pn532.install(r.hw, transport)
            per_tap = attach_presenter(r, sim, make_card)
            code, lines = r.run(entry="nfcload", extra_path=extra, timeout=600, settings={
                "nfc_mode": "bench", "nfc_taps": taps, "nfc_baud": baud})
            if code:
                raise SystemExit("bench workload failed (%s):\n%s"
                                 % (code, "\n".join(lines[-30:])))
            rows = []
            for line in lines:
                if line.startswith("TAP "):
                    f = dict(x.split("=") for x in line.split()[2:])
                    rows.append((int(f["el_us"]), int(f["idle_us"])))
            per = getattr(sim.port, "BYTE_US", 0.0)
            bus = [n * per for n in per_tap] or [0.0]
            return rows, bus
        finally:
            r.close()


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(args):
    use_host_board()
    from sim import cards

    taps = 8 if args.quick else 40
    print("per tap = one poll that finds the card: InListPassiveTarget, SELECT, READ BINARY 15 "
          "and 17, InRelease")
    print("ESP32 estimate = host MicroPython CPU x %d + modelled wire/RF wait (+ bus time on "
          "I2C/SPI); figures in ms, %d taps per row; host timings are noisy" % (CPU_FACTOR, taps))
    print("%-10s %-6s %9s %9s %9s %9s %11s %11s" % (
        "bus", "card", "cpu p50", "cpu p95", "wire p50", "wire p95", "ESP32 p50", "ESP32 p95"))
    makers = {"cpu": lambda i: cards.normal("31040000%08d" % i),
              "phone": lambda i: cards.phone("31040000%08d" % i, seed=i)}
    p50 = {}
    for transport, baud in (("hsu", 115200), ("hsu", 921600), ("i2c", 0), ("spi", 0)):
        label = "%s %d" % (transport, baud) if baud else transport
        for name, make in makers.items():
            if name == "phone" and transport != "hsu":
                continue
            rows, bus = bench_transport(transport, taps, make, baud or 115200)
            cpu = [(el - idle) / 1000 for el, idle in rows]
            wire = [idle / 1000 + bus[min(i, len(bus) - 1)] / 1000
                    for i, (el, idle) in enumerate(rows)]
            est = [c * CPU_FACTOR + w for c, w in zip(cpu, wire)]
            p50[label, name] = (_pct(wire, 50), _pct(est, 50))
            print("%-10s %-6s %9.2f %9.2f %9.2f %9.2f %11.1f %11.1f" % (
                label, name, _pct(cpu, 50), _pct(cpu, 95), _pct(wire, 50), _pct(wire, 95),
                _pct(est, 50), _pct(est, 95)))
            if label == "hsu 115200" and name == "cpu":
                goal = _pct(est, 95)
                print("           goal: CPU-card read on HSU 115200 <= 150 ms p95 -> %.1f ms %s"
                      % (goal, "MET" if goal <= 150 else "NOT MET"))
    for name in makers:
        slow, fast = p50["hsu 115200", name], p50["hsu 921600", name]
        print("HSU at 921600 instead of 115200 (SetSerialBaudRate, config nfc_baud), %s card: "
              "wire p50 %.2f -> %.2f ms, ESP32 p50 %.1f -> %.1f ms" % (
                  name, slow[0], fast[0], slow[1], fast[1]))

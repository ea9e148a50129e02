"""`flash.py bench device`: the reader's hot paths counted in executed instructions on a 32-bit
MCU (the QEMU Cortex-M3 build, boards/qemu_mps2, `-icount shift=0`), converted to ESP32 time by
a calibration against MicroPython's own benchmarks measured on an ESP32, next to the old rule
(host MicroPython CPU x 50, x 200 for big integers) for the very same work.

The inputs (a signed list, ride codes, a signed manifest, one recorded PN532 tap) are made with
fixed keys and seeds, so the counts are the same on every run; docs/device-figures.md explains
the calibration and every number it uses.
"""

import hashlib
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from flashtool import use_host_board
from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR
from flashtool.codes.rsakeys import seeded_rsa

NOW = 1_795_487_847  # the benches' fixed clock (2026-11-24)
ESP32_MHZ = 160  # the ESP-IDF default clock, which both ESP32 boards keep (no sdkconfig.240mhz)
# SPI flash model, as bench blocklist and bench reader use it: a 512-byte page read through the
# partition API ~20 us + 512 B at 40 MB/s; a page program 400 us typical (W25Q-class NOR).
READ_SETUP_US = 20
READ_MB_S = 40
PROGRAM_US = 400

# ESP32 (original, ESP-IDF default clock) running MicroPython's tests/perf_bench with N=100
# M=100 after the esp32 port's performance work (VM and map lookup in IRAM, -O2, fast paths),
# the configuration v1.28.0 still builds: scores from micropython/micropython PR #7850
# ("esp32: enable some optimisations", column esp32-perf). score = 1e6 * norm / time_us.
ESP32_SCORES = {"bm_fannkuch": 71.63, "bm_hexiom": 31.12, "bm_nqueens": 2232.22,
                "bm_pidigits": 591.97, "misc_aes": 334.52}
# A real Cortex-M4 (PYBv1.1, STM32F405 at 168 MHz) on the same benchmarks, micropython PR
# #16015 (column master, 2024): checks that counted instructions track a real chip's cycles.
PYBV11_SCORES = {"bm_fannkuch": 73.26, "bm_hexiom": 46.13, "bm_nqueens": 4195.70,
                 "bm_pidigits": 696.50}
PYBV11_MHZ = 168


# --- inputs ---------------------------------------------------------------------------------
def fixed_rsa(seed, e=3):
    """An RSA-2048 key made from a seed: counted instructions of a verify depend a little on
    the modulus, so the benchmark's keys are the same on every run."""
    return seeded_rsa(seed, e)


def pack_input(items):
    """The workloads' input blob (boards/host/workloads/hotpaths.py reads it): named items."""
    body = b""
    for name, data in items:
        data = bytes(data)
        body += name.encode().ljust(8, b"\0") + struct.pack("<I", len(data)) + data
        body += bytes(-len(data) % 4)
    return b"HOT1" + struct.pack("<II", len(items), 12 + len(body)) + body


def code_items():
    """The ride codes' input: a key set, RC2 codes of 8 riders with RSA-2048 e = 3 keys (each
    its own certificate: cold) and 8 refreshes of one (warm), the same with P-256 keys and as
    RC1 codes (day-key MAC, for the comparison)."""
    from flashtool.codes import issuer as cc
    from flashtool.codes import rider

    root, _ = fixed_rsa("root")
    iss, _ = fixed_rsa("issuer")
    day = cc.day_key(b"bench-day-master", NOW // 86400)  # RC1, for the comparison
    items = [("ks", cc.make_keyset(root, 1, {1: iss}, [], {NOW // 86400: day})),
             ("rootn", root["n"].to_bytes(256, "big"))]
    certs = [cc.make_cert(iss, 1, "31047700%012d" % i, 1, NOW - 86400, NOW + 86400)
             for i in range(8)]
    codes = [cc.make_code(c, cc.user_key(day, c), NOW - 5, 1) for c in certs]
    codes += [cc.make_code(certs[0], cc.user_key(day, certs[0]), NOW - 5, 100 + i)
              for i in range(8)]
    items.append(("codes1", b"\n".join(codes)))
    for item, alg in (("codes", cc.layout.ALG_RSA3), ("codesec", cc.layout.ALG_P256)):
        riders = [rider.rider_key(seed="bench-%d" % i, alg=alg) for i in range(8)]
        certs = [cc.make_cert2(iss, 1, "31047700%012d" % i, 1, NOW - 86400, NOW + 86400,
                               rider.public_bytes(r)) for i, r in enumerate(riders)]
        codes = [rider.make_code2(c, r, NOW - 5, 1, deterministic=True)
                 for c, r in zip(certs, riders)]
        codes += [rider.make_code2(certs[0], riders[0], NOW - 5, 100 + i, deterministic=True)
                  for i in range(8)]
        items.append((item, b"\n".join(codes)))
    return items


def make_input(nfc_rec, nfc_at, fare_items=()):
    """The hot-path workload's input blob: input_items() and the recorded fare sessions."""
    return pack_input(input_items(nfc_rec, nfc_at) + list(fare_items))


def input_items(nfc_rec, nfc_at):
    """Every hot path's input but the fare sessions (flashtool.bench.fares.record_lane)."""
    from flashtool.lists import blocklist as cb
    from flashtool.release.keys import public_json
    from flashtool.release.sign import body, sign_body

    items = [("now", struct.pack("<I", NOW))]
    _, list_key = fixed_rsa("list")
    n, e = cb.pubkey(list_key)
    ents = [(1, b"1%018d" % i, 1) for i in range(10_000)]  # pages as full as 1 M entries' pages
    img = cb.build_image(ents, list_key, seq=1, issued=NOW - 3600, key=bytes(range(16)))
    items += [("list", img), ("listn", n.to_bytes(256, "big")), ("liste", struct.pack("<I", e)),
              ("member", b"1%018d" % 7919), ("other", b"8%018d" % 7919)]
    items += [("nfc", nfc_rec), ("nfcat", struct.pack("<II", *nfc_at))]
    items += code_items()
    _, app_key = fixed_rsa("app")
    files = [["m%02d.mpy" % i, 1000 + i, hashlib.sha256(b"%d" % i).hexdigest()]
             for i in range(40)]
    items += [("mkey", public_json(app_key, "app").encode()),
              ("manif", sign_body(body("app", 5, files, now=NOW), app_key))]
    return items


REC_WORKLOAD = r'''
import asyncio
import board
from nfc_task import NfcReader


def run():
    r = NfcReader(board.nfc_bus(), board.nfc_reset(), board.clock, {"nfc_poll_ms": 100})
    m = board.maintenance()
    got = []

    async def on(c):
        got.append(c.kind)

    async def main():
        await r.init()
        m.write("mark:tap")
        await r.poll_once(on)
        m.write("nfc:remove")
        m.write("mark:gone")
        await r.poll_once(on)
        print("GOT", got)

    asyncio.run(main())
'''


def record_nfc():
    """One CPU-card tap on the PN532 simulator, as the bytes crossing the UART: each reader
    write ('w') and what the chip sent back before the next one ('r'); returns (record, (byte
    offset of the tap's first poll, of the empty poll after it))."""
    use_host_board()
    from sim import cards, pn532
    from sim.runner import Reader

    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        extra = Path(tmp) / "extra"
        extra.mkdir()
        (extra / "nfcrec.py").write_text(REC_WORKLOAD)
        r = Reader(workdir=Path(tmp) / "reader")
        try:
            sim = pn532.install(r.hw, "hsu")
            sim.field.present(cards.normal("3104000000000001"))
            port, log, marks, seen = sim.port, [], {}, [0]
            read, receive = port.read, port.receive

            def on_write(now, data):
                for _, text in list(r.hw.events)[seen[0]:]:
                    if text.startswith("mark:"):
                        marks[text[5:]] = len(log)
                    elif text == "nfc:remove":
                        sim.field.clear()
                seen[0] = len(r.hw.events)
                log.append([b"w", bytes(data)])
                return receive(now, data)

            def on_read(now, maxlen):
                out = read(now, maxlen)
                if out[0]:
                    if log and log[-1][0] == b"r":
                        log[-1][1] += out[0]
                    else:
                        log.append([b"r", bytes(out[0])])
                return out

            port.receive, port.read = on_write, on_read
            code, lines = r.run(entry="nfcrec", extra_path=extra, timeout=120)
        finally:
            r.close()
    if code or "GOT [1]" not in lines:
        raise SystemExit("recording the tap failed (%s):\n%s" % (code, "\n".join(lines[-20:])))
    rec, at = b"", {}
    for i, (kind, data) in enumerate(log):
        for name, j in marks.items():
            if j == i:
                at[name] = len(rec)
        rec += kind + struct.pack("<H", len(data)) + data
    return rec, (at["tap"], at["gone"])


# --- runs -----------------------------------------------------------------------------------
def _parse(lines):
    hot, cal, mem = {}, {}, None
    for line in lines:
        f = line.split()
        if f[:1] == ["HOT"]:
            hot[f[1]] = [int(x) for x in f[2:]]
        elif f[:1] == ["CAL"]:
            cal[f[1]] = (int(f[2]), int(f[3]))
        elif f[:1] == ["MEM"]:
            mem = (int(f[1]), int(f[2]))
    return hot, cal, mem


CALIBRATION = ("bm_fannkuch", "bm_hexiom", "bm_nqueens", "bm_pidigits", "misc_aes",
               "misc_pystone")


def run_qemu(elf, code, blob=b""):
    """Boot the QEMU firmware, run `code` at its raw REPL, return the output lines. Every
    executed instruction is one ns of the guest's clock (-icount shift=0; sleep=off: the clock
    never follows the host's, even while the guest idles), so ticks_us x 1000 counts
    instructions, the same on every run to 0.5 % (the µs tick, the 1 ms timer interrupt, and
    on a loaded host up to 0.14 % seen, from events that still follow host I/O timing)."""
    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        cmd = ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null",
               "-semihosting", "-bios", "none", "-icount", "shift=0,sleep=off", "-serial", "stdio",
               "-kernel", str(elf)]
        if blob:
            data = Path(tmp) / "input.bin"
            data.write_bytes(blob)
            cmd += ["-device", "loader,file=%s,addr=0x20000000" % data]
        # the guest exits through semihosting (machine.reset) whatever happened
        script = ("import sys, machine\ntry:\n" + "".join("    %s\n" % x for x in
                  code.splitlines()) + "except Exception as e:\n    sys.print_exception(e)\n"
                  "machine.reset()\n").replace("\n", "\r\n")
        r = subprocess.run(cmd, input=b"\r\x01" + script.encode() + b"\x04",
                           capture_output=True, timeout=900)
    out = r.stdout.decode(errors="replace").replace("\r", "")
    if "Traceback" in out or r.returncode:
        raise SystemExit("QEMU run failed:\n" + out[-3000:])
    return [x.lstrip(">").removeprefix("OK") for x in out.splitlines()]


def count(elf, blob):
    """Hot paths (one boot) and each calibration benchmark (a fresh boot each)."""
    hot, _, mem = _parse(run_qemu(elf, "import hotpaths\nhotpaths.run()", blob))
    return hot, count_calibration(elf), mem


def count_calibration(elf):
    """Each calibration benchmark counted on a fresh boot: {name: (norm, ticks_us)}."""
    cal = {}
    for name in CALIBRATION:
        cal.update(_parse(run_qemu(elf, "import hotpaths\nhotpaths.calibrate(%r)" % name))[1])
    return cal


def run_host(blob):
    """The same workload on the 64-bit host interpreter, timed (the old rule's input), and the
    calibration benchmarks there too (each on a fresh boot): their published ESP32 times over
    these host times test the old x50 directly."""
    use_host_board()
    from flashtool.build.upstream import source
    from sim.runner import WORKLOADS, Reader

    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        extra = Path(tmp) / "extra"
        extra.mkdir()
        for name in ("hotpaths.py", "faretap.py", "farereplay.py"):
            shutil.copy(WORKLOADS / name, extra)
        (extra / "hotpaths.bin").write_bytes(blob)
        for name in CALIBRATION:
            shutil.copy(source() / "tests" / "perf_bench" / (name + ".py"), extra)
        # the app's 192k plus room for the input, which the QEMU board keeps outside its heap
        r = Reader(workdir=Path(tmp) / "reader", heapsize="%dk" % (192 + len(blob) // 1024))
        try:
            out = [r.run(entry="hotpaths", extra_path=extra, timeout=600)]
            for name in CALIBRATION:
                (extra / "cal.py").write_text(
                    "import hotpaths\n\n\ndef run():\n    hotpaths.calibrate(%r)\n" % name)
                r.power_cut()
                out.append(r.run(entry="cal", extra_path=extra, timeout=600))
        finally:
            r.close()
    for code, lines in out:
        if code:
            raise SystemExit("host run failed (%s):\n%s" % (code, "\n".join(lines[-30:])))
    hot = _parse(out[0][1])[0]
    cal = {}
    for _, lines in out[1:]:
        cal.update(_parse(lines)[1])
    return hot, cal


# --- calibration ----------------------------------------------------------------------------
def calibration(cal):
    """ESP32 ns per counted instruction, per benchmark and their median (the conversion), and
    Cortex-M4 cycles per counted instruction (the counter's check)."""
    esp, m4 = {}, {}
    for name, (norm, us) in cal.items():
        instr = us * 1000
        if name in ESP32_SCORES:
            esp[name] = 1e9 * norm / ESP32_SCORES[name] / instr
        if name in PYBV11_SCORES:
            m4[name] = 1e6 * norm / PYBV11_SCORES[name] * PYBV11_MHZ / instr
    ns = sorted(esp.values())
    return esp, m4, (ns[len(ns) // 2] if ns else None)


ROWS = (  # (name in the workload's output, what it is)
    ("nfc_tap", "NFC tap, CPU card: poll, SELECT, READ 15/17, release (wire/RF not included)"),
    ("fare_entry", "Whole fare tap at entry, CPU card: read, purchase (PSAM MAC1, UPDATE CAPP, "
                   "DEBIT, MAC2), torn log, journal, gate (both chips replayed; no wire time)"),
    ("fare_exit", "Whole fare tap at exit: the same with the fare from the table"),
    ("lookup_member", "Blocklist lookup, listed identifier (+ one 512 B page read)"),
    ("lookup_other", "Blocklist lookup, not listed (+ one 512 B page read)"),
    ("decide", "Decision (with the list lookup), rider not listed"),
    ("journal_append", "Journal append (+ one page program)"),
    ("app_tap", "Whole tap after the read: decide, journal, gate, feedback, log line"),
    ("code_cold", "Ride code RC2, RSA rider key, cold (base45, issuer RSA, rider RSA)"),
    ("code_warm", "Ride code RC2, RSA rider key, warm (certificate cached, rider RSA)"),
    ("code_prefetch", "Ride code RC2, RSA: certificate check while the code arrives"),
    ("code_rx", "Ride code RC2, RSA: scan-engine receive path, 1215 characters + CR"),
    ("code_cold_p256", "Ride code RC2, P-256 rider key, cold (issuer RSA, P-256 verify)"),
    ("code_warm_p256", "Ride code RC2, P-256 rider key, warm (P-256 verify)"),
    ("code_cold_rc1", "Ride code RC1 (migration only), cold (issuer RSA, day-key MAC)"),
    ("code_warm_rc1", "Ride code RC1, warm (certificate cached, day-key MAC)"),
    ("list_signature", "List signature check (RSA-2048 e=3 verify)"),
    ("manifest_check", "Signed app manifest, 40 files (RSA verify + JSON)"),
    ("gc_collect", "Garbage collection with every hot path's state live (112 KiB heap)"),
)
# RSA-2048 verifies in each row: the old rule counts their host time x BIGINT_FACTOR
_BIG = {"list_signature": 1, "code_cold": 2, "code_warm": 1, "code_prefetch": 1,
        "code_cold_p256": 1, "code_cold_rc1": 1, "manifest_check": 1}


def _per(hot, name):
    """Per-run figures: (ticks µs, flash reads, read bytes, programs) for a row."""
    if name == "nfc_tap":
        a, b = hot["nfc_tap_and_empty_poll"], hot["nfc_empty_poll"]
        return [(x / a[0] - y / b[0]) for x, y in zip(a[1:], b[1:])]
    v = hot[name]
    return [x / v[0] for x in v[1:]]


def flash_us(reads, rbytes, programs):
    """Modelled SPI flash time of a path's page reads and programs."""
    return reads * READ_SETUP_US + rbytes / READ_MB_S + programs * PROGRAM_US


def rows(q_hot, h_hot, ns_per_instr):
    """[(name, what, instructions, ESP32 ms, flash ms, host µs, old-rule ms)]"""
    rsa_host = _per(h_hot, "list_signature")[0] if h_hot else 0
    out = []
    for name, what in ROWS:
        t, reads, rbytes, programs = _per(q_hot, name)[:4]
        instr = t * 1000
        fl = flash_us(reads, rbytes, programs)
        esp_ms = (instr * ns_per_instr / 1000 + fl) / 1000
        host = old = None
        if h_hot:
            host = _per(h_hot, name)[0]
            big = rsa_host * _BIG.get(name, 0)
            old = ((host - big) * CPU_FACTOR + big * BIGINT_FACTOR + fl) / 1000
        out.append((name, what, instr, esp_ms, fl / 1000, host, old))
    return out


def _sig(n):
    """Three significant figures: about what is the same on every run (see run_qemu)."""
    return "{:,}".format(int(float("%.3g" % n)))


def run(args):
    from flashtool.build.firmware import check_qemu_toolchain, qemu
    from flashtool.build.mpy import build

    check_qemu_toolchain()
    elf = qemu(quiet=False)
    build("host", quiet=True)  # the emulated board that records the tap and runs the old rule
    rec, at = record_nfc()
    from flashtool.bench.fares import record_fares

    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        fare = record_fares(tmp)
    blob = make_input(rec, at, fare)
    q_hot, cal, q_mem = count(elf, blob)
    esp, m4, ns = calibration(cal)
    h_hot, h_cal = (None, {}) if args.quick else run_host(blob)
    print("-- calibration: MicroPython's tests/perf_bench (N=100 M=100), counted on QEMU "
          "Cortex-M3 vs measured on a chip --")
    print("%-14s %12s %14s %12s %9s %12s" % ("benchmark", "instructions", "ESP32 ns/instr",
                                              "M4 cyc/instr", "host us", "ESP32/host"))
    for name, (norm, us) in sorted(cal.items()):
        host = h_cal.get(name, (0, 0))[1]
        ratio = 1e6 * norm / ESP32_SCORES[name] / host if host and name in ESP32_SCORES else 0
        print("%-14s %12s %14s %12s %9s %12s" % (
            name, _sig(us * 1000), "%.1f" % esp[name] if name in esp else "-",
            "%.2f" % m4[name] if name in m4 else "-", host or "-",
            "%.0f" % ratio if ratio else "-"))
    print("conversion: %.2f ns per counted instruction = %.2f cycles at %d MHz (median of the "
          "ESP32 column; ESP32 scores: micropython PR #7850, PYBv1.1: PR #16015)"
          % (ns, ns * ESP32_MHZ / 1000, ESP32_MHZ))
    print("-- hot paths: instructions counted on QEMU (deterministic), ESP32 time = "
          "instructions x %.2f ns + modelled flash time; old rule = host CPU x %d (x %d for the "
          "RSA verify) + the same flash time --" % (ns, CPU_FACTOR, BIGINT_FACTOR))
    print("%-15s %12s %10s %9s %10s %11s  %s" % ("path", "instructions", "ESP32 ms", "flash ms",
                                                 "host us", "old rule ms", "what"))
    for name, what, instr, esp_ms, fl, host, old in rows(q_hot, h_hot, ns):
        print("%-15s %12s %10.2f %9.2f %10s %11s  %s" % (
            name, _sig(instr), esp_ms, fl, "%.0f" % host if host is not None else "-",
            "%.2f" % old if old is not None else "-", what))
    print("heap on the Cortex-M3 (112 KiB, an ESP32's without PSRAM), after a collection: %d "
          "bytes free with every hot path's state live, %d at the lowest point" % q_mem)

"""`flash.py bench ridecode`: what a ride code costs the reader, against its budget: cold (first
scan of a rider, incl. the scan engine's wire time at 115200 baud) <= 150 ms p95, warm (the
certificate cached) <= 60 ms, on an ESP32 at 160 MHz.

The ESP32 estimate is counted: the ride-code paths run on the QEMU Cortex-M3 build
(boards/host/workloads/hotpaths.py `ridecodes()`, the same inputs as `bench device`), executed
instructions x the calibration of docs/device-figures.md. Cold incl. the wire is a timeline of
the QR task (a poll every qr_poll_ms, every 2 ms while a code arrives, the certificate checked
as soon as it is in while the rest is still on the wire, the check of the whole code after its
CR), over every phase of the poll against the code's arrival: p95 over the phases.

Beside it, the old rule (host MicroPython CPU x 50, the RSA operations x 200) from timings on the
64-bit unix port (best of 3 per code, median and p95 over the codes), as a comparison column.
"""

import os
import subprocess
import tempfile
from pathlib import Path

from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR
from flashtool.codes import issuer as cc
from flashtool.codes import rider as app

COLD_BUDGET_MS = 150  # incl. the wire at 115200 baud
WARM_BUDGET_MS = 60
NOW = 1_795_487_847
BAUD = 115200
POLL_MS = 10  # the QR task's qr_poll_ms
ARRIVING_MS = 2  # its poll period while a code is arriving (firmware/qr_task.py)
CHUNK, CHUNKS = 64, 33  # the driver reads 64 bytes a poll(), the task up to 33 polls a tick
ACCOUNT = 20  # characters: the longest account, the longest code

SCRIPT = """
import gc, time
import credential, p256
from ridecode import keyset, verifier

N = %(n)d
ks = keyset.load(open(%(ks)r, "rb").read(), %(root_n)d, %(root_e)d)
class Clock:
    def time(self):
        return %(now)d
v = verifier.Verifier(ks, Clock(), rc1=True, p256=True)
cred = credential.Credential()
src = open(%(codes)r, "rb")

def best(fn, arg, reps=3):
    t = 1 << 30
    for _ in range(reps):
        gc.collect()
        t0 = time.ticks_us()
        fn(arg)
        t = min(t, time.ticks_diff(time.ticks_us(), t0))
    return t

def check(c, cold):
    if cold:
        v.certs.clear()
    r = v.check(c, len(c), cred)
    if r not in (verifier.OK, verifier.REPLAYED):
        raise SystemExit("check failed: %%d" %% r)

def series(name, cold):
    out = []
    first = None
    for _ in range(N):
        c = bytearray(src.readline().strip())
        first = first or c
        out.append(best(lambda c: check(c, cold), c))
    out.sort()
    print(name, out[len(out) // 2], out[(95 * len(out)) // 100])
    return first

code = series("rsa_cold", True)
series("rsa_warm", False)
series("ec_cold", True)
series("ec_warm", False)
series("rc1_cold", True)
series("rc1_warm", False)
n_mod, e = ks.issuer(1)
sig = int.from_bytes(bytes(code[-60:]) * 5, "big") %% n_mod
print("bigint", best(lambda s: pow(s, e, n_mod).to_bytes(256, "big"), sig, 20))
print("bigint65537", best(lambda s: pow(s, 65537, n_mod).to_bytes(256, "big"), sig, 20))

def glue(w):  # the mpz work of one ECDSA verify: r, s, s**-1 and u1, u2 as bytes
    a = int.from_bytes(code[:32], "big")
    b = int.from_bytes(code[32:64], "big")
    (a * w %% p256.N).to_bytes(32, "big")
    (b * w %% p256.N).to_bytes(32, "big")
    int.from_bytes(code[:35], "big") %% p256.N + b

print("ecglue", best(glue, 12345678901234567890, 20))
"""


# --- the QR task's timeline ---------------------------------------------------------------
def _char_ms(baud=BAUD):
    return 10_000 / baud  # 10 bits a character


def verdict_ms(chars, cert_chars, rx_ms_byte, prefetch_ms, check_ms, phase_ms, baud=BAUD):
    """When the verdict is known, in ms from the code's first character on the wire. `chars`
    includes the CR; the task's first tick is `phase_ms` after the first character; each tick
    reads up to CHUNKS x CHUNK arrived bytes (rx_ms_byte each) and sleeps POLL_MS (ARRIVING_MS
    once part of the code is in), except the
    tick that checks the certificate (once `cert_chars` are in; prefetch_ms, None: no check
    during the wire), after which the task reads again at once (firmware/qr_task.py); after
    the CR the whole code is checked (check_ms)."""
    per = _char_ms(baud)
    t, read, pending = phase_ms, 0, prefetch_ms is not None
    while True:
        arrived = min(chars, int(t / per))
        take = min(arrived - read, CHUNK * CHUNKS)
        t += take * rx_ms_byte
        read += take
        if read == chars:
            return t + check_ms
        if pending and read >= cert_chars:
            t += prefetch_ms
            pending = False
            continue
        t += ARRIVING_MS if read else POLL_MS


def p95_verdict(*args):
    """p95 over 200 phases of the poll against the code's arrival."""
    got = sorted(verdict_ms(*args, phase_ms=POLL_MS * i / 200) for i in range(200))
    return got[190]


def text_len(alg, account=ACCOUNT):
    """Characters of an RC2 code (without the CR) and of its part up to the certificate's end
    as the verifier's prefetch needs it (whole base45 groups, the prefix included)."""
    klen, slen = cc.layout.RIDER_ALGS[alg]
    cert = cc.layout.CERT_FIXED + account + 1 + klen + cc.layout.SIG_LEN
    total = cert + 6 + slen
    return 4 + total // 2 * 3 + total % 2 * 2, 4 + (cert + 1) // 2 * 3


def qr_version(chars):
    """QR version at level M for `chars` characters in alphanumeric mode."""
    import segno

    return segno.make("0" * chars, error="m", mode="alphanumeric").version


# --- runs -------------------------------------------------------------------------------------
def counted():
    """Counted figures on QEMU: ({row: ESP32 ms per run}, ns per instruction)."""
    from flashtool.bench import device
    from flashtool.build.firmware import check_qemu_toolchain, qemu

    check_qemu_toolchain()
    elf = qemu(quiet=True)
    blob = device._blob([("now", device.struct.pack("<I", NOW))] + device.code_items())
    hot = device._parse(device.run_qemu(elf, "import hotpaths\nhotpaths.ridecodes()", blob))[0]
    per, _, ns = device.calibration(device.count_calibration(elf))
    # ticks are µs at one instruction a ns (-icount shift=0): µs x ns-per-instruction = µs·ns
    return {k: device._per(hot, k)[0] * ns / 1000 for k in hot}, ns, max(per.values())


def host(n):
    """Old-rule inputs: host MicroPython µs per code, {name: (median, p95)}."""
    from flashtool.build.mpy import build
    from sim.runner import micropython_bin

    link, _ = build("host", quiet=True)
    with tempfile.TemporaryDirectory(prefix="bench-ridecode-") as tmp:
        tmp = Path(tmp)
        root, issuer = cc.gen_rsa(e=3), cc.gen_rsa(e=3)
        day = NOW // 86400
        dk = cc.day_key(os.urandom(32), day)
        (tmp / "ks.bin").write_bytes(cc.make_keyset(root, 1, {1: issuer}, [], {day: dk}))
        accounts = ["31047700%012d" % i for i in range(n)]
        codes = []
        for alg in (cc.layout.ALG_RSA3, cc.layout.ALG_P256):
            riders = [app.rider_key(alg=alg) for _ in range(8)]  # a verify's cost is the key's
            certs = [cc.make_cert2(issuer, 1, a, 1, NOW - 86400, NOW + 86400,
                                   app.public_bytes(riders[i % 8]))
                     for i, a in enumerate(accounts)]
            codes += [app.make_code2(c, riders[i % 8], NOW - 5, 1) for i, c in enumerate(certs)]
            codes += [app.make_code2(certs[0], riders[0], NOW - 5, 100 + i) for i in range(n)]
        certs1 = [cc.make_cert(issuer, 1, a, 1, NOW - 86400, NOW + 86400) for a in accounts]
        codes += [cc.make_code(c, cc.user_key(dk, c), NOW - 5, 1) for c in certs1]
        codes += [cc.make_code(certs1[0], cc.user_key(dk, certs1[0]), NOW - 5, 100 + i)
                  for i in range(n)]
        (tmp / "codes.txt").write_bytes(b"\n".join(codes) + b"\n")
        script = tmp / "bench.py"
        script.write_text(SCRIPT % dict(n=n, ks=str(tmp / "ks.bin"), root_n=root["n"],
                                        root_e=root["e"], now=NOW, codes=str(tmp / "codes.txt")))
        r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                           env=dict(os.environ, MICROPYPATH=str(link.resolve()) + ":.frozen"),
                           capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    return {k: [int(x) for x in vals] for k, *vals in (x.split() for x in r.stdout.splitlines())}


def run(args):
    esp, ns, slow = counted()
    f = host(20 if args.quick else 200)
    report(esp, ns, f)
    chars, cert_chars = text_len(cc.layout.ALG_RSA3)
    k = slow / ns
    print("at the calibration's slowest benchmark (%.1f ns per instruction, x %.2f): RC2 RSA "
          "cold %.1f ms p95 incl. the wire, warm %.1f ms" % (
              slow, k, p95_verdict(chars + 1, cert_chars, k * esp["code_rx"] / (chars + 1),
                                   k * esp["code_prefetch"], k * esp["code_warm"]),
              k * esp["code_warm"]))


def report(esp, ns, f):
    rsa3, p256 = cc.layout.ALG_RSA3, cc.layout.ALG_P256
    chars, cert_chars = text_len(rsa3)
    echars, ecert = text_len(p256)
    rsa_ms = esp["code_cold"] - esp["code_warm"]  # the issuer's RSA check (counted difference)
    rx = esp["code_rx"] / (chars + 1)
    big, glue = f["bigint"][0], f["ecglue"][0]

    def old(k, bigs):
        return [((us - bigs) * CPU_FACTOR + bigs * BIGINT_FACTOR) / 1000 for us in f[k]]

    print("RC2 code with a 20-character account: RSA-2048 e=3 rider key %d characters (QR "
          "version %d at level M), P-256 %d (version %d); the certificate's part %d / %d"
          % (chars, qr_version(chars), echars, qr_version(echars), cert_chars, ecert))
    print("ESP32 at 160 MHz, counted: instructions on QEMU Cortex-M3 x %.2f ns "
          "(docs/device-figures.md); old rule: host MicroPython x %d, RSA x %d" % (
              ns, CPU_FACTOR, BIGINT_FACTOR))
    print("  %-58s %9s %17s" % ("CPU per code", "counted", "old rule med/p95"))
    for label, k, hk, bigs in (
            ("RC2 RSA rider key, cold (issuer RSA + rider RSA)", "code_cold", "rsa_cold",
             2 * big),
            ("RC2 RSA rider key, warm (certificate cached)", "code_warm", "rsa_warm", big),
            ("RC2 RSA: certificate check while the code arrives", "code_prefetch", None, 0),
            ("RC2 RSA: scan-engine receive path, whole code", "code_rx", None, 0),
            ("RC2 P-256 rider key, cold", "code_cold_p256", "ec_cold", big + glue),
            ("RC2 P-256 rider key, warm", "code_warm_p256", "ec_warm", glue),
            ("RC1 (migration only), cold", "code_cold_rc1", "rc1_cold", big),
            ("RC1, warm", "code_warm_rc1", "rc1_warm", 0)):
        o = "%7.1f / %5.1f ms" % tuple(old(hk, bigs)) if hk else "-"
        print("  %-58s %6.1f ms %17s" % (label + ":", esp[k], o))
    print("  (the RSA-2048 e=3 public operation: %.1f ms counted; on the host %d us, e=65537 "
          "%d us)" % (rsa_ms, big, f["bigint65537"][0]))
    wire = (chars + 1) * _char_ms()
    print("budget, counted, at %d baud (%.1f ms on the wire for the RSA code + CR, %.1f ms for "
          "its part after the certificate); p95 over the poll's phase:" % (
              BAUD, wire, (chars + 1 - cert_chars) * _char_ms()))
    lines = (
        ("RC2 RSA cold, certificate checked while the code arrives (kept)",
         p95_verdict(chars + 1, cert_chars, rx, esp["code_prefetch"], esp["code_warm"]),
         COLD_BUDGET_MS),
        ("RC2 RSA cold, everything checked after the last byte",
         p95_verdict(chars + 1, cert_chars, rx, None, esp["code_cold"]), COLD_BUDGET_MS),
        ("RC2 RSA warm: the check after the last byte", esp["code_warm"], WARM_BUDGET_MS),
        ("RC2 RSA warm incl. the wire",
         p95_verdict(chars + 1, cert_chars, rx, esp["code_prefetch"] - rsa_ms, esp["code_warm"]),
         None),
        ("RC2 P-256 cold incl. the wire (certificate checked while it arrives)",
         p95_verdict(echars + 1, ecert, rx, esp["code_prefetch"], esp["code_warm_p256"]),
         COLD_BUDGET_MS),
        ("RC2 P-256 warm: the check after the last byte", esp["code_warm_p256"], WARM_BUDGET_MS))
    for label, ms, budget in lines:
        verdict = "" if budget is None else " (budget %d: %s)" % (
            budget, "within" if ms <= budget else "OVER")
        print("  %-70s %6.1f ms%s" % (label + ":", ms, verdict))
    print("old rule for comparison: RC2 RSA cold %.1f ms p95 + %.1f ms wire; warm %.1f ms p95"
          % (old("rsa_cold", 2 * big)[1], wire, old("rsa_warm", big)[1]))

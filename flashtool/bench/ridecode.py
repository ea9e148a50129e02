"""`flash.py bench ridecode`: what a ride code costs the reader, cold (first scan of a rider:
parse + base45 + RSA certificate verify + dynamic-part MAC + replay cache) and warm (certificate
already in the LRU cache), plus the scan-engine receive path and the wire time of the code.

Measured on the MicroPython unix port running the compiled build, best and median of repeated
runs (the machine is shared: treat as noisy). ESP32 estimate per the project rule: host CPU
time x 50 for interpreted work and x 200 for the big-integer part (the RSA public operation,
measured on its own), plus modelled UART wire time.
"""

import os
import subprocess
import tempfile
from pathlib import Path

from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR
from flashtool.codes import issuer as cc

BUDGET_MS = 150
NOW = 1_795_487_847

SCRIPT = """
import gc, time
import credential, scanengine
from ridecode import keyset, verifier
import rsapkcs1

N = %(n)d
gc.collect()
free0 = gc.mem_free()
ks = keyset.load(open(%(ks)r, "rb").read(), %(root_n)d, %(root_e)d)
class Clock:
    ticks_diff = staticmethod(time.ticks_diff)
    def time(self):
        return %(now)d
    def ticks_ms(self):
        return 0
gc.collect()
free1 = gc.mem_free()
v = verifier.Verifier(ks, Clock())
gc.collect()
free2 = gc.mem_free()
cred = credential.Credential()
src = open(%(codes)r, "rb")

def timed(fn, reps, read=False):
    t = []
    for i in range(reps):
        c = bytearray(src.readline().strip()) if read else None
        gc.collect()
        t0 = time.ticks_us()
        fn(c)
        t.append(time.ticks_diff(time.ticks_us(), t0))
    t.sort()
    return t[0], t[len(t) // 2]

def cold(c):
    v.certs.clear()
    if v.check(c, len(c), cred):
        raise SystemExit("cold check failed")

def warm(c):
    if v.check(c, len(c), cred):
        raise SystemExit("warm check failed")

first = bytearray(open(%(codes)r, "rb").readline().strip())

n_mod, e = ks.issuer(1)
cert = first
raw = bytearray(400)
import base45
m = base45.decode_into(cert, 4, len(cert) - 4, raw)
acc = raw[3]
sig = bytes(raw[12 + acc:12 + acc + 256])

def bigint(i):
    pow(int.from_bytes(sig, "big"), e, n_mod).to_bytes(256, "big")

def bigint65537(i):
    pow(int.from_bytes(sig, "big"), 65537, n_mod).to_bytes(256, "big")

print("cold", *timed(cold, N, True))
print("warm", *timed(warm, N, True))
print("bigint", *timed(bigint, N))
print("bigint65537", *timed(bigint65537, N))

class Uart:
    def __init__(self):
        self.data = first + b"\\r"
        self.pos = len(self.data)
    def readinto(self, buf, n):
        k = 0
        d = self.data
        while k < n and self.pos < len(d):
            buf[k] = d[self.pos]
            k += 1
            self.pos += 1
        return k or None
    def write(self, b):
        return len(b)
uart = Uart()
gc.collect()
free3 = gc.mem_free()
se = scanengine.ScanEngine(uart, Clock(), bufsize=512)
gc.collect()
free4 = gc.mem_free()

def rx(i):
    uart.pos = 0
    se.forget()
    while not se.poll(0):
        pass

print("rx", *timed(rx, N))
print("mem", free0 - free1, free1 - free2, free3 - free4)
print("len", len(first))
"""


def run(args):
    from flashtool.build.mpy import build
    from sim.runner import micropython_bin

    n = 20 if args.quick else 200
    link, _ = build("host", quiet=True)
    with tempfile.TemporaryDirectory(prefix="bench-ridecode-") as tmp:
        tmp = Path(tmp)
        root, issuer = cc.gen_rsa(e=3), cc.gen_rsa(e=3)
        master = os.urandom(32)
        day = NOW // 86400
        ks = cc.make_keyset(root, 1, {1: issuer}, [], {day: cc.day_key(master, day)})
        (tmp / "ks.bin").write_bytes(ks)
        cold_certs = [cc.make_cert(issuer, 1, "31047700%012d" % i, 1, NOW - 86400,
                                   NOW + 86400) for i in range(n)]
        warm_cert = cold_certs[0]
        dk = cc.day_key(master, day)
        codes = [cc.make_code(c, cc.user_key(dk, c), NOW - 5, 1) for c in cold_certs]
        codes += [cc.make_code(warm_cert, cc.user_key(dk, warm_cert), NOW - 5, 100 + i)
                  for i in range(n)]
        (tmp / "codes.txt").write_bytes(b"\n".join(codes) + b"\n")
        script = tmp / "bench.py"
        script.write_text(SCRIPT % dict(n=n, ks=str(tmp / "ks.bin"), root_n=root["n"],
                                        root_e=root["e"], now=NOW, codes=str(tmp / "codes.txt")))
        r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                           env=dict(os.environ, MICROPYPATH=str(link.resolve()) + ":.frozen"),
                           capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    f = {}
    for line in r.stdout.splitlines():
        k, *vals = line.split()
        f[k] = [int(x) for x in vals]
    cold_med = f["cold"][1]
    warm_med = f["warm"][1]
    big_med = f["bigint"][1]
    chars = f["len"][0] + 1

    def esp(total_us, big_us):
        return ((total_us - big_us) * CPU_FACTOR + big_us * BIGINT_FACTOR) / 1000

    print("ride code: %d characters in the QR (%d bytes decoded), RSA-2048 e=3 issuer signature"
          % (chars - 1, (chars - 5) * 2 // 3))
    print("host MicroPython CPU, best / median of %d runs (noisy shared machine):" % n)
    rows = (("cold code (parse+base45+RSA verify+MAC+replay)", f["cold"]),
            ("warm code (certificate from the LRU cache)", f["warm"]),
            ("of which big-integer RSA e=3 public op", f["bigint"]),
            ("RSA e=65537 public op, for comparison", f["bigint65537"]),
            ("scan-engine receive path, one code (+CR)", f["rx"]))
    for label, (best, med) in rows:
        print("  %-48s %6d / %6d us" % (label + ":", best, med))
    print("ESP32 estimate = interpreted x %d + big-integer x %d (host CPU, median):"
          % (CPU_FACTOR, BIGINT_FACTOR))
    cold_ms = esp(cold_med, big_med)
    warm_ms = warm_med * CPU_FACTOR / 1000
    verdict = "within" if cold_ms <= BUDGET_MS else "OVER"
    print("  cold code  %6.1f ms  (budget %d ms: %s)" % (cold_ms, BUDGET_MS, verdict))
    print("  warm code  %6.1f ms" % warm_ms)
    print("  RSA e=65537 would add %6.1f ms per cold code"
          % ((f["bigint65537"][1] - big_med) * BIGINT_FACTOR / 1000))
    rx_ms = f["rx"][1] * CPU_FACTOR / 1000
    print("  receive path %5.1f ms per code; cold code with it %5.1f ms"
          % (rx_ms, cold_ms + rx_ms))
    for baud in (9600, 115200):
        print("modelled wire time at %6d baud: %6.1f ms (10 bits per character)"
              % (baud, chars * 10_000 / baud))
    print("heap: key set %d B, verifier (caches) %d B, scan-engine driver %d B" % tuple(f["mem"]))

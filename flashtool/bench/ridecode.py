"""`flash.py bench ridecode`: what a ride code costs the reader, RC2 (the rider's P-256
signature) beside RC1 (the day-key MAC, kept for the migration): cold (first scan of a rider:
parse, base45, RSA certificate check, [RC2: key check,] dynamic part, replay), warm (the
certificate cached), the scan-engine receive path and the wire time; then the alternatives
tried for the rider's signature (docs/ride-code.md has the table).

Measured on the MicroPython unix port running the compiled build. Each code is timed three
times and keeps its best (the machine is shared: the best time is the code's own cost, the rest
is other processes); p95 and median are over the codes. ESP32 estimate per the project rule,
with the factors of flashtool.bench: interpreted and viper code x CPU_FACTOR, the big-integer
parts (the RSA public operation and the few mpz operations of an ECDSA verify, measured on
their own) x BIGINT_FACTOR, plus modelled UART wire time. Viper code takes CPU_FACTOR: it is
machine code on both sides and does the same work on a 32-bit port (13-bit limbs in machine
words), while BIGINT_FACTOR models mpz's smaller digits there, which viper code does not use.
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
BAUDS = (115200, 9600)
POLL_MS = 10  # the QR task's qr_poll_ms

SCRIPT = """
import gc, time
import credential, scanengine, p256
from ridecode import keyset, verifier
import base45

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
v = verifier.Verifier(ks, Clock(), rc1=True)
gc.collect()
free2 = gc.mem_free()
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
        first = first or bytes(c)
        out.append(best(lambda c: check(c, cold), c))
    out.sort()
    print(name, out[0], out[len(out) // 2], out[(95 * len(out)) // 100])
    return first

code2 = series("rc2cold", True)
warm2 = series("rc2warm", False)
code1 = series("rc1cold", True)
series("rc1warm", False)
rsa3 = src.readline().strip()

# the big-integer parts, on their own
raw = bytearray(500)
m = base45.decode_into(code2, 4, len(code2) - 4, raw)
acc = raw[3]
sig_at = 12 + acc + 128
n_mod, e = ks.issuer(1)
sig = int.from_bytes(raw[sig_at:sig_at + 256], "big")
print("bigint", best(lambda s: pow(s, e, n_mod).to_bytes(256, "big"), sig, 20))
print("bigint65537", best(lambda s: pow(s, 65537, n_mod).to_bytes(256, "big"), sig, 20))
ec = p256.Verifier()
r_ = int.from_bytes(raw[m - 64:m - 32], "big")
d = int.from_bytes(raw[:32], "big")

def glue(w):  # the mpz work of one ECDSA verify: r, s, s**-1 and u1, u2 as bytes
    a = int.from_bytes(raw[m - 64:m - 32], "big")
    b = int.from_bytes(raw[m - 32:m], "big")
    (d * w %% p256.N).to_bytes(32, "big")
    (a * w %% p256.N).to_bytes(32, "big")
    int.from_bytes(raw[:35], "big") %% p256.N + b

print("ecglue", best(glue, r_, 20))
key = bytes(raw[12 + acc:12 + acc + 64])
key_hi = bytes(raw[12 + acc + 64:12 + acc + 128])
digest = bytes(raw[:32])
good = bytes(raw[m - 64:m])

def ecdsa(hi):
    try:
        ec.verify(key, digest, good, key_hi=hi)
    except p256.SignatureError:
        pass  # a digest of our own: the cost is the same, valid or not

print("ecdsa_split", best(ecdsa, key_hi, 20))
print("ecdsa_plain", best(ecdsa, None, 20))
w2 = bytearray(warm2)
v.check(w2, len(w2), cred)  # its certificate back in the cache: the next check is warm
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
ecdsa(key_hi)
a1 = gc.mem_alloc()
v.check(w2, len(w2), cred)
a2 = gc.mem_alloc()
gc.enable()
print("alloc", a1 - a0, a2 - a1)
print("rc3parse", best(lambda c: base45.decode_into(c, 4, len(c) - 4, bytearray(900)), rsa3, 20))

class Uart:
    def __init__(self, data):
        self.data = data + b"\\r"
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

mem_se = 0
for name, text in (("rx2", code2), ("rx1", code1)):
    uart = Uart(text)
    se = None
    gc.collect()
    f3 = gc.mem_free()
    se = scanengine.ScanEngine(uart, Clock(), bufsize=1024)
    gc.collect()
    mem_se = max(mem_se, f3 - gc.mem_free())

    def rx(_):
        uart.pos = 0
        se.forget()
        while not se.poll(0):
            pass
    print(name, best(rx, 0, 20))
print("mem", free0 - free1, free1 - free2, mem_se)
print("len", len(code2), len(code1), len(rsa3))
"""


def _qr_version(chars):
    """QR version at level M for `chars` characters in alphanumeric mode."""
    import segno

    return segno.make("0" * chars, error="m", mode="alphanumeric").version


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
        dk = cc.day_key(master, day)
        (tmp / "ks.bin").write_bytes(cc.make_keyset(root, 1, {1: issuer}, [], {day: dk}))
        accounts = ["31047700%012d" % i for i in range(n)]
        riders = [app.rider_key(seed=i) for i in range(n)]
        certs2 = [cc.make_cert2(issuer, 1, a, 1, NOW - 86400, NOW + 86400,
                                app.public_bytes(r)) for a, r in zip(accounts, riders)]
        certs1 = [cc.make_cert(issuer, 1, a, 1, NOW - 86400, NOW + 86400) for a in accounts]
        codes = [app.make_code2(c, r, NOW - 5, 1) for c, r in zip(certs2, riders)]
        codes += [app.make_code2(certs2[0], riders[0], NOW - 5, 100 + i) for i in range(n)]
        codes += [cc.make_code(c, cc.user_key(dk, c), NOW - 5, 1) for c in certs1]
        codes += [cc.make_code(certs1[0], cc.user_key(dk, certs1[0]), NOW - 5, 100 + i)
                  for i in range(n)]
        # the alternative tried: an RSA-2048 e = 3 rider key (certificate with the rider's
        # modulus, 256-byte rider signature); only its size and parse cost are needed here
        rsa_code = b"RC3:" + cc.base45.encode(certs1[0][:32] + bytes(256) + certs1[0][-256:]
                                              + bytes(6 + 256))
        codes.append(rsa_code)
        (tmp / "codes.txt").write_bytes(b"\n".join(codes) + b"\n")
        script = tmp / "bench.py"
        script.write_text(SCRIPT % dict(n=n, ks=str(tmp / "ks.bin"), root_n=root["n"],
                                        root_e=root["e"], now=NOW, codes=str(tmp / "codes.txt")))
        r = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                           env=dict(os.environ, MICROPYPATH=str(link.resolve()) + ":.frozen"),
                           capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise SystemExit("micropython bench failed:\n" + r.stdout + r.stderr)
    f = {}
    for line in r.stdout.splitlines():
        k, *vals = line.split()
        f[k] = [int(x) for x in vals]
    report(f, n)


def _wire_ms(chars, baud):
    return chars * 10_000 / baud  # 10 bits a character, the CR included by the caller


def report(f, n):
    big, glue = f["bigint"][0], f["ecglue"][0]
    len2, len1, len3 = f["len"]

    def esp(us, big_us):
        return ((us - big_us) * CPU_FACTOR + big_us * BIGINT_FACTOR) / 1000

    print("RC2 code: %d characters (%d bytes), QR version %d at level M; RC1: %d characters, "
          "QR version %d" % (len2, (len2 - 4) * 2 // 3, _qr_version(len2), len1,
                             _qr_version(len1)))
    print("host MicroPython CPU per code, best of 3 each; min / median / p95 over %d codes:" % n)
    rows = (("RC2 cold (parse, base45, RSA, key check, ECDSA, replay)", "rc2cold"),
            ("RC2 warm (certificate cached: parse, ECDSA, replay)", "rc2warm"),
            ("RC1 cold (parse, base45, RSA, MAC, replay)", "rc1cold"),
            ("RC1 warm (certificate cached)", "rc1warm"))
    for label, k in rows:
        print("  %-56s %6d / %6d / %6d us" % (label + ":", *f[k]))
    for label, k in (("of which ECDSA P-256 verify with 2**128 Q (viper)", "ecdsa_split"),
                     ("ECDSA P-256 verify without it, for comparison", "ecdsa_plain"),
                     ("of which mpz work in an ECDSA verify", "ecglue"),
                     ("RSA-2048 e=3 public op (the issuer signature, cold)", "bigint"),
                     ("RSA-2048 e=65537 public op, for comparison", "bigint65537"),
                     ("scan-engine receive path, RC2 code + CR", "rx2"),
                     ("scan-engine receive path, RC1 code + CR", "rx1")):
        print("  %-56s %6d us" % (label + ":", f[k][0]))
    print("ESP32 estimate = CPU x %d (interpreted and viper) + big-integer x %d, + wire time:"
          % (CPU_FACTOR, BIGINT_FACTOR))
    wire2 = _wire_ms(len2 + 1, BAUDS[0])
    wire1 = _wire_ms(len1 + 1, BAUDS[0])
    # the receive path runs while the code is on the wire (the QR task polls every 10 ms);
    # only its last poll, about 10 ms of characters, comes after the last byte
    tick = BAUDS[0] / 10 * POLL_MS / 1000

    def tail(rx_us, chars):
        return rx_us * CPU_FACTOR / 1000 * min(1.0, tick / chars)

    for name, k, bigs, wire, rx, chars, budget in (
            ("RC2 cold", "rc2cold", big + glue, wire2, f["rx2"][0], len2, COLD_BUDGET_MS),
            ("RC2 warm", "rc2warm", glue, None, 0, 0, WARM_BUDGET_MS),
            ("RC1 cold", "rc1cold", big, wire1, f["rx1"][0], len1, None),
            ("RC1 warm", "rc1warm", 0, None, 0, 0, None)):
        _, med, p95 = f[k]
        cpu50, cpu95 = esp(med, bigs), esp(p95, bigs)
        line = "  %-9s CPU %5.1f ms median, %5.1f ms p95" % (name, cpu50, cpu95)
        total = cpu95
        if wire is not None:
            total = cpu95 + wire + tail(rx, chars)
            line += "; + wire %.1f (%d baud) + receive tail %.1f = %5.1f ms p95" % (
                wire, BAUDS[0], tail(rx, chars), total)
        if budget:
            line += " (budget %d: %s)" % (budget, "within" if total <= budget else "OVER")
        print(line)
    print("  receive path while the code arrives: RC2 %.1f ms, RC1 %.1f ms (all of it after "
          "the wire, a worst case: RC2 cold %.1f ms p95)" % (
              f["rx2"][0] * CPU_FACTOR / 1000, f["rx1"][0] * CPU_FACTOR / 1000,
              esp(f["rc2cold"][2], big + glue) + wire2 + f["rx2"][0] * CPU_FACTOR / 1000))
    for baud in BAUDS:
        print("  on the wire at %6d baud: RC2 %6.1f ms, RC1 %6.1f ms"
              % (baud, _wire_ms(len2 + 1, baud), _wire_ms(len1 + 1, baud)))
    ecs = esp(f["ecdsa_split"][0], glue)
    ecp = esp(f["ecdsa_plain"][0], glue)
    rsa_v = big * BIGINT_FACTOR / 1000
    print("rider-signature schemes tried (verify = the per-scan cost; cold adds the issuer RSA):")
    print("  %-34s %10s %6s %6s %9s" % ("scheme", "verify", "chars", "QR(M)", "wire@115k"))
    for name, verify, chars in (
            ("ECDSA P-256, with 2**128 Q (kept)", ecs, len2),
            ("ECDSA P-256, key only", ecp, len2 - 96),
            ("RSA-2048 e=3 rider key", rsa_v, len3)):
        print("  %-34s %7.1f ms %6d %6d %6.1f ms" % (
            name, verify, chars, _qr_version(chars), _wire_ms(chars + 1, BAUDS[0])))
    print("  (the RSA rider code also takes %.1f ms more to decode than RC2)"
          % (f["rc3parse"][0] * (len3 - len2) / len3 * CPU_FACTOR / 1000))
    mem = f["mem"]
    print("heap: key set %d B, verifier with caches and the P-256 workspace %d B, scan-engine "
          "driver (1 KiB buffers) %d B; allocated per ECDSA verify %d B, per warm RC2 check "
          "%d B" % (mem[0], mem[1], mem[2], *f["alloc"]))

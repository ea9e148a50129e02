"""`flash.py bench ota`: what an update costs. Signature checks and hashing on host MicroPython
(from the compiled build), artefact sizes of the current build, bytes per reader per day, and
the event loop's worst lateness while the emulated reader syncs an app update from
`the station server` over loopback.

ESP32 estimate = host MicroPython CPU time x 50 (x 200 for big-integer arithmetic), as the
project rule says; host timings are noisy on a shared 2-core machine.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from flashtool import ROOT, use_host_board
from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR

_MP = """
import time, hashlib, signedmanifest as sm
keys = {}
for role in ("app3", "app65537"):
    kid, k = sm.load_key(open("%(d)s/" + role + "/app.pub").read())
    keys[role] = (kid, k)
for role in ("app3", "app65537"):
    data = open("%(d)s/" + role + "/m.sm", "rb").read()
    ks = {keys[role][0]: keys[role][1]}
    sm.verify(data, ks, "app", "host")
    t = time.ticks_us()
    for _ in range(%(n)d):
        sm.verify(data, ks, "app", "host")
    print("VERIFY", role, time.ticks_diff(time.ticks_us(), t) // %(n)d)
b = bytearray(4096)
h = hashlib.sha256()
t = time.ticks_us()
for _ in range(64):
    h.update(b)
print("SHA256_256K", time.ticks_diff(time.ticks_us(), t))
"""


def _verify_figures(tmp, quick):
    from flashtool.release.keys import keygen, load_private
    from flashtool.release.sign import body, sign_body
    from sim.runner import micropython_bin

    for e in (3, 65537):
        d = tmp / ("app%d" % e)
        keygen(d, "app", e=e)
        files = [["app.mpy", 1000, "ab" * 32]] * 40
        (d / "m.sm").write_bytes(sign_body(body("app", 1, files), load_private(d / "app.pem")))
    script = tmp / "bench_verify.py"
    script.write_text(_MP % {"d": tmp, "n": 5 if quick else 30})
    out = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(script)],
                         env=dict(os.environ, MICROPYPATH=str((ROOT / "build" / "host")
                                                              .resolve())),
                         capture_output=True, text=True, timeout=300).stdout
    res = {}
    for line in out.splitlines():
        p = line.split()
        if p[0] == "VERIFY":
            res[p[1]] = int(p[2])
        elif p[0] == "SHA256_256K":
            res["sha"] = int(p[1])
    print("manifest check (40 files, RSA-2048, incl. JSON parse) on host MicroPython; ESP32"
          " estimate x%d (pessimistic: only the pow is big-integer work):" % BIGINT_FACTOR)
    for e in ("app3", "app65537"):
        us = res[e]
        print("  e=%-6s %7d us host  -> ~%5d ms ESP32" % (e[3:], us, us * BIGINT_FACTOR // 1000))
    print("SHA-256 of 256 KiB: %d us host -> ~%d ms ESP32 (x%d)" % (
        res["sha"], res["sha"] * CPU_FACTOR // 1000, CPU_FACTOR))


def _sizes(tmp):
    from flashtool.release.bundle import app_files, bundle
    from flashtool.release.keys import keygen
    from flashtool.release.sign import sign_index

    keygen(tmp / "k", "app")
    pub = tmp / "pub"
    bundle(pub, 1, tmp / "k" / "app.pem")
    idx = sign_index(pub, 1, tmp / "k" / "app.pem")
    files = app_files(ROOT / "build" / "host")
    app_bytes = sum(p.stat().st_size for p in files.values())
    app_sm = (pub / "app.sm").stat().st_size
    idx_size = idx.stat().st_size
    print("app bundle: %d modules, %d bytes of .mpy + %d-byte manifest" % (
        len(files), app_bytes, app_sm))
    print("index.sm: %d bytes" % idx_size)
    full, not_modified = _poll_bytes(pub, idx)
    for name, n in (("unchanged index (304)", not_modified), ("changed index (200)", full)):
        per_day = 86400 // 60 * n
        print("poll every 60 s, %s: %d bytes on the wire -> %.2f MB/reader/day, %.1f GB/day "
              "for 30,000 readers" % (name, n, per_day / 1e6, per_day * 30000 / 1e9))
    return pub, idx_size


def _poll_bytes(pub, idx):
    """Bytes both ways of one poll as the reader sends it (request + reply), measured against
    the station server: a full GET of index.sm and a conditional GET (the ETag it sent)
    answered 304."""
    import socket

    from flashtool.server.app import StationServer

    srv = StationServer(pub, pub.parent / "station", port=0)
    srv.start()
    tag = None
    out = []
    for _ in range(2):
        extra = "If-None-Match: %s\r\n" % tag if tag else ""
        req = ("GET /index.sm HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
               % extra).encode()
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(req)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        out.append(len(req) + len(got))
        tag = [ln.split(b":", 1)[1].strip().decode() for ln in got.split(b"\r\n")
               if ln.lower().startswith(b"etag:")][0]
    srv.stop()
    return out[0], out[1]


def _stall(tmp):
    """Worst event-loop lateness of a 1 ms tap-like task while the emulated reader syncs an
    app update from the station server (real time; includes host scheduling noise)."""
    from flashtool.release.keys import keygen
    from flashtool.release.sign import sign_index
    from flashtool.server import keys
    from flashtool.server.app import StationServer
    from sim.runner import WORKLOADS, Reader

    kd = tmp / "sk"
    keygen(kd, "app")
    keygen(kd, "list")
    from flashtool.release.bundle import bundle

    pub = tmp / "spub"
    bundle(pub, 2, kd / "app.pem")
    sign_index(pub, 1, kd / "app.pem")
    srv = StationServer(pub, tmp / "station", port=0)
    srv.start()
    extra = tmp / "extra"
    extra.mkdir()
    shutil.copy(WORKLOADS / "otawl.py", extra)
    (extra / "keys").mkdir()
    for role in ("app", "list"):
        shutil.copy(kd / (role + ".pub"), extra / "keys")
    _, _, up = keys.issue(srv.ring_path, "R7", out=tmp / "readers")  # otawl syncs as R7
    shutil.copy(up, extra / "keys" / "upload.key")
    r = Reader(workdir=tmp / "reader", accelerated=False)
    try:
        r.run(entry="otawl", extra_path=extra, settings={"wl": "provision"})
        t0 = time.monotonic()
        _, lines = r.run(entry="otawl", extra_path=extra, settings={
            "wl": "sync", "url": srv.url, "records": 64})
        wall = time.monotonic() - t0
    finally:
        r.close()
        srv.stop()
    st = [ln for ln in lines if ln.startswith("STALL")]
    print("sync cycle with an app update + 64 journal records: %.2f s wall; loop lateness %s"
          % (wall, st[0][6:] if st else "?"))
    print("  (host wall time incl. scheduling noise; on the ESP32 each 4 KiB flash erase on")
    print("   the event-loop thread adds tens of ms: stage when the lane is idle)")


def run(args):
    use_host_board()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ota-"))
    try:
        _verify_figures(tmp, args.quick)
        _sizes(tmp)
        _stall(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""`flash.py bench tls`: what TLS to the station costs a reader, on the firmware's own client
(firmware/sync.py from the compiled build, host MicroPython with its mbedTLS, -X heapsize=192k)
against the station server (aiohttp, the station certificate of `keygen --station`) on
loopback.

* CPU: each run is a MicroPython process doing N small GETs (the index, Connection: close, as
  every sync request is) or one 1 MiB download, over https and over http; the process's own
  CPU time comes from the kernel (wait4 rusage), so the server's work and the other tenants of
  this machine are not counted. TLS cost = (https - http) / N. ESP32 estimate by the project
  rule: the handshake is ECDHE-ECDSA P-256 arithmetic, x200 (big integers); record crypto and
  the rest x50. Not counted: the LAN round trips (a handshake adds two).
* Heap: what the MicroPython heap holds for TLS (the pinned context, made once, and a
  connection while it is open: gc.mem_alloc deltas) and what mbedTLS mallocs outside it (the
  growth of the process's C heap, [heap] in /proc/self/maps, over one request: on the ESP32
  this comes from the ESP-IDF heap, not from MicroPython's).
"""

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from flashtool import ROOT, use_host_board
from flashtool.bench import BIGINT_FACTOR, CPU_FACTOR

_MP = """
import asyncio, gc, time
import sync

sync.STATION_CERT = %(pin)r
MODE, N = %(mode)r, %(n)d


def c_heap():  # size of the brk heap, where glibc puts mbedTLS's mallocs (< 128 KiB each)
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                a, b = line.split()[0].split("-")
                return int(b, 16) - int(a, 16)
    return 0


async def main():
    s = sync.Sync(None, {"sync_url": %(url)r, "reader_id": "B1", "sync_period_s": 60},
                  on_app_ready=lambda: None)
    if MODE == "blob":
        got = [0]

        def sink(b, n):
            got[0] += n

        await s.fetch(("b", %(size)d, %(sha)r), 0, sink)
        print("BLOB", got[0])
        return
    gc.collect()
    a0, h0 = gc.mem_alloc(), c_heap()
    r, w, st, n = await s.request("GET", "/index.sm")
    gc.collect()
    a1, h1 = gc.mem_alloc(), c_heap()
    await sync._read_capped(r, n, 4096, s.buf)
    await sync._close(w)
    del r, w
    gc.collect()
    print("HEAP open=%%d kept=%%d c_heap=%%d" %% (a1 - a0, gc.mem_alloc() - a0, h1 - h0))
    worst = [0]

    async def tap():  # how late a 1 ms sleep wakes while requests run: the lane's wait
        while True:
            t = time.ticks_us()
            await asyncio.sleep_ms(1)
            worst[0] = max(worst[0], time.ticks_diff(time.ticks_us(), t) - 1000)

    t = asyncio.create_task(tap())
    for _ in range(N - 1):
        await s.get_small("/index.sm", 4096)
    t.cancel()
    print("DONE", st, worst[0])

asyncio.run(main())
"""


def _client(tmp, url, pin, mode, n=0, blob=None):
    from sim.runner import micropython_bin

    script = tmp / ("tls_%s_%s.py" % (mode, url.split(":")[0]))
    script.write_text(_MP % {"pin": str(pin), "mode": mode, "n": n, "url": url,
                             "size": blob[0] if blob else 0, "sha": blob[1] if blob else ""})
    env = dict(os.environ, MICROPYPATH=str((ROOT / "build" / "host").resolve()) + ":.frozen")
    # no top pad: the brk heap then grows by what mbedTLS mallocs, not in 128 KiB steps
    env.update(MALLOC_TOP_PAD_="0", MALLOC_TRIM_THRESHOLD_="1000000000")
    p = subprocess.Popen([micropython_bin(), "-X", "heapsize=192k", str(script)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
    t0 = time.monotonic()
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status or ("DONE" not in out and "BLOB" not in out):
        raise SystemExit("bench tls client failed:\n" + out[-2000:])
    return ru.ru_utime + ru.ru_stime, wall, out


def run(args):
    use_host_board()
    from flashtool.server.app import StationServer
    from flashtool.server.tls import CERT, KEY, PIN, make_station_cert, server_context

    n = 10 if args.quick else 50
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as t:
        tmp = Path(t)
        make_station_cert(tmp / "tls", ["127.0.0.1"])
        pub = tmp / "pub"
        (pub / "blobs").mkdir(parents=True)
        (pub / "index.sm").write_bytes(b"x" * 1000)
        blob = os.urandom(1 << 20)
        sha = hashlib.sha256(blob).hexdigest()
        (pub / "blobs" / sha).write_bytes(blob)
        ctx = server_context(tmp / "tls" / CERT, tmp / "tls" / KEY)
        seen = set()

        def setup(app):  # the suite each handshake agreed on, as the server saw it
            async def note(request, resp):
                seen.add(request.transport.get_extra_info("cipher"))

            app.on_response_prepare.append(note)

        servers = {"https": StationServer(pub, tmp / "s1", port=0, ssl=ctx, setup=setup),
                   "http": StationServer(pub, tmp / "s2", port=0)}
        urls = {k: s.start() for k, s in servers.items()}
        try:
            res = {}
            for scheme in ("http", "https"):
                cpu0, _, _ = _client(tmp, urls[scheme], tmp / "tls" / PIN, "small", 1)
                cpu, wall, out = _client(tmp, urls[scheme], tmp / "tls" / PIN, "small", n)
                bcpu, bwall, _ = _client(tmp, urls[scheme], tmp / "tls" / PIN, "blob",
                                         blob=(len(blob), sha))
                heap = dict(x.split("=") for x in out.split("HEAP ", 1)[1].split()[:3])
                heap["late"] = int(out.split("DONE ", 1)[1].split()[1])
                res[scheme] = (cpu - cpu0, wall, bcpu - cpu0, bwall, heap)
        finally:
            for s in servers.values():
                s.stop()
    per = {k: v[0] / (n - 1) for k, v in res.items()}
    hs = per["https"] - per["http"]
    bulk = res["https"][2] - res["http"][2]
    print("negotiated: %s" % ", ".join("%s %s" % (c[1], c[0]) for c in sorted(seen)))
    print("client CPU per request (GET of 1000 bytes, new connection each), host MicroPython, "
          "%d requests:" % (n - 1))
    print("  http  %6.2f ms   https %6.2f ms   TLS handshake and teardown %6.2f ms host"
          % (per["http"] * 1e3, per["https"] * 1e3, hs * 1e3))
    print("  ESP32 estimate (project rule, big-integer factor x%d: ECDHE + ECDSA P-256 "
          "dominate): ~%.0f ms of CPU per request, + 2 LAN round trips"
          % (BIGINT_FACTOR, hs * BIGINT_FACTOR * 1e3))
    print("1 MiB download, client CPU: http %.1f ms, https %.1f ms host; TLS adds %.1f ms/MiB "
          "-> ESP32 estimate x%d: ~%.1f s/MiB (AES/SHA in software; the ESP32's AES and SHA "
          "engines are not counted)" % (res["http"][2] * 1e3, res["https"][2] * 1e3,
                                        bulk * 1e3, CPU_FACTOR, bulk * CPU_FACTOR))
    h = res["https"][4]
    p = res["http"][4]
    print("the event loop's worst lateness (a 1 ms sleep beside the requests, wall time on a "
          "shared machine): http %.1f ms, https %.1f ms host. A handshake step runs in C "
          "without yielding: on the ESP32 up to the handshake's ECC work above, so sync waits "
          "for a quiet lane before each connection" % (p["late"] / 1e3, h["late"] / 1e3))
    print("MicroPython heap (app limit 192k, 64-bit unix): an open https connection holds "
          "%s bytes (http: %s); after it closed %s stay (http: %s): the pinned context, "
          "made once" % (h["open"], p["open"], h["kept"], p["kept"]))
    print("C heap (mbedTLS malloc, outside the MicroPython heap; ESP-IDF heap on the ESP32): "
          "+%d bytes over one https request (http: +%d); MicroPython's mbedTLS config: 16 KiB "
          "in + 4 KiB out record buffers" % (int(h["c_heap"]), int(p["c_heap"])))

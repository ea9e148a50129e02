"""`flash.py bench serve`: the station server's ingest and download figures.

The server runs as its own process (`flash.py serve`); 50 simulated readers in this process
(asyncio, aiohttp client) each upload signed 64-record batches on a fresh connection per
request, as firmware/sync.py does, and count a record only once its batch is acknowledged
(after the commit). Both processes share this machine's 2 cores, so the figures are a floor.
Then 50 readers download one 4 MiB artefact at once while the server's resident memory is
sampled. SQLite always; PostgreSQL when Debian's postgresql is installed (a throwaway cluster).
SQLite once more with the server speaking TLS (`serve --tls-cert`, a station certificate of
`keygen --station`): every request a new handshake, as the reader makes one, and no sendfile.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flashtool.server import auth, keys, records
from flashtool.server.ports import PortHold

ROOT = Path(__file__).resolve().parents[2]
READERS = 50
BATCH = 64


def _server(pub, data, db, port, tls=None):
    cmd = [sys.executable, str(ROOT / "flash.py"), "serve", "--dir", str(pub), "--data",
           str(data), "--port", str(port), "--max-conns", "512"]
    if db:
        cmd += ["--db", db]
    if tls:
        cmd += ["--tls-cert", str(tls / "station.pem"), "--tls-key", str(tls / "station.key")]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def _rss_kib(pid, field="VmRSS"):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _ingest(base, ssl, creds, seconds):
    import aiohttp

    lat = []
    acked = [0]
    stop = time.monotonic() + seconds

    async def reader(session, rid, kid, key):
        seq, ctr = 1, 0
        while time.monotonic() < stop:
            body = b"".join(records.make(s, t=1_800_000_000 + s) for s in range(seq, seq + BATCH))
            ctr += 1
            path = "/journal/" + rid
            h = {"Authorization": auth.sign(key, "POST", path, rid, kid, 1, ctr, 7, body),
                 "Journal-Epoch": "7", "Connection": "close"}
            t0 = time.perf_counter()
            async with session.post(base + path, data=body, headers=h, ssl=ssl) as r:
                reply = await r.json()
            lat.append(time.perf_counter() - t0)
            if r.status != 200 or reply["acked"] != seq + BATCH - 1:
                raise SystemExit("upload refused: %s %s" % (r.status, reply))
            acked[0] += BATCH
            seq += BATCH

    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.monotonic()
        await asyncio.gather(*(reader(session, *c) for c in creds))
        wall = time.monotonic() - t0
    lat.sort()
    return acked[0] / wall, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], \
        acked[0]


async def _downloads(base, ssl, sha, size, pid):
    import aiohttp

    peak = [0]
    done = asyncio.Event()

    async def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib(pid))
            await asyncio.sleep(0.01)

    async def one(session):
        n = 0
        async with session.get("%s/blobs/%s" % (base, sha), ssl=ssl) as r:
            async for chunk in r.content.iter_chunked(4096):
                n += len(chunk)
                await asyncio.sleep(0)  # a reader that reads as it writes flash, not a sink
        if n != size:
            raise SystemExit("download cut: %d of %d" % (n, size))

    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as session:
        s = asyncio.ensure_future(sample())
        t0 = time.monotonic()
        await asyncio.gather(*(one(session) for _ in range(READERS)))
        wall = time.monotonic() - t0
        done.set()
        await s
    return peak[0], wall


def _backend(name, db, tmp, seconds, tls=None):
    pub = tmp / ("pub-" + name)
    (pub / "blobs").mkdir(parents=True)
    data = tmp / ("data-" + name)
    blob = os.urandom(4 * 1024 * 1024)
    import hashlib

    sha = hashlib.sha256(blob).hexdigest()
    (pub / "blobs" / sha).write_bytes(blob)
    creds = []
    for i in range(READERS):
        rid = "B%02d" % i
        kid, key, _ = keys.issue(data / "readers.json", rid)
        creds.append((rid, kid, key))
    hold = PortHold()
    port = hold.port
    p = _server(pub, data, db, port, tls)
    base, ctx = "http://127.0.0.1:%d" % port, None
    if tls:
        import ssl

        base, ctx = "https://127.0.0.1:%d" % port, ssl.create_default_context(
            cafile=str(tls / "station.pem"))
    try:
        idle = _rss_kib(p.pid)
        rate, p50, p99, n = asyncio.run(_ingest(base, ctx, creds, seconds))
        print("%-10s ingest: %6.0f records/s acknowledged after commit (%d readers x %d-record "
              "batches, %d records in %.0f s); ack latency p50 %.1f ms, p99 %.1f ms" % (
                  name, rate, READERS, BATCH, n, seconds, p50 * 1e3, p99 * 1e3))
        before = _rss_kib(p.pid)
        peak, wall = asyncio.run(_downloads(base, ctx, sha, len(blob), p.pid))
        print("%-10s memory: %.1f MiB idle, %.1f MiB after ingest, peak %.1f MiB while %d "
              "readers fetch a 4 MiB artefact at once (%.1f s, %.0f MiB/s total)" % (
                  name, idle / 1024, before / 1024, peak / 1024, READERS, wall,
                  READERS * 4 / wall))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        hold.close()
    return rate


def run(args):
    from flashtool.server.pglocal import LocalPostgres, binaries

    seconds = 3 if args.quick else 10
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    print("station server, %d concurrent readers, server and clients on the same 2 cores"
          % READERS)
    rates = {"sqlite": _backend("sqlite", None, tmp, seconds)}
    from flashtool.server.tls import make_station_cert

    make_station_cert(tmp / "tls", ["127.0.0.1"])
    _backend("sqlite+tls", None, tmp, seconds, tmp / "tls")
    if binaries() is None:
        print("postgresql: not installed (apt-get install postgresql), skipped")
    else:
        pg = LocalPostgres().start()
        try:
            rates["postgresql"] = _backend("postgresql", pg.fresh_db("bench"), tmp, seconds)
        finally:
            pg.stop()
    city = 1500  # records/s at the peak of a city of 10 M taps a day (docs/station-server.md)
    for name, rate in rates.items():
        print("%-10s one server ingests the peak of %.1f cities of 10 M taps/day (%.0f/s)"
              % (name, rate / city, city))

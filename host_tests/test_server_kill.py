"""Kill -9 campaign: emulated readers (firmware/sync.py and firmware/journal.py on the
MicroPython binary, one process each, a journal in a RAM partition) tap and upload at once
while the station server process (`flash.py serve`) is killed with SIGKILL at random moments
and started again, on SQLite and on PostgreSQL. Afterwards every record any reader was told
is stored is in the database exactly once with its own bytes, and every reader has sent the
rest by itself (backlog 0). `make check-long`: 50 readers, 25 kills per backend; the short
form in `make test`: 8 readers, 3 kills.

Nothing here is decided by how fast the machine is: the server counts as up when it says so
(its "serving" line), not after a fixed time; the first restart waits until a reader has seen
an upload fail; the deadlines only catch a hang."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import BUILD, LONG, ROOT
from station_kit import (  # noqa: F401  (fixtures)
    backend,
    held_port,
    postgres,
    until,
    wait_for_line,
)

from flashtool.server import keys, records
from flashtool.server.store import open_store
from sim.runner import micropython_bin

READERS = 50 if LONG else 8
KILLS = 25 if LONG else 3

# One reader: append a record every few ms of its own, upload as sync does, retry after any
# failure (the server is gone half the time), until told to stop and its backlog is empty.
WORKLOAD = """
import asyncio, os, time
import files, journal, ota, slog, sync

slog.level = slog.ERROR
D = %(dir)r
ota.STATE_DIR = D
sync.UPLOAD_KEY = D + "/upload.key"
sync.BOOT = D + "/boot"
sync.TIMEOUT_MS = 3000


class RamPart:  # an erased NOR partition in RAM, with the esp32.Partition block calls
    def __init__(self, n):
        self.b = bytearray(b"\\xff" * (n * 4096))
        self.n = n

    def readblocks(self, blk, buf, off=0):
        a = blk * 4096 + off
        buf[:] = self.b[a:a + len(buf)]

    def writeblocks(self, blk, buf, off=0):
        a = blk * 4096 + off
        for i in range(len(buf)):
            self.b[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return 4096
        if op == 6:
            self.b[arg * 4096:(arg + 1) * 4096] = b"\\xff" * 4096
        return 0


j = journal.Journal(RamPart(18))
cfg = {"sync_url": %(url)r, "reader_id": %(rid)r, "sync_period_s": 5}
s = sync.Sync(None, cfg, j, on_app_ready=lambda: None)


async def main():
    n = fails = 0
    while True:
        stop = files.size(D + "/stop") is not None
        if not stop and n < %(cap)d:
            n += 1
            j.append(1, 0, 0, 1800000000 + n, n * 7, 5, 1, 0, n %% 300, 101)
        if j.backlog():
            try:
                await s.upload()
            except Exception:
                if not fails:  # the test waits for this before its first restart
                    open(D + "/failed", "w").close()
                fails += 1
        elif stop:
            break
        await asyncio.sleep_ms(%(gap)d)
    print("DONE", n, j.acked, j.epoch, fails)

asyncio.run(main())
"""


def _start_server(pub, data, db, port, log):
    """`flash.py serve` in its own process; returns once it says it is serving (listening)."""
    cmd = [sys.executable, str(ROOT / "flash.py"), "serve", "--dir", str(pub), "--data",
           str(data), "--port", str(port)]
    if db.startswith("postgresql://"):
        cmd += ["--db", db]
    with open(log, "wb") as f:
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for_line(p, log, "serving ")
    except BaseException:
        p.kill()  # never leave a server behind (the old 30 s deadline leaked one per failure)
        p.wait()
        raise
    return p


def expected(n):
    """The bytes a reader's journal holds for record n (what the workload appends)."""
    return records.make(n, t=1_800_000_000 + n, key=n * 7, list_seq=5, kind=1, ms=n % 300,
                        station=101)


@pytest.mark.timeout(3600)  # the full form under load; each wait inside has its own deadline
@pytest.mark.parametrize("long_form", [pytest.param(True, marks=pytest.mark.long)]
                         if LONG else [False])
def test_kill_9_campaign(tmp_path, backend, long_form, held_port):  # noqa: F811
    rng = random.Random(18)
    pub = tmp_path / "pub"
    pub.mkdir()
    data = tmp_path / "data"
    port = held_port  # nobody else takes it while the server is down between kills
    url = "http://127.0.0.1:%d" % port
    procs = []
    for i in range(READERS):
        rid = "K%02d" % i
        d = tmp_path / rid
        d.mkdir()
        keys.issue(data / "readers.json", rid, out=tmp_path / "keys")
        (d / "upload.key").write_text((tmp_path / "keys" / rid / "upload.key").read_text())
        (d / "wl.py").write_text(WORKLOAD % {"dir": str(d), "url": url, "rid": rid,
                                             "cap": 1500, "gap": 40})
    logs = iter(tmp_path / ("serve%d.log" % i) for i in range(KILLS + 1))
    server = _start_server(pub, data, backend, port, next(logs))
    env = dict(os.environ, MICROPYPATH=str(BUILD.resolve()) + ":.frozen")
    for i in range(READERS):
        d = tmp_path / ("K%02d" % i)
        # 1 MiB: the RAM partition standing in for the journal's flash is not app heap
        procs.append(subprocess.Popen([micropython_bin(), "-X", "heapsize=1m",
                                       str(d / "wl.py")], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, cwd=d))
    kills = 0
    try:
        time.sleep(1.0)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.2))
            server.send_signal(signal.SIGKILL)
            server.wait()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.4))
            if kills == 1:  # the readers noticed: the campaign hits uploads, whatever the load
                until(lambda: any((tmp_path / ("K%02d" % i) / "failed").exists()
                                  for i in range(READERS)), "a reader's failed upload")
            server = _start_server(pub, data, backend, port, next(logs))
        time.sleep(0.5)
        for i in range(READERS):
            (tmp_path / ("K%02d" % i) / "stop").write_text("")
        outs = []
        for p in procs:
            out, _ = p.communicate(timeout=1800)  # a hang only: they finish when the backlog is 0
            outs.append(out.decode())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    store = open_store(backend if backend.startswith("postgresql://")
                       else str(data / "station.db"))
    conn = store.connect()
    total = fails = 0
    for i, out in enumerate(outs):
        rid = "K%02d" % i
        done = [ln for ln in out.splitlines() if ln.startswith("DONE")]
        assert done, (rid, out[-2000:])
        n, acked, epoch, f = map(int, done[-1].split()[1:])
        fails += f
        assert acked == n, (rid, n, acked)  # the reader sent the rest by itself: backlog 0
        held = store.records_of(conn, rid)
        # every record the reader was told is stored: there, once, with its own bytes
        assert [(e, s) for e, s, _ in held] == [(epoch, s) for s in range(1, n + 1)], rid
        assert all(raw == expected(s) for _, s, raw in held), rid
        assert store.conflicts_of(conn, rid) == []
        total += n
    conn.close()
    print("kill -9 campaign (%s): %d kills, %d readers, %d records, each stored once; "
          "%d failed upload attempts retried by the readers"
          % (store.name, kills, READERS, total, fails))
    assert kills >= (20 if long_form else KILLS)
    assert fails > 0  # the kills did hit uploads in flight

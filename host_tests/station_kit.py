"""The station server as the sync tests use it (no tests here): a StationServer on loopback
with a key ring holding the test reader's upload key, what it stored, and a request log with
injected faults (a reply lost after the commit, a download cut or stalled mid-body)."""

import asyncio
import os
import threading
import time

import pytest
from aiohttp import web

from flashtool.server import keys as ring_keys
from flashtool.server.app import StationServer
from flashtool.server.ports import PortHold

READER = "R7"  # the reader id boards/host/workloads/otawl.py syncs as
FAULT = web.RequestKey("fault", bool)  # this request's reply is the injected fault
STALL_CAP = 300  # s: a stalled reply waits for the reader to hang up, at most this long


def provision_upload_key(kd, reader=READER):
    """An upload key for `reader` into the ring kd/readers.json and its reader copy
    kd/upload.key (what workload_dir puts in /keys)."""
    kid, key, path = ring_keys.issue(kd / "readers.json", reader, out=kd / "readers")
    (kd / "upload.key").write_text(path.read_text())
    return kid, key


@pytest.fixture
def held_port():
    """A loopback port for a server the test starts itself (and may kill and start again),
    kept from every other process until the test ends (flashtool.server.ports.PortHold)."""
    hold = PortHold()
    yield hold.port
    hold.close()


def until(cond, what="the condition", timeout=600):
    """Wait for something that happens by itself (a server taking connections, a reader seeing
    a failure), polled: a loaded machine makes it later, never a failure; the timeout only
    catches it never happening."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "%s: not after %d s" % (what, timeout)
        time.sleep(0.02)


def wait_for_line(proc, log, text, timeout=600):
    """Until the process wrote `text` to its log file (it is ready), or exited. The timeout
    only catches a start that hangs: a machine loaded by other work makes this slower, never
    a failure."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise RuntimeError("exited %d: %s" % (proc.returncode, log.read_text()[-2000:]))
        if time.monotonic() > deadline:
            raise RuntimeError("not ready after %d s: %s" % (timeout, log.read_text()[-2000:]))
        time.sleep(0.05)


class RequestLog:
    """Every request (method, path, Range, status, body bytes sent) and, once each, the faults
    the tests inject: the reply to the next matching POST lost after its commit; the next GET
    of a blob cut after `cut` bytes, dropped ("drop") or stalled until the reader gives up."""

    def __init__(self, pub):
        self.pub = pub
        self.log = []
        self.lock = threading.Lock()
        self.cut = None
        self.lose_reply = None

    def cut_next(self, sha, cut, how="drop"):
        self.cut = (sha, cut, how)

    def lose_next_reply(self, prefix):
        self.lose_reply = prefix

    def _take(self, attr, match):
        with self.lock:
            v = getattr(self, attr)
            if v is not None and match(v):
                setattr(self, attr, None)
                return v
        return None

    @web.middleware
    async def middleware(self, request, handler):
        rng = request.headers.get("Range")
        cut = self._take("cut", lambda v: request.path.endswith("/blobs/" + v[0]))
        if cut is not None:
            sha, n, how = cut
            data = (self.pub / "blobs" / sha).read_bytes()
            self.log.append((request.method, request.path, rng, 200, n))
            request[FAULT] = True
            resp = web.StreamResponse(status=200)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[:n])
            if how == "stall":  # silent until the reader's chunk timeout gives up on it
                for _ in range(STALL_CAP * 20):
                    if request.transport is None or request.transport.is_closing():
                        break
                    await asyncio.sleep(0.05)
            if request.transport is not None:
                request.transport.close()
            return resp
        resp = await handler(request)
        if self._take("lose_reply", lambda v: request.path.startswith(v)) is not None:
            self.log.append((request.method, request.path, rng, "lost", 0))
            request[FAULT] = True
            request.transport.close()  # committed, but the reader never hears it
            raise ConnectionResetError("reply lost (test)")
        return resp

    async def prepared(self, request, resp):
        """aiohttp's on_response_prepare: the status and length actually sent."""
        if request.get(FAULT):
            return  # logged by the fault itself (what aiohttp then tries never arrives)
        n = resp.content_length or 0
        if request.method == "HEAD" or resp.status == 304:
            n = 0
        self.log.append((request.method, request.path, request.headers.get("Range"),
                         resp.status, n))

    def setup(self, app):
        app.middlewares.append(self.middleware)
        app.on_response_prepare.append(self.prepared)

    def gets(self):
        return [x for x in self.log if x[0] == "GET"]

    def blob(self, sha):
        """[(range start or None, status, bytes sent)] of the GETs of blobs/<sha>."""
        return [(int(r[6:-1]) if r else None, code, n) for m, p, r, code, n in self.log
                if p.endswith("/blobs/" + sha)]


class Kit:
    def __init__(self, pub, data, kd, ssl=None):
        self.pub = pub
        self.log = RequestLog(pub)
        self.srv = StationServer(pub, data, ring=kd / "readers.json", port=0,
                                 setup=self.log.setup, ssl=ssl)
        self.url = self.srv.start()

    def seqs(self, reader=READER):
        st = self.srv.station
        return [s for _, s, _ in st.read(st.store.records_of, reader)]

    def fleet(self):
        from flashtool.server.app import fleet_view

        return {r["reader"]: r for r in fleet_view(self.srv.station)["readers"]}

    def forget(self):
        """Drop everything the server holds (a reader restored from a flash snapshot also
        rewinds its boot epoch, which the server would rightly refuse as a replay)."""

        def wipe(store, cur, now):
            for t in ("records", "conflicts", "readers", "alarms"):
                cur.execute("DELETE FROM %s" % t)

        done = threading.Event()
        jobs = []
        self.srv.station.writer.submit(wipe, lambda job: (jobs.append(job), done.set()))
        # waited for, not for 10 s and on regardless (a loaded writer would then leave the
        # records of the last cut in place); the deadline only catches a hung writer
        assert done.wait(600), "the station's writer did not run the wipe"
        assert jobs[0].error is None, jobs[0].error

    def stop(self):
        self.srv.stop()


@pytest.fixture
def station(tmp_path, keys):
    """(kit, published tree, url) with an empty published tree."""
    pub = tmp_path / "pub"
    pub.mkdir()
    kit = Kit(pub, tmp_path / "station", keys)
    yield kit, pub, kit.url
    kit.stop()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL cluster for the session (Debian's package; `.ci/run` installs it).
    Missing: skipped on a developer machine, a failure under CI."""
    import os

    from flashtool.server.pglocal import LocalPostgres, binaries

    if binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pg = LocalPostgres().start()
    yield pg
    pg.stop()


_DBS = [0]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """The database argument of a StationServer: a SQLite file, or a fresh PostgreSQL
    database in the session's cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "station.db")
    pg = request.getfixturevalue("postgres")
    _DBS[0] += 1
    return pg.fresh_db("station_%d_%d" % (os.getpid(), _DBS[0]))

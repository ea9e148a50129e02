"""The station server's HTTP side (aiohttp): signed artefacts out, authenticated journal
records and status in, the fleet page.

    GET  /index.sm, /<name>.sm, /blobs/<sha256>   the published tree (Range, ETag, 304)
    POST /journal/<reader>   32-byte records; answer {"acked": seq, ...} after the commit
    POST /status/<reader>    the reader's status (a small JSON object)
    GET  /                   the fleet page; GET /fleet.json what it shows

Limits: bodies over `max_body` get 413 before they are read, a body not complete within
`body_timeout` 408, a connection that has not finished a request within `idle_timeout` is
closed (slow headers included), at most `max_conns` connections (more get 503 and are
closed), and a request whose commit takes longer than `ack_timeout` 503 (not acknowledged).
"""

import asyncio
import json
import re
import threading
import time
from pathlib import Path

from aiohttp import web

from flashtool.server import auth, records
from flashtool.server.keys import KeyRing
from flashtool.server.store import ALARM_AUTH, ALARM_REFUSED, Refused, Writer, open_store

PAGE = Path(__file__).with_name("fleet.html")
_NUM = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_STATIC = re.compile(r"^/(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}\.sm|blobs/[0-9a-f]{64})$")
MAX_STATUS_KEYS = 16


class Limits:
    def __init__(self, max_body=16 * 1024, body_timeout=10.0, idle_timeout=10.0,
                 max_conns=256, ack_timeout=20.0, silent_after=600, alarm_every=600):
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.max_conns = max_conns
        self.ack_timeout = ack_timeout
        self.silent_after = silent_after  # seconds without contact: the reader is flagged
        self.alarm_every = alarm_every  # one stored alarm per reader and cause per period


class Station:
    """What the handlers share: published tree, key ring, store, writer, failure counts."""

    def __init__(self, pub, db, ring, limits):
        self.pub = Path(pub).resolve()
        self.store = open_store(str(db))
        self.ring = KeyRing(ring)
        self.limits = limits
        self.writer = Writer(self.store)
        self.read_conn = self.store.connect()
        self.read_lock = threading.Lock()
        self.failures = auth.Failures(self.ring)
        self._alarmed = {}  # (reader, cause) -> time of the last stored alarm
        self.started = int(time.time())

    def close(self):
        self.writer.close()
        self.read_conn.close()

    def read(self, fn, *args):
        with self.read_lock:
            return fn(self.read_conn, *args)

    def due(self, reader, cause, now):
        """Throttle stored alarms: a reader stuck on the same refusal retries every cycle."""
        last = self._alarmed.get((reader, cause), 0)
        if now - last < self.limits.alarm_every:
            return False
        self._alarmed[(reader, cause)] = now
        return True

    async def apply(self, fn):
        """Run fn(store, cursor, now) in the writer's next transaction; returns its result
        once committed. Raises Refused, or asyncio.TimeoutError / the database's error."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def done(job):
            loop.call_soon_threadsafe(_settle, fut, job)

        self.writer.submit(fn, done)
        return await asyncio.wait_for(asyncio.shield(fut), self.limits.ack_timeout)


STATION = web.AppKey("station", Station)


def _settle(fut, job):
    if fut.done():
        return
    if job.error is not None:
        fut.set_exception(job.error)
    else:
        fut.set_result(job.result)


def _reply(status, **kw):
    return web.json_response(kw, status=status)


async def _body(request, st):
    n = request.content_length
    if n is not None and n > st.limits.max_body:
        raise web.HTTPRequestEntityTooLarge(st.limits.max_body, n)
    try:
        return await asyncio.wait_for(request.read(), st.limits.body_timeout)
    except asyncio.TimeoutError:
        raise web.HTTPRequestTimeout() from None


async def _authenticate(request, st, body, jepoch):
    rid = request.match_info["reader"]
    try:
        claim = auth.verify(st.ring, request.method, request.raw_path,
                            request.headers.get("Authorization"), jepoch, body)
        if claim.reader != rid:
            raise auth.AuthError(403, "credential of another reader", claim.reader)
    except auth.AuthError as e:
        who, n = st.failures.add(e.reader or rid, e.reason)  # the id claimed, or the path's
        now = int(time.time())
        if st.due(who, ALARM_AUTH, now):
            await _try_alarm(st, who, ALARM_AUTH, "%s (%d so far)" % (e.reason, n))
        cls = web.HTTPUnauthorized if e.status == 401 else web.HTTPForbidden
        raise cls(text=json.dumps({"error": e.reason}), content_type="application/json") \
            from None
    return claim


async def _try_alarm(st, reader, kind, detail):
    try:
        await st.apply(lambda s, cur, now: s.alarm(cur, reader, kind, detail, now))
    except Exception:  # noqa: BLE001 (an alarm that cannot be stored is still counted)
        pass


def _refusal(st, claim, e, now, cur):
    if st.due(claim.reader, ALARM_AUTH, now):
        st.store.alarm(cur, claim.reader, ALARM_AUTH, str(e), now)


async def journal(request):
    st = request.app[STATION]
    body = await _body(request, st)
    jepoch = request.headers.get("Journal-Epoch", "")
    claim = await _authenticate(request, st, body, jepoch)  # first: strangers learn nothing
    if not _NUM.match(jepoch):
        return _reply(400, error="missing or malformed Journal-Epoch")
    if not body or len(body) % records.REC:
        return _reply(400, error=records.PARTIAL)
    recs = [body[i:i + records.REC] for i in range(0, len(body), records.REC)]
    bad_at, why = None, None
    for i, r in enumerate(recs):
        why = records.check(r)
        if why:
            bad_at = i
            break
    good = recs if bad_at is None else recs[:bad_at]
    ep = int(jepoch)

    def apply(store, cur, now):
        try:
            store.admit(cur, claim, now)
        except Refused as e:
            _refusal(st, claim, e, now, cur)
            raise
        out = store.put_records(cur, claim.reader, ep, good, now) if good else (0, 0, 0)
        if bad_at is not None and st.due(claim.reader, ALARM_REFUSED, now):
            store.alarm(cur, claim.reader, ALARM_REFUSED, "record %d of a batch: %s (the "
                        "reader keeps it)" % (bad_at, why), now)
        return out

    try:
        new, dup, odd = await st.apply(apply)
    except Refused as e:
        return _reply(401, error=str(e))
    except Exception as e:  # noqa: BLE001 (not committed: not acknowledged)
        return _reply(503, error="not stored: %s" % type(e).__name__)
    acked = _acked(good)
    if bad_at is not None:
        return _reply(422, acked=acked, refused=bad_at, error=why, new=new, dup=dup,
                      conflicts=odd)
    return _reply(200, acked=acked, new=new, dup=dup, conflicts=odd)


def _acked(good):
    """The highest seq the reader may drop: the contiguous run from the batch's first record
    (all of it now committed, as new, duplicate or kept-aside conflict)."""
    if not good:
        return 0
    top = records.seq(good[0])
    for r in good[1:]:
        s = records.seq(r)
        if s != top + 1:
            break
        top = s
    return top


def _status_ok(v):
    if not isinstance(v, dict) or len(v) > MAX_STATUS_KEYS:
        return False
    for k, x in v.items():
        if len(k) > 32 or not (x is None or isinstance(x, (bool, int, float))
                               or (isinstance(x, str) and len(x) <= 64)):
            return False
    return True


async def status(request):
    st = request.app[STATION]
    body = await _body(request, st)
    claim = await _authenticate(request, st, body, "0")
    try:
        v = json.loads(body)
    except ValueError:
        v = None
    if not _status_ok(v):
        return _reply(400, error="malformed status (a flat JSON object of scalars)")

    def apply(store, cur, now):
        try:
            store.admit(cur, claim, now)
        except Refused as e:
            _refusal(st, claim, e, now, cur)
            raise
        store.put_status(cur, claim.reader, v, now)

    try:
        await st.apply(apply)
    except Refused as e:
        return _reply(401, error=str(e))
    except Exception as e:  # noqa: BLE001
        return _reply(503, error="not stored: %s" % type(e).__name__)
    return _reply(200)


async def static(request):
    st = request.app[STATION]
    path = request.path
    if not _STATIC.match(path):
        raise web.HTTPNotFound()
    f = st.pub / path[1:]
    if not f.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(f, headers={"Cache-Control": "no-cache" if path.endswith(".sm")
                                        else "public, max-age=31536000, immutable"})


def fleet_view(st):
    """What the fleet page shows: every reader of the ring or the store, with its alarms."""
    now = int(time.time())
    rows = st.read(st.store.fleet)
    for rid in st.ring.readers():
        rows.setdefault(rid, {"status": {}, "last_seen": None, "held": 0, "kid": None,
                              "jepoch": None, "top_seq": None, "alarms": {}})
    out = []
    for rid, r in sorted(rows.items()):
        s = r["status"]
        fails = st.failures.counts.get(rid)
        silent = r["last_seen"] is None or now - r["last_seen"] > st.limits.silent_after
        out.append({"reader": rid, "app": s.get("app"), "list": s.get("list"),
                    "index": s.get("index"), "backlog": s.get("backlog"),
                    "last_seen": r["last_seen"], "held": r["held"], "key_id": r["kid"],
                    "journal_epoch": r["jepoch"], "top_seq": r["top_seq"],
                    "conflicts": r["alarms"].get("conflict", {}).get("count", 0),
                    "refused": r["alarms"].get("refused", {}).get("count", 0),
                    "auth_failures": fails[0] if fails else 0,
                    "auth_reason": fails[2] if fails else None,
                    "silent": silent, "known": st.ring.known(rid)})
    unknown = st.failures.counts.get("(unknown)")
    alarms = [{"reader": a[0], "kind": a[1], "detail": a[2], "at": a[3]}
              for a in st.read(st.store.alarms_of)]
    return {"now": now, "backend": st.store.name, "silent_after": st.limits.silent_after,
            "readers": out, "alarms": alarms,
            "unknown_auth_failures": unknown[0] if unknown else 0}


async def fleet_json(request):
    st = request.app[STATION]
    view = await asyncio.to_thread(fleet_view, st)
    return web.json_response(view, headers={"Cache-Control": "no-store"})


async def fleet_page(request):
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


def make_app(station, setup=None):
    app = web.Application(client_max_size=station.limits.max_body)
    app[STATION] = station
    if setup is not None:
        setup(app)
    app.router.add_get("/", fleet_page)
    app.router.add_get("/fleet.json", fleet_json)
    app.router.add_post("/journal/{reader}", journal)
    app.router.add_post("/status/{reader}", status)
    app.router.add_get("/{tail:.*}", static)
    return app


class _Busy(asyncio.Protocol):
    """A connection over the limit: a 503 and close, before any of its bytes are read."""

    def connection_made(self, transport):
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                        b"Retry-After: 5\r\nConnection: close\r\n\r\n")
        transport.close()


class _Bounded:
    """Protocol factory around aiohttp's: at most `limit` connections at once."""

    def __init__(self, server, limit):
        self.server = server
        self.limit = limit
        self.refused = 0

    def __call__(self):
        if len(self.server.connections) >= self.limit:
            self.refused += 1
            return _Busy()
        return self.server()


class StationServer:
    """The server in a thread of its own (tests, emulator: start/stop) or in the foreground
    (`flash.py serve`: run())."""

    def __init__(self, pub, data="var/station", db=None, ring=None, host="127.0.0.1",
                 port=8080, limits=None, ssl=None, setup=None):
        """setup(app): called on the aiohttp Application before it runs (tests add a request
        log and injected faults through aiohttp's own middlewares and signals)."""
        data = Path(data)
        data.mkdir(parents=True, exist_ok=True)
        self.db = db or str(data / "station.db")
        self.ring_path = Path(ring) if ring else data / "readers.json"
        self.pub = pub
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.ssl = ssl
        self.setup = setup
        self.station = None
        self._loop = None
        self._thread = None

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.ssl else "http", self.host, self.port)

    async def _start(self):
        self.station = Station(self.pub, self.db, self.ring_path, self.limits)
        self._runner = web.AppRunner(make_app(self.station, self.setup), access_log=None,
                                     keepalive_timeout=self.limits.idle_timeout)
        await self._runner.setup()
        self.bounded = _Bounded(self._runner.server, self.limits.max_conns)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.bounded, self.host, self.port,
                                                ssl=self.ssl, backlog=128, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self):
        self._server.close()
        await self._server.wait_closed()
        await self._runner.cleanup()
        self.station.close()

    def start(self):
        ready = threading.Event()
        err = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as e:  # noqa: BLE001 (reported to start())
                err.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="station-server", daemon=True)
        self._thread.start()
        ready.wait()  # no deadline: a loaded machine starts it late, never "not at all"
        if err:
            raise err[0]
        return self.url

    def stop(self):
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None

    def run(self, on_ready=None):
        """Foreground until SIGINT/SIGTERM."""
        import signal

        async def main():
            await self._start()
            if on_ready:
                on_ready(self)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            await self._stop()

        asyncio.run(main())

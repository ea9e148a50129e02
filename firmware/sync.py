"""Sync with the station update server over HTTP/1.1 on asyncio streams (TLS for an https://
URL, see below): fetch the signed index, install what is new (app bundle into the inactive
slot, lists through the list store), upload journal batches, report status, back off on failure.

Everything fetched is checked before use: the index by its signature, each artefact manifest by
the hash the index signed for it (no mixing releases) and its own signature, each file by its
signed size (a server sending more is cut off: endless data) and SHA-256. Every network wait
has a timeout and every chunk is followed by a yield, so a dead, slow or lying server costs the
lane nothing but a log line; buffers are fixed (4 KiB), so memory is bounded whatever arrives.

Every download resumes after a dropped connection, a stopped server or a power cut: app files
from their committed `.part` (appstage.AppStager); firmware images and lists from a small progress
record in /ota (ota.DL_FIRMWARE, ota.DL_LIST) naming the signed file's SHA-256, the target
partition or slot (and for lists the switch-record generation) and the bytes durably in flash,
saved every CHECKPOINT bytes and once more when a transfer breaks. A resume re-reads that
prefix from flash into every hash (never trusted) and asks for the rest with `Range: bytes=N-`;
any refusal of a download (digest, signature, length, a 200 where 206 was asked) drops the
record so the next attempt starts from byte 0.

Uploads and status reports are signed with the reader's own key (/keys/upload.key, put there at
provisioning): HMAC-SHA256 over method, path, reader id, key id, boot epoch (/ota/boot, one more
at every boot), a request counter and the body (`_sign`; the server's flashtool/server/auth.py
checks the same bytes). The journal cursor moves only to what the server says it committed; a
record the server refuses (422: bad CRC, unknown kind) stays in the journal.

TLS (sync_url https://) adds what signatures cannot: nobody on the station LAN reads the
records or forges the server's answers ("acked") to make a reader drop them. The server must
prove it holds the key of the certificate pinned at provisioning (STATION_CERT: the station's
self-signed certificate or its CA, DER); its name (the URL's host) and dates are checked by
mbedTLS; there is no fallback to plain HTTP and no other trust store. A refused handshake is a
SyncError E_TLS, raised before a byte of the request is sent. The handshake's ECC work runs in
C without yielding (about 2 s of ESP32 CPU by the project's estimate, flash.py bench tls), so
each connection waits for a quiet lane first, as flash-heavy steps do.
"""

import asyncio
import gc
import json

import appstage
import bootsel
import files
import fwstage
import ota
import signedmanifest as sm
import slog
from micropython import const
from ridecode.hmac256 import hmac_sha256

log = slog.Logger("sync")

_BUF = const(4096)
TIMEOUT_MS = 5000  # per connect / per chunk: a server that stalls longer is abandoned
MAX_BACKOFF_S = 900
BATCH = 64  # journal records per upload
INDEX = "/ota/index.sm"  # the last index fully applied (skip re-verifying an unchanged one)
INDEX_TAG = "/ota/index.tag"  # the server's ETag for it (conditional GET: 304 when unchanged)
UPLOAD_KEY = "/keys/upload.key"  # {"reader", "kid", "key": hex}: this reader's upload key
BOOT = "/ota/boot"  # boot epoch of the signed requests: one more at every boot
FIRMWARE = "/ota/firmware"  # version of the last full-firmware image staged
STATION_CERT = "/keys/station.der"  # pinned station certificate (or CA) for https:// (DER)
_HDR_MAX = const(1024)
# Progress records are written to LittleFS every CHECKPOINT bytes durably in flash (a whole
# number of sectors; not per chunk: flash wear) and when a transfer breaks; a power cut costs at
# most this much again.
CHECKPOINT = 64 * 1024


class SyncError(OSError):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


E_HTTP = 71  # EPROTO: malformed reply or cut body (a transfer that broke: resumable)
E_STATUS = 74  # EBADMSG: an unexpected status (e.g. 200 where a Range asked for 206): refused
E_TLS = 13  # EACCES: https and the server is not the pinned station (or nothing is pinned)
_NOT_TLS = const(-0x7200)  # MBEDTLS_ERR_SSL_INVALID_RECORD: the bytes that came back were not TLS


def _refused(e):
    """A failure that condemns what was downloaded so far (as opposed to a transfer that
    broke): the bytes or the server's answer were wrong, so a resume must not build on them."""
    return isinstance(e, ValueError) or (isinstance(e, SyncError) and e.code == E_STATUS)


class Sync:
    def __init__(self, board, cfg, journal=None, lists=None, on_app_ready=None, quiet=None):
        """on_app_ready(): a new app is staged (default: reset into it now). quiet(): awaited
        before each flash-heavy step (staging a file, installing a list) so the app can hold
        them while a rider is in the lane; default: no wait."""
        self.board = board
        self.quiet = quiet
        self.cfg = cfg
        self.journal = journal
        self.lists = lists
        self.fares = None  # the fare path (ticketing.Ticketing) when the reader charges fares
        self.on_app_ready = on_app_ready or board.reset
        self.host, self.port, self.prefix, self.tls = parse_url(cfg["sync_url"])
        self._ctx = None  # the TLS client context (https), made once
        self.rid = cfg["reader_id"]
        self.buf = bytearray(_BUF)
        self.etag = None  # of the last response
        self._key = None  # (kid, key) once loaded
        self._boot = 0
        self._ctr = 0
        self.index_version = 0
        self.fails = 0
        self.last_ok = None  # ticks_ms of the last good cycle

    # --- the task --------------------------------------------------------------------------
    async def run(self):
        while True:
            try:
                await self.cycle()
                self.fails = 0
                self.last_ok = self.board.clock.ticks_ms()
            except Exception as e:  # the sync task must outlive any server behaviour
                self.fails += 1
                log.warn("fail", "%r (attempt %d)", e, self.fails)
            await asyncio.sleep(self.delay())

    def delay(self):
        """Poll period; after failures exponential backoff, spread per reader so 30,000 readers
        coming back after an outage do not arrive in the same second."""
        period = self.cfg["sync_period_s"]
        if not self.fails:
            return period
        spread = sum(self.rid.encode()) % 7
        return min(MAX_BACKOFF_S, period * (1 << min(self.fails, 8))) + spread

    async def cycle(self):
        await self.update()
        await self.upload()
        await self.report()

    # --- updates -----------------------------------------------------------------------------
    async def update(self):
        have = files.read(INDEX)
        tag = None
        if have is not None:
            tag = files.read(INDEX_TAG)  # the server's own ETag: any static server or CDN
            tag = tag.decode() if tag else None
            if not self.index_version:  # verified when it was stored
                self.index_version = json.loads(have[have.index(b"\n") + 1:])["version"]
        raw = await self.get_small("/index.sm", sm.MAX_MANIFEST, tag)
        if raw is None:
            return False  # 304 Not Modified: nothing new
        itag = self.etag
        if raw == have:
            _keep_tag(itag)
            return False
        await self._quiet()  # a signature check is ~50 ms of CPU on the ESP32: not mid-tap
        gc.collect()  # keys and the big-integer check need a few contiguous 0.5 KB blocks
        keys = ota.load_keys()
        clock = self.board.clock
        idx = ota.verify(raw, "index", self.board.NAME, clock, keys)
        if have is not None:
            idx.check_newer(ota.verify(have, "index", self.board.NAME, None, keys).version,
                            allow_same=False)
        staged = False
        deferred = False
        for entry in idx.files:
            data = await self.get_small("/" + entry[0], entry[1])
            check = sm.FileCheck(entry)  # the index signed this exact manifest
            check.update(data)
            check.finish()
            await self._quiet()
            gc.collect()
            m = sm.verify(data, keys, None, self.board.NAME, ota.time_floor(clock))
            await asyncio.sleep_ms(0)
            if m.kind == "app":
                done = await self.install_app(data, m)
                staged = staged or done is True
                deferred = deferred or done is None
            elif m.kind == "list":
                await self.install_list(m)
            elif m.kind == "fares":
                await self.install_fares(data, m)
            elif m.kind == "firmware":
                staged = await self.install_firmware(m) or staged
            else:
                log.info("skip", "%s kind=%s", entry[0], m.kind)
        ota.raise_floor(idx.issued)
        await asyncio.sleep_ms(0)
        if not deferred:  # else the same index is applied again on a later cycle
            files.mkdir(ota.STATE_DIR)
            files.replace(INDEX, raw)  # first: a tag must never vouch for an index not kept
            _keep_tag(itag)
            self.index_version = idx.version
        log.info("index", "version=%d deferred=%d", idx.version, deferred)
        if staged:
            log.info("restart", "new app staged")
            self.on_app_ready()
        return True

    async def install_app(self, data, m):
        """True: staged; False: nothing to do; None: not now (the running app is still on
        probation), try again on a later cycle."""
        version, _, failed = ota.installed()
        rec = bootsel.read()
        if m.version <= version or m.version == failed:
            return False
        if rec is not None and rec.get("state") in ("new", "pending"):
            return None
        st = appstage.AppStager(data, m)
        for _ in st.prepare():
            await asyncio.sleep_ms(0)
        for e in st.pending():
            await self._quiet()
            off = st.begin(e)
            try:
                if off < e[1]:  # a .part cut just before its rename needs no more bytes
                    await self.fetch(e, off, st.write)
            except BaseException:
                st.abort()
                raise
            st.end()
            await asyncio.sleep_ms(0)
        for _ in st.finish():
            await asyncio.sleep_ms(0)
        return True

    async def install_firmware(self, m):
        """A full-firmware image into the next OTA partition (fwstage.FirmwareStager); versions
        only go up (the last one staged is kept in FIRMWARE). An interrupted download resumes
        from its progress record (ota.DL_FIRMWARE)."""
        try:
            have = int(files.read(FIRMWARE) or b"0")
        except ValueError:
            have = 0
        if m.version <= have:
            return False
        await self._quiet()
        entry = m.files[0]
        st = fwstage.FirmwareStager(m, self.board.Partition)
        off = 0
        rec = ota.load_progress(ota.DL_FIRMWARE, entry[2])
        if rec is not None:
            try:
                for _ in st.resume(rec):
                    await asyncio.sleep_ms(0)
                off = rec["n"]
            except (OSError, ValueError) as e:  # a void record: start from byte 0
                log.warn("resume", "firmware %s: %r", entry[2][:12], e)
                files.remove(ota.DL_FIRMWARE)
                st = fwstage.FirmwareStager(m, self.board.Partition)
        if off:
            log.info("resume", "firmware %s at %d of %d", entry[2][:12], off, entry[1])
        await self._download(ota.DL_FIRMWARE, entry, off, st.write, st.durable, st.progress)
        await self._quiet()
        try:
            for _ in st.finish():
                await asyncio.sleep_ms(0)
        except Exception:
            files.remove(ota.DL_FIRMWARE)  # refused: the next attempt starts from byte 0
            raise
        files.remove(ota.DL_FIRMWARE)
        files.mkdir(ota.STATE_DIR)
        files.replace(FIRMWARE, str(m.version))
        return True

    async def install_list(self, m):
        """Each list file streamed into the list store's installer; an interrupted download
        resumes from its progress record (ota.DL_LIST): the installer checks the header it
        wrote to flash again and re-hashes the prefix from flash, as does this file's check."""
        lists = self.lists
        if lists is None:
            return
        if m.version <= lists.seq:
            rec = ota.read_progress(ota.DL_LIST)  # a cut between the switch and its removal
            if rec is not None and [e for e in m.files if e[2] == rec.get("sha")]:
                files.remove(ota.DL_LIST)
            return
        for e in m.files:
            await self._quiet()
            inst = lists.begin(e[1])
            check = sm.FileCheck(e)
            off = 0
            rec = ota.load_progress(ota.DL_LIST, e[2])
            if rec is not None:
                try:
                    for _ in inst.resume(rec["slot"], rec["base"], rec["gen"], rec["n"],
                                         check.update):
                        await asyncio.sleep_ms(0)
                    off = rec["n"]
                except (KeyError, TypeError, ValueError) as ex:  # void or refused header
                    log.warn("resume", "list %s: %r", e[2][:12], ex)
                    files.remove(ota.DL_LIST)
                    inst = lists.begin(e[1])
                    check = sm.FileCheck(e)
            if off:
                log.info("resume", "list %s at %d of %d", e[2][:12], off, e[1])

            def sink(b, n, inst=inst, check=check):
                check.update(b, n)  # signed size and hash first: a lying server stops here
                inst.write(memoryview(b)[:n])

            def record(inst=inst, sha=e[2]):
                slot, base, gen, n = inst.progress()
                return {"sha": sha, "slot": slot, "base": base, "gen": gen, "n": n}

            await self._download(ota.DL_LIST, e, off, sink, inst.durable, record)
            await self._quiet()  # the signature check and the switch record's erase
            try:
                check.finish()
                seq = inst.finish()
            except Exception:
                files.remove(ota.DL_LIST)  # refused: the next attempt starts from byte 0
                raise
            files.remove(ota.DL_LIST)
            log.info("list", "seq=%d bytes=%d fetched=%d", seq, e[1], e[1] - off)

    async def install_fares(self, data, m):
        """A fare table: streamed into a .tmp file through its signed size and hash, then
        file and manifest replace the old ones and the fare path takes the table at once.
        Versions only go up (a reader without a valid table takes any)."""
        tick = self.fares
        if tick is None:
            return
        have = tick.fares.version if tick.fares is not None else 0
        if m.version <= have:
            return
        import os

        import fares

        e = m.file("fares.bin")
        check = sm.FileCheck(e)
        tmp = fares.BIN_PATH + ".tmp"
        await self._quiet()
        with open(tmp, "wb") as f:

            def sink(b, n):
                check.update(b, n)
                f.write(memoryview(b)[:n])

            await self.fetch(e, 0, sink)
        check.finish()
        os.rename(tmp, fares.BIN_PATH)
        files.replace(fares.SM_PATH, data)
        tick.set_fares(fares.load(tick.station, ota.load_keys(), self.board.NAME,
                                  self.board.clock.time() or 0))
        log.info("fares", "version=%d", m.version)

    async def _download(self, path, entry, off, sink, durable, record):
        """fetch() from off into sink, keeping the progress record at path: saved (record())
        each time durable() has grown by CHECKPOINT bytes, and once more when the transfer
        breaks (connection, timeout, server gone); dropped when the download is refused."""
        saved = [off]

        def put(b, n):
            sink(b, n)
            d = durable()
            if d - saved[0] >= CHECKPOINT:  # only bytes already programmed and read back
                ota.save_progress(path, record())
                saved[0] = d

        try:
            await self.fetch(entry, off, put)
        except Exception as e:
            if _refused(e):
                files.remove(path)
            elif durable() > saved[0]:
                try:
                    ota.save_progress(path, record())
                except OSError:
                    pass  # the last checkpoint stands
            raise

    async def _quiet(self):
        if self.quiet is not None:
            await self.quiet()

    async def fetch(self, entry, offset, sink):
        """Stream blobs/<sha> from `offset` into sink(buf, n). The sink checks each chunk
        against the signed entry (size cap, hash), so a server sending more than signed is
        cut off at the first byte too many."""
        r, w, status, length = await self.request("GET", "/blobs/" + entry[2], start=offset)
        try:
            if status != (206 if offset else 200):
                raise SyncError(E_STATUS, "GET %s from %d: %d" % (entry[2][:12], offset, status))
            buf = self.buf
            got = 0
            while length is None or got < length:
                n = await asyncio.wait_for_ms(r.readinto(buf), TIMEOUT_MS)
                if not n:
                    break
                got += n
                await self._quiet()  # the sink erases and programs flash: not mid-tap
                sink(buf, n)
                await asyncio.sleep_ms(0)
            if length is not None and got < length:
                raise SyncError(E_HTTP, "body cut at %d of %d" % (got, length))
        finally:
            await _close(w)

    # --- journal upload and status -------------------------------------------------------------
    async def upload(self):
        j = self.journal
        while j is not None and j.backlog():
            recs = j.pending(BATCH)
            if not recs:
                return
            last = int.from_bytes(recs[-1][4:8], "little")
            status, reply = await self.post("/journal/" + self.rid, b"".join(recs), j.epoch)
            reply = json.loads(reply)
            acked = min(int(reply["acked"]), last)
            j.ack(acked)  # only what the server says it committed
            log.info("upload", "records=%d acked=%d backlog=%d", len(recs), acked, j.backlog())
            if status == 422:  # a record refused (bad CRC, unknown kind): kept here
                log.warn("upload", "refused record %s: %s", reply.get("refused"),
                         reply.get("error"))
            if acked < last:
                return

    async def report(self):
        version, _, failed = ota.installed()
        st = {"app": version, "failed": failed, "index": self.index_version,
              "list": self.lists.seq if self.lists is not None else None,
              "backlog": self.journal.backlog() if self.journal is not None else None,
              "time": self.board.clock.time()}
        await self.post("/status/" + self.rid, json.dumps(st).encode())

    def _sign(self, method, path, jepoch, body):
        """The Authorization value: this reader's MAC over the request (flashtool/server/
        auth.py checks the same bytes). Without a provisioned key: None (the server refuses)."""
        if self._key is None:
            raw = files.read(UPLOAD_KEY)
            if raw is None:
                return None
            k = json.loads(raw)
            if k["reader"] != self.rid:
                log.error("auth", "upload key is for %s, not %s", k["reader"], self.rid)
                return None
            self._key = (int(k["kid"]), bytes.fromhex(k["key"]))
        if not self._boot:  # once per boot: a counter that never repeats across reboots
            try:
                self._boot = int(files.read(BOOT) or b"0") + 1
            except ValueError:
                self._boot = 1
            files.mkdir(ota.STATE_DIR)
            files.replace(BOOT, str(self._boot))
        self._ctr += 1
        kid, key = self._key
        head = "RDR1\n%s\n%s%s\n%s\n%d\n%d\n%d\n%d\n" % (
            method, self.prefix, path, self.rid, kid, self._boot, self._ctr, jepoch)
        mac = sm._hex(hmac_sha256(key, head.encode(), body))
        return "Reader %s %d %d %d %s" % (self.rid, kid, self._boot, self._ctr, mac)

    # --- HTTP -----------------------------------------------------------------------------------
    def _tls(self):
        """The client context for https: the pinned station certificate as the only trust
        anchor, the server's certificate required (chain, name, dates: mbedTLS)."""
        if self._ctx is None:
            der = files.read(STATION_CERT)
            if der is None:
                raise SyncError(E_TLS, "https needs a pinned station certificate in "
                                + STATION_CERT)
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED
            try:
                ctx.load_verify_locations(cadata=der)
            except ValueError as e:
                raise SyncError(E_TLS, "%s unusable: %s" % (STATION_CERT, e)) from None
            self._ctx = ctx
        return self._ctx

    async def get_small(self, path, cap, etag=None):
        """A small file, capped; None when the server says it is unchanged (etag)."""
        r, w, status, length = await self.request("GET", path, etag=etag)
        try:
            if status == 304 and etag:
                return None
            if status != 200:
                raise SyncError(E_HTTP, "GET %s: %d" % (path, status))
            return await _read_capped(r, length, cap, self.buf)
        finally:
            await _close(w)

    async def post(self, path, body, jepoch=None):
        """A signed POST; (status, reply body) for 200, or 422 on a journal upload (a record
        refused: the reply says how far the batch was committed)."""
        auth = self._sign("POST", path, 0 if jepoch is None else jepoch, body)
        r, w, status, length = await self.request("POST", path, body, auth=auth,
                                                  jepoch=jepoch)
        try:
            if status != 200 and not (status == 422 and jepoch is not None):
                reply = await _read_capped(r, length, 1024, self.buf)
                raise SyncError(E_HTTP, "POST %s: %d %s" % (path, status, reply[:80]))
            return status, await _read_capped(r, length, 1024, self.buf)
        finally:
            await _close(w)

    async def request(self, method, path, body=None, start=0, etag=None, auth=None,
                      jepoch=None):
        """Send one request (Connection: close); returns (reader, writer, status, length)
        and keeps the reply's ETag in self.etag."""
        ctx = None
        if self.tls:
            ctx = self._tls()
            await self._quiet()  # the handshake's ECC work runs in C without yielding
        r, w = await asyncio.wait_for_ms(asyncio.open_connection(self.host, self.port, ctx),
                                         TIMEOUT_MS)
        self.etag = None
        try:
            head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
                method, self.prefix, path, self.host)
            if auth:
                head += "Authorization: %s\r\n" % auth
            if jepoch is not None:
                head += "Journal-Epoch: %d\r\n" % jepoch
            if start:
                head += "Range: bytes=%d-\r\n" % start
            if etag:
                head += "If-None-Match: %s\r\n" % etag
            if body is not None:
                head += "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % len(
                    body)
            try:  # with TLS the handshake runs here, before any of these bytes leave
                w.write(head.encode() + b"\r\n")
                if body is not None:
                    w.write(body)
                await asyncio.wait_for_ms(w.drain(), TIMEOUT_MS)
            except (ValueError, OSError) as e:
                if ctx is None or (isinstance(e, OSError) and e.errno > 0):
                    raise  # plain HTTP, or the connection itself (refused, reset)
                why = " ".join(str(a) for a in e.args).strip()
                if e.args and e.args[0] == _NOT_TLS:
                    why += " (the server does not speak TLS)"
                raise SyncError(E_TLS, "TLS to %s refused: %s" % (self.host, why)) from None
            line = await asyncio.wait_for_ms(r.readline(), TIMEOUT_MS)
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise SyncError(E_HTTP, "bad status line")
            status = int(parts[1])
            length = None
            seen = 0
            while True:
                h = await asyncio.wait_for_ms(r.readline(), TIMEOUT_MS)
                seen += len(h)
                if seen > _HDR_MAX or not h:
                    raise SyncError(E_HTTP, "headers too long or cut")
                if h in (b"\r\n", b"\n"):
                    break
                k, _, v = h.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v.strip())
                elif k == b"etag" and len(v) < 100:
                    self.etag = v.strip().decode()
            return r, w, status, length
        except BaseException:
            await _close(w)
            raise


def _keep_tag(tag):
    if tag:
        files.replace(INDEX_TAG, tag)
    else:
        files.remove(INDEX_TAG)


async def _read_capped(r, length, cap, buf):
    """A small body (manifest, reply): refuse anything over cap bytes. Reads through the
    preallocated buffer: a fresh 4 KiB block per read would not fit a fragmented heap."""
    if length is not None and length > cap:
        raise sm.ManifestError(sm.E_LENGTH, "%d bytes over the %d cap" % (length, cap))
    out = b""
    while length is None or len(out) < length:
        n = await asyncio.wait_for_ms(r.readinto(buf), TIMEOUT_MS)
        if not n:
            break
        out += buf[:n]
        if len(out) > cap:
            raise sm.ManifestError(sm.E_LENGTH, "body over the %d cap" % cap)
    return out


async def _close(w):
    try:
        w.close()
        await w.wait_closed()
    except OSError:
        pass


def parse_url(url):
    """'http[s]://host:port/prefix' -> (host, port, prefix, tls). Integrity comes from the
    signatures either way; https adds confidentiality and a server that must be the station."""
    tls = url.startswith("https://")
    if not (tls or url.startswith("http://")):
        raise ValueError("sync_url must be http[s]://host[:port][/prefix]")
    rest = url[8 if tls else 7:]
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port or (443 if tls else 80)), ("/" + prefix).rstrip("/"), tls

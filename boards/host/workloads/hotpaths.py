"""The reader's hot paths, run back to back on fixed inputs: the workload `flash.py bench device`
counts on the QEMU Cortex-M3 (executed instructions) and times on the host interpreters (the
old x50 rule's input), so both columns come from the very same work.

Input: one blob the host prepares (flashtool.bench.device), at the QEMU board's DATA address
or in /extra/hotpaths.bin on the emulated board: b"HOT1", u32 item count, u32 total length,
then per item an 8-byte name, a u32 length, the bytes, padded to 4. Output lines:
  HOT name reps ticks_us flash_reads read_bytes programs program_bytes erases
(totals over `reps` runs; ticks are µs, on QEMU -icount shift=0 a µs is 1,000 instructions),
  CAL name norm ticks_us   (calibrate(): MicroPython's own tests/perf_bench, N=100 M=100),
  MEM free_at_end min_free (after a collection: what the hot paths keep live).
Everything is seeded or fixed, so QEMU gives the same counts on every run.
"""

import gc
import struct
import time

import board


def _items(blob):
    if bytes(blob[:4]) != b"HOT1":
        raise ValueError("not a hot-path input")
    n = struct.unpack_from("<I", blob, 4)[0]
    out = {}
    p = 12
    mv = memoryview(blob)
    for _ in range(n):
        name = bytes(blob[p:p + 8]).rstrip(b"\0").decode()
        k = struct.unpack_from("<I", blob, p + 8)[0]
        out[name] = mv[p + 12:p + 12 + k]
        p += 12 + (k + 3) // 4 * 4
    return out


def _input():
    """The QEMU board's preloaded input in place, or the file on the emulated board."""
    if hasattr(board, "DATA"):
        import uctypes

        total = struct.unpack_from("<I", uctypes.bytearray_at(board.DATA, 12), 8)[0]
        return _items(uctypes.bytearray_at(board.DATA, total))
    with open("/extra/hotpaths.bin", "rb") as f:
        return _items(f.read())


_flash = getattr(board, "flash", None)


def _counts():
    f = _flash
    if f is None or not hasattr(f, "reads"):
        return (0, 0, 0, 0, 0)
    return (f.reads, f.read_bytes, f.programs, f.program_bytes, f.erases)


_low = [1 << 20]


def align():
    """Wait for the next ms tick: the counts that follow meet the 1 ms timer interrupt (and
    every ms-granular timeout and RTC second) at the same instructions on every run, wherever
    the tick stood when the program began (how long the guest idled waiting for the script on
    its serial line, or on an asyncio timer, follows the host's I/O timing)."""
    t = time.ticks_ms()
    while time.ticks_ms() == t:
        pass


def measure(name, reps, fn):
    """Run fn(i) reps times after a collection; print the totals."""
    gc.collect()
    c0 = _counts()
    t0 = time.ticks_us()
    for i in range(reps):
        fn(i)
    t = time.ticks_diff(time.ticks_us(), t0)
    c1 = _counts()
    gc.collect()
    free = gc.mem_free()
    if free < _low[0]:
        _low[0] = free
    print("HOT %s %d %d %d %d %d %d %d" % ((name, reps, t) + tuple(b - a for a, b in zip(c0, c1))))


class _ReplayUart:
    """The PN532's UART replaying one recorded tap: what the chip sent after each request
    becomes readable once the reader has written that request (no wire time: modelled)."""

    def __init__(self, rec):
        self._rec = rec
        self.restart()

    def restart(self, pos=0):
        self._pos = pos  # next record
        self._rx = b""
        self._rp = 0

    def write(self, buf):
        """The reader's request: step over its record, make the chip's answer readable."""
        rec = self._rec
        for want in (0x77, 0x72):  # 'w' the request, then 'r' what the chip sent back
            p = self._pos
            if p < len(rec) and rec[p] == want:
                k = rec[p + 1] | rec[p + 2] << 8
                if want == 0x72:
                    self._rx = rec[p + 3:p + 3 + k]
                    self._rp = 0
                self._pos = p + 3 + k
        return len(buf)

    def any(self):
        return len(self._rx) - self._rp

    def readinto(self, buf, n=None):
        a = self.any()
        if not a:
            return None
        n = min(a, len(buf) if n is None else n)
        rx = self._rx
        rp = self._rp
        for i in range(n):
            buf[i] = rx[rp + i]
        self._rp = rp + n
        return n

    def read(self, n=None):
        a = self.any()
        if not a:
            return None
        n = a if n is None else min(a, n)
        out = bytes(self._rx[self._rp:self._rp + n])
        self._rp += n
        return out

    def init(self, *a, **kw):
        pass


def fare_taps(items=None):
    """The whole entry and the whole exit tap of a fare gate, replayed (`flash.py bench fares`
    and `bench device`; farereplay.py): items "fe.*" (entry) and "fx.*" (exit)."""
    import farereplay

    items = _input() if items is None else items
    for pre, name in (("fe", "fare_entry"), ("fx", "fare_exit")):
        if pre + ".rec" in items:
            farereplay.session(items, pre, name, _counts, _low, align)


class _Pin:
    def value(self, v=None):
        return 1


class _MemUart:
    """The scan engine's UART with one code (and its CR) waiting in it."""

    def __init__(self):
        self.data = b""
        self.pos = 0

    def readinto(self, buf, n):
        d = self.data
        k = min(n, len(d) - self.pos)
        if k <= 0:
            return None
        buf[:k] = d[self.pos:self.pos + k]  # a UART driver's copy is C: keep it out of the count
        self.pos += k
        return k


def _receive(codes):
    """fn(i): the scan-engine driver receiving codes[i] and its CR (poll until delivered)."""
    import scanengine

    uart = _MemUart()
    se = scanengine.ScanEngine(uart, board.clock, bufsize=1280)

    def rx(i):
        uart.data = codes[i] + b"\r"
        uart.pos = 0
        se.forget()
        while not se.poll(0):
            pass
    return rx


def _codes(v, text, tag):
    """Cold and warm checks of RC2 codes; for RSA rider keys also the certificate check done
    while a code arrives and the receive path."""
    from credential import Credential

    cred = Credential()
    codes = _lines(text)
    cold, warm = codes[:8], codes[8:16]

    def check_cold(i):
        v.certs.clear()
        if v.check(cold[i], len(cold[i]), cred):
            raise ValueError("cold code refused: %d" % cred.error)

    def check_warm(i):
        if v.check(warm[i], len(warm[i]), cred):
            raise ValueError("warm code refused: %d" % cred.error)

    measure("code_cold" + tag, 8, check_cold)
    measure("code_warm" + tag, 8, check_warm)
    if tag:
        return

    def prefetch(i):
        v.certs.clear()
        k = v.prefetches
        v.prefetch(cold[i], len(cold[i]), i)
        if v.prefetches != k + 1:
            raise ValueError("prefetch did not check the certificate")

    measure("code_prefetch", 8, prefetch)
    measure("code_rx", 8, _receive(cold))


def _lines(mv):
    """bytearrays of the newline-separated lines in mv (no copy of the whole)."""
    out = []
    a = 0
    for i in range(len(mv) + 1):
        if i == len(mv) or mv[i] == 10:
            out.append(bytearray(mv[a:i]))
            a = i + 1
    return out


def _install(items, store):
    img = items["list"]
    inst = store.begin(len(img))
    step = 4096
    for p in range(0, len(img), step):
        inst.write(img[p:p + step])
    inst.finish()


def run():
    import asyncio

    import app
    import decision
    import journal
    import rsapkcs1
    import signedmanifest
    from blocklist.store import ListStore
    from credential import Credential
    from nfc_task import NfcReader

    items = _input()
    now = struct.unpack_from("<I", items["now"], 0)[0]
    clock = board.clock
    align()
    clock.set_time(now)
    P = board.Partition
    if hasattr(board.flash, "erase_range"):  # RAM starts as zeros: blank the flash once
        for label in ("bl_a", "bl_b", "journal"):
            info = P.find(P.TYPE_DATA, label=label)[0].info()
            board.flash.erase_range(info[2], info[3])

    # -- blocklist: install (not measured), signature check, lookups -------------------------
    n_list = int.from_bytes(items["listn"], "big")
    e_list = struct.unpack_from("<I", items["liste"], 0)[0]
    store = ListStore(P, (n_list, e_list))
    _install(items, store)
    img = items["list"]
    trail = bytes(img[len(img) - 32 - len(items["listn"]):])
    digest, sig = trail[:32], trail[32:]
    measure("list_signature", 5, lambda i: rsapkcs1.verify(n_list, e_list, digest, sig))
    member = bytearray(items["member"])
    other = bytearray(items["other"])
    measure("lookup_member", 50, lambda i: store.lookup(1, member, len(member)))
    measure("lookup_other", 50, lambda i: store.lookup(1, other, len(other)))

    # -- decision + journal, then the whole tap through App ----------------------------------
    cfg = {"station_id": 101, "direction": "entry", "lane_mode": "normal", "health_rule": False,
           "passback_s": 600, "mifare_allowed": False, "gate_open_ms": 4000}
    import config

    full = dict(config.DEFAULTS)
    full.update(cfg)
    d = decision.Decider(full)
    d.use_lists(store)
    c = Credential()  # a rider who is not listed: the common case, every check runs
    c.kind = 1
    c.set_number(b"3104770000000000")
    c.valid_to = 20991231

    def decide(i):
        c.number[15] = 48 + i % 10
        d.decide(c, now, i * 700)

    measure("decide", 50, decide)
    jp = P.find(P.TYPE_DATA, label="journal")[0]
    j = journal.Journal(jp)

    def append(i):
        j.append(1, 0, 0, now + i, 77, 1, 1, 0, 12, 101)

    measure("journal_append", 50, append)
    measure("journal_prepare", 50, lambda i: j.prepare())
    a = app.App(board, full)
    a.use_lists(store)

    def tap(i):
        c.number[15] = 48 + i % 10
        c.number[14] = 48 + i // 10 % 10
        a.tap(c, clock.ticks_ms())
        a.journal.prepare()

    measure("app_tap", 20, tap)

    # -- NFC: one CPU-card tap replayed over the UART (poll, SELECT, READ x2, release), then the
    # poll that finds the field empty again (so the next tap is a new card) ------------------
    rec = items["nfc"]
    tap_at = struct.unpack_from("<I", items["nfcat"], 0)[0]
    gone_at = struct.unpack_from("<I", items["nfcat"], 4)[0]
    uart = _ReplayUart(rec)

    r = NfcReader(("hsu", uart), _Pin(), clock, {"nfc_poll_ms": 100})
    asyncio.run(r.init())
    got = []

    async def on(cred):
        got.append(cred.kind)

    def tap_and_gone(i):
        uart.restart(tap_at)
        asyncio.run(r.poll_once(on))
        asyncio.run(r.poll_once(on))

    def gone(i):
        uart.restart(gone_at)
        asyncio.run(r.poll_once(on))

    measure("nfc_tap_and_empty_poll", 10, tap_and_gone)
    measure("nfc_empty_poll", 10, gone)
    if got != [1] * 10:
        raise ValueError("replayed taps gave %r" % (got,))

    # -- ride codes, RC2. RSA-2048 e = 3 rider keys (the default): cold (issuer and rider RSA),
    # warm (certificate cached), the certificate check done while the rest of the code is on
    # the wire (prefetch), the scan-engine receive path; then P-256 rider keys (configurable)
    _ridecodes(items)

    # -- a signed app manifest (40 files), as an update is checked ---------------------------
    kid, key = signedmanifest.load_key(bytes(items["mkey"]).decode())
    keys = {kid: key}
    mdata = bytes(items["manif"])
    measure("manifest_check", 3,
            lambda i: signedmanifest.verify(mdata, keys, "app", "host", floor=now - 86400))
    del mdata
    measure("gc_collect", 3, lambda i: gc.collect())  # with every hot path's state live

    # -- the whole fare tap, entry and exit: both chips replayed ---------------------------
    fare_taps(items)
    gc.collect()
    print("MEM %d %d" % (gc.mem_free(), _low[0]))


def ridecodes():
    """The ride-code paths alone (`flash.py bench ridecode`)."""
    items = _input()
    board.clock.set_time(struct.unpack_from("<I", items["now"], 0)[0])
    _ridecodes(items)


def _ridecodes(items):
    from ridecode import keyset, verifier

    ks = keyset.load(bytes(items["ks"]), int.from_bytes(items["rootn"], "big"), 3)
    _codes(verifier.Verifier(ks, board.clock), items["codes"], "")
    _codes(verifier.Verifier(ks, board.clock, p256=True), items["codesec"], "_p256")
    _codes(verifier.Verifier(ks, board.clock, rc1=True), items["codes1"], "_rc1")
    gc.collect()


def calibrate(name):
    """One of MicroPython's own perf_bench programs (frozen into the QEMU firmware) with the
    parameters run-perfbench.py picks for N=100 M=100, timed as tests/perf_bench/benchrun.py
    does; run on a freshly booted interpreter, as run-perfbench runs each test."""
    mod = __import__(name)
    param = None
    cur = (0, 0)
    for nm, p in mod.bm_params.items():
        if 10 * nm[0] <= 12 * 100 and nm[1] <= 100 and nm > cur:
            cur = nm
            param = p
    run, result = mod.bm_setup(param)
    gc.collect()
    t0 = time.ticks_us()
    run()
    t = time.ticks_diff(time.ticks_us(), t0)
    print("CAL %s %d %d" % (name, result()[0], t))

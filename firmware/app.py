"""The composition root: build everything from the board and the config, feed credentials
from every source into one decision path, journal each verdict, drive the gate, and feed the
watchdog from the main loop.

A source (NFC task, QR task) calls `App.on_credential(cred)`: the credential is copied into a
small fixed ring and the call returns at once, so a slow or hung source never holds up another.
Policy when the journal cannot record (full, or a flash fault): a pass that cannot be recorded
is not a pass. The rider is refused with JOURNAL_FULL, except in emergency release where the
gate is open anyway (docs/reader.md).
"""

import asyncio
import gc
import json
import os
import sys
from struct import pack_into

import decision
import journal
import reasons as R
import slog
from credential import KIND_CODE, KIND_CPU, Credential
from gate import IDLE, Feedback, Gate
from micropython import const

log = slog.Logger("gate")  # per-tap lines: `gate verdict`, `gate journal`
applog = slog.Logger("app")  # lifecycle: config, ready, lists, mode, maint, heap

QUEUE = const(4)  # credentials waiting for a decision (taps arrive at most ~1/s per source)
_MAINT_MS = const(250)
_HEARTBEAT_MS = const(60000)  # heap and counters in the log once a minute
_IDLE_TEXT = {decision.MODE_EMERGENCY: R.text(R.EMERGENCY), decision.MODE_CLOSED: R.text(R.CLOSED)}


def journal_partition(board):
    return board.Partition.find(board.Partition.TYPE_DATA, label="journal")[0]


class App:
    def __init__(self, board, cfg, cfg_error=None, code_errors=None, journal_sectors=None):
        self.board = board
        self.cfg = cfg
        self.clock = clock = board.clock
        self.decider = decision.Decider(cfg, code_errors)
        self.journal = journal.Journal(journal_partition(board), journal_sectors)
        self.gate = Gate(board.gate_lock(), board.passage_sensor(), clock, cfg["gate_open_ms"])
        self.feedback = Feedback(board.led_green(), board.led_red(), board.buzzer(),
                                 board.display())
        self.maint = board.maintenance()
        self.lists = None
        self.store = None  # the list store sync installs into (set by main)
        self._list_seq = 0
        self._q = [Credential() for _ in range(QUEUE)]
        self._t0 = [0] * QUEUE
        self._rd = 0
        self._n = 0
        self.dropped = 0
        self.taps = 0
        self.unauthenticated = not cfg.get("psam")  # no PSAM: card records say so
        self._ev = asyncio.Event()
        self._mono_ms = 0
        self._last_ms = clock.ticks_ms()
        if cfg_error:
            applog.error("config", "%s -> out of service until fixed", cfg_error)
            self.decider.mode = decision.MODE_CLOSED
        self._apply_mode()

    # -- inputs --------------------------------------------------------------------------
    async def on_credential(self, cred):
        """Queue a copy of `cred` for the decision path; False when the queue is full. Never
        waits for the decision: the source goes back to its chip at once."""
        if self._n >= QUEUE:
            self.dropped += 1
            return False
        i = (self._rd + self._n) % QUEUE
        q = self._q[i]
        q.kind = cred.kind
        q.set_number(cred.number, cred.number_len)
        q.card_type = cred.card_type
        q.valid_from = cred.valid_from
        q.valid_to = cred.valid_to
        q.concession_to = cred.concession_to
        q.clash = cred.clash
        q.weak = cred.weak
        q.error = cred.error
        q.uid_len = cred.uid_len
        q.issued_at = cred.issued_at
        q.verdict = 0  # decided here (the fare path calls tap() itself)
        q.nrec = 0
        q.proof = cred.proof
        q.fare = -1
        # latency runs from when the source first saw the card or code (0: from now)
        self._t0[i] = cred.t0 or self.clock.ticks_ms()
        self._n += 1
        self._ev.set()
        return True

    def use_lists(self, lists):
        """Install the active blocklist store (blocklist/OTA call this after a swap)."""
        self.lists = lists
        self._list_seq = lists.seq if lists is not None else 0
        self.decider.use_lists(lists)

    def _follow_store(self):
        """A list installed into the store (by sync) takes effect: policies recomputed."""
        st = self.store
        if st is not None and st.active() and (st is not self.lists or st.seq != self._list_seq):
            self.use_lists(st)
            applog.info("list", "in use seq=%d", st.seq)

    async def quiet(self):
        """Awaited by sync before flash-heavy work: no rider in the lane, no tap waiting."""
        while self._n or self.gate.waiting:
            await asyncio.sleep_ms(50)

    def set_mode(self, mode, source):
        """Change the lane mode (local maintenance command or signed config); journalled."""
        m = decision.mode_number(mode)
        old = self.decider.mode
        self.decider.mode = m
        self._apply_mode()
        seq = self._record(R.EVENT, R.MODE_CHANGE, 0, 0, 0)
        applog.info("mode", "mode=%s from=%s source=%s seq=%d", mode, decision.MODES[old],
                    source, seq)
        return seq

    def _apply_mode(self):
        m = self.decider.mode
        self.gate.hold(m == decision.MODE_EMERGENCY)
        zh, en = _IDLE_TEXT.get(m, IDLE)
        self.feedback.set_idle(zh, en)

    # -- the decision path ---------------------------------------------------------------
    def _mono_s(self):
        now = self.clock.ticks_ms()
        self._mono_ms += self.clock.ticks_diff(now, self._last_ms)
        self._last_ms = now
        return self._mono_ms // 1000

    def _record(self, verdict, reason, kind, ms, key, category=None, proof=0xFF):
        d = self.decider
        try:
            return self.journal.append(verdict, reason, d.mode, self.clock.time(), key,
                                       self.lists.seq if self.lists else 0, kind,
                                       d.category if category is None else category, ms,
                                       d.station, proof)
        except OSError as e:
            log.warn("journal", "cannot record: %s backlog=%d", e, self.journal.backlog())
            return 0

    def _decide(self, cred):
        d = self.decider
        try:
            v = d.decide(cred, self.clock.time(), self._mono_s())
            r = d.reason
        except Exception as e:  # a list read failing must not stop the lane: staff decide
            log.error("decide", "%r", e)
            v = d.verdict = R.MANUAL
            r = d.reason = R.READER_FAULT
        return v, r

    def predecide(self, cred):
        """The fare path asks before it charges (firmware/ticketing.py): the verdict goes into
        cred (kept there while the purchase awaits the chips) and tap() uses it."""
        v, r = self._decide(cred)
        if v == R.PASS and self.journal.full:
            v, r = R.DENY, R.JOURNAL_FULL  # a charge that cannot be recorded is not made
        d = self.decider
        cred.verdict = v
        cred.reason = r
        cred.key = d.key
        cred.category = d.category
        return v

    def tap(self, cred, t0):
        """Decide one credential (unless the fare path has: cred.verdict): its purchase
        records, the verdict record (durable before the gate opens), gate, feedback."""
        d = self.decider
        clock = self.clock
        if cred.verdict:
            v, r, key, cat = cred.verdict, cred.reason, cred.key, cred.category
        else:
            v, r = self._decide(cred)
            key, cat = d.key, d.category
        n = cred.nrec
        if n:  # a purchase: its last record carries the verdict (docs/reader.md, 0x51)
            b = cred.recs
            o = n * 32 - 32
            b[o + 3] = v | (d.mode << 4)
            ms = clock.ticks_diff(clock.ticks_ms(), t0)
            pack_into("<IH", b, o + 8, key, ms if ms < 0xFFFF else 0xFFFF)
            b[o + 26] = r
            seq = 0
            for i in range(n):
                try:
                    seq = self.journal.append_raw(b, i * 32)
                except OSError as e:
                    seq = 0
                    log.error("journal", "purchase record lost: %s", e)
        else:
            proof = cred.proof
            if proof == 0xFF and self.unauthenticated and cred.kind != KIND_CODE:
                proof = 0  # read only: the card's number, not the card, was checked
            seq = self._record(v, r, cred.kind, clock.ticks_diff(clock.ticks_ms(), t0), key,
                               cat, proof)
        if not seq and v == R.PASS and d.mode != decision.MODE_EMERGENCY:
            v = R.DENY
            r = d.reason = R.JOURNAL_FULL
        if v == R.PASS:
            if d.mode != decision.MODE_EMERGENCY:
                d.admit_key(key, self._mono_ms // 1000)
            self.gate.admit()
        self.feedback.signal(v, r, cred.fare, cred.balance)
        self.taps += 1
        ms = clock.ticks_diff(clock.ticks_ms(), t0)
        if cred.nrec:  # one line per verdict: with the purchase when there was one
            log.info("verdict", "seq=%d kind=%d verdict=%s reason=%s ms=%d mode=%s fare=%d "
                     "balance=%d records=%d", seq, cred.kind, R.VERDICT_NAMES[v], R.name(r), ms,
                     decision.MODES[d.mode], cred.fare, cred.balance, cred.nrec)
        else:
            log.info("verdict", "seq=%d kind=%d verdict=%s reason=%s ms=%d mode=%s", seq,
                     cred.kind, R.VERDICT_NAMES[v], R.name(r), ms, decision.MODES[d.mode])
        return v

    async def decide_loop(self):
        while True:
            await self._ev.wait()
            self._ev.clear()
            while self._n:
                i = self._rd
                self.tap(self._q[i], self._t0[i])
                self._rd = (i + 1) % QUEUE
                self._n -= 1
                self.journal.prepare()  # pre-erase the next sector after the gate is open
                await asyncio.sleep_ms(0)

    # -- maintenance ---------------------------------------------------------------------
    def command(self, line):
        """One maintenance console command; returns the reply line."""
        words = line.split()
        if len(words) == 2 and words[0] == "mode":
            try:
                self.set_mode(words[1], "local")
            except decision.DecisionError as e:
                return "error %s" % e
            return "ok mode=%s" % words[1]
        if words == ["status"]:
            j = self.journal
            return "ok mode=%s seq=%d backlog=%d full=%d taps=%d dropped=%d" % (
                decision.MODES[self.decider.mode], j.next_seq - 1, j.backlog(), j.full,
                self.taps, self.dropped)
        return "error unknown command %r" % line

    async def maintenance_loop(self):
        while True:
            await asyncio.sleep_ms(_MAINT_MS)
            line = self.maint.readline()
            if line:
                reply = self.command(line.strip())
                applog.info("maint", "%s -> %s", line.strip(), reply)
                self.maint.write(reply)

    # -- main ----------------------------------------------------------------------------
    async def run(self, sources=()):
        """Run the reader; `sources` are the credential tasks (coroutines) feeding
        on_credential. The watchdog is fed here only: a stuck main loop resets the reader."""
        cfg = self.cfg
        wdt = self.board.watchdog(cfg["wdt_ms"])
        for coro in (self.decide_loop(), self.maintenance_loop(), self.gate.run(),
                     self.feedback.run()) + tuple(sources):
            asyncio.create_task(coro)
        j = self.journal
        applog.info("ready", "board=%s station=%d reader=%s dir=%s mode=%s journal=%d backlog=%d",
                    self.board.NAME, cfg["station_id"], cfg["reader_id"], cfg["direction"],
                    decision.MODES[self.decider.mode], j.next_seq - 1, j.backlog())
        clock = self.clock
        beat = clock.ticks_ms()
        while True:
            wdt.feed()
            was_full = j.full
            if not j.prepare() and not was_full:
                log.warn("journal", "full backlog=%d", j.backlog())
            self._follow_store()
            if clock.ticks_diff(clock.ticks_ms(), beat) >= _HEARTBEAT_MS:
                beat = clock.ticks_ms()
                gc.collect()
                applog.info("heap", "free=%d taps=%d dropped=%d backlog=%d", gc.mem_free(),
                            self.taps, self.dropped, j.backlog())
            await asyncio.sleep_ms(cfg["wdt_ms"] // 4)

    def self_check(self):
        """OTA self-test (selftest.add_check): the decision core answers a probe credential (list
        lookup included) and the journal reads back its last record. Raises on failure."""
        c = Credential()
        c.kind = KIND_CPU
        c.set_number(b"0")
        self.decider.decide(c, self.clock.time(), self._mono_s())
        j = self.journal
        return j.next_seq == 1 or len(j.records(j.next_seq - 1, 1)) == 1


def trusted_key(role, path="/keys"):
    """(n, e) of the trusted key with this role among /keys/*.pub (the signed-manifest key
    files, JSON {"role", "n": hex, "e"}), or None. Read here rather than through the OTA
    module, which the app does not otherwise need in RAM."""
    try:
        names = os.listdir(path)
    except OSError:
        return None
    for name in names:
        if name.endswith(".pub"):
            with open(path + "/" + name) as f:
                d = json.load(f)
            if d.get("role") == role:
                return int(d["n"], 16), d["e"]
    return None


def list_key():
    """The list-signing key (role "list")."""
    return trusted_key("list")


def load_fares(board, cfg):
    """The installed fare table, verified with the list key (None: none, or one that does not
    verify: exits then get MANUAL NO_FARES)."""
    import fares
    import signedmanifest as sm

    key = list_key()
    if key is None:
        return None
    try:
        t = fares.load(cfg["station_id"], {sm.key_id(key[0]): (key[0], key[1], "list")},
                       board.NAME, board.clock.time() or 0)
    except OSError:
        return None  # none installed
    except ValueError as e:
        applog.error("fares", "%r -> no fare table", e)
        return None
    applog.info("fares", "version=%d stations=%d", t.version, t.n)
    return t


def rides_keyset(keyset_mod, path="/keys/rides.ks"):
    """The ride-code key set, verified against the root key (role "rides"); an empty key set
    (every code CODE_UNKNOWN_KEY) when there is none or it does not verify."""
    root = trusted_key("rides")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        data = None
    if root is None or data is None:
        return keyset_mod.KeySet()
    try:
        return keyset_mod.load(data, root[0], root[1])
    except ValueError as e:
        applog.error("keyset", "%s: %s -> no ride codes until a valid one is installed", path, e)
        return keyset_mod.KeySet()


async def supervised(name, run, *args):
    """Run a source task for ever: one that crashes (a bug, a MemoryError) is logged, counted
    and started again after a pause, so a reader never goes silent because one task died."""
    crashes = 0
    while True:
        try:
            await run(*args)
        except Exception as e:  # noqa: BLE001 (any failure of a source is survivable)
            crashes += 1
            applog.error("task", "%s crashed (%d): %r", name, crashes, e)
        gc.collect()
        await asyncio.sleep_ms(min(500 * crashes, 5000))


async def main(board, cfg, cfg_error=None):
    """Wire the sources to the App. Each source's module is imported just before its object is
    built: on the host every module's bytecode sits in the heap (frozen in flash on the ESP32),
    and building the large buffers right after each import keeps them from failing on a heap
    fragmented by later imports."""
    gc.collect()
    sync = None
    if cfg["sync_url"]:  # the largest buffer (4 KiB) first
        from sync import Sync

        sync = Sync(board, cfg)
    from ridecode import keyset
    from ridecode import verifier as ridecode

    # an update of the key set calls app.verifier.set_keyset(ks)
    verifier = ridecode.Verifier(rides_keyset(keyset), board.clock,
                                 window_s=cfg["ridecode_window_s"], skew_s=cfg["ridecode_skew_s"],
                                 rc1=cfg["ridecode_rc1"], p256=cfg["ridecode_p256"])
    from qr_task import QrReader

    qr = QrReader(board.scanner_uart(), board.clock, verifier, cfg)
    from nfc_task import NfcReader

    nfc = NfcReader(board.nfc_bus(), board.nfc_reset(), board.clock, cfg, board.nfc_irq())
    ticket = None
    if cfg.get("psam"):  # every card tap an e-purse purchase (firmware/ticketing.py)
        from ticketing import Ticketing

        ticket = Ticketing(board, cfg, load_fares(board, cfg), nfc)
        nfc.on_card = ticket.charge
    key = list_key()
    store = None
    if key:
        from blocklist.store import open_store  # two slots, or one image (32 MiB board)

        store = open_store(board.Partition, key)
    a = App(board, cfg, cfg_error, code_errors=R.code_table(ridecode))
    a.verifier = verifier
    a.store = store
    a._follow_store()
    sources = [supervised("nfc", nfc.run, a.on_credential),
               supervised("qr", qr.run, a.on_credential)]
    if ticket is not None:
        ticket.app = a
        sources.append(supervised("psam", ticket.run))
    if sync is not None:
        sync.journal = a.journal
        sync.lists = store
        sync.quiet = a.quiet
        sync.fares = ticket
        sources.append(supervised("sync", sync.run))
    selftest = sys.modules.get("selftest")  # loaded by main only when a new app awaits it
    if selftest is not None:
        selftest.add_check("decision", a.self_check)
    gc.collect()
    applog.info("lists", "active=%d seq=%d keyset=%d free=%d", a.lists is not None,
                a.lists.seq if a.lists else 0, verifier.keyset.serial, gc.mem_free())
    await a.run(sources)

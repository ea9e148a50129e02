"""Fares at the gate: an e-purse purchase proves the card genuine and takes the fare while the
card is still in the field (docs/reader.md "Fares").

The NFC task hands every CPU or phone card it has read to `charge()` before releasing it.
`charge()` asks the decision core first (lane mode, lists, dates, passback: nothing is charged
for a card the gate refuses anyway), then:

* entry: a compound (CAPP) purchase of the entry charge (0 by default) that writes the trip
  record (entry station and time, the card's counter, the journey's origin, start and what it
  has paid so far; a re-entry within the table's transfer window continues the journey);
* exit: the fare from the signed table for the journey's origin, the card type and the time
  inside, less what the journey paid already, writing the closed trip record; no open trip
  record -> the table's penalty (PASS, reason PENALTY), unless this card exited here moments
  ago (MANUAL EXIT_DONE: its gate may not have opened; staff decide, nothing charged);
* bus: a plain purchase of the table's flat fare.

The PSAM gives MAC1 and checks MAC2; the card's TAC goes into the journal (two 32-byte purchase
records, the second carrying the tap's verdict), for the back office. Refusals: LOW_BALANCE (9401),
NO_PURSE (the card does not know the purchase), PURSE_FORMAT (garbage), MAC1_REFUSED (the card
refused the PSAM's MAC1), NOT_GENUINE (the PSAM refused the card's MAC2), COUNTER_BACK (the
card's counter is below one seen before), ENTRY_OPEN, NO_FARES, SAM_FAULT, TORN_LOG_WAIT, NO_TIME.

Tearing: a card that leaves after the DEBIT was sent may or may not have paid. The reader keeps
what it sent (`torn_window_s`, 4 slots), in flash before the DEBIT goes out (firmware/tornlog.py:
a reboot keeps it), and denies with TORN ("tap again"). On the next tap of
that card here, GET TRANSACTION PROVE says: the debit happened -> its TAC is journalled as a
recovered purchase, and a purchase of 0 writing the same trip record proves the card genuine
before the gate opens (once); it did not -> the purchase starts again. Never two charges and
never two openings for one journey.
"""

import asyncio
from array import array
from struct import pack_into, unpack_from

import decision
import journal
import reasons as R
import slog
from aioready import Ready
from civildate import ymd
from epurse import BadResponse, CardRefused, Purchase, SamRefused
from iso7816 import Sam, SamError
from micropython import const
from pn532 import CardGone, PN532Error
from tornlog import PER, TornLog

log = slog.Logger("fare")

TRIP_SFI = const(0x1A)
TRIP_LEN = const(24)
T2020 = 1577836800  # trip and purchase times count from 2020-01-01 (small integers)
_OPEN = const(1)
_CLOSED = const(2)
_NONE16 = const(0xFFFF)
_SLOTS = const(4)
_SEEN = const(16)
# purchase record flags (journal record 0x50 byte 1)
F_CAPP = const(1)
F_RECOVERED = const(2)
F_UNCHECKED = const(4)  # the PSAM failed after the debit: MAC2 not checked
F_EXIT = const(8)
F_PENALTY = const(16)
_NO_PURSE_SW = (0x6D00, 0x6E00, 0x6A81, 0x6A82, 0x6A83, 0x6985)
_RETRY_MS = const(5000)


def _g16(b, o):
    return b[o] << 8 | b[o + 1]


def _p16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def _g32(b, o):
    return b[o] << 24 | b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3]


def _p32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def _le(b, o, v, n):
    for i in range(n):
        b[o + i] = (v >> (8 * i)) & 0xFF


def _copy(dst, do, src, so, n):
    for i in range(n):
        dst[do + i] = src[so + i]


def _same_at(a, ao, b, bo, n):
    for i in range(n):
        if a[ao + i] != b[bo + i]:
            return False
    return True


def _same(a, b, n):
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


def _bcd(v):
    return (v // 10) << 4 | (v % 10)


class _Card:
    """The card in the field, as lib/epurse wants it: exchange() on the current target."""

    def __init__(self):
        self.drv = None
        self.tg = 1

    def exchange(self, src, n, dst):
        return self.drv.exchange(self.tg, src, n, dst)


class _Torn:
    """What a debit whose answer never came sent to the card. Its torn-log entry (tornlog.py),
    packed into the log's own buffer: kver 1, alg 2, flags 3, entry number 4, serial 8, TTN 16,
    date 20, time 24, type 27, counter 28, origin 30, amount 32, balance 36, t 40, journal
    seq 44, record 48."""

    def __init__(self):
        self.at = -1  # monotonic s when it happened; -1 = free
        self.n = 0  # its entry number in the torn log (0: not written)
        self.jseq = 0  # the journal's next sequence when it was armed
        self.serial = bytearray(8)
        self.ttn = bytearray(4)
        self.date = bytearray(4)
        self.time = bytearray(3)
        self.record = bytearray(TRIP_LEN)
        self.counter = 0
        self.ttype = 0
        self.amount = 0
        self.balance = 0
        self.t = 0
        self.kver = 0
        self.alg = 0
        self.flags = 0
        self.origin = _NONE16

    def pack(self, b):
        b[1] = self.kver
        b[2] = self.alg
        b[3] = self.flags
        _copy(b, 8, self.serial, 0, 8)
        _copy(b, 16, self.ttn, 0, 4)
        _copy(b, 20, self.date, 0, 4)
        _copy(b, 24, self.time, 0, 3)
        b[27] = self.ttype
        pack_into("<HHIiII", b, 28, self.counter, self.origin, self.amount, self.balance,
                  self.t, self.jseq)
        _copy(b, 48, self.record, 0, TRIP_LEN)

    def unpack(self, b):
        self.kver = b[1]
        self.alg = b[2]
        self.flags = b[3]
        _copy(self.serial, 0, b, 8, 8)
        _copy(self.ttn, 0, b, 16, 4)
        _copy(self.date, 0, b, 20, 4)
        _copy(self.time, 0, b, 24, 3)
        self.ttype = b[27]
        (self.counter, self.origin, self.amount, self.balance, self.t,
         self.jseq) = unpack_from("<HHIiII", b, 28)
        _copy(self.record, 0, b, 48, TRIP_LEN)
        self.n = unpack_from("<I", b, 4)[0]


def _finished(j, e):
    """The journal holds the purchase of torn-log entry `e` whole (its first half, with the
    same serial and TTN, and the second half after it): nothing is left to recover."""
    start = unpack_from("<I", e, 44)[0]
    while True:
        recs = j.records(start, 8)
        if not recs:
            return False
        for r in recs:
            if r[0] == journal.MAGIC_PURCHASE and _same_at(r, 8, e, 8, 12):
                nxt = j.records(unpack_from("<I", r, 4)[0] + 1, 1)
                if nxt and nxt[0][0] == journal.MAGIC_PURCHASE2:
                    return True
        start = unpack_from("<I", recs[-1], 4)[0] + 1


class Ticketing:
    def __init__(self, board, cfg, fares=None, nfc=None):
        """nfc: the NfcReader whose cards this charges (what its chip's waits wake on)."""
        uart, rst, pwr, hz, echo = board.sam_slot()
        self.clock = board.clock
        self.sam = Sam(uart, board.clock, rst, pwr, hz, echo)
        # one wait for both chips: the card's PN532 (a) and the PSAM's UART (b)
        self._nfc_src = nfc.src if nfc is not None else None
        self.rd = Ready(board.clock, self._nfc_src, uart)
        self.card = _Card()
        self.p = Purchase(self.card, self.sam)
        self.station = cfg["station_id"]
        self.direction = cfg["direction"]
        self.offset_s = cfg.get("utc_offset_min", 480) * 60
        self.window_s = cfg.get("torn_window_s", 600)
        self.fares = fares
        self.app = None  # the App: predecide() and tap()
        self.ready = False
        self.terminal = ""
        self.trip = bytearray(TRIP_LEN)
        self.new = bytearray(TRIP_LEN)
        self._torn = [_Torn() for _ in range(_SLOTS)]
        self.tlog = None  # the torn log in flash (restore(), once the App is there)
        self._seen_key = array("i", [0] * _SEEN)
        self._seen_ctr = array("i", [0] * _SEEN)
        self._seen_i = 0
        self.stats = {"purchases": 0, "torn": 0, "recovered": 0, "refused": 0, "sam_opens": 0}

    # -- waiting on the chips ----------------------------------------------------------------
    async def _tick(self, gen):
        """Run a driver generator polled every millisecond (PSAM activation: ATR and PPS
        count their own time)."""
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            await asyncio.sleep_ms(1)

    def _card_us(self):
        return self.card.drv.wait_us() if self._nfc_src is not None else 1000

    async def _step(self, gen):
        """Run a card operation, waiting while the PN532 and the card work."""
        drv = self.card.drv
        rd = self.rd
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            await rd.wait(self._card_us(), drv.need(), 0)

    async def _sam_step(self, gen):
        """Run a PSAM exchange, waiting while its characters are on the wire and it works."""
        sam = self.sam
        rd = self.rd
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            await rd.wait(sam.wait_us(), 0, sam.need())

    async def _mac1_with(self, gen):
        """PSAM MAC1 and a card step (`gen`, or None) at the same time: the SAM UART and the
        PN532 are separate buses, and one wait wakes for either. The PSAM exchange is always
        finished, even when the card step fails (a SAM left mid-APDU would refuse the next
        one)."""
        sam = self.sam
        rd = self.rd
        drv = self.card.drv
        self.p.sam_mac1_start()
        done = False
        try:
            while gen is not None:
                done = done or sam.poll()
                try:
                    next(gen)
                except StopIteration:
                    break
                us = self._card_us()
                if not done:
                    s = sam.wait_us()
                    us = s if s < us else us
                await rd.wait(us, drv.need(), 0 if done else sam.need())
        finally:
            while not done:
                done = sam.poll()
                if not done:
                    await rd.wait(sam.wait_us(), 0, sam.need())
        self.p.sam_mac1_done()

    async def activate(self):
        """ATR, PPS, terminal number; True when the PSAM is ready."""
        self.stats["sam_opens"] += 1
        try:
            atr = await self._tick(self.sam.open())
            await self._sam_step(self.p.sam_open())
        except (SamError, SamRefused, BadResponse) as e:
            log.error("psam", "%r: cards get SAM_FAULT; again in %d ms", e, _RETRY_MS)
            return False
        self.terminal = "".join("%02x" % b for b in self.p.terminal)
        self._journal_psam()
        self.ready = True
        log.info("psam", "terminal=%s baud=%d atr=%d bytes", self.terminal, self.sam.baud,
                 len(atr.raw))
        return True

    def _journal_psam(self):
        """A PSAM record (0x53: terminal number, station, UTC offset) before the purchases it
        makes: the purchase records leave the terminal number to it (docs/reader.md)."""
        b = bytearray(b"\xff" * 32)
        b[0] = journal.MAGIC_PSAM
        _copy(b, 8, self.p.terminal, 0, 6)
        pack_into("<Hh", b, 14, self.station, self.offset_s // 60)
        try:
            self.app.journal.append_raw(b, 0)
        except OSError as e:
            log.error("journal", "PSAM record lost: %s", e)

    async def run(self):
        """Bring back the torn debits of the last boot; keep the PSAM activated (a failed one
        is tried again every 5 s); erase the torn log's next sector ahead of time."""
        while True:
            if self.tlog is None:
                self.restore()
            if not self.ready and not await self.activate():
                await asyncio.sleep_ms(_RETRY_MS)
                continue
            self.log_ahead()
            await asyncio.sleep_ms(1000)

    def restore(self):
        """The torn log's entries whose purchase the journal does not hold whole, armed again
        in the four slots (the newest, within the window by their UTC time; with no trusted
        time, for a whole window from now). One entry at a time into one scratch slot: no
        heap left behind between the app's long-lived objects."""
        j = self.app.journal
        if j.torn_area is None:  # still the journal's after an update (docs/ota.md)
            return
        tl = self.tlog = TornLog(*j.torn_area)
        log.info("torn", "log ready entries=%d", tl.n - 1)
        now = self.clock.time()
        mono = self._mono()
        for i in range(2 * PER):
            e = tl.entry(i)
            if e is None:
                continue
            age = now - T2020 - unpack_from("<I", e, 40)[0] if now is not None else 0
            age = age if age > 0 else 0  # a clock set back since: keep it a whole window
            if age > self.window_s or self._holds(e):
                continue
            n = unpack_from("<I", e, 4)[0]
            slot = self._torn[0]
            for s in self._torn:
                if s.at < 0:
                    slot = s
                    break
                if s.n < slot.n:
                    slot = s
            if (slot.at >= 0 and slot.n > n) or _finished(j, e):
                continue
            slot.unpack(e)
            slot.at = mono - age if mono > age else 0
            log.info("torn", "debit %d of the last boot kept (entry %d)", slot.counter, slot.n)

    def _holds(self, e):
        """A slot holds the same debit (the log has two copies of one still open)."""
        for s in self._torn:
            if s.at >= 0 and _same_at(s.serial, 0, e, 8, 8) and _same_at(s.ttn, 0, e, 16, 4):
                return True
        return False

    def log_ahead(self):
        """Idle-time work: the torn debits still open whose entries sit in the torn log's
        other sector are written again, then that sector is erased (a sector change during a
        purchase is then one program)."""
        tl = self.tlog
        if tl is None or tl.spare:
            return
        for s in self._torn:
            if s.at >= 0 and tl.older(s.n):
                s.pack(tl.buf)
                s.n = tl.put(tl.buf)
        tl.erase_ahead()

    def set_fares(self, table):
        self.fares = table

    # -- one card --------------------------------------------------------------------------
    async def charge(self, cred, drv, tg):
        """The NFC task's hook for a card read while it is still in the field: decide,
        purchase, journal, gate (App.tap)."""
        app = self.app
        v = app.predecide(cred)
        # emergency release passes everyone and writes nothing to cards
        if v == R.PASS and app.decider.mode != decision.MODE_EMERGENCY:
            self.card.drv = drv
            self.card.tg = tg
            try:
                await self._purchase(cred)
            except SamError as e:
                self.ready = False
                log.error("psam", "%r during a purchase", e)
                self._verdict(cred, R.MANUAL, R.SAM_FAULT)
            except BadResponse:
                self._verdict(cred, R.DENY, R.PURSE_FORMAT)
            except (CardGone, PN532Error):
                self._verdict(cred, R.DENY, R.CARD_FAULT)
            if cred.verdict != R.PASS:
                self.stats["refused"] += 1
        app.tap(cred, cred.t0)

    def _verdict(self, cred, v, r):
        cred.verdict = v
        cred.reason = r

    def _stamp(self, t):
        """The purchase's BCD date and time: local time of t (UTC seconds since 2020), the
        same instant the journal records."""
        local = t + self.offset_s
        d = ymd(local // 86400 + 18262)  # 18262: days from 1970 to 2020
        p = self.p
        p.date[0] = _bcd(d // 1000000)
        p.date[1] = _bcd(d // 10000 % 100)
        p.date[2] = _bcd(d // 100 % 100)
        p.date[3] = _bcd(d % 100)
        s = local % 86400
        p.time[0] = _bcd(s // 3600)
        p.time[1] = _bcd(s // 60 % 60)
        p.time[2] = _bcd(s % 60)

    async def _purchase(self, cred):
        p = self.p
        if not self.ready:
            return self._verdict(cred, R.MANUAL, R.SAM_FAULT)
        if self.tlog is None:  # no torn log yet after an update: no debit (docs/ota.md)
            return self._verdict(cred, R.MANUAL, R.TORN_LOG_WAIT)
        now = self.clock.time()
        if now is None:
            return self._verdict(cred, R.MANUAL, R.NO_TIME)
        t = now - T2020
        self._stamp(t)
        _copy(p.serial, 0, cred.serial, 0, 8)
        capp = self.direction != "bus"
        if capp:
            try:
                n = await self._step(p.read_record(TRIP_SFI, 1, TRIP_LEN))
            except CardRefused as e:
                return self._verdict(cred, R.DENY, R.NO_PURSE if e.sw in _NO_PURSE_SW
                                     else R.CARD_FAULT)
            if n != TRIP_LEN:
                return self._verdict(cred, R.DENY, R.PURSE_FORMAT)
            _copy(self.trip, 0, p.rsp, 0, TRIP_LEN)
        slot = self._torn_slot(p.serial)
        if slot is not None:
            done = await self._recover(cred, slot, t)
            if done:
                return
        amount, flags, origin = self._plan(cred, t)
        if amount < 0:
            return
        await self._buy(cred, capp, amount, flags, origin, t, None)

    def _plan(self, cred, t):
        """The amount, the record flags and the journey origin for this tap; the new trip
        record in self.new (its entry counter is set once the card has said it). Returns
        amount -1 with the verdict set when there is nothing to buy."""
        f = self.fares
        old = self.trip
        new = self.new
        st = self.station
        if self.direction == "bus":
            if f is None:
                self._verdict(cred, R.MANUAL, R.NO_FARES)
                return -1, 0, 0
            return f.concession(f.flat, cred.card_type), 0, _NONE16
        if self.direction == "entry":
            if old[1] == _OPEN:
                self._verdict(cred, R.MANUAL, R.ENTRY_OPEN)
                return -1, 0, 0
            _copy(new, 0, old, 0, TRIP_LEN)
            new[0] = 0x01
            new[1] = _OPEN
            _p16(new, 2, st)
            _p32(new, 4, t)
            if (old[1] == _CLOSED and f is not None and f.transfer_s
                    and t - _g32(old, 10) <= f.transfer_s):
                return 0, F_CAPP, _g16(old, 16)  # the journey goes on: origin, paid so far
            charge = f.entry_charge if f is not None else 0
            _p16(new, 16, st)
            _p32(new, 18, t)
            _p16(new, 22, charge)
            return charge, F_CAPP, st
        # exit
        if f is None:
            self._verdict(cred, R.MANUAL, R.NO_FARES)
            return -1, 0, 0
        _copy(new, 0, old, 0, TRIP_LEN)
        new[0] = 0x01
        new[1] = _CLOSED
        _p16(new, 8, st)
        _p32(new, 10, t)
        if old[1] == _OPEN:
            origin = _g16(old, 16)
            fare = f.price(origin, cred.card_type, t - _g32(old, 18))
            if fare < 0:
                self._verdict(cred, R.MANUAL, R.NO_FARES)
                return -1, 0, 0
            paid = _g16(old, 22)
            amount = fare - paid if fare > paid else 0
            _p16(new, 22, min(paid + amount, _NONE16))
            return amount, F_CAPP | F_EXIT, origin
        if old[1] == _CLOSED and _g16(old, 8) == st and t - _g32(old, 10) <= self.window_s:
            self._verdict(cred, R.MANUAL, R.EXIT_DONE)
            return -1, 0, 0
        _p16(new, 16, _NONE16)
        _p32(new, 18, t)
        _p16(new, 22, f.penalty)
        return f.penalty, F_CAPP | F_EXIT | F_PENALTY, _NONE16

    async def _buy(self, cred, capp, amount, flags, origin, t, record):
        """One purchase; `record`: the trip record to write instead of self.new (a proof
        purchase writes the torn one again). The verdict and the journal records in cred."""
        p = self.p
        try:
            await self._step(p.initialize(capp, amount))
        except CardRefused as e:
            r = R.LOW_BALANCE if e.sw == 0x9401 else (
                R.NO_PURSE if e.sw in _NO_PURSE_SW else R.CARD_FAULT)
            return self._verdict(cred, R.DENY, r)
        except BadResponse:
            return self._verdict(cred, R.DENY, R.PURSE_FORMAT)
        f = self.fares
        if (self.direction == "entry" and f is not None and f.min_balance
                and p.balance + p.overdraft < f.min_balance):
            return self._verdict(cred, R.DENY, R.LOW_BALANCE)  # could not pay its way out
        key = cred.key
        if self._went_back(key, p.counter) or (
                flags & F_EXIT and not flags & F_PENALTY and p.counter <= _g16(self.trip, 14)):
            log.warn("counter", "back: now %d", p.counter)
            return self._verdict(cred, R.DENY, R.COUNTER_BACK)
        if record is None:
            record = self.new
            if self.direction == "entry":
                _p16(record, 14, p.counter)
        try:
            await self._mac1_with(p.update_capp(TRIP_SFI, 1, record, TRIP_LEN) if capp
                                  else None)
        except SamRefused:
            # the PSAM has no master key for the card's key version/algorithm
            return self._verdict(cred, R.DENY, R.NOT_GENUINE)
        except CardRefused:
            return self._verdict(cred, R.DENY, R.CARD_FAULT)
        slot = self._arm(p, record, flags, origin, t)
        try:
            await self._step(p.debit())
        except (CardGone, PN532Error):
            self.stats["torn"] += 1
            log.warn("torn", "debit sent, no answer: amount=%d counter=%d", amount, p.counter)
            return self._verdict(cred, R.DENY, R.TORN)
        except BadResponse:
            return self._verdict(cred, R.DENY, R.PURSE_FORMAT)  # slot kept: PROVE tells
        except CardRefused as e:
            slot.at = -1
            return self._verdict(cred, R.DENY, R.MAC1_REFUSED if e.sw == 0x9302
                                 else R.CARD_FAULT)
        slot.at = -1
        self._remember(key, p.counter + 1)
        try:
            await self._sam_step(p.sam_mac2())
        except SamRefused:
            return self._verdict(cred, R.DENY, R.NOT_GENUINE)
        except SamError as e:
            # debited, MAC2 unchecked: journal it as such and let staff decide
            self.ready = False
            log.error("psam", "%r after a debit", e)
            self._records(cred, flags | F_UNCHECKED, origin, t, p.balance_after())
            cred.proof = 0
            return self._verdict(cred, R.MANUAL, R.SAM_FAULT)
        self._records(cred, flags, origin, t, p.balance_after())
        cred.proof = 1
        cred.fare = amount if cred.fare < 0 else cred.fare + amount
        cred.balance = p.balance_after()
        self.stats["purchases"] += 1
        self._verdict(cred, R.PASS, R.PENALTY if flags & F_PENALTY else R.OK)

    # -- torn debits -----------------------------------------------------------------------
    def _mono(self):
        return self.app._mono_s()

    def _torn_slot(self, serial):
        now = self._mono()
        for s in self._torn:
            if s.at >= 0:
                if now - s.at > self.window_s:
                    s.at = -1  # too late: the back office sees the counter gap
                elif _same(s.serial, serial, 8):
                    return s
        return None

    def _arm(self, p, record, flags, origin, t):
        """Keep what the DEBIT carries before sending it (the oldest slot is reused)."""
        best = self._torn[0]
        for s in self._torn:
            if s.at < 0:
                best = s
                break
            if s.at < best.at:
                best = s
        best.at = self._mono()
        _copy(best.serial, 0, p.serial, 0, 8)
        _copy(best.ttn, 0, p.ttn, 0, 4)
        _copy(best.date, 0, p.date, 0, 4)
        _copy(best.time, 0, p.time, 0, 3)
        _copy(best.record, 0, record, 0, TRIP_LEN)
        best.counter = p.counter
        best.ttype = p.ttype
        best.amount = p.amount
        best.balance = p.balance
        best.t = t
        best.kver = p.key_version
        best.alg = p.alg
        best.flags = flags
        best.origin = origin
        if self.tlog is not None:  # in flash before the DEBIT goes out
            best.jseq = self.app.journal.next_seq
            best.pack(self.tlog.buf)
            best.n = self.tlog.put(self.tlog.buf)
        return best

    async def _recover(self, cred, s, t):
        """The card of a torn debit is back. True when this tap is settled here."""
        p = self.p
        try:
            await self._step(p.prove(s.ttype, s.counter))
        except CardRefused as e:
            s.at = -1
            if e.sw == 0x9406:
                log.info("torn", "debit %d did not happen: buy again", s.counter)
            return False
        except BadResponse:
            s.at = -1
            return False
        # it happened: journal it; the purchase of 0 below shows the card is genuine
        s.at = -1
        p.counter = s.counter
        p.amount = s.amount
        p.ttype = s.ttype
        p.key_version = s.kver
        p.alg = s.alg
        _copy(p.ttn, 0, s.ttn, 0, 4)
        _copy(p.date, 0, s.date, 0, 4)
        _copy(p.time, 0, s.time, 0, 3)
        self._records(cred, s.flags | F_RECOVERED, s.origin, s.t, s.balance - s.amount)
        cred.fare = s.amount
        self._stamp(t)
        await self._buy(cred, s.flags & F_CAPP, 0, s.flags & F_CAPP, s.origin, t, s.record)
        if cred.verdict == R.PASS:
            self.stats["recovered"] += 1
            log.info("torn", "debit %d proven, card proven: fare %d", s.counter, s.amount)
        elif cred.reason == R.NOT_GENUINE or cred.reason == R.MAC1_REFUSED:
            cred.nrec = 0  # a clone's "proof" is not a purchase
        else:
            cred.recs[1] |= F_UNCHECKED  # proven by the card, not yet by a purchase
        return True

    # -- counters ---------------------------------------------------------------------------
    def _went_back(self, key, counter):
        k = self._seen_key
        for i in range(_SEEN):
            if k[i] == key:
                return counter < self._seen_ctr[i]
        return False

    def _remember(self, key, counter):
        k = self._seen_key
        for i in range(_SEEN):
            if k[i] == key:
                self._seen_ctr[i] = counter
                return
        i = self._seen_i
        k[i] = key
        self._seen_ctr[i] = counter
        self._seen_i = (i + 1) % _SEEN

    # -- journal records ----------------------------------------------------------------------
    def _records(self, cred, flags, origin, t, balance_after):
        """Two purchase records (kinds 0x50, 0x51; docs/reader.md) into cred.recs; App.tap
        writes the tap's verdict into the last 0x51 (no separate verdict record)."""
        p = self.p
        b = cred.recs
        o = cred.nrec * 32
        if o + 64 > len(b):
            return
        b[o] = 0x50
        b[o + 1] = flags
        b[o + 2] = p.alg
        b[o + 3] = p.key_version
        _copy(b, o + 8, p.serial, 0, 8)
        _copy(b, o + 16, p.ttn, 0, 4)
        _copy(b, o + 20, p.tac, 0, 4)
        _le(b, o + 24, t + self.offset_s, 4)
        o += 32
        b[o] = 0x51
        b[o + 1] = cred.card_type
        b[o + 2] = cred.kind
        b[o + 3] = 0  # verdict | mode << 4: 0 = an earlier purchase of the tap (App.tap)
        _le(b, o + 8, 0, 6)  # credential hash, ms: App.tap
        _le(b, o + 14, p.amount, 3)
        _le(b, o + 17, balance_after & 0xFFFFFF, 3)
        _le(b, o + 20, p.counter, 2)
        _le(b, o + 22, self.station, 2)
        _le(b, o + 24, origin, 2)
        b[o + 26] = 0  # reason: App.tap
        b[o + 27] = 0xFF
        cred.nrec += 2

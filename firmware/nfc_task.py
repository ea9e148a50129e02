"""The reader's NFC task: poll the PN532 for cards, read the credential, hand it on.

Identity is the application card number read over APDUs (CPU cards and phones) or from a
sector (MIFARE Classic, marked weak), never the UID. Two cards in the field are a clash and are
not read at all, so the wrong card is never charged. A card that stays in the field (or a phone
that re-answers with a new random UID) does not trigger again. A chip that stops answering is
reset through RSTPD_N and re-initialised without blocking the event loop, so ride codes keep
being served meanwhile.
"""

import asyncio
import gc

import slog
from aioready import Ready
from credential import KIND_CPU, KIND_MIFARE, KIND_PHONE, Credential
from micropython import const
from pn532 import PN532, CardGone, PN532Error, Timeout, transport

log = slog.Logger("nfc")

# Credential.error codes set by this task (0 = read completed).
ERR_GONE = const(1)  # the card left (or stopped answering) during the read
ERR_NO_APP = const(2)  # no T-Union application / not a card this reader knows
ERR_FORMAT = const(3)  # the card answered with data that does not parse
ERR_NOT_ALLOWED = const(4)  # MIFARE Classic while config "mifare_allowed" is off
ERR_AUTH = const(5)  # MIFARE key rejected (blank or foreign Classic card)
ERR_CHIP = const(6)  # the PN532 failed during the read

MIFARE_KEY = b"\xa0\xa1\xa2\xa3\xa4\xa5"  # project convention (boards/host/sim/cards.py)
MIFARE_BLOCK = const(4)
_RESET_AFTER = const(2)  # consecutive failed polls before the reset line is used
_BACKOFF_MS = const(100)  # first wait after a failed re-initialisation
_BACKOFF_MAX_MS = const(5000)

_SELECT = b"\x00\xa4\x04\x00\x08\xa0\x00\x00\x06\x32\x01\x01\x05\x00"
_READ15 = b"\x00\xb0\x95\x00\x1e"
_READ17 = b"\x00\xb0\x97\x00\x0f"


class NfcReader:
    def __init__(self, bus, reset_pin, clock, cfg, irq=None):
        """irq: the PN532's P70_IRQ input (board.nfc_irq()), or None. A wait for the chip
        ends when it has a frame for us: on HSU when the UART holds it, on I2C/SPI when
        P70_IRQ is low; without the line, the driver is polled every millisecond."""
        self.clock = clock
        self.drv = PN532(transport(bus), clock, reset_pin)
        self.src = bus[1] if bus[0] == "hsu" else irq
        self.rd = Ready(clock, self.src) if self.src is not None else None
        self.poll_ms = cfg.get("nfc_poll_ms", 100)
        self.baud = cfg.get("nfc_baud", 115200)  # HSU rate after init (SetSerialBaudRate)
        self.mifare_allowed = cfg.get("mifare_allowed", False)
        self.mifare_key = cfg.get("mifare_key", MIFARE_KEY)
        self.cred = Credential()
        self.stats = {"polls": 0, "taps": 0, "clashes": 0, "resets": 0, "errors": 0,
                      "timeouts": 0, "held": 0}
        self.ready = False
        self.on_card = None  # async (cred, drv, tg): a CPU/phone card read, still in the field
        self.last_tap_ms = 0  # time the last credential was handed on (tests, health)
        self._rbuf = bytearray(300)
        self._last = bytearray(20)  # identity of the card still in the field
        self._last_len = 0
        self._last_uid = bytearray(10)
        self._last_uid_len = 0
        self._fails = 0
        self._backoff_ms = _BACKOFF_MS

    def pause(self):
        """Awaitable: until the chip has something for the driver, or its next timeout."""
        rd = self.rd
        if rd is None:
            return asyncio.sleep_ms(1)
        drv = self.drv
        return rd.wait(drv.wait_us(), drv.need())

    async def _do(self, gen):
        """Run a driver generator operation, yielding to the event loop while waiting."""
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            await self.pause()

    async def _wait(self):
        drv = self.drv
        while not drv.poll():
            await self.pause()

    async def init(self):
        drv = self.drv
        ver = await self._do(drv.init())
        if drv.t.kind == "hsu" and self.baud != drv.t.baud:
            await self._do(drv.set_baud(self.baud))  # a reset brings it back to 115200
        self.ready = True
        bus = "hsu %d" % drv.t.baud if drv.t.kind == "hsu" else drv.t.kind
        log.info("pn532", "ic=%02x fw=%d.%d bus=%s", ver >> 24, (ver >> 16) & 0xFF,
                 (ver >> 8) & 0xFF, bus)

    async def recover(self, why):
        """RSTPD_N low, high, re-initialise: about 60 ms, well within 1 s."""
        self.stats["resets"] += 1
        self.ready = False
        t0 = self.clock.ticks_ms()
        drv = self.drv
        drv.reset_begin()
        await asyncio.sleep_ms(20)
        drv.reset_end()
        await asyncio.sleep_ms(10)
        try:
            await self.init()
        except (PN532Error, OSError) as e:
            # a dead or missing chip: try again later, less and less often (up to 5 s)
            log.error("reset", "n=%d why=%s init failed: %s; next in %d ms",
                      self.stats["resets"], why, e, self._backoff_ms)
            await asyncio.sleep_ms(self._backoff_ms)
            self._backoff_ms = min(_BACKOFF_MAX_MS, self._backoff_ms * 2)
            return
        self._backoff_ms = _BACKOFF_MS
        log.warn("reset", "n=%d why=%s back in %d ms", self.stats["resets"], why,
                 self.clock.ticks_diff(self.clock.ticks_ms(), t0))

    async def run(self, on_credential):
        try:
            await self.init()
        except (PN532Error, OSError) as e:
            await self.recover("init: %s" % (e,))
        clock = self.clock
        while True:
            t0 = clock.ticks_ms()
            if self.ready:
                taps = self.stats["taps"]
                try:
                    await self.poll_once(on_credential)
                    self._fails = 0
                    if self.stats["taps"] != taps:
                        # the tap is over (verdict given, card released): collect now, so the
                        # next tap starts on a collected heap instead of meeting a collection
                        gc.collect()
                except (PN532Error, OSError) as e:
                    self._fails += 1
                    self.stats["errors"] += 1
                    if isinstance(e, Timeout):
                        self.stats["timeouts"] += 1
                    log.warn("poll", "fail=%d %s", self._fails, e)
                    if self._fails >= _RESET_AFTER:
                        self._fails = 0
                        await self.recover(str(e))
            else:
                await self.recover("not ready")
            dt = clock.ticks_diff(clock.ticks_ms(), t0)
            await asyncio.sleep_ms(self.poll_ms - dt if dt < self.poll_ms else 0)

    async def poll_once(self, on_credential):
        """One InListPassiveTarget (MaxTg 2); reads and reports a new card."""
        drv = self.drv
        self.stats["polls"] += 1
        t0 = self.clock.ticks_ms()  # the poll that finds a card is when the tap began for us
        drv.start_list(2)
        await self._wait()
        nb = drv.parse_list()
        if nb == 0:
            self._last_len = 0  # the field is empty: the next card is a new tap
            self._last_uid_len = 0
            return
        cred = self.cred
        if nb == 2:
            # Field off and on rather than InRelease: a halted card would stay silent and
            # the next poll would read the other one while both are still there.
            await self._do(drv.rf_field(False))
            await self._do(drv.rf_field(True))
            if self._last_len == 1 and self._last[0] == 0xFF:
                return  # the same clash is still there
            self._last[0] = 0xFF
            self._last_len = 1
            self.stats["clashes"] += 1
            cred.clear()
            cred.t0 = t0
            cred.clash = True
            await self._hand(on_credential)
            return
        t = drv.targets[0]
        if self._last_uid_len and self._same_uid(t):
            self.stats["held"] += 1
            await self._do(drv.release(0))
            return
        cred.clear()
        cred.t0 = t0
        cred.uid_len = t.uid_len
        try:
            if t.iso_dep():
                await self._read_cpu(t, cred)
            elif t.classic():
                await self._read_classic(t, cred)
            else:
                cred.error = ERR_NO_APP
        except CardGone:
            cred.error = ERR_GONE
        except PN532Error as e:
            cred.error = ERR_CHIP if e.code == 0x7F or e.code == 110 else ERR_FORMAT
            if isinstance(e, Timeout):
                raise
        self._remember_uid(t)
        if (cred.error == 0 and self._same_number(cred)) or (cred.error and self._last_len):
            # e.g. a phone re-answering with a new random UID, or one pulled away while it
            # was being re-read: the presence that was already handed on goes on
            self.stats["held"] += 1
            await self._release()
            return
        self._remember_number(cred)
        if self.on_card is not None and cred.error == 0 and cred.kind != KIND_MIFARE:
            # the fare path: decide and purchase while the card is still selected
            self.stats["taps"] += 1
            self.last_tap_ms = self.clock.ticks_ms()
            await self.on_card(cred, drv, t.tg)
            await self._release()
            return
        await self._release()
        await self._hand(on_credential)

    async def _release(self):
        try:
            await self._do(self.drv.release(0))
        except PN532Error:
            pass

    async def _hand(self, on_credential):
        self.stats["taps"] += 1
        self.last_tap_ms = self.clock.ticks_ms()
        await on_credential(self.cred)

    def _same_uid(self, t):
        if t.uid_len != self._last_uid_len:
            return False
        for i in range(t.uid_len):
            if t.uid[i] != self._last_uid[i]:
                return False
        return True

    def _remember_uid(self, t):
        for i in range(t.uid_len):
            self._last_uid[i] = t.uid[i]
        self._last_uid_len = t.uid_len

    def _same_number(self, cred):
        if cred.number_len == 0 or cred.number_len != self._last_len:
            return False
        for i in range(cred.number_len):
            if cred.number[i] != self._last[i]:
                return False
        return True

    def _remember_number(self, cred):
        for i in range(cred.number_len):
            self._last[i] = cred.number[i]
        self._last_len = cred.number_len

    async def _apdu(self, t, apdu):
        """Send one APDU; returns the response length without SW (raises on SW != 9000)."""
        n = await self._do(self.drv.exchange(t.tg, apdu, len(apdu), self._rbuf))
        if n < 2:
            raise _NoApp()
        if self._rbuf[n - 2] != 0x90 or self._rbuf[n - 1] != 0x00:
            raise _NoApp()
        return n - 2

    async def _read_cpu(self, t, cred):
        # A 4-byte UID starting 08 is random (ISO 14443-3): a phone, not a card.
        cred.kind = KIND_PHONE if t.uid_len == 4 and t.uid[0] == 0x08 else KIND_CPU
        r = self._rbuf
        try:
            await self._apdu(t, _SELECT)
            if await self._apdu(t, _READ15) < 28:
                cred.error = ERR_FORMAT
                return
            if not _digits(r, 10, 10, cred):
                cred.error = ERR_FORMAT
                return
            for i in range(8):  # the application serial: what the purse keys derive from
                cred.serial[i] = r[12 + i]
            cred.valid_from = _bcd(r, 20, 4)
            cred.valid_to = _bcd(r, 24, 4)
            if await self._apdu(t, _READ17) < 15:
                cred.error = ERR_FORMAT
                return
            cred.card_type = r[10]
            cred.concession_to = _bcd(r, 11, 4)
        except _NoApp:
            cred.error = ERR_NO_APP
        if cred.valid_from < 0 or cred.valid_to < 0 or cred.concession_to < 0:
            cred.error = ERR_FORMAT

    async def _read_classic(self, t, cred):
        cred.kind = KIND_MIFARE
        cred.weak = True
        if not self.mifare_allowed:
            cred.error = ERR_NOT_ALLOWED
            return
        drv = self.drv
        try:
            await self._do(drv.mifare_auth(t.tg, MIFARE_BLOCK, self.mifare_key, t.uid,
                                           t.uid_len))
        except PN532Error as e:
            if e.code != 0x14:
                raise
            cred.error = ERR_AUTH
            return
        r = self._rbuf
        await self._do(drv.read16(t.tg, MIFARE_BLOCK, r))
        if not _digits(r, 0, 5, cred):
            cred.error = ERR_FORMAT
            return
        cred.valid_to = _bcd(r, 5, 4)
        cred.card_type = r[9]
        if cred.valid_to < 0:
            cred.error = ERR_FORMAT


class _NoApp(Exception):
    """An APDU status word other than 9000 while reading the application."""


def _bcd(buf, off, n):
    """BCD bytes -> int (YYYYMMDD dates); -1 when a nibble is not a digit."""
    v = 0
    for i in range(off, off + n):
        b = buf[i]
        hi = b >> 4
        lo = b & 0x0F
        if hi > 9 or lo > 9:
            return -1
        v = v * 100 + hi * 10 + lo
    return v


def _digits(buf, off, n, cred):
    """BCD card number -> ASCII digits in cred.number, leading zeros stripped."""
    out = cred.number
    k = 0
    for i in range(off, off + n):
        b = buf[i]
        for d in (b >> 4, b & 0x0F):
            if d > 9:
                return False
            if k or d:
                out[k] = 0x30 + d
                k += 1
    cred.number_len = k
    return k > 0

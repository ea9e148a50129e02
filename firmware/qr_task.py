"""The reader's QR task: scan engine -> ride-code verifier -> the decision core's callback.

A scan engine that stops answering must never stop the reader: commands time out, the engine
is probed when it has been quiet for a while and configured again when it comes back, and every
failure is counted for the health report. Verdicts are not decided here: the credential goes to
`on_credential` with `error` set to the ride-code result (0 when the code verified).
"""

import asyncio
import gc

import scanengine
import slog
from config import DEFAULTS
from credential import KIND_CODE, Credential
from micropython import const

log = slog.Logger("qr")

_DRAIN = const(33)  # 64-byte reads a tick: the ESP32 boards' 2 KiB UART buffer
_ARRIVING_MS = const(2)  # the poll period while a code is arriving
_KEYS = ("qr_mode", "qr_baud", "qr_poll_ms", "qr_gap_ms", "qr_same_ms", "qr_probe_s",
         "qr_trigger_ms", "qr_buf")


class QrReader:
    def __init__(self, uart, clock, verifier, config):
        cfg = {k: config.get(k, DEFAULTS[k]) for k in _KEYS}
        if cfg["qr_mode"] not in ("continuous", "command"):
            raise ValueError("qr_mode")
        self.cfg = cfg
        self._clock = clock
        uart.init(baudrate=cfg["qr_baud"])
        self.verifier = verifier
        self.engine = scanengine.ScanEngine(uart, clock, bufsize=cfg["qr_buf"],
                                            gap_ms=cfg["qr_gap_ms"], same_ms=cfg["qr_same_ms"])
        self.cred = Credential()
        self.configured = False
        self.scans = 0
        self.silences = 0  # engine did not answer a configuration or probe
        self.lost = 0  # engine answered but had forgotten its mode (reset on its own)
        self.reinits = 0

    def _mode(self):
        if self.cfg["qr_mode"] == "command":
            return scanengine.MODE_COMMAND
        return scanengine.MODE_CONTINUOUS

    async def configure(self):
        """Put the engine in the configured mode (volatile: no flash wear). True on success."""
        try:
            await self.engine.set_mode(self._mode())
        except scanengine.ScanEngineError:
            self.silences += 1
            log.warn("engine", "no answer to configuration (%d)", self.silences)
            return False
        if self.silences or self.lost:
            self.reinits += 1
            log.info("engine", "answering again: configured")
        self.configured = True
        return True

    def _silent(self):
        self.silences += 1
        self.configured = False
        log.warn("engine", "silent (%d)", self.silences)

    async def _trigger(self):
        try:
            await self.engine.trigger()
        except scanengine.ScanEngineError:
            self._silent()

    async def _probe(self):
        """Is the engine alive and still in our mode? It forgets volatile settings when it
        browns out on its own, and then it would never scan again."""
        eng = self.engine
        try:
            await eng.read_zone(scanengine.ZONE_MODE)
        except scanengine.ScanEngineError:
            self._silent()
            return
        if eng.reply[4] & 3 != self._mode():
            self.lost += 1
            self.configured = False
            log.warn("engine", "lost its settings (%d)", self.lost)

    async def run(self, on_credential):
        clock = self._clock
        diff = clock.ticks_diff
        eng = self.engine
        cfg = self.cfg
        command = cfg["qr_mode"] == "command"
        probe_ms = cfg["qr_probe_s"] * 1000
        backoff = 0
        last = last_trigger = clock.ticks_ms()  # last: last code, probe or configuration
        while True:
            now = clock.ticks_ms()
            if not self.configured:
                if diff(now, last) >= backoff:
                    backoff = 0 if await self.configure() else min(backoff * 2 or 500, 5000)
                    last = clock.ticks_ms()  # a gate is back within 5 s of its engine
            elif command and diff(now, last_trigger) >= cfg["qr_trigger_ms"]:
                await self._trigger()
                last_trigger = clock.ticks_ms()
            elif diff(now, last) >= probe_ms and (command or diff(now, eng.rx_ms) >= probe_ms):
                await self._probe()  # quiet for a while (no scan output at all)
                last = clock.ticks_ms()
            for _ in range(_DRAIN):  # what the UART holds, up to a delivered code
                if eng.poll() or eng.drained:
                    break
            n = eng.take()
            if n:
                last = clock.ticks_ms()
                await self._deliver(n, on_credential)
            elif eng.partial() and self._prefetch():
                await asyncio.sleep_ms(0)  # that took a while: read what came meanwhile now
                continue
            # a code on the wire: look again soon, its verdict waits for the next tick
            await asyncio.sleep_ms(_ARRIVING_MS if eng.partial() else cfg["qr_poll_ms"])

    def _prefetch(self):
        """An RC2 code's certificate comes first: check it while the rest is on the wire (an
        RSA-2048 code is ~105 ms of it at 115200 baud), so the check at its end is a warm one.
        The engine's UART buffer (2 KiB on the ESP32 boards) holds what arrives meanwhile."""
        eng = self.engine
        v = self.verifier
        k = v.prefetches
        try:
            v.prefetch(eng.arriving, eng.partial(), eng.start_ms)
        except MemoryError:
            gc.collect()  # the check of the whole code tries again
        return v.prefetches != k

    async def _deliver(self, n, on_credential):
        self.scans += 1
        cred = self.cred
        try:
            self.verifier.check(self.engine.code, n, cred)
        except MemoryError:
            # the big-integer verify needs a few contiguous 0.5 KB blocks: compact and retry
            gc.collect()
            self.verifier.check(self.engine.code, n, cred)
        cred.kind = KIND_CODE
        cred.t0 = self.engine.start_ms
        await on_credential(cred)

"""The reader's QR task: scan engine -> ride-code verifier -> the decision core's callback.

A scan engine that stops answering must never stop the reader: commands time out, the engine
is probed when it has been quiet for a while and configured again when it comes back, and every
failure is counted for the health report. Verdicts are not decided here: the credential goes to
`on_credential` with `error` set to the ride-code result (0 when the code verified).
"""

import asyncio

import scanengine
import slog
from credential import KIND_CODE, Credential

log = slog.Logger("qr")

DEFAULTS = {
    "qr_mode": "continuous",  # "continuous" (gate) | "command" (triggered every qr_trigger_ms)
    "qr_poll_ms": 10,
    "qr_gap_ms": 40,  # idle gap that ends a code sent without terminator
    "qr_same_ms": 3000,  # the same code re-read within this interval is not delivered again
    "qr_probe_s": 30,  # quiet this long: check the engine still answers
    "qr_trigger_ms": 1000,
    "qr_buf": 512,
}


class QrReader:
    def __init__(self, uart, clock, verifier, config):
        cfg = dict(DEFAULTS)
        for k in DEFAULTS:
            if k in config:
                cfg[k] = config[k]
        if cfg["qr_mode"] not in ("continuous", "command"):
            raise ValueError("qr_mode")
        self.cfg = cfg
        self._clock = clock
        self.verifier = verifier
        self.engine = scanengine.ScanEngine(uart, clock, bufsize=cfg["qr_buf"],
                                            gap_ms=cfg["qr_gap_ms"], same_ms=cfg["qr_same_ms"])
        self.cred = Credential()
        self.configured = False
        self.scans = 0
        self.silences = 0  # engine did not answer a configuration or probe
        self.reinits = 0

    async def configure(self):
        """Put the engine in the configured mode (volatile: no flash wear). True on success."""
        mode = scanengine.MODE_COMMAND if self.cfg["qr_mode"] == "command" else \
            scanengine.MODE_CONTINUOUS
        try:
            await self.engine.set_mode(mode)
        except scanengine.ScanEngineError:
            self.silences += 1
            log.warn("engine", "no answer to configuration (%d)", self.silences)
            return False
        if self.silences:
            self.reinits += 1
            log.info("engine", "answering again: configured")
        self.configured = True
        return True

    async def _probe(self):
        """A command both modes can afford: in command mode the trigger, else a zone read."""
        try:
            if self.cfg["qr_mode"] == "command":
                await self.engine.trigger()
            else:
                await self.engine.read_zone(scanengine.ZONE_MODE)
            return True
        except scanengine.ScanEngineError:
            self.silences += 1
            self.configured = False
            log.warn("engine", "silent (%d)", self.silences)
            return False

    async def run(self, on_credential):
        clock = self._clock
        eng = self.engine
        cfg = self.cfg
        command = cfg["qr_mode"] == "command"
        quiet_ms = cfg["qr_trigger_ms"] if command else cfg["qr_probe_s"] * 1000
        backoff = 0
        last = clock.ticks_ms()
        while True:
            if not self.configured and clock.ticks_diff(clock.ticks_ms(), last) >= backoff:
                if not await self.configure():
                    backoff = min(backoff * 2 or 500, 5000)  # a gate is back within 5 s
                    last = clock.ticks_ms()
                    continue
                backoff = 0
                last = clock.ticks_ms()
            for _ in range(4):  # up to 256 bytes per tick: keeps up with 115200 baud
                eng.poll()
            n = eng.take()
            if n:
                last = clock.ticks_ms()
                await self._deliver(n, on_credential)
            elif self.configured and self._quiet(last, quiet_ms, command):
                await self._probe()
                last = clock.ticks_ms()
                n = eng.take()  # a code that arrived while the command was out
                if n:
                    await self._deliver(n, on_credential)
            await asyncio.sleep_ms(cfg["qr_poll_ms"])

    def _quiet(self, last, quiet_ms, command):
        """Time to probe: nothing heard (continuous) / no code (command mode) for quiet_ms."""
        clock = self._clock
        now = clock.ticks_ms()
        if clock.ticks_diff(now, last) < quiet_ms:
            return False
        return command or clock.ticks_diff(now, self.engine.rx_ms) >= quiet_ms

    async def _deliver(self, n, on_credential):
        self.scans += 1
        cred = self.cred
        self.verifier.check(self.engine.code, n, cred)
        cred.kind = KIND_CODE
        await on_credential(cred)

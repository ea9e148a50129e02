"""A byte-accurate PN532 (C106, firmware 1.6) behind HSU, I2C or SPI framing, with virtual
cards in its field and fault injection.

The chip is modelled as the UM0701 describes it and as libnfc/nfcpy/ESPHome traces show it:
it starts in LowVbat (HSU: only a 0x55 wake-up followed by a delay gets it listening;
SAMConfiguration brings it to normal mode), ACKs every valid command before answering, answers
syntax errors with the error frame, aborts a command on a host ACK or on a new command,
re-sends its last response on a NACK, keeps a pending response across an MCU reset (the next
boot reads it as a stale frame), and is reset by RSTPD_N (`NFC_RESET`). With the default
MxRtyPassiveActivation 0xFF an InListPassiveTarget waits for a card forever, as the real chip
does, so a driver must configure finite retries.

Time: HSU bytes cross the wire at the configured baud (`UartDevice.send`); the chip adds its
own processing time, and card commands their RF/card time (`Card.activate`, `Card.exchange`).
The I2C/SPI bus time is not in the reader's clock; `bus_bytes` counts it for the benchmark.

`install(hw, transport)` wires one chip into a `Hardware` and returns it; `sim.field` presents
and removes cards; `sim.faults` injects faults; `sim.trace` (when `record` is set) keeps every
byte both ways for tests.
"""

import random
from collections import deque

from sim.hw import BusDevice, UartDevice

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"

WAKE_US = 1000  # HSU: after 0x55 the chip needs this long before it listens
BOOT_US = 2000  # after RSTPD_N goes high
ACK_US = 200  # frame received -> ACK starts
CMD_US = 300  # chip processing of a simple command
NO_CARD_US = 1200  # one passive activation attempt that finds nothing
TIMEOUT_US = 51200  # fRetryTimeout default: a card that does not answer


def frame(payload):
    """Information frame (normal or extended) around TFI + data."""
    n = len(payload)
    dcs = (-sum(payload)) & 0xFF
    if n <= 255:
        return bytes([0, 0, 0xFF, n, (-n) & 0xFF]) + bytes(payload) + bytes([dcs, 0])
    hi, lo = n >> 8, n & 0xFF
    return (bytes([0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF]) + bytes(payload)
            + bytes([dcs, 0]))


class Faults:
    """Counters for faults on what the chip sends; each applies to the next N frames."""

    def __init__(self, seed=1):
        self.rng = random.Random(seed)
        self.drop = 0  # drop one byte of each of the next N frames
        self.corrupt = 0  # flip one byte of each of the next N frames
        self.garbage = 0  # N junk bytes ahead of the next frame
        self.nack_storm = 0  # N NACK frames ahead of the next ACK
        self.late_ack_us = 0  # the next ACK comes this much later (once)
        self.hang = False  # deaf and mute until RSTPD_N is pulsed
        self.ignore = 0  # ignore the next N commands entirely (lost on the line)
        self.stale = 0  # a leftover response frame arrives ahead of the next N ACKs


class Field:
    """Cards in the RF field over virtual time (µs of the reader's clock)."""

    def __init__(self, sim):
        self._sim = sim
        self._cards = []  # [card, t_in, t_out]

    def _at(self, at_us, delay_ms):
        return (self._sim.now if at_us is None else at_us) + int(delay_ms * 1000)

    def present(self, card, at_us=None, delay_ms=0):
        with self._sim.lock:
            self._cards.append([card, self._at(at_us, delay_ms), None])

    def remove(self, card, at_us=None, delay_ms=0):
        with self._sim.lock:
            t = self._at(at_us, delay_ms)
            for e in self._cards:
                if e[0] is card and e[2] is None:
                    e[2] = t

    def clear(self):
        with self._sim.lock:
            now = self._sim.now
            for e in self._cards:
                if e[2] is None or e[2] > now:
                    e[2] = now

    def cards(self, now):
        out = []
        keep = []
        for e in self._cards:
            if e[2] is not None and e[2] <= now:
                e[0].left_field()
                continue
            keep.append(e)
            if e[1] <= now:
                out.append(e[0])
        self._cards = keep
        return out

    def has(self, card, now):
        return card in self.cards(now)


class PN532Sim:
    def __init__(self, transport="hsu", lock=None):
        import threading

        self.transport = transport
        self.lock = lock or threading.RLock()
        self.field = Field(self)
        self.faults = Faults()
        self.now = 0
        self.record = False
        self.trace = []  # (t, "in"|"out", bytes)
        self.commands = []  # command codes received, in order (for tests)
        self.chunk = 262  # DataIn bytes per InDataExchange answer before MI chaining
        self.port = None
        self.bus_bytes = 0
        self.resets = 0
        self.rst_level = 1
        self._power_on(0)

    # -- state --
    def _power_on(self, t):
        self.mode = "lowvbat"
        self.asleep = self.transport == "hsu"
        self.wake_at = None
        self.in_reset = False
        self.boot_until = t + BOOT_US
        self.rx = bytearray()
        self.pending = []  # [t, bytes, is_response]: not yet on the wire (cancellable)
        self.ready = deque()  # bus transports: frames the host can read, (t, bytes)
        self.last_resp = None
        self.last_read = None
        self.retries = 0xFF
        self.rf_on = True
        self.targets = {}
        self.chain_in = bytearray()
        self.chain_out = b""
        self.regs = {}
        self.faults.hang = False
        if self.port is not None and hasattr(self.port, "flush_output"):
            self.port.flush_output()

    def reset_line(self, now, level):
        with self.lock:
            self._clock(now)
            if level == self.rst_level:
                return
            self.rst_level = level
            if level == 0:
                self.resets += 1
                self._power_on(now)
                self.in_reset = True
            else:
                self.in_reset = False
                self.boot_until = now + BOOT_US

    def power_cycle(self):
        with self.lock:
            self.rst_level = 1
            self._power_on(self.now)
            for c in self.field.cards(self.now):
                c.left_field()

    def _clock(self, now):
        """Each boot of the reader starts a new clock: keep pending output relative to it."""
        if now + 1000 < self.now:
            d = self.now - now
            for e in self.pending:
                e[0] -= d
            self.ready = deque((t - d, f, c) for t, f, c in self.ready)
            for e in self.field._cards:
                e[1] -= d
                if e[2] is not None:
                    e[2] -= d
            if self.wake_at is not None:
                self.wake_at -= d
            self.boot_until -= d
            if self.port is not None and hasattr(self.port, "rebase"):
                self.port.rebase(d)
        self.now = max(self.now, now) if now + 1000 >= self.now else now

    # -- output --
    def _emit(self, t, data, response=False):
        f = self.faults
        clean = bytes(data)
        data = bytearray(data)
        if f.garbage:
            data[0:0] = bytes(f.rng.randrange(256) for _ in range(f.garbage))
            f.garbage = 0
        if f.corrupt and len(data) > 3:
            f.corrupt -= 1
            i = f.rng.randrange(3, len(data))
            data[i] ^= 1 << f.rng.randrange(8)
        if f.drop and len(data) > 3:
            f.drop -= 1
            del data[f.rng.randrange(3, len(data))]
        self.pending.append([t, bytes(data), response, clean])
        self.pending.sort(key=lambda e: e[0])

    def advance(self, now):
        self._clock(now)
        while self.pending and self.pending[0][0] <= now:
            t, data, _, clean = self.pending.pop(0)
            if self.record:
                self.trace.append((t, "out", data))
            if self.transport == "hsu":
                self.port.send(t, data)
            else:
                self.ready.append((t, data, clean))

    def take_frame(self, now):
        """Bus transports: the next frame the host may read now, or None."""
        self.advance(now)
        if self.ready and self.ready[0][0] <= now:
            _, f, clean = self.ready.popleft()
            self.last_read = clean  # a NACK re-sends what the chip meant to send
            return f
        return None

    def frame_ready(self, now):
        self.advance(now)
        return bool(self.ready) and self.ready[0][0] <= now

    # -- input --
    def host_bytes(self, now, data, per_byte_us=0.0):
        """Bytes from the host; byte i has fully arrived at now + (i + 1) * per_byte_us."""
        if self.record:
            self.trace.append((now, "in", bytes(data)))
        for i, b in enumerate(data):
            t = int(now + (i + 1) * per_byte_us)
            if self.in_reset or t < self.boot_until or self.faults.hang:
                continue
            if self.asleep:
                if self.wake_at is None:
                    if b == 0x55:
                        self.wake_at = t + WAKE_US
                    continue
                if t < self.wake_at:
                    continue
                self.asleep = False
                self.wake_at = None
            self.rx.append(b)
            self._parse(t)

    def _parse(self, t):
        rx = self.rx
        while True:
            i = rx.find(b"\x00\xff")
            if i < 0:
                del rx[:-1]
                return
            if i:
                del rx[:i]
            if len(rx) < 4:
                return
            ln, lcs = rx[2], rx[3]
            if ln == 0 and lcs == 0xFF:
                del rx[:4]
                self._host_ack(t)
                continue
            if ln == 0xFF and lcs == 0:
                del rx[:4]
                self._host_nack(t)
                continue
            if ln == 0xFF and lcs == 0xFF:
                if len(rx) < 7:
                    return
                n = rx[4] << 8 | rx[5]
                if (rx[4] + rx[5] + rx[6]) & 0xFF or n == 0:
                    del rx[:2]
                    continue
                start = 7
            else:
                if (ln + lcs) & 0xFF or ln == 0:
                    del rx[:2]
                    continue
                n = ln
                start = 4
            if len(rx) < start + n + 1:
                return
            payload = bytes(rx[start:start + n])
            dcs = rx[start + n]
            del rx[:start + n + 1]
            if (sum(payload) + dcs) & 0xFF:
                continue  # a broken command is ignored: no ACK, the host resends
            self._command(t, payload)

    def _host_ack(self, t):
        """Host ACK: abort whatever is running; nothing more is sent for it."""
        self.pending = [e for e in self.pending if not e[2]]
        if self.transport != "hsu":
            self.ready.clear()

    def _host_nack(self, t):
        if self.transport == "hsu":
            if self.last_resp is not None:
                self._emit(t + ACK_US, self.last_resp, True)
        elif self.last_read is not None:
            self.ready.appendleft((t + ACK_US, self.last_read, self.last_read))

    def _command(self, t, payload):
        f = self.faults
        if f.ignore:
            f.ignore -= 1
            return
        if payload[0] != 0xD4 or len(payload) < 2:
            return
        cmd, params = payload[1], payload[2:]
        self.commands.append(cmd)
        self.pending = []  # a new command aborts the one in progress
        if self.transport != "hsu":
            self.ready.clear()
        if cmd != 0x40:
            self.chain_out = b""
            self.chain_in = bytearray()
        ack_t = t + ACK_US + f.late_ack_us
        f.late_ack_us = 0
        if f.stale:
            f.stale -= 1
            self._emit(t + 50, frame(b"\xd5\x4b\x01\x01\x00\x04\x08\x04\xde\xad\xbe\xef"))
        while f.nack_storm:
            f.nack_storm -= 1
            self._emit(ack_t, NACK)
            ack_t += 100
        self._emit(ack_t, ACK)
        try:
            res = self._execute(t, cmd, bytes(params))
        except (IndexError, ValueError):
            res = (CMD_US, None)
        if res is None:
            return  # still running (e.g. waiting for a card with infinite retries)
        delay, data = res
        resp = ERROR_FRAME if data is None else frame(bytes([0xD5, cmd + 1]) + data)
        self.last_resp = resp
        self._emit(ack_t + 100 + delay, resp, True)
        if cmd == 0x16 and data is not None:
            self.mode = "powerdown"
            self.asleep = self.transport == "hsu"

    # -- commands --
    def _execute(self, t, cmd, p):
        if self.mode != "normal" and cmd not in (0x00, 0x02, 0x14):
            return CMD_US, None
        if cmd == 0x02:
            return CMD_US, b"\x32\x01\x06\x07"
        if cmd == 0x14:
            if not 1 <= p[0] <= 4:
                return CMD_US, None
            self.mode = "normal"
            return CMD_US, b""
        if cmd == 0x00:
            if p[0] != 0x00:
                return CMD_US, None
            return CMD_US, p  # communication line test: echo
        if cmd == 0x04:
            return CMD_US, bytes([0, 1, len(self.targets)]) + b"\x01"
        if cmd == 0x06:
            if len(p) % 2:
                return CMD_US, None
            return CMD_US, bytes(self.regs.get(p[i] << 8 | p[i + 1], 0)
                                 for i in range(0, len(p), 2))
        if cmd == 0x08:
            if len(p) % 3:
                return CMD_US, None
            for i in range(0, len(p), 3):
                self.regs[p[i] << 8 | p[i + 1]] = p[i + 2]
            return CMD_US, b""
        if cmd == 0x12:
            return (CMD_US, b"") if p else (CMD_US, None)
        if cmd == 0x32:
            if p[0] == 0x05:
                self.retries = p[3]
            elif p[0] == 0x01:
                self.rf_on = bool(p[1] & 1)
                if not self.rf_on:  # every card in the field loses power
                    for c in self.field.cards(t):
                        c.left_field()
                    self.targets = {}
            elif p[0] not in (0x01, 0x02, 0x04, 0x0A, 0x0B, 0x0C, 0x0D):
                return CMD_US, None
            return CMD_US, b""
        if cmd == 0x4A:
            return self._list(t, p)
        if cmd == 0x40:
            return self._exchange(t, p)
        if cmd == 0x42:
            return TIMEOUT_US, b"\x01"
        if cmd in (0x44, 0x52):
            tg = p[0]
            for k, c in list(self.targets.items()):
                if tg in (0, k):
                    c.halt()
                    if cmd == 0x52:
                        del self.targets[k]
            return CMD_US, b"\x00"
        if cmd == 0x16:
            return (CMD_US, b"\x00") if p else (CMD_US, None)
        return CMD_US, None

    def _list(self, t, p):
        max_tg, brty = p[0], p[1]
        if max_tg not in (1, 2) or brty > 4:
            return CMD_US, None
        self.targets = {}
        cards = [c for c in self.field.cards(t) if not c.halted] if brty == 0 else []
        if not self.rf_on:
            cards = []
        if not cards:
            if self.retries == 0xFF:
                return None  # waits for a card forever (until aborted)
            return CMD_US + NO_CARD_US * (self.retries + 1), b"\x00"
        out = bytearray([min(len(cards), max_tg)])
        rf = 0
        for i, c in enumerate(cards[:max_tg]):
            rf += c.activate()
            self.targets[i + 1] = c
            out += bytes([i + 1]) + c.sens_res + bytes([c.sel_res, len(c.uid)]) + c.uid
            if c.ats:
                out += c.ats
        return CMD_US + rf, bytes(out)

    def _exchange(self, t, p):
        tg, mi = p[0] & 0x3F, p[0] & 0x40
        card = self.targets.get(tg)
        if card is None:
            return CMD_US, b"\x27"
        if card.halted or not self.field.has(card, t):
            return TIMEOUT_US, b"\x01"
        data = p[1:]
        if not data and self.chain_out:
            chunk, self.chain_out = self.chain_out[:self.chunk], self.chain_out[self.chunk:]
            return CMD_US + len(chunk) * 85, (b"\x40" if self.chain_out else b"\x00") + chunk
        if mi:
            self.chain_in += data
            return CMD_US + 1000 + len(data) * 85, b"\x00"
        data = bytes(self.chain_in) + data
        self.chain_in = bytearray()
        if card.gone_after is not None and card.exchanges >= card.gone_after:
            self.field.remove(card, t)
            return TIMEOUT_US, b"\x01"
        card.exchanges += 1
        status, ans, rf = card.exchange(data)
        if status:
            return CMD_US + rf, bytes([status])
        if len(ans) > self.chunk:
            self.chain_out = ans[self.chunk:]
            return CMD_US + rf, b"\x40" + ans[:self.chunk]
        return CMD_US + rf, b"\x00" + ans


# -- transports --------------------------------------------------------------------------

class HsuPort(UartDevice):
    def __init__(self, sim, baud=115200):
        super().__init__(baud)
        self.sim = sim
        self._in_free_us = 0

    def receive(self, now_us, data):
        """Host bytes go out back to back: a write starts when the previous one has left."""
        with self.sim.lock:
            self.sim._clock(now_us)
            start = max(now_us, self._in_free_us)
            self.sim.host_bytes(start, data, self.byte_us())
            self._in_free_us = start + len(data) * self.byte_us()

    def advance(self, now_us):
        with self.sim.lock:
            self.sim.advance(now_us)

    def rebase(self, d):
        self._out = deque((t - d, b) for t, b in self._out)
        self._tx_free_us = max(0, self._tx_free_us - d)
        self._in_free_us = max(0, self._in_free_us - d)

    def power_cycle(self):
        super().power_cycle()
        self.sim.power_cycle()


class I2cPort(BusDevice):
    BYTE_US = 22.5  # 9 bits at 400 kHz

    def __init__(self, sim):
        self.sim = sim

    def i2c_write(self, now_us, data):
        s = self.sim
        with s.lock:
            s._clock(now_us)
            s.advance(now_us)
            if s.in_reset or now_us < s.boot_until:
                return False  # address not acknowledged
            s.bus_bytes += len(data) + 1
            s.host_bytes(now_us, data)
            return True

    def i2c_read(self, now_us, n):
        s = self.sim
        with s.lock:
            s._clock(now_us)
            if s.in_reset or now_us < s.boot_until:
                return bytes(n), 1
            s.bus_bytes += n + 1
            if n <= 1:
                return bytes([1 if s.frame_ready(now_us) else 0]), 0
            f = s.take_frame(now_us)
            if f is None:
                return bytes(n), 0
            body = f[:n - 1]
            return b"\x01" + body + bytes(n - 1 - len(body)), 0

    def power_cycle(self):
        self.sim.power_cycle()


class SpiPort(BusDevice):
    BYTE_US = 8.0  # 1 MHz

    def __init__(self, sim):
        self.sim = sim
        self.op = 0
        self.reading = b""
        self.pos = 0

    def spi_xfer(self, now_us, data, cs_fresh):
        s = self.sim
        with s.lock:
            s._clock(now_us)
            s.advance(now_us)
            s.bus_bytes += len(data)
            out = bytearray(len(data))
            if s.in_reset or now_us < s.boot_until:
                return bytes(out)
            i = 0
            if cs_fresh and data:
                self.op = data[0]
                i = 1
                if self.op == 0x03:
                    self.reading = s.take_frame(now_us) or b""
                    self.pos = 0
            if self.op == 0x01:
                s.host_bytes(now_us, data[i:])
            elif self.op == 0x02:
                r = 1 if s.frame_ready(now_us) else 0
                for k in range(i, len(data)):
                    out[k] = r
            elif self.op == 0x03:
                for k in range(i, len(data)):
                    if self.pos < len(self.reading):
                        out[k] = self.reading[self.pos]
                    self.pos += 1
            return bytes(out)

    def power_cycle(self):
        self.sim.power_cycle()


def install(hw, transport="hsu"):
    """Put a PN532 on the reader's NFC bus: hw.uarts[1] | hw.i2c[0x24] | hw.spi["NFC_CS"];
    the RSTPD_N line is NFC_RESET. Returns the simulator (`.field`, `.faults`, ...)."""
    sim = PN532Sim(transport, lock=hw.lock)
    if transport == "hsu":
        sim.port = HsuPort(sim)
        hw.uarts[1] = sim.port
    elif transport == "i2c":
        sim.port = I2cPort(sim)
        hw.i2c[0x24] = sim.port
    elif transport == "spi":
        sim.port = SpiPort(sim)
        hw.spi["NFC_CS"] = sim.port
    else:
        raise ValueError("transport must be hsu, i2c or spi")
    hw.watch_pin("NFC_RESET", sim.reset_line)
    return sim

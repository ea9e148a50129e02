"""The chip's state machine: reset, the frame parser, ACK/NACK and abort rules, the serial
rate change, and the queue of what it sends (with fault injection)."""

from collections import deque

from sim.pn532.commands import Commands
from sim.pn532.field import Faults, Field
from sim.pn532.frames import ACK, ERROR_FRAME, NACK, frame
from sim.pn532.power import Power
from sim.pn532.timing import ACK_US, BAUD_SWITCH_US, BOOT_US, CMD_US


class PN532Sim(Commands, Power):
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
        self.stretched_us = 0  # I2C: SCL held low through wake-ups
        self.resets = 0
        self.sleeps = 0
        self.wakes = 0
        self.baud_switches = 0
        self.rst_level = 1
        self._power_on(0)

    # -- state --
    def _power_on(self, t):
        self.mode = "lowvbat"
        self._asleep_from_power_on()
        self.in_reset = False
        self.boot_until = t + BOOT_US
        self.rx = bytearray()
        self.pending = []  # [t, bytes, is_response]: not yet on the wire (cancellable)
        self.ready = deque()  # bus transports: frames the host can read, (t, bytes)
        self.last_resp = None
        self.last_read = None
        self.retries = 0xFF
        self.atr_timeout_us = 102400  # RFConfiguration item 2 defaults (0x0B, 0x0A)
        self.retry_timeout_us = 51200
        self.flags = 0x14  # SetParameters: automatic ATR_RES and RATS
        self.rf_on = True
        self.targets = {}
        self.current = 0  # the target InCommunicateThru talks to
        self.chain_in = bytearray()
        self.chain_out = b""
        self.regs = {}
        self.p3 = 0x3F  # GPIO ports as read back by ReadGPIO (pulled up)
        self.p7 = 0x06
        self.last_err = 0
        self.baud_next = None  # SetSerialBaudRate answered: the rate once the host ACKs
        self.waiting = None  # (t, cmd, params) of a command waiting for a card
        self.faults.hang = False
        if self.port is not None:
            self.port.chip_reset()

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
            if self.sleep_at is not None:
                self.sleep_at -= d
            if self.waiting is not None:
                self.waiting = (self.waiting[0] - d,) + self.waiting[1:]
            self.boot_until -= d
            if self.port is not None and hasattr(self.port, "rebase"):
                self.port.rebase(d)
        self.now = max(self.now, now) if now + 1000 >= self.now else now

    # -- output --
    def _emit(self, t, data, response=False):
        f = self.faults
        clean = data if type(data) is bytes else bytes(data)  # PowerDown knows its answer by id
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
        if self.waiting is not None:
            self._card_came(now)
        while self.pending and self.pending[0][0] <= now:
            t, data, _, clean = self.pending.pop(0)
            if self.record:
                self.trace.append((t, "out", data))
            if self.transport == "hsu":
                self.port.send(t, data)
                self._response_gone(clean, self.port._tx_free_us)
            else:
                self.ready.append((t, data, clean))
        self._power_at(now)

    def take_frame(self, now):
        """Bus transports: the next frame the host may read now, or None."""
        self.advance(now)
        if self.ready and self.ready[0][0] <= now:
            _, f, clean = self.ready.popleft()
            self.last_read = clean  # a NACK re-sends what the chip meant to send
            self._response_gone(clean, now)
            return f
        return None

    # -- P70_IRQ --
    def irq_level(self, now):
        """P70_IRQ as the host reads it: low while a frame waits for the host to take it (I2C,
        SPI: the status byte's RDY; cleared by reading the frame) or after a wake-up with
        GenerateIRQ. On HSU the frames go out by themselves and the reader waits on its UART
        instead: the line stays high there (UM0701 describes the handshake for I2C and SPI)."""
        with self.lock:
            self._clock(now)
            if self.transport != "hsu" and self.frame_ready(now):
                return 0
            return self.irq

    def irq_at(self, now, level, until):
        """When P70_IRQ will read `level` (a wake-up query), None if not by `until`."""
        with self.lock:
            if self.irq_level(now) == level:
                return now
            if level or self.transport == "hsu" or not self.pending:
                return None
            t = self.pending[0][0]
            return t if t <= until else None

    def frame_ready(self, now):
        self.advance(now)
        return bool(self.ready) and self.ready[0][0] <= now

    # -- input --
    def host_bytes(self, items, source=None):
        """Bytes from the host, [(start_us, done_us, byte)] as they arrive; `source` is the
        host interface when it wakes the chip by line activity (HSU), None when the port has
        checked that already (I2C, SPI)."""
        if self.record and items:
            self.trace.append((int(items[0][0]), "in", bytes(b for _, _, b in items)))
        for s, t, b in items:
            s, t = int(s), int(t)
            if self.in_reset or s < self.boot_until or self.faults.hang:
                continue
            if source is not None and not self.hears(s, source):
                continue
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
        """Host ACK: abort whatever is still running; nothing more is sent for it. After a
        SetSerialBaudRate answer it confirms the new rate, which the chip takes shortly after."""
        running = [e for e in self.pending if e[2] and e[0] > t]
        self.pending = [e for e in self.pending if not (e[2] and e[0] > t)]
        if self.transport != "hsu":
            running += self.ready
            self.ready.clear()
        self.waiting = None
        if self.baud_next is not None and not running and self.transport == "hsu":
            self.port.switch_baud(t + BAUD_SWITCH_US, self.baud_next)
            self.baud_switches += 1
        self.baud_next = None

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
        self.irq = 1
        self.baud_next = None  # a rate change not confirmed by the host ACK is dropped
        self.waiting = None
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
            if cmd in (0x4A, 0x60):  # waits for a card (infinite retries / endless polling)
                self.waiting = (ack_t, cmd, bytes(params))
            return  # or stays in a test mode until the next command
        self._answer(ack_t, cmd, bytes(params), res)

    def _answer(self, ack_t, cmd, params, res):
        delay, data = res
        resp = ERROR_FRAME if data is None else frame(bytes([0xD5, cmd + 1]) + data)
        self.last_resp = resp
        self._emit(ack_t + 100 + delay, resp, True)
        if data is not None and cmd in (0x40, 0x42, 0x44, 0x52, 0x54):
            self.last_err = data[0] & 0x3F
        if cmd == 0x16 and data is not None:
            self._power_down_after(resp, params[0], len(params) > 1 and params[1] & 1)

    def _card_came(self, now):
        """A command waiting for a card answers once one has come into the field."""
        t0, cmd, params = self.waiting
        came = self.field.arrived(now)
        if came is not None:
            t = max(came, t0)
            res = self._execute(t, cmd, params)
            if res is not None:  # (None: not a card this command looks for)
                self.waiting = None
                self._answer(t, cmd, params, res)

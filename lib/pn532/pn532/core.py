"""The PN532 dialog (UM0701 §6.2.3) over any transport, without blocking.

`start(cmd, n)` sends a command whose parameters the caller put in `params`; `poll()` moves the
dialog on with whatever the transport has and returns True once the response is in `resp`
(`resp[2:rlen]` = data). It enforces the rules hobby drivers skip: wait for the ACK and resend
the command when it does not come, throw away stale frames (a response left over from before a
host reboot arrives where an ACK was expected), ask for a corrupted response again with a NACK,
abort a command that overran with an ACK. Multi-step operations (init, APDU exchange with
chaining, MIFARE) are generators that yield while waiting, so the same code runs blocking
(`run()`) or under asyncio (the caller awaits between steps).
"""

from micropython import const

from .errors import GONE, CardGone, ChipError, FrameError, Overflow, PN532Error, Timeout
from .frame import K_ACK, K_ERROR, K_FRAME, K_NACK, Decoder, _take, encode

CMD_FIRMWARE = const(0x02)
CMD_BAUD = const(0x10)
CMD_SAM = const(0x14)
CMD_RFCONFIG = const(0x32)
CMD_DATA_EXCHANGE = const(0x40)
CMD_DESELECT = const(0x44)
CMD_LIST = const(0x4A)
CMD_RELEASE = const(0x52)

_IDLE = const(0)
_WAIT_ACK = const(1)
_WAIT_RESP = const(2)
_DONE = const(3)

_TX = const(280)  # largest extended frame + margin
_PARAMS = const(265)
_STALL_MS = const(5)  # a frame that stops mid-way for this long lost bytes
_NACKS = const(3)
MAX_OUT = const(250)  # DataOut bytes per InDataExchange before host-side chaining

_ACK = b"\x00\x00\xff\x00\xff\x00"
_NACK = b"\x00\x00\xff\xff\x00\x00"
_ERRS_PER_POLL = const(4)  # broken frames taken in one poll() before it returns

# SetSerialBaudRate codes 0..8 (UM0701 §7.2.8)
BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)


class Target:
    """One listed 106 kbps type A target (preallocated; refilled by every list)."""

    def __init__(self):
        self.tg = 0
        self.sens_res = 0
        self.sel_res = 0
        self.uid = bytearray(10)
        self.uid_len = 0
        self.ats = bytearray(48)
        self.ats_len = 0

    def iso_dep(self):
        """ISO 14443-4 compliant (SAK bit 6): talks APDUs."""
        return self.sel_res & 0x20 != 0

    def classic(self):
        """MIFARE Classic (SAK 08 1K, 18 4K, 09 Mini) without ISO 14443-4."""
        return self.sel_res & 0x08 != 0 and self.sel_res & 0x20 == 0


class PN532:
    def __init__(self, transport, clock, reset_pin=None, ack_ms=15, resends=3):
        self.t = transport
        self.clock = clock
        self.rst = reset_pin
        self.ack_ms = ack_ms
        self.resends = resends
        self.max_out = MAX_OUT
        self.params = bytearray(_PARAMS)
        self._tx = bytearray(_TX)
        self._txmv = memoryview(self._tx)
        self._tv = [None] * (_TX + 1)
        self._txn = 0
        self.dec = Decoder()
        self.resp = self.dec.buf
        self.rlen = 0
        self.targets = (Target(), Target())
        self._small = bytearray(18)
        self._st = _IDLE
        self._cmd = 0
        self._t0 = 0
        self._tmo = 0
        self._tries = 0
        self._nacks = 0
        self._fed = 0
        self._fed_t = 0
        self._mi = 0
        # counters (field diagnostics)
        self.commands = 0
        self.stale = 0
        self.resent = 0
        self.bad_frames = 0
        self.timeouts = 0
        self.aborts = 0
        self.resets = 0

    # -- one command, non-blocking --
    def start(self, cmd, n=0, timeout_ms=350):
        """Send command `cmd` with params[0:n]; then call poll() until it returns True."""
        self._cmd = cmd
        self._txn = encode(self._tx, 0xD4, cmd, self.params, n)
        self._tmo = timeout_ms
        self._tries = 0
        self._nacks = 0
        self.commands += 1
        self._send()

    def _send(self):
        n = self._txn
        v = self._tv[n]
        if v is None:
            v = self._tv[n] = self._txmv[:n]
        self.dec.reset()
        self.t.send(v)
        self._st = _WAIT_ACK
        self._t0 = self.clock.ticks_ms()
        self._fed_t = self._t0

    def poll(self):
        """Advance the dialog; True once the response is in resp[0:rlen]. Raises Timeout,
        ChipError (error frame), FrameError (a response that stays corrupted)."""
        st = self._st
        if st == _DONE:
            return True
        if st == _IDLE:
            raise PN532Error(22, "no command running")
        d = self.dec
        errs = 0
        while True:
            try:
                if not self.t.pump(d):
                    break
            except FrameError:
                self.bad_frames += 1
                self._rerequest()
                errs += 1
                if errs >= _ERRS_PER_POLL:  # a bus that keeps returning junk: not forever
                    break
                continue
            k = d.kind
            if st == _WAIT_ACK:
                if k == K_ACK:
                    st = self._st = _WAIT_RESP
                    self._t0 = self.clock.ticks_ms()
                elif k != K_NACK:
                    self.stale += 1  # a response from before: not ours
            elif k == K_FRAME:
                b = d.buf
                if d.n >= 2 and b[0] == 0xD5 and b[1] == self._cmd + 1:
                    self.rlen = d.n
                    self._st = _DONE
                    d.reset()
                    return True
                self.stale += 1
            elif k == K_ERROR:
                self._st = _IDLE
                d.reset()
                raise ChipError(0x7F)
            d.reset()
        now = self.clock.ticks_ms()
        if d.fed != self._fed:
            self._fed = d.fed
            self._fed_t = now
        elif d.busy() and self.clock.ticks_diff(now, self._fed_t) >= _STALL_MS:
            self.bad_frames += 1  # bytes were lost: the rest of this frame never comes
            self._fed_t = now
            self._rerequest()
        el = self.clock.ticks_diff(now, self._t0)
        if st == _WAIT_ACK:
            if el >= self.ack_ms:
                if self._tries >= self.resends:
                    self._st = _IDLE
                    self.timeouts += 1
                    raise Timeout("no ACK")
                self._tries += 1
                self.resent += 1
                self._send()
        elif el >= self._tmo:
            self.abort()
            self.timeouts += 1
            raise Timeout("no response")
        return False

    def wait_us(self):
        """How long an async caller may wait before poll() has a timeout to check (a late ACK,
        a frame that stopped half-way, a response that never comes): a wait that ends when the
        chip has something for us (`need()`) ends at this at the latest. 1 ms outside a
        command (the multi-step operations' own pauses)."""
        st = self._st
        if st == _WAIT_ACK:
            left = self.ack_ms
        elif st == _WAIT_RESP:
            left = self._tmo
        else:
            return 1000
        c = self.clock
        now = c.ticks_ms()
        left -= c.ticks_diff(now, self._t0)
        if self.dec.busy():
            stall = _STALL_MS - c.ticks_diff(now, self._fed_t)
            if stall < left:
                left = stall
        return left * 1000 + 1000 if left > 0 else 0  # + 1 ms: poll() counts whole ms

    def need(self):
        """What is worth waking for: the bytes a stream transport (HSU) needs before the frame
        in progress can move on, else 1 (the transport's ready line, P70_IRQ)."""
        return self.t.need(self.dec, self._st == _WAIT_ACK)

    def _rerequest(self):
        """A broken frame: drop it; if it was the response, ask for it again (NACK)."""
        self.dec.reset()
        if self._st == _WAIT_RESP:
            if self._nacks >= _NACKS:
                self._st = _IDLE
                raise FrameError("response stays corrupted")
            self._nacks += 1
            self.t.send(_NACK)

    def abort(self):
        """Stop the command in progress (a host ACK): the chip sends no response."""
        if self._st != _IDLE and self._st != _DONE:
            self.t.send(_ACK)
            self.aborts += 1
        self._st = _IDLE
        self.dec.reset()

    def data(self, i):
        """Response data byte i (after TFI and code)."""
        return self.resp[2 + i]

    # -- reset line --
    def reset_begin(self):
        """Pull RSTPD_N low: the chip stops, whatever it was doing."""
        self.resets += 1
        self._st = _IDLE
        self.dec.reset()
        if self.rst is not None:
            self.rst.value(0)
        self.t.reset()

    def reset_end(self):
        if self.rst is not None:
            self.rst.value(1)

    def hard_reset(self, low_ms=10, settle_ms=10):
        self.reset_begin()
        self.clock.sleep_ms(low_ms)
        self.reset_end()
        self.clock.sleep_ms(settle_ms)

    # -- generator operations (yield while waiting) --
    def call(self, cmd, n=0, timeout_ms=350):
        self.start(cmd, n, timeout_ms)
        while not self.poll():
            yield
        return self.rlen - 2

    def run(self, gen, step_ms=1):
        """Drive a generator operation to the end, blocking; returns its value."""
        sleep = self.clock.sleep_ms
        while True:
            try:
                next(gen)
            except StopIteration as e:
                return e.value
            sleep(step_ms)

    def _pause(self, ms):
        c = self.clock
        t0 = c.ticks_ms()
        while c.ticks_diff(c.ticks_ms(), t0) < ms:
            yield

    def init(self, retries=1):
        """Wake the chip (it starts in LowVbat), SAM normal mode, a finite
        MxRtyPassiveActivation so a poll answers when no card is there. Returns the
        firmware version as IC << 24 | Ver << 16 | Rev << 8 | Support."""
        p = self.params
        self.t.wake = True
        if self.t.wake_ms:  # SPI: NSS wakes it; a frame sent before it listens is lost
            self.t.nudge()
            yield from self._pause(self.t.wake_ms)
        p[0] = 0x01  # normal mode
        p[1] = 0x14  # timeout 1 s (virtual card mode only)
        p[2] = 0x01  # use IRQ
        yield from self.call(CMD_SAM, 3, 100)
        self.t.wake = False
        n = yield from self.call(CMD_FIRMWARE, 0, 100)
        if n != 4 or self.data(0) != 0x32:
            raise FrameError("not a PN532")
        ver = self.data(0) << 24 | self.data(1) << 16 | self.data(2) << 8 | self.data(3)
        p[0] = 0x05  # MaxRetries: ATR, PSL, passive activation
        p[1] = 0xFF
        p[2] = 0x01
        p[3] = retries
        yield from self.call(CMD_RFCONFIG, 4, 100)
        return ver

    def set_baud(self, rate):
        """SetSerialBaudRate (HSU only): the chip answers at the old rate, our ACK confirms,
        then both ends switch; the chip takes a moment after the ACK, so we wait before the
        next frame. A chip reset (`reset_begin`) brings both back to 115200."""
        if self.t.kind != "hsu" or rate not in BAUDS:
            raise PN532Error(22, "baud rate")
        self.params[0] = BAUDS.index(rate)
        yield from self.call(CMD_BAUD, 1, 100)
        self.t.send(_ACK)
        self.t.set_baud(rate)
        yield from self._pause(2)

    def start_list(self, max_tg=2):
        """InListPassiveTarget, 106 kbps type A; MaxTg 2 so a card clash is seen."""
        self.params[0] = max_tg
        self.params[1] = 0x00
        self.start(CMD_LIST, 2, 300)

    def parse_list(self):
        """Fill `targets` from the InListPassiveTarget response; returns NbTg."""
        r = self.resp
        end = self.rlen
        if end < 3:
            raise FrameError("target data")
        nb = r[2]
        if nb > 2:
            raise FrameError("target count")
        i = 3
        for k in range(nb):
            t = self.targets[k]
            if i + 5 > end:
                raise FrameError("target data")
            t.tg = r[i]
            t.sens_res = r[i + 1] << 8 | r[i + 2]
            t.sel_res = r[i + 3]
            ln = r[i + 4]
            i += 5
            if (ln != 4 and ln != 7 and ln != 10) or i + ln > end:
                raise FrameError("uid length")
            for j in range(ln):
                t.uid[j] = r[i + j]
            t.uid_len = ln
            i += ln
            t.ats_len = 0
            if t.sel_res & 0x20 and i < end:
                tl = r[i]
                if tl < 1 or tl > len(t.ats) or i + tl > end:
                    raise FrameError("ATS length")
                for j in range(tl):
                    t.ats[j] = r[i + j]
                t.ats_len = tl
                i += tl
        if i != end:
            raise FrameError("target data")
        return nb

    def list_targets(self, max_tg=2):
        self.start_list(max_tg)
        while not self.poll():
            yield
        return self.parse_list()

    def _status(self):
        """Check the InDataExchange status byte; remember the MI (more data) bit."""
        if self.rlen < 3:
            raise FrameError("status missing")
        s = self.resp[2]
        code = s & 0x3F
        if code:
            if code in GONE:
                raise CardGone(code)
            raise ChipError(code)
        self._mi = s & 0x40

    def _take(self, dst, at):
        n = self.rlen - 3
        if at + n > len(dst):
            raise Overflow()
        _take(dst, at, self.resp, 3, n)
        return at + n

    def exchange(self, tg, src, n, dst, timeout_ms=500):
        """InDataExchange of src[0:n] with target tg; the answer goes to dst, its length is
        returned. Chains both ways: MI on every host chunk but the last, and fetches more while
        the chip sets MI in its status."""
        p = self.params
        off = 0
        while True:
            k = n - off
            more = k > self.max_out
            if more:
                k = self.max_out
            p[0] = tg | 0x40 if more else tg
            _take(p, 1, src, off, k)
            off += k
            yield from self.call(CMD_DATA_EXCHANGE, 1 + k, timeout_ms)
            self._status()
            if not more:
                break
        got = self._take(dst, 0)
        while self._mi:
            p[0] = tg
            yield from self.call(CMD_DATA_EXCHANGE, 1, timeout_ms)
            self._status()
            got = self._take(dst, got)
        return got

    def mifare_auth(self, tg, block, key, uid, uid_len, key_b=False):
        """Authenticate a Classic block with a 6-byte key; the last 4 UID bytes are used
        (libnfc's convention, right for 7-byte UIDs too). ChipError 0x14 on a wrong key."""
        s = self._small
        s[0] = 0x61 if key_b else 0x60
        s[1] = block
        for j in range(6):
            s[2 + j] = key[j]
        for j in range(4):
            s[8 + j] = uid[uid_len - 4 + j]
        yield from self.exchange(tg, s, 12, s)

    def read16(self, tg, block, dst):
        """MIFARE read (0x30): a Classic block or 4 Ultralight pages, 16 bytes into dst."""
        s = self._small
        s[0] = 0x30
        s[1] = block
        n = yield from self.exchange(tg, s, 2, dst)
        if n != 16:
            raise FrameError("block length")
        return n

    def release(self, tg=0):
        """InRelease (0 = all targets): the card is halted and forgotten."""
        self.params[0] = tg
        yield from self.call(CMD_RELEASE, 1, 300)

    def rf_field(self, on):
        """RFConfiguration item 1: switch the field off (every card loses power and forgets
        its HALT state) or on again."""
        self.params[0] = 0x01
        self.params[1] = 0x01 if on else 0x00
        yield from self.call(CMD_RFCONFIG, 2, 100)

    def deselect(self, tg=0):
        self.params[0] = tg
        yield from self.call(CMD_DESELECT, 1, 300)

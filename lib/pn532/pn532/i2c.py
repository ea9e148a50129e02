"""I2C transport: the PN532 at 0x24. Every read starts with the status byte (bit 0 = ready).
A 1-byte status read does not consume the frame; a longer read does. So: poll the status,
read a first chunk; if the frame is longer, NACK (the chip re-arms the same frame) and read it
whole now that its length is known, in a new transaction (never continue a read past a frame:
hydrafw #141)."""

from .errors import FrameError, Timeout

_NACK = b"\x00\x00\xff\xff\x00\x00"
_FIRST = 48
_REARM_POLLS = 200  # status reads while the chip re-arms a frame after our NACK


class I2C:
    kind = "i2c"
    wake_ms = 0  # the chip stretches SCL while it wakes

    def __init__(self, i2c, addr=0x24, big=1 + 280):
        self.bus = i2c
        self.addr = addr
        self.wake = True
        self._st = bytearray(1)
        self._first = bytearray(1 + _FIRST)
        self._big = bytearray(big)
        self._bmv = memoryview(self._big)
        self._views = [None] * (big + 1)

    def send(self, frame):
        for i in range(3):  # libnfc retries writes: the chip may not acknowledge in time
            try:
                self.bus.writeto(self.addr, frame)
                return
            except OSError:
                if i == 2:
                    raise

    def _ready(self):
        self.bus.readfrom_into(self.addr, self._st)
        return self._st[0] & 1

    def pump(self, dec):
        if not self._ready():
            return False
        f = self._first
        self.bus.readfrom_into(self.addr, f)
        if not f[0] & 1:
            return False
        dec.reset()
        dec.feed(f, 1, _FIRST)
        if dec.kind:
            return True
        if not dec.busy():
            raise FrameError("no frame")
        total = _FIRST + dec.need()  # the whole frame, now that its length is known
        if total + 1 > len(self._big):
            raise FrameError("length")
        self.send(_NACK)
        for _ in range(_REARM_POLLS):
            if self._ready():
                break
        else:
            raise Timeout("frame not re-sent")
        v = self._views[total + 1]
        if v is None:
            v = self._views[total + 1] = self._bmv[: total + 1]
        self.bus.readfrom_into(self.addr, v)
        dec.reset()
        dec.feed(self._big, 1, total)
        if not dec.kind:
            raise FrameError("truncated")
        return True

    def need(self, dec, ack=False):
        """A frame is there when P70_IRQ is low (as the status byte's RDY bit)."""
        return 1

    def reset(self):
        self.wake = True

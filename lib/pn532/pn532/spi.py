"""SPI transport: mode 0, LSB first (the bus is configured firstbit=LSB by the board; no
software bit reversal). Each CS-low transaction starts with 01 data write, 02 status read
(01 = ready) or 03 data read; a data read stays in one transaction, reading the header first
and then exactly the rest of the frame. A sleeping chip (LowVbat after power-up or reset)
holds MISO high (status FF, not ready) and wakes on NSS going low: `nudge()` does that, and
the caller waits `wake_ms` before the first frame, which would otherwise be lost."""

from .errors import FrameError

_DW = b"\x01"
_SR = b"\x02"
_DR = b"\x03"


class SPI:
    kind = "spi"
    wake_ms = 2  # NSS low -> listening (Adafruit and Seeed hold NSS low 2 ms)

    def __init__(self, spi, cs, big=280):
        self.spi = spi
        self.cs = cs
        self.wake = True
        self._one = bytearray(1)
        self._big = bytearray(big)
        self._bmv = memoryview(self._big)
        self._views = [None] * (big + 1)
        cs.value(1)

    def send(self, frame):
        cs = self.cs
        cs.value(0)
        self.spi.write(_DW)
        self.spi.write(frame)
        cs.value(1)

    def _view(self, n):
        v = self._views[n]
        if v is None:
            v = self._views[n] = self._bmv[:n]
        return v

    def pump(self, dec):
        cs = self.cs
        spi = self.spi
        one = self._one
        cs.value(0)
        spi.write(_SR)
        spi.readinto(one)
        cs.value(1)
        if one[0] != 1:
            return False  # 00 busy, FF asleep
        cs.value(0)
        try:
            spi.write(_DR)
            dec.reset()
            k = 6  # 00 00 FF LEN LCS TFI, or an ACK / NACK whole
            while True:
                spi.readinto(self._view(k))
                dec.feed(self._big, 0, k)
                if dec.kind:
                    return True
                k = dec.need()
                if k == 0 or k > len(self._big):
                    raise FrameError("no frame")
                if not dec.busy():
                    raise FrameError("no frame")
        finally:
            cs.value(1)

    def nudge(self):
        """NSS low and high again (a status read): wakes a sleeping chip."""
        cs = self.cs
        cs.value(0)
        self.spi.write(_SR)
        self.spi.readinto(self._one)
        cs.value(1)

    def need(self, dec, ack=False):
        """A frame is there when P70_IRQ is low (as the status byte's RDY bit)."""
        return 1

    def reset(self):
        self.wake = True

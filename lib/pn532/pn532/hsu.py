"""HSU transport: the PN532 on a UART (115200 8N1). A byte stream, so whatever has arrived is
fed to the decoder; leftovers after one frame (a response right behind its ACK) are kept for
the next. Before each command the receive side is drained (libnfc's RX hygiene), and while the
chip may be asleep (power-up LowVbat, after a reset) the wake-up preamble goes first."""

from .errors import FrameError

# 0x55 wakes the HSU; the long run of zeros is the delay the chip needs before a frame.
_WAKE = b"\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


class HSU:
    kind = "hsu"

    def __init__(self, uart, chunk=64):
        self.uart = uart
        self.wake = True
        self.drained = 0
        self._buf = bytearray(chunk)
        self._pos = 0
        self._cnt = 0

    def send(self, frame):
        u = self.uart
        while u.any():
            n = u.readinto(self._buf)
            self.drained += n or 0
        self._pos = self._cnt = 0
        if self.wake:
            u.write(_WAKE)
        u.write(frame)

    def pump(self, dec):
        """Feed what has arrived; True when `dec` holds a whole frame."""
        buf = self._buf
        while True:
            if self._pos >= self._cnt:
                n = self.uart.readinto(buf)
                if not n:
                    return False
                self._pos = 0
                self._cnt = n
            try:
                self._pos += dec.feed(buf, self._pos, self._cnt - self._pos)
            except FrameError:
                self._pos += dec.used  # go on after the bad byte next time
                raise
            if dec.kind:
                return True

    def reset(self):
        self.wake = True
        self._pos = self._cnt = 0

"""HSU transport: the PN532 on a UART (115200 8N1 after reset; SetSerialBaudRate changes
both ends, `set_baud`). A byte stream, so whatever has arrived is fed to the decoder;
leftovers after one frame (a response right behind its ACK) are kept for the next. Before each
command the receive side is drained (libnfc's RX hygiene), and while the chip may be asleep
(power-up LowVbat, after a reset) the wake-up preamble goes first."""

from micropython import const

from .errors import FrameError

RESET_BAUD = const(115200)  # the chip's rate after power-up or RSTPD_N

# 0x55 wakes the HSU; the long run of zeros is the delay the chip needs before a frame.
_WAKE = b"\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


class HSU:
    kind = "hsu"
    wake_ms = 0  # the preamble before the frame is the wait

    def __init__(self, uart, chunk=64):
        self.uart = uart
        self.baud = RESET_BAUD  # the rate both ends use now
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

    def need(self, dec, ack=False):
        """Bytes to wait for before feeding the decoder again: the rest of the frame's header
        or body it is in, else the smallest frame (an ACK, 6 bytes); while the ACK is awaited
        (`ack`), the ACK and the response's first 6 bytes, which follow it as soon as the chip
        has the answer: one wake instead of two (a slow answer: the ACK deadline wakes)."""
        k = dec.need()
        return k if k > 0 else (12 if ack else 6)

    def set_baud(self, rate):
        """Our end of a rate change, once what we wrote (the confirming ACK) has left at the
        old rate: machine.UART.flush() waits for that."""
        self.uart.flush()
        self.uart.init(baudrate=rate)
        self.baud = rate
        self._pos = self._cnt = 0

    def reset(self):
        """The chip was reset: it sleeps and listens at 115200 again."""
        self.wake = True
        self._pos = self._cnt = 0
        if self.baud != RESET_BAUD:
            self.set_baud(RESET_BAUD)

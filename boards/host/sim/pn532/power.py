"""Power modes and wake-up (UM0701 §7.2.11 PowerDown, AN10609 on the C106's LowVbat start).

The chip powers up in LowVbat: asleep, woken by its own host interface, and refusing most
commands until SAMConfiguration (`commands.LOWVBAT_OK`). PowerDown puts it to sleep once its
response has gone out (HSU: left the wire; I2C/SPI: read by the host), with the WakeUpEnable
bits saying what may wake it. Asleep, the analog front end is off: the field drops (cards lose
power and forget HALT), listed targets and chaining state are gone; the configuration (SAM mode,
RFConfiguration, SetParameters, registers, GPIO, serial rate) is kept.

Waking takes `WAKE_US` from the first sign of activity, and each host interface shows it its
own way:
* HSU: the falling edge of any byte's start bit wakes it (a 0x55 then a pause, or a long run of
  0x00 "preamble", as the UM allows); bytes whose start bit comes before the wake-up is over
  are lost, so a frame sent too early is lost in part or whole.
* SPI: NSS going low wakes it; a transaction that began before the wake-up is over is lost and
  reads MISO high (0xFF) throughout, which libnfc uses to tell a sleeping chip.
* I2C: its address wakes it; the chip stretches SCL until awake and then takes the transfer,
  so nothing is lost (the stretch is counted in `stretched_us`).
Other sources (INT0, INT1, the RF level detector, GPIO) are events a test fires with
`wake_event()`. With GenerateIRQ set, `irq` (P70_IRQ) goes low on wake-up until the next host
frame.
"""

from sim.pn532.timing import WAKE_US

SOURCES = {"int0": 0x01, "int1": 0x02, "rf": 0x08, "hsu": 0x10, "spi": 0x20, "gpio": 0x40,
           "i2c": 0x80}


class Power:
    def _asleep_from_power_on(self):
        self.sleep = SOURCES[self.transport]  # LowVbat: its host interface wakes it
        self.wake_at = None
        self.sleep_at = None
        self.pd_frame = None
        self.pd_args = None
        self.irq_on_wake = False
        self.irq = 1  # P70_IRQ level (not wired to the emulated board)

    def _power_down_after(self, frame, mask, irq):
        """PowerDown answered: sleep once `frame` (its response) has gone to the host."""
        self.pd_frame = frame
        self.pd_args = (mask, irq)

    def _response_gone(self, frame, t):
        if frame is self.pd_frame and self.pd_args is not None:
            self.sleep_at = t

    def _power_at(self, t):
        """Bring the power state up to time `t`: fall asleep after a PowerDown answer, finish
        a wake-up that has run its course."""
        if self.wake_at is not None and t >= self.wake_at:
            self._woken()
        if self.sleep_at is not None and t >= self.sleep_at:
            mask, irq = self.pd_args
            self.sleep_at = None
            self.pd_frame = self.pd_args = None
            self.sleep = mask
            self.wake_at = None
            self.irq_on_wake = irq
            self.sleeps += 1
            for c in self.field.cards(t):
                c.left_field()
            self.targets = {}
            self.current = 0
            self.chain_in = bytearray()
            self.chain_out = b""
            self.rx = bytearray()

    def _woken(self):
        self.sleep = None
        self.wake_at = None
        self.wakes += 1
        if self.irq_on_wake:
            self.irq = 0

    def hears(self, t, source):
        """Activity from `source` starting at `t`: True when the chip is awake to take it.
        Asleep, an enabled source starts the wake-up and what comes before its end is lost."""
        self._power_at(t)
        if self.sleep is None:
            return True
        if self.wake_at is None and self.sleep & SOURCES[source]:
            self.wake_at = t + WAKE_US
        return False

    def wake_event(self, now, source):
        """An event on a non-host wake-up source ("int0", "int1", "rf", "gpio") at `now`."""
        with self.lock:
            self._clock(now)
            self.hears(now, source)

    def i2c_awake(self, now):
        """I2C addressed at `now`: the time the chip takes the transfer (after stretching SCL
        through the wake-up), or None when it sleeps through it (address not acknowledged)."""
        self._power_at(now)
        if self.sleep is None:
            return now
        if self.wake_at is None:
            if not self.sleep & SOURCES["i2c"]:
                return None
            self.wake_at = now + WAKE_US
        t = max(now, self.wake_at)
        self.stretched_us += t - now
        self._woken()
        return t

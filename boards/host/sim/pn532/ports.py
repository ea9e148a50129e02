"""The three host interfaces of the chip (HSU on a UART, I2C at 0x24, SPI with LSB-first
status/data-write/data-read operations) and `install()`, which wires a chip onto the emulated
board."""

from collections import deque

from sim.hw import BusDevice, UartDevice
from sim.pn532.chip import PN532Sim


class HsuPort(UartDevice):
    """The chip's UART (HSU): 115200 baud after reset, SetSerialBaudRate changes it."""

    def __init__(self, sim, baud=115200):
        super().__init__(baud)
        self.sim = sim

    def receive(self, now_us, data):
        """Host bytes go out back to back: a write starts when the previous one has left."""
        with self.sim.lock:
            self.sim._clock(now_us)
            self.sim.host_bytes(self.heard(now_us, data), "hsu")

    def advance(self, now_us):
        with self.sim.lock:
            self.sim.advance(now_us)

    def arrivals(self, now_us):
        """The bytes on the wire, then the frames the chip has queued (ACK, response) as
        `send()` will put them on it."""
        with self.sim.lock:
            ts = super().arrivals(now_us)
            free = self._tx_free_us
            per = self.byte_us()
            for e in self.sim.pending:
                t = max(e[0], free)
                for _ in e[1]:
                    t += per
                    ts.append(int(t))
                free = t
            return ts

    def rebase(self, d):
        self._out = deque((t - d, b) for t, b in self._out)
        self._tx_free_us = max(0, self._tx_free_us - d)
        self._in_free_us = max(0, self._in_free_us - d)
        if self._switch is not None:
            self._switch = (self._switch[0] - d, self._switch[1])

    def chip_reset(self):
        """RSTPD_N or power: nothing left to send, back to the default rate."""
        self.flush_output()
        self.baud = 115200
        self._switch = None

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
            t = s.i2c_awake(now_us)
            if t is None:
                return False  # asleep, and I2C may not wake it
            s.bus_bytes += len(data) + 1
            s.host_bytes([(t, t, b) for b in data])
            return True

    def i2c_read(self, now_us, n):
        s = self.sim
        with s.lock:
            s._clock(now_us)
            if s.in_reset or now_us < s.boot_until or s.i2c_awake(now_us) is None:
                return bytes(n), 1
            s.bus_bytes += n + 1
            if n <= 1:
                return bytes([1 if s.frame_ready(now_us) else 0]), 0
            f = s.take_frame(now_us)
            if f is None:
                return bytes(n), 0
            body = f[:n - 1]
            return b"\x01" + body + bytes(n - 1 - len(body)), 0

    def chip_reset(self):
        pass

    def power_cycle(self):
        self.sim.power_cycle()


class SpiPort(BusDevice):
    BYTE_US = 8.0  # 1 MHz

    def __init__(self, sim):
        self.sim = sim
        self.op = 0
        self.reading = b""
        self.pos = 0
        self.dead = False  # this transaction began while the chip slept: lost, MISO high

    def cs_line(self, now_us, level):
        """NSS: its falling edge wakes a sleeping chip (when SPI is a wake-up source)."""
        s = self.sim
        if level == 0:
            with s.lock:
                s._clock(now_us)
                if not (s.in_reset or now_us < s.boot_until):
                    s.hears(now_us, "spi")

    def spi_xfer(self, now_us, data, cs_fresh):
        s = self.sim
        with s.lock:
            s._clock(now_us)
            s.advance(now_us)
            s.bus_bytes += len(data)
            out = bytearray(len(data))
            if s.in_reset or now_us < s.boot_until:
                return bytes(out)
            if cs_fresh:
                self.dead = not s.hears(now_us, "spi")
            if self.dead:
                return b"\xff" * len(data)
            i = 0
            if cs_fresh and data:
                self.op = data[0]
                i = 1
                if self.op == 0x03:
                    self.reading = s.take_frame(now_us) or b""
                    self.pos = 0
            if self.op == 0x01:
                s.host_bytes([(now_us, now_us, b) for b in data[i:]])
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

    def chip_reset(self):
        self.op = 0
        self.dead = False

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
        hw.watch_pin("NFC_CS", sim.port.cs_line)
    else:
        raise ValueError("transport must be hsu, i2c or spi")
    hw.watch_pin("NFC_RESET", sim.reset_line)
    hw.pin_level["NFC_IRQ"] = sim.irq_level
    hw.pin_wake["NFC_IRQ"] = sim.irq_at
    return sim

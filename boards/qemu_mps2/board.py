"""QEMU board (mps2-an385, Cortex-M3): the board API on an emulated 32-bit MCU, where
`flash.py bench device` counts the instructions the reader's hot paths execute.

There is no hardware to drive: pins and the display are stubs, the SPI flash is 16 MiB of the
model's spare RAM (the same partition table as the gate board), and the clock is the port's
ticks, which under `qemu -icount shift=0` advance one nanosecond per executed instruction.
"""

import time

import hosttables
import micropython
import partition
import uctypes
from micropython import const
from nor import SECTOR

NAME = "qemu_mps2"
FLASH_SIZE = 16 * 1024 * 1024
_FLASH_RAM = const(0x21000000)  # 16 MiB of the model's PSRAM, unused by the firmware
DATA = const(0x20000000)  # where the benchmark's input is loaded (qemu -device loader)
Partition = partition.Partition
PWRON_RESET = 1


@micropython.viper
def _copy(dst, src, off: int, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[i] = s[off + i]
        i += 1


@micropython.viper
def _program(mem, off: int, src, n: int):
    m = ptr8(mem)
    s = ptr8(src)
    i = 0
    while i < n:
        m[off + i] = m[off + i] & s[i]  # NOR: a program only clears bits
        i += 1


@micropython.viper
def _erase(mem, off: int, n: int):
    m = ptr8(mem)
    i = 0
    while i < n:
        m[off + i] = 0xFF
        i += 1


class RamFlash:
    """The SPI NOR as RAM. A read or program is a plain copy here; its transfer time is not
    executed but modelled by the benchmark from the operation and byte counts kept below."""

    def __init__(self):
        self.size = FLASH_SIZE
        self.mem = uctypes.bytearray_at(_FLASH_RAM, FLASH_SIZE)
        self.reads = self.read_bytes = self.programs = self.program_bytes = self.erases = 0

    def read(self, addr, buf):
        n = len(buf)
        _copy(buf, self.mem, addr, n)
        self.reads += 1
        self.read_bytes += n

    def program(self, addr, buf):
        n = len(buf)
        _program(self.mem, addr, buf, n)
        self.programs += 1
        self.program_bytes += n

    def erase(self, addr):
        _erase(self.mem, addr, SECTOR)
        self.erases += 1

    def erase_range(self, addr, n):
        """Blank a region at power-on (RAM starts as zeros, a new chip as 0xFF)."""
        _erase(self.mem, addr, n)


class Clock:
    ticks_ms = staticmethod(time.ticks_ms)
    ticks_us = staticmethod(time.ticks_us)
    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)
    sleep_ms = staticmethod(time.sleep_ms)

    def __init__(self):
        self._epoch = None
        self._mark = 0

    def time(self):
        if self._epoch is None:
            return None
        return self._epoch + time.ticks_diff(time.ticks_ms(), self._mark) // 1000

    def set_time(self, epoch):
        self._epoch = epoch
        self._mark = time.ticks_ms()


class _Pin:
    def __init__(self, v=0):
        self.v = v

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v

    def on(self):
        self.v = 1

    def off(self):
        self.v = 0


class _Display:
    def show(self, zh, en):
        pass


class _Maintenance:
    def readline(self):
        return None

    def write(self, text):
        pass


class _Watchdog:
    def feed(self):
        pass


clock = Clock()
flash = RamFlash()
partition.attach(flash, hosttables.PARTITIONS)


def watchdog(ms):
    return _Watchdog()


def reset_cause():
    return PWRON_RESET


def gate_lock():
    return _Pin()


def led_green():
    return _Pin()


def led_red():
    return _Pin()


def buzzer():
    return _Pin()


def passage_sensor():
    return _Pin()


def display():
    return _Display()


def maintenance():
    return _Maintenance()


def network_up():
    return False

"""Host board: the emulated reader, with the same API as boards/esp32*/board.py.

Flash is the NOR model over a host image file, the partitions follow partitions.csv, UARTs, I2C,
SPI and pins are wired through the host link to chip simulators in another process, and time is
the emulated clock (real time, or accelerated by skipping idle waits).
"""

import json
import os

import hosttables
import partition
import vfs
from clock import WDT as _WDT
from clock import Clock, WatchdogReset
from hostlink import I2C, LSB, OP_HELLO, SPI, UART, Display, Link, Maintenance, Pin
from nor import NorFlash, PowerCut

NAME = "host"
FLASH_SIZE = 16 * 1024 * 1024
Partition = partition.Partition
PowerCut = PowerCut
WatchdogReset = WatchdogReset

# Filled in by power_on(), the emulated ROM + bootloader + _boot.py.
clock = None
flash = None
settings = {}  # what the host runner configured for this boot (see sim/runner.py)
app_slot = None
app_pending = False
_link = None
_pins = {}

_CAUSES = {"power_on": 1, "hard": 2, "wdt": 3, "deepsleep": 4, "soft": 5}
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5


def power_on():
    global clock, flash, settings, app_slot, app_pending, _link, FLASH_SIZE
    clock = Clock()
    # accelerated or not, and the virtual timeline of the previous boot to continue (so the
    # simulators' time never runs backwards across a reboot), before the first request
    clock.start(os.getenv("READER_ACCELERATED") == "1")
    clock.resume(*[int(x) for x in (os.getenv("READER_RESUME") or "0 0").split()])
    _link = Link(os.getenv("READER_SOCK"), clock)
    b = bytearray(1024)  # the settings: room for another board's partition table
    n = _link.call(OP_HELLO, 0, 0, None, 0, b)
    settings = json.loads(bytes(b[:n]))
    if settings.get("epoch") is not None:
        clock.set_time(settings["epoch"])
    clock.install()
    # a larger module's flash when the runner models one (Reader(flash_board=...))
    FLASH_SIZE = settings.get("flash_size", FLASH_SIZE)
    flash = NorFlash(settings["image"], FLASH_SIZE)
    flash.cut_at = settings.get("cut_at", 0)
    flash.torn = settings.get("torn", 0)
    partition.attach(flash, settings.get("partitions") or hosttables.PARTITIONS)
    app_slot, app_pending = partition.bootloader()
    mount_fs()


def mount_fs():
    """Mount LittleFS from the `vfs` partition at / as the ESP32 port does (formatting a blank
    one), and the compiled firmware (the build output) at /frozen unless the interpreter has it
    frozen in."""
    bdev = Partition.find(Partition.TYPE_DATA, label="vfs")[0]
    try:
        fs = vfs.VfsLfs2(bdev)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        fs = vfs.VfsLfs2(bdev)
    vfs.umount("/")
    vfs.mount(fs, "/")
    if settings.get("frozen"):
        vfs.mount(vfs.VfsPosix(settings["frozen"]), "/frozen")


def mount_extra(path):
    """Tests: a host directory of extra modules (test workloads) at /extra."""
    vfs.mount(vfs.VfsPosix(path), "/extra")


def reset_cause():
    return _CAUSES.get(settings.get("reset_cause"), PWRON_RESET)


def reset():
    """machine.reset(): the host runner boots the reader again (no power loss)."""
    raise SystemExit(5)


def watchdog(timeout_ms):
    return _WDT(clock, timeout_ms)


def pin(name, mode=Pin.IN, value=None):
    p = _pins.get(name)
    if p is None:
        p = _pins[name] = Pin(_link, hosttables.PINS[name], mode, value)
    return p


def nfc_bus():
    """The PN532's host interface: ("hsu", uart) | ("i2c", i2c) | ("spi", spi, cs)."""
    kind = settings.get("nfc", "hsu")
    if kind == "i2c":
        return ("i2c", I2C(_link, 0, freq=400000, timeout_us=50000))
    if kind == "spi":
        return ("spi", SPI(_link, 0, baudrate=1000000, firstbit=LSB), pin("NFC_CS", Pin.OUT, 1))
    return ("hsu", UART(_link, 1, baudrate=115200))


def nfc_reset():
    return pin("NFC_RESET", Pin.OUT, 1)


def nfc_irq():
    """The PN532's P70_IRQ (input, low while the chip has a frame for the host)."""
    return pin("NFC_IRQ", Pin.IN)


def scanner_uart():
    return UART(_link, 2, baudrate=9600)


SAM_CLK_HZ = 3579545  # the SAM clock (a 3.57 MHz oscillator on the slot)


def sam_slot():
    """The PSAM slot: (uart, reset pin, power pin or None, card clock Hz, echo). UART 3 with TX
    and RX on the card's single I/O line, so the reader hears its own characters."""
    return (UART(_link, 3, baudrate=SAM_CLK_HZ // 372, bits=8, parity=0, stop=2),
            pin("SAM_RESET", Pin.OUT, 0), pin("SAM_POWER", Pin.OUT, 0), SAM_CLK_HZ, True)


def gate_lock():
    return pin("GATE_LOCK", Pin.OUT, 0)


def led_green():
    return pin("LED_GREEN", Pin.OUT, 0)


def led_red():
    return pin("LED_RED", Pin.OUT, 0)


def buzzer():
    return pin("BUZZER", Pin.OUT, 0)


def passage_sensor():
    return pin("PASSAGE", Pin.IN)


def display():
    return Display(_link)


def maintenance():
    return Maintenance(_link)


def network_up():
    """The station LAN: on the host, loopback is always there."""
    return True

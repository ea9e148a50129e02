"""What the ESP32 reader boards share: the board API over machine/esp32 (see docs/architecture.md).

Each board's board.py names its buses; pins come from its pins.csv, built into the firmware as
named pins (machine.Pin("NFC_RESET")).
"""

import time

import esp32
import machine

Partition = esp32.Partition
PWRON_RESET = machine.PWRON_RESET
HARD_RESET = machine.HARD_RESET
WDT_RESET = machine.WDT_RESET
DEEPSLEEP_RESET = machine.DEEPSLEEP_RESET
SOFT_RESET = machine.SOFT_RESET

_EPOCH_VALID = 1_700_000_000  # an RTC reading before this was never set (no trusted time)
# The board API speaks UTC seconds since 1970; MicroPython's esp32 port counts time.time() from
# 2000-01-01 (docs/library/time.rst of v1.28: only unix-like ports use 1970).
_EPOCH_OFFSET = 946_684_800 if time.gmtime(0)[0] == 2000 else 0


class Clock:
    """time.ticks_* plus the RTC; `time()` is None until the RTC has been set."""

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_us = staticmethod(time.ticks_us)
    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)
    sleep_ms = staticmethod(time.sleep_ms)

    def time(self):
        t = time.time() + _EPOCH_OFFSET
        return t if t >= _EPOCH_VALID else None

    def set_time(self, epoch):
        tm = time.gmtime(epoch - _EPOCH_OFFSET)
        machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))


clock = Clock()


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def pin(name, mode=machine.Pin.IN, value=None):
    if value is None:
        return machine.Pin(name, mode)
    return machine.Pin(name, mode, value=value)


def nfc_hsu(uart_id):
    return ("hsu", machine.UART(uart_id, baudrate=115200, tx=machine.Pin("NFC_TX"),
                                rx=machine.Pin("NFC_RX"), rxbuf=1024, timeout=0))


def nfc_spi(spi_id):
    spi = machine.SPI(spi_id, baudrate=1_000_000, polarity=0, phase=0, firstbit=machine.SPI.LSB,
                      sck=machine.Pin("NFC_SCK"), mosi=machine.Pin("NFC_MOSI"),
                      miso=machine.Pin("NFC_MISO"))
    return ("spi", spi, pin("NFC_CS", machine.Pin.OUT, 1))


def nfc_i2c(i2c_id):
    # 100 kHz and a long timeout: the PN532 stretches SCL well past the IDF default
    return ("i2c", machine.I2C(i2c_id, scl=machine.Pin("NFC_SCL"), sda=machine.Pin("NFC_SDA"),
                               freq=100_000, timeout=50_000))


def scanner(uart_id):
    return machine.UART(uart_id, baudrate=9600, tx=machine.Pin("SCAN_TX"),
                        rx=machine.Pin("SCAN_RX"), rxbuf=2048, timeout=0)


SAM_CLK_HZ = 3_579_545
_sam_clk = None  # the card clock's PWM: kept referenced while the slot is in use


def sam_slot(uart_id, power):
    """The PSAM slot: (uart, reset pin, power pin or None, card clock Hz, echo). The card clock
    is LEDC PWM on SAM_CLK (`freq()` says what the divider made of 3.57 MHz); TX drives the
    card's I/O line through a Schottky diode with a pull-up to the card's VCC and RX reads the
    line, so every character sent comes back (echo)."""
    global _sam_clk
    _sam_clk = machine.PWM(machine.Pin("SAM_CLK"), freq=SAM_CLK_HZ, duty_u16=32768)
    hz = _sam_clk.freq()
    uart = machine.UART(uart_id, baudrate=hz // 372, bits=8, parity=0, stop=2,
                        tx=machine.Pin("SAM_TX"), rx=machine.Pin("SAM_RX"), rxbuf=512, timeout=0)
    pwr = pin("SAM_POWER", machine.Pin.OUT, 0) if power else None
    return (uart, pin("SAM_RESET", machine.Pin.OUT, 0), pwr, hz, True)


def nfc_reset():
    return pin("NFC_RESET", machine.Pin.OUT, 1)


def nfc_irq():
    """The PN532's P70_IRQ (low while the chip has a frame for the host). The chip drives it,
    so no pull (the devkit's GPIO35 is input-only and has none)."""
    return pin("NFC_IRQ", machine.Pin.IN)


def gate_lock():
    return pin("GATE_LOCK", machine.Pin.OUT, 0)


def led_green():
    return pin("LED_GREEN", machine.Pin.OUT, 0)


def led_red():
    return pin("LED_RED", machine.Pin.OUT, 0)


def buzzer():
    return pin("BUZZER", machine.Pin.OUT, 0)


def passage_sensor():
    return pin("PASSAGE", machine.Pin.IN)


class Display:
    """The rider display. Wired per installation (serial LCD or gate controller); this default
    prints to the console until a display driver is configured."""

    def show(self, zh, en):
        print("DISPLAY", zh, "|", en)


def display():
    return Display()


def maintenance():
    return None  # the crew uses the USB REPL (mpremote)


def reset():
    machine.reset()


def reset_cause():
    return machine.reset_cause()


def network_up():
    try:
        import network

        return network.WLAN(network.STA_IF).isconnected() or network.LAN().isconnected()
    except (ImportError, OSError, ValueError):
        return False

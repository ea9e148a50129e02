"""ESP32-WROOM-32 devkit: PN532 on SPI (VSPI), scan engine on UART1, PSAM slot on UART2 (no
VCC switch: a cold reset is a reset)."""

from esp32board import *  # noqa: F403 (the shared ESP32 board API)
from esp32board import nfc_spi, scanner
from esp32board import sam_slot as _sam_slot

NAME = "esp32_devkit"
FLASH_SIZE = 4 * 1024 * 1024


def nfc_bus():
    return nfc_spi(2)


def scanner_uart():
    return scanner(1)


def sam_slot():
    return _sam_slot(2, False)

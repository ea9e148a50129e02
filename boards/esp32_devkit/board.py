"""ESP32-WROOM-32 devkit: PN532 on HSU (UART2), scan engine on UART1."""

from esp32board import *  # noqa: F403 (the shared ESP32 board API)
from esp32board import nfc_hsu, scanner

NAME = "esp32_devkit"
FLASH_SIZE = 4 * 1024 * 1024


def nfc_bus():
    return nfc_hsu(2)


def scanner_uart():
    return scanner(1)

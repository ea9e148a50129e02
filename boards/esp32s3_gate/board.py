"""ESP32-S3 gate reader (production): PN532 on HSU (UART1), scan engine on UART2."""

from esp32board import *  # noqa: F403 (the shared ESP32 board API)
from esp32board import nfc_hsu, scanner

NAME = "esp32s3_gate"
FLASH_SIZE = 16 * 1024 * 1024


def nfc_bus():
    return nfc_hsu(1)


def scanner_uart():
    return scanner(2)

"""ESP32-S3 gate reader with 32 MiB flash (seed-scale lists in the one-image store): PN532 on
HSU (UART1), scan engine on UART2, the same wiring as esp32s3_gate."""

from esp32board import *  # noqa: F403 (the shared ESP32 board API)
from esp32board import nfc_hsu, scanner

NAME = "esp32s3_gate32"
FLASH_SIZE = 32 * 1024 * 1024


def nfc_bus():
    return nfc_hsu(1)


def scanner_uart():
    return scanner(2)

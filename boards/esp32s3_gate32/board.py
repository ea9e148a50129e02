"""ESP32-S3 gate reader with 32 MiB flash (seed-scale lists in the one-image store): the same
wiring as esp32s3_gate: PN532 on HSU (UART1), scan engine on UART2, PSAM slot on UART0 with a
VCC switch (the REPL is on native USB)."""

from esp32board import *  # noqa: F403 (the shared ESP32 board API)
from esp32board import nfc_hsu, scanner
from esp32board import sam_slot as _sam_slot

NAME = "esp32s3_gate32"
FLASH_SIZE = 32 * 1024 * 1024


def nfc_bus():
    return nfc_hsu(1)


def scanner_uart():
    return scanner(2)


def sam_slot():
    return _sam_slot(0, True)

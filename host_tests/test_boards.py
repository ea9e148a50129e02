"""Board definitions: every partition table fits its flash and the ESP-IDF alignment rules and
holds what the budgets need; pins avoid flash, PSRAM, strapping and USB pins; every board
builds with mpy-cross for its architecture; only boards/ touches the hardware modules."""

import json
import re

import pytest
from conftest import ROOT

from flashtool.build.mpy import build
from sim import tables
from sim.runner import build_dir

BOARDS = ["host", "esp32s3_gate", "esp32s3_gate32", "esp32_devkit"]
MIB = 1024 * 1024

# Pins a reader must not use, per chip (ESP32 and ESP32-S3 datasheets).
FORBIDDEN = {
    "esp32": {**{p: "flash" for p in range(6, 12)},
              **{p: "strapping" for p in (0, 2, 5, 12, 15)},
              1: "UART0 (REPL)", 3: "UART0 (REPL)"},
    "esp32s3": {**{p: "flash/PSRAM" for p in range(26, 38)},
                **{p: "strapping" for p in (0, 3, 45, 46)},
                19: "USB", 20: "USB", 43: "UART0 (REPL)", 44: "UART0 (REPL)"},
}
INPUT_ONLY = {"esp32": set(range(34, 40)), "esp32s3": set()}
OUTPUTS = {"NFC_TX", "NFC_RESET", "NFC_SCK", "NFC_MOSI", "NFC_CS", "SCAN_TX", "GATE_LOCK",
           "LED_GREEN", "LED_RED", "BUZZER", "SAM_TX", "SAM_RESET", "SAM_CLK", "SAM_POWER"}
# The PN532's bus per board (board.py nfc_bus): its pins must be there.
NFC_PINS = {"esp32s3_gate": ("NFC_TX", "NFC_RX"), "esp32s3_gate32": ("NFC_TX", "NFC_RX"),
            "esp32_devkit": ("NFC_SCK", "NFC_MOSI", "NFC_MISO", "NFC_CS")}


def info(board):
    return json.loads((ROOT / "boards" / board / "board.json").read_text())


@pytest.mark.parametrize("board", BOARDS)
def test_partition_table_fits_flash_and_alignment(board):
    rows = tables.partitions(ROOT / "boards" / board / "partitions.csv")
    size = info(board)["flash_size"]
    labels = [r[0] for r in rows]
    # lists in two slots (A/B), or in the one-image region of a 32 MiB board
    lists = ("bl_seg",) if "bl_seg" in labels else ("bl_a", "bl_b")
    for need in ("otadata", "ota_0", "ota_1", "journal", "vfs", *lists):
        assert need in labels, need
    end = 0x9000  # bootloader + partition table (0x8000..0x9000) come first
    for label, typ, _sub, off, n in sorted(rows, key=lambda r: r[3]):
        assert off >= end, "%s overlaps the previous partition" % label
        align = 0x10000 if typ == 0 else 0x1000
        assert off % align == 0 and n % 0x1000 == 0, "%s misaligned" % label
        end = off + n
    assert end <= size, "table ends at 0x%x beyond %d bytes of flash" % (end, size)
    otadata = rows[labels.index("otadata")]
    assert otadata[4] == 0x2000  # two 4 KiB sectors, as ESP-IDF requires
    if lists != ("bl_seg",):
        a, b = rows[labels.index("bl_a")], rows[labels.index("bl_b")]
        assert a[4] == b[4]
    assert rows[labels.index("ota_0")][4] == rows[labels.index("ota_1")][4]


@pytest.mark.parametrize("board", ["host", "esp32s3_gate", "esp32s3_gate32"])
def test_production_layout_meets_the_budgets(board):
    rows = {r[0]: r for r in tables.partitions(ROOT / "boards" / board / "partitions.csv")}
    if "bl_seg" not in rows:
        assert rows["bl_a"][4] >= 4 * MIB  # 1,000,000 entries at FP <= 1e-6 in <= 4 MiB
    # 7 days x 5,000 taps with records of up to 48 bytes, plus two sectors to recycle into
    assert rows["journal"][4] >= 7 * 5000 * 48 + 2 * 4096
    assert rows["ota_0"][4] >= 1536 * 1024


# Seed scale (bench blocklist --scale seed): 15 M pass-set + 1 M deny entries in a
# 23,469,856-byte image of 45,837 pages; a day's 100,000 changes in a 216,352-byte delta.
SEED_PAGES = 45_837
SEED_DAY_DELTA = 216_352


def test_seed_layout_holds_the_seed_list_its_spare_and_a_days_delta():
    from flashtool.lists import blocklist as cb

    region = cb.region  # lib/blocklist's region layout, as the reader computes it
    rows = {r[0]: r for r in tables.partitions(ROOT / "boards" / "esp32s3_gate32" /
                                              "partitions.csv")}
    size = rows["bl_seg"][4]
    assert size == cb.SEG_REGION  # the host builder sizes deltas for this region
    nsec = size // region.SECTOR
    nseg = -(-SEED_PAGES * 512 // cb.SEG_BYTES)
    assert region.slots(nsec, cb.SEG_BYTES) >= nseg + 1  # the segments and one spare
    assert region.delta_sectors(nsec) * region.SECTOR == cb.SEG_DELTA_CAP >= SEED_DAY_DELTA
    # and the 16 MiB production board cannot hold even one copy next to app, journal, vfs
    gate = {r[0]: r for r in tables.partitions(ROOT / "boards" / "esp32s3_gate" /
                                              "partitions.csv")}
    assert gate["bl_a"][4] + gate["bl_b"][4] < SEED_PAGES * 512


def test_host_board_mirrors_production_layout():
    host = tables.partitions(ROOT / "boards" / "host" / "partitions.csv")
    gate = tables.partitions(ROOT / "boards" / "esp32s3_gate" / "partitions.csv")
    assert host == gate


@pytest.mark.parametrize("board,chip", [("esp32s3_gate", "esp32s3"), ("esp32s3_gate32", "esp32s3"),
                                        ("esp32_devkit", "esp32")])
def test_pins_avoid_flash_strapping_and_console(board, chip):
    pins = tables.pins(ROOT / "boards" / board / "pins.csv")
    assert info(board)["mcu"] == chip
    assert len(set(pins.values())) == len(pins), "a GPIO is used twice"
    for name, gpio in pins.items():
        assert gpio not in FORBIDDEN[chip], "%s on GPIO%d: %s pin" % (
            name, gpio, FORBIDDEN[chip][gpio])
        if name in OUTPUTS:
            assert gpio not in INPUT_ONLY[chip], "%s needs an output-capable pin" % name
    for need in NFC_PINS[board] + ("NFC_RESET", "SCAN_TX", "SCAN_RX", "GATE_LOCK", "LED_GREEN",
                                   "LED_RED", "BUZZER", "PASSAGE", "SAM_TX", "SAM_RX",
                                   "SAM_RESET", "SAM_CLK"):
        assert need in pins, need


@pytest.mark.parametrize("board,arch", [("esp32s3_gate", 7), ("esp32s3_gate32", 7),
                                       ("esp32_devkit", 7)])
def test_esp32_boards_build_with_mpy_cross(board, arch, capsys):
    out, rows = build(board)
    report = capsys.readouterr().out
    assert "total" in report and "xtensawin" in report
    names = {r[0] for r in rows}
    assert {"board.py", "esp32board.py", "main.py", "app.py"} <= names
    assert all((out / (t[:-3] + ".mpy")).exists() for t in names)
    mpy = (out / "main.mpy").read_bytes()
    assert mpy[0] == ord("M") and mpy[1] == 6  # .mpy format version 6


def test_host_build_matches_the_manifest(tmp_path):
    from flashtool.build.manifest import app_files, variables
    from flashtool.build.mpy import generate_host_tables

    board = ROOT / "boards" / "host"
    out = build_dir()
    generate_host_tables(board, tmp_path)
    files = app_files(board / "manifest.py", variables(board, "host", tmp_path))
    missing = [t for t in files if not (out / (t[:-3] + ".mpy")).exists()]
    assert missing == [] and "hosttables.py" in files and "main.py" in files
    assert not list(out.rglob("*.py")), "the emulator must run compiled files only"


def test_only_boards_import_hardware_modules():
    pat = re.compile(r"^\s*(import|from)\s+(machine|esp32|esp|network)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for d in ("firmware", "lib")
                 for p in (ROOT / d).rglob("*.py") if pat.search(p.read_text())]
    assert offenders == []

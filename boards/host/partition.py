"""The `esp32.Partition` subset the firmware uses, over the NOR model, plus the ESP-IDF otadata
and bootloader rules for the two app slots (NEW -> PENDING_VERIFY -> VALID, or ABORTED and back
to the previous slot when the new app never confirms).

Block protocol as in ports/esp32/esp32_partition.c: the 3-argument writeblocks erases first,
the 4-argument (extended) form only programs; ioctl(6) erases one 4 KiB block.
"""

import binascii
import struct

from micropython import const
from nor import SECTOR, FlashError

TYPE_APP = 0
TYPE_DATA = 1
BOOT = 0
RUNNING = 1

_SUB_OTA_0 = const(0x10)
_SUB_OTADATA = const(0x00)

# ESP-IDF esp_ota_img_states_t
OTA_NEW = const(0x0)
OTA_PENDING_VERIFY = const(0x1)
OTA_VALID = const(0x2)
OTA_INVALID = const(0x3)
OTA_ABORTED = const(0x4)
OTA_UNDEFINED = const(0xFFFFFFFF)

_flash = None
_table = ()  # (label, type, subtype, offset, size)
_running = None  # label of the app slot the bootloader chose
_boot = None


def attach(flash, table):
    global _flash, _table
    _flash = flash
    _table = table


class Partition:
    TYPE_APP = 0
    TYPE_DATA = 1
    BOOT = 0
    RUNNING = 1

    def __init__(self, id, block_size=SECTOR):
        if id == RUNNING:
            id = _running
        elif id == BOOT:
            id = _boot or _running
        for row in _table:
            if row[0] == id:
                break
        else:
            raise ValueError("no partition %r" % (id,))
        self._row = row
        self._addr = row[3]
        self._size = row[4]
        self._bs = block_size

    @classmethod
    def find(cls, type=TYPE_APP, subtype=0xFF, label=None, block_size=SECTOR):
        return [
            cls(r[0], block_size)
            for r in _table
            if r[1] == type and (subtype == 0xFF or r[2] == subtype) and (label in (None, r[0]))
        ]

    def info(self):
        r = self._row
        return (r[1], r[2], r[3], r[4], r[0], False)

    def __repr__(self):
        return "<Partition %s at 0x%x, 0x%x bytes>" % (self._row[0], self._addr, self._size)

    def _at(self, block_num, offset, n):
        a = block_num * self._bs + offset
        if a < 0 or a + n > self._size:
            raise FlashError(22)
        return self._addr + a

    def readblocks(self, block_num, buf, offset=0):
        _flash.read(self._at(block_num, offset, len(buf)), buf)

    def writeblocks(self, block_num, buf, offset=None):
        if offset is None:
            # simple protocol: erase the covered sectors, then program
            if self._bs != SECTOR:
                raise FlashError(22)
            a = self._at(block_num, 0, len(buf))
            e = a
            while e < a + len(buf):
                _flash.erase(e)
                e += SECTOR
            _flash.program(a, buf)
        else:
            _flash.program(self._at(block_num, offset, len(buf)), buf)

    def ioctl(self, op, arg):
        if op == 4:  # BLOCK_COUNT
            return self._size // self._bs
        if op == 5:  # BLOCK_SIZE
            return self._bs
        if op == 6:  # BLOCK_ERASE
            if self._bs != SECTOR:
                raise FlashError(22)
            _flash.erase(self._at(arg, 0, SECTOR))
            return 0
        return 0  # INIT, DEINIT, SYNC

    # --- OTA -------------------------------------------------------------------------------
    def get_next_update(self):
        apps = _ota_slots()
        if self._row[0] not in apps:
            raise ValueError("not an app partition")
        return Partition(apps[(apps.index(self._row[0]) + 1) % len(apps)])

    def set_boot(self):
        label = self._row[0]
        if label not in _ota_slots():
            raise ValueError("not an app partition")
        _set_boot(label)
        global _boot
        _boot = label

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        for seq, state, sector in _entries():
            if _slot_of(seq) == _running:
                if state != OTA_VALID:
                    _write_entry(sector, seq, OTA_VALID)
                return


def _ota_slots():
    return [r[0] for r in _table if r[1] == TYPE_APP and r[2] & 0xF0 == _SUB_OTA_0]


def _slot_of(seq):
    apps = _ota_slots()
    return apps[(seq - 1) % len(apps)]


def _otadata_addr():
    for r in _table:
        if r[1] == TYPE_DATA and r[2] == _SUB_OTADATA:
            return r[3]
    raise ValueError("no otadata")


# esp_ota_select_entry_t: ota_seq u32, seq_label[20], ota_state u32, crc u32 (over ota_seq only)
_ENTRY = "<I20sII"


def _entries():
    """Valid otadata entries as (seq, state, sector), newest first."""
    out = []
    b = bytearray(32)
    for sector in (0, 1):
        _flash.read(_otadata_addr() + sector * SECTOR, b)
        seq, _, state, crc = struct.unpack(_ENTRY, b)
        if seq != 0xFFFFFFFF and crc == binascii.crc32(b[0:4]):
            out.append((seq, state, sector))
    out.sort(reverse=True)
    return out


def _write_entry(sector, seq, state):
    addr = _otadata_addr() + sector * SECTOR
    _flash.erase(addr)
    b = bytearray(32)
    struct.pack_into("<I", b, 0, seq)
    struct.pack_into(_ENTRY, b, 0, seq, b"", state, binascii.crc32(b[0:4]))
    _flash.program(addr, b)


def _set_boot(label):
    entries = _entries()
    seq = entries[0][0] if entries else 0
    nxt = seq + 1
    while _slot_of(nxt) != label:
        nxt += 1
    # the new entry replaces the older sector; the newest stays as the rollback target
    sector = (1 - entries[0][2]) if entries else 0
    _write_entry(sector, nxt, OTA_NEW)


def bootloader():
    """ESP-IDF second-stage bootloader selection with app rollback enabled.
    Returns the label of the app slot that runs and whether it is pending verification."""
    global _running, _boot
    pending = False
    _running = _ota_slots()[0]  # nothing valid: first slot, as with erased otadata
    for seq, state, sector in _entries():
        if state == OTA_PENDING_VERIFY:
            # the new app had its one attempt and never confirmed: abort it, fall back
            _write_entry(sector, seq, OTA_ABORTED)
            continue
        if state in (OTA_ABORTED, OTA_INVALID):
            continue
        if state == OTA_NEW:
            _write_entry(sector, seq, OTA_PENDING_VERIFY)
            pending = True
        _running = _slot_of(seq)
        break
    _boot = _running
    return _running, pending

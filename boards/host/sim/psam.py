"""A PSAM (purchase secure access module, psam-purchase.md §2-3) in the reader's SAM slot: the
application behind `sim.contact.ContactSlot` (T=0, ATR, PPS, wire), on UART 3 with the
SAM_RESET and SAM_POWER lines.

It holds the issuer's master purchase keys (`sim.pboc.IssuerKeys`, never the TAC keys), its
6-byte terminal number (READ BINARY SFI 0x16) and the terminal transaction counter (TTN).
INIT SAM FOR PURCHASE (`80 70 00 00 1C`) diversifies the card's purchase key from the card
serial, derives the session key, returns TTN || MAC1 (via 61 08 / GET RESPONSE) and counts the
TTN up; CREDIT SAM FOR PURCHASE (`80 72 00 00 04`) checks MAC2 against that session (9302 when
it is wrong), once.

Processing model (stated, not measured: a smart-card CPU with a DES/SM4 coprocessor):
READ BINARY / SELECT 1.5 ms; MAC1 12 ms (3DES) / 16 ms (SM4): two diversification blocks, the
session key and a 3-block MAC; MAC2 check 5 ms / 7 ms.
"""

from sim import pboc
from sim.contact import IN, NONE, OUT, ContactSlot

# 3B, T0 = 5C (TA1 and TC1, 12 historical bytes), TA1 = 13 (Fi 372, Di 4: ~38,400 bd after
# PPS), TC1 = 00; T=0 only (no TD1, so no TCK).
DEFAULT_ATR = bytes.fromhex("3B5C1300") + b"PSAM-SIM" + bytes.fromhex("00010203")
FILE_US = 1500
MAC1_US = {pboc.ALG_3DES: 12000, pboc.ALG_SM4: 16000}
MAC2_US = {pboc.ALG_3DES: 5000, pboc.ALG_SM4: 7000}
DF_PURCHASE = b"\x10\x01"


class Psam:
    def __init__(self, keys, terminal, ttn=1):
        if len(terminal) != 6:
            raise ValueError("terminal number is 6 bytes")
        self.keys = keys
        self.terminal = bytes(terminal)
        self.ttn = ttn
        self.log = []  # (ttn, serial, amount, type) of every MAC1 given, for tests
        self.checks = []  # True/False of every MAC2 check
        self.reset()

    def reset(self):
        self.selected = False
        self.session = None

    def direction(self, cla, ins, p1, p2):
        if (cla, ins) in ((0x00, 0xA4), (0x80, 0x70), (0x80, 0x72)):
            return IN
        if (cla, ins) == (0x00, 0xB0):
            return OUT
        return NONE

    def command(self, h, data):
        """(response data, SW, processing µs) for header h and its data."""
        cla, ins, p1, p2, p3 = h
        if cla == 0x00 and ins == 0xB0:
            if p1 != 0x96:
                return b"", 0x6A82, FILE_US
            return self.terminal[p2:p2 + (p3 or 256)], 0x9000, FILE_US
        if cla == 0x00 and ins == 0xA4:
            if p1 != 0x00 or data != DF_PURCHASE:
                self.selected = False
                return b"", 0x6A82, FILE_US
            self.selected = True
            return b"", 0x9000, FILE_US
        if cla == 0x80 and ins == 0x70:
            return self._mac1(data)
        if cla == 0x80 and ins == 0x72:
            return self._mac2(data)
        if cla not in (0x00, 0x80):
            return b"", 0x6E00, 0
        return b"", 0x6D00, 0

    def _mac1(self, d):
        if not self.selected:
            return b"", 0x6985, FILE_US
        if len(d) != 0x1C:
            return b"", 0x6700, FILE_US
        rand, ctr, amount, ttype = d[0:4], d[4:6], int.from_bytes(d[6:10], "big"), d[10]
        date, time, kver, alg, serial = d[11:15], d[15:18], d[18], d[19], d[20:28]
        master = self.keys.purchase.get((kver, alg))
        if master is None:
            return b"", 0x6A88, FILE_US
        ttn = self.ttn.to_bytes(4, "big")
        self.ttn = (self.ttn + 1) & 0xFFFFFFFF
        dpk = pboc.diversify(alg, master, serial)
        sk = pboc.session_key(alg, dpk, rand, ctr, ttn)
        m1 = pboc.mac1(alg, sk, amount, ttype, self.terminal, date, time)
        self.session = (alg, sk, amount)
        self.log.append((ttn, bytes(serial), amount, ttype))
        return ttn + m1, 0x9000, MAC1_US[alg]

    def _mac2(self, d):
        s = self.session
        self.session = None
        if s is None:
            return b"", 0x6901, FILE_US
        if len(d) != 4:
            return b"", 0x6700, FILE_US
        ok = pboc.mac2(s[0], s[1], s[2]) == bytes(d)
        self.checks.append(ok)
        return b"", 0x9000 if ok else 0x9302, MAC2_US[s[0]]


def install(hw, psam, atr=DEFAULT_ATR, echo=True):
    """Put `psam` in the emulated reader's SAM slot (UART 3, SAM_RESET, SAM_POWER); returns the
    slot (`.present`, faults, wire and processing figures)."""
    slot = ContactSlot(psam, atr, echo=echo, power_pin="SAM_POWER" in hw.pins)
    hw.uarts[3] = slot
    hw.watch_pin("SAM_RESET", slot.reset_line)
    hw.watch_pin("SAM_POWER", slot.power_line)
    return slot

"""Virtual contactless cards for the PN532 simulator.

* `TUnionCard`: ISO 14443-4 transit CPU card with a T-Union (JT/T 978) application:
  SELECT AID A000000632010105, READ BINARY SFI 0x15 (`00 B0 95 00 1E`: card number BCD in
  bytes 10-19, issue date YYYYMMDD BCD 20-23, expiry 24-27), SFI 0x17 (`00 B0 97 00 ..`:
  province 4-5, city 6-7, card type byte 10 and, by PROJECT CONVENTION, bytes 11-14 = the end
  of the concession entitlement YYYYMMDD BCD, 00000000 = none), SFI 0x19 a 256-byte filler file
  (long answers: extended frames, chaining), GET BALANCE `80 5C 00 02 04`.
  With an issuer's keys (`issuer=`, `sim.pboc.IssuerKeys`) it carries the e-purse
  (`sim.purse.Purse`: purchase, CAPP trip record, log, TAC, GET TRANSACTION PROVE); its
  application serial is bytes 12-19 of SFI 0x15 (the last 16 digits of the card number).
  Without one it is a card with the right number and no keys (the purchase commands: 6D00).
* Any ISO-DEP card can be torn: `tear_at = k` cuts power after byte k of what it exchanges
  from then on (command bytes in, answer bytes out): a command cut before its last byte is not
  executed, one cut in its answer was executed and the answer is lost; either way the card is
  silent until it leaves the field. `tear_in = (INS, k)` counts k from the first command with
  that INS (k = its length + 1: executed, the answer lost).
* `PhoneCard`: the same application behind a random 4-byte UID (first byte 08) per activation.
* `ClassicCard`: MIFARE Classic 1K. Crypto1 is not modelled: authentication checks key A/B of
  the sector and the last 4 UID bytes. PROJECT CONVENTION (`MIFARE_BLOCK`, key `MIFARE_KEY`):
  block 4 (sector 1) = card number BCD bytes 0-4 (10 digits), expiry YYYYMMDD BCD bytes 5-8,
  card type byte 9.
* `UltralightCard`, `ForeignCard` (ISO 14443-4 without the T-Union application).

Cards are built by factories with parameters (`tunion(number, ...)`, `lost()`, ...) so tests
and the emulator make "normal", "expired", "concession", "lost" cards by number.
"""

import random

from sim import pboc
from sim.purse import Purse

AID_TUNION = bytes.fromhex("A000000632010105")
MIFARE_KEY = bytes.fromhex("A0A1A2A3A4A5")
MIFARE_BLOCK = 4

SW_OK = b"\x90\x00"
SW_EOF = b"\x62\x82"  # end of file reached before Le bytes
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_ALLOWED = b"\x69\x85"  # conditions of use not satisfied (no application selected)
SW_NOT_FOUND = b"\x6a\x82"  # application / file not found
SW_BAD_P1P2 = b"\x6b\x00"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"


def bcd(digits, nbytes):
    """'1234' -> BCD bytes, right-aligned in nbytes (leading zeros)."""
    s = str(digits).rjust(nbytes * 2, "0")
    if len(s) > nbytes * 2 or not s.isdigit():
        raise ValueError("does not fit %d BCD bytes: %r" % (nbytes, digits))
    return bytes.fromhex(s)


class Card:
    """A type A card: what anticollision shows, plus ISO-DEP or MIFARE behaviour."""

    sens_res = b"\x00\x04"
    sel_res = 0x08
    ats = None
    halts = True  # stays silent after InRelease/InDeselect until it leaves the field
    activation_us = 2500  # REQA, anticollision, select (+1 ms per extra cascade level)
    iso4 = False  # an ISO-DEP session is open (RATS answered)

    def __init__(self, uid):
        if len(uid) not in (4, 7, 10):
            raise ValueError("UID must be 4, 7 or 10 bytes")
        self.uid = bytes(uid)
        self.halted = False
        self.gone_after = None  # leaves the field after this many exchanges (pulled away)
        self.exchanges = 0
        self.apdus = []  # what arrived, reassembled (tests check chaining with it)

    def activate(self):
        """Selected by InListPassiveTarget: returns the RF time it took in µs."""
        self.halted = False
        return self.activation_us + 1000 * (len(self.uid) // 4 - 1) + (2000 if self.ats else 0)

    def halt(self):
        if self.halts:
            self.halted = True

    def left_field(self):
        self.halted = False
        self.iso4 = False

    def exchange(self, data):
        """InDataExchange payload -> (pn532 status, answer, RF/card time in µs)."""
        return 0x13, b"", 1000

    def raw(self, frame):
        """A frame without the PN532's protocol handling (InCommunicateThru; the chip adds and
        checks the CRC) -> (answer, RF/card time in µs), or None when the card stays silent."""
        if frame == b"\x50\x00":  # HLTA: halted, no answer
            self.halt()
        return None


class IsoDepCard(Card):
    sens_res = b"\x00\x44"
    sel_res = 0x20
    ats = bytes.fromhex("0675778102 80".replace(" ", ""))
    apdu_us = 3000  # card processing time per APDU

    tear_at = None  # cut power after this many more exchanged bytes (None: never)
    tear_in = None  # (INS, k): tear_at = k from the first command with this INS
    torn = False

    def exchange(self, data):
        self.apdus.append(bytes(data))
        if self.tear_in is not None and len(data) > 1 and data[1] == self.tear_in[0]:
            self.tear_at = self.tear_in[1]
            self.tear_in = None
        if self.tear_at is not None and len(data) > self.tear_at:
            return self._tear(len(data))  # power lost before the command was complete
        rsp = self.apdu(bytes(data))
        rf = self.apdu_us + self.work_us(data) + (len(data) + len(rsp)) * 85  # 106 kbps
        if self.tear_at is not None:
            self.tear_at -= len(data)
            if len(rsp) > self.tear_at:
                return self._tear(len(data) + len(rsp))  # executed, the answer lost
            self.tear_at -= len(rsp)
        return 0, rsp, rf

    def _tear(self, n):
        self.tear_at = None
        self.torn = True
        self.halted = True  # no power: silent until it leaves the field
        return 0x01, b"", self.apdu_us + n * 85

    def left_field(self):
        super().left_field()
        self.torn = False

    def work_us(self, c):
        return 0

    def apdu(self, c):
        return SW_INS

    def raw(self, frame):
        """ISO/IEC 14443-4 blocks from a host that runs ISO-DEP itself (nfcpy; libnfc's
        presence check): RATS, I-blocks (chaining from the host), R(ACK)/R(NAK), S(DESELECT).
        Answers are never chained (the card assumes FSD 256)."""
        pcb = frame[0]
        if not self.iso4:
            if pcb == 0xE0 and len(frame) == 2:  # RATS
                self.iso4 = True
                self.block = 1  # ISO 14443-4: the PICC block number starts at 1
                self._chain = b""
                self._last = None
                return self.ats, 1000 + len(self.ats) * 85
            return super().raw(frame)
        cid = frame[1:2] if pcb & 0x08 else b""
        if pcb & 0xE2 == 0x02:  # I-block: the PICC toggles its block number
            self.block ^= 1
            inf = frame[1 + len(cid) + (1 if pcb & 0x04 else 0):]
            if pcb & 0x10:  # chaining: more to come, acknowledge
                self._chain += inf
                return self._block(0xA2, cid), 1000
            apdu = self._chain + inf
            self._chain = b""
            _, rsp, rf = self.exchange(apdu)
            self._last = self._block(0x02, cid) + rsp
            return self._last, rf
        if pcb & 0xE6 == 0xA2:  # R-block
            if pcb & 1 == self.block and self._last is not None:
                return self._last, 1000  # the last block again
            return self._block(0xA2, cid), 1000  # R(NAK) for another block: R(ACK)
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self.iso4 = False
            self.halted = True
            return bytes([pcb]) + cid, 1000
        return None

    def _block(self, pcb, cid):
        """PCB with our block number (and the CID byte when the host used one)."""
        return bytes([pcb | (0x08 if cid else 0) | self.block]) + cid


class ForeignCard(IsoDepCard):
    """An ISO 14443-4 card without the T-Union application (bank card, foreign transit)."""

    def apdu(self, c):
        if len(c) < 4:
            return SW_WRONG_LENGTH
        if c[0] != 0x00 and c[0] != 0x80:
            return SW_CLA
        if c[1] == 0xA4:
            return SW_NOT_FOUND
        return SW_NOT_ALLOWED


class TUnionCard(IsoDepCard):
    def __init__(self, uid, number, issue=20200101, expiry=20301231, card_type=0x01,
                 province="1000", city="1000", concession_to=0, balance=5000, issuer=None,
                 key_version=1, alg=pboc.ALG_3DES, overdraft=0, counter=0, purse_mode=None):
        super().__init__(uid)
        self.number = str(number)
        self.selected = False
        f15 = bytearray(30)
        f15[0:2] = b"\x10\x00"
        f15[10:20] = bcd(self.number, 10)
        f15[20:24] = bcd(issue, 4)
        f15[24:28] = bcd(expiry, 4)
        f17 = bytearray(32)
        f17[4:6] = bcd(province, 2)
        f17[6:8] = bcd(city, 2)
        f17[10] = card_type
        f17[11:15] = bcd(concession_to, 4)
        self.files = {0x15: bytes(f15), 0x17: bytes(f17), 0x19: bytes(range(256))}
        self.purse = Purse(f15[12:20], issuer, key_version, alg, balance, overdraft, counter,
                           purse_mode, seed=self.number)

    @property
    def balance(self):
        return self.purse.balance

    def work_us(self, c):
        return self.purse.work_us(c)

    def activate(self):
        self.selected = False  # a fresh ISO-DEP session starts in the MF
        return super().activate()

    def apdu(self, c):
        if len(c) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = c[0], c[1], c[2], c[3]
        if self.selected:
            r = self.purse.command(c)  # any other command ends a purchase session
            if r is not None:
                return r
        if cla == 0x00 and ins == 0xA4:
            if p1 != 0x04 or len(c) < 5 or len(c) < 5 + c[4]:
                return SW_BAD_P1P2 if p1 != 0x04 else SW_WRONG_LENGTH
            aid = c[5:5 + c[4]]
            if aid != AID_TUNION:
                self.selected = False
                return SW_NOT_FOUND
            self.selected = True
            label = b"MOT_T_EP"
            a5 = b"\x50" + bytes([len(label)]) + label
            body = b"\x84\x08" + AID_TUNION + b"\xa5" + bytes([len(a5)]) + a5
            return b"\x6f" + bytes([len(body)]) + body + SW_OK
        if cla == 0x00 and ins == 0xB0:
            if not self.selected:
                return SW_NOT_ALLOWED
            if not p1 & 0x80:
                return SW_BAD_P1P2
            f = self.files.get(p1 & 0x1F)
            if f is None:
                return SW_NOT_FOUND
            le = c[4] if len(c) > 4 else 0
            le = le or 256
            if p2 >= len(f):
                return SW_BAD_P1P2
            out = f[p2:p2 + le]
            return out + (SW_OK if len(out) == le else SW_EOF)
        if cla == 0x80 and ins == 0x5C:
            if not self.selected:
                return SW_NOT_ALLOWED
            if p2 != 0x02 or p1 != 0x00:
                return SW_BAD_P1P2
            return (self.balance & 0x7FFFFFFF).to_bytes(4, "big") + SW_OK
        if cla not in (0x00, 0x80):
            return SW_CLA
        return SW_INS


class PhoneCard(TUnionCard):
    """A phone presenting the transit card: a new random UID at every activation, slower
    (host card emulation), and it does not stay halted (the phone re-answers)."""

    halts = False
    apdu_us = 12000

    def __init__(self, number, seed=None, **kw):
        self._rng = random.Random(seed)
        super().__init__(self._random_uid(), number, **kw)

    def _random_uid(self):
        return b"\x08" + bytes(self._rng.randrange(256) for _ in range(3))

    def activate(self):
        self.uid = self._random_uid()
        return super().activate()


class ClassicCard(Card):
    """MIFARE Classic 1K: 16 sectors x 4 blocks, key A / key B per sector, no Crypto1."""

    sens_res = b"\x00\x04"
    sel_res = 0x08

    def __init__(self, uid, number=None, expiry=20301231, card_type=0x01, key_a=MIFARE_KEY,
                 key_b=b"\xff" * 6, block=MIFARE_BLOCK):
        super().__init__(uid)
        self.blocks = [bytearray(16) for _ in range(64)]
        self.blocks[0][0:len(self.uid)] = self.uid
        self.keys = {}
        for s in range(16):
            self.keys[s] = (bytes(key_a), bytes(key_b))
            self.blocks[s * 4 + 3][:] = bytes(key_a) + b"\xff\x07\x80\x69" + bytes(key_b)
        if number is not None:
            b = self.blocks[block]
            b[0:5] = bcd(number, 5)
            b[5:9] = bcd(expiry, 4)
            b[9] = card_type
        self.auth_sector = None

    def activate(self):
        self.auth_sector = None
        return super().activate()

    def exchange(self, data):
        d = bytes(data)
        if len(d) == 12 and d[0] in (0x60, 0x61):
            sector = d[1] // 4 if d[1] < 64 else None
            key = self.keys.get(sector, (None, None))[d[0] - 0x60]
            if sector is None or d[2:8] != key or d[8:12] != self.uid[-4:]:
                self.auth_sector = None
                self.halted = True  # a failed authentication halts the card
                return 0x14, b"", 3000
            self.auth_sector = sector
            return 0, b"", 3000
        if len(d) == 2 and d[0] == 0x30:
            if d[1] >= 64 or self.auth_sector != d[1] // 4:
                return 0x14, b"", 1500
            return 0, bytes(self.blocks[d[1]]), 1500
        return 0x13, b"", 1000


class UltralightCard(Card):
    sens_res = b"\x00\x44"
    sel_res = 0x00

    def __init__(self, uid, pages=None):
        super().__init__(uid)
        self.pages = bytearray(pages or bytes(64))

    def raw(self, frame):
        if len(frame) == 2 and frame[0] == 0x30:
            _, data, rf = self.exchange(frame)
            return data, rf
        return super().raw(frame)

    def exchange(self, data):
        d = bytes(data)
        if len(d) == 2 and d[0] == 0x30:
            n = len(self.pages) // 4
            out = b"".join(self.pages[((d[1] + k) % n) * 4:((d[1] + k) % n) * 4 + 4]
                           for k in range(4))
            return 0, out, 1200
        return 0x13, b"", 1000


# -- factories --------------------------------------------------------------------------

def _uid(number, n, first=0x04):
    """A stable UID derived from the card number (distinct cards get distinct UIDs)."""
    r = random.Random("uid:%s:%d" % (number, n))
    return bytes([first] + [r.randrange(256) for _ in range(n - 1)])


def tunion(number="3104000012345678", uid_len=7, **kw):
    """A T-Union CPU card; kw: issue, expiry, card_type, province, city, concession_to,
    balance, and for the e-purse issuer (IssuerKeys), key_version, alg, overdraft, counter,
    purse_mode."""
    return TUnionCard(_uid(number, uid_len), number, **kw)


def normal(number="3104000012345678", **kw):
    return tunion(number, **kw)


def expired(number="3104000000000099", expiry=20200101, **kw):
    return tunion(number, issue=20150101, expiry=expiry, **kw)


def concession(number="3104000000000042", card_type=0x06, concession_to=20991231, **kw):
    """An elderly card (type 06) with a concession entitlement end date."""
    return tunion(number, card_type=card_type, concession_to=concession_to, **kw)


def lost(number="3104000000000666", **kw):
    """A card the blocklist names (reported lost): ordinary on the card itself."""
    return tunion(number, **kw)


def phone(number="3104000077777777", seed=None, **kw):
    return PhoneCard(number, seed=seed, **kw)


def classic(number="12345678", uid_len=4, **kw):
    return ClassicCard(_uid("m" + str(number), uid_len), number, **kw)


def ultralight(uid_len=7):
    return UltralightCard(_uid("ul", uid_len))


def foreign(uid_len=4):
    return ForeignCard(_uid("foreign", uid_len))


def blank(uid_len=4):
    """A blank MIFARE Classic (transport keys, nothing written)."""
    return ClassicCard(_uid("blank", uid_len), None, key_a=b"\xff" * 6)

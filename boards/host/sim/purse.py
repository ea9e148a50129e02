"""The e-purse application of the virtual CPU and phone cards (psam-purchase.md §4-5): the
card side of a purchase, with keys diversified from the issuer's master keys by the card's
application serial, balance and overdraft limit, the offline counter, the metro trip record
(CAPP cache, SFI 0x1A), the transaction log (SFI 0x18), TAC, GET TRANSACTION PROVE.

PROJECT CONVENTIONS (our statement of the protocol, see docs/psam.md):
* Balance: signed 32-bit (negative = overdraft in use, down to -overdraft limit).
* SFI 0x1A record 1 = the metro trip record, 24 bytes, written only through UPDATE CAPP DATA
  CACHE + DEBIT FOR CAPP PURCHASE (atomically with the debit, or not at all).
* SFI 0x18 = the log, 23-byte records, newest first: counter(2) overdraft(3) amount(4) type(1)
  terminal(6) date(4) time(3).
* GET TRANSACTION PROVE answers MAC2 || TAC for the last debit only (9406 otherwise).
* Status words: 9401 funds, 9302 MAC1, 9403 key index, 6985 no session, 6A83 no record.

Attack models (`mode`): "genuine"; "nokeys" (a clone with the right number and no keys: the
purchase commands are unknown, 6D00); "fake" (a clone answering every purchase command with
plausible values and made-up MACs); "replay" (a clone playing back a genuine card's recorded
INITIALIZE and DEBIT answers, `replay = (init, debit)`); "garbage" (answers the purchase with
noise). `mitm_mac1` flips a bit of MAC1 on its way to the card.
"""

import os
import random

from sim import pboc

TRIP_SFI = 0x1A
LOG_SFI = 0x18
TRIP_LEN = 24
LOG_LEN = 23
LOG_RECORDS = 10
SW_OK = b"\x90\x00"
# Card processing per purchase command, µs (model: EEPROM page writes of ~4 ms for balance,
# counter, trip record and log in DEBIT; a little crypto elsewhere).
WORK_US = {0x50: 4000, 0x54: 18000, 0xDC: 2000, 0x5A: 3000, 0xB2: 1000}


def sw(code):
    return bytes([code >> 8, code & 0xFF])


class Purse:
    def __init__(self, serial, keys=None, version=1, alg=pboc.ALG_3DES, balance=5000,
                 overdraft=0, counter=0, mode=None, seed=0):
        self.serial = bytes(serial)
        self.version = version
        self.alg = alg
        self.mode = mode or ("genuine" if keys is not None else "nokeys")
        self.dpk, self.dtk = keys.card(serial, version, alg) if keys is not None else (None, None)
        self.balance = balance
        self.overdraft = overdraft
        self.counter = counter
        self.trip = bytearray(TRIP_LEN)
        self.log = []
        self.last = None  # (counter, type, mac2, tac) of the last debit
        self.session = None
        self.cache = None
        self.mitm_mac1 = False
        self.replay = None
        self.debits = []  # (counter, amount, type, ttn, date, time, tac) for tests
        self._rng = random.Random(seed)

    def work_us(self, c):
        return WORK_US.get(c[1], 0) if len(c) > 1 and c[0] in (0x00, 0x80) else 0

    def command(self, c):
        """The answer (data + SW) to a purse command, or None for any other command (which
        also ends a purchase session, as on a card)."""
        if len(c) < 4:
            return None
        cla, ins, p1, p2 = c[0], c[1], c[2], c[3]
        if cla == 0x00 and ins == 0xB2:
            return self._read_record(p1, p2, c[4] if len(c) > 4 else 0)
        if cla != 0x80 or ins not in (0x50, 0x54, 0x5A, 0xDC):
            self.session = None
            return None
        if self.mode == "nokeys":
            return sw(0x6D00)
        if self.mode == "garbage":
            return bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(1, 12))) \
                + SW_OK
        if ins == 0x50:
            return self._initialize(p1, c)
        if ins == 0xDC:
            return self._update(p1, p2, c)
        if ins == 0x54:
            return self._debit(c)
        return self._prove(p2, c)

    def _read_record(self, rec, p2, le):
        sfi = p2 >> 3
        if p2 & 7 != 4:
            return sw(0x6A86)
        if sfi == TRIP_SFI and rec == 1:
            data = bytes(self.trip)
        elif sfi == LOG_SFI and 1 <= rec <= len(self.log):
            data = self.log[rec - 1]
        else:
            return sw(0x6A83)
        if le and le != len(data):
            return sw(0x6C00 | len(data))
        return data + SW_OK

    def _initialize(self, p1, c):
        self.session = None
        if p1 not in (0x01, 0x03) or len(c) < 16 or c[4] != 0x0B:
            return sw(0x6A86 if p1 not in (0x01, 0x03) else 0x6700)
        if c[5] != 0x01:
            return sw(0x9403)
        amount = int.from_bytes(c[6:10], "big")
        terminal = bytes(c[10:16])
        if self.mode == "replay":
            self.session = {"capp": p1 == 3}
            return self.replay[0]
        if self.balance + self.overdraft < amount:
            return sw(0x9401)
        rand = bytes(self._rng.randrange(256) for _ in range(4)) if self.mode == "fake" \
            else os.urandom(4)
        self.session = {"capp": p1 == 3, "amount": amount, "terminal": terminal,
                        "rand": rand, "counter": self.counter}
        return (((self.balance & 0xFFFFFFFF).to_bytes(4, "big")
                 + self.counter.to_bytes(2, "big") + self.overdraft.to_bytes(3, "big")
                 + bytes([self.version, self.alg]) + rand) + SW_OK)

    def _update(self, rec, p2, c):
        s = self.session
        if s is None or not s["capp"]:
            return sw(0x6985)
        if p2 >> 3 != TRIP_SFI or p2 & 7 or rec != 1 or len(c) != 5 + TRIP_LEN or c[4] != TRIP_LEN:
            self.session = None
            return sw(0x6A86)
        self.cache = bytes(c[5:5 + TRIP_LEN])
        return SW_OK

    def _debit(self, c):
        s = self.session
        self.session = None
        if s is None:
            return sw(0x6985)
        if len(c) < 20 or c[4] != 0x0F:
            return sw(0x6700)
        ttn, date, time, mac1 = bytes(c[5:9]), bytes(c[9:13]), bytes(c[13:16]), bytes(c[16:20])
        if self.mode == "replay":
            return self.replay[1]
        if self.mode == "fake":
            return bytes(self._rng.randrange(256) for _ in range(8)) + SW_OK
        if self.mitm_mac1:
            mac1 = bytes([mac1[0] ^ 0x01]) + mac1[1:]
        ttype = pboc.TYPE_CAPP if s["capp"] else pboc.TYPE_PURCHASE
        sk = pboc.session_key(self.alg, self.dpk, s["rand"], s["counter"].to_bytes(2, "big"),
                              ttn)
        if pboc.mac1(self.alg, sk, s["amount"], ttype, s["terminal"], date, time) != mac1:
            return sw(0x9302)
        # the debit, atomically: balance, counter, trip record, log
        amount = s["amount"]
        self.balance -= amount
        before = self.counter
        self.counter = (self.counter + 1) & 0xFFFF
        if s["capp"] and self.cache is not None:
            self.trip[:] = self.cache
        self.cache = None
        self.log.insert(0, before.to_bytes(2, "big") + self.overdraft.to_bytes(3, "big")
                        + amount.to_bytes(4, "big") + bytes([ttype]) + s["terminal"] + date
                        + time)
        del self.log[LOG_RECORDS:]
        m2 = pboc.mac2(self.alg, sk, amount)
        tac = pboc.tac(self.alg, self.dtk, amount, ttype, s["terminal"], ttn, date, time)
        self.last = (before, ttype, m2, tac)
        self.debits.append((before, amount, ttype, ttn, date, time, tac))
        return tac + m2 + SW_OK

    def _prove(self, ttype, c):
        self.session = None
        if len(c) < 7 or c[4] != 0x02:
            return sw(0x6700)
        counter = int.from_bytes(c[5:7], "big")
        last = self.last
        if last is None or last[0] != counter or last[1] != ttype:
            return sw(0x9406)
        return last[2] + last[3] + SW_OK

"""The commands of an e-purse purchase, card side and PSAM side (psam-purchase.md §3-4):

    PSAM  READ BINARY SFI 16 (terminal number), SELECT DF 1001             sam_open()
    card  INITIALIZE FOR [CAPP] PURCHASE  80 50 01|03 02 0B                initialize()
    PSAM  INIT SAM FOR PURCHASE           80 70 00 00 1C -> TTN, MAC1      sam_mac1()
    card  UPDATE CAPP DATA CACHE          80 DC rec (sfi<<3) Lc            update_capp()
    card  DEBIT FOR [CAPP] PURCHASE       80 54 01 00 0F -> TAC, MAC2      debit()
    PSAM  CREDIT SAM FOR PURCHASE         80 72 00 00 04 (checks MAC2)     sam_mac2()
    card  GET TRANSACTION PROVE           80 5A 00 type 02 -> MAC2, TAC    prove()

The reader computes no card cryptography: MAC1 comes from the PSAM, MAC2 is checked by the
PSAM, the TAC is kept for the back office. No policy either: the caller chooses amounts, the
trip record, the time (`date`, `time`: BCD, filled by the caller) and what a refusal means.

`card` is any object with `exchange(src, n, dst)`: a generator returning the answer's length
with its status word (the PN532 driver's InDataExchange); `sam` an `iso7816.Sam`. Every step is
a generator (yield while the chips work). Integers stay small (balance within +-2**24 fen,
counters 16 bits); TTN, MACs and TAC stay bytes.
"""

from micropython import const

from .errors import BadResponse, CardRefused, SamRefused

TYPE_PURCHASE = const(0x06)
TYPE_CAPP = const(0x09)
SW_OK = const(0x9000)
SW_FUNDS = const(0x9401)  # INITIALIZE: balance + overdraft below the amount
SW_MAC = const(0x9302)  # DEBIT: MAC1 wrong (card); CREDIT SAM: MAC2 wrong (PSAM)
SW_NO_PROOF = const(0x9406)  # GET TRANSACTION PROVE: no such transaction
DF_PURCHASE = b"\x10\x01"
_LIMIT = const(1 << 24)


def _get16(b, o):
    return b[o] << 8 | b[o + 1]


def _put32(b, o, v):
    b[o] = 0
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def _copy(dst, do, src, so, n):
    for i in range(n):
        dst[do + i] = src[so + i]


class Purchase:
    def __init__(self, card, sam):
        self.card = card
        self.sam = sam
        self.cmd = bytearray(48)  # card commands
        self.scmd = bytearray(40)  # PSAM commands (in flight while the card works)
        self.rsp = bytearray(40)
        self.terminal = bytearray(6)  # the PSAM's terminal number (sam_open)
        self.serial = bytearray(8)  # the card's application serial (set by the caller)
        self.date = bytearray(4)  # YYYYMMDD, BCD (set by the caller)
        self.time = bytearray(3)  # hhmmss, BCD
        self.rand = bytearray(4)
        self.ttn = bytearray(4)
        self.mac1 = bytearray(4)
        self.mac2 = bytearray(4)
        self.tac = bytearray(4)
        self.ttype = TYPE_CAPP
        self.amount = 0
        self.balance = 0  # before this purchase, fen (negative: overdraft in use)
        self.counter = 0  # the card's offline counter for this purchase
        self.overdraft = 0
        self.key_version = 0
        self.alg = 0

    def balance_after(self):
        return self.balance - self.amount

    # -- transport ---------------------------------------------------------------------------
    def _card(self, n, want, step):
        """Send cmd[0:n] to the card; the answer (want data bytes exactly, -1: any) in rsp.
        Returns the data length."""
        got = yield from self.card.exchange(self.cmd, n, self.rsp)
        if got < 2:
            raise BadResponse(step)
        r = self.rsp
        sw = r[got - 2] << 8 | r[got - 1]
        if sw != SW_OK:
            raise CardRefused(step, sw)
        got -= 2
        if want >= 0 and got != want:
            raise BadResponse(step)
        return got

    def _sam(self, n, want, step):
        yield from self.sam.transmit(self.scmd, n)
        return self._sam_check(want, step)

    def _sam_check(self, want, step):
        sam = self.sam
        if sam.sw != SW_OK:
            raise SamRefused(step, sam.sw)
        if want >= 0 and sam.rlen != want:
            raise BadResponse(step)
        return sam.rlen

    def _head(self, cla, ins, p1, p2, lc, c=None):
        c = self.cmd if c is None else c
        c[0] = cla
        c[1] = ins
        c[2] = p1
        c[3] = p2
        c[4] = lc

    # -- PSAM --------------------------------------------------------------------------------
    def sam_open(self):
        """Generator: the PSAM's terminal number, then select its purchase application."""
        c = self.scmd
        self._head(0x00, 0xB0, 0x96, 0x00, 0x06, c)
        yield from self._sam(5, 6, "terminal number")
        _copy(self.terminal, 0, self.sam.resp, 0, 6)
        self._head(0x00, 0xA4, 0x00, 0x00, 0x02, c)
        _copy(c, 5, DF_PURCHASE, 0, 2)
        yield from self._sam(7, -1, "select")

    def sam_mac1(self):
        """Generator: INIT SAM FOR PURCHASE: TTN and MAC1 for what initialize() returned."""
        self.sam_mac1_start()
        while not self.sam.poll():
            yield
        self.sam_mac1_done()

    def sam_mac1_start(self):
        """The same in two halves, so the card can work meanwhile (it is on another bus):
        start here, poll the `sam` until True, then sam_mac1_done()."""
        c = self.scmd
        self._head(0x80, 0x70, 0x00, 0x00, 0x1C, c)
        _copy(c, 5, self.rand, 0, 4)
        c[9] = self.counter >> 8
        c[10] = self.counter & 0xFF
        _put32(c, 11, self.amount)
        c[15] = self.ttype
        _copy(c, 16, self.date, 0, 4)
        _copy(c, 20, self.time, 0, 3)
        c[23] = self.key_version
        c[24] = self.alg
        _copy(c, 25, self.serial, 0, 8)
        c[33] = 0x08
        self.sam.start(c, 34)

    def sam_mac1_done(self):
        self._sam_check(8, "MAC1")
        r = self.sam.resp
        _copy(self.ttn, 0, r, 0, 4)
        _copy(self.mac1, 0, r, 4, 4)

    def sam_mac2(self):
        """Generator: CREDIT SAM FOR PURCHASE: the PSAM checks the card's MAC2 (SamRefused
        with 9302 when it is wrong: the card is not genuine)."""
        c = self.scmd
        self._head(0x80, 0x72, 0x00, 0x00, 0x04, c)
        _copy(c, 5, self.mac2, 0, 4)
        yield from self._sam(9, 0, "MAC2")

    # -- card --------------------------------------------------------------------------------
    def initialize(self, capp, amount, key_index=1):
        """Generator: INITIALIZE FOR (CAPP) PURCHASE: balance, counter, overdraft limit, key
        version, algorithm and random of this purchase."""
        if amount < 0 or amount >= _LIMIT:
            raise ValueError("amount")
        self.amount = amount
        self.ttype = TYPE_CAPP if capp else TYPE_PURCHASE
        c = self.cmd
        self._head(0x80, 0x50, 0x03 if capp else 0x01, 0x02, 0x0B)
        c[5] = key_index
        _put32(c, 6, amount)
        _copy(c, 10, self.terminal, 0, 6)
        c[16] = 0x0F
        yield from self._card(17, 15, "initialize")
        r = self.rsp
        b0 = r[0]
        if b0 != 0 and b0 != 0xFF:
            raise BadResponse("balance out of range")
        v = r[1] << 16 | r[2] << 8 | r[3]
        self.balance = v - _LIMIT if b0 else v
        self.counter = _get16(r, 4)
        self.overdraft = r[6] << 16 | r[7] << 8 | r[8]
        self.key_version = r[9]
        self.alg = r[10]
        _copy(self.rand, 0, r, 11, 4)

    def read_record(self, sfi, rec, le):
        """Generator: READ RECORD of a record file; the data in rsp, its length returned."""
        self._head(0x00, 0xB2, rec, sfi << 3 | 4, le)
        n = yield from self._card(5, -1, "read record")
        return n

    def update_capp(self, sfi, rec, data, n):
        """Generator: UPDATE CAPP DATA CACHE: the card keeps data[0:n] and writes it into the
        record together with the debit (or not at all)."""
        self._head(0x80, 0xDC, rec, sfi << 3, n)
        _copy(self.cmd, 5, data, 0, n)
        yield from self._card(5 + n, 0, "update capp")

    def debit(self):
        """Generator: DEBIT FOR (CAPP) PURCHASE with the PSAM's TTN and MAC1: TAC and MAC2.
        CardRefused 9302: the card refused MAC1. A card gone here may or may not have debited:
        prove() tells on its next tap."""
        c = self.cmd
        self._head(0x80, 0x54, 0x01, 0x00, 0x0F)
        _copy(c, 5, self.ttn, 0, 4)
        _copy(c, 9, self.date, 0, 4)
        _copy(c, 13, self.time, 0, 3)
        _copy(c, 16, self.mac1, 0, 4)
        c[20] = 0x08
        yield from self._card(21, 8, "debit")
        r = self.rsp
        _copy(self.tac, 0, r, 0, 4)
        _copy(self.mac2, 0, r, 4, 4)

    def prove(self, ttype, counter):
        """Generator: GET TRANSACTION PROVE for the purchase with this offline counter: MAC2
        and TAC when that debit happened (CardRefused 9406 when it did not)."""
        c = self.cmd
        self._head(0x80, 0x5A, 0x00, ttype, 0x02)
        c[5] = counter >> 8
        c[6] = counter & 0xFF
        c[7] = 0x08
        yield from self._card(8, 8, "prove")
        r = self.rsp
        _copy(self.mac2, 0, r, 0, 4)
        _copy(self.tac, 0, r, 4, 4)

"""Purchase workload on the emulated reader (entry "pursewl"), used by host_tests/test_epurse.py:
the PN532 and SAM drivers and lib/epurse driven by the operations in /extra/ops.txt (tap,
purchase, record, prove, release); prints TERMINAL / TAP / OK / REC / PROVE / ERR lines."""

from binascii import hexlify, unhexlify

import board
from epurse import Purchase, PurseError
from iso7816 import Sam
from pn532 import PN532, PN532Error, transport


class Card:
    def __init__(self, drv):
        self.drv = drv
        self.tg = 1

    def exchange(self, src, n, dst):
        return self.drv.exchange(self.tg, src, n, dst)


SELECT = b"\x00\xa4\x04\x00\x08\xa0\x00\x00\x06\x32\x01\x01\x05\x00"
READ15 = b"\x00\xb0\x95\x00\x1e"


def h(b):
    return hexlify(b).decode()


def run():
    clock = board.clock
    drv = PN532(transport(board.nfc_bus()), clock, board.nfc_reset())
    drv.run(drv.init())
    u, rst, pwr, hz, echo = board.sam_slot()
    sam = Sam(u, clock, rst, pwr, hz, echo)
    sam.run(sam.open())
    card = Card(drv)
    p = Purchase(card, sam)
    sam.run(p.sam_open())
    print("TERMINAL", h(p.terminal))
    buf = bytearray(64)
    for line in open("/extra/ops.txt").read().split("\n"):
        w = line.split()
        if not w:
            continue
        try:
            if w[0] == "tap":
                nb = 0
                while not nb:
                    nb = drv.run(drv.list_targets(1))
                drv.run(drv.exchange(1, SELECT, len(SELECT), buf))
                drv.run(drv.exchange(1, READ15, len(READ15), buf))
                for i in range(8):
                    p.serial[i] = buf[12 + i]
                print("TAP", h(p.serial))
            elif w[0] == "purchase":
                capp, amount = w[1] == "1", int(w[2])
                p.date[:] = unhexlify(w[3])
                p.time[:] = unhexlify(w[4])
                drv.run(p.initialize(capp, amount))
                sam.run(p.sam_mac1())
                if len(w) > 5:
                    rec = unhexlify(w[5])
                    drv.run(p.update_capp(0x1A, 1, rec, len(rec)))
                drv.run(p.debit())
                sam.run(p.sam_mac2())
                print("OK", p.balance, p.balance_after(), p.counter, h(p.ttn), h(p.tac),
                      p.key_version, p.alg)
            elif w[0] == "record":
                n = drv.run(p.read_record(int(w[1]), int(w[2]), int(w[3])))
                print("REC", h(p.rsp[:n]))
            elif w[0] == "prove":
                drv.run(p.prove(int(w[1]), int(w[2])))
                print("PROVE", h(p.mac2), h(p.tac))
            elif w[0] == "release":
                drv.run(drv.rf_field(False))
                drv.run(drv.rf_field(True))
        except PurseError as e:
            print("ERR", type(e).__name__, e.what, "%04x" % e.sw)
        except PN532Error as e:
            print("ERR", type(e).__name__, e.code)

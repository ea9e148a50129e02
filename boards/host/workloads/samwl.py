"""SAM driver workload on the emulated reader (entry "samwl"), used by host_tests/test_sam_t0.py:
runs the operations in /extra/ops.txt (open, reset, or an APDU in hex) against the SAM slot and
prints ATR / RSP / ERR lines and the driver's counters."""

from binascii import hexlify, unhexlify

import board
from iso7816 import Sam, SamError


def run():
    s = board.settings
    uart, rst, pwr, hz, echo = board.sam_slot()
    sam = Sam(uart, board.clock, rst, pwr, hz, s.get("sam_echo", echo),
              s.get("sam_max_baud", 115200))
    clock = board.clock
    with open("/extra/ops.txt") as f:
        ops = f.read().split()
    for op in ops:
        t0 = clock.ticks_us()
        try:
            if op == "open":
                atr = sam.run(sam.open())
                print("ATR", hexlify(atr.raw).decode(), sam.baud)
            elif op == "reset":
                atr = sam.run(sam.reset(True))
                print("ATR", hexlify(atr.raw).decode(), sam.baud)
            else:
                a = unhexlify(op)
                n = sam.run(sam.transmit(a, len(a)))
                print("RSP", hexlify(sam.resp[:n]).decode() or "-", "%04x" % sam.sw,
                      clock.ticks_diff(clock.ticks_us(), t0))
        except SamError as e:
            print("ERR", type(e).__name__, e.code, clock.ticks_diff(clock.ticks_us(), t0))
    print("STATS nulls=%d gr=%d resends=%d" % (sam.nulls, sam.get_responses, sam.resends))

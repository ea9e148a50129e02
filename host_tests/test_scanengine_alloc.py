"""The driver's receive path allocates nothing (micropython.heap_lock on the compiled build):
replies, codes ended by CR or by the idle gap, suppression, over-long input."""

FAKES = """
import time
import micropython
import scanengine

class Uart:
    # an explicit fake with machine.UART's method names: bytes become readable at set times
    def __init__(self, data, avail_at):
        self.data = data
        self.avail_at = avail_at  # [(t_ms, end offset)]
        self.pos = 0
        self.end = 0
        self.written = 0
    def at(self, t):
        for i in range(len(self.avail_at)):
            if self.avail_at[i][0] <= t:
                self.end = self.avail_at[i][1]
    def readinto(self, buf, n):
        k = 0
        while k < n and self.pos < self.end:
            buf[k] = self.data[self.pos]
            k += 1
            self.pos += 1
        return k or None
    def write(self, b):
        self.written += len(b)
        return len(b)

class Clock:
    ticks_diff = staticmethod(time.ticks_diff)
    def ticks_ms(self):
        return 0
"""


def test_receive_path_is_allocation_free(mp):
    # a zone reply (its CRC from the driver's own crc16), then scan data at times in ms
    segments = [(0, b"\x02\x00\x00\x01\xd4"), (5, None),
                (50, b"RC1:AAAA\r"), (120, b"RC1:AAAA\r"), (200, b"Z" * 700 + b"\r"),
                (400, b"RC1:GAP"), (600, b"\r\nRC1:BBBB\r\n"), (900, b"RC1:AAAA\r")]
    out = mp(FAKES + """
segs = %r
crc = scanengine.crc16_xmodem(segs[0][1], 2, 3)
segs[1] = (segs[1][0], bytes([crc >> 8, crc & 0xff]))
data = b"".join(s for _, s in segs)
avail = []
off = 0
for t, s in segs:
    off += len(s)
    avail.append((t, off))
uart = Uart(data, avail)
se = scanengine.ScanEngine(uart, Clock(), bufsize=128, gap_ms=40, same_ms=500)
se.send(scanengine.READ, 0, b"\\x01")
got = [0] * 16
when = [0] * 16
k = 0
micropython.heap_lock()
try:
    for t in range(0, 1200, 10):
        uart.at(t)
        for _ in range(4):
            n = se.poll(t)
            if n:
                got[k] = n
                when[k] = t
                k += 1
finally:
    micropython.heap_unlock()
print("reply", se.reply_len, hex(se.reply[4]))
print("codes", got[:k], when[:k])
print("stats", se.codes, se.suppressed, se.overruns, se.bad_replies)
print("last", bytes(se.code[:se.code_len]))
""" % (segments,))
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["reply"] == "1 0xd4"
    # AAAA at 50; its repeat at 120 suppressed; 700 Z dropped; GAP by the 40 ms gap (at 440);
    # BBBB; AAAA again at 900 (out of view for longer than same_ms: delivered)
    assert lines["codes"] == "[8, 7, 8, 8] [50, 440, 600, 900]"
    assert lines["stats"] == "4 1 1 0"
    assert lines["last"] == "b'RC1:AAAA'"


def test_bad_reply_crc_is_counted_and_ignored(mp):
    out = mp(FAKES + """
data = b"\\x02\\x00\\x00\\x01\\xd4\\x00\\x00"
uart = Uart(data, [(0, len(data))])
se = scanengine.ScanEngine(uart, Clock())
se.send(scanengine.READ, 0, b"\\x01")
uart.at(0)
for t in range(0, 100, 10):
    se.poll(t)
print(se.reply_len, se.bad_replies, se.codes)
""")
    assert out.split() == ["-1", "1", "0"]

"""ISO 7816-3 conformance of the SAM driver (lib/iso7816) on MicroPython against the PSAM
simulator (boards/host/sim/contact.py, psam.py) on the emulated reader's UART 3: ATR parsing,
PPS, every T=0 procedure byte, 61xx chains, 6Cxx, bad TCK, no ATR, a mute SAM, a SAM pulled
out, a single I/O line's echo, extra guard time, wire time at the negotiated rate, and the
allocation-free APDU path under heap_lock."""

import shutil

import pytest

from sim import pboc, psam
from sim.runner import WORKLOADS

KEYS = pboc.IssuerKeys.from_seed("t0-tests")
TERMINAL = bytes.fromhex("112233445566")
READ_TERMINAL = "00b0960006"
SELECT = "00a40000021001"


def mac1_apdu(alg=pboc.ALG_3DES):
    data = (bytes.fromhex("01020304") + b"\x00\x05" + (300).to_bytes(4, "big") + b"\x09"
            + bytes.fromhex("20240102030405") + b"\x01" + bytes([alg])
            + bytes.fromhex("3104000012345678"))
    return "807000001c" + data.hex() + "08"


def run_ops(make_reader, tmp_path, ops, atr=psam.DEFAULT_ATR, install=True, slot_kw=None,
            **settings):
    r = make_reader()
    slot = None
    p = psam.Psam(KEYS, TERMINAL)
    if install:
        slot = psam.install(r.hw, p, atr=atr)
        for k, v in (slot_kw or {}).items():
            setattr(slot, k, v)
    extra = tmp_path / "extra"
    extra.mkdir(exist_ok=True)
    shutil.copy(WORKLOADS / "samwl.py", extra / "samwl.py")
    (extra / "ops.txt").write_text("\n".join(ops))  # the boot settings are capped at 512 bytes
    code, lines = r.run(entry="samwl", extra_path=extra, settings=settings, timeout=120)
    assert code == 0, "\n".join(lines[-20:])
    out = [ln.split() for ln in lines if ln.split()[:1] in (["ATR"], ["RSP"], ["ERR"])]
    stats = dict(kv.split("=") for kv in next(ln for ln in lines
                                              if ln.startswith("STATS")).split()[1:])
    return out, slot, p, stats


def expected_mac1(p, ttn=1):
    d = bytes.fromhex(mac1_apdu()[10:-2])
    dpk = pboc.diversify(0, KEYS.purchase[(1, 0)], d[20:28])
    sk = pboc.session_key(0, dpk, d[0:4], d[4:6], ttn.to_bytes(4, "big"))
    return ttn.to_bytes(4, "big") + pboc.mac1(0, sk, 300, 9, TERMINAL, d[11:15], d[15:18])


def test_open_negotiates_pps_and_runs_a_purchase_mac1(make_reader, tmp_path):
    out, slot, p, st = run_ops(make_reader, tmp_path,
                               ["open", READ_TERMINAL, SELECT, mac1_apdu()])
    assert out[0][:2] == ["ATR", psam.DEFAULT_ATR.hex()]
    assert int(out[0][2]) == 3579545 * 4 // 372  # TA1 = 13: Di 4 after the PPS
    assert (slot.fi, slot.di) == (1, 3)
    assert out[1][1:3] == [TERMINAL.hex(), "9000"]
    assert out[2][1:3] == ["-", "9000"]
    assert out[3][1:3] == [expected_mac1(p).hex(), "9000"]  # case 4: 61 08 + GET RESPONSE
    assert st["gr"] == "1" and st["nulls"] == "0"


def test_rate_limited_by_the_link_and_pps_refusals(make_reader, tmp_path):
    out, slot, _, _ = run_ops(make_reader, tmp_path, ["open", READ_TERMINAL],
                              sam_max_baud=20000)
    assert int(out[0][2]) == 3579545 * 2 // 372 and slot.di == 2
    # a card answering without PPS1 keeps the default rate
    out, slot, _, _ = run_ops(make_reader, tmp_path, ["open", READ_TERMINAL],
                              slot_kw={"pps": "default"})
    assert int(out[0][2]) == 3579545 // 372 and out[1][2] == "9000"
    # a card that stays mute after a PPS: reset again, default rate, APDUs work
    out, slot, _, _ = run_ops(make_reader, tmp_path, ["open", READ_TERMINAL],
                              slot_kw={"pps": "mute"})
    assert int(out[0][2]) == 3579545 // 372 and out[1][1:3] == [TERMINAL.hex(), "9000"]
    assert slot.resets == 2


@pytest.mark.parametrize("mode,nulls", [("ack", 0), ("single", 0), ("null", 3)])
def test_every_procedure_byte_gives_the_same_answers(make_reader, tmp_path, mode, nulls):
    out, slot, p, st = run_ops(make_reader, tmp_path,
                               ["open", READ_TERMINAL, SELECT, mac1_apdu()],
                               slot_kw={"proc": mode, "nulls": nulls})
    assert out[1][1:3] == [TERMINAL.hex(), "9000"]
    assert out[3][1:3] == [expected_mac1(p).hex(), "9000"]
    # NULLs ahead of each of the 4 data transfers (READ, SELECT, MAC1 in, GET RESPONSE out)
    assert int(st["nulls"]) == (4 * 3 if mode == "null" else 0)


def test_61xx_chain_and_6cxx_retry(make_reader, tmp_path):
    out, slot, p, st = run_ops(make_reader, tmp_path, ["open", SELECT, mac1_apdu()],
                               slot_kw={"chunk": 3})
    assert out[2][1:3] == [expected_mac1(p).hex(), "9000"]
    assert st["gr"] == "3"  # 61 03, 61 03, 61 02
    # READ BINARY with the wrong Le: 6C 06, then the same header with Le 06
    out, slot, _, st = run_ops(make_reader, tmp_path, ["open", "00b0960000", "00b0960002"])
    assert out[1][1:3] == [TERMINAL.hex(), "9000"]
    assert out[2][1:3] == [TERMINAL[:2].hex(), "9000"]
    assert st["resends"] == "1"


def test_status_words_pass_through(make_reader, tmp_path):
    out, _, _, _ = run_ops(make_reader, tmp_path,
                           ["open", mac1_apdu(), "8072000004" + "00000000", "00ca000000"])
    assert out[1][1:3] == ["-", "6985"]  # MAC1 before SELECT
    assert out[2][1:3] == ["-", "6901"]  # MAC2 without a session
    assert out[3][1:3] == ["-", "6d00"]


def test_long_processing_keeps_the_reader_waiting_with_nulls(make_reader, tmp_path):
    out, slot, p, st = run_ops(make_reader, tmp_path, ["open", SELECT, mac1_apdu()],
                               slot_kw={"delay_us": 2_500_000})
    assert out[2][1:3] == [expected_mac1(p).hex(), "9000"]
    assert int(st["nulls"]) >= 4 and int(out[2][3]) > 2_500_000


def test_bad_tck_and_malformed_atrs(make_reader, tmp_path):
    # T=0 and T=1 offered (TD1 = 80, TD2 = 01): TCK required; a wrong one is refused
    good = bytes.fromhex("3B9013800100")
    x = 0
    for b in good[1:-1]:
        x ^= b
    good = good[:-1] + bytes([x])
    out, _, _, _ = run_ops(make_reader, tmp_path, ["reset"], atr=good)
    assert out[0][:2] == ["ATR", good.hex()]
    bad = good[:-1] + bytes([x ^ 0x40])
    out, _, _, _ = run_ops(make_reader, tmp_path, ["reset", READ_TERMINAL], atr=bad)
    assert out[0][:3] == ["ERR", "BadAtr", "71"]
    assert out[1][:2] == ["ERR", "SamError"]  # not activated: nothing is sent
    out, _, _, _ = run_ops(make_reader, tmp_path, ["reset"], atr=bytes.fromhex("3F5C1300")
                           + bytes(12))
    assert out[0][:2] == ["ERR", "BadAtr"]  # TS 3F: inverse convention


def test_no_atr_mute_and_pulled_sam(make_reader, tmp_path):
    out, _, _, _ = run_ops(make_reader, tmp_path, ["open"], install=False)
    assert out[0][:3] == ["ERR", "NoAtr", "19"]
    out, _, _, _ = run_ops(make_reader, tmp_path, ["open"], slot_kw={"mute_atr": True})
    assert out[0][:3] == ["ERR", "NoAtr", "19"]
    # mute after the first command: Mute within the work waiting time, a reset recovers it
    out, slot, _, _ = run_ops(make_reader, tmp_path,
                              ["open", READ_TERMINAL, READ_TERMINAL, "reset", READ_TERMINAL],
                              slot_kw={"mute_after": 1})
    assert out[1][2] == "9000" and out[2][:3] == ["ERR", "Mute", "110"]
    assert 900_000 < int(out[2][3]) < 1_300_000  # WWT = 960 x 10 x 372 / 3.58 MHz ~ 1.0 s
    assert out[3][0] == "ATR" and out[4][1:3] == [TERMINAL.hex(), "9000"]
    # pulled out: Mute, then no ATR on the reset
    out, slot, _, _ = run_ops(make_reader, tmp_path,
                              ["open", READ_TERMINAL, READ_TERMINAL, "reset"],
                              slot_kw={"pull_after": 1})
    assert out[2][:2] == ["ERR", "Mute"] and out[3][:2] == ["ERR", "NoAtr"]


def test_echo_handling_and_junk_procedure_byte(make_reader, tmp_path):
    # a driver that does not expect the echo reads its own header as procedure bytes
    out, _, _, _ = run_ops(make_reader, tmp_path, ["reset", READ_TERMINAL], sam_echo=False)
    assert out[1][:2] == ["ERR", "ProtocolError"]
    out, _, _, _ = run_ops(make_reader, tmp_path, ["open", READ_TERMINAL],
                           slot_kw={"junk": 0x42})
    assert out[1][:2] == ["ERR", "ProtocolError"]


def test_extra_guard_time_is_paced(make_reader, tmp_path):
    atr = bytes.fromhex("3B5C1302") + bytes(12)  # TC1 = 2: 14 etu between our characters
    out, slot, p, _ = run_ops(make_reader, tmp_path, ["open", SELECT, mac1_apdu()], atr=atr)
    assert out[2][1:3] == [expected_mac1(p).hex(), "9000"] and slot.garbled == 0


def test_wire_time_follows_the_negotiated_rate(make_reader, tmp_path):
    """The same MAC1 exchange at 9,622 bd (no PPS) and 38,489 bd: the modelled wire time
    scales with the rate; processing (12 ms for 3DES) does not."""
    els = {}
    for name, kw in (("slow", {"pps": "default"}), ("fast", {})):
        out, slot, _, _ = run_ops(make_reader, tmp_path, ["open", SELECT, mac1_apdu()],
                                  slot_kw=kw)
        els[name] = int(out[2][3])
    chars = 5 + 1 + 28 + 2 + 5 + 1 + 8 + 2  # header, ACK, data, 61 08, GET RESPONSE, answer
    slow_wire = chars * 12 * 372 / 3.579545
    assert els["slow"] - els["fast"] == pytest.approx(slow_wire * 0.75, rel=0.15)
    assert els["fast"] > psam.MAC1_US[0] + slow_wire / 4


HEAP = r'''
import micropython
from iso7816 import Sam
from iso7816.atr import Atr

class Clock:
    t = 0
    def ticks_us(self):
        Clock.t += 10
        return Clock.t
    def ticks_add(self, a, b):
        return a + b
    def ticks_diff(self, a, b):
        return a - b
    def sleep_ms(self, ms):
        pass

class Pin:
    def value(self, v=None):
        pass

class Uart:
    "Echoes what is written, then releases the card's next answer segment."
    def __init__(self, segs):
        self.segs = segs
        self.i = 0
        self.buf = bytearray(300)
        self.r = self.w = 0
    def init(self, **kw):
        pass
    def any(self):
        return self.w - self.r
    def write(self, b):
        for x in b:
            self.buf[self.w] = x
            self.w += 1
        s = self.segs[self.i]
        self.i += 1
        for x in s:
            self.buf[self.w] = x
            self.w += 1
    def readinto(self, b):
        n = 0
        while self.r < self.w and n < len(b):
            b[n] = self.buf[self.r]
            n += 1
            self.r += 1
        return n
    def rewind(self):
        self.i = self.r = self.w = 0

apdu = bytearray(%r)
segs = [bytearray(b"\x70"), bytearray(b"\x61\x08"),
        bytearray(b"\xc0" + bytes(range(8)) + b"\x90\x00")]
u = Uart(segs)
sam = Sam(u, Clock(), Pin(), None, 3579545, True)
atr = bytes.fromhex("3B5C1300") + bytes(12)
sam.atr = Atr(atr, len(atr))
def one():
    u.rewind()
    sam.start(apdu, len(apdu))
    while not sam.poll():
        pass
    return sam.rlen
one()
n = i = 0
micropython.heap_lock()
try:
    for i in range(20):
        n = one()
finally:
    micropython.heap_unlock()
print("res", n, hex(sam.sw), bytes(sam.resp[:n]))
'''


def test_apdu_exchange_is_allocation_free(mp):
    apdu = bytes.fromhex(mac1_apdu())
    out = mp(HEAP % (apdu,))
    assert "res 8 0x9000 b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07'" in out, out


ATR_CASES = r'''
from iso7816.atr import Atr, length
from iso7816 import BadAtr
cases = %r
for h in cases:
    b = bytes.fromhex(h)
    grow = [length(b, k) for k in range(len(b) + 1)]
    try:
        a = Atr(b, len(b))
        print("OK", grow[-1], a.fi, a.di, a.guard, a.wi, a.protocols, a.specific,
              a.specific_ta1, a.hist_len, a.first)
    except BadAtr as e:
        print("BAD", e.code, e.what)
'''


def test_atr_parsing_on_micropython(mp):
    cases = [
        "3B5C1300" + "00" * 12,  # the simulator's PSAM
        "3B6C0002" + "00" * 12,  # TB1 00, TC1 02 (a common PSAM shape): guard 2, no TA1
        "3B9013800100"[:-2] + "00",  # T=0 and T=1, TCK placeholder (wrong)
        "3BD01380450A",  # TD1 45 names T=5: a TCK is due and missing
        "3B1096",  # TA1 96: Fi 512, Di 32
        "3B1013",
        "3B7F",  # cut: 15 historical bytes announced, none there
        "3B10" + "75",  # TA1 with reserved Fi (7)
    ]
    out = mp(ATR_CASES % (cases,)).split("\n")
    assert out[0] == "OK 16 1 3 0 10 1 False False 12 0"
    assert out[1] == "OK 16 1 1 2 10 1 False False 12 0"
    assert out[2].startswith("BAD 71 TCK")
    assert out[3].startswith("BAD 71 length")
    assert out[4] == "OK 3 9 6 0 10 1 False False 0 0"
    assert out[5] == "OK 3 1 3 0 10 1 False False 0 0"
    assert out[6].startswith("BAD 71 length")
    assert out[7].startswith("BAD 71 TA1")

"""The scan-engine driver (MicroPython, compiled) against the engine simulator over the emulated
UART: every configuration command, the CRC behaviour, partial frames, volatile vs saved zones."""

import textwrap

import pytest

from sim import scanengine as se_sim


def workload(tmp_path, body):
    d = tmp_path / "extra"
    d.mkdir(exist_ok=True)
    (d / "se_work.py").write_text(textwrap.dedent(body))
    return d


def run(reader, tmp_path, body, **kw):
    code, out = reader.run(entry="se_work", extra_path=workload(tmp_path, body), **kw)
    assert code == 0, "\n".join(out)
    return out


PRELUDE = """
import asyncio
import board
import scanengine
from scanengine import ScanEngine, ScanEngineError

def hx(b):
    return " ".join("%02x" % x for x in b)

def run():
    asyncio.run(main())
"""


def test_crc_matches_the_manual_examples(mp):
    """CRC-16/XMODEM of the GM65 manual's frames, on MicroPython (driver) and CPython (sim)."""
    frames = ["7e0008 01000a3e 4ccf", "7e0007 01000a01 ee8a", "7e0009 01000000 dec8",
              "7e0008 02002a3901 a7ea", "7e0007 01002a02 d80f"]
    frames = [bytes.fromhex(f.replace(" ", "")) for f in frames]
    replies = [bytes.fromhex("02000001003331"), bytes.fromhex("020000013ee4ac")]
    for f in frames:
        assert se_sim.crc_xmodem(f[2:-2]) == int.from_bytes(f[-2:], "big")
    out = mp("""
        import scanengine
        for f in %r:
            print(scanengine.crc16_xmodem(f, 2, len(f) - 4) == (f[-2] << 8 | f[-1]))
        for r in %r:
            print(scanengine.crc16_xmodem(r, 2, len(r) - 4) == (r[-2] << 8 | r[-1]))
    """ % (frames, replies))
    assert out.split() == ["True"] * 7


def test_every_configuration_command_agrees_with_the_simulator(reader, tmp_path):
    sim = se_sim.install(reader.hw)
    out = run(reader, tmp_path, PRELUDE + """
async def main():
    se = ScanEngine(board.scanner_uart(), board.clock)
    n = await se.read_zone(scanengine.ZONE_MODE)
    print("read0", n, hx(se.reply[4:4 + n]))
    n = await se.write_zone(0x000A, b"\\x3e")
    print("write", n, hx(se.reply[:4 + n + 2]))
    n = await se.read_zone(0x000A)
    print("readA", n, hx(se.reply[:4 + n + 2]))
    n = await se.write_zone(0x002A, b"\\x39\\x01")
    n = await se.read_zone(0x002A, 2)
    print("read2A", n, hx(se.reply[4:4 + n]))
    n = await se.read_zone(0x0000, 0)
    print("read256", n)
    print("mode", await se.set_mode(scanengine.MODE_CONTINUOUS))
    n = await se.save()
    print("save", n, se.reply[4])
    n = await se.command(scanengine.WRITE, 0x0010, b"\\x07", crc=scanengine.CRC_BYPASS)
    print("bypass", n)
    try:
        await se.command(scanengine.WRITE, 0x0011, b"\\x55", crc=0x1234, timeout_ms=100)
        print("bad crc answered")
    except ScanEngineError as e:
        print("badcrc", e.errno, se.timeouts)
    try:
        se.send(scanengine.WRITE, 0, b"", 0)
    except ScanEngineError as e:
        print("einval", e.errno)
    n = await se.read_zone(0x0011)
    print("after", hx(se.reply[4:4 + n]), se.bad_replies)
    await se.set_mode(scanengine.MODE_COMMAND)
    await se.trigger()
    n = await se.read_zone(scanengine.ZONE_TRIGGER)
    print("trigger", se.reply[4])
    await asyncio.sleep_ms(3500)
    n = await se.read_zone(scanengine.ZONE_TRIGGER)
    print("cleared", se.reply[4])
""")
    text = "\n".join(out)
    assert "read0 1 d4" in text
    assert "write 1 02 00 00 01 00 33 31" in text  # the manual's reply, byte for byte
    assert "readA 1 02 00 00 01 3e e4 ac" in text
    assert "read2A 2 39 01" in text
    assert "read256 256" in text
    assert "mode 214" in text  # 0xD4 with mode bits 10
    assert "save 1 0" in text
    assert "bypass 1" in text
    assert "badcrc 110 3" in text  # silence, three attempts, then a named timeout
    assert "einval 22" in text
    assert "after 00 0" in text  # the bad-CRC write never happened
    assert "trigger 1" in text and "cleared 0" in text  # the session ended: auto-cleared
    # what the simulator understood, command by command (sim's own independent CRC)
    assert sim.commands == [
        (7, 0x0000, b"\x01"), (8, 0x000A, b"\x3e"), (7, 0x000A, b"\x01"),
        (8, 0x002A, b"\x39\x01"), (7, 0x002A, b"\x02"), (7, 0x0000, b"\x00"),
        (7, 0x0000, b"\x01"), (8, 0x0000, b"\xd6"), (9, 0x0000, b"\x00"),
        (8, 0x0010, b"\x07"), (7, 0x0011, b"\x01"),
        (7, 0x0000, b"\x01"), (8, 0x0000, b"\xd5"), (8, 0x0002, b"\x01"), (7, 0x0002, b"\x01"),
        (7, 0x0002, b"\x01")]
    assert sim.bad_crc == 3 and sim.saves == 1
    assert sim.saved[0] == 0xD6 and sim.zones[0x10] == 7 and sim.zones[0x11] == 0


def test_volatile_until_saved(reader, tmp_path):
    sim = se_sim.install(reader.hw)
    body = PRELUDE + """
async def main():
    se = ScanEngine(board.scanner_uart(), board.clock)
    await se.read_zone(scanengine.ZONE_MODE)
    print("before", se.reply[4] & 3)
    await se.set_mode(scanengine.MODE_COMMAND)
    if SAVE:
        await se.save()
"""
    out = run(reader, tmp_path, body.replace("SAVE", "False"))
    assert "before 0" in out and sim.mode() == 1
    reader.power_cut()  # the engine loses its volatile zones with the supply
    assert sim.mode() == 0
    out = run(reader, tmp_path, body.replace("SAVE", "True"))
    reader.power_cut()
    assert sim.mode() == 1
    out = run(reader, tmp_path, body.replace("SAVE", "False"))
    assert "before 1" in out


@pytest.mark.parametrize("pause_ms, answered", [(500, False), (200, True)])
def test_partial_command_dropped_after_400ms(reader, tmp_path, pause_ms, answered):
    sim = se_sim.install(reader.hw)
    out = run(reader, tmp_path, PRELUDE + """
async def main():
    uart = board.scanner_uart()
    se = ScanEngine(uart, board.clock)
    frame = bytes([0x7e, 0, 7, 1, 0, 0, 1, 0, 0])
    c = scanengine.crc16_xmodem(frame, 2, 5)
    frame = frame[:7] + bytes([c >> 8, c & 0xff])
    uart.write(frame[:4])
    await asyncio.sleep_ms(%d)
    uart.write(frame[4:])
    await asyncio.sleep_ms(50)
    got = uart.read(16)
    print("reply", hx(got) if got else "none")
""" % pause_ms)
    text = "\n".join(out)
    if answered:
        assert "reply 02 00 00 01 d4" in text and sim.dropped_partial == 0
    else:
        assert "reply none" in text and sim.dropped_partial == 1

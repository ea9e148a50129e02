"""Driver operations on MicroPython against the simulated chip, on each transport: extended
frames, MI chaining both ways, status mapping (card gone, wrong Tg, MIFARE auth, syntax
error frame), Ultralight read, InDeselect/InRelease, and the ACK abort of a poll that would
never end with the chip's default infinite retries."""

import textwrap

import pytest

from sim import cards, pn532

WORKLOAD = r'''
import board
from pn532 import PN532, PN532Error, transport


def show(tag, f):
    try:
        print(tag, "ok", f())
    except PN532Error as e:
        print(tag, type(e).__name__, "%x" % e.code, e.what)


def run():
    d = PN532(transport(board.nfc_bus()), board.clock, board.nfc_reset())
    run_ = d.run
    show("init", lambda: "%08x" % run_(d.init()))
    if board.settings.get("nfc_baud"):
        show("baud", lambda: run_(d.set_baud(board.settings["nfc_baud"])))
    show("list", lambda: run_(d.list_targets(2)))
    t = d.targets[0]
    buf = bytearray(600)
    sel = b"\x00\xa4\x04\x00\x08\xa0\x00\x00\x06\x32\x01\x01\x05\x00"
    show("select", lambda: run_(d.exchange(t.tg, sel, len(sel), buf)))
    big = b"\x00\xb0\x99\x00\x00"
    def read_big():
        n = run_(d.exchange(t.tg, big, 5, buf))
        return "%d %s %s" % (n, bytes(buf[n - 2:n]).hex(), bytes(buf[:256]) == bytes(range(256)))
    show("ext", read_big)
    cmds = d.commands
    d.max_out = 20
    long = bytes([0x80, 0xE2, 0x00, 0x00]) + bytes(i & 0xFF for i in range(60))
    show("chain_out", lambda: "%d cmds=%d" % (run_(d.exchange(t.tg, long, len(long), buf)),
                                            d.commands - cmds))
    show("small_buf", lambda: run_(d.exchange(t.tg, big, 5, bytearray(100))))
    show("wrong_tg", lambda: run_(d.exchange(5, sel, len(sel), buf)))
    show("syntax", lambda: run_(d.call(0x18, 0)))
    show("deselect", lambda: run_(d.deselect(0)))
    show("halted", lambda: run_(d.exchange(t.tg, sel, len(sel), buf)))
    board.maintenance().write("nfc:classic")
    show("relist", lambda: run_(d.list_targets(2)))
    print("classic", d.targets[0].classic(), d.targets[0].uid_len)
    c = d.targets[0]
    bad = b"\x00" * 6
    show("auth_bad", lambda: run_(d.mifare_auth(c.tg, 4, bad, c.uid, c.uid_len)))
    show("relist2", lambda: run_(d.list_targets(2)))
    key = b"\xa0\xa1\xa2\xa3\xa4\xa5"
    show("auth", lambda: run_(d.mifare_auth(c.tg, 4, key, c.uid, c.uid_len)))
    show("block4", lambda: bytes(buf[:run_(d.read16(c.tg, 4, buf))]).hex())
    show("release", lambda: run_(d.release(0)))
    board.maintenance().write("nfc:ultralight")
    show("list_ul", lambda: run_(d.list_targets(1)))
    u = d.targets[0]
    show("ul_read", lambda: bytes(buf[:run_(d.read16(u.tg, 0, buf))]).hex())
    d.params[0] = 0x05
    d.params[1] = 0xFF
    d.params[2] = 0x01
    d.params[3] = 0xFF  # infinite passive activation retries: the chip's default
    show("rf_inf", lambda: run_(d.call(0x32, 4, 100)))
    board.maintenance().write("nfc:empty")
    show("list_inf", lambda: run_(d.list_targets(1)))
    print("aborts", d.aborts)
'''


@pytest.mark.parametrize("transport", ["hsu", "hsu-921600", "i2c", "spi"])
def test_driver_operations(make_reader, tmp_path, transport):
    """The same operations at 115200 and after SetSerialBaudRate to 921600 (HSU)."""
    transport, _, baud = transport.partition("-")
    r = make_reader(nfc=transport)
    sim = pn532.install(r.hw, transport)
    cpu = cards.normal("3104000012345678")
    classic = cards.classic("12345678", uid_len=7)
    sim.field.present(cpu)
    sim.chunk = 64 if transport == "spi" else 262  # SPI run: the chip chains its answer (MI)

    def hook(now):
        for _, text in list(r.hw.events)[-1:]:
            if text == "nfc:ultralight" and not sim.field.cards(now)[0:1] == [ul]:
                sim.field.clear()
                sim.field.present(ul, at_us=now)
            elif text == "nfc:classic" and classic not in sim.field.cards(now):
                sim.field.present(classic, at_us=now)  # the CPU card stays, halted
            elif text == "nfc:empty":
                sim.field.clear()

    ul = cards.ultralight()
    r.hw.hooks.append(hook)
    d = tmp_path / "extra"
    d.mkdir()
    (d / "drvops.py").write_text(textwrap.dedent(WORKLOAD))
    r.boot(entry="drvops", extra_path=d, settings={"nfc_baud": int(baud or 0)})
    assert r.wait(60) == 0, r.tail()
    out = {x.split()[0]: x.split(None, 1)[1] for x in r.output if x and " " in x}
    assert out["init"] == "ok 32010607"
    if baud:
        assert out["baud"] == "ok None" and sim.port.baud == sim.port.host_baud == int(baud)
    assert out["list"] == "ok 1"
    assert out["select"].startswith("ok ") and int(out["select"].split()[1]) > 2
    assert out["ext"] == "ok 258 9000 True"  # extended frame (HSU/I2C) or MI chaining (SPI)
    n, cmds = out["chain_out"].split()[1:]
    assert cmds == "cmds=4" and bytes([0x80, 0xE2, 0, 0]) + bytes(range(60)) in cpu.apdus
    assert out["small_buf"] == "Overflow 5a answer too long"
    assert out["wrong_tg"] == "ChipError 27 wrong context"
    assert out["syntax"] == "ChipError 7f syntax error"
    assert out["deselect"] == "ok None"
    assert out["halted"] == "CardGone 1 timeout"
    assert out["relist"] == "ok 1" and out["classic"] == "True 7"
    assert out["auth_bad"] == "ChipError 14 mifare auth"
    assert out["relist2"] == "ok 0"  # a failed authentication halted the card
    assert out["auth"].startswith("CardGone") or out["auth"].startswith("ChipError 27")
    assert out["list_ul"] == "ok 1"
    assert out["ul_read"] == "ok " + bytes(16).hex()
    assert out["list_inf"] == "Timeout 6e no response" and out["aborts"] == "1"
    if transport == "spi":
        assert sim.commands.count(0x40) >= 13  # the 258-byte answer came in 64-byte pieces

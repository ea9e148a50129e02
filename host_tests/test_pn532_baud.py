"""SetSerialBaudRate on the simulated PN532 (CPython, host side): ACK, the answer at the old
rate, the switch once the host's ACK has arrived, timed on the wire; a host left at the old
rate reads garbage; what does not switch."""

import pytest
from support.pn532_host import GFV, GFV_ANSWER, command, hsu, normal, parse, talk

from sim import pn532
from sim.hw import Hardware
from sim.pn532.timing import BAUD_SWITCH_US

SET_921600 = bytes.fromhex("0000ff03fdd4100715 00".replace(" ", ""))  # the reference's example


def switched(port, t):
    """SetSerialBaudRate 921600 and the host's confirming ACK, both at 115200."""
    assert talk(port, t, SET_921600) == ["ACK", "d511"]
    assert port.baud == 115200  # answered at the old rate
    port.receive(t + 60_000, pn532.ACK)
    return t + 60_000 + 5 * 1e7 / 115200  # when the chip has the ACK (00 00 FF 00 FF)


def test_answer_at_the_old_rate_then_the_new_rate():
    sim, port = hsu()
    t = switched(port, normal(port))
    port.read(int(t + BAUD_SWITCH_US) - 1, 10)
    assert port.baud == 115200
    port.read(int(t + BAUD_SWITCH_US) + 1, 10)
    assert port.baud == 921600 and sim.baud_switches == 1
    port.configure(921600)  # the host follows
    t += 1000
    port.receive(t, GFV)
    # at 921600 the frame, ACK and answer take ~0.7 ms on the wire (at 115200: 3 ms)
    assert parse(port.read(int(t + 1000), 100)[0]) == GFV_ANSWER


def test_a_host_left_at_115200_reads_garbage():
    sim, port = hsu()
    t = switched(port, normal(port)) + 1000
    out = talk(port, t, GFV)  # the chip hears garbage too: no ACK at all
    assert out != GFV_ANSWER
    port.configure(921600)
    assert talk(port, t + 100_000, GFV) == GFV_ANSWER


def test_a_host_that_switches_too_early_loses_its_ack():
    sim, port = hsu()
    t = normal(port)
    assert talk(port, t, SET_921600) == ["ACK", "d511"]
    port.configure(921600)  # before sending the ACK: the chip hears garbage, keeps 115200
    port.receive(t + 60_000, pn532.ACK)
    port.read(t + 70_000, 10)
    assert port.baud == 115200 and sim.baud_switches == 0


def test_no_switch_without_the_host_ack():
    sim, port = hsu()
    t = normal(port)
    assert talk(port, t, SET_921600) == ["ACK", "d511"]
    assert talk(port, t + 60_000, GFV) == GFV_ANSWER  # a new command instead: still 115200
    port.receive(t + 120_000, pn532.ACK)
    port.read(t + 130_000, 10)
    assert port.baud == 115200 and sim.baud_switches == 0


def test_an_ack_before_the_answer_aborts_it():
    sim, port = hsu()
    t = normal(port)
    port.receive(t, SET_921600 + pn532.ACK)  # the host ACK lands before the answer is out
    assert parse(port.read(t + 60_000, 100)[0]) == ["ACK"]
    assert port.baud == 115200 and sim.baud_switches == 0


@pytest.mark.parametrize("code,baud", [(0, 9600), (4, 115200), (5, 230400), (6, 460800),
                                       (7, 921600), (8, 1288000)])
def test_every_rate_code(code, baud):
    sim, port = hsu()
    t = normal(port)
    assert command(port, t, bytes([0x10, code])) == ["ACK", "d511"]
    port.receive(t + 60_000, pn532.ACK)
    port.read(t + 70_000, 10)
    assert port.baud == baud
    port.configure(baud)
    assert talk(port, t + 100_000, GFV, wait_us=100_000) == GFV_ANSWER


def test_bad_codes_lowvbat_and_reset():
    sim, port = hsu()
    t = 10_000
    assert talk(port, t, bytes(10) + SET_921600) == ["ACK", "7f"]  # LowVbat
    t = normal(port, t + 100_000)
    assert command(port, t, b"\x10\x09") == ["ACK", "7f"]
    assert command(port, t + 100_000, b"\x10") == ["ACK", "7f"]
    t = switched(port, t + 200_000)
    port.read(int(t) + 1000, 10)
    assert port.baud == 921600
    sim.reset_line(int(t) + 2000, 0)  # RSTPD_N: back to 115200
    assert port.baud == 115200


def test_on_i2c_it_answers_and_changes_nothing():
    hw = Hardware({"NFC_RESET": 1, "NFC_CS": 2})
    sim = pn532.install(hw, "i2c")
    dev = hw.i2c[0x24]
    dev.i2c_write(10_000, pn532.frame(b"\xd4\x14\x01"))
    dev.i2c_read(20_000, 7), dev.i2c_read(30_000, 10)
    dev.i2c_write(40_000, pn532.frame(b"\xd4\x10\x07"))
    assert dev.i2c_read(50_000, 7)[0][1:] == pn532.ACK
    assert parse(dev.i2c_read(60_000, 10)[0][1:]) == ["d511"]
    dev.i2c_write(70_000, pn532.ACK)
    assert sim.baud_switches == 0

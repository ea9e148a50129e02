"""The simulated PN532's power modes (CPython, host side): waking from LowVbat and from
PowerDown on each host interface, the WakeUpEnable sources, what a wake-up costs and loses,
what happens to a frame sent too early."""

import pytest
from support.pn532_host import GFV, GFV_ANSWER, command, hsu, normal, parse, talk

from sim import cards, pn532
from sim.hw import Hardware
from sim.pn532.timing import WAKE_US


@pytest.mark.parametrize("preamble,answered", [
    (bytes(10), True),  # nfcpy: a long preamble, no 0x55
    (b"\x55\x55" + bytes(14), True),  # libnfc 1.8 and this project's driver
    (bytes(8), True),  # the shortest run of zeros that still works at 115200
    (bytes(7), False),  # the start code arrives while the chip is still waking
    (b"\x55\x55\x00\x00\x00", False),  # too short (nfc-tools-devel: first open fails)
    (b"\x55", False),  # 0x55 and the frame straight after, without the delay
])
def test_hsu_wakes_from_lowvbat_on_any_preamble_long_enough(preamble, answered):
    sim, port = hsu()
    t = 10_000
    port.receive(t, preamble + GFV)
    out = parse(port.read(t + 100_000, 100)[0])  # nfcpy waits 100 ms for the ACK
    assert out == (GFV_ANSWER if answered else [])
    # a frame sent too early is lost, not held: the host's resend (after 15 ms) is answered
    assert talk(port, t + 100_000, GFV) == GFV_ANSWER


def test_hsu_0x55_then_a_long_delay_wakes_it():
    sim, port = hsu()
    port.receive(10_000, b"\x55")
    assert talk(port, 10_000 + WAKE_US, GFV) == GFV_ANSWER
    assert sim.wakes == 1


def test_hsu_wake_up_time_and_answer_within_100ms():
    """ACK + GetFirmwareVersion answer, timed on the wire: the first edge, the wake-up, the
    frame's remaining bytes, the chip's ACK and answer at 115200 baud."""
    sim, port = hsu()
    t = 10_000
    port.receive(t, bytes(10) + GFV)
    byte = 1e7 / 115200
    ack_at = t + 18 * byte + 200  # the frame is complete at its DCS, then the ACK delay
    assert port.read(int(ack_at + 6 * byte) - 3, 100)[0] == pn532.ACK[:5]
    assert port.read(int(ack_at + 6 * byte) + 3, 100)[0] == pn532.ACK[5:]
    assert parse(port.read(t + 5_000, 100)[0]) == ["d50332010607"]


def test_lowvbat_refuses_all_but_three_commands_until_samconfiguration():
    sim, port = hsu()
    t = 10_000
    assert talk(port, t, bytes(10) + pn532.frame(b"\xd4\x4a\x01\x00")) == ["ACK", "7f"]
    assert command(port, t + 100_000, b"\x00\x00\x01\x02") == ["ACK", "d501000102"]
    assert command(port, t + 200_000, b"\x14\x01") == ["ACK", "d515"]
    assert command(port, t + 300_000, b"\x32\x05\xff\x01\x00") == ["ACK", "d533"]


def powered_down(mask, irq=0, *present):
    """A chip in normal mode that has just answered PowerDown(mask): asleep."""
    sim, port = hsu(*present)
    t = normal(port)
    p = b"\x16" + bytes([mask]) + (bytes([irq]) if irq else b"")
    assert command(port, t, p) == ["ACK", "d51700"]
    assert sim.sleep == mask and sim.sleeps == 1
    return sim, port, t + 100_000


def test_powerdown_sleeps_after_its_answer_and_a_bare_frame_is_lost():
    sim, port = hsu()
    t = normal(port)
    port.receive(t, pn532.frame(b"\xd4\x16\x10"))
    t_ack = t + 1600  # the ACK is out, the answer on its way
    out = port.read(t_ack, 100)[0]
    assert parse(out) == ["ACK"] and sim.sleep is None  # still awake until it has answered
    assert parse(port.read(t + 50_000, 100)[0]) == ["d51700"] and sim.sleep == 0x10
    t += 100_000
    assert talk(port, t, GFV) == []  # its first bytes woke it; the frame was lost
    assert talk(port, t + 20_000, GFV) == GFV_ANSWER  # awake now: no SAMConfiguration needed


def test_powerdown_loses_the_field_and_targets_and_keeps_the_configuration():
    card = cards.normal("3104000000000001")
    sim, port = hsu(card)
    t = normal(port)
    assert command(port, t, b"\x4a\x01\x00")[1].startswith("d54b01")
    assert command(port, t + 100_000, b"\x44\x01") == ["ACK", "d54500"]  # deselected: halted
    assert card.halted
    command(port, t + 200_000, b"\x16\x10")
    assert not card.halted and sim.targets == {}  # the field dropped while asleep
    t += 300_000
    assert talk(port, t, bytes(10) + pn532.frame(b"\xd4\x40\x01\x00")) == ["ACK", "d54127"]
    assert command(port, t + 100_000, b"\x4a\x01\x00")[1].startswith("d54b01")  # seen again
    sim.field.clear()
    # finite retries, SAM mode and registers survived: an empty field answers NbTg 0
    assert command(port, t + 200_000, b"\x4a\x01\x00") == ["ACK", "d54b00"]


@pytest.mark.parametrize("mask,source,wakes", [
    (0x10, "hsu", True), (0x20, "hsu", False), (0xA0, "hsu", False),
    (0x01, "int0", True), (0x02, "int1", True), (0x08, "rf", True), (0x40, "gpio", True),
    (0x02, "int0", False), (0x10, "rf", False),
])
def test_powerdown_wake_up_sources_on_hsu(mask, source, wakes):
    sim, port, t = powered_down(mask)
    if source == "hsu":
        port.receive(t, b"\x55")
    else:
        sim.wake_event(t, source)
    t += 10_000
    port.read(t, 10)
    assert (sim.sleep is None) == wakes
    assert talk(port, t, GFV) == (GFV_ANSWER if wakes else [])


def test_generate_irq_on_wake_up():
    sim, port, t = powered_down(0x01, 1)
    assert sim.irq == 1
    sim.wake_event(t, "int0")
    port.read(t + WAKE_US - 1, 10)
    assert sim.irq == 1 and sim.sleep is not None
    port.read(t + WAKE_US, 10)
    assert sim.irq == 0 and sim.sleep is None
    assert talk(port, t + 10_000, GFV) == GFV_ANSWER and sim.irq == 1


def bus(transport):
    hw = Hardware({"NFC_RESET": 1, "NFC_CS": 2})
    return hw, pn532.install(hw, transport)


def i2c_command(dev, t, payload):
    """One command over I2C: write, then read ACK and answer once ready."""
    ok = dev.i2c_write(t, pn532.frame(b"\xd4" + bytes(payload)))
    frames = []
    for k in range(1, 200):
        data, st = dev.i2c_read(t + k * 1000, 64)
        if st == 0 and data[0] == 1:
            frames += parse(data[1:])
        if len(frames) == 2:
            break
    return ok, frames


def test_i2c_wakes_on_its_address_stretching_scl_and_loses_nothing():
    hw, sim = bus("i2c")
    dev = hw.i2c[0x24]
    ok, out = i2c_command(dev, 10_000, b"\x02")
    assert ok and out == GFV_ANSWER and sim.stretched_us == WAKE_US
    assert i2c_command(dev, 300_000, b"\x14\x01") == (True, ["ACK", "d515"])
    assert i2c_command(dev, 400_000, b"\x16\x01") == (True, ["ACK", "d51700"])  # INT0 only
    assert dev.i2c_write(500_000, GFV) is False  # asleep: the address is not acknowledged
    assert dev.i2c_read(500_000, 1) == (b"\x00", 1)
    assert i2c_command(dev, 600_000, b"\x16\x80")[0] is False  # still asleep
    sim.wake_event(700_000, "int0")
    assert i2c_command(dev, 800_000, b"\x16\x80") == (True, ["ACK", "d51700"])
    ok, out = i2c_command(dev, 900_000, b"\x02")
    assert ok and out == GFV_ANSWER and sim.stretched_us == 2 * WAKE_US


def spi_status(dev, t):
    return dev.spi_xfer(t, b"\x02\x00", True)[1]


def spi_command(hw, dev, t, payload):
    dev.cs_line(t, 0)
    dev.spi_xfer(t, b"\x01" + pn532.frame(b"\xd4" + bytes(payload)), True)
    frames = []
    for k in range(1, 200):
        if spi_status(dev, t + k * 1000) == 1:
            frames += parse(dev.spi_xfer(t + k * 1000, b"\x03" + bytes(40), True)[1:])
        if len(frames) == 2:
            break
    return frames


def test_spi_nss_wakes_it_and_a_transaction_begun_asleep_is_lost():
    hw, sim = bus("spi")
    dev = hw.spi["NFC_CS"]
    t = 10_000
    assert spi_command(hw, dev, t, b"\x02") == []  # asleep (MISO FF), the frame lost
    assert sim.sleep is None and sim.commands == []  # ... but NSS woke it
    assert spi_command(hw, dev, t + 300_000, b"\x02") == GFV_ANSWER
    spi_command(hw, dev, t + 400_000, b"\x14\x01")
    assert spi_command(hw, dev, t + 500_000, b"\x16\x80") == ["ACK", "d51700"]  # I2C only
    assert spi_status(dev, t + 600_000) == 0xFF and sim.sleep == 0x80
    dev.cs_line(t + 700_000, 0)
    assert spi_status(dev, t + 800_000) == 0xFF  # SPI may not wake it
    sim.wake_event(t + 850_000, "gpio")
    assert spi_status(dev, t + 900_000) == 0xFF  # nor GPIO
    spi_command(hw, dev, t + 1_000_000, b"\x02")
    sim.reset_line(t + 1_100_000, 0)
    sim.reset_line(t + 1_110_000, 1)
    t += 1_200_000
    assert spi_command(hw, dev, t, b"\x16\x20") == []  # RSTPD_N: LowVbat, asleep again
    assert spi_command(hw, dev, t + 100_000, b"\x14\x01") == ["ACK", "d515"]
    assert spi_command(hw, dev, t + 200_000, b"\x16\x20") == ["ACK", "d51700"]
    assert spi_command(hw, dev, t + 300_000, b"\x02") == []
    assert spi_command(hw, dev, t + 400_000, b"\x02") == GFV_ANSWER

"""The driver against the simulated PN532 over all three transports (HSU at 115200 and after
SetSerialBaudRate to 921600, I2C, SPI) on the emulated reader: card reads, every injected
fault, a hung chip recovered with RSTPD_N within 1 s, a stale response left pending across a
soft reboot of the MCU, a chip left at 921600 by the previous boot."""

import re
import time

import pytest

from flashtool.bench.nfc import write_workload
from sim import cards, pn532

TRANSPORTS = ["hsu", "hsu-921600", "i2c", "spi"]


def start(make_reader, tmp_path, transport, *present, **settings):
    transport, _, baud = transport.partition("-")
    if baud:
        settings["nfc_baud"] = int(baud)
    r = make_reader(nfc=transport)
    sim = pn532.install(r.hw, transport)
    for c in present:
        sim.field.present(c)
    r.boot(entry="nfcload", extra_path=write_workload(tmp_path / "extra"), settings=settings)
    return r, sim


def cred_lines(r, n, timeout=30):
    end = time.monotonic() + timeout
    while True:
        done = r.proc.poll() is not None
        if done:
            r.wait(10)  # every line the process printed is in r.output now
        out = [x for x in r.output[r.boot_line:] if x.startswith("CRED")]
        if len(out) >= n:
            return out[:n]
        if time.monotonic() > end or done:
            raise AssertionError("%d of %d credentials:\n%s" % (len(out), n, r.tail()))
        time.sleep(0.01)


def counters(r, tag):
    line = next(x for x in reversed(r.output) if x.startswith(tag + " "))
    return {k: int(v) for k, v in (x.split("=") for x in line.split()[1:])}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reads_every_card_kind_on_each_transport(make_reader, tmp_path, transport):
    r, sim = start(make_reader, tmp_path, transport, cards.normal("3104000012345678"),
                   nfc_taps=3, nfc_mifare=1)
    assert "num=3104000012345678" in cred_lines(r, 1)[0]
    sim.field.clear()  # empty for 200 ms of the reader's time, whatever the host's load
    sim.field.present(cards.phone("3104000077777777", seed=3), delay_ms=200)
    assert "kind=2 num=3104000077777777" in cred_lines(r, 2)[1]
    sim.field.clear()
    sim.field.present(cards.classic("55667788"), delay_ms=200)
    assert "kind=3 num=55667788" in cred_lines(r, 3)[2]
    assert r.wait(60) == 0
    drv = counters(r, "DRV")
    assert drv["timeouts"] == 0 and drv["bad"] == 0, drv
    if transport == "hsu-921600":
        assert sim.port.baud == sim.port.host_baud == 921600 and sim.baud_switches == 1


FAULTS = {
    "corrupt": ({"corrupt": 2}, lambda d: d["bad"] >= 1),
    "drop": ({"drop": 2}, lambda d: d["bad"] + d["timeouts"] >= 1),
    "garbage": ({"garbage": 12}, lambda d: True),
    "nack_storm": ({"nack_storm": 8}, lambda d: True),
    "late_ack": ({"late_ack_us": 25000}, lambda d: d["resent"] >= 1),
    "stale": ({"stale": 2}, lambda d: d["stale"] >= 1),
    "lost_command": ({"ignore": 1}, lambda d: d["resent"] >= 1),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faults_are_survived(make_reader, tmp_path, transport, fault):
    """The fault hits the frames of the next commands (poll or read); the card is still read
    with the right number and the driver's counters show the recovery path it took."""
    setting, check = FAULTS[fault]
    r, sim = start(make_reader, tmp_path, transport, nfc_taps=1)
    r.wait_for(lambda s: " nfc pn532 " in s)
    with sim.lock:
        for k, v in setting.items():
            setattr(sim.faults, k, v)
        sim.field.present(cards.normal("3104000012345678"))
    assert "num=3104000012345678" in cred_lines(r, 1)[0] and "err=0" in cred_lines(r, 1)[0]
    assert r.wait(60) == 0
    drv = counters(r, "DRV")
    assert check(drv), drv
    assert sim.faults.corrupt == 0 and sim.faults.drop == 0 and sim.faults.stale == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hung_chip_is_reset_and_reader_recovers_within_1s(make_reader, tmp_path, transport):
    r, sim = start(make_reader, tmp_path, transport, cards.normal("3104000000000001"),
                   nfc_taps=2)
    cred_lines(r, 1)
    with sim.lock:
        sim.field.clear()
        sim.faults.hang = True
    line = r.wait_for(lambda s: " nfc reset " in s and "back in" in s)
    assert int(re.search(r"back in (\d+) ms", line).group(1)) < 1000, line
    assert sim.resets >= 1 and not sim.faults.hang
    sim.field.present(cards.normal("3104000000000002"))
    assert "num=3104000000000002" in cred_lines(r, 2)[1]
    assert r.wait(60) == 0
    st = counters(r, "STATS")
    assert st["resets"] >= 1 and st["timeouts"] >= 1, st
    # the event loop (ride codes, gate) kept running: its 20 ms loop never waited much longer
    assert counters(r, "LOOP")["maxgap"] < 60, counters(r, "LOOP")


def test_uninitialised_chip_ignores_frames_without_wakeup_and_lowvbat(make_reader, tmp_path):
    """HSU: the chip starts in LowVbat; without the 0x55 preamble it hears nothing, and
    before SAMConfiguration it refuses other commands with the error frame."""
    sim = pn532.PN532Sim("hsu")
    sim.port = pn532.HsuPort(sim)
    t = 10_000
    sim.port.receive(t, pn532.frame(b"\xd4\x02"))
    assert sim.port.read(t + 20_000, 100)[0] == b""
    sim.port.receive(t + 20_000, b"\x55\x55" + bytes(14) + pn532.frame(b"\xd4\x4a\x01\x00"))
    out = sim.port.read(t + 60_000, 100)[0]
    assert out == pn532.ACK + pn532.ERROR_FRAME


def test_stale_response_across_soft_reboot(make_reader, tmp_path):
    """The MCU reboots (watchdog / soft reset: the PN532 keeps power) while the chip still
    has a response to deliver: the next boot sees it where an ACK is expected, drops it and
    reads the next card."""
    r, sim = start(make_reader, tmp_path, "hsu", cards.normal("3104000000000001"), nfc_taps=1)
    cred_lines(r, 1)
    r.wait(60)
    sim.field.clear()
    stale = pn532.frame(b"\xd5\x4b\x01\x01\x00\x04\x08\x04\x01\x02\x03\x04")
    receive = sim.port.receive

    def first_write(now, data):
        # the old boot's response is still crossing the wire when the new boot's first
        # command goes out (after its RX drain): it arrives where the ACK is expected
        sim.port.receive = receive
        sim.port.send(now, stale, 0)
        receive(now, data)

    sim.port.receive = first_write
    r.boot(entry="nfcload", extra_path=tmp_path / "extra", reset_cause="soft",
           settings={"nfc_taps": 1})
    r.wait_for(lambda s: " nfc pn532 " in s)
    sim.field.present(cards.normal("3104000000000002"))
    assert "num=3104000000000002" in cred_lines(r, 1)[0]
    assert r.wait(60) == 0
    assert counters(r, "DRV")["stale"] >= 1


def test_spi_bus_must_shift_lsb_first(make_reader, tmp_path):
    """The driver relies on the bus for LSB-first order (no software bit reversal): on a bus
    left MSB first the chip sees bit-reversed bytes and never answers."""
    d = tmp_path / "extra"
    d.mkdir()
    (d / "msb.py").write_text(
        "import board\n"
        "from hostlink import MSB, SPI\n"
        "from pn532 import PN532, PN532Error\n"
        "from pn532.spi import SPI as T\n"
        "def run():\n"
        "    for first in (MSB, 1):\n"
        "        bus = SPI(board._link, 0, firstbit=first)\n"
        "        d = PN532(T(bus, board.pin('NFC_CS', 1, 1)), board.clock)\n"
        "        try:\n"
        "            print('first', first, 'ok %08x' % d.run(d.init()))\n"
        "        except PN532Error as e:\n"
        "            print('first', first, type(e).__name__, e.what)\n")
    r = make_reader(nfc="spi")
    pn532.install(r.hw, "spi")
    code, out = r.run(entry="msb", extra_path=d)
    assert code == 0, out
    assert "first 0 Timeout no ACK" in out and "first 1 ok 32010607" in out, out


def test_chip_left_at_921600_by_the_previous_boot(make_reader, tmp_path):
    """A soft reboot keeps the PN532 powered at 921600 while the new boot starts its UART at
    115200: init gets no answer, the reset line brings the chip back to 115200, and the reader
    moves it to 921600 again and reads."""
    r, sim = start(make_reader, tmp_path, "hsu-921600", cards.normal("3104000000000001"),
                   nfc_taps=1)
    cred_lines(r, 1)
    assert r.wait(60) == 0 and sim.port.baud == 921600
    sim.field.clear()
    r.boot(entry="nfcload", extra_path=tmp_path / "extra", reset_cause="soft",
           settings={"nfc_taps": 1, "nfc_baud": 921600})
    line = r.wait_for(lambda s: " nfc reset " in s and "back in" in s)
    assert int(re.search(r"back in (\d+) ms", line).group(1)) < 1000, line
    sim.field.present(cards.normal("3104000000000002"))
    assert "num=3104000000000002" in cred_lines(r, 1)[0]
    assert r.wait(60) == 0
    assert sim.resets >= 1 and sim.port.baud == 921600 and sim.baud_switches == 2

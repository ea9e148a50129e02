"""Every command of the UM0701 command set on the simulated PN532 (CPython, host side): each
is either simulated or answered with the syntax-error frame, as the chip answers a command it
does not take; then the multi-step behaviours (registers, GPIO, raw ISO-DEP through
InCommunicateThru, InAutoPoll, InSelect, waiting for a card, RF timings)."""

import pytest
from support.pn532_host import command, hsu, normal

from sim import cards
from sim.pn532.commands import HANDLERS, NOT_SIMULATED

CARD = "3104000000000001"
ERR = ["ACK", "7f"]


def tdata(tg, card, ats=True):
    c = card
    return (bytes([tg]) + c.sens_res + bytes([c.sel_res, len(c.uid)]) + c.uid
            + (c.ats if ats and c.ats else b"")).hex()


def ok(cmd, data=""):
    return ["ACK", "d5%02x" % (cmd + 1) + data]


CPU = cards.normal(CARD)  # identical UID/ATS for every fresh normal(CARD)

# (command bytes after D4, what the chip sends back), each on a fresh chip in normal mode with
# finite retries and one CPU card in the field
TABLE = {
    "Diagnose line test": ("00 00 41 42 43", ok(0x00, "00414243")),
    "Diagnose ROM test": ("00 01", ok(0x00, "00")),
    "Diagnose RAM test": ("00 02", ok(0x00, "00")),
    "Diagnose polling test (not simulated)": ("00 04 00", ERR),
    "Diagnose echo back test (not simulated)": ("00 05 00 00 00", ERR),
    "Diagnose antenna test (not simulated)": ("00 07 00", ERR),
    "GetFirmwareVersion": ("02", ok(0x02, "32010607")),
    "GetGeneralStatus": ("04", ok(0x04, "00000000")),
    "ReadRegister": ("06 63 02", ok(0x06, "00")),
    "ReadRegister odd length": ("06 63", ERR),
    "WriteRegister": ("08 63 3d 07", ok(0x08)),
    "WriteRegister bad length": ("08 63 3d", ERR),
    "ReadGPIO": ("0c", ok(0x0C, "3f0600")),
    "WriteGPIO": ("0e 81 80", ok(0x0E)),
    "WriteGPIO bad length": ("0e 81", ERR),
    "SetSerialBaudRate": ("10 04", ok(0x10)),
    "SetSerialBaudRate bad code": ("10 09", ERR),
    "SetParameters": ("12 14", ok(0x12)),
    "SetParameters no flags": ("12", ERR),
    "SAMConfiguration": ("14 01 14 01", ok(0x14)),
    "SAMConfiguration bad mode": ("14 05", ERR),
    "PowerDown": ("16 b0", ok(0x16, "00")),
    "PowerDown no sources": ("16", ERR),
    "AlparCommandForTDA (not simulated)": ("18 00", ERR),
    "RFConfiguration field": ("32 01 01", ok(0x32)),
    "RFConfiguration timings": ("32 02 00 0b 0a", ok(0x32)),
    "RFConfiguration MaxRtyCOM": ("32 04 00", ok(0x32)),
    "RFConfiguration MaxRetries": ("32 05 ff 01 02", ok(0x32)),
    "RFConfiguration analog 106A": ("32 0a 59 f4 3f 11 4d 85 61 6f 26 62 87", ok(0x32)),
    "RFConfiguration analog 212/424": ("32 0b 69 ff 3f 11 41 85 61 6f", ok(0x32)),
    "RFConfiguration analog type B": ("32 0c ff 04 85", ok(0x32)),
    "RFConfiguration analog 14443-4": ("32 0d 85 15 8a 85 08 b2 85 01 da", ok(0x32)),
    "RFConfiguration wrong length": ("32 05 ff 01", ERR),
    "RFConfiguration unknown item": ("32 03 00", ERR),
    "InDataExchange no target": ("40 01 00 a4 04 00", ok(0x40, "27")),
    "InCommunicateThru no target": ("42 26", ok(0x42, "01")),
    "InCommunicateThru empty": ("42", ERR),
    "InDeselect all": ("44 00", ok(0x44, "00")),
    "InDeselect unknown target": ("44 01", ok(0x44, "27")),
    "InJumpForPSL (not simulated)": ("46 01 00 00", ERR),
    "InListPassiveTarget": ("4a 01 00", ok(0x4A, "01" + tdata(1, CPU))),
    "InListPassiveTarget MaxTg 3": ("4a 03 00", ERR),
    "InListPassiveTarget type B": ("4a 01 03 00", ok(0x4A, "00")),
    "InListPassiveTarget FeliCa": ("4a 01 01 00 ff ff 00 00", ok(0x4A, "00")),
    "InListPassiveTarget Jewel": ("4a 01 04", ok(0x4A, "00")),
    "InListPassiveTarget PN533 modulation": ("4a 01 05", ERR),
    "InPSL (not simulated)": ("4e 01 00 00", ERR),
    "InATR (not simulated)": ("50 01 00", ERR),
    "InRelease all": ("52 00", ok(0x52, "00")),
    "InSelect unknown target": ("54 01", ok(0x54, "27")),
    "InJumpForDEP (not simulated)": ("56 01 00 00", ERR),
    "RFRegulationTest": ("58 00", ["ACK"]),  # transmits until the next command
    "InAutoPoll ISO14443-4A": ("60 01 01 20", ok(0x60, "0120%02x" % (len(tdata(1, CPU)) // 2)
                                                  + tdata(1, CPU))),
    "InAutoPoll MIFARE only": ("60 02 01 10", ok(0x60, "00")),
    "InAutoPoll no types": ("60 01 01", ERR),
    "TgGetData (not simulated)": ("86", ERR),
    "TgGetInitiatorCommand (not simulated)": ("88", ERR),
    "TgGetTargetStatus (not simulated)": ("8a", ERR),
    "TgInitAsTarget (not simulated)": ("8c 00" + " 00" * 36, ERR),
    "TgSetData (not simulated)": ("8e 00", ERR),
    "TgResponseToInitiator (not simulated)": ("90 00", ERR),
    "TgSetGeneralBytes (not simulated)": ("92 00", ERR),
    "TgSetMetaData (not simulated)": ("94 00", ERR),
    "unknown 0x01": ("01", ERR),
    "unknown 0x20": ("20 00", ERR),
    "unknown 0xfe": ("fe", ERR),
}


def fresh(*present):
    sim, port = hsu(*(present or (cards.normal(CARD),)))
    return sim, port, normal(port)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_command(name):
    payload, want = TABLE[name]
    sim, port, t = fresh()
    assert command(port, t, bytes.fromhex(payload), wait_us=2_000_000) == want


def test_the_table_covers_the_whole_command_set():
    um = {0x00, 0x02, 0x04, 0x06, 0x08, 0x0C, 0x0E, 0x10, 0x12, 0x14, 0x16, 0x18, 0x32, 0x58,
          0x56, 0x46, 0x4A, 0x50, 0x4E, 0x40, 0x42, 0x44, 0x52, 0x54, 0x60, 0x8C, 0x92, 0x86,
          0x8E, 0x94, 0x88, 0x90, 0x8A}
    assert set(HANDLERS) | set(NOT_SIMULATED) == um and not set(HANDLERS) & set(NOT_SIMULATED)
    tested = {bytes.fromhex(p)[0] for p, _ in TABLE.values()}
    assert um <= tested


def test_registers_and_gpio_read_back():
    sim, port, t = fresh()
    assert command(port, t, bytes.fromhex("08 63 3d 07 63 02 80")) == ok(0x08)
    assert command(port, t + 10_000, bytes.fromhex("06 63 3d 63 02 63 03")) == \
        ok(0x06, "078000")
    assert command(port, t + 20_000, bytes.fromhex("0e 81 80")) == ok(0x0E)
    assert command(port, t + 30_000, b"\x0c") == ok(0x0C, "010000")
    assert command(port, t + 40_000, bytes.fromhex("0e 3f 86")) == ok(0x0E)  # P3 unchanged
    assert command(port, t + 50_000, b"\x0c") == ok(0x0C, "010600")


def test_general_status_lists_targets_and_last_error():
    sim, port, t = fresh()
    command(port, t, b"\x4a\x01\x00")
    assert command(port, t + 20_000, b"\x04") == ok(0x04, "000001" + "01000000" + "00")
    command(port, t + 40_000, b"\x40\x05\x00")  # unknown target: 0x27
    assert command(port, t + 60_000, b"\x04")[1].startswith("d50527")


def test_raw_iso_dep_through_in_communicate_thru():
    """nfcpy's way: no automatic RATS, the host runs ISO-DEP itself; then libnfc's presence
    check (R(NAK)) and a DESELECT."""
    card = cards.normal(CARD)
    sim, port, t = fresh(card)
    assert command(port, t, b"\x12\x00") == ok(0x12)
    assert command(port, t + 20_000, b"\x4a\x01\x00") == ok(0x4A, "01" + tdata(1, card, False))
    # no ISO-DEP session yet: an APDU through InDataExchange reaches the card raw, unanswered
    select = bytes.fromhex("00a4040008a000000632010105")
    assert command(port, t + 40_000, b"\x40\x01" + select, 200_000) == ok(0x40, "01")
    assert command(port, t + 300_000, b"\x42\xe0\x80") == ok(0x42, "00" + card.ats.hex())
    out = command(port, t + 320_000, b"\x42\x02" + select)
    assert out[1].startswith("d5430002") and out[1].endswith("9000")  # I-block, bn 0
    assert command(port, t + 340_000, b"\x42\xb3") == ok(0x42, "00a2")  # R(NAK) -> R(ACK)
    assert command(port, t + 360_000, b"\x42\xb2") == out  # the last block again
    chained = bytes.fromhex("00b0950000")
    assert command(port, t + 380_000, b"\x42\x13" + chained[:2]) == ok(0x42, "00a3")
    out = command(port, t + 400_000, b"\x42\x02" + chained[2:])
    assert out[1].startswith("d5430002") and card.apdus[-1] == chained
    assert command(port, t + 420_000, b"\x42\xc2") == ok(0x42, "00c2")  # S(DESELECT)
    assert card.halted
    assert command(port, t + 440_000, b"\x4a\x01\x00") == ok(0x4A, "00")  # halted: silent


def test_in_communicate_thru_ultralight_read_and_a_silent_classic():
    ul = cards.ultralight()
    sim, port, t = fresh(ul)
    command(port, t, b"\x4a\x01\x00")
    assert command(port, t + 20_000, b"\x42\x30\x00") == ok(0x42, "00" + bytes(16).hex())
    sim, port, t = fresh(cards.classic("12345678"))
    command(port, t, b"\x4a\x01\x00")
    assert command(port, t + 20_000, b"\x42\x30\x04", 200_000) == ok(0x42, "01")


def test_rf_timings_set_how_long_a_silent_card_costs():
    sim, port, t = fresh(cards.classic("12345678"))
    command(port, t, b"\x4a\x01\x00")
    assert command(port, t + 20_000, b"\x42\x30\x04", 40_000) == ["ACK"]  # 51.2 ms default
    assert command(port, t + 100_000, b"\x32\x02\x00\x0b\x05") == ok(0x32)  # 1.6 ms
    assert command(port, t + 120_000, b"\x42\x30\x04", 5_000) == ok(0x42, "01")


def test_in_select_wakes_a_deselected_target():
    card = cards.normal(CARD)
    sim, port, t = fresh(card)
    command(port, t, b"\x4a\x01\x00")
    assert command(port, t + 20_000, b"\x44\x01") == ok(0x44, "00") and card.halted
    assert command(port, t + 40_000, b"\x54\x01") == ok(0x54, "00") and not card.halted
    out = command(port, t + 60_000, bytes.fromhex("40 01 00a4040008a000000632010105"))
    assert out[1].startswith("d54100") and out[1].endswith("9000")
    sim.field.clear()
    assert command(port, t + 100_000, b"\x54\x01", 200_000) == ok(0x54, "01")


def test_initiator_data_selects_one_uid():
    a, b = cards.normal(CARD), cards.tunion("3104000000000002", uid_len=4)
    sim, port, t = fresh(a, b)
    cascade = b"\x88" + a.uid  # a 7-byte UID with its cascade tag
    assert command(port, t, b"\x4a\x01\x00" + cascade) == ok(0x4A, "01" + tdata(1, a))
    assert command(port, t + 20_000, b"\x4a\x02\x00" + b.uid) == ok(0x4A, "01" + tdata(1, b))
    assert command(port, t + 40_000, b"\x4a\x01\x00\x01\x02\x03\x04") == ok(0x4A, "00")


@pytest.mark.parametrize("cmd", [b"\x4a\x01\x00", b"\x60\xff\x01\x10\x20"],
                         ids=["InListPassiveTarget", "InAutoPoll"])
def test_waiting_for_a_card_answers_when_one_comes(cmd):
    card = cards.classic("12345678")
    sim, port = hsu()
    t = normal(port)
    command(port, t, b"\x32\x05\xff\x01\xff")  # the chip's default: retry forever
    assert command(port, t + 20_000, cmd, 500_000) == ["ACK"]
    sim.field.present(card, at_us=t + 600_000)
    out = port.read(t + 700_000, 100)[0]
    want = "01" + ("10%02x" % (len(tdata(1, card)) // 2) if cmd[0] == 0x60 else "")
    assert out.hex().startswith("0000ff") and want + tdata(1, card) in out.hex()


def test_autopoll_reports_two_cards_by_type_and_gives_up_after_its_rounds():
    a, c = cards.normal(CARD), cards.classic("12345678")
    sim, port, t = fresh(a, c)
    out = command(port, t, b"\x60\x01\x01\x10\x20")
    ta, tc = tdata(1, a), tdata(2, c)
    assert out == ok(0x60, "02" + "20%02x" % (len(ta) // 2) + ta + "10%02x" % (len(tc) // 2)
                     + tc)
    sim.field.clear()
    assert command(port, t + 100_000, b"\x60\x02\x02\x10\x20", 1_000_000) == ["ACK"]
    assert command(port, t + 1_200_000, b"\x60\x02\x02\x10\x20", 1_300_000) == ok(0x60, "00")

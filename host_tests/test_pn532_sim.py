"""The simulator's own rules (CPython: it is host-side code): T-Union card APDUs and status
words, MIFARE key rules, I2C ready-byte and NACK re-arm, SPI prefixes, ACK abort, reset line."""

from sim import cards, pn532
from sim.hw import Hardware


def test_tunion_card_files_and_status_words():
    c = cards.concession("3104000000000042", uid_len=4)
    assert c.apdu(bytes.fromhex("00B0950000")) == b"\x69\x85"  # nothing selected yet
    assert c.apdu(bytes.fromhex("00A4040008A00000063201010600")) == b"\x6a\x82"  # other AID
    fci = c.apdu(bytes.fromhex("00A4040008A00000063201010500"))
    assert fci[:2] == b"\x6f\x16" and fci[-2:] == b"\x90\x00" and b"MOT_T_EP" in fci
    f15 = c.apdu(bytes.fromhex("00B095001E"))
    assert len(f15) == 32 and f15[-2:] == b"\x90\x00"
    assert f15[10:20].hex() == "00003104000000000042" and f15[24:28].hex() == "20301231"
    f17 = c.apdu(bytes.fromhex("00B097000F"))
    assert f17[10] == 0x06 and f17[11:15].hex() == "20991231" and f17[4:6].hex() == "1000"
    assert c.apdu(bytes.fromhex("00B0970040"))[-2:] == b"\x62\x82"  # past the end of file
    assert c.apdu(bytes.fromhex("00B0960000")) == b"\x6a\x82"  # no such SFI
    assert c.apdu(bytes.fromhex("805C000204")) == (5000).to_bytes(4, "big") + b"\x90\x00"
    assert c.apdu(bytes.fromhex("00CA000000")) == b"\x6d\x00"
    assert c.apdu(bytes.fromhex("A0B0950000")) == b"\x6e\x00"
    assert cards.foreign().apdu(bytes.fromhex("00A4040008A00000063201010500")) == b"\x6a\x82"


def test_uids_factories_and_phone():
    assert [len(cards.tunion("1", uid_len=n).uid) for n in (4, 7, 10)] == [4, 7, 10]
    assert cards.normal("31").uid == cards.normal("31").uid != cards.normal("32").uid
    p = cards.phone("3104000077777777", seed=1)
    uids = {p.uid for _ in range(5) if p.activate()}
    assert len(uids) == 5 and all(u[0] == 0x08 and len(u) == 4 for u in uids)
    assert cards.expired().files[0x15][24:28].hex() == "20200101"


def test_classic_keys_and_halt():
    c = cards.classic("12345678", uid_len=7)
    key = cards.MIFARE_KEY
    assert c.exchange(b"\x30\x04")[0] == 0x14  # not authenticated
    assert c.exchange(b"\x60\x04" + b"\xff" * 6 + c.uid[-4:])[0] == 0x14 and c.halted
    c.activate()
    assert c.exchange(b"\x60\x04" + key + c.uid[:4])[0] == 0x14  # first 4 UID bytes: wrong
    c.activate()
    assert c.exchange(b"\x60\x04" + key + c.uid[-4:])[0] == 0
    st, block, _ = c.exchange(b"\x30\x04")
    assert st == 0 and block[:5].hex() == "0012345678" and block[5:9].hex() == "20301231"
    assert c.exchange(b"\x30\x08")[0] == 0x14  # other sector


def bus_sim(transport):
    hw = Hardware({"NFC_RESET": 1, "NFC_CS": 2})
    return hw, pn532.install(hw, transport)


def test_i2c_ready_byte_nack_rearm_and_abort():
    hw, sim = bus_sim("i2c")
    dev = hw.i2c[0x24]
    t = 10_000
    assert dev.i2c_write(t, pn532.frame(b"\xd4\x02"))
    assert dev.i2c_read(t, 1) == (b"\x00", 0)  # busy
    t += 1000
    assert dev.i2c_read(t, 1) == (b"\x01", 0)  # ACK ready; a status read does not take it
    assert dev.i2c_read(t, 1) == (b"\x01", 0)
    assert dev.i2c_read(t, 7)[0] == b"\x01" + pn532.ACK
    t += 1000
    first, _ = dev.i2c_read(t, 7)
    assert first == b"\x01" + pn532.frame(b"\xd5\x03\x32\x01\x06\x07")[:6]
    assert dev.i2c_read(t, 1) == (b"\x00", 0)  # consumed
    dev.i2c_write(t, pn532.NACK)
    t += 1000
    full, _ = dev.i2c_read(t, 14)
    assert full == b"\x01" + pn532.frame(b"\xd5\x03\x32\x01\x06\x07")
    # LowVbat: InListPassiveTarget before SAMConfiguration is a syntax error
    dev.i2c_write(t, pn532.frame(b"\xd4\x4a\x01\x00"))
    t += 2000
    assert dev.i2c_read(t, 7)[0][1:] == pn532.ACK
    assert dev.i2c_read(t, 9)[0][1:] == pn532.ERROR_FRAME
    # a host ACK aborts a running command: no response ever comes
    dev.i2c_write(t, pn532.frame(b"\xd4\x14\x01"))
    t += 2000
    dev.i2c_read(t, 7), dev.i2c_read(t, 10)
    sim.retries = 0xFF
    dev.i2c_write(t, pn532.frame(b"\xd4\x4a\x01\x00"))
    t += 1000
    dev.i2c_read(t, 7)
    dev.i2c_write(t, pn532.ACK)
    t += 100_000
    assert dev.i2c_read(t, 1) == (b"\x00", 0)


def test_spi_prefixes_and_reset_line():
    hw, sim = bus_sim("spi")
    dev = hw.spi["NFC_CS"]
    t = 10_000
    # LowVbat: asleep, MISO high; NSS starts the wake-up, and a frame sent meanwhile is lost
    assert dev.spi_xfer(t, b"\x02\x00", True) == b"\xff\xff"
    dev.spi_xfer(t + 100, b"\x01" + pn532.frame(b"\xd4\x02"), True)
    t += 1000
    assert dev.spi_xfer(t, b"\x02\x00", True) == b"\x00\x00" and sim.commands == []
    dev.spi_xfer(t, b"\x01" + pn532.frame(b"\xd4\x02"), True)
    assert dev.spi_xfer(t, b"\x02\x00", True) == b"\x00\x00"
    t += 1000
    assert dev.spi_xfer(t, b"\x02\x00", True)[1] == 1
    assert dev.spi_xfer(t, b"\x03" + bytes(6), True)[1:] == pn532.ACK
    t += 1000
    head = dev.spi_xfer(t, b"\x03" + bytes(6), True)
    rest = dev.spi_xfer(t, bytes(7), False)  # same CS-low transaction goes on
    assert head[1:] + rest == pn532.frame(b"\xd5\x03\x32\x01\x06\x07")
    sim.faults.hang = True
    dev.spi_xfer(t, b"\x01" + pn532.frame(b"\xd4\x02"), True)
    t += 5000
    assert dev.spi_xfer(t, b"\x02\x00", True)[1] == 0  # hung: never ready
    sim.reset_line(t, 0)
    sim.reset_line(t + 10_000, 1)
    t += 20_000
    assert not sim.faults.hang and sim.mode == "lowvbat" and sim.resets == 1
    assert dev.spi_xfer(t, b"\x02\x00", True) == b"\xff\xff"  # asleep again
    t += 1000
    dev.spi_xfer(t, b"\x01" + pn532.frame(b"\xd4\x02"), True)
    t += 1000
    assert dev.spi_xfer(t, b"\x03" + bytes(6), True)[1:] == pn532.ACK

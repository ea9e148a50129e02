"""Talk to the simulated PN532 in bytes, as a host on the wire does (CPython, no reader),
and read back what it sent as a list of frames ("ACK", "NACK" or the hex of TFI + data)."""

from sim import pn532

GFV = pn532.frame(b"\xd4\x02")  # GetFirmwareVersion: 00 00 FF 02 FE D4 02 2A 00
GFV_ANSWER = ["ACK", "d50332010607"]


def parse(data):
    out = []
    i = 0
    while True:
        j = data.find(b"\x00\xff", i)
        if j < 0 or j + 4 > len(data):
            return out
        ln, lcs = data[j + 2], data[j + 3]
        if (ln, lcs) == (0, 0xFF):
            out.append("ACK")
        elif (ln, lcs) == (0xFF, 0):
            out.append("NACK")
        elif (ln + lcs) & 0xFF or j + 4 + ln + 2 > len(data):
            i = j + 1
            continue
        else:
            out.append(data[j + 4:j + 4 + ln].hex())
            i = j + 4 + ln + 2
            continue
        i = j + 4


def hsu(*present):
    """A chip on its own HSU port (no reader), cards in the field from time 0."""
    sim = pn532.PN532Sim("hsu")
    sim.port = pn532.HsuPort(sim)
    for c in present:
        sim.field.present(c, at_us=0)
    return sim, sim.port


def talk(port, t, data, wait_us=60_000):
    """Write `data` at `t`; the frames the chip sent by `t + wait_us`."""
    port.receive(t, data)
    return parse(port.read(t + wait_us, 1 << 16)[0])


def command(port, t, payload, wait_us=60_000):
    return talk(port, t, pn532.frame(b"\xd4" + bytes(payload)), wait_us)


def normal(port, t=10_000):
    """Wake the chip with a long preamble and leave LowVbat (SAMConfiguration, normal mode,
    finite passive-activation retries). Returns a time after all that."""
    assert talk(port, t, bytes(10) + pn532.frame(b"\xd4\x14\x01")) == ["ACK", "d515"]
    assert command(port, t + 100_000, b"\x32\x05\xff\x01\x00") == ["ACK", "d533"]
    return t + 200_000

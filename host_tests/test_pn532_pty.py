"""The simulated PN532 on a pseudo-terminal (`flash.py pn532-pty`) answers real PN532 hosts:
libnfc's nfc-list (connstring pn532_uart:<pty>) lists the virtual cards with their UIDs; the
byte sequences of nfcpy's start-up (a long preamble and no 0x55, SetSerialBaudRate 921600) get
a real chip's answers; nfcpy itself opens the chip, moves it to 921600 and reads a card."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from support.pn532_host import GFV, GFV_ANSWER, parse

from sim import cards, pn532

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pty_sim():
    procs = []

    def start(*specs, trace=False):
        args = [sys.executable, str(ROOT / "flash.py"), "pn532-pty", "--seconds", "60"]
        if trace:
            args.append("--trace")
        for s in specs:
            args += ["--card", s]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
        procs.append(p)
        path = p.stdout.readline().strip()
        assert path.startswith("/dev/"), p.stderr.read()
        return path

    def trace():
        """Stop the last simulator; its trace: [(model µs, "in"|"out", bytes)]."""
        p = procs[-1]
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        out = []
        for line in err.splitlines():
            f = line.split(None, 2)
            if len(f) == 3 and f[0].isdigit() and f[1] in ("in", "out"):
                out.append((int(f[0]), f[1], bytes.fromhex(f[2])))
        return out

    start.trace = trace
    yield start
    for p in procs:
        p.kill()
        p.wait(10)


def nfc_list(path):
    if not shutil.which("nfc-list"):
        pytest.skip("nfc-list not installed (Debian package libnfc-bin; .ci/run installs it)")
    env = dict(os.environ, LIBNFC_DEVICE="pn532_uart:" + path, LIBNFC_LOG_LEVEL="0")
    r = subprocess.run(["nfc-list"], env=env, capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def spaced(uid):
    return "  ".join("%02x" % b for b in uid)


def test_nfc_list_lists_the_virtual_cpu_card(pty_sim):
    path = pty_sim("normal:3104000012345678")
    out = nfc_list(path)
    uid = cards.normal("3104000012345678").uid
    assert "1 ISO14443A passive target(s) found" in out, out
    assert "UID (NFCID1): " + spaced(uid) in out, out
    assert "SAK (SEL_RES): 20" in out and "ATS: 75  77  81  02  80" in out


def test_nfc_list_lists_two_cards(pty_sim):
    path = pty_sim("classic:12345678", "tunion:3104000000000010")
    out = nfc_list(path)
    assert "2 ISO14443A passive target(s) found" in out, out
    assert spaced(cards.classic("12345678").uid) in out
    assert spaced(cards.tunion("3104000000000010").uid) in out


def frames(tty, n, timeout=2.0):
    """The first n frames the chip sends within `timeout` seconds (fewer if it does not); the
    chip answers in ~2 ms of wire time, the rest is the host's scheduling."""
    end = time.monotonic() + timeout
    data = b""
    while len(parse(data)) < n and time.monotonic() < end:
        data += tty.read(tty.in_waiting or 1)
    return parse(data)[:n], data


LONG = bytes(10)  # nfcpy's "long preamble": ten 00 bytes, no 0x55
SAM = bytes.fromhex("0000ff05fbd4140100001700")  # nfcpy's SAMConfiguration
SET_921600 = bytes.fromhex("0000ff03fdd410071500")
SET_115200 = pn532.frame(b"\xd4\x10\x04")


def test_power_on_long_preamble_then_921600(pty_sim):
    """The issue's sequences: after power-on, ten 00 bytes and GetFirmwareVersion get the ACK
    and D5 03 within 100 ms; SetSerialBaudRate 921600 gets ACK and D5 11 at 115200, and once
    the host has ACKed and moved to 921600 the chip answers there (and back again). The
    100 ms are the chip's, from the simulator's trace: the host's scheduling on a loaded
    machine is not the chip's answer time."""
    path = pty_sim("normal:3104000012345678", trace=True)
    with serial.Serial(path, 115200, timeout=0.01) as tty:
        tty.write(LONG + GFV)
        got, raw = frames(tty, 2)
        assert got == GFV_ANSWER
        tty.write(LONG + SAM)
        assert frames(tty, 2)[0] == ["ACK", "d515"]
        tty.write(LONG + SET_921600)
        assert frames(tty, 2)[0] == ["ACK", "d511"]
        tty.write(pn532.ACK)
        tty.flush()
        tty.baudrate = 921600
        time.sleep(0.001)
        tty.write(GFV)
        assert frames(tty, 2)[0] == GFV_ANSWER
        tty.write(SET_115200)
        assert frames(tty, 2)[0] == ["ACK", "d511"]
        tty.write(pn532.ACK)
        tty.flush()
        tty.baudrate = 115200
        time.sleep(0.001)
        tty.write(GFV)
        assert frames(tty, 2)[0] == GFV_ANSWER
    tr = pty_sim.trace()
    t_in = next(t for t, d, b in tr if d == "in" and b.startswith(LONG))
    sent = 0
    for t, d, b in tr:  # the answer's bytes: start + wire time at 115200 (87 µs a byte)
        if d == "out" and t >= t_in:
            sent += len(b)
            if sent >= len(raw):
                break
    assert sent >= len(raw) and t + len(b) * 87 - t_in <= 100_000, (t - t_in, tr[:6])


def test_a_host_left_at_115200_hears_the_new_rate_as_garbage(pty_sim):
    path = pty_sim("none")
    with serial.Serial(path, 115200, timeout=0.01) as tty:
        tty.write(LONG + SAM)
        assert frames(tty, 2)[0] == ["ACK", "d515"]
        tty.write(SET_921600)
        assert frames(tty, 2)[0] == ["ACK", "d511"]
        tty.write(pn532.ACK)
        time.sleep(0.01)
        tty.write(GFV)  # the chip hears it (a pty has no line) and answers at 921600
        end = time.monotonic() + 10  # the first bytes, however busy the host
        while not tty.in_waiting and time.monotonic() < end:
            time.sleep(0.01)
        got, raw = frames(tty, 2, timeout=0.5)
        assert got != GFV_ANSWER and raw  # bytes came, but not frames this host can read


def test_nfcpy_opens_the_chip_moves_it_to_921600_and_reads_a_card(pty_sim):
    """nfcpy 1.0.4's own PN532 driver (its TTY transport on the pty path): the long-preamble
    start-up, SetSerialBaudRate to the fastest speed the port takes, its settings, a 106A
    poll, ISO-DEP run by the host through InCommunicateThru, two APDUs."""
    nfc = pytest.importorskip("nfc", reason="nfcpy not installed (requirements.txt pins it)")
    from nfc.clf import RemoteTarget, transport
    from nfc.clf import pn532 as nfcpy_pn532
    from nfc.tag import activate

    path = pty_sim("normal:3104000012345678")
    tty = transport.TTY(path)
    dev = nfcpy_pn532.init(tty)
    assert tty.baudrate == 921600
    clf = nfc.ContactlessFrontend()
    clf.device = dev
    target = clf.sense(RemoteTarget("106A"))
    assert target.sdd_res == cards.normal("3104000012345678").uid
    tag = activate(clf, target)
    assert type(tag).__name__ == "Type4ATag"
    fci = tag.send_apdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000632010105"))
    assert b"MOT_T_EP" in fci
    f15 = tag.send_apdu(0x00, 0xB0, 0x95, 0x00, mrl=0x1E)
    assert f15[10:20].hex() == "00003104000012345678"
    tty.close()

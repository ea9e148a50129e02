"""The simulated PN532 on a pseudo-terminal (`flash.py pn532-pty`) answers a real PN532 host:
libnfc's nfc-list (connstring pn532_uart:<pty>) lists the virtual cards with their UIDs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim import cards

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pty_sim():
    procs = []

    def start(*specs):
        args = [sys.executable, str(ROOT / "flash.py"), "pn532-pty", "--seconds", "60"]
        for s in specs:
            args += ["--card", s]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
        procs.append(p)
        path = p.stdout.readline().strip()
        assert path.startswith("/dev/"), p.stderr.read()
        return path

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

"""The back office (`flash.py settle`, flashtool/fares/settle.py) and the fare-day scenario
(flashtool/fares/scenario.py): riders enter and leave through emulated fare gates; every TAC
journalled verifies with the issuer's keys, the journalled amounts equal what left the cards,
each fare is the back office's own price, nobody who should pass was refused; a forged TAC, a
half-written purchase and the wrong keys are reported."""

import subprocess
import sys
import zlib

import pytest
from conftest import ROOT

from flashtool.fares import records, scenario
from sim import pboc


def check(facts):
    assert facts["wrongful"] == []
    assert facts["fare_mismatch"] == 0
    assert facts["spent"] == facts["journalled"] > 0
    s = facts["settle"]
    assert s["tac_failures"] == [] and s["incomplete"] == [] and s["bad_records"] == 0
    assert s["purchases"] == sum(n for n, _ in s["by_station"].values())


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    d = tmp_path_factory.mktemp("day")
    rows, facts = scenario.run(40, d, progress=None)
    print("\n".join("%s  %s" % kv for kv in rows))
    return d, facts


def test_fare_day_short(day):
    check(day[1])


@pytest.mark.long
def test_fare_day_2000_riders(tmp_path):
    rows, facts = scenario.run(2000, tmp_path, progress=print)
    print("\n".join("%-70s %s" % kv for kv in rows))
    check(facts)


def settle_cli(*args):
    r = subprocess.run([sys.executable, str(ROOT / "flash.py"), "settle", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def images(d):
    return sorted(d.glob("*/run/flash.img"))


def test_settle_command(day, tmp_path):
    d, facts = day
    keys = tmp_path / "issuer.json"
    keys.write_text(pboc.IssuerKeys.from_seed("fare-day:2024").to_json())
    code, out = settle_cli("--keys", keys, "--image", *images(d))
    assert code == 0, out
    assert "settlement: %d purchases" % facts["settle"]["purchases"] in out
    assert "TAC failures: 0" in out and "%.2f yuan" % (facts["spent"] / 100) in out
    # raw uploads: one purchase's TAC forged (CRC made valid again), one half dropped
    recs = records.from_image(images(d)[1])
    forged = bytearray(next(r for r in recs if r[0] == 0x50))
    forged[20] ^= 0xFF
    forged[28:32] = zlib.crc32(bytes(forged[:28])).to_bytes(4, "little")
    half = next(r for r in recs if r[0] == 0x50 and r != bytes(forged) and
                records.seq(r) != records.seq(forged))
    raw = b"".join(bytes(forged) if records.seq(r) == records.seq(forged) else r
                   for r in recs if records.seq(r) != records.seq(half) + 1)
    (tmp_path / "S104.bin").write_bytes(raw)
    code, out = settle_cli("--keys", keys, "--records", tmp_path / "S104.bin")
    assert code == 1 and "TAC failures: 1" in out and "incomplete purchase records: 1" in out
    other = tmp_path / "other.json"
    other.write_text(pboc.IssuerKeys.from_seed("not-the-issuer").to_json())
    code, out = settle_cli("--keys", other, "--image", images(d)[0])
    assert code == 1 and "settlement: 0 purchases" in out

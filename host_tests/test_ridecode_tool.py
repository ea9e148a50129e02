"""`flash.py codes`: keys, key set, a rider key pair, an RC2 certificate, a dynamic code and its
QR images made by the host tool (as an issuer and an app maker would), then checked by the
reader's verifier on MicroPython; RC1 certificates still come out for the migration."""

import re
import subprocess
import sys

from flashtool import ROOT
from flashtool.codes import issuer as cc


def codes(tmp, *args):
    r = subprocess.run([sys.executable, str(ROOT / "flash.py"), "codes", *args, "--dir",
                        str(tmp / "keys")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_tool_makes_codes_the_reader_accepts(mp, tmp_path):
    now = 1_795_487_847
    codes(tmp_path, "keygen", "--root")
    codes(tmp_path, "keygen", "--id", "3")
    assert (tmp_path / "keys" / "issuer-3.json").stat().st_mode & 0o077 == 0  # private
    codes(tmp_path, "keyset", "--out", str(tmp_path / "ks.bin"), "--serial", "4",
          "--issuer", "3", "--first-day", str(now), "--days", "2")
    codes(tmp_path, "rider-key", "--out", str(tmp_path / "phone.pem"), "--seed", "7")
    assert (tmp_path / "phone.pem").stat().st_mode & 0o077 == 0  # the phone's secret
    codes(tmp_path, "issue", "--id", "3", "--account", "ACC-77", "--category", "6",
          "--valid-from", "20261101", "--valid-to", "20261201", "--rider-key",
          str(tmp_path / "phone.pem"), "--out", str(tmp_path / "c.bin"))
    out = codes(tmp_path, "show", "--cert", str(tmp_path / "c.bin"), "--at", str(now - 3),
                "--counter", "9", "--rider-key", str(tmp_path / "phone.pem"), "--png",
                str(tmp_path / "c.png"), "--svg", str(tmp_path / "c.svg"))
    text = out.splitlines()[0]
    assert text.startswith("RC2:") and re.fullmatch(r"[0-9A-Z $%*+\-./:]+", text)
    assert "QR version 23, level M" in out  # RSA-2048 rider key, the default
    codes(tmp_path, "rider-key", "--out", str(tmp_path / "ec.pem"), "--seed", "7", "--alg",
          "p256")
    codes(tmp_path, "issue", "--id", "3", "--account", "ACC-79", "--rider-key",
          str(tmp_path / "ec.pem"), "--out", str(tmp_path / "e.bin"))
    ec = codes(tmp_path, "show", "--cert", str(tmp_path / "e.bin"), "--at", str(now - 3),
               "--rider-key", str(tmp_path / "ec.pem"), "--png", str(tmp_path / "e.png"))
    assert "QR version 17, level M" in ec
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()
    codes(tmp_path, "issue", "--format", "1", "--id", "3", "--account", "ACC-78",
          "--valid-from", "20261101", "--valid-to", "20261201", "--out", str(tmp_path / "d.bin"))
    old = codes(tmp_path, "show", "--cert", str(tmp_path / "d.bin"), "--at", str(now - 3))
    old = old.splitlines()[0]
    assert old.startswith("RC1:")
    root = cc.load_key(tmp_path / "keys" / "root.json")
    result = mp("""
        import credential
        from ridecode import keyset, verifier
        ks = keyset.load(open(%r, "rb").read(), %d, %d, min_serial=4)
        class Clock:
            def time(self):
                return %d
        c = credential.Credential()
        for rc1 in (False, True):
            v = verifier.Verifier(ks, Clock(), rc1=rc1)
            for t in %r:
                print(v.check(t, len(t), c), c.ident(), c.card_type, c.valid_from, c.valid_to)
    """ % (str(tmp_path / "ks.bin"), root["n"], root["e"], now, [text.encode(), old.encode()]))
    assert result.splitlines() == [
        "0 b'ACC-77' 6 20261101 20261201", "12 b'' 0 0 0",  # RC1 refused by default
        "0 b'ACC-77' 6 20261101 20261201", "0 b'ACC-78' 1 20261101 20261201"]

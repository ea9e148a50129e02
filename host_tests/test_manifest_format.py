"""The signed-manifest format: what the host signs, the reader (MicroPython, compiled .mpy)
accepts, and each TUF-style attack is refused with its own code, on both interpreters."""

import json
import time

import pytest
from test_ota_kit import keys  # noqa: F401  (fixture)

from flashtool.release.keys import load_private
from flashtool.release.sign import body, sign_body, sm

SHA = "ab" * 32


def _keys(d):
    out = {}
    for role in ("app", "list"):
        kid, key = sm.load_key((d / (role + ".pub")).read_text())
        out[kid] = key
    return out


def cases(d):
    """(name, manifest bytes, expected code or None) for one trusted key set in d."""
    app, lst, evil = (load_private(d / "app.pem"), load_private(d / "list.pem"),
                      load_private(d / "evil" / "app.pem"))
    now = int(time.time())
    files = [["app.mpy", 10, SHA]]
    good = sign_body(body("app", 5, files, counter=2, now=now), app)
    tampered = bytearray(good)
    tampered[-5] ^= 1
    header_only = good[:good.index(b"\n") + 1]
    return [
        ("good", good, None),
        ("good list", sign_body(body("list", 9, [], now=now), lst), None),
        ("bad signature", bytes(tampered), sm.E_SIGNATURE),
        ("wrong key", sign_body(body("app", 5, files, now=now), evil), sm.E_KEY),
        ("list key signs code", sign_body(body("app", 5, files, now=now), lst), sm.E_KEY),
        ("expired", sign_body(body("app", 5, files, now=now - 40 * 86400), app), sm.E_EXPIRED),
        ("wrong board", sign_body(body("app", 5, files, board="esp32s3", now=now), app),
         sm.E_BOARD),
        ("wrong kind", sign_body(body("config", 5, [], now=now), app), sm.E_KIND),
        ("oversize", good + b" " * sm.MAX_MANIFEST, sm.E_LENGTH),
        ("no header", good[4:], sm.E_FORMAT),
        ("empty body", header_only, sm.E_FORMAT),
        ("path escape", sign_body(body("app", 5, [["../x", 1, SHA]], now=now), app),
         sm.E_FORMAT),
        ("fast-forward", sign_body(body("app", 2**40, files, now=now), app), sm.E_FORMAT),
    ]


def expected_kind(name):
    return "list" if name == "good list" else "app"


def test_cpython_verdicts(keys):  # noqa: F811
    ks = _keys(keys)
    for name, data, code in cases(keys):
        kind = expected_kind(name)
        if code is None:
            m = sm.verify(data, ks, kind, "host", floor=int(time.time()))
            assert m.kind == kind
            continue
        with pytest.raises(sm.ManifestError) as e:
            sm.verify(data, ks, kind, "host", floor=int(time.time()))
        assert e.value.code == code, name


def test_micropython_verdicts_match(keys, mp, tmp_path):  # noqa: F811
    """The compiled reader code gives the same verdict for every case."""
    expect = {}
    for i, (name, data, code) in enumerate(cases(keys)):
        (tmp_path / ("m%d.sm" % i)).write_bytes(data)
        expect[i] = (name, code)
    kinds = {i: expected_kind(n) for i, (n, _) in expect.items()}
    out = mp("""
        import signedmanifest as sm
        keys = {}
        for role in ("app", "list"):
            kid, k = sm.load_key(open("%s/" + role + ".pub").read())
            keys[kid] = k
        kinds = %r
        for i in range(%d):
            data = open("%s/m%%d.sm" %% i, "rb").read()
            try:
                m = sm.verify(data, keys, kinds[i], "host", floor=%d)
                print("V", i, 0, m.version)
            except sm.ManifestError as e:
                print("V", i, e.code, e)
    """ % (keys, kinds, len(expect), tmp_path, int(time.time())))
    got = {int(p[1]): int(p[2]) for p in (ln.split() for ln in out.splitlines()) if p[0] == "V"}
    assert got == {i: (c or 0) for i, (_, c) in expect.items()}, out


def test_rollback_and_counter_rules(keys):  # noqa: F811
    ks = _keys(keys)
    app = load_private(keys / "app.pem")
    m = sm.verify(sign_body(body("app", 5, [], counter=2), app), ks, "app", "host")
    m.check_newer(4, 2)  # newer version, same counter: fine
    m.check_newer(5, 2, allow_same=True)
    for version, counter in ((5, 2), (6, 0), (4, 3)):  # replay, older, counter below floor
        with pytest.raises(sm.ManifestError) as e:
            m.check_newer(version, counter)
        assert e.value.code == sm.E_ROLLBACK


def test_file_check_refuses_endless_and_foreign_data():
    import hashlib

    data = b"x" * 100
    entry = ("a.mpy", 100, hashlib.sha256(data).hexdigest())
    c = sm.FileCheck(entry)
    c.update(data)
    c.finish()
    c = sm.FileCheck(entry)
    c.update(data)
    with pytest.raises(sm.ManifestError) as e:
        c.update(b"y")  # one byte past the signed size
    assert e.value.code == sm.E_LENGTH
    c = sm.FileCheck(entry)
    c.update(b"z" * 100)  # same size, another release's bytes
    with pytest.raises(sm.ManifestError) as e:
        c.finish()
    assert e.value.code == sm.E_HASH
    c = sm.FileCheck(entry)
    c.update(data, 50)
    with pytest.raises(sm.ManifestError) as e:
        c.finish()  # truncated
    assert e.value.code == sm.E_LENGTH


def test_signed_bytes_are_the_body(keys):  # noqa: F811
    app = load_private(keys / "app.pem")
    data = sign_body(body("app", 1, []), app)
    head, raw = data.split(b"\n", 1)
    assert json.loads(raw)["version"] == 1
    assert len(head) == 4 + 16 + 1 + 512

"""`flash.py deploy` end to end: the emulated reader's REPL on a pty, mpremote's raw REPL
without a soft reset (`resume`), the files land in the emulated flash's LittleFS, and the
reader then boots the deployed app with the deployed config and keys."""

import json

import pytest
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    publish_app,
    tagged_app,
)

from flashtool.release.deploy import deploy
from flashtool.release.keys import load_private
from flashtool.release.sign import sign_body


@pytest.fixture
def port(ota_reader):  # noqa: F811
    pytest.importorskip("mpremote")
    from sim.repl import ReplPort

    p = ReplPort(ota_reader)
    yield p.start()
    p.stop()


def test_deploy_then_boot(ota_reader, port, tmp_path, keys):  # noqa: F811
    pub = tmp_path / "pub"
    publish_app(pub, 4, keys / "app.pem", tmp_path / "b4", tagged_app("v4"))
    cfg = tmp_path / "site.json"
    cfg.write_text(json.dumps({"station_id": 31, "reader_id": "G31-07"}))
    kd = tmp_path / "trust"
    kd.mkdir()
    for role in ("app", "list"):
        (kd / (role + ".pub")).write_bytes((keys / (role + ".pub")).read_bytes())
    lines = []
    version, total = deploy(port, pub, cfg, kd, progress=lines.append)
    assert version == 4 and total > 10000
    assert lines[-1].startswith("[") and "/boot.json" in lines[-1] and "100%" in lines[-1]
    ota_reader.stop()
    ota_reader.reboot()
    ota_reader.wait_for(lambda ln: " boot app slot=a pending=0" in ln)
    ota_reader.wait_for(lambda ln: ln == "APP v4")
    ota_reader.stop()


def test_deploy_refuses_a_bundle_it_cannot_trust(tmp_path, keys):  # noqa: F811
    from flashtool.release.deploy import plan
    from flashtool.release.sign import sm

    pub = tmp_path / "pub"
    publish_app(pub, 4, keys / "app.pem", tmp_path / "b4", tagged_app("v4"))
    kd = tmp_path / "trust"
    kd.mkdir()
    (kd / "app.pub").write_bytes((keys / "evil" / "app.pub").read_bytes())
    with pytest.raises(sm.ManifestError) as e:
        plan(pub, None, kd)
    assert e.value.code == sm.E_KEY
    raw = (pub / "app.sm").read_bytes().split(b"\n", 1)[1]
    b = json.loads(raw)
    b["files"][0][2] = "00" * 32  # a file the bundle does not hold
    (pub / "app.sm").write_bytes(sign_body(b, load_private(keys / "app.pem")))
    with pytest.raises(FileNotFoundError):
        plan(pub, None, keys)


def test_deploy_puts_the_reader_upload_key_and_checks_it(tmp_path):
    """flash.py keygen --reader's copy goes to /keys/upload.key; a key of another reader than
    the config names, or a malformed one, is refused before anything is copied."""
    from flashtool.release.deploy import plan
    from flashtool.server import keys as ring

    kid, key, path = ring.issue(tmp_path / "readers.json", "G07", out=tmp_path / "readers")
    cfg = tmp_path / "g07.json"
    cfg.write_text(json.dumps({"reader_id": "G07"}))
    files, _ = plan(config=cfg, upload_key=path)
    assert ("/keys/upload.key", path.read_bytes()) in files
    assert json.loads(path.read_text()) == {"reader": "G07", "kid": kid, "key": key.hex()}
    cfg.write_text(json.dumps({"reader_id": "G08"}))
    with pytest.raises(ValueError):
        plan(config=cfg, upload_key=path)
    bad = tmp_path / "bad.key"
    bad.write_text(json.dumps({"reader": "G07", "kid": 1, "key": "00" * 16}))
    with pytest.raises(ValueError):
        plan(upload_key=bad)

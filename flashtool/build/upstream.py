"""MicroPython and micropython-lib at the pinned versions, as one source tree: the interpreters
this project builds (32-bit unix, QEMU) and the manifest evaluator come from it.

Where the trees come from, first match wins:
1. `MICROPY_SRC`: a MicroPython checkout of your own (used in place, never modified), with
   micropython-lib in its `lib/micropython-lib` or at `MICROPY_LIB_SRC`;
2. the two tarballs in `../shared/vendor` (or `MICROPY_VENDOR`), checked against their SHA-256;
3. a shallow `git clone` of tag v1.28.0 and of micropython-lib at the commit v1.28.0 pins.
Cases 2 and 3 extract into build/micropython/src/ (ignored; never committed).
"""

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from flashtool import ROOT

MICROPY_TAG = "v1.28.0"
MICROPY_LIB_COMMIT = "8380c7bb8f9e5e5260e9539156742925e00366b2"
MICROPY_URL = "https://github.com/micropython/micropython"
MICROPY_LIB_URL = "https://github.com/micropython/micropython-lib"
TARBALLS = (
    ("micropython-1.28.0.tar.gz",
     "06d7683f20e38ab5508bed0ea865b03e781a62be592c7cd69499ea0ba6c3138a"),
    ("micropython-lib-8380c7bb.tar.gz",
     "8084b8e6837a7a034b0fd065bd64a1f838ad17a85c80ce427153d69f717bc59d"),
)
WORK = ROOT / "build" / "micropython"
SRC = WORK / "src"
PIN = "%s+lib-%s" % (MICROPY_TAG, MICROPY_LIB_COMMIT[:12])


class SourceError(SystemExit):
    """No source tree could be found, checked or fetched (the message says what to do)."""


def _vendor_dirs():
    """The vendor folder beside this checkout; for a git worktree also the one beside the main
    checkout (worktrees live elsewhere but share its .git)."""
    if os.environ.get("MICROPY_VENDOR"):
        yield Path(os.environ["MICROPY_VENDOR"])
    yield ROOT.parent / "shared" / "vendor"
    try:
        common = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        yield (ROOT / common).resolve().parent.parent / "shared" / "vendor"
    except (OSError, subprocess.CalledProcessError):
        pass


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tarballs():
    for d in _vendor_dirs():
        paths = [d / name for name, _ in TARBALLS]
        if all(p.exists() for p in paths):
            for p, (_, sha) in zip(paths, TARBALLS):
                got = _sha256(p)
                if got != sha:
                    raise SourceError("%s: sha256 %s, expected %s (a different or damaged "
                                      "download; replace it or unset MICROPY_VENDOR)"
                                      % (p, got, sha))
            return paths
    return None


def _extract(tarball, dest):
    """Extract the single top-level folder of a tarball to dest."""
    with tarfile.open(tarball) as tf:
        top = {m.name.split("/", 1)[0] for m in tf.getmembers()}
        if len(top) != 1:
            raise SourceError("%s: expected one top-level folder, found %s" % (tarball, top))
        tf.extractall(dest.parent, filter="tar")
    (dest.parent / top.pop()).rename(dest)


def _git(*args, cwd=None):
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SourceError("git %s failed:\n%s\nWithout network access, put the tarballs of "
                          "../shared/vendor beside this checkout or set MICROPY_SRC."
                          % (" ".join(args), r.stderr.strip()))


def _clone(dest):
    _git("clone", "--quiet", "--depth", "1", "--branch", MICROPY_TAG, MICROPY_URL, str(dest))
    lib = dest / "lib" / "micropython-lib"
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    _git("init", "--quiet", cwd=lib)
    _git("fetch", "--quiet", "--depth", "1", MICROPY_LIB_URL, MICROPY_LIB_COMMIT, cwd=lib)
    _git("checkout", "--quiet", "FETCH_HEAD", cwd=lib)


def _check(tree):
    lib = Path(os.environ.get("MICROPY_LIB_SRC") or tree / "lib" / "micropython-lib")
    for need in (tree / "py" / "mkrules.mk", tree / "tools" / "manifestfile.py",
                 lib / "python-stdlib"):
        if not need.exists():
            raise SourceError("%s is not a MicroPython %s source tree with micropython-lib "
                              "(missing %s)" % (tree, MICROPY_TAG, need))
    return tree


def lib_dir(tree):
    return Path(os.environ.get("MICROPY_LIB_SRC") or tree / "lib" / "micropython-lib")


def source():
    """The MicroPython source tree (with micropython-lib), fetched or extracted once."""
    if os.environ.get("MICROPY_SRC"):
        return _check(Path(os.environ["MICROPY_SRC"]).resolve())
    stamp = SRC / ".pin"
    if stamp.exists() and stamp.read_text() == PIN:
        return SRC
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = WORK / (".src-%d" % os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        tree = tmp / "micropython"
        balls = _tarballs()
        if balls:
            _extract(balls[0], tree)
            lib = tree / "lib" / "micropython-lib"
            shutil.rmtree(lib, ignore_errors=True)  # an empty submodule folder in the tarball
            _extract(balls[1], lib)
        else:
            _clone(tree)
        (tree / ".pin").write_text(PIN)
        if SRC.exists():
            shutil.rmtree(SRC)
        try:
            tree.rename(SRC)
        except OSError:  # another process got there first with the same pin
            if not (stamp.exists() and stamp.read_text() == PIN):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _check(SRC)

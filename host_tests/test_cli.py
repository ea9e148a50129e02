"""flash.py as a user meets it: outside the virtualenv it says what to do; inside, every verb
registered in flashtool.verbs answers --help."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from flashtool.verbs import VERBS


def test_outside_the_virtualenv_it_says_what_to_do(tmp_path):
    """A fresh clone has no .venv: a message naming `make build` and exit 2, no traceback
    (rich and the other pinned packages are not importable there)."""
    shutil.copy(ROOT / "flash.py", tmp_path / "flash.py")
    r = subprocess.run([sys.executable, "-I", str(tmp_path / "flash.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "make build" in r.stderr and ".venv" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_another_python_is_handed_to_the_virtualenv(tmp_path):
    """Started with an interpreter other than the clone's .venv one, flash.py re-executes itself
    there with the same arguments (a stand-in .venv/bin/python records the call)."""
    shutil.copy(ROOT / "flash.py", tmp_path / "flash.py")
    exe = tmp_path / ".venv" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text('#!/bin/sh\necho "re-executed: $*"\n')
    exe.chmod(0o755)
    r = subprocess.run([sys.executable, "-I", str(tmp_path / "flash.py"), "bench", "--quick"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "re-executed: %s bench --quick" % (tmp_path / "flash.py")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_explains_itself(verb):
    r = subprocess.run([sys.executable, str(ROOT / "flash.py"), verb.replace("_", "-"),
                        "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "usage: flash.py " + verb.replace("_", "-") in r.stdout

#!/usr/bin/env python3
"""Host CLI for the reader: build, deploy, lists, ride codes, bundles, serve, emulate, bench.

Each subcommand is a module of flashtool/verbs/, registered in flashtool.verbs.VERBS. The tools
run in the project's virtualenv (.venv, made by `make build` from the pinned requirements);
started with another Python, flash.py re-executes itself there.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
SETUP = "run `make build` in %s first: it creates .venv with the pinned requirements" % ROOT


def _in_venv():
    return Path(sys.prefix).resolve() == VENV.resolve()


def _venv_python():
    """The project's interpreter: re-executing into it keeps every dependency pinned."""
    exe = VENV / "bin" / "python"
    return exe if exe.exists() else None


def main(argv=None):
    if not _in_venv():
        exe = _venv_python()
        if exe is None:
            print("flash.py: no project virtualenv (.venv); " + SETUP, file=sys.stderr)
            return 2
        os.execv(str(exe), [str(exe), str(Path(__file__).resolve())] + sys.argv[1:])
    sys.path[:0] = [str(ROOT), str(ROOT / "boards" / "host")]
    try:
        from flashtool import cli
    except ImportError as e:
        print("flash.py: %s; the virtualenv is incomplete: %s" % (e, SETUP), file=sys.stderr)
        return 2
    return cli.main(argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Host CLI for the reader: build, deploy, lists, ride codes, bundles, serve, emulate, bench.

Each subcommand lives in flashtool/cmd_<name>.py and registers itself.
"""

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "boards" / "host")]


def main(argv=None):
    import flashtool

    p = argparse.ArgumentParser(prog="flash.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for mod in sorted(m.name for m in pkgutil.iter_modules(flashtool.__path__)):
        if mod.startswith("cmd_"):
            importlib.import_module("flashtool." + mod).register(sub)
    args = p.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())

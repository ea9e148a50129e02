"""The flash.py command line: one subcommand per module of flashtool.verbs."""

import argparse
import importlib

from flashtool.verbs import VERBS


def main(argv=None, description=None):
    p = argparse.ArgumentParser(prog="flash.py", description=description)
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module("flashtool.verbs." + verb).register(sub)
    args = p.parse_args(argv)
    return args.func(args) or 0

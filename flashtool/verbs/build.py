"""`flash.py build --board NAME`: compile what the board's manifest freezes with mpy-cross into
build/NAME/ (one .mpy per module) and print a size report."""

from flashtool.build.mpy import build


def register(sub):
    p = sub.add_parser("build", help="compile firmware + lib for a board with mpy-cross")
    p.add_argument("--board", default="host")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=lambda a: build(a.board, a.quiet) and 0)

"""`flash.py bench AREA|all`: benchmarks that print figures (flashtool/bench/)."""

from flashtool.bench import run


def register(sub):
    p = sub.add_parser("bench", help="run benchmarks and print figures")
    p.add_argument("area", nargs="?", default="all")
    p.add_argument("--quick", action="store_true", help="smaller counts (CI smoke run)")
    p.set_defaults(func=run)

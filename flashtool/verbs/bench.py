"""`flash.py bench AREA|all`: benchmarks that print figures (flashtool/bench/)."""

from flashtool.bench import run


def register(sub):
    p = sub.add_parser("bench", help="run benchmarks and print figures")
    p.add_argument("area", nargs="?", default="all")
    p.add_argument("--quick", action="store_true", help="smaller counts (CI smoke run)")
    p.add_argument("--scale", choices=("quick", "full", "seed"),
                   help="blocklist: list size (seed: 15 M + 1 M entries, minutes)")
    p.add_argument("--key-seed", type=int, default=17,
                   help="blocklist: seed of the list hash key (same lists every run)")
    p.set_defaults(func=run)

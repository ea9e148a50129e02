"""`flash.py bench AREA|all`: benchmarks that print figures (never timed pass/fail tests).

Each area is flashtool/bench_<area>.py with `run(args)`. ESP32 estimates follow the project
rule: host MicroPython CPU time x 50 (x 200 for big-integer arithmetic) plus modelled wire/RF
time.
"""

import importlib
import pkgutil

import flashtool

CPU_FACTOR = 50
BIGINT_FACTOR = 200


def areas():
    return sorted(m.name[6:] for m in pkgutil.iter_modules(flashtool.__path__)
                  if m.name.startswith("bench_"))


def run(args):
    names = areas() if args.area == "all" else [args.area]
    for name in names:
        if name not in areas():
            raise SystemExit("no benchmark %r (have: %s)" % (name, ", ".join(areas())))
        print("== bench %s ==" % name)
        importlib.import_module("flashtool.bench_" + name).run(args)


def register(sub):
    p = sub.add_parser("bench", help="run benchmarks and print figures")
    p.add_argument("area", nargs="?", default="all")
    p.add_argument("--quick", action="store_true", help="smaller counts (CI smoke run)")
    p.set_defaults(func=run)

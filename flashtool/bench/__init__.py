"""Benchmarks that print figures (never timed pass/fail tests), one module per area with
`run(args)`, run by `flash.py bench AREA|all`.

ESP32 estimates follow the project rule: host MicroPython CPU time x 50 (x 200 for big-integer
arithmetic) plus modelled wire/RF time. Every area imports these factors from here, so a
calibration replaces them in one place.
"""

import importlib
import pkgutil

CPU_FACTOR = 50
BIGINT_FACTOR = 200


def areas():
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def run(args):
    names = areas() if args.area == "all" else [args.area]
    for name in names:
        if name not in areas():
            raise SystemExit("no benchmark %r (have: %s)" % (name, ", ".join(areas())))
        print("== bench %s ==" % name)
        importlib.import_module("flashtool.bench." + name).run(args)

"""Benchmarks that print figures (never timed pass/fail tests), one module per area with
`run(args)`, run by `flash.py bench AREA|all`.

`device` counts executed instructions on the QEMU Cortex-M3 build and converts them with a
calibration (docs/device-figures.md). The other areas' ESP32 estimates follow the old rule,
kept for comparison: host MicroPython CPU time x 50 (x 200 for big-integer arithmetic) plus
modelled wire/RF time; every area imports these factors from here.
"""

import importlib
import pkgutil

CPU_FACTOR = 50
BIGINT_FACTOR = 200
# ESP32 ns per instruction counted on the QEMU Cortex-M3 build: the calibration's median
# (docs/device-figures.md; `bench device` computes it afresh, the same on every run)
NS_PER_INSTR = 15.9


def areas():
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def run(args):
    names = areas() if args.area == "all" else [args.area]
    for name in names:
        if name not in areas():
            raise SystemExit("no benchmark %r (have: %s)" % (name, ", ".join(areas())))
        print("== bench %s ==" % name)
        importlib.import_module("flashtool.bench." + name).run(args)

"""Host-side tooling behind flash.py (CPython only).

The CLI verbs are in `verbs/`, one module each, registered in `verbs.VERBS`; the work behind them
is grouped by job: `build` (manifests, mpy-cross), `release` (signing keys, signed manifests,
app bundles, USB deploy), `lists` (blocklist images), `codes` (ride-code issuing), `server` (the
station server), `emulator` (the emulated station, scenarios, dashboard, reports, the PN532 on a
pty) and `bench` (benchmarks that print figures).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_lib(*names):
    """Import these portable lib packages from lib/ as the reader does: the host signs and
    builds with the very bytes the gate checks with, not a copy."""
    for name in names:
        p = str(ROOT / "lib" / name)
        if p not in sys.path:
            sys.path.insert(0, p)


def use_host_board():
    """The emulated board's simulators (`sim`), CPython side."""
    p = str(ROOT / "boards" / "host")
    if p not in sys.path:
        sys.path.insert(0, p)

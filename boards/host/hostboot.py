"""The emulated reader's ROM and _boot.py: power on, bootloader, mount, then the firmware.

A power cut, a watchdog expiry or machine.reset() ends the process with an exit code the host
runner (boards/host/sim/runner.py) turns into the matching reboot.
"""

import sys

import board

EXIT_POWER_CUT = 3
EXIT_WATCHDOG = 4


def run():
    try:
        board.power_on()
        # the compiled firmware mounted at /frozen, or (unix32) frozen into the interpreter
        sys.path[:] = ["/frozen", ".frozen"] if board.settings.get("frozen") else [".frozen"]
        extra = board.settings.get("extra_path")
        if extra:
            board.mount_extra(extra)
            sys.path.insert(0, "/extra")
        __import__(board.settings.get("entry", "main")).run()
    except board.PowerCut:
        sys.exit(EXIT_POWER_CUT)
    except board.WatchdogReset:
        sys.exit(EXIT_WATCHDOG)


run()

"""`flash.py emulate`: the emulated reader with a dashboard, a script of actions, or a
replayed scenario (flashtool/emulator/)."""

from flashtool.emulator.scenarios import NAMES


def run(args):
    from flashtool.emulator import console  # the station, simulators and dashboard: heavy

    return console.run(args)


def register(sub):
    p = sub.add_parser("emulate", help="the emulated reader: dashboard, scripts, scenarios")
    p.add_argument("--dir", default="var/emulator", help="station directory (keys, flash image)")
    p.add_argument("--nfc", default="hsu", choices=("hsu", "i2c", "spi"))
    p.add_argument("--fresh", action="store_true", help="start from a blank flash image")
    p.add_argument("--health-off", action="store_true", help="run with the health rule off")
    p.add_argument("--script", help="commands separated by ';' (card NAME, code KIND, ...)")
    p.add_argument("--scenario", choices=NAMES + ("fare-day",))
    p.add_argument("--riders", type=int, default=2000)
    p.add_argument("--report", help="write a self-contained HTML report here")
    p.set_defaults(func=run)

"""The emulated reader at a terminal (`flash.py emulate`): a dashboard, a script, or a replayed
scenario.

Interactive (the default): boots the reader (MicroPython binary, compiled .mpy, emulated board)
in real time with a demo station generated on first run, and shows the gate and the reader on a
dashboard; keys present cards and codes, cut the power, switch lane modes, push a list.
`--script "normal; wait 1; code valid"` runs the same actions without a terminal and prints the
final dashboard. `--scenario rush-hour` replays generated peak traffic in accelerated time and
prints a summary; `--report out.html` adds a self-contained report with plots.
"""

import os
import select
import sys
import termios
import time
import tty

from rich.console import Console
from rich.live import Live

from flashtool.emulator import dashboard
from flashtool.emulator.station import CARDS, CODES, Station

KEYS = [
    ("1", "card normal"), ("2", "card health-hold"), ("3", "card no-health-info"),
    ("4", "card lost"), ("5", "card expired"), ("6", "card concession"), ("7", "card phone"),
    ("8", "card mifare"), ("9", "card clash"), ("0", "card clone"), ("-", "card low-balance"),
    ("=", "card pulled"),
    ("q", "code valid"), ("w", "code expired"), ("e", "code forged"), ("r", "code replayed"),
    ("t", "code screenshot"),
    ("n", "mode normal"), ("m", "mode manual"), ("g", "mode emergency"), ("c", "mode closed"),
    ("p", "power-cut"), ("s", "server"), ("l", "push-list"), ("x", "quit"),
]
HELP = "  ".join("[b]%s[/b] %s" % (k, a) for k, a in KEYS)


def act(station, command):
    """Run one dashboard command; returns a status line."""
    words = command.split()
    if not words:
        return ""
    verb, arg = words[0], (words[1] if len(words) > 1 else "")
    if verb == "card" and (arg in CARDS or arg == "clash"):
        station.present(arg)
        return "presented card %s" % arg
    if verb == "code" and arg in CODES:
        station.show(arg)
        return "showed code %s" % arg
    if verb == "mode" and arg in ("normal", "manual", "emergency", "closed"):
        station.mode(arg)
        return "maintenance: mode %s" % arg
    if verb == "power-cut":
        station.power_cut_and_reboot()
        return "power cut; rebooted"
    if verb == "server":
        if station.server is None:
            return "update server on %s" % station.start_server()
        station.stop_server()
        return "update server stopped (the reader keeps deciding offline)"
    if verb == "push-list":
        station.push_list()
        how = "published on the update server" if station.server else "installed by the crew"
        return "list seq %d %s" % (station.list_seq, how)
    if verb == "wait":
        time.sleep(float(arg or 1))
        return ""
    raise SystemExit("unknown command %r (cards: %s; codes: %s)" % (
        command, ", ".join(list(CARDS) + ["clash"]), ", ".join(CODES)))


def boot(args):
    st = Station(args.dir, nfc=args.nfc, accelerated=False, fresh=args.fresh,
                 health_rule=not args.health_off)
    state = dashboard.LogState()
    st.reader.listeners.append(state.feed)
    st.start_server()
    st.provision()
    st.start()
    return st, state


def interactive(args):
    console = Console()
    console.print("booting the emulated reader (demo keys and lists under %s) ..." % args.dir)
    st, state = boot(args)
    status = "ready: press a key"
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        with Live(console=console, refresh_per_second=8, screen=True) as live:
            while True:
                live.update(dashboard.render(st.hw, state, HELP, status))
                r, _, _ = select.select([sys.stdin], [], [], 0.12)
                if not r:
                    continue
                key = os.read(fd, 1).decode(errors="ignore")
                cmd = dict(KEYS).get(key)
                if cmd == "quit":
                    break
                if cmd:
                    status = "%s  %s" % (time.strftime("%H:%M:%S"), act(st, cmd))
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        st.close()


def scripted(args):
    st, state = boot(args)
    try:
        for command in args.script.split(";"):
            status = act(st, command.strip())
            if status:
                time.sleep(1.5)  # let the tap finish before the next rider
        time.sleep(0.5)
        Console(width=110).print(dashboard.render(st.hw, state, status=status))
    finally:
        st.close()


def run(args):
    if args.scenario == "fare-day":
        from flashtool.fares import scenario

        return scenario.main(args)
    if args.scenario:
        from flashtool.emulator import scenario_run

        return scenario_run.main(args)
    if args.script:
        return scripted(args)
    if not sys.stdin.isatty():
        raise SystemExit("no terminal: use --script '...' or --scenario NAME")
    return interactive(args)

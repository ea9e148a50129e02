"""The emulator's terminal dashboard: the gate as a rider and a crew member would see it.

State comes from two places only: the simulated hardware (display text, LEDs, buzzer, lock,
passage sensor) and the firmware's structured log lines (`L ms tag event k=v ...`), so the
dashboard shows what the reader really did, nothing the emulator made up.
"""

import time
from collections import deque

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def parse(line):
    """`I 1234 gate verdict seq=3 verdict=PASS` -> ("I", 1234, "gate", "verdict", {...})."""
    parts = line.split()
    if len(parts) < 4 or parts[0] not in ("D", "I", "W", "E") or not parts[1].isdigit():
        return None
    kv = {}
    for p in parts[4:]:
        k, eq, v = p.partition("=")
        if eq:
            kv[k] = v
    return parts[0], int(parts[1]), parts[2], parts[3], kv


KINDS = {"0": "-", "1": "card", "2": "phone", "3": "mifare", "4": "code"}


class LogState:
    """Folds log lines into what the dashboard shows: the reader's facts (latest wins), the
    recent verdicts, and warnings."""

    def __init__(self):
        self.facts = {"mode": "?", "station": "?", "reader": "?", "dir": ""}
        self.list = {}
        self.journal = {}
        self.sync = {}
        self.fares = {}  # PSAM terminal and rate, fare table version
        self.verdicts = deque(maxlen=12)
        self.events = deque(maxlen=8)
        self.lines = 0

    def feed(self, line):
        self.lines += 1
        p = parse(line)
        if p is None:
            if line.strip():
                self.events.append(line.strip()[:100])
            return
        level, ms, tag, event, kv = p
        for k in ("mode", "station", "reader", "dir"):
            if k in kv:
                self.facts[k] = kv[k]
        if event == "verdict":
            self.verdicts.appendleft((time.strftime("%H:%M:%S"), kv))
            self.journal["seq"] = kv.get("seq")
        elif tag == "fare" and event == "psam" or (tag == "app" and event == "fares"):
            self.fares.update(kv)
        elif event == "ready":
            self.journal.update(seq=kv.get("journal"), backlog=kv.get("backlog"))
        elif event in ("lists", "list") or tag in ("list", "blocklist"):
            self.list.update(kv)
            self.list["event"] = event
        if "backlog" in kv:
            self.journal["backlog"] = kv["backlog"]
        if tag == "sync":
            self.sync.update(kv)
            self.sync["event"] = event
        if level in ("W", "E"):
            self.events.append("%s %s %s %s" % (level, tag, event, " ".join(
                "%s=%s" % i for i in kv.items()))[:100])


def _yuan(fen):
    """'400' -> '4.00' (a purchase's fare or balance from the log), '' when none."""
    if fen is None or fen.lstrip("-") == "" or not fen.lstrip("-").isdigit():
        return ""
    v = int(fen)
    return "%s%d.%02d" % ("-" if v < 0 else "", abs(v) // 100, abs(v) % 100)


def _lamp(on, color):
    return Text("●" if on else "○", style=color if on else "grey50")


def render(hw, state, help_text="", status=""):
    with hw.lock:
        levels = dict(hw.levels)
        inputs = dict(hw.inputs)
        zh, en = hw.display
    gate = Table.grid(padding=(0, 2))
    gate.add_row("display", Text(zh or "—", style="bold"), Text(en or "", style="italic"))
    lamps = Text.assemble(_lamp(levels.get("LED_GREEN"), "green"), " green  ",
                          _lamp(levels.get("LED_RED"), "red"), " red  ",
                          _lamp(levels.get("BUZZER"), "yellow"), " buzzer")
    gate.add_row("lights", lamps, "")
    lock = Text("OPEN", style="bold green") if levels.get("GATE_LOCK") else Text("closed")
    gate.add_row("lock", lock, "passage: %s" % ("rider" if inputs.get("PASSAGE") else "clear"))

    f = state.facts
    lst, jr, sync = state.list, state.journal, state.sync
    reader = Table.grid(padding=(0, 2))
    reader.add_row("lane mode", Text(f["mode"], style="bold"))
    reader.add_row("station / reader", "%s / %s  %s" % (f["station"], f["reader"], f["dir"]))
    state_ = "STALE" if lst.get("stale") == "1" else (
        "active" if lst.get("active") == "1" else "none")
    reader.add_row("list", "seq %s  %s" % (lst.get("seq", "-"), state_))
    reader.add_row("journal", "last seq %s  backlog %s (not yet uploaded)" % (
        jr.get("seq") or "-", jr.get("backlog") or "-"))
    reader.add_row("sync", " ".join("%s=%s" % i for i in sync.items()) or "-")
    fr = state.fares
    if fr:
        reader.add_row("psam / fares", "terminal %s  %s bd  fare table v%s" % (
            fr.get("terminal", "-"), fr.get("baud", "-"), fr.get("version", "-")))

    recent = Table(expand=True, box=None)
    for col in ("time", "kind", "verdict", "reason", "ms", "fare", "balance"):
        recent.add_column(col)
    for t, kv in state.verdicts:
        v = kv.get("verdict", "?")
        style = {"PASS": "green", "DENY": "red", "MANUAL": "yellow"}.get(v, "")
        recent.add_row(t, KINDS.get(kv.get("kind", ""), kv.get("kind", "")),
                       Text(v, style=style), kv.get("reason", ""), kv.get("ms", ""),
                       _yuan(kv.get("fare")), _yuan(kv.get("balance")))
    parts = [
        Panel(gate, title="gate"),
        Panel(reader, title="reader"),
        Panel(recent, title="recent verdicts"),
    ]
    if state.events:
        parts.append(Panel("\n".join(state.events), title="warnings / output"))
    if help_text:
        parts.append(Panel(help_text, title="keys"))
    if status:
        parts.append(Text(status, style="dim"))
    return Group(*parts)

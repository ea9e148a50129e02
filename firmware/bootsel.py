"""Boot selector: which app slot (/app_a, /app_b) runs, or the frozen factory app.

Part of the frozen firmware, never of a bundle, so an update cannot break the code that decides
whether to roll it back. One small JSON record, replaced atomically (write a temp file, rename
over the old: LittleFS renames are atomic), so a power cut at any flash operation leaves the
old record or the new one. States follow ESP-IDF otadata: a switched-to app is `new`; its first
boot marks it `pending`; only its self-test marks it `valid`; a boot that finds it still
`pending` after a crash, a watchdog or a failed self-test goes back to the previous app (a
power cut during the first boot gets a few more tries: the supply is not the app's fault).
"""

import json
import os

RECORD = "/boot.json"
_TMP = "/boot.tmp"
SLOTS = ("a", "b")
FACTORY = None  # the app frozen into the firmware
TRIES = 3  # first boots of a new app cut by power loss before it is rolled back anyway


def slot_dir(slot):
    return "/app_" + slot


def read():
    """The record, or None (factory: never updated, or the record is unreadable)."""
    try:
        with open(RECORD) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("slot") not in SLOTS:
        return None
    return rec


def write(rec):
    with open(_TMP, "w") as f:
        json.dump(rec, f)
    os.rename(_TMP, RECORD)


def _usable(slot):
    try:
        os.stat(slot_dir(slot) + "/app.mpy")
        return True
    except OSError:
        return False


def select(power_on=False):
    """Run once per boot, before the app is imported. Returns (slot or None, pending).
    `power_on`: this boot follows a power loss, not a crash or watchdog reset; a pending app
    then gets another try (up to TRIES) instead of being blamed for the supply."""
    rec = read()
    if rec is None:
        return FACTORY, False
    state = rec.get("state")
    if state == "factory":
        return FACTORY, False
    if state == "new" and _usable(rec["slot"]):
        rec["state"] = "pending"
        write(rec)
        return rec["slot"], True
    if state == "pending" and power_on and rec.get("tries", 0) < TRIES and _usable(rec["slot"]):
        rec["tries"] = rec.get("tries", 0) + 1
        write(rec)
        return rec["slot"], True
    if state == "valid" and _usable(rec["slot"]):
        return rec["slot"], False
    return rollback(rec), False


def rollback(rec):
    """The app in rec["slot"] never confirmed: go back to the one before it (or the factory
    app), and remember the failed version so it is not installed again."""
    prev = rec.get("prev")
    if prev in SLOTS and _usable(prev):
        new = {"slot": prev, "state": "valid", "version": rec.get("prev_version", 0),
               "prev": None, "floor": rec.get("floor", 0), "failed": rec.get("version")}
        write(new)
        return prev
    write({"slot": "a", "state": "factory", "version": 0, "prev": None,
           "floor": rec.get("floor", 0), "failed": rec.get("version")})
    return FACTORY


def confirm():
    """The running app passed its self-test: it is the one to keep, and its security counter
    becomes the floor no later image may go below."""
    rec = read()
    if rec is not None and rec.get("state") == "pending":
        rec["state"] = "valid"
        rec["floor"] = max(rec.get("floor", 0), rec.get("counter", 0))
        write(rec)
    return rec

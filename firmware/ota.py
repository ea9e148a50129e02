"""Trust for updates on the reader: the signing keys deploy put in /keys, the verification of
a signed manifest against this board and the time floor, the progress records of interrupted
downloads, and what the boot selector says is installed.

The update path is split by job: `appstage` stages an app release into the inactive .mpy slot,
`fwstage` a full-firmware image into the next ESP-IDF OTA partition, `selftest` confirms a new
release on its first boot (or lets it roll back), `files` holds the small LittleFS helpers;
`sync` drives them from the update server.
"""

import json
import os

import bootsel
import files
import signedmanifest as sm
import slog

log = slog.Logger("ota")

KEYS_DIR = "/keys"
STATE_DIR = "/ota"
STAGING = "/ota/staging.sm"
FLOOR = "/ota/floor"
RELEASE = "release.sm"  # the signed manifest of what a slot holds, kept with it
DL_FIRMWARE = "/ota/firmware.dl"  # progress of a firmware image download (resume record)
DL_LIST = "/ota/list.dl"  # progress of a list download
BUF = 4096  # bytes per staging write and flash block

E_BUSY = 16  # EBUSY: the running app is not confirmed yet; nothing new is staged over it
E_FAILED = 125  # this version already failed its self-test here
E_STALE = 116  # ESTALE: a progress record that does not fit what is being installed


class OtaError(OSError):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


def load_keys(path=KEYS_DIR):
    """Trusted public keys {key id: (n, e, role)} from /keys/*.pub (put there by deploy)."""
    keys = {}
    try:
        names = os.listdir(path)
    except OSError:
        return keys
    for name in names:
        if name.endswith(".pub"):
            with open(path + "/" + name) as f:
                kid, key = sm.load_key(f.read())
            keys[kid] = key
    return keys


def time_floor(clock=None):
    """The latest securely attested time: the newest `issued` of any manifest accepted, or the
    clock when it is set and later (the RTC is not battery-backed: it may be lost, not trusted
    to go back)."""
    t = 0
    try:
        with open(FLOOR) as f:
            t = int(f.read())
    except (OSError, ValueError):
        pass
    now = clock.time() if clock else None
    return max(t, now or 0)


def raise_floor(t):
    if t > time_floor():
        files.mkdir(STATE_DIR)
        files.replace(FLOOR, str(t))


def verify(data, kind, board_name, clock=None, keys=None):
    """A signed manifest checked against this reader's keys, board and time floor."""
    return sm.verify(data, keys if keys is not None else load_keys(), kind, board_name,
                     time_floor(clock))


def read_progress(path):
    """The progress record of an interrupted download at path (a small JSON dict), None when
    there is none (an unreadable one is removed)."""
    raw = files.read(path)
    if raw is None:
        return None
    try:
        rec = json.loads(raw)
        if isinstance(rec, dict):
            return rec
    except ValueError:
        pass
    files.remove(path)
    return None


def load_progress(path, sha):
    """The progress record at path if it names the signed file with this SHA-256; a record
    for anything else is void and removed."""
    rec = read_progress(path)
    if rec is not None and rec.get("sha") != sha:
        files.remove(path)
        rec = None
    return rec


def save_progress(path, rec):
    files.mkdir(STATE_DIR)
    files.replace(path, json.dumps(rec))


def installed():
    """(version, security-counter floor, failed version) of the app that boots."""
    rec = bootsel.read()
    if rec is None:
        return 0, 0, None
    ver = rec.get("version", 0) if rec.get("state") != "factory" else 0
    return ver, rec.get("floor", 0), rec.get("failed")

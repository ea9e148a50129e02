"""Reader configuration: defaults in code, site values in /config.json, checked at boot.

Pins and buses belong to the board, never to this file. A bad file is reported by field name
and the reader keeps the defaults but stays out of service until the file is fixed: a gate must
not guess its station or direction.
"""

import json

DEFAULTS = {
    "station_id": 0,  # 0: not commissioned
    "reader_id": "R0",
    "direction": "entry",  # "entry" | "exit" | "bus" (tap-on only)
    "lane_mode": "normal",  # "normal" | "manual" | "emergency" | "closed"
    "health_rule": False,  # the 2022 health-code rule; off since December 2022
    "health_window_h": 48,
    "passback_s": 600,  # anti-passback window per credential
    "mifare_allowed": False,  # MIFARE Classic is the weaker credential: opt-in
    "card_types": [],  # issuer card types accepted (empty: all)
    "no_list_action": "manual",  # no blocklist installed: "pass" | "manual" | "deny"
    "utc_offset_min": 480,  # local time for card expiry dates (China: UTC+8)
    "nfc_poll_ms": 100,
    # PN532 HSU rate after init (SetSerialBaudRate; 115200 after a reset). 460800: the fare
    # tap's budget needs more than 115200 gives (docs/device-figures.md); 921600 only on short
    # clean wiring
    "nfc_baud": 460800,
    "gate_open_ms": 5000,
    "wdt_ms": 8000,
    "log_level": "info",
    "sync_url": "",
    "sync_period_s": 60,
    # scan engine (firmware/qr_task.py)
    "qr_mode": "continuous",  # "continuous" (gate) | "command" (triggered every qr_trigger_ms)
    "qr_baud": 9600,  # what the engine was set to at installation; 115200 keeps codes fast
    "qr_poll_ms": 10,
    "qr_gap_ms": 40,  # idle gap that ends a code sent without terminator
    "qr_same_ms": 3000,  # the same code re-read within this interval is not delivered again
    "qr_probe_s": 30,  # quiet this long: check the engine still answers
    "qr_trigger_ms": 1000,
    "qr_buf": 1280,  # an RC2 code is up to 1215 characters (RSA rider key)
    # ride codes (lib/ridecode): RC1 only during the migration (its day keys sit on readers)
    "ridecode_rc1": False,
    "ridecode_p256": False,  # accept P-256 rider keys (over the ESP32 budget: docs/ride-code.md)
    "ridecode_window_s": 20,  # a code is fresh for window + skew after it was generated
    "ridecode_skew_s": 10,  # phone clock ahead of / behind the reader's
    # e-purse purchase (firmware/ticketing.py)
    "psam": False,  # True: every card tap is a purchase with the PSAM; False: read only
    "torn_window_s": 600,  # a debit left without an answer is finished on a tap this soon
}

_CHOICES = {
    "direction": ("entry", "exit", "bus"),
    "lane_mode": ("normal", "manual", "emergency", "closed"),
    "log_level": ("debug", "info", "warn", "error"),
    "no_list_action": ("pass", "manual", "deny"),
    "qr_mode": ("continuous", "command"),
    "qr_baud": (9600, 19200, 38400, 57600, 115200),
    "nfc_baud": (115200, 230400, 460800, 921600),
}
_RANGES = {
    "station_id": (0, 0xFFFF),
    "health_window_h": (1, 24 * 14),
    "passback_s": (0, 24 * 3600),
    "nfc_poll_ms": (20, 1000),
    "gate_open_ms": (500, 60000),
    "wdt_ms": (2000, 60000),
    "sync_period_s": (5, 86400),
    "utc_offset_min": (-720, 840),
    "qr_poll_ms": (2, 200),
    "qr_gap_ms": (5, 500),
    "qr_same_ms": (0, 60000),
    "qr_probe_s": (1, 3600),
    "qr_trigger_ms": (100, 10000),
    "qr_buf": (128, 4096),
    "ridecode_window_s": (1, 300),
    "ridecode_skew_s": (0, 300),
    "torn_window_s": (30, 24 * 3600),
}


class ConfigError(ValueError):
    def __init__(self, field, why):
        super().__init__("config field %r: %s" % (field, why))
        self.field = field


def validate(values):
    """Merge `values` over the defaults; raise ConfigError naming the first bad field."""
    if not isinstance(values, dict):
        raise ConfigError("(file)", "not a JSON object")
    cfg = dict(DEFAULTS)
    for key, v in values.items():
        if key not in DEFAULTS:
            raise ConfigError(key, "unknown field")
        want = type(DEFAULTS[key])
        if want is int and (type(v) is not int):
            raise ConfigError(key, "must be an integer")
        if want is not int and type(v) is not want:
            raise ConfigError(key, "must be %s" % want.__name__)
        if key in _CHOICES and v not in _CHOICES[key]:
            names = [str(c) for c in _CHOICES[key]]
            raise ConfigError(key, "must be one of %s" % ", ".join(names))
        if key in _RANGES and not _RANGES[key][0] <= v <= _RANGES[key][1]:
            raise ConfigError(key, "must be within %d..%d" % _RANGES[key])
        if want is list and any(type(x) is not int or not 0 <= x <= 255 for x in v):
            raise ConfigError(key, "must be a list of integers 0..255")
        cfg[key] = v
    return cfg


def load(path="/config.json"):
    """Returns (config, error). No file: defaults. Bad file: defaults and the ConfigError."""
    try:
        f = open(path)
    except OSError:
        return dict(DEFAULTS), None
    try:
        with f:
            raw = json.load(f)
    except ValueError:
        return dict(DEFAULTS), ConfigError("(file)", "not valid JSON")
    try:
        return validate(raw), None
    except ConfigError as e:
        return dict(DEFAULTS), e

"""The decision core, table-tested: the same cases run on CPython (firmware source) and on
MicroPython (the compiled .mpy), and both must give the expected verdict and reason. Plus the
date arithmetic, the credential hash and an allocation-free decide() under heap_lock."""

import datetime
import sys
import types

import pytest
from conftest import ROOT

NOW = 1_795_500_000  # 2026-11-24 13:20 China time
TODAY = int((datetime.datetime.fromtimestamp(NOW, datetime.UTC)
             + datetime.timedelta(hours=8)).strftime("%Y%m%d"))


def _day(delta):
    d = (datetime.datetime.fromtimestamp(NOW, datetime.UTC) + datetime.timedelta(hours=8)
         + datetime.timedelta(days=delta))
    return int(d.strftime("%Y%m%d"))


# Runs on both interpreters: explicit fakes of the list store and the ride-code results with
# the real method names; prints one "name verdict reason" line per case.
RUNNER = """
import reasons as R
import decision
from credential import Credential

class Lists:
    '''ListStore stand-in: exact identifiers per (namespace, id) -> category.'''
    def __init__(self, categories, entries, stale=False, seq=7):
        self.categories = categories
        self.entries = entries
        self.stale = stale
        self.seq = seq
    def lookup(self, ns, buf, n):
        return self.entries.get((ns, bytes(buf[:n])), 0)
    def is_stale(self, now_s):
        return self.stale

class RideCodeResults:
    OK = 0
    MALFORMED = 1
    FORGED = 2
    UNKNOWN_KEY = 3
    REVOKED = 4
    EXPIRED = 5
    NOT_YET_VALID = 6
    STALE = 7
    REPLAYED = 8
    NO_TRUSTED_TIME = 9

CATS = {1: ("lost", "deny", "deny", False), 2: ("unpaid", "manual", "manual", False),
        3: ("health hold", "deny", "manual", True), 4: ("no info", "manual", "manual", True),
        5: ("watch", "pass", "pass", False), 7: ("unpaid debt", "deny", "manual", False)}
ENTRIES = {(1, b"1001"): 1, (1, b"1002"): 2, (1, b"1003"): 3, (1, b"1004"): 4, (1, b"1005"): 5,
           (1, b"1009"): 9, (3, b"acct-lost"): 1, (2, b"5001"): 1}
ENTRIES[(1, b"1006")] = 6
ENTRIES[(1, b"1007")] = 7
ACT = {"pass": 1, "deny": 2, "manual": 3}
CFG = {"station_id": 12, "direction": "entry", "lane_mode": "normal", "health_rule": False,
       "passback_s": 600, "mifare_allowed": False, "card_types": [], "utc_offset_min": 480,
       "no_list_action": "manual"}

def run(cases):
    for name, cfg, lists, cred_fields, now, mono, admits in cases:
        c = dict(CFG)
        c.update(cfg)
        d = decision.Decider(c, R.code_table(RideCodeResults))
        if lists == "list":
            d.use_lists(Lists(CATS, ENTRIES))
        elif lists == "stale":
            d.use_lists(Lists(CATS, ENTRIES, stale=True))
        elif lists == "numeric":
            # the list header's form (lib/blocklist): action numbers, health flag bit
            cats = {k: (v[0], ACT[v[1]], ACT[v[2]], 1 if v[3] else 0) for k, v in CATS.items()}
            cats[6] = ("odd", 9, 9, 0)
            d.use_lists(Lists(cats, ENTRIES))
        elif lists == "stale-strict":
            cats = dict(CATS)
            cats[1] = ("lost", "deny", "pass", False)
            d.use_lists(Lists(cats, ENTRIES, stale=True))
        cr = Credential()
        for k, v in cred_fields.items():
            if k == "number":
                cr.set_number(v)
            else:
                setattr(cr, k, v)
        for station, t in admits:
            d.station = station
            d.key = decision.cred_key(cr)
            d.admit(t)
        d.station = c["station_id"]
        v = d.decide(cr, now, mono)
        print("CASE", name, R.VERDICT_NAMES[v], R.name(d.reason), d.category)
"""

CPU = {"kind": 1, "number": b"1000", "card_type": 1}
PHONE = {"kind": 2, "number": b"1000"}
CODE = {"kind": 4, "number": b"acct-1"}


def card(**kw):
    d = dict(CPU)
    d.update(kw)
    return d


def code(**kw):
    d = dict(CODE)
    d.update(kw)
    return d


# name, cfg overrides, lists, credential, now, mono, prior admits -> verdict, reason, category
CASES = [
    ("pass", {}, "list", card(), NOW, 100, [], "PASS", "OK", 0),
    ("emergency", {"lane_mode": "emergency"}, "list", card(clash=True, number=b"1001"), NOW,
     100, [], "PASS", "EMERGENCY", 0),
    ("closed", {"lane_mode": "closed"}, "list", card(), NOW, 100, [], "DENY", "CLOSED", 0),
    ("clash", {}, "list", card(clash=True, error=3), NOW, 100, [], "DENY", "MULTI_CARD", 0),
    ("read-error", {}, "list", card(error=3), NOW, 100, [], "DENY", "CARD_FAULT", 0),
    ("no-number", {}, "list", {"kind": 1}, NOW, 100, [], "DENY", "CARD_FAULT", 0),
    ("unknown-kind", {}, "list", card(kind=0), NOW, 100, [], "DENY", "CARD_TYPE", 0),
    ("mifare-off", {}, "list", card(kind=3, number=b"5000"), NOW, 100, [], "DENY",
     "CARD_TYPE", 0),
    ("mifare-on", {"mifare_allowed": True}, "list", card(kind=3, number=b"5000"), NOW, 100, [],
     "PASS", "OK", 0),
    ("mifare-listed", {"mifare_allowed": True}, "list", card(kind=3, number=b"5001"), NOW, 100,
     [], "DENY", "BLACKLISTED", 1),
    ("type-refused", {"card_types": [1, 5]}, "list", card(card_type=6), NOW, 100, [], "DENY",
     "CARD_TYPE", 0),
    ("type-accepted", {"card_types": [1, 5]}, "list", card(card_type=5), NOW, 100, [], "PASS",
     "OK", 0),
    ("expired", {}, "list", card(valid_to=_day(-1)), NOW, 100, [], "DENY", "EXPIRED", 0),
    ("expires-today", {}, "list", card(valid_to=TODAY), NOW, 100, [], "PASS", "OK", 0),
    ("not-yet-valid", {}, "list", card(valid_from=_day(1)), NOW, 100, [], "DENY",
     "NOT_YET_VALID", 0),
    ("concession-over", {}, "list", card(concession_to=_day(-1)), NOW, 100, [], "DENY",
     "CONCESSION_EXPIRED", 0),
    ("concession-ok", {}, "list", card(concession_to=_day(30)), NOW, 100, [], "PASS", "OK", 0),
    ("expired-before-list", {}, "list", card(valid_to=_day(-1), number=b"1001"), NOW, 100, [],
     "DENY", "EXPIRED", 0),
    ("lost", {}, "list", card(number=b"1001"), NOW, 100, [], "DENY", "BLACKLISTED", 1),
    ("lost-phone", {}, "list", dict(PHONE, number=b"1001"), NOW, 100, [], "DENY",
     "BLACKLISTED", 1),
    ("unpaid-manual", {}, "list", card(number=b"1002"), NOW, 100, [], "MANUAL", "LIST_MANUAL", 2),
    ("watch-only", {}, "list", card(number=b"1005"), NOW, 100, [], "PASS", "OK", 5),
    ("unknown-category", {}, "list", card(number=b"1009"), NOW, 100, [], "DENY",
     "BLACKLISTED", 9),
    ("numeric-lost", {}, "numeric", card(number=b"1001"), NOW, 100, [], "DENY", "BLACKLISTED",
     1),
    ("numeric-manual", {}, "numeric", card(number=b"1002"), NOW, 100, [], "MANUAL",
     "LIST_MANUAL", 2),
    ("numeric-watch", {}, "numeric", card(number=b"1005"), NOW, 100, [], "PASS", "OK", 5),
    ("numeric-unknown-action", {}, "numeric", card(number=b"1006"), NOW, 100, [], "DENY",
     "BLACKLISTED", 6),
    ("numeric-health", {"health_rule": True}, "numeric", card(number=b"1004"), NOW, 100, [],
     "MANUAL", "NO_HEALTH_INFO", 4),
    ("health-off", {}, "list", card(number=b"1003"), NOW, 100, [], "PASS", "OK", 3),
    ("health-abnormal", {"health_rule": True}, "list", card(number=b"1003"), NOW, 100, [],
     "DENY", "HEALTH_ABNORMAL", 3),
    ("health-unknown", {"health_rule": True}, "list", card(number=b"1004"), NOW, 100, [],
     "MANUAL", "NO_HEALTH_INFO", 4),
    ("health-clear", {"health_rule": True}, "list", card(), NOW, 100, [], "PASS", "OK", 0),
    ("manual-lane", {"health_rule": True, "lane_mode": "manual"}, "list", card(number=b"1003"),
     NOW, 100, [], "PASS", "OK", 3),
    ("manual-lane-lost", {"health_rule": True, "lane_mode": "manual"}, "list",
     card(number=b"1001"), NOW, 100, [], "DENY", "BLACKLISTED", 1),
    ("stale-health-off", {}, "stale", card(), NOW, 100, [], "PASS", "OK", 0),
    ("stale-health-on", {"health_rule": True}, "stale", card(), NOW, 100, [], "MANUAL",
     "NO_HEALTH_INFO", 0),
    ("stale-unlisted-passes", {}, "stale", card(), NOW, 100, [], "PASS", "OK", 0),
    ("debt-fresh", {}, "list", card(number=b"1007"), NOW, 100, [], "DENY", "BLACKLISTED", 7),
    ("debt-stale", {}, "stale", card(number=b"1007"), NOW, 100, [], "MANUAL", "LIST_STALE", 7),
    ("lost-stale", {}, "stale", card(number=b"1001"), NOW, 100, [], "DENY", "BLACKLISTED", 1),
    ("manual-stale", {}, "stale", card(number=b"1002"), NOW, 100, [], "MANUAL", "LIST_MANUAL",
     2),
    ("stale-action-pass", {}, "stale-strict", card(number=b"1001"), NOW, 100, [], "PASS", "OK",
     1),
    ("no-time-is-stale", {}, "list", card(number=b"1007"), None, 100, [], "MANUAL",
     "LIST_STALE", 7),
    ("health-hold-stale", {"health_rule": True}, "stale", card(number=b"1003"), NOW, 100, [],
     "MANUAL", "NO_HEALTH_INFO", 3),
    ("no-list", {}, None, card(), NOW, 100, [], "MANUAL", "NO_LIST", 0),
    ("no-list-pass", {"no_list_action": "pass"}, None, card(), NOW, 100, [], "PASS", "OK", 0),
    ("no-list-deny", {"no_list_action": "deny"}, None, card(), NOW, 100, [], "DENY", "NO_LIST",
     0),
    ("no-list-health", {"health_rule": True, "no_list_action": "pass"}, None, card(), NOW, 100,
     [], "MANUAL", "NO_HEALTH_INFO", 0),
    ("card-no-time", {}, "list", card(valid_to=_day(-1)), None, 100, [], "PASS", "OK", 0),
    ("card-no-time-health", {"health_rule": True}, "list", card(), None, 100, [], "MANUAL",
     "NO_HEALTH_INFO", 0),
    ("code-pass", {}, "list", code(), NOW, 100, [], "PASS", "OK", 0),
    ("code-no-time", {}, "list", code(), None, 100, [], "MANUAL", "NO_TIME", 0),
    ("code-listed", {}, "list", code(number=b"acct-lost"), NOW, 100, [], "DENY",
     "BLACKLISTED", 1),
    ("code-malformed", {}, "list", code(error=1), NOW, 100, [], "DENY", "CODE_INVALID", 0),
    ("code-forged", {}, "list", code(error=2), None, 100, [], "DENY", "CODE_FORGED", 0),
    ("code-unknown-key", {}, "list", code(error=3), NOW, 100, [], "DENY", "CODE_UNKNOWN_KEY", 0),
    ("code-revoked", {}, "list", code(error=4), NOW, 100, [], "DENY", "CODE_REVOKED", 0),
    ("code-expired", {}, "list", code(error=5), NOW, 100, [], "DENY", "CODE_EXPIRED", 0),
    ("code-not-yet", {}, "list", code(error=6), NOW, 100, [], "DENY", "CODE_NOT_YET_VALID", 0),
    ("code-stale", {}, "list", code(error=7), NOW, 100, [], "DENY", "CODE_STALE", 0),
    ("code-replayed", {}, "list", code(error=8), NOW, 100, [], "DENY", "CODE_REPLAYED", 0),
    ("code-untrusted-time", {}, "list", code(error=9), NOW, 100, [], "MANUAL", "NO_TIME", 0),
    ("code-unknown-error", {}, "list", code(error=77), NOW, 100, [], "DENY", "CODE_INVALID", 0),
    ("passback", {}, "list", card(), NOW, 500, [(12, 100)], "DENY", "PASSBACK", 0),
    ("passback-phone-same-card", {}, "list", PHONE, NOW, 500, [(12, 100)], "DENY", "PASSBACK",
     0),
    ("passback-over", {}, "list", card(), NOW, 700, [(12, 100)], "PASS", "OK", 0),
    ("passback-other-station", {}, "list", card(), NOW, 500, [(13, 100)], "PASS", "OK", 0),
    ("passback-off", {"passback_s": 0}, "list", card(), NOW, 500, [(12, 100)], "PASS", "OK", 0),
    ("passback-after-health", {"health_rule": True}, "list", card(number=b"1003"), NOW, 500,
     [(12, 100)], "DENY", "HEALTH_ABNORMAL", 3),
    ("passback-exit", {"direction": "exit"}, "list", card(), NOW, 500, [(12, 100)], "DENY",
     "PASSBACK", 0),
]


def _expected():
    return {c[0]: "%s %s %d" % c[7:] for c in CASES}


def _parse(out):
    got = {}
    for line in out.splitlines():
        if line.startswith("CASE "):
            _, name, rest = line.split(" ", 2)
            got[name] = rest
    return got


def _program():
    cases = [c[:7] for c in CASES]
    return RUNNER + "\nrun(%r)\n" % (cases,)


def test_every_reason_is_driven_by_a_case():
    sys.path[:0] = [str(ROOT / "firmware"), str(ROOT / "lib" / "civildate")]
    with _micropython_shim():
        import reasons
    reached = {c[8] for c in CASES}
    names = set()
    while reasons.name(len(names)) != "R%d" % len(names):
        names.add(reasons.name(len(names)))
    assert len(names) == reasons.TORN_LOG_WAIT + 1
    # the app's own (test_reader_e2e) and the fare path's (test_ticketing_*)
    tap_reasons = names - {"JOURNAL_FULL", "MODE_CHANGE", "READER_FAULT"} - {
        reasons.name(r) for r in range(reasons.LOW_BALANCE, reasons.TORN_LOG_WAIT + 1)}
    assert tap_reasons <= reached  # the app's own: test_reader_e2e


class _micropython_shim:
    """CPython has no `micropython` module: a tiny explicit stand-in (const is identity)."""

    def __enter__(self):
        self.old = sys.modules.get("micropython")
        sys.modules["micropython"] = types.SimpleNamespace(const=lambda x: x)

    def __exit__(self, *exc):
        if self.old is None:
            sys.modules.pop("micropython", None)
        else:
            sys.modules["micropython"] = self.old


def test_table_on_cpython(capsys):
    sys.path[:0] = [str(ROOT / "firmware"), str(ROOT / "lib" / "civildate")]
    with _micropython_shim():
        exec(compile(_program(), "decision_runner", "exec"), {"__name__": "runner"})
    got = _parse(capsys.readouterr().out)
    assert got == _expected()


def test_table_on_micropython(mp):
    got = _parse(mp(_program()))
    assert got == _expected()


def test_dates_match_the_calendar(mp):
    days = [0, 59, 365, 10956, 11016, 11017, 20000, 20454, 20789, 47482, 47541]
    out = mp("import decision\nprint(%r)\nfor d in %r:\n    print('D', decision.ymd(d))\n"
             % ("x", days))
    got = [int(line[2:]) for line in out.splitlines() if line.startswith("D ")]
    epoch = datetime.date(1970, 1, 1)
    want = [int((epoch + datetime.timedelta(days=d)).strftime("%Y%m%d")) for d in days]
    assert got == want


def test_credential_hash_is_fnv1a_of_namespace_and_number(mp):
    def fnv(data):
        h = 0x811C9DC5
        for b in data:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return (h & 0x3FFFFFFF) or 1

    nums = [b"1000", b"31049281734892731", b"acct-1", b""]
    out = mp("""
import decision
from credential import Credential
c = Credential()
for kind, n in ((1, b"1000"), (2, b"31049281734892731"), (4, b"acct-1"), (3, b"")):
    c.kind = kind
    c.set_number(n)
    print("K", decision.cred_key(c))
""")
    got = [int(x[2:]) for x in out.splitlines() if x.startswith("K ")]
    assert got == [fnv(bytes([1]) + nums[0]), fnv(bytes([1]) + nums[1]),
                   fnv(bytes([3]) + nums[2]), fnv(bytes([2]) + nums[3])]


def test_decide_allocates_nothing(mp):
    out = mp("""
import micropython, decision
from credential import Credential

class Lists:
    '''Allocation-free stand-in: identifiers starting with "9" are in category 1.'''
    categories = {1: ("lost", "deny", "pass", False), 3: ("hold", "deny", "manual", True)}
    seq = 3
    def lookup(self, ns, buf, n):
        return 1 if buf[0] == 57 else 0
    def is_stale(self, now_s):
        return False

cfg = {"station_id": 1, "direction": "entry", "lane_mode": "normal", "health_rule": True,
       "passback_s": 600, "mifare_allowed": False}
d = decision.Decider(cfg)
d.use_lists(Lists())
c1 = Credential(); c1.kind = 1; c1.set_number(b"1234567890123456"); c1.valid_to = 20991231
c2 = Credential(); c2.kind = 2; c2.set_number(b"9234567890123456")
c3 = Credential(); c3.kind = 4; c3.set_number(b"acct-77")

v = [0, 0, 0, 0]


# UTC seconds do not fit a 32-bit port's small ints: the times are made before the lock, as
# the clock hands them over on the device; five hours of one day (the date is worked out
# again, allocating, once a day)
nows = [1_795_500_000 + i * 60 for i in range(300)]


def taps():
    for i in range(300):
        v[0] = d.decide(c1, nows[i], i * 601)
        d.admit(i * 601)
        v[1] = d.decide(c1, nows[i], i * 601 + 1)
        v[2] = d.decide(c2, nows[0], i)
        v[3] = d.decide(c3, None, i)

d.decide(c1, 1_795_500_000, 1)
ok = "alloc"  # bound before the lock: a new global would grow the module dict
micropython.heap_lock()
try:
    taps()
    ok = "no-alloc"
finally:
    micropython.heap_unlock()
print(ok, *v)
""")
    assert "no-alloc 1 2 2 3" in out


@pytest.mark.parametrize("bad", ["{'lane_mode': 'party'}", "{'slots': 6}"])
def test_bad_policy_is_a_named_error(mp, bad):
    out = mp("""
import decision
cfg = {"station_id": 1, "direction": "entry", "lane_mode": "normal", "health_rule": False,
       "passback_s": 600, "mifare_allowed": False}
bad = %s
slots = bad.pop("slots", 64)
cfg.update(bad)
try:
    decision.Decider(cfg, slots=slots)
except decision.DecisionError as e:
    print("refused", e.code)
""" % bad)
    assert "refused 22" in out


def test_policy_config_keys_are_checked(mp):
    out = mp("""
import config
for bad in ({"card_types": [1, "x"]}, {"card_types": [300]}, {"no_list_action": "maybe"},
            {"utc_offset_min": 9999}):
    try:
        config.validate(bad)
        print("accepted", bad)
    except config.ConfigError as e:
        print("refused", e.field)
cfg = config.validate({"card_types": [1, 5], "no_list_action": "pass", "utc_offset_min": 0})
print("ok", cfg["card_types"], cfg["no_list_action"], cfg["utc_offset_min"])
""")
    assert out.split() == ["refused", "card_types", "refused", "card_types", "refused",
                           "no_list_action", "refused", "utc_offset_min", "ok", "[1,", "5]",
                           "pass", "0"]

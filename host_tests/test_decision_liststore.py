"""The decision core against the real list store (lib/blocklist ListStore, a signed list built
by the host tool and installed on the NOR model), on MicroPython: category actions and stale
actions from the list header, health flags, and decide() + lookup under heap_lock."""

from test_blocklist_store import ISSUED, keys, lab  # noqa: F401  (fixtures)

IDS = {  # identifier -> category in the default header (flashtool/lists/blocklist.py)
    b"3104000000000001": 1,  # lost_stolen   deny / stale deny
    b"3104000000000002": 2,  # unpaid        deny / stale deny
    b"3104000000000003": 3,  # not_verified  manual / stale manual
    b"3104000000000004": 4,  # health_hold   deny / stale manual, health
    b"3104000000000005": 5,  # health_unknown manual / stale manual, health
    b"3104000000000009": 0,  # not listed
}
MAX_AGE = 7200

RUN = """
import decision, reasons as R
from credential import Credential
store = ListStore(Partition, PUB)
print(attempt(store, %(path)r))
c = Credential()
c.kind = 1
base = {"station_id": 1, "direction": "entry", "lane_mode": "normal", "passback_s": 0,
        "mifare_allowed": False}
for health in (False, True):
    cfg = dict(base)
    cfg["health_rule"] = health
    d = decision.Decider(cfg)
    d.use_lists(store)
    for now, label in ((%(fresh)d, "fresh"), (%(stale)d, "stale")):
        for ident in %(ids)r:
            c.set_number(ident)
            v = d.decide(c, now, 1)
            print("D", int(health), label, ident.decode()[-1], R.VERDICT_NAMES[v],
                  R.name(d.reason), d.category)
# allocation-free with the real lookup
import micropython
d = decision.Decider(dict(base, health_rule=True))
d.use_lists(store)
c.set_number(b"3104000000000004")
res = [0]
def taps():
    for i in range(200):
        res[0] = d.decide(c, %(fresh)d, i)
d.decide(c, %(fresh)d, 0)
ok = "alloc"  # bound before the lock: a new global would grow the module dict
micropython.heap_lock()
try:
    taps()
    ok = "no-alloc"
finally:
    micropython.heap_unlock()
print(ok, res[0])
"""


def expected(health, label, cat):
    stale = label == "stale"
    if cat == 0:
        return ("MANUAL", "NO_HEALTH_INFO") if health and stale else ("PASS", "OK")
    if cat in (1, 2):
        return ("DENY", "BLACKLISTED")
    if cat == 3:
        return ("MANUAL", "LIST_MANUAL")
    if not health:
        return ("PASS", "OK")
    if cat == 4:
        return ("MANUAL", "NO_HEALTH_INFO") if stale else ("DENY", "HEALTH_ABNORMAL")
    return ("MANUAL", "NO_HEALTH_INFO")


def test_real_list_store_drives_the_decision(lab):  # noqa: F811
    ents = [(1, ident, cat) for ident, cat in IDS.items() if cat]
    path = lab.full("list.img", ents, 7, max_age_s=MAX_AGE)
    out = lab.run(RUN % {"path": str(path), "fresh": ISSUED + 60,
                         "stale": ISSUED + MAX_AGE + 60, "ids": list(IDS)})
    assert "ok 7" in out
    got = {}
    for line in out.splitlines():
        if line.startswith("D "):
            _, health, label, last, verdict, reason, cat = line.split()
            got[(int(health), label, last)] = (verdict, reason, int(cat))
    want = {}
    for ident, cat in IDS.items():
        for health in (0, 1):
            for label in ("fresh", "stale"):
                want[(health, label, ident.decode()[-1])] = expected(health, label, cat) + (cat,)
    assert got == want
    assert "no-alloc 2" in out


PASS_SET_IDS = {  # identifier -> category in the seed-scale header (SEED_CATEGORIES)
    b"3104000000000001": 1,  # lost_stolen  deny / stale deny
    b"3104000000000004": 4,  # health_hold  deny / stale manual, health
    b"3104000000000006": 6,  # health_ok    pass / stale manual, health, pass-set
    b"3104000000000009": 0,  # not upgraded: no health information
}


def test_pass_set_list_sends_the_others_to_the_manual_check(lab):  # noqa: F811
    """With the upgraded credentials kept as a pass-set, a credential outside it has no
    health information: manual check with the health rule on, a pass with it off."""
    from flashtool.lists.blocklist import SEED_CATEGORIES

    ents = [(1, ident, cat) for ident, cat in PASS_SET_IDS.items() if cat]
    path = lab.full("seed.img", ents, 7, max_age_s=MAX_AGE, categories=SEED_CATEGORIES)
    out = lab.run(RUN % {"path": str(path), "fresh": ISSUED + 60,
                         "stale": ISSUED + MAX_AGE + 60, "ids": list(PASS_SET_IDS)})
    got = {}
    for line in out.splitlines():
        if line.startswith("D "):
            _, health, label, last, verdict, reason, cat = line.split()
            got[(int(health), label, last)] = (verdict, reason, int(cat))
    want = {
        (1, "fresh", "1"): ("DENY", "BLACKLISTED", 1),
        (1, "fresh", "4"): ("DENY", "HEALTH_ABNORMAL", 4),
        (1, "fresh", "6"): ("PASS", "OK", 6),
        (1, "fresh", "9"): ("MANUAL", "NO_HEALTH_INFO", 0),
        (1, "stale", "1"): ("DENY", "BLACKLISTED", 1),
        (1, "stale", "4"): ("MANUAL", "NO_HEALTH_INFO", 4),
        (1, "stale", "6"): ("MANUAL", "NO_HEALTH_INFO", 6),
        (1, "stale", "9"): ("MANUAL", "NO_HEALTH_INFO", 0),
        (0, "fresh", "1"): ("DENY", "BLACKLISTED", 1),
        (0, "fresh", "4"): ("PASS", "OK", 4),
        (0, "fresh", "6"): ("PASS", "OK", 6),
        (0, "fresh", "9"): ("PASS", "OK", 0),
        (0, "stale", "1"): ("DENY", "BLACKLISTED", 1),
        (0, "stale", "4"): ("PASS", "OK", 4),
        (0, "stale", "6"): ("PASS", "OK", 6),
        (0, "stale", "9"): ("PASS", "OK", 0),
    }
    assert got == want

"""A day of fares on emulated gates: riders with e-purse cards (3DES and SM4 cards, phones,
student and elderly concessions, a few with too little money, a few clones with the right
number and no keys) enter at station 101 and leave at 104 or 304, each tap a purchase with the
PSAM. Afterwards the audit a back office would run: every journalled TAC checked with the
issuer's keys (`flash.py settle`), the journalled amounts against what left the cards, each
fare against the back office's own pricing, and every denial against the rider's truth.

`flash.py emulate --scenario fare-day --riders N` prints the summary; the tests run a short
form and `make check-long` 2,000 riders.
"""

import collections
import random
import statistics
import time
from pathlib import Path

from flashtool.fares import records, settle, table
from flashtool.fares.lane import Lane
from sim import cards, pboc

ENTRY = 101
EXITS = (104, 304)
# Each emulated reader keeps its own virtual clock (an idle accelerated reader's runs ahead),
# so the time inside is not what a rider spent: no overtime rule here (test_fares_table prices
# overtime).
SPEC = dict(table.DEMO, max_trip_min=0)
# profile, share, card kwargs
PROFILES = [
    ("card", 0.55, {}),
    ("card-sm4", 0.15, {"alg": pboc.ALG_SM4}),
    ("phone", 0.12, {}),
    ("student", 0.08, {"card_type": 5}),
    ("elderly", 0.05, {"card_type": 6, "concession_to": 20991231}),
    ("low-balance", 0.03, {"balance": 420}),
    ("clone", 0.02, {}),
]


def _card(profile, n, issuer, kw):
    number = "3105%012d" % (200000 + n)
    if profile == "clone":
        return cards.tunion(number)  # right number, no keys
    kw = dict({"balance": 5000, "issuer": issuer}, **kw)
    if profile == "phone":
        return cards.phone(number, seed=n, **kw)
    return cards.tunion(number, **kw)


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0


def run(riders, workdir, seed=2024, progress=print):
    """Returns (rows, facts): the summary rows and the numbers the tests check."""
    rng = random.Random(seed)
    issuer = pboc.IssuerKeys.from_seed("fare-day:%d" % seed)
    work = Path(workdir)
    epoch = 1_767_000_000
    lanes = {ENTRY: Lane(work / "in", ENTRY, "entry", issuer, work / "keys", spec=SPEC,
                         epoch=epoch)}
    for i, st in enumerate(EXITS):
        lanes[st] = Lane(work / ("out%d" % st), st, "exit", issuer, work / "keys", spec=SPEC,
                         epoch=epoch + 1800 + i)
    t0 = time.monotonic()
    try:
        for lane in lanes.values():
            lane.start()
        weights = [p[1] for p in PROFILES]
        wrongful, expected_denials, fare_mismatch = [], 0, 0
        start_balance = spent = 0
        lat = {"entry": [], "exit": []}
        for n in range(riders):
            name, _, kw = rng.choices(PROFILES, weights)[0]
            c = _card(name, n, issuer, kw)
            start_balance += c.purse.balance
            before = c.purse.balance
            got = lanes[ENTRY].tap(c)
            lanes[ENTRY].wait_idle(200)
            lat["entry"].append(got["ms"])
            if name == "clone":
                expected_denials += got["reason"] == "NO_PURSE"
                if got["verdict"] == "PASS":
                    wrongful.append((n, name, "clone passed"))
                continue
            if got["verdict"] != "PASS":
                wrongful.append((n, name, got["reason"]))
                continue
            dest = EXITS[rng.randrange(len(EXITS))]
            ct = kw.get("card_type", 1)
            fare = table.price(SPEC, ENTRY, dest, ct, 0)
            short = fare > c.purse.balance + c.purse.overdraft
            got = lanes[dest].tap(c)
            lanes[dest].wait_idle(200)
            lat["exit"].append(got["ms"])
            if short:
                expected_denials += got["reason"] == "LOW_BALANCE"
                if got["verdict"] == "PASS":
                    wrongful.append((n, name, "passed without the fare"))
            elif got["verdict"] != "PASS":
                wrongful.append((n, name, got["reason"]))
            elif got.get("fare") != fare:
                fare_mismatch += 1
            spent += before - c.purse.balance
            if progress and (n + 1) % 100 == 0:
                progress("  %d riders, %.0f s" % (n + 1, time.monotonic() - t0))
        wall = time.monotonic() - t0
        by_reader = {"S%d" % st: lane.journal() for st, lane in lanes.items()}
        s = settle.settle(by_reader, issuer)
        journalled = sum(p["amount"] for recs in by_reader.values()
                         for p in records.purchases(recs) if not p.get("incomplete"))
    finally:
        for lane in lanes.values():
            lane.close()
    taps = len(lat["entry"]) + len(lat["exit"])
    facts = {"riders": riders, "taps": taps, "wrongful": wrongful, "spent": spent,
             "journalled": journalled, "settle": s, "fare_mismatch": fare_mismatch,
             "expected_denials": expected_denials, "wall_s": wall}
    rows = [
        ("riders / taps", "%d / %d" % (riders, taps)),
        ("wrongful denials (should pass, did not)", len(wrongful)),
        ("  of which, by reason", ", ".join("%s %d" % kv for kv in sorted(
            collections.Counter(w[2] for w in wrongful).items())) or "-"),
        ("expected denials (clones: NO_PURSE; short of the fare: LOW_BALANCE)",
         expected_denials),
        ("fares different from the back office's price", fare_mismatch),
        ("taken from the cards / journalled (yuan)", "%.2f / %.2f" % (spent / 100,
                                                                      journalled / 100)),
        ("purchases whose TAC verifies (flash.py settle)", s["purchases"]),
        ("TAC failures / incomplete records", "%d / %d" % (len(s["tac_failures"]),
                                                          len(s["incomplete"]))),
        ("tap -> verdict, virtual ms, entry p50 / p95",
         "%d / %d" % (statistics.median(lat["entry"]), _pct(lat["entry"], 95))),
        ("tap -> verdict, virtual ms, exit p50 / p95",
         "%d / %d" % (statistics.median(lat["exit"]) if lat["exit"] else 0,
                      _pct(lat["exit"], 95))),
        ("wall time (s)", "%.0f" % wall),
    ]
    return rows, facts


def main(args):
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fare-day-") as tmp:
        print("fare day: %d riders, entry %d, exits %s (accelerated emulated readers)" % (
            args.riders, ENTRY, ", ".join(map(str, EXITS))))
        rows, facts = run(args.riders, tmp)
    for k, v in rows:
        print("  %-70s %s" % (k, v))
    print("\n".join("  " + x for x in settle.report(facts["settle"])))
    return 1 if facts["wrongful"] or facts["settle"]["tac_failures"] else 0

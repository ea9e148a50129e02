"""Fares at the gate (firmware/ticketing.py) through the shipped main on emulated readers with
the PN532 and PSAM simulators: entry and exit purchases priced from the signed fare table,
concessions, the journal's purchase records (TACs checked with the issuer's keys, as the back
office does), the attack corpus (each refused with its own reason, nothing charged), the fare
rules, the configurations without PSAM or fare table, and torn purchases finished on the next
tap."""

import time

import pytest

from flashtool.fares import records, table
from flashtool.fares.lane import Lane
from sim import cards, pboc

KEYS = pboc.IssuerKeys.from_seed("ticketing-tests")
OTHER = pboc.IssuerKeys.from_seed("someone-else")
EPOCH = 1_767_000_000  # the entry lanes' clock; exits run 15 minutes later
_n = iter(range(10_000_000, 99_999_999))


def card(**kw):
    kw.setdefault("issuer", KEYS)
    return cards.tunion("31040%011d" % next(_n), **kw)


@pytest.fixture(scope="module")
def lanes(tmp_path_factory):
    d = tmp_path_factory.mktemp("lanes")
    made = {
        "in": Lane(d / "in", 101, "entry", KEYS, d / "keys", epoch=EPOCH),
        "out": Lane(d / "out", 104, "exit", KEYS, d / "keys", epoch=EPOCH + 900),
        "out106": Lane(d / "out106", 106, "exit", KEYS, d / "keys", epoch=EPOCH + 1800),
    }
    for lane in made.values():
        lane.start()
    yield made
    for lane in made.values():
        lane.close()


def tap(lane, c, **kw):
    got = lane.tap(c, **kw)
    lane.wait_idle()
    return got


def purchases_of(lane, c):
    return [p for p in records.purchases(lane.journal()) if p["serial"] == c.purse.serial]


def tac_ok(p, issuer=KEYS):
    _, dtk = issuer.card(p["serial"], p["key_version"], p["alg"])
    date, t = records.debit_time(p)
    return pboc.tac(p["alg"], dtk, p["amount"], p["type"], p["terminal"], p["ttn"], date,
                    t) == p["tac"]


def test_entry_and_exit_charge_the_distance_fare(lanes):
    normal = card(balance=2000)
    student = card(balance=2000, card_type=5, alg=pboc.ALG_SM4)
    elderly = card(balance=2000, card_type=6, concession_to=20991231)
    for c in (normal, student, elderly):
        got = tap(lanes["in"], c)
        assert (got["verdict"], got["reason"], got["fare"]) == ("PASS", "OK", 0)
        assert c.purse.trip[1] == 1 and c.purse.trip[2:4] == (101).to_bytes(2, "big")
    assert tap(lanes["out"], normal)["fare"] == 400  # 7.3 km: 4 yuan
    got = tap(lanes["out106"], student)  # 14.8 km: 5 yuan, half for a student card
    assert (got["verdict"], got["fare"], got["balance"]) == ("PASS", 250, 1750)
    assert tap(lanes["out"], elderly)["fare"] == 0
    assert (normal.purse.balance, student.purse.balance, elderly.purse.balance) == (1600, 1750,
                                                                                   2000)
    assert normal.purse.trip[1] == 2 and normal.purse.trip[8:10] == (104).to_bytes(2, "big")
    assert table.price(table.DEMO, 101, 106, 5) == 250  # the back office prices it the same
    # the journal: two records per purchase tap, the second with the verdict (proven), the
    # terminal number from the PSAM record before them; TACs verify
    for lane, c, amounts in ((lanes["in"], normal, [0]), (lanes["out"], normal, [400]),
                             (lanes["out106"], student, [250])):
        ps = purchases_of(lane, c)
        assert [p["amount"] for p in ps] == amounts and all(tac_ok(p) for p in ps)
        assert ps[0]["terminal"] == lane.psam.terminal and ps[0]["station"] == lane.station
        v = [x for x in records.verdicts(lane.journal()) if x["seq"] == ps[0]["seq"] + 1]
        assert v and v[0]["proof"] == "purchase" and v[0]["verdict"] == "PASS"
    p = purchases_of(lanes["out106"], student)[0]
    assert (p["alg"], p["card_type"], p["origin"], p["balance_after"], p["counter"]) == (
        pboc.ALG_SM4, 5, 101, 1750, 1)
    assert any("fare 2.50, balance 17.50" in en for _, _, en in lanes["out106"].hw.display_log)


def test_attack_corpus_each_refused_with_its_own_reason_nothing_charged(lanes):
    entry = lanes["in"]
    genuine = card()
    seen = []
    real_apdu = genuine.apdu

    def recording(c):
        r = real_apdu(c)
        seen.append((bytes(c), r))
        return r

    genuine.apdu = recording
    assert tap(entry, genuine)["verdict"] == "PASS"
    init = next(r for c, r in seen if c[:2] == b"\x80\x50")
    debit = next(r for c, r in seen if c[:2] == b"\x80\x54")
    # same number, the recorded answers played back: as they were (the counter gives it
    # away), and with the counter moved past what this reader saw (the PSAM refuses MAC2)
    replay = cards.tunion(genuine.number, purse_mode="replay")
    replay.purse.replay = (init, debit)
    bumped = bytearray(init)
    bumped[5] += 5
    replay2 = cards.tunion(genuine.number, purse_mode="replay")
    replay2.purse.replay = (bytes(bumped), debit)
    wrong = card(issuer=OTHER)
    tampered = card()
    tampered.purse.mitm_mac1 = True
    corpus = [
        ("clone, right number, no keys", cards.tunion(genuine.number), "NO_PURSE"),
        ("clone answering with made-up MACs", card(purse_mode="fake", issuer=None),
         "NOT_GENUINE"),
        ("wrong keys", wrong, "MAC1_REFUSED"),
        ("a whole purchase replayed", replay, "COUNTER_BACK"),
        ("a DEBIT answer replayed", replay2, "NOT_GENUINE"),
        ("MAC1 altered on the way", tampered, "MAC1_REFUSED"),
        ("garbage answers", card(purse_mode="garbage", issuer=None), "PURSE_FORMAT"),
    ]
    before = len(records.purchases(entry.journal()))
    for what, c, reason in corpus:
        got = tap(entry, c)
        assert (got["verdict"], got["reason"]) == ("DENY", reason), what
        assert c.purse.balance == 5000 and not c.purse.debits, what
    assert len(records.purchases(entry.journal())) == before  # nothing journalled as charged
    # a counter rolled back between entry and exit (a restored card image)
    rolled = card()
    assert tap(entry, rolled)["verdict"] == "PASS"
    rolled.purse.counter -= 1
    got = tap(lanes["out"], rolled)
    assert (got["verdict"], got["reason"]) == ("DENY", "COUNTER_BACK")
    assert rolled.purse.balance == 5000 and rolled.purse.trip[1] == 1


def test_fare_rules(lanes):
    broke = card(balance=250)  # below the table's minimum to enter (3 yuan)
    got = tap(lanes["in"], broke)
    assert (got["verdict"], got["reason"]) == ("DENY", "LOW_BALANCE") and not broke.purse.debits
    poor = card(balance=300)
    assert tap(lanes["in"], poor)["verdict"] == "PASS"
    got = tap(lanes["out"], poor)
    assert (got["verdict"], got["reason"]) == ("DENY", "LOW_BALANCE") and poor.balance == 300
    overdraft = card(balance=300, overdraft=200)
    tap(lanes["in"], overdraft)
    got = tap(lanes["out"], overdraft)
    assert (got["verdict"], got["fare"], got["balance"]) == ("PASS", 400, -100)
    assert purchases_of(lanes["out"], overdraft)[0]["balance_after"] == -100
    # no entry record: the penalty, charged, and the gate opens
    sneak = card()
    got = tap(lanes["out"], sneak)
    assert (got["verdict"], got["reason"], got["fare"]) == ("PASS", "PENALTY", 800)
    assert purchases_of(lanes["out"], sneak)[0]["flags"] & records.F_PENALTY
    # exited here moments ago (this gate may not have opened): staff, nothing charged
    got = tap(lanes["out"], sneak)
    assert (got["verdict"], got["reason"]) == ("MANUAL", "EXIT_DONE") and sneak.balance == 4200
    # entry while the last journey has no exit
    open_ = card()
    tap(lanes["in"], open_)
    got = tap(lanes["in"], open_)
    assert (got["verdict"], got["reason"]) == ("MANUAL", "ENTRY_OPEN")
    assert open_.purse.counter == 1


def lane(tmp_path, name, **kw):
    return Lane(tmp_path / name, 104, "exit", KEYS, tmp_path / "keys", epoch=EPOCH, **kw)


def test_configurations_without_psam_or_fare_table(tmp_path):
    nofares = lane(tmp_path, "nofares", spec=None).start()
    c = card()
    try:
        got = tap(nofares, c)
        assert (got["verdict"], got["reason"]) == ("MANUAL", "NO_FARES") and not c.purse.debits
    finally:
        nofares.close()
    nosam = lane(tmp_path, "nosam", sam=False).start()
    try:
        got = tap(nosam, c)
        assert (got["verdict"], got["reason"]) == ("MANUAL", "SAM_FAULT") and not c.purse.debits
    finally:
        nosam.close()
    # no PSAM configured: today's read-only reader; it cannot tell a clone from the card
    ro = lane(tmp_path, "readonly", cfg={"psam": False}, sam=False)
    ro.start = lambda: (ro.reader.boot(entry="main"),
                        ro.reader.wait_for(lambda s: " app ready " in s)) and ro
    ro.start()
    try:
        for c2 in (card(), cards.tunion("3104000012345678")):  # a genuine card, a clone
            got = tap(ro, c2)
            assert (got["verdict"], got["reason"]) == ("PASS", "OK") and not c2.purse.debits
        vs = records.verdicts(ro.journal())
        assert [v["proof"] for v in vs] == ["unauthenticated"] * 2
        assert not records.purchases(ro.journal())
    finally:
        ro.close()


def torn_case(lanes, direction, k):
    """A card torn after byte k of its tap, then tapped again on the same reader. Returns
    (first verdict, second verdict, the card)."""
    c = card(balance=2000)
    if direction == "exit":
        assert tap(lanes["in"], c)["verdict"] == "PASS"
    lane = lanes["in" if direction == "entry" else "out"]

    def tear(cc):
        cc.tear_at = k

    first = tap(lane, c, before=tear)
    if c.torn:
        c.left_field()
    second = tap(lane, c)
    return first, second, c, lane


def check_torn(lanes, direction, k):
    first, second, c, lane = torn_case(lanes, direction, k)
    passes = [t["verdict"] for t in (first, second)].count("PASS")
    fare = 400 if direction == "exit" else 0
    ctx = "k=%d first=%s second=%s" % (k, first, second)
    assert passes == 1, ctx  # the gate opened once for the journey
    assert c.purse.balance == 2000 - fare, ctx  # charged once
    assert c.purse.trip[1] == (2 if direction == "exit" else 1), ctx
    ps = purchases_of(lane, c)
    debits = [d for d in c.purse.debits
              if direction == "entry" or d[0] >= 1]  # exit: leave out the entry's debit
    assert sorted(p["counter"] for p in ps) == sorted(d[0] for d in debits), ctx
    assert sum(p["amount"] for p in ps) == fare and all(tac_ok(p) for p in ps), ctx
    return first["reason"]


def exchange_bytes(lanes, direction):
    c = card(balance=2000)
    if direction == "exit":
        tap(lanes["in"], c)
    c.apdus.clear()
    lane = lanes["in" if direction == "entry" else "out"]
    real = c.apdu
    total = [0]

    def count(a):
        r = real(a)
        total[0] += len(a) + len(r)
        return r

    c.apdu = count
    assert tap(lane, c)["verdict"] == "PASS"
    return total[0]


@pytest.mark.parametrize("direction", ["entry", "exit"])
def test_torn_at_every_byte_short(lanes, direction):
    """Tearing at a spread of bytes, and at every byte of the DEBIT exchange (the long form
    tears at every byte of the tap)."""
    n = exchange_bytes(lanes, direction)
    picks = sorted(set(range(0, n, 17)) | set(range(n - 12, n + 1)))
    reasons = {check_torn(lanes, direction, k) for k in picks}
    assert "TORN" in reasons and "OK" in reasons


@pytest.mark.long
@pytest.mark.parametrize("direction", ["entry", "exit"])
def test_torn_at_every_byte_long(lanes, direction):
    n = exchange_bytes(lanes, direction)
    t0 = time.monotonic()
    reasons = [check_torn(lanes, direction, k) for k in range(n + 1)]
    print("%s: %d tear points, %.0f s, first-tap reasons %s" % (
        direction, n + 1, time.monotonic() - t0, sorted(set(reasons))))


def test_torn_debit_is_finished_after_a_power_cut(lanes, tmp_path):
    """The card leaves with its DEBIT answered by nobody, and the reader loses power before it
    comes back: after the reboot its next tap finishes the purchase with GET TRANSACTION PROVE
    (the torn debit comes back from flash): charged once, the gate opened once, the TAC in the
    journal."""
    out = Lane(tmp_path / "out", 104, "exit", KEYS, tmp_path / "keys", epoch=EPOCH + 900)
    try:
        out.start()
        n = exchange_bytes({"in": lanes["in"], "out": out}, "exit")
        for k in range(n - 12, n + 1):  # the DEBIT's answer lost after the card debited
            c = card(balance=2000)
            assert tap(lanes["in"], c)["verdict"] == "PASS"
            first = tap(out, c, before=lambda cc, k=k: setattr(cc, "tear_at", k))
            if first["reason"] == "TORN" and len(c.purse.debits) == 2:
                break
        else:
            raise AssertionError("no tear point left the debit done and unanswered")
        c.left_field()
        out.reader.power_cut()
        out.start()
        second = tap(out, c)
        assert (second["verdict"], second.get("fare")) == ("PASS", 400), second
        assert c.purse.balance == 1600 and c.purse.trip[1] == 2
        ps = purchases_of(out, c)
        assert [p["counter"] for p in ps if p["amount"]] == [c.purse.debits[1][0]]
        assert sum(p["amount"] for p in ps) == 400 and all(tac_ok(p) for p in ps)
        assert any(p["flags"] & records.F_RECOVERED for p in ps)
    finally:
        out.close()

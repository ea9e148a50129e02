"""The reader's ride-code verifier on MicroPython (compiled build), RC1 codes (the format kept
for the migration; RC2 in test_ridecode_rc2.py): every refusal has its own reason, genuine
codes pass once, no trusted time never passes, and RC1 is refused once it is switched off."""

import pytest
from test_ridecode_support import DAY, NOW, make_world, verify

from flashtool.codes import issuer as cc

base45 = cc.base45


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def _retext(text, mutate):
    """Decode a code, let `mutate` change the binary, encode again (a clean re-encoding: the
    tamper reaches the verifier's crypto checks instead of failing base45)."""
    raw = bytearray(base45.decode(text[4:]))
    mutate(raw)
    return b"RC1:" + base45.encode(bytes(raw))


def test_valid_code_passes_once_and_fills_the_credential(mp, world):
    code = world.code()
    again = world.code(counter=2)
    rows, stats = verify(mp, world, [(NOW, code), (NOW + 1, code), (NOW + 2, again)])
    ok = rows[0]
    assert ok["result"] == "ok" and ok["error"] == 0 and ok["kind"] == 4
    assert ok["ident"] == "3104770011223344556F" and ok["category"] == 5
    assert ok["valid_to"] == 20261224 and ok["issued_at"] == NOW - 5
    assert rows[1]["result"] == "replayed" and rows[1]["error"] == 8
    assert rows[2]["result"] == "ok"  # the next refresh of the same phone
    assert stats[:2] == [2, 1]  # one RSA verify, then the certificate came from the cache


def test_each_refusal_has_its_own_reason(mp, world):
    w = world
    unknown = w.make_cert(key=w.stranger, kid=9)
    cases = {
        "forged-cert": _retext(w.code(), lambda b: b.__setitem__(5, b[5] ^ 1)),  # account
        "forged-sig": _retext(w.code(), lambda b: b.__setitem__(100, b[100] ^ 0x80)),
        "forged-dyn": _retext(w.code(), lambda b: b.__setitem__(len(b) - 17, b[-17] ^ 1)),
        "forged-mac": _retext(w.code(), lambda b: b.__setitem__(len(b) - 1, b[-1] ^ 1)),
        "wrong-day-key": w.code(day=DAY + 5),
        "other-issuer-sig": w.code(cert=w.make_cert(key=w.stranger, kid=1)),
        "truncated": w.code()[:-3],
        "truncated-binary": _retext(w.code(), lambda b: b.__delitem__(slice(-1, None))),
        "extended": _retext(w.code(), lambda b: b.append(0)),
        "bad-char": w.code()[:-1] + b"a",
        "no-prefix": w.code()[4:],
        "empty": b"",
        "expired": w.code(cert=w.make_cert(valid_from=NOW - 100 * 86400, valid_to=NOW - 1)),
        "not-yet-valid": w.code(cert=w.make_cert(valid_from=NOW + 3600, valid_to=NOW + 86400)),
        "unknown-key": w.code(cert=unknown),
        "no-day-key": w.code(gen=NOW - 5 - 3 * 86400),
        "revoked": w.code(cert=w.make_cert(key=w.revoked, kid=2)),
        "stale": w.code(gen=NOW - 61),
        "future": w.code(gen=NOW + 31),
        "bad-version": _retext(w.code(), lambda b: b.__setitem__(0, 2)),
        "bad-account": _retext(w.code(), lambda b: b.__setitem__(4, 0x0A)),
    }
    want = {
        "forged-cert": "forged", "forged-sig": "forged", "forged-dyn": "forged",
        "forged-mac": "forged", "wrong-day-key": "forged", "other-issuer-sig": "forged",
        "truncated": "malformed", "truncated-binary": "malformed", "extended": "malformed",
        "bad-char": "malformed", "no-prefix": "malformed", "empty": "malformed",
        "expired": "expired", "not-yet-valid": "not-yet-valid", "unknown-key": "unknown-key",
        "no-day-key": "stale", "revoked": "revoked", "stale": "stale", "future": "stale",
        "bad-version": "malformed", "bad-account": "malformed",
    }
    names = list(cases)
    rows, _ = verify(mp, world, [(NOW, cases[k]) for k in names])
    got = {k: r["result"] for k, r in zip(names, rows)}
    assert got == want
    assert all(r["error"] == RESULT_CODES[r["result"]] for r in rows)


RESULT_CODES = {"ok": 0, "malformed": 1, "forged": 2, "unknown-key": 3, "revoked": 4,
                "expired": 5, "not-yet-valid": 6, "stale": 7, "replayed": 8,
                "no-trusted-time": 9, "non-canonical": 10, "bad-key": 11, "retired": 12}


def test_day_key_missing_is_unknown_key_when_fresh(mp, world):
    """A fresh code dated on a day the reader holds no key for (key set not refreshed)."""
    w = world
    cert = w.make_cert()
    gen = (DAY + 2) * 86400 + 1  # just after midnight, beyond the key set's last day
    code = cc.make_code(cert, cc.user_key(cc.day_key(w.master, DAY + 2), cert), gen, 1)
    rows, _ = verify(mp, world, [(gen + 5, code)])
    assert rows[0]["result"] == "unknown-key"


def test_freshness_window_and_skew_are_configurable(mp, world):
    w = world
    cases = [(NOW, w.code(gen=NOW - 20 - 10, counter=3)),  # exactly window + skew: ok
             (NOW, w.code(gen=NOW - 20 - 11, counter=4)),  # one second more: stale
             (NOW, w.code(gen=NOW + 10, counter=5)),  # phone clock ahead by the skew: ok
             (NOW, w.code(gen=NOW - 5, counter=6))]
    rows, _ = verify(mp, world, cases)
    assert [r["result"] for r in rows] == ["ok", "stale", "ok", "ok"]
    rows, _ = verify(mp, world, cases, window_s=3, skew_s=2)
    assert [r["result"] for r in rows] == ["stale", "stale", "stale", "ok"]


def test_screenshot_stops_working_within_30s(mp, world):
    code = world.code(gen=NOW, counter=77)
    rows, _ = verify(mp, world, [(NOW + 30, code), (NOW + 31, world.code(gen=NOW, counter=78))])
    assert [r["result"] for r in rows] == ["ok", "stale"]  # default window 20 s + skew 10 s


def test_rc1_is_refused_once_switched_off(mp, world):
    rows, _ = verify(mp, world, [(NOW, world.code(counter=90)), (NOW, b"RC1:")], rc1=False)
    assert [r["result"] for r in rows] == ["retired", "retired"]


def test_no_trusted_time_is_manual_check_never_pass(mp, world):
    w = world
    forged = _retext(w.code(), lambda b: b.__setitem__(len(b) - 1, b[-1] ^ 1))
    expired = w.code(cert=w.make_cert(valid_from=NOW - 100 * 86400, valid_to=NOW - 1))
    rows, _ = verify(mp, world, [(None, w.code()), (None, w.code(gen=NOW - 86400)),
                                 (None, forged), (None, expired), (None, b"junk")])
    assert [r["result"] for r in rows] == ["no-trusted-time", "no-trusted-time", "forged",
                                           "no-trusted-time", "malformed"]
    assert rows[0]["ident"] == "3104770011223344556F"  # staff see whose code it is


def test_replay_cache_is_bounded_and_counts_fresh_evictions(mp, world):
    codes = [world.code(counter=c) for c in range(10, 16)]
    rows, stats = verify(mp, world, [(NOW, c) for c in codes] + [(NOW, codes[-1])],
                         replay_slots=4)
    assert [r["result"] for r in rows] == ["ok"] * 6 + ["replayed"]
    assert stats[2] == 2  # the ring wrapped twice over still-fresh entries: reported


def test_certificate_cache_is_lru_and_bounded(mp, world):
    w = world
    certs = [w.make_cert(account="ACC%d" % i) for i in range(3)]
    seq = [0, 1, 2, 0, 1, 2]  # cache of 2: every scan evicts the one needed next
    rows, stats = verify(mp, world, [(NOW, w.code(cert=certs[i], counter=k))
                                     for k, i in enumerate(seq)], cache_slots=2)
    assert all(r["result"] == "ok" for r in rows)
    assert stats[:2] == [0, 6]
    seq = [0, 1, 0, 2, 0, 1]  # 0 stays recent: hits on its repeats
    rows, stats = verify(mp, world, [(NOW, w.code(cert=certs[i], counter=20 + k))
                                     for k, i in enumerate(seq)], cache_slots=2)
    assert all(r["result"] == "ok" for r in rows)
    assert stats[:2] == [2, 4]

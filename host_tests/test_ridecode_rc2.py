"""RC2 ride codes on the reader's verifier (MicroPython, compiled build): per-rider P-256 keys
certified by the issuer, dynamic parts signed on the phone. Every refusal has its own reason;
an attacker holding everything a reader stores cannot make a code that passes (while the same
material mints RC1 codes: the risk RC2 removes)."""

import hashlib
import struct

import pytest
from test_ridecode_crypto import bleichenbacher_forgery
from test_ridecode_support import DAY, NOW, make_world, verify

from flashtool.codes import issuer as cc
from flashtool.codes import rider as app
from flashtool.codes.issuer import layout

base45 = cc.base45
N = app.N


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def _retext(text, mutate):
    """Decode a code, let `mutate` change the binary, encode again (a clean re-encoding: the
    tamper reaches the crypto checks instead of failing base45)."""
    raw = bytearray(base45.decode(text[4:]))
    mutate(raw)
    return text[:4] + base45.encode(bytes(raw))


def _flip(i, bit=1):
    def f(raw):
        raw[i] ^= bit
    return f


def _set_s(value_of):
    """Replace the rider signature's s by value_of(s)."""
    def f(raw):
        s = int.from_bytes(raw[-32:], "big")
        raw[-32:] = value_of(s).to_bytes(32, "big")
    return f


def _cert2_with_key(world, pub, hi):
    """A certificate the issuer really signed, binding whatever 128 bytes it was given (an
    issuer that skipped its own key check)."""
    body = cc._cert_body(layout.VERSION2, 1, 5, "BADKEY01", NOW - 86400, NOW + 86400)
    return cc._signed(world.issuer, layout.CERT2_DOMAIN, body + pub + hi)


def test_valid_code_passes_once_and_fills_the_credential(mp, world):
    w = world
    code, again = w.code2(), w.code2(counter=2)
    assert code.startswith(b"RC2:") and len(code) == 733  # a 20-character account
    rows, stats = verify(mp, w, [(NOW, code), (NOW + 1, code), (NOW + 2, again)], rc1=False)
    ok = rows[0]
    assert ok["result"] == "ok" and ok["error"] == 0 and ok["kind"] == 4
    assert ok["ident"] == "3104770011223344556F" and ok["category"] == 5
    assert ok["valid_to"] == 20261224 and ok["issued_at"] == NOW - 5
    assert [r["result"] for r in rows[1:]] == ["replayed", "ok"]
    assert stats[:2] == [2, 1]  # one RSA and key check; the refresh came from the cache


def test_each_refusal_has_its_own_reason(mp, world):
    w = world
    sig_at = -64
    bad_point = w.make_cert2()[12 + 20: 12 + 20 + 64]
    bad_point = bad_point[:63] + bytes([bad_point[63] ^ 1])  # y off by one: not on the curve
    good_pub = app.public_bytes(w.rider)
    cases = {
        "tampered-cert": _retext(w.code2(), _flip(5)),  # the account
        "tampered-key": _retext(w.code2(), _flip(12 + 20 + 3)),  # the rider key
        "tampered-gen": _retext(w.code2(), _flip(sig_at - 3)),  # the counter (dynamic part)
        "forged-sig": _retext(w.code2(), _flip(sig_at + 7)),  # r
        "other-rider": w.code2(rider=w.other_rider),  # signed by someone else's key
        "other-cert": app.layout.PREFIX2 + base45.encode(  # a signature moved to another cert
            w.make_cert2(account="ACC-OTHER") + app.dynamic2(w.rider, w.cert2, NOW - 5, 9)),
        "high-s": _retext(w.code2(counter=3), _set_s(lambda s: N - s)),  # malleated
        "s-zero": _retext(w.code2(), _set_s(lambda s: 0)),
        "s-is-n": _retext(w.code2(), _set_s(lambda s: N)),
        "off-curve-key": w.code2(cert=_cert2_with_key(w, bad_point, bad_point)),
        "off-curve-hi": w.code2(cert=_cert2_with_key(w, good_pub, bad_point)),
        "truncated": w.code2()[:-3],
        "truncated-binary": _retext(w.code2(), lambda b: b.__delitem__(slice(-1, None))),
        "extended": _retext(w.code2(), lambda b: b.append(0)),
        "rc1-body": app.layout.PREFIX2 + w.code()[4:],  # an RC1 binary behind RC2:
        "version-1": _retext(w.code2(), lambda b: b.__setitem__(0, 1)),
        "expired": w.code2(cert=w.make_cert2(valid_from=NOW - 100 * 86400, valid_to=NOW - 1)),
        "not-yet-valid": w.code2(cert=w.make_cert2(valid_from=NOW + 3600, valid_to=NOW + 86400)),
        "stale": w.code2(gen=NOW - 31),
        "future": w.code2(gen=NOW + 11),
        "unknown-issuer": w.code2(cert=w.make_cert2(key=w.stranger, kid=9)),
        "other-issuer-sig": w.code2(cert=w.make_cert2(key=w.stranger, kid=1)),
        "revoked": w.code2(cert=w.make_cert2(key=w.revoked, kid=2)),
        "rc1": w.code(),
    }
    want = {
        "tampered-cert": "forged", "tampered-key": "forged", "tampered-gen": "forged",
        "forged-sig": "forged", "other-rider": "forged", "other-cert": "forged",
        "high-s": "non-canonical", "s-zero": "non-canonical", "s-is-n": "non-canonical",
        "off-curve-key": "bad-key", "off-curve-hi": "bad-key", "truncated": "malformed",
        "truncated-binary": "malformed", "extended": "malformed", "rc1-body": "malformed",
        "version-1": "malformed", "expired": "expired", "not-yet-valid": "not-yet-valid",
        "stale": "stale", "future": "stale", "unknown-issuer": "unknown-key",
        "other-issuer-sig": "forged", "revoked": "revoked", "rc1": "retired",
    }
    names = list(cases)
    rows, _ = verify(mp, w, [(NOW, cases[k]) for k in names], rc1=False)
    assert {k: r["result"] for k, r in zip(names, rows)} == want


def test_a_malleated_copy_is_no_second_pass(mp, world):
    """n - s makes a second valid signature of the same message: refused as non-canonical, and
    the replay cache keys on the signed message, not on the signature bytes."""
    code = world.code2(counter=40)
    rows, _ = verify(mp, world, [(NOW, code), (NOW, _retext(code, _set_s(lambda s: N - s))),
                                 (NOW, code)], rc1=False)
    assert [r["result"] for r in rows] == ["ok", "non-canonical", "replayed"]


def test_freshness_is_30s_by_default_and_configurable(mp, world):
    w = world
    cases = [(NOW, w.code2(gen=NOW - 30, counter=11)), (NOW, w.code2(gen=NOW - 31, counter=12)),
             (NOW, w.code2(gen=NOW + 10, counter=13)), (NOW, w.code2(gen=NOW + 11, counter=14))]
    rows, _ = verify(mp, w, cases, rc1=False)
    assert [r["result"] for r in rows] == ["ok", "stale", "ok", "stale"]
    rows, _ = verify(mp, w, cases, rc1=False, window_s=40, skew_s=20)
    assert [r["result"] for r in rows] == ["ok", "ok", "ok", "ok"]


def test_no_trusted_time_is_manual_check_never_pass(mp, world):
    w = world
    forged = _retext(w.code2(), _flip(-40))
    rows, _ = verify(mp, w, [(None, w.code2()), (None, w.code2(gen=NOW - 86400)),
                             (None, forged), (None, b"junk")], rc1=False)
    assert [r["result"] for r in rows] == ["no-trusted-time", "no-trusted-time", "forged",
                                           "malformed"]
    assert rows[0]["ident"] == "3104770011223344556F"


def test_certificate_cache_keeps_a_checked_key(mp, world):
    """A cached certificate skips the RSA check and the key check, never the rider's
    signature: a second code with a bad signature is still refused."""
    w = world
    rows, stats = verify(mp, w, [(NOW, w.code2(counter=50)),
                                 (NOW, _retext(w.code2(counter=51), _flip(-10))),
                                 (NOW, w.code2(counter=52))], rc1=False)
    assert [r["result"] for r in rows] == ["ok", "forged", "ok"]
    assert stats[:2] == [2, 1]


# -- an attacker with everything a reader stores -------------------------------------------
def attacker_codes(world, certs1, certs2):
    """Every code an attacker can make from what a reader stores (its key set, with the issuer
    public keys and the RC1 day keys, its configuration and root public key) plus the codes
    it has seen (certificates of real riders, RC1 and RC2). Yields (label, text)."""
    stored = cc.keyset_mod.load(world.keyset, world.root["n"], world.root["e"])
    mine = app.rider_key(seed=666)  # the attacker's own key pair
    gen = NOW - 2
    for i, cert in enumerate(certs1):  # RC1: the day keys are on the reader
        day = stored.days[gen // layout.DAY_S]
        yield "rc1-%d" % i, cc.make_code(cert, cc.user_key(day, cert), gen, 1000 + i)
    for i, cert in enumerate(certs2):
        ctr = 2000 + i
        msg = app.signed_message(cert, gen, ctr)
        dyn = struct.pack(">IH", gen, ctr)
        # a fresh dynamic part signed with the attacker's key, or with anything the stored
        # material yields (a day key's MAC stretched to 64 bytes, the cert's own signature)
        for label, sig in (("own-key", app.sign_low_s(mine, msg)),
                           ("day-key", hashlib.sha512(stored.days[DAY] + msg).digest()),
                           ("issuer-sig", cert[-64:]), ("zero", bytes(64))):
            yield "rc2-%d-%s" % (i, label), layout.PREFIX2 + base45.encode(cert + dyn + sig)
        # the certified key swapped for the attacker's (issuer signature left as it was)
        acc = cert[3]
        at = layout.CERT_FIXED + acc
        pub = app.public_bytes(mine)
        swapped = cert[:at] + pub + app.key_hi(pub) + cert[at + layout.RIDER_KEYS:]
        yield "rc2-%d-swap" % i, app.make_code2(swapped, mine, gen, ctr)
    # a new certificate for the attacker's key: no issuer private key, so a signature copied
    # from a real certificate, or the e = 3 forgery that fools lax PKCS#1 parsers
    pub = app.public_bytes(mine)
    body = cc._cert_body(layout.VERSION2, 1, 5, "ATTACKER", NOW - 86400, NOW + 86400)
    body += pub + app.key_hi(pub)
    digest = hashlib.sha256(layout.CERT2_DOMAIN + body).digest()
    for label, sig in (("copied", certs2[0][-256:]),
                       ("e3-forgery", bleichenbacher_forgery(digest)[0])):
        yield "new-cert-" + label, app.make_code2(body + sig, mine, gen, 3000)


def test_an_attacker_with_the_readers_keys_makes_nothing_that_passes(mp, world):
    w = world
    certs1 = [w.make_cert(account="RIDER-%d" % i) for i in range(3)]
    certs2 = [w.make_cert2(account="RIDER-%d" % i, rider=app.rider_key(seed=10 + i))
              for i in range(3)]
    made = list(attacker_codes(w, certs1, certs2))
    texts = [t for _, t in made]
    labels = [k for k, _ in made]
    rows, _ = verify(mp, w, [(NOW, t) for t in texts], rc1=False)
    got = dict(zip(labels, (r["result"] for r in rows)))
    assert not [k for k, r in got.items() if r == "ok"]
    assert {r for k, r in got.items() if k.startswith("rc1")} == {"retired"}
    assert {r for k, r in got.items() if not k.startswith("rc1")} <= {"forged", "non-canonical"}
    # the same material while RC1 is still allowed: every RC1 code it mints passes
    rows, _ = verify(mp, w, [(NOW, t) for t in texts], rc1=True)
    got = dict(zip(labels, (r["result"] for r in rows)))
    assert {r for k, r in got.items() if k.startswith("rc1")} == {"ok"}
    assert "ok" not in {r for k, r in got.items() if not k.startswith("rc1")}

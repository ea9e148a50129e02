"""RC2 ride codes on the reader's verifier (MicroPython, compiled build): per-rider keys
(RSA-2048 e = 3 by default, ECDSA P-256 where configured) certified by the issuer, dynamic parts
signed on the phone. Every refusal has its own reason; an attacker holding everything a reader
stores cannot make a code that passes (while the same material mints RC1 codes: the risk RC2
removes)."""

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
ACC = 20  # the default account's length
KEY_AT = layout.CERT_FIXED + ACC + 1  # the rider key, after the algorithm byte


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


class Kind:
    """One rider-key algorithm as the tests use it: its riders, certificate, signature size
    and the verifier option that accepts it."""

    def __init__(self, w, alg):
        self.alg = alg
        rsa = alg == layout.ALG_RSA3
        self.rider, self.other = (w.rider, w.other_rider) if rsa else (w.ec_rider, w.ec_other)
        self.cert = w.make_cert2(rider=self.rider)
        self.sig = layout.RSA_SIG if rsa else layout.RIDER_SIG
        self.key = layout.RSA_KEY if rsa else layout.RIDER_KEYS
        self.length = 1215 if rsa else 735  # characters, with a 20-character account
        self.opts = dict(rc1=False, p256=not rsa)
        self.modulus = int.from_bytes(self.cert[KEY_AT:KEY_AT + 256], "big") if rsa else 0


@pytest.fixture(params=[layout.ALG_RSA3, layout.ALG_P256], ids=["rsa3", "p256"])
def kind(request, world):
    return Kind(world, request.param)


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


def _set_s(value_of, n=32):
    """Replace the last n bytes of the rider signature (ECDSA: s; RSA: all of it) by
    value_of(their value)."""
    def f(raw):
        s = int.from_bytes(raw[-n:], "big")
        raw[-n:] = value_of(s).to_bytes(n, "big")
    return f


def _other_rider_result(k):
    """What a code signed by another rider's key gets: an RSA signature is a number below the
    signer's modulus, so under the certified one it may be out of range (non-canonical)."""
    if k.alg != layout.ALG_RSA3:
        return "forged"
    s = int.from_bytes(app.dynamic2(k.other, k.cert, NOW - 5, 1)[6:], "big")
    return "non-canonical" if s >= k.modulus else "forged"


def _cert2_with_key(world, alg, key):
    """A certificate the issuer really signed, binding whatever key bytes it was given (an
    issuer that skipped its own key check)."""
    body = cc._cert_body(layout.VERSION2, 1, 5, "BADKEY01", NOW - 86400, NOW + 86400)
    return cc._signed(world.issuer, layout.CERT2_DOMAIN, body + bytes([alg]) + key)


def test_valid_code_passes_once_and_fills_the_credential(mp, world, kind):
    w = world
    code = w.code2(cert=kind.cert)
    again = w.code2(cert=kind.cert, counter=2)
    assert code.startswith(b"RC2:") and len(code) == kind.length
    rows, stats = verify(mp, w, [(NOW, code), (NOW + 1, code), (NOW + 2, again)], **kind.opts)
    ok = rows[0]
    assert ok["result"] == "ok" and ok["error"] == 0 and ok["kind"] == 4
    assert ok["ident"] == "3104770011223344556F" and ok["category"] == 5
    assert ok["valid_to"] == 20261224 and ok["issued_at"] == NOW - 5
    assert [r["result"] for r in rows[1:]] == ["replayed", "ok"]
    assert stats[:2] == [2, 1]  # one issuer check; the refresh came from the cache


def test_each_refusal_has_its_own_reason(mp, world, kind):
    w, k = world, kind

    def code(**kw):
        return w.code2(**dict(dict(cert=k.cert), **kw))

    sig_at = -k.sig
    if k.alg == layout.ALG_RSA3:
        mod = k.modulus.to_bytes(256, "big")
        bad_keys = {"even-modulus": mod[:-1] + bytes([mod[-1] ^ 1]),
                    "short-modulus": bytes([0x7F]) + mod[1:]}
        malleated = {"s-is-n": _set_s(lambda s: k.modulus, 256),
                     "s-all-ones": _set_s(lambda s: 2 ** 2048 - 1, 256)}
        zero = {"s-zero": ("forged", _set_s(lambda s: 0, 256))}
    else:
        good_pub = app.public_bytes(k.rider)
        bad_point = good_pub[:63] + bytes([good_pub[63] ^ 1])  # y off by one: not on the curve
        bad_keys = {"off-curve-key": bad_point + bad_point,
                    "off-curve-hi": good_pub + bad_point}
        malleated = {"high-s": _set_s(lambda s: N - s), "s-is-n": _set_s(lambda s: N)}
        zero = {"s-zero": ("non-canonical", _set_s(lambda s: 0))}
    cases = {
        "tampered-cert": (_retext(code(), _flip(5)), "forged"),  # the account
        "tampered-key": (_retext(code(), _flip(KEY_AT + 3)), "forged"),  # the rider key
        "tampered-alg": (_retext(code(), _flip(KEY_AT - 1, 3)), "malformed"),  # no such alg
        "tampered-gen": (_retext(code(), _flip(sig_at - 3)), "forged"),  # the counter
        "forged-sig": (_retext(code(), _flip(sig_at + 7)), "forged"),
        "other-rider": (code(rider=k.other), _other_rider_result(k)),  # someone else's key
        "other-cert": (app.layout.PREFIX2 + base45.encode(  # a signature moved to another cert
            w.make_cert2(account="ACC-OTHER", rider=k.rider)
            + app.dynamic2(k.rider, k.cert, NOW - 5, 9)), "forged"),
        "truncated": (code()[:-3], "malformed"),
        "truncated-binary": (_retext(code(), lambda b: b.__delitem__(slice(-1, None))),
                             "malformed"),
        "extended": (_retext(code(), lambda b: b.append(0)), "malformed"),
        "rc1-body": (app.layout.PREFIX2 + w.code()[4:], "malformed"),
        "version-1": (_retext(code(), lambda b: b.__setitem__(0, 1)), "malformed"),
        "expired": (code(cert=w.make_cert2(valid_from=NOW - 100 * 86400, valid_to=NOW - 1,
                                           rider=k.rider)), "expired"),
        "not-yet-valid": (code(cert=w.make_cert2(valid_from=NOW + 3600, valid_to=NOW + 86400,
                                                 rider=k.rider)), "not-yet-valid"),
        "stale": (code(gen=NOW - 31), "stale"),
        "future": (code(gen=NOW + 11), "stale"),
        "unknown-issuer": (code(cert=w.make_cert2(key=w.stranger, kid=9, rider=k.rider)),
                           "unknown-key"),
        "other-issuer-sig": (code(cert=w.make_cert2(key=w.stranger, kid=1, rider=k.rider)),
                             "forged"),
        "revoked": (code(cert=w.make_cert2(key=w.revoked, kid=2, rider=k.rider)), "revoked"),
        "rc1": (w.code(), "retired"),
    }
    for name, key in bad_keys.items():
        cases[name] = (code(cert=_cert2_with_key(w, k.alg, key), rider=k.rider), "bad-key")
    for name, f in malleated.items():
        cases[name] = (_retext(code(counter=3), f), "non-canonical")
    for name, (want, f) in zero.items():
        cases[name] = (_retext(code(), f), want)
    names = list(cases)
    rows, _ = verify(mp, w, [(NOW, cases[x][0]) for x in names], **k.opts)
    assert {x: r["result"] for x, r in zip(names, rows)} == {x: cases[x][1] for x in names}


def test_p256_codes_are_refused_unless_configured(mp, world):
    """P-256 rider keys cost some 16 M instructions a verify on a 32-bit core (over the ESP32
    budget): a reader accepts them only with p256=True; otherwise they are `key-off`, before
    any signature work."""
    w = world
    ec = w.code2(cert=w.make_cert2(rider=w.ec_rider))
    rows, stats = verify(mp, w, [(NOW, ec), (NOW, w.code2())], rc1=False)
    assert [r["result"] for r in rows] == ["key-off", "ok"]
    assert stats[:2] == [0, 1]
    rows, _ = verify(mp, w, [(NOW, ec), (NOW, w.code2(counter=5))], rc1=False, p256=True)
    assert [r["result"] for r in rows] == ["ok", "ok"]


def test_a_malleated_copy_is_no_second_pass(mp, world):
    """P-256: n - s makes a second valid signature of the same message: refused as
    non-canonical, and the replay cache keys on the signed message, not on the signature
    bytes. (RSA PKCS#1 v1.5: one signature per message below n; s + n is refused.)"""
    code = world.code2(cert=world.make_cert2(rider=world.ec_rider), counter=40)
    rows, _ = verify(mp, world, [(NOW, code), (NOW, _retext(code, _set_s(lambda s: N - s))),
                                 (NOW, code)], rc1=False, p256=True)
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
    """A cached certificate skips the issuer check, never the rider's signature: a second
    code with a bad signature is still refused."""
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
    it has seen (certificates of real riders, RC1 and RC2 of both rider-key algorithms).
    Yields (label, text)."""
    stored = cc.keyset_mod.load(world.keyset, world.root["n"], world.root["e"])
    mine = {layout.ALG_RSA3: app.rider_key(seed="attacker"), layout.ALG_P256: app.rider_key(
        seed=666, alg=layout.ALG_P256)}  # the attacker's own key pairs
    gen = NOW - 2
    for i, cert in enumerate(certs1):  # RC1: the day keys are on the reader
        day = stored.days[gen // layout.DAY_S]
        yield "rc1-%d" % i, cc.make_code(cert, cc.user_key(day, cert), gen, 1000 + i)
    for i, cert in enumerate(certs2):
        ctr = 2000 + i
        at = layout.CERT_FIXED + cert[3]
        alg = cert[at]
        klen, slen = layout.RIDER_ALGS[alg]
        msg = app.signed_message(cert, gen, ctr)
        dyn = struct.pack(">IH", gen, ctr)
        own = app.dynamic2(mine[alg], cert, gen, ctr)[6:]
        # a fresh dynamic part signed with the attacker's key, or with anything the stored
        # material yields (a day key's MAC stretched, the cert's own signature, the e = 3
        # forgery that fools lax PKCS#1 parsers), or nothing
        stretched = b"".join(hashlib.sha512(stored.days[DAY] + msg + bytes([j])).digest()
                             for j in range(4))[:slen]
        digest = hashlib.sha256(msg).digest()
        for label, sig in (("own-key", own), ("day-key", stretched),
                           ("issuer-sig", cert[-slen:]), ("zero", bytes(slen)),
                           ("e3-forgery", bleichenbacher_forgery(digest)[0][-slen:])):
            yield "rc2-%d-%s" % (i, label), layout.PREFIX2 + base45.encode(cert + dyn + sig)
        # the certified key swapped for the attacker's (issuer signature left as it was)
        pub = app.public_bytes(mine[alg])
        if alg == layout.ALG_P256:
            pub += app.key_hi(pub)
        swapped = cert[:at + 1] + pub + cert[at + 1 + klen:]
        yield "rc2-%d-swap" % i, app.make_code2(swapped, mine[alg], gen, ctr)
    # a new certificate for the attacker's key: no issuer private key, so a signature copied
    # from a real certificate, or the e = 3 forgery that fools lax PKCS#1 parsers
    for alg, key in mine.items():
        pub = app.public_bytes(key)
        if alg == layout.ALG_P256:
            pub += app.key_hi(pub)
        body = cc._cert_body(layout.VERSION2, 1, 5, "ATTACKER", NOW - 86400, NOW + 86400)
        body += bytes([alg]) + pub
        digest = hashlib.sha256(layout.CERT2_DOMAIN + body).digest()
        for label, sig in (("copied", certs2[0][-256:]),
                           ("e3-forgery", bleichenbacher_forgery(digest)[0])):
            yield "new-cert-%d-%s" % (alg, label), app.make_code2(body + sig, key, gen, 3000)


def test_an_attacker_with_the_readers_keys_makes_nothing_that_passes(mp, world):
    w = world
    certs1 = [w.make_cert(account="RIDER-%d" % i) for i in range(3)]
    riders = [app.rider_key(seed="rider-%d" % i) for i in range(2)] + [
        app.rider_key(seed=10 + i, alg=layout.ALG_P256) for i in range(2)]
    certs2 = [w.make_cert2(account="RIDER-%d" % i, rider=r) for i, r in enumerate(riders)]
    made = list(attacker_codes(w, certs1, certs2))
    texts = [t for _, t in made]
    labels = [k for k, _ in made]
    rows, _ = verify(mp, w, [(NOW, t) for t in texts], rc1=False, p256=True)
    got = dict(zip(labels, (r["result"] for r in rows)))
    assert not [k for k, r in got.items() if r == "ok"]
    assert {r for k, r in got.items() if k.startswith("rc1")} == {"retired"}
    assert {r for k, r in got.items() if not k.startswith("rc1")} <= {"forged", "non-canonical"}
    # the same material while RC1 is still allowed: every RC1 code it mints passes
    rows, _ = verify(mp, w, [(NOW, t) for t in texts], rc1=True, p256=True)
    got = dict(zip(labels, (r["result"] for r in rows)))
    assert {r for k, r in got.items() if k.startswith("rc1")} == {"ok"}
    assert "ok" not in {r for k, r in got.items() if not k.startswith("rc1")}


def test_prefetch_checks_the_certificate_while_the_code_arrives(mp, world):
    """The QR task hands the verifier each part of a code as it arrives: once the certificate
    is in (823 characters of an RSA code), its issuer signature is checked into the cache, once
    per code; the check of the whole code is then warm. A forged certificate is not cached,
    and a text that is no RC2 code costs nothing."""
    w = world
    good = w.code2(counter=60)
    forged = _retext(w.code2(counter=61), _flip(5))
    out = mp("""
        import credential
        from ridecode import keyset, verifier
        ks = keyset.load(open(%r, "rb").read(), %d, %d)
        class Clock:
            def time(self):
                return %d
        v = verifier.Verifier(ks, Clock())
        cred = credential.Credential()
        for at, text in enumerate((%r, %r, b"RC1:ABC", b"hello world, no code")):
            done = [v.prefetch(text, k, at) for k in (0, 3, 9, 822, 823, len(text))]
            print(done, v.prefetches, v.certs.hits, v.certs.misses,
                  v.check(text, len(text), cred), v.certs.hits, v.certs.misses)
    """ % (str(w.ks_path), w.root["n"], w.root["e"], NOW, good, forged))
    lines = out.splitlines()
    assert lines[0] == "[False, False, False, False, True, True] 1 0 1 0 1 1"  # ok, warm
    assert lines[1] == "[False, False, False, False, True, True] 2 1 2 2 1 3"  # forged twice
    assert lines[2] == "[False, False, False, True, True, True] 2 1 3 12 1 3"  # RC1: retired
    assert lines[3] == "[False, False, False, True, True, True] 2 1 3 1 1 3"  # malformed

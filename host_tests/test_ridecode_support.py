"""Shared material for the ride-code tests: locally generated keys (never committed), a signed
key set, code builders (flashtool/codes/issuer.py, the issuer side; flashtool/codes/rider.py,
the app's) and a harness that runs the reader's verifier on MicroPython from the compiled
build."""

from flashtool.codes import issuer as cc
from flashtool.codes import rider as app
from flashtool.codes.issuer import layout
from flashtool.codes.rsakeys import seeded_rsa

NOW = 1_795_487_847  # a fixed "now" (UTC seconds) for the reader's clock
DAY = NOW // 86400
RESULTS = ("ok", "malformed", "forged", "unknown-key", "revoked", "expired", "not-yet-valid",
           "stale", "replayed", "no-trusted-time", "non-canonical", "bad-key", "retired",
           "key-off")


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        # the issuers' keys from fixed seeds too (2-3 s once per session), so every code a
        # test makes, tampers with or fuzzes is the same bytes on every run: the value of a
        # signature against a modulus decides some refusals (see the riders' keys below)
        self.root = seeded_rsa("test-root")[0]
        self.issuer = seeded_rsa("test-issuer")[0]
        self.revoked = seeded_rsa("test-revoked")[0]
        self.stranger = seeded_rsa("test-stranger")[0]  # a key the reader has never heard of
        self.master = b"\x5a" * 32
        self.days = {d: cc.day_key(self.master, d) for d in range(DAY - 1, DAY + 2)}
        self.keyset = cc.make_keyset(self.root, 7, {1: self.issuer, 2: self.revoked}, [2],
                                     self.days)
        self.ks_path = tmp / "keyset.bin"
        self.ks_path.write_bytes(self.keyset)
        self.cert = self.make_cert()
        # riders' keys from fixed seeds: RSA-2048 e = 3 (the default) and P-256 (for readers
        # configured to accept them). Seeded, as results depend on the key: a signature made
        # with another rider's RSA key is "non-canonical" where it is not below the certified
        # modulus and "forged" otherwise
        self.rider = app.rider_key(seed="test-rider")
        self.other_rider = app.rider_key(seed="test-other")
        self.ec_rider = app.rider_key(seed=1, alg=app.layout.ALG_P256)
        self.ec_other = app.rider_key(seed=2, alg=app.layout.ALG_P256)
        self.cert2 = self.make_cert2()

    def make_cert(self, key=None, kid=1, account="3104770011223344556F", category=5,
                  valid_from=NOW - 86400, valid_to=NOW + 30 * 86400):
        return cc.make_cert(key or self.issuer, kid, account, category, valid_from, valid_to)

    def code(self, cert=None, gen=NOW - 5, counter=1, day=None):
        """An RC1 code (the day-key MAC)."""
        cert = cert or self.cert
        dk = self.days.get(gen // 86400 if day is None else day) or cc.day_key(b"?" * 32, 0)
        return cc.make_code(cert, cc.user_key(dk, cert), gen, counter)

    def make_cert2(self, key=None, kid=1, account="3104770011223344556F", category=5,
                   valid_from=NOW - 86400, valid_to=NOW + 30 * 86400, rider=None):
        return cc.make_cert2(key or self.issuer, kid, account, category, valid_from, valid_to,
                             app.public_bytes(rider or self.rider))

    def code2(self, cert=None, gen=NOW - 5, counter=1, rider=None):
        """An RC2 code signed by the rider's key (the app's side); by default the key of the
        certificate's algorithm among self.rider (RSA) and self.ec_rider (P-256)."""
        cert = cert or self.cert2
        if rider is None:
            p256 = cert[layout.CERT_FIXED + cert[3]] == layout.ALG_P256
            rider = self.ec_rider if p256 else self.rider
        return app.make_code2(cert, rider, gen, counter, deterministic=True)  # RFC 6979


_made = []


def make_world(tmp_path_factory):
    """One set of keys per test session (RSA key generation is the slow part)."""
    if not _made:
        _made.append(World(tmp_path_factory.mktemp("ridecode")))
    return _made[0]


HARNESS = """
import credential
from ridecode import keyset, verifier
ROOT_N = %d
ROOT_E = %d
ks = keyset.load(open(%r, "rb").read(), ROOT_N, ROOT_E)
class Clock:
    t = None
    def time(self):
        return self.t
clock = Clock()
v = verifier.Verifier(ks, clock, **%s)
cred = credential.Credential()
buf = bytearray(1300)
with open(%r) as f:
    for line in f:
        now, text = line.rstrip("\\n").split(" ", 1)
        clock.t = None if now == "-" else int(now)
        raw = text.encode()
        n = len(raw)
        for i in range(n):
            buf[i] = raw[i]
        r = v.check(buf, n, cred)
        print("R", r, cred.ident().decode(), cred.card_type, cred.valid_to, cred.issued_at,
              cred.kind, cred.error)
print("C", v.certs.hits, v.certs.misses, v.replay.fresh_evictions)
"""


def verify(mp, world, cases, **kw):
    """cases: [(now or None, text bytes)] -> (list of result rows, cache stats). The verifier
    accepts RC1 unless rc1=False is passed."""
    kw.setdefault("rc1", True)
    path = world.tmp / ("cases_%d.txt" % id(cases))
    path.write_text("".join("%s %s\n" % ("-" if now is None else now,
                                         t.decode() if isinstance(t, bytes) else t)
                            for now, t in cases))
    code = HARNESS % (world.root["n"], world.root["e"], str(world.ks_path), repr(kw),
                      str(path))
    out = mp(code).splitlines()
    rows = [line.split(" ") for line in out if line.startswith("R ")]
    stats = [int(x) for x in out[-1].split()[1:]]
    return [dict(result=RESULTS[int(r[1])], ident=r[2], category=int(r[3]), valid_to=int(r[4]),
                 issued_at=int(r[5]), kind=int(r[6]), error=int(r[7])) for r in rows], stats

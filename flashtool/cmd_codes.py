"""`flash.py codes keygen|keyset|issue|show`: ride-code keys, certificates, key sets, codes.

The issuer side of docs/ride-code.md, for demos, tests and app makers: RSA keys generated
locally (default var/keys/, git-ignored), issuer certificates, the root-signed key set readers
load, and dynamic codes with their QR image. Everything it signs is checked with the reader's
own verifier code (lib/rsapkcs1, lib/ridecode) before it is written.
"""

import calendar
import hashlib
import json
import os
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in ("lib/ridecode", "lib/base45", "lib/rsapkcs1"):
    if str(ROOT / _p) not in sys.path:
        sys.path.insert(0, str(ROOT / _p))

import base45  # noqa: E402
import rsapkcs1  # noqa: E402
from ridecode import keyset as keyset_mod  # noqa: E402
from ridecode import layout  # noqa: E402
from ridecode.hmac256 import hmac_sha256  # noqa: E402

KEYS = ROOT / "var" / "keys"
DAY_DOMAIN = b"ridecode-day-v1"


# -- keys --
def gen_rsa(e=3, bits=2048):
    """An RSA key as a dict of ints (n, e, d). e = 3 keeps the reader's verify cheap; it is safe
    because the verifier compares the whole PKCS#1 block (lib/rsapkcs1)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    k = rsa.generate_private_key(public_exponent=e, key_size=bits)
    pn = k.private_numbers()
    return {"n": pn.public_numbers.n, "e": e, "d": pn.d, "p": pn.p, "q": pn.q}


def save_key(key, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({k: hex(v) for k, v in key.items()}, f)


def load_key(path):
    return {k: int(v, 16) for k, v in json.loads(Path(path).read_text()).items()}


def sign(key, digest):
    """PKCS#1 v1.5 SHA-256 signature of `digest`, checked with the reader's verifier."""
    k = (key["n"].bit_length() + 7) // 8
    m = int.from_bytes(rsapkcs1.encoded(digest, k), "big")
    sig = pow(m, key["d"], key["n"]).to_bytes(k, "big")
    rsapkcs1.verify(key["n"], key["e"], digest, sig)
    return sig


def day_key(master, day):
    """The day's dynamic-code key, derived from the issuer's day master secret."""
    return hmac_sha256(master, DAY_DOMAIN, struct.pack(">H", day))


# -- certificates and codes --
def make_cert(key, kid, account, category, valid_from, valid_to):
    """Issuer certificate + its RSA signature (bytes)."""
    account = account.encode() if isinstance(account, str) else bytes(account)
    if not 1 <= len(account) <= layout.ACCOUNT_MAX or not all(0x20 < c < 0x7F for c in account):
        raise ValueError("account: 1..%d printable ASCII characters" % layout.ACCOUNT_MAX)
    body = bytes([layout.VERSION, kid, category, len(account)]) + account
    body += struct.pack(">II", valid_from, valid_to)
    h = hashlib.sha256(layout.CERT_DOMAIN + body).digest()
    sig = sign(key, h)
    if len(sig) != layout.SIG_LEN:
        raise ValueError("issuer key must be RSA-2048")
    return body + sig


def user_key(dkey, cert):
    """The key the phone gets for one day: bound to its certificate (what the app stores)."""
    return hmac_sha256(dkey, hashlib.sha256(cert).digest())


def dynamic(ukey, gen_time, counter):
    dyn = struct.pack(">IH", gen_time, counter)
    return dyn + hmac_sha256(ukey, layout.DYN_DOMAIN, dyn)[: layout.MAC_LEN]


def make_code(cert, ukey, gen_time, counter):
    """The text in the QR code: PREFIX + base45(certificate + dynamic part)."""
    return layout.PREFIX + base45.encode(cert + dynamic(ukey, gen_time, counter))


def make_keyset(root, serial, issuers, revoked=(), days=None, valid_from=0, valid_to=0):
    """Root-signed key set. issuers: {kid: key}; days: {day number: 32-byte key}."""
    days = days or {}
    body = keyset_mod.MAGIC + bytes([keyset_mod.FORMAT])
    body += struct.pack(">IIIB", serial, valid_from, valid_to, len(issuers))
    for kid, key in sorted(issuers.items()):
        body += struct.pack(">BI", kid, key["e"]) + key["n"].to_bytes(layout.SIG_LEN, "big")
    body += bytes([len(revoked)]) + bytes(revoked)
    body += bytes([len(days)])
    for day, k in sorted(days.items()):
        body += struct.pack(">H", day) + bytes(k)
    data = body + sign(root, hashlib.sha256(layout.KEYSET_DOMAIN + body).digest())
    keyset_mod.load(data, root["n"], root["e"])  # what a reader will accept
    return data


def write_qr(text, path):
    import segno

    qr = segno.make(text.decode() if isinstance(text, bytes) else text, error="m")
    qr.save(str(path), scale=4, border=4)
    return qr.version


# -- CLI --
def _time(s):
    if s is None or s == "now":
        return int(time.time())
    if s.isdigit() and len(s) != 8:
        return int(s)
    return calendar.timegm(time.strptime(s.replace("-", ""), "%Y%m%d"))


def _master(d):
    p = Path(d) / "daymaster.bin"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return p.read_bytes()


def cmd_keygen(a):
    name = "root.json" if a.root else "issuer-%d.json" % a.id
    path = Path(a.dir) / name
    if path.exists() and not a.force:
        raise SystemExit("%s exists (--force to replace)" % path)
    save_key(gen_rsa(e=a.e), path)
    _master(a.dir)
    print("wrote", path)


def cmd_keyset(a):
    root = load_key(Path(a.dir) / "root.json")
    issuers = {i: load_key(Path(a.dir) / ("issuer-%d.json" % i)) for i in a.issuer}
    first = _time(a.first_day) // layout.DAY_S
    master = _master(a.dir)
    days = {d: day_key(master, d) for d in range(first - 1, first + a.days)}
    data = make_keyset(root, a.serial, issuers, a.revoke, days, first * layout.DAY_S,
                       (first + a.days) * layout.DAY_S)
    Path(a.out).write_bytes(data)
    print("wrote %s: %d bytes, serial %d, issuers %s, revoked %s, days %d..%d"
          % (a.out, len(data), a.serial, a.issuer, a.revoke, first - 1, first + a.days - 1))


def cmd_issue(a):
    key = load_key(Path(a.dir) / ("issuer-%d.json" % a.id))
    start = _time(a.valid_from)
    end = _time(a.valid_to) if a.valid_to else start + a.days * layout.DAY_S
    cert = make_cert(key, a.id, a.account, a.category, start, end)
    Path(a.out).write_bytes(cert)
    print("wrote %s: certificate %d bytes for %s" % (a.out, len(cert), a.account))


def cmd_show(a):
    cert = Path(a.cert).read_bytes()
    gen = _time(a.at)
    ukey = user_key(day_key(_master(a.dir), gen // layout.DAY_S), cert)
    text = make_code(cert, ukey, gen, a.counter)
    print(text.decode())
    print("# %d characters, %d bytes decoded, generated %d" % (len(text), len(text) * 2 // 3, gen))
    for path in (a.png, a.svg):
        if path:
            print("# wrote %s (QR version %d)" % (path, write_qr(text, path)))


def register(sub):
    p = sub.add_parser("codes", help="ride codes: keys, certificates, key sets, QR codes")
    s = p.add_subparsers(dest="codes_cmd", required=True)

    def add(name, fn, help):
        q = s.add_parser(name, help=help)
        q.add_argument("--dir", default=str(KEYS), help="key directory (default var/keys)")
        q.set_defaults(func=fn)
        return q

    q = add("keygen", cmd_keygen, "generate an issuer (or root) RSA-2048 key")
    q.add_argument("--id", type=int, default=1, help="issuer key id 0..255")
    q.add_argument("--root", action="store_true", help="the key-set signing (root) key")
    q.add_argument("--e", type=int, default=3, choices=(3, 65537))
    q.add_argument("--force", action="store_true")
    q = add("keyset", cmd_keyset, "write the root-signed key set readers load")
    q.add_argument("--out", required=True)
    q.add_argument("--serial", type=int, required=True)
    q.add_argument("--issuer", type=int, action="append", default=[])
    q.add_argument("--revoke", type=int, action="append", default=[])
    q.add_argument("--first-day", default="now", help="YYYYMMDD or UTC seconds")
    q.add_argument("--days", type=int, default=7, help="day keys to include")
    q = add("issue", cmd_issue, "issue a rider certificate")
    q.add_argument("--id", type=int, default=1, help="issuer key id")
    q.add_argument("--account", required=True)
    q.add_argument("--category", type=int, default=1, help="rider category (1 normal, ...)")
    q.add_argument("--valid-from", default="now")
    q.add_argument("--valid-to")
    q.add_argument("--days", type=int, default=30)
    q.add_argument("--out", required=True)
    q = add("show", cmd_show, "print a dynamic code (and write its QR image)")
    q.add_argument("--cert", required=True)
    q.add_argument("--at", default="now", help="generation time (UTC seconds)")
    q.add_argument("--counter", type=int, default=0)
    q.add_argument("--png")
    q.add_argument("--svg")

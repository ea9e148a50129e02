"""`flash.py codes keygen|keyset|rider-key|issue|show`: ride codes as an issuer and a rider app
make them (the format: docs/ride-code.md; the work: flashtool/codes/issuer.py and rider.py)."""

import calendar
import time
from pathlib import Path

from flashtool.codes.issuer import (
    KEYS,
    day_key,
    day_master,
    gen_rsa,
    layout,
    load_key,
    make_cert,
    make_cert2,
    make_code,
    make_keyset,
    save_key,
    user_key,
    write_qr,
)
from flashtool.codes.rider import (
    load_rider_key,
    make_code2,
    public_bytes,
    rider_key,
    save_rider_key,
)


def _time(s):
    if s is None or s == "now":
        return int(time.time())
    if s.isdigit() and len(s) != 8:
        return int(s)
    return calendar.timegm(time.strptime(s.replace("-", ""), "%Y%m%d"))


def cmd_keygen(a):
    name = "root.json" if a.root else "issuer-%d.json" % a.id
    path = Path(a.dir) / name
    if path.exists() and not a.force:
        raise SystemExit("%s exists (--force to replace)" % path)
    save_key(gen_rsa(e=a.e), path)
    day_master(a.dir)
    print("wrote", path)


def cmd_keyset(a):
    root = load_key(Path(a.dir) / "root.json")
    issuers = {i: load_key(Path(a.dir) / ("issuer-%d.json" % i)) for i in a.issuer}
    first = _time(a.first_day) // layout.DAY_S
    master = day_master(a.dir)
    days = {d: day_key(master, d) for d in range(first - 1, first + a.days)}
    data = make_keyset(root, a.serial, issuers, a.revoke, days, first * layout.DAY_S,
                       (first + a.days) * layout.DAY_S)
    Path(a.out).write_bytes(data)
    print("wrote %s: %d bytes, serial %d, issuers %s, revoked %s, days %d..%d"
          % (a.out, len(data), a.serial, a.issuer, a.revoke, first - 1, first + a.days - 1))


ALGS = {"rsa3": layout.ALG_RSA3, "p256": layout.ALG_P256}


def cmd_rider_key(a):
    """What the rider app does once, on the phone: a key pair whose private half stays there."""
    path = Path(a.out)
    if path.exists() and not a.force:
        raise SystemExit("%s exists (--force to replace)" % path)
    priv = rider_key(a.seed, ALGS[a.alg])
    save_rider_key(priv, path)
    print("wrote %s; public key (for the issuer): %s" % (path, public_bytes(priv).hex()))


def cmd_issue(a):
    key = load_key(Path(a.dir) / ("issuer-%d.json" % a.id))
    start = _time(a.valid_from)
    end = _time(a.valid_to) if a.valid_to else start + a.days * layout.DAY_S
    if a.format == 1:
        cert = make_cert(key, a.id, a.account, a.category, start, end)
    elif not a.rider_key:
        raise SystemExit("an RC2 certificate binds a rider key: --rider-key (or --format 1)")
    else:
        pub = public_bytes(load_rider_key(a.rider_key))  # a real issuer gets only this half
        cert = make_cert2(key, a.id, a.account, a.category, start, end, pub)
    Path(a.out).write_bytes(cert)
    print("wrote %s: RC%d certificate %d bytes for %s" % (a.out, cert[0], len(cert), a.account))


def cmd_show(a):
    cert = Path(a.cert).read_bytes()
    gen = _time(a.at)
    if cert[0] == layout.VERSION2:
        if not a.rider_key:
            raise SystemExit("an RC2 code is signed with the rider's key: --rider-key")
        text = make_code2(cert, load_rider_key(a.rider_key), gen, a.counter)
    else:
        ukey = user_key(day_key(day_master(a.dir), gen // layout.DAY_S), cert)
        text = make_code(cert, ukey, gen, a.counter)
    print(text.decode())
    print("# %d characters, %d bytes decoded, generated %d" % (len(text), len(text) * 2 // 3, gen))
    for path in (a.png, a.svg):
        if path:
            print("# wrote %s (QR version %d, level M)" % (path, write_qr(text, path)))


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
    q = add("rider-key", cmd_rider_key, "make a rider's key pair (what the app does)")
    q.add_argument("--out", required=True, help="private key file (PEM, kept by the app)")
    q.add_argument("--seed", help="derive the key from this seed (tests, demos)")
    q.add_argument("--alg", default="rsa3", choices=sorted(ALGS),
                   help="rsa3 (default): RSA-2048 e = 3; p256: ECDSA P-256, for readers with "
                        "ridecode_p256 on (docs/ride-code.md)")
    q.add_argument("--force", action="store_true")
    q = add("issue", cmd_issue, "issue a rider certificate")
    q.add_argument("--id", type=int, default=1, help="issuer key id")
    q.add_argument("--format", type=int, default=2, choices=(1, 2),
                   help="2 (default): binds --rider-key; 1: the RC1 format (migration)")
    q.add_argument("--rider-key", help="the rider's key file (its public half is certified)")
    q.add_argument("--account", required=True)
    q.add_argument("--category", type=int, default=1, help="rider category (1 normal, ...)")
    q.add_argument("--valid-from", default="now")
    q.add_argument("--valid-to")
    q.add_argument("--days", type=int, default=30)
    q.add_argument("--out", required=True)
    q = add("show", cmd_show, "print a dynamic code (and write its QR image)")
    q.add_argument("--cert", required=True)
    q.add_argument("--rider-key", help="RC2: the rider's key file (signs the code)")
    q.add_argument("--at", default="now", help="generation time (UTC seconds)")
    q.add_argument("--counter", type=int, default=0)
    q.add_argument("--png")
    q.add_argument("--svg")

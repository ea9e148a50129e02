"""Ride-code keys, certificates, key sets and codes (`flash.py codes`).

The issuer side of docs/ride-code.md, for demos, tests and app makers: RSA keys generated
locally (default var/keys/, git-ignored), issuer certificates (RC2: binding a rider's public
key; RC1: for the migration), the root-signed key set readers load, and RC1 dynamic codes
(RC2 codes are the rider app's: flashtool/codes/rider.py) with their QR image. Everything it
signs is checked with the reader's own verifier code (lib/rsapkcs1, lib/ridecode) before it
is written.
"""

import hashlib
import json
import os
import struct
from pathlib import Path

from flashtool import ROOT, use_lib
from flashtool.codes.rider import alg_of, key_hi

use_lib("ridecode", "base45", "rsapkcs1")

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
def _cert_body(version, kid, category, account, valid_from, valid_to):
    account = account.encode() if isinstance(account, str) else bytes(account)
    if not 1 <= len(account) <= layout.ACCOUNT_MAX or not all(0x20 < c < 0x7F for c in account):
        raise ValueError("account: 1..%d printable ASCII characters" % layout.ACCOUNT_MAX)
    body = bytes([version, kid, category, len(account)]) + account
    return body + struct.pack(">II", valid_from, valid_to)


def _signed(key, domain, body):
    sig = sign(key, hashlib.sha256(domain + body).digest())
    if len(sig) != layout.SIG_LEN:
        raise ValueError("issuer key must be RSA-2048")
    return body + sig


def make_cert(key, kid, account, category, valid_from, valid_to):
    """RC1 issuer certificate + its RSA signature (bytes)."""
    return _signed(key, layout.CERT_DOMAIN, _cert_body(layout.VERSION, kid, category, account,
                                                       valid_from, valid_to))


def make_cert2(key, kid, account, category, valid_from, valid_to, rider_pub):
    """RC2 issuer certificate: binds the rider's public key (made on the phone), its algorithm
    told by its length: a 256-byte RSA-2048 modulus (e = 3), or a 64-byte P-256 point x || y,
    which the certificate carries with 2**128 times it (it halves the reader's work). The
    issuer checks the key and computes that multiple itself: it signs what it has checked."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    alg = alg_of(rider_pub)
    rider_pub = bytes(rider_pub)
    body = _cert_body(layout.VERSION2, kid, category, account, valid_from, valid_to)
    if alg == layout.ALG_RSA3:
        n = int.from_bytes(rider_pub, "big")
        if n.bit_length() != 8 * layout.RSA_KEY or not n & 1:
            raise ValueError("rider key: an odd 2048-bit RSA modulus")
        rsa.RSAPublicNumbers(3, n).public_key()
        return _signed(key, layout.CERT2_DOMAIN, body + bytes([alg]) + rider_pub)
    ec.EllipticCurvePublicNumbers(int.from_bytes(rider_pub[:32], "big"),
                                  int.from_bytes(rider_pub[32:], "big"),
                                  ec.SECP256R1()).public_key()  # ValueError off the curve
    return _signed(key, layout.CERT2_DOMAIN, body + bytes([alg]) + rider_pub + key_hi(rider_pub))


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


def day_master(d):
    """The issuer's day master secret in d (made on first use, private to its owner)."""
    p = Path(d) / "daymaster.bin"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return p.read_bytes()

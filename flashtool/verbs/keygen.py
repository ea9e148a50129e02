"""`flash.py keygen --role app|list`: an RSA-2048 signing key pair for one role."""

from flashtool.release.keys import ROLES, keygen


def register(sub):
    p = sub.add_parser("keygen", help="generate an RSA-2048 signing key pair (app or list role)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--out", default="var/keys")

    def run(a):
        priv, pub = keygen(a.out, a.role)
        print("private key %s (keep it off readers), public key %s" % (priv, pub))

    p.set_defaults(func=run)

"""`flash.py keygen --role app|list`: an RSA-2048 signing key pair for one role.
`flash.py keygen --reader ID`: a reader's upload key (new key id: first one or a rotation) into
the station server's key ring, and the reader's copy for `flash.py deploy --upload-key`.
`flash.py keygen --station --host H`: the station's TLS key and self-signed certificate (the
server's `serve --tls-cert/--tls-key`, the readers' `deploy --station-cert`)."""

from flashtool.release.keys import ROLES, keygen


def register(sub):
    p = sub.add_parser("keygen", help="generate an RSA-2048 signing key pair (app or list "
                       "role), or a reader's upload key (--reader)")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--reader", help="reader id: issue (or rotate) its upload key")
    p.add_argument("--revoke", action="store_true",
                   help="with --reader: remove the reader's keys from the ring at once")
    p.add_argument("--ring", default="var/station/readers.json",
                   help="the station server's key ring")
    p.add_argument("--station", action="store_true",
                   help="the station server's TLS key and self-signed certificate")
    p.add_argument("--host", action="append", default=[],
                   help="with --station: a name or address readers use in sync_url "
                   "(repeat for each)")
    p.add_argument("--days", type=int, default=1825,
                   help="with --station: days the certificate is valid (default 5 years)")
    p.add_argument("--out", help="where keys go (default var/keys; var/readers for --reader; "
                   "var/station/tls for --station)")

    def run(a):
        if a.station:
            from flashtool.server.tls import make_station_cert

            key, cert, pin = make_station_cert(a.out or "var/station/tls", a.host, a.days)
            print("station TLS key %s and certificate %s (flash.py serve --tls-cert %s "
                  "--tls-key %s); readers pin %s (flash.py deploy --station-cert) and use "
                  "https://%s in sync_url" % (key, cert, cert, key, pin, a.host[0]))
            return
        if a.reader:
            from flashtool.server import keys

            if a.revoke:
                keys.revoke(a.ring, a.reader)
                print("reader %s: every key removed from %s" % (a.reader, a.ring))
                return
            kid, _, path = keys.issue(a.ring, a.reader, out=a.out or "var/readers")
            print("reader %s: key id %d in %s; reader copy %s (flash.py deploy --upload-key; "
                  "older key ids stop working once the reader uses this one)"
                  % (a.reader, kid, a.ring, path))
            return
        if not a.role:
            raise SystemExit("keygen: give --role app|list, --reader ID or --station --host H")
        priv, pub = keygen(a.out or "var/keys", a.role)
        print("private key %s (keep it off readers), public key %s" % (priv, pub))

    p.set_defaults(func=run)

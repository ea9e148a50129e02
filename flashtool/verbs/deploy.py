"""`flash.py deploy --port DEV`: the first install of a reader over USB with mpremote (keys,
config, app into slot a)."""

from flashtool.release.deploy import deploy


def register(sub):
    p = sub.add_parser("deploy", help="first install over USB with mpremote (keys, config, app)")
    p.add_argument("--port", required=True, help="serial device of the reader")
    p.add_argument("--bundle", help="published tree holding app.sm and blobs/ (flash.py bundle)")
    p.add_argument("--config", help="site config JSON for /config.json")
    p.add_argument("--keys", help="directory of public key files (*.pub) to trust")
    p.add_argument("--upload-key", help="the reader's upload key (flash.py keygen --reader): "
                   "goes to /keys/upload.key")
    p.add_argument("--station-cert", help="the station's TLS certificate (or its CA), PEM or "
                   "DER (flash.py keygen --station): goes to /keys/station.der, the only "
                   "certificate the reader trusts for https://")
    p.add_argument("--board", default="host")

    def run(a):
        version, total = deploy(a.port, a.bundle, a.config, a.keys, a.board,
                                upload_key=a.upload_key, station_cert=a.station_cert)
        print("deployed %d bytes%s" % (total, ", app version %d in slot a" % version
                                         if version else ""))

    p.set_defaults(func=run)

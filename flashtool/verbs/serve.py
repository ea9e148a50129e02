"""`flash.py serve`: the station server (flashtool/server, docs/station-server.md)."""

from flashtool.server.app import Limits, StationServer


def register(sub):
    p = sub.add_parser("serve", help="station server (signed artefacts out; authenticated "
                       "journal uploads and reader status in; fleet page)")
    p.add_argument("--dir", required=True, help="published tree (flash.py bundle/sign --dir)")
    p.add_argument("--data", default="var/station",
                   help="database (station.db) and reader key ring (readers.json)")
    p.add_argument("--db", help="PostgreSQL DSN (postgresql://...) instead of SQLite in --data")
    p.add_argument("--ring", help="reader key ring (default DATA/readers.json)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default loopback; readers reach it through "
                   "nginx, see --nginx-conf, or give the station LAN address)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-conns", type=int, default=256)
    p.add_argument("--silent-after", type=int, default=600,
                   help="seconds without contact before a reader is flagged silent")
    p.add_argument("--tls-cert", help="serve https with this certificate (flash.py keygen "
                   "--station: var/station/tls/station.pem)")
    p.add_argument("--tls-key", help="the certificate's private key (station.key)")
    p.add_argument("--nginx-conf", metavar="OUT",
                   help="write an nginx configuration for this server to OUT and exit")
    p.add_argument("--listen", default="8080",
                   help="with --nginx-conf: what nginx listens on (port or addr:port)")

    def run(a):
        if a.nginx_conf:
            from flashtool.server.nginx import write_conf

            write_conf(a.nginx_conf, a.dir, "%s:%d" % (a.host, a.port), a.listen)
            print("nginx configuration in %s (static tree %s, API proxied to %s:%d)" % (
                a.nginx_conf, a.dir, a.host, a.port))
            return
        limits = Limits(max_conns=a.max_conns, silent_after=a.silent_after)
        ctx = None
        if a.tls_cert or a.tls_key:
            if not (a.tls_cert and a.tls_key):
                raise SystemExit("serve: --tls-cert and --tls-key go together")
            from flashtool.server.tls import server_context

            ctx = server_context(a.tls_cert, a.tls_key)
        srv = StationServer(a.dir, a.data, db=a.db, ring=a.ring, host=a.host, port=a.port,
                            limits=limits, ssl=ctx)

        def ready(s):
            print("serving %s on %s (fleet page: %s/ ; %s database; key ring %s)" % (
                a.dir, s.url, s.url, s.station.store.name, s.ring_path), flush=True)

        srv.run(on_ready=ready)

    p.set_defaults(func=run)

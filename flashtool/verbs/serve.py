"""`flash.py serve`: the station server."""

from flashtool.server.httpd import make_server


def register(sub):
    p = sub.add_parser("serve", help="station update server (static artefacts, journal "
                       "uploads, reader status)")
    p.add_argument("--dir", required=True, help="published tree (flash.py bundle/sign --dir)")
    p.add_argument("--data", default="var/station", help="where uploads and status are kept")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)

    def run(a):
        srv = make_server(a.dir, a.data, a.host, a.port)
        print("serving %s on http://%s:%d/ (status: /status)" % (a.dir, a.host, a.port))
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass

    p.set_defaults(func=run)

"""`flash.py bundle`: a signed app bundle (content-addressed .mpy files + app.sm) from the
compiled build."""

from flashtool import ROOT
from flashtool.release.bundle import app_files, bundle


def register(sub):
    p = sub.add_parser("bundle", help="signed app bundle from the compiled build")
    p.add_argument("--dir", required=True, help="publication directory (static tree)")
    p.add_argument("--key", required=True, help="app signing key (PEM)")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--counter", type=int, default=0, help="security counter (anti-rollback)")
    p.add_argument("--board", default="host")
    p.add_argument("--build", help="build directory (default build/<board>)")
    p.add_argument("--days", type=int, default=30)

    def run(a):
        build = a.build or ROOT / "build" / a.board
        path = bundle(a.dir, a.version, a.key, build, a.counter, board=a.board, days=a.days)
        print("bundle %s: %d modules" % (path, len(app_files(build))))

    p.set_defaults(func=run)

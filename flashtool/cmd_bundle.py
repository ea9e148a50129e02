"""`flash.py bundle`: the app bundle, i.e. the compiled .mpy files of the firmware (the output of
`flash.py build`), published by content hash, plus a signed `app` manifest listing each module
with its size and SHA-256.

Board support modules and the stable boot entry (main, bootsel) stay in the frozen firmware:
they choose the slot, so a bad bundle can never replace them.
"""

from pathlib import Path

from flashtool.cmd_sign import sign_files
from flashtool.manifest import ROOT, Manifest

FROZEN_ONLY = ("main.mpy", "bootsel.mpy")


def app_files(build_dir):
    """{target: path} of the app modules in a build directory."""
    build_dir = Path(build_dir)
    m = Manifest(ROOT / "firmware").execute(ROOT / "firmware" / "manifest.py")
    out = {}
    for target in m.files:
        mpy = target[:-3] + ".mpy"
        if mpy not in FROZEN_ONLY:
            out[mpy] = build_dir / mpy
    return out


def bundle(out, version, key, build_dir=None, counter=0, **kw):
    build_dir = build_dir or ROOT / "build" / "host"
    return sign_files(out, "app", "app", version, app_files(build_dir), key, counter=counter,
                      **kw)


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

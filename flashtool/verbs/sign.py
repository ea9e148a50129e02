"""`flash.py sign WHAT`: sign an artefact (list, delta, keys, config, firmware) or the release
index into a publication directory."""

from pathlib import Path

from flashtool.release.sign import published_version, sign_files, sign_index, sm


def register(sub):
    p = sub.add_parser("sign", help="sign an artefact (list, delta, keys, config, firmware) "
                       "or the release index")
    p.add_argument("what", choices=sorted(set(sm.KINDS) - {"app"}))
    p.add_argument("files", nargs="*", help="target=path pairs (or paths)")
    p.add_argument("--dir", required=True, help="publication directory (static tree)")
    p.add_argument("--name", help="manifest name (default: the kind)")
    p.add_argument("--key", required=True, help="private key PEM of the signing role")
    p.add_argument("--version", type=int,
                   help="required for artefacts; for the index default: the published one + 1")
    p.add_argument("--counter", type=int, default=0)
    p.add_argument("--board", default="host")
    p.add_argument("--days", type=int, default=30, help="expiry from now")

    def run(a):
        kw = dict(board=a.board, counter=a.counter, days=a.days)
        if a.what == "index":
            version = a.version if a.version is not None else published_version(a.dir) + 1
            path = sign_index(a.dir, version, a.key, **kw)
        elif a.version is None:
            raise SystemExit("--version is required for %s" % a.what)
        else:
            srcs = dict((f.split("=", 1) if "=" in f else (Path(f).name, f)) for f in a.files)
            path = sign_files(a.dir, a.name or a.what, a.what, a.version, srcs, a.key, **kw)
        print("signed %s (%d bytes)" % (path, path.stat().st_size))

    p.set_defaults(func=run)

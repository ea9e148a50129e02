"""`flash.py sign`: sign any artefact (list, delta, key set, config, firmware image) with the
signed-manifest format, and (`sign index`) the top-level index that binds one release together.

Artefacts are published content-addressed under DIR/blobs/<sha256>, manifests as DIR/<name>.sm,
the index as DIR/index.sm: a static tree any HTTP server or CDN can serve.
"""

import hashlib
import json
import time
from pathlib import Path

from flashtool.shared import rsapkcs1
from flashtool.shared import signedmanifest as sm

DAY = 86400


def load_private(path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(Path(path).read_bytes(), None)


def sign_body(body, key):
    """Serialise `body` once and sign exactly those bytes; check the result with the reader's
    own verifier before anyone can publish it."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(raw).digest()
    nums = key.private_numbers()
    n, d = nums.public_numbers.n, nums.d
    sig = pow(int.from_bytes(rsapkcs1.encoded(digest, 256), "big"), d, n).to_bytes(256, "big")
    rsapkcs1.verify(n, nums.public_numbers.e, digest, sig)
    return b"SM1 " + sm.key_id(n).encode() + b" " + sig.hex().encode() + b"\n" + raw


def body(kind, version, files, board="host", counter=0, days=30, release=None, now=None,
         **extra):
    now = int(time.time()) if now is None else now
    b = {"kind": kind, "version": version, "counter": counter, "board": board, "issued": now,
         "expires": now + days * DAY, "release": release or "%s-%d" % (kind, version),
         "files": files}
    b.update(extra)
    return b


def publish_blob(out, src):
    """Copy a file into out/blobs/<sha256>; returns its sha256 hex and size."""
    data = Path(src).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    (out / "blobs").mkdir(parents=True, exist_ok=True)
    dest = out / "blobs" / sha
    if not dest.exists():
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return sha, len(data)


def sign_files(out, name, kind, version, sources, key, **kw):
    """Publish `sources` ({target name: path}) and write out/<name>.sm."""
    out = Path(out)
    files = []
    for target, src in sorted(sources.items()):
        sha, size = publish_blob(out, src)
        files.append([target, size, sha])
    data = sign_body(body(kind, version, files, **kw), load_private(key))
    _write(out / (name + ".sm"), data)
    return out / (name + ".sm")


def sign_index(out, version, key, **kw):
    """index.sm: every *.sm in `out` by name, size and hash (a snapshot: a reader never mixes
    artefacts from two index versions)."""
    out = Path(out)
    files = []
    for p in sorted(out.glob("*.sm")):
        if p.name != "index.sm":
            data = p.read_bytes()
            files.append([p.name, len(data), hashlib.sha256(data).hexdigest()])
    data = sign_body(body("index", version, files, **kw), load_private(key))
    _write(out / "index.sm", data)
    return out / "index.sm"


def published_version(out, name="index.sm"):
    """Version of a published manifest (0 when there is none)."""
    p = Path(out) / name
    if not p.exists():
        return 0
    return json.loads(p.read_bytes().split(b"\n", 1)[1])["version"]


def _write(path, data):
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


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

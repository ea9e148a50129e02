"""Signing (`flash.py sign`, `bundle`): any artefact (list, delta, key set, config, firmware
image) in the signed-manifest format, and (`sign index`) the top-level index that binds one
release together.

Artefacts are published content-addressed under DIR/blobs/<sha256>, manifests as DIR/<name>.sm,
the index as DIR/index.sm: a static tree any HTTP server or CDN can serve.
"""

import hashlib
import json
import time
from pathlib import Path

from flashtool import use_lib
from flashtool.release.keys import load_private

use_lib("signedmanifest", "rsapkcs1")

import rsapkcs1  # noqa: E402
import signedmanifest as sm  # noqa: E402

DAY = 86400


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

"""The first install of a reader over USB with mpremote: trusted
public keys, the site config, and a signed app bundle as the valid app in slot a, with progress.

The boot record is written last: a deploy interrupted at any point leaves a reader that boots
the frozen factory app and can simply be deployed again. The bundle is checked against its
signature with the same code the reader runs before anything is copied.
"""

import json
import time
from pathlib import Path

from flashtool import use_lib

use_lib("signedmanifest", "rsapkcs1")

import signedmanifest as sm  # noqa: E402

CHUNK = 1024


def plan(bundle=None, config=None, keys=None, board="host", upload_key=None,
         station_cert=None):
    """[(device path, bytes)] in install order, and the app version (0: no bundle)."""
    out = []
    trusted = {}
    for p in sorted(Path(keys).glob("*.pub")) if keys else ():
        kid, key = sm.load_key(p.read_text())
        trusted[kid] = key
        out.append(("/keys/" + p.name, p.read_bytes()))
    if config:
        data = Path(config).read_bytes()
        site = json.loads(data)  # the reader would refuse it anyway: fail here, before copying
        if str(site.get("sync_url", "")).startswith("https://") and not station_cert:
            raise ValueError("the config syncs over https:// but no --station-cert is given: "
                             "the reader would refuse every connection")
        out.append(("/config.json", data))
    if upload_key:  # the reader's own key for signed uploads (flash.py keygen --reader)
        data = Path(upload_key).read_bytes()
        k = json.loads(data)
        if len(bytes.fromhex(k["key"])) != 32 or not isinstance(k["kid"], int):
            raise ValueError("%s is not a reader upload key" % upload_key)
        if config and json.loads(Path(config).read_bytes()).get("reader_id") != k["reader"]:
            raise ValueError("upload key is for reader %s, the config names another" % k["reader"])
        out.append(("/keys/upload.key", data))
    if station_cert:  # the one certificate the reader trusts for https:// (firmware/sync.py)
        from flashtool.server.tls import pin_bytes

        out.append(("/keys/station.der", pin_bytes(station_cert)))
    version = 0
    if bundle:
        bundle = Path(bundle)
        raw = (bundle / "app.sm").read_bytes()
        m = sm.verify(raw, trusted, "app", board, int(time.time()))
        for name, size, sha in m.files:
            blob = (bundle / "blobs" / sha).read_bytes()
            check = sm.FileCheck((name, size, sha))
            check.update(blob)
            check.finish()
            out.append(("/app_a/" + name, blob))
        out.append(("/app_a/release.sm", raw))
        record = {"slot": "a", "state": "valid", "version": m.version, "counter": m.counter,
                  "prev": None, "floor": m.counter, "failed": None}
        out.append(("/boot.json", json.dumps(record).encode()))
        version = m.version
    return out, version


def deploy(port, bundle=None, config=None, keys=None, board="host", progress=print,
           upload_key=None, station_cert=None):
    from mpremote.transport_serial import SerialTransport

    files, version = plan(bundle, config, keys, board, upload_key, station_cert)
    total = sum(len(d) for _, d in files)
    t = SerialTransport(port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)  # mpremote `resume`: keep the running state
        if bundle:
            # a half-written slot a from an earlier attempt must not stay referenced
            t.exec("import os\ntry:\n os.remove('/boot.json')\nexcept OSError:\n pass\n")
        dirs = sorted({p.rsplit("/", 1)[0] for p, _ in files if p.count("/") > 1})
        for d in dirs:
            parts = d.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                sub = "/" + "/".join(parts[:i])
                if not t.fs_exists(sub):
                    t.fs_mkdir(sub)
        done = 0
        for i, (path, data) in enumerate(files, 1):
            t.fs_writefile(path, data, chunk_size=CHUNK)
            done += len(data)
            progress("[%2d/%d] %-40s %6d bytes  %3d%%" % (i, len(files), path, len(data),
                                                         100 * done // max(total, 1)))
        t.exit_raw_repl()
    finally:
        t.close()
    return version, total

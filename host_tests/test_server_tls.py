"""TLS between the reader and the station server: the emulated reader (firmware/sync.py on the
MicroPython binary, its mbedTLS) talks https:// to the server (aiohttp with the station's
certificate from flash.py keygen --station), trusting only the certificate pinned in
/keys/station.der. With the pinned certificate an app update, a download cut half-way and
resumed with Range, the signed journal upload and the status all go through. A server with
another certificate, the pinned one expired, one for another name, a plain-HTTP server, or a
reader with nothing pinned: the handshake is refused with a clear error, no request reaches
the server, nothing is acknowledged and the journal keeps every record. The verbs (keygen
--station, serve --tls-cert/--tls-key, deploy --station-cert) are exercised as a user runs
them."""

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import sys

import pytest
from station_kit import Kit, held_port, wait_for_line  # noqa: F401  (fixture)
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    publish_app,
    tagged_app,
    wl,
    workload_dir,
)
from test_sync_e2e import sync

from flashtool.release.sign import sign_index
from flashtool.server import tls
from sim.runner import DEVICE

# The reader's side needs MicroPython's `tls` module (mbedTLS). The 32-bit build (make
# check-device) is made from the release tarball, which does not carry the mbedTLS submodule,
# so there the reader's TLS is not built and only the host-side tests run; the 64-bit binary and
# the ESP32 port have it.
NO_TLS = "32-bit build has no tls module (no mbedTLS in the release tarball)"
reader_tls = pytest.mark.skipif(DEVICE, reason=NO_TLS)

ROOT = tls.__file__.rsplit("/flashtool/", 1)[0]
PAST = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Station certificates: the good one, another station's, an expired one, one for
    another name (the tests do not depend on the keys' values)."""
    d = tmp_path_factory.mktemp("tls")
    tls.make_station_cert(d / "good", ["127.0.0.1", "localhost"])
    tls.make_station_cert(d / "other", ["127.0.0.1"])
    tls.make_station_cert(d / "expired", ["127.0.0.1"], not_after=PAST)
    tls.make_station_cert(d / "name", ["station.example"])
    return d


def _kit(tmp_path, keys, cert_dir):  # noqa: F811
    pub = tmp_path / "pub"
    pub.mkdir(exist_ok=True)
    ctx = None
    if cert_dir is not None:
        ctx = tls.server_context(cert_dir / tls.CERT, cert_dir / tls.KEY)
    return Kit(pub, tmp_path / "station", keys, ssl=ctx), pub


def _provision(reader, tmp_path, pub, keys, pin):  # noqa: F811
    extra = workload_dir(tmp_path, pub, keys)
    if pin is not None:
        shutil.copy(pin / tls.PIN, extra / "keys" / "station.der")
    assert wl(reader, extra, "provision")[0] == 0
    return extra


@reader_tls
def test_reader_syncs_over_tls_with_the_pinned_certificate(ota_reader, tmp_path, keys,  # noqa: F811
                                                           certs):
    kit, pub = _kit(tmp_path, keys, certs / "good")
    try:
        url = "https://127.0.0.1:%d" % kit.srv.port
        extra = _provision(ota_reader, tmp_path, pub, keys, certs / "good")
        manifest = publish_app(pub, 2, keys / "app.pem", tmp_path / "b2", tagged_app("v2"))
        sign_index(pub, 1, keys / "app.pem")
        files = json.loads(manifest.read_bytes().split(b"\n", 1)[1])["files"]
        big = max(files, key=lambda f: f[1])
        kit.log.cut_next(big[2], big[1] // 2)  # the TLS connection drops half-way

        code, lines, info, _ = sync(ota_reader, extra, url, records=6)
        assert info["app"] == "0" and info["backlog"] == "6", lines
        assert any(ln.startswith("CYCLE fail") for ln in lines), lines
        code, lines, info, _ = sync(ota_reader, extra, url)
        assert code == 5 and info["app"] == "2" and info["backlog"] == "0", lines
        gets = kit.log.blob(big[2])
        assert gets[0][0] is None and gets[1][1] == 206, gets  # resumed with Range, over TLS
        assert 0 < gets[1][0] <= big[1] // 2 and gets[1][2] == big[1] - gets[1][0], gets
        assert kit.seqs() == [1, 2, 3, 4, 5, 6]  # signed upload over TLS
        row = kit.fleet()["R7"]
        assert row["backlog"] == 0 and row["auth_failures"] == 0
        ota_reader.reboot(reset_cause="soft")
        ota_reader.wait_for(lambda ln: ln == "APP v2")
        ota_reader.stop()
        # the server speaks nothing but TLS: a plain request on its port gets no HTTP answer
        assert _plain_answer(kit.srv.port, "/index.sm") is None
    finally:
        kit.stop()


def _plain_answer(port, path):
    """What a plain-HTTP GET gets from a TLS server: its status line, or None (a TLS alert,
    a close or a reset: whichever the kernel delivers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = s.recv(100)
        except ConnectionResetError:
            return None
    return got.split(b"\r\n")[0] if got.startswith(b"HTTP/") else None


REFUSALS = {  # case: (server's certificate, reader's pin, what the reader says)
    "other_station": ("good", "other", "not correctly signed by the trusted CA"),
    "expired": ("expired", "expired", "validity has expired"),
    "other_name": ("name", "name", "Common Name (CN) does not match"),
    "plain_http": (None, "good", "INVALID_RECORD (the server does not speak TLS)"),
    "nothing_pinned": ("good", None, "https needs a pinned station certificate"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_tls_refusals_send_and_lose_nothing(ota_reader, tmp_path, keys, certs,  # noqa: F811
                                            case):
    server, pin, why = REFUSALS[case]
    if DEVICE and pin:  # with nothing pinned the reader refuses before it needs `tls`
        pytest.skip(NO_TLS)
    kit, pub = _kit(tmp_path, keys, certs / server if server else None)
    try:
        url = "https://127.0.0.1:%d" % kit.srv.port
        extra = _provision(ota_reader, tmp_path, pub, keys, certs / pin if pin else None)
        code, lines, info, _ = sync(ota_reader, extra, url, records=4)
        fails = [ln for ln in lines if ln.startswith("CYCLE fail")]
        assert code == 0 and len(fails) == 1, lines
        assert fails[0].startswith("CYCLE fail SyncError(13, ") and why in fails[0], fails
        assert info["backlog"] == "4" and info["app"] == "0", lines  # every record kept
        assert kit.log.log == []  # not one request reached the server
        assert kit.seqs() == [] and "R7" not in kit.fleet() or kit.fleet()["R7"]["held"] == 0
        print("%s: %s" % (case, fails[0]))
    finally:
        kit.stop()


def test_deploy_pins_the_station_certificate(tmp_path, certs):
    """deploy --station-cert: the certificate (PEM or DER) goes to /keys/station.der as DER; a
    file that is not a certificate, or an https:// config without one, is refused before
    anything is copied."""
    from flashtool.release.deploy import plan

    der = (certs / "good" / tls.PIN).read_bytes()
    for given in (certs / "good" / tls.CERT, certs / "good" / tls.PIN):
        files, _ = plan(station_cert=given)
        assert files == [("/keys/station.der", der)]
    with pytest.raises(ValueError, match="not a certificate"):
        plan(station_cert=certs / "good" / tls.KEY)
    cfg = tmp_path / "g07.json"
    cfg.write_text(json.dumps({"reader_id": "G07", "sync_url": "https://10.0.0.2"}))
    with pytest.raises(ValueError, match="station-cert"):
        plan(config=cfg)
    files, _ = plan(config=cfg, station_cert=certs / "good" / tls.CERT)
    assert ("/keys/station.der", der) in files


def test_keygen_station_and_serve_tls_verbs(tmp_path, held_port):  # noqa: F811
    """flash.py keygen --station writes the key (0600), the certificate and the DER pin;
    flash.py serve --tls-cert/--tls-key answers https that verifies against that certificate
    alone, and nothing over plain HTTP."""
    out = tmp_path / "tls"
    r = subprocess.run([sys.executable, "flash.py", "keygen", "--station", "--host",
                        "127.0.0.1", "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / tls.KEY).stat().st_mode & 0o777 == 0o600
    assert tls.pin_bytes(out / tls.CERT) == (out / tls.PIN).read_bytes()
    pub = tmp_path / "pub"
    pub.mkdir()
    port = held_port
    log = tmp_path / "serve.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([sys.executable, "flash.py", "serve", "--dir", str(pub), "--data",
                              str(tmp_path / "data"), "--port", str(port), "--tls-cert",
                              str(out / tls.CERT), "--tls-key", str(out / tls.KEY)],
                             cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for_line(p, log, "serving ")
        assert "https://127.0.0.1:%d" % port in log.read_text()
        ctx = ssl.create_default_context(cafile=str(out / tls.CERT))
        import http.client

        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        c.request("GET", "/fleet.json")
        assert c.getresponse().status == 200
        c.close()
        assert _plain_answer(port, "/fleet.json") is None
    finally:
        p.terminate()
        p.wait(60)


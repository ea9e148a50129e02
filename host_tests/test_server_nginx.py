"""nginx in front of the station server, with the configuration `flash.py serve --nginx-conf`
writes: the emulated reader's own HTTP client (firmware/sync.py on MicroPython) gets its app
update from nginx's static files, resumes a cut download with Range (nginx answers 206),
gets 304 for an unchanged index, and its signed journal upload goes through nginx's proxy to
the server; nginx's own limits refuse oversize bodies and API paths it does not know."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from station_kit import Kit, held_port  # noqa: F401  (fixture)
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
from flashtool.server.nginx import write_conf


class CuttingProxy:
    """TCP relay in front of nginx that records each request line and Range header, and cuts
    the reply to the first GET of one path after `cut` bytes (a dropped connection)."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = []  # (request line, Range header or None, status line)
        self.cut = None
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, c):
        up = socket.create_connection(self.target)
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(65536)
            if not b:
                break
            head += b
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        rng = next((ln.split(":", 1)[1].strip() for ln in lines
                    if ln.lower().startswith("range:")), None)
        limit = None
        if self.cut and lines[0].startswith("GET " + self.cut[0]):
            limit = self.cut[1]
            self.cut = None
        up.sendall(head)

        def pump_up():
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    up.sendall(b)
            except OSError:
                pass

        threading.Thread(target=pump_up, daemon=True).start()
        sent, status = 0, None
        try:
            while True:
                b = up.recv(65536)
                if not b:
                    break
                if status is None:
                    status = b.split(b"\r\n", 1)[0].decode()
                if limit is not None and sent + len(b) > limit:
                    c.sendall(b[:limit - sent])
                    break
                c.sendall(b)
                sent += len(b)
        except OSError:
            pass
        self.seen.append((lines[0], rng, status))
        for s in (c, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture
def nginx_station(tmp_path, keys, held_port):  # noqa: F811
    if shutil.which("nginx") is None:
        if os.environ.get("CI"):
            pytest.fail("nginx missing (.ci/run installs Debian's nginx-light)")
        pytest.skip("needs nginx (apt-get install nginx-light)")
    pub = tmp_path / "pub"
    pub.mkdir()
    kit = Kit(pub, tmp_path / "station", keys)
    port = held_port
    conf = write_conf(tmp_path / "nginx.conf", pub, "127.0.0.1:%d" % kit.srv.port,
                      "127.0.0.1:%d" % port, prefix=tmp_path / "nginx")
    p = subprocess.Popen(["nginx", "-p", str(tmp_path / "nginx"), "-c", str(conf), "-g",
                          "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # a hung start only: load makes it late, not failed
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except OSError:
            if p.poll() is not None:
                pytest.fail("nginx did not start: %s" % p.stderr.read().decode())
            if time.monotonic() > deadline:
                pytest.fail("nginx not listening after 300 s")
            time.sleep(0.05)
    proxy = CuttingProxy(("127.0.0.1", port))
    yield kit, pub, port, proxy
    proxy.close()
    p.terminate()
    p.wait(10)
    kit.stop()


def test_reader_through_nginx(ota_reader, nginx_station, tmp_path, keys):  # noqa: F811
    """Update, resume, 304 and signed upload through nginx; nginx's own refusals."""
    kit, pub, port, proxy = nginx_station
    url = "http://127.0.0.1:%d" % proxy.port
    extra = workload_dir(tmp_path, pub, keys)
    assert wl(ota_reader, extra, "provision")[0] == 0
    manifest = publish_app(pub, 2, keys / "app.pem", tmp_path / "b2", tagged_app("v2"))
    sign_index(pub, 1, keys / "app.pem")
    files = json.loads(manifest.read_bytes().split(b"\n", 1)[1])["files"]
    big = max(files, key=lambda f: f[1])
    proxy.cut = ("/blobs/" + big[2], big[1] // 2)  # nginx's reply cut half-way

    code, lines, info, _ = sync(ota_reader, extra, url, records=6)
    assert info["app"] == "0" and any(ln.startswith("CYCLE fail") for ln in lines), lines
    code, lines, info, _ = sync(ota_reader, extra, url, records=0)
    assert code == 5 and info["app"] == "2" and info["backlog"] == "0", lines
    blob = [(r, s) for line, r, s in proxy.seen if big[2] in line]
    assert blob[0][0] is None and blob[1][0].startswith("bytes="), blob
    assert blob[1][1].startswith("HTTP/1.1 206"), blob  # nginx resumed it
    assert kit.seqs() == [1, 2, 3, 4, 5, 6]  # uploaded through nginx's proxy, signed
    ota_reader.reboot(reset_cause="soft")
    ota_reader.wait_for(lambda ln: ln == "APP v2")
    ota_reader.stop()

    del proxy.seen[:]
    code, lines, info, _ = sync(ota_reader, extra, url, records=3)
    assert code == 0 and info["backlog"] == "0", lines
    gets = [(line.split()[1], s.split()[1]) for line, r, s in proxy.seen
            if line.startswith("GET")]
    assert gets == [("/index.sm", "304")], gets  # nginx's own ETag, kept by the reader
    assert kit.seqs() == list(range(1, 10))

    # nginx's own limits: oversize body, unknown API path, a method the API does not take
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/journal/R7", body=b"x" * 20000)
    assert c.getresponse().status == 413
    c.close()
    for method, path in (("GET", "/journal/R7"), ("GET", "/../station/station.db"),
                         ("GET", "/readers.json"), ("POST", "/admin")):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, path)
        assert c.getresponse().status in (400, 403, 404, 405), (method, path)
        c.close()

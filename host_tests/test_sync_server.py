"""`flash.py serve` on its own (CPython): static files with Range and ETag, no path escape,
journal records held once per (reader, seq) across retries and restarts, status page."""

import http.client
import json
import struct
import threading
import urllib.error
import urllib.request

import pytest

from flashtool.server.httpd import make_server


@pytest.fixture
def server(tmp_path):
    pub = tmp_path / "pub"
    (pub / "blobs").mkdir(parents=True)
    (pub / "index.sm").write_bytes(b"x" * 1000)
    (tmp_path / "secret").write_text("no")

    def start():
        srv = make_server(pub, tmp_path / "station", "127.0.0.1", 0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv, "http://127.0.0.1:%d" % srv.server_address[1]

    made = []

    def factory():
        made.append(start())
        return made[-1]

    yield factory
    for srv, _ in made:
        srv.shutdown()
        srv.server_close()


def _get(url, headers=None):
    try:
        r = urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}))
        return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def _post(url, body):
    r = urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"))
    return json.loads(r.read())


def _records(*seqs):
    return b"".join(struct.pack("<BBBBI", 0x52, 1, 0, 0, s) + b"\0" * 24 for s in seqs)


def test_static_range_etag_and_no_escape(server):
    srv, url = server()
    code, body, h = _get(url + "/index.sm")
    assert code == 200 and len(body) == 1000
    assert _get(url + "/index.sm", {"Range": "bytes=600-"})[:2] == (206, b"x" * 400)
    assert _get(url + "/index.sm", {"If-None-Match": h["ETag"]})[0] == 304
    assert _get(url + "/index.sm", {"If-None-Match": '"other"'})[0] == 200
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1])
    conn.request("GET", "/../secret")  # sent as is: the server must not leave its tree
    assert conn.getresponse().status == 404
    conn.close()
    assert _get(url + "/blobs/")[0] == 404


def test_journal_held_once_across_retries_and_restart(server):
    srv, url = server()
    assert _post(url + "/journal/R1", _records(1, 2, 3)) == {"acked": 3, "new": 3}
    assert _post(url + "/journal/R1", _records(2, 3, 4)) == {"acked": 4, "new": 1}  # a retry
    assert _post(url + "/journal/R2", _records(1)) == {"acked": 1, "new": 1}
    srv.shutdown()
    srv.server_close()
    srv2, url2 = server()  # restarted: what it held is still held, once
    assert sorted(srv2.station.records["R1"]) == [1, 2, 3, 4]
    assert _post(url2 + "/journal/R1", _records(4, 5)) == {"acked": 5, "new": 1}
    with pytest.raises(urllib.error.HTTPError):
        _post(url2 + "/journal/R1", b"short")  # not whole records
    with pytest.raises(urllib.error.HTTPError):
        _post(url2 + "/journal/..%2fx", _records(9))  # not a reader id


def test_status_json_and_page(server):
    srv, url = server()
    _post(url + "/journal/G7", _records(1, 2))
    _post(url + "/status/G7", json.dumps({"app": 4, "list": 12, "backlog": 0}).encode())
    code, body, _ = _get(url + "/status")
    st = json.loads(body)["readers"]["G7"]
    assert st["app"] == 4 and st["list"] == 12 and st["journal_held"] == 2
    code, page, _ = _get(url + "/")
    assert code == 200 and b"<td>G7</td>" in page

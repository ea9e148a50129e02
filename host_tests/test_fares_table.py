"""The fare table (firmware/fares.py) on MicroPython against the host's builder and pricer
(flashtool/fares/table.py), two implementations of one format: every journey of the demo
network priced the same for each card type and trip time; the rejects (signature, kind, hash,
size, station, header); price() allocation-free; and a new table delivered by the station
server through sync taking effect on a running fare gate."""

import json
import shutil

import pytest

from flashtool.fares import records, settle, table
from flashtool.fares.lane import Lane, list_key
from flashtool.release.keys import keygen
from flashtool.release.sign import sign_body, sign_index
from flashtool.server import keys as reader_keys
from flashtool.server.app import StationServer
from sim import cards, pboc

LOAD = r'''
import fares, json, signedmanifest as sm
from micropython import heap_lock, heap_unlock
d = %r
kid, key = sm.load_key(open(d + "/list.pub").read())
keys = {kid: key}
station = %d
try:
    t = fares.load(station, keys, "host", 0, d + "/fares.sm", d + "/fares.bin")
except (ValueError, OSError) as e:
    print("ERR", type(e).__name__, getattr(e, "code", 0), e)
    raise SystemExit
print("OK", t.version, t.n)
out = []
for o in %r:
    for ct in (1, 5, 6, 9):
        for secs in (600, 20000):
            out.append(t.price(o, ct, secs))
print("PRICES", json.dumps(out))
x = i = 0
heap_lock()
try:
    for i in range(100):
        x = t.price(101, 5, 300)
finally:
    heap_unlock()
print("LOCKED", x)
'''


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("fares")
    pem, (n, e) = list_key(d / "keys")
    (d / "list.pub").write_text(json.dumps({"role": "list", "n": hex(n), "e": e}))
    return d, pem


def run_load(mp, d, station=104):
    ids = table.stations(table.DEMO) + [999]
    out = mp(LOAD % (str(d), station, ids), check=False)
    return out, ids


def write(d, spec, version, pem, name="t"):
    w = d / name
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir()
    sm_path, data = table.publish(w / "pub", spec, version, pem)
    shutil.copy(sm_path, w / "fares.sm")
    (w / "fares.bin").write_bytes(data)
    shutil.copy(d / "list.pub", w / "list.pub")
    return w


@pytest.mark.parametrize("station", [101, 104, 304])
def test_reader_prices_every_journey_as_the_back_office(mp, signed, station):
    d, pem = signed
    w = write(d, table.DEMO, 3, pem)
    out, ids = run_load(mp, w, station)
    assert "OK 3 %d" % len(table.stations(table.DEMO)) in out, out
    got = json.loads(out.split("PRICES ")[1].split("\n")[0])
    want = []
    for o in ids:
        for ct in (1, 5, 6, 9):
            for secs in (600, 20000):
                p = table.price(table.DEMO, o, station, ct, secs)
                want.append(-1 if p is None else p)
    assert got == want
    assert "LOCKED %d" % table.price(table.DEMO, 101, station, 5, 300) in out


def test_rejects(mp, signed, tmp_path):
    d, pem = signed
    w = write(d, table.DEMO, 3, pem)
    b = bytearray((w / "fares.bin").read_bytes())
    b[-1] ^= 1
    (w / "fares.bin").write_bytes(bytes(b))
    assert "ERR ManifestError 8" in run_load(mp, w)[0]  # not the signed file
    w = write(d, table.DEMO, 3, pem)
    (w / "fares.bin").write_bytes((w / "fares.bin").read_bytes()[:-2])
    assert "ERR" in run_load(mp, w)[0]  # cut
    w = write(d, table.DEMO, 3, pem)
    raw = (w / "fares.sm").read_bytes()
    (w / "fares.sm").write_bytes(raw[:-3] + b"99}")
    assert "ERR ManifestError 2" in run_load(mp, w)[0]  # the signature no longer matches
    assert "ERR FareError 22" in run_load(mp, write(d, table.DEMO, 3, pem), 777)[0]
    # a list manifest is not a fare table, even signed by the right key
    w = write(d, table.DEMO, 3, pem)
    body = json.loads(raw[raw.index(b"\n") + 1:])
    body["kind"] = "list"
    from flashtool.release.keys import load_private

    (w / "fares.sm").write_bytes(sign_body(body, load_private(pem)))
    assert "ERR ManifestError 9" in run_load(mp, w)[0]
    # another signer's table
    other = tmp_path / "other"
    pem2, _ = list_key(other)
    w = write(d, table.DEMO, 3, pem2, "o")
    assert "ERR ManifestError 3" in run_load(mp, w)[0]


def test_a_new_table_arrives_through_sync(tmp_path):
    """A running exit gate gets fare table version 2 from the station server (in the index,
    like a list) and charges by it at the next tap; its purchase records reach the server,
    which takes the new record kinds, and `settle` finds the TAC good in the server's store."""
    keys = tmp_path / "keys"
    keygen(keys, "app")
    pem, _ = list_key(keys)
    pub = tmp_path / "pub"
    pub.mkdir()
    spec2 = dict(table.DEMO, bands=[[6, 3], [12, 7], [22, 8], [32, 9]])
    table.publish(pub, spec2, 2, pem)
    sign_index(pub, 1, keys / "app.pem")
    data = tmp_path / "station"
    kid, key, _ = reader_keys.issue(data / "readers.json", "F1")
    srv = StationServer(pub, data, port=0)
    url = srv.start()
    issuer = pboc.IssuerKeys.from_seed("sync-fares")
    lane = Lane(tmp_path / "lane", 104, "exit", issuer, keys, accelerated=False,
                cfg={"sync_url": url, "sync_period_s": 5, "reader_id": "F1"},
                files={"keys__app.pub": (keys / "app.pub").read_bytes(),
                       "keys__upload.key": reader_keys.reader_file("F1", kid, key).encode()})
    try:
        lane.start()
        lane.reader.wait_for(lambda s: " sync fares version=2" in s, timeout=60)
        c = cards.tunion("3104000055550001", issuer=issuer, counter=1)
        t = lane.reader.world_time() - 1577836800 - 600
        c.purse.trip[:] = (bytes([1, 1]) + (101).to_bytes(2, "big") + t.to_bytes(4, "big")
                           + bytes(6) + b"\0\0" + (101).to_bytes(2, "big")
                           + t.to_bytes(4, "big") + b"\0\0")
        got = lane.tap(c)
        assert (got["verdict"], got["fare"]) == ("PASS", 700)  # 7.3 km: band 2 of version 2
        # the upload that carries the tap (the PSAM record went up on its own before it)
        lane.reader.wait_for(lambda s: " sync upload " in s and " backlog=0" in s and int(
            s.split(" acked=")[1].split()[0]) >= got["seq"], timeout=60)
    finally:
        lane.close()
        srv.stop()
    s = settle.settle(settle.load(db=str(data / "station.db")), issuer)
    assert s["purchases"] == 1 and s["amount"] == 700 and s["tac_failures"] == []
    assert list(s["by_station"]) == [(104, 1)]
    assert records.purchases(records.from_image(lane.reader.image))[0]["amount"] == 700

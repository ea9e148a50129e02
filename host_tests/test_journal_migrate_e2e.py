"""A fare gate in the field on the previous app's journal layout (no torn-purchase log, records
in every sector but the cursor's two, a purchase's 0x51 with the terminal number in it) gets
this app as an app-only update: the flash keeps its journal, written here by
host_tests/support/oldjournal.py with its last three sectors in the two the torn log takes and
the one after the wrap, most of it not yet uploaded. The new app boots on it (the shipped
`main`), decides taps all along, refuses to charge a card while the torn log's sectors still
hold records the server lacks (MANUAL TORN_LOG_WAIT, the card untouched), uploads the backlog
to the station server once it is up, then charges with the torn log. The server holds every record
once, under the old journal's epoch and sequence numbers, the old ones byte for byte."""

from conftest import ROOT, run_mp
from station_kit import held_port  # noqa: F401  (fixture)

from flashtool.fares import records
from flashtool.fares.lane import Lane, list_key
from flashtool.release.keys import keygen
from flashtool.release.sign import sign_index
from flashtool.server import keys as reader_keys
from flashtool.server import records as srv_records
from flashtool.server.app import StationServer
from sim import cards, pboc

EPOCH = 0x2345678
FIRST = 70001  # the first record's seq: the journal had run a while before
ACKED = FIRST + 49  # the server already holds the first 50
TERMINAL = bytes.fromhex("000104000001")

OLD = """
import nor, partition
from oldjournal import OldJournal, verdict
fl = nor.NorFlash(%(img)r, %(size)d)
partition.attach(fl, (("journal", 1, 0x41, 0xC20000, 0x230000),))  # boards/host/partitions.csv
o = OldJournal(partition.Partition("journal"), %(epoch)d, head=555, seq=%(first)d)
TERMINAL = %(terminal)r
for i in range(100):  # 300 records: a purchase tap as the previous app journalled it
    p = bytearray(b"\\x50\\x09\\x00\\x01" + b"\\xff" * 24)
    p[8:16] = b"\\x31\\x04\\x00\\x00\\x99\\x99\\x00\\x01"
    p[16:20] = i.to_bytes(4, "little")
    o.append(p)
    q = bytearray(b"\\x51\\x00\\x01\\xff" + b"\\xff" * 24)
    q[8:14] = TERMINAL
    q[14:17] = (200 + i).to_bytes(3, "little")
    o.append(q)
    o.append(verdict(i))
o.ack(%(acked)d)
fl.flush()
print("OLD", o.head, o.seq - 1)
"""


def test_previous_layout_migrates_and_uploads_every_record_once(tmp_path, held_port):  # noqa: F811
    keys = tmp_path / "keys"
    keygen(keys, "app")
    list_key(keys)
    pub = tmp_path / "pub"
    pub.mkdir()
    sign_index(pub, 1, keys / "app.pem")
    data = tmp_path / "station"
    kid, key, _ = reader_keys.issue(data / "readers.json", "F1")
    port = held_port  # nobody else takes it while the reader tries it and the server is down
    issuer = pboc.IssuerKeys.from_seed("migrate")
    lane = Lane(tmp_path / "lane", 104, "exit", issuer, keys, accelerated=False,
                cfg={"sync_url": "http://127.0.0.1:%d" % port, "sync_period_s": 5,
                     "reader_id": "F1"},
                files={"keys__app.pub": (keys / "app.pub").read_bytes(),
                       "keys__upload.key": reader_keys.reader_file("F1", kid, key).encode()})
    img = lane.reader.image
    out = run_mp(OLD % dict(img=str(img), size=img.stat().st_size, epoch=EPOCH, first=FIRST,
                            acked=ACKED, terminal=TERMINAL),
                 path=(ROOT / "host_tests" / "support",))
    head, last_old = map(int, out.split("OLD ")[1].split()[:2])
    assert (head, last_old) == (558, FIRST + 299)  # sectors 556, 557 (the torn log's), 0
    before = {records.seq(r): r for r in records.from_image(img)}
    assert sorted(before) == list(range(FIRST, last_old + 1))
    srv = StationServer(pub, data, port=port)
    c = cards.tunion("3104000055550001", issuer=issuer, counter=1)
    t = lane.reader.world_time() - 1577836800 - 600
    c.purse.trip[:] = (bytes([1, 1]) + (101).to_bytes(2, "big") + t.to_bytes(4, "big")
                       + bytes(6) + b"\0\0" + (101).to_bytes(2, "big") + t.to_bytes(4, "big")
                       + b"\0\0")
    balance = c.purse.balance
    try:
        lane.start()
        ready = [s for s in lane.reader.output if " app ready " in s][0]
        assert int(ready.split(" backlog=")[1].split()[0]) >= last_old - ACKED, ready
        # the server is down: the torn log's sectors still hold records it lacks
        got = lane.tap(c)
        assert (got["verdict"], got["reason"]) == ("MANUAL", "TORN_LOG_WAIT"), got
        assert c.purse.balance == balance and c.purse.counter == 1  # no debit
        lane.wait_idle()
        srv.start()
        lane.reader.wait_for(lambda s: " fare torn log ready " in s, timeout=120)
        got = lane.tap(c)
        assert got["verdict"] == "PASS" and got["fare"] > 0, got
        assert c.purse.balance == balance - got["fare"]
        lane.reader.wait_for(lambda s: " sync upload " in s and " backlog=0" in s and int(
            s.split(" acked=")[1].split()[0]) >= got["seq"], timeout=120)
        held = srv.station.read(srv.station.store.records_of, "F1")
        conflicts = srv.station.read(srv.station.store.conflicts_of, "F1")
    finally:
        lane.close()
        srv.stop()
    assert {e for e, _, _ in held} == {EPOCH}
    seqs = [s for _, s, _ in held]
    assert seqs == list(range(ACKED + 1, got["seq"] + 1))  # each once, nothing missing
    assert conflicts == []
    # the old records byte for byte; the torn log's sectors are the torn log's now
    assert all(before[s] == raw for _, s, raw in held if s <= last_old)
    after = {records.seq(r): r for r in records.from_image(img)}
    assert min(after) > FIRST + 2 * 127 - 1 and all(after[s] == raw for _, s, raw in held
                                                      if s >= min(after))
    old = [srv_records.decode(raw) for _, s, raw in held if s <= last_old and raw[0] == 0x51]
    assert len(old) == 83 and all(d["terminal"] == TERMINAL.hex() for d in old)
    # the charge after the migration: a purchase paired with this app's PSAM record
    assert [p["amount"] for p in records.purchases(r for _, _, r in held)
            if p.get("serial") == bytes.fromhex("3104000055550001")] == [got["fare"]]

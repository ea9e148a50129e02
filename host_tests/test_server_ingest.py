"""The station server on its own (CPython, real sockets), on SQLite and on PostgreSQL: only a
reader holding its key may write as that reader, every bad input gets its answer with nothing
stored or lost, records are kept once by (reader, journal epoch, seq) with a conflict kept
aside, the published tree is served with Range and ETag, limits hold."""

import http.client
import json
import socket
import time

import pytest
from station_kit import backend, postgres, until  # noqa: F401  (fixtures)

from flashtool.server import keys, records
from flashtool.server.app import Limits, StationServer
from flashtool.server.client import ReaderClient

JUNK = b"".join(bytes([0x52]) + bytes(3) + i.to_bytes(4, "little") + bytes(24)
                for i in range(1, 101))


class Env:
    def __init__(self, tmp, db, limits=None):
        self.pub = tmp / "pub"
        (self.pub / "blobs").mkdir(parents=True)
        (self.pub / "index.sm").write_bytes(b"i" * 1000)
        self.blob = "ab" * 32
        (self.pub / "blobs" / self.blob).write_bytes(bytes(range(256)) * 64)
        (tmp / "secret").write_text("no")
        self.ring = tmp / "data" / "readers.json"
        self.kid, self.key, _ = keys.issue(self.ring, "G07")
        self.kid8, self.key8, _ = keys.issue(self.ring, "G08")
        self.srv = StationServer(self.pub, tmp / "data", db=db, port=0, limits=limits or Limits(
            body_timeout=1.0, idle_timeout=1.5, alarm_every=0))
        self.srv.start()
        self.port = self.srv.port
        self.g07 = self.client("G07", self.kid, self.key)

    def client(self, rid, kid, key, **kw):
        return ReaderClient("127.0.0.1", self.port, rid, kid, key, **kw)

    def held(self, rid="G07"):
        st = self.srv.station
        return st.read(st.store.records_of, rid)

    def fleet(self):
        from flashtool.server.app import fleet_view

        return {r["reader"]: r for r in fleet_view(self.srv.station)["readers"]}

    def raw(self, method, path, body=b"", headers=None):
        # a hang only: a request that commits waits for the database's fsync, which a loaded
        # disk can make take seconds
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return r.status, data, r.headers


@pytest.fixture
def env(tmp_path, backend):  # noqa: F811
    e = Env(tmp_path, backend)
    yield e
    e.srv.stop()


def genuine(n, start=1, **kw):
    return b"".join(records.make(i, t=1_800_000_000 + i, key=i * 77, station=101, **kw)
                    for i in range(start, start + n))


def test_squatting_refused_genuine_records_all_stored(env):
    """The run from the issue: a client without a credential posts 100 junk records as G07
    and a fake status; the real reader then uploads its 50: all 50 are stored, nothing else."""
    assert env.raw("POST", "/journal/G07", JUNK, {"Journal-Epoch": "7"})[0] == 401
    assert env.raw("POST", "/status/G07", b'{"app": "evil"}')[0] == 401
    # with a made-up key in the right format: still refused
    forger = env.client("G07", env.kid, b"\x01" * 32)
    assert forger.upload(JUNK)[0] == 401
    status, reply = env.g07.upload(genuine(50))
    assert (status, reply["acked"], reply["new"]) == (200, 50, 50)
    assert env.g07.report({"app": 4, "list": 12, "backlog": 0}) == (200, {})
    held = env.held()
    assert [s for _, s, _ in held] == list(range(1, 51))
    assert b"".join(r for _, _, r in held) == genuine(50)
    row = env.fleet()["G07"]
    assert row["app"] == 4 and row["held"] == 50 and row["auth_failures"] == 3


# -- the bad-input table: each input, its answer, and nothing stored or lost ---------------

def case_no_mac(env):
    return env.raw("POST", "/journal/G07", genuine(2), {"Journal-Epoch": "7"})[:2], 401, \
        "no reader"


def case_wrong_mac(env):
    bad = env.client("G07", env.kid, env.key8)  # G08's key, G07's name
    return bad.upload(genuine(2)), 401, "bad MAC"


def case_replayed_request(env):
    """The exact bytes of an accepted request, sent again (a captured upload)."""
    from flashtool.server import auth

    body = genuine(2)
    h = {"Authorization": auth.sign(env.key, "POST", "/journal/G07", "G07", env.kid, 9, 1, 7,
                                    body), "Journal-Epoch": "7"}
    first = env.raw("POST", "/journal/G07", body, h)
    assert first[0] == 200, first
    return env.raw("POST", "/journal/G07", body, h)[:2], 401, "replayed"


def case_older_counter(env):
    env.g07.ctr = 50
    assert env.g07.upload(genuine(1))[0] == 200
    env.g07.ctr = 10  # below what the server has seen from this boot
    return env.g07.upload(genuine(2)), 401, "replayed"


def case_wrong_reader_id(env):
    g08 = env.client("G08", env.kid8, env.key8)
    return g08.request("POST", "/journal/G07", genuine(2)), 403, "another reader"


def case_unknown_reader(env):
    ghost = env.client("ZZ9", 1, b"\x02" * 32)
    return ghost.upload(genuine(2)), 401, "unknown reader"


def case_retired_key(env):
    kid2, key2, _ = keys.issue(env.ring, "G07")  # rotation
    time.sleep(1.1)  # the ring is re-read at most once a second
    new = env.client("G07", kid2, key2)
    assert new.upload(genuine(1))[0] == 200  # first use of the new key retires the old
    return env.g07.upload(genuine(2)), 401, "key retired"


def case_partial_record(env):
    return env.g07.upload(genuine(2)[:-1]), 400, "partial"


def case_bad_crc(env):
    body = bytearray(genuine(3))
    body[32 + 9] ^= 0x01  # one bit of record 2's time
    return env.g07.upload(bytes(body)), 422, "bad CRC"


def case_unknown_kind(env):
    body = bytearray(genuine(2))
    body[32] = 0x99
    return env.g07.upload(bytes(body)), 422, "unknown record kind"


def case_same_seq_other_content(env):
    assert env.g07.upload(genuine(3))[0] == 200
    other = records.make(2, t=5, key=999)
    return env.g07.upload(other), 200, "conflicts"


def case_body_over_limit(env):
    return env.g07.upload(genuine(600)), 413, ""


def case_malformed_status(env):
    return env.g07.request("POST", "/status/G07", b"{not json"), 400, "malformed status"


def case_status_not_flat(env):
    return env.g07.report({"app": {"nested": [1, 2]}}), 400, "malformed status"


def case_journal_epoch_missing(env):
    from flashtool.server import auth

    body = genuine(1)
    h = {"Authorization": auth.sign(env.key, "POST", "/journal/G07", "G07", env.kid, 3, 1, "",
                                    body)}
    return env.raw("POST", "/journal/G07", body, h)[:2], 400, "Journal-Epoch"


def case_slow_body(env):
    """Headers and half a body, then silence: 408 after the body timeout."""
    s = socket.create_connection(("127.0.0.1", env.port))
    s.sendall(b"POST /journal/G07 HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n"
              b"Journal-Epoch: 7\r\nAuthorization: Reader G07 1 1 1 " + b"0" * 64 +
              b"\r\n\r\n" + b"R" * 10)
    s.settimeout(300)  # only a hung server gets near this; load makes the 408 late, not wrong
    t0 = time.monotonic()
    got = s.recv(200)
    s.close()
    waited = time.monotonic() - t0
    assert waited >= 0.9, waited  # the body timeout (1 s) ran: a lower bound holds under load
    return (int(got.split()[1]), got), 408, ""


def case_slow_headers(env):
    """Headers trickled one byte at a time: the connection is closed at the idle timeout."""
    s = socket.create_connection(("127.0.0.1", env.port))
    s.settimeout(0.2)
    t0 = time.monotonic()
    closed = False
    for b in b"POST /journal/G07 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 200:
        try:
            s.sendall(bytes([b]))
            if s.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if time.monotonic() - t0 > 60:  # the idle timeout is 1.5 s: only a hung server
            break
    s.close()
    return ((499 if closed else 0), b"closed"), 499, ""


def case_path_traversal(env):
    answers = [env.raw("GET", p)[0] for p in (
        "/../secret", "/%2e%2e/secret", "/blobs/../../secret", "/blobs/%2e%2e%2f%2e%2e%2fsecret",
        "//etc/passwd", "/blobs/" + "ab" * 31, "/index.sm/../../secret")]
    return (max(answers) if set(answers) == {404} else answers, b""), 404, ""


CASES = {f.__name__[5:]: f for f in (
    case_no_mac, case_wrong_mac, case_replayed_request, case_older_counter,
    case_wrong_reader_id, case_unknown_reader, case_retired_key, case_partial_record,
    case_bad_crc, case_unknown_kind, case_same_seq_other_content, case_body_over_limit,
    case_malformed_status, case_status_not_flat, case_journal_epoch_missing, case_slow_body,
    case_slow_headers, case_path_traversal)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(env, case):
    # the reader's own records before the bad input
    assert env.g07.upload(genuine(5, start=100))[0] == 200
    before = env.held()
    (status, reply), want, text = CASES[case](env)
    print("%-24s -> %s %s" % (case, status, reply))
    assert status == want, (case, status, reply)
    if text:
        assert text in json.dumps(reply), (case, reply)
    after = env.held()
    # nothing lost: what was held is still held, byte for byte
    assert [x for x in after if x in before] == before, case
    new = [x for x in after if x not in before]
    if case in ("bad_crc", "unknown_kind"):  # the good prefix committed and acknowledged
        assert [s for _, s, _ in new] == [1] and reply["acked"] == 1 and reply["refused"] == 1
    elif case == "same_seq_other_content":
        st = env.srv.station
        assert [s for _, s, _ in new] == [1, 2, 3] and reply["conflicts"] == 1
        assert [x[2] for x in new] == [records.make(i, t=1_800_000_000 + i, key=i * 77,
                                                    station=101) for i in (1, 2, 3)]
        assert st.read(st.store.conflicts_of, "G07") == [(7, 2, records.make(2, t=5,
                                                                               key=999))]
        assert env.fleet()["G07"]["conflicts"] == 1
    elif case in ("replayed_request", "older_counter", "retired_key"):
        # the first (accepted) request stored its records; the refused one nothing more
        assert len(new) <= 2, new
    else:
        assert new == [], (case, new)
    # and the reader carries on: its next genuine request is accepted (the cases that
    # wound its counter back stand for the attacker's copy; the reader's own is ahead)
    if case in ("replayed_request", "older_counter"):
        env.g07.boot = 1000
    if case != "retired_key":
        assert env.g07.upload(genuine(1, start=105))[0] == 200


def test_records_kept_once_by_epoch_and_seq_across_restart(tmp_path, backend):  # noqa: F811
    e = Env(tmp_path, backend)
    try:
        assert e.g07.upload(genuine(3))[1]["new"] == 3
        assert e.g07.upload(genuine(3))[1] == {"acked": 3, "new": 0, "dup": 3, "conflicts": 0}
        # a journal erased on the reader restarts at seq 1 in a new epoch: no collision
        e.g07.jepoch = 8
        assert e.g07.upload(genuine(2, reason=5))[1]["new"] == 2
        # a batch with a gap: only the contiguous run from its first record is acknowledged
        gap = records.make(10) + records.make(11) + records.make(13)
        assert e.g07.upload(gap)[1]["acked"] == 11
        e.srv.stop()
        e.srv = StationServer(e.pub, tmp_path / "data", db=backend, port=0)
        e.srv.start()
        e.port = e.srv.port
        e.g07.port = e.port
        assert [(ep, s) for ep, s, _ in e.held()] == [(7, 1), (7, 2), (7, 3), (8, 1), (8, 2),
                                                      (8, 10), (8, 11), (8, 13)]
        # the replay state survived the restart too
        e.g07.ctr -= 1
        assert e.g07.upload(genuine(1, start=14))[0] == 401
        row = e.fleet()["G07"]
        assert row["held"] == 8 and row["journal_epoch"] == 8 and row["top_seq"] == 13
        dec = records.decode(e.held()[0][2])
        assert dec["verdict"] == "PASS" and dec["reason"] == "OK" and dec["station"] == 101
    finally:
        e.srv.stop()


def test_static_range_etag_and_connection_limit(tmp_path):
    e = Env(tmp_path, str(tmp_path / "s.db"), Limits(max_conns=4, idle_timeout=300))
    try:
        code, body, h = e.raw("GET", "/index.sm")
        assert code == 200 and len(body) == 1000 and h["ETag"]
        assert e.raw("GET", "/index.sm", headers={"If-None-Match": h["ETag"]})[0] == 304
        assert e.raw("GET", "/index.sm", headers={"If-None-Match": '"x"'})[0] == 200
        code, body, h = e.raw("GET", "/blobs/" + e.blob, headers={"Range": "bytes=16000-"})
        assert code == 206 and body == (bytes(range(256)) * 64)[16000:]
        assert h["Content-Range"] == "bytes 16000-16383/16384"
        assert e.raw("GET", "/blobs/" + e.blob, headers={"Range": "bytes=99999-"})[0] == 416
        assert e.raw("POST", "/index.sm")[0] in (404, 405)
        def conns():
            return len(e.srv.bounded.server.connections)

        idle = [socket.create_connection(("127.0.0.1", e.port)) for _ in range(4)]
        until(lambda: conns() == 4, "4 connections")  # the next one is one too many
        s = socket.create_connection(("127.0.0.1", e.port))
        s.settimeout(300)
        assert s.recv(100).startswith(b"HTTP/1.1 503")
        for c in idle + [s]:
            c.close()
        until(lambda: conns() == 0, "connections closed")
        assert e.raw("GET", "/index.sm")[0] == 200  # room again once they are gone
        assert e.srv.bounded.refused == 1
    finally:
        e.srv.stop()

"""The one-image store through the reader's own sync (emulated reader modelling the 32 MiB
esp32s3_gate32 board, real TCP against the station server): a segmented list, its delta, then
the compaction of the two, whose download the server drops halfway. Meanwhile, and after the
reboot, the gate decides exactly as list + delta did for every identifier checked (members,
the changed ones, the delta's removal), with the segments already switched answering from the
new image; the next cycle resumes with a Range request from the last segment in place and
completes the roll, still deciding the same."""

import json

import pytest
from station_kit import station  # noqa: F401  (fixture)
from test_ota_kit import _isolate, close_reader, keys, wl, workload_dir  # noqa: F401
from test_sync_e2e import sync

from flashtool.lists import blocklist as cb
from flashtool.release.keys import load_private
from flashtool.release.sign import sign_files, sign_index
from sim.runner import Reader

SEG = 8192  # 16 pages a segment, ten segments: a drop halfway leaves some switched
PAGES = 160
OLD = b"3100000000000001"  # listed in the list, removed by the delta
NEW = b"3100000000000002"  # added by the delta

# Reader side: the store the partition table calls for, where its install stands, what the
# gate decides for each identifier, the list's progress record.
SEGWL = '''
import board
import config
import decision
import files
import ota
import signedmanifest as sm
from blocklist.store import open_store
from credential import KIND_CPU, Credential


def run():
    with open("/keys/list.pub") as f:
        _, key = sm.load_key(f.read())
    store = open_store(board.Partition, key[:2])
    print("STORE %s seq=%d pending=%d done=%d nseg=%d active=%d" % (
        type(store).__name__, store.seq, store.pending_seq, store.done, store.nseg,
        store.active()))
    d = decision.Decider(config.validate({}))
    d.use_lists(store)
    c = Credential()
    out = []
    for ident in open("/extra/idents.txt").read().split():
        c.clear()
        c.kind = KIND_CPU
        c.set_number(ident.encode())
        d.decide(c, board.clock.time(), 0)
        out.append("%d/%d/%d" % (d.verdict, d.reason, d.category))
    print("DECIDE " + " ".join(out))
    raw = files.read(ota.DL_LIST)
    print("DL " + (raw.decode() if raw else "-"))
'''


@pytest.fixture
def reader32(tmp_path):
    r = Reader(workdir=tmp_path / "reader", flash_board="esp32s3_gate32")
    _isolate(r)
    yield r
    close_reader(r)


def publish(pub, kd, seq, tmp, data, index):
    path = tmp / ("l%d.bin" % seq)
    path.write_bytes(data)
    sign_files(pub, "list", "list", seq, {"list.bin": path}, kd / "list.pem")
    sign_index(pub, index, kd / "app.pem")
    m = json.loads((pub / "list.sm").read_bytes().split(b"\n", 1)[1])
    return m["files"][0][2], m["files"][0][1]


def state(reader, extra, idents):
    (extra / "idents.txt").write_bytes(b" ".join(idents))  # more than the settings carry
    code, lines = reader.run(entry="segwl", extra_path=extra, timeout=60)
    assert code == 0, "\n".join(lines)
    st = dict(x.split("=") for x in [ln for ln in lines if ln.startswith("STORE ")][0].split()[2:])
    dec = [ln for ln in lines if ln.startswith("DECIDE ")][0].split()[1:]
    dl = [ln for ln in lines if ln.startswith("DL ")][0][3:]
    return {k: int(v) for k, v in st.items()}, dec, None if dl == "-" else json.loads(dl)


def test_rolling_compaction_through_sync_with_a_dropped_download(
        reader32, station, tmp_path, keys):  # noqa: F811
    srv, pub, url = station
    reader = reader32
    extra = workload_dir(tmp_path, pub, keys)
    (extra / "segwl.py").write_text(SEGWL)
    assert wl(reader, extra, "provision")[0] == 0
    priv = load_private(keys / "list.pem")
    ents = [(1, OLD, 1)] + [(1, b"31047700%08d" % i, 1 + i % 5) for i in range(3000)]
    changes = [(cb.fmt.OP_REMOVE, 1, OLD, 1), (cb.fmt.OP_ADD, 1, NEW, 1),
               (cb.fmt.OP_ADD, 1, b"31047700%08d" % 7, 2)]  # moved from category 3 to 2
    l3 = cb.build_image(ents, priv, 3, key=bytes(range(16)), segment=SEG, npages=PAGES)
    d4 = cb.build_delta(l3, changes, priv, 4, members=ents)
    c5 = cb.compact(l3, ents, changes, priv, 5)
    idents = [OLD, NEW] + [e[1] for e in ents[1:200:4]] + [b"9999%012d" % i for i in range(10)]

    publish(pub, keys, 3, tmp_path, l3, 1)
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert code == 0 and info["list"] == "3", lines
    st, listed, _ = state(reader, extra, idents)
    assert st["seq"] == 3 and st["active"] == 1 and listed[0] == "2/9/1", (st, listed)
    publish(pub, keys, 4, tmp_path, d4, 2)
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert code == 0 and info["list"] == "4", lines
    st, before, _ = state(reader, extra, idents)
    assert before[:2] == ["1/0/0", "2/9/1"] and before != listed, before  # the delta decides

    sha, size = publish(pub, keys, 5, tmp_path, c5, 3)
    assert size > 8 * SEG
    srv.log.cut_next(sha, size // 2)
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert info["list"] == "4" and any(ln.startswith("CYCLE fail") for ln in lines), lines
    st, mid, rec = state(reader, extra, idents)  # after a reboot: the roll is half done
    assert st["pending"] == 5 and 0 < st["done"] < st["nseg"] == 10 and st["active"], st
    assert mid == before  # no decision changed: old list + delta or the compaction, alike
    h = cb.fmt.Header(c5, len(c5))
    assert rec["sha"] == sha and rec["n"] == h.pages_at + st["done"] * SEG, (rec, st)

    srv.log.log.clear()
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert code == 0 and info["list"] == "5", lines
    assert srv.log.blob(sha) == [(rec["n"], 206, size - rec["n"])]  # only the rest fetched
    st, after, rec = state(reader, extra, idents)
    assert st == {"seq": 5, "pending": 0, "done": 0, "nseg": 0, "active": 1} and rec is None
    assert after == before

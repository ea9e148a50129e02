"""Power cut at every flash program and erase of the one-image store's installs (segstore):
a first list (plain), a delta, a delta over a delta, a rolling install of a compaction, a
rolling install of another image with the same geometry, and a plain install over a list
(another hash key); clean, torn-prefix and torn-bits. Each cut point is followed by a reboot
(a new store on the same flash): the reader answers exactly per the old state, the new one,
or the documented mixed state (an identifier's segment switched: the new image, else the old
list with its delta; no list while a plain install runs), never otherwise for anyone checked;
then the same artefact, streamed again from byte 0 as after a lost connection, continues the
install (segments in place are not written again) and ends in the new state.

The map records are padded so that a roll and a delta each cross into the other record
sector (its erase is a cut point too). Short form here; `make check-long` runs ten 8 KiB
segments instead of three of 4 KiB.
"""

import pytest
import test_blocklist_store as bls
from test_blocklist_segstore import SegLab, world
from test_blocklist_store import entries

keys = bls.keys

LOOP = """
SNAP = %(snap)r
BLANK = %(blank)r
TORN = %(torn)d

def setup(paths, pad):
    flash.copy_from(BLANK)
    store = open_store(Partition, PUB)
    for p in paths:
        install(store, p)
    while store._wslot < pad:  # position the next map record (a sector holds 16)
        store._append(list(store._f), store._map)
    flash.copy_to(SNAP)
    return store.seq

def state(store, old, new):
    if store.pending_seq == new:
        return 'mix' if store.active() else 'plain'
    if store.pending_seq:
        return 'other'
    return {old: 'old', new: 'new'}.get(store.seq, 'other')

rec_erases = [0]
def trace(kind, addr, n):
    if kind == 2 and addr < 8192:
        rec_erases[0] += 1

def campaign(new, old, newseq, cases, chunk):
    n = 1
    while True:
        flash.copy_from(SNAP)
        store = open_store(Partition, PUB)
        flash.cut_at = n
        flash.torn = TORN
        rec_erases[0] = 0
        flash.trace = trace
        try:
            install(store, new, chunk=chunk)
            finished = True
        except nor.PowerCut:
            finished = False
        flash.trace = None
        flash.cut_at = 0
        flash.dead = False
        if finished:
            return n, flash.programs, rec_erases[0]
        store = open_store(Partition, PUB)  # the reboot
        st = state(store, old, newseq)
        done = store.done
        bad = len(check4(store, cases, newseq))
        p0 = flash.programs
        again = attempt(store, new, chunk=chunk)
        bad += len(check4(store, cases, newseq))
        print('cut', n, st, done, bad, flash.programs - p0, again)
        n += 1
"""

# the states a reboot after a cut must show, besides "new" (a record that landed whole)
REQUIRED = {
    "first": {"old", "plain"},
    "delta": {"old"},
    "delta_on_delta": {"old"},
    "roll": {"old", "mix"},
    "roll_other": {"old", "mix"},
    "plain": {"old", "plain"},
}


def scenario(lab, n):
    """kind: (setup artefacts, record pad, artefact, old seq, new seq, cases)."""
    v1, l1, d2, d3, c4, idents = world(lab, n)
    v5 = entries(b"A", n // 2) + entries(b"B", n // 2)  # same geometry, other members
    l5 = lab.full("l5.img", v5, 5)
    k6 = lab.full("k6.img", v1, 6, key=bytes(range(1, 17)))  # another hash key
    idents += [e[:2] for e in v5[n // 2: n // 2 + n // 20]]
    return {
        "first": ([], 0, l1, 0, 1, lab.cases4((None, None), (l1, None), idents)),
        "delta": ([l1], 0, d2, 1, 2, lab.cases4((l1, None), (l1, d2), idents)),
        "delta_on_delta": ([l1, d2], 16, d3, 2, 3, lab.cases4((l1, d2), (l1, d3), idents)),
        "roll": ([l1, d3], 14, c4, 3, 4, lab.cases4((l1, d3), (c4, None), idents)),
        "roll_other": ([l1, d2], 0, l5, 2, 5, lab.cases4((l1, d2), (l5, None), idents)),
        "plain": ([l1, d2], 0, k6, 2, 6, lab.cases4((l1, d2), (k6, None), idents)),
    }


def run_campaign(lab, torn, n, chunk):
    blank = lab.dir / "blank.bin"
    blank.write_bytes(lab.img.read_bytes())
    results = {}
    for kind, (setup, pad, new, old, newseq, cases) in scenario(lab, n).items():
        code = LOOP % {"snap": str(lab.dir / "snap.bin"), "blank": str(blank), "torn": torn}
        code += "\nprint('setup', setup(%r, %d))\nprint('end', *campaign(%r, %d, %d, %r, %d))\n" \
            % ([str(p) for p in setup], pad, str(new), old, newseq, cases, chunk)
        out = lab.run(code, timeout=3000).splitlines()
        assert out[0] == "setup %d" % old, out[:3]
        _, ops, programs, rec_erases = out[-1].split()
        seen = set()
        for line in out[1:-1]:
            _, cut, st, done, bad, retry, *again = line.split()
            assert bad == "0", (kind, line)
            assert again == ["ok", str(newseq)], (kind, line)
            seen.add(st)
            if st in ("mix", "plain") and int(done):  # segments in place are not redone
                assert int(retry) < int(programs), (kind, line, programs)
        assert REQUIRED[kind] <= seen <= REQUIRED[kind] | {"new"}, (kind, seen)
        if pad:
            assert int(rec_erases) == 1, kind  # the append crossed into the other sector
        results[kind] = int(ops) - 1
    return results


@pytest.mark.parametrize("torn", [0, 1, 2], ids=["clean", "torn_prefix", "torn_bits"])
def test_power_cut_at_every_flash_op(tmp_path, mp, keys, torn):
    lab = SegLab(tmp_path, mp, keys, segment=4096, pages=24, region=80 * 4096)
    got = run_campaign(lab, torn, 3000, chunk=2048)
    assert all(k >= 4 for k in got.values()), got


@pytest.mark.long
@pytest.mark.parametrize("torn", [0, 1, 2], ids=["clean", "torn_prefix", "torn_bits"])
def test_power_cut_big_rolling_install(tmp_path, mp, keys, torn):
    lab = SegLab(tmp_path, mp, keys, segment=8192, pages=160, region=160 * 4096)
    got = run_campaign(lab, torn, 20000, chunk=4096)
    assert got["roll"] >= 40, got


WORKLOAD = """
import board
from blocklist.store import open_store

PUB = (%(n)d, %(e)d)
IDENTS = %(idents)r


def run():
    store = open_store(board.Partition, PUB)
    print('BL boot', board.FLASH_SIZE, type(store).__name__, store.seq, store.pending_seq,
          store.done, store.active(), board.flash.ops)
    print('BL look', ' '.join(str(store.lookup(ns, i, len(i))) for ns, i in IDENTS))
    if store.seq < %(target)d:
        name = '/extra/%%d.img' %% (store.pending_seq or store.seq + 1)
        f = open(name, 'rb')
        f.seek(0, 2)
        inst = store.begin(f.tell())
        f.seek(0)
        buf = bytearray(4096)
        while True:
            k = f.readinto(buf)
            if not k:
                break
            inst.write(memoryview(buf)[:k])
        print('BL installed', inst.finish(), board.flash.ops)
"""


def test_power_cut_full_reboots_on_the_32mib_board(tmp_path, keys):
    """The emulated reader modelling the 32 MiB board (esp32s3_gate32's partition table, its
    24 MiB bl_seg region): a first list, its delta, then the compaction of the two rolled in
    (64 KiB segments), cut during a segment write and at the last switch, with real reboots:
    after each, every identifier checked answers as list + delta did (the compaction answers
    them alike) and the install completes."""
    from flashtool.lists import blocklist as cb
    from sim.runner import EXIT_POWER_CUT, Reader

    priv = keys[0]
    v1 = entries(b"A", 3000)
    changes = [(cb.fmt.OP_REMOVE, *v1[0]), (cb.fmt.OP_ADD, 1, b"NEW-1", 2)]
    l1 = cb.build_image(v1, priv, 1, key=bytes(range(16)), segment=65536, npages=512)
    d2 = cb.build_delta(l1, changes, priv, 2, members=v1)
    c3 = cb.compact(l1, v1, changes, priv, 3)
    extra = tmp_path / "extra"
    extra.mkdir()
    for seq, data in ((1, l1), (2, d2), (3, c3)):
        (extra / ("%d.img" % seq)).write_bytes(data)
    probe = [e[:2] for e in v1[:40]] + [(1, b"NEW-1")]
    before = " ".join(str(cb.lookup(l1, ns, i, d2)) for ns, i in probe)
    after = " ".join(str(cb.lookup(c3, ns, i)) for ns, i in probe)
    assert before == after and before.startswith("0 2 3") and before.endswith(" 2")
    n, e = cb.pubkey(priv)
    (extra / "segwl.py").write_text(WORKLOAD % {"n": n, "e": e, "idents": probe, "target": 3})
    r = Reader(workdir=tmp_path / "reader", flash_board="esp32s3_gate32")
    try:
        assert r.image.stat().st_size == 32 << 20
        code, out = r.run(entry="segwl", extra_path=str(extra))
        assert code == 0 and out[0].startswith("BL boot 33554432 SegStore 0 0 0 False"), out
        assert any(x.startswith("BL installed 1") for x in out), out
        code, out = r.run(entry="segwl", extra_path=str(extra))
        assert any(x.startswith("BL installed 2") for x in out), out
        snap = r.image.read_bytes()
        code, out = r.run(entry="segwl", extra_path=str(extra))
        assert "BL look " + before in out, out
        start = [int(x.split()[-1]) for x in out if x.startswith("BL boot")][0]
        end = [int(x.split()[-1]) for x in out if x.startswith("BL installed 3")][0]
        # mid-way through a segment's programs, and the last op (the final switch record)
        for cut, torn in (((start + end) // 2, 1), (end, 2)):
            r.image.write_bytes(snap)
            code, out = r.run(entry="segwl", extra_path=str(extra), cut_at=cut, torn=torn)
            assert code == EXIT_POWER_CUT, "\n".join(out)
            code, out = r.run(entry="segwl", extra_path=str(extra))  # reboot: mixed, continue
            assert code == 0, "\n".join(out)
            boot = [x.split() for x in out if x.startswith("BL boot")][0]
            assert boot[4:8] == ["2", "3", boot[6], "True"] and int(boot[6]) >= 1, boot
            assert "BL look " + before in out and any(
                x.startswith("BL installed 3") for x in out), out
            code, out = r.run(entry="segwl", extra_path=str(extra))
            assert "BL look " + after in out and any(
                x.startswith("BL boot 33554432 SegStore 3 0 0 True") for x in out), out
    finally:
        r.close()

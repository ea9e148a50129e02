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

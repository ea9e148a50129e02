"""Power cut at every flash program/erase of a list install (first list on blank slots, full,
delta, a compact delta over a delta, full over delta), clean and torn: after the reboot the
reader has exactly the old or the new list, its lookups are right for that list, and the same
install then succeeds.

The cut loop runs inside one MicroPython process (the two slot ranges are snapshotted and
restored with flash.copy_to/copy_from); a few cuts go through full emulated-reader reboots.
"""

import pytest
import test_blocklist_store as bls
from test_blocklist_store import entries

from sim.runner import EXIT_POWER_CUT, Reader

keys = bls.keys  # the session key pair and the flash-image lab (fixtures)
lab = bls.lab

LOOP = """
SLOTS = 0x420000
SPAN = 0x800000
SNAP = %(snap)r
BLANK = %(blank)r
CASES = %(cases)r
TORN = %(torn)d

def setup(paths):
    flash.copy_from(BLANK, SLOTS, SPAN)
    store = ListStore(Partition, PUB)
    for p in paths:
        install(store, p)
    flash.copy_to(SNAP, SLOTS, SPAN)
    return store.seq

def campaign(new, old_seq, new_seq, chunk):
    n = 1
    while True:
        flash.copy_from(SNAP, SLOTS, SPAN)
        store = ListStore(Partition, PUB)
        flash.cut_at = n
        flash.torn = TORN
        try:
            install(store, new, chunk=chunk)
            finished = True
        except nor.PowerCut:
            finished = False
        flash.cut_at = 0
        flash.dead = False
        store = ListStore(Partition, PUB)  # the reboot
        seq = store.seq
        bad = check(store, CASES[seq]) if seq in (old_seq, new_seq) else ['wrong seq']
        again = '-' if finished else attempt(store, new)
        print('cut', n, seq, len(bad), again)
        if finished:
            return n
        n += 1
"""


def scenario(lab, big=False):
    """(setup paths, new artefact, old seq, new seq, cases file per seq) for each install kind."""
    n = 250_000 if big else 300
    v1 = entries(b"A", n)
    v4 = entries(b"B", n)
    l1 = lab.full("l1.img", v1, 1)
    l4 = lab.full("l4.img", v4, 4)
    gone = v1[0]
    ch2 = [(2, *gone), (1, 3, b"ACC-2", 2)]
    d2 = lab.delta("d2.img", l1, ch2, 2)
    # a compact delta (fingerprint pages with an op bit) over an exact-record one
    d3 = lab.delta("d3.img", l1, ch2 + [(1, 2, b"MF-3", 1)], 3, compact=True, members=v1)
    c1 = lab.cases(v1[:400], v4[:100])
    c2 = lab.cases([(gone[0], gone[1], 0), (3, b"ACC-2", 2)] + v1[1:400])
    c3 = lab.cases([(gone[0], gone[1], 0), (3, b"ACC-2", 2), (2, b"MF-3", 1)] + v1[1:400])
    c4 = lab.cases(v4[:400], v1[1:100])
    c0 = lab.cases([], v1[:200])  # no list yet: nothing is listed
    return {
        "first": ([], l1, 0, 1, {0: c0, 1: c1}),
        "full": ([l1], l4, 1, 4, {1: c1, 4: c4}),
        "delta": ([l1], d2, 1, 2, {1: c1, 2: c2}),
        "delta_on_delta": ([l1, d2], d3, 2, 3, {2: c2, 3: c3}),
        "full_on_delta": ([l1, d2], l4, 2, 4, {2: c2, 4: c4}),
    }


def run_campaign(lab, torn, kinds, big=False, chunk=4096):
    results = {}
    blank = lab.dir / "blank.bin"
    blank.write_bytes(b"\xff" * 0x800000)
    for kind, (setup, new, old, newseq, cases) in scenario(lab, big).items():
        if kind not in kinds:
            continue
        code = LOOP % {"snap": str(lab.dir / "snap.bin"), "cases": cases, "torn": torn,
                       "blank": str(blank)}
        code += "\nprint('setup', setup(%r))\nprint('ops', campaign(%r, %d, %d, %d))\n" % (
            [str(p) for p in setup], str(new), old, newseq, chunk)
        out = lab.run(code, timeout=3000).splitlines()
        assert out[0] == "setup %d" % old
        cuts = [line.split() for line in out if line.startswith("cut ")]
        seen = set()
        for _, n, seq, nbad, *again in cuts:
            assert int(nbad) == 0, (kind, n, seq)
            seen.add(int(seq))
            if again != ["-"]:
                assert again == ["ok", str(newseq)], (kind, n, again)
        assert seen == {old, newseq}, (kind, seen)  # both outcomes occur: the loop cut for real
        results[kind] = len(cuts)
    return results


@pytest.mark.parametrize("torn", [0, 1, 2], ids=["clean", "torn_prefix", "torn_bits"])
def test_power_cut_at_every_flash_op(lab, torn):
    got = run_campaign(lab, torn, ("first", "full", "delta", "delta_on_delta",
                                   "full_on_delta"), chunk=1024)
    # every program and erase of each install was a cut point (plus the uncut run)
    assert all(n >= 4 for n in got.values()), got


@pytest.mark.long
@pytest.mark.parametrize("torn", [0, 1, 2], ids=["clean", "torn_prefix", "torn_bits"])
def test_power_cut_big_install(lab, torn):
    got = run_campaign(lab, torn, ("full", "full_on_delta"), big=True, chunk=16384)
    assert all(n >= 40 for n in got.values()), got


WORKLOAD = """
import board
from blocklist.store import ListStore

PUB = (%(n)d, %(e)d)


def run():
    store = ListStore(board.Partition, PUB)
    print('BL boot seq', store.seq, 'ops', board.flash.ops)
    member = store.lookup(1, %(member)r, %(mlen)d)
    print('BL lookup', member)
    target = '/extra/' + ('l4.img' if store.seq == 1 else 'l1.img')
    if store.seq in (0, 1):
        f = open(target, 'rb')
        f.seek(0, 2)
        inst = store.begin(f.tell())
        f.seek(0)
        buf = bytearray(4096)
        while True:
            k = f.readinto(buf)
            if not k:
                break
            inst.write(memoryview(buf)[:k])
        print('BL installed', inst.finish(), 'ops', board.flash.ops)
"""


def test_power_cut_full_reboots(lab, tmp_path):
    """Real reboots of the emulated reader: cut during the install of list 4 over list 1."""
    from flashtool.lists import blocklist as cb

    extra = tmp_path / "extra"
    extra.mkdir()
    v1 = entries(b"A", 300)
    v4 = entries(b"B", 300)
    (extra / "l1.img").write_bytes(lab.full("l1.img", v1, 1).read_bytes())
    (extra / "l4.img").write_bytes(lab.full("l4.img", v4, 4).read_bytes())
    n, e = cb.pubkey(lab.priv)
    (extra / "blwl.py").write_text(WORKLOAD % {"n": n, "e": e, "member": v4[0][1],
                                               "mlen": len(v4[0][1])})
    r = Reader(workdir=tmp_path / "reader")
    try:
        code, out = r.run(entry="blwl", extra_path=str(extra))
        assert code == 0, "\n".join(out)
        assert any(line.startswith("BL installed 1") for line in out)
        snap = r.image.read_bytes()
        code, out = r.run(entry="blwl", extra_path=str(extra))
        start = [int(x.split()[-1]) for x in out if x.startswith("BL boot")][0]
        end = [int(x.split()[-1]) for x in out if x.startswith("BL installed")][0]
        for cut in (start + 1, (start + end) // 2, end):
            r.image.write_bytes(snap)
            code, out = r.run(entry="blwl", extra_path=str(extra), cut_at=cut, torn=1)
            assert code == EXIT_POWER_CUT, "\n".join(out)
            code, out = r.run(entry="blwl", extra_path=str(extra))  # reboot: old list, retry
            assert code == 0, "\n".join(out)
            assert "BL boot seq 1 ops 0" in out and "BL lookup 0" in out, out
            assert any(x.startswith("BL installed 4") for x in out), out
            code, out = r.run(entry="blwl", extra_path=str(extra))  # and again: the new list
            assert "BL boot seq 4 ops 0" in out and "BL lookup %d" % v4[0][2] in out, out
    finally:
        r.close()

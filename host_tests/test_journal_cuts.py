"""Power cut at every flash program/erase of journal appends, acks and sector recycling (clean
cut, torn prefix, torn bits), in one MicroPython process: restore a snapshot of the journal
partition, replay the workload with `flash.cut_at = k`, "reboot" (mount a new Journal on the
same flash) and check the invariants of reliability-and-ota.md §8.3 / T4:

* every append that returned (a record that may have opened a gate) is there, intact;
* records read back have valid CRCs and a contiguous sequence; at most the in-flight one more;
* the upload cursor is at least the last ack that returned and never past the one attempted;
* the journal accepts appends after recovery, and they survive another reboot.
"""

import pytest
from conftest import LONG

CUT_LOOP = """
import nor, partition, journal
IMG = %(img)r
SNAP = %(img)r + ".snap"
SIZE = %(size)d
SECTORS = %(sectors)d
fl = nor.NorFlash.erased(IMG, SIZE)
partition.attach(fl, (("journal", 1, 0x41, 0, SIZE),))
P = partition.Partition("journal")

def rec(j, i):
    return j.append(1 + i %% 3, i %% 27, i %% 4, 1_700_000_000 + i, (i * 7919) & 0x3FFFFFFF,
                    42, 1 + i %% 4, i %% 5, i %% 300, 1234)

# set-up state: PRE records, each acknowledged except the last UNACKED ones
j = journal.Journal(P, sectors=SECTORS)
for i in range(1, %(pre)d + 1):
    rec(j, i)
    if i <= %(pre)d - %(unacked)d:
        j.ack(i)
    j.prepare()
fl.copy_to(SNAP, 0, SIZE)

def workload(j, done):
    for k in range(%(n)d):
        s = rec(j, j.next_seq)
        done[0] = s               # durable: the gate may open now
        if k %% 3 == 2:
            done[2] = j.next_seq - 1 - %(lag)d
            done[1] = j.ack(done[2])
        if k %% 4 == 1:
            j.prepare()

# count the operations of one clean run
fl.copy_from(SNAP, 0, SIZE)
done = [0, 0, 0]
workload(journal.Journal(P, sectors=SECTORS), done)
N = fl.ops
fails = 0
checks = 0
for torn in (nor.CLEAN, nor.TORN_PREFIX, nor.TORN_BITS):
    for k in range(1, N + 1):
        fl.copy_from(SNAP, 0, SIZE)
        fl.cut_at = k
        fl.torn = torn
        j = journal.Journal(P, sectors=SECTORS)
        acked0 = j.acked
        done = [j.next_seq - 1, acked0, acked0]
        try:
            workload(j, done)
            cut = False
        except nor.PowerCut:
            cut = True
        # reboot
        fl.dead = False
        fl.cut_at = 0
        j = journal.Journal(P, sectors=SECTORS)
        recs = [journal.decode(r) for r in j.records(1, 100000)]
        seqs = [r[0] for r in recs]
        why = None
        if not cut:
            why = "no cut"
        elif any(seqs[i + 1] != seqs[i] + 1 for i in range(len(seqs) - 1)):
            why = "gap"
        elif not seqs or seqs[-1] < done[0] or seqs[-1] > done[0] + 1:
            why = "lost or extra"
        elif any(r != (r[0], 1_700_000_000 + r[0], (r[0] * 7919) & 0x3FFFFFFF, 1 + r[0] %% 3,
                       r[0] %% 27, r[0] %% 4, 42, 1 + r[0] %% 4, r[0] %% 5, r[0] %% 300, 1234)
                 for r in recs):
            why = "content"
        elif seqs[0] > j.acked + 1:
            why = "unacknowledged record recycled"
        elif not (done[1] <= j.acked <= max(done[2], done[1])):
            why = "cursor"
        elif j.next_seq != seqs[-1] + 1:
            why = "next seq"
        else:
            j.prepare()
            s = rec(j, j.next_seq)
            j = journal.Journal(P, sectors=SECTORS)
            last = j.records(s, 5)
            if len(last) != 1 or journal.decode(last[0])[0] != s:
                why = "append after recovery"
        checks += 1
        if why:
            fails += 1
            if fails < 5:
                print("FAIL", torn, k, why, done, j.acked, seqs[:3], seqs[-3:])
print("CHECKS", checks, "OPS", N, "FAILS", fails)
"""


def run_cuts(mp, tmp_path, **kw):
    params = dict(img=str(tmp_path / "j.img"), size=8 * 4096, sectors=3, lag=2)
    params.update(kw)
    out = mp(CUT_LOOP % params, heapsize="4M", timeout=1200)
    line = out.split("CHECKS ")[1].split()
    checks, ops, fails = int(line[0]), int(line[2]), int(line[4])
    assert fails == 0, out[-3000:]
    return checks, ops


def test_cut_every_op_across_sector_recycle_and_cursor_switch(mp, tmp_path):
    # 505 acked records in 3 sectors (ring wrapped, cursor sector nearly full): the workload
    # opens a sector (header program + erase of an acknowledged one) and switches cursor
    # sectors, under every cut point in the three variants.
    checks, ops = run_cuts(mp, tmp_path, pre=505, unacked=0, n=120)
    assert ops >= 14 + 4 + 2  # programs of records, acks, a header, erases
    assert checks == 3 * ops


def test_cut_every_op_with_unacknowledged_backlog(mp, tmp_path):
    # the oldest sector holds unacknowledged records: a cut can never make them disappear
    checks, ops = run_cuts(mp, tmp_path, pre=375, unacked=250, n=60, lag=60)
    assert checks == 3 * ops


@pytest.mark.long
@pytest.mark.skipif(not LONG, reason="make check-long")
def test_cut_every_op_long_campaign(mp, tmp_path):
    checks, ops = run_cuts(mp, tmp_path, pre=300, unacked=10, n=260)
    assert ops > 300

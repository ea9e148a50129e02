"""An app-only update onto a journal of the previous app's layout (docs/ota.md, "Journal
migration"): power cut at every flash program/erase of the migration and of the appends, acks
and torn-log entries around it (clean cut, torn prefix, torn bits), in one MicroPython process,
for an old journal that is empty, partly full (its head sector in the torn log's two, with
unacknowledged records), wrapped, and wrapped with unacknowledged records in the two sectors
that change hands. After each reboot (a new Journal on the same flash):

* every record is readable exactly once (content as written, sequences in order and contiguous
  but for the records of the torn log's two sectors once the server held them), nothing
  unacknowledged is gone, every append that returned is there, the cursor is where it was;
* the epoch is the old journal's: the server's keys (reader, epoch, seq) do not change;
* the torn log was never opened over journal records the server did not hold;
* once the server holds everything, the migration completes (the torn log's sectors are
  free), and a later append and torn-log entry work and survive another reboot.

The old layout is written by host_tests/support/oldjournal.py.
"""

import pytest
from conftest import LONG, ROOT

CUT_LOOP = """
import nor, partition, journal, tornlog
from oldjournal import OldJournal, verdict
IMG = %(img)r
SNAP = %(img)r + ".snap"
SIZE = 8 * 4096   # previous layout: 6 record sectors; this one: 4, the torn log's 2, cursor 2
PRE = %(pre)d
ACKED = %(acked)d
W = %(w)d
LAG = %(lag)d
STEP = %(step)d
EPOCH = 0x1234567
fl = nor.NorFlash.erased(IMG, SIZE)
partition.attach(fl, (("journal", 1, 0x41, 0, SIZE),))
P = partition.Partition("journal")

def rec(j, i):
    return j.append(1 + i %% 3, i %% 27, i %% 4, 1_700_000_000 + i, (i * 7919) & 0x3FFFFFFF,
                    42, 1 + i %% 4, i %% 5, i %% 300, 1234)

old = OldJournal(P, EPOCH)
for i in range(1, PRE + 1):
    old.append(verdict(i))
    if i %% 10 == 0 and i <= ACKED:
        old.ack(i)
if ACKED:
    old.ack(ACKED)
fl.copy_to(SNAP, 0, SIZE)

def unacked_in_torn(j):
    # a journal record the server does not hold, in the torn log's sectors
    r = bytearray(32)
    for b in (j.torn_area[1], j.torn_area[1] + 1):
        for slot in range(1, 128):
            P.readblocks(b, r, slot * 32)
            if r[0] == 0x52 and journal.crc_ok(r, 0, 28):
                s = r[4] | r[5] << 8 | r[6] << 16 | r[7] << 24
                if s > j.acked:
                    return True
    return False

def gaps(seqs):
    return [(seqs[i], seqs[i + 1]) for i in range(len(seqs) - 1) if seqs[i + 1] != seqs[i] + 1]

def workload(j, done, bad):
    tl = None
    for k in range(W):
        j.prepare()
        if tl is None and j.torn_area is not None:
            bad[0] = bad[0] or unacked_in_torn(j)
            tl = tornlog.TornLog(*j.torn_area)
        if tl is not None and k %% 5 == 0:
            done[3] = tl.put(tl.buf)
        done[0] = rec(j, j.next_seq)   # durable: the gate may open now
        if k %% 3 == 2:
            done[2] = j.next_seq - 1 - LAG
            done[1] = j.ack(done[2])

fl.copy_from(SNAP, 0, SIZE)
done = [PRE, ACKED, ACKED, 0]
workload(journal.Journal(P), done, [False])
N = fl.ops
fails = checks = 0
for torn in (nor.CLEAN, nor.TORN_PREFIX, nor.TORN_BITS):
    for k in range(1 + (torn * 7) %% STEP, N + 1, STEP):
        fl.copy_from(SNAP, 0, SIZE)
        fl.cut_at = k
        fl.torn = torn
        done = [PRE, ACKED, ACKED, 0]
        bad = [False]
        try:
            workload(journal.Journal(P), done, bad)
            cut = False
        except nor.PowerCut:
            cut = True
        fl.dead = False   # reboot
        fl.cut_at = 0
        j = journal.Journal(P)
        recs = [journal.decode(r) for r in j.records(1, 100000)]
        seqs = [r[0] for r in recs]
        why = None
        if not cut:
            why = "no cut"
        elif bad[0]:
            why = "torn log over unacknowledged records"
        elif any(seqs[i + 1] <= seqs[i] for i in range(len(seqs) - 1)):
            why = "twice or out of order"
        elif len(gaps(seqs)) > 1 or any(b > j.acked + 1 for a, b in gaps(seqs)):
            why = "gap"  # only the torn log's two sectors, once acknowledged, leave one
        elif seqs and (seqs[-1] < done[0] or seqs[-1] > done[0] + 1):
            why = "lost or extra"
        elif not seqs and done[0]:
            why = "lost"
        elif any(r != (r[0], 1_700_000_000 + r[0], (r[0] * 7919) & 0x3FFFFFFF, 1 + r[0] %% 3,
                       r[0] %% 27, r[0] %% 4, 42, 1 + r[0] %% 4, r[0] %% 5, r[0] %% 300, 1234)
                 for r in recs):
            why = "content"
        elif seqs and seqs[0] > j.acked + 1:
            why = "unacknowledged record lost"
        elif not (done[1] <= j.acked <= max(done[2], done[1])):
            why = "cursor"
        elif seqs and j.next_seq != seqs[-1] + 1:
            why = "next seq"
        elif PRE and j.epoch != EPOCH:
            why = "epoch"
        else:
            # the server acknowledges everything: the migration completes
            j.ack(j.next_seq - 1)
            j.prepare()
            if j.torn_area is None or unacked_in_torn(j):
                why = "migration did not complete"
            else:
                tl = tornlog.TornLog(*j.torn_area)
                n = tl.put(tl.buf)
                s = rec(j, j.next_seq)
                j = journal.Journal(P)
                last = j.records(s, 5)
                tl = tornlog.TornLog(*j.torn_area)
                if len(last) != 1 or journal.decode(last[0])[0] != s:
                    why = "append after migration"
                elif tl.n != n + 1 or (done[3] and n <= done[3]):
                    why = "torn log after migration"
        checks += 1
        if why:
            fails += 1
            if fails < 5:
                print("FAIL", torn, k, why, done, j.acked, seqs[:3], seqs[-3:])
print("CHECKS", checks, "OPS", N, "FAILS", fails)
"""

SCENARIOS = {
    # name: (records the previous app wrote, acknowledged, lag of the acks after the update)
    "empty": (0, 0, 2),
    "partly full, head in the torn log's sectors": (600, 550, 5),
    "wrapped": (1000, 950, 2),
    "wrapped, unacknowledged in the torn log's sectors": (1000, 450, 40),
}


def run_cuts(mp, tmp_path, name, step, w=150):
    pre, acked, lag = SCENARIOS[name]
    params = dict(img=str(tmp_path / "j.img"), pre=pre, acked=acked, w=w, lag=lag, step=step)
    out = mp(CUT_LOOP % params, heapsize="4M", timeout=1800,
             path=(ROOT / "host_tests" / "support",))
    line = out.split("CHECKS ")[1].split()
    checks, ops, fails = int(line[0]), int(line[2]), int(line[4])
    assert fails == 0, out[-3000:]
    print("%s: %d checks over %d operations" % (name, checks, ops))
    return checks, ops


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_migration_cut_every_other_op(mp, tmp_path, name):
    checks, ops = run_cuts(mp, tmp_path, name, step=2)
    assert ops >= 150 + 50  # the appends and acks at least, besides the migration's own
    assert checks >= 3 * (ops // 2)


@pytest.mark.long
@pytest.mark.skipif(not LONG, reason="make check-long")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_migration_cut_every_op(mp, tmp_path, name):
    checks, ops = run_cuts(mp, tmp_path, name, step=1, w=300)
    assert checks == 3 * ops

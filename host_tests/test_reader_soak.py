"""Soak: taps at 60 a minute in accelerated time through the real App (decision, journal with
periodic server acknowledgements, gate, feedback), under -X heapsize=192k. Every tap gets a
verdict and a record, none is dropped, and gc.mem_free() after a collection stays flat.
`make test` runs 2,000 taps; the full 100,000 (the journal wraps its ring) is a long test."""

import pytest
from conftest import LONG
from test_reader_e2e import BASE_CFG, cpu, run_scenario, verdicts

from sim.runner import HEAPSIZE, INTERPRETER


def soak(reader, tmp_path, n):
    every = max(200, n // 50)
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass", passback_s=0), "steps": [],
          "repeat": {"tap": cpu("3104000000000000"), "n": n, "gap_ms": 1000,
                     "ack_every": 100, "mem_every": every},
          "tail_ms": 2000}
    out = run_scenario(reader, tmp_path, sc, timeout=3600)
    got = verdicts(out)
    assert len(got) == n
    assert all(g["verdict"] == "PASS" for g in got)
    assert [g["seq"] for g in got] == list(range(1, n + 1))
    done = next(x for x in out if x.startswith("DONE"))
    assert "taps=%d dropped=0 seq=%d" % (n, n) in done
    pts = [(int(x.split()[1]), int(x.split()[2])) for x in out if x.startswith("MEM ")]
    mem = [m for _, m in pts]
    # steady: once the log ring and the first journal sector have filled, and after the
    # sequence number last gained a digit (the ring keeps the last 32 lines, which name it:
    # about 500 bytes more at 10,000 on the 32-bit build, bounded)
    start = max(2 * every, 10 ** (len(str(n - 1)) - 1) + every)
    steady = [m for i, m in pts if i >= start]
    print("%s, app heap %s: %d taps, gc.mem_free() after collections: low-water %d, high %d"
          % (INTERPRETER, HEAPSIZE, n, min(mem), max(mem)))
    return mem, steady, got


def test_soak_short(reader, tmp_path):
    mem, steady, got = soak(reader, tmp_path, 2000)
    assert max(steady) - min(steady) <= 256, mem
    assert max(g["ms"] for g in got) < 50  # host CPU time: tap -> verdict, journal included


@pytest.mark.long
@pytest.mark.skipif(not LONG, reason="make check-long")
def test_soak_100k_taps(reader, tmp_path):
    mem, steady, got = soak(reader, tmp_path, 100_000)
    assert max(steady) - min(steady) <= 256, mem

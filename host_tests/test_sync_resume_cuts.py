"""Power cut at every flash operation of a resumed list install (the sync cycle that picks up
an interrupted download: header re-checked and prefix re-hashed from flash, the rest fetched
with a Range request, checkpoints, the switch record, the record's removal), clean and torn.
After each cut the reader reboots with exactly the old or the new list, decides by it, and
the next cycle resumes again (never from byte 0) and ends with the new list.

One MicroPython process runs the whole loop (rswl `rescut`: LittleFS and both list slots are
restored from a snapshot between cut points) against the station server over real TCP; the short
form cuts at every third operation, the long form (make check-long) at every one, with a
bigger list (three checkpoints in the resumed part)."""

import pytest
from conftest import LONG
from station_kit import station  # noqa: F401  (fixture)
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
)
from test_sync_e2e import sync
from test_sync_resume import (
    CHECKPOINT,
    NEW,
    OLD,
    SECTOR,
    assert_new_active,
    assert_old_active,
    env,  # noqa: F401  (fixture)
    expect,
    old_list,
    publish_big_list,
)


def _parse(line):
    """'CUT n=1 res=cut ...' -> {'n': '1', 'res': 'cut', ...}"""
    return dict(x.split("=", 1) for x in line.split()[1:])


def _decisions(s):
    out = {}
    for item in s.split(","):
        ident, v = item.split(":")
        out[ident] = tuple(int(x) for x in v.split("/"))
    return out


@pytest.mark.parametrize("torn,step,entries", [
    (0, 3, 40_000),
    pytest.param(0, 1, 60_000, marks=pytest.mark.long),
    pytest.param(1, 1, 60_000, marks=pytest.mark.long),
    pytest.param(2, 1, 60_000, marks=pytest.mark.long),
], ids=["clean-short", "clean", "torn_prefix", "torn_bits"])
def test_power_cut_at_every_op_of_a_resumed_list_install(env, torn, step,  # noqa: F811
                                                         entries):
    reader, extra, url = env.reader, env.extra, env.url
    old_list(reader, extra, env.pub, env.keys, env.tmp, url)
    sha, size = publish_big_list(env.pub, env.keys, env.tmp, n=entries)
    # the first download breaks early: the cycles under test resume it and cross a checkpoint
    env.log.cut_next(sha, 2 * SECTOR + 100)
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert info["list"] == "3", lines
    rec = assert_old_active(reader, extra)["list"]
    assert rec["n"] == 2 * SECTOR and size - rec["n"] > CHECKPOINT + SECTOR, (rec, size)
    env.log.log.clear()

    reader.accelerated = False  # real sockets: real time
    code, lines = reader.run(entry="rswl", extra_path=extra, timeout=3000 if LONG else 600,
                             settings={"wl": "rescut", "url": url, "idents": [OLD, NEW],
                                       "torn": torn, "step": step})
    assert code == 0, "\n".join(lines[-30:])
    cuts = [_parse(ln) for ln in lines if ln.startswith("CUT ")]
    assert cuts and cuts[-1]["res"] == "ok", lines[-30:]
    boots = set()
    for c in cuts:
        where = (c["n"], torn)
        assert c["res"] == ("ok" if c is cuts[-1] else "cut"), (where, c)
        boot = int(c["boot"])
        assert boot in (3, 5), (where, c)  # exactly the old or the new list
        assert _decisions(c["bootdec"]) == expect(boot), (where, c)  # and the gate decides by it
        boots.add(boot)
        assert c["recover"] == "ok" and c["seq"] == "5", (where, c)
        assert _decisions(c["dec"]) == expect(5) and c["dl"] == "0", (where, c)
    assert boots == {3, 5}, boots  # cuts before and after the switch: the loop cut for real
    ops = int([ln for ln in lines if ln.startswith("END ")][0].split()[1])
    assert len(cuts) >= (ops - 1) // step, (len(cuts), ops)
    # every list download in the loop was a resume: a Range request from a sector boundary
    gets = env.log.blob(sha)
    assert gets and all(g[0] and g[0] % SECTOR == 0 and g[1] == 206 for g in gets), gets
    assert max(g[2] for g in gets) <= size - rec["n"], gets
    print("torn=%d: list of %d bytes resumed from %d: %d cut points, the uncut install took "
          "%d flash operations; %d ranged GETs" % (torn, size, rec["n"], len(cuts) - 1, ops - 1,
                                                   len(gets)))
    # the reader that ran the loop boots the new list, as the last run left it
    reader.accelerated = True
    assert_new_active(reader, extra)

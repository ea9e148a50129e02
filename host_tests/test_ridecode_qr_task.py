"""The reader's QR task end to end in the emulated reader: simulated scan engine -> driver ->
verifier -> callback, with the reader's own clock; a silent engine never stops it."""

import shutil
import textwrap

import pytest
from test_ridecode_support import NOW, make_world
from test_scanengine_scan import Scenario

from sim import scanengine as se_sim

WORK = """
import asyncio
import board
import credential
import qr_task
from ridecode import keyset, verifier

def run():
    asyncio.run(main())

async def main():
    ks = keyset.load(open("/extra/keyset.bin", "rb").read(), @ROOT_N@, @ROOT_E@)
    v = verifier.Verifier(ks, board.clock)
    qr = qr_task.QrReader(board.scanner_uart(), board.clock, v, @CFG@)
    clock = board.clock
    t0 = clock.ticks_ms()

    async def on_credential(cred):
        print("cred", clock.ticks_diff(clock.ticks_ms(), t0), cred.kind, cred.error,
              cred.ident().decode(), cred.card_type)

    board.maintenance().write("t0")  # the scenario starts here (test_scanengine_scan)
    try:
        await asyncio.wait_for_ms(qr.run(on_credential), @DURATION@)
    except asyncio.TimeoutError:
        pass
    e = qr.engine
    print("stats", qr.scans, qr.silences, qr.reinits, e.suppressed, e.timeouts, qr.configured,
          qr.lost, v.prefetches, v.certs.hits, v.certs.misses)
"""


@pytest.fixture
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def run_task(reader, tmp_path, world, actions, cfg=None, duration=8000, settings=None,
             silent=False):
    cfg = dict({"qr_baud": 115200}, **(cfg or {}))  # as gates are set up (docs/ride-code.md)
    sim = se_sim.install(reader.hw, baud=cfg["qr_baud"])
    sim.silent = silent
    d = tmp_path / "extra"
    d.mkdir(exist_ok=True)
    shutil.copy(world.ks_path, d / "keyset.bin")
    src = textwrap.dedent(WORK)
    for k, v in (("ROOT_N", world.root["n"]), ("ROOT_E", world.root["e"]),
                 ("CFG", repr(cfg)), ("DURATION", duration)):
        src = src.replace("@%s@" % k, str(v))
    (d / "qr_work.py").write_text(src)
    Scenario(reader, sim, actions)
    code, out = reader.run(entry="qr_work", extra_path=d, settings=settings)
    assert code == 0, "\n".join(out)
    creds = [line.split()[1:] for line in out if line.startswith("cred ")]
    stats = [line.split()[1:] for line in out if line.startswith("stats")][0]
    return sim, creds, stats


def test_codes_pass_once_and_refusals_carry_their_reason(make_reader, tmp_path, world):
    reader = make_reader(epoch=NOW)
    good = world.code2(gen=NOW, counter=1).decode()
    forged = good[:-2] + ("00" if good[-2:] != "00" else "11")
    sim, creds, stats = run_task(reader, tmp_path, world, [
        (500, "show", good), (2500, "hide"), (7000, "show", good), (8500, "hide"),
        (9000, "show", forged)], duration=11000)
    assert [(c[1], c[2], c[3]) for c in creds] == [
        ("4", "0", "3104770011223344556F"),  # kind KIND_CODE, OK
        ("4", "8", "3104770011223344556F"),  # shown again later: REPLAYED
        ("4", "2", "3104770011223344556F")]  # FORGED
    assert int(creds[0][0]) < 800  # decode + 1215 characters at 115200 baud (~106 ms)
    assert int(stats[3]) >= 3  # re-reads while in view were suppressed, not re-verified
    # each certificate was checked while the rest of its code was still on the wire: the
    # check of the whole code found it in the cache (the forged one is checked again, refused)
    prefetches, hits, misses = map(int, stats[7:10])
    assert prefetches >= 3 and hits >= 2


def test_no_trusted_time_is_manual_check(make_reader, tmp_path, world):
    reader = make_reader(epoch=NOW)
    good = world.code2(gen=NOW, counter=2).decode()
    sim, creds, stats = run_task(reader, tmp_path, world, [(500, "show", good)],
                                 duration=3000, settings={"epoch": None})
    assert [c[2] for c in creds] == ["9"]


def test_silent_engine_never_stops_the_reader(make_reader, tmp_path, world):
    reader = make_reader(epoch=NOW)
    good = world.code2(gen=NOW + 10, counter=3).decode()
    actions = [(4000, "set_silent", False), (6000, "show", good), (6800, "hide"),
               (8000, "set_silent", True), (12000, "set_silent", False),
               (15000, "show", world.code2(gen=NOW + 15, counter=4).decode())]
    sim, creds, stats = run_task(reader, tmp_path, world, actions, silent=True,
                                 cfg={"qr_probe_s": 1}, duration=18000)
    assert [c[2] for c in creds] == ["0", "0"]
    scans, silences, reinits, _, timeouts, configured, lost = stats[:7]
    assert int(silences) >= 3 and int(reinits) >= 2 and configured == "True"
    assert int(timeouts) >= 3 * int(silences) - 3


def test_engine_that_forgot_its_mode_is_configured_again(make_reader, tmp_path, world):
    """The engine browns out on its own (volatile zones back to manual mode, nothing scans)
    while it keeps answering: the probe sees the mode and the task configures it again."""
    reader = make_reader(epoch=NOW)
    actions = [(500, "show", world.code2(gen=NOW, counter=6).decode()), (2200, "hide"),
               (3000, "power_cycle"),
               (6000, "show", world.code2(gen=NOW + 6, counter=7).decode())]
    sim, creds, stats = run_task(reader, tmp_path, world, actions, cfg={"qr_probe_s": 1},
                                 duration=8000)
    assert [c[2] for c in creds] == ["0", "0"]
    assert stats[6] == "1" and stats[1] == "0" and sim.mode() == 2


def test_command_mode_task_triggers_the_engine(make_reader, tmp_path, world):
    """At 115200 baud, as gates are set up: at 9600 an RC2 code is 0.76 s on the wire, longer
    than a trigger period (test_scanengine_scan covers the replies that then come late)."""
    reader = make_reader(epoch=NOW)
    good = world.code2(gen=NOW, counter=5).decode()
    sim, creds, stats = run_task(reader, tmp_path, world, [(1500, "show", good)],
                                 cfg={"qr_mode": "command", "qr_trigger_ms": 500,
                                      "qr_baud": 115200}, duration=4000)
    assert [c[2] for c in creds] == ["0"]
    assert sim.mode() == 1
    # read again at every trigger while it stays in view, delivered once (the last read may
    # still be on the wire when the run ends)
    assert sim.emitted >= 3 and sim.emitted - 2 <= int(stats[3]) <= sim.emitted - 1

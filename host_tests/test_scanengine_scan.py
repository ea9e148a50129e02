"""Scan data through the driver (MicroPython, compiled) from the simulated engine: terminator
and idle-gap framing, same-code suppression while a code stays in view, over-long input dropped
and counted, command-triggered and continuous modes, garbage and partial output."""

import textwrap

from sim import scanengine as se_sim

WORK = """
import asyncio
import board
import scanengine
from scanengine import ScanEngine

def run():
    asyncio.run(main())

async def main():
    clock = board.clock
    se = ScanEngine(board.scanner_uart(), clock, bufsize=@BUF@, same_ms=@SAME@)
    await se.set_mode(@MODE@)
    t0 = clock.ticks_ms()
    board.maintenance().write("t0")  # on the link: the scenario starts at this virtual instant
    last_trigger = -10000
    while clock.ticks_diff(clock.ticks_ms(), t0) < @DURATION@:
        now = clock.ticks_diff(clock.ticks_ms(), t0)
        if @MODE@ == scanengine.MODE_COMMAND and now - last_trigger >= 1000:
            try:
                await se.trigger()
            except scanengine.ScanEngineError:
                pass  # counted in se.timeouts
            last_trigger = now
        for _ in range(4):
            se.poll()
        n = se.take()
        if n:
            print("code", clock.ticks_diff(clock.ticks_ms(), t0), bytes(se.code[:n]))
        await asyncio.sleep_ms(10)
    print("stats", se.codes, se.suppressed, se.overruns, se.timeouts)
"""


class Scenario:
    """Actions on the simulated engine at virtual times (ms) relative to the reader's "t0"
    event (sent on the link, so the start is the reader's virtual instant whatever the host's
    load; a printed line reaches the host after an unknown number of requests):
    (at_ms, method name, *args)."""

    def __init__(self, reader, sim, actions):
        self.sim = sim
        self.actions = sorted(actions, key=lambda a: a[0])
        self.t0 = None
        self.events = reader.hw.events
        reader.hw.hooks.append(self._tick)

    def _tick(self, now):
        if self.t0 is None:
            self.t0 = next((t for t, e in self.events if e == "t0"), None)
            if self.t0 is None:
                return
        while self.actions and now >= self.t0 + self.actions[0][0] * 1000:
            at, name, *args = self.actions.pop(0)
            fn = getattr(self.sim, name)
            if name in ("show", "inject"):
                fn(*args, at_us=self.t0 + at * 1000)
            else:
                fn(*args)


def scan(reader, tmp_path, actions, mode=2, duration=6000, buf=128, same=1000, **simkw):
    sim = se_sim.install(reader.hw, **simkw)
    d = tmp_path / "extra"
    d.mkdir(exist_ok=True)
    src = textwrap.dedent(WORK)
    for k, v in (("BUF", buf), ("SAME", same), ("MODE", mode), ("DURATION", duration)):
        src = src.replace("@%s@" % k, str(v))
    (d / "scan_work.py").write_text(src)
    Scenario(reader, sim, actions)
    code, out = reader.run(entry="scan_work", extra_path=d)
    assert code == 0, "\n".join(out)
    codes = [(int(line.split()[1]), eval(line.split(" ", 2)[2])) for line in out
             if line.startswith("code ")]
    stats = [int(x) for x in [line for line in out if line.startswith("stats")][0].split()[1:]]
    return sim, codes, stats


def test_continuous_mode_delivers_once_while_in_view(reader, tmp_path):
    # shown 2 s (the engine re-reads it every 400 ms), hidden, shown again after same_ms
    sim, codes, stats = scan(reader, tmp_path, [
        (100, "show", "RC1:HELLO"), (2100, "hide"), (3500, "show", "RC1:HELLO"),
        (4500, "show", "RC1:OTHER")])
    assert [c for _, c in codes] == [b"RC1:HELLO", b"RC1:HELLO", b"RC1:OTHER"]
    t = [t for t, _ in codes]
    # decode 80 ms + 10 characters at 9600 baud (10.4 ms) after it appeared, plus a poll
    assert 190 <= t[0] <= 220 and 3590 <= t[1] <= 3620
    assert sim.emitted > 6 and stats[1] == sim.emitted - 3  # every re-read was suppressed


def test_idle_gap_ends_a_code_without_terminator_and_garbage_is_framed(reader, tmp_path):
    sim, codes, stats = scan(reader, tmp_path, [
        (100, "inject", b"RC1:NOCR"), (500, "inject", b"\r\n\r\n"),
        (1000, "inject", b"\x00\xff\x7e\x00garbage\r"), (1500, "inject", b"PART"),
        (1520, "inject", b"IAL\r")], duration=2000)
    assert [c for _, c in codes] == [b"RC1:NOCR", b"\x00\xff\x7e\x00garbage", b"PARTIAL"]
    assert 150 <= codes[0][0] <= 200  # 8 bytes on the wire, then the 40 ms gap


def test_over_long_input_is_dropped_counted_and_memory_stays_bounded(reader, tmp_path):
    sim, codes, stats = scan(reader, tmp_path, [
        (100, "inject", b"X" * 1000 + b"\r"), (1500, "inject", b"Y" * 300),
        (2000, "inject", b"RC1:SHORT\r")], duration=2600, buf=128)
    assert [c for _, c in codes] == [b"RC1:SHORT"]
    assert stats[2] == 2  # one ended by CR, one by the idle gap


def test_command_triggered_mode_reads_after_a_trigger(reader, tmp_path):
    # a trigger every second opens a 300 ms scan session
    sim, codes, stats = scan(reader, tmp_path, [(1500, "show", "RC1:TRIG"), (2600, "hide")],
                             mode=1, duration=4000, session_ms=300)
    assert [c for _, c in codes] == [b"RC1:TRIG"]
    # not in the closed session of 1000 ms: the next trigger (2000 ms) + decode + wire time
    assert 2080 <= codes[0][0] <= 2150
    assert sim.emitted == 1  # one read per trigger session, never continuous
    assert stats[3] == 0


def test_silent_engine_is_a_named_timeout(reader, tmp_path):
    sim = se_sim.install(reader.hw)
    sim.silent = True
    d = tmp_path / "extra"
    d.mkdir(exist_ok=True)
    (d / "silent_work.py").write_text(textwrap.dedent("""
        import asyncio, board, scanengine
        def run():
            asyncio.run(main())
        async def main():
            se = scanengine.ScanEngine(board.scanner_uart(), board.clock)
            clock = board.clock
            t = clock.ticks_ms()
            try:
                await se.set_mode(scanengine.MODE_CONTINUOUS)
            except scanengine.ScanEngineError as e:
                print("silent", e.errno, se.timeouts, clock.ticks_diff(clock.ticks_ms(), t))
    """))
    code, out = reader.run(entry="silent_work", extra_path=d)
    line = [x for x in out if x.startswith("silent")][0].split()
    assert line[1:3] == ["110", "3"] and int(line[3]) < 1000


def test_manual_mode_scans_nothing_without_the_trigger_pin(reader, tmp_path):
    """The GM65 default: manual (hardware trigger pin, not wired on the gate). A reader that
    never configured the engine would see nothing, which is why the QR task sets the mode."""
    sim, codes, stats = scan(reader, tmp_path, [(100, "show", "RC1:NOPE")], mode=0,
                             duration=1500)
    assert codes == [] and sim.emitted == 0



SLOW = """
import board
from scanengine import ScanEngine

def run():
    clock = board.clock
    se = ScanEngine(board.scanner_uart(), clock, bufsize=64)
    se.send(0x08, 0x0002, b"\\x01", crc=0)  # the engine ignores it; the test sends its reply
    board.maintenance().write("t0")  # the scenario starts here (on the link)
    got = []
    t0 = clock.ticks_ms()
    while len(got) < 2 and clock.ticks_diff(clock.ticks_ms(), t0) < 2000:
        n = se.poll()
        if n:
            got.append(bytes(se.code[:n]))
            clock.sleep_ms(150)  # what a slow verification does to the next poll
        clock.sleep_ms(5)
    print("codes", got, se.late_replies, se.bad_replies)
"""


def test_a_reply_behind_a_code_survives_a_slow_verification(reader, tmp_path):
    """The engine sends a code, then (queued behind it) the reply to a command; the reader
    spends 150 ms verifying the code before it polls again. The rest of the chunk it already
    read is not an idle line: the reply is a reply, and the next code arrives clean."""
    sim = se_sim.install(reader.hw)
    d = tmp_path / "extra"
    d.mkdir()
    (d / "slow_work.py").write_text(textwrap.dedent(SLOW))
    Scenario(reader, sim, [(50, "inject", b"RC2:FIRST\r" + se_sim.reply(b"\x00")),
                           (400, "inject", b"RC2:SECOND\r")])
    code, out = reader.run(entry="slow_work", extra_path=d)
    assert code == 0, "\n".join(out)
    line = [x for x in out if x.startswith("codes")][0]
    assert line == "codes [b'RC2:FIRST', b'RC2:SECOND'] 0 0"  # no late, no bad reply


RETRIES = """
import asyncio
import board
import scanengine
from scanengine import ScanEngine

def run():
    asyncio.run(main())

async def main():
    clock = board.clock
    se = ScanEngine(board.scanner_uart(), clock, bufsize=64)
    board.maintenance().write("t0")  # the scenario starts here (on the link)
    try:  # a trigger the engine answers only later, three times (once per try)
        await se.command(scanengine.WRITE, 0x0002, b"\\x01", crc=0)
    except scanengine.ScanEngineError as e:
        print("timeout", e.errno, se.timeouts)
    got = []
    t0 = clock.ticks_ms()
    while len(got) < 2 and clock.ticks_diff(clock.ticks_ms(), t0) < 2000:
        n = se.poll()
        if n:
            got.append(bytes(se.code[:n]))
        await asyncio.sleep_ms(5)
    print("codes", got, se.late_replies, se.bad_replies)
"""


def test_every_retry_s_late_reply_is_a_reply(reader, tmp_path):
    """A command tried three times gets three replies, all late (queued behind a code): none
    of them is scan data in front of the next code."""
    sim = se_sim.install(reader.hw)
    d = tmp_path / "extra"
    d.mkdir()
    (d / "retry_work.py").write_text(textwrap.dedent(RETRIES))
    late = se_sim.reply(b"\x00") * 3
    Scenario(reader, sim, [(560, "inject", b"RC2:FIRST\r" + late),
                           (900, "inject", b"RC2:SECOND\r")])
    code, out = reader.run(entry="retry_work", extra_path=d)
    assert code == 0, "\n".join(out)
    assert [x for x in out if x.startswith("timeout")] == ["timeout 110 3"]
    assert [x for x in out if x.startswith("codes")] == [
        "codes [b'RC2:FIRST', b'RC2:SECOND'] 3 0"]

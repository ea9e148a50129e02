"""The whole reader on the emulated board (MicroPython, compiled firmware): credentials injected
by a test workload into the real App, verdicts read back from the slog lines, the gate pins,
the display, the maintenance console and the journal in flash.

The workload stands in for the NFC/QR tasks (lib/pn532, lib/ridecode) until they are wired:
it calls App.on_credential() exactly as they will.
"""

import json
import re

import pytest

VERDICT = re.compile(r"^I (\d+) gate verdict seq=(\d+) kind=(\d+) verdict=(\w+) reason=(\w+) "
                     r"ms=(\d+) mode=(\w+)(?: fare=-?\d+ balance=-?\d+ records=\d+)?$")

# The workload module (mounted at /extra): the real App, a list-store stand-in with the real
# method names, ride-code result numbers, and a feeder following /extra/scenario.json.
WORKLOAD = '''
"""Test workload: the real App fed from a scripted scenario."""
import asyncio
import gc
import json
import sys

import app
import board
import config
import journal
import reasons
import slog
from credential import Credential


class Lists:
    def __init__(self, spec):
        self.categories = {int(k): tuple(v) for k, v in spec["categories"].items()}
        self.entries = {(e[0], e[1].encode()): e[2] for e in spec["entries"]}
        self.seq = spec.get("seq", 1)
        self.stale = spec.get("stale", False)

    def lookup(self, ns, buf, n):
        if bytes(buf[:n]) == b"1666":
            raise OSError(5, "list page unreadable")
        return self.entries.get((ns, bytes(buf[:n])), 0)

    def is_stale(self, now_s):
        return self.stale

    def active(self):
        return True


class RideCodeResults:
    MALFORMED = 1
    FORGED = 2
    UNKNOWN_KEY = 3
    REVOKED = 4
    EXPIRED = 5
    NOT_YET_VALID = 6
    STALE = 7
    REPLAYED = 8
    NO_TRUSTED_TIME = 9


def run():
    slog.set_clock(board.clock)
    with open("/extra/scenario.json") as f:
        sc = json.load(f)
    if sc.get("no_time"):
        board.clock._rtc_s = None  # the RTC was never set
    cfg = config.validate(sc.get("cfg", {}))
    a = app.App(board, cfg, code_errors=reasons.code_table(RideCodeResults),
                journal_sectors=sc.get("journal_sectors"))
    if "lists" in sc:
        a.use_lists(Lists(sc["lists"]))
    if "store" in sc:  # what sync installs into: the app must follow it by itself
        a.store = Lists(sc["store"])
    c = Credential()

    def fill(tap):
        c.clear()
        for k, v in tap.items():
            if k == "number":
                c.set_number(v.encode())
            else:
                setattr(c, k, v)

    async def feeder():
        for step in sc["steps"]:
            await asyncio.sleep_ms(step.get("after", 1000))
            if "mode" in step:
                a.set_mode(step["mode"], "config")
            elif "relist" in step:  # a list install lands in the store
                a.store.entries = {(e[0], e[1].encode()): e[2] for e in step["relist"]}
                a.store.seq = step["seq"]
            elif "ack" in step:
                a.journal.ack(a.journal.next_seq - 1)
            elif "burst" in step:  # a source handing on credentials without yielding
                fill(step["tap"])
                for i in range(step["burst"]):
                    c.number[c.number_len - 1] = 48 + i
                    print("QUEUED", await a.on_credential(c))
            else:
                fill(step["tap"])
                await a.on_credential(c)
        rep = sc.get("repeat")
        if rep:
            fill(rep["tap"])
            gc.collect()
            for i in range(rep["n"]):
                await asyncio.sleep_ms(rep["gap_ms"])
                c.number[c.number_len - 1] = 48 + i % 10
                c.number[c.number_len - 2] = 48 + (i // 10) % 10
                c.number[c.number_len - 3] = 48 + (i // 100) % 10
                await a.on_credential(c)
                if i % rep["ack_every"] == 0:
                    a.journal.ack(a.journal.next_seq - 1)
                if i % rep["mem_every"] == 0:
                    gc.collect()
                    print("MEM", i, gc.mem_free())
        await asyncio.sleep_ms(sc.get("tail_ms", 3000))
        j = a.journal
        print("DONE taps=%d dropped=%d seq=%d backlog=%d passed=%d timeouts=%d beeps=%d "
              "selfcheck=%d" % (a.taps, a.dropped, j.next_seq - 1, j.backlog(), a.gate.passed,
                                a.gate.timeouts, a.feedback.beeps, a.self_check()))
        if sc.get("dump"):
            for r in j.records(1, 100000):
                print("REC", " ".join(str(x) for x in journal.decode(r)))
        sys.exit(0)

    sources = [feeder()]
    if sc.get("hung_source"):
        sources.append(hung())
    asyncio.run(a.run(sources))


async def hung():
    """A source stuck waiting on a chip that never answers."""
    await asyncio.Event().wait()
'''

DUMP = '''
"""Test workload: print the journal as it is in flash after a reboot."""
import board
import journal
from app import journal_partition


def run():
    import json
    with open("/extra/scenario.json") as f:
        sc = json.load(f)
    j = journal.Journal(journal_partition(board), sc.get("journal_sectors"))
    print("JOURNAL next=%d acked=%d" % (j.next_seq, j.acked))
    for r in j.records(1, 100000):
        print("REC", " ".join(str(x) for x in journal.decode(r)))
'''

CATS = {"1": ["lost", "deny", "pass", False], "2": ["unpaid", "manual", "pass", False],
        "3": ["health hold", "deny", "manual", True], "4": ["no info", "manual", "manual", True]}
LISTS = {"categories": CATS, "seq": 31,
         "entries": [[1, "1001", 1], [1, "1002", 2], [1, "1003", 3], [1, "1004", 4],
                     [3, "acct-lost", 1]]}
BASE_CFG = {"station_id": 12, "reader_id": "R7", "direction": "entry", "gate_open_ms": 3000,
            "passback_s": 600}


def cpu(number="1000", **kw):
    return dict(kind=1, number=number, card_type=1, **kw)


def qr(number="acct-1", **kw):
    return dict(kind=4, number=number, **kw)


def write_workload(d, scenario):
    d.mkdir(parents=True, exist_ok=True)
    (d / "tapper.py").write_text(WORKLOAD)
    (d / "dumpj.py").write_text(DUMP)
    (d / "scenario.json").write_text(json.dumps(scenario))
    return d


class Rider:
    """The world side of the passage: while the lock is open, a rider walks through every
    second (sensor 1 for 500 ms), starting 200 ms after it opened."""

    def __init__(self, hw, walk=True):
        self.hw = hw
        self.walk = walk
        self.opened = None
        hw.watch_pin("GATE_LOCK", self._lock)
        hw.hooks.append(self._tick)

    def _lock(self, now, level):
        self.opened = now if level else None

    def _tick(self, now):
        level = 0
        if self.walk and self.opened is not None:
            phase = (now - self.opened) % 1_000_000
            level = 1 if 200_000 <= phase < 700_000 else 0
        self.hw.inputs["PASSAGE"] = level


class Console:
    """Maintenance lines typed at given virtual times (ms after the first request)."""

    def __init__(self, hw, lines):
        self.hw = hw
        self.lines = sorted(lines)
        self.t0 = None
        hw.hooks.append(self._tick)

    def _tick(self, now):
        if self.t0 is None:
            self.t0 = now
        while self.lines and now - self.t0 >= self.lines[0][0] * 1000:
            self.hw.maint.append(self.lines.pop(0)[1].encode())


def verdicts(lines):
    out = []
    for line in lines:
        m = VERDICT.match(line)
        if m:
            out.append(dict(seq=int(m[2]), kind=int(m[3]), verdict=m[4], reason=m[5],
                            ms=int(m[6]), mode=m[7]))
    return out


def records(lines):
    return [list(map(int, x.split()[1:])) for x in lines if x.startswith("REC ")]


def run_scenario(reader, tmp_path, scenario, walk=True, console=(), timeout=300, **kw):
    d = write_workload(tmp_path / "w", scenario)
    Rider(reader.hw, walk)
    if console:
        Console(reader.hw, list(console))
    code, out = reader.run(entry="tapper", extra_path=d, timeout=timeout, **kw)
    assert code == 0, "\n".join(out[-40:])
    return out


STEPS_ALL_REASONS = [
    ("OK", "PASS", {"tap": cpu()}),
    ("PASSBACK", "DENY", {"tap": cpu()}),
    ("MULTI_CARD", "DENY", {"tap": cpu("1100", clash=True)}),
    ("CARD_FAULT", "DENY", {"tap": cpu("1101", error=4)}),
    ("CARD_TYPE", "DENY", {"tap": dict(kind=3, number="5000")}),
    ("EXPIRED", "DENY", {"tap": cpu("1102", valid_to=20200101)}),
    ("NOT_YET_VALID", "DENY", {"tap": cpu("1103", valid_from=20990101)}),
    ("CONCESSION_EXPIRED", "DENY", {"tap": cpu("1104", concession_to=20200101)}),
    ("BLACKLISTED", "DENY", {"tap": cpu("1001")}),
    ("LIST_MANUAL", "MANUAL", {"tap": cpu("1002")}),
    ("HEALTH_ABNORMAL", "DENY", {"tap": cpu("1003")}),
    ("NO_HEALTH_INFO", "MANUAL", {"tap": cpu("1004")}),
    ("READER_FAULT", "MANUAL", {"tap": cpu("1666")}),
    ("OK", "PASS", {"tap": qr()}),
    ("CODE_INVALID", "DENY", {"tap": qr("acct-2", error=1)}),
    ("CODE_FORGED", "DENY", {"tap": qr("acct-3", error=2)}),
    ("CODE_UNKNOWN_KEY", "DENY", {"tap": qr("acct-4", error=3)}),
    ("CODE_REVOKED", "DENY", {"tap": qr("acct-5", error=4)}),
    ("CODE_EXPIRED", "DENY", {"tap": qr("acct-6", error=5)}),
    ("CODE_NOT_YET_VALID", "DENY", {"tap": qr("acct-7", error=6)}),
    ("CODE_STALE", "DENY", {"tap": qr("acct-8", error=7)}),
    ("CODE_REPLAYED", "DENY", {"tap": qr("acct-9", error=8)}),
    ("NO_TIME", "MANUAL", {"tap": qr("acct-10", error=9)}),
    ("BLACKLISTED", "DENY", {"tap": qr("acct-lost")}),
    ("CLOSED", "DENY", {"mode": "closed"}),
    ("CLOSED", "DENY", {"tap": cpu("1200")}),
    ("EMERGENCY", "PASS", {"mode": "emergency"}),
    ("EMERGENCY", "PASS", {"tap": cpu("1001", clash=True)}),
    ("OK", "PASS", {"mode": "manual"}),
    ("OK", "PASS", {"tap": cpu("1003")}),
    ("BLACKLISTED", "DENY", {"tap": cpu("1001")}),
    ("OK", "PASS", {"mode": "normal"}),
]


def test_every_reason_end_to_end(reader, tmp_path):
    steps = [s for _, _, s in STEPS_ALL_REASONS]
    sc = {"cfg": dict(BASE_CFG, health_rule=True), "lists": LISTS, "steps": steps,
          "dump": True}
    out = run_scenario(reader, tmp_path, sc)
    assert "selfcheck=1" in "\n".join(out)  # the OTA self-test hook answers
    got = verdicts(out)
    want = [(r, v) for r, v, s in STEPS_ALL_REASONS if "tap" in s]
    assert [(g["reason"], g["verdict"]) for g in got] == want
    # every verdict and every mode change is a journal record, in order, with the same facts
    recs = records(out)
    taps = [r for r in recs if r[3] != 4]
    assert [r[0] for r in recs] == list(range(1, len(recs) + 1))
    assert [g["seq"] for g in got] == [r[0] for r in taps]
    names = {"PASS": 1, "DENY": 2, "MANUAL": 3}
    assert [names[g["verdict"]] for g in got] == [r[3] for r in taps]
    modes = [r[5] for r in recs if r[3] == 4]  # EVENT records carry the new mode
    assert modes == [3, 2, 1, 0]
    assert all(r[6] == 31 and r[10] == 12 for r in recs)  # list version, station
    # the display showed each reason's two-language message
    shown = {zh for _, zh, _ in reader.hw.display_log}
    assert {"健康码异常", "未查询到健康码信息", "张数过多", "卡已过期", "黑名单卡",
            "重复刷卡", "紧急放行", "暂停服务"} <= shown


LIST_STATES = [
    # (scenario lists, tap, reason, verdict)
    (None, cpu(), "NO_LIST", "MANUAL"),
    (dict(LISTS, stale=True, categories=dict(CATS, **{"2": ["unpaid", "deny", "manual",
                                                            False]})),
     cpu("1002"), "LIST_STALE", "MANUAL"),
    (dict(LISTS, stale=True), cpu(), "OK", "PASS"),
]


def test_list_states_end_to_end(reader, tmp_path):
    for i, (lists, tap, reason, verdict) in enumerate(LIST_STATES):
        sc = {"cfg": BASE_CFG, "steps": [{"tap": tap}], "tail_ms": 500}
        if lists:
            sc["lists"] = lists
        got = verdicts(run_scenario(reader, tmp_path / str(i), sc))
        assert [(g["reason"], g["verdict"]) for g in got] == [(reason, verdict)]


def test_a_list_installed_into_the_store_takes_effect(reader, tmp_path):
    steps = [{"tap": cpu("1001")},
             {"relist": [[1, "1001", 1]], "seq": 32, "after": 500},
             {"tap": cpu("1001"), "after": 3000}]
    sc = {"cfg": BASE_CFG, "store": dict(LISTS, entries=[]), "steps": steps, "dump": True}
    out = run_scenario(reader, tmp_path, sc)
    assert [(g["verdict"], g["reason"]) for g in verdicts(out)] == [("PASS", "OK"),
                                                                     ("DENY", "BLACKLISTED")]
    assert [r[6] for r in records(out)] == [31, 32]  # the list version in each record


def test_no_trusted_time_means_manual_check_for_codes(reader, tmp_path):
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass"), "no_time": True,
          "steps": [{"tap": qr()}, {"tap": cpu()}]}
    got = verdicts(run_scenario(reader, tmp_path, sc))
    assert [(g["verdict"], g["reason"]) for g in got] == [("MANUAL", "NO_TIME"), ("PASS", "OK")]


def test_maintenance_console_changes_mode_and_is_journalled(reader, tmp_path):
    console = [(1500, "mode emergency"), (3500, "status"), (4500, "mode closed"),
               (6500, "mode warp"), (7500, "mode normal")]
    steps = [{"tap": cpu("1000"), "after": 1000}, {"tap": cpu("2000"), "after": 2000},
             {"tap": cpu("3000"), "after": 2000}, {"tap": cpu("4000"), "after": 3500}]
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass"), "steps": steps, "dump": True}
    out = run_scenario(reader, tmp_path, sc, console=console)
    got = [(g["reason"], g["mode"]) for g in verdicts(out)]
    assert got == [("OK", "normal"), ("EMERGENCY", "emergency"), ("CLOSED", "closed"),
                   ("OK", "normal")]
    events = [e for _, e in reader.hw.events]
    assert any(e.startswith("ok mode=emergency seq=") for e in events), events
    assert any(e.startswith("error unknown lane mode") for e in events), events
    assert [r[5] for r in records(out) if r[3] == 4] == [2, 3, 0]
    # emergency release holds the lock open until the mode changes
    log = [(t, v) for t, n, v in reader.hw.pin_log if n == "GATE_LOCK"]
    assert (1, ) in {(v,) for _, v in log}


def test_journal_full_refuses_passes_but_keeps_deciding(reader, tmp_path):
    # 2 record sectors = 254 records; nobody acknowledges them
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass", passback_s=0), "journal_sectors": 2,
          "steps": [],
          "repeat": {"tap": cpu("1000000"), "n": 256, "gap_ms": 300, "ack_every": 10 ** 6,
                     "mem_every": 1000},
          "tail_ms": 500}
    out = run_scenario(reader, tmp_path, sc)
    got = verdicts(out)
    assert len(got) == 256
    assert all(g["verdict"] == "PASS" for g in got[:254])
    assert [(g["seq"], g["verdict"], g["reason"]) for g in got[254:]] == [
        (0, "DENY", "JOURNAL_FULL"), (0, "DENY", "JOURNAL_FULL")]
    assert any(line.startswith("W ") and " journal " in line for line in out)


def test_journal_full_in_emergency_still_opens(reader, tmp_path):
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass", lane_mode="emergency"),
          "journal_sectors": 2, "steps": [],
          "repeat": {"tap": cpu("1000000"), "n": 256, "gap_ms": 200, "ack_every": 10 ** 6,
                     "mem_every": 1000}, "tail_ms": 500}
    got = verdicts(run_scenario(reader, tmp_path, sc))
    assert [(g["verdict"], g["reason"]) for g in got[-2:]] == [("PASS", "EMERGENCY")] * 2
    assert [g["seq"] for g in got[-2:]] == [0, 0]


def test_queue_is_bounded_and_drops_are_counted(reader, tmp_path):
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass"),
          "steps": [{"burst": 6, "tap": cpu("5550")}, {"tap": cpu("7777"), "after": 2000}]}
    out = run_scenario(reader, tmp_path, sc)
    assert [x for x in out if x.startswith("QUEUED")] == ["QUEUED True"] * 4 + [
        "QUEUED False"] * 2
    got = verdicts(out)
    assert [g["verdict"] for g in got] == ["PASS"] * 5  # four queued, then the next rider
    assert "taps=5 dropped=2" in "\n".join(out)


def test_a_hung_source_does_not_stop_the_other(reader, tmp_path):
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass", passback_s=0), "hung_source": True,
          "steps": [{"tap": cpu("1000"), "after": 20000}, {"tap": qr(), "after": 1000}],
          "tail_ms": 12000}
    out = run_scenario(reader, tmp_path, sc)
    assert [g["verdict"] for g in verdicts(out)] == ["PASS", "PASS"]
    assert "DONE taps=2" in "\n".join(out)


@pytest.mark.parametrize("extra", [{}, {"lane_mode": "closed"}])
def test_power_cut_around_a_pass_never_loses_a_record_that_opened_the_gate(
        make_reader, tmp_path, extra):
    """Full-process reboots: cut at every flash op of one tap (blank journal: header program,
    record program, pre-erase check), then boot and read the journal back."""
    sc = {"cfg": dict(BASE_CFG, no_list_action="pass", **extra), "steps": [{"tap": cpu()}],
          "tail_ms": 500}
    d = write_workload(tmp_path / "w", sc)
    outcomes = set()
    for k, torn in ((1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0)):
        r = make_reader()
        Rider(r.hw)
        code, out = r.run(entry="dumpj", extra_path=d)  # first boot formats the filesystem
        assert code == 0, out
        code, out = r.run(entry="tapper", extra_path=d, cut_at=k, torn=torn)
        opened = any(n == "GATE_LOCK" and v == 1 for _, n, v in r.hw.pin_log)
        r.power_cut()
        code2, after = r.run(entry="dumpj", extra_path=d)
        recs = records(after)
        if opened:
            assert [x[0] for x in recs] == [1], (k, out[-10:], after)
            assert recs[0][3] == 1  # the PASS record
        if code == 3:  # the cut happened before the tap finished: no gate, no DONE
            assert not any(line.startswith("DONE") for line in out)
        assert all(x[3] in (1, 2, 4) for x in recs)
        outcomes.add((code, opened, len(recs)))
    # both sides were exercised: cut before the record was durable (no gate, no record) and
    # after (gate opened, record kept)
    assert {(3, False, 0), (0, not extra, 1)} <= outcomes  # closed: a deny, never opened


def test_the_scenarios_cover_every_reason_code(mp):
    out = mp("""
import reasons
i = 0
while reasons.name(i) != "R%d" % i:
    z, e = reasons.text(i)
    print("N", reasons.name(i), len(z) > 1 and len(e) > 3)
    i += 1
print("END", reasons.name(i))
""")
    rows = [x.split() for x in out.splitlines() if x.startswith("N ")]
    assert all(r[2] == "True" for r in rows)  # every reason has both messages
    names = {r[1] for r in rows}
    assert "END R%d" % len(rows) in out
    driven = {r for r, _, s in STEPS_ALL_REASONS if "tap" in s} | {x[2] for x in LIST_STATES}
    # JOURNAL_FULL: test_journal_full_*; MODE_CHANGE: the EVENT records checked above; the
    # fare path's reasons (LOW_BALANCE .. TORN_LOG_WAIT): test_ticketing_*, and
    # test_journal_migrate_e2e for TORN_LOG_WAIT
    fare = set(rows[i][1] for i in range(28, 41))
    assert fare == {"LOW_BALANCE", "SAM_FAULT", "TORN_LOG_WAIT"} | fare and len(fare) == 13
    assert names - driven - fare == {"JOURNAL_FULL", "MODE_CHANGE"}

"""Gate and feedback on the emulated board: the lock opens for a pass and closes once the rider
is through (or on timeout), LEDs and buzzer patterns per verdict, and feedback that never holds
up the next tap. Pin levels are read from the simulator's pin log (virtual µs)."""

from test_reader_e2e import BASE_CFG, VERDICT, cpu, qr, run_scenario

CFG = dict(BASE_CFG, no_list_action="pass", passback_s=0)


def edges(hw, name, level=1):
    return [t for t, n, v in hw.pin_log if n == name and v == level]


def verdict_times(out):
    return [int(VERDICT.match(x)[1]) for x in out if VERDICT.match(x)]


def test_lock_closes_when_the_rider_is_through(reader, tmp_path):
    out = run_scenario(reader, tmp_path, {"cfg": CFG, "steps": [{"tap": cpu()}]})
    opened, closed = edges(reader.hw, "GATE_LOCK", 1), edges(reader.hw, "GATE_LOCK", 0)
    assert len(opened) == 1 and len(closed) == 1
    # the simulated rider steps in 200 ms after the lock opens and is clear at 700 ms
    assert 700_000 <= closed[0] - opened[0] < 800_000
    assert "passed=1 timeouts=0" in "\n".join(out)


def test_lock_closes_after_timeout_when_nobody_comes(reader, tmp_path):
    out = run_scenario(reader, tmp_path, {"cfg": CFG, "steps": [{"tap": cpu()}],
                                          "tail_ms": 5000}, walk=False)
    opened, closed = edges(reader.hw, "GATE_LOCK", 1), edges(reader.hw, "GATE_LOCK", 0)
    assert 3_000_000 <= closed[0] - opened[0] < 3_100_000  # gate_open_ms = 3000
    assert "passed=0 timeouts=1" in "\n".join(out)


def test_two_riders_admitted_keep_the_lock_open_until_both_passed(reader, tmp_path):
    steps = [{"tap": cpu("1000")}, {"tap": cpu("2000"), "after": 100}]
    out = run_scenario(reader, tmp_path, {"cfg": CFG, "steps": steps})
    opened, closed = edges(reader.hw, "GATE_LOCK", 1), edges(reader.hw, "GATE_LOCK", 0)
    assert len(opened) == 1 and len(closed) == 1
    assert 1_700_000 <= closed[0] - opened[0] < 1_800_000  # the second walks a second later
    assert "passed=2 timeouts=0" in "\n".join(out)


def test_beep_patterns_and_leds_per_verdict(reader, tmp_path):
    steps = [{"tap": cpu("1000")}, {"tap": cpu("1101", error=4), "after": 3000},
             {"tap": qr("acct-1", error=9), "after": 3000}]
    out = run_scenario(reader, tmp_path, {"cfg": CFG, "steps": steps})
    t = verdict_times(out)
    beeps = edges(reader.hw, "BUZZER", 1)
    per = [sum(1 for b in beeps if t[i] * 1000 <= b < t[i] * 1000 + 2_000_000)
           for i in range(3)]
    assert per == [1, 3, 2]  # pass, deny, manual check
    levels = {}
    for when, name, level in reader.hw.pin_log:
        for i, ti in enumerate(t):
            if name in ("LED_GREEN", "LED_RED") and ti * 1000 <= when < ti * 1000 + 100_000:
                levels[(i, name)] = level
    assert levels[(0, "LED_GREEN")] == 1 and (0, "LED_RED") not in levels
    assert levels[(1, "LED_RED")] == 1 and (1, "LED_GREEN") not in levels
    assert levels[(2, "LED_GREEN")] == 1 and levels[(2, "LED_RED")] == 1
    assert 'beeps=6' in "\n".join(out)


def test_feedback_never_holds_up_the_next_tap(reader, tmp_path):
    # a deny (three beeps: about 480 ms) and, 100 ms later, the next rider's pass
    steps = [{"tap": cpu("1101", error=4)}, {"tap": cpu("2000"), "after": 100}]
    out = run_scenario(reader, tmp_path, {"cfg": CFG, "steps": steps})
    t = verdict_times(out)
    assert t[1] - t[0] < 150
    # the deny pattern was cut short by the pass, whose single beep followed at once
    assert "beeps=2" in "\n".join(out)
    shown = [(w, zh) for w, zh, _ in reader.hw.display_log]
    assert [zh for w, zh in shown if w >= t[0] * 1000][:2] == ["读卡失败，请重刷", "请通行"]

"""A crashed source task (a bug, a MemoryError in a signature check) is logged and started
again, so the reader never goes silent because one task died."""


def test_crashed_source_is_restarted(mp):
    # mp runs on the host's clock: the test waits for the third run (a hang only ends it at
    # 60 s) instead of deciding at a fixed 1.7 s, which the two pauses (0.5 s, 1 s) and any
    # time a loaded host kept the process off a CPU had to fit in
    out = mp("""
import asyncio, time, app
runs = []
async def flaky(tag):
    runs.append(time.ticks_ms())
    if len(runs) < 3:
        raise MemoryError("no room")
    await asyncio.sleep_ms(10)
    raise asyncio.CancelledError
async def main():
    t = asyncio.create_task(app.supervised("flaky", flaky, "x"))
    for _ in range(600):
        await asyncio.sleep_ms(100)
        if len(runs) >= 3:
            break
    await asyncio.sleep_ms(100)
    print("runs", len(runs), *[time.ticks_diff(b, a) for a, b in zip(runs, runs[1:])])
asyncio.run(main())
""")
    assert "flaky crashed (1)" in out
    assert "flaky crashed (2)" in out
    line = [x for x in out.splitlines() if x.startswith("runs")][0].split()
    assert line[1] == "3", out  # started again after each crash, then it ran on
    # after a pause that grows with the crashes (lower bounds: a loaded host only adds)
    assert int(line[2]) >= 490 and int(line[3]) >= 990, out

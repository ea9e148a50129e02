"""A crashed source task (a bug, a MemoryError in a signature check) is logged and started
again, so the reader never goes silent because one task died."""


def test_crashed_source_is_restarted(mp):
    out = mp("""
import asyncio, app
runs = []
async def flaky(tag):
    runs.append(tag)
    if len(runs) < 3:
        raise MemoryError("no room")
    await asyncio.sleep_ms(10)
    raise asyncio.CancelledError
async def main():
    t = asyncio.create_task(app.supervised("flaky", flaky, "x"))
    await asyncio.sleep_ms(1700)
    print("runs", len(runs))
asyncio.run(main())
""")
    assert "flaky crashed (1)" in out
    assert "flaky crashed (2)" in out
    assert "runs 3" in out  # started again after each crash, then it ran on

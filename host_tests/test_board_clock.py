"""The accelerated reader's clock runs on the reader's own CPU time (boards/host/sim/cpuclock.c):
time the host keeps it off a CPU is not firmware time, so a loaded host cannot change what a
test sees; timed waits (sleeps, a poll on a real socket) count exactly what they asked for."""

import os
import signal
import time

from test_board_host import workload


def test_time_the_reader_is_descheduled_is_not_firmware_time(reader, tmp_path):
    # The reader spins (pure CPU, no link requests, whose time is excluded anyway) until a file
    # appears; meanwhile the host stops it for a second, as a loaded scheduler would.
    d = workload(tmp_path, "spin", """
        import os, time, board
        def run():
            c = board.clock
            w0, t0 = time.time(), c.ticks_us()
            print("spinning")
            while True:
                try:
                    os.stat("/extra/go")
                    break
                except OSError:
                    pass
            virtual = c.ticks_diff(c.ticks_us(), t0)
            print("elapsed", virtual, int((time.time() - w0) * 1_000_000))
    """)
    reader.boot(entry="spin", extra_path=d)
    reader.wait_for(lambda s: s == "spinning")
    os.kill(reader.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)
        (d / "go").write_text("")
    finally:
        os.kill(reader.proc.pid, signal.SIGCONT)
    assert reader.wait() == 0, reader.tail()
    virtual, wall = map(int, reader.wait_for(lambda s: s.startswith("elapsed")).split()[1:])
    # on the host clock virtual ~= wall; on CPU time the stopped second is missing (and any
    # time the loaded host kept the reader waiting for a CPU)
    assert wall - virtual >= 950_000, (virtual, wall)


def test_timed_waits_count_what_they_asked_for(reader, tmp_path):
    # time.sleep_ms and select.poll loop on the clock until their timeout has passed, and an
    # asyncio wait on a real socket polls it with the timer's timeout: all end, after exactly
    # the virtual time asked for (plus the CPU time of the loop), however late the host wakes
    # the process.
    d = workload(tmp_path, "waits", """
        import asyncio, select, socket, time, board
        def run():
            c = board.clock
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
            t0 = c.ticks_us()
            time.sleep_ms(50)
            t1 = c.ticks_us()
            p = select.poll()
            p.register(s, select.POLLIN)
            print("poll", p.poll(100))
            t2 = c.ticks_us()
            p.unregister(s)
            async def recv():
                await asyncio.wait_for_ms(asyncio.StreamReader(s).read(1), 200)
            try:
                asyncio.run(recv())
            except asyncio.TimeoutError:
                print("timeout")
            t3 = c.ticks_us()
            print("took", c.ticks_diff(t1, t0), c.ticks_diff(t2, t1), c.ticks_diff(t3, t2))
    """)
    code, out = reader.run(entry="waits", extra_path=d, timeout=30)
    assert code == 0 and "poll []" in out and "timeout" in out, out
    sleep, poll, wait = map(int, [x for x in out if x.startswith("took")][0].split()[1:])
    assert 49_000 <= sleep < 60_000  # ms ticks: the loop may end up to 1 ms short
    assert 100_000 <= poll < 110_000
    assert 199_000 <= wait < 210_000

"""The emulated reader board end to end on MicroPython: it boots compiled .mpy files from the
build, mounts LittleFS from the vfs partition, serves the esp32.Partition API and the otadata
rollback rules, keeps its flash across reboots, and reaches "ready"."""

import textwrap

import pytest

from sim.runner import DEVICE, HEAPSIZE


def workload(tmp_path, name, body):
    d = tmp_path / "extra"
    d.mkdir(exist_ok=True)
    (d / (name + ".py")).write_text(textwrap.dedent(body))
    return d


def test_boots_compiled_firmware_to_ready(reader):
    reader.boot()
    line = reader.wait_for(lambda s: " app ready " in s)
    assert "board=host" in line


def test_runs_mpy_not_source(reader, tmp_path):
    d = workload(tmp_path, "which", """
        import sys
        import app, board, nor
        def run():
            for m in (app, board, nor):
                print("module", m.__name__, m.__file__)
            print("path", sys.path)
    """)
    code, out = reader.run(entry="which", extra_path=d)
    files = [line.split()[2] for line in out if line.startswith("module")]
    assert code == 0 and len(files) == 3
    if DEVICE:  # frozen into the interpreter: no file system path holds the modules
        assert "path ['/extra', '.frozen']" in out, out
    else:
        assert all(f.endswith(".mpy") for f in files), out
    print("\n".join(out))  # shows in the test log: what ran is the compiled build


def test_partition_api(reader, tmp_path):
    d = workload(tmp_path, "parts", """
        import board
        P = board.Partition
        def run():
            for p in P.find(P.TYPE_DATA) + P.find(P.TYPE_APP):
                print("part", p.info()[4], p.info()[2], p.info()[3])
            j = P.find(P.TYPE_DATA, label="journal")[0]
            print("blocks", j.ioctl(4, 0), j.ioctl(5, 0))
            j.ioctl(6, 1)
            j.writeblocks(1, b"abc", 0)         # extended form: program only
            b = bytearray(3)
            j.readblocks(1, b)
            print("read", bytes(b))
            try:
                j.writeblocks(1, b"xyz", 0)     # NOR: no program over data
            except OSError as e:
                print("reprogram refused", e.errno)
            j.writeblocks(1, bytearray(4096))   # simple form: erase + program
            j.readblocks(1, b, 0)
            print("rewritten", bytes(b))
            try:
                j.readblocks(j.ioctl(4, 0), b)
            except OSError as e:
                print("beyond end", e.errno)
            run_ = P(P.RUNNING)
            print("running", run_.info()[4], "next", run_.get_next_update().info()[4])
    """)
    code, out = reader.run(entry="parts", extra_path=d)
    text = "\n".join(out)
    assert code == 0, text
    assert "part journal 12713984 2293760" in text
    assert "part vfs 15007744 1769472" in text
    assert "blocks 560 4096" in text
    assert "read b'abc'" in text
    assert "reprogram refused 5" in text
    assert "rewritten b'\\x00\\x00\\x00'" in text
    assert "beyond end 22" in text
    assert "running ota_0 next ota_1" in text


def test_filesystem_survives_reboot_and_power_cut(reader, tmp_path):
    d = workload(tmp_path, "fs", """
        import os, board
        def run():
            try:
                print("found", open("/note.txt").read())
            except OSError:
                print("none")
            with open("/note.txt", "w") as f:
                f.write("boot%d" % board.settings["n"])
            print("wrote")
    """)
    code, out = reader.run(entry="fs", extra_path=d, settings={"n": 1})
    assert code == 0 and "none" in out and "wrote" in out
    reader.power_cut()
    code, out = reader.run(entry="fs", extra_path=d, settings={"n": 2})
    assert "found boot1" in out


def test_otadata_rollback_rules(reader, tmp_path):
    """ESP-IDF rules: set_boot -> NEW; the first boot makes it PENDING_VERIFY; a reset before
    mark_app_valid_cancel_rollback() aborts it and the previous slot boots again."""
    d = workload(tmp_path, "ota", """
        import board
        P = board.Partition
        def run():
            step = board.settings["step"]
            print("running", board.app_slot, "pending", board.app_pending)
            if step == "switch":
                P(P.RUNNING).get_next_update().set_boot()
            elif step == "confirm":
                P.mark_app_valid_cancel_rollback()
    """)

    def boot(step):
        code, out = reader.run(entry="ota", extra_path=d, settings={"step": step})
        assert code == 0, out
        return [line for line in out if line.startswith("running")][0]

    assert boot("switch") == "running ota_0 pending False"
    assert boot("crash") == "running ota_1 pending True"  # first attempt of the new app
    assert boot("look") == "running ota_0 pending False"  # never confirmed: rolled back
    boot("switch")
    assert boot("confirm") == "running ota_1 pending True"
    assert boot("look") == "running ota_1 pending False"  # confirmed: stays


def test_power_cut_exits_with_code_and_reboots_from_same_image(reader, tmp_path):
    d = workload(tmp_path, "cut", """
        import board
        def run():
            j = board.Partition.find(board.Partition.TYPE_DATA, label="journal")[0]
            print("ops", board.flash.ops)
            j.ioctl(6, 0)
            j.writeblocks(0, b"A", 0)
            j.writeblocks(0, b"B", 1)
            print("done")
    """)
    code, out = reader.run(entry="cut", extra_path=d, cut_at=2)
    assert code == 3 and "done" not in out  # EXIT_POWER_CUT at the second operation
    d2 = workload(tmp_path, "look", """
        import board
        def run():
            j = board.Partition.find(board.Partition.TYPE_DATA, label="journal")[0]
            b = bytearray(2)
            j.readblocks(0, b)
            print("after", bytes(b))
    """)
    code, out = reader.run(entry="look", extra_path=d2)
    assert "after b'\\xff\\xff'" in out  # the erase landed, the cut program did not


def test_watchdog_expiry_is_a_reset(reader, tmp_path):
    d = workload(tmp_path, "hang", """
        import board, asyncio
        def run():
            w = board.watchdog(2000)
            async def hang():
                await asyncio.sleep_ms(5000)   # nobody feeds the dog
            asyncio.run(hang())
            print("survived")
    """)
    code, out = reader.run(entry="hang", extra_path=d)
    assert code == 4 and "survived" not in out


def test_accelerated_clock_skips_idle_time(reader, tmp_path):
    d = workload(tmp_path, "sleepy", """
        import board, asyncio, time
        def run():
            c = board.clock
            t0, r0 = c.ticks_ms(), time.time()
            async def idle():
                await asyncio.sleep(3600)
            asyncio.run(idle())
            real = int((time.time() - r0) * 1000)
            print("virtual", c.ticks_diff(c.ticks_ms(), t0), "real", real)
            e = c.time()
            print("rtc", e)
    """)
    code, out = reader.run(entry="sleepy", extra_path=d)
    line = [x for x in out if x.startswith("virtual")][0].split()
    # an hour of virtual time in far less than an hour: the bound on the real time proves the
    # skip (a waited hour would take 3,600,000 ms) and is not a speed test (the old 2,000 ms
    # was one, which a loaded host could fail; only a hang reaches this one)
    assert int(line[1]) >= 3600_000 and int(line[3]) < 60_000, out
    rtc = int([x for x in out if x.startswith("rtc")][0].split()[1])
    assert rtc >= reader.epoch + 3599  # the RTC runs on the same virtual time (to the second)


@pytest.mark.parametrize("body,field", [
    ('{"station_id": "x"}', "station_id"),
    ('{"lane_mode": "party"}', "lane_mode"),
    ('{"bogus": 1}', "bogus"),
    ('{"qr_baud": 1234}', "qr_baud"),
    ("{not json", "(file)"),
])
def test_bad_config_is_reported_and_reader_stays_out_of_service(reader, tmp_path, body, field):
    d = workload(tmp_path, "putcfg", """
        import board
        def run():
            with open("/config.json", "w") as f:
                f.write(board.settings["cfg"])
    """)
    reader.run(entry="putcfg", extra_path=d, settings={"cfg": body})
    reader.boot()
    err = reader.wait_for(lambda s: " app config " in s)
    assert repr(field) in err
    ready = reader.wait_for(lambda s: " app ready " in s)
    assert "mode=closed" in ready


def test_rtc_and_timeline_continue_across_reboots(reader, tmp_path):
    d = workload(tmp_path, "rtc", """
        import board, asyncio
        def run():
            c = board.clock
            print("start", c.time(), c.ticks_us())
            async def idle():
                await asyncio.sleep(7200)
            asyncio.run(idle())
            board.passage_sensor().value()  # the world sees the reader's time when it talks
            print("end", c.time(), c.ticks_us())
    """)
    _, out1 = reader.run(entry="rtc", extra_path=d)
    reader.power_cut()
    _, out2 = reader.run(entry="rtc", extra_path=d)
    end1 = [x.split() for x in out1 if x.startswith("end")][0]
    start2 = [x.split() for x in out2 if x.startswith("start")][0]
    assert int(start2[1]) >= int(end1[1]) >= reader.epoch - 7200  # RTC kept running
    assert int(start2[2]) > int(end1[2])  # the simulators' time never runs backwards


def test_board_emulation_stays_within_its_heap_allowance(reader, tmp_path):
    """The host board's modules and buffers sit in the interpreter heap beside the app; they
    must fit the allowance the runner adds, so the app still gets its whole 192 KiB."""
    from sim.runner import BOARD_HEAP

    d = workload(tmp_path, "heap", """
        import gc
        def run():
            gc.collect()
            print("board", gc.mem_alloc(), "free", gc.mem_free())
    """)
    code, out = reader.run(entry="heap", extra_path=d)
    line = [x.split() for x in out if x.startswith("board")][0]
    used, free = int(line[1]), int(line[3])
    print("host board uses %d bytes of heap (allowance %d)" % (used, BOARD_HEAP))
    assert used <= BOARD_HEAP
    assert free >= int(HEAPSIZE[:-1]) * 1024 - 8 * 1024  # left for the app (less asyncio)

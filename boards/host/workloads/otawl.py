"""OTA workload on the emulated reader (entry "otawl", command in board.settings["wl"]), used by
the OTA and sync tests and by `flash.py bench ota`.

provision: trusted keys from /extra/keys into /keys.  install: the bundle in /extra/pub.
state: print the selector record.  cutloop: power cut at flash operations during staging,
switch and first boot, each followed by a reboot check and a recovery, in one process (the
vfs partition is restored from a snapshot between cut points).
"""

import gc
import os

import appstage
import board
import bootsel
import files
import fwstage
import ota
import signedmanifest as sm
import vfs


def run():
    cmd = board.settings["wl"]
    if cmd == "provision":
        files.mkdir("/keys")
        for name in os.listdir("/extra/keys"):
            with open("/extra/keys/" + name, "rb") as f:
                files.replace("/keys/" + name, f.read())
        print("PROVISIONED")
    elif cmd == "install":
        try:
            m = appstage.install_from_dir("/extra/pub", board.NAME, board.clock)
            print("INSTALLED", m.version)
        except (sm.ManifestError, ota.OtaError) as e:
            print("REJECT", e.code, e)
    elif cmd == "state":
        print("STATE", bootsel.read(), "FLOOR", ota.time_floor())
    elif cmd == "sync":
        sync_once(board.settings)
    elif cmd == "fwcut":
        fwcut(board.settings.get("step", 1), board.settings.get("torn", 0))
    elif cmd == "cutloop":
        cutloop(board.settings.get("step", 1), board.settings.get("torn", 0))
    board.flash.flush()


def sync_once(st):
    """One or more sync cycles against settings["url"], with a tap-like task measuring how
    late the event loop lets it run (the latency a tap would see)."""
    import asyncio

    import config
    import journal
    import sync

    sync.TIMEOUT_MS = st.get("timeout_ms", sync.TIMEOUT_MS)
    j = journal.Journal(board.Partition.find(board.Partition.TYPE_DATA, label="journal")[0], 4)
    for i in range(st.get("records", 0)):
        j.append(1, 0, 0, 0, 1000 + i, 0, 0, 0, 5, 7)
    store = None
    if st.get("lists"):
        from blocklist.store import open_store  # as the app: two slots, or one image

        with open("/keys/list.pub") as f:
            _, key = sm.load_key(f.read())
        store = open_store(board.Partition, key[:2])
    cfg = dict(config.DEFAULTS)
    cfg["sync_url"] = st["url"]
    cfg["reader_id"] = "R7"
    ready = []
    quiet = []

    async def lane_quiet():  # the app's hook: here it only counts and lets a tap through
        quiet.append(1)
        await asyncio.sleep_ms(2)

    s = sync.Sync(board, cfg, j, store, on_app_ready=lambda: ready.append(1), quiet=lane_quiet)
    clock = board.clock
    import slog

    slog.set_clock(clock)
    worst = [0, 0, 0]

    async def taps():
        while True:
            t0 = clock.ticks_us()
            await asyncio.sleep_ms(1)
            late = clock.ticks_diff(clock.ticks_us(), t0) - 1000
            if late > worst[0]:
                worst[0] = late
                worst[2] = clock.ticks_ms()
            worst[1] += 1

    async def main():
        t = asyncio.create_task(taps())
        for _ in range(st.get("cycles", 1)):
            try:
                await s.cycle()
                print("CYCLE ok")
            except Exception as e:
                print("CYCLE fail", repr(e))
        t.cancel()

    asyncio.run(main())
    print("SYNC app=%d index=%d list=%s backlog=%d ready=%d ops=%d" % (
        ota.installed()[0], s.index_version, store.seq if store else None, j.backlog(),
        len(ready), board.flash.ops))
    print("STALL max_us=%d samples=%d at_ms=%d quiet=%d" % (worst[0], worst[1], worst[2],
                                                            len(quiet)))
    if ready:
        board.reset()


def _fw():
    with open("/extra/fw.sm", "rb") as f:
        m = ota.verify(f.read(), "firmware", board.NAME, board.clock)
    return m


def _fw_stage(m):
    st = fwstage.FirmwareStager(m, board.Partition)
    buf = bytearray(1500)  # odd size: blocks are assembled across chunks
    with open("/extra/fw.bin", "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            st.write(buf, n)
    for _ in st.finish():
        pass


def _fw_check(m):
    """After a boot: the image that runs is the old one, or exactly the signed new one."""
    import partition

    slot, pending = partition.bootloader()
    if slot == "ota_0":
        return "old", pending
    part = board.Partition(slot)
    c = sm.FileCheck(m.files[0])
    buf = bytearray(4096)
    left, block = m.files[0][1], 0
    while left:
        part.readblocks(block, buf)
        c.update(buf, min(left, 4096))
        left -= min(left, 4096)
        block += 1
    c.finish()
    return "new", pending


def fwcut(step, torn):
    """Power cut at each flash operation of a firmware update and of its confirmation."""
    import partition

    flash = board.flash
    lo = 0xF000
    hi = 0x420000
    flash.copy_to("/extra/fwsnap.bin", lo, hi - lo)
    m = _fw()
    n, cuts, fails, seen = 1, 0, 0, {}
    while True:
        flash.copy_from("/extra/fwsnap.bin", lo, hi - lo)
        partition.bootloader()  # the power-on that goes with the restored flash
        flash.cut_at = n
        flash.torn = torn
        done = False
        try:
            _fw_stage(m)
            _, pending = _fw_check(m)  # the reboot into the new image
            if pending:
                board.Partition.mark_app_valid_cancel_rollback()  # its self-test passed
            done = True
        except board.PowerCut:
            pass
        flash.cut_at = 0
        flash.dead = False
        try:
            which, pending = _fw_check(m)
            after_cut = which + ("p" if pending else "")
            if which == "old":
                _fw_stage(m)
                which, pending = _fw_check(m)
            if which != "new":
                raise ValueError("new image not booted after recovery")
            if pending:
                board.Partition.mark_app_valid_cancel_rollback()
            which, pending = _fw_check(m)
            if which != "new" or pending:
                raise ValueError("not confirmed: %s %s" % (which, pending))
            seen[after_cut] = seen.get(after_cut, 0) + 1
        except Exception as e:
            fails += 1
            print("FAIL cut=%d torn=%d %r" % (n, torn, e))
        if done:
            break
        cuts += 1
        n += step
    # an image that never confirms is rolled back by the next boot
    flash.copy_from("/extra/fwsnap.bin", lo, hi - lo)
    partition.bootloader()
    _fw_stage(m)
    first = _fw_check(m)
    second = _fw_check(m)
    print("ROLLBACK", first, second)
    print("CUTS", cuts, "OPS", n, "FAILS", fails, "STATES", sorted(seen.items()))


def _remount():
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(_vfs()), "/")


def _vfs():
    return board.Partition.find(board.Partition.TYPE_DATA, label="vfs")[0]


def _scenario():
    """Download + stage + switch, then the first boot of the new app and its confirmation."""
    rec = bootsel.read()
    if rec is None or rec.get("version") != _target().version:
        appstage.install_from_dir("/extra/pub", board.NAME, board.clock)
    slot, pending = bootsel.select(True)
    if pending:
        bootsel.confirm()


_T = []


def _target():
    if not _T:
        with open("/extra/pub/app.sm", "rb") as f:
            _T.append(ota.verify(f.read(), "app", board.NAME, board.clock))
    return _T[0]


def _check_bootable():
    """What a reboot finds: the selected slot holds exactly its signed files (or factory)."""
    slot, pending = bootsel.select(True)
    if slot is None:
        return "factory"
    d = bootsel.slot_dir(slot)
    with open(d + "/" + ota.RELEASE, "rb") as f:
        m = ota.verify(f.read(), "app", board.NAME, None)
    rec = bootsel.read()
    if rec["version"] != m.version:
        raise ValueError("record says %d, slot holds %d" % (rec["version"], m.version))
    buf = bytearray(4096)  # streamed, as the reader does (a module can be 70 KB)
    for e in m.files:
        c = sm.FileCheck(e)
        with open(d + "/" + e[0], "rb") as f:
            n = f.readinto(buf)
            while n:
                c.update(buf, n)
                n = f.readinto(buf)
        c.finish()
    return "v%d%s" % (m.version, "p" if pending else "")


def cutloop(step, torn):
    flash = board.flash
    info = _vfs().info()
    addr, size = info[2], info[3]
    flash.copy_to("/extra/snap.bin", addr, size)
    target = _target().version
    n, cuts, fails, seen = 1, 0, 0, {}
    while True:
        flash.copy_from("/extra/snap.bin", addr, size)
        _remount()
        flash.cut_at = n
        flash.torn = torn
        done = False
        try:
            _scenario()
            done = True
        except board.PowerCut:
            # files left open by the cut attempt must never write to the revived chip (on a
            # real reader RAM is gone): finalise them while the flash is still dead
            gc.collect()
        flash.cut_at = 0
        flash.dead = False
        phase = "reboot"
        try:
            _remount()
            state = _check_bootable()
            phase = "recovery"
            _scenario()  # recovery: resume or redo, then first boot
            rec = bootsel.read()
            if rec["version"] != target or rec["state"] != "valid":
                raise ValueError("after recovery: %r" % (rec,))
            seen[state] = seen.get(state, 0) + 1
        except Exception as e:  # every failure is reported with its cut point
            fails += 1
            print("FAIL cut=%d torn=%d %s %r" % (n, torn, phase, e))
        if done:
            break
        cuts += 1
        n += step
    print("CUTS", cuts, "OPS", n, "FAILS", fails, "STATES", sorted(seen.items()))

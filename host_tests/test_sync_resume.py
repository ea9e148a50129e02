"""Resumed downloads of full-firmware images and block lists (emulated reader on MicroPython,
real TCP against the station server): a transfer cut mid-body (connection dropped, server
stalled) or a reader that lost power mid-list resumes on the next cycle with a Range request
from a sector boundary; the prefix already in flash is re-read and re-hashed, never trusted,
so a prefix corrupted while the reader was off is refused by digest and the next attempt
starts from byte 0. The old list (old firmware) stays active until the new one is complete.

Helpers here are shared with test_sync_resume_cuts.py."""

import hashlib
import json
import random
import shutil
import time
from pathlib import Path

import pytest
from station_kit import station  # noqa: F401  (fixture)
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    wl,
    workload_dir,
)
from test_sync_e2e import publish_list, sync

from flashtool.release.sign import sign_files, sign_index
from sim import tables

ROOT = Path(__file__).resolve().parents[1]
SECTOR = 4096
CHECKPOINT = 64 * 1024  # firmware/sync.py CHECKPOINT
OLD = "3100000000000001"  # card numbers listed in the old list only / in the new list only
NEW = "3100000000000002"
FILLER = 60_000  # entries of the big list: a few hundred KB, several checkpoints

# The reader-side checks (module "rswl" in /extra): list state, decisions, progress records,
# and the power-cut campaign of a resumed list install (test_sync_resume_cuts.py).
RSWL = '''
"""Resume test workload: what the reader's lists decide, the progress records, cut loops."""
import asyncio
import gc

import board
import config
import decision
import files
import ota
import signedmanifest as sm
import slog
import sync
import vfs
from blocklist.store import ListStore
from credential import KIND_CPU, Credential


def run():
    st = board.settings
    slog.set_clock(board.clock)
    if st["wl"] == "lists":
        store = _store()
        print("LISTS seq=%d active=%d" % (store.seq, store.active()))
        print("DECIDE " + " ".join(decide(store, st["idents"])))
        print("BOOT %s pending=%d" % (board.app_slot, board.app_pending))
        print("DL list " + _rec(ota.DL_LIST))
        print("DL firmware " + _rec(ota.DL_FIRMWARE))
    elif st["wl"] == "rescut":
        rescut(st)
    board.flash.flush()


def _rec(path):
    raw = files.read(path)
    return raw.decode() if raw else "-"


def _store():
    with open("/keys/list.pub") as f:
        _, key = sm.load_key(f.read())
    return ListStore(board.Partition, key[:2])


def decide(store, idents):
    """ident:verdict/reason/category for a CPU card with each number, as the gate decides."""
    d = decision.Decider(config.validate({}))
    d.use_lists(store if store.active() else None)
    c = Credential()
    out = []
    for ident in idents:
        c.clear()
        c.kind = KIND_CPU
        c.set_number(ident.encode())
        d.decide(c, board.clock.time(), 0)
        out.append("%s:%d/%d/%d" % (ident, d.verdict, d.reason, d.category))
    return out


def _update(store, st):
    s = sync.Sync(board, _cfg(st), None, store, on_app_ready=lambda: None)
    asyncio.new_event_loop()
    try:
        asyncio.run(s.update())
        return "ok"
    except Exception as e:
        return "fail:" + repr(e).replace(" ", "_")


def _cfg(st):
    cfg = dict(config.DEFAULTS)
    cfg["sync_url"] = st["url"]
    cfg["reader_id"] = "R7"
    return cfg


def _part(label):
    return board.Partition.find(board.Partition.TYPE_DATA, label=label)[0].info()


def _remount():
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(board.Partition.find(board.Partition.TYPE_DATA, label="vfs")[0]),
              "/")


def rescut(st):
    """Power cut at flash operation first, first + step, ... of one update() that resumes an
    interrupted list download (the state on entry), each followed by a reboot (LittleFS
    remounted, list store reloaded: which list, what it decides) and a recovery update()."""
    flash = board.flash
    v = _part("vfs")
    a = _part("bl_a")
    b = _part("bl_b")
    lo, hi = a[2], b[2] + b[3]
    flash.copy_to("/extra/snap_vfs.bin", v[2], v[3])
    flash.copy_to("/extra/snap_bl.bin", lo, hi - lo)
    idents = st["idents"]
    n = st.get("first", 1)
    while True:
        flash.copy_from("/extra/snap_vfs.bin", v[2], v[3])
        flash.copy_from("/extra/snap_bl.bin", lo, hi - lo)
        _remount()
        print("CUTAT", n)
        flash.cut_at = n
        flash.torn = st.get("torn", 0)
        done = False
        try:
            res = _update(_store(), st)
            done = True
        except board.PowerCut:
            res = "cut"
            gc.collect()  # files the cut left open are finalised while the chip is dead
        ops = flash.ops
        flash.cut_at = 0
        flash.dead = False
        _remount()  # the reboot
        store = _store()
        boot = "boot=%d bootdec=%s" % (store.seq, ",".join(decide(store, idents)))
        rec = _update(store, st)  # recovery: resume again (or nothing left to do)
        print("CUT n=%d res=%s ops=%d %s recover=%s seq=%d dec=%s dl=%d" % (
            n, res, ops, boot, rec, store.seq, ",".join(decide(store, idents)),
            files.read(ota.DL_LIST) is not None))
        if done:
            break
        n += st.get("step", 1)
    print("END", n)
'''


def resume_dir(tmp, pub, kd):
    """The reader's /extra: the OTA workload (otawl), rswl, the published tree, the keys."""
    d = workload_dir(tmp, pub, kd)
    (d / "rswl.py").write_text(RSWL)
    return d


def lists_state(reader, extra, idents=(OLD, NEW)):
    """(seq, {ident: (verdict, reason, category)}, {"list"/"firmware": progress record or
    None, "boot": firmware partition the bootloader chose}) after a boot of the reader (a
    firmware image staged but not yet booted gets its one pending boot here)."""
    code, lines = reader.run(entry="rswl", extra_path=extra,
                             settings={"wl": "lists", "idents": list(idents)}, timeout=60)
    assert code == 0, lines
    seq = int([ln for ln in lines if ln.startswith("LISTS ")][0].split()[1][4:])
    dec = {}
    for item in [ln for ln in lines if ln.startswith("DECIDE")][0].split()[1:]:
        ident, v = item.split(":")
        dec[ident] = tuple(int(x) for x in v.split("/"))
    recs = {"boot": [ln for ln in lines if ln.startswith("BOOT ")][0].split()[1]}
    for ln in lines:
        if ln.startswith("DL "):
            _, what, v = ln.split(" ", 2)
            recs[what] = None if v == "-" else json.loads(v)
    return seq, dec, recs


LISTED = (2, 9, 1)  # DENY, BLACKLISTED, category 1 (lost/stolen): firmware/reasons.py
CLEAR = (1, 0, 0)  # PASS, OK, not listed


def expect(seq):
    """What the gate decides for OLD and NEW with list 3 or list 5 active."""
    return {OLD: LISTED, NEW: CLEAR} if seq == 3 else {OLD: CLEAR, NEW: LISTED}


class Env:
    """What a resume test works with: the reader, its /extra, the station and its log."""

    def __init__(self, reader, served, tmp, kd):
        self.reader = reader
        self.srv, self.pub, self.url = served
        self.tmp = tmp
        self.keys = kd
        self.extra = resume_dir(tmp, self.pub, kd)
        self.log = self.srv.log


@pytest.fixture
def env(ota_reader, station, tmp_path, keys):  # noqa: F811
    return Env(ota_reader, station, tmp_path, keys)


def big_list(n=FILLER):
    """NEW in category 1 (lost/stolen: deny) and n more entries."""
    return [(1, NEW.encode(), 1)] + [(1 + i % 3, b"F%015d" % i, 1 + i % 5) for i in range(n)]


def list_sha(pub):
    m = json.loads((pub / "list.sm").read_bytes().split(b"\n", 1)[1])
    return m["files"][0][2], m["files"][0][1]


def old_list(reader, extra, pub, kd, tmp, url):
    """Provision the reader and give it list 3 (OLD listed) over sync."""
    assert wl(reader, extra, "provision")[0] == 0
    publish_list(pub, kd, 3, tmp, [(1, OLD.encode(), 1)])
    sign_index(pub, 1, kd / "app.pem")
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert code == 0 and info["list"] == "3", lines


def publish_big_list(pub, kd, tmp, n=FILLER):
    publish_list(pub, kd, 5, tmp, big_list(n))
    sign_index(pub, 2, kd / "app.pem")
    return list_sha(pub)


def assert_old_active(reader, extra):
    seq, dec, recs = lists_state(reader, extra)
    assert seq == 3 and dec == expect(3), (seq, dec)
    return recs


def assert_new_active(reader, extra):
    seq, dec, recs = lists_state(reader, extra)
    assert seq == 5 and dec == expect(5), (seq, dec)
    assert recs["list"] is None, recs  # a success removes the progress record
    return recs


def _firmware(pub, kd, tmp, size=300 * 1024 + 123):
    img = random.Random("firmware-%d" % size).randbytes(size)  # the same image every run
    path = tmp / "fw.bin"
    path.write_bytes(img)
    sign_files(pub, "firmware", "firmware", 7, {"firmware.bin": path}, kd / "app.pem")
    sign_index(pub, 1, kd / "app.pem")
    return hashlib.sha256(img).hexdigest(), size


def _boots_new_firmware(reader):
    """The next boot runs the staged image (pending) and its self-test marks it valid."""
    reader.reboot(reset_cause="soft")
    reader.wait_for(lambda ln: " ota valid firmware partition=ota_1" in ln)
    reader.stop()


@pytest.mark.parametrize("how", ["drop", "stall"])
def test_firmware_download_resumes(env, how):
    """The connection drops (or the server stops sending) half-way through a firmware image:
    the next cycle fetches the rest with a Range request from a block boundary."""
    reader, extra, url = env.reader, env.extra, env.url
    assert wl(reader, extra, "provision")[0] == 0
    sha, size = _firmware(env.pub, env.keys, env.tmp)
    env.log.cut_next(sha, size // 2, how)
    # the firmware's own chunk timeout (5 s): a shorter one could also end a slow but live
    # transfer on a loaded machine; the stalled server waits for the reader to hang up
    code, lines, info, _ = sync(reader, extra, url)
    assert info["ready"] == "0" and any(ln.startswith("CYCLE fail") for ln in lines), lines
    recs = lists_state(reader, extra)[2]
    rec = recs["firmware"]
    assert recs["boot"] == "ota_0" and rec["sha"] == sha and rec["part"] == "ota_1", recs
    assert size // 2 - SECTOR < rec["n"] <= size // 2 and rec["n"] % SECTOR == 0, rec
    code, lines, info, _ = sync(reader, extra, url)
    assert code == 5 and any("firmware version=7 staged in ota_1" in ln for ln in lines), lines
    assert any(" sync resume firmware %s at %d of %d" % (sha[:12], rec["n"], size) in ln
               for ln in lines), lines
    gets = env.log.blob(sha)
    assert [g[:2] for g in gets] == [(None, 200), (rec["n"], 206)], gets
    assert gets[1][2] == size - rec["n"] < size // 2 + SECTOR, gets
    _boots_new_firmware(reader)  # first: any boot now is the new image's one pending boot
    assert lists_state(reader, extra)[2]["firmware"] is None  # a success removes the record


def test_firmware_download_resumes_after_power_cut(env):
    """The reader loses power while the image streams into ota_1: after the reboot it still
    runs the old image, and the next cycle fetches only what follows the last checkpoint."""
    reader, extra, url = env.reader, env.extra, env.url
    assert wl(reader, extra, "provision")[0] == 0
    sha, size = _firmware(env.pub, env.keys, env.tmp)
    snap = env.tmp / "snap.img"
    shutil.copy(reader.image, snap)
    code, lines, info, _ = sync(reader, extra, url)  # uncut: how many operations
    assert code == 5, lines
    shutil.copy(snap, reader.image)
    code, lines, info, _ = sync(reader, extra, url, cut_at=int(info["ops"]) * 4 // 5)
    assert code == 3, lines  # power cut
    recs = lists_state(reader, extra)[2]
    assert recs["boot"] == "ota_0", recs  # the old image runs meanwhile
    rec = recs["firmware"]
    assert rec["sha"] == sha and rec["n"] >= CHECKPOINT and rec["n"] % CHECKPOINT == 0, rec
    env.log.log.clear()
    code, lines, info, _ = sync(reader, extra, url)
    assert code == 5 and any("firmware version=7 staged in ota_1" in ln for ln in lines), lines
    assert env.log.blob(sha) == [(rec["n"], 206, size - rec["n"])], env.log.blob(sha)
    _boots_new_firmware(reader)
    print("firmware image of %d bytes, power cut: resumed from %d, %d bytes fetched after the "
          "reboot" % (size, rec["n"], size - rec["n"]))


def test_list_download_resumes_after_drop(env):
    reader, extra, url = env.reader, env.extra, env.url
    old_list(reader, extra, env.pub, env.keys, env.tmp, url)
    sha, size = publish_big_list(env.pub, env.keys, env.tmp)
    assert size > 3 * CHECKPOINT
    env.log.cut_next(sha, size // 2)
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert info["list"] == "3" and any(ln.startswith("CYCLE fail") for ln in lines), lines
    rec = assert_old_active(reader, extra)["list"]  # the old list decides meanwhile
    assert rec["sha"] == sha and rec["slot"] == 1 and rec["base"] == 0, rec
    assert size // 2 - SECTOR < rec["n"] <= size // 2 and rec["n"] % SECTOR == 0, rec
    t0 = time.monotonic()
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    took = time.monotonic() - t0
    assert code == 0 and info["list"] == "5", lines
    assert any(" sync list seq=5 bytes=%d fetched=%d" % (size, size - rec["n"]) in ln
               for ln in lines), lines
    gets = env.log.blob(sha)
    assert [g[:2] for g in gets] == [(None, 200), (rec["n"], 206)], gets
    assert gets[1][2] == size - rec["n"], gets
    assert_new_active(reader, extra)
    print("list of %d bytes, connection dropped after %d: resumed from %d, %d bytes fetched "
          "again (%d received twice), sync run %.2f s" % (size, size // 2, rec["n"],
                                                          size - rec["n"], size // 2 - rec["n"],
                                                          took))


def test_list_download_resumes_after_power_cut(env):
    """The reader loses power mid-list: after the reboot the old list decides, the progress
    record names the last checkpoint, and the next cycle fetches only the rest."""
    reader, extra, url = env.reader, env.extra, env.url
    old_list(reader, extra, env.pub, env.keys, env.tmp, url)
    sha, size = publish_big_list(env.pub, env.keys, env.tmp)
    snap = env.tmp / "snap.img"
    shutil.copy(reader.image, snap)
    code, lines, info, _ = sync(reader, extra, url, lists=1)  # uncut: how many operations
    assert code == 0 and info["list"] == "5", lines
    shutil.copy(snap, reader.image)
    code, lines, info, _ = sync(reader, extra, url, lists=1, cut_at=int(info["ops"]) * 4 // 5)
    assert code == 3, lines  # power cut
    rec = assert_old_active(reader, extra)["list"]
    assert rec["sha"] == sha and rec["n"] >= CHECKPOINT and rec["n"] % CHECKPOINT == 0, rec
    env.log.log.clear()
    code, lines, info, _ = sync(reader, extra, url, lists=1)
    assert code == 0 and info["list"] == "5", lines
    gets = env.log.blob(sha)
    assert gets == [(rec["n"], 206, size - rec["n"])], gets
    assert_new_active(reader, extra)
    print("list of %d bytes, power cut: resumed from %d, %d bytes fetched after the reboot"
          % (size, rec["n"], size - rec["n"]))


def _flip(image, label, offset):
    """Flip one byte of partition `label` in the reader's NOR image (reader off)."""
    row = [r for r in tables.partitions(ROOT / "boards" / "host" / "partitions.csv")
           if r[0] == label][0]
    with open(image, "r+b") as f:
        f.seek(row[3] + offset)
        b = f.read(1)
        f.seek(row[3] + offset)
        f.write(bytes([b[0] ^ 0x01]))


@pytest.mark.parametrize("what", ["list", "firmware"])
def test_corrupted_prefix_is_refused_and_restarts(env, what):
    """A byte of the prefix in flash flips while the reader is off: the resumed download is
    refused by digest (the old list / old firmware stays), the progress record goes, and the
    next attempt fetches the whole file from byte 0 and succeeds."""
    reader, extra, url = env.reader, env.extra, env.url
    if what == "list":
        old_list(reader, extra, env.pub, env.keys, env.tmp, url)
        sha, size = publish_big_list(env.pub, env.keys, env.tmp, n=20_000)
    else:
        assert wl(reader, extra, "provision")[0] == 0
        sha, size = _firmware(env.pub, env.keys, env.tmp, size=100 * 1024 + 7)
    env.log.cut_next(sha, size // 2)
    kw = {"lists": 1} if what == "list" else {}
    code, lines, info, _ = sync(reader, extra, url, **kw)
    assert any(ln.startswith("CYCLE fail") for ln in lines), lines
    rec = lists_state(reader, extra)[2][what]
    assert rec["n"] > 2 * SECTOR, rec
    _flip(reader.image, "bl_b" if what == "list" else rec["part"], SECTOR + 100)
    code, lines, info, _ = sync(reader, extra, url, **kw)
    assert any(ln.startswith("CYCLE fail") and "is not the signed file" in ln
               for ln in lines), lines
    assert info["ready"] == "0", lines
    if what == "list":
        recs = assert_old_active(reader, extra)
    else:
        recs = lists_state(reader, extra)[2]
        assert recs["boot"] == "ota_0", recs  # refused: the old image stays
    assert recs[what] is None, recs  # refused: dropped, the next attempt starts from 0
    code, lines, info, _ = sync(reader, extra, url, **kw)
    gets = env.log.blob(sha)
    assert [g[:2] for g in gets] == [(None, 200), (rec["n"], 206), (None, 200)], gets
    if what == "list":
        assert code == 0 and info["list"] == "5", lines
        assert_new_active(reader, extra)
    else:
        assert code == 5, lines
        _boots_new_firmware(reader)

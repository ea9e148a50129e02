"""The emulated reader's REPL on a pseudo-terminal, for crew tools (mpremote, flash.py deploy).

The unix port answers the raw REPL (Ctrl-A) like a board on USB serial, but it cannot soft-reset:
tools must use mpremote's `resume`. The reader boots as usual (ROM, bootloader, LittleFS mounted
at /), then drops to the interactive REPL instead of running the app. A bridge thread joins the
reader's pty to a second pty whose slave is the "serial port" a tool opens, since a tool and the
interpreter cannot share one slave.
"""

import os
import pty
import select
import subprocess
import threading
import tty

from sim.runner import firmware_dir, micropython_bin, module_path

_ENTRY = "def run():\n    print('REPL ready')\n"


class ReplPort:
    """start(reader) -> device path of the port; stop() ends the reader and the bridge."""

    def __init__(self, reader):
        self.reader = reader
        self.device = None
        self._fds = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        r = self.reader
        if r.proc and r.proc.poll() is None:
            raise RuntimeError("reader already running")
        extra = r.workdir / "repl"
        extra.mkdir(exist_ok=True)
        (extra / "replentry.py").write_text(_ENTRY)
        r.hw.boot = {
            "image": str(r.image), "frozen": firmware_dir(), "accelerated": r.accelerated,
            "epoch": r.epoch, "nfc": r.nfc, "cut_at": 0, "torn": 0, "entry": "replentry",
            "extra_path": str(extra), "reset_cause": "power_on",
        }
        m1, s1 = pty.openpty()  # the interpreter's console
        m2, s2 = pty.openpty()  # the port a tool opens
        for fd in (s1, s2):
            tty.setraw(fd)
        frozen = r.hw.boot["frozen"]
        env = dict(os.environ, READER_SOCK=r.server.path, MICROPYPATH=module_path(frozen))
        r.proc = subprocess.Popen(
            [micropython_bin(), "-X", "heapsize=" + r.heapsize, "-i", "-c", "import hostboot"],
            env=env, stdin=s1, stdout=s1, stderr=s1, close_fds=True)
        r._reader_thread = None
        r.boots += 1
        os.close(s1)
        self._fds = [m1, m2, s2]
        self.device = os.ttyname(s2)
        self._thread = threading.Thread(target=self._bridge, args=(m1, m2), daemon=True)
        self._thread.start()
        return self.device

    def _bridge(self, a, b):
        peer = {a: b, b: a}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for fd in ready:
                    data = os.read(fd, 4096)
                    if data:
                        os.write(peer[fd], data)
            except OSError:
                return

    def stop(self):
        self.reader.stop()
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

"""A throwaway PostgreSQL cluster on loopback (Debian's `postgresql` package) for the tests and
`flash.py bench serve`: initdb into a fresh directory, start on a free port, stop and delete.
Run as root (CI), the server runs as the `postgres` user, as Debian's own clusters do."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from flashtool.server.ports import PortHold


def binaries():
    """Directory of initdb/pg_ctl, or None when PostgreSQL is not installed."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


class LocalPostgres:
    def __init__(self):
        self.bin = binaries()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install "
                                    "postgresql)")
        self.base = tempfile.mkdtemp(prefix="station-pg-")
        self.data = os.path.join(self.base, "data")
        self._hold = PortHold()  # held until stop(): initdb takes seconds under load
        self.port = self._hold.port
        self.root = os.geteuid() == 0

    def _run(self, *args):
        cmd = [os.path.join(self.bin, args[0]), *args[1:]]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.base)

    def start(self):
        if self.root:
            shutil.chown(self.base, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "station", "--auth=trust", "-E", "UTF8")
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c synchronous_commit=on -c max_connections=50" % (self.port, self.base))
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l",
                  os.path.join(self.base, "log"), "-w", "-t", "600", "start")
        return self

    @property
    def dsn(self):
        return "postgresql://station@127.0.0.1:%d/postgres" % self.port

    def fresh_db(self, name):
        """A new empty database; returns its DSN."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS %s" % name)
            c.execute("CREATE DATABASE %s" % name)
        return "postgresql://station@127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        try:
            # immediate: a throwaway cluster needs no shutdown checkpoint (seconds under load)
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "600", "stop")
        except subprocess.CalledProcessError:
            pass
        self._hold.close()
        for _ in range(20):
            try:
                shutil.rmtree(self.base)
                return
            except OSError:
                time.sleep(0.1)

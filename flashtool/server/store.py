"""Durable, idempotent storage of journal records and reader state: SQLite (embedded default,
WAL with synchronous=FULL) or PostgreSQL (a DSN: central or multi-station), one schema.

A record is stored once under (reader, journal epoch, seq) with the SHA-256 of its 32 bytes.
The same key arriving again with the same bytes is a duplicate (a retry after a lost reply);
with other bytes it is a conflict: kept aside in `conflicts` with an alarm, never dropped and
never allowed to replace what was stored. Every request is applied in one transaction with
its replay check (the reader's highest key id, boot epoch and counter), and the reply is sent
only after that transaction commits (`Writer`: one thread, group commit).
"""

import hashlib
import json
import queue
import sqlite3
import threading
import time

from flashtool.server import records

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  reader TEXT NOT NULL, jepoch BIGINT NOT NULL, seq BIGINT NOT NULL,
  raw {blob} NOT NULL, sha {blob} NOT NULL, received BIGINT NOT NULL,
  PRIMARY KEY (reader, jepoch, seq));
CREATE TABLE IF NOT EXISTS conflicts (
  id {serial}, reader TEXT NOT NULL, jepoch BIGINT NOT NULL, seq BIGINT NOT NULL,
  raw {blob} NOT NULL, sha {blob} NOT NULL, received BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
  reader TEXT PRIMARY KEY, kid BIGINT NOT NULL, boot BIGINT NOT NULL, ctr BIGINT NOT NULL,
  last_seen BIGINT NOT NULL, status TEXT, held BIGINT NOT NULL, jepoch BIGINT,
  top_seq BIGINT);
CREATE TABLE IF NOT EXISTS alarms (
  id {serial}, reader TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  at BIGINT NOT NULL);
"""

ALARM_CONFLICT = "conflict"
ALARM_AUTH = "auth"
ALARM_REFUSED = "refused"


class Refused(Exception):
    """The request was authentic but is not applied (replayed counter, retired key)."""


class Store:
    """Shared SQL; `SQLite` and `Postgres` supply the connection and the dialect."""

    blob = "BLOB"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock = ""

    def q(self, sql):
        return sql

    def create(self, conn):
        cur = conn.cursor()
        for stmt in SCHEMA.format(blob=self.blob, serial=self.serial).split(";"):
            if stmt.strip():
                cur.execute(stmt)

    # -- inside a write transaction -------------------------------------------------------
    def admit(self, cur, claim, now):
        """The replay check: raises Refused unless (key id, boot, counter) is above what this
        reader last used; records the new high-water mark."""
        cur.execute(self.q("INSERT INTO readers (reader, kid, boot, ctr, last_seen, held) "
                           "VALUES (?, 0, 0, 0, 0, 0) ON CONFLICT (reader) DO NOTHING"),
                    (claim.reader,))
        cur.execute(self.q("SELECT kid, boot, ctr FROM readers WHERE reader = ?" + self.lock),
                    (claim.reader,))
        kid, boot, ctr = cur.fetchone()
        if claim.kid < kid:
            raise Refused("key retired")
        if claim.kid == kid and (claim.boot, claim.ctr) <= (boot, ctr):
            raise Refused("replayed request")
        cur.execute(self.q("UPDATE readers SET kid = ?, boot = ?, ctr = ?, last_seen = ? "
                           "WHERE reader = ?"),
                    (claim.kid, claim.boot, claim.ctr, now, claim.reader))

    def put_records(self, cur, reader, jepoch, recs, now):
        """Store checked raw records; returns (new, duplicates, conflicts)."""
        seqs = [records.seq(r) for r in recs]
        cur.execute(self.q("SELECT seq, sha FROM records WHERE reader = ? AND jepoch = ? "
                           "AND seq BETWEEN ? AND ?"), (reader, jepoch, min(seqs), max(seqs)))
        have = {s: bytes(h) for s, h in cur.fetchall()}
        new, dup, odd = [], 0, []
        for raw, s in zip(recs, seqs):
            sha = hashlib.sha256(raw).digest()
            old = have.get(s)
            if old is None:
                have[s] = sha
                new.append((reader, jepoch, s, bytes(raw), sha, now))
            elif old == sha:
                dup += 1
            else:
                odd.append((reader, jepoch, s, bytes(raw), sha, now))
        if new:
            cur.executemany(self.q("INSERT INTO records (reader, jepoch, seq, raw, sha, received)"
                                   " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"), new)
        for row in odd:
            cur.execute(self.q("INSERT INTO conflicts (reader, jepoch, seq, raw, sha, received)"
                               " VALUES (?, ?, ?, ?, ?, ?)"), row)
            self.alarm(cur, reader, ALARM_CONFLICT,
                       "epoch %d seq %d arrived with other content (kept aside)"
                       % (jepoch, row[2]), now)
        cur.execute(self.q("UPDATE readers SET held = held + ?, jepoch = ?, top_seq = CASE "
                           "WHEN jepoch = ? AND top_seq > ? THEN top_seq ELSE ? END "
                           "WHERE reader = ?"),
                    (len(new), jepoch, jepoch, max(seqs), max(seqs), reader))
        return len(new), dup, len(odd)

    def put_status(self, cur, reader, status, now):
        cur.execute(self.q("UPDATE readers SET status = ?, last_seen = ? WHERE reader = ?"),
                    (json.dumps(status, sort_keys=True), now, reader))

    def alarm(self, cur, reader, kind, detail, now):
        cur.execute(self.q("INSERT INTO alarms (reader, kind, detail, at) VALUES (?, ?, ?, ?)"),
                    (reader, kind, detail, now))

    # -- reads (fleet page, tests, audits) ------------------------------------------------
    def fleet(self, conn):
        cur = conn.cursor()
        cur.execute("SELECT reader, status, last_seen, held, kid, jepoch, top_seq FROM readers "
                    "ORDER BY reader")
        readers = {}
        for rid, status, seen, held, kid, jepoch, top in cur.fetchall():
            readers[rid] = {"status": json.loads(status) if status else {}, "last_seen": seen,
                            "held": held, "kid": kid, "jepoch": jepoch, "top_seq": top,
                            "alarms": {}}
        cur.execute("SELECT reader, kind, COUNT(*), MAX(at) FROM alarms GROUP BY reader, kind")
        for rid, kind, n, at in cur.fetchall():
            readers.setdefault(rid, {"status": {}, "last_seen": None, "held": 0, "kid": None,
                                     "jepoch": None, "top_seq": None, "alarms": {}})
            readers[rid]["alarms"][kind] = {"count": n, "last": at}
        return readers

    def records_of(self, conn, reader):
        """[(jepoch, seq, raw)] of one reader, in order."""
        cur = conn.cursor()
        cur.execute(self.q("SELECT jepoch, seq, raw FROM records WHERE reader = ? "
                           "ORDER BY jepoch, seq"), (reader,))
        return [(e, s, bytes(r)) for e, s, r in cur.fetchall()]

    def conflicts_of(self, conn, reader):
        cur = conn.cursor()
        cur.execute(self.q("SELECT jepoch, seq, raw FROM conflicts WHERE reader = ? "
                           "ORDER BY id"), (reader,))
        return [(e, s, bytes(r)) for e, s, r in cur.fetchall()]

    def alarms_of(self, conn, reader=None, limit=50):
        cur = conn.cursor()
        where = " WHERE reader = ?" if reader else ""
        cur.execute(self.q("SELECT reader, kind, detail, at FROM alarms%s ORDER BY id DESC "
                           "LIMIT %d" % (where, limit)), (reader,) if reader else ())
        return cur.fetchall()

    def counts(self, conn):
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM records")
        return cur.fetchone()[0]


class SQLite(Store):
    def __init__(self, path):
        self.path = str(path)
        self.name = "sqlite"

    def connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # the WAL is synced at every commit
        return conn

    def begin(self, conn):
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn):
        conn.execute("COMMIT")

    def rollback(self, conn):
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class Postgres(Store):
    blob = "BYTEA"
    serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    lock = " FOR UPDATE"

    def __init__(self, dsn):
        self.dsn = dsn
        self.name = "postgresql"

    def q(self, sql):
        return sql.replace("?", "%s")

    def connect(self):
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def begin(self, conn):
        conn.execute("BEGIN")

    def commit(self, conn):
        conn.execute("COMMIT")  # synchronous_commit on (the default): durable when it returns

    def rollback(self, conn):
        try:
            conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 (a broken connection is replaced by the writer)
            pass


def open_store(db):
    """'postgresql://...' or 'postgres://...' -> Postgres; anything else is a SQLite path."""
    if db.startswith(("postgresql://", "postgres://")) or db.startswith("host=") \
            or db.startswith("dbname="):
        return Postgres(db)
    return SQLite(db)


class Job:
    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn, done):
        self.fn, self.done, self.result, self.error = fn, done, None, None


class Writer:
    """The one thread that writes: takes queued jobs, applies as many as are waiting (up to
    GROUP) in one transaction, commits, and only then reports each job done. A failed commit
    fails every job of the group (their readers retry; nothing was acknowledged)."""

    GROUP = 64

    def __init__(self, store):
        self.store = store
        self.q = queue.Queue()
        self.conn = store.connect()
        store.create(self.conn)
        self.commits = 0
        self.thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self.thread.start()

    def submit(self, fn, done):
        """fn(store, cursor, now) runs inside a transaction; done(job) is called after the
        commit (job.result) or the failure (job.error), from the writer thread."""
        self.q.put(Job(fn, done))

    def close(self):
        self.q.put(None)
        self.thread.join(timeout=10)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def _run(self):
        while True:
            job = self.q.get()
            if job is None:
                return
            group = [job]
            while len(group) < self.GROUP:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.q.put(None)
                    break
                group.append(nxt)
            self._apply(group)

    def _apply(self, group):
        st = self.store
        now = int(time.time())
        try:
            st.begin(self.conn)
            cur = self.conn.cursor()
            for job in group:
                try:
                    job.result = job.fn(st, cur, now)
                except Refused as e:
                    job.error = e
            st.commit(self.conn)
            self.commits += 1
        except Exception as e:  # noqa: BLE001 (the database failed: nothing acknowledged)
            st.rollback(self.conn)
            for job in group:
                job.result, job.error = None, e
            self._reconnect()
        for job in group:
            job.done(job)

    def _reconnect(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        while True:
            try:
                self.conn = self.store.connect()
                return
            except Exception:  # noqa: BLE001 (database down: keep trying, requests fail)
                time.sleep(0.5)

"""SQLite shared by the web processes and the worker: how its writers take turns at its one
write lock, within a process and between processes (see `SqliteWriters`)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from typing import Any, cast

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError

from service.errors import SQLITE_LOCKED
from service.extensions import reads_only
from service.private_files import open_private

_WRITING = "linkdesk_writing"  # set in a connection's info while it holds its process's turn


class WriterGate:
    """A lock file beside the SQLite database through which the web's writers go ahead of the
    worker's.

    The worker's threads hand SQLite's write lock to one another with no gap between, while a
    web process polls for it with SQLite's sleeps of up to 100 ms: under load the web request
    could wait its whole busy timeout and answer 503. So a web writer holds the gate shared
    from before it asks for the lock until its transaction ends, and asks every millisecond;
    the worker's writer begins only once it could hold the gate alone, that is when no web
    writer waits or writes, or after `BACKGROUND_WAIT` seconds so it is never starved.
    """

    BACKGROUND_WAIT = 0.25
    POLL = 0.001

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._pid = 0

    @classmethod
    def beside(cls, database: str | None) -> WriterGate | None:
        """The gate of a database file; None for an in-memory database (one connection)."""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(f"{database}-writers")

    def _file(self) -> int:
        # Opened once per process, after any fork: a lock belongs to its open file, and a file
        # inherited across a fork would be shared with the parent.
        if self._pid != os.getpid():
            self._fd = open_private(self.path, os.O_RDWR)
            self._pid = os.getpid()
        return self._fd

    def enter(self) -> None:
        """A web writer waits or writes (only ever blocks for a worker's glance, below)."""
        fcntl.flock(self._file(), fcntl.LOCK_SH)

    def leave(self) -> None:
        fcntl.flock(self._file(), fcntl.LOCK_UN)

    def wait_clear(self) -> None:
        """A worker writer waits until no web writer waits or writes, at most BACKGROUND_WAIT."""
        deadline = time.monotonic() + self.BACKGROUND_WAIT
        fd = self._file()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(self.POLL)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return


class SqliteWriters:
    """SQLite shared by the web processes and the worker: connection settings, how
    transactions begin, and this process's writers taking turns at the one write lock.

    Connections use WAL, wait up to `timeout` seconds for a lock, and check foreign keys. The
    driver's own transaction handling is switched off (BEGIN is emitted here): left on, it
    commits at a SAVEPOINT release and breaks all-or-nothing batches.

    IMMEDIATE takes the write lock up front (waiting up to the busy timeout): a deferred
    transaction that reads and then writes fails at once if another process wrote between.
    Work that only reads (GET requests, `reading_only`) begins deferred: under WAL it reads a
    snapshot beside the writer instead of queueing for the one write lock.

    SQLite's own wait for the lock is a poll that sleeps up to 100 ms between tries, so with
    dozens of threads polling, one can lose every try for the whole busy timeout even though
    each writer holds the lock for milliseconds. So the threads of a process first queue for
    a lock of the process, held from BEGIN IMMEDIATE to the end of the transaction, and only
    the one holding it asks SQLite. Between processes, the `WriterGate` lets the web's writers
    (a person waits on them) go ahead of the `background` worker's.
    """

    def __init__(self, timeout: float, gate: WriterGate | None, *, background: bool) -> None:
        self.timeout = timeout
        self.gate = gate
        self.background = background
        self._turn = threading.Lock()

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "connect", self.connect)
        event.listen(engine, "begin", self.begin)
        event.listen(engine, "commit", self.end)
        event.listen(engine, "rollback", self.end)
        # A connection given back or dropped without ending its transaction (an error on
        # the way) gives its turn back too, so the process never stops writing.
        event.listen(engine.pool, "checkin", self._record_done)
        event.listen(engine.pool, "invalidate", self._record_done)

    def connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @property
    def _busy_ms(self) -> int:
        return round(self.timeout * 1000)

    def begin(self, connection: Connection) -> None:
        if reads_only():
            connection.exec_driver_sql("BEGIN")
            return
        if not self._turn.acquire(timeout=self.timeout):
            locked = sqlite3.OperationalError(SQLITE_LOCKED)
            raise OperationalError("BEGIN IMMEDIATE", None, locked)
        try:
            if self.gate is None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.background:
                self.gate.wait_clear()
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                raw = cast(sqlite3.Connection, connection.connection.driver_connection)
                self._begin_ahead(self.gate, raw)
        except BaseException:
            self._turn.release()
            raise
        connection.info[_WRITING] = True

    def _begin_ahead(self, gate: WriterGate, raw: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE for a web writer: through the gate, asking SQLite every
        millisecond instead of through its busy handler's sleeps."""
        gate.enter()
        try:
            deadline = time.monotonic() + self.timeout
            raw.execute("PRAGMA busy_timeout=0")
            try:
                while True:
                    try:
                        raw.execute("BEGIN IMMEDIATE")
                        return
                    except sqlite3.OperationalError as exc:
                        if SQLITE_LOCKED not in str(exc) or time.monotonic() >= deadline:
                            raise OperationalError("BEGIN IMMEDIATE", None, exc) from None
                    time.sleep(WriterGate.POLL)
            finally:
                raw.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        except BaseException:
            gate.leave()
            raise

    def end(self, connection: Connection) -> None:
        if connection.invalidated:  # its pool record gave the turn back (`_record_done`)
            return
        if connection.info.pop(_WRITING, False):
            self._give_turn_back()

    def _record_done(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None and record.info.pop(_WRITING, False):
            self._give_turn_back()

    def _give_turn_back(self) -> None:
        if self.gate is not None and not self.background:
            self.gate.leave()
        self._turn.release()

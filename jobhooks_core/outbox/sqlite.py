"""SQLite outbox: one WAL-mode file shared by every process on the machine.

Writes take the database lock up front (BEGIN IMMEDIATE) and wait up to ``busy_timeout`` for
it, so many processes emitting at once queue instead of failing with "database is locked".

Fork-safe: SQLite keeps per-file state (locks, the WAL index) for the whole process behind
mutexes that fork() does not reset, so a child forked while another thread was inside SQLite
can hang on its first statement, and a connection inherited from the parent must never be used
(or closed) in the child. Hosts such as Airflow fork all the time (executor workers, task
processes, DAG parsers). So every use of an outbox connection holds one process-wide lock, a
fork waits for it, and a forked child opens fresh connections (the inherited ones are kept,
untouched, until the child exits).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..exceptions import OutboxError
from ._base import BACKGROUND_THREAD_PREFIX, SCHEMA, Cursor, Outbox, closable_by

__all__ = ["SQLiteOutbox"]

_in_sqlite = threading.RLock()  # held by whichever thread is using an outbox connection
_outboxes: weakref.WeakSet[SQLiteOutbox] = weakref.WeakSet()
_inherited: list[sqlite3.Connection] = []  # a forked child's copies of its parent's connections


def _is_corrupt(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is no SQLite database, or a damaged one."""
    return str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT"))


def _explain(path: Path, exc: BaseException) -> str:
    """What is wrong with the outbox at ``path`` and, for a corrupt file, how to recover."""
    if not _is_corrupt(exc):
        return str(exc)
    old = shlex.quote(f"{path}.corrupt")
    new = shlex.quote(str(path.with_name("recovered.db")))
    return (
        f"it is not a jobhooks outbox / SQLite database ({exc}). Move it aside: "
        f"`mv {shlex.quote(str(path))} {old}` (and its -wal and -shm files, if any); jobhooks "
        "creates a new, empty outbox on next use. To deliver what the old file still holds: "
        f"`sqlite3 {old} .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 {new}`"
        f", then `JOBHOOKS_OUTBOX={new} jobhooks relay` (see Recovery in the README)"
    )


def _after_fork_in_child() -> None:
    global _in_sqlite
    _in_sqlite = threading.RLock()
    for outbox in list(_outboxes):
        outbox._forget_inherited()


os.register_at_fork(
    before=lambda: _in_sqlite.acquire(),
    after_in_parent=lambda: _in_sqlite.release(),
    after_in_child=_after_fork_in_child,
)


class SQLiteOutbox(Outbox):
    """The embedded default outbox (``$JOBHOOKS_HOME/outbox.db``)."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._schema_ready = False
        _outboxes.add(self)
        with _in_sqlite:
            self._connection()  # create the schema now: a bad path fails here, clearly

    def _forget_inherited(self) -> None:
        _inherited.extend(conn for _, conn in self._all)
        self._all = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (call it holding ``_in_sqlite``)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = None
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.005
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    conn = self._open()
                    break
                except sqlite3.OperationalError as exc:
                    # Switching a new file to WAL while other processes do the same can be
                    # refused as "locked" without SQLite's busy handler: try again, briefly.
                    if conn is not None:
                        with suppress(sqlite3.Error):
                            conn.close()
                        conn = None
                    locked = "locked" in str(exc) or "busy" in str(exc)
                    if not locked or time.monotonic() + pause > deadline:
                        raise
                    time.sleep(pause)
                    pause = min(pause * 2, 0.1)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()
            advice = (
                ""
                if _is_corrupt(exc)
                else ". Check that the directory is writable, or point JOBHOOKS_OUTBOX "
                "(or JOBHOOKS_HOME) elsewhere"
            )
            raise OutboxError(
                f"cannot open the SQLite outbox {str(self.path)!r}: "
                f"{_explain(self.path, exc)}{advice}"
            ) from exc
        self._local.conn = conn
        with self._lock:
            self._all.append((threading.current_thread(), conn))
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            if not threading.current_thread().name.startswith(BACKGROUND_THREAD_PREFIX):
                # A WAL checkpoint runs inside whichever COMMIT crosses the threshold: keep
                # that cost off the host's emit path; the dispatcher's threads checkpoint.
                conn.execute("PRAGMA wal_autocheckpoint=0")
            if not self._schema_ready:
                self._create_schema(conn)
        except BaseException:
            with suppress(sqlite3.Error):
                conn.close()
            raise
        return conn

    def housekeeping(self, retention_seconds: float = 0.0, now: float | None = None) -> int:
        """Purge expired delivered rows (see Outbox), then checkpoint the WAL without
        blocking writers (emitting connections never do)."""
        purged = super().housekeeping(retention_seconds, now)
        with _in_sqlite:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        return purged

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.format(
                serial="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL"
            ).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):  # a failed COMMIT has rolled back already
                conn.execute("ROLLBACK")
            raise
        self._schema_ready = True

    def _error(self, exc: sqlite3.Error) -> OutboxError:
        """``exc`` as an error naming this outbox (a full disk, a corrupt file, …)."""
        return OutboxError(f"SQLite outbox {str(self.path)!r}: {_explain(self.path, exc)}")

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with _in_sqlite:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield conn.cursor()
            except BaseException as exc:
                # After an I/O error SQLite may have rolled back already: keep the first error.
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self._error(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with _in_sqlite:
            try:
                yield self._connection().cursor()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def close(self) -> None:
        """Close the connections of this thread and of threads that have finished.

        A connection another live thread may be using is left open (closing it under a
        running statement can crash the interpreter); it closes with its thread or process.
        """
        me = threading.current_thread()
        with self._lock:
            closing = [c for t, c in self._all if closable_by(t, me)]
            self._all = [(t, c) for t, c in self._all if not closable_by(t, me)]
        with _in_sqlite:
            for conn in closing:
                with suppress(sqlite3.Error):
                    conn.close()
        self._local.__dict__.pop("conn", None)  # this thread's only: others keep theirs

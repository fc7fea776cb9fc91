"""PostgreSQL outbox: the shared store when workers run on several machines.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers never lease the same
row. Needs psycopg 3: ``pip install 'jobhooks[postgres]'``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..exceptions import OutboxError
from ._base import SCHEMA, Cursor, Outbox, closable_by

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # the optional extra jobhooks[postgres]
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresOutbox"]

# A forked child shares its parent's sockets: it must neither use nor close (which would end the
# parent's session) an inherited connection. It opens its own and keeps these untouched.
_outboxes: weakref.WeakSet[PostgresOutbox] = weakref.WeakSet()
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    for outbox in list(_outboxes):
        outbox._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)

# pg_advisory_xact_lock key serialising schema creation ("jobhooks" in ASCII): concurrent first
# users would otherwise race on CREATE ... IF NOT EXISTS and fail with a unique violation.
DDL_LOCK = 0x6A6F62686F6F6B73
_SECRET_PARAMS = frozenset({"user", "password", "sslpassword"})


def without_credentials(url: str) -> str:
    """``url`` with the user, password and secret query parameters removed, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in _SECRET_PARAMS
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _passwords(url: str) -> list[str]:
    """The secrets in ``url``, to scrub from error messages that might quote them."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = [unquote(userinfo.partition(":")[2])] if ":" in userinfo else []
    found += [v for k, v in parse_qsl(parts.query) if k in ("password", "sslpassword")]
    return [p for p in found if p]


class PostgresOutbox(Outbox):
    """The outbox in a PostgreSQL database (``postgresql://user:pass@host/db``).

    One connection per thread, in autocommit mode; each write is one transaction. A connection
    found closed or broken is replaced on next use (the call that hit the failure raises
    OutboxError). ``schema`` puts the tables in that schema (created when missing) instead of
    the search path's first; tests use it to isolate.
    """

    placeholder = "%s"
    # Task processes on many machines count into the same counters at once: each transaction
    # takes one of 16 rows per counter, so they rarely queue behind another's commit.
    counter_shards = 16
    lock_clause = "FOR UPDATE SKIP LOCKED"
    row_lock_clause = "FOR UPDATE"

    def __init__(
        self, url: str, *, schema: str | None = None, connect_timeout: float = 10.0
    ) -> None:
        self.url = without_credentials(url)
        if psycopg is None:
            raise OutboxError(
                f"the PostgreSQL outbox {self.url} needs psycopg 3: "
                "pip install 'jobhooks[postgres]'"
            )
        self._dsn = url
        self._secrets = _passwords(url)
        self.schema = schema
        try:
            given = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise self._error(f"invalid PostgreSQL outbox URL {self.url}", exc) from exc
        # A connect_timeout in the URL wins; libpq takes whole seconds.
        self._connect_args: dict[str, Any] = (
            {} if "connect_timeout" in given else {"connect_timeout": max(1, int(connect_timeout))}
        )
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, psycopg.Connection[Any]]] = []
        self._lock = threading.Lock()
        self._ready = False  # tables exist (checked once per object, on first use)
        self._ready_lock = threading.Lock()
        _outboxes.add(self)

    def _forget_inherited(self) -> None:
        _inherited.extend(conn for _, conn in self._all)
        self._all = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._ready_lock = threading.Lock()

    def _error(self, what: str, exc: BaseException) -> OutboxError:
        detail = str(exc).strip()
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return OutboxError(f"{what}: {detail}")

    # -- connections ------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:  # closed or broken (server restart, network): open a new one
            self._forget(conn)
        try:
            conn = psycopg.connect(self._dsn, autocommit=True, **self._connect_args)
        except psycopg.Error as exc:
            raise self._error(
                f"cannot connect to the PostgreSQL outbox {self.url} (check the URL, that the "
                "server is running and reachable, and the credentials)",
                exc,
            ) from exc
        try:
            self._create_tables(conn)
            if self.schema:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as exc:
            conn.close()
            raise self._error(
                f"cannot create the outbox tables in {self.url} (the user needs "
                "CREATE on the database or schema)",
                exc,
            ) from exc
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._all.append((threading.current_thread(), conn))
        return conn

    def _create_tables(self, conn: psycopg.Connection[Any]) -> None:
        with self._ready_lock:
            if self._ready:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
                if self.schema:
                    name = sql.Identifier(self.schema)
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
                    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
                ddl = SCHEMA.format(serial="BIGSERIAL PRIMARY KEY", real="DOUBLE PRECISION")
                for statement in ddl.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            self._ready = True

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._all = [(t, c) for t, c in self._all if c is not conn]
        with suppress(psycopg.Error):
            conn.close()

    # -- backend hooks ----------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise self._error(f"PostgreSQL outbox {self.url}", exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise self._error(f"PostgreSQL outbox {self.url}", exc) from exc

    def close(self) -> None:
        """Close the connections of this thread and of threads that have finished.

        A connection another live thread may be using is left open (closing it under a running
        statement can crash the interpreter); it closes with its thread or process.
        """
        me = threading.current_thread()
        with self._lock:
            closing = [c for t, c in self._all if closable_by(t, me)]
            self._all = [(t, c) for t, c in self._all if not closable_by(t, me)]
        for conn in closing:
            with suppress(psycopg.Error):
                conn.close()
        self._local.__dict__.pop("conn", None)  # this thread's only: others keep theirs

"""Backend-neutral outbox logic: the SQL is shared, each backend supplies connections, the
placeholder style and its row-locking clause."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ..events import Event
from ..formats import event_json

__all__ = ["Delivery", "Outbox", "OutboxTransaction", "Outcome", "Status"]


# Threads whose names start with this are jobhooks' own background threads (the dispatcher):
# backends may do housekeeping there (SQLite checkpoints) rather than on the host's threads.
BACKGROUND_THREAD_PREFIX = "jobhooks-"


def closable_by(owner: threading.Thread, me: threading.Thread) -> bool:
    """Whether ``me`` may close a connection ``owner`` opened: its own, or a finished
    thread's. Not the main thread's: at interpreter exit it reads as finished while its
    atexit handlers (jobhooks' own shutdown) still use the connection."""
    if owner is me:
        return True
    return not owner.is_alive() and owner is not threading.main_thread()


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class Delivery:
    """One (subscription, event) row of the outbox."""

    id: int
    subscription: str
    event_id: str
    event_json: str
    status: Status
    attempts: int
    next_attempt_at: float
    created_at: float
    batch_id: str | None = None
    last_error: str | None = None
    last_status: int | None = None
    delivered_at: float | None = None

    @functools.cached_property
    def event(self) -> dict[str, Any]:
        """The event's wire JSON object."""
        return json.loads(self.event_json)  # type: ignore[no-any-return]

    def to_event(self) -> Event:
        return Event.from_dict(self.event)


@dataclass(frozen=True)
class Outcome:
    """What one attempt did to a row: delivered, failed (retry at ``next_attempt_at``), dead,
    or released (not attempted: back to the queue untouched)."""

    delivery_id: int
    status: Status | None  # None: released without an attempt
    error: str | None = None
    http_status: int | None = None
    next_attempt_at: float | None = None
    batch_id: str | None = None  # a failed batch keeps its id (and composition) for retries


_BATCH_NAMESPACE = uuid.UUID("0b5bd2a4-3c4f-5b1e-9d2a-6a7e1c0f4b21")


def batch_id_for(rows: Sequence[Delivery]) -> str:
    """A batch's id: the one it already has (a retry), else derived from its events, so the
    same batch re-formed after a crash has the same ``webhook-id``."""
    if rows[0].batch_id:
        return rows[0].batch_id
    return str(uuid.uuid5(_BATCH_NAMESPACE, ",".join(r.event_id for r in rows)))


COLUMNS = (
    "id, subscription, event_id, event, status, attempts, next_attempt_at, created_at, "
    "batch_id, last_error, last_status, delivered_at"
)


def _row(values: Sequence[Any]) -> Delivery:
    (id_, sub, event_id, event, status, attempts, nxt, created, batch, err, code, done) = values
    return Delivery(
        int(id_),
        sub,
        event_id,
        event,
        Status(status),
        int(attempts),
        float(nxt),
        float(created),
        batch,
        err,
        code,
        None if done is None else float(done),
    )


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class OutboxTransaction:
    """One write transaction: the lifecycle's WorkState plus enqueue, committed together."""

    def __init__(self, outbox: Outbox, cur: Cursor, now: float) -> None:
        self._outbox, self._cur, self._now = outbox, cur, now
        self.enqueued = 0
        self.duplicates = 0

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._cur.execute(self._outbox.sql(sql), params)
        return self._cur

    # -- WorkState --------------------------------------------------------------------------
    def installed_at(self) -> Any:
        import datetime as dt

        self._x(
            "INSERT INTO jobhooks_meta (key, value) VALUES ('installed_at', ?) "
            "ON CONFLICT (key) DO NOTHING",
            (repr(self._now),),
        )
        (value,) = self._x("SELECT value FROM jobhooks_meta WHERE key = 'installed_at'").fetchone()
        return dt.datetime.fromtimestamp(float(value), dt.UTC)

    def claim(self, work: str, fact: str) -> bool:
        cur = self._x(
            "INSERT INTO jobhooks_facts (work, fact, at) VALUES (?, ?, ?) "
            "ON CONFLICT (work, fact) DO NOTHING",
            (work, fact, self._now),
        )
        return cur.rowcount == 1

    def release(self, work: str, fact: str) -> None:
        self._x("DELETE FROM jobhooks_facts WHERE work = ? AND fact = ?", (work, fact))

    def swap(self, work: str, key: str, value: str | None) -> str | None:
        # The row lock (PostgreSQL) makes a concurrent swap wait and then see this value.
        row = self._x(
            "SELECT value FROM jobhooks_values WHERE work = ? AND key = ? "
            f"{self._outbox.row_lock_clause}",
            (work, key),
        ).fetchone()
        if value is None:
            self._x("DELETE FROM jobhooks_values WHERE work = ? AND key = ?", (work, key))
        else:
            self._x(
                "INSERT INTO jobhooks_values (work, key, value, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (work, key) DO UPDATE SET value = excluded.value, at = excluded.at",
                (work, key, value, self._now),
            )
        return None if row is None else str(row[0])

    def values(self, work: str, prefix: str) -> dict[str, str]:
        rows = self._x(
            "SELECT key, value FROM jobhooks_values WHERE work = ? "
            "AND substr(key, 1, length(?)) = ?",
            (work, prefix, prefix),
        ).fetchall()
        return {str(k): str(v) for k, v in rows}

    # -- rows -------------------------------------------------------------------------------
    def enqueue(self, subscription: str, event: Event, *, dead_reason: str | None = None) -> bool:
        """Add a row; False when (subscription, event id) is already there (a duplicate)."""
        status = Status.DEAD if dead_reason else Status.PENDING
        cur = self._x(
            "INSERT INTO jobhooks_deliveries (subscription, event_id, event, status, attempts, "
            "next_attempt_at, created_at, last_error) VALUES (?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (subscription, event_id) DO NOTHING",
            (
                subscription,
                event.id,
                event_json(event),
                status.value,
                self._now,
                self._now,
                dead_reason,
            ),
        )
        if cur.rowcount == 1:
            self.enqueued += 1
            return True
        self.duplicates += 1
        return False


class Outbox:
    """Backend-neutral outbox. Subclasses provide ``_write``/``_read`` cursors and dialect."""

    placeholder = "?"
    lock_clause = ""  # appended to claim sub-selects (PostgreSQL: FOR UPDATE SKIP LOCKED)
    row_lock_clause = ""  # appended to a read-then-write select (PostgreSQL: FOR UPDATE)
    url: str = ""

    # -- backend hooks ----------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def close(self) -> None:
        """Close this process's connections."""

    def housekeeping(self) -> None:
        """Periodic upkeep, run by a dispatcher's own thread (SQLite: checkpoint the WAL)."""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _x(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self.sql(sql), params)
        return cur

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self, now: float | None = None) -> Iterator[OutboxTransaction]:
        with self._write() as cur:
            yield OutboxTransaction(self, cur, time.time() if now is None else now)

    def enqueue(self, items: Sequence[tuple[str, Event]], now: float | None = None) -> int:
        with self.transaction(now) as tx:
            for subscription, event in items:
                tx.enqueue(subscription, event)
            return tx.enqueued

    # -- claiming ---------------------------------------------------------------------------
    def _claim(
        self,
        cur: Cursor,
        where: str,
        params: Sequence[Any],
        owner: str,
        now: float,
        lease: float,
        limit: int,
        batch_id: str | None = None,
    ) -> list[Delivery]:
        set_batch = ", batch_id = ?" if batch_id else ""
        sql = (
            f"UPDATE jobhooks_deliveries SET lease_owner = ?, lease_until = ?{set_batch} "
            f"WHERE id IN (SELECT id FROM jobhooks_deliveries WHERE status = 'pending' "
            f"AND (lease_until IS NULL OR lease_until < ?) AND {where} "
            f"ORDER BY id LIMIT ? {self.lock_clause}) RETURNING {COLUMNS}"
        )
        head: list[Any] = [owner, now + lease] + ([batch_id] if batch_id else [])
        rows = self._x(cur, sql, [*head, now, *params, limit]).fetchall()
        return sorted((_row(r) for r in rows), key=lambda d: d.id)

    def claim(
        self,
        subscription: str,
        owner: str,
        *,
        now: float,
        lease: float,
        limit: int,
        event_ids: Sequence[str] | None = None,
    ) -> list[Delivery]:
        """Lease up to ``limit`` due realtime rows of ``subscription``, oldest first."""
        where, params = (
            "subscription = ? AND next_attempt_at <= ? AND batch_id IS NULL",
            [subscription, now],
        )
        if event_ids is not None:
            if not event_ids:
                return []
            where += f" AND event_id IN ({', '.join('?' * len(event_ids))})"
            params += list(event_ids)
        with self._write() as cur:
            return self._claim(cur, where, params, owner, now, lease, limit)

    def failing_before(self, subscription: str, delivery_id: int) -> bool:
        """Whether a realtime row of ``subscription`` older than ``delivery_id`` failed an
        attempt and waits for its retry: the endpoint is failing right now."""
        with self._read() as cur:
            row = self._x(
                cur,
                "SELECT 1 FROM jobhooks_deliveries WHERE subscription = ? AND status = "
                "'pending' AND batch_id IS NULL AND id < ? AND attempts > 0 LIMIT 1",
                (subscription, delivery_id),
            ).fetchone()
        return row is not None

    def claim_batch(
        self,
        subscription: str,
        owner: str,
        *,
        now: float,
        lease: float,
        batch_size: int,
        flush_seconds: float,
    ) -> list[Delivery]:
        """Lease one batch of ``subscription``: a failed batch due for retry (same rows, same
        ``batch_id``), else a new one when ``batch_size`` rows wait or the oldest waited
        ``flush_seconds``. A new batch gets its id from :func:`batch_id_for` and keeps it only
        if it fails (the happy path writes no batch id: half the index work)."""
        with self._write() as cur:
            retry = self._x(
                cur,
                "SELECT batch_id FROM jobhooks_deliveries WHERE subscription = ? AND status = "
                "'pending' AND batch_id IS NOT NULL AND next_attempt_at <= ? AND (lease_until "
                "IS NULL OR lease_until < ?) ORDER BY id LIMIT 1",
                (subscription, now, now),
            ).fetchone()
            if retry:
                return self._claim(
                    cur,
                    "subscription = ? AND batch_id = ?",
                    [subscription, retry[0]],
                    owner,
                    now,
                    lease,
                    batch_size,
                )
            # Two index probes, not a COUNT over the whole backlog: is the batch_size-th row
            # there, and how old is the oldest?
            waiting = (
                "FROM jobhooks_deliveries WHERE subscription = ? AND status = 'pending' AND "
                "batch_id IS NULL AND next_attempt_at <= ? AND (lease_until IS NULL OR "
                "lease_until < ?) ORDER BY id LIMIT 1"
            )
            params = (subscription, now, now)
            oldest = self._x(cur, f"SELECT created_at {waiting}", params).fetchone()
            if oldest is None:
                return []
            full = self._x(cur, f"SELECT id {waiting} OFFSET ?", (*params, batch_size - 1))
            if full.fetchone() is None and float(oldest[0]) > now - flush_seconds:
                return []
            return self._claim(
                cur,
                "subscription = ? AND batch_id IS NULL AND next_attempt_at <= ?",
                [subscription, now],
                owner,
                now,
                lease,
                batch_size,
            )

    def next_batch_due(self, subscription: str, flush_seconds: float) -> float | None:
        """When the oldest waiting unbatched row of ``subscription`` reaches its flush time."""
        with self._read() as cur:
            row = self._x(
                cur,
                "SELECT created_at FROM jobhooks_deliveries WHERE subscription = ? AND "
                "status = 'pending' AND batch_id IS NULL ORDER BY id LIMIT 1",
                (subscription,),
            ).fetchone()
        return None if row is None else float(row[0]) + flush_seconds

    def settle(self, outcomes: Sequence[Outcome], now: float | None = None) -> None:
        """Record what the attempts did, releasing the leases.

        Rows with the same outcome (a delivered batch, say) are updated together.
        """
        now = time.time() if now is None else now
        groups: dict[tuple[Any, ...], list[int]] = {}
        for o in outcomes:
            key: tuple[Any, ...] = (None,)
            if o.status is not None:
                nxt = o.next_attempt_at if o.next_attempt_at is not None else now
                done = now if o.status is Status.DELIVERED else None
                key = (o.status.value, nxt, o.error, o.http_status, done, o.batch_id)
            groups.setdefault(key, []).append(o.delivery_id)
        with self._write() as cur:
            for key, ids in groups.items():
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ", ".join("?" * len(chunk))
                    if key == (None,):
                        self._x(
                            cur,
                            "UPDATE jobhooks_deliveries SET lease_owner = NULL, "
                            f"lease_until = NULL WHERE id IN ({marks})",
                            chunk,
                        )
                        continue
                    self._x(
                        cur,
                        "UPDATE jobhooks_deliveries SET status = ?, attempts = attempts + 1, "
                        "next_attempt_at = ?, last_error = ?, last_status = ?, "
                        "delivered_at = ?, batch_id = COALESCE(?, batch_id), "
                        f"lease_owner = NULL, lease_until = NULL WHERE id IN ({marks})",
                        [*key, *chunk],
                    )

    def release_owner(self, owner: str) -> int:
        """Give back every lease ``owner`` holds (a clean shutdown)."""
        with self._write() as cur:
            return self._x(
                cur,
                "UPDATE jobhooks_deliveries SET lease_owner = NULL, lease_until "
                "= NULL WHERE lease_owner = ? AND status = 'pending'",
                (owner,),
            ).rowcount

    # -- key/value notes kept beside the rows ------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """The value stored under ``key`` (e.g. a watcher's resume point), or None."""
        with self._read() as cur:
            row = self._x(cur, "SELECT value FROM jobhooks_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        with self._write() as cur:
            self._x(
                cur,
                "INSERT INTO jobhooks_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- subscriptions disabled by 410 Gone -------------------------------------------------
    def disable(self, subscription: str, reason: str, now: float | None = None) -> None:
        """Disable ``subscription`` (persisted) and dead-letter its pending rows."""
        now = time.time() if now is None else now
        with self._write() as cur:
            self._x(
                cur,
                "INSERT INTO jobhooks_disabled (subscription, at, reason) VALUES "
                "(?, ?, ?) ON CONFLICT (subscription) DO NOTHING",
                (subscription, now, reason),
            )
            self._x(
                cur,
                "UPDATE jobhooks_deliveries SET status = 'dead', last_error = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE subscription = ? AND "
                "status = 'pending' AND (lease_owner IS NULL OR lease_until < ?)",
                (f"subscription disabled: {reason}", subscription, now),
            )

    def enable(self, subscription: str) -> bool:
        with self._write() as cur:
            return (
                self._x(
                    cur, "DELETE FROM jobhooks_disabled WHERE subscription = ?", (subscription,)
                ).rowcount
                > 0
            )

    def disabled(self) -> dict[str, tuple[float, str]]:
        with self._read() as cur:
            rows = self._x(cur, "SELECT subscription, at, reason FROM jobhooks_disabled").fetchall()
        return {name: (float(at), reason) for name, at, reason in rows}

    # -- reading and maintenance ------------------------------------------------------------
    def deliveries(
        self,
        *,
        status: Status | None = None,
        subscription: str | None = None,
        event_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if subscription is not None:
            where.append("subscription = ?")
            params.append(subscription)
        if event_ids is not None:
            if not event_ids:
                return []
            where.append(f"event_id IN ({', '.join('?' * len(event_ids))})")
            params += list(event_ids)
        with self._read() as cur:
            rows = self._x(
                cur,
                f"SELECT {COLUMNS} FROM jobhooks_deliveries WHERE "
                f"{' AND '.join(where)} ORDER BY id LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """{subscription: {status: rows}}."""
        with self._read() as cur:
            rows = self._x(
                cur,
                "SELECT subscription, status, COUNT(*) FROM jobhooks_deliveries "
                "GROUP BY subscription, status",
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for sub, status, n in rows:
            out.setdefault(sub, {s.value: 0 for s in Status})[status] = int(n)
        return out

    def oldest_pending(self) -> float | None:
        with self._read() as cur:
            row = self._x(
                cur,
                "SELECT created_at FROM jobhooks_deliveries WHERE status = 'pending' "
                "ORDER BY id LIMIT 1",
            ).fetchone()
        return None if row is None else float(row[0])

    def retry(
        self,
        *,
        ids: Sequence[int] | None = None,
        subscription: str | None = None,
        now: float | None = None,
    ) -> int:
        """Make pending and dead rows due now (dead ones get a fresh retry schedule)."""
        now = time.time() if now is None else now
        where, params = ["status IN ('pending', 'dead')"], list[Any]()
        if ids is not None:
            if not ids:
                return 0
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            params += list(ids)
        if subscription is not None:
            where.append("subscription = ?")
            params.append(subscription)
        with self._write() as cur:
            return self._x(
                cur,
                "UPDATE jobhooks_deliveries SET attempts = CASE WHEN status = 'dead' THEN 0 "
                "ELSE attempts END, status = 'pending', next_attempt_at = ?, batch_id = NULL "
                f"WHERE {' AND '.join(where)}",
                [now, *params],
            ).rowcount

    def purge(
        self,
        *,
        status: Status = Status.DELIVERED,
        older_than: float = 0.0,
        subscription: str | None = None,
        now: float | None = None,
    ) -> int:
        """Delete ``status`` rows older than ``older_than`` seconds (delivered rows: counted
        from delivery, others from creation)."""
        now = time.time() if now is None else now
        where = ["status = ?", "COALESCE(delivered_at, created_at) <= ?"]
        params: list[Any] = [status.value, now - older_than]
        if subscription is not None:
            where.append("subscription = ?")
            params.append(subscription)
        with self._write() as cur:
            return self._x(
                cur, f"DELETE FROM jobhooks_deliveries WHERE {' AND '.join(where)}", params
            ).rowcount


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobhooks_deliveries (
    id {serial},
    subscription TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {real} NOT NULL,
    created_at {real} NOT NULL,
    lease_owner TEXT,
    lease_until {real},
    batch_id TEXT,
    last_error TEXT,
    last_status INTEGER,
    delivered_at {real},
    UNIQUE (subscription, event_id)
);
-- Claims walk a subscription's pending rows in emission (id) order.
CREATE INDEX IF NOT EXISTS jobhooks_deliveries_queue
    ON jobhooks_deliveries (subscription, id) WHERE status = 'pending' AND batch_id IS NULL;
CREATE INDEX IF NOT EXISTS jobhooks_deliveries_batches
    ON jobhooks_deliveries (subscription, batch_id)
    WHERE status = 'pending' AND batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobhooks_deliveries_event ON jobhooks_deliveries (event_id);
CREATE INDEX IF NOT EXISTS jobhooks_deliveries_pending
    ON jobhooks_deliveries (id) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS jobhooks_facts (
    work TEXT NOT NULL, fact TEXT NOT NULL, at {real} NOT NULL, PRIMARY KEY (work, fact)
);
CREATE TABLE IF NOT EXISTS jobhooks_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Per-work values (a work's last seen revision, facts handed from one process to another).
CREATE TABLE IF NOT EXISTS jobhooks_values (
    work TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, at {real} NOT NULL,
    PRIMARY KEY (work, key)
);
CREATE TABLE IF NOT EXISTS jobhooks_disabled (
    subscription TEXT PRIMARY KEY, at {real} NOT NULL, reason TEXT NOT NULL
);
"""

"""Backend-neutral outbox logic: the SQL is shared, each backend supplies connections, the
placeholder style and its row-locking clause."""

from __future__ import annotations

import functools
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from .. import metrics
from ..events import Event
from ..formats import event_json
from ..metrics import Counter

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


# Retention purges (Outbox.housekeeping): rows per write transaction, and per call at most.
PURGE_CHUNK = 100
PURGE_ROUND = 5_000


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


# What a settled row's new status counts as.
_SETTLED = {
    Status.DELIVERED.value: Counter.DELIVERED.value,
    Status.PENDING.value: Counter.RETRIED.value,
    Status.DEAD.value: Counter.DEAD_LETTERED.value,
}

_BATCH_NAMESPACE = uuid.UUID("0b5bd2a4-3c4f-5b1e-9d2a-6a7e1c0f4b21")


def batch_id_for(rows: Sequence[Delivery]) -> str:
    """A batch's id: the one it already has (a retry), else derived from its events, so the
    same batch re-formed after a crash has the same ``webhook-id``."""
    if rows[0].batch_id:
        return rows[0].batch_id
    return str(uuid.uuid5(_BATCH_NAMESPACE, ",".join(r.event_id for r in rows)))


def in_list(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """The placeholders and parameters of ``IN (…)`` over ``values`` (not empty), padded to a
    power of two by repeating the last value. Drivers cache prepared statements by their text
    (sqlite3: the last 128 per connection); one text per list length would fill that cache
    with big statements (a short-lived process's claim lists its own events) and hold
    megabytes; a few sizes serve every length."""
    size = 1 << (len(values) - 1).bit_length()
    return ", ".join("?" * size), [*values, *[values[-1]] * (size - len(values))]


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


Counts = dict[tuple[str, str], int]  # {(subscription, counter): increment}


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
        self.counts: Counts = {}  # stored with the transaction, then reported to metrics
        self.quiet_counts: Counts = {}  # stored only (reported when they happened)

    def count(self, subscription: str, counter: Counter, n: int = 1, *, report: bool = True
              ) -> None:
        """Add ``n`` to a counter of ``subscription``, committed with this transaction."""
        counts = self.counts if report else self.quiet_counts
        key = (subscription, counter.value)
        counts[key] = counts.get(key, 0) + n

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
    def enqueue(self, subscription: str, event: Event, *, dead_reason: str | None = None,
                text: str | None = None) -> bool:
        """Add a row; False when (subscription, event id) is already there (a duplicate).
        ``text``: the event's JSON when the caller made it already."""
        status = Status.DEAD if dead_reason else Status.PENDING
        cur = self._x(
            "INSERT INTO jobhooks_deliveries (subscription, event_id, event, status, attempts, "
            "next_attempt_at, created_at, last_error) VALUES (?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (subscription, event_id) DO NOTHING",
            (
                subscription,
                event.id,
                event_json(event) if text is None else text,
                status.value,
                self._now,
                self._now,
                dead_reason,
            ),
        )
        if cur.rowcount == 1:
            self.enqueued += 1
            self.count(subscription, Counter.ENQUEUED)
            if dead_reason:
                self.count(subscription, Counter.DEAD_LETTERED)
            return True
        self.duplicates += 1
        return False


class Outbox:
    """Backend-neutral outbox. Subclasses provide ``_write``/``_read`` cursors and dialect."""

    placeholder = "?"
    counter_shards = 1  # rows per counter: PostgreSQL uses several (see _add_counts)
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

    def housekeeping(self, retention_seconds: float = 0.0, now: float | None = None) -> int:
        """Periodic upkeep, run by a long-lived dispatcher's own thread: purge delivered rows
        older than ``retention_seconds`` (0: keep them), at most :data:`PURGE_ROUND` per call
        (the next call goes on). Returns the rows deleted. (SQLite also checkpoints the
        WAL.)"""
        if retention_seconds <= 0:
            return 0
        return self.purge(older_than=retention_seconds, now=now, limit=PURGE_ROUND)

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _x(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self.sql(sql), params)
        return cur

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self, now: float | None = None) -> Iterator[OutboxTransaction]:
        with self._write() as cur:
            tx = OutboxTransaction(self, cur, time.time() if now is None else now)
            yield tx
            stored = dict(tx.quiet_counts)
            for key, n in tx.counts.items():
                stored[key] = stored.get(key, 0) + n
            self._add_counts(cur, stored)
        metrics.report(tx.counts)

    @contextmanager
    def _counting(self) -> Iterator[tuple[Cursor, Counts]]:
        """A write transaction whose counter increments (``counts``) commit with it and are
        reported to metrics once it has committed."""
        counts: Counts = {}
        with self._write() as cur:
            yield cur, counts
            self._add_counts(cur, counts)
        metrics.report(counts)

    def _add_counts(self, cur: Cursor, counts: Counts) -> None:
        """One upsert for all of a transaction's increments. Rows are taken in key order, so
        concurrent transactions never deadlock on them; each transaction picks one of
        ``counter_shards`` rows per counter, so concurrent writers (PostgreSQL: every task
        process) rarely wait for one another's commit on the same row."""
        items = sorted((key, n) for key, n in counts.items() if n)
        if not items:
            return
        shard = random.randrange(self.counter_shards) if self.counter_shards > 1 else 0
        self._x(
            cur,
            "INSERT INTO jobhooks_counters (subscription, counter, shard, value) VALUES "
            + ", ".join("(?, ?, ?, ?)" for _ in items)
            + " ON CONFLICT (subscription, counter, shard) DO UPDATE SET "
            "value = jobhooks_counters.value + excluded.value",
            [v for (sub, name), n in items for v in (sub, name, shard, n)],
        )

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
            marks, values = in_list(event_ids)
            where += f" AND event_id IN ({marks})"
            params += values
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

        Rows with the same outcome (a delivered batch, say) are updated together. Counts each
        row delivered, retried (failed, another attempt scheduled) or dead-lettered. Only
        pending rows are settled: when a lease ran out mid-request and another process already
        settled the row, a late outcome neither reopens a delivered row nor counts it twice.
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
        with self._counting() as (cur, counts):
            for key, ids in groups.items():
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ", ".join("?" * len(chunk))
                    if key == (None,):
                        self._x(
                            cur,
                            "UPDATE jobhooks_deliveries SET lease_owner = NULL, "
                            f"lease_until = NULL WHERE id IN ({marks}) AND status = 'pending'",
                            chunk,
                        )
                        continue
                    updated = self._x(
                        cur,
                        "UPDATE jobhooks_deliveries SET status = ?, attempts = attempts + 1, "
                        "next_attempt_at = ?, last_error = ?, last_status = ?, "
                        "delivered_at = ?, batch_id = COALESCE(?, batch_id), "
                        f"lease_owner = NULL, lease_until = NULL WHERE id IN ({marks}) "
                        "AND status = 'pending' RETURNING subscription",
                        [*key, *chunk],
                    ).fetchall()
                    counter = _SETTLED[key[0]]
                    for (subscription,) in updated:
                        counts[subscription, counter] = counts.get((subscription, counter), 0) + 1

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
    def disable(self, subscription: str, reason: str, now: float | None = None) -> bool:
        """Disable ``subscription`` (persisted) and dead-letter its pending rows. True when
        this call disabled it (False: it already was)."""
        now = time.time() if now is None else now
        with self._counting() as (cur, counts):
            inserted = self._x(
                cur,
                "INSERT INTO jobhooks_disabled (subscription, at, reason) VALUES "
                "(?, ?, ?) ON CONFLICT (subscription) DO NOTHING",
                (subscription, now, reason),
            ).rowcount
            counts[subscription, Counter.DEAD_LETTERED.value] = self._x(
                cur,
                "UPDATE jobhooks_deliveries SET status = 'dead', last_error = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE subscription = ? AND "
                "status = 'pending' AND (lease_owner IS NULL OR lease_until < ?)",
                (f"subscription disabled: {reason}", subscription, now),
            ).rowcount
        if inserted == 1:
            metrics.count(metrics.SUBSCRIPTION_DISABLED, subscription)
        return inserted == 1

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
            marks, values = in_list(event_ids)
            where.append(f"event_id IN ({marks})")
            params += values
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

    def counters(self) -> dict[str, dict[str, int]]:
        """{subscription: {counter: total}}: what happened to events since the outbox was
        created (every :class:`~jobhooks_core.metrics.Counter`, zeros included). Kept apart
        from the rows: purging rows never changes them."""
        with self._read() as cur:
            rows = self._x(
                cur,
                "SELECT subscription, counter, SUM(value) FROM jobhooks_counters "
                "GROUP BY subscription, counter",
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for sub, name, n in rows:
            out.setdefault(sub, {c.value: 0 for c in Counter})[name] = int(n)
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
        """Make pending and dead rows due now (dead ones get a fresh retry schedule, and
        count as enqueued again: they re-enter the queue)."""
        now = time.time() if now is None else now
        where, params = ["1 = 1"], list[Any]()
        if ids is not None:
            if not ids:
                return 0
            marks, values = in_list(ids)
            where.append(f"id IN ({marks})")
            params += values
        if subscription is not None:
            where.append("subscription = ?")
            params.append(subscription)
        with self._counting() as (cur, counts):
            due = self._x(
                cur,
                "UPDATE jobhooks_deliveries SET next_attempt_at = ?, batch_id = NULL "
                f"WHERE status = 'pending' AND {' AND '.join(where)}",
                [now, *params],
            ).rowcount
            revived = self._x(
                cur,
                "UPDATE jobhooks_deliveries SET attempts = 0, status = 'pending', "
                "next_attempt_at = ?, batch_id = NULL "
                f"WHERE status = 'dead' AND {' AND '.join(where)} RETURNING subscription",
                [now, *params],
            ).fetchall()
            for (name,) in revived:
                key = (name, Counter.ENQUEUED.value)
                counts[key] = counts.get(key, 0) + 1
        return due + len(revived)

    def purge(
        self,
        *,
        status: Status = Status.DELIVERED,
        older_than: float = 0.0,
        subscription: str | None = None,
        now: float | None = None,
        limit: int | None = None,
    ) -> int:
        """Delete ``status`` rows older than ``older_than`` seconds (delivered rows: counted
        from delivery, others from creation); at most ``limit`` (None: all). Deletes
        :data:`PURGE_CHUNK` rows per transaction and then leaves the write lock free as long,
        so a big purge never holds up emitters for more than one short transaction."""
        now = time.time() if now is None else now
        # Delivered rows are found by the partial index on delivered_at (no table scan); the
        # status is a literal so that the planner can use it.
        age = "delivered_at" if status is Status.DELIVERED else "created_at"
        where = [f"status = '{Status(status).value}'", f"{age} <= ?"]
        params: list[Any] = [now - older_than]
        if subscription is not None:
            where.append("subscription = ?")
            params.append(subscription)
        sql = (
            "DELETE FROM jobhooks_deliveries WHERE id IN (SELECT id FROM jobhooks_deliveries "
            f"WHERE {' AND '.join(where)} LIMIT ? {self.lock_clause})"
        )
        purged = 0
        while limit is None or purged < limit:
            chunk = PURGE_CHUNK if limit is None else min(PURGE_CHUNK, limit - purged)
            started = time.monotonic()
            with self._write() as cur:
                deleted = self._x(cur, sql, [*params, chunk]).rowcount
            purged += deleted
            if deleted < chunk:
                break
            # As long again without the lock: writers waiting for it (this process's threads,
            # other processes polling SQLite's busy handler) get their turn.
            time.sleep(time.monotonic() - started)
        return purged


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
-- Retention purges delivered rows by age.
CREATE INDEX IF NOT EXISTS jobhooks_deliveries_delivered
    ON jobhooks_deliveries (delivered_at) WHERE status = 'delivered';
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
-- What happened to events, per subscription (jobhooks_core.metrics.Counter): a counter is the
-- sum of its shards (Outbox._add_counts).
CREATE TABLE IF NOT EXISTS jobhooks_counters (
    subscription TEXT NOT NULL, counter TEXT NOT NULL, shard INTEGER NOT NULL,
    value BIGINT NOT NULL, PRIMARY KEY (subscription, counter, shard)
);
"""

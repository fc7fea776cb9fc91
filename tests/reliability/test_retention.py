"""Outbox retention: delivered rows older than JOBHOOKS_RETENTION are purged by long-lived
dispatchers without anyone asking, in bounded chunks; pending rows and dead letters are never
purged, 0 keeps everything, and short-lived processes leave purging to the long-lived ones.

Run against both backends (PostgreSQL with ``JOBHOOKS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_core import Subscription
from jobhooks_core.events import Event, Source
from jobhooks_core.outbox import Outbox, Outcome, Status
from jobhooks_core.outbox._base import PURGE_ROUND
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.outboxes import BACKENDS, backend
from tests.receiver import TestReceiver

NOW = 1_800_000_000.0  # the injected clock of the outbox-level tests
DAY = 86400.0
WEEK = 7 * DAY
SOURCE = Source("airflow", "prod", "3.0.2")


@pytest.fixture(params=BACKENDS)
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    with backend(request.param, tmp_path) as box:
        yield box


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    with TestReceiver() as started:
        yield started


def add(outbox: Outbox, status: Status, *, created: float, settled: float | None = None,
        subscription: str = "ops", n: int = 1) -> list[int]:
    """``n`` rows created at ``created`` and, unless pending, settled as ``status`` at
    ``settled``; their ids."""
    events = [
        Event.create("failed", "work", "daily_export", source=SOURCE,
                     occurrence=uuid.uuid4().hex)
        for _ in range(n)
    ]
    with outbox.transaction(now=created) as tx:
        for event in events:
            tx.enqueue(subscription, event)
    rows = outbox.deliveries(event_ids=[e.id for e in events], limit=n)
    if status is not Status.PENDING:
        error = None if status is Status.DELIVERED else "HTTP 400"
        code = 200 if status is Status.DELIVERED else 400
        outbox.settle([Outcome(r.id, status, error, code) for r in rows],
                      now=created if settled is None else settled)
    return [r.id for r in rows]


def kept(outbox: Outbox) -> set[int]:
    return {r.id for r in outbox.deliveries(limit=100_000)}


def test_delivered_rows_past_the_retention_go_and_younger_pending_and_dead_ones_stay(
    outbox: Outbox,
) -> None:
    # Age counts from delivery: a row created long ago but delivered an hour ago is young.
    expired = add(outbox, Status.DELIVERED, created=NOW - 30 * DAY, settled=NOW - 8 * DAY)
    young = add(outbox, Status.DELIVERED, created=NOW - 30 * DAY, settled=NOW - 3600)
    pending = add(outbox, Status.PENDING, created=NOW - 30 * DAY)
    dead = add(outbox, Status.DEAD, created=NOW - 30 * DAY, settled=NOW - 29 * DAY)
    assert outbox.housekeeping(retention_seconds=WEEK, now=NOW) == 1
    assert kept(outbox) == {*young, *pending, *dead}
    assert not kept(outbox) & set(expired)
    assert outbox.housekeeping(retention_seconds=WEEK, now=NOW) == 0


def test_zero_retention_keeps_delivered_rows_forever(outbox: Outbox) -> None:
    rows = add(outbox, Status.DELIVERED, created=NOW - 400 * DAY, n=3)
    assert outbox.housekeeping(retention_seconds=0, now=NOW + 100 * 365 * DAY) == 0
    assert kept(outbox) == set(rows)


def test_a_big_purge_is_spread_over_several_rounds(outbox: Outbox) -> None:
    """One housekeeping call deletes at most PURGE_ROUND rows (in short transactions, so
    emitters get the write lock in between); the next calls go on until none is left."""
    total = PURGE_ROUND + 2_500
    add(outbox, Status.DELIVERED, created=NOW - 30 * DAY, n=total)
    young = add(outbox, Status.DELIVERED, created=NOW - 60, n=5)
    assert outbox.housekeeping(retention_seconds=WEEK, now=NOW) == PURGE_ROUND
    assert outbox.housekeeping(retention_seconds=WEEK, now=NOW) == 2_500
    assert outbox.housekeeping(retention_seconds=WEEK, now=NOW) == 0
    assert kept(outbox) == set(young)


def runtime(outbox: Outbox, tmp_path: Path, url: str, *, long_lived: bool,
            retention: str) -> Jobhooks:
    settings = Settings.from_env(
        {"JOBHOOKS_HOME": str(tmp_path), "JOBHOOKS_RETENTION": retention}, poll_seconds=0.05
    )
    subs = [Subscription.from_mapping("ops", {"url": url})]
    return Jobhooks(settings=settings, subscriptions=subs, long_lived=long_lived, outbox=outbox)


def test_a_long_lived_runtime_purges_expired_rows_without_being_asked(
    outbox: Outbox, tmp_path: Path, receiver: TestReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    expired = add(outbox, Status.DELIVERED, created=now - 3 * DAY, settled=now - 2 * DAY, n=3)
    young = add(outbox, Status.DELIVERED, created=now - 3 * DAY, settled=now - 600)
    # Rows of a subscription this runtime does not deliver: they stay pending.
    pending = add(outbox, Status.PENDING, created=now - 3 * DAY, subscription="elsewhere")
    dead = add(outbox, Status.DEAD, created=now - 3 * DAY, settled=now - 3 * DAY)
    rt = runtime(outbox, tmp_path, receiver.url, long_lived=True, retention=str(DAY))
    caplog.set_level(logging.INFO, logger="jobhooks")
    try:
        rt.dispatcher  # noqa: B018 - a running scheduler / relay / watcher: nobody asks it
        deadline = time.monotonic() + 10
        while set(expired) & kept(outbox):
            assert time.monotonic() < deadline, "the expired rows were never purged"
            with rt.dispatcher._settled:
                rt.dispatcher._settled.wait(0.05)
    finally:
        rt.close()
    assert kept(outbox) == {*young, *pending, *dead}
    assert "purged 3 delivered row(s) older than 86400 s" in caplog.text


def test_a_short_lived_process_leaves_purging_to_long_lived_ones(
    outbox: Outbox, tmp_path: Path, receiver: TestReceiver
) -> None:
    now = time.time()
    expired = add(outbox, Status.DELIVERED, created=now - 3 * DAY, settled=now - 2 * DAY)
    rt = runtime(outbox, tmp_path, receiver.url, long_lived=False, retention=str(DAY))
    try:
        event = rt.emit("failed", "work", "daily_export")
        assert event is not None
        assert rt.flush(10) is True  # its dispatcher ran rounds (and housekeeping) meanwhile
        receiver.wait_for(1)
    finally:
        rt.close()
    assert set(expired) <= kept(outbox)

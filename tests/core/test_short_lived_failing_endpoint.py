"""Short-lived processes (an Airflow task, a flow run) and a failing endpoint: when older events
of a subscription already failed and wait for their retry, a short-lived process does not wait
on that endpoint at exit; it leaves its events to a long-lived dispatcher."""

from __future__ import annotations

import time
from pathlib import Path

from jobhooks_core import Event, Source, Subscription
from jobhooks_core.outbox import Outcome, Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.receiver import Reply, TestReceiver

SOURCE = Source("airflow", "t")


def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"JOBHOOKS_HOME": str(tmp_path)},
        flush_timeout=3,
        retry_schedule="0,0.2,0.2",
        poll_seconds=0.05,
    )


def failed_earlier(rt: Jobhooks, sub: str) -> Event:
    """An event another process could not deliver: attempted once, its retry still to come."""
    old = Event.create("failed", "work", "earlier", source=SOURCE, occurrence="r0")
    rt.outbox.enqueue([(sub, old)])
    (row,) = rt.outbox.deliveries()
    rt.outbox.settle([Outcome(row.id, Status.PENDING, "timeout", None, time.time() + 0.5)])
    return old


def test_a_short_lived_process_does_not_wait_on_an_endpoint_that_is_failing(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    receiver.default = Reply.hang()
    sub = Subscription.from_mapping("ops", {"url": receiver.url, "timeout_seconds": 30})
    task = Jobhooks(settings=settings(tmp_path), subscriptions=[sub])
    failed_earlier(task, "ops")
    task.emit("synced", "work", "etl", occurrence="r1/t1/-1/1")
    started = time.monotonic()
    task.close()
    assert time.monotonic() - started < 1.5  # not its 3 s flush window
    assert receiver.requests == []
    statuses = [
        r.status
        for r in Jobhooks(settings=settings(tmp_path), subscriptions=[sub]).outbox.deliveries()
    ]
    assert statuses == [Status.PENDING, Status.PENDING]  # both kept for a long-lived process


def test_once_the_endpoint_answers_a_long_lived_dispatcher_sends_what_was_left(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    sub = Subscription.from_mapping("ops", {"url": receiver.url})
    task = Jobhooks(settings=settings(tmp_path), subscriptions=[sub])
    old = failed_earlier(task, "ops")
    mine = task.emit("synced", "work", "etl", occurrence="r1/t1/-1/1")
    task.close()
    assert receiver.requests == []
    relay = Jobhooks(settings=settings(tmp_path), subscriptions=[sub], long_lived=True)
    try:
        relay.dispatcher  # noqa: B018 - start it
        receiver.wait_for(2)
        assert sorted(receiver.event_ids()) == sorted([old.id, mine.id])  # type: ignore[union-attr]
    finally:
        relay.close()


def test_a_healthy_endpoint_still_gets_a_short_lived_processs_events_at_exit(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    sub = Subscription.from_mapping("ops", {"url": receiver.url})
    task = Jobhooks(settings=settings(tmp_path), subscriptions=[sub])
    other = Event.create("synced", "work", "another-task", source=SOURCE, occurrence="x")
    task.outbox.enqueue([("ops", other)])  # waiting, never attempted: not a failing endpoint
    mine = task.emit("synced", "work", "etl", occurrence="r1/t1/-1/1")
    task.close()
    assert receiver.event_ids() == [mine.id]  # type: ignore[union-attr]


def test_it_does_not_wait_either_when_a_long_lived_dispatcher_took_its_events(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    receiver.default = Reply.hang()
    sub = Subscription.from_mapping("ops", {"url": receiver.url, "timeout_seconds": 30})
    task = Jobhooks(settings=settings(tmp_path), subscriptions=[sub])
    failed_earlier(task, "ops")
    task.emit("synced", "work", "etl", occurrence="r1/t1/-1/1")
    # The scheduler's dispatcher leased the task's row already (and hangs on the endpoint).
    leased = task.outbox.claim("ops", "scheduler", now=time.time() + 1, lease=60, limit=10)
    assert len(leased) == 2
    started = time.monotonic()
    task.close()
    assert time.monotonic() - started < 1.5

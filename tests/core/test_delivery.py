"""Delivery against a real receiver on 127.0.0.1: retries, faults, 410, redirects, timeouts,
batches, ordering — each with the outcome a user would see (in the receiver and the outbox)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobhooks_core import Subscription
from jobhooks_core.outbox import Delivery, Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.receiver import Reply, TestReceiver

FAST = "0,0.05,0.05"  # three attempts, 50 ms apart: the real schedule, compressed

Factory = Callable[..., Jobhooks]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Factory]:
    made: list[Jobhooks] = []

    def make(*subs: dict[str, Any], schedule: str = FAST, long_lived: bool = True) -> Jobhooks:
        settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)},
                                     retry_schedule=schedule, poll_seconds=0.05)
        parsed = [Subscription.from_mapping(s.pop("name", f"sub{i}"), s)
                  for i, s in enumerate(subs)]
        rt = Jobhooks(settings=settings, subscriptions=parsed, long_lived=long_lived)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def settle(rt: Jobhooks, predicate: Callable[[list[Delivery]], bool],
           timeout: float = 10) -> list[Delivery]:
    """Wait (on the dispatcher's condition, not a sleep) until the outbox rows satisfy it."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rt.outbox.deliveries(limit=10_000)
        if predicate(rows):
            return rows
        assert time.monotonic() < deadline, f"outbox never settled: {rows}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.05)


def all_status(status: Status, n: int) -> Callable[[list[Delivery]], bool]:
    return lambda rows: len(rows) == n and all(r.status is status for r in rows)


def test_healthy_endpoint_gets_each_event_once_in_emission_order(
    runtime: Factory, receiver: TestReceiver
) -> None:
    rt = runtime({"url": receiver.url})
    ids = [rt.emit("synced", "work", f"export_{i}").id for i in range(20)]  # type: ignore[union-attr]
    receiver.wait_for(20)
    settle(rt, all_status(Status.DELIVERED, 20))
    assert receiver.event_ids() == ids


def test_server_error_is_retried_with_the_same_webhook_id(
    runtime: Factory, receiver: TestReceiver
) -> None:
    receiver.respond(Reply(500, body=b"boom"), Reply(503))
    rt = runtime({"url": receiver.url})
    event = rt.emit("failed", "work", "daily_export")
    first, second, third = receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in (first, second, third)} == {event.id}  # type: ignore[union-attr]
    (row,) = settle(rt, all_status(Status.DELIVERED, 1))
    assert row.attempts == 3


def test_attempts_spent_make_a_dead_letter_that_retry_sends_again(
    runtime: Factory, receiver: TestReceiver
) -> None:
    receiver.default = Reply(500, body=b"down for maintenance")
    rt = runtime({"url": receiver.url})
    rt.emit("failed", "work", "daily_export")
    (row,) = settle(rt, all_status(Status.DEAD, 1))
    assert row.attempts == 3 and row.last_status == 500
    assert "down for maintenance" in (row.last_error or "")
    receiver.default = Reply(204)
    assert rt.outbox.retry() == 1
    rt.dispatcher.wake()
    settle(rt, all_status(Status.DELIVERED, 1))
    assert len(receiver.wait_for(4)) == 4


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(runtime: Factory, receiver: TestReceiver, status: int) -> None:
    receiver.respond(Reply(status, {"Retry-After": "1"}))
    rt = runtime({"url": receiver.url})
    rt.emit("failed", "work", "daily_export")
    first, second = receiver.wait_for(2)
    assert second.received_at - first.received_at >= 0.9  # schedule alone says 0.05 s
    settle(rt, all_status(Status.DELIVERED, 1))


def test_410_gone_disables_the_subscription_and_keeps_its_events(
    runtime: Factory, receiver: TestReceiver
) -> None:
    receiver.default = Reply(410)
    rt = runtime({"name": "gone", "url": receiver.url})
    rt.emit("failed", "work", "a")
    (row,) = settle(rt, all_status(Status.DEAD, 1))
    assert "410" in (row.last_error or "")
    assert "gone" in rt.outbox.disabled()
    rt._disabled_read = -1e9  # a new process would read the disabled state afresh
    rt.emit("failed", "work", "b")
    rows = settle(rt, all_status(Status.DEAD, 2))
    assert "disabled" in (rows[1].last_error or "")
    assert len(receiver.requests) == 1  # nothing more was sent after the 410


def test_redirects_are_not_followed(runtime: Factory, receiver: TestReceiver) -> None:
    with TestReceiver() as elsewhere:
        receiver.default = Reply.redirect(elsewhere.url)
        rt = runtime({"url": receiver.url})
        rt.emit("failed", "work", "a")
        (row,) = settle(rt, all_status(Status.DEAD, 1))
        assert "redirect" in (row.last_error or "") and row.last_status == 302
        assert elsewhere.requests == []


def test_connection_refused_is_retried_then_dead(runtime: Factory, free_port: int) -> None:
    rt = runtime({"url": f"http://127.0.0.1:{free_port}/hooks"})
    rt.emit("failed", "work", "a")
    (row,) = settle(rt, all_status(Status.DEAD, 1))
    assert row.attempts == 3 and "Connect" in (row.last_error or "")


def test_receiver_that_never_answers_times_out_without_holding_up_others(
    runtime: Factory, receiver: TestReceiver
) -> None:
    with TestReceiver() as healthy:
        receiver.default = Reply.hang()
        rt = runtime({"name": "hangs", "url": receiver.url, "timeout_seconds": 0.5},
                     {"name": "healthy", "url": healthy.url}, schedule="0,60")
        for i in range(5):
            rt.emit("failed", "work", f"w{i}")
        healthy.wait_for(5)  # all five arrive while the other endpoint hangs
        rows = settle(rt, lambda rows: any(r.subscription == "hangs" and r.attempts for r in rows))
        hung = [r for r in rows if r.subscription == "hangs" and r.attempts]
        assert "timeout" in (hung[0].last_error or "")


def test_slow_receiver_still_gets_everything_in_order(
    runtime: Factory, receiver: TestReceiver
) -> None:
    receiver.default = Reply(200, delay=0.2)
    rt = runtime({"url": receiver.url, "timeout_seconds": 5})
    ids = [rt.emit("synced", "work", f"u{i}").id for i in range(4)]  # type: ignore[union-attr]
    receiver.wait_for(4)
    settle(rt, all_status(Status.DELIVERED, 4))
    assert receiver.event_ids() == ids


def test_signed_requests_carry_standard_webhooks_headers(
    runtime: Factory, receiver: TestReceiver
) -> None:
    from standardwebhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    rt = runtime({"url": receiver.url, "secret": secret, "headers": {"X-Team": "data"}})
    event = rt.emit("failed", "work", "a", data={"error": "boom"})
    (request,) = receiver.wait_for(1)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event.id and payload["data"] == {"error": "boom"}  # type: ignore[union-attr]
    assert request.headers["x-team"] == "data"
    assert request.headers["user-agent"].startswith("jobhooks/")


def test_duplicate_emission_is_enqueued_once(runtime: Factory, receiver: TestReceiver) -> None:
    rt = runtime({"url": receiver.url})
    rt.emit("failed", "work", "a", occurrence="run-1")
    rt.emit("failed", "work", "a", occurrence="run-1")
    settle(rt, all_status(Status.DELIVERED, 1))
    assert len(receiver.wait_for(1)) == 1


def test_filters_decide_who_gets_what(runtime: Factory, receiver: TestReceiver) -> None:
    rt = runtime({"name": "failures", "url": receiver.url, "verbs": ["failed"]},
                 {"name": "segments", "url": receiver.url, "subject_types": ["segment"]})
    rt.emit("failed", "work", "a")
    rt.emit("synced", "segment", "b")
    rt.emit("synced", "work", "c")
    rows = settle(rt, all_status(Status.DELIVERED, 2))
    assert sorted((r.subscription, r.event["type"]) for r in rows) == [
        ("failures", "work.failed"), ("segments", "segment.synced")]


# -- batch mode ---------------------------------------------------------------------------


def batch_sizes(receiver: TestReceiver) -> list[int]:
    return [len(json.loads(r.body)["events"]) for r in receiver.requests]


def test_batch_is_sent_when_batch_size_events_wait(
    runtime: Factory, receiver: TestReceiver
) -> None:
    rt = runtime({"url": receiver.url, "mode": "batch", "batch_size": 5,
                  "batch_flush_seconds": 3600})
    for i in range(12):
        rt.emit("failed", "work", f"w{i}")
    receiver.wait_for(2)
    rows = settle(rt, lambda rows: sum(r.status is Status.DELIVERED for r in rows) == 10)
    assert batch_sizes(receiver) == [5, 5]
    assert sum(r.status is Status.PENDING for r in rows) == 2  # waiting for more, or the clock
    first = json.loads(receiver.requests[0].body)
    assert receiver.requests[0].headers["webhook-id"] == first["batch_id"]


def test_batch_is_sent_when_the_oldest_event_waited_flush_seconds(
    runtime: Factory, receiver: TestReceiver
) -> None:
    rt = runtime({"url": receiver.url, "mode": "batch", "batch_size": 100,
                  "batch_flush_seconds": 0.5})
    started = time.monotonic()
    for i in range(3):
        rt.emit("started", "work", f"w{i}")
    (request,) = receiver.wait_for(1)
    assert request.received_at - started >= 0.45
    assert batch_sizes(receiver) == [3]


def test_batch_and_realtime_subscriptions_on_the_same_events(
    runtime: Factory, receiver: TestReceiver
) -> None:
    with TestReceiver() as batch_receiver:
        rt = runtime({"name": "live", "url": receiver.url},
                     {"name": "nightly", "url": batch_receiver.url, "mode": "batch",
                      "batch_size": 4, "batch_flush_seconds": 3600})
        ids = [rt.emit("failed", "work", f"w{i}").id for i in range(4)]  # type: ignore[union-attr]
        ids.append(rt.emit("synced", "work", "realtime-only").id)  # type: ignore[union-attr]
        receiver.wait_for(5)
        batch_receiver.wait_for(1)
        assert receiver.event_ids() == ids
        assert batch_receiver.event_ids() == ids[:4]  # synced is realtime-only


def test_failed_batch_is_retried_whole_with_the_same_batch_id(
    runtime: Factory, receiver: TestReceiver
) -> None:
    receiver.respond(Reply(500))
    rt = runtime({"url": receiver.url, "mode": "batch", "batch_size": 3,
                  "batch_flush_seconds": 3600}, schedule="0,0.05,0.05")
    rt.dispatcher  # noqa: B018
    rt.settings = rt.settings.replace(poll_seconds=0.05)
    for i in range(3):
        rt.emit("failed", "work", f"w{i}")
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    settle(rt, all_status(Status.DELIVERED, 3))


# -- short-lived processes: flush within flush_timeout, leave the rest ---------------------


def test_short_lived_exit_waits_at_most_flush_timeout_for_a_hung_receiver(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    receiver.default = Reply.hang()
    settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, flush_timeout=1)
    sub = Subscription.from_mapping("ops", {"url": receiver.url, "timeout_seconds": 30})
    rt = Jobhooks(settings=settings, subscriptions=[sub])
    for i in range(3):
        rt.emit("failed", "work", f"w{i}")
    started = time.monotonic()
    rt.close()
    assert time.monotonic() - started < 1 + 2.5  # flush_timeout, plus generous slack
    rows = Jobhooks(settings=settings, subscriptions=[sub]).outbox.deliveries()
    assert [r.status for r in rows] == [Status.PENDING] * 3  # left for a long-lived process
    assert len(receiver.requests) == 1  # one request in flight per subscription, no more


def test_short_lived_exit_makes_only_the_attempts_inside_its_window(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    receiver.default = Reply(500)
    settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, flush_timeout=2,
                                 retry_schedule="0,30")
    sub = Subscription.from_mapping("ops", {"url": receiver.url})
    rt = Jobhooks(settings=settings, subscriptions=[sub])
    rt.emit("failed", "work", "w")
    rt.close()  # the second attempt is due in 30 s: outside the window, so not made
    (row,) = Jobhooks(settings=settings, subscriptions=[sub]).outbox.deliveries()
    assert row.status is Status.PENDING and row.attempts == 1
    assert row.next_attempt_at > time.time() + 20
    assert len(receiver.requests) == 1


def test_short_lived_process_delivers_only_its_own_events(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)})
    sub = Subscription.from_mapping("ops", {"url": receiver.url})
    from jobhooks_core import Event, Source

    other = Event.create("failed", "work", "someone-elses", source=Source("t"), occurrence="r")
    rt = Jobhooks(settings=settings, subscriptions=[sub])
    rt.outbox.enqueue([("ops", other)])  # left behind by another process
    mine = rt.emit("failed", "work", "mine")
    rt.close()
    assert receiver.event_ids() == [mine.id]  # type: ignore[union-attr]


def test_short_lived_flush_does_not_wait_for_batch_subscriptions(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    with TestReceiver() as batch_receiver:
        settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, flush_timeout=30)
        subs = [Subscription.from_mapping("live", {"url": receiver.url}),
                Subscription.from_mapping("nightly", {"url": batch_receiver.url,
                                                      "mode": "batch", "batch_size": 1})]
        rt = Jobhooks(settings=settings, subscriptions=subs)
        event = rt.emit("failed", "work", "w")
        assert rt.flush() is True  # settled: the realtime row is delivered, the batch row waits
        rt.close()
        assert receiver.event_ids() == [event.id]  # type: ignore[union-attr]
        assert batch_receiver.requests == []  # a short-lived process never sends batches
        rows = Jobhooks(settings=settings, subscriptions=subs).outbox.deliveries(
            subscription="nightly")
        assert [r.status for r in rows] == [Status.PENDING]


def test_a_failing_subscription_is_logged_once_then_once_on_recovery(
    runtime: Factory, receiver: TestReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    receiver.respond(Reply(500), Reply(500), Reply(500))
    rt = runtime({"name": "ops", "url": receiver.url}, schedule="0,0.05,0.05,0.05")
    with caplog.at_level(logging.WARNING, logger="jobhooks"):
        rt.emit("failed", "work", "a")
        settle(rt, all_status(Status.DELIVERED, 1))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("'ops' is failing: 500" in m for m in messages) == 1
    assert sum("'ops' is delivering again" in m for m in messages) == 1


def test_an_idle_long_lived_dispatcher_keeps_a_fixed_set_of_connections(
    runtime: Factory, receiver: TestReceiver
) -> None:
    rt = runtime({"name": "a", "url": receiver.url},
                 {"name": "b", "url": receiver.url, "mode": "batch", "batch_size": 1000})
    rt.settings = rt.settings.replace(poll_seconds=0.01)
    dispatcher = rt.dispatcher
    dispatcher.poll_seconds = 0.01
    rounds = 0
    with dispatcher._settled:
        while rounds < 60:  # each worker run notifies once: wait for many idle rounds
            assert dispatcher._settled.wait(5), "the dispatcher stopped working"
            rounds += 1
    outbox = rt.outbox
    assert len(outbox._all) <= 4  # type: ignore[attr-defined]  # host, loop, one per worker

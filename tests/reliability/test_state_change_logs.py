"""One clear log line per state change of a subscription — failing, dead letters appearing,
delivering again, disabled by 410 — however many rows or retries are behind it; a real
dispatcher against a real receiver."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobhooks_core import Subscription
from jobhooks_core.events import Event
from jobhooks_core.outbox import Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.receiver import Reply, TestReceiver


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    with TestReceiver() as started:
        yield started


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Callable[[str], list[str]]:
    """The jobhooks log lines (WARNING and up) that contain a phrase."""
    caplog.set_level(logging.WARNING, logger="jobhooks")
    return lambda phrase: [r.getMessage() for r in caplog.records
                           if r.name == "jobhooks" and phrase in r.getMessage()]


def long_lived(tmp_path: Path, url: str, schedule: str) -> Jobhooks:
    return Jobhooks(
        settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, retry_schedule=schedule,
                                   poll_seconds=0.05),
        subscriptions=[Subscription.from_mapping("ops", {"url": url})],
        long_lived=True,
    )


def settled(rt: Jobhooks, n: int, status: Status, timeout: float = 15) -> None:
    """Wait until ``n`` rows are in ``status`` (on the dispatcher's notifications)."""
    deadline = time.monotonic() + timeout
    while len(rt.outbox.deliveries(status=status, limit=10_000)) < n:
        assert time.monotonic() < deadline, f"never {n} rows {status.value}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.05)


def test_dead_letters_are_logged_once_when_they_start_appearing_not_once_per_row(
    tmp_path: Path, receiver: TestReceiver, lines: Callable[[str], list[str]]
) -> None:
    receiver.default = Reply(500)
    rt = long_lived(tmp_path, receiver.url, schedule="0")  # one attempt: then a dead letter
    try:
        for i in range(8):
            rt.emit("failed", "work", f"job-{i}")
        settled(rt, 8, Status.DEAD)
        (dead,) = lines("is a dead letter")
        assert "'ops'" in dead and "500" in dead and "outbox retry --subscription ops" in dead
        # Recovery is one line, and re-arms: the next outage's dead letters are logged again.
        receiver.default = Reply(204)
        rt.emit("failed", "work", "ok")
        settled(rt, 1, Status.DELIVERED)
        assert len(lines("'ops' is delivering again")) == 1
        receiver.default = Reply(500)
        for i in range(3):
            rt.emit("failed", "work", f"again-{i}")
        settled(rt, 11, Status.DEAD)
        assert len(lines("is a dead letter")) == 2
    finally:
        rt.close()


def test_a_failing_endpoint_is_logged_once_per_outage_not_once_per_retry(
    tmp_path: Path, receiver: TestReceiver, lines: Callable[[str], list[str]]
) -> None:
    receiver.respond(*[Reply(503)] * 4)  # four failed attempts, then answers
    rt = long_lived(tmp_path, receiver.url, schedule="0,0.02,0.02,0.02,0.02,0.02")
    try:
        for i in range(5):
            rt.emit("failed", "work", f"job-{i}")
        settled(rt, 5, Status.DELIVERED)
        assert len(lines("'ops' is failing: 503")) == 1
        assert len(lines("'ops' is delivering again")) == 1
        receiver.respond(*[Reply(500)] * 2)  # a second outage: logged again, once
        rt.emit("failed", "work", "later")
        settled(rt, 6, Status.DELIVERED)
        assert len(lines("'ops' is failing")) == 2
        assert len(lines("'ops' is delivering again")) == 2
    finally:
        rt.close()


def test_a_410_is_logged_once_however_many_events_were_waiting(
    tmp_path: Path, receiver: TestReceiver, lines: Callable[[str], list[str]]
) -> None:
    receiver.default = Reply(410)
    rt = long_lived(tmp_path, receiver.url, schedule="0")
    other = long_lived(tmp_path, receiver.url, schedule="0")  # a second process's dispatcher
    try:
        with rt.outbox.transaction() as tx:  # a backlog, all waiting at once
            for i in range(20):
                tx.enqueue("ops", Event.create("failed", "work", f"job-{i}", source=rt.source,
                                               occurrence="r"))
        rt.dispatcher.wake()
        other.dispatcher.wake()
        settled(rt, 20, Status.DEAD)
        (disabled,) = lines("disabled:")
        assert "'ops' disabled" in disabled and "410 Gone" in disabled
        assert "outbox retry --subscription ops" in disabled
        assert lines("is a dead letter") == []  # the 410 line says it: no line per row
        # Disabling again (another process hitting a 410 in flight) logs nothing more.
        assert rt.outbox.disable("ops", "410 Gone again") is False
        assert len(lines("disabled:")) == 1
    finally:
        other.close()
        rt.close()

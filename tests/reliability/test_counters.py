"""The outbox's counters (enqueued, delivered, retried, dead-lettered, dropped) follow every
event through a real dispatcher and receiver, survive purges, count `outbox retry` sensibly,
count events lost to an unwritable outbox, and show in `jobhooks outbox status` (both forms).

Runs against SQLite and, with ``JOBHOOKS_TEST_POSTGRES_URL`` set, PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobhooks_core import Subscription, metrics
from jobhooks_core.lifecycle import LifecycleSignal, Signal
from jobhooks_core.outbox import Outbox, SQLiteOutbox, Status
from jobhooks_core.outbox.postgres import PostgresOutbox
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.core.clitools import cli_env, run
from tests.outboxes import POSTGRES_URL, postgres_url
from tests.receiver import Reply, TestReceiver

ZERO = {"enqueued": 0, "delivered": 0, "retried": 0, "dead_lettered": 0, "dropped": 0}


@pytest.fixture(params=["sqlite", "postgres"])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An outbox URL of the test's own: a SQLite file, or a PostgreSQL schema (search_path)."""
    if request.param == "sqlite":
        yield str(tmp_path / "outbox.db")
        return
    postgres_url()  # skips, saying how to run it, without PostgreSQL
    import psycopg

    schema = f"jobhooks_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


Factory = Callable[..., Jobhooks]


@pytest.fixture
def runtime(outbox_url: str, tmp_path: Path) -> Iterator[Factory]:
    made: list[Jobhooks] = []

    def make(*subs: dict[str, Any], schedule: str = "0,0.05", **settings: Any) -> Jobhooks:
        values = {"JOBHOOKS_HOME": str(tmp_path), "JOBHOOKS_OUTBOX": outbox_url}
        rt = Jobhooks(
            settings=Settings.from_env(values, retry_schedule=schedule, poll_seconds=0.05,
                                       **settings),
            subscriptions=[Subscription.from_mapping(s.pop("name"), s) for s in subs],
            long_lived=True,
        )
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def receivers() -> Iterator[Callable[[], TestReceiver]]:
    started: list[TestReceiver] = []

    def start() -> TestReceiver:
        started.append(TestReceiver().start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def sink() -> Iterator[list[tuple[str, str, int]]]:
    """What the metrics hook hands on, recorded by a sink installed for the test."""
    seen: list[tuple[str, str, int]] = []
    metrics.install(lambda name, sub, n: seen.append((name, sub, n)))
    yield seen
    metrics.install(None)


def until(rt: Jobhooks, what: str, condition: Callable[[], bool], timeout: float = 15) -> None:
    """Wait (on the dispatcher's settle notifications) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened within {timeout:g} s: {what}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.05)


def counted(rt: Jobhooks, name: str) -> dict[str, int]:
    return rt.outbox.counters().get(name, dict(ZERO))


def in_flight(outbox: Outbox, name: str) -> int:
    """Rows of ``name`` still pending: what the counters say must be in the outbox."""
    c = outbox.counters().get(name, ZERO)
    return c["enqueued"] - c["delivered"] - c["dead_lettered"]


def test_counters_follow_events_through_retries_delivery_dead_letters_and_a_410(
    runtime: Factory, receivers: Callable[[], TestReceiver], sink: list[tuple[str, str, int]]
) -> None:
    flaky, down, gone = receivers(), receivers(), receivers()
    flaky.respond(Reply(500), Reply(503))  # then 200
    down.default = Reply(500)
    gone.default = Reply(410)
    rt = runtime({"name": "flaky", "url": flaky.url}, {"name": "down", "url": down.url},
                 {"name": "gone", "url": gone.url}, schedule="0,0.05,0.05")
    for i in range(3):
        rt.emit("failed", "work", f"job-{i}")
    until(rt, "every row settled", lambda: all(
        r.status is not Status.PENDING for r in rt.outbox.deliveries(limit=100)))
    assert counted(rt, "flaky") == {**ZERO, "enqueued": 3, "retried": 2, "delivered": 3}
    # Three attempts each, one request in flight at a time: 2 retries per event, then dead.
    assert counted(rt, "down") == {**ZERO, "enqueued": 3, "retried": 6, "dead_lettered": 3}
    assert counted(rt, "gone") == {**ZERO, "enqueued": 3, "dead_lettered": 3}
    assert len(gone.requests) == 1  # the 410 disabled it: the other two never went out
    # The metrics hook got the same increments, after each commit.
    totals: dict[tuple[str, str], int] = {}
    for name, sub, n in sink:
        totals[name, sub] = totals.get((name, sub), 0) + n
    for sub in ("flaky", "down", "gone"):
        for name, n in counted(rt, sub).items():
            assert totals.get((name, sub), 0) == n, (name, sub)
    assert totals["subscription_disabled", "gone"] == 1


def test_counters_survive_purging_the_delivered_rows(
    runtime: Factory, receivers: Callable[[], TestReceiver]
) -> None:
    receiver = receivers()
    rt = runtime({"name": "ops", "url": receiver.url})
    for i in range(5):
        rt.emit("synced", "work", f"job-{i}")
    until(rt, "five delivered", lambda: counted(rt, "ops")["delivered"] == 5)
    assert rt.outbox.purge(status=Status.DELIVERED) == 5
    assert rt.outbox.deliveries(limit=100) == []
    assert counted(rt, "ops") == {**ZERO, "enqueued": 5, "delivered": 5}


def test_a_dead_letter_sent_again_by_outbox_retry_counts_as_enqueued_again(
    runtime: Factory, receivers: Callable[[], TestReceiver]
) -> None:
    receiver = receivers()
    receiver.default = Reply(500)
    rt = runtime({"name": "ops", "url": receiver.url}, schedule="0")
    rt.emit("failed", "work", "a")
    rt.emit("failed", "work", "b")
    until(rt, "two dead letters", lambda: counted(rt, "ops")["dead_lettered"] == 2)
    receiver.default = Reply(204)
    assert rt.outbox.retry(subscription="ops") == 2
    rt.dispatcher.wake()
    until(rt, "both delivered", lambda: counted(rt, "ops")["delivered"] == 2)
    assert counted(rt, "ops") == {**ZERO, "enqueued": 4, "delivered": 2, "dead_lettered": 2}
    # The invariant the counting keeps: what is in flight is what is pending.
    assert in_flight(rt.outbox, "ops") == len(rt.outbox.deliveries(status=Status.PENDING)) == 0


def test_retrying_pending_rows_by_hand_counts_nothing(
    runtime: Factory, receivers: Callable[[], TestReceiver]
) -> None:
    rt = runtime({"name": "ops", "url": receivers().url})
    with rt.outbox.transaction() as tx:  # written, not yet attempted (no dispatcher)
        for i in range(3):
            tx.enqueue("ops", _event(rt, i))
    assert rt.outbox.retry() == 3
    assert counted(rt, "ops") == {**ZERO, "enqueued": 3}


def _event(rt: Jobhooks, i: int) -> Any:
    from jobhooks_core.events import Event

    return Event.create("failed", "work", f"job-{i}", source=rt.source, occurrence=str(i))


def test_one_transaction_adds_to_each_counter_in_a_single_row(
    runtime: Factory, receivers: Callable[[], TestReceiver]
) -> None:
    rt = runtime({"name": "a", "url": receivers().url}, {"name": "b", "url": receivers().url})
    with rt.outbox.transaction() as tx:
        for i in range(50):
            for sub in ("a", "b"):
                tx.enqueue(sub, _event(rt, i))
    with rt.outbox._read() as cur:
        cur.execute("SELECT subscription, counter, value FROM jobhooks_counters")
        stored = sorted(tuple(r) for r in cur.fetchall())
    assert stored == [("a", "enqueued", 50), ("b", "enqueued", 50)]


def test_events_lost_to_an_unwritable_outbox_are_logged_counted_and_stored_once_writable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sink: list[tuple[str, str, int]]
) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("")  # the outbox's directory is a file: nothing can be written
    subs = [Subscription.from_mapping("ops", {"url": "http://127.0.0.1:9/hooks"}),
            Subscription.from_mapping("audit", {"url": "http://127.0.0.1:9/audit",
                                                "verbs": ["failed"]})]
    settings = Settings.from_env({"JOBHOOKS_HOME": str(blocker)})
    rt = Jobhooks(settings=settings, subscriptions=subs)
    try:
        with caplog.at_level(logging.ERROR, logger="jobhooks"):
            assert rt.emit("failed", "work", "a") is None  # for ops and audit
            assert rt.emit("synced", "work", "b") is None  # for ops only
            # A signal lost before its events were decided: once per listening subscription.
            assert rt.signal(LifecycleSignal(Signal.RUN_STARTED, "c", occurrence="r1")) == []
        assert rt.dropped == 5
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(lines) == 3 and "dropped 2 event(s) for audit, ops" in lines[0]
        assert sorted(sink) == sorted([("dropped", "audit", 1), ("dropped", "ops", 1),
                                       ("dropped", "ops", 1), ("dropped", "audit", 1),
                                       ("dropped", "ops", 1)])
        blocker.unlink()  # writable again
        assert rt.emit("failed", "work", "d") is not None
        stored = rt.outbox.counters()
        assert {sub: (c["enqueued"], c["dropped"]) for sub, c in stored.items()} == {
            "ops": (1, 3), "audit": (1, 2)}
        # Stored once: another write adds no more drops.
        assert rt.emit("failed", "work", "e") is not None
        assert rt.outbox.counters()["ops"]["dropped"] == 3
        # Reported once, when they happened: storing them later sent nothing more.
        assert sum(n for name, _, n in sink if name == "dropped") == 5
    finally:
        rt.close()


def test_bad_input_refused_by_emit_is_not_counted_as_dropped(tmp_path: Path) -> None:
    rt = Jobhooks(settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}),
                  subscriptions=[Subscription.from_mapping("ops", {"url": "http://x.test/"})])
    try:
        assert rt.emit("exploded", "work", "a") is None
        assert rt.failures == 1 and rt.dropped == 0
    finally:
        rt.close()


def test_a_failing_metrics_sink_never_reaches_the_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(name: str, subscription: str, n: int) -> None:
        raise OSError("statsd socket closed")

    metrics.install(broken)
    rt = Jobhooks(settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}),
                  subscriptions=[Subscription.from_mapping("ops", {"url": "http://x.test/"})])
    try:
        with caplog.at_level(logging.DEBUG, logger="jobhooks"):
            with rt.outbox.transaction() as tx:
                tx.enqueue("ops", _event(rt, 1))
            with rt.outbox.transaction() as tx:
                tx.enqueue("ops", _event(rt, 2))
        assert rt.outbox.counters()["ops"]["enqueued"] == 2
        warnings = [r for r in caplog.records if "could not report a metric" in r.getMessage()]
        assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
    finally:
        metrics.install(None)
        rt.close()


def test_outbox_status_shows_the_counters_as_json_and_as_a_table(
    runtime: Factory, receivers: Callable[[], TestReceiver], outbox_url: str, tmp_path: Path
) -> None:
    ok, gone = receivers(), receivers()
    ok.respond(Reply(500))
    gone.default = Reply(410)
    rt = runtime({"name": "ops", "url": ok.url}, {"name": "old", "url": gone.url})
    for i in range(2):
        rt.emit("failed", "work", f"job-{i}")
    until(rt, "settled", lambda: counted(rt, "ops")["delivered"] == 2
          and counted(rt, "old")["dead_lettered"] == 2)
    rt.outbox.purge(status=Status.DELIVERED)
    env = cli_env(tmp_path / "cli-home", outbox=outbox_url)

    shown = run(["outbox", "status", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["counters"] == {"enqueued": 4, "delivered": 2, "retried": 1,
                                  "dead_lettered": 2, "dropped": 0, "disabled_subscriptions": 1}
    assert report["subscriptions"]["ops"]["counters"] == {
        **ZERO, "enqueued": 2, "delivered": 2, "retried": 1}
    assert report["subscriptions"]["ops"]["delivered"] == 0  # rows purged, counters kept
    assert report["subscriptions"]["old"]["counters"] == {
        **ZERO, "enqueued": 2, "dead_lettered": 2}
    assert report["subscriptions"]["old"]["disabled"] is True

    table = run(["outbox", "status"], env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.startswith("events since the outbox was created (1 subscription disabled)")
               for line in lines)
    assert "enqueued delivered   retried dead-lettered   dropped" in table.stdout
    assert [line.split() for line in lines if line.startswith(("ops ", "old ", "(total)"))][-3:] \
        == [["old", "2", "0", "0", "2", "0"], ["ops", "2", "2", "1", "0", "0"],
            ["(total)", "4", "2", "1", "2", "0"]]


def test_postgres_spreads_concurrent_counting_over_shards_and_sums_them() -> None:
    postgres_url()  # skips, saying how to run it, without PostgreSQL
    import psycopg

    schema = f"jobhooks_test_{uuid.uuid4().hex[:12]}"
    box = PostgresOutbox(POSTGRES_URL, schema=schema)
    try:
        from jobhooks_core.events import Event, Source

        source = Source("jobhooks", "t")
        for i in range(200):  # one transaction each: a shard each, at random
            with box.transaction() as tx:
                tx.enqueue("ops", Event.create("failed", "work", "x", source=source,
                                               occurrence=str(i)))
        with box._read() as cur:
            cur.execute("SELECT COUNT(*) FROM jobhooks_counters")
            rows = cur.fetchone()[0]
        assert 1 < rows <= PostgresOutbox.counter_shards
        assert box.counters()["ops"]["enqueued"] == 200
    finally:
        box.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_an_outbox_made_before_counters_existed_gets_them(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "outbox.db"
    SQLiteOutbox(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE jobhooks_counters")
    box = SQLiteOutbox(path)
    try:
        assert box.counters() == {}
        box.enqueue([("ops", _event_plain(1))])
        assert box.counters()["ops"]["enqueued"] == 1
    finally:
        box.close()


def _event_plain(i: int) -> Any:
    from jobhooks_core.events import Event, Source

    return Event.create("failed", "work", "x", source=Source("jobhooks", "t"), occurrence=str(i))

"""The outbox's behaviour, one suite run against both backends (SQLite and PostgreSQL).

PostgreSQL cases need ``JOBHOOKS_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1/test``);
each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_core.events import Event, Source
from jobhooks_core.exceptions import OutboxError
from jobhooks_core.outbox import Delivery, Outbox, Outcome, SQLiteOutbox, Status, batch_id_for
from jobhooks_core.outbox.postgres import PostgresOutbox
from jobhooks_core.vocabulary import SubjectType, Verb
from tests.outboxes import BACKENDS, POSTGRES_URL, backend

NOW = 1_800_000_000.0  # the fake clock: every call passes ``now`` explicitly
LEASE = 60.0
SOURCE = Source("airflow", "prod", "3.0.2")


def event(n: int, subject_id: str = "daily_export") -> Event:
    return Event.create(
        Verb.FAILED,
        SubjectType.WORK,
        subject_id,
        source=SOURCE,
        occurrence=f"run-{n}",
        data={"n": n, "note": "ünïcødé 🚀"},
        timestamp=dt.datetime(2027, 1, 15, 12, 0, n % 60, tzinfo=dt.UTC),
    )


def reopen(outbox: Outbox) -> Outbox:
    """A second outbox object (its own connections) on the same store as ``outbox``."""
    if isinstance(outbox, SQLiteOutbox):
        return SQLiteOutbox(outbox.path)
    assert isinstance(outbox, PostgresOutbox)
    return PostgresOutbox(POSTGRES_URL, schema=outbox.schema)


@pytest.fixture(params=BACKENDS)
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    with backend(request.param, tmp_path) as box:
        yield box


def enqueue(outbox: Outbox, *items: tuple[str, Event], now: float = NOW) -> list[Delivery]:
    """Enqueue ``items`` (one transaction) and return their rows."""
    outbox.enqueue(list(items), now=now)
    return outbox.deliveries(event_ids=[e.id for _, e in items], limit=len(items) * 2)


def row(outbox: Outbox, delivery_id: int) -> Delivery:
    (found,) = [d for d in outbox.deliveries(limit=10_000) if d.id == delivery_id]
    return found


def ids(rows: list[Delivery]) -> list[int]:
    return [r.id for r in rows]


# -- enqueue --------------------------------------------------------------------------------
def test_enqueue_drops_a_second_copy_of_the_same_event_for_a_subscription(outbox: Outbox) -> None:
    assert outbox.enqueue([("ops", event(1))], now=NOW) == 1
    assert outbox.enqueue([("ops", event(1))], now=NOW + 5) == 0
    with outbox.transaction(now=NOW + 10) as tx:
        assert tx.enqueue("ops", event(1)) is False
        assert (tx.enqueued, tx.duplicates) == (0, 1)
    assert len(outbox.deliveries()) == 1


def test_each_subscription_gets_its_own_row_for_one_event(outbox: Outbox) -> None:
    assert outbox.enqueue([("ops", event(1)), ("audit", event(1))], now=NOW) == 2
    assert sorted(d.subscription for d in outbox.deliveries()) == ["audit", "ops"]


def test_an_enqueued_row_is_pending_due_now_and_holds_the_event(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(7)))
    assert (d.status, d.attempts, d.next_attempt_at, d.created_at) == (Status.PENDING, 0, NOW, NOW)
    assert (d.batch_id, d.last_error, d.last_status, d.delivered_at) == (None, None, None, None)
    assert d.to_event() == event(7)


# -- claim ----------------------------------------------------------------------------------
def test_claim_returns_due_rows_oldest_first_up_to_the_limit(outbox: Outbox) -> None:
    for n in range(5):
        outbox.enqueue([("ops", event(n))], now=NOW + n)
    first = outbox.claim("ops", "a", now=NOW + 10, lease=LEASE, limit=3)
    assert [d.event_id for d in first] == [event(n).id for n in range(3)]
    rest = outbox.claim("ops", "a", now=NOW + 10, lease=LEASE, limit=3)
    assert [d.event_id for d in rest] == [event(3).id, event(4).id]


def test_claim_takes_only_the_asked_subscription(outbox: Outbox) -> None:
    enqueue(outbox, ("ops", event(1)), ("audit", event(2)))
    (d,) = outbox.claim("audit", "a", now=NOW, lease=LEASE, limit=10)
    assert d.event_id == event(2).id


def test_claim_skips_rows_not_yet_due(outbox: Outbox) -> None:
    enqueue(outbox, ("ops", event(1)), now=NOW + 30)
    assert outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10) == []
    assert len(outbox.claim("ops", "a", now=NOW + 30, lease=LEASE, limit=10)) == 1


def test_a_leased_row_is_skipped_by_another_owner_until_the_lease_expires(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    assert ids(outbox.claim("ops", "worker-1", now=NOW, lease=LEASE, limit=10)) == [d.id]
    assert outbox.claim("ops", "worker-2", now=NOW + LEASE - 1, lease=LEASE, limit=10) == []
    # worker-1 died mid-delivery: once its lease is over, another process retries the row.
    assert ids(outbox.claim("ops", "worker-2", now=NOW + LEASE + 1, lease=LEASE, limit=10)) == [
        d.id
    ]


def test_claim_with_event_ids_takes_only_those_events(outbox: Outbox) -> None:
    rows = enqueue(outbox, ("ops", event(1)), ("ops", event(2)), ("ops", event(3)))
    got = outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10, event_ids=[event(2).id])
    assert ids(got) == [rows[1].id]
    assert outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10, event_ids=[]) == []


# -- settle ---------------------------------------------------------------------------------
def test_a_delivered_row_records_the_attempt_and_is_not_claimed_again(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10)
    outbox.settle([Outcome(d.id, Status.DELIVERED, http_status=200)], now=NOW + 2)
    done = row(outbox, d.id)
    assert (done.status, done.attempts, done.delivered_at, done.last_status) == (
        Status.DELIVERED,
        1,
        NOW + 2,
        200,
    )
    assert outbox.claim("ops", "b", now=NOW + 10_000, lease=LEASE, limit=10) == []


def test_a_failed_row_counts_the_attempt_and_waits_for_its_retry_time(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10)
    failed = Outcome(d.id, Status.PENDING, "HTTP 500", 500, next_attempt_at=NOW + 300)
    outbox.settle([failed], now=NOW + 1)
    after = row(outbox, d.id)
    assert (after.status, after.attempts, after.next_attempt_at) == (Status.PENDING, 1, NOW + 300)
    assert (after.last_error, after.last_status, after.delivered_at) == ("HTTP 500", 500, None)
    assert outbox.claim("ops", "a", now=NOW + 299, lease=LEASE, limit=10) == []
    (again,) = outbox.claim("ops", "b", now=NOW + 300, lease=LEASE, limit=10)
    assert (again.id, again.attempts) == (d.id, 1)


def test_a_dead_row_keeps_its_error_and_is_never_claimed(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10)
    outbox.settle([Outcome(d.id, Status.DEAD, "HTTP 400: bad request", 400)], now=NOW + 1)
    dead = row(outbox, d.id)
    assert (dead.status, dead.attempts, dead.last_error, dead.last_status) == (
        Status.DEAD,
        1,
        "HTTP 400: bad request",
        400,
    )
    assert outbox.claim("ops", "b", now=NOW + 10_000, lease=LEASE, limit=10) == []


def test_a_late_outcome_from_a_lapsed_lease_never_reopens_or_recounts_a_row(
    outbox: Outbox,
) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.claim("ops", "slow", now=NOW, lease=LEASE, limit=10)
    # the slow process's lease runs out mid-request; another claims, delivers and settles it
    outbox.claim("ops", "fast", now=NOW + LEASE + 1, lease=LEASE, limit=10)
    outbox.settle([Outcome(d.id, Status.DELIVERED, http_status=200)], now=NOW + LEASE + 2)
    # then the slow one's request times out
    late = Outcome(d.id, Status.PENDING, "timeout", None, next_attempt_at=NOW + 3600)
    outbox.settle([late], now=NOW + LEASE + 3)
    after = row(outbox, d.id)
    assert (after.status, after.attempts, after.last_status) == (Status.DELIVERED, 1, 200)
    assert outbox.counters()["ops"]["delivered"] == 1
    assert outbox.counters()["ops"]["retried"] == 0


def test_a_released_row_is_untouched_and_claimable_at_once(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=10)
    outbox.settle([Outcome(d.id, None)], now=NOW + 1)
    assert row(outbox, d.id) == d
    assert ids(outbox.claim("ops", "b", now=NOW + 1, lease=LEASE, limit=10)) == [d.id]


def test_release_owner_gives_back_its_leases_only(outbox: Outbox) -> None:
    rows = enqueue(outbox, ("ops", event(1)), ("ops", event(2)), ("ops", event(3)))
    outbox.claim("ops", "a", now=NOW, lease=LEASE, limit=2)
    outbox.claim("ops", "b", now=NOW, lease=LEASE, limit=1)
    assert outbox.release_owner("a") == 2
    assert ids(outbox.claim("ops", "c", now=NOW + 1, lease=LEASE, limit=10)) == ids(rows[:2])


# -- batches --------------------------------------------------------------------------------
def batch(outbox: Outbox, owner: str, now: float) -> list[Delivery]:
    return outbox.claim_batch("digest", owner, now=now, lease=LEASE, batch_size=3, flush_seconds=60)


def test_no_batch_below_batch_size_before_the_flush_time(outbox: Outbox) -> None:
    enqueue(outbox, ("digest", event(1)), ("digest", event(2)))
    assert batch(outbox, "a", NOW + 59) == []
    assert outbox.next_batch_due("digest", 60) == NOW + 60


def test_a_full_batch_is_claimed_when_batch_size_rows_wait(outbox: Outbox) -> None:
    rows = enqueue(outbox, *(("digest", event(n)) for n in range(5)))
    got = batch(outbox, "a", NOW)
    assert ids(got) == ids(rows[:3])
    assert {d.batch_id for d in got} == {None}  # the id is written only if the batch fails
    assert batch_id_for(got) == batch_id_for(list(got))  # derived from its events: stable
    assert batch(outbox, "b", NOW) == []  # two left: below batch_size, before flush time


def test_a_partial_batch_is_claimed_once_the_oldest_row_waited_flush_seconds(
    outbox: Outbox,
) -> None:
    rows = enqueue(outbox, ("digest", event(1)), ("digest", event(2)))
    assert ids(batch(outbox, "a", NOW + 60)) == ids(rows)


def test_a_failed_batch_is_claimed_again_whole_with_the_same_batch_id(outbox: Outbox) -> None:
    enqueue(outbox, *(("digest", event(n)) for n in range(3)))
    first = batch(outbox, "a", NOW)
    retry_at = NOW + 300
    bid = batch_id_for(first)
    outbox.settle(
        [Outcome(d.id, Status.PENDING, "HTTP 503", 503, retry_at, bid) for d in first],
        now=NOW + 1,
    )
    assert batch(outbox, "b", retry_at - 1) == []
    enqueue(outbox, ("digest", event(9)))  # a newcomer does not join the failed batch
    again = batch(outbox, "b", retry_at)
    assert ids(again) == ids(first)
    assert {d.batch_id for d in again} == {bid} and batch_id_for(again) == bid
    assert {d.attempts for d in again} == {1}


def test_realtime_claim_leaves_failed_batch_rows_alone(outbox: Outbox) -> None:
    enqueue(outbox, *(("digest", event(n)) for n in range(3)))
    first = batch(outbox, "a", NOW)
    outbox.settle([Outcome(d.id, Status.PENDING, "500", 500, NOW, "b1") for d in first], now=NOW)
    assert outbox.claim("digest", "b", now=NOW, lease=LEASE, limit=10) == []


# -- disabled subscriptions -----------------------------------------------------------------
def test_disable_dead_letters_pending_rows_and_is_listed(outbox: Outbox) -> None:
    enqueue(outbox, ("ops", event(1)), ("ops", event(2)), ("audit", event(3)))
    outbox.disable("ops", "410 Gone from https://hooks.example", now=NOW + 5)
    assert outbox.disabled() == {"ops": (NOW + 5, "410 Gone from https://hooks.example")}
    dead = outbox.deliveries(subscription="ops")
    assert {d.status for d in dead} == {Status.DEAD}
    assert all("410 Gone" in (d.last_error or "") for d in dead)
    assert [d.status for d in outbox.deliveries(subscription="audit")] == [Status.PENDING]


def test_enable_undoes_disable_and_says_whether_it_did(outbox: Outbox) -> None:
    outbox.disable("ops", "410 Gone", now=NOW)
    assert outbox.enable("ops") is True
    assert outbox.disabled() == {}
    assert outbox.enable("ops") is False


# -- retry and purge ------------------------------------------------------------------------
def test_retry_makes_a_dead_row_pending_due_now_with_attempts_reset(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.settle([Outcome(d.id, Status.DEAD, "HTTP 500", 500)], now=NOW)
    assert outbox.retry(ids=[d.id], now=NOW + 10) == 1
    revived = row(outbox, d.id)
    assert (revived.status, revived.attempts, revived.next_attempt_at) == (
        Status.PENDING,
        0,
        NOW + 10,
    )
    assert ids(outbox.claim("ops", "a", now=NOW + 10, lease=LEASE, limit=10)) == [d.id]


def test_retry_makes_a_waiting_pending_row_due_now(outbox: Outbox) -> None:
    (d,) = enqueue(outbox, ("ops", event(1)))
    outbox.settle([Outcome(d.id, Status.PENDING, "timeout", None, NOW + 3600)], now=NOW)
    assert outbox.retry(now=NOW + 10) == 1
    (again,) = outbox.claim("ops", "a", now=NOW + 10, lease=LEASE, limit=10)
    assert again.attempts == 1  # a pending row keeps its schedule position


def test_retry_selects_by_id_by_subscription_or_all(outbox: Outbox) -> None:
    rows = enqueue(
        outbox, ("ops", event(1)), ("ops", event(2)), ("audit", event(3)), ("audit", event(4))
    )
    outbox.settle([Outcome(d.id, Status.DEAD, "HTTP 500", 500) for d in rows[:3]], now=NOW)
    outbox.settle([Outcome(rows[3].id, Status.DELIVERED, None, 200)], now=NOW)

    def statuses() -> list[Status]:
        return [row(outbox, d.id).status for d in rows]

    assert outbox.retry(ids=[rows[0].id], now=NOW + 1) == 1
    assert statuses() == [Status.PENDING, Status.DEAD, Status.DEAD, Status.DELIVERED]
    assert outbox.retry(subscription="audit", now=NOW + 1) == 1
    assert statuses() == [Status.PENDING, Status.DEAD, Status.PENDING, Status.DELIVERED]
    assert outbox.retry(now=NOW + 1) == 3  # every pending and dead row; delivered ones stay
    assert statuses() == [Status.PENDING, Status.PENDING, Status.PENDING, Status.DELIVERED]


def test_purge_deletes_only_rows_delivered_before_the_cutoff(outbox: Outbox) -> None:
    (old,) = enqueue(outbox, ("ops", event(1)), now=NOW)
    (young,) = enqueue(outbox, ("ops", event(2)), now=NOW)  # created as early, delivered late
    (waiting,) = enqueue(outbox, ("ops", event(3)), now=NOW)
    (dead,) = enqueue(outbox, ("ops", event(4)), now=NOW)
    outbox.settle(
        [
            Outcome(old.id, Status.DELIVERED, None, 200),
            Outcome(dead.id, Status.DEAD, "HTTP 400", 400),
        ],
        now=NOW + 10,
    )
    outbox.settle([Outcome(young.id, Status.DELIVERED, None, 200)], now=NOW + 100)
    assert outbox.purge(older_than=50, now=NOW + 120) == 1
    assert sorted(ids(outbox.deliveries())) == sorted([young.id, waiting.id, dead.id])


# -- reporting ------------------------------------------------------------------------------
def test_an_empty_outbox_has_no_counts_and_no_oldest_pending(outbox: Outbox) -> None:
    assert outbox.counts() == {}
    assert outbox.oldest_pending() is None


def test_counts_per_subscription_and_status_and_the_oldest_pending(outbox: Outbox) -> None:
    (delivered,) = enqueue(outbox, ("ops", event(1)), now=NOW)
    enqueue(outbox, ("ops", event(2)), now=NOW + 10)
    enqueue(outbox, ("audit", event(3)), ("audit", event(4)), now=NOW + 20)
    outbox.settle([Outcome(delivered.id, Status.DELIVERED, None, 200)], now=NOW + 30)
    assert outbox.counts() == {
        "ops": {"pending": 1, "delivered": 1, "dead": 0},
        "audit": {"pending": 2, "delivered": 0, "dead": 0},
    }
    assert outbox.oldest_pending() == NOW + 10


# -- the transaction: WorkState and atomicity -----------------------------------------------
def test_installed_at_is_recorded_by_the_first_transaction_and_then_stable(
    outbox: Outbox,
) -> None:
    with outbox.transaction(now=NOW) as tx:
        first = tx.installed_at()
    with outbox.transaction(now=NOW + 86_400) as tx:
        assert tx.installed_at() == first
    assert first == dt.datetime.fromtimestamp(NOW, dt.UTC)


def test_a_fact_is_claimed_once_and_release_rearms_it(outbox: Outbox) -> None:
    with outbox.transaction(now=NOW) as tx:
        assert tx.claim("daily_export", "started") is True
        assert tx.claim("daily_export", "started") is False
        assert tx.claim("weekly_export", "started") is True
    with outbox.transaction(now=NOW + 1) as tx:
        assert tx.claim("daily_export", "started") is False
        tx.release("daily_export", "started")
    with outbox.transaction(now=NOW + 2) as tx:
        assert tx.claim("daily_export", "started") is True


def test_a_transaction_that_raises_leaves_nothing_behind(outbox: Outbox) -> None:
    with pytest.raises(RuntimeError, match="host crashed"), outbox.transaction(now=NOW) as tx:
        assert tx.claim("daily_export", "started") is True
        assert tx.enqueue("ops", event(1)) is True
        raise RuntimeError("host crashed")
    assert outbox.deliveries() == []
    with outbox.transaction(now=NOW) as tx:
        assert tx.claim("daily_export", "started") is True


# -- concurrency ----------------------------------------------------------------------------
def test_concurrent_claimers_never_get_the_same_row(outbox: Outbox) -> None:
    rows, threads, limit = 400, 4, 7
    outbox.enqueue([("ops", event(n, f"job-{n}")) for n in range(rows)], now=NOW)
    other = reopen(outbox)
    claimed: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    # Every round, all threads claim at once: the claims really race, and each thread gets rows.
    rounds = -(-rows // (threads * limit)) + 1
    together = threading.Barrier(threads, timeout=60)

    def claimer(index: int) -> None:
        box = outbox if index % 2 else other  # two outboxes, two threads (connections) each
        try:
            for _ in range(rounds):
                together.wait()
                got = box.claim("ops", f"worker-{index}", now=NOW, lease=LEASE, limit=limit)
                claimed[index] += ids(got)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            together.abort()

    workers = [threading.Thread(target=claimer, args=(i,)) for i in range(threads)]
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=120)
    finally:
        other.close()
    assert errors == []
    every = [i for per_thread in claimed for i in per_thread]
    assert len(every) == len(set(every)) == rows
    assert sorted(every) == sorted(ids(outbox.deliveries(limit=rows + 1)))
    assert all(claimed)


def test_an_outbox_works_again_after_close_with_connections_from_finished_threads(
    outbox: Outbox,
) -> None:
    worker = threading.Thread(target=outbox.enqueue, args=([("ops", event(1))], NOW))
    worker.start()
    worker.join()
    outbox.close()  # closes this thread's connection and the finished worker's
    assert outbox.counts() == {"ops": {"pending": 1, "delivered": 0, "dead": 0}}


# -- PostgreSQL only: URLs, the optional dependency, lost connections ----------------------
def test_postgres_error_messages_name_the_url_without_its_credentials() -> None:
    # Port 1: nothing listens, so the connection is refused without needing a server.
    box = PostgresOutbox(
        "postgresql://hooks:s3cr%40t@127.0.0.1:1/jobs?password=s3cr@t&sslmode=disable"
    )
    assert box.url == "postgresql://127.0.0.1:1/jobs?sslmode=disable"
    with pytest.raises(OutboxError) as info:
        box.counts()
    message = str(info.value)
    assert box.url in message
    assert "s3cr" not in message and "hooks" not in message
    box.close()


def test_postgres_outbox_without_psycopg_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("jobhooks_core.outbox.postgres.psycopg", None)
    with pytest.raises(OutboxError, match=r"jobhooks\[postgres\]"):
        PostgresOutbox("postgresql://hooks:s3cret@db.example/jobs")


@pytest.mark.parametrize("outbox", ["postgres"], indirect=True)
def test_postgres_outbox_reconnects_after_its_connection_is_lost(outbox: Outbox) -> None:
    import psycopg

    assert isinstance(outbox, PostgresOutbox)

    enqueue(outbox, ("ops", event(1)))
    pid = outbox._connection().info.backend_pid
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The call that meets the dead connection fails cleanly; the next one reconnects.
    with pytest.raises(OutboxError, match="PostgreSQL outbox"):
        outbox.counts()
    assert outbox.counts() == {"ops": {"pending": 1, "delivered": 0, "dead": 0}}

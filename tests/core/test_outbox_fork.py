"""The outbox in hosts that fork (Airflow's executor workers, task processes and DAG parsers):
a child forked while the parent's threads use the outbox works with it, and the parent keeps
working with its own connections."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_core.events import Event, Source
from jobhooks_core.outbox import Outbox, SQLiteOutbox
from jobhooks_core.outbox.postgres import PostgresOutbox
from tests.outboxes import POSTGRES_URL, postgres_url

SOURCE = Source("airflow", "fork", "3.3.2")


def event(n: int, who: str) -> Event:
    return Event.create("synced", "work", f"{who}-{n}", source=SOURCE, occurrence=str(n))


def run_children(outbox: Outbox, children: int, rows: int, timeout: float = 10) -> int:
    """Fork ``children`` that each enqueue ``rows`` through ``outbox``; how many finished."""
    finished = 0
    for child in range(children):
        pid = os.fork()
        if pid == 0:  # the child: use the inherited outbox object, then leave without cleanup
            code = 1
            try:
                outbox.enqueue([("ops", event(n, f"child{child}")) for n in range(rows)])
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                finished += os.waitstatus_to_exitcode(status) == 0
                break
            if time.monotonic() > deadline:  # hung: the failure this test is about
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.005)
    return finished


@pytest.fixture
def busy_parent(tmp_path: Path) -> Iterator[tuple[SQLiteOutbox, list[int]]]:
    """A SQLite outbox two threads of this process write to and read from without pause."""
    outbox = SQLiteOutbox(tmp_path / "outbox.db")
    stop = threading.Event()
    written = [0]

    def churn(name: str) -> None:
        n = 0
        while not stop.is_set():
            outbox.enqueue([("ops", event(n, name))])
            outbox.deliveries(limit=5)
            n += 1
            written[0] += 1

    threads = [threading.Thread(target=churn, args=(f"t{i}",), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield outbox, written
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        outbox.close()


def test_children_forked_while_threads_use_sqlite_never_hang(
    busy_parent: tuple[SQLiteOutbox, list[int]],
) -> None:
    outbox, _ = busy_parent
    assert run_children(outbox, children=25, rows=5) == 25
    rows = outbox.deliveries(limit=1_000_000)
    assert sum(r.event["subject_id"].startswith("child") for r in rows) == 25 * 5


def test_the_parent_keeps_using_its_connections_after_forking(
    busy_parent: tuple[SQLiteOutbox, list[int]],
) -> None:
    outbox, written = busy_parent
    run_children(outbox, children=3, rows=1)
    before = written[0]
    deadline = time.monotonic() + 10
    while written[0] < before + 20:
        assert time.monotonic() < deadline, "the parent's threads stopped writing after fork"
        time.sleep(0.01)


def test_a_postgres_child_does_not_end_its_parents_session() -> None:
    postgres_url()  # skips, saying how to run it, without PostgreSQL
    import psycopg
    from psycopg import sql

    schema = f"jobhooks_fork_{os.getpid()}"
    outbox = PostgresOutbox(POSTGRES_URL, schema=schema)
    try:
        outbox.enqueue([("ops", event(0, "parent"))])  # the parent's connection is open
        assert run_children(outbox, children=3, rows=2) == 3
        outbox.enqueue([("ops", event(1, "parent"))])  # and still works
        assert len(outbox.deliveries(limit=100)) == 2 + 3 * 2
    finally:
        outbox.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

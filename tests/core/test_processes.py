"""Several real processes sharing one outbox: a crash right after `emit` returns, eight writers
at once on SQLite, two relays on PostgreSQL, a relay stopped by SIGTERM."""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_core import Event, Source
from jobhooks_core.outbox import open_outbox
from tests.core.clitools import JOBHOOKS, cli_env, write_config
from tests.outboxes import postgres_url
from tests.receiver import Reply, TestReceiver

EMITTER = """
import os, signal, sys
from jobhooks_core.runtime import Jobhooks
rt = Jobhooks()
n, mode = int(sys.argv[1]), sys.argv[2]
if mode == "gate":
    sys.stdin.readline()  # every writer starts at once
for i in range(n):
    event = rt.emit("synced", "work", f"{os.getpid()}-{i}", data={"i": i})
    print(event.id if event else "FAILED", flush=True)
if mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)  # right after emit returned: nothing flushed
rt.close()
print(f"failures={rt.failures}", flush=True)
"""


def emitter(env: dict[str, str], n: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", EMITTER, str(n), mode], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def counts(receiver: TestReceiver) -> collections.Counter[str]:
    return collections.Counter(
        r.headers["webhook-id"] for r in receiver.requests if r.method == "POST")


def relay(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([JOBHOOKS, "relay"], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert "jobhooks relay: delivering" in proc.stdout.readline()
    return proc


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_events_of_a_process_killed_right_after_emit_are_delivered_once_by_another(
    tmp_path: Path, free_port: int
) -> None:
    url = f"http://127.0.0.1:{free_port}/hooks"
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": url, "timeout_seconds": 1})
    env = cli_env(tmp_path / "home", config, lease_seconds="1")
    proc = emitter(env, 25, "kill")  # the receiver is down: the emitter cannot deliver
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ids = out.split()
    assert len(set(ids)) == 25 and "FAILED" not in ids

    with TestReceiver(port=free_port) as receiver:
        survivor = relay(env)
        try:
            receiver.wait_for(25, timeout=30)
        finally:
            assert stop(survivor) == 0
        assert counts(receiver) == {i: 1 for i in ids}


def test_eight_processes_emitting_at_once_lose_nothing(tmp_path: Path,
                                                        receiver: TestReceiver) -> None:
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": receiver.url})
    env = cli_env(tmp_path / "home", config)
    procs = [emitter(env, 40, "gate") for _ in range(8)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    ids: list[str] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        lines = out.split()
        assert lines[-1] == "failures=0"  # no "database is locked", nothing dropped
        ids += lines[:-1]
    assert len(set(ids)) == 320
    leftovers = relay(env)  # whatever a writer's flush window left behind
    try:
        receiver.wait_for(320, timeout=60)
    finally:
        assert stop(leftovers) == 0
    assert counts(receiver) == {i: 1 for i in ids}


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    base = postgres_url()
    import psycopg

    name = f"jobhooks_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_two_relays_sharing_a_postgres_outbox_deliver_each_event_once(
    tmp_path: Path, receiver: TestReceiver, postgres_database: str
) -> None:
    receiver.default = Reply(204, delay=0.005)  # slow enough for both relays to take turns
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": receiver.url})
    env = cli_env(tmp_path / "home", config, outbox=postgres_database)
    outbox = open_outbox(postgres_database)
    source = Source("test")
    events = [Event.create("synced", "work", f"w{i}", source=source, occurrence="r")
              for i in range(300)]
    outbox.enqueue([("ops", e) for e in events])
    outbox.close()
    relays = [relay(env), relay(env)]
    try:
        receiver.wait_for(300, timeout=60)
    finally:
        assert [stop(r) for r in relays] == [0, 0]
    assert counts(receiver) == {e.id: 1 for e in events}


def test_relay_stops_on_sigterm_and_gives_back_its_leases(tmp_path: Path,
                                                         receiver: TestReceiver) -> None:
    receiver.default = Reply.hang()
    config = write_config(tmp_path / "c.json",
                          {"name": "ops", "url": receiver.url, "timeout_seconds": 60})
    env = cli_env(tmp_path / "home", config)
    outbox = open_outbox(str(tmp_path / "home" / "outbox.db"))
    outbox.enqueue([("ops", Event.create("failed", "work", f"w{i}", source=Source("t"),
                                         occurrence="r")) for i in range(3)])
    proc = relay(env)
    receiver.wait_for(1)  # the relay holds leases and waits on a receiver that never answers
    assert stop(proc) == 0
    with sqlite3.connect(tmp_path / "home" / "outbox.db") as db:
        leased = db.execute("SELECT COUNT(*) FROM jobhooks_deliveries WHERE lease_owner IS NOT "
                            "NULL").fetchone()[0]
        pending = db.execute("SELECT COUNT(*) FROM jobhooks_deliveries WHERE status = "
                             "'pending'").fetchone()[0]
    assert leased == 0 and pending == 3

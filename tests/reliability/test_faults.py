"""Faults, nothing lost: every event ``emit`` accepted arrives (or waits in the outbox) through a
receiver that is down for several retries, a relay SIGKILLed in the middle of a batch, a full
disk and an unwritable outbox; a corrupt outbox file gets a clear error and a recovery that works.

Each test counts what a reliability table needs: events sent, delivered, duplicated, lost.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobhooks_core import Event, Source
from jobhooks_core.outbox import Delivery, Status, open_outbox
from tests.core.clitools import cli_env, run, write_config
from tests.core.test_processes import relay, stop
from tests.receiver import Reply, TestReceiver

SCHEDULE = "0,0.2,0.4,0.8,1.6"  # five attempts over 3 s: the real schedule, compressed

EMITTER = """
import sys
from jobhooks_core.runtime import Jobhooks
rt = Jobhooks()
n, verb, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    event = rt.emit(verb, "work", f"{prefix}-{i}", data={"i": i})
    print(event.id if event else "FAILED", flush=True)
rt.close()
print(f"failures={rt.failures}", flush=True)
"""


@dataclass(frozen=True)
class Tally:
    """What a receiver got of the events sent: the figures of the reliability table."""

    sent: int
    delivered: int  # distinct events that arrived
    duplicated: int  # arrivals beyond the first of an event
    lost: int  # sent, never arrived

    @classmethod
    def of(cls, sent: Sequence[str], receiver: TestReceiver) -> Tally:
        arrived = collections.Counter(receiver.event_ids())
        return cls(
            sent=len(sent),
            delivered=sum(1 for e in sent if arrived[e]),
            duplicated=sum(n - 1 for n in arrived.values()),
            lost=sum(1 for e in sent if not arrived[e]),
        )


def emitted(env: dict[str, str], n: int, verb: str = "failed", prefix: str = "work") -> list[str]:
    """The ids of ``n`` events emitted by a short-lived process that exits cleanly."""
    proc = subprocess.run([sys.executable, "-c", EMITTER, str(n), verb, prefix], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *ids, failures = proc.stdout.split()
    assert failures == "failures=0" and len(set(ids)) == n
    return ids


def rows(home: Path, ids: Sequence[str] = (), name: str = "outbox.db") -> list[Delivery]:
    """The outbox rows (of the events ``ids``) as they stand."""
    outbox = open_outbox(str(home / name))
    try:
        return outbox.deliveries(event_ids=list(ids) or None, limit=100_000)
    finally:
        outbox.close()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened within {timeout:g} s: {what}"
        time.sleep(0.05)


def test_receiver_down_through_several_retries_then_back_gets_every_event_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with TestReceiver() as receiver:
        config = write_config(tmp_path / "c.json",
                              {"name": "ops", "url": receiver.url, "timeout_seconds": 2})
        # A short flush window: the emitting process makes an attempt, the relay retries.
        env = cli_env(home, config, retry_schedule=SCHEDULE, flush_timeout="0.3")
        relayed = relay(env)
        try:
            before = emitted(env, 10, prefix="before")
            poll("the first ten delivered",
                 lambda: all(r.status is Status.DELIVERED for r in rows(home, before)))
            receiver.stop()  # down: connection refused
            during = emitted(env, 10, prefix="during")  # accepted while the receiver is down
            poll("three refused attempts for each event emitted while down",
                 lambda: all(r.attempts >= 3 for r in rows(home, during)))
            assert not [r for r in rows(home) if r.status is Status.DEAD]
            receiver.start()  # back, at the same URL
            poll("every row delivered",
                 lambda: all(r.status is Status.DELIVERED for r in rows(home)))
        finally:
            assert stop(relayed) == 0
        _, log = relayed.communicate(timeout=30)
    sent = before + during
    assert Tally.of(sent, receiver) == Tally(sent=20, delivered=20, duplicated=0, lost=0)
    assert all(r.attempts >= 4 for r in rows(home, during))
    assert "subscription 'ops' is failing" in log and "is delivering again" in log


def test_relay_killed_mid_batch_redelivers_only_the_batch_that_reached_the_receiver(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with TestReceiver() as receiver:
        receiver.respond(Reply.hang())  # the first batch reaches it and is never answered
        config = write_config(tmp_path / "c.json", {
            "name": "ops", "url": receiver.url, "mode": "batch", "batch_size": 10,
            "batch_flush_seconds": 0.2, "timeout_seconds": 3})
        env = cli_env(home, config, lease_seconds="1")
        sent = emitted(env, 25)  # short-lived: leaves batches to a long-lived dispatcher
        first = relay(env)
        try:
            (hung,) = receiver.wait_for(1)
        finally:
            first.send_signal(signal.SIGKILL)  # mid-request: its rows stay leased
        assert first.wait(timeout=30) == -signal.SIGKILL
        second = relay(env)  # takes over once the dead relay's leases expire
        try:
            poll("every row delivered",
                 lambda: all(r.status is Status.DELIVERED for r in rows(home)))
        finally:
            assert stop(second) == 0
    in_flight = [e["id"] for e in receiver.events()[:10]]
    assert in_flight == sent[:10]  # the oldest ten, as one batch
    assert Tally.of(sent, receiver) == Tally(sent=25, delivered=25, duplicated=10, lost=0)
    arrived = collections.Counter(receiver.event_ids())
    assert arrived == {e: 2 if e in in_flight else 1 for e in sent}
    again = [r for r in receiver.requests[1:] if r.headers["webhook-id"] ==
             hung.headers["webhook-id"]]
    assert len(again) == 1  # re-formed as the same batch: a receiver can drop it by webhook-id


FULL_DISK = """
import resource, signal
from jobhooks_core.runtime import Jobhooks
rt = Jobhooks()
before = [rt.emit("failed", "work", f"before-{i}") for i in range(10)]
print(" ".join(e.id for e in before if e), flush=True)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))  # the disk is full
after = [rt.emit("failed", "work", f"after-{i}") for i in range(5)]
print(sum(e is None for e in after), rt.failures, flush=True)
print("the job goes on", flush=True)
"""


def test_full_disk_drops_new_events_with_an_error_and_keeps_what_the_outbox_holds(
    tmp_path: Path,
) -> None:
    home, port = tmp_path / "home", free_port()
    config = write_config(tmp_path / "c.json", {
        "name": "ops", "url": f"http://127.0.0.1:{port}/hooks", "timeout_seconds": 1})
    env = cli_env(home, config, lease_seconds="1", flush_timeout="0.5")
    host = subprocess.run([sys.executable, "-c", FULL_DISK], env=env, capture_output=True,
                          text=True, timeout=60)
    assert host.returncode == 0, host.stderr
    ids, dropped, *rest = host.stdout.splitlines()
    assert dropped == "5 5" and rest == ["the job goes on"]  # emit returned None, counted
    outbox = home / "outbox.db"
    for i in range(5):  # each loss logged as an error naming the event and the outbox
        line = next(x for x in host.stderr.splitlines() if f"'after-{i}')" in x)
        assert "could not record emit('failed', 'work', 'after-" in line
        assert f"SQLite outbox {str(outbox)!r}: disk I/O error" in line
    assert "Traceback" not in host.stderr
    # the dispatcher's failing turns (every turn, while the disk is full) are logged once
    turns = [x for x in host.stderr.splitlines() if "delivering to subscription 'ops'" in x]
    assert len(turns) <= 1, turns

    with TestReceiver(port=port) as receiver:  # space again: a relay delivers what was kept
        relayed = relay(env)
        try:
            poll("every row delivered",
                 lambda: all(r.status is Status.DELIVERED for r in rows(home)))
        finally:
            assert stop(relayed) == 0
    sent = ids.split()
    assert len(rows(home)) == 10
    assert Tally.of(sent, receiver) == Tally(sent=10, delivered=10, duplicated=0, lost=0)


NIGHTLY = """
from jobhooks_core.runtime import Jobhooks
rt = Jobhooks()
events = [rt.emit("failed", "work", f"nightly-{i}") for i in range(3)]
print(sum(e is None for e in events), rt.failures, flush=True)
print("the job goes on", flush=True)
"""


def test_an_outbox_that_cannot_be_created_loses_events_with_an_error_not_the_job(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # JOBHOOKS_HOME under a regular file: no chmod stops root
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": "http://127.0.0.1:9/"})
    env = cli_env(blocker / "home", config)
    host = subprocess.run([sys.executable, "-c", NIGHTLY], env=env, capture_output=True,
                          text=True, timeout=60)
    assert host.returncode == 0, host.stderr
    assert host.stdout.splitlines() == ["3 3", "the job goes on"]
    errors = host.stderr.splitlines()
    for i in range(3):
        line = next(x for x in errors if f"'nightly-{i}')" in x)
        assert f"cannot open the SQLite outbox {str(blocker / 'home' / 'outbox.db')!r}" in line
        assert "Not a directory" in line and "(no effect on the job)" in line
    assert "Traceback" not in host.stderr


NOT_A_DATABASE = "is not a jobhooks outbox / SQLite database (file is not a database)"


def test_a_garbage_outbox_file_gets_a_clear_error_from_emit_and_every_command(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    outbox = home / "outbox.db"
    outbox.write_bytes(b"this is not an outbox\n" * 200)
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": "http://127.0.0.1:9/"})
    env = cli_env(home, config)

    host = subprocess.run([sys.executable, "-c", NIGHTLY], env=env, capture_output=True,
                          text=True, timeout=60)
    assert host.returncode == 0 and host.stdout.splitlines() == ["3 3", "the job goes on"]
    assert host.stderr.count(NOT_A_DATABASE) == 3 and "Traceback" not in host.stderr

    for command in (["outbox", "status"], ["outbox", "list"], ["relay"], ["check"]):
        result = run(command, env, timeout=30)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"{str(outbox)!r}: it {NOT_A_DATABASE}" in result.stderr, command
        assert f"mv {outbox} {outbox}.corrupt" in result.stderr, command
        assert "Traceback" not in result.stderr, command

    outbox.rename(tmp_path / "aside.db")  # the documented first step: a new outbox is created
    assert run(["outbox", "status"], env).returncode == 0


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="needs the sqlite3 command")
def test_a_truncated_outbox_is_recovered_by_the_commands_its_error_gives(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    outbox = home / "outbox.db"
    writer = open_outbox(str(outbox))
    events = [Event.create("failed", "work", f"w{i}", source=Source("test"), occurrence="r",
                           data={"pad": "x" * 400}) for i in range(400)]
    writer.enqueue([("ops", e) for e in events])
    writer.close()  # the last connection checkpoints: every row is in outbox.db
    pages = outbox.stat().st_size // 4096
    with outbox.open("r+b") as f:
        f.truncate(pages // 2 * 4096)  # half the file gone (a copy cut short, say)

    with TestReceiver() as receiver:
        config = write_config(tmp_path / "c.json", {"name": "ops", "url": receiver.url})
        env = cli_env(home, config)
        status = run(["outbox", "status"], env)
        assert status.returncode == 1
        assert "(database disk image is malformed)" in status.stderr
        move, recover, deliver = re.findall(r"`([^`]+)`", status.stderr)
        for step in (move, recover):
            done = subprocess.run(["bash", "-o", "pipefail", "-c", step], capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, (step, done.stderr)
        assert run(["outbox", "status"], env).returncode == 0  # a new, empty outbox
        setting, command = deliver.split(" ", 1)
        assert command == "jobhooks relay" and setting.startswith("JOBHOOKS_OUTBOX=")
        recovered = Path(setting.removeprefix("JOBHOOKS_OUTBOX="))
        kept = [r.event_id for r in rows(recovered.parent, name=recovered.name)]
        relayed = relay({**env, "JOBHOOKS_OUTBOX": str(recovered)})
        try:
            poll("every recovered row delivered", lambda: all(
                r.status is Status.DELIVERED
                for r in rows(recovered.parent, name=recovered.name)))
        finally:
            assert stop(relayed) == 0
    sent = [e.id for e in events]
    assert 0 < len(kept) < len(sent) and set(kept) <= set(sent)
    assert Tally.of(kept, receiver) == Tally(sent=len(kept), delivered=len(kept), duplicated=0,
                                            lost=0)


def test_an_outbox_damaged_mid_file_gets_the_clear_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    outbox = home / "outbox.db"
    writer = open_outbox(str(outbox))
    writer.enqueue([("ops", Event.create("failed", "work", f"w{i}", source=Source("test"),
                                         occurrence="r", data={"pad": "x" * 400}))
                    for i in range(400)])
    writer.close()
    pages = outbox.stat().st_size // 4096
    with outbox.open("r+b") as f:  # the header is intact, so it opens; the rows are not
        for page in range(2, pages):
            f.seek(page * 4096)
            f.write(b"\xde\xad\xbe\xef" * 1024)

    env = cli_env(home, write_config(tmp_path / "c.json", {"name": "ops",
                                                          "url": "http://127.0.0.1:9/"}))
    for command in (["outbox", "status"], ["outbox", "list"]):
        result = run(command, env, timeout=30)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert str(outbox) in result.stderr and "malformed" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, command

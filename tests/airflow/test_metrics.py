"""jobhooks' counters arrive as Airflow StatsD metrics: a real UDP socket on 127.0.0.1 is the
StatsD server, Airflow's [metrics] settings point at it, and an Airflow process of its own
(Stats is set up once per process, as each Airflow component does at start) delivers through
the real dispatcher to a real receiver."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receiver import Reply, TestReceiver

# Airflow sends StatsD through the statsd package (apache-airflow[statsd]; a dev dependency).
pytest.importorskip("statsd", reason="Airflow's StatsD metrics need the statsd package")

# An Airflow component's start, then jobhooks in it: the scheduler and the task runner each set
# up their own Stats (airflow-core's and the Task SDK's) before anything reports.
PROCESS = """
import sys, time
role = sys.argv[1]
if role == "task":
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils
else:
    from airflow._shared.observability.metrics import stats
    from airflow.configuration import conf
    from airflow.observability.metrics import stats_utils
stats.initialize(factory=stats_utils.get_stats_factory(),
                 export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))

from jobhooks_airflow import process
from jobhooks_core.outbox import Status

here = process.current()
if role == "task":
    from airflow.sdk.execution_time.task_runner import TaskRunnerMarker
    from jobhooks_airflow.listener import listener
    listener.on_starting(TaskRunnerMarker())
else:
    here.role = role
runtime = here.runtime()
runtime.emit("failed", "work", "daily_export")
deadline = time.monotonic() + 30
while any(r.status is Status.PENDING for r in runtime.outbox.deliveries(limit=100)):
    assert time.monotonic() < deadline, runtime.outbox.deliveries(limit=100)
    time.sleep(0.05)
here.stopping()
print("done", flush=True)
"""

EXPECTED = {"enqueued", "retried", "delivered", "dead_lettered", "subscription_disabled"}


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    """A StatsD server: a UDP socket on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        yield sock


def received(sock: socket.socket, until: set[str], timeout: float = 30) -> list[str]:
    """StatsD lines received until every line of ``until`` has arrived (or ``timeout``)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not until <= set(lines) and time.monotonic() < deadline:
        try:
            datagram = sock.recv(65536)
        except TimeoutError:
            continue
        lines += datagram.decode().splitlines()
    return lines


def airflow_process(role: str, tmp_path: Path, statsd: socket.socket, *, tags: bool,
                    ok: TestReceiver, gone: TestReceiver, statsd_on: bool = True
                    ) -> subprocess.Popen[str]:
    config = tmp_path / "subscriptions.json"
    config.write_text(json.dumps({"subscriptions": [
        {"name": "ops", "url": ok.url}, {"name": "legacy-crm", "url": gone.url}]}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JOBHOOKS_", "AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__METRICS__STATSD_ON": str(statsd_on),
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": str(tags),
        "JOBHOOKS_HOME": str(tmp_path / "jobhooks"),
        "JOBHOOKS_CONFIG": str(config),
        "JOBHOOKS_RETRY_SCHEDULE": "0,0.05",
    })
    return subprocess.Popen([sys.executable, "-c", PROCESS, role], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("role", ["scheduler", "task"])
def test_deliveries_retries_and_a_410_arrive_as_statsd_counters_named_per_subscription(
    role: str, tmp_path: Path, statsd: socket.socket
) -> None:
    with TestReceiver() as ok, TestReceiver() as gone:
        ok.respond(Reply(500))  # one failed attempt, then delivered
        gone.default = Reply(410)
        proc = airflow_process(role, tmp_path, statsd, tags=False, ok=ok, gone=gone)
        expected = {
            "airflow.jobhooks.enqueued:1|c", "airflow.jobhooks.retried:1|c",
            "airflow.jobhooks.delivered:1|c", "airflow.jobhooks.dead_lettered:1|c",
            "airflow.jobhooks.subscription_disabled:1|c",
            # legacy_names_on (Airflow's default): the subscription in the name too
            "airflow.jobhooks.delivered.ops:1|c", "airflow.jobhooks.retried.ops:1|c",
            "airflow.jobhooks.enqueued.legacy-crm:1|c",
            "airflow.jobhooks.dead_lettered.legacy-crm:1|c",
        }
        lines = received(statsd, expected)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.splitlines()[-1:] == ["done"], err
    assert expected <= set(lines), f"missing {expected - set(lines)}; got {lines}"
    assert lines.count("airflow.jobhooks.enqueued:1|c") == 2  # one per subscription


def test_with_influxdb_tags_the_subscription_is_a_tag(tmp_path: Path,
                                                        statsd: socket.socket) -> None:
    with TestReceiver() as ok, TestReceiver() as gone:
        gone.default = Reply(410)
        proc = airflow_process("task", tmp_path, statsd, tags=True, ok=ok, gone=gone)
        expected = {
            "airflow.jobhooks.enqueued,subscription=ops:1|c",
            "airflow.jobhooks.delivered,subscription=ops:1|c",
            "airflow.jobhooks.dead_lettered,subscription=legacy-crm:1|c",
            "airflow.jobhooks.subscription_disabled,subscription=legacy-crm:1|c",
        }
        lines = received(statsd, expected)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.splitlines()[-1:] == ["done"], err
    assert expected <= set(lines), f"missing {expected - set(lines)}; got {lines}"


def test_without_airflow_metrics_configured_nothing_is_sent_and_delivery_goes_on(
    tmp_path: Path, statsd: socket.socket
) -> None:
    with TestReceiver() as ok, TestReceiver() as gone:
        proc = airflow_process("scheduler", tmp_path, statsd, tags=False, ok=ok, gone=gone,
                               statsd_on=False)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.splitlines()[-1:] == ["done"], err
        assert len(ok.requests) == 1 and len(gone.requests) == 1
    assert received(statsd, {"never"}, timeout=0.5) == []

"""Faults in a real Airflow deployment, nothing lost: a task process SIGKILLed mid-task (Airflow
fails the run and the ``failed`` event still arrives), and the scheduler stopped with SIGTERM and
started again while DAG files change (every DAG lifecycle event arrives once, none repeated).

A stack of its own (scheduler, API server and dag-processor; LocalExecutor, SQLite): restarting
its scheduler disturbs no other test.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.airflow.stack import AirflowStack, wait_until
from tests.receiver import TestReceiver

PREFIX = "probe_"  # the DAGs of the restart test

KILLED = '''"""A run whose second task process is SIGKILLed by the test mid-task."""
import datetime as dt
import os
import time
from pathlib import Path

from airflow.sdk import dag, task


@dag(dag_id="fault_killed", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
     default_args={{"retries": 0}})
def fault_killed():
    @task
    def prepare():
        pass

    @task
    def load():
        Path({pid_file!r}).write_text(str(os.getpid()))
        time.sleep(600)  # the test kills this process long before

    prepare() >> load()


fault_killed()
'''

PROBE = '''"""A DAG the test adds, changes and removes around a scheduler restart."""
import datetime as dt

from airflow.sdk import dag, task


@dag(dag_id={dag_id!r}, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
def probe():
    @task
    def refresh():
        pass

    @task
    def notify():
        pass

    {flow}


probe()
'''


def probe(dag_id: str, flow: str = "refresh()") -> str:
    return PROBE.format(dag_id=dag_id, flow=flow)


@dataclass
class Deployment:
    stack: AirflowStack
    receiver: TestReceiver

    def events(self, **where: object) -> list[dict[str, Any]]:
        found = []
        for event in self.receiver.events():
            fields = {**event.get("data", {}), **event}
            if all(fields.get(k) == v for k, v in where.items()):
                found.append(event)
        return found

    def wait_for_events(self, count: int, timeout: float = 90, **where: object) -> list[dict]:
        def enough() -> list[dict[str, Any]] | None:
            found = self.events(**where)
            return found if len(found) >= count else None

        try:
            return wait_until(enough, timeout, f"{count} event(s) matching {where}")
        except AssertionError as exc:
            got = [(e["type"], e["subject_id"]) for e in self.events()]
            raise AssertionError(f"{exc}; got {got}") from None

    def lifecycle(self) -> Counter[tuple[str, str]]:
        """(DAG, verb) of every DAG lifecycle event of this module's probe DAGs."""
        return Counter(
            (e["subject_id"], e["verb"])
            for e in self.events()
            if e["subject_id"].startswith(PREFIX) and e["verb"] in ("created", "update", "deleted")
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-faults")
    receiver = TestReceiver().start()
    connection = {"conn_type": "jobhooks", "host": receiver.url}
    env = {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__JOBHOOKS__INSTANCE": "faults",
        "AIRFLOW__JOBHOOKS__FLUSH_TIMEOUT": "2",
        "AIRFLOW__JOBHOOKS__DAG_WATCH_INTERVAL": "1",
        "AIRFLOW_CONN_JOBHOOKS_DEFAULT": json.dumps(connection),
        "JOBHOOKS_RETRY_SCHEDULE": "0,0.5,1",
        "JOBHOOKS_POLL_SECONDS": "0.2",
    }
    stack = AirflowStack(home, home / "dags", env)
    stack.dags.mkdir(parents=True)
    stack.add_dag_file("fault_killed.py", KILLED.format(pid_file=str(home / "load.pid")))
    try:
        stack.start()
        wait_until(lambda: "jobhooks: watching" in stack.log("scheduler"), 90,
                   "the scheduler's first DAG scan")
        yield Deployment(stack, receiver)
    finally:
        stack.stop()
        receiver.stop()


def test_a_task_process_killed_mid_task_fails_the_run_and_the_failed_event_arrives(
    deployment: Deployment,
) -> None:
    stack = deployment.stack
    pid_file = stack.home / "load.pid"
    stack.wait_for_dags("fault_killed")
    run_id = stack.trigger("fault_killed")
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), 120,
                         "the load task to start"))
    os.kill(pid, signal.SIGKILL)

    assert stack.wait_for_run("fault_killed", run_id)["state"] == "failed"
    states = {ti["task_id"]: ti["state"] for ti in stack.task_instances("fault_killed", run_id)}
    assert states == {"prepare": "success", "load": "failed"}
    (failed,) = deployment.wait_for_events(1, subject_id="fault_killed", run_id=run_id,
                                           verb="failed")
    # The killed process recorded no error: the run's event names the task, without one.
    assert failed["data"]["error"] == "task load failed"
    assert [t["task_id"] for t in failed["data"]["failed_tasks"]] == ["load"]
    assert failed["data"]["failed_tasks"][0]["error"] is None
    events = deployment.events(subject_id="fault_killed", run_id=run_id)
    assert Counter(e["verb"] for e in events) == Counter(
        started=1, syncing=1, synced=1, failed=1)  # sent 4, delivered 4, duplicated 0, lost 0
    assert len({e["id"] for e in events}) == len(events)


def test_dag_changes_while_the_scheduler_is_down_are_reported_once_after_its_restart(
    deployment: Deployment,
) -> None:
    stack, wait = deployment.stack, deployment.wait_for_events
    stack.add_dag_file("probe_alpha.py", probe("probe_alpha"))
    delta = stack.add_dag_file("probe_delta.py", probe("probe_delta"))
    wait(1, subject_id="probe_alpha", verb="created")
    wait(1, subject_id="probe_delta", verb="created")

    before = stack.scheduler_heartbeat()
    stack.stop_component("scheduler")  # SIGTERM: the scheduler stops, the dag-processor goes on
    assert "scheduler" not in stack.processes
    stack.add_dag_file("probe_alpha.py", probe("probe_alpha", "refresh() >> notify()"))
    stack.add_dag_file("probe_beta.py", probe("probe_beta"))  # a new DAG
    delta.unlink()  # a removed DAG

    def parsed_while_down() -> dict[str, object]:
        dags = {d["dag_id"]: d for d in stack.api("GET", "dags?limit=1000")["dags"]}
        seen = {
            "beta": "probe_beta" in dags,
            "delta stale": stack.api("GET", "dags/probe_delta")["is_stale"],
            "alpha tasks": len(stack.api("GET", "dags/probe_alpha/tasks")["tasks"]),
        }
        return seen if seen == {"beta": True, "delta stale": True, "alpha tasks": 2} else {}

    wait_until(parsed_while_down, 120, "the dag-processor to parse the changes")
    stack.start_component("scheduler")
    wait_until(lambda: stack.scheduler_heartbeat() not in (None, before) and stack.healthy(),
               120, "the restarted scheduler's heartbeat")

    wait(1, subject_id="probe_beta", verb="created")
    wait(1, subject_id="probe_alpha", verb="update")
    wait(1, subject_id="probe_delta", verb="deleted")
    # A change after the restart: once it arrives, anything the restarted watcher's first
    # scan could have repeated would have arrived before it (one subscription, in order).
    stack.add_dag_file("probe_omega.py", probe("probe_omega"))
    wait(1, subject_id="probe_omega", verb="created")
    assert deployment.lifecycle() == Counter({
        ("probe_alpha", "created"): 1, ("probe_alpha", "update"): 1,
        ("probe_delta", "created"): 1, ("probe_delta", "deleted"): 1,
        ("probe_beta", "created"): 1, ("probe_omega", "created"): 1,
    })  # sent 6, delivered 6, duplicated 0, lost 0
    ids = [e["id"] for e in deployment.events() if e["subject_id"].startswith(PREFIX)]
    assert len(set(ids)) == len(ids)

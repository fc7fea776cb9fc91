"""One process's jobhooks: nothing at all without a subscription, the task path in-process
(hooks → outbox → receiver), the guard around every hook, fresh starts in forked children."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.execution_time.task_runner import TaskRunnerMarker

from jobhooks_airflow import _compat, process
from jobhooks_airflow.listener import listener
from jobhooks_core.guard import errors_swallowed
from jobhooks_core.outbox import open_outbox
from tests.receiver import TestReceiver

START = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)


def task_instance(task_id: str = "load", try_number: int = 1) -> SimpleNamespace:
    dag = SimpleNamespace(tags=set())
    return SimpleNamespace(
        dag_id="daily_import",
        run_id="manual__1",
        task_id=task_id,
        map_index=-1,
        try_number=try_number,
        state="success",
        start_date=START,
        end_date=START,
        task=SimpleNamespace(dag=dag),
        get_template_context=lambda: {"dag_run": SimpleNamespace(run_type="manual")},
    )


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("JOBHOOKS_HOME", str(tmp_path))
    monkeypatch.setenv("JOBHOOKS_RETRY_SCHEDULE", "0")
    return tmp_path


def subscribe(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_JOBHOOKS_DEFAULT", json.dumps({"conn_type": "jobhooks", "host": url})
    )


def test_without_a_subscription_nothing_is_built(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="jobhooks"):
        listener.on_starting(TaskRunnerMarker())
        listener.on_task_instance_success(None, task_instance())
        listener.on_task_instance_failed(None, task_instance(), ValueError("boom"))
        listener.before_stopping(TaskRunnerMarker())
    assert process.current().runtime() is None
    assert list(home.iterdir()) == []  # not even an outbox file
    assert caplog.text.count("jobhooks: no subscription configured") == 1


def test_disabled_jobhooks_reads_no_connection(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__ENABLED", "false")
    monkeypatch.setattr(_compat, "get_connection", lambda conn_id: pytest.fail("read"))
    listener.on_starting(TaskRunnerMarker())
    listener.on_task_instance_success(None, task_instance())
    assert process.current().runtime() is None and list(home.iterdir()) == []


def test_a_task_success_is_delivered_when_the_task_ends(
    home: Path, monkeypatch: pytest.MonkeyPatch, receiver: TestReceiver
) -> None:
    subscribe(monkeypatch, receiver.url)
    listener.on_starting(TaskRunnerMarker())
    listener.on_task_instance_success(None, task_instance())
    listener.before_stopping(TaskRunnerMarker())  # flushes within flush_timeout
    (event,) = receiver.events()
    assert (event["type"], event["subject_id"], event["data"]["task_id"]) == (
        "work.synced",
        "daily_import",
        "load",
    )
    assert event["source"]["orchestrator"] == "airflow"


def test_a_task_failure_is_kept_for_the_run_not_sent(
    home: Path, monkeypatch: pytest.MonkeyPatch, receiver: TestReceiver
) -> None:
    subscribe(monkeypatch, receiver.url)
    listener.on_starting(TaskRunnerMarker())
    listener.on_task_instance_failed(None, task_instance(), ValueError("row 42"))
    runtime = process.current().runtime()
    assert runtime is not None
    assert runtime.recall("daily_import", "error/manual__1/") == {
        "error/manual__1/load/-1": "ValueError: row 42"
    }
    listener.before_stopping(TaskRunnerMarker())
    assert receiver.requests == []


def test_a_broken_outbox_never_reaches_the_task(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: TestReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscribe(monkeypatch, receiver.url)
    (home / "blocker").write_text("not a directory")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__OUTBOX", str(home / "blocker" / "outbox.db"))
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        listener.on_task_instance_success(None, task_instance())
        listener.on_task_instance_failed(None, task_instance(), "set by hand")
        listener.before_stopping(TaskRunnerMarker())
    assert "could not record unit_succeeded for 'daily_import'" in caplog.text
    assert (
        "cannot open the SQLite outbox" in caplog.text and "(no effect on the job)" in caplog.text
    )


def test_an_unexpected_object_is_logged_and_swallowed(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: TestReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscribe(monkeypatch, receiver.url)
    before = errors_swallowed()
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        listener.on_task_instance_success(None, object())
        listener.on_dag_run_running(object(), "started")
    assert errors_swallowed() == before + 2
    assert "jobhooks: reporting a task success failed: AttributeError" in caplog.text
    assert "(no effect on the task)" in caplog.text


def test_a_forked_child_starts_afresh_and_can_report(
    home: Path, monkeypatch: pytest.MonkeyPatch, receiver: TestReceiver
) -> None:
    subscribe(monkeypatch, receiver.url)
    parent = process.current()
    parent.role = "task"
    listener.on_task_instance_success(None, task_instance("extract"))
    assert parent.runtime() is not None
    pid = os.fork()
    if pid == 0:  # the child, as the supervisor forks a task process
        code = 1
        try:
            child = process.current()
            if child.role == "other" and child._runtime is None:  # nothing inherited
                listener.on_starting(TaskRunnerMarker())
                listener.on_task_instance_success(None, task_instance("load"))
                listener.before_stopping(TaskRunnerMarker())
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    listener.before_stopping(TaskRunnerMarker())
    deadline = time.monotonic() + 10
    while len(receiver.events()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(e["data"]["task_id"] for e in receiver.events()) == ["extract", "load"]
    outbox = open_outbox(str(home / "outbox.db"))
    assert {d.status.value for d in outbox.deliveries()} == {"delivered"}
    outbox.close()


@pytest.mark.parametrize(
    ("component", "argv", "kind"),
    [
        (TaskRunnerMarker(), ["airflow"], "task"),
        (SimpleNamespace(job_type="SchedulerJob"), [], "scheduler"),
        (SimpleNamespace(job_type="DagProcessorJob"), [], "dag-processor"),
        (type("Job", (), {"job_type": None})(), ["airflow", "scheduler", "-D"], "scheduler"),
        (type("Job", (), {"job_type": None})(), ["airflow", "dag-processor"], "dag-processor"),
        (type("Job", (), {"job_type": None})(), ["airflow", "triggerer"], "triggerer"),
        (object(), ["airflow", "scheduler"], "other"),
    ],
)
def test_each_component_is_recognised(
    monkeypatch: pytest.MonkeyPatch, component: object, argv: list[str], kind: str
) -> None:
    # on_starting gets the component's Job before its runner sets job_type: the command says.
    monkeypatch.setattr(sys, "argv", argv)
    assert _compat.component_kind(component) == kind

"""Translating Airflow's objects (DAG runs, task instances, DAG rows) into lifecycle signals:
subject, subject type tag, occurrence keys, ``data``; the core then decides the verbs."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

import pytest
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.sdk import DAG

from jobhooks_airflow import signals
from jobhooks_core import InMemoryWorkState, Source
from jobhooks_core.lifecycle import Signal, events_for
from jobhooks_core.vocabulary import SubjectType

BASE = "https://airflow.example.com"
SOURCE = Source("airflow", "prod", "3.3.2")
START = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)


def dag_run(
    schedule: object = None,
    *,
    state: str = "success",
    tags: list[str] | None = None,
    end_date: dt.datetime | None = None,
    next_run: dt.datetime | None = None,
    clears: int = 0,
) -> DagRun:
    """A real DagRun (not in a database) of a real DAG."""
    run = DagRun(
        dag_id="segment_export",
        run_id="scheduled__2026-11-27T02:00:00+00:00",
        run_type="scheduled",
        state=state,
        start_date=START,
    )
    run.end_date = START + dt.timedelta(seconds=90)
    run.clear_number = clears
    run.dag = DAG(
        "segment_export",
        schedule=schedule,
        tags=tags or [],
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        end_date=end_date,
    )
    model = DagModel(dag_id="segment_export")
    model.next_dagrun_create_after = next_run
    run.dag_model = model
    return run


def verbs(signal: object, state: InMemoryWorkState | None = None) -> list[str]:
    state = state or InMemoryWorkState()
    return [e.verb.value for e in events_for(signal, SOURCE, state)]  # type: ignore[arg-type]


def test_the_subject_type_tag_names_the_subject_type() -> None:
    assert signals.subject_type("d", ["exports", "jobhooks:subject_type=Segment"]) is (
        SubjectType.SEGMENT
    )
    assert signals.subject_type("d", ["exports"]) is SubjectType.WORK


def test_a_bad_subject_type_tag_is_logged_once_and_the_dag_is_a_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobhooks"):
        for _ in range(3):
            assert signals.subject_type("typo_dag", ["jobhooks:subject_type=segmnt"]) is (
                SubjectType.WORK
            )
    (record,) = caplog.records
    assert (
        "DAG 'typo_dag': tag jobhooks:subject_type=segmnt is not a subject type (did you mean "
        "'segment'?); its events use 'work'" in record.getMessage()
    )


def test_a_run_that_starts_is_started_then_syncing_with_the_runs_data() -> None:
    signal = signals.run_started(
        dag_run("0 2 * * *", state="running", tags=["jobhooks:subject_type=segment"]), BASE
    )
    assert (signal.signal, signal.subject_id, signal.subject_type) == (
        Signal.RUN_STARTED,
        "segment_export",
        SubjectType.SEGMENT,
    )
    assert signal.occurrence == "scheduled__2026-11-27T02:00:00+00:00"
    assert signal.data["url"] == (
        f"{BASE}/dags/segment_export/runs/scheduled__2026-11-27T02%3A00%3A00%2B00%3A00"
    )
    assert signal.data["run_type"] == "scheduled" and signal.data["state"] == "running"
    assert verbs(signal) == ["started", "syncing"]


def test_a_cleared_run_is_a_new_occurrence() -> None:
    assert signals.run_started(dag_run(clears=2), BASE).occurrence.endswith("#2")


@pytest.mark.parametrize(
    ("schedule", "end_date", "next_run", "final"),
    [
        (None, None, None, True),
        ("@once", None, None, True),
        ("0 2 * * *", None, dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC), False),
        ("0 2 * * *", dt.datetime(2026, 6, 1, tzinfo=dt.UTC), None, True),  # past its end
        (
            "0 2 * * *",
            dt.datetime(2027, 6, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC),
            False,
        ),
    ],
)
def test_a_successful_run_is_completed_only_when_nothing_further_is_scheduled(
    schedule: object, end_date: dt.datetime | None, next_run: dt.datetime | None, final: bool
) -> None:
    signal = signals.run_succeeded(dag_run(schedule, end_date=end_date, next_run=next_run), BASE)
    assert signal.final is final
    expected = ["synccomplete", "completed"] if final else ["synccomplete"]
    assert verbs(signal) == expected
    assert signal.data["duration"] == 90.0 and signal.data["state"] == "success"


def runtime_task_instance(**overrides: object) -> SimpleNamespace:
    """The attributes a Task SDK RuntimeTaskInstance offers the listener."""
    dag = SimpleNamespace(tags={"jobhooks:subject_type=account"})
    context = {"dag_run": SimpleNamespace(run_type="manual")}
    fields = dict(
        dag_id="partner_sync",
        run_id="manual__1",
        task_id="sync_partner",
        map_index=2,
        try_number=1,
        state="success",
        start_date=START,
        end_date=START + dt.timedelta(seconds=3),
        task=SimpleNamespace(dag=dag),
        get_template_context=lambda: context,
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_a_task_success_is_synced_with_the_units_data() -> None:
    signal = signals.unit_succeeded(runtime_task_instance(), BASE)
    assert signal.subject_type is SubjectType.ACCOUNT
    assert signal.occurrence == "manual__1/sync_partner/2/1"
    assert signal.data == {
        "dag_id": "partner_sync",
        "run_id": "manual__1",
        "run_type": "manual",
        "task_id": "sync_partner",
        "map_index": 2,
        "try_number": 1,
        "state": "success",
        "start_date": START.isoformat(),
        "end_date": (START + dt.timedelta(seconds=3)).isoformat(),
        "duration": 3.0,
        "url": f"{BASE}/dags/partner_sync/runs/manual__1/tasks/sync_partner/mapped/2",
    }
    assert verbs(signal) == ["synced"]


def test_the_same_task_success_reported_twice_has_one_event_id() -> None:
    state = InMemoryWorkState()
    first = events_for(signals.unit_succeeded(runtime_task_instance(), BASE), SOURCE, state)
    again = events_for(signals.unit_succeeded(runtime_task_instance(), BASE), SOURCE, state)
    retry = events_for(
        signals.unit_succeeded(runtime_task_instance(try_number=2), BASE), SOURCE, state
    )
    assert first[0].id == again[0].id != retry[0].id


def test_errors_become_one_line_of_text() -> None:
    assert signals.error_text(ValueError("row 42")) == "ValueError: row 42"
    assert signals.error_text("set by hand") == "set by hand"
    assert signals.error_text(None) is None
    long = signals.error_text(RuntimeError("x" * 5000))
    assert long is not None and len(long) == signals.MAX_ERROR and long.endswith("…")
    assert signals.error_key("r1", "load", None) == "error/r1/load/-1"


def test_a_dag_row_is_seen_with_its_revision_and_removed() -> None:
    created = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    row = {
        "dag_id": "nightly",
        "tags": ["jobhooks:subject_type=report"],
        "created_at": created,
        "revision": "abc:active",
        "is_paused": False,
        "schedule": "@daily",
        "fileloc": "nightly.py",
        "version": 3,
    }
    seen = signals.dag_seen(row, "2026-11-27T00:00:00", BASE)
    assert (seen.signal, seen.subject_type, seen.revision, seen.created_at) == (
        Signal.WORK_SEEN,
        SubjectType.REPORT,
        "abc:active",
        created,
    )
    assert seen.data == {
        "dag_id": "nightly",
        "is_paused": False,
        "schedule": "@daily",
        "fileloc": "nightly.py",
        "version": 3,
        "url": f"{BASE}/dags/nightly",
    }
    removed = signals.dag_removed(row, "2026-11-28T00:00:00", BASE)
    assert removed.signal is Signal.WORK_REMOVED and removed.occurrence == "2026-11-28T00:00:00"

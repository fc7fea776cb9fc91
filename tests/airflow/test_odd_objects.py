"""Odd Airflow objects: unicode DAG and task ids, ids of Airflow's full 250 characters, mapped
tasks, odd run ids, missing dates and states. Real ORM DagRuns and TaskInstances of real DAGs
(not in a database); the signals they give make events that validate and links that lead back
to the ids."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from importlib import resources
from typing import Any

from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from jobhooks_airflow import signals
from jobhooks_core import InMemoryWorkState, Source
from jobhooks_core.formats import WireFormat, parse_body, render_event
from jobhooks_core.lifecycle import LifecycleSignal, events_for

BASE = "https://airflow.example.com"
SOURCE = Source("airflow", "prod", "3.3.2")
VALIDATOR = Draft202012Validator(
    json.loads(resources.files("jobhooks_core").joinpath("schemas/event.schema.json").read_text())
)

# Airflow's rule for DAG and task ids (KEY_REGEX): word characters, dots, dashes; 250 at most.
IDS = st.sampled_from(["データ_書き出し", "ünïcødé-dag", "a" * 250, "x.y-z", "٣"]) | st.from_regex(
    r"\A[\w.-]{1,250}\Z", fullmatch=True
)
# Airflow's rule for run ids (DagRun.validate_run_id); '+', '~' and ':' need quoting in URLs.
RUN_IDS = st.sampled_from(["manual__2026-11-27T01:02:03+00:00", "a~b:c+d", "r" * 250]) | (
    st.from_regex(r"\A[A-Za-z0-9_.~:+-]{1,250}\Z", fullmatch=True)
)
MOMENTS = st.none() | st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1), timezones=st.just(dt.UTC)
)
MAP_INDEXES = st.none() | st.just(-1) | st.integers(min_value=0, max_value=10**6)
STATES = st.none() | st.sampled_from(["success", "failed", "running", "upstream_failed"])
TAGS = st.lists(
    st.sampled_from(["jobhooks:subject_type=segment", "jobhooks:subject_type=nope", "ünï"])
    | st.text(max_size=20),
    max_size=3,
)


def deliverable(signal: LifecycleSignal, *, some: bool = True) -> None:
    """The signal's events validate, round-trip in every format, and keep the DAG id."""
    made = events_for(signal, SOURCE, InMemoryWorkState())
    assert made or not some
    for event in made:
        assert event.subject_id == signal.subject_id
        assert [e.message for e in VALIDATOR.iter_errors(event.to_dict())] == []
        for fmt in WireFormat:
            rendered = render_event(fmt, event)
            assert parse_body(rendered.content_type, rendered.body) == (None, [event])


def path_segments(url: str) -> list[str]:
    assert url.startswith(BASE + "/")
    assert not any(c in url for c in " #?"), url  # one URL, no stray query or fragment
    return [urllib.parse.unquote(p) for p in url[len(BASE) + 1 :].split("/")]


def task_instance(dag_id: str, task_id: str, run_id: str, map_index: int | None,
                  try_number: int, state: str | None, start: dt.datetime | None,
                  end: dt.datetime | None, tags: list[str]) -> TaskInstance:
    dag = DAG(dag_id, schedule=None, tags=tags)
    task = EmptyOperator(task_id=task_id, dag=dag)
    ti = TaskInstance(task=task, run_id=run_id, map_index=-1 if map_index is None else map_index,
                      dag_version_id=uuid.uuid4(), state=state)
    ti.map_index = map_index  # as a listener may see it before the row is flushed
    ti.try_number = try_number
    ti.start_date, ti.end_date = start, end
    return ti


@given(dag_id=IDS, task_id=IDS, run_id=RUN_IDS, map_index=MAP_INDEXES,
       try_number=st.integers(min_value=0, max_value=100), state=STATES, start=MOMENTS,
       end=MOMENTS, tags=TAGS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_task_instance_success_gives_a_deliverable_synced_event(
    dag_id: str, task_id: str, run_id: str, map_index: int | None, try_number: int,
    state: str | None, start: dt.datetime | None, end: dt.datetime | None, tags: list[str],
) -> None:
    ti = task_instance(dag_id, task_id, run_id, map_index, try_number, state, start, end, tags)

    signal = signals.unit_succeeded(ti, BASE)

    deliverable(signal)
    data = signal.data
    assert (data["dag_id"], data["task_id"], data["run_id"]) == (dag_id, task_id, run_id)
    expected_index = -1 if map_index is None else map_index
    assert data["map_index"] == expected_index
    segments = path_segments(data["url"])
    assert segments[:6] == ["dags", dag_id, "runs", run_id, "tasks", task_id]
    assert segments[6:] == (["mapped", str(map_index)] if expected_index >= 0 else [])
    if start and end:
        assert data["duration"] == (end - start).total_seconds()
    else:
        assert data["duration"] is None


def test_mapped_instances_of_one_task_are_separate_events() -> None:
    made = [
        events_for(signals.unit_succeeded(task_instance(
            "dåg", "tåsk", "r1", index, 1, "success", None, None, []), BASE), SOURCE,
            InMemoryWorkState())[0]
        for index in (None, 0, 1, 2)
    ]

    assert len({e.id for e in made}) == 4


class FailedRun(DagRun):
    """A real DagRun whose failed task instances are handed in (no database here)."""

    failed: list[TaskInstance]

    def get_task_instances(self, state: Any = None, session: Any = None) -> list[TaskInstance]:
        return self.failed


@given(dag_id=IDS, run_id=RUN_IDS, start=MOMENTS, end=MOMENTS, tags=TAGS,
       units=st.lists(st.tuples(IDS, MAP_INDEXES.map(lambda m: -1 if m is None else m)),
                      max_size=3, unique=True),
       message=st.none() | st.text(max_size=3000), clears=st.none() | st.integers(0, 5),
       state=st.none() | st.sampled_from(["queued", "running", "success", "failed"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_dag_run_gives_deliverable_started_succeeded_and_failed_events(
    dag_id: str, run_id: str, start: dt.datetime | None, end: dt.datetime | None,
    tags: list[str], units: list[tuple[str, int]], message: str | None, clears: int | None,
    state: str | None,
) -> None:
    run = FailedRun(dag_id=dag_id, run_id=run_id, run_type="manual", state=state,
                    start_date=start)
    run.end_date = end
    run.clear_number = clears
    run.dag = DAG(dag_id, schedule=None, tags=tags)
    run.dag_model = DagModel(dag_id=dag_id)
    run.failed = [task_instance(dag_id, t, run_id, m, 1, "failed", None, None, tags)
                  for t, m in units]
    errors = {f"{t}/{m}": signals.error_text(message) for t, m in units if message is not None}

    for signal in (
        signals.run_started(run, BASE),
        signals.run_succeeded(run, BASE),
        signals.run_failed(run, "task failure", errors, BASE),  # type: ignore[arg-type]
    ):
        deliverable(signal)
        assert path_segments(signal.data["url"]) == ["dags", dag_id, "runs", run_id]
    failed = signals.run_failed(run, "task failure", errors, BASE)  # type: ignore[arg-type]
    assert [(f["task_id"], f["map_index"]) for f in failed.data["failed_tasks"]] == sorted(units)


@given(dag_id=IDS, tags=st.none() | TAGS, fileloc=st.none() | st.text(max_size=300),
       schedule=st.none() | st.text(max_size=40), paused=st.none() | st.booleans(),
       created=MOMENTS)
@settings(max_examples=60, deadline=None)
def test_any_dag_row_gives_deliverable_created_and_deleted_events(
    dag_id: str, tags: list[str] | None, fileloc: str | None, schedule: str | None,
    paused: bool | None, created: dt.datetime | None,
) -> None:
    row = {"dag_id": dag_id, "tags": tags or [], "created_at": created, "revision": "r",
           "is_paused": paused, "schedule": schedule, "fileloc": fileloc, "version": None}

    deliverable(signals.dag_seen(row, "now", BASE), some=False)  # a DAG older than jobhooks
    deliverable(signals.dag_removed(row, "now", BASE))
    assert path_segments(signals.dag_seen(row, "now", BASE).data["url"]) == ["dags", dag_id]

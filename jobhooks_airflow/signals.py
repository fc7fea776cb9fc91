"""Airflow objects → core LifecycleSignals: subject, occurrence keys and ``data`` (DESIGN §3).

Which verbs follow from a signal is the core's business (jobhooks_core.lifecycle); this module
only reads task instances, DAG runs and DAG rows and says what Airflow saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from jobhooks_core.lifecycle import LifecycleSignal, Signal
from jobhooks_core.vocabulary import SUBJECT_TYPE_TAG, SubjectType, subject_type_from_tags

from . import _compat

__all__ = [
    "TAG_PREFIX",
    "dag_removed",
    "dag_seen",
    "error_key",
    "error_text",
    "run_failed",
    "run_started",
    "run_succeeded",
    "subject_type",
    "unit_succeeded",
]

TAG_PREFIX = SUBJECT_TYPE_TAG
MAX_ERROR = 2000  # characters of an error message kept in an event


def subject_type(dag_id: str, tags: Iterable[str]) -> SubjectType:
    """The DAG's ``jobhooks:subject_type=<type>`` tag, else ``work`` (a bad value is logged)."""
    return subject_type_from_tags(tags, f"DAG {dag_id!r}")


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _timing(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, Any]:
    duration = (end - start).total_seconds() if start and end else None
    return {"start_date": _iso(start), "end_date": _iso(end), "duration": duration}


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    return f"{base_url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


def _run_occurrence(dag_run: Any) -> str:
    # A cleared run runs again under the same run id: its second outcome is a new occurrence.
    clears = getattr(dag_run, "clear_number", 0) or 0
    return dag_run.run_id if not clears else f"{dag_run.run_id}#{clears}"


def _run_data(dag_run: Any, base_url: str) -> dict[str, Any]:
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "run_type": _state(getattr(dag_run, "run_type", None)),
        "logical_date": _iso(getattr(dag_run, "logical_date", None)),
        "state": _state(dag_run.state),
        **_timing(dag_run.start_date, dag_run.end_date),
        "url": run_url(base_url, dag_run.dag_id, dag_run.run_id),
    }


def _run_signal(
    kind: Signal, dag_run: Any, data: Mapping[str, Any], final: bool = False
) -> LifecycleSignal:
    return LifecycleSignal(
        kind,
        dag_run.dag_id,
        subject_type(dag_run.dag_id, _compat.dag_tags(dag_run)),
        _run_occurrence(dag_run),
        final=final,
        data=data,
    )


def run_started(dag_run: Any, base_url: str) -> LifecycleSignal:
    """A DAG run entered running: ``started`` (first run ever) and ``syncing``."""
    return _run_signal(Signal.RUN_STARTED, dag_run, _run_data(dag_run, base_url))


def run_succeeded(dag_run: Any, base_url: str) -> LifecycleSignal:
    """A DAG run succeeded: ``synccomplete``; ``completed`` when no further run is scheduled."""
    final = _compat.no_further_runs(dag_run)
    return _run_signal(Signal.RUN_SUCCEEDED, dag_run, _run_data(dag_run, base_url), final)


def run_failed(
    dag_run: Any, reason: str, errors: Mapping[str, str], base_url: str
) -> LifecycleSignal:
    """A DAG run failed: ``failed``, with its failed tasks and their errors.

    ``errors`` maps :func:`error_key` suffixes (``task_id/map_index``) to the messages the task
    processes recorded.
    """
    units = _compat.failed_units(dag_run)
    failed = [
        {"task_id": t, "map_index": m, "try_number": n, "error": errors.get(f"{t}/{m}")}
        for t, m, n in units
    ]
    error = reason
    if units:
        task_id, map_index, _ = units[0]
        message = errors.get(f"{task_id}/{map_index}")
        name = task_id + (f"[{map_index}]" if map_index >= 0 else "")
        error = f"task {name} failed" + (f": {message}" if message else "")
        if len(units) > 1:
            error += f" (and {len(units) - 1} more failed task(s))"
    data = {
        **_run_data(dag_run, base_url),
        "reason": reason,
        "error": error,
        "failed_tasks": failed,
    }
    return _run_signal(Signal.RUN_FAILED, dag_run, data)


def unit_succeeded(ti: Any, base_url: str) -> LifecycleSignal:
    """A task instance succeeded (in its task process, or marked by hand): ``synced``."""
    map_index = -1 if ti.map_index is None else ti.map_index
    url = run_url(base_url, ti.dag_id, ti.run_id) + f"/tasks/{quote(ti.task_id)}"
    if map_index >= 0:
        url += f"/mapped/{map_index}"
    data = {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "run_type": _compat.run_type(ti),
        "task_id": ti.task_id,
        "map_index": map_index,
        "try_number": ti.try_number,
        "state": _state(ti.state) or "success",
        **_timing(ti.start_date, ti.end_date),
        "url": url,
    }
    return LifecycleSignal(
        Signal.UNIT_SUCCEEDED,
        ti.dag_id,
        subject_type(ti.dag_id, _compat.dag_tags(ti)),
        f"{ti.run_id}/{ti.task_id}/{map_index}/{ti.try_number}",
        data=data,
    )


def error_key(run_id: str, task_id: str = "", map_index: int | None = None) -> str:
    """Where a task's error is remembered for its run (a prefix when only ``run_id`` given)."""
    key = f"error/{run_id}/"
    if task_id:
        key += f"{task_id}/{-1 if map_index is None else map_index}"
    return key


def error_text(error: Any) -> str | None:
    """An error as one line of text: ``ExceptionType: message``."""
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def dag_seen(row: Mapping[str, Any], observed: str, base_url: str) -> LifecycleSignal:
    """A DAG in the metadata DB (``created`` the first time, ``update`` when it changed)."""
    return LifecycleSignal(
        Signal.WORK_SEEN,
        row["dag_id"],
        subject_type(row["dag_id"], row["tags"]),
        observed,
        created_at=row["created_at"],
        revision=row["revision"],
        data=_dag_data(row, base_url),
    )


def dag_removed(row: Mapping[str, Any], observed: str, base_url: str) -> LifecycleSignal:
    """A DAG whose file is gone (Airflow marks it stale) or that was deleted: ``deleted``."""
    return LifecycleSignal(
        Signal.WORK_REMOVED,
        row["dag_id"],
        subject_type(row["dag_id"], row["tags"]),
        observed,
        data=_dag_data(row, base_url),
    )


def _dag_data(row: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "dag_id": row["dag_id"],
        "is_paused": row.get("is_paused"),
        "schedule": row.get("schedule"),
        "fileloc": row.get("fileloc"),
        "version": row.get("version"),
        "url": f"{base_url}/dags/{quote(row['dag_id'])}",
    }

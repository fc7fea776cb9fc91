"""Every difference between Airflow 3 versions, and every reach into Airflow's objects, in one
place: the rest of the adapter asks these small functions and never branches on a version."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = [
    "BaseHook",
    "airflow_version",
    "component_kind",
    "dag_tags",
    "failed_units",
    "get_connection",
    "in_task_process",
    "is_not_found",
    "no_further_runs",
    "run_type",
]

try:  # Airflow 3.1+: hooks come from the Task SDK
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined, no-redef]

# Job types of the long-running Airflow components, and the CLI command that runs each.
_COMMANDS = {"scheduler": "scheduler", "dag-processor": "dag-processor", "triggerer": "triggerer"}
_JOB_TYPES = {
    "SchedulerJob": "scheduler",
    "DagProcessorJob": "dag-processor",
    "TriggererJob": "triggerer",
}


def airflow_version() -> str:
    try:
        return version("apache-airflow")
    except PackageNotFoundError:  # a worker with only the Task SDK and core installed
        import airflow

        return str(getattr(airflow, "__version__", ""))


def component_kind(component: Any) -> str:
    """What ``on_starting``'s component is: task, scheduler, dag-processor, triggerer or other.

    The task runner passes a marker object. The long-running components pass their ``Job``,
    whose ``job_type`` is only set once its runner is built, after ``on_starting`` ran (every
    3.x); then the command line (``airflow scheduler``, as `airflow standalone` runs it too)
    says which component this is.
    """
    if type(component).__name__ == "TaskRunnerMarker":
        return "task"
    job_type = getattr(component, "job_type", None)
    if job_type:
        return _JOB_TYPES.get(str(job_type), "other")
    if type(component).__name__ == "Job":
        for arg in sys.argv[1:]:
            if not arg.startswith("-"):
                return _COMMANDS.get(arg, "other")
    return "other"


def in_task_process() -> bool:
    """True inside a task runner process (it talks to the API server through its supervisor)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def get_connection(conn_id: str) -> Any:
    """The connection ``conn_id`` from wherever Airflow keeps it: environment variables,
    secrets backends, then the metadata DB (directly in server processes, through the API
    server in a task process)."""
    if in_task_process():
        from airflow.sdk import Connection

        return Connection.get(conn_id)
    from airflow.models.connection import Connection as ServerConnection

    return ServerConnection.get_connection_from_secrets(conn_id)


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says a connection does not exist (core and SDK raise their own class)."""
    return type(exc).__name__ in ("AirflowNotFoundException", "ConnectionNotFound")


def _names(tags: Iterable[Any] | None) -> list[str]:
    return sorted(t if isinstance(t, str) else str(getattr(t, "name", t)) for t in tags or ())


def dag_tags(obj: Any) -> list[str]:
    """The tags of the DAG behind a runtime task instance, an ORM task instance or a DAG run."""
    task = getattr(obj, "task", None)
    dag = getattr(task, "dag", None) if task is not None else getattr(obj, "dag", None)
    if dag is not None and getattr(dag, "tags", None) is not None:
        return _names(dag.tags)
    model = getattr(obj, "dag_model", None)
    return _names(getattr(model, "tags", None))


def run_type(ti: Any) -> str | None:
    """The run type (manual, scheduled, backfill, asset_triggered) of a task instance's run."""
    dag_run = getattr(ti, "dag_run", None)  # an ORM task instance (API server, scheduler)
    if dag_run is None and hasattr(ti, "get_template_context"):  # the Task SDK's
        dag_run = ti.get_template_context().get("dag_run")
    value = getattr(dag_run, "run_type", None)
    return None if value is None else str(getattr(value, "value", value))


def failed_units(dag_run: Any) -> list[tuple[str, int, int]]:
    """(task id, map index, try number) of the run's failed task instances, in task order."""
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    kwargs = {"session": session} if session is not None else {}
    tis = dag_run.get_task_instances(state=[TaskInstanceState.FAILED], **kwargs)
    return sorted((ti.task_id, ti.map_index, ti.try_number) for ti in tis)


def no_further_runs(dag_run: Any) -> bool:
    """True when the DAG will not be scheduled again: no schedule or ``@once``, or its
    ``end_date`` is past and the scheduler has no next run for it."""
    dag = getattr(dag_run, "dag", None)
    model = getattr(dag_run, "dag_model", None)
    timetable = type(getattr(dag, "timetable", None)).__name__
    summary = getattr(model, "timetable_summary", None)
    if timetable in ("NullTimetable", "OnceTimetable") or summary in ("None", "@once"):
        return True
    end_date: dt.datetime | None = getattr(dag, "end_date", None)
    if end_date is None or model is None:
        return False
    return getattr(model, "next_dagrun_create_after", None) is None

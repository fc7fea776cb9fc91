"""The Airflow listener: each hook hands what Airflow saw to the core, inside the guard.

Hooks run in the task process (task instances; ``on_starting``/``before_stopping`` with the
task runner), in the scheduler (DAG runs; task failures it detects itself), in the
dag-processor (``on_starting``) and in the API server (states set by hand). Whatever goes wrong
in jobhooks is logged ("jobhooks: … (no effect on the task)") and never reaches Airflow.
"""

from __future__ import annotations

from typing import Any

from airflow.listeners import hookimpl

from jobhooks_core.guard import swallowed

from . import _compat, conf, signals
from .process import current

__all__ = ["JobhooksListener", "listener"]


class JobhooksListener:
    """Registered once per process by :class:`~jobhooks_airflow.plugin.JobhooksPlugin`."""

    # -- components ---------------------------------------------------------------------------
    @hookimpl
    def on_starting(self, component: Any) -> None:
        with swallowed("starting", "Airflow component"):
            current().starting(_compat.component_kind(component))

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        with swallowed("stopping", "Airflow component"):
            current().stopping()

    # -- task instances -----------------------------------------------------------------------
    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        with swallowed("reporting a task success", "task"):
            runtime = current().runtime()
            if runtime is not None:
                runtime.signal(signals.unit_succeeded(task_instance, conf.base_url()))

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        # No verb for a failed try: keep its error for the run's ``failed`` event, which the
        # scheduler emits when it decides the run failed.
        with swallowed("recording a task failure", "task"):
            runtime = current().runtime()
            message = signals.error_text(error)
            if runtime is not None and message:
                ti = task_instance
                key = signals.error_key(ti.run_id, ti.task_id, ti.map_index)
                runtime.remember(ti.dag_id, key, message)

    # -- DAG runs -----------------------------------------------------------------------------
    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        with swallowed("reporting a DAG run start", "DAG run"):
            runtime = current().runtime()
            if runtime is not None:
                runtime.signal(signals.run_started(dag_run, conf.base_url()))

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        with swallowed("reporting a DAG run success", "DAG run"):
            runtime = current().runtime()
            if runtime is not None:
                runtime.signal(signals.run_succeeded(dag_run, conf.base_url()))
                runtime.recall(dag_run.dag_id, signals.error_key(dag_run.run_id), forget=True)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        with swallowed("reporting a DAG run failure", "DAG run"):
            runtime = current().runtime()
            if runtime is not None:
                prefix = signals.error_key(dag_run.run_id)
                errors = runtime.recall(dag_run.dag_id, prefix, forget=True)
                errors = {key.removeprefix(prefix): text for key, text in errors.items()}
                runtime.signal(signals.run_failed(dag_run, msg, errors, conf.base_url()))


listener = JobhooksListener()

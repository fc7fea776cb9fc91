"""Prefect state hooks that report job-status events from inside the flow process.

Usage::

    from prefect import flow, task
    from jobhooks_prefect import flow_hooks, task_hooks

    @task(**task_hooks())
    def extract() -> int: ...

    @flow(**flow_hooks(subscriptions=["ops-alerts"]))   # names of jobhooks-subscription blocks
    def nightly_export() -> None: ...

Every hook runs inside one guard: a jobhooks problem is logged ("… (no effect on the flow run)")
and never changes the flow's result or state. Emitting writes to the outbox and returns; delivery
happens on a background thread, and at process exit for at most ``JOBHOOKS_FLUSH_TIMEOUT``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jobhooks_core.guard import swallowed
from jobhooks_core.runtime import Jobhooks

from ._mapping import FAILED_STATES, FlowRunFacts, StateFacts, flow_run_signals, task_run_signal
from ._runtime import block_names, runtime_for

__all__ = ["flow_hooks", "task_hooks"]

Hook = Callable[[Any, Any, Any], None]
FINAL_STATES = {"COMPLETED", *FAILED_STATES}
MAX_RUNS = 256  # flow runs remembered per process (a process normally runs one)


@dataclass
class _Run:
    """One flow run as this process reports it."""

    runtime: Jobhooks
    facts: FlowRunFacts
    start: dt.datetime | None = None
    failed_tasks: list[dict[str, Any]] = field(default_factory=list)


_runs: OrderedDict[tuple[str, tuple[str, ...]], _Run] = OrderedDict()
_lock = threading.Lock()


def flow_hooks(subscriptions: Sequence[str] | None = None) -> dict[str, list[Hook]]:
    """Hooks for ``@flow(**flow_hooks())``: running, completion, failure, crash, cancellation.

    ``subscriptions``: names of ``jobhooks-subscription`` blocks, added to those named in
    ``JOBHOOKS_PREFECT_SUBSCRIPTIONS``; the ``JOBHOOKS_CONFIG`` file applies as well.
    """
    names = tuple(subscriptions or ())

    def jobhooks_flow_state(flow: Any, flow_run: Any, state: Any) -> None:
        with swallowed(f"reporting flow run {getattr(flow_run, 'name', '?')!r} "
                       f"entering {getattr(state, 'name', '?')}", host="flow run"):
            _report_flow(flow, flow_run, state, names)

    kinds = ("on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation")
    return {kind: [jobhooks_flow_state] for kind in kinds}


def task_hooks(subscriptions: Sequence[str] | None = None) -> dict[str, list[Hook]]:
    """Hooks for ``@task(**task_hooks())``: ``synced`` on a task run's final Completed; a final
    failure is remembered for the flow run's ``failed`` event (``data.failed_tasks``)."""
    names = tuple(subscriptions or ())

    def jobhooks_task_state(task: Any, task_run: Any, state: Any) -> None:
        with swallowed(f"reporting task run {getattr(task_run, 'name', '?')!r} "
                       f"entering {getattr(state, 'name', '?')}", host="task run"):
            _report_task(task_run, state, names)

    return {"on_completion": [jobhooks_task_state], "on_failure": [jobhooks_task_state]}


def _report_flow(flow: Any, flow_run: Any, state: Any, names: tuple[str, ...]) -> None:
    facts = _state(state)
    run = _run_for(flow, flow_run, names)
    if facts.type == "RUNNING" and run.start is None:
        run.start = facts.timestamp
    scheduled = False
    if facts.type == "COMPLETED" and run.facts.deployment_id:
        scheduled = _deployment(run.facts.deployment_id)[2]
    if facts.type in FAILED_STATES and run.failed_tasks:
        facts = replace(facts, extra={"failed_tasks": list(run.failed_tasks)})
    for signal in flow_run_signals(run.facts, facts, start=run.start, scheduled=scheduled):
        run.runtime.signal(signal)
    if facts.type in FINAL_STATES:
        with _lock:
            _runs.pop((run.facts.id, names), None)


def _report_task(task_run: Any, state: Any, names: tuple[str, ...]) -> None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or context.flow is None:
        return  # a task run outside a flow run belongs to no work
    run = _run_for(context.flow, context.flow_run, names)
    facts = _state(state)
    if facts.type == "FAILED":
        run.failed_tasks.append({"task_run_id": str(task_run.id), "task_run_name": task_run.name,
                                 "error": facts.message})
        return
    signal = task_run_signal(run.facts, str(task_run.id), task_run.name, facts,
                             start=getattr(task_run, "start_time", None))
    if signal is not None:
        run.runtime.signal(signal)


def _run_for(flow: Any, flow_run: Any, names: tuple[str, ...]) -> _Run:
    key = (str(flow_run.id), names)
    with _lock:
        run = _runs.get(key)
        if run is not None:
            return run
    deployment: str | None = None
    deployment_tags: tuple[str, ...] = ()
    if flow_run.deployment_id is not None:
        deployment, deployment_tags, _ = _deployment(str(flow_run.deployment_id))
    facts = FlowRunFacts(
        id=str(flow_run.id),
        name=flow_run.name,
        flow=flow.name,
        deployment=deployment,
        deployment_id=str(flow_run.deployment_id) if flow_run.deployment_id else None,
        tags=tuple(dict.fromkeys([*(flow_run.tags or ()), *deployment_tags])),
        url=_ui_url(flow_run.id),
    )
    run = _Run(runtime_for(block_names(names)), facts, start=flow_run.start_time)
    with _lock:
        run = _runs.setdefault(key, run)
        while len(_runs) > MAX_RUNS:
            _runs.popitem(last=False)
    return run


def _state(state: Any) -> StateFacts:
    return StateFacts(id=str(state.id), type=state.type.value, name=state.name,
                      message=state.message, timestamp=state.timestamp)


def _deployment(deployment_id: str) -> tuple[str, tuple[str, ...], bool]:
    """(name, tags, whether an active schedule stands behind its runs) of a deployment."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_deployment(deployment_id)
    scheduled = not found.paused and any(s.active for s in found.schedules or ())
    return found.name, tuple(found.tags or ()), scheduled


def _ui_url(flow_run_id: Any) -> str | None:
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=str(flow_run_id))

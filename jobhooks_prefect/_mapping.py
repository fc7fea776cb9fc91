"""What a Prefect state change means as lifecycle signals (DESIGN §3), shared by the hooks and
the watcher so both derive the same subject and occurrence (hence the same event ids).

Only translation lives here: which verbs follow, once-per-work facts and bounces are the core's.
Occurrences: a flow run's Running is keyed by the flow run id (a retry of the same run is the same
``syncing``); every final state by its Prefect state id, which is also the id of the server's
``prefect.flow-run.<State>`` / ``prefect.task-run.<State>`` event.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobhooks_core.lifecycle import LifecycleSignal, Signal
from jobhooks_core.vocabulary import SUBJECT_TYPE_TAG, SubjectType, subject_type_from_tags

__all__ = [
    "SUBJECT_TYPE_TAG",
    "FlowRunFacts",
    "StateFacts",
    "deployment_signal",
    "flow_run_from_event",
    "flow_run_signals",
    "parse_time",
    "related_id",
    "state_from_event",
    "subject_type_from_tags",
    "task_run_signal",
]

log = logging.getLogger("jobhooks")

# Prefect state types (StateType values) that end a flow run badly, and how `data.state` says it.
FAILED_STATES = {"FAILED": "failed", "CRASHED": "crashed", "CANCELLING": "cancelled",
                 "CANCELLED": "cancelled"}


@dataclass(frozen=True)
class FlowRunFacts:
    """What jobhooks needs to know about one flow run, however it learnt it."""

    id: str
    name: str
    flow: str
    deployment: str | None = None
    deployment_id: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None

    @property
    def subject_id(self) -> str:
        """``<flow>/<deployment>`` for a deployment's run, else the flow name."""
        return f"{self.flow}/{self.deployment}" if self.deployment else self.flow

    @property
    def subject_type(self) -> SubjectType:
        return subject_type_from_tags(self.tags, f"flow run {self.name!r} ({self.subject_id})")


@dataclass(frozen=True)
class StateFacts:
    """One Prefect state: its id, type (``COMPLETED``…), name, message and time."""

    id: str
    type: str
    name: str
    message: str | None = None
    timestamp: dt.datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _run_data(run: FlowRunFacts, state: StateFacts, start: dt.datetime | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "flow_run_id": run.id,
        "flow_run_name": run.name,
        "flow": run.flow,
        "deployment": run.deployment,
        "deployment_id": run.deployment_id,
        "state": FAILED_STATES.get(state.type, state.type.lower()),
        "state_name": state.name,
        "message": state.message or None,
    }
    if start is not None:
        data["start_time"] = start
    if state.type != "RUNNING" and state.timestamp is not None:
        data["end_time"] = state.timestamp
        if start is not None:
            data["duration_seconds"] = round((state.timestamp - start).total_seconds(), 3)
    if state.type in FAILED_STATES:
        data["error"] = state.message or state.name
    data.update(state.extra)
    if run.url:
        data["url"] = run.url
    return data


def flow_run_signals(
    run: FlowRunFacts,
    state: StateFacts,
    *,
    start: dt.datetime | None = None,
    scheduled: bool = False,
) -> list[LifecycleSignal]:
    """The signals a flow run entering ``state`` gives.

    ``scheduled``: an active schedule stands behind the run (its deployment is not paused and
    has an active schedule), so a success is not the work's final completion.
    """
    subject_type = run.subject_type

    def signal(kind: Signal, occurrence: str, *, final: bool = False) -> LifecycleSignal:
        return LifecycleSignal(kind, run.subject_id, subject_type, occurrence, final=final,
                               data=_run_data(run, state, start), timestamp=state.timestamp)

    if state.type == "RUNNING":
        started = signal(Signal.RUN_STARTED, run.id)
        if run.deployment is None:
            # An ad-hoc flow is a work from its first run on (no baseline: see DESIGN §3).
            return [signal(Signal.WORK_SEEN, run.id), started]
        return [started]
    if state.type == "COMPLETED":
        return [signal(Signal.RUN_SUCCEEDED, state.id, final=not scheduled)]
    if state.type in FAILED_STATES:
        return [signal(Signal.RUN_FAILED, state.id)]
    return []


def task_run_signal(
    run: FlowRunFacts,
    task_run_id: str,
    task_run_name: str,
    state: StateFacts,
    start: dt.datetime | None = None,
) -> LifecycleSignal | None:
    """``synced`` for a task run's final Completed state (a cached result counts too)."""
    if state.type != "COMPLETED":
        return None
    data = _run_data(run, state, start)
    data.update(task_run_id=task_run_id, task_run_name=task_run_name)
    return LifecycleSignal(Signal.UNIT_SUCCEEDED, run.subject_id, run.subject_type, state.id,
                           data=data, timestamp=state.timestamp)


DEPLOYMENT_SIGNALS = {
    "prefect.deployment.created": Signal.WORK_SEEN,
    "prefect.deployment.updated": Signal.WORK_CHANGED,
    "prefect.deployment.deleted": Signal.WORK_REMOVED,
}


def deployment_signal(
    event_name: str,
    event_id: str,
    *,
    flow: str,
    deployment: str,
    deployment_id: str,
    subject_type: SubjectType,
    occurred: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> LifecycleSignal | None:
    """created / update / deleted for a ``prefect.deployment.*`` server event."""
    kind = DEPLOYMENT_SIGNALS.get(event_name)
    if kind is None:
        return None
    data: dict[str, Any] = {"flow": flow, "deployment": deployment,
                            "deployment_id": deployment_id, **(extra or {})}
    return LifecycleSignal(kind, f"{flow}/{deployment}", subject_type, event_id, data=data,
                           timestamp=occurred)


# -- reading Prefect events (the watcher's input) ---------------------------------------------
def parse_time(value: Any) -> dt.datetime | None:
    """An event's time as an aware datetime (one without an offset is UTC, as Prefect's are)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif not value:
        return None
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=dt.UTC)


def related_id(event: Any, role: str) -> str | None:
    """The object id of the event's related resource in ``role`` (``prefect.flow-run.<id>``)."""
    related = event.resource_in_role.get(role)
    return None if related is None else str(related.id).rsplit(".", 1)[-1]


def state_from_event(event: Any) -> StateFacts:
    """The state a ``prefect.flow-run.*`` / ``prefect.task-run.*`` event reports; its id is the
    event id (the server and the task engine use the state id as the event id)."""
    resource = event.resource
    return StateFacts(
        id=str(event.id),
        type=resource.get("prefect.state-type") or "",
        name=resource.get("prefect.state-name") or str(event.event).rsplit(".", 1)[-1],
        message=resource.get("prefect.state-message") or None,
        timestamp=parse_time(resource.get("prefect.state-timestamp")) or event.occurred,
    )


def flow_run_from_event(flow_run_id: str, event: Any) -> FlowRunFacts:
    """A flow run's facts from an event's related resources (when the API no longer has it)."""
    roles = event.resource_in_role
    own = event.resource if str(event.event).startswith("prefect.flow-run.") else roles.get(
        "flow-run")
    deployment = roles.get("deployment")
    tags = [r.id.removeprefix("prefect.tag.") for r in event.resources_in_role.get("tag", [])]
    return FlowRunFacts(
        id=flow_run_id, name=(own.name if own is not None else None) or flow_run_id,
        flow=(roles["flow"].name if "flow" in roles else None) or "unknown-flow",
        deployment=deployment.name if deployment is not None else None,
        deployment_id=related_id(event, "deployment"), tags=tuple(tags))

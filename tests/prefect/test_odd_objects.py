"""Odd Prefect objects: unicode and very long flow, deployment and run names, odd tags, server
events missing their state type, names or offsets. Real Prefect ReceivedEvents and FlowRuns; the
signals they give make events that validate, or none, and never an exception."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from prefect.client.schemas.objects import FlowRun
from prefect.events.schemas.events import ReceivedEvent

from jobhooks_core import InMemoryWorkState, Source
from jobhooks_core.formats import WireFormat, parse_body, render_event
from jobhooks_core.lifecycle import LifecycleSignal, events_for
from jobhooks_prefect._mapping import (
    FlowRunFacts,
    StateFacts,
    flow_run_from_event,
    flow_run_signals,
    state_from_event,
    task_run_signal,
)

SOURCE = Source("prefect", "prod", "3.4")
VALIDATOR = Draft202012Validator(
    json.loads(resources.files("jobhooks_core").joinpath("schemas/event.schema.json").read_text())
)
NAMES = st.sampled_from(["nightly-export", "データ/書き出し", "ünï cødé 🚀", "x" * 1000]) | st.text(
    min_size=1, max_size=300
)
TAGS = st.lists(
    st.sampled_from(["jobhooks:subject_type=segment", "jobhooks:subject_type=bogus", "team:ü"])
    | st.text(max_size=40),
    max_size=4,
)
STATE_TYPES = st.sampled_from(
    ["RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING", "PENDING", ""]
)
TIMES = st.none() | st.sampled_from(["2026-01-01T00:00:00", "2026-01-01T00:00:00Z", "not a time"])


def deliverable(signals: list[LifecycleSignal]) -> None:
    for signal in signals:
        for event in events_for(signal, SOURCE, InMemoryWorkState()):
            assert [e.message for e in VALIDATOR.iter_errors(event.to_dict())] == []
            for fmt in WireFormat:
                rendered = render_event(fmt, event)
                assert parse_body(rendered.content_type, rendered.body) == (None, [event])


def server_event(kind: str, state_type: str, when: str | None, flow: str | None,
                 deployment: str | None, run_name: str | None, tags: list[str]) -> ReceivedEvent:
    resource = {"prefect.resource.id": "prefect.flow-run.abc"}
    if run_name is not None:
        resource["prefect.resource.name"] = run_name
    if state_type:
        resource["prefect.state-type"] = state_type
    if when is not None:
        resource["prefect.state-timestamp"] = when
    related: list[dict[str, str]] = [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in tags
    ]
    if flow is not None or kind == "unnamed-flow":
        named = {"prefect.resource.name": flow} if flow is not None else {}
        related.append({"prefect.resource.id": "prefect.flow.1", "prefect.resource.role": "flow",
                        **named})
    if deployment is not None:
        related.append({"prefect.resource.id": "prefect.deployment.d1",
                        "prefect.resource.role": "deployment",
                        "prefect.resource.name": deployment})
    now = dt.datetime.now(dt.UTC)
    return ReceivedEvent.model_validate(
        {"occurred": now, "received": now, "event": f"prefect.flow-run.{state_type or 'X'}",
         "resource": resource, "related": related, "id": uuid.uuid4()})


@given(kind=st.sampled_from(["named-flow", "unnamed-flow", "no-flow"]), state_type=STATE_TYPES,
       when=TIMES, flow=st.none() | NAMES, deployment=st.none() | NAMES,
       run_name=st.none() | NAMES, tags=TAGS, start=st.none() | st.just(
           dt.datetime(2025, 12, 31, tzinfo=dt.UTC)))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_server_event_gives_deliverable_signals_or_none(
    kind: str, state_type: str, when: str | None, flow: str | None, deployment: str | None,
    run_name: str | None, tags: list[str], start: dt.datetime | None,
) -> None:
    event = server_event(kind, state_type, when, flow if kind == "named-flow" else None,
                         deployment, run_name, tags)

    state = state_from_event(event)
    facts = flow_run_from_event("abc", event)
    made = flow_run_signals(facts, state, start=start)

    assert state.timestamp is not None and state.timestamp.utcoffset() is not None
    assert facts.flow  # a flow without a name is still a subject
    deliverable(made)
    unit = task_run_signal(facts, "t1", "tåsk", state, start)
    deliverable([unit] if unit else [])


def test_an_event_time_without_an_offset_is_utc_and_gives_a_duration() -> None:
    event = server_event("named-flow", "FAILED", "2026-01-01T00:00:10", "f", None, "r", [])

    (signal,) = flow_run_signals(flow_run_from_event("abc", event), state_from_event(event),
                                 start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    assert signal.data["duration_seconds"] == 10.0
    assert signal.data["end_time"] == dt.datetime(2026, 1, 1, 0, 0, 10, tzinfo=dt.UTC)


def test_a_flow_without_a_name_is_the_unknown_flow() -> None:
    event = server_event("unnamed-flow", "FAILED", None, None, None, None, [])

    assert flow_run_from_event("abc", event).subject_id == "unknown-flow"


@given(name=NAMES, flow=NAMES, deployment=st.none() | NAMES, tags=TAGS,
       state_type=STATE_TYPES, message=st.none() | st.text(max_size=5000))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_flow_run_gives_deliverable_signals(
    name: str, flow: str, deployment: str | None, tags: list[str], state_type: str,
    message: str | None,
) -> None:
    run = FlowRun(name=name, flow_id=uuid.uuid4(), tags=tags,
                  deployment_id=uuid.uuid4() if deployment else None)
    facts = FlowRunFacts(id=str(run.id), name=run.name, flow=flow, deployment=deployment,
                         deployment_id=str(run.deployment_id) if run.deployment_id else None,
                         tags=tuple(run.tags))
    state = StateFacts(id=str(uuid.uuid4()), type=state_type, name=state_type.title() or "X",
                       message=message, timestamp=dt.datetime.now(dt.UTC))

    deliverable(flow_run_signals(facts, state, start=None))
    assert facts.subject_id == (f"{flow}/{deployment}" if deployment else flow)

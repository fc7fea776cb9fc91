"""The translation of Prefect states into lifecycle signals (no server needed): subjects, subject
types from tags, which signal each state type gives, and the occurrence that keys its event id."""

from __future__ import annotations

import datetime as dt

import pytest

from jobhooks_core.lifecycle import Signal
from jobhooks_core.vocabulary import SubjectType
from jobhooks_prefect._mapping import (
    FlowRunFacts,
    StateFacts,
    deployment_signal,
    flow_run_signals,
    task_run_signal,
)
from jobhooks_prefect._runtime import block_names

T0 = dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.UTC)
ADHOC = FlowRunFacts(id="run-1", name="brave-otter", flow="nightly-export")
DEPLOYED = FlowRunFacts(id="run-2", name="calm-fox", flow="nightly-export", deployment="prod",
                        deployment_id="dep-1", tags=("team:data", "jobhooks:subject_type=segment"))


def state(kind: str, name: str | None = None, message: str | None = None) -> StateFacts:
    return StateFacts(id=f"state-{kind.lower()}", type=kind, name=name or kind.title(),
                      message=message, timestamp=T0 + dt.timedelta(seconds=90))


def test_a_deployment_run_belongs_to_flow_slash_deployment_and_an_ad_hoc_run_to_the_flow(
) -> None:
    assert DEPLOYED.subject_id == "nightly-export/prod"
    assert ADHOC.subject_id == "nightly-export"


def test_the_subject_type_tag_sets_the_subject_type() -> None:
    assert DEPLOYED.subject_type is SubjectType.SEGMENT
    assert ADHOC.subject_type is SubjectType.WORK


def test_running_starts_a_run_keyed_by_the_flow_run_so_a_retry_is_the_same_syncing() -> None:
    signals = flow_run_signals(DEPLOYED, state("RUNNING"), start=T0)
    assert [(s.signal, s.occurrence) for s in signals] == [(Signal.RUN_STARTED, "run-2")]
    retried = flow_run_signals(DEPLOYED, StateFacts("other-state", "RUNNING", "Running"))
    assert retried[0].occurrence == "run-2"


def test_the_first_running_of_an_ad_hoc_flow_also_says_the_work_was_seen() -> None:
    signals = flow_run_signals(ADHOC, state("RUNNING"))
    assert [s.signal for s in signals] == [Signal.WORK_SEEN, Signal.RUN_STARTED]
    assert signals[0].created_at is None  # no baseline: the first run jobhooks records


def test_completed_is_final_only_without_an_active_schedule_behind_the_run() -> None:
    (free,) = flow_run_signals(DEPLOYED, state("COMPLETED"), scheduled=False)
    (scheduled,) = flow_run_signals(DEPLOYED, state("COMPLETED"), scheduled=True)
    assert free.signal is Signal.RUN_SUCCEEDED and free.final and not scheduled.final
    assert free.occurrence == "state-completed"  # the state id: the watcher's event id too


@pytest.mark.parametrize(("kind", "reported"), [
    ("FAILED", "failed"), ("CRASHED", "crashed"), ("CANCELLING", "cancelled"),
    ("CANCELLED", "cancelled"),
])
def test_failed_crashed_and_cancelled_end_the_run_as_failed(kind: str, reported: str) -> None:
    (signal,) = flow_run_signals(DEPLOYED, state(kind, message="boom"), start=T0)
    assert signal.signal is Signal.RUN_FAILED
    assert signal.data["state"] == reported and signal.data["error"] == "boom"
    assert signal.data["duration_seconds"] == 90.0


@pytest.mark.parametrize("kind", ["SCHEDULED", "PENDING", "PAUSED"])
def test_states_that_are_no_job_event_give_nothing(kind: str) -> None:
    assert flow_run_signals(DEPLOYED, state(kind)) == []


def test_a_task_run_is_synced_only_when_completed() -> None:
    synced = task_run_signal(DEPLOYED, "task-1", "load-abc", state("COMPLETED", "Cached"))
    assert synced is not None and synced.signal is Signal.UNIT_SUCCEEDED
    assert synced.occurrence == "state-completed"
    assert synced.data["task_run_name"] == "load-abc" and synced.data["state_name"] == "Cached"
    assert task_run_signal(DEPLOYED, "task-1", "load-abc", state("RUNNING")) is None


def test_deployment_events_map_to_created_update_deleted() -> None:
    kinds = {name: deployment_signal(f"prefect.deployment.{name}", "ev-1", flow="f",
                                     deployment="d", deployment_id="dep",
                                     subject_type=SubjectType.WORK)
             for name in ("created", "updated", "deleted", "ready")}
    assert {k: (s.signal if s else None) for k, s in kinds.items()} == {
        "created": Signal.WORK_SEEN, "updated": Signal.WORK_CHANGED,
        "deleted": Signal.WORK_REMOVED, "ready": None}
    assert kinds["created"] is not None and kinds["created"].subject_id == "f/d"


def test_block_names_come_from_the_environment_then_the_code_without_repeats() -> None:
    env = {"JOBHOOKS_PREFECT_SUBSCRIPTIONS": " ops-alerts, ,catalog "}
    assert block_names(["catalog", "pager"], env) == ("ops-alerts", "catalog", "pager")
    assert block_names((), {}) == ()

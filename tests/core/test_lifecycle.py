"""The orchestrator-neutral lifecycle: which verbs each signal yields, once-per-work facts and
bounces (DESIGN §3)."""

from __future__ import annotations

import datetime as dt

from jobhooks_core import InMemoryWorkState, LifecycleSignal, Signal, Source, SubjectType, Verb
from jobhooks_core.lifecycle import events_for

SOURCE = Source("airflow", "prod", "3.3.2")
INSTALLED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


class Work:
    """Drives one work through signals and records the verbs that came out."""

    def __init__(
        self,
        state: InMemoryWorkState | None = None,
        subject_id: str = "daily_export",
        subject_type: SubjectType = SubjectType.WORK,
    ) -> None:
        self.state = state or InMemoryWorkState(installed_at=INSTALLED)
        self.subject_id, self.subject_type = subject_id, subject_type

    def send(self, signal: Signal, occurrence: str = "", **kw: object) -> list[str]:
        sig = LifecycleSignal(signal, self.subject_id, self.subject_type, occurrence, **kw)  # type: ignore[arg-type]
        return [e.verb.value for e in events_for(sig, SOURCE, self.state)]

    def run(self, run_id: str, *, ok: bool, final: bool = False, units: int = 1) -> list[str]:
        verbs = self.send(Signal.RUN_STARTED, run_id)
        for unit in range(units if ok else 0):
            verbs += self.send(Signal.UNIT_SUCCEEDED, f"{run_id}/t{unit}/1")
        end = Signal.RUN_SUCCEEDED if ok else Signal.RUN_FAILED
        return verbs + self.send(end, run_id, final=final)


def test_first_run_of_a_work_is_started_then_syncing() -> None:
    work = Work()
    assert work.run("r1", ok=True, units=2) == [
        "started",
        "syncing",
        "synced",
        "synced",
        "synccomplete",
    ]


def test_started_happens_once_per_work() -> None:
    work = Work()
    work.run("r1", ok=True)
    assert work.run("r2", ok=True) == ["syncing", "synced", "synccomplete"]


def test_final_success_is_completed_once() -> None:
    work = Work()
    assert work.run("r1", ok=True, final=True)[-2:] == ["synccomplete", "completed"]
    assert work.send(Signal.RUN_SUCCEEDED, "r1", final=True) == ["synccomplete"]


def test_a_scheduled_run_succeeding_is_not_completed() -> None:
    assert "completed" not in Work().run("r1", ok=True, final=False)


def test_failure_reported_twice_is_failed_once() -> None:
    work = Work()
    assert work.run("r1", ok=False) == ["started", "syncing", "failed"]
    assert work.send(Signal.RUN_FAILED, "r1") == []


def test_a_bounce_rearms_failed_and_completed_but_not_started() -> None:
    work = Work()
    work.run("r1", ok=False)
    assert work.run("r2", ok=False) == ["syncing", "failed"]
    assert work.run("r3", ok=True, final=True, units=0) == ["syncing", "synccomplete", "completed"]


def test_second_outcome_of_runs_started_before_the_first_outcome_is_not_final_again() -> None:
    work = Work()
    work.send(Signal.RUN_STARTED, "a")
    work.send(Signal.RUN_STARTED, "b")
    assert work.send(Signal.RUN_FAILED, "a") == ["failed"]
    assert work.send(Signal.RUN_FAILED, "b") == []


def test_work_seen_is_created_once() -> None:
    work = Work()
    now = INSTALLED + dt.timedelta(days=1)
    assert work.send(Signal.WORK_SEEN, created_at=now) == ["created"]
    assert work.send(Signal.WORK_SEEN, created_at=now) == []


def test_works_that_existed_before_jobhooks_was_installed_are_not_created() -> None:
    work = Work()
    assert work.send(Signal.WORK_SEEN, created_at=INSTALLED - dt.timedelta(days=30)) == []
    assert work.send(Signal.WORK_SEEN, created_at=INSTALLED + dt.timedelta(days=1)) == []


def test_installation_instant_is_recorded_on_first_use() -> None:
    state = InMemoryWorkState()
    first = state.installed_at()
    assert state.installed_at() == first


def test_change_is_update_every_time() -> None:
    work = Work()
    assert work.send(Signal.WORK_CHANGED, "v2") == ["update"]
    assert work.send(Signal.WORK_CHANGED, "v3") == ["update"]


def test_removal_is_deleted_once_and_a_returning_work_is_new() -> None:
    work = Work()
    later = INSTALLED + dt.timedelta(days=1)
    work.send(Signal.WORK_SEEN, created_at=later)
    work.run("r1", ok=True)
    assert work.send(Signal.WORK_REMOVED, "gone-1") == ["deleted"]
    assert work.send(Signal.WORK_REMOVED, "gone-1") == []
    assert work.send(Signal.WORK_SEEN, "again", created_at=later) == ["created"]
    assert work.run("r2", ok=True)[0] == "started"


def test_events_carry_the_signals_subject_type_data_and_distinct_ids() -> None:
    state = InMemoryWorkState(installed_at=INSTALLED)
    signal = LifecycleSignal(
        Signal.RUN_STARTED, "segment_export", SubjectType.SEGMENT, "r1", data={"run_id": "r1"}
    )
    started, syncing = events_for(signal, SOURCE, state)
    assert (started.type, syncing.type) == ("segment.started", "segment.syncing")
    assert started.data == {"run_id": "r1"} and started.id != syncing.id
    assert started.verb is Verb.STARTED


def test_once_per_work_facts_are_per_work_not_per_subject_type() -> None:
    state = InMemoryWorkState(installed_at=INSTALLED)
    Work(state, "x", SubjectType.WORK).run("r1", ok=True)
    # The DAG was re-tagged as a segment: it is still the same work, already started.
    assert Work(state, "x", SubjectType.SEGMENT).run("r2", ok=True)[0] == "syncing"

"""Change detection for works seen again and again (a DAG watcher's scans): a new revision is
one ``update``, the same revision nothing; a work that was removed comes back as a new one."""

from __future__ import annotations

import datetime as dt

from jobhooks_core import InMemoryWorkState, LifecycleSignal, Signal, Source
from jobhooks_core.lifecycle import events_for

SOURCE = Source("airflow", "prod", "3.3.2")
INSTALLED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
BEFORE = INSTALLED - dt.timedelta(days=30)
AFTER = INSTALLED + dt.timedelta(days=1)


class Watched:
    """One work observed by scans; returns the verbs each observation yields."""

    def __init__(self, state: InMemoryWorkState | None = None) -> None:
        self.state = state or InMemoryWorkState(installed_at=INSTALLED)
        self.scans = 0
        self.ids: list[str] = []

    def seen(self, revision: str | None, created_at: dt.datetime = AFTER) -> list[str]:
        self.scans += 1
        signal = LifecycleSignal(
            Signal.WORK_SEEN,
            "nightly_export",
            occurrence=f"scan-{self.scans}",
            created_at=created_at,
            revision=revision,
        )
        events = events_for(signal, SOURCE, self.state)
        self.ids += [e.id for e in events]
        return [e.verb.value for e in events]

    def removed(self) -> list[str]:
        self.scans += 1
        occurrence = f"scan-{self.scans}"
        signal = LifecycleSignal(Signal.WORK_REMOVED, "nightly_export", occurrence=occurrence)
        events = events_for(signal, SOURCE, self.state)
        self.ids += [e.id for e in events]
        return [e.verb.value for e in events]


def test_first_sight_is_created_and_records_the_revision_without_an_update() -> None:
    work = Watched()
    assert work.seen("v1") == ["created"]
    assert work.seen("v1") == []


def test_a_new_revision_is_one_update() -> None:
    work = Watched()
    work.seen("v1")
    assert work.seen("v2") == ["update"]
    assert work.seen("v2") == []


def test_going_back_to_an_earlier_revision_is_an_update_with_its_own_id() -> None:
    work = Watched()
    work.seen("active")
    assert work.seen("paused") == ["update"]
    assert work.seen("active") == ["update"]
    assert work.seen("paused") == ["update"]
    assert len(set(work.ids)) == len(work.ids) == 4


def test_a_baseline_work_is_not_created_and_its_first_revision_is_no_update() -> None:
    work = Watched()
    assert work.seen("v1", created_at=BEFORE) == []
    assert work.seen("v2", created_at=BEFORE) == ["update"]


def test_seen_without_a_revision_never_updates() -> None:
    work = Watched()
    work.seen("v1")
    assert work.seen(None) == []


def test_a_removed_baseline_work_that_comes_back_is_created_again() -> None:
    work = Watched()
    work.seen("v1", created_at=BEFORE)
    assert work.removed() == ["deleted"]
    # Airflow keeps the DAG's old version (and creation time) when the same file comes back.
    assert work.seen("v1", created_at=BEFORE) == ["created"]
    assert work.seen("v1", created_at=BEFORE) == []


def test_a_work_that_comes_back_changed_is_created_not_updated() -> None:
    work = Watched()
    work.seen("v1")
    work.removed()
    assert work.seen("v2") == ["created"]


def test_revisions_are_shared_by_every_process_through_the_state() -> None:
    state = InMemoryWorkState(installed_at=INSTALLED)
    scheduler_a, scheduler_b = Watched(state), Watched(state)
    scheduler_a.seen("v1")
    scheduler_b.seen("v1")
    assert scheduler_a.seen("v2") == ["update"]
    assert scheduler_b.seen("v2") == []  # the same change, seen by a second watcher: once

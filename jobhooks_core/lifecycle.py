"""Orchestrator-neutral lifecycle: adapters hand in signals, the core decides which events.

Adapters translate what their orchestrator saw ("a DAG run failed") into a LifecycleSignal;
this module applies DESIGN §3: which verbs follow, the once-per-work facts (created, started,
a final completed/failed) and bounces (a run after a final outcome re-arms completed/failed,
never started). The once-per-work facts live behind the small WorkState interface.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .events import Event, Source
from .vocabulary import SubjectType, Verb

__all__ = ["InMemoryWorkState", "LifecycleSignal", "Signal", "WorkState", "events_for"]


class Signal(StrEnum):
    """What an orchestrator observed about a work, in the core's words."""

    WORK_SEEN = "work_seen"  # a work exists (first sight → created)
    WORK_CHANGED = "work_changed"  # its definition, schedule or paused flag changed
    WORK_REMOVED = "work_removed"  # it is gone
    RUN_STARTED = "run_started"  # a run (sync cycle) entered running
    UNIT_SUCCEEDED = "unit_succeeded"  # a task (sync unit) succeeded
    RUN_SUCCEEDED = "run_succeeded"  # a run succeeded; ``final`` when nothing further is scheduled
    RUN_FAILED = "run_failed"  # a run failed (or was cancelled) for good


@dataclass(frozen=True)
class LifecycleSignal:
    """One observation about a work.

    ``occurrence`` identifies this occurrence so a repeat yields the same event id: the run id
    for run signals, run/task/map index/try for a unit, a revision for a change; for WORK_SEEN
    and WORK_REMOVED, the observation (its instant, say), so a work that is removed and comes
    back is announced again with new ids.

    ``revision`` (WORK_SEEN only) fingerprints the work's definition, schedule and paused flag
    as last seen: a revision different from the one recorded for the work is an ``update``.
    """

    signal: Signal
    subject_id: str
    subject_type: SubjectType = SubjectType.WORK
    occurrence: str = ""
    final: bool = False
    created_at: dt.datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)
    timestamp: dt.datetime | None = None
    revision: str | None = None


class WorkState(Protocol):
    """Once-per-work facts, shared by every process of a deployment (the outbox keeps them)."""

    def installed_at(self) -> dt.datetime:
        """When jobhooks first ran in this deployment (recorded on the first call)."""

    def claim(self, work: str, fact: str) -> bool:
        """Record ``fact`` for ``work``; True only for the call that recorded it."""

    def release(self, work: str, fact: str) -> None:
        """Forget ``fact`` for ``work`` so it can be claimed again."""

    def swap(self, work: str, key: str, value: str | None) -> str | None:
        """Store ``value`` under ``key`` for ``work`` (None: delete it); return the previous."""

    def values(self, work: str, prefix: str) -> dict[str, str]:
        """Every value stored for ``work`` under a key starting with ``prefix``."""


class InMemoryWorkState:
    """WorkState for one process (tests, and scripts that keep no outbox)."""

    def __init__(self, installed_at: dt.datetime | None = None) -> None:
        self._installed_at = installed_at
        self._facts: set[tuple[str, str]] = set()
        self._values: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def installed_at(self) -> dt.datetime:
        with self._lock:
            if self._installed_at is None:
                self._installed_at = dt.datetime.now(dt.UTC)
            return self._installed_at

    def claim(self, work: str, fact: str) -> bool:
        with self._lock:
            if (work, fact) in self._facts:
                return False
            self._facts.add((work, fact))
            return True

    def release(self, work: str, fact: str) -> None:
        with self._lock:
            self._facts.discard((work, fact))

    def swap(self, work: str, key: str, value: str | None) -> str | None:
        with self._lock:
            if value is None:
                return self._values.pop((work, key), None)
            previous = self._values.get((work, key))
            self._values[(work, key)] = value
            return previous

    def values(self, work: str, prefix: str) -> dict[str, str]:
        with self._lock:
            items = self._values.items()
            return {k: v for (w, k), v in items if w == work and k.startswith(prefix)}


# Fact names kept in WorkState.
CREATED, STARTED, REMOVED, FINAL = "created", "started", "removed", "final"
REVISION = "revision"  # value key: the work's definition as last seen


def work_key(source: Source, subject_id: str) -> str:
    """A work's identity across processes: it does not change with its subject type."""
    return f"{source.orchestrator}/{source.instance}/{subject_id}"


def events_for(signal: LifecycleSignal, source: Source, state: WorkState) -> list[Event]:
    """The events ``signal`` produces, updating the once-per-work facts in ``state``."""
    work = work_key(source, signal.subject_id)

    def event(verb: Verb, occurrence: str = signal.occurrence) -> Event:
        return Event.create(
            verb,
            signal.subject_type,
            signal.subject_id,
            source=source,
            occurrence=occurrence,
            data=signal.data,
            timestamp=signal.timestamp,
        )

    kind = signal.signal
    if kind is Signal.WORK_SEEN:
        # The claim fails only while the REMOVED fact is there: the work is coming back, a new
        # work even if its creation time predates the installation.
        returning = not state.claim(work, REMOVED)
        state.release(work, REMOVED)
        baseline = (
            not returning
            and signal.created_at is not None
            and signal.created_at < state.installed_at()
        )
        created = state.claim(work, CREATED)
        events = [event(Verb.CREATED)] if created and not baseline else []
        if signal.revision is not None:
            previous = state.swap(work, REVISION, signal.revision)
            if not created and previous is not None and previous != signal.revision:
                events.append(event(Verb.UPDATE, f"{signal.occurrence}/{signal.revision}"))
        return events
    if kind is Signal.WORK_CHANGED:
        return [event(Verb.UPDATE)]
    if kind is Signal.WORK_REMOVED:
        if not state.claim(work, REMOVED):
            return []
        # A work that comes back is a new work: announce it, and its first start, again.
        for fact in (CREATED, STARTED, FINAL):
            state.release(work, fact)
        state.swap(work, REVISION, None)
        return [event(Verb.DELETED)]
    if kind is Signal.RUN_STARTED:
        events = [event(Verb.STARTED)] if state.claim(work, STARTED) else []
        state.release(work, FINAL)  # a bounce re-arms completed/failed
        return [*events, event(Verb.SYNCING)]
    if kind is Signal.UNIT_SUCCEEDED:
        return [event(Verb.SYNCED)]
    if kind is Signal.RUN_SUCCEEDED:
        events = [event(Verb.SYNCCOMPLETE)]
        if signal.final and state.claim(work, FINAL):
            events.append(event(Verb.COMPLETED))
        return events
    if kind is Signal.RUN_FAILED:
        return [event(Verb.FAILED)] if state.claim(work, FINAL) else []
    raise ValueError(f"unknown lifecycle signal {kind!r}")

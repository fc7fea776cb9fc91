"""The fixed job-status vocabulary: verbs, subject types and delivery modes.

Exactly the job-status webhook document's nine verbs and 25 subject types; each verb carries
the delivery modes (realtime, batch) the document gives it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Mode", "SubjectType", "Verb", "close_match", "verbs_for_mode"]


class Mode(StrEnum):
    """How a subscription receives events: one request per event, or batched."""

    REALTIME = "realtime"
    BATCH = "batch"


class Verb(StrEnum):
    """The action an event describes, performed on a subject."""

    SYNCCOMPLETE = "synccomplete"
    UPDATE = "update"
    CREATED = "created"
    DELETED = "deleted"
    SYNCED = "synced"
    COMPLETED = "completed"
    STARTED = "started"
    FAILED = "failed"
    SYNCING = "syncing"

    @property
    def modes(self) -> frozenset[Mode]:
        """The delivery modes that can carry this verb."""
        return _VERB_MODES[self]

    def describe_modes(self) -> str:
        """'realtime-only', 'batch-only' or 'realtime and batch'."""
        if len(self.modes) == 2:
            return "realtime and batch"
        return f"{next(iter(self.modes))}-only"


_R, _B = Mode.REALTIME, Mode.BATCH
_VERB_MODES: dict[Verb, frozenset[Mode]] = {
    Verb.SYNCCOMPLETE: frozenset({_R}),
    Verb.UPDATE: frozenset({_R, _B}),
    Verb.CREATED: frozenset({_R, _B}),
    Verb.DELETED: frozenset({_R, _B}),
    Verb.SYNCED: frozenset({_R}),
    Verb.COMPLETED: frozenset({_B}),
    Verb.STARTED: frozenset({_R, _B}),
    Verb.FAILED: frozenset({_R, _B}),
    Verb.SYNCING: frozenset({_R}),
}


class SubjectType(StrEnum):
    """What an event is about."""

    ACCOUNT = "account"
    AUTH = "auth"
    CAMPAIGN = "campaign"
    DATA = "data"
    ENTITY = "entity"
    EXPERIENCE = "experience"
    JOURNEY = "journey"
    PROGRAM = "program"
    PROVIDER = "provider"
    QUERY = "query"
    REPORT = "report"
    ROLLUP = "rollup"
    SCHEMA = "schema"
    SCHEMATABLE = "schematable"
    SCORING = "scoring"
    SEGMENT = "segment"
    SEGMENTCOLLECTION = "segmentcollection"
    SEGMENTML = "segmentml"
    STREAM = "stream"
    SUBSCRIPTION = "subscription"
    TOPIC_DOCUMENT = "topic-document"
    USER = "user"
    VARIATION = "variation"
    WORK = "work"
    WORKFLOW = "workflow"


def verbs_for_mode(mode: Mode) -> frozenset[Verb]:
    """Every verb a subscription in ``mode`` can receive."""
    return frozenset(v for v in Verb if mode in v.modes)


def close_match(value: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt ``value``, if one is close enough."""
    matches = difflib.get_close_matches(value.lower(), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None

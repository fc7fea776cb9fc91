"""The fixed job-status vocabulary: verbs, subject types and delivery modes.

Exactly the job-status webhook document's nine verbs and 25 subject types; each verb carries
the delivery modes (realtime, batch) the document gives it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from enum import StrEnum

__all__ = [
    "SUBJECT_TYPE_TAG",
    "Mode",
    "SubjectType",
    "Verb",
    "close_match",
    "subject_type_from_tags",
    "verbs_for_mode",
]

log = logging.getLogger("jobhooks")

# A DAG, flow or deployment declares its subject type with this tag (DESIGN §3).
SUBJECT_TYPE_TAG = "jobhooks:subject_type="
_reported: set[tuple[str, str]] = set()


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


def subject_type_from_tags(tags: Iterable[str], where: str) -> SubjectType:
    """The subject type a ``jobhooks:subject_type=<type>`` tag declares; ``work`` without one.

    A bad or ambiguous value is logged once per (``where``, value), naming the valid choices
    and a close match, and falls back to ``work``: a typo in a tag never breaks a job.
    """
    declared = sorted(
        {t[len(SUBJECT_TYPE_TAG) :].strip().lower() for t in tags if t.startswith(SUBJECT_TYPE_TAG)}
    )
    if not declared:
        return SubjectType.WORK
    if len(declared) == 1 and declared[0] in SubjectType._value2member_map_:
        return SubjectType(declared[0])
    key = (where, ",".join(declared))
    if key not in _reported:
        _reported.add(key)
        valid = ", ".join(s.value for s in SubjectType)
        if len(declared) > 1:
            log.error(
                "jobhooks: %s has several %s tags (%s); its events use 'work'",
                where,
                SUBJECT_TYPE_TAG,
                ", ".join(declared),
            )
        else:
            hint = close_match(declared[0], [s.value for s in SubjectType])
            did = f" (did you mean {hint!r}?)" if hint else ""
            log.error(
                "jobhooks: %s: tag %s%s is not a subject type%s; its events use 'work'. "
                "Valid subject types: %s",
                where,
                SUBJECT_TYPE_TAG,
                declared[0],
                did,
                valid,
            )
    return SubjectType.WORK

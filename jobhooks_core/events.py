"""Job-status events: the frozen value every adapter produces and every wire format renders.

Ids are deterministic (UUIDv5 over source + subject + verb + occurrence), so one state change
reported twice yields one id and is enqueued once per subscription.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from .exceptions import RenderError
from .vocabulary import SubjectType, Verb

__all__ = ["Event", "Source", "event_id", "format_timestamp", "jsonable"]

# Fixed forever: changing it changes every event id and breaks receivers' dedupe.
_ID_NAMESPACE = uuid.UUID("6c1f4f3e-5a0b-5d3c-9a43-0b7e2f1d8c11")


@dataclass(frozen=True)
class Source:
    """Where an event comes from: the orchestrator, which installation of it, its version."""

    orchestrator: str
    instance: str = "default"
    version: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "orchestrator": self.orchestrator,
            "instance": self.instance,
            "version": self.version,
        }


def event_id(
    source: Source, subject_type: SubjectType, subject_id: str, verb: Verb, occurrence: str
) -> str:
    """The deterministic id of one occurrence of ``verb`` on a subject."""
    name = "\x1f".join(
        (
            source.orchestrator,
            source.instance,
            subject_type.value,
            subject_id,
            verb.value,
            occurrence,
        )
    )
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def format_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: ``2026-11-27T01:02:03.456789Z``."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass an aware datetime")
    # isoformat, not strftime: glibc's %Y drops the leading zeros of years before 1000.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, converting the common Python ones predictably.

    datetimes/dates → RFC 3339 strings, Decimal → string (no precision lost), UUID/Path/Enum →
    their string or value, set/frozenset → sorted list, tuple → list, bytes → UTF-8 text, or
    ``{"base64": …}`` when not UTF-8; anything else is refused with a RenderError.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)  # JSON has no NaN/Infinity
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dt.datetime):
        return format_timestamp(value) if value.tzinfo else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    raise RenderError(
        f"event data holds a {type(value).__name__} ({value!r:.80}), which has no JSON form; "
        "pass str, int, float, bool, None, lists, dicts, datetimes, decimals, UUIDs or bytes"
    )


@dataclass(frozen=True)
class Event:
    """One job-status event: ``verb`` performed on a subject (type and id)."""

    id: str
    verb: Verb
    subject_type: SubjectType
    subject_id: str
    timestamp: dt.datetime
    source: Source
    data: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @classmethod
    def create(
        cls,
        verb: Verb | str,
        subject_type: SubjectType | str,
        subject_id: str,
        *,
        source: Source,
        occurrence: str,
        data: Mapping[str, Any] | None = None,
        timestamp: dt.datetime | None = None,
    ) -> Event:
        """A new event whose id is derived from what happened (see :func:`event_id`)."""
        verb, subject_type = Verb(verb), SubjectType(subject_type)
        if not isinstance(subject_id, str) or not subject_id:
            raise ValueError(f"subject_id must be a non-empty string, got {subject_id!r}")
        return cls(
            id=event_id(source, subject_type, subject_id, verb, occurrence),
            verb=verb,
            subject_type=subject_type,
            subject_id=subject_id,
            timestamp=(timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
            source=source,
            data=jsonable(dict(data or {})),
        )

    @property
    def type(self) -> str:
        """``<subject_type>.<verb>``, e.g. ``work.failed``."""
        return f"{self.subject_type.value}.{self.verb.value}"

    def to_dict(self) -> dict[str, Any]:
        """The event as its wire JSON object (DESIGN §4)."""
        return {
            "id": self.id,
            "type": self.type,
            "verb": self.verb.value,
            "subject_type": self.subject_type.value,
            "subject_id": self.subject_id,
            "timestamp": format_timestamp(self.timestamp),
            "source": self.source.to_dict(),
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Event:
        """Parse the wire JSON object back into an Event (used by receivers and the outbox)."""
        src = obj["source"]
        return cls(
            id=str(obj["id"]),
            verb=Verb(obj["verb"]),
            subject_type=SubjectType(obj["subject_type"]),
            subject_id=str(obj["subject_id"]),
            timestamp=parse_timestamp(obj["timestamp"]),
            source=Source(src["orchestrator"], src["instance"], src["version"]),
            data=dict(obj.get("data") or {}),
        )

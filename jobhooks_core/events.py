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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from .exceptions import RenderError
from .vocabulary import SubjectType, Verb

__all__ = ["MAX_DEPTH", "Event", "Source", "data_path", "event_id", "format_timestamp", "jsonable"]

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


MAX_DEPTH = 64  # levels of lists/dicts inside ``data``; deeper data is refused
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class _Where:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_NOWHERE, _IN_SET = _Where("?"), _Where("<a set member>")


class _Refused(Exception):
    """A value ``jsonable`` refuses; ``path`` (innermost key first) says where it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[Any] = []


def data_path(keys: Sequence[Any]) -> str:
    """``data['a'][3]``: where a value sits in event data (the middle elided when deep)."""
    parts = [f"[{_repr(k, 40)}]" for k in keys]
    if len(parts) > 8:
        parts = [*parts[:4], "[…]", *parts[-3:]]
    return "data" + "".join(parts)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, converting the common Python ones predictably.

    The rules (README, "Event data: types and size limit"): aware datetimes → RFC 3339 in UTC
    with ``Z`` (naive ones are taken to be UTC), dates/times → ISO 8601, timedelta → seconds,
    Decimal → its exact string, non-finite floats → "NaN"/"Infinity"/"-Infinity", bytes →
    UTF-8 text or ``{"base64": …}``, sets → sorted list, tuples → lists, UUID/Path → string,
    Enum → its value, dataclass → object, other keys → strings; lone surrogates in text become
    U+FFFD. Cycles, nesting deeper than MAX_DEPTH, colliding keys and anything else are refused
    with a RenderError naming where in ``data`` the value is.
    """
    try:
        return _convert(value, 0, set())
    except _Refused as exc:
        raise RenderError(exc.reason.replace("{where}", data_path(exc.path[::-1]))) from None


def _text(value: str) -> str:
    text = str.__str__(value)  # a plain str, whatever subclass came in
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (surrogateescape'd file names, say) → U+FFFD; a split pair rejoins.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _float(value: float) -> float | str:
    number = float.__float__(value)
    if number != number or number in (float("inf"), float("-inf")):
        return _NON_FINITE[str(number)]  # JSON has no NaN/Infinity
    return number


def _int(value: int) -> int:
    number = int.__int__(value)
    if abs(number).bit_length() > 14_000:  # Python writes ints of up to 4300 digits as text
        raise _Refused(
            "event data holds an int of more than 4200 digits at {where}; pass it as a string"
        )
    return number


def _datetime(value: dt.datetime) -> str:
    if value.utcoffset() is None:
        value = value.replace(tzinfo=dt.UTC)  # naive: taken to be UTC
    try:
        return format_timestamp(value)
    except OverflowError:  # year 1 or 9999 with an offset: keep the offset
        return value.isoformat(timespec="microseconds")


def _key(key: Any, depth: int, seen: set[int]) -> str:
    if isinstance(key, str):
        return _text(key)
    converted = _convert(key, depth, seen)
    if isinstance(converted, str):
        return converted
    return json.dumps(converted, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _convert(value: Any, depth: int, seen: set[int]) -> Any:
    if value is None or type(value) in (bool, int, str, float):
        if type(value) is str:
            return _text(value)
        if type(value) is float:
            return _float(value)
        if type(value) is int:
            return _int(value)
        return value
    if isinstance(value, enum.Enum):
        return _convert(value.value, depth, seen)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return _text(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _container(value, fields, depth, seen)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _container(value, value, depth, seen)
    raise _Refused(
        f"event data holds a {type(value).__name__} at {{where}} ({_repr(value, 80)}), which has "
        "no JSON form; pass str, int, float, bool, None, lists, dicts, datetimes, decimals, "
        "UUIDs, enums or bytes"
    )


def _container(value: Any, items: Any, depth: int, seen: set[int]) -> Any:
    if depth > MAX_DEPTH:
        raise _Refused(
            f"event data is nested more than {MAX_DEPTH} levels deep at {{where}}; flatten it "
            "or pass the deep part as a JSON string"
        )
    if id(value) in seen:
        raise _Refused(
            f"event data contains itself at {{where}} (a {type(value).__name__} inside itself: "
            "a cycle); pass data without the loop"
        )
    seen.add(id(value))
    key: Any = _NOWHERE
    try:
        if isinstance(items, Mapping):
            out: dict[str, Any] = {}
            for key, item in items.items():
                name = _key(key, depth + 1, seen)
                if name in out:
                    raise _Refused(
                        f"event data has two keys that both become {_repr(name, 40)} at "
                        "{where}; make the keys distinct strings"
                    )
                out[name] = _convert(item, depth + 1, seen)
            return out
        if isinstance(items, (set, frozenset)):
            key = _IN_SET
            converted = [_convert(v, depth + 1, seen) for v in items]
            return sorted(converted, key=_sort_key)
        result = []
        for key, item in enumerate(items):  # noqa: B007 - ``key`` names the refused item
            result.append(_convert(item, depth + 1, seen))
        return result
    except _Refused as exc:
        if key is not _NOWHERE:
            exc.path.append(key)
        raise
    finally:
        seen.discard(id(value))


def _sort_key(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _repr(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real problem
        return f"<{type(value).__name__} whose repr fails>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        if not subject_id.isascii() and _text(subject_id) != subject_id:
            raise ValueError(
                f"subject_id {_repr(subject_id, 80)} is not valid Unicode text (it holds a lone "
                "surrogate)"
            )
        if "\x00" in subject_id:
            raise ValueError(
                f"subject_id {_repr(subject_id, 80)} holds a NUL character, which no outbox or "
                "receiver can store faithfully"
            )
        if data is not None and not isinstance(data, Mapping):
            raise RenderError(
                f"event data must be a mapping (a dict of details), got a {type(data).__name__}"
            )
        return cls(
            id=event_id(source, subject_type, subject_id, verb, occurrence),
            verb=verb,
            subject_type=subject_type,
            subject_id=subject_id,
            timestamp=(timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
            source=source,
            data=jsonable(data or {}),
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

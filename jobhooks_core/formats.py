"""Wire formats: an event or a batch as the request body a subscriber receives (DESIGN §4).

``json`` (default), ``form`` (urlencoded) and ``cloudevents`` (CloudEvents 1.0 structured mode);
:func:`parse_body` is the inverse of both renderers, for receivers and tests.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from .events import Event, format_timestamp
from .exceptions import RenderError

__all__ = ["Rendered", "WireFormat", "parse_body", "render_batch", "render_event"]


class WireFormat(StrEnum):
    """How a subscription wants its request bodies encoded."""

    JSON = "json"
    FORM = "form"
    CLOUDEVENTS = "cloudevents"


@dataclass(frozen=True)
class Rendered:
    """A request body and the Content-Type it goes with."""

    body: bytes
    content_type: str


JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
CLOUDEVENT_TYPE = "application/cloudevents+json"
CLOUDEVENT_BATCH_TYPE = "application/cloudevents-batch+json"

_CE_TYPE_PREFIX = "io.jobhooks."
_CE_SOURCE_PREFIX = "/jobhooks/"
_CE_FORMAT = JSONFormat()


def _wire_format(fmt: WireFormat | str) -> WireFormat:
    try:
        return WireFormat(fmt)
    except ValueError as exc:
        choices = ", ".join(f.value for f in WireFormat)
        raise RenderError(f"unknown wire format {fmt!r}; choose one of: {choices}") from exc


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_event(fmt: WireFormat | str, event: Event) -> Rendered:
    """One event as a request body in ``fmt``."""
    match _wire_format(fmt):
        case WireFormat.JSON:
            return Rendered(event_json(event).encode("utf-8"), JSON_TYPE)
        case WireFormat.FORM:
            return Rendered(_form_body(_form_fields(event.to_dict())), FORM_TYPE)
        case WireFormat.CLOUDEVENTS:
            return Rendered(_CE_FORMAT.write(_to_cloudevent(event)), CLOUDEVENT_TYPE)


def render_batch(fmt: WireFormat | str, batch_id: str, events: Sequence[Event]) -> Rendered:
    """Several events, sent together as one batch ``batch_id``, as a request body in ``fmt``."""
    wire = _wire_format(fmt)
    if not events:
        raise RenderError(f"batch {batch_id!r} has no events; a batch carries at least one")
    dicts = [event.to_dict() for event in events]
    match wire:
        case WireFormat.JSON:
            body = _dumps({"batch_id": batch_id, "events": dicts}).encode("utf-8")
            return Rendered(body, JSON_TYPE)
        case WireFormat.FORM:
            return Rendered(_form_body({"batch_id": batch_id, "events": _dumps(dicts)}), FORM_TYPE)
        case WireFormat.CLOUDEVENTS:
            # The SDK writes single events only; a CloudEvents JSON batch is an array of them.
            parts = [_CE_FORMAT.write(_to_cloudevent(e, batch_id=batch_id)) for e in events]
            return Rendered(b"[" + b",".join(parts) + b"]", CLOUDEVENT_BATCH_TYPE)


def render_stored(fmt: WireFormat | str, stored: Sequence[str], batch_id: str | None) -> Rendered:
    """Render events kept as their canonical JSON (``event_json``, as the outbox stores them).

    JSON is assembled from the stored text without re-encoding (the outbox's hot path); the
    other formats parse the events back first. ``batch_id`` None: one event, not a batch.
    """
    wire = _wire_format(fmt)
    if wire is WireFormat.JSON:
        if batch_id is None:
            return Rendered(stored[0].encode("utf-8"), JSON_TYPE)
        head = _dumps({"batch_id": batch_id})[:-1]
        return Rendered(f'{head},"events":[{",".join(stored)}]}}'.encode(), JSON_TYPE)
    events = [Event.from_dict(json.loads(text)) for text in stored]
    if batch_id is None:
        return render_event(wire, events[0])
    return render_batch(wire, batch_id, events)


def event_json(event: Event) -> str:
    """The canonical JSON text of one event: exactly the body of a json-format request."""
    return _dumps(event.to_dict())


def parse_body(content_type: str, body: bytes) -> tuple[str | None, list[Event]]:
    """The events in a request body: ``(batch_id, events)``, ``batch_id`` None for one event.

    Raises RenderError when the content type is not one jobhooks sends or the body does not
    hold jobhooks events.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type == JSON_TYPE:
            return _parse_json(body)
        if media_type == FORM_TYPE:
            return _parse_form(body)
        if media_type == CLOUDEVENT_TYPE:
            return None, [_from_cloudevent(_CE_FORMAT.read(None, body))]
        if media_type == CLOUDEVENT_BATCH_TYPE:
            return _parse_cloudevent_batch(body)
    except RenderError:
        raise
    except (BaseCloudEventException, KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise RenderError(f"{media_type} body does not hold jobhooks events: {reason}") from exc
    known = ", ".join((JSON_TYPE, FORM_TYPE, CLOUDEVENT_TYPE, CLOUDEVENT_BATCH_TYPE))
    raise RenderError(f"unknown content type {content_type!r}; jobhooks sends one of: {known}")


# json -------------------------------------------------------------------------------------


def _parse_json(body: bytes) -> tuple[str | None, list[Event]]:
    obj = json.loads(body.decode("utf-8"))
    if not isinstance(obj, dict):
        raise RenderError(f"{JSON_TYPE} body is a JSON {type(obj).__name__}, not an object")
    if "batch_id" in obj:
        return str(obj["batch_id"]), [Event.from_dict(e) for e in obj["events"]]
    return None, [Event.from_dict(obj)]


# form -------------------------------------------------------------------------------------


def _form_fields(event: Mapping[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else _dumps(v) for k, v in event.items()}


def _form_body(fields: Mapping[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


def _parse_form(body: bytes) -> tuple[str | None, list[Event]]:
    pairs = urllib.parse.parse_qsl(
        body.decode("ascii"), keep_blank_values=True, strict_parsing=True, errors="strict"
    )
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise RenderError(f"{FORM_TYPE} body repeats a field")
    if "batch_id" in fields:
        return fields["batch_id"], [Event.from_dict(e) for e in json.loads(fields["events"])]
    obj = {k: json.loads(v) if k in ("source", "data") else v for k, v in fields.items()}
    return None, [Event.from_dict(obj)]


# cloudevents ------------------------------------------------------------------------------


def _to_cloudevent(event: Event, *, batch_id: str | None = None) -> CloudEvent:
    source = "/".join(
        urllib.parse.quote(part, safe="")
        for part in (event.source.orchestrator, event.source.instance)
    )
    attributes: dict[str, Any] = {
        "id": event.id,
        "type": f"{_CE_TYPE_PREFIX}{event.subject_type.value}.{event.verb.value}",
        "source": _CE_SOURCE_PREFIX + source,
        "subject": event.subject_id,
        "time": event.timestamp,
        "datacontenttype": JSON_TYPE,
        "subjecttype": event.subject_type.value,
        "verb": event.verb.value,
    }
    # CloudEvents attribute values must not be empty strings: an unknown version is left out.
    if event.source.version:
        attributes["orchestratorversion"] = event.source.version
    if batch_id is not None:
        attributes["batchid"] = batch_id
    return CloudEvent(attributes, dict(event.data))


def _from_cloudevent(ce: BaseCloudEvent) -> Event:
    attributes = ce.get_attributes()
    missing = [a for a in ("subject", "time", "subjecttype", "verb") if not attributes.get(a)]
    if missing:
        raise RenderError(f"CloudEvent {ce.get_id()!r} lacks {', '.join(missing)}")
    source = ce.get_source()
    parts = source.removeprefix(_CE_SOURCE_PREFIX).split("/")
    if not source.startswith(_CE_SOURCE_PREFIX) or len(parts) != 2:
        raise RenderError(
            f"CloudEvent source {source!r} is not /jobhooks/<orchestrator>/<instance>"
        )
    orchestrator, instance = (urllib.parse.unquote(p, errors="strict") for p in parts)
    data = ce.get_data()
    return Event.from_dict(
        {
            "id": ce.get_id(),
            "verb": attributes["verb"],
            "subject_type": attributes["subjecttype"],
            "subject_id": attributes["subject"],
            "timestamp": format_timestamp(attributes["time"]),
            "source": {
                "orchestrator": orchestrator,
                "instance": instance,
                "version": attributes.get("orchestratorversion", ""),
            },
            "data": {} if data is None else data,
        }
    )


def _parse_cloudevent_batch(body: bytes) -> tuple[str | None, list[Event]]:
    items = json.loads(body.decode("utf-8"))
    if not isinstance(items, list) or not items:
        raise RenderError(f"{CLOUDEVENT_BATCH_TYPE} body is not a non-empty JSON array")
    cloudevents = [_CE_FORMAT.read(None, json.dumps(item)) for item in items]
    batch_ids = {ce.get_extension("batchid") for ce in cloudevents}
    if len(batch_ids) != 1:
        raise RenderError(f"CloudEvents batch mixes batch ids {sorted(map(str, batch_ids))}")
    return batch_ids.pop(), [_from_cloudevent(ce) for ce in cloudevents]

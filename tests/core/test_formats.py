"""Wire formats: what a receiver gets in each format, and that it parses back exactly."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import urllib.parse
from importlib import resources
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from jobhooks_core.events import Event, Source
from jobhooks_core.exceptions import RenderError
from jobhooks_core.formats import WireFormat, parse_body, render_batch, render_event
from jobhooks_core.vocabulary import SubjectType, Verb
from tests.strategies import events

SCHEMA = json.loads(
    resources.files("jobhooks_core").joinpath("schemas/event.schema.json").read_text("utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA)

EXAMPLE_ID = "167fa6d6-7bf9-5898-9126-6decc332c91c"
EXAMPLE = Event.create(
    "failed",
    "work",
    "daily_export",
    source=Source("airflow", "prod", "3.3.2"),
    occurrence="scheduled__2026-11-26",
    data={"run_id": "scheduled__2026-11-26", "state": "failed", "error": "boom", "url": "u"},
    timestamp=dt.datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=dt.UTC),
)
EXAMPLE_JSON = (
    '{"id":"167fa6d6-7bf9-5898-9126-6decc332c91c","type":"work.failed","verb":"failed",'
    '"subject_type":"work","subject_id":"daily_export","timestamp":"2026-11-27T01:02:03.456789Z",'
    '"source":{"orchestrator":"airflow","instance":"prod","version":"3.3.2"},'
    '"data":{"run_id":"scheduled__2026-11-26","state":"failed","error":"boom","url":"u"}}'
)
CONTENT_TYPES = {
    WireFormat.JSON: ("application/json", "application/json"),
    WireFormat.FORM: ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    WireFormat.CLOUDEVENTS: ("application/cloudevents+json", "application/cloudevents-batch+json"),
}


def assert_valid(event_dict: dict[str, Any]) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(event_dict)]
    assert not errors, errors


def form_fields(body: bytes) -> dict[str, str]:
    pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True)
    assert len(pairs) == len(dict(pairs)), "a field is repeated"
    return dict(pairs)


# Round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WireFormat))
@given(event=events())
def test_every_event_round_trips_exactly_and_validates(fmt: WireFormat, event: Event) -> None:
    rendered = render_event(fmt, event)

    batch_id, parsed = parse_body(rendered.content_type, rendered.body)

    assert batch_id is None
    assert parsed == [event]
    assert parsed[0].to_dict() == event.to_dict()  # timestamp string to the microsecond
    assert parsed[0].timestamp.utcoffset() == dt.timedelta(0)
    assert_valid(parsed[0].to_dict())


@pytest.mark.parametrize("fmt", list(WireFormat))
@given(batch_id=st.text(max_size=40), batch=st.lists(events(), min_size=1, max_size=4))
def test_every_batch_round_trips_exactly_and_validates(
    fmt: WireFormat, batch_id: str, batch: list[Event]
) -> None:
    rendered = render_batch(fmt, batch_id, batch)

    parsed_id, parsed = parse_body(rendered.content_type, rendered.body)

    assert parsed_id == batch_id
    assert parsed == batch
    for event in parsed:
        assert_valid(event.to_dict())


@given(event=events())
def test_json_body_validates_against_shipped_schema_as_sent(event: Event) -> None:
    single = json.loads(render_event("json", event).body)
    batch = json.loads(render_batch("json", "b", [event, event]).body)

    assert_valid(single)
    for sent in batch["events"]:
        assert_valid(sent)


# json ------------------------------------------------------------------------------------


def test_json_wire_shape_matches_design() -> None:
    rendered = render_event(WireFormat.JSON, EXAMPLE)

    assert EXAMPLE.id == EXAMPLE_ID  # the id namespace is fixed forever
    assert rendered.body == EXAMPLE_JSON.encode("utf-8")
    assert rendered.content_type == "application/json"


def test_json_batch_wraps_events_with_batch_id() -> None:
    rendered = render_batch("json", "batch-7", [EXAMPLE, EXAMPLE])

    assert (
        rendered.body
        == f'{{"batch_id":"batch-7","events":[{EXAMPLE_JSON},{EXAMPLE_JSON}]}}'.encode()
    )


def test_json_keeps_non_ascii_text_as_utf8() -> None:
    event = Event.create(
        "synced",
        "segment",
        "データ/書き出し",
        source=Source("prefect"),
        occurrence="1",
        data={"note": "ünïcødé"},
    )

    body = render_event("json", event).body

    assert "データ/書き出し".encode() in body
    assert "ünïcødé".encode() in body


# form ------------------------------------------------------------------------------------


def test_form_sends_top_level_fields_with_source_and_data_as_json() -> None:
    rendered = render_event("form", EXAMPLE)

    fields = form_fields(rendered.body)

    assert rendered.content_type == "application/x-www-form-urlencoded"
    assert fields == {
        "id": EXAMPLE_ID,
        "type": "work.failed",
        "verb": "failed",
        "subject_type": "work",
        "subject_id": "daily_export",
        "timestamp": "2026-11-27T01:02:03.456789Z",
        "source": '{"orchestrator":"airflow","instance":"prod","version":"3.3.2"}',
        "data": json.dumps(EXAMPLE.to_dict()["data"], separators=(",", ":")),
    }


def test_form_batch_sends_batch_id_and_events_as_json() -> None:
    fields = form_fields(render_batch("form", "batch-7", [EXAMPLE]).body)

    assert fields.keys() == {"batch_id", "events"}
    assert fields["batch_id"] == "batch-7"
    assert json.loads(fields["events"]) == [EXAMPLE.to_dict()]


# cloudevents -----------------------------------------------------------------------------


def test_cloudevent_is_read_by_the_cloudevents_sdk() -> None:
    rendered = render_event("cloudevents", EXAMPLE)

    ce = from_structured(
        HTTPMessage({"content-type": rendered.content_type}, rendered.body), JSONFormat()
    )

    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == EXAMPLE_ID
    assert ce.get_type() == "io.jobhooks.work.failed"
    assert ce.get_source() == "/jobhooks/airflow/prod"
    assert ce.get_subject() == "daily_export"
    assert ce.get_time() == EXAMPLE.timestamp
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_extension("subjecttype") == "work"
    assert ce.get_extension("verb") == "failed"
    assert ce.get_extension("orchestratorversion") == "3.3.2"
    assert ce.get_data() == EXAMPLE.to_dict()["data"]


def test_cloudevents_batch_is_an_array_of_structured_events() -> None:
    other = Event.create(
        "syncing",
        "topic-document",
        "flow/deploy ment",
        source=Source("prefect", "a/b"),
        occurrence="r1",
    )
    rendered = render_batch("cloudevents", "batch-7", [EXAMPLE, other])

    items = json.loads(rendered.body)
    read = [JSONFormat().read(None, json.dumps(item)) for item in items]

    assert rendered.content_type == "application/cloudevents-batch+json"
    assert [ce.get_type() for ce in read] == [
        "io.jobhooks.work.failed",
        "io.jobhooks.topic-document.syncing",
    ]
    assert read[1].get_subject() == "flow/deploy ment"
    assert read[1].get_source() == "/jobhooks/prefect/a%2Fb"
    assert read[1].get_extension("subjecttype") == "topic-document"
    assert read[1].get_extension("verb") == "syncing"
    assert read[1].get_data() == {}
    assert {ce.get_extension("batchid") for ce in read} == {"batch-7"}


def test_cloudevent_leaves_out_an_unknown_orchestrator_version() -> None:
    event = Event.create(
        "created", "work", "w", source=Source("airflow", "prod", ""), occurrence="o"
    )

    attributes = json.loads(render_event("cloudevents", event).body)

    assert "orchestratorversion" not in attributes
    assert parse_body("application/cloudevents+json", render_event("cloudevents", event).body)[
        1
    ] == [event]


# content types and errors ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_content_types(fmt: WireFormat) -> None:
    single, batch = CONTENT_TYPES[fmt]

    assert render_event(fmt, EXAMPLE).content_type == single
    assert render_batch(fmt.value, "b", [EXAMPLE]).content_type == batch


def test_content_type_parameters_and_case_are_ignored_when_parsing() -> None:
    body = render_event("json", EXAMPLE).body

    assert parse_body("Application/JSON; charset=utf-8", body) == (None, [EXAMPLE])


def test_unknown_format_names_the_value_and_the_choices() -> None:
    with pytest.raises(RenderError) as info:
        render_event("xml", EXAMPLE)

    assert "'xml'" in str(info.value)
    assert "json, form, cloudevents" in str(info.value)


def test_empty_batch_is_refused() -> None:
    with pytest.raises(RenderError, match="no events"):
        render_batch("json", "b", [])


def test_unknown_content_type_is_refused() -> None:
    with pytest.raises(RenderError, match="text/plain"):
        parse_body("text/plain", b"hello")


@pytest.mark.parametrize(
    ("content_type", "body", "says"),
    [
        ("application/json", b"{not json", "does not hold jobhooks events"),
        ("application/json", b"[1, 2]", "JSON list, not an object"),
        ("application/json", b'{"id": "x"}', "missing field 'source'"),
        ("application/json", b"\xff\xfe", "does not hold jobhooks events"),
        ("application/x-www-form-urlencoded", b"id=1&id=2", "repeats a field"),
        ("application/x-www-form-urlencoded", b"id=x&verb=failed", "missing field 'source'"),
        ("application/cloudevents+json", b'{"specversion": "1.0"}', "does not hold jobhooks"),
        ("application/cloudevents+json", b'{"id":"1","type":"t","source":"/s"}', "lacks subject"),
        ("application/cloudevents-batch+json", b"[]", "not a non-empty JSON array"),
        ("application/cloudevents-batch+json", b"{}", "not a non-empty JSON array"),
    ],
)
def test_unparseable_body_is_refused_with_a_clear_render_error(
    content_type: str, body: bytes, says: str
) -> None:
    with pytest.raises(RenderError, match=re.escape(says)):
        parse_body(content_type, body)


# schema ----------------------------------------------------------------------------------


def test_schema_enums_equal_the_vocabulary() -> None:
    properties = SCHEMA["properties"]

    assert sorted(properties["verb"]["enum"]) == sorted(v.value for v in Verb)
    assert sorted(properties["subject_type"]["enum"]) == sorted(s.value for s in SubjectType)


def test_schema_type_pattern_accepts_every_subject_type_and_verb() -> None:
    pattern = re.compile(SCHEMA["properties"]["type"]["pattern"])

    for subject_type, verb in itertools.product(SubjectType, Verb):
        assert pattern.fullmatch(f"{subject_type.value}.{verb.value}")

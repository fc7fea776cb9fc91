"""Events: deterministic ids, the wire shape, and predictable JSON for Python values."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path

import pytest

from jobhooks_core import Event, RenderError, Source, SubjectType, Verb

SOURCE = Source("airflow", "prod", "3.3.2")
WHEN = dt.datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=dt.UTC)


def test_same_state_change_reported_twice_has_the_same_id() -> None:
    a = Event.create("failed", "work", "daily_export", source=SOURCE, occurrence="run-1")
    b = Event.create(
        Verb.FAILED,
        SubjectType.WORK,
        "daily_export",
        source=SOURCE,
        occurrence="run-1",
        data={"other": "details"},
    )
    assert a.id == b.id
    assert uuid.UUID(a.id).version == 5


@pytest.mark.parametrize(
    "change",
    [
        {"occurrence": "run-2"},
        {"subject_id": "weekly_export"},
        {"verb": Verb.SYNCCOMPLETE},
        {"subject_type": SubjectType.SEGMENT},
        {"source": Source("airflow", "staging", "3.3.2")},
        {"source": Source("prefect", "prod", "3.3.2")},
    ],
)
def test_any_other_occurrence_has_another_id(change: dict[str, object]) -> None:
    base: dict[str, object] = {
        "verb": Verb.FAILED,
        "subject_type": SubjectType.WORK,
        "subject_id": "daily_export",
        "source": SOURCE,
        "occurrence": "run-1",
    }
    first = Event.create(**base)  # type: ignore[arg-type]
    other = Event.create(**{**base, **change})  # type: ignore[arg-type]
    assert first.id != other.id


def test_orchestrator_version_does_not_change_the_id() -> None:
    a = Event.create(
        "failed", "work", "x", source=Source("airflow", "prod", "3.0.0"), occurrence="r"
    )
    b = Event.create(
        "failed", "work", "x", source=Source("airflow", "prod", "3.3.2"), occurrence="r"
    )
    assert a.id == b.id


def test_wire_dict_has_the_designed_shape() -> None:
    event = Event.create(
        "failed",
        "work",
        "daily_export",
        source=SOURCE,
        occurrence="run-1",
        data={"run_id": "run-1", "state": "failed"},
        timestamp=WHEN,
    )
    assert event.to_dict() == {
        "id": event.id,
        "type": "work.failed",
        "verb": "failed",
        "subject_type": "work",
        "subject_id": "daily_export",
        "timestamp": "2026-11-27T01:02:03.456789Z",
        "source": {"orchestrator": "airflow", "instance": "prod", "version": "3.3.2"},
        "data": {"run_id": "run-1", "state": "failed"},
    }
    assert Event.from_dict(event.to_dict()) == event


def test_timestamps_are_normalised_to_utc() -> None:
    tz = dt.timezone(dt.timedelta(hours=5))
    event = Event.create(
        "failed", "work", "x", source=SOURCE, occurrence="r", timestamp=WHEN.astimezone(tz)
    )
    assert event.to_dict()["timestamp"] == "2026-11-27T01:02:03.456789Z"


def test_common_python_values_in_data_become_predictable_json() -> None:
    event = Event.create(
        "synced",
        "work",
        "x",
        source=SOURCE,
        occurrence="r",
        data={
            "when": WHEN,
            "day": dt.date(2026, 11, 27),
            "amount": decimal.Decimal("1.10"),
            "run": uuid.UUID(int=1),
            "path": Path("/tmp/out.csv"),
            "tags": {"b", "a"},
            "pair": (1, 2),
            "raw": b"ok",
            "blob": b"\xff\x00",
            "took": dt.timedelta(seconds=1.5),
            "verb": Verb.SYNCED,
            3: "int key",
        },
    )
    assert event.data == {
        "when": "2026-11-27T01:02:03.456789Z",
        "day": "2026-11-27",
        "amount": "1.10",
        "run": "00000000-0000-0000-0000-000000000001",
        "path": "/tmp/out.csv",
        "tags": ["a", "b"],
        "pair": [1, 2],
        "raw": "ok",
        "blob": {"base64": "/wA="},
        "took": 1.5,
        "verb": "synced",
        "3": "int key",
    }


def test_data_that_has_no_json_form_is_refused_clearly() -> None:
    with pytest.raises(RenderError, match="event data holds a object"):
        Event.create("synced", "work", "x", source=SOURCE, occurrence="r", data={"thing": object()})


@pytest.mark.parametrize("bad", ["", None, 3])
def test_subject_id_must_be_a_non_empty_string(bad: object) -> None:
    with pytest.raises(ValueError, match="subject_id must be a non-empty string"):
        Event.create("failed", "work", bad, source=SOURCE, occurrence="r")  # type: ignore[arg-type]


def test_unknown_verb_is_refused() -> None:
    with pytest.raises(ValueError, match="'exploded' is not a valid Verb"):
        Event.create("exploded", "work", "x", source=SOURCE, occurrence="r")

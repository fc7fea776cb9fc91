"""Hostile event data: every Python value is either serialised by a documented rule or refused
with an error naming where in ``data`` it is; an oversized event is cut to
``max_payload_bytes`` by one deterministic rule and still delivered, valid, and marked.

README, "Event data: types and size limit", documents both rules; these tests are its proof.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import logging
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobhooks_core import LifecycleSignal, Signal, Subscription
from jobhooks_core.events import MAX_DEPTH, Event, Source, jsonable
from jobhooks_core.exceptions import RenderError
from jobhooks_core.formats import WireFormat, event_json, parse_body, render_batch, render_event
from jobhooks_core.payload import FLAG, fit
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.core.clitools import cli_env, run, write_config
from tests.core.test_formats import assert_valid
from tests.receiver import TestReceiver
from tests.strategies import events, json_data

SOURCE = Source("airflow", "prod", "3.3.2")
WHEN = dt.datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=dt.UTC)
KIB = 1024


class Colour(enum.Enum):
    RED = (255, 0, 0)


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    def __str__(self) -> str:
        return "not the text"


@dataclasses.dataclass
class Point:
    x: int
    when: dt.datetime


def event(data: Any, subject_id: str = "daily_export", verb: str = "failed") -> Event:
    return Event.create(verb, "work", subject_id, source=SOURCE, occurrence="r1", data=data)


def converted(value: Any) -> Any:
    return event({"v": value}).data["v"]


# Serialised predictably -------------------------------------------------------------------

PLUS_5 = dt.timezone(dt.timedelta(hours=5))

RULES = [
    # datetimes: RFC 3339 in UTC with Z, microseconds; naive ones are taken to be UTC
    (WHEN, "2026-11-27T01:02:03.456789Z"),
    (WHEN.astimezone(PLUS_5), "2026-11-27T01:02:03.456789Z"),
    (dt.datetime(2026, 11, 27, 1, 2, 3), "2026-11-27T01:02:03.000000Z"),
    (dt.datetime(1, 1, 1, 2, tzinfo=PLUS_5), "0001-01-01T02:00:00.000000+05:00"),  # no UTC form
    (dt.date(2026, 11, 27), "2026-11-27"),
    (dt.time(1, 2, 3), "01:02:03"),
    (dt.time(1, 2, 3, tzinfo=PLUS_5), "01:02:03+05:00"),
    (dt.timedelta(days=1, microseconds=5), 86400.000005),
    # numbers: Decimal keeps its exact digits; nothing non-finite reaches the JSON
    (decimal.Decimal("1.10"), "1.10"),
    (decimal.Decimal("-0.000000000000000000000000001"), "-1E-27"),
    (decimal.Decimal("NaN"), "NaN"),
    (decimal.Decimal("-Infinity"), "-Infinity"),
    (math.nan, "NaN"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
    (-0.0, -0.0),
    (2**64, 2**64),
    (Level.HIGH, 3),
    (True, True),
    # bytes: UTF-8 text when valid, else {"base64": …}
    (b"ok \xc3\xa9", "ok é"),
    (b"\xff\x00", {"base64": "/wA="}),
    (b"\xed\xa0\x80", {"base64": "7aCA"}),  # an encoded surrogate is not UTF-8
    (bytearray(b"abc"), "abc"),
    (memoryview(b"\x80abc")[1:], "abc"),
    # collections: sets sorted (by their JSON text), tuples as lists
    ({"b", "a", "c"}, ["a", "b", "c"]),
    (frozenset({3, "3", None, 1.5, (1, 2)}), ["3", 1.5, 3, [1, 2], None]),
    ((1, (2, 3)), [1, [2, 3]]),
    # named values as strings
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (PurePosixPath("/tmp/out.csv"), "/tmp/out.csv"),
    (PureWindowsPath(r"C:\out.csv"), r"C:\out.csv"),
    (Colour.RED, [255, 0, 0]),
    (Point(1, WHEN), {"x": 1, "when": "2026-11-27T01:02:03.456789Z"}),
    # text: lone surrogates become U+FFFD (a split pair rejoins), NUL and the rest kept
    ("a\ud800b", "a\ufffdb"),
    ("\ud83d\ude80", "🚀"),
    ("nul\x00 tab\t", "nul\x00 tab\t"),
    (Name("the text"), "the text"),
]


@pytest.mark.parametrize(("value", "expected"), RULES, ids=[repr(v)[:40] for v, _ in RULES])
def test_python_values_in_data_become_documented_json(value: Any, expected: Any) -> None:
    assert converted(value) == expected
    assert type(converted(value)) is type(expected)


def test_keys_become_strings_by_the_same_rules() -> None:
    data = {1: "int", None: "none", 1.5: "float", (1, "a"): "tuple",
            dt.date(2026, 1, 2): "date", "x\udcff": "surrogate"}

    assert list(event(data).data) == ["1", "null", "1.5", '[1,"a"]', "2026-01-02", "x\ufffd"]
    assert list(event({False: 0}).data) == ["false"]


def test_a_huge_string_and_nul_characters_survive_every_format() -> None:
    huge = event({"log": "é\x00" * 100_000})

    for fmt in WireFormat:
        rendered = render_event(fmt, huge)
        assert parse_body(rendered.content_type, rendered.body) == (None, [huge])


def test_set_order_does_not_depend_on_insertion_order() -> None:
    items = [3, "3", None, 1.5, "b", (1, 2), True, b"\xff"]

    outputs = {json.dumps(converted(set(items[i:] + items[:i]))) for i in range(len(items))}

    assert len(outputs) == 1


# Refused clearly ---------------------------------------------------------------------------


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "x", "children": []}
    loop["children"].append({"parent": loop})
    return {"tree": loop}


def _deep(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    node = data
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return data


REFUSALS = [
    ({"a": [0, 1, 2, object()]}, "event data holds a object at data['a'][3] (<object object"),
    ({"a": {"b": Hostile()}}, "holds a Hostile at data['a']['b'] (<Hostile whose repr fails>)"),
    (_cycle(), "event data contains itself at data['tree']['children'][0]['parent'] (a dict"),
    ({"l": (lambda x: [x, [x]])([])}, None),  # the same list twice is not a cycle
    (_deep(MAX_DEPTH + 1), "nested more than 64 levels deep at data['a']['a']['a']['a'][…]"),
    (_deep(MAX_DEPTH), None),
    ({"k": {1: "a", "1": "b"}}, "two keys that both become '1' at data['k']['1']"),
    ({"n": 10**5000}, "an int of more than 4200 digits at data['n']; pass it as a string"),
    ({"s": {1, object()}}, "at data['s'][<a set member>]"),
    ({"g": (i for i in range(3))}, "event data holds a generator at data['g']"),
]


@pytest.mark.parametrize(("data", "says"), REFUSALS, ids=[str(i) for i in range(len(REFUSALS))])
def test_data_with_no_json_form_is_refused_naming_where_it_is(data: Any, says: str | None) -> None:
    if says is None:
        event(data)  # accepted
        return
    with pytest.raises(RenderError) as info:
        event(data)

    assert says in str(info.value)


def test_data_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(RenderError, match="event data must be a mapping .* got a list"):
        event([("a", 1)])


def test_a_subject_id_with_a_lone_surrogate_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="is not valid Unicode text"):
        event({}, subject_id="run\udcff")


def test_a_subject_id_with_a_nul_is_refused_clearly() -> None:
    # PostgreSQL TEXT cannot hold NUL: refused at emit, not lost at delivery
    with pytest.raises(ValueError, match="holds a NUL character"):
        event({}, subject_id="run\x00one")


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    with TestReceiver() as started:
        yield started


@pytest.fixture
def runtime(tmp_path: Path, receiver: TestReceiver) -> Iterator[Jobhooks]:
    rt = Jobhooks(
        settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, max_payload_bytes="4096"),
        subscriptions=[Subscription.from_mapping("ops", {"url": receiver.url})],
        long_lived=True,
    )
    yield rt
    rt.close()


def test_emit_with_refused_data_logs_where_and_never_raises(
    runtime: Jobhooks, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        assert runtime.emit("failed", "work", "daily_export", data=_cycle()) is None

    (record,) = caplog.records
    assert record.getMessage().startswith(
        "jobhooks: could not record emit('failed', 'work', 'daily_export'): event data contains "
        "itself at data['tree']['children'][0]['parent']"
    )
    assert record.getMessage().endswith("(no effect on the job)")
    assert runtime.outbox.deliveries() == []


# Every format, delivered ------------------------------------------------------------------


def hostile_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.decimals()
        | st.text()
        | st.binary(max_size=20)
        | st.datetimes(timezones=st.none() | st.timezones())
        | st.dates()
        | st.times()
        | st.timedeltas()
        | st.uuids()
        | st.sampled_from([Colour.RED, Level.HIGH, Path("a/b"), PureWindowsPath("c:\\x")])
    )
    keys = st.text(max_size=8) | st.integers() | st.none() | st.booleans()
    hashable = st.none() | st.integers() | st.text(max_size=5) | st.binary(max_size=5)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.sets(hashable, max_size=4)
        | st.frozensets(hashable, max_size=4)
        | st.dictionaries(keys, inner, max_size=4),
        max_leaves=15,
    )


@given(data=st.dictionaries(st.text(max_size=8), hostile_values(), max_size=5))
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
def test_any_accepted_data_renders_valid_round_tripping_events_in_every_format(
    data: dict[str, Any],
) -> None:
    try:
        made = event(data)
    except RenderError as exc:  # only keys that collide once turned into text
        assert "two keys that both become" in str(exc)
        return

    assert jsonable(made.data) == made.data  # already plain JSON: converting again changes nothing
    json.dumps(made.data, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    for fmt in WireFormat:
        single = render_event(fmt, made)
        batch = render_batch(fmt, "b1", [made, made])
        assert parse_body(single.content_type, single.body) == (None, [made])
        assert parse_body(batch.content_type, batch.body) == ("b1", [made, made])
    assert_valid(json.loads(render_event("json", made).body))


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_hostile_values_arrive_at_a_receiver_as_documented(
    tmp_path: Path, receiver: TestReceiver, fmt: WireFormat
) -> None:
    rt = Jobhooks(
        settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}),
        subscriptions=[Subscription.from_mapping("ops", {"url": receiver.url, "format": fmt})],
        long_lived=True,
    )
    try:
        sent = rt.emit("failed", "work", "daily_export", data={str(i): v for i, (v, _) in
                                                                 enumerate(RULES)})
        receiver.wait_for(1)
    finally:
        rt.close()

    assert sent is not None
    (got,) = receiver.events()
    assert_valid(got)
    assert got["id"] == sent.id
    assert got["data"] == {str(i): expected for i, (_, expected) in enumerate(RULES)}


# The payload size cap ----------------------------------------------------------------------

TRACEBACK = "Traceback (most recent call last):\n" + "  File x, line 1\n" * 50_000 + "Boom: y"


def test_an_oversized_traceback_is_cut_to_the_cap_and_still_delivered(
    runtime: Jobhooks, receiver: TestReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    data = {"error": TRACEBACK, "run_id": "r1", "short": "kept whole"}
    with caplog.at_level(logging.WARNING, logger="jobhooks"):
        sent = runtime.emit("failed", "work", "daily_export", data=data, occurrence="r1")
    (request,) = receiver.wait_for(1)

    assert sent is not None
    whole = Event.create("failed", "work", "daily_export", source=runtime.source,
                         occurrence="r1", data=data, timestamp=sent.timestamp)
    assert len(request.body) <= 4096
    (got,) = receiver.events()
    assert_valid(got)
    assert (got["id"], got["verb"], got["subject_type"], got["subject_id"]) == (
        whole.id, "failed", "work", "daily_export")
    head, marker, tail = re.split(r"…\[truncated (\d+) bytes\]…", got["data"]["error"])
    assert head.startswith("Traceback (most recent call last):\n")
    assert tail.endswith("Boom: y")  # the end of a traceback says what went wrong: kept
    assert TRACEBACK.startswith(head) and TRACEBACK.endswith(tail)
    assert len(head.encode()) + int(marker) + len(tail.encode()) == len(TRACEBACK.encode())
    assert got["data"]["run_id"] == "r1" and got["data"]["short"] == "kept whole"
    assert got["data"][FLAG] == {
        "original_bytes": len(event_json(whole).encode()),
        "max_payload_bytes": 4096,
        "strings_cut": 1,
    }
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == (
        f"jobhooks: event {sent.id} (work.failed for 'daily_export') is "
        f"{got['data'][FLAG]['original_bytes']} bytes, over JOBHOOKS_MAX_PAYLOAD_BYTES=4096: cut "
        f"1 string(s) (data['error']); sending {len(event_json(sent).encode())} bytes"
    )


def test_the_longest_strings_are_cut_first_to_one_common_length() -> None:
    data = {"a": "a" * 50_000, "b": ["b" * 20_000, "short"], "c": "c" * 900}

    cut, how = fit(event(data), 8 * KIB)

    assert how is not None and how.strings_cut == 2
    assert how.longest == ("data['a']", "data['b'][0]")
    assert cut.data["c"] == "c" * 900 and cut.data["b"][1] == "short"
    kept_a = cut.data["a"].replace("…[truncated ", "|").split("|")[0]
    kept_b = cut.data["b"][0].replace("…[truncated ", "|").split("|")[0]
    assert len(kept_a) == len(kept_b)  # both cut down to the same length
    assert len(event_json(cut).encode()) <= 8 * KIB


def test_data_that_cannot_fit_by_cutting_strings_becomes_a_stub_naming_the_keys() -> None:
    data = {"numbers": list(range(10_000)), "run_id": "r1"}

    cut, how = fit(event(data), 2 * KIB)

    assert how is not None
    assert cut.data == {
        FLAG: {
            "original_bytes": how.original_bytes,
            "max_payload_bytes": 2048,
            "dropped_keys": ["numbers", "run_id"],
            "keys_dropped": 2,
        }
    }
    assert (cut.id, cut.type, cut.subject_id) == (event(data).id, "work.failed", "daily_export")
    assert_valid(cut.to_dict())


def test_an_event_whose_subject_id_alone_is_too_big_is_still_sent_with_a_stub(
    runtime: Jobhooks, receiver: TestReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobhooks"):
        sent = runtime.emit("failed", "work", "x" * 10_000, data={"error": "boom"})
    receiver.wait_for(1)

    assert sent is not None and sent.data[FLAG]["dropped_keys"] == []
    assert receiver.event_ids() == [sent.id]
    assert "its subject id or source is too big" in caplog.text


def test_lifecycle_signals_are_capped_too(runtime: Jobhooks, receiver: TestReceiver) -> None:
    signal = LifecycleSignal(Signal.RUN_FAILED, "daily_export", occurrence="r1",
                             data={"error": TRACEBACK})

    (sent,) = runtime.signal(signal)
    (request,) = receiver.wait_for(1)

    assert len(request.body) <= 4096 and sent.data[FLAG]["strings_cut"] == 1
    assert receiver.events()[0]["data"] == sent.data


def test_an_event_under_the_cap_is_left_alone() -> None:
    made = event({"error": "x" * 3000})

    assert fit(made, 4 * KIB) == (made, None)


@given(
    made=events(),
    extra=st.dictionaries(st.text(max_size=5), st.text(min_size=500, max_size=3000), max_size=4),
    limit=st.integers(min_value=1024, max_value=6000),
)
@settings(max_examples=300)
def test_any_cut_event_fits_validates_and_keeps_its_identity(
    made: Event, extra: dict[str, str], limit: int
) -> None:
    made = dataclasses.replace(made, data={**made.data, **extra})
    cut, how = fit(made, limit)
    size = len(event_json(cut).encode())

    assert (cut.id, cut.verb, cut.subject_type, cut.subject_id, cut.timestamp, cut.source) == (
        made.id, made.verb, made.subject_type, made.subject_id, made.timestamp, made.source)
    if how is None:
        assert cut is made and size <= limit
    else:
        envelope = len(event_json(dataclasses.replace(made, data={})).encode())
        assert size <= limit or envelope + 120 > limit  # only an oversized envelope stays over
        assert FLAG in cut.data
        assert fit(cut, limit)[0] == cut or size > limit  # cutting twice changes nothing
    for fmt in WireFormat:
        rendered = render_event(fmt, cut)
        assert parse_body(rendered.content_type, rendered.body) == (None, [cut])
    assert_valid(cut.to_dict())


@given(data=json_data(), limit=st.integers(min_value=1024, max_value=4096))
def test_the_cut_is_deterministic(data: dict[str, Any], limit: int) -> None:
    made = event({**data, "log": "é" * 5000})

    assert fit(made, limit) == fit(made, limit)


def test_the_cap_comes_from_jobhooks_max_payload_bytes(tmp_path: Path) -> None:
    rt = Jobhooks(
        settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path),
                                    "JOBHOOKS_MAX_PAYLOAD_BYTES": "2048"}),
        subscriptions=[], long_lived=True)
    try:
        sent = rt.emit("failed", "work", "x", data={"error": "e" * 5000})
    finally:
        rt.close()

    assert sent is not None and sent.data[FLAG]["max_payload_bytes"] == 2048


# jobhooks emit --data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("{not json", "--data is not valid JSON (Expecting property name"),
        ("[1, 2]", "--data must be a JSON object, got an array ('[1, 2]')"),
        ('"text"', "--data must be a JSON object, got a string"),
        ("null", "--data must be a JSON object, got null"),
        ("1e400", "--data must be a JSON object, got a number"),
        ("[" * 100_000, "--data is nested too deeply; event data may be 64 levels deep"),
        ('{"a":' * 70 + "1" + "}" * 70, "--data: event data is nested more than 64 levels deep"),
    ],
    ids=["invalid", "array", "string", "null", "number", "recursion", "too-deep"],
)
def test_emit_data_that_is_not_a_json_object_is_refused_clearly(
    tmp_path: Path, data: str, says: str
) -> None:
    env = cli_env(tmp_path, write_config(tmp_path / "c.json"))
    done = run(["emit", "--subject-type", "work", "--subject-id", "x", "--verb", "failed",
                "--data", data], env)

    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr

"""Configuration fuzzing: whatever a config file or a subscription holds, loading it never raises;
every problem is a ConfigurationError naming the subscription (or the file) and the field, and
one bad subscription never stops the others."""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobhooks_core.config import LoadedSubscriptions, load_config_file, parse_subscriptions
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.subscriptions import FIELDS

GOOD = {"name": "known-good", "url": "https://example.com/hooks"}

# Values that are right for some field, so the fuzzing gets past the first check.
PLAUSIBLE = st.sampled_from(
    [
        "https://example.com/hooks", "http://127.0.0.1:9/x", "realtime", "batch", "json", "form",
        "cloudevents", "failed,completed", ["failed", "synced"], ["work", "segment"], "daily_*",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", {"Authorization": "Bearer x"}, 10, 0.5, True,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text()
    | st.datetimes()
    | st.dates()
    | PLAUSIBLE
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                   max_size=4),
    max_leaves=10,
)
FIELD_NAMES = st.sampled_from([*FIELDS, "name"]) | st.text(max_size=12)


def subscription_tables() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(FIELD_NAMES, VALUES, max_size=8)


def check_errors(loaded: LoadedSubscriptions, names: set[str]) -> None:
    for error in loaded.errors:
        assert isinstance(error, ConfigurationError)
        problems = getattr(error, "problems", [error])
        for problem in problems:
            assert problem.subscription in names or problem.field is not None, problem
            if problem.subscription is not None:
                assert f"subscription {problem.subscription!r}" in str(error)
            if problem.field is not None:
                assert repr(problem.field) in str(problem)


@given(
    tables=st.lists(subscription_tables(), max_size=5),
    where=st.integers(min_value=0, max_value=5),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_subscription_fields_give_a_subscription_or_errors_naming_it(
    tables: list[dict[str, Any]], where: int
) -> None:
    entries = [(f"sub-{i}", table) for i, table in enumerate(tables)]
    entries.insert(min(where, len(entries)), (GOOD["name"], GOOD))

    loaded = parse_subscriptions(entries, origin="fuzz")

    names = {name for name, _ in entries}
    assert GOOD["name"] in {s.name for s in loaded.subscriptions}  # never stopped by the others
    accounted = {s.name for s in loaded.subscriptions} | {e.subscription for e in loaded.errors}
    assert accounted == names  # each one either works or says why not
    check_errors(loaded, names)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (inline), as a person might have typed it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(
            value) else repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    return json.dumps(str(value))  # a basic string; an escape TOML lacks makes the file invalid


def toml_document(tables: list[dict[str, Any]]) -> str:
    parts = []
    for table in tables:
        parts.append("[[subscriptions]]")
        parts += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(parts) + "\n"


def load_text(text: str | bytes, suffix: str) -> LoadedSubscriptions:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"jobhooks{suffix}"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return load_config_file(path)


@given(
    tables=st.lists(subscription_tables(), max_size=4),
    top=st.dictionaries(st.text(max_size=10), VALUES, max_size=2),
    suffix=st.sampled_from([".toml", ".json", ""]),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_config_file_loads_without_raising(
    tables: list[dict[str, Any]], top: dict[str, Any], suffix: str
) -> None:
    if suffix == ".toml":
        text = toml_document([GOOD, *tables])
    else:
        top = {k: v for k, v in top.items() if k != "subscriptions"}
        text = json.dumps({"subscriptions": [GOOD, *tables], **top}, default=str)

    loaded = load_text(text, suffix)

    names = {str(t.get("name")) for t in [GOOD, *tables]}
    check_errors(loaded, names)
    file_errors = [e for e in loaded.errors if e.field == "JOBHOOKS_CONFIG"]
    if not file_errors:  # the file parsed: the good subscription works whatever else is there
        duplicate = any(t.get("name") == GOOD["name"] for t in tables)
        assert duplicate or GOOD["name"] in {s.name for s in loaded.subscriptions}


@given(content=st.text() | st.binary(), suffix=st.sampled_from([".toml", ".json", ""]))
@settings(max_examples=300)
def test_a_config_file_of_random_content_is_refused_with_an_error_naming_it(
    content: str | bytes, suffix: str
) -> None:
    loaded = load_text(content, suffix)

    for error in loaded.errors:
        assert isinstance(error, ConfigurationError)
        assert "jobhooks" in str(error)  # the file's name, or the subscription's origin


@pytest.mark.parametrize(
    ("text", "suffix"),
    [
        ("[" * 100_000, ".json"),
        ('{"subscriptions": ' + "[" * 5000 + "]" * 5000 + "}", ".json"),
        ("a = " + "[" * 100_000, ".toml"),
        ("a = " + "{b = " * 3000 + "1" + "}" * 3000, ".toml"),
    ],
    ids=["json-unclosed", "json-closed", "toml-arrays", "toml-tables"],
)
def test_a_config_nested_thousands_deep_is_refused_naming_the_file(text: str, suffix: str) -> None:
    loaded = load_text(text, suffix)

    (error,) = loaded.errors
    assert error.field == "JOBHOOKS_CONFIG"
    assert f"jobhooks{suffix}" in str(error)


@pytest.mark.parametrize("field", ["timeout_seconds", "batch_flush_seconds"])
def test_seconds_too_many_for_a_float_are_refused_not_raised(field: str) -> None:
    loaded = parse_subscriptions([("big", {**GOOD, "mode": "batch", field: 10**400})])

    (error,) = loaded.errors
    assert error.subscription == "big" and error.field == field
    assert "10000000000000000000… is not a positive number; it is too large" in str(error)


def test_a_huge_batch_size_is_just_a_big_count() -> None:
    loaded = parse_subscriptions([("big", {**GOOD, "mode": "batch", "batch_size": 10**400})])

    assert loaded.errors == () and loaded.subscriptions[0].batch_size == 10**400

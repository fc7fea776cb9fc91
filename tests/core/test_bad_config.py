"""Every bad subscription value is refused with a message naming the subscription, the field,
the bad value and the valid choices (one table, one row per mistake a user makes)."""

from __future__ import annotations

from typing import Any

import pytest

from jobhooks_core import ConfigurationError, Subscription

URL = "https://hooks.example.com/jobs"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# (case id, fields, the field named, fragments the message must contain)
CASES: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("missing url", {}, "url", ["is required"]),
    ("url not a string", {"url": 42}, "url", ["must be a string", "42"]),
    (
        "ftp url",
        {"url": "ftp://hooks.example.com/x"},
        "url",
        ["'ftp'", "valid schemes: http, https"],
    ),
    ("schemeless url", {"url": "hooks.example.com/x"}, "url", ["scheme 'none'", "http, https"]),
    (
        "url with credentials",
        {"url": "https://bob:hunter2@hooks.example.com/x"},
        "url",
        ["credentials", "https://hooks.example.com/x"],
    ),
    ("url without host", {"url": "https:///x"}, "url", ["no host"]),
    ("url with bad port", {"url": "https://hooks.example.com:99999/x"}, "url", ["not a valid URL"]),
    ("url with newline", {"url": "https://hooks.example.com/x\nHost: evil"}, "url", ["line break"]),
    (
        "misspelt verb",
        {"url": URL, "verbs": ["faild"]},
        "verbs",
        ["'faild' is not a verb", "did you mean 'failed'?", "synccomplete"],
    ),
    (
        "unknown verb no close match",
        {"url": URL, "verbs": ["exploded"]},
        "verbs",
        ["'exploded' is not a verb", "valid verbs: synccomplete, update, created"],
    ),
    (
        "batch-only verb on realtime",
        {"url": URL, "verbs": ["completed"]},
        "verbs",
        ["'completed' is batch-only", "realtime subscription cannot carry it", "mode = 'batch'"],
    ),
    (
        "realtime-only verb on batch",
        {"url": URL, "mode": "batch", "verbs": ["synced"]},
        "verbs",
        ["'synced' is realtime-only", "batch subscription cannot carry it"],
    ),
    (
        "syncing on batch",
        {"url": URL, "mode": "batch", "verbs": "syncing, failed"},
        "verbs",
        ["'syncing' is realtime-only"],
    ),
    ("empty verb list", {"url": URL, "verbs": []}, "verbs", ["is empty", "leave the field out"]),
    ("verbs not a list", {"url": URL, "verbs": 7}, "verbs", ["must be a list of strings"]),
    (
        "misspelt subject type",
        {"url": URL, "subject_types": ["segmnt"]},
        "subject_types",
        ["'segmnt' is not a subject type", "did you mean 'segment'?", "topic-document"],
    ),
    (
        "subject type with underscore",
        {"url": URL, "subject_types": ["topic_document"]},
        "subject_types",
        ["did you mean 'topic-document'?"],
    ),
    (
        "subject ids not strings",
        {"url": URL, "subject_ids": ["a", 3]},
        "subject_ids",
        ["must be a list of strings", "3 is a int"],
    ),
    ("empty subject ids", {"url": URL, "subject_ids": [" "]}, "subject_ids", ["is empty"]),
    (
        "misspelt mode",
        {"url": URL, "mode": "realtme"},
        "mode",
        ["'realtme' is not a valid mode", "did you mean 'realtime'?", "realtime, batch"],
    ),
    (
        "unknown format",
        {"url": URL, "format": "xml"},
        "format",
        ["'xml' is not a valid format", "json, form, cloudevents"],
    ),
    (
        "misspelt format",
        {"url": URL, "format": "cloudevent"},
        "format",
        ["did you mean 'cloudevents'?"],
    ),
    (
        "zero batch size",
        {"url": URL, "mode": "batch", "batch_size": 0},
        "batch_size",
        ["0 is not a positive integer", "greater than 0"],
    ),
    (
        "fractional batch size",
        {"url": URL, "mode": "batch", "batch_size": 2.5},
        "batch_size",
        ["2.5 is not a positive integer"],
    ),
    (
        "boolean batch size",
        {"url": URL, "mode": "batch", "batch_size": True},
        "batch_size",
        ["True is not a positive integer"],
    ),
    (
        "negative flush",
        {"url": URL, "batch_flush_seconds": -1},
        "batch_flush_seconds",
        ["-1 is not a positive number"],
    ),
    (
        "zero timeout",
        {"url": URL, "timeout_seconds": 0},
        "timeout_seconds",
        ["0 is not a positive number"],
    ),
    (
        "infinite timeout",
        {"url": URL, "timeout_seconds": float("inf")},
        "timeout_seconds",
        ["inf is not a positive number"],
    ),
    (
        "timeout text",
        {"url": URL, "timeout_seconds": "soon"},
        "timeout_seconds",
        ["'soon' is not a positive number"],
    ),
    ("secret without prefix", {"url": URL, "secret": "hunter2hunter2"}, "secret", ["whsec_"]),
    ("secret too short", {"url": URL, "secret": "whsec_c2hvcnQ="}, "secret", ["24 to 64"]),
    (
        "second rotated secret bad",
        {"url": URL, "secret": [SECRET, "whsec_!!!"]},
        "secret",
        ["secret #2"],
    ),
    ("secret wrong type", {"url": URL, "secret": 12345}, "secret", ["must be a 'whsec_"]),
    (
        "header with CR/LF",
        {"url": URL, "headers": {"X-Team": "data\r\nX-Evil: 1"}},
        "headers",
        ["'X-Team'", "CR, LF"],
    ),
    (
        "header overriding webhook-id",
        {"url": URL, "headers": {"Webhook-Id": "x"}},
        "headers",
        ["'Webhook-Id'", "cannot be overridden", "webhook-*"],
    ),
    (
        "header overriding content-type",
        {"url": URL, "headers": {"Content-Type": "text/plain"}},
        "headers",
        ["'Content-Type'", "cannot be overridden"],
    ),
    (
        "header name with space",
        {"url": URL, "headers": {"X Team": "a"}},
        "headers",
        ["'X Team' is not a valid HTTP header name"],
    ),
    (
        "header value not a string",
        {"url": URL, "headers": {"X-Retries": 3}},
        "headers",
        ["'X-Retries' must have a string value"],
    ),
    ("headers not a table", {"url": URL, "headers": ["X-A: b"]}, "headers", ["must be a table"]),
    (
        "enabled not boolean",
        {"url": URL, "enabled": "yes"},
        "enabled",
        ["'yes' is not a boolean", "true, false"],
    ),
    (
        "unknown field with suggestion",
        {"url": URL, "verb": ["failed"]},
        "verb",
        ["unknown field 'verb'", "did you mean 'verbs'?", "valid fields: url, secret"],
    ),
    (
        "unknown field no suggestion",
        {"url": URL, "colour": "blue"},
        "colour",
        ["unknown field 'colour'", "valid fields"],
    ),
]


@pytest.mark.parametrize(
    ("fields", "field", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_value_is_refused_with_a_message_naming_it(
    fields: dict[str, Any], field: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Subscription.from_mapping("ops-alerts", fields)
    message = str(caught.value)
    assert "subscription 'ops-alerts'" in message
    assert f"field {field!r}" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_table_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_secret_is_never_echoed_in_the_error() -> None:
    secret = "whsec_dG9vc2hvcnQ="  # valid base64, too short
    with pytest.raises(ConfigurationError) as caught:
        Subscription.from_mapping("s", {"url": URL, "secret": secret})
    assert secret not in str(caught.value)
    assert "dG9vc2hvcnQ" not in str(caught.value)


def test_every_problem_in_one_subscription_is_reported_together() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Subscription.from_mapping("s", {"url": "ftp://x", "verbs": ["faild"], "mode": "bach"})
    message = str(caught.value)
    assert "3 problems" in message
    assert "field 'url'" in message and "field 'verbs'" in message and "field 'mode'" in message


def test_credentials_are_not_echoed_for_a_url_with_userinfo() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Subscription.from_mapping("s", {"url": "https://bob:hunter2@hooks.example.com/x"})
    assert "hunter2" not in str(caught.value)
